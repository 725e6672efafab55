"""How soon a tail chart is on screen with Streamlit's Plotly element and with its ECharts element.

    .venv/bin/python bench/bench_chart_engines.py [--loads 5]

Issue 11's first-chart goal is <= 3 s after the server is ready; with Plotly's tail it was missed
by ~0.5-1.5 s, and a Chromium profile put ~0.9 s of it in evaluating Plotly's 4.7 MB bundle and
~0.45 s in Plotly's first draw, which is why the Explore view now draws it with ECharts. This
measures the two engines on a page that holds nothing else: the same tail (the demo fish's test
split, all six channels observed and predicted, epochs shaded, 20 salience rows below) drawn by
``st.plotly_chart`` with :func:`dashboard.figures.tail_figure` (the HTML export's figure) and by
``st.echarts_chart`` (Streamlit's ECharts element, a 1.2 MB bundle) with
:func:`dashboard.tail_echarts.tail_echart` (what the Explore view draws). Each is served by a
plain ``streamlit run`` of a one-chart page (started by ``browser_helpers.serve``, as the browser
tests start the app); loads alternate between the servers, each in a fresh browser context
(nothing from the cache). The time is from navigation to the first animation frame after the
chart's lines exist (Plotly: an SVG line path; ECharts: its canvas, drawn in the same task as it
is created, animation off).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # browser_helpers: shared with the browser tests

#: The one-chart page; ``KIND`` (environment) picks the element.
PAGE = textwrap.dedent(
    '''
    import os

    import numpy as np
    import streamlit as st

    from dashboard.figures import EpochSpan, tail_figure
    from dashboard.tail_echarts import tail_echart
    from decoding.recording import load_recording
    from decoding.windows import chronological_split

    st.set_page_config(layout="wide")
    st.markdown("#### tail")
    rec = load_recording(os.environ["FISH"])
    test = chronological_split(rec.n_frames).test
    t = np.arange(test.start, test.stop) / rec.frame_rate_hz
    obs = rec.behavior[test.start : test.stop]
    pred = obs * 0.9
    heat = np.abs(np.random.default_rng(0).standard_normal((len(t), 20))).astype(np.float32)
    labels = [f"#{i + 1} n{i}" for i in range(20)]
    spans = [EpochSpan(e.name, e.start / rec.frame_rate_hz, e.stop / rec.frame_rate_hz)
             for e in rec.epochs if test.start <= e.start < test.stop]
    args = dict(units=rec.behavior_units, epochs=spans, heatmap=heat, heatmap_labels=labels,
                title="Tail angles: observed vs predicted")
    if os.environ["KIND"] == "plotly":
        st.plotly_chart(tail_figure(t, obs, pred, rec.behavior_names, **args))
    else:
        c = tail_echart(t, obs, pred, rec.behavior_names, **args)
        st.echarts_chart(c.option, height=c.height, alt=c.alt)
    '''
)
DRAWN_JS = """(() => { window.__drawn = null;
  const here = () => document.querySelector('.js-plotly-plot .main-svg path.js-line')
    || document.querySelector('[data-testid="stEChartsChart"] canvas');
  const look = () => requestAnimationFrame(() => {
    if (window.__drawn === null && here()) window.__drawn = performance.now(); });
  new MutationObserver(look).observe(document, {subtree: true, childList: true}); })();"""
KINDS = ("plotly", "echarts")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--loads", type=int, default=5, help="page loads per element")
    args = parser.parse_args()
    from browser_helpers import exit_on_sigterm

    exit_on_sigterm()  # a killed run still stops its servers and removes its folder
    with tempfile.TemporaryDirectory(prefix="bench_charts_", ignore_cleanup_errors=True) as tmp:
        times = _loads(Path(tmp), args.loads)  # the page and the servers' logs go with the run
    print(f"{'element':10s} {'median s':>9s}  loads (navigation -> chart drawn)")
    for kind, got in times.items():
        print(f"{kind:10s} {statistics.median(got):9.2f}  " + ", ".join(f"{s:.2f}" for s in got))


def _loads(tmp: Path, loads: int) -> dict[str, list[float]]:
    """Seconds to the chart drawn, ``loads`` fresh page loads per element, alternating."""
    from browser_helpers import CHROMIUM, CHROMIUM_ARGS, free_port, serve, stop, wait_healthy
    from playwright.sync_api import sync_playwright

    from decoding.synthetic import ensure_demo_fish

    page_py = tmp / "page.py"
    page_py.write_text(PAGE)
    fish = ensure_demo_fish(ROOT / "data" / "demo")
    servers = {}
    for kind in KINDS:
        port, log = free_port(), tmp / f"{kind}.log"
        env = {**os.environ, "KIND": kind, "FISH": str(fish), "PYTHONPATH": str(ROOT)}
        servers[kind] = (serve(env, port, log, str(page_py)), f"http://127.0.0.1:{port}", log)
    times: dict[str, list[float]] = {k: [] for k in KINDS}
    try:
        for proc, url, log in servers.values():
            wait_healthy(url, proc, log, 300)
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            for i in range(loads):
                for kind in KINDS if i % 2 == 0 else KINDS[::-1]:
                    times[kind].append(_load(browser, servers[kind][1]))
            browser.close()
    finally:
        for proc, _url, _log in servers.values():
            stop(proc, 20)
    return times


def _load(browser, url: str) -> float:
    """Seconds from navigation to the chart drawn, in a fresh browser context."""
    ctx = browser.new_context(viewport={"width": 1600, "height": 1000})
    ctx.add_init_script(DRAWN_JS)
    page = ctx.new_page()
    page.goto(url + "/")
    page.wait_for_function("window.__drawn !== null", timeout=120_000)
    seconds = page.evaluate("window.__drawn") / 1000
    page.wait_for_timeout(1500)  # let it settle before the next load starts
    ctx.close()
    return seconds


if __name__ == "__main__":
    main()
