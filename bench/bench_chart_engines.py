"""How soon a tail chart is on screen with Streamlit's Plotly element and with its ECharts element.

    .venv/bin/python bench/bench_chart_engines.py [--loads 5]

Issue 11's first-chart goal (<= 3 s after the server is ready) is missed by ~0.5-1.5 s, and a
Chromium profile puts ~0.9 s of it in evaluating Plotly's 4.7 MB bundle and ~0.45 s in Plotly's
first draw. This measures the alternative: the same tail (the demo fish's test split, all six
channels observed and predicted, epochs shaded, 20 salience rows below) drawn by
``st.plotly_chart`` with :func:`dashboard.figures.tail_figure` and by ``st.echarts_chart``
(Streamlit's ECharts element; its bundle is 1.2 MB) with a comparable option: one grid per row on a
shared time range, the salience rows a heatmap (on a category axis of the frames, as ECharts'
heatmaps need). Each is served by a plain ``streamlit run`` of a one-chart page (started by
``browser_helpers.serve``, as the browser tests start the app); loads alternate between the
servers, each in a fresh browser context (nothing from the cache). The time is from navigation to
the first animation frame after the chart's lines exist (Plotly: an SVG line path; ECharts: its
canvas, drawn in the same task as it is created, animation off).
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
    spans = [(e.start / rec.frame_rate_hz, e.stop / rec.frame_rate_hz, e.name)
             for e in rec.epochs if test.start <= e.start < test.stop]
    if os.environ["KIND"] == "plotly":
        from dashboard.figures import EpochSpan, tail_figure

        fig = tail_figure(t, obs, pred, rec.behavior_names, units=rec.behavior_units,
                          epochs=[EpochSpan(n, a, b) for a, b, n in spans], heatmap=heat,
                          heatmap_labels=labels, title="Tail angles: observed vs predicted")
        st.plotly_chart(fig)
    else:
        K = obs.shape[1]
        rows = K + 1
        grid = [{"top": f"{4 + 13 * r}%", "height": "10%", "left": 90, "right": 40}
                for r in range(rows)]
        x = [{"type": "value", "gridIndex": r, "min": float(t[0]), "max": float(t[-1])}
             for r in range(K)]
        x.append({"type": "category", "gridIndex": K, "data": [f"{v:.1f}" for v in t]})
        y = [{"type": "value", "gridIndex": r, "name": n} for r, n in enumerate(rec.behavior_names)]
        y.append({"type": "category", "gridIndex": K, "data": labels})
        shade = {"silent": True, "itemStyle": {"color": "rgba(0,0,0,0.05)"},
                 "data": [[{"xAxis": a, "name": n}, {"xAxis": b}] for a, b, n in spans[::2]]}
        series = []
        for k in range(K):
            for vals, name in ((obs[:, k], "observed"), (pred[:, k], "predicted")):
                series.append({"type": "line", "name": name, "xAxisIndex": k, "yAxisIndex": k,
                               "showSymbol": False, "data": np.c_[t, vals].round(4).tolist(),
                               "markArea": shade if name == "observed" else None})
        cells = [[i, j, float(heat[i, j])] for i in range(len(t)) for j in range(20)]
        series.append({"type": "heatmap", "xAxisIndex": K, "yAxisIndex": K, "data": cells})
        option = {"title": {"text": "Tail angles: observed vs predicted"}, "grid": grid,
                  "xAxis": x, "yAxis": y, "series": series, "animation": False,
                  "tooltip": {"trigger": "axis"},
                  "visualMap": {"show": False, "min": 0, "max": float(heat.max()),
                                "seriesIndex": 2 * K},
                  "dataZoom": [{"type": "inside", "xAxisIndex": list(range(rows))}]}
        st.echarts_chart(option, height=900)
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
    from browser_helpers import CHROMIUM, CHROMIUM_ARGS, free_port, serve, stop, wait_healthy
    from playwright.sync_api import sync_playwright

    from decoding.synthetic import ensure_demo_fish

    tmp = Path(tempfile.mkdtemp(prefix="bench_charts_"))
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
            for i in range(args.loads):
                for kind in KINDS if i % 2 == 0 else KINDS[::-1]:
                    times[kind].append(_load(browser, servers[kind][1]))
            browser.close()
    finally:
        for proc, _url, _log in servers.values():
            stop(proc, 20)
    print(f"{'element':10s} {'median s':>9s}  loads (navigation -> chart drawn)")
    for kind, got in times.items():
        print(f"{kind:10s} {statistics.median(got):9.2f}  " + ", ".join(f"{s:.2f}" for s in got))


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
