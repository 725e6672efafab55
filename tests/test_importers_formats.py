"""suite2p, Chen et al. 2018 and NWB importers: round trips and refusals on real-format fixtures."""

from __future__ import annotations

import shutil
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from decoding.errors import ImportError_
from decoding.importers import import_recording
from decoding.importers.chen2018 import STIM_CODES
from decoding.importers.fixtures import write_chen2018, write_nwb, write_suite2p
from decoding.recording import load_recording

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


# ---------------------------------------------------------------- suite2p
@pytest.fixture()
def s2p(tmp_path: Path) -> dict:
    return write_suite2p(tmp_path, n_rois=60, n_frames=50, n_planes=2)


def test_suite2p_round_trip(s2p: dict, tmp_path: Path) -> None:
    out = tmp_path / "s2p.h5"
    res = import_recording("suite2p", tmp_path, out, behavior=tmp_path / "behavior.csv")
    rec = load_recording(out)
    assert rec.n_neurons == s2p["n_cells"] and rec.n_frames == 50
    assert rec.frame_rate_hz == 2.5 and rec.behavior_names == ["swim_left", "swim_right"]
    np.testing.assert_allclose(rec.behavior[:, 0], s2p["behavior"]["swim_left"], rtol=1e-6)
    # neuropil-corrected ΔF/F of the first cell of plane0
    d = s2p["root"] / "plane0"
    F, Fneu = np.load(d / "F.npy"), np.load(d / "Fneu.npy")
    first = int(np.flatnonzero(np.load(d / "iscell.npy")[:, 0] > 0.5)[0])
    c = F[first] - 0.7 * Fneu[first]
    base = np.percentile(c, 10)
    np.testing.assert_allclose(rec.activity[:, 0], (c - base) / base, rtol=1e-4, atol=1e-5)
    assert rec.neuron_ids[0] == first
    assert "plane0:" in res.report.text() and "classified as cells" in res.report.text()
    # all ROIs / probability threshold
    rec_all = import_recording(
        "suite2p", tmp_path, behavior=tmp_path / "behavior.csv", all_rois=True
    ).recording
    assert rec_all.n_neurons == s2p["n_rois"]


def test_suite2p_behavior_with_frame_column_and_epochs(s2p: dict, tmp_path: Path) -> None:
    beh = pd.DataFrame({"frame": np.repeat(np.arange(50), 4), "tail": np.arange(200.0)})
    beh.to_csv(tmp_path / "tail.csv", index=False)
    (tmp_path / "epochs.csv").write_text("name,start,stop\nforward,0,10\nleft,20,30\n")
    rec = import_recording(
        "suite2p", tmp_path, behavior=tmp_path / "tail.csv", epochs=tmp_path / "epochs.csv"
    ).recording
    np.testing.assert_allclose(rec.behavior[:3, 0], [1.5, 5.5, 9.5])
    assert [(e.name, e.start, e.stop) for e in rec.epochs] == [("forward", 0, 10), ("left", 20, 30)]
    with h5py.File(tmp_path / "beh.h5", "w") as f:
        f.create_dataset("swim/power", data=np.ones((50, 3)))
    rec = import_recording(
        "suite2p", tmp_path, behavior=f"{tmp_path / 'beh.h5'}:swim/power"
    ).recording
    assert rec.behavior_names == ["swim_power_0", "swim_power_1", "swim_power_2"]


def test_suite2p_refusals(s2p: dict, tmp_path: Path) -> None:
    beh = tmp_path / "behavior.csv"
    pd.DataFrame({"a": np.zeros(49)}).to_csv(tmp_path / "short.csv", index=False)
    with pytest.raises(ImportError_, match="49 rows but the imaging has 50 frames"):
        import_recording("suite2p", tmp_path, behavior=tmp_path / "short.csv")
    with pytest.raises(ImportError_, match="no such file"):
        import_recording("suite2p", tmp_path, behavior=tmp_path / "missing.csv")
    with pytest.raises(ImportError_, match=r"--behavior-columns: \['nope'\] not in"):
        import_recording("suite2p", tmp_path, behavior=beh, behavior_columns="nope")
    d1 = s2p["root"] / "plane1"
    np.save(d1 / "F.npy", np.load(d1 / "F.npy")[:, :40])
    with pytest.raises(ImportError_, match=r"F.npy \(60, 40\) and Fneu.npy \(60, 50\)"):
        import_recording("suite2p", tmp_path, behavior=beh)
    np.save(d1 / "Fneu.npy", np.load(d1 / "Fneu.npy")[:, :40])
    with pytest.raises(ImportError_, match="40 frames but plane0 has 50"):
        import_recording("suite2p", tmp_path, behavior=beh)
    (d1 / "iscell.npy").unlink()
    with pytest.raises(ImportError_, match="missing iscell.npy"):
        import_recording("suite2p", tmp_path, behavior=beh, planes="1")
    with pytest.raises(ImportError_, match="no suite2p plane folders"):
        import_recording("suite2p", tmp_path / "suite2p" / "plane0", behavior=beh)


# ---------------------------------------------------------------- Chen 2018
@pytest.fixture()
def chen(tmp_path: Path) -> dict:
    return write_chen2018(tmp_path, n_cells=120, n_frames=100)


def test_chen2018_round_trip(chen: dict, tmp_path: Path) -> None:
    out = tmp_path / "chen.h5"
    res = import_recording("chen2018", chen["root"], out)
    rec = load_recording(out)
    keep = chen["absIX"] != chen["absIX"][0]  # IX_inval_anat lists the first cell
    assert rec.n_neurons == keep.sum() and rec.n_frames == 100
    assert rec.atlas == "zbrain" and rec.frame_rate_hz == pytest.approx(1.97)
    assert rec.behavior_names == ["swim_left", "swim_right", "swim_forward"]
    np.testing.assert_allclose(rec.behavior, chen["behavior"][:3].T, rtol=1e-6)
    np.testing.assert_allclose(rec.activity, chen["resp"][:, keep], rtol=1e-6)
    row, col, z = chen["xyz_norm"][chen["absIX"][keep][0] - 1]
    np.testing.assert_allclose(
        rec.positions_um[0], [(col - 0.5) * 0.798, (row - 0.5) * 0.798, (z - 0.5) * 2], rtol=1e-5
    )
    assert [e.name for e in rec.epochs] == [STIM_CODES[c] for c in (10, 11, 12, 9, 3)]
    assert rec.epochs[0].params["code"] == 10
    assert "dropped 1 cells listed in IX_inval_anat" in res.report.text()
    rec5 = import_recording("chen2018", chen["root"], behavior_channels="all").recording
    assert rec5.n_behavior == 5


def test_chen2018_refusals(chen: dict) -> None:
    root = chen["root"]
    with h5py.File(root / "TimeSeries.h5", "a") as f:
        del f["CellResp"]
        f.create_dataset("CellResp", data=chen["resp"][:90])
    with pytest.raises(ImportError_, match=r"frame counts disagree \(activity 90, stim_full 100"):
        import_recording("chen2018", root)
    assert import_recording("chen2018", root, trim_frames=True).recording.n_frames == 90
    with h5py.File(root / "TimeSeries.h5", "a") as f:
        f["absIX"][0, -1] = 10_000
    with pytest.raises(ImportError_, match=r"absIX holds indices .* \(absIX is 1-based\)"):
        import_recording("chen2018", root, trim_frames=True)
    (root / "data_full.mat").unlink()
    with pytest.raises(ImportError_, match="missing data_full.mat"):
        import_recording("chen2018", root)


# ---------------------------------------------------------------- NWB
@pytest.fixture(scope="module")
def nwb_file(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return write_nwb(tmp_path_factory.mktemp("nwb") / "fish.nwb", n_rois=40, n_frames=60)


def test_nwb_round_trip(nwb_file: dict, tmp_path: Path) -> None:
    out = tmp_path / "nwb.h5"
    import_recording(
        "nwb", nwb_file["path"], out, behavior="SwimSignals", epochs="StimulusIntervals"
    )
    rec = load_recording(out)
    assert (rec.n_frames, rec.n_neurons) == (60, 40) and rec.frame_rate_hz == 2.0
    np.testing.assert_allclose(rec.activity, nwb_file["data"])
    np.testing.assert_allclose(
        rec.positions_um, nwb_file["centres_vox"] * [0.406, 0.406, 5.0], rtol=1e-5
    )
    assert rec.behavior_names == ["SwimSignals_0", "SwimSignals_1"]
    swim = nwb_file["swim"]  # 20 Hz samples, 10 per imaging frame
    np.testing.assert_allclose(rec.behavior[0], swim[:10].mean(axis=0), rtol=1e-5)
    assert [(e.name, e.start, e.stop) for e in rec.epochs] == [
        ("forward", 0, 15),
        ("left", 15, 30),
        ("right", 30, 45),
        ("rest", 45, 60),
    ]


def test_nwb_refusals(nwb_file: dict, tmp_path: Path) -> None:
    p = nwb_file["path"]
    with pytest.raises(ImportError_, match="no TimeSeries named 'Tail'.*SwimSignals"):
        import_recording("nwb", p, behavior="Tail")
    with pytest.raises(ImportError_, match="no TimeIntervals table named 'Stim'"):
        import_recording("nwb", p, behavior="SwimSignals", epochs="Stim")
    with pytest.raises(ImportError_, match="no RoiResponseSeries named 'X'"):
        import_recording("nwb", p, behavior="SwimSignals", series="X")
    junk = tmp_path / "junk.nwb"
    junk.write_bytes(b"not hdf5")
    with pytest.raises(ImportError_, match="not a readable NWB file"):
        import_recording("nwb", junk, behavior="SwimSignals")
    copy = tmp_path / "copy.nwb"
    shutil.copyfile(p, copy)
    rec = import_recording("nwb", copy, behavior="SwimSignals", voxel_size_um="1,1,1").recording
    np.testing.assert_allclose(rec.positions_um, nwb_file["centres_vox"], rtol=1e-5)


def test_suite2p_iscell_threshold_and_maximin(s2p: dict, tmp_path: Path) -> None:
    beh = tmp_path / "behavior.csv"
    prob = np.concatenate([np.load(s2p["root"] / f"plane{k}" / "iscell.npy")[:, 1] for k in (0, 1)])
    rec = import_recording(
        "suite2p", tmp_path, behavior=beh, iscell_threshold=0.8, baseline="maximin"
    ).recording
    assert rec.n_neurons == int((prob >= 0.8).sum())
    assert np.all(np.isfinite(rec.activity))
