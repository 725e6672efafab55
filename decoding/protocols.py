"""What the core accepts, as :class:`typing.Protocol` s (instead of ``Any`` and probing).

:class:`decoding.recording.Recording` satisfies :class:`TrainingRecording` (and so
:class:`FrameSource`); a ``threading.Event`` satisfies :class:`EventLike`. Tests build real small
recordings rather than fakes.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np

__all__ = [
    "CancelSignal",
    "EpochLike",
    "EventLike",
    "FrameSource",
    "GroundTruthLike",
    "TrainingRecording",
]


@runtime_checkable
class EventLike(Protocol):
    """A flag another thread sets (``threading.Event``)."""

    def is_set(self) -> bool: ...


#: How a caller stops :func:`decoding.train.fit`: an event, or a callable that returns True.
CancelSignal = EventLike | Callable[[], bool]


class EpochLike(Protocol):
    """A named span of frames ``[start, stop)``."""

    name: str
    start: int
    stop: int


@runtime_checkable
class FrameSource(Protocol):
    """A recording's frames and named epochs (what frame ranges are resolved against)."""

    fish_id: str
    n_frames: int

    def epoch(self, name: str) -> EpochLike: ...

    def epochs_named(self, name: str) -> Sequence[EpochLike]: ...


class GroundTruthLike(Protocol):
    """A synthetic fish's noise-free behaviour (what the noise ceiling compares with)."""

    behavior_clean: np.ndarray  # (T, K)


@runtime_checkable
class TrainingRecording(FrameSource, Protocol):
    """What training, prediction and evaluation read from a recording."""

    source: str
    n_neurons: int
    n_behavior: int
    activity: np.ndarray  # (T, N)
    behavior: np.ndarray  # (T, K)
    behavior_names: list[str]
    behavior_units: list[str]
    ground_truth: GroundTruthLike | None
    positions_um: np.ndarray  # (N, 3); with source and path, what a fingerprint reads
    path: Path | None

    def read_activity(self, start: int = 0, stop: int | None = None) -> np.ndarray: ...
