"""Multi-fish benchmark: one model over the 5-fish demo vs a model per fish, transfer to a sixth
fish, and the population salience map. Prints every goal figure; never run as a test.

    OMP_NUM_THREADS=1 python bench/bench_multifish.py                  # defaults below
    OMP_NUM_THREADS=1 python bench/bench_multifish.py --neurons 12500 --frames 3000   # demo size

Each seed ``s`` makes its own 6 demo fish (``make_multifish_demo(6, ..., seed=s)``: fish 0-4 and a
held-out sixth) and trains with seed ``s``, so a default cannot be tuned on one seed's fish. The
recipe is the project's default (``TrainConfig()``) unless flags change it. Seeds run in
``--jobs`` processes, one thread each; times are CPU seconds of one thread (``process_time``), so
other jobs on the machine hardly change them (wall seconds are printed as well).

Goals (issue 12):
1. multi-fish test RMSE on every fish <= its single-fish model's (mean over the seeds);
2. transfer: the sixth fish with 20 % of its training frames <= 1.05 x the RMSE of a single-fish
   model trained on 100 % of them (mean over the seeds);
3. population map: region-level AUROC >= 0.95 for the true driver regions (drivers in >= half the
   fish), and the private driver region of fish 1 (left cerebellum) is not a population effect;
4. training the 5 fish together <= 1.5 x the time of training the largest alone (to convergence,
   the same early-stopping rule; the cost per epoch is printed too).
"""

from __future__ import annotations

import argparse
import multiprocessing
import statistics
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def _config(args: argparse.Namespace, seed: int):
    from decoding.train import TrainConfig

    over = {"epochs": args.epochs, "patience": args.patience, "window": args.window}
    return TrainConfig(device=args.device, seed=seed, joint_windows=args.joint_windows,
                       **{k: v for k, v in over.items() if v})  # fmt: skip


def _timed(fn, *a, **kw) -> tuple[Any, float, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    out = fn(*a, **kw)
    return out, time.process_time() - c0, time.perf_counter() - t0


def _single(rec, cfg) -> dict[str, float]:
    from decoding.train import fit, store_metrics

    res, cpu, wall = _timed(fit, rec, cfg)
    store_metrics(res, rec)
    epochs = len(res.info.history)
    return {"rmse": float(res.info.metrics["test"]["rmse"]), "cpu": cpu, "wall": wall,
            "epochs": epochs}  # fmt: skip


def _population(res, fish) -> dict[str, Any]:
    from decoding.population import fish_salience, population_salience, true_driver_regions
    from decoding.salience_check import auroc
    from decoding.synthetic import PRIVATE_DRIVER_REGION

    sal = [fish_salience(res.model.views[i], res.infos[i], r) for i, r in enumerate(fish)]
    truth = true_driver_regions(fish)
    out: dict[str, Any] = {"truth": sorted(truth)}
    private = f"{PRIVATE_DRIVER_REGION}_L"
    for name, kw in (("top", {}), ("top1", {"top_fraction": 0.01}), ("mean", {"effect": "mean"}),
                     ("conj", {"test": "conjunction"})):  # fmt: skip
        pop = population_salience(sal, **kw)
        t = pop.table
        labels = t["region"].isin(truth).to_numpy()
        row = t.set_index("region").loc[private] if private in set(t["region"]) else None
        out[name] = {
            "auroc": auroc(t["mean_log2_ratio"].to_numpy(), labels),
            "reported": pop.populated(),
            "private_rank": int(row["rank"]) if row is not None else None,
            "private_reported": bool(row["population"]) if row is not None else False,
            "private_sig_fish": int(row["n_significant"]) if row is not None else 0,
        }
    return out


def run_seed(seed: int, args: argparse.Namespace) -> dict[str, Any]:
    """Everything one seed measures (in a worker process, one thread)."""
    import torch

    if args.device == "cpu":
        torch.set_num_threads(1)
    from decoding.multifish import fit_multifish, transfer_fish
    from decoding.synthetic import make_multifish_demo

    all_fish = make_multifish_demo(6, args.neurons, args.frames, seed=seed)
    fish, sixth = all_fish[:5], all_fish[5]
    cfg = _config(args, seed)
    out: dict[str, Any] = {"seed": seed, "neurons": [r.n_neurons for r in all_fish]}
    out["single"] = [_single(r, cfg) for r in fish]
    out["sixth_single"] = _single(sixth, cfg)
    res, cpu, wall = _timed(fit_multifish, fish, cfg)
    out["multi"] = {"rmse": [float(i.metrics["test"]["rmse"]) for i in res.infos], "cpu": cpu,
                    "wall": wall, "epochs": len(res.history)}  # fmt: skip
    out["population"] = _population(res, fish)
    tr, cpu, wall = _timed(transfer_fish, res.model, res.infos, sixth, cfg, train_fraction=0.2,
                           input_regions=res.input_regions, prior=args.prior)  # fmt: skip
    out["transfer"] = {"rmse": float(tr.infos[-1].metrics["test"]["rmse"]), "cpu": cpu,
                       "restart": tr.metrics.get("restart")}  # fmt: skip
    out["multi"]["joint_lr"] = res.metrics.get("joint_lr")
    print(f"seed {seed} done: {_seed_line(out)}", flush=True)
    return out


def _seed_line(o: dict[str, Any]) -> str:
    s = [round(x["rmse"], 4) for x in o["single"]]
    m = [round(x, 4) for x in o["multi"]["rmse"]]
    return (
        f"single {s}, multi {m}; sixth single {o['sixth_single']['rmse']:.4f}, transfer "
        f"{o['transfer']['rmse']:.4f} (restart {o['transfer']['restart']}, joint lr "
        f"{o['multi']['joint_lr']:.2g}); region AUROC {o['population']['top']['auroc']:.3f}"
    )


def _report_rmse(results: list[dict[str, Any]]) -> None:
    print(f"\n{'fish':<6} {'single RMSE':>12} {'multi RMSE':>11}  multi <= single (seed mean)")
    ok = 0
    for i in range(5):
        s = statistics.mean(r["single"][i]["rmse"] for r in results)
        m = statistics.mean(r["multi"]["rmse"][i] for r in results)
        ok += m <= s
        print(f"fish {i:<2} {s:>12.4f} {m:>11.4f}  {'yes' if m <= s else 'NO'}")
    per_seed = [sum(m <= s["rmse"] for m, s in zip(r["multi"]["rmse"], r["single"], strict=True))
                for r in results]  # fmt: skip
    print(f"goal 1 (multi <= single on every fish): {ok}/5 fish (per seed: {per_seed} of 5)")
    s6 = statistics.mean(r["sixth_single"]["rmse"] for r in results)
    t6 = statistics.mean(r["transfer"]["rmse"] for r in results)
    ratios = [round(r["transfer"]["rmse"] / r["sixth_single"]["rmse"], 3) for r in results]
    print(
        f"goal 2 (transfer, 20 % of frames): sixth fish single on 100 % {s6:.4f}, transfer "
        f"{t6:.4f}: {t6 / s6:.3f}x (goal <= 1.05; per seed {ratios})"
    )


def _report_time(results: list[dict[str, Any]], device: str) -> None:
    clock = "cpu" if device == "cpu" else "wall"
    rows = []
    for r in results:
        big = int(np.argmax(r["neurons"][:5]))
        alone, multi = r["single"][big], r["multi"]
        rows.append((alone[clock], multi[clock], alone[clock] / alone["epochs"],
                     multi[clock] / multi["epochs"], alone["wall"], multi["wall"]))  # fmt: skip
    a, m, ea, em, wa, wm = (statistics.mean(c) for c in zip(*rows, strict=True))
    what = "CPU s of one thread" if clock == "cpu" else f"wall s on {device}"
    print(
        f"goal 4 (time, to convergence, {what}): 5 fish together {m:.1f} s, the largest alone "
        f"{a:.1f} s: {m / a:.2f}x (goal <= 1.5); per epoch {em:.2f} vs {ea:.2f} s "
        f"({em / ea:.2f}x); wall {wm:.1f} vs {wa:.1f} s"
    )


def _report_population(results: list[dict[str, Any]]) -> None:
    print("\npopulation map (default salience on each fish's test split; truth = regions with "
          "drivers in >= half the fish):")  # fmt: skip
    variants = (
        ("top", "default: top 2 %, t-test"),
        ("top1", "top 1 %, t-test"),
        ("mean", "region mean, t-test"),
        ("conj", "top 2 %, conjunction"),
    )
    n_true = [len(r["population"]["truth"]) for r in results]
    for name, what in variants:
        au = [r["population"][name]["auroc"] for r in results]
        rep = [len(r["population"][name]["reported"]) for r in results]
        true_rep = [len(set(r["population"][name]["reported"]) & set(r["population"]["truth"]))
                    for r in results]  # fmt: skip
        priv = [r["population"][name]["private_reported"] for r in results]
        ranks = [r["population"][name]["private_rank"] for r in results]
        print(
            f"  {what:<26} AUROC {statistics.mean(au):.3f} (seeds {[round(x, 3) for x in au]}); "
            f"reported {rep} (true {true_rep} of {n_true}); "
            f"Cb_L reported {priv}, rank {ranks}"
        )
    top = statistics.mean(r["population"]["top"]["auroc"] for r in results)
    priv = any(r["population"]["top"]["private_reported"] for r in results)
    print(f"goal 3 (default map): AUROC {top:.3f} (goal >= 0.95); private region reported: {priv}")


def main() -> None:
    from decoding.multifish import TRANSFER_PRIORS

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--neurons", type=int, default=3000, help="typical neurons per fish (3000)")
    p.add_argument("--frames", type=int, default=1500, help="frames per fish (1500)")
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--jobs", type=int, default=3, help="seeds run in parallel processes (3)")
    p.add_argument("--epochs", type=int, default=0, help="max epochs (0: the default recipe's)")
    p.add_argument("--patience", type=int, default=0, help="(0: the default recipe's)")
    p.add_argument("--joint-windows", choices=("per-fish", "pooled"), default="per-fish",
                   help="the multi-fish recipe's windows per step (per-fish)")  # fmt: skip
    p.add_argument("--prior", choices=TRANSFER_PRIORS, default="regions",
                   help="the transfer's anatomical prior (regions)")  # fmt: skip
    p.add_argument("--window", type=int, default=0, help="(0: the default recipe's)")
    p.add_argument("--device", default="cpu",
                   help="cpu (default; times are CPU s of one thread) or cuda (times are wall s)")
    args = p.parse_args()
    t0 = time.perf_counter()
    c = _config(args, 0)
    print(
        f"{args.seeds} seeds x 6 demo fish of ~{args.neurons} neurons x {args.frames} frames; "
        f"{c.backbone}, window {c.window}, <= {c.epochs} epochs, patience {c.patience}, batch "
        f"{c.batch_size}, lr {c.lr:g}, joint windows {c.joint_windows}, transfer prior "
        f"{args.prior}; {args.jobs} processes on {args.device}",
        flush=True,
    )
    # a CUDA context cannot be forked; on the CPU the workers fork as before
    context = multiprocessing.get_context("spawn" if args.device != "cpu" else None)
    with ProcessPoolExecutor(max_workers=args.jobs, mp_context=context) as pool:
        results = list(pool.map(run_seed, range(args.seeds), [args] * args.seeds))
    for r in results:
        print(f"seed {r['seed']}: neurons {r['neurons']}; {_seed_line(r)}")
    _report_rmse(results)
    _report_time(results, args.device)
    _report_population(results)
    print(f"\n({time.perf_counter() - t0:.0f} s wall in all)")


if __name__ == "__main__":
    main()
