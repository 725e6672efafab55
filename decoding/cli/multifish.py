"""Multi-fish commands: ``train`` with several recordings (dispatched from ``decode.py``),
``transfer`` (a new fish into a multi-fish model) and ``population`` (population salience).

``evaluate`` and ``predict`` accept a multi-fish checkpoint through :func:`load_fish_for`.
"""

from __future__ import annotations

import argparse
import glob
import json
import os
from pathlib import Path
from typing import Any

from decoding.errors import DecodingError, RecordingError

__all__ = ["register", "expand_recordings", "load_fish_for", "cmd_train_multi"]

_EXAMPLES_TRANSFER = """\
example:
  python -m decoding transfer --checkpoint runs/multi --recording data/multi/fish_5.h5 \\
      --train-fraction 0.2 --out runs/multi_plus5
"""
_EXAMPLES_POPULATION = """\
example:
  python -m decoding population --checkpoint runs/multi --recording data/multi/fish_*.h5 \\
      --out runs/population.csv
"""


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``transfer`` and ``population`` subcommands.

    Parameters
    ----------
    sub
        The CLI's subparsers (``train``/``evaluate``/``predict`` take several fish elsewhere).
    """
    _add_transfer(sub)
    _add_population(sub)


def _add_transfer(sub: argparse._SubParsersAction) -> None:
    from decoding.cli.decode import add_train_options
    from decoding.multifish import TRANSFER_INITS, TRANSFER_PRIORS, TRANSFER_UPS
    from decoding.region_prior import PRIOR_STRENGTH

    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "transfer",
        help="add a new fish to a multi-fish model, learning only its input projection",
        description="Learn a new fish's input projection (neurons -> hidden) on the first "
        "--train-fraction of its training frames, with the multi-fish model's backbone and head "
        "frozen (or with LoRA adapters: --lora); report its test metrics and save the model with "
        "the new fish added.",
        epilog=_EXAMPLES_TRANSFER,
        formatter_class=fmt,
    )
    p.add_argument("--checkpoint", required=True, help="multi-fish checkpoint folder")
    p.add_argument("--recording", required=True, help="the new fish's recording (.h5)")
    p.add_argument("--out", required=True, help="checkpoint folder to write (all fish)")
    p.add_argument(
        "--train-fraction",
        type=float,
        default=0.2,
        help="share of the new fish's training frames to learn from (its first part), default 0.2",
    )
    p.add_argument(
        "--transfer-init",
        choices=TRANSFER_INITS,
        default="zeros",
        help="the new input weights: zeros (as every fish starts) or ridge readouts of the recent "
        "behaviour (decoding.multifish.ridge_init); default zeros",
    )
    p.add_argument(
        "--restarts",
        type=int,
        default=5,
        help="trainings of the new projection (seeds seed, seed+1, ...); the one with the lowest "
        "loss on the new fish's validation part is kept; default 5",
    )
    p.add_argument(
        "--transfer-up",
        choices=TRANSFER_UPS,
        default="fish",
        help="the projection's second factor (rank -> hidden) starts at a model fish's (restart r: "
        "fish r) or at a random one; default fish",
    )
    p.add_argument(
        "--prior",
        choices=TRANSFER_PRIORS,
        default="regions",
        help="regions: neurons in the atlas regions the model's fish read start with a weaker "
        "penalty (decoding.region_prior); none: every neuron alike; default regions",
    )
    p.add_argument(
        "--prior-strength",
        type=float,
        default=PRIOR_STRENGTH,
        help="exponent of the region prior (penalty / energy**strength per neuron), default "
        "%(default)s",
    )
    p.add_argument(
        "--lora",
        action="store_true",
        help="also train LoRA adapters on the shared transformer backbone (default: frozen)",
    )
    p.add_argument("--seed", type=int, default=0, help="random seed")
    add_train_options(p)
    p.add_argument("--quiet", action="store_true", help="no progress lines")
    p.set_defaults(func=cmd_transfer, backbone=None, init=None)  # the checkpoint's


def _add_population(sub: argparse._SubParsersAction) -> None:
    from decoding.population import POPULATION_CORRECTIONS, POPULATION_EFFECTS, POPULATION_TESTS

    fmt = argparse.RawDescriptionHelpFormatter
    p = sub.add_parser(
        "population",
        help="population salience: atlas regions the decoder relies on across fish",
        description="Per-fish salience of each fish's decoder, summarised per atlas region, then "
        "aggregated across fish: each region's mean effect (--effect top: log2 of its share of "
        "the fish's most salient neurons over chance; mean: log2 of its mean over the fish's "
        "typical region) with a confidence interval, fish in which the region is significant, "
        "consistency, and a one-sided test across fish with FDR correction across regions. "
        "Prints the table; --out writes it as CSV (and the "
        "per-fish table beside it, *_fish.csv).",
        epilog=_EXAMPLES_POPULATION,
        formatter_class=fmt,
    )
    p.add_argument(
        "--checkpoint",
        nargs="+",
        required=True,
        help="one multi-fish checkpoint, or one single-fish checkpoint per recording (same order)",
    )
    p.add_argument(
        "--recording", nargs="+", required=True, help="recordings (.h5), a folder or glob"
    )
    p.add_argument("--epoch", default="test", help="frames: split part or stimulus epoch (test)")
    p.add_argument("--method", default=None, help="salience method (default: the project's)")
    p.add_argument("--effect", choices=POPULATION_EFFECTS, default="top", help="per-fish effect")
    p.add_argument(
        "--top-fraction",
        type=float,
        default=0.02,
        help="--effect top: share of each fish's neurons counted as its most salient (0.02)",
    )
    p.add_argument("--test", choices=POPULATION_TESTS, default="t", help="test across fish (t)")
    p.add_argument("--correction", choices=POPULATION_CORRECTIONS, default="bh")
    p.add_argument("--alpha", type=float, default=0.05, help="significance level (0.05)")
    p.add_argument("--out", default=None, help="CSV file for the region table")
    p.add_argument("--device", default="cpu", help="auto, cuda, mps or cpu (default cpu)")
    p.set_defaults(func=cmd_population)


# ---------------------------------------------------------------------------------- inputs
def expand_recordings(items: list[str]) -> list[str]:
    """Recording paths from files, folders and glob patterns.

    Parameters
    ----------
    items
        ``--recording`` values: files, folders (every ``*.h5`` inside, sorted) or globs.

    Returns
    -------
    list of str
        The paths, in order, each once; a clear error for an item that matches nothing.
    """
    out: list[str] = []
    for item in items:
        if os.path.isdir(item):
            found = sorted(str(p) for p in Path(item).glob("*.h5"))
            if not found:
                raise RecordingError(f"--recording {item}: the folder holds no .h5 recordings")
            out += found
        elif any(c in item for c in "*?["):
            found = sorted(glob.glob(item))
            if not found:
                raise RecordingError(f"--recording {item}: no file matches this pattern")
            out += found
        else:
            out.append(item)
    if len(set(out)) != len(out):
        raise RecordingError(f"--recording: a file is given twice ({' '.join(out)})")
    return out


def _load_all(paths: list[str]) -> list[Any]:
    from decoding.multifish import check_compatible
    from decoding.recording import load_recording

    recs = [load_recording(p) for p in paths]
    check_compatible(recs)
    return recs


def load_fish_for(args: argparse.Namespace, rec: Any) -> tuple[Any, Any]:
    """The decoder of fish ``rec`` in a multi-fish checkpoint.

    Parameters
    ----------
    args
        ``--checkpoint``, ``--fish`` (or matched by fingerprint / fish id) and ``--device``.
    rec
        The recording to decode.

    Returns
    -------
    tuple
        ``(model, info)``, as :func:`decoding.checkpoint.load_checkpoint` returns them.
    """
    from decoding.device import pick_device
    from decoding.multifish import fish_for_recording, load_multifish
    from decoding.provenance import warn_if_other_recording

    result = load_multifish(args.checkpoint, device=pick_device(args.device))
    i = fish_for_recording(result, rec, getattr(args, "fish", None))
    warn_if_other_recording(result.infos[i].recording, rec)
    return result.model.views[i], result.infos[i]


# ---------------------------------------------------------------------------------- train
def cmd_train_multi(args: argparse.Namespace, paths: list[str]) -> int:
    """``train --recording a.h5 b.h5 ...``: one model over several fish.

    Parameters
    ----------
    args
        The ``train`` options.
    paths
        The recordings (expanded).

    Returns
    -------
    int
        The exit status.
    """
    from decoding.cli.decode import _config_from_args, _ProgressWriter
    from decoding.multifish import fit_multifish, save_multifish
    from decoding.train import finish_processes, is_main_process

    config = _config_from_args(args)
    recs = _load_all(paths)
    main = is_main_process()  # False on the other processes of `accelerate launch`
    writer = _ProgressWriter(args.progress_file if main else None, True)
    cancel = (lambda: os.path.exists(args.cancel_file)) if args.cancel_file else None
    res = fit_multifish(recs, config, callback=_echo(writer, args.quiet), cancel=cancel)
    if not main:
        finish_processes()
        return 0
    save_multifish(res, args.out)
    tests = {i.fish_id: i.metrics.get("test") for i in res.infos}
    writer.write(
        {
            "kind": "saved",
            "checkpoint": str(args.out),
            "cancelled": res.cancelled,
            "test": tests,
            "best_epoch": res.metrics.get("best_epoch"),
        }
    )
    state = "cancelled" if res.cancelled else ("stopped early" if res.stopped_early else "finished")
    spec = res.infos[0].spec
    print(
        f"{state}: {len(recs)} fish, {spec.name} ({spec.init}, {res.infos[0].mode}), best epoch "
        f"{res.metrics.get('best_epoch')}, {res.metrics['train_time_s']:.1f} s"
    )
    _print_tests(res.infos)
    print(f"checkpoint: {args.out}")
    finish_processes()
    return 0


def _echo(writer: Any, quiet: bool):
    def cb(ev: Any) -> None:
        writer(ev)
        if not quiet and ev.kind == "epoch":
            print(
                f"epoch {ev.epoch}/{ev.epochs}: train loss {ev.train_loss:.4f}, mean val loss "
                f"{ev.val_loss:.4f}, mean val RMSE {ev.val_rmse:.4f}",
                flush=True,
            )

    return cb


def _print_tests(infos: list[Any]) -> None:
    print(f"{'fish':<24} {'neurons':>8} {'test RMSE':>10} {'r':>7} {'ceiling':>8}")
    for info in infos:
        t = info.metrics.get("test") or {}
        ceil = (t.get("noise_ceiling") or {}).get("rmse")
        print(
            f"{info.fish_id:<24} {info.n_neurons:>8} {t.get('rmse', float('nan')):>10.4f} "
            f"{t.get('pearson_r') or float('nan'):>7.3f} "
            f"{'' if ceil is None else f'{ceil:.4f}':>8}"
        )


# ---------------------------------------------------------------------------------- transfer
def _one_process(command: str) -> None:
    """Refuse ``command`` under a multi-process launcher: every process would do the same work
    and write the same output."""
    from decoding.train import Distributed

    if Distributed.wanted():
        raise DecodingError(
            f"{command} runs in one process; start it without `accelerate launch` (or with "
            "--num_processes 1)"
        )


def cmd_transfer(args: argparse.Namespace) -> int:
    """``transfer``: add a new fish to a multi-fish checkpoint and save the result.

    Parameters
    ----------
    args
        The ``transfer`` options.

    Returns
    -------
    int
        The exit status.
    """
    from decoding.cli.decode import _config_from_args, _ProgressWriter
    from decoding.device import pick_device
    from decoding.multifish import load_multifish, save_multifish, transfer_fish
    from decoding.recording import load_recording

    _one_process("transfer")
    base = load_multifish(args.checkpoint, device=pick_device(args.device))
    rec = load_recording(args.recording)
    stored = base.infos[0].train_config
    keep = ("window", "proj_rank", "temporal_kernel", "proj_init", "hidden_size")
    config = _config_from_args(
        args,
        backbone=base.infos[0].spec.name,
        init=base.infos[0].spec.init,
        split=tuple(base.infos[0].split_fractions),
        **{k: stored[k] for k in keep if k in stored},
    )
    res = transfer_fish(
        base.model,
        base.infos,
        rec,
        config,
        train_fraction=args.train_fraction,
        lora=args.lora,
        init=args.transfer_init,
        up=args.transfer_up,
        restarts=args.restarts,
        prior=args.prior,
        prior_strength=args.prior_strength,
        input_regions=base.input_regions,
        callback=_echo(_ProgressWriter(None, True), args.quiet),
    )
    save_multifish(res, args.out)
    print(
        f"transferred {rec.fish_id} ({rec.n_neurons} neurons) on {args.train_fraction:.0%} of its "
        f"training frames{' with LoRA' if args.lora else ''}, {res.metrics['train_time_s']:.1f} s "
        f"(restart {res.metrics.get('restart', 0)} of {args.restarts} kept; prior: "
        f"{res.metrics['prior']})"
    )
    if args.prior == "regions" and res.metrics["prior"] == "none":
        print(
            "note: no region prior: the checkpoint stores no region energies (saved before they "
            "were added) or the new fish's regions cannot be looked up"
        )
    _print_tests([res.infos[-1]])
    print(f"checkpoint: {args.out}")
    return 0


# ---------------------------------------------------------------------------------- population
def _fish_models(args: argparse.Namespace, recs: list[Any]) -> list[tuple[Any, Any]]:
    from decoding.checkpoint import load_checkpoint
    from decoding.multifish import fish_for_recording, is_multifish_checkpoint, load_multifish

    cks = args.checkpoint
    if len(cks) == 1 and is_multifish_checkpoint(cks[0]):
        res = load_multifish(cks[0])
        return [
            (res.model.views[i], res.infos[i]) for i in (fish_for_recording(res, r) for r in recs)
        ]
    if len(cks) != len(recs):
        raise DecodingError(
            f"--checkpoint: give one multi-fish checkpoint or one single-fish checkpoint per "
            f"recording ({len(cks)} checkpoints for {len(recs)} recordings)"
        )
    return [load_checkpoint(c, recording=r) for c, r in zip(cks, recs, strict=True)]


def cmd_population(args: argparse.Namespace) -> int:
    """``population``: the population salience table (printed, and as CSV with ``--out``).

    Parameters
    ----------
    args
        The ``population`` options.

    Returns
    -------
    int
        The exit status.
    """
    from decoding.population import fish_salience, population_salience

    _one_process("population")
    recs = _load_all(expand_recordings(args.recording))
    models = _fish_models(args, recs)
    fish = [
        fish_salience(m, i, r, epoch=args.epoch, method=args.method, device=args.device)
        for (m, i), r in zip(models, recs, strict=True)
    ]
    pop = population_salience(
        fish,
        effect=args.effect,
        top_fraction=args.top_fraction,
        test=args.test,
        correction=args.correction,
        alpha=args.alpha,
    )
    _print_population(pop)
    if args.out:
        out = Path(args.out)
        if out.suffix.lower() != ".csv":
            raise DecodingError(f"--out {out}: expected a .csv file name")
        from decoding.io_utils import atomic_write_path

        fish_out = out.with_name(out.stem + "_fish.csv")
        for df, path in ((pop.table, out), (pop.per_fish, fish_out)):
            with atomic_write_path(path, suffix=".csv") as tmp:
                df.to_csv(tmp, index=False, float_format="%.6g")
        print(f"wrote {out} and {fish_out}")
    return 0


def _print_population(pop: Any) -> None:
    t = pop.table
    n = int(t["n_fish"].max()) if len(t) else 0
    print(
        f"population salience over {n} fish ({pop.test} test across fish, {pop.correction} "
        f"correction, alpha {pop.alpha}); effect = {pop.effect_label}"
    )
    print(
        f"{'rank':>4} {'region':<10} {'fish':>4} {'mean':>7} {'95% CI':>17} {'sig.fish':>8} "
        f"{'consist.':>8} {'p adj':>9}  population"
    )
    for row in t.itertuples():
        ci = f"[{row.ci_low:6.2f}, {row.ci_high:6.2f}]"
        print(
            f"{row.rank:>4} {row.region:<10} {row.n_fish:>4} {row.mean_log2_ratio:>7.2f} "
            f"{ci:>17} {row.n_significant:>8} {row.consistency:>8.2f} {row.p_adjusted:>9.2g}  "
            f"{'yes' if row.population else ''}"
        )
    print(json.dumps({"population_regions": pop.populated()}))
