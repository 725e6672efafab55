"""NLP4Neuro Explorer — the Streamlit app.

Run: ``streamlit run dashboard/app.py`` (demo data in ``data/demo``) or
``streamlit run dashboard/app.py -- --data-dir FOLDER [--checkpoint-dir FOLDER]``; see
``dashboard/settings.py`` for the environment variables and config file.

The page is thin: the sidebar resolves the selection (``dashboard/sidebar.py``), one view draws it
(``dashboard/views/``), figures come from ``dashboard/figures.py`` and every computation is a call
into ``decoding/`` through ``dashboard/caching.py`` or a background job (``dashboard/jobs.py``).
"""

from __future__ import annotations

import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parents[1]
if str(_ROOT) not in sys.path:  # `streamlit run dashboard/app.py` puts only dashboard/ on the path
    sys.path.insert(0, str(_ROOT))

import streamlit as st  # noqa: E402

from dashboard import prepare  # noqa: E402
from dashboard.access import require_secret  # noqa: E402
from dashboard.context import user_errors  # noqa: E402
from dashboard.page_style import BASE_CSS, PRESENTATION_CSS  # noqa: E402
from dashboard.results_state import shown  # noqa: E402
from dashboard.settings import resolve_settings  # noqa: E402
from dashboard.sidebar import render_sidebar  # noqa: E402
from dashboard.state import sync_query  # noqa: E402
from dashboard.views import population  # noqa: E402


def main() -> None:
    """Draw the page."""
    st.set_page_config(
        page_title="NLP4Neuro Explorer",
        page_icon="🐟",
        layout="wide",
        initial_sidebar_state="expanded",
    )
    st.markdown(BASE_CSS, unsafe_allow_html=True)
    require_secret()  # shared on a network: nothing below until this session gave the secret
    prepare.page_started()
    settings = resolve_settings()
    ctx = render_sidebar(settings)
    if ctx.presentation:
        st.markdown(PRESENTATION_CSS, unsafe_allow_html=True)
    population.sidebar_entry(ctx)  # many fish: draws the population page instead when switched on

    view = ctx.sel.view
    if view == "jobs":
        from dashboard.views import jobs_view

        with user_errors("The Train & jobs page"):
            jobs_view.render(ctx)
    elif view == "checkpoints":
        from dashboard.views import checkpoints

        with user_errors("The checkpoint page"):
            checkpoints.render(ctx)
    elif ctx.rec is None:
        if not ctx.recordings:
            from dashboard.sidebar import _no_recordings

            _no_recordings(settings)
        else:
            st.info(
                "The selected recording could not be opened (see the message in the sidebar). "
                "Pick another fish or upload a valid recording."
            )
    elif view == "salience":
        from dashboard.views import salience

        with user_errors("The salience page"):
            salience.render(ctx)
    else:
        from dashboard.views import explore

        with user_errors("The explore page"):
            explore.render(ctx)
    # the URL also says which results are on screen (pred=1, sal=<method>), so a link reopens them
    sync_query(st.query_params, shown(ctx.sel, has_model=ctx.ckpt is not None))
    prepare.page_finished()


main()
