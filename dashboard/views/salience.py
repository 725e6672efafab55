"""Salience: which neurons the decoder listens to — on the brain, per region, left vs right, per
epoch,
top-k neurons with their ΔF/F, and salience over time aligned with the tail."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import access, caching, downloads, jobs
from dashboard.context import (
    LIVE_NOTE,
    Context,
    chart,
    held_out_note,
    last_metrics,
    range_name,
    user_errors,
)
from dashboard.figures import (
    epoch_comparison_figure,
    laterality_figure,
    region_bar_figure,
    tail_figure,
)
from dashboard.results_state import (
    STEP_CHOICES,
    method_choices,
    method_title,
    predictions_on,
    salience_on,
    salience_options,
    store_salience_options,
    uses_steps,
)
from dashboard.views.brain import NO_CONFIDENCE, brain_panel, confidence_help
from decoding.recording import Recording

if TYPE_CHECKING:  # imported where used: torch and Captum load with decoding.salience
    from decoding.atlas import Atlas
    from decoding.salience import SalienceResult

__all__ = [
    "render",
    "current_salience",
    "salience_pending",
    "salience_quick",
    "salience_cost",
    "pending_note",
    "map_caption",
    "heatmap_rows",
    "lateral_rows",
    "salience_params",
    "SalienceParams",
    "top_table",
    "IN_PROCESS_MAX",
    "QUICK_MAX",
]

#: Largest frames x steps x model parameters (a rough count of the work) computed inside the app;
#: bigger requests run as a background job so the page stays responsive. About 5 s on a laptop CPU.
IN_PROCESS_MAX = 5e9
#: Requests up to this much work (about 2 s on a laptop CPU: IG with 32 steps over one demo epoch,
#: saliency over the whole test split) are computed before the Explore view draws, and the page
#: is drawn once, with them: drawing it first and again after (as for larger ones) costs the
#: browser two renders and competes with the computation for the CPU.
QUICK_MAX = 2e9


class SalienceParams(TypedDict):
    """A salience request of the page (kept in a background job's spec to find it again)."""

    checkpoint: str
    recording: str
    start: int
    stop: int
    method: str
    target: str
    steps: int  # 0 for methods without steps


def salience_params(ctx: Context, opts: dict[str, Any] | None = None) -> SalienceParams:
    """The salience request of the current selection.

    Parameters
    ----------
    ctx
        The page's selection.
    opts
        ``method``, ``target`` and ``steps``; ``None``: the page's choice
        (:func:`dashboard.results_state.salience_options`).

    Returns
    -------
    SalienceParams
        Checkpoint, recording, frames, and the method/target/steps chosen (see
        :func:`dashboard.results_state.salience_options`; steps 0 for methods without).
    """
    opts = salience_options() if opts is None else opts
    return {
        "checkpoint": ctx.ckpt_path,
        "recording": ctx.rec_path,
        "start": ctx.start,
        "stop": ctx.stop,
        "method": opts["method"],
        "target": opts["target"],
        "steps": opts["steps"] if uses_steps(opts["method"]) else 0,
    }


def salience_cost(ctx: Context, p: SalienceParams) -> float:
    """A request's work: frames x steps x model parameters (compared with :data:`QUICK_MAX` and
    :data:`IN_PROCESS_MAX`)."""
    n_params = caching.model_parameters(ctx.ckpt_path, ctx.ckpt_mtime, ctx.device)
    n_params = max(n_params, ctx.rec.n_neurons)
    return float(p["stop"] - p["start"]) * max(1, p["steps"]) * n_params


def _matching_job(ctx: Context, p: SalienceParams) -> jobs.Job | None:
    for job in jobs.list_jobs(ctx.settings.jobs_dir):
        if job.kind == "salience" and job.spec.get("params") == p and access.can_see(job):
            return job
    return None


def salience_request(
    ctx: Context, p: SalienceParams, checkpoint: tuple[str, int] | None = None
) -> caching.SalienceKey:
    """The key of :func:`dashboard.caching.salience` for a request.

    Parameters
    ----------
    ctx
        The page's selection (recording, frames, device).
    p
        The request (:func:`salience_params`): method, target, steps (0: none).
    checkpoint
        ``(path, mtime)`` of another checkpoint (a compared one); ``None``: the page's.

    Returns
    -------
    caching.SalienceKey
        The request's key.
    """
    ckpt_path, ckpt_mtime = checkpoint or (ctx.ckpt_path, ctx.ckpt_mtime)
    return caching.SalienceKey(
        ckpt=ckpt_path,
        ckpt_mtime=ckpt_mtime,
        rec_path=ctx.rec_path,
        rec_mtime=ctx.rec_mtime,
        start=ctx.start,
        stop=ctx.stop,
        method=p["method"],
        target=p["target"],
        steps=p["steps"] or 1,
        device=ctx.device,
    )


def current_salience(ctx: Context, *, compute: bool) -> SalienceResult | None:
    """The salience result of the current selection.

    Found in a finished background job, else computed in this process when it is small and the
    user asked for salience (``compute`` or an earlier click this session). Errors are shown.

    Parameters
    ----------
    ctx
        The page's selection.
    compute
        Compute it now even if not asked for before.

    Returns
    -------
    SalienceResult or None
        ``None`` when there is none (yet).
    """
    if ctx.ckpt is None or ctx.rec is None:
        return None
    p = salience_params(ctx)
    job = _matching_job(ctx, p)
    if job is not None and job.state == "done" and "salience" in job.outputs:
        with user_errors("Loading the salience result"):
            path = job.outputs["salience"]
            return caching.salience_file(path, caching.mtime_ns(path))
        return None
    if not (compute or salience_on()):
        return None
    with user_errors("Salience", "Check the checkpoint matches this fish."):
        if salience_cost(ctx, p) > IN_PROCESS_MAX:
            return None
        return caching.salience(salience_request(ctx, p))
    return None


def salience_pending(ctx: Context) -> bool:
    """Whether the selection's salience is asked for and not answered yet.

    It will be computed (or read from disk) in this process; meanwhile no older map may be shown.

    Parameters
    ----------
    ctx
        The page's selection.

    Returns
    -------
    bool
        ``True`` while pending.
    """
    if ctx.ckpt is None or ctx.rec is None or not salience_on():
        return False
    p = salience_params(ctx)
    if caching.SALIENCE.ready(salience_request(ctx, p)):
        return False
    job = _matching_job(ctx, p)
    if job is not None and job.state == "done":
        return False
    try:
        return salience_cost(ctx, p) <= IN_PROCESS_MAX
    except Exception:  # the computation itself reports it (user_errors)
        return True


def salience_quick(ctx: Context) -> bool:
    """Whether the selection's salience is small enough (:data:`QUICK_MAX`) to be computed
    before the page is drawn (``False`` when there is nothing to compute or it cannot be sized)."""
    if ctx.ckpt is None or ctx.rec is None or not salience_on():
        return False
    try:
        return salience_cost(ctx, salience_params(ctx)) <= QUICK_MAX
    except Exception:  # the computation itself reports it (user_errors)
        return False


def pending_note(ctx: Context) -> str:
    """What is being computed while the map is not ready (it names the new epoch).

    Parameters
    ----------
    ctx
        The page's selection.

    Returns
    -------
    str
        A Markdown sentence.
    """
    method = method_title(salience_params(ctx)["method"])
    return (
        f"Computing {method} salience for **{ctx.range_label}**… The previous epoch's map is "
        "not shown meanwhile."
    )


def map_caption(ctx: Context, sal: SalienceResult) -> str:
    """Which frames, method and target a salience result is for (read from the result itself).

    Parameters
    ----------
    ctx
        The page's selection (to name the frames).
    sal
        The result.

    Returns
    -------
    str
        ``"Salience map for **<frames>** · <method> · target <target>"``.
    """
    label = range_name(ctx.rec, ctx.split, sal.start, sal.stop)
    steps = sal.params.get("steps") if uses_steps(sal.method) else None
    method = method_title(sal.method) + (f", {steps} steps" if steps else "")
    return f"Salience map for **{label}** · {method} · target {sal.target}"


def heatmap_rows(
    ctx: Context, sal: SalienceResult | None, k: int = 20
) -> tuple[np.ndarray | None, list[str]]:
    """The salience over time of the most salient neurons, for the tail figure's heatmap row.

    Parameters
    ----------
    ctx
        The page's selection.
    sal
        The result (``None``: no row).
    k
        How many neurons.

    Returns
    -------
    tuple
        (frames, k) |salience| and the row labels ``"#rank n<id> <region>"``; ``(None, [])``
        when the result is not of the selected frames.
    """
    if sal is None or sal.start != ctx.start or sal.stop != ctx.stop:
        return None, []
    top = sal.ranking()[:k]
    regions = caching.neuron_regions(ctx.rec_path, ctx.rec_mtime, ctx.atlas_name)
    ids = ctx.rec.neuron_ids if ctx.rec.neuron_ids is not None else np.arange(ctx.rec.n_neurons)
    labels = [f"#{r + 1} n{ids[i]} {regions[i]}" for r, i in enumerate(top)]
    return np.abs(sal.values[:, top]), labels


def lateral_rows(lat: pd.DataFrame, n: int = 15) -> pd.DataFrame:
    """The regions of a lateralisation table most salient on either side.

    Parameters
    ----------
    lat
        :func:`decoding.anatomy.lateralisation` table.
    n
        How many regions.

    Returns
    -------
    pd.DataFrame
        The ``n`` regions with the largest of the left and right means, most salient first; the
        ``all`` row left out.
    """
    per = lat[lat["region"] != "all"]
    peak = np.fmax(per["mean_left"].to_numpy(float), per["mean_right"].to_numpy(float))
    order = np.argsort(-np.nan_to_num(peak, nan=-np.inf), kind="stable")[:n]
    return per.iloc[order]


def start_salience_job(ctx: Context, p: SalienceParams) -> jobs.Job:
    """Run ``python -m decoding salience`` for a request in the background.

    Parameters
    ----------
    ctx
        The page's selection (fish, epoch, checkpoint, device).
    p
        The request (:func:`salience_params`); kept in the job to find it again.

    Returns
    -------
    jobs.Job
        The started job; its output ``salience`` is ``{job}/salience.h5``.
    """
    request = salience_request(ctx, p).request()
    where = {
        "--recording": p["recording"],
        "--checkpoint": p["checkpoint"],
        "--start": str(p["start"]),
        "--stop": str(p["stop"]),
        "--device": caching.device_name(ctx.device),  # resolved: the CLI refuses "auto" (for now)
        "--cache-dir": str(caching.cache_dir() / "salience"),
        "--out": "{job}/salience.h5",
    }
    argv = [sys.executable, "-m", "decoding", "salience", *request.to_argv()]
    argv += [part for flag, value in where.items() for part in (flag, value)]
    title = f"salience {p['method']} · {ctx.rec.fish_id} · {ctx.range_label} · {ctx.ckpt.path.name}"
    return jobs.start_job(
        ctx.settings.jobs_dir,
        "salience",
        title,
        argv,
        outputs={"salience": "{job}/salience.h5"},
        params=p,
        env={"NLP4NEURO_CACHE": str(caching.cache_dir())},
        owner=access.session_id(),
    )


def _controls(ctx: Context) -> bool:
    """Method, target, steps (seeded from the stored request) and the *Compute salience* button."""
    names = list(ctx.rec.behavior_names)
    targets = ["sum", "lateral"] + [str(i) for i in range(len(names))]
    opts = salience_options()
    choices = method_choices()
    for key, value, options in (
        ("sal_method", opts["method"], choices),
        ("sal_target", opts["target"], targets),
        ("sal_steps", opts["steps"], list(STEP_CHOICES)),
    ):
        if st.session_state.get(key) not in options:
            st.session_state[key] = value if value in options else options[0]
    c1, c2, c3, c4 = st.columns([3, 3, 2, 2])
    method = c1.selectbox(
        "Method",
        choices,
        key="sal_method",
        format_func=lambda m: method_title(m, mark_default=True),
    )
    target = c2.selectbox(
        "Target",
        targets,
        key="sal_target",
        format_func=lambda t: {
            "sum": "sum of tail angles (the study's)",
            "lateral": "lateral deflection (left vs right)",
        }.get(t, names[int(t)] if t.isdigit() else t),
    )
    steps = c3.selectbox(
        "IG steps", list(STEP_CHOICES), key="sal_steps", disabled=not uses_steps(method)
    )
    store_salience_options({"method": method, "target": target, "steps": steps})
    with c4:
        st.write("")
        clicked = st.button(
            "Compute salience", icon=":material/auto_awesome:", key="run_sal", type="primary"
        )
    return clicked


def render(ctx: Context) -> None:
    """The Salience view: controls, the background job's progress, then the results.

    Parameters
    ----------
    ctx
        The page's selection.
    """
    rec = ctx.rec
    st.markdown(f"#### Salience · {rec.fish_id} · {ctx.range_label}")
    if ctx.ckpt is None:
        st.info(
            "Pick a model (checkpoint) in the sidebar: salience explains a decoder's predictions."
        )
        return
    clicked = _controls(ctx)
    p = salience_params(ctx)
    big = False
    with user_errors("Loading the checkpoint", "Pick a checkpoint trained on this fish."):
        big = salience_cost(ctx, p) > IN_PROCESS_MAX
    job = _matching_job(ctx, p)
    if clicked:
        st.session_state["sal_on"] = True  # also for the URL (sal=<method>)
        quota = access.quota_problem(jobs.list_jobs(ctx.settings.jobs_dir)) if big else ""
        if quota:
            st.warning(quota, icon=":material/block:")
        elif big and (job is None or job.state in ("failed", "cancelled", "crashed")):
            with user_errors("Starting the salience job"):
                job = start_salience_job(ctx, p)
                st.toast("Salience runs in the background — see Train & jobs.")
    if job is not None and not job.finished:
        frac = job.fraction
        text = (
            f"Salience for **{ctx.range_label}** runs in the background ({job.elapsed_s:.0f} s so "
            "far; the rest of the app stays usable). This page shows it when it is done."
        )
        if frac is None:  # the salience command reports no steps: no bar pretending it does
            st.info(text, icon=":material/hourglass_top:")
        else:
            st.progress(frac, text=text)
        _poll_job(job.dir)
    elif job is not None and job.state in ("failed", "crashed"):
        st.error(f"**The salience job failed.** {job.error}", icon=":material/error:")
    # The results live in one slot: while a new map is computed the slot holds a note naming the
    # new epoch, so the previous epoch's map is never shown under the new epoch's heading.
    pending = salience_pending(ctx)
    slot = st.empty() if pending else st.container()
    if pending:
        slot.info(pending_note(ctx), icon=":material/hourglass_top:")
    sal = current_salience(ctx, compute=False)
    with slot.container() if pending else slot:
        if sal is None:
            if big and (job is None or job.state != "running"):
                st.info(
                    f"This is heavy for this decoder ({ctx.stop - ctx.start} frames × "
                    f"{max(1, p['steps'])} steps × {rec.n_neurons:,} neurons): "
                    "**Compute salience** runs it as a background job so the app stays "
                    "responsive (fewer IG steps or Input × Gradient are faster). Small requests "
                    "run at once."
                )
            elif not big:
                st.info(
                    "Press **Compute salience** to attribute the decoder's output to each neuron "
                    "(cached: revisiting is instant)."
                )
            return
        _results(ctx, sal)


@st.fragment(run_every=2.0)
def _poll_job(job_dir: str | Path) -> None:
    job = jobs.load_job(job_dir)
    if job.finished:
        st.rerun(scope="app")


def _results(ctx: Context, sal: SalienceResult) -> None:
    """A salience result: the brain with the top neurons, over time with the tail, per region,
    left vs right, per epoch, and the downloads."""
    rec = _recording(ctx)
    atlas = caching.atlas_for(ctx.atlas_name)
    regions = caching.neuron_regions(ctx.rec_path, ctx.rec_mtime, ctx.atlas_name)
    delta = "" if sal.relative_delta is None else f" · IG completeness gap {sal.relative_delta:.1%}"
    st.caption(f"{map_caption(ctx, sal)} — {sal.summary()}{delta}")
    brain_slot = st.container()  # drawn after the table, whose selection it highlights
    table = top_table(sal, rec, regions)
    picked = _top_neurons(table, sal)
    with brain_slot:
        brain = brain_panel(
            ctx,
            key="sal_brain",
            values=sal.mean_abs,
            value_label="salience",
            highlight=picked,
            title="Salience on the brain",
            confidence=sal.confidence,
        )
    tail = _over_time(ctx, sal, table, picked)
    rt, bars, lat_fig = _regions(sal, rec, regions, atlas)
    _per_epoch(sal, rec, regions, rt, atlas)
    figures = [
        ("Tail and salience over time", tail),
        ("Brain", brain),
        ("Regions", bars),
        ("Left vs right", lat_fig),
    ]
    tables = [("Top neurons", table.head(20)), ("Regions", rt.head(20))]
    _share(ctx, sal, regions, rt, figures, tables)


def _recording(ctx: Context) -> Recording:
    """The page's recording (views draw only once the sidebar opened one)."""
    if ctx.rec is None:
        raise ValueError("the salience view needs a recording; found none selected")
    return ctx.rec


#: The columns of the top-neurons table (``confidence`` after ``salience`` when the result has it).
TOP_COLUMNS = ["rank", "neuron_id", "region", "salience", "signed", "x", "y", "z"]


def top_table(sal: SalienceResult, rec: Recording, regions: np.ndarray) -> pd.DataFrame:
    """The 50 most salient neurons (:func:`decoding.anatomy.top_neurons`).

    Parameters
    ----------
    sal
        The result.
    rec
        Its recording (positions, neuron ids).
    regions
        (N,) region acronym of every neuron.

    Returns
    -------
    pd.DataFrame
        One row per neuron, with a ``confidence`` column after ``salience`` when the result
        carries one.
    """
    from decoding import anatomy

    table = anatomy.top_neurons(
        sal.mean_abs,
        regions,
        rec.positions_um,
        k=50,
        signed=sal.signed_mean,
        neuron_ids=rec.neuron_ids,
    )
    if sal.confidence is not None:
        table.insert(
            table.columns.get_loc("salience") + 1,
            "confidence",
            np.asarray(sal.confidence, dtype=np.float64)[table["neuron"].to_numpy()],
        )
    return table


def _top_neurons(table: pd.DataFrame, sal: SalienceResult) -> int | None:
    """The top-neurons table; returns the index of the neuron picked in it (``None``: none)."""
    columns = list(TOP_COLUMNS)
    if "confidence" in table.columns:
        columns.insert(columns.index("salience") + 1, "confidence")
    config = {
        "salience": st.column_config.NumberColumn(format="%.4g"),
        "signed": st.column_config.NumberColumn(format="%.3g"),
        **{a: st.column_config.NumberColumn(format="%.0f") for a in "xyz"},
    }
    if "confidence" in columns:
        config["confidence"] = st.column_config.NumberColumn(
            format="percent", help=confidence_help(sal.n_neurons)
        )
    with st.container():
        st.markdown("**Top neurons** — pick one to highlight it on the brain and see its ΔF/F")
        if sal.confidence is None:
            st.caption(f"No confidence column: {NO_CONFIDENCE}")
        event = st.dataframe(
            table[columns],
            hide_index=True,
            height=280,
            key="topk_table",
            on_select="rerun",
            selection_mode="single-row",
            column_config=config,
        )
    rows = event.selection.rows
    return int(table.iloc[rows[0]]["neuron"]) if rows else None


def _over_time(
    ctx: Context, sal: SalienceResult, table: pd.DataFrame, picked: int | None
) -> go.Figure:
    """The tail (sum of angles), the picked neuron's ΔF/F and the top neurons' salience over
    time, on one time axis; returns the figure (also for the summary)."""
    rec = _recording(ctx)
    heat, labels = heatmap_rows(ctx, sal)
    trace, trace_label = None, ""
    if picked is not None:
        trace = rec.read_activity(sal.start, sal.stop, [picked])[:, 0]
        trace_label = f"ΔF/F neuron {table.set_index('neuron').loc[picked, 'neuron_id']}"
    preds = None
    if predictions_on():
        with user_errors("Inference"):
            preds = ctx.predictions()
    tail = tail_figure(
        rec.times_s[sal.start : sal.stop],
        rec.behavior[sal.start : sal.stop],
        preds,
        rec.behavior_names,
        units=rec.behavior_units,
        channel="sum",
        epochs=ctx.epoch_spans(),
        heatmap=heat,
        heatmap_labels=labels,
        trace=trace,
        trace_label=trace_label,
        title="Tail (sum of angles), picked neuron's ΔF/F and salience over time",
    )
    chart(tail, key="sal_time_fig")
    return tail


def _regions(
    sal: SalienceResult, rec: Recording, regions: np.ndarray, atlas: Atlas
) -> tuple[pd.DataFrame, go.Figure, go.Figure]:
    """Mean salience per region and left vs right; returns the region table and both figures."""
    from decoding import anatomy

    st.markdown("#### Regions")
    values = sal.mean_abs
    rt = anatomy.region_table(values, regions)
    colors = {r.acronym: r.color for r in atlas.regions}
    r1, r2 = st.columns(2)
    bars = region_bar_figure(
        rt["region"].tolist(),
        rt["mean"].to_numpy(),
        colors=[colors.get(a, "#888888") for a in rt["region"]],
        significant=rt["significant"].fillna(False).tolist(),
        title="Mean salience per region (* = differs from the rest, BH-corrected)",
    )
    chart(bars, where=r1, key="region_bars")
    lat = anatomy.lateralisation(values, rec.positions_um, regions, atlas.midline_x_um)
    per = lateral_rows(lat)
    overall = lat[lat["region"] == "all"].iloc[0]
    lat_fig = laterality_figure(
        per["region"],
        per["mean_left"],
        per["mean_right"],
        title=f"Left vs right (overall LI {overall['li']:+.2f})",
    )
    chart(lat_fig, where=r2, key="lat_fig")
    return rt, bars, lat_fig


def _per_epoch(
    sal: SalienceResult, rec: Recording, regions: np.ndarray, rt: pd.DataFrame, atlas: Atlas
) -> None:
    """Salience of the top regions in the epochs picked (within the result's frames), and the
    lateralisation of each epoch."""
    from decoding import anatomy

    names_here = sorted({e.name for e in rec.epochs if e.start < sal.stop and e.stop > sal.start})
    if len(names_here) < 2:
        st.caption(
            "Per-epoch comparison: pick **whole test split** or **whole recording** as the "
            "epoch to compare e.g. left- vs right-motion epochs."
        )
        return
    default = [n for n in ("left", "right") if n in names_here] or names_here[:2]
    chosen = st.multiselect(
        "Compare epochs (within the frames of this result)",
        names_here,
        default=default,
        key="sal_epochs",
    )
    labels_t = rec.epoch_labels()[sal.start : sal.stop]
    per_epoch = {
        n: np.abs(sal.values[labels_t == n]).mean(axis=0) for n in chosen if (labels_t == n).any()
    }
    if not per_epoch:
        return
    top_regions = rt["region"].head(12).tolist()
    by = {n: [float(v[regions == r].mean()) for r in top_regions] for n, v in per_epoch.items()}
    chart(epoch_comparison_figure(top_regions, by), key="epoch_cmp")
    lbe = anatomy.lateralisation_by_epoch(per_epoch, rec.positions_um, regions, atlas.midline_x_um)
    st.dataframe(
        lbe[lbe["region"] == "all"][["epoch", "mean_left", "mean_right", "li", "p_value"]],
        hide_index=True,
    )


def _share(
    ctx: Context,
    sal: SalienceResult,
    regions: np.ndarray,
    rt: pd.DataFrame,
    figures: list[tuple[str, go.Figure]],
    tables: list[tuple[str, pd.DataFrame]],
) -> None:
    """The downloads, built only when clicked (deferred), named by fish, epoch and model: the
    salience per neuron, the region table ``rt``, a one-page HTML summary of ``figures`` and
    ``tables``."""
    from decoding import anatomy

    rec = _recording(ctx)
    st.markdown("#### Share")
    d1, d2, d3 = st.columns(3)
    downloads.lazy_download(
        d1,
        "Salience per neuron (CSV)",
        lambda: downloads.table_csv(anatomy.result_csv_table(sal, rec, regions)),
        key="dl_sal",
        file_name=downloads.export_name(ctx, f"salience-{sal.method}", "csv"),
    )
    downloads.lazy_download(
        d2,
        "Regions (CSV)",
        lambda: downloads.table_csv(rt),
        key="dl_regions",
        file_name=downloads.export_name(ctx, f"regions-{sal.method}", "csv"),
    )
    facts = _summary_facts(ctx, sal)
    downloads.lazy_download(
        d3,
        "One-page summary (HTML)",
        lambda: downloads.summary_html(f"{rec.fish_id}: salience", facts, figures, tables),
        key="dl_summary",
        file_name=downloads.export_name(ctx, "summary", "html"),
    )


def _summary_facts(ctx: Context, sal: SalienceResult) -> list[tuple[str, str]]:
    """The facts heading the HTML summary: fish, frames, checkpoint, salience, live score."""
    rec = _recording(ctx)
    facts = [
        ("fish", rec.fish_id),
        ("frames", ctx.range_label),
        ("checkpoint", ctx.ckpt.label if ctx.ckpt else ""),
        ("salience", f"{map_caption(ctx, sal).replace('**', '')} — {sal.summary()}"),
    ]
    m = last_metrics(ctx)
    if m is not None:
        score = f"{m['rmse']:.4f} / {m['pearson_r']:.3f} / {m['r2']:.3f}"
        if held_out_note(ctx.split, ctx.start, ctx.stop):
            score += " (training frames: not a held-out score)"
        facts.append((f"RMSE / r / R² ({LIVE_NOTE})", score))
    return facts
