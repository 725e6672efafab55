"""The dashboard's selection helpers on a real small recording: an epoch choice of the sidebar is
the frame range the core resolves (``decoding.recording.frame_ranges``), repeated epoch names
included; the labels flag frames a checkpoint was fitted on."""

from __future__ import annotations

import numpy as np
import pytest

pytest.importorskip("streamlit")
from dashboard.context import (  # noqa: E402
    epoch_label,
    fitted_frames,
    held_out_note,
    range_name,
    resolve_range,
)
from dashboard.state import TEST_SPLIT, WHOLE  # noqa: E402
from decoding.errors import DecodingError  # noqa: E402
from decoding.recording import Epoch, Recording, frame_ranges  # noqa: E402
from decoding.windows import chronological_split  # noqa: E402


@pytest.fixture
def rec() -> Recording:
    """100 frames at 2 Hz; the protocol repeats 'left' (frames 10-20 and 60-70)."""
    rng = np.random.default_rng(0)
    epochs = [Epoch("left", 10, 20), Epoch("right", 30, 40), Epoch("left", 60, 70)]
    return Recording(
        rng.normal(size=(100, 4)).astype(np.float32),
        rng.normal(size=(100, 2)).astype(np.float32),
        rng.uniform(0, 100, size=(4, 3)),
        frame_rate_hz=2.0,
        epochs=epochs,
    )


def test_each_epoch_choice_is_the_core_frame_range(rec):
    split = chronological_split(rec.n_frames)
    assert resolve_range(rec, WHOLE, split) == (0, 100)
    assert resolve_range(rec, TEST_SPLIT, split) == (split.test.start, split.test.stop) == (80, 100)
    # the second 'left' is its own choice, not the first one of that name
    assert resolve_range(rec, "0", split) == (10, 20)
    assert resolve_range(rec, "2", split) == (60, 70)
    assert [resolve_range(rec, v, split) for v in ("0", "2")] == frame_ranges(rec, epoch="left")
    with pytest.raises(DecodingError, match="epoch index 3"):
        resolve_range(rec, "3", split)


def test_labels_name_epochs_and_flag_fitted_frames(rec):
    split = chronological_split(rec.n_frames)  # train [0, 70), val [70, 80), test [80, 100)
    assert epoch_label(rec, "2", split) == "2 · left (30–35 s) · training frames"
    assert epoch_label(rec, TEST_SPLIT, split) == "whole test split (40–50 s)"
    assert epoch_label(rec, TEST_SPLIT) == "whole test split"
    assert range_name(rec, split, 60, 70) == epoch_label(rec, "2", split)
    assert range_name(rec, split, 61, 70) == "frames 61–70"
    assert fitted_frames(split, 65, 85) == {"train": 5, "val": 10}
    assert fitted_frames(None, 0, 100) == {}
    assert held_out_note(split, 80, 100) == ""
    assert "5 training and 10 validation frames" in held_out_note(split, 65, 85)
