"""Independent chunks of torch work, run side by side on the CPU's cores; results in order.

On the CPU torch splits every kernel over its intra-op threads (OpenMP), and each kernel ends at a
barrier where those threads wait for one another. A small model runs thousands of short kernels,
so a thread that loses its core for a moment (to a browser drawing a page, a server's poller)
holds the other threads up at the next barrier: on 2 cores, IG for one demo epoch took 1.81 s
alone and 2.10 s beside a process waking 60 times a second for 1 ms (median of 4, alternating).
Chunks that do not depend on one another (the windows of a salience map) can instead run one per
thread, each on a single intra-op thread: nothing waits for anything before the end. The same IG
took 1.61 s alone and 1.84 s beside the same process (scratch probe of issue 11's last pass,
``docs/dashboard.md``).

A GPU runs each chunk's kernels over the whole device, so there the chunks run one after another.
"""

from __future__ import annotations

import itertools
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TypeVar

import torch

__all__ = ["side_by_side_workers", "map_in_order"]

T = TypeVar("T")
R = TypeVar("R")

#: Chunks computed ahead of the one being consumed, per worker (bounds the results held at once).
AHEAD_PER_WORKER = 2


def side_by_side_workers(device: torch.device | str) -> int:
    """How many chunks run at once on ``device``: on the CPU one per intra-op thread torch would
    use now (``torch.get_num_threads()``, what ``OMP_NUM_THREADS`` or ``torch.set_num_threads``
    set), elsewhere 1."""
    return max(1, torch.get_num_threads()) if torch.device(device).type == "cpu" else 1


def map_in_order(fn: Callable[[T], R], items: Iterable[T], *, workers: int) -> Iterator[R]:
    """``fn(item)`` for each item, yielded in the items' order.

    Parameters
    ----------
    fn : callable
        The work of one chunk; it must not depend on the other chunks' results nor draw random
        numbers (the order in which chunks run is not fixed).
    items : iterable
        The chunks.
    workers : int
        With 1, ``fn`` runs in the calling thread, one chunk after another. With more, that many
        threads each run whole chunks on one intra-op thread, at most ``AHEAD_PER_WORKER`` chunks
        per worker ahead of the one consumed; torch's thread count is the caller's again once the
        iterator ends (or is closed), and the worker threads have ended.

    Returns
    -------
    iterator
        The results; an error raised by a chunk is raised here, and the chunks not started are
        dropped.
    """
    if workers <= 1:
        yield from map(fn, items)
        return
    threads = torch.get_num_threads()
    todo = iter(items)
    ahead: deque[Future[R]] = deque()
    # torch.set_num_threads(1) in a worker sets its own OpenMP and MKL threads; it also sets the
    # count later threads start with, which the caller's is again below
    pool = ThreadPoolExecutor(
        workers, thread_name_prefix="nlp4neuro-chunk", initializer=torch.set_num_threads,
        initargs=(1,),
    )  # fmt: skip
    try:
        first = itertools.islice(todo, workers * AHEAD_PER_WORKER)
        ahead.extend(pool.submit(fn, item) for item in first)
        while ahead:
            done = ahead.popleft().result()
            ahead.extend(pool.submit(fn, item) for item in itertools.islice(todo, 1))
            yield done
    finally:
        for future in ahead:
            future.cancel()
        pool.shutdown(wait=True)
        torch.set_num_threads(threads)
