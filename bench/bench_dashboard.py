"""Dashboard timings on demo-size fish, server side (Streamlit AppTest) and in a real browser.

    .venv/bin/python bench/bench_dashboard.py [--repeats 5] [--no-browser] [--no-apptest]

Two 12,500-neuron x 3,000-frame fish in a temporary data folder (the demo fish and a second seed)
and a checkpoint (``assets/demo_checkpoint`` when shipped, else a small one trained here).

Server side (AppTest): the first run (opening the recording, atlas meshes, imports), then switching
epoch and switching fish when results are cached, with inference on, and the 3D figure's build time
and payload.

Browser (``streamlit run`` + headless Chromium through Playwright, a fresh browser context per
load, so nothing is served from the browser's cache): time from the server answering its health
check to the first chart drawn with data, bytes per page load (HTTP response bodies, the JavaScript
bundles included, and the websocket messages: the page's elements and figures), the same for a
second load, a shared link with predictions and salience (``pred=1&sal=<default method>``) until
both are on screen, and the epoch switch (click -> tail plot showing the new epoch), with
predictions only and with salience too (first visit: computed; revisit: cached).
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
        browser_rows = bench_browser(data, ckpt, tmp, repeats=args.repeats)
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
#: (frames of the first plot's first trace, its title) or null before a chart with data is drawn
TAIL_JS = """() => { const gd = document.querySelector('.js-plotly-plot');
  if (!gd || !gd.data || !gd.data.length) return null;
  const x = gd.data[0].x, n = !x ? 0 : (x.length !== undefined ? x.length
      : (x.bdata ? atob(x.bdata).length / ({f8: 8, f4: 4}[x.dtype] || 8) : 0));
  return [n, ((gd.layout || {}).title || {}).text || '']; }"""


def _serve(env: dict[str, str], port: int, log: Path):
    import subprocess

    cmd = [
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
    ]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)


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


def _load(browser, url: str, until, *, context=None, timeout: float = 600) -> dict:
    """Open ``url`` (in a fresh browser context unless one is given, so nothing comes from the
    browser's cache); returns ``seconds`` until the app's shell is drawn (``shell``) and until
    ``until(page)`` holds, and the bytes received by the time the page has settled: HTTP response
    bodies and websocket messages. Close ``ctx`` when done (unless it was given)."""
    ctx = context or browser.new_context(viewport={"width": 1600, "height": 1000})
    page = ctx.new_page()
    http: list[int] = []
    ws: list[int] = []

    def finished(request) -> None:
        with contextlib.suppress(Exception):  # the page went away
            http.append(max(0, request.sizes()["responseBodySize"]))  # -1: from the cache

    page.on("requestfinished", finished)
    page.on("websocket", lambda s: s.on("framereceived", lambda p: ws.append(len(p))))
    t0 = time.perf_counter()
    page.goto(url)
    page.get_by_text("NLP4Neuro Explorer").first.wait_for(timeout=timeout * 1000)
    shell = time.perf_counter() - t0
    while not until(page):
        if time.perf_counter() - t0 > timeout:
            raise SystemExit(f"timed out loading {url}")
        page.wait_for_timeout(50)
    seconds = time.perf_counter() - t0
    _settle(page)
    page.wait_for_timeout(500)
    return {
        "seconds": seconds,
        "shell": shell,
        "http": sum(http),
        "ws": sum(ws),
        "page": page,
        "ctx": ctx,
    }


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


def _switch(page, epoch: int, rec, salience: bool) -> float:
    """Pick an epoch; seconds until the tail shows its frames (and, with salience, the rows)."""
    import re

    ep = rec.epochs[epoch]
    _settle(page)
    t0 = time.perf_counter()
    page.get_by_test_id("stSelectbox").filter(has_text="Stimulus epoch").click()
    page.keyboard.type(f"{epoch} · {ep.name}")
    page.get_by_role("option", name=re.compile(rf"^{epoch} · ")).first.click()
    while True:
        got = page.evaluate(TAIL_JS)
        if (
            got
            and got[0] == ep.stop - ep.start
            and (not salience or f"salience · {epoch} · " in got[1])
        ):
            return time.perf_counter() - t0
        if time.perf_counter() - t0 > 600:
            raise SystemExit(f"epoch {epoch} never showed")
        page.wait_for_timeout(20)


def bench_browser(data: Path, ckpt: Path, tmp: Path, *, repeats: int) -> list:
    import socket
    import statistics
    from urllib.parse import quote

    from playwright.sync_api import sync_playwright

    from decoding.recording import load_recording
    from decoding.salience import DEFAULT_METHOD

    rec = load_recording(data / "demo_fish.h5")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NLP4NEURO_CACHE": str(tmp / "browser_cache")}
    url = f"http://127.0.0.1:{port}"
    proc = _serve(env, port, tmp / "streamlit.log")
    rows: list[tuple[str, float, str]] = []

    def chart_drawn(page) -> bool:
        got = page.evaluate(TAIL_JS)
        return bool(got and got[0])

    try:
        rows.append(("server ready (health check answers)", _wait_ready(url, proc), ""))
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
            for what in ("first load (cold server)", "second load (warm server)"):
                got = _load(browser, url, chart_drawn)
                rows.append(
                    (
                        f"{what}: first chart after server ready",
                        got["seconds"],
                        f"app shell drawn at {got['shell']:.1f} s; {_mb(got)}",
                    )
                )
                picked = "model=" in got["page"].url
                if what.startswith("second"):  # the same browser again: its cache is warm
                    again = _load(browser, url, chart_drawn, context=got["ctx"])
                    rows.append(
                        (
                            "reload in the same browser (HTTP cache warm)",
                            again["seconds"],
                            f"app shell drawn at {again['shell']:.1f} s; {_mb(again)}",
                        )
                    )
                got["ctx"].close()
            rows.append(("  (model picked by default on first load)", 0.0, str(picked)))
            model = quote(str(ckpt), safe="")
            a, b = 3, 5  # two epochs of the demo protocol
            link = f"{url}/?fish=demo_fish&model={model}&epoch={a}&pred=1&sal={DEFAULT_METHOD}"

            def both_shown(page) -> bool:
                got = page.evaluate(TAIL_JS)
                return bool(got and "salience · " in got[1]) and bool(
                    page.get_by_test_id("stMetric").count()
                )

            got = _load(browser, link, both_shown)
            page = got["page"]
            rows.append(
                (
                    f"shared link pred=1&sal={DEFAULT_METHOD}: predictions + salience shown",
                    got["seconds"],
                    f"computed (cold caches); {_mb(got)}",
                )
            )
            first = _switch(page, b, rec, salience=True)
            rows.append((f"epoch switch with salience, first visit ({DEFAULT_METHOD})", first, ""))
            cached = [_switch(page, e, rec, salience=True) for _ in range(repeats) for e in (a, b)]
            rows.append(
                (
                    "epoch switch with salience, cached (median)",
                    statistics.median(cached),
                    f"min {min(cached):.3f}, max {max(cached):.3f}",
                )
            )
            got["ctx"].close()
            got = _load(browser, link.replace(f"&sal={DEFAULT_METHOD}", ""), chart_drawn)
            preds = [
                _switch(got["page"], e, rec, salience=False) for _ in range(repeats) for e in (a, b)
            ]
            rows.append(
                (
                    "epoch switch with predictions, cached (median)",
                    statistics.median(preds),
                    f"min {min(preds):.3f}, max {max(preds):.3f}",
                )
            )
            got["ctx"].close()
            got = _load(browser, link, both_shown)
            rows.append(
                ("shared link again (new session, server caches warm)", got["seconds"], _mb(got))
            )
            got["ctx"].close()
            browser.close()
    finally:
        proc.terminate()
        proc.wait(20)
    return rows


if __name__ == "__main__":
    main()
