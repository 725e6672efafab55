"""The ``python -m decoding`` command-line interface: a group of subcommands.

Each module listed in :data:`COMMAND_MODULES` exposes ``register(subparsers)`` that adds its
subcommands with ``parser.set_defaults(func=handler)``; a handler takes the parsed
``argparse.Namespace`` and returns an exit code. Errors derived from
:class:`decoding.errors.DecodingError` are printed as one line (no traceback) with exit status 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import warnings

from decoding.errors import DecodingError
from decoding.provenance import RecordingMismatchWarning

COMMAND_MODULES: tuple[str, ...] = (
    "decoding.cli.data",  # info, demo-data
    "decoding.cli.decode",  # train, predict, evaluate, compare
    "decoding.cli.salience",  # salience, salience-check
    "decoding.cli.importing",  # import, atlas-info
    "decoding.cli.panel",  # salience-bench
    "decoding.cli.multifish",  # transfer, population (multi-fish train: via decode's train)
)


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every registered subcommand."""
    parser = argparse.ArgumentParser(
        prog="python -m decoding",
        description=(
            "NLP4Neuro Explorer: decode larval zebrafish tail movement from brain-wide calcium "
            "imaging with language-model backbones, and see which neurons the decoder listens to."
        ),
    )
    parser.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    parser.set_defaults(func=None)  # each subcommand sets its own
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a command group not built yet
            if exc.name == name:
                continue
            raise
        module.register(sub)
    return parser


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our own warnings as one ``warning: ...`` line; others as Python prints them."""
    if issubclass(category, RecordingMismatchWarning):
        print(f"warning: {message}", file=sys.stderr)
    else:
        sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def main(argv: list[str] | None = None) -> int:
    """Run the CLI; returns the process exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.func is None:  # no subcommand
        parser.print_help()
        return 2
    debug = args.debug or bool(os.environ.get("DECODING_DEBUG"))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("always", RecordingMismatchWarning)
            warnings.showwarning = _show_warning
            return int(args.func(args) or 0)
    except DecodingError as exc:
        if debug:
            raise
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `python -m decoding info F | head`
        sys.stderr.close()
        return 0
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (FileNotFoundError, PermissionError, IsADirectoryError) as exc:
        if debug:
            raise
        print(f"error: {exc.strerror or exc}: {exc.filename}", file=sys.stderr)
        return 2
