"""Where the dashboard looks for data, checkpoints and jobs.

Resolved once per script run, in this order (first one that sets a value wins):

1. command-line flags after ``--``: ``streamlit run dashboard/app.py -- --data-dir D [--data-dir D2]
   [--checkpoint-dir C] [--jobs-dir J] [--atlas-dir A]``;
2. environment variables ``NLP4NEURO_DATA``, ``NLP4NEURO_CHECKPOINTS``, ``NLP4NEURO_ATLASES``
   (folders separated by the OS path separator, ``:`` on Linux/macOS) and ``NLP4NEURO_JOBS``;
3. a config file: ``$NLP4NEURO_CONFIG`` or ``nlp4neuro.toml`` in the working directory, with a
   ``[dashboard]`` table holding ``data_dirs``, ``checkpoint_dirs``, ``atlas_dirs`` and
   ``jobs_dir``;
4. defaults: ``data/demo`` for data, ``assets`` and ``runs`` for checkpoints, ``runs/jobs`` for
   jobs, no atlas folders (only the shipped schematic atlas).

Relative paths are taken from the repository root, so the app behaves the same whatever folder
Streamlit was started from.
"""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # Python 3.10: the same parser from PyPI (requirements.txt)
    import tomli as tomllib

REPO_ROOT = Path(__file__).resolve().parents[1]

__all__ = ["REPO_ROOT", "Settings", "resolve_settings"]


@dataclass(frozen=True)
class Settings:
    """Folders the dashboard reads and writes."""

    data_dirs: tuple[Path, ...]
    checkpoint_dirs: tuple[Path, ...]
    jobs_dir: Path
    runs_dir: Path
    sources: dict[str, str] = field(default_factory=dict, compare=False, hash=False)
    atlas_dirs: tuple[Path, ...] = ()  # extra atlases for the sidebar's Atlas picker

    @property
    def upload_dir(self) -> Path:
        """Uploaded recordings go to the first data folder."""
        return self.data_dirs[0]


@dataclass(frozen=True, kw_only=True)
class _Option:
    """One setting and the four places that can set it (see the module docstring)."""

    name: str  # its key in ``Settings.sources``
    flag: str
    env: str
    toml: str
    default: tuple[str, ...]
    many: bool = True  # a list of folders (flag repeated, env split on os.pathsep) or one folder

    @property
    def dest(self) -> str:
        return self.flag.removeprefix("--").replace("-", "_")


_OPTIONS = (
    _Option(
        name="data", flag="--data-dir", env="NLP4NEURO_DATA", toml="data_dirs",
        default=("data/demo",),
    ),
    _Option(
        name="checkpoints", flag="--checkpoint-dir", env="NLP4NEURO_CHECKPOINTS",
        toml="checkpoint_dirs", default=("assets", "runs"),
    ),
    _Option(
        name="atlases", flag="--atlas-dir", env="NLP4NEURO_ATLASES", toml="atlas_dirs", default=()
    ),
    _Option(
        name="jobs", flag="--jobs-dir", env="NLP4NEURO_JOBS", toml="jobs_dir",
        default=("runs/jobs",), many=False,
    ),
)  # fmt: skip


def _abs(p: str | Path) -> Path:
    path = Path(os.path.expanduser(str(p)))
    return path if path.is_absolute() else (REPO_ROOT / path)


def _split_env(value: str) -> list[str]:
    return [v for v in value.split(os.pathsep) if v.strip()]


def _parse_argv(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dashboard/app.py", add_help=False, allow_abbrev=False)
    for opt in _OPTIONS:
        if opt.many:
            parser.add_argument(opt.flag, action="append", default=[])
        else:
            parser.add_argument(opt.flag, default=None)
    args, _unknown = parser.parse_known_args(argv)
    return args


def _read_config(env: dict[str, str]) -> dict:
    path = Path(env["NLP4NEURO_CONFIG"]) if env.get("NLP4NEURO_CONFIG") else Path("nlp4neuro.toml")
    if not path.is_file():
        return {}
    try:
        with path.open("rb") as fh:
            return dict(tomllib.load(fh).get("dashboard", {}))
    except (OSError, tomllib.TOMLDecodeError):
        return {}


def _resolve(
    opt: _Option, args: argparse.Namespace, env: dict[str, str], config: dict
) -> tuple[list[str], str]:
    """(folders, where they came from) of one setting: flag > environment > toml > default."""
    flag = vars(args)[opt.dest]
    if flag:
        return (list(flag) if opt.many else [flag]), opt.flag
    if env.get(opt.env):
        return (_split_env(env[opt.env]) if opt.many else [env[opt.env]]), opt.env
    if config.get(opt.toml):
        value = config[opt.toml]
        return (list(value) if opt.many else [value]), "nlp4neuro.toml"
    return list(opt.default), "default"


def _folders(paths: list[str]) -> tuple[Path, ...]:
    """Absolute folders, in order, each once."""
    return tuple(dict.fromkeys(_abs(p) for p in paths))


def resolve_settings(argv: list[str] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Resolve the folders from CLI flags, environment, config file and defaults (in that order).

    Parameters
    ----------
    argv
        Command-line arguments after ``--`` (default: ``sys.argv[1:]``); unknown ones are ignored.
    env
        Environment variables (default: ``os.environ``).

    Returns
    -------
    Settings
        The folders, with ``sources`` naming where each came from (flag, variable, file, default).
    """
    argv = sys.argv[1:] if argv is None else argv
    env = dict(os.environ) if env is None else env
    args = _parse_argv(argv)
    config = _read_config(env)
    found = {opt.name: _resolve(opt, args, env, config) for opt in _OPTIONS}
    jobs_dir = _abs(found["jobs"][0][0])
    return Settings(
        data_dirs=_folders(found["data"][0]),
        checkpoint_dirs=_folders(found["checkpoints"][0]),
        jobs_dir=jobs_dir,
        # Fine-tunes started from the app land beside the jobs folder; make sure they are listed.
        runs_dir=jobs_dir.parent,
        sources={name: source for name, (_paths, source) in found.items()},
        atlas_dirs=_folders(found["atlases"][0]),
    )
