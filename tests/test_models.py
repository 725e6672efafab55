"""Decoder shapes, projection-once path, training modes, baselines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from decoding.backbones import resolve
from decoding.errors import ModelError
from decoding.models import Decoder, RidgeDecoder, build_decoder
from decoding.spec import DecoderSpec
from decoding.windows import batch_frames


def _decoder(backbone, *, n_neurons, n_outputs, device=None, base_dtype=None, **arch):
    """``build_decoder`` of the DecoderSpec with these architecture fields."""
    spec = DecoderSpec(backbone=backbone, **arch)
    return build_decoder(
        spec, n_neurons=n_neurons, n_outputs=n_outputs, device=device, base_dtype=base_dtype
    )


def _trainable(model) -> set[str]:
    return {n for n, p in model.named_parameters() if p.requires_grad}


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-gpt2", "tiny-llama", "lstm", "reservoir"])
def test_decoder_shapes_and_projection_once(name):
    torch.manual_seed(0)
    dec = _decoder(resolve(name, "random", hidden_size=16), n_neurons=12, n_outputs=3)
    dec.eval()
    frames = torch.randn(30, 12)
    starts = np.array([0, 3, 10])
    uniq, local = batch_frames(starts, 7)
    windows = frames[torch.from_numpy(uniq)][torch.from_numpy(local)]
    full = dec(windows)
    assert full.shape == (3, 7, 3)
    fast = dec.forward_frames(frames[torch.from_numpy(uniq)], torch.from_numpy(local))
    torch.testing.assert_close(fast, full)


def test_modes_choose_trainable_parameters():
    spec = resolve("tiny-bert")
    frozen = _trainable(_decoder(spec, n_neurons=5, n_outputs=2, mode="frozen"))
    assert frozen == {"proj.weight", "proj.bias", "head.weight", "head.bias"}
    full = _trainable(_decoder(spec, n_neurons=5, n_outputs=2, mode="full"))
    assert any(n.startswith("backbone.") for n in full)
    lora = _trainable(_decoder(spec, n_neurons=5, n_outputs=2, mode="lora"))
    bb = {n for n in lora if n.startswith("backbone.")}
    assert bb and all("lora_" in n for n in bb)
    with pytest.raises(ModelError, match="--mode"):
        _decoder(spec, n_neurons=5, n_outputs=2, mode="half")
    with pytest.raises(ModelError, match="lora-targets"):
        from decoding.models import LoraOptions

        _decoder(
            spec, n_neurons=5, n_outputs=2, mode="lora", lora=LoraOptions(targets=("nope",))
        )


def test_reservoir_trains_readout_only():
    dec = _decoder(resolve("reservoir", hidden_size=16), n_neurons=5, n_outputs=2)
    assert _trainable(dec) == {"head.weight", "head.bias"}


def test_lstm_is_one_layer_256_by_default():
    dec = _decoder(resolve("lstm"), n_neurons=5, n_outputs=2)
    assert isinstance(dec, Decoder)
    assert dec.backbone.lstm.hidden_size == 256 and dec.backbone.lstm.num_layers == 1


def test_ridge_closed_form_recovers_weights_and_picks_alpha():
    rng = np.random.default_rng(0)
    w = rng.normal(size=(8, 2))
    x = rng.normal(size=(300, 8))
    y = x @ w + 0.5
    model = RidgeDecoder(n_neurons=8, n_outputs=2)
    scores = model.fit_closed_form(x[:200], y[:200], x[200:], y[200:])
    assert min(scores, key=scores.get) == 0.01
    assert float(model.alpha) == pytest.approx(0.01)
    pred = model(torch.from_numpy(x[200:]).float()).detach().numpy()
    np.testing.assert_allclose(pred, y[200:], atol=1e-2)


def test_bad_sizes():
    with pytest.raises(ModelError, match="must be >= 1"):
        _decoder(resolve("lstm", hidden_size=4), n_neurons=0, n_outputs=2)


def test_ridge_context_sees_neighbouring_frames():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(400, 5))
    y = np.roll(x[:, :1], -1, axis=0) - 0.5 * x[:, :1]  # needs the next frame
    flat = RidgeDecoder(n_neurons=5, n_outputs=1)
    ctx = RidgeDecoder(n_neurons=5, n_outputs=1, context=1)
    s_flat = flat.fit_closed_form(x[:300], y[:300], x[300:399], y[300:399])
    s_ctx = ctx.fit_closed_form(x[:300], y[:300], x[300:399], y[300:399])
    assert min(s_ctx.values()) < 0.2 * min(s_flat.values())
    assert ctx(torch.zeros(7, 5)).shape == (7, 1) and ctx(torch.zeros(2, 7, 5)).shape == (2, 7, 1)


def test_temporal_stem_starts_as_identity_and_low_rank_projection():
    torch.manual_seed(0)
    spec = resolve("tiny-llama")
    plain = _decoder(spec, n_neurons=9, n_outputs=2)
    torch.manual_seed(0)
    stem = _decoder(resolve("tiny-llama"), n_neurons=9, n_outputs=2, temporal_kernel=3)
    x = torch.randn(2, 6, 9)
    plain.eval(), stem.eval()
    torch.testing.assert_close(plain(x), stem(x))
    low = _decoder(spec, n_neurons=9, n_outputs=2, proj_rank=4)
    assert low.proj.down.weight.shape == (4, 9) and low(x).shape == (2, 6, 2)


def test_bf16_base_with_float32_adapters_projection_and_head():
    """A LoRA base built in bf16 (what fit does on CUDA) keeps what trains in float32, runs under
    autocast, and returns to float32 (as fit returns it) with unchanged outputs."""
    spec = resolve("tiny-llama", "random")
    dec = _decoder(
        spec, n_neurons=30, n_outputs=2, mode="lora", device="cpu", base_dtype=torch.bfloat16
    )
    trainable = {p.dtype for p in dec.parameters() if p.requires_grad}
    frozen = {p.dtype for p in dec.backbone.parameters() if not p.requires_grad}
    assert trainable == {torch.float32} and frozen == {torch.bfloat16}
    x = torch.randn(2, 5, 30)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = dec(x)
    assert out.shape == (2, 5, 2) and torch.isfinite(out).all()
    dec.float()
    assert {p.dtype for p in dec.parameters()} == {torch.float32}
    torch.testing.assert_close(dec(x), out.float(), atol=0.05, rtol=0.05)
