"""The dashboard's figure style: colours, the salience colour scale, legend placement, margins
that fit labels, presentation-mode fonts. Shared by :mod:`dashboard.figures` (tail, brain) and
:mod:`dashboard.charts` (simple charts); nothing here draws data.
"""

from __future__ import annotations

import re

import plotly.graph_objects as go
from plotly.colors import get_colorscale

__all__ = [
    "EPOCH_COLORS",
    "SEGMENT_COLORS",
    "LEGEND_ABOVE",
    "OBSERVED_COLOR",
    "PREDICTED_COLOR",
    "COMPARE_COLOR",
    "SALIENCE_COLORSCALE",
    "epoch_color",
    "automargins",
    "PRESENTATION_HEIGHT",
    "PRESENTATION_FONT",
    "TAIL_LINES",
    "apply_presentation",
]

EPOCH_COLORS = {
    "forward": "#2ca02c",
    "backward": "#9467bd",
    "left": "#1f77b4",
    "right": "#ff7f0e",
    "rest": "#bbbbbb",
    "blank": "#bbbbbb",
}
_PALETTE = ["#17becf", "#bcbd22", "#e377c2", "#8c564b", "#7f7f7f", "#d62728"]
SEGMENT_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2"]
#: A horizontal legend at the top right of the figure, in its top margin: never over the data.
LEGEND_ABOVE = {
    "orientation": "h",
    "yref": "container",
    "y": 1,
    "yanchor": "top",
    "x": 1,
    "xanchor": "right",
}
OBSERVED_COLOR = "#333333"
PREDICTED_COLOR = "#d62728"
COMPARE_COLOR = "#1f77b4"
#: The tail's lines (Plotly's figure and the ECharts chart alike): colour and width (px).
TAIL_LINES = {
    "observed": {"color": OBSERVED_COLOR, "width": 1.2},
    "predicted": {"color": PREDICTED_COLOR, "width": 1.4},
}


def _streamlit_safe(scale: list[tuple[float, str]]) -> list[list]:
    """A colour scale whose colours Streamlit leaves alone.

    Streamlit's Plotly theme sends the colours ``#000001``–``#000040`` as placeholders that its
    frontend swaps for theme colours, so Inferno's first stop ``#000004`` was drawn pale pink
    (``#ffabab``) in the app but black in exported HTML. Such colours get one unit more red.
    """
    out = []
    for stop, color in scale:
        if re.fullmatch(r"#0000[0-9]{2}", color, flags=re.IGNORECASE):
            color = "#01" + color[3:]
        out.append([float(stop), color])
    return out


#: The one colour scale of salience (3D brain, heatmaps; the app and its HTML exports alike):
#: Inferno, perceptually uniform, darkest = least salient.
SALIENCE_COLORSCALE: list[list] = _streamlit_safe(get_colorscale("Inferno"))


def epoch_color(name: str) -> str:
    """A stable colour per epoch name (left/right/forward/backward/rest have fixed ones).

    Parameters
    ----------
    name
        The epoch's name (``"left"``, ``"left_slow"``, ``"grating_right"``...).

    Returns
    -------
    str
        ``"#rrggbb"``: the fixed colour of a known stem, else one of a palette, by name.
    """
    key = name.lower()
    for stem, color in EPOCH_COLORS.items():
        if key == stem or key.startswith(stem + "_") or key.endswith("_" + stem):
            return color
    return _PALETTE[sum(map(ord, key)) % len(_PALETTE)]


def automargins(fig: go.Figure) -> None:
    """Margins grow to fit tick labels and axis titles.

    Region names are never clipped and a title never overlaps its ticks: in the app and in
    exported HTML alike, where Streamlit's theme does not apply.

    Parameters
    ----------
    fig
        The figure, changed in place.
    """
    fig.update_xaxes(automargin=True, title_standoff=8)
    fig.update_yaxes(automargin=True, title_standoff=8)


#: How much taller figures get in presentation mode.
PRESENTATION_HEIGHT = 1.15
#: How much larger figures' fonts get in presentation mode.
PRESENTATION_FONT = 1.45


def apply_presentation(fig: go.Figure, scale: float = PRESENTATION_FONT) -> go.Figure:
    """Larger fonts for a projector (presentation mode).

    The base font grows, and so does every size a figure sets itself (title, axis titles and
    ticks, epoch labels, legend, colour bars), which the base font alone would leave alone.

    Parameters
    ----------
    fig
        The figure, changed in place.
    scale
        How much larger the fonts get.

    Returns
    -------
    go.Figure
        The same figure (taller by :data:`PRESENTATION_HEIGHT`).
    """

    def grow(font) -> None:  # a Plotly font object; unset sizes follow the base font
        if font is not None and font.size:
            font.size = round(font.size * scale)

    fig.update_layout(font={"size": round(12 * scale)})
    if fig.layout.title is not None:
        grow(fig.layout.title.font)
    grow(fig.layout.legend.font)
    for axis in [*fig.select_xaxes(), *fig.select_yaxes()]:
        grow(axis.title.font)
        grow(axis.tickfont)
    for ann in fig.layout.annotations:
        grow(ann.font)
    for trace in fig.data:
        if "colorbar" in trace:  # heatmaps, surfaces... (not every trace type has one)
            grow(trace.colorbar.title.font)
            grow(trace.colorbar.tickfont)
    if any(t.type in ("scatter3d", "mesh3d") for t in fig.data):
        # 3D axis labels are drawn inside the scene: grown as much as the figure, not more,
        # so they stay inside it
        size = round(12 * PRESENTATION_HEIGHT)
        for a in "xyz":
            fig.update_scenes(
                {f"{a}axis": {"tickfont": {"size": size}, "title": {"font": {"size": size}}}}
            )
    if fig.layout.height:
        fig.update_layout(height=int(fig.layout.height * PRESENTATION_HEIGHT))
    return fig
