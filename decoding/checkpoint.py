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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from decoding.backbones import BackboneSpec
from decoding.errors import CheckpointError, DecodingError, ModelError
from decoding.io_utils import atomic_write_dir
from decoding.models import Decoder, LoraOptions, RidgeDecoder, build_decoder
from decoding.provenance import RecordingLike, warn_if_other_recording
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


@dataclass
class CheckpointInfo:
    """Everything needed to rebuild and apply a trained decoder (the ``config.json`` content)."""

    spec: BackboneSpec
    mode: str
    window: int
    n_neurons: int
    n_outputs: int
    behavior_names: list[str]
    normalizer: Normalizer  # per-neuron z-score of the activity (fitted on training frames)
    target_normalizer: Normalizer  # per-channel z-score of the behaviour (training frames)
    split_fractions: tuple[float, float, float] = (0.7, 0.1, 0.2)
    stride: int = 1  # inference window stride
    behavior_units: list[str] = field(default_factory=list)
    lora: LoraOptions = field(default_factory=LoraOptions)
    input_dropout: float = 0.0
    fish_id: str = ""
    n_frames: int = 0  # frames of the training recording
    train_config: dict[str, Any] = field(default_factory=dict)
    history: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    versions: dict[str, str] = field(default_factory=dict)
    created: str = ""
    cancelled: bool = False
    normalization: str = "neuron"  # "neuron" (z-score per neuron) or "frame" (study's scaling)
    temporal_kernel: int = 0  # depthwise temporal conv over projected frames (0 = none)
    proj_rank: int | None = None  # low-rank N -> rank -> hidden projection (None = full Linear)
    proj_init: str = "default"
    ridge_context: int = 0  # ridge baseline: frames of context on each side
    recording: dict[str, Any] = field(default_factory=dict)  # provenance.recording_fingerprint
    path: Path | None = None

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
        return {
            "format": FORMAT_NAME,
            "version": FORMAT_VERSION,
            "backbone": self.spec.to_dict(),
            "mode": self.mode,
            "lora": self.lora.to_dict(),
            "window": self.window,
            "stride": self.stride,
            "input_dropout": self.input_dropout,
            "n_neurons": self.n_neurons,
            "n_outputs": self.n_outputs,
            "behavior_names": list(self.behavior_names),
            "behavior_units": list(self.behavior_units),
            "split_fractions": list(self.split_fractions),
            "fish_id": self.fish_id,
            "n_frames": self.n_frames,
            "normalizer": self.normalizer.to_dict(),
            "target_normalizer": self.target_normalizer.to_dict(),
            "train_config": self.train_config,
            "history": self.history,
            "metrics": self.metrics,
            "versions": self.versions,
            "created": self.created,
            "cancelled": self.cancelled,
            "normalization": self.normalization,
            "temporal_kernel": self.temporal_kernel,
            "proj_rank": self.proj_rank,
            "proj_init": self.proj_init,
            "ridge_context": self.ridge_context,
            "recording": self.recording,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], path: Path | None = None) -> CheckpointInfo:
        return cls(
            spec=BackboneSpec.from_dict(d["backbone"]),
            mode=str(d["mode"]),
            window=int(d["window"]),
            n_neurons=int(d["n_neurons"]),
            n_outputs=int(d["n_outputs"]),
            behavior_names=[str(n) for n in d["behavior_names"]],
            normalizer=Normalizer.from_dict(d["normalizer"]),
            target_normalizer=Normalizer.from_dict(d["target_normalizer"]),
            split_fractions=tuple(float(f) for f in d.get("split_fractions", (0.7, 0.1, 0.2))),
            stride=int(d.get("stride", 1)),
            behavior_units=[str(u) for u in d.get("behavior_units", [])],
            lora=LoraOptions.from_dict(d.get("lora")),
            input_dropout=float(d.get("input_dropout", 0.0)),
            fish_id=str(d.get("fish_id", "")),
            n_frames=int(d.get("n_frames", 0)),
            train_config=dict(d.get("train_config", {})),
            history=list(d.get("history", [])),
            metrics=dict(d.get("metrics", {})),
            versions=dict(d.get("versions", {})),
            created=str(d.get("created", "")),
            cancelled=bool(d.get("cancelled", False)),
            normalization=str(d.get("normalization", "neuron")),
            temporal_kernel=int(d.get("temporal_kernel", 0)),
            proj_rank=int(d["proj_rank"]) if d.get("proj_rank") else None,
            proj_init=str(d.get("proj_init", "default")),
            ridge_context=int(d.get("ridge_context", 0)),
            recording=dict(d.get("recording") or {}),
            path=path,
        )


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
        model = build_decoder(
            info.spec,
            n_neurons=info.n_neurons,
            n_outputs=info.n_outputs,
            mode=info.mode,
            lora=info.lora,
            input_dropout=info.input_dropout,
            temporal_kernel=info.temporal_kernel,
            proj_rank=info.proj_rank,
            ridge_context=info.ridge_context,
        )
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
