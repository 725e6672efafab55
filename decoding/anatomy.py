"""Salience on the brain: per-region statistics, left/right lateralisation and top-k neuron tables.

Every function takes a per-neuron salience vector ``(N,)`` (usually
:attr:`decoding.salience.SalienceResult.mean_abs`) plus the neurons' region acronyms and positions,
and returns a :class:`pandas.DataFrame` ready for the CLI, a CSV file or the dashboard.

Region test: each region against all other neurons, two-sided, with a Mann-Whitney U test (default;
fast, rank based) or a permutation test of the difference of means (``n_permutations`` random
regions of the same size), p-values corrected across regions with Benjamini-Hochberg (``"bh"``,
default) or Holm (``"holm"``).

Lateralisation index per region: ``LI = (mean_L - mean_R) / (mean_L + mean_R)`` of the salience of
neurons left and right of the atlas midline (``x < midline_x_um`` is left), from -1 (only right) to
+1 (only left). Means, not sums, so a side with more neurons does not win by count alone.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np
import pandas as pd
from scipy import stats

from decoding.errors import SalienceError

__all__ = [
    "TESTS",
    "CORRECTIONS",
    "NeuronSalience",
    "PlacedNeurons",
    "RegionLookup",
    "neuron_regions",
    "neuron_sides",
    "base_acronym",
    "region_table",
    "lateralisation",
    "lateralisation_by_epoch",
    "top_neurons",
    "neuron_table",
    "salience_csv_table",
    "adjust_pvalues",
]

TESTS = ("mannwhitney", "permutation")
CORRECTIONS = ("bh", "holm", "none")


# ----------------------------------------------------------------------------------------------
# what the functions read


class PlacedNeurons(Protocol):
    """Neurons with positions and optional labels (a :class:`~decoding.recording.Recording`)."""

    positions_um: np.ndarray  # (N, 3) atlas µm
    regions: np.ndarray | None  # (N,) acronyms the recording carries, if any
    neuron_ids: np.ndarray | None  # (N,) ids in the source data, if any


class RegionLookup(Protocol):
    """An atlas that names the region at each position (:class:`~decoding.atlas.Atlas`)."""

    def acronyms_of(self, points_um: np.ndarray) -> np.ndarray:
        """(N,) acronyms (``"outside"`` outside the volume).

        Parameters
        ----------
        points_um
            (N, 3) atlas µm.

        Returns
        -------
        np.ndarray
            (N,) str.
        """
        ...


class NeuronSalience(Protocol):
    """Per-neuron salience summaries (a :class:`~decoding.salience.SalienceResult`)."""

    @property
    def mean_abs(self) -> np.ndarray: ...

    @property
    def signed_mean(self) -> np.ndarray: ...

    confidence: np.ndarray | None


# ----------------------------------------------------------------------------------------------
# neuron labels


def neuron_regions(recording: PlacedNeurons, atlas: RegionLookup | None = None) -> np.ndarray:
    """(N,) region acronym of every neuron: the recording's own ``regions`` or an atlas lookup.

    Parameters
    ----------
    recording
        The neurons; their ``regions`` win when present.
    atlas
        Looked up otherwise (default: the shipped atlas).

    Returns
    -------
    np.ndarray
        (N,) str acronyms.
    """
    regions = recording.regions
    if regions is not None:
        return np.asarray(regions).astype(str)
    if atlas is None:
        from decoding.atlas import default_atlas

        atlas = default_atlas()
    return np.asarray(atlas.acronyms_of(recording.positions_um)).astype(str)


def neuron_sides(positions_um: np.ndarray, midline_x_um: float) -> np.ndarray:
    """(N,) ``"L"`` or ``"R"``: left hemisphere is ``x < midline_x_um`` (atlas convention).

    Parameters
    ----------
    positions_um
        (N, 3) atlas µm.
    midline_x_um
        The atlas midline.

    Returns
    -------
    np.ndarray
        (N,) str.
    """
    x = np.asarray(positions_um, dtype=np.float64)[:, 0]
    return np.where(x < float(midline_x_um), "L", "R")


def base_acronym(acronyms: np.ndarray | Sequence[str]) -> np.ndarray:
    """Acronyms without their side suffix: ``"r4_L"`` -> ``"r4"`` (others unchanged).

    Parameters
    ----------
    acronyms
        (N,) region acronyms.

    Returns
    -------
    np.ndarray
        (N,) str.
    """
    a = np.asarray(acronyms).astype(str)
    return np.array([x[:-2] if x.endswith(("_L", "_R")) else x for x in a.tolist()], dtype=str)


def _check(salience: np.ndarray, n: int, what: str) -> np.ndarray:
    s = np.asarray(salience, dtype=np.float64)
    if s.ndim != 1:
        raise SalienceError(f"salience must be one value per neuron (N,); found shape {s.shape}")
    if s.shape[0] != n:
        raise SalienceError(
            f"salience has {s.shape[0]} neurons but {what} has {n}; use the salience computed "
            "on this recording"
        )
    if not np.all(np.isfinite(s)):
        raise SalienceError("salience contains NaN or inf; recompute it")
    return s


def _checked_neurons(
    salience: np.ndarray, regions: np.ndarray | Sequence[str], positions_um: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(regions as str, salience, positions)`` of one neuron table, checked to agree on N."""
    regions = np.asarray(regions).astype(str)
    s = _check(salience, regions.size, "the region labels")
    pos = np.asarray(positions_um, dtype=np.float64)
    if pos.shape != (s.size, 3):
        raise SalienceError(f"positions_um must be (N, 3) = ({s.size}, 3); found {pos.shape}")
    return regions, s, pos


# ----------------------------------------------------------------------------------------------
# multiple-comparison correction


def adjust_pvalues(p: np.ndarray | Sequence[float], method: str = "bh") -> np.ndarray:
    """Adjusted p-values: Benjamini-Hochberg (``"bh"``), Holm (``"holm"``) or ``"none"``.

    Parameters
    ----------
    p
        Raw p-values.
    method
        ``"bh"`` (:func:`scipy.stats.false_discovery_control`), ``"holm"`` or ``"none"``.

    Returns
    -------
    np.ndarray
        Adjusted p-values in the input order, at most 1.
    """
    p = np.asarray(p, dtype=np.float64)
    m = p.size
    if method not in CORRECTIONS:
        raise SalienceError(f"unknown p-value correction {method!r}; choose one of {CORRECTIONS}")
    if method == "none" or m == 0:
        return p.copy()
    if method == "bh":
        return stats.false_discovery_control(p, method="bh")
    order = np.argsort(p, kind="stable")  # Holm: scipy has no step-down FWER correction
    adj = np.maximum.accumulate(p[order] * (m - np.arange(m)))
    out = np.empty(m)
    out[order] = np.minimum(adj, 1.0)
    return out


# ----------------------------------------------------------------------------------------------
# per region


def _permutation_p(
    s: np.ndarray, mask: np.ndarray, n_permutations: int, rng: np.random.Generator
) -> float:
    """Two-sided p of mean(region) - mean(rest) against random regions of the same size
    (:func:`scipy.stats.permutation_test` of ``|mean difference|``, ``(1 + hits) / (1 + n)``)."""

    def abs_diff(inside: np.ndarray, rest: np.ndarray, axis: int) -> np.ndarray:
        return np.abs(inside.mean(axis=axis) - rest.mean(axis=axis))

    res = stats.permutation_test(
        (s[mask], s[~mask]),
        abs_diff,
        permutation_type="independent",
        vectorized=True,
        n_resamples=n_permutations,
        alternative="greater",
        batch=max(1, 2**22 // max(s.size, 1)),  # bounds the (batch, N) resample array
        random_state=rng,
    )
    return float(res.pvalue)


def _region_stats(s: np.ndarray, mask: np.ndarray) -> dict[str, float | int]:
    """Neurons, mean/median/sum/share of salience of the region ``mask``, and mean vs the rest."""
    inside, rest = s[mask], s[~mask]
    total = s.sum()
    rest_mean = float(rest.mean()) if rest.size else np.nan
    return {
        "n_neurons": int(mask.sum()),
        "mean": float(inside.mean()),
        "median": float(np.median(inside)),
        "sum": float(inside.sum()),
        "share": float(inside.sum() / total) if total > 0 else np.nan,
        "ratio_to_rest": float(inside.mean() / rest_mean) if rest_mean else np.nan,
    }


def region_table(
    salience: np.ndarray,
    regions: np.ndarray | Sequence[str],
    *,
    test: str = "mannwhitney",
    correction: str = "bh",
    n_permutations: int = 1000,
    alpha: float = 0.05,
    seed: int = 0,
    min_neurons: int = 3,
) -> pd.DataFrame:
    """One row per region: neurons, mean/median/sum/share of salience, test vs the rest, rank.

    Columns: ``region, n_neurons, mean, median, sum, share, ratio_to_rest, p_value, p_adjusted,
    significant, rank``; sorted by ``mean`` (rank 1 = most salient region on average). Regions with
    fewer than ``min_neurons`` neurons are listed but not tested (p = NaN).

    Parameters
    ----------
    salience
        (N,) per-neuron salience.
    regions
        (N,) region acronyms.
    test
        ``"mannwhitney"`` or ``"permutation"``.
    correction
        See :func:`adjust_pvalues`.
    n_permutations
        Random regions per permutation test.
    alpha
        Significance level of ``significant``.
    seed
        Seed of the permutations.
    min_neurons
        Smallest region (and rest) that is tested.

    Returns
    -------
    pd.DataFrame
        One row per region, most salient first.
    """
    regions = np.asarray(regions).astype(str)
    s = _check(salience, regions.size, "the region labels")
    if test not in TESTS:
        raise SalienceError(f"unknown region test {test!r}; choose one of {TESTS}")
    if correction not in CORRECTIONS:
        raise SalienceError(
            f"unknown p-value correction {correction!r}; choose one of {CORRECTIONS}"
        )
    rng = np.random.default_rng(seed)
    names, inverse = np.unique(regions, return_inverse=True)
    rows = []
    for r, name in enumerate(names):
        mask = inverse == r
        p = np.nan
        if mask.sum() >= min_neurons and s.size - mask.sum() >= min_neurons:
            if test == "mannwhitney":
                p = float(stats.mannwhitneyu(s[mask], s[~mask], alternative="two-sided").pvalue)
            else:
                p = _permutation_p(s, mask, n_permutations, rng)
        rows.append({"region": str(name), **_region_stats(s, mask), "p_value": p})
    df = pd.DataFrame(rows)
    tested = df["p_value"].notna().to_numpy()
    df["p_adjusted"] = np.nan
    df.loc[tested, "p_adjusted"] = adjust_pvalues(df.loc[tested, "p_value"].to_numpy(), correction)
    df["significant"] = df["p_adjusted"] < alpha
    df = df.sort_values("mean", ascending=False, kind="stable").reset_index(drop=True)
    df["rank"] = np.arange(1, len(df) + 1)
    df.attrs.update({"test": test, "correction": correction, "alpha": alpha})
    return df


# ----------------------------------------------------------------------------------------------
# lateralisation


def _li(left: float, right: float) -> float:
    denom = left + right
    return float((left - right) / denom) if denom > 0 else np.nan


def lateralisation(
    salience: np.ndarray,
    positions_um: np.ndarray,
    regions: np.ndarray | Sequence[str],
    midline_x_um: float,
    *,
    correction: str = "bh",
    min_neurons: int = 3,
) -> pd.DataFrame:
    """Left vs right per region (side suffix dropped: ``r4_L`` and ``r4_R`` are both ``r4``) and
    overall (``region == "all"``, first row).

    Columns: ``region, n_left, n_right, mean_left, mean_right, sum_left, sum_right, li, p_value,
    p_adjusted`` (Mann-Whitney left vs right, corrected across regions; the ``all`` row is not
    corrected). ``li`` > 0 means the left side is more salient.

    Parameters
    ----------
    salience
        (N,) per-neuron salience.
    positions_um
        (N, 3) atlas µm.
    regions
        (N,) region acronyms.
    midline_x_um
        The atlas midline (left: x below it).
    correction
        See :func:`adjust_pvalues`.
    min_neurons
        Smallest side that is tested.

    Returns
    -------
    pd.DataFrame
        The ``all`` row, then one row per base region.
    """
    regions = np.asarray(regions).astype(str)
    s = _check(salience, regions.size, "the region labels")
    pos = np.asarray(positions_um)
    if pos.shape != (s.size, 3):
        raise SalienceError(f"positions_um must be (N, 3) = ({s.size}, 3); found {pos.shape}")
    side = neuron_sides(pos, midline_x_um)
    base = base_acronym(regions)

    def row(name: str, mask: np.ndarray) -> dict[str, Any]:
        left, right = s[mask & (side == "L")], s[mask & (side == "R")]
        p = np.nan
        if left.size >= min_neurons and right.size >= min_neurons:
            p = float(stats.mannwhitneyu(left, right, alternative="two-sided").pvalue)
        ml = float(left.mean()) if left.size else np.nan
        mr = float(right.mean()) if right.size else np.nan
        return {
            "region": name,
            "n_left": int(left.size),
            "n_right": int(right.size),
            "mean_left": ml,
            "mean_right": mr,
            "sum_left": float(left.sum()),
            "sum_right": float(right.sum()),
            "li": _li(ml, mr) if left.size and right.size else np.nan,
            "p_value": p,
        }

    per = pd.DataFrame([row(str(b), base == b) for b in np.unique(base)])
    tested = per["p_value"].notna().to_numpy()
    per["p_adjusted"] = np.nan
    per.loc[tested, "p_adjusted"] = adjust_pvalues(
        per.loc[tested, "p_value"].to_numpy(), correction
    )
    overall = row("all", np.ones(s.size, dtype=bool))
    overall["p_adjusted"] = overall["p_value"]
    return pd.concat([pd.DataFrame([overall]), per], ignore_index=True)


def lateralisation_by_epoch(
    per_epoch: Mapping[str, np.ndarray],
    positions_um: np.ndarray,
    regions: np.ndarray | Sequence[str],
    midline_x_um: float,
    *,
    correction: str = "bh",
    min_neurons: int = 3,
) -> pd.DataFrame:
    """:func:`lateralisation` for each epoch's salience (``{epoch name: (N,)}``), stacked with an
    ``epoch`` column first: e.g. left- vs right-motion epochs should light opposite sides.

    Parameters
    ----------
    per_epoch
        Epoch name -> (N,) salience.
    positions_um, regions, midline_x_um, correction, min_neurons
        As for :func:`lateralisation`.

    Returns
    -------
    pd.DataFrame
        The epochs' tables stacked, ``epoch`` first.
    """
    if not per_epoch:
        raise SalienceError("lateralisation_by_epoch: no epochs given")
    parts = []
    for name, sal in per_epoch.items():
        df = lateralisation(
            sal, positions_um, regions, midline_x_um, correction=correction, min_neurons=min_neurons
        )
        df.insert(0, "epoch", str(name))
        parts.append(df)
    return pd.concat(parts, ignore_index=True)


# ----------------------------------------------------------------------------------------------
# neuron tables


def neuron_table(
    salience: np.ndarray,
    regions: np.ndarray | Sequence[str],
    positions_um: np.ndarray,
    *,
    signed: np.ndarray | None = None,
    neuron_ids: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
) -> pd.DataFrame:
    """One row per neuron (in recording order): ``neuron, neuron_id, region, x, y, z, salience,
    signed, rank`` (rank 1 = most salient), and ``confidence`` when given.

    Parameters
    ----------
    salience
        (N,) per-neuron salience.
    regions
        (N,) region acronyms.
    positions_um
        (N, 3) atlas µm.
    signed
        (N,) signed salience, or None.
    neuron_ids
        (N,) ids in the source data, or None.
    confidence
        (N,) in [0, 1], or None.

    Returns
    -------
    pd.DataFrame
        One row per neuron, in recording order.
    """
    regions, s, pos = _checked_neurons(salience, regions, positions_um)
    rank = np.empty(s.size, dtype=np.int64)
    rank[np.argsort(-s, kind="stable")] = np.arange(1, s.size + 1)
    df = pd.DataFrame(
        {
            "neuron": np.arange(s.size),
            "neuron_id": (
                np.asarray(neuron_ids, dtype=np.int64)
                if neuron_ids is not None
                else np.arange(s.size)
            ),
            "region": regions,
            "x": pos[:, 0],
            "y": pos[:, 1],
            "z": pos[:, 2],
            "salience": s,
        }
    )
    if signed is not None:
        df["signed"] = _check(signed, s.size, "the salience")
    df["rank"] = rank
    if confidence is not None:
        df["confidence"] = _check(confidence, s.size, "the salience")
    return df


def salience_csv_table(
    salience: np.ndarray,
    signed: np.ndarray,
    regions: np.ndarray | Sequence[str],
    positions_um: np.ndarray,
    *,
    confidence: np.ndarray | None = None,
    neuron_ids: np.ndarray | None = None,
) -> pd.DataFrame:
    """The per-neuron salience CSV: one row per neuron, most salient first.

    Columns: ``neuron`` (index in the recording), ``neuron_id`` (only when ``neuron_ids`` is
    given), ``region``, ``x_um, y_um, z_um``, ``salience`` (mean |attribution| over the frames,
    :attr:`~decoding.salience.SalienceResult.mean_abs`), ``signed_salience``
    (:attr:`~decoding.salience.SalienceResult.signed_mean`) and ``confidence`` (``(N,)`` values
    in [0, 1], NaN — an empty CSV cell — when ``None``). Sorted by ``salience`` descending, ties
    in neuron order.

    Parameters
    ----------
    salience
        (N,) mean |attribution|.
    signed
        (N,) signed mean.
    regions
        (N,) region acronyms.
    positions_um
        (N, 3) atlas µm.
    confidence
        (N,) in [0, 1], or None.
    neuron_ids
        (N,) ids in the source data, or None.

    Returns
    -------
    pd.DataFrame
        The CSV's rows.
    """
    regions, s, pos = _checked_neurons(salience, regions, positions_um)
    columns: dict[str, Any] = {"neuron": np.arange(s.size)}
    if neuron_ids is not None:
        ids = np.asarray(neuron_ids, dtype=np.int64)
        if ids.shape != (s.size,):
            raise SalienceError(f"neuron_ids must be ({s.size},); found {ids.shape}")
        columns["neuron_id"] = ids
    if confidence is None:
        conf = np.full(s.size, np.nan)
    else:
        conf = np.asarray(confidence, dtype=np.float64)
        if conf.shape != (s.size,):
            raise SalienceError(f"confidence must be ({s.size},); found {conf.shape}")
    columns.update(
        region=regions,
        x_um=pos[:, 0],
        y_um=pos[:, 1],
        z_um=pos[:, 2],
        salience=s,
        signed_salience=_check(signed, s.size, "the salience"),
        confidence=conf,
    )
    order = np.argsort(-s, kind="stable")
    return pd.DataFrame(columns).iloc[order].reset_index(drop=True)


def result_csv_table(
    result: NeuronSalience, recording: PlacedNeurons, regions: np.ndarray
) -> pd.DataFrame:
    """:func:`salience_csv_table` of a :class:`~decoding.salience.SalienceResult` on the
    recording it was computed on (positions and neuron ids from the recording).

    Parameters
    ----------
    result
        The salience result.
    recording
        The recording it was computed on.
    regions
        (N,) region acronyms (:func:`neuron_regions`).

    Returns
    -------
    pd.DataFrame
        The CSV table, most salient neuron first.
    """
    return salience_csv_table(
        result.mean_abs,
        result.signed_mean,
        regions,
        recording.positions_um,
        confidence=result.confidence,
        neuron_ids=recording.neuron_ids,
    )


def top_neurons(
    salience: np.ndarray,
    regions: np.ndarray | Sequence[str],
    positions_um: np.ndarray,
    k: int = 50,
    *,
    signed: np.ndarray | None = None,
    neuron_ids: np.ndarray | None = None,
    confidence: np.ndarray | None = None,
) -> pd.DataFrame:
    """The ``k`` most salient neurons, rank 1 first (same columns as :func:`neuron_table`).

    Parameters
    ----------
    salience, regions, positions_um, signed, neuron_ids, confidence
        As for :func:`neuron_table`.
    k
        How many (>= 1).

    Returns
    -------
    pd.DataFrame
        At most ``k`` rows, rank 1 first.
    """
    if k < 1:
        raise SalienceError(f"top-k needs k >= 1, found {k}")
    df = neuron_table(
        salience,
        regions,
        positions_um,
        signed=signed,
        neuron_ids=neuron_ids,
        confidence=confidence,
    )
    return df.sort_values("rank").head(int(k)).reset_index(drop=True)
