"""Prepare the default view before anyone asks: the first fish, its atlas meshes and, with the
checkpoint the sidebar picks for it, the predictions and the default-method salience over the
test split (what a bare link opens with; the Explore view of the demo shows the shipped ones at
once, see :mod:`dashboard.demo_results`, and the Salience view then finds the full map here).

Everything goes through :mod:`dashboard.caching`, so the results land in the same in-memory
caches the pages read (and the salience in the on-disk cache). Called by the server's warm-up
thread (``dashboard/serve.py``); never from a page.
"""

from __future__ import annotations

import threading
import time
from typing import Any

from dashboard import caching
from dashboard.context import Context
from dashboard.settings import resolve_settings
from dashboard.state import Selection

__all__ = [
    "default_context",
    "prepare_default_view",
    "page_started",
    "page_finished",
    "wait_for_first_screen",
    "open_default_view",
    "DEFAULT_TARGET",
]

DEFAULT_TARGET = "sum"
_STARTED = threading.Event()  # a page run began in this process
_FINISHED = threading.Event()  # a page run drew everything in this process


def page_started() -> None:
    """Called when a page run begins (the warm-up then leaves the default view to it)."""
    _STARTED.set()


def page_finished() -> None:
    """Called when a page run has drawn everything (its first screen is on its way)."""
    _FINISHED.set()


def wait_for_first_screen(
    within_s: float = 15.0, drawn_within_s: float = 120.0, after_s: float = 3.0
) -> None:
    """Return once the first page has drawn its first screen and the browser had ``after_s``
    seconds to paint it (or no page began within ``within_s`` seconds, or it did not finish
    within ``drawn_within_s``): the warm-up then prepares the rest without competing with that
    page (nor the browser drawing it) for the CPU."""
    if _STARTED.wait(within_s) and _FINISHED.wait(drawn_within_s):
        time.sleep(after_s)


def default_context() -> Context | None:
    """The context a bare link resolves to (first fish, its default checkpoint, the test split,
    device auto), or ``None`` when there is no recording."""
    from dashboard.sidebar import default_model

    settings = resolve_settings()
    recordings = caching.list_recordings(settings.data_dirs)
    if not recordings:
        return None
    checkpoints = caching.list_checkpoints(
        tuple(dict.fromkeys((*settings.checkpoint_dirs, settings.runs_dir)))
    )
    ctx = Context(
        settings=settings, sel=Selection(), recordings=recordings, checkpoints=checkpoints
    )
    ctx.rec_entry = recordings[0]
    ctx.rec_mtime = caching.mtime_ns(ctx.rec_entry.path)
    ctx.rec = caching.recording(ctx.rec_path, ctx.rec_mtime)
    ctx.ckpt = ctx.checkpoint_by_key(default_model(ctx))
    info = None
    if ctx.ckpt is not None:
        ctx.ckpt_mtime = caching.mtime_ns(ctx.ckpt.path)
        info = caching.checkpoint_info(ctx.ckpt_path, ctx.ckpt_mtime)
    ctx.split = caching.split_for(ctx.rec.n_frames, info)
    ctx.start, ctx.stop = ctx.split.test.start, ctx.split.test.stop
    return ctx


def open_default_view() -> Context | None:
    """Open what the default view draws first (recording, its fingerprint, the default checkpoint
    loaded, the atlas meshes, each neuron's region, and for the demo its first chart from the
    shipped results): seconds, done before serving."""
    ctx = default_context()
    if ctx is None:
        return None
    caching.recording_fingerprint(ctx.rec_path, ctx.rec_mtime)
    caching.brain_meshes(ctx.atlas_name)
    caching.neuron_regions(ctx.rec_path, ctx.rec_mtime, ctx.atlas_name)
    if ctx.ckpt is not None:  # its size decides where salience runs, before the first chart
        caching.model_parameters(ctx.ckpt_path, ctx.ckpt_mtime, ctx.device)
        from dashboard.views.explore import prepare_default_tail

        prepare_default_tail(ctx)  # the demo's first chart, from the shipped results
    return ctx


def prepare_default_view() -> dict[str, Any]:
    """Fill the caches for the default view (predictions and default-method salience too);
    returns what was prepared (for the server log)."""
    from dashboard.views.salience import (
        IN_PROCESS_MAX,
        salience_cost,
        salience_params,
        salience_request,
    )
    from decoding.salience import DEFAULT_METHOD

    ctx = open_default_view()
    if ctx is None:
        return {}
    done: dict[str, Any] = {"fish": ctx.rec_entry.key if ctx.rec_entry else ""}
    if ctx.ckpt is None:
        return done
    ctx.predictions()
    done["predictions"] = ctx.ckpt.key
    p = salience_params(ctx, {"method": DEFAULT_METHOD, "target": DEFAULT_TARGET, "steps": 32})
    if salience_cost(ctx, p) <= IN_PROCESS_MAX:
        caching.salience(salience_request(ctx, p))
        done["salience"] = DEFAULT_METHOD
    return done
