"""Honest times for background jobs: measured on this machine's earlier jobs, never guessed.

A fine-tune's wall time is: start-up (load the recording and backbone) + training (stopped by
the epoch count or the time budget, whichever comes first) + the final evaluation and saving.
:func:`timings` measures the three parts of finished fine-tunes from their job folders
(``status.json`` start/finish, the ``time`` of each progress event); :func:`finetune_estimate`
turns them into the form's estimate and :func:`progress_line` into a running job's progress
and time left.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

__all__ = ["Timings", "timings", "finetune_estimate", "progress_line", "same_kind"]


@dataclass(frozen=True)
class Timings:
    """Medians over finished fine-tunes of one kind (seconds); ``runs`` = how many."""

    startup_s: float
    epoch_s: float
    finish_s: float
    runs: int


def same_kind(job: Any, options: dict[str, Any]) -> bool:
    """A finished fine-tune of the same backbone, init, mode and window as ``options``."""
    p = job.spec.get("params") or {}
    keys = ("backbone", "init", "mode", "window")
    return job.kind == "train" and all(p.get(k) == options.get(k) for k in keys)


def _parts(job: Any) -> tuple[float, float, float] | None:
    """(start-up, seconds per epoch, evaluation + saving) of one finished fine-tune."""
    started, finished = job.status.get("started"), job.status.get("finished")
    timed = [e for e in job.events if isinstance(e.get("time"), int | float)]
    epochs = [e for e in timed if e.get("kind") == "epoch" and e.get("elapsed_s") is not None]
    if not (started and finished and timed and epochs):
        return None
    first_t = float(timed[0]["time"]) - float(timed[0].get("elapsed_s") or 0.0)
    last = epochs[-1]
    per_epoch = float(last["elapsed_s"]) / max(1, int(last.get("epoch") or len(epochs)))
    return (
        max(0.0, first_t - float(started)),
        per_epoch,
        max(0.0, float(finished) - float(last["time"])),
    )


def timings(all_jobs: list[Any], options: dict[str, Any]) -> Timings | None:
    """Medians of the parts of finished (done) fine-tunes like ``options``; ``None``: none yet."""
    parts = [
        got
        for j in all_jobs
        if j.state == "done" and same_kind(j, options) and (got := _parts(j)) is not None
    ]
    if not parts:
        return None
    return Timings(*(statistics.median(p[i] for p in parts) for i in range(3)), runs=len(parts))


def finetune_estimate(all_jobs: list[Any], options: dict[str, Any]) -> str:
    """One sentence: how long a fine-tune with ``options`` should take here, and from what."""
    epochs, budget = int(options.get("epochs") or 0), int(options.get("max_time") or 0)
    cap = f"the time budget ({budget} s) or {epochs} epochs, whichever comes first"
    t = timings(all_jobs, options)
    if t is None:
        return (
            f"No {options.get('backbone')} fine-tune like this has finished on this machine yet, "
            f"so there is no measured time: training stops at {cap}; loading the backbone "
            "before and the final test evaluation after add to that (this run measures both "
            "for the next estimate)."
        )
    train = epochs * t.epoch_s
    if budget:
        train = min(train, float(budget))
    total = t.startup_s + train + t.finish_s
    return (
        f"Estimated **{total:.0f} s** here: start-up {t.startup_s:.0f} s + training "
        f"{train:.0f} s ({t.epoch_s:.1f} s per epoch; stops at {cap}) + evaluation and saving "
        f"{t.finish_s:.0f} s — medians of {t.runs} earlier run(s) of this kind on this machine."
    )


def progress_line(job: Any, all_jobs: list[Any]) -> tuple[float | None, str]:
    """(fraction done or ``None``, what the job is doing and the time left) of a running job."""
    p, elapsed = job.progress, job.elapsed_s
    if not p:
        what = "loading the recording and the model" if job.kind == "train" else "computing"
        note = "" if job.kind == "train" else " (this command reports no intermediate steps)"
        return None, f"{what}… {elapsed:.0f} s so far{note}"
    text = f"epoch {p.get('epoch', '?')}/{p.get('epochs', '?')}"
    if p.get("total_steps"):
        text += f" · step {p.get('step', 0)}/{p['total_steps']}"
    if p.get("train_loss") is not None:
        text += f" · loss {p['train_loss']:.4f}"
    if p.get("val_rmse") is not None:
        text += f" · val RMSE {p['val_rmse']:.4f}"
    left = _time_left(job, all_jobs)
    if left is not None:
        text += left
    return job.fraction, text


def _time_left(job: Any, all_jobs: list[Any]) -> str | None:
    """`` · about N s of training left (…)`` from the measured step rate and the time budget,
    plus the final evaluation measured on earlier runs of the kind."""
    p = job.progress
    trained = p.get("elapsed_s")
    if not isinstance(trained, int | float) or p.get("kind") == "done":
        return None
    by_steps = p.get("eta_s") if isinstance(p.get("eta_s"), int | float) else None
    budget = (job.spec.get("params") or {}).get("max_time") or 0
    by_budget = max(0.0, float(budget) - float(trained)) if budget else None
    options = [v for v in (by_steps, by_budget) if v is not None]
    if not options:
        return None
    left = min(options)
    why = "time budget" if by_budget is not None and left == by_budget else "measured step rate"
    t = timings(all_jobs, job.spec.get("params") or {}) if job.kind == "train" else None
    after = f" (~{t.finish_s:.0f} s measured)" if t is not None else ""
    return f" · about {left:.0f} s of training left ({why}), then the test evaluation{after}"
