"""Population salience (many fish): which atlas regions a multi-fish decoder relies on across fish.

Opened from the sidebar (*Population (many fish)*): choose a multi-fish checkpoint; its fish are
matched to the recordings found in the data folders (by fingerprint, then fish id). Shows the 3D
brain with regions coloured by population effect, a bar per region (mean across fish with its
confidence interval) with one dot per fish beside it, a fish-by-region heatmap and the table with
a CSV download. Every computation is :func:`decoding.population.fish_salience` and
:func:`decoding.population.population_salience`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import plotly.express as px
import plotly.graph_objects as go
import streamlit as st

from dashboard import caching
from dashboard.context import Context, chart, user_errors
from dashboard.figures import brain_mesh_trace
from decoding.population import EFFECT_LABELS, POPULATION_TESTS

__all__ = ["sidebar_entry", "render", "effect_bar_figure", "fish_heatmap", "region_brain_figure"]

EFFECT = "mean_log2_ratio"


def sidebar_entry(ctx: Context) -> None:
    """A sidebar switch; when on, draw the population page instead of the selected view.

    Parameters
    ----------
    ctx
        The app's context (checkpoints and recordings found on disk).
    """
    multi = _multifish_checkpoints(ctx)
    with st.sidebar.expander("Population (many fish)", expanded=False):
        if not multi:
            st.caption(
                "No multi-fish checkpoint found. Train one with `python -m decoding train "
                "--recording a.h5 b.h5 ...` (see docs/multifish.md)."
            )
            return
        on = st.toggle("Show population salience", key="pop_open")
    if on:
        with user_errors("The population page"):
            render(ctx, multi)
        st.stop()


def _multifish_checkpoints(ctx: Context) -> list[Path]:
    from decoding.multifish import is_multifish_checkpoint

    return [c.path for c in ctx.checkpoints if is_multifish_checkpoint(c.path)]


@st.cache_data(show_spinner="Computing each fish's salience…", max_entries=8)
def _population(
    checkpoint: str,
    ck_mtime: int,
    recordings: tuple[str, ...],
    rec_mtimes: tuple[int, ...],
    epoch: str,
    test: str,
) -> tuple[pd.DataFrame, pd.DataFrame, list[str]]:
    """(region table, per-fish table, fish ids) for the checkpoint's fish found on disk."""
    from decoding.multifish import fish_for_recording, load_multifish
    from decoding.population import fish_salience, population_salience
    from decoding.recording import load_recording

    res = load_multifish(checkpoint)
    sal, ids = [], []
    for path in recordings:
        rec = load_recording(path)
        try:
            i = fish_for_recording(res, rec)
        except Exception:  # noqa: BLE001 - a recording of another fish: not part of this model
            continue
        if res.model.fish_ids[i] in ids:
            continue
        sal.append(fish_salience(res.model.views[i], res.infos[i], rec, epoch=epoch))
        ids.append(res.model.fish_ids[i])
    pop = population_salience(sal, test=test)
    pop.table.attrs["effect_label"] = pop.effect_label
    return pop.table, pop.per_fish, ids


def render(ctx: Context, checkpoints: list[Path]) -> None:
    """The population page.

    Parameters
    ----------
    ctx
        The app's context.
    checkpoints
        The multi-fish checkpoints to choose from.
    """
    st.header("Population salience across fish")
    names = {str(p.name): p for p in checkpoints}
    c1, c2, c3 = st.columns([2, 1, 1])
    choice = c1.selectbox("Multi-fish checkpoint", list(names), key="pop_ckpt")
    epoch = c2.selectbox("Frames", ["test", "val", "train"], key="pop_epoch")
    test = c3.selectbox("Test across fish", list(POPULATION_TESTS), key="pop_test")
    paths = tuple(str(r.path) for r in ctx.recordings)
    if not paths:
        st.info("No recordings in the data folders: put the fish of this checkpoint there.")
        st.stop()
    ck = names[choice]
    table, per_fish, ids = _population(
        str(ck),
        caching.mtime_ns(ck),
        paths,
        tuple(caching.mtime_ns(p) for p in paths),
        epoch,
        test,
    )
    st.caption(
        f"{len(ids)} fish ({', '.join(ids)}); effect = {_label(table)}; population = one-sided "
        f"{test} test across fish > 0, FDR-corrected across regions (docs/multifish.md)."
    )
    populated = table.loc[table["population"], "region"].tolist()
    st.markdown(f"**Population regions:** {', '.join(populated) or 'none'}")
    left, right = st.columns([1, 1])
    with left:
        chart(region_brain_figure(ctx, table), key="pop_brain")
    with right:
        chart(effect_bar_figure(table, per_fish), key="pop_bar")
    chart(fish_heatmap(table, per_fish), key="pop_heatmap")
    st.dataframe(table, hide_index=True, width="stretch")
    st.download_button(
        "Download table (CSV)",
        table.to_csv(index=False).encode(),
        file_name=f"{choice}_population_{epoch}.csv",
        mime="text/csv",
        key="pop_csv",
    )


def _label(table: pd.DataFrame) -> str:
    return str(table.attrs.get("effect_label", EFFECT_LABELS["top"]))


def effect_bar_figure(table: pd.DataFrame, per_fish: pd.DataFrame, top: int = 25) -> go.Figure:
    """Mean effect per region with its confidence interval, and one dot per fish beside it.

    Parameters
    ----------
    table, per_fish
        :class:`decoding.population.PopulationResult` ``table`` and ``per_fish``.
    top
        Regions shown (most salient first).

    Returns
    -------
    go.Figure
    """
    t = table.head(top)
    err_hi = (t["ci_high"] - t[EFFECT]).fillna(0)
    err_lo = (t[EFFECT] - t["ci_low"]).fillna(0)
    colours = np.where(t["population"], "#d62728", "#9aa5b1")
    fig = go.Figure(
        go.Bar(
            x=t["region"],
            y=t[EFFECT],
            marker_color=colours,
            error_y={"type": "data", "array": err_hi, "arrayminus": err_lo},
            name="mean across fish (CI)",
        )
    )
    dots = per_fish[per_fish["region"].isin(t["region"])]
    fig.add_trace(
        go.Scatter(
            x=dots["region"],
            y=dots["log2_ratio"],
            mode="markers",
            marker={"size": 7, "color": "#1f2937", "opacity": 0.7},
            text=dots["fish"],
            hovertemplate="%{text}: %{y:.2f}<extra></extra>",
            name="each fish",
        )
    )
    fig.update_layout(
        title="Population effect per region (red: population effect)",
        yaxis_title=_label(table),
        xaxis={"categoryorder": "array", "categoryarray": list(t["region"])},
        legend={"orientation": "h", "y": 1.12},
        margin={"t": 70},
    )
    return fig


def fish_heatmap(table: pd.DataFrame, per_fish: pd.DataFrame) -> go.Figure:
    """Fish x region heatmap of the per-fish effect (regions in the table's order).

    Parameters
    ----------
    table, per_fish
        :class:`decoding.population.PopulationResult` ``table`` and ``per_fish``.

    Returns
    -------
    go.Figure
    """
    wide = per_fish.pivot(index="fish", columns="region", values="log2_ratio")
    wide = wide.reindex(columns=list(table["region"]))
    lim = float(np.nanmax(np.abs(wide.to_numpy()))) if wide.size else 1.0
    fig = px.imshow(
        wide,
        color_continuous_scale="RdBu_r",
        zmin=-lim,
        zmax=lim,
        aspect="auto",
        labels={"color": _label(table), "x": "region", "y": "fish"},
    )
    fig.update_layout(title="Each fish's effect per region")
    return fig


def region_brain_figure(ctx: Context, table: pd.DataFrame) -> go.Figure:
    """The atlas regions in 3D, coloured by the population effect (grey: not tested).

    Parameters
    ----------
    ctx
        The app's context (its atlas).
    table
        :class:`decoding.population.PopulationResult` ``table``.

    Returns
    -------
    go.Figure
    """
    from plotly.colors import sample_colorscale

    outline, meshes = caching.brain_meshes(ctx.atlas_name)
    values = dict(zip(table["region"], table[EFFECT], strict=True))
    finite = [v for v in values.values() if np.isfinite(v)]
    lim = max((abs(v) for v in finite), default=1.0) or 1.0
    fig = go.Figure()
    if outline is not None:
        fig.add_trace(brain_mesh_trace(outline, color="#bbbbbb", opacity=0.06, name="brain"))
    for acronym, _group, mesh in meshes:
        v = values.get(acronym)
        if v is None or not np.isfinite(v):
            fig.add_trace(brain_mesh_trace(mesh, color="#dddddd", opacity=0.05, name=acronym))
            continue
        colour = sample_colorscale("RdBu_r", [(v + lim) / (2 * lim)])[0]
        opacity = 0.25 + 0.6 * min(1.0, abs(v) / lim)
        fig.add_trace(
            brain_mesh_trace(mesh, color=colour, opacity=opacity, name=f"{acronym}: {v:.2f}")
        )
    fig.update_layout(
        title="Regions coloured by population effect (red: more salient than typical)",
        scene={
            "aspectmode": "data",
            "xaxis_visible": False,
            "yaxis_visible": False,
            "zaxis_visible": False,
        },
        showlegend=False,
        margin={"l": 0, "r": 0, "b": 0, "t": 40},
    )
    return fig
