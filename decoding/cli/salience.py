"""``salience`` and ``salience-check``: which neurons the decoder listens to; can we trust it."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

from decoding.cli.options import add_command, add_options
from decoding.errors import SalienceError

__all__ = ["register", "OUT_SUFFIXES"]

#: What ``salience --out`` accepts: HDF5 (everything, plus the old per-neuron CSV beside it) or CSV.
OUT_SUFFIXES = (".h5", ".hdf5", ".csv")

_EXAMPLES = """\
examples:
  python -m decoding salience --recording data/demo/demo_fish.h5 \\
      --checkpoint assets/demo_checkpoint --epoch left --out runs/sal/left.h5
  python -m decoding salience --recording fish.h5 --checkpoint runs/m --epoch test \\
      --method ixg --target lateral --out runs/sal/test_ixg.h5
  python -m decoding salience --recording fish.h5 --checkpoint runs/m --method ablation \\
      --start 100 --stop 160 --out runs/sal/regions.h5
outputs: FILE.h5 (per-frame map, per-neuron summary, delta, provenance, region and
lateralisation tables) and FILE.csv beside it (one row per neuron: neuron, neuron_id, region, x, y,
z, salience, signed, rank); or, with --out FILE.csv, only that CSV, most salient first: neuron,
neuron_id, region, x_um, y_um, z_um, salience, signed_salience, confidence.
"""

_EXAMPLES_CHECK = """\
examples:
  python -m decoding salience-check --recording data/demo/demo_fish.h5 \\
      --checkpoint assets/demo_checkpoint --epoch test --methods ig,ixg,saliency --randomise
  python -m decoding salience-check --recording data/demo/demo_fish.h5 \\
      --checkpoint assets/demo_checkpoint --ablation --k 50 --draws 5 --seeds 3 --epochs 5
"""


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recording", required=True, type=Path, help="recording file (.h5)")
    p.add_argument("--checkpoint", required=True, type=Path, help="checkpoint folder")
    where = p.add_argument_group("frames")
    where.add_argument(
        "--epoch",
        default=None,
        help="a stimulus epoch name (first occurrence; NAME#2 for the second), or train/val/test "
        "for a split part; default: the test split",
    )
    where.add_argument("--start", type=int, default=None, help="first frame (with --stop)")
    where.add_argument("--stop", type=int, default=None, help="end frame, exclusive")
    p.add_argument(
        "--target",
        default="sum",
        help="sum (all tail segments, the study's target), lateral (signed mean tail angle: "
        "positive = bend to the fish's left in the demo fish), or one channel by name/index",
    )
    p.add_argument(
        "--steps",
        type=_steps,
        default=32,
        help="IG steps (Gauss-Legendre) or 'auto' (fewest of 8/16/32/64/128 with a relative "
        "completeness gap <= 1e-3); GradientShap samples. Default 32",
    )
    p.add_argument(
        "--baseline",
        choices=("zeros", "rest"),
        default="zeros",
        help="IG/GradientShap/ablation reference: zeros = the training mean (default), rest = "
        "the mean over 'rest' epochs",
    )
    p.add_argument("--internal-batch-size", type=int, default=None, help="examples per pass")
    p.add_argument(
        "--device", default="cpu", help="cpu (default), cuda, cuda:N, mps or auto (cuda, mps, cpu)"
    )
    p.add_argument("--atlas", type=Path, default=None, help="atlas NIfTI (default: shipped one)")
    p.add_argument(
        "--no-context",
        action="store_true",
        help="windows only inside the frame range (about 3x faster for a 38-frame epoch with "
        "window 20; edge frames then average fewer windows than their predictions)",
    )
    p.add_argument("--cache-dir", type=Path, default=None, help="salience cache folder")
    p.add_argument("--no-cache", action="store_true", help="always recompute, never store")


def _steps(value: str) -> int | str:
    if value == "auto":
        return value
    try:
        n = int(value)
    except ValueError:
        n = 0
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1 or 'auto', got {value!r}")
    return n


def register(sub: argparse._SubParsersAction) -> None:
    """Add ``salience`` and ``salience-check`` to the CLI.

    Parameters
    ----------
    sub
        The top-level parser's subparsers.
    """
    from decoding.salience import DEFAULT_METHOD, METHODS

    p = add_command(
        sub,
        "salience",
        help="per-neuron, per-frame salience of a decoder (Captum) with region statistics",
        description="Attribute a decoder's output to every neuron at every frame of an epoch or "
        "frame range, and summarise it per atlas region.",
        epilog=_EXAMPLES,
        func=cmd_salience,
    )
    _add_common(p)
    names = ", ".join(f"{k} ({v.title})" for k, v in METHODS.items())
    p.add_argument(
        "--method", choices=sorted(METHODS), default=DEFAULT_METHOD, help=f"one of: {names}"
    )
    p.add_argument("--top", type=int, default=15, help="neurons in the printed top-k table")
    p.add_argument(
        "--out",
        required=True,
        type=Path,
        help="FILE.h5 (everything, and FILE.csv beside it) or FILE.csv (one row per neuron)",
    )

    c = add_command(
        sub,
        "salience-check",
        help="validate salience: ground-truth recovery, randomised weights, ablation retraining",
        description="Checks that a salience map can be trusted (see docs/salience.md).",
        epilog=_EXAMPLES_CHECK,
        func=cmd_salience_check,
    )
    _add_common(c)
    c.add_argument(
        "--methods", default="ig,ixg,saliency", help="comma-separated methods to compare"
    )
    c.add_argument(
        "--randomise", action="store_true", help="randomised-weights sanity check (Spearman)"
    )
    c.add_argument("--ablation", action="store_true", help="retrain without top-k vs random-k")
    add_options(
        c,
        (
            ("--k", int, 50, "neurons removed in the ablation (50)"),
            ("--draws", int, 5, "random draws of k neurons (5)"),
            ("--seeds", int, 3, "training seeds with the top-k removed"),
            ("--epochs", int, None, "override training epochs"),
            ("--max-time", float, None, "override seconds per training"),
        ),
    )
    c.add_argument(
        "--by-epoch",
        default=None,
        help="comma-separated epoch names (e.g. left,right): lateralisation per epoch, salience "
        "averaged over every occurrence of each name (first method)",
    )
    c.add_argument("--json", type=Path, default=None, help="also write the figures as JSON")


# ----------------------------------------------------------------------------------------------


def _load(args: argparse.Namespace) -> tuple[Any, Any, Any, Any]:
    from decoding.checkpoint import load_checkpoint
    from decoding.recording import load_recording

    if not args.recording.is_file():
        raise SalienceError(
            f"--recording {args.recording}: no such file; make the demo fish with "
            "`python -m decoding demo-data --out data/demo`"
        )
    recording = load_recording(args.recording)
    from decoding.device import pick_device

    args.device = str(pick_device(args.device))
    model, info = load_checkpoint(args.checkpoint, recording=recording, device=args.device)
    atlas = None
    if args.atlas is not None:
        from decoding.atlas import Atlas

        atlas = Atlas.load(args.atlas)
    return recording, model, info, atlas


def request_from_args(args: argparse.Namespace, method: str) -> Any:
    """The :class:`decoding.salience.SalienceRequest` the ``salience`` options ask for."""
    from decoding.salience import SalienceRequest

    return SalienceRequest(
        method=method,
        target=args.target,
        steps=args.steps,
        baseline=args.baseline,
        internal_batch_size=args.internal_batch_size,
        context=not args.no_context,
    )


def _compute(args, recording, model, info, method: str, *, groups=None, loaded=None, cache=None):
    from decoding.salience import SalienceCache, salience_from_checkpoint

    if cache is None:
        cache = False if args.no_cache else SalienceCache(args.cache_dir)
    epoch = args.epoch
    if epoch is None and args.start is None and args.stop is None:
        epoch = "test"
    return salience_from_checkpoint(
        args.checkpoint,
        recording,
        request_from_args(args, method),
        epoch=epoch,
        start=args.start,
        stop=args.stop,
        groups=groups,
        group_label="atlas regions" if groups is not None else None,
        device=args.device,
        cache=cache,
        loaded=loaded or (model, info),
    )


def _csv_path(out: Path) -> Path:
    return out.with_suffix(".csv")


def _write_tables(path: Path, tables: dict[str, Any]) -> None:
    """Append tables (DataFrames) as groups of column datasets to an existing HDF5 file."""
    import h5py

    with h5py.File(path, "a") as f:
        for name, df in tables.items():
            g = f.require_group(f"anatomy/{name}")
            for col in df.columns:
                values = df[col].to_numpy()
                if values.dtype.kind in "OUS":
                    values = values.astype(str).astype("S")
                g.create_dataset(str(col), data=values)


def cmd_salience(args: argparse.Namespace) -> int:
    import pandas as pd

    from decoding.anatomy import (
        lateralisation,
        neuron_regions,
        neuron_table,
        region_table,
        result_csv_table,
    )
    from decoding.atlas import default_atlas
    from decoding.io_utils import atomic_write_path

    suffix = args.out.suffix.lower()
    if suffix not in OUT_SUFFIXES:
        raise SalienceError(
            f"--out {args.out}: expected a file name ending in {', '.join(OUT_SUFFIXES)} (.h5: "
            "per-frame salience, region tables and a per-neuron .csv beside it; .csv: one row "
            f"per neuron only), found {args.out.suffix or 'no suffix'!r}"
        )
    if args.top < 1:
        raise SalienceError(f"--top must be >= 1, found {args.top}")
    recording, model, info, atlas = _load(args)
    atlas = atlas or default_atlas()
    regions = neuron_regions(recording, atlas)
    groups = regions if args.method == "ablation" else None
    res = _compute(args, recording, model, info, args.method, groups=groups)
    print(res.summary())
    if res.relative_delta is not None:
        print(f"convergence: max |delta| / max |F(x) - F(baseline)| = {res.relative_delta:.3g}")
        if res.relative_delta > 0.01:
            print("note: the completeness gap is above 1%; use more --steps (or --steps auto)")
    sal = res.mean_abs
    table = neuron_table(
        sal,
        regions,
        recording.positions_um,
        signed=res.signed_mean,
        neuron_ids=recording.neuron_ids,
        confidence=res.confidence,
    )
    regs = region_table(sal, regions)
    lat = lateralisation(sal, recording.positions_um, regions, atlas.midline_x_um)
    if suffix == ".csv":
        rows = result_csv_table(res, recording, regions)
        with atomic_write_path(args.out, suffix=".csv") as tmp:
            rows.to_csv(tmp, index=False, float_format="%.6g")
        written = f"{args.out}"
    else:
        with atomic_write_path(args.out, suffix=".h5") as tmp:
            res.save(tmp)
            _write_tables(tmp, {"regions": regs, "lateralisation": lat})
        csv = _csv_path(args.out)
        with atomic_write_path(csv, suffix=".csv") as tmp:
            table.to_csv(tmp, index=False, float_format="%.6g")
        written = f"{args.out} and {csv}"
    with pd.option_context("display.width", 120, "display.max_columns", 12):
        cols = ["rank", "region", "n_neurons", "mean", "share", "p_adjusted", "significant"]
        print("\nregions by mean salience (Mann-Whitney vs rest, Benjamini-Hochberg):")
        print(regs[cols].head(10).to_string(index=False, float_format=lambda v: f"{v:.3g}"))
        li = lat.iloc[0]
        print(f"\nlateralisation (L-R)/(L+R) overall: {li['li']:+.3f}")
        if res.confidence is not None:
            print(f"\nconfidence = {res.params.get('confidence', 'bootstrap stability')}")
        print(f"\ntop {args.top} neurons:")
        top = table.sort_values("rank").head(args.top)
        print(top.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print(f"\nwrote {written}")
    return 0


def cmd_salience_check(args: argparse.Namespace) -> int:
    from decoding.anatomy import neuron_regions
    from decoding.atlas import default_atlas
    from decoding.salience import METHODS
    from decoding.salience_check import (
        ablation_check,
        ground_truth_recovery,
        randomisation_check,
        randomise_weights,
    )

    methods = [m.strip() for m in args.methods.split(",") if m.strip()]
    bad = [m for m in methods if m not in METHODS or m == "ablation"]
    if bad or not methods:
        raise SalienceError(
            f"--methods {args.methods!r}: unknown or unsupported {bad}; choose from "
            f"{[m for m in METHODS if m != 'ablation']}"
        )
    recording, model, info, atlas = _load(args)
    regions = neuron_regions(recording, atlas or default_atlas())
    out: dict[str, Any] = {"methods": {}}
    results = {}
    for m in methods:
        results[m] = _compute(args, recording, model, info, m)
        print(results[m].summary())
    gt = recording.ground_truth
    if gt is not None:
        print("\nground-truth recovery (drivers = neurons with a non-zero tail weight):")
        for m, res in results.items():
            rep = ground_truth_recovery(res.mean_abs, gt.importance, regions, method=m)
            print(rep.summary())
            out["methods"].setdefault(m, {})["recovery"] = {
                k: v for k, v in vars(rep).items() if k != "regions"
            }
        print(f"  true driver regions: {', '.join(rep.driver_regions)}")
        for m, res in results.items():
            rep = ground_truth_recovery(res.mean_abs, gt.importance, regions, method=m)
            print(f"  {m:<9} top regions by mean salience: {', '.join(rep.top_regions)}")
    else:
        print("\n(no ground truth in this recording: recovery check skipped)")
    if args.randomise:
        print("\nrandomised-weights sanity check (lower |rho| = the map depends on training):")
        rand = randomise_weights(model, seed=1234)
        for m, res in results.items():
            rres = _compute(args, recording, rand, info, m, loaded=(rand, info), cache=False)
            rep = randomisation_check(res.mean_abs, rres.mean_abs, method=m)
            print(rep.summary())
            out["methods"].setdefault(m, {})["randomisation"] = vars(rep)
    if args.by_epoch:
        out["lateralisation"] = _by_epoch(args, recording, model, info, methods[0], atlas, regions)
    if args.ablation:
        overrides: dict[str, Any] = {"device": args.device}
        if args.epochs is not None:
            overrides["epochs"] = args.epochs
        if args.max_time is not None:
            overrides["max_time_s"] = args.max_time
        m = methods[0]
        print(f"\nablation check with {m} salience (retraining; this takes a while):")
        rep = ablation_check(
            recording,
            info,
            results[m].mean_abs,
            k=args.k,
            n_random=args.draws,
            n_top_seeds=args.seeds,
            overrides=overrides,
            log=lambda line: print(line, flush=True),
        )
        print(rep.summary())
        out["ablation"] = vars(rep)
    if args.json is not None:
        from decoding.io_utils import atomic_write_path

        with atomic_write_path(args.json, suffix=".json") as tmp:
            tmp.write_text(json.dumps(out, indent=2, default=_jsonable))
        print(f"wrote {args.json}", file=sys.stderr)
    return 0


def _by_epoch(args, recording, model, info, method, atlas, regions) -> dict[str, Any]:
    """Lateralisation of the salience of each named epoch (mean over its occurrences)."""
    from decoding.anatomy import lateralisation_by_epoch
    from decoding.atlas import default_atlas
    from decoding.salience import SalienceCache, salience_from_checkpoint

    names = [n.strip() for n in args.by_epoch.split(",") if n.strip()]
    cache = False if args.no_cache else SalienceCache(args.cache_dir)
    per: dict[str, np.ndarray] = {}
    for name in names:
        occurrences = [e for e in recording.epochs if e.name == name]
        if not occurrences:
            recording.epoch(name)  # raises, listing the known names
        maps = [
            salience_from_checkpoint(
                args.checkpoint, recording, start=e.start, stop=e.stop, method=method,
                target=args.target, steps=args.steps, baseline=args.baseline,
                internal_batch_size=args.internal_batch_size, device=args.device, cache=cache,
                loaded=(model, info), context=not args.no_context,
            ).mean_abs
            for e in occurrences
        ]  # fmt: skip
        per[name] = np.mean(maps, axis=0)
    atlas = atlas or default_atlas()
    df = lateralisation_by_epoch(per, recording.positions_um, regions, atlas.midline_x_um)
    print(f"\nlateralisation by epoch ({method}, (L-R)/(L+R) of mean salience):")
    wide = df.pivot(index="region", columns="epoch", values="li")[names]
    order = ["all"] + [r for r in wide.index if r != "all"]
    print(wide.loc[order].to_string(float_format=lambda v: f"{v:+.3f}"))
    return {name: df[df.epoch == name].set_index("region")["li"].to_dict() for name in names}


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    return str(o)
