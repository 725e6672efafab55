"""Dashboard redraw timings (server side, Streamlit AppTest) on demo-size fish; prints a table.

    .venv/bin/python bench/bench_dashboard.py [--repeats 5]

Two 12,500-neuron x 3,000-frame fish in a temporary data folder (the demo fish and a second seed)
and
a checkpoint (``assets/demo_checkpoint`` when shipped, else a small one trained here). Measured: the
first run (opening the recording, atlas meshes, imports), then switching epoch and switching fish
when results are cached (the issue's target: under 1 s), with inference on, and the 3D figure's
build
time and payload. Browser-side timings (click -> plot updated in Chromium) are printed by
``pytest tests/test_dashboard_browser.py -s``.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _checkpoint(rec, out: Path) -> Path:
    shipped = ROOT / "assets" / "demo_checkpoint"
    if (shipped / "config.json").is_file():
        return shipped
    import torch

    from decoding.checkpoint import save_checkpoint
    from decoding.train import TrainConfig, fit

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    res = fit(rec, TrainConfig(backbone="tiny-bert", epochs=1, window=10, device="cpu"))
    save_checkpoint(res.model, res.info, out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    from streamlit.testing.v1 import AppTest

    from decoding.synthetic import ensure_demo_fish, make_demo_fish

    tmp = Path(tempfile.mkdtemp(prefix="bench_dash_"))
    data = tmp / "data"
    data.mkdir()
    demo = ensure_demo_fish(ROOT / "data" / "demo")
    (data / "demo_fish.h5").symlink_to(demo)
    t = time.perf_counter()
    second = make_demo_fish(seed=1)
    second.save(data / "second_fish.h5")
    print(f"setup: second fish generated in {time.perf_counter() - t:.1f} s")
    from decoding.recording import load_recording

    ckpt = _checkpoint(load_recording(demo), tmp / "ckpts" / "bench_ckpt")
    os.environ.update(
        {
            "NLP4NEURO_DATA": str(data),
            "NLP4NEURO_CHECKPOINTS": str(ckpt.parent),
            "NLP4NEURO_JOBS": str(tmp / "jobs"),
            "NLP4NEURO_CACHE": str(tmp / "cache"),
        }
    )
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=600)
    at.query_params.update({"fish": "demo_fish", "model": ckpt.name, "epoch": "3"})

    def timed(action) -> float:
        action()
        t0 = time.perf_counter()
        at.run()
        dt = time.perf_counter() - t0
        if at.exception:
            raise SystemExit(f"app raised: {at.exception[0].value}")
        return dt

    rows: list[tuple[str, float, str]] = []
    rows.append(("first run (open fish, atlas meshes, imports)", timed(lambda: None), ""))
    rows.append(
        ("run inference (uncached, epoch 3)", timed(lambda: at.button(key="run_infer").click()), "")
    )
    for ep in ("5", "7"):  # warm the caches of the epochs we switch between
        timed(lambda ep=ep: at.selectbox(key="w_epoch").set_value(ep))
    switches = [
        timed(lambda ep=ep: at.selectbox(key="w_epoch").set_value(ep))
        for _ in range(args.repeats)
        for ep in ("5", "7")
    ]
    rows.append(
        (
            "switch epoch, cached (median)",
            statistics.median(switches),
            f"min {min(switches):.3f}, max {max(switches):.3f}",
        )
    )
    # second fish: a checkpoint for the demo fish does not fit it, so look at it without a model
    timed(lambda: at.selectbox(key="w_model").set_value(""))
    first_second = timed(lambda: at.selectbox(key="w_fish").set_value("second_fish"))
    rows.append(("switch fish, first time (opens + validates the file)", first_second, ""))
    fish_switches = [
        timed(lambda f=f: at.selectbox(key="w_fish").set_value(f))
        for _ in range(args.repeats)
        for f in ("demo_fish", "second_fish")
    ]
    rows.append(
        (
            "switch fish, cached (median)",
            statistics.median(fish_switches),
            f"min {min(fish_switches):.3f}, max {max(fish_switches):.3f}",
        )
    )

    # the 3D figure on its own
    import numpy as np

    from dashboard.figures import MeshSpec, brain_figure
    from decoding.atlas import default_atlas

    rec = load_recording(demo)
    atlas = default_atlas()
    meshes = [
        MeshSpec(atlas.region(i).acronym, atlas.region(i).color, v, f)
        for i, (v, f) in atlas.all_region_meshes(step=3).items()
    ]
    regions = atlas.acronyms_of(rec.positions_um)
    t0 = time.perf_counter()
    fig = brain_figure(
        rec.positions_um,
        values=np.random.default_rng(0).random(rec.n_neurons),
        regions=regions,
        meshes=meshes,
    )
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    payload = fig.to_json()
    rows.append(
        (
            "brain figure build (12,500 neurons, 42 meshes)",
            build,
            f"to_json {time.perf_counter() - t0:.3f} s, {len(payload) / 2**20:.2f} MiB",
        )
    )
    big = np.random.default_rng(1).uniform(0, [496, 1120, 280], size=(100_000, 3))
    t0 = time.perf_counter()
    fig = brain_figure(big, values=np.random.default_rng(2).random(100_000), meshes=meshes)
    build = time.perf_counter() - t0
    payload = fig.to_json()
    rows.append(
        (
            "brain figure build (100,000 neurons -> 40,000 drawn)",
            build,
            f"{len(payload) / 2**20:.2f} MiB",
        )
    )

    print(f"\n{'what':58s} {'seconds':>8s}  notes")
    for what, sec, note in rows:
        print(f"{what:58s} {sec:8.3f}  {note}")


if __name__ == "__main__":
    main()
