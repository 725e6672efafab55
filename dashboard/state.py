"""The current selection and its round trip through the URL's query parameters.

A link such as ``?fish=demo_fish&epoch=3&model=assets/demo_checkpoint&view=explore&pred=1&sal=ig``
reopens the same view, with the predictions (``pred=1``) and the salience (``sal=<method>``, plus
``target``/``steps`` when not the defaults) it showed: both are recomputed from the caches.
Unknown or stale values (a fish that is gone, an epoch index out of range) are dropped, never
raised: the sidebar then falls back to the first choice (for the model: a compatible checkpoint;
``model=none`` keeps none).
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping
from dataclasses import asdict, dataclass, fields, replace

__all__ = [
    "Selection",
    "VIEWS",
    "COLOURS",
    "TEST_SPLIT",
    "WHOLE",
    "NO_MODEL",
    "from_query",
    "to_query",
    "sync_query",
]

VIEWS: dict[str, str] = {
    "explore": "Explore",
    "salience": "Salience",
    "checkpoints": "Checkpoints",
    "jobs": "Train & jobs",
}
TEST_SPLIT = "test"  # epoch value meaning "the whole test split"
WHOLE = "all"  # epoch value meaning "the whole recording"
DEVICES = ("auto", "cuda", "cpu")
COLOURS = ("salience", "confidence")  # what the 3D brain's neurons are coloured by
NO_MODEL = "none"  # model value of a link whose sender picked "— none —" (no default is picked)


@dataclass(frozen=True)
class Selection:
    """What the user is looking at. Every field is a short string so it fits in a URL."""

    fish: str = ""  # recording key (see caching.list_recordings)
    epoch: str = TEST_SPLIT  # epoch index as a string, TEST_SPLIT or WHOLE
    model: str = ""  # checkpoint key (see caching.list_checkpoints), "" = a compatible default
    device: str = "auto"
    view: str = "explore"
    channel: str = "all"  # "all", "sum" or a behaviour channel index
    compare: str = ""  # second checkpoint on the checkpoint page
    present: str = ""  # "1" = presentation mode
    atlas: str = ""  # atlas key (see caching.list_atlases), "" = the shipped schematic atlas
    colour: str = "salience"  # one of COLOURS: the 3D brain's colouring once salience is shown
    pred: str = ""  # "1" = the predictions are shown (recomputed from the cache on opening)
    sal: str = ""  # salience method whose result is shown ("" = none)
    target: str = "sum"  # salience target (with sal)
    steps: str = "32"  # salience integration steps (with sal, for methods that use steps)

    def with_(self, **changes: str) -> Selection:
        """A copy with some fields changed."""
        return replace(self, **changes)


def from_query(params: Mapping[str, str | list[str]]) -> Selection:
    """Build a selection from query parameters, ignoring unknown keys and bad values."""
    values: dict[str, str] = {}
    names = {f.name for f in fields(Selection)}
    for key, raw in params.items():
        if key not in names:
            continue
        value = raw[-1] if isinstance(raw, list) else raw
        if value is None:
            continue
        values[key] = str(value)
    sel = Selection(**values)
    if sel.view not in VIEWS:
        sel = sel.with_(view="explore")
    if sel.device not in DEVICES:
        sel = sel.with_(device="auto")
    if sel.colour not in COLOURS:
        sel = sel.with_(colour="salience")
    return sel


def to_query(sel: Selection) -> dict[str, str]:
    """The query parameters for a selection; defaults and empty values are left out."""
    default = Selection()
    return {k: v for k, v in asdict(sel).items() if v and (v != getattr(default, k) or k == "fish")}


def sync_query(params: MutableMapping[str, str], sel: Selection) -> None:
    """Make ``params`` (``st.query_params``) hold exactly ``sel``; untouched when already equal."""
    wanted = to_query(sel)
    current = {k: params[k] for k in list(params.keys())}
    if current == wanted:
        return
    for key in list(current):
        if key not in wanted:
            del params[key]
    for key, value in wanted.items():
        if current.get(key) != value:
            params[key] = value
