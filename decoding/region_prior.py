"""An anatomical prior for a new fish's input weights, read from the fish a model already decodes.

Every fish of a multi-fish model is registered to one atlas. Where the model's fish put their input
weight says where a new fish's informative neurons probably are: a region's **input energy** in a
fish (:func:`region_energy`) is the mean squared input weight of its neurons over the fish's mean
(1 = a typical neuron; the weight of neuron ``i`` is column ``i`` of the whole projection,
``neurons -> hidden``). During a transfer the new fish's neuron ``j`` in region ``r`` is read as
``a_j x_j`` (:func:`prior_scale`: ``a_j = E(r) ** (strength / 2)``, ``E`` the region's energy
averaged over the model's fish, clipped to ``[ENERGY_MIN, ENERGY_MAX]``); with the input L2 penalty
this is a ridge prior of ``input_l2 / a_j**2`` per neuron (strength 2: ``input_l2 / E(r)**2``), and
neurons in regions the other fish read start learning sooner. After training the scale is folded
into the weights (:func:`fold_input_scale`): the saved fish reads z-scored activity like every
other one, and its predictions and salience are those of the trained model.

Regions that no model fish holds (fewer than :data:`MIN_NEURONS` neurons in each) get ``E = 1``,
the typical neuron: no prior either way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch

from decoding.errors import DecodingError
from decoding.models import Decoder, LowRankLinear

__all__ = [
    "ENERGY_MAX",
    "ENERGY_MIN",
    "MIN_NEURONS",
    "check_strength",
    "PRIOR_STRENGTH",
    "fold_input_scale",
    "input_energy",
    "prior_scale",
    "region_energy",
]

#: A region needs this many neurons in a fish for its energy there to count.
MIN_NEURONS = 3
#: Region energies are clipped to this range before the prior is made from them.
ENERGY_MIN, ENERGY_MAX = 1e-2, 1e3
#: The default ``strength``: a ridge prior of ``input_l2 / E(r) ** 2`` per neuron (measured in
#: ``docs/multifish.md``: 1, 1.5, 2, 3 and 4 on 3 seeds; 2 was best).
PRIOR_STRENGTH = 2.0


def input_energy(view: Decoder) -> np.ndarray:
    """``(N,)`` squared norm of each neuron's column of the whole projection (``N -> hidden``).

    Parameters
    ----------
    view
        A decoder with a linear or factorised projection.

    Returns
    -------
    np.ndarray
        float64, one value per neuron.
    """
    with torch.no_grad():
        proj = view.proj
        w = proj.up.weight @ proj.down.weight if isinstance(proj, LowRankLinear) else proj.weight
        return (w.detach().double().cpu().square().sum(dim=0)).numpy()


def region_energy(view: Decoder, regions: np.ndarray) -> dict[str, float]:
    """A fish's input energy per atlas region: mean over the region's neurons / mean over all.

    Parameters
    ----------
    view
        The fish's trained decoder.
    regions
        ``(N,)`` region acronym of each neuron (:func:`decoding.anatomy.neuron_regions`).

    Returns
    -------
    dict
        Region -> energy (1 = a typical neuron), for regions with at least :data:`MIN_NEURONS`
        neurons; empty when every input weight is zero.
    """
    e = input_energy(view)
    regions = np.asarray(regions).astype(str)
    if regions.shape != e.shape:
        raise DecodingError(
            f"region energy: {e.size} neurons in the projection but {regions.size} region labels"
        )
    mean = float(e.mean()) if e.size else 0.0
    if not mean > 0:
        return {}
    names, inverse, counts = np.unique(regions, return_inverse=True, return_counts=True)
    sums = np.bincount(inverse, weights=e, minlength=names.size)
    return {
        str(r): float(s / c / mean)
        for r, s, c in zip(names, sums, counts, strict=True)
        if c >= MIN_NEURONS
    }


def check_strength(strength: float) -> None:
    """Refuse a prior strength that is not a finite number >= 0, with one line."""
    if not (strength >= 0 and np.isfinite(strength)):
        raise DecodingError(f"--prior-strength must be a number >= 0, got {strength}")


def prior_scale(
    energies: Sequence[Mapping[str, float]],
    regions: np.ndarray,
    strength: float = PRIOR_STRENGTH,
) -> np.ndarray:
    """``(N,)`` input scale of a new fish's neurons from the model fish's region energies.

    Parameters
    ----------
    energies
        One :func:`region_energy` dict per model fish.
    regions
        ``(N,)`` region acronym of each of the new fish's neurons.
    strength
        The exponent: ``a = E ** (strength / 2)``; 0 gives no prior (all ones).

    Returns
    -------
    np.ndarray
        float32 scales, ``ENERGY_MIN ** (strength / 2)`` to ``ENERGY_MAX ** (strength / 2)``.
    """
    check_strength(strength)
    pooled: dict[str, list[float]] = {}
    for fish in energies:
        for region, value in fish.items():
            pooled.setdefault(region, []).append(float(value))
    mean = {r: float(np.mean(v)) for r, v in pooled.items()}
    e = np.array([mean.get(str(r), 1.0) for r in np.asarray(regions)], dtype=np.float64)
    return (np.clip(e, ENERGY_MIN, ENERGY_MAX) ** (strength / 2)).astype(np.float32)


def fold_input_scale(view: Decoder, scale: np.ndarray) -> None:
    """Fold a per-neuron input scale into the projection's input weights, in place.

    ``proj(a * x) == proj'(x)`` with ``proj'``'s input weights' columns multiplied by ``a``.

    Parameters
    ----------
    view
        The decoder trained on scaled inputs.
    scale
        ``(N,)`` the scale it was trained with.
    """
    proj = view.proj
    w = proj.down.weight if isinstance(proj, LowRankLinear) else proj.weight
    a = torch.as_tensor(np.asarray(scale), dtype=w.dtype, device=w.device)
    if a.shape != (w.shape[1],):
        raise DecodingError(f"input scale: {a.numel()} values for {w.shape[1]} neurons")
    with torch.no_grad():
        w.mul_(a)
