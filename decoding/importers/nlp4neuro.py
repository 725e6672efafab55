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
from pathlib import Path

import numpy as np

from decoding.errors import ImportError_
from decoding.importers.base import (
    ImportReport,
    ImportResult,
    average_per_frame,
    epochs_from_onsets,
    parse_planes,
    place_in_atlas,
    register_importer,
)
from decoding.importers.formats import (
    find_planes,
    load_npy,
    read_ops,
    read_stimulus_table,
    read_tail_df,
    roi_centres_px,
)
from decoding.recording import MAX_OUTSIDE_FRACTION, Recording

STUDY_PLANES = (0, 1, 2, 3, 4, 5)
NEURON_ID_PLANE_STRIDE = 1_000_000
"""``neuron_ids`` = plane * 1,000,000 + ROI index within the plane's F.npy."""


def add_arguments(p: argparse.ArgumentParser) -> None:
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
    p.add_argument(
        "--baseline",
        choices=("percentile", "maximin"),
        default="percentile",
        help="ΔF/F baseline per neuron: whole-trace percentile (default) or sliding maximin",
    )
    p.add_argument("--baseline-percentile", type=float, default=10.0)
    p.add_argument("--baseline-window-s", type=float, default=60.0, help="maximin window (s)")
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


def add_placement_arguments(p: argparse.ArgumentParser) -> None:
    """--affine / --landmarks / --atlas / --atlas-file, shared by the importers."""
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
    affine: Path | None = None,
    landmarks: Path | None = None,
    atlas: str | None = None,
    atlas_file: Path | None = None,
    max_outside: float = MAX_OUTSIDE_FRACTION,
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
    """Build a Recording from an NLP4Neuro fish folder; see the module docstring."""
    src = Path(src)
    report = ImportReport()
    if prepped:
        return _import_prepped(src, fish_id=fish_id, frame_rate_hz=frame_rate_hz, report=report)
    root, found = _locate_planes(src)
    if not found:
        raise ImportError_(
            f"{src}: no plane_k/ subfolders found (expected the raw_data_fN/plane_0 ... layout); "
            "for the prepped fishN_*_data_*.npy arrays pass --prepped"
        )
    if planes is None:
        chosen = [k for k in found if k in STUDY_PLANES]
        if not chosen:
            raise ImportError_(
                f"{root}: none of the study's planes 0-5 found (have {list(found)}); pass --planes"
            )
        excluded = [k for k in found if k not in chosen]
        if excluded:
            report.add(
                f"planes {excluded} excluded (the study used planes 0-5); "
                "--planes all includes them"
            )
    else:
        chosen = parse_planes(planes, list(found))
    fish = fish_id or _fish_id(root)

    # ---- pass 1: shapes, frame counts, baselines
    # F.npy files are memory-mapped one plane at a time and unmapped after use, so that at most
    # one plane's pages count towards the resident memory next to the (T, N) output
    F_paths: dict[int, Path] = {}
    lengths: dict[int, int] = {}
    n_rois: dict[int, int] = {}
    for k in chosen:
        path = found[k] / "F.npy"
        F = load_npy(path, what="suite2p F.npy (fluorescence)", mmap=True)
        if F.ndim != 2 or not np.issubdtype(F.dtype, np.floating):
            raise ImportError_(
                f"{path}: expected a float (n_rois, n_frames) array, found {F.dtype} {F.shape}"
            )
        if F.shape[0] == 0:
            raise ImportError_(
                f"{path}: plane_{k} has no ROIs (empty plane); leave it out with --planes"
            )
        F_paths[k], lengths[k], n_rois[k] = path, F.shape[1], F.shape[0]
        del F
    T = min(lengths.values())
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"plane_{k}: {n}" for k, n in lengths.items())
        if not trim_frames:
            raise ImportError_(
                f"{root}: frame counts disagree across planes ({desc}); pass --trim-frames to crop "
                f"every plane to the shortest ({T}) or leave the odd plane out with --planes"
            )
        report.warn(f"frame counts disagreed ({desc}); all planes cropped to {T} frames")

    # tail / stimulus plane
    tp = (
        tail_plane
        if tail_plane is not None
        else next((k for k in chosen if (found[k] / "tail_df.h5").exists()), chosen[0])
    )
    if tp not in found:
        raise ImportError_(f"--tail-plane {tp}: no plane_{tp} folder in {root}")
    tail = read_tail_df(found[tp] / "tail_df.h5")
    rate = frame_rate_hz
    if rate is None:
        rate = _frame_rate_from_tail(tail)
        if rate is not None:
            report.add(f"frame rate {rate:.3f} Hz estimated from tail_df t vs frame (plane_{tp})")
    if rate is None:
        ops = read_ops(found[tp])
        if ops.get("fs"):
            rate = float(ops["fs"])
            report.add(f"frame rate {rate:g} Hz from ops.npy")
    if rate is None:
        raise ImportError_(
            f"{found[tp]}: cannot tell the frame rate (no 't' column in tail_df.h5, no ops.npy); "
            "pass --frame-rate-hz"
        )

    thetas = sorted(c for c in tail if re.fullmatch(r"theta_?\d+", c))
    if len(thetas) < tail_segments:
        raise ImportError_(
            f"{found[tp] / 'tail_df.h5'}: expected at least {tail_segments} theta columns, found "
            f"{thetas}; lower --tail-segments"
        )
    thetas = thetas[:tail_segments]
    values = np.stack([np.asarray(tail[c], dtype=np.float64) for c in thetas], axis=1)
    tail_frames = np.asarray(tail["frame"])
    if trim_frames and lengths.get(tp, T) > T:
        within = tail_frames < T
        report.add(f"tail: {int((~within).sum())} samples after the cropped frame {T} ignored")
        values, tail_frames = values[within], tail_frames[within]
    behavior = average_per_frame(
        values, tail_frames, T, what=f"tail (plane_{tp}/tail_df.h5)", report=report
    )
    del tail, values, tail_frames
    amax = float(np.abs(behavior).max()) if behavior.size else 0.0
    if amax > 2 * np.pi:
        report.warn(f"tail angles reach {amax:.1f}: more than 2π, are they in degrees?")

    stim_path = found[tp] / "stimulus_df.tab"
    if not stim_path.exists() and (root / "stimulus_df.tab").exists():
        stim_path = root / "stimulus_df.tab"
    if stim_path.exists():
        names, onsets, params = read_stimulus_table(stim_path)
        epochs = epochs_from_onsets(
            names, onsets, T, params=params, what=f"stimulus ({stim_path.name})", report=report
        )
    else:
        epochs = []
        report.warn(f"no stimulus_df.tab in plane_{tp}: the recording has no epochs")

    # ---- ΔF/F per plane; drop ROIs with NaN or non-positive baseline
    window = max(3, int(round(baseline_window_s * rate)))
    good: dict[int, np.ndarray] = {}
    F0s: dict[int, np.ndarray] = {}
    for k, path in F_paths.items():
        block = np.load(path)[:, :T]
        finite = np.all(np.isfinite(block), axis=1)
        if baseline == "percentile":
            F0 = np.percentile(block, baseline_percentile, axis=1).astype(np.float32)
            ok = finite & (F0 > 0)
        else:
            F0 = np.zeros(len(block), np.float32)
            ok = finite
        del block
        good[k], F0s[k] = ok, F0
        n_bad = int((~ok).sum())
        if n_bad:
            report.warn(f"plane_{k}: dropped {n_bad} of {len(ok)} ROIs (NaN/inf or baseline <= 0)")
    N = int(sum(g.sum() for g in good.values()))
    if N == 0:
        raise ImportError_(f"{root}: no usable ROI in planes {chosen}")
    activity = np.empty((T, N), dtype=np.float32)
    imaging = np.empty((N, 3), dtype=np.float64)
    ids = np.empty(N, dtype=np.int64)
    col = 0
    for k, path in F_paths.items():
        F = np.load(path, mmap_mode="r")
        ok = good[k]
        n_k = int(ok.sum())
        cols = slice(col, col + n_k)
        if baseline == "percentile":
            F0 = F0s[k][ok]
            step = 2048
            idx = np.flatnonzero(ok)
            for a in range(0, n_k, step):
                sel = idx[a : a + step]
                chunk = np.asarray(F[sel, :T], dtype=np.float32).T  # (T, n)
                chunk -= F0[a : a + step]
                chunk /= F0[a : a + step]
                activity[:, col + a : col + a + len(sel)] = chunk
        else:
            from decoding.importers.base import dff

            d, _ = dff(np.asarray(F[ok, :T]).T, baseline="maximin", window_frames=window)
            activity[:, cols] = np.nan_to_num(d, nan=0.0)
            n_nan = int(np.isnan(d).any(axis=0).sum())
            if n_nan:
                report.warn(
                    f"plane_{k}: {n_nan} ROIs with a non-positive sliding baseline, set to 0"
                )
        xy = roi_centres_px(found[k] / "stat.npy", F.shape[0])[ok]
        imaging[cols, 0] = xy[:, 0] * pixel_size_um
        imaging[cols, 1] = xy[:, 1] * pixel_size_um
        imaging[cols, 2] = k * plane_spacing_um
        ids[cols] = k * NEURON_ID_PLANE_STRIDE + np.flatnonzero(ok)
        report.add(f"plane_{k}: {n_k:,} neurons, {F.shape[1]} frames")
        col += n_k
        del F

    positions, atlas_name, regions, _keep = place_in_atlas(
        imaging,
        affine=affine,
        landmarks=landmarks,
        atlas_name=atlas,
        atlas_file=atlas_file,
        report=report,
        max_outside=max_outside,
    )
    report.add(
        f"{fish}: {T} frames x {N:,} neurons at {rate:.3f} Hz; ΔF/F with a per-neuron "
        f"{baseline} baseline; behaviour = {tail_segments} tail angles (rad) from plane_{tp}"
    )
    if len(chosen) > 1:
        report.add(
            "planes were imaged one after another: neurons of different planes are aligned by "
            "frame index and stimulus protocol, not recorded simultaneously"
        )
    rec = Recording(
        activity,
        behavior,
        positions,
        frame_rate_hz=rate,
        behavior_names=[f"tail_{i}" for i in range(tail_segments)],
        behavior_units=["rad"] * tail_segments,
        epochs=epochs,
        fish_id=fish,
        atlas=atlas_name,
        source=f"nlp4neuro:{root}",
        neuron_ids=ids,
        regions=regions,
        max_outside=max_outside,
        _check_activity=False,  # finite by construction: finite F, baseline > 0
    )
    return ImportResult(rec, report, "nlp4neuro", src)


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
