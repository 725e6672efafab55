"""Rebuild ``assets/demo_results.npz``: the demo's default view (predictions and default-method
salience of ``assets/demo_checkpoint`` over the demo fish's test split), shipped so that a bare
``make demo`` link shows them at once (see ``dashboard/demo_results.py``).

    .venv/bin/python assets/build_demo_results.py            # writes assets/demo_results.npz
    .venv/bin/python assets/build_demo_results.py --out /tmp/r.npz

Generates the demo fish exactly as ``make demo`` does (seed 0), computes on the CPU with the
current code, writes the file keyed by the checkpoint's and the fish's content. Run it whenever the
demo checkpoint, the generator, the default salience method or the engine change:
``tests/test_demo_results.py`` fails until you do (and the app then computes instead of showing it).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))


def main() -> int:
    from dashboard.demo_results import ASSET, compute_results, save_results
    from decoding.salience import DEFAULT_METHOD, METHODS
    from decoding.synthetic import make_demo_fish

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ASSET)
    ap.add_argument("--checkpoint", type=Path, default=REPO / "assets" / "demo_checkpoint")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rec = make_demo_fish()
    steps = 32 if METHODS[DEFAULT_METHOD].uses_steps else 0  # the app's default request
    res = compute_results(args.checkpoint, rec, method=DEFAULT_METHOD, target="sum", steps=steps)
    out = save_results(res, args.out)
    print(
        f"wrote {out} ({out.stat().st_size / 1024:.0f} KB) in {time.perf_counter() - t0:.0f} s: "
        f"{DEFAULT_METHOD} over frames {res.key['range']} of {rec.fish_id}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
