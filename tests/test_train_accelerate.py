"""``accelerate launch -m decoding train`` with two CPU processes (DDP over gloo): the main process
alone writes a checkpoint that loads and evaluates; each process trains on half of every batch."""

from __future__ import annotations

import json
import math
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _accelerate() -> list[str]:
    exe = Path(sys.executable).parent / "accelerate"
    if exe.is_file():
        return [str(exe)]
    if shutil.which("accelerate"):
        return ["accelerate"]
    pytest.skip("accelerate is not installed (pip install accelerate)")
    return []


def _launch_two_processes(
    args: list[str], tmp_path: Path, timeout: float
) -> subprocess.CompletedProcess:
    """``accelerate launch ... -m decoding ARGS`` with two CPU processes.

    `--cpu --num_processes 2` starts one process unless mpirun is set up; `--multi_gpu` starts
    two through torchrun, and on a machine without CUDA the trainer then runs DDP over gloo.
    """
    cmd = [
        *_accelerate(), "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
        "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()), "-m", "decoding", *args,
    ]  # fmt: skip
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")]),
        "HF_HOME": str(tmp_path / "hf"),  # no accelerate config from the user's home
        "OMP_NUM_THREADS": "1",
        "CUDA_VISIBLE_DEVICES": "",
    }
    return subprocess.run(
        cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )


def test_is_main_process_reads_the_launcher_env(monkeypatch):
    from decoding.train import is_main_process

    for var in ("WORLD_SIZE", "RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "MV2_COMM_WORLD_SIZE"):
        monkeypatch.delenv(var, raising=False)
    assert is_main_process()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert not is_main_process()
    monkeypatch.setenv("RANK", "0")
    assert is_main_process()


@pytest.mark.slow
def test_accelerate_launch_two_cpu_processes(small_recording_path, tmp_path):
    from decoding.checkpoint import load_checkpoint
    from decoding.recording import load_recording
    from decoding.train import evaluate

    out = tmp_path / "ck"
    progress = tmp_path / "progress.jsonl"
    proc = _launch_two_processes(
        [
            "train",
            "--recording",
            str(small_recording_path),
            "--out",
            str(out),
            "--progress-file",
            str(progress),
            "--backbone",
            "tiny-bert",
            "--window",
            "8",
            "--train-stride",
            "8",  # one window per 8 frames (the automatic stride would overlap them on 280)
            "--epochs",
            "2",
            "--batch-size",
            "8",
            "--device",
            "cpu",
            "--quiet",
        ],
        tmp_path,
        timeout=240,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("checkpoint:") == 1  # only the main process reports

    rec = load_recording(small_recording_path)
    model, info = load_checkpoint(out, n_neurons=rec.n_neurons)
    assert info.metrics["processes"] == 2
    # 280 training frames -> 35 windows of 8; 16 windows per step over two processes -> 3 steps
    assert info.metrics["steps"] == 2 * 3
    metrics = evaluate(model, info, rec)
    assert math.isfinite(metrics.rmse) and metrics.rmse > 0
    assert metrics.rmse == pytest.approx(info.metrics["test"]["rmse"], rel=1e-5)

    kinds = [json.loads(line)["kind"] for line in progress.read_text().splitlines()]
    assert kinds.count("done") == 1 and kinds[-1] == "saved" and kinds.count("epoch") == 2


@pytest.mark.slow
def test_accelerate_launch_multifish_two_cpu_processes(tmp_path):
    """Several fish under DDP: each process takes half of every mixed step (a step may hold
    only some fish's projections), the main process alone saves, and the model evaluates."""
    from decoding.multifish import load_multifish
    from decoding.synthetic import make_multifish_demo
    from decoding.train import evaluate

    fish = make_multifish_demo(n_fish=3, n_neurons=200, n_frames=240, seed=0)
    paths = []
    for i, rec in enumerate(fish):
        paths.append(tmp_path / f"fish_{i}.h5")
        rec.save(paths[-1])
    out = tmp_path / "multi"
    proc = _launch_two_processes(
        ["train", "--recording", *map(str, paths), "--out", str(out), "--backbone", "tiny-llama",
         "--window", "8", "--epochs", "2", "--batch-size", "4", "--device", "cpu", "--quiet"],
        tmp_path,
        timeout=300,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("checkpoint:") == 1  # only the main process reports
    res = load_multifish(out)
    assert res.metrics["processes"] == 2 and len(res.infos) == 3
    for i, rec in enumerate(fish):
        m = evaluate(res.model.views[i], res.infos[i], rec)
        assert math.isfinite(m.rmse) and m.rmse == pytest.approx(
            res.infos[i].metrics["test"]["rmse"], rel=1e-5
        )
