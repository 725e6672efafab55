"""``train``, ``predict``, ``evaluate`` and ``compare``: the decoding commands."""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from dataclasses import Field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from decoding.cli.options import add_command
from decoding.errors import DecodingError

if TYPE_CHECKING:
    from decoding.recording import Recording

__all__ = ["register"]

_EXAMPLES_TRAIN = """\
examples:
  python -m decoding train --recording data/demo/demo_fish.h5 --out runs/default
  python -m decoding train --recording fish.h5 --backbone minilm --lr 3e-4 --out runs/minilm
  python -m decoding train --recording fish.h5 --backbone smollm2 --mode lora --out runs/s
  python -m decoding train --recording fish.h5 --backbone ridge --out runs/ridge
"""


def _backbone_help() -> str:
    from decoding.backbones import REGISTRY

    names = ", ".join(REGISTRY)
    return (
        f"decoder backbone: one of {names}; or a local Hugging Face model folder; or a hub id "
        "such as openai-community/gpt2 (downloads). Default: small-llama (a 4-layer LLaMA, random "
        "init: the measured best on the demo fish; see docs/decoding.md)"
    )


#: argparse ``type`` of each TrainConfig annotation (``X | None`` reads as ``X``).
_FLAG_TYPES: dict[str, type] = {
    "int": int,
    "float": float,
    "str": str,
    "tuple[float, float, float]": float,
    "tuple[str, ...]": str,
}


def _flag_kwargs(f: Field) -> dict[str, Any]:
    """``add_argument`` keywords for one :class:`~decoding.spec.TrainConfig` field."""
    from decoding.spec import default_of

    md, default = f.metadata, default_of(f)
    kw: dict[str, Any] = {"dest": f.name, "help": md["help"]}
    if isinstance(default, bool):
        return kw | {"action": argparse.BooleanOptionalAction, "default": default}
    kw["type"] = _FLAG_TYPES[str(f.type).removesuffix(" | None")]
    kw["default"] = default if default is None else md.get("to_cli", lambda v: v)(default)
    return kw | {k: md[k] for k in ("choices", "metavar", "nargs") if k in md}


def add_config_flags(p: argparse.ArgumentParser, groups: tuple[str, ...]) -> None:
    """One flag per :class:`~decoding.spec.TrainConfig` field of ``groups`` (``model``,
    ``training``: each an argument group; ``run``: ``--backbone``, ``--init``, ``--seed``).

    Parameters
    ----------
    p
        The (sub)command's parser.
    groups
        Which fields to add, by the ``group`` in their metadata.
    """
    from decoding.spec import flag_fields, flag_of

    parents = {g: p if g == "run" else p.add_argument_group(g) for g in groups}
    for f in flag_fields():
        group = f.metadata["group"]
        if group in parents:
            kw = _flag_kwargs(f)
            if f.name == "backbone":
                kw["help"] = _backbone_help()
            parents[group].add_argument(flag_of(f), **kw)


def add_train_options(p: argparse.ArgumentParser) -> None:
    """Options shared by ``train``, ``compare`` and ``transfer`` (defaults = TrainConfig's)."""
    add_config_flags(p, ("model", "training"))


def _config_from_args(args: argparse.Namespace, **over: Any):
    """The :class:`~decoding.spec.TrainConfig` of parsed flags (``over`` replaces values)."""
    from decoding.spec import TrainConfig

    return TrainConfig.from_options(vars(args), **over)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``train``, ``predict``, ``evaluate`` and ``compare`` subcommands."""
    _register_train(sub)
    _register_predict(sub)
    _register_evaluate(sub)
    _register_compare(sub)


def _register_train(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "train",
        help="train a decoder on one recording and save a checkpoint folder",
        description="Train a decoder (neurons -> tail angles) on the chronological training split "
        "of a recording, select the best epoch on the validation split, report test "
        "metrics and save a checkpoint folder (config.json + model.safetensors).",
        func=cmd_train,
        epilog=_EXAMPLES_TRAIN,
    )
    p.add_argument(
        "--recording",
        required=True,
        nargs="+",
        help="recording file (.h5, nlp4neuro format); several files, a folder or a glob train "
        "one multi-fish model (per-fish projections, shared backbone; docs/multifish.md)",
    )
    p.add_argument("--out", required=True, help="checkpoint folder to write (replaced atomically)")
    add_config_flags(p, ("run", "model", "training"))
    p.add_argument(
        "--progress-file",
        default=None,
        help="append progress as JSON lines to this file (for the dashboard)",
    )
    p.add_argument(
        "--cancel-file",
        default=None,
        help="stop cleanly (keeping the best model) as soon as this file exists",
    )
    p.add_argument("--quiet", action="store_true", help="no progress bar")


def _add_checkpoint_inputs(p: argparse.ArgumentParser) -> None:
    """``--recording``, ``--checkpoint`` and ``--fish``: what ``predict``/``evaluate`` apply."""
    p.add_argument("--recording", required=True, help="recording file (.h5)")
    p.add_argument("--checkpoint", required=True, help="checkpoint folder from `train`")
    p.add_argument(
        "--fish",
        default=None,
        help="multi-fish checkpoint: which of its fish (id or index; default: the fish whose "
        "fingerprint or id matches the recording)",
    )


def _add_inference_options(p: argparse.ArgumentParser) -> None:
    """``--epoch``, ``--stride`` and ``--device`` of ``predict``/``evaluate``."""
    p.add_argument("--epoch", default=None, help="only frames of stimulus epochs with this name")
    p.add_argument(
        "--stride", type=int, default=None, help="inference stride (default: checkpoint's)"
    )
    p.add_argument("--device", default="auto", help="auto, cuda, mps or cpu")


def _register_predict(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "predict",
        help="write per-frame predictions of a checkpoint to .h5 or .csv",
        description="Predict the behaviour of every frame (or a range / named epoch) with a "
        "trained "
        "checkpoint. CSV: one row per frame with frame, time_s, split, then one column "
        "per behaviour channel. HDF5: datasets frame, time_s, split, prediction (T, K).",
        func=cmd_predict,
    )
    _add_checkpoint_inputs(p)
    p.add_argument("--out", required=True, help="output file, .csv or .h5")
    p.add_argument("--start", type=int, default=None, help="first frame (default 0)")
    p.add_argument("--stop", type=int, default=None, help="stop frame, exclusive (default: end)")
    _add_inference_options(p)


def _register_evaluate(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "evaluate",
        help="print RMSE, Pearson r and R² of a checkpoint on a recording",
        description="Evaluate a checkpoint on the test split (default) or another split part, "
        "optionally only on frames of a named stimulus epoch. With ground truth "
        "(synthetic fish) the noise ceiling is shown too.",
        func=cmd_evaluate,
    )
    _add_checkpoint_inputs(p)
    p.add_argument(
        "--split",
        choices=("test", "val", "train", "all"),
        default="test",
        dest="part",
        help="which split part to evaluate (default test)",
    )
    _add_inference_options(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def _register_compare(sub: argparse._SubParsersAction) -> None:
    p = add_command(
        sub,
        "compare",
        help="train several backbones/inits over seeds; table + statistics",
        description="Train every backbone x init over several seeds on one recording; print test "
        "RMSE / r / R² as mean ± sem, Mann-Whitney U between models and a Wilcoxon "
        "signed-rank test for pretrained vs random of the same backbone (paired by seed).",
        func=cmd_compare,
        epilog="example:\n  python -m decoding compare --recording data/demo/demo_fish.h5 "
        "--backbones minilm lstm ridge --inits pretrained random --seeds 3\n",
    )
    p.add_argument("--recording", required=True, help="recording file (.h5)")
    p.add_argument(
        "--backbones",
        nargs="+",
        default=["small-llama", "lstm", "ridge"],
        help="backbones to compare (names, folders or hub ids)",
    )
    p.add_argument(
        "--inits",
        nargs="+",
        choices=("pretrained", "random"),
        default=["pretrained"],
        help="inits to try for transformer backbones (baselines are always random)",
    )
    p.add_argument("--seeds", type=int, default=3, help="number of seeds (0, 1, ...), default 3")
    p.add_argument("--out", default=None, help="folder to keep each run's checkpoint (optional)")
    p.add_argument("--json", action="store_true", help="print one JSON object instead of a table")
    add_train_options(p)
    p.set_defaults(seed=0, backbone=None, init=None)  # each run's come from the loops


# ---------------------------------------------------------------------------------------------


def _load_recording(path: str):
    from decoding.recording import load_recording

    return load_recording(path)


class _ProgressWriter:
    """Callback writing JSON lines (steps throttled to 2/s) and driving a tqdm bar."""

    def __init__(self, path: str | None, quiet: bool) -> None:
        self.path = Path(path) if path else None
        if self.path:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self.last = 0.0
        self.bar = None
        self.quiet = quiet

    def write(self, d: dict[str, Any]) -> None:
        if self.path is None:
            return
        d = {"time": time.time(), **d}
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(d, allow_nan=False, default=_nan_free) + "\n")

    def __call__(self, ev) -> None:
        now = time.time()
        if ev.kind != "step" or now - self.last >= 0.5:
            self.write(ev.to_dict())
            self.last = now
        if self.quiet:
            return
        if self.bar is None and ev.total_steps > 1:
            from tqdm import tqdm

            self.bar = tqdm(total=ev.total_steps, unit="step", file=sys.stderr, leave=False)
        if self.bar is not None:
            if ev.kind == "step":
                self.bar.n = ev.step
                self.bar.set_postfix(
                    epoch=f"{ev.epoch}/{ev.epochs}", loss=f"{ev.train_loss:.3f}", refresh=False
                )
                self.bar.refresh()
            elif ev.kind == "epoch":
                self.bar.write(
                    f"epoch {ev.epoch}/{ev.epochs}: train loss {ev.train_loss:.4f}, val loss "
                    f"{_f(ev.val_loss)}, val RMSE {_f(ev.val_rmse)}"
                )
            elif ev.kind == "done":
                self.bar.close()


def _nan_free(o: Any) -> Any:
    return None


def _f(v: float | None) -> str:
    return "n/a" if v is None or not math.isfinite(v) else f"{v:.4f}"


def train_and_save(
    args: argparse.Namespace, config, rec, out: str | None, callback=None, cancel=None
):
    """Fit, evaluate val/test, store metrics in the info and save to ``out`` (if given)."""
    from decoding.checkpoint import save_checkpoint
    from decoding.train import fit, is_main_process, store_metrics

    res = fit(rec, config, callback=callback, cancel=cancel)
    store_metrics(res, rec)
    if out and is_main_process():  # under `accelerate launch` only the main process writes
        save_checkpoint(res.model, res.info, out)
    return res


def cmd_train(args: argparse.Namespace) -> int:
    from decoding.cli.multifish import cmd_train_multi, expand_recordings
    from decoding.train import finish_processes, is_main_process

    given = args.recording
    paths = expand_recordings([given] if isinstance(given, str) else list(given))
    if len(paths) > 1:
        return cmd_train_multi(args, paths)
    config = _config_from_args(args)
    rec = _load_recording(paths[0])
    main = is_main_process()  # False on the other processes of `accelerate launch`
    writer = _ProgressWriter(args.progress_file if main else None, args.quiet or not main)
    cancel = (lambda: os.path.exists(args.cancel_file)) if args.cancel_file else None
    res = train_and_save(args, config, rec, args.out, callback=writer, cancel=cancel)
    if not main:
        finish_processes()
        return 0
    test = res.info.metrics.get("test")
    writer.write(
        {
            "kind": "saved",
            "checkpoint": str(args.out),
            "cancelled": res.cancelled,
            "test": test,
            "best_epoch": res.info.metrics.get("best_epoch"),
        }
    )
    state = (
        "cancelled; kept the best model so far"
        if res.cancelled
        else ("stopped early" if res.stopped_early else "finished")
    )
    print(f"{state}: {res.info.describe()}, best epoch {res.info.metrics.get('best_epoch')}")
    if test:
        ceil = test.get("noise_ceiling") or {}
        extra = f" (noise ceiling {ceil['rmse']:.4f})" if ceil.get("rmse") else ""
        print(
            f"test RMSE {test['rmse']:.4f}{extra}, r {_f(test['pearson_r'])}, "
            f"R² {_f(test['r2'])} over {test['n_frames']} frames"
        )
    print(f"checkpoint: {args.out}")
    finish_processes()
    return 0


def _load_for(args: argparse.Namespace, rec):
    from decoding.checkpoint import load_checkpoint
    from decoding.device import pick_device
    from decoding.multifish import is_multifish_checkpoint

    if is_multifish_checkpoint(args.checkpoint):
        from decoding.cli.multifish import load_fish_for

        return load_fish_for(args, rec)
    if args.fish is not None:
        raise DecodingError(f"--fish {args.fish}: {args.checkpoint} is a single-fish checkpoint")
    return load_checkpoint(args.checkpoint, recording=rec, device=pick_device(args.device))


def cmd_predict(args: argparse.Namespace) -> int:
    from decoding.train import frame_range, predict

    out = Path(args.out)
    suffix = out.suffix.lower()
    if suffix not in (".csv", ".h5", ".hdf5"):
        raise DecodingError(f"--out {out}: expected a .csv or .h5 file name")
    rec = _load_recording(args.recording)
    model, info = _load_for(args, rec)
    if args.epoch is not None and (args.start is not None or args.stop is not None):
        raise DecodingError("predict: give either --epoch or --start/--stop, not both")
    ranges = frame_range(rec, start=args.start, stop=args.stop, epoch=args.epoch)
    frames = np.concatenate([np.arange(a, b) for a, b in ranges])
    pred = np.concatenate([predict(model, info, rec, a, b, stride=args.stride) for a, b in ranges])
    split = info.split_for(rec.n_frames).labels()[frames]
    times = rec.times_s[frames]
    write_predictions(
        out,
        frames,
        times,
        split,
        pred,
        info.behavior_names,
        checkpoint=str(args.checkpoint),
        fish_id=rec.fish_id,
    )
    print(f"wrote {len(frames)} frames x {pred.shape[1]} channels to {out}")
    return 0


def write_predictions(
    out: Path, frames, times, split, pred, names, *, checkpoint: str = "", fish_id: str = ""
) -> Path:
    """Write predictions atomically as CSV (one row per frame) or HDF5."""
    from decoding.io_utils import atomic_write_path

    suffix = out.suffix.lower()
    with atomic_write_path(out, suffix=suffix) as tmp:
        if suffix == ".csv":
            import pandas as pd

            df = pd.DataFrame({"frame": frames, "time_s": times, "split": split})
            for k, n in enumerate(names):
                df[n] = pred[:, k]
            df.to_csv(tmp, index=False, float_format="%.6g")
        else:
            import h5py

            with h5py.File(tmp, "w") as f:
                f.attrs["format"] = "nlp4neuro-predictions"
                f.attrs["checkpoint"] = checkpoint
                f.attrs["fish_id"] = fish_id
                f.create_dataset("frame", data=np.asarray(frames, np.int64))
                f.create_dataset("time_s", data=np.asarray(times, np.float64))
                f.create_dataset("split", data=np.asarray(split, dtype="S5"))
                ds = f.create_dataset("prediction", data=np.asarray(pred, np.float32))
                ds.attrs["behavior_names"] = [str(n) for n in names]
    return out


def cmd_evaluate(args: argparse.Namespace) -> int:
    from decoding.train import evaluate

    rec = _load_recording(args.recording)
    model, info = _load_for(args, rec)
    m = evaluate(model, info, rec, part=args.part, epoch=args.epoch, stride=args.stride)
    if args.json:
        d = m.to_dict()
        d.update(
            split=args.part,
            epoch=args.epoch,
            checkpoint=str(args.checkpoint),
            recording=str(args.recording),
            model=info.describe(),
        )
        print(json.dumps(d, allow_nan=False))
        return 0
    what = args.part + (f", epochs '{args.epoch}'" if args.epoch else "")
    print(f"{info.describe()}\nevaluated on {m.n_frames} frames ({what})")
    print(f"{'channel':<12} {'RMSE':>8} {'r':>7} {'R²':>7}")
    for c in m.per_channel:
        print(f"{c.name:<12} {c.rmse:8.4f} {_f(c.pearson_r):>7} {_f(c.r2):>7}")
    print(f"{'overall':<12} {m.rmse:8.4f} {_f(m.pearson_r):>7} {_f(m.r2):>7}")
    if m.noise_ceiling:
        print(
            f"noise ceiling RMSE {m.noise_ceiling['rmse']:.4f}; model / ceiling "
            f"{m.rmse_over_ceiling:.2f}"
        )
    return 0


def _mean_sem(v: list[float]) -> tuple[float, float]:
    """Mean and standard error of the mean (NaN for fewer than two values)."""
    from scipy import stats

    a = np.asarray(v, float)
    return float(a.mean()), float(stats.sem(a)) if len(a) > 1 else math.nan


def compare_stats(results: dict[str, list[float]], pairs: list[tuple[str, str]]) -> dict[str, Any]:
    """Mann-Whitney U between every two models; Wilcoxon for (pretrained, random) pairs."""
    from scipy import stats

    names = list(results)
    mwu = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            if len(results[a]) > 0 and len(results[b]) > 0:
                u = stats.mannwhitneyu(results[a], results[b], alternative="two-sided")
                mwu.append({"a": a, "b": b, "U": float(u.statistic), "p": float(u.pvalue)})
    wil = []
    for a, b in pairs:
        x, y = np.asarray(results[a]), np.asarray(results[b])
        n = min(len(x), len(y))
        if n >= 1 and np.any(x[:n] != y[:n]):
            w = stats.wilcoxon(x[:n], y[:n])
            wil.append(
                {
                    "pretrained": a,
                    "random": b,
                    "W": float(w.statistic),
                    "p": float(w.pvalue),
                    "n": n,
                }
            )
    return {"mann_whitney_u": mwu, "wilcoxon": wil}


def _references(
    rec: Recording, fractions: tuple[float, float, float]
) -> tuple[float | None, float]:
    """Test-split RMSE of the noise ceiling (synthetic fish only) and of the mean predictor
    (every frame predicted as the training frames' mean: what a decoder that decodes nothing
    scores)."""
    from decoding.metrics import rmse
    from decoding.windows import chronological_split

    split = chronological_split(rec.n_frames, fractions)
    te, tr = split.test, split.train
    y = rec.behavior[te.start : te.stop]
    mean = rec.behavior[tr.start : tr.stop].mean(axis=0)
    gt = rec.ground_truth
    ceiling = None if gt is None else rmse(y, gt.behavior_clean[te.start : te.stop])
    return ceiling, rmse(y, np.broadcast_to(mean, y.shape))


def cmd_compare(args: argparse.Namespace) -> int:
    from decoding.backbones import REGISTRY

    if args.seeds < 1:
        raise DecodingError(f"--seeds must be >= 1, got {args.seeds}")
    rec = _load_recording(args.recording)
    runs: list[tuple[str, str, str]] = []  # (label, backbone, init)
    for bb in args.backbones:
        entry = REGISTRY.get(bb.lower())
        no_weights = entry is not None and (
            entry.kind != "hf" or (entry.pretrained is None and entry.hub_id is None)
        )
        inits = ["random"] if no_weights else args.inits
        for init in inits:
            runs.append((f"{bb}/{init}" if entry is None or entry.kind == "hf" else bb, bb, init))
    table: dict[str, dict[str, list[float]]] = {}
    for label, bb, init in runs:
        table[label] = {"rmse": [], "pearson_r": [], "r2": []}
        for seed in range(args.seeds):
            cfg = _config_from_args(args, backbone=bb, init=init, seed=seed)
            out = (
                str(Path(args.out) / f"{label.replace('/', '-')}-seed{seed}") if args.out else None
            )
            res = train_and_save(args, cfg, rec, out)
            test = res.info.metrics["test"]
            for k in ("rmse", "pearson_r", "r2"):
                table[label][k].append(float(test[k]) if test[k] is not None else float("nan"))
            print(f"  {label} seed {seed}: test RMSE {test['rmse']:.4f}", file=sys.stderr)
    ceiling, mean_rmse = _references(rec, tuple(args.split))
    pairs = []
    for bb in args.backbones:
        if f"{bb}/pretrained" in table and f"{bb}/random" in table:
            pairs.append((f"{bb}/pretrained", f"{bb}/random"))
    st = compare_stats({k: v["rmse"] for k, v in table.items()}, pairs)
    summary = {
        k: {
            m: dict(zip(("mean", "sem"), _mean_sem(v[m]), strict=True)) | {"values": v[m]}
            for m in v
        }
        for k, v in table.items()
    }
    if args.json:
        print(
            json.dumps(
                {
                    "models": summary, "noise_ceiling_rmse": ceiling,
                    "mean_predictor_rmse": mean_rmse, "seeds": args.seeds, **st,
                },  # fmt: skip
                default=_nan_free,
            )
        )
        return 0
    print(
        f"{'model':<24} {'test RMSE':>18} {'r':>16} {'R²':>16}   (mean ± sem, {args.seeds} seeds)"
    )
    for k, v in summary.items():
        cells = [f"{v[m]['mean']:.4f} ± {v[m]['sem']:.4f}" for m in ("rmse", "pearson_r", "r2")]
        print(f"{k:<24} {cells[0]:>18} {cells[1]:>16} {cells[2]:>16}")
    print(f"{'mean predictor':<24} {mean_rmse:>18.4f}   (training-frame mean: no decoding)")
    if ceiling is not None:
        print(f"{'noise ceiling':<24} {ceiling:>18.4f}")
    for t in st["mann_whitney_u"]:
        print(f"Mann-Whitney U {t['a']} vs {t['b']}: U={t['U']:.1f}, p={t['p']:.3g}")
    for t in st["wilcoxon"]:
        print(
            f"Wilcoxon {t['pretrained']} vs {t['random']}: W={t['W']:.1f}, p={t['p']:.3g} "
            f"(n={t['n']})"
        )
    return 0
