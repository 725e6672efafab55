"""Chen et al. 2018 (Neuron) / FishExplorer: ``subject_N/TimeSeries.h5`` + ``data_full.mat``.

- ``CellResp`` (T, n_cells) from ``TimeSeries.h5`` (h5py); ``absIX`` (1-based) picks each cell's row
  of ``CellXYZ_norm`` in ``data_full.mat`` (struct ``data``; MATLAB v5 via scipy, v7.3 via h5py).
- Positions: ``CellXYZ_norm`` is ``[row (rostro-caudal), col (left-right), z]`` in 1-based Z-Brain
  voxels of 0.798 x 0.798 x 2 µm; atlas µm = (index - 0.5) * voxel, atlas ``"zbrain"``.
- Epochs: runs of ``stim_full`` codes, named from :data:`STIM_CODES`.
- Behaviour: fictive swimming from the motor nerves, not tail angles. ``Behavior_full`` (5, T) is
  mapped to the target ``swim_left``, ``swim_right``, ``swim_forward`` (a.u.; the left/right order
  follows the dataset's documentation and is flagged as uncertain), plus ``analog_1``,
  ``analog_2`` with ``--behavior-channels all``.

    python -m decoding import chen2018 subject_1 --out chen_s1.h5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import h5py
import numpy as np

from decoding.atlas_loaders import ZBRAIN_VOXEL_UM
from decoding.errors import ImportError_
from decoding.importers.base import (
    ImportReport,
    ImportResult,
    Placement,
    epochs_from_codes,
    outside_check,
    register_importer,
)
from decoding.recording import Recording

STIM_CODES: dict[int, str] = {
    0: "black",
    1: "phototaxis_right",
    2: "phototaxis_left",
    3: "white",
    4: "grey",
    5: "half_field_grey_5",
    6: "half_field_grey_6",
    7: "half_field_grey_7",
    8: "half_field_grey_8",
    9: "backward",
    10: "forward",
    11: "right",
    12: "left",
    13: "dot",
    14: "looming_left",
    15: "looming_right",
    16: "shock",
    21: "red_blue_right",
    22: "red_blue_left",
    23: "red_red",
}
SWIM_CHANNELS = ("swim_left", "swim_right", "swim_forward", "analog_1", "analog_2")


def add_arguments(p: argparse.ArgumentParser) -> None:
    """The Chen et al. 2018 importer's command-line options.

    Parameters
    ----------
    p
        The ``import chen2018`` sub-parser.
    """
    p.add_argument(
        "--behavior-channels",
        choices=("swim", "all"),
        default="swim",
        help="swim: left/right/forward swim power (default); all: plus the 2 analog channels",
    )
    p.add_argument(
        "--response",
        default="CellResp",
        help="dataset of TimeSeries.h5 to use as activity (default CellResp; or CellRespZ)",
    )
    p.add_argument(
        "--keep-invalid-anat",
        action="store_true",
        help="keep cells listed in IX_inval_anat (default: drop them)",
    )
    p.add_argument(
        "--trim-frames",
        action="store_true",
        help="crop to the shortest of activity / stim_full / Behavior_full instead of refusing",
    )
    p.add_argument(
        "--atlas-file", type=Path, default=None, help="Z-Brain atlas to look regions up in"
    )
    p.add_argument("--fish-id", default=None)


def _read_data_full(path: Path) -> dict[str, np.ndarray]:
    if not path.exists():
        raise ImportError_(f"{path}: missing data_full.mat (positions, stimulus, behaviour)")
    want = ("fpsec", "CellXYZ_norm", "stim_full", "Behavior_full", "IX_inval_anat", "numcell_full")
    if h5py.is_hdf5(path):  # MATLAB v7.3
        out = {}
        with h5py.File(path, "r") as f:
            g = f.get("data", f)
            for k in want:
                if k in g and isinstance(g[k], h5py.Dataset):
                    out[k] = np.asarray(g[k][()]).T  # MATLAB stores column-major
        return out
    from scipy.io import loadmat

    try:
        m = loadmat(path, squeeze_me=True, struct_as_record=False, variable_names=["data"])
    except Exception as exc:
        raise ImportError_(f"{path}: not a readable MATLAB file ({exc})") from exc
    if "data" not in m:
        raise ImportError_(f"{path}: expected a struct 'data', found variables {sorted(m)}")
    data = m["data"]
    fields = vars(data)  # scipy's mat_struct keeps the struct's fields as attributes
    return {k: np.asarray(fields[k]) for k in want if k in fields}


def _read_response(ts: Path, response: str, report: ImportReport) -> tuple[np.ndarray, np.ndarray]:
    """``(absIX (n_cells,), response (T, n_cells) float32)`` from TimeSeries.h5."""
    with h5py.File(ts, "r") as f:
        if response not in f:
            raise ImportError_(f"{ts}: no dataset {response!r}; datasets: {sorted(f)}")
        if "absIX" not in f:
            raise ImportError_(f"{ts}: no dataset 'absIX' (cell indices into CellXYZ_norm)")
        absIX = np.asarray(f["absIX"][()]).reshape(-1)
        ds = f[response]
        if ds.ndim != 2:
            raise ImportError_(f"{ts}:{response}: expected 2-D (T, n_cells), found {ds.shape}")
        n_cells = absIX.size
        if ds.shape[1] == n_cells:
            return absIX, np.asarray(ds[()], dtype=np.float32)
        if ds.shape[0] == n_cells:
            report.add(f"{response} stored as (n_cells, T): transposed")
            return absIX, np.ascontiguousarray(np.asarray(ds[()], dtype=np.float32).T)
        raise ImportError_(
            f"{ts}:{response}: shape {ds.shape} does not match absIX ({n_cells} cells)"
        )


def _common_frames(
    folder: Path, resp: np.ndarray, data: dict[str, np.ndarray], trim_frames: bool,
    report: ImportReport,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(response (T, n), stim_full (T,), Behavior_full (5, T))`` with one frame count."""
    stim = np.asarray(data["stim_full"]).reshape(-1)
    beh = np.asarray(data["Behavior_full"], dtype=np.float64)
    if beh.ndim != 2:
        raise ImportError_(f"data_full.mat: Behavior_full must be 2-D (5, T), found {beh.shape}")
    if beh.shape[0] != 5 and beh.shape[1] == 5:
        beh = beh.T
    lengths = {"activity": resp.shape[0], "stim_full": stim.size, "Behavior_full": beh.shape[1]}
    if len(set(lengths.values())) > 1:
        desc = ", ".join(f"{k} {v}" for k, v in lengths.items())
        if not trim_frames:
            raise ImportError_(
                f"{folder}: frame counts disagree ({desc}); pass --trim-frames to crop to the "
                "shortest"
            )
        T = min(lengths.values())
        resp, stim, beh = resp[:T], stim[:T], beh[:, :T]
        report.warn(f"frame counts disagreed ({desc}); cropped to {T}")
    return resp, stim, beh


def _kept_cells(
    folder: Path, ts: Path, data: dict[str, np.ndarray], absIX: np.ndarray, resp: np.ndarray,
    keep_invalid_anat: bool, report: ImportReport,
) -> tuple[np.ndarray, np.ndarray]:
    """``(keep (n_cells,) bool, positions (n_kept, 3) float32 atlas µm)``."""
    xyz = np.asarray(data["CellXYZ_norm"], dtype=np.float64)
    if xyz.ndim != 2 or xyz.shape[1] != 3:
        raise ImportError_(
            f"data_full.mat: CellXYZ_norm must be (n_cells_full, 3), found {xyz.shape}"
        )
    idx = absIX.astype(np.int64) - 1
    if idx.min() < 0 or idx.max() >= len(xyz):
        raise ImportError_(
            f"{ts}: absIX holds indices {int(idx.min()) + 1}..{int(idx.max()) + 1} but "
            f"CellXYZ_norm has {len(xyz)} rows (absIX is 1-based)"
        )
    keep = np.ones(absIX.size, bool)
    inval = data.get("IX_inval_anat")
    if inval is not None and np.asarray(inval).size and not keep_invalid_anat:
        bad = set((np.asarray(inval).reshape(-1).astype(np.int64) - 1).tolist())
        keep = np.array([i not in bad for i in idx])
        if (~keep).any():
            report.add(f"dropped {int((~keep).sum())} cells listed in IX_inval_anat")
    finite = np.all(np.isfinite(resp), axis=0)
    if not finite.all():
        report.warn(f"dropped {int((~finite).sum())} cells with NaN/inf responses")
        keep &= finite
    if not keep.any():
        raise ImportError_(f"{folder}: no cell left after filtering")
    sel = xyz[idx[keep]]
    vx, vy, vz = ZBRAIN_VOXEL_UM
    positions = np.column_stack(
        [(sel[:, 1] - 0.5) * vx, (sel[:, 0] - 0.5) * vy, (sel[:, 2] - 0.5) * vz]
    ).astype(np.float32)
    return keep, positions


def _regions(
    atlas_file: Path | None, positions: np.ndarray, max_outside: float, report: ImportReport
) -> tuple[str, np.ndarray | None]:
    """``(atlas name, regions or None)``: regions only when ``--atlas-file`` names the atlas."""
    if atlas_file is None:
        return "zbrain", None
    from decoding.atlas_loaders import load_atlas

    at = load_atlas(atlas_file)
    outside_check(
        at,
        positions,
        max_outside=max_outside,
        fix="check that --atlas-file is the Z-Brain atlas the cells were registered to",
        report=report,
    )
    regions = at.acronyms_of(positions)
    report.add(
        f"regions from {at.name}: {int((regions != 'outside').sum())} of {len(regions)} "
        "cells inside a region"
    )
    return at.name, regions


@register_importer(
    "chen2018",
    "Chen et al. 2018 / FishExplorer subject folder (TimeSeries.h5 + data_full.mat)",
    add_arguments,
)
def import_chen2018(
    src: Path,
    *,
    behavior_channels: str = "swim",
    response: str = "CellResp",
    keep_invalid_anat: bool = False,
    trim_frames: bool = False,
    fish_id: str | None = None,
    placement: Placement | None = None,
) -> ImportResult:
    """Build a Recording from a Chen et al. 2018 subject folder; see the module docstring.

    Parameters
    ----------
    src
        The subject folder (or a file in it).
    behavior_channels, response, keep_invalid_anat, trim_frames, fish_id
        The command-line options of the same names (:func:`add_arguments`).
    placement
        Only ``atlas_file`` (regions looked up there) and ``max_outside`` apply: the cells are
        already registered to Z-Brain.

    Returns
    -------
    ImportResult
        The recording (cells in Z-Brain µm, fictive swimming as behaviour) and the report.
    """
    report = ImportReport()
    folder = Path(src) if Path(src).is_dir() else Path(src).parent
    ts = folder / "TimeSeries.h5"
    if not ts.exists():
        raise ImportError_(f"{folder}: missing TimeSeries.h5 (CellResp, absIX)")
    data = _read_data_full(folder / "data_full.mat")
    for key in ("fpsec", "CellXYZ_norm", "stim_full", "Behavior_full"):
        if key not in data:
            raise ImportError_(
                f"{folder / 'data_full.mat'}: struct 'data' has no field {key!r} "
                f"(found {sorted(data)})"
            )
    absIX, resp = _read_response(ts, response, report)
    resp, stim, beh = _common_frames(folder, resp, data, trim_frames, report)
    keep, positions = _kept_cells(folder, ts, data, absIX, resp, keep_invalid_anat, report)
    if not keep.all():
        resp = np.ascontiguousarray(resp[:, keep])
    n_ch = 3 if behavior_channels == "swim" else 5
    behavior = beh[:n_ch].T.astype(np.float32)
    if not np.all(np.isfinite(behavior)):
        raise ImportError_("data_full.mat: Behavior_full contains NaN/inf")
    epochs = epochs_from_codes(stim, STIM_CODES, what="stimulus (stim_full)", report=report)
    rate = float(np.asarray(data["fpsec"]).reshape(-1)[0])
    placement = placement or Placement()
    atlas_name, regions = _regions(placement.atlas_file, positions, placement.max_outside, report)
    report.add(
        f"{resp.shape[0]} frames x {resp.shape[1]:,} cells at {rate:g} Hz ({response}); "
        f"behaviour = {', '.join(SWIM_CHANNELS[:n_ch])} (fictive swim power, a.u.)"
    )
    report.warn(
        "behaviour is fictive swimming from motor nerves, not tail angles; the left/right "
        "channel order of Behavior_full is as documented but unverified"
    )
    rec = Recording(
        resp,
        behavior,
        positions,
        frame_rate_hz=rate,
        behavior_names=list(SWIM_CHANNELS[:n_ch]),
        behavior_units=["a.u."] * n_ch,
        epochs=epochs,
        fish_id=fish_id or folder.name,
        atlas=atlas_name,
        source=f"chen2018:{folder}",
        neuron_ids=absIX.astype(np.int64)[keep],
        regions=regions,
        max_outside=placement.max_outside,
    )
    return ImportResult(rec, report, "chen2018", Path(src))
