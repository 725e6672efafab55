"""Small helpers for declaring subcommands: one way to add a subcommand and plain options.

A subcommand with examples (``epilog``) keeps their line breaks; plain options (a flag, a type, a
default and a help text) are declared as rows of a table and added in one loop.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterable

__all__ = ["Option", "add_command", "add_options"]

#: ``(flag, type, default, help)``: a plain ``--flag VALUE`` option.
Option = tuple[str, type, object, str]


def add_command(
    sub: argparse._SubParsersAction,
    name: str,
    *,
    help: str,
    description: str,
    func: Callable[[argparse.Namespace], int],
    epilog: str | None = None,
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` whose handler is ``func``.

    Parameters
    ----------
    sub
        The top-level parser's subparsers.
    name
        The subcommand.
    help, description
        The one-line help in the command list, and the text above the options.
    func
        The handler: parsed arguments -> exit status.
    epilog
        Examples printed below the options, line breaks kept.

    Returns
    -------
    argparse.ArgumentParser
        The subcommand's parser, for its options.
    """
    p = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter if epilog else argparse.HelpFormatter,
    )
    p.set_defaults(func=func)
    return p


def add_options(p: argparse.ArgumentParser, rows: Iterable[Option]) -> None:
    """Add plain ``--flag VALUE`` options, one per row of ``(flag, type, default, help)``.

    Parameters
    ----------
    p
        The parser.
    rows
        The options.
    """
    for flag, kind, default, text in rows:
        p.add_argument(flag, type=kind, default=default, help=text)
