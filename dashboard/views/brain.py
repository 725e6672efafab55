"""The 3D brain panel shared by the Explore and Salience views: controls + figure."""

from __future__ import annotations

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard import caching
from dashboard.context import Context, chart
from dashboard.figures import MeshSpec, brain_figure

__all__ = ["brain_panel", "region_colors"]


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
) -> go.Figure:
    """Draw the brain with the fish's neurons; returns the figure (for downloads).

    With ``values`` the neurons are coloured by them and a top-k / threshold filter applies;
    without,
    they take their region's colour. ``value_range`` fixes the colour range (e.g. one range for
    two brains compared side by side).
    """
    rec = ctx.rec
    outline, meshes = caching.brain_meshes(ctx.atlas_name)
    groups = sorted({g for _, g, _ in meshes if g})
    regions = caching.neuron_regions(ctx.rec_path, ctx.rec_mtime, ctx.atlas_name)
    n = rec.n_neurons

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
            d1, d2 = st.columns([2, 5])
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
    show = None
    if values is not None and mode == "top-k":
        show = np.zeros(n, bool)
        show[np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")[:k]] = True
    elif values is not None and mode == "threshold":
        show = np.asarray(values) >= thr
    fig = brain_figure(
        rec.positions_um,
        values=values,
        value_label=value_label,
        value_range=value_range,
        neuron_ids=rec.neuron_ids,
        regions=regions,
        meshes=specs,
        show=show,
        highlight=highlight,
        point_size=size,
        max_points=int(max_pts),
        title=title,
        height=460 if compact else 640,
        region_colors=region_colors(ctx),
    )
    chart(fig, key=f"{key}_fig")
    drawn = fig.layout.meta.get("n_drawn", n) if fig.layout.meta else n
    if drawn < n:
        st.caption(f"{drawn:,} of {n:,} neurons drawn (the least salient thinned out).")
    return fig
