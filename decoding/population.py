"""Population salience: which atlas regions does the decoder rely on across fish, how consistently?

Per fish, the per-neuron salience (``SalienceResult.mean_abs``, shape ``(N_f,)``) gives each atlas
region an *effect* and a one-sided p-value (the animal's own evidence), by one of two rules:

- ``effect="top"`` (default): the fish's ``top_fraction`` most salient neurons (2 %, at least
  10) are its salient neurons; a region's effect is ``log2((n_top + 0.5) / (expected + 0.5))``
  (``expected = n_region * k / N``; 0 = as many as chance, 1 = twice as many) and its p-value the
  hypergeometric probability of at least ``n_top`` (:func:`scipy.stats.hypergeom`). Decoders rely
  on a few neurons per region (drivers are ~1 % of neurons, a handful per region): a region mean
  is dominated by its many other neurons, a count among the fish's most salient ones is not, and
  ranks are comparable between fish whose salience scales differ.
- ``effect="mean"``: ``log2(region mean / median of the fish's region means)``, with a one-sided
  Mann-Whitney test of the region against the rest of the fish (for effects that shift a whole
  region).

Within a fish, p-values are corrected across regions (Benjamini-Hochberg); ``significant`` =
above chance there. Across fish (the animal is the unit of replication), per region:

- ``mean_log2_ratio`` (the mean effect) with a ``confidence`` interval across fish (Student t);
- ``n_fish`` (fish with at least ``min_neurons`` neurons in the region), ``n_significant``;
- ``consistency``: the share of fish in which the effect is above 0;
- the population test, one-sided, that the region is salient across fish: ``t`` (one-sample
  t-test of the effects > 0, default), ``wilcoxon`` (signed-rank), ``signflip`` (sign-flip
  permutation test of the mean; with 5 fish these two cannot go below p = 1/32), or
  ``conjunction`` (partial conjunction: "salient in at least half of the fish", Fisher's
  combination of the largest ``n - u + 1`` per-fish p-values, ``u = ceil(n / 2)``; Benjamini &
  Heller 2008); corrected across regions with :func:`scipy.stats.false_discovery_control`
  (``bh`` or ``by``), ``population`` = ``p_adjusted < alpha``.

A region that is strongly salient in one fish only has a large spread across fish (t), or too
few fish with evidence (conjunction), and is not a population effect.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from decoding.errors import SalienceError

__all__ = [
    "POPULATION_EFFECTS",
    "POPULATION_TESTS",
    "POPULATION_CORRECTIONS",
    "FishSalience",
    "PopulationResult",
    "population_salience",
    "true_driver_regions",
]

POPULATION_EFFECTS = ("top", "mean")
POPULATION_TESTS = ("t", "wilcoxon", "signflip", "conjunction")
POPULATION_CORRECTIONS = ("bh", "by")
EFFECT_LABELS = {
    "top": "log2(salient neurons / chance)",
    "mean": "log2(region / typical region)",
}
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
        Long table ``fish, region, n_neurons, mean, n_top, expected_top, log2_ratio, p_value,
        p_adjusted, significant`` (one row per fish and region; ``log2_ratio`` is the effect;
        ``n_top``/``expected_top`` are filled for ``effect="top"``).
    effect, test, correction, alpha, confidence
        How it was computed.
    """

    table: pd.DataFrame
    per_fish: pd.DataFrame
    effect: str
    test: str
    correction: str
    alpha: float
    confidence: float

    def matrix(self) -> pd.DataFrame:
        """The per-fish effects as a fish x region table.

        Returns
        -------
        pandas.DataFrame
            ``log2_ratio`` per fish (rows, input order) and region (columns, the table's order);
            NaN where a fish has too few neurons in a region.
        """
        wide = self.per_fish.pivot(index="fish", columns="region", values="log2_ratio")
        fish = list(dict.fromkeys(self.per_fish["fish"]))
        return wide.reindex(index=fish, columns=list(self.table["region"]))

    def populated(self) -> list[str]:
        """The regions reported as population effects.

        Returns
        -------
        list of str
            Regions with ``population`` true, most salient first.
        """
        return list(self.table.loc[self.table["population"], "region"])

    @property
    def effect_label(self) -> str:
        """What ``log2_ratio`` means, for axis titles.

        Returns
        -------
        str
            E.g. ``"log2(salient neurons / chance)"``.
        """
        return EFFECT_LABELS[self.effect]


def _fish_rows(fish: FishSalience, effect: str, top_fraction: float, min_neurons: int):
    """One row per region of ``fish`` with at least ``min_neurons`` neurons: effect and p."""
    keep = fish.regions != OUTSIDE
    s, regions = fish.salience[keep], fish.regions[keep]
    names, inverse = np.unique(regions, return_inverse=True)
    n_region = np.bincount(inverse, minlength=names.size)
    means = np.bincount(inverse, weights=s, minlength=names.size) / np.maximum(n_region, 1)
    ok = n_region >= min_neurons
    df = pd.DataFrame({"region": names, "n_neurons": n_region, "mean": means})[ok]
    if effect == "top":
        k = max(10, int(np.ceil(top_fraction * s.size)))
        k = min(k, s.size)
        top = np.zeros(s.size, dtype=bool)
        top[np.argsort(-s, kind="stable")[:k]] = True
        n_top = np.bincount(inverse, weights=top, minlength=names.size)[ok]
        expected = df["n_neurons"].to_numpy() * k / s.size
        df["n_top"] = n_top.astype(int)
        df["expected_top"] = expected
        df["log2_ratio"] = np.log2((n_top + 0.5) / (expected + 0.5))
        df["p_value"] = stats.hypergeom.sf(n_top - 1, s.size, k, df["n_neurons"].to_numpy())
    else:
        typical = float(np.median(df["mean"])) if len(df) else np.nan
        df["n_top"], df["expected_top"] = -1, np.nan
        df["log2_ratio"] = np.log2(np.clip(df["mean"], 1e-30, None) / max(typical, 1e-30))
        df["p_value"] = [
            _greater_than_rest(s, inverse == j) for j in np.flatnonzero(ok)
        ]
    p = df["p_value"].to_numpy(np.float64)
    df["p_adjusted"] = stats.false_discovery_control(p) if p.size else p
    df.insert(0, "fish", fish.fish_id)
    return df.reset_index(drop=True)


def _greater_than_rest(s: np.ndarray, mask: np.ndarray) -> float:
    """One-sided Mann-Whitney p that the region's salience is above the rest of the fish's."""
    if mask.all():
        return 1.0
    return float(stats.mannwhitneyu(s[mask], s[~mask], alternative="greater").pvalue)


def _test(x: np.ndarray, p_fish: np.ndarray, test: str, seed: int) -> tuple[float, float]:
    """One-sided test across fish that the region is salient: (statistic, p)."""
    if test == "conjunction":
        u = int(np.ceil(x.size / 2))
        largest = np.sort(p_fish)[u - 1 :]
        r = stats.combine_pvalues(np.clip(largest, 1e-300, 1.0), method="fisher")
        return float(r.statistic), float(r.pvalue)
    if np.allclose(x, x[0]):
        return np.nan, (0.0 if x[0] > 0 else 1.0)
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


def _region_row(region: str, g: pd.DataFrame, options: dict) -> dict:
    """The across-fish row of one region from its per-fish rows ``g``."""
    x = g["log2_ratio"].to_numpy(np.float64)
    mean = float(x.mean())
    lo = hi = np.nan
    if x.size >= 2:
        sem = stats.sem(x)
        lo, hi = (
            stats.t.interval(options["confidence"], x.size - 1, loc=mean, scale=sem)
            if sem > 0
            else (mean, mean)
        )
    statistic = p = np.nan
    if x.size >= max(2, options["min_fish"]):
        statistic, p = _test(x, g["p_value"].to_numpy(np.float64), options["test"], options["seed"])
    return {
        "region": region,
        "n_fish": int(x.size),
        "mean_log2_ratio": mean,
        "ci_low": float(lo),
        "ci_high": float(hi),
        "n_significant": int(g["significant"].sum()),
        "consistency": float((x > 0).mean()),
        "statistic": statistic,
        "p_value": p,
    }


def _check_options(fish: Sequence[FishSalience], options: dict) -> None:
    for name, allowed in (
        ("effect", POPULATION_EFFECTS),
        ("test", POPULATION_TESTS),
        ("correction", POPULATION_CORRECTIONS),
    ):
        if options[name] not in allowed:
            raise SalienceError(
                f"unknown population {name} {options[name]!r}; choose one of {allowed}"
            )
    if not 0 < options["top_fraction"] < 1:
        raise SalienceError(f"top_fraction must be in (0, 1), got {options['top_fraction']}")
    if len(fish) < 2:
        raise SalienceError(f"population salience needs at least 2 fish, got {len(fish)}")
    ids = [f.fish_id for f in fish]
    if len(set(ids)) != len(ids):
        raise SalienceError(f"fish ids must be unique, got {ids}")


def population_salience(
    fish: Sequence[FishSalience],
    *,
    effect: str = "top",
    top_fraction: float = 0.02,
    min_neurons: int = 3,
    min_fish: int = 2,
    test: str = "t",
    alpha: float = 0.05,
    correction: str = "bh",
    confidence: float = 0.95,
    seed: int = 0,
) -> PopulationResult:
    """Aggregate per-fish region salience into population statistics (see the module docstring).

    Parameters
    ----------
    fish
        One :class:`FishSalience` per animal (all on the same atlas; at least 2).
    effect
        Per-fish region effect: ``top`` (enrichment among the fish's most salient neurons) or
        ``mean`` (region mean over the fish's typical region).
    top_fraction
        ``effect="top"``: the share of each fish's neurons counted as its most salient (at least
        10 neurons).
    min_neurons
        A region counts in a fish only with at least this many neurons there.
    min_fish
        Regions present in fewer fish are listed but not tested (p = NaN).
    test
        Population test across fish: ``t``, ``wilcoxon``, ``signflip`` or ``conjunction``.
    alpha
        Significance level, within each fish and for the population test.
    correction
        Multiple-comparison correction across regions: ``bh`` or ``by``.
    confidence
        Level of the confidence interval of the mean effect across fish.
    seed
        Random seed of the sign-flip test.

    Returns
    -------
    PopulationResult
        The per-region table (sorted by mean effect) and the per-fish long table.
    """
    options = {
        "effect": effect, "test": test, "correction": correction, "confidence": confidence,
        "top_fraction": top_fraction, "min_fish": min_fish, "seed": seed,
    }  # fmt: skip
    _check_options(fish, options)
    per_fish = pd.concat(
        [_fish_rows(f, effect, top_fraction, min_neurons) for f in fish], ignore_index=True
    )
    per_fish["significant"] = per_fish["p_adjusted"] < alpha
    rows = [_region_row(str(r), g, options) for r, g in per_fish.groupby("region", sort=True)]
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
    return PopulationResult(table, per_fish, effect, test, correction, alpha, confidence)


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
