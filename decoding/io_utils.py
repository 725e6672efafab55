"""Small I/O helpers shared by every module: atomic writes, file identity, the cache root.

- :func:`atomic_write_path` / :func:`atomic_write_dir`: write beside the target, rename on success;
- :func:`file_key` / :func:`file_fingerprint`: the one definition of "the same unchanged file"
  (resolved path, size, modification time in ns), as a hashable key or a JSON-able dict;
- :func:`cache_root`: the one folder every cache lives under (callers add a subfolder per kind).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

__all__ = ["atomic_write_path", "atomic_write_dir", "cache_root", "file_fingerprint", "file_key"]

#: Environment variable that overrides :func:`cache_root`.
CACHE_ENV = "NLP4NEURO_CACHE"


@contextlib.contextmanager
def atomic_write_path(final: str | os.PathLike, suffix: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``final``; on success it is renamed onto ``final``.

    A crash (exception, kill) before the rename leaves ``final`` untouched: either the previous file
    or nothing. The temporary file lives in the same folder so the rename is atomic on POSIX.

    Parameters
    ----------
    final
        The file to write.
    suffix
        Added to the temporary name (e.g. ``".h5"``).
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=suffix + ".tmp", dir=final.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, final)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


@contextlib.contextmanager
def atomic_write_dir(final: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary folder beside ``final``; on success it replaces ``final`` as a whole.

    An existing ``final`` folder is moved aside first and removed only after the new one is in
    place, so a crash never leaves a half-written folder under the final name.

    Parameters
    ----------
    final
        The folder to write.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent))
    old: Path | None = None
    try:
        yield tmp
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            if old.exists():
                shutil.rmtree(old)
            os.replace(final, old)
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
        if old is not None and old.exists():
            shutil.rmtree(old, ignore_errors=True)


def file_key(path: str | os.PathLike) -> tuple[str, int, int]:
    """Identity of a file as it is now: ``(resolved path, size in bytes, mtime in ns)``.

    Two calls give the same key exactly when the file was not rewritten in between (to the
    resolution of the file system's clock), so the key suits in-process caches.

    Parameters
    ----------
    path
        An existing file.

    Returns
    -------
    tuple[str, int, int]
        ``(str(path.resolve()), st_size, st_mtime_ns)``.

    Raises
    ------
    FileNotFoundError
        When ``path`` does not exist.
    """
    p = Path(path)
    st = p.stat()
    return (str(p.resolve()), int(st.st_size), int(st.st_mtime_ns))


def file_fingerprint(path: str | os.PathLike) -> dict[str, str | int]:
    """:func:`file_key` as a JSON-able dict, for cache keys written to disk and provenance.

    Parameters
    ----------
    path
        The file to describe (it must exist).

    Returns
    -------
    dict
        ``{"path": resolved path, "size": bytes, "mtime_ns": modification time in ns}``.
    """
    resolved, size, mtime_ns = file_key(path)
    return {"path": resolved, "size": size, "mtime_ns": mtime_ns}


def cache_root() -> Path:
    """The folder every cache of the project lives under; callers add a subfolder per kind.

    ``$NLP4NEURO_CACHE`` when set, else ``$XDG_CACHE_HOME/nlp4neuro`` (when that is an absolute
    path, as the XDG specification requires), else ``~/.cache/nlp4neuro``. The folder is not
    created here (a reader should not create folders).

    Returns
    -------
    Path
        An absolute path (``~`` expanded; a relative setting is taken from the working folder).
    """
    env = os.environ.get(CACHE_ENV, "").strip()
    if env:
        return Path(env).expanduser().absolute()
    xdg = os.environ.get("XDG_CACHE_HOME", "").strip()
    if xdg and Path(xdg).is_absolute():
        return Path(xdg) / "nlp4neuro"
    return Path.home() / ".cache" / "nlp4neuro"
