"""NLP4Neuro Dataverse layout (doi:10.7910/DVN/I8LULX): ``raw_data_fN/plane_k/`` or prepped arrays.

Raw layout, per plane ``plane_k/``: suite2p ``F.npy`` (n_rois, T), ``stat.npy``, ``tail_df.h5``
(pandas HDFStore, key ``tail``, ~200 Hz, ``frame`` column = imaging frame of each sample) and, for
some fish, ``stimulus_df.tab`` (one row per motion onset). The planes were imaged one after the
other with the same stimulus protocol; like the study, neurons of all selected planes are put side
by side frame by frame, and the tail and stimulus come from one plane (``--tail-plane``).

    python -m decoding import nlp4neuro raw_data_f9 --out fish9.h5 --planes 0-5 --affine A.txt
"""

from __future__ import annotations

import argparse
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from decoding.errors import ImportError_
from decoding.importers.base import (
    ImportReport,
    ImportResult,
    Placement,
    Traces,
    add_baseline_arguments,
    add_placement_arguments,
    average_per_frame,
    dff,
    epochs_from_onsets,
    parse_planes,
    placed_result,
    register_importer,
)
from decoding.importers.formats import (
    find_planes,
    load_npy,
    plane_positions,
    read_ops,
    read_stimulus_table,
    read_tail_df,
    require_rois,
)
from decoding.recording import Epoch, Recording

STUDY_PLANES = (0, 1, 2, 3, 4, 5)


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The NLP4Neuro importer's command-line options.

    Parameters
    ----------
    p
        The ``import nlp4neuro`` sub-parser.
    """
    p.add_argument(
        "--planes",
        default=None,
        help="planes to use: '0-5', '0,2,4' or 'all' (default: the study's planes 0-5 found)",
    )
    p.add_argument("--pixel-size-um", type=float, default=0.6, help="pixel size (default 0.6)")
    p.add_argument(
        "--plane-spacing-um",
        type=float,
        default=10.0,
        help="distance between planes in µm (default 10, nominal: set the real value)",
    )
    add_placement_arguments(p)
    add_baseline_arguments(p)
    p.add_argument(
        "--tail-plane",
        type=int,
        default=None,
        help="plane whose tail_df.h5 / stimulus_df.tab to use (default: first selected plane)",
    )
    p.add_argument("--tail-segments", type=int, default=6, help="tail angles to keep (default 6)")
    p.add_argument(
        "--frame-rate-hz", type=float, default=None, help="default: from tail_df t/frame"
    )
    p.add_argument(
        "--trim-frames",
        action="store_true",
        help="crop all planes to the shortest instead of refusing planes of different lengths",
    )
    p.add_argument(
        "--fish-id", default=None, help="default: from the folder name (raw_data_f9 -> fish9)"
    )
    p.add_argument(
        "--prepped",
        action="store_true",
        help="use the prepped fishN_neural_data_full.npy / fishN_tail_data_matched.npy arrays",
    )


def _fish_id(src: Path) -> str:
    m = re.search(r"f(?:ish)?_?(\d+)", src.name)
    return f"fish{m.group(1)}" if m else src.name


def _locate_planes(src: Path) -> tuple[Path, dict[int, Path]]:
    planes = find_planes(src)
    if planes:
        return src, planes
    for child in sorted(p for p in src.iterdir() if p.is_dir()) if src.is_dir() else []:
        planes = find_planes(child)
        if planes and child.name.startswith("raw_data"):
            return child, planes
    return src, {}


def _frame_rate_from_tail(cols: dict[str, np.ndarray]) -> float | None:
    if "t" not in cols:
        return None
    t = np.asarray(cols["t"], dtype=np.float64)
    fr = np.asarray(cols["frame"], dtype=np.float64)
    ok = np.isfinite(t) & np.isfinite(fr)
    if ok.sum() < 10 or np.ptp(t[ok]) <= 0 or np.ptp(fr[ok]) < 2:
        return None
    slope = np.polyfit(t[ok], fr[ok], 1)[0]
    return float(slope) if slope > 0 else None


@dataclass
class _Planes:
    """The selected planes of a fish folder and their F.npy shapes."""

    root: Path
    folders: dict[int, Path]  # every plane found, by number
    chosen: list[int]
    lengths: dict[int, int] = field(default_factory=dict)  # frames per chosen plane
    n_frames: int = 0  # common frame count (the shortest with --trim-frames)

    def f_path(self, k: int) -> Path:
        return self.folders[k] / "F.npy"


def _choose_planes(src: Path, planes: str | None, report: ImportReport) -> _Planes:
    """Find the plane folders and apply ``--planes`` (default: the study's planes found)."""
    root, found = _locate_planes(src)
    if not found:
        raise ImportError_(
            f"{src}: no plane_k/ subfolders found (expected the raw_data_fN/plane_0 ... layout); "
            "for the prepped fishN_*_data_*.npy arrays pass --prepped"
        )
    if planes is not None:
        return _Planes(root, found, parse_planes(planes, list(found)))
    chosen = [k for k in found if k in STUDY_PLANES]
    if not chosen:
        raise ImportError_(
            f"{root}: none of the study's planes 0-5 found (have {list(found)}); pass --planes"
        )
    excluded = [k for k in found if k not in chosen]
    if excluded:
        report.add(
            f"planes {excluded} excluded (the study used planes 0-5); --planes all includes them"
        )
    return _Planes(root, found, chosen)


def _read_lengths(pl: _Planes, trim_frames: bool, report: ImportReport) -> None:
    """Check every chosen plane's F.npy and set the common frame count.

    F.npy files are memory-mapped one plane at a time and unmapped after use, so that at most one
    plane's pages count towards the resident memory next to the (T, N) output.
    """
    for k in pl.chosen:
        path = pl.f_path(k)
        F = load_npy(path, what="suite2p F.npy (fluorescence)", mmap=True)
        if F.ndim != 2 or not np.issubdtype(F.dtype, np.floating):
            raise ImportError_(
                f"{path}: expected a float (n_rois, n_frames) array, found {F.dtype} {F.shape}"
            )
        require_rois(F.shape[0], path, f"plane_{k}")
        pl.lengths[k] = F.shape[1]
        del F
    pl.n_frames = T = min(pl.lengths.values())
    if len(set(pl.lengths.values())) > 1:
        desc = ", ".join(f"plane_{k}: {n}" for k, n in pl.lengths.items())
        if not trim_frames:
            raise ImportError_(
                f"{pl.root}: frame counts disagree across planes ({desc}); pass --trim-frames to "
                f"crop every plane to the shortest ({T}) or leave the odd plane out with --planes"
            )
        report.warn(f"frame counts disagreed ({desc}); all planes cropped to {T} frames")



def _tail_plane(pl: _Planes, given: int | None) -> int:
    """``--tail-plane``, else the first chosen plane with a tail_df.h5 (else the first)."""
    tp = given
    if tp is None:
        tp = next((k for k in pl.chosen if (pl.folders[k] / "tail_df.h5").exists()), pl.chosen[0])
    if tp not in pl.folders:
        raise ImportError_(f"--tail-plane {tp}: no plane_{tp} folder in {pl.root}")
    return tp

def _frame_rate(
    folder: Path, tp: int, tail: dict[str, np.ndarray], given: float | None, report: ImportReport
) -> float:
    """``--frame-rate-hz``, else from tail_df t vs frame, else ops.npy ``fs`` (plane ``tp``)."""
    if given is not None:
        return given
    rate = _frame_rate_from_tail(tail)
    if rate is not None:
        report.add(f"frame rate {rate:.3f} Hz estimated from tail_df t vs frame (plane_{tp})")
        return rate
    ops = read_ops(folder)
    if ops.get("fs"):
        rate = float(ops["fs"])
        report.add(f"frame rate {rate:g} Hz from ops.npy")
        return rate
    raise ImportError_(
        f"{folder}: cannot tell the frame rate (no 't' column in tail_df.h5, no ops.npy); "
        "pass --frame-rate-hz"
    )


def _tail_behavior(
    pl: _Planes,
    tp: int,
    tail: dict[str, np.ndarray],
    tail_segments: int,
    trim_frames: bool,
    report: ImportReport,
) -> np.ndarray:
    """(T, tail_segments) tail angles averaged per imaging frame."""
    folder, T = pl.folders[tp], pl.n_frames
    thetas = sorted(c for c in tail if re.fullmatch(r"theta_?\d+", c))
    if len(thetas) < tail_segments:
        raise ImportError_(
            f"{folder / 'tail_df.h5'}: expected at least {tail_segments} theta columns, found "
            f"{thetas}; lower --tail-segments"
        )
    thetas = thetas[:tail_segments]
    values = np.stack([np.asarray(tail[c], dtype=np.float64) for c in thetas], axis=1)
    tail_frames = np.asarray(tail["frame"])
    if trim_frames and pl.lengths.get(tp, T) > T:
        within = tail_frames < T
        report.add(f"tail: {int((~within).sum())} samples after the cropped frame {T} ignored")
        values, tail_frames = values[within], tail_frames[within]
    behavior = average_per_frame(
        values, tail_frames, T, what=f"tail (plane_{tp}/tail_df.h5)", report=report
    )
    amax = float(np.abs(behavior).max()) if behavior.size else 0.0
    if amax > 2 * np.pi:
        report.warn(f"tail angles reach {amax:.1f}: more than 2π, are they in degrees?")
    return behavior


def _stimulus_epochs(pl: _Planes, tp: int, report: ImportReport) -> list[Epoch]:
    """Epochs from the tail plane's stimulus_df.tab (or the fish folder's)."""
    stim_path = pl.folders[tp] / "stimulus_df.tab"
    if not stim_path.exists() and (pl.root / "stimulus_df.tab").exists():
        stim_path = pl.root / "stimulus_df.tab"
    if not stim_path.exists():
        report.warn(f"no stimulus_df.tab in plane_{tp}: the recording has no epochs")
        return []
    names, onsets, params = read_stimulus_table(stim_path)
    return epochs_from_onsets(
        names, onsets, pl.n_frames, params=params, what=f"stimulus ({stim_path.name})",
        report=report,
    )


@dataclass(frozen=True, kw_only=True)
class _Baseline:
    """The ΔF/F baseline options."""

    kind: str  # "percentile" or "maximin"
    percentile: float
    window_frames: int


def _usable_rois(
    pl: _Planes, base: _Baseline, report: ImportReport
) -> tuple[dict[int, np.ndarray], dict[int, np.ndarray]]:
    """Per plane: ``(usable, F0)``, usable (n_rois,) bool = finite trace and (percentile
    baseline) F0 > 0; F0 (n_rois,) float32 (zeros for the sliding baseline)."""
    good: dict[int, np.ndarray] = {}
    F0s: dict[int, np.ndarray] = {}
    for k in pl.chosen:
        block = np.load(pl.f_path(k))[:, : pl.n_frames]
        ok = np.all(np.isfinite(block), axis=1)
        if base.kind == "percentile":
            F0 = np.percentile(block, base.percentile, axis=1).astype(np.float32)
            ok &= F0 > 0
        else:
            F0 = np.zeros(len(block), np.float32)
        del block
        good[k], F0s[k] = ok, F0
        n_bad = int((~ok).sum())
        if n_bad:
            report.warn(f"plane_{k}: dropped {n_bad} of {len(ok)} ROIs (NaN/inf or baseline <= 0)")
    return good, F0s


def _percentile_dff(F: np.ndarray, rows: np.ndarray, F0: np.ndarray, out: np.ndarray) -> None:
    """``(F[rows] - F0) / F0`` into ``out`` (T, n), in chunks of ROIs; F0 (n,) of ``rows``."""
    T, step = out.shape[0], 2048
    for a in range(0, len(rows), step):
        sel = rows[a : a + step]
        chunk = np.asarray(F[sel, :T], dtype=np.float32).T  # (T, n)
        chunk -= F0[a : a + step]
        chunk /= F0[a : a + step]
        out[:, a : a + len(sel)] = chunk


def _plane_dff(
    F: np.ndarray, rows: np.ndarray, F0: np.ndarray, k: int, base: _Baseline, out: np.ndarray,
    report: ImportReport,
) -> None:
    """ΔF/F of one plane's kept ROIs ``rows`` into ``out`` (T, len(rows))."""
    if base.kind == "percentile":
        _percentile_dff(F, rows, F0, out)
        return
    T = out.shape[0]
    d, _ = dff(np.asarray(F[rows, :T]).T, baseline="maximin", window_frames=base.window_frames)
    out[:] = np.nan_to_num(d, nan=0.0)
    n_nan = int(np.isnan(d).any(axis=0).sum())
    if n_nan:
        report.warn(f"plane_{k}: {n_nan} ROIs with a non-positive sliding baseline, set to 0")


def _activity(
    pl: _Planes, base: _Baseline, geometry: tuple[float, float], report: ImportReport
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(activity (T, N), imaging µm (N, 3), neuron_ids (N,))`` of the usable ROIs, plane by
    plane side by side."""
    good, F0s = _usable_rois(pl, base, report)
    T, N = pl.n_frames, int(sum(g.sum() for g in good.values()))
    if N == 0:
        raise ImportError_(f"{pl.root}: no usable ROI in planes {pl.chosen}")
    activity = np.empty((T, N), dtype=np.float32)
    imaging = np.empty((N, 3), dtype=np.float64)
    ids = np.empty(N, dtype=np.int64)
    col = 0
    for k in pl.chosen:
        F = np.load(pl.f_path(k), mmap_mode="r")
        rows = np.flatnonzero(good[k])
        cols = slice(col, col + len(rows))
        _plane_dff(F, rows, F0s[k][rows], k, base, activity[:, cols], report)
        imaging[cols], ids[cols] = plane_positions(
            pl.folders[k], k, F.shape[0], rows,
            pixel_size_um=geometry[0], plane_spacing_um=geometry[1],
        )
        report.add(f"plane_{k}: {len(rows):,} neurons, {F.shape[1]} frames")
        col += len(rows)
        del F
    return activity, imaging, ids


@register_importer(
    "nlp4neuro",
    "NLP4Neuro Dataverse fish folder (raw_data_fN/plane_k/ suite2p + tail_df.h5 + stimulus_df.tab)",
    add_arguments,
)
def import_nlp4neuro(
    src: Path,
    *,
    planes: str | None = None,
    pixel_size_um: float = 0.6,
    plane_spacing_um: float = 10.0,
    placement: Placement | None = None,
    baseline: str = "percentile",
    baseline_percentile: float = 10.0,
    baseline_window_s: float = 60.0,
    tail_plane: int | None = None,
    tail_segments: int = 6,
    frame_rate_hz: float | None = None,
    trim_frames: bool = False,
    fish_id: str | None = None,
    prepped: bool = False,
) -> ImportResult:
    """Build a Recording from an NLP4Neuro fish folder; see the module docstring.

    Parameters
    ----------
    src
        The fish folder (``raw_data_fN`` or a folder holding it).
    planes, pixel_size_um, plane_spacing_um, baseline, baseline_percentile, baseline_window_s,
    tail_plane, tail_segments, frame_rate_hz, trim_frames, fish_id, prepped
        The command-line options of the same names (:func:`add_arguments`).
    placement
        Where the positions go: :class:`~decoding.importers.base.Placement`.

    Returns
    -------
    ImportResult
        The recording (the planes' neurons side by side, tail angles as behaviour) and the
        report.
    """
    src, report = Path(src), ImportReport()
    if prepped:
        return _import_prepped(src, fish_id=fish_id, frame_rate_hz=frame_rate_hz, report=report)
    pl = _choose_planes(src, planes, report)
    _read_lengths(pl, trim_frames, report)
    tp = _tail_plane(pl, tail_plane)
    tail = read_tail_df(pl.folders[tp] / "tail_df.h5")
    rate = _frame_rate(pl.folders[tp], tp, tail, frame_rate_hz, report)
    behavior = _tail_behavior(pl, tp, tail, tail_segments, trim_frames, report)
    del tail
    epochs = _stimulus_epochs(pl, tp, report)
    base = _Baseline(
        kind=baseline,
        percentile=baseline_percentile,
        window_frames=max(3, int(round(baseline_window_s * rate))),
    )
    activity, imaging, ids = _activity(pl, base, (pixel_size_um, plane_spacing_um), report)
    traces = Traces(
        activity=activity, behavior=behavior, epochs=epochs, imaging_um=imaging, neuron_ids=ids,
        behavior_names=[f"tail_{i}" for i in range(tail_segments)],
        behavior_units=["rad"] * tail_segments, frame_rate_hz=rate,
    )
    fish = fish_id or _fish_id(pl.root)
    summary = [
        f"{fish}: {pl.n_frames} frames x {activity.shape[1]:,} neurons at {rate:.3f} Hz; ΔF/F "
        f"with a per-neuron {baseline} baseline; behaviour = {tail_segments} tail angles (rad) "
        f"from plane_{tp}"
    ]
    if len(pl.chosen) > 1:
        summary.append(
            "planes were imaged one after another: neurons of different planes are aligned by "
            "frame index and stimulus protocol, not recorded simultaneously"
        )
    # finite by construction: finite F, baseline > 0
    return placed_result(
        "nlp4neuro", src, traces, placement, report, fish_id=fish, source=f"nlp4neuro:{pl.root}",
        summary=summary, check_activity=False,
    )


def _import_prepped(
    src: Path, *, fish_id: str | None, frame_rate_hz: float | None, report: ImportReport
) -> ImportResult:
    folders = [src, src / "data"]
    neural = [p for d in folders if d.is_dir() for p in d.glob("fish*_neural_data_full.npy")]
    if not neural:
        raise ImportError_(
            f"{src}: no fishN_neural_data_full.npy found (looked in {src} and {src / 'data'})"
        )
    npath = sorted(neural)[0]
    stem = npath.name.split("_neural_data_full.npy")[0]
    tpath = npath.with_name(f"{stem}_tail_data_matched.npy")
    X = load_npy(npath, what="prepped neural data", mmap=True)
    Y = load_npy(tpath, what="prepped tail data (fishN_tail_data_matched.npy)")
    if X.ndim != 2 or Y.ndim != 2:
        raise ImportError_(f"{npath}: expected 2-D arrays, found {X.shape} and {Y.shape}")
    N, T = X.shape
    if Y.shape[0] > T:
        raise ImportError_(
            f"{tpath}: {Y.shape[0]} tail rows but only {T} imaging frames in {npath.name}"
        )
    if Y.shape[0] < T:
        report.warn(
            f"{tpath.name} has {Y.shape[0]} rows for {T} imaging frames: activity cropped to the "
            f"first {Y.shape[0]} frames (alignment as in the study's prepped arrays)"
        )
    T2 = Y.shape[0]
    rate = frame_rate_hz or 1.1
    if frame_rate_hz is None:
        report.warn("frame rate assumed 1.1 Hz (the study's); pass --frame-rate-hz to set it")
    report.warn(
        "prepped neural data are normalised per frame by the study, not ΔF/F per neuron; "
        "prefer the raw plane_k/F.npy layout for honest per-neuron normalisation"
    )
    report.warn("prepped arrays carry no neuron positions: positions set to 0, regions unknown")
    K = Y.shape[1]
    report.add(f"{stem}: {T2} frames x {N:,} neurons, {K} tail channels")
    rec = Recording(
        np.ascontiguousarray(X[:, :T2].T, dtype=np.float32),
        Y.astype(np.float32),
        np.zeros((N, 3), np.float32),
        frame_rate_hz=rate,
        behavior_names=[f"tail_{i}" for i in range(K)],
        behavior_units=["rad"] * K,
        fish_id=fish_id or stem,
        atlas="imaging",
        source=f"nlp4neuro-prepped:{npath}",
    )
    return ImportResult(rec, report, "nlp4neuro", src)
