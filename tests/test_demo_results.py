"""The shipped demo results (``assets/demo_results.npz``) are what the code computes now, and the
app shows them only for exactly their selection.

Regenerates the demo fish (as ``make demo`` does), recomputes the default view's predictions and
default-method salience with the demo checkpoint, and compares. Red here means: run
``assets/build_demo_results.py`` and commit (a drifted file is never shown: its key no longer
matches, so the app computes instead; this test makes sure the shipped one stays useful).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = REPO / "assets" / "demo_checkpoint"

pytestmark = pytest.mark.slow


def _default_request() -> dict:
    from decoding.salience import DEFAULT_METHOD, METHODS

    steps = 32 if METHODS[DEFAULT_METHOD].uses_steps else 0
    return {"method": DEFAULT_METHOD, "target": "sum", "steps": steps}


@pytest.fixture(scope="module")
def demo_fish():
    from decoding.synthetic import make_demo_fish

    return make_demo_fish()


@pytest.fixture(scope="module")
def shipped():
    from dashboard.demo_results import load_results

    got = load_results()
    assert got is not None, "assets/demo_results.npz is missing: run assets/build_demo_results.py"
    return got


def test_shipped_results_match_what_the_code_computes_now(demo_fish, shipped):
    from dashboard.demo_results import TOP_K, compute_results

    now = compute_results(CHECKPOINT, demo_fish, **_default_request())
    assert now.key == shipped.key  # same checkpoint, fish, frames, request, engine
    np.testing.assert_allclose(shipped.predictions, now.predictions, rtol=1e-4, atol=1e-6)
    a, b = shipped.salience, now.salience
    scale = float(b.mean_abs.max())
    np.testing.assert_allclose(a.mean_abs, b.mean_abs, rtol=1e-3, atol=1e-6 * scale)
    np.testing.assert_array_equal(a.top, b.top)
    assert len(a.top) == TOP_K
    np.testing.assert_allclose(a.top_abs, b.top_abs, rtol=1e-3, atol=1e-6 * scale)
    assert np.abs(a.confidence - b.confidence).max() <= 0.05
    assert (a.start, a.stop, a.method, a.target) == (b.start, b.stop, b.method, b.target)


def test_small_enough_to_ship(shipped):
    from dashboard.demo_results import ASSET

    assert ASSET.stat().st_size < 1_000_000
    assert shipped.predictions.shape == (shipped.salience.stop - shipped.salience.start, 6)


def _context(data: Path, ckpts: Path, monkeypatch):
    from dashboard.prepare import default_context

    monkeypatch.setenv("NLP4NEURO_DATA", str(data))
    monkeypatch.setenv("NLP4NEURO_CHECKPOINTS", str(ckpts))
    monkeypatch.setenv("NLP4NEURO_JOBS", str(data.parent / "jobs"))
    monkeypatch.setenv("NLP4NEURO_CACHE", str(data.parent / "cache"))
    return default_context()


def test_shown_only_for_exactly_its_selection(demo_fish, shipped, tmp_path, monkeypatch):
    """The app's lookup answers for the demo fish + demo checkpoint over the test split with the
    default request, and for nothing else: another frame range, method or target, changed weights
    or another fish."""
    from dashboard.demo_results import for_view

    data, ckpts = tmp_path / "data", tmp_path / "ckpts"
    data.mkdir()
    demo_fish.save(data / "demo_fish.h5")
    shutil.copytree(CHECKPOINT, ckpts / "demo_checkpoint")
    ctx = _context(data, ckpts, monkeypatch)
    assert ctx is not None and ctx.ckpt is not None
    request = _default_request()
    got = for_view(ctx, request)
    assert got is not None and got.key == shipped.key

    assert for_view(ctx, request | {"target": "lateral"}) is None
    other = "ixg" if request["method"] != "ixg" else "ig"
    assert for_view(ctx, request | {"method": other}) is None
    ctx.start += 1
    assert for_view(ctx, request) is None
    ctx.start -= 1

    weights = ckpts / "demo_checkpoint" / "model.safetensors"
    blob = bytearray(weights.read_bytes())
    blob[-1] ^= 0x01  # one bit of one weight
    weights.write_bytes(bytes(blob))
    assert for_view(ctx, request) is None


def test_not_shown_for_another_fish(shipped, tmp_path, monkeypatch):
    from dashboard.demo_results import for_view
    from decoding.synthetic import make_demo_fish

    data = tmp_path / "data"
    data.mkdir()
    make_demo_fish(seed=1).save(data / "other_fish.h5")  # same size, other content
    ctx = _context(data, CHECKPOINT.parent, monkeypatch)
    assert ctx is not None and ctx.ckpt is not None
    assert (ctx.start, ctx.stop) == tuple(shipped.key["range"])
    assert for_view(ctx, _default_request()) is None
