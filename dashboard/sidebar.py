"""The sidebar: data folders, fish (with upload), epoch, model, atlas, device, presentation mode.

Widgets are seeded from the URL on a session's first run (a shared link reopens the same view);
after that the widgets are the truth and the URL follows them. :func:`render_sidebar` reads as the
sidebar does: fish, model, epoch, atlas, device, presentation mode, folders; then the view switch.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import streamlit as st

from dashboard import access, caching
from dashboard.caching import CheckpointEntry
from dashboard.context import Context, epoch_label, resolve_range, user_errors
from dashboard.results_state import seed_from_url
from dashboard.settings import Settings
from dashboard.state import DEVICES, NO_MODEL, TEST_SPLIT, VIEWS, WHOLE, Selection, from_query
from decoding.errors import DecodingError
from decoding.recording import Recording

__all__ = [
    "url_selection",
    "seed_widget",
    "seeded",
    "default_model",
    "render_sidebar",
    "save_upload",
]


def url_selection() -> Selection:
    """The selection the URL held when this session started.

    Its ``pred``/``sal`` turn the predictions and salience on (see
    :func:`dashboard.results_state.seed_from_url`).

    Returns
    -------
    Selection
        Read once per session and kept in ``session_state``.
    """
    if "_url_sel" not in st.session_state:
        st.session_state["_url_sel"] = from_query(st.query_params.to_dict())
    seed_from_url(st.session_state["_url_sel"])
    return st.session_state["_url_sel"]


def seed_widget(key: str, options: list[str], url_value: str) -> None:
    """Before a widget with ``key`` is drawn: start it at the URL's value, drop stale values.

    Parameters
    ----------
    key
        The widget's key in ``session_state``.
    options
        The widget's options now (a stored value no longer among them is dropped).
    url_value
        The URL's value, used when the widget has none yet and it is an option.
    """
    if key in st.session_state and st.session_state[key] not in options:
        del st.session_state[key]
    if key not in st.session_state and url_value in options:
        st.session_state[key] = url_value


def _resolve_alias(value: str, keys: list[str]) -> str:
    """A URL may name a checkpoint by its folder name only; resolve it when unambiguous."""
    if not value or value in keys:
        return value
    hits = [k for k in keys if Path(k).name == Path(value).name]
    return hits[0] if len(hits) == 1 else value


def default_model(ctx: Context) -> str:
    """Key of the checkpoint to pick for the selected fish.

    Candidates have the fish's neuron count and load; those trained on this very recording
    (matching content fingerprint, see ``caching.recording_mismatch``) come first, then the
    lowest stored test RMSE.

    Parameters
    ----------
    ctx
        The selection (recording opened, checkpoints listed).

    Returns
    -------
    str
        The checkpoint's key, ``""`` when none fits.
    """
    rec = ctx.rec
    if rec is None:
        return ""
    fits = [c for c in ctx.checkpoints if not c.error and c.n_neurons == rec.n_neurons]

    def rank(c: CheckpointEntry) -> tuple[bool, float]:
        try:
            other = caching.recording_mismatch(
                str(c.path), caching.mtime_ns(c.path), ctx.rec_path, ctx.rec_mtime
            )
        except (DecodingError, OSError):
            other = "unreadable"
        rmse = c.metrics.get("rmse")
        return other is not None, float(rmse) if isinstance(rmse, int | float) else float("inf")

    return min(fits, key=rank).key if fits else ""


def _model_touched() -> None:
    """The user picked a model: a later fish switch keeps "— none —" when that was the pick."""
    st.session_state["_model_touched"] = True


def _seed_model(ctx: Context, keys: list[str], url: Selection, fish: str) -> None:
    """Before the model selectbox: the URL's model on a session's first run (``none`` keeps
    none), else a checkpoint for the fish (:func:`default_model`); again when the fish changes
    and the model is none (not picked by the user) or does not fit the new fish."""
    previous_fish = st.session_state.get("_model_fish")
    st.session_state["_model_fish"] = fish
    if "w_model" in st.session_state and st.session_state["w_model"] not in keys:
        del st.session_state["w_model"]
    if "w_model" not in st.session_state:
        if url.model == NO_MODEL:
            st.session_state["w_model"] = ""
            st.session_state["_model_touched"] = True
            return
        wanted = _resolve_alias(url.model, keys) if previous_fish is None else ""
        st.session_state["w_model"] = wanted if wanted and wanted in keys else default_model(ctx)
        return
    if previous_fish is None or previous_fish == fish or ctx.rec is None:
        return
    current = ctx.checkpoint_by_key(st.session_state["w_model"])
    if current is None and st.session_state.get("_model_touched"):
        return
    if current is None or current.n_neurons != ctx.rec.n_neurons:
        st.session_state["w_model"] = default_model(ctx)


def _safe_name(name: str) -> str:
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(name).name).strip("._") or "recording"
    return stem if stem.lower().endswith((".h5", ".hdf5")) else stem + ".h5"


def save_upload(data: bytes, name: str, folder: Path) -> Path:
    """Validate an uploaded recording and move it into ``folder``.

    The bytes go to a hidden temporary file in the folder first; only a file that loads as a valid
    recording gets a visible name (never replacing an existing file: ``name-2.h5``...). A bad upload
    raises :class:`DecodingError` and leaves nothing behind.

    Parameters
    ----------
    data, name
        The uploaded bytes and the file name they came with.
    folder
        Where recordings are uploaded (created if missing).

    Returns
    -------
    Path
        The saved recording.
    """
    from decoding.recording import Recording

    folder.mkdir(parents=True, exist_ok=True)
    final = folder / _safe_name(name)
    n = 2
    while final.exists():
        final = folder / f"{Path(_safe_name(name)).stem}-{n}.h5"
        n += 1
    tmp = folder / f".upload-{final.name}.tmp"
    try:
        tmp.write_bytes(data)
        rec = Recording.load(tmp)  # validates everything
        del rec
        shutil.move(str(tmp), str(final))
    finally:
        if tmp.exists():
            tmp.unlink()
    return final


def _upload_box(settings: Settings) -> None:
    with st.expander("Upload a recording"):
        st.caption(
            "An `nlp4neuro-recording` HDF5 file (see README, *Recording file format*). "
            f"It is checked, "
            f"then saved into `{settings.upload_dir}`."
        )
        gen = st.session_state.get("_upload_gen", 0)
        limit = access.upload_limit_mb()  # shared on a network: a smaller limit per file
        up = st.file_uploader(
            "HDF5 recording",
            type=["h5", "hdf5"],
            key=f"upload_{gen}",
            max_upload_size=limit,
            help=f"At most {limit} MB per file while the app is shared." if limit else None,
        )
        if up is not None and limit and up.size > limit * 2**20:
            st.error(f"**This upload is larger than {limit} MB**, the limit while shared.")
            up = None
        if up is not None:
            try:
                path = save_upload(up.getvalue(), up.name, settings.upload_dir)
            except DecodingError as exc:
                st.error(
                    f"**This upload is not a usable recording.** {exc}", icon=":material/error:"
                )
            except OSError as exc:
                st.error(
                    f"**Could not save the upload:** {exc}. Check that "
                    f"`{settings.upload_dir}` is writable.",
                    icon=":material/error:",
                )
            else:
                st.session_state["_upload_gen"] = gen + 1
                st.session_state["_pending_fish"] = path.stem
                st.session_state["_flash"] = f"Saved {path.name} into {path.parent}."
                st.rerun()


def _no_recordings(settings: Settings) -> None:
    folders = ", ".join(f"`{d}`" for d in settings.data_dirs)
    st.info(
        f"No recordings found in {folders} (set by {settings.sources.get('data', 'default')}). "
        "Create the demo fish, upload a recording in the sidebar, or start the app with "
        "`streamlit run dashboard/app.py -- --data-dir FOLDER`."
    )
    if st.button("Create the demo fish here", key="make_demo"):
        with user_errors("Creating the demo fish"), st.spinner("Generating the demo fish (~10 s)…"):
            from decoding.synthetic import ensure_demo_fish

            ensure_demo_fish(settings.data_dirs[0])
            st.rerun()


def seeded(
    widget: Callable[..., Any], label: str, options: list[str], *, key: str, url_value: str,
    **kwargs: Any,
) -> Any:  # fmt: skip
    """Draw a widget (``st.selectbox``, ``st.radio``...) started at the URL's value.

    Parameters
    ----------
    widget
        The Streamlit widget function, called as ``widget(label, options, key=key, **kwargs)``.
    label, options, key
        As for the widget.
    url_value
        The URL's value (see :func:`seed_widget`).
    **kwargs
        More arguments of the widget (``format_func``, ``help``...).

    Returns
    -------
    Any
        The widget's value.
    """
    seed_widget(key, options, url_value)
    return widget(label, options, key=key, **kwargs)


def _checkpoint_dirs(settings: Settings) -> tuple[Path, ...]:
    """The checkpoint folders and the folder the app's fine-tunes land in, each once."""
    return tuple(dict.fromkeys((*settings.checkpoint_dirs, settings.runs_dir)))


def _fish_picker(ctx: Context, url: Selection) -> str:
    """The fish selectbox (a just-uploaded recording selected) and the upload box; opens the
    picked recording into ``ctx`` (errors shown). Returns the recording's key, ``""`` if none."""
    recordings = ctx.recordings
    keys = [r.key for r in recordings]
    if st.session_state.get("_pending_fish") in keys:  # just uploaded: select it
        st.session_state["w_fish"] = st.session_state.pop("_pending_fish")
    sizes = {r.key: f"{r.key}  ({r.size_mb:.0f} MB)" for r in recordings}
    fish = seeded(
        st.selectbox,
        "Fish (recording)",
        keys,
        key="w_fish",
        url_value=url.fish,
        placeholder="no recordings found",
        format_func=sizes.__getitem__,
        help="Recordings found in the data folders: " + ", ".join(map(str, ctx.settings.data_dirs)),
    )
    _upload_box(ctx.settings)
    if fish:
        ctx.rec_entry = next(r for r in recordings if r.key == fish)
        ctx.rec_mtime = caching.mtime_ns(ctx.rec_entry.path)
        with user_errors("Opening the recording", "Pick another fish or fix/replace the file."):
            ctx.rec = caching.recording(str(ctx.rec_entry.path), ctx.rec_mtime)
    return fish or ""


def _model_picker(ctx: Context, url: Selection, fish: str) -> str:
    """The model selectbox (seeded by :func:`_seed_model`); sets ``ctx.ckpt`` and shows its
    caption. Returns the URL's value: the key, :data:`NO_MODEL` for an explicit none, or ``""``."""
    checkpoints = ctx.checkpoints
    keys = [""] + [c.key for c in checkpoints]
    labels = {c.key: c.label for c in checkpoints}
    _seed_model(ctx, keys, url, fish)
    model_key = st.selectbox(
        "Model (checkpoint)",
        keys,
        key="w_model",
        format_func=lambda k: labels[k] if k else "— none —",
        on_change=_model_touched,
        help="Checkpoint folders found under: "
        + ", ".join(map(str, _checkpoint_dirs(ctx.settings)))
        + ". A checkpoint for this fish (same neurons, trained on this recording if any) is "
        "picked by default.",
    )
    if model_key:
        ctx.ckpt = ctx.checkpoint_by_key(model_key)
        ctx.ckpt_mtime = caching.mtime_ns(ctx.ckpt.path) if ctx.ckpt else 0
        if ctx.ckpt is not None:
            _checkpoint_caption(ctx)
    explicit_none = not model_key and st.session_state.get("_model_touched")
    return model_key or (NO_MODEL if explicit_none else "")


def _epoch_picker(ctx: Context, rec: Recording, url: Selection) -> str:
    """The epoch selectbox; sets ``ctx.split`` (the checkpoint's) and the frame range."""
    info = None
    if ctx.ckpt is not None and not ctx.ckpt.error:
        with user_errors("Reading the checkpoint"):
            info = caching.checkpoint_info(str(ctx.ckpt.path), ctx.ckpt_mtime)
    ctx.split = caching.split_for(rec.n_frames, info)
    epoch = seeded(
        st.selectbox,
        "Stimulus epoch",
        [TEST_SPLIT, WHOLE] + [str(i) for i in range(len(rec.epochs))],
        key="w_epoch",
        url_value=url.epoch,
        format_func=lambda v: epoch_label(rec, v, ctx.split),
        help="Named epochs of the recording's stimulus protocol, the held-out test split "
        "(70/10/20 chronological split), or the whole recording.",
    )
    ctx.start, ctx.stop = resolve_range(rec, epoch, ctx.split)
    return epoch


def _device_picker(ctx: Context, url: Selection) -> str:
    """The device radio; sets ``ctx.device`` (the CPU when CUDA was asked for but is missing).
    Returns the widget's value (for the URL)."""
    status = caching.device_status()
    no_cuda = "not" in status["cuda"]
    device = seeded(
        st.radio,
        "Device",
        list(DEVICES),
        key="w_device",
        url_value=url.device,
        horizontal=True,
        format_func=lambda d: "cuda (none)" if d == "cuda" and no_cuda else d,
        help="auto picks CUDA when present. Here: "
        + "; ".join(f"{k}: {v}" for k, v in status.items()),
    )
    st.caption(f"auto {status['auto']} · cuda: {status['cuda']}")
    ctx.device = device
    if device == "cuda" and no_cuda:
        st.warning("CUDA is not available on this machine; using the CPU instead.")
        ctx.device = "cpu"
    return device


def _presentation_toggle(ctx: Context, url: Selection) -> str:
    """The presentation-mode toggle (seeded from the URL); returns the URL's ``present``."""
    if "w_present" not in st.session_state:
        st.session_state["w_present"] = url.present == "1"
    ctx.presentation = st.toggle(
        "Presentation mode", key="w_present", help="Larger fonts and figures for a projector."
    )
    return "1" if ctx.presentation else ""


def _folders_note(settings: Settings) -> None:
    """Which folders the app reads, and what set them."""
    with st.expander("Folders"):
        st.caption(
            "**data**: "
            + ", ".join(f"`{d}`" for d in settings.data_dirs)
            + f" ({settings.sources.get('data')})  \n**checkpoints**: "
            + ", ".join(f"`{d}`" for d in _checkpoint_dirs(settings))
            + "  \n**atlases**: "
            + (", ".join(f"`{d}`" for d in settings.atlas_dirs) or "shipped schematic only")
            + f" ({settings.sources.get('atlases', 'default')})"
            + f"  \n**jobs**: `{settings.jobs_dir}`"
        )


def render_sidebar(settings: Settings) -> Context:
    """Draw the sidebar and the view switch.

    Parameters
    ----------
    settings
        The folders the app reads.

    Returns
    -------
    Context
        The resolved selection: recording opened, checkpoint, frame range, atlas, device, and
        ``sel`` (what the URL should say).
    """
    url = url_selection()
    ctx = Context(
        settings=settings,
        sel=url,
        recordings=caching.list_recordings(settings.data_dirs),
        checkpoints=caching.list_checkpoints(_checkpoint_dirs(settings)),
    )
    with st.sidebar:
        st.markdown("### NLP4Neuro Explorer")
        if "_flash" in st.session_state:
            st.success(st.session_state.pop("_flash"))
        fish = _fish_picker(ctx, url)
        sel = url.with_(fish=fish, model=_model_picker(ctx, url, fish))
        if ctx.rec is not None:
            sel = sel.with_(epoch=_epoch_picker(ctx, ctx.rec, url))
        sel = sel.with_(atlas=_atlas_picker(ctx, url))
        sel = sel.with_(device=_device_picker(ctx, url))
        sel = sel.with_(present=_presentation_toggle(ctx, url))
        _folders_note(settings)
    # the view switch, at the top of the main area
    view = seeded(
        st.radio,
        "View",
        list(VIEWS),
        key="w_view",
        url_value=url.view,
        horizontal=True,
        format_func=VIEWS.__getitem__,
        label_visibility="collapsed",
    )
    # the brain's colouring (drawn by some views only) is remembered across views
    ctx.sel = sel.with_(view=view, colour=st.session_state.get("_colour_by", url.colour))
    return ctx


SHIPPED_ATLAS = "schematic zebrafish brain (shipped)"


def _atlas_picker(ctx: Context, url: Selection) -> str:
    """The Atlas selectbox; sets ``ctx.atlas_key`` (``""`` when the choice fails to load).

    Returns the widget's value for the URL. A recording whose ``atlas`` attribute names another
    atlas gets a warning (its positions may not be in this atlas's space), not a refusal.
    """
    settings = ctx.settings
    atlases = caching.list_atlases(settings.atlas_dirs)
    keys = [""] + [a.key for a in atlases]
    labels = {a.key: a.label for a in atlases}
    key = seeded(
        st.selectbox,
        "Atlas",
        keys,
        key="w_atlas",
        url_value=url.atlas,
        format_func=lambda k: labels.get(k, SHIPPED_ATLAS) if k else SHIPPED_ATLAS,
        help="Reference atlas for the 3D brain and region statistics: the shipped schematic "
        "brain, or atlases found in the atlas folders ("
        + (
            ", ".join(map(str, settings.atlas_dirs))
            or "none configured; use --atlas-dir, NLP4NEURO_ATLASES or atlas_dirs in nlp4neuro.toml"
        )
        + ").",
    )
    key = key or ""
    atlas = None
    if key:
        with user_errors(
            "Loading the atlas",
            "Pick another atlas or fix/replace the file (check it with "
            "`python -m decoding atlas-info PATH`). The shipped schematic atlas is used meanwhile.",
        ):
            atlas = caching.atlas_for(key)
    else:
        try:
            atlas = caching.atlas_for("")
        except (DecodingError, OSError):  # the views say what is missing and how to regenerate it
            atlas = None
    ctx.atlas_key = key if atlas is not None else ""
    rec_atlas = ctx.rec.atlas if ctx.rec is not None else ""
    if atlas is not None:
        st.caption(f"`{atlas.name}` · {len(atlas.regions)} regions")
        if rec_atlas and rec_atlas != atlas.name:
            st.warning(
                f"This recording's positions are in the atlas `{rec_atlas}`, not "
                f"`{atlas.name}`: they may not be in this atlas's space, so regions and meshes "
                "may not line up. Pick the recording's atlas if you have it."
            )
    return key


def _checkpoint_caption(ctx: Context) -> None:
    """The checkpoint's summary, its stored test metrics labelled with the recording they were
    computed on, and one warning when it was trained on another recording than the selected one
    (inference still runs; a different neuron count also says it cannot)."""
    c = ctx.ckpt
    assert c is not None
    m = c.metrics
    bits = [f"**{c.backbone}**", c.init, c.mode]
    if c.window:
        bits.append(f"window {c.window}")
    line = " · ".join(b for b in bits if b)
    if isinstance(m.get("rmse"), int | float):
        line += f"  \ntest RMSE {m['rmse']:.3f}"
        if isinstance(m.get("pearson_r"), int | float):
            line += f" · r {m['pearson_r']:.2f}"
        if isinstance(m.get("r2"), int | float):
            line += f" · R² {m['r2']:.2f}"
        line += f" — {c.stored_note}"
    st.caption(line)
    rec = ctx.rec
    if rec is None or c.error:
        return
    mismatch, fingerprinted = None, False
    other_neurons = c.n_neurons is not None and c.n_neurons != rec.n_neurons
    if not other_neurons:
        with user_errors("Comparing the checkpoint's training recording with this fish"):
            fingerprinted = bool(caching.checkpoint_info(str(c.path), ctx.ckpt_mtime).recording)
            mismatch = caching.recording_mismatch(
                str(c.path), ctx.ckpt_mtime, ctx.rec_path, ctx.rec_mtime
            )
    if other_neurons:
        st.warning(
            f"This checkpoint was trained on {c.n_neurons} neurons; the fish has "
            f"{rec.n_neurons}. Pick a checkpoint trained on this fish, or fine-tune one "
            "(Train & jobs). Its stored metrics describe "
            + (c.metrics_on or "its training recording")
            + ", not this one.",
            icon=":material/warning:",
        )
    elif mismatch and fingerprinted:  # trained on another recording: a warning, not a refusal
        st.warning(_sentence(mismatch), icon=":material/warning:")
    elif mismatch:  # a checkpoint older than fingerprints: nothing known either way
        st.caption(_sentence(mismatch))


def _sentence(text: str) -> str:
    text = text.strip()
    return (text[:1].upper() + text[1:]).rstrip(".") + "."
