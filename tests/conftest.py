"""Shared fixtures: a small synthetic fish written to a real file (fast, seeded, stable).

- ``small_recording_path``: session-wide HDF5 file of a 200-neuron x 400-frame demo fish (seed 0,
  1.1 Hz, 6 tail angles, ground truth, epochs of every direction). Treat it as read-only.
- ``small_recording``: that file opened with :func:`decoding.recording.load_recording` (lazy), a
  fresh object per test.
- ``small_recording_copy``: a private copy of the file in the test's ``tmp_path`` (safe to modify).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

SMALL_N_NEURONS = 200
SMALL_N_FRAMES = 400
SMALL_SEED = 0


@pytest.fixture(scope="session")
def small_recording_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A 200-neuron, 400-frame synthetic fish saved once per test session (read-only)."""
    from decoding.synthetic import make_demo_fish

    path = tmp_path_factory.mktemp("small_fish") / "small_fish.h5"
    rec = make_demo_fish(n_neurons=SMALL_N_NEURONS, n_frames=SMALL_N_FRAMES, seed=SMALL_SEED)
    rec.fish_id = "small_fish"
    rec.save(path)
    path.chmod(0o444)
    return path


@pytest.fixture
def small_recording(small_recording_path: Path):
    """The small synthetic fish, opened lazily from its file (a new Recording per test)."""
    from decoding.recording import load_recording

    return load_recording(small_recording_path)


@pytest.fixture
def small_recording_copy(small_recording_path: Path, tmp_path: Path) -> Path:
    """A writable copy of the small fish's file in this test's tmp_path."""
    dest = tmp_path / "small_fish.h5"
    shutil.copyfile(small_recording_path, dest)
    dest.chmod(0o644)
    return dest
