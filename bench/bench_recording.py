"""Benchmark: demo-fish generation; load time and peak memory of the demo and a 100k-neuron fish.

Run (not a test)::

    .venv/bin/python bench/bench_recording.py                 # demo fish + 100,000-neuron fish
    .venv/bin/python bench/bench_recording.py --big-neurons 0 # demo fish only

Every measurement runs in a fresh child process so its peak memory (``ru_maxrss``) is its own; the
figure printed is the peak minus the process's footprint after imports. The 100,000-neuron file is
written chunk by chunk with plain h5py in the documented format (as an external pipeline would),
never held in memory whole.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


# ------------------------------------------------------------------------------------ children
def _child(task: str, path: str, n_neurons: int, n_frames: int) -> dict:
    import numpy as np

    # warm the imports and the atlas so the baseline includes them
    from decoding.atlas import default_atlas
    from decoding.recording import load_recording
    from decoding.synthetic import make_demo_fish

    default_atlas()
    base = _rss_mb()
    t0 = time.perf_counter()
    out: dict = {}
    if task == "generate":
        rec = make_demo_fish(n_neurons=n_neurons, n_frames=n_frames)
        out["generate_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        rec.save(path)
        out["save_s"] = time.perf_counter() - t1
        out["size_mb"] = os.path.getsize(path) / 2**20
    elif task == "write_big":
        _write_big(path, n_neurons, n_frames)
        out["write_s"] = time.perf_counter() - t0
        out["size_mb"] = os.path.getsize(path) / 2**20
    elif task == "open":
        rec = load_recording(path)
        out["open_s"] = time.perf_counter() - t0
        t1 = time.perf_counter()
        load_recording(path)  # same unchanged file again: the NaN scan is skipped
        out["reopen_s"] = time.perf_counter() - t1
    elif task == "partial":
        rec2 = load_recording(path, validate=False)
        t1 = time.perf_counter()
        w = rec2.read_activity(1000, 1020)
        out["window_20_frames_ms"] = (time.perf_counter() - t1) * 1e3
        t1 = time.perf_counter()
        cols = rec2.read_activity(
            0, None, np.arange(0, rec2.n_neurons, max(1, rec2.n_neurons // 500))
        )
        out["500_neurons_all_frames_s"] = time.perf_counter() - t1
        del w, cols
    elif task == "open_novalidate":
        rec = load_recording(path, validate=False)
        out["open_novalidate_s"] = time.perf_counter() - t0
    elif task == "read_all":
        rec = load_recording(path, validate=False)
        t1 = time.perf_counter()
        a = rec.activity
        out["read_all_s"] = time.perf_counter() - t1
        out["activity_mb"] = a.nbytes / 2**20
    out["peak_mb"] = _rss_mb() - base
    return out


def _write_big(path: str, n_neurons: int, n_frames: int) -> None:
    """A large fish written block by block with plain h5py, in the documented layout."""
    import h5py
    import numpy as np

    from decoding.atlas import default_atlas
    from decoding.recording import CHUNK_FRAMES, CHUNK_NEURONS, COMPRESSION, FORMAT_NAME
    from decoding.synthetic import TAIL_NAMES

    rng = np.random.default_rng(0)
    atlas = default_atlas()
    inside = np.argwhere(atlas.labels > 0)
    vox = inside[rng.integers(0, len(inside), n_neurons)]
    pos = ((vox + rng.uniform(0.05, 0.95, vox.shape)) * atlas.voxel_size_um).astype(np.float32)
    tmp = path + ".part"
    with h5py.File(tmp, "w") as f:
        f.attrs.update(
            format=FORMAT_NAME,
            format_version=1,
            frame_rate_hz=1.1,
            fish_id="big_fish",
            atlas=atlas.name,
            source="bench/bench_recording.py",
        )
        ds = f.create_dataset(
            "activity",
            shape=(n_frames, n_neurons),
            dtype=np.float32,
            chunks=(CHUNK_FRAMES, min(n_neurons, CHUNK_NEURONS)),
            **COMPRESSION,
        )
        amp = rng.uniform(0.04, 0.12, n_neurons).astype(np.float32)
        for a in range(0, n_frames, CHUNK_FRAMES):
            b = min(n_frames, a + CHUNK_FRAMES)
            block = rng.standard_normal((b - a, n_neurons), dtype=np.float32) * amp
            block += (rng.random((b - a, n_neurons), dtype=np.float32) < 0.03) * np.float32(0.8)
            ds[a:b] = block
        beh = f.create_dataset("behavior", data=rng.normal(0, 0.05, (n_frames, 6)).astype("f4"))
        beh.attrs["names"] = TAIL_NAMES
        beh.attrs["units"] = ["rad"] * 6
        f["positions_um"] = pos
        g = f.create_group("epochs")
        g["name"] = np.array(["rest", "forward"], dtype=object).astype(h5py.string_dtype())
        g["start"] = np.array([0, 100])
        g["stop"] = np.array([100, 200])
    os.replace(tmp, path)


def _run(task: str, path: Path, n_neurons: int = 0, n_frames: int = 0) -> dict:
    cmd = [sys.executable, __file__, "--child", task, str(path), str(n_neurons), str(n_frames)]
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"{task} failed:\n{proc.stderr}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def _report(label: str, n_neurons: int, n_frames: int, path: Path, results: list[dict]) -> None:
    merged: dict = {}
    for r in results:
        peak = r.pop("peak_mb")
        key = next(k for k in r if k.endswith(("_s", "_ms")))
        merged[key.replace("_s", "").replace("_ms", "") + "_peak_mb"] = peak
        merged.update(r)
    print(f"\n{label}: {n_neurons:,} neurons x {n_frames:,} frames  ({path})")
    for k, v in merged.items():
        unit = ""
        if k.endswith("_ms"):
            k, unit = k[:-3], " ms"
        elif k.endswith("_s"):
            k, unit = k[:-2], " s"
        elif k.endswith("_mb"):
            k, unit = k[:-3], " MB"
        print(f"  {k:<32} {v:10.2f}{unit}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        task, path, n, t = sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
        print(json.dumps(_child(task, path, n, t)))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--neurons", type=int, default=12_500, help="demo fish neurons")
    ap.add_argument("--frames", type=int, default=3_000, help="frames of both fish")
    ap.add_argument("--big-neurons", type=int, default=100_000, help="0 to skip the large fish")
    ap.add_argument("--dir", type=Path, default=None, help="where to write (default: a temp dir)")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        demo = Path(tmp) / "demo_fish.h5"
        res = [_run("generate", demo, args.neurons, args.frames)]
        res += [_run(t, demo) for t in ("open", "open_novalidate", "partial", "read_all")]
        _report("demo fish", args.neurons, args.frames, demo, res)
        if args.big_neurons:
            big = Path(tmp) / "big_fish.h5"
            res = [_run("write_big", big, args.big_neurons, args.frames)]
            res += [_run(t, big) for t in ("open", "open_novalidate", "partial", "read_all")]
            _report("large fish", args.big_neurons, args.frames, big, res)
    print(
        "\nopen = structure checks + chunked NaN/inf scan of /activity (peak memory bounded); "
        "reopen = same file again in the same process (scan cached); peak = max RSS above the "
        "post-import baseline"
    )


if __name__ == "__main__":
    main()
