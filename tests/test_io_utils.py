"""io_utils: file identity (key and fingerprint) and the one cache root."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from decoding.io_utils import cache_root, file_fingerprint, file_key


def test_file_key_changes_when_the_file_is_rewritten(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"abc")
    key = file_key(f)
    assert key == (str(f.resolve()), 3, f.stat().st_mtime_ns)
    assert file_key(str(f)) == key  # str and Path name the same file
    f.write_bytes(b"abcd")
    assert file_key(f)[1] == 4 and file_key(f) != key
    os.utime(f, ns=(0, 123_456_789))
    assert file_key(f)[2] == 123_456_789


def test_file_key_resolves_links_and_relative_paths(tmp_path: Path, monkeypatch) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"x")
    link = tmp_path / "link.bin"
    link.symlink_to(f)
    monkeypatch.chdir(tmp_path)
    assert file_key("a.bin") == file_key(f) == file_key(link)


def test_file_key_of_a_missing_file_raises(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        file_key(tmp_path / "missing")


def test_file_fingerprint_is_the_key_as_a_dict(tmp_path: Path) -> None:
    f = tmp_path / "a.bin"
    f.write_bytes(b"hello")
    fp = file_fingerprint(f)
    assert fp == {"path": str(f.resolve()), "size": 5, "mtime_ns": f.stat().st_mtime_ns}
    assert tuple(fp.values()) == file_key(f)


def test_cache_root_precedence(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.delenv("NLP4NEURO_CACHE", raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    assert cache_root() == tmp_path / "home" / ".cache" / "nlp4neuro"
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_root() == tmp_path / "xdg" / "nlp4neuro"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative/xdg")  # the XDG spec says: ignore relative
    assert cache_root() == tmp_path / "home" / ".cache" / "nlp4neuro"
    monkeypatch.setenv("NLP4NEURO_CACHE", str(tmp_path / "mine"))
    assert cache_root() == tmp_path / "mine"
    monkeypatch.setenv("NLP4NEURO_CACHE", "~/c")
    assert cache_root() == tmp_path / "home" / "c"
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("NLP4NEURO_CACHE", "rel")
    assert cache_root() == tmp_path / "rel"
    assert not (tmp_path / "rel").exists()  # reading the setting creates nothing
