"""Plain suite2p output: ``suite2p/plane<k>/`` with F, Fneu, iscell, stat, ops (MouseLand/suite2p).

ΔF/F from the neuropil-corrected trace ``F - coef * Fneu`` with a per-neuron baseline; ``iscell``
filter; frame rate from ``ops["fs"]``; behaviour from a CSV/TSV or HDF5 file the user names (one
row per imaging frame, or samples with a ``frame`` column averaged per frame); optional epochs
from a table of onsets (``name, frame``) or intervals (``name, start, stop``).

    python -m decoding import suite2p SESSION/ --out fish.h5 --behavior tail.csv --epochs stim.csv
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import h5py
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
    read_table_file,
    require_rois,
)
from decoding.recording import Epoch


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The suite2p importer's command-line options.

    Parameters
    ----------
    p
        The ``import suite2p`` sub-parser.
    """
    p.add_argument(
        "--behavior",
        type=Path,
        required=True,
        help="behaviour table: CSV/TSV, or HDF5 as FILE.h5 or FILE.h5:DATASET (rows = frames, "
        "or samples with a 'frame' column)",
    )
    p.add_argument(
        "--behavior-columns",
        default=None,
        help="comma-separated columns to use (default: every numeric column except frame/t/time)",
    )
    p.add_argument("--behavior-units", default="a.u.", help="unit of the behaviour channels")
    p.add_argument(
        "--epochs", type=Path, default=None, help="table of name,frame or name,start,stop"
    )
    p.add_argument("--planes", default=None, help="'0-2', '0,2' or 'all' (default all)")
    p.add_argument("--neuropil-coef", type=float, default=0.7, help="F - coef*Fneu (default 0.7)")
    p.add_argument(
        "--all-rois", action="store_true", help="keep every ROI (default: only iscell == 1)"
    )
    p.add_argument(
        "--iscell-threshold",
        type=float,
        default=None,
        help="keep ROIs whose iscell probability >= this (instead of the 0/1 column)",
    )
    add_baseline_arguments(p)
    p.add_argument("--frame-rate-hz", type=float, default=None, help="default: ops['fs']")
    p.add_argument("--pixel-size-um", type=float, default=1.0, help="pixel size (default 1.0)")
    p.add_argument("--plane-spacing-um", type=float, default=10.0, help="default 10 (nominal)")
    add_placement_arguments(p)
    p.add_argument("--fish-id", default=None)


def _suite2p_root(src: Path) -> Path:
    for cand in (src, src / "suite2p"):
        if find_planes(cand):
            return cand
    raise ImportError_(
        f"{src}: no suite2p plane folders (expected {src}/suite2p/plane0/ with F.npy, Fneu.npy, "
        "iscell.npy, stat.npy, ops.npy)"
    )


_SKIP_COLS = {"frame", "t", "time", "time_s", "index", "unnamed: 0", ""}


def _behavior_dataset(p: Path, dataset: str, n_frames: int) -> tuple[np.ndarray, list[str]]:
    """``(values (T, K) float64, names)`` of an HDF5 dataset (transposed when stored (K, T));
    names from its ``names`` attribute, else ``DATASET_i``."""
    with h5py.File(p, "r") as f:
        if dataset not in f or not isinstance(f[dataset], h5py.Dataset):
            raise ImportError_(
                f"--behavior {p}:{dataset}: no such dataset; datasets: {list(f)[:10]}"
            )
        arr = np.asarray(f[dataset][()], dtype=np.float64)
        names_attr = f[dataset].attrs.get("names")
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.shape[0] != n_frames and arr.shape[1] == n_frames:
        arr = arr.T
    names = (
        [n.decode() if isinstance(n, bytes) else str(n) for n in names_attr]
        if names_attr is not None and len(names_attr) == arr.shape[1]
        else [f"{dataset.strip('/').replace('/', '_')}_{i}" for i in range(arr.shape[1])]
    )
    return arr, names


def _behavior_table(
    p: Path, columns: str | None
) -> tuple[np.ndarray, list[str], np.ndarray | None]:
    """``(values (S, K) float64, names, frame column or None)`` of a CSV/TSV or pandas HDF5."""
    if h5py.is_hdf5(p):
        import pandas as pd

        try:
            df = pd.read_hdf(p)
        except Exception as exc:
            raise ImportError_(
                f"--behavior {p}: HDF5 without a single pandas table; name the dataset as "
                f"{p}:DATASET ({exc})"
            ) from exc
    else:
        df = read_table_file(p, what="behaviour table")
    lower = {str(c).lower(): c for c in df.columns}
    frames = df[lower["frame"]].to_numpy() if "frame" in lower else None
    if columns:
        want = [c.strip() for c in columns.split(",") if c.strip()]
        missing = [c for c in want if c not in df.columns]
        if missing:
            raise ImportError_(
                f"--behavior-columns: {missing} not in {p}; columns: {list(df.columns)}"
            )
    else:
        want = [
            c
            for c in df.columns
            if str(c).lower() not in _SKIP_COLS and np.issubdtype(df[c].dtype, np.number)
        ]
    if not want:
        raise ImportError_(f"--behavior {p}: no numeric behaviour columns in {list(df.columns)}")
    return df[want].to_numpy(dtype=np.float64), [str(c) for c in want], frames

def read_behavior(
    path: Path, columns: str | None, n_frames: int, report: ImportReport
) -> tuple[np.ndarray, list[str]]:
    """Behaviour (T, K) from a table or HDF5 dataset; see :func:`add_arguments`.

    Parameters
    ----------
    path
        ``FILE`` (CSV/TSV or pandas HDF5) or ``FILE.h5:DATASET``.
    columns
        ``--behavior-columns`` (None: every numeric column but frame/time).
    n_frames
        Imaging frames T.
    report
        Gets what was read.

    Returns
    -------
    tuple[np.ndarray, list[str]]
        ``(behaviour (T, K) float32, channel names)``.
    """
    spec = str(path)
    dataset = None
    if ":" in spec and not Path(spec).exists():
        spec, dataset = spec.rsplit(":", 1)
    p = Path(spec)
    if not p.exists():
        raise ImportError_(f"--behavior {p}: no such file")
    frames = None
    if h5py.is_hdf5(p) and dataset is not None:
        values, names = _behavior_dataset(p, dataset, n_frames)
    else:
        values, names, frames = _behavior_table(p, columns)
    if frames is not None:
        return average_per_frame(
            values, frames, n_frames, what=f"behaviour ({p.name})", report=report
        ), names
    if values.shape[0] != n_frames:
        raise ImportError_(
            f"--behavior {p}: {values.shape[0]} rows but the imaging has {n_frames} frames; give "
            "one row per frame, or samples with a 'frame' column"
        )
    if not np.all(np.isfinite(values)):
        raise ImportError_(f"--behavior {p}: contains NaN/inf values")
    report.add(f"behaviour: {len(names)} channels ({', '.join(names)}) from {p.name}")
    return values.astype(np.float32), names


def read_epochs(path: Path, n_frames: int, report: ImportReport) -> list[Epoch]:
    """Epochs from a table: columns name + frame (onsets) or name + start + stop (intervals).

    Parameters
    ----------
    path
        The ``--epochs`` table.
    n_frames
        Imaging frames T.
    report
        Gets the epoch count.

    Returns
    -------
    list[Epoch]
        The epochs.
    """
    df = read_table_file(path, what="epochs table")
    lower = {str(c).lower(): c for c in df.columns}
    name_col = next((lower[c] for c in ("name", "stim_name", "stimulus") if c in lower), None)
    if name_col is None:
        raise ImportError_(f"--epochs {path}: expected a 'name' column, found {list(df.columns)}")
    names = [str(v) for v in df[name_col]]
    if "start" in lower and "stop" in lower:
        epochs = []
        for nm, a, b in zip(names, df[lower["start"]], df[lower["stop"]], strict=True):
            a, b = int(a), int(b)
            if not 0 <= a < b <= n_frames:
                raise ImportError_(
                    f"--epochs {path}: epoch {nm!r} [{a}, {b}) outside the recording "
                    f"[0, {n_frames})"
                )
            epochs.append(Epoch(nm, a, b))
        report.add(f"epochs: {len(epochs)} intervals from {path.name}")
        return epochs
    if "frame" in lower:
        onsets = [int(v) for v in df[lower["frame"]]]
        return epochs_from_onsets(
            names, onsets, n_frames, what=f"epochs ({path.name})", report=report
        )
    raise ImportError_(
        f"--epochs {path}: expected columns name,frame (onsets) or name,start,stop; found "
        f"{list(df.columns)}"
    )


def _cell_rows(
    d: Path, k: int, n_rois: int, all_rois: bool, threshold: float | None, report: ImportReport
) -> np.ndarray:
    """Indices of the ROIs of plane ``k`` kept by the iscell filter (all with ``all_rois``)."""
    keep = np.ones(n_rois, bool)
    if not all_rois:
        isc = load_npy(d / "iscell.npy", what="iscell.npy (or pass --all-rois)")
        if isc.ndim != 2 or isc.shape[0] != n_rois:
            raise ImportError_(f"{d / 'iscell.npy'}: expected ({n_rois}, 2), found {isc.shape}")
        keep = isc[:, 1] >= threshold if threshold is not None else isc[:, 0] > 0.5
        report.add(f"plane{k}: {int(keep.sum())} of {n_rois} ROIs classified as cells")
    idx = np.flatnonzero(keep)
    if idx.size == 0:
        raise ImportError_(
            f"{d}: no ROI of plane{k} passes the iscell filter (--all-rois keeps all)"
        )
    return idx


@dataclass(frozen=True, kw_only=True)
class _RoiOptions:
    """Which ROIs, which trace, where they are."""

    neuropil_coef: float
    all_rois: bool
    iscell_threshold: float | None
    pixel_size_um: float
    plane_spacing_um: float


def _read_planes(
    root: Path, chosen: list[int], opt: _RoiOptions, rate: float | None, report: ImportReport
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float | None]:
    """``(F - coef*Fneu (T, N), imaging µm (N, 3), neuron_ids (N,), ops fs or ``rate``)``."""
    found = find_planes(root)
    blocks, pos, ids = [], [], []
    T = None
    for k in chosen:
        d = found[k]
        F = load_npy(d / "F.npy", what="F.npy", mmap=True)
        Fneu = load_npy(d / "Fneu.npy", what="Fneu.npy (neuropil)", mmap=True)
        if F.ndim != 2 or F.shape != Fneu.shape:
            raise ImportError_(
                f"{d}: F.npy {F.shape} and Fneu.npy {Fneu.shape} must both be (n_rois, n_frames)"
            )
        require_rois(F.shape[0], d, f"plane{k}")
        if T is not None and F.shape[1] != T:
            raise ImportError_(
                f"{d}: {F.shape[1]} frames but plane{chosen[0]} has {T}; suite2p planes of one "
                "volume must have the same frame count"
            )
        T = F.shape[1]
        ops = read_ops(d)
        if rate is None and ops.get("fs"):
            rate = float(ops["fs"])
        idx = _cell_rows(d, k, F.shape[0], opt.all_rois, opt.iscell_threshold, report)
        corr = (
            np.asarray(F[idx], np.float32) - opt.neuropil_coef * np.asarray(Fneu[idx], np.float32)
        ).T
        blocks.append(corr)
        xyz, nid = plane_positions(
            d, k, F.shape[0], idx,
            pixel_size_um=opt.pixel_size_um, plane_spacing_um=opt.plane_spacing_um,
        )
        pos.append(xyz)
        ids.append(nid)
    raw = np.concatenate(blocks, axis=1) if len(blocks) > 1 else blocks[0]
    return raw, np.concatenate(pos), np.concatenate(ids), rate


def _neuropil_dff(
    raw: np.ndarray, baseline: str, percentile: float, window: int, report: ImportReport
) -> tuple[np.ndarray, np.ndarray]:
    """``(ΔF/F (T, n), kept (N,) bool)``: ROIs whose baseline is <= 0 or NaN are dropped."""
    act, _F0 = dff(raw, baseline=baseline, percentile=percentile, window_frames=window)
    good = np.all(np.isfinite(act), axis=0)
    if not good.all():
        report.warn(
            f"dropped {int((~good).sum())} ROIs whose neuropil-corrected baseline is <= 0 or NaN "
            "(try a smaller --neuropil-coef)"
        )
        act = np.ascontiguousarray(act[:, good])
    return act, good


@register_importer(
    "suite2p", "suite2p output folder (suite2p/plane*/ F, Fneu, iscell, stat, ops)", add_arguments
)
def import_suite2p(
    src: Path,
    *,
    behavior: Path,
    behavior_columns: str | None = None,
    behavior_units: str = "a.u.",
    epochs: Path | None = None,
    planes: str | None = None,
    neuropil_coef: float = 0.7,
    all_rois: bool = False,
    iscell_threshold: float | None = None,
    baseline: str = "percentile",
    baseline_percentile: float = 10.0,
    baseline_window_s: float = 60.0,
    frame_rate_hz: float | None = None,
    pixel_size_um: float = 1.0,
    plane_spacing_um: float = 10.0,
    placement: Placement | None = None,
    fish_id: str | None = None,
) -> ImportResult:
    """Build a Recording from suite2p output; see the module docstring.

    Parameters
    ----------
    src
        The session folder (holding ``suite2p/``) or the ``suite2p`` folder itself.
    behavior, behavior_columns, behavior_units, epochs, planes, neuropil_coef, all_rois,
    iscell_threshold, baseline, baseline_percentile, baseline_window_s, frame_rate_hz,
    pixel_size_um, plane_spacing_um, fish_id
        The command-line options of the same names (:func:`add_arguments`).
    placement
        Where the positions go: :class:`~decoding.importers.base.Placement`.

    Returns
    -------
    ImportResult
        The recording (ΔF/F of the neuropil-corrected traces) and the report.
    """
    report = ImportReport()
    root = _suite2p_root(Path(src))
    chosen = parse_planes(planes, list(find_planes(root)))
    rois = _RoiOptions(
        neuropil_coef=neuropil_coef, all_rois=all_rois, iscell_threshold=iscell_threshold,
        pixel_size_um=pixel_size_um, plane_spacing_um=plane_spacing_um,
    )
    raw, imaging, nids, rate = _read_planes(root, chosen, rois, frame_rate_hz, report)
    if rate is None:
        raise ImportError_(f"{root}: no 'fs' in ops.npy; pass --frame-rate-hz")
    T = raw.shape[0]
    window = max(3, int(round(baseline_window_s * rate)))
    act, good = _neuropil_dff(raw, baseline, baseline_percentile, window, report)
    del raw
    if act.shape[1] == 0:
        raise ImportError_(f"{root}: no usable ROI left")
    beh, names = read_behavior(Path(behavior), behavior_columns, T, report)
    traces = Traces(
        activity=act, behavior=beh, behavior_names=names,
        behavior_units=[behavior_units] * len(names),
        epochs=read_epochs(Path(epochs), T, report) if epochs is not None else [],
        imaging_um=imaging[good], neuron_ids=nids[good], frame_rate_hz=rate,
    )
    summary = (
        f"{T} frames x {act.shape[1]:,} neurons at {rate:g} Hz from planes {chosen}; ΔF/F of "
        f"F - {neuropil_coef:g}*Fneu with a per-neuron {baseline} baseline"
    )
    return placed_result(
        "suite2p", Path(src), traces, placement, report, fish_id=fish_id or Path(src).name,
        source=f"suite2p:{root}", summary=[summary],
    )
