"""Explore: the fish's protocol, tail over time (observed vs predicted, epochs shaded), 3D brain."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import caching, demo_results, downloads
from dashboard.context import LIVE_NOTE, Context, echart, held_out_note, range_name, user_errors
from dashboard.figure_memo import FigureMemo
from dashboard.figures import tail_figure
from dashboard.results_state import method_title, predictions_on, salience_options, shown
from dashboard.state import sync_query
from dashboard.tail_echarts import PRESENTATION_FONT, EChart, tail_echart
from dashboard.views.brain import brain_panel_later
from dashboard.views.salience import (
    current_salience,
    heatmap_rows,
    pending_note,
    salience_pending,
    salience_quick,
)
from decoding.provenance import short_id

__all__ = [
    "render",
    "channel_picker",
    "metrics_row",
    "epochs_table",
    "tail_for",
    "tail_export",
    "prepare_default_tail",
]

INFERENCE_FIX = "Pick a checkpoint trained on this fish (same neurons)."
_BRAIN_WAITS = "The brain is drawn with the salience, once it is computed."
#: While predictions are computed after the page (which then runs again), the brain waits for that
#: run: drawn now, it would be sent twice (~1.4 MB for the demo fish).
_BRAIN_AFTER_PREDICTIONS = "The brain is drawn once the predictions are computed."
#: Tail charts already built in this process (switching back to an epoch redraws it at once).
_TAILS = FigureMemo(max_entries=32)


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


@dataclass(kw_only=True)
class _Shown:
    """The results of one run of the page: predictions and salience (computed, cached or
    shipped), and whether either is still to be computed after the page is drawn."""

    preds: np.ndarray | None = None
    preds_pending: bool = False
    sal: Any = None
    sal_pending: bool = False
    shipped_preds: bool = False  # taken from the shipped demo results
    shipped_sal: bool = False


def render(ctx: Context) -> None:
    """Draw the Explore view: header, *Run inference*, tail (with salience rows), brain, share."""
    rec = ctx.rec
    st.markdown(
        f"#### {rec.fish_id} · {ctx.range_label}\n"
        f"{rec.n_neurons:,} neurons · {rec.n_frames:,} frames at {rec.frame_rate_hz:g} Hz "
        f"({rec.duration_s / 60:.1f} min) · {len(rec.epochs)} epochs · atlas `{rec.atlas}`"
    )
    protocol = f"Stimulus protocol: {len(rec.epochs)} epochs ({', '.join(rec.epoch_names)})"
    # drawn only while open: a plain table's cells are Markdown elements (~700 for the demo's 100
    # epochs), and rendering them cost the first screen ~0.3 s in the browser (issue 11)
    box = st.expander(protocol, key="protocol_open", on_change="rerun")
    if box.open:
        with box, st.container(height=240, border=False):
            st.table(epochs_table(rec).set_index("#"))
    channel = _inference_row(ctx)
    note = st.empty()  # always present, so the elements below keep their place (no remount)
    results = st.container()  # the metrics and the tail, once the results are known
    st.markdown("#### Brain")
    brain = st.empty()  # emptied while a quick map is computed (see ``_results``)
    got = _results(ctx, note, brain)
    with results:
        if got.preds is not None:
            metrics_row(ctx, rec.behavior[ctx.start : ctx.stop], got.preds)
        _tail(ctx, got, channel, note)
    sal = got.sal
    hold = _BRAIN_WAITS if got.sal_pending else ""
    if got.preds_pending and not hold:
        hold = _BRAIN_AFTER_PREDICTIONS
    with brain.container():
        build = brain_panel_later(
            ctx,
            key="explore_brain",
            hold=hold,
            values=sal.mean_abs if sal is not None else None,
            value_label="salience",
            title="Neurons coloured by "
            + (_salience_of(ctx, sal) if sal is not None else "region"),
            confidence=sal.confidence if sal is not None else None,
            shows=_results_key(ctx, replace(got, preds=None)),  # it does not show them
        )
    _share(ctx, got.preds, lambda: tail_export(ctx, got, channel), build)
    _finish_pending(ctx, got)


def _inference_row(ctx: Context) -> str:
    """*Run inference* and the channel picker; returns the channel choice."""
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
    return channel


def _results(ctx: Context, note: Any, brain: Any) -> _Shown:
    """The predictions and salience on screen in this run. Those not in a cache yet are taken
    from the shipped demo results when these are exactly the selection's (the demo's default
    view), else computed now when quick (``salience_quick``), else marked pending: computed
    after the page is drawn (observed tail first), so an older epoch's map is never shown for
    this one.

    While a quick map is computed, ``note`` (an ``st.empty``) names it and ``brain`` (the 3D
    brain's ``st.empty``) holds a sentence instead of the previous map: that map is not this
    epoch's (the page draws the new brain after the tail, as always). Its cost to the
    computation is small: the idle brain's WebGL loop takes ~0.09 of a core, and with the brain
    left in place Chromium took the same share of the 2 cores during an IG switch (0.21-0.34
    against 0.22-0.35 of a core, 6 switches each; most of it in the first 0.25 s after the
    click, the rerun's elements drawn)."""
    got = _Shown()
    wants_preds = ctx.ckpt is not None and predictions_on()
    got.preds_pending = wants_preds and not ctx.predictions_ready()
    got.sal_pending = salience_pending(ctx)
    shipped = None
    if got.preds_pending or got.sal_pending:
        with user_errors("Reading the shipped demo results"):
            shipped = demo_results.for_view(ctx, salience_options())
    if shipped is not None and got.preds_pending:
        got.preds, got.preds_pending, got.shipped_preds = shipped.predictions, False, True
    elif wants_preds and not got.preds_pending:
        with user_errors("Inference", INFERENCE_FIX):
            got.preds = ctx.predictions()
    if shipped is not None and got.sal_pending:
        got.sal, got.sal_pending, got.shipped_sal = shipped.salience, False, True
    elif not got.sal_pending:
        got.sal = current_salience(ctx, compute=False)
    elif salience_quick(ctx):  # computed now and drawn once; meanwhile ``note`` names it
        note.info(pending_note(ctx), icon=":material/hourglass_top:")
        brain.info(_BRAIN_WAITS, icon=":material/hourglass_top:")
        got.sal, got.sal_pending = current_salience(ctx, compute=False), False
    return got


def _tail(ctx: Context, got: _Shown, channel: str, note: Any) -> None:
    """The pending-results note (in ``note``, an ``st.empty``) and the tail chart (salience
    rows under it)."""
    notes = [f"Running inference on **{ctx.range_label}**…"] if got.preds_pending else []
    if got.sal_pending:
        notes.append(pending_note(ctx))
    if notes:
        note.info("  \n".join(notes), icon=":material/hourglass_top:")
    else:
        note.empty()
    present = bool(st.session_state.get("w_present"))
    echart(tail_for(ctx, got, channel, present=present), key="tail_fig")


def _tail_rows(ctx: Context, got: _Shown) -> tuple[np.ndarray | None, list[str], str]:
    """The salience rows under the tail (``None`` when no map of these frames is shown), their
    labels, and the chart's title."""
    sal = got.sal
    heat, heat_labels = None, []
    if isinstance(sal, demo_results.ShippedSalience):
        heat, heat_labels = demo_results.heat_rows(ctx, sal)
    elif sal is not None:
        heat, heat_labels = heatmap_rows(ctx, sal)
    predicted = got.preds is not None
    title = "Tail angles: observed vs predicted" if predicted else "Tail angles (observed)"
    if heat is not None:
        title += f" · rows below: {_salience_of(ctx, sal)}"
    return heat, heat_labels, title


def _tail_args(ctx: Context, got: _Shown, channel: str) -> dict[str, Any]:
    """What the tail shows, as keywords of both :func:`tail_echart` and ``tail_figure``."""
    heat, heat_labels, title = _tail_rows(ctx, got)
    return {
        "times_s": ctx.times(),
        "observed": ctx.rec.behavior[ctx.start : ctx.stop],
        "predicted": got.preds,
        "names": ctx.rec.behavior_names,
        "units": ctx.rec.behavior_units,
        "channel": channel,
        "epochs": ctx.epoch_spans(),
        "heatmap": heat,
        "heatmap_labels": heat_labels,
        "title": title,
    }


def tail_for(ctx: Context, got: _Shown, channel: str, *, present: bool = False) -> EChart:
    """The tail chart of the results ``got`` (salience rows under it), built once per process
    for what it shows; ``present``: with presentation mode's larger fonts."""

    def build() -> EChart:
        args = _tail_args(ctx, got, channel)
        return tail_echart(**args, font_scale=PRESENTATION_FONT if present else 1.0)

    return _TAILS.get((_results_key(ctx, got), channel, present), build)


def tail_export(ctx: Context, got: _Shown, channel: str) -> Any:
    """The Plotly figure of the same tail, for the HTML export (built when clicked)."""
    return tail_figure(**_tail_args(ctx, got, channel))


def prepare_default_tail(ctx: Context) -> bool:
    """Build the tail figure a bare link opens with into the per-process store, when the shipped
    demo results are exactly ``ctx``'s (the server's warm start, before the first page); returns
    whether it did."""
    from decoding.salience import DEFAULT_METHOD

    request = {"method": DEFAULT_METHOD, "target": "sum", "steps": 32}
    shipped = demo_results.for_view(ctx, request)
    if shipped is None:
        return False
    got = _Shown(preds=shipped.predictions, sal=shipped.salience, shipped_preds=True,
                 shipped_sal=True)  # fmt: skip
    tail_for(ctx, got, "all")
    return True


def _results_key(ctx: Context, got: _Shown) -> tuple:
    """What the figures show: recording, frames, atlas (region labels), which predictions and
    which salience map (checkpoint, where they come from, the map's frames, method, target and
    parameters)."""
    model = (ctx.ckpt_path, ctx.ckpt_mtime, ctx.device)
    preds = (*model, got.shipped_preds) if got.preds is not None else None
    sal = None
    if got.sal is not None:
        s = got.sal
        params = s.steps if got.shipped_sal else json.dumps(s.params, sort_keys=True, default=str)
        sal = (*model, got.shipped_sal, s.start, s.stop, s.method, s.target, params)
    return (ctx.rec_path, ctx.rec_mtime, ctx.start, ctx.stop, ctx.atlas_name, preds, sal)


def _share(ctx: Context, preds: np.ndarray | None, build_tail: Any, build_brain: Any) -> None:
    """Downloads, built only when clicked, named by fish, epoch and model."""
    st.markdown("#### Share")
    cols = st.columns(3)
    items = [
        ("Tail figure (HTML)", lambda: downloads.figure_html(build_tail()), "dl_tail_html", "tail"),
        ("Brain figure (HTML)", lambda: downloads.figure_html(build_brain()), "dl_brain_html",
         "brain"),
    ]  # fmt: skip
    if preds is not None:
        items.insert(0, ("Predictions (CSV)", lambda: downloads.predictions_csv(ctx, preds),
                         "dl_pred", "predictions"))  # fmt: skip
    for col, (label, make, key, what) in zip(cols[3 - len(items) :], items, strict=True):
        ext = "csv" if what == "predictions" else "html"
        name = downloads.export_name(ctx, what, ext)
        downloads.lazy_download(col, label, make, key=key, file_name=name)
    st.caption(
        "PNG: the download icon at the top right of the tail chart, the camera in the 3D "
        "brain's toolbar."
    )


def _finish_pending(ctx: Context, got: _Shown) -> None:
    """Compute the pending predictions and map now (the page above is usable meanwhile), then
    draw them with one rerun; the link is right while they are computed (as after a run)."""
    if not (got.preds_pending or got.sal_pending):
        return
    sync_query(st.query_params, shown(ctx.sel, has_model=True))
    rerun = False
    if got.preds_pending:
        with user_errors("Inference", INFERENCE_FIX):
            rerun = ctx.predictions() is not None
    if got.sal_pending and current_salience(ctx, compute=False) is not None:
        rerun = True
    if rerun:
        st.rerun()


def _salience_of(ctx: Context, sal: Any) -> str:
    """``"Integrated Gradients salience · 3 · left (120–155 s)"``: method and frames of a map."""
    frames = range_name(ctx.rec, ctx.split, sal.start, sal.stop)
    return f"{method_title(sal.method)} salience · {frames}"
