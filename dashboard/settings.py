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

import tomllib

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


def _abs(p: str | Path) -> Path:
    path = Path(os.path.expanduser(str(p)))
    return path if path.is_absolute() else (REPO_ROOT / path)


def _split_env(value: str) -> list[str]:
    return [v for v in value.split(os.pathsep) if v.strip()]


def _parse_argv(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="dashboard/app.py", add_help=False, allow_abbrev=False)
    parser.add_argument("--data-dir", action="append", default=[])
    parser.add_argument("--checkpoint-dir", action="append", default=[])
    parser.add_argument("--jobs-dir", default=None)
    parser.add_argument("--atlas-dir", action="append", default=[])
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


def resolve_settings(argv: list[str] | None = None, env: dict[str, str] | None = None) -> Settings:
    """Resolve the folders from CLI flags, environment, config file and defaults (in that order)."""
    argv = sys.argv[1:] if argv is None else argv
    env = dict(os.environ) if env is None else env
    args = _parse_argv(argv)
    config = _read_config(env)
    sources: dict[str, str] = {}

    if args.data_dir:
        data, sources["data"] = args.data_dir, "--data-dir"
    elif env.get("NLP4NEURO_DATA"):
        data, sources["data"] = _split_env(env["NLP4NEURO_DATA"]), "NLP4NEURO_DATA"
    elif config.get("data_dirs"):
        data, sources["data"] = list(config["data_dirs"]), "nlp4neuro.toml"
    else:
        data, sources["data"] = ["data/demo"], "default"

    if args.checkpoint_dir:
        ckpt, sources["checkpoints"] = args.checkpoint_dir, "--checkpoint-dir"
    elif env.get("NLP4NEURO_CHECKPOINTS"):
        ckpt, sources["checkpoints"] = (
            _split_env(env["NLP4NEURO_CHECKPOINTS"]),
            "NLP4NEURO_CHECKPOINTS",
        )
    elif config.get("checkpoint_dirs"):
        ckpt, sources["checkpoints"] = list(config["checkpoint_dirs"]), "nlp4neuro.toml"
    else:
        ckpt, sources["checkpoints"] = ["assets", "runs"], "default"

    if args.atlas_dir:
        atlases, sources["atlases"] = args.atlas_dir, "--atlas-dir"
    elif env.get("NLP4NEURO_ATLASES"):
        atlases, sources["atlases"] = _split_env(env["NLP4NEURO_ATLASES"]), "NLP4NEURO_ATLASES"
    elif config.get("atlas_dirs"):
        atlases, sources["atlases"] = list(config["atlas_dirs"]), "nlp4neuro.toml"
    else:
        atlases, sources["atlases"] = [], "default"

    jobs = args.jobs_dir or env.get("NLP4NEURO_JOBS") or config.get("jobs_dir") or "runs/jobs"
    jobs_dir = _abs(jobs)
    checkpoint_dirs = tuple(dict.fromkeys(_abs(c) for c in ckpt))
    # Fine-tunes started from the app land beside the jobs folder; make sure they are listed.
    runs_dir = jobs_dir.parent
    return Settings(
        data_dirs=tuple(dict.fromkeys(_abs(d) for d in data)),
        checkpoint_dirs=checkpoint_dirs,
        jobs_dir=jobs_dir,
        runs_dir=runs_dir,
        sources=sources,
        atlas_dirs=tuple(dict.fromkeys(_abs(a) for a in atlases)),
    )
