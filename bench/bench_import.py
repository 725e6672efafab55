"""Import time and peak memory of the NLP4Neuro importer on a study-sized fish (not a test).

    python bench/bench_import.py [--neurons 14000] [--frames 2800] [--keep DIR]

Writes a synthetic fish in the NLP4Neuro layout (6 planes of suite2p F.npy/stat.npy, a 200 Hz
pandas tail_df.h5 and a stimulus_df.tab per plane), then runs ``python -m decoding import
nlp4neuro`` in a fresh process and reports wall time, that process's peak RSS (VmHWM), its RSS
just before the import started (interpreter + numpy/h5py/pandas loaded), and the input size.
Targets (issue 6): < 10 s and peak memory above the baseline < 2x the data size.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

_CHILD = """
import resource, sys, time
import numpy, h5py, pandas, decoding.importers, decoding.recording, decoding.cli
from decoding.importers import get_importer
get_importer("nlp4neuro")
def status(key):
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return float(line.split()[1])
    return float("nan")
print("RSS_BEFORE_KB", status("VmRSS"))
if sys.argv[1] == "import":
    from decoding.importers import import_recording
    t = time.perf_counter()
    result = import_recording("nlp4neuro", sys.argv[2])
    t1 = time.perf_counter()
    result.recording.save(sys.argv[3])
    t2 = time.perf_counter()
    print("BUILD", t1 - t)
    print("SAVE", t2 - t1)
    print("WALL", t2 - t)
print("MAXRSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
print("HWM_KB", status("VmHWM"))
"""


def _run(args: list[str]) -> dict[str, float]:
    proc = subprocess.run(
        [sys.executable, "-c", _CHILD, *args], capture_output=True, text=True, cwd=ROOT
    )
    if proc.returncode != 0:
        raise SystemExit(proc.stdout + proc.stderr)
    out = {}
    for line in proc.stdout.splitlines():
        key, _, val = line.partition(" ")
        if key in ("WALL", "BUILD", "SAVE", "MAXRSS_KB", "HWM_KB", "RSS_BEFORE_KB"):
            out[key] = float(val)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--neurons", type=int, default=14_000)
    ap.add_argument("--frames", type=int, default=2_800)
    ap.add_argument("--keep", type=Path, default=None, help="write the fixture here and keep it")
    args = ap.parse_args(argv)
    from decoding.importers.fixtures import write_nlp4neuro_fish

    tmp = tempfile.TemporaryDirectory() if args.keep is None else None
    work = Path(tmp.name) if tmp else args.keep
    work.mkdir(parents=True, exist_ok=True)
    t = time.perf_counter()
    truth = write_nlp4neuro_fish(work, n_neurons=args.neurons, n_frames=args.frames, seed=1)
    t_write = time.perf_counter() - t
    root = truth["root"]
    f_bytes = sum(p.stat().st_size for p in root.glob("plane_*/F.npy"))
    tail_bytes = (root / "plane_0" / "tail_df.h5").stat().st_size
    data_mb = (f_bytes + tail_bytes) / 2**20
    res = _run(["import", str(root), str(work / "fish.h5")])
    rss_mb = res["HWM_KB"] / 1024
    base_mb = res["RSS_BEFORE_KB"] / 1024
    out_mb = (work / "fish.h5").stat().st_size / 2**20
    print(
        f"fish: {args.neurons:,} neurons x {args.frames:,} frames, 6 planes, "
        f"{truth['n_samples']:,} tail samples at 200 Hz (fixture written in {t_write:.1f} s)"
    )
    print(f"input data: {data_mb:.0f} MiB (F.npy {f_bytes / 2**20:.0f} MiB + tail_df.h5 used)")
    print(
        f"import wall time: {res['WALL']:.2f} s (target < 10 s) = read + ΔF/F + tail + epochs "
        f"{res['BUILD']:.2f} s + Recording.save (gzip-1 HDF5) {res['SAVE']:.2f} s"
    )
    print(
        f"peak RSS (VmHWM): {rss_mb:.0f} MiB; RSS just before the import (interpreter + "
        f"libraries): {base_mb:.0f} MiB; peak above that: {rss_mb - base_mb:.0f} MiB = "
        f"{(rss_mb - base_mb) / data_mb:.2f}x data "
        "(target < 2x)"
    )
    print(f"output recording: {out_mb:.0f} MiB (gzip-1 compressed)")
    if tmp:
        tmp.cleanup()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
