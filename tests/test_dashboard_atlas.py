"""The dashboard's Atlas picker: atlases found in the atlas folders, the choice in the URL, the
brain and region statistics drawn with the chosen atlas, and a corrupt atlas shown with st.error
(the shipped atlas is used instead)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("streamlit")
from apptest_helpers import assert_no_crash as _no_crash  # noqa: E402
from apptest_helpers import run_app as _app  # noqa: E402
from streamlit.testing.v1 import AppTest  # noqa: E402

from dashboard.caching import list_atlases  # noqa: E402
from dashboard.settings import resolve_settings  # noqa: E402


def _halves_atlas(path: Path) -> Path:
    """A 20 µm atlas covering the demo fish: left half HALF_L (id 1), right half HALF_R (id 2)."""
    from decoding.atlas import Atlas, Region

    labels = np.zeros((25, 55, 15), dtype=np.uint8)
    labels[:12] = 1
    labels[12:] = 2
    regions = [
        Region(1, "left half", "HALF_L", group="Halves", side="L", color="#ff0000"),
        Region(2, "right half", "HALF_R", group="Halves", side="R", color="#0000ff"),
    ]
    return Atlas("test_halves", labels, (20.0, 20.0, 20.0), regions).save(path)


@pytest.fixture(scope="module")
def folders(tmp_path_factory):
    from decoding.synthetic import make_demo_fish

    root = tmp_path_factory.mktemp("dash_atlas")
    data, atlases = root / "data", root / "atlases"
    data.mkdir()
    atlases.mkdir()
    rec = make_demo_fish(n_neurons=200, n_frames=200, seed=3)
    rec.save(data / "fish.h5")
    _halves_atlas(atlases / "halves.nii.gz")
    return {"root": root, "data": data, "atlases": atlases, "rec": rec}


@pytest.fixture(scope="module")
def checkpoint(folders):
    import torch

    from decoding.checkpoint import save_checkpoint
    from decoding.train import TrainConfig, fit

    torch.set_num_threads(1)
    res = fit(
        folders["rec"], TrainConfig(backbone="tiny-bert", epochs=1, window=5, device="cpu", seed=0)
    )
    return save_checkpoint(res.model, res.info, folders["root"] / "ckpts" / "tiny")


@pytest.fixture()
def env(folders, monkeypatch, tmp_path):
    monkeypatch.setenv("NLP4NEURO_DATA", str(folders["data"]))
    monkeypatch.setenv("NLP4NEURO_CHECKPOINTS", str(tmp_path / "no_ckpts"))
    monkeypatch.setenv("NLP4NEURO_JOBS", str(tmp_path / "runs" / "jobs"))
    monkeypatch.setenv("NLP4NEURO_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("NLP4NEURO_ATLASES", str(folders["atlases"]))
    monkeypatch.delenv("NLP4NEURO_CONFIG", raising=False)
    return folders


def _brain(at: AppTest) -> str:
    """The 3D brain figure's JSON (the figure with mesh3d traces)."""
    figs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    brains = [f for f in figs if any(t["type"] == "mesh3d" for t in f["data"])]
    assert brains, "the 3D brain is drawn"
    return json.dumps(brains[0])


def _param(at: AppTest, key: str) -> str:
    value = at.query_params.get(key, "")
    return value[-1] if isinstance(value, list) else value


def test_atlas_settings_and_listing(tmp_path, folders):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[dashboard]\natlas_dirs = ["/from/config"]\n')
    env = {"NLP4NEURO_CONFIG": str(cfg)}
    assert resolve_settings([], {}).atlas_dirs == ()
    assert resolve_settings([], env).atlas_dirs == (Path("/from/config"),)
    env["NLP4NEURO_ATLASES"] = "/a:/b"
    assert resolve_settings([], env).atlas_dirs == (Path("/a"), Path("/b"))
    assert resolve_settings(["--atlas-dir", "/c"], env).atlas_dirs == (Path("/c"),)
    # a BrainGlobe folder given directly is itself an atlas; sidecar CSVs are not listed
    bg = tmp_path / "bg_atlas"
    bg.mkdir()
    (bg / "structures.json").write_text("[]")
    found = list_atlases((folders["atlases"], bg, tmp_path / "missing"))
    assert [e.path.name for e in found] == ["halves.nii.gz", "bg_atlas"]


def test_picker_lists_atlas_and_switching_changes_regions(env):
    at = _app()
    _no_crash(at)
    assert not at.error, [e.value for e in at.error]
    picker = at.selectbox(key="w_atlas")
    assert picker.value == ""
    assert picker.options == ["schematic zebrafish brain (shipped)", "halves.nii.gz  (atlases/)"]
    shipped = _brain(at)
    assert "HALF_L" not in shipped and "HALF_R" not in shipped
    assert not any("may not be in this atlas" in w.value for w in at.warning)
    assert "atlas" not in at.query_params  # the default stays out of the URL

    atlas_key = str((env["atlases"] / "halves.nii.gz").resolve())
    at.selectbox(key="w_atlas").set_value(atlas_key).run()
    _no_crash(at)
    assert not at.error, [e.value for e in at.error]
    switched = _brain(at)
    assert "HALF_L" in switched and "HALF_R" in switched  # meshes and the neurons' regions
    assert any(c.value == "`halves` · 2 regions" for c in at.caption)  # named by its file
    # the demo fish says its positions are in the schematic atlas: warn, do not refuse
    assert any("may not be in this atlas" in w.value for w in at.warning)
    assert _param(at, "atlas") == atlas_key

    # the link reopens with the same atlas
    at2 = _app(atlas=atlas_key)
    _no_crash(at2)
    assert at2.selectbox(key="w_atlas").value == atlas_key
    assert "HALF_L" in _brain(at2)


def test_corrupt_atlas_shows_error_and_falls_back(env, tmp_path, monkeypatch):
    bad_dir = tmp_path / "bad_atlases"
    bad_dir.mkdir()
    (bad_dir / "broken.nii.gz").write_bytes(b"this is not a NIfTI file")
    monkeypatch.setenv("NLP4NEURO_ATLASES", str(bad_dir))
    at = _app()
    _no_crash(at)
    bad_key = str((bad_dir / "broken.nii.gz").resolve())
    assert "broken.nii.gz  (bad_atlases/)" in at.selectbox(key="w_atlas").options
    at.selectbox(key="w_atlas").set_value(bad_key).run()
    _no_crash(at)
    errors = [e.value for e in at.error]
    assert any("Loading the atlas failed" in e and "broken.nii.gz" in e for e in errors), errors
    assert any("Pick another atlas" in e for e in errors)
    # the page still works with the shipped atlas
    brain = _brain(at)
    assert "HALF_L" not in brain and '"mesh3d"' in brain
    assert at.selectbox(key="w_epoch").value == "test"


def test_salience_region_statistics_use_the_chosen_atlas(env, checkpoint, monkeypatch):
    monkeypatch.setenv("NLP4NEURO_CHECKPOINTS", str(Path(checkpoint).parent))
    atlas_key = str((env["atlases"] / "halves.nii.gz").resolve())
    at = _app(view="salience", epoch="1", model="tiny", atlas=atlas_key)
    assert at.selectbox(key="w_atlas").value == atlas_key
    at.button(key="run_sal").click().run()
    _no_crash(at)
    assert not at.error, [e.value for e in at.error]
    figs = [json.dumps(json.loads(c.proto.spec)) for c in at.get("plotly_chart")]
    bars = [f for f in figs if '"bar"' in f]
    assert bars and any("HALF_L" in f or "HALF_R" in f for f in bars)
    from decoding.atlas import default_atlas

    shipped = [f'"{r.acronym}"' for r in default_atlas().regions]
    assert not any(a in f for a in shipped for f in bars)  # no schematic regions left
