"""The page's own CSS (no Streamlit calls here: the app and the tests insert it): the base
style, and presentation mode's larger text."""

from __future__ import annotations

__all__ = ["BASE_CSS", "PRESENTATION_CSS", "PRESENTATION_SCALE"]

#: Presentation mode: Streamlit sizes text and widgets in rem, so a larger root font makes every
#: heading, metric and label larger together (the old per-class font size made headings and
#: metric numbers *smaller*); the sidebar widens in proportion, so it wraps as it does normally.
PRESENTATION_SCALE = 1.25
PRESENTATION_CSS = f"""
<style>
html {{ font-size: {16 * PRESENTATION_SCALE:g}px !important; }}
section[data-testid="stSidebar"] {{
  width: {336 * PRESENTATION_SCALE:g}px !important;
  min-width: {336 * PRESENTATION_SCALE:g}px !important;
}}
</style>
"""
#: The page's own style. Elements left from the previous run still dim half a second into a
#: run, as in any Streamlit app, but at once instead of fading for a second: the fade had the
#: browser composite the page 60 times a second during that second (~0.4 of a core, taken from
#: the salience computation the run is doing, on 2 cores).
BASE_CSS = """
<style>
.block-container { padding-top: 2.2rem; }
[data-testid="stElementContainer"][data-stale="true"] { transition-duration: 0s !important; }
</style>
"""
