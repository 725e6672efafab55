"""NWB (pynwb), e.g. DANDI:000350 (Mu et al. 2019): ΔF/F, ROI centroids, behaviour, stimuli.

- Activity: a ``RoiResponseSeries`` (``--series``, default the one inside ``DfOverF``), (T, n_rois).
- Positions: weighted centroids of the ROIs' ``voxel_mask`` (x, y, z) or ``pixel_mask`` (x, y) in
  the plane segmentation, scaled by the imaging plane's ``grid_spacing`` (or ``--voxel-size-um``);
  imaging-frame µm unless ``--affine``/``--landmarks``.
- Behaviour: one or more ``TimeSeries`` named with ``--behavior`` (e.g. ``SwimSignals``), averaged
  per imaging frame on the common time axis.
- Epochs: a ``TimeIntervals`` table named with ``--epochs`` (``start_time``, ``stop_time`` and a
  name column), converted to frames.

    python -m decoding import nwb sub-01.nwb --out fish.h5 --behavior SwimSignals \\
        --epochs StimulusIntervals
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from decoding.errors import ImportError_
from decoding.importers.base import (
    ImportReport,
    ImportResult,
    Placement,
    Traces,
    add_placement_arguments,
    average_per_frame,
    placed_result,
    register_importer,
)
from decoding.recording import Epoch

if TYPE_CHECKING:
    from pynwb import NWBFile

NAME_COLUMNS = ("stimulus_name", "stim_name", "name", "stimulus", "stimulus_type", "label")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The NWB importer's command-line options.

    Parameters
    ----------
    p
        The ``import nwb`` sub-parser.
    """
    p.add_argument("--series", default=None, help="RoiResponseSeries name (default: the ΔF/F one)")
    p.add_argument(
        "--behavior",
        required=True,
        help="comma-separated TimeSeries names to use as behaviour (e.g. SwimSignals)",
    )
    p.add_argument("--epochs", default=None, help="TimeIntervals table with the stimulus epochs")
    p.add_argument("--epoch-name-column", default=None, help="column naming each interval")
    p.add_argument(
        "--voxel-size-um",
        default=None,
        help="x,y,z µm per mask unit (default: the imaging plane's grid_spacing)",
    )
    add_placement_arguments(p)
    p.add_argument("--fish-id", default=None)


def _objects(nwb, cls) -> list:
    return [o for o in nwb.objects.values() if isinstance(o, cls)]


def _centroids(ps, what: str) -> np.ndarray:
    """(n_rois, 3) weighted centroids in mask units from voxel_mask / pixel_mask / image_mask."""
    cols = set(ps.colnames)
    for key, dims in (("voxel_mask", ("x", "y", "z")), ("pixel_mask", ("x", "y"))):
        if key in cols:
            vi = ps[key]
            flat = vi.target.data[:]
            ends = np.asarray(vi.data[:], dtype=np.int64)
            starts = np.concatenate([[0], ends[:-1]])
            if np.any(ends <= starts):
                raise ImportError_(f"{what}: an ROI has an empty {key}")
            w = np.asarray(flat["weight"], dtype=np.float64)
            out = np.zeros((len(ends), 3))
            wsum = np.add.reduceat(w, starts)
            for j, d in enumerate(dims):
                out[:, j] = np.add.reduceat(np.asarray(flat[d], np.float64) * w, starts) / wsum
            return out
    if "image_mask" in cols:
        masks = np.asarray(ps["image_mask"].data[:], dtype=np.float64)
        grids = np.meshgrid(*[np.arange(s) for s in masks.shape[1:]], indexing="ij")
        tot = masks.reshape(len(masks), -1).sum(axis=1)
        out = np.zeros((len(masks), 3))
        for j, g in enumerate(grids[:3]):
            out[:, j] = (masks * g).reshape(len(masks), -1).sum(axis=1) / tot
        return out
    raise ImportError_(
        f"{what}: the plane segmentation has no voxel_mask, pixel_mask or image_mask"
    )


def _times(ts, n: int) -> np.ndarray:
    if ts.timestamps is not None:
        return np.asarray(ts.timestamps[:], dtype=np.float64)
    if ts.rate:
        return float(ts.starting_time or 0.0) + np.arange(n) / float(ts.rate)
    raise ImportError_(f"TimeSeries {ts.name!r} has neither timestamps nor a rate")


def _pick_series(nwb: NWBFile, src: Path, series: str | None, report: ImportReport):
    """The RoiResponseSeries to import: ``--series``, else the one inside ``DfOverF``."""
    from pynwb.ophys import RoiResponseSeries

    all_rrs = _objects(nwb, RoiResponseSeries)
    if not all_rrs:
        raise ImportError_(f"{src}: no RoiResponseSeries (ΔF/F) in this NWB file")
    if series is not None:
        cand = [s for s in all_rrs if s.name == series]
        if not cand:
            raise ImportError_(
                f"{src}: no RoiResponseSeries named {series!r}; found {[s.name for s in all_rrs]}"
            )
    else:
        cand = [s for s in all_rrs if type(s.parent).__name__ == "DfOverF"] or all_rrs
        if len(cand) > 1:
            report.warn(f"several ΔF/F series {[s.name for s in cand]}; using {cand[0].name!r}")
    return cand[0]


def _voxel_scale(ps, voxel_size_um: str | None, report: ImportReport) -> np.ndarray:
    """(3,) µm per mask unit: ``--voxel-size-um``, else the imaging plane's grid_spacing."""
    if voxel_size_um:
        try:
            scale = np.array([float(v) for v in voxel_size_um.split(",")])
        except ValueError:
            scale = np.zeros(0)
        if scale.shape != (3,):
            raise ImportError_(f"--voxel-size-um: expected 'x,y,z', found {voxel_size_um!r}")
        return scale
    plane = ps.imaging_plane  # pynwb ImagingPlane: unset optional fields read as None
    spacing = plane.grid_spacing
    if spacing is None:
        report.warn("no grid_spacing: ROI centroids in mask units; pass --voxel-size-um")
        return np.ones(3)
    scale = np.ones(3)
    sp = np.asarray(spacing, dtype=np.float64).reshape(-1)
    scale[: len(sp)] = sp[:3]
    unit = plane.grid_spacing_unit
    if unit and not str(unit).lower().startswith(("micro", "um", "µm")):
        report.warn(f"grid_spacing unit is {unit!r}; pass --voxel-size-um in µm")
    report.add(f"ROI centroids scaled by grid_spacing {scale.tolist()} µm")
    return scale


@dataclass
class _Frames:
    """The imaging frames' time axis: ``times`` (T,) s and the frame rate."""

    times: np.ndarray
    rate: float

    @property
    def n(self) -> int:
        return len(self.times)


def _read_rois(
    src: Path, rrs, voxel_size_um: str | None, report: ImportReport
) -> tuple[np.ndarray, np.ndarray, np.ndarray, _Frames]:
    """``(ΔF/F (T, n), imaging µm (n, 3), ROI indices (n,), frames)``; NaN/inf ROIs dropped."""
    data = np.asarray(rrs.data[()], dtype=np.float32)
    if data.ndim == 1:
        data = data[:, None]
    T, n = data.shape
    frame_t = _times(rrs, T)
    rate = float(rrs.rate) if rrs.rate else float(1.0 / np.median(np.diff(frame_t)))
    ps = rrs.rois.table
    roi_idx = np.asarray(rrs.rois.data[:], dtype=np.int64)
    if len(roi_idx) != n:
        raise ImportError_(
            f"{src}:{rrs.name}: {n} columns but {len(roi_idx)} ROIs in its rois region"
        )
    cen = _centroids(ps, f"{src}:{ps.name}")[roi_idx]
    imaging = cen * _voxel_scale(ps, voxel_size_um, report)
    finite = np.all(np.isfinite(data), axis=0)
    if not finite.all():
        report.warn(f"dropped {int((~finite).sum())} ROIs with NaN/inf ΔF/F")
        data = np.ascontiguousarray(data[:, finite])
        imaging = imaging[finite]
        roi_idx = roi_idx[finite]
    return data, imaging, roi_idx, _Frames(frame_t, rate)


def _read_behavior(
    nwb: NWBFile, src: Path, behavior: str, frames: _Frames, report: ImportReport
) -> tuple[np.ndarray, list[str], list[str]]:
    """``(behaviour (T, K), names, units)``: the named TimeSeries averaged per imaging frame."""
    from pynwb import TimeSeries
    from pynwb.ophys import RoiResponseSeries

    ts_by_name = {
        o.name: o for o in _objects(nwb, TimeSeries) if not isinstance(o, RoiResponseSeries)
    }
    chans, names, units = [], [], []
    for nm in [b.strip() for b in behavior.split(",") if b.strip()]:
        if nm not in ts_by_name:
            raise ImportError_(
                f"{src}: no TimeSeries named {nm!r} for --behavior; available: "
                f"{sorted(ts_by_name)[:15]}"
            )
        ts = ts_by_name[nm]
        vals = np.asarray(ts.data[()], dtype=np.float64)
        if vals.ndim == 1:
            vals = vals[:, None]
        t = _times(ts, len(vals))
        fidx = np.floor((t - frames.times[0]) * frames.rate + 1e-9).astype(np.int64)
        inside = (fidx >= 0) & (fidx < frames.n)
        if (~inside).any():
            report.add(f"{nm}: {int((~inside).sum())} samples outside the imaging period ignored")
        if not inside.any():
            raise ImportError_(f"{src}: TimeSeries {nm!r} does not overlap the imaging period")
        chans.append(
            average_per_frame(
                vals[inside], fidx[inside], frames.n, what=f"behaviour {nm}", report=report
            )
        )
        names += [nm] if vals.shape[1] == 1 else [f"{nm}_{j}" for j in range(vals.shape[1])]
        units += [str(ts.unit or "")] * vals.shape[1]
    return np.concatenate(chans, axis=1), names, units


def _read_epochs(
    nwb: NWBFile, src: Path, epochs: str, name_column: str | None, frames: _Frames,
    report: ImportReport,
) -> list[Epoch]:
    """The TimeIntervals table ``epochs`` converted to frame epochs (sorted, non-overlapping)."""
    from pynwb.epoch import TimeIntervals

    tables = {o.name: o for o in _objects(nwb, TimeIntervals)}
    if epochs not in tables:
        raise ImportError_(
            f"{src}: no TimeIntervals table named {epochs!r}; available: {sorted(tables)}"
        )
    df = tables[epochs].to_dataframe()
    col = name_column or next((c for c in NAME_COLUMNS if c in df.columns), None)
    if col is None and "tags" in df.columns:
        col = "tags"
    if col is None or col not in df.columns:
        raise ImportError_(
            f"{src}:{epochs}: no name column (tried {', '.join(NAME_COLUMNS)}); pass "
            f"--epoch-name-column, columns: {list(df.columns)}"
        )
    T = frames.n
    a = np.searchsorted(frames.times, df["start_time"].to_numpy(np.float64), "left")
    b = np.searchsorted(frames.times, df["stop_time"].to_numpy(np.float64), "left")
    eps: list[Epoch] = []
    for nm, s, e in zip(df[col], a, b, strict=True):
        label = ",".join(map(str, nm)) if isinstance(nm, (list, tuple, np.ndarray)) else str(nm)
        s, e = int(min(s, T)), int(min(e, T))
        if e > s:
            eps.append(Epoch(label, s, e))
    eps.sort(key=lambda ep: ep.start)
    for x, y in zip(eps, eps[1:], strict=False):
        if y.start < x.stop:
            raise ImportError_(
                f"{src}:{epochs}: intervals {x.name!r} and {y.name!r} overlap once "
                "converted to frames; choose a table of non-overlapping intervals"
            )
    empty = len(df) - len(eps)
    report.add(
        f"epochs: {len(eps)} intervals from {epochs!r}"
        + (f" ({empty} shorter than a frame dropped)" if empty else "")
    )
    return eps


@register_importer(
    "nwb", "NWB file (pynwb): RoiResponseSeries, ROI masks, behaviour, intervals", add_arguments
)
def import_nwb(
    src: Path,
    *,
    behavior: str,
    series: str | None = None,
    epochs: str | None = None,
    epoch_name_column: str | None = None,
    voxel_size_um: str | None = None,
    placement: Placement | None = None,
    fish_id: str | None = None,
) -> ImportResult:
    """Build a Recording from an NWB file; see the module docstring.

    Parameters
    ----------
    src
        The ``.nwb`` file.
    behavior, series, epochs, epoch_name_column, voxel_size_um, fish_id
        The command-line options of the same names (:func:`add_arguments`).
    placement
        Where the positions go: :class:`~decoding.importers.base.Placement`.

    Returns
    -------
    ImportResult
        The recording (the ΔF/F series; behaviour averaged per imaging frame) and the report.
    """
    try:
        from pynwb import NWBHDF5IO
    except ModuleNotFoundError as exc:  # pragma: no cover - pynwb is in requirements.txt
        raise ImportError_("the nwb importer needs pynwb: pip install pynwb") from exc
    src, report = Path(src), ImportReport()
    try:
        io = NWBHDF5IO(str(src), "r", load_namespaces=True)
        nwb = io.read()
    except Exception as exc:
        raise ImportError_(f"{src}: not a readable NWB file ({exc})") from exc
    try:
        rrs = _pick_series(nwb, src, series, report)
        data, imaging, roi_idx, frames = _read_rois(src, rrs, voxel_size_um, report)
        beh, names, units = _read_behavior(nwb, src, behavior, frames, report)
        traces = Traces(
            activity=data, behavior=beh, behavior_names=names, behavior_units=units,
            epochs=_read_epochs(nwb, src, epochs, epoch_name_column, frames, report)
            if epochs is not None else [],
            imaging_um=imaging, neuron_ids=roi_idx, frame_rate_hz=frames.rate,
        )
        return placed_result(
            "nwb", src, traces, placement, report,
            fish_id=fish_id or str(nwb.identifier or src.stem), source=f"nwb:{src}",
            summary=[f"{frames.n} frames x {data.shape[1]:,} ROIs at {frames.rate:g} Hz from "
                     f"{rrs.name!r}"],
        )
    finally:
        io.close()
