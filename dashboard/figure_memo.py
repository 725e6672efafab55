"""Built Plotly figures kept for reuse, keyed by everything they show.

Building the tail figure (a few thousand Plotly property validations: traces, epoch shading,
margins) takes a good part of a second, on every run that draws it: switching back to an epoch
seen before would pay it again although nothing in the figure changed. A key names what the figure
shows (recording, frames, channel, which predictions and which salience map, title), so the same
key always means the same figure; the figures are shared read-only by every session of the
process (presentation mode changes fonts in place, so it takes a fresh one).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any

__all__ = ["FigureMemo"]


class FigureMemo:
    """A thread-safe least-recently-used store of built figures.

    Parameters
    ----------
    max_entries
        How many figures are kept (the least recently used is dropped first).
    """

    def __init__(self, *, max_entries: int = 32) -> None:
        if max_entries < 1:
            raise ValueError(f"max_entries must be at least 1; found {max_entries}")
        self.max_entries = max_entries
        self._figures: OrderedDict[Hashable, Any] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Hashable, build: Callable[[], Any]) -> Any:
        """The figure stored under ``key``, else ``build()`` (stored). Do not modify it.

        Parameters
        ----------
        key
            Everything the figure shows (hashable).
        build
            Builds the figure when it is not stored.

        Returns
        -------
        Any
            The figure.
        """
        with self._lock:
            if key in self._figures:
                self._figures.move_to_end(key)
                return self._figures[key]
        fig = build()  # outside the lock: two sessions may build the same one, both are right
        with self._lock:
            self._figures[key] = fig
            self._figures.move_to_end(key)
            while len(self._figures) > self.max_entries:
                self._figures.popitem(last=False)
        return fig

    def __len__(self) -> int:
        return len(self._figures)
