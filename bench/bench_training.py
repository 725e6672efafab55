"""Training benchmark on the demo fish: time-to-accuracy, model-FLOP utilisation, inference.

Run (prints a table; never run as a test)::

    python bench/bench_training.py                       # demo fish, default backbone, both recipes
    python bench/bench_training.py --neurons 3000 --frames 1500 --study-epochs 4   # quicker
    python bench/bench_training.py --skip-tta --backbone minilm --mfu-batch 32 --threads 1   # MFU

1. Time-to-accuracy: wall time until validation RMSE is within 5 % of the run's best, for our
   trainer (the TrainConfig defaults) and the study's recipe (per-frame scaling, stride-1 shuffled
   windows, every window projecting its frames again, batch 32, AdamW 1e-4 constant, 10 epochs),
   same backbone, same fish; plus the test RMSE each reaches (best validation epoch).
2. MFU: FLOPs of one step of the trainer (``fit``'s own step: autocast, loss, clipping, optimiser;
   counted by ``torch.utils.flop_counter``) x steps per second, divided by the FLOP/s of a large
   dense matmul in the step's precision (bf16 on CUDA, fp32 on the CPU) in the same process.
3. Whole-recording inference: wall time and peak memory (RSS high-water mark, and CUDA peak).
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decoding.device import pick_device  # noqa: E402
from decoding.train import TrainConfig, evaluate, fit, predict  # noqa: E402


def load_fish(args):
    from decoding.recording import load_recording
    from decoding.synthetic import ensure_demo_fish, make_demo_fish

    if args.neurons or args.frames:
        return make_demo_fish(
            n_neurons=args.neurons or 12_500, n_frames=args.frames or 3_000, seed=args.fish_seed
        )
    return load_recording(args.fish or ensure_demo_fish())


def time_to_accuracy(history: list[dict], tol: float = 0.05) -> tuple[float, float]:
    """(seconds until val RMSE <= (1 + tol) * best, best val RMSE)."""
    vals = [(h["elapsed_s"], h["val_rmse"]) for h in history if h.get("val_rmse") is not None]
    best = min(v for _, v in vals)
    return next(t for t, v in vals if v <= (1 + tol) * best), best


def matmul_flops(device: torch.device, dtype: torch.dtype, n: int = 4096, reps: int = 5) -> float:
    """FLOP/s of an ``n x n`` matmul in ``dtype`` on ``device`` (the same precision as the step)."""
    if device.type == "cpu":
        n = min(n, 2048)
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    a @ b
    _sync(device)
    best = float("inf")
    for _ in range(reps):
        t = time.perf_counter()
        a @ b
        _sync(device)
        best = min(best, time.perf_counter() - t)
    return 2 * n**3 / best


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def step_mfu(rec, config: TrainConfig, steps: int = 5) -> dict:
    """FLOP/s of the trainer's own step (``decoding.train._Stepper.step``, what ``fit`` runs:
    batches, autocast, loss, clipping, optimiser) vs a dense matmul in the step's precision."""
    from torch.utils.flop_counter import FlopCounterMode

    from decoding.train import _setup, _Stepper

    _sync(pick_device(config.device))
    t0 = time.perf_counter()
    run = _setup(rec, config)  # backbone built on the device (bf16 base for frozen/LoRA on CUDA)
    run.model.to(run.device)
    _sync(run.device)
    ready_s = time.perf_counter() - t0
    stepper = _Stepper(run)
    run.model.train()
    batches = iter(stepper.batches())

    def one_step():
        nonlocal batches
        starts = next(batches, None)
        if starts is None:
            batches = iter(stepper.batches())
            starts = next(batches)
        return stepper.step(starts)

    one_step()
    with FlopCounterMode(display=False) as fc:
        one_step()
    flops = fc.get_total_flops()
    _sync(run.device)
    t = time.perf_counter()
    for _ in range(steps):
        loss = one_step()
    float(loss)  # waits for the device
    dt = (time.perf_counter() - t) / steps
    dtype = run.amp or torch.float32
    peak = matmul_flops(run.device, dtype)
    return {
        "ready_s": ready_s,
        "step_gflop": flops / 1e9,
        "step_s": dt,
        "achieved_gflops": flops / dt / 1e9,
        "matmul_gflops": peak / 1e9,
        "precision": str(dtype).replace("torch.", ""),
        "mfu": flops / dt / peak,
    }


def inference(model, info, rec, device) -> dict:
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    t = time.perf_counter()
    pred = predict(model, info, rec, device=device)
    dt = time.perf_counter() - t
    out = {
        "frames": int(pred.shape[0]),
        "seconds": dt,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    if device.type == "cuda":
        out["cuda_peak_mb"] = torch.cuda.max_memory_allocated() / 2**20
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--fish", default=None, help="recording file (default: the demo fish)")
    p.add_argument("--neurons", type=int, default=None, help="generate a demo fish of this size")
    p.add_argument("--frames", type=int, default=None)
    p.add_argument("--fish-seed", type=int, default=0)
    p.add_argument("--backbone", default=TrainConfig().backbone)
    p.add_argument(
        "--init",
        choices=("pretrained", "random"),
        default=None,
        help="backbone weights (default: the backbone's default; random needs no weights)",
    )
    p.add_argument("--mode", choices=("frozen", "full", "lora"), default=TrainConfig().mode)
    p.add_argument("--study-epochs", type=int, default=10)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--skip-tta", action="store_true", help="only MFU and inference")
    p.add_argument(
        "--mfu-batch",
        type=int,
        default=None,
        help="windows per step for the MFU measurement of both recipes",
    )
    p.add_argument(
        "--study-cap",
        type=float,
        default=0.0,
        help="stop the study recipe after this many times our total training time",
    )
    p.add_argument(
        "--recipes", default="ours,study", help="recipes whose step MFU is measured (comma list)"
    )
    p.add_argument("--json", default=None, help="also write the figures to this JSON file")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = pick_device(args.device)
    rec = load_fish(args)
    print(
        f"fish {rec.fish_id}: {rec.n_frames} frames x {rec.n_neurons} neurons; device {device}, "
        f"{torch.get_num_threads()} threads"
    )
    ours = TrainConfig(backbone=args.backbone, init=args.init, mode=args.mode, device=args.device)
    study = TrainConfig(
        backbone=args.backbone,
        init=args.init,
        device=args.device,
        mode=args.mode,
        lr=1e-4,
        batch_size=32,
        epochs=args.study_epochs,
        train_stride=1,
        schedule="constant",
        warmup_frac=0.0,
        input_dropout=0.0,
        weight_decay=0.01,
        patience=0,
        normalization="frame",
        project_once=False,
    )
    results: dict = {
        "fish": rec.fish_id,
        "n_neurons": rec.n_neurons,
        "n_frames": rec.n_frames,
        "device": str(device),
        "threads": torch.get_num_threads(),
    }
    if not args.skip_tta:
        for name, cfg in (("ours", ours), ("study", study)):
            if name == "study" and args.study_cap:
                cfg.max_time_s = args.study_cap * results["ours"]["total_s"]
            res = fit(rec, cfg)
            tta, best = time_to_accuracy(res.history)
            m = evaluate(res.model, res.info, rec)
            results[name] = {
                "time_to_accuracy_s": tta,
                "best_val_rmse": best,
                "test_rmse": m.rmse,
                "total_s": res.info.metrics["train_time_s"],
                "epochs": len(res.history),
            }
            print(
                f"{name:>6}: time-to-accuracy {tta:7.1f} s (best val RMSE {best:.4f}), test RMSE "
                f"{m.rmse:.4f}, {len(res.history)} epochs in "
                f"{res.info.metrics['train_time_s']:.1f} s",
                flush=True,
            )
            if name == "ours":
                results["inference"] = inference(res.model, res.info, rec, device)
            else:  # when does the study's recipe reach our accuracy (within 5 % of our best)?
                target = 1.05 * results["ours"]["best_val_rmse"]
                hit = [h["elapsed_s"] for h in res.history if (h.get("val_rmse") or 1e9) <= target]
                results[name]["time_to_our_accuracy_s"] = hit[0] if hit else None
                print(
                    f"        reaches our accuracy (val RMSE <= {target:.4f}) after {hit[0]:.1f} s"
                    if hit
                    else f"        never reaches our accuracy "
                    f"(val RMSE <= {target:.4f}) in {res.info.metrics['train_time_s']:.0f} s"
                )
        r = results["ours"]["time_to_accuracy_s"] / results["study"]["time_to_accuracy_s"]
        results["tta_ratio"] = r
        print(f"time-to-accuracy ratio ours/study: {r:.2f} (goal <= 0.5)")
        inf = results["inference"]
        print(
            f"inference, whole recording: {inf['frames']} frames in {inf['seconds']:.2f} s; "
            f"peak RSS {inf['peak_rss_mb']:.0f} MB"
        )
    for name, cfg in (("ours", ours), ("study", study)):
        if name not in args.recipes.split(","):
            continue
        if args.mfu_batch:
            cfg.batch_size = args.mfu_batch
        mfu = step_mfu(rec, cfg)
        results[f"mfu_{name}"] = mfu
        print(
            f"MFU {name:>6}: model ready in {mfu['ready_s']:.1f} s; {mfu['step_gflop']:.1f} "
            f"GFLOP/step in {mfu['step_s'] * 1e3:.0f} ms = "
            f"{mfu['achieved_gflops']:.1f} GFLOP/s; dense {mfu['precision']} matmul "
            f"{mfu['matmul_gflops']:.1f} GFLOP/s; MFU {100 * mfu['mfu']:.0f}%",
            flush=True,
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
