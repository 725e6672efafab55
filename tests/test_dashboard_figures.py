"""The dashboard's figure functions, checked on the Plotly figure objects: brain orientation in the
standard views, the salience colour scale (app and export alike), a shared colour range, labels
that fit (margins, every heatmap row), the legend off the data, presentation fonts."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

pytest.importorskip("plotly")
from dashboard.downloads import figure_html  # noqa: E402
from dashboard.figures import (  # noqa: E402
    CAMERAS,
    SALIENCE_COLORSCALE,
    brain_figure,
    tail_figure,
)

# Mean positions (µm, atlas space: x left→right, y rostral→caudal, z dorsal→ventral) of two regions
# at one x, y: the habenula is dorsal, the hypothalamus ventral.
HABENULA = np.array([300.0, 300.0, 58.0])
HYPOTHALAMUS = np.array([300.0, 300.0, 225.0])


def _figure(camera: str = "oblique"):
    rng = np.random.default_rng(0)
    pos = rng.uniform([0, 0, 0], [600, 900, 300], size=(50, 3)).astype(np.float32)
    return brain_figure(pos, values=rng.random(50), camera=camera)


def _screen(fig, camera: str, point: np.ndarray) -> np.ndarray:
    """(right, up) of a data point on the screen, as Plotly renders the scene.

    Data -> scene: an axis with ``autorange="reversed"`` is flipped. The camera (eye, up: scene
    coordinates) looks at the centre; screen right = forward × up, screen up = right × forward
    (a right-handed GL camera). Verified against real Chromium renders of these views.
    """
    scene = fig.layout.scene
    sign = np.array(
        [-1.0 if scene[f"{a}axis"].autorange == "reversed" else 1.0 for a in "xyz"], float
    )
    cam = CAMERAS[camera]
    eye = np.array([cam["eye"][a] for a in "xyz"], float)
    up = np.array([cam["up"][a] for a in "xyz"], float)
    forward = -eye / np.linalg.norm(eye)
    right = np.cross(forward, up)
    right /= np.linalg.norm(right)
    screen_up = np.cross(right, forward)
    p = sign * (point - 300.0)
    return np.array([p @ right, p @ screen_up])


def test_brain_views_draw_dorsal_up_and_no_mirror_image():
    fig = _figure()
    scene = fig.layout.scene
    # the turntable keeps scene +z up while rotating: the model above relies on it
    assert scene.dragmode == "turntable"
    for view in ("lateral", "frontal", "oblique"):
        assert CAMERAS[view]["up"] == {"x": 0, "y": 0, "z": 1}, view
        hab, hyp = _screen(fig, view, HABENULA), _screen(fig, view, HYPOTHALAMUS)
        assert hab[1] > hyp[1], f"{view}: the habenula must be drawn above the hypothalamus"
    dx, dy = np.array([100.0, 0, 0]), np.array([0, 100.0, 0])
    right, left = HABENULA + dx, HABENULA - dx
    rostral, caudal = HABENULA - dy, HABENULA + dy
    # lateral: seen from the right, so rostral points to the right of the screen
    assert _screen(fig, "lateral", rostral)[0] > _screen(fig, "lateral", caudal)[0]
    # dorsal: from above, rostral at the top and the fish's right on the right (not a mirror)
    assert _screen(fig, "dorsal", rostral)[1] > _screen(fig, "dorsal", caudal)[1]
    assert _screen(fig, "dorsal", right)[0] > _screen(fig, "dorsal", left)[0]
    # frontal: facing the fish, its right on the viewer's left
    assert _screen(fig, "frontal", right)[0] < _screen(fig, "frontal", left)[0]
    # the view buttons use the same cameras
    buttons = {b.label: b.args[0]["scene.camera"] for b in fig.layout.updatemenus[0].buttons}
    assert buttons["lateral"] == CAMERAS["lateral"] and buttons["reset"] == CAMERAS["oblique"]


def _luminance(color: str) -> float:
    r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def test_salience_colour_scale_darkest_first_and_streamlit_safe():
    lum = [_luminance(c) for _, c in SALIENCE_COLORSCALE]
    assert lum[0] == min(lum) < 0.01, "the least salient end must be the darkest"
    assert all(a < b for a, b in zip(lum, lum[1:], strict=False)), "perceptually monotonic"
    # Streamlit's frontend swaps the colours #000001-#000040 for theme colours (Inferno's #000004
    # became pale pink #ffabab): none may be in a figure the app shows (the theme's own template
    # uses them on purpose).
    spec = json.loads(_figure().to_json())
    spec["layout"].pop("template", None)
    placeholder = re.compile(r"#0000(?:[0-3][0-9]|40)\b", re.IGNORECASE)
    assert not placeholder.search(json.dumps(spec))


def test_app_and_export_use_the_same_salience_scale():
    brain = _figure()
    assert [list(s) for s in brain.layout.coloraxis.colorscale] == SALIENCE_COLORSCALE
    rng = np.random.default_rng(1)
    tail = tail_figure(
        np.arange(20.0),
        rng.normal(size=(20, 2)),
        None,
        ["a", "b"],
        heatmap=rng.random((20, 3)),
        heatmap_labels=["n1", "n2", "n3"],
    )
    heat = next(t for t in tail.data if t.type == "heatmap")
    assert [list(s) for s in heat.colorscale] == SALIENCE_COLORSCALE
    # the exported HTML carries exactly the scale the app is sent
    html = figure_html(brain).decode()
    sent = json.loads(brain.to_json())["layout"]["coloraxis"]["colorscale"]
    assert sent == SALIENCE_COLORSCALE
    exported = html[html.rindex('"coloraxis":{') :]
    assert json.dumps(SALIENCE_COLORSCALE, separators=(",", ":")) in exported


def test_brain_value_range_fixes_the_colour_range():
    rng = np.random.default_rng(2)
    pos = rng.uniform(0, 300, size=(30, 3))
    a = brain_figure(pos, values=rng.random(30) * 0.006, value_range=(0.0, 0.025))
    b = brain_figure(pos, values=rng.random(30) * 0.025, value_range=(0.0, 0.025))
    assert (a.layout.coloraxis.cmin, a.layout.coloraxis.cmax) == (0.0, 0.025)
    assert (b.layout.coloraxis.cmin, b.layout.coloraxis.cmax) == (0.0, 0.025)
    free = brain_figure(pos, values=np.linspace(0, 0.006, 30))
    assert free.layout.coloraxis.cmax == pytest.approx(0.006)


def _tail(n_rows: int = 20, **kw):
    rng = np.random.default_rng(3)
    return tail_figure(
        np.arange(40.0),
        rng.normal(size=(40, 3)),
        rng.normal(size=(40, 3)),
        ["a", "b", "c"],
        heatmap=rng.random((40, n_rows)),
        heatmap_labels=[f"#{i + 1} n{100 + i} Rhombomere {i}" for i in range(n_rows)],
        title="Tail",
        **kw,
    )


def _heat_axis(fig):
    heat = next(t for t in fig.data if t.type == "heatmap")
    return fig.layout[f"yaxis{heat.yaxis[1:]}"]


def test_heatmap_labels_every_row_up_to_sixty():
    for n in (20, 60):
        axis = _heat_axis(_tail(n))
        assert list(axis.tickvals) == [f"#{i + 1} n{100 + i} Rhombomere {i}" for i in range(n)]
    assert _heat_axis(_tail(61)).tickvals is None  # Plotly thins out longer lists


def test_figures_grow_margins_for_labels_and_keep_the_legend_off_the_data():
    from dashboard.figures import (
        epoch_comparison_figure,
        laterality_figure,
        metrics_bar_figure,
        rank_scatter_figure,
        region_bar_figure,
        training_curves_figure,
    )

    names = ["Rhombencephalon - Oxtr Cluster 2", "nMLF_R", "Hc"]
    figs = [
        _tail(),
        region_bar_figure(names, [0.1, 0.2, 0.3]),
        laterality_figure(names, [0.1, 0.2, 0.3], [0.3, 0.2, 0.1]),
        epoch_comparison_figure(names, {"left": [1, 2, 3], "right": [3, 2, 1]}),
        training_curves_figure({"run": [{"epoch": 1, "train_loss": 1.0}]}),
        metrics_bar_figure(names, {"m": [1, 2, 3]}),
        rank_scatter_figure(np.arange(5.0), np.arange(5.0), label_a="a", label_b="b"),
    ]
    for fig in figs:
        axes = [*fig.select_xaxes(), *fig.select_yaxes()]
        assert axes and all(a.automargin for a in axes), fig.layout.title.text
    legend = _tail().layout.legend  # above the plot area, in the figure's top margin
    assert legend.yref == "container" and legend.y == 1 and legend.yanchor == "top"


def test_presentation_enlarges_every_font_a_figure_sets():
    from dashboard.figures import apply_presentation

    fig = _tail()
    sizes = {
        "title": fig.layout.title.font.size,
        "y title": fig.layout.yaxis.title.font.size,
        "heat ticks": _heat_axis(fig).tickfont.size,
    }
    apply_presentation(fig)
    assert fig.layout.font.size > 12
    assert fig.layout.title.font.size > sizes["title"]
    assert fig.layout.yaxis.title.font.size > sizes["y title"]
    assert _heat_axis(fig).tickfont.size > sizes["heat ticks"]


def test_each_view_hides_the_axis_it_looks_along():
    from dashboard.figures import END_ON, camera_for, view_axes

    for view, axis in END_ON.items():
        fig = _figure(view)
        scene = fig.layout.scene
        assert scene[f"{axis}axis"].showticklabels is False and not scene[f"{axis}axis"].title.text
        others = [a for a in "xyz" if a != axis]
        assert all(scene[f"{a}axis"].showticklabels for a in others)
        button = next(b for b in fig.layout.updatemenus[0].buttons if b.label == view)
        assert button.args[0] == {"scene.camera": CAMERAS[view], **view_axes(view)}
    # a compact brain looks from further out along the same direction
    eye, far = CAMERAS["oblique"]["eye"], camera_for("oblique", compact=True)["eye"]
    assert far["x"] / eye["x"] == pytest.approx(far["z"] / eye["z"])
    assert far["x"] / eye["x"] > 1


def test_epochs_shaded_in_every_row_in_one_go(monkeypatch):
    """Every row shaded, each epoch named once; without ``add_vrect(row="all")``, which scanned
    every subplot per epoch (about 1 s per epoch: 20 s for the demo fish's test split)."""
    import plotly.graph_objects as go

    from dashboard.figures import EpochSpan

    def slow(*args, **kwargs):
        raise AssertionError("add_vrect scans every subplot per epoch")

    monkeypatch.setattr(go.Figure, "add_vrect", slow)
    epochs = [EpochSpan("left", 2.0, 9.0), EpochSpan("right", 12.0, 20.0), EpochSpan("x", 50, 60)]
    fig = _tail(5, epochs=epochs)  # 3 tail rows + the heatmap row; the third epoch is outside
    # one rectangle per epoch over the whole plot (every row shares the x axis)
    assert [(s.xref, s.yref, s.y0, s.y1) for s in fig.layout.shapes] == [("x", "paper", 0, 1)] * 2
    assert [(s.x0, s.x1) for s in fig.layout.shapes] == [(2.0, 9.0), (12.0, 20.0)]
    assert {fig.layout[f"xaxis{i}"].matches for i in ("", "2", "3")} == {"x4"}  # one x range
    assert [a.text for a in fig.layout.annotations] == ["left", "right"]


def test_brain_mesh_trace_draws_a_surface_with_overrides():
    from dashboard.figures import MESH_LIGHTING, MeshSpec, brain_mesh_trace

    tetra = MeshSpec(
        "Hc",
        "#ff0000",
        np.array([[0, 0, 0], [10, 0, 0], [0, 10, 0], [0, 0, 10]], float),
        np.array([[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]]),
    )
    own = brain_mesh_trace(tetra, lighting=MESH_LIGHTING)
    assert (own.name, own.color, own.opacity, own.hoverinfo) == ("Hc", "#ff0000", 0.12, "name")
    assert list(own.k) == [2, 3, 3, 3] and own.lighting.ambient == 0.7
    other = brain_mesh_trace(tetra, color="#00ff00", opacity=0.5, name="Hc: 1.20")
    assert (other.name, other.color, other.opacity) == ("Hc: 1.20", "#00ff00", 0.5)
    assert other.lighting.ambient is None  # Plotly's default lighting
    # brain_figure draws its meshes with the same helper, empty surfaces left out
    empty = MeshSpec("none", "#000000", np.zeros((0, 3)), np.zeros((0, 3), int))
    fig = brain_figure(np.zeros((3, 3)), meshes=[tetra, empty])
    meshes = [t for t in fig.data if t.type == "mesh3d"]
    assert len(meshes) == 1 and meshes[0].to_json() == own.to_json()


def test_simple_charts_keep_their_colours_order_and_plotly_legend_rules():
    from dashboard.figures import (
        COMPARE_COLOR,
        PREDICTED_COLOR,
        epoch_color,
        epoch_comparison_figure,
        laterality_figure,
        metrics_bar_figure,
        region_bar_figure,
        training_curves_figure,
    )

    names = ["Hc", "nMLF_R", "Th"]
    lat = laterality_figure(names, [0.1, 0.2, 0.3], [0.3, 0.2, 0.1])
    assert [(t.name, t.marker.color, list(t.y)) for t in lat.data] == [
        ("left", "#1f77b4", [0.1, 0.2, 0.3]),
        ("right", "#ff7f0e", [0.3, 0.2, 0.1]),
    ]
    assert lat.layout.barmode == "group" and list(lat.data[0].x) == names
    by = {"right": [3, 2, 1], "left": [1, 2, 3]}  # the caller's order is kept
    cmp = epoch_comparison_figure(names, by)
    assert [(t.name, t.marker.color) for t in cmp.data] == [
        (n, epoch_color(n)) for n in ("right", "left")
    ]
    one = metrics_bar_figure(names, {"m": [1.0, None, 3.0]})
    assert one.data[0].marker.color == PREDICTED_COLOR and one.data[0].showlegend is None
    two = metrics_bar_figure(names, {"m": [1, 2, 3], "n": [3, 2, 1]})
    assert [t.marker.color for t in two.data] == [PREDICTED_COLOR, COMPARE_COLOR]
    bars = region_bar_figure(names, [0.1, 0.3, 0.2], significant=[False, True, False], top=2)
    assert list(bars.data[0].y) == ["Th", "nMLF_R *"]  # the largest on top
    curves = training_curves_figure(
        {"a": [{"epoch": 1, "train_loss": 1.0}, {"epoch": 2, "train_loss": 0.5}], "b": []}
    )
    (line,) = curves.data
    assert line.name == "a: train_loss" and line.mode == "lines+markers"
    assert list(line.x) == [1, 2] and line.line.dash == "solid"
