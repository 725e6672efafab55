"""The decoder (projection -> backbone -> head) and the ridge baseline.

``Decoder`` maps a window of frames ``(B, S, N)`` to per-frame behaviour ``(B, S, K)``:
``Linear(N -> hidden)`` per frame, the backbone over the sequence (``inputs_embeds`` for
transformers), ``Linear(hidden -> K)`` at every frame. :meth:`Decoder.forward_frames` projects a set
of unique frames once and gathers windows from the projected frames, which saves the ``s``-fold
repeated projection of overlapping windows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from decoding.backbones import Backbone, BackboneSpec, HFBackbone, build_backbone
from decoding.errors import ModelError
from decoding.spec import MODES, DecoderSpec, LoraOptions

__all__ = ["MODES", "LoraOptions", "Decoder", "RidgeDecoder", "build_decoder"]

class LowRankLinear(nn.Module):
    """``Linear(N -> rank)`` (no bias) then ``Linear(rank -> hidden)``: a factorised projection."""

    def __init__(self, n_in: int, n_out: int, rank: int) -> None:
        super().__init__()
        self.down = nn.Linear(n_in, rank, bias=False)
        self.up = nn.Linear(rank, n_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(self.down(x))


class InputDropout(nn.Dropout):
    """``nn.Dropout`` on the neuron inputs, with a faster mask on the CPU.

    PyTorch's CPU dropout draws its mask with ``bernoulli_`` (about 3x the cost of ``rand``); on a
    ``(B*S, N)`` frame tensor that was ~50 ms of a ~700 ms MiniLM step. Here the CPU mask is
    ``rand >= p`` scaled by ``1 / (1 - p)``: the same distribution (each input kept with
    probability ``1 - p``), a different random stream. Other devices use the fused kernel. No
    parameters or buffers, so checkpoints are unchanged.
    """

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0 or x.device.type != "cpu" or self.inplace:
            return super().forward(x)
        mask = torch.rand_like(x).ge_(self.p).to(x.dtype).mul_(1.0 / (1.0 - self.p))
        return x * mask


class Decoder(nn.Module):
    """Linear(N -> hidden) per frame -> backbone -> Linear(hidden -> K) per frame."""

    def __init__(
        self,
        *,
        n_neurons: int,
        n_outputs: int,
        backbone: Backbone,
        input_dropout: float = 0.0,
        freeze_projection: bool = False,
        match_embedding_scale: bool = True,
        temporal_kernel: int = 0,
        proj_rank: int | None = None,
        proj_init: str = "default",
    ) -> None:
        super().__init__()
        if n_neurons < 1 or n_outputs < 1:
            raise ModelError(f"Decoder: n_neurons={n_neurons}, n_outputs={n_outputs} must be >= 1")
        self.n_neurons = n_neurons
        self.n_outputs = n_outputs
        hidden = backbone.hidden_size
        self.input_dropout = InputDropout(input_dropout) if input_dropout > 0 else nn.Identity()
        self.proj_rank = int(proj_rank) if proj_rank else None
        if self.proj_rank and not freeze_projection:
            self.proj: nn.Module = LowRankLinear(n_neurons, hidden, self.proj_rank)
        else:
            self.proj = nn.Linear(n_neurons, hidden)
        self.backbone = backbone
        self.head = nn.Linear(hidden, n_outputs)
        # With z-scored inputs the default Linear init gives projected frames a per-dimension std
        # of about 1/sqrt(3), far above a pretrained token embedding (MiniLM: 0.056), which drowns
        # the backbone's position embeddings. A fixed output scale brings frames to the token
        # scale while Adam's steps stay the same relative to the weights.
        emb_std = backbone.embedding_std() if match_embedding_scale else None
        scale = emb_std * 3**0.5 if emb_std and not freeze_projection else 1.0
        self.register_buffer("embed_scale", torch.tensor(float(scale)))
        self.temporal_kernel = int(temporal_kernel)
        if self.temporal_kernel > 1:
            if not isinstance(backbone, HFBackbone):
                raise ModelError("temporal_kernel applies to transformer backbones only")
            backbone.add_temporal_stem(self.temporal_kernel)
        self.proj_init = proj_init
        if proj_init == "zeros" and not freeze_projection:
            # The weights that read the neurons start at zero, so they stay in the span of the
            # training frames: no random component on neurons the data never ties to the output
            # (it would only add noise on new frames and in salience maps). A factorised
            # projection keeps its random second factor, so the first one still gets gradients.
            target = self.proj.down if isinstance(self.proj, LowRankLinear) else self.proj
            with torch.no_grad():
                target.weight.zero_()
                if target.bias is not None:
                    target.bias.zero_()
        elif proj_init not in ("default", "zeros"):  # a frozen reservoir keeps its random init
            raise ModelError(f"proj_init {proj_init!r}: expected default or zeros")
        if freeze_projection:  # reservoir: fixed random input weights
            with torch.no_grad():
                self.proj.weight.uniform_(-1.0, 1.0).mul_(3.0 / n_neurons**0.5)
                self.proj.bias.zero_()
            self.proj.requires_grad_(False)

    @property
    def input_weight(self) -> torch.Tensor | None:
        """``(rows, N)`` weights that read the neurons (the first factor of a factorised
        projection), or ``None`` for a frozen reservoir."""
        w = self.proj.down.weight if isinstance(self.proj, LowRankLinear) else self.proj.weight
        return w if w.requires_grad else None

    def project(self, frames: torch.Tensor) -> torch.Tensor:
        """``(..., N)`` -> ``(..., hidden)``."""
        return self.proj(self.input_dropout(frames)) * self.embed_scale

    def decode(self, emb: torch.Tensor) -> torch.Tensor:
        """Projected windows ``(B, S, hidden)`` -> ``(B, S, K)`` (= ``head(backbone(emb))``)."""
        return self.head(self.backbone(emb))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` ``(B, S, N)`` -> ``(B, S, K)``."""
        return self.decode(self.project(x))

    def forward_frames(self, frames: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        """Project ``frames (F, N)`` once, gather windows ``index`` ``(B, S)``: ``(B, S, K)``."""
        return self.decode(self.project(frames)[index])


class RidgeDecoder(nn.Module):
    """Closed-form ridge regression: ``y_t = W [x_{t-c}, ..., x_{t+c}] + b`` (alpha on validation).

    ``context = 0`` (the default baseline) is per frame; ``context = c`` also sees ``c`` frames on
    each side (edge frames repeated at the ends of a sequence), which can undo the calcium kernel.
    """

    def __init__(self, *, n_neurons: int, n_outputs: int, context: int = 0) -> None:
        super().__init__()
        self.n_neurons = n_neurons
        self.n_outputs = n_outputs
        self.context = int(context)
        self.linear = nn.Linear(n_neurons * (2 * self.context + 1), n_outputs)
        self.register_buffer("alpha", torch.tensor(1.0))

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """``(..., T, N)`` -> ``(..., T, (2c + 1) N)`` (neighbours within the given sequence)."""
        if self.context == 0:
            return x
        t = x.shape[-2]
        idx = torch.arange(t, device=x.device)
        parts = [
            x.index_select(-2, (idx + k).clamp(0, t - 1))
            for k in range(-self.context, self.context + 1)
        ]
        return torch.cat(parts, dim=-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``(T, N)`` or ``(B, S, N)`` -> per-frame predictions ``(..., K)``."""
        return self.linear(self.features(x))

    def forward_frames(self, frames: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
        return self.forward(frames[index])

    @torch.no_grad()
    def fit_closed_form(
        self,
        x_train: np.ndarray,
        y_train: np.ndarray,
        x_val: np.ndarray | None,
        y_val: np.ndarray | None,
        alphas: Sequence[float] = tuple(10.0**p for p in range(-2, 7)),
    ) -> dict[float, float]:
        """Fit on z-scored train frames; pick alpha by validation MSE (train MSE if no val).

        Uses the SVD of the centred design once for all alphas. Returns ``{alpha: val_mse}``.
        """
        if self.context:
            x_train = self.features(torch.as_tensor(x_train, dtype=torch.float32)).numpy()
            if x_val is not None and len(x_val):
                x_val = self.features(torch.as_tensor(x_val, dtype=torch.float32)).numpy()
        x = np.asarray(x_train, np.float64)
        y = np.asarray(y_train, np.float64)
        xm, ym = x.mean(0), y.mean(0)
        xc, yc = x - xm, y - ym
        # Dual (kernel) form: eigen-decompose the (T, T) Gram matrix once for every alpha.
        evals, u = np.linalg.eigh(xc @ xc.T)
        evals = np.clip(evals, 0.0, None)
        uty = u.T @ yc
        scores: dict[float, float] = {}
        best = None
        for a in alphas:
            w = xc.T @ (u @ (uty / (evals + a)[:, None]))  # (features, K)
            b = ym - xm @ w
            if x_val is not None and y_val is not None and len(x_val):
                pred = np.asarray(x_val, np.float64) @ w + b
                mse = float(((pred - y_val) ** 2).mean())
            else:
                mse = float((((x @ w + b) - y) ** 2).mean())
            scores[float(a)] = mse
            if best is None or mse < best[0]:
                best = (mse, a, w, b)
        assert best is not None
        _, a, w, b = best
        self.linear.weight.copy_(torch.from_numpy(w.T).float())
        self.linear.bias.copy_(torch.from_numpy(b).float())
        self.alpha.fill_(float(a))
        return scores


def apply_mode(
    decoder: Decoder, spec: BackboneSpec, mode: str, lora: LoraOptions | None = None
) -> Decoder:
    """Set which parameters train: ``frozen`` (projection + head), ``full`` or ``lora`` (PEFT)."""
    if mode not in MODES:
        raise ModelError(f"--mode {mode!r}: expected one of {', '.join(MODES)}")
    bb = decoder.backbone
    if spec.kind == "reservoir":
        bb.requires_grad_(False)
        return decoder
    if spec.kind == "lstm" or mode == "full":
        bb.requires_grad_(True)
        return decoder
    if mode == "frozen":
        bb.requires_grad_(False)
        if isinstance(bb, HFBackbone) and bb.temporal is not None:
            bb.temporal.requires_grad_(True)
        return decoder
    if not isinstance(bb, HFBackbone):
        raise ModelError(f"--mode lora needs a transformer backbone, not {spec.name}")
    try:
        from peft import LoraConfig, get_peft_model
    except ModuleNotFoundError as exc:  # pragma: no cover - peft is a requirement
        raise ModelError("--mode lora needs the peft package: pip install peft") from exc
    from decoding.backbones import LORA_TARGETS

    lora = lora or LoraOptions()
    targets = list(lora.targets) or list(LORA_TARGETS.get(spec.family, ()))
    if not targets:
        raise ModelError(
            f"--mode lora: no default target modules for the {spec.family!r} family; "
            "pass --lora-targets (e.g. q_proj,v_proj)"
        )
    cfg = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=targets,
        fan_in_fan_out=spec.family == "gpt2",
        bias="none",
    )
    try:
        bb.model = get_peft_model(bb.model, cfg)
    except ValueError as exc:
        raise ModelError(f"--lora-targets {','.join(targets)}: {exc}") from exc
    return decoder


def build_decoder(
    spec: DecoderSpec,
    *,
    n_neurons: int,
    n_outputs: int,
    device: torch.device | str | None = None,
    base_dtype: torch.dtype | None = None,
) -> Decoder | RidgeDecoder:
    """Build the decoder that ``spec`` describes (loads base weights) with its mode applied.

    Parameters
    ----------
    spec
        The decoder spec (:class:`~decoding.spec.DecoderSpec`).
    n_neurons, n_outputs
        Input neurons and behaviour channels.
    device
        Build every weight there (default the CPU).
    base_dtype
        The transformer base weights' dtype (e.g. bf16 for a frozen or LoRA base on a GPU);
        projection, head and LoRA adapters stay float32.

    Returns
    -------
    Decoder or RidgeDecoder
        The model, with ``spec.mode`` deciding which parameters train.
    """
    bspec = spec.backbone
    if bspec.kind == "ridge":
        return RidgeDecoder(n_neurons=n_neurons, n_outputs=n_outputs, context=spec.ridge_context)
    backbone = build_backbone(bspec, device=device, dtype=base_dtype)
    with torch.device(device or "cpu"):
        dec = Decoder(
            n_neurons=n_neurons,
            n_outputs=n_outputs,
            backbone=backbone,
            input_dropout=spec.input_dropout,
            freeze_projection=bspec.kind == "reservoir",
            temporal_kernel=spec.temporal_kernel,
            proj_rank=spec.proj_rank,
            proj_init=spec.proj_init,
        )
        return apply_mode(dec, bspec, spec.mode, spec.lora)
