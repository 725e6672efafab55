"""Benchmark: Integrated Gradients salience time and peak memory (CPU, or ``--device cuda``).

Run (not a test)::

    .venv/bin/python bench/bench_salience.py                      # everything below
    .venv/bin/python bench/bench_salience.py --sections demo      # demo checkpoint only
    .venv/bin/python bench/bench_salience.py --checkpoint runs/m --recording fish.h5

Sections:

* ``demo``: the demo checkpoint (default ``assets/demo_checkpoint``) on the demo fish
  (``data/demo/demo_fish.h5``): IG with 32 and 50 steps over one stimulus epoch (the first ``left``)
  and over the whole test split, with the windows ``predict`` uses (context, stride 1);
* ``big``: the same backbone (random weights) on a 100,000-neuron fish (random activity), one epoch;
* ``scaling``: how the time grows with N, the window and the steps (one epoch, same backbone), and
  the embedding-space path against plain Captum on the input.

Each main figure runs in a fresh child process, so its peak RSS (``ru_maxrss``) is its own; the
figure printed is the peak minus the footprint after imports and loading. Threads: ``--threads``
(default 2), the same for every figure. A tiny warm-up attribution runs first (imports, one-off
kernel set-up); then each figure is the best of 3 runs (one run when it takes > 20 s), with the
first run's time beside it (what a cold dashboard click costs).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def _model_for(checkpoint: Path, n_neurons: int | None):
    """The checkpoint's model, or (n_neurons given) its architecture with random weights."""
    from decoding.checkpoint import load_checkpoint, read_info

    if n_neurons is None:
        return load_checkpoint(checkpoint)
    from decoding.models import build_decoder

    info = read_info(checkpoint)
    model = build_decoder(info.decoder, n_neurons=n_neurons, n_outputs=info.n_outputs)
    return model.eval(), info


def _child(job: dict) -> dict:
    import numpy as np
    import torch

    torch.set_num_threads(job["threads"])
    from decoding.salience import DecoderIO, SalienceRequest, compute_salience

    checkpoint = Path(job["checkpoint"])
    if job["kind"] == "demo":
        from decoding.recording import load_recording

        rec = load_recording(job["recording"])
        model, info = _model_for(checkpoint, None)
        activity = rec.activity
        io = DecoderIO.of(info, rec.n_frames)
    else:  # synthetic activity, N neurons, frames [40, 40 + epoch) analysed inside 120 frames
        model, info = _model_for(checkpoint, job["n_neurons"])
        rng = np.random.default_rng(0)
        activity = rng.standard_normal((job.get("frames", 120), job["n_neurons"]), np.float32)
        io = DecoderIO(window=job.get("window") or info.window, stride=int(info.stride))
    a, b = job["range"]

    def run(stop: int, steps: int):
        req = SalienceRequest(
            method=job.get("method", "ig"), steps=steps, context=job.get("context", True),
            fast=job.get("fast", True),
        )  # fmt: skip
        dev = job.get("device", "cpu")
        return compute_salience(model, activity, req, decoder=io, start=a, stop=stop, device=dev)

    run(a + 1, 2)  # warm-up
    base = _rss_mb()
    times = []
    for _ in range(job.get("repeats", 3)):
        t0 = time.perf_counter()
        res = run(b, job["steps"])
        times.append(time.perf_counter() - t0)  # the result is on the host: the device is done
        if times[0] > 20:  # slow figures once
            break
    return {
        "seconds": min(times),
        "first": times[0],
        "peak_mb": _rss_mb() - base,
        "windows": res.params["windows"],
        "frames": b - a,
        "rel_delta": res.relative_delta,
        "steps": res.params.get("steps"),
        "backbone": info.describe(),
    }


def _run(job: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--child", json.dumps(job)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if out.returncode != 0:
        raise SystemExit(f"child failed: {job}\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _line(label: str, r: dict) -> str:
    delta = "" if r["rel_delta"] is None else f"  rel. delta {r['rel_delta']:.1e}"
    return (
        f"  {label:<44} {r['seconds']:7.2f} s (first {r['first']:6.2f} s)  "
        f"peak +{r['peak_mb']:6.0f} MB  "
        f"({r['frames']} frames, {r['windows']} windows){delta}"
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--checkpoint", type=Path, default=REPO / "assets" / "demo_checkpoint")
    ap.add_argument("--recording", type=Path, default=REPO / "data" / "demo" / "demo_fish.h5")
    ap.add_argument("--sections", default="demo,big,scaling")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="cpu", help="cpu, cuda or mps (default cpu)")
    ap.add_argument("--big-neurons", type=int, default=100_000)
    ap.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        print(json.dumps(_child(json.loads(args.child))))
        return
    if not (args.checkpoint / "config.json").is_file():
        raise SystemExit(
            f"no checkpoint at {args.checkpoint}; train one (python -m decoding train ...) "
            "and pass --checkpoint"
        )
    sections = set(args.sections.split(","))
    common = {"checkpoint": str(args.checkpoint), "threads": args.threads, "device": args.device}
    from decoding.checkpoint import read_info

    info = read_info(args.checkpoint)
    print(
        f"checkpoint {args.checkpoint}: {info.describe()}; device {args.device}; "
        f"torch threads {args.threads}"
    )
    if "demo" in sections:
        from decoding.recording import load_recording

        rec = load_recording(args.recording)
        ep = rec.epoch("left")
        test = info.split_for(rec.n_frames).test
        print(f"demo fish {args.recording.name}: {rec.n_neurons} neurons x {rec.n_frames} frames")
        for steps in (32, 50):
            for label, rng in (
                (f"epoch 'left' [{ep.start}, {ep.stop})", (ep.start, ep.stop)),
                (f"test split [{test.start}, {test.stop})", (test.start, test.stop)),
            ):
                job = {**common, "kind": "demo", "recording": str(args.recording),
                       "range": list(rng), "steps": steps}  # fmt: skip
                print(_line(f"IG {steps} steps, {label}", _run(job)), flush=True)
        job = {**common, "kind": "demo", "recording": str(args.recording),
               "range": [ep.start, ep.stop], "steps": 32, "context": False}  # fmt: skip
        print(_line("IG 32 steps, epoch 'left', --no-context", _run(job)), flush=True)
        for method, steps in (("ig", "auto"), ("ixg", 1)):
            for label, rng in (
                (f"epoch 'left' [{ep.start}, {ep.stop})", (ep.start, ep.stop)),
                (f"test split [{test.start}, {test.stop})", (test.start, test.stop)),
            ):
                job = {**common, "kind": "demo", "recording": str(args.recording),
                       "range": list(rng), "steps": steps, "method": method}  # fmt: skip
                name = "IG auto steps" if method == "ig" else "Input x Gradient"
                r = _run(job)
                chosen = f" -> {r['steps']} steps" if method == "ig" else ""
                print(_line(f"{name}{chosen}, {label}", r), flush=True)
    epoch = (40, 78)  # a 38-frame epoch inside a 120-frame synthetic recording
    if "big" in sections:
        n = args.big_neurons
        print(f"{n:,}-neuron fish (random activity), {info.spec.name} architecture, random weights")
        for steps in (32, 50):
            job = {**common, "kind": "synthetic", "n_neurons": n, "range": list(epoch),
                   "steps": steps}  # fmt: skip
            print(_line(f"IG {steps} steps, one 38-frame epoch", _run(job)), flush=True)
        job = {**common, "kind": "synthetic", "n_neurons": n, "range": [0, 600], "frames": 600,
               "steps": 32}  # fmt: skip
        print(_line("IG 32 steps, 600 frames (a test split)", _run(job)), flush=True)
    if "scaling" in sections:
        print("scaling (one 38-frame epoch, IG; embedding path unless noted)")
        base = {**common, "kind": "synthetic", "range": list(epoch)}
        for n in (1_000, 10_000, 100_000):
            r = _run({**base, "n_neurons": n, "steps": 32})
            print(_line(f"N={n:,} window {info.window} steps 32", r), flush=True)
        for n in (1_000, 10_000):
            r = _run({**base, "n_neurons": n, "steps": 32, "fast": False})
            print(_line(f"N={n:,} window {info.window} steps 32, Captum on input", r), flush=True)
        for w in (5, 10, 20):
            r = _run({**base, "n_neurons": 10_000, "steps": 32, "window": w})
            print(_line(f"N=10,000 window {w} steps 32", r), flush=True)
        for steps in (8, 16, 32, 50):
            r = _run({**base, "n_neurons": 10_000, "steps": steps})
            print(_line(f"N=10,000 window {info.window} steps {steps}", r), flush=True)
        for method in ("ixg", "saliency"):
            r = _run({**base, "n_neurons": 10_000, "steps": 1, "method": method})
            print(_line(f"N=10,000 window {info.window} {method}", r), flush=True)


if __name__ == "__main__":
    main()
