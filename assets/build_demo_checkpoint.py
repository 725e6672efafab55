"""Rebuild ``assets/demo_checkpoint/``: the default decoder trained on the demo fish, with the
figures that ``tests/test_demo_checkpoint.py`` checks the shipped folder against.

    .venv/bin/python assets/build_demo_checkpoint.py            # writes assets/demo_checkpoint
    .venv/bin/python assets/build_demo_checkpoint.py --out /tmp/ck

Steps: generate the demo fish exactly as ``make demo`` does (12,500 x 3,000, seed 0), train
``TrainConfig()`` (the product's defaults, seed 0), store validation and test metrics labelled with
the recording's fingerprint, compute the default salience method on the test split and store its
ground-truth recovery (AUROC, AP, top-k precision), save. Run it whenever the generator, the
defaults or the salience engine change: the test fails until you do.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def salience_figures(model, info, rec) -> dict:
    """The default method's ground-truth recovery on the test split (stored and re-checked)."""
    from decoding.salience import DEFAULT_METHOD, salience_of
    from decoding.salience_check import ground_truth_recovery

    res = salience_of(model, info, rec, epoch="test", method=DEFAULT_METHOD)
    rep = ground_truth_recovery(res.mean_abs, rec.ground_truth.importance, rec.regions)
    return {
        "method": DEFAULT_METHOD,
        "range": "test",
        "auroc": rep.auroc,
        "average_precision": rep.average_precision,
        "precision_at_drivers": rep.precision_at_drivers,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=REPO / "assets" / "demo_checkpoint")
    args = ap.parse_args()
    from decoding.checkpoint import save_checkpoint
    from decoding.synthetic import make_demo_fish
    from decoding.train import TrainConfig, fit, store_metrics

    t0 = time.perf_counter()
    rec = make_demo_fish()
    res = fit(rec, TrainConfig(seed=0))
    store_metrics(res, rec)
    res.info.metrics["salience"] = salience_figures(res.model, res.info, rec)
    save_checkpoint(res.model, res.info, args.out)
    test, sal = res.info.metrics["test"], res.info.metrics["salience"]
    print(
        f"wrote {args.out} in {time.perf_counter() - t0:.0f} s: test RMSE {test['rmse']:.4f} "
        f"({test['rmse_over_ceiling']:.2f}x the noise ceiling) on {test['recording']}; "
        f"{sal['method']} AUROC {sal['auroc']:.3f}, AP {sal['average_precision']:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
