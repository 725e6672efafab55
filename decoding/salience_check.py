"""Can the salience map be trusted? Ground-truth recovery, weight randomisation and ablation checks.

* :func:`ground_truth_recovery` (synthetic fish): AUROC and average precision of the salience
  ranking against the true driver neurons (``|driver_weight|`` summed over channels > 0), precision
  among the top ``n_drivers``, and whether the regions holding the drivers rank first.
* :func:`randomisation_check` (Adebayo et al. 2018, "Sanity Checks for Saliency Maps"): the map of
  the same model with re-initialised weights must differ from the trained map; reports the Spearman
  rank correlation (near 1 = the map mostly reflects the input, not what the model learned).
* :func:`ablation_check` (the study's experiment): retrain with the same settings without the top-k
  salient neurons, and without k random neurons (several draws); ΔRMSE on the test split with a
  one-sided Mann-Whitney U test (as in the study) and Welch's t-test.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy import stats

from decoding.errors import SalienceError

__all__ = [
    "auroc",
    "average_precision",
    "RecoveryReport",
    "ground_truth_recovery",
    "randomise_weights",
    "RandomisationReport",
    "randomisation_check",
    "AblationReport",
    "drop_neurons",
    "ablation_check",
]


# ----------------------------------------------------------------------------------------------
# ranking metrics (no scikit-learn dependency)


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve of ``scores`` for binary ``labels`` (ties count one half)."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise SalienceError(f"AUROC needs positives and negatives; found {n_pos} and {n_neg}")
    ranks = stats.rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def average_precision(scores: np.ndarray, labels: np.ndarray) -> float:
    """Average precision (area under precision-recall, step-wise) of ranking by ``scores``."""
    labels = np.asarray(labels, dtype=bool)
    if not labels.any():
        raise SalienceError("average precision needs at least one positive")
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")
    hits = labels[order]
    precision = np.cumsum(hits) / np.arange(1, hits.size + 1)
    return float(precision[hits].mean())


# ----------------------------------------------------------------------------------------------
# ground truth


@dataclass
class RecoveryReport:
    """How well a salience map finds the true drivers of a synthetic fish."""

    method: str
    auroc: float
    average_precision: float
    chance_ap: float  # fraction of drivers (AP of a random ranking)
    n_drivers: int
    precision_at_drivers: float  # fraction of drivers among the top n_drivers neurons
    driver_regions: list[str]  # regions holding drivers, by true importance share
    top_regions: list[str]  # the same number of regions, by mean salience
    driver_regions_first: bool
    region_spearman: float  # region mean salience vs region mean true importance
    regions: pd.DataFrame = field(repr=False, default_factory=pd.DataFrame)

    def summary(self) -> str:
        hit = sum(r in self.driver_regions for r in self.top_regions)
        return (
            f"{self.method:<9} AUROC {self.auroc:.3f}  AP {self.average_precision:.3f} "
            f"(chance {self.chance_ap:.3f})  top-{self.n_drivers} precision "
            f"{self.precision_at_drivers:.3f}  driver regions in top {len(self.top_regions)}: "
            f"{hit}/{len(self.driver_regions)}  region rho {self.region_spearman:.2f}"
        )


def ground_truth_recovery(
    salience: np.ndarray,
    importance: np.ndarray,
    regions: np.ndarray | Sequence[str],
    *,
    method: str = "",
    min_share: float = 0.02,
) -> RecoveryReport:
    """Score a per-neuron salience ``(N,)`` against the true ``importance`` ``(N,)``.

    Driver regions are those holding at least ``min_share`` of the total true importance.
    """
    s = np.asarray(salience, dtype=np.float64)
    imp = np.asarray(importance, dtype=np.float64)
    regions = np.asarray(regions).astype(str)
    if not (s.shape == imp.shape == regions.shape) or s.ndim != 1:
        raise SalienceError(
            f"salience {s.shape}, importance {imp.shape} and regions {regions.shape} must all be "
            "(N,) for the same neurons"
        )
    truth = imp > 0
    n_drivers = int(truth.sum())
    top = np.argsort(-s, kind="stable")[:n_drivers]
    df = (
        pd.DataFrame({"region": regions, "salience": s, "importance": imp, "driver": truth})
        .groupby("region")
        .agg(
            n_neurons=("salience", "size"),
            n_drivers=("driver", "sum"),
            mean_salience=("salience", "mean"),
            mean_importance=("importance", "mean"),
            importance_sum=("importance", "sum"),
        )
        .reset_index()
    )
    df["importance_share"] = df["importance_sum"] / max(imp.sum(), 1e-30)
    df["salience_rank"] = df["mean_salience"].rank(ascending=False, method="min").astype(int)
    df["true_rank"] = df["mean_importance"].rank(ascending=False, method="min").astype(int)
    df = df.sort_values("salience_rank", kind="stable").reset_index(drop=True)
    drivers = df[df["importance_share"] >= min_share].sort_values(
        "importance_share", ascending=False
    )
    driver_regions = drivers["region"].tolist()
    top_regions = df["region"].head(len(driver_regions)).tolist()
    rho = float(stats.spearmanr(df["mean_salience"], df["mean_importance"]).statistic)
    return RecoveryReport(
        method=method,
        auroc=auroc(s, truth),
        average_precision=average_precision(s, truth),
        chance_ap=n_drivers / s.size,
        n_drivers=n_drivers,
        precision_at_drivers=float(truth[top].mean()) if n_drivers else float("nan"),
        driver_regions=driver_regions,
        top_regions=top_regions,
        driver_regions_first=set(top_regions) == set(driver_regions),
        region_spearman=rho,
        regions=df,
    )


# ----------------------------------------------------------------------------------------------
# randomisation


def randomise_weights(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """A copy of ``model`` with every parameter re-initialised (each module's ``reset_parameters``).

    Parameters of modules without ``reset_parameters`` (rare) are redrawn from N(0, 0.02).
    """
    rand = copy.deepcopy(model)
    torch.manual_seed(seed)
    touched: set[int] = set()
    for module in rand.modules():
        if hasattr(module, "reset_parameters") and callable(module.reset_parameters):
            module.reset_parameters()
            touched.update(id(p) for p in module.parameters(recurse=False))
    with torch.no_grad():
        for p in rand.parameters():
            if id(p) not in touched:
                p.normal_(0.0, 0.02)
    return rand.eval()


@dataclass
class RandomisationReport:
    method: str
    spearman: float  # rank correlation of per-neuron salience, trained vs randomised
    p_value: float
    top_overlap: float  # fraction of the trained top-k also in the randomised top-k
    k: int

    def summary(self) -> str:
        return (
            f"{self.method:<9} trained vs randomised weights: Spearman rho {self.spearman:+.3f} "
            f"(p {self.p_value:.2g}), top-{self.k} overlap {self.top_overlap:.2f}"
        )


def randomisation_check(
    trained: np.ndarray, randomised: np.ndarray, *, method: str = "", k: int = 50
) -> RandomisationReport:
    """Compare the per-neuron salience ``(N,)`` of a trained and a randomised-weights model."""
    a, b = np.asarray(trained, np.float64), np.asarray(randomised, np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise SalienceError(f"salience vectors must both be (N,); found {a.shape} and {b.shape}")
    res = stats.spearmanr(a, b)
    k = min(k, a.size)
    top_a = set(np.argsort(-a)[:k].tolist())
    top_b = set(np.argsort(-b)[:k].tolist())
    return RandomisationReport(
        method=method,
        spearman=float(res.statistic),
        p_value=float(res.pvalue),
        top_overlap=len(top_a & top_b) / k,
        k=k,
    )


# ----------------------------------------------------------------------------------------------
# ablation


def drop_neurons(recording: Any, remove: np.ndarray, *, label: str = "") -> Any:
    """A copy of ``recording`` without the neurons ``remove`` (indices); ground truth is kept."""
    from decoding.recording import GroundTruth, Recording

    keep = np.setdiff1d(np.arange(recording.n_neurons), np.asarray(remove, dtype=np.int64))
    gt = recording.ground_truth
    if gt is not None:
        gt = GroundTruth(gt.behavior_clean, gt.driver_weight[keep], gt.role[keep], gt.noise_std)
    opt = {
        name: (None if getattr(recording, name, None) is None else getattr(recording, name)[keep])
        for name in ("neuron_ids", "regions")
    }
    return Recording(
        np.asarray(recording.activity)[:, keep],
        recording.behavior,
        recording.positions_um[keep],
        frame_rate_hz=recording.frame_rate_hz,
        behavior_names=recording.behavior_names,
        behavior_units=recording.behavior_units,
        epochs=recording.epochs,
        fish_id=f"{recording.fish_id}{label}",
        atlas=recording.atlas,
        source=recording.source,
        ground_truth=gt,
        **opt,
    )


@dataclass
class AblationReport:
    k: int
    rmse_top: list[float]  # one per training seed, top-k salient neurons removed
    rmse_random: list[float]  # one per random draw of k neurons
    rmse_full: float | None  # retrained on all neurons with the same settings (reference)
    delta_rmse: float  # mean(rmse_top) - mean(rmse_random)
    p_mannwhitney: float  # one-sided: removing the top-k hurts more than removing k random
    p_welch: float
    seconds: float

    def summary(self) -> str:
        full = f"full {self.rmse_full:.4f}, " if self.rmse_full is not None else ""
        return (
            f"ablation k={self.k}: test RMSE {full}top-k removed "
            f"{np.mean(self.rmse_top):.4f} ± {np.std(self.rmse_top):.4f} (n={len(self.rmse_top)}), "
            f"random-k removed {np.mean(self.rmse_random):.4f} ± {np.std(self.rmse_random):.4f} "
            f"(n={len(self.rmse_random)}); ΔRMSE {self.delta_rmse:+.4f}, "
            f"Mann-Whitney p {self.p_mannwhitney:.3g}, Welch p {self.p_welch:.3g} "
            f"({self.seconds:.0f} s)"
        )


def ablation_check(
    recording: Any,
    info: Any,
    salience: np.ndarray,
    *,
    k: int = 50,
    n_random: int = 5,
    n_top_seeds: int = 3,
    seed: int = 0,
    overrides: dict[str, Any] | None = None,
    retrain_full: bool = True,
    log: Callable[[str], None] | None = None,
) -> AblationReport:
    """Retrain without the top-``k`` salient neurons (``n_top_seeds`` seeds) and without ``k``
    random neurons (``n_random`` draws), with the checkpoint's training settings (``overrides``
    for e.g. ``epochs``/``max_time_s``/``device``); compare test RMSEs. ``retrain_full`` also
    retrains on all neurons (the same-budget reference ``rmse_full``)."""
    from decoding.train import TrainConfig, evaluate, fit

    s = np.asarray(salience, dtype=np.float64)
    if s.shape != (recording.n_neurons,):
        raise SalienceError(
            f"salience has shape {s.shape} but the recording has {recording.n_neurons} neurons"
        )
    if not 1 <= k < recording.n_neurons:
        raise SalienceError(f"--k must be in 1..{recording.n_neurons - 1}, found {k}")
    if n_random < 2 or n_top_seeds < 1:
        raise SalienceError("the ablation test needs --draws >= 2 and --seeds >= 1")
    base = dict(getattr(info, "train_config", {}) or {})
    if not base:
        raise SalienceError(
            "the checkpoint does not record its training settings (train_config); retrain it "
            "with `python -m decoding train` to run the ablation check"
        )
    t0 = time.perf_counter()
    rng = np.random.default_rng(seed)
    top = np.argsort(-s, kind="stable")[:k]

    def run(remove: np.ndarray, run_seed: int, label: str) -> float:
        cfg = TrainConfig.from_dict({**base, **(overrides or {}), "seed": int(run_seed)})
        sub = drop_neurons(recording, remove, label=label)
        res = fit(sub, cfg)
        rmse = float(evaluate(res.model, res.info, sub, part="test").rmse)
        if log:
            log(f"  {label:<14} seed {run_seed}: test RMSE {rmse:.4f}")
        return rmse

    base_seed = int(base.get("seed", 0))
    rmse_full = run(np.zeros(0, dtype=np.int64), base_seed, "-full") if retrain_full else None
    rmse_top = [run(top, base_seed + i, "-top") for i in range(n_top_seeds)]
    rmse_random = []
    for d in range(n_random):
        pick = rng.choice(recording.n_neurons, size=k, replace=False)
        # the same training seeds as the top-k arm, so both arms share the seed-to-seed noise
        rmse_random.append(run(pick, base_seed + d % n_top_seeds, f"-random{d + 1}"))
    mw = stats.mannwhitneyu(rmse_top, rmse_random, alternative="greater")
    welch = stats.ttest_ind(rmse_top, rmse_random, equal_var=False, alternative="greater")
    return AblationReport(
        k=k,
        rmse_top=rmse_top,
        rmse_random=rmse_random,
        rmse_full=float(rmse_full) if rmse_full is not None else None,
        delta_rmse=float(np.mean(rmse_top) - np.mean(rmse_random)),
        p_mannwhitney=float(mw.pvalue),
        p_welch=float(welch.pvalue) if np.isfinite(welch.pvalue) else float("nan"),
        seconds=time.perf_counter() - t0,
    )
