"""Loaders for real reference atlases into :class:`~decoding.atlas.Atlas`, registered by name.

- ``nifti``: any NIfTI label volume + CSV table (reoriented to our axes from its affine, or from
  ``orientation``);
- ``zbrain``: Z-Brain ``MaskDatabase.mat`` (MATLAB v7.3, sparse overlapping masks, via h5py);
- ``brainglobe``: a BrainGlobe atlas folder (``annotation.tiff``, ``structures.json``,
  ``metadata.json``), e.g. ``~/.brainglobe/mpin_zfish_1um_v1.0``.

Orientation strings use BrainGlobe's convention: one letter per array axis naming where that axis
*starts* (``a``/``p`` anterior/posterior, ``s``/``i`` superior/inferior, ``l``/``r`` left/right).
Our atlas space is ``"las"``: x starts left, y starts anterior (rostral), z starts superior
(dorsal).

    >>> from decoding.atlas_loaders import load_atlas
    >>> atlas = load_atlas("assets/atlas/schematic_zfish_6dpf.nii.gz")
"""

from __future__ import annotations

import colorsys
import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import h5py
import numpy as np

from decoding.atlas import Atlas, Region, read_label_volume, sidecar_table_path
from decoding.errors import AtlasError

__all__ = [
    "load_atlas",
    "register_atlas_loader",
    "atlas_loader_names",
    "reorient",
    "load_nifti_atlas",
    "load_zbrain",
    "load_brainglobe",
    "ZBRAIN_VOXEL_UM",
]

OUR_ORIENTATION = "las"
ZBRAIN_VOXEL_UM = (0.798, 0.798, 2.0)  # (x = width/col, y = height/row, z)
AUTO_MAX_VOXELS = 32_000_000
_ZBRAIN_CHUNK = 4_000_000  # sparse entries processed at a time (bounds temporary memory)
"""Above this many voxels, loaders downsample by default (``voxel_um=None``) to keep memory low."""

_LOADERS: dict[str, Callable[..., Atlas]] = {}
_PAIRS = {"l": "r", "r": "l", "a": "p", "p": "a", "s": "i", "i": "s"}


def register_atlas_loader(name: str) -> Callable[[Callable[..., Atlas]], Callable[..., Atlas]]:
    """Decorator registering an atlas loader ``f(path, *, voxel_um=None, **kw) -> Atlas``.

    Parameters
    ----------
    name
        The format name (``--format NAME``).

    Returns
    -------
    Callable
        The decorator; it returns the loader unchanged.
    """

    def deco(fn: Callable[..., Atlas]) -> Callable[..., Atlas]:
        if name in _LOADERS:
            raise ValueError(f"atlas loader {name!r} is already registered")
        _LOADERS[name] = fn
        return fn

    return deco


def atlas_loader_names() -> list[str]:
    """Names of the registered atlas loaders.

    Returns
    -------
    list[str]
        In registration order.
    """
    return list(_LOADERS)


def _guess_format(path: Path) -> str:
    if path.is_dir():
        if (path / "annotation.tiff").exists() or (path / "structures.json").exists():
            return "brainglobe"
        if (path / "MaskDatabase.mat").exists():
            return "zbrain"
        raise AtlasError(
            f"{path}: a folder but not a BrainGlobe atlas (no annotation.tiff / structures.json) "
            "and no MaskDatabase.mat inside"
        )
    name = path.name.lower()
    if name.endswith((".nii", ".nii.gz")):
        return "nifti"
    if name.endswith(".mat"):
        return "zbrain"
    raise AtlasError(
        f"{path}: cannot tell the atlas format from the name; expected a .nii/.nii.gz label "
        "volume, a Z-Brain MaskDatabase.mat or a BrainGlobe atlas folder (or pass --format)"
    )


def load_atlas(
    path: str | Path, *, format: str = "auto", voxel_um: float | None = None, **kwargs: object
) -> Atlas:
    """Load any supported atlas; ``format`` is a loader name or ``"auto"`` (from the path).

    Parameters
    ----------
    path
        The atlas file or folder.
    format
        A loader name or ``"auto"``.
    voxel_um
        Downsample to about this voxel size (µm); ``None``: automatic.
    **kwargs
        The loader's own options (e.g. ``table``, ``orientation``, ``name``).

    Returns
    -------
    Atlas
        The atlas in our orientation.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise AtlasError(f"atlas {path} does not exist")
    fmt = _guess_format(path) if format == "auto" else format
    if fmt not in _LOADERS:
        raise AtlasError(f"unknown atlas format {fmt!r}; known: {', '.join(_LOADERS)}")
    return _LOADERS[fmt](path, voxel_um=voxel_um, **kwargs)


# ---------------------------------------------------------------------------------- orientation
def _check_orientation(orientation: str, what: str) -> str:
    o = str(orientation).lower()
    pairs = {frozenset((c, _PAIRS[c])) for c in o if c in _PAIRS}
    if len(o) != 3 or pairs != {frozenset("lr"), frozenset("ap"), frozenset("si")}:
        raise AtlasError(
            f"{what}: orientation must be 3 letters, one of each pair a/p, s/i, l/r (e.g. 'asr'), "
            f"found {orientation!r}"
        )
    return o


def _axis_map(orientation: str, what: str) -> tuple[list[int], list[bool]]:
    """For each of our axes (x, y, z): the source axis and whether it is flipped."""
    o = _check_orientation(orientation, what)
    perm, flips = [], []
    for target in OUR_ORIENTATION:
        i = next(j for j, c in enumerate(o) if c in (target, _PAIRS[target]))
        perm.append(i)
        flips.append(o[i] != target)
    return perm, flips


def reorient(
    volume: np.ndarray, voxel: np.ndarray, orientation: str, *, what: str = "atlas"
) -> tuple[np.ndarray, np.ndarray]:
    """Transpose/flip ``volume`` from ``orientation`` to ours (``"las"``); voxel sizes follow.

    Parameters
    ----------
    volume
        The array in ``orientation``.
    voxel
        (3,) voxel size per array axis, µm.
    orientation
        BrainGlobe letters of the array axes.
    what
        The source, for messages.

    Returns
    -------
    tuple[np.ndarray, np.ndarray]
        ``(volume in our (x, y, z) order, voxel sizes (3,))``.
    """
    perm, flips = _axis_map(orientation, what)
    out = np.transpose(volume, perm)
    for ax, f in enumerate(flips):
        if f:
            out = np.flip(out, axis=ax)
    return np.ascontiguousarray(out), np.asarray(voxel, dtype=np.float64)[perm]


def _palette(key: str) -> str:
    h = int(hashlib.md5(key.encode()).hexdigest()[:6], 16) / 0xFFFFFF
    r, g, b = colorsys.hls_to_rgb(h, 0.5, 0.65)
    return f"#{int(r * 255):02x}{int(g * 255):02x}{int(b * 255):02x}"


def _factors(voxel: np.ndarray, voxel_um: float | None, n_voxels: int) -> np.ndarray:
    if voxel_um is None:
        if n_voxels <= AUTO_MAX_VOXELS:
            return np.ones(3, dtype=int)
        f = 1
        while n_voxels / f**2 > AUTO_MAX_VOXELS:
            f += 1
        # downsample in-plane first (the axes with the finest voxels)
        fine = voxel <= voxel.min() * 1.5
        return np.where(fine, f, 1).astype(int)
    if voxel_um <= 0:
        raise AtlasError(f"--voxel-um must be positive, found {voxel_um}")
    return np.maximum(1, np.round(voxel_um / voxel)).astype(int)


# ---------------------------------------------------------------------------------- NIfTI + CSV
@register_atlas_loader("nifti")
def load_nifti_atlas(
    path: Path,
    *,
    voxel_um: float | None = None,
    table: str | Path | None = None,
    orientation: str | None = None,
    name: str | None = None,
) -> Atlas:
    """Any NIfTI label volume + CSV table (``id,name[,acronym,group,side,color]``).

    The table defaults to the sidecar ``NAME.csv``. A positive diagonal affine means the array is
    already in our axis order (as our own files); any other affine is read with NIfTI's RAS
    semantics (nibabel axis codes; ours are R, P, I). ``orientation`` (BrainGlobe letters)
    overrides both. The volume corner becomes the atlas-space origin. ``voxel_um`` downsamples
    by striding.

    Parameters
    ----------
    path
        The ``.nii`` / ``.nii.gz`` label volume.
    voxel_um
        Downsample by striding to about this voxel size, µm.
    table
        The region table (default: the sidecar ``.csv``).
    orientation
        BrainGlobe letters of the array axes (default: from the affine).
    name
        The atlas name (default: the table's stem).

    Returns
    -------
    Atlas
        The atlas in our orientation.
    """
    import nibabel as nib

    from decoding.atlas import _read_table  # the CSV reader shared with Atlas.load

    path = Path(path)
    data, img = read_label_volume(path)
    zooms = np.asarray(img.header.get_zooms()[:3], dtype=np.float64)
    lin = np.asarray(img.affine, dtype=np.float64)[:3, :3]
    if orientation is None and np.allclose(lin, np.diag(np.diag(lin))) and np.all(np.diag(lin) > 0):
        orientation = OUR_ORIENTATION  # a plain positive diagonal affine: array order is ours
    if orientation is None:
        codes = nib.aff2axcodes(img.affine)  # direction each axis *increases* towards
        start = {"R": "l", "L": "r", "A": "p", "P": "a", "S": "i", "I": "s"}
        orientation = "".join(start[c] for c in codes)
    data, voxel = reorient(data, zooms, orientation, what=str(path))
    f = _factors(voxel, voxel_um, data.size)
    if np.any(f > 1):
        data = np.ascontiguousarray(data[:: f[0], :: f[1], :: f[2]])
        voxel = voxel * f
    regions = _read_table(Path(table) if table is not None else sidecar_table_path(path))
    atlas_name = name or sidecar_table_path(path).stem
    return Atlas(atlas_name, data, voxel, regions, source=str(path))


# ---------------------------------------------------------------------------------- Z-Brain
def _mat_string(f: h5py.File, ref) -> str:
    obj = f[ref]
    arr = np.asarray(obj[()]).reshape(-1)
    if arr.dtype.kind in "ui":
        return "".join(chr(int(c)) for c in arr if c)
    if arr.dtype.kind == "S":
        return b"".join(arr).decode("utf-8", "replace")
    return str(arr)


def _mat_scalar(f: h5py.File, key: str, path: Path) -> int:
    if key not in f:
        raise AtlasError(f"{path}: Z-Brain MaskDatabase.mat is missing {key!r}")
    return int(round(float(np.asarray(f[key][()]).reshape(-1)[0])))


@dataclass(frozen=True)
class _MaskDb:
    """The geometry of a Z-Brain MaskDatabase: (height, width, Zs), column starts, names."""

    height: int
    width: int
    zs: int
    jc: np.ndarray  # (n_masks + 1,) start of each mask's entries in ir
    names: list[str]

    @property
    def n_voxels(self) -> int:
        return self.height * self.width * self.zs


def _maskdb_file(path: Path) -> Path:
    """The MaskDatabase.mat (a folder holding one is accepted), checked to be MATLAB v7.3."""
    if path.is_dir():
        path = path / "MaskDatabase.mat"
    if not path.exists():
        raise AtlasError(f"{path}: no such Z-Brain MaskDatabase.mat")
    if not h5py.is_hdf5(path):
        raise AtlasError(
            f"{path}: not a MATLAB v7.3 (HDF5) file; Z-Brain's MaskDatabase.mat is v7.3 — "
            "re-save it with save(..., '-v7.3') if yours is older"
        )
    return path


def _read_maskdb_header(f: h5py.File, path: Path) -> tuple[h5py.Group, _MaskDb]:
    """The sparse ``MaskDatabase`` group and its geometry, checked against each other."""
    g = f.get("MaskDatabase")
    if not isinstance(g, h5py.Group) or not {"ir", "jc"} <= set(g):
        raise AtlasError(
            f"{path}: expected a sparse 'MaskDatabase' (group with ir, jc, data), found "
            f"{type(g).__name__ if g is not None else 'nothing'}; top-level keys: {list(f)}"
        )
    height = _mat_scalar(f, "height", path)
    width = _mat_scalar(f, "width", path)
    zs = _mat_scalar(f, "Zs", path)
    n_vox = height * width * zs
    n_rows = int(np.asarray(g.attrs.get("MATLAB_sparse", n_vox)).reshape(-1)[0])
    if n_rows != n_vox:
        raise AtlasError(f"{path}: MaskDatabase has {n_rows} rows but height*width*Zs = {n_vox}")
    jc = np.asarray(g["jc"][()], dtype=np.int64).reshape(-1)
    n_masks = len(jc) - 1
    if "MaskDatabaseNames" not in f:
        raise AtlasError(f"{path}: missing 'MaskDatabaseNames'")
    refs = np.asarray(f["MaskDatabaseNames"][()]).reshape(-1)
    if len(refs) != n_masks:
        raise AtlasError(f"{path}: {len(refs)} names in MaskDatabaseNames but {n_masks} masks")
    return g, _MaskDb(height, width, zs, jc, [_mat_string(f, r) for r in refs])


def _mask_indices(
    g: h5py.Group, db: _MaskDb, fac: np.ndarray, shp: tuple[int, int, int], path: Path
) -> list[np.ndarray]:
    """Per mask: sorted unique flat indices (C order over (row, col, z) of ``shp``), downsampled
    by ``fac``; sparse entries are processed in chunks to bound temporary memory."""
    ir, data = g["ir"], g.get("data")
    n_small = int(np.prod(shp))
    masks: list[np.ndarray] = []
    mark = np.zeros(n_small, dtype=bool)  # scratch: unique + sorted without a sort
    idx_dtype = np.int32 if n_small < 2**31 else np.int64
    plane = db.height * db.width
    for k in range(len(db.names)):
        for a in range(int(db.jc[k]), int(db.jc[k + 1]), _ZBRAIN_CHUNK):
            b = min(int(db.jc[k + 1]), a + _ZBRAIN_CHUNK)
            lin = np.asarray(ir[a:b], dtype=np.int64)
            if data is not None and data.dtype != np.uint8:
                lin = lin[np.asarray(data[a:b]) != 0]
            if lin.size and (lin.min() < 0 or lin.max() >= db.n_voxels):
                raise AtlasError(
                    f"{path}: mask {k + 1} ({db.names[k]!r}) indexes beyond the volume"
                )
            z, rem = np.divmod(lin, plane)
            del lin
            col, row = np.divmod(rem, db.height)
            del rem
            if np.any(fac > 1):
                row //= fac[0]
                col //= fac[1]
                z //= fac[2]
            row *= shp[1]
            row += col
            row *= shp[2]
            row += z  # flat index, C order over (row, col, z)
            mark[row] = True
            del row, col, z
        flat = np.flatnonzero(mark).astype(idx_dtype)
        mark[flat] = False
        masks.append(flat)
    return masks


def _paint(masks: list[np.ndarray], shp: tuple[int, int, int]) -> np.ndarray:
    """Label volume: largest mask painted first, so the most specific (smallest) mask wins."""
    order = sorted(range(len(masks)), key=lambda k: -len(masks[k]))
    dtype = np.uint16 if len(masks) < 65535 else np.int32
    vol = np.zeros(int(np.prod(shp)), dtype=dtype)
    for k in order:
        vol[masks[k]] = k + 1
    return vol.reshape(shp)


def _memberships(
    masks: list[np.ndarray], shp: tuple[int, int, int], ours_shape: tuple[int, ...],
    orientation: str, what: str,
) -> dict[int, np.ndarray]:
    """Every mask as sorted flat indices of the reoriented volume, keyed by label (k + 1)."""
    perm, flips = _axis_map(orientation, what)
    out = {}
    for k, flat in enumerate(masks):
        src_idx = np.unravel_index(flat, shp)
        ours = []
        for ax in range(3):
            c = src_idx[perm[ax]]
            ours.append(shp[perm[ax]] - 1 - c if flips[ax] else c)
        flat_ours = np.ravel_multi_index(tuple(ours), ours_shape)
        out[k + 1] = np.sort(flat_ours.astype(flat.dtype))
    return out


def _zbrain_regions(names: list[str]) -> list[Region]:
    """Regions from Z-Brain mask names ``"Group - Sub"``; unique acronyms, side from the name."""
    regions = []
    seen: set[str] = set()
    for k, full in enumerate(names):
        group, _, sub = (s.strip() for s in full.partition(" - "))
        acr = sub or group or f"mask{k + 1}"
        if acr in seen:
            acr = full.strip() or f"mask{k + 1}"
        if acr in seen:
            acr = f"{acr} ({k + 1})"
        seen.add(acr)
        side = "L" if "left" in full.lower() else "R" if "right" in full.lower() else ""
        regions.append(Region(k + 1, full.strip() or acr, acr, group, side, _palette(group + sub)))
    return regions


@register_atlas_loader("zbrain")
def load_zbrain(
    path: Path,
    *,
    voxel_um: float | None = None,
    orientation: str = "als",
    name: str = "zbrain",
) -> Atlas:
    """Z-Brain ``MaskDatabase.mat`` (v7.3): 294 overlapping sparse masks -> an :class:`Atlas`.

    ``labels`` holds the most specific (smallest) mask at each voxel, for colouring;
    ``atlas.memberships`` keeps every mask, so :meth:`Atlas.all_regions_of` lists all regions of a
    point. Linear voxel index = row + col*height + z*height*width (0-based); ``orientation`` gives
    the (row, col, z) axes in BrainGlobe letters, default ``"als"`` (row 0 rostral, col 0 left,
    z 0 dorsal). ``voxel_um=None`` keeps the native 0.798 x 0.798 x 2 µm unless the volume is too
    large, then downsamples in-plane (reported in ``atlas.source``).

    Parameters
    ----------
    path
        The ``MaskDatabase.mat`` or a folder holding it.
    voxel_um
        Target voxel size (µm) to downsample to; ``None``: automatic.
    orientation
        BrainGlobe letters of the (row, col, z) axes.
    name
        The atlas name.

    Returns
    -------
    Atlas
        Labels in our orientation, with ``memberships`` of every mask.
    """
    path = _maskdb_file(Path(path))
    voxel_src = np.array([ZBRAIN_VOXEL_UM[1], ZBRAIN_VOXEL_UM[0], ZBRAIN_VOXEL_UM[2]])
    with h5py.File(path, "r") as f:
        g, db = _read_maskdb_header(f, path)
        fac = _factors(voxel_src, voxel_um, db.n_voxels)  # in (row, col, z) order
        shp = (-(-db.height // fac[0]), -(-db.width // fac[1]), -(-db.zs // fac[2]))
        masks = _mask_indices(g, db, fac, shp, path)
    labels, voxel_ours = reorient(_paint(masks, shp), voxel_src * fac, orientation, what=str(path))
    memberships = _memberships(masks, shp, labels.shape, orientation, str(path))
    src = f"{path}" + (f" (downsampled x{fac.tolist()})" if np.any(fac > 1) else "")
    return Atlas(
        name, labels, voxel_ours, _zbrain_regions(db.names), source=src, memberships=memberships
    )


# ---------------------------------------------------------------------------------- BrainGlobe
def _groups_from_paths(structs: list[dict]) -> dict[int, str]:
    """Group name per structure id: the shallowest hierarchy level where structures differ."""
    by_id = {int(s["id"]): s for s in structs}
    paths = {int(s["id"]): [int(i) for i in s.get("structure_id_path", [s["id"]])] for s in structs}
    depth = 0
    while True:
        at = {p[depth] for p in paths.values() if len(p) > depth + 1}
        if len(at) != 1:
            break
        depth += 1
    out = {}
    for sid, p in paths.items():
        gid = p[depth] if len(p) > depth else sid
        out[sid] = str(by_id.get(gid, by_id[sid]).get("name", gid))
    return out


def _read_json_files(path: Path) -> tuple[dict, list[dict]]:
    """``(metadata.json, structures.json)`` of a BrainGlobe folder, checked to exist with
    ``resolution`` and ``orientation``."""
    meta_p, struct_p, ann_p = (
        path / "metadata.json",
        path / "structures.json",
        path / "annotation.tiff",
    )
    for p in (meta_p, struct_p, ann_p):
        if not p.exists():
            raise AtlasError(
                f"{path}: not a BrainGlobe atlas folder, missing {p.name} (expected "
                "annotation.tiff, structures.json, metadata.json)"
            )
    try:
        meta = json.loads(meta_p.read_text())
        structs = json.loads(struct_p.read_text())
    except json.JSONDecodeError as exc:
        raise AtlasError(f"{path}: unreadable JSON ({exc})") from exc
    for key in ("resolution", "orientation"):
        if key not in meta:
            raise AtlasError(f"{meta_p}: missing {key!r}")
    return meta, structs


def _read_annotation(ann_p: Path, fac: np.ndarray, shape: list[int] | None) -> np.ndarray:
    """The 3-D annotation stack, strided by ``fac`` while reading (only every fac[0]-th page)."""
    import tifffile

    try:
        with tifffile.TiffFile(ann_p) as tif:
            n_pages = len(tif.pages)
            if n_pages > 1 and fac[0] > 1:
                ann = tif.asarray(key=range(0, n_pages, int(fac[0])))
                ann = ann[:, :: fac[1], :: fac[2]]
            else:
                ann = tif.asarray()
                ann = ann[:: fac[0], :: fac[1], :: fac[2]]
    except Exception as exc:
        raise AtlasError(f"{ann_p}: not a readable TIFF ({exc})") from exc
    if ann.ndim != 3:
        raise AtlasError(f"{ann_p}: expected a 3-D label stack, found shape {ann.shape}")
    if shape and fac.max() == 1 and tuple(ann.shape) != tuple(shape):
        raise AtlasError(
            f"{ann_p}: shape {ann.shape} does not match metadata.json shape {tuple(shape)}"
        )
    return ann


def _structure_side(name: str) -> str:
    low = name.lower()
    if low.endswith(" left") or low.endswith("(left)"):
        return "L"
    if low.endswith(" right") or low.endswith("(right)"):
        return "R"
    return ""


def _brainglobe_regions(structs: list[dict], present: set[int], struct_p: Path) -> list[Region]:
    """Regions of the structures whose id is ``present`` in the annotation."""
    groups = _groups_from_paths(structs)
    regions = []
    for s in structs:
        sid = int(s["id"])
        if sid not in present:
            continue
        rgb = s.get("rgb_triplet") or [150, 150, 150]
        color = "#{:02x}{:02x}{:02x}".format(*(int(v) for v in rgb[:3]))
        acr = str(s.get("acronym") or s.get("name") or sid)
        nm = str(s.get("name") or acr)
        regions.append(Region(sid, nm, acr, groups.get(sid, ""), _structure_side(nm), color))
    missing = present - {r.id for r in regions}
    if missing:
        raise AtlasError(
            f"{struct_p}: annotation labels {sorted(missing)[:10]} have no structure entry"
        )
    return regions


@register_atlas_loader("brainglobe")
def load_brainglobe(path: Path, *, voxel_um: float | None = None, name: str | None = None) -> Atlas:
    """A BrainGlobe atlas folder: ``annotation.tiff`` + ``structures.json`` + ``metadata.json``.

    The annotation is reoriented from ``metadata["orientation"]`` (e.g. ``"asr"``) to ours and
    optionally downsampled by striding (``voxel_um``; default: automatic above 32 M voxels).
    Regions are the structures present in the annotation; ``group`` is the hierarchy level below
    the common root. BrainGlobe's own ``meshes/*.obj`` are not used: meshes come from the labels.

    Parameters
    ----------
    path
        The atlas folder (e.g. ``~/.brainglobe/mpin_zfish_1um_v1.0``).
    voxel_um
        Target voxel size (µm) to downsample to; ``None``: automatic.
    name
        The atlas name (default: ``metadata["name"]``, else the folder name).

    Returns
    -------
    Atlas
        Labels in our orientation and the present structures as regions.
    """
    path = Path(path)
    meta, structs = _read_json_files(path)
    res = np.asarray(meta["resolution"], dtype=np.float64)
    if res.shape != (3,) or np.any(res <= 0):
        raise AtlasError(
            f"{path / 'metadata.json'}: 'resolution' must be 3 positive numbers, found "
            f"{res.tolist()}"
        )
    shape = meta.get("shape")
    fac = _factors(res, voxel_um, int(np.prod(shape)) if shape else 0)
    ann = _read_annotation(path / "annotation.tiff", fac, shape)
    labels, voxel = reorient(
        ann, res * fac, str(meta["orientation"]), what=str(path / "metadata.json")
    )
    if labels.dtype.kind == "u" and labels.dtype.itemsize >= 4:
        labels = labels.astype(np.int64 if labels.max(initial=0) >= 2**31 else np.int32)
    present = set(np.unique(labels).tolist()) - {0}
    regions = _brainglobe_regions(structs, present, path / "structures.json")
    atlas_name = name or str(meta.get("name") or path.name)
    src = f"{path}" + (f" (downsampled x{fac.tolist()})" if np.any(fac > 1) else "")
    return Atlas(atlas_name, labels, voxel, regions, source=src)
