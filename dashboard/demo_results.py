"""The demo's default view, precomputed and shipped: ``assets/demo_results.npz``.

A bare link to ``make demo`` opens the demo fish with the demo checkpoint over the test split, its
predictions and its default-method salience on screen. Computing them takes seconds to a minute on
a laptop CPU (the model loaded, ~600 frames x 12,500 neurons attributed), so what the Explore view
draws from them is shipped: the predictions, each neuron's mean |salience| and confidence, and the
time course of the most salient neurons (~150 KB).

The file is keyed by *content*: a hash of the checkpoint's files, the recording's content
fingerprint, the frame range, the method, target and steps, the salience engine's version and the
device (``cpu``). :func:`for_view` answers only when every part equals the current selection's,
so a stale or foreign file is never shown as current. ``assets/build_demo_results.py`` writes it;
``tests/test_demo_results.py`` recomputes it with the current code and fails when it drifted.
"""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "ASSET",
    "TOP_K",
    "ShippedSalience",
    "DemoResults",
    "checkpoint_content",
    "results_key",
    "compute_results",
    "save_results",
    "load_results",
    "lookup",
    "for_view",
    "heat_rows",
]

ASSET = Path(__file__).resolve().parents[1] / "assets" / "demo_results.npz"
#: Neurons whose salience over time is shipped (the rows under the tail plot).
TOP_K = 20
_FORMAT = "nlp4neuro-demo-results/1"


@dataclass(frozen=True, kw_only=True)
class ShippedSalience:
    """What the Explore view draws of a salience result (the full map stays in the core's cache).

    ``mean_abs`` and ``confidence`` are ``(N,)``; ``top`` the ``TOP_K`` most salient neurons (most
    salient first) and ``top_abs`` their ``(frames, TOP_K)`` |attribution| over time.
    """

    start: int
    stop: int
    method: str
    target: str
    steps: int
    mean_abs: np.ndarray
    confidence: np.ndarray
    top: np.ndarray
    top_abs: np.ndarray


@dataclass(frozen=True, kw_only=True)
class DemoResults:
    """The shipped default view: its key (see :func:`results_key`), predictions, salience."""

    key: dict[str, Any]
    predictions: np.ndarray
    salience: ShippedSalience


def checkpoint_content(path: str | Path) -> str:
    """BLAKE2b of a checkpoint folder's files (names and bytes): equal only for equal weights."""
    folder = Path(path)
    stamps = tuple(
        (p.name, p.stat().st_size, p.stat().st_mtime_ns)
        for p in sorted(folder.iterdir())
        if p.is_file()
    )
    return _content(str(folder.resolve()), stamps)


@functools.lru_cache(maxsize=16)
def _content(folder: str, stamps: tuple) -> str:
    digest = hashlib.blake2b(digest_size=16)
    for name, _size, _mtime in stamps:
        digest.update(name.encode() + b"\0")
        digest.update((Path(folder) / name).read_bytes())
    return digest.hexdigest()


def results_key(
    *,
    checkpoint: str,
    recording: str,
    start: int,
    stop: int,
    method: str,
    target: str,
    steps: int,
    device: str,
) -> dict[str, Any]:
    """The identity of a default view's results.

    Parameters
    ----------
    checkpoint
        :func:`checkpoint_content` of the checkpoint folder.
    recording
        The recording's content fingerprint (``recording_fingerprint(rec)["content"]``).
    start, stop
        Frames ``[start, stop)``.
    method, target, steps
        The salience request (``steps`` 0 for methods without steps).
    device
        Where it is computed (``"cpu"``).

    Returns
    -------
    dict
        JSON-serialisable; two keys are equal only for the same computation.
    """
    from decoding.salience import ENGINE_VERSION

    return {
        "format": _FORMAT,
        "engine": ENGINE_VERSION,
        "checkpoint": checkpoint,
        "recording": recording,
        "range": [int(start), int(stop)],
        "method": method,
        "target": str(target),
        "steps": int(steps),
        "device": device,
    }


def compute_results(
    checkpoint: str | Path, recording: Any, *, method: str, target: str = "sum", steps: int = 0
) -> DemoResults:
    """Compute what the default view shows, as the app does (on the CPU, over the test split of
    the checkpoint's split, no cache).

    Parameters
    ----------
    checkpoint
        Checkpoint folder.
    recording
        The recording (:class:`decoding.recording.Recording`).
    method, target, steps
        The salience request (``steps`` 0 for methods without steps).

    Returns
    -------
    DemoResults
    """
    from decoding.checkpoint import load_checkpoint
    from decoding.provenance import recording_fingerprint
    from decoding.salience import salience_from_checkpoint
    from decoding.train import predict

    model, info = load_checkpoint(checkpoint, recording=recording, device="cpu")
    model.eval()
    test = info.split_for(recording.n_frames).test
    preds = np.asarray(predict(model, info, recording, test.start, test.stop), dtype=np.float32)
    sal = salience_from_checkpoint(
        checkpoint, recording, start=test.start, stop=test.stop, method=method,
        target=int(target) if target.isdigit() else target, steps=steps or 1, device="cpu",
        cache=False, loaded=(model, info),
    )  # fmt: skip
    top = sal.ranking()[:TOP_K]
    key = results_key(
        checkpoint=checkpoint_content(checkpoint),
        recording=recording_fingerprint(recording)["content"],
        start=test.start, stop=test.stop, method=method, target=target, steps=steps,
        device="cpu",
    )  # fmt: skip
    shipped = ShippedSalience(
        start=test.start, stop=test.stop, method=method, target=target, steps=steps,
        mean_abs=sal.mean_abs.astype(np.float32), confidence=np.asarray(sal.confidence, np.float32),
        top=top.astype(np.int64), top_abs=np.abs(sal.values[:, top]).astype(np.float32),
    )  # fmt: skip
    return DemoResults(key=key, predictions=preds, salience=shipped)


def save_results(results: DemoResults, path: str | Path = ASSET) -> Path:
    """Write ``results`` as a compressed ``.npz`` (the key as JSON inside)."""
    s = results.salience
    path = Path(path)
    with path.open("wb") as fh:
        np.savez_compressed(
            fh, key=np.array(json.dumps(results.key, sort_keys=True)),
            predictions=results.predictions, mean_abs=s.mean_abs, confidence=s.confidence,
            top=s.top, top_abs=s.top_abs,
        )  # fmt: skip
    return path


def load_results(path: str | Path = ASSET) -> DemoResults | None:
    """The shipped results, or ``None`` when the file is missing or unreadable."""
    path = Path(path)
    try:
        return _load(str(path), path.stat().st_mtime_ns)
    except (OSError, ValueError, KeyError):
        return None


@functools.lru_cache(maxsize=2)
def _load(path: str, _mtime: int) -> DemoResults:
    with np.load(path, allow_pickle=False) as z:
        key = json.loads(str(z["key"]))
        sal = ShippedSalience(
            start=key["range"][0], stop=key["range"][1], method=key["method"],
            target=key["target"], steps=key["steps"], mean_abs=z["mean_abs"],
            confidence=z["confidence"], top=z["top"], top_abs=z["top_abs"],
        )  # fmt: skip
        return DemoResults(key=key, predictions=z["predictions"], salience=sal)


def lookup(key: dict[str, Any], path: str | Path = ASSET) -> DemoResults | None:
    """The shipped results when their key equals ``key`` exactly, else ``None``."""
    got = load_results(path)
    return got if got is not None and got.key == key else None


def for_view(ctx: Any, opts: dict[str, Any], *, path: str | Path = ASSET) -> DemoResults | None:
    """The shipped results for the page's selection ``ctx`` and salience request ``opts``
    (``{"method", "target", "steps"}``), or ``None`` when they are not exactly these."""
    from dashboard import caching
    from dashboard.results_state import uses_steps

    if ctx.ckpt is None or ctx.rec is None or not Path(path).is_file():
        return None
    if caching.device_name(ctx.device) != "cpu":
        return None  # shipped numbers are the CPU's: another device computes its own
    got = load_results(path)
    if got is None or got.key["range"] != [ctx.start, ctx.stop]:
        return None
    key = results_key(
        checkpoint=checkpoint_content(ctx.ckpt_path),
        recording=caching.recording_fingerprint(ctx.rec_path, ctx.rec_mtime)["content"],
        start=ctx.start, stop=ctx.stop, method=opts["method"], target=opts["target"],
        steps=opts["steps"] if uses_steps(opts["method"]) else 0, device="cpu",
    )  # fmt: skip
    return got if got.key == key else None


def heat_rows(ctx: Any, sal: ShippedSalience) -> tuple[np.ndarray, list[str]]:
    """(frames, TOP_K) |salience| of the shipped top neurons and their labels (as the rows of a
    computed map: ``#rank n<id> <region>``)."""
    from dashboard import caching

    regions = caching.neuron_regions(ctx.rec_path, ctx.rec_mtime, ctx.atlas_name)
    ids = ctx.rec.neuron_ids if ctx.rec.neuron_ids is not None else np.arange(ctx.rec.n_neurons)
    labels = [f"#{r + 1} n{ids[i]} {regions[i]}" for r, i in enumerate(sal.top)]
    return sal.top_abs, labels
