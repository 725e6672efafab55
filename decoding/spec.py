"""The decoder spec: the one description of a decoder's architecture.

:class:`DecoderSpec` is what rebuilds a decoder besides the data sizes (neurons, behaviour
channels): the resolved backbone, which weights train, the window, the LoRA options and the input
side (dropout, normalisation, temporal kernel, projection rank and init, ridge context). It is
made once from a :class:`~decoding.train.TrainConfig` (:meth:`TrainConfig.decoder_spec`), given to
:func:`~decoding.models.build_decoder`, held by :class:`~decoding.checkpoint.CheckpointInfo` and
written into ``config.json`` with :func:`dataclasses.asdict` (flat, the layout checkpoints have
always had, so every existing checkpoint reads unchanged).

Values that do not apply to a backbone kind are set to what the built model uses (a baseline has
no temporal kernel or factorised projection; an LSTM always trains in full; a ridge window is its
context), so the spec always says what the model is.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, replace
from typing import Any

from decoding.backbones import BackboneSpec
from decoding.device import DEVICE_CHOICES
from decoding.errors import DecodingError, ModelError

__all__ = ["MODES", "DecoderSpec", "LoraOptions", "TrainConfig"]

#: Which weights train: the projection and head only, everything, or LoRA adapters.
MODES: tuple[str, ...] = ("frozen", "full", "lora")


@dataclass(frozen=True)
class LoraOptions:
    """PEFT LoRA settings; ``targets`` empty = the family default (attention projections)."""

    r: int = 8
    alpha: int = 16
    dropout: float = 0.05
    targets: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "targets", tuple(str(t) for t in self.targets))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready: ``{"r", "alpha", "dropout", "targets": [...]}``."""
        return asdict(self) | {"targets": list(self.targets)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any] | None) -> LoraOptions:
        """The inverse of :meth:`to_dict`; missing entries (or ``None``) take the defaults."""
        d = d or {}
        base = cls()
        return cls(
            int(d.get("r", base.r)),
            int(d.get("alpha", base.alpha)),
            float(d.get("dropout", base.dropout)),
            tuple(d.get("targets", ())),
        )


def _optional_int(v: Any) -> int | None:
    return int(v) if v else None


#: How each field is read back from JSON (``backbone``, ``mode`` and ``window`` are required).
_FROM_JSON: dict[str, Callable[[Any], Any]] = {
    "backbone": BackboneSpec.from_dict,
    "mode": str,
    "window": int,
    "lora": LoraOptions.from_dict,
    "input_dropout": float,
    "normalization": str,
    "temporal_kernel": int,
    "proj_rank": _optional_int,
    "proj_init": str,
    "ridge_context": int,
}
_REQUIRED = ("backbone", "mode", "window")


@dataclass(frozen=True, kw_only=True)
class DecoderSpec:
    """Everything that defines a decoder's architecture (see the module docstring).

    Parameters
    ----------
    backbone
        The resolved backbone (:func:`decoding.backbones.resolve`).
    mode
        Which weights train: ``frozen``, ``full`` or ``lora`` (multi-fish transfer adds its own).
    window
        Frames per window.
    lora
        LoRA options (used with ``mode="lora"``).
    input_dropout
        Dropout on the neuron inputs.
    normalization
        ``"neuron"`` (z-score per neuron) or ``"frame"`` (the study's per-frame scaling).
    temporal_kernel
        Depthwise temporal conv over projected frames (transformers; 0 = none).
    proj_rank
        Factorised ``N -> rank -> hidden`` projection (transformers; ``None`` = one Linear).
    proj_init
        ``"zeros"`` or ``"default"`` (torch's random init) for the neurons' input weights.
    ridge_context
        Ridge baseline: frames of context on each side.
    """

    backbone: BackboneSpec
    mode: str = "frozen"
    window: int = 20
    lora: LoraOptions = field(default_factory=LoraOptions)
    input_dropout: float = 0.0
    normalization: str = "neuron"
    temporal_kernel: int = 0
    proj_rank: int | None = None
    proj_init: str = "default"
    ridge_context: int = 0

    def __post_init__(self) -> None:
        kind = self.backbone.kind
        fixed: dict[str, Any] = {"proj_rank": int(self.proj_rank) if self.proj_rank else None}
        if kind != "hf":  # what the baselines' models use, whatever was asked
            fixed |= {"temporal_kernel": 0, "proj_rank": None}
            fixed["mode"] = "full" if kind == "lstm" else "frozen"
        if kind == "ridge":
            fixed |= {"window": 2 * int(self.ridge_context) + 1, "proj_init": "default"}
        else:
            fixed["ridge_context"] = 0
        for name, value in fixed.items():
            object.__setattr__(self, name, value)

    def replace(self, **changes: Any) -> DecoderSpec:
        """A copy with ``changes`` (:func:`dataclasses.replace`)."""
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        """The flat ``config.json`` entries (``backbone`` and ``lora`` as nested objects)."""
        return asdict(self) | {"backbone": self.backbone.to_dict(), "lora": self.lora.to_dict()}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> DecoderSpec:
        """The spec stored in a ``config.json`` object ``d`` (other entries are ignored).

        Parameters
        ----------
        d
            The parsed ``config.json``; ``backbone``, ``mode`` and ``window`` are required.

        Returns
        -------
        DecoderSpec
            Raises ``KeyError`` for a missing required entry and ``TypeError``/``ValueError``
            for a malformed one.
        """
        missing = [k for k in _REQUIRED if k not in d]
        if missing:
            raise KeyError(f"expected entries {', '.join(_REQUIRED)}; missing {', '.join(missing)}")
        return cls(**{f.name: _FROM_JSON[f.name](d[f.name]) for f in fields(cls) if f.name in d})


# --- the training options and their command-line flags ------------------------------------------


def _opt(default: Any, help: str, *, group: str = "training", **cli: Any) -> Any:
    """A :class:`TrainConfig` field with its command-line flag: ``help`` (``%(default)s`` is the
    default), ``group`` (``model``, ``training``, or ``run`` for the per-command flags
    ``--backbone``/``--init``/``--seed``) and optional ``flag`` (default ``--field-name``),
    ``choices``, ``metavar``, ``nargs``, ``to_cli`` (config value -> CLI value) and ``from_cli``
    (the inverse)."""
    return field(default=default, metadata={"help": help, "group": group, **cli})


def _targets_from_cli(v: str | tuple[str, ...]) -> tuple[str, ...]:
    return tuple(t for t in v.split(",") if t) if isinstance(v, str) else tuple(v)


def _targets_to_cli(v: tuple[str, ...]) -> str:
    return ",".join(v)


def _rank_to_cli(v: int | None) -> int:
    return v or 0


def _identity(v: Any) -> Any:
    return v


@dataclass
class TrainConfig:
    """Every training option; each field is one command-line flag (see :func:`flag_fields`).

    Defaults are the measured best CPU recipe. :meth:`decoder_spec` makes the architecture part
    a :class:`DecoderSpec`; :meth:`to_argv` writes the flags that give this config back.
    """

    backbone: str = _opt("small-llama", "decoder backbone", group="run")
    init: str | None = _opt(  # None = the backbone's default (pretrained where weights exist)
        None, "pretrained weights or the same architecture randomly initialised (default: "
        "pretrained where available)", group="run", choices=("pretrained", "random"),
    )  # fmt: skip
    seed: int = _opt(0, "random seed", group="run")
    mode: str = _opt("full", "which weights train: frozen (projection + head only), full, or lora "
                     "(adapters; default %(default)s)", group="model", choices=MODES)  # fmt: skip
    window: int = _opt(20, "frames per window (sequence length), default %(default)s",
                       group="model")  # fmt: skip
    input_dropout: float = _opt(  # spreads weight over correlated neurons: worse salience on the
        0.0, "dropout on the neuron inputs, default %(default)s", group="model",  # generator panel
    )  # fmt: skip
    proj_rank: int | None = _opt(  # None = one Linear, as the study
        32, "transformers: factorise the neurons -> hidden projection through this rank (0 = one "
        "full Linear as in the study), default %(default)s", group="model",
        to_cli=_rank_to_cli, from_cli=lambda v: v or None,
    )  # fmt: skip
    temporal_kernel: int = _opt(3, "transformers: depthwise temporal conv over projected frames "
                                "(0 = off), default %(default)s", group="model")  # fmt: skip
    ridge_context: int = _opt(0, "ridge baseline: frames of context on each side (default 0 = per "
                              "frame)", group="model")  # fmt: skip
    hidden_size: int | None = _opt(None, "width of the lstm/reservoir baselines (default 256)",
                                   group="model")  # fmt: skip
    lora_r: int = _opt(8, "LoRA rank, default %(default)s", group="model")
    lora_alpha: int = _opt(16, "LoRA alpha", group="model")
    lora_dropout: float = _opt(0.05, "LoRA dropout", group="model")
    lora_targets: tuple[str, ...] = _opt(
        (), "comma-separated module names for LoRA (default: attention projections)",
        group="model", to_cli=_targets_to_cli, from_cli=_targets_from_cli,
    )  # fmt: skip
    trust_remote_code: bool = _opt(False, "allow custom model code from a hub id or folder (off by "
                                   "default)", group="model")  # fmt: skip
    normalization: str = _opt(  # "frame": the study's per-frame scaling (kept for comparison)
        "neuron", "activity normalisation: z-score per neuron on the training frames (neuron) or "
        "the study's per-frame scaling across neurons (frame)", group="model",
        choices=("neuron", "frame"),
    )  # fmt: skip
    proj_init: str = _opt("zeros", "start the neurons' input weights at zero (zeros) or at random "
                          "(default)", choices=("default", "zeros"))  # fmt: skip
    epochs: int = _opt(40, "maximum epochs, default %(default)s")
    batch_size: int = _opt(16, "windows per step, default %(default)s")
    lr: float = _opt(1e-3, "peak AdamW learning rate, default %(default)s")
    weight_decay: float = _opt(0.05, "AdamW weight decay")
    warmup_frac: float = _opt(0.1, "fraction of steps with linear warm-up", flag="--warmup")
    schedule: str = _opt("cosine", "learning-rate schedule after warm-up",
                         choices=("cosine", "constant"))  # fmt: skip
    patience: int = _opt(8, "stop after this many epochs without validation improvement (0 = "
                         "never)")  # fmt: skip
    train_stride: int | None = _opt(None, "frames between training windows (default: the window, "
                                    "i.e. each frame once per epoch, or less when that would leave "
                                    "fewer than 16 steps per epoch)")  # fmt: skip
    stride: int = _opt(1, "frames between inference windows (overlaps are averaged), default 1")
    eval_stride: int | None = _opt(None, "validation window stride during training (default: "
                                   "window // 4)")  # fmt: skip
    eval_every: int = _opt(0, "also validate every N steps (0 = once per epoch)")
    split: tuple[float, float, float] = _opt(
        (0.7, 0.1, 0.2), "chronological split fractions", nargs=3,
        metavar=("TRAIN", "VAL", "TEST"), to_cli=list, from_cli=tuple,
    )  # fmt: skip
    device: str = _opt("auto", "auto = cuda, then mps, then cpu", choices=DEVICE_CHOICES)
    precision: str = _opt("auto", "auto = bf16 autocast on CUDA, fp32 elsewhere",
                          choices=("auto", "fp32", "bf16"))  # fmt: skip
    grad_checkpointing: bool = _opt(False, "trade compute for memory on big backbones")
    max_time_s: float | None = _opt(None, "stop after this many seconds (keeps the best model)",
                                    flag="--max-time")  # fmt: skip
    project_once: bool = _opt(True, "project each frame of a batch once (--no-project-once: once "
                              "per window, as the study)")  # fmt: skip
    input_moment: str = _opt(
        "tensor", "Adam second moment of the neurons' input weights: one per tensor (keeps each "
        "neuron's weight proportional to its evidence) or per element; default %(default)s",
        choices=("tensor", "element"),
    )  # fmt: skip
    input_l2: float = _opt(0.5, "L2 penalty on the neurons' input weights (ridge-like), default "
                           "%(default)s")  # fmt: skip
    joint_windows: str = _opt(
        "per-fish", "multi-fish training: a step carries batch_size windows of every fish "
        "(per-fish), or batch_size windows in all with each frame of every fish once per epoch "
        "(pooled: an epoch costs about one fish's; measured in docs/multifish.md), default "
        "%(default)s", choices=("per-fish", "pooled"),
    )  # fmt: skip
    proj_sparsity: float = _opt(0.0, "group-lasso step on each neuron's input weights (units of lr "
                                "* sqrt(rows) per step; 0 = off), default %(default)s")  # fmt: skip

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ModelError(f"--mode {self.mode!r}: expected one of {', '.join(MODES)}")
        for name in ("window", "stride", "epochs", "batch_size"):
            if int(getattr(self, name)) < 1:
                raise DecodingError(
                    f"--{name.replace('_', '-')} must be >= 1, got {getattr(self, name)}"
                )
        if self.train_stride is not None and self.train_stride < 1:
            raise DecodingError(f"--train-stride must be >= 1, got {self.train_stride}")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise DecodingError(f"--lr must be a positive number, got {self.lr}")
        if not 0 <= self.input_dropout < 1:
            raise DecodingError(f"--input-dropout must be in [0, 1), got {self.input_dropout}")
        for f in fields(self):
            choices = f.metadata.get("choices")
            if choices and f.name != "device" and getattr(self, f.name) not in (*choices, None):
                raise DecodingError(
                    f"{flag_of(f)} {getattr(self, f.name)!r}: expected one of {', '.join(choices)}"
                )
        if not (self.input_l2 >= 0 and self.proj_sparsity >= 0):
            raise DecodingError(
                f"--input-l2 ({self.input_l2}) and --proj-sparsity ({self.proj_sparsity}) must be "
                ">= 0"
            )
        self.split = tuple(float(f) for f in self.split)  # type: ignore[assignment]
        self.lora_targets = tuple(self.lora_targets)

    @property
    def lora(self) -> LoraOptions:
        """The LoRA options (``lora_r``, ``lora_alpha``, ``lora_dropout``, ``lora_targets``)."""
        return LoraOptions(self.lora_r, self.lora_alpha, self.lora_dropout, self.lora_targets)

    def backbone_spec(self) -> BackboneSpec:
        """The resolved backbone (:func:`decoding.backbones.resolve`; may read a model config)."""
        from decoding.backbones import resolve

        return resolve(self.backbone, self.init, trust_remote_code=self.trust_remote_code,
                       hidden_size=self.hidden_size)  # fmt: skip

    def decoder_spec(self, backbone: BackboneSpec | None = None) -> DecoderSpec:
        """The architecture this config trains, on ``backbone`` (default :meth:`backbone_spec`).

        Parameters
        ----------
        backbone
            The resolved backbone, when the caller has it already.

        Returns
        -------
        DecoderSpec
            Every :class:`DecoderSpec` field taken from the field of the same name here.
        """
        own = {f.name for f in fields(DecoderSpec)} - {"backbone", "lora"}
        return DecoderSpec(backbone=backbone or self.backbone_spec(), lora=self.lora,
                           **{name: getattr(self, name) for name in own})  # fmt: skip

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (tuples as lists); stored in a checkpoint as ``train_config``."""
        return asdict(self) | {"split": list(self.split), "lora_targets": list(self.lora_targets)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> TrainConfig:
        """The inverse of :meth:`to_dict`; unknown entries (older or newer versions) are ignored."""
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in d.items() if k in names})

    def to_argv(self, *, only_changed: bool = True) -> list[str]:
        """The command-line flags that give this config back (``python -m decoding train ...``).

        Parameters
        ----------
        only_changed
            Leave out options at their default (a shorter command that means the same).

        Returns
        -------
        list of str
            E.g. ``["--backbone", "minilm", "--mode", "lora", "--window", "16"]``.
        """
        argv: list[str] = []
        for f in fields(self):
            value = getattr(self, f.name)
            if only_changed and value == default_of(f):
                continue
            if isinstance(value, bool):
                argv.append(flag_of(f) if value else "--no-" + flag_of(f)[2:])
                continue
            cli = f.metadata.get("to_cli", _identity)(value)
            if cli is None:  # None is then the flag's default (not writable): nothing to add
                continue
            argv += [flag_of(f), *(map(str, cli) if isinstance(cli, list) else [str(cli)])]
        return argv

    @classmethod
    def from_options(cls, options: Mapping[str, Any], **over: Any) -> TrainConfig:
        """The config from parsed flags (``vars(args)``): each field from its flag's value.

        Parameters
        ----------
        options
            Parsed command-line values by field name (other entries are ignored).
        **over
            Values that replace parsed ones (e.g. ``backbone=`` in ``compare``).

        Returns
        -------
        TrainConfig
        """
        kw = {
            f.name: f.metadata.get("from_cli", _identity)(options[f.name])
            for f in fields(cls)
            if f.name in options
        }
        return cls(**(kw | over))


def flag_fields() -> tuple[Field, ...]:
    """:class:`TrainConfig`'s fields; ``metadata`` holds each one's flag (see ``_opt``)."""
    return fields(TrainConfig)


def flag_of(f: Field) -> str:
    """The command-line flag of a :class:`TrainConfig` field (``--batch-size`` for
    ``batch_size``)."""
    return f.metadata.get("flag") or "--" + f.name.replace("_", "-")


def default_of(f: Field) -> Any:
    """The default value of a dataclass field (``default`` or ``default_factory()``)."""
    return f.default if f.default is not MISSING else f.default_factory()  # type: ignore[misc]
