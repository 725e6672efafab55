"""The shipped demo checkpoint still matches the demo fish that ``make demo`` generates.

Regenerates the demo fish (as ``make demo`` does) and checks that the checkpoint was trained on
exactly this fish (content fingerprint), reproduces its stored test metrics within 1 % and its
stored salience recovery. Red here means: run ``assets/build_demo_checkpoint.py`` and commit.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
CHECKPOINT = REPO / "assets" / "demo_checkpoint"

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def demo():
    from decoding.checkpoint import load_checkpoint
    from decoding.provenance import RecordingMismatchWarning
    from decoding.synthetic import make_demo_fish

    rec = make_demo_fish()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RecordingMismatchWarning)
        model, info = load_checkpoint(CHECKPOINT, recording=rec)
    mismatch = [str(w.message) for w in caught if w.category is RecordingMismatchWarning]
    return rec, model, info, mismatch


def test_trained_on_the_fish_the_generator_makes_today(demo):
    rec, _, info, mismatch = demo
    assert not mismatch, mismatch[0]
    assert info.metrics["test"]["recording"].startswith(f"{rec.fish_id}@")


def test_stored_test_metrics_reproduce_within_one_percent(demo):
    from decoding.train import evaluate

    rec, model, info, _ = demo
    now = evaluate(model, info, rec, part="test").to_dict()
    stored = info.metrics["test"]
    for name in ("rmse", "pearson_r", "r2"):
        assert now[name] == pytest.approx(stored[name], rel=0.01), name
    assert now["noise_ceiling"]["rmse"] == pytest.approx(stored["noise_ceiling"]["rmse"], rel=1e-4)


def test_stored_salience_recovery_reproduces(demo):
    sys.path.insert(0, str(REPO / "assets"))
    from build_demo_checkpoint import salience_figures

    rec, model, info, _ = demo
    now = salience_figures(model, info, rec)
    stored = info.metrics["salience"]
    assert now["method"] == stored["method"]
    assert now["auroc"] == pytest.approx(stored["auroc"], abs=0.005)
    assert now["average_precision"] == pytest.approx(stored["average_precision"], abs=0.02)
