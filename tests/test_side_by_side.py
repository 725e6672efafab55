"""Chunks side by side on the CPU: order, errors, torch's thread count, and salience unchanged."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

from decoding.salience import METHODS, DecoderIO, SalienceRequest, compute_salience
from decoding.side_by_side import map_in_order, side_by_side_workers


@pytest.fixture
def two_threads():
    """torch on 2 intra-op threads for the test (the suite runs on 1), restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(before)


def _chunk_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("nlp4neuro-chunk")]


def test_results_come_in_order_from_worker_threads_on_one_intra_op_thread_each(two_threads):
    seen: list[tuple[str, int]] = []

    def work(i: int) -> int:
        time.sleep(0.02 * (i % 3 == 0))  # every third chunk finishes late
        seen.append((threading.current_thread().name, torch.get_num_threads()))
        return i * i

    assert list(map_in_order(work, range(10), workers=2)) == [i * i for i in range(10)]
    assert {name.split("_")[0] for name, _ in seen} == {"nlp4neuro-chunk"}
    assert len({name for name, _ in seen}) == 2  # both workers took chunks
    assert {n for _, n in seen} == {1}
    assert torch.get_num_threads() == 2  # the caller's count again
    assert _chunk_threads() == []  # the workers have ended


def test_one_worker_runs_every_chunk_in_the_calling_thread(two_threads):
    names = list(map_in_order(lambda _: threading.current_thread().name, range(4), workers=1))
    assert names == [threading.current_thread().name] * 4


def test_an_error_in_a_chunk_is_raised_and_the_workers_end(two_threads):
    def work(i: int) -> int:
        if i == 3:
            raise ValueError("chunk 3 is bad")
        return i

    got: list[int] = []
    with pytest.raises(ValueError, match="chunk 3 is bad"):
        for value in map_in_order(work, range(50), workers=2):
            got.append(value)
    assert got == [0, 1, 2]
    assert _chunk_threads() == [] and torch.get_num_threads() == 2


def test_leaving_early_ends_the_workers_and_restores_the_thread_count(two_threads):
    results = map_in_order(lambda i: i, range(100), workers=2)
    assert next(results) == 0
    results.close()
    assert _chunk_threads() == [] and torch.get_num_threads() == 2


def test_workers_per_device(two_threads):
    assert side_by_side_workers("cpu") == 2
    assert side_by_side_workers(torch.device("cuda")) == 1  # no GPU needed to ask
    assert side_by_side_workers("mps") == 1


class ThreadNoting(torch.nn.Module):
    """(B, S, N) -> (B, S, K), noting which threads ran its forward passes."""

    def __init__(self, n: int = 12, k: int = 3) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.proj = torch.nn.Linear(n, 8)
        self.rnn = torch.nn.GRU(8, 8, batch_first=True)
        self.head = torch.nn.Linear(8, k)
        self.threads: set[str] = set()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.threads.add(threading.current_thread().name.split("_")[0])
        return self.head(self.rnn(torch.tanh(self.proj(x)))[0])


def _salience(method: str, threads: int) -> tuple[np.ndarray, set[str]]:
    torch.set_num_threads(threads)
    activity = np.random.default_rng(0).normal(size=(60, 12)).astype(np.float32)
    model = ThreadNoting()
    req = SalienceRequest(method=method, steps=8, internal_batch_size=16, context=False, seed=1)
    res = compute_salience(
        model, activity, req, decoder=DecoderIO(window=5), start=5, stop=55,
    )  # fmt: skip
    return res.values, model.threads - {"MainThread"}


@pytest.mark.parametrize("method", sorted(METHODS))
def test_salience_is_the_same_side_by_side(method, two_threads):
    alone, _ = _salience(method, threads=1)
    side, workers = _salience(method, threads=2)
    np.testing.assert_allclose(side, alone, rtol=1e-5, atol=1e-7)
    if METHODS[method].draws_random:  # its chunks draw in a fixed order: one after another
        assert workers == set()
    else:
        assert workers == {"nlp4neuro-chunk"}
