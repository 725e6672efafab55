"""``python -m decoding salience`` / ``salience-check`` end to end on a tiny trained checkpoint."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import pytest
import torch

import decoding.cli
from decoding.salience import SalienceResult

torch.set_num_threads(1)


def main(argv: list[str]) -> int:
    """``python -m decoding`` with only this command group registered (isolated from others)."""
    saved = decoding.cli.COMMAND_MODULES
    decoding.cli.COMMAND_MODULES = ("decoding.cli.salience",)
    try:
        return decoding.cli.main(argv)
    finally:
        decoding.cli.COMMAND_MODULES = saved


@pytest.fixture(scope="session")
def tiny_checkpoint(small_recording_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 2-layer GPT-2 decoder (window 5) trained for one epoch on the small fish."""
    from decoding.checkpoint import save_checkpoint
    from decoding.recording import load_recording
    from decoding.train import TrainConfig, fit

    rec = load_recording(small_recording_path)
    cfg = TrainConfig(backbone="tiny-gpt2", window=5, epochs=2, device="cpu", batch_size=16)
    res = fit(rec, cfg)
    return save_checkpoint(res.model, res.info, tmp_path_factory.mktemp("ckpt") / "tiny")


@pytest.fixture(scope="session")
def ridge_checkpoint(small_recording_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from decoding.checkpoint import save_checkpoint
    from decoding.recording import load_recording
    from decoding.train import TrainConfig, fit

    rec = load_recording(small_recording_path)
    res = fit(rec, TrainConfig(backbone="ridge", device="cpu"))
    return save_checkpoint(res.model, res.info, tmp_path_factory.mktemp("ckpt") / "ridge")


def _args(rec: Path, ckpt: Path, tmp: Path, *extra: str) -> list[str]:
    return [
        "salience",
        "--recording",
        str(rec),
        "--checkpoint",
        str(ckpt),
        "--cache-dir",
        str(tmp / "cache"),
        *extra,
    ]


def test_salience_writes_h5_and_csv_and_reuses_cache(
    small_recording_path, tiny_checkpoint, tmp_path, capsys
):
    out = tmp_path / "sal" / "left.h5"
    argv = _args(small_recording_path, tiny_checkpoint, tmp_path, "--epoch", "left")
    argv += ["--method", "ig", "--out"]
    assert main([*argv, str(out)]) == 0
    printed = capsys.readouterr().out
    assert "Integrated Gradients" in printed and "top 15 neurons" in printed
    res = SalienceResult.load(out)
    from decoding.recording import load_recording

    rec = load_recording(small_recording_path)
    ep = rec.epoch("left")
    assert (res.start, res.stop) == (ep.start, ep.stop)
    assert res.values.shape == (ep.stop - ep.start, rec.n_neurons)
    assert res.relative_delta < 0.01
    assert res.provenance["epoch"] == "left"
    csv = pd.read_csv(out.with_suffix(".csv"))
    assert list(csv.columns) == [
        "neuron", "neuron_id", "region", "x", "y", "z", "salience", "signed", "rank",
        "confidence",
    ]  # fmt: skip
    assert len(csv) == rec.n_neurons
    np.testing.assert_allclose(csv["salience"], res.mean_abs, rtol=1e-5)
    with h5py.File(out) as f:
        assert "anatomy/regions/p_adjusted" in f and "anatomy/lateralisation/li" in f
    # same request again: served from the cache, identical numbers
    out2 = tmp_path / "sal" / "left2.h5"
    assert main([*argv, str(out2)]) == 0
    assert "(cached)" in capsys.readouterr().out
    np.testing.assert_array_equal(SalienceResult.load(out2).values, res.values)


CSV_COLUMNS = [
    "neuron", "neuron_id", "region", "x_um", "y_um", "z_um", "salience", "signed_salience",
    "confidence",
]  # fmt: skip


def test_salience_csv_has_one_row_per_neuron(
    small_recording_path, ridge_checkpoint, tmp_path, capsys
):
    from decoding.anatomy import neuron_regions
    from decoding.recording import load_recording

    argv = _args(small_recording_path, ridge_checkpoint, tmp_path, "--method", "ixg")
    argv += ["--epoch", "left", "--out"]
    out = tmp_path / "sal" / "left.csv"
    assert main([*argv, str(out)]) == 0
    assert f"wrote {out}\n" in capsys.readouterr().out
    assert sorted(p.name for p in out.parent.iterdir()) == ["left.csv"]  # no .h5, no temp file
    csv = pd.read_csv(out)
    assert list(csv.columns) == CSV_COLUMNS
    rec = load_recording(small_recording_path)
    assert sorted(csv["neuron"]) == list(range(rec.n_neurons))
    assert csv["salience"].is_monotonic_decreasing
    conf = csv["confidence"].to_numpy()
    assert ((conf >= 0) & (conf <= 1)).all()
    assert conf[:5].mean() > conf[-50:].mean()  # the most salient neurons are the stable ones
    # the same numbers as the full .h5 result of the same request (served from the cache)
    full = tmp_path / "sal" / "left.h5"
    assert main([*argv, str(full)]) == 0
    res = SalienceResult.load(full)
    idx = csv["neuron"].to_numpy()
    scale = float(res.mean_abs.max())
    np.testing.assert_allclose(csv["salience"], res.mean_abs[idx], rtol=1e-5, atol=1e-7 * scale)
    np.testing.assert_allclose(
        csv["signed_salience"], res.signed_mean[idx], rtol=1e-5, atol=1e-7 * scale
    )
    np.testing.assert_allclose(csv["confidence"], res.confidence[idx], atol=1e-6)
    np.testing.assert_array_equal(csv["neuron_id"], rec.neuron_ids[idx])
    np.testing.assert_allclose(csv[["x_um", "y_um", "z_um"]], rec.positions_um[idx], rtol=1e-5)
    assert (csv["region"].to_numpy() == neuron_regions(rec)[idx]).all()


def test_salience_csv_with_confidence_and_without_neuron_ids(
    small_recording_copy, ridge_checkpoint, tmp_path, monkeypatch
):
    import decoding.cli.salience as cli_salience

    with h5py.File(small_recording_copy, "r+") as f:
        del f["neuron_ids"]
    compute = cli_salience._compute

    def with_confidence(*args, **kwargs):
        res = compute(*args, **kwargs)
        res.confidence = np.linspace(0.0, 1.0, res.n_neurons)
        return res

    monkeypatch.setattr(cli_salience, "_compute", with_confidence)
    out = tmp_path / "right.CSV"
    argv = _args(small_recording_copy, ridge_checkpoint, tmp_path, "--method", "ixg")
    assert main([*argv, "--epoch", "right", "--out", str(out)]) == 0
    csv = pd.read_csv(out)
    assert list(csv.columns) == [c for c in CSV_COLUMNS if c != "neuron_id"]
    expected = np.linspace(0.0, 1.0, len(csv))[csv["neuron"].to_numpy()]
    np.testing.assert_allclose(csv["confidence"], expected, rtol=1e-5, atol=1e-9)


def test_salience_ablation_by_region_and_ridge(
    small_recording_path, tiny_checkpoint, ridge_checkpoint, tmp_path, capsys
):
    out = tmp_path / "abl.h5"
    argv = _args(small_recording_path, tiny_checkpoint, tmp_path, "--method", "ablation")
    assert main([*argv, "--start", "100", "--stop", "130", "--out", str(out)]) == 0
    res = SalienceResult.load(out)
    assert res.method == "ablation" and res.params["groups"] > 5
    # ridge: Input x Gradient is weight x (normalised) input, frame by frame
    out = tmp_path / "ridge.h5"
    argv = _args(small_recording_path, ridge_checkpoint, tmp_path, "--method", "ixg")
    assert main([*argv, "--epoch", "right", "--out", str(out)]) == 0
    res = SalienceResult.load(out)
    from decoding.checkpoint import load_checkpoint
    from decoding.recording import load_recording

    model, info = load_checkpoint(ridge_checkpoint)
    rec = load_recording(small_recording_path)
    x = info.normalizer.transform(rec.activity[res.start : res.stop])
    w = model.linear.weight.detach().numpy() * info.target_normalizer.std[:, None]  # (K, N)
    np.testing.assert_allclose(res.values, x * w.sum(axis=0), rtol=1e-4, atol=1e-6)


def test_salience_check_prints_recovery_and_randomisation(
    small_recording_path, tiny_checkpoint, tmp_path, capsys
):
    report = tmp_path / "check.json"
    argv = _args(small_recording_path, tiny_checkpoint, tmp_path, "--epoch", "test")
    argv[0] = "salience-check"
    extra = ["--methods", "ig,ixg", "--randomise", "--by-epoch", "left,right"]
    assert main([*argv, *extra, "--json", str(report)]) == 0
    out = capsys.readouterr().out
    assert out.count("AUROC") == 2 and "Spearman rho" in out and "true driver regions" in out
    assert "lateralisation by epoch" in out
    import json

    figures = json.loads(report.read_text())
    assert 0.0 <= figures["methods"]["ig"]["recovery"]["auroc"] <= 1.0
    assert -1.0 <= figures["methods"]["ixg"]["randomisation"]["spearman"] <= 1.0
    assert set(figures["lateralisation"]) == {"left", "right"}


@pytest.mark.slow
def test_ablation_check_with_ridge(small_recording_path, ridge_checkpoint, tmp_path, capsys):
    argv = _args(small_recording_path, ridge_checkpoint, tmp_path, "--epoch", "test")
    argv[0] = "salience-check"
    extra = ["--methods", "ixg", "--ablation", "--k", "20", "--draws", "3", "--seeds", "1"]
    assert main([*argv, *extra]) == 0
    out = capsys.readouterr().out
    assert "ablation k=20" in out and "Mann-Whitney p" in out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--epoch", "sideways"], "no epoch named 'sideways'"),
        (["--epoch", "left#9"], "has 1 epochs named 'left'|epochs named 'left'"),
        (["--start", "10", "--stop", "5000"], r"not inside the recording .*stop <= 400"),
        (["--target", "tail"], "unknown salience target 'tail'"),
        (["--epoch", "left", "--start", "3"], "either (an )?-*epoch or -*start/-*stop"),
    ],
)
def test_salience_bad_input(
    small_recording_path, tiny_checkpoint, tmp_path, capsys, extra, message
):
    argv = _args(small_recording_path, tiny_checkpoint, tmp_path, *extra)
    assert main([*argv, "--out", str(tmp_path / "x.h5")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ")
    import re

    assert re.search(message, err), err
    assert not (tmp_path / "x.h5").exists()


def test_salience_missing_files(small_recording_path, tiny_checkpoint, tmp_path, capsys):
    argv = _args(tmp_path / "none.h5", tiny_checkpoint, tmp_path, "--out", str(tmp_path / "x.h5"))
    assert main(argv) == 2
    assert "no such file" in capsys.readouterr().err
    argv = _args(
        small_recording_path, tmp_path / "nockpt", tmp_path, "--out", str(tmp_path / "x.h5")
    )
    assert main(argv) == 2
    assert "nockpt" in capsys.readouterr().err
    argv = _args(small_recording_path, tiny_checkpoint, tmp_path, "--out", str(tmp_path / "x.txt"))
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --out ") and err.count("\n") == 1
    assert "expected a file name ending in .h5, .hdf5, .csv" in err and "found '.txt'" in err
    assert not (tmp_path / "x.txt").exists()


def test_lazy_recording_reads_only_the_frames_it_needs(small_recording_path, tiny_checkpoint):
    from decoding.recording import load_recording
    from decoding.salience import salience_from_checkpoint

    lazy = load_recording(small_recording_path)
    kw = dict(epoch="left", method="ig", baseline="rest", steps=8, cache=False)
    res = salience_from_checkpoint(tiny_checkpoint, lazy, **kw)
    assert not lazy.is_loaded
    loaded = load_recording(small_recording_path)
    _ = loaded.activity
    np.testing.assert_allclose(
        salience_from_checkpoint(tiny_checkpoint, loaded, **kw).values, res.values, rtol=1e-5
    )
    assert res.baseline == "rest"
