"""Data preparation: chronological split, per-neuron normalisation, windows built per batch.

Nothing here materialises a ``(num_windows, s, N)`` copy: a window is a start frame; a batch is a
set of starts, turned into an index array ``(B, s)`` into the frames (or into the already projected
frames, so that each frame passes the ``N -> hidden`` projection once per batch, not ``s`` times).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from decoding.errors import DecodingError

if TYPE_CHECKING:  # torch is imported where it is used (this module serves NumPy callers too)
    import torch

__all__ = [
    "SPLIT_NAMES",
    "Split",
    "chronological_split",
    "Normalizer",
    "window_starts",
    "window_index",
    "batch_frames",
    "iter_train_batches",
    "overlap_average",
]

SPLIT_NAMES: tuple[str, ...] = ("train", "val", "test")


@dataclass(frozen=True)
class Split:
    """Contiguous chronological parts of a recording: ``train``, ``val``, ``test`` as ranges."""

    train: range
    val: range
    test: range

    def __post_init__(self) -> None:
        if (
            self.train.start != 0
            or self.train.stop != self.val.start
            or self.val.stop != self.test.start
        ):
            raise DecodingError(
                f"split parts must be contiguous and start at frame 0; got train={self.train}, "
                f"val={self.val}, test={self.test}"
            )
        if len(self.train) < 1:
            raise DecodingError(
                "split: the training part is empty; use more frames or a larger fraction"
            )

    @property
    def n_frames(self) -> int:
        return self.test.stop

    def part(self, name: str) -> range:
        """The range of frames of part ``name`` (``train``, ``val`` or ``test``)."""
        if name not in SPLIT_NAMES:
            raise DecodingError(f"split part {name!r}: expected one of {', '.join(SPLIT_NAMES)}")
        return getattr(self, name)

    def labels(self) -> np.ndarray:
        """(T,) str: the part each frame belongs to."""
        out = np.empty(self.n_frames, dtype=object)
        for name in SPLIT_NAMES:
            rng = self.part(name)
            out[rng.start : rng.stop] = name
        return out.astype(str)

    def pieces(self, start: int, stop: int) -> list[tuple[str, int, int]]:
        """``[start, stop)`` cut at split boundaries: ``[(part, a, b), ...]`` (non-empty)."""
        out = []
        for name in SPLIT_NAMES:
            rng = self.part(name)
            a, b = max(start, rng.start), min(stop, rng.stop)
            if a < b:
                out.append((name, a, b))
        return out

    def to_dict(self) -> dict[str, list[int]]:
        return {name: [self.part(name).start, self.part(name).stop] for name in SPLIT_NAMES}

    @classmethod
    def from_dict(cls, d: Mapping[str, Sequence[int]]) -> Split:
        return cls(*(range(int(d[n][0]), int(d[n][1])) for n in SPLIT_NAMES))

    def __repr__(self) -> str:
        parts = ", ".join(f"{n}=[{self.part(n).start}, {self.part(n).stop})" for n in SPLIT_NAMES)
        return f"Split({parts})"


def chronological_split(n_frames: int, fractions: Sequence[float] = (0.7, 0.1, 0.2)) -> Split:
    """Cut ``n_frames`` into consecutive train / validation / test parts (never shuffled).

    ``fractions`` are normalised to sum to one; the boundaries are rounded to whole frames.
    """
    if len(fractions) != 3 or any(f < 0 for f in fractions) or sum(fractions) <= 0:
        raise DecodingError(
            f"split fractions {tuple(fractions)}: expected three non-negative numbers "
            "(train, validation, test), e.g. 0.7 0.1 0.2"
        )
    if fractions[0] <= 0:
        raise DecodingError(
            f"split fractions {tuple(fractions)}: the training fraction must be > 0"
        )
    total = float(sum(fractions))
    a = int(round(n_frames * fractions[0] / total))
    b = int(round(n_frames * (fractions[0] + fractions[1]) / total))
    a = max(1, min(a, n_frames))
    b = max(a, min(b, n_frames))
    return Split(range(0, a), range(a, b), range(b, n_frames))


@dataclass
class Normalizer:
    """Per-neuron z-score ``(x - mean) / std``, fitted on training frames only."""

    mean: np.ndarray  # (N,) float32
    std: np.ndarray  # (N,) float32, > 0

    @classmethod
    def fit(cls, data: np.ndarray, *, eps: float = 1e-6) -> Normalizer:
        """Fit on ``data`` ``(T_train, N)``; constant columns get std 1 (they map to 0)."""
        data = np.asarray(data, dtype=np.float64)
        if data.ndim != 2 or data.shape[0] < 1:
            raise DecodingError(
                f"normaliser: expected (frames, channels) data, got shape {data.shape}"
            )
        mean = data.mean(axis=0)
        std = data.std(axis=0)
        std = np.where(std > eps, std, 1.0)
        return cls(mean.astype(np.float32), std.astype(np.float32))

    @classmethod
    def identity(cls, n: int) -> Normalizer:
        return cls(np.zeros(n, np.float32), np.ones(n, np.float32))

    @property
    def size(self) -> int:
        return int(self.mean.shape[0])

    def transform(self, x: np.ndarray) -> np.ndarray:
        """``(..., N)`` -> z-scored float32."""
        return ((np.asarray(x, dtype=np.float32) - self.mean) / self.std).astype(np.float32)

    def inverse(self, z: np.ndarray) -> np.ndarray:
        return (np.asarray(z, dtype=np.float32) * self.std + self.mean).astype(np.float32)

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": [float(v) for v in self.mean], "std": [float(v) for v in self.std]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Sequence[float]]) -> Normalizer:
        mean = np.asarray(d["mean"], dtype=np.float32)
        std = np.asarray(d["std"], dtype=np.float32)
        if mean.shape != std.shape or mean.ndim != 1:
            raise DecodingError(f"normaliser: mean {mean.shape} and std {std.shape} must be (N,)")
        return cls(mean, std)


def window_starts(start: int, stop: int, window: int, stride: int = 1) -> tuple[np.ndarray, int]:
    """Window start frames covering ``[start, stop)`` with no window crossing ``stop``.

    Returns ``(starts, s)`` where ``s = min(window, stop - start)`` (a range shorter than the window
    gets one shorter window). The last window always ends at ``stop`` so every frame is covered.
    """
    if window < 1 or stride < 1:
        raise DecodingError(f"window={window}, stride={stride}: both must be >= 1")
    n = stop - start
    if n <= 0:
        return np.zeros(0, dtype=np.int64), 0
    s = min(window, n)
    starts = np.arange(start, stop - s + 1, stride, dtype=np.int64)
    if starts[-1] != stop - s:
        starts = np.append(starts, stop - s)
    return starts, s


def window_index(starts: np.ndarray, s: int) -> np.ndarray:
    """``(B, s)`` frame indices of windows starting at ``starts``."""
    return np.asarray(starts, dtype=np.int64)[:, None] + np.arange(s, dtype=np.int64)[None, :]


def batch_frames(starts: np.ndarray, s: int) -> tuple[np.ndarray, np.ndarray]:
    """Unique frames of a batch of windows and the ``(B, s)`` index into them.

    ``frames[local]`` equals ``window_index(starts, s)``; each unique frame appears once in
    ``frames`` so it is projected once per batch however many windows share it.
    """
    idx = window_index(starts, s)
    frames, local = np.unique(idx, return_inverse=True)
    return frames, local.reshape(idx.shape)


def iter_train_batches(
    part: range,
    window: int,
    stride: int,
    batch_size: int,
    rng: np.random.Generator,
    *,
    random_offset: bool = True,
) -> Iterator[np.ndarray]:
    """Shuffled batches of window starts inside ``part`` (windows never leave ``part``).

    With ``random_offset`` the grid of starts is shifted by a random amount below ``stride`` each
    epoch, so over epochs every frame is seen at every position of a window.
    """
    n = len(part)
    s = min(window, n)
    last = part.stop - s
    offset = int(rng.integers(0, stride)) if random_offset and stride > 1 else 0
    starts = np.arange(part.start + offset, last + 1, stride, dtype=np.int64)
    if starts.size == 0:
        starts = np.array([part.start], dtype=np.int64)
    rng.shuffle(starts)
    for i in range(0, starts.size, batch_size):
        yield starts[i : i + batch_size]


def sum_dtype(device: torch.device | str) -> torch.dtype:
    """The dtype to sum many float32 values in on ``device``: float64, float32 on MPS (no
    float64 there)."""
    import torch

    return torch.float32 if torch.device(device).type == "mps" else torch.float64


def overlap_average(
    window_preds: np.ndarray | torch.Tensor, starts: np.ndarray, start: int, stop: int
) -> np.ndarray | torch.Tensor:
    """Average overlapping window predictions into one prediction per frame.

    ``window_preds`` is ``(B, s, K)`` (a NumPy array, or a torch tensor on any device) for windows
    starting at ``starts`` (absolute frames); the result is ``(stop - start, K)`` float32 of the
    same kind (a tensor stays on its device). Every frame of ``[start, stop)`` must be in some
    window.
    """
    import torch

    as_numpy = not isinstance(window_preds, torch.Tensor)
    preds = torch.tensor(np.asarray(window_preds)) if as_numpy else window_preds
    b, s, k = preds.shape
    idx = window_index(np.asarray(starts) - start, s).reshape(-1)
    counts = np.bincount(idx, minlength=stop - start)  # known on the host: no device sync
    if (counts == 0).any():
        missing = int(np.flatnonzero(counts == 0)[0]) + start
        raise DecodingError(f"overlap_average: frame {missing} is not covered by any window")
    dev = preds.device
    acc = sum_dtype(dev)
    sums = torch.zeros((stop - start, k), dtype=acc, device=dev)
    sums.index_add_(0, torch.from_numpy(idx).to(dev), preds.reshape(-1, k).to(acc))
    out = (sums / torch.from_numpy(counts).to(dev, acc)[:, None]).float()
    return out.numpy() if as_numpy else out
