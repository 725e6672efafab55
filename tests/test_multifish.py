"""Multi-fish decoding: shared backbone, per-fish projections, checkpoints, transfer, CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from decoding.backbones import resolve
from decoding.checkpoint import load_checkpoint
from decoding.cli import main
from decoding.errors import CheckpointError, RecordingError
from decoding.multifish import (
    MultiFishDecoder,
    check_compatible,
    fit_multifish,
    is_multifish_checkpoint,
    load_multifish,
    pooled_normalizer,
    ridge_init,
    save_multifish,
    transfer_fish,
)
from decoding.recording import load_recording
from decoding.train import TrainConfig, evaluate, predict
from decoding.windows import Normalizer

TINY = dict(backbone="tiny-llama", window=8, epochs=2, batch_size=8, device="cpu")
TINY_ARGS = ["--backbone", "tiny-llama", "--window", "8", "--epochs", "2", "--batch-size", "8"]


@pytest.fixture(scope="module")
def fish():
    from decoding.synthetic import make_multifish_demo

    return make_multifish_demo(n_fish=4, n_neurons=300, n_frames=240, seed=0)


@pytest.fixture(scope="module")
def trained(fish):
    return fit_multifish(fish[:3], TrainConfig(**TINY))


@pytest.fixture(scope="module")
def fish_files(fish, tmp_path_factory):
    folder = tmp_path_factory.mktemp("multi")
    paths = []
    for i, rec in enumerate(fish):
        path = folder / f"fish_{i}.h5"
        rec.save(path)
        paths.append(path)
    return paths


def test_demo_fish_differ_and_share_driver_regions(fish):
    counts = [r.n_neurons for r in fish]
    assert len(set(counts)) == len(counts)
    roles = [set(r.ground_truth.role) for r in fish]
    assert "private_driver" in roles[1] and all(
        "private_driver" not in r for r in roles[:1] + roles[2:]
    )
    private = fish[1].regions[fish[1].ground_truth.role == "private_driver"]
    assert set(private) == {"Cb_L"}
    assert all(
        fish[1].ground_truth.driver_weight[fish[1].ground_truth.role == "private_driver"].any(1)
    )


def test_views_share_backbone_and_head_but_not_projection(trained, fish):
    model = trained.model
    a, b = model.view(0), model.view(fish[1].fish_id)
    assert a.backbone is b.backbone and a.head is b.head and a.proj is not b.proj
    assert a.n_neurons == fish[0].n_neurons and b.n_neurons == fish[1].n_neurons
    n_params = sum(p.numel() for p in model.parameters())
    shared = sum(p.numel() for p in a.backbone.parameters()) + sum(
        p.numel() for p in a.head.parameters()
    )
    projections = sum(sum(p.numel() for p in v.proj.parameters()) for v in model.views)
    assert n_params == shared + projections  # nothing counted twice, nothing missing


def test_training_uses_each_fish_own_split_and_training_only_normalisation(trained, fish):
    for rec, info in zip(fish[:3], trained.infos, strict=True):
        train = info.split_for(rec.n_frames).train
        x = np.asarray(rec.activity[train.start : train.stop], np.float64)
        np.testing.assert_allclose(info.normalizer.mean, x.mean(0), rtol=1e-4, atol=1e-5)
        assert info.recording["content"] and info.recording["fish_id"] == rec.fish_id
        assert info.metrics["test"]["rmse"] > 0 and info.metrics["val"]["n_frames"] > 0
        assert len(info.history) == len(trained.history) >= 1
    assert trained.metrics["best_epoch"] >= 1


def test_mixed_batches_give_each_fish_its_own_projection(fish):
    torch.manual_seed(0)
    model = MultiFishDecoder.build(
        resolve("tiny-llama"),
        fish=[(r.fish_id, r.n_neurons) for r in fish[:2]],
        n_outputs=6,
        config=TrainConfig(**TINY, proj_init="default"),
    ).eval()
    xa, xb = torch.randn(12, fish[0].n_neurons), torch.randn(10, fish[1].n_neurons)
    ia, ib = torch.arange(8)[None], torch.arange(2, 10)[None]
    mixed = model.forward_mixed([(0, xa, ia), (1, xb, ib)])
    with torch.no_grad():
        alone_a = model.view(0).forward_frames(xa, ia)
        alone_b = model.view(1).forward_frames(xb, ib)
    torch.testing.assert_close(mixed[0], alone_a, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(mixed[1], alone_b, rtol=1e-4, atol=1e-5)


def test_checkpoint_round_trip_safetensors_and_json(trained, fish, tmp_path):
    out = save_multifish(trained, tmp_path / "multi")
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors"]
    doc = json.loads((out / "config.json").read_text())
    assert doc["format"] == "nlp4neuro-multifish" and len(doc["fish"]) == 3
    assert [f["recording"]["content"] for f in doc["fish"]] == [
        i.recording["content"] for i in trained.infos
    ]
    assert is_multifish_checkpoint(out)
    back = load_multifish(out)
    assert back.input_regions == trained.input_regions and len(back.input_regions) == 3
    for i, rec in enumerate(fish[:3]):
        a = predict(trained.model.views[i], trained.infos[i], rec, 200, 240)
        b = predict(back.model.views[i], back.infos[i], rec, 200, 240)
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_corrupt_or_single_fish_checkpoint_is_refused(trained, tmp_path, small_recording_path):
    out = save_multifish(trained, tmp_path / "multi")
    (out / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(CheckpointError, match="cannot read the weights"):
        load_multifish(out)
    (out / "config.json").write_text('{"format": "nlp4neuro-checkpoint"}')
    with pytest.raises(CheckpointError, match="expected format 'nlp4neuro-multifish'"):
        load_multifish(out)


def test_incompatible_recordings_are_refused(fish):
    from decoding.synthetic import make_demo_fish

    fast = make_demo_fish(n_neurons=300, n_frames=240, variant="fast")
    with pytest.raises(RecordingError, match=r"different frame rates \(1.1 Hz vs 3 Hz\)"):
        check_compatible([fish[0], fast])
    other = make_demo_fish(n_neurons=300, n_frames=240, seed=5)
    other.atlas = "zbrain"
    with pytest.raises(RecordingError, match="different atlases"):
        check_compatible([fish[0], other])
    other = make_demo_fish(n_neurons=300, n_frames=240, seed=5)
    other.behavior_names = ["a", "b", "c", "d", "e", "f"]
    with pytest.raises(RecordingError, match="different behaviour channels"):
        check_compatible([fish[0], other])


def test_transfer_learns_only_the_new_projection(trained, fish):
    before = {n: p.detach().clone() for n, p in trained.model.named_parameters() if "views.0" in n}
    preds_before = predict(trained.model.views[0], trained.infos[0], fish[0], 200, 240)
    res = transfer_fish(
        trained.model, trained.infos, fish[3], TrainConfig(**TINY), train_fraction=0.5
    )
    new = res.infos[-1]
    assert res.model.fish_ids[-1] == fish[3].fish_id and len(res.infos) == 4
    split = new.split_for(fish[3].n_frames)
    used = range(split.train.start, split.train.start + round(len(split.train) * 0.5))
    x = np.asarray(fish[3].activity[used.start : used.stop], np.float64)
    np.testing.assert_allclose(new.normalizer.mean, x.mean(0), rtol=1e-4, atol=1e-5)
    assert new.metrics["test"]["rmse"] > 0
    for n, p in res.model.named_parameters():
        if n in before:
            torch.testing.assert_close(p, before[n])
    after = predict(res.model.views[0], res.infos[0], fish[0], 200, 240)
    np.testing.assert_allclose(preds_before, after, rtol=1e-5, atol=1e-7)
    # the shared head's behaviour units: the model's fish's normaliser, pooled
    pooled = pooled_normalizer([i.target_normalizer for i in trained.infos[:3]])
    np.testing.assert_allclose(new.target_normalizer.std, pooled.std)
    assert new.train_config["transfer"]["target_normalizer"] == "pooled"
    assert res.metrics["prior"] == "none"  # no region energies given: every neuron alike


def test_transfer_restarts_keep_the_run_with_the_lowest_validation_loss(fish):
    base = fit_multifish(fish[:2], TrainConfig(**TINY))
    done = []
    res = transfer_fish(
        base.model, base.infos, fish[3], TrainConfig(**TINY), train_fraction=0.5, restarts=3,
        callback=lambda p: done.append(p.val_loss) if p.kind == "done" else None,
    )  # fmt: skip
    new = res.infos[-1]
    assert len(done) == 3 and res.metrics["restarts"] == 3
    assert res.metrics["restart"] == int(np.argmin(done)) == new.metrics["restart"]
    assert res.metrics["best_val_loss"] == min(done)
    again = evaluate(res.model.views[-1], new, fish[3], part="test").to_dict()
    assert again["rmse"] == pytest.approx(new.metrics["test"]["rmse"], rel=1e-5)
    assert new.train_config["transfer"]["up"] == "fish"
    with pytest.raises(Exception, match="transfer up"):
        transfer_fish(base.model, base.infos, fish[2], TrainConfig(**TINY), up="nope")


def test_pooled_normalizer_is_the_mixture_of_equal_parts():
    rng = np.random.default_rng(0)
    parts = [rng.normal(m, s, size=(500, 2)) for m, s in ((0.0, 1.0), (3.0, 0.5), (-1.0, 2.0))]
    pooled = pooled_normalizer([Normalizer.fit(x) for x in parts])
    every = np.concatenate(parts)
    np.testing.assert_allclose(pooled.mean, every.mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(pooled.std, every.std(0), rtol=1e-5)


def test_ridge_init_reads_recent_behaviour_from_the_neurons(trained, fish):
    from decoding.models import RidgeDecoder

    model = MultiFishDecoder.build(
        resolve("tiny-llama"), fish=[("a", 50)], n_outputs=2, config=TrainConfig(**TINY)
    )
    rng = np.random.default_rng(1)
    y = rng.normal(size=(300, 2)).astype(np.float32)
    x = rng.normal(size=(300, 50)).astype(np.float32)
    x[1:, :2] += 3 * y[:-1]  # neurons 0 and 1 carry the behaviour one frame earlier
    ridge_init(model.views[0], torch.from_numpy(x), torch.from_numpy(y), range(0, 250),
               range(250, 300), n_lags=2)  # fmt: skip
    w = model.views[0].proj.down.weight.detach().numpy()
    assert np.all(w[4:] == 0) and np.abs(np.diag(w[2:4, :2])).min() > 5 * np.abs(w[2:4, 2:]).max()
    ref = RidgeDecoder(n_neurons=50, n_outputs=4)
    yy = np.concatenate([y[1:], y[:-1]], axis=1)
    ref.fit_closed_form(x[1:250], yy[:249], x[251:], yy[250:])
    np.testing.assert_allclose(w[:4], ref.linear.weight.detach().numpy(), rtol=1e-4, atol=1e-5)


def test_each_fish_is_refined_alone_and_keeps_its_best_validation_epoch(fish):
    res = fit_multifish(fish[:2], TrainConfig(**(TINY | {"epochs": 4})))
    for info in res.infos:
        refine = [h for h in info.history if h.get("phase") == "refine"]
        joint = [h for h in info.history if "phase" not in h]
        assert len(joint) >= 1 and 1 <= len(refine) <= 1  # epochs // 4 = 1 refinement epoch
        best = info.metrics["refine_best_epoch"]
        assert best in (0, 1)
        joint_best = joint[res.metrics["best_epoch"] - 1]["val_loss_fish"]
        if best == 1:  # kept only when its own validation loss beat the joint model's
            assert refine[0]["val_loss_fish"] < joint_best
        else:
            assert refine[0]["val_loss_fish"] >= joint_best
    assert any(p.requires_grad for p in res.model.backbone.parameters())  # as before refining


def test_best_epoch_weighs_every_fish_relative_improvement_equally():
    from decoding.multifish import _pooled_val_loss

    # fish a halves its loss, fish b's (ten times larger) grows by a third: better overall
    assert _pooled_val_loss([0.05, 1.33]) < _pooled_val_loss([0.1, 1.0])
    assert np.isnan(_pooled_val_loss([0.1, float("nan")]))


# ---------------------------------------------------------------------------------- CLI
@pytest.fixture(scope="module")
def cli_checkpoint(fish_files, tmp_path_factory):
    out = tmp_path_factory.mktemp("cli_multi") / "ck"
    args = ["train", "--recording", *map(str, fish_files[:3]), "--out", str(out)]
    assert main([*args, *TINY_ARGS, "--quiet", "--device", "cpu"]) == 0
    return out


def test_cli_train_several_recordings_then_evaluate_each_fish(cli_checkpoint, fish_files, capsys):
    for i, path in enumerate(fish_files[:3]):
        args = ["evaluate", "--recording", str(path), "--checkpoint", str(cli_checkpoint)]
        assert main([*args, "--json", "--device", "cpu"]) == 0
        d = json.loads(capsys.readouterr().out)
        stored = load_multifish(cli_checkpoint).infos[i].metrics["test"]["rmse"]
        assert d["rmse"] == pytest.approx(stored, rel=1e-5)


def test_cli_predict_with_fish_and_wrong_fish(cli_checkpoint, fish_files, tmp_path, capsys):
    out = tmp_path / "p.csv"
    args = ["predict", "--recording", str(fish_files[1]), "--checkpoint", str(cli_checkpoint)]
    assert main([*args, "--fish", "1", "--out", str(out), "--device", "cpu"]) == 0
    assert out.is_file()
    assert main([*args, "--fish", "0", "--out", str(out), "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "choose its own --fish" in err
    args = ["evaluate", "--recording", str(fish_files[3]), "--checkpoint", str(cli_checkpoint)]
    assert main(args) == 2
    assert "none of this model's fish" in capsys.readouterr().err


def test_cli_train_refuses_mixed_frame_rates_in_one_line(fish_files, tmp_path, capsys):
    from decoding.synthetic import make_demo_fish

    fast = tmp_path / "fast.h5"
    make_demo_fish(n_neurons=300, n_frames=240, variant="fast").save(fast)
    args = ["train", "--recording", str(fish_files[0]), str(fast), "--out", str(tmp_path / "x")]
    assert main([*args, *TINY_ARGS]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: recordings ") and err.count("\n") == 1
    assert str(fish_files[0]) in err and str(fast) in err and "frame rates" in err
    assert not (tmp_path / "x").exists()


def test_cli_transfer_and_folder_glob(cli_checkpoint, fish_files, tmp_path, capsys):
    out = tmp_path / "plus"
    args = ["transfer", "--checkpoint", str(cli_checkpoint), "--recording", str(fish_files[3])]
    rest = ["--train-fraction", "0.3", "--out", str(out), "--epochs", "1", "--quiet"]
    assert main([*args, *rest, "--device", "cpu", "--restarts", "2"]) == 0
    assert "of 2 kept; prior: regions)" in capsys.readouterr().out
    plus = load_multifish(out)
    assert plus.model.fish_ids[-1] == "multi0_fish3"
    assert plus.infos[-1].train_config["transfer"]["restarts"] == 2
    assert main([*args, *rest, "--device", "cpu", "--restarts", "0"]) == 2
    assert "--restarts must be at least 1" in capsys.readouterr().err
    assert main([*args, *rest, "--device", "cpu", "--prior-strength", "-1"]) == 2
    assert "--prior-strength must be a number >= 0" in capsys.readouterr().err
    folder = fish_files[0].parent
    from decoding.cli.multifish import expand_recordings

    assert expand_recordings([str(folder)]) == [str(p) for p in fish_files]
    assert expand_recordings([str(folder / "fish_[01].h5")]) == [str(p) for p in fish_files[:2]]
    with pytest.raises(RecordingError, match="no file matches"):
        expand_recordings([str(folder / "nope*.h5")])


def test_cli_demo_data_fish(tmp_path, capsys):
    out = tmp_path / "many"
    assert (
        main(["demo-data", "--out", str(out), "--fish", "3", "--neurons", "200", "--frames", "120"])
        == 0
    )
    assert sorted(p.name for p in out.iterdir()) == ["fish_0.h5", "fish_1.h5", "fish_2.h5"]
    assert "private driver region (Cb_L)" in capsys.readouterr().out
    assert main(["demo-data", "--out", str(out), "--fish", "3", "--neurons", "200"]) == 2
    assert "already exists" in capsys.readouterr().err


def test_single_fish_evaluate_is_unchanged_and_fish_flag_refused(
    small_recording_path, tmp_path, capsys
):
    out = tmp_path / "one"
    args = ["train", "--recording", str(small_recording_path), "--out", str(out)]
    assert main([*args, *TINY_ARGS, "--quiet", "--device", "cpu"]) == 0
    assert (out / "config.json").is_file() and not is_multifish_checkpoint(out)
    ev = ["evaluate", "--recording", str(small_recording_path), "--checkpoint", str(out)]
    assert main([*ev, "--fish", "0"]) == 2
    assert "single-fish checkpoint" in capsys.readouterr().err
    model, info = load_checkpoint(out)
    assert evaluate(model, info, load_recording(small_recording_path)).rmse > 0


def test_lora_transfer_trains_adapters_and_round_trips(fish, tmp_path):
    res = fit_multifish(fish[:2], TrainConfig(**{**TINY, "epochs": 1}))
    shared_before = sum(p.numel() for p in res.model.backbone.parameters())
    tr = transfer_fish(
        res.model, res.infos, fish[3], TrainConfig(**{**TINY, "epochs": 1}), lora=True
    )
    trainable = [n for n, p in tr.model.named_parameters() if p.requires_grad]
    assert any("lora_" in n for n in trainable) and any("views.2.proj" in n for n in trainable)
    assert not any("views.0.proj" in n or "head" in n for n in trainable)
    assert sum(p.numel() for p in tr.model.backbone.parameters()) > shared_before
    back = load_multifish(save_multifish(tr, tmp_path / "lora"))
    assert back.infos[-1].mode == "lora"
    a = predict(tr.model.views[2], tr.infos[2], fish[3], 200, 240)
    b = predict(back.model.views[2], back.infos[2], fish[3], 200, 240)
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)


def test_region_prior_transfer_folds_its_scale_into_a_z_scored_fish(fish, tmp_path):
    from decoding.anatomy import neuron_regions
    from decoding.region_prior import prior_scale

    base = fit_multifish(fish[:2], TrainConfig(**TINY))
    regions = base.input_regions
    assert set(regions) == {r.fish_id for r in fish[:2]}
    assert all(regions[r.fish_id] for r in fish[:2])
    res = transfer_fish(
        base.model, base.infos, fish[3], TrainConfig(**TINY), train_fraction=0.5,
        restarts=1, input_regions=regions,
    )  # fmt: skip
    new = res.infos[-1]
    assert res.metrics["prior"] == "regions" == new.train_config["transfer"]["prior"]
    # the saved fish reads z-scored activity: the scale is in its weights, not its normaliser
    split = new.split_for(fish[3].n_frames)
    used = range(split.train.start, split.train.start + round(len(split.train) * 0.5))
    x = np.asarray(fish[3].activity[used.start : used.stop], np.float64)
    np.testing.assert_allclose(new.normalizer.std, x.std(0), rtol=1e-3, atol=1e-5)
    again = evaluate(res.model.views[-1], new, fish[3], part="test").to_dict()
    assert again["rmse"] == pytest.approx(new.metrics["test"]["rmse"], rel=1e-5)
    scale = prior_scale(list(regions.values()), neuron_regions(fish[3]))
    assert scale.min() < 1 < scale.max()  # the drivers' regions are read more strongly
    assert set(res.input_regions) == {*regions, fish[3].fish_id}
    back = load_multifish(save_multifish(res, tmp_path / "plus"))
    assert back.input_regions == res.input_regions


def test_transfer_is_the_same_in_every_process_after_a_load(fish, tmp_path):
    folder = save_multifish(fit_multifish(fish[:2], TrainConfig(**TINY)), tmp_path / "multi")
    weights = []
    for draw in (1, 2):
        torch.manual_seed(draw)  # a fresh process: the unsaved token table is another draw
        back = load_multifish(folder)
        res = transfer_fish(
            back.model, back.infos, fish[3], TrainConfig(**TINY), restarts=1, prior="none"
        )
        assert res.model.views[-1].embed_scale == back.model.views[0].embed_scale
        weights.append(res.model.views[-1].proj.down.weight.detach().clone())
    torch.testing.assert_close(weights[0], weights[1], rtol=0, atol=0)


def test_pooled_joint_windows_keep_an_epoch_at_one_fish_s_cost(fish):
    from decoding.multifish import _Loop, _prepare
    from decoding.train import auto_train_stride

    cfg = TrainConfig(**TINY, joint_windows="pooled")
    spec = cfg.backbone_spec()
    prepared = {i: _prepare(r, cfg, spec, torch.device("cpu"), 1.0) for i, r in enumerate(fish[:3])}
    model = MultiFishDecoder.build(
        spec, fish=[(r.fish_id, r.n_neurons) for r in fish[:3]], n_outputs=6, config=cfg
    )
    pooled, alone = _Loop(model, prepared, cfg, torch.device("cpu")), _Loop(
        model, prepared, TrainConfig(**TINY), torch.device("cpu")
    )
    total = sum(len(f.train) for f in prepared.values())
    assert pooled.stride == auto_train_stride(total, 8, 8) > prepared[0].stride
    assert pooled.batch == 8 and alone.batch == 24 and alone.stride is None
    windows = sum(len(pooled._starts(f, None)) for f in prepared.values())
    assert windows < sum(len(alone._starts(f, None)) for f in prepared.values())
    assert pooled.steps_per_epoch == -(-windows // 8)
    res = fit_multifish(fish[:3], cfg)
    assert res.metrics["joint_lr"] == cfg.lr  # a step holds batch_size windows, as one fish's


def test_transfer_and_population_refuse_a_multi_process_launch(
    cli_checkpoint, fish_files, tmp_path, capsys, monkeypatch
):
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    args = ["transfer", "--checkpoint", str(cli_checkpoint), "--recording", str(fish_files[3])]
    assert main([*args, "--out", str(tmp_path / "plus"), "--device", "cpu", "--quiet"]) == 2
    assert "transfer runs in one process" in capsys.readouterr().err
    assert not (tmp_path / "plus").exists()
    pop = ["population", "--checkpoint", str(cli_checkpoint), "--recording", str(fish_files[0])]
    assert main(pop) == 2
    assert "population runs in one process" in capsys.readouterr().err
