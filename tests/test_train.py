"""Training: learning happens, test frames never leak, progress and cancellation work."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from decoding.errors import CheckpointError, DecodingError, ModelError
from decoding.recording import Recording
from decoding.train import TrainConfig, evaluate, fit, predict
from decoding.windows import chronological_split

FAST = dict(backbone="tiny-bert", window=10, batch_size=8, device="cpu", epochs=2)


def _copy(rec: Recording, activity=None, behavior=None) -> Recording:
    return Recording(
        np.array(rec.activity if activity is None else activity, dtype=np.float32),
        np.array(rec.behavior if behavior is None else behavior, dtype=np.float32),
        rec.positions_um,
        frame_rate_hz=rec.frame_rate_hz,
        behavior_names=rec.behavior_names,
        epochs=rec.epochs,
        fish_id=rec.fish_id,
        ground_truth=rec.ground_truth,
    )


def test_decoder_beats_predicting_the_mean(small_recording):
    torch.manual_seed(0)
    cfg = TrainConfig(**{**FAST, "epochs": 10, "lr": 3e-3, "patience": 0, "input_dropout": 0.1})
    res = fit(small_recording, cfg)
    m = evaluate(res.model, res.info, small_recording, part="test")
    split = chronological_split(small_recording.n_frames)
    y = small_recording.behavior
    mean_pred = np.broadcast_to(y[: split.train.stop].mean(0), y[split.test.start :].shape)
    baseline = float(np.sqrt(((y[split.test.start :] - mean_pred) ** 2).mean()))
    assert m.rmse < 0.97 * baseline, (m.rmse, baseline)
    assert m.noise_ceiling is not None and m.noise_ceiling["rmse"] < m.rmse


def test_ridge_beats_the_mean(small_recording):
    res = fit(small_recording, TrainConfig(backbone="ridge"))
    m = evaluate(res.model, res.info, small_recording)
    assert m.pearson_r > 0.3 and res.info.metrics["alpha"] > 0


def test_test_frames_never_touch_training(small_recording):
    split = chronological_split(small_recording.n_frames)
    act = np.array(small_recording.activity)
    beh = np.array(small_recording.behavior)
    act[split.test.start :] = 1e3 * np.random.default_rng(0).normal(
        size=act[split.test.start :].shape
    )
    beh[split.test.start :] = 5.0
    a = fit(small_recording, TrainConfig(**FAST))
    b = fit(_copy(small_recording, act, beh), TrainConfig(**FAST))
    assert a.info.normalizer.mean.tolist() == b.info.normalizer.mean.tolist()
    assert a.info.target_normalizer.std.tolist() == b.info.target_normalizer.std.tolist()
    for (n, p), (_, q) in zip(
        a.model.state_dict().items(), b.model.state_dict().items(), strict=True
    ):
        assert torch.equal(p, q), n
    # and predictions of train/val frames do not depend on test activity (windows stay in a part)
    pa = predict(a.model, a.info, small_recording, 0, split.val.stop)
    pb = predict(a.model, a.info, _copy(small_recording, act, beh), 0, split.val.stop)
    np.testing.assert_array_equal(pa, pb)


def test_test_predictions_ignore_other_parts(small_recording):
    res = fit(small_recording, TrainConfig(**{**FAST, "epochs": 1}))
    split = res.info.split_for(small_recording.n_frames)
    act = np.array(small_recording.activity)
    act[: split.test.start] = 0.0
    whole = predict(res.model, res.info, small_recording)
    test_only = predict(res.model, res.info, _copy(small_recording, act), split.test.start)
    np.testing.assert_allclose(whole[split.test.start :], test_only, rtol=1e-5, atol=1e-6)
    part = predict(res.model, res.info, small_recording, split.test.start + 5, split.test.start + 9)
    np.testing.assert_allclose(
        part, whole[split.test.start + 5 : split.test.start + 9], rtol=1e-5, atol=1e-6
    )


def test_progress_events_and_eta(small_recording):
    events = []
    fit(small_recording, TrainConfig(**FAST), callback=events.append)
    kinds = [e.kind for e in events]
    assert kinds[-1] == "done" and kinds.count("epoch") == 2 and "step" in kinds
    step = next(e for e in events if e.kind == "step")
    assert step.eta_s is not None and step.eta_s >= 0 and step.total_steps > 0
    assert all(e.epoch >= 1 for e in events if e.kind != "done")


def test_cancel_keeps_best_model(small_recording):
    cancel = threading.Event()
    seen = []

    def cb(ev):
        seen.append(ev)
        if ev.kind == "epoch" and ev.epoch == 2:
            cancel.set()

    res = fit(small_recording, TrainConfig(**{**FAST, "epochs": 50}), callback=cb, cancel=cancel)
    assert res.cancelled and res.info.cancelled
    assert len(res.history) == 2
    assert res.info.metrics["best_epoch"] in (1, 2)
    assert seen[-1].kind == "done" and seen[-1].message == "cancelled"


def test_early_stopping(small_recording):
    res = fit(small_recording, TrainConfig(**{**FAST, "epochs": 40, "patience": 1, "lr": 1e-2}))
    assert res.stopped_early or len(res.history) == 40
    assert res.info.metrics["best_epoch"] <= len(res.history)


def test_evaluate_on_a_named_epoch(small_recording):
    res = fit(small_recording, TrainConfig(backbone="ridge"))
    name = small_recording.epochs[0].name
    m = evaluate(res.model, res.info, small_recording, part="all", epoch=name)
    assert m.n_frames == sum(e.n_frames for e in small_recording.epochs_named(name))


def test_bad_options(small_recording):
    with pytest.raises(ModelError, match="--mode"):
        TrainConfig(mode="sideways")
    with pytest.raises(DecodingError, match="--window must be >= 1"):
        TrainConfig(window=0)
    with pytest.raises(ModelError, match="registered"):
        fit(small_recording, TrainConfig(backbone="no-such-net"))
    res = fit(small_recording, TrainConfig(backbone="ridge"))
    other = Recording(
        np.zeros((50, 3), np.float32),
        np.zeros((50, 6), np.float32),
        np.zeros((3, 3), np.float32),
        frame_rate_hz=1.0,
    )
    with pytest.raises(CheckpointError, match="trained on 200 neurons"):
        predict(res.model, res.info, other, 0, 10)
    with pytest.raises(DecodingError, match="frame range"):
        predict(res.model, res.info, small_recording, 10, 5)
