"""The demo fish: a seeded synthetic larval zebrafish at the original study's scale.

:func:`make_demo_fish` builds a :class:`~decoding.recording.Recording` (default 12,500 neurons x
3,000 frames at 1.1 Hz, like the NLP4Neuro fish) whose ground truth is known, so decoders and
salience maps can be scored against it. The model, step by step (``dt = 1 / frame_rate_hz``, one
step = one imaging frame; rates are "events per frame", arbitrary units):

1. **Protocol.** An optomotor protocol: an initial rest, then blocks of the four whole-field motion
   directions (``forward``, ``left``, ``right``, ``backward``; 35 s each, order shuffled per block),
   each followed by 20 s of ``rest``. Epoch params: ``angle_deg`` (0/270/90/180), ``velocity``.
2. **Neurons** are placed inside the atlas regions, density proportional to region volume (tectal
   neuropil has no somata; periventricular tectum is denser). Populations (``role``):

   - ``stimulus_<direction>``: direction-selective cells in the pretectum (60 %) and the tectum
     periventricular layer (40 %); ``left``/``right`` cells sit 75 % on their own side. Rate:
     ``max(0, g_i * s_d(t) * (0.5 + 0.5 exp(-t_on / 12 s)) * (1 + 0.3 e_i(t)))`` (adapting
     response; ``g_i ~ LogNormal(0, 0.4)``, ``e_i ~ N(0, 1)``, ``s_d`` = 1 during direction d).
   - ``premotor_left``/``premotor_right``: nucleus of the MLF (steering).
   - ``motor_left``/``motor_right``: hindbrain rhombomeres 2-6 (turning).
   - ``motor_bilateral``: bout-vigour cells in r4-r7, both sides (correlated, but not drivers).
   - ``unrelated``: everything else: sparse spontaneous events (0.5-6 % of frames, log-normal
     size), a fifth of them with slow fluctuations as well.

   Every tuned cell (stimulus, premotor, motor) also has sparse spontaneous events (1 % of frames,
   size 0.5); in driver cells these move the tail too.

3. **Bouts** (the causal chain). Per frame, the number of swim bouts is
   ``Poisson(dt * (lambda_0 + sum_d kappa_d * S_d(t) / S_ref))`` where ``S_d`` is the *measured*
   mean rate of the ``stimulus_d`` cells, ``S_ref`` the median gain (``kappa``: forward 0.9,
   left/right 0.6, backward -0.15 bouts/s; ``lambda_0`` = 0.08 bouts/s spontaneous; the rate never
   drops below ``0.2 lambda_0``). Each bout has a vigour
   ``v = 4 * LogNormal(0, 0.3) * duty`` (duty = bout length / frame length ~ U(0.15, 0.35)), a turn
   ``m = tanh(2.5 (S_left - S_right) / S_ref + N(0, 0.5))`` (positive = toward the fish's left) and
   a steering component ``s = clip(0.6 m + N(0, 0.3), -1, 1)``.
4. **Driver rates.** Left/right motor cells fire ``v (1 ± m) / 2`` summed over the frame's bouts,
   premotor cells ``v (1 ± s) / 2`` plus a tonic term ``0.05 (S_left|right / S_ref)``; each neuron
   multiplies its population drive by its own gain and private noise,
   ``r_i = max(0, g_i * drive(t) * (1 + 0.25 e_i(t)))``. ``motor_bilateral`` cells follow ``v``.
5. **Tail.** Six segment angles (radians, segment 0 nearest the head, positive = bent to the left):
   ``theta_clean[t, k] = sum_i W[i, k] r_i(t)`` with ``W[i, k] = ± p_pop[k] * w_i`` (``+`` left,
   ``-`` right) over the driver neurons only; per-segment gains grow caudally for the hindbrain turn
   population (``p_motor = 0.17 * [0.15, 0.3, 0.5, 0.7, 0.85, 1]``) and peak mid-tail for the nMLF
   steering population (``p_premotor = 0.06 * [0.5, 0.7, 0.85, 0.8, 0.65, 0.5]``); the ``w_i`` are
   ``LogNormal(0, 0.5)``, normalised so ``sum_i w_i g_i = 1`` (the population's output is then
   ``drive * p_pop`` on average). Observation (tracking)
   noise: ``theta = theta_clean + N(0, noise_std[k])`` with ``noise_std = [0.008 .. 0.022]`` rad,
   so the noise ceiling (best achievable RMSE) is ``noise_std``. ``driver_weight`` is ``W``.
6. **Calcium.** Nuclear GCaMP6s: each rate trace is convolved with a difference-of-exponentials
   kernel (rise 0.6 s, decay 2.6 s, peak 1) at the frame rate, scaled by a per-neuron ΔF/F amplitude
   (LogNormal around 0.8), plus a slow drift (3 shared AR(1) signals with a 200 s time constant,
   weights N(0, 0.03)) and Gaussian noise (std U(0.04, 0.12) ΔF/F per neuron).

Decoding is learnable (the drivers' calcium carries the tail, delayed and smeared by the kernel) but
not trivial (about 1 % of neurons drive, the kernel must be undone, noise and confounds abound).
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from decoding.errors import RecordingError
from decoding.recording import Epoch, GroundTruth, Recording

__all__ = [
    "DIRECTIONS",
    "TAIL_NAMES",
    "SyntheticFish",
    "simulate_fish",
    "make_demo_fish",
    "ensure_demo_fish",
    "make_multifish_demo",
    "PRIVATE_DRIVER_FISH",
    "PRIVATE_DRIVER_REGION",
    "DEMO_FILENAME",
    "GENERATOR_VERSION",
    "Variant",
    "VARIANTS",
    "get_variant",
    "generator_source",
]

DIRECTIONS: dict[str, float] = {"forward": 0.0, "left": 270.0, "right": 90.0, "backward": 180.0}
TAIL_NAMES = [f"theta_{k:02d}" for k in range(6)]
DEMO_FILENAME = "demo_fish.h5"

MOTION_S = 35.0
REST_S = 20.0
VELOCITY = 0.02
TAU_RISE_S = 0.6
TAU_DECAY_S = 2.6
NOISE_STD = np.array([0.008, 0.010, 0.012, 0.015, 0.018, 0.022], dtype=np.float32)
P_MOTOR = 0.17 * np.array([0.15, 0.3, 0.5, 0.7, 0.85, 1.0])
P_PREMOTOR = 0.06 * np.array([0.5, 0.7, 0.85, 0.8, 0.65, 0.5])
P_PRIVATE = 0.6 * P_MOTOR  # the multi-fish demo's private driver region (one fish only)
BOUT_RATE_SPONT = 0.08  # bouts/s
KAPPA = {"forward": 0.9, "left": 0.6, "right": 0.6, "backward": -0.15}  # bouts/s per unit drive

# (role, fraction of neurons, minimum count, [(base acronym, side, weight), ...])
_STIM_PLACES = {
    "forward": [("Pt", "L", 0.3), ("Pt", "R", 0.3), ("TeO_PVL", "L", 0.2), ("TeO_PVL", "R", 0.2)],
    "backward": [("Pt", "L", 0.3), ("Pt", "R", 0.3), ("TeO_PVL", "L", 0.2), ("TeO_PVL", "R", 0.2)],
    "left": [("Pt", "L", 0.45), ("Pt", "R", 0.15), ("TeO_PVL", "L", 0.3), ("TeO_PVL", "R", 0.1)],
    "right": [("Pt", "R", 0.45), ("Pt", "L", 0.15), ("TeO_PVL", "R", 0.3), ("TeO_PVL", "L", 0.1)],
}
_HINDBRAIN = ("r2", "r3", "r4", "r5", "r6")
_POPULATIONS: list[tuple[str, float, int, list[tuple[str, str, float]]]] = [
    *[(f"stimulus_{d}", 0.0096, 5, places) for d, places in _STIM_PLACES.items()],
    ("premotor_left", 0.0013, 3, [("nMLF", "L", 1.0)]),
    ("premotor_right", 0.0013, 3, [("nMLF", "R", 1.0)]),
    ("motor_left", 0.004, 4, [(r, "L", 1.0) for r in _HINDBRAIN]),
    ("motor_right", 0.004, 4, [(r, "R", 1.0) for r in _HINDBRAIN]),
    ("motor_bilateral", 0.0024, 2, [(r, s, 1.0) for r in ("r4", "r5", "r6", "r7") for s in "LR"]),
]
_BLOCK = 2048
_DENSITY = {"TeO_NP": 0.0, "TeO_PVL": 2.0, "SC": 0.4, "Hyp": 0.7}
GENERATOR_VERSION = 2  # bump whenever the same arguments would make a different fish


@dataclass(frozen=True)
class Variant:
    """A structurally different fish of the generator panel (see ``docs/salience.md``, "Panel").

    Every field's default is the demo fish; a variant changes a few of them. Rates, fractions and
    amplitudes are relative to the demo fish's model in the module docstring.
    """

    name: str
    summary: str
    stimulus_scale: float = 1.0  # x the fraction of each stimulus population
    stimulus_amp: float = 0.8  # median ΔF/F amplitude of stimulus cells
    stimulus_noise: tuple[float, float] = (0.04, 0.12)  # ΔF/F noise std range, stimulus cells
    stimulus_gain: float = 1.0  # x kappa: how strongly the stimulus drives bouts
    driver_scale: float = 1.0  # x the fraction of premotor and motor (driver) cells
    driver_amp: float = 0.8  # median ΔF/F amplitude of driver cells
    driver_noise: tuple[float, float] = (0.04, 0.12)  # ΔF/F noise std range, driver cells
    subthreshold: float = 0.0  # slow sub-threshold driver activity that does not move the tail
    tau_rise_s: float = TAU_RISE_S
    tau_decay_s: float = TAU_DECAY_S
    frame_rate_hz: float = 1.1
    neuropil: float = 0.0  # std (ΔF/F) of noise shared by neighbouring neurons
    neuropil_um: float = 12.0  # spatial scale of that noise
    private_driver: str = ""  # base acronym of an extra left-side driver region (one fish of the
    #                           multi-fish demo: it turns the tail like motor_left); "" = none


VARIANTS: dict[str, Variant] = {}


def _register_variant(v: Variant) -> None:
    if v.name in VARIANTS:
        raise ValueError(f"variant {v.name!r} registered twice")
    VARIANTS[v.name] = v


_register_variant(Variant("demo", "the demo fish: GCaMP6s at 1.1 Hz, ~1 % drivers"))
_register_variant(
    Variant(
        "crowded",
        "drivers hidden among 4x as many, cleaner stimulus cells that bout with the stimulus",
        stimulus_scale=4.0,
        stimulus_noise=(0.03, 0.06),
        stimulus_gain=1.6,
    )
)
_register_variant(
    Variant(
        "sparse",
        "very few drivers (0.3 %) with small ΔF/F (0.3)",
        driver_scale=0.3,
        driver_amp=0.3,
    )
)
_register_variant(
    Variant(
        "decoys",
        "quiet, noisy drivers among clean, bright stimulus-locked cells: variance and |corr| "
        "with the tail point at the decoys",
        stimulus_scale=3.0,
        stimulus_amp=1.6,
        stimulus_noise=(0.02, 0.04),
        stimulus_gain=1.6,
        driver_amp=0.35,
        driver_noise=(0.12, 0.2),
    )
)
_register_variant(
    Variant(
        "threshold",
        "drivers with slow sub-threshold activity: the tail moves only above threshold (bouts)",
        subthreshold=0.6,
    )
)
_register_variant(
    Variant(
        "fast",
        "a faster indicator (GCaMP6f-like: rise 0.1 s, decay 0.6 s) imaged at 3 Hz",
        tau_rise_s=0.1,
        tau_decay_s=0.6,
        frame_rate_hz=3.0,
    )
)
_register_variant(
    Variant(
        "neuropil",
        "noise shared by neighbouring neurons (neuropil-like, 12 µm scale, std 0.1 ΔF/F)",
        neuropil=0.1,
    )
)


@dataclass
class SyntheticFish:
    """Everything :func:`simulate_fish` made, with the hidden variables (for tests, notebooks)."""

    recording: Recording
    rates: np.ndarray | None  # (T, N) float32 underlying activity ("events per frame")
    calcium_clean: np.ndarray | None  # (T, N) float32 noise-free ΔF/F (kernel x amplitude)
    stimulus: np.ndarray  # (T, 4) float32 one-hot motion direction (DIRECTIONS order)
    bout_count: np.ndarray  # (T,) int bouts per frame
    seconds: float  # generation time


def _protocol(n_frames: int, fps: float, rng: np.random.Generator) -> list[Epoch]:
    motion = max(1, round(MOTION_S * fps))
    rest = max(1, round(REST_S * fps))
    epochs: list[Epoch] = []
    t = 0

    def add(name: str, length: int, params: dict) -> None:
        nonlocal t
        stop = min(n_frames, t + length)
        if t < stop:
            epochs.append(Epoch(name, t, stop, params))
        t = stop

    add("rest", rest, {})
    names = list(DIRECTIONS)
    while t < n_frames:
        for name in rng.permutation(names):
            add(str(name), motion, {"angle_deg": DIRECTIONS[str(name)], "velocity": VELOCITY})
            add("rest", rest, {})
    return epochs


def _calcium_kernel_filter(
    rates: np.ndarray, fps: float, tau_rise: float = TAU_RISE_S, tau_decay: float = TAU_DECAY_S
) -> np.ndarray:
    """Convolve (T, N) rates with the indicator kernel (two AR(1) filters), float32."""
    dt = 1.0 / fps
    rho_d, rho_r = np.exp(-dt / tau_decay), np.exp(-dt / tau_rise)
    t = np.arange(0, max(40, int(8 * tau_decay * fps))) * dt + dt / 2
    peak = np.max(np.exp(-t / tau_decay) - np.exp(-t / tau_rise))
    scale = np.float32(1.0 / peak * (np.exp(-dt / 2 / tau_decay)))
    out = np.empty_like(rates)
    slow = np.zeros(rates.shape[1], dtype=np.float32)
    fast = np.zeros(rates.shape[1], dtype=np.float32)
    rd, rr = np.float32(rho_d), np.float32(rho_r)
    ratio = np.float32(np.exp(-dt / 2 / tau_rise) / np.exp(-dt / 2 / tau_decay))
    for i in range(rates.shape[0]):
        slow *= rd
        slow += rates[i]
        fast *= rr
        fast += rates[i]
        np.subtract(slow, ratio * fast, out=out[i])
    out *= scale
    return out


def _region_voxels(atlas, base: str, side: str) -> np.ndarray:
    """Flat voxel indices of a region (by base acronym and side); falls back to the side's brain."""
    ids = [r.id for r in atlas.regions if r.base_acronym == base and r.side in (side, "")]
    mask = np.isin(atlas.labels, ids) if ids else np.zeros(atlas.labels.shape, bool)
    if not mask.any():  # an atlas without this region: any brain voxel on that side
        mask = atlas.labels > 0
        xs = (np.arange(atlas.labels.shape[0]) + 0.5) * atlas.voxel_size_um[0]
        on_side = xs < atlas.midline_x_um if side == "L" else xs >= atlas.midline_x_um
        mask &= on_side[:, None, None]
    return np.flatnonzero(mask)


def _points_in(atlas, flat_idx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    ijk = np.stack(np.unravel_index(flat_idx, atlas.labels.shape), axis=1).astype(np.float64)
    jitter = rng.uniform(0.02, 0.98, size=ijk.shape)
    return ((ijk + jitter) * atlas.voxel_size_um).astype(np.float32)


def _place(
    atlas, n_neurons: int, rng: np.random.Generator, variant: Variant | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Positions (N, 3) and roles (N,): populations in their regions, the rest by density."""
    variant = variant or VARIANTS["demo"]
    positions: list[np.ndarray] = []
    roles: list[str] = []
    cache: dict[tuple[str, str], np.ndarray] = {}
    for role, frac, min_n, places in _POPULATIONS:
        if role.startswith("stimulus_"):
            frac *= variant.stimulus_scale
        elif role.startswith(("premotor_", "motor_left", "motor_right")):
            frac *= variant.driver_scale
        count = max(min_n, round(frac * n_neurons))
        w = np.array([p[2] for p in places], dtype=float)
        which = rng.choice(len(places), size=count, p=w / w.sum())
        for j, (base, side, _) in enumerate(places):
            k = int((which == j).sum())
            if k == 0:
                continue
            key = (base, side)
            if key not in cache:
                cache[key] = _region_voxels(atlas, base, side)
            positions.append(_points_in(atlas, rng.choice(cache[key], size=k), rng))
            roles += [role] * k
    if variant.private_driver:  # an extra driver population of this fish only
        k = max(4, round(0.004 * variant.driver_scale * n_neurons))
        voxels = _region_voxels(atlas, variant.private_driver, "L")
        positions.append(_points_in(atlas, rng.choice(voxels, size=k), rng))
        roles += ["private_driver"] * k
    n_rest = n_neurons - len(roles)
    if n_rest < 0:
        raise RecordingError(
            f"n_neurons={n_neurons} is too small for the demo fish's populations; use at least "
            f"{len(roles)}"
        )
    counts = atlas.voxel_counts()
    regs = [r for r in atlas.regions if counts.get(r.id, 0) > 0]
    dens = np.array([_DENSITY.get(r.base_acronym, 1.0) * counts[r.id] for r in regs], dtype=float)
    which = rng.choice(len(regs), size=n_rest, p=dens / dens.sum())
    labels_flat = atlas.labels.ravel()
    order = np.argsort(labels_flat, kind="stable")
    sorted_labels = labels_flat[order]
    for j in np.unique(which):
        k = int((which == j).sum())
        lo, hi = np.searchsorted(sorted_labels, [regs[j].id, regs[j].id + 1])
        positions.append(_points_in(atlas, order[rng.integers(lo, hi, size=k)], rng))
        roles += ["unrelated"] * k
    pos = np.concatenate(positions)
    role = np.array(roles)
    # interleave populations: neuron index carries no information about the role
    perm = rng.permutation(n_neurons)
    return pos[perm], role[perm]


def get_variant(name: str) -> Variant:
    """The registered panel variant ``name``.

    Parameters
    ----------
    name
        A key of :data:`VARIANTS`.

    Returns
    -------
    Variant
        The variant; a clear error lists the known ones.
    """
    if name not in VARIANTS:
        raise RecordingError(
            f"unknown demo fish variant {name!r}; choose one of: {', '.join(VARIANTS)}"
        )
    return VARIANTS[name]


def simulate_fish(
    n_neurons: int = 12_500,
    n_frames: int = 3_000,
    *,
    frame_rate_hz: float | None = None,
    seed: int = 0,
    atlas=None,
    fish_id: str | None = None,
    keep_hidden: bool = True,
    variant: str | Variant = "demo",
) -> SyntheticFish:
    """Generate a synthetic fish and return it with its hidden variables (see module docstring).

    Parameters
    ----------
    n_neurons, n_frames, frame_rate_hz
        Size (``n_frames >= 2``) and imaging rate (``None``: the variant's, 1.1 Hz for the demo).
    seed, atlas, fish_id
        Seed of the one generator every step draws from in a fixed order; the atlas to place
        neurons in (default: the shipped one); the fish id (default ``<variant>_fish_seed<seed>``).
    keep_hidden
        Keep the ``(T, N)`` ``rates`` and ``calcium_clean``; ``False`` drops them (``None``),
        which halves the peak memory.
    variant
        A panel fish (:data:`VARIANTS` name or a :class:`Variant`).

    Returns
    -------
    SyntheticFish
        The recording (with its ground truth) and the hidden variables.
    """
    t0 = time.perf_counter()
    var = variant if isinstance(variant, Variant) else get_variant(variant)
    fps = _check_size(n_frames, var.frame_rate_hz if frame_rate_hz is None else frame_rate_hz)
    if atlas is None:
        from decoding.atlas import default_atlas

        atlas = default_atlas()
    rng = np.random.default_rng(seed)
    T, N = int(n_frames), int(n_neurons)
    epochs, stim, onset = _stimulus(T, fps, rng)  # 1. protocol
    positions, role = _place(atlas, N, rng, var)  # 2. neurons
    rates = np.zeros((T, N), dtype=np.float32)
    gain = rng.lognormal(0.0, 0.4, size=N).astype(np.float32)
    S = _stimulus_rates(rates, role, gain, stim, onset, rng)
    s_ref = float(np.median(gain)) * 1.0
    n_bouts, drive = _bouts(S, s_ref, var.stimulus_gain, 1.0 / fps, rng)  # 3. bouts
    W = _driver_rates(rates, role, gain, drive, rng)  # 4. driver rates
    behavior_clean, behavior = _tail(rates, role, gain, W, var, fps, rng)  # 5. the tail
    _unrelated_rates(rates, role, fps, rng)
    calcium = _calcium_kernel_filter(rates, fps, var.tau_rise_s, var.tau_decay_s)  # 6. calcium
    if not keep_hidden:
        rates = None  # type: ignore[assignment]  # frees (T, N) before the noise is drawn
    activity, calcium_clean = _calcium(calcium, role, positions, var, fps, keep_hidden, rng)
    rec = Recording(
        activity,
        behavior,
        positions,
        frame_rate_hz=fps,
        behavior_names=list(TAIL_NAMES),
        behavior_units=["rad"] * len(TAIL_NAMES),
        epochs=epochs,
        fish_id=fish_id or f"{var.name}_fish_seed{seed}",
        atlas=atlas.name,
        source=generator_source(N, T, fps, seed, var.name),
        neuron_ids=np.arange(N, dtype=np.int64),
        regions=atlas.acronyms_of(positions),
        ground_truth=GroundTruth(behavior_clean, W, role, NOISE_STD.copy()),
        _check_activity=False,
    )
    return SyntheticFish(
        recording=rec,
        rates=rates,
        calcium_clean=calcium_clean,
        stimulus=stim,
        bout_count=n_bouts.astype(np.int64),
        seconds=time.perf_counter() - t0,
    )


def _check_size(n_frames: int, frame_rate_hz: float) -> float:
    """The frame rate as a float, after checking ``n_frames >= 2`` and a positive rate."""
    if n_frames < 2:
        raise RecordingError(f"n_frames must be at least 2, found {n_frames}")
    if not frame_rate_hz > 0:
        raise RecordingError(f"frame_rate_hz must be positive, found {frame_rate_hz}")
    return float(frame_rate_hz)


def _stimulus(
    T: int, fps: float, rng: np.random.Generator
) -> tuple[list[Epoch], np.ndarray, np.ndarray]:
    """The protocol's epochs, the (T, 4) one-hot motion direction and the seconds since the
    current motion started (0 at rest)."""
    epochs = _protocol(T, fps, rng)
    stim = np.zeros((T, 4), dtype=np.float32)
    onset = np.zeros(T, dtype=np.float32)
    dir_index = {d: i for i, d in enumerate(DIRECTIONS)}
    for ep in epochs:
        if ep.name in dir_index:
            stim[ep.start : ep.stop, dir_index[ep.name]] = 1.0
            onset[ep.start : ep.stop] = np.arange(ep.n_frames) * (1.0 / fps)
    return epochs, stim, onset


def _stimulus_rates(
    rates: np.ndarray,
    role: np.ndarray,
    gain: np.ndarray,
    stim: np.ndarray,
    onset: np.ndarray,
    rng: np.random.Generator,
) -> np.ndarray:
    """Fill the direction-selective cells' rates (adapting response, in place); returns ``S``,
    the (T, 4) measured mean rate of each stimulus population."""
    T = rates.shape[0]
    adapt = (0.5 + 0.5 * np.exp(-onset / 12.0))[:, None].astype(np.float32)
    S = np.zeros((T, 4), dtype=np.float32)
    for i, d in enumerate(DIRECTIONS):
        idx = np.flatnonzero(role == f"stimulus_{d}")
        drive = stim[:, i : i + 1] * adapt
        e = rng.standard_normal((T, len(idx)), dtype=np.float32)
        r = np.maximum(0.0, gain[idx] * drive * (1 + 0.3 * e)) + _spontaneous(rng, T, len(idx))
        rates[:, idx] = r
        S[:, i] = r.mean(axis=1) if len(idx) else drive[:, 0]
    return S


def _bouts(
    S: np.ndarray, s_ref: float, stimulus_gain: float, dt: float, rng: np.random.Generator
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Bouts per frame and the population drives they make (``mL``, ``mR``: hindbrain turn;
    ``pL``, ``pR``: nMLF steering with a tonic term; ``vig``: bout vigour)."""
    T = S.shape[0]
    left, right = list(DIRECTIONS).index("left"), list(DIRECTIONS).index("right")
    lam = BOUT_RATE_SPONT + stimulus_gain * sum(
        KAPPA[d] * S[:, i] / s_ref for i, d in enumerate(DIRECTIONS)
    )
    lam = np.maximum(lam, 0.2 * BOUT_RATE_SPONT)
    n_bouts = rng.poisson(lam * dt)
    asym = 2.5 * (S[:, left] - S[:, right]) / s_ref
    drive = {k: np.zeros(T, dtype=np.float32) for k in ("mL", "mR", "pL", "pR", "vig")}
    for t in np.flatnonzero(n_bouts):
        for _ in range(int(n_bouts[t])):
            v = rng.lognormal(0.0, 0.3) * rng.uniform(0.15, 0.35) * 4.0
            m = np.tanh(asym[t] + rng.normal(0.0, 0.5))
            s = np.clip(0.6 * m + rng.normal(0.0, 0.3), -1, 1)
            drive["mL"][t] += v * (1 + m) / 2
            drive["mR"][t] += v * (1 - m) / 2
            drive["pL"][t] += v * (1 + s) / 2
            drive["pR"][t] += v * (1 - s) / 2
            drive["vig"][t] += v
    drive["pL"] += 0.05 * S[:, left] / s_ref
    drive["pR"] += 0.05 * S[:, right] / s_ref
    return n_bouts, drive


# (population, drive, sign on the tail, per-segment gain profile or None = correlated, no output)
_DRIVE_OF = (
    ("motor_left", "mL", 1.0, P_MOTOR),
    ("motor_right", "mR", -1.0, P_MOTOR),
    ("premotor_left", "pL", 1.0, P_PREMOTOR),
    ("premotor_right", "pR", -1.0, P_PREMOTOR),
    ("private_driver", "mL", 1.0, P_PRIVATE),  # absent (skipped) unless Variant.private_driver
    ("motor_bilateral", "vig", 0.0, None),
)


def _driver_rates(
    rates: np.ndarray,
    role: np.ndarray,
    gain: np.ndarray,
    drive: dict[str, np.ndarray],
    rng: np.random.Generator,
) -> np.ndarray:
    """Fill the premotor/motor cells' rates (in place); returns the (N, K) tail weights ``W``."""
    T, N = rates.shape
    W = np.zeros((N, len(TAIL_NAMES)), dtype=np.float32)
    for pop, key, sign, profile in _DRIVE_OF:
        idx = np.flatnonzero(role == pop)
        if len(idx) == 0:
            continue
        e = rng.standard_normal((T, len(idx)), dtype=np.float32)
        r = np.maximum(0.0, gain[idx] * drive[key][:, None] * (1 + 0.25 * e))
        r += _spontaneous(rng, T, len(idx))
        rates[:, idx] = r
        if profile is not None:
            w = rng.lognormal(0.0, 0.5, size=len(idx))
            w = w / np.sum(w * gain[idx])  # population output = drive * profile on average
            W[idx] = (sign * w[:, None] * profile[None, :]).astype(np.float32)
    return W


def _tail(
    rates: np.ndarray,
    role: np.ndarray,
    gain: np.ndarray,
    W: np.ndarray,
    var: Variant,
    fps: float,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray]:
    """The clean and the observed tail (``+ N(0, NOISE_STD)``); adds the variant's sub-threshold
    driver activity to ``rates`` afterwards (seen by the calcium, not by the tail)."""
    driver_idx = np.flatnonzero(np.any(W != 0, axis=1))
    behavior_clean = (rates[:, driver_idx] @ W[driver_idx]).astype(np.float32)
    if var.subthreshold > 0:
        _add_subthreshold(rates, role, gain, var.subthreshold, fps, rng)
    noise_std = NOISE_STD[: W.shape[1]].copy()
    noise = rng.standard_normal(behavior_clean.shape, dtype=np.float32)
    behavior = behavior_clean + noise * noise_std
    return behavior_clean, behavior


def _unrelated_rates(
    rates: np.ndarray, role: np.ndarray, fps: float, rng: np.random.Generator
) -> None:
    """Unrelated neurons (in place): sparse spontaneous events, a fifth of them with slow
    fluctuations as well (column blocks)."""
    T = rates.shape[0]
    idx = np.flatnonzero(role == "unrelated")
    for lo in range(0, len(idx), _BLOCK):
        cols = idx[lo : lo + _BLOCK]
        n = len(cols)
        p_event = rng.uniform(0.005, 0.06, size=n).astype(np.float32)
        amp = rng.lognormal(0.0, 0.5, size=n).astype(np.float32)
        block = (rng.random((T, n), dtype=np.float32) < p_event) * amp
        slow_cols = np.flatnonzero(rng.random(n) < 0.2)
        if len(slow_cols):
            slow = _smooth_noise(rng, T, len(slow_cols), tau_frames=30 * fps)
            block[:, slow_cols] += 0.15 * np.maximum(0.0, slow)
        rates[:, cols] = block


def _calcium(
    calcium: np.ndarray,
    role: np.ndarray,
    positions: np.ndarray,
    var: Variant,
    fps: float,
    keep_hidden: bool,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray | None]:
    """ΔF/F (T, N) from the kernel-filtered rates ``calcium`` (in place): per-neuron amplitude,
    slow shared drift and noise (row blocks), neuropil for that variant; and the noise-free
    calcium if ``keep_hidden``."""
    T, N = calcium.shape
    amplitude = rng.lognormal(np.log(0.8), 0.3, size=N).astype(np.float32)
    calcium *= _by_role(amplitude, role, var, "amp")
    calcium_clean = calcium.copy() if keep_hidden else None
    basis = _smooth_noise(rng, T, 3, tau_frames=200 * fps)
    mix = rng.normal(0.0, 0.03, size=(3, N)).astype(np.float32)
    noise_sd = _by_role(rng.uniform(0.04, 0.12, size=N).astype(np.float32), role, var, "noise")
    activity = calcium
    rows = max(1, (_BLOCK * 256) // max(N, 1))
    for lo in range(0, T, rows):
        sl = slice(lo, min(T, lo + rows))
        noise = rng.standard_normal((sl.stop - lo, N), dtype=np.float32)
        noise *= noise_sd
        noise += basis[sl] @ mix
        activity[sl] += noise
    if var.neuropil > 0:
        _add_neuropil(activity, positions, var.neuropil, var.neuropil_um, fps, rng)
    return activity, calcium_clean


def generator_source(
    n_neurons: int, n_frames: int, frame_rate_hz: float, seed: int, variant: str
) -> str:
    """The ``source`` attribute of a generated fish: generator version and every parameter.

    Parameters
    ----------
    n_neurons, n_frames, frame_rate_hz, seed, variant
        The generator's arguments.

    Returns
    -------
    str
        ``"decoding.synthetic v<version> make_demo_fish(...)"``.
    """
    return (
        f"decoding.synthetic v{GENERATOR_VERSION} make_demo_fish(n_neurons={int(n_neurons)}, "
        f"n_frames={int(n_frames)}, frame_rate_hz={float(frame_rate_hz):g}, seed={int(seed)}, "
        f"variant={variant!r})"
    )


def _by_role(values: np.ndarray, role: np.ndarray, var: Variant, what: str) -> np.ndarray:
    """Per-neuron ``amp`` (scaled to the variant's medians) or ``noise`` (mapped from the demo's
    U(0.04, 0.12) onto the variant's range) for stimulus and driver cells; others unchanged."""
    out = values.copy()
    groups = (
        (np.char.startswith(role.astype(str), "stimulus_"), var.stimulus_amp, var.stimulus_noise),
        (np.isin(role, _DRIVER_ROLES), var.driver_amp, var.driver_noise),
    )
    for mask, amp, (lo, hi) in groups:
        if what == "amp" and amp != 0.8:
            out[mask] *= np.float32(amp / 0.8)
        elif what == "noise" and (lo, hi) != (0.04, 0.12):
            out[mask] = np.float32(lo) + (values[mask] - 0.04) / 0.08 * np.float32(hi - lo)
    return out


_DRIVER_ROLES = (
    "premotor_left",
    "premotor_right",
    "motor_left",
    "motor_right",
    "private_driver",
)


def _add_subthreshold(
    rates: np.ndarray, role: np.ndarray, gain: np.ndarray, level: float, fps: float, rng
) -> None:
    """Slow activity (AR(1), 10 s, shared within each driver population plus a private part)
    added to the driver cells' rates after the tail was computed: it never moves the tail."""
    T = rates.shape[0]
    for pop in _DRIVER_ROLES:
        idx = np.flatnonzero(role == pop)
        if len(idx) == 0:
            continue
        shared = _smooth_noise(rng, T, 1, tau_frames=10 * fps)
        private = _smooth_noise(rng, T, len(idx), tau_frames=10 * fps)
        slow = np.maximum(0.0, 0.7 * shared + 0.5 * private)
        rates[:, idx] += np.float32(level) * gain[idx] * slow


def _add_neuropil(
    activity: np.ndarray, positions: np.ndarray, std: float, scale_um: float, fps: float, rng
) -> None:
    """Noise shared by neighbours: sources at random neurons' positions with AR(1) (1 s) time
    courses, mixed with Gaussian weights of width ``scale_um``; each neuron's share has std
    ``std`` (in place, in row blocks)."""
    T, N = activity.shape
    M = max(8, N // 20)
    centres = positions[rng.choice(N, size=M, replace=False)]
    d2 = ((positions[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2)
    w = np.exp(-d2 / (2 * scale_um**2)).astype(np.float32)
    w *= np.float32(std) / np.sqrt((w**2).sum(axis=1, keepdims=True) + 1e-3)
    sources = _smooth_noise(rng, T, M, tau_frames=1.0 * fps)
    rows = max(1, (_BLOCK * 256) // max(N, 1))
    for lo in range(0, T, rows):
        activity[lo : lo + rows] += sources[lo : lo + rows] @ w.T


def _spontaneous(rng: np.random.Generator, T: int, n: int) -> np.ndarray:
    """(T, n) float32 sparse spontaneous events (1 % of frames, size 0.5) for tuned populations."""
    return (rng.random((T, n), dtype=np.float32) < 0.01) * np.float32(0.5)


def _smooth_noise(rng: np.random.Generator, T: int, n: int, tau_frames: float) -> np.ndarray:
    """(T, n) float32 unit-variance AR(1) noise with time constant ``tau_frames``."""
    a = np.float32(np.exp(-1.0 / max(tau_frames, 1e-3)))
    e = rng.standard_normal((T, n), dtype=np.float32) * np.float32(np.sqrt(1 - a * a))
    out = np.empty_like(e)
    out[0] = rng.standard_normal(n, dtype=np.float32)
    for t in range(1, T):
        out[t] = a * out[t - 1] + e[t]
    return out


def make_demo_fish(n_neurons: int = 12_500, n_frames: int = 3_000, **options: Any) -> Recording:
    """A seeded synthetic fish (see the module docstring for the model) as a Recording.

    Parameters
    ----------
    n_neurons, n_frames
        Size of the recording.
    **options
        ``frame_rate_hz``, ``seed``, ``atlas``, ``fish_id``, ``variant``: as :func:`simulate_fish`
        (whose hidden variables are not kept).

    Returns
    -------
    Recording
        The fish, with its ground truth.
    """
    return simulate_fish(n_neurons, n_frames, keep_hidden=False, **options).recording


#: In the multi-fish demo, fish 1 has an extra driver region (left cerebellum) no other fish has:
#: a population map must not report it as a population effect.
PRIVATE_DRIVER_FISH = 1
PRIVATE_DRIVER_REGION = "Cb"


def make_multifish_demo(
    n_fish: int = 5,
    n_neurons: int = 12_500,
    n_frames: int = 3_000,
    seed: int = 0,
    atlas=None,
) -> list[Recording]:
    """``n_fish`` seeded demo fish for multi-fish decoding, same protocol model and driver regions.

    Parameters
    ----------
    n_fish
        Number of fish (>= 1).
    n_neurons
        Typical neuron count; fish ``i`` gets ``round(n_neurons * u_i)`` neurons with ``u_i`` drawn
        from U(0.7, 1.3) (seeded), so every fish has its own count and positions.
    n_frames
        Frames per fish (all fish share the frame rate, 1.1 Hz, and the 6 tail channels).
    seed
        Base seed; fish ``i`` is generated with seed ``1000 * seed + i``.
    atlas
        Atlas to place neurons in (default: the shipped schematic brain).

    Returns
    -------
    list of Recording
        Fish ``multi{seed}_fish{i}``. With 3 or more fish, fish :data:`PRIVATE_DRIVER_FISH` also
        has a left-cerebellum driver population (role ``private_driver``), a region that drives
        the tail in that fish only.
    """
    if n_fish < 1:
        raise RecordingError(f"--fish must be >= 1, found {n_fish}")
    scale = np.random.default_rng(10_000 + seed).uniform(0.7, 1.3, size=n_fish)
    private = Variant(
        "demo+private",
        "the demo fish with an extra left-cerebellum driver population",
        private_driver=PRIVATE_DRIVER_REGION,
    )
    fish = []
    for i in range(n_fish):
        variant: str | Variant = private if (n_fish >= 3 and i == PRIVATE_DRIVER_FISH) else "demo"
        fish.append(
            simulate_fish(
                max(100, int(round(n_neurons * scale[i]))),
                n_frames,
                seed=1000 * seed + i,
                atlas=atlas,
                fish_id=f"multi{seed}_fish{i}",
                keep_hidden=False,
                variant=variant,
            ).recording
        )
    return fish


def ensure_demo_fish(folder: str | os.PathLike = "data/demo", **kwargs) -> Path:
    """Path of ``folder/demo_fish.h5``, generating and writing it (atomically) if missing.

    Parameters
    ----------
    folder
        Where the demo fish lives.
    **kwargs
        :func:`make_demo_fish` options for a fish that has to be made.

    Returns
    -------
    Path
        ``folder/demo_fish.h5``.
    """
    path = Path(folder) / DEMO_FILENAME
    if path.is_file() and h5py.is_hdf5(path):
        return path
    make_demo_fish(**kwargs).save(path)
    return path
