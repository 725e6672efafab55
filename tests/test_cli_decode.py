"""python -m decoding train / predict / evaluate / compare: files, JSON, clear errors."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest

from decoding.cli import main

TINY = shlex.split("--backbone tiny-bert --window 8 --epochs 2 --batch-size 8 --quiet --device cpu")


def run(command: str, recording: Path, *args: object) -> int:
    """``main([command, "--recording", recording, *args])``, every argument as a string."""
    return main([command, "--recording", str(recording), *map(str, args)])


@pytest.fixture(scope="module")
def trained(small_recording_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli") / "ck"
    progress = out.parent / "progress.jsonl"
    assert run("train", small_recording_path, "--out", out, "--progress-file", progress, *TINY) == 0
    return out, progress


def test_train_writes_checkpoint_and_progress(trained, capsys):
    out, progress = trained
    assert (out / "config.json").is_file() and (out / "model.safetensors").is_file()
    lines = [json.loads(line) for line in progress.read_text().splitlines()]
    kinds = [d["kind"] for d in lines]
    assert "epoch" in kinds and kinds[-2:] == ["done", "saved"]
    assert lines[-1]["test"]["rmse"] > 0 and lines[-1]["checkpoint"] == str(out)
    epoch = next(d for d in lines if d["kind"] == "epoch")
    assert {"epoch", "epochs", "step", "train_loss", "val_loss", "eta_s"} <= set(epoch)


def test_cancel_file_stops_and_saves(small_recording_path, tmp_path, capsys):
    cancel = tmp_path / "cancel"
    cancel.write_text("")
    out = tmp_path / "ck"
    rc = run("train", small_recording_path, "--out", out, "--cancel-file", cancel, *TINY)
    assert rc == 0 and (out / "config.json").is_file()
    assert "cancelled" in capsys.readouterr().out
    assert json.loads((out / "config.json").read_text())["cancelled"] is True


def test_evaluate_json(trained, small_recording_path, capsys):
    out, _ = trained
    capsys.readouterr()
    assert run("evaluate", small_recording_path, "--checkpoint", out, "--json") == 0
    d = json.loads(capsys.readouterr().out)
    assert {"rmse", "pearson_r", "r2", "per_channel", "noise_ceiling"} <= set(d)
    assert len(d["per_channel"]) == 6 and d["per_channel"][0]["name"] == "theta_00"
    assert d["n_frames"] == 80


def test_evaluate_table(trained, small_recording_path, capsys):
    out, _ = trained
    assert run("evaluate", small_recording_path, "--checkpoint", out, "--split", "all") == 0
    text = capsys.readouterr().out
    assert "overall" in text and "noise ceiling" in text


def test_predict_csv_and_h5(trained, small_recording_path, tmp_path):
    out, _ = trained
    csv = tmp_path / "p.csv"
    assert run("predict", small_recording_path, "--checkpoint", out, "--out", csv) == 0
    df = pd.read_csv(csv)
    assert list(df.columns[:3]) == ["frame", "time_s", "split"] and len(df) == 400
    assert list(df.columns[3:]) == [f"theta_{k:02d}" for k in range(6)]
    assert set(df["split"]) == {"train", "val", "test"}
    h5 = tmp_path / "p.h5"
    argv = ["--checkpoint", out, "--out", h5, "--start", 100, "--stop", 150]
    assert run("predict", small_recording_path, *argv) == 0
    with h5py.File(h5) as f:
        assert f["prediction"].shape == (50, 6) and f["frame"][0] == 100


def test_compare_table_and_stats(small_recording_path, capsys):
    rec = small_recording_path
    rc = run("compare", rec, *shlex.split("--backbones nonsense --seeds 2 --epochs 1"))
    assert rc == 2 and "error:" in capsys.readouterr().err
    # tiny-bert has no pretrained weights: compare runs it with random init only
    models = "--backbones ridge tiny-bert --inits pretrained random"
    rc = run("compare", rec, *shlex.split(f"{models} --seeds 2 --epochs 1 --window 8"))
    assert rc == 0
    text = capsys.readouterr().out
    assert "mean ± sem" in text and "Mann-Whitney U ridge vs tiny-bert/random" in text
    assert "tiny-bert/pretrained" not in text
    # the reference a decoder must beat: the training mean, scored on the same test frames
    from decoding.recording import load_recording
    from decoding.windows import chronological_split

    r = load_recording(rec)
    te, tr = (chronological_split(r.n_frames, (0.7, 0.1, 0.2)).part(p) for p in ("test", "train"))
    y = r.behavior[te.start : te.stop]
    want = float(np.sqrt(((y - r.behavior[tr.start : tr.stop].mean(0)) ** 2).mean()))
    line = next(x for x in text.splitlines() if x.startswith("mean predictor"))
    assert float(line.split()[2]) == pytest.approx(want, abs=1e-4)


@pytest.mark.parametrize(
    "argv, message",
    [
        (["evaluate", "--checkpoint", "{tmp}/nope"], "no such folder"),
        (["train", "--backbone", "nonsense", "--out", "{tmp}/x"], "not a registered name"),
        (["train", "--window", "0", "--out", "{tmp}/x"], "--window must be >= 1"),
        (["predict", "--checkpoint", "{ck}", "--out", "{tmp}/p.txt"], "expected a .csv or .h5"),
    ],
)
def test_errors_are_one_line(argv, message, trained, small_recording_path, tmp_path, capsys):
    out, _ = trained
    argv = [a.format(tmp=tmp_path, ck=out) for a in argv]
    rc = run(argv[0], small_recording_path, *argv[1:])
    err = capsys.readouterr().err
    assert rc == 2 and message in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1
