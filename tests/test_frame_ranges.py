"""recording.frame_ranges / range_label / epoch_reference: one resolution of "which frames"."""

from __future__ import annotations

import numpy as np
import pytest

from decoding.errors import RecordingError
from decoding.recording import Epoch, Recording, epoch_reference, frame_ranges, range_label
from decoding.windows import Split


def _rec(epochs: list[Epoch], T: int = 60) -> Recording:
    rng = np.random.default_rng(0)
    return Recording(
        rng.normal(size=(T, 4)).astype(np.float32),
        rng.normal(size=(T, 1)).astype(np.float32),
        rng.uniform(10, 100, size=(4, 3)).astype(np.float32),
        frame_rate_hz=2.0,
        behavior_names=["tail"],
        behavior_units=["rad"],
        epochs=epochs,
        fish_id="ranges",
        atlas="",
    )


@pytest.fixture
def rec() -> Recording:
    return _rec(
        [
            Epoch("rest", 0, 10),
            Epoch("left", 10, 20),
            Epoch("rest", 20, 30),
            Epoch("left", 30, 40),
            Epoch("right", 40, 50),
            Epoch("left", 50, 60),
        ]
    )


def test_a_repeated_name_selects_every_epoch_in_order(rec: Recording) -> None:
    assert frame_ranges(rec, epoch="left") == [(10, 20), (30, 40), (50, 60)]
    assert frame_ranges(rec, epoch="right") == [(40, 50)]


def test_name_hash_k_selects_the_kth(rec: Recording) -> None:
    assert frame_ranges(rec, epoch="left#1") == [(10, 20)]
    assert frame_ranges(rec, epoch="left#3") == [(50, 60)]
    assert frame_ranges(rec, epoch="rest#2") == [(20, 30)]
    for bad in ("left#0", "left#4", "left#x", "left#"):
        with pytest.raises(RecordingError, match=r"3 epochs named 'left'; use left#1 \.\. left#3"):
            frame_ranges(rec, epoch=bad)


def test_unknown_name_lists_the_known_ones(rec: Recording) -> None:
    with pytest.raises(RecordingError, match="no epoch named 'forward'; known epochs: rest, left"):
        frame_ranges(rec, epoch="forward")
    with pytest.raises(RecordingError, match="no epoch named 'forward#2'"):
        frame_ranges(rec, epoch="forward#2")
    with pytest.raises(RecordingError, match="names a split part only together with a split"):
        frame_ranges(rec, epoch="test")


def test_a_name_containing_a_hash_is_found_as_written() -> None:
    rec = _rec([Epoch("dot#1", 0, 5), Epoch("dot", 5, 9)], T=10)
    assert frame_ranges(rec, epoch="dot#1") == [(0, 5)]
    assert frame_ranges(rec, epoch="dot") == [(5, 9)]


def test_split_parts(rec: Recording) -> None:
    split = Split(train=range(0, 40), val=range(40, 50), test=range(50, 60))
    assert frame_ranges(rec, epoch="train", split=split) == [(0, 40)]
    assert frame_ranges(rec, epoch="val", split=split) == [(40, 50)]
    assert frame_ranges(rec, epoch="test", split=split) == [(50, 60)]
    assert frame_ranges(rec, epoch="left", split=split) == [(10, 20), (30, 40), (50, 60)]
    longer = Split(train=range(0, 50), val=range(50, 60), test=range(60, 80))
    with pytest.raises(RecordingError, match=r"split part 'test' \[60, 80\).*<= 60"):
        frame_ranges(rec, epoch="test", split=longer)


def test_start_stop(rec: Recording) -> None:
    assert frame_ranges(rec) == [(0, 60)]
    assert frame_ranges(rec, start=5) == [(5, 60)]
    assert frame_ranges(rec, stop=7) == [(0, 7)]
    assert frame_ranges(rec, start=np.int64(3), stop=9) == [(3, 9)]
    for a, b in ((5, 5), (-1, 4), (0, 61), (9, 3)):
        with pytest.raises(RecordingError, match=r"expected 0 <= start < stop <= 60"):
            frame_ranges(rec, start=a, stop=b)


def test_epoch_and_frames_together_are_refused(rec: Recording) -> None:
    with pytest.raises(RecordingError, match="either an epoch or start/stop frames, not both"):
        frame_ranges(rec, epoch="left", start=0)
    with pytest.raises(RecordingError, match="not both"):
        frame_ranges(rec, epoch="left", stop=10)


def test_range_label(rec: Recording) -> None:
    assert range_label(rec, epoch="left#2") == "left#2"
    assert range_label(rec, start=3, stop=9) == "frames 3-9"
    assert range_label(rec) == "frames 0-60"
    with pytest.raises(RecordingError, match="no epoch named"):
        range_label(rec, epoch="nope")


def test_epoch_reference_round_trips(rec: Recording) -> None:
    refs = [epoch_reference(rec, i) for i in range(len(rec.epochs))]
    assert refs == ["rest#1", "left#1", "rest#2", "left#2", "right#1", "left#3"]
    for ep, ref in zip(rec.epochs, refs, strict=True):
        assert frame_ranges(rec, epoch=ref) == [(ep.start, ep.stop)]
    with pytest.raises(RecordingError, match=r"epoch index 6: expected 0 \.\. 5"):
        epoch_reference(rec, 6)
