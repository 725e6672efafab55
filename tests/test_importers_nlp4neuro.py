"""NLP4Neuro importer: fixtures written with the real tools' conventions, round trip, refusals."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from decoding.atlas import default_atlas
from decoding.errors import ImportError_
from decoding.importers import get_importer, import_recording, importer_names
from decoding.importers.fixtures import write_nlp4neuro_fish
from decoding.recording import load_recording

# rewriting tail_df.h5 with pandas pickles the t_dt column, as the real files do
pytestmark = pytest.mark.filterwarnings("ignore::pandas.errors.PerformanceWarning")


@pytest.fixture(scope="module")
def fish_dir(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A 600-neuron, 120-frame, 6-plane (+ an extra plane_6) fish; read-only for the tests."""
    d = tmp_path_factory.mktemp("nlp4neuro")
    return write_nlp4neuro_fish(d, n_neurons=600, n_frames=120, extra_plane=True)


@pytest.fixture()
def fish_copy(fish_dir: dict, tmp_path: Path) -> Path:
    dest = tmp_path / "raw_data_f9"
    shutil.copytree(fish_dir["root"], dest)
    return dest


def test_registry_lists_formats() -> None:
    assert importer_names() == ["nlp4neuro", "suite2p", "chen2018", "nwb"]
    with pytest.raises(ImportError_, match="unknown import format 'xyz'; known formats: nlp4neuro"):
        get_importer("xyz")


def test_round_trip(fish_dir: dict, tmp_path: Path) -> None:
    out = tmp_path / "fish9.h5"
    result = import_recording("nlp4neuro", fish_dir["root"], out)
    rec = load_recording(out)
    T, N = fish_dir["n_frames"], fish_dir["n_neurons"]
    assert (rec.n_frames, rec.n_neurons, rec.n_behavior) == (T, N, 6)
    assert rec.fish_id == "fish9" and rec.atlas == "imaging" and rec.regions is None
    assert rec.behavior_names == [f"tail_{i}" for i in range(6)]
    assert rec.behavior_units == ["rad"] * 6
    np.testing.assert_allclose(rec.behavior, fish_dir["tail_frame_mean"][:, :6], atol=1e-5)
    assert rec.frame_rate_hz == pytest.approx(1.1, rel=1e-3)
    # epochs: one per onset, running to the next onset
    onsets, names = fish_dir["onsets"], fish_dir["names"]
    assert [e.start for e in rec.epochs] == onsets
    assert [e.name for e in rec.epochs] == names
    assert [e.stop for e in rec.epochs] == onsets[1:] + [T]
    assert rec.epochs[0].params["velocity"] == pytest.approx(0.02)
    # ΔF/F with a per-neuron 10th-percentile baseline, neuron ids encode plane and ROI
    F0 = np.load(fish_dir["root"] / "plane_0" / "F.npy")
    n0 = F0.shape[0]
    base = np.percentile(F0, 10, axis=1)
    np.testing.assert_allclose(rec.activity[:, :n0], ((F0.T - base) / base), rtol=1e-4, atol=1e-5)
    assert rec.neuron_ids[0] == 0 and rec.neuron_ids[n0] == 1_000_000
    # positions: med [y, x] px * 0.6 µm, plane * 10 µm
    stat = np.load(fish_dir["root"] / "plane_1" / "stat.npy", allow_pickle=True)
    y, x = stat[0]["med"]
    np.testing.assert_allclose(rec.positions_um[n0], [x * 0.6, y * 0.6, 10.0], rtol=1e-6)
    text = result.report.text()
    assert "plane_0: 100 neurons" in text and "planes [6] excluded" in text
    assert "imaging frame" in text and "samples averaged into 120 frames" in text


def test_all_planes_and_selection(fish_dir: dict) -> None:
    rec = import_recording("nlp4neuro", fish_dir["root"], planes="all").recording
    assert rec.n_neurons == fish_dir["n_neurons"] + 50
    rec = import_recording("nlp4neuro", fish_dir["root"], planes="0,2").recording
    assert set(rec.neuron_ids // 1_000_000) == {0, 2}
    with pytest.raises(ImportError_, match=r"--planes 0-9: plane\(s\) \[7, 8, 9\] not found"):
        import_recording("nlp4neuro", fish_dir["root"], planes="0-9")
    with pytest.raises(ImportError_, match="expected e.g. '0-5'"):
        import_recording("nlp4neuro", fish_dir["root"], planes="zero")


def test_parent_folder_is_accepted(fish_dir: dict) -> None:
    rec = import_recording("nlp4neuro", fish_dir["root"].parent).recording
    assert rec.n_neurons == fish_dir["n_neurons"]


def test_affine_places_neurons_in_the_atlas(fish_dir: dict, tmp_path: Path) -> None:
    atlas = default_atlas()
    # imaging µm (x up to ~614, y up to ~614, z up to 50) -> a box inside the schematic brain
    mat = np.array(
        [[0.3, 0, 0, 150], [0, 0.8, 0, 300], [0, 0, 1.0, 100], [0, 0, 0, 1]], dtype=float
    )
    aff = tmp_path / "affine.txt"
    aff.write_text("# imaging um -> atlas um\n" + "\n".join(",".join(map(str, r)) for r in mat))
    out = tmp_path / "placed.h5"
    import_recording("nlp4neuro", fish_dir["root"], out, affine=aff)
    rec = load_recording(out)
    assert rec.atlas == atlas.name
    assert rec.regions is not None and (rec.regions != "outside").mean() > 0.5
    np.testing.assert_array_equal(rec.regions, atlas.acronyms_of(rec.positions_um))

    # the same transform from landmark pairs
    rng = np.random.default_rng(0)
    src = rng.uniform(0, 600, (8, 3))
    dst = src @ mat[:3, :3].T + mat[:3, 3]
    lm = tmp_path / "landmarks.csv"
    lm.write_text("x,y,z,X,Y,Z\n" + "\n".join(",".join(map(str, r)) for r in np.hstack([src, dst])))
    res = import_recording("nlp4neuro", fish_dir["root"], landmarks=lm)
    np.testing.assert_allclose(res.recording.positions_um, rec.positions_um, atol=1e-3)
    assert "RMS residual 0.0 µm" in res.report.text()


FLAT = "\n".join(f"{i} {j} 0 {i} {j} 0" for i in range(3) for j in range(3))


@pytest.mark.parametrize(
    "option, text, message",
    [
        ("affine", "1 0 0\n0 1 0\n", r"expected a 4x4 matrix .* found shape \(2, 3\)"),
        (
            "affine",
            "1 0 0 5000\n0 1 0 0\n0 0 1 0\n0 0 0 1\n",
            "fall outside the atlas 'schematic_zfish_6dpf'",
        ),
        ("landmarks", FLAT, "coplanar"),
        ("affine", "1 0 0 0\n0 1 0\n0 0 1 0\n", r"numbers on every line, found lines of \[3, 4\]"),
        ("affine", "# comment\n1 0 0 0\n0 one 0 0\n", "expected numbers, found line '0 one 0 0'"),
        ("landmarks", None, "--landmarks .*landmarks.csv: no such file"),
    ],
)
def test_affine_errors(
    option: str, text: str | None, message: str, fish_dir: dict, tmp_path: Path
) -> None:
    path = tmp_path / f"{option}.csv"  # text None: the file is missing
    if text is not None:
        path.write_text(text)
    with pytest.raises(ImportError_, match=message):
        import_recording("nlp4neuro", fish_dir["root"], **{option: path})


def _inside_affine(tmp_path: Path) -> Path:
    """The affine of test_affine_places_neurons_in_the_atlas: every ROI lands inside the atlas."""
    aff = tmp_path / "inside_affine.txt"
    aff.write_text("0.3 0 0 150\n0 0.8 0 300\n0 0 1 100\n0 0 0 1\n")
    return aff


def _move_rois_far(folder: Path, n: int) -> None:
    """Put the first ``n`` ROIs of plane_0 far off the image (outside the atlas once placed)."""
    path = folder / "plane_0" / "stat.npy"
    stat = np.load(path, allow_pickle=True)
    for i in range(n):
        stat[i] = {**stat[i], "med": [10, 100_000]}
    np.save(path, stat, allow_pickle=True)


def test_a_neuron_outside_the_atlas_is_kept_counted_and_labelled(
    fish_copy: Path, tmp_path: Path
) -> None:
    from decoding.anatomy import neuron_regions, region_table

    _move_rois_far(fish_copy, 1)
    out = tmp_path / "one_out.h5"
    res = import_recording("nlp4neuro", fish_copy, out, affine=_inside_affine(tmp_path))
    assert (
        "warning: 1 neuron (0.2%) falls outside the atlas volume; kept, labelled 'outside'"
        in res.report.text()
    )
    rec = load_recording(out)
    assert rec.n_neurons == 600 and rec.regions is not None
    assert not default_atlas().contains(rec.positions_um[:1]).any()
    assert rec.regions[0] == "outside"
    regions = neuron_regions(rec)
    table = region_table(np.random.default_rng(0).uniform(size=600), regions)
    assert "outside" in set(table["region"])


def test_too_many_neurons_outside_are_refused_unless_max_outside_allows(
    fish_copy: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    from decoding.cli import main

    _move_rois_far(fish_copy, 40)  # 40 of 600 = 6.7% > 5%
    aff = _inside_affine(tmp_path)
    pattern = (
        r"40 of 600 neuron position\(s\) \(6.7%\) fall outside the atlas "
        r"'schematic_zfish_6dpf' volume after the affine, more than the 5% allowed .*"
        r"check the affine's direction .* --max-outside FRACTION"
    )
    with pytest.raises(ImportError_, match=pattern):
        import_recording("nlp4neuro", fish_copy, affine=aff)
    out = tmp_path / "many_out.h5"
    argv = ["import", "nlp4neuro", str(fish_copy), "--out", str(out), "--affine", str(aff)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1 and "Traceback" not in err
    assert "(6.7%)" in err and "--max-outside" in err
    assert not out.exists()
    assert main([*argv, "--max-outside", "0.5"]) == 0
    text = capsys.readouterr().out
    assert "40 neurons (6.7%) fall outside the atlas volume; kept, labelled 'outside'" in text
    rec = load_recording(out)  # the file keeps the fraction the import allowed
    assert rec.max_outside == 0.5 and (rec.regions[:40] == "outside").all()
    assert main([*argv, "--force", "--max-outside", "1.5"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --max-outside: expected a fraction") and err.count("\n") == 1


def test_every_import_format_takes_max_outside(capsys: pytest.CaptureFixture) -> None:
    from decoding.cli import main

    for name in importer_names():
        with pytest.raises(SystemExit):
            main(["import", name, "--help"])
        assert "--max-outside FRACTION" in capsys.readouterr().out, name


def test_frame_counts_disagree(fish_copy: Path) -> None:
    F = np.load(fish_copy / "plane_3" / "F.npy")
    np.save(fish_copy / "plane_3" / "F.npy", F[:, :-5])
    with pytest.raises(ImportError_, match=r"frame counts disagree .*plane_3: 115.*--trim-frames"):
        import_recording("nlp4neuro", fish_copy)
    res = import_recording("nlp4neuro", fish_copy, trim_frames=True)
    assert res.recording.n_frames == 115
    assert "cropped to 115" in res.report.text()


def test_tail_frames_out_of_range(fish_copy: Path) -> None:
    path = fish_copy / "plane_0" / "tail_df.h5"
    df = pd.read_hdf(path, "tail")
    df.loc[df.index[-10:], "frame"] = 500
    df.to_hdf(path, key="tail", mode="w")
    with pytest.raises(ImportError_, match=r"10 samples have frame indices outside .*\[0, 120\)"):
        import_recording("nlp4neuro", fish_copy)


def test_tail_gaps_are_interpolated_and_reported(fish_copy: Path) -> None:
    path = fish_copy / "plane_0" / "tail_df.h5"
    df = pd.read_hdf(path, "tail")
    df = df[(df["frame"] < 50) | (df["frame"] > 52)]
    df.to_hdf(path, key="tail", mode="w")
    res = import_recording("nlp4neuro", fish_copy)
    assert "3 of 120 frames had no sample and were interpolated (first at frame 50)" in (
        res.report.text()
    )
    assert np.all(np.isfinite(res.recording.behavior))


def test_empty_plane_and_missing_files(fish_copy: Path) -> None:
    np.save(fish_copy / "plane_2" / "F.npy", np.zeros((0, 120), np.float32))
    with pytest.raises(ImportError_, match="plane_2 has no ROIs .* --planes"):
        import_recording("nlp4neuro", fish_copy)
    os.remove(fish_copy / "plane_2" / "F.npy")
    with pytest.raises(ImportError_, match=r"plane_2/F.npy: missing suite2p F.npy"):
        import_recording("nlp4neuro", fish_copy)
    shutil.rmtree(fish_copy / "plane_2")
    os.remove(fish_copy / "plane_0" / "tail_df.h5")
    # the tail now comes from the first plane that has one
    res = import_recording("nlp4neuro", fish_copy)
    assert "tail (plane_1/tail_df.h5)" in res.report.text()
    with pytest.raises(ImportError_, match="tail_df.h5: missing tail_df.h5"):
        import_recording("nlp4neuro", fish_copy, tail_plane=0)


def test_stat_mismatch_and_no_stimulus(fish_copy: Path) -> None:
    stat = np.load(fish_copy / "plane_1" / "stat.npy", allow_pickle=True)
    np.save(fish_copy / "plane_1" / "stat.npy", stat[:-1], allow_pickle=True)
    with pytest.raises(ImportError_, match="99 ROIs in stat.npy but 100 rows in F.npy"):
        import_recording("nlp4neuro", fish_copy)
    np.save(fish_copy / "plane_1" / "stat.npy", stat, allow_pickle=True)
    os.remove(fish_copy / "plane_0" / "stimulus_df.tab")
    res = import_recording("nlp4neuro", fish_copy)
    assert res.recording.epochs == [] and "no stimulus_df.tab" in res.report.text()


def test_bad_roi_is_dropped_and_reported(fish_copy: Path) -> None:
    F = np.load(fish_copy / "plane_4" / "F.npy")
    F[7, 3] = np.nan
    F[8] = -1.0
    np.save(fish_copy / "plane_4" / "F.npy", F)
    res = import_recording("nlp4neuro", fish_copy)
    assert res.recording.n_neurons == 598
    assert "plane_4: dropped 2 of 100 ROIs" in res.report.text()
    assert 4_000_007 not in res.recording.neuron_ids


def test_stimulus_table_with_quotes_and_index_header(fish_copy: Path) -> None:
    lines = ['"idx"\t"stim_name"\t"velocity"\t"time"\t"frame"']
    lines += [f'{i}\t"forward"\t0.04\t"12:00:0{i}.5"\t{10 * i + 5}' for i in range(3)]
    (fish_copy / "plane_0" / "stimulus_df.tab").write_text("\n".join(lines) + "\n")
    rec = import_recording("nlp4neuro", fish_copy).recording
    assert [(e.name, e.start, e.stop) for e in rec.epochs] == [
        ("forward", 5, 15),
        ("forward", 15, 25),
        ("forward", 25, 120),
    ]
    (fish_copy / "plane_0" / "stimulus_df.tab").write_text("stim_name\tframe\nforward\t400\n")
    with pytest.raises(ImportError_, match=r"onset frame\(s\) outside the recording"):
        import_recording("nlp4neuro", fish_copy)


def test_nothing_written_on_failure_and_no_overwrite(fish_copy: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.h5"
    np.save(fish_copy / "plane_2" / "F.npy", np.zeros((0, 120), np.float32))
    with pytest.raises(ImportError_):
        import_recording("nlp4neuro", fish_copy, out)
    assert not out.exists() and list(tmp_path.glob(".out.h5*")) == []
    out.write_text("keep me")
    with pytest.raises(ImportError_, match="already exists; .* --force"):
        import_recording("nlp4neuro", fish_copy, out, planes="0,1")
    assert out.read_text() == "keep me"
    import_recording("nlp4neuro", fish_copy, out, planes="0,1", overwrite=True)
    assert load_recording(out).n_neurons == 200


def test_not_a_fish_folder(tmp_path: Path) -> None:
    with pytest.raises(ImportError_, match="no plane_k/ subfolders found"):
        import_recording("nlp4neuro", tmp_path)
    with pytest.raises(ImportError_, match="does not exist"):
        import_recording("nlp4neuro", tmp_path / "nope")


def test_prepped_arrays(tmp_path: Path) -> None:
    d = tmp_path / "fish9" / "data"
    d.mkdir(parents=True)
    rng = np.random.default_rng(0)
    np.save(d / "fish9_neural_data_full.npy", rng.standard_normal((40, 30)).astype(np.float32))
    np.save(d / "fish9_tail_data_matched.npy", rng.standard_normal((28, 6)).astype(np.float32))
    res = import_recording("nlp4neuro", tmp_path / "fish9", prepped=True)
    rec = res.recording
    assert (rec.n_frames, rec.n_neurons, rec.n_behavior) == (28, 40, 6)
    assert "cropped to the first 28 frames" in res.report.text()
    assert "no neuron positions" in res.report.text()


def test_cli_import(fish_dir: dict, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from decoding.cli import main

    out = tmp_path / "cli.h5"
    assert main(["import", "nlp4neuro", str(fish_dir["root"]), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "nlp4neuro import of" in text and "120 frames x 600 neurons" in text
    assert load_recording(out).n_neurons == 600
    assert main(["import", "nlp4neuro", str(fish_dir["root"]), "--out", str(out)]) == 2
    assert "already exists" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["import", "--help"])
    helptext = capsys.readouterr().out
    for name in ("nlp4neuro", "suite2p", "chen2018", "nwb"):
        assert name in helptext


@pytest.mark.slow
def test_realistic_size_fish(tmp_path: Path) -> None:
    """~14,000 neurons over 6 planes, 2,800 frames, 200 Hz tail (the study's fish 11 scale)."""
    truth = write_nlp4neuro_fish(tmp_path, n_neurons=14_000, n_frames=2_800, seed=1)
    out = tmp_path / "fish.h5"
    import_recording("nlp4neuro", truth["root"], out)
    rec = load_recording(out)
    assert (rec.n_frames, rec.n_neurons) == (2_800, 14_000)
    np.testing.assert_allclose(rec.behavior, truth["tail_frame_mean"][:, :6], atol=1e-5)
    assert len(rec.epochs) == len(truth["onsets"])


def test_maximin_baseline(fish_dir: dict) -> None:
    res = import_recording("nlp4neuro", fish_dir["root"], baseline="maximin", baseline_window_s=20)
    act = res.recording.activity
    assert act.shape == (120, 600) and np.all(np.isfinite(act))
    # the sliding baseline sits near the bottom of each trace: most values are >= -0.2
    assert np.mean(act > -0.2) > 0.9
