"""Population salience: which atlas regions does the decoder rely on across fish, how consistently?

Per fish, the per-neuron salience (``SalienceResult.mean_abs``, shape ``(N_f,)``) is summarised per
atlas region by :func:`decoding.anatomy.region_table`: each region's mean salience, and a
Mann-Whitney test of the region against the rest of that fish's neurons, corrected across regions.
The per-fish *effect* of a region is ``log2(region mean / median of the fish's region means)``:
0 = as salient as the fish's typical region, 1 = twice as salient. Ratios, not raw salience,
because salience scales differ between fish (their own projections and normalisers); the median
region, not the rest of the brain, as reference, because one very salient region would otherwise
lower every other region's ratio in that fish.

Across fish (the animal is the unit of replication), per region:

- ``mean_log2_ratio`` with a ``confidence`` interval across fish (Student t);
- ``n_fish`` (fish with at least ``min_neurons`` neurons in the region), ``n_significant`` (fish
  where the region is significantly *above* its rest after correction within that fish);
- ``consistency``: the share of fish in which the region is above the rest (effect > 0);
- the population test: a one-sided test across fish that the effect is above 0 (``t``: one-sample
  t-test, default; ``wilcoxon``: signed-rank; ``signflip``: sign-flip permutation test of the mean;
  with 5 fish the rank and permutation tests cannot go below p = 1/32), corrected across regions
  with :func:`scipy.stats.false_discovery_control` (Benjamini-Hochberg ``bh`` or
  Benjamini-Yekutieli ``by``), ``population`` = ``p_adjusted < alpha``.

A region that is strongly salient in one fish only has a large variance across fish and is not a
population effect; a region needs a positive effect in most fish.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from decoding.anatomy import region_table
from decoding.errors import SalienceError

__all__ = [
    "POPULATION_TESTS",
    "POPULATION_CORRECTIONS",
    "FishSalience",
    "PopulationResult",
    "population_salience",
    "true_driver_regions",
]

POPULATION_TESTS = ("t", "wilcoxon", "signflip")
POPULATION_CORRECTIONS = ("bh", "by")
OUTSIDE = "outside"


@dataclass(frozen=True)
class FishSalience:
    """One fish's per-neuron salience and the atlas region of each neuron.

    Parameters
    ----------
    fish_id
        The fish's name.
    salience
        ``(N,)`` non-negative salience per neuron (e.g. ``SalienceResult.mean_abs``).
    regions
        ``(N,)`` region acronym per neuron in the shared atlas (``"outside"`` is ignored).
    """

    fish_id: str
    salience: np.ndarray
    regions: np.ndarray

    def __post_init__(self) -> None:
        s = np.asarray(self.salience, dtype=np.float64)
        r = np.asarray(self.regions).astype(str)
        if s.ndim != 1 or r.shape != s.shape:
            raise SalienceError(
                f"fish {self.fish_id}: salience {s.shape} and regions {r.shape} must both be (N,)"
            )
        if not np.all(np.isfinite(s)):
            raise SalienceError(f"fish {self.fish_id}: salience contains NaN or inf; recompute it")
        object.__setattr__(self, "salience", s)
        object.__setattr__(self, "regions", r)


@dataclass
class PopulationResult:
    """The population table and the per-fish effects behind it.

    Attributes
    ----------
    table
        One row per region, most salient first: ``region, n_fish, mean_log2_ratio, ci_low,
        ci_high, n_significant, consistency, statistic, p_value, p_adjusted, population, rank``.
    per_fish
        Long table ``fish, region, n_neurons, mean, ratio_to_rest, log2_ratio, p_adjusted,
        significant`` (one row per fish and region; ``log2_ratio`` is the effect, relative to
        the fish's median region; ``significant``: above the rest in that fish, corrected).
    test, correction, alpha, confidence
        How it was computed.
    """

    table: pd.DataFrame
    per_fish: pd.DataFrame
    test: str
    correction: str
    alpha: float
    confidence: float

    def matrix(self) -> pd.DataFrame:
        """Fish x region ``log2_ratio`` (regions in the table's order; NaN where absent)."""
        wide = self.per_fish.pivot(index="fish", columns="region", values="log2_ratio")
        fish = list(dict.fromkeys(self.per_fish["fish"]))
        return wide.reindex(index=fish, columns=list(self.table["region"]))

    def populated(self) -> list[str]:
        """Regions reported as population effects (``population`` true), most salient first."""
        return list(self.table.loc[self.table["population"], "region"])


def _fish_rows(fish: FishSalience, alpha: float, min_neurons: int) -> pd.DataFrame:
    keep = fish.regions != OUTSIDE
    df = region_table(fish.salience[keep], fish.regions[keep], alpha=alpha, min_neurons=min_neurons)
    df = df[df["n_neurons"] >= min_neurons].copy()
    means = df["mean"].to_numpy(dtype=np.float64)
    typical = float(np.median(means)) if means.size else np.nan
    df["log2_ratio"] = np.log2(np.clip(means, 1e-30, None) / max(typical, 1e-30))
    ratio = df["ratio_to_rest"].to_numpy(dtype=np.float64)
    df["significant"] = df["significant"].astype(bool) & (ratio > 1)  # above the rest only
    df.insert(0, "fish", fish.fish_id)
    cols = ["fish", "region", "n_neurons", "mean", "ratio_to_rest", "log2_ratio", "p_adjusted"]
    return df[[*cols, "significant"]]


def _test(x: np.ndarray, test: str, seed: int) -> tuple[float, float]:
    """One-sided test across fish that the mean of ``x`` is above 0: (statistic, p)."""
    if x.size < 2 or np.allclose(x, x[0]):
        return np.nan, (np.nan if x.size < 2 else (0.0 if x[0] > 0 else 1.0))
    if test == "t":
        r = stats.ttest_1samp(x, 0.0, alternative="greater")
    elif test == "wilcoxon":
        r = stats.wilcoxon(x, alternative="greater")
    else:
        r = stats.permutation_test(
            (x,),
            np.mean,
            permutation_type="samples",
            alternative="greater",
            n_resamples=9999,
            random_state=seed,
        )
    return float(r.statistic), float(r.pvalue)


def _region_row(region: str, x: np.ndarray, sig: np.ndarray, test: str, conf: float, seed: int):
    mean = float(x.mean())
    lo = hi = np.nan
    if x.size >= 2:
        sem = stats.sem(x)
        if sem > 0:
            lo, hi = stats.t.interval(conf, x.size - 1, loc=mean, scale=sem)
        else:
            lo = hi = mean
    statistic, p = _test(x, test, seed)
    return {
        "region": region,
        "n_fish": int(x.size),
        "mean_log2_ratio": mean,
        "ci_low": float(lo),
        "ci_high": float(hi),
        "n_significant": int(sig.sum()),
        "consistency": float((x > 0).mean()),
        "statistic": statistic,
        "p_value": p,
    }


def population_salience(
    fish: Sequence[FishSalience],
    *,
    test: str = "t",
    correction: str = "bh",
    alpha: float = 0.05,
    confidence: float = 0.95,
    min_neurons: int = 3,
    min_fish: int = 2,
    seed: int = 0,
) -> PopulationResult:
    """Aggregate per-fish region salience into population statistics (see the module docstring).

    Parameters
    ----------
    fish
        One :class:`FishSalience` per animal (all on the same atlas; at least 2).
    test
        Population test across fish: ``t``, ``wilcoxon`` or ``signflip`` (one-sided, > 0).
    correction
        Multiple-comparison correction across regions: ``bh`` or ``by``.
    alpha
        Significance level, within each fish and for the population test.
    confidence
        Level of the confidence interval of the mean effect across fish.
    min_neurons
        A region counts in a fish only with at least this many neurons there.
    min_fish
        Regions present in fewer fish are listed but not tested (p = NaN).
    seed
        Random seed of the sign-flip test.

    Returns
    -------
    PopulationResult
        The per-region table (sorted by mean effect) and the per-fish long table.
    """
    if test not in POPULATION_TESTS:
        raise SalienceError(f"unknown population test {test!r}; choose one of {POPULATION_TESTS}")
    if correction not in POPULATION_CORRECTIONS:
        raise SalienceError(
            f"unknown correction {correction!r}; choose one of {POPULATION_CORRECTIONS}"
        )
    if len(fish) < 2:
        raise SalienceError(f"population salience needs at least 2 fish, got {len(fish)}")
    ids = [f.fish_id for f in fish]
    if len(set(ids)) != len(ids):
        raise SalienceError(f"fish ids must be unique, got {ids}")
    per_fish = pd.concat([_fish_rows(f, alpha, min_neurons) for f in fish], ignore_index=True)
    rows = []
    for region, g in per_fish.groupby("region", sort=True):
        x = g["log2_ratio"].to_numpy(np.float64)
        row = _region_row(str(region), x, g["significant"].to_numpy(bool), test, confidence, seed)
        if x.size < min_fish:
            row["statistic"] = row["p_value"] = np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    tested = table["p_value"].notna().to_numpy()
    table["p_adjusted"] = np.nan
    if tested.any():
        p = table.loc[tested, "p_value"].to_numpy(np.float64)
        table.loc[tested, "p_adjusted"] = stats.false_discovery_control(p, method=correction)
    table["population"] = (table["p_adjusted"] < alpha).to_numpy(bool)
    table = table.sort_values("mean_log2_ratio", ascending=False, kind="stable")
    table = table.reset_index(drop=True)
    table["rank"] = np.arange(1, len(table) + 1)
    return PopulationResult(table, per_fish, test, correction, alpha, confidence)


def true_driver_regions(recordings: Sequence[object], *, min_share: float = 0.5) -> set[str]:
    """Regions holding true drivers (non-zero ``driver_weight``) in at least ``min_share`` of the
    fish (synthetic fish only): the regions a population map should report.

    Parameters
    ----------
    recordings
        Recordings with ``ground_truth`` and ``regions`` (``(N,)`` acronyms).
    min_share
        Share of fish (0, 1] a region must drive in.

    Returns
    -------
    set of str
        Region acronyms.
    """
    counts: dict[str, int] = {}
    for rec in recordings:
        gt = getattr(rec, "ground_truth", None)
        if gt is None or rec.regions is None:
            raise SalienceError(f"recording {rec.fish_id}: needs ground truth and region labels")
        drivers = np.any(np.asarray(gt.driver_weight) != 0, axis=1)
        for r in set(np.asarray(rec.regions).astype(str)[drivers]) - {OUTSIDE}:
            counts[r] = counts.get(r, 0) + 1
    need = min_share * len(recordings)
    return {r for r, c in counts.items() if c >= need}


def fish_salience(
    model: object,
    info: object,
    recording: object,
    *,
    epoch: str = "test",
    method: str | None = None,
    atlas: object | None = None,
    device: str = "cpu",
) -> FishSalience:
    """A fish's :class:`FishSalience` from its decoder (a single-fish model or a multi-fish
    model's view) with :func:`decoding.salience.salience_of` and
    :func:`decoding.anatomy.neuron_regions`.

    Parameters
    ----------
    model, info
        The decoder and its :class:`~decoding.checkpoint.CheckpointInfo`.
    recording
        The fish it reads.
    epoch
        Frames to attribute: a split part (``test``, default) or a stimulus epoch name.
    method
        Salience method (default :data:`decoding.salience.DEFAULT_METHOD`).
    atlas
        For region lookup when the recording has no ``/regions`` (default: the shipped atlas).
    device
        Where to compute.

    Returns
    -------
    FishSalience
        ``mean_abs`` salience ``(N,)`` and region acronyms ``(N,)``.
    """
    from decoding.anatomy import neuron_regions
    from decoding.salience import DEFAULT_METHOD, salience_of

    res = salience_of(
        model, info, recording, epoch=epoch, method=method or DEFAULT_METHOD, device=device
    )
    return FishSalience(recording.fish_id, res.mean_abs, neuron_regions(recording, atlas))
