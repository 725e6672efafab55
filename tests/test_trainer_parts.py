"""The trainer's parts on their own: the optimiser, the best-model keeper, step reports, the
device-side overlap average and the recording upload."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch

from decoding.optim import MixedAdamW
from decoding.train import STEP_REPORT_S, BestKeeper, TrainConfig, fit
from decoding.windows import overlap_average


def _reference_adamw(params, grads, scalar, lr=1e-2, wd=0.05, b1=0.9, b2=0.999, eps=1e-8):
    """The textbook per-tensor AdamW (tensor-wise second moment where ``scalar``)."""
    ps = [p.detach().clone() for p in params]
    m = [torch.zeros_like(p) for p in ps]
    v = [torch.zeros(() if s else p.shape) for p, s in zip(ps, scalar, strict=True)]
    for t, step_grads in enumerate(grads, start=1):
        for i, (p, g) in enumerate(zip(ps, step_grads, strict=True)):
            m[i] = b1 * m[i] + (1 - b1) * g
            v[i] = b2 * v[i] + (1 - b2) * (g.square().mean() if scalar[i] else g.square())
            p.mul_(1 - lr * wd)
            p.sub_(lr / (1 - b1**t) * m[i] / ((v[i] / (1 - b2**t)).sqrt() + eps))
    return ps


def test_mixed_adamw_matches_the_textbook_update():
    torch.manual_seed(0)
    ps = [torch.nn.Parameter(torch.randn(5, 7)), torch.nn.Parameter(torch.randn(3)),
          torch.nn.Parameter(torch.randn(4, 4))]  # fmt: skip
    grads = [[torch.randn_like(p) for p in ps] for _ in range(4)]
    want = _reference_adamw(ps, grads, scalar=[False, False, True])
    opt = MixedAdamW(
        [{"params": ps[:2], "weight_decay": 0.05},
         {"params": ps[2:], "weight_decay": 0.05, "scalar_moment": True}],
        lr=1e-2,
    )  # fmt: skip
    for step_grads in grads:
        for p, g in zip(ps, step_grads, strict=True):
            p.grad = g
        opt.step()
    for got, ref in zip(ps, want, strict=True):
        torch.testing.assert_close(got.detach(), ref, rtol=1e-5, atol=1e-6)


def test_best_keeper_restores_the_best_epoch():
    model = torch.nn.Linear(3, 2)
    keeper = BestKeeper(model)
    weights = {}
    for epoch, loss in enumerate([0.5, 0.3, 0.4], start=1):
        with torch.no_grad():
            model.weight.fill_(float(epoch))
        weights[epoch] = model.weight.detach().clone()
        kept = keeper.consider(loss, epoch)
        assert kept == (epoch in (1, 2))
    keeper.restore()
    assert keeper.epoch == 2 and keeper.best_loss == 0.3
    torch.testing.assert_close(model.weight.detach(), weights[2])


def test_best_keeper_without_validation_keeps_the_latest():
    model = torch.nn.Linear(2, 1)
    keeper = BestKeeper(model)
    for epoch in (1, 2, 3):
        assert keeper.consider(math.nan, epoch)
    assert keeper.epoch == 3 and keeper.best_loss is None


def test_overlap_average_on_tensors_equals_numpy():
    rng = np.random.default_rng(0)
    starts = np.array([0, 2, 4, 6, 8])
    preds = rng.standard_normal((5, 6, 3)).astype(np.float32)
    host = overlap_average(preds, starts, 0, 14)
    dev = overlap_average(torch.from_numpy(preds), starts, 0, 14)
    assert isinstance(dev, torch.Tensor) and dev.dtype == torch.float32
    np.testing.assert_allclose(dev.numpy(), host, rtol=1e-6)
    np.testing.assert_allclose(host[1], preds[0, 1], rtol=1e-6)  # frame 1: one window only


def test_step_reports_are_throttled_but_every_epoch_has_one(small_recording):
    events = []
    cfg = TrainConfig(backbone="tiny-bert", window=10, batch_size=4, train_stride=2,
                      device="cpu", epochs=2)  # fmt: skip
    res = fit(small_recording, cfg, callback=events.append)
    steps = [e for e in events if e.kind == "step"]
    assert {e.epoch for e in steps} == {1, 2}  # the first step of each epoch is reported
    total = res.info.metrics["steps"]
    budget = 2 + res.info.metrics["train_time_s"] / STEP_REPORT_S + 1
    assert total > len(steps) or total <= budget
    assert len(steps) <= budget
    assert all(e.train_loss is not None and math.isfinite(e.train_loss) for e in steps)


def test_eta_is_capped_by_the_time_budget():
    from decoding.train import _eta

    assert _eta(10.0, 10, 110, None) == 100.0  # 1 s per step, 100 steps left
    assert _eta(10.0, 10, 110, 30.0) == 20.0  # --max-time 30 stops first
    assert _eta(40.0, 10, 110, 30.0) == 0.0


def test_a_diverged_run_is_refused_in_one_line_and_nothing_is_saved(tmp_path, small_recording):
    """A NaN loss (here from an absurd learning rate) stops training with a readable error; the
    CLI prints it as one line with a non-zero exit and writes no checkpoint."""
    import subprocess
    import sys

    import pytest

    from decoding.errors import DecodingError

    cfg = TrainConfig(backbone="tiny-bert", window=10, batch_size=8, device="cpu", epochs=2,
                      lr=1e8)  # fmt: skip
    with pytest.raises(DecodingError, match="training diverged"):
        fit(small_recording, cfg)
    rec = tmp_path / "fish.h5"
    small_recording.save(rec)
    out = tmp_path / "model"
    proc = subprocess.run(
        [sys.executable, "-m", "decoding", "train", "--recording", str(rec), "--out", str(out),
         "--backbone", "tiny-bert", "--window", "10", "--epochs", "2", "--lr", "1e8", "--quiet"],
        capture_output=True, text=True, check=False, cwd=Path(__file__).resolve().parents[1],
    )  # fmt: skip
    assert proc.returncode != 0 and "training diverged" in proc.stderr
    assert "Traceback" not in proc.stderr and not out.exists()
