"""Reference brain: a labelled volume in micrometres, its region table, lookups and surface meshes.

Coordinates (atlas space) are micrometres with x = left→right, y = rostral→caudal,
z = dorsal→ventral and the origin at the corner of the volume: voxel ``(i, j, k)`` covers
``[i*dx, (i+1)*dx) × ...`` and :attr:`Atlas.affine` maps a voxel index to its centre.
Left hemisphere is ``x < midline_x_um``.

The shipped schematic brain (:func:`default_atlas`) and real atlases (Z-Brain, BrainGlobe folders,
any NIfTI label volume + CSV table) all load into the same :class:`Atlas` object.

Example::

    >>> atlas = default_atlas()
    >>> atlas.acronyms_of([[atlas.midline_x_um - 60, 470, 120]]).tolist()
    ['TeO_PVL_L']
"""

from __future__ import annotations

import csv
import functools
import gzip
import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from decoding.errors import AtlasError
from decoding.io_utils import atomic_write_path

if TYPE_CHECKING:
    from nibabel.spatialimages import SpatialImage

__all__ = [
    "Region",
    "Atlas",
    "default_atlas",
    "DEFAULT_ATLAS_PATH",
    "OUTSIDE",
    "read_label_volume",
    "sidecar_table_path",
]

OUTSIDE = "outside"
"""Acronym returned for points outside the brain (label 0) or outside the volume."""

DEFAULT_ATLAS_PATH = (
    Path(__file__).resolve().parent.parent / "assets" / "atlas" / "schematic_zfish_6dpf.nii.gz"
)
TABLE_COLUMNS = ("id", "name", "acronym", "group", "side", "color")
_COLOR_RE = re.compile(r"^#[0-9a-fA-F]{6}$")
MESH_TARGET_VOXEL_UM = 8.0
"""Region masks are downsampled to about this voxel size before marching cubes (decimation)."""


@dataclass(frozen=True)
class Region:
    """One labelled region of an atlas.

    ``side`` is ``"L"``, ``"R"`` or ``""`` (unpaired / midline); ``color`` is ``"#rrggbb"``;
    ``group`` is the top-level group (e.g. ``"Rhombencephalon"``).
    """

    id: int
    name: str
    acronym: str
    group: str = ""
    side: str = ""
    color: str = "#999999"

    def __post_init__(self) -> None:
        if int(self.id) != self.id or self.id <= 0:
            raise AtlasError(
                f"region {self.acronym!r}: id must be a positive integer, got {self.id}"
            )
        if not self.acronym or not self.name:
            raise AtlasError(f"region id {self.id}: name and acronym must be non-empty")
        if self.side not in ("L", "R", ""):
            raise AtlasError(
                f"region {self.acronym!r}: side must be 'L', 'R' or '' (unpaired), "
                f"got {self.side!r}"
            )
        if not _COLOR_RE.match(self.color):
            raise AtlasError(
                f"region {self.acronym!r}: color must be '#rrggbb', got {self.color!r}"
            )

    @property
    def base_acronym(self) -> str:
        """The acronym without its side suffix (``"r4_L"`` -> ``"r4"``)."""
        if self.side and self.acronym.endswith(f"_{self.side}"):
            return self.acronym[: -len(self.side) - 1]
        return self.acronym


def sidecar_table_path(nifti_path: str | Path) -> Path:
    """The region table beside a NIfTI file: ``brain.nii.gz`` -> ``brain.csv``.

    Parameters
    ----------
    nifti_path
        A ``.nii`` / ``.nii.gz`` file.

    Returns
    -------
    Path
        The ``.csv`` beside it.
    """
    p = Path(nifti_path)
    stem = p.name[: -len(".nii.gz")] if p.name.endswith(".nii.gz") else p.stem
    return p.with_name(stem + ".csv")


def _atlas_stem(path: Path) -> str:
    return sidecar_table_path(path).stem


class Atlas:
    """A label volume (0 = outside the brain) with a region table, in atlas-space micrometres.

    Parameters
    ----------
    name: short atlas name, stored in recordings' ``atlas`` attribute.
    labels: (X, Y, Z) integer label volume indexed x = left→right, y = rostral→caudal,
        z = dorsal→ventral.
    voxel_size_um: (3,) voxel size in µm.
    regions: the region table; every non-zero label in the volume must have a row.
    midline_x_um: the left/right boundary; default the middle of the volume along x.
    source: where the atlas came from (file path or description).
    memberships: for atlases with overlapping masks (Z-Brain): region id -> sorted flat voxel
        indices (``np.ravel_multi_index`` over ``labels.shape``) of *every* voxel in that region.
        ``labels`` then holds the most specific (smallest) region per voxel, for colouring.
    """

    def __init__(
        self,
        name: str,
        labels: np.ndarray,
        voxel_size_um: Sequence[float] | np.ndarray,
        regions: Iterable[Region],
        *,
        midline_x_um: float | None = None,
        source: str = "",
        validate: bool = True,
        memberships: dict[int, np.ndarray] | None = None,
    ) -> None:
        labels = np.asarray(labels)
        if labels.ndim != 3:
            raise AtlasError(
                f"atlas {name!r}: labels must be a 3-D volume, got shape {labels.shape}"
            )
        if not np.issubdtype(labels.dtype, np.integer):
            raise AtlasError(
                f"atlas {name!r}: labels must be integers, got dtype {labels.dtype}; "
                "round/cast the label volume to an integer type"
            )
        voxel = np.asarray(voxel_size_um, dtype=np.float64).reshape(-1)
        if voxel.shape != (3,) or not np.all(np.isfinite(voxel)) or np.any(voxel <= 0):
            raise AtlasError(
                f"atlas {name!r}: voxel_size_um must be 3 positive numbers, got {voxel.tolist()}"
            )
        regions = sorted(regions, key=lambda r: r.id)
        ids = [r.id for r in regions]
        if len(set(ids)) != len(ids):
            dup = sorted({i for i in ids if ids.count(i) > 1})
            raise AtlasError(f"atlas {name!r}: duplicate region ids {dup[:10]} in the region table")
        acr = [r.acronym for r in regions]
        if len(set(acr)) != len(acr):
            dup = sorted({a for a in acr if acr.count(a) > 1})
            raise AtlasError(f"atlas {name!r}: duplicate acronyms {dup[:10]} in the region table")
        self.name = str(name)
        self.labels = labels
        self.voxel_size_um = voxel
        self.regions: list[Region] = list(regions)
        self.source = source
        self._ids = np.asarray(ids, dtype=np.int64)
        self._by_id = {r.id: r for r in regions}
        self._by_acronym = {r.acronym: r for r in regions}
        self._by_acronym_lower = {r.acronym.lower(): r for r in regions}
        self._midline = float(midline_x_um) if midline_x_um is not None else None
        self._mesh_cache: dict[tuple, tuple[np.ndarray, np.ndarray]] = {}
        self._counts: dict[int, int] | None = None
        self._bboxes: dict[int, tuple[slice, slice, slice]] | None = None
        self.memberships = memberships
        if validate:
            self._check_labels_in_table()

    # ------------------------------------------------------------------ geometry
    @property
    def shape(self) -> tuple[int, int, int]:
        """Volume shape in voxels (X, Y, Z)."""
        return tuple(int(s) for s in self.labels.shape)  # type: ignore[return-value]

    @property
    def shape_um(self) -> np.ndarray:
        """(3,) extent of the volume in µm."""
        return np.asarray(self.labels.shape, dtype=np.float64) * self.voxel_size_um

    @property
    def midline_x_um(self) -> float:
        """x of the left/right boundary in µm (left hemisphere is ``x < midline_x_um``)."""
        return self._midline if self._midline is not None else float(self.shape_um[0] / 2)

    @property
    def affine(self) -> np.ndarray:
        """(4, 4) voxel index -> µm of the voxel centre."""
        aff = np.eye(4)
        aff[:3, :3] = np.diag(self.voxel_size_um)
        aff[:3, 3] = self.voxel_size_um / 2
        return aff

    def __repr__(self) -> str:
        return (
            f"Atlas({self.name!r}, shape={self.shape}, "
            f"voxel_size_um={self.voxel_size_um.tolist()}, "
            f"regions={len(self.regions)})"
        )

    # ------------------------------------------------------------------ regions
    def region(self, id_or_acronym: int | str) -> Region:
        """The region with this id or acronym (acronyms also match case-insensitively).

        Parameters
        ----------
        id_or_acronym
            A region id or acronym.

        Returns
        -------
        Region
            The region.
        """
        if isinstance(id_or_acronym, (int, np.integer)) and not isinstance(id_or_acronym, bool):
            reg = self._by_id.get(int(id_or_acronym))
        else:
            key = str(id_or_acronym)
            reg = self._by_acronym.get(key) or self._by_acronym_lower.get(key.lower())
        if reg is None:
            known = ", ".join(r.acronym for r in self.regions[:12])
            more = f" ... ({len(self.regions)} in all)" if len(self.regions) > 12 else ""
            raise AtlasError(
                f"atlas {self.name!r} has no region {id_or_acronym!r}; "
                f"known acronyms: {known}{more}"
            )
        return reg

    @property
    def groups(self) -> list[str]:
        """Top-level groups in table order."""
        return list(dict.fromkeys(r.group for r in self.regions if r.group))

    def regions_in(self, group_or_base: str) -> list[Region]:
        """Regions of a group (``"Mesencephalon"``) or both sides of a base acronym (``"r4"``).

        Parameters
        ----------
        group_or_base
            A group name or a base acronym.

        Returns
        -------
        list[Region]
            In table order.
        """
        return [r for r in self.regions if group_or_base in (r.group, r.base_acronym)]

    # ------------------------------------------------------------------ lookups
    def _voxel_index(self, points_um: np.ndarray | Sequence) -> tuple[np.ndarray, np.ndarray]:
        pts = np.asarray(points_um, dtype=np.float64)
        if pts.ndim == 1 and pts.shape[0] == 3:
            pts = pts[None, :]
        if pts.ndim != 2 or pts.shape[1] != 3:
            raise AtlasError(f"points_um must have shape (M, 3) in µm, got {pts.shape}")
        with np.errstate(invalid="ignore"):
            idx = np.floor(pts / self.voxel_size_um)
            inside = np.all(np.isfinite(idx), axis=1) & np.all(
                (idx >= 0) & (idx < np.asarray(self.labels.shape)), axis=1
            )
        idx = np.where(inside[:, None], idx, 0).astype(np.intp)
        return idx, inside

    def contains(self, points_um: np.ndarray | Sequence) -> np.ndarray:
        """(M,) bool: the point lies inside the volume bounds (not necessarily inside the brain).

        Parameters
        ----------
        points_um
            (M, 3) or (3,) atlas µm.

        Returns
        -------
        np.ndarray
            (M,) bool.
        """
        return self._voxel_index(points_um)[1]

    def region_of(self, points_um: np.ndarray | Sequence) -> np.ndarray:
        """(M,) int64 region ids at ``points_um`` (M, 3); 0 = outside the brain or the volume.

        Parameters
        ----------
        points_um
            (M, 3) or (3,) atlas µm.

        Returns
        -------
        np.ndarray
            (M,) int64 ids.
        """
        idx, inside = self._voxel_index(points_um)
        out = self.labels[idx[:, 0], idx[:, 1], idx[:, 2]].astype(np.int64)
        out[~inside] = 0
        return out

    def acronyms_of(self, points_um: np.ndarray | Sequence) -> np.ndarray:
        """(M,) str acronyms at ``points_um``; ``"outside"`` for label 0 or out-of-volume points.

        Parameters
        ----------
        points_um
            (M, 3) or (3,) atlas µm.

        Returns
        -------
        np.ndarray
            (M,) str.
        """
        return self.acronyms_for_ids(self.region_of(points_um))

    def acronyms_for_ids(self, ids: np.ndarray | Sequence[int]) -> np.ndarray:
        """(M,) acronyms for region ids (0 -> ``"outside"``, unknown ids -> ``"unknown"``).

        Parameters
        ----------
        ids
            (M,) region ids.

        Returns
        -------
        np.ndarray
            (M,) str.
        """
        ids = np.asarray(ids, dtype=np.int64)
        names = np.array([OUTSIDE] + [r.acronym for r in self.regions] + ["unknown"], dtype=object)
        pos = np.searchsorted(self._ids, ids)
        if len(self._ids):
            pos_c = np.clip(pos, 0, len(self._ids) - 1)
            found = self._ids[pos_c] == ids
        else:
            pos_c, found = pos, np.zeros(ids.shape, dtype=bool)
        code = np.where(ids == 0, 0, np.where(found, pos_c + 1, len(names) - 1))
        return names[code].astype(str)

    def all_regions_of(self, points_um: np.ndarray | Sequence) -> list[list[int]]:
        """Every region containing each point (overlapping atlases); ``[]`` when outside.

        Without ``memberships`` this is ``[[region_of(p)]]`` for points inside a region.

        Parameters
        ----------
        points_um
            (M, 3) or (3,) atlas µm.

        Returns
        -------
        list[list[int]]
            Region ids per point.
        """
        ids = self.region_of(points_um)
        if self.memberships is None:
            return [[int(i)] if i else [] for i in ids]
        idx, inside = self._voxel_index(points_um)
        flat = np.ravel_multi_index(tuple(idx.T), self.labels.shape)
        out: list[list[int]] = [[] for _ in range(len(flat))]
        for rid in sorted(self.memberships):
            vox = self.memberships[rid]
            if len(vox) == 0:
                continue
            pos = np.clip(np.searchsorted(vox, flat), 0, len(vox) - 1)
            for j in np.flatnonzero((vox[pos] == flat) & inside):
                out[j].append(int(rid))
        return out

    # ------------------------------------------------------------------ statistics
    def voxel_counts(self) -> dict[int, int]:
        """Voxels per region id (cached).

        Returns
        -------
        dict[int, int]
            Region id -> voxels (regions without voxels left out).
        """
        if self._counts is None:
            flat = self.labels.ravel()
            if flat.size and int(flat.max(initial=0)) < 1_000_000 and int(flat.min(initial=0)) >= 0:
                counts = np.bincount(flat.astype(np.int64, copy=False))
                self._counts = {int(i): int(counts[i]) for i in np.nonzero(counts)[0] if i != 0}
            else:
                u, c = np.unique(flat, return_counts=True)
                self._counts = {int(i): int(n) for i, n in zip(u, c, strict=True) if i != 0}
        return self._counts

    def _check_labels_in_table(self) -> None:
        missing = sorted(set(self.voxel_counts()) - set(self._by_id))
        if missing:
            raise AtlasError(
                f"atlas {self.name!r}: label values {missing[:10]} in the volume have no row in "
                f"the "
                f"region table ({len(missing)} missing); add them to the table"
            )

    def summary(self) -> str:
        """A one-screen text summary: name, shape, voxel size, extent, regions with voxel counts.

        Returns
        -------
        str
            The lines.
        """
        counts = self.voxel_counts()
        vs = " x ".join(f"{v:g}" for v in self.voxel_size_um)
        ext = " x ".join(f"{v:.0f}" for v in self.shape_um)
        lines = [
            f"atlas      {self.name}",
            f"source     {self.source or '-'}",
            f"shape      {' x '.join(map(str, self.shape))} voxels (x, y, z)",
            f"voxel      {vs} µm",
            f"extent     {ext} µm (left→right, rostral→caudal, dorsal→ventral)",
            f"midline    x = {self.midline_x_um:.1f} µm",
            f"regions    {len(self.regions)} in {len(self.groups)} groups, "
            f"{sum(counts.values()):,} brain voxels",
        ]
        # pair left/right rows onto one line
        rows: dict[str, list] = {}
        for r in self.regions:
            key = r.base_acronym if r.side else r.acronym
            row = rows.setdefault(key, [key, r.name, r.group, None, None, None])
            slot = {"L": 3, "R": 4, "": 5}[r.side]
            row[slot] = counts.get(r.id, 0)
            if r.side:
                row[1] = re.sub(r"\s*\((left|right|L|R)\)$", "", r.name)
        limit = 40
        lines.append(f"  {'acronym':<10} {'name':<38} {'group':<16} {'voxels L / R / midline':>24}")
        for key, name, group, left, right, mid in list(rows.values())[:limit]:
            vox = " / ".join("-" if v is None else f"{v:,}" for v in (left, right, mid))
            lines.append(f"  {key:<10.10} {name:<38.38} {group:<16.16} {vox:>24}")
        if len(rows) > limit:
            lines.append(f"  ... {len(rows) - limit} more regions")
        return "\n".join(lines)

    # ------------------------------------------------------------------ meshes
    def _bbox(self, region_id: int) -> tuple[slice, slice, slice] | None:
        if self._bboxes is None:
            from scipy import ndimage

            lab = self.labels
            if int(lab.max(initial=0)) < 100_000 and int(lab.min(initial=0)) >= 0:
                objs = ndimage.find_objects(lab.astype(np.int64, copy=False))
                self._bboxes = {i + 1: s for i, s in enumerate(objs) if s is not None}
            else:
                self._bboxes = {}
                for rid in self.voxel_counts():
                    nz = np.nonzero(lab == rid)
                    self._bboxes[rid] = tuple(slice(int(a.min()), int(a.max()) + 1) for a in nz)
        return self._bboxes.get(int(region_id))

    def _mask_mesh(
        self, mask: np.ndarray, offset: tuple[int, int, int], step: int, smooth: float
    ) -> tuple[np.ndarray, np.ndarray]:
        from scipy import ndimage
        from skimage import measure

        if step > 1:  # decimate: block-average the mask before marching cubes
            pad = [(0, (-s) % step) for s in mask.shape]
            m = np.pad(mask.astype(np.float32), pad)
            sh = m.shape
            m = m.reshape(sh[0] // step, step, sh[1] // step, step, sh[2] // step, step).mean(
                axis=(1, 3, 5)
            )
        else:
            m = mask.astype(np.float32)
        m = np.pad(m, 1)
        if smooth > 0:
            m = ndimage.gaussian_filter(m, smooth)
        if m.max() <= 0.5:
            # tiny region: fall back to the undecimated mask so it still shows up
            if step > 1:
                return self._mask_mesh(mask, offset, 1, smooth)
            return np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32)
        verts, faces, _n, _v = measure.marching_cubes(m, level=0.5)
        # padded coarse index v -> original voxel index (v - 1) * step + (step - 1) / 2 + offset
        idx = (verts - 1.0) * step + (step - 1) / 2.0 + np.asarray(offset, dtype=np.float64)
        verts_um = (idx + 0.5) * self.voxel_size_um
        return verts_um.astype(np.float32), faces.astype(np.int32)

    def _mesh_step(self, step: int | None) -> int:
        if step is not None:
            if int(step) < 1:
                raise AtlasError(f"mesh step must be a positive integer, got {step}")
            return int(step)
        return max(1, int(round(MESH_TARGET_VOXEL_UM / float(self.voxel_size_um.min()))))

    def region_mesh(
        self, region_id: int | str, *, step: int | None = None, smooth: float = 0.6
    ) -> tuple[np.ndarray, np.ndarray]:
        """Surface of one region: ``(vertices_um (V, 3) float32, faces (F, 3) int32)``.

        The mask is block-averaged by ``step`` voxels (default: about 8 µm) before marching
        cubes, so a few hundred to a few thousand vertices per region; cached per atlas object. An
        empty region gives empty arrays.

        Parameters
        ----------
        region_id
            A region id or acronym.
        step
            Block size in voxels (default: about 8 µm).
        smooth
            Gaussian smoothing of the mask before marching cubes, in blocks.

        Returns
        -------
        tuple[np.ndarray, np.ndarray]
            ``(vertices (V, 3) float32 µm, faces (F, 3) int32)``.
        """
        rid = self.region(region_id).id
        st = self._mesh_step(step)
        key = ("region", rid, st, float(smooth))
        if key not in self._mesh_cache:
            bb = self._bbox(rid)
            if bb is None:
                mesh = (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32))
            else:
                mask = self.labels[bb] == rid
                mesh = self._mask_mesh(mask, tuple(s.start for s in bb), st, smooth)
            self._mesh_cache[key] = mesh
        return self._mesh_cache[key]

    def outline_mesh(
        self, *, step: int | None = None, smooth: float = 1.0
    ) -> tuple[np.ndarray, np.ndarray]:
        """Surface of the whole brain (all labels > 0), decimated like :meth:`region_mesh`.

        Parameters
        ----------
        step
            Block size in voxels (default: twice the region meshes').
        smooth
            Smoothing, in blocks.

        Returns
        -------
        tuple[np.ndarray, np.ndarray]
            ``(vertices (V, 3) float32 µm, faces (F, 3) int32)``.
        """
        st = self._mesh_step(step) if step is not None else 2 * self._mesh_step(None)
        key = ("outline", st, float(smooth))
        if key not in self._mesh_cache:
            mask = self.labels > 0
            if not mask.any():
                mesh = (np.zeros((0, 3), np.float32), np.zeros((0, 3), np.int32))
            else:
                nz = [
                    np.nonzero(mask.any(axis=tuple(a for a in range(3) if a != ax)))[0]
                    for ax in range(3)
                ]
                bb = tuple(slice(int(n.min()), int(n.max()) + 1) for n in nz)
                mesh = self._mask_mesh(mask[bb], tuple(s.start for s in bb), st, smooth)
            self._mesh_cache[key] = mesh
        return self._mesh_cache[key]

    def all_region_meshes(
        self, *, step: int | None = None
    ) -> dict[int, tuple[np.ndarray, np.ndarray]]:
        """Meshes of every non-empty region, keyed by id.

        Parameters
        ----------
        step
            Block size in voxels (see :meth:`region_mesh`).

        Returns
        -------
        dict[int, tuple[np.ndarray, np.ndarray]]
            Region id -> (vertices, faces).
        """
        counts = self.voxel_counts()
        return {r.id: self.region_mesh(r.id, step=step) for r in self.regions if counts.get(r.id)}

    # ------------------------------------------------------------------ I/O
    @classmethod
    def load(cls, path: str | Path, *, name: str | None = None) -> Atlas:
        """Load a NIfTI label volume (``.nii``/``.nii.gz``) and its sidecar ``.csv`` region table.

        The affine must be diagonal with positive voxel sizes (our axis convention); the volume's
        origin is taken as the atlas-space origin.

        Parameters
        ----------
        path
            The ``.nii`` / ``.nii.gz`` label volume (its ``.csv`` table beside it).
        name
            The atlas name (default: the NIfTI description, else the file stem).

        Returns
        -------
        Atlas
            The atlas.
        """
        path = Path(path)
        if not path.exists():
            raise AtlasError(
                f"atlas file {path} does not exist; expected a .nii/.nii.gz label volume"
            )
        if not (path.name.endswith(".nii") or path.name.endswith(".nii.gz")):
            raise AtlasError(
                f"atlas file {path}: expected a NIfTI label volume (.nii or .nii.gz), "
                f"found suffix {''.join(path.suffixes) or '(none)'}"
            )
        data, img = read_label_volume(path)
        aff = np.asarray(img.affine, dtype=np.float64)
        lin = aff[:3, :3]
        voxel = np.diag(lin).copy()
        if not np.allclose(
            lin, np.diag(voxel), atol=1e-6 * max(1.0, np.abs(voxel).max())
        ) or np.any(voxel <= 0):
            raise AtlasError(
                f"atlas file {path}: the affine must be diagonal with positive voxel sizes "
                "(x = left→right, y = rostral→caudal, z = dorsal→ventral); found "
                f"{np.round(lin, 4).tolist()}; reorient the volume to that convention first"
            )
        regions = _read_table(sidecar_table_path(path))
        atlas_name = name or _read_descrip(img) or _atlas_stem(path)
        return cls(atlas_name, data, voxel, regions, source=str(path))

    def save(self, path: str | Path) -> Path:
        """Write ``path`` (.nii.gz or .nii) and the sidecar ``.csv`` table, each atomically.

        Parameters
        ----------
        path
            The ``.nii`` / ``.nii.gz`` file (the table goes beside it).

        Returns
        -------
        Path
            ``path``.
        """
        import nibabel as nib

        path = Path(path)
        if not (path.name.endswith(".nii") or path.name.endswith(".nii.gz")):
            raise AtlasError(f"atlas output {path}: use a .nii or .nii.gz file name")
        top = int(self.labels.max(initial=0))
        dtype = np.uint8 if top < 256 else np.uint16 if top < 65536 else np.int32
        img = nib.Nifti1Image(np.asarray(self.labels, dtype=dtype), self.affine)
        img.header.set_xyzt_units("micron")
        img.header["descrip"] = self.name.encode()[:79]
        img.set_qform(self.affine, code=0)
        img.set_sform(self.affine, code=2)
        data = img.to_bytes()
        if path.name.endswith(".gz"):
            data = gzip.compress(data, compresslevel=9, mtime=0)
        with atomic_write_path(path) as tmp:
            tmp.write_bytes(data)
            _make_readable(tmp)
        _write_table(sidecar_table_path(path), self.regions)
        return path


# ---------------------------------------------------------------------- volume and table I/O
def read_label_volume(path: Path) -> tuple[np.ndarray, SpatialImage]:
    """The 3-D integer label array of a NIfTI file and its image (header, affine).

    The one NIfTI reader of the atlas loaders: a trailing singleton 4th axis is dropped; float
    labels are accepted only when every value is a finite whole number (NaN/inf refused).

    Parameters
    ----------
    path
        A ``.nii`` / ``.nii.gz`` label volume.

    Returns
    -------
    tuple[np.ndarray, SpatialImage]
        ``(labels (X, Y, Z) integer array, the nibabel image)``.

    Raises
    ------
    AtlasError
        Unreadable file, not 3-D, or non-integer / non-finite labels.
    """
    import nibabel as nib

    try:
        img = nib.load(str(path))
        data = np.asanyarray(img.dataobj)
    except Exception as exc:  # nibabel raises many types on corrupt files
        raise AtlasError(f"atlas file {path}: not a readable NIfTI file ({exc})") from exc
    if data.ndim == 4 and data.shape[3] == 1:
        data = data[..., 0]
    if data.ndim != 3:
        raise AtlasError(
            f"atlas file {path}: expected a 3-D label volume, found shape {data.shape}"
        )
    if not np.issubdtype(data.dtype, np.integer):
        if not np.all(np.isfinite(data)) or not np.array_equal(data, np.round(data)):
            raise AtlasError(
                f"atlas file {path}: labels must be integers, found non-integer {data.dtype} "
                "values (or NaN/inf); save the label volume with an integer dtype"
            )
        data = data.astype(np.int32)
    return data, img


def _read_descrip(img: SpatialImage) -> str:
    try:
        raw = img.header["descrip"].item()
    except Exception:  # pragma: no cover - header without descrip
        return ""
    text = raw.decode("utf-8", "ignore") if isinstance(raw, bytes) else str(raw)
    return text.strip("\x00 ").strip()


def _read_table(path: Path) -> list[Region]:
    if not path.exists():
        raise AtlasError(
            f"region table {path} not found; an atlas NIfTI needs a sidecar CSV with columns "
            f"{', '.join(TABLE_COLUMNS)} (only id, name are required)"
        )
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        cols = [c.strip().lower() for c in (reader.fieldnames or [])]
        if "id" not in cols or "name" not in cols:
            raise AtlasError(
                f"region table {path}: expected columns {', '.join(TABLE_COLUMNS)}; found "
                f"{', '.join(cols) or '(no header)'}"
            )
        regions = []
        for lineno, raw in enumerate(reader, start=2):
            row = {k.strip().lower(): (v or "").strip() for k, v in raw.items() if k is not None}
            try:
                rid = int(float(row["id"]))
            except ValueError:
                raise AtlasError(
                    f"region table {path} line {lineno}: id must be an integer, got {row['id']!r}"
                ) from None
            color = row.get("color") or "#999999"
            if not color.startswith("#"):
                color = "#" + color
            try:
                regions.append(
                    Region(
                        id=rid,
                        name=row["name"],
                        acronym=row.get("acronym") or row["name"],
                        group=row.get("group", ""),
                        side=row.get("side", "").upper(),
                        color=color,
                    )
                )
            except AtlasError as exc:
                raise AtlasError(f"region table {path} line {lineno}: {exc}") from None
    return regions


def _make_readable(path: Path) -> None:
    """mkstemp creates 0600 files; give the final file the usual umask permissions."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _write_table(path: Path, regions: Sequence[Region]) -> None:
    with atomic_write_path(path, suffix=".csv") as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            w = csv.writer(fh)
            w.writerow(TABLE_COLUMNS)
            for r in regions:
                w.writerow([r.id, r.name, r.acronym, r.group, r.side, r.color])
        _make_readable(tmp)


@functools.cache
def default_atlas() -> Atlas:
    """The shipped schematic larval zebrafish brain (``assets/atlas/``), loaded once per process."""
    if not DEFAULT_ATLAS_PATH.exists():
        raise AtlasError(
            f"the schematic atlas {DEFAULT_ATLAS_PATH} is missing; regenerate it with "
            "`python assets/atlas/build_schematic_atlas.py`"
        )
    return Atlas.load(DEFAULT_ATLAS_PATH)
