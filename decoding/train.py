"""Training and inference: :class:`TrainConfig`, :func:`fit`, :func:`predict`, :func:`evaluate`.

Training follows the study (windows of ``s`` frames, sequence-to-sequence MSE, AdamW, chronological
70/10/20 split) with what it lacked: per-neuron z-scoring fitted on training frames only (behaviour
z-scored the same way, predictions returned in the recording's units), early stopping and best-model
selection on validation loss, a warm-up + cosine learning-rate schedule and input dropout.

Speed: a training epoch uses windows on a grid of ``train_stride`` frames with a random offset per
epoch (default :func:`auto_train_stride`: the window, i.e. every training frame once per epoch at a
new position in its window, unless that leaves fewer than 16 steps per epoch), and each frame of a
batch passes the ``N -> hidden`` projection once.
Inference
projects every frame once and gathers the overlapping stride-1 windows from the projected frames.

Progress: ``fit(..., callback=f)`` calls ``f(event)`` with a :class:`Progress` after every epoch and
for steps at most every :data:`STEP_REPORT_S` seconds (the first step of each epoch always);
``cancel`` (a ``threading.Event`` or a zero-argument callable) stops training cleanly at the next
step, keeping the best model so far.

Device: the normalised recording is uploaded once; batches are gathered, losses summed and
validation predictions averaged on the device, so a step never waits for it (the host reads the
loss only when it reports progress and once per epoch).

Multi-process: started by ``accelerate launch`` (or ``torchrun``) with more than one process,
:func:`fit` wraps the model in DDP through :class:`accelerate.Accelerator`, gives each process its
share of every batch of training windows (``batch_size`` windows per process and step), averages
the validation loss across processes, and agrees on stopping; only the main process reports
progress (:func:`is_main_process`). A single process runs exactly as without the launcher.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn

from decoding.backbones import HFBackbone
from decoding.checkpoint import CheckpointInfo
from decoding.device import autocast_dtype, pick_device, seed_all
from decoding.errors import DecodingError, ModelError, RecordingError
from decoding.metrics import Metrics, evaluate_arrays
from decoding.models import Decoder, RidgeDecoder, build_decoder
from decoding.protocols import CancelSignal, EventLike, FrameSource, TrainingRecording
from decoding.spec import TrainConfig
from decoding.windows import (
    Normalizer,
    Split,
    batch_frames,
    chronological_split,
    iter_train_batches,
    overlap_average,
    window_index,
    window_starts,
)

__all__ = [
    "TrainConfig",
    "autocast",
    "is_cancelled",
    "lr_factor",
    "Progress",
    "FitResult",
    "fit",
    "predict",
    "evaluate",
    "store_metrics",
    "frame_range",
    "is_main_process",
    "finish_processes",
]


@dataclass
class Progress:
    """One progress report: ``kind`` is ``step``, ``epoch``, ``eval`` or ``done``."""

    kind: str
    epoch: int  # 1-based
    epochs: int
    step: int  # global step, 1-based
    total_steps: int
    train_loss: float | None = None
    val_loss: float | None = None
    val_rmse: float | None = None
    best_val_loss: float | None = None
    best_epoch: int | None = None
    lr: float | None = None
    elapsed_s: float = 0.0
    eta_s: float | None = None
    message: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            k: (None if isinstance(v, float) and not math.isfinite(v) else v)
            for k, v in asdict(self).items()
        }


@dataclass
class FitResult:
    model: Decoder | RidgeDecoder
    info: CheckpointInfo
    cancelled: bool = False
    stopped_early: bool = False
    history: list[dict[str, Any]] = field(default_factory=list)


def is_cancelled(cancel: CancelSignal | None) -> bool:
    """Whether ``cancel`` (a ``threading.Event``, a zero-argument callable or ``None``) is set.

    Parameters
    ----------
    cancel
        The cancellation signal given to :func:`fit`.

    Returns
    -------
    bool
        ``True`` once the run should stop.
    """
    if cancel is None:
        return False
    if isinstance(cancel, EventLike):
        return bool(cancel.is_set())
    return bool(cancel())


#: With ``train_stride=None`` an epoch has at least this many optimiser steps (short recordings get
#: overlapping training windows); chosen on the generator panel, where one window per frame and
#: epoch left the transformer under-trained on 1,000-frame training parts.
MIN_STEPS_PER_EPOCH = 16


def auto_train_stride(n_train_frames: int, window: int, batch_size: int) -> int:
    """Frames between training windows: the window (each frame once per epoch) unless that gives
    fewer than :data:`MIN_STEPS_PER_EPOCH` steps; then smaller, down to 1."""
    return max(1, min(int(window), int(n_train_frames) // (int(batch_size) * MIN_STEPS_PER_EPOCH)))


def lr_factor(step: int, total: int, warmup: int, schedule: str) -> float:
    """The learning-rate multiplier of optimiser step ``step`` (0-based).

    A linear warm-up over ``warmup`` steps that reaches 1 at its last step (the first step already
    trains, at ``1 / warmup``), then ``"constant"`` or a half cosine to 0 at ``total``.
    (transformers' ``get_cosine_schedule_with_warmup`` starts at 0 and so is one warm-up step
    behind this; kept as is so that trained checkpoints stay reproducible.)

    Parameters
    ----------
    step, total, warmup
        This step, the steps of the whole run, the warm-up steps.
    schedule
        ``"cosine"`` or ``"constant"``.

    Returns
    -------
    float
        The factor in ``(0, 1]`` that multiplies ``--lr``.
    """
    if warmup > 0 and step < warmup:
        return (step + 1) / warmup
    if schedule == "constant":
        return 1.0
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def autocast(device: torch.device, dtype: torch.dtype | None) -> contextlib.AbstractContextManager:
    """``torch.autocast`` on ``device`` with ``dtype``, or a no-op context when ``dtype`` is None.

    Parameters
    ----------
    device
        The device the forward runs on.
    dtype
        The autocast dtype (:func:`decoding.device.autocast_dtype`), ``None`` for float32.

    Returns
    -------
    contextlib.AbstractContextManager
        The context to run the forward in.
    """
    if dtype is None:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=dtype)


# The launchers' variables, read with accelerate's own helpers. (accelerate's ``PartialState``
# would parse them too, but constructing it initialises the process group and fixes the device
# choice before ``fit`` has read ``--device``.)
_WORLD_VARS = ["WORLD_SIZE", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"]
_RANK_VARS = ["RANK", "PMI_RANK", "OMPI_COMM_WORLD_RANK", "MV2_COMM_WORLD_RANK"]


def _world_size() -> int:
    from accelerate.utils import get_int_from_env

    return get_int_from_env(_WORLD_VARS, 1)


def _use_cpu() -> bool:
    """``accelerate launch --cpu`` (``ACCELERATE_USE_CPU``)."""
    from accelerate.utils import parse_flag_from_env

    return parse_flag_from_env("ACCELERATE_USE_CPU")


def is_main_process() -> bool:
    """False only on the non-zero ranks of a multi-process run (``accelerate launch``)."""
    from accelerate.utils import get_int_from_env

    return _world_size() <= 1 or get_int_from_env(_RANK_VARS, 0) == 0


def finish_processes() -> None:
    """After a multi-process run: wait for every process, then close the process group (so no
    process exits while another still writes). Does nothing in a single process."""
    if _world_size() <= 1:
        return
    import torch.distributed as td

    if td.is_available() and td.is_initialized():
        td.barrier()
        td.destroy_process_group()


def _requested_device(name: str) -> str:
    """``--device``, but ``auto`` means the CPU under ``accelerate launch --cpu``."""
    if (name or "auto").strip().lower() == "auto" and _use_cpu():
        return "cpu"
    return name


class _TrainStep(nn.Module):
    """The training forward as one ``forward`` (DDP only synchronises through ``forward``)."""

    def __init__(self, model: Decoder) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor, index: torch.Tensor | None = None) -> torch.Tensor:
        return self.model(x) if index is None else self.model.forward_frames(x, index)


class Distributed:
    """A multi-process run through :class:`accelerate.Accelerator`: rank, device, collectives."""

    def __init__(self, config: TrainConfig, *, static_graph: bool = True) -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        cpu = (
            _requested_device(config.device).strip().lower() == "cpu"
            or _use_cpu()
            or not torch.cuda.is_available()
        )
        # The forward is the same every step; a static graph lets DDP skip parameters it never
        # uses (a transformer's token embeddings) and works with gradient checkpointing. A
        # multi-fish step uses the projections of the fish it holds: not static.
        ddp = DistributedDataParallelKwargs(
            static_graph=static_graph, find_unused_parameters=not static_graph
        )
        self.accelerator = Accelerator(cpu=cpu, kwargs_handlers=[ddp])
        self.rank = self.accelerator.process_index
        self.world = self.accelerator.num_processes
        self.device = self.accelerator.device
        self.is_main = self.accelerator.is_main_process

    @staticmethod
    def wanted() -> bool:
        return _world_size() > 1

    def prepare(
        self, model: nn.Module, opt: torch.optim.Optimizer
    ) -> tuple[nn.Module, torch.optim.Optimizer]:
        """The DDP-wrapped training forward (a :class:`Decoder`'s, or any module whose
        ``forward`` is the training forward) and the wrapped optimizer."""
        step = _TrainStep(model) if isinstance(model, Decoder) else model
        return self.accelerator.prepare(step, opt)

    def shard(self, starts: np.ndarray) -> np.ndarray:
        """This process's share of a global batch (never empty: a short batch is repeated)."""
        if len(starts) < self.world:
            starts = np.resize(starts, self.world)
        return starts[self.rank :: self.world]

    def mean(self, *values: float) -> list[float]:
        t = torch.tensor(values, dtype=torch.float64, device=self.device)
        return [float(v) for v in self.accelerator.reduce(t, reduction="mean").cpu()]

    def any(self, *flags: bool) -> list[bool]:
        t = torch.tensor([float(f) for f in flags], dtype=torch.float64, device=self.device)
        return [bool(v > 0) for v in self.accelerator.reduce(t, reduction="sum").cpu()]


def _check_recording(recording: TrainingRecording, config: TrainConfig, split: Split) -> None:
    if recording.n_behavior < 1:
        raise RecordingError(f"recording {recording.fish_id}: has no behaviour channels to decode")
    if len(split.train) < 2:
        raise RecordingError(
            f"recording {recording.fish_id}: {recording.n_frames} frames leave {len(split.train)} "
            "training frames; need at least 2 (use a longer recording or a larger train fraction)"
        )


@dataclass
class _Run:
    """What one training run works on, built once by :func:`_setup`.

    ``x_all`` ``(T, N)`` and ``y_all`` ``(T, K)`` are the normalised recording, uploaded to the
    device once; batches and validation windows are gathered there, so the loop never copies
    activity between host and device.
    """

    config: TrainConfig
    device: torch.device
    amp: torch.dtype | None
    split: Split
    model: Decoder | RidgeDecoder
    info: CheckpointInfo
    x_all: torch.Tensor
    y_all: torch.Tensor
    behavior: np.ndarray  # (T, K) raw behaviour (recording units) on the host
    dist: Distributed | None = None

    def rows(self, index: np.ndarray) -> torch.Tensor:
        """Normalised frames ``x_all[index]`` on the device; a recording too large for the
        device stays in pinned host memory and only the batch's frames travel."""
        idx = torch.from_numpy(np.ascontiguousarray(index))
        if self.x_all.device.type == "cpu" and self.device.type != "cpu":  # kept on the host
            return self.x_all[idx].pin_memory().to(self.device, non_blocking=True)
        return self.x_all[idx.to(self.x_all.device, non_blocking=True)]


def _setup(recording: TrainingRecording, config: TrainConfig) -> _Run:
    """Split, normalisers fitted on the training frames, the model, and the data on the device."""
    dist = Distributed(config) if Distributed.wanted() else None
    device = dist.device if dist is not None else pick_device(_requested_device(config.device))
    seed_all(config.seed)
    split = chronological_split(recording.n_frames, config.split)
    _check_recording(recording, config, split)
    decoder = config.decoder_spec()
    train = split.train
    activity = np.asarray(recording.activity, dtype=np.float32)
    behavior = np.asarray(recording.behavior, dtype=np.float32)
    if config.normalization == "frame":
        norm = Normalizer.identity(recording.n_neurons)
    else:
        norm = Normalizer.fit(activity[train.start : train.stop])
    tnorm = Normalizer.fit(behavior[train.start : train.stop])
    model = build_decoder(
        decoder,
        n_neurons=recording.n_neurons,
        n_outputs=recording.n_behavior,
        device=device,
        base_dtype=_base_dtype(device, config),
    )
    info = CheckpointInfo.new(recording, config, decoder, normalizer=norm, target_normalizer=tnorm)
    x_all = _upload(torch.from_numpy(normalize_activity(info, activity)), device)
    y_all = torch.from_numpy(tnorm.transform(behavior)).to(device)
    amp = autocast_dtype(device, config.precision)
    return _Run(config, device, amp, split, model, info, x_all, y_all, behavior, dist)


#: Share of free CUDA memory the normalised recording may take; a larger one stays on the host.
DEVICE_DATA_SHARE = 0.5


def _upload(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """``x`` on ``device`` once (the loop then never copies it), or pinned on the host when it
    would take more than :data:`DEVICE_DATA_SHARE` of the free CUDA memory."""
    if device.type == "cuda" and x.nbytes > DEVICE_DATA_SHARE * torch.cuda.mem_get_info(device)[0]:
        return x.pin_memory()
    return x.to(device)


def _base_dtype(device: torch.device, config: TrainConfig) -> torch.dtype | None:
    """bf16 for a frozen or LoRA transformer base on CUDA (half the memory, bf16 matmuls; what
    trains stays float32), else ``None`` (float32)."""
    if device.type != "cuda" or config.mode == "full" or config.precision == "fp32":
        return None
    return torch.bfloat16


class _Stepper:
    """The optimisation side of a run: optimiser, schedule, batches and one training step.

    :meth:`step` queues one optimiser step and returns its loss as a device tensor: nothing in it
    waits for the device, so a GPU runs ahead of the Python loop.
    """

    def __init__(self, run: _Run) -> None:
        config, model = run.config, run.model
        self.run = run
        if config.grad_checkpointing and isinstance(model.backbone, HFBackbone):
            model.backbone.model.gradient_checkpointing_enable()
        self.params = [p for p in model.parameters() if p.requires_grad]
        if not self.params:
            raise ModelError(
                f"--backbone {run.info.spec.name} --mode {config.mode}: nothing to train"
            )
        self.opt = _optimizer(model, self.params, config)
        self.inputs = model.input_weight  # the weights that read the neurons (None: reservoir)
        self.fwd, self.fwd_frames, self.world = model, model.forward_frames, 1
        if run.dist is not None:
            ddp, self.opt = run.dist.prepare(model, self.opt)
            self.fwd, self.fwd_frames, self.world = ddp, ddp, run.dist.world
            torch.manual_seed(config.seed + run.dist.rank)  # distinct input dropout per process
        self.rng = np.random.default_rng(config.seed)  # the same on every process
        train = run.split.train
        self.window = min(config.window, len(train))
        self.stride = config.train_stride or auto_train_stride(
            len(train), self.window, config.batch_size * self.world
        )
        n_starts = len(range(train.start, train.stop - self.window + 1, self.stride)) or 1
        self.steps_per_epoch = math.ceil(n_starts / (config.batch_size * self.world))
        self.total_steps = self.steps_per_epoch * config.epochs
        self.warmup = int(round(config.warmup_frac * self.total_steps))
        self.step_count = 0

    def batches(self):
        """This epoch's batches of training-window starts (all processes' share)."""
        cfg = self.run.config
        return iter_train_batches(
            self.run.split.train, cfg.window, self.stride, cfg.batch_size * self.world, self.rng
        )

    @property
    def lr(self) -> float:
        return float(self.opt.param_groups[0]["lr"])

    def step(self, starts: np.ndarray) -> torch.Tensor:
        """One optimiser step on the windows starting at ``starts``; the loss (device, detached)."""
        run, cfg = self.run, self.run.config
        for g in self.opt.param_groups:
            g["lr"] = cfg.lr * lr_factor(self.step_count, self.total_steps, self.warmup,
                                          cfg.schedule)  # fmt: skip
        dev, s = run.device, self.window
        win = window_index(starts, s)
        with autocast(dev, run.amp):
            if cfg.project_once and self.stride < s:  # windows overlap: project each frame once
                frames, local = batch_frames(starts, s)
                pred = self.fwd_frames(
                    run.rows(frames), torch.from_numpy(local).to(dev, non_blocking=True)
                )
            else:
                pred = self.fwd(run.rows(win))
        win = torch.from_numpy(win).to(dev, non_blocking=True)
        loss = nn.functional.mse_loss(pred.float(), run.y_all[win])
        if cfg.input_l2 > 0 and self.inputs is not None:
            loss = loss + cfg.input_l2 * self.inputs.square().sum()
        self.opt.zero_grad(set_to_none=True)
        if run.dist is None:
            loss.backward()
            torch.nn.utils.clip_grad_norm_(self.params, 1.0)
        else:  # DDP averages the gradients across processes during backward
            run.dist.accelerator.backward(loss)
            run.dist.accelerator.clip_grad_norm_(self.params, 1.0)
        self.opt.step()
        if cfg.proj_sparsity > 0 and self.inputs is not None:
            _prox_inputs(self.inputs, cfg.proj_sparsity * self.lr)
        self.step_count += 1
        return loss.detach()


class BestKeeper:
    """Keeps a copy (on the model's device) of the trainable weights of the best epoch so far.

    Parameters
    ----------
    model
        The model being trained; :meth:`restore` writes the kept weights back into it.
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        self.loss = math.inf
        self.key = math.inf
        self.epoch = 0
        self.state: dict[str, torch.Tensor] | None = None

    def consider(self, loss: float, epoch: int) -> bool:
        """Keep the weights if ``loss`` (validation) is the best so far; NaN = no validation
        part: keep the latest. Returns whether they were kept."""
        key = loss if math.isfinite(loss) else -epoch
        if self.state is not None and key >= self.key:
            return False
        self.loss, self.key, self.epoch = loss, key, epoch
        self.state = {
            n: p.detach().clone() for n, p in self.model.named_parameters() if p.requires_grad
        }
        return True

    @property
    def best_loss(self) -> float | None:
        return self.loss if math.isfinite(self.loss) else None

    def restore(self) -> None:
        """Copy the kept weights back into the model (the latest ones if nothing was kept)."""
        if self.state is None:  # cancelled before the first epoch ended: keep what we have
            self.consider(math.nan, 0)
        with torch.no_grad():
            named = dict(self.model.named_parameters())
            for n, v in (self.state or {}).items():
                named[n].copy_(v)


class _Reporter:
    """Progress events for ``callback`` (main process only), a step event at most every
    :data:`STEP_REPORT_S` seconds (each one waits for the device to read the loss)."""

    def __init__(self, callback: Callable[[Progress], None] | None, run: _Run) -> None:
        self.callback = callback if run.dist is None or run.dist.is_main else None
        self.t0 = time.perf_counter()
        self.last = -math.inf

    def elapsed(self) -> float:
        return time.perf_counter() - self.t0

    def due(self, first_of_epoch: bool) -> bool:
        if self.callback is None:
            return False
        return first_of_epoch or time.perf_counter() - self.last >= STEP_REPORT_S

    def emit(self, ev: Progress) -> None:
        if self.callback is not None:
            self.last = time.perf_counter()
            self.callback(ev)


#: Seconds between step progress events (each one reads the running loss from the device).
STEP_REPORT_S = 0.25


def _eta(elapsed: float, step: int, total: int, max_time_s: float | None) -> float:
    """Seconds left: the remaining steps at the rate so far, capped by the time budget."""
    eta = elapsed / max(step, 1) * (total - step)
    return eta if max_time_s is None else max(0.0, min(eta, max_time_s - elapsed))


def _stop_reason(run: _Run, reporter: _Reporter, cancel: CancelSignal | None) -> str | None:
    """``"cancelled"``, ``"stopped"`` (max time) or ``None``; every process agrees."""
    want_cancel = is_cancelled(cancel)
    max_t = run.config.max_time_s
    want_stop = max_t is not None and reporter.elapsed() > max_t
    if run.dist is not None:
        want_cancel, want_stop = run.dist.any(want_cancel, want_stop)
    return "cancelled" if want_cancel else ("stopped" if want_stop else None)


def _validate(run: _Run) -> tuple[float, float]:
    """Validation loss (normalised units) and RMSE (recording units), computed on the device."""
    val = run.split.val
    if not len(val):
        return math.nan, math.nan
    cfg = run.config
    eval_stride = cfg.eval_stride or max(1, cfg.window // 4)
    pred = _predict_tensor(run.model, run.x_all, val.start, val.stop, cfg.window, eval_stride,
                           64, run.amp, run.device)  # fmt: skip
    target = run.y_all[val.start : val.stop]
    std = torch.as_tensor(run.info.target_normalizer.std, device=run.device)
    loss = ((pred - target) ** 2).mean()
    mse_raw = (((pred - target) * std) ** 2).double().mean()  # raw = normalised * std + mean
    loss_f, rmse = float(loss), float(mse_raw.sqrt())
    if run.dist is not None:  # every process validates; the mean keeps their decisions equal
        loss_f, rmse = run.dist.mean(loss_f, rmse)
    return loss_f, rmse


def _train_epoch(
    run: _Run, stepper: _Stepper, reporter: _Reporter, epoch: int, cancel: CancelSignal | None,
    keeper: BestKeeper, history: list[dict[str, Any]],
) -> tuple[float, int, str | None]:  # fmt: skip
    """One pass over the training windows: (summed loss, steps, stop reason or None)."""
    cfg = run.config
    run.model.train()
    running = torch.zeros((), device=run.device)
    count = 0
    for starts in stepper.batches():
        reason = _stop_reason(run, reporter, cancel)
        if reason is not None:
            return float(running), count, reason
        if run.dist is not None:
            starts = run.dist.shard(starts)
        running += stepper.step(starts)
        count += 1
        step = stepper.step_count
        if reporter.due(count == 1):
            elapsed = reporter.elapsed()
            reporter.emit(Progress(
                "step", epoch, cfg.epochs, step, stepper.total_steps,
                train_loss=float(running) / count, lr=stepper.lr, best_val_loss=keeper.best_loss,
                elapsed_s=elapsed, eta_s=_eta(elapsed, step, stepper.total_steps, cfg.max_time_s),
            ))  # fmt: skip
        if cfg.eval_every and step % cfg.eval_every == 0:
            vl, vr = _validate(run)
            run.model.train()
            rec = {
                "epoch": epoch,
                "step": step,
                "elapsed_s": reporter.elapsed(),
                "train_loss": float(running) / count,
                "val_loss": vl,
                "val_rmse": vr,
            }
            history.append(rec)  # fmt: skip
            reporter.emit(
                Progress(
                    "eval",
                    epoch,
                    cfg.epochs,
                    step,
                    stepper.total_steps,
                    rec["train_loss"],
                    vl,
                    vr,
                    elapsed_s=rec["elapsed_s"],
                )
            )
    return float(running), count, None


def fit(
    recording: TrainingRecording,
    config: TrainConfig | None = None,
    *,
    callback: Callable[[Progress], None] | None = None,
    cancel: CancelSignal | None = None,
) -> FitResult:
    """Train a decoder on ``recording`` with ``config``; returns the best model (by val loss).

    The parts: :func:`_setup` (split, normalisers, model, data on the device), :class:`_Stepper`
    (optimiser, schedule, one step), :func:`_train_epoch`, :func:`_validate`,
    :class:`BestKeeper` (best weights by validation loss) and :class:`_Reporter` (progress).
    """
    config = config or TrainConfig()
    run = _setup(recording, config)
    reporter = _Reporter(callback, run)
    if isinstance(run.model, RidgeDecoder):
        return _fit_ridge(run, callback, reporter.t0)
    run.model.to(run.device)
    stepper = _Stepper(run)
    keeper = BestKeeper(run.model)
    history: list[dict[str, Any]] = []
    reason: str | None = None
    bad_epochs = 0
    for epoch in range(1, config.epochs + 1):
        running, count, reason = _train_epoch(
            run, stepper, reporter, epoch, cancel, keeper, history
        )
        if count == 0:
            break
        if run.dist is not None:  # the epoch's train loss over every process's windows
            (running,) = run.dist.mean(running)
        vl, vr = _validate(run)
        _check_finite(running / count, vl, epoch, run)
        bad_epochs = 0 if keeper.consider(vl, epoch) else bad_epochs + 1
        rec = {
            "epoch": epoch,
            "step": stepper.step_count,
            "elapsed_s": reporter.elapsed(),
            "train_loss": running / count,
            "val_loss": vl,
            "val_rmse": vr,
            "lr": stepper.lr,
        }
        history.append(rec)  # fmt: skip
        step, total = stepper.step_count, stepper.total_steps
        reporter.emit(Progress(
            "epoch", epoch, config.epochs, step, total, rec["train_loss"], vl, vr,
            keeper.best_loss, keeper.epoch, stepper.lr, rec["elapsed_s"],
            _eta(rec["elapsed_s"], step, total, config.max_time_s),
        ))  # fmt: skip
        if reason is not None:
            break
        if config.patience and bad_epochs >= config.patience and len(run.split.val):
            reason = "stopped"
            break
    keeper.restore()
    return _finish(run, stepper, keeper, reporter, history, reason)


def _check_finite(train_loss: float, val_loss: float, epoch: int, run: _Run) -> None:
    """Refuse to go on (or save) once the loss is NaN or infinite: the run diverged."""
    if math.isfinite(train_loss) and (math.isfinite(val_loss) or not len(run.split.val)):
        return
    cfg = run.config
    bad = train_loss if not math.isfinite(train_loss) else val_loss
    raise DecodingError(
        f"training diverged: the loss became {bad} in epoch {epoch} (--backbone {cfg.backbone} "
        f"--mode {cfg.mode} --lr {cfg.lr}); nothing was saved. Lower --lr, or keep --proj-rank "
        "and --temporal-kernel at their defaults"
    )


def _finish(
    run: _Run, stepper: _Stepper, keeper: BestKeeper, reporter: _Reporter,
    history: list[dict[str, Any]], reason: str | None,
) -> FitResult:  # fmt: skip
    """The best model in eval mode, its info (history, metrics) and the ``done`` event."""
    run.model.float().eval()  # a bf16 base (CUDA) back to float32 like every other model
    info = run.info
    info.history = history
    info.cancelled = reason == "cancelled"
    info.metrics = {
        "best_epoch": keeper.epoch,
        "best_val_loss": keeper.best_loss,
        "train_time_s": reporter.elapsed(),
        "steps": stepper.step_count,
    }
    if run.dist is not None:
        info.metrics["processes"] = run.dist.world
    message = {"cancelled": "cancelled", "stopped": "stopped early"}.get(reason or "", "finished")
    reporter.emit(Progress(
        "done", keeper.epoch, run.config.epochs, stepper.step_count, stepper.total_steps,
        best_val_loss=keeper.best_loss, best_epoch=keeper.epoch, elapsed_s=reporter.elapsed(),
        eta_s=0.0, message=message,
    ))  # fmt: skip
    return FitResult(run.model, info, info.cancelled, reason == "stopped", history)


def _optimizer(model: Decoder, params: list[nn.Parameter], config: TrainConfig):
    """AdamW over ``params`` (no decay on biases and norms); with ``input_moment="tensor"`` the
    neurons' input weights get one second moment for the whole tensor (:mod:`decoding.optim`)."""
    inputs = model.input_weight if config.input_moment == "tensor" else None
    special = [inputs] if inputs is not None else []
    decay = [p for p in params if p.ndim >= 2 and all(p is not q for q in special)]
    no_decay = [p for p in params if p.ndim < 2]
    groups = [
        {"params": decay, "weight_decay": config.weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]
    if not special:  # torch's fused kernel on CUDA: one launch per step
        return torch.optim.AdamW(groups, lr=config.lr, fused=params[0].is_cuda or None)
    from decoding.optim import MixedAdamW

    groups.append({"params": special, "weight_decay": config.weight_decay, "scalar_moment": True})
    return MixedAdamW(groups, lr=config.lr)


@torch.no_grad()
def _prox_inputs(w: torch.Tensor, amount: float) -> None:
    """Group-lasso proximal step on the input projection: shrink each neuron's weight column
    (rows x 1) towards zero by ``amount * sqrt(rows)`` in norm; columns that only receive noisy
    gradients stay at zero (Adam's steps on pure noise are ~0.2 lr per entry, consistent
    gradients ~1 lr), so the model keeps the neurons it needs and drops the rest."""
    shrink = amount * w.shape[0] ** 0.5
    norms = w.norm(dim=0, keepdim=True).clamp_min(1e-12)
    w.mul_((1.0 - shrink / norms).clamp_min(0.0))


def _fit_ridge(run: _Run, callback: Callable[[Progress], None] | None, t0: float) -> FitResult:
    """The ridge baseline: closed form on the training frames, alpha chosen on validation."""
    model, info, tr, va = run.model, run.info, run.split.train, run.split.val
    x = run.x_all.cpu().numpy()
    y = run.y_all.cpu().numpy()
    scores = model.fit_closed_form(
        x[tr.start : tr.stop],
        y[tr.start : tr.stop],
        x[va.start : va.stop] if len(va) else None,
        y[va.start : va.stop] if len(va) else None,
    )
    model.eval()
    alpha = min(scores, key=scores.get)  # the chosen alpha (the buffer is float32)
    rec = {
        "epoch": 1,
        "step": 1,
        "elapsed_s": time.perf_counter() - t0,
        "val_loss": scores[alpha],
        "alpha": alpha,
        "alphas": {str(k): v for k, v in scores.items()},
    }
    info.history = [rec]
    info.metrics = {
        "best_epoch": 1,
        "best_val_loss": scores[alpha],
        "alpha": alpha,
        "train_time_s": rec["elapsed_s"],
        "steps": 1,
    }
    if callback is not None:
        callback(
            Progress(
                "done",
                1,
                1,
                1,
                1,
                val_loss=scores[alpha],
                best_val_loss=scores[alpha],
                best_epoch=1,
                elapsed_s=rec["elapsed_s"],
                eta_s=0.0,
                message="finished",
            )
        )
    return FitResult(model, info, history=info.history)


@torch.no_grad()
def _predict_tensor(
    model: nn.Module,
    x: torch.Tensor,
    start: int,
    stop: int,
    window: int,
    stride: int,
    batch_size: int,
    amp: torch.dtype | None,
    device: torch.device,
) -> torch.Tensor:
    """Per-frame predictions ``(stop - start, K)`` (normalised units, float32, on ``device``) for
    ``[start, stop)`` of the normalised ``x``.

    Windows stay inside ``[start, stop)``; each frame is projected once; overlapping windows are
    averaged on the device (nothing is copied to the host).
    """
    was_training = model.training
    model.eval()
    try:
        if isinstance(model, RidgeDecoder):
            return model(x[start:stop].to(device)).float()
        starts, s = window_starts(start, stop, window, stride)
        with autocast(device, amp):
            emb = torch.cat(
                [
                    model.project(x[a : min(a + 4096, stop)].to(device))
                    for a in range(start, stop, 4096)
                ]
            )
            outs = []
            for i in range(0, len(starts), batch_size):
                local = window_index(starts[i : i + batch_size] - start, s)
                outs.append(model.decode(emb[torch.from_numpy(local).to(device)]).float())
        return overlap_average(torch.cat(outs), starts, start, stop)
    finally:
        model.train(was_training)


def normalize_activity(info: CheckpointInfo, raw: np.ndarray) -> np.ndarray:
    """Apply the checkpoint's activity normalisation to ``raw`` ``(T, N)``."""
    raw = np.asarray(raw, dtype=np.float32)
    if info.normalization == "frame":
        mu = raw.mean(axis=1, keepdims=True)
        sd = raw.std(axis=1, keepdims=True)
        return ((raw - mu) / np.where(sd > 1e-6, sd, 1.0)).astype(np.float32)
    return info.normalizer.transform(raw)


def frame_range(
    recording: FrameSource,
    *,
    start: int | None = None,
    stop: int | None = None,
    epoch: str | None = None,
) -> list[tuple[int, int]]:
    """Frame ranges to predict: ``[start, stop)`` or every epoch named ``epoch``."""
    if epoch is not None:
        eps = recording.epochs_named(epoch)
        if not eps:
            recording.epoch(epoch)  # raises the RecordingError listing the known names
        return [(e.start, e.stop) for e in eps]
    a = 0 if start is None else int(start)
    b = recording.n_frames if stop is None else int(stop)
    if not 0 <= a < b <= recording.n_frames:
        raise DecodingError(
            f"frame range [{a}, {b}): expected 0 <= start < stop <= {recording.n_frames} "
            f"(recording {recording.fish_id})"
        )
    return [(a, b)]


def predict(
    model: nn.Module,
    info: CheckpointInfo,
    recording: TrainingRecording,
    start: int = 0,
    stop: int | None = None,
    *,
    stride: int | None = None,
    batch_size: int = 64,
    device: str | torch.device | None = None,
    precision: str = "auto",
) -> np.ndarray:
    """Per-frame predictions ``(stop - start, K)`` in the recording's behaviour units.

    Windows never cross a split boundary (the split uses the checkpoint's fractions): frames of each
    part are predicted from windows inside that part, so test frames see only test frames. Batched,
    no gradients; overlapping windows (``stride``, default the checkpoint's) are averaged per frame.
    """
    stop = recording.n_frames if stop is None else int(stop)
    start = int(start)
    if recording.n_neurons != info.n_neurons:
        from decoding.errors import CheckpointError

        where = f"checkpoint {info.path}" if info.path else "the model"
        raise CheckpointError(
            f"{where} was trained on {info.n_neurons} neurons but recording {recording.fish_id} "
            f"has "
            f"{recording.n_neurons}; use a checkpoint trained on this fish"
        )
    if not 0 <= start < stop <= recording.n_frames:
        raise DecodingError(
            f"frame range [{start}, {stop}): expected 0 <= start < stop <= {recording.n_frames}"
        )
    if device is None:
        try:
            dev = next(model.parameters()).device
        except StopIteration:
            dev = torch.device("cpu")
    else:
        dev = pick_device(str(device)) if not isinstance(device, torch.device) else device
    model.to(dev)
    amp = autocast_dtype(dev, precision)
    stride = stride or info.stride
    split = info.split_for(recording.n_frames)
    out = np.empty((stop - start, info.n_outputs), dtype=np.float32)
    s = info.window
    for _name, a, b in split.pieces(start, stop):
        part = next(split.part(n) for n in ("train", "val", "test") if a in split.part(n))
        ca, cb = max(part.start, a - (s - 1)), min(part.stop, b + (s - 1))
        x = torch.from_numpy(normalize_activity(info, recording.read_activity(ca, cb)))
        pred = _predict_tensor(model, x, 0, cb - ca, s, stride, batch_size, amp, dev).cpu().numpy()
        out[a - start : b - start] = info.target_normalizer.inverse(pred[a - ca : b - ca])
    return out


def evaluate(
    model: nn.Module,
    info: CheckpointInfo,
    recording: TrainingRecording,
    *,
    part: str = "test",
    epoch: str | None = None,
    stride: int | None = None,
    device: str | torch.device | None = None,
) -> Metrics:
    """Metrics on a split part (``train``/``val``/``test``/``all``), optionally only frames of
    epochs named ``epoch`` inside it. Adds the noise ceiling when the recording has ground truth."""
    split = info.split_for(recording.n_frames)
    mask = np.zeros(recording.n_frames, dtype=bool)
    if part == "all":
        mask[:] = True
    else:
        rng = split.part(part)
        mask[rng.start : rng.stop] = True
    if epoch is not None:
        emask = np.zeros_like(mask)
        for a, b in frame_range(recording, epoch=epoch):
            emask[a:b] = True
        mask &= emask
    frames = np.flatnonzero(mask)
    if frames.size == 0:
        raise DecodingError(
            f"evaluate: no frames in split part {part!r}"
            + (f" inside epochs named {epoch!r}" if epoch else "")
            + "; choose another --split or --epoch"
        )
    a, b = int(frames[0]), int(frames[-1]) + 1
    pred = predict(model, info, recording, a, b, stride=stride, device=device)[frames - a]
    truth = np.asarray(recording.behavior[a:b], dtype=np.float32)[frames - a]
    gt = recording.ground_truth
    clean = None if gt is None else np.asarray(gt.behavior_clean[a:b], np.float32)[frames - a]
    return evaluate_arrays(truth, pred, recording.behavior_names, clean=clean)


def store_metrics(result: FitResult, recording: TrainingRecording) -> dict[str, Any]:
    """Evaluate ``result`` on the validation and test parts of the recording it was trained on
    and store the metrics in its info, each labelled with that recording's fingerprint id."""
    from decoding.provenance import short_id

    split = result.info.split_for(recording.n_frames)
    for part in ("val", "test"):
        if len(split.part(part)):
            result.info.metrics[part] = {
                **evaluate(result.model, result.info, recording, part=part).to_dict(),
                "recording": short_id(result.info.recording),
            }
    return result.info.metrics
