"""Dashboard flows with Streamlit's AppTest: pick → infer → salience → fine-tune → new checkpoint;
errors shown with st.error (never a traceback); URL round trip; the job runner; figures."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

pytest.importorskip("streamlit")
from apptest_helpers import assert_no_crash as _no_crash  # noqa: E402
from apptest_helpers import run_app as _app  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from dashboard import jobs  # noqa: E402
from dashboard.figures import brain_figure, select_points, tail_figure  # noqa: E402
from dashboard.settings import resolve_settings  # noqa: E402
from dashboard.state import Selection, from_query, sync_query, to_query  # noqa: E402


# ------------------------------------------------------------------------------------ fixtures
def _tiny_checkpoint(rec, out: Path, seed: int = 0) -> Path:
    import torch

    from decoding.checkpoint import save_checkpoint
    from decoding.train import TrainConfig, evaluate, fit

    torch.set_num_threads(1)
    res = fit(rec, TrainConfig(backbone="tiny-bert", epochs=1, window=5, device="cpu", seed=seed))
    res.info.metrics["test"] = evaluate(res.model, res.info, rec, part="test").to_dict()
    save_checkpoint(res.model, res.info, out)
    return out


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """A data folder with a small fish, a checkpoint folder with a tiny decoder, a jobs folder."""
    from decoding.synthetic import make_demo_fish

    root = tmp_path_factory.mktemp("dash")
    data, ckpts, runs = root / "data", root / "ckpts", root / "runs"
    data.mkdir()
    rec = make_demo_fish(n_neurons=300, n_frames=400, seed=1)
    rec.save(data / "small_fish.h5")
    _tiny_checkpoint(rec, ckpts / "tiny")
    _tiny_checkpoint(rec, ckpts / "tiny_b", seed=1)  # a second decoder of the same fish
    other = make_demo_fish(n_neurons=120, n_frames=200, seed=2)
    _tiny_checkpoint(other, ckpts / "other_fish")
    return {"root": root, "data": data, "ckpts": ckpts, "runs": runs}


@pytest.fixture()
def env(world, monkeypatch, tmp_path):
    monkeypatch.setenv("NLP4NEURO_DATA", str(world["data"]))
    monkeypatch.setenv("NLP4NEURO_CHECKPOINTS", str(world["ckpts"]))
    monkeypatch.setenv("NLP4NEURO_JOBS", str(tmp_path / "runs" / "jobs"))
    monkeypatch.setenv("NLP4NEURO_CACHE", str(world["root"] / "cache"))
    monkeypatch.delenv("NLP4NEURO_CONFIG", raising=False)
    return world


def _clean(at: AppTest) -> None:
    """No exception and no error message at all (happy paths)."""
    _no_crash(at)
    assert not at.error, [e.value for e in at.error]


def _plotly(at: AppTest) -> list:
    import json

    return [json.loads(c.proto.spec) for c in at.get("plotly_chart")]


def _echarts(at: AppTest) -> list[dict]:
    """Each ECharts chart's option as sent, its ``dataset`` sources as data frames again and its
    screen-reader name under ``"alt"``."""
    import json

    from streamlit.dataframe_util import convert_arrow_bytes_to_pandas_df

    out = []
    for c in at.get("echarts_chart"):
        spec = json.loads(c.proto.spec)
        tables = {d.name: convert_arrow_bytes_to_pandas_df(d.data.data) for d in c.proto.datasets}
        for d in spec.get("dataset", []):
            d["source"] = tables[d["source"]["name"]]
        out.append(spec | {"alt": c.proto.alt})
    return out


def _tail(at: AppTest) -> dict:
    """The Explore view's tail chart (ECharts)."""
    (tail,) = _echarts(at)
    return tail


def _array(value) -> np.ndarray:
    """A Plotly JSON array: a list, or numpy's compact form ``{"dtype", "bdata", "shape"}``."""
    import base64

    if not isinstance(value, dict):
        return np.asarray(value)
    arr = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
    shape = value.get("shape")
    if shape:
        arr = arr.reshape([int(x) for x in str(shape).split(",")])
    return arr


@pytest.fixture(scope="module")
def twin(world, tmp_path_factory):
    """A checkpoint trained on another recording of the same shape (300 neurons, 400 frames) as
    the small fish: it runs on the small fish, but its stored metrics belong to the twin."""
    from decoding.synthetic import make_demo_fish

    folder = tmp_path_factory.mktemp("twin_ckpts")
    rec = make_demo_fish(n_neurons=300, n_frames=400, seed=3)
    rec.save(folder / "twin_fish.h5")
    _tiny_checkpoint(rec, folder / "twin")
    return folder


def _default_title() -> str:
    """Title of the core's default salience method (it may change; the app follows it)."""
    from decoding.salience import DEFAULT_METHOD, METHODS

    return METHODS[DEFAULT_METHOD].title


def _short_id(path: Path) -> str:
    from decoding.provenance import recording_fingerprint, short_id
    from decoding.recording import Recording

    return short_id(recording_fingerprint(Recording.load(path)))


# ------------------------------------------------------------------------------------ flows
def test_first_page_lists_fish_epochs_and_draws_tail_and_brain(env):
    at = _app()
    _clean(at)
    fish = at.selectbox(key="w_fish")
    assert fish.options == ["small_fish  (0 MB)"] or fish.value == "small_fish"
    assert fish.value == "small_fish"
    epoch = at.selectbox(key="w_epoch")
    assert epoch.value == "test"
    assert any("forward" in o for o in epoch.options)
    (brain,) = _plotly(at)
    tail = _tail(at)
    assert tail["series"][0]["name"] == "observed"
    assert tail["series"][0]["markArea"]["data"], "epochs must be shaded"
    kinds = {t["type"] for t in brain["data"]}
    assert {"mesh3d", "scatter3d"} <= kinds
    assert at.query_params["fish"] == ["small_fish"] or at.query_params["fish"] == "small_fish"


def test_url_reopens_the_same_view(env):
    at = _app(fish="small_fish", epoch="2", model="tiny", view="explore", channel="sum")
    _clean(at)
    assert at.selectbox(key="w_epoch").value == "2"
    assert at.selectbox(key="w_model").value.endswith("tiny")
    assert at.radio(key="w_channel").value == "sum"
    # a stale value falls back quietly
    at2 = _app(fish="gone", epoch="999", view="nope")
    _no_crash(at2)
    assert at2.selectbox(key="w_fish").value == "small_fish"
    assert at2.selectbox(key="w_epoch").value == "test"


def test_inference_shows_predictions_and_metrics(env):
    at = _app()
    model_key = str((env["ckpts"] / "tiny").resolve())
    at.selectbox(key="w_model").set_value(model_key).run()
    at.selectbox(key="w_epoch").set_value("1").run()
    at.button(key="run_infer").click().run()
    _clean(at)
    labels = [m.label for m in at.metric]
    assert "RMSE" in labels and "Pearson r" in labels and "R²" in labels
    tail = _tail(at)
    names = {t.get("name") for t in tail["series"]}
    assert {"observed", "predicted"} <= names
    frames = tail["dataset"][0]["source"]  # the epoch's frames, observed as recorded
    from decoding.recording import load_recording

    rec = load_recording(env["data"] / "small_fish.h5")
    ep = rec.epochs[1]
    assert len(frames) == ep.stop - ep.start
    np.testing.assert_allclose(frames["observed 0"], rec.behavior[ep.start : ep.stop, 0], rtol=1e-6)
    assert at.query_params["model"] in (model_key, [model_key])


def test_salience_view_brain_regions_topk(env):
    at = _app(view="salience", epoch="1", model="tiny")
    assert at.selectbox(key="w_model").value.endswith("tiny")
    at.button(key="run_sal").click().run()
    _clean(at)
    assert any(_default_title() in c.value for c in at.caption)  # the core's default method
    assert at.dataframe, "the top-k table is shown"
    figs = _plotly(at)
    assert len(figs) >= 4  # brain, time course, region bars, left/right
    brain = figs[0]
    assert any(t["type"] == "scatter3d" and t["marker"].get("coloraxis") for t in brain["data"])
    assert brain["layout"]["coloraxis"]["colorbar"]["title"]["text"] == "salience"


def test_checkpoint_page_and_comparison(env):
    at = _app(view="checkpoints", model="tiny")
    _no_crash(at)
    assert at.dataframe
    at.selectbox(key="w_compare").set_value(str((env["ckpts"] / "other_fish").resolve())).run()
    # the second checkpoint was trained on another fish: a clear error, no crash
    _no_crash(at)
    assert any("neurons" in e.value for e in at.error)


def test_epochs_in_training_split_are_flagged(env):
    # the small fish's split: train [0, 280), val [280, 320), test [320, 400)
    at = _app(model="tiny")
    epoch = at.selectbox(key="w_epoch")
    label = dict(zip(["test", "all", *map(str, range(14))], epoch.options, strict=True))
    assert label["1"].endswith("· training frames")  # forward, frames 22-60
    assert label["10"].endswith("· validation frames")  # rest, frames 300-322
    assert label["all"].endswith("· training frames")
    assert "frames" not in label["11"] and "frames" not in label["test"]  # held out
    epoch.set_value("1").run()
    at.button(key="run_infer").click().run()
    _clean(at)
    assert any("38 training frames" in w.value and "not a held-out" in w.value for w in at.warning)
    at.selectbox(key="w_epoch").set_value("11").run()
    _clean(at)
    assert [m.label for m in at.metric][:1] == ["RMSE"]
    assert not any("held-out" in w.value for w in at.warning)


def test_checkpoint_comparison_shares_one_colour_range(env):
    at = _app(view="checkpoints", model="tiny", epoch="11")
    at.session_state["sal_method"] = "ixg"  # the cheapest method: this test is about the figure
    at.selectbox(key="w_compare").set_value(str((env["ckpts"] / "tiny_b").resolve())).run()
    at.button(key="cmp_sal").click().run()
    _clean(at)
    brains = [f for f in _plotly(at) if "coloraxis" in f["layout"]]
    assert len(brains) == 2
    ranges = {(f["layout"]["coloraxis"]["cmin"], f["layout"]["coloraxis"]["cmax"]) for f in brains}
    assert len(ranges) == 1, ranges
    assert any("share one colour range" in c.value for c in at.caption)
    # agreement as the core measures it (decoding.salience_check.randomisation_check)
    import re

    agree = [c.value for c in at.caption if c.value.startswith("Spearman ρ = ")]
    assert len(agree) == 1 and re.fullmatch(
        r"Spearman ρ = -?\d\.\d{3}; \d+ of the top \d+ neurons are shared\.", agree[0]
    ), agree


def test_lateral_rows_keep_the_top_regions_of_both_sides():
    import pandas as pd

    from dashboard.views.salience import lateral_rows

    # a right-motion epoch: nMLF is salient on the right only, many regions a little on the left
    rows = [{"region": "all", "mean_left": 0.01, "mean_right": 0.02}]
    rows += [{"region": f"r{i}", "mean_left": 0.01 + i * 1e-4, "mean_right": 0} for i in range(20)]
    rows += [{"region": "nMLF", "mean_left": 0.001, "mean_right": 0.05}]
    rows += [{"region": "Hc", "mean_left": np.nan, "mean_right": 0.03}]  # one side has no neurons
    per = lateral_rows(pd.DataFrame(rows), n=15)
    assert list(per["region"][:2]) == ["nMLF", "Hc"]
    assert len(per) == 15 and "all" not in set(per["region"])


def test_checkpoint_from_another_recording_warns_once_and_labels_its_metrics(
    env, twin, monkeypatch
):
    monkeypatch.setenv("NLP4NEURO_CHECKPOINTS", f"{env['ckpts']}:{twin}")
    twin_id, here_id = _short_id(twin / "twin_fish.h5"), _short_id(env["data"] / "small_fish.h5")
    assert twin_id != here_id
    at = _app(model="twin", epoch="11")
    _clean(at)
    mismatch = [w.value for w in at.warning if "was trained on" in w.value]
    assert len(mismatch) == 1, [w.value for w in at.warning]
    assert twin_id in mismatch[0] and here_id in mismatch[0]
    assert "stored metrics describe the training recording" in mismatch[0]
    assert any(f"stored at training, on {twin_id}" in c.value for c in at.caption)
    (label,) = [o for o in at.selectbox(key="w_model").options if o.startswith("twin ")]
    assert "test RMSE" in label and f"(stored at training, on {twin_id})" in label
    # a warning, not a refusal: inference runs, and its numbers say they are this recording's
    at.button(key="run_infer").click().run()
    _clean(at)
    assert [m.label for m in at.metric][:3] == ["RMSE", "Pearson r", "R²"]
    live = [md.value for md in at.markdown if "This recording, computed now" in md.value]
    assert len(live) == 1 and here_id in live[0]
    assert f"stored at training, on {twin_id}" in live[0]
    assert len([w for w in at.warning if "was trained on" in w.value]) == 1  # still once


def test_checkpoint_from_this_recording_has_no_mismatch_warning(env):
    here_id = _short_id(env["data"] / "small_fish.h5")
    at = _app(model="tiny", epoch="11")
    _clean(at)
    assert not any("trained on" in w.value for w in at.warning), [w.value for w in at.warning]
    assert any(
        "test RMSE" in c.value and f"stored at training, on {here_id}" in c.value
        for c in at.caption
    )
    at2 = _app(view="checkpoints", model="tiny")
    _no_crash(at2)
    table = at2.dataframe[0].value
    row = table[table["checkpoint"].str.endswith("tiny")].iloc[0]
    assert row["test metrics stored at training, on"] == here_id


def test_checkpoint_older_than_fingerprints_says_its_metrics_are_of_an_unknown_recording(
    env, tmp_path, monkeypatch
):
    import json
    import shutil

    old = tmp_path / "old_ckpts" / "before_fingerprints"
    shutil.copytree(env["ckpts"] / "tiny", old)
    config = json.loads((old / "config.json").read_text())
    config.pop("recording", None)
    (old / "config.json").write_text(json.dumps(config))
    monkeypatch.setenv("NLP4NEURO_CHECKPOINTS", str(old.parent))
    at = _app(model="before_fingerprints", epoch="11")
    _clean(at)
    assert any("stored at training, on an unknown recording" in c.value for c in at.caption)
    assert any("records no training-recording fingerprint" in c.value for c in at.caption)
    assert not any("trained on" in w.value for w in at.warning)  # unknown is not a mismatch


def test_top_neurons_have_confidence_and_the_brain_can_be_coloured_by_it(env):
    at = _app(view="salience", epoch="11", model="tiny")
    at.session_state["sal_method"] = "ixg"  # the cheapest method: this test is about the display
    at.button(key="run_sal").click().run()
    _clean(at)
    table = at.dataframe[0].value
    assert "confidence" in table.columns
    conf = dict(zip(table["neuron_id"], table["confidence"], strict=True))
    assert all(0.0 <= c <= 1.0 for c in conf.values()) and max(conf.values()) > 0
    colour = at.radio(key="sal_brain_colour")
    assert colour.value == "salience" and colour.options == ["salience", "confidence"]
    colour.set_value("confidence").run()
    _clean(at)
    brain = _plotly(at)[0]
    axis = brain["layout"]["coloraxis"]
    assert axis["colorbar"]["title"]["text"].startswith("confidence")
    assert (axis["cmin"], axis["cmax"]) == (0.0, 1.0)
    points = [t for t in brain["data"] if t["type"] == "scatter3d" and "coloraxis" in t["marker"]]
    assert points
    drawn = {}
    for t in points:
        ids_vals = _array(t["customdata"])
        colours = _array(t["marker"]["color"])
        assert np.allclose(ids_vals[:, 1], colours, atol=1e-6)
        drawn.update(zip(ids_vals[:, 0].astype(int).tolist(), colours.tolist(), strict=True))
    assert all(0.0 <= v <= 1.0 for v in drawn.values())
    shared = set(drawn) & set(conf)
    assert shared, "the top neurons are drawn"
    assert all(abs(drawn[i] - conf[i]) < 1e-6 for i in shared)
    assert at.query_params["colour"] in ("confidence", ["confidence"])
    # back to salience: its own colour bar again
    at.radio(key="sal_brain_colour").set_value("salience").run()
    brain = _plotly(at)[0]
    assert brain["layout"]["coloraxis"]["colorbar"]["title"]["text"] == "salience"


def test_result_without_confidence_hides_the_column_and_the_colouring(env):
    """A salience file written before confidence existed: no column, no option, a caption."""
    import streamlit as st

    cache = env["root"] / "cache" / "salience"
    before = set(cache.glob("*.h5")) if cache.is_dir() else set()
    at = _app(view="salience", epoch="12", model="tiny", colour="confidence")
    at.session_state["sal_method"] = "ixg"
    at.button(key="run_sal").click().run()
    _clean(at)
    (written,) = set(cache.glob("*.h5")) - before
    with h5py.File(written, "a") as f:  # as an older version of the app wrote it
        del f["confidence"]
    st.cache_resource.clear()
    try:
        at.run()
        _clean(at)
        assert "confidence" not in at.dataframe[0].value.columns
        assert not [r for r in at.radio if r.key == "sal_brain_colour"]
        assert any(c.value.startswith("No confidence column") for c in at.caption)
        assert any(c.value.startswith("Colour by confidence is not available") for c in at.caption)
        brain = _plotly(at)[0]
        assert brain["layout"]["coloraxis"]["colorbar"]["title"]["text"] == "salience"
    finally:
        written.unlink()
        st.cache_resource.clear()


# ------------------------------------------------------------------------------------ issue 11
def _qp(at: AppTest) -> dict[str, str]:
    """The app's URL query parameters as plain strings."""
    return {k: (v[-1] if isinstance(v, list) else v) for k, v in at.query_params.items()}


def test_first_load_selects_a_checkpoint_for_the_fish(env, tmp_path, monkeypatch, twin):
    import shutil

    at = _app()
    _clean(at)
    model = at.selectbox(key="w_model")
    assert model.value and Path(model.value).name in ("tiny", "tiny_b")  # not other_fish (120)
    assert not at.button(key="run_infer").disabled
    assert _qp(at)["model"] == model.value
    # trained on this recording beats a mere neuron-count match, whatever the listing order
    folder = tmp_path / "ck"
    shutil.copytree(twin / "twin", folder / "a_twin")
    shutil.copytree(env["ckpts"] / "tiny", folder / "b_tiny")
    monkeypatch.setenv("NLP4NEURO_CHECKPOINTS", str(folder))
    assert _app().selectbox(key="w_model").value.endswith("b_tiny")
    # only another recording's checkpoint of the same size: still picked (transfer runs)
    shutil.rmtree(folder / "b_tiny")
    assert _app().selectbox(key="w_model").value.endswith("a_twin")
    # none fits: none picked
    monkeypatch.setenv("NLP4NEURO_CHECKPOINTS", str(env["ckpts"] / "other_fish"))
    at = _app()
    assert at.selectbox(key="w_model").value == "" and at.button(key="run_infer").disabled


def test_picking_none_is_kept_by_the_link(env):
    at = _app()
    at.selectbox(key="w_model").set_value("").run()
    _clean(at)
    assert _qp(at)["model"] == "none"
    again = _app(**_qp(at))
    assert again.selectbox(key="w_model").value == ""
    assert again.button(key="run_infer").disabled


def _spy_downloads(monkeypatch) -> tuple[list[dict], dict[str, int]]:
    """Record every download button (label, data, file name) and count export builds."""
    from streamlit.delta_generator import DeltaGenerator

    from dashboard import downloads

    buttons: list[dict] = []
    original = DeltaGenerator.download_button

    def button(self, label, data, *args, **kwargs):
        buttons.append({"label": label, "data": data, "file_name": kwargs.get("file_name")})
        return original(self, label, data, *args, **kwargs)

    monkeypatch.setattr(DeltaGenerator, "download_button", button)
    built = dict.fromkeys(("predictions_csv", "table_csv", "figure_html", "summary_html"), 0)
    for name in built:
        real = getattr(downloads, name)

        def counted(*a, _real=real, _name=name, **k):
            built[_name] += 1
            return _real(*a, **k)

        monkeypatch.setattr(downloads, name, counted)
    return buttons, built


def test_exports_are_built_only_when_asked_and_named_by_fish_epoch_model(env, monkeypatch):
    buttons, built = _spy_downloads(monkeypatch)
    at = _app(model="tiny", epoch="11")
    at.session_state["sal_method"] = "ixg"
    at.button(key="run_infer").click().run()
    at.radio(key="w_view").set_value("salience").run()
    at.button(key="run_sal").click().run()
    _clean(at)
    labels = {b["label"] for b in buttons}
    assert {"Predictions (CSV)", "Tail figure (HTML)", "Brain figure (HTML)"} <= labels
    assert {"Salience per neuron (CSV)", "Regions (CSV)", "One-page summary (HTML)"} <= labels
    assert not any(built.values()), built  # nothing built with the page
    assert all(callable(b["data"]) for b in buttons)
    from decoding.recording import load_recording

    fish = load_recording(env["data"] / "small_fish.h5").fish_id
    for b in buttons:
        assert b["file_name"].startswith(f"{fish}_epoch11-forward_tiny_"), b["file_name"]
    # built when clicked: the deferred data is the export
    latest = {b["label"]: b for b in buttons}
    page = latest["One-page summary (HTML)"]["data"]()
    assert page.startswith(b"<!doctype html>") and b"plotly" in page
    assert latest["Salience per neuron (CSV)"]["data"]().startswith(b"neuron,")
    assert latest["Salience per neuron (CSV)"]["file_name"].endswith("_salience-ixg.csv")


def _spy_salience(monkeypatch) -> list[dict]:
    """Each salience computation that was not answered yet: what the page had sent by then
    (this run's elements: their position, kind and text) — the frontend shows those instead of
    what stood at the same positions before."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    from dashboard import caching

    calls: list[dict] = []
    real = caching.salience

    def spied(key):
        if not caching.SALIENCE.ready(key):
            runner = get_script_run_ctx()._enqueue.__self__  # the AppTest script runner
            sent = []
            for msg in runner.forward_msgs():
                if msg.WhichOneof("type") != "delta" or not msg.delta.HasField("new_element"):
                    continue
                el = msg.delta.new_element
                kind = el.WhichOneof("type")
                body = getattr(el, kind)
                text = getattr(body, "body", "") or getattr(body, "spec", "")
                sent.append((tuple(msg.metadata.delta_path), kind, str(text)))
            calls.append({"range": (key.start, key.stop), "sent": sent})
        return real(key)

    monkeypatch.setattr(caching, "salience", spied)
    return calls


def _path_of(block, want, path=()) -> tuple | None:
    """Position (indices from the main area) of the first element for which ``want`` holds."""
    for i, child in getattr(block, "children", {}).items():
        if want(child):
            return (*path, i)
        found = _path_of(child, want, (*path, i))
        if found:
            return found
    return None


def test_predictions_computed_after_the_page_hold_the_brain_for_the_run_that_has_them(
    env, monkeypatch
):
    """A link asking for predictions not computed yet: the page is sent first with a note in the
    brain's place (not the brain: the run that has the predictions sends it, once)."""
    from streamlit.runtime.scriptrunner import get_script_run_ctx

    from dashboard import caching
    from dashboard.views.explore import _BRAIN_AFTER_PREDICTIONS

    sent: list[list[str]] = []
    real = caching.predictions

    def spied(key):
        if not caching.PREDICTIONS.ready(key):
            runner = get_script_run_ctx()._enqueue.__self__  # the AppTest script runner
            msgs = [m.delta.new_element for m in runner.forward_msgs()
                    if m.WhichOneof("type") == "delta" and m.delta.HasField("new_element")]
            kinds = [(e.WhichOneof("type"), e) for e in msgs]
            sent.append([f"{k}:{getattr(getattr(e, k), 'body', '')}" for k, e in kinds])
        return real(key)

    monkeypatch.setattr(caching, "predictions", spied)
    monkeypatch.setattr(caching.PREDICTIONS, "done", set())  # none answered yet, none on disk
    monkeypatch.setattr(caching.PREDICTIONS, "on_disk", lambda key: False)
    at = _app(model="tiny", epoch="16", pred="1")
    _clean(at)
    assert len(sent) == 1, "the predictions were computed after the page was sent"
    assert f"alert:{_BRAIN_AFTER_PREDICTIONS}" in sent[0]
    assert not [k for k in sent[0] if k.startswith("plotly_chart")], "no brain before them"
    assert any(m.label == "RMSE" for m in at.metric)
    assert not [a for a in at.info if a.value == _BRAIN_AFTER_PREDICTIONS]


def test_epoch_switch_hides_the_previous_salience_map_while_computing(env, monkeypatch):
    import json

    from dashboard import caching
    from dashboard.views import salience as salience_view
    from dashboard.views.explore import _BRAIN_WAITS as BRAIN_WAITS
    from decoding.recording import load_recording

    epochs = load_recording(env["data"] / "small_fish.h5").epochs
    monkeypatch.setattr(caching.SALIENCE, "done", set())  # nothing answered in this process yet
    calls = _spy_salience(monkeypatch)
    at = _app(view="salience", model="tiny", epoch="11")
    at.session_state["sal_method"] = "ixg"
    at.button(key="run_sal").click().run()
    _clean(at)
    caption = [c.value for c in at.caption if c.value.startswith("Salience map for")]
    assert len(caption) == 1 and "**11 · " in caption[0], caption
    assert "Input × Gradient" in caption[0]
    slot = _path_of(at.main, lambda n: getattr(n, "value", "") == caption[0])[:1]

    at.selectbox(key="w_epoch").set_value("12").run()
    _clean(at)
    (call,) = [c for c in calls if c["range"] == (epochs[12].start, epochs[12].stop)]
    # before computing, the slot that held epoch 11's map holds a note naming epoch 12
    note = [(p, t) for p, kind, t in call["sent"] if kind == "alert" and "Computing" in t]
    assert len(note) == 1, call["sent"]
    (where, text) = note[0]
    assert "**12 · " in text and "Input × Gradient" in text
    assert where[1:] == slot, (where, slot)  # delta_path: (main = 0, *indices)
    caption = [c.value for c in at.caption if c.value.startswith("Salience map for")]
    assert len(caption) == 1 and "**12 · " in caption[0], caption
    assert _path_of(at.main, lambda n: getattr(n, "value", "") == caption[0])[:1] == slot

    # Explore, a request above QUICK_MAX: the new epoch's tail and brain are sent before its map
    # is computed (so the old map never shows under the new heading); then the map is drawn,
    # labelled with its epoch
    quick_max = salience_view.QUICK_MAX
    monkeypatch.setattr(salience_view, "QUICK_MAX", 0)
    at.radio(key="w_view").set_value("explore").run()
    at.selectbox(key="w_epoch").set_value("13").run()
    _clean(at)
    (call,) = [c for c in calls if c["range"] == (epochs[13].start, epochs[13].stop)]
    tails = [json.loads(t) for _, kind, t in call["sent"] if kind == "echarts_chart"]
    # the tail, without salience rows; the brain's place holds a note until its map is
    # computed (it is drawn once)
    assert len(tails) == 1 and tails[0]["xAxis"], "the tail"
    assert not [kind for _, kind, _ in call["sent"] if kind == "plotly_chart"], "no brain yet"
    assert any(BRAIN_WAITS in t for _, _kind, t in call["sent"]), call["sent"]
    assert not any(s["type"] == "heatmap" for s in tails[0]["series"])
    assert any(
        kind == "alert" and "Computing" in t and "**13 · " in t for _, kind, t in call["sent"]
    )
    tail, (brain,) = _tail(at), _plotly(at)
    assert "Input × Gradient (the study's) salience · 13 · " in tail["title"]["text"]
    assert "Input × Gradient (the study's) salience · 13 · " in brain["layout"]["title"]["text"]
    assert not any(a.value.startswith("Computing") for a in at.info)

    # a quick request (the default QUICK_MAX): before the map is computed only a note naming the
    # new epoch is sent (no tail: the page is drawn once, with the map), and the previous map's
    # 3D brain gives its place to a note (its WebGL scene redraws on every animation frame)
    def is_brain(node) -> bool:
        return getattr(node, "type", "") == "plotly_chart" and "Neurons coloured by" in getattr(
            getattr(node, "proto", None), "spec", ""
        )

    old_brain = _path_of(at.main, is_brain)
    assert old_brain is not None
    monkeypatch.setattr(salience_view, "QUICK_MAX", quick_max)
    at.selectbox(key="w_epoch").set_value("10").run()
    _clean(at)
    (call,) = [c for c in calls if c["range"] == (epochs[10].start, epochs[10].stop)]
    assert not [k for _, k, _ in call["sent"] if k.endswith("_chart")], call["sent"]
    assert any(
        kind == "alert" and "Computing" in t and "**10 · " in t for _, kind, t in call["sent"]
    ), call["sent"]
    held = [p for p, kind, t in call["sent"] if kind == "alert" and BRAIN_WAITS in t]
    assert [p[1:] for p in held] == [old_brain[:1]], (held, old_brain)
    assert _path_of(at.main, is_brain)[:1] == old_brain[:1]  # drawn again in its place
    tail = _tail(at)
    assert "Input × Gradient (the study's) salience · 10 · " in tail["title"]["text"]
    assert any(s["type"] == "heatmap" for s in tail["series"])
    assert not any(a.value.startswith("Computing") for a in at.info)


def test_shared_link_restores_predictions_and_salience_from_the_cache(env):
    import streamlit as st

    at = _app(model="tiny", epoch="10")
    at.session_state["sal_method"] = "ixg"
    at.button(key="run_infer").click().run()
    metrics = [(m.label, m.value) for m in at.metric]
    at.radio(key="w_view").set_value("salience").run()
    at.button(key="run_sal").click().run()
    _clean(at)
    table = at.dataframe[0].value
    link = _qp(at)
    assert link["pred"] == "1" and link["sal"] == "ixg" and link["view"] == "salience"
    cache = env["root"] / "cache" / "salience"
    files = sorted(cache.glob("*.h5"))
    st.cache_resource.clear()  # a new server process: only the disk cache is left
    opened = _app(**link)  # a new session, no clicks
    _clean(opened)
    assert opened.dataframe[0].value.equals(table)
    assert any("(cached)" in c.value for c in opened.caption)  # served from the disk cache
    assert sorted(cache.glob("*.h5")) == files
    explore = _app(**(link | {"view": "explore"}))
    _clean(explore)
    assert [(m.label, m.value) for m in explore.metric] == metrics
    tail = _tail(explore)
    assert any(s["type"] == "heatmap" for s in tail["series"])  # the salience rows, too


def test_jobs_list_refreshes_only_while_a_job_runs(tmp_path):
    from dashboard.views.jobs_view import JOBS_REFRESH_S, refresh_every

    assert refresh_every([]) is None
    waiting = jobs.start_job(
        tmp_path,
        "t",
        "waits for cancel",
        [
            sys.executable,
            "-c",
            "import os,time\nwhile not os.path.exists(r'{cancel}'): time.sleep(0.05)",
        ],
    )
    assert refresh_every(jobs.list_jobs(tmp_path)) == JOBS_REFRESH_S
    jobs.cancel_job(jobs.load_job(waiting.dir))
    _wait(waiting.dir)
    assert refresh_every(jobs.list_jobs(tmp_path)) is None


def test_presentation_mode_enlarges_text_never_shrinks_it(env):
    import re

    at = _app()
    at.toggle(key="w_present").set_value(True).run()
    _clean(at)
    css = "\n".join(m.value for m in at.markdown if "<style>" in m.value)
    (root,) = re.findall(r"html \{ font-size: ([\d.]+)px", css)
    assert float(root) > 16  # Streamlit's rem unit grows: headings and metric numbers with it
    assert "[class*=" not in css  # a per-class font size overrode (shrank) headings and metrics
    assert _qp(at)["present"] == "1"
    tail = _tail(at)
    assert tail["title"]["textStyle"]["fontSize"] > 14
    assert all(a["nameTextStyle"]["fontSize"] > 10 for a in tail["yAxis"])
    assert all(a["axisLabel"]["fontSize"] > 11 for a in tail["xAxis"])


def test_checkpoint_for_another_fish_is_refused_clearly(env):
    at = _app(model="other_fish")
    at.button(key="run_infer").click().run()
    _no_crash(at)
    assert any("trained on 120 neurons" in w.value for w in at.warning)
    assert any("120 neurons" in e.value and "Inference failed" in e.value for e in at.error)


def test_bad_upload_is_refused_and_good_upload_saved(env):
    at = _app()
    at.file_uploader[0].set_value(("broken.h5", b"this is not hdf5", "application/x-hdf5")).run()
    _no_crash(at)
    assert any("not a usable recording" in e.value for e in at.error)
    assert not list(env["data"].glob("broken*")) and not list(env["data"].glob(".upload*"))
    good = (env["data"] / "small_fish.h5").read_bytes()
    at.file_uploader[0].set_value(("copy of fish.h5", good, "application/x-hdf5")).run()
    _no_crash(at)
    saved = env["data"] / "copy_of_fish.h5"
    try:
        assert saved.exists()
        assert at.selectbox(key="w_fish").value == "copy_of_fish"
    finally:
        saved.unlink(missing_ok=True)


def test_truncated_recording_shows_error_not_traceback(env, tmp_path, monkeypatch):
    data = tmp_path / "data"
    data.mkdir()
    src = (env["data"] / "small_fish.h5").read_bytes()
    (data / "cut.h5").write_bytes(src[: len(src) // 3])
    monkeypatch.setenv("NLP4NEURO_DATA", str(data))
    at = _app()
    _no_crash(at)
    assert any("Opening the recording failed" in e.value for e in at.error)


def test_missing_atlas_shows_error(env, monkeypatch, tmp_path):
    import streamlit as st

    import decoding.atlas as atlas_mod

    monkeypatch.setattr(atlas_mod, "DEFAULT_ATLAS_PATH", tmp_path / "nope.nii.gz")
    atlas_mod.default_atlas.cache_clear()
    st.cache_resource.clear()
    try:
        at = _app()
        _no_crash(at)
        assert any("atlas" in e.value and "regenerate" in e.value for e in at.error)
    finally:
        monkeypatch.undo()
        atlas_mod.default_atlas.cache_clear()
        st.cache_resource.clear()


def test_empty_data_folder_offers_demo(env, tmp_path, monkeypatch):
    monkeypatch.setenv("NLP4NEURO_DATA", str(tmp_path / "empty"))
    at = _app()
    _no_crash(at)
    assert any("No recordings found" in i.value for i in at.info)
    assert at.button(key="make_demo")


def _wait(job_dir: Path, timeout: float = 90.0) -> jobs.Job:
    t0 = time.time()
    while time.time() - t0 < timeout:
        job = jobs.load_job(job_dir)
        if job.finished:
            return job
        time.sleep(0.2)
    raise AssertionError(f"job {job_dir} did not finish: {jobs.load_job(job_dir).status}")


@pytest.mark.slow
def test_finetune_job_creates_a_checkpoint_that_appears(env, tmp_path):
    at = _app(view="jobs")
    _clean(at)
    at.selectbox(key="ft_backbone").set_value("tiny-bert")
    at.radio(key="ft_init").set_value("random")
    at.number_input(key="ft_window").set_value(5)
    at.number_input(key="ft_epochs").set_value(1)
    at.text_input(key="ft_name").set_value("from_the_app")
    submit = next(b for b in at.button if "Start fine-tuning" in b.label)
    submit.click().run()
    _clean(at)
    jobs_dir = tmp_path / "runs" / "jobs"
    (job_dir,) = [d for d in jobs_dir.iterdir() if d.is_dir()]
    job = _wait(job_dir, timeout=180)
    assert job.state == "done", (job.status, job.log_tail())
    assert job.history, "progress events were recorded"
    at.run()
    _clean(at)
    assert any(o.startswith("from_the_app") for o in at.selectbox(key="w_model").options)


@pytest.mark.slow
def test_large_salience_runs_as_a_background_job(env, tmp_path, monkeypatch):
    from dashboard.views import salience as salience_view

    monkeypatch.setattr(salience_view, "IN_PROCESS_MAX", 1)  # everything counts as large
    at = _app(view="salience", epoch="2", model="tiny")
    _clean(at)
    assert any("background job" in i.value for i in at.info)
    at.button(key="run_sal").click().run()
    _clean(at)
    (job_dir,) = [d for d in (tmp_path / "runs" / "jobs").iterdir() if d.is_dir()]
    job = _wait(job_dir, timeout=180)
    assert job.state == "done", (job.status, job.log_tail())
    assert (job_dir / "salience.h5").is_file()
    at.run()
    _clean(at)
    assert any(_default_title() in c.value for c in at.caption)
    assert at.dataframe


# ------------------------------------------------------------------------------------ job runner
def test_job_runner_done_failed_cancelled_crashed(tmp_path):
    py = sys.executable
    ok = jobs.start_job(tmp_path, "t", "ok", [py, "-c", "print({'greeting': 'hello'}['greeting'])"])
    bad = jobs.start_job(
        tmp_path,
        "t",
        "bad",
        [py, "-c", "import sys; print('error: the recording is broken; fix it'); sys.exit(2)"],
    )
    slow = jobs.start_job(
        tmp_path,
        "t",
        "slow",
        [py, "-c", "import os,time\nwhile not os.path.exists(r'{cancel}'): time.sleep(0.05)"],
    )
    assert _wait(ok.dir).state == "done"
    assert "hello" in jobs.load_job(ok.dir).log_tail()
    failed = _wait(bad.dir)
    assert failed.state == "failed"
    assert failed.error == "the recording is broken; fix it"
    jobs.cancel_job(jobs.load_job(slow.dir))
    assert _wait(slow.dir).state == "cancelled"
    # a job whose processes vanished without a final status reads as crashed
    ghost = tmp_path / "ghost"
    ghost.mkdir()
    (ghost / "job.json").write_text('{"id": "ghost", "kind": "t", "created": 0, "argv": []}')
    (ghost / "status.json").write_text('{"state": "running", "supervisor_pid": 999999999}')
    crashed = jobs.load_job(ghost)
    assert crashed.state == "crashed" and "ended without reporting" in crashed.error
    assert [j.title for j in jobs.list_jobs(tmp_path)][:1] == ["slow"]


def test_crashed_job_shows_its_error_in_the_app(env, tmp_path):
    jobs_dir = tmp_path / "runs" / "jobs"
    job = jobs.start_job(
        jobs_dir,
        "train",
        "doomed fine-tune",
        [sys.executable, "-c", "import sys; print('error: out of patience'); sys.exit(2)"],
    )
    _wait(job.dir)
    at = _app(view="jobs")
    _no_crash(at)
    assert any("out of patience" in e.value for e in at.error)


# ------------------------------------------------------------------------------------ units
def test_selection_query_round_trip():
    sel = Selection(fish="f", epoch="3", model="runs/x", device="cpu", view="salience")
    q = to_query(sel)
    assert from_query(q) == sel
    assert "present" not in q and "channel" not in q  # defaults stay out of the URL
    params = {"stale": "1", "fish": "old"}
    sync_query(params, sel)
    assert params == q
    assert from_query({"view": "bogus", "device": "tpu"}) == Selection()


def test_settings_precedence(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[dashboard]\ndata_dirs = ["/from/config"]\njobs_dir = "/j"\n')
    env = {"NLP4NEURO_CONFIG": str(cfg)}
    assert resolve_settings([], env).data_dirs == (Path("/from/config"),)
    env["NLP4NEURO_DATA"] = "/a:/b"
    assert resolve_settings([], env).data_dirs == (Path("/a"), Path("/b"))
    s = resolve_settings(["--data-dir", "/c", "--jobs-dir", "/jj"], env)
    assert s.data_dirs == (Path("/c"),) and s.jobs_dir == Path("/jj")
    assert resolve_settings([], {}).data_dirs[0].parts[-2:] == ("data", "demo")


def test_settings_say_where_each_folder_came_from(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[dashboard]\ncheckpoint_dirs = ["/ck"]\njobs_dir = "/j"\n')
    env = {"NLP4NEURO_CONFIG": str(cfg), "NLP4NEURO_JOBS": "/env/a:/b/jobs"}
    s = resolve_settings(["--atlas-dir", "/at", "--atlas-dir", "/at"], env)
    assert s.sources == {
        "data": "default",
        "checkpoints": "nlp4neuro.toml",
        "atlases": "--atlas-dir",
        "jobs": "NLP4NEURO_JOBS",
    }
    assert s.checkpoint_dirs == (Path("/ck"),) and s.atlas_dirs == (Path("/at"),)
    assert s.jobs_dir == Path("/env/a:/b/jobs") and s.runs_dir == Path("/env/a:/b")
    assert resolve_settings([], {"NLP4NEURO_CONFIG": str(cfg)}).jobs_dir == Path("/j")


def test_figures_are_compact_and_decimated():
    rng = np.random.default_rng(0)
    n = 100_000
    pos = rng.uniform(0, 500, size=(n, 3)).astype(np.float32)
    vals = rng.random(n).astype(np.float32)
    idx = select_points(vals, n, 20_000)
    assert len(idx) == 20_000
    assert set(np.argsort(-vals)[:10_000]) <= set(idx.tolist())  # the salient half is kept
    fig = brain_figure(pos, values=vals, max_points=20_000)
    drawn = sum(len(t.x) for t in fig.data if t.type == "scatter3d")
    assert drawn <= 20_000
    assert fig.layout.meta["n_neurons"] == n
    t = np.arange(50) / 1.1
    obs = rng.normal(size=(50, 6)).astype(np.float32)
    f = tail_figure(
        t,
        obs,
        obs * 0.5,
        [f"theta_{i}" for i in range(6)],
        channel="all",
        heatmap=rng.random((50, 5)),
        heatmap_labels=list("abcde"),
    )
    assert sum(1 for tr in f.data if tr.type == "heatmap") == 1
    assert sum(1 for tr in f.data if tr.name == "predicted") == 6


def test_upload_validation_keeps_folder_clean(tmp_path, world):
    from dashboard.sidebar import save_upload
    from decoding.errors import DecodingError

    with pytest.raises(DecodingError, match="not an HDF5 file"):
        save_upload(b"garbage", "x.h5", tmp_path)
    with h5py.File(tmp_path / "empty.h5", "w"):
        pass
    with pytest.raises(DecodingError):
        save_upload((tmp_path / "empty.h5").read_bytes(), "empty2.h5", tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.h5"]
    good = (world["data"] / "small_fish.h5").read_bytes()
    a = save_upload(good, "fish.h5", tmp_path)
    b = save_upload(good, "fish.h5", tmp_path)
    assert a.name == "fish.h5" and b.name == "fish-2.h5"
