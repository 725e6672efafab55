"""RMSE, Pearson r, R² overall and per channel; noise ceiling."""

from __future__ import annotations

import numpy as np
import pytest

from decoding.errors import DecodingError
from decoding.metrics import evaluate_arrays, pearson_r, r2, rmse


def test_known_values():
    y = np.array([[0.0, 1.0], [1.0, 3.0], [2.0, 5.0]])
    p = y + np.array([[0.0, 1.0]])
    assert rmse(y, p) == pytest.approx(np.sqrt(0.5))
    np.testing.assert_allclose(rmse(y, p, per_channel=True), [0.0, 1.0])
    np.testing.assert_allclose(pearson_r(y, p, per_channel=True), [1.0, 1.0])
    np.testing.assert_allclose(r2(y, p, per_channel=True), [1.0, 1 - 3 / 8])
    assert r2(y, y.mean(0) + 0 * y) == pytest.approx(0.0)


def test_constant_channel_is_nan_not_crash():
    y = np.zeros((5, 1))
    assert np.isnan(pearson_r(y, np.arange(5.0)[:, None]))
    assert evaluate_arrays(y, y).to_dict()["pearson_r"] is None


def test_evaluate_arrays_with_ceiling():
    rng = np.random.default_rng(0)
    clean = rng.normal(size=(200, 3))
    noisy = clean + rng.normal(scale=0.1, size=clean.shape)
    m = evaluate_arrays(noisy, clean + 0.2, ["a", "b", "c"], clean=clean)
    assert [c.name for c in m.per_channel] == ["a", "b", "c"]
    assert m.noise_ceiling["rmse"] == pytest.approx(0.1, rel=0.15)
    assert m.rmse_over_ceiling == pytest.approx(m.rmse / m.noise_ceiling["rmse"])
    d = m.to_dict()
    assert {"rmse", "pearson_r", "r2", "per_channel", "noise_ceiling"} <= set(d)


def test_shape_mismatch():
    with pytest.raises(DecodingError, match="differ in shape"):
        rmse(np.zeros((3, 2)), np.zeros((3, 1)))
    with pytest.raises(DecodingError, match="no frames"):
        rmse(np.zeros((0, 2)), np.zeros((0, 2)))
