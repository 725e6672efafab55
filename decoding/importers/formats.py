"""Readers for files lab pipelines write: suite2p planes, pandas ``tail_df.h5``, stimulus tables.

Each reader refuses with :class:`~decoding.errors.ImportError_` naming the file, what was expected
and what was found. Pickled numpy files (suite2p ``stat.npy``, ``ops.npy``) are only read from
folders the user named on the command line.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

import h5py
import numpy as np

from decoding.errors import ImportError_

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "find_planes",
    "load_npy",
    "roi_centres_px",
    "read_ops",
    "read_tail_df",
    "read_stimulus_table",
    "read_table_file",
    "NEURON_ID_PLANE_STRIDE",
    "plane_positions",
    "require_rois",
]

NEURON_ID_PLANE_STRIDE = 1_000_000
"""``neuron_ids`` of plane-wise data = plane * 1,000,000 + ROI index within the plane's F.npy."""

_PLANE_RE = re.compile(r"^plane_?(\d+)$")


def find_planes(folder: Path) -> dict[int, Path]:
    """``plane_k`` / ``planek`` subfolders of ``folder`` keyed by k (empty dict if none).

    Parameters
    ----------
    folder
        The folder to look in.

    Returns
    -------
    dict[int, Path]
        Plane number -> folder, sorted.
    """
    out: dict[int, Path] = {}
    if not folder.is_dir():
        return out
    for p in folder.iterdir():
        m = _PLANE_RE.match(p.name)
        if m and p.is_dir():
            out[int(m.group(1))] = p
    return dict(sorted(out.items()))


def load_npy(
    path: Path, *, allow_pickle: bool = False, what: str = "", mmap: bool = False
) -> np.ndarray:
    """``np.load`` with a clear error for a missing or unreadable file (``mmap``: memory-mapped).

    Parameters
    ----------
    path
        The ``.npy`` file.
    allow_pickle
        Allow object arrays (only for folders the user named).
    what
        What the file is, for the message.
    mmap
        Memory-map instead of reading.

    Returns
    -------
    np.ndarray
        The array (a memory map with ``mmap``).
    """
    if not path.exists():
        raise ImportError_(f"{path}: missing {what or path.name}")
    try:
        return np.load(path, allow_pickle=allow_pickle, mmap_mode="r" if mmap else None)
    except Exception as exc:  # numpy raises ValueError/OSError/UnpicklingError
        raise ImportError_(f"{path}: not a readable .npy file ({exc})") from exc


def roi_centres_px(stat_path: Path, n_rois: int) -> np.ndarray:
    """(n_rois, 2) ROI centres ``[x, y]`` in pixels from suite2p ``stat.npy``.

    Uses ``med`` ([y, x]) when present, else the mean of ``ypix``/``xpix``.

    Parameters
    ----------
    stat_path
        suite2p ``stat.npy``.
    n_rois
        ROIs in the plane's F.npy.

    Returns
    -------
    np.ndarray
        (n_rois, 2) float64 ``[x, y]`` pixels.
    """
    stat = load_npy(stat_path, allow_pickle=True, what="suite2p stat.npy")
    if stat.dtype != object or stat.ndim != 1:
        raise ImportError_(
            f"{stat_path}: expected suite2p stat.npy (1-D object array of dicts), found "
            f"{stat.dtype} array of shape {stat.shape}"
        )
    if len(stat) != n_rois:
        raise ImportError_(
            f"{stat_path}: {len(stat)} ROIs in stat.npy but {n_rois} rows in F.npy; the files "
            "come from different suite2p runs"
        )
    out = np.empty((n_rois, 2), dtype=np.float64)
    for i, s in enumerate(stat):
        if not isinstance(s, dict):
            raise ImportError_(f"{stat_path}: ROI {i} is {type(s).__name__}, expected a dict")
        if "med" in s:
            y, x = s["med"][0], s["med"][1]
        elif "ypix" in s and "xpix" in s:
            y, x = float(np.mean(s["ypix"])), float(np.mean(s["xpix"]))
        else:
            raise ImportError_(
                f"{stat_path}: ROI {i} has neither 'med' nor 'ypix'/'xpix' (keys: {sorted(s)[:8]})"
            )
        out[i] = (x, y)
    return out


def plane_positions(
    plane_dir: Path,
    plane: int,
    n_rois: int,
    rows: np.ndarray,
    *,
    pixel_size_um: float,
    plane_spacing_um: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Imaging-frame positions and neuron ids of the ROIs ``rows`` of one suite2p plane.

    Parameters
    ----------
    plane_dir
        The plane's folder (its ``stat.npy`` gives the ROI centres).
    plane
        The plane number k: z = k * ``plane_spacing_um``.
    n_rois
        ROIs in the plane's ``F.npy`` (``stat.npy`` must hold as many).
    rows
        (n,) int indices of the ROIs kept.
    pixel_size_um, plane_spacing_um
        Scale of x/y pixels and distance between planes, µm.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        ``(xyz (n, 3) float64 µm, neuron_ids (n,) int64)``, ids as in
        :data:`NEURON_ID_PLANE_STRIDE`.
    """
    xy = roi_centres_px(plane_dir / "stat.npy", n_rois)[rows]
    xyz = np.column_stack([xy * pixel_size_um, np.full(len(rows), plane * plane_spacing_um)])
    return xyz, plane * NEURON_ID_PLANE_STRIDE + np.asarray(rows, dtype=np.int64)


def require_rois(n_rois: int, where: Path, label: str) -> None:
    """Refuse an empty plane (``label``: how the plane is named, e.g. ``plane_3``).

    Parameters
    ----------
    n_rois
        ROIs in the plane.
    where
        The plane's file or folder.
    label
        The plane's name in messages.
    """
    if n_rois == 0:
        raise ImportError_(
            f"{where}: {label} has no ROIs (empty plane); leave it out with --planes"
        )


def read_ops(plane_dir: Path) -> dict:
    """suite2p ``ops.npy`` (or newer ``settings.npy``) as a dict; empty dict if neither exists.

    Parameters
    ----------
    plane_dir
        A suite2p plane folder.

    Returns
    -------
    dict
        The ops (empty when there is none).
    """
    for name in ("ops.npy", "settings.npy"):
        p = plane_dir / name
        if p.exists():
            ops = load_npy(p, allow_pickle=True)
            try:
                ops = ops.item() if isinstance(ops, np.ndarray) else ops
            except ValueError:
                ops = None
            if not isinstance(ops, dict):
                raise ImportError_(f"{p}: expected a pickled dict (suite2p ops), found {type(ops)}")
            return ops
    return {}


# ---------------------------------------------------------------------------------- tail_df.h5
def _pandas_fixed_frame(path: Path, key: str) -> dict[str, np.ndarray] | None:
    """Numeric columns of a pandas HDFStore *fixed*-format frame, read with h5py (no pickle)."""
    with h5py.File(path, "r") as f:
        if key not in f:
            return None
        g = f[key]
        if not isinstance(g, h5py.Group) or "nblocks" not in g.attrs:
            return None
        cols: dict[str, np.ndarray] = {}
        for b in range(int(g.attrs["nblocks"])):
            items = g.get(f"block{b}_items")
            values = g.get(f"block{b}_values")
            if items is None or values is None or values.dtype == object:
                continue  # object block (pickled python objects, e.g. t_dt): skipped
            if values.attrs.get("CLASS", b"") == b"VLARRAY":
                continue
            names = [n.decode() if isinstance(n, bytes) else str(n) for n in items[()]]
            arr = values[()]
            if arr.ndim == 1:
                arr = arr[:, None]
            if arr.shape[1] != len(names) and arr.shape[0] == len(names):
                arr = arr.T
            for j, n in enumerate(names):
                cols[n] = arr[:, j]
        return cols


def read_tail_df(path: Path, key: str = "tail") -> dict[str, np.ndarray]:
    """Columns of a ``tail_df.h5`` (pandas HDFStore, key ``tail``) as numpy arrays.

    Reads the fixed-format blocks with h5py; falls back to ``pandas.read_hdf`` (table format or
    another key) if that fails. Requires a ``frame`` column and at least one ``theta_NN`` column.

    Parameters
    ----------
    path
        The ``tail_df.h5``.
    key
        The pandas key.

    Returns
    -------
    dict[str, np.ndarray]
        Numeric column name -> values.
    """
    if not path.exists():
        raise ImportError_(f"{path}: missing tail_df.h5 (tail angles)")
    if not h5py.is_hdf5(path):
        raise ImportError_(f"{path}: not an HDF5 file (expected a pandas HDFStore tail_df.h5)")
    cols = None
    try:
        cols = _pandas_fixed_frame(path, key)
    except (OSError, KeyError, ValueError):
        cols = None
    if cols is None:
        try:
            import pandas as pd

            with pd.HDFStore(path, "r") as store:
                keys = store.keys()
                use = f"/{key}" if f"/{key}" in keys else (keys[0] if len(keys) == 1 else None)
                if use is None:
                    raise ImportError_(f"{path}: expected a pandas key {key!r}, found keys {keys}")
                df = store[use]
            cols = {
                str(c): df[c].to_numpy()
                for c in df.columns
                if np.issubdtype(df[c].dtype, np.number)
            }
        except ImportError_:
            raise
        except Exception as exc:
            raise ImportError_(f"{path}: could not read the pandas table {key!r} ({exc})") from exc
    thetas = sorted(c for c in cols if re.fullmatch(r"theta_?\d+", c))
    if "frame" not in cols or not thetas:
        raise ImportError_(
            f"{path}: expected columns 'frame' and theta_00, theta_01, ...; found "
            f"{', '.join(sorted(cols)) or '(no numeric columns)'}"
        )
    return cols


# ---------------------------------------------------------------------------------- tables
def read_table_file(path: Path, *, what: str) -> pd.DataFrame:
    """A CSV / TSV / ``.tab`` table as a pandas DataFrame (separator sniffed).

    Parameters
    ----------
    path
        The table.
    what
        What it is, for messages.

    Returns
    -------
    pd.DataFrame
        The table, column names stripped of spaces and quotes.
    """
    import pandas as pd

    if not path.exists():
        raise ImportError_(f"{path}: missing {what}")
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
        first = text.splitlines()[0] if text else ""
        sep = "\t" if "\t" in first else ("," if "," in first else r"\s+")
        df = pd.read_csv(path, sep=sep, engine="python", quotechar='"')
    except Exception as exc:
        raise ImportError_(f"{path}: could not read {what} as a table ({exc})") from exc
    df.columns = [str(c).strip().strip('"').strip() for c in df.columns]
    return df


def read_stimulus_table(path: Path) -> tuple[list[str], list[int], list[dict]]:
    """NLP4Neuro ``stimulus_df.tab``: (names, onset frames, params) per row.

    Tab-separated (Dataverse ingest of a pandas CSV with its index); columns ``stim_name`` and
    ``frame`` required, ``velocity`` kept as a parameter; an unnamed index column is ignored.

    Parameters
    ----------
    path
        The ``stimulus_df.tab``.

    Returns
    -------
    tuple[list[str], list[int], list[dict]]
        Names, onset frames and parameters per row.
    """
    df = read_table_file(path, what="stimulus table")
    lower = {c.lower(): c for c in df.columns}
    name_col = next((lower[c] for c in ("stim_name", "stimulus", "name") if c in lower), None)
    frame_col = next((lower[c] for c in ("frame", "onset_frame", "start") if c in lower), None)
    if name_col is None or frame_col is None:
        raise ImportError_(
            f"{path}: expected columns 'stim_name' and 'frame', found {list(df.columns)}"
        )
    try:
        frames = [int(round(float(v))) for v in df[frame_col]]
    except (TypeError, ValueError) as exc:
        raise ImportError_(f"{path}: column {frame_col!r} must hold frame numbers ({exc})") from exc
    names = [str(v).strip().strip('"') for v in df[name_col]]
    params: list[dict] = []
    for _, row in df.iterrows():
        p: dict[str, float | str] = {}
        for c in df.columns:
            if c in (name_col, frame_col) or c.lower().startswith("unnamed") or c == "":
                continue
            v = row[c]
            if c.lower() == "velocity":
                try:
                    p["velocity"] = float(v)
                except (TypeError, ValueError):
                    p["velocity"] = str(v)
            elif c.lower() == "time":
                p["time"] = str(v)
        params.append(p)
    return names, frames, params
