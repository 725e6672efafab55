"""The tail over time as an Apache ECharts option, for ``st.echarts_chart``: the Explore view's
first chart. It draws the same rows as :func:`dashboard.figures.tail_figure` (observed and
predicted behaviour per channel, epochs shaded and named, the salience rows of the top neurons
below), which stays the figure of the HTML export and of the comparison views.

Why a second engine: Streamlit's ECharts element loads a 1.2 MB bundle against Plotly's 4.7 MB and
draws in one task; in headless Chromium on 2 cores the same tail was on screen ~1.3 s sooner
(``bench/bench_chart_engines.py``), which is most of issue 11's first-chart goal.
Nothing here imports Streamlit: :class:`EChart` is a plain value, shown by
:func:`dashboard.context.echart`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from dashboard.figure_style import PRESENTATION_FONT, SALIENCE_COLORSCALE, TAIL_LINES, epoch_color
from dashboard.figures import (
    MAX_LABELLED_ROWS,
    EpochSpan,
    channel_rows,
    channel_titles,
    epochs_within,
    heat_row_labels,
)

__all__ = [
    "EChart",
    "tail_echart",
    "heat_columns",
    "ROW_PX",
    "PRESENTATION_FONT",
    "MAX_HEAT_COLUMNS",
]

#: Height of one behaviour row's plot area (px) and the gap under it.
ROW_PX, GAP_PX = 78, 14
#: Above the first row: the title, the legend and the epoch names; under the last: the time axis.
TOP_PX, BOTTOM_PX = 64, 46
#: Height of one salience row (px): every row labelled (9 px font).
HEAT_ROW_PX = 13
#: Most salience columns drawn: longer ranges show the largest value of each run of frames. A
#: cell is a canvas rectangle, and the whole demo recording (3,000 frames x 20 neurons) would be
#: 60,000 of them; up to the demo's test split (600 frames) every frame has its column.
MAX_HEAT_COLUMNS = 600


#: Box zoom on the time axis and reset (Streamlit's toolbar has the PNG download).
_TOOLBOX = {
    "right": 200,
    "top": 0,
    "itemSize": 13,
    "feature": {
        "dataZoom": {
            "yAxisIndex": "none",
            "title": {"zoom": "zoom a time range", "back": "undo zoom"},
        },
        "restore": {"title": "reset"},
    },
}


#: Every row's time range zoomed together: shift + wheel zooms, a drag pans (the wheel alone
#: scrolls the page, as over the other charts).
_ZOOM = {
    "type": "inside",
    "xAxisIndex": "all",
    "filterMode": "none",
    "zoomOnMouseWheel": "shift",
    "moveOnMouseWheel": False,
}


@dataclass(frozen=True, kw_only=True)
class EChart:
    """An ECharts chart to show: the option (JSON-compatible, data frames in ``dataset.source``),
    its height (px), and a sentence naming it for screen readers (``alt``), which also names the
    frames it shows (``"… 38 frames from 120.00 s to 138.50 s"``)."""

    option: dict
    height: int
    alt: str


def tail_echart(
    times_s: np.ndarray,
    observed: np.ndarray,
    predicted: np.ndarray | None,
    names: Sequence[str],
    *,
    units: Sequence[str] | None = None,
    channel: str = "all",
    epochs: Sequence[EpochSpan] = (),
    heatmap: np.ndarray | None = None,
    heatmap_labels: Sequence[str] = (),
    title: str = "",
    font_scale: float = 1.0,
) -> EChart:
    """Observed (and predicted) behaviour over time, epochs shaded, salience rows below; every
    row on one time range, zoomed and panned together (shift + wheel, drag; the toolbox zooms a
    time range and resets; Streamlit's own toolbar saves a PNG and shows the data).

    Parameters
    ----------
    times_s, observed, predicted
        (T,) time of each frame (s); (T, K) behaviour, predicted optional.
    names, units
        The K channel names and units (default ``rad``).
    channel
        ``"all"`` (one row per channel), ``"sum"`` (sum of channels) or a channel index.
    epochs, title
        Epochs to shade and name; the chart's title.
    heatmap, heatmap_labels
        (T, k) salience over time of k neurons (the first row on top) and their labels.
    font_scale
        Every font size times this (presentation mode: :data:`PRESENTATION_FONT`).

    Returns
    -------
    EChart
        The option, its height and its description.
    """
    observed = np.asarray(observed, dtype=np.float32)
    t = np.round(np.asarray(times_s, dtype=np.float64), 4)
    k = observed.shape[1]
    titles = channel_titles(names, list(units)[:k] if units else ["rad"] * k, channel)
    heat_t, heat = heat_columns(t, heatmap)
    labels = list(heatmap_labels)
    if heat is not None:
        labels = heat_row_labels(labels, heat.shape[1])
    rows = _Rows(
        n_beh=len(titles),
        n_heat=None if heat is None else len(labels),
        scale=font_scale,
        left=_left_px(labels, font_scale),
    )
    lines = {
        "observed": channel_rows(observed, channel),
        "predicted": channel_rows(predicted, channel),
    }
    series = _line_series(lines, len(titles), _mark_areas(epochs, t, font_scale))
    option = {
        "animation": False,
        **_heading(title, [n for n, got in lines.items() if got is not None], font_scale),
        "grid": rows.grids(),
        "xAxis": rows.x_axes(t, heat_t, titles),
        "yAxis": rows.y_axes(titles, labels),
        "dataset": [{"source": _line_frame(t, lines)}],
        "series": series,
        # a row's tooltip holds that row alone (linked rows would come in an order of ECharts'
        # own, the pointed row last), as in the exported figure
        "tooltip": {"confine": True},
        "dataZoom": [_ZOOM],
        "toolbox": _TOOLBOX,
    }
    if heat is not None and len(t):
        _add_heatmap(option, heat, heat_t, labels, rows, runs=len(t) > len(heat_t))
    alt = f"{title or 'Tail angles'}: {len(t)} frames"
    if len(t):
        alt += f" from {t[0]:.2f} s to {t[-1]:.2f} s"
    return EChart(option=option, height=rows.height, alt=alt)


def _heading(title: str, legend: list[str], scale: float) -> dict:
    """The title at the top left, the legend (one entry per series) at the top right."""
    return {
        "title": {
            "text": title,
            "left": 0,
            "top": 4,
            "textStyle": {"fontSize": round(14 * scale)},
        },
        "legend": {
            "data": legend,
            "right": 10,
            "top": 0,
            "textStyle": {"fontSize": round(12 * scale)},
        },
    }


def _line_frame(t: np.ndarray, lines: dict[str, list | None]) -> pd.DataFrame:
    """The lines' data, one column per series and row (``"observed 0"``…), and the time ``t``
    (sent to the browser as Arrow)."""
    columns = {
        f"{name} {i}": v
        for name, got in lines.items()
        if got is not None
        for i, v in enumerate(got)
    }
    return pd.DataFrame({"t": t} | columns)


@dataclass(frozen=True, kw_only=True)
class _Rows:
    """Where each row goes (px from the top): behaviour rows, then the salience rows."""

    n_beh: int
    n_heat: int | None
    scale: float
    left: int

    def _font(self, px: float) -> int:
        return round(px * self.scale)

    @property
    def row_px(self) -> int:
        return round(ROW_PX * (1.4 if self.n_beh == 1 else 1.0) * max(1.0, self.scale * 0.8))

    @property
    def heat_px(self) -> int:
        return max(120, HEAT_ROW_PX * min(self.n_heat or 0, MAX_LABELLED_ROWS))

    def tops(self) -> list[int]:
        top = round(TOP_PX * self.scale)
        out = [top + i * (self.row_px + GAP_PX) for i in range(self.n_beh)]
        if self.n_heat is not None:
            out.append(top + self.n_beh * (self.row_px + GAP_PX) + GAP_PX)
        return out

    @property
    def height(self) -> int:
        last = self.heat_px if self.n_heat is not None else self.row_px
        return self.tops()[-1] + last + round(BOTTOM_PX * self.scale)

    def grids(self) -> list[dict]:
        heights = [self.row_px] * self.n_beh + ([self.heat_px] if self.n_heat is not None else [])
        tip = [{"trigger": "axis"}] * self.n_beh + [{"trigger": "item"}]
        return [
            {"top": top, "height": h, "left": self.left, "right": 90, "tooltip": tip[i]}
            for i, (top, h) in enumerate(zip(self.tops(), heights, strict=True))
        ]

    def x_axes(self, t: np.ndarray, heat_t: np.ndarray, titles: list[str]) -> list[dict]:
        """Value axes in seconds (the last behaviour row labelled unless salience rows follow),
        then a category axis of the salience columns (first frames' times ``heat_t``) under the
        salience rows (ECharts' heatmaps need one; the shared zoom is in percent of the range, so
        the rows stay aligned). A row's tooltip is headed by its title (``titles``) and the time
        pointed at."""
        lo, hi = (float(t[0]), float(t[-1])) if len(t) else (0.0, 1.0)
        last = self.n_beh - 1 if self.n_heat is None else self.n_beh
        label = {"fontSize": self._font(11)}
        axes = [
            {
                "type": "value",
                "gridIndex": i,
                "min": lo,
                "max": hi,
                # the range's ends are not round numbers: no label of their own
                "axisLabel": label
                | {"show": i == last, "showMinLabel": False, "showMaxLabel": False},
                "splitLine": {"show": False},
                "axisPointer": {"label": {"formatter": f"{title} · {{value}} s", "precision": 2}},
            }
            for i, title in enumerate(titles)
        ]
        if self.n_heat is not None:
            columns = [f"{v:.1f}" for v in heat_t]
            # ~10 labels, every how many columns decided here: ECharts' own choice measures every
            # label's text (~55 ms of the first draw for the test split's 600)
            every = {"interval": max(0, -(-len(columns) // 10) - 1)}
            axes.append(
                {
                    "type": "category",
                    "gridIndex": self.n_beh,
                    "data": columns,
                    "axisLabel": label | every,
                    "axisTick": every,
                }
            )
        axes[last] |= {
            "name": "time (s)",
            "nameLocation": "middle",
            "nameGap": self._font(26),
            "nameTextStyle": {"fontSize": self._font(11)},
        }
        return axes

    def y_axes(self, titles: list[str], heat_labels: list[str]) -> list[dict]:
        name = {
            "nameLocation": "middle",
            "nameRotate": 90,
            "nameTextStyle": {"fontSize": self._font(10)},
        }
        axes = [
            {
                "type": "value",
                "gridIndex": i,
                "scale": True,
                "splitNumber": 2,
                "name": title,
                "nameGap": self._font(40),
                "axisLabel": {"fontSize": self._font(10)},
            }
            | name
            for i, title in enumerate(titles)
        ]
        if self.n_heat is not None:
            every = 0 if self.n_heat <= MAX_LABELLED_ROWS else "auto"  # 0: every row labelled
            axes.append(
                {
                    "type": "category",
                    "gridIndex": self.n_beh,
                    "data": heat_labels,
                    "inverse": True,
                    "name": "top neurons",
                    "nameGap": self.left - self._font(12),
                    "axisLabel": {"fontSize": self._font(9), "interval": every},
                }
                | name
            )
        return axes


def _left_px(heat_labels: Sequence[str], scale: float) -> int:
    """The left margin: the widest salience-row label (9 px font, ~6 px a character) and room
    for the axis name."""
    widest = max((len(s) for s in heat_labels), default=0)
    return round(max(64.0, 6 * widest + 30) * scale)


def _line_series(lines: dict[str, list | None], n_rows: int, areas: dict) -> list[dict]:
    """A line per channel row and series (legend names shared, so one click hides a series in
    every row); the epochs shaded under the observed line of each row (named in the first)."""
    out = []
    for name, got in lines.items():
        if got is None:
            continue
        color, width = TAIL_LINES[name]["color"], TAIL_LINES[name]["width"]
        for i in range(n_rows):
            s = {
                "type": "line",
                "name": name,
                "datasetIndex": 0,
                "xAxisIndex": i,
                "yAxisIndex": i,
                "encode": {"x": "t", "y": f"{name} {i}"},
                "showSymbol": False,
                "symbol": "none",
                "color": color,
                "lineStyle": {"width": width, "color": color},
                "tooltip": {"valueFormatter": "%.4f"},  # radians: 0.1 mrad
            }
            if name == "observed" and areas["data"]:
                s["markArea"] = areas if i == 0 else areas | {"label": {"show": False}}
            out.append(s)
    return out


def _mark_areas(epochs: Sequence[EpochSpan], t: np.ndarray, scale: float) -> dict:
    """The epochs within ``t`` as ECharts mark areas, each in its epoch's colour, named above."""
    data = []
    if len(t):
        for name, a, b in epochs_within(epochs, float(t[0]), float(t[-1])):
            color = epoch_color(name)
            data.append(
                [
                    {
                        "xAxis": a,
                        "name": name,
                        "itemStyle": {"color": color, "opacity": 0.13},
                        "label": {"color": color},
                    },
                    {"xAxis": b},
                ]
            )
    label = {"show": True, "position": "top", "fontSize": round(10 * scale), "distance": 2}
    return {"silent": True, "data": data, "label": label}


def heat_columns(t: np.ndarray, heat: np.ndarray | None) -> tuple[np.ndarray, np.ndarray | None]:
    """The salience columns drawn: one per frame up to :data:`MAX_HEAT_COLUMNS`, else one per run
    of ``ceil(T / MAX_HEAT_COLUMNS)`` frames holding the run's largest value (so a peak is never
    averaged away).

    Parameters
    ----------
    t
        (T,) time of each frame (s).
    heat
        (T, k) salience, or ``None`` (the times alone).

    Returns
    -------
    tuple
        (C,) time of each column's first frame (s) and (C, k) float32 values (``None`` without
        ``heat``).
    """
    run = max(1, -(-len(t) // MAX_HEAT_COLUMNS))
    starts = np.arange(0, len(t), run)
    if heat is None:
        return t[starts], None
    heat = np.asarray(heat, dtype=np.float32)
    if not len(starts):  # no frames (reduceat needs at least one index)
        return t[starts], heat[:0]
    return t[starts], np.maximum.reduceat(heat, starts, axis=0)


def _add_heatmap(
    option: dict,
    heat: np.ndarray,
    heat_t: np.ndarray,
    labels: list[str],
    rows: _Rows,
    *,
    runs: bool,
) -> None:
    """The salience rows: a heatmap on the columns (x, :func:`heat_columns`) and neurons (y),
    Inferno from 0 (darkest: least salient) to the largest value shown; its colour bar on the
    right. One cell a row of a data frame (sent as Arrow: ~11 bytes a cell, the neuron's label
    once). A cell's tooltip names its neuron, its time (``"from (s)"``: the first frame's, when
    ``runs``: a column holds a run of frames) and its value."""
    n_t, n_k = heat.shape
    when = "from (s)" if runs else "time (s)"
    cells = pd.DataFrame(
        {
            "frame": np.repeat(np.arange(n_t, dtype=np.int16), n_k),
            "neuron": pd.Categorical.from_codes(np.tile(np.arange(n_k), n_t), categories=labels),
            "salience": heat.reshape(-1),
            when: np.repeat(np.asarray(heat_t, dtype=np.float32), n_k),
        }
    )
    option["dataset"].append({"source": cells})
    grid = len(option["grid"]) - 1
    option["series"].append(
        {
            "type": "heatmap",
            "name": "salience",
            "datasetIndex": 1,
            "xAxisIndex": grid,
            "yAxisIndex": grid,
            "encode": {
                "x": "frame",
                "y": "neuron",
                "value": "salience",
                "itemName": "neuron",
                "tooltip": [when, "salience"],
            },
            # 5 significant digits: a frame's time to 0.1 s up to 2.7 hours, salience to 5 digits
            "tooltip": {"valueFormatter": "%.5g"},
            "progressive": 0,
        }
    )
    top = rows.tops()[-1]
    option["visualMap"] = {
        "type": "continuous",
        "seriesIndex": len(option["series"]) - 1,
        "dimension": "salience",
        "min": 0.0,
        "max": float(np.nanmax(heat)) if heat.size else 1.0,
        "inRange": {"color": [c for _, c in SALIENCE_COLORSCALE]},
        "calculable": False,
        "orient": "vertical",
        "right": 8,
        "top": top,
        "itemHeight": max(60, rows.heat_px - 40),
        "text": ["salience", ""],
        "textStyle": {"fontSize": round(10 * rows.scale)},
        "precision": 3,
    }
