"""What the browser tests and the dashboard benchmarks share (``tests/browser_helpers.py``)."""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

KILLED = """
import sys, tempfile, time
sys.path.insert(0, sys.argv[1])
from browser_helpers import exit_on_sigterm

exit_on_sigterm()
with tempfile.TemporaryDirectory(prefix="killed_", dir=sys.argv[2]) as tmp:
    print(tmp, flush=True)
    time.sleep(60)
"""


def test_a_killed_benchmark_removes_its_temporary_folder(tmp_path):
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED, str(ROOT / "tests"), str(tmp_path)],
        stdout=subprocess.PIPE,
        text=True,
    )
    folder = Path(proc.stdout.readline().strip())
    assert folder.is_dir()
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 128 + signal.SIGTERM
    assert not folder.exists()  # without the handler the folder stays
