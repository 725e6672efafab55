"""The project's shape rules, checked: functions short enough to hold in your head."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_LINES = 80  # the project's style rule (README, "The two commands")


def _functions(package: str):
    for path in sorted((ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                yield f"{path.relative_to(ROOT)}:{node.lineno} {node.name}", node


@pytest.mark.parametrize("package", ["decoding", "dashboard"])
def test_no_function_is_longer_than_80_lines(package):
    long = [
        f"{where} ({node.end_lineno - node.lineno + 1} lines)"
        for where, node in _functions(package)
        if node.end_lineno - node.lineno + 1 > MAX_LINES
    ]
    assert not long, f"functions over {MAX_LINES} lines: {long}"


def test_the_check_sees_functions():
    # a walk that found nothing would pass the test above vacuously
    assert sum(1 for _ in _functions("decoding")) > 300
