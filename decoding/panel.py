"""The generator panel benchmark: does salience find the true drivers on fish we did not tune on?

For every panel fish (:data:`decoding.synthetic.VARIANTS`) :func:`run_panel` trains the default
decoder, the LSTM and ridge baselines (chronological split, training-only normalisation), scores
their test RMSE against the fish's noise ceiling, and scores per-neuron maps against the true
drivers (``|driver_weight| > 0``): every requested salience method on the default decoder, the
default method on the LSTM, ridge ``|w|·σ`` and the univariate ``|corr(ΔF/F, tail)|`` map
(training frames). Scores: AUROC, average precision, precision among the top ``k`` (``k`` = number
of true drivers) and the salience rank of each true driver region (regions holding ≥ 2 % of the
true importance).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import torch

from decoding.salience import DEFAULT_METHOD
from decoding.salience_check import ground_truth_recovery
from decoding.train import TrainConfig, evaluate, fit

if TYPE_CHECKING:
    from decoding.checkpoint import CheckpointInfo
    from decoding.recording import Recording

__all__ = ["PanelConfig", "FishResult", "run_fish", "run_panel", "univariate_map", "ridge_map"]


@dataclass(frozen=True)
class PanelConfig:
    """What :func:`run_panel` runs: fish size, seed, salience methods, decoders' overrides."""

    variants: tuple[str, ...] = ()  # empty = every registered variant
    n_neurons: int = 5000
    n_frames: int = 2000
    seed: int = 0
    methods: tuple[str, ...] = (DEFAULT_METHOD,)
    steps: int | str = 32
    decoder: dict = field(default_factory=dict)  # TrainConfig overrides for the default decoder
    baselines: tuple[str, ...] = ("lstm", "ridge")


@dataclass
class FishResult:
    """One panel fish: decoders' test RMSE and every map's recovery scores."""

    fish: str
    noise_ceiling: float
    decoders: pd.DataFrame  # decoder, test_rmse, ratio, train_s
    maps: pd.DataFrame  # map, auroc, ap, precision_at_k, driver_region_ranks, seconds


def univariate_map(activity: np.ndarray, behavior: np.ndarray, frames: range) -> np.ndarray:
    """(N,) max over channels of |Pearson r| between each neuron and the behaviour on ``frames``.

    Parameters
    ----------
    activity
        (T, N) activity.
    behavior
        (T, K) behaviour.
    frames
        The frames to correlate on (the training part).

    Returns
    -------
    np.ndarray
        (N,) float64 in [0, 1].
    """
    x = np.asarray(activity[frames.start : frames.stop], dtype=np.float64)
    y = np.asarray(behavior[frames.start : frames.stop], dtype=np.float64)
    x = (x - x.mean(0)) / np.maximum(x.std(0), 1e-12)
    y = (y - y.mean(0)) / np.maximum(y.std(0), 1e-12)
    return np.abs(x.T @ y / len(x)).max(axis=1)


def ridge_map(model: torch.nn.Module) -> np.ndarray:
    """(N,) ridge ``|w|·σ``: the fit sees z-scored neurons, so ``|w|`` summed over channels and
    context frames is already per standard deviation of each neuron.

    Parameters
    ----------
    model
        A fitted ridge decoder (``linear`` layer over ``(2c + 1) N`` inputs, ``n_neurons``).

    Returns
    -------
    np.ndarray
        (N,) non-negative weights.
    """
    w = model.linear.weight.detach().cpu().numpy()  # (K, (2c + 1) N)
    n = int(model.n_neurons)
    return np.abs(w).reshape(w.shape[0], -1, n).sum(axis=(0, 1))


def _score(name: str, values: np.ndarray, rec: Recording, seconds: float) -> dict:
    gt = rec.ground_truth
    regions = rec.regions if rec.regions is not None else np.full(rec.n_neurons, "?")
    rep = ground_truth_recovery(values, gt.importance, regions, method=name)
    ranks = rep.regions.set_index("region")["salience_rank"]
    return {
        "map": name,
        "auroc": rep.auroc,
        "ap": rep.average_precision,
        "precision_at_k": rep.precision_at_drivers,
        "k": rep.n_drivers,
        "driver_region_ranks": [int(ranks[r]) for r in rep.driver_regions],
        "seconds": seconds,
    }


def _train(
    rec: Recording, config: TrainConfig
) -> tuple[torch.nn.Module, CheckpointInfo, float, float]:
    """``(model, info, test RMSE, seconds)`` of one decoder."""
    t0 = time.perf_counter()
    res = fit(rec, config)
    seconds = time.perf_counter() - t0
    rmse = evaluate(res.model, res.info, rec, part="test").rmse
    return res.model, res.info, float(rmse), seconds


def _salience_map(
    model: torch.nn.Module, info: CheckpointInfo, rec: Recording, method: str, steps: int | str
) -> tuple[np.ndarray, float]:
    """``(mean |salience| (N,), seconds)`` on the test frames."""
    from decoding.salience import salience_of

    t0 = time.perf_counter()
    res = salience_of(model, info, rec, epoch="test", method=method, steps=steps)
    return res.mean_abs, time.perf_counter() - t0


def run_fish(variant: str, config: PanelConfig, log: Callable[[str], None] = print) -> FishResult:
    """Generate one panel fish, train the decoders, score every map.

    Parameters
    ----------
    variant
        The panel fish (a :data:`decoding.synthetic.VARIANTS` name).
    config
        Size, seed, methods and decoders.
    log
        Called with one line when the fish is done.

    Returns
    -------
    FishResult
        The decoders' test RMSE and every map's recovery scores.
    """
    from decoding.synthetic import make_demo_fish

    rec = make_demo_fish(
        n_neurons=config.n_neurons, n_frames=config.n_frames, seed=config.seed, variant=variant
    )
    ceiling = float(rec.ground_truth.noise_ceiling_rmse)
    decoders, maps = [], []
    model, info, rmse, secs = _train(rec, TrainConfig(**{"seed": config.seed, **config.decoder}))
    decoders.append(("default", rmse, secs))
    for method in config.methods:
        values, s = _salience_map(model, info, rec, method, config.steps)
        maps.append(_score(f"default·{method}", values, rec, s))
    for name in config.baselines:
        bmodel, binfo, brmse, bsecs = _train(rec, TrainConfig(backbone=name, seed=config.seed))
        decoders.append((name, brmse, bsecs))
        if name == "ridge":
            maps.append(_score("ridge·|w|σ", ridge_map(bmodel), rec, 0.0))
        else:
            values, s = _salience_map(bmodel, binfo, rec, config.methods[0], config.steps)
            maps.append(_score(f"{name}·{config.methods[0]}", values, rec, s))
    split = info.split_for(rec.n_frames)
    t0 = time.perf_counter()
    corr = univariate_map(rec.activity, rec.behavior, split.train)
    maps.append(_score("univariate·|corr|", corr, rec, time.perf_counter() - t0))
    dec = pd.DataFrame(decoders, columns=["decoder", "test_rmse", "train_s"])
    dec["ratio"] = dec["test_rmse"] / ceiling
    log(f"{variant}: done")
    return FishResult(variant, ceiling, dec, pd.DataFrame(maps))


def run_panel(
    config: PanelConfig | None = None, log: Callable[[str], None] = print
) -> list[FishResult]:
    """Every panel fish of ``config`` (default: all variants at 5,000 neurons x 2,000 frames).

    Parameters
    ----------
    config
        What to run (default :class:`PanelConfig`).
    log
        Called with one line per finished fish.

    Returns
    -------
    list[FishResult]
        One per fish, in order.
    """
    from decoding.synthetic import VARIANTS

    config = config or PanelConfig()
    names: Sequence[str] = config.variants or tuple(VARIANTS)
    return [run_fish(v, config, log) for v in names]
