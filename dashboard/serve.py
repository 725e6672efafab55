"""The dashboard as served: ``streamlit run dashboard/serve.py`` (what ``make demo`` runs).

The same app as ``streamlit run dashboard/app.py``, wrapped in an ``st.App`` (Streamlit's ASGI
app) that adds four things Streamlit does not do by itself:

* **Compressed JavaScript.** Streamlit serves its own bundles (~9.3 MB, 4.7 MB of it Plotly)
  uncompressed on purpose (its servers usually sit behind a compressing proxy). Here each file
  under ``/static/`` is gzipped once (kept in memory) and sent compressed to browsers that accept
  it; the page itself gets ``modulepreload`` hints for the modules of the first page's elements
  (ECharts', which draws the tail, among them; not Plotly's, first needed by the 3D brain drawn
  after it) and what they import, so the browser fetches them while it starts instead of one
  after another as the elements arrive.
* **A warm start.** Before the server answers it imports the heavy modules (torch, the decoding
  core) and opens the default fish (recording, fingerprint, default checkpoint, atlas meshes),
  and meanwhile, on the other core, gzips the static files: every first page needs them, and
  would otherwise wait for them while competing with the browser for the CPU. Then, once the
  first page has drawn its first screen (or 15 s passed without one), a background thread (low
  priority) prepares the default view's predictions and default-method salience over the test
  split through the same caches the pages use (the demo's
  Explore view shows the shipped ones meanwhile, see ``dashboard/demo_results.py``; the Salience
  view needs the full map); a later server start finds them in the disk caches. The server log
  says ``warm-up: done`` when it is finished. What is alive once the server answers, and again
  once the warm-up is done, is left out of the cycle collector (:func:`freeze_heap`): Streamlit
  collects after every run, and walking the loaded libraries took ~0.25 s each time.
* **A quieter idle server.** Streamlit checks its config and secrets files for changes every
  0.2 s, waking server threads ~55 times a second, and on 2 cores each wake-up can stall the
  pages' torch work (IG, inference) at OpenMP's next barrier. Served, it checks every 5 s
  (:func:`slow_file_polling`).
* **The 3D brain after the first chart.** The Explore view draws its brain once the browser has
  painted the tail chart (``NLP4NEURO_BRAIN_AFTER_PAINT=1``, see
  ``dashboard.views.brain.brain_panel_later``): a WebGL scene costs seconds in a browser without
  a GPU, and a chart arriving with it is painted only after it.

Flags after ``--`` go to the app as with ``app.py`` (``--data-dir``, ``--checkpoint-dir``...).
"""

from __future__ import annotations

import contextlib
import gzip
import logging
import mimetypes
import os
import re
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # `streamlit run dashboard/serve.py` puts only dashboard/ on it
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402
from starlette.middleware import Middleware  # noqa: E402

__all__ = [
    "app", "GzipStatic", "warm_up", "freeze_heap", "slow_file_polling", "COMPRESSED_SUFFIXES",
]

#: Static files worth compressing (fonts in woff2 and images are compressed already).
COMPRESSED_SUFFIXES = (".js", ".css", ".json", ".svg", ".map", ".txt", ".html", ".ttf")
_GZIP_LEVEL = 6
_THREAD_NAME = "nlp4neuro-warm-up"
#: Seconds between two checks of Streamlit's config and secrets files for changes (Streamlit's
#: own: 0.2 s); see :func:`slow_file_polling`.
FILE_POLL_S = 5.0
Scope = dict[str, Any]
Receive = Callable[[], Any]
Send = Callable[[dict[str, Any]], Any]


def _static_dir() -> Path:
    from streamlit import file_util

    return Path(file_util.get_static_dir())


class GzipStatic:
    """ASGI middleware: Streamlit's static files and its page, gzipped once and kept in memory.

    Requests for ``/static/...`` (content-hashed bundles, cached by browsers for a year) and for
    the page ``/`` from browsers that accept gzip are answered here; everything else (the
    websocket, media, uploads, health) goes to Streamlit untouched.
    """

    def __init__(self, app: Any, static_dir: Path | None = None) -> None:
        self.app = app
        self.static_dir = (static_dir or _static_dir()).resolve()
        self._cache: dict[str, bytes] = {}
        self._lock = threading.Lock()

    def compressed(self, rel: str) -> bytes | None:
        """The gzipped bytes of a static file (``rel`` relative to the static folder), or
        ``None`` when it is not a plain file inside it or not worth compressing."""
        got = self._cache.get(rel)
        if got is not None:
            return got
        path = (self.static_dir / rel).resolve()
        if self.static_dir not in path.parents or not path.is_file():
            return None
        if not path.name.endswith(COMPRESSED_SUFFIXES):
            return None
        data = path.read_bytes()
        if path.name.startswith(EAGER_COMPILE) and path.suffix == ".js":
            data = COMPILE_HINT + data
        if rel == "index.html":
            data = _with_preload(data, self.static_dir)
        got = gzip.compress(data, compresslevel=_GZIP_LEVEL, mtime=0)
        with self._lock:
            self._cache[rel] = got
        return got

    def precompress(self) -> None:
        """Compress every bundle now (before the server answers), so no request waits for it."""
        self.compressed("index.html")
        for sub in ("static/js", "static/css"):
            for p in sorted((self.static_dir / sub).glob("*")):
                self.compressed(f"{sub}/{p.name}")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        rel = self._target(scope)
        body = self._cache.get(rel) if rel else None
        if rel and body is None:  # not compressed yet: off the event loop
            import anyio.to_thread

            body = await anyio.to_thread.run_sync(self.compressed, rel)
        if body is None:
            await self.app(scope, receive, send)
            return
        ctype = mimetypes.guess_type(rel)[0] or "application/octet-stream"
        if ctype.startswith("text/") or ctype.endswith("javascript"):
            ctype += "; charset=utf-8"
        headers = [
            (b"content-type", ctype.encode()),
            (b"content-encoding", b"gzip"),
            (b"content-length", str(len(body)).encode()),
            (b"vary", b"Accept-Encoding"),
            (
                b"cache-control",
                b"no-cache" if rel == "index.html" else b"public, immutable, max-age=31536000",
            ),
        ]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        head = scope["method"] == "HEAD"
        await send({"type": "http.response.body", "body": b"" if head else body})

    @staticmethod
    def _target(scope: Scope) -> str:
        """The static file a request asks for (``""``: not ours to answer)."""
        if scope.get("type") != "http" or scope.get("method") not in ("GET", "HEAD"):
            return ""
        if scope.get("root_path"):
            return ""
        headers = dict(scope.get("headers") or [])
        if b"gzip" not in headers.get(b"accept-encoding", b""):
            return ""
        path = scope.get("path", "")
        if path == "/":
            return "index.html"
        if path.startswith("/static/") and ".." not in path:
            return path.lstrip("/")
        return ""


#: Bundles sent with V8's explicit compile hint (``//# allFunctionsCalledOnLoad`` as the first
#: line): Chromium then compiles all their functions at once, off the main thread while the file
#: streams in, instead of each lazily on the main thread the first time it runs. Plotly's bundle
#: runs most of its code to draw the first chart: with the hint the first chart came 0.3 s sooner
#: (3.5 s instead of 3.8 s, median of 6 loads each, two servers side by side); hinting every
#: bundle gained nothing more (nor did hinting ECharts' bundle, once it drew the first chart:
#: 2.75 s against 2.71 s, 6 loads each). Other browsers ignore the comment.
EAGER_COMPILE = ("PlotlyChart.",)
COMPILE_HINT = b"//# allFunctionsCalledOnLoad\n"
#: The element modules every first page of the app needs (Streamlit loads each on the first element
#: of its kind, and the modules it imports one after another: on a loaded machine the first
#: screen waited ~0.5 s for that chain). Matched by name, so a Streamlit release that renames one
#: loses its hint, not the page. The first chart is ECharts' (the Explore tail); Plotly's bundle
#: is left out: the 3D brain, its first user, is drawn after the tail, and fetching and
#: compiling its 4.7 MB while the page started put the tail 0.35 s later (3.27 s against 2.92 s,
#: median of 5 loads each, two servers side by side). Nor are the sliders and the multiselect of
#: the brain's controls, drawn with the brain (``dashboard.views.brain``).
FIRST_PAGE_MODULES = (
    "EChartsChart",
    "Selectbox",
    "Radio",
    "Checkbox",
    "Metric",
    "Button",
    "DownloadButton",
    "FileUploader",
    "ComponentInstance",
)
_IMPORT = re.compile(rb'(?:from|import)\s*"\./([\w.\-]+\.js)"')


def module_closure(js_dir: Path, names: Sequence[str]) -> list[str]:
    """File names of the modules ``names`` (``Name.<hash>.js``) and every module they import
    statically, the entries' own files first."""
    entries = [p.name for n in names for p in sorted(js_dir.glob(f"{n}.*.js"))]
    seen: dict[str, None] = {}
    todo = list(entries)
    while todo:
        name = todo.pop()
        path = js_dir / name
        if name in seen or not path.is_file():
            continue
        seen[name] = None
        todo.extend(m.decode() for m in _IMPORT.findall(path.read_bytes()))
    return entries + [n for n in seen if n not in entries]


def _with_preload(html: bytes, static_dir: Path) -> bytes:
    """The page with ``modulepreload`` hints for the first page's element modules
    (:data:`FIRST_PAGE_MODULES`) and everything they import: the browser fetches them while it
    starts, so no element waits for a chain of requests. They are fetched, not run: evaluating
    Plotly's bundle early (about a second of the browser's one main thread here) delayed the
    websocket, and with it the app's first screen, by that second."""
    modules = module_closure(static_dir / "static" / "js", FIRST_PAGE_MODULES)
    hints = "".join(
        f'<link rel="modulepreload" crossorigin href="./static/js/{name}">' for name in modules
    )
    return html.replace(b"</head>", hints.encode() + b"</head>", 1)


class _QuietWarmUp(logging.Filter):
    """Drop Streamlit's "missing ScriptRunContext" warnings raised by the warm-up thread (it
    fills the caches outside any page on purpose)."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.threadName == _THREAD_NAME and "missing ScriptRunContext" in record.getMessage()
        )


def _low_priority() -> None:
    """Lower this thread's CPU priority (Linux: per thread), so page loads come first."""
    with contextlib.suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 10)


def warm_up(*, prepare: bool = True) -> dict[str, float]:
    """Import the heavy modules, prepare the default view (the static files are compressed
    before the server answers, :func:`_precompress`).

    Returns seconds per step (printed in the server log). Errors are kept out of the way: the
    pages compute (and report) whatever is missing.
    """
    took: dict[str, float] = {}

    def step(name: str, fn: Callable[[], Any]) -> None:
        t0 = time.perf_counter()
        try:
            fn()
        except Exception as exc:  # noqa: BLE001 - the page reports the same error when it runs
            print(f"warm-up: {name} skipped ({type(exc).__name__}: {exc})", file=sys.stderr)
        took[name] = time.perf_counter() - t0

    step("imports", _import_heavy)  # done before the server answers: instant when repeated
    if prepare:
        from dashboard.prepare import prepare_default_view, wait_for_first_screen

        wait_for_first_screen()
        step("default view's predictions and salience", prepare_default_view)
    return took


def _before_serving() -> None:
    """What every first page needs: the heavy modules, the default fish opened (recording,
    fingerprint, default checkpoint, atlas meshes): a few seconds, before the server answers."""
    _import_heavy()
    from dashboard.prepare import open_default_view

    open_default_view()


def freeze_heap() -> None:
    """Leave every object alive now out of Python's cycle collector (``gc.freeze``).

    Streamlit collects all generations after each script run (``runner.postScriptGC``). With
    torch, transformers and the app loaded that walked ~0.4 M objects, nearly all of them modules,
    classes and functions that live as long as the server: 0.23-0.36 s of the GIL and of a core
    after every run and fragment rerun (cProfile of the served app's runs). Frozen, they are
    skipped; reference counting still frees whatever is dropped later, only a reference cycle
    among them would stay.
    """
    import gc

    gc.collect()
    gc.freeze()


def slow_file_polling(period_s: float = FILE_POLL_S) -> float:
    """Check Streamlit's config and secrets files for changes every ``period_s`` seconds, not
    every 0.2 s; returns the period now in force (``nan`` when Streamlit has no such setting).

    Streamlit polls these files whatever ``server.fileWatcherType`` says: each check wakes a
    pooled thread that takes the GIL, ~55 wake-ups a second in the idle server (10-18 without).
    On 2 cores a wake-up pre-empts one of torch's two OpenMP threads and the other waits for it
    at the next barrier: in a plain process a 60 Hz waker busy for 1 ms each time slowed IG for
    one demo epoch by ~20 % (a 20 Hz one like these pollers: within the noise, ~5 %). An edited
    ``config.toml`` is still picked up, within ``period_s``. The period is a private constant of
    ``streamlit.watcher``, read before each check; a Streamlit without it is left as it is.
    """
    from streamlit.watcher import polling_path_watcher as polling

    now = getattr(polling, "_POLLING_PERIOD_SECS", None)
    if not isinstance(now, int | float):
        return float("nan")
    polling._POLLING_PERIOD_SECS = max(float(now), period_s)
    return polling._POLLING_PERIOD_SECS


def in_own_thread(fn: Callable[[], Any]) -> Any:
    """``fn()`` in a thread of its own that ends with it; returns its result or raises its error.

    Torch's CPU kernels run on OpenMP, which keeps a team of worker threads for each thread that
    ran them, for as long as that thread lives. A pooled thread (anyio's, the server's) that once
    ran torch keeps an idle team, and while more OpenMP threads exist than cores, OpenMP stops
    spinning between parallel regions: every other thread's torch work (the pages' salience,
    each in its own script thread) then ran ~30 % slower on 2 cores (IG for one demo epoch: 2.4
    instead of 1.8 s, the CLI's time).
    """
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="nlp4neuro-open") as one:
        return one.submit(fn).result()  # leaving the block joins the thread, which then ends


def _import_heavy() -> None:
    import importlib

    for name in (
        "torch",
        "decoding.checkpoint",
        "decoding.train",
        "decoding.salience",
        "decoding.anatomy",
        "dashboard.views.explore",
        "dashboard.views.salience",
        "dashboard.views.jobs_view",
        "dashboard.views.population",
        "dashboard.page_style",
        "streamlit.emojis",  # the page icon's check: 0.15 s of the first page's run
    ):
        importlib.import_module(name)


_GZIP: list[GzipStatic] = []


class _Gzip(GzipStatic):
    """The instance Starlette builds is remembered for the warm-up thread."""

    def __init__(self, app: Any) -> None:
        super().__init__(app)
        _GZIP.append(self)


def _precompress() -> None:
    """Gzip the static files before the server answers. On the first loads of a cold or restarted
    server this took 0.7 s of a core beside the browser's page load; before answering it runs on
    the core the imports leave free (zlib does not hold the GIL)."""
    if not _GZIP:
        return
    try:
        _GZIP[0].precompress()
    except Exception as exc:  # noqa: BLE001 - the requests compress what they need themselves
        print(f"warm-up: compressing the static files failed ({exc})", file=sys.stderr)


@contextlib.asynccontextmanager
async def _lifespan(_app: Any) -> AsyncIterator[None]:
    """Import the heavy modules and gzip the static files before the server answers (every page
    needs torch, the core and the bundles: a first page would wait for them anyway, competing with
    the browser for the CPU), then prepare the default view in the background."""
    import anyio.to_thread

    # the Explore view's 3D brain waits for the first chart to be painted (see the docstring)
    os.environ.setdefault("NLP4NEURO_BRAIN_AFTER_PAINT", "1")
    slow_file_polling()  # from the start: the pollers also took the GIL from the imports
    t0 = time.perf_counter()
    async with anyio.create_task_group() as both:  # gzip (no GIL) beside the imports (the GIL)
        both.start_soon(anyio.to_thread.run_sync, _precompress)
        try:
            await anyio.to_thread.run_sync(in_own_thread, _before_serving)
        except Exception as exc:  # noqa: BLE001 - the pages show the same error, with its fix
            print(f"warm-up: opening the default view failed ({exc})", file=sys.stderr)
    freeze_heap()
    took = time.perf_counter() - t0
    print(f"warm-up: imports and the default fish opened in {took:.1f} s", file=sys.stderr)

    def run() -> None:
        _low_priority()
        took = warm_up()
        freeze_heap()
        print(
            "warm-up: done: " + ", ".join(f"{k} {v:.1f} s" for k, v in took.items()),
            file=sys.stderr,
            flush=True,
        )

    from dashboard import access

    if access.is_shared():
        access.share_secret()  # printed now, on the terminal that starts the server
    if os.environ.get("NLP4NEURO_WARMUP", "1") != "0":
        for name in ("streamlit.runtime.scriptrunner_utils.script_run_context",):
            logging.getLogger(name).addFilter(_QuietWarmUp())
        threading.Thread(target=run, name=_THREAD_NAME, daemon=True).start()
    yield


app = st.App(
    str(Path(__file__).resolve().parent / "app.py"),
    middleware=[Middleware(_Gzip)],
    lifespan=_lifespan,
)
