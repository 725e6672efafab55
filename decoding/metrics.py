"""Decoding metrics: RMSE (the study's metric), Pearson r and R², overall and per channel.

Overall RMSE pools every frame and channel (as in the study). Overall Pearson r and R² are the mean
of the per-channel values (a pooled r would reward getting channel offsets right, not the dynamics).
When the recording has ground truth, the noise ceiling is the same metrics for the noise-free
behaviour used as a prediction: no decoder can do better on average than the observation noise.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from decoding.errors import DecodingError

__all__ = [
    "rmse",
    "pearson_r",
    "r2",
    "ChannelMetrics",
    "Metrics",
    "evaluate_arrays",
]


def _check(y_true: np.ndarray, y_pred: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    a = np.asarray(y_true, dtype=np.float64)
    b = np.asarray(y_pred, dtype=np.float64)
    if a.ndim == 1:
        a = a[:, None]
    if b.ndim == 1:
        b = b[:, None]
    if a.shape != b.shape:
        raise DecodingError(f"metrics: targets {a.shape} and predictions {b.shape} differ in shape")
    if a.shape[0] == 0:
        raise DecodingError("metrics: no frames to evaluate (empty frame range)")
    return a, b


def rmse(
    y_true: np.ndarray, y_pred: np.ndarray, *, per_channel: bool = False
) -> float | np.ndarray:
    """Root-mean-square error over all frames and channels, or ``(K,)`` per channel."""
    a, b = _check(y_true, y_pred)
    sq = (a - b) ** 2
    return np.sqrt(sq.mean(axis=0)) if per_channel else float(np.sqrt(sq.mean()))


def pearson_r(
    y_true: np.ndarray, y_pred: np.ndarray, *, per_channel: bool = False
) -> float | np.ndarray:
    """Pearson r per channel (NaN for a constant channel); overall = mean over channels."""
    a, b = _check(y_true, y_pred)
    a = a - a.mean(axis=0)
    b = b - b.mean(axis=0)
    den = np.sqrt((a * a).sum(axis=0) * (b * b).sum(axis=0))
    with np.errstate(invalid="ignore", divide="ignore"):
        r = np.where(den > 0, (a * b).sum(axis=0) / np.where(den > 0, den, 1.0), np.nan)
    if per_channel:
        return r
    return float(np.nanmean(r)) if np.isfinite(r).any() else float("nan")


def r2(y_true: np.ndarray, y_pred: np.ndarray, *, per_channel: bool = False) -> float | np.ndarray:
    """Coefficient of determination per channel; overall = mean over channels (uniform average)."""
    a, b = _check(y_true, y_pred)
    ss_res = ((a - b) ** 2).sum(axis=0)
    ss_tot = ((a - a.mean(axis=0)) ** 2).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        out = np.where(ss_tot > 0, 1.0 - ss_res / np.where(ss_tot > 0, ss_tot, 1.0), np.nan)
    if per_channel:
        return out
    return float(np.nanmean(out)) if np.isfinite(out).any() else float("nan")


@dataclass
class ChannelMetrics:
    name: str
    rmse: float
    pearson_r: float
    r2: float


@dataclass
class Metrics:
    """Metrics of one prediction over ``n_frames`` frames (typed result; ``to_dict`` for JSON)."""

    rmse: float
    pearson_r: float
    r2: float
    n_frames: int
    per_channel: list[ChannelMetrics] = field(default_factory=list)
    noise_ceiling: dict[str, float] | None = None  # rmse, pearson_r, r2 of the noise-free behaviour
    rmse_over_ceiling: float | None = None

    def to_dict(self) -> dict:
        d = asdict(self)
        return _jsonable(d)


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_jsonable(v) for v in x]
    if isinstance(x, float | np.floating):
        v = float(x)
        return v if np.isfinite(v) else None
    if isinstance(x, np.integer):
        return int(x)
    return x


def evaluate_arrays(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    names: Sequence[str] | None = None,
    *,
    clean: np.ndarray | None = None,
) -> Metrics:
    """All metrics for ``(T, K)`` targets and predictions; ``clean`` = noise-free behaviour."""
    a, b = _check(y_true, y_pred)
    k = a.shape[1]
    names = list(names) if names is not None else [f"ch{i}" for i in range(k)]
    if len(names) != k:
        raise DecodingError(f"metrics: {len(names)} channel names for {k} channels")
    per = [
        ChannelMetrics(n, float(e), float(r), float(q))
        for n, e, r, q in zip(
            names,
            rmse(a, b, per_channel=True),
            pearson_r(a, b, per_channel=True),
            r2(a, b, per_channel=True),
            strict=True,
        )
    ]
    m = Metrics(rmse(a, b), pearson_r(a, b), r2(a, b), int(a.shape[0]), per)
    if clean is not None:
        c, _ = _check(clean, a)
        ceiling = {"rmse": rmse(a, c), "pearson_r": pearson_r(a, c), "r2": r2(a, c)}
        m.noise_ceiling = ceiling
        if ceiling["rmse"] > 0:
            m.rmse_over_ceiling = m.rmse / ceiling["rmse"]
    return m
