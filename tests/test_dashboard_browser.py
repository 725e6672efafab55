"""End to end in a real headless Chromium (Debian's ``chromium`` driven by Playwright).

The app is served with ``streamlit run`` on 127.0.0.1 (a free port) against a small synthetic fish
and a small checkpoint trained here. The test loads the page, picks an epoch, runs inference and
salience, and checks the DOM and the Plotly data in the page. Screenshots for the README go to
``docs/screenshots/`` (or ``$NLP4NEURO_SCREENSHOTS``); timings are printed (``-s`` to see them).
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

pytestmark = pytest.mark.browser

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
PLOTLY_DATA_JS = """() => {
  const size = {f8: 8, f4: 4, i4: 4, u4: 4, i2: 2, u2: 2, i1: 1, u1: 1, u1c: 1};
  const len = a => !a ? 0 : (a.length !== undefined ? a.length
      : (a.bdata ? atob(a.bdata).length / (size[a.dtype] || 8) : 0));
  return Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => ({
    traces: (d.data || []).map(t => ({name: t.name || '', type: t.type || 'scatter', n: len(t.x)})),
    shapes: ((d.layout || {}).shapes || []).length,
    title: (((d.layout || {}).title || {}).text) || ''}));
}"""

FIRST_SALIENCE_COLOR_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
  .map(d => (((d.layout || {}).coloraxis || {}).colorscale || [])[0]).filter(Boolean)
  .map(stop => stop[1])"""


def _luminance(color: str) -> float:
    """Relative luminance (0 = black, 1 = white) of ``#rrggbb``."""
    r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app served by `streamlit run` on a free port; yields its base URL."""
    if not Path(CHROMIUM).exists():
        pytest.skip("Debian's chromium is not installed (apt-get install chromium)")
    pytest.importorskip("playwright.sync_api")
    import torch

    from decoding.checkpoint import save_checkpoint
    from decoding.synthetic import make_demo_fish
    from decoding.train import TrainConfig, evaluate, fit

    root = tmp_path_factory.mktemp("served")
    (root / "data").mkdir()
    rec = make_demo_fish(n_neurons=2000, n_frames=800, seed=3)
    rec.save(root / "data" / "browser_fish.h5")
    torch.set_num_threads(1)
    res = fit(rec, TrainConfig(backbone="lstm", epochs=15, window=10, device="cpu", patience=0))
    for part in ("val", "test"):
        res.info.metrics[part] = evaluate(res.model, res.info, rec, part=part).to_dict()
    save_checkpoint(res.model, res.info, root / "ckpts" / "lstm_small")

    port = _free_port()
    env = {
        **os.environ,
        "NLP4NEURO_DATA": str(root / "data"),
        "NLP4NEURO_CHECKPOINTS": str(root / "ckpts"),
        "NLP4NEURO_JOBS": str(root / "runs" / "jobs"),
        "NLP4NEURO_CACHE": str(root / "cache"),
        "PYTHONPATH": str(ROOT),
    }
    log = (root / "streamlit.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "streamlit",
            "run",
            str(ROOT / "dashboard" / "app.py"),
            "--server.address",
            "127.0.0.1",
            "--server.port",
            str(port),
            "--server.headless",
            "true",
            "--browser.gatherUsageStats",
            "false",
            "--server.fileWatcherType",
            "none",
            "--global.developmentMode",
            "false",
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.time() + 60
        while True:
            try:
                with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if proc.poll() is not None or time.time() > deadline:
                raise RuntimeError(
                    "streamlit did not start:\n" + (root / "streamlit.log").read_text()[-3000:]
                )
            time.sleep(0.3)
        yield {"url": url, "n_frames": rec.n_frames, "rec": rec, "root": root}
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield b
        b.close()


def _settle(page, timeout: float = 90.0) -> None:
    """Wait until Streamlit has finished running the script (no 'Running…' status widget)."""
    page.wait_for_timeout(300)
    deadline = time.time() + timeout
    while time.time() < deadline:
        running = page.locator('[data-testid="stStatusWidget"]').count()
        if not running:
            page.wait_for_timeout(400)
            if not page.locator('[data-testid="stStatusWidget"]').count():
                return
        page.wait_for_timeout(200)
    raise AssertionError("the app kept running")


def _until_tail_frames(page, n: int, timeout: float = 60.0) -> float:
    """Wait until the tail plot in the page shows ``n`` frames; returns the seconds waited."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        plots = page.evaluate(PLOTLY_DATA_JS)
        if plots and plots[0]["traces"] and plots[0]["traces"][0]["n"] == n:
            return time.time() - t0
        page.wait_for_timeout(30)
    raise AssertionError(f"the tail plot never showed {n} frames")


def _shots_dir() -> Path:
    d = Path(os.environ.get("NLP4NEURO_SCREENSHOTS", ROOT / "docs" / "screenshots"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _pick_epoch(page, option: str, n_frames: int, search: str = "") -> float:
    """Choose an epoch in the sidebar; returns seconds from the click to the tail plot showing it.

    ``search`` is typed into the box first (the list only draws the options near the top).
    Retried (a click that lands while the page is re-rendering can be lost).
    """
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for _attempt in range(3):
        _settle(page)
        t0 = time.time()
        page.get_by_test_id("stSelectbox").filter(has_text="Stimulus epoch").click()
        if search:
            page.keyboard.type(search)
        choice = page.get_by_role("option", name=re.compile(option)).first
        try:
            choice.wait_for(timeout=5_000)
            choice.click()
            _until_tail_frames(page, n_frames, timeout=20)
        except (PlaywrightTimeout, AssertionError):
            page.keyboard.press("Escape")
            continue
        return time.time() - t0
    raise AssertionError(f"could not pick the epoch {option!r}")


def test_load_pick_epoch_infer_and_look(served, browser):
    page = browser.new_page(viewport={"width": 1500, "height": 2300})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    t0 = time.time()
    page.goto(f"{served['url']}/?model=lstm_small")
    page.wait_for_selector(".js-plotly-plot", timeout=120_000)
    _settle(page)
    first_load = time.time() - t0
    assert page.get_by_text("NLP4Neuro Explorer").count()
    assert "fish=browser_fish" in page.url  # the selection went into the URL
    assert served["rec"].fish_id in page.inner_text("body")

    # pick the last "left" epoch (in the held-out test split, so its scores are held-out ones)
    rec = served["rec"]
    idx = max(i for i, e in enumerate(rec.epochs) if e.name == "left")
    ep = rec.epochs[idx]
    pick_s = _pick_epoch(page, rf"^{idx} · left", ep.stop - ep.start, search=f"{idx} · left")
    _settle(page)
    assert f"epoch={idx}" in page.url

    # run inference
    t2 = time.time()
    page.get_by_role("button", name=re.compile("Run inference")).click()
    page.get_by_test_id("stMetric").first.wait_for(timeout=60_000)
    _settle(page)
    infer_s = time.time() - t2
    metrics = page.get_by_test_id("stMetric").all_inner_texts()
    assert any("RMSE" in m for m in metrics) and any("Pearson r" in m for m in metrics)
    assert "not a held-out score" not in page.inner_text("body")

    plots = page.evaluate(PLOTLY_DATA_JS)
    tail, brain = plots[0], plots[1]
    predicted = [t for t in tail["traces"] if t["name"] == "predicted"]
    observed = [t for t in tail["traces"] if t["name"] == "observed"]
    assert len(predicted) == 6 and len(observed) == 6
    assert all(t["n"] == ep.stop - ep.start for t in predicted), (predicted, ep)
    assert tail["shapes"] >= 1  # the epoch is shaded
    types = {t["type"] for t in brain["traces"]}
    assert {"mesh3d", "scatter3d"} <= types
    assert sum(t["n"] for t in brain["traces"] if t["type"] == "scatter3d") == rec.n_neurons

    # revisit: switch to another epoch and back (both cached now); time until the plot shows it
    from decoding.windows import chronological_split

    test = chronological_split(rec.n_frames).test
    _pick_epoch(page, r"^whole test split", len(test))
    redraws = [
        _pick_epoch(page, option, n, search)
        for option, n, search in (
            (rf"^{idx} · left", ep.stop - ep.start, f"{idx} · left"),
            (r"^whole test split", len(test), ""),
            (rf"^{idx} · left", ep.stop - ep.start, f"{idx} · left"),
        )
    ]
    _settle(page)
    revisit_s = min(redraws)
    page.screenshot(path=str(_shots_dir() / "explore.png"), full_page=True)

    # salience view
    page.get_by_text("Salience", exact=True).first.click()
    _settle(page)
    t4 = time.time()
    page.get_by_role("button", name=re.compile("Compute salience")).click()
    page.get_by_text("Top neurons", exact=True).wait_for(timeout=120_000)
    _settle(page)
    sal_s = time.time() - t4
    page.set_viewport_size({"width": 1500, "height": 3400})  # region charts lie below the fold
    deadline = time.time() + 60
    while True:
        plots = page.evaluate(PLOTLY_DATA_JS)
        kinds = {t["type"] for p in plots for t in p["traces"]}
        if {"heatmap", "bar", "scatter3d"} <= kinds or time.time() > deadline:
            break
        page.mouse.wheel(0, 1500)
        page.wait_for_timeout(300)
    assert {"heatmap", "bar", "scatter3d"} <= kinds, kinds
    assert page.get_by_test_id("stDataFrame").count() >= 1
    # the colour scale the browser draws (after Streamlit's theme swapped its placeholder colours):
    # the least salient end must be the darkest, as in the exported HTML
    first = page.evaluate(FIRST_SALIENCE_COLOR_JS)
    assert first and all(_luminance(c) < 0.05 for c in first), first
    page.screenshot(path=str(_shots_dir() / "salience.png"), full_page=True)

    # presentation mode + jobs page render
    page.get_by_text("Train & jobs", exact=True).first.click()
    _settle(page)
    assert page.get_by_role("button", name=re.compile("Start fine-tuning")).count()
    page.screenshot(path=str(_shots_dir() / "jobs.png"), full_page=False)
    assert not errors, errors
    print(
        f"\nbrowser timings: first load {first_load:.1f} s, pick epoch {pick_s:.2f} s, "
        f"inference {infer_s:.2f} s, cached epoch switch → plot updated {revisit_s:.2f} s "
        f"(all: {', '.join(f'{r:.2f}' for r in redraws)}), salience {sal_s:.2f} s"
    )
    page.close()
