"""The dashboard's only caching module: every ``st.cache_data`` / ``st.cache_resource`` lives here.

Each cached function is a thin call into ``decoding/``. Keys include file modification times, so a
recording or checkpoint rewritten on disk is reloaded, and a revisited selection is instant.
``st.cache_resource`` holds objects shared read-only by every session (recordings, the atlas, loaded
models, big arrays); ``st.cache_data`` holds small derived values. (Streamlit leaves arguments whose
name starts with ``_`` out of the key, so modification times are passed as ``mtime``.)
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import astuple, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Generic, TypeVar

import numpy as np
import streamlit as st

from dashboard.figures import MeshSpec
from dashboard.settings import REPO_ROOT
from decoding.errors import DecodingError
from decoding.io_utils import cache_root, file_key

if TYPE_CHECKING:  # the heavy modules are imported where they are used (startup time)
    import torch

    from decoding.atlas import Atlas
    from decoding.checkpoint import CheckpointInfo
    from decoding.recording import Recording
    from decoding.salience import SalienceRequest, SalienceResult
    from decoding.windows import Split

__all__ = [
    "RecordingEntry",
    "CheckpointEntry",
    "list_recordings",
    "list_checkpoints",
    "recording",
    "AtlasEntry",
    "list_atlases",
    "atlas_for",
    "brain_meshes",
    "neuron_regions",
    "split_for",
    "model",
    "Answers",
    "PredictionKey",
    "PREDICTIONS",
    "predictions",
    "SalienceKey",
    "SALIENCE",
    "salience",
    "recording_fingerprint",
    "recording_mismatch",
    "stored_note",
    "cache_dir",
    "device_status",
]

K = TypeVar("K")
V = TypeVar("V")

RECORDING_SUFFIXES = (".h5", ".hdf5")
DISPLAY_MESH_UM = 12.0


def mtime_ns(path: str | Path) -> int:
    """Modification time of a file, or of the newest file of a folder (a cache-key ingredient).

    Parameters
    ----------
    path
        A file or a folder (e.g. a checkpoint's).

    Returns
    -------
    int
        Nanoseconds, from :func:`decoding.io_utils.file_key`; 0 when nothing can be read.
    """
    p = Path(path)
    try:
        if p.is_dir():
            return max((file_key(c)[2] for c in p.iterdir() if c.is_file()), default=0)
        return file_key(p)[2]
    except OSError:
        return 0


def cache_dir() -> Path:
    """Where computed results (predictions, salience) are cached on disk.

    Returns
    -------
    Path
        The project's one cache folder, :func:`decoding.io_utils.cache_root`
        (``$NLP4NEURO_CACHE``, else ``~/.cache/nlp4neuro``); each kind adds its subfolder.
    """
    return cache_root()


# ------------------------------------------------------------------------------ listings (no cache)
@dataclass(frozen=True)
class RecordingEntry:
    key: str
    path: Path
    size_mb: float


def list_recordings(data_dirs: tuple[Path, ...]) -> list[RecordingEntry]:
    """Recording files (``*.h5``) directly inside the data folders (and one level below).

    Parameters
    ----------
    data_dirs
        The data folders (missing ones are skipped).

    Returns
    -------
    list[RecordingEntry]
        Keyed by file stem, or ``folder/stem`` where two folders hold the same stem.
    """
    found: list[Path] = []
    for d in data_dirs:
        if not d.is_dir():
            continue
        for p in sorted(d.glob("*")) + sorted(d.glob("*/*")):
            if (
                p.is_file()
                and p.suffix.lower() in RECORDING_SUFFIXES
                and not p.name.startswith(".")
            ):
                found.append(p)
    stems = [p.stem for p in found]
    entries = []
    for p in found:
        key = p.stem if stems.count(p.stem) == 1 else f"{p.parent.name}/{p.stem}"
        entries.append(RecordingEntry(key, p, p.stat().st_size / 2**20))
    return entries


@dataclass(frozen=True)
class CheckpointEntry:
    key: str  # path relative to the repository root when inside it, else absolute
    path: Path
    backbone: str
    init: str
    mode: str
    window: int | None
    n_neurons: int | None
    fish_id: str
    metrics: dict[str, Any]
    label: str
    error: str = ""
    metrics_on: str = ""  # short id of the recording the stored metrics belong to ("" = unknown)

    @property
    def stored_note(self) -> str:
        """``"stored at training, on fish@abcdef12"``: where the stored metrics come from."""
        return stored_note(self.metrics_on)


def stored_note(recording_id: str) -> str:
    """How stored metrics are labelled.

    Parameters
    ----------
    recording_id
        Short id of the recording they were computed on (``""``: unknown, for checkpoints older
        than recording fingerprints).

    Returns
    -------
    str
        ``"stored at training, on fish@abcdef12"`` (or ``on an unknown recording``).
    """
    return f"stored at training, on {recording_id or 'an unknown recording'}"


def _metrics_on(info: CheckpointInfo, metrics: dict[str, Any]) -> str:
    """The recording the stored metrics describe: their own ``recording`` tag, else the
    checkpoint's training-recording fingerprint, else ``""`` (unknown)."""
    from decoding.provenance import short_id

    tag = metrics.get("recording")
    if isinstance(tag, str) and tag:
        return tag
    return short_id(info.recording) if info.recording else ""


def _checkpoint_entry(path: Path) -> CheckpointEntry:
    from decoding.checkpoint import read_info

    try:
        key = str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        key = str(path.resolve())
    try:
        info = read_info(path)
    except DecodingError as exc:
        return CheckpointEntry(
            key,
            path,
            "?",
            "",
            "",
            None,
            None,
            "",
            {},
            f"⚠ {path.name} — unreadable",
            error=str(exc),
        )
    metrics = info.metrics or {}
    if isinstance(metrics.get("test"), dict):
        metrics = metrics["test"]
    rmse = metrics.get("rmse")
    metrics_on = _metrics_on(info, metrics)
    label = f"{path.name} — {info.spec.name}/{info.spec.init}/{info.mode}, window {info.window}"
    if isinstance(rmse, int | float):
        label += f", test RMSE {rmse:.3f} ({stored_note(metrics_on)})"
    if info.cancelled:
        label += " (cancelled)"
    return CheckpointEntry(
        key=key,
        path=path,
        backbone=info.spec.name,
        init=info.spec.init,
        mode=info.mode,
        window=info.window,
        n_neurons=info.n_neurons,
        fish_id=info.fish_id,
        metrics=metrics,
        label=label,
        metrics_on=metrics_on,
    )


def list_checkpoints(dirs: tuple[Path, ...]) -> list[CheckpointEntry]:
    """Checkpoint folders (``config.json`` + ``model.safetensors``) up to three levels below.

    Parameters
    ----------
    dirs
        The checkpoint folders (missing ones are skipped; hidden folders are left out).

    Returns
    -------
    list[CheckpointEntry]
        Sorted by key; an unreadable checkpoint is listed with its error.
    """
    seen: dict[Path, CheckpointEntry] = {}
    for d in dirs:
        if not d.is_dir():
            continue
        for pattern in (
            "model.safetensors",
            "*/model.safetensors",
            "*/*/model.safetensors",
            "*/*/*/model.safetensors",
        ):
            for f in d.glob(pattern):
                folder = f.parent.resolve()
                if folder in seen or any(part.startswith(".") for part in folder.parts[-2:]):
                    continue
                if (folder / "config.json").is_file():
                    seen[folder] = _cached_entry(str(folder), mtime_ns(folder))
    return sorted(seen.values(), key=lambda e: e.key)


@st.cache_data(show_spinner=False, max_entries=500)
def _cached_entry(folder: str, mtime: int) -> CheckpointEntry:
    return _checkpoint_entry(Path(folder))


@st.cache_resource(show_spinner=False, max_entries=64)
def checkpoint_info(path: str, mtime: int) -> CheckpointInfo:
    """A checkpoint's configuration (no weights), once per version of its folder.

    Parameters
    ----------
    path, mtime
        The checkpoint folder and its :func:`mtime_ns` (cache key).

    Returns
    -------
    CheckpointInfo
        :class:`decoding.checkpoint.CheckpointInfo`.
    """
    from decoding.checkpoint import read_info

    return read_info(path)


# ------------------------------------------------------------------------------ recordings, atlas
@st.cache_resource(show_spinner="Opening the recording…", max_entries=6)
def recording(path: str, mtime: int) -> Recording:
    """A validated, lazily loaded recording (activity read on use), once per file version.

    Parameters
    ----------
    path, mtime
        The recording file and its :func:`mtime_ns` (cache key).

    Returns
    -------
    Recording
        :class:`decoding.recording.Recording`, shared read-only by every session.
    """
    from decoding.recording import Recording

    return Recording.load(path)


@st.cache_data(show_spinner="Fingerprinting the recording…", max_entries=64)
def recording_fingerprint(path: str, mtime: int) -> dict[str, Any]:
    """The recording's content fingerprint, computed once per file version.

    Parameters
    ----------
    path, mtime
        The recording file and its :func:`mtime_ns` (cache key).

    Returns
    -------
    dict
        :func:`decoding.provenance.recording_fingerprint` of the recording.
    """
    from decoding.provenance import recording_fingerprint as fingerprint

    return fingerprint(recording(path, mtime))


@st.cache_data(show_spinner="Fingerprinting the recording…", max_entries=256)
def recording_mismatch(ckpt: str, ckpt_mtime: int, rec_path: str, rec_mtime: int) -> str | None:
    """Whether a checkpoint was trained on this very recording.

    :func:`decoding.provenance.recording_mismatch` of the checkpoint applied to the recording; the
    fingerprint itself is cached per file version by :mod:`decoding.provenance`.

    Parameters
    ----------
    ckpt, ckpt_mtime
        The checkpoint folder and its :func:`mtime_ns`.
    rec_path, rec_mtime
        The recording file and its :func:`mtime_ns`.

    Returns
    -------
    str or None
        ``None`` when it was trained on this recording, else a sentence saying what differs (or
        that the checkpoint predates fingerprints).
    """
    from decoding.provenance import recording_mismatch as mismatch

    return mismatch(checkpoint_info(ckpt, ckpt_mtime).recording, recording(rec_path, rec_mtime))


@dataclass(frozen=True)
class AtlasEntry:
    key: str  # path relative to the repository root when inside it, else absolute
    path: Path
    label: str


def _is_atlas_folder(p: Path) -> bool:
    return (p / "annotation.tiff").exists() or (p / "structures.json").exists()


def _atlas_files(folder: Path) -> list[Path]:
    """NIfTI label volumes and Z-Brain ``MaskDatabase*.mat`` files directly inside ``folder``."""
    out = []
    for p in sorted(folder.iterdir()):
        name = p.name.lower()
        if not p.is_file() or name.startswith("."):
            continue
        if name.endswith((".nii", ".nii.gz")) or (
            name.startswith("maskdatabase") and name.endswith(".mat")
        ):
            out.append(p)
    return out


def list_atlases(dirs: tuple[Path, ...]) -> list[AtlasEntry]:
    """Atlases in the atlas folders.

    A folder that is itself a BrainGlobe atlas, else the NIfTI / ``MaskDatabase.mat`` files and
    BrainGlobe folders inside it (and one level below).

    Parameters
    ----------
    dirs
        The atlas folders (or files); unreadable ones are skipped.

    Returns
    -------
    list[AtlasEntry]
        Each atlas once, keyed relative to the repository when inside it.
    """
    found: list[Path] = []
    for d in dirs:
        try:
            if d.is_file() or (d.is_dir() and _is_atlas_folder(d)):
                found.append(d)
            elif d.is_dir():
                found += _atlas_files(d)
                for sub in sorted(c for c in d.iterdir() if c.is_dir()):
                    if sub.name.startswith("."):
                        continue
                    found += [sub] if _is_atlas_folder(sub) else _atlas_files(sub)
        except OSError:
            continue
    entries: dict[Path, AtlasEntry] = {}
    for p in found:
        p = p.resolve()
        try:
            key = str(p.relative_to(REPO_ROOT))
        except ValueError:
            key = str(p)
        if p not in entries:
            entries[p] = AtlasEntry(key, p, f"{p.name}  ({p.parent.name}/)")
    return list(entries.values())


def _atlas_path(key: str) -> tuple[str, int]:
    """(path, mtime) of an atlas key; ``("", 0)`` for the shipped schematic atlas (key ``""``)."""
    if not key:
        return "", 0
    p = Path(key) if Path(key).is_absolute() else REPO_ROOT / key
    return str(p), mtime_ns(p)


@st.cache_resource(show_spinner="Loading the atlas…", max_entries=4)
def _atlas(path: str, mtime: int) -> Atlas:
    if not path:
        from decoding.atlas import default_atlas

        return default_atlas()
    from decoding.atlas_loaders import load_atlas

    return load_atlas(path)


def atlas_for(key: str) -> Atlas:
    """The atlas of an atlas key, loaded once per file version.

    Parameters
    ----------
    key
        An :class:`AtlasEntry` key; ``""``: the shipped schematic brain.

    Returns
    -------
    Atlas
        :class:`decoding.atlas.Atlas`.
    """
    return _atlas(*_atlas_path(key))


def brain_meshes(key: str) -> tuple[MeshSpec | None, list[tuple[str, str, MeshSpec]]]:
    """The atlas's surfaces for the 3D brain, computed once per process (~12 µm resolution).

    Parameters
    ----------
    key
        The atlas key (see :func:`atlas_for`).

    Returns
    -------
    tuple
        ``(outline or None, [(acronym, group, mesh), ...])``.
    """
    return _brain_meshes(*_atlas_path(key))


@st.cache_resource(show_spinner="Building brain meshes…", max_entries=4)
def _brain_meshes(
    atlas_path: str, atlas_mtime: int
) -> tuple[MeshSpec | None, list[tuple[str, str, MeshSpec]]]:
    atlas = _atlas(atlas_path, atlas_mtime)
    v, f = atlas.outline_mesh()
    outline = MeshSpec("brain outline", "#bbbbbb", v, f, opacity=0.06) if len(v) else None
    regions = []
    # ~12 µm surface resolution: smooth enough on screen, ~1 MB for the whole brain.
    step = max(1, int(round(DISPLAY_MESH_UM / float(np.min(atlas.voxel_size_um)))))
    for rid, (v, f) in atlas.all_region_meshes(step=step).items():
        r = atlas.region(rid)
        regions.append((r.acronym, r.group, MeshSpec(r.acronym, r.color, v, f, opacity=0.12)))
    return outline, regions


def neuron_regions(path: str, mtime: int, atlas_key: str) -> np.ndarray:
    """The region of every neuron of a recording in an atlas.

    Parameters
    ----------
    path, mtime
        The recording file and its :func:`mtime_ns`.
    atlas_key
        The atlas (see :func:`atlas_for`).

    Returns
    -------
    np.ndarray
        (N,) region acronyms: the recording's own labels when they belong to this atlas, else
        the atlas lookup of the positions.
    """
    return _neuron_regions(path, mtime, *_atlas_path(atlas_key))


@st.cache_resource(show_spinner=False, max_entries=6)
def _neuron_regions(path: str, mtime: int, atlas_path: str, atlas_mtime: int) -> np.ndarray:
    """The recording's own labels when they belong to this atlas, else the atlas lookup."""
    from decoding.anatomy import neuron_regions as _regions

    rec = recording(path, mtime)
    atlas = _atlas(atlas_path, atlas_mtime)
    rec_atlas = rec.atlas
    if rec_atlas and rec_atlas != atlas.name:  # the file's labels are another atlas's regions
        return np.asarray(atlas.acronyms_of(rec.positions_um)).astype(str)
    return _regions(rec, atlas)


def split_for(n_frames: int, info: CheckpointInfo | None = None) -> Split:
    """The split of a recording's frames that a checkpoint's metrics refer to.

    Parameters
    ----------
    n_frames
        Frames of the recording.
    info
        The checkpoint; ``None``: no checkpoint picked.

    Returns
    -------
    Split
        The checkpoint's own split (:meth:`CheckpointInfo.split_for`), else the default
        chronological 70/10/20 split.
    """
    from decoding.windows import chronological_split

    if info is not None:
        return info.split_for(n_frames)
    return chronological_split(n_frames)


# ------------------------------------------------------------------------------ models, inference
def device_status() -> dict[str, str]:
    """What each device choice means on this machine.

    Returns
    -------
    dict[str, str]
        ``{"cpu": "4 threads", "cuda": "not available", "auto": "→ cpu"}`` or the GPU's name.
    """
    import torch

    out = {"cpu": f"{torch.get_num_threads()} threads"}
    if torch.cuda.is_available():
        out["cuda"] = torch.cuda.get_device_name(0)
        out["auto"] = "→ cuda"
    else:
        out["cuda"] = "not available"
        out["auto"] = "→ cpu"
    return out


@st.cache_resource(show_spinner="Loading the checkpoint…", max_entries=4)
def model(path: str, mtime: int, device: str) -> tuple[torch.nn.Module, CheckpointInfo]:
    """A checkpoint's model on a device, in eval mode, loaded once per process.

    Parameters
    ----------
    path, mtime
        The checkpoint folder and its :func:`mtime_ns`.
    device
        ``auto``, ``cpu``, ``cuda``... (see :func:`decoding.device.pick_device`).

    Returns
    -------
    tuple
        ``(model, CheckpointInfo)``.
    """
    from decoding.checkpoint import load_checkpoint
    from decoding.device import pick_device

    mdl, info = load_checkpoint(path, device=pick_device(device))
    mdl.eval()
    return mdl, info


@st.cache_data(show_spinner=False, max_entries=64)
def model_parameters(path: str, mtime: int, device: str) -> int:
    """Number of parameters of a checkpoint's model (to estimate the cost of salience).

    Parameters
    ----------
    path, mtime, device
        As for :func:`model`.

    Returns
    -------
    int
        The parameter count.
    """
    mdl, _info = model(path, mtime, device)
    return int(sum(p.numel() for p in mdl.parameters()))


@dataclass(frozen=True, kw_only=True)
class PredictionKey:
    """One prediction request: a checkpoint and a recording (with their modification times),
    the frames ``[start, stop)`` and the sidebar's device."""

    ckpt: str
    ckpt_mtime: int
    rec_path: str
    rec_mtime: int
    start: int
    stop: int
    device: str


@dataclass(kw_only=True)
class Answers(Generic[K, V]):
    """A cached computation and the requests it answered in this process.

    Parameters
    ----------
    compute
        An ``st.cache_resource`` function of the key.
    on_disk
        Whether the on-disk cache holds a key's result.
    done
        The keys answered in this process.
    """

    compute: Callable[[K], V]
    on_disk: Callable[[K], bool]
    done: set[K] = field(default_factory=set)

    def ready(self, key: K) -> bool:
        """Whether a request is answered at once (from memory, or at worst from disk).

        Views draw such a result instead of first hiding an older one.

        Parameters
        ----------
        key
            The request.

        Returns
        -------
        bool
            ``False``: it may have to compute.
        """
        return key in self.done or self.on_disk(key)

    def __call__(self, key: K) -> V:
        out = self.compute(key)
        self.done.add(key)
        return out


def predictions(key: PredictionKey) -> np.ndarray:
    """Per-frame predictions of a checkpoint over the frames ``[key.start, key.stop)``.

    From memory, else from the on-disk cache (``<cache>/predictions``, keyed by checkpoint,
    recording, their modification times, frames and device), else computed and stored there.

    Parameters
    ----------
    key
        The request.

    Returns
    -------
    np.ndarray
        (stop - start, K) float32, one column per behaviour channel.
    """
    return PREDICTIONS(key)


def _predictions_file(key: PredictionKey) -> Path:
    import hashlib

    digest = hashlib.blake2b(repr(astuple(key)).encode(), digest_size=16).hexdigest()
    return cache_dir() / "predictions" / f"{digest}.npy"


@st.cache_resource(show_spinner="Running inference…", max_entries=32)
def _predictions(key: PredictionKey) -> np.ndarray:
    path = _predictions_file(key)
    try:
        got = np.load(path)
        if got.shape[0] == key.stop - key.start:
            return got
    except (OSError, ValueError):
        pass
    from decoding.io_utils import atomic_write_path
    from decoding.train import predict

    mdl, info = model(key.ckpt, key.ckpt_mtime, key.device)
    rec = recording(key.rec_path, key.rec_mtime)
    out = np.asarray(predict(mdl, info, rec, key.start, key.stop), dtype=np.float32)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with atomic_write_path(path) as tmp, open(tmp, "wb") as fh:
            np.save(fh, out)
    except OSError:  # a read-only cache folder: the result still serves this process
        pass
    return out


@dataclass(frozen=True, kw_only=True)
class SalienceKey:
    """One salience request of the dashboard: the arguments of :func:`salience`.

    Files come with their modification times (:func:`mtime_ns`) so a rewritten checkpoint or
    recording is a new request; ``steps`` is 1 for methods without steps; ``device`` is the
    sidebar's choice (``auto`` resolved when computing).
    """

    ckpt: str
    ckpt_mtime: int
    rec_path: str
    rec_mtime: int
    start: int
    stop: int
    method: str
    target: str
    steps: int
    device: str

    def request(self) -> SalienceRequest:
        """What to compute, as the core describes it (the same for this process and a job).

        Returns
        -------
        SalienceRequest
            Method, target (a channel index as an int) and steps; the core's other defaults.
        """
        from decoding.salience import METHODS, SalienceRequest

        steps = {"steps": self.steps} if METHODS[self.method].uses_steps else {}
        return SalienceRequest(method=self.method, target=target_arg(self.target), **steps)


def salience(key: SalienceKey) -> SalienceResult:
    """A salience result over the frames ``[key.start, key.stop)``.

    Served from memory, else from the on-disk salience cache when the same computation was done
    before (also by the CLI or a background job), else computed in this process.

    Parameters
    ----------
    key
        The request.

    Returns
    -------
    SalienceResult
        :class:`decoding.salience.SalienceResult` of the request.
    """
    return SALIENCE(key)


@st.cache_resource(show_spinner="Computing salience…", max_entries=16)
def _salience(key: SalienceKey) -> SalienceResult:
    from decoding.salience import SalienceCache, salience_from_checkpoint

    store = SalienceCache(cache_dir() / "salience", write_behind=True)  # shown before it is on disk
    return salience_from_checkpoint(
        key.ckpt,
        recording(key.rec_path, key.rec_mtime),
        key.request(),
        start=key.start,
        stop=key.stop,
        device=device_name(key.device),
        cache=store,
        loaded=model(key.ckpt, key.ckpt_mtime, key.device),
    )


#: Predictions answered in this process (:meth:`Answers.ready`: computed or on disk).
PREDICTIONS: Answers[PredictionKey, np.ndarray] = Answers(
    compute=_predictions, on_disk=lambda key: _predictions_file(key).is_file()
)
#: Salience answered in this process (the disk cache is read by the computation itself).
SALIENCE: Answers[SalienceKey, SalienceResult] = Answers(
    compute=_salience, on_disk=lambda key: False
)


@st.cache_resource(show_spinner="Loading salience…", max_entries=16)
def salience_file(path: str, mtime: int) -> SalienceResult:
    """A salience result written by a background job (``--out FILE.h5``).

    Parameters
    ----------
    path, mtime
        The file and its :func:`mtime_ns`.

    Returns
    -------
    SalienceResult
        :class:`decoding.salience.SalienceResult`.
    """
    from decoding.salience import SalienceResult

    return SalienceResult.load(path)


def target_arg(target: str) -> str | int:
    """The salience target as the core takes it.

    Parameters
    ----------
    target
        ``"sum"``, ``"lateral"`` or a channel index as text.

    Returns
    -------
    str or int
        The names unchanged; a channel index as an int.
    """
    return int(target) if target.isdigit() else target


def device_name(device: str) -> str:
    """The device ``auto`` picks here (other choices unchanged).

    Parameters
    ----------
    device
        ``auto``, ``cpu``, ``cuda``...

    Returns
    -------
    str
        ``cpu``, ``cuda``...
    """
    from decoding.device import pick_device

    return str(pick_device(device))


def clear_listing_caches() -> None:
    """Forget checkpoint summaries (a new fine-tune finished)."""
    _cached_entry.clear()
