"""Real-atlas loaders: Z-Brain MaskDatabase.mat (v7.3), BrainGlobe folders, any NIfTI + CSV."""

from __future__ import annotations

import json
from pathlib import Path

import h5py
import nibabel as nib
import numpy as np
import pytest

from decoding.atlas import DEFAULT_ATLAS_PATH, default_atlas
from decoding.atlas_loaders import (
    ZBRAIN_VOXEL_UM,
    atlas_loader_names,
    load_atlas,
    reorient,
)
from decoding.errors import AtlasError
from decoding.importers.fixtures import write_brainglobe_atlas, write_zbrain_maskdb


def _zb_point(row: int, col: int, z: int) -> list[float]:
    """Centre (atlas µm) of Z-Brain voxel (row, col, z), 0-based."""
    vx, vy, vz = ZBRAIN_VOXEL_UM
    return [(col + 0.5) * vx, (row + 0.5) * vy, (z + 0.5) * vz]


def test_registry() -> None:
    assert atlas_loader_names() == ["nifti", "zbrain", "brainglobe"]
    with pytest.raises(AtlasError, match="unknown atlas format 'x'"):
        load_atlas(DEFAULT_ATLAS_PATH, format="x")


def test_reorient_orientations() -> None:
    vol = np.arange(24).reshape(2, 3, 4)  # axes (a->p, s->i, r->l) for "asr"
    out, vox = reorient(vol, np.array([1.0, 2.0, 3.0]), "asr")
    assert out.shape == (4, 2, 3)  # (x, y, z)
    np.testing.assert_array_equal(vox, [3.0, 1.0, 2.0])
    # our x = left->right: source axis 2 runs right->left, so it is flipped
    assert out[0, 0, 0] == vol[0, 0, 3] and out[3, 1, 2] == vol[1, 2, 0]
    same, _ = reorient(vol, np.ones(3), "las")
    np.testing.assert_array_equal(same, vol)
    with pytest.raises(AtlasError, match="one of each pair a/p, s/i, l/r"):
        reorient(vol, np.ones(3), "aal")


# ---------------------------------------------------------------- Z-Brain
def test_zbrain_maskdatabase(tmp_path: Path) -> None:
    info = write_zbrain_maskdb(tmp_path / "MaskDatabase.mat")
    with open(tmp_path / "MaskDatabase.mat", "rb") as fh:
        assert fh.read(19) == b"MATLAB 7.3 MAT-file"
    atlas = load_atlas(tmp_path / "MaskDatabase.mat")
    assert atlas.name == "zbrain" and atlas.shape == (30, 60, 10)
    np.testing.assert_allclose(atlas.voxel_size_um, ZBRAIN_VOXEL_UM)
    assert [r.name for r in atlas.regions] == [n.strip() for n in info["names"]]
    assert atlas.region(2).acronym == "Rhombomere 1" and atlas.region(2).group == "Rhombencephalon"
    assert atlas.region(1).acronym == "Rhombencephalon"
    # a point in rhombomere 1 (inside the larger rhombencephalon mask): most specific wins
    p_r1 = _zb_point(32, 10, 3)
    p_rh = _zb_point(55, 2, 9)  # rhombencephalon only
    p_hb = _zb_point(6, 3, 1)  # habenula, left (small col)
    p_out = _zb_point(20, 20, 2)
    pts = [p_r1, p_rh, p_hb, p_out, [-5, 10, 3]]
    assert atlas.acronyms_of(pts).tolist() == [
        "Rhombomere 1",
        "Rhombencephalon",
        "Habenula",
        "outside",
        "outside",
    ]
    assert atlas.all_regions_of(pts) == [[1, 2], [1], [3], [], []]
    # every mask voxel is a member, whatever label won the colouring
    m = info["masks"]["Rhombencephalon - "]
    assert len(atlas.memberships[1]) == int(m.sum())
    assert atlas.region_mesh(3, step=1)[0].shape[0] > 0


def test_zbrain_orientation_and_downsampling(tmp_path: Path) -> None:
    write_zbrain_maskdb(tmp_path / "MaskDatabase.mat")
    flipped = load_atlas(tmp_path / "MaskDatabase.mat", orientation="ars")
    # col 0 is now the right side: the habenula (cols 2-9) lands at large x
    hb = np.argwhere(flipped.labels == 3)
    assert hb[:, 0].min() >= 30 - 10
    coarse = load_atlas(tmp_path, voxel_um=1.6)  # the folder works too
    assert coarse.shape == (15, 30, 10)
    np.testing.assert_allclose(coarse.voxel_size_um, [1.596, 1.596, 2.0])
    assert "downsampled" in coarse.source
    assert coarse.acronyms_of([_zb_point(32, 10, 3)]).tolist() == ["Rhombomere 1"]


def test_zbrain_errors(tmp_path: Path) -> None:
    p = tmp_path / "MaskDatabase.mat"
    p.write_bytes(b"MATLAB 5.0 MAT-file")
    with pytest.raises(AtlasError, match=r"not a MATLAB v7.3 \(HDF5\) file"):
        load_atlas(p)
    write_zbrain_maskdb(p)
    with h5py.File(p, "a") as f:
        del f["MaskDatabaseNames"]
    with pytest.raises(AtlasError, match="missing 'MaskDatabaseNames'"):
        load_atlas(p)
    write_zbrain_maskdb(p)
    with h5py.File(p, "a") as f:
        del f["height"]
        f["height"] = np.array([[61.0]])
    with pytest.raises(AtlasError, match=r"MaskDatabase has 18000 rows but height\*width\*Zs"):
        load_atlas(p)
    write_zbrain_maskdb(p)
    with h5py.File(p, "a") as f:
        del f["MaskDatabase"]
        f["MaskDatabase"] = np.zeros(3)
    with pytest.raises(AtlasError, match="expected a sparse 'MaskDatabase'"):
        load_atlas(p)


# ---------------------------------------------------------------- BrainGlobe
def test_brainglobe_folder(tmp_path: Path) -> None:
    info = write_brainglobe_atlas(tmp_path / "test_zfish_2um_v1.0")
    atlas = load_atlas(tmp_path / "test_zfish_2um_v1.0")
    ann = info["annotation_asr"]  # (a->p, s->i, r->l)
    assert atlas.name == "test_zfish" and atlas.shape == (ann.shape[2], ann.shape[0], ann.shape[1])
    np.testing.assert_array_equal(atlas.labels, np.transpose(ann, (2, 0, 1))[::-1])
    # "rhombomere 3 right" sat at small axis-2 indices (right side): now right of the midline
    xs = np.argwhere(atlas.labels == 20)[:, 0]
    assert xs.min() * atlas.voxel_size_um[0] >= atlas.midline_x_um
    assert atlas.region(20).side == "R" and atlas.region(21).side == "L"
    assert atlas.region("Tel").group == "forebrain" and atlas.region("r3L").group == "hindbrain"
    assert atlas.region("Tel").color == "#00c800"
    # a point in the telencephalon: asr voxel (a=5, s=8, r=10) -> x = R-1-10, y = 5, z = 8
    R = ann.shape[2]
    p = [((R - 1 - 10) + 0.5) * 2, (5 + 0.5) * 2, (8 + 0.5) * 2]
    assert atlas.acronyms_of([p]).tolist() == ["Tel"]
    coarse = load_atlas(tmp_path / "test_zfish_2um_v1.0", voxel_um=4)
    assert coarse.shape == (15, 20, 10)


def test_brainglobe_errors(tmp_path: Path) -> None:
    d = tmp_path / "bg"
    write_brainglobe_atlas(d)
    meta = json.loads((d / "metadata.json").read_text())
    meta["orientation"] = "xyz"
    (d / "metadata.json").write_text(json.dumps(meta))
    with pytest.raises(AtlasError, match="orientation must be 3 letters"):
        load_atlas(d)
    meta["orientation"] = "asr"
    (d / "metadata.json").write_text(json.dumps(meta))
    structs = json.loads((d / "structures.json").read_text())
    (d / "structures.json").write_text(json.dumps([s for s in structs if s["id"] != 21]))
    with pytest.raises(AtlasError, match=r"annotation labels \[21\] have no structure entry"):
        load_atlas(d)
    (d / "annotation.tiff").unlink()
    with pytest.raises(AtlasError, match="not a BrainGlobe atlas folder"):
        load_atlas(d, format="brainglobe")
    with pytest.raises(AtlasError, match="not a BrainGlobe atlas"):
        load_atlas(tmp_path / "bg")


# ---------------------------------------------------------------- NIfTI + CSV
def test_nifti_any_orientation(tmp_path: Path) -> None:
    atlas = default_atlas()
    # store the brain with z running ventral->dorsal and an affine that says so in RAS terms:
    # axis 0 -> R(ight), axis 1 -> P(osterior, our y), axis 2 -> S(uperior, flipped from ours)
    ras = atlas.labels[:, :, ::-1]
    aff = np.diag([4.0, -4.0, 4.0, 1.0])
    nib.save(nib.Nifti1Image(ras.astype(np.int16), aff), str(tmp_path / "ras.nii.gz"))
    table = tmp_path / "regions.csv"
    table.write_text(
        "id,name,acronym\n" + "\n".join(f"{r.id},{r.name},{r.acronym}" for r in atlas.regions)
    )
    loaded = load_atlas(tmp_path / "ras.nii.gz", table=table)
    np.testing.assert_array_equal(loaded.labels, atlas.labels)
    assert loaded.name == "ras"
    # explicit orientation wins over the affine
    forced = load_atlas(tmp_path / "ras.nii.gz", table=table, orientation="las")
    np.testing.assert_array_equal(forced.labels, ras)
    # our own files load through the same entry point
    own = load_atlas(DEFAULT_ATLAS_PATH)
    np.testing.assert_array_equal(own.labels, atlas.labels)
    with pytest.raises(AtlasError, match="region table .*ras.csv not found"):
        load_atlas(tmp_path / "ras.nii.gz")



@pytest.mark.parametrize("loader", ["load_atlas", "Atlas.load"])
def test_nifti_labels_must_be_finite_whole_numbers(tmp_path: Path, loader: str) -> None:
    """Both NIfTI entry points share one label reader: NaN and fractions are refused."""
    from decoding.atlas import Atlas

    read = load_atlas if loader == "load_atlas" else Atlas.load
    (tmp_path / "f.csv").write_text("id,name,acronym\n1,One,one\n")
    whole = np.zeros((4, 4, 4), np.float32)
    whole[1:3, 1:3, 1:3] = 1.0
    nib.save(nib.Nifti1Image(whole, np.eye(4)), str(tmp_path / "f.nii.gz"))
    assert read(tmp_path / "f.nii.gz").voxel_counts() == {1: 8}
    for bad in (np.nan, 0.5, np.inf):
        vol = whole.copy()
        vol[0, 0, 0] = bad
        nib.save(nib.Nifti1Image(vol, np.eye(4)), str(tmp_path / "f.nii.gz"))
        with pytest.raises(AtlasError, match="labels must be integers.*NaN/inf"):
            read(tmp_path / "f.nii.gz")

def test_guessing_and_cli(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from decoding.cli import main

    with pytest.raises(AtlasError, match="cannot tell the atlas format"):
        load_atlas(Path(__file__))
    with pytest.raises(AtlasError, match="does not exist"):
        load_atlas(tmp_path / "nope.nii.gz")
    write_zbrain_maskdb(tmp_path / "MaskDatabase.mat")
    assert main(["atlas-info", str(tmp_path / "MaskDatabase.mat")]) == 0
    out = capsys.readouterr().out
    assert "zbrain" in out and "Rhombomere 1" in out and "30 x 60 x 10" in out
    assert main(["atlas-info", str(DEFAULT_ATLAS_PATH)]) == 0
    assert "schematic_zfish_6dpf" in capsys.readouterr().out
    assert main(["atlas-info", str(tmp_path / "none")]) == 2
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_zbrain_full_size_geometry(tmp_path: Path) -> None:
    """The real Z-Brain grid (1406 x 621 x 138 voxels) is downsampled in-plane by default."""
    H, W, Z = 1406, 621, 138

    def box(r0: int, r1: int, c0: int, c1: int, z0: int, z1: int) -> np.ndarray:
        r, c, z = np.meshgrid(
            np.arange(r0, r1), np.arange(c0, c1), np.arange(z0, z1), indexing="ij"
        )
        return (r + c * H + z * H * W).ravel()

    masks = {
        "Rhombencephalon - ": box(700, 1300, 150, 470, 20, 120),
        "Rhombencephalon - Rhombomere 1": box(700, 800, 200, 420, 30, 100),
        "Diencephalon - Habenula": box(300, 340, 250, 300, 10, 30),
    }
    write_zbrain_maskdb(tmp_path / "MaskDatabase.mat", height=H, width=W, zs=Z, masks=masks)
    atlas = load_atlas(tmp_path / "MaskDatabase.mat")
    assert atlas.shape == (311, 703, 138)
    np.testing.assert_allclose(atlas.voxel_size_um, [1.596, 1.596, 2.0])
    p = _zb_point(750, 300, 50)
    assert atlas.acronyms_of([p]).tolist() == ["Rhombomere 1"]
    assert atlas.all_regions_of([p]) == [[1, 2]]
