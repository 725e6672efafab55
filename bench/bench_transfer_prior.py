"""The transfer's anatomical prior on fish it was not tuned on. Prints figures; never a test.

    OMP_NUM_THREADS=1 python bench/bench_transfer_prior.py            # defaults below

The prior's strength (2) was chosen on ``bench/bench_multifish.py``'s seeds 0-2 (sixth fish).
This checks it elsewhere, with and without the prior, each transfer twice (window orders
``seed`` and ``seed + 10``):

* ``held-out``: seeds 3 and 4 (their own 6 demo fish): model on fish 0-4, new fish 5;
* ``private``: seeds 0 and 1, model on fish 0 and 2-5, new fish 1: the fish with a driver region
  of its own (left cerebellum, which no model fish reads), where a region prior could hurt.

The ratio is the transfer's test RMSE (20 % of the new fish's training frames) over a single-fish
model's trained on 100 % of them (the goal of issue 12: <= 1.05).
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import statistics
import sys
import tempfile
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

CASES = {"held-out": (3, 4), "private": (0, 1)}
OFFSETS = (0, 10)


def run_case(job: tuple[str, int]) -> dict[str, Any]:
    """One seed of one case: the model, the single-fish reference, the four transfers."""
    import torch

    torch.set_num_threads(1)
    from decoding.multifish import fit_multifish, load_multifish, save_multifish, transfer_fish
    from decoding.synthetic import make_multifish_demo
    from decoding.train import TrainConfig, fit, store_metrics

    case, seed = job
    fish = make_multifish_demo(6, 3000, 1500, seed=seed)
    new_index = 5 if case == "held-out" else 1
    new, model_fish = fish[new_index], [f for i, f in enumerate(fish) if i != new_index]
    cfg = TrainConfig(device="cpu", seed=seed)
    single = fit(new, cfg)
    store_metrics(single, new)
    folder = Path(tempfile.mkdtemp(prefix="bench_transfer_prior_")) / "model"
    save_multifish(fit_multifish(model_fish, cfg), folder)
    out = {"case": case, "seed": seed, "single": float(single.info.metrics["test"]["rmse"])}
    for prior in ("regions", "none"):
        for off in OFFSETS:
            base = load_multifish(folder)  # a fresh copy: a transfer adds the fish in place
            order = dataclasses.replace(cfg, seed=seed + off)
            tr = transfer_fish(base.model, base.infos, new, order, prior=prior,
                               input_regions=base.input_regions)  # fmt: skip
            out[f"{prior}+{off}"] = float(tr.infos[-1].metrics["test"]["rmse"])
    shutil.rmtree(folder.parent, ignore_errors=True)
    print(f"{case} seed {seed}: {out}", flush=True)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--jobs", type=int, default=2, help="parallel processes (2)")
    args = p.parse_args()
    jobs = [(case, seed) for case, seeds in CASES.items() for seed in seeds]
    with ProcessPoolExecutor(args.jobs) as ex:
        results = list(ex.map(run_case, jobs))
    head = "RMSE ratio to 100 % single-fish (per seed x order)"
    print(f"\n{'case':<9} {'prior':<8} {head:<52} mean")
    for case in CASES:
        rows = [r for r in results if r["case"] == case]
        for prior in ("regions", "none"):
            ratios = [r[f"{prior}+{o}"] / r["single"] for r in rows for o in OFFSETS]
            pooled = sum(r[f"{prior}+{o}"] for r in rows for o in OFFSETS) / sum(
                r["single"] for r in rows for _ in OFFSETS
            )
            print(f"{case:<9} {prior:<8} {str([round(x, 3) for x in ratios]):<52} {pooled:.3f}x "
                  f"(median {statistics.median(ratios):.3f})")  # fmt: skip


if __name__ == "__main__":
    main()
