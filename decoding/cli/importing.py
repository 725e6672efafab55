"""``import`` and ``atlas-info``: bring lab data and real reference atlases in.

python -m decoding import nlp4neuro raw_data_f9 --out data/fish9.h5 --planes 0-5
python -m decoding import --help            # lists the formats
python -m decoding atlas-info ~/.brainglobe/mpin_zfish_1um_v1.0
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from decoding.cli.options import add_command

__all__ = ["register"]


def register(sub: argparse._SubParsersAction) -> None:
    """Add the ``import`` and ``atlas-info`` subcommands.

    Parameters
    ----------
    sub
        The top-level parser's subparsers.
    """
    from decoding.atlas_loaders import atlas_loader_names
    from decoding.importers import get_importer, importer_names
    from decoding.recording import MAX_OUTSIDE_FRACTION

    names = importer_names()
    p = sub.add_parser(
        "import",
        help=f"convert lab data to a recording ({', '.join(names)})",
        description="Convert a lab's files into one recording file (.h5). Each format has its "
        "own options: python -m decoding import FORMAT --help.",
        epilog="example:\n"
        "  python -m decoding import nlp4neuro raw_data_f9 --out data/fish9.h5 --affine A.txt",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )  # no handler of its own: each FORMAT sub-parser sets one
    fmt = p.add_subparsers(dest="format", metavar="FORMAT")
    fmt.required = True
    for name in names:
        imp = get_importer(name)
        q = fmt.add_parser(name, help=imp.summary, description=imp.summary)
        q.add_argument("src", type=Path, help="source folder or file")
        q.add_argument("--out", type=Path, required=True, help="recording file to write (.h5)")
        q.add_argument("--force", action="store_true", help="replace an existing --out file")
        q.add_argument(
            "--max-outside",
            type=float,
            default=MAX_OUTSIDE_FRACTION,
            metavar="FRACTION",
            help="largest fraction of neurons allowed outside the atlas volume after the "
            "registration; they are kept, labelled 'outside' (default "
            f"{MAX_OUTSIDE_FRACTION:g}); more refuses the import",
        )
        imp.add_arguments(q)
        q.set_defaults(func=_cmd_import, import_format=name)

    p = add_command(
        sub,
        "atlas-info",
        help="one-screen summary of an atlas (NIfTI + CSV, Z-Brain .mat, BrainGlobe folder)",
        description="Load a reference atlas with the matching loader and print its summary.",
        func=_cmd_atlas_info,
    )
    p.add_argument("path", type=Path, help="atlas file or folder")
    p.add_argument(
        "--format",
        default="auto",
        choices=["auto", *atlas_loader_names()],
        help="loader to use (default: guessed from the path)",
    )
    p.add_argument(
        "--voxel-um", type=float, help="downsample to about this voxel size while loading"
    )


_COMMON = {"src", "out", "force", "func", "import_format", "command", "debug", "format"}


def _cmd_import(args: argparse.Namespace) -> int:
    from decoding.importers import import_recording

    options = {k: v for k, v in vars(args).items() if k not in _COMMON}
    t0 = time.perf_counter()
    result = import_recording(
        args.import_format, args.src, args.out, overwrite=args.force, **options
    )
    rec = result.recording
    print(f"{args.import_format} import of {args.src} ({time.perf_counter() - t0:.1f} s):")
    print(result.report.text())
    print(
        f"recording: {rec.n_frames} frames x {rec.n_neurons} neurons, behaviour "
        f"{rec.behavior_names}, {len(rec.epochs)} epochs, atlas {rec.atlas!r}"
    )
    return 0


def _cmd_atlas_info(args: argparse.Namespace) -> int:
    from decoding.atlas_loaders import load_atlas

    atlas = load_atlas(args.path, format=args.format, voxel_um=args.voxel_um)
    print(atlas.summary())
    return 0
