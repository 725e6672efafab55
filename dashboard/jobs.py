"""Background jobs: long work (fine-tuning, big salience runs) runs as a CLI subprocess.

Each job is a folder under the jobs folder, so it survives Streamlit reruns, page reloads and even
an
app restart::

    runs/jobs/<job id>/
        job.json        what was asked: kind, title, command line, outputs, creation time
        status.json     state (running / done / failed / cancelled / crashed), pids, exit code,
                        error
        progress.jsonl  written by the CLI itself (``--progress-file``): one JSON object per line
                        (step / epoch / eval / done / saved events: epoch, losses, ETA...)
        cancel          created to ask for a cancel (``--cancel-file``); the CLI stops cleanly
        log.txt         stdout + stderr of the command

A small supervisor process (``python -m dashboard.jobs supervise DIR``) starts the command, waits
for
it and writes the final status, so the result is recorded even when no browser is open. If the CLI
does not stop within :data:`CANCEL_GRACE_S` of a cancel request the supervisor terminates it.
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from decoding.io_utils import atomic_write_path

__all__ = [
    "Job",
    "start_job",
    "list_jobs",
    "load_job",
    "cancel_job",
    "delete_job",
    "set_shared",
    "stop_process",
    "main",
]

REPO_ROOT = Path(__file__).resolve().parents[1]
CANCEL_GRACE_S = 20.0
FINAL_STATES = ("done", "failed", "cancelled", "crashed")
_CHILDREN: list[subprocess.Popen] = []  # supervisors started by this process, reaped on poll


def _write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_write_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=1, default=str))


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError):
        return {}


def _pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # a zombie (exited, not yet reaped) counts as gone
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _reap() -> None:
    for proc in list(_CHILDREN):
        if proc.poll() is not None:
            _CHILDREN.remove(proc)


@dataclass
class Job:
    """A snapshot of one job folder."""

    dir: Path
    spec: dict[str, Any] = field(default_factory=dict)
    status: dict[str, Any] = field(default_factory=dict)
    progress: dict[str, Any] = field(default_factory=dict)
    events: list[dict[str, Any]] = field(default_factory=list)

    @property
    def history(self) -> list[dict[str, Any]]:
        """Per-epoch progress events (``kind == "epoch"``), for loss curves."""
        return [e for e in self.events if e.get("kind") == "epoch"]

    @property
    def id(self) -> str:
        return self.dir.name

    @property
    def kind(self) -> str:
        return str(self.spec.get("kind", "job"))

    @property
    def title(self) -> str:
        return str(self.spec.get("title", self.id))

    @property
    def state(self) -> str:
        return str(self.status.get("state", "starting"))

    @property
    def finished(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def outputs(self) -> dict[str, str]:
        return dict(self.spec.get("outputs", {}))

    @property
    def error(self) -> str:
        return str(self.status.get("error", ""))

    @property
    def cancel_requested(self) -> bool:
        return (self.dir / "cancel").exists()

    @property
    def created(self) -> float:
        return float(self.spec.get("created", 0.0))

    @property
    def elapsed_s(self) -> float:
        start = float(self.status.get("started", self.created) or self.created)
        end = self.status.get("finished") or time.time()
        return max(0.0, float(end) - start)

    @property
    def fraction(self) -> float | None:
        """Progress in [0, 1] from the CLI's progress file, when it says."""
        p = self.progress
        if "fraction" in p:
            try:
                return min(1.0, max(0.0, float(p["fraction"])))
            except (TypeError, ValueError):
                return None
        for done_key, total_key in (
            ("step", "total_steps"),
            ("epoch", "epochs"),
            ("done", "total"),
        ):
            if p.get(total_key):
                try:
                    return min(1.0, max(0.0, float(p.get(done_key, 0)) / float(p[total_key])))
                except (TypeError, ValueError, ZeroDivisionError):
                    return None
        return None

    @property
    def eta_s(self) -> float | None:
        for key in ("eta_s", "eta"):
            if self.progress.get(key) is not None:
                try:
                    return float(self.progress[key])
                except (TypeError, ValueError):
                    return None
        frac = self.fraction
        if frac and 0 < frac < 1 and not self.finished:
            return self.elapsed_s * (1 - frac) / frac
        return None

    def log_tail(self, n_chars: int = 4000) -> str:
        try:
            data = (self.dir / "log.txt").read_bytes()
        except OSError:
            return ""
        return data[-n_chars:].decode("utf-8", errors="replace")


def _read_events(path: Path) -> list[dict[str, Any]]:
    """JSON lines (a partial last line being written is skipped); one JSON object works too."""
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return []
    events = []
    for line in text.splitlines():
        line = line.strip()
        if not line:
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            continue
        if isinstance(obj, dict):
            events.append(obj)
    return events


def load_job(job_dir: str | Path) -> Job:
    """Read a job folder; a running job whose processes are gone is reported as crashed."""
    _reap()
    job_dir = Path(job_dir)
    job = Job(
        dir=job_dir,
        spec=_read_json(job_dir / "job.json"),
        status=_read_json(job_dir / "status.json"),
    )
    job.events = _read_events(job_dir / "progress.jsonl")
    progress_events = [e for e in job.events if e.get("kind") != "saved"]
    job.progress = progress_events[-1] if progress_events else {}
    if not job.finished:
        sup = job.status.get("supervisor_pid") or job.spec.get("supervisor_pid")
        starting = not job.status and time.time() - job.created < 30
        if not starting and not _pid_alive(sup):
            # The supervisor may have just finished: re-read before declaring a crash.
            job.status = _read_json(job_dir / "status.json")
            if not job.finished:
                job.status = {
                    **job.status,
                    "state": "crashed",
                    "error": "the job's process ended without reporting a result "
                    "(killed, out of memory, or the machine restarted); see the log below",
                }
    return job


def list_jobs(jobs_dir: str | Path) -> list[Job]:
    """Every job in the folder, newest first."""
    jobs_dir = Path(jobs_dir)
    if not jobs_dir.is_dir():
        return []
    jobs = [load_job(d) for d in jobs_dir.iterdir() if d.is_dir() and (d / "job.json").exists()]
    return sorted(jobs, key=lambda j: j.created, reverse=True)


def start_job(
    jobs_dir: str | Path,
    kind: str,
    title: str,
    argv: list[str],
    *,
    outputs: dict[str, str] | None = None,
    params: dict[str, Any] | None = None,
    env: dict[str, str] | None = None,
    owner: str = "",
) -> Job:
    """Start ``argv`` in the background in a new job folder and return the job.

    ``owner`` is the browser session that started it (who may see and cancel it when the app is
    shared, see :mod:`dashboard.access`); a job starts unshared.

    ``argv`` and ``outputs`` may contain the placeholders ``{progress}``, ``{cancel}`` and
    ``{job}``; they are replaced by the job's progress file, cancel file and folder.
    """
    jobs_dir = Path(jobs_dir)
    jobs_dir.mkdir(parents=True, exist_ok=True)
    job_id = time.strftime("%Y%m%d-%H%M%S-") + kind + "-" + secrets.token_hex(3)
    job_dir = jobs_dir / job_id
    job_dir.mkdir()
    subst = {
        "progress": str(job_dir / "progress.jsonl"),
        "cancel": str(job_dir / "cancel"),
        "job": str(job_dir),
    }

    def fill(text: str) -> str:  # only our placeholders; other braces (code, JSON) stay as they are
        for name, value in subst.items():
            text = text.replace("{" + name + "}", value)
        return text

    argv = [fill(a) for a in argv]
    outputs = {k: fill(v) for k, v in (outputs or {}).items()}
    spec = {
        "id": job_id,
        "kind": kind,
        "title": title,
        "argv": argv,
        "outputs": outputs,
        "params": params or {},
        "created": time.time(),
        "cwd": str(REPO_ROOT),
        "owner": owner,
        "shared": False,
    }
    _write_json(job_dir / "job.json", spec)
    full_env = {**os.environ, **(env or {})}
    full_env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [full_env.get("PYTHONPATH")])]
    )
    with (job_dir / "supervisor.log").open("wb") as sup_log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "dashboard.jobs", "supervise", str(job_dir)],
            cwd=REPO_ROOT,
            env=full_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=sup_log,
            start_new_session=True,
        )
    _CHILDREN.append(proc)
    spec["supervisor_pid"] = proc.pid
    _write_json(job_dir / "job.json", spec)
    return load_job(job_dir)


def set_shared(job: Job, shared: bool) -> None:
    """Share a job with every browser session (or take it back); kept in ``job.json``."""
    spec = _read_json(job.dir / "job.json")
    if spec:
        spec["shared"] = bool(shared)
        _write_json(job.dir / "job.json", spec)
        job.spec = spec


def cancel_job(job: Job) -> None:
    """Ask a job to stop: the CLI sees the cancel file and stops cleanly, keeping what it saved."""
    if not job.finished:
        (job.dir / "cancel").touch()


def delete_job(job: Job) -> None:
    """Remove a finished job's folder (its outputs elsewhere, such as checkpoints, are kept)."""
    import shutil

    if job.finished:
        shutil.rmtree(job.dir, ignore_errors=True)


def _error_from_log(log: str, returncode: int) -> str:
    lines = [ln.strip() for ln in log.splitlines() if ln.strip()]
    for line in reversed(lines):
        if line.startswith("error:"):
            return line[len("error:") :].strip()
    if lines:
        return f"exit status {returncode}: {lines[-1][:500]}"
    return f"exit status {returncode} and no output"


def supervise(job_dir: Path) -> int:
    """Run the job's command, wait for it, record the final status. Runs in its own process."""
    spec = _read_json(job_dir / "job.json")
    status: dict[str, Any] = {
        "state": "running",
        "supervisor_pid": os.getpid(),
        "started": time.time(),
    }
    log = (job_dir / "log.txt").open("wb")
    try:
        child = subprocess.Popen(
            spec["argv"],
            cwd=spec.get("cwd"),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
        )
    except OSError as exc:
        status.update(
            state="failed",
            error=f"could not start {spec['argv'][0]}: {exc}",
            finished=time.time(),
            returncode=None,
        )
        _write_json(job_dir / "status.json", status)
        return 1
    status["pid"] = child.pid
    _write_json(job_dir / "status.json", status)

    def _forward(signum: int, _frame: object) -> None:
        (job_dir / "cancel").touch()
        child.send_signal(signum)

    signal.signal(signal.SIGTERM, _forward)
    cancel_seen: float | None = None
    while child.poll() is None:
        time.sleep(0.25)
        if (job_dir / "cancel").exists():
            cancel_seen = cancel_seen or time.time()
            if time.time() - cancel_seen > CANCEL_GRACE_S:
                stop_process(child, 5)
    log.close()
    rc = child.returncode
    status.update(returncode=rc, finished=time.time())
    if (job_dir / "cancel").exists():
        status["state"] = "cancelled"
    elif rc == 0:
        status["state"] = "done"
    else:
        status["state"] = "failed"
        tail = (job_dir / "log.txt").read_bytes()[-20000:].decode("utf-8", errors="replace")
        status["error"] = _error_from_log(tail, rc)
    _write_json(job_dir / "status.json", status)
    return 0


def stop_process(proc: subprocess.Popen, grace_s: float = 5) -> None:
    """Terminate ``proc``; kill it if it has not exited after ``grace_s`` seconds.

    Parameters
    ----------
    proc
        A started process.
    grace_s
        Seconds it gets to exit after SIGTERM.
    """
    proc.terminate()
    try:
        proc.wait(grace_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def main(argv: list[str] | None = None) -> int:
    """``python -m dashboard.jobs supervise DIR`` (internal) or ``list DIR``."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) == 2 and argv[0] == "supervise":
        return supervise(Path(argv[1]))
    if len(argv) == 2 and argv[0] == "list":
        for job in list_jobs(argv[1]):
            print(f"{job.id}\t{job.state}\t{job.title}")
        return 0
    print("usage: python -m dashboard.jobs supervise|list DIR", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
