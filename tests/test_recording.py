"""Recording: round trip, lazy/partial reads, every malformed-input error, atomic writes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from decoding.errors import RecordingError
from decoding.recording import (
    FORMAT_NAME,
    Epoch,
    GroundTruth,
    Recording,
    load_recording,
    save_recording,
)

REPO = Path(__file__).resolve().parents[1]


def _tiny(T: int = 50, N: int = 12, K: int = 3, seed: int = 0, **kw) -> Recording:
    rng = np.random.default_rng(seed)
    args = dict(
        frame_rate_hz=2.0,
        behavior_names=[f"b{k}" for k in range(K)],
        behavior_units=["rad"] * K,
        epochs=[
            Epoch("rest", 0, 10),
            Epoch("left", 10, 30, {"velocity": 0.02}),
            Epoch("rest", 30, 50),
        ],
        fish_id="tiny",
        atlas="",
        source="unit test",
        neuron_ids=np.arange(100, 100 + N),
        regions=np.array(["Pt_L", "r4_R"] * (N // 2)),
        ground_truth=GroundTruth(
            rng.normal(size=(T, K)), rng.normal(size=(N, K)), np.array(["u"] * N), np.full(K, 0.1)
        ),
    )
    activity = rng.normal(size=(T, N)).astype(np.float32)
    behavior = rng.normal(size=(T, K)).astype(np.float32)
    positions = rng.uniform(10, 200, size=(N, 3)).astype(np.float32)
    args.update(kw)
    positions = args.pop("positions_um", positions)
    return Recording(activity, behavior, positions, **args)


@pytest.fixture
def tiny_file(tmp_path: Path) -> Path:
    return _tiny().save(tmp_path / "tiny.h5")


# ----------------------------------------------------------------------------------- round trip
def test_round_trip_preserves_everything(tmp_path: Path) -> None:
    rec = _tiny()
    path = save_recording(rec, tmp_path / "fish.h5")
    back = load_recording(path)
    assert not back.is_loaded  # lazy
    np.testing.assert_array_equal(back.activity, rec.activity)
    assert back.is_loaded
    np.testing.assert_array_equal(back.behavior, rec.behavior)
    np.testing.assert_array_equal(back.positions_um, rec.positions_um)
    np.testing.assert_array_equal(back.neuron_ids, rec.neuron_ids)
    np.testing.assert_array_equal(back.regions, rec.regions)
    assert back.behavior_names == rec.behavior_names and back.behavior_units == ["rad"] * 3
    assert back.epochs == rec.epochs and back.epochs[1].params == {"velocity": 0.02}
    assert (back.fish_id, back.frame_rate_hz, back.source) == ("tiny", 2.0, "unit test")
    gt, gt0 = back.ground_truth, rec.ground_truth
    assert gt is not None and gt0 is not None
    np.testing.assert_array_equal(gt.behavior_clean, gt0.behavior_clean)
    np.testing.assert_array_equal(gt.driver_weight, gt0.driver_weight)
    np.testing.assert_array_equal(gt.role, gt0.role)
    np.testing.assert_array_equal(gt.noise_std, gt0.noise_std)
    assert back.path == path
    assert (back.n_frames, back.n_neurons, back.n_behavior) == (50, 12, 3)
    np.testing.assert_allclose(back.times_s[:3], [0.0, 0.5, 1.0])
    with h5py.File(path) as f:
        assert f.attrs["format"] == FORMAT_NAME and int(f.attrs["format_version"]) == 1
        assert f["activity"].dtype == np.float32 and f["activity"].chunks is not None


def test_round_trip_without_optional_parts(tmp_path: Path) -> None:
    rec = _tiny(epochs=[], neuron_ids=None, regions=None, ground_truth=None)
    back = load_recording(rec.save(tmp_path / "bare.h5"))
    assert back.epochs == [] and back.neuron_ids is None and back.regions is None
    assert back.ground_truth is None


def test_partial_reads_match_memory(tiny_file: Path) -> None:
    rec = load_recording(tiny_file)
    full = _tiny().activity
    np.testing.assert_array_equal(rec.read_activity(5, 9), full[5:9])
    np.testing.assert_array_equal(rec.read_activity(0, 4, [7, 2, 7, 0]), full[:4][:, [7, 2, 7, 0]])
    mask = np.zeros(12, bool)
    mask[[1, 3]] = True
    np.testing.assert_array_equal(rec.read_activity(10, 20, mask), full[10:20][:, [1, 3]])
    assert not rec.is_loaded  # partial reads do not load the whole array
    with pytest.raises(RecordingError, match=r"frame range \[40, 60\) is outside \[0, 50\]"):
        rec.read_activity(40, 60)
    with pytest.raises(RecordingError, match="neuron index out of range"):
        rec.read_activity(0, 5, [12])


@pytest.mark.parametrize("scan_bytes", [4 * 12 * 8, 32 * 2**20])  # 8-frame blocks, or one block
def test_partial_read_selections(tmp_path: Path, monkeypatch, scan_bytes: int) -> None:
    import decoding.recording as recording

    monkeypatch.setattr(recording, "CHUNK_FRAMES", 4)
    monkeypatch.setattr(recording, "_SCAN_BYTES", scan_bytes)
    rec = load_recording(_tiny().save(tmp_path / "f.h5"))
    full = _tiny().activity
    for cols in (slice(2, 9), slice(None, None, 3), slice(None, None, -1), [11, 0], [3, 4, 5, 3]):
        np.testing.assert_array_equal(rec.read_activity(3, 47, cols), full[3:47][:, cols])
    assert rec.read_activity(3, 3).shape == (0, 12)
    assert rec.read_activity(0, 5, []).shape == (5, 0)
    np.testing.assert_array_equal(rec.activity, full)


def test_slice_clips_and_shifts_epochs(tiny_file: Path) -> None:
    rec = load_recording(tiny_file)
    part = rec.slice(20, 40)
    assert part.n_frames == 20
    assert [(e.name, e.start, e.stop) for e in part.epochs] == [("left", 0, 10), ("rest", 10, 20)]
    np.testing.assert_array_equal(part.activity, rec.activity[20:40])
    assert part.ground_truth is not None and part.ground_truth.behavior_clean.shape == (20, 3)
    with pytest.raises(RecordingError, match="slice"):
        rec.slice(30, 30)


def test_epoch_lookup(tiny_file: Path) -> None:
    rec = load_recording(tiny_file)
    assert rec.epoch("left") == Epoch("left", 10, 30, {"velocity": 0.02})
    assert rec.epoch_names == ["rest", "left"]
    assert len(rec.epochs_named("rest")) == 2
    assert list(rec.epoch_labels()[[0, 10, 49]]) == ["rest", "left", "rest"]
    with pytest.raises(RecordingError, match="no epoch named 'forward'; known epochs: rest, left"):
        rec.epoch("forward")


def test_lazy_recording_can_be_saved_elsewhere_and_over_itself(tiny_file: Path) -> None:
    rec = load_recording(tiny_file)
    other = rec.save(tiny_file.with_name("copy.h5"))
    assert not rec.is_loaded
    np.testing.assert_array_equal(load_recording(other).activity, _tiny().activity)
    rec.save(tiny_file)  # over its own source: atomic, reads from the old file first
    np.testing.assert_array_equal(load_recording(tiny_file).activity, _tiny().activity)


def test_epoch_validates_itself() -> None:
    with pytest.raises(RecordingError, match="non-empty"):
        Epoch("", 0, 1)
    with pytest.raises(RecordingError, match="expected 0 <= start < stop, found start=5, stop=5"):
        Epoch("rest", 5, 5)
    with pytest.raises(RecordingError, match="start must be an integer"):
        Epoch("rest", 1.5, 3)  # type: ignore[arg-type]
    assert "velocity" in repr(Epoch("left", 0, 3, {"velocity": 1.0}))


def test_in_memory_construction_errors() -> None:
    with pytest.raises(RecordingError, match="frame_rate_hz"):
        _tiny(frame_rate_hz=0)
    with pytest.raises(RecordingError, match=r"expected 3 channel names"):
        _tiny(behavior_names=["a"])
    with pytest.raises(RecordingError, match="overlap"):
        _tiny(epochs=[Epoch("a", 0, 10), Epoch("b", 5, 12)])
    with pytest.raises(
        RecordingError, match=r"ground_truth/driver_weight: expected shape \(12, 3\)"
    ):
        _tiny(ground_truth=GroundTruth(np.zeros((50, 3)), np.zeros((5, 3)), ["u"] * 12, [1, 1, 1]))


# ----------------------------------------------------------------------------------- malformed
def _mutate(path: Path, fn) -> Path:
    with h5py.File(path, "r+") as f:
        fn(f)
    return path


def _replace(f: h5py.File, name: str, data) -> None:
    del f[name]
    f.create_dataset(name, data=data)


def _set_epochs(f: h5py.File, rows: list[tuple[str, int, int]]) -> None:
    del f["epochs"]
    g = f.create_group("epochs")
    g["name"] = np.array([r[0] for r in rows], dtype=object).astype(h5py.string_dtype())
    g["start"] = np.array([r[1] for r in rows])
    g["stop"] = np.array([r[2] for r in rows])


MALFORMED = {
    "missing activity": (lambda f: f.__delitem__("activity"), r"/activity: missing dataset"),
    "missing behavior": (lambda f: f.__delitem__("behavior"), r"/behavior: missing dataset"),
    "missing positions": (
        lambda f: f.__delitem__("positions_um"),
        r"/positions_um: missing dataset",
    ),
    "activity integer dtype": (
        lambda f: _replace(f, "activity", np.zeros((50, 12), np.int16)),
        r"/activity: expected a floating-point array \(float32\), found dtype int16",
    ),
    "activity 1-D": (
        lambda f: _replace(f, "activity", np.zeros(50, np.float32)),
        r"/activity: expected a 2-D array, found shape \(50,\)",
    ),
    "positions wrong shape": (
        lambda f: _replace(f, "positions_um", np.zeros((12, 2), np.float32)),
        r"/positions_um: expected shape \(12, 3\) .* found \(12, 2\)",
    ),
    "positions wrong count": (
        lambda f: _replace(f, "positions_um", np.zeros((11, 3), np.float32)),
        r"/positions_um: expected shape \(12, 3\)",
    ),
    "T mismatch": (
        lambda f: _replace(f, "behavior", np.zeros((49, 3), np.float32)),
        r"/behavior: expected 50 frames .* found shape \(49, 3\) \(T mismatch",
    ),
    "NaN in activity": (
        lambda f: f["activity"].__setitem__((7, 3), np.nan),
        r"/activity: expected finite values, found 1 NaN/inf value\(s\) "
        r"\(first at index \(7, 3\)\)",
    ),
    "inf in behavior": (
        lambda f: f["behavior"].__setitem__((2, 1), np.inf),
        r"/behavior: expected finite values, found 1 NaN/inf",
    ),
    "NaN in positions": (
        lambda f: f["positions_um"].__setitem__((0, 0), np.nan),
        r"/positions_um: expected finite values",
    ),
    "epoch out of range": (
        lambda f: _set_epochs(f, [("rest", 0, 10), ("left", 10, 60)]),
        r"/epochs: epoch 'left' \[10, 60\) is out of range: expected stop <= 50 .* found 60",
    ),
    "epochs overlap": (
        lambda f: _set_epochs(f, [("rest", 0, 20), ("left", 15, 30)]),
        r"/epochs: epochs must not overlap: 'rest' \[0, 20\) overlaps 'left' \[15, 30\)",
    ),
    "epoch empty": (
        lambda f: _set_epochs(f, [("rest", 5, 5)]),
        r"/epochs: row 0: epoch 'rest': expected 0 <= start < stop",
    ),
    "epochs missing stop": (
        lambda f: f["epochs"].__delitem__("stop"),
        r"/epochs/stop: missing dataset",
    ),
    "epoch params not JSON": (
        lambda f: _replace(f, "epochs/params", np.array(["{", "{}", "{}"], dtype=object)),
        r"/epochs/params: row 0: expected a JSON object",
    ),
    "unknown format version": (
        lambda f: f.attrs.__setitem__("format_version", 7),
        r"unknown format version 7 .* reads version 1",
    ),
    "wrong format name": (
        lambda f: f.attrs.__setitem__("format", "something-else"),
        r"root attribute 'format' should be 'nlp4neuro-recording', found 'something-else'",
    ),
    "missing frame rate": (
        lambda f: f.attrs.__delitem__("frame_rate_hz"),
        r"missing root attribute 'frame_rate_hz'",
    ),
    "bad frame rate": (
        lambda f: f.attrs.__setitem__("frame_rate_hz", -1.0),
        r"'frame_rate_hz' must be a positive number, found -1.0",
    ),
    "behavior names count": (
        lambda f: f["behavior"].attrs.__setitem__("names", ["a", "b"]),
        r"/behavior: expected 3 channel names .* found 2",
    ),
    "ground truth shape": (
        lambda f: _replace(f, "ground_truth/noise_std", np.zeros(4, np.float32)),
        r"/ground_truth/noise_std: expected shape \(3,\), found \(4,\)",
    ),
    "regions wrong length": (
        lambda f: _replace(f, "regions", np.array(["a"] * 3, dtype=object)),
        r"/regions: expected \(12,\) strings",
    ),
    "group instead of dataset": (
        lambda f: (f.__delitem__("behavior"), f.create_group("behavior")),
        r"/behavior: expected a dataset, found a group",
    ),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_file_gives_clear_error(tiny_file: Path, case: str) -> None:
    fn, pattern = MALFORMED[case]
    _mutate(tiny_file, fn)
    with pytest.raises(RecordingError, match=pattern) as info:
        load_recording(tiny_file)
    assert str(tiny_file) in str(info.value)  # names the file


def test_positions_outside_the_shipped_atlas(tmp_path: Path) -> None:
    from decoding.atlas import default_atlas

    atlas = default_atlas()
    rec = _tiny(atlas="my_lab_space")  # positions in another (unknown) space: not checked
    rec.positions_um[3] = [5000.0, 10.0, 10.0]
    path = rec.save(tmp_path / "outside.h5")
    load_recording(path)
    with h5py.File(path, "r+") as f:
        f.attrs["atlas"] = atlas.name
    pattern = r"/positions_um: 1 of 12 neuron position\(s\) \(8.3%\) fall outside the atlas"
    with pytest.raises(RecordingError, match=pattern):
        load_recording(path)
    with pytest.raises(RecordingError, match=pattern.replace("/", "")):  # in memory too
        _tiny(atlas=atlas.name, positions_um=rec.positions_um)


def _positions_with_outside(n: int, n_out: int) -> np.ndarray:
    """``n`` voxel centres inside brain regions of the shipped atlas, ``n_out`` moved far out."""
    from decoding.atlas import default_atlas

    atlas = default_atlas()
    voxels = np.argwhere(atlas.labels > 0)
    pick = np.random.default_rng(1).choice(len(voxels), size=n, replace=False)
    pos = ((voxels[pick] + 0.5) * atlas.voxel_size_um).astype(np.float32)
    pos[3 : 3 + n_out] = [5000.0, 10.0, 10.0]
    return pos


def test_a_few_positions_outside_the_atlas_are_kept_and_labelled(tmp_path: Path) -> None:
    from decoding.anatomy import lateralisation, neuron_regions, region_table
    from decoding.atlas import OUTSIDE, default_atlas
    from decoding.recording import MAX_OUTSIDE_FRACTION, OutsideCount

    atlas = default_atlas()
    pos = _positions_with_outside(40, 1)  # 1 of 40 = 2.5% <= 5%
    rec = _tiny(N=40, atlas=atlas.name, regions=None, positions_um=pos)
    assert rec.max_outside == MAX_OUTSIDE_FRACTION
    path = rec.save(tmp_path / "one_out.h5")
    with h5py.File(path, "r") as f:
        assert "max_outside" not in f.attrs  # the default is not written
    loaded = load_recording(path)
    np.testing.assert_array_equal(loaded.positions_um[3], [5000.0, 10.0, 10.0])  # kept as is
    regions = neuron_regions(loaded, atlas)
    assert regions[3] == OUTSIDE
    salience = np.random.default_rng(2).uniform(size=40)
    table = region_table(salience, regions, min_neurons=1)
    assert table.set_index("region").loc[OUTSIDE, "n_neurons"] == 1
    lat = lateralisation(salience, loaded.positions_um, regions, atlas.midline_x_um)
    assert len(lat) >= 1
    count = OutsideCount(1, 40)
    assert count.summary() == (
        "1 neuron (2.5%) falls outside the atlas volume; kept, labelled 'outside'"
    )


def test_too_many_positions_outside_are_refused_unless_the_file_allows_them(
    tmp_path: Path,
) -> None:
    from decoding.atlas import default_atlas

    atlas = default_atlas()
    pos = _positions_with_outside(40, 3)  # 3 of 40 = 7.5% > 5%
    pattern = (
        r"3 of 40 neuron position\(s\) \(7.5%\) fall outside the atlas "
        r"'schematic_zfish_6dpf' volume, more than the 5% allowed .*first: neuron 3 at "
        r"\[5000.0, 10.0, 10.0\].*register the positions.*'max_outside'.*--max-outside FRACTION"
    )
    with pytest.raises(RecordingError, match=pattern):
        _tiny(N=40, atlas=atlas.name, regions=None, positions_um=pos)
    rec = _tiny(N=40, atlas=atlas.name, regions=None, positions_um=pos, max_outside=0.5)
    path = rec.save(tmp_path / "three_out.h5")
    loaded = load_recording(path)  # the file remembers what was allowed
    assert loaded.max_outside == 0.5 and loaded.slice(0, 10).max_outside == 0.5
    with h5py.File(path, "r+") as f:
        del f.attrs["max_outside"]
    with pytest.raises(RecordingError, match=f"{path}: /positions_um: {pattern}"):
        load_recording(path)
    with h5py.File(path, "r+") as f:
        f.attrs["max_outside"] = 1.5
    with pytest.raises(RecordingError, match=r"max_outside .*between 0 and 1.*found 1.5"):
        load_recording(path)


def test_not_hdf5_truncated_and_missing(tmp_path: Path, tiny_file: Path) -> None:
    text = tmp_path / "notes.h5"
    text.write_text("time,theta\n0,0.1\n")
    with pytest.raises(RecordingError, match=r"notes.h5: not an HDF5 file"):
        load_recording(text)
    data = tiny_file.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(RecordingError, match=r"cut.h5.*truncated or corrupt"):
        load_recording(cut)
    with pytest.raises(RecordingError, match="no such recording file"):
        load_recording(tmp_path / "absent.h5")
    with pytest.raises(RecordingError, match="found a folder"):
        load_recording(tmp_path)


def test_nan_scan_is_chunked_and_reports_frame(tmp_path: Path, monkeypatch) -> None:
    import decoding.recording as recording

    monkeypatch.setattr(recording, "_SCAN_BYTES", 4 * 12 * 16)  # 16 frames per block
    path = _tiny().save(tmp_path / "nan.h5")
    with h5py.File(path, "r+") as f:
        f["activity"][45, 0] = np.inf
    with pytest.raises(RecordingError, match=r"first at index \(45, 0\)"):
        load_recording(path)


def test_matlab_style_file_loads(tmp_path: Path) -> None:
    """What a MATLAB user may write: doubles, names as one comma-separated string, no extras."""
    path = tmp_path / "matlab.h5"
    rng = np.random.default_rng(1)
    with h5py.File(path, "w") as f:
        f.attrs["format"] = FORMAT_NAME
        f.attrs["format_version"] = 1.0  # MATLAB writes doubles
        f.attrs["frame_rate_hz"] = 1.1
        f.attrs["fish_id"] = "f1"
        f["activity"] = rng.normal(size=(30, 5))
        f["behavior"] = rng.normal(size=(30, 2))
        f["behavior"].attrs["names"] = "theta_00,theta_01"
        f["positions_um"] = rng.uniform(0, 100, size=(5, 3))
        f["neuron_ids"] = np.arange(5, dtype=float)
        f["epochs/name"] = "rest,forward"  # one comma-separated string
        f["epochs/start"] = np.array([0.0, 10.0])
        f["epochs/stop"] = np.array([10.0, 30.0])
    rec = load_recording(path)
    assert rec.epochs == [Epoch("rest", 0, 10), Epoch("forward", 10, 30)]
    assert rec.behavior_names == ["theta_00", "theta_01"] and rec.behavior_units == ["", ""]
    assert rec.activity.dtype == np.float32
    assert rec.neuron_ids is not None and rec.neuron_ids.dtype == np.int64


def test_validate_false_skips_value_checks(tiny_file: Path) -> None:
    _mutate(tiny_file, lambda f: f["activity"].__setitem__((0, 0), np.nan))
    rec = load_recording(tiny_file, validate=False)
    assert np.isnan(rec.activity[0, 0])


# ----------------------------------------------------------------------------------- atomic write
def test_crash_mid_write_keeps_old_file_and_leaves_no_temp(tmp_path: Path, monkeypatch) -> None:
    path = _tiny(seed=1).save(tmp_path / "fish.h5")
    before = path.read_bytes()
    new = _tiny(seed=2)

    def boom(*args, **kwargs):
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(new, "read_activity", boom)
    with pytest.raises(RuntimeError, match="simulated"):
        new.save(path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fish.h5"]
    np.testing.assert_array_equal(load_recording(path).activity, _tiny(seed=1).activity)
    # and a crash on a first write leaves nothing under the final name
    with pytest.raises(RuntimeError):
        new.save(tmp_path / "fresh.h5")
    assert not (tmp_path / "fresh.h5").exists()


def test_killed_process_never_leaves_a_half_written_recording(tmp_path: Path) -> None:
    """A hard kill (no cleanup at all) mid-write leaves the old file intact under the final name."""
    path = _tiny(seed=1).save(tmp_path / "fish.h5")
    before = path.read_bytes()
    script = f"""
import os, numpy as np
from decoding.recording import Recording
import tests.test_recording as t
rec = t._tiny(seed=2)
def die(*a, **k):
    os._exit(9)  # like SIGKILL: no finally blocks run
rec.read_activity = die
rec.save({str(path)!r})
"""
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True)
    assert proc.returncode == 9, proc.stderr
    assert path.read_bytes() == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "fish.h5"]
    assert all(name.startswith(".fish.h5.") and name.endswith(".tmp") for name in leftovers)
    load_recording(path)


def test_epoch_params_round_trip_as_json(tiny_file: Path) -> None:
    with h5py.File(tiny_file) as f:
        params = [json.loads(p) for p in f["epochs/params"].asstr()[()]]
    assert params == [{}, {"velocity": 0.02}, {}]
