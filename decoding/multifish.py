"""Many fish, one model: per-fish input projections, a shared backbone and head.

Each fish ``f`` has its own neurons (``N_f`` of them, in its own order), so each gets its own input
projection ``N_f -> hidden`` (the same module a single-fish :class:`~decoding.models.Decoder`
uses: factorised, zero-initialised, embedding-scaled); the backbone (with its temporal stem) and
the ``hidden -> K`` head are shared. A fish's *view* (:meth:`MultiFishDecoder.view`) is a plain
:class:`~decoding.models.Decoder` sharing those modules, so :func:`decoding.train.predict`,
:func:`decoding.train.evaluate` and :func:`decoding.salience.salience_of` work on it unchanged.

Training (:func:`fit_multifish`) follows :func:`decoding.train.fit` fish by fish: each fish's own
chronological split, per-neuron and behaviour z-scores fitted on its training frames only, its
training windows on a grid of :func:`~decoding.train.auto_train_stride` frames with a random
offset per epoch. Every step mixes windows of all fish (``batch_size`` per fish on average, drawn
from one shuffled pool); each fish's windows go through its projection, and the projected windows
of all fish pass the shared backbone together. The loss is the MSE over every window of the step
plus, for each fish, the input L2 penalty times that fish's share of the step's windows (the same
balance of data and penalty as a single-fish run). Validation runs on every fish's own validation
split; the epoch with the lowest geometric mean of the fish's validation losses (normalised
units: each fish's relative improvement counts the same) is kept, and training stops after
``patience`` epochs without improvement; the joint phase's learning rate is ``lr x sqrt(n_fish)``
(:func:`joint_lr`: its steps average ``n_fish`` times more windows). Then each fish's projection
alone is refined with the
backbone frozen, keeping its own best validation epoch (the joint state included): per-fish early
stopping (:func:`_refine`).

Transfer (:func:`transfer_fish`): a new fish gets a new projection trained on a fraction of its
training frames while the backbone and head stay frozen (or get LoRA adapters); its behaviour
normaliser is the model's fish's, pooled (the head is shared). The projection's second factor
starts at a model fish's, and of several restarts (each from another fish's) the one with the
lowest loss on the new fish's validation part is kept. The anatomical prior of
:mod:`decoding.region_prior` reads the new fish's neurons in the regions the model's fish rely on
more strongly while it trains (each fish's input energy per region is stored with the model).

Checkpoints are folders: ``config.json`` (format ``nlp4neuro-multifish``: every fish's
:class:`~decoding.checkpoint.CheckpointInfo` with its normaliser and recording fingerprint) and
``model.safetensors`` (shared tensors once, each fish's projection under ``fish{i}.``). No pickle.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import math
import os
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy import stats
from torch import nn

from decoding.checkpoint import CheckpointInfo, library_versions, read_config, saved_state
from decoding.device import autocast_dtype, pick_device
from decoding.errors import CheckpointError, DecodingError, ModelError, RecordingError
from decoding.io_utils import atomic_write_dir
from decoding.models import Decoder, apply_mode, build_decoder
from decoding.provenance import recording_fingerprint, short_id
from decoding.region_prior import (
    PRIOR_STRENGTH,
    check_strength,
    fold_input_scale,
    region_energy,
)
from decoding.train import (
    Distributed,
    FitResult,
    Progress,
    TrainConfig,
    auto_train_stride,
    autocast,
    is_cancelled,
    lr_factor,
    predict,
    store_metrics,
)
from decoding.windows import (
    Normalizer,
    Split,
    batch_frames,
    chronological_split,
    iter_train_batches,
    window_index,
)

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "MultiFishDecoder",
    "MultiFitResult",
    "check_compatible",
    "fit_multifish",
    "transfer_fish",
    "joint_lr",
    "TRANSFER_INITS",
    "TRANSFER_PRIORS",
    "TRANSFER_UPS",
    "pooled_normalizer",
    "ridge_init",
    "save_multifish",
    "load_multifish",
    "is_multifish_checkpoint",
]

FORMAT_NAME = "nlp4neuro-multifish"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


# ---------------------------------------------------------------------------------- the model
class MultiFishDecoder(nn.Module):
    """Per-fish input projections, one shared backbone and head.

    Parameters
    ----------
    views
        One :class:`~decoding.models.Decoder` per fish, all sharing the same ``backbone`` and
        ``head`` modules (build them with :meth:`build`); fish ``i`` reads ``(B, S, N_i)``.
    fish_ids
        One name per fish (unique).
    """

    def __init__(self, *, views: Sequence[Decoder], fish_ids: Sequence[str]) -> None:
        super().__init__()
        if len(views) != len(fish_ids) or not views:
            raise ModelError(f"MultiFishDecoder: {len(views)} views for {len(fish_ids)} fish")
        if len(set(fish_ids)) != len(fish_ids):
            raise ModelError(f"MultiFishDecoder: fish ids must be unique, got {list(fish_ids)}")
        self.views = nn.ModuleList(views)
        self.backbone = views[0].backbone
        self.head = views[0].head
        self.fish_ids = [str(f) for f in fish_ids]

    @classmethod
    def build(
        cls,
        spec: Any,
        *,
        fish: Sequence[tuple[str, int]],
        n_outputs: int,
        config: TrainConfig,
    ) -> MultiFishDecoder:
        """A new model for several fish with ``config``'s recipe.

        Parameters
        ----------
        spec
            The resolved backbone (:func:`decoding.backbones.resolve`).
        fish
            ``[(fish_id, n_neurons), ...]``, one entry per fish.
        n_outputs
            Behaviour channels (shared by every fish).
        config
            The recipe (mode, projection rank and init, temporal kernel, LoRA options).

        Returns
        -------
        MultiFishDecoder
            Fresh projections, one backbone and head.
        """
        first = build_decoder(
            config.decoder_spec(spec), n_neurons=fish[0][1], n_outputs=n_outputs
        )
        if not isinstance(first, Decoder):
            raise ModelError(
                f"--backbone {spec.name}: multi-fish training needs a projection + backbone "
                "decoder (not ridge)"
            )
        model = cls(views=[first], fish_ids=[fish[0][0]])
        for fish_id, n in fish[1:]:
            model.add_fish(fish_id, n, proj_init=config.proj_init)
        return model

    def add_fish(self, fish_id: str, n_neurons: int, *, proj_init: str = "zeros") -> Decoder:
        """Add a fish with a new projection (``n_neurons -> hidden``) sharing backbone and head.

        Parameters
        ----------
        fish_id
            The new fish's name (not yet in the model).
        n_neurons
            Its neuron count.
        proj_init
            ``"zeros"`` or ``"default"`` for its input weights.

        Returns
        -------
        Decoder
            The new fish's view (last in :attr:`views`).
        """
        if fish_id in self.fish_ids:
            raise ModelError(f"fish {fish_id!r} is already in this model")
        first = self.views[0]
        view = Decoder(
            n_neurons=int(n_neurons),
            n_outputs=first.n_outputs,
            backbone=self.backbone,
            input_dropout=float(getattr(first.input_dropout, "p", 0.0)),
            temporal_kernel=0,  # the stem lives in the shared backbone already
            proj_rank=first.proj_rank,
            proj_init=proj_init,
        )
        view.head = self.head
        view.temporal_kernel = first.temporal_kernel
        # The same backbone, so the same input scale. Not recomputed: after a load, a randomly
        # initialised backbone's token table (unused, not saved) is a fresh draw, and a scale
        # read from it made a transfer differ from process to process.
        view.embed_scale.copy_(first.embed_scale)
        view.to(next(self.head.parameters()).device)
        self.views.append(view)
        self.fish_ids.append(str(fish_id))
        return view

    def index(self, fish: str | int) -> int:
        """Position of ``fish`` in the model; one clear error lists the model's fish.

        Parameters
        ----------
        fish
            A fish id or an index (``int`` or a string of digits).

        Returns
        -------
        int
            The index into :attr:`views` and :attr:`fish_ids`.
        """
        if isinstance(fish, int) or (isinstance(fish, str) and fish.isdigit()):
            i = int(fish)
            if 0 <= i < len(self.fish_ids):
                return i
        elif fish in self.fish_ids:
            return self.fish_ids.index(fish)
        raise DecodingError(
            f"--fish {fish}: this model has fish {', '.join(self.fish_ids)} "
            f"(or an index 0..{len(self.fish_ids) - 1})"
        )

    def view(self, fish: str | int) -> Decoder:
        """The single-fish decoder of ``fish`` (shares the backbone and head).

        Parameters
        ----------
        fish
            A fish id or index (:meth:`index`).

        Returns
        -------
        Decoder
            A plain decoder: ``train.predict``, ``train.evaluate`` and salience work on it.
        """
        return self.views[self.index(fish)]

    def forward_mixed(self, parts: Sequence[tuple[int, torch.Tensor, torch.Tensor]]) -> list:
        """Decode windows of several fish in one backbone pass.

        Parameters
        ----------
        parts
            ``(fish index, frames (F_i, N_i), index (B_i, S))``: normalised frames of a fish and
            the windows into them (all windows of one call have the same length ``S``).

        Returns
        -------
        list of torch.Tensor
            ``(B_i, S, K)`` predictions per part, in the given order.
        """
        emb = [self.views[i].project(x)[idx] for i, x, idx in parts]
        out = self.head(self.backbone(torch.cat(emb)))
        return list(torch.split(out, [e.shape[0] for e in emb]))


# ---------------------------------------------------------------------------------- checks
def check_compatible(recordings: Sequence[Any]) -> None:
    """Refuse recordings that cannot share one model, naming the files and the mismatch.

    They must agree on the atlas (same space for positions and regions), the behaviour channels
    (names, in order) and the frame rate (within 0.1 %); fish ids must be unique.

    Parameters
    ----------
    recordings
        The fish (recordings, or stored fish's infos as :class:`_InfoRecording`).

    Raises
    ------
    RecordingError
        One line naming the two files and what differs.
    """
    if not recordings:
        raise RecordingError("multi-fish training needs at least one recording")
    ref = recordings[0]
    seen: dict[str, str] = {}
    for rec in recordings:
        where = f"{_name(ref)} and {_name(rec)}"
        if rec.atlas != ref.atlas:
            raise RecordingError(
                f"recordings {where} are registered to different atlases ({ref.atlas!r} vs "
                f"{rec.atlas!r}); register every fish to the same atlas first"
            )
        if list(rec.behavior_names) != list(ref.behavior_names):
            raise RecordingError(
                f"recordings {where} have different behaviour channels ({_short(ref)} vs "
                f"{_short(rec)}); one model needs the same channels in the same order"
            )
        if not math.isclose(rec.frame_rate_hz, ref.frame_rate_hz, rel_tol=1e-3):
            raise RecordingError(
                f"recordings {where} have different frame rates ({ref.frame_rate_hz:g} Hz vs "
                f"{rec.frame_rate_hz:g} Hz); train fish imaged at one rate together"
            )
        if rec.fish_id in seen:
            raise RecordingError(
                f"recordings {seen[rec.fish_id]} and {_name(rec)} have the same fish id "
                f"{rec.fish_id!r}; give each fish its own id"
            )
        seen[rec.fish_id] = _name(rec)


def _name(rec: Any) -> str:
    return str(rec.path) if getattr(rec, "path", None) else f"<{rec.fish_id}>"


def _short(rec: Any) -> str:
    names = list(rec.behavior_names)
    return ",".join(names[:4]) + (",..." if len(names) > 4 else "") + f" ({len(names)})"


# ---------------------------------------------------------------------------------- one fish
@dataclass
class _Fish:
    """One fish prepared for training: its split, normalised tensors and checkpoint info."""

    recording: Any
    info: CheckpointInfo
    split: Split
    train: range  # the training frames used (a prefix of split.train for transfer)
    x: torch.Tensor  # (T, N) normalised activity on the device
    y: torch.Tensor  # (T, K) normalised behaviour on the device
    stride: int = 1  # training-window grid


def _prepare(
    recording: Any,
    config: TrainConfig,
    spec: Any,
    device: torch.device,
    train_fraction: float,
    target_normalizer: Normalizer | None = None,
) -> _Fish:
    """Split, fit the normalisers on the (first ``train_fraction`` of the) training frames; the
    behaviour's is ``target_normalizer`` when given."""
    split = chronological_split(recording.n_frames, config.split)
    n_train = max(2, int(round(len(split.train) * train_fraction)))
    train = range(split.train.start, split.train.start + min(n_train, len(split.train)))
    if len(train) < 2 or len(train) < min(config.window, 2):
        raise RecordingError(
            f"recording {_name(recording)}: {len(train)} training frames; need at least 2"
        )
    activity = np.asarray(recording.activity, dtype=np.float32)
    behavior = np.asarray(recording.behavior, dtype=np.float32)
    norm = Normalizer.fit(activity[train.start : train.stop])
    tnorm = target_normalizer or Normalizer.fit(behavior[train.start : train.stop])
    info = CheckpointInfo.new(
        recording, config, config.decoder_spec(spec), normalizer=norm, target_normalizer=tnorm
    )
    info.train_config |= {
        "train_fraction": train_fraction,
        "frame_rate_hz": float(recording.frame_rate_hz),
        "atlas": str(recording.atlas),
    }
    s = min(config.window, len(train))
    return _Fish(
        recording=recording,
        info=info,
        split=split,
        train=train,
        x=torch.from_numpy(norm.transform(activity)).to(device),
        y=torch.from_numpy(tnorm.transform(behavior)).to(device),
        stride=config.train_stride or auto_train_stride(len(train), s, config.batch_size),
    )


# ---------------------------------------------------------------------------------- training
@dataclass
class MultiFitResult:
    """What :func:`fit_multifish` returns: the model, every fish's info, the shared history."""

    model: MultiFishDecoder
    infos: list[CheckpointInfo]
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    cancelled: bool = False
    stopped_early: bool = False
    #: fish id -> atlas region -> input energy (:func:`decoding.region_prior.region_energy`): the
    #: anatomical prior a transfer reads; empty for checkpoints saved without it.
    input_regions: dict[str, dict[str, float]] = field(default_factory=dict)

    def fish(self, fish: str | int) -> FitResult:
        """A single-fish :class:`~decoding.train.FitResult` view of one fish.

        Parameters
        ----------
        fish
            A fish id or index.

        Returns
        -------
        FitResult
            That fish's view and info (with the run's cancelled / stopped flags).
        """
        i = self.model.index(fish)
        return FitResult(self.model.views[i], self.infos[i], self.cancelled, self.stopped_early)


class _MixedStep(nn.Module):
    """The multi-fish training forward as one ``forward`` (DDP synchronises through it)."""

    def __init__(self, model: MultiFishDecoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, parts: list) -> list:
        return self.model.forward_mixed(parts)


class _Loop:
    """The multi-fish training loop in parts: setup, one epoch, validation, keep the best."""

    def __init__(
        self,
        model: MultiFishDecoder,
        fish: dict[int, _Fish],
        config: TrainConfig,
        device: torch.device,
        dist: Distributed | None = None,
    ) -> None:
        self.model, self.fish, self.config, self.device = model, fish, config, device
        self.dist = dist
        self.trainable = list(fish)  # the model's fish (view indices) that train
        self.amp = autocast_dtype(device, config.precision)
        self.rng = np.random.default_rng(config.seed)
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ModelError("multi-fish training: nothing to train")
        self.opt = _optimizer(model, self.params, self.trainable, config)
        self.forward: Callable[[list], list] = model.forward_mixed
        if dist is not None:  # DDP: each process its share of every step's windows
            self.forward, self.opt = dist.prepare(_MixedStep(model), self.opt)
        pooled = config.joint_windows == "pooled" and len(fish) > 1
        self.stride = _pooled_stride(fish.values(), config) if pooled else None
        per_epoch = sum(len(self._starts(f, rng=None)) for f in fish.values())
        self.batch = config.batch_size * (1 if pooled else len(fish))
        self.steps_per_epoch = max(1, math.ceil(per_epoch / self.batch))
        self.total = self.steps_per_epoch * config.epochs
        self.warmup = int(round(config.warmup_frac * self.total))
        self.step_no = 0
        self.best: tuple[float, int, dict[str, torch.Tensor]] | None = None

    def _starts(self, f: _Fish, rng: np.random.Generator | None) -> np.ndarray:
        s = min(self.config.window, len(f.train))
        gen = rng if rng is not None else np.random.default_rng(0)
        batches = iter_train_batches(
            f.train, s, self.stride or f.stride, 1 << 30, gen, random_offset=rng is not None
        )
        return np.concatenate(list(batches))

    def epoch(self, stop: Callable[[], bool]) -> tuple[float, int, bool]:
        """One pass over every trainable fish's windows; returns (mean loss, steps, interrupted)."""
        self.model.train()
        pool = np.concatenate(
            [
                np.stack([np.full(len(st), i), st], axis=1)
                for i in self.trainable
                for st in [self._starts(self.fish[i], self.rng)]
            ]
        )
        self.rng.shuffle(pool)
        total, count = 0.0, 0
        for lo in range(0, len(pool), self.batch):
            if stop():
                return (total / max(count, 1), count, True)
            batch = pool[lo : lo + self.batch]
            total += self._step(batch if self.dist is None else self.dist.shard(batch))
            count += 1
        return total / max(count, 1), count, False

    def _step(self, batch: np.ndarray) -> float:
        cfg = self.config
        for g in self.opt.param_groups:
            g["lr"] = cfg.lr * lr_factor(self.step_no, self.total, self.warmup, cfg.schedule)
        parts, targets, shares = [], [], {}
        for i in np.unique(batch[:, 0]):
            f = self.fish[int(i)]
            starts = batch[batch[:, 0] == i, 1]
            s = min(cfg.window, len(f.train))
            frames, local = batch_frames(starts, s)
            xb = f.x.index_select(0, torch.from_numpy(frames).to(self.device))
            parts.append((int(i), xb, torch.from_numpy(local).to(self.device)))
            targets.append(f.y[torch.from_numpy(window_index(starts, s)).to(self.device)])
            shares[int(i)] = len(starts) / len(batch)
        with autocast(self.device, self.amp):
            preds = self.forward(parts)
        sq = sum(((p.float() - t) ** 2).sum() for p, t in zip(preds, targets, strict=True))
        loss = sq / sum(t.numel() for t in targets)
        for i, share in shares.items():
            w = self.model.views[i].input_weight
            if cfg.input_l2 > 0 and w is not None and w.requires_grad:
                loss = loss + cfg.input_l2 * share * w.square().sum()
        self.opt.zero_grad(set_to_none=True)
        if self.dist is None:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        else:
            self.dist.accelerator.backward(loss)
            self.dist.accelerator.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        self.step_no += 1
        return float(loss.detach())

    def validate(self) -> list[tuple[float, float]]:
        """Per trainable fish: (val loss in normalised units, val RMSE in the recording's units)."""
        out = []
        stride = self.config.eval_stride or max(1, self.config.window // 4)
        for i in self.trainable:
            f, view = self.fish[i], self.model.views[i]
            val = f.split.val
            if not len(val):
                out.append((math.nan, math.nan))
                continue
            pred = predict(view, f.info, f.recording, val.start, val.stop, stride=stride)
            truth = np.asarray(f.recording.behavior[val.start : val.stop], np.float32)
            tn = f.info.target_normalizer
            loss = float(((tn.transform(pred) - tn.transform(truth)) ** 2).mean())
            out.append((loss, float(np.sqrt(((pred - truth) ** 2).mean()))))
        if self.dist is not None and out:  # every process validates; the mean keeps them agreed
            flat = self.dist.mean(*(v for pair in out for v in pair))
            out = list(zip(flat[0::2], flat[1::2], strict=True))
        return out

    def consider(self, loss: float, epoch: int) -> bool:
        """Keep the parameters of the best epoch so far (``loss`` NaN: no validation, keep last)."""
        key = loss if math.isfinite(loss) else -float(epoch)
        if self.best is None or key < self.best[0]:
            state = {n: p.detach().clone() for n, p in self.model.named_parameters()}
            self.best = (key, epoch, state)
            return True
        return False

    def restore(self) -> int:
        """Load the best epoch's parameters; returns that epoch (0 if none was kept)."""
        if self.best is None:
            return 0
        with torch.no_grad():
            named = dict(self.model.named_parameters())
            for n, v in self.best[2].items():
                named[n].copy_(v)
        return self.best[1]


def _pooled_stride(fish: Iterable[_Fish], config: TrainConfig) -> int:
    """``joint_windows="pooled"``: the single-fish stride rule applied to all fish's training
    frames together (each frame once per epoch unless that leaves too few steps)."""
    fish = list(fish)
    s = min(config.window, *(len(f.train) for f in fish))
    total = sum(len(f.train) for f in fish)
    return config.train_stride or auto_train_stride(total, s, config.batch_size)


def _optimizer(
    model: MultiFishDecoder, params: list[nn.Parameter], trainable: list[int], config: TrainConfig
):
    """AdamW groups as :func:`decoding.train.fit` makes them, with every trainable fish's input
    weights in the tensor-wise second-moment group (one moment per fish's tensor)."""
    from decoding.optim import MixedAdamW

    special = []
    if config.input_moment == "tensor":
        special = [
            w
            for i in trainable
            if (w := model.views[i].input_weight) is not None and w.requires_grad
        ]
    decay = [p for p in params if p.ndim >= 2 and all(p is not q for q in special)]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": [p for p in params if p.ndim < 2], "weight_decay": 0.0},
    ]
    if special:
        groups.append(
            {"params": special, "weight_decay": config.weight_decay, "scalar_moment": True}
        )
    return MixedAdamW([g for g in groups if g["params"]], lr=config.lr)


def _run(
    loop: _Loop,
    callback: Callable[[Progress], None] | None,
    cancel: Any,
) -> tuple[list[dict[str, Any]], bool, bool]:
    """Epochs until the budget, early stopping, cancellation or ``max_time_s``."""
    cfg, t0 = loop.config, time.perf_counter()
    history: list[dict[str, Any]] = []
    bad = 0
    cancelled = stopped = False

    def stop_now() -> bool:
        nonlocal cancelled, stopped
        late = cfg.max_time_s is not None and time.perf_counter() - t0 > cfg.max_time_s
        want = (is_cancelled(cancel), late)
        if loop.dist is not None:  # every process stops at the same step
            want = tuple(loop.dist.any(*want))
        cancelled, stopped = cancelled or want[0], stopped or want[1]
        return cancelled or stopped

    for epoch in range(1, cfg.epochs + 1):
        train_loss, steps, interrupted = loop.epoch(stop_now)
        if steps == 0:
            break
        per_fish = loop.validate()
        losses = [v[0] for v in per_fish]
        val_loss = _pooled_val_loss(losses)
        improved = loop.consider(val_loss, epoch)
        bad = 0 if improved else bad + 1
        rec = {
            "epoch": epoch,
            "step": loop.step_no,
            "elapsed_s": time.perf_counter() - t0,
            "train_loss": train_loss,
            "val_loss": val_loss,
            "val_rmse": float(np.mean([v[1] for v in per_fish])),
            "val_loss_per_fish": losses,
            "val_rmse_per_fish": [v[1] for v in per_fish],
        }
        history.append(rec)
        if callback is not None:
            callback(_progress("epoch", loop, epoch, rec, t0))
        if interrupted:
            break
        if cfg.patience and bad >= cfg.patience and math.isfinite(val_loss):
            stopped = True
            break
    return history, cancelled, stopped


def _pooled_val_loss(losses: Sequence[float]) -> float:
    """The loss that picks the best epoch: the geometric mean of the fish's validation losses
    (each fish's relative improvement counts the same, whatever its scale); NaN if any is
    missing or not positive."""
    x = np.asarray(losses, dtype=np.float64)
    if x.size == 0 or not np.all(np.isfinite(x)) or np.any(x <= 0):
        return math.nan
    return float(stats.gmean(x))


def _progress(kind: str, loop: _Loop, epoch: int, rec: dict[str, Any], t0: float) -> Progress:
    elapsed = time.perf_counter() - t0
    best = loop.best
    return Progress(
        kind,
        epoch,
        loop.config.epochs,
        loop.step_no,
        loop.total,
        train_loss=rec.get("train_loss"),
        val_loss=rec.get("val_loss"),
        val_rmse=rec.get("val_rmse"),
        best_val_loss=best[0] if best else None,
        best_epoch=best[1] if best else None,
        lr=loop.opt.param_groups[0]["lr"],
        elapsed_s=elapsed,
        eta_s=elapsed / max(loop.step_no, 1) * (loop.total - loop.step_no),
    )


def fit_multifish(
    recordings: Sequence[Any],
    config: TrainConfig | None = None,
    *,
    callback: Callable[[Progress], None] | None = None,
    cancel: Any = None,
) -> MultiFitResult:
    """Train one decoder on several fish (per-fish projections, shared backbone and head).

    Parameters
    ----------
    recordings
        The fish (:class:`~decoding.recording.Recording`), all on the same atlas, behaviour
        channels and frame rate (:func:`check_compatible`); neuron counts may differ.
    config
        The single-fish :class:`~decoding.train.TrainConfig` (defaults = the measured recipe);
        ``batch_size`` is windows per fish and step (a step mixes ``batch_size x n_fish``);
        with ``joint_windows="pooled"`` it is windows per step in all, each frame of every fish
        once per epoch (the stride rule on all fish's frames) and the learning rate unscaled.
    callback, cancel
        As :func:`decoding.train.fit` (``callback`` gets an ``epoch`` :class:`Progress` per epoch
        and a final ``done``; ``cancel`` stops at the next step, keeping the best epoch).

    Returns
    -------
    MultiFitResult
        The best model (by the geometric mean of the fish's validation losses, then each fish's
        projection refined), each fish's
        :class:`~decoding.checkpoint.CheckpointInfo` (normalisers, fingerprint, val/test
        metrics), the history.
    """
    config = config or TrainConfig()
    check_compatible(recordings)
    dist = Distributed(config, static_graph=False) if Distributed.wanted() else None
    device = dist.device if dist is not None else pick_device(config.device)
    torch.manual_seed(config.seed)
    spec = config.backbone_spec()
    fish = [_prepare(r, config, spec, device, 1.0) for r in recordings]
    model = MultiFishDecoder.build(
        spec,
        fish=[(r.fish_id, r.n_neurons) for r in recordings],
        n_outputs=recordings[0].n_behavior,
        config=config,
    ).to(device)
    infos = [f.info for f in fish]
    n_joint = 1 if config.joint_windows == "pooled" else len(fish)  # fish per step's batch
    joint = dataclasses.replace(config, lr=joint_lr(config.lr, n_joint))
    result = _train(model, dict(enumerate(fish)), infos, joint, device, callback, cancel, dist)
    result.metrics["joint_lr"] = joint.lr
    if not result.cancelled and config.epochs >= REFINE_EVERY:
        t0 = time.perf_counter()
        for i, f in enumerate(fish):
            _refine(model, i, f, config, device)
        result.metrics["refine_time_s"] = time.perf_counter() - t0
    result.input_regions = {
        r.fish_id: _region_energy(model.views[i], r) for i, r in enumerate(recordings)
    }
    return result


def _regions(recording: Any) -> np.ndarray | None:
    """``(N,)`` atlas region of each neuron, or None when they cannot be looked up."""
    from decoding.anatomy import neuron_regions

    try:
        return neuron_regions(recording)
    except DecodingError:  # no positions or regions to look up: no prior from this fish
        return None


def _region_energy(view: Decoder, recording: Any) -> dict[str, float]:
    """The fish's input energy per atlas region (empty when its regions cannot be looked up)."""
    regions = _regions(recording)
    return {} if regions is None else region_energy(view, regions)


def joint_lr(lr: float, n_fish: int) -> float:
    """The joint phase's peak learning rate: ``lr x sqrt(n_fish)``.

    A joint step averages the gradients of ``batch_size x n_fish`` windows, ``n_fish`` times a
    single fish's step, with the same number of steps per epoch; the square-root rule for Adam
    turns the less noisy steps into larger ones (measured on the benchmark: 2x at 5 fish beat
    1x on 4 of 5 fish, see ``docs/multifish.md``). One fish: ``lr`` unchanged.

    Parameters
    ----------
    lr
        The recipe's learning rate (``TrainConfig.lr``; refinement and transfer use it as is).
    n_fish
        Fish trained together.

    Returns
    -------
    float
        The joint phase's learning rate.
    """
    return float(lr) * math.sqrt(max(1, int(n_fish)))


#: Per-fish refinement after the joint phase: at most ``epochs // REFINE_EVERY`` epochs at
#: ``REFINE_LR x lr``, stopping after ``REFINE_PATIENCE`` epochs without improvement.
REFINE_EVERY, REFINE_LR, REFINE_PATIENCE = 4, 0.3, 3


def _refine(
    model: MultiFishDecoder, i: int, f: _Fish, config: TrainConfig, device: torch.device
) -> None:
    """Per-fish early stopping: fish ``i``'s projection alone trains on its own training windows
    (the shared backbone and head frozen), and the epoch with its lowest validation loss is kept,
    the joint model's state included (epoch 0), so a fish keeps the joint weights unless its own
    validation frames say otherwise. Its history gains ``phase: refine`` rows; test metrics are
    stored again."""
    trains = {n: p.requires_grad for n, p in model.named_parameters()}
    model.requires_grad_(False)
    model.views[i].proj.requires_grad_(True)
    cfg = dataclasses.replace(
        config,
        lr=config.lr * REFINE_LR,
        epochs=config.epochs // REFINE_EVERY,
        patience=REFINE_PATIENCE,
    )
    loop = _Loop(model, {i: f}, cfg, device)
    loop.consider(loop.validate()[0][0], 0)
    history, _, _ = _run(loop, None, None)
    best = loop.restore()
    model.eval()
    for n, p in model.named_parameters():
        p.requires_grad_(trains[n])
    f.info.history = f.info.history + [
        {"phase": "refine", "epoch": h["epoch"], "val_loss_fish": h["val_loss"],
         "val_rmse_fish": h["val_rmse"]}
        for h in history
    ]  # fmt: skip
    f.info.metrics["refine_best_epoch"] = best
    store_metrics(FitResult(model.views[i], f.info), f.recording)


def _train(
    model: MultiFishDecoder,
    fish: dict[int, _Fish],
    infos: list[CheckpointInfo],
    config: TrainConfig,
    device: torch.device,
    callback: Callable[[Progress], None] | None,
    cancel: Any,
    dist: Distributed | None = None,
) -> MultiFitResult:
    """Run the loop over ``fish`` (view index -> prepared fish), restore the best epoch, store the
    trained fish's val/test metrics; ``infos`` are every fish's infos in the model's order."""
    t0 = time.perf_counter()
    loop = _Loop(model, fish, config, device, dist)
    trainable = loop.trainable
    if dist is not None and not dist.is_main:
        callback = None  # only the main process reports
    history, cancelled, stopped = _run(loop, callback, cancel)
    if loop.best is None:
        loop.consider(math.nan, 0)
    best_epoch = loop.restore()
    model.eval()
    metrics = {
        "best_epoch": best_epoch,
        "best_val_loss": loop.best[0] if loop.best and loop.best[0] >= 0 else None,
        "train_time_s": time.perf_counter() - t0,
        "steps": loop.step_no,
        "fish": [infos[i].fish_id for i in trainable],
        "processes": dist.world if dist is not None else 1,
    }
    for i in trainable:
        f = fish[i]
        f.info.history = [
            {k: v for k, v in h.items() if not k.endswith("_per_fish")}
            | {
                "val_loss_fish": h["val_loss_per_fish"][trainable.index(i)],
                "val_rmse_fish": h["val_rmse_per_fish"][trainable.index(i)],
            }
            for h in history
        ]
        f.info.metrics = dict(metrics)
        f.info.cancelled = cancelled
        store_metrics(FitResult(model.views[i], f.info), f.recording)
    if callback is not None:
        end = {"val_loss": metrics["best_val_loss"]}
        callback(_progress("done", loop, best_epoch, end, t0))
    return MultiFitResult(model, infos, history, metrics, cancelled, stopped)


# ---------------------------------------------------------------------------------- transfer
TRANSFER_INITS = ("zeros", "ridge")
TRANSFER_UPS = ("fish", "random")
TRANSFER_PRIORS = ("regions", "none")


def _check_transfer_options(
    train_fraction: float, init: str, up: str, restarts: int, prior: str, strength: float
) -> None:
    """Refuse transfer options out of range, with one line naming the option."""
    if not 0 < train_fraction <= 1:
        raise DecodingError(f"--train-fraction must be in (0, 1], got {train_fraction}")
    if init not in TRANSFER_INITS:
        raise DecodingError(f"transfer init {init!r}: expected one of {', '.join(TRANSFER_INITS)}")
    if up not in TRANSFER_UPS:
        raise DecodingError(f"transfer up {up!r}: expected one of {', '.join(TRANSFER_UPS)}")
    if int(restarts) < 1:
        raise DecodingError(f"--restarts must be at least 1, got {restarts}")
    if prior not in TRANSFER_PRIORS:
        raise DecodingError(f"--prior {prior!r}: expected one of {', '.join(TRANSFER_PRIORS)}")
    check_strength(strength)


def transfer_fish(
    model: MultiFishDecoder,
    infos: Sequence[CheckpointInfo],
    recording: Any,
    config: TrainConfig | None = None,
    *,
    train_fraction: float = 0.2,
    lora: bool = False,
    init: str = "zeros",
    up: str = "fish",
    restarts: int = 5,
    prior: str = "regions",
    prior_strength: float = PRIOR_STRENGTH,
    input_regions: Mapping[str, Mapping[str, float]] | None = None,
    callback: Callable[[Progress], None] | None = None,
    cancel: Any = None,
) -> MultiFitResult:
    """Add a new fish to a trained multi-fish model, learning only its input projection.

    Parameters
    ----------
    model, infos
        A trained model and its fish's infos (:func:`load_multifish` or :func:`fit_multifish`).
    recording
        The new fish (same atlas, behaviour channels and frame rate as the model's fish).
    config
        Training options (defaults: the model's first fish's ``train_config``).
    train_fraction
        Share (0, 1] of the new fish's training frames used (the first part; its activity
        normaliser is fitted on them only). Validation and test parts are the full ones. The
        behaviour normaliser is the model's fish's, pooled (:func:`pooled_normalizer`).
    lora
        Also train LoRA adapters on a transformer backbone (the other fish's predictions change).
    init
        The new input weights: ``zeros`` (as every fish starts) or ``ridge`` (:func:`ridge_init`).
    up
        The projection's second factor starts at a model fish's (``fish``; restart ``r``: fish
        ``r``, cycling) or at a random one (``random``).
    restarts
        Trainings with seeds ``seed + r``; the lowest loss on the new fish's validation part wins.
    prior, prior_strength, input_regions
        ``regions``: the anatomical prior of :mod:`decoding.region_prior` from ``input_regions``
        (the model's :attr:`MultiFitResult.input_regions`) with this strength; ``none``, or no
        ``input_regions``: every neuron alike (``metrics["prior"]`` says which was used).
    callback, cancel
        As :func:`fit_multifish`.

    Returns
    -------
    MultiFitResult
        The model with the new fish last, every fish's info and region energies.
    """
    _check_transfer_options(train_fraction, init, up, restarts, prior, prior_strength)
    config = config or TrainConfig.from_dict(infos[0].train_config)
    check_compatible([_InfoRecording(i) for i in infos] + [recording])
    device = next(model.parameters()).device
    torch.manual_seed(config.seed)
    view = _freeze_and_add(model, infos, recording, lora)
    new = _new_fish(recording, infos, config, device, train_fraction, lora)
    zscore = new.info.normalizer
    regions = _regions(recording)
    energies = list((input_regions or {}).values()) if prior == "regions" else []
    scale = _scale_inputs(new, energies, regions, prior_strength)
    if init == "ridge":
        ridge_init(view, new.x, new.y, new.train, new.split.val)
    used = "regions" if scale is not None else "none"
    new.info.train_config["transfer"] |= {"lora": lora, "init": init, "up": up,
                                          "restarts": int(restarts), "prior": used,
                                          "prior_strength": float(prior_strength)}  # fmt: skip
    run = functools.partial(_train, model, {len(infos): new}, [*infos, new.info], device=device,
                            callback=callback, cancel=cancel)  # fmt: skip
    res = _restarts(run, model, new, config, up=up, restarts=int(restarts))
    if scale is not None:  # the saved fish reads z-scored activity: fold the scale in
        fold_input_scale(view, scale)
        new.info.normalizer = zscore
        store_metrics(FitResult(view, new.info), recording)
    res.metrics["prior"] = used
    res.input_regions = dict(input_regions or {})
    res.input_regions[recording.fish_id] = {} if regions is None else region_energy(view, regions)
    return res


def _freeze_and_add(
    model: MultiFishDecoder, infos: Sequence[CheckpointInfo], recording: Any, lora: bool
) -> Decoder:
    """Freeze the model (LoRA adapters added when asked) and add the new fish's trainable
    projection; returns its view."""
    for p in model.parameters():
        p.requires_grad_(False)
    if lora:
        apply_mode(model.views[0], infos[0].spec, "lora", infos[0].lora)
    view = model.add_fish(recording.fish_id, recording.n_neurons, proj_init=infos[0].proj_init)
    view.proj.requires_grad_(True)
    return view


def _new_fish(
    recording: Any,
    infos: Sequence[CheckpointInfo],
    config: TrainConfig,
    device: torch.device,
    train_fraction: float,
    lora: bool,
) -> _Fish:
    """The new fish prepared for a transfer: the pooled behaviour normaliser, the model's
    architecture fields, ``train_config["transfer"]`` started."""
    tnorm = pooled_normalizer([i.target_normalizer for i in infos])
    new = _prepare(recording, config, infos[0].spec, device, train_fraction, tnorm)
    new.info.temporal_kernel = infos[0].temporal_kernel
    new.info.proj_rank = infos[0].proj_rank
    new.info.mode = "lora" if lora else "transfer"
    new.info.train_config["transfer"] = {
        "train_fraction": train_fraction, "target_normalizer": "pooled"
    }  # fmt: skip
    return new


def _scale_inputs(
    new: _Fish,
    energies: Sequence[Mapping[str, float]],
    regions: np.ndarray | None,
    strength: float,
) -> np.ndarray | None:
    """Scale the new fish's training activity by the region prior (and its normaliser, so that
    validation reads the same); returns the ``(N,)`` scale, or None without energies or
    regions."""
    from decoding.region_prior import prior_scale

    if not energies or regions is None:
        return None
    scale = prior_scale(energies, regions, strength)
    new.x = new.x * torch.from_numpy(scale).to(new.x.device)
    norm = new.info.normalizer
    new.info.normalizer = Normalizer(norm.mean, (norm.std / scale).astype(np.float32))
    return scale


def _restarts(
    run: Callable[..., MultiFitResult],
    model: MultiFishDecoder,
    new: _Fish,
    config: TrainConfig,
    *,
    up: str,
    restarts: int,
) -> MultiFitResult:
    """Train the new (last) fish's projection ``restarts`` times from the same start, keeping the
    run with the lowest validation loss on the new fish's own validation part.

    Restart ``r`` uses seed ``config.seed + r`` (window order) and, with ``up="fish"``, starts the
    projection's second factor (``rank -> hidden`` and its bias) at model fish ``r``'s (cycling
    through the model's fish): an output map the frozen backbone was trained to read.
    """
    from decoding.models import LowRankLinear

    view = model.views[-1]
    params = {n: p for n, p in model.named_parameters() if p.requires_grad}
    start = {n: p.detach().clone() for n, p in params.items()}
    best: tuple[float, int, MultiFitResult, dict, list, dict] | None = None
    for r in range(restarts):  # >= 1: checked by transfer_fish
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(start[n])
            if up == "fish" and isinstance(view.proj, LowRankLinear):
                donor = model.views[r % (len(model.views) - 1)].proj
                view.proj.up.load_state_dict(donor.up.state_dict())
        res = run(dataclasses.replace(config, seed=config.seed + r))
        loss = res.metrics["best_val_loss"]
        key = loss if loss is not None and math.isfinite(loss) else math.inf
        if best is None or key < best[0]:
            state = {n: p.detach().clone() for n, p in params.items()}
            best = (key, r, res, state, new.info.history, dict(new.info.metrics))
        if res.cancelled:
            break
    assert best is not None
    _, r, res, state, new.info.history, new.info.metrics = best
    with torch.no_grad():
        for n, p in params.items():
            p.copy_(state[n])
    res.metrics |= {"restart": r, "restarts": restarts}
    new.info.metrics |= {"restart": r}
    return res


def pooled_normalizer(norms: Sequence[Normalizer]) -> Normalizer:
    """One normaliser for several fish's channels together, each fish weighted equally.

    Parameters
    ----------
    norms
        The fish's behaviour normalisers (same channels).

    Returns
    -------
    Normalizer
        Mean and std of the mixture of the fish's training frames (equal weights).
    """
    means = np.array([n.mean for n in norms], dtype=np.float64)
    second = np.mean([n.std.astype(np.float64) ** 2 for n in norms], axis=0) + (means**2).mean(0)
    mean = means.mean(axis=0)
    std = np.sqrt(np.maximum(second - mean**2, 1e-12))
    return Normalizer(mean.astype(np.float32), std.astype(np.float32))


def ridge_init(
    view: Decoder, x: torch.Tensor, y: torch.Tensor, train: range, val: range, n_lags: int = 5
) -> None:
    """Start a factorised projection's input weights at ridge readouts of recent behaviour.

    Row ``lag * K + k`` of the first factor reads channel ``k`` of the behaviour ``lag`` frames
    earlier (the calcium of frame ``t`` carries the tail of frames up to ``t``) from the neurons,
    by ridge regression on the training frames with its penalty chosen on the validation frames
    (:meth:`~decoding.models.RidgeDecoder.fit_closed_form`); the rest of the rows stay 0. In place;
    a projection that is not factorised is left as it is.

    Parameters
    ----------
    view
        The new fish's decoder.
    x, y
        ``(T, N)`` normalised activity and ``(T, K)`` normalised behaviour of the whole recording.
    train, val
        The frames to fit on and to choose the penalty on.
    n_lags
        Lags ``0 .. n_lags - 1`` (at most ``rank // K``).
    """
    from decoding.models import LowRankLinear, RidgeDecoder

    if not isinstance(view.proj, LowRankLinear):
        return
    xs, ys = x.detach().cpu().numpy(), y.detach().cpu().numpy()
    K = ys.shape[1]
    lags = max(1, min(n_lags, view.proj.down.weight.shape[0] // K))

    def part(r: range) -> tuple[np.ndarray, np.ndarray]:
        t = np.arange(r.start + lags - 1, r.stop)
        return xs[t], np.concatenate([ys[t - lag] for lag in range(lags)], axis=1)

    xt, yt = part(train)
    xv, yv = part(val) if len(val) >= lags + 1 else (None, None)
    ridge = RidgeDecoder(n_neurons=xs.shape[1], n_outputs=K * lags)
    ridge.fit_closed_form(xt, yt, xv, yv)
    with torch.no_grad():
        w = view.proj.down.weight
        w.zero_()
        w[: K * lags] = ridge.linear.weight.to(w.device, w.dtype)


class _InfoRecording:
    """What :func:`check_compatible` reads, from a stored fish's info (its recording is absent)."""

    def __init__(self, info: CheckpointInfo) -> None:
        self.fish_id = info.fish_id
        self.path = None
        self.behavior_names = info.behavior_names
        self.frame_rate_hz = float(info.train_config.get("frame_rate_hz", 0.0)) or math.nan
        self.atlas = info.train_config.get("atlas", "")


# ---------------------------------------------------------------------------------- save / load
def save_multifish(result: MultiFitResult, folder: str | os.PathLike) -> Path:
    """Write a multi-fish checkpoint folder atomically (``config.json`` + ``model.safetensors``).

    Parameters
    ----------
    result
        The trained model and every fish's info.
    folder
        Where to write (replaced atomically).

    Returns
    -------
    Path
        ``folder``.
    """
    from safetensors.torch import save_file

    folder = Path(folder)
    model = result.model
    tensors: dict[str, torch.Tensor] = {}
    for i, (view, info) in enumerate(zip(model.views, result.infos, strict=True)):
        for k, v in saved_state(view, info).items():
            shared = k.startswith(("backbone.", "head."))
            if shared and i > 0:
                continue
            tensors[k if shared else f"fish{i}.{k}"] = v.detach().to("cpu").contiguous().clone()
    created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    doc = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "created": created,
        "versions": library_versions(),
        "metrics": result.metrics,
        "history": result.history,
        "fish": [info.to_dict() for info in result.infos],
        "input_regions": result.input_regions,
    }
    with atomic_write_dir(folder) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT_NAME})
        text = json.dumps(doc, indent=1, allow_nan=False, default=_json_default)
        (tmp / CONFIG_FILE).write_text(text + "\n", encoding="utf-8")
    return folder


def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, float) and not math.isfinite(o):
        return None
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def is_multifish_checkpoint(folder: str | os.PathLike) -> bool:
    """Whether ``folder`` holds a multi-fish checkpoint (cheap: the head of ``config.json``).

    Parameters
    ----------
    folder
        A checkpoint folder (or anything else).

    Returns
    -------
    bool
        True when ``folder/config.json`` says format ``nlp4neuro-multifish``.
    """
    cfg = Path(folder) / CONFIG_FILE
    if not cfg.is_file():
        return False
    try:
        with open(cfg, encoding="utf-8") as fh:
            head = fh.read(200)
    except OSError:
        return False
    return f'"{FORMAT_NAME}"' in head


def read_multifish_info(folder: str | os.PathLike) -> tuple[dict[str, Any], list[CheckpointInfo]]:
    """``config.json`` of a multi-fish checkpoint and every fish's info (no weights).

    Parameters
    ----------
    folder
        The checkpoint folder.

    Returns
    -------
    tuple
        The parsed ``config.json`` and one :class:`~decoding.checkpoint.CheckpointInfo` per fish;
        :class:`~decoding.errors.CheckpointError` names the file and the problem.
    """
    folder = Path(folder)
    cfg = folder / CONFIG_FILE
    doc = read_config(folder, FORMAT_NAME, FORMAT_VERSION)
    try:
        infos = [CheckpointInfo.from_dict(d, folder) for d in doc["fish"]]
    except (KeyError, TypeError, ValueError, DecodingError) as exc:
        raise CheckpointError(f"checkpoint {cfg}: missing or malformed field ({exc})") from exc
    if not infos:
        raise CheckpointError(f"checkpoint {cfg}: lists no fish")
    return doc, infos


def load_multifish(
    folder: str | os.PathLike, *, device: str | torch.device = "cpu"
) -> MultiFitResult:
    """Rebuild a multi-fish checkpoint with every fish's info.

    Parameters
    ----------
    folder
        The checkpoint folder.
    device
        Where to put the model.

    Returns
    -------
    MultiFitResult
        The model (eval mode), the infos, the shared history and metrics.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    doc, infos = read_multifish_info(folder)
    wfile = Path(folder) / WEIGHTS_FILE
    if not wfile.is_file():
        raise CheckpointError(f"checkpoint {folder}: {WEIGHTS_FILE} is missing")
    try:
        tensors = load_file(str(wfile))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(f"checkpoint {wfile}: cannot read the weights ({exc})") from exc
    first = infos[0]
    config = TrainConfig.from_dict(first.train_config)
    config.mode = "full" if first.mode in ("transfer", "lora") else first.mode
    try:
        model = MultiFishDecoder.build(
            first.spec,
            fish=[(i.fish_id, i.n_neurons) for i in infos],
            n_outputs=first.n_outputs,
            config=config,
        )
    except ModelError as exc:
        raise CheckpointError(f"checkpoint {folder}: cannot rebuild its backbone ({exc})") from exc
    adapted = [i for i in infos if i.mode == "lora"]  # a transfer with --lora added adapters
    if adapted:
        apply_mode(model.views[0], first.spec, "lora", adapted[0].lora)
    _load_tensors(model, infos, tensors, wfile)
    model.to(device).eval()
    return MultiFitResult(
        model,
        infos,
        list(doc.get("history", [])),
        dict(doc.get("metrics", {})),
        input_regions=_input_regions(doc, folder),
    )


def _input_regions(doc: dict[str, Any], folder: str | os.PathLike) -> dict[str, dict[str, float]]:
    """``config.json``'s region energies per fish (absent in older checkpoints: empty)."""
    regions = doc.get("input_regions") or {}
    try:
        return {str(k): {str(r): float(e) for r, e in v.items()} for k, v in regions.items()}
    except (AttributeError, TypeError, ValueError) as exc:
        raise CheckpointError(f"checkpoint {folder}: input_regions is malformed ({exc})") from exc


def _load_tensors(model: MultiFishDecoder, infos, tensors: dict[str, torch.Tensor], wfile) -> None:
    expected: dict[str, torch.Tensor] = {}
    for i, (view, info) in enumerate(zip(model.views, infos, strict=True)):
        for k, v in saved_state(view, info).items():
            shared = k.startswith(("backbone.", "head."))
            if not (shared and i > 0):
                expected[k if shared else f"fish{i}.{k}"] = v
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {wfile}: tensors do not match the model ({len(missing)} missing, e.g. "
            f"{missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]}); the file is "
            "corrupt or from another version"
        )
    with torch.no_grad():
        for k, v in tensors.items():
            if expected[k].shape != v.shape:
                raise CheckpointError(
                    f"checkpoint {wfile}: tensor {k} has shape {tuple(v.shape)}, the model "
                    f"expects {tuple(expected[k].shape)}"
                )
            expected[k].copy_(v)


def fish_for_recording(result: MultiFitResult, recording: Any, fish: str | None = None) -> int:
    """Which of the model's fish ``recording`` is.

    Parameters
    ----------
    result
        A multi-fish model and its infos.
    recording
        The recording to decode.
    fish
        A fish id or index; ``None``: the fish whose stored fingerprint matches, else the one with
        the recording's fish id.

    Returns
    -------
    int
        The fish's index; one clear error when it is none of them or its neuron count differs.
    """
    if fish is not None:
        i = result.model.index(fish)
    else:
        fp = recording_fingerprint(recording)
        hits = [
            k for k, inf in enumerate(result.infos) if inf.recording.get("content") == fp["content"]
        ]
        hits = hits or [k for k, inf in enumerate(result.infos) if inf.fish_id == recording.fish_id]
        if not hits:
            raise DecodingError(
                f"recording {short_id(fp)} is none of this model's fish "
                f"({', '.join(result.model.fish_ids)}); pass --fish, or add it with "
                "`python -m decoding transfer`"
            )
        i = hits[0]
    if result.infos[i].n_neurons != recording.n_neurons:
        raise CheckpointError(
            f"fish {result.model.fish_ids[i]} of this model has {result.infos[i].n_neurons} "
            f"neurons but recording {recording.fish_id} has {recording.n_neurons}; "
            "choose its own --fish"
        )
    return i
