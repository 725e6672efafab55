"""Shared helpers for the dashboard's Streamlit AppTest tests."""

from __future__ import annotations

from pathlib import Path

from streamlit.testing.v1 import AppTest

APP = str(Path(__file__).resolve().parents[1] / "dashboard" / "app.py")
TIMEOUT = 120


def run_app(**params: str) -> AppTest:
    """Run the app once with these URL query parameters."""
    at = AppTest.from_file(APP, default_timeout=TIMEOUT)
    for k, v in params.items():
        at.query_params[k] = v
    at.run()
    return at


def assert_no_crash(at: AppTest) -> None:
    """No exception and no 'unexpected error' box (user-facing errors are allowed)."""
    assert not at.exception, [e.value for e in at.exception]
    bugs = [e.value for e in at.error if "unexpected error" in e.value]
    assert not bugs, bugs
