"""Who may do what when the app is shared on a network (a lab meeting): the secret, upload
limits, job ownership and quotas.

*Local* (the default: the server listens on ``localhost``; or ``NLP4NEURO_SHARED=0``): one user,
no secret, every job visible, no quotas. *Shared* (``make demo HOST=0.0.0.0``, any address other
than localhost, no address at all, or ``NLP4NEURO_SHARED=1``):

* the app asks for a secret before showing anything: ``$NLP4NEURO_SHARE_SECRET``, else one made
  up at server start and printed in the terminal that started it;
* uploads are limited to ``$NLP4NEURO_SHARED_UPLOAD_MB`` (default 500 MB) per file;
* a job belongs to the browser session that started it: other sessions neither see nor cancel it
  unless its owner ticks *share with everyone* (on the server itself, ``python -m dashboard.jobs
  list runs/jobs`` lists every job);
* a session runs at most ``$NLP4NEURO_JOB_QUOTA`` jobs at a time (default 1) and starts at most
  ``$NLP4NEURO_JOB_LIMIT`` in all (default 5).
"""

from __future__ import annotations

import hmac
import os
import secrets
import sys
import time
from typing import Any

import streamlit as st

__all__ = [
    "is_shared",
    "share_secret",
    "require_secret",
    "session_id",
    "upload_limit_mb",
    "can_see",
    "can_manage",
    "quota_problem",
    "LOCAL_ADDRESSES",
]

LOCAL_ADDRESSES = ("localhost", "127.0.0.1", "::1")
_SECRET: list[str] = []  # the secret made up for this server process (when none is configured)
_FAIL_DELAY_S = 1.0


def is_shared() -> bool:
    """Whether the app is reachable from other machines: it listens on another address than
    localhost (no address at all = every interface), or ``NLP4NEURO_SHARED=1``;
    ``NLP4NEURO_SHARED=0`` says it is not (e.g. behind a proxy that already authenticates)."""
    forced = os.environ.get("NLP4NEURO_SHARED")
    if forced in ("0", "1"):
        return forced == "1"
    address = st.get_option("server.address") or ""  # "" = every interface
    return address not in LOCAL_ADDRESSES


def share_secret() -> str:
    """``$NLP4NEURO_SHARE_SECRET``, else one made up once per server process and printed on the
    server's terminal (its stderr)."""
    configured = os.environ.get("NLP4NEURO_SHARE_SECRET", "")
    if configured:
        return configured
    if not _SECRET:
        _SECRET.append(secrets.token_urlsafe(9))
        print(
            f"\n  NLP4Neuro Explorer is shared on the network. Secret for this session of the "
            f"server: {_SECRET[0]}\n  (set NLP4NEURO_SHARE_SECRET to choose it)\n",
            file=sys.stderr,
            flush=True,
        )
    return _SECRET[0]


def require_secret() -> None:
    """In shared mode, stop the page until this browser session has given the secret."""
    if not is_shared() or st.session_state.get("_access_ok"):
        return
    expected = share_secret()
    st.markdown("### NLP4Neuro Explorer")
    st.info(
        "This app is shared on the network. Enter the secret printed in the terminal that "
        "started it (or set by `NLP4NEURO_SHARE_SECRET`).",
        icon=":material/lock:",
    )
    with st.form("access_form"):
        given = st.text_input("Secret", type="password", key="access_secret")
        sent = st.form_submit_button("Open")
    if sent:
        if hmac.compare_digest(given.encode(), expected.encode()):
            st.session_state["_access_ok"] = True
            st.session_state.pop("access_secret", None)
            st.rerun()
        time.sleep(_FAIL_DELAY_S)  # slows guessing down
        st.error("That is not the secret.", icon=":material/error:")
    st.stop()


def session_id() -> str:
    """This browser session's id (a reload starts a new session)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    ctx = get_script_run_ctx()
    return ctx.session_id if ctx is not None else ""


def upload_limit_mb() -> int | None:
    """Largest upload accepted in MB (shared mode only; ``None``: the server's own limit)."""
    if not is_shared():
        return None
    try:
        return max(1, int(os.environ.get("NLP4NEURO_SHARED_UPLOAD_MB", "500")))
    except ValueError:
        return 500


def _owner(job: Any) -> str:
    return str(job.spec.get("owner", ""))


def can_see(job: Any) -> bool:
    """Local mode: every job. Shared: this session's own jobs and jobs shared with everyone."""
    if not is_shared():
        return True
    return bool(job.spec.get("shared")) or _owner(job) == session_id()


def can_manage(job: Any) -> bool:
    """Cancel / remove / share: the job's owner (anyone when the app is not shared)."""
    if not is_shared():
        return True
    return _owner(job) == session_id()


def _int_env(name: str, default: int) -> int:
    try:
        return max(0, int(os.environ.get(name, str(default))))
    except ValueError:
        return default


def quota_problem(all_jobs: list[Any]) -> str:
    """Why this session may not start another job now (``""``: it may)."""
    if not is_shared():
        return ""
    mine = [j for j in all_jobs if _owner(j) == session_id()]
    running = sum(not j.finished for j in mine)
    at_once, in_all = _int_env("NLP4NEURO_JOB_QUOTA", 1), _int_env("NLP4NEURO_JOB_LIMIT", 5)
    if running >= at_once:
        return (
            f"This browser session already runs {running} job(s), the most allowed at once while "
            "the app is shared: wait for it to finish or cancel it."
        )
    if len(mine) >= in_all:
        return (
            f"This browser session has started {len(mine)} jobs, the most allowed while the app "
            "is shared. Ask the person running the server to start more."
        )
    return ""
