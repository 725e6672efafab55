"""``python -m decoding info`` and ``demo-data``."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from decoding.cli import main
from decoding.recording import load_recording


def test_info_on_a_recording(small_recording_path: Path, capsys) -> None:
    assert main(["info", str(small_recording_path)]) == 0
    out = capsys.readouterr().out
    assert "fish       small_fish" in out
    assert "frames     400 at 1.1 Hz" in out
    assert "neurons    200" in out
    assert "theta_05" in out and "rad" in out
    for name in ("forward", "left", "right", "backward", "rest"):
        assert name in out
    assert "0:20.0" in out  # epoch times in m:s
    assert "neurons per region" in out and "TeO_PVL" in out
    assert "noise ceiling RMSE" in out and "premotor_left" in out
    assert len(out.splitlines()) < 60  # one screen


def test_info_on_the_atlas(capsys) -> None:
    from decoding.atlas import DEFAULT_ATLAS_PATH

    assert main(["info", str(DEFAULT_ATLAS_PATH)]) == 0
    out = capsys.readouterr().out
    assert "schematic_zfish_6dpf" in out and "nMLF" in out


def test_info_errors_are_one_line(tmp_path: Path, capsys) -> None:
    bad = tmp_path / "notes.h5"
    bad.write_text("not hdf5")
    assert main(["info", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "not an HDF5 file" in err and len(err.splitlines()) == 1
    assert main(["info", str(tmp_path / "missing.h5")]) == 2
    assert "no such recording file" in capsys.readouterr().err


def test_demo_data_writes_a_loadable_fish(tmp_path: Path, capsys) -> None:
    out_dir = tmp_path / "demo"
    args = ["demo-data", "--out", str(out_dir), "--neurons", "300", "--frames", "120"]
    assert main([*args, "--seed", "4"]) == 0
    path = out_dir / "demo_fish.h5"
    assert "wrote" in capsys.readouterr().out
    rec = load_recording(path)
    assert (rec.n_neurons, rec.n_frames) == (300, 120) and rec.ground_truth is not None
    # refuses to overwrite without --force, then overwrites atomically with it
    assert main([*args, "--seed", "5"]) == 2
    assert "--force" in capsys.readouterr().err
    assert main([*args, "--seed", "5", "--force"]) == 0
    assert not np.array_equal(load_recording(path).behavior, rec.behavior)
    assert sorted(p.name for p in out_dir.iterdir()) == ["demo_fish.h5"]


def test_demo_data_to_an_h5_path_and_bad_options(tmp_path: Path, capsys) -> None:
    target = tmp_path / "fish7.h5"
    assert main(["demo-data", "--out", str(target), "--neurons", "150", "--frames", "60"]) == 0
    assert target.is_file()
    assert main(["demo-data", "--out", str(tmp_path / "x"), "--neurons", "5"]) == 2
    assert "--neurons must be at least 100, found 5" in capsys.readouterr().err


@pytest.mark.parametrize("command", ["info", "demo-data"])
def test_help_lists_the_commands(command: str, capsys) -> None:
    with pytest.raises(SystemExit):
        main([command, "--help"])
    assert "usage" in capsys.readouterr().out
