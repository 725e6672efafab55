"""What every view needs: the resolved selection (recording, frame range, checkpoint, device).

Also the one place that turns errors into messages: :func:`user_errors` shows a
:class:`decoding.errors.DecodingError` with ``st.error`` (its message already says what to do) and
an unexpected exception as a short bug note, never a bare traceback.

Frame ranges come from the core (:func:`decoding.recording.frame_ranges`): an epoch choice of the
sidebar is a frame range exactly as the CLI would resolve it.
"""

from __future__ import annotations

import contextlib
import traceback
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import plotly.graph_objects as go
import streamlit as st
from streamlit.delta_generator import DeltaGenerator
from streamlit.runtime.scriptrunner import RerunException, StopException

from dashboard import caching
from dashboard.caching import CheckpointEntry, PredictionKey, RecordingEntry
from dashboard.figures import EpochSpan
from dashboard.settings import Settings
from dashboard.state import TEST_SPLIT, WHOLE, Selection
from dashboard.tail_echarts import EChart
from decoding.errors import DecodingError
from decoding.recording import Recording, epoch_reference, frame_ranges
from decoding.windows import Split

__all__ = [
    "Context",
    "user_errors",
    "epoch_label",
    "resolve_range",
    "range_name",
    "fitted_frames",
    "held_out_note",
    "LIVE_NOTE",
    "last_metrics",
]

#: How metrics computed in the app are labelled next to a checkpoint's stored ones (which are
#: "stored at training, on <recording>", see ``CheckpointEntry.stored_note``).
LIVE_NOTE = "this recording, computed now"


@contextlib.contextmanager
def user_errors(what: str, fix: str = "") -> Iterator[None]:
    """Show errors raised inside the block with ``st.error`` instead of a traceback.

    Nothing is re-raised (but Streamlit's stop and rerun): the rest of the page still draws.

    Parameters
    ----------
    what
        What was being done ("Loading the recording").
    fix
        A hint, for messages that have none themselves.

    Returns
    -------
    Iterator[None]
        A context manager.
    """
    try:
        yield
    except (StopException, RerunException):
        raise
    except DecodingError as exc:
        st.error(
            f"**{what} failed.** {exc}" + (f"\n\n{fix}" if fix else ""), icon=":material/error:"
        )
    except (OSError, MemoryError) as exc:
        st.error(
            f"**{what} failed:** {type(exc).__name__}: {exc}. Check that the file or folder exists "
            "and is readable, and that there is enough memory/disk."
            + (f"\n\n{fix}" if fix else ""),
            icon=":material/error:",
        )
    except Exception as exc:  # a bug: say so, keep the details out of the way
        st.error(
            f"**{what} failed with an unexpected error** ({type(exc).__name__}: {exc}). This is a "
            "bug in NLP4Neuro Explorer; nothing saved was changed. Please report it with the "
            "details below.",
            icon=":material/bug_report:",
        )
        with st.expander("details for a bug report"):
            st.code("".join(traceback.format_exception(exc))[-6000:], language="text")


def fitted_frames(split: Split | None, start: int, stop: int) -> dict[str, int]:
    """How many frames of ``[start, stop)`` a checkpoint was fitted or selected on.

    Parameters
    ----------
    split
        The checkpoint's split (``None``: no checkpoint, nothing was fitted).
    start, stop
        The frames.

    Returns
    -------
    dict[str, int]
        Frames in the ``train`` and ``val`` parts (only the non-empty ones); empty when all are
        held out (test).
    """
    if split is None:
        return {}
    return {name: b - a for name, a, b in split.pieces(start, stop) if name != "test"}


def held_out_note(split: Split | None, start: int, stop: int) -> str:
    """A warning that a score on ``[start, stop)`` is not a held-out one.

    Parameters
    ----------
    split, start, stop
        As for :func:`fitted_frames`.

    Returns
    -------
    str
        ``""`` for held-out frames, else a sentence naming how many frames were fitted on.
    """
    seen = fitted_frames(split, start, stop)
    if not seen:
        return ""
    parts = [f"{n:,} {'training' if k == 'train' else 'validation'}" for k, n in seen.items()]
    return (
        f"These frames include {' and '.join(parts)} frames of the checkpoint's split: "
        "not a held-out score. Pick an epoch in the test split (or *whole test split*) for one."
    )


def last_metrics(ctx: Context) -> dict[str, Any] | None:
    """The live metrics the Explore view last showed (``session_state["_last_metrics"]``).

    Parameters
    ----------
    ctx
        The page's selection.

    Returns
    -------
    dict or None
        ``{"rmse": ..., "pearson_r": ..., "r2": ...}`` only when computed for this very
        checkpoint, recording and frame range; else ``None``.
    """
    got = st.session_state.get("_last_metrics")
    if not got or got.get("for") != [ctx.ckpt_path, ctx.rec_path, ctx.start, ctx.stop]:
        return None
    return got["metrics"]


def epoch_label(rec: Recording, value: str, split: Split | None = None) -> str:
    """Human label of an epoch choice: ``"3 · left (120–155 s)"``, test split, whole recording.

    Parameters
    ----------
    rec
        The recording.
    value
        The choice: :data:`TEST_SPLIT`, :data:`WHOLE` or an epoch index (``"3"``).
    split
        The checkpoint's split: frames it was fitted on are flagged ``"… · training frames"``
        (or ``"· validation frames"`` when only validation frames are in the range).

    Returns
    -------
    str
        The label.
    """
    fps = rec.frame_rate_hz
    if value == TEST_SPLIT:
        if split is None:
            return "whole test split"
        a, b = split.test.start, split.test.stop
        return f"whole test split ({a / fps:.0f}–{b / fps:.0f} s)"
    if value == WHOLE:
        label = f"whole recording (0–{rec.n_frames / fps:.0f} s)"
    else:
        ep = rec.epochs[int(value)]
        label = f"{value} · {ep.name} ({ep.start / fps:.0f}–{ep.stop / fps:.0f} s)"
    seen = fitted_frames(split, *resolve_range(rec, value, split))
    if seen:
        label += " · training frames" if "train" in seen else " · validation frames"
    return label


def resolve_range(rec: Recording, value: str, split: Split | None) -> tuple[int, int]:
    """Frame range of an epoch choice, by :func:`decoding.recording.frame_ranges`.

    Parameters
    ----------
    rec
        The recording.
    value
        :data:`WHOLE`, :data:`TEST_SPLIT` (needs ``split``) or an epoch index (``"3"``: that
        very epoch, even when the protocol repeats its name).
    split
        The checkpoint's split.

    Returns
    -------
    tuple[int, int]
        ``(start, stop)``.
    """
    if value == WHOLE:
        (got,) = frame_ranges(rec)
    elif value == TEST_SPLIT:
        (got,) = frame_ranges(rec, epoch="test", split=split)
    else:
        (got,) = frame_ranges(rec, epoch=epoch_reference(rec, int(value)))
    return got


def range_name(rec: Recording, split: Split | None, start: int, stop: int) -> str:
    """The epoch label of the frames ``[start, stop)``.

    Parameters
    ----------
    rec, split
        As for :func:`epoch_label`.
    start, stop
        The frames.

    Returns
    -------
    str
        The label of the epoch choice covering exactly these frames (see :func:`epoch_label`),
        else ``"frames a–b"``.
    """
    choices = [TEST_SPLIT, WHOLE] + [str(i) for i in range(len(rec.epochs))]
    for value in choices:
        if value == TEST_SPLIT and split is None:
            continue
        if resolve_range(rec, value, split) == (start, stop):
            return epoch_label(rec, value, split)
    return f"frames {start}–{stop}"


@dataclass
class Context:
    """The resolved selection handed to every view."""

    settings: Settings
    sel: Selection
    recordings: list[RecordingEntry]
    checkpoints: list[CheckpointEntry]
    rec_entry: RecordingEntry | None = None
    rec: Recording | None = None
    rec_mtime: int = 0
    ckpt: CheckpointEntry | None = None
    ckpt_mtime: int = 0
    split: Split | None = None
    start: int = 0
    stop: int = 0
    device: str = "auto"
    presentation: bool = False
    atlas_key: str = ""  # the atlas in use ("" = shipped); falls back to "" when it fails to load
    notes: list[str] = field(default_factory=list)

    @property
    def rec_path(self) -> str:
        return str(self.rec_entry.path) if self.rec_entry else ""

    @property
    def ckpt_path(self) -> str:
        return str(self.ckpt.path) if self.ckpt else ""

    @property
    def range_label(self) -> str:
        return epoch_label(self.rec, self.sel.epoch, self.split) if self.rec is not None else ""

    @property
    def atlas_name(self) -> str:
        """Key of the atlas the views draw with (see ``caching.atlas_for``)."""
        return self.atlas_key

    def times(self) -> np.ndarray:
        """The time of each selected frame.

        Returns
        -------
        np.ndarray
            (stop - start,) seconds.
        """
        return self.rec.times_s[self.start : self.stop]

    def epoch_spans(self) -> list[EpochSpan]:
        """The recording's epochs, for shading figures.

        Returns
        -------
        list[EpochSpan]
            Name, start and end in seconds, in recording order.
        """
        fps = self.rec.frame_rate_hz
        return [EpochSpan(e.name, e.start / fps, e.stop / fps) for e in self.rec.epochs]

    def checkpoint_by_key(self, key: str) -> CheckpointEntry | None:
        """The listed checkpoint of a key.

        Parameters
        ----------
        key
            A :class:`CheckpointEntry` key.

        Returns
        -------
        CheckpointEntry or None
            ``None`` when no listed checkpoint has it.
        """
        return next((c for c in self.checkpoints if c.key == key), None)

    def _prediction_key(self, ckpt: CheckpointEntry | None) -> PredictionKey:
        ckpt = ckpt or self.ckpt
        if ckpt is None:
            raise ValueError("predictions: expected a checkpoint (picked or given); found none")
        path = str(ckpt.path)
        return PredictionKey(
            ckpt=path,
            ckpt_mtime=caching.mtime_ns(path),
            rec_path=self.rec_path,
            rec_mtime=self.rec_mtime,
            start=self.start,
            stop=self.stop,
            device=self.device,
        )

    def predictions(self, ckpt: CheckpointEntry | None = None) -> np.ndarray:
        """Predictions of a checkpoint on the selected frames.

        Parameters
        ----------
        ckpt
            The checkpoint; ``None``: the selected one.

        Returns
        -------
        np.ndarray
            (stop - start, K), from :func:`dashboard.caching.predictions`.
        """
        return caching.predictions(self._prediction_key(ckpt))

    def predictions_ready(self, ckpt: CheckpointEntry | None = None) -> bool:
        """Whether :meth:`predictions` returns at once (memory or disk cache).

        Parameters
        ----------
        ckpt
            The checkpoint; ``None``: the selected one.

        Returns
        -------
        bool
            ``False``: it has to run the model.
        """
        return caching.PREDICTIONS.ready(self._prediction_key(ckpt))

    def output_dir(self) -> Path:
        """Where fine-tunes started from the app are written.

        Returns
        -------
        Path
            The runs folder (beside the jobs folder).
        """
        return self.settings.runs_dir


def chart(fig: go.Figure, *, key: str, where: DeltaGenerator | None = None) -> None:
    """Show a Plotly figure: presentation-mode fonts when on, PNG export at 2x from the modebar.

    Parameters
    ----------
    fig
        The figure (enlarged in place in presentation mode).
    key
        The element's key, also the exported PNG's file name.
    where
        A column or container to draw in; ``None``: the current place.
    """
    from dashboard.figures import apply_presentation

    if st.session_state.get("w_present"):
        apply_presentation(fig)
    config = {
        "displaylogo": False,
        "toImageButtonOptions": {"format": "png", "filename": key, "scale": 2},
    }
    (where or st).plotly_chart(fig, key=key, config=config)


def echart(c: EChart, *, key: str) -> None:
    """Show an ECharts chart (:mod:`dashboard.tail_echarts`) at its height, named for screen
    readers by ``c.alt``; ``key`` is also its CSS class (``st-key-<key>``)."""
    st.echarts_chart(c.option, height=c.height, alt=c.alt, key=key)
