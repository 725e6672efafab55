"""Tests for decoding.atlas: lookups, NIfTI round trip, meshes, the shipped schematic brain."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import nibabel as nib
import numpy as np
import pytest

from decoding.atlas import (
    DEFAULT_ATLAS_PATH,
    OUTSIDE,
    Atlas,
    Region,
    default_atlas,
    sidecar_table_path,
)
from decoding.errors import AtlasError

ROOT = Path(__file__).resolve().parents[1]


def _load_build_script():
    name = "build_schematic_atlas"
    if name in sys.modules:
        return sys.modules[name]
    path = ROOT / "assets" / "atlas" / "build_schematic_atlas.py"
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    assert spec.loader is not None
    sys.modules[name] = module  # dataclasses need the module registered while it executes
    spec.loader.exec_module(module)
    return module


@pytest.fixture()
def tiny_atlas() -> Atlas:
    """A 10 x 20 x 6 volume of 10 µm voxels with three regions.

    region 1 "A_L" fills x 0-4 (left half), y 0-9; region 2 "A_R" is its mirror (x 5-9);
    region 3 "B" (unpaired) fills y 10-19 for all x, z 0-2; the rest of z 3-5 at y >= 10 is outside.
    The last voxel (9, 19, 5) is labelled 3 so that a wrapped negative index would hit a region.
    """
    labels = np.zeros((10, 20, 6), dtype=np.uint8)
    labels[0:5, 0:10, :] = 1
    labels[5:10, 0:10, :] = 2
    labels[:, 10:20, 0:3] = 3
    labels[9, 19, 5] = 3
    regions = [
        Region(1, "Alpha (left)", "A_L", "G1", "L", "#ff0000"),
        Region(2, "Alpha (right)", "A_R", "G1", "R", "#00ff00"),
        Region(3, "Beta", "B", "G2", "", "#0000ff"),
    ]
    return Atlas("tiny", labels, (10.0, 10.0, 10.0), regions)


# ---------------------------------------------------------------- tiny fixture
def test_geometry(tiny_atlas: Atlas) -> None:
    assert tiny_atlas.shape == (10, 20, 6)
    np.testing.assert_allclose(tiny_atlas.shape_um, [100, 200, 60])
    assert tiny_atlas.midline_x_um == 50.0
    aff = tiny_atlas.affine
    # voxel (0, 0, 0) centre is at (5, 5, 5) µm; voxel (9, 19, 5) at (95, 195, 55)
    np.testing.assert_allclose(aff @ [0, 0, 0, 1], [5, 5, 5, 1])
    np.testing.assert_allclose(aff @ [9, 19, 5, 1], [95, 195, 55, 1])


def test_region_of_known_points(tiny_atlas: Atlas) -> None:
    pts = np.array(
        [
            [25, 50, 30],  # A_L
            [75, 50, 30],  # A_R
            [49.999, 0, 0],  # last left voxel -> A_L
            [50.0, 0, 0],  # first right voxel -> A_R (voxel covers [50, 60))
            [50, 150, 10],  # B
            [50, 150, 45],  # inside the volume, outside the brain
            [95, 195, 55],  # the last voxel: B
        ]
    )
    np.testing.assert_array_equal(tiny_atlas.region_of(pts), [1, 2, 1, 2, 3, 0, 3])
    assert tiny_atlas.acronyms_of(pts).tolist() == ["A_L", "A_R", "A_L", "A_R", "B", OUTSIDE, "B"]


def test_region_of_out_of_volume_is_outside_never_wrapped(tiny_atlas: Atlas) -> None:
    pts = np.array(
        [
            [-1, -1, -1],  # a wrapped index would read voxel (9, 19, 5), labelled 3
            [-0.01, 50, 30],
            [100, 50, 30],  # x == extent: outside (half-open)
            [50, 200, 10],
            [50, 50, 60],
            [np.nan, 50, 30],
            [np.inf, 50, 30],
            [1e30, 1e30, 1e30],
        ]
    )
    np.testing.assert_array_equal(tiny_atlas.region_of(pts), np.zeros(len(pts)))
    assert set(tiny_atlas.acronyms_of(pts)) == {OUTSIDE}
    assert not tiny_atlas.contains(pts).any()
    assert tiny_atlas.contains([[0, 0, 0], [99.9, 199.9, 59.9]]).all()


def test_region_of_shapes(tiny_atlas: Atlas) -> None:
    assert tiny_atlas.region_of([25, 50, 30]).tolist() == [1]  # a single point
    assert tiny_atlas.region_of(np.zeros((0, 3))).shape == (0,)
    with pytest.raises(AtlasError, match=r"shape \(M, 3\).*\(4, 2\)"):
        tiny_atlas.region_of(np.zeros((4, 2)))


def test_region_lookup(tiny_atlas: Atlas) -> None:
    assert tiny_atlas.region(2).acronym == "A_R"
    assert tiny_atlas.region(np.int64(3)).name == "Beta"
    assert tiny_atlas.region("a_l").id == 1
    assert tiny_atlas.region("A_L").base_acronym == "A"
    assert [r.acronym for r in tiny_atlas.regions_in("A")] == ["A_L", "A_R"]
    assert [r.acronym for r in tiny_atlas.regions_in("G2")] == ["B"]
    assert tiny_atlas.groups == ["G1", "G2"]
    with pytest.raises(AtlasError, match="no region 'Zz'; known acronyms: A_L, A_R, B"):
        tiny_atlas.region("Zz")
    assert tiny_atlas.acronyms_for_ids([0, 3, 99]).tolist() == [OUTSIDE, "B", "unknown"]


def test_voxel_counts_and_summary(tiny_atlas: Atlas) -> None:
    assert tiny_atlas.voxel_counts() == {1: 300, 2: 300, 3: 301}
    text = tiny_atlas.summary()
    assert "tiny" in text and "10 x 20 x 6" in text and "Alpha" in text and "Beta" in text
    assert "300 / 300 / -" in text and "- / - / 301" in text
    assert len(text.splitlines()) < 50


def test_constructor_validation() -> None:
    good = [Region(1, "One", "one")]
    with pytest.raises(AtlasError, match="3-D volume"):
        Atlas("x", np.zeros((3, 3), np.uint8), (1, 1, 1), good)
    with pytest.raises(AtlasError, match="labels must be integers"):
        Atlas("x", np.zeros((3, 3, 3), np.float32), (1, 1, 1), good)
    with pytest.raises(AtlasError, match="voxel_size_um must be 3 positive"):
        Atlas("x", np.zeros((3, 3, 3), np.uint8), (1, 0, 1), good)
    with pytest.raises(AtlasError, match=r"label values \[7\].*no row in the region table"):
        Atlas("x", np.full((3, 3, 3), 7, np.uint8), (1, 1, 1), good)
    with pytest.raises(AtlasError, match="duplicate region ids"):
        Atlas("x", np.zeros((3, 3, 3), np.uint8), (1, 1, 1), good + [Region(1, "Two", "two")])
    with pytest.raises(AtlasError, match="duplicate acronyms"):
        Atlas("x", np.zeros((3, 3, 3), np.uint8), (1, 1, 1), good + [Region(2, "Two", "one")])
    with pytest.raises(AtlasError, match="side must be"):
        Region(1, "One", "one", side="left")
    with pytest.raises(AtlasError, match="color must be"):
        Region(1, "One", "one", color="red")
    with pytest.raises(AtlasError, match="positive integer"):
        Region(0, "One", "one")


# ---------------------------------------------------------------- NIfTI I/O
def test_nifti_round_trip(tiny_atlas: Atlas, tmp_path: Path) -> None:
    out = tiny_atlas.save(tmp_path / "tiny.nii.gz")
    assert sidecar_table_path(out) == tmp_path / "tiny.csv"
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "tiny.csv",
        "tiny.nii.gz",
    ]  # no temp files
    img = nib.load(str(out))
    np.testing.assert_allclose(img.affine, tiny_atlas.affine)
    back = Atlas.load(out)
    assert back.name == "tiny"
    np.testing.assert_array_equal(back.labels, tiny_atlas.labels)
    np.testing.assert_allclose(back.voxel_size_um, tiny_atlas.voxel_size_um)
    assert back.regions == tiny_atlas.regions
    assert back.source == str(out)
    # uncompressed .nii works too
    back2 = Atlas.load(tiny_atlas.save(tmp_path / "plain.nii"))
    np.testing.assert_array_equal(back2.labels, tiny_atlas.labels)


def test_save_is_atomic_and_overwrites(tiny_atlas: Atlas, tmp_path: Path) -> None:
    path = tmp_path / "a.nii.gz"
    tiny_atlas.save(path)
    labels = tiny_atlas.labels.copy()
    labels[labels == 3] = 0
    Atlas("tiny", labels, (10, 10, 10), tiny_atlas.regions).save(path)
    assert Atlas.load(path).voxel_counts() == {1: 300, 2: 300}
    with pytest.raises(AtlasError, match=r"use a \.nii or \.nii\.gz"):
        tiny_atlas.save(tmp_path / "a.h5")


def test_load_errors(tiny_atlas: Atlas, tmp_path: Path) -> None:
    with pytest.raises(AtlasError, match="does not exist"):
        Atlas.load(tmp_path / "missing.nii.gz")
    bad_suffix = tmp_path / "x.tif"
    bad_suffix.write_bytes(b"abc")
    with pytest.raises(AtlasError, match="expected a NIfTI label volume"):
        Atlas.load(bad_suffix)
    junk = tmp_path / "junk.nii.gz"
    junk.write_bytes(b"not a nifti file at all")
    with pytest.raises(AtlasError, match="not a readable NIfTI"):
        Atlas.load(junk)

    # volume without its table
    nib.save(nib.Nifti1Image(tiny_atlas.labels, tiny_atlas.affine), str(tmp_path / "notab.nii.gz"))
    with pytest.raises(AtlasError, match=r"region table .*notab\.csv not found"):
        Atlas.load(tmp_path / "notab.nii.gz")

    # table with wrong columns
    nib.save(nib.Nifti1Image(tiny_atlas.labels, tiny_atlas.affine), str(tmp_path / "cols.nii.gz"))
    (tmp_path / "cols.csv").write_text("label,region\n1,a\n")
    with pytest.raises(AtlasError, match="expected columns id, name"):
        Atlas.load(tmp_path / "cols.nii.gz")

    # a label missing from the table
    (tmp_path / "cols.csv").write_text("id,name\n1,a\n2,b\n")
    with pytest.raises(AtlasError, match=r"label values \[3\]"):
        Atlas.load(tmp_path / "cols.nii.gz")

    # bad id in the table
    (tmp_path / "cols.csv").write_text("id,name\n1,a\nx,b\n")
    with pytest.raises(AtlasError, match="line 3: id must be an integer"):
        Atlas.load(tmp_path / "cols.nii.gz")

    # flipped axis (negative voxel size)
    flip = tiny_atlas.affine.copy()
    flip[0, 0] = -10
    nib.save(nib.Nifti1Image(tiny_atlas.labels, flip), str(tmp_path / "flip.nii.gz"))
    (tmp_path / "flip.csv").write_text("id,name\n1,a\n2,b\n3,c\n")
    with pytest.raises(AtlasError, match="affine must be diagonal with positive voxel sizes"):
        Atlas.load(tmp_path / "flip.nii.gz")


def test_minimal_table_and_float_labels(tiny_atlas: Atlas, tmp_path: Path) -> None:
    """A NIfTI saved as float with integer values + a table of only id, name loads."""
    img = nib.Nifti1Image(tiny_atlas.labels.astype(np.float32), tiny_atlas.affine)
    nib.save(img, str(tmp_path / "f.nii.gz"))
    (tmp_path / "f.csv").write_text("ID,Name,Color\n1,a,ff0000\n2,b,\n3,c,#00ff00\n")
    atlas = Atlas.load(tmp_path / "f.nii.gz", name="floaty")
    assert atlas.name == "floaty"
    assert atlas.labels.dtype.kind == "i"
    assert atlas.region(1).color == "#ff0000" and atlas.region(2).color == "#999999"
    assert atlas.region("a").side == ""


# ---------------------------------------------------------------- meshes
def test_region_mesh_sanity(tiny_atlas: Atlas) -> None:
    verts, faces = tiny_atlas.region_mesh("A_L", step=1)
    assert verts.dtype == np.float32 and faces.dtype == np.int32
    assert verts.shape[1] == 3 and faces.shape[1] == 3 and len(faces) > 0
    assert faces.min() >= 0 and faces.max() < len(verts)
    # the surface hugs the region's box x in [0, 50], y in [0, 100], z in [0, 60] (µm)
    assert verts[:, 0].min() >= -10 and verts[:, 0].max() <= 55
    assert verts[:, 1].min() >= -10 and verts[:, 1].max() <= 105
    assert tiny_atlas.region_mesh("A_L", step=1) is tiny_atlas.region_mesh(1, step=1)  # cached
    ov, of = tiny_atlas.outline_mesh(step=1)
    assert len(ov) > 0 and of.max() < len(ov)


def test_empty_region_mesh() -> None:
    labels = np.zeros((4, 4, 4), np.uint8)
    labels[1:3, 1:3, 1:3] = 1
    atlas = Atlas("e", labels, (5, 5, 5), [Region(1, "one", "one"), Region(2, "two", "two")])
    verts, faces = atlas.region_mesh("two")
    assert verts.shape == (0, 3) and faces.shape == (0, 3)
    assert set(atlas.all_region_meshes()) == {1}


# ---------------------------------------------------------------- the shipped schematic brain
def test_default_atlas_loads_and_is_cached() -> None:
    atlas = default_atlas()
    assert atlas is default_atlas()
    assert atlas.name == "schematic_zfish_6dpf"
    np.testing.assert_allclose(atlas.shape_um, [496, 1120, 280])
    assert len(atlas.regions) == 42
    assert DEFAULT_ATLAS_PATH.stat().st_size < 300_000


def test_schematic_region_names() -> None:
    atlas = default_atlas()
    want = {
        "Pal", "SPal", "Hb", "Pt", "Th", "Hyp", "TeO_PVL", "TeO_NP", "TS", "Teg", "nMLF", "Cb",
        "r1", "r2", "r3", "r4", "r5", "r6", "r7", "IO", "AP", "SC",
    }  # fmt: skip
    assert {r.base_acronym for r in atlas.regions} == want
    assert atlas.groups == [
        "Telencephalon", "Diencephalon", "Mesencephalon", "Rhombencephalon", "Spinal Cord",
    ]  # fmt: skip
    for r in atlas.regions:
        assert atlas.voxel_counts().get(r.id, 0) > 100, r.acronym


def test_schematic_centres_map_to_their_region() -> None:
    """The centre of each shape the build script placed maps to that region (left and right)."""
    build = _load_build_script()
    atlas = default_atlas()
    mid = atlas.midline_x_um
    for acr, _name, _group, paired, _color, shapes in build.REGIONS:
        shape = shapes[0]
        if isinstance(shape, build.Blob):
            off, y, z = shape.off, shape.y, shape.z
        else:  # a tube segment: halfway between midline and the lateral edge, middle of the slab
            y = (shape.y0 + min(shape.y1, 1119)) / 2
            t = np.clip((y - shape.y_a) / (shape.y_b - shape.y_a), 0, 1)
            z = shape.z_a + t * (shape.z_b - shape.z_a)
            off = (shape.rx_a + t * (shape.rx_b - shape.rx_a)) / 2
        pts = [[mid - off, y, z], [mid + off, y, z]]
        expect = [f"{acr}_L", f"{acr}_R"] if paired else [acr, acr]
        assert atlas.acronyms_of(pts).tolist() == expect, acr


def test_schematic_rostro_caudal_order() -> None:
    atlas = default_atlas()
    centroid_y = {}
    for r in atlas.regions:
        idx = np.argwhere(atlas.labels == r.id)
        centroid_y[r.base_acronym] = (idx[:, 1].mean() + 0.5) * atlas.voxel_size_um[1]
    order = ["Pal", "Hb", "Pt", "TeO_PVL", "Cb", "r3", "r5", "r7", "SC"]
    ys = [centroid_y[a] for a in order]
    assert ys == sorted(ys)
    for a in ("r1", "r2", "r3", "r4", "r5", "r6"):
        assert centroid_y[a] < centroid_y["r" + str(int(a[1]) + 1)]


def test_schematic_is_left_right_symmetric() -> None:
    atlas = default_atlas()
    lut = np.arange(256)
    for r in atlas.regions:
        if r.side == "L":
            lut[r.id] = atlas.region(f"{r.base_acronym}_R").id
        elif r.side == "R":
            lut[r.id] = atlas.region(f"{r.base_acronym}_L").id
    np.testing.assert_array_equal(lut[atlas.labels[::-1]], atlas.labels)
    # left regions lie left of the midline
    for r in atlas.regions:
        xs = (np.argwhere(atlas.labels == r.id)[:, 0] + 0.5) * atlas.voxel_size_um[0]
        if r.side == "L":
            assert xs.max() < atlas.midline_x_um
        elif r.side == "R":
            assert xs.min() > atlas.midline_x_um


def test_schematic_meshes_are_browser_sized() -> None:
    atlas = default_atlas()
    meshes = atlas.all_region_meshes()
    assert len(meshes) == 42
    n_verts = sum(len(v) for v, _f in meshes.values())
    assert 5_000 < n_verts < 60_000
    for rid, (verts, faces) in meshes.items():
        assert len(faces) > 0 and faces.max() < len(verts)
        # mesh vertices lie near the region: most map to it or to a neighbour within one voxel
        assert np.all(verts >= -8) and np.all(verts <= atlas.shape_um + 8), rid
    ov, _of = atlas.outline_mesh()
    assert 500 < len(ov) < 20_000
    lo, hi = ov.min(axis=0), ov.max(axis=0)
    assert lo[1] < 120 and hi[1] > 1050  # spans telencephalon to spinal cord


def test_shipped_asset_matches_build_script(tmp_path: Path) -> None:
    build = _load_build_script()
    fresh = build.build_schematic_atlas(4.0)
    shipped = default_atlas()
    np.testing.assert_array_equal(fresh.labels, shipped.labels)
    assert fresh.regions == shipped.regions
    # the script's main writes a loadable pair of files
    assert build.main(["--voxel-um", "8", "--out", str(tmp_path / "s.nii.gz")]) == 0
    coarse = Atlas.load(tmp_path / "s.nii.gz")
    assert coarse.shape == (62, 140, 35)
