"""Sharing the app on a network, job progress and the served app (issue 11).

Shared mode (secret gate, upload limit, job ownership, quotas) and the jobs' honest progress and
ETA in Streamlit's AppTest; the bare link's predictions and salience; the served app's
compressed bundles (``dashboard/serve.py``) through Starlette's test client; the localhost
default in the config and the Makefile.
"""

from __future__ import annotations

import gzip
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("streamlit")
from apptest_helpers import assert_no_crash, run_app  # noqa: E402

from dashboard import access, eta, jobs  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
WAIT_FOR_CANCEL = "import os,time\nwhile not os.path.exists(r'{cancel}'): time.sleep(0.05)"


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A small fish and a tiny decoder trained on it."""
    import torch

    from decoding.checkpoint import save_checkpoint
    from decoding.synthetic import make_demo_fish
    from decoding.train import TrainConfig, evaluate, fit

    root = tmp_path_factory.mktemp("shared")
    (root / "data").mkdir()
    rec = make_demo_fish(n_neurons=200, n_frames=300, seed=4)
    rec.save(root / "data" / "fish.h5")
    torch.set_num_threads(1)
    res = fit(rec, TrainConfig(backbone="tiny-bert", epochs=1, window=5, device="cpu"))
    res.info.metrics["test"] = evaluate(res.model, res.info, rec, part="test").to_dict()
    save_checkpoint(res.model, res.info, root / "ckpts" / "tiny")
    return root


@pytest.fixture()
def env(world, monkeypatch, tmp_path):
    monkeypatch.setenv("NLP4NEURO_DATA", str(world / "data"))
    monkeypatch.setenv("NLP4NEURO_CHECKPOINTS", str(world / "ckpts"))
    monkeypatch.setenv("NLP4NEURO_JOBS", str(tmp_path / "jobs"))
    monkeypatch.setenv("NLP4NEURO_CACHE", str(world / "cache"))
    monkeypatch.delenv("NLP4NEURO_CONFIG", raising=False)
    monkeypatch.delenv("NLP4NEURO_SHARED", raising=False)
    return tmp_path / "jobs"


@pytest.fixture()
def shared(env, monkeypatch):
    """The app shared on a network, with a known secret; returns the jobs folder."""
    monkeypatch.setenv("NLP4NEURO_SHARED", "1")
    monkeypatch.setenv("NLP4NEURO_SHARE_SECRET", "fish-and-chips")
    return env


def _open(at):
    """Give the secret (shared mode) and run the page behind it."""
    at.text_input(key="access_secret").set_value("fish-and-chips")
    next(b for b in at.button if b.label == "Open").click().run()
    return at


def _waiting_job(jobs_dir: Path, owner: str) -> jobs.Job:
    return jobs.start_job(
        jobs_dir, "t", f"job of {owner}", [sys.executable, "-c", WAIT_FOR_CANCEL], owner=owner
    )


def _stop(job: jobs.Job) -> None:
    jobs.cancel_job(jobs.load_job(job.dir))
    t0 = time.time()
    while not jobs.load_job(job.dir).finished and time.time() - t0 < 30:
        time.sleep(0.1)


# ------------------------------------------------------------------------------ localhost default
def test_app_listens_on_localhost_unless_shared_on_purpose():
    """The issue found `make demo` listening on every interface (`:::8501`)."""
    import tomllib

    config = tomllib.loads((ROOT / ".streamlit" / "config.toml").read_text())
    assert config["server"]["address"] == "localhost"
    make = (ROOT / "Makefile").read_text()
    assert "\nHOST = localhost\n" in make
    assert "--server.address $(HOST)" in make


# ------------------------------------------------------------------------------ the secret
def test_shared_app_asks_for_the_secret_before_showing_anything(shared):
    at = run_app()
    assert_no_crash(at)
    assert not at.sidebar.selectbox, "nothing of the app before the secret"
    assert not at.get("plotly_chart")
    at.text_input(key="access_secret").set_value("wrong guess")
    next(b for b in at.button if b.label == "Open").click().run()
    assert any("not the secret" in e.value for e in at.error)
    assert not at.sidebar.selectbox
    _open(at)
    assert_no_crash(at)
    assert at.sidebar.selectbox(key="w_fish").value == "fish"


def test_local_app_asks_no_secret(env):
    at = run_app(model="none")
    assert_no_crash(at)
    assert at.sidebar.selectbox(key="w_fish").value == "fish"


def test_made_up_secret_is_kept_for_the_server_process(monkeypatch, capsys):
    monkeypatch.delenv("NLP4NEURO_SHARE_SECRET", raising=False)
    monkeypatch.setattr(access, "_SECRET", [])
    first = access.share_secret()
    assert len(first) >= 12 and access.share_secret() == first
    assert first in capsys.readouterr().err  # printed on the server's terminal


# ------------------------------------------------------------------------------ jobs per session
def test_sessions_do_not_see_or_cancel_each_others_jobs(shared, monkeypatch):
    monkeypatch.setattr(access, "session_id", lambda: "alice")
    theirs = _waiting_job(shared, "bob")
    mine = _waiting_job(shared, "alice")
    try:
        at = _open(run_app(view="jobs", model="none"))
        assert_no_crash(at)
        titles = " ".join(m.value for m in at.markdown)
        assert "job of alice" in titles and "job of bob" not in titles
        assert [b.key for b in at.button if b.key and b.key.startswith("cancel_")] == [
            f"cancel_{mine.id}"
        ]
        # shared on purpose: bob's job is seen, but only bob may cancel it
        jobs.set_shared(jobs.load_job(theirs.dir), True)
        at.run()
        titles = " ".join(m.value for m in at.markdown)
        assert "job of bob" in titles
        assert f"cancel_{theirs.id}" not in [b.key for b in at.button]
        assert not [t for t in at.toggle if t.key == f"share_{theirs.id}"]
        assert [t for t in at.toggle if t.key == f"share_{mine.id}"], "the owner may share"
    finally:
        _stop(theirs)
        _stop(mine)


def test_job_quota_per_session_when_shared(shared, monkeypatch):
    monkeypatch.setattr(access, "session_id", lambda: "alice")
    monkeypatch.setenv("NLP4NEURO_JOB_QUOTA", "1")
    running = _waiting_job(shared, "alice")
    try:
        at = _open(run_app(view="jobs"))
        assert_no_crash(at)
        assert any("at once" in w.value for w in at.warning)
        submit = next(b for b in at.button if "Start fine-tuning" in b.label)
        assert submit.disabled
    finally:
        _stop(running)
    assert "at once" not in access.quota_problem(jobs.list_jobs(shared))


def test_quota_counts_only_this_sessions_jobs(shared, monkeypatch):
    monkeypatch.setattr(access, "session_id", lambda: "alice")
    monkeypatch.setenv("NLP4NEURO_JOB_QUOTA", "1")
    other = _waiting_job(shared, "bob")
    try:
        assert access.quota_problem(jobs.list_jobs(shared)) == ""
    finally:
        _stop(other)


def test_shared_upload_limit(shared, monkeypatch):
    monkeypatch.setenv("NLP4NEURO_SHARED_UPLOAD_MB", "50")
    assert access.upload_limit_mb() == 50
    at = _open(run_app(model="none"))
    assert_no_crash(at)
    monkeypatch.delenv("NLP4NEURO_SHARED")
    assert access.upload_limit_mb() is None


# ------------------------------------------------------------------------------ progress and ETA
def _job(tmp_path: Path, params: dict, events: list[dict], status: dict, kind="train") -> jobs.Job:
    return jobs.Job(
        dir=tmp_path,
        spec={"kind": kind, "params": params, "created": status.get("started", 0)},
        status=status,
        progress=events[-1] if events else {},
        events=events,
    )


OPTIONS = {"backbone": "tiny-bert", "init": "random", "mode": "frozen", "window": 5}


def _finished_run(tmp_path: Path) -> jobs.Job:
    """A finished fine-tune: 10 s start-up, 4 epochs of 5 s, 8 s evaluation and saving."""
    t0 = 1000.0
    events = [
        {"kind": "epoch", "epoch": e, "epochs": 4, "elapsed_s": 5.0 * e, "time": t0 + 10 + 5 * e}
        for e in range(1, 5)
    ]
    status = {"state": "done", "started": t0, "finished": t0 + 10 + 20 + 8}
    return _job(tmp_path, OPTIONS | {"epochs": 4, "max_time": 0}, events, status)


def test_finetune_estimate_is_measured_not_guessed(tmp_path):
    """The issue: the form said "about a minute" and the fine-tune took 134 s."""
    none_yet = eta.finetune_estimate([], OPTIONS | {"epochs": 10, "max_time": 45})
    assert "no measured time" in none_yet and "45 s" in none_yet
    assert "minute" not in none_yet
    runs = [_finished_run(tmp_path)]
    # 10 epochs x 5 s = 50 s, capped by the 45 s budget: 10 + 45 + 8
    got = eta.finetune_estimate(runs, OPTIONS | {"epochs": 10, "max_time": 45})
    assert "**63 s**" in got and "1 earlier run" in got
    got = eta.finetune_estimate(runs, OPTIONS | {"epochs": 2, "max_time": 45})
    assert "**28 s**" in got  # 10 + 2 x 5 + 8
    other = eta.finetune_estimate(runs, OPTIONS | {"mode": "full", "epochs": 2, "max_time": 45})
    assert "no measured time" in other


def test_running_job_shows_what_it_does_and_time_left_by_the_budget(tmp_path):
    """The issue: a card said "starting…" with an empty bar; the ETA ignored the time budget."""
    status = {"state": "running", "started": time.time() - 3}
    starting = _job(tmp_path, OPTIONS | {"max_time": 45}, [], status)
    frac, text = eta.progress_line(starting, [])
    assert frac is None and "loading the recording and the model" in text
    step = {"kind": "step", "epoch": 1, "epochs": 10, "step": 20, "total_steps": 200,
            "elapsed_s": 30.0, "eta_s": 270.0, "train_loss": 0.5, "time": time.time()}  # fmt: skip
    running = _job(tmp_path, OPTIONS | {"max_time": 45}, [step], status)
    frac, text = eta.progress_line(running, [_finished_run(tmp_path)])
    assert frac == pytest.approx(0.1)
    assert "about 15 s of training left (time budget)" in text
    assert "~8 s measured" in text
    salience = _job(tmp_path, {}, [], status, kind="salience")
    frac, text = eta.progress_line(salience, [])
    assert frac is None and "reports no intermediate steps" in text


def test_job_card_has_no_empty_progress_bar(env):
    job = jobs.start_job(env, "train", "a fine-tune", [sys.executable, "-c", WAIT_FOR_CANCEL])
    try:
        at = run_app(view="jobs", model="none")
        assert_no_crash(at)
        assert not at.get("progress"), "no bar before anything is measured"
        assert any("so far" in c.value for c in at.caption)
        assert not any("starting…" in c.value for c in at.caption)
    finally:
        _stop(job)


# ------------------------------------------------------------------------------ the bare link
def test_bare_link_opens_with_predictions_and_salience(env):
    """The issue: the demo opened with nothing computed ("Run inference" first)."""
    from decoding.salience import DEFAULT_METHOD, METHODS

    at = run_app()
    for _ in range(3):  # predictions and salience are computed after the first drawing
        if at.get("metric") and any("salience ·" in t for t in _titles(at)):
            break
        at.run()
    assert_no_crash(at)
    assert at.get("metric"), "predictions and their metrics are on screen"
    assert any(METHODS[DEFAULT_METHOD].title in t for t in _titles(at))
    assert at.query_params.get("pred") == ["1"] or at.query_params.get("pred") == "1"


def _titles(at) -> list[str]:
    import json

    return [
        str(json.loads(c.proto.spec).get("layout", {}).get("title", {}).get("text", ""))
        for c in at.get("plotly_chart")
    ]


def test_named_link_shows_exactly_what_it_names(env):
    at = run_app(fish="fish", model="tiny", epoch="test")
    assert_no_crash(at)
    assert not at.get("metric"), "a link without pred=1 does not turn predictions on"


# ------------------------------------------------------------------------------ served bundles
def test_served_app_compresses_streamlit_bundles_and_preloads_the_first_chart(tmp_path):
    """Streamlit sends its 9.3 MB of JavaScript uncompressed; the served app gzips it, and has the
    browser fetch the first page's element modules while it starts: ECharts' bundle (the tail,
    the first chart), not Plotly's (the 3D brain, drawn after it)."""
    from starlette.applications import Starlette
    from starlette.responses import PlainTextResponse
    from starlette.routing import Route
    from starlette.testclient import TestClient

    from dashboard.serve import COMPILE_HINT, GzipStatic, _static_dir

    inner = Starlette(routes=[Route("/{p:path}", lambda r: PlainTextResponse("inner"))])
    client = TestClient(GzipStatic(inner, _static_dir()))
    bundle = next((_static_dir() / "static" / "js").glob("PlotlyChart.*.js"))
    got = client.get(f"/static/js/{bundle.name}", headers={"Accept-Encoding": "gzip"})
    assert got.headers["content-encoding"] == "gzip"
    assert int(got.headers["content-length"]) < bundle.stat().st_size / 2
    # the client decompresses; Plotly's bundle comes with V8's compile hint as its first line
    assert got.content == COMPILE_HINT + bundle.read_bytes()
    assert "immutable" in got.headers["cache-control"]
    page = client.get("/", headers={"Accept-Encoding": "gzip"})
    echarts = next((_static_dir() / "static" / "js").glob("EChartsChart.*.js"))
    assert f'rel="modulepreload" crossorigin href="./static/js/{echarts.name}"' in page.text
    assert f'href="./static/js/{bundle.name}"' not in page.text  # Plotly: after the first chart
    # the first page's element modules and what they import are fetched while the page starts
    js = _static_dir() / "static" / "js"
    selectbox = next(js.glob("Selectbox.*.js"))
    assert f'href="./static/js/{selectbox.name}"' in page.text
    for dep in re.findall(r'(?:from|import)\s*"\./([\w.\-]+\.js)"', selectbox.read_text()):
        assert f'href="./static/js/{dep}"' in page.text, dep
    # fetched, not run before the app's own module (that delayed the websocket by a second)
    assert f'import("./static/js/{bundle.name}")' not in page.text
    assert page.headers["cache-control"] == "no-cache"
    plain = client.get(f"/static/js/{bundle.name}", headers={"Accept-Encoding": "identity"})
    assert plain.text == "inner"  # no gzip asked: Streamlit answers
    assert GzipStatic(inner).compressed("../../../../etc/passwd") is None  # stays inside
    assert client.get("/_stcore/health", headers={"Accept-Encoding": "gzip"}).text == "inner"
    assert gzip.decompress(GzipStatic(inner).compressed(f"static/js/{bundle.name}")) == (
        COMPILE_HINT + bundle.read_bytes()
    )
    other = next((_static_dir() / "static" / "js").glob("Selectbox.*.js"))  # sent as it is
    got = client.get(f"/static/js/{other.name}", headers={"Accept-Encoding": "gzip"})
    assert got.content == other.read_bytes()


def test_server_opens_the_default_view_in_a_thread_that_ends(monkeypatch):
    """The torch work done before the server answers runs in a thread of its own that has ended
    once it answers: a pooled thread that keeps an idle OpenMP team made every page's torch work
    ~30 % slower on 2 cores."""
    import threading

    import anyio

    from dashboard import serve

    ran: list[threading.Thread] = []
    monkeypatch.setattr(serve, "_before_serving", lambda: ran.append(threading.current_thread()))
    monkeypatch.setenv("NLP4NEURO_WARMUP", "0")
    monkeypatch.setenv("NLP4NEURO_BRAIN_AFTER_PAINT", "0")

    alive: list[bool] = []

    async def start() -> None:
        async with serve._lifespan(None):  # the server answers from here on
            alive.extend(t.is_alive() for t in ran)

    anyio.run(start)
    assert len(ran) == 1 and ran[0] is not threading.main_thread()
    assert alive == [False]
    assert serve.in_own_thread(lambda: threading.current_thread().name).startswith("nlp4neuro-open")
    with pytest.raises(ZeroDivisionError):
        serve.in_own_thread(lambda: 1 / 0)


def test_server_leaves_what_it_started_with_out_of_the_cycle_collector(monkeypatch):
    """Streamlit collects every generation after each run: the modules and objects alive when
    the server answers are frozen first, so that collection does not walk them each time."""
    import gc

    import anyio

    from dashboard import serve

    monkeypatch.setattr(serve, "_before_serving", lambda: None)
    monkeypatch.setenv("NLP4NEURO_WARMUP", "0")
    monkeypatch.setenv("NLP4NEURO_BRAIN_AFTER_PAINT", "0")
    gc.unfreeze()
    frozen: list[int] = []

    async def start() -> None:
        async with serve._lifespan(None):
            frozen.append(gc.get_freeze_count())

    try:
        anyio.run(start)
    finally:
        gc.unfreeze()
    assert frozen and frozen[0] > 10_000, frozen


def _while_answering(monkeypatch, look: Callable[[], Any]) -> list[Any]:
    """Start the served app's lifespan (no default view to open, no heap to freeze, no
    background warm-up) and return ``[look()]`` taken once the server would answer."""
    import anyio

    from dashboard import serve

    monkeypatch.setattr(serve, "_before_serving", lambda: None)
    monkeypatch.setattr(serve, "freeze_heap", lambda: None)
    monkeypatch.setenv("NLP4NEURO_WARMUP", "0")
    monkeypatch.setenv("NLP4NEURO_BRAIN_AFTER_PAINT", "0")
    seen: list[Any] = []

    async def start() -> None:
        async with serve._lifespan(None):
            seen.append(look())

    anyio.run(start)
    return seen


def test_static_files_are_gzipped_before_the_server_answers(monkeypatch):
    """Compressing the bundles (~0.7 s of a core) ran beside the first page's load on a cold or
    restarted server; it now runs beside the imports, before the server answers."""
    from dashboard import serve

    gz = serve.GzipStatic(None, serve._static_dir())
    monkeypatch.setattr(serve, "_GZIP", [gz])
    answered = _while_answering(monkeypatch, lambda: set(gz._cache))  # no warm-up to do it later
    bundles = {f"static/js/{p.name}" for p in (gz.static_dir / "static" / "js").glob("*.js")}
    assert bundles and "index.html" in answered[0], sorted(answered[0])[:5]
    assert bundles <= answered[0], sorted(bundles - answered[0])[:5]


def test_server_polls_streamlits_config_files_seldom(monkeypatch):
    """Streamlit checks its config and secrets files every 0.2 s whatever its file watcher
    setting; each check woke a thread of the server (~55 wake-ups a second in all), and on 2
    cores a wake-up can stall the pages' torch work. Served, it checks every 5 s; the test fails
    if Streamlit's private period moves (the setting would then do nothing)."""
    from streamlit.watcher import polling_path_watcher as polling

    from dashboard import serve

    monkeypatch.setattr(polling, "_POLLING_PERIOD_SECS", 0.2)  # restored after the test
    periods = _while_answering(monkeypatch, lambda: polling._POLLING_PERIOD_SECS)
    assert periods == [serve.FILE_POLL_S] and serve.FILE_POLL_S >= 5
    assert serve.slow_file_polling(1.0) == serve.FILE_POLL_S  # never faster than it is


def test_shared_means_reachable_beyond_this_machine(monkeypatch):
    monkeypatch.delenv("NLP4NEURO_SHARED", raising=False)
    for address, shared in (("localhost", False), ("127.0.0.1", False), ("0.0.0.0", True),
                            ("192.168.1.20", True), (None, True)):  # fmt: skip
        monkeypatch.setattr(access.st, "get_option", lambda name, a=address: a)
        assert access.is_shared() is shared, address
    monkeypatch.setenv("NLP4NEURO_SHARED", "0")  # e.g. behind a proxy that authenticates
    assert not access.is_shared()
