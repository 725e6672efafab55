"""Region statistics, lateralisation and top-k tables on a hand-made three-region atlas."""

from __future__ import annotations

import numpy as np
import pytest

from decoding.anatomy import (
    adjust_pvalues,
    base_acronym,
    lateralisation,
    lateralisation_by_epoch,
    neuron_regions,
    region_table,
    top_neurons,
)
from decoding.atlas import Atlas, Region
from decoding.errors import SalienceError
from decoding.recording import Recording


@pytest.fixture
def atlas() -> Atlas:
    """4 x 2 x 1 voxels of 10 µm: x 0-20 left, 20-40 right; y 0-10 = A (paired), y 10-20 = B/C."""
    labels = np.array([[[1], [3]], [[1], [3]], [[2], [4]], [[2], [4]]], dtype=np.int16)
    regions = [
        Region(1, "Alpha (left)", "A_L", "G", "L"),
        Region(2, "Alpha (right)", "A_R", "G", "R"),
        Region(3, "Beta", "B", "G", ""),
        Region(4, "Gamma", "C", "G", ""),
    ]
    return Atlas("toy", labels, [10, 10, 10], regions)


@pytest.fixture
def neurons(atlas):
    rng = np.random.default_rng(0)
    # 40 neurons in A_L, 40 in A_R, 20 in B, 20 in C
    pos = np.concatenate(
        [
            np.c_[rng.uniform(0, 20, 40), rng.uniform(0, 10, 40), np.full(40, 5.0)],
            np.c_[rng.uniform(20, 40, 40), rng.uniform(0, 10, 40), np.full(40, 5.0)],
            np.c_[rng.uniform(0, 20, 20), rng.uniform(10, 20, 20), np.full(20, 5.0)],
            np.c_[rng.uniform(20, 40, 20), rng.uniform(10, 20, 20), np.full(20, 5.0)],
        ]
    ).astype(np.float32)
    return pos, atlas.acronyms_of(pos)


def test_region_lookup_and_aggregation_known_answer(atlas, neurons):
    pos, acr = neurons
    assert (acr == np.repeat(["A_L", "A_R", "B", "C"], [40, 40, 20, 20])).all()
    s = np.repeat([1.0, 1.0, 4.0, 0.0], [40, 40, 20, 20])
    df = region_table(s, acr).set_index("region")
    assert df.loc["B", "mean"] == 4.0 and df.loc["A_L", "mean"] == 1.0 and df.loc["C", "sum"] == 0
    assert df.loc["B", "n_neurons"] == 20
    # shares: total = 80 + 80 = 160; B holds 80
    assert df.loc["B", "share"] == pytest.approx(0.5)
    assert df.loc["A_L", "share"] == pytest.approx(0.25)
    assert df["share"].sum() == pytest.approx(1.0)
    assert df.loc["B", "rank"] == 1 and df.loc["C", "rank"] == 4
    assert df.loc["B", "ratio_to_rest"] == pytest.approx(4.0 / (80 / 100))


def test_region_test_finds_the_hot_region_only(neurons):
    pos, acr = neurons
    rng = np.random.default_rng(1)
    s = rng.exponential(1.0, size=acr.size)
    s[acr == "B"] += 3.0
    for test in ("mannwhitney", "permutation"):
        df = region_table(s, acr, test=test, n_permutations=300).set_index("region")
        assert df.loc["B", "significant"] and df.loc["B", "p_adjusted"] < 0.01
        assert df.loc["B", "p_adjusted"] >= df.loc["B", "p_value"]
        assert not df.loc["A_L", "significant"] or df.loc["A_L", "mean"] < df.loc["B", "mean"]


def test_lateralisation_per_region_and_overall(atlas, neurons):
    pos, acr = neurons
    s = np.where(pos[:, 0] < atlas.midline_x_um, 3.0, 1.0)
    df = lateralisation(s, pos, acr, atlas.midline_x_um).set_index("region")
    assert df.loc["all", "li"] == pytest.approx(0.5)  # (3 - 1) / (3 + 1)
    assert df.loc["A", "n_left"] == 40 and df.loc["A", "n_right"] == 40
    assert df.loc["A", "li"] == pytest.approx(0.5)
    assert df.loc["B", "n_right"] == 0 and np.isnan(df.loc["B", "li"])  # B is all left
    by = lateralisation_by_epoch({"left": s, "right": 4.0 - s}, pos, acr, atlas.midline_x_um)
    overall = by[by.region == "all"].set_index("epoch")["li"]
    assert overall["left"] > 0 > overall["right"]


def test_top_neurons_table(neurons):
    pos, acr = neurons
    s = np.arange(acr.size, dtype=float)
    top = top_neurons(s, acr, pos, k=5, neuron_ids=np.arange(acr.size) + 1000)
    assert top["rank"].tolist() == [1, 2, 3, 4, 5]
    assert top["neuron"].tolist() == [119, 118, 117, 116, 115]
    assert top["neuron_id"].iloc[0] == 1119 and top["region"].iloc[0] == "C"
    assert list(top.columns[:7]) == ["neuron", "neuron_id", "region", "x", "y", "z", "salience"]


def test_helpers():
    assert base_acronym(["r4_L", "r4_R", "Hyp", "TeO_PVL_L"]).tolist() == [
        "r4",
        "r4",
        "Hyp",
        "TeO_PVL",
    ]
    p = [0.01, 0.04, 0.03, 0.5]
    np.testing.assert_allclose(
        adjust_pvalues(p, "bh"), [0.04, 0.0533333, 0.0533333, 0.5], rtol=1e-5
    )
    np.testing.assert_allclose(adjust_pvalues(p, "holm"), [0.04, 0.09, 0.09, 0.5])


def _recording(pos: np.ndarray, regions: np.ndarray | None) -> Recording:
    n = len(pos)
    return Recording(
        np.zeros((4, n), np.float32),
        np.zeros((4, 1), np.float32),
        np.asarray(pos, np.float32),
        frame_rate_hz=1.0,
        atlas="",
        regions=regions,
    )


def test_neuron_regions_prefers_recording_labels(atlas, neurons):
    pos, acr = neurons
    assert (neuron_regions(_recording(pos, None), atlas) == acr).all()
    labelled = _recording(pos, np.array(["X"] * len(acr)))
    assert (neuron_regions(labelled, atlas) == "X").all()


def test_bad_inputs(neurons):
    pos, acr = neurons
    with pytest.raises(SalienceError, match="salience has 3 neurons but the region labels has 120"):
        region_table(np.ones(3), acr)
    with pytest.raises(SalienceError, match="unknown region test 'ttest'"):
        region_table(np.ones(acr.size), acr, test="ttest")
    with pytest.raises(SalienceError, match="unknown p-value correction 'bonf'"):
        region_table(np.ones(acr.size), acr, correction="bonf")
    with pytest.raises(SalienceError, match="NaN or inf"):
        region_table(np.full(acr.size, np.nan), acr)
    with pytest.raises(SalienceError, match=r"positions_um must be \(N, 3\)"):
        lateralisation(np.ones(acr.size), pos[:5], acr, 20.0)
    with pytest.raises(SalienceError, match="k >= 1"):
        top_neurons(np.ones(acr.size), acr, pos, k=0)
