"""The dashboard's figure functions, checked on the Plotly figure objects: brain orientation in the
standard views, the salience colour scale (app and export alike), a shared colour range."""

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
