"""Which recording a checkpoint was trained on: a content fingerprint and the mismatch warning.

:func:`recording_fingerprint` hashes what a decoder learns from (activity, behaviour, positions;
activity read in chunks of frames, so memory stays bounded) together with the shape, the fish id
and the recording's ``source`` (for generated fish: the generator version and its parameters).
A checkpoint stores it at training time; :func:`recording_mismatch` compares it with the
recording a checkpoint is applied to, and :func:`warn_if_other_recording` turns a difference into
a :class:`RecordingMismatchWarning` (a warning, never a refusal: transfer is legitimate).
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from decoding.io_utils import file_key

__all__ = [
    "RecordingLike",
    "RecordingMismatchWarning",
    "recording_fingerprint",
    "recording_mismatch",
    "warn_if_other_recording",
    "short_id",
]

_CHUNK_FRAMES = 256
_cache: dict[tuple[str, int, int], dict[str, Any]] = {}


class RecordingLike(Protocol):
    """What a fingerprint reads from a recording."""

    fish_id: str
    source: str
    n_frames: int
    n_neurons: int
    behavior: np.ndarray
    positions_um: np.ndarray
    path: Path | None

    def read_activity(self, start: int = 0, stop: int | None = None) -> np.ndarray:
        """(stop - start, N) activity of frames ``[start, stop)``.

        Parameters
        ----------
        start, stop
            The frames.

        Returns
        -------
        np.ndarray
            (stop - start, N) float.
        """
        ...


class RecordingMismatchWarning(UserWarning):
    """A checkpoint is applied to a recording other than the one it was trained on."""


def _file_key(path: Path | None) -> tuple[str, int, int] | None:
    """:func:`~decoding.io_utils.file_key` of the recording's file; ``None`` for in-memory ones."""
    return file_key(path) if path is not None and Path(path).is_file() else None


def recording_fingerprint(recording: RecordingLike) -> dict[str, Any]:
    """``{"fish_id", "source", "frames", "neurons", "content"}``: ``content`` is a BLAKE2b hash of
    activity (in chunks of frames, float32), behaviour and positions. Cached per unchanged file.

    Parameters
    ----------
    recording
        The recording (its activity is read in chunks of frames).

    Returns
    -------
    dict[str, Any]
        ``fish_id``, ``source``, ``frames``, ``neurons``, ``content`` (hex).
    """
    key = _file_key(recording.path)
    if key is not None and key in _cache:
        return dict(_cache[key])
    digest = hashlib.blake2b(digest_size=16)
    T, N = int(recording.n_frames), int(recording.n_neurons)
    digest.update(f"{T}x{N}".encode())
    for a in range(0, T, _CHUNK_FRAMES):
        chunk = recording.read_activity(a, min(T, a + _CHUNK_FRAMES))
        digest.update(np.ascontiguousarray(chunk, dtype=np.float32).tobytes())
    for arr in (recording.behavior, recording.positions_um):
        digest.update(np.ascontiguousarray(arr, dtype=np.float32).tobytes())
    fp = {
        "fish_id": str(recording.fish_id),
        "source": str(recording.source or ""),
        "frames": T,
        "neurons": N,
        "content": digest.hexdigest(),
    }
    if key is not None:
        _cache[key] = dict(fp)
    return fp


def short_id(fingerprint: dict[str, Any] | None) -> str:
    """``fish_id@abcdef12`` for labels (``"unknown recording"`` when there is none).

    Parameters
    ----------
    fingerprint
        A :func:`recording_fingerprint` (or None).

    Returns
    -------
    str
        The label.
    """
    if not fingerprint:
        return "unknown recording"
    return f"{fingerprint.get('fish_id', '?')}@{str(fingerprint.get('content', ''))[:8]}"


def recording_mismatch(stored: dict[str, Any] | None, recording: RecordingLike) -> str | None:
    """A readable sentence when ``recording`` is not the one ``stored`` describes, else ``None``.

    ``stored`` empty (a checkpoint older than fingerprints) is reported too: nothing proves the
    stored metrics belong to this recording.

    Parameters
    ----------
    stored
        The fingerprint a checkpoint stored (None/empty: none stored).
    recording
        The recording the checkpoint is applied to.

    Returns
    -------
    str | None
        The sentence, or None when they are the same recording.
    """
    current = recording_fingerprint(recording)
    if not stored:
        return (
            f"the checkpoint records no training-recording fingerprint (made before they were "
            f"stored); its stored metrics may not belong to {short_id(current)}"
        )
    if stored.get("content") == current["content"]:
        return None
    what = [
        f"{name} {stored.get(name)!r} vs {current[name]!r}"
        for name in ("fish_id", "frames", "neurons")
        if stored.get(name) != current[name]
    ]
    if not what and stored.get("source") != current["source"]:
        what = [f"made by {stored.get('source')!r}, this one by {current['source']!r}"]
    what = what or ["same fish id, shape and source, different data"]
    return (
        f"this checkpoint was trained on {short_id(stored)}, not on this recording "
        f"{short_id(current)} ({'; '.join(what)}); its stored metrics describe the training "
        "recording, not this one"
    )


def warn_if_other_recording(stored: dict[str, Any] | None, recording: RecordingLike) -> str | None:
    """Issue a :class:`RecordingMismatchWarning` when the recordings differ; returns the text.

    Parameters
    ----------
    stored
        The fingerprint a checkpoint stored.
    recording
        The recording the checkpoint is applied to.

    Returns
    -------
    str | None
        The warning's text, or None.
    """
    msg = recording_mismatch(stored, recording)
    if msg is not None:
        warnings.warn(msg, RecordingMismatchWarning, stacklevel=2)
    return msg
