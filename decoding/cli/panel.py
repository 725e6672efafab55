"""``salience-bench``: train and score every generator-panel fish (see :mod:`decoding.panel`)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from decoding.cli.options import add_command, add_options
from decoding.errors import DecodingError

if TYPE_CHECKING:
    from decoding.panel import FishResult

__all__ = ["register", "format_fish", "goal_line"]

_EXAMPLES = """\
examples:
  python -m decoding salience-bench                          # every panel fish, 5,000 x 2,000
  python -m decoding salience-bench --variants demo,decoys --methods saliency,ig
  python -m decoding salience-bench --neurons 12500 --frames 3000 --json runs/panel.json
goals (issue 9): the default map reaches AUROC >= 0.95 and AP >= 0.5 on every fish and beats ridge
|w|·σ and the univariate |corr| map; the default decoder's test RMSE beats the LSTM's and ridge's.
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``salience-bench`` to the CLI.

    Parameters
    ----------
    sub
        The top-level parser's subparsers.
    """
    from decoding.salience import DEFAULT_METHOD, METHODS
    from decoding.synthetic import VARIANTS

    p = add_command(
        sub,
        "salience-bench",
        help="train the default decoder on every generator-panel fish; score salience maps",
        description="For each panel fish: test RMSE of the default decoder, the LSTM and ridge "
        "(x the noise ceiling), and AUROC / average precision / top-k precision / driver-region "
        "ranks of each salience method, ridge |w|·σ, the LSTM's map and univariate |corr|.",
        epilog=_EXAMPLES,
        func=cmd_salience_bench,
    )
    add_options(
        p,
        (
            ("--variants", str, ",".join(VARIANTS), "comma-separated panel fish (default all)"),
            ("--neurons", int, 5000, "neurons per fish (5000)"),
            ("--frames", int, 2000, "frames per fish (2000)"),
            ("--seed", int, 0, "generator and training seed (0)"),
        ),
    )
    p.add_argument(
        "--methods",
        default=DEFAULT_METHOD,
        help=f"comma-separated salience methods for the default decoder, the first is the "
        f"product's map (default {DEFAULT_METHOD}; any of {', '.join(METHODS)})",
    )
    p.add_argument("--baselines", default="lstm,ridge", help="baseline decoders (lstm,ridge)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="FIELD=VALUE",
        help="override a TrainConfig field of the default decoder (repeatable), e.g. "
        "--set input_dropout=0.2 --set input_moment=element (compare another recipe)",
    )
    p.add_argument("--json", type=Path, default=None, help="also write every figure as JSON")


def format_fish(r: FishResult) -> str:
    """One panel fish as a small text table.

    Parameters
    ----------
    r
        The fish's result.

    Returns
    -------
    str
        Decoders (test RMSE, x ceiling, training seconds), then maps (AUROC, AP, top-k, ranks).
    """
    lines = [f"== {r.fish} (noise ceiling {r.noise_ceiling:.4f} rad)"]
    lines.append(f"  {'decoder':<22}{'test RMSE':>10}{'x ceiling':>11}{'train s':>9}")
    for d in r.decoders.itertuples():
        lines.append(f"  {d.decoder:<22}{d.test_rmse:>10.4f}{d.ratio:>11.2f}{d.train_s:>9.0f}")
    lines.append(f"  {'map':<22}{'AUROC':>7}{'AP':>7}{'top-k':>7}  driver-region ranks")
    for m in r.maps.itertuples():
        ranks = " ".join(str(x) for x in m.driver_region_ranks)
        lines.append(
            f"  {m.map:<22}{m.auroc:>7.3f}{m.ap:>7.3f}{m.precision_at_k:>7.2f}  {ranks}"
        )
    return "\n".join(lines)


def goal_line(r: FishResult) -> str:
    """Issue 9's goals for one fish, each ✓ or ✗.

    Parameters
    ----------
    r
        The fish's result (its first map is the product's).

    Returns
    -------
    str
        One line: the fish, then each goal with its mark.
    """
    maps = r.maps.set_index("map")
    ours = maps.iloc[0]
    dec = r.decoders.set_index("decoder")["test_rmse"]

    def mark(ok: bool) -> str:
        return "✓" if ok else "✗"

    checks = [
        f"AUROC>=0.95 {mark(ours.auroc >= 0.95)}",
        f"AP>=0.5 {mark(ours.ap >= 0.5)}",
    ]
    for other in ("ridge·|w|σ", "univariate·|corr|"):
        if other in maps.index:
            o = maps.loc[other]
            checks.append(f"beats {other} {mark(ours.auroc > o.auroc and ours.ap > o.ap)}")
    for other in ("lstm", "ridge"):
        if other in dec.index:
            checks.append(f"RMSE < {other} {mark(dec['default'] < dec[other])}")
    return f"{r.fish:<10} " + "  ".join(checks)


def _overrides(pairs: list[str]) -> dict:
    """``FIELD=VALUE`` strings -> TrainConfig overrides (values parsed as JSON, else strings)."""
    from dataclasses import fields

    from decoding.train import TrainConfig

    names = {f.name for f in fields(TrainConfig)}
    out = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or key not in names:
            raise DecodingError(
                f"--set {pair!r}: expected FIELD=VALUE with FIELD one of TrainConfig's fields "
                f"(e.g. input_dropout, input_l2, proj_init)"
            )
        try:
            out[key] = json.loads(raw)
        except json.JSONDecodeError:
            out[key] = raw
    TrainConfig(**out)  # invalid values: one clear error now, not after the first fish
    return out


def cmd_salience_bench(args: argparse.Namespace) -> int:
    """Run the panel benchmark with the parsed ``salience-bench`` options; print the tables.

    Parameters
    ----------
    args
        The parsed options.

    Returns
    -------
    int
        The exit status (0).
    """
    from decoding.panel import PanelConfig, run_panel
    from decoding.salience import METHODS
    from decoding.synthetic import get_variant

    variants = tuple(v.strip() for v in args.variants.split(",") if v.strip())
    for v in variants:
        get_variant(v)  # unknown names: one clear error before any work
    methods = tuple(m.strip() for m in args.methods.split(",") if m.strip())
    unknown = [m for m in methods if m not in METHODS]
    if unknown or not methods:
        raise DecodingError(f"--methods {args.methods!r}: choose from {', '.join(METHODS)}")
    baselines = tuple(b.strip() for b in args.baselines.split(",") if b.strip())
    config = PanelConfig(
        decoder=_overrides(args.set),
        variants=variants,
        n_neurons=args.neurons,
        n_frames=args.frames,
        seed=args.seed,
        methods=methods,
        baselines=baselines,
    )
    results = run_panel(config, log=lambda s: print(s, file=sys.stderr, flush=True))
    for r in results:
        print(format_fish(r))
    print("== goals (default decoder, its first map)")
    for r in results:
        print(goal_line(r))
    if args.json is not None:
        payload = [
            {
                "fish": r.fish,
                "noise_ceiling": r.noise_ceiling,
                "decoders": r.decoders.to_dict(orient="records"),
                "maps": r.maps.to_dict(orient="records"),
            }
            for r in results
        ]
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(payload, indent=1))
    return 0
