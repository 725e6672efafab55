"""The demo-fish generator: seeded, anatomically placed, and its ground truth explains its tail."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from decoding.atlas import default_atlas
from decoding.recording import load_recording
from decoding.synthetic import (
    DIRECTIONS,
    NOISE_STD,
    TAIL_NAMES,
    _calcium_kernel_filter,
    _place,
    ensure_demo_fish,
    make_demo_fish,
    simulate_fish,
)


@pytest.fixture(scope="module")
def fish():
    return simulate_fish(n_neurons=600, n_frames=1200, seed=3)


def test_shapes_names_and_protocol(fish) -> None:
    rec = fish.recording
    assert (rec.n_frames, rec.n_neurons, rec.n_behavior) == (1200, 600, 6)
    assert rec.behavior_names == TAIL_NAMES and rec.behavior_units == ["rad"] * 6
    assert rec.activity.dtype == np.float32 and rec.frame_rate_hz == 1.1
    assert set(rec.epoch_names) == {"rest", *DIRECTIONS}
    motion = [e for e in rec.epochs if e.name != "rest"]
    assert all(e.n_frames == 38 for e in motion[:-1])  # 35 s at 1.1 Hz
    assert motion[0].params["velocity"] == 0.02
    assert rec.epochs[-1].stop == rec.n_frames  # the protocol covers the recording
    assert rec.atlas == default_atlas().name


def test_neurons_sit_in_the_brain_and_roles_in_their_regions(fish) -> None:
    rec, atlas = fish.recording, default_atlas()
    assert (atlas.region_of(rec.positions_um) > 0).all()
    np.testing.assert_array_equal(rec.regions, atlas.acronyms_of(rec.positions_um))
    assert not np.isin(rec.regions, ["TeO_NP_L", "TeO_NP_R"]).any()  # neuropil has no somata
    role, reg = rec.ground_truth.role, rec.regions
    assert set(reg[role == "premotor_left"]) == {"nMLF_L"}
    assert set(reg[role == "premotor_right"]) == {"nMLF_R"}
    assert set(reg[role == "motor_left"]) <= {f"r{i}_L" for i in range(2, 7)}
    assert set(reg[role == "motor_right"]) <= {f"r{i}_R" for i in range(2, 7)}
    assert {r.split("_")[0] for r in reg[np.char.startswith(role, "stimulus_")]} <= {"Pt", "TeO"}
    # direction cells for leftward motion sit mostly on the left (placement alone, many neurons)
    pos, role = _place(atlas, 20_000, np.random.default_rng(0))
    left_x = pos[role == "stimulus_left", 0]
    right_x = pos[role == "stimulus_right", 0]
    assert (left_x < atlas.midline_x_um).mean() > 0.65
    assert (right_x >= atlas.midline_x_um).mean() > 0.65


def test_ground_truth_reproduces_the_tail(fish) -> None:
    rec = fish.recording
    gt = rec.ground_truth
    drivers = np.flatnonzero(gt.importance > 0)
    assert set(gt.role[drivers]) == {"motor_left", "motor_right", "premotor_left", "premotor_right"}
    assert 0 < len(drivers) < 0.1 * rec.n_neurons  # sparse
    # the clean tail is exactly the weighted sum of the drivers' underlying activity
    np.testing.assert_allclose(
        fish.rates[:, drivers] @ gt.driver_weight[drivers], gt.behavior_clean, atol=1e-5
    )
    # the written tail is the clean tail plus noise of the stated std (the noise ceiling)
    resid = rec.behavior - gt.behavior_clean
    np.testing.assert_allclose(resid.std(axis=0), gt.noise_std, rtol=0.12)
    assert abs(resid.mean()) < 0.003
    np.testing.assert_allclose(gt.noise_std, NOISE_STD)
    assert gt.noise_ceiling_rmse == pytest.approx(float(np.sqrt(np.mean(NOISE_STD**2))))
    # left weights bend the tail left (+), right weights right (-), caudal segments more
    w = gt.driver_weight
    assert (w[gt.role == "motor_left"] > 0).all() and (w[gt.role == "motor_right"] < 0).all()
    assert np.all(np.diff(np.abs(w[gt.role == "motor_left"]).sum(0)) > 0)


def test_tail_magnitudes_and_lateralised_turns(fish) -> None:
    rec = fish.recording
    beh, gt = rec.behavior, rec.ground_truth
    amp = np.abs(gt.behavior_clean)
    assert 0.05 < amp.max(axis=0)[0] < amp.max(axis=0)[5] < 1.5  # radians, larger caudally
    mean = {
        d: beh[np.concatenate([np.arange(e.start, e.stop) for e in rec.epochs_named(d)])]
        for d in ("left", "right", "backward")
    }
    assert mean["left"][:, 5].mean() > 0.03 and mean["right"][:, 5].mean() < -0.03
    assert abs(mean["backward"][:, 5].mean()) < 0.02
    # left-motion epochs recruit left-side motor neurons more than right-side ones
    role, rates = gt.role, fish.rates
    left_frames = np.concatenate([np.arange(e.start, e.stop) for e in rec.epochs_named("left")])
    on_left = rates[np.ix_(left_frames, np.flatnonzero(role == "motor_left"))].mean()
    on_right = rates[np.ix_(left_frames, np.flatnonzero(role == "motor_right"))].mean()
    assert on_left > 1.5 * on_right


def test_bouts_follow_the_stimulus_cells(fish) -> None:
    rec = fish.recording
    labels = rec.epoch_labels()
    rate = {d: fish.bout_count[labels == d].mean() for d in ("forward", "backward", "rest")}
    assert rate["forward"] > 3 * rate["rest"] and rate["backward"] < rate["forward"]


def test_calcium_kernel_is_gcamp6s_like() -> None:
    impulse = np.zeros((100, 1), np.float32)
    impulse[0] = 1.0
    h = _calcium_kernel_filter(impulse, fps=10.0)[:, 0]  # 10 Hz to see the shape
    assert h.max() == pytest.approx(1.0, abs=1e-3)
    peak = int(np.argmax(h))
    assert 0.5 <= peak / 10.0 <= 2.0  # slow rise
    half = peak + int(np.argmax(h[peak:] < 0.5))
    assert 1.0 < (half - peak) / 10.0 < 3.0  # ~2-3 s decay


def test_seeded_and_deterministic() -> None:
    a = make_demo_fish(n_neurons=150, n_frames=200, seed=7)
    b = make_demo_fish(n_neurons=150, n_frames=200, seed=7)
    c = make_demo_fish(n_neurons=150, n_frames=200, seed=8)
    np.testing.assert_array_equal(a.activity, b.activity)
    np.testing.assert_array_equal(a.behavior, b.behavior)
    np.testing.assert_array_equal(a.positions_um, b.positions_um)
    assert a.epochs == b.epochs
    assert not np.array_equal(a.activity, c.activity)


def test_drivers_decode_the_tail_linearly(fish) -> None:
    """A sanity check that decoding is learnable: ridge on the drivers' calcium (t-1, t, t+1)."""
    rec = fish.recording
    drivers = np.flatnonzero(rec.ground_truth.importance > 0)
    X = rec.activity[:, drivers]
    F = np.hstack([X, np.roll(X, -1, axis=0), np.roll(X, 1, axis=0)])
    F = (F - F[:800].mean(0)) / (F[:800].std(0) + 1e-6)
    Y = rec.behavior
    W = np.linalg.solve(F[:800].T @ F[:800] + 30 * np.eye(F.shape[1]), F[:800].T @ Y[:800])
    pred = F[900:] @ W
    r = np.corrcoef(pred[:, 5], Y[900:, 5])[0, 1]
    assert r > 0.7


def test_small_fish_fixture(small_recording) -> None:
    assert (small_recording.n_neurons, small_recording.n_frames) == (200, 400)
    assert set(small_recording.epoch_names) == {"rest", *DIRECTIONS}
    assert small_recording.ground_truth is not None


def test_ensure_demo_fish_writes_once(tmp_path: Path) -> None:
    folder = tmp_path / "data" / "demo"
    path = ensure_demo_fish(folder, n_neurons=120, n_frames=100, seed=1)
    assert path == folder / "demo_fish.h5"
    mtime = path.stat().st_mtime_ns
    assert ensure_demo_fish(folder, n_neurons=120, n_frames=100, seed=1) == path
    assert path.stat().st_mtime_ns == mtime
    assert load_recording(path).n_neurons == 120


@pytest.mark.slow
def test_default_size_is_fast() -> None:
    t0 = time.perf_counter()
    rec = make_demo_fish()
    assert time.perf_counter() - t0 < 15
    assert (rec.n_neurons, rec.n_frames) == (12_500, 3_000)


def test_works_on_another_atlas_without_the_named_regions() -> None:
    """A custom atlas lacking Pt/nMLF/rhombomeres: populations fall back to their side's brain."""
    from decoding.atlas import Atlas, Region

    labels = np.zeros((20, 30, 10), np.int32)
    labels[2:10, 2:28, 2:8] = 1
    labels[10:18, 2:28, 2:8] = 2
    labels[8:12, 20:28, 2:8] = 3
    regions = [
        Region(1, "Blob (left)", "B_L", "G", "L"),
        Region(2, "Blob (right)", "B_R", "G", "R"),
        Region(3, "Middle", "M", "G", ""),
    ]
    atlas = Atlas("three_regions", labels, [5.0, 5.0, 5.0], regions)
    rec = make_demo_fish(n_neurons=150, n_frames=80, seed=2, atlas=atlas)
    assert rec.atlas == "three_regions" and set(rec.regions) <= {"B_L", "B_R", "M"}
    role = rec.ground_truth.role
    assert (rec.positions_um[role == "motor_left", 0] < atlas.midline_x_um).all()
    assert (rec.positions_um[role == "motor_right", 0] >= atlas.midline_x_um).all()


# ---------------------------------------------------------------------------------------------
# the generator panel (demo-data --variant)


@pytest.fixture(scope="module")
def panel():
    from decoding.synthetic import VARIANTS

    return {v: simulate_fish(n_neurons=3000, n_frames=900, seed=4, variant=v) for v in VARIANTS}


def _abs_corr(rec, idx: np.ndarray) -> np.ndarray:
    x = rec.activity[:, idx].astype(np.float64)
    y = rec.behavior.astype(np.float64)
    x = (x - x.mean(0)) / x.std(0)
    y = (y - y.mean(0)) / y.std(0)
    return np.abs(x.T @ y / len(x)).max(axis=1)


def test_every_variant_is_a_complete_fish_with_ground_truth(panel) -> None:
    from decoding.synthetic import GENERATOR_VERSION, VARIANTS

    assert len(VARIANTS) >= 6 and "demo" in VARIANTS
    for name, fish in panel.items():
        rec = fish.recording
        assert rec.fish_id == f"{name}_fish_seed4"
        assert f"v{GENERATOR_VERSION}" in rec.source and f"variant={name!r}" in rec.source
        gt = rec.ground_truth
        assert gt.importance.shape == (3000,) and (gt.importance > 0).sum() >= 14
        assert np.isfinite(rec.activity).all() and rec.frame_rate_hz == VARIANTS[name].frame_rate_hz


def test_variants_differ_from_the_demo_fish_as_described(panel) -> None:
    role = {v: f.recording.ground_truth.role.astype(str) for v, f in panel.items()}
    n_stim = {v: np.char.startswith(r, "stimulus_").sum() for v, r in role.items()}
    n_drivers = {v: (f.recording.ground_truth.importance > 0).sum() for v, f in panel.items()}
    assert n_stim["crowded"] > 3.5 * n_stim["demo"]
    assert n_drivers["sparse"] / 3000 <= 0.005 < n_drivers["demo"] / 3000
    assert panel["fast"].recording.frame_rate_hz == 3.0
    # decoys: the bright stimulus cells correlate with the tail more than the quiet drivers
    rec = panel["decoys"].recording
    drivers = np.flatnonzero(rec.ground_truth.importance > 0)
    stim = np.flatnonzero(np.char.startswith(role["decoys"], "stimulus_"))
    assert rec.activity[:, stim].var(0).mean() > 3 * rec.activity[:, drivers].var(0).mean()


def test_threshold_drivers_carry_activity_that_never_moves_the_tail(panel) -> None:
    for name, expect_exact in (("demo", True), ("threshold", False)):
        fish = panel[name]
        gt = fish.recording.ground_truth
        d = np.flatnonzero(gt.importance > 0)
        exact = np.allclose(fish.rates[:, d] @ gt.driver_weight[d], gt.behavior_clean, atol=1e-5)
        assert exact is expect_exact, name


def test_neuropil_noise_is_shared_by_neighbours(panel) -> None:
    def neighbour_corr(rec) -> tuple[float, float]:
        un = np.flatnonzero(rec.ground_truth.role == "unrelated")[:1500]
        pos = rec.positions_um[un]
        d = np.linalg.norm(pos[:, None] - pos[None], axis=2)
        c = np.corrcoef(rec.activity[:, un].T)
        near = (d > 0) & (d < 6)
        return float(c[near].mean()), float(c[d > 100].mean())

    near, far = neighbour_corr(panel["neuropil"].recording)
    near_demo, _ = neighbour_corr(panel["demo"].recording)
    assert near > far + 0.05 and near > near_demo + 0.05


def test_unknown_variant_is_one_clear_error(tmp_path: Path, capsys) -> None:
    from decoding.cli import main

    assert main(["demo-data", "--out", str(tmp_path), "--variant", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "unknown demo fish variant 'nope'" in err and "decoys" in err


def test_if_missing_regenerates_a_fish_from_another_generator(tmp_path: Path, capsys) -> None:
    import h5py

    from decoding.cli import main

    args = ["demo-data", "--out", str(tmp_path), "--neurons", "300", "--frames", "100"]
    assert main([*args, "--variant", "fast"]) == 0
    path = tmp_path / "fast_fish.h5"
    assert main([*args, "--variant", "fast", "--if-missing"]) == 0
    assert "keeping it" in capsys.readouterr().out
    with h5py.File(path, "r+") as f:
        f.attrs["source"] = "decoding.synthetic v1 make_demo_fish(...)"  # an older generator
    assert main([*args, "--variant", "fast", "--if-missing"]) == 0
    assert "regenerating" in capsys.readouterr().out
    assert "variant='fast'" in load_recording(path).source


def test_make_demo_fish_forwards_every_option_to_simulate_fish() -> None:
    rec = make_demo_fish(200, 90, seed=5, variant="fast", fish_id="f")
    ref = simulate_fish(200, 90, seed=5, variant="fast", fish_id="f", keep_hidden=False).recording
    assert rec.fish_id == "f" and rec.frame_rate_hz == 3.0 and rec.source == ref.source
    np.testing.assert_array_equal(rec.activity, ref.activity)
    np.testing.assert_array_equal(rec.behavior, ref.behavior)
    with pytest.raises(TypeError):
        simulate_fish(200, 90, 3.0)  # options after the size are keyword-only
