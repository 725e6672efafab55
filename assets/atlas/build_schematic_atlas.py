"""Build the schematic larval zebrafish reference brain shipped in ``assets/atlas/``.

    python assets/atlas/build_schematic_atlas.py [--voxel-um 4] [--out FILE.nii.gz]

A *schematic* 6-7 dpf brain: regions named after the Z-Brain atlas's top groups and regions
(Randlett et al. 2015), modelled as (super)ellipsoids and tube segments with plausible relative
placement and proportions, in a 496 x 1120 x 280 µm volume (the extent of Z-Brain: 621 x 1406 x
138 voxels of 0.798 x 0.798 x 2 µm). It is not a registration target: use it for display, demo
fish and tests; load a real atlas (Z-Brain, mapzebrain) through the same ``Atlas`` object.

Axes (atlas space): x = left→right, y = rostral→caudal, z = dorsal→ventral, µm from the volume
corner. Every shape below is given for the LEFT side as (offset from the midline, y, z) in µm; the
right side is its exact mirror image, so the atlas is left/right symmetric by construction. Shapes
are painted in order, later shapes overwriting earlier ones (small nuclei inside larger regions come
last).
"""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a plain script from anywhere
    sys.path.insert(0, str(ROOT))

from decoding.atlas import Atlas, Region, sidecar_table_path  # noqa: E402

NAME = "schematic_zfish_6dpf"
EXTENT_UM = (496.0, 1120.0, 280.0)  # x (left→right), y (rostral→caudal), z (dorsal→ventral)
DEFAULT_OUT = Path(__file__).resolve().parent / f"{NAME}.nii.gz"


def _inside(p: float, *scaled: np.ndarray) -> np.ndarray:
    """Superellipse test: ``sum |d|^p <= 1`` over the offsets ``d`` already divided by radii."""
    return sum(np.abs(d) ** p for d in scaled) <= 1.0


class Shape(Protocol):
    """A painted shape: which voxel centres it covers."""

    def mask(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, mid: float) -> np.ndarray:
        """Which of the voxel centres lie inside the shape.

        Parameters
        ----------
        x, y, z
            Voxel centre coordinates, µm (arrays of one shape).
        mid
            The midline x, µm.

        Returns
        -------
        np.ndarray
            bool, the shape of ``x``.
        """
        ...


@dataclass(frozen=True)
class Blob:
    """A superellipsoid: |dx/rx|^p + |dy/ry|^p + |dz/rz|^p <= 1 (p = 2: ellipsoid)."""

    off: float  # distance of the centre from the midline, towards the LEFT (µm); 0 = on the midline
    y: float
    z: float
    rx: float
    ry: float
    rz: float
    p: float = 2.0

    def mask(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, mid: float) -> np.ndarray:
        """Inside the blob (:meth:`Shape.mask`; the centre lies ``off`` left of the midline)."""
        cx = mid - self.off
        return _inside(self.p, (x - cx) / self.rx, (y - self.y) / self.ry, (z - self.z) / self.rz)


@dataclass(frozen=True)
class Tube:
    """A segment [y0, y1) of a tube along y whose elliptic cross-section tapers linearly.

    The tube is centred on the midline; (rx, rz, z) are given at y = y_a and y = y_b and
    interpolated in between.
    """

    y0: float
    y1: float
    y_a: float
    y_b: float
    z_a: float
    z_b: float
    rx_a: float
    rx_b: float
    rz_a: float
    rz_b: float
    p: float = 2.4

    def mask(self, x: np.ndarray, y: np.ndarray, z: np.ndarray, mid: float) -> np.ndarray:
        """Inside the tube segment (:meth:`Shape.mask`; centred on the midline)."""
        t = np.clip((y - self.y_a) / (self.y_b - self.y_a), 0.0, 1.0)
        zc = self.z_a + t * (self.z_b - self.z_a)
        rx = self.rx_a + t * (self.rx_b - self.rx_a)
        rz = self.rz_a + t * (self.rz_b - self.rz_a)
        return _inside(self.p, (x - mid) / rx, (z - zc) / rz) & (y >= self.y0) & (y < self.y1)


# hindbrain: one tapering tube cut into rhombomeres (rostral r1 under the cerebellum ... r7)
HB = dict(y_a=590.0, y_b=1000.0, z_a=165.0, z_b=170.0, rx_a=150.0, rx_b=80.0, rz_a=80.0, rz_b=58.0)
RHOMBOMERE_EDGES = (590.0, 665.0, 720.0, 775.0, 830.0, 880.0, 930.0, 1000.0)

# (acronym, name, group, paired, colour, shapes); order = paint order
REGIONS: list[tuple[str, str, str, bool, str, list[Shape]]] = [
    ("Pal", "Pallium", "Telencephalon", True, "#2e8b57", [Blob(52, 150, 88, 58, 85, 52)]),
    ("SPal", "Subpallium", "Telencephalon", True, "#66cdaa", [Blob(32, 170, 145, 40, 68, 40)]),
    ("Hb", "Habenula", "Diencephalon", True, "#ffd700", [Blob(34, 250, 58, 28, 32, 28)]),
    ("Th", "Thalamus", "Diencephalon", True, "#ff8c00", [Blob(38, 300, 130, 42, 52, 46)]),
    ("Pt", "Pretectum", "Diencephalon", True, "#ff4500", [Blob(88, 322, 112, 52, 55, 50)]),
    ("Hyp", "Hypothalamus", "Diencephalon", False, "#d2691e", [Blob(0, 360, 222, 96, 112, 50)]),
    ("Teg", "Tegmentum", "Mesencephalon", True, "#9370db", [Blob(42, 480, 192, 55, 115, 50)]),
    (
        "TeO_NP",
        "Tectum Neuropil",
        "Mesencephalon",
        True,
        "#87ceeb",
        [Blob(152, 470, 95, 68, 128, 72)],
    ),
    (
        "TeO_PVL",
        "Tectum Stratum Periventriculare",
        "Mesencephalon",
        True,
        "#1e90ff",
        [Blob(86, 475, 118, 62, 122, 76)],
    ),
    (
        "TS",
        "Torus Semicircularis",
        "Mesencephalon",
        True,
        "#4b0082",
        [Blob(62, 550, 172, 40, 45, 34)],
    ),
    (
        "nMLF",
        "Nucleus of the Medial Longitudinal Fascicle",
        "Mesencephalon",
        True,
        "#ff1493",
        [Blob(18, 420, 168, 17, 24, 18)],
    ),
]
for _i in range(7):
    REGIONS.append(
        (
            f"r{_i + 1}",
            f"Rhombomere {_i + 1}",
            "Rhombencephalon",
            True,
            ["#b22222", "#cd5c5c", "#e9967a", "#f08080", "#fa8072", "#dc143c", "#a0522d"][_i],
            [Tube(RHOMBOMERE_EDGES[_i], RHOMBOMERE_EDGES[_i + 1], **HB)],
        )
    )
REGIONS += [
    ("Cb", "Cerebellum", "Rhombencephalon", True, "#6b8e23", [Blob(92, 645, 72, 104, 50, 44, 2.4)]),
    ("IO", "Inferior Olive", "Rhombencephalon", True, "#8b008b", [Blob(24, 960, 226, 22, 36, 18)]),
    ("AP", "Area Postrema", "Rhombencephalon", False, "#daa520", [Blob(0, 952, 108, 34, 30, 20)]),
    (
        "SC",
        "Spinal Cord",
        "Spinal Cord",
        True,
        "#708090",
        [Tube(1000, 1121, 1000, 1120, 170, 175, 44, 36, 42, 36)],
    ),
]


def build_schematic_atlas(voxel_um: float = 4.0) -> Atlas:
    """Paint the schematic brain at ``voxel_um`` isotropic voxels; returns an :class:`Atlas`.

    Parameters
    ----------
    voxel_um
        Isotropic voxel size, µm (must give an even number of x voxels).

    Returns
    -------
    Atlas
        The schematic atlas.
    """
    shape = tuple(int(round(e / voxel_um)) for e in EXTENT_UM)
    if shape[0] % 2:
        raise ValueError(f"voxel size {voxel_um} µm gives an odd number of x voxels {shape[0]}")
    mid = shape[0] * voxel_um / 2
    half = shape[0] // 2
    # voxel centres of the LEFT half only; the right half is mirrored afterwards
    xs = (np.arange(half) + 0.5) * voxel_um
    ys = (np.arange(shape[1]) + 0.5) * voxel_um
    zs = (np.arange(shape[2]) + 0.5) * voxel_um
    X, Y, Z = np.meshgrid(xs, ys, zs, indexing="ij")

    regions: list[Region] = []
    left = np.zeros((half, shape[1], shape[2]), dtype=np.uint8)
    right_id: dict[int, int] = {}
    next_id = 1
    for acr, name, group, paired, color, shapes in REGIONS:
        if paired:
            lid, rid = next_id, next_id + 1
            regions.append(Region(lid, f"{name} (left)", f"{acr}_L", group, "L", color))
            regions.append(Region(rid, f"{name} (right)", f"{acr}_R", group, "R", color))
            right_id[lid] = rid
            next_id += 2
        else:
            lid = next_id
            regions.append(Region(lid, name, acr, group, "", color))
            right_id[lid] = lid
            next_id += 1
        for shape_ in shapes:
            left[shape_.mask(X, Y, Z, mid)] = lid

    lut = np.arange(256, dtype=np.uint8)
    for lid, rid in right_id.items():
        lut[lid] = rid
    right = lut[left[::-1]]
    labels = np.concatenate([left, right], axis=0)
    return Atlas(NAME, labels, (voxel_um,) * 3, regions, source="build_schematic_atlas.py")


def main(argv: list[str] | None = None) -> int:
    """Build the atlas and write it (``--voxel-um``, ``--out``); print its summary.

    Parameters
    ----------
    argv
        The command line (default: ``sys.argv``).

    Returns
    -------
    int
        The exit status (0).
    """
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--voxel-um", type=float, default=4.0, help="isotropic voxel size (µm)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT, help="output .nii.gz (+ sidecar .csv)")
    args = ap.parse_args(argv)
    atlas = build_schematic_atlas(args.voxel_um)
    atlas.save(args.out)
    print(atlas.summary())
    size = args.out.stat().st_size + sidecar_table_path(args.out).stat().st_size
    print(f"wrote {args.out} ({size / 1024:.0f} KB with its table)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
