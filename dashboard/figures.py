"""Plotly figures of the dashboard: the tail over time and the 3D brain. Every function returns a
``go.Figure`` and never shows it.

Inputs are plain arrays and small value objects so the figures can be built (and tested) without
Streamlit. Coordinates follow the atlas convention of ``docs/ARCHITECTURE.md``: x left→right,
y rostral→caudal, z dorsal→ventral, micrometres. The simple charts (:mod:`dashboard.charts`) and
the style (:mod:`dashboard.figure_style`) are modules of their own; their names are importable
from here too, so views need one import.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from dashboard.charts import (
    epoch_comparison_figure,
    grouped_bar_figure,
    laterality_figure,
    metrics_bar_figure,
    rank_scatter_figure,
    region_bar_figure,
    training_curves_figure,
)
from dashboard.figure_style import (
    COMPARE_COLOR,
    EPOCH_COLORS,
    LEGEND_ABOVE,
    OBSERVED_COLOR,
    PREDICTED_COLOR,
    PRESENTATION_HEIGHT,
    SALIENCE_COLORSCALE,
    SEGMENT_COLORS,
    TAIL_LINES,
    apply_presentation,
    automargins,
    epoch_color,
)

__all__ = [
    "EpochSpan",
    "MeshSpec",
    "MESH_LIGHTING",
    "brain_mesh_trace",
    "epoch_color",
    "select_points",
    "tail_figure",
    "brain_figure",
    "CAMERAS",
    "view_axes",
    "camera_for",
    "SALIENCE_COLORSCALE",
    "region_bar_figure",
    "grouped_bar_figure",
    "laterality_figure",
    "epoch_comparison_figure",
    "training_curves_figure",
    "metrics_bar_figure",
    "rank_scatter_figure",
    "apply_presentation",
    "EPOCH_COLORS",
    "SEGMENT_COLORS",
    "LEGEND_ABOVE",
    "OBSERVED_COLOR",
    "PREDICTED_COLOR",
    "COMPARE_COLOR",
    "PRESENTATION_HEIGHT",
    "heat_row_labels",
]

#: Up to this many heatmap rows, every row is labelled (Plotly would skip every other one).
MAX_LABELLED_ROWS = 60
#: Most line points (frames x lines) the tail figure draws as SVG; longer ranges use WebGL.
SVG_MAX_POINTS = 40_000


# Standard views. Data: x left→right, y rostral→caudal, z dorsal→ventral (right-handed). The scene
# reverses y and z (two reversals = a half turn about x, so no view is a mirror image); eyes and up
# vectors are in scene coordinates, where +z is dorsal and +y rostral. With the "turntable" drag
# mode scene +z stays up while you rotate, so dorsal is always at the top (the z ticks read 0 at the
# top). Checked in Chromium: dorsal = from above, rostral at the top, the fish's right on the right;
# lateral = from the right, rostral to the right; frontal = facing the fish (its left on the right).
# (Reversing z alone with up = -z drew the brain upside down and mirrored.)
CAMERAS: dict[str, dict] = {
    "dorsal": {"eye": {"x": 0, "y": 0.0001, "z": 3.8}, "up": {"x": 0, "y": 1, "z": 0}},
    "lateral": {"eye": {"x": 3.0, "y": 0, "z": 0}, "up": {"x": 0, "y": 0, "z": 1}},
    "frontal": {"eye": {"x": 0, "y": 2.4, "z": 0}, "up": {"x": 0, "y": 0, "z": 1}},
    "oblique": {
        "eye": {"x": 1.4, "y": 1.75, "z": 1.2},
        "up": {"x": 0, "y": 0, "z": 1},
        "center": {"x": 0, "y": 0, "z": -0.3},
    },
}
#: The axis a standard view looks along: drawn end-on its ticks would pile up on one spot (and
#: its title run off the figure), so that view hides them.
END_ON = {"dorsal": "z", "lateral": "x", "frontal": "y"}
AXIS_TITLES = {
    "x": "x: left → right (µm)",
    "y": "y: rostral → caudal (µm)",
    "z": "z: dorsal → ventral (µm)",
}
#: Titles of small brains (side by side), where the long ones would run off the figure.
SHORT_AXIS_TITLES = {"x": "x (µm)", "y": "y (µm)", "z": "z (µm)"}


#: How much further out the camera of a compact brain is.
COMPACT_ZOOM = 1.3


def camera_for(view: str, compact: bool = False) -> dict:
    """The camera of a standard view.

    Parameters
    ----------
    view
        A key of :data:`CAMERAS`.
    compact
        A small figure: the eye :data:`COMPACT_ZOOM` further out.

    Returns
    -------
    dict
        Plotly's ``scene.camera`` (eye, up, centre).
    """
    cam = CAMERAS[view]
    if not compact:
        return cam
    return {**cam, "eye": {a: v * COMPACT_ZOOM for a, v in cam["eye"].items()}}


def view_axes(view: str, *, short: bool = False) -> dict[str, object]:
    """Relayout of the scene axes for a standard view: all shown but the one looked along.

    Parameters
    ----------
    view
        A key of :data:`CAMERAS`.
    short
        Short axis titles (``"x (µm)"``), for small figures.

    Returns
    -------
    dict
        ``{"scene.xaxis.showticklabels": ..., "scene.xaxis.title.text": ..., ...}``.
    """
    out: dict[str, object] = {}
    for a, title in (SHORT_AXIS_TITLES if short else AXIS_TITLES).items():
        shown = END_ON.get(view) != a
        out[f"scene.{a}axis.showticklabels"] = shown
        out[f"scene.{a}axis.title.text"] = title if shown else ""
    return out


@dataclass(frozen=True)
class EpochSpan:
    """An epoch to shade, in seconds."""

    name: str
    t0: float
    t1: float


@dataclass(frozen=True)
class MeshSpec:
    """A surface to draw: a region (or the outline) as vertices (V, 3) µm and faces (F, 3)."""

    name: str
    color: str
    vertices: np.ndarray
    faces: np.ndarray
    opacity: float = 0.12


#: Lighting of the brain's surfaces: mostly ambient, so the translucent shells read as outlines.
MESH_LIGHTING = {"ambient": 0.7, "diffuse": 0.4}


def brain_mesh_trace(
    mesh: MeshSpec,
    *,
    color: str | None = None,
    opacity: float | None = None,
    name: str | None = None,
    lighting: dict[str, float] | None = None,
) -> go.Mesh3d:
    """One surface of the brain (a region or the outline) as a flat-shaded ``go.Mesh3d``.

    Parameters
    ----------
    mesh
        The surface: vertices (V, 3) µm and faces (F, 3).
    color, opacity, name
        Override the mesh's own colour, opacity and name (the name is what hover shows).
    lighting
        Plotly lighting of the surface, e.g. :data:`MESH_LIGHTING`; ``None``: Plotly's default.

    Returns
    -------
    go.Mesh3d
        Vertices as float32 and faces as int32 (compact binary); no legend entry.
    """
    v, f = np.asarray(mesh.vertices, np.float32), np.asarray(mesh.faces, np.int32)
    return go.Mesh3d(
        x=v[:, 0],
        y=v[:, 1],
        z=v[:, 2],
        i=f[:, 0],
        j=f[:, 1],
        k=f[:, 2],
        color=mesh.color if color is None else color,
        opacity=mesh.opacity if opacity is None else opacity,
        name=mesh.name if name is None else name,
        hoverinfo="name",
        showlegend=False,
        flatshading=True,
        **({} if lighting is None else {"lighting": lighting}),
    )


def epochs_within(
    epochs: Sequence[EpochSpan], t0: float, t1: float
) -> list[tuple[str, float, float]]:
    """The epochs that overlap ``[t0, t1]`` (s), clipped to it: ``(name, start, stop)``."""
    out = []
    for ep in epochs:
        a, b = max(ep.t0, t0), min(ep.t1, t1)
        if b > a:
            out.append((ep.name, a, b))
    return out


def _shade_epochs(fig: go.Figure, epochs: Sequence[EpochSpan], t0: float, t1: float) -> None:
    """Shade each epoch over every row and name it above the plot: one rectangle per epoch, the
    plot's whole height (the rows share one x axis), built as plain layout entries in one go.
    ``add_vrect(row="all")`` took about a second per epoch (it scans every subplot's data), and a
    rectangle per row (140 for the demo's test split) cost the browser's first draw ~0.2 s."""
    shapes, labels = [], []
    for name, a, b in epochs_within(epochs, t0, t1):
        color = epoch_color(name)
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": a,
                "x1": b,
                "y0": 0,
                "y1": 1,
                "fillcolor": color,
                "opacity": 0.13,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        labels.append(  # at the top of the figure (paper coordinates: drawn once)
            {
                "x": (a + b) / 2,
                "y": 1.0,
                "xref": "x",
                "yref": "paper",
                "yanchor": "bottom",
                "text": name,
                "showarrow": False,
                "font": {"size": 10, "color": color},
            }
        )
    fig.update_layout(
        shapes=[*fig.layout.shapes, *shapes], annotations=[*fig.layout.annotations, *labels]
    )


def channel_rows(arr: np.ndarray | None, channel: str) -> list[np.ndarray] | None:
    """The rows a (T, K) array is drawn as: every channel, their sum, or one channel."""
    if arr is None:
        return None
    arr = np.asarray(arr, dtype=np.float32)
    if channel == "all":
        return [arr[:, k] for k in range(arr.shape[1])]
    if channel == "sum":
        return [arr.sum(axis=1)]
    return [arr[:, int(channel)]]


def channel_titles(names: Sequence[str], units: Sequence[str], channel: str) -> list[str]:
    """The y-axis title of each behaviour row, ``"name (unit)"`` (``units``: one per channel)."""
    if channel == "all":
        pairs = [(str(names[k]), units[k]) for k in range(len(units))]
    elif channel == "sum":
        pairs = [("sum of channels", units[0])]
    else:
        pairs = [(str(names[int(channel)]), units[int(channel)])]
    return [f"{name} ({unit})" for name, unit in pairs]


@dataclass(frozen=True, kw_only=True)
class _TailRows:
    """The rows of a tail figure: behaviour rows, then an optional ΔF/F row and heatmap row."""

    n_beh: int
    trace: bool
    n_heat: int | None  # heatmap neurons; None: no heatmap row

    @property
    def extra(self) -> list[str]:
        return [r for r, on in (("trace", self.trace), ("heat", self.n_heat is not None)) if on]

    @property
    def n_rows(self) -> int:
        return self.n_beh + len(self.extra)

    @property
    def heat_px(self) -> int:
        """Height of the heatmap row: every row labelled (9 px font) up to the limit."""
        return max(200, 13 * min(self.n_heat or 0, MAX_LABELLED_ROWS))

    def grid(self) -> go.Figure:
        """The empty figure: one column of rows sharing the x axis."""
        beh_h = 1.0 if self.n_beh == 1 else 0.55
        heights = [beh_h] * self.n_beh + [
            0.9 if r == "trace" else 1.6 * self.heat_px / 200 for r in self.extra
        ]
        return make_subplots(
            rows=self.n_rows,
            cols=1,
            shared_xaxes=True,
            vertical_spacing=0.025 if self.n_rows > 3 else 0.06,
            row_heights=heights,
        )

    @property
    def height(self) -> int:
        extra = sum(110 if r == "trace" else self.heat_px for r in self.extra)
        return min(1200, 190 + 95 * self.n_beh + extra)

    def layout(self, title: str) -> dict:
        """The figure's layout: title, height, the legend above the plot, unified hover."""
        return {
            "title": {"text": title, "x": 0, "y": 0.985, "yanchor": "top", "font": {"size": 14}}
            if title
            else None,
            "height": self.height,
            "margin": {"l": 60, "r": 20, "t": 80, "b": 40},
            "legend": LEGEND_ABOVE,  # the epoch names sit just below it, above the plot area
            "hovermode": "x unified",
            "uirevision": "tail",
        }


def _add_line_rows(
    fig: go.Figure,
    t: np.ndarray,
    series: list[tuple[list[np.ndarray] | None, str, str, dict]],
    titles: list[str],
    line_trace: type,
) -> None:
    """One row per behaviour row; in each, a line per series (observed, predicted, compared)."""
    for i, title in enumerate(titles):
        for rows, name, group, line in series:
            if rows is None:
                continue
            fig.add_trace(
                line_trace(
                    x=t,
                    y=rows[i],
                    name=name,
                    legendgroup=group,
                    showlegend=i == 0,
                    line=line,
                    mode="lines",
                ),
                row=i + 1,
                col=1,
            )
        fig.update_yaxes(title_text=title, title_font={"size": 10}, row=i + 1, col=1)


def _add_trace_row(
    fig: go.Figure, t: np.ndarray, trace: np.ndarray, label: str, row: int, line_trace: type
) -> None:
    """A ΔF/F row (one neuron's activity)."""
    fig.add_trace(
        line_trace(
            x=t,
            y=np.asarray(trace, np.float32),
            name=label or "ΔF/F",
            line={"color": "#2ca02c", "width": 1.2},
            mode="lines",
        ),
        row=row,
        col=1,
    )
    fig.update_yaxes(title_text=label or "ΔF/F", title_font={"size": 10}, row=row, col=1)


def heat_row_labels(given: Sequence[str], n_rows: int) -> list[str]:
    """The labels of ``n_rows`` salience rows: ``given`` (or the rows' numbers when none are
    given), each numbered when two are the same (a category axis finds a row by its label, so
    two rows of one label would be drawn as one)."""
    labels = [str(s) for s in given] or [str(i) for i in range(n_rows)]
    if len(labels) != n_rows:
        raise ValueError(
            f"expected {n_rows} salience row labels (one per row), found {len(labels)}"
        )
    if len(set(labels)) < len(labels):
        labels = [f"{i + 1}. {s}" for i, s in enumerate(labels)]
    return labels


def _add_heatmap_row(
    fig: go.Figure, t: np.ndarray, heatmap: np.ndarray, labels: Sequence[str], row: int
) -> None:
    """A salience-over-time row: one line per neuron, every line labelled up to the limit."""
    hm = np.asarray(heatmap, dtype=np.float32)
    names = heat_row_labels(labels, hm.shape[1]) if labels else list(range(hm.shape[1]))
    fig.add_trace(
        go.Heatmap(
            x=t,
            y=names,
            z=hm.T,
            colorscale=SALIENCE_COLORSCALE,
            colorbar={"title": "salience", "len": 0.3, "y": 0.15},
            name="salience",
            hovertemplate="t=%{x:.1f}s<br>%{y}<br>%{z:.3g}<extra></extra>",
        ),
        row=row,
        col=1,
    )
    every = {"tickmode": "array", "tickvals": names, "ticktext": [str(v) for v in names]}
    fig.update_yaxes(
        title_text="top neurons",
        title_font={"size": 10},
        type="category",
        tickfont={"size": 9},
        **(every if len(names) <= MAX_LABELLED_ROWS else {}),
        row=row,
        col=1,
    )


def tail_figure(
    times_s: np.ndarray,
    observed: np.ndarray,
    predicted: np.ndarray | None,
    names: Sequence[str],
    *,
    units: Sequence[str] | None = None,
    channel: str = "all",
    epochs: Sequence[EpochSpan] = (),
    compare: np.ndarray | None = None,
    labels: tuple[str, str, str] = ("observed", "predicted", "compared"),
    heatmap: np.ndarray | None = None,
    heatmap_labels: Sequence[str] = (),
    trace: np.ndarray | None = None,
    trace_label: str = "",
    title: str = "",
) -> go.Figure:
    """Observed (and predicted) behaviour over time, epochs shaded, with optional rows below;
    all rows share the x axis, so zoom and pan move them together.

    Parameters
    ----------
    times_s, observed, predicted, compare
        (T,) time of each frame (s); (T, K) behaviour, the last two optional overlays.
    names, units
        The K channel names and units (default ``rad``).
    channel
        ``"all"`` (one row per channel), ``"sum"`` (sum of channels) or a channel index.
    epochs, labels, title
        Epochs to shade and name; legend names of observed, predicted, compared; the title.
    heatmap, heatmap_labels, trace, trace_label
        (T, k) salience over time (one line per neuron) for a row below, and its line labels;
        (T,) one neuron's ΔF/F for a row below, and its name.

    Returns
    -------
    go.Figure
        SVG lines (WebGL beyond :data:`SVG_MAX_POINTS`).
    """
    observed = np.asarray(observed, dtype=np.float32)
    K = observed.shape[1]
    units = list(units)[:K] if units else ["rad"] * K
    titles = channel_titles(names, units, channel)
    obs_rows, pred_rows, cmp_rows = (
        channel_rows(a, channel) for a in (observed, predicted, compare)
    )
    layout = _TailRows(
        n_beh=len(titles),
        trace=trace is not None,
        n_heat=None if heatmap is None else int(np.asarray(heatmap).shape[1]),
    )
    fig = layout.grid()
    t = np.asarray(times_s, dtype=np.float64)
    n_series = sum(r is not None for r in (obs_rows, pred_rows, cmp_rows))
    n_lines = layout.n_beh * n_series + (trace is not None)
    line_trace = _line_trace(len(t) * n_lines)
    series = [
        (obs_rows, labels[0], "obs", TAIL_LINES["observed"]),
        (pred_rows, labels[1], "pred", TAIL_LINES["predicted"]),
        (cmp_rows, labels[2], "cmp", {"color": COMPARE_COLOR, "width": 1.2, "dash": "dot"}),
    ]
    _add_line_rows(fig, t, series, titles, line_trace)
    row = layout.n_beh
    if trace is not None:
        row += 1
        _add_trace_row(fig, t, trace, trace_label, row, line_trace)
    if heatmap is not None:
        _add_heatmap_row(fig, t, heatmap, heatmap_labels, row + 1)
    if len(t):
        _shade_epochs(fig, epochs, float(t[0]), float(t[-1]))
    fig.update_xaxes(title_text="time (s)", row=layout.n_rows, col=1)
    fig.update_layout(layout.layout(title))
    automargins(fig)
    return fig


def _line_trace(n_points: int) -> type:
    """SVG lines draw at once (a WebGL context costs seconds in a software-rendered browser);
    only very long ranges (more than :data:`SVG_MAX_POINTS` points) fall back to WebGL."""
    return go.Scatter if n_points <= SVG_MAX_POINTS else go.Scattergl


def select_points(
    values: np.ndarray | None, n: int, max_points: int, *, seed: int = 0
) -> np.ndarray:
    """Indices of at most ``max_points`` of ``n`` neurons to draw.

    With values, the most salient half of the budget is always kept and the rest is a random sample
    of the others (decimating unsalient points); without values, a random sample.

    Parameters
    ----------
    values
        (n,) salience (NaN counts as least salient), or ``None``.
    n, max_points
        How many neurons there are and how many may be drawn.
    seed
        Seed of the random sample (the same points on every rerun).

    Returns
    -------
    np.ndarray
        Sorted indices, all of them when ``n <= max_points``.
    """
    if n <= max_points:
        return np.arange(n)
    rng = np.random.default_rng(seed)
    if values is None:
        return np.sort(rng.choice(n, size=max_points, replace=False))
    vals = np.nan_to_num(np.asarray(values, dtype=np.float64), nan=-np.inf)
    n_top = max_points // 2
    order = np.argsort(-vals, kind="stable")
    top = order[:n_top]
    rest = rng.choice(order[n_top:], size=max_points - n_top, replace=False)
    return np.sort(np.concatenate([top, rest]))


@dataclass(frozen=True, kw_only=True)
class _Neurons:
    """The neurons of a brain figure, as drawn: float32 positions, ids, regions, values."""

    pos: np.ndarray  # (N, 3) float32 µm
    ids: np.ndarray  # (N,) float64 (sent as numbers)
    reg: np.ndarray  # (N,) str region acronyms ("" unknown)
    vals: np.ndarray | None  # (N,) float32 colour values, or None (colour by region)
    point_size: float
    value_label: str
    region_colors: dict[str, str]

    def marker_traces(self, idx: np.ndarray, *, faint: bool) -> list[go.Scatter3d]:
        """One trace per region: hover names the region without sending a string per point."""
        if len(idx) == 0:
            return []
        names = [""] if faint else list(dict.fromkeys(self.reg[idx]))
        return [
            self._trace(idx if faint else idx[self.reg[idx] == name], name, faint) for name in names
        ]

    def _trace(self, sub: np.ndarray, name: str, faint: bool) -> go.Scatter3d:
        marker: dict = {
            "size": self.point_size * (0.6 if faint else 1.0),
            "opacity": 0.25 if faint else 0.9,
        }
        if faint:
            marker["color"] = "#aaaaaa"
            custom = self.ids[sub, None]
            hover = "neuron %{customdata[0]}<extra>below filter</extra>"
        elif self.vals is None:
            marker["color"] = self.region_colors.get(name, "#1f77b4")
            custom = self.ids[sub, None]
            hover = f"neuron %{{customdata[0]}}<br>{name}<extra></extra>"
        else:
            marker.update(color=self.vals[sub], coloraxis="coloraxis")
            custom = np.stack([self.ids[sub], self.vals[sub].astype(np.float64)], axis=1)
            hover = (
                f"neuron %{{customdata[0]}}<br>{name}<br>{self.value_label} "
                "%{customdata[1]:.3g}<extra></extra>"
            )
        return go.Scatter3d(
            x=self.pos[sub, 0],
            y=self.pos[sub, 1],
            z=self.pos[sub, 2],
            mode="markers",
            name="other neurons" if faint else (name or "neurons"),
            marker=marker,
            customdata=custom,
            hovertemplate=hover,
            showlegend=False,
        )

    def highlight_trace(self, i: int) -> go.Scatter3d:
        """The picked neuron: a large cyan marker named by its id."""
        return go.Scatter3d(
            x=self.pos[[i], 0],
            y=self.pos[[i], 1],
            z=self.pos[[i], 2],
            mode="markers+text",
            text=[f"neuron {int(self.ids[i])}"],
            name="picked",
            marker={"size": 9, "color": "#00e5ff", "line": {"width": 2, "color": "black"}},
            showlegend=False,
        )


def _drawn(
    mask: np.ndarray, vals: np.ndarray | None, max_points: int
) -> tuple[np.ndarray, np.ndarray]:
    """(shown, faint) indices to send: the filter's neurons decimated to ``max_points`` (the most
    salient kept), then at most half the remaining budget (and 15,000) of the others."""
    shown = np.flatnonzero(mask)
    hidden = np.flatnonzero(~mask)
    keep_shown = shown[select_points(None if vals is None else vals[shown], len(shown), max_points)]
    budget_hidden = max(0, min(len(hidden), (max_points - len(keep_shown)) // 2, 15_000))
    keep_hidden = (
        hidden[select_points(None, len(hidden), budget_hidden)]
        if budget_hidden
        else np.zeros(0, np.int64)
    )
    return keep_shown, keep_hidden


def _view_buttons(compact: bool) -> list[dict]:
    """A button per standard view (the oblique one is *reset*): camera and axes together."""

    def button(label: str, view: str) -> dict:
        return {
            "label": label,
            "method": "relayout",
            "args": [{"scene.camera": camera_for(view, compact), **view_axes(view, short=compact)}],
        }

    return [button(name, name) for name in CAMERAS if name != "oblique"] + [
        button("reset", "oblique")
    ]


def _scene(view: str, compact: bool) -> dict:
    """The 3D scene: y and z reversed (see :data:`CAMERAS`), the looked-along axis unlabelled."""
    shown = {a: END_ON.get(view) != a for a in AXIS_TITLES}
    return {
        **{
            f"{a}axis": {
                "title": {"text": t if shown[a] else ""},
                "showticklabels": shown[a],
                "showbackground": False,
                **({"autorange": "reversed"} if a != "x" else {}),
            }
            for a, t in (SHORT_AXIS_TITLES if compact else AXIS_TITLES).items()
        },
        "aspectmode": "data",
        "dragmode": "turntable",
        "camera": camera_for(view, compact),
    }


def _color_axis(
    vals: np.ndarray, value_range: tuple[float, float] | None, colorscale: str | list, label: str
) -> dict:
    """The shared colour axis of the neurons: ``value_range`` or the values' min–max."""
    lo, hi = value_range or (float(np.nanmin(vals)), float(np.nanmax(vals)))
    return {
        "colorscale": colorscale,
        "cmin": lo,
        "cmax": hi if hi > lo else lo + 1e-12,
        "colorbar": {"title": label, "len": 0.6},
    }


def _brain_layout(*, title: str, height: int, camera: str, compact: bool) -> dict:
    """The brain's layout: title, height, the scene seen from ``camera`` and the view buttons."""
    return {
        "title": {"text": title, "x": 0, "font": {"size": 14}} if title else None,
        "height": height,
        "margin": {"l": 0, "r": 0, "t": 40 if title else 10, "b": 0},
        "scene": _scene(camera if camera in CAMERAS else "oblique", compact),
        "updatemenus": [
            {
                "type": "buttons",
                "direction": "right",
                "x": 0.0,
                "y": 1.0,
                "xanchor": "left",
                "yanchor": "top",
                "buttons": _view_buttons(compact),
                "pad": {"r": 4},
                "showactive": False,
            }
        ],
        "uirevision": "brain",
    }


def _datarevision(arrays: Sequence[np.ndarray], settings: tuple) -> str:
    """A digest of what the figure draws: same data -> same revision, so the browser's
    ``Plotly.react`` skips the costly 3D redraw on reruns where only other parts of the page
    changed (e.g. switching epoch in Explore)."""
    digest = hashlib.blake2b(digest_size=12)
    for arr in arrays:
        digest.update(np.ascontiguousarray(arr).tobytes())
    digest.update(repr(settings).encode())
    return digest.hexdigest()


def brain_figure(
    positions_um: np.ndarray,
    *,
    values: np.ndarray | None = None,
    value_label: str = "salience",
    neuron_ids: np.ndarray | None = None,
    regions: np.ndarray | None = None,
    meshes: Sequence[MeshSpec] = (),
    show: np.ndarray | None = None,
    highlight: int | None = None,
    point_size: float = 2.0,
    max_points: int = 40_000,
    value_range: tuple[float, float] | None = None,
    colorscale: str | list = SALIENCE_COLORSCALE,
    region_colors: dict[str, str] | None = None,
    camera: str = "oblique",
    title: str = "",
    height: int = 620,
    compact: bool = False,
) -> go.Figure:
    """The reference brain as semi-transparent meshes with neurons as points: one trace per
    region (no string per point), float32 arrays (compact binary); view buttons.

    Parameters
    ----------
    positions_um, values, value_label, neuron_ids, regions
        (N, 3) neuron positions, µm, atlas space;
        (N,) colour values (``None``: by region) and their colour-bar title; (N,) ids shown on
        hover (default 0..N-1) and region acronyms (one trace each).
    meshes
        Surfaces to draw (outline, regions; empty ones left out, see :func:`brain_mesh_trace`).
    show, highlight
        (N,) bool: the neurons the filter keeps (the others are drawn faint and small, so the
        brain's shape stays visible); the index of a neuron drawn as a large marker.
    point_size, max_points
        Marker size; at most ``max_points`` points are sent (see :func:`select_points`).
    value_range, colorscale, region_colors
        Fixed colour range (``None``: the values' min–max), e.g. one for two brains; the colour
        scale; region acronym -> ``"#rrggbb"`` when there are no values.
    camera, title, height, compact
        Initial standard view (:data:`CAMERAS`; unknown: oblique), title, height in px; compact:
        small figures (side by side) get short axis titles and the camera further out.

    Returns
    -------
    go.Figure
        ``layout.meta`` ``{"n_neurons", "n_drawn"}``, a ``datarevision`` digest; each view
        button also hides the axis it looks along.
    """
    pos = np.asarray(positions_um, dtype=np.float32)
    n = len(pos)
    fig = go.Figure()
    drawn = [m for m in meshes if len(m.vertices) and len(m.faces)]
    fig.add_traces([brain_mesh_trace(m, lighting=MESH_LIGHTING) for m in drawn])
    neurons = _Neurons(
        pos=pos,
        ids=(np.arange(n) if neuron_ids is None else np.asarray(neuron_ids)).astype(np.float64),
        reg=np.full(n, "", dtype=object) if regions is None else np.asarray(regions).astype(str),
        vals=None if values is None else np.asarray(values, dtype=np.float32),
        point_size=point_size,
        value_label=value_label,
        region_colors=dict(region_colors or {}),
    )
    mask = np.ones(n, bool) if show is None else np.asarray(show, bool)
    keep_shown, keep_hidden = _drawn(mask, vals := neurons.vals, max_points)
    fig.add_traces(neurons.marker_traces(keep_hidden, faint=True))
    fig.add_traces(neurons.marker_traces(keep_shown, faint=False))
    if vals is not None:
        fig.update_layout(coloraxis=_color_axis(vals, value_range, colorscale, value_label))
    if highlight is not None and 0 <= highlight < n:
        fig.add_trace(neurons.highlight_trace(highlight))
    settings = (highlight, value_range, point_size, [m.name for m in meshes],
                sorted(neurons.region_colors.items()), colorscale, value_label, title, height,
                compact)  # fmt: skip
    arrays = (pos, keep_shown, keep_hidden, vals if vals is not None else np.zeros(0))
    return fig.update_layout(
        **_brain_layout(title=title, height=height, camera=camera, compact=compact),
        meta={"n_neurons": int(n), "n_drawn": int(len(keep_shown) + len(keep_hidden))},
        datarevision=_datarevision(arrays, settings),
    )
