"""The decoder spec and the training options: one description, flags generated from it.

Round trips (config -> command line -> config; checkpoint info -> config.json -> info), the
``config.json`` layout every existing checkpoint has, and the old keyword forms that
``decoding.multifish`` still uses.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import numpy as np
import pytest

from decoding.backbones import resolve
from decoding.checkpoint import CheckpointInfo
from decoding.cli import build_parser
from decoding.errors import DecodingError
from decoding.models import RidgeDecoder, build_decoder
from decoding.spec import DecoderSpec, LoraOptions, TrainConfig, flag_fields, flag_of
from decoding.windows import Normalizer

DEMO_CONFIG = Path(__file__).resolve().parents[1] / "assets" / "demo_checkpoint" / "config.json"


def _parse(argv: list[str]) -> TrainConfig:
    args = build_parser().parse_args(["train", "--recording", "f.h5", "--out", "o", *argv])
    return TrainConfig.from_options(vars(args))


CHANGED = [
    TrainConfig(),
    TrainConfig(backbone="minilm", init="random", mode="lora", lora_targets=("q_proj", "v_proj"),
                lora_r=4, seed=3, device="cpu"),  # fmt: skip
    TrainConfig(proj_rank=None, temporal_kernel=0, split=(0.6, 0.2, 0.2), max_time_s=12.5,
                project_once=False, grad_checkpointing=True, trust_remote_code=True),  # fmt: skip
    TrainConfig(backbone="ridge", ridge_context=3, normalization="frame", warmup_frac=0.0,
                schedule="constant", train_stride=4, eval_stride=2, eval_every=10,
                input_moment="element", proj_init="default", hidden_size=64),  # fmt: skip
]


@pytest.mark.parametrize("config", CHANGED)
@pytest.mark.parametrize("only_changed", [True, False])
def test_config_to_argv_and_back_is_the_same_config(config, only_changed):
    argv = config.to_argv(only_changed=only_changed)
    assert all(isinstance(a, str) for a in argv)
    assert _parse(argv) == config


def test_flag_defaults_are_the_config_defaults_and_every_field_has_a_flag():
    assert _parse([]) == TrainConfig()
    assert TrainConfig().to_argv() == []
    flags = [flag_of(f) for f in flag_fields()]
    assert len(set(flags)) == len(fields(TrainConfig))
    assert {"--warmup", "--max-time", "--batch-size", "--lora-targets"} <= set(flags)
    assert all(f.metadata["help"] for f in flag_fields())


def test_cli_conventions_kept():
    c = _parse(["--proj-rank", "0", "--lora-targets", "a,b", "--split", "0.5", "0.25", "0.25"])
    assert c.proj_rank is None and c.lora_targets == ("a", "b") and c.split == (0.5, 0.25, 0.25)
    assert "--proj-rank" in TrainConfig(proj_rank=None).to_argv()


def test_a_bad_choice_names_the_flag():
    with pytest.raises(DecodingError, match=r"--schedule 'linear': expected one of cosine"):
        TrainConfig(schedule="linear")


def test_decoder_spec_takes_the_configs_fields_and_what_the_backbone_uses():
    config = TrainConfig(backbone="ridge", ridge_context=2, temporal_kernel=5, window=7)
    spec = config.decoder_spec()
    assert spec.backbone.kind == "ridge" and spec.ridge_context == 2
    assert spec.window == 5 and spec.temporal_kernel == 0 and spec.mode == "frozen"
    tiny = TrainConfig(backbone="tiny-bert", mode="lora", lora_r=2, proj_rank=0)
    spec = tiny.decoder_spec()
    assert spec.mode == "lora" and spec.lora == LoraOptions(2, 16, 0.05, ())
    assert spec.proj_rank is None and spec.temporal_kernel == 3 and spec.ridge_context == 0


def _info(**over) -> CheckpointInfo:
    kw = dict(
        decoder=DecoderSpec(backbone=resolve("ridge"), ridge_context=1, input_dropout=0.1),
        n_neurons=3,
        n_outputs=2,
        behavior_names=["a", "b"],
        normalizer=Normalizer(mean=np.zeros(3, np.float32), std=np.ones(3, np.float32)),
        target_normalizer=Normalizer(mean=np.ones(2, np.float32), std=np.ones(2, np.float32)),
        split_fractions=(0.5, 0.25, 0.25),
        fish_id="f",
        metrics={"test": {"rmse": 1.0}},
    )
    return CheckpointInfo(**(kw | over))


def test_info_round_trips_through_json():
    info = _info()
    d = json.loads(json.dumps(info.to_dict()))
    back = CheckpointInfo.from_dict(d)
    assert back.decoder == info.decoder
    assert back.to_dict() == info.to_dict()
    assert (back.window, back.spec.kind, back.input_dropout) == (3, "ridge", 0.1)


def test_the_written_layout_is_the_one_existing_checkpoints_have():
    old = json.loads(DEMO_CONFIG.read_text(encoding="utf-8"))  # written before DecoderSpec
    info = CheckpointInfo.from_dict(old)
    assert set(info.to_dict()) == set(old)
    again = json.loads(json.dumps(info.to_dict()))
    for key in old:
        assert again[key] == old[key], key


def test_the_architecture_fields_read_and_relabel_through_the_info():
    info = _info()
    want = DecoderSpec(backbone=resolve("ridge"), ridge_context=1, input_dropout=0.1)
    assert info.decoder == want
    info.decoder = DecoderSpec(backbone=resolve("tiny-bert"), mode="full", temporal_kernel=3)
    info.mode, info.temporal_kernel = "transfer", 0  # multi-fish transfer relabels a fish's info
    assert (info.decoder.mode, info.mode, info.decoder.temporal_kernel) == ("transfer",) * 2 + (0,)
    spec = DecoderSpec(backbone=resolve("ridge"), ridge_context=2)
    model = build_decoder(spec, n_neurons=3, n_outputs=2)
    assert isinstance(model, RidgeDecoder) and model.context == 2
    with pytest.raises(TypeError):  # one description: no architecture keywords beside the spec
        build_decoder(info.decoder, n_neurons=3, n_outputs=2, mode="full")


def test_the_dashboards_job_command_is_the_configs_argv():
    from dashboard.views.jobs_view import finetune_config

    form = {"backbone": "tiny-bert", "init": "random", "mode": "lora", "window": 5, "epochs": 1,
            "lr": 3e-4, "max_time": 45, "name": "x"}  # fmt: skip
    config = finetune_config(form, "cpu")
    parsed = _parse(config.to_argv())
    assert parsed == config
    assert (parsed.backbone, parsed.mode, parsed.window, parsed.max_time_s) == (
        "tiny-bert", "lora", 5, 45)  # fmt: skip
    assert finetune_config(form | {"max_time": 0}, "auto").max_time_s is None


def test_a_recording_meets_the_contracts_training_reads(small_recording):
    import threading

    from decoding.protocols import EventLike, FrameSource, TrainingRecording

    assert isinstance(small_recording, TrainingRecording)
    assert isinstance(small_recording, FrameSource)
    assert isinstance(threading.Event(), EventLike) and not isinstance(lambda: True, EventLike)


def test_read_config_names_the_expected_format_and_version(tmp_path):
    from decoding.checkpoint import read_config
    from decoding.errors import CheckpointError

    (tmp_path / "config.json").write_text(json.dumps({"format": "other", "version": 1}))
    assert read_config(tmp_path, "other", 1) == {"format": "other", "version": 1}
    with pytest.raises(CheckpointError, match=r"config.json: expected format 'nlp4neuro-multi"):
        read_config(tmp_path, "nlp4neuro-multifish", 1)
    (tmp_path / "config.json").write_text(json.dumps({"format": "other", "version": 3}))
    with pytest.raises(CheckpointError, match=r"format version 3 is newer than this program \(2\)"):
        read_config(tmp_path, "other", 2)
