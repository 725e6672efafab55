"""End to end in a real headless Chromium (Debian's ``chromium`` driven by Playwright).

The app is served with ``streamlit run`` on 127.0.0.1 (a free port) against a small synthetic fish
and a small checkpoint trained here. The test loads the page (the checkpoint is picked by default),
picks an epoch, runs inference and salience, and checks the DOM and the Plotly data in the page: the
3D brain is painted after the first chart; a salience cell's tooltip names its neuron and each row's
its channel; exports are not built or sent with the page and are named by fish, epoch and model;
presentation mode enlarges text; an epoch switch never shows the previous epoch's salience map as
current; a shared link reopens the predictions and the salience; the jobs list refreshes without
fading and only while a job runs. A second test opens exported figures (the one-page summary, the
brain) and checks that nothing is clipped and the legend stays off the data. Screenshots for the
README go to ``docs/screenshots/`` (or ``$NLP4NEURO_SCREENSHOTS``); timings are printed (``-s`` to
see them).
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import time
from pathlib import Path

import pytest
from browser_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    ROOT,
    free_port,
    serve,
    settle,
    stop,
    wait_healthy,
)

pytestmark = pytest.mark.browser

PLOTLY_DATA_JS = """() => {
  const size = {f8: 8, f4: 4, i4: 4, u4: 4, i2: 2, u2: 2, i1: 1, u1: 1, u1c: 1};
  const len = a => !a ? 0 : (a.length !== undefined ? a.length
      : (a.bdata ? atob(a.bdata).length / (size[a.dtype] || 8) : 0));
  return Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => ({
    traces: (d.data || []).map(t => ({name: t.name || '', type: t.type || 'scatter', n: len(t.x)})),
    shapes: ((d.layout || {}).shapes || []).length,
    title: (((d.layout || {}).title || {}).text) || ''}));
}"""

#: The Explore view's tail chart (ECharts, drawn on a canvas): its screen-reader name (which
#: names its title and frames, see ``dashboard.tail_echarts.EChart.alt``) once it is drawn.
TAIL_JS = """() => { const el = document.querySelector('[data-testid="stEChartsChart"]');
  return el && el.querySelector('canvas') ? el.getAttribute('aria-label') || '' : null; }"""

FIRST_SALIENCE_COLOR_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot'))
  .map(d => (((d.layout || {}).coloraxis || {}).colorscale || [])[0]).filter(Boolean)
  .map(stop => stop[1])"""


#: Per axis of every 2D Plotly figure in the page: tick labels and axis title outside the figure
#: (clipped) and the title overlapping its own tick labels.
AXES_FIT_JS = """() => {
  const out = [];
  const over = (a, b) => a.left < b.right - 1 && b.left < a.right - 1
      && a.top < b.bottom - 1 && b.top < a.bottom - 1;
  const outside = (r, f) => r.width > 0 && (r.left < f.left - 0.5 || r.right > f.right + 0.5
      || r.top < f.top - 0.5 || r.bottom > f.bottom + 0.5);
  for (const gd of document.querySelectorAll('.js-plotly-plot')) {
    const fig = gd.getBoundingClientRect();
    const name = ((gd.layout || {}).title || {}).text || '';
    const axes = Object.values(gd._fullLayout)
        .filter(v => v && v._id && /axis/.test(v._name || ''));
    for (const ax of axes) {
      const ticks = Array.from(gd.querySelectorAll(`.${ax._id}tick text`))
          .map(e => e.getBoundingClientRect()).filter(r => r.width > 0);
      const t = gd.querySelector(`.g-${ax._id}title text`);
      const tr = t ? t.getBoundingClientRect() : null;
      const clipped = ticks.filter(r => outside(r, fig)).length + (tr && outside(tr, fig) ? 1 : 0);
      out.push({figure: name, axis: ax._id, ticks: ticks.length, clipped,
                overlaps: tr && tr.width > 0 ? ticks.filter(r => over(r, tr)).length : 0});
    }
  }
  return out;
}"""

#: Per 2D Plotly figure with a legend: does the legend cover any plot area?
LEGEND_JS = """() => Array.from(document.querySelectorAll('.js-plotly-plot')).map(gd => {
  const leg = gd.querySelector('.legend');
  if (!leg) return null;
  const l = leg.getBoundingClientRect();
  const areas = Array.from(gd.querySelectorAll('.nsewdrag')).map(e => e.getBoundingClientRect());
  return {figure: ((gd.layout || {}).title || {}).text || '',
          covers: areas.some(a => l.left < a.right && a.left < l.right
                                  && l.top < a.bottom && a.top < l.bottom)};
}).filter(Boolean)"""

#: Box of the 3D scene of the first Plotly figure (its WebGL viewport; text beyond it is cut).
SCENE_BOX_JS = """() => { const gd = document.querySelector('.js-plotly-plot');
  const fl = gd._fullLayout, d = fl.scene.domain, s = fl._size, r = gd.getBoundingClientRect();
  return {x: r.left + s.l + d.x[0] * s.w, y: r.top + s.t + (1 - d.y[1]) * s.h,
          width: (d.x[1] - d.x[0]) * s.w, height: (d.y[1] - d.y[0]) * s.h}; }"""

#: Salience heading's frames, and the map captions not marked stale (Streamlit marks what is left
#: from the previous run while the script runs).
SALIENCE_STATE_JS = """() => {
  const head = Array.from(document.querySelectorAll('h4'))
      .map(h => h.innerText).find(t => t.startsWith('Salience · ')) || '';
  const live = Array.from(document.querySelectorAll('[data-testid="stCaptionContainer"]'))
      .filter(c => c.innerText.startsWith('Salience map for'))
      .filter(c => !c.closest('[data-stale="true"]')).map(c => c.innerText);
  return {frames: head.split(' · ').slice(2).join(' · '), live};
}"""

#: Lines of text of each sidebar widget label and radio group (one that wraps has more than one):
#: the vertical centres of its text fragments, grouped when closer than most of a line.
SIDEBAR_LINES_JS = """() => Array.from(document.querySelectorAll(
    '[data-testid="stSidebar"] [data-testid="stWidgetLabel"], '
    + '[data-testid="stSidebar"] [role="radiogroup"]')).map(el => {
  const fs = parseFloat(getComputedStyle(el).fontSize);
  const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
  const mids = [];
  for (let n = walker.nextNode(); n; n = walker.nextNode()) {
    if (!n.textContent.trim()) continue;
    const r = document.createRange(); r.selectNodeContents(n);
    for (const x of r.getClientRects()) if (x.width > 0) mids.push(x.top + x.height / 2);
  }
  mids.sort((a, b) => a - b);
  let lines = mids.length ? 1 : 0;
  for (let i = 1; i < mids.length; i++) if (mids[i] - mids[i - 1] > 0.8 * fs) lines++;
  return {text: el.innerText.replace(/\\s+/g, ' ').slice(0, 40), lines};
})"""

#: Font sizes (px) of the page's first h4 heading, first metric value, and the first Plotly
#: figure's base and title fonts.
SIZES_JS = """() => {
  const px = el => el ? parseFloat(getComputedStyle(el).fontSize) : 0;
  const gd = document.querySelector('.js-plotly-plot');
  return {heading: px(document.querySelector('h4')),
          metric: px(document.querySelector('[data-testid="stMetricValue"]')),
          plot: gd._fullLayout.font.size, plot_title: gd._fullLayout.title.font.size};
}"""


#: Installed before the page loads: the page's time at the first animation frame that shows a 2D
#: chart (the ECharts tail, or a 2D Plotly chart with data), at the first that shows the 3D
#: brain, and at the first that shows the brain's controls (its *Point size* slider).
ORDER_JS = """(() => { window.__order = {}; const tick = () => {
  const plots = Array.from(document.querySelectorAll('.js-plotly-plot')).map(d => d.data || []);
  const now = performance.now();
  const is3d = t => t.type === 'scatter3d' || t.type === 'mesh3d';
  const tail = document.querySelector('[data-testid="stEChartsChart"] canvas');
  if (!window.__order.chart && (tail || plots.some(d => d.length && !d.some(is3d))))
    window.__order.chart = now;
  if (!window.__order.brain && plots.some(d => d.some(is3d))) window.__order.brain = now;
  if (!window.__order.controls && Array.from(document.querySelectorAll(
      '[data-testid="stWidgetLabel"]')).some(e => e.textContent.includes('Point size')))
    window.__order.controls = now;
  requestAnimationFrame(tick); }; requestAnimationFrame(tick); })();"""


def _luminance(color: str) -> float:
    """Relative luminance (0 = black, 1 = white) of ``#rrggbb``."""
    r, g, b = (int(color[i : i + 2], 16) / 255 for i in (1, 3, 5))
    return 0.2126 * r + 0.7152 * g + 0.0722 * b


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    """The app served as `make demo` does (`streamlit run dashboard/serve.py`) on a free port;
    yields its base URL."""
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

    port = free_port()
    env = {
        **os.environ,
        "NLP4NEURO_DATA": str(root / "data"),
        "NLP4NEURO_CHECKPOINTS": str(root / "ckpts"),
        "NLP4NEURO_JOBS": str(root / "runs" / "jobs"),
        "NLP4NEURO_CACHE": str(root / "cache"),
        "PYTHONPATH": str(ROOT),
    }
    log = root / "streamlit.log"
    proc = serve(env, port, log)  # what `make demo` serves
    url = f"http://127.0.0.1:{port}"
    try:
        wait_healthy(url, proc, log, timeout=60)
        yield {"url": url, "n_frames": rec.n_frames, "rec": rec, "root": root}
    finally:
        stop(proc)


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
    settle(page, timeout)


def _tail_state(page) -> tuple[int, str]:
    """(frames, title) of the tail chart on screen, from its screen-reader name; (0, "") while
    none is drawn."""
    alt = page.evaluate(TAIL_JS)
    got = re.search(r": (\d+) frames", alt or "")
    return (int(got.group(1)), alt) if got else (0, "")


def _tail_tooltip(page, y: float, *has: str | re.Pattern) -> str:
    """Point at height ``y`` (px from the tail chart's top; negative: from its bottom) in the
    middle of the chart; once a tooltip holding every ``has`` shows, the chart's text."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    tip = page.locator('[data-testid="stEChartsChart"] div')
    for text in has:
        tip = tip.filter(has_text=text)
    for attempt in range(3):  # a redraw under the pointer hides the tooltip: point again
        box = page.locator('[data-testid="stEChartsChart"] canvas').first.bounding_box()
        top = box["y"] + (y if y >= 0 else box["height"] + y)
        page.mouse.move(box["x"] + box["width"] / 2 + attempt, top)
        try:
            tip.last.wait_for(timeout=10_000)
            break
        except PlaywrightTimeout:
            if attempt == 2:
                raise
            page.mouse.move(0, 0)
    return page.get_by_test_id("stEChartsChart").first.inner_text()


def _a_salience_cell_names_its_neuron(page) -> None:
    """Hover the tail chart's last salience row: its tooltip names the row's neuron (rank, id,
    region), the frame's time and the value."""
    from dashboard.tail_echarts import BOTTOM_PX

    text = _tail_tooltip(page, -BOTTOM_PX - 4, "salience", re.compile(r"time \(s\)"))
    assert re.search(r"#\d+ n\d+ \S+", text), text
    assert re.search(r"salience\s+-?[\d.]+(e-?\d+)?", text), text
    page.mouse.move(0, 0)


def _each_rows_tooltip_names_its_channel(page, rec) -> None:
    """Hover each behaviour row of the tail chart: its tooltip is headed by its own channel (name
    and unit) and the time, and holds that row alone."""
    from dashboard.figures import channel_titles
    from dashboard.tail_echarts import GAP_PX, ROW_PX, TOP_PX

    heads = []
    for i, title in enumerate(channel_titles(rec.behavior_names, rec.behavior_units, "all")):
        text = _tail_tooltip(page, TOP_PX + i * (ROW_PX + GAP_PX) + ROW_PX / 2, f"{title} · ")
        heads.append(re.findall(r"^(.+ \(.+\)) · (\d+\.\d{1,2}) s$", text, re.M))
        assert heads[-1] == [(title, heads[-1][0][1])], heads
    page.mouse.move(0, 0)
    assert len({h[0][1] for h in heads}) == 1, heads  # one time: the pointer's


def _until_tail_frames(page, n: int, timeout: float = 60.0) -> float:
    """Wait until the tail chart in the page shows ``n`` frames; returns the seconds waited."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if _tail_state(page)[0] == n:
            return time.time() - t0
        page.wait_for_timeout(30)
    raise AssertionError(f"the tail chart never showed {n} frames")


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


#: Elements marked stale (left from the previous run) and running opacity fades, right now.
FADING_JS = """() => ({
  stale: document.querySelectorAll('[data-testid="stElementContainer"][data-stale="true"]').length,
  fades: document.getAnimations().filter(a => a.transitionProperty === 'opacity'
      && a.effect.getTiming().duration > 0).map(a => String(a.effect.getTiming().duration))})"""


def _watch_network(page) -> dict[str, list]:
    """Record HTTP responses (url, body bytes) and Streamlit messages received on the websocket
    (time, bytes, message type) of a page, from now on."""
    from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

    seen: dict[str, list] = {"http": [], "ws": []}

    def finished(request) -> None:
        with contextlib.suppress(Exception):  # the page went away
            seen["http"].append((request.url, request.sizes()["responseBodySize"]))

    def frame(payload) -> None:
        data = payload if isinstance(payload, bytes) else payload.encode()
        kind = ""
        with contextlib.suppress(Exception):  # not a Streamlit message
            kind = ForwardMsg.FromString(data).WhichOneof("type") or ""
        seen["ws"].append((time.time(), len(data), kind))

    page.on("requestfinished", finished)
    page.on("websocket", lambda ws: ws.on("framereceived", frame))
    return seen


def _compare_sizes(before: dict, after: dict) -> None:
    for what in ("heading", "metric", "plot", "plot_title"):
        assert after[what] > before[what], (what, before, after)


def _epoch_with_salience_switch(page, option: str, search: str, frames: str) -> None:
    """Switch epoch on the salience page; while the new map is computed, no map caption that is
    not marked stale names other frames than the heading. Ends when the new map is shown."""
    page.get_by_test_id("stSelectbox").filter(has_text="Stimulus epoch").click()
    page.keyboard.type(search)
    page.get_by_role("option", name=re.compile(option)).first.click()
    deadline = time.time() + 180
    while time.time() < deadline:
        state = page.evaluate(SALIENCE_STATE_JS)
        for caption in state["live"]:
            assert caption.startswith(f"Salience map for {state['frames']}"), state
        if state["frames"].startswith(frames) and state["live"]:
            return
        page.wait_for_timeout(40)
    raise AssertionError(f"the map for {frames} never showed")


def test_load_pick_epoch_infer_and_look(served, browser):
    """The whole tour: first load, an epoch, inference, an export, presentation mode, revisits,
    the salience view, an epoch switch there, the shared link, the jobs list."""
    page = browser.new_page(viewport={"width": 1500, "height": 2300})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    net = _watch_network(page)
    page.add_init_script(ORDER_JS)
    first_chart, first_load = _first_load(page, served, net)
    rec = served["rec"]
    idx, metrics, pick_s, infer_s = _pick_and_infer(page, rec)
    _export_and_presentation(page, rec, idx)
    redraws = _revisit_epochs(page, rec, idx)
    sal_s, link, caption = _salience_view(page)
    # another epoch: while its map is computed the previous epoch's map is never shown as current
    other = max(i for i, e in enumerate(rec.epochs) if e.name == "right")
    t5 = time.time()
    _epoch_with_salience_switch(page, rf"^{other} · right", f"{other} · right", f"{other} · right")
    sal_switch_s = time.time() - t5
    _settle(page)
    _shared_link_reopens(browser, link, caption, metrics)
    stale_seen = _jobs_refresh_without_fading(page, served, net)
    assert not errors, errors
    print(
        f"\nbrowser timings: first chart {first_chart:.1f} s, predictions + salience "
        f"{first_load:.1f} s, pick epoch {pick_s:.2f} s, "
        f"inference {infer_s:.2f} s, cached epoch switch → plot updated {min(redraws):.2f} s "
        f"(all: {', '.join(f'{r:.2f}' for r in redraws)}), salience {sal_s:.2f} s, "
        f"epoch switch with salience (computed) {sal_switch_s:.2f} s; jobs list: "
        f"{stale_seen} stale samples, none faded"
    )
    page.close()


def _first_load(page, served, net) -> tuple[float, float]:
    """A bare link: predictions and salience without a click, the 3D brain after the first
    chart, compressed bundles under 6 MB, the tail as SVG, the selection in the URL, no export
    built. Returns (seconds to the first chart, seconds to everything on screen)."""
    t0 = time.time()
    page.goto(served["url"])  # no model in the link: the fish's checkpoint is picked
    page.wait_for_selector('[data-testid="stEChartsChart"] canvas', timeout=120_000)
    first_chart = time.time() - t0
    # a bare link opens with the checkpoint's predictions and salience, without a click
    page.get_by_test_id("stMetric").first.wait_for(timeout=120_000)
    page.wait_for_function(f"() => ({TAIL_JS})()?.includes('salience · ')", timeout=120_000)
    _settle(page)
    first_load = time.time() - t0
    # the 3D brain (seconds of WebGL in a browser without a GPU) is drawn after the first chart
    page.wait_for_function("() => window.__order.brain", timeout=120_000)
    _settle(page)
    _a_salience_cell_names_its_neuron(page)  # on a quiet page: not while the brain is drawn
    _each_rows_tooltip_names_its_channel(page, served["rec"])
    order = page.evaluate("window.__order")
    assert order.get("chart") and order["chart"] < order["brain"], order
    # and so are its controls (~15 widgets: ~0.4 s of the browser's work before the first chart)
    assert order.get("controls") and order["chart"] < order["controls"], order
    assert page.get_by_text("NLP4Neuro Explorer").count()
    # Streamlit's bundles come compressed (it sends them raw: 9.3 MB); a load stays under 6 MB
    sent = sum(max(0, n) for _, n in net["http"]) + sum(n for _, n, _ in net["ws"])
    assert sent < 6 * 2**20, f"{sent / 2**20:.1f} MB per load"
    plotly_js = [n for u, n in net["http"] if "/PlotlyChart." in u]
    assert plotly_js and plotly_js[0] < 2.5 * 2**20, plotly_js  # 4.7 MB uncompressed
    # the tail is drawn by ECharts (a 1.2 MB bundle, on a 2D canvas: no WebGL context, which
    # costs seconds in a software-rendered browser), before Plotly's bundle is needed
    echarts_js = [n for u, n in net["http"] if "/EChartsChart." in u]
    assert echarts_js and echarts_js[0] < 0.6 * 2**20, echarts_js
    from decoding.windows import chronological_split

    test = chronological_split(served["rec"].n_frames).test
    frames, title = _tail_state(page)
    assert frames == len(test) and "observed vs predicted" in title, (frames, title)
    # the selection goes into the URL (written by a rerun; under load it can trail the chart)
    page.wait_for_url(
        re.compile(r"fish=browser_fish.*lstm_small|lstm_small.*fish=browser_fish"), timeout=60_000
    )
    assert page.get_by_role("button", name=re.compile("Run inference")).is_enabled()
    assert served["rec"].fish_id in page.inner_text("body")
    # the stimulus protocol's table (a Markdown element per cell) is drawn only when opened
    assert not page.get_by_test_id("stTable").count()
    protocol = page.get_by_test_id("stExpander").filter(has_text="Stimulus protocol")
    protocol.locator("summary").click()
    page.get_by_test_id("stTable").wait_for(timeout=60_000)
    rows = page.get_by_test_id("stTable").locator("tbody tr").count()
    assert rows == len(served["rec"].epochs), rows
    protocol.locator("summary").click()
    page.get_by_test_id("stTable").wait_for(state="detached", timeout=60_000)
    _settle(page)
    # the exports are neither built nor sent with the page
    assert page.get_by_role("button", name=re.compile("Tail figure")).count()
    assert not [u for u, _ in net["http"] if "/media/" in u and "/static/" not in u]
    return first_chart, first_load


def _pick_and_infer(page, rec) -> tuple[int, list[str], float, float]:
    """Pick the last "left" epoch (held out: its scores are held-out ones) and run inference;
    check the metrics, the tail's frames, the brain, the legends. Returns (epoch,
    metric texts, seconds to pick, seconds to infer)."""
    idx = max(i for i, e in enumerate(rec.epochs) if e.name == "left")
    ep = rec.epochs[idx]
    pick_s = _pick_epoch(page, rf"^{idx} · left", ep.stop - ep.start, search=f"{idx} · left")
    _settle(page)
    assert f"epoch={idx}" in page.url
    t2 = time.time()
    page.get_by_role("button", name=re.compile("Run inference")).click()
    page.get_by_test_id("stMetric").first.wait_for(timeout=60_000)
    _settle(page)
    infer_s = time.time() - t2
    metrics = page.get_by_test_id("stMetric").all_inner_texts()
    assert any("RMSE" in m for m in metrics) and any("Pearson r" in m for m in metrics)
    assert "not a held-out score" not in page.inner_text("body")
    assert "pred=1" in page.url
    page.wait_for_function("() => document.querySelectorAll('.js-plotly-plot').length >= 1")
    frames, title = _tail_state(page)
    assert frames == ep.stop - ep.start and "observed vs predicted" in title, (frames, title, ep)
    assert f"from {ep.start / rec.frame_rate_hz:.2f} s" in title, (title, ep)
    (brain,) = page.evaluate(PLOTLY_DATA_JS)
    types = {t["type"] for t in brain["traces"]}
    assert {"mesh3d", "scatter3d"} <= types
    assert sum(t["n"] for t in brain["traces"] if t["type"] == "scatter3d") == rec.n_neurons
    assert not [f for f in page.evaluate(LEGEND_JS) if f["covers"]]  # legends off the data
    return idx, metrics, pick_s, infer_s


def _export_and_presentation(page, rec, idx: int) -> None:
    """An export is built when clicked and named by fish, epoch and model; presentation mode
    enlarges headings, metric numbers and plot fonts, and sidebar labels don't wrap."""
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name=re.compile("Tail figure")).click()
    name = download.value.suggested_filename
    assert name == f"{rec.fish_id}_epoch{idx}-left_lstm_small_tail.html", name
    assert "plotly" in Path(download.value.path()).read_text()[:200_000].lower()
    normal = page.evaluate(SIZES_JS)
    assert all(x["lines"] <= 1 for x in page.evaluate(SIDEBAR_LINES_JS))
    page.get_by_text("Presentation mode", exact=True).click()
    _settle(page)
    page.wait_for_timeout(500)
    _compare_sizes(normal, page.evaluate(SIZES_JS))
    wrapped = [x for x in page.evaluate(SIDEBAR_LINES_JS) if x["lines"] > 1]
    assert not wrapped, wrapped
    page.get_by_text("Presentation mode", exact=True).click()
    _settle(page)


def _revisit_epochs(page, rec, idx: int) -> list[float]:
    """Switch to another epoch and back (both cached now); seconds until the plot shows each."""
    from decoding.windows import chronological_split

    ep = rec.epochs[idx]
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
    page.screenshot(path=str(_shots_dir() / "explore.png"), full_page=True)
    return redraws


def _salience_view(page) -> tuple[float, str, list[str]]:
    """The salience view: compute, every chart there, the colour scale's darkest end first,
    every heatmap row labelled, the link carries the results. Returns (seconds to compute, the
    link, the map's caption)."""
    from decoding.salience import DEFAULT_METHOD

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
    # every row of the salience-over-time heatmap is labelled
    heat_ticks = page.evaluate(
        """() => Array.from(document.querySelectorAll('.js-plotly-plot')).flatMap(gd =>
          gd._fullData.filter(t => t.type === 'heatmap')
            .map(t => gd.querySelectorAll(`.${t.yaxis}tick text`).length))"""
    )
    assert heat_ticks and all(n == 20 for n in heat_ticks), heat_ticks
    page.screenshot(path=str(_shots_dir() / "salience.png"), full_page=True)
    link = page.url
    assert "pred=1" in link and f"sal={DEFAULT_METHOD}" in link, link
    return sal_s, link, page.evaluate(SALIENCE_STATE_JS)["live"]


def _shared_link_reopens(browser, link: str, caption: list[str], metrics: list[str]) -> None:
    """The link opens the same predictions and salience, with no click (from the caches)."""
    shared = browser.new_page(viewport={"width": 1500, "height": 2300})
    shared.goto(link)
    shared.get_by_text("Top neurons", exact=True).wait_for(timeout=120_000)
    _settle(shared)
    assert shared.evaluate(SALIENCE_STATE_JS)["live"] == caption
    shared.goto(link.replace("view=salience", "view=explore"))
    shared.get_by_test_id("stMetric").first.wait_for(timeout=60_000)
    _settle(shared)
    assert shared.get_by_test_id("stMetric").all_inner_texts() == metrics
    shared.close()


#: Elements of the live jobs list: marked stale (while it refreshes), opacity, transition.
JOBS_STALE_JS = """() => Array.from(document.querySelectorAll(
    '.st-key-jobs_live [data-testid="stElementContainer"]')).map(e => {
    const cs = getComputedStyle(e);
    return {stale: e.dataset.stale === 'true', opacity: parseFloat(cs.opacity),
            transition: cs.transitionDuration};
  })"""


def _jobs_refresh_without_fading(page, served, net) -> int:
    """The jobs list refreshes itself while a job runs, without fading, and stops after.
    Returns how many stale elements were seen (refreshes)."""
    from dashboard import jobs

    jobs_dir = served["root"] / "runs" / "jobs"
    wait = "import os,time\nwhile not os.path.exists(r'{cancel}'): time.sleep(0.1)"
    job = jobs.start_job(jobs_dir, "train", "waits for its cancel", [sys.executable, "-c", wait])
    page.get_by_text("Train & jobs", exact=True).first.click()
    _settle(page)
    page.get_by_text("waits for its cancel").first.wait_for(timeout=30_000)
    assert page.get_by_role("button", name=re.compile("Start fine-tuning")).count()
    card = page.get_by_text(re.compile(r"· running · \d+ s")).first
    seen_texts, faded, stale_seen = set(), [], 0
    t6 = time.time()
    while time.time() - t6 < 6:
        seen_texts.add(card.inner_text())
        stale = page.evaluate(JOBS_STALE_JS)  # while the list refreshes: marked, never faded
        stale_seen += sum(x["stale"] for x in stale)
        faded += [x for x in stale if x["opacity"] < 1 or (x["stale"] and x["transition"] != "0s")]
        page.wait_for_timeout(30)
    assert len(seen_texts) >= 2, seen_texts  # it refreshed
    assert not faded, faded[:5]  # and never greyed out
    page.screenshot(path=str(_shots_dir() / "jobs.png"), full_page=False)
    jobs.cancel_job(jobs.load_job(job.dir))
    page.get_by_text(re.compile(r"· cancelled · ")).first.wait_for(timeout=60_000)
    _settle(page)
    page.wait_for_timeout(1000)
    quiet_from = time.time()
    page.wait_for_timeout(4500)
    reruns = [k for t, _, k in net["ws"] if t > quiet_from and k in ("new_session", "delta")]
    assert not reruns, reruns  # nothing runs: no refresh
    return stale_seen



#: A page with the app's own CSS whose button starts a 2.5 s run: meanwhile what the previous run
#: drew is stale.
SLOW_RUN_PAGE = """
import time

import streamlit as st

from dashboard.page_style import BASE_CSS

st.markdown(BASE_CSS, unsafe_allow_html=True)
if st.button("slow run"):
    time.sleep(2.5)
st.write("drawn by the previous run")
st.line_chart([1.0, 3.0, 2.0])
"""


#: Once the page holds the rule on stale elements, counts the changes of the page after which it
#: does not (``window.__gaps``).
WATCH_STYLE_JS = """() => {
  const held = () => [...document.querySelectorAll('style')]
    .some(s => s.textContent.includes('data-stale'));
  if (!held()) return false;
  window.__gaps = 0;
  new MutationObserver(() => { window.__gaps += !held(); })
    .observe(document, {childList: true, subtree: true, characterData: true});
  return true; }"""


def test_a_long_run_dims_the_previous_page_at_once_without_fading(browser, tmp_path):
    """Streamlit fades what the previous run drew for a second, half a second into a run; the
    app's CSS dims it at once. The fade had the browser composite the page every frame for that
    second (~0.4 of a core on 2 cores, taken from the salience computation of the run).

    The button is clicked once the page holds its style: on a first load Streamlit draws the
    page's text 40-380 ms (12 loads) before the HTML of the ``st.markdown`` that carries the
    CSS, and a fresh clone's CI clicked in that window (the fade it saw was the page without its
    style).
    The style then stays in the page for the whole run."""
    page_py = tmp_path / "slow_run.py"
    page_py.write_text(SLOW_RUN_PAGE)
    port, log = free_port(), tmp_path / "slow_run.log"
    proc = serve({**os.environ, "PYTHONPATH": str(ROOT)}, port, log, str(page_py))
    try:
        wait_healthy(f"http://127.0.0.1:{port}", proc, log, 120)
        page = browser.new_page()
        page.goto(f"http://127.0.0.1:{port}/")
        page.get_by_text("drawn by the previous run").wait_for(timeout=60_000)
        page.wait_for_function(WATCH_STYLE_JS, timeout=30_000)  # the page's style is in place
        page.get_by_role("button", name="slow run").click()
        stale, fades = 0, []
        t0 = time.time()
        while time.time() - t0 < 2.0:
            got = page.evaluate(FADING_JS)
            stale, fades = stale + got["stale"], fades + got["fades"]
            page.wait_for_timeout(40)
        assert stale, "what the previous run drew is marked stale during the run"
        gaps = page.evaluate("() => window.__gaps")
        assert not gaps, f"the page was without its style {gaps}x during the run"
        assert not fades, fades[:3]
        page.close()
    finally:
        stop(proc, 10)


def _figure_page(browser, html: bytes, tmp_path: Path, name: str):
    path = tmp_path / name
    path.write_bytes(html)
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    page.goto(path.as_uri())
    page.wait_for_selector(".js-plotly-plot")
    page.wait_for_timeout(1500)
    return page


def test_exported_figures_keep_labels_inside_and_the_legend_off_the_data(browser, tmp_path):
    """The one-page summary: region names and axis titles are neither clipped nor on top of
    their ticks, every heatmap row is labelled, the legend does not cover the data; the 3D
    brain (full size, presentation size, compact) draws nothing across its scene's edge."""
    import numpy as np
    import pandas as pd

    from dashboard.downloads import summary_html
    from dashboard.figures import laterality_figure, region_bar_figure, tail_figure

    rng = np.random.default_rng(0)
    regions = ["Rhombencephalon - Oxtr Cluster 2", "nMLF_R", "Tectum Periventriculare", "Hc"]
    t = np.arange(120) / 2
    tail = tail_figure(
        t,
        rng.normal(size=(120, 6)),
        rng.normal(size=(120, 6)),
        [f"theta_{i}" for i in range(6)],
        channel="sum",
        heatmap=rng.random((120, 20)),
        heatmap_labels=[f"#{i + 1} n{1000 + i} {regions[i % 4]}" for i in range(20)],
        title="Tail and salience over time",
    )
    bars = region_bar_figure(regions, rng.random(4), title="Mean salience per region")
    lat = laterality_figure(regions, rng.random(4), rng.random(4), title="Left vs right")
    page = _figure_page(
        browser,
        summary_html(
            "fish: salience",
            [("fish", "f")],
            [("Tail", tail), ("Regions", bars), ("Left vs right", lat)],
            [("Regions", pd.DataFrame({"region": regions}))],
        ),
        tmp_path,
        "summary.html",
    )
    axes = page.evaluate(AXES_FIT_JS)
    assert len(axes) >= 7
    bad = [a for a in axes if a["clipped"] or a["overlaps"]]
    assert not bad, bad
    heat = [a for a in axes if a["figure"].startswith("Tail") and a["ticks"] == 20]
    assert heat, axes  # all 20 neurons labelled
    assert not [f for f in page.evaluate(LEGEND_JS) if f["covers"]]
    page.close()
    _brain_exports_fit_their_scene(browser, tmp_path, rng)


def _brain_exports_fit_their_scene(browser, tmp_path: Path, rng) -> None:
    """The exported 3D brain (four views, at presentation size too, and compact) draws something
    and nothing across its scene's edge."""
    import io

    import numpy as np
    from PIL import Image

    from dashboard.downloads import figure_html
    from dashboard.figures import MeshSpec, apply_presentation, brain_figure
    from decoding.atlas import default_atlas

    atlas = default_atlas()
    v, f = atlas.outline_mesh()
    outline = [MeshSpec("outline", "#bbbbbb", v, f, opacity=0.06)]
    pos = rng.uniform([40, 40, 20], [460, 1000, 260], size=(1500, 3))
    cases = {
        f"{view}{'_presenting' if present else ''}": brain_figure(
            pos, values=rng.random(1500), meshes=outline, camera=view, title="brain"
        )
        for view in ("oblique", "lateral", "dorsal", "frontal")
        for present in (False, True)
    }
    for name, fig in cases.items():
        if name.endswith("_presenting"):
            apply_presentation(fig)
        fig.update_layout(width=1100)
    small = brain_figure(pos, values=rng.random(1500), meshes=outline, height=460, compact=True)
    cases["compact"] = small.update_layout(width=560)
    for name, fig in cases.items():
        page = _figure_page(browser, figure_html(fig), tmp_path, f"brain_{name}.html")
        page.add_style_tag(content=".main-svg { visibility: hidden !important; }")  # 3D text only
        page.wait_for_timeout(300)
        shot = page.screenshot(clip=page.evaluate(SCENE_BOX_JS))
        img = np.asarray(Image.open(io.BytesIO(shot)).convert("L"))
        assert (img < 200).sum() > 1000, f"{name}: nothing drawn (no WebGL?)"
        edges = {"top": img[:4], "bottom": img[-4:], "left": img[:, :4], "right": img[:, -4:]}
        cut = {k: int((e < 200).sum()) for k, e in edges.items() if (e < 200).any()}
        assert not cut, f"{name}: drawn across the scene's edge (cut off): {cut}"
        page.close()
