"""Checkpoints: a folder with ``config.json`` and ``model.safetensors`` (never pickle).

``model.safetensors`` holds only what cannot be rebuilt from the base: the projection and head
always; LoRA adapters for ``--mode lora``; the whole backbone after ``--mode full``, for random
init and for the small baselines. Pretrained base weights are re-read from where ``config.json``
says they came from (a pip package, a local folder or a hub id). Token embedding tables are never
stored (the decoder
feeds ``inputs_embeds``). Writes are atomic: a crash leaves the previous checkpoint or none.
"""

from __future__ import annotations

import json
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from decoding.errors import CheckpointError, DecodingError, ModelError
from decoding.io_utils import atomic_write_dir
from decoding.models import Decoder, RidgeDecoder, build_decoder
from decoding.protocols import TrainingRecording
from decoding.provenance import RecordingLike, recording_fingerprint, warn_if_other_recording
from decoding.spec import DecoderSpec, TrainConfig
from decoding.windows import Normalizer, Split, chronological_split

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "CheckpointInfo",
    "saved_state",
    "save_checkpoint",
    "load_checkpoint",
    "read_config",
    "read_info",
]

FORMAT_NAME = "nlp4neuro-checkpoint"
FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def _decoder_field(name: str) -> property:
    """``info.<name>`` reads ``info.decoder.<name>``; assigning replaces the (frozen) spec."""

    def get(self: CheckpointInfo) -> Any:
        return getattr(self.decoder, name)

    def put(self: CheckpointInfo, value: Any) -> None:
        self.decoder = self.decoder.replace(**{name: value})

    return property(get, put, doc=f"``decoder.{name}`` (see :class:`~decoding.spec.DecoderSpec`)")


def _str_list(v: Any) -> list[str]:
    return [str(x) for x in v]


#: How each data entry of ``config.json`` is read back (the architecture: DecoderSpec.from_dict).
_FROM_JSON: dict[str, Callable[[Any], Any]] = {
    "n_neurons": int,
    "n_outputs": int,
    "behavior_names": _str_list,
    "normalizer": Normalizer.from_dict,
    "target_normalizer": Normalizer.from_dict,
    "split_fractions": lambda v: tuple(float(f) for f in v),
    "stride": int,
    "behavior_units": _str_list,
    "fish_id": str,
    "n_frames": int,
    "train_config": dict,
    "history": list,
    "metrics": dict,
    "versions": dict,
    "created": str,
    "cancelled": bool,
    "recording": lambda v: dict(v or {}),
}
#: How each data entry is written (entries not named here are JSON values already).
_TO_JSON: dict[str, Callable[[Any], Any]] = {
    "normalizer": Normalizer.to_dict,
    "target_normalizer": Normalizer.to_dict,
    "split_fractions": list,
    "behavior_names": list,
    "behavior_units": list,
}


@dataclass(kw_only=True)
class CheckpointInfo:
    """Everything needed to rebuild and apply a trained decoder (the ``config.json`` content).

    ``decoder`` is the architecture (:class:`~decoding.spec.DecoderSpec`); its fields are also
    readable (and, for multi-fish transfer, settable) here under their own names (``info.mode``,
    ``info.window``, ...; ``info.spec`` is the backbone). The rest describes the data it was
    trained on and the run.
    """

    decoder: DecoderSpec
    n_neurons: int
    n_outputs: int
    behavior_names: list[str]
    normalizer: Normalizer  # per-neuron z-score of the activity (fitted on training frames)
    target_normalizer: Normalizer  # per-channel z-score of the behaviour (training frames)
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    stride: int = 1  # inference window stride
    behavior_units: list[str] = field(default_factory=list)
    fish_id: str = ""
    n_frames: int = 0  # frames of the training recording
    train_config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    cancelled: bool = False
    recording: dict[str, Any] = field(default_factory=dict)  # provenance.recording_fingerprint
    path: Path | None = None

    # The architecture under its old names (read from ``decoder``; setting one replaces it).
    spec = _decoder_field("backbone")
    mode = _decoder_field("mode")
    window = _decoder_field("window")
    lora = _decoder_field("lora")
    input_dropout = _decoder_field("input_dropout")
    normalization = _decoder_field("normalization")
    temporal_kernel = _decoder_field("temporal_kernel")
    proj_rank = _decoder_field("proj_rank")
    proj_init = _decoder_field("proj_init")
    ridge_context = _decoder_field("ridge_context")

    @classmethod
    def new(
        cls,
        recording: TrainingRecording,
        config: TrainConfig,
        decoder: DecoderSpec,
        *,
        normalizer: Normalizer,
        target_normalizer: Normalizer,
    ) -> CheckpointInfo:
        """The info of a decoder about to be trained on ``recording`` with ``config``.

        Parameters
        ----------
        recording
            The training recording (sizes, channel names, fish id, fingerprint).
        config
            The training options (stored as ``train_config``; split fractions and stride).
        decoder
            The architecture (usually ``config.decoder_spec(...)``).
        normalizer, target_normalizer
            The activity and behaviour normalisers fitted on the training frames.

        Returns
        -------
        CheckpointInfo
            Without history and metrics (training adds them).
        """
        return cls(
            decoder=decoder,
            n_neurons=recording.n_neurons,
            n_outputs=recording.n_behavior,
            behavior_names=list(recording.behavior_names),
            behavior_units=list(recording.behavior_units),
            normalizer=normalizer,
            target_normalizer=target_normalizer,
            split_fractions=config.split,
            stride=config.stride,
            fish_id=recording.fish_id,
            n_frames=recording.n_frames,
            train_config=config.to_dict(),
            versions=library_versions(),
            recording=recording_fingerprint(recording),
        )

    def split_for(self, n_frames: int) -> Split:
        """The chronological split of a recording with ``n_frames`` frames (same fractions)."""
        return chronological_split(n_frames, self.split_fractions)

    def describe(self) -> str:
        """One line for people: backbone, init, mode, window, neurons."""
        return (
            f"{self.spec.name} ({self.spec.init}, {self.mode}), window {self.window}, "
            f"{self.n_neurons} neurons -> {self.n_outputs} channels"
        )

    def to_dict(self) -> dict[str, Any]:
        """The ``config.json`` object: format, version, the decoder spec's entries, the data's."""
        data = {
            f.name: _TO_JSON.get(f.name, _same)(getattr(self, f.name))
            for f in fields(self)
            if f.name not in ("decoder", "path")
        }
        return {"format": FORMAT_NAME, "version": FORMAT_VERSION, **self.decoder.to_dict(), **data}

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: Path | None = None) -> CheckpointInfo:
        """The inverse of :meth:`to_dict` (``path``: the folder it was read from)."""
        data = {k: conv(d[k]) for k, conv in _FROM_JSON.items() if k in d}
        return cls(decoder=DecoderSpec.from_dict(d), path=path, **data)


def _same(v: Any) -> Any:
    return v


def library_versions() -> dict[str, str]:
    import transformers

    out = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    try:
        import peft

        out["peft"] = peft.__version__
    except ModuleNotFoundError:  # pragma: no cover
        pass
    return out


def _stores_whole_backbone(info: CheckpointInfo) -> bool:
    return not info.spec.base_is_reproducible or info.mode == "full"


def saved_state(model: nn.Module, info: CheckpointInfo) -> dict[str, torch.Tensor]:
    """The tensors a checkpoint stores for ``model`` (see the module docstring)."""
    state = model.state_dict()
    if isinstance(model, RidgeDecoder):
        return {k: v for k, v in state.items()}
    assert isinstance(model, Decoder)
    skip = {f"backbone.{n}" for n in model.backbone.token_embedding_names()}
    skip |= {k.replace(".base_layer.", ".") for k in skip}
    out = {}
    whole = _stores_whole_backbone(info)
    for k, v in state.items():
        if not k.startswith("backbone."):
            out[k] = v
        elif whole:
            if k not in skip and not any(k.endswith(s.split("backbone.", 1)[1]) for s in skip):
                out[k] = v
        elif k.startswith("backbone.temporal.") or (info.mode == "lora" and "lora_" in k):
            out[k] = v
    return out


def save_checkpoint(model: nn.Module, info: CheckpointInfo, folder: str | os.PathLike) -> Path:
    """Write ``folder`` (config.json + model.safetensors) atomically; returns the folder."""
    from safetensors.torch import save_file

    folder = Path(folder)
    if not info.versions:
        info.versions = library_versions()
    if not info.created:
        info.created = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    tensors = {
        k: v.detach().to("cpu").contiguous().clone() for k, v in saved_state(model, info).items()
    }
    with atomic_write_dir(folder) as tmp:
        save_file(tensors, str(tmp / WEIGHTS_FILE), metadata={"format": FORMAT_NAME})
        text = json.dumps(info.to_dict(), indent=1, allow_nan=False, default=_json_default)
        (tmp / CONFIG_FILE).write_text(text + "\n", encoding="utf-8")
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o777 & ~umask)  # mkdtemp makes 0700; checkpoints are shareable files
        for f in (WEIGHTS_FILE, CONFIG_FILE):
            os.chmod(tmp / f, 0o666 & ~umask)
    info.path = folder
    return folder


def _json_default(o: Any) -> Any:
    if isinstance(o, np.integer):
        return int(o)
    if isinstance(o, np.floating):
        return float(o)
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


def read_config(
    folder: str | os.PathLike, format_name: str = FORMAT_NAME, version: int = FORMAT_VERSION
) -> dict[str, Any]:
    """The parsed ``config.json`` of checkpoint ``folder``, checked for format and version.

    Parameters
    ----------
    folder
        The checkpoint folder.
    format_name
        The expected ``"format"`` entry (single-fish :data:`FORMAT_NAME`; multi-fish has its own).
    version
        The newest format version this program reads.

    Returns
    -------
    dict
        The JSON object; raises :class:`~decoding.errors.CheckpointError` naming the file, what
        was expected and what was found when the folder, the file, the JSON or the format is wrong.
    """
    folder = Path(folder)
    if not folder.exists():
        raise CheckpointError(
            f"checkpoint {folder}: no such folder; train one with `python -m decoding train ... "
            f"--out {folder}`"
        )
    if not folder.is_dir():
        raise CheckpointError(
            f"checkpoint {folder}: expected a folder with {CONFIG_FILE} and "
            f"{WEIGHTS_FILE}, found a file"
        )
    cfg = folder / CONFIG_FILE
    if not cfg.is_file():
        raise CheckpointError(
            f"checkpoint {folder}: {CONFIG_FILE} is missing; not a checkpoint folder"
        )
    try:
        d = json.loads(cfg.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CheckpointError(
            f"checkpoint {cfg}: not valid JSON ({exc}); the file is corrupt"
        ) from exc
    if not isinstance(d, dict) or d.get("format") != format_name:
        raise CheckpointError(
            f"checkpoint {cfg}: expected format {format_name!r}, found "
            f"{d.get('format') if isinstance(d, dict) else type(d).__name__!r}"
        )
    if int(d.get("version", 0)) > version:
        raise CheckpointError(
            f"checkpoint {cfg}: format version {d.get('version')} is newer than this program "
            f"({version}); update nlp4neuro-explorer"
        )
    return d


def read_info(folder: str | os.PathLike) -> CheckpointInfo:
    """Read and validate ``config.json`` of a checkpoint folder (no weights loaded)."""
    folder = Path(folder)
    d = read_config(folder)
    cfg = folder / CONFIG_FILE
    try:
        info = CheckpointInfo.from_dict(d, folder)
    except (KeyError, TypeError, ValueError, DecodingError) as exc:
        raise CheckpointError(f"checkpoint {cfg}: missing or malformed field ({exc})") from exc
    if info.normalizer.size != info.n_neurons:
        raise CheckpointError(
            f"checkpoint {cfg}: normaliser has {info.normalizer.size} neurons, n_neurons is "
            f"{info.n_neurons}; the file is inconsistent"
        )
    return info


def load_checkpoint(
    folder: str | os.PathLike,
    *,
    n_neurons: int | None = None,
    device: str | torch.device = "cpu",
    recording: RecordingLike | None = None,
) -> tuple[Decoder | RidgeDecoder, CheckpointInfo]:
    """Rebuild the decoder of checkpoint ``folder``; returns ``(model, info)`` (model in eval mode).

    ``n_neurons`` (the recording's neuron count) is checked against the checkpoint when given.
    With ``recording``, its neuron count is checked and a
    :class:`~decoding.provenance.RecordingMismatchWarning` is issued when it is not the recording
    the checkpoint was trained on.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    info = read_info(folder)
    folder = Path(folder)
    if recording is not None:
        n_neurons = int(recording.n_neurons)
    if n_neurons is not None and n_neurons != info.n_neurons:
        raise CheckpointError(
            f"checkpoint {folder} was trained on {info.n_neurons} neurons but the recording has "
            f"{n_neurons}; use a checkpoint trained on this fish (python -m decoding train ...)"
        )
    wfile = folder / WEIGHTS_FILE
    if not wfile.is_file():
        raise CheckpointError(f"checkpoint {folder}: {WEIGHTS_FILE} is missing")
    try:
        tensors = load_file(str(wfile))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise CheckpointError(
            f"checkpoint {wfile}: cannot read the weights ({exc}); the file is corrupt"
        ) from exc
    try:
        model = build_decoder(info.decoder, n_neurons=info.n_neurons, n_outputs=info.n_outputs)
    except ModelError as exc:
        raise CheckpointError(f"checkpoint {folder}: cannot rebuild its backbone ({exc})") from exc
    expected = saved_state(model, info)
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(model.state_dict()))
    if missing or unexpected:
        raise CheckpointError(
            f"checkpoint {wfile}: tensors do not match the model ({len(missing)} missing, e.g. "
            f"{missing[:2]}; {len(unexpected)} unexpected, e.g. {unexpected[:2]}); the file is "
            "corrupt or from another version"
        )
    own = model.state_dict()
    for k, v in tensors.items():
        if own[k].shape != v.shape:
            raise CheckpointError(
                f"checkpoint {wfile}: tensor {k} has shape {tuple(v.shape)}, the model expects "
                f"{tuple(own[k].shape)}"
            )
    model.load_state_dict(tensors, strict=False)
    model.to(device)
    model.eval()
    if recording is not None:
        warn_if_other_recording(info.recording, recording)
    return model, info
