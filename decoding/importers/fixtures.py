"""Writers of small synthetic datasets in each lab format, following the real tools' conventions.

Used by the tests and ``bench/bench_import.py``; they never touch the network. Each writer returns a
dict with what an importer should recover (shapes, per-frame behaviour, epochs...).

- NLP4Neuro: suite2p ``F.npy``/``stat.npy`` (numpy object array of dicts), ``tail_df.h5`` written by
  pandas ``to_hdf`` (HDFStore fixed format, key ``tail``, pickled ``t_dt`` time objects),
  ``stimulus_df.tab`` as a tab-separated pandas CSV with its index.
- suite2p: ``suite2p/plane<k>/`` with ``F``, ``Fneu``, ``spks``, ``iscell``, ``stat``, ``ops``.
- Chen 2018: ``TimeSeries.h5`` (h5py: ``CellResp`` (T, n), ``absIX`` (1, n) 1-based) and
  ``data_full.mat`` (MATLAB v5 via ``scipy.io.savemat``, struct ``data``).
- Z-Brain: ``MaskDatabase.mat`` in MATLAB v7.3 layout (HDF5 with a 512-byte MATLAB userblock,
  sparse ``MaskDatabase`` group with ``data``/``ir``/``jc``, cell ``MaskDatabaseNames`` of
  references to uint16 strings) written with h5py.
- BrainGlobe: ``annotation.tiff`` (tifffile), ``structures.json``, ``metadata.json``.
- NWB: written with pynwb (see :func:`write_nwb`).
"""

from __future__ import annotations

import datetime
import json
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

if TYPE_CHECKING:
    from pynwb import NWBFile
    from pynwb.ophys import ImageSegmentation, ImagingPlane, PlaneSegmentation

__all__ = [
    "write_nlp4neuro_fish",
    "write_suite2p",
    "write_chen2018",
    "write_zbrain_maskdb",
    "write_brainglobe_atlas",
    "write_nwb",
    "STIM_SEQUENCE",
]

STIM_SEQUENCE = ("forward", "left", "right", "backward", "blank")


def _traces(rng: np.random.Generator, n: int, T: int) -> np.ndarray:
    """(n, T) float32 positive fluorescence: baseline + sparse calcium transients + noise."""
    base = rng.uniform(50, 300, size=(n, 1)).astype(np.float32)
    F = rng.standard_normal((n, T), dtype=np.float32)
    F *= 0.05 * base
    F += base
    # a few transients per neuron: exponential decay, cheap to add in place
    n_ev = max(1, T // 300)
    kernel = np.exp(-np.arange(6) / 2.0).astype(np.float32)
    for _ in range(n_ev):
        t0 = rng.integers(0, max(1, T - 6), size=n)
        amp = rng.uniform(0.2, 1.0, size=n).astype(np.float32) * base[:, 0]
        for j, kv in enumerate(kernel):
            F[np.arange(n), t0 + j] += amp * kv
    return F


def _stat(rng: np.random.Generator, n: int, Ly: int = 1024, Lx: int = 1024) -> np.ndarray:
    """suite2p stat.npy: 1-D object array of dicts with ypix/xpix/lam/med/npix/radius..."""
    stat = np.empty(n, dtype=object)
    cy = rng.uniform(10, Ly - 10, size=n)
    cx = rng.uniform(10, Lx - 10, size=n)
    for i in range(n):
        yy, xx = np.meshgrid(np.arange(-2, 3), np.arange(-2, 3), indexing="ij")
        ypix = (int(cy[i]) + yy.ravel()).astype(np.int32)
        xpix = (int(cx[i]) + xx.ravel()).astype(np.int32)
        stat[i] = {
            "ypix": ypix,
            "xpix": xpix,
            "lam": np.ones(ypix.size, np.float32) / ypix.size,
            "med": [int(np.median(ypix)), int(np.median(xpix))],
            "npix": int(ypix.size),
            "radius": 2.5,
            "compact": 1.0,
            "footprint": 1.0,
            "skew": 0.5,
            "std": 1.0,
        }
    return stat


def _write_tail_df(path: Path, thetas: np.ndarray, t: np.ndarray, frame: np.ndarray) -> None:
    """A pandas HDFStore ``tail_df.h5`` (key ``tail``): tail_sum, theta_NN, t, t_dt, frame."""
    import pandas as pd

    df = pd.DataFrame({"tail_sum": thetas.sum(axis=1)})
    for j in range(thetas.shape[1]):
        df[f"theta_{j:02d}"] = thetas[:, j]
    df["t"] = t
    start = datetime.datetime(2021, 3, 4, 12, 0, 0)
    # python time objects, pickled by PyTables like the real files (a few distinct values
    # keep the fixture fast; the importer never reads this column)
    if len(t) < 20000:
        df["t_dt"] = [(start + datetime.timedelta(seconds=float(s))).time() for s in t]
    else:
        df["t_dt"] = [start.time()] * len(t)
    df["frame"] = frame
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        df.to_hdf(path, key="tail", mode="w")


def _write_stimulus_tab(path: Path, names: list[str], onsets: list[int]) -> None:
    """A Dataverse-style ``stimulus_df.tab``: tab-separated, with the pandas index."""
    import pandas as pd

    stim = pd.DataFrame(
        {
            "stim_name": names,
            "velocity": [0.02] * len(onsets),
            "time": [f"12:{i // 60:02d}:{i % 60:02d}.000000" for i in onsets],
            "frame": onsets,
        }
    )
    stim.to_csv(path, sep="\t")


def write_nlp4neuro_fish(
    folder: str | Path,
    *,
    n_neurons: int = 600,
    n_frames: int = 120,
    n_planes: int = 6,
    frame_rate_hz: float = 1.1,
    tail_hz: float = 200.0,
    n_thetas: int = 8,
    with_stimulus: bool = True,
    extra_plane: bool = False,
    seed: int = 0,
) -> dict:
    """Write ``folder/raw_data_f9/plane_k/`` like the NLP4Neuro Dataverse; returns the truth.

    Parameters
    ----------
    folder
        Where ``raw_data_f9/`` goes.
    n_neurons, n_frames, n_planes, frame_rate_hz
        ROIs over all planes, imaging frames, planes ``plane_k``, imaging rate (Hz).
    tail_hz, n_thetas
        Tail sampling rate (Hz) and ``theta_NN`` columns.
    with_stimulus
        Write ``stimulus_df.tab``.
    extra_plane
        Add a plane outside the study's 0-5.
    seed
        Random seed.

    Returns
    -------
    dict
        ``root``, ``n_frames``, ``n_neurons``, ``per_plane``, ``tail_frame_mean`` (T, n_thetas),
        ``onsets``, ``names``, ``frame_rate_hz``, ``n_samples``.
    """
    rng = np.random.default_rng(seed)
    root = Path(folder) / "raw_data_f9"
    T = n_frames
    per_plane = np.full(n_planes, n_neurons // n_planes)
    per_plane[: n_neurons % n_planes] += 1
    n_samples = int(T / frame_rate_hz * tail_hz)
    t = (np.arange(n_samples) / tail_hz).astype(np.float32)
    frame = np.minimum((t * frame_rate_hz).astype(np.int64), T - 1)
    thetas = (
        0.3
        * np.sin(2 * np.pi * 0.5 * t[:, None] + np.arange(n_thetas)[None, :] * 0.2)
        * (1 + np.arange(n_thetas)[None, :] * 0.1)
    ).astype(np.float32)
    tail_frame_mean = np.zeros((T, n_thetas), np.float64)
    np.add.at(tail_frame_mean, frame, thetas.astype(np.float64))
    tail_frame_mean /= np.bincount(frame, minlength=T)[:, None]
    onsets = list(range(3, T - 5, max(4, T // 12)))
    names = [STIM_SEQUENCE[i % len(STIM_SEQUENCE)] for i in range(len(onsets))]
    planes = list(range(n_planes + (1 if extra_plane else 0)))
    for k in planes:
        d = root / f"plane_{k}"
        d.mkdir(parents=True, exist_ok=True)
        n_k = int(per_plane[k]) if k < n_planes else 50
        np.save(d / "F.npy", _traces(rng, n_k, T))
        np.save(d / "stat.npy", _stat(rng, n_k), allow_pickle=True)
        _write_tail_df(d / "tail_df.h5", thetas, t, frame)
        if with_stimulus:
            _write_stimulus_tab(d / "stimulus_df.tab", names, onsets)
    return {
        "root": root,
        "n_frames": T,
        "n_neurons": int(per_plane.sum()),
        "per_plane": per_plane.tolist(),
        "tail_frame_mean": tail_frame_mean.astype(np.float32),
        "onsets": onsets,
        "names": names,
        "frame_rate_hz": frame_rate_hz,
        "n_samples": n_samples,
    }


def write_suite2p(
    folder: str | Path,
    *,
    n_rois: int = 200,
    n_frames: int = 100,
    n_planes: int = 2,
    fs: float = 2.5,
    seed: int = 0,
) -> dict:
    """Write ``folder/suite2p/plane<k>/`` plus a per-frame behaviour CSV ``folder/behavior.csv``.

    Parameters
    ----------
    folder
        Where ``suite2p/`` and ``behavior.csv`` go.
    n_rois
        ROIs per plane.
    n_frames
        Imaging frames.
    n_planes
        Planes.
    fs
        ``ops['fs']``, Hz.
    seed
        Random seed.

    Returns
    -------
    dict
        ``root``, ``n_cells`` (iscell == 1), ``n_rois``, ``behavior`` (the CSV as a DataFrame).
    """
    import pandas as pd

    rng = np.random.default_rng(seed)
    root = Path(folder) / "suite2p"
    n_cells = 0
    for k in range(n_planes):
        d = root / f"plane{k}"
        d.mkdir(parents=True, exist_ok=True)
        F = _traces(rng, n_rois, n_frames)
        Fneu = (0.3 * F.mean(axis=1, keepdims=True) + rng.standard_normal(F.shape)).astype(
            np.float32
        )
        iscell = np.zeros((n_rois, 2), np.float64)
        iscell[:, 1] = rng.uniform(0, 1, n_rois)
        iscell[:, 0] = (iscell[:, 1] > 0.3).astype(float)
        n_cells += int(iscell[:, 0].sum())
        np.save(d / "F.npy", F)
        np.save(d / "Fneu.npy", Fneu)
        np.save(d / "spks.npy", np.maximum(F - F.mean(axis=1, keepdims=True), 0))
        np.save(d / "iscell.npy", iscell)
        np.save(d / "stat.npy", _stat(rng, n_rois, 512, 512), allow_pickle=True)
        ops = {"fs": fs, "nplanes": n_planes, "Ly": 512, "Lx": 512, "nframes": n_frames}
        np.save(d / "ops.npy", ops, allow_pickle=True)
    beh = pd.DataFrame({"swim_left": rng.random(n_frames), "swim_right": rng.random(n_frames)})
    beh.to_csv(Path(folder) / "behavior.csv", index=False)
    return {"root": root, "n_cells": n_cells, "n_rois": n_rois * n_planes, "behavior": beh}


def write_chen2018(
    folder: str | Path, *, n_cells: int = 300, n_frames: int = 200, seed: int = 0
) -> dict:
    """Write ``folder/subject_1/{TimeSeries.h5, data_full.mat}`` like Chen et al. 2018.

    Parameters
    ----------
    folder
        Where ``subject_1/`` goes.
    n_cells
        Cells in CellResp.
    n_frames
        Frames.
    seed
        Random seed.

    Returns
    -------
    dict
        ``root``, ``resp``, ``absIX``, ``xyz_norm``, ``codes``, ``behavior``.
    """
    from scipy.io import savemat

    rng = np.random.default_rng(seed)
    d = Path(folder) / "subject_1"
    d.mkdir(parents=True, exist_ok=True)
    n_full = n_cells + 20
    absIX = np.sort(rng.choice(n_full, n_cells, replace=False)) + 1  # 1-based
    resp = rng.standard_normal((n_frames, n_cells)).astype(np.float32)
    with h5py.File(d / "TimeSeries.h5", "w") as f:
        f.create_dataset("CellResp", data=resp)
        f.create_dataset("CellRespZ", data=resp)
        f.create_dataset("CellRespAvr", data=resp[:50])
        f.create_dataset("absIX", data=absIX[None, :].astype(np.float64))
    xyz = np.column_stack(
        [
            rng.uniform(200, 1200, n_full),  # row (rostro-caudal), 1-based Z-Brain voxels
            rng.uniform(100, 520, n_full),  # col (left-right)
            rng.uniform(10, 130, n_full),  # z
        ]
    )
    codes = np.repeat([10, 11, 12, 9, 3], int(np.ceil(n_frames / 5)))[:n_frames]
    behavior = rng.random((5, n_frames))
    data = {
        "fpsec": 1.97,
        "CellXYZ": xyz * 1.1,
        "CellXYZ_norm": xyz,
        "stim_full": codes.astype(np.float64),
        "Behavior_full": behavior,
        "numcell_full": float(n_full),
        "IX_inval_anat": np.array([[absIX[0]]], dtype=np.float64),
        "periods": np.array([[n_frames / 5]]),
    }
    savemat(d / "data_full.mat", {"data": data}, do_compression=True)
    return {
        "root": d,
        "resp": resp,
        "absIX": absIX,
        "xyz_norm": xyz,
        "codes": codes,
        "behavior": behavior,
    }


def _mat73_userblock(path: Path) -> None:
    header = (
        b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 "
        b"HDF5 schema 1.00 ."
    )
    with open(path, "r+b") as fh:
        fh.write(header.ljust(116, b" ") + b"\x00" * 8 + b"\x00\x02" + b"IM")


def _default_zbrain_masks(shape: tuple[int, int, int]) -> dict[str, np.ndarray]:
    """Four overlapping bool masks (height, width, zs): see :func:`write_zbrain_maskdb`."""
    height = shape[0]
    m1 = np.zeros(shape, bool)
    m1[height // 2 :, :, :] = True
    m2 = np.zeros_like(m1)
    m2[height // 2 : height // 2 + 10, 5:25, 2:8] = True
    m3 = np.zeros_like(m1)
    m3[5:12, 2:10, 0:4] = True
    m4 = np.zeros_like(m1)
    m4[0:5, 0:30, 5:10] = True
    return {
        "Rhombencephalon - ": m1,
        "Rhombencephalon - Rhombomere 1": m2,
        "Diencephalon - Habenula": m3,
        "Ganglia - Eyes": m4,
    }


def write_zbrain_maskdb(
    path: str | Path,
    *,
    height: int = 60,
    width: int = 30,
    zs: int = 10,
    masks: dict[str, np.ndarray] | None = None,
) -> dict:
    """Write a MaskDatabase.mat in the MATLAB v7.3 layout.

    ``masks``: name -> bool array (height, width, zs), or a 1-D array of 0-based linear voxel
    indices ``row + col*height + z*height*width`` (for full-size volumes).

    Default masks: a big "Rhombencephalon - " region over the caudal half, a smaller overlapping
    "Rhombencephalon - Rhombomere 1" inside it, a "Diencephalon - Habenula" on the left, and an
    "Eyes" mask (Z-Brain's mask 78 is the eyes; here it is just another region).

    Parameters
    ----------
    path
        The ``.mat`` file.
    height, width, zs
        The volume, voxels.
    masks
        Name -> mask (see above); default: four overlapping masks.

    Returns
    -------
    dict
        ``path``, ``names``, ``masks``, ``shape``.
    """
    path = Path(path)
    if masks is None:
        masks = _default_zbrain_masks((height, width, zs))
    names = list(masks)
    n_vox = height * width * zs
    ir_parts, jc = [], [0]
    for name in names:
        m = np.asarray(masks[name])
        if m.ndim == 1:
            lin = np.sort(m.astype(np.int64))
        else:
            r, c, z = np.nonzero(m)  # (row=height, col=width, z)
            lin = np.sort(r + c * height + z * height * width)
        ir_parts.append(lin)
        jc.append(jc[-1] + lin.size)
    ir = np.concatenate(ir_parts).astype(np.uint64)
    with h5py.File(path, "w", userblock_size=512) as f:
        g = f.create_group("MaskDatabase")
        g.attrs["MATLAB_class"] = np.bytes_("logical")
        g.attrs["MATLAB_sparse"] = np.uint64(n_vox)
        g.create_dataset("data", data=np.ones(ir.size, np.uint8))
        g.create_dataset("ir", data=ir)
        g.create_dataset("jc", data=np.array(jc, np.uint64))
        refs = f.create_group("#refs#")
        ref_list = []
        for i, name in enumerate(names):
            codes = np.frombuffer(name.encode("utf-16-le"), dtype=np.uint16).reshape(-1, 1)
            ds = refs.create_dataset(f"n{i}", data=codes)
            ds.attrs["MATLAB_class"] = np.bytes_("char")
            ds.attrs["MATLAB_int_decode"] = np.int32(2)
            ref_list.append(ds.ref)
        cell = f.create_dataset(
            "MaskDatabaseNames", data=np.array(ref_list, dtype=h5py.ref_dtype).reshape(-1, 1)
        )
        cell.attrs["MATLAB_class"] = np.bytes_("cell")
        for key, val in (("height", height), ("width", width), ("Zs", zs)):
            ds = f.create_dataset(key, data=np.array([[float(val)]]))
            ds.attrs["MATLAB_class"] = np.bytes_("double")
    _mat73_userblock(path)
    return {"path": path, "names": names, "masks": masks, "shape": (height, width, zs)}


def write_brainglobe_atlas(
    folder: str | Path, *, shape_asr: tuple[int, int, int] = (40, 20, 30)
) -> dict:
    """Write a tiny BrainGlobe atlas folder (orientation "asr", 2 µm voxels).

    Parameters
    ----------
    folder
        The atlas folder.
    shape_asr
        Annotation shape (a, s, r).

    Returns
    -------
    dict
        ``path`` and ``annotation_asr`` (the label stack as written).
    """
    import tifffile

    d = Path(folder)
    (d / "meshes").mkdir(parents=True, exist_ok=True)
    A, S, R = shape_asr
    ann = np.zeros(shape_asr, np.uint32)
    ann[2:15, 3:15, 3:27] = 10  # forebrain-ish, anterior
    ann[20:38, 5:18, 2:14] = 20  # posterior, on the "right" half (small axis-2 index = right)
    ann[20:38, 5:18, 16:28] = 21  # posterior, left half
    tifffile.imwrite(d / "annotation.tiff", ann)
    tifffile.imwrite(d / "reference.tiff", (ann > 0).astype(np.uint16) * 100)
    hemi = np.zeros(shape_asr, np.uint8)
    hemi[:, :, : R // 2] = 2
    hemi[:, :, R // 2 :] = 1
    tifffile.imwrite(d / "hemispheres.tiff", hemi)
    rows = [  # acronym, id, name, structure_id_path, rgb
        ("root", 1, "root", [1], [255, 255, 255]),
        ("brain", 2, "brain", [1, 2], [200, 200, 200]),
        ("FB", 3, "forebrain", [1, 2, 3], [0, 128, 0]),
        ("Tel", 10, "telencephalon", [1, 2, 3, 10], [0, 200, 0]),
        ("HB", 4, "hindbrain", [1, 2, 4], [200, 0, 0]),
        ("r3R", 20, "rhombomere 3 right", [1, 2, 4, 20], [220, 20, 20]),
        ("r3L", 21, "rhombomere 3 left", [1, 2, 4, 21], [220, 60, 60]),
    ]
    structures = [
        {"acronym": a, "id": i, "name": n, "structure_id_path": p, "rgb_triplet": c}
        for a, i, n, p, c in rows
    ]
    (d / "structures.json").write_text(json.dumps(structures))
    meta = {
        "name": "test_zfish",
        "citation": "none",
        "atlas_link": "",
        "species": "Danio rerio",
        "symmetric": False,
        "resolution": [2.0, 2.0, 2.0],
        "orientation": "asr",
        "version": "1.0",
        "shape": list(shape_asr),
        "transform_to_bg": [[1, 0, 0, 0], [0, 1, 0, 0], [0, 0, 1, 0], [0, 0, 0, 1]],
        "additional_references": [],
    }
    (d / "metadata.json").write_text(json.dumps(meta))
    (d / "meshes" / "10.obj").write_text("v 0 0 0\nv 1 0 0\nv 0 1 0\nf 1 2 3\n")
    return {"path": d, "annotation_asr": ann}


def _nwb_volume(nwb: NWBFile, rate: float) -> ImagingPlane:
    """The light-sheet device, channel and imaging plane (a volume, grid spacing in µm)."""
    from pynwb.ophys import OpticalChannel

    device = nwb.create_device(name="lightsheet")
    chan = OpticalChannel(name="green", description="GCaMP", emission_lambda=510.0)
    return nwb.create_imaging_plane(
        name="volume",
        optical_channel=chan,
        description="whole brain",
        device=device,
        excitation_lambda=488.0,
        imaging_rate=rate,
        indicator="GCaMP6f",
        location="brain",
        grid_spacing=[0.406, 0.406, 5.0],
        grid_spacing_unit="micrometers",
    )


def _nwb_segmentation(
    plane: ImagingPlane, rng: np.random.Generator, n_rois: int
) -> tuple[ImageSegmentation, PlaneSegmentation, np.ndarray]:
    """A volume segmentation of ``n_rois`` 3x3-voxel ROIs; returns it, its table and the centres."""
    from pynwb.ophys import ImageSegmentation

    seg = ImageSegmentation()
    ps = seg.create_plane_segmentation(
        name="NeuronVolumeSegmentation", description="neurons", imaging_plane=plane
    )
    # NWB voxel_mask coordinates are unsigned integers
    centres = np.column_stack(
        [rng.integers(50, 500, n_rois), rng.integers(50, 900, n_rois), rng.integers(2, 30, n_rois)]
    ).astype(np.float64)
    for c in centres:
        vox = [
            (int(c[0] + dx), int(c[1] + dy), int(c[2]), 1.0)
            for dx in (-1, 0, 1)
            for dy in (-1, 0, 1)
        ]
        ps.add_roi(voxel_mask=vox)
    return seg, ps, centres


def _nwb_intervals(nwb: NWBFile, duration_s: float) -> tuple[np.ndarray, list[str]]:
    """Four equal ``StimulusIntervals`` rows with a ``stimulus_name``; returns edges and names."""
    from pynwb.epoch import TimeIntervals

    ti = TimeIntervals(name="StimulusIntervals", description="stimulus epochs")
    ti.add_column(name="stimulus_name", description="name")
    edges = np.linspace(0, duration_s, 5)
    stim_names = ["forward", "left", "right", "rest"]
    for a, b, nm in zip(edges[:-1], edges[1:], stim_names, strict=True):
        ti.add_row(start_time=float(a), stop_time=float(b), stimulus_name=nm)
    nwb.add_time_intervals(ti)
    return edges, stim_names


def write_nwb(
    path: str | Path,
    *,
    n_rois: int = 50,
    n_frames: int = 80,
    rate: float = 2.0,
    swim_hz: float = 20.0,
    seed: int = 0,
) -> dict:
    """Write an NWB file like DANDI:000350: ΔF/F RoiResponseSeries over a volume segmentation.

    ``processing/ophys/DfOverF/NeuronDfOverF`` (T, n_rois) at ``rate`` Hz,
    ``processing/ophys/ImageSegmentation/NeuronVolumeSegmentation`` with ``voxel_mask``,
    ``acquisition/SwimSignals`` (n, 2) at ``swim_hz`` and a ``StimulusIntervals`` TimeIntervals
    table with a ``stimulus_name`` column.

    Parameters
    ----------
    path
        The ``.nwb`` file to write.
    n_rois, n_frames, rate
        ROIs, imaging frames and frame rate (Hz) of the ΔF/F series.
    swim_hz
        Sampling rate of ``SwimSignals``.
    seed
        Random seed.

    Returns
    -------
    dict
        ``path``, ``data`` (T, n_rois), ``centres_vox`` (n_rois, 3), ``swim`` (n, 2),
        ``epoch_edges_s`` (5,), ``stim_names``.
    """
    from pynwb import NWBHDF5IO, NWBFile, TimeSeries
    from pynwb.ophys import DfOverF, RoiResponseSeries

    rng = np.random.default_rng(seed)
    nwb = NWBFile(
        session_description="synthetic light-sheet fish",
        identifier="fixture",
        session_start_time=datetime.datetime(2020, 1, 1, tzinfo=datetime.timezone.utc),
    )
    seg, ps, centres = _nwb_segmentation(_nwb_volume(nwb, rate), rng, n_rois)
    ophys = nwb.create_processing_module(name="ophys", description="optical physiology")
    ophys.add(seg)
    region = ps.create_roi_table_region(region=list(range(n_rois)), description="all")
    data = rng.standard_normal((n_frames, n_rois)).astype(np.float32)
    rrs = RoiResponseSeries(
        name="NeuronDfOverF", data=data, rois=region, unit="n.a.", rate=rate, starting_time=0.0
    )
    ophys.add(DfOverF(roi_response_series=[rrs], name="DfOverF"))
    swim = rng.random((int(n_frames / rate * swim_hz), 2)).astype(np.float32)
    nwb.add_acquisition(
        TimeSeries(name="SwimSignals", data=swim, unit="a.u.", rate=swim_hz, starting_time=0.0)
    )
    edges, stim_names = _nwb_intervals(nwb, n_frames / rate)
    with warnings.catch_warnings(), NWBHDF5IO(str(path), "w") as io:
        warnings.simplefilter("ignore")
        io.write(nwb)
    return {
        "path": Path(path),
        "data": data,
        "centres_vox": centres,
        "swim": swim,
        "epoch_edges_s": edges,
        "stim_names": stim_names,
    }
