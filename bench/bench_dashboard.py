"""Dashboard timings on demo-size fish, in a real browser and server side (Streamlit AppTest).

    .venv/bin/python bench/bench_dashboard.py [--repeats 5] [--no-browser] [--no-apptest]
        [--no-ig | --only-ig] [--script serve.py|app.py]

(the figures of issue 11: ``.venv/bin/python bench/bench_dashboard.py --no-apptest --repeats 3``)

Two 12,500-neuron x 3,000-frame fish in a temporary data folder (the demo fish and a second seed)
and a checkpoint (``assets/demo_checkpoint`` when shipped, else a small one trained here).

Browser (``streamlit run dashboard/serve.py``, what ``make demo`` runs; ``--script app.py`` for the
plain app; headless Chromium through Playwright, a fresh browser context per load, so nothing comes
from the browser's cache; the browser draws a blank page first, so its own first page is not the
cold server's load): from navigation (issued when the health check answers) to the first chart
painted with data, to the predictions and salience painted (a bare link opens with both) and to the
3D brain painted, on a cold server with an empty disk cache, on a restarted server (disk cache kept)
and on a warm one; bytes per page load (HTTP bodies as sent, compressed where the server compresses,
and websocket payloads), also for a shared link whose results are computed after the first screen;
epoch switches (click -> the tail painted with the new epoch's frames, and with salience its rows;
plus when the page is idle again, the 3D brain redrawn); IG salience for one epoch in the app (an
epoch switch that computes it) against the CLI (``python -m decoding salience`` on the same frames,
method and steps, run just before and just after the switch: the mean of their wall times and of
their own compute times; ``--repeats`` epochs, up to 4). Times are read from the page's own clock
at each animation frame after each change of the page, so a page too busy to answer is still
measured by what it painted; a switch counts from the click's ``pointerdown`` event in the page.
The browser figures are taken once the server's warm-up (``warm-up: done`` in its log) is over,
except the first loads.

Last, a table of the issue's goals with the figure measured for each. Seconds depend on the
machine's load (bytes do not).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # browser_helpers: shared with the browser tests

Row = tuple[str, float, str]
MB = 2**20
#: Goals of issue 11: (what, target, unit); the figures measured for each are filled in.
GOALS = {
    "first_chart": ("first chart after the server is ready (worst load)", 3.0, "s"),
    "results": ("bare link: predictions + salience on screen (worst load)", 3.0, "s"),
    "bytes": ("bytes per page load (worst case)", 6.0, "MB"),
    "switch": ("epoch switch with salience shown (median, cached)", 1.0, "s"),
    "ig_ratio": ("IG for one epoch: app (click -> on screen) / CLI compute", 1.2, "x"),
}


def _checkpoint(rec: Any, out: Path) -> Path:
    shipped = ROOT / "assets" / "demo_checkpoint"
    if (shipped / "config.json").is_file():
        return shipped
    import torch

    from decoding.checkpoint import save_checkpoint
    from decoding.train import TrainConfig, fit

    torch.set_num_threads(max(1, (os.cpu_count() or 2) // 2))
    res = fit(rec, TrainConfig(backbone="tiny-bert", epochs=1, window=10, device="cpu"))
    save_checkpoint(res.model, res.info, out)
    return out


def _setup(tmp: Path) -> tuple[Path, Path]:
    """The data folder (demo fish + a second seed) and the checkpoint; the app's folders in the
    environment."""
    from decoding.recording import load_recording
    from decoding.synthetic import ensure_demo_fish, make_demo_fish

    data = tmp / "data"
    data.mkdir()
    demo = ensure_demo_fish(ROOT / "data" / "demo")
    (data / "demo_fish.h5").symlink_to(demo)
    t = time.perf_counter()
    make_demo_fish(seed=1).save(data / "second_fish.h5")
    print(f"setup: second fish generated in {time.perf_counter() - t:.1f} s")
    ckpt = _checkpoint(load_recording(demo), tmp / "ckpts" / "bench_ckpt")
    os.environ.update(
        {
            "NLP4NEURO_DATA": str(data),
            "NLP4NEURO_CHECKPOINTS": str(ckpt.parent),
            "NLP4NEURO_JOBS": str(tmp / "jobs"),
            "NLP4NEURO_CACHE": str(tmp / "cache"),
        }
    )
    return data, ckpt


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium timings")
    parser.add_argument("--no-apptest", action="store_true", help="skip the AppTest timings")
    parser.add_argument("--no-ig", action="store_true", help="skip IG in the app vs the CLI")
    parser.add_argument(
        "--only-ig", action="store_true", help="one server, IG in the app vs the CLI only"
    )
    parser.add_argument(
        "--script",
        default="serve.py",
        choices=("serve.py", "app.py"),
        help="what the browser timings serve: serve.py (make demo: compressed bundles, warm "
        "start) or app.py (plain `streamlit run dashboard/app.py`)",
    )
    args = parser.parse_args()
    from browser_helpers import exit_on_sigterm

    exit_on_sigterm()  # a killed run still stops its servers and removes its folder
    # the fish, caches and logs (~170 MB) go with the run
    with tempfile.TemporaryDirectory(prefix="bench_dash_", ignore_cleanup_errors=True) as tmp:
        _run(args, Path(tmp))


def _run(args: argparse.Namespace, tmp: Path) -> None:
    data, ckpt = _setup(tmp)
    goals: dict[str, list[float]] = {name: [] for name in GOALS}
    if not args.no_browser:
        rows = bench_browser(data, ckpt, tmp, args, goals)
        _print_rows("real browser (Chromium), demo fish", rows)
    if not args.no_apptest:
        _print_rows("server side (AppTest)", bench_apptest(data, ckpt, args.repeats))
    _print_goals(goals)


def _print_rows(title: str, rows: list[Row]) -> None:
    print(f"\n{title}\n{'what':66s} {'seconds':>8s}  notes")
    for what, sec, note in rows:
        print(f"{what:66s} {sec:8.3f}  {note}")


def _print_goals(goals: dict[str, list[float]]) -> None:
    """The issue's goals: the worst figure measured for each, against its target."""
    print(f"\ngoals of issue 11 (seconds under this machine's load)\n{'goal':62s} "
          f"{'worst':>8s} {'target':>8s}  met")  # fmt: skip
    for name, (what, target, unit) in GOALS.items():
        got = goals.get(name) or []
        if not got:
            print(f"{what:62s} {'-':>8s} {target:7.1f}{unit}  not measured")
            continue
        worst = max(got)
        met = "yes" if worst <= target else "NO"
        each = ", ".join(f"{g:.2f}" for g in got)
        if len(got) > 2:  # the worst decides; the median says where most of them lie
            each += f"; median {statistics.median(got):.2f}"
        print(f"{what:62s} {worst:7.2f}{unit} {target:7.1f}{unit}  {met} ({each})")


# ------------------------------------------------------------------------------------ AppTest
def _median_row(what: str, times: list[float], extra: str = "") -> Row:
    note = f"min {min(times):.3f}, max {max(times):.3f}"
    return (what, statistics.median(times), note + (f"; {extra}" if extra else ""))


def bench_apptest(data: Path, ckpt: Path, repeats: int) -> list[Row]:
    """Server-side times: first run, inference, epoch and fish switches, the 3D figure."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=600)
    at.query_params.update({"fish": "demo_fish", "model": ckpt.name, "epoch": "3"})

    def timed(action: Callable[[], Any]) -> float:
        action()
        t0 = time.perf_counter()
        at.run()
        if at.exception:
            raise SystemExit(f"app raised: {at.exception[0].value}")
        return time.perf_counter() - t0

    def switches(key: str, values: tuple[str, ...]) -> list[float]:
        for v in values:  # warm the caches of what we switch between
            timed(lambda v=v: at.selectbox(key=key).set_value(v))
        return [timed(lambda v=v: at.selectbox(key=key).set_value(v))
                for _ in range(repeats) for v in values]  # fmt: skip

    rows = [("first run (open fish, atlas meshes, imports)", timed(lambda: None), "")]
    rows.append(("run inference (uncached, epoch 3)",
                 timed(lambda: at.button(key="run_infer").click()), ""))  # fmt: skip
    rows.append(_median_row("switch epoch, cached (median)", switches("w_epoch", ("5", "7"))))
    at.session_state["sal_on"] = True  # with the salience shown (the core's default method)
    rows.append(_median_row("switch epoch with salience shown, cached (median)",
                            switches("w_epoch", ("5", "7"))))  # fmt: skip
    at.session_state["sal_on"] = False
    # second fish: a checkpoint for the demo fish does not fit it, so look at it without a model
    timed(lambda: at.selectbox(key="w_model").set_value(""))
    first = timed(lambda: at.selectbox(key="w_fish").set_value("second_fish"))
    rows.append(("switch fish, first time (opens + validates the file)", first, ""))
    fish = switches("w_fish", ("demo_fish", "second_fish"))
    rows.append(_median_row("switch fish, cached (median)", fish))
    return rows + _brain_figure_rows(data / "demo_fish.h5")


def _brain_figure_rows(demo: Path) -> list[Row]:
    """The 3D figure on its own: build time and payload, demo fish and 100,000 neurons."""
    import numpy as np

    from dashboard.figures import MeshSpec, brain_figure
    from decoding.atlas import default_atlas
    from decoding.recording import load_recording

    rec = load_recording(demo)
    atlas = default_atlas()
    meshes = [
        MeshSpec(atlas.region(i).acronym, atlas.region(i).color, v, f)
        for i, (v, f) in atlas.all_region_meshes(step=3).items()
    ]
    rng = np.random.default_rng(0)
    rows = []
    cases = (
        ("brain figure build (12,500 neurons, 42 meshes)", rec.positions_um,
         atlas.acronyms_of(rec.positions_um)),
        ("brain figure build (100,000 neurons -> 40,000 drawn)",
         rng.uniform(0, [496, 1120, 280], size=(100_000, 3)), None),
    )  # fmt: skip
    for what, pos, regions in cases:
        t0 = time.perf_counter()
        fig = brain_figure(pos, values=rng.random(len(pos)), regions=regions, meshes=meshes)
        build = time.perf_counter() - t0
        t0 = time.perf_counter()
        payload = fig.to_json()
        note = f"to_json {time.perf_counter() - t0:.3f} s, {len(payload) / MB:.2f} MiB"
        rows.append((what, build, note))
    return rows


# ------------------------------------------------------------------------------------ browser
#: Installed in every page: on the animation frame (i.e. just before the browser paints) after
#: each change of the page (a MutationObserver: a probe that ran on every frame kept the browser
#: drawing 60 frames a second, which took CPU from the computations it timed) note the first
#: time each state of the charts is seen, in ms since the navigation started:
#: ``window.__seen = [[ms, frames of the tail, titles, n metrics, time of its first frame], ...]``.
#: The tail is the ECharts chart (its frames and title from its screen-reader name, see
#: ``dashboard.tail_echarts.EChart.alt``), else the first Plotly chart with data; the titles are
#: the tail's and every Plotly chart's (the 3D brain's).
#: Reading it afterwards measures what was on screen even while the page was too busy to answer.
#: ``window.__next(k, ms)`` resolves once more than ``k`` states are noted (or after ``ms``): the
#: bench waits on it instead of asking the page every 100 ms, which woke the browser, Playwright's
#: driver and this process 10 times a second while the app computed (wake-ups that, on 2 cores,
#: slow the app's 2 OpenMP threads far more than their own CPU: see docs/dashboard.md).
SEEN_JS = r"""(() => { window.__seen = []; let last = '';
  const len = x => !x ? 0 : (x.length !== undefined ? x.length
      : (x.bdata ? atob(x.bdata).length / ({f8: 8, f4: 4}[x.dtype] || 8) : 0));
  const first = x => { if (!x) return null; if (x.length !== undefined) return x[0];
    const b = atob(x.bdata), k = x.dtype === 'f4' ? 4 : 8, u = new Uint8Array(k);
    for (let i = 0; i < k; i++) u[i] = b.charCodeAt(i);
    const v = new DataView(u.buffer);
    return k === 4 ? v.getFloat32(0, true) : v.getFloat64(0, true); };
  const tick = () => {
    const plots = Array.from(document.querySelectorAll('.js-plotly-plot'));
    const gd = plots.find(d => d.data && d.data.length);
    const ec = document.querySelector('[data-testid="stEChartsChart"]');
    const alt = ec && ec.querySelector('canvas') ? ec.getAttribute('aria-label') || '' : '';
    const m = alt.match(/: (\d+) frames(?: from (-?[\d.]+) s)?/);
    const n = m ? +m[1] : (gd ? len(gd.data[0].x) : 0);
    const x0 = m ? (m[2] === undefined ? null : +m[2]) : (gd ? first(gd.data[0].x) : null);
    const titles = [alt, ...plots.map(d => ((d.layout || {}).title || {}).text || '')]
      .join(' | ');
    const metrics = document.querySelectorAll('[data-testid="stMetric"]').length;
    const key = n + ' ' + x0 + titles + metrics;
    if (key !== last) {
      last = key; window.__seen.push([performance.now(), n, titles, metrics, x0]);
      const wake = window.__wake; window.__wake = null; if (wake) wake(); } };
  window.__next = (k, ms) => new Promise(r => { window.__wake = r;
    if (window.__seen.length > k) r(); else setTimeout(r, ms); });
  let queued = false;
  const soon = () => { if (!queued) { queued = true;
    requestAnimationFrame(() => { queued = false; tick(); }); } };
  new MutationObserver(soon).observe(document,
    {subtree: true, childList: true, attributes: true, characterData: true});
  addEventListener('pointerdown', () => { window.__down = performance.now(); }, true);
  soon(); })();"""


def _seen(seen: list, since_ms: float, test: Callable[..., bool]) -> float | None:
    """Seconds from ``since_ms`` (page clock) to the first painted state in ``seen`` (the
    page's ``window.__seen``) that passes ``test``."""
    for ms, n, titles, metrics, x0 in seen:
        if ms >= since_ms and test(n, titles, metrics, x0):
            return (ms - since_ms) / 1000
    return None


#: Longest wait for the page's next noted state before it is read again (a page that reloaded
#: has no ``__next`` for a moment).
NEXT_MS = 5000


def _wait_seen(page: Any, since_ms: float, test: Callable[..., bool], timeout: float = 600
               ) -> float:  # fmt: skip
    """Wait for a painted state that passes ``test`` (see :func:`_seen`): the page is read once
    per newly noted state, not polled."""
    t0 = time.perf_counter()
    while True:
        seen = page.evaluate("window.__seen || []")
        got = _seen(seen, since_ms, test)
        if got is not None:
            return got
        if time.perf_counter() - t0 > timeout:
            raise SystemExit("timed out waiting for the page")
        page.evaluate(
            "([k, ms]) => window.__next ? window.__next(k, ms)"
            " : new Promise(r => setTimeout(r, 100))",
            [len(seen), NEXT_MS],
        )


def chart_drawn(n: int, titles: str, metrics: int, x0: float | None = None) -> bool:
    """The first chart is drawn with data."""
    return n > 0


def both_shown(n: int, titles: str, metrics: int, x0: float | None = None) -> bool:
    """Predictions (their metrics) and salience (its rows in the tail figure) are on screen."""
    return n > 0 and metrics > 0 and "salience · " in titles


def salience_shown(n: int, titles: str, metrics: int, x0: float | None = None) -> bool:
    """The salience rows are on screen (in the tail figure)."""
    return n > 0 and "salience · " in titles


def brain_drawn(n: int, titles: str, metrics: int, x0: float | None = None) -> bool:
    """The 3D brain is on screen (its title)."""
    return "Neurons coloured by" in titles


def _load(browser: Any, url: str, until: Callable[..., bool] = chart_drawn, *,
          context: Any = None, also: Callable[..., bool] | None = None) -> dict:  # fmt: skip
    """Open ``url`` (in a fresh browser context unless one is given, so nothing comes from the
    browser's cache); seconds until the app's shell is painted (``shell``), until ``until``,
    ``also`` (when given) and the 3D brain are on screen, and the bytes received by the time the
    page has settled: HTTP response bodies as sent (compressed when the server compresses) and
    websocket message payloads (before the websocket's own compression, so an upper bound)."""
    from browser_helpers import settle

    ctx = context or browser.new_context(viewport={"width": 1600, "height": 1000})
    ctx.add_init_script(SEEN_JS)
    page = ctx.new_page()
    http: list[int] = []
    ws: list[int] = []

    def finished(request: Any) -> None:
        with contextlib.suppress(Exception):  # the page went away
            http.append(max(0, request.sizes()["responseBodySize"]))  # -1: from the cache

    page.on("requestfinished", finished)
    page.on("websocket", lambda s: s.on("framereceived", lambda p: ws.append(len(p))))
    page.goto(url)
    page.get_by_text("NLP4Neuro Explorer").first.wait_for(timeout=600_000)
    shell = page.evaluate("performance.now()") / 1000
    seconds = _wait_seen(page, 0, until)
    later = _wait_seen(page, 0, also) if also else None
    brain = _wait_seen(page, 0, brain_drawn)
    settle(page, 600)
    page.wait_for_timeout(500)
    return {"seconds": seconds, "shell": shell, "also": later, "brain": brain, "http": sum(http),
            "ws": sum(ws), "page": page, "ctx": ctx}  # fmt: skip


def _mb(got: dict) -> str:
    return (
        f"{(got['http'] + got['ws']) / MB:.2f} MB per load (HTTP {got['http'] / MB:.2f} MB, "
        f"JS bundles included; websocket {got['ws'] / MB:.2f} MB)"
    )


def _switch(page: Any, epoch: int, rec: Any, salience: bool) -> tuple[float, float]:
    """Pick an epoch: seconds until the tail shows its frames (with salience: and its rows) on
    screen, and until the page is idle again (everything redrawn, the 3D brain included: with
    salience, its title names the new epoch)."""
    from browser_helpers import settle

    ep = rec.epochs[epoch]
    settle(page, 600)
    page.get_by_test_id("stSelectbox").filter(has_text="Stimulus epoch").click()
    page.keyboard.type(f"{epoch} · {ep.name}")
    option = page.get_by_role("option", name=re.compile(rf"^{epoch} · ")).first
    t0 = time.perf_counter()
    since = page.evaluate("performance.now()")
    option.click()
    # from the click itself: Playwright's own checks before it (the option's box stable over two
    # animation frames...) are no part of the app's answer
    since = max(since, page.evaluate("window.__down || 0"))
    t_first = ep.start / rec.frame_rate_hz

    def shown(n: int, titles: str, metrics: int, x0: float | None) -> bool:  # (x0: to 0.01 s)
        here = n == ep.stop - ep.start and x0 is not None and abs(x0 - t_first) < 6e-3
        return here and (not salience or f"salience · {epoch} · " in titles)

    def brain_here(n: int, titles: str, metrics: int, x0: float | None) -> bool:
        brain = titles.split("Neurons coloured by")[-1] if "Neurons coloured by" in titles else ""
        return bool(brain) and (not salience or f"salience · {epoch} · " in brain)

    seconds = _wait_seen(page, since, shown)
    _wait_seen(page, since, brain_here)  # the next click starts on a quiet page
    settle(page, 600)
    page.evaluate("new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))")
    return seconds, time.perf_counter() - t0


def _load_row(rows: list, what: str, got: dict, goals: dict | None = None) -> None:
    """A page load's row; with ``goals`` its figures count towards them."""
    note = f"app shell at {got['shell']:.1f} s"
    if got.get("also") is not None:
        note += f"; predictions + salience on screen at {got['also']:.1f} s"
    note += f"; 3D brain at {got['brain']:.1f} s"
    rows.append((what, got["seconds"], f"{note}; {_mb(got)}"))
    if goals is not None:
        goals["bytes"].append((got["http"] + got["ws"]) / MB)


def _switch_row(rows: list, what: str, pairs: list[tuple[float, float]]) -> list[float]:
    shown = [a for a, _ in pairs]
    idle = statistics.median(b for _, b in pairs)
    rows.append(_median_row(what, shown, f"page idle again (3D brain redrawn) median {idle:.2f} s"))
    return shown


class _Printed(list):
    """Rows, each also printed as soon as it is measured (a long run shows its progress)."""

    def append(self, row: Row) -> None:
        super().append(row)
        print(f"  ... {row[0]}: {row[1]:.2f} s  {row[2]}", flush=True)


def _wait_warm(log: Path, timeout: float = 900) -> float:
    """Seconds until the server's warm-up says it is done (``serve.py``; at once for app.py)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        text = log.read_text(errors="replace") if log.is_file() else ""
        if "warm-up: done" in text.split("== server start")[-1]:
            return time.perf_counter() - t0
        time.sleep(0.5)
    raise SystemExit("the server's warm-up did not finish")


def bench_browser(data: Path, ckpt: Path, tmp: Path, args: Any, goals: dict) -> list[Row]:
    """Real-browser timings: a cold server (empty disk cache), a restarted server (disk cache
    kept), a warm one; shared links; epoch switches; IG in the app vs the CLI."""
    from browser_helpers import CHROMIUM, CHROMIUM_ARGS, free_port, serve, stop, wait_healthy
    from playwright.sync_api import sync_playwright

    env = {**os.environ, "PYTHONPATH": str(ROOT), "NLP4NEURO_CACHE": str(tmp / "browser_cache")}
    log = tmp / "streamlit.log"
    rows: list[Row] = _Printed()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        _first_page(browser)
        starts = ("cold server, empty disk cache", "restarted server, disk cache kept")
        for start in starts[1:] if args.only_ig else starts:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            with log.open("a") as fh:
                fh.write("\n== server start\n")
            proc = serve(env, port, log, args.script)
            try:
                rows.append((f"{start}: server ready (health check)",
                             wait_healthy(url, proc, log, 300), ""))  # fmt: skip
                got = _load(browser, url + "/", also=both_shown)
                _load_row(rows, f"{start}: first chart after server ready", got, goals)
                goals["first_chart"].append(got["seconds"])
                goals["results"].append(got["also"])
                got["ctx"].close()
                if start.startswith("restarted"):
                    if args.script == "serve.py":
                        rows.append(("server warm-up done (after the first load)",
                                     _wait_warm(log), ""))  # fmt: skip
                    if not args.only_ig:
                        _browser_rest(browser, url, ckpt, data, rows, args.repeats, goals)
                    if not args.no_ig:
                        _ig_app_vs_cli(browser, url, ckpt, data, tmp, rows, goals, args.repeats)
            finally:
                stop(proc, 20)
        browser.close()
    return rows


def _first_page(browser: Any) -> None:
    """Draw one page of nothing in a context thrown away: the browser's own first page (its
    renderer, fonts and graphics set up) is not the cold server's. Without it the cold load,
    the browser's first, had the app shell 0.2 s later than the same load in a browser that had
    drawn a page (median of 3 alternating: 1.83 against 1.64 s; first chart 2.92 against
    2.72 s). Every load still has a fresh context: nothing of the app comes from a cache."""
    ctx = browser.new_context()
    ctx.new_page().set_content("<h4>first page</h4><p>text</p><canvas></canvas>")
    ctx.close()


def _browser_rest(browser: Any, url: str, ckpt: Path, data: Path, rows: list, repeats: int,
                  goals: dict) -> None:  # fmt: skip
    """On a running server: a warm load, a reload with the HTTP cache, a shared link whose
    results are computed after its first screen, epoch switches."""
    from urllib.parse import quote

    from decoding.recording import load_recording
    from decoding.salience import DEFAULT_METHOD

    rec = load_recording(data / "demo_fish.h5")
    got = _load(browser, url + "/", also=both_shown)
    _load_row(rows, "warm server: first chart", got, goals)
    goals["first_chart"].append(got["seconds"])
    goals["results"].append(got["also"])
    again = _load(browser, url + "/", context=got["ctx"], also=both_shown)
    _load_row(rows, "reload in the same browser (HTTP cache warm)", again, goals)
    got["ctx"].close()
    model = quote(str(ckpt), safe="")
    a, b = 3, 5  # two epochs of the demo protocol
    link = f"{url}/?fish=demo_fish&model={model}&epoch={a}&pred=1&sal={DEFAULT_METHOD}"
    got = _load(browser, link, both_shown)
    _load_row(rows, f"shared link pred=1&sal={DEFAULT_METHOD} (epoch {a}), results computed "
              "after the first screen: both on screen", got, goals)  # fmt: skip
    page = got["page"]
    first = _switch(page, b, rec, salience=True)
    rows.append((f"epoch switch with salience, first visit ({DEFAULT_METHOD})", first[0],
                 f"page idle again at {first[1]:.2f} s"))  # fmt: skip
    pairs = [_switch(page, e, rec, salience=True) for _ in range(repeats) for e in (a, b)]
    goals["switch"].append(statistics.median(
        _switch_row(rows, "epoch switch with salience, cached (median)", pairs)))  # fmt: skip
    got["ctx"].close()
    got = _load(browser, link.replace(f"&sal={DEFAULT_METHOD}", ""))  # opens on a: b first
    pairs = [_switch(got["page"], e, rec, salience=False) for _ in range(repeats) for e in (b, a)]
    _switch_row(rows, "epoch switch with predictions, cached (median)", pairs)
    got["ctx"].close()


# ------------------------------------------------------------------------- IG: app vs the CLI
IG_OPEN = 7  # the 38-frame epoch the page opens on (its IG from the CLI's cache)
IG_EPOCHS = (9, 19, 29, 39)  # 38-frame epochs whose IG the app computes, one per repeat
IG_STEPS = 32


def _cli_salience(ckpt: Path, recording: Path, start: int, stop: int, out: Path,
                  cache: Path | None) -> tuple[float, float]:  # fmt: skip
    """``python -m decoding salience`` (IG) on frames ``[start, stop)``: (wall seconds, its own
    compute seconds as stored in the result). ``cache``: its salience cache folder (else none)."""
    from decoding.salience import SalienceResult

    cmd = [sys.executable, "-m", "decoding", "salience", "--recording", str(recording),
           "--checkpoint", str(ckpt), "--start", str(start), "--stop", str(stop), "--method",
           "ig", "--steps", str(IG_STEPS), "--device", "cpu", "--out", str(out)]  # fmt: skip
    cmd += ["--cache-dir", str(cache)] if cache is not None else ["--no-cache"]
    t0 = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(ROOT)})  # fmt: skip
    return time.perf_counter() - t0, SalienceResult.load(out).elapsed_s


def _ig_app_vs_cli(browser: Any, url: str, ckpt: Path, data: Path, tmp: Path, rows: list,
                   goals: dict, repeats: int) -> None:  # fmt: skip
    """IG for one epoch: the CLI fills the app's disk cache for the opening epoch (timed too),
    the app opens it with IG shown (predictions off) and switches to another epoch (IG computed
    in the app: click -> rows on screen), the CLI computes that epoch again (no cache); up to
    ``repeats`` epochs. Each app switch is bracketed by two CLI runs of its frames, just before
    and just after, and compared with their mean: this machine's speed drifts over minutes (a
    shared VM), and one CLI run ~15 s away from the app's measured 1.8-2.4 s for the same work.
    Same frames, method, steps, target, device and windows."""
    from urllib.parse import quote

    from decoding.recording import load_recording

    rec = load_recording(data / "demo_fish.h5")
    fish, cache = data / "demo_fish.h5", tmp / "browser_cache" / "salience"
    a = rec.epochs[IG_OPEN]
    wall, own = _cli_salience(ckpt, fish, a.start, a.stop, tmp / "ig_open.h5", cache)
    rows.append((f"IG, the CLI (epoch {IG_OPEN}, cache stored): wall", wall,
                 f"its own compute time {own:.1f} s"))  # fmt: skip
    link = (f"{url}/?fish=demo_fish&model={quote(str(ckpt), safe='')}&epoch={IG_OPEN}"
            f"&sal=ig&steps={IG_STEPS}")  # fmt: skip  (no pred=1: the switch computes IG alone)
    got = _load(browser, link, salience_shown)
    for e in IG_EPOCHS[: max(1, min(repeats, len(IG_EPOCHS)))]:
        b = rec.epochs[e]
        before = _cli_salience(ckpt, fish, b.start, b.stop, tmp / "ig.h5", None)
        app, idle = _switch(got["page"], e, rec, salience=True)
        app_own = _app_compute_seconds(cache, b.start, b.stop)
        after = _cli_salience(ckpt, fish, b.start, b.stop, tmp / "ig.h5", None)
        cli_wall, cli_own = (statistics.mean(t) for t in zip(before, after, strict=True))
        what = f"IG {IG_STEPS} steps, epoch {e} ({b.stop - b.start} frames)"
        note = f"its own compute time {app_own:.2f} s; page idle at {idle:.1f} s"
        rows.append((f"{what}, in the app: click -> rows on screen", app, note))
        rows.append((f"{what}, the CLI (--no-cache, just before and after): wall", cli_wall,
                     f"its own compute time {before[1]:.2f} and {after[1]:.2f} s"))  # fmt: skip
        ratio = app / cli_own
        rows.append((f"{what}: app (click -> on screen) / CLI compute time", ratio,
                     f"app / CLI wall {app / cli_wall:.2f}; compute times only "
                     f"{app_own / cli_own:.2f}"))  # fmt: skip
        goals["ig_ratio"].append(ratio)
    got["ctx"].close()


def _app_compute_seconds(cache: Path, start: int, stop: int) -> float:
    """The compute time the app stored with its IG result for frames ``[start, stop)``."""
    from decoding.salience import SalienceResult

    for path in sorted(cache.glob("*.h5"), key=lambda p: p.stat().st_mtime, reverse=True):
        res = SalienceResult.load(path)
        if (res.start, res.stop, res.method) == (start, stop, "ig"):
            return res.elapsed_s
    return float("nan")


if __name__ == "__main__":
    main()
