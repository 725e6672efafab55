"""Explore: the fish's protocol, tail over time (observed vs predicted, epochs shaded), 3D brain."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import caching, downloads
from dashboard.context import LIVE_NOTE, Context, chart, held_out_note, range_name, user_errors
from dashboard.figures import tail_figure
from dashboard.results_state import method_title, predictions_on, shown
from dashboard.state import sync_query
from dashboard.views.brain import brain_panel
from dashboard.views.salience import (
    current_salience,
    heatmap_rows,
    pending_note,
    salience_pending,
)
from decoding.provenance import short_id

__all__ = ["render", "channel_picker", "metrics_row", "epochs_table"]

INFERENCE_FIX = "Pick a checkpoint trained on this fish (same neurons)."


def epochs_table(rec) -> pd.DataFrame:
    """The stimulus protocol as a table (index, name, frames, seconds, parameters)."""
    fps = rec.frame_rate_hz
    return pd.DataFrame(
        [
            {
                "#": i,
                "epoch": e.name,
                "start frame": e.start,
                "stop frame": e.stop,
                "start (s)": round(e.start / fps, 1),
                "stop (s)": round(e.stop / fps, 1),
                "params": ", ".join(f"{k}={v}" for k, v in dict(e.params).items()),
            }
            for i, e in enumerate(rec.epochs)
        ]
    )


def channel_picker(ctx: Context, key: str = "w_channel") -> str:
    """All channels, their sum, or one channel; kept in the URL."""
    names = list(ctx.rec.behavior_names)
    options = ["all", "sum"] + [str(i) for i in range(len(names))]
    if key not in st.session_state and ctx.sel.channel in options:
        st.session_state[key] = ctx.sel.channel
    if st.session_state.get(key) not in options:
        st.session_state[key] = "all"
    value = st.radio(
        "Tail channels",
        options,
        key=key,
        horizontal=True,
        format_func=lambda v: {"all": f"all {len(names)}", "sum": "sum"}.get(
            v, names[int(v)] if v.isdigit() else v
        ),
    )
    ctx.sel = ctx.sel.with_(channel=value)
    return value


def _live_heading(ctx: Context) -> str:
    """``**This recording, computed now** …``, and why the sidebar's stored numbers differ."""
    here = ""
    with user_errors("Fingerprinting the recording"):
        here = short_id(caching.recording_fingerprint(ctx.rec_path, ctx.rec_mtime))
    text = f"**{LIVE_NOTE[:1].upper()}{LIVE_NOTE[1:]}** · {here or ctx.rec.fish_id}"
    stored = ctx.ckpt.metrics.get("rmse") if ctx.ckpt is not None else None
    if isinstance(stored, int | float):
        text += (
            f" — the sidebar's test RMSE {stored:.3f} is the one {ctx.ckpt.stored_note} "
            "(on its test split), so the two need not agree."
        )
    return text


def metrics_row(ctx: Context, observed: np.ndarray, predicted: np.ndarray, label: str = "") -> None:
    """RMSE, r, R² of the predictions on the frames shown (and the noise ceiling if known),
    labelled as computed now on this recording (the sidebar's are stored at training); a warning
    when the frames include the checkpoint's training or validation frames."""
    from decoding.metrics import evaluate_arrays

    gt = ctx.rec.ground_truth
    clean = gt.behavior_clean[ctx.start : ctx.stop] if gt is not None else None
    m = evaluate_arrays(observed, predicted, list(ctx.rec.behavior_names), clean=clean)
    st.markdown(_live_heading(ctx))
    cols = st.columns(5)
    cols[0].metric(
        f"RMSE{label}",
        f"{m.rmse:.4f} rad",
        help=f"root mean square error, all channels ({LIVE_NOTE}, on the frames shown)",
    )
    cols[1].metric("Pearson r", f"{m.pearson_r:.3f}", help=f"{LIVE_NOTE}, on the frames shown")
    cols[2].metric("R²", f"{m.r2:.3f}", help=f"{LIVE_NOTE}, on the frames shown")
    if m.noise_ceiling is not None:
        cols[3].metric(
            "noise ceiling RMSE",
            f"{m.noise_ceiling['rmse']:.4f}",
            help="RMSE of the noise-free tail (ground truth of the synthetic fish): the "
            "best any decoder can do on these frames",
        )
        if m.rmse_over_ceiling is not None:
            cols[4].metric("RMSE / ceiling", f"{m.rmse_over_ceiling:.2f}×")
    cols[-1 if m.noise_ceiling is None else 4].caption(f"{m.n_frames} frames shown")
    note = held_out_note(ctx.split, ctx.start, ctx.stop)
    if note:
        st.warning(note, icon=":material/warning:")
    st.session_state["_last_metrics"] = {
        "for": [ctx.ckpt_path, ctx.rec_path, ctx.start, ctx.stop],
        "metrics": m.to_dict(),
    }


def render(ctx: Context) -> None:
    rec = ctx.rec
    st.markdown(
        f"#### {rec.fish_id} · {ctx.range_label}\n"
        f"{rec.n_neurons:,} neurons · {rec.n_frames:,} frames at {rec.frame_rate_hz:g} Hz "
        f"({rec.duration_s / 60:.1f} min) · {len(rec.epochs)} epochs · atlas `{rec.atlas}`"
    )
    with st.expander(f"Stimulus protocol: {len(rec.epochs)} epochs ({', '.join(rec.epoch_names)})"):
        st.dataframe(epochs_table(rec), hide_index=True, height=240)

    # ---- inference
    preds = None
    c1, c2 = st.columns([1, 4])
    with c1:
        clicked = st.button(
            "Run inference",
            icon=":material/play_arrow:",
            key="run_infer",
            type="primary",
            disabled=ctx.ckpt is None,
            help="Predict the tail from the brain with the selected checkpoint.",
        )
    if clicked:
        st.session_state["infer_on"] = True  # also for the URL (pred=1)
    with c2:
        channel = channel_picker(ctx)
    if ctx.ckpt is None:
        st.info(
            "Pick a model (checkpoint) in the sidebar to predict the tail, or train one in "
            "**Train & jobs**. Below: the observed tail and the brain."
        )
    # predictions not in a cache yet are computed after the page is drawn (observed tail first)
    preds_pending = ctx.ckpt is not None and predictions_on() and not ctx.predictions_ready()
    if ctx.ckpt is not None and predictions_on() and not preds_pending:
        with user_errors("Inference", INFERENCE_FIX):
            preds = ctx.predictions()
    observed = rec.behavior[ctx.start : ctx.stop]
    if preds is not None:
        metrics_row(ctx, observed, preds)

    # ---- salience (once asked for): drawn when answered; a new one is computed after the page
    # is drawn without it (a note names the epoch), so an older epoch's map never shows here.
    pending = salience_pending(ctx)
    sal = None if pending else current_salience(ctx, compute=False)
    note = st.empty()  # always present, so the figures below keep their place (no remount)
    notes = [f"Running inference on **{ctx.range_label}**…"] if preds_pending else []
    if pending:
        notes.append(pending_note(ctx))
    if notes:
        note.info("  \n".join(notes), icon=":material/hourglass_top:")
    heat, heat_labels = heatmap_rows(ctx, sal) if sal is not None else (None, [])
    title = "Tail angles: observed vs predicted" if preds is not None else "Tail angles (observed)"
    if heat is not None:
        title += f" · rows below: {_salience_of(ctx, sal)}"
    fig = tail_figure(
        ctx.times(),
        observed,
        preds,
        rec.behavior_names,
        units=rec.behavior_units,
        channel=channel,
        epochs=ctx.epoch_spans(),
        heatmap=heat,
        heatmap_labels=heat_labels,
        title=title,
    )
    chart(fig, key="tail_fig")

    # ---- brain
    st.markdown("#### Brain")
    values = sal.mean_abs if sal is not None else None
    brain = brain_panel(
        ctx,
        key="explore_brain",
        values=values,
        value_label="salience",
        title="Neurons coloured by " + (_salience_of(ctx, sal) if values is not None else "region"),
        confidence=sal.confidence if sal is not None else None,
    )

    # ---- downloads: built only when clicked, named by fish, epoch and model
    st.markdown("#### Share")
    d1, d2, d3 = st.columns(3)
    if preds is not None:
        downloads.lazy_download(
            d1,
            "Predictions (CSV)",
            lambda: downloads.predictions_csv(ctx, preds),
            key="dl_pred",
            file_name=downloads.export_name(ctx, "predictions", "csv"),
        )
    downloads.lazy_download(
        d2,
        "Tail figure (HTML)",
        lambda: downloads.figure_html(fig),
        key="dl_tail_html",
        file_name=downloads.export_name(ctx, "tail", "html"),
    )
    downloads.lazy_download(
        d3,
        "Brain figure (HTML)",
        lambda: downloads.figure_html(brain),
        key="dl_brain_html",
        file_name=downloads.export_name(ctx, "brain", "html"),
    )
    st.caption("PNG: use the camera icon in each figure's toolbar (Plotly's modebar).")

    # pending predictions and map are computed now (the page above is usable meanwhile), then
    # drawn by one rerun
    if preds_pending or pending:  # the link is right while they are computed (as after a run)
        sync_query(st.query_params, shown(ctx.sel, has_model=True))
    rerun = False
    if preds_pending:
        with user_errors("Inference", INFERENCE_FIX):
            rerun = ctx.predictions() is not None
    if pending and current_salience(ctx, compute=False) is not None:
        rerun = True
    if rerun:
        st.rerun()


def _salience_of(ctx: Context, sal: Any) -> str:
    """``"Integrated Gradients salience · 3 · left (120–155 s)"``: method and frames of a map."""
    frames = range_name(ctx.rec, ctx.split, sal.start, sal.stop)
    return f"{method_title(sal.method)} salience · {frames}"
