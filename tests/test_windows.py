"""Split, normalisation and window batches: never touch test frames, overlap averaging is exact."""

from __future__ import annotations

import numpy as np
import pytest

from decoding.errors import DecodingError
from decoding.windows import (
    Normalizer,
    Split,
    batch_frames,
    chronological_split,
    iter_train_batches,
    overlap_average,
    window_index,
    window_starts,
)


def test_split_is_chronological_and_contiguous():
    sp = chronological_split(1000)
    assert (sp.train, sp.val, sp.test) == (range(0, 700), range(700, 800), range(800, 1000))
    labels = sp.labels()
    assert labels[699] == "train" and labels[700] == "val" and labels[-1] == "test"
    assert Split.from_dict(sp.to_dict()) == sp
    assert sp.pieces(650, 850) == [("train", 650, 700), ("val", 700, 800), ("test", 800, 850)]


def test_split_custom_fractions_and_errors():
    sp = chronological_split(100, (0.5, 0.0, 0.5))
    assert len(sp.val) == 0 and len(sp.train) == 50
    with pytest.raises(DecodingError, match="three non-negative"):
        chronological_split(100, (0.5, 0.5))
    with pytest.raises(DecodingError, match="training fraction"):
        chronological_split(100, (0.0, 0.5, 0.5))


def test_normalizer_fits_train_frames_only():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 5)).astype(np.float32)
    x[80:] += 1000.0  # a huge shift in "test" frames must not leak into the statistics
    sp = chronological_split(100, (0.7, 0.1, 0.2))
    norm = Normalizer.fit(x[sp.train.start : sp.train.stop])
    np.testing.assert_allclose(norm.mean, x[:70].mean(0), rtol=1e-5)
    z = norm.transform(x[:70])
    np.testing.assert_allclose(z.mean(0), 0, atol=1e-5)
    np.testing.assert_allclose(z.std(0), 1, atol=1e-4)
    np.testing.assert_allclose(norm.inverse(z), x[:70], atol=1e-4)
    const = Normalizer.fit(np.ones((10, 2)))
    assert np.all(const.std == 1)
    assert Normalizer.from_dict(norm.to_dict()).mean.tolist() == norm.mean.tolist()


def test_window_starts_cover_and_never_cross():
    starts, s = window_starts(10, 50, 20, 7)
    assert s == 20 and starts[0] == 10 and starts[-1] == 30
    assert (starts + s <= 50).all() and (starts >= 10).all()
    starts, s = window_starts(0, 5, 20, 1)  # shorter than a window: one shorter window
    assert s == 5 and starts.tolist() == [0]
    with pytest.raises(DecodingError, match="must be >= 1"):
        window_starts(0, 10, 0, 1)


def test_batch_frames_projects_each_frame_once():
    starts = np.array([3, 4, 10])
    frames, local = batch_frames(starts, 5)
    assert len(frames) == len(set(frames.tolist())) == 11  # 3..8 and 10..14
    np.testing.assert_array_equal(frames[local], window_index(starts, 5))


def test_train_batches_stay_inside_the_part():
    rng = np.random.default_rng(0)
    part = range(0, 70)
    seen = np.concatenate(list(iter_train_batches(part, 10, 10, 4, rng)))
    assert (seen >= 0).all() and (seen + 10 <= 70).all()
    assert len(np.unique(seen % 10)) == 1  # one grid offset per epoch


def test_overlap_average_is_exact():
    rng = np.random.default_rng(1)
    truth = rng.normal(size=(30, 2))
    starts, s = window_starts(0, 30, 6, 1)
    preds = truth[window_index(starts, s)]  # every window predicts the truth exactly
    np.testing.assert_allclose(overlap_average(preds, starts, 0, 30), truth, rtol=1e-6)
    # each window predicts its own start index: frame t averages starts t-s+1..t (clipped)
    const = np.broadcast_to(starts[:, None, None].astype(float), (len(starts), s, 1))
    out = overlap_average(const, starts, 0, 30)[:, 0]
    for t in range(30):
        covering = [a for a in starts if a <= t < a + s]
        assert out[t] == pytest.approx(np.mean(covering))
    with pytest.raises(DecodingError, match="not covered"):
        overlap_average(preds[:1], starts[:1], 0, 30)
