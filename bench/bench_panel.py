"""The generator panel (issue 9): identification and decoding on fish we did not tune on.

    .venv/bin/python bench/bench_panel.py                  # all variants, 5,000 x 2,000, seed 0
    .venv/bin/python bench/bench_panel.py --seed 1 --methods saliency,ixg,ig

A thin wrapper around ``python -m decoding salience-bench`` (same flags); it prints, per panel fish,
the test RMSE of the default decoder, the LSTM and ridge (x the noise ceiling) and AUROC / AP /
top-k precision / driver-region ranks of each map, then the goals per fish.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from decoding.cli import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main(["salience-bench", *sys.argv[1:]]))
