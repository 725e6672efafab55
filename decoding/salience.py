"""Neuron salience: Captum attribution of a decoder's output to its neural input, per neuron/frame.

The attribution is taken with respect to the *normalised* activity that enters the decoder's first
layer (the input projection ``Linear(N -> hidden)``), so every value belongs to one neuron at one
frame. A frame range is cut into windows of the decoder's length (stride 1, inside the range, the
last one ending at ``stop``: the windows of :func:`decoding.train.predict`); each window's scalar
target is attributed to its ``(S, N)`` input, and the per-window maps are averaged back to frames
where windows overlap. The result is one typed
:class:`SalienceResult` with a ``(frames, N)`` map, per-neuron summaries, the convergence delta and
provenance; :func:`salience_from_checkpoint` adds an HDF5 cache keyed by everything that changes it.

Targets (the scalar per window; summed over the window's frames):

* ``"sum"``: the sum of all behaviour channels (the study's target);
* a channel, by index (``"0"``) or name (``"theta_03"``);
* ``"lateral"``: the tail's lateral deflection, the signed *mean over channels* of the predicted
  tail angles. A bend to one side gives a positive value, to the other side a negative one (the side
  is the recording's angle convention), so neurons driving left and right turns get opposite signs.

Windows: those of :func:`decoding.windows.window_starts` (the decoder's stride), never crossing the
boundaries of the split parts. With ``context`` they also use up to ``window - 1`` frames either
side of the range inside its part, exactly like :func:`decoding.train.predict`, so every frame is
averaged over the same windows as its prediction. ``steps="auto"`` (IG) picks the fewest of
:data:`AUTO_STEPS` whose relative completeness gap on four probe windows is at most
:data:`AUTO_TOLERANCE`. A method's fast path (:class:`SalienceMethod`) gives the same numbers.

Normalised space: zero is the training mean of each neuron, so Integrated Gradients with the
``zeros`` baseline explains the output relative to the average training frame, and Input x Gradient
equals ``gradient x (activity - training mean)``. IG and Input x Gradient values are the same in
raw units (the normaliser is affine per neuron); Saliency (|gradient|) is per unit of normalised
activity. Outputs are taken in the recording's units (radians): a checkpoint's behaviour z-scoring
is undone (``output_scale``/``output_offset``) before the target is formed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import math
import os
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

import h5py
import numpy as np
import torch

from decoding.device import seed_all
from decoding.errors import CheckpointError, SalienceError
from decoding.io_utils import atomic_write_path, cache_root, file_fingerprint
from decoding.windows import Normalizer, Split, sum_dtype, window_index, window_starts

if TYPE_CHECKING:
    from decoding.recording import Recording

__all__ = [
    "METHODS",
    "BASELINES",
    "DEFAULT_METHOD",
    "SalienceResult",
    "SalienceCache",
    "compute_salience",
    "salience_from_checkpoint",
    "salience_of",
    "SalienceRequest",
    "DecoderIO",
    "SalienceMethod",
    "register_method",
    "resolve_range",
    "default_cache_dir",
    "default_top_k",
    "FORMAT_NAME",
    "FORMAT_VERSION",
]

FORMAT_NAME = "nlp4neuro-salience"
FORMAT_VERSION = 1
ENGINE_VERSION = 2  # part of every cache key: bump when the same request gives other numbers

# Feature ablation without groups removes one neuron at a time: refused above this many neurons.
MAX_SINGLE_NEURON_ABLATION = 2000

# IG with steps="auto": the first of these step counts whose relative completeness gap
# (max |delta| / max |F(x) - F(baseline)| over 4 probe windows) is at most AUTO_TOLERANCE.
AUTO_STEPS: tuple[int, ...] = (8, 16, 32, 64, 128)
AUTO_TOLERANCE = 1e-3

# Elements (windows x frames x neurons) per forward/backward chunk for an automatic batch size.
_AUTO_CHUNK_ELEMENTS = 1 << 24
# Embedding-space batches (sequences x frames x hidden): a backbone keeps ~30 such tensors per
# layer for the backward pass, so this bounds activation memory to a few hundred MB.
_EMB_CHUNK_ELEMENTS = 1 << 20


class SalienceMethod:
    """One attribution method (as in Captum: one class per method), registered in :data:`METHODS`.

    :meth:`on_inputs` attributes windows of neurons ``(w, s, N)`` with plain Captum.
    ``fast_path`` says how a :class:`decoding.models.Decoder` is attributed after its affine input
    projection instead (exact, and its cost no longer grows with ``N x steps``): ``"embedding"``
    runs the whole method on frame embeddings and maps the result back once (:meth:`on_embeddings`),
    ``"projection"`` maps each gradient back through the projection; ``None``: no such path.
    """

    name: ClassVar[str]
    title: ClassVar[str]
    captum: ClassVar[str]
    uses_baseline: ClassVar[bool] = False
    uses_steps: ClassVar[bool] = False
    has_delta: ClassVar[bool] = False
    fast_path: ClassVar[str | None] = None
    #: Draws random numbers (from torch's and numpy's global generators, seeded by the request).
    draws: ClassVar[bool] = False

    def on_inputs(self, c: _Chunk) -> _Maker:
        """The per-chunk attribution of windows of neurons, windows per chunk, its parameters."""
        raise NotImplementedError

    def on_embeddings(
        self, after: _Scalar, e_base: torch.Tensor, steps: int, ibs: int
    ) -> _Maker:
        """The same on frame embeddings ``(w, s, H)``: the per-window gradient (integrated along
        the path for IG; not yet multiplied by the input), delta and ``F(x) - F(b)``."""
        raise NotImplementedError(f"{self.name} has no embedding path")


METHODS: dict[str, SalienceMethod] = {}


def register_method(cls: type[SalienceMethod]) -> type[SalienceMethod]:
    """Class decorator: add a :class:`SalienceMethod` to :data:`METHODS` under its ``name``."""
    if cls.name in METHODS:
        raise ValueError(f"salience method {cls.name!r} registered twice")
    METHODS[cls.name] = cls()
    return cls


@register_method
class IntegratedGradientsMethod(SalienceMethod):
    name, title, captum = "ig", "Integrated Gradients", "IntegratedGradients"
    uses_baseline = uses_steps = has_delta = True
    fast_path = "embedding"

    def on_inputs(self, c: _Chunk) -> _Maker:
        return _ig_on_inputs(c)

    def on_embeddings(self, after, e_base, steps, ibs):  # noqa: D102
        return _ig_on_embeddings(after, e_base, steps, ibs)


@register_method
class InputXGradientMethod(SalienceMethod):
    name, title, captum = "ixg", "Input x Gradient", "InputXGradient"
    fast_path = "embedding"

    def on_inputs(self, c: _Chunk) -> _Maker:
        return _gradient_on_inputs(c, absolute=False)

    def on_embeddings(self, after, e_base, steps, ibs):  # noqa: D102
        return _gradient_on_embeddings(after, ibs)


@register_method
class SaliencyMethod(SalienceMethod):
    name, title, captum = "saliency", "Saliency |gradient|", "Saliency"
    fast_path = "projection"

    def on_inputs(self, c: _Chunk) -> _Maker:
        return _gradient_on_inputs(c, absolute=True)


@register_method
class GradientShapMethod(SalienceMethod):
    name, title, captum = "gradshap", "GradientShap", "GradientShap"
    uses_baseline = uses_steps = has_delta = draws = True

    def on_inputs(self, c: _Chunk) -> _Maker:
        return _gradshap_on_inputs(c)


@register_method
class FeatureAblationMethod(SalienceMethod):
    name, title, captum = "ablation", "Feature ablation by region", "FeatureAblation"
    uses_baseline = True

    def on_inputs(self, c: _Chunk) -> _Maker:
        return _ablation_on_inputs(c)


BASELINES: tuple[str, ...] = ("zeros", "rest")

#: The product's salience method (CLI default, dashboard default, the panel's map); chosen on the
#: whole generator panel (docs/salience.md, "Choosing the default").
DEFAULT_METHOD = "saliency"


@dataclass(frozen=True, kw_only=True)
class SalienceRequest:
    """What to attribute and how: one description used by :func:`compute_salience`,
    :func:`salience_of`, the cache key (:meth:`identity`), the CLI (:meth:`to_argv`) and the
    dashboard. Which frames is separate (an epoch, a split part or a frame range).

    Parameters
    ----------
    method : str
        A key of :data:`METHODS` (default :data:`DEFAULT_METHOD`).
    target : str or int
        ``"sum"`` (all channels, the study's target), ``"lateral"`` or one channel (name/index).
    steps : int or "auto"
        IG integration steps (``"auto"``: see :data:`AUTO_STEPS`); GradientShap samples.
    baseline : str or ndarray
        ``"zeros"`` (the training mean), ``"rest"`` (mean over rest epochs) or an explicit
        ``(N,)`` normalised vector (:func:`compute_salience` only).
    n_samples, stdevs, seed : int, float, int
        GradientShap: samples (default ``steps``), noise std, random seed.
    context : bool
        Windows may use up to ``window - 1`` frames beyond the range, as predictions do.
    internal_batch_size : int, optional
        Examples per forward/backward pass (how, not what: not part of :meth:`identity`).
    fast : bool
        Use the method's exact fast path for a Decoder (same numbers; not part of the identity).
    """

    method: str = DEFAULT_METHOD
    target: str | int = "sum"
    steps: int | str = 32
    baseline: str | np.ndarray = "zeros"
    n_samples: int | None = None
    stdevs: float = 0.1
    seed: int = 0
    context: bool = True
    internal_batch_size: int | None = None
    fast: bool = True

    def __post_init__(self) -> None:
        spec = _method_spec(self.method)
        if isinstance(self.baseline, str) and self.baseline not in BASELINES:
            raise SalienceError(
                f"unknown baseline {self.baseline!r}; choose one of {list(BASELINES)}"
            )
        _check_steps(self.method, spec, self.steps)

    @property
    def spec(self) -> SalienceMethod:
        """The registered method."""
        return METHODS[self.method]

    def identity(self) -> dict[str, Any]:
        """The fields that change the numbers (a method's unused options are ``None``)."""
        spec, shap = self.spec, self.method == "gradshap"
        fields = {
            "method": self.method,
            "target": str(self.target),
            "baseline": str(self.baseline) if spec.uses_baseline else "none",
            "steps": str(self.steps) if spec.uses_steps else None,
            "n_samples": self.n_samples if shap else None,
            "seed": self.seed if spec.draws else None,
            "context": bool(self.context),
        }
        if spec.draws:  # maps cached before numpy's generator was seeded too are not this seed's
            fields["seeded"] = "torch and numpy"
        return fields

    def to_argv(self) -> list[str]:
        """The ``python -m decoding salience`` options that ask for this request."""
        argv = ["--method", self.method, "--target", str(self.target)]
        if self.spec.uses_steps:
            argv += ["--steps", str(self.steps)]
        if self.spec.uses_baseline:
            argv += ["--baseline", str(self.baseline)]
        if not self.context:
            argv.append("--no-context")
        if self.internal_batch_size:
            argv += ["--internal-batch-size", str(self.internal_batch_size)]
        return argv


class _CheckpointInfo(Protocol):
    """What salience reads from a checkpoint (:class:`decoding.checkpoint.CheckpointInfo`)."""

    window: int
    stride: int
    mode: str
    n_neurons: int
    normalizer: Normalizer
    target_normalizer: Normalizer
    behavior_names: list[str]

    def split_for(self, n_frames: int) -> Split: ...

    def describe(self) -> str: ...


@dataclass(frozen=True, kw_only=True)
class DecoderIO:
    """What a decoder's checkpoint says about its inputs and outputs, as salience needs it.

    Parameters
    ----------
    window, stride : int
        Frames per window and the window stride of its predictions.
    normalizer : Normalizer, optional
        Maps raw ``(T, N)`` activity to the decoder's inputs (``None``: already normalised).
    output_scale, output_offset : ndarray, optional
        ``(K,)``: outputs in the recording's units are ``out * scale + offset``.
    behavior_names : sequence of str, optional
        Channel names (for a target given by name).
    parts : sequence of (start, stop), optional
        Windows never cross these boundaries (the train/val/test split); default one part.
    """

    window: int
    stride: int = 1
    normalizer: Normalizer | None = None
    output_scale: np.ndarray | None = None
    output_offset: np.ndarray | None = None
    behavior_names: Sequence[str] | None = None
    parts: Sequence[tuple[int, int]] | None = None

    @classmethod
    def of(cls, info: _CheckpointInfo, n_frames: int) -> DecoderIO:
        """The decoder of checkpoint ``info`` applied to a recording of ``n_frames`` frames."""
        split = info.split_for(n_frames)
        tnorm = info.target_normalizer
        return cls(
            window=int(info.window),
            stride=int(info.stride or 1),
            normalizer=info.normalizer,
            output_scale=None if tnorm is None else tnorm.std,
            output_offset=None if tnorm is None else tnorm.mean,
            behavior_names=list(info.behavior_names),
            parts=[(p.start, p.stop) for p in (split.train, split.val, split.test)],
        )


# ----------------------------------------------------------------------------------------------
# result


@dataclass
class SalienceResult:
    """Attribution of a decoder's target to each neuron at each frame of ``[start, stop)``.

    ``values`` is ``(frames, N)`` float32 (frames = ``stop - start``); ``convergence_delta`` and
    ``output_difference`` are ``(windows,)`` for IG and GradientShap (``None`` otherwise): the
    completeness gap ``sum(attr) - (F(x) - F(baseline))`` and ``F(x) - F(baseline)`` per window.
    """

    values: np.ndarray
    start: int
    stop: int
    method: str
    target: str
    baseline: str
    params: dict[str, Any]
    convergence_delta: np.ndarray | None = None
    output_difference: np.ndarray | None = None
    provenance: dict[str, Any] = field(default_factory=dict)
    neuron_ids: np.ndarray | None = None
    elapsed_s: float = 0.0
    from_cache: bool = False
    confidence: np.ndarray | None = None  # (N,) in [0, 1]: fraction of resamples in the top k

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float32)
        if self.values.ndim != 2 or self.values.shape[0] != self.stop - self.start:
            raise SalienceError(
                f"salience values must be (frames, neurons) with frames = stop - start = "
                f"{self.stop - self.start}; found shape {self.values.shape}"
            )

    @property
    def n_frames(self) -> int:
        return int(self.values.shape[0])

    @property
    def n_neurons(self) -> int:
        return int(self.values.shape[1])

    @property
    def frames(self) -> np.ndarray:
        """(frames,) recording frame index of each row of ``values``."""
        return np.arange(self.start, self.stop)

    @property
    def mean_abs(self) -> np.ndarray:
        """(N,) mean |attribution| over frames: the per-neuron salience."""
        return np.abs(self.values).mean(axis=0)

    @property
    def signed_mean(self) -> np.ndarray:
        """(N,) mean signed attribution over frames (the direction of the effect)."""
        return self.values.mean(axis=0)

    @property
    def max_abs_delta(self) -> float | None:
        """Largest |convergence delta| over windows (IG, GradientShap), else ``None``."""
        if self.convergence_delta is None or self.convergence_delta.size == 0:
            return None
        return float(np.max(np.abs(self.convergence_delta)))

    @property
    def relative_delta(self) -> float | None:
        """Largest |delta| relative to the largest |F(x) - F(baseline)| over windows."""
        if self.max_abs_delta is None or self.output_difference is None:
            return None
        scale = float(np.max(np.abs(self.output_difference))) or 1.0
        return self.max_abs_delta / scale

    def stability(
        self, k: int | None = None, *, n_boot: int = 200, block: int | None = None, seed: int = 0
    ) -> np.ndarray:
        """(N,) confidence in [0, 1]: the fraction of moving-block bootstrap resamples of the
        frames in which each neuron is among the ``k`` most salient (default
        :func:`default_top_k`). Blocks are ``block`` frames long (default: the decoder's window,
        so the calcium kernel's autocorrelation stays inside a block)."""
        F, N = self.values.shape
        k = default_top_k(N) if k is None else max(1, min(int(k), N))
        block = max(1, min(F, int(block or self.params.get("window", 1))))
        rng = np.random.default_rng(seed)
        n_blocks = -(-F // block)
        starts = rng.integers(0, F - block + 1, size=(n_boot, n_blocks))
        weights = np.zeros((n_boot, F), dtype=np.float32)
        rows = np.repeat(np.arange(n_boot), n_blocks * block)
        frames = (starts[..., None] + np.arange(block)).reshape(n_boot, -1).ravel()
        np.add.at(weights, (rows, frames), 1.0)
        scores = weights @ np.abs(self.values)  # (n_boot, N), proportional to the mean
        top = np.argpartition(-scores, k - 1, axis=1)[:, :k]
        counts = np.bincount(top.ravel(), minlength=N)
        return (counts / n_boot).astype(np.float32)

    def ranking(self) -> np.ndarray:
        """(N,) neuron indices, most salient (largest mean |attribution|) first."""
        return np.argsort(-self.mean_abs, kind="stable")

    def summary(self) -> str:
        """One line for logs and the CLI."""
        delta = "" if self.max_abs_delta is None else f", max |delta| {self.max_abs_delta:.3g}"
        return (
            f"{METHODS[self.method].title if self.method in METHODS else self.method}, "
            f"target {self.target}, frames [{self.start}, {self.stop}), {self.n_neurons} neurons"
            f"{delta}, {self.elapsed_s:.2f} s{' (cached)' if self.from_cache else ''}"
        )

    # -- HDF5 ------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write everything (values, summaries, delta, provenance) to an HDF5 file, atomically."""
        path = Path(path)
        with atomic_write_path(path, suffix=".h5") as tmp, h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT_NAME
            f.attrs["format_version"] = FORMAT_VERSION
            for name in ("start", "stop"):
                f.attrs[name] = int(getattr(self, name))
            for name in ("method", "target", "baseline"):
                f.attrs[name] = str(getattr(self, name))
            f.attrs["params"] = json.dumps(self.params, sort_keys=True)
            f.attrs["provenance"] = json.dumps(self.provenance, sort_keys=True, default=str)
            f.attrs["elapsed_s"] = float(self.elapsed_s)
            chunks = (
                (min(self.n_frames, 64), min(self.n_neurons, 4096)) if self.values.size else None
            )
            f.create_dataset(
                "values", data=self.values, chunks=chunks, compression="gzip", compression_opts=1
            )
            f.create_dataset("mean_abs", data=self.mean_abs.astype(np.float32))
            f.create_dataset("signed_mean", data=self.signed_mean.astype(np.float32))
            if self.convergence_delta is not None:
                f.create_dataset("convergence_delta", data=self.convergence_delta)
            if self.output_difference is not None:
                f.create_dataset("output_difference", data=self.output_difference)
            if self.neuron_ids is not None:
                f.create_dataset("neuron_ids", data=np.asarray(self.neuron_ids, dtype=np.int64))
            if self.confidence is not None:
                f.create_dataset("confidence", data=np.asarray(self.confidence, dtype=np.float32))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> SalienceResult:
        """Read a result written by :meth:`save`."""
        path = Path(path)
        if not path.is_file():
            raise SalienceError(
                f"salience file {path} does not exist; compute it with "
                "`python -m decoding salience ... --out FILE`"
            )
        try:
            with h5py.File(path, "r") as f:
                if f.attrs.get("format") != FORMAT_NAME:
                    raise SalienceError(
                        f"{path} is not a salience file (attribute 'format' is "
                        f"{f.attrs.get('format')!r}, expected {FORMAT_NAME!r})"
                    )
                version = int(f.attrs.get("format_version", 0))
                if version > FORMAT_VERSION:
                    raise SalienceError(
                        f"{path} has salience format version {version}; this program reads up to "
                        f"{FORMAT_VERSION}: update NLP4Neuro Explorer"
                    )
                opt = {
                    k: f[k][()]
                    for k in ("convergence_delta", "output_difference", "neuron_ids", "confidence")
                    if k in f
                }
                return cls(
                    values=f["values"][()],
                    start=int(f.attrs["start"]),
                    stop=int(f.attrs["stop"]),
                    method=str(f.attrs["method"]),
                    target=str(f.attrs["target"]),
                    baseline=str(f.attrs["baseline"]),
                    params=json.loads(f.attrs["params"]),
                    provenance=json.loads(f.attrs["provenance"]),
                    elapsed_s=float(f.attrs.get("elapsed_s", 0.0)),
                    **opt,
                )
        except (OSError, KeyError) as exc:
            raise SalienceError(
                f"salience file {path} is unreadable or incomplete ({exc}); "
                "delete it and compute it again"
            ) from exc


# ----------------------------------------------------------------------------------------------
# targets


def default_top_k(n_neurons: int) -> int:
    """The top-k that per-neuron confidence refers to: 1 % of the neurons, at least 10."""
    return max(1, min(int(n_neurons), max(10, math.ceil(0.01 * int(n_neurons)))))


def _target_fn(
    target: str | int, n_outputs: int, names: Sequence[str] | None
) -> tuple[str, Callable[[torch.Tensor], torch.Tensor]]:
    """Canonical target label and a map (B, S, K) outputs -> (B,) scalar per window."""
    names = list(names or [])
    key = str(target).strip()
    if key == "sum":
        return "sum", lambda out: out.sum(dim=(1, 2))
    if key == "lateral":
        return "lateral", lambda out: out.mean(dim=2).sum(dim=1)
    if key.lstrip("-").isdigit():
        k = int(key)
        if not 0 <= k < n_outputs:
            raise SalienceError(
                f"target channel {k} is out of range: the decoder has {n_outputs} outputs "
                f"(0..{n_outputs - 1}); use 'sum', 'lateral', an index or one of {names}"
            )
    elif key in names:
        k = names.index(key)
    else:
        raise SalienceError(
            f"unknown salience target {key!r}: expected 'sum', 'lateral', a channel index "
            f"0..{n_outputs - 1}" + (f" or a channel name {names}" if names else "")
        )
    label = names[k] if k < len(names) else str(k)
    return label, lambda out, k=k: out[..., k].sum(dim=1)


# ----------------------------------------------------------------------------------------------
# windows


def _normalise(activity: np.ndarray, normalizer: Normalizer | None) -> np.ndarray:
    """Apply the checkpoint's per-neuron normaliser (``None``: already normalised)."""
    if normalizer is None:
        return np.asarray(activity, dtype=np.float32)
    return np.asarray(normalizer.transform(activity), dtype=np.float32)


def resolve_range(
    recording: Recording,
    *,
    epoch: str | None = None,
    start: int | None = None,
    stop: int | None = None,
    split: Split | None = None,
) -> tuple[int, int, str]:
    """The one frame range ``[start, stop)`` a salience map covers, and its label.

    The selection is resolved by :func:`decoding.recording.frame_ranges` (an epoch name,
    ``"name#k"``, ``"train"``/``"val"``/``"test"`` with ``split``, or ``start``/``stop``); a map
    covers one contiguous range, so a repeated epoch name means its first occurrence (``name#2``
    the second).
    """
    from decoding.recording import frame_ranges

    a, b = frame_ranges(recording, epoch=epoch, start=start, stop=stop, split=split)[0]
    return a, b, epoch if epoch is not None else f"frames {a}-{b}"


# ----------------------------------------------------------------------------------------------
# the engine


_Attr = tuple[torch.Tensor, "torch.Tensor | None", "torch.Tensor | None"]
"""(attributions (w, s, N), convergence delta (w,) or None, F(x) - F(baseline) (w,) or None)."""


class _Scalar(torch.nn.Module):
    """model (B, S, N) -> (B, S, K) wrapped into (B, S, N) -> (B,) for Captum."""

    def __init__(self, model: torch.nn.Module, reduce: Callable[[torch.Tensor], torch.Tensor]):
        super().__init__()
        self.model = model
        self.reduce = reduce

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.model(x)
        if isinstance(out, tuple):
            out = out[0]
        return self.reduce(out)


class _AfterProjection(torch.nn.Module):
    """The decoder from frame embeddings on: ``head(backbone(e))`` for a :class:`Decoder`."""

    def __init__(self, model: torch.nn.Module):
        super().__init__()
        self.model = model

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        if callable(getattr(self.model, "decode", None)):
            return self.model.decode(emb)
        return self.model.head(self.model.backbone(emb))


def _projection(model: torch.nn.Module, x: torch.Tensor) -> torch.Tensor | None:
    """The Jacobian ``(H, N)`` of the decoder's input projection when the fast path is exact.

    Needs ``project``, ``backbone`` and ``head`` (a :class:`decoding.models.Decoder`), checked on
    the probe window ``x`` (1, S, N): ``model(x) == head(backbone(project(x)))`` and ``project``
    affine (in eval mode dropout is off). Otherwise ``None`` (plain Captum on the input).
    """
    if not all(callable(getattr(model, a, None)) for a in ("project", "backbone", "head")):
        return None
    with torch.no_grad():
        e, e0, e2 = model.project(x), model.project(torch.zeros_like(x)), model.project(2 * x)
        tol = 1e-4 * float(e.abs().max()) + 1e-6
        if e.shape[:-1] != x.shape[:-1] or not torch.allclose(e2 - e0, 2 * (e - e0), atol=tol):
            return None
        out, via = model(x), _AfterProjection(model)(e)
        if isinstance(out, tuple) or not torch.allclose(out, via, rtol=1e-4, atol=1e-5):
            return None
    H, N = int(e.shape[-1]), int(x.shape[-1])
    z = torch.zeros(H, N, dtype=x.dtype, device=x.device, requires_grad=True)
    eye = torch.eye(H, dtype=e.dtype, device=x.device)
    (jac,) = torch.autograd.grad(model.project(z), z, grad_outputs=eye)
    return jac.detach()  # row h = d e_h / d x


def _auto_batch(window: int, n_neurons: int, requested: int | None) -> int:
    if requested is not None:
        if requested < 1:
            raise SalienceError(f"internal_batch_size must be >= 1, found {requested}")
        return int(requested)
    return max(1, _AUTO_CHUNK_ELEMENTS // max(1, window * n_neurons))


def _group_mask(groups: np.ndarray | Sequence[Any], n_neurons: int) -> tuple[np.ndarray, list[str]]:
    """Per-neuron group labels -> (N,) int ids 0..G-1 and the label of each id."""
    labels = np.asarray(groups).astype(str)
    if labels.shape != (n_neurons,):
        raise SalienceError(
            f"ablation groups must give one label per neuron ({n_neurons}); "
            f"found shape {labels.shape}"
        )
    names, ids = np.unique(labels, return_inverse=True)
    return ids.astype(np.int64), [str(n) for n in names]


def compute_salience(
    model: torch.nn.Module,
    activity: np.ndarray,
    request: SalienceRequest | None = None,
    *,
    decoder: DecoderIO,
    start: int = 0,
    stop: int | None = None,
    rest_frames: np.ndarray | None = None,
    groups: np.ndarray | Sequence[Any] | None = None,
    device: str | torch.device = "cpu",
    provenance: Mapping[str, Any] | None = None,
    neuron_ids: np.ndarray | None = None,
) -> SalienceResult:
    """Attribute a decoder's target to every neuron at every frame of ``activity[start:stop]``.

    Parameters
    ----------
    model : torch.nn.Module
        Maps normalised activity ``(B, S, N)`` to behaviour ``(B, S, K)``.
    activity : ndarray
        The raw ``(T, N)`` ΔF/F; only the frames the windows (and ``rest_frames``) use are read.
    request : SalienceRequest
        Method, target, steps, baseline, context... (default: ``SalienceRequest()``).
    decoder : DecoderIO
        Window, stride, normaliser, output units and split parts (windows never cross them).
    start, stop : int
        The frames ``[start, stop)`` to attribute (default: all).
    rest_frames : ndarray, optional
        Frames whose mean is the ``rest`` baseline.
    groups : array-like, optional
        One label per neuron: the features ``ablation`` removes together (default: each neuron).
    device, provenance, neuron_ids
        Where it runs; stored with the result.

    Returns
    -------
    SalienceResult
        The ``(stop - start, N)`` map with its convergence delta, parameters and provenance.
    """
    t0 = time.perf_counter()
    req = request or SalienceRequest()
    method, spec = req.method, req.spec
    T, N, start, stop = _check_range(activity, start, stop)
    window, stride = int(decoder.window), int(decoder.stride)
    if window < 1 or stride < 1:
        raise SalienceError(f"window ({window}) and stride ({stride}) must be >= 1 frame")
    steps, auto_steps = _check_steps(method, spec, req.steps)
    pieces = _pieces(start, stop, T, decoder.parts, window if req.context else 0)
    lo, hi = min(p[2] for p in pieces), max(p[3] for p in pieces)
    x = _normalised_frames(activity, lo, hi, decoder.normalizer)  # rows = frames lo..hi-1
    base_label, base_vec = _baseline_vector(
        req.baseline, activity, decoder.normalizer, rest_frames, N
    )
    dev = torch.device(device)
    ca, cb = pieces[0][2] - lo, pieces[0][3] - lo
    first = torch.from_numpy(x[None, ca : min(cb, ca + window)]).to(dev)  # one window
    fwd, jac, target_label = _scalar_model(model.to(dev).eval(), first, decoder, req)
    ids = _ablation_groups(groups, N) if method == "ablation" else None
    params: dict[str, Any] = {"window": window, "stride": stride, "context": bool(req.context)}
    with _seeded(req.seed) if spec.draws else contextlib.nullcontext():
        engine = _Engine.build(req, fwd, jac, x, base_vec, dev, ids=ids)
        if auto_steps:
            steps = engine.auto_steps(pieces[0], lo, window, stride)
            params |= {"steps_auto": True, "auto_tolerance": AUTO_TOLERANCE}
        mean, deltas, diffs = engine.accumulate(
            pieces, lo, start, stop, window, stride, steps, params
        )
    if engine.emb_mode:  # mean integrated gradient per frame (F, H) -> neurons: (x - b) * (g @ J)
        xin = x[start - lo : stop - lo]
        factor = torch.from_numpy(xin - base_vec if method == "ig" else xin).to(dev)
        with torch.no_grad():
            mean = factor * (mean.float() @ jac)
    return SalienceResult(
        values=mean.float().cpu().numpy(), start=start, stop=stop, method=method,
        target=target_label, baseline=base_label if spec.uses_baseline else "none",
        params=params, convergence_delta=_host(deltas), output_difference=_host(diffs),
        provenance=dict(provenance or {}), neuron_ids=neuron_ids,
        elapsed_s=time.perf_counter() - t0,
    )  # fmt: skip


#: Held by a computation that draws random numbers (see :func:`_seeded`).
_GENERATORS = threading.Lock()


@contextlib.contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """For a method that draws (Captum's GradientShap takes its points on the path from numpy's
    generator, its input noise from torch's): both global generators seeded with ``seed``, numpy's
    state given back after, and no other such computation in this process meanwhile. The
    generators are global: two dashboard pages computing GradientShap at once gave each other's
    draws. Methods that draw nothing never touch them (an IG run seeding them in the middle of a
    GradientShap run changed its map too), so they run side by side.
    """
    with _GENERATORS:
        state = np.random.get_state()
        seed_all(seed)
        try:
            yield
        finally:
            np.random.set_state(state)


def _scalar_model(
    model: torch.nn.Module, first: torch.Tensor, decoder: DecoderIO, req: SalienceRequest
) -> tuple[_Scalar, torch.Tensor | None, str]:
    """The scalar target of ``model`` in the recording's units (checked on one window ``first``,
    ``(1, s, N)``), the projection Jacobian of the method's fast path (or None), the target's
    label."""
    K = _n_outputs(model, first, int(first.shape[2]))
    target_label, reduce = _target_fn(req.target, K, decoder.behavior_names)
    units = _in_units(reduce, decoder.output_scale, decoder.output_offset, K, first.device)
    jac = _projection(model, first) if req.fast and req.spec.fast_path else None
    return _Scalar(model, units), jac, target_label


def _method_spec(method: str) -> SalienceMethod:
    if method not in METHODS:
        raise SalienceError(f"unknown salience method {method!r}; choose one of {sorted(METHODS)}")
    return METHODS[method]


def _check_range(
    activity: np.ndarray | _LazyFrames, start: int, stop: int | None
) -> tuple[int, int, int, int]:
    """``(T, N, start, stop)`` of a ``(frames, neurons)`` array and a range inside it."""
    if getattr(activity, "ndim", 0) != 2:
        raise SalienceError(
            f"activity must be (frames, neurons); found shape {getattr(activity, 'shape', None)}"
        )
    T, N = int(activity.shape[0]), int(activity.shape[1])
    stop = T if stop is None else int(stop)
    start = int(start)
    if not 0 <= start < stop <= T:
        raise SalienceError(
            f"frame range [{start}, {stop}) is not inside the recording's {T} frames; "
            f"expected 0 <= start < stop <= {T}"
        )
    return T, N, start, stop


def _check_steps(method: str, spec: SalienceMethod, steps: int | str) -> tuple[int, bool]:
    """Integration steps as an int, and whether IG chooses them (``"auto"``)."""
    if method == "ig" and str(steps) == "auto":
        return AUTO_STEPS[0], True
    if spec.uses_steps and (not str(steps).isdigit() or int(steps) < 1):
        raise SalienceError(
            f"--steps must be a whole number >= 1 for {method}"
            + (" or 'auto'" if method == "ig" else "")
            + f", found {steps!r}"
        )
    return int(steps), False


def _pieces(
    start: int, stop: int, T: int, parts: Sequence[tuple[int, int]] | None, context: int
) -> list[tuple[int, int, int, int]]:
    """``(a, b, ca, cb)``: the pieces ``[a, b)`` of ``[start, stop)`` inside one part each, and
    the frames ``[ca, cb)`` their windows may use (up to ``context - 1`` more each side)."""
    pieces = []
    for pa, pb in parts or [(0, T)]:
        a, b = max(start, int(pa)), min(stop, int(pb))
        if a < b:
            reach = max(0, context - 1)
            pieces.append((a, b, max(int(pa), a - reach), min(int(pb), b + reach)))
    if sum(b - a for a, b, _, _ in pieces) != stop - start:
        raise SalienceError(f"parts {list(parts or [])} do not cover frames [{start}, {stop})")
    return pieces


def _normalised_frames(
    activity: np.ndarray | _LazyFrames, lo: int, hi: int, normalizer: Normalizer | None
) -> np.ndarray:
    x = _normalise(np.asarray(activity[lo:hi]), normalizer)
    if not np.all(np.isfinite(x)):
        raise SalienceError(
            f"normalised activity in frames [{lo}, {hi}) contains NaN or inf; "
            "clean the recording (e.g. interpolate missing frames) first"
        )
    return x


def _n_outputs(model: torch.nn.Module, first: torch.Tensor, N: int) -> int:
    """The decoder's number of outputs K, checked on one window ``first`` (1, s, N)."""
    s0 = int(first.shape[1])
    with torch.no_grad():
        probe = model(first)
        if isinstance(probe, tuple):
            probe = probe[0]
    if probe.ndim != 3 or tuple(probe.shape[:2]) != (1, s0):
        raise SalienceError(
            f"the decoder must map (B, S, N) to (B, S, K); for input (1, {s0}, {N}) it "
            f"returned {tuple(probe.shape)}"
        )
    return int(probe.shape[2])


def _in_units(
    reduce: Callable[[torch.Tensor], torch.Tensor],
    output_scale: np.ndarray | None,
    output_offset: np.ndarray | None,
    K: int,
    dev: torch.device,
) -> Callable[[torch.Tensor], torch.Tensor]:
    """``reduce`` applied to outputs in the recording's units (``out * scale + offset``)."""
    if output_scale is None and output_offset is None:
        return reduce
    scale = torch.ones(K) if output_scale is None else torch.as_tensor(output_scale).float()
    offset = torch.zeros(K) if output_offset is None else torch.as_tensor(output_offset).float()
    if scale.shape != (K,) or offset.shape != (K,):
        raise SalienceError(
            f"output_scale/output_offset must be ({K},) like the decoder's outputs; found "
            f"{tuple(scale.shape)} and {tuple(offset.shape)}"
        )
    scale, offset = scale.to(dev), offset.to(dev)
    return lambda out: reduce(out * scale + offset)


def _ablation_groups(groups: np.ndarray | Sequence[Any] | None, N: int) -> np.ndarray:
    """(N,) group id per neuron for feature ablation (each neuron its own group by default)."""
    if groups is not None:
        return _group_mask(groups, N)[0]
    if N > MAX_SINGLE_NEURON_ABLATION:
        raise SalienceError(
            f"ablation of single neurons needs {N} forward passes per window; give groups "
            "(e.g. the atlas region of each neuron, as the CLI does) or use another method"
        )
    return np.arange(N, dtype=np.int64)


@dataclass
class _Engine:
    """Where attribution runs: windows of frame embeddings ``(w, s, H)`` (``emb_mode``: IG and
    Input x Gradient of a Decoder; exact, the projection is affine) or of neurons ``(w, s, N)``.

    ``inputs_at(rows)`` gives the inputs of windows ``rows`` (w, s) of ``x``; ``make(s, steps)``
    the per-chunk attribution function, windows per chunk and its parameters.
    """

    inputs_at: Callable[[np.ndarray], torch.Tensor]
    make: Callable[[int, int], tuple[Callable[[torch.Tensor], _Attr], int, dict[str, Any]]]
    width: int
    emb_mode: bool
    device: torch.device

    @classmethod
    def build(
        cls, req: SalienceRequest, fwd: _Scalar, jac: torch.Tensor | None, x: np.ndarray,
        base_vec: np.ndarray, dev: torch.device, *, ids: np.ndarray | None,
    ) -> _Engine:  # fmt: skip
        N = int(x.shape[1])
        method, ibs = req.method, req.internal_batch_size
        if jac is not None and req.spec.fast_path == "embedding":
            H = int(jac.shape[0])
            rows_per = max(1, _AUTO_CHUNK_ELEMENTS // max(1, N))
            with torch.no_grad():  # every frame projected once: (hi - lo, H)
                E = torch.cat(
                    [
                        fwd.model.project(torch.from_numpy(x[i : i + rows_per]).to(dev))
                        for i in range(0, x.shape[0], rows_per)
                    ]
                )
                e_base = fwd.model.project(torch.from_numpy(base_vec[None, None]).to(dev))
            return cls(
                lambda rows: E[torch.from_numpy(rows).to(dev)],
                lambda s, steps: _make_embedding_attribute(method, fwd, e_base, s, H, steps, ibs),
                H, True, dev,
            )  # fmt: skip

        def make(s: int, steps: int):
            base = torch.from_numpy(np.broadcast_to(base_vec, (1, s, N)).copy()).to(dev)
            chunk = _Chunk(
                fwd, base, s, N, int(steps), _auto_batch(s, N, ibs), req.n_samples, req.stdevs,
                ids, dev,
            )  # fmt: skip
            if jac is not None:  # fast_path == "projection"
                return _saliency_via_projection(fwd, jac, s, N, ibs, dev)
            return req.spec.on_inputs(chunk)

        return cls(lambda rows: torch.from_numpy(x[rows]).to(dev), make, N, False, dev)

    def auto_steps(self, piece: tuple[int, int, int, int], lo: int, window: int,
                   stride: int) -> int:  # fmt: skip
        """The fewest of :data:`AUTO_STEPS` whose completeness gap is small on 4 probe windows."""
        _, _, ca, cb = piece
        starts, s = window_starts(ca, cb, window, stride)
        pick = starts[np.linspace(0, len(starts) - 1, 4).astype(int)]
        probe = self.inputs_at(window_index(pick - lo, s))
        for steps in AUTO_STEPS:
            _, d, od = self.make(s, steps)[0](probe)
            if float(d.abs().max()) / max(float(od.abs().max()), 1e-12) <= AUTO_TOLERANCE:
                break
        return steps

    def accumulate(
        self, pieces: list[tuple[int, int, int, int]], lo: int, start: int, stop: int,
        window: int, stride: int, steps: int, params: dict[str, Any],
    ) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:  # fmt: skip
        """Per-frame mean attribution ``(stop - start, width)`` over every window of every
        piece (on the device), with the per-window deltas and output differences."""
        dev = self.device
        acc = sum_dtype(dev)
        total = torch.zeros((stop - start, self.width), dtype=acc, device=dev)
        count = np.zeros(stop - start, dtype=np.int64)
        deltas: list[torch.Tensor] = []
        diffs: list[torch.Tensor] = []
        params["windows"] = 0
        for a, b, ca, cb in pieces:
            starts, s = window_starts(ca, cb, window, stride)
            local = window_index(starts - lo, s)  # (W, s) rows of x
            attribute, per_call, extra = self.make(s, steps)
            params |= extra
            params["windows"] += len(starts)
            for i in range(0, len(starts), per_call):
                attr, d, od = attribute(self.inputs_at(local[i : i + per_call]))
                rows = local[i : i + per_call] + lo - start  # (w, s) result rows; outside = context
                keep = (rows >= a - start) & (rows < b - start)
                total.index_add_(
                    0, torch.from_numpy(rows[keep]).to(dev),
                    attr.detach()[torch.from_numpy(keep).to(dev)].to(acc),
                )  # fmt: skip
                count += np.bincount(rows[keep], minlength=stop - start)
                deltas += [] if d is None else [d.detach().reshape(-1)]
                diffs += [] if od is None else [od.detach().reshape(-1)]
        mean = total / torch.from_numpy(np.maximum(count, 1)).to(dev, acc)[:, None]
        return mean, deltas, diffs


def _emb_batch(after: torch.nn.Module, s: int, H: int, dev: torch.device) -> int:
    """Sequences ``(s, H)`` per backward pass in the embedding space: 256 at most on the CPU
    (larger batches gain nothing there); on CUDA as many as fit in half the free memory, from the
    peak memory of a probe pass of 8 sequences (the whole test split's IG steps in a few passes)."""
    if dev.type != "cuda":
        return max(1, min(256, _EMB_CHUNK_ELEMENTS // (s * H)))
    torch.cuda.synchronize(dev)
    torch.cuda.reset_peak_memory_stats(dev)
    base = torch.cuda.memory_allocated(dev)
    dtype = next(after.parameters()).dtype
    probe = torch.zeros(8, s, H, device=dev, dtype=dtype, requires_grad=True)
    torch.autograd.grad(after(probe).sum(), probe)
    per_sequence = max(1, (torch.cuda.max_memory_allocated(dev) - base) // 8)
    free, _ = torch.cuda.mem_get_info(dev)
    return int(max(8, min(1 << 15, free // 2 // per_sequence)))


def _host(parts: list[torch.Tensor]) -> np.ndarray | None:
    """Per-window values gathered on the device -> one float64 host array (None if empty)."""
    return torch.cat(parts).double().cpu().numpy() if parts else None


def _make_embedding_attribute(
    method: str,
    fwd: _Scalar,
    e_base: torch.Tensor,
    s: int,
    H: int,
    steps: int,
    internal_batch_size: int | None,
) -> _Maker:
    """``method`` on frame embeddings ``(w, s, H)`` after the decoder's input projection."""
    after = _Scalar(_AfterProjection(fwd.model), fwd.reduce)
    ibs = internal_batch_size or _emb_batch(after, s, H, e_base.device)
    return METHODS[method].on_embeddings(after, e_base, int(steps), ibs)


def _ig_on_embeddings(after: _Scalar, e_base: torch.Tensor, steps: int, ibs: int) -> _Maker:
    from captum.attr import IntegratedGradients

    ig_e = IntegratedGradients(after, multiply_by_inputs=False)

    def attribute(e_x: torch.Tensor) -> _Attr:
        eb = e_base.expand_as(e_x)
        g = ig_e.attribute(e_x, baselines=eb, n_steps=steps, internal_batch_size=ibs)
        with torch.no_grad():
            od = after(e_x) - after(eb[:1])
            # completeness in embedding space: sum_t g_t . (e_t - e_b) = sum_tn attr_tn
            d = (g * (e_x - eb)).sum(dim=(1, 2)) - od
        return g, d, od

    extra = {"path": "embedding", "steps": steps, "internal_batch_size": ibs}
    return attribute, max(1, ibs // steps), extra


def _gradient_on_embeddings(after: _Scalar, ibs: int) -> _Maker:
    def attribute(e_x: torch.Tensor) -> _Attr:
        e_x = e_x.detach().requires_grad_(True)
        (g,) = torch.autograd.grad(after(e_x).sum(), e_x)
        return g, None, None

    return attribute, ibs, {"path": "embedding", "batch_size": ibs}


@dataclass(frozen=True)
class _Chunk:
    """What an input-space attribution needs: the scalar model, the baseline window (1, s, N),
    the window length ``s``, neurons ``N``, steps, the device and the method's options."""

    fwd: _Scalar
    base: torch.Tensor
    s: int
    N: int
    steps: int
    ibs: int
    n_samples: int | None
    stdevs: float
    ids: np.ndarray | None
    dev: torch.device


_Maker = tuple[Callable[[torch.Tensor], _Attr], int, dict[str, Any]]
"""(per-chunk attribution function, windows per chunk, its parameters)."""


def _ig_on_inputs(c: _Chunk) -> _Maker:
    from captum.attr import IntegratedGradients

    ig = IntegratedGradients(c.fwd)

    def attribute(chunk: torch.Tensor) -> _Attr:
        a, d = ig.attribute(
            chunk,
            baselines=c.base.expand_as(chunk),
            n_steps=c.steps,
            internal_batch_size=c.ibs,
            return_convergence_delta=True,
        )
        with torch.no_grad():
            return a, d, c.fwd(chunk) - c.fwd(c.base)

    # windows per Captum call: about one internal batch of windows x steps each
    return attribute, max(1, c.ibs // c.steps), {"steps": c.steps, "internal_batch_size": c.ibs}


def _gradshap_on_inputs(c: _Chunk) -> _Maker:
    from captum.attr import GradientShap

    n = int(c.n_samples or c.steps)
    gs = GradientShap(c.fwd)

    def attribute(chunk: torch.Tensor) -> _Attr:
        a, d = gs.attribute(
            chunk, baselines=c.base, n_samples=n, stdevs=float(c.stdevs),
            return_convergence_delta=True,
        )  # fmt: skip
        with torch.no_grad():
            od = c.fwd(chunk) - c.fwd(c.base)
        # Captum returns one delta per (window, sample); keep the mean per window
        return a, d.reshape(len(chunk), n).mean(dim=1), od

    return attribute, max(1, c.ibs // n), {"n_samples": n, "stdevs": float(c.stdevs)}


def _gradient_on_inputs(c: _Chunk, *, absolute: bool) -> _Maker:
    from captum.attr import InputXGradient, Saliency

    engine = Saliency(c.fwd) if absolute else InputXGradient(c.fwd)
    kwargs = {"abs": True} if absolute else {}

    def attribute(chunk: torch.Tensor) -> _Attr:
        return engine.attribute(chunk.requires_grad_(True), **kwargs), None, None

    return attribute, c.ibs, {"batch_size": c.ibs}


def _ablation_on_inputs(c: _Chunk) -> _Maker:
    from captum.attr import FeatureAblation

    ids = c.ids
    assert ids is not None  # set by the caller for ablation
    mask = torch.from_numpy(np.broadcast_to(ids, (1, c.s, c.N)).copy()).to(c.dev)
    fa = FeatureAblation(c.fwd)
    # Captum gives every element of a group the whole group's effect; spread it evenly so that
    # sums over a group's neurons and frames equal the group's ablation effect
    size = torch.from_numpy(np.bincount(ids)[ids] * float(c.s)).to(c.dev)

    def attribute(chunk: torch.Tensor) -> _Attr:
        a = fa.attribute(chunk, baselines=c.base.expand_as(chunk), feature_mask=mask)
        return a / size.to(a.dtype), None, None

    return attribute, c.ibs, {"groups": int(ids.max()) + 1 if ids.size else 0}


def _saliency_via_projection(fwd: _Scalar, jac: torch.Tensor, s: int, N: int,
                             ibs: int | None, dev: torch.device) -> _Maker:  # fmt: skip
    """Saliency of a Decoder, exact: the input projection e = project(x) is affine, so
    d/dx = J^T d/de; gradients are taken in the small embedding space (hidden << N)."""
    in_budget = max(1, _AUTO_CHUNK_ELEMENTS // (s * N))  # windows of (s, N) inputs per chunk
    after = _Scalar(_AfterProjection(fwd.model), fwd.reduce)
    ibs = ibs or _emb_batch(after, s, int(jac.shape[0]), dev)
    proj = fwd.model.project

    def attribute(chunk: torch.Tensor) -> _Attr:
        with torch.no_grad():
            e_x = proj(chunk)
        e_x.requires_grad_(True)
        (g,) = torch.autograd.grad(after(e_x).sum(), e_x)
        with torch.no_grad():
            return (g @ jac).abs(), None, None

    return attribute, min(ibs, in_budget), {"path": "embedding", "batch_size": ibs}


def _baseline_vector(
    baseline: str | np.ndarray,
    activity: np.ndarray,
    normalizer: Normalizer | None,
    rest_frames: np.ndarray | None,
    n_neurons: int,
) -> tuple[str, np.ndarray]:
    if isinstance(baseline, np.ndarray):
        vec = np.asarray(baseline, dtype=np.float32)
        if vec.shape != (n_neurons,):
            raise SalienceError(
                f"an explicit baseline must be one normalised value per neuron ({n_neurons},); "
                f"found shape {vec.shape}"
            )
        return "custom", vec
    if baseline == "zeros":
        return "zeros", np.zeros(n_neurons, dtype=np.float32)
    if baseline == "rest":
        if rest_frames is None or len(rest_frames) == 0:
            raise SalienceError(
                "baseline 'rest' needs frames of a rest epoch, but the recording has no epoch "
                "named 'rest'; use --baseline zeros (the training mean)"
            )
        rows = np.asarray(activity[np.asarray(rest_frames)], dtype=np.float32)
        return "rest", _normalise(rows, normalizer).mean(axis=0).astype(np.float32)
    raise SalienceError(f"unknown baseline {baseline!r}; choose one of {list(BASELINES)}")


# ----------------------------------------------------------------------------------------------
# cache + checkpoint integration


def default_cache_dir() -> Path:
    """Where salience results are cached: ``cache_root() / "salience"`` (see
    :func:`decoding.io_utils.cache_root`)."""
    return cache_root() / "salience"


def fingerprint_checkpoint(directory: str | os.PathLike) -> dict[str, Any]:
    """Identity of a checkpoint folder: path, size and modification time of each file in it."""
    directory = Path(directory)
    return {
        "dir": str(directory.resolve()),
        "files": [file_fingerprint(p) for p in sorted(directory.iterdir()) if p.is_file()],
    }


def fingerprint_recording(recording: Recording, start: int, stop: int) -> dict[str, Any]:
    """Identity of a recording: its file (path/size/mtime) or, in memory, a hash of its frames."""
    path = recording.path
    if path is not None and Path(path).is_file():
        return {"fish_id": recording.fish_id, **file_fingerprint(path)}
    digest = hashlib.blake2b(digest_size=16)
    digest.update(np.ascontiguousarray(recording.activity[start:stop]).tobytes())
    digest.update(str(recording.activity.shape).encode())
    return {"fish_id": recording.fish_id, "activity_hash": digest.hexdigest()}


def cache_key(parts: Mapping[str, Any]) -> str:
    """A stable hex key for a JSON-serialisable description of a computation."""
    blob = json.dumps({"format_version": FORMAT_VERSION, **parts}, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


class SalienceCache:
    """A folder of ``<key>.h5`` salience results; writes are atomic, corrupt entries recomputed.

    ``write_behind=True``: :meth:`put` hands the file to one background writer thread and returns
    at once (an interactive caller shows the result without waiting ~0.1 s for its HDF5 file);
    :meth:`flush` waits for the writes handed over. A write that fails is reported on stderr and
    leaves no file, only an uncached result.
    """

    def __init__(self, directory: str | os.PathLike | None = None, *, write_behind: bool = False):
        self.directory = Path(directory) if directory is not None else default_cache_dir()
        self.write_behind = write_behind

    def path(self, key: str) -> Path:
        return self.directory / f"{key}.h5"

    def get(self, key: str) -> SalienceResult | None:
        p = self.path(key)
        if not p.is_file():
            return None
        try:
            res = SalienceResult.load(p)
        except SalienceError:
            return None
        res.from_cache = True
        return res

    def put(self, key: str, result: SalienceResult) -> Path:
        """Store ``result`` under ``key``; returns its file (written once :meth:`flush`)."""
        if not self.write_behind:
            return result.save(self.path(key))
        path = self.path(key)
        job = _writer().submit(_save_reporting, result, path)
        _PENDING.add(job)
        job.add_done_callback(_PENDING.discard)
        return path

    @staticmethod
    def flush() -> None:
        """Wait for every write handed to the background writer."""
        for job in list(_PENDING):
            job.result()


_PENDING: set[Any] = set()  # the background writes not finished yet


@functools.cache
def _writer() -> Any:
    from concurrent.futures import ThreadPoolExecutor

    return ThreadPoolExecutor(max_workers=1, thread_name_prefix="salience-cache-writer")


def _save_reporting(result: SalienceResult, path: Path) -> None:
    try:
        result.save(path)
    except (OSError, SalienceError, ValueError) as exc:
        print(f"salience cache: could not write {path} ({exc}); the result is not cached",
              file=sys.stderr)  # fmt: skip


def salience_of(
    model: torch.nn.Module,
    info: _CheckpointInfo,
    recording: Recording,
    request: SalienceRequest | None = None,
    *,
    epoch: str | None = None,
    start: int | None = None,
    stop: int | None = None,
    groups: np.ndarray | Sequence[Any] | None = None,
    device: str = "cpu",
    provenance: Mapping[str, Any] | None = None,
    **options: Any,
) -> SalienceResult:
    """Salience of a trained ``model`` (with its checkpoint ``info``) on ``recording``, with the
    per-neuron confidence; no checkpoint folder, no cache (see :func:`salience_from_checkpoint`).

    Parameters
    ----------
    model, info : torch.nn.Module, CheckpointInfo
        The decoder and its checkpoint description.
    recording : Recording
        The recording (frames are read lazily when it is not loaded).
    request : SalienceRequest, optional
        What to compute; or give its fields as keyword ``options`` (``method="ig"``, ``steps=8``).
    epoch, start, stop : optional
        The frames: an epoch (``"left"``, ``"left#2"``), a split part (``"test"``) or a range.
    groups, device, provenance
        As for :func:`compute_salience`.

    Returns
    -------
    SalienceResult
        With ``confidence`` (top-k stability over block-bootstrap resamples of the frames).
    """
    req = request or SalienceRequest(**options)
    split = info.split_for(recording.n_frames)
    a, b, label = resolve_range(recording, epoch=epoch, start=start, stop=stop, split=split)
    rest = [ep for ep in recording.epochs if ep.name == "rest"]
    rest_frames = (
        np.concatenate([np.arange(ep.start, ep.stop) for ep in rest])
        if rest and req.baseline == "rest"
        else None
    )
    activity = recording.activity if recording.is_loaded else _LazyFrames(recording)
    provenance = {
        **(provenance or {}),
        "recording": str(recording.path or f"<memory:{recording.fish_id}>"),
        "fish_id": recording.fish_id,
        "range_label": label,
        "epoch": epoch,
        "backbone": info.describe(),
        "mode": str(info.mode),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "captum": _captum_version(),
        "torch": torch.__version__,
    }
    result = compute_salience(
        model, activity, req, decoder=DecoderIO.of(info, recording.n_frames), start=a, stop=b,
        rest_frames=rest_frames, groups=groups, device=device, provenance=provenance,
        neuron_ids=recording.neuron_ids,
    )  # fmt: skip
    k = default_top_k(result.n_neurons)
    result.confidence = result.stability(k)
    result.params |= {"confidence": f"top-{k} in 200 block-bootstrap resamples of the frames"}
    return result


def salience_from_checkpoint(
    checkpoint: str | os.PathLike,
    recording: Recording,
    request: SalienceRequest | None = None,
    *,
    epoch: str | None = None,
    start: int | None = None,
    stop: int | None = None,
    groups: np.ndarray | Sequence[Any] | None = None,
    group_label: str | None = None,
    device: str = "cpu",
    cache: SalienceCache | None | bool = True,
    loaded: tuple[torch.nn.Module, _CheckpointInfo] | None = None,
    **options: Any,
) -> SalienceResult:
    """Load a checkpoint (or use ``loaded=(model, info)``), attribute, and cache the result.

    Parameters
    ----------
    checkpoint : path
        The checkpoint folder (its files are part of the cache key).
    recording : Recording
        The recording.
    request : SalienceRequest, optional
        What to compute; or give its fields as keyword ``options``.
    epoch, start, stop, groups, device
        As for :func:`salience_of` (``device="auto"``: cuda, mps or cpu).
    group_label : str, optional
        Names the grouping used for ablation (e.g. ``"atlas regions"``) in the key.
    cache : SalienceCache or bool
        ``True``: :func:`default_cache_dir`; ``False``/``None``: no caching. The key covers the
        checkpoint files, the recording, the frame range and :meth:`SalienceRequest.identity`.
    loaded : (model, info), optional
        The checkpoint, already loaded.

    Returns
    -------
    SalienceResult
        Computed, or read from the cache (``from_cache``).
    """
    req = request or SalienceRequest(**options)
    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        raise CheckpointError(
            f"checkpoint folder {checkpoint} does not exist; train one with "
            "`python -m decoding train ... --out DIR` or use assets/demo_checkpoint"
        )
    from decoding.device import pick_device

    device = str(pick_device(str(device)))  # "auto" -> cuda / mps / cpu; unknown names refused
    if loaded is None:
        from decoding.checkpoint import load_checkpoint

        loaded = load_checkpoint(checkpoint, recording=recording, device=device)
    model, info = loaded
    if int(info.n_neurons) != recording.n_neurons:
        raise CheckpointError(
            f"checkpoint {checkpoint} was trained on {info.n_neurons} neurons but the recording "
            f"{recording.fish_id!r} has {recording.n_neurons}; use the recording it was trained on"
        )
    a, b, _ = resolve_range(
        recording, epoch=epoch, start=start, stop=stop, split=info.split_for(recording.n_frames)
    )
    key = _cache_key(checkpoint, recording, a, b, req, groups, group_label)
    store = SalienceCache() if cache is True else (cache or None)
    hit = store.get(key) if store is not None else None
    if hit is not None:
        return hit
    result = salience_of(
        model, info, recording, req, epoch=epoch, start=start, stop=stop, groups=groups,
        device=device, provenance={"checkpoint": str(checkpoint.resolve()), "cache_key": key},
    )  # fmt: skip
    if store is not None:
        store.put(key, result)
    return result


def _cache_key(
    checkpoint: Path, recording: Recording, a: int, b: int, req: SalienceRequest,
    groups: np.ndarray | Sequence[Any] | None, group_label: str | None,
) -> str:  # fmt: skip
    """The cache key: checkpoint files, recording, frame range and the request's identity."""
    return cache_key(
        {
            "engine": ENGINE_VERSION,
            "checkpoint": fingerprint_checkpoint(checkpoint),
            "recording": fingerprint_recording(recording, a, b),
            "range": [a, b],
            **req.identity(),
            **_groups_identity(req.method, groups, group_label),
        }
    )


def _groups_identity(
    method: str, groups: np.ndarray | Sequence[Any] | None, label: str | None
) -> dict[str, str | None]:
    """The ablation grouping's part of a cache key (its label and a hash of the labels)."""
    if method != "ablation" or groups is None:
        return {"groups": None, "groups_hash": None}
    digest = hashlib.sha1(np.asarray(groups).astype(str).tobytes()).hexdigest()
    return {"groups": label or "custom", "groups_hash": digest}


class _LazyFrames:
    """``recording.activity`` for ``compute_salience`` without loading all frames: row slices and
    row index arrays are read from the file with ``read_activity``."""

    def __init__(self, recording: Recording):
        self.recording = recording
        self.shape = (int(recording.n_frames), int(recording.n_neurons))
        self.ndim = 2

    def __getitem__(self, rows: slice | np.ndarray) -> np.ndarray:
        if isinstance(rows, slice):
            a, b, step = rows.indices(self.shape[0])
            return self.recording.read_activity(a, b)[::step]
        idx = np.asarray(rows, dtype=np.int64).reshape(-1)
        if idx.size == 0:
            return np.zeros((0, self.shape[1]), dtype=np.float32)
        # read each run of consecutive frames once (e.g. the rest epochs for the rest baseline)
        breaks = np.flatnonzero(np.diff(idx) != 1) + 1
        runs = np.split(idx, breaks)
        return np.concatenate(
            [self.recording.read_activity(int(r[0]), int(r[-1]) + 1) for r in runs]
        )


def _captum_version() -> str:
    try:
        import captum

        return str(captum.__version__)
    except Exception:  # pragma: no cover - captum is a hard dependency
        return "unknown"
