"""Multi-fish benchmark: one model over the 5-fish demo vs a model per fish, transfer to a sixth
fish, and the population salience map. Prints figures; never run as a test.

    python bench/bench_multifish.py                      # defaults below (a 2-core CPU: ~40 min)
    python bench/bench_multifish.py --neurons 3000 --frames 1500 --seeds 3 --epochs 40

Goals (issue 12):
1. multi-fish test RMSE on every fish <= its single-fish model's (mean over the seeds);
2. transfer: the sixth fish with 20 % of its training frames <= 1.05 x the RMSE of a single-fish
   model trained on 100 % of them;
3. population map: region-level AUROC >= 0.95 for the true driver regions (drivers in >= half the
   fish), and the private driver region of fish 1 (left cerebellum) is not a population effect;
4. training the 5 fish together <= 1.5 x the time of training the largest alone.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _config(args: argparse.Namespace, seed: int):
    from decoding.train import TrainConfig

    return TrainConfig(
        device=args.device,
        seed=seed,
        epochs=args.epochs,
        patience=args.patience,
        window=args.window,
    )


def _single(rec, cfg) -> tuple[float, float]:
    from decoding.train import fit, store_metrics

    t0 = time.perf_counter()
    res = fit(rec, cfg)
    elapsed = time.perf_counter() - t0
    store_metrics(res, rec)
    return float(res.info.metrics["test"]["rmse"]), elapsed


def _population(res, fish, args) -> None:
    from decoding.population import fish_salience, population_salience, true_driver_regions
    from decoding.salience_check import auroc
    from decoding.synthetic import PRIVATE_DRIVER_REGION

    sal = [fish_salience(res.model.views[i], res.infos[i], r) for i, r in enumerate(fish)]
    pop = population_salience(sal)
    truth = true_driver_regions(fish)
    table = pop.table
    labels = table["region"].isin(truth).to_numpy()
    private = f"{PRIVATE_DRIVER_REGION}_L"
    row = table.set_index("region").loc[private]
    print(f"\npopulation map (saliency on each fish's test split), {len(truth)} true regions:")
    print(table.head(16).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
    score = auroc(table["mean_log2_ratio"].to_numpy(), labels)
    print(
        f"region AUROC (rank by mean effect) {score:.3f}"
        f"; reported population regions: {', '.join(pop.populated()) or 'none'}"
    )
    print(
        f"false population regions: {sorted(set(pop.populated()) - truth) or 'none'}; "
        f"true regions missed: {sorted(truth - set(pop.populated())) or 'none'}"
    )
    print(
        f"private driver region {private} (fish 1 only): rank {int(row['rank'])}, significant in "
        f"{int(row['n_significant'])} fish, population effect: {bool(row['population'])}"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--neurons", type=int, default=1000, help="typical neurons per fish (1000)")
    p.add_argument("--frames", type=int, default=800, help="frames per fish (800)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--epochs", type=int, default=10)
    p.add_argument("--patience", type=int, default=4)
    p.add_argument("--window", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--device", default="cpu")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    from decoding.multifish import fit_multifish, transfer_fish
    from decoding.synthetic import make_multifish_demo

    t0 = time.perf_counter()
    all_fish = make_multifish_demo(6, args.neurons, args.frames, seed=0)
    fish, sixth = all_fish[:5], all_fish[5]
    print(
        f"6 demo fish ({time.perf_counter() - t0:.0f} s): neurons "
        f"{[r.n_neurons for r in all_fish]}, {args.frames} frames each; window {args.window}, "
        f"<= {args.epochs} epochs, patience {args.patience}, {args.seeds} seeds, {args.device}, "
        f"{args.threads} threads"
    )
    largest = int(np.argmax([r.n_neurons for r in fish]))
    single = {r.fish_id: [] for r in fish}
    multi = {r.fish_id: [] for r in fish}
    t_single, t_multi, six_single, six_transfer = [], [], [], []
    last = None
    for seed in range(args.seeds):
        cfg = _config(args, seed)
        for i, rec in enumerate(fish):
            rmse, el = _single(rec, cfg)
            single[rec.fish_id].append(rmse)
            if i == largest:
                t_single.append(el)
        rmse6, _ = _single(sixth, cfg)
        six_single.append(rmse6)
        t = time.perf_counter()
        res = fit_multifish(fish, cfg)
        t_multi.append(time.perf_counter() - t)
        for info in res.infos:
            multi[info.fish_id].append(float(info.metrics["test"]["rmse"]))
        last = res
        tr = transfer_fish(res.model, res.infos, sixth, cfg, train_fraction=0.2)
        six_transfer.append(float(tr.infos[-1].metrics["test"]["rmse"]))
        res.model.views = res.model.views[:5]  # drop the transferred fish again
        res.model.fish_ids = res.model.fish_ids[:5]
        print(
            f"seed {seed}: single {[round(single[r.fish_id][-1], 4) for r in fish]}, multi "
            f"{[round(multi[r.fish_id][-1], 4) for r in fish]}, sixth single {rmse6:.4f} / "
            f"transfer {six_transfer[-1]:.4f}; time largest {t_single[-1]:.0f} s, multi "
            f"{t_multi[-1]:.0f} s",
            flush=True,
        )

    print(f"\n{'fish':<14} {'neurons':>7} {'single RMSE':>12} {'multi RMSE':>11}  multi <= single")
    ok = 0
    for r in fish:
        s, m = statistics.mean(single[r.fish_id]), statistics.mean(multi[r.fish_id])
        ok += m <= s
        print(
            f"{r.fish_id:<14} {r.n_neurons:>7} {s:>12.4f} {m:>11.4f}  {'yes' if m <= s else 'NO'}"
        )
    print(f"goal 1 (multi <= single on every fish): {ok}/5 fish")
    s6, t6 = statistics.mean(six_single), statistics.mean(six_transfer)
    print(
        f"goal 2 (transfer, 20 % of frames): sixth fish single 100 % {s6:.4f}, transfer {t6:.4f}: "
        f"{t6 / s6:.3f}x (goal <= 1.05)"
    )
    ratio = statistics.mean(t_multi) / statistics.mean(t_single)
    print(
        f"goal 4 (time): 5 fish together {statistics.mean(t_multi):.0f} s, largest alone "
        f"{statistics.mean(t_single):.0f} s: {ratio:.2f}x (goal <= 1.5)"
    )
    _population(last, fish, args)


if __name__ == "__main__":
    main()
