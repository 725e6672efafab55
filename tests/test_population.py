"""Population salience: per-fish region effects, CI, consistency, the test across fish."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from decoding.errors import SalienceError
from decoding.population import (
    FishSalience,
    population_salience,
    true_driver_regions,
)

REGIONS = ["A", "B", "C", "D", "E", "F", "G", "H"]


def _fish(seed: int, boost: dict[str, float], n_per_region: int = 40) -> FishSalience:
    """A fish with ``n_per_region`` neurons in each region; salience log-normal, multiplied by
    ``boost[region]`` in the boosted regions."""
    rng = np.random.default_rng(seed)
    regions = np.repeat(REGIONS, n_per_region)
    sal = rng.lognormal(0.0, 0.5, size=regions.size)
    for r, factor in boost.items():
        sal[regions == r] *= factor
    perm = rng.permutation(regions.size)  # neuron order carries nothing
    return FishSalience(f"fish{seed}", sal[perm], regions[perm])


@pytest.fixture(scope="module")
def five_fish():
    # A drives in every fish, B in every fish (weaker), H only in fish 2 (very strongly)
    fish = []
    for i in range(5):
        boost = {"A": 4.0, "B": 2.0}
        if i == 2:
            boost["H"] = 20.0
        fish.append(_fish(i, boost))
    return fish


def test_shared_regions_are_population_effects_and_a_private_one_is_not(five_fish):
    pop = population_salience(five_fish, effect="mean")
    t = pop.table.set_index("region")
    assert pop.populated() == ["A", "B"]
    assert t.loc["A", "n_significant"] == 5 and t.loc["A", "consistency"] == 1.0
    # H is the most salient region of fish 2 (significant there) but not across fish
    assert t.loc["H", "n_significant"] == 1 and not t.loc["H", "population"]
    assert t.loc["A", "mean_log2_ratio"] == pytest.approx(
        pop.per_fish.query("region == 'A'")["log2_ratio"].mean()
    )
    assert list(pop.table["rank"]) == list(range(1, len(REGIONS) + 1))


def _sparse_fish(seed: int, drivers: dict[str, int], n_per_region: int = 100) -> FishSalience:
    """Like a decoder's map: log-normal salience, plus ``drivers[region]`` neurons of that region
    30x as salient (a handful of drivers among many other neurons)."""
    rng = np.random.default_rng(seed)
    regions = np.repeat(REGIONS, n_per_region)
    sal = rng.lognormal(0.0, 0.5, size=regions.size)
    for r, k in drivers.items():
        sal[rng.choice(np.flatnonzero(regions == r), size=k, replace=False)] *= 30.0
    return FishSalience(f"fish{seed}", sal, regions)


@pytest.fixture(scope="module")
def sparse_fish():
    # A and B hold 2-4 drivers in every fish; H holds 10 in fish 2 only
    fish = []
    for i in range(5):
        drivers = {"A": 3 + i % 2, "B": 3}
        if i == 2:
            drivers["H"] = 10
        fish.append(_sparse_fish(i, drivers))
    return fish


@pytest.mark.parametrize("test", ["t", "conjunction"])
def test_few_drivers_per_region_rank_first_and_a_private_region_is_not_reported(sparse_fish, test):
    pop = population_salience(sparse_fish, test=test)
    assert set(pop.table["region"][:2]) == {"A", "B"}
    # the conjunction test ("in at least 3 of 5 fish") is the conservative one: fewer reports
    assert set(pop.populated()) == {"A", "B"} if test == "t" else set(pop.populated()) <= {"A", "B"}
    t = pop.table.set_index("region")
    assert t.loc["H", "n_significant"] == 1 and not t.loc["H", "population"]
    row = pop.per_fish.query("fish == 'fish2' and region == 'H'").iloc[0]
    assert row["n_top"] == 10  # k = 2 % of 800 = 16: H's 10 drivers are all among them
    assert row["expected_top"] == pytest.approx(100 * 16 / 800)
    assert row["p_value"] == pytest.approx(stats.hypergeom.sf(9, 800, 16, 100))


def test_confidence_interval_is_the_t_interval_across_fish(five_fish):
    pop = population_salience(five_fish, effect="mean", confidence=0.9)
    x = pop.per_fish.query("region == 'B'")["log2_ratio"].to_numpy()
    lo, hi = stats.t.interval(0.9, len(x) - 1, loc=x.mean(), scale=stats.sem(x))
    row = pop.table.set_index("region").loc["B"]
    assert row["ci_low"] == pytest.approx(lo) and row["ci_high"] == pytest.approx(hi)
    assert row["p_value"] == pytest.approx(stats.ttest_1samp(x, 0.0, alternative="greater").pvalue)


def test_fdr_correction_across_regions(five_fish):
    pop = population_salience(five_fish, effect="mean")
    p = pop.table["p_value"].to_numpy()
    np.testing.assert_allclose(pop.table["p_adjusted"], stats.false_discovery_control(p))
    by = population_salience(five_fish, effect="mean", correction="by")
    assert (by.table["p_adjusted"].to_numpy() >= pop.table["p_adjusted"].to_numpy()).all()


def test_pure_noise_reports_nothing():
    fish = [_fish(10 + i, {}) for i in range(6)]
    for effect in ("top", "mean"):
        for test in ("t", "wilcoxon", "signflip", "conjunction"):
            assert population_salience(fish, effect=effect, test=test).populated() == []


def test_rank_and_permutation_tests_cannot_reach_small_p_with_five_fish(five_fish):
    # a one-sided signed-rank / sign-flip test over 5 fish has p >= 1/32
    for test in ("wilcoxon", "signflip"):
        pop = population_salience(five_fish, effect="mean", test=test)
        a = pop.table.set_index("region").loc["A"]
        assert a["p_value"] == pytest.approx(1 / 32, rel=0.05)


def test_matrix_is_fish_by_region_in_table_order(five_fish):
    pop = population_salience(five_fish, effect="mean")
    m = pop.matrix()
    assert list(m.index) == [f.fish_id for f in five_fish]
    assert list(m.columns) == list(pop.table["region"])
    assert m.loc["fish2", "H"] > 3


def test_outside_and_small_regions_are_left_out():
    fish = []
    for i in range(3):
        f = _fish(i, {"A": 3.0})
        regions = f.regions.copy()
        regions[:5] = "outside"
        regions[5:7] = "tiny"
        fish.append(FishSalience(f.fish_id, f.salience, regions))
    pop = population_salience(fish)
    assert "outside" not in set(pop.table["region"]) and "tiny" not in set(pop.table["region"])


def test_bad_input_is_refused(five_fish):
    with pytest.raises(SalienceError, match="at least 2 fish"):
        population_salience(five_fish[:1])
    with pytest.raises(SalienceError, match="unknown population test"):
        population_salience(five_fish, test="anova")
    with pytest.raises(SalienceError, match="unknown population effect"):
        population_salience(five_fish, effect="max")
    with pytest.raises(SalienceError, match="fish ids must be unique"):
        population_salience([five_fish[0], five_fish[0]])
    with pytest.raises(SalienceError, match=r"must both be \(N,\)"):
        FishSalience("x", np.ones(3), np.array(["A", "B"]))


def test_true_driver_regions_of_the_multifish_demo_exclude_the_private_region():
    from decoding.synthetic import make_multifish_demo

    fish = make_multifish_demo(n_fish=3, n_neurons=600, n_frames=60, seed=1)
    truth = true_driver_regions(fish)
    assert {"nMLF_L", "nMLF_R"} <= truth and all(r.startswith(("nMLF", "r")) for r in truth)
    assert "Cb_L" not in truth
    assert "Cb_L" in true_driver_regions(fish, min_share=0.3)


def test_dashboard_figures_show_every_fish_and_region(five_fish):
    from dashboard.views.population import effect_bar_figure, fish_heatmap

    pop = population_salience(five_fish, effect="mean")
    bar = effect_bar_figure(pop.table, pop.per_fish)
    assert list(bar.data[0].x) == list(pop.table["region"])
    assert len(bar.data[1].x) == len(pop.per_fish)  # one dot per fish and region
    assert list(bar.data[0].marker.color).count("#d62728") == 2  # A and B
    heat = fish_heatmap(pop.table, pop.per_fish)
    assert np.asarray(heat.data[0].z).shape == (5, len(REGIONS))
