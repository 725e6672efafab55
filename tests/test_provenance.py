"""A checkpoint knows which recording it was trained on; using it on another one warns clearly."""

from __future__ import annotations

import json
import warnings

import pytest

from decoding.checkpoint import load_checkpoint, read_info
from decoding.cli import main
from decoding.provenance import (
    RecordingMismatchWarning,
    recording_fingerprint,
    recording_mismatch,
    short_id,
)
from decoding.recording import load_recording
from decoding.synthetic import make_demo_fish

TINY = ["--backbone", "tiny-bert", "--window", "8", "--epochs", "1", "--batch-size", "8"]


@pytest.fixture(scope="module")
def trained(small_recording_path, tmp_path_factory):
    out = tmp_path_factory.mktemp("prov") / "ck"
    args = ["train", "--recording", str(small_recording_path), "--out", str(out), "--quiet"]
    assert main([*args, *TINY, "--device", "cpu"]) == 0
    return out


@pytest.fixture(scope="module")
def other_path(tmp_path_factory):
    """Same shape and fish id as the small fish, different content (another seed)."""
    path = tmp_path_factory.mktemp("other") / "other.h5"
    rec = make_demo_fish(n_neurons=200, n_frames=400, seed=5)
    rec.fish_id = "small_fish"
    rec.save(path)
    return path


def test_fingerprint_is_content_not_file(small_recording_path, tmp_path):
    rec = load_recording(small_recording_path)
    fp = recording_fingerprint(rec)
    assert fp["frames"] == 400 and fp["neurons"] == 200 and fp["fish_id"] == "small_fish"
    copy = tmp_path / "copy.h5"
    rec.save(copy)  # another file, same content -> same fingerprint
    assert recording_fingerprint(load_recording(copy))["content"] == fp["content"]
    mem = make_demo_fish(n_neurons=200, n_frames=400, seed=0)
    assert recording_fingerprint(mem)["content"] == fp["content"]
    assert "v2" in fp["source"] and "variant='demo'" in fp["source"]


def test_checkpoint_stores_fingerprint_and_labels_metrics(trained, small_recording_path):
    info = read_info(trained)
    fp = recording_fingerprint(load_recording(small_recording_path))
    assert info.recording == fp
    assert info.metrics["test"]["recording"] == short_id(fp)
    saved = json.loads((trained / "config.json").read_text())
    assert saved["recording"]["content"] == fp["content"]


def test_same_recording_no_warning(trained, small_recording_path):
    with warnings.catch_warnings():
        warnings.simplefilter("error", RecordingMismatchWarning)
        load_checkpoint(trained, recording=load_recording(small_recording_path))


def test_other_recording_warns_not_refuses(trained, other_path):
    rec = load_recording(other_path)
    with pytest.warns(RecordingMismatchWarning, match="not on this recording"):
        model, info = load_checkpoint(trained, recording=rec)
    assert model is not None
    msg = recording_mismatch(info.recording, rec)
    assert "made by" in msg and "seed=5" in msg  # same id and shape: the source tells them apart


def test_old_checkpoint_without_fingerprint_is_flagged(small_recording):
    assert "no training-recording fingerprint" in recording_mismatch({}, small_recording)


@pytest.mark.parametrize("command", ["evaluate", "predict", "salience"])
def test_cli_prints_one_warning_line(command, trained, other_path, tmp_path, capsys):
    argv = [command, "--recording", str(other_path), "--checkpoint", str(trained)]
    if command == "predict":
        argv += ["--out", str(tmp_path / "p.csv")]
    if command == "salience":
        argv += ["--method", "ixg", "--out", str(tmp_path / "s.h5"), "--no-cache"]
    assert main([*argv, "--device", "cpu"]) == 0
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("warning:")]
    assert len(lines) == 1 and "trained on small_fish@" in lines[0]
    assert "Traceback" not in err
