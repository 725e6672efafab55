"""Which results the page shows besides the selection: the predictions (on or off) and the salience
request (method, target, steps).

Both live in ``st.session_state`` under plain keys (not widget keys, which Streamlit drops on
views that do not draw the widget), so they survive switching views; both are carried by the URL
(``pred=1``, ``sal=<method>``, ``target``, ``steps``: see :mod:`dashboard.state`) so a shared link
recomputes the same predictions and salience from the caches. The default method is the core's
:data:`decoding.salience.DEFAULT_METHOD`, never a name written here.
"""

from __future__ import annotations

from typing import Any

import streamlit as st

from dashboard.state import Selection

__all__ = [
    "STEP_CHOICES",
    "method_choices",
    "method_title",
    "uses_steps",
    "salience_options",
    "store_salience_options",
    "predictions_on",
    "salience_on",
    "seed_from_url",
    "shown",
]

STEP_CHOICES = (16, 32, 50)
_DEFAULT_STEPS = 32
_DEFAULT_TARGET = "sum"
#: Methods the app does not offer (feature ablation needs a grouping of the neurons).
_NOT_OFFERED = ("ablation",)
#: Titles the app words differently from the core's registry.
_TITLE_NOTES = {"ixg": "Input × Gradient (the study's)"}


def method_choices() -> list[str]:
    """The salience methods offered: the core's default first, then the registry's order."""
    from decoding.salience import DEFAULT_METHOD, METHODS

    names = [m for m in METHODS if m not in _NOT_OFFERED]
    return [DEFAULT_METHOD] + [m for m in names if m != DEFAULT_METHOD]


def method_title(method: str, *, mark_default: bool = False) -> str:
    """``"Integrated Gradients"``; with ``mark_default`` the core's default reads
    ``"… (default)"`` (the method picker)."""
    from decoding.salience import DEFAULT_METHOD, METHODS

    title = _TITLE_NOTES.get(method) or (METHODS[method].title if method in METHODS else method)
    return f"{title} (default)" if mark_default and method == DEFAULT_METHOD else title


def uses_steps(method: str) -> bool:
    """Whether the method integrates over steps (the *IG steps* choice applies)."""
    from decoding.salience import METHODS

    return method in METHODS and METHODS[method].uses_steps


def salience_options() -> dict[str, Any]:
    """``{"method", "target", "steps"}`` of the salience request; the widgets' values when drawn
    (or set through ``session_state``), else the last stored ones, else the core's defaults."""
    from decoding.salience import DEFAULT_METHOD

    opts = {"method": DEFAULT_METHOD, "target": _DEFAULT_TARGET, "steps": _DEFAULT_STEPS}
    opts |= st.session_state.get("_sal_opts") or {}
    for name, key in (("method", "sal_method"), ("target", "sal_target"), ("steps", "sal_steps")):
        if key in st.session_state:
            opts[name] = st.session_state[key]
    if opts["method"] not in method_choices():
        opts["method"] = DEFAULT_METHOD
    try:
        opts["steps"] = int(opts["steps"])
    except (TypeError, ValueError):
        opts["steps"] = _DEFAULT_STEPS
    if opts["steps"] not in STEP_CHOICES:
        opts["steps"] = _DEFAULT_STEPS
    opts["target"] = str(opts["target"])
    return opts


def store_salience_options(opts: dict[str, Any]) -> None:
    """Remember the request beyond the widgets' lifetime (other views, the URL)."""
    st.session_state["_sal_opts"] = {k: opts[k] for k in ("method", "target", "steps")}


def predictions_on() -> bool:
    """Whether the user asked for predictions in this session (or the link carried ``pred=1``)."""
    return bool(st.session_state.get("infer_on"))


def salience_on() -> bool:
    """Whether the user asked for salience (or the link carried ``sal=``)."""
    return bool(st.session_state.get("sal_on"))


def seed_from_url(url: Selection) -> None:
    """Once per session: turn on what the link says was shown (``pred``, ``sal``).

    A bare link (no query at all: the app's front door, e.g. ``make demo``) opens with the
    default checkpoint's predictions and default-method salience on (when the sidebar finds a
    checkpoint for the fish); a link that names a selection shows exactly what it says.
    """
    if st.session_state.get("_results_seeded"):
        return
    st.session_state["_results_seeded"] = True
    if url == Selection():
        st.session_state["infer_on"] = True
        st.session_state["sal_on"] = True
        return
    if url.pred == "1":
        st.session_state["infer_on"] = True
    if url.sal and url.sal in method_choices():
        store_salience_options({"method": url.sal, "target": url.target, "steps": url.steps})
        st.session_state["sal_on"] = True


def shown(sel: Selection, *, has_model: bool) -> Selection:
    """``sel`` with the results on screen: ``pred=1`` and ``sal=<method>`` (+ target/steps)."""
    if not has_model:
        return sel.with_(pred="", sal="", target=_DEFAULT_TARGET, steps=str(_DEFAULT_STEPS))
    opts = salience_options()
    sal = salience_on()
    return sel.with_(
        pred="1" if predictions_on() else "",
        sal=opts["method"] if sal else "",
        target=opts["target"] if sal else _DEFAULT_TARGET,
        steps=str(opts["steps"]) if sal and uses_steps(opts["method"]) else str(_DEFAULT_STEPS),
    )
