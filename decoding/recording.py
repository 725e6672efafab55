"""One recording = one fish: activity, behaviour, positions, stimulus epochs, in one HDF5 file.

The file format (``nlp4neuro-recording``, version 1) is documented in the README
("Recording file format"):

- ``/activity`` (T, N) float: ΔF/F per frame and neuron, chunked along frames, compressed;
- ``/behavior`` (T, K) float: behaviour channels, attributes ``names`` and ``units``;
- ``/positions_um`` (N, 3) float: neuron centres (x, y, z) in atlas space, micrometres;
- ``/epochs/``: parallel datasets ``name`` (E,) str, ``start``/``stop`` (E,) int, ``params`` JSON;
- optional ``/neuron_ids`` (N,) int, ``/regions`` (N,) str, and ``/ground_truth/`` (synthetic fish:
  ``behavior_clean`` (T, K), ``driver_weight`` (N, K), ``role`` (N,), ``noise_std`` (K,));
- root attributes ``format`` = ``"nlp4neuro-recording"``, ``format_version`` = 1,
  ``frame_rate_hz``, ``fish_id``, ``atlas``, ``source``, optional ``max_outside``.

Loading is lazy (``/activity`` is read on first access of :attr:`Recording.activity`, or in pieces
via :meth:`Recording.read_activity`) and validated: every problem raises :class:`RecordingError`
naming the file, the dataset, what was expected and what was found. Saving is atomic.
"""

from __future__ import annotations

import json
import math
import os
import types
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import h5py
import numpy as np

from decoding.errors import DecodingError, RecordingError
from decoding.io_utils import atomic_write_path, file_key

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MAX_OUTSIDE_FRACTION",
    "Epoch",
    "GroundTruth",
    "OutsideCount",
    "Recording",
    "SPLIT_PARTS",
    "SplitParts",
    "AtlasVolume",
    "check_outside_atlas",
    "epoch_reference",
    "frame_ranges",
    "load_recording",
    "range_label",
    "save_recording",
]

FORMAT_NAME = "nlp4neuro-recording"
FORMAT_VERSION = 1

#: Frames per chunk of ``/activity``: a window of a few dozen frames touches one row of chunks.
CHUNK_FRAMES = 64
#: Neurons per chunk of ``/activity``.
CHUNK_NEURONS = 4096
#: HDF5 filter for ``/activity`` (see ``bench/bench_recording.py`` for the measurements).
COMPRESSION: dict[str, Any] = {"compression": "gzip", "compression_opts": 1, "shuffle": True}
#: Bytes of ``/activity`` checked for NaN/inf per step (bounds the memory of validation).
_SCAN_BYTES = 32 * 2**20

_REQUIRED = ("activity", "behavior", "positions_um")

#: Largest fraction of neurons whose position may fall outside the atlas volume (imperfect
#: registrations): up to it they are kept and labelled ``"outside"``, above it the recording (or the
#: import) is refused. A file may raise it with the root attribute ``max_outside`` (written by
#: ``python -m decoding import ... --max-outside FRACTION``).
MAX_OUTSIDE_FRACTION = 0.05


# --------------------------------------------------------------------------------------------------
# value objects
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Epoch:
    """A named stimulus interval: frames ``[start, stop)``, with optional stimulus parameters."""

    name: str
    start: int
    stop: int
    params: Mapping[str, float | str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise RecordingError(f"epoch name must be a non-empty string, found {self.name!r}")
        for attr in ("start", "stop"):
            value = getattr(self, attr)
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise RecordingError(
                    f"epoch {self.name!r}: {attr} must be an integer frame index, "
                    f"found {value!r} ({type(value).__name__})"
                )
            object.__setattr__(self, attr, int(value))
        if not 0 <= self.start < self.stop:
            raise RecordingError(
                f"epoch {self.name!r}: expected 0 <= start < stop, found start={self.start}, "
                f"stop={self.stop}"
            )
        object.__setattr__(self, "params", types.MappingProxyType(dict(self.params)))

    @property
    def n_frames(self) -> int:
        """Length of the epoch in frames."""
        return self.stop - self.start

    def __repr__(self) -> str:
        extra = f", params={dict(self.params)}" if self.params else ""
        return f"Epoch({self.name!r}, {self.start}, {self.stop}{extra})"


@dataclass
class GroundTruth:
    """What a synthetic fish was made of, so decoders and salience can be scored against it.

    ``behavior_clean`` (T, K) is the noise-free behaviour; ``driver_weight`` (N, K) the weight of
    each neuron on each channel (0 for non-drivers); ``role`` (N,) a label per neuron; ``noise_std``
    (K,) the std of the observation noise added to ``behavior_clean``, i.e. the best achievable
    RMSE per channel.
    """

    behavior_clean: np.ndarray
    driver_weight: np.ndarray
    role: np.ndarray
    noise_std: np.ndarray

    def __post_init__(self) -> None:
        self.behavior_clean = np.asarray(self.behavior_clean, dtype=np.float32)
        self.driver_weight = np.asarray(self.driver_weight, dtype=np.float32)
        self.role = np.asarray(self.role, dtype=str)
        self.noise_std = np.asarray(self.noise_std, dtype=np.float32).reshape(-1)

    @property
    def noise_ceiling_rmse(self) -> float:
        """RMSE over all channels of a perfect decoder (predicting ``behavior_clean``)."""
        return float(np.sqrt(np.mean(self.noise_std.astype(np.float64) ** 2)))

    @property
    def importance(self) -> np.ndarray:
        """(N,) true importance of each neuron: ``|driver_weight|`` summed over channels."""
        return np.abs(self.driver_weight).sum(axis=1)


# --------------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------------
def _where(path: Path | None, dataset: str | None = None) -> str:
    where = f"{path}" if path is not None else "recording"
    return f"{where}: /{dataset.lstrip('/')}" if dataset else where


def _fail(path: Path | None, dataset: str | None, message: str) -> RecordingError:
    return RecordingError(f"{_where(path, dataset)}: {message}")


def _plain(value: object) -> object:
    """numpy scalars/0-d arrays as plain Python values (for readable messages)."""
    if isinstance(value, np.ndarray) and value.size == 1:
        value = value.reshape(-1)[0]
    return value.item() if isinstance(value, np.generic) else value


def _as_str(value: object) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    if isinstance(value, np.ndarray) and value.shape == ():
        return _as_str(value[()])
    return str(value)


def _str_list(value: object) -> list[str]:
    """An HDF5 attribute/dataset of strings as a list (a single ``"a,b,c"`` string is split)."""
    if isinstance(value, (str, bytes)) or (isinstance(value, np.ndarray) and value.shape == ()):
        text = _as_str(value)
        return [s.strip() for s in text.split(",")] if text else []
    arr = np.asarray(value).reshape(-1)
    return [_as_str(v) for v in arr]


def _check_float(path: Path | None, name: str, arr: np.ndarray | h5py.Dataset, ndim: int) -> None:
    if arr.ndim != ndim:
        raise _fail(path, name, f"expected a {ndim}-D array, found shape {tuple(arr.shape)}")
    if not np.issubdtype(arr.dtype, np.floating):
        raise _fail(
            path,
            name,
            f"expected a floating-point array (float32), found dtype {arr.dtype}; "
            "convert it with .astype('float32') before writing",
        )


def _check_finite(path: Path | None, name: str, arr: np.ndarray, offset: int = 0) -> None:
    if arr.size and not np.isfinite(arr).all():
        bad = np.argwhere(~np.isfinite(arr))
        n_bad = len(bad)
        first = tuple(int(i) for i in bad[0])
        first = (first[0] + offset,) + first[1:]
        raise _fail(
            path,
            name,
            f"expected finite values, found {n_bad} NaN/inf value(s) (first at index {first}); "
            "replace them (e.g. interpolate, or drop the neuron) before saving",
        )


def _check_epochs(path: Path | None, epochs: Sequence[Epoch], n_frames: int) -> list[Epoch]:
    ordered = sorted(epochs, key=lambda e: (e.start, e.stop))
    for ep in ordered:
        if ep.stop > n_frames:
            raise _fail(
                path,
                "epochs",
                f"epoch {ep.name!r} [{ep.start}, {ep.stop}) is out of range: expected stop <= "
                f"{n_frames} (the number of frames), found {ep.stop}",
            )
    for a, b in zip(ordered, ordered[1:], strict=False):
        if b.start < a.stop:
            raise _fail(
                path,
                "epochs",
                f"epochs must not overlap: {a.name!r} [{a.start}, {a.stop}) overlaps "
                f"{b.name!r} [{b.start}, {b.stop})",
            )
    return ordered


@dataclass(frozen=True)
class OutsideCount:
    """How many of ``n_neurons`` positions fall outside an atlas volume."""

    n_outside: int
    n_neurons: int

    @property
    def fraction(self) -> float:
        """``n_outside / n_neurons`` (0 for no neurons)."""
        return self.n_outside / self.n_neurons if self.n_neurons else 0.0

    def summary(self) -> str:
        """``"3 neurons (1.5%) fall outside the atlas volume; kept, labelled 'outside'"``.

        Returns
        -------
        str
            One sentence for a report.
        """
        one = self.n_outside == 1
        return (
            f"{self.n_outside:,} neuron{'' if one else 's'} ({100 * self.fraction:.1f}%) "
            f"fall{'s' if one else ''} outside the atlas volume; kept, labelled 'outside'"
        )


class AtlasVolume(Protocol):
    """What the outside-the-atlas check reads from an atlas (``decoding.atlas.Atlas`` is one)."""

    name: str

    @property
    def shape_um(self) -> np.ndarray:
        """(3,) extent of the volume, µm."""
        ...

    def contains(self, points_um: np.ndarray) -> np.ndarray:
        """(N,) bool: inside the volume.

        Parameters
        ----------
        points_um
            (N, 3) atlas µm.

        Returns
        -------
        np.ndarray
            (N,) bool.
        """
        ...


def check_max_outside(
    value: object, what: str = "max_outside", error: type[DecodingError] = RecordingError
) -> float:
    """``value`` as a fraction of neurons allowed outside the atlas; ``error`` unless in [0, 1].

    Parameters
    ----------
    value
        The fraction as given (a number or a string from the command line or a file attribute).
    what
        The option or attribute, for the message.
    error
        The error type to raise.

    Returns
    -------
    float
        The fraction, in [0, 1].
    """
    try:
        frac = float(value)
    except (TypeError, ValueError):
        frac = float("nan")
    if not 0.0 <= frac <= 1.0:  # also refuses NaN
        raise error(
            f"{what}: expected a fraction of the neurons between 0 and 1 (default "
            f"{MAX_OUTSIDE_FRACTION:g}), found {_plain(value)!r}"
        )
    return frac


def check_outside_atlas(
    atlas: AtlasVolume,
    positions_um: np.ndarray,
    *,
    max_outside: float = MAX_OUTSIDE_FRACTION,
    fix: str,
    allow: str,
    error: type[DecodingError] = RecordingError,
    where: str = "",
    when: str = "",
) -> OutsideCount:
    """Count the positions (N, 3) outside ``atlas``'s volume; refuse above ``max_outside``.

    The one threshold check shared by recording validation and the importers. Up to
    ``max_outside`` (a fraction of the neurons) the outside neurons are only counted (they keep
    their positions; atlas lookups label them ``"outside"``); above it ``error`` is raised, its
    message prefixed by ``where``, saying how many fell outside ``when`` (e.g. ``" after the
    affine"``), then ``fix`` (what is probably wrong) and ``allow`` (how to accept more).

    Parameters
    ----------
    atlas
        The atlas whose volume the positions should lie in.
    positions_um
        (N, 3) positions, atlas µm.
    max_outside
        Largest fraction of the neurons allowed outside.
    fix, allow, where, when
        Parts of the message (see above).
    error
        The error type to raise.

    Returns
    -------
    OutsideCount
        How many fell outside (at most ``max_outside`` of them).
    """
    inside = np.asarray(atlas.contains(positions_um), dtype=bool)
    count = OutsideCount(int(np.count_nonzero(~inside)), int(inside.size))
    if count.fraction <= max_outside:
        return count
    first = int(np.flatnonzero(~inside)[0])
    extent = np.asarray(atlas.shape_um, dtype=float).round(1).tolist()
    pos = np.round(np.asarray(positions_um, dtype=float)[first], 1).tolist()
    raise error(
        f"{where}{count.n_outside} of {count.n_neurons} neuron position(s) "
        f"({100 * count.fraction:.1f}%) fall outside the atlas {atlas.name!r} volume{when}, more "
        f"than the {100 * max_outside:g}% allowed (expected 0 <= x,y,z < {extent} µm; first: "
        f"neuron {first} at {pos}); {fix}; or keep them, labelled 'outside', by allowing a larger "
        f"fraction with {allow}"
    )


def _check_positions_in_atlas(
    path: Path | None, atlas_name: str, positions: np.ndarray, max_outside: float
) -> None:
    """At most ``max_outside`` of the positions may lie outside the atlas they name, if known."""
    if not atlas_name or positions.size == 0:
        return
    try:
        from decoding.atlas import default_atlas

        atlas = default_atlas()
    except (ImportError, DecodingError):  # no shipped atlas here: nothing to check against
        return
    if atlas_name != atlas.name:
        return
    check_outside_atlas(
        atlas,
        positions,
        max_outside=max_outside,
        fix="register the positions to the atlas or set the 'atlas' attribute to the space they "
        "live in",
        allow="the root attribute 'max_outside' (`python -m decoding import ... --max-outside "
        "FRACTION` writes it)",
        where=f"{_where(path, 'positions_um')}: ",
    )


#: A choice of neurons: None (all), a slice, a boolean mask or integer indices.
NeuronSelection = slice | np.ndarray | Sequence[int] | Sequence[bool] | None


def _normalise_neurons(neurons: NeuronSelection, n: int) -> slice | np.ndarray:
    if neurons is None:
        return slice(None)
    if isinstance(neurons, slice):
        return neurons
    idx = np.asarray(neurons)
    if idx.dtype == bool:
        idx = np.flatnonzero(idx)
    idx = idx.astype(np.int64).reshape(-1)
    if idx.size and (idx.min() < -n or idx.max() >= n):
        raise RecordingError(
            f"neuron index out of range: expected indices in [0, {n}), found "
            f"[{int(idx.min())}, {int(idx.max())}]"
        )
    return np.where(idx < 0, idx + n, idx)


# --------------------------------------------------------------------------------------------------
# checks of the constructor's arguments (``where``: the file, or None for in-memory recordings)
# --------------------------------------------------------------------------------------------------
def _check_rate(where: Path | None, frame_rate_hz: float) -> float:
    try:
        rate = float(frame_rate_hz)
    except (TypeError, ValueError):
        rate = float("nan")
    if not (math.isfinite(rate) and rate > 0):
        raise _fail(
            where,
            None,
            "attribute 'frame_rate_hz' must be a positive number, found "
            f"{_plain(frame_rate_hz)!r}",
        )
    return rate


def _check_activity_array(where: Path | None, activity: np.ndarray, finite: bool) -> np.ndarray:
    _check_float(where, "activity", activity, 2)
    activity = np.ascontiguousarray(activity, dtype=np.float32)
    if finite:
        _check_finite(where, "activity", activity)
    return activity


def _finite_table(
    where: Path | None, name: str, arr: np.ndarray, shape_ok: bool, expected: str
) -> np.ndarray:
    """A 2-D float array as contiguous float32, checked: floating, ``shape_ok`` (else the message
    ``expected`` followed by the shape found), finite."""
    _check_float(where, name, arr, 2)
    if not shape_ok:
        raise _fail(where, name, f"{expected} {tuple(arr.shape)}")
    arr = np.ascontiguousarray(arr, dtype=np.float32)
    _check_finite(where, name, arr)
    return arr


def _check_behavior(where: Path | None, behavior: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """(T, K) float32 behaviour (a 1-D array is one channel) with T rows like ``shape`` (T, N)."""
    behavior = np.asarray(behavior)
    if behavior.ndim == 1:
        behavior = behavior[:, None]
    return _finite_table(
        where,
        "behavior",
        behavior,
        behavior.ndim == 2 and behavior.shape[0] == shape[0],
        f"expected {shape[0]} frames (rows) to match /activity {shape}, found shape",
    )


def _channel_labels(
    where: Path | None, given: Sequence[str] | None, K: int, what: str, default: list[str]
) -> list[str]:
    """One label per behaviour channel (``what``: ``"names"`` or ``"units"``)."""
    labels = list(given) if given is not None else default
    if len(labels) != K:
        raise _fail(
            where,
            "behavior",
            f"expected {K} channel {what} (attribute {what!r}), found {len(labels)}: {labels}",
        )
    return [str(v) for v in labels]


def _check_positions(where: Path | None, positions_um: np.ndarray, N: int) -> np.ndarray:
    positions_um = np.asarray(positions_um)
    return _finite_table(
        where,
        "positions_um",
        positions_um,
        positions_um.shape == (N, 3),
        f"expected shape ({N}, 3) (one x, y, z row per neuron of /activity), found",
    )


def _check_neuron_ids(
    where: Path | None, neuron_ids: np.ndarray | None, N: int
) -> np.ndarray | None:
    if neuron_ids is None:
        return None
    neuron_ids = np.asarray(neuron_ids)
    if (
        np.issubdtype(neuron_ids.dtype, np.floating)
        and np.isfinite(neuron_ids).all()
        and np.all(np.mod(neuron_ids, 1) == 0)
    ):
        neuron_ids = neuron_ids.astype(np.int64)  # MATLAB writes doubles
    if neuron_ids.shape != (N,) or not np.issubdtype(neuron_ids.dtype, np.integer):
        raise _fail(
            where,
            "neuron_ids",
            f"expected ({N},) integers, found shape "
            f"{tuple(neuron_ids.shape)} dtype {neuron_ids.dtype}",
        )
    return neuron_ids.astype(np.int64)


def _check_regions(where: Path | None, regions: np.ndarray | None, N: int) -> np.ndarray | None:
    if regions is None:
        return None
    regions = np.asarray(regions).astype(str)
    if regions.shape != (N,):
        raise _fail(
            where, "regions", f"expected ({N},) strings, found shape {tuple(regions.shape)}"
        )
    return regions


def _check_ground_truth(where: Path | None, gt: GroundTruth, sizes: tuple[int, int, int]) -> None:
    T, N, K = sizes
    checks = (
        ("ground_truth/behavior_clean", gt.behavior_clean.shape, (T, K)),
        ("ground_truth/driver_weight", gt.driver_weight.shape, (N, K)),
        ("ground_truth/role", gt.role.shape, (N,)),
        ("ground_truth/noise_std", gt.noise_std.shape, (K,)),
    )
    for name, found, expected in checks:
        if tuple(found) != expected:
            raise _fail(where, name, f"expected shape {expected}, found {tuple(found)}")
    _check_finite(where, "ground_truth/behavior_clean", gt.behavior_clean)


# --------------------------------------------------------------------------------------------------
# Recording
# --------------------------------------------------------------------------------------------------
class Recording:
    """One fish: activity (T, N), behaviour (T, K), positions (N, 3), epochs, optional truth.

    Build one from arrays (validated here) or with :meth:`load` (lazy: ``activity`` is read from the
    file on first access). ``times_s`` is computed from ``frame_rate_hz``.

    When ``atlas`` names the shipped atlas, at most ``max_outside`` (default
    :data:`MAX_OUTSIDE_FRACTION`) of the neurons may lie outside its volume: they are kept, and
    atlas lookups label them ``"outside"``; more is refused (the registration is probably wrong).
    """

    def __init__(
        self,
        activity: np.ndarray | None,
        behavior: np.ndarray,
        positions_um: np.ndarray,
        *,
        frame_rate_hz: float,
        behavior_names: Sequence[str] | None = None,
        behavior_units: Sequence[str] | None = None,
        epochs: Iterable[Epoch] = (),
        fish_id: str = "fish",
        atlas: str = "",
        source: str = "",
        neuron_ids: np.ndarray | None = None,
        regions: np.ndarray | None = None,
        ground_truth: GroundTruth | None = None,
        path: Path | None = None,
        max_outside: float = MAX_OUTSIDE_FRACTION,
        _lazy_shape: tuple[int, int] | None = None,
        _check_activity: bool = True,
    ) -> None:
        where = path
        self.path = Path(path) if path is not None else None
        self.fish_id = str(fish_id)
        self.atlas = str(atlas)
        self.source = str(source)
        self.max_outside = check_max_outside(
            max_outside,
            f"{_where(where)}: max_outside (neurons allowed outside the atlas)",
            RecordingError,
        )
        self.frame_rate_hz = _check_rate(where, frame_rate_hz)
        # activity: in memory, or lazy (shape known from the file)
        self._activity: np.ndarray | None = None
        if activity is not None:
            self._activity = _check_activity_array(where, activity, _check_activity)
            self._shape = (int(activity.shape[0]), int(activity.shape[1]))
        elif _lazy_shape is not None and self.path is not None:
            self._shape = (int(_lazy_shape[0]), int(_lazy_shape[1]))
        else:
            raise RecordingError("Recording needs an activity array (T, N)")
        T, N = self._shape
        self.behavior = _check_behavior(where, behavior, (T, N))
        K = self.behavior.shape[1]
        self.behavior_names = _channel_labels(
            where, behavior_names, K, "names", [f"ch{i}" for i in range(K)]
        )
        self.behavior_units = _channel_labels(where, behavior_units, K, "units", [""] * K)
        self.positions_um = _check_positions(where, positions_um, N)
        _check_positions_in_atlas(where, self.atlas, self.positions_um, self.max_outside)
        self.neuron_ids = _check_neuron_ids(where, neuron_ids, N)
        self.regions = _check_regions(where, regions, N)
        if ground_truth is not None:
            _check_ground_truth(where, ground_truth, (T, N, K))
        self.ground_truth = ground_truth
        self.epochs = _check_epochs(where, list(epochs), T)

    # ---------------------------------------------------------------------------------- shapes
    @property
    def n_frames(self) -> int:
        """T, the number of imaging frames."""
        return self._shape[0]

    @property
    def n_neurons(self) -> int:
        """N, the number of neurons."""
        return self._shape[1]

    @property
    def n_behavior(self) -> int:
        """K, the number of behaviour channels."""
        return int(self.behavior.shape[1])

    @property
    def times_s(self) -> np.ndarray:
        """(T,) time of each frame in seconds, ``arange(T) / frame_rate_hz``."""
        return np.arange(self.n_frames, dtype=np.float64) / self.frame_rate_hz

    @property
    def duration_s(self) -> float:
        """Length of the recording in seconds."""
        return self.n_frames / self.frame_rate_hz

    @property
    def is_loaded(self) -> bool:
        """Whether ``activity`` is in memory (False for a lazily opened file not yet read)."""
        return self._activity is not None

    # ---------------------------------------------------------------------------------- activity
    @property
    def activity(self) -> np.ndarray:
        """(T, N) float32 ΔF/F; read from the file on first access and kept in memory."""
        if self._activity is None:
            self._activity = self.read_activity()
        return self._activity

    def read_activity(
        self, start: int = 0, stop: int | None = None, neurons: NeuronSelection = None
    ) -> np.ndarray:
        """(stop - start, n) float32 activity of frames ``[start, stop)`` and the chosen neurons.

        Reads only the needed chunks from disk when the activity is not in memory. ``neurons`` is
        ``None`` (all), a slice, a boolean mask or integer indices (any order).

        Parameters
        ----------
        start, stop
            Frames ``[start, stop)`` (default: all).
        neurons
            Which neurons (default: all), in the order given.

        Returns
        -------
        np.ndarray
            (stop - start, n) float32, a copy.
        """
        T, N = self._shape
        stop = T if stop is None else int(stop)
        start = int(start)
        if not 0 <= start <= stop <= T:
            raise RecordingError(
                f"{_where(self.path, 'activity')}: frame range [{start}, {stop}) is outside "
                f"[0, {T}]"
            )
        cols = _normalise_neurons(neurons, N)
        if self._activity is not None:
            return np.array(self._activity[start:stop][:, cols], dtype=np.float32, copy=True)
        return self._read_from_file(start, stop, cols)

    def _read_from_file(self, start: int, stop: int, cols: slice | np.ndarray) -> np.ndarray:
        """Read rows in chunk-aligned blocks (about twice as fast as one big read, bounded temp)."""
        assert self.path is not None
        N = self._shape[1]
        sparse: np.ndarray | None = None  # few scattered neurons: let HDF5 pick them
        pick: np.ndarray | None = None  # columns to take from the [lo, hi) block
        inverse: np.ndarray | None = None
        if isinstance(cols, slice) and cols.step in (None, 1):
            lo, hi, _ = cols.indices(N)
            hi = max(lo, hi)
        else:
            idx = np.arange(*cols.indices(N)) if isinstance(cols, slice) else cols
            if len(idx) == 0:
                return np.zeros((stop - start, 0), dtype=np.float32)
            uniq, inverse = np.unique(idx, return_inverse=True)
            lo, hi = int(uniq[0]), int(uniq[-1]) + 1
            if len(uniq) > 0.25 * (hi - lo):  # dense: read the block, pick in memory
                pick = (uniq - lo)[inverse]
            else:
                sparse = uniq
        n_out = hi - lo if pick is None and sparse is None else len(inverse)  # type: ignore[arg-type]
        out = np.empty((stop - start, n_out), dtype=np.float32)
        if out.size == 0:
            return out
        try:
            with h5py.File(self.path, "r") as f:
                ds = f["activity"]
                crow = ds.chunks[0] if ds.chunks else CHUNK_FRAMES
                width = len(sparse) if sparse is not None else hi - lo
                rows = max(crow, (_SCAN_BYTES // max(4 * width, 1)) // crow * crow)
                a = start
                while a < stop:
                    b = min(stop, (a // rows + 1) * rows)  # chunk-aligned block ends
                    if sparse is not None:
                        out[a - start : b - start] = ds[a:b, sparse][:, inverse]
                    elif pick is not None:
                        out[a - start : b - start] = ds[a:b, lo:hi][:, pick]
                    else:
                        out[a - start : b - start] = ds[a:b, lo:hi]
                    a = b
        except OSError as exc:
            raise _fail(
                self.path,
                "activity",
                f"could not be read ({exc}); the file may be truncated or corrupt, write it again",
            ) from exc
        return out

    # ---------------------------------------------------------------------------------- epochs
    @property
    def epoch_names(self) -> list[str]:
        """Distinct epoch names in order of first appearance."""
        return list(dict.fromkeys(e.name for e in self.epochs))

    def epoch(self, name: str) -> Epoch:
        """The first epoch called ``name``; :class:`RecordingError` listing known names if none.

        Parameters
        ----------
        name
            The epoch name.

        Returns
        -------
        Epoch
            The first of that name.
        """
        named = self.epochs_named(name)
        if named:
            return named[0]
        known = ", ".join(self.epoch_names) or "(none)"
        raise RecordingError(f"{_where(self.path)}: no epoch named {name!r}; known epochs: {known}")

    def epochs_named(self, name: str) -> list[Epoch]:
        """Every epoch called ``name`` (a protocol usually repeats each stimulus).

        Parameters
        ----------
        name
            The epoch name.

        Returns
        -------
        list[Epoch]
            In time order (empty if none).
        """
        return [e for e in self.epochs if e.name == name]

    def epoch_labels(self) -> np.ndarray:
        """(T,) str: the epoch name of every frame ("" outside any epoch).

        Returns
        -------
        np.ndarray
            (T,) str.
        """
        labels = np.full(self.n_frames, "", dtype=object)
        for ep in self.epochs:
            labels[ep.start : ep.stop] = ep.name
        return labels.astype(str)

    # ---------------------------------------------------------------------------------- derive
    def slice(self, start: int, stop: int) -> Recording:
        """Frames ``[start, stop)`` as a new in-memory Recording; epochs clipped and shifted.

        Parameters
        ----------
        start, stop
            Frames ``[start, stop)``, ``0 <= start < stop <= T``.

        Returns
        -------
        Recording
            In memory, same neurons and metadata.
        """
        T = self.n_frames
        if not 0 <= start < stop <= T:
            raise RecordingError(
                f"{_where(self.path)}: slice [{start}, {stop}) must satisfy "
                f"0 <= start < stop <= {T}"
            )
        epochs = []
        for ep in self.epochs:
            a, b = max(ep.start, start), min(ep.stop, stop)
            if a < b:
                epochs.append(Epoch(ep.name, a - start, b - start, ep.params))
        gt = self.ground_truth
        if gt is not None:
            gt = GroundTruth(gt.behavior_clean[start:stop], gt.driver_weight, gt.role, gt.noise_std)
        return Recording(
            self.read_activity(start, stop),
            self.behavior[start:stop],
            self.positions_um,
            frame_rate_hz=self.frame_rate_hz,
            behavior_names=self.behavior_names,
            behavior_units=self.behavior_units,
            epochs=epochs,
            fish_id=self.fish_id,
            atlas=self.atlas,
            source=self.source,
            neuron_ids=self.neuron_ids,
            regions=self.regions,
            ground_truth=gt,
            max_outside=self.max_outside,
            _check_activity=False,
        )

    def __repr__(self) -> str:
        return (
            f"Recording(fish_id={self.fish_id!r}, T={self.n_frames}, N={self.n_neurons}, "
            f"K={self.n_behavior}, {self.frame_rate_hz:g} Hz, {len(self.epochs)} epochs, "
            f"atlas={self.atlas!r}{', ground truth' if self.ground_truth is not None else ''})"
        )

    # ---------------------------------------------------------------------------------- I/O
    def save(self, path: str | os.PathLike) -> Path:
        """Write the recording to ``path`` (HDF5) atomically; returns the path.

        A lazily opened recording is copied chunk by chunk, never loaded whole.

        Parameters
        ----------
        path
            The ``.h5`` file to write (replaced atomically).

        Returns
        -------
        Path
            ``path``.
        """
        path = Path(path)
        T, N = self._shape
        str_dt = h5py.string_dtype("utf-8")
        with atomic_write_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = np.int64(FORMAT_VERSION)
            f.attrs["frame_rate_hz"] = np.float64(self.frame_rate_hz)
            f.attrs["fish_id"] = self.fish_id
            f.attrs["atlas"] = self.atlas
            f.attrs["source"] = self.source
            if self.max_outside != MAX_OUTSIDE_FRACTION:  # an import accepted more outside
                f.attrs["max_outside"] = np.float64(self.max_outside)
            chunks = (max(1, min(T, CHUNK_FRAMES)), max(1, min(N, CHUNK_NEURONS)))
            ds = f.create_dataset(
                "activity", shape=(T, N), dtype=np.float32, chunks=chunks, **COMPRESSION
            )
            ds.attrs["units"] = "dF/F"
            step = max(CHUNK_FRAMES, (_SCAN_BYTES // max(4 * N, 1)) // CHUNK_FRAMES * CHUNK_FRAMES)
            for a in range(0, T, step):
                ds[a : a + step] = self.read_activity(a, min(T, a + step))
            b = f.create_dataset("behavior", data=self.behavior, dtype=np.float32)
            b.attrs["names"] = np.array(self.behavior_names, dtype=object).astype(str_dt)
            b.attrs["units"] = np.array(self.behavior_units, dtype=object).astype(str_dt)
            f.create_dataset("positions_um", data=self.positions_um, dtype=np.float32)
            g = f.create_group("epochs")
            g.create_dataset("name", data=[e.name for e in self.epochs], dtype=str_dt)
            g.create_dataset("start", data=np.array([e.start for e in self.epochs], np.int64))
            g.create_dataset("stop", data=np.array([e.stop for e in self.epochs], np.int64))
            g.create_dataset(
                "params",
                data=[json.dumps(dict(e.params)) for e in self.epochs],
                dtype=str_dt,
            )
            if self.neuron_ids is not None:
                f.create_dataset("neuron_ids", data=self.neuron_ids.astype(np.int64))
            if self.regions is not None:
                f.create_dataset("regions", data=self.regions.astype(object), dtype=str_dt)
            gt = self.ground_truth
            if gt is not None:
                h = f.create_group("ground_truth")
                h.create_dataset("behavior_clean", data=gt.behavior_clean, dtype=np.float32)
                h.create_dataset("driver_weight", data=gt.driver_weight, dtype=np.float32)
                h.create_dataset("role", data=gt.role.astype(object), dtype=str_dt)
                h.create_dataset("noise_std", data=gt.noise_std, dtype=np.float32)
        return path

    @classmethod
    def load(cls, path: str | os.PathLike, *, validate: bool = True) -> Recording:
        """Open a recording file; ``activity`` stays on disk until first used.

        With ``validate`` (default) everything is checked now, including a chunked NaN/inf scan of
        ``/activity`` whose memory stays bounded (skipped when the same unchanged file already
        passed it in this process); any problem raises :class:`RecordingError`.

        Parameters
        ----------
        path
            An ``nlp4neuro-recording`` HDF5 file.
        validate
            Check every value now (else only the structure).

        Returns
        -------
        Recording
            Lazy: activity read on first use.
        """
        path = Path(path)
        if not path.exists():
            raise RecordingError(f"{path}: no such recording file; check the path")
        if path.is_dir():
            raise RecordingError(f"{path}: expected an HDF5 recording file, found a folder")
        if not h5py.is_hdf5(path):
            raise RecordingError(
                f"{path}: not an HDF5 file (expected an {FORMAT_NAME} .h5 file; see the README "
                "'Recording file format', or use `python -m decoding import` for lab formats)"
            )
        try:
            with h5py.File(path, "r") as f:
                kwargs, shape = _read_structure(path, f)
                key = file_key(path)
                if validate and key not in _SCANNED:
                    _scan_activity(path, f["activity"])
                    _SCANNED.add(key)
        except RecordingError:
            raise
        except (OSError, KeyError, ValueError, TypeError) as exc:
            raise RecordingError(
                f"{path}: could not be read as an HDF5 file ({exc}); it may be truncated or "
                "corrupt, write it again"
            ) from exc
        return cls(None, path=path, _lazy_shape=shape, **kwargs)



# --------------------------------------------------------------------------------------------------
# frame ranges: one resolution of "which frames" for training, salience and the dashboard
# --------------------------------------------------------------------------------------------------
#: Names that select a part of a chronological split (see :class:`SplitParts`).
SPLIT_PARTS: tuple[str, ...] = ("train", "val", "test")


class SplitParts(Protocol):
    """A chronological split: the frames of each part (``decoding.windows.Split`` is one)."""

    @property
    def train(self) -> range: ...

    @property
    def val(self) -> range: ...

    @property
    def test(self) -> range: ...


def frame_ranges(
    recording: Recording,
    *,
    epoch: str | None = None,
    start: int | None = None,
    stop: int | None = None,
    split: SplitParts | None = None,
) -> list[tuple[int, int]]:
    """The frame ranges ``[start, stop)`` a selection names, in recording order.

    Parameters
    ----------
    recording
        The recording whose frames are selected.
    epoch
        ``"name"``: every epoch of that name, in order (a protocol usually repeats a stimulus);
        ``"name#k"``: the k-th of them (1-based); ``"train"``, ``"val"`` or ``"test"`` with a
        ``split``: that part. Not together with ``start``/``stop``.
    start, stop
        One range ``[start, stop)``; defaults 0 and the recording's frame count. Must satisfy
        ``0 <= start < stop <= n_frames``.
    split
        The split that ``"train"``/``"val"``/``"test"`` refer to (usually a checkpoint's).

    Returns
    -------
    list[tuple[int, int]]
        One or more ``(start, stop)`` pairs, never empty.

    Raises
    ------
    RecordingError
        Naming what was expected and what was found (the known epoch names; ``left#1 .. left#3``).
    """
    if epoch is not None:
        if start is not None or stop is not None:
            raise RecordingError(
                f"{_where(recording.path)}: give either an epoch or start/stop frames, not both; "
                f"found epoch={epoch!r}, start={start}, stop={stop}"
            )
        return _epoch_ranges(recording, epoch, split)
    T = recording.n_frames
    a = 0 if start is None else int(start)
    b = T if stop is None else int(stop)
    _check_inside(recording, a, b, "frame range")
    return [(a, b)]


def range_label(
    recording: Recording,
    *,
    epoch: str | None = None,
    start: int | None = None,
    stop: int | None = None,
    split: SplitParts | None = None,
) -> str:
    """A short label of a selection: the epoch as given, else ``"frames a-b"``.

    Parameters
    ----------
    recording, epoch, start, stop, split
        As for :func:`frame_ranges` (the selection is checked the same way).

    Returns
    -------
    str
        ``epoch`` itself (``"left"``, ``"left#2"``, ``"test"``) or ``"frames {start}-{stop}"``.
    """
    ranges = frame_ranges(recording, epoch=epoch, start=start, stop=stop, split=split)
    if epoch is not None:
        return epoch
    a, b = ranges[0]
    return f"frames {a}-{b}"


def epoch_reference(recording: Recording, index: int) -> str:
    """The ``"name#k"`` reference of ``recording.epochs[index]`` (k counts epochs of that name).

    Parameters
    ----------
    recording
        The recording.
    index
        Position in ``recording.epochs`` (0-based).

    Returns
    -------
    str
        A reference :func:`frame_ranges` resolves to exactly that epoch.
    """
    if not 0 <= index < len(recording.epochs):
        raise RecordingError(
            f"{_where(recording.path)}: epoch index {index}: expected 0 .. "
            f"{len(recording.epochs) - 1}"
        )
    name = recording.epochs[index].name
    k = sum(e.name == name for e in recording.epochs[: index + 1])
    return f"{name}#{k}"


def _check_inside(recording: Recording, a: int, b: int, what: str) -> None:
    T = recording.n_frames
    if not 0 <= a < b <= T:
        raise RecordingError(
            f"{_where(recording.path)}: {what} [{a}, {b}) is not inside the recording "
            f"{recording.fish_id!r}; expected 0 <= start < stop <= {T}"
        )


def _epoch_ranges(
    recording: Recording, epoch: str, split: SplitParts | None
) -> list[tuple[int, int]]:
    """:func:`frame_ranges` for an epoch name, ``name#k`` or a split part."""
    if epoch in SPLIT_PARTS and split is not None:
        part = {"train": split.train, "val": split.val, "test": split.test}[epoch]
        a, b = (part.start, part.stop) if isinstance(part, range) else part
        _check_inside(recording, int(a), int(b), f"split part {epoch!r}")
        return [(int(a), int(b))]
    every = recording.epochs_named(epoch)
    if every:  # an exact name wins, even one that contains '#'
        return [(e.start, e.stop) for e in every]
    name, sep, nth = epoch.rpartition("#")
    every = recording.epochs_named(name) if sep else []
    if not every:
        known = ", ".join(recording.epoch_names) or "(none)"
        hint = (
            f"; {epoch!r} names a split part only together with a split (a checkpoint's)"
            if epoch in SPLIT_PARTS
            else ""
        )
        raise RecordingError(
            f"{_where(recording.path)}: no epoch named {epoch!r}; known epochs: {known}{hint}"
        )
    if not nth.isdigit() or not 1 <= int(nth) <= len(every):
        raise RecordingError(
            f"{_where(recording.path)}: epoch {epoch!r}: the recording has {len(every)} epochs "
            f"named {name!r}; use {name}#1 .. {name}#{len(every)}"
        )
    ep = every[int(nth) - 1]
    return [(ep.start, ep.stop)]


def _check_format(path: Path, f: h5py.File) -> None:
    """The root attributes ``format``, ``format_version`` and ``frame_rate_hz``."""
    fmt = _as_str(f.attrs.get("format", ""))
    if fmt != FORMAT_NAME:
        raise _fail(
            path,
            None,
            f"root attribute 'format' should be {FORMAT_NAME!r}, found {fmt or '(missing)'!r}; "
            "is this a recording written by this software? (lab formats: `python -m decoding "
            "import`)",
        )
    version = f.attrs.get("format_version")
    try:
        version_int = int(np.asarray(version).reshape(-1)[0])
    except (TypeError, ValueError, IndexError):
        version_int = None
    if version_int != FORMAT_VERSION:
        raise _fail(
            path,
            None,
            f"unknown format version {_plain(version)!r} (attribute 'format_version'): this "
            f"software reads version {FORMAT_VERSION}; upgrade NLP4Neuro Explorer or rewrite "
            "the file",
        )
    if "frame_rate_hz" not in f.attrs:
        raise _fail(path, None, "missing root attribute 'frame_rate_hz' (imaging rate in Hz)")


def _check_required(path: Path, f: h5py.File) -> tuple[int, int]:
    """The required datasets exist with the right kind and agree on T; returns (T, N)."""
    for name in _REQUIRED:
        if name not in f:
            raise _fail(
                path, name, "missing dataset (required: /activity, /behavior, /positions_um)"
            )
        if not isinstance(f[name], h5py.Dataset):
            raise _fail(path, name, "expected a dataset, found a group")
    act = f["activity"]
    _check_float(path, "activity", act, 2)
    T, N = (int(s) for s in act.shape)
    beh = f["behavior"]
    _check_float(path, "behavior", beh, 2)
    if beh.shape[0] != T:
        raise _fail(
            path,
            "behavior",
            f"expected {T} frames (rows) to match /activity {(T, N)}, found "
            f"shape {tuple(beh.shape)} (T mismatch between activity and behaviour)",
        )
    _check_float(path, "positions_um", f["positions_um"], 2)
    return T, N


def _behavior_label(f: h5py.File, what: str) -> list[str] | None:
    """Channel ``names``/``units``: the /behavior attribute, else a /behavior_<what> dataset."""
    beh = f["behavior"]
    if what in beh.attrs:
        return _str_list(beh.attrs[what])
    if f"behavior_{what}" in f:
        return _str_list(f[f"behavior_{what}"].asstr()[()])
    return None


def _optional(f: h5py.File, name: str, kind: str) -> np.ndarray | None:
    """Dataset ``name`` as an array (``kind="str"``: as str), or None when absent."""
    if name not in f:
        return None
    ds = f[name]
    if kind == "str":
        return np.asarray(ds.asstr()[()] if ds.dtype.kind in "OS" else ds[()]).astype(str)
    return np.asarray(ds[()])


def _read_ground_truth(path: Path, f: h5py.File) -> GroundTruth | None:
    if "ground_truth" not in f:
        return None
    g = f["ground_truth"]
    missing = [k for k in ("behavior_clean", "driver_weight", "role", "noise_std") if k not in g]
    if missing:
        raise _fail(path, f"ground_truth/{missing[0]}", "missing dataset in /ground_truth")
    return GroundTruth(
        behavior_clean=g["behavior_clean"][()],
        driver_weight=g["driver_weight"][()],
        role=_optional(f, "ground_truth/role", "str"),
        noise_std=g["noise_std"][()],
    )


def _read_structure(path: Path, f: h5py.File) -> tuple[dict[str, Any], tuple[int, int]]:
    """Check the root attributes and read everything except /activity."""
    _check_format(path, f)
    shape = _check_required(path, f)
    names = _behavior_label(f, "names")
    units = _behavior_label(f, "units")
    epochs = _read_epochs(path, f["epochs"]) if "epochs" in f else []
    kwargs: dict[str, Any] = dict(
        behavior=f["behavior"][()],
        positions_um=f["positions_um"][()],
        frame_rate_hz=np.asarray(f.attrs["frame_rate_hz"]).reshape(-1)[0],
        behavior_names=names,
        behavior_units=units,
        epochs=epochs,
        fish_id=_as_str(f.attrs.get("fish_id", path.stem)),
        atlas=_as_str(f.attrs.get("atlas", "")),
        source=_as_str(f.attrs.get("source", "")),
        max_outside=_plain(f.attrs.get("max_outside", MAX_OUTSIDE_FRACTION)),
        neuron_ids=_optional(f, "neuron_ids", "int"),
        regions=_optional(f, "regions", "str"),
        ground_truth=_read_ground_truth(path, f),
    )
    return kwargs, shape


def _read_epochs(path: Path, g: h5py.Group | h5py.Dataset) -> list[Epoch]:
    """Epochs from a group of parallel datasets ``name``/``start``/``stop``[/``params``]."""
    if isinstance(g, h5py.Dataset):
        if g.dtype.names is None:
            raise _fail(path, "epochs", "expected a group with name/start/stop datasets")
        cols = {k: g[k] for k in g.dtype.names}
    else:
        cols = {k: g[k][()] for k in g if isinstance(g[k], h5py.Dataset)}
    missing = [k for k in ("name", "start", "stop") if k not in cols]
    if missing:
        raise _fail(path, f"epochs/{missing[0]}", "missing dataset (epochs need name, start, stop)")
    names = _str_list(cols["name"])
    starts = np.asarray(cols["start"]).reshape(-1)
    stops = np.asarray(cols["stop"]).reshape(-1)
    params = _str_list(cols["params"]) if "params" in cols else ["{}"] * len(names)
    if not (len(names) == len(starts) == len(stops) == len(params)):
        raise _fail(
            path,
            "epochs",
            f"name/start/stop/params must have the same length, found "
            f"{len(names)}/{len(starts)}/{len(stops)}/{len(params)}",
        )
    for k, arr in (("start", starts), ("stop", stops)):
        if arr.size and not np.issubdtype(arr.dtype, np.integer):
            if np.issubdtype(arr.dtype, np.floating) and np.all(np.mod(arr, 1) == 0):
                continue
            raise _fail(path, f"epochs/{k}", f"expected integer frame indices, found {arr.dtype}")
    out = []
    for i, (n, a, b, p) in enumerate(zip(names, starts, stops, params, strict=True)):
        try:
            par = json.loads(p) if p else {}
        except json.JSONDecodeError as exc:
            raise _fail(
                path, "epochs/params", f"row {i}: expected a JSON object, found {p!r}"
            ) from exc
        if not isinstance(par, dict):
            raise _fail(path, "epochs/params", f"row {i}: expected a JSON object, found {p!r}")
        try:
            out.append(Epoch(n, int(a), int(b), par))
        except RecordingError as exc:
            raise _fail(path, "epochs", f"row {i}: {exc}") from None
    return out


#: Files whose /activity passed the NaN/inf scan in this process, keyed by (path, size, mtime):
#: re-opening an unchanged file skips the scan.
_SCANNED: set[tuple[str, int, int]] = set()


def _scan_activity(path: Path, ds: h5py.Dataset) -> None:
    """Chunked NaN/inf scan of /activity: reads at most ~32 MB at a time."""
    T, N = ds.shape
    chunk_rows = ds.chunks[0] if ds.chunks else CHUNK_FRAMES
    rows = max(1, _SCAN_BYTES // max(4 * N, 1))
    rows = max(chunk_rows, rows // chunk_rows * chunk_rows)
    for a in range(0, T, rows):
        try:
            block = ds[a : a + rows]
        except OSError as exc:
            raise _fail(
                path,
                "activity",
                f"frames {a}-{min(T, a + rows)} could not be read ({exc}); the "
                "file is truncated or corrupt, write it again",
            ) from exc
        _check_finite(path, "activity", block, offset=a)


def load_recording(path: str | os.PathLike, *, validate: bool = True) -> Recording:
    """Open a recording file (lazy, validated). See :meth:`Recording.load`.

    Parameters
    ----------
    path
        An ``nlp4neuro-recording`` HDF5 file.
    validate
        See :meth:`Recording.load`.

    Returns
    -------
    Recording
        The lazily opened recording.
    """
    return Recording.load(path, validate=validate)


def save_recording(recording: Recording, path: str | os.PathLike) -> Path:
    """Write ``recording`` to ``path`` atomically. See :meth:`Recording.save`.

    Parameters
    ----------
    recording
        The recording.
    path
        The ``.h5`` file to write.

    Returns
    -------
    Path
        ``path``.
    """
    return recording.save(path)
