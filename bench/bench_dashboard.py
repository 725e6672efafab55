"""Dashboard timings on demo-size fish, server side (Streamlit AppTest) and in a real browser.

    .venv/bin/python bench/bench_dashboard.py [--repeats 5] [--no-browser] [--no-apptest]
        [--script serve.py|app.py]

Two 12,500-neuron x 3,000-frame fish in a temporary data folder (the demo fish and a second seed)
and a checkpoint (``assets/demo_checkpoint`` when shipped, else a small one trained here).

Server side (AppTest): the first run (opening the recording, atlas meshes, imports), then switching
epoch and switching fish when results are cached, with inference on, and the 3D figure's build time
and payload.

Browser (``streamlit run dashboard/serve.py``, what ``make demo`` runs; ``--script app.py`` for
the plain app; headless Chromium through Playwright, a fresh browser context per load, so nothing
comes from the browser's cache): from navigation (issued when the health check answers) to the
first chart painted with data and to the predictions and salience painted (a bare link opens
with both), on a cold server with an empty disk cache, on a restarted server (disk cache kept)
and on a warm one; bytes per page load (HTTP bodies as sent, compressed where the server
compresses, and websocket payloads); a shared link (``pred=1&sal=<default method>``); epoch
switches (click -> the tail painted with the new epoch's frames, and with salience its rows;
plus when the page is idle again, the 3D brain redrawn). Times are read from the page's own
clock at each animation frame, so a page too busy to answer is still measured by what it painted.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def _checkpoint(rec, out: Path) -> Path:
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-browser", action="store_true", help="skip the Chromium timings")
    parser.add_argument("--no-apptest", action="store_true", help="skip the AppTest timings")
    parser.add_argument(
        "--script",
        default="serve.py",
        choices=("serve.py", "app.py"),
        help="what the browser timings serve: serve.py (make demo: compressed bundles, warm "
        "start) or app.py (plain `streamlit run dashboard/app.py`)",
    )
    args = parser.parse_args()

    from streamlit.testing.v1 import AppTest

    from decoding.synthetic import ensure_demo_fish, make_demo_fish

    tmp = Path(tempfile.mkdtemp(prefix="bench_dash_"))
    data = tmp / "data"
    data.mkdir()
    demo = ensure_demo_fish(ROOT / "data" / "demo")
    (data / "demo_fish.h5").symlink_to(demo)
    t = time.perf_counter()
    second = make_demo_fish(seed=1)
    second.save(data / "second_fish.h5")
    print(f"setup: second fish generated in {time.perf_counter() - t:.1f} s")
    from decoding.recording import load_recording

    ckpt = _checkpoint(load_recording(demo), tmp / "ckpts" / "bench_ckpt")
    os.environ.update(
        {
            "NLP4NEURO_DATA": str(data),
            "NLP4NEURO_CHECKPOINTS": str(ckpt.parent),
            "NLP4NEURO_JOBS": str(tmp / "jobs"),
            "NLP4NEURO_CACHE": str(tmp / "cache"),
        }
    )
    if not args.no_browser:
        browser_rows = bench_browser(data, ckpt, tmp, repeats=args.repeats, script=args.script)
        _print_rows("real browser (Chromium), demo fish", browser_rows)
    if args.no_apptest:
        return
    at = AppTest.from_file(str(ROOT / "dashboard" / "app.py"), default_timeout=600)
    at.query_params.update({"fish": "demo_fish", "model": ckpt.name, "epoch": "3"})

    def timed(action) -> float:
        action()
        t0 = time.perf_counter()
        at.run()
        dt = time.perf_counter() - t0
        if at.exception:
            raise SystemExit(f"app raised: {at.exception[0].value}")
        return dt

    rows: list[tuple[str, float, str]] = []
    rows.append(("first run (open fish, atlas meshes, imports)", timed(lambda: None), ""))
    rows.append(
        ("run inference (uncached, epoch 3)", timed(lambda: at.button(key="run_infer").click()), "")
    )
    for ep in ("5", "7"):  # warm the caches of the epochs we switch between
        timed(lambda ep=ep: at.selectbox(key="w_epoch").set_value(ep))
    switches = [
        timed(lambda ep=ep: at.selectbox(key="w_epoch").set_value(ep))
        for _ in range(args.repeats)
        for ep in ("5", "7")
    ]
    rows.append(
        (
            "switch epoch, cached (median)",
            statistics.median(switches),
            f"min {min(switches):.3f}, max {max(switches):.3f}",
        )
    )
    # with the salience shown too (the core's default method), both epochs computed once first
    at.session_state["sal_on"] = True
    for ep in ("5", "7"):
        timed(lambda ep=ep: at.selectbox(key="w_epoch").set_value(ep))
    with_sal = [
        timed(lambda ep=ep: at.selectbox(key="w_epoch").set_value(ep))
        for _ in range(args.repeats)
        for ep in ("5", "7")
    ]
    rows.append(
        (
            "switch epoch with salience shown, cached (median)",
            statistics.median(with_sal),
            f"min {min(with_sal):.3f}, max {max(with_sal):.3f}",
        )
    )
    at.session_state["sal_on"] = False
    # second fish: a checkpoint for the demo fish does not fit it, so look at it without a model
    timed(lambda: at.selectbox(key="w_model").set_value(""))
    first_second = timed(lambda: at.selectbox(key="w_fish").set_value("second_fish"))
    rows.append(("switch fish, first time (opens + validates the file)", first_second, ""))
    fish_switches = [
        timed(lambda f=f: at.selectbox(key="w_fish").set_value(f))
        for _ in range(args.repeats)
        for f in ("demo_fish", "second_fish")
    ]
    rows.append(
        (
            "switch fish, cached (median)",
            statistics.median(fish_switches),
            f"min {min(fish_switches):.3f}, max {max(fish_switches):.3f}",
        )
    )

    # the 3D figure on its own
    import numpy as np

    from dashboard.figures import MeshSpec, brain_figure
    from decoding.atlas import default_atlas

    rec = load_recording(demo)
    atlas = default_atlas()
    meshes = [
        MeshSpec(atlas.region(i).acronym, atlas.region(i).color, v, f)
        for i, (v, f) in atlas.all_region_meshes(step=3).items()
    ]
    regions = atlas.acronyms_of(rec.positions_um)
    t0 = time.perf_counter()
    fig = brain_figure(
        rec.positions_um,
        values=np.random.default_rng(0).random(rec.n_neurons),
        regions=regions,
        meshes=meshes,
    )
    build = time.perf_counter() - t0
    t0 = time.perf_counter()
    payload = fig.to_json()
    rows.append(
        (
            "brain figure build (12,500 neurons, 42 meshes)",
            build,
            f"to_json {time.perf_counter() - t0:.3f} s, {len(payload) / 2**20:.2f} MiB",
        )
    )
    big = np.random.default_rng(1).uniform(0, [496, 1120, 280], size=(100_000, 3))
    t0 = time.perf_counter()
    fig = brain_figure(big, values=np.random.default_rng(2).random(100_000), meshes=meshes)
    build = time.perf_counter() - t0
    payload = fig.to_json()
    rows.append(
        (
            "brain figure build (100,000 neurons -> 40,000 drawn)",
            build,
            f"{len(payload) / 2**20:.2f} MiB",
        )
    )

    _print_rows("server side (AppTest)", rows)


def _print_rows(title: str, rows: list[tuple[str, float, str]]) -> None:
    print(f"\n{title}\n{'what':58s} {'seconds':>8s}  notes")
    for what, sec, note in rows:
        print(f"{what:58s} {sec:8.3f}  {note}")


# ------------------------------------------------------------------------------------ browser
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
#: Installed in every page: on each animation frame (i.e. just before the browser paints) note
#: the first time each state of the charts is seen, in ms since the navigation started:
#: ``window.__seen = [[ms, frames of the first chart's first trace, titles, n metrics, time of its
#: first frame], ...]``.
#: Reading it afterwards measures what was on screen even while the page was too busy to answer.
SEEN_JS = """(() => { window.__seen = []; let last = '';
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
    const n = gd ? len(gd.data[0].x) : 0;
    const x0 = gd ? first(gd.data[0].x) : null;
    const titles = plots.map(d => ((d.layout || {}).title || {}).text || '').join(' | ');
    const metrics = document.querySelectorAll('[data-testid="stMetric"]').length;
    const key = n + ' ' + x0 + titles + metrics;
    if (key !== last) {
      last = key; window.__seen.push([performance.now(), n, titles, metrics, x0]); }
    requestAnimationFrame(tick); };
  requestAnimationFrame(tick); })();"""


def _serve(env: dict[str, str], port: int, log: Path, script: str = "serve.py"):
    import subprocess

    cmd = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(ROOT / "dashboard" / script),
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
    ]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("ab"), stderr=subprocess.STDOUT)


def _wait_ready(url: str, proc, timeout: float = 120) -> float:
    import urllib.request

    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
                if r.status == 200:
                    return time.perf_counter() - t0
        except OSError:
            pass
        if proc.poll() is not None:
            raise SystemExit("streamlit exited")
        time.sleep(0.1)
    raise SystemExit("streamlit did not start")


def _seen(page, since_ms: float, test) -> float | None:
    """Seconds from ``since_ms`` (page clock) to the first painted state that passes ``test``."""
    for ms, n, titles, metrics, x0 in page.evaluate("window.__seen || []"):
        if ms >= since_ms and test(n, titles, metrics, x0):
            return (ms - since_ms) / 1000
    return None


def _wait_seen(page, since_ms: float, test, timeout: float = 600) -> float:
    t0 = time.perf_counter()
    while True:
        got = _seen(page, since_ms, test)
        if got is not None:
            return got
        if time.perf_counter() - t0 > timeout:
            raise SystemExit("timed out waiting for the page")
        page.wait_for_timeout(100)


def chart_drawn(n: int, titles: str, metrics: int, x0: float | None = None) -> bool:
    """The first chart is drawn with data."""
    return n > 0


def both_shown(n: int, titles: str, metrics: int, x0: float | None = None) -> bool:
    """Predictions (their metrics) and salience (its rows in the tail figure) are on screen."""
    return n > 0 and metrics > 0 and "salience · " in titles


def _load(browser, url: str, until=chart_drawn, *, context=None, also=None) -> dict:
    """Open ``url`` (in a fresh browser context unless one is given, so nothing comes from the
    browser's cache); seconds until the app's shell is painted (``shell``), until ``until`` and
    (when given) ``also`` hold on screen, and the bytes received by the time the page has settled:
    HTTP response bodies as sent (compressed when the server compresses) and websocket message
    payloads (before the websocket's own compression, so an upper bound)."""
    ctx = context or browser.new_context(viewport={"width": 1600, "height": 1000})
    ctx.add_init_script(SEEN_JS)
    page = ctx.new_page()
    http: list[int] = []
    ws: list[int] = []

    def finished(request) -> None:
        with contextlib.suppress(Exception):  # the page went away
            http.append(max(0, request.sizes()["responseBodySize"]))  # -1: from the cache

    page.on("requestfinished", finished)
    page.on("websocket", lambda s: s.on("framereceived", lambda p: ws.append(len(p))))
    page.goto(url)
    page.get_by_text("NLP4Neuro Explorer").first.wait_for(timeout=600_000)
    shell = page.evaluate("performance.now()") / 1000
    seconds = _wait_seen(page, 0, until)
    later = _wait_seen(page, 0, also) if also else None
    _settle(page)
    page.wait_for_timeout(500)
    return {"seconds": seconds, "shell": shell, "also": later, "http": sum(http),
            "ws": sum(ws), "page": page, "ctx": ctx}  # fmt: skip


def _mb(got: dict) -> str:
    mb = 2**20
    return (
        f"{(got['http'] + got['ws']) / mb:.2f} MB per load (HTTP {got['http'] / mb:.2f} MB, "
        f"JS bundles included; websocket {got['ws'] / mb:.2f} MB)"
    )


def _settle(page, timeout: float = 600) -> None:
    deadline = time.perf_counter() + timeout
    quiet = 0
    while time.perf_counter() < deadline and quiet < 3:
        busy = page.locator('[data-testid="stStatusWidget"]').count()
        quiet = 0 if busy else quiet + 1
        page.wait_for_timeout(150)


def _switch(page, epoch: int, rec, salience: bool) -> tuple[float, float]:
    """Pick an epoch: seconds until the tail shows its frames (with salience: and its rows) on
    screen, and until the page is idle again (everything redrawn, the 3D brain included)."""
    import re

    ep = rec.epochs[epoch]
    _settle(page)
    page.get_by_test_id("stSelectbox").filter(has_text="Stimulus epoch").click()
    page.keyboard.type(f"{epoch} · {ep.name}")
    option = page.get_by_role("option", name=re.compile(rf"^{epoch} · ")).first
    t0 = time.perf_counter()
    since = page.evaluate("performance.now()")
    option.click()

    t_first = ep.start / rec.frame_rate_hz

    def shown(n: int, titles: str, metrics: int, x0: float | None) -> bool:
        here = n == ep.stop - ep.start and x0 is not None and abs(x0 - t_first) < 1e-3
        return here and (not salience or f"salience · {epoch} · " in titles)

    seconds = _wait_seen(page, since, shown)
    _settle(page)
    page.evaluate("new Promise(r => requestAnimationFrame(() => setTimeout(r, 0)))")
    return seconds, time.perf_counter() - t0


def _row(rows: list, what: str, got: dict, extra: str = "") -> None:
    note = f"app shell at {got['shell']:.1f} s"
    if got.get("also") is not None:
        note += f"; predictions + salience on screen at {got['also']:.1f} s"
    rows.append((what, got["seconds"], f"{note}; {_mb(got)}{extra}"))


def _median_row(rows: list, what: str, pairs: list[tuple[float, float]]) -> None:
    shown = [a for a, _ in pairs]
    idle = [b for _, b in pairs]
    rows.append(
        (
            what,
            statistics.median(shown),
            f"min {min(shown):.3f}, max {max(shown):.3f}; page idle again (3D brain redrawn) "
            f"median {statistics.median(idle):.2f} s",
        )
    )


class _Printed(list):
    """Rows, each also printed as soon as it is measured (a long run shows its progress)."""

    def append(self, row: tuple[str, float, str]) -> None:
        super().append(row)
        print(f"  ... {row[0]}: {row[1]:.2f} s  {row[2]}", flush=True)


def bench_browser(data: Path, ckpt: Path, tmp: Path, *, repeats: int, script: str) -> list:
    """Real-browser timings: a cold server (empty disk cache), a restarted server (disk cache
    kept), a warm one; shared links; epoch switches."""
    import socket
    from urllib.parse import quote

    from playwright.sync_api import sync_playwright

    from decoding.recording import load_recording
    from decoding.salience import DEFAULT_METHOD

    rec = load_recording(data / "demo_fish.h5")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NLP4NEURO_CACHE": str(tmp / "browser_cache")}
    rows: list[tuple[str, float, str]] = _Printed()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        for start in ("cold server, empty disk cache", "restarted server, disk cache kept"):
            with socket.socket() as sock:
                sock.bind(("127.0.0.1", 0))
                port = sock.getsockname()[1]
            url = f"http://127.0.0.1:{port}"
            proc = _serve(env, port, tmp / "streamlit.log", script)
            try:
                rows.append((f"{start}: server ready (health check)", _wait_ready(url, proc), ""))
                got = _load(browser, url + "/", also=both_shown)
                _row(rows, f"{start}: first chart after server ready", got)
                got["ctx"].close()
                if start.startswith("restarted"):
                    _browser_rest(browser, url, ckpt, rec, rows, repeats, DEFAULT_METHOD, quote)
            finally:
                proc.terminate()
                proc.wait(20)
        browser.close()
    return rows


def _browser_rest(browser, url, ckpt, rec, rows, repeats, method, quote) -> None:
    """On a running server: a warm load, a reload with the HTTP cache, shared links, switches."""
    got = _load(browser, url + "/", also=both_shown)
    _row(rows, "warm server: first chart", got)
    again = _load(browser, url + "/", context=got["ctx"], also=both_shown)
    _row(rows, "reload in the same browser (HTTP cache warm)", again)
    got["ctx"].close()
    model = quote(str(ckpt), safe="")
    a, b = 3, 5  # two epochs of the demo protocol
    link = f"{url}/?fish=demo_fish&model={model}&epoch={a}&pred=1&sal={method}"
    got = _load(browser, link, both_shown)
    _row(rows, f"shared link pred=1&sal={method} (epoch {a}): both on screen", got)
    page = got["page"]
    first = _switch(page, b, rec, salience=True)
    rows.append((f"epoch switch with salience, first visit ({method})", first[0],
                 f"page idle again at {first[1]:.2f} s"))  # fmt: skip
    pairs = [_switch(page, e, rec, salience=True) for _ in range(repeats) for e in (a, b)]
    _median_row(rows, "epoch switch with salience, cached (median)", pairs)
    got["ctx"].close()
    got = _load(browser, link.replace(f"&sal={method}", ""))  # opens on epoch a: switch to b first
    pairs = [_switch(got["page"], e, rec, salience=False) for _ in range(repeats) for e in (b, a)]
    _median_row(rows, "epoch switch with predictions, cached (median)", pairs)
    got["ctx"].close()


if __name__ == "__main__":
    main()
