"""``info`` and ``demo-data``: summarise a recording or an atlas; write the synthetic demo fish."""

from __future__ import annotations

import argparse
import textwrap
import time
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from decoding.cli.options import Option, add_command, add_options
from decoding.errors import DecodingError, RecordingError

if TYPE_CHECKING:
    from decoding.recording import Recording

__all__ = ["register", "recording_summary"]

_ATLAS_SUFFIXES = (".nii", ".nii.gz")
_MAX_EPOCH_ROWS = 12
_MAX_REGION_ROWS = 24


_DEMO_SIZE: tuple[Option, ...] = (
    ("--neurons", int, 12_500, "number of neurons (default 12500)"),
    ("--frames", int, 3_000, "number of frames (default 3000)"),
    ("--seed", int, 0, "random seed (default 0)"),
    ("--frame-rate", float, None, "imaging rate in Hz (default: the variant's, 1.1 for the demo)"),
)


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``info`` and ``demo-data`` subcommands.

    Parameters
    ----------
    sub
        The top-level parser's subparsers.
    """
    p = add_command(
        sub,
        "info",
        help="one-screen summary of a recording (.h5) or an atlas (.nii/.nii.gz)",
        description="Print a summary of a recording file (fish, frames, neurons, frame rate, "
        "behaviour channels, epochs with times, neurons per region, ground truth) or of an atlas "
        "label volume (.nii/.nii.gz with its region table).",
        func=_cmd_info,
    )
    p.add_argument("file", type=Path, help="recording .h5 file or atlas .nii/.nii.gz")

    p = add_command(
        sub,
        "demo-data",
        help="write the synthetic demo fish (seeded, with ground truth)",
        description="Generate the synthetic demo fish (optomotor protocol, GCaMP6s calcium, "
        "6 tail angles driven by lateralised nMLF/hindbrain neurons) and write it as a recording.",
        epilog="example:\n  python -m decoding demo-data --out data/demo\n"
        "  python -m decoding demo-data --out /tmp/big --neurons 100000 --frames 3000 --seed 1",
        func=_cmd_demo_data,
    )
    p.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder to write demo_fish.h5 into (or a path ending in .h5)",
    )
    add_options(p, _DEMO_SIZE)
    p.add_argument(
        "--variant",
        default="demo",
        help="panel fish to generate: "
        + ", ".join(_variant_names())
        + " (default demo; see docs/salience.md, 'The generator panel')",
    )
    p.add_argument(
        "--fish",
        type=int,
        default=None,
        help="write this many demo fish for multi-fish decoding into --out (fish_0.h5, ...): "
        "each with its own neuron count (--neurons x U(0.7, 1.3)) and positions, the same driver "
        "regions; with 3 or more, fish 1 also has a private left-cerebellum driver region "
        "(docs/multifish.md)",
    )
    p.add_argument("--force", action="store_true", help="overwrite an existing file")
    p.add_argument(
        "--if-missing",
        action="store_true",
        help="do nothing (exit 0) when the file already exists and was made by this generator "
        "version with these arguments (used by `make demo`); otherwise regenerate it",
    )


# ------------------------------------------------------------------------------------------ info
def _is_atlas_path(path: Path) -> bool:
    return path.name.lower().endswith(_ATLAS_SUFFIXES)


def _cmd_info(args: argparse.Namespace) -> int:
    path: Path = args.file
    if _is_atlas_path(path):
        from decoding.atlas import Atlas

        atlas = Atlas.load(path)
        print(atlas.summary())
        return 0
    from decoding.recording import load_recording

    print(recording_summary(load_recording(path)))
    return 0


def _fmt_time(seconds: float) -> str:
    m, s = divmod(seconds, 60.0)
    return f"{int(m)}:{s:04.1f}"


def _region_counts(rec: Recording) -> tuple[Counter, str]:
    if rec.regions is not None:
        return Counter(rec.regions.tolist()), "from /regions"
    try:
        from decoding.atlas import default_atlas

        atlas = default_atlas()
    except (ImportError, DecodingError):
        return Counter(), ""
    if rec.atlas != atlas.name:
        return Counter(), ""
    return Counter(atlas.acronyms_of(rec.positions_um).tolist()), f"looked up in {atlas.name}"


def recording_summary(rec: Recording) -> str:
    """A one-screen text summary of a :class:`~decoding.recording.Recording`.

    Parameters
    ----------
    rec
        The recording (its activity is not read).

    Returns
    -------
    str
        Lines: fish, file, frames, neurons, behaviour channels, epochs, regions, ground truth.
    """
    T, N, K = rec.n_frames, rec.n_neurons, rec.n_behavior
    lines = [
        f"fish       {rec.fish_id}",
        f"file       {rec.path if rec.path is not None else '(in memory)'}",
        f"source     {rec.source or '-'}",
        f"atlas      {rec.atlas or '-'}",
        f"frames     {T:,} at {rec.frame_rate_hz:g} Hz = {_fmt_time(rec.duration_s)} (m:s)",
        f"neurons    {N:,}",
        f"behaviour  {K} channel(s):",
    ]
    beh = rec.behavior
    for k, (name, unit) in enumerate(zip(rec.behavior_names, rec.behavior_units, strict=True)):
        col = beh[:, k]
        lines.append(
            f"  {name:<12} {unit or '-':<6} min {col.min():+.3f}  max {col.max():+.3f}  "
            f"std {col.std():.3f}"
        )
    counts = Counter(e.name for e in rec.epochs)
    frames = Counter()
    for e in rec.epochs:
        frames[e.name] += e.n_frames
    lines.append(
        f"epochs     {len(rec.epochs)} ({', '.join(f'{n} x{c}' for n, c in counts.items())})"
    )
    for name in counts:
        lines.append(
            f"  {name:<12} {frames[name]:>6} frames  {frames[name] / rec.frame_rate_hz:8.1f} s"
        )
    if rec.epochs:
        lines.append(f"  {'#':>3} {'name':<12} {'frames':>13} {'time (m:s)':>17}  params")
        for i, e in enumerate(rec.epochs[:_MAX_EPOCH_ROWS]):
            t0, t1 = e.start / rec.frame_rate_hz, e.stop / rec.frame_rate_hz
            par = ", ".join(f"{k}={v}" for k, v in e.params.items())
            line = (
                f"  {i:>3} {e.name:<12} {e.start:>6}-{e.stop:<6} {_fmt_time(t0):>8}-"
                f"{_fmt_time(t1):<8}  {par}"
            )
            lines.append(line.rstrip())
        if len(rec.epochs) > _MAX_EPOCH_ROWS:
            lines.append(f"  ... {len(rec.epochs) - _MAX_EPOCH_ROWS} more epochs")
    regions, how = _region_counts(rec)
    if regions:
        lines.append(f"regions    {len(regions)} ({how}); neurons per region:")
        top = regions.most_common()
        shown = top[:_MAX_REGION_ROWS]
        for j in range(0, len(shown), 3):
            lines.append(
                "  " + "".join(f"{a:<12}{c:>7,}    " for a, c in shown[j : j + 3]).rstrip()
            )
        if len(top) > _MAX_REGION_ROWS:
            rest = sum(c for _, c in top[_MAX_REGION_ROWS:])
            lines.append(f"  ... {len(top) - _MAX_REGION_ROWS} more regions ({rest:,} neurons)")
    gt = rec.ground_truth
    if gt is not None:
        drivers = int(np.count_nonzero(gt.importance))
        roles = Counter(gt.role.tolist())
        lines.append(
            f"truth      {drivers} driver neurons; noise ceiling RMSE "
            f"{gt.noise_ceiling_rmse:.4f} (the best achievable)"
        )
        per = ", ".join(f"{v:.3f}" for v in gt.noise_std)
        lines.append(f"  noise std per channel: {per}")
        roles_text = ", ".join(f"{r} {c:,}" for r, c in sorted(roles.items()))
        lines += textwrap.wrap(roles_text, 96, initial_indent="  roles: ", subsequent_indent="    ")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------------ demo
def _variant_names() -> list[str]:
    from decoding.synthetic import VARIANTS

    return list(VARIANTS)


def _existing_source(path: Path) -> str | None:
    """The ``source`` attribute of an existing recording file (``None`` if unreadable)."""
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return str(f.attrs.get("source", ""))
    except OSError:
        return None


def _cmd_demo_data(args: argparse.Namespace) -> int:
    from decoding.synthetic import DEMO_FILENAME, generator_source, get_variant, simulate_fish

    if args.fish is not None:
        return _write_multifish(args)
    var = get_variant(args.variant)
    rate = var.frame_rate_hz if args.frame_rate is None else args.frame_rate
    out: Path = args.out
    name = DEMO_FILENAME if var.name == "demo" else f"{var.name}_fish.h5"
    path = out if out.suffix.lower() in (".h5", ".hdf5") else out / name
    for flag, value, low in (("--neurons", args.neurons, 100), ("--frames", args.frames, 50)):
        if value < low:
            raise RecordingError(f"{flag} must be at least {low}, found {value}")
    if not rate > 0:
        raise RecordingError(f"--frame-rate must be positive (Hz), found {rate}")
    want = generator_source(args.neurons, args.frames, rate, args.seed, var.name)
    if path.exists() and args.if_missing and not args.force:
        if _existing_source(path) == want:
            print(f"{path} already exists; keeping it")
            return 0
        print(f"{path} was made by another generator version or arguments; regenerating it")
    elif path.exists() and not args.force:
        raise RecordingError(f"{path} already exists; pass --force to overwrite it")
    t0 = time.perf_counter()
    fish = simulate_fish(
        n_neurons=args.neurons,
        n_frames=args.frames,
        frame_rate_hz=rate,
        seed=args.seed,
        keep_hidden=False,
        variant=var,
    )
    t_gen = time.perf_counter() - t0
    fish.recording.save(path)
    t_all = time.perf_counter() - t0
    rec = fish.recording
    size_mb = path.stat().st_size / 2**20
    print(
        f"wrote {path} ({size_mb:.1f} MB): {rec.n_neurons:,} neurons x {rec.n_frames:,} frames, "
        f"{len(rec.epochs)} epochs, noise ceiling RMSE {rec.ground_truth.noise_ceiling_rmse:.4f} "
        f"rad; generated in {t_gen:.1f} s, written in {t_all - t_gen:.1f} s"
    )
    return 0


def _write_multifish(args: argparse.Namespace) -> int:
    """``demo-data --fish N``: N seeded demo fish in the folder ``--out``."""
    from decoding.synthetic import PRIVATE_DRIVER_FISH, PRIVATE_DRIVER_REGION, make_multifish_demo

    if args.fish < 1:
        raise RecordingError(f"--fish must be >= 1, found {args.fish}")
    if args.variant != "demo" or args.frame_rate is not None:
        raise RecordingError("--fish makes demo fish at 1.1 Hz; drop --variant / --frame-rate")
    out: Path = args.out
    if out.suffix.lower() in (".h5", ".hdf5"):
        raise RecordingError(f"--out {out}: with --fish give a folder (fish_0.h5 ... go inside)")
    paths = [out / f"fish_{i}.h5" for i in range(args.fish)]
    existing = [p for p in paths if p.exists()]
    if existing and not args.force:
        raise RecordingError(f"{existing[0]} already exists; pass --force to overwrite it")
    t0 = time.perf_counter()
    fish = make_multifish_demo(args.fish, args.neurons, args.frames, args.seed)
    for rec, path in zip(fish, paths, strict=True):
        rec.save(path)
        print(f"wrote {path}: {rec.fish_id}, {rec.n_neurons:,} neurons x {rec.n_frames:,} frames")
    if args.fish >= 3:
        print(
            f"fish {PRIVATE_DRIVER_FISH} has a private driver region ({PRIVATE_DRIVER_REGION}_L); "
            f"{time.perf_counter() - t0:.1f} s"
        )
    return 0
