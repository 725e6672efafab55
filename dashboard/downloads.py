"""Bytes for download buttons: CSV tables, standalone HTML figures, a one-page lab-meeting summary.

Exports are built only when their button is clicked (:func:`lazy_download`: Streamlit's deferred
download data), so a page load neither builds nor sends them; file names say fish, frames and
model (:func:`export_name`). PNG export is left to Plotly's own modebar button (the camera icon):
it renders in the browser, so no image server (kaleido) is needed.
"""

from __future__ import annotations

import html
import re
import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from dashboard.context import Context
from dashboard.state import TEST_SPLIT, WHOLE

__all__ = [
    "export_name",
    "lazy_download",
    "predictions_csv",
    "table_csv",
    "figure_html",
    "summary_html",
]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", text).strip("-.") or "x"


def export_name(ctx: Context, what: str, ext: str) -> str:
    """``<fish>_<frames>_<model>_<what>.<ext>``, e.g. ``demo_fish_epoch3-left_demo_checkpoint_
    tail.html``; frames are ``test-split``, ``whole-recording`` or ``epoch<i>-<name>``."""
    epoch = ctx.sel.epoch
    if epoch == TEST_SPLIT:
        frames = "test-split"
    elif epoch == WHOLE:
        frames = "whole-recording"
    elif ctx.rec is not None and epoch.isdigit() and int(epoch) < len(ctx.rec.epochs):
        frames = f"epoch{epoch}-{ctx.rec.epochs[int(epoch)].name}"
    else:
        frames = f"frames{ctx.start}-{ctx.stop}"
    fish = ctx.rec.fish_id if ctx.rec is not None else ctx.sel.fish
    model = ctx.ckpt.path.name if ctx.ckpt is not None else "no-model"
    return "_".join(_slug(p) for p in (fish, frames, model, what)) + f".{ext}"


def lazy_download(
    where: Any, label: str, build: Callable[[], bytes], *, key: str, file_name: str
) -> None:
    """A download button whose bytes ``build()`` makes only when it is clicked (Streamlit's
    deferred data: nothing is built or sent with the page); clicking does not rerun the page."""
    mime = "text/csv" if file_name.endswith(".csv") else "text/html"
    where.download_button(label, build, key=key, file_name=file_name, mime=mime, on_click="ignore")


def predictions_csv(ctx: Context, preds: np.ndarray) -> bytes:
    """One row per frame: ``frame, time_s, split, epoch``, then observed and predicted values."""
    rec = ctx.rec
    frames = np.arange(ctx.start, ctx.stop)
    labels = rec.epoch_labels()[ctx.start : ctx.stop]
    split = np.full(len(frames), "", dtype=object)
    if ctx.split is not None:
        for name in ("train", "val", "test"):
            part = getattr(ctx.split, name)
            split[(frames >= part.start) & (frames < part.stop)] = name
    df = pd.DataFrame(
        {
            "frame": frames,
            "time_s": rec.times_s[ctx.start : ctx.stop],
            "split": split,
            "epoch": labels,
        }
    )
    obs = rec.behavior[ctx.start : ctx.stop]
    for k, name in enumerate(rec.behavior_names):
        df[f"{name}_observed"] = obs[:, k]
        df[f"{name}_predicted"] = preds[:, k]
    return df.to_csv(index=False, float_format="%.6g").encode()


def table_csv(df: pd.DataFrame) -> bytes:
    """A table as CSV bytes."""
    return df.to_csv(index=False, float_format="%.6g").encode()


def figure_html(fig: go.Figure) -> bytes:
    """A standalone HTML file (Plotly's JavaScript embedded: opens offline, interactive)."""
    return fig.to_html(include_plotlyjs=True, full_html=True).encode()


def summary_html(
    title: str,
    facts: Sequence[tuple[str, str]],
    figures: Sequence[tuple[str, go.Figure]],
    tables: Sequence[tuple[str, pd.DataFrame]] = (),
) -> bytes:
    """One self-contained HTML page for a lab meeting: facts, figures (interactive), tables."""
    parts = [
        "<!doctype html><html><head><meta charset='utf-8'>",
        f"<title>{html.escape(title)}</title>",
        "<style>body{font-family:sans-serif;margin:2em;max-width:1200px}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:2px 8px}"
        "h1{font-size:1.6em}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f"<p><small>NLP4Neuro Explorer · {time.strftime('%Y-%m-%d %H:%M')}</small></p>",
        "<table>",
        *(f"<tr><th>{html.escape(k)}</th><td>{html.escape(v)}</td></tr>" for k, v in facts),
        "</table>",
    ]
    for i, (name, fig) in enumerate(figures):
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(fig.to_html(include_plotlyjs=(i == 0), full_html=False))
    for name, df in tables:
        parts.append(f"<h2>{html.escape(name)}</h2>")
        parts.append(df.to_html(index=False, float_format=lambda x: f"{x:.4g}"))
    parts.append("</body></html>")
    return "\n".join(parts).encode()
