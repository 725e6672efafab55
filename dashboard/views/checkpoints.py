"""Checkpoints: the list, one checkpoint's training curves/config/metrics, and two side by side."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import streamlit as st

from dashboard import caching
from dashboard.context import Context, chart, user_errors
from dashboard.figures import (
    metrics_bar_figure,
    rank_scatter_figure,
    tail_figure,
    training_curves_figure,
)
from dashboard.views.brain import brain_panel
from dashboard.views.salience import salience_params, salience_request

if TYPE_CHECKING:
    from decoding.checkpoint import CheckpointInfo

__all__ = ["render", "checkpoint_table", "shared_range", "STORED_ON"]

#: How many of each map's most salient neurons are compared.
TOP_SHARED = 100

#: Column naming the recording each checkpoint's stored test metrics were computed on.
STORED_ON = "test metrics stored at training, on"


def checkpoint_table(ctx: Context) -> pd.DataFrame:
    """The checkpoints found, one row each.

    Parameters
    ----------
    ctx
        The page's selection (its listed checkpoints).

    Returns
    -------
    pd.DataFrame
        Name, backbone, init, mode, window, neurons, fish, and the stored test metrics with the
        recording they were computed on (at training).
    """
    rows = []
    for c in ctx.checkpoints:
        m = c.metrics
        rows.append(
            {
                "checkpoint": c.key,
                "backbone": c.backbone,
                "init": c.init,
                "mode": c.mode,
                "window": c.window,
                "neurons": c.n_neurons,
                "fish": c.fish_id,
                STORED_ON: c.metrics_on or "an unknown recording",
                "test RMSE": m.get("rmse"),
                "test r": m.get("pearson_r"),
                "test R²": m.get("r2"),
                "problem": c.error,
            }
        )
    return pd.DataFrame(rows)


def _per_channel(metrics: dict, key: str) -> tuple[list[str], list[float]]:
    per = metrics.get("per_channel") or []
    return [p.get("name", str(i)) for i, p in enumerate(per)], [p.get(key) for p in per]


def _one(ctx: Context, key: str) -> CheckpointInfo | None:
    """The checkpoint's info (config, history, metrics); ``None`` (error shown) when unreadable."""
    entry = ctx.checkpoint_by_key(key)
    if entry is None:
        return None
    with user_errors(f"Reading checkpoint {entry.path.name}"):
        return caching.checkpoint_info(str(entry.path), caching.mtime_ns(entry.path))
    return None


def shared_range(*values: np.ndarray) -> tuple[float, float]:
    """One colour range covering several salience maps.

    Parameters
    ----------
    *values
        The maps, (N,) each.

    Returns
    -------
    tuple[float, float]
        (min, max) over all of them, NaN ignored.
    """
    return (
        min(float(np.nanmin(v)) for v in values),
        max(float(np.nanmax(v)) for v in values),
    )


def _brains_side_by_side(ctx: Context, sal: dict[str, np.ndarray]) -> None:
    """The salience maps of two checkpoints on one colour range, so equal colours mean equal
    salience."""
    lo, hi = shared_range(*sal.values())
    for col, tag, (key, values) in zip(st.columns(2), "ab", sal.items(), strict=True):
        with col:
            brain_panel(
                ctx,
                key=f"cmp_brain_{tag}",
                values=values,
                title=key,
                compact=True,
                value_range=(lo, hi),
            )
    st.caption(
        f"Both brains share one colour range ({lo:.3g}–{hi:.3g}), so equal colours mean equal "
        "salience."
    )


def render(ctx: Context) -> None:
    """The Checkpoints view: the list, a checkpoint (and a compared one): curves, metrics,
    config; then both on the selected fish: predictions overlaid and salience maps compared.

    Parameters
    ----------
    ctx
        The page's selection.
    """
    st.markdown("#### Checkpoints")
    if not ctx.checkpoints:
        st.info(
            "No checkpoints found under "
            + ", ".join(f"`{d}`" for d in (*ctx.settings.checkpoint_dirs, ctx.settings.runs_dir))
            + ". Train one in **Train & jobs** or with `python -m decoding train`."
        )
        return
    _checkpoint_list(ctx)
    a_key, b_key = _compare_picker(ctx)
    info_a = _one(ctx, a_key)
    info_b = _one(ctx, b_key) if b_key else None
    if info_a is None:
        return
    _stored_panels(ctx, {a_key: info_a} | ({b_key: info_b} if info_b is not None else {}))
    if info_b is None or ctx.rec is None:
        if ctx.rec is not None:
            st.caption("Pick a second checkpoint to overlay predictions and compare salience maps.")
        return
    if _predictions_overlaid(ctx, a_key, b_key):
        _compare_salience(ctx, a_key, b_key)


def _checkpoint_list(ctx: Context) -> None:
    """The table of checkpoints found, their stored test metrics labelled as such."""
    st.dataframe(
        checkpoint_table(ctx),
        hide_index=True,
        column_config={
            k: st.column_config.NumberColumn(
                format="%.4f",
                help="stored at training, on the recording in the column "
                f"'{STORED_ON}' (its test split); not recomputed on the selected fish",
            )
            for k in ("test RMSE", "test r", "test R²")
        },
    )


def _compare_picker(ctx: Context) -> tuple[str, str]:
    """(A, B): the sidebar's model (else the first) and the one picked to compare (``""``)."""
    keys = [c.key for c in ctx.checkpoints]
    a_key = ctx.sel.model if ctx.sel.model in keys else keys[0]
    others = [""] + [k for k in keys if k != a_key]
    if "w_compare" not in st.session_state and ctx.sel.compare in others:
        st.session_state["w_compare"] = ctx.sel.compare
    if st.session_state.get("w_compare") not in others:
        st.session_state["w_compare"] = ""
    b_key = st.selectbox(
        f"Compare **{a_key}**"
        + (" (the sidebar's model)" if ctx.sel.model == a_key else "")
        + " with",
        others,
        key="w_compare",
        format_func=lambda k: k or "— nothing —",
    )
    ctx.sel = ctx.sel.with_(compare=b_key or "")
    return a_key, b_key or ""


def _stored_panels(ctx: Context, infos: dict[str, CheckpointInfo]) -> None:
    """What the checkpoints stored at training: curves, test RMSE per segment, config."""
    hist = {k: info.history for k, info in infos.items()}
    if any(hist.values()):
        chart(training_curves_figure(hist), key="ckpt_curves")
    (a_key, info_a), *rest = infos.items()
    names, rmse_a = _per_channel(info_a.metrics.get("test") or {}, "rmse")
    if names:
        by = {a_key: rmse_a}
        for b_key, info_b in rest:
            names_b, rmse_b = _per_channel(info_b.metrics.get("test") or {}, "rmse")
            if names_b == names:
                by[b_key] = rmse_b
        notes = "; ".join(
            f"{k}: {e.stored_note}" for k in by if (e := ctx.checkpoint_by_key(k)) is not None
        )
        st.markdown(f"**Test RMSE per tail segment** — {notes}")
        chart(metrics_bar_figure(names, by), key="ckpt_metrics")
    for col, (k, info) in zip(st.columns(len(infos)), infos.items(), strict=True):
        with col.expander(f"config of {k}"):
            st.json(
                info.to_dict() | {"normalizer": "…", "target_normalizer": "…", "history": "…"},
                expanded=False,
            )


def _predictions_overlaid(ctx: Context, a_key: str, b_key: str) -> bool:
    """Both checkpoints' predictions on the selected frames, over the observed tail; ``False``
    (errors shown) when either cannot predict this fish."""
    rec = ctx.rec
    if rec is None:
        return False
    st.markdown(f"#### {a_key} vs {b_key} on {rec.fish_id} · {ctx.range_label}")
    preds = {}
    for key in (a_key, b_key):
        with user_errors(f"Inference with {key}"):
            preds[key] = ctx.predictions(ctx.checkpoint_by_key(key))
    if len(preds) < 2:
        return False
    fig = tail_figure(
        ctx.times(),
        rec.behavior[ctx.start : ctx.stop],
        preds[a_key],
        rec.behavior_names,
        units=rec.behavior_units,
        channel="sum",
        epochs=ctx.epoch_spans(),
        compare=preds[b_key],
        labels=("observed", a_key, b_key),
        title="Predictions overlaid (sum of angles)",
    )
    chart(fig, key="cmp_tail")
    return True


def _compare_salience(ctx: Context, a_key: str, b_key: str) -> None:
    """On request (remembered): both salience maps on one colour range, their rank scatter and
    agreement (:func:`decoding.salience_check.randomisation_check`, the CLI's comparison)."""
    clicked = st.button("Compare salience maps", icon=":material/compare:", key="cmp_sal")
    if not (clicked or st.session_state.get("cmp_sal_on")):
        return
    st.session_state["cmp_sal_on"] = True
    from decoding.salience_check import randomisation_check

    p = salience_params(ctx)
    sal = {}
    for key in (a_key, b_key):
        entry = ctx.checkpoint_by_key(key)
        if entry is None:
            return
        with user_errors(f"Salience of {key}"):
            where = (str(entry.path), caching.mtime_ns(entry.path))
            sal[key] = caching.salience(salience_request(ctx, p, where)).mean_abs
    if len(sal) < 2:
        return
    agree = randomisation_check(sal[a_key], sal[b_key], k=TOP_SHARED)
    _brains_side_by_side(ctx, sal)
    chart(
        rank_scatter_figure(
            sal[a_key], sal[b_key], label_a=a_key, label_b=b_key, rho=agree.spearman
        ),
        key="cmp_rank",
    )
    shared = round(agree.top_overlap * agree.k)
    st.caption(
        f"Spearman ρ = {agree.spearman:.3f}; {shared} of the top {agree.k} neurons are shared."
    )
