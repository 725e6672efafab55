"""Importer registry, the import report, and helpers shared by the lab-format importers.

An importer turns a lab's on-disk layout into a :class:`~decoding.recording.Recording`. It is
registered by name with :func:`register_importer`, declares its command-line options in
``add_arguments`` and returns an :class:`ImportResult`: the recording plus a human-readable report
of what it did (counts, dropped ROIs, frame alignment, gaps). It refuses with
:class:`~decoding.errors.ImportError_` when something required is missing or inconsistent; the
output file is only written, atomically, once the whole recording has been built.
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from decoding.errors import DecodingError, ImportError_
from decoding.recording import (
    MAX_OUTSIDE_FRACTION,
    AtlasVolume,
    Epoch,
    Recording,
    check_max_outside,
    check_outside_atlas,
)

__all__ = [
    "Importer",
    "ImportResult",
    "ImportReport",
    "register_importer",
    "get_importer",
    "importer_names",
    "import_recording",
    "dff",
    "average_per_frame",
    "epochs_from_onsets",
    "epochs_from_codes",
    "read_affine",
    "fit_affine",
    "apply_affine",
    "place_in_atlas",
    "outside_check",
    "parse_planes",
    "PLACEMENT_OPTIONS",
    "Placement",
    "Traces",
    "add_baseline_arguments",
    "add_placement_arguments",
    "placed_result",
]


# ---------------------------------------------------------------------------------- report
@dataclass
class ImportReport:
    """What an importer did, line by line (``info``), and what to check (``warnings``)."""

    info: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def add(self, line: str) -> None:
        """Record what was done (``line``: one sentence).

        Parameters
        ----------
        line
            The sentence.
        """
        self.info.append(line)

    def warn(self, line: str) -> None:
        """Record something the user should check (``line``: one sentence).

        Parameters
        ----------
        line
            The sentence.
        """
        self.warnings.append(line)

    def text(self) -> str:
        """The report as indented lines, warnings last (prefixed ``warning:``).

        Returns
        -------
        str
            One line per entry.
        """
        lines = [f"  {s}" for s in self.info] + [f"  warning: {s}" for s in self.warnings]
        return "\n".join(lines)


@dataclass
class ImportResult:
    """The recording an importer built and its report."""

    recording: Recording
    report: ImportReport
    format: str
    source: Path


# ---------------------------------------------------------------------------------- registry
@dataclass(frozen=True)
class Importer:
    """A registered importer: ``run(src, **options) -> ImportResult``."""

    name: str
    summary: str
    run: Callable[..., ImportResult]
    add_arguments: Callable[[argparse.ArgumentParser], None]


_REGISTRY: dict[str, Importer] = {}


def register_importer(
    name: str,
    summary: str,
    add_arguments: Callable[[argparse.ArgumentParser], None],
) -> Callable[[Callable[..., ImportResult]], Callable[..., ImportResult]]:
    """Decorator registering ``run`` under ``name``; a duplicate name is a programming error.

    Parameters
    ----------
    name
        The format name (``python -m decoding import NAME``).
    summary
        One line for ``--help``.
    add_arguments
        Declares the importer's command-line options.

    Returns
    -------
    Callable
        The decorator; it returns ``run`` unchanged.
    """

    def deco(run: Callable[..., ImportResult]) -> Callable[..., ImportResult]:
        if name in _REGISTRY:
            raise ValueError(f"importer {name!r} is already registered")
        _REGISTRY[name] = Importer(name, summary, run, add_arguments)
        return run

    return deco


BUILTIN_MODULES = ("nlp4neuro", "suite2p", "chen2018", "nwb")


def _load_builtin() -> None:
    """Import the built-in importer modules (importing registers them)."""
    import importlib

    for mod in BUILTIN_MODULES:
        importlib.import_module(f"decoding.importers.{mod}")


def importer_names() -> list[str]:
    """Names of the registered importers: the built-ins in a fixed order, then any others.

    Returns
    -------
    list[str]
        The format names.
    """
    _load_builtin()
    return [n for n in BUILTIN_MODULES if n in _REGISTRY] + [
        n for n in _REGISTRY if n not in BUILTIN_MODULES
    ]


def get_importer(name: str) -> Importer:
    """The importer called ``name``; :class:`ImportError_` listing the known names otherwise.

    Parameters
    ----------
    name
        A format name.

    Returns
    -------
    Importer
        The registered importer.
    """
    _load_builtin()
    if name not in _REGISTRY:
        raise ImportError_(
            f"unknown import format {name!r}; known formats: {', '.join(importer_names())}"
        )
    return _REGISTRY[name]


def import_recording(
    name: str,
    src: str | Path,
    out: str | Path | None = None,
    *,
    overwrite: bool = False,
    **options: object,
) -> ImportResult:
    """Run importer ``name`` on ``src``; with ``out``, save the recording there atomically.

    ``options`` are the importer's keyword options (the CLI's ``--flags`` with ``_`` for ``-``);
    every importer takes ``max_outside``, the largest fraction of neurons allowed outside the atlas
    volume (default :data:`~decoding.recording.MAX_OUTSIDE_FRACTION`), which the written file keeps.
    The placement options (``affine``, ``landmarks``, ``atlas``, ``atlas_file``, ``max_outside``)
    reach the importer as one :class:`Placement`. An existing ``out`` is refused unless
    ``overwrite``; nothing is written if the import fails.

    Parameters
    ----------
    name
        A registered importer (:func:`importer_names`).
    src
        The source folder or file.
    out
        The recording file to write (``None``: only build it).
    overwrite
        Replace an existing ``out``.
    **options
        The importer's options.

    Returns
    -------
    ImportResult
        The recording, its report, the format and the source.
    """
    importer = get_importer(name)
    if "max_outside" in options:
        options["max_outside"] = check_max_outside(
            options["max_outside"], "--max-outside", ImportError_
        )
    src = Path(src)
    if not src.exists():
        raise ImportError_(f"{name} import: source {src} does not exist")
    if out is not None:
        out = Path(out)
        if out.exists() and not overwrite:
            raise ImportError_(
                f"output {out} already exists; choose another --out or pass --force to replace it"
            )
        if out.is_dir():
            raise ImportError_(f"output {out} is a folder; --out must be a file name (.h5)")
    placement = Placement(**{k: options.pop(k) for k in PLACEMENT_OPTIONS if k in options})
    try:
        result = importer.run(src, placement=placement, **options)
    except DecodingError as exc:
        if isinstance(exc, ImportError_):
            raise
        raise ImportError_(f"{name} import of {src}: {exc}") from exc
    if out is not None:
        result.recording.save(out)
        result.report.add(f"wrote {out}")
    return result


# ---------------------------------------------------------------------------------- options
def parse_planes(spec: str | Sequence[int] | None, available: Sequence[int]) -> list[int]:
    """Plane selection: ``"0-5"``, ``"0,2,4"``, ``"all"`` or a list; must be among ``available``.

    Parameters
    ----------
    spec
        The selection (``None``: every available plane).
    available
        The plane numbers found.

    Returns
    -------
    list[int]
        The chosen planes, sorted, without repeats.
    """
    if spec is None or (isinstance(spec, str) and spec.strip().lower() == "all"):
        return sorted(available)
    if isinstance(spec, str):
        chosen: list[int] = []
        for part in spec.split(","):
            part = part.strip()
            m = re.fullmatch(r"(\d+)\s*-\s*(\d+)", part)
            if m:
                chosen += list(range(int(m.group(1)), int(m.group(2)) + 1))
            elif part.isdigit():
                chosen.append(int(part))
            else:
                raise ImportError_(
                    f"--planes: expected e.g. '0-5', '0,2,4' or 'all', found {spec!r}"
                )
    else:
        chosen = [int(p) for p in spec]
    missing = sorted(set(chosen) - set(available))
    if missing:
        raise ImportError_(
            f"--planes {spec}: plane(s) {missing} not found; available planes: {sorted(available)}"
        )
    return sorted(set(chosen))


# ---------------------------------------------------------------------------------- signals
def dff(
    F: np.ndarray,
    *,
    baseline: str = "percentile",
    percentile: float = 10.0,
    window_frames: int = 60,
) -> tuple[np.ndarray, np.ndarray]:
    """ΔF/F of ``F`` (T, N) in place of a float32 copy; returns ``(dff, F0)``.

    ``baseline="percentile"``: F0 = the ``percentile`` of each neuron's whole trace.
    ``baseline="maximin"``: suite2p's sliding baseline (Gaussian smoothing, then a running minimum
    and maximum over ``window_frames``), which follows slow drift. Neurons with F0 <= 0 get NaN
    (the caller drops them).

    Parameters
    ----------
    F
        (T, N) fluorescence.
    baseline
        ``"percentile"`` or ``"maximin"``.
    percentile
        The percentile of the whole-trace baseline.
    window_frames
        The sliding window of the maximin baseline, frames.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        ``(ΔF/F (T, N) float32, F0 (N,))``.
    """
    F = np.asarray(F, dtype=np.float32)
    if baseline == "percentile":
        F0 = np.percentile(F, percentile, axis=0).astype(np.float32)
        bad = ~(F0 > 0)
        out = F - F0
        out /= np.where(bad, np.float32(1), F0)
        out[:, bad] = np.nan
        return out, F0
    if baseline == "maximin":
        from scipy import ndimage

        sig = max(1.0, window_frames / 10)
        smooth = ndimage.gaussian_filter1d(F, sig, axis=0)
        F0t = ndimage.maximum_filter1d(
            ndimage.minimum_filter1d(smooth, window_frames, axis=0), window_frames, axis=0
        )
        del smooth
        bad = ~np.all(F0t > 0, axis=0)
        out = F - F0t
        out /= np.where(F0t > 0, F0t, np.float32(1))
        out[:, bad] = np.nan
        return out, F0t.mean(axis=0)
    raise ImportError_(f"--baseline: expected 'percentile' or 'maximin', found {baseline!r}")


def average_per_frame(
    values: np.ndarray, frames: np.ndarray, n_frames: int, *, what: str, report: ImportReport
) -> np.ndarray:
    """Average samples ``values`` (S, K) into imaging frames by their ``frames`` (S,) index.

    Frames with no sample are filled by linear interpolation (edges: nearest) and reported;
    sample frame indices outside ``[0, n_frames)`` are refused.

    Parameters
    ----------
    values
        (S, K) or (S,) samples.
    frames
        (S,) imaging frame of each sample.
    n_frames
        Imaging frames T.
    what
        The source, for messages.
    report
        Gets the averaging summary and the interpolated gaps.

    Returns
    -------
    np.ndarray
        (T, K) float32 per-frame means.
    """
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    frames = np.asarray(frames)
    if frames.shape[0] != values.shape[0]:
        raise ImportError_(f"{what}: {values.shape[0]} samples but {frames.shape[0]} frame indices")
    if not np.issubdtype(frames.dtype, np.integer):
        if not np.all(np.isfinite(frames)) or not np.array_equal(frames, np.round(frames)):
            raise ImportError_(f"{what}: the 'frame' column must hold integer frame indices")
        frames = frames.astype(np.int64)
    if frames.size == 0:
        raise ImportError_(f"{what}: no samples")
    lo, hi = int(frames.min()), int(frames.max())
    if lo < 0 or hi >= n_frames:
        n_bad = int(np.count_nonzero((frames < 0) | (frames >= n_frames)))
        raise ImportError_(
            f"{what}: {n_bad} samples have frame indices outside the imaging frames "
            f"[0, {n_frames}) (found {lo}..{hi}); the behaviour file does not belong to this "
            "recording, or the planes were trimmed"
        )
    finite = np.all(np.isfinite(values), axis=1)
    if not finite.all():
        report.add(f"{what}: ignored {int((~finite).sum())} samples with NaN/inf")
        values, frames = values[finite], frames[finite]
    counts = np.bincount(frames, minlength=n_frames).astype(np.float64)
    out = np.empty((n_frames, values.shape[1]), dtype=np.float64)
    for k in range(values.shape[1]):
        out[:, k] = np.bincount(frames, weights=values[:, k], minlength=n_frames)
    have = counts > 0
    if not have.any():
        raise ImportError_(f"{what}: no finite samples")
    out[have] /= counts[have, None]
    n_gap = int((~have).sum())
    if n_gap:
        idx = np.arange(n_frames)
        for k in range(out.shape[1]):
            out[~have, k] = np.interp(idx[~have], idx[have], out[have, k])
        report.warn(
            f"{what}: {n_gap} of {n_frames} frames had no sample and were interpolated "
            f"(first at frame {int(idx[~have][0])})"
        )
    med = float(np.median(counts[have]))
    report.add(
        f"{what}: {values.shape[0]:,} samples averaged into {n_frames} frames "
        f"(median {med:g} samples per frame)"
    )
    return out.astype(np.float32)


def epochs_from_onsets(
    names: Sequence[str],
    onsets: Sequence[int],
    n_frames: int,
    *,
    params: Sequence[dict] | None = None,
    what: str,
    report: ImportReport,
) -> list[Epoch]:
    """One epoch per onset, running to the next onset (the last to the end of the recording).

    Parameters
    ----------
    names
        The stimulus name of each onset.
    onsets
        Onset frames (any order).
    n_frames
        Imaging frames T (the last epoch ends there).
    params
        Stimulus parameters of each onset.
    what
        The source, for messages.
    report
        Gets the epoch count and dropped onsets.

    Returns
    -------
    list[Epoch]
        The epochs in time order.
    """
    onsets = [int(o) for o in onsets]
    order = np.argsort(onsets, kind="stable")
    bad = [o for o in onsets if not 0 <= o < n_frames]
    if bad:
        raise ImportError_(
            f"{what}: {len(bad)} onset frame(s) outside the recording [0, {n_frames}) "
            f"(first: {bad[0]}); the stimulus file does not match this recording"
        )
    epochs: list[Epoch] = []
    dropped = 0
    for pos, i in enumerate(order):
        start = onsets[i]
        stop = onsets[order[pos + 1]] if pos + 1 < len(order) else n_frames
        if stop <= start:
            dropped += 1
            continue
        p = dict(params[i]) if params is not None else {}
        epochs.append(Epoch(str(names[i]).strip() or "unnamed", start, stop, p))
    if dropped:
        report.warn(f"{what}: dropped {dropped} onset(s) sharing a frame with the next onset")
    if epochs and epochs[0].start > 0:
        report.add(f"{what}: frames 0-{epochs[0].start - 1} precede the first onset (no epoch)")
    report.add(
        f"{what}: {len(epochs)} epochs, {len({e.name for e in epochs})} distinct names "
        f"({', '.join(sorted({e.name for e in epochs})[:8])}"
        f"{', ...' if len({e.name for e in epochs}) > 8 else ''})"
    )
    return epochs


def epochs_from_codes(
    codes: np.ndarray, names: dict[int, str], *, what: str, report: ImportReport
) -> list[Epoch]:
    """Runs of a constant per-frame stimulus code become named epochs (code -> name).

    Parameters
    ----------
    codes
        (T,) stimulus code per frame.
    names
        Code -> epoch name.
    what
        The source, for messages.
    report
        Gets the epoch count and unknown codes.

    Returns
    -------
    list[Epoch]
        One epoch per run of equal codes.
    """
    codes = np.asarray(codes).reshape(-1)
    if codes.size == 0:
        return []
    change = np.flatnonzero(np.diff(codes) != 0) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [codes.size]])
    epochs = []
    unknown: set = set()
    for a, b in zip(starts, stops, strict=True):
        c = codes[a]
        try:
            key = int(c)
        except (TypeError, ValueError):
            key = None
        name = names.get(key) if key is not None else None
        if name is None:
            unknown.add(c if key is None else key)
            name = f"code_{c}"
        epochs.append(Epoch(name, int(a), int(b), {"code": float(c)}))
    if unknown:
        report.warn(
            f"{what}: stimulus codes without a known name kept as code_N: {sorted(unknown)}"
        )
    report.add(f"{what}: {len(epochs)} epochs from {len(set(codes.tolist()))} stimulus codes")
    return epochs


# ---------------------------------------------------------------------------------- geometry
def _numeric_rows(path: Path, flag: str, expected: str, *, header: bool = False) -> np.ndarray:
    """Rows of numbers of a small text file: ``#`` comments and empty lines skipped, fields split
    on commas, semicolons or white space.

    Parameters
    ----------
    path
        The file, named by the command-line option ``flag`` (``"--affine"``) in messages.
    flag
        The option.
    expected
        What a line should hold, for the message (``"6 numbers per line"``).
    header
        Skip non-numeric lines before the first numeric one.

    Returns
    -------
    np.ndarray
        (rows, fields) float64; (0, 0) for no rows.
    """
    if not path.exists():
        raise ImportError_(f"{flag} {path}: no such file")
    rows: list[list[float]] = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        try:
            rows.append([float(v) for v in re.split(r"[,\s;]+", line) if v])
        except ValueError:
            if header and not rows:
                continue
            raise ImportError_(f"{flag} {path}: expected {expected}, found line {line!r}") from None
    if len({len(r) for r in rows}) > 1:
        raise ImportError_(
            f"{flag} {path}: expected {expected} on every line, found lines of "
            f"{sorted({len(r) for r in rows})} numbers"
        )
    return np.array(rows, dtype=np.float64) if rows else np.zeros((0, 0))


def read_affine(path: str | Path) -> np.ndarray:
    """A 4x4 (or 3x4) affine from a text file, whitespace or comma separated; ``#`` comments.

    Parameters
    ----------
    path
        Text file of 3 or 4 rows of 4 numbers (imaging µm -> atlas µm).

    Returns
    -------
    np.ndarray
        (4, 4) float64, last row ``0 0 0 1``, non-singular.
    """
    path = Path(path)
    mat = _numeric_rows(path, "--affine", "numbers")
    if mat.shape == (3, 4):
        mat = np.vstack([mat, [0, 0, 0, 1]])
    if mat.shape != (4, 4):
        raise ImportError_(
            f"--affine {path}: expected a 4x4 matrix (imaging µm -> atlas µm), found shape "
            f"{mat.shape}"
        )
    if not np.allclose(mat[3], [0, 0, 0, 1]):
        raise ImportError_(
            f"--affine {path}: the last row must be 0 0 0 1, found {mat[3].tolist()}"
        )
    if abs(np.linalg.det(mat[:3, :3])) < 1e-12:
        raise ImportError_(f"--affine {path}: the matrix is singular")
    return mat


def fit_affine(path: str | Path, report: ImportReport) -> np.ndarray:
    """Least-squares affine from landmark pairs: CSV/whitespace rows ``x y z X Y Z``.

    (x, y, z) in imaging µm, (X, Y, Z) in atlas µm; at least 4 non-coplanar pairs. An optional
    header line is skipped.

    Parameters
    ----------
    path
        The landmarks file.
    report
        Gets the RMS residual of the fit.

    Returns
    -------
    np.ndarray
        (4, 4) float64 affine, imaging µm -> atlas µm.
    """
    path = Path(path)
    pts = _numeric_rows(path, "--landmarks", "6 numbers per line", header=True)
    if pts.ndim != 2 or pts.shape[1] != 6 or len(pts) < 4:
        raise ImportError_(
            f"--landmarks {path}: expected at least 4 rows of 'x y z X Y Z' "
            "(imaging µm, atlas µm), "
            f"found shape {pts.shape}"
        )
    src = np.hstack([pts[:, :3], np.ones((len(pts), 1))])
    if np.linalg.matrix_rank(src) < 4:
        raise ImportError_(
            f"--landmarks {path}: the imaging points are coplanar; add landmarks in other planes"
        )
    sol, *_ = np.linalg.lstsq(src, pts[:, 3:], rcond=None)
    mat = np.eye(4)
    mat[:3, :] = sol.T
    resid = np.sqrt(np.mean(np.sum((src @ sol - pts[:, 3:]) ** 2, axis=1)))
    report.add(f"affine fitted to {len(pts)} landmark pairs, RMS residual {resid:.1f} µm")
    return mat


def apply_affine(mat: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """Apply a 4x4 affine to (N, 3) points.

    Parameters
    ----------
    mat
        (4, 4) affine.
    pts
        (N, 3) points.

    Returns
    -------
    np.ndarray
        (N, 3) float64 mapped points.
    """
    pts = np.asarray(pts, dtype=np.float64)
    return pts @ mat[:3, :3].T + mat[:3, 3]


def outside_check(
    atlas: AtlasVolume,
    positions_um: np.ndarray,
    *,
    max_outside: float,
    fix: str,
    report: ImportReport,
    when: str = "",
) -> None:
    """Refuse the import when more than ``max_outside`` of the neurons fall outside ``atlas``.

    Below the threshold the outside neurons are kept and counted in the report (regions label them
    ``"outside"``). The threshold check itself is :func:`decoding.recording.check_outside_atlas`,
    the one recording validation uses.

    Parameters
    ----------
    atlas
        The atlas whose volume the positions should lie in.
    positions_um
        (N, 3) atlas µm.
    max_outside
        Largest fraction allowed outside.
    fix
        What is probably wrong, for the message.
    report
        Gets the count when some are outside.
    when
        E.g. ``" after the affine"``, for the message.
    """
    count = check_outside_atlas(
        atlas,
        positions_um,
        max_outside=max_outside,
        fix=fix,
        allow="--max-outside FRACTION",
        error=ImportError_,
        when=when,
    )
    if count.n_outside:
        report.warn(count.summary())


def place_in_atlas(
    imaging_um: np.ndarray,
    *,
    affine: str | Path | None,
    landmarks: str | Path | None,
    atlas_name: str | None,
    atlas_file: str | Path | None,
    report: ImportReport,
    max_outside: float = MAX_OUTSIDE_FRACTION,
) -> tuple[np.ndarray, str, np.ndarray | None, np.ndarray]:
    """Map imaging-frame µm into atlas space; returns ``(positions, atlas_name, regions, keep)``.

    Without an affine or landmarks the positions stay in the imaging frame (atlas ``"imaging"``)
    and regions are unknown — reported. With one, neurons outside the atlas volume are kept,
    labelled ``"outside"`` and counted in the report, unless more than ``max_outside`` of them fall
    outside: then the import is refused (the transform is probably wrong). ``keep`` is all True
    (reserved for future dropping).

    Parameters
    ----------
    imaging_um
        (N, 3) positions in the imaging frame, µm.
    affine
        ``--affine`` file, or None.
    landmarks
        ``--landmarks`` file, or None.
    atlas_name
        ``--atlas``: the atlas the transform maps into.
    atlas_file
        ``--atlas-file``: an atlas to look regions up in.
    report
        Gets what was done.
    max_outside
        Largest fraction allowed outside.

    Returns
    -------
    tuple
        ``(positions (N, 3) float32, atlas name, regions (N,) or None, keep (N,) bool)``.
    """
    keep = np.ones(len(imaging_um), dtype=bool)
    if affine is not None and landmarks is not None:
        raise ImportError_("pass either --affine or --landmarks, not both")
    if affine is None and landmarks is None:
        report.warn(
            "positions are in the imaging frame (µm), not in atlas space, so regions are "
            "unknown; pass --affine FILE (4x4 imaging µm -> atlas µm) or --landmarks FILE"
        )
        return imaging_um.astype(np.float32), "imaging", None, keep
    mat = read_affine(affine) if affine is not None else fit_affine(landmarks, report)  # type: ignore[arg-type]
    pos = apply_affine(mat, imaging_um)
    from decoding.atlas import default_atlas

    if atlas_file is not None:
        from decoding.atlas_loaders import load_atlas

        atlas = load_atlas(atlas_file)
    elif atlas_name in (None, "", default_atlas().name):
        atlas = default_atlas()
    else:
        atlas = None
    name = atlas.name if atlas is not None else str(atlas_name)
    if atlas is None:
        report.warn(f"atlas {name!r} not loaded (pass --atlas-file), so regions are unknown")
        return pos.astype(np.float32), name, None, keep
    outside_check(
        atlas,
        pos,
        max_outside=max_outside,
        fix="check the affine's direction (imaging µm -> atlas µm) and --pixel-size-um / "
        "--plane-spacing-um",
        report=report,
        when=" after the affine",
    )
    regions = atlas.acronyms_of(pos)
    n_in = int(np.count_nonzero(regions != "outside"))
    report.add(f"positions mapped to atlas {name!r}: {n_in} of {len(pos)} neurons inside a region")
    return pos.astype(np.float32), name, regions, keep


def add_placement_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``--affine`` / ``--landmarks`` / ``--atlas`` / ``--atlas-file`` (see :class:`Placement`).

    Parameters
    ----------
    p
        The importer's sub-parser.
    """
    p.add_argument(
        "--affine", type=Path, default=None, help="4x4 text matrix: imaging µm -> atlas µm"
    )
    p.add_argument(
        "--landmarks",
        type=Path,
        default=None,
        help="landmark pairs 'x y z X Y Z' per line (imaging µm, atlas µm), fitted to an affine",
    )
    p.add_argument(
        "--atlas",
        default=None,
        help="name of the atlas the affine maps into (default: the shipped schematic atlas)",
    )
    p.add_argument(
        "--atlas-file", type=Path, default=None, help="atlas to look regions up in (any loader)"
    )


def add_baseline_arguments(p: argparse.ArgumentParser) -> None:
    """Add ``--baseline`` / ``--baseline-percentile`` / ``--baseline-window-s`` (see :func:`dff`).

    Parameters
    ----------
    p
        The importer's sub-parser.
    """
    p.add_argument(
        "--baseline",
        choices=("percentile", "maximin"),
        default="percentile",
        help="ΔF/F baseline per neuron: whole-trace percentile (default) or sliding maximin",
    )
    p.add_argument(
        "--baseline-percentile", type=float, default=10.0, help="percentile baseline (default 10)"
    )
    p.add_argument(
        "--baseline-window-s", type=float, default=60.0, help="maximin window, s (default 60)"
    )


@dataclass(frozen=True, kw_only=True)
class Placement:
    """How imaging-frame positions are put into an atlas; see :func:`place_in_atlas`.

    The options ``--affine``, ``--landmarks``, ``--atlas``, ``--atlas-file`` (declared by
    :func:`add_placement_arguments`) and ``--max-outside``: :func:`import_recording` gathers them
    into the ``placement`` argument of every importer.
    """

    affine: Path | None = None
    landmarks: Path | None = None
    atlas: str | None = None
    atlas_file: Path | None = None
    max_outside: float = MAX_OUTSIDE_FRACTION

    def place(
        self, imaging_um: np.ndarray, report: ImportReport
    ) -> tuple[np.ndarray, str, np.ndarray | None]:
        """``(positions (N, 3) float32, atlas name, regions (N,) or None)`` of ``imaging_um``.

        Parameters
        ----------
        imaging_um
            (N, 3) positions in the imaging frame, µm.
        report
            Gets what was done.

        Returns
        -------
        tuple[np.ndarray, str, np.ndarray | None]
            Positions, atlas name, regions (or None).
        """
        positions, atlas_name, regions, _keep = place_in_atlas(
            imaging_um,
            affine=self.affine,
            landmarks=self.landmarks,
            atlas_name=self.atlas,
            atlas_file=self.atlas_file,
            report=report,
            max_outside=self.max_outside,
        )
        return positions, atlas_name, regions


#: The options :func:`import_recording` gathers into the importer's ``placement``.
PLACEMENT_OPTIONS: tuple[str, ...] = ("affine", "landmarks", "atlas", "atlas_file", "max_outside")


@dataclass(frozen=True, kw_only=True)
class Traces:
    """What an importer read, before placement: activity, behaviour, epochs and neuron identity."""

    activity: np.ndarray  # (T, N) float32 ΔF/F
    behavior: np.ndarray  # (T, K)
    behavior_names: Sequence[str]
    behavior_units: Sequence[str]
    epochs: Sequence[Epoch]
    imaging_um: np.ndarray  # (N, 3) positions in the imaging frame (µm)
    neuron_ids: np.ndarray | None
    frame_rate_hz: float


def placed_result(
    fmt: str,
    src: Path,
    traces: Traces,
    placement: Placement | None,
    report: ImportReport,
    *,
    fish_id: str,
    source: str,
    summary: Sequence[str],
    check_activity: bool = True,
) -> ImportResult:
    """Place ``traces`` in the atlas, add the ``summary`` lines to the report, build the result.

    Parameters
    ----------
    fmt
        The importer's name.
    src
        The source the user named.
    traces
        What the importer read.
    placement
        Where the positions go (:meth:`Placement.place`; ``None``: the defaults).
    report
        The import's report (placement lines, then ``summary``).
    fish_id, source
        The recording's ``fish_id`` and ``source`` attributes.
    summary
        Report lines added after placement.
    check_activity
        ``False`` when the activity is finite by construction (skips a scan).

    Returns
    -------
    ImportResult
        The validated recording with its report.
    """
    placement = placement or Placement()
    positions, atlas_name, regions = placement.place(traces.imaging_um, report)
    for line in summary:
        report.add(line)
    rec = Recording(
        traces.activity,
        traces.behavior,
        positions,
        frame_rate_hz=traces.frame_rate_hz,
        behavior_names=traces.behavior_names,
        behavior_units=traces.behavior_units,
        epochs=traces.epochs,
        fish_id=fish_id,
        atlas=atlas_name,
        source=source,
        neuron_ids=traces.neuron_ids,
        regions=regions,
        max_outside=placement.max_outside,
        _check_activity=check_activity,
    )
    return ImportResult(rec, report, fmt, src)


def count_text(n: int, word: str) -> str:
    """``"1 plane"`` / ``"1,234 planes"``: ``n`` and ``word``, plural unless ``n`` is 1.

    Parameters
    ----------
    n
        The count.
    word
        The singular noun.

    Returns
    -------
    str
        The phrase.
    """
    return f"{n:,} {word}{'' if n == 1 else 's'}"
