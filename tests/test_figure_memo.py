"""The per-process figure store: the same key gives the same figure without building it again;
the least recently used figure goes first; a bad size is refused."""

from __future__ import annotations

import pytest

from dashboard.figure_memo import FigureMemo


def test_same_key_reuses_the_figure_and_other_keys_build_their_own():
    memo = FigureMemo(max_entries=4)
    built: list[str] = []

    def build(name: str):
        def make() -> dict:
            built.append(name)
            return {"title": name}

        return make

    a = memo.get(("fish", 0, 38), build("a"))
    assert memo.get(("fish", 0, 38), build("again")) is a
    b = memo.get(("fish", 38, 76), build("b"))
    assert b is not a and b == {"title": "b"}
    assert built == ["a", "b"]


def test_least_recently_used_is_dropped_first():
    memo = FigureMemo(max_entries=2)
    memo.get("a", lambda: "A")
    memo.get("b", lambda: "B")
    memo.get("a", lambda: "never")  # a is used again: b is now the oldest
    memo.get("c", lambda: "C")
    assert len(memo) == 2
    assert memo.get("a", lambda: "rebuilt a") == "A"
    assert memo.get("b", lambda: "rebuilt b") == "rebuilt b"


def test_size_must_be_positive():
    with pytest.raises(ValueError, match="at least 1; found 0"):
        FigureMemo(max_entries=0)
