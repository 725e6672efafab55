"""Simple charts of the dashboard, built with ``plotly.express``: bars per region, grouped bars
(left vs right, epochs, models), training curves, a rank scatter. Every function returns a
``go.Figure`` and never shows it.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go

from dashboard.figure_style import (
    COMPARE_COLOR,
    LEGEND_ABOVE,
    PREDICTED_COLOR,
    SEGMENT_COLORS,
    automargins,
    epoch_color,
)

__all__ = [
    "region_bar_figure",
    "grouped_bar_figure",
    "laterality_figure",
    "epoch_comparison_figure",
    "training_curves_figure",
    "metrics_bar_figure",
    "rank_scatter_figure",
]


def _chart_layout(fig: go.Figure, *, title: str, height: int, margin: dict, **layout) -> go.Figure:
    """The common layout of the simple charts built with ``plotly.express``: Plotly's own hover
    and legend rules (a single series has no legend), a title at the left, fixed height, margins
    that grow for labels (:func:`dashboard.figure_style.automargins`)."""
    fig.update_traces(hovertemplate=None, showlegend=None)
    fig.update_layout(
        title={"text": title, "x": 0, "font": {"size": 14}} if title else None,
        height=height,
        margin=margin,
        **layout,
    )
    automargins(fig)
    return fig


def region_bar_figure(
    regions: Sequence[str],
    values: Sequence[float],
    *,
    colors: Sequence[str] | None = None,
    significant: Sequence[bool] | None = None,
    value_label: str = "mean salience",
    top: int = 25,
    title: str = "",
) -> go.Figure:
    """Horizontal bars of a value per region, sorted, largest on top.

    Parameters
    ----------
    regions, values
        A value per region.
    colors
        A colour per region (default: one red).
    significant
        Per region, whether to mark it ``*``.
    value_label, top, title
        The x-axis title, how many regions at most, the figure title.

    Returns
    -------
    go.Figure
        A ``plotly.express`` bar chart.
    """
    vals = np.asarray(values, dtype=np.float64)
    order = np.argsort(-vals)[:top][::-1]
    labels = [
        str(regions[i]) + (" *" if significant is not None and significant[i] else "")
        for i in order
    ]
    fig = px.bar(x=vals[order], y=labels, orientation="h", labels={"x": value_label, "y": ""})
    fig = _chart_layout(
        fig,
        title=title,
        height=max(260, 22 * len(order) + 90),
        margin={"l": 10, "r": 10, "t": 40 if title else 10, "b": 40},
    )
    return fig.update_traces(
        marker_color=[colors[i] for i in order] if colors else "#d62728",
        hovertemplate="%{y}: %{x:.3g}<extra></extra>",
    )


def grouped_bar_figure(
    categories: Sequence[str],
    by_group: dict[str, Sequence[float | None]],
    *,
    colors: Sequence[str],
    value_label: str,
    title: str = "",
    height: int = 340,
    margin: dict | None = None,
) -> go.Figure:
    """Grouped bars: a bar per group in each category, the legend above the plot.

    Parameters
    ----------
    categories
        The x-axis categories (regions, channels).
    by_group
        Group name -> a value per category (``None``: no bar).
    colors
        A colour per group, in order.
    value_label, title
        The y-axis title and the figure title.
    height, margin
        Figure height (px) and margins (default: room for the legend and long category names).

    Returns
    -------
    go.Figure
        A ``plotly.express`` bar chart.
    """
    table = pd.DataFrame(
        [
            {"category": str(c), "group": name, "value": v}
            for name, vals in by_group.items()
            for c, v in zip(categories, vals, strict=False)
        ],
        columns=["category", "group", "value"],
    )
    fig = px.bar(
        table,
        x="category",
        y="value",
        color="group",
        barmode="group",
        color_discrete_sequence=list(colors),
        category_orders={"group": list(by_group), "category": [str(c) for c in categories]},
        labels={"category": "", "value": value_label, "group": ""},
    )
    return _chart_layout(
        fig,
        title=title,
        height=height,
        margin=margin or {"l": 10, "r": 10, "t": 70, "b": 80},
        legend=LEGEND_ABOVE,
    )


def laterality_figure(
    regions: Sequence[str],
    left: Sequence[float],
    right: Sequence[float],
    *,
    value_label: str = "mean salience",
    title: str = "Left vs right hemisphere",
) -> go.Figure:
    """Grouped bars: each region's value in the left and in the right hemisphere.

    Parameters
    ----------
    regions, left, right
        A value per region and hemisphere.
    value_label, title
        The y-axis title and the figure title.

    Returns
    -------
    go.Figure
        See :func:`grouped_bar_figure`.
    """
    return grouped_bar_figure(
        list(regions),
        {"left": list(left), "right": list(right)},
        colors=["#1f77b4", "#ff7f0e"],
        value_label=value_label,
        title=title,
    )


def epoch_comparison_figure(
    regions: Sequence[str],
    by_epoch: dict[str, Sequence[float]],
    *,
    value_label: str = "mean salience",
    title: str = "Salience per region, by epoch",
) -> go.Figure:
    """Grouped bars of a per-region value for several epochs (e.g. left vs right motion).

    Parameters
    ----------
    regions, by_epoch
        Epoch name -> a value per region.
    value_label, title
        The y-axis title and the figure title.

    Returns
    -------
    go.Figure
        See :func:`grouped_bar_figure`; each epoch in its :func:`epoch_color`.
    """
    return grouped_bar_figure(
        list(regions),
        by_epoch,
        colors=[epoch_color(name) for name in by_epoch],
        value_label=value_label,
        title=title,
    )


def training_curves_figure(
    histories: dict[str, Sequence[dict]], *, title: str = "Training curves"
) -> go.Figure:
    """Loss (and validation RMSE when recorded) per epoch for one or more runs.

    Parameters
    ----------
    histories
        Run name -> per-epoch dicts; keys used when present: ``epoch``, ``train_loss``,
        ``val_loss``, ``val_rmse`` (a key never recorded draws no line).
    title
        The figure title.

    Returns
    -------
    go.Figure
        A ``plotly.express`` line chart: a colour per run, a dash per quantity.
    """
    dashes = {"train_loss": "solid", "val_loss": "dash", "val_rmse": "dot"}
    rows, colors, line_dash = [], {}, {}
    for r, (run, hist) in enumerate(histories.items()):
        for key, dash in dashes.items():
            if all(h.get(key) is None for h in hist):
                continue
            name = f"{run}: {key}"
            colors[name], line_dash[name] = SEGMENT_COLORS[r % len(SEGMENT_COLORS)], dash
            rows += [
                {"series": name, "epoch": h.get("epoch", i + 1), "value": h.get(key)}
                for i, h in enumerate(hist)
            ]
    table = pd.DataFrame(rows, columns=["series", "epoch", "value"])
    fig = px.line(
        table,
        x="epoch",
        y="value",
        color="series",
        line_dash="series",
        markers=True,
        color_discrete_map=colors,
        line_dash_map=line_dash,
        labels={"epoch": "epoch", "value": "loss / RMSE", "series": ""},
    )
    return _chart_layout(fig, title=title, height=320, margin={"l": 10, "r": 10, "t": 40, "b": 40})


def metrics_bar_figure(
    channels: Sequence[str], by_model: dict[str, Sequence[float | None]], *, metric: str = "RMSE"
) -> go.Figure:
    """Grouped bars of a metric per behaviour channel for one or more models.

    Parameters
    ----------
    channels, by_model
        Model name -> the metric per channel.
    metric
        The y-axis title.

    Returns
    -------
    go.Figure
        See :func:`grouped_bar_figure`.
    """
    return grouped_bar_figure(
        list(channels),
        by_model,
        colors=[PREDICTED_COLOR, COMPARE_COLOR, "#2ca02c"],
        value_label=metric,
        height=300,
        margin={"l": 10, "r": 10, "t": 50, "b": 40},
    )


def rank_scatter_figure(
    a: np.ndarray, b: np.ndarray, *, label_a: str, label_b: str, rho: float | None = None
) -> go.Figure:
    """Scatter of two per-neuron salience maps (ranks), with their rank correlation in the title.

    Parameters
    ----------
    a, b
        (N,) salience per neuron of two maps.
    label_a, label_b
        Their names (axis titles).
    rho
        Their Spearman correlation, shown in the title when given.

    Returns
    -------
    go.Figure
        A ``plotly.express`` WebGL scatter of the ranks.
    """
    ra = np.argsort(np.argsort(np.asarray(a))).astype(np.float32)
    rb = np.argsort(np.argsort(np.asarray(b))).astype(np.float32)
    title = "Salience rank per neuron" + (f" — Spearman ρ = {rho:.3f}" if rho is not None else "")
    fig = px.scatter(
        x=ra,
        y=rb,
        render_mode="webgl",
        labels={"x": f"rank in {label_a}", "y": f"rank in {label_b}"},
    )
    fig.update_traces(marker={"size": 3, "opacity": 0.4})
    return _chart_layout(fig, title=title, height=360, margin={"l": 10, "r": 10, "t": 40, "b": 40})
