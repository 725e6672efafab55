"""Serving the dashboard and driving it in headless Chromium: shared by
``tests/test_dashboard_browser.py``, ``tests/test_dashboard_shared.py`` and
``bench/bench_dashboard.py``.

The app runs as ``make demo`` runs it (``streamlit run dashboard/serve.py``) on 127.0.0.1 (a free
port); the browser is Debian's ``chromium`` (software rendering, no GPU).
"""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

__all__ = [
    "ROOT",
    "CHROMIUM",
    "CHROMIUM_ARGS",
    "free_port",
    "serve",
    "wait_healthy",
    "stop",
    "settle",
    "exit_on_sigterm",
]

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def exit_on_sigterm() -> None:
    """From now on a SIGTERM (``kill``, a CI job's timeout) ends this process as ``sys.exit``
    would, status 143: ``finally`` blocks and ``with`` blocks run, so a benchmark stops its
    servers and removes its temporary folder (a killed one had left ~170 MB in ``/tmp``)."""
    signal.signal(signal.SIGTERM, lambda signum, _frame: sys.exit(128 + signum))


def free_port() -> int:
    """A TCP port free on 127.0.0.1 now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(
    env: dict[str, str], port: int, log: Path, script: str = "serve.py", address: str = "127.0.0.1"
) -> subprocess.Popen:
    """Start ``streamlit run dashboard/<script>`` on ``address:port`` (its output appended to
    ``log``); returns the process (see :func:`wait_healthy`, :func:`stop`)."""
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "dashboard" / script)]
    cmd += ["--server.address", address, "--server.port", str(port)]
    cmd += ["--server.headless", "true", "--browser.gatherUsageStats", "false"]
    cmd += ["--server.fileWatcherType", "none", "--global.developmentMode", "false"]
    with log.open("ab") as out:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 120) -> float:
    """Seconds until ``url``'s health check answers; raises with the log's end if the server
    exits or does not answer within ``timeout``."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            pass
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    tail = log.read_text(errors="replace")[-3000:] if log.is_file() else ""
    raise RuntimeError(f"streamlit did not start within {timeout:.0f} s:\n{tail}")


def stop(proc: subprocess.Popen, grace_s: float = 10) -> None:
    """Terminate the server (killed after ``grace_s`` seconds)."""
    from dashboard.jobs import stop_process

    stop_process(proc, grace_s)


def settle(page: Any, timeout: float = 90.0, quiet_polls: int = 3) -> None:
    """Wait until Streamlit has finished running the script: no 'Running…' status widget in
    ``quiet_polls`` polls in a row (150 ms apart); raises after ``timeout`` seconds."""
    deadline = time.perf_counter() + timeout
    quiet = 0
    while quiet < quiet_polls:
        if time.perf_counter() > deadline:
            raise AssertionError("the app kept running")
        busy = page.locator('[data-testid="stStatusWidget"]').count()
        quiet = 0 if busy else quiet + 1
        page.wait_for_timeout(150)
