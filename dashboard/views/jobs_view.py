"""Train & jobs: start a fine-tune in the background; follow, cancel and inspect every job."""

from __future__ import annotations

import re
import sys
import time
from pathlib import Path

import streamlit as st

from dashboard import access, caching, eta, jobs
from dashboard.context import Context, chart, user_errors
from dashboard.figures import training_curves_figure
from decoding.spec import MODES, TrainConfig

__all__ = [
    "render",
    "finetune_config",
    "start_finetune",
    "job_list",
    "visible_jobs",
    "refresh_every",
    "JOBS_REFRESH_S",
]

DEFAULTS = TrainConfig()  # the form offers the core's measured default recipe first


def _backbones() -> dict[str, str]:
    from decoding.backbones import REGISTRY

    return {name: entry.description for name, entry in REGISTRY.items()}


def _default_init() -> str:
    """The init the core uses by default for the default backbone (random where no weights ship)."""
    from decoding.backbones import REGISTRY

    entry = REGISTRY.get(DEFAULTS.backbone)
    init = DEFAULTS.init or (entry.default_init if entry else "pretrained")
    return init if init in ("pretrained", "random") else "pretrained"


def _default_name(backbone: str, init: str, mode: str) -> str:
    return f"{backbone}-{init}-{mode}-{time.strftime('%m%d-%H%M%S')}"


def finetune_config(options: dict, device: str) -> TrainConfig:
    """The training options of the fine-tune form's ``options`` on ``device`` (the rest at the
    core's defaults).

    Parameters
    ----------
    options
        ``backbone``, ``init``, ``mode``, ``window``, ``epochs``, ``lr`` and ``max_time`` (seconds,
        0 = none) as the form gives them.
    device
        The dashboard's device (``--device``).

    Returns
    -------
    TrainConfig
        Raises :class:`~decoding.errors.DecodingError` for a value the core refuses.
    """
    return TrainConfig(
        backbone=options["backbone"],
        init=options["init"],
        mode=options["mode"],
        window=int(options["window"]),
        epochs=int(options["epochs"]),
        lr=float(options["lr"]),
        device=device,
        max_time_s=options.get("max_time") or None,
    )


def start_finetune(ctx: Context, options: dict) -> jobs.Job:
    """Start ``python -m decoding train`` on the selected fish as a background job."""
    name = re.sub(r"[^A-Za-z0-9_.-]+", "_", options["name"]).strip("._") or "finetune"
    out = ctx.settings.runs_dir / "finetunes" / name
    config = finetune_config(options, ctx.device)
    argv = [sys.executable, "-m", "decoding", "train", "--recording", ctx.rec_path,
            *config.to_argv(), "--out", str(out), "--progress-file", "{progress}",
            "--cancel-file", "{cancel}", "--quiet"]  # fmt: skip
    title = (
        f"fine-tune {options['backbone']} ({options['init']}, {options['mode']}) on "
        f"{ctx.rec.fish_id} → {out.name}"
    )
    return jobs.start_job(
        ctx.settings.jobs_dir,
        "train",
        title,
        argv,
        outputs={"checkpoint": str(out)},
        params=options,
        owner=access.session_id(),
    )


def visible_jobs(jobs_dir: str | Path) -> list[jobs.Job]:
    """The jobs this browser session may see (every job unless the app is shared)."""
    return [j for j in jobs.list_jobs(jobs_dir) if access.can_see(j)]


def _form(ctx: Context) -> None:
    st.markdown("#### Fine-tune a new checkpoint")
    if ctx.rec is None:
        st.info("Pick a fish in the sidebar first.")
        return
    backbones = _backbones()
    names = list(backbones)
    with st.form("finetune_form"):
        c1, c2, c3 = st.columns(3)
        backbone = c1.selectbox(
            "Backbone",
            names,
            index=names.index(DEFAULTS.backbone) if DEFAULTS.backbone in names else 0,
            key="ft_backbone",
            help="\n".join(f"- **{k}**: {v}" for k, v in backbones.items()),
        )
        init = c2.radio(
            "Init",
            ["pretrained", "random"],
            index=["pretrained", "random"].index(_default_init()),
            horizontal=True,
            key="ft_init",
            help="random = same architecture, random weights (the study's control)",
        )
        mode = c3.radio(
            "Mode",
            MODES,
            index=list(MODES).index(DEFAULTS.mode) if DEFAULTS.mode in MODES else 0,
            horizontal=True,
            key="ft_mode",
            help="frozen: train only the input projection and head; full: everything; "
            "lora: low-rank adapters (PEFT)",
        )
        d1, d2, d3, d4 = st.columns(4)
        window = d1.number_input("Window (frames)", 1, 200, DEFAULTS.window, key="ft_window")
        epochs = d2.number_input("Epochs (max)", 1, 500, 10, key="ft_epochs")
        lr = d3.number_input("Learning rate", 1e-6, 1e-1, DEFAULTS.lr, format="%.0e", key="ft_lr")
        max_time = d4.number_input(
            "Time budget (s, 0 = none)",
            0,
            24 * 3600,
            45,
            step=15,
            key="ft_max_time",
            help="Training stops after this long and keeps the best model so far (loading before "
            "and the test evaluation after add to it: see the estimate below).",
        )
        name = st.text_input(
            "Checkpoint name",
            value="",
            key="ft_name",
            placeholder="default: backbone-init-mode-date",
            help=f"Saved under {ctx.settings.runs_dir / 'finetunes'}",
        )
        all_jobs = jobs.list_jobs(ctx.settings.jobs_dir)
        asked = {"backbone": backbone, "init": init, "mode": mode, "window": int(window)}
        st.caption(
            f"Trains on **{ctx.rec.fish_id}** ({ctx.rec.n_neurons:,} neurons), device "
            f"**{ctx.device}**. "
            + eta.finetune_estimate(
                all_jobs, asked | {"epochs": int(epochs), "max_time": int(max_time)}
            )
        )
        quota = access.quota_problem(all_jobs)
        if quota:
            st.warning(quota, icon=":material/block:")
        submitted = st.form_submit_button(
            "Start fine-tuning",
            icon=":material/rocket_launch:",
            type="primary",
            disabled=bool(quota),
        )
    if submitted:
        options = asked | {"epochs": int(epochs), "lr": float(lr), "max_time": int(max_time)}
        _start_from_form(ctx, options | {"name": name or _default_name(backbone, init, mode)})


def _start_from_form(ctx: Context, options: dict) -> None:
    """Start the submitted fine-tune unless the quota is reached since the form was drawn."""
    quota = access.quota_problem(jobs.list_jobs(ctx.settings.jobs_dir))
    if quota:
        st.warning(quota, icon=":material/block:")
        return
    with user_errors("Starting the fine-tune"):
        job = start_finetune(ctx, options)
        st.session_state.setdefault("_watched_jobs", set()).add(job.id)
        st.success(f"Started **{job.title}**. Follow it below; you can leave this page.")


def _share_toggle(job: jobs.Job) -> None:
    """Shared app: the owner may show a job to every browser session (and take it back)."""
    if not access.is_shared() or not access.can_manage(job):
        return
    key = f"share_{job.id}"
    on = st.toggle("share with everyone", value=bool(job.spec.get("shared")), key=key)
    if on != bool(job.spec.get("shared")):
        jobs.set_shared(job, on)


def _job_card(job: jobs.Job, all_jobs: list[jobs.Job]) -> None:
    icon = {
        "running": ":material/hourglass_top:",
        "starting": ":material/hourglass_top:",
        "done": ":material/check_circle:",
        "failed": ":material/error:",
        "crashed": ":material/dangerous:",
        "cancelled": ":material/stop_circle:",
    }.get(job.state, "•")
    with st.container(border=True):
        head, btn = st.columns([6, 1])
        head.markdown(f"{icon} **{job.title}**  \n`{job.id}` · {job.state} · {job.elapsed_s:.0f} s")
        manage = access.can_manage(job)
        if not job.finished:
            if job.cancel_requested:
                btn.caption("cancelling…")
            elif manage and btn.button("Cancel", key=f"cancel_{job.id}"):
                jobs.cancel_job(job)
                st.rerun(scope="fragment")
            frac, text = eta.progress_line(job, all_jobs)
            if frac is None:  # nothing measured yet: say what it does, no empty bar
                st.caption(f":material/hourglass_top: {text}")
            else:
                st.progress(frac, text=text)
        elif manage and btn.button(
            "Remove",
            key=f"delete_{job.id}",
            help="Remove the job folder (its checkpoint or results stay).",
        ):
            jobs.delete_job(job)
            st.rerun(scope="fragment")
        _share_toggle(job)
        if job.state in ("failed", "crashed"):
            st.error(f"**The job {job.state}.** {job.error}", icon=":material/error:")
        elif job.state == "done" and job.kind == "train" and job.outputs.get("checkpoint"):
            st.success(
                f"Checkpoint saved: `{job.outputs.get('checkpoint')}` — it is in the model "
                "list in the sidebar."
            )
        elif job.state == "cancelled" and job.kind == "train" and job.outputs.get("checkpoint"):
            st.info(
                "Cancelled; the best model so far was kept when training had started: "
                f"`{job.outputs.get('checkpoint')}`."
            )
        if job.history:
            chart(
                training_curves_figure({"run": job.history}, title=""),
                key=f"curve_{job.id}",  # one element, updated in place as the curve grows
            )
        with st.expander("log"):
            st.code(job.log_tail() or "(no output yet)", language="text")


#: Seconds between refreshes of the jobs list while a job runs (none when nothing runs).
JOBS_REFRESH_S = 2.0
#: Elements of the refreshing jobs list are not faded while it refreshes (Streamlit marks them
#: stale for the moment a fragment reruns, which greyed the list out every 2 s).
NO_FADE_CSS = """
<style>
.st-key-jobs_live [data-stale="true"], .st-key-jobs_live [data-stale="true"] * {
  opacity: 1 !important; filter: none !important; transition: none !important;
}
</style>
"""


def refresh_every(all_jobs: list[jobs.Job]) -> float | None:
    """How often the jobs list refreshes itself: every :data:`JOBS_REFRESH_S` while a job runs,
    never when none does (a finished job reruns the page once, which stops the refresh)."""
    return JOBS_REFRESH_S if any(not j.finished for j in all_jobs) else None


def job_list(jobs_dir: str) -> None:
    """All jobs, in a fragment that refreshes alone (without fading) while a job runs."""
    st.markdown(NO_FADE_CSS, unsafe_allow_html=True)
    every = refresh_every(visible_jobs(jobs_dir))
    with st.container(key="jobs_live"):
        st.fragment(_job_list, run_every=every)(jobs_dir)


def _job_list(jobs_dir: str) -> None:
    """All jobs; a finished fine-tune reloads the page (model list) and stops the refresh."""
    all_jobs = visible_jobs(jobs_dir)
    running = {j.id for j in all_jobs if not j.finished}
    before = st.session_state.get("_running_jobs", set())
    st.session_state["_running_jobs"] = running
    if before - running:  # something just finished: refresh the model list and the whole page
        caching.clear_listing_caches()
        st.rerun(scope="app")
    if not all_jobs:
        st.caption("No jobs yet.")
        return
    everyone = jobs.list_jobs(jobs_dir)  # timings of earlier runs may come from any session
    for job in all_jobs[:20]:
        _job_card(job, everyone)


def render(ctx: Context) -> None:
    _form(ctx)
    st.markdown("#### Jobs")
    st.caption(
        f"Background jobs live in `{ctx.settings.jobs_dir}`; they keep running when you "
        "reload or close the page. The list refreshes itself while a job runs."
    )
    job_list(str(ctx.settings.jobs_dir))
