"""The 3D brain panel shared by the Explore and Salience views: controls + figure."""

from __future__ import annotations

from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard import caching
from dashboard.context import Context, chart
from dashboard.figures import MeshSpec, brain_figure
from dashboard.state import COLOURS

__all__ = ["brain_panel", "region_colors", "colour_picker", "confidence_help", "NO_CONFIDENCE"]

#: Why a salience result has no per-neuron confidence (shown instead of the column / colouring).
NO_CONFIDENCE = (
    "this salience result was saved before per-neuron confidence was computed (an older cache "
    "file or background-job output). Compute it again (after removing the old file from the "
    "salience cache) to get it."
)


def confidence_help(n_neurons: int) -> str:
    """What a neuron's confidence means (tooltip of the table column and of the colouring)."""
    from decoding.salience import default_top_k

    k = default_top_k(n_neurons)
    return (
        f"fraction of bootstrap resamples of the frames in which this neuron is in the top k "
        f"(k = {k}: 1 % of the neurons, at least 10; 200 block-bootstrap resamples)"
    )


def confidence_label(n_neurons: int) -> str:
    """Colour-bar title (and hover label) of the confidence colouring."""
    from decoding.salience import default_top_k

    return f"confidence (top {default_top_k(n_neurons)})"


def colour_picker(ctx: Context, key: str, confidence: np.ndarray | None, where: Any = None) -> str:
    """*Colour by: salience | confidence*, kept in the URL (``colour=``) and across views.

    Without a confidence (a result saved before it existed) the option is hidden and a caption
    says why; the colouring is then salience (the URL's choice is kept for later results).
    """
    where = where or st
    if confidence is None:
        where.caption(f"Colour by confidence is not available: {NO_CONFIDENCE}")
        return "salience"
    wkey = f"{key}_colour"
    if wkey not in st.session_state:
        st.session_state[wkey] = ctx.sel.colour if ctx.sel.colour in COLOURS else COLOURS[0]
    choice = where.radio(
        "Colour by",
        list(COLOURS),
        key=wkey,
        horizontal=True,
        help="salience: mean |attribution| over the frames; confidence: "
        + confidence_help(ctx.rec.n_neurons),
    )
    st.session_state["_colour_by"] = choice
    ctx.sel = ctx.sel.with_(colour=choice)
    return choice


def region_colors(ctx: Context) -> dict[str, str]:
    """Region acronym -> "#rrggbb" from the atlas table."""
    return {r.acronym: r.color for r in caching.atlas_for(ctx.atlas_name).regions}


def brain_panel(
    ctx: Context,
    *,
    key: str,
    values: np.ndarray | None = None,
    value_label: str = "salience",
    highlight: int | None = None,
    title: str = "",
    compact: bool = False,
    value_range: tuple[float, float] | None = None,
    confidence: np.ndarray | None = None,
) -> go.Figure:
    """Draw the brain with the fish's neurons; returns the figure (for downloads).

    With ``values`` the neurons are coloured by them and a top-k / threshold filter applies;
    without, they take their region's colour. ``value_range`` fixes the colour range (e.g. one
    range for two brains compared side by side). With ``confidence`` ((N,) in [0, 1]) a *Colour
    by* choice can colour the neurons by it instead, on a fixed 0–1 scale (the filter still
    selects by ``values``).
    """
    rec = ctx.rec
    outline, meshes = caching.brain_meshes(ctx.atlas_name)
    groups = sorted({g for _, g, _ in meshes if g})
    regions = caching.neuron_regions(ctx.rec_path, ctx.rec_mtime, ctx.atlas_name)
    n = rec.n_neurons
    colour = COLOURS[0]

    if compact:
        show_groups, show_outline, size, max_pts = groups, True, 2.0, 25_000
        mode, k, thr = ("top-k" if values is not None else "all"), min(500, n), 0.0
    else:
        c1, c2, c3, c4 = st.columns([4, 2, 2, 2])
        show_groups = c1.multiselect(
            "Region meshes",
            groups,
            default=groups,
            key=f"{key}_groups",
            help="Toggle the semi-transparent atlas regions by group.",
        )
        show_outline = c2.toggle("Brain outline", value=True, key=f"{key}_outline")
        size = c3.slider("Point size", 1.0, 8.0, 2.5 if n < 20_000 else 1.5, 0.5, key=f"{key}_size")
        max_pts = c4.select_slider(
            "Max points drawn",
            [5_000, 10_000, 20_000, 40_000, 100_000],
            value=40_000,
            key=f"{key}_maxpts",
            help="Above this many neurons the least salient are thinned out (WebGL stays fast).",
        )
        mode, k, thr = "all", n, 0.0
        if values is not None:
            d1, d2, d3 = st.columns([2, 4, 2])
            colour = colour_picker(ctx, key, confidence, where=d3)
            mode = d1.radio(
                "Show", ["top-k", "threshold", "all"], horizontal=True, key=f"{key}_mode"
            )
            if mode == "top-k":
                k = d2.slider(
                    "k most salient neurons", 10, min(n, 5000), min(500, n), 10, key=f"{key}_k"
                )
            elif mode == "threshold":
                vmax = float(np.nanmax(values)) or 1.0
                thr = d2.slider(
                    f"{value_label} ≥",
                    0.0,
                    vmax,
                    vmax * 0.25,
                    vmax / 200,
                    key=f"{key}_thr",
                    format="%.3g",
                )

    specs: list[MeshSpec] = []
    if show_outline and outline is not None:
        specs.append(outline)
    specs += [m for _, g, m in meshes if g in show_groups or not g]
    colour_values, colour_label, colour_range = values, value_label, value_range
    if values is not None and not compact and colour == "confidence":
        colour_values = np.asarray(confidence, dtype=np.float32)
        colour_label, colour_range = confidence_label(n), (0.0, 1.0)
        title = f"{title} · coloured by confidence" if title else "Confidence on the brain"
    show = None
    if values is not None and mode == "top-k":
        show = np.zeros(n, bool)
        show[np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")[:k]] = True
    elif values is not None and mode == "threshold":
        show = np.asarray(values) >= thr
    fig = brain_figure(
        rec.positions_um,
        values=colour_values,
        value_label=colour_label,
        value_range=colour_range,
        neuron_ids=rec.neuron_ids,
        regions=regions,
        meshes=specs,
        show=show,
        highlight=highlight,
        point_size=size,
        max_points=int(max_pts),
        title=title,
        height=460 if compact else 640,
        compact=compact,
        region_colors=region_colors(ctx),
    )
    chart(fig, key=f"{key}_fig")
    drawn = fig.layout.meta.get("n_drawn", n) if fig.layout.meta else n
    if drawn < n:
        least = "confident" if colour_label != value_label else "salient"
        st.caption(f"{drawn:,} of {n:,} neurons drawn (the least {least} thinned out).")
    return fig
