"""The 3D brain panel shared by the Explore and Salience views: controls + figure.

The Explore view draws its brain after the rest of the page is on screen
(:func:`brain_panel_later`).
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable, Hashable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st

from dashboard import caching
from dashboard.context import Context, chart
from dashboard.figure_memo import FigureMemo
from dashboard.figures import MeshSpec, brain_figure
from dashboard.results_state import shown
from dashboard.state import COLOURS, sync_query

__all__ = [
    "brain_panel",
    "brain_panel_later",
    "brain_controls",
    "build_brain",
    "show_brain",
    "BrainControls",
    "BrainData",
    "after_paint_enabled",
    "region_colors",
    "colour_picker",
    "confidence_help",
    "NO_CONFIDENCE",
]

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


@dataclass(frozen=True, kw_only=True)
class BrainControls:
    """What the panel's controls chose: meshes, outline, point size and budget, which neurons
    (``mode`` all / top-k / threshold with ``k`` and ``threshold``) and the colouring."""

    groups: tuple[str, ...]
    outline: bool
    size: float
    max_points: int
    mode: str = "all"
    k: int = 0
    threshold: float = 0.0
    colour: str = COLOURS[0]


def brain_controls(
    ctx: Context,
    *,
    key: str,
    values: np.ndarray | None = None,
    value_label: str = "salience",
    compact: bool = False,
    confidence: np.ndarray | None = None,
) -> BrainControls:
    """Draw the panel's controls (none when ``compact``) and return their choices."""
    n = ctx.rec.n_neurons
    groups = tuple(sorted({g for _, g, _ in caching.brain_meshes(ctx.atlas_name)[1] if g}))
    if compact:
        mode = "top-k" if values is not None else "all"
        return BrainControls(groups=groups, outline=True, size=2.0, max_points=25_000, mode=mode,
                             k=min(500, n))  # fmt: skip
    c1, c2, c3, c4 = st.columns([4, 2, 2, 2])
    shown = c1.multiselect(
        "Region meshes",
        list(groups),
        default=list(groups),
        key=f"{key}_groups",
        help="Toggle the semi-transparent atlas regions by group.",
    )
    outline = c2.toggle("Brain outline", value=True, key=f"{key}_outline")
    size = c3.slider("Point size", 1.0, 8.0, 2.5 if n < 20_000 else 1.5, 0.5, key=f"{key}_size")
    max_pts = c4.select_slider(
        "Max points drawn",
        [5_000, 10_000, 20_000, 40_000, 100_000],
        value=40_000,
        key=f"{key}_maxpts",
        help="Above this many neurons the least salient are thinned out (WebGL stays fast).",
    )
    out = BrainControls(groups=tuple(shown), outline=outline, size=size, max_points=int(max_pts),
                        k=n)  # fmt: skip
    if values is None:
        return out
    d1, d2, d3 = st.columns([2, 4, 2])
    colour = colour_picker(ctx, key, confidence, where=d3)
    mode = d1.radio("Show", ["top-k", "threshold", "all"], horizontal=True, key=f"{key}_mode")
    k, thr = n, 0.0
    if mode == "top-k":
        k = d2.slider("k most salient neurons", 10, min(n, 5000), min(500, n), 10, key=f"{key}_k")
    elif mode == "threshold":
        vmax = float(np.nanmax(values)) or 1.0
        thr = d2.slider(f"{value_label} ≥", 0.0, vmax, vmax * 0.25, vmax / 200, key=f"{key}_thr",
                        format="%.3g")  # fmt: skip
    return replace(out, mode=mode, k=k, threshold=thr, colour=colour)


def _shown_neurons(values: np.ndarray | None, c: BrainControls) -> np.ndarray | None:
    """(N,) bool of the neurons the filter keeps (``None``: all)."""
    if values is None or c.mode == "all":
        return None
    if c.mode == "threshold":
        return np.asarray(values) >= c.threshold
    show = np.zeros(len(values), bool)
    show[np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")[: c.k]] = True
    return show


@dataclass(frozen=True, kw_only=True, eq=False)
class BrainData:
    """What the brain shows (see :func:`brain_panel`): per-neuron ``values`` and ``confidence``,
    a ``highlight``ed neuron, the title, the size and a fixed colour range."""

    values: np.ndarray | None = None
    value_label: str = "salience"
    highlight: int | None = None
    title: str = ""
    compact: bool = False
    value_range: tuple[float, float] | None = None
    confidence: np.ndarray | None = None


def build_brain(ctx: Context, c: BrainControls, d: BrainData) -> go.Figure:
    """The brain figure of ``d`` for the controls' choices ``c``."""
    outline, meshes = caching.brain_meshes(ctx.atlas_name)
    specs: list[MeshSpec] = [outline] if c.outline and outline is not None else []
    specs += [m for _, g, m in meshes if g in c.groups or not g]
    colour = {"values": d.values, "value_label": d.value_label, "value_range": d.value_range}
    title = d.title
    if d.values is not None and not d.compact and c.colour == "confidence":
        colour = {
            "values": np.asarray(d.confidence, dtype=np.float32),
            "value_label": confidence_label(ctx.rec.n_neurons),
            "value_range": (0.0, 1.0),
        }
        title = f"{title} · coloured by confidence" if title else "Confidence on the brain"
    regions = caching.neuron_regions(ctx.rec_path, ctx.rec_mtime, ctx.atlas_name)
    look = {"point_size": c.size, "max_points": c.max_points, "title": title,
            "height": 460 if d.compact else 640, "compact": d.compact}  # fmt: skip
    fig = brain_figure(
        ctx.rec.positions_um, neuron_ids=ctx.rec.neuron_ids, regions=regions, meshes=specs,
        show=_shown_neurons(d.values, c), highlight=d.highlight, region_colors=region_colors(ctx),
        **colour, **look,
    )  # fmt: skip
    thinned = "confident" if colour["value_label"] != d.value_label else "salient"
    fig.layout.meta = {**(fig.layout.meta or {}), "thinned": thinned}
    return fig


def show_brain(fig: go.Figure, *, key: str, n_neurons: int) -> None:
    """Draw a brain figure, and say when the least salient neurons were thinned out."""
    chart(fig, key=f"{key}_fig")
    meta = fig.layout.meta or {}
    drawn = meta.get("n_drawn", n_neurons)
    if drawn < n_neurons:
        least = meta.get("thinned", "salient")
        st.caption(f"{drawn:,} of {n_neurons:,} neurons drawn (the least {least} thinned out).")


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
    d = BrainData(values=values, value_label=value_label, highlight=highlight, title=title,
                  compact=compact, value_range=value_range, confidence=confidence)  # fmt: skip
    c = brain_controls(ctx, key=key, values=values, value_label=value_label, compact=compact,
                       confidence=confidence)  # fmt: skip
    fig = build_brain(ctx, c, d)
    show_brain(fig, key=key, n_neurons=ctx.rec.n_neurons)
    return fig


def brain_panel_later(
    ctx: Context,
    *,
    key: str,
    hold: str = "",
    values: np.ndarray | None = None,
    value_label: str = "salience",
    title: str = "",
    confidence: np.ndarray | None = None,
    shows: Hashable | None = None,
) -> Callable[[], go.Figure]:
    """The Explore view's brain panel: controls and 3D chart; with :func:`after_paint_enabled`
    both are drawn once the rest of the page is on screen (see :func:`_after_paint`). Returns a
    builder of the figure (for the download, built when clicked).

    ``hold`` (a sentence): the chart is not drawn in this run at all, the sentence stands in its
    place (the results it would show are still being computed; the run that has them draws it).
    ``shows``: a key naming everything ``values`` and ``confidence`` are (recording, frames,
    checkpoint, salience request); with it the figure is kept and reused when the same brain is
    drawn again (an epoch seen before).
    """
    d = BrainData(values=values, value_label=value_label, title=title, confidence=confidence)
    if after_paint_enabled():
        made: dict[str, Callable[[], go.Figure]] = {}
        _after_paint(ctx, d, key, shows, made, hold)
        return lambda: (made.get("build") or _builder(ctx, _default_controls(ctx, d), d, shows))()
    build = _builder(ctx, _controls(ctx, key, d), d, shows)
    if hold:
        st.info(hold, icon=_HOLD_ICON)
    else:
        show_brain(build(), key=key, n_neurons=ctx.rec.n_neurons)
    return build


def _controls(ctx: Context, key: str, d: BrainData) -> BrainControls:
    return brain_controls(ctx, key=key, values=d.values, value_label=d.value_label,
                          confidence=d.confidence)  # fmt: skip


def _default_controls(ctx: Context, d: BrainData) -> BrainControls:
    """The controls' choices before they are drawn (a download clicked that early)."""
    return brain_controls(ctx, key="", values=d.values, compact=True)


def _builder(ctx: Context, c: BrainControls, d: BrainData, shows: Hashable | None
             ) -> Callable[[], go.Figure]:  # fmt: skip
    """``build_brain(ctx, c, d)`` as a builder; with ``shows`` (see :func:`brain_panel_later`),
    memoized in :data:`_BRAINS` (outside presentation mode, whose figure is restyled in place)."""
    build = functools.partial(build_brain, ctx, c, d)
    if shows is not None and not st.session_state.get("w_present"):
        build = functools.partial(_BRAINS.get, (shows, c, d.title, ctx.atlas_name), build)
    return build


#: Brain figures already built in this process (see ``shows`` of :func:`brain_panel_later`).
_BRAINS = FigureMemo(max_entries=16)
_AFTER_PAINT_ENV = "NLP4NEURO_BRAIN_AFTER_PAINT"
_STAND_IN_HEIGHT = 640  # the brain figure's height: the page does not jump while it waits
_CONTROLS_HEIGHT = 170  # the controls' two rows above it
_HOLD_ICON = ":material/hourglass_top:"


def after_paint_enabled() -> bool:
    """Whether the Explore view draws its 3D brain only once the browser has painted the rest
    of the page (``dashboard/serve.py`` turns it on: a WebGL scene costs seconds in a browser
    without a GPU, and a chart arriving with it is painted only after it)."""
    return os.environ.get(_AFTER_PAINT_ENV, "0") == "1"


@st.fragment
def _after_paint(
    ctx: Context, d: BrainData, key: str, shows: Hashable | None, made: dict[str, Any], hold: str
) -> None:
    """The brain panel, a fragment: its controls rerun it alone. The page's first run draws a
    stand-in for all of it and a sentinel that answers once the browser has painted the rest of
    the page (the tail), which reruns this fragment to draw it: the controls' ~15 widgets cost
    the browser 0.3-0.4 s before it drew the tail (first chart 3.37 s against 3.69 s with them,
    median of 5 warm loads each, two servers side by side). Later runs draw the controls at once and
    the chart at once when it is the one on screen already, else after the page is painted.
    With ``hold`` (see :func:`brain_panel_later`) no chart and no sentinel: the sentence stands
    in for the chart (for the whole panel before it was first drawn). Puts the figure's builder
    in ``made["build"]``."""
    on_screen = f"_{key}_on_screen"
    first = on_screen not in st.session_state
    if first and (hold or not _painted_sentinel(key=f"{key}_painted_first")):
        _stand_in(_CONTROLS_HEIGHT + _STAND_IN_HEIGHT, hold)
        return
    colour = ctx.sel.colour
    c = _controls(ctx, key, d)
    if ctx.sel.colour != colour:  # a rerun of this fragment alone: the URL says it too
        sync_query(st.query_params, shown(ctx.sel, has_model=ctx.ckpt is not None))
    build = made["build"] = _builder(ctx, c, d, shows)
    if hold:
        st.info(hold, icon=_HOLD_ICON)
        return
    token = str(hash((shows, c, d.title, ctx.atlas_name))) if shows is not None else "any"
    if first or st.session_state[on_screen] == token or _painted_sentinel(
        key=f"{key}_painted_{token}"
    ):
        st.session_state[on_screen] = token
        show_brain(build(), key=key, n_neurons=ctx.rec.n_neurons)
        return
    _stand_in(_STAND_IN_HEIGHT)


def _stand_in(height: int, hold: str = "") -> None:
    """The brain's place while it waits (``hold``: why it is not drawn in this run)."""
    with st.container(height=height, border=False):
        if hold:
            st.info(hold, icon=_HOLD_ICON)
        else:
            st.caption("Drawing the 3D brain…")


def _painted_sentinel(*, key: str) -> bool:
    """``True`` once the browser has finished the page's run and painted a chart (the ECharts
    tail, or a Plotly chart with data): a tiny component, served from
    ``dashboard/views/after_paint/``."""
    return bool(_sentinel_component()(key=key, default=False))


@functools.cache
def _sentinel_component() -> Any:
    import streamlit.components.v1 as components

    return components.declare_component(
        "after_paint", path=str(Path(__file__).resolve().parent / "after_paint")
    )
