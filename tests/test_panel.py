"""The generator-panel benchmark: every map scored against the truth, goals printed per fish."""

from __future__ import annotations

import json

import numpy as np
import pytest

from decoding.cli import main
from decoding.panel import PanelConfig, ridge_map, run_fish, univariate_map


def test_univariate_map_finds_a_planted_correlate() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(500, 20)).astype(np.float32)
    y = np.stack([x[:, 3] + 0.1 * rng.normal(size=500), rng.normal(size=500)], axis=1)
    m = univariate_map(x, y, range(0, 400))
    assert m.shape == (20,) and int(np.argmax(m)) == 3 and m[3] > 0.9


@pytest.fixture(scope="module")
def tiny_panel_fish():
    config = PanelConfig(
        variants=("sparse",),
        n_neurons=400,
        n_frames=400,
        methods=("saliency", "ixg"),
        baselines=("ridge",),
        decoder={"backbone": "tiny-llama", "epochs": 2, "window": 8},
    )
    return run_fish("sparse", config, log=lambda s: None)


def test_run_fish_scores_every_map_against_the_truth(tiny_panel_fish) -> None:
    r = tiny_panel_fish
    assert r.fish == "sparse" and r.noise_ceiling > 0
    assert list(r.decoders["decoder"]) == ["default", "ridge"]
    assert (r.decoders["ratio"] > 1).all()  # nobody beats the noise ceiling
    maps = r.maps.set_index("map")
    assert list(maps.index) == [
        "default·saliency", "default·ixg", "ridge·|w|σ", "univariate·|corr|"
    ]  # fmt: skip
    assert maps["auroc"].between(0, 1).all() and maps["ap"].between(0, 1).all()
    assert (maps["k"] == maps["k"].iloc[0]).all() and maps["k"].iloc[0] >= 3
    assert all(len(ranks) >= 1 for ranks in maps["driver_region_ranks"])


def test_ridge_map_is_weight_magnitude_per_neuron() -> None:
    from decoding.models import RidgeDecoder

    m = RidgeDecoder(n_neurons=5, n_outputs=2, context=1)
    import torch

    with torch.no_grad():
        m.linear.weight.zero_()
        m.linear.weight[0, 5 + 2] = -2.0  # centre frame, neuron 2
        m.linear.weight[1, 0 + 4] = 0.5  # previous frame, neuron 4
    np.testing.assert_allclose(ridge_map(m), [0, 0, 2.0, 0, 0.5])


def test_salience_bench_cli_prints_tables_goals_and_json(tmp_path, capsys) -> None:
    out = tmp_path / "panel.json"
    argv = ["salience-bench", "--variants", "fast", "--neurons", "300", "--frames", "300"]
    argv += ["--methods", "saliency", "--baselines", "ridge", "--json", str(out)]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "== fast (noise ceiling" in printed and "univariate·|corr|" in printed
    assert "== goals" in printed and "AUROC>=0.95" in printed and "RMSE < ridge" in printed
    payload = json.loads(out.read_text())
    assert payload[0]["fish"] == "fast" and payload[0]["maps"][0]["map"] == "default·saliency"


@pytest.mark.parametrize(
    ("flag", "value", "message"),
    [("--variants", "nope", "unknown demo fish variant"), ("--methods", "magic", "--methods")],
)
def test_salience_bench_bad_arguments_are_one_line(flag, value, message, capsys) -> None:
    assert main(["salience-bench", flag, value]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
