"""Attribution engine: completeness, shapes/alignment, cache, errors (tiny torch models)."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pytest
import torch

from decoding.errors import CheckpointError, SalienceError
from decoding.recording import Epoch, Recording
from decoding.salience import (
    METHODS,
    DecoderIO,
    SalienceCache,
    SalienceRequest,
    SalienceResult,
    compute_salience,
    salience_from_checkpoint,
)
from decoding.windows import Normalizer

torch.set_num_threads(1)


_IO = {f.name for f in fields(DecoderIO)}
_REQUEST = {f.name for f in fields(SalienceRequest)}


def attribute(model: torch.nn.Module, activity: np.ndarray, **kw):
    """:func:`compute_salience` with the decoder's facts and the request as keywords; context is
    off unless asked (these tests place windows inside the range)."""
    io = DecoderIO(**{k: kw.pop(k) for k in list(kw) if k in _IO})
    req = SalienceRequest(**{"context": False} | {k: kw.pop(k) for k in list(kw) if k in _REQUEST})
    return compute_salience(model, activity, req, decoder=io, **kw)


class TinyDecoder(torch.nn.Module):
    """(B, S, N) -> (B, S, K): input projection, a GRU (mixes frames), a readout."""

    def __init__(self, n: int = 12, k: int = 3, hidden: int = 8, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.proj = torch.nn.Linear(n, hidden)
        self.rnn = torch.nn.GRU(hidden, hidden, batch_first=True)
        self.head = torch.nn.Linear(hidden, k)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h, _ = self.rnn(torch.tanh(self.proj(x)))
        return self.head(h)


class Linear(torch.nn.Module):
    """Per-frame linear map: its salience is known in closed form."""

    def __init__(self, weight: np.ndarray):
        super().__init__()
        self.lin = torch.nn.Linear(weight.shape[0], weight.shape[1], bias=True)
        with torch.no_grad():
            self.lin.weight.copy_(torch.from_numpy(weight.T.copy()))
            self.lin.bias.fill_(0.3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(x)


@pytest.fixture
def activity() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(40, 12)).astype(np.float32)


@pytest.mark.parametrize("method", sorted(METHODS))
def test_shapes_and_summaries(method, activity):
    res = attribute(
        TinyDecoder(), activity, window=5, start=10, stop=30, method=method, steps=8
    )
    assert res.values.shape == (20, 12)
    assert res.mean_abs.shape == (12,) and res.signed_mean.shape == (12,)
    assert np.all(np.isfinite(res.values))
    assert res.frames[0] == 10 and res.frames[-1] == 29
    if METHODS[method].has_delta:
        assert res.convergence_delta.shape == (16,)  # windows = 20 - 5 + 1


def test_ig_completeness_within_reported_delta(activity):
    model = TinyDecoder()
    res = attribute(model, activity, window=6, start=0, stop=6, method="ig", steps=64)
    # one window: the map is that window's attribution, and it sums to F(x) - F(0) up to delta
    total = float(res.values.astype(np.float64).sum())
    x = torch.from_numpy(activity[None, :6])
    with torch.no_grad():
        fx = model(x).sum().item()
        f0 = model(torch.zeros_like(x)).sum().item()
    assert abs(total - (fx - f0)) <= abs(res.max_abs_delta) + 1e-4
    assert res.relative_delta < 0.02
    assert res.output_difference[0] == pytest.approx(fx - f0, rel=1e-4)


def test_linear_model_known_answer(activity):
    # F = sum_s sum_k (x_s @ W + b)_k; per frame attribution of neuron n = x[t, n] * sum_k W[n, k]
    rng = np.random.default_rng(1)
    W = rng.normal(size=(12, 3)).astype(np.float32)
    want = activity[5:25] * W.sum(axis=1)
    for method in ("ig", "ixg"):
        res = attribute(Linear(W), activity, window=4, start=5, stop=25, method=method)
        np.testing.assert_allclose(res.values, want, rtol=1e-4, atol=1e-5)
    lat = attribute(
        Linear(W), activity, window=4, start=5, stop=25, method="ixg", target="lateral"
    )
    np.testing.assert_allclose(lat.values, activity[5:25] * W.mean(axis=1), rtol=1e-4, atol=1e-5)
    one = attribute(
        Linear(W),
        activity,
        window=4,
        start=5,
        stop=25,
        method="ixg",
        target="theta_01",
        behavior_names=["theta_00", "theta_01", "theta_02"],
    )
    assert one.target == "theta_01"
    np.testing.assert_allclose(one.values, activity[5:25] * W[:, 1], rtol=1e-4, atol=1e-5)


def test_frame_alignment_and_overlap_average():
    # a causal model whose output at frame s depends only on input frame s: attribution of a
    # frame is independent of the window, so overlap averaging must return it exactly, in place
    T, N = 30, 5
    act = np.zeros((T, N), dtype=np.float32)
    act[17, 2] = 1.0  # one event at frame 17, neuron 2
    W = np.eye(N, 2, dtype=np.float32)
    W[2, 0] = 2.0
    res = attribute(Linear(W), act, window=7, start=3, stop=28, method="ixg")
    assert res.values.shape == (25, N)
    nz = np.argwhere(res.values != 0)
    assert nz.tolist() == [[17 - 3, 2]]
    assert res.values[14, 2] == pytest.approx(2.0)


def test_auto_steps_meets_the_tolerance(activity):
    from decoding.salience import AUTO_STEPS, AUTO_TOLERANCE

    res = attribute(
        TinyDecoder(), activity, window=5, start=0, stop=20, steps="auto", method="ig"
    )
    assert res.params["steps_auto"] and res.params["steps"] in AUTO_STEPS
    assert res.relative_delta <= 10 * AUTO_TOLERANCE
    with pytest.raises(SalienceError, match="or 'auto', found 'many'"):
        attribute(TinyDecoder(), activity, window=5, steps="many", method="ig")


def test_range_shorter_than_window_uses_one_shorter_window(activity):
    # like predictions: a 3-frame range with a 5-frame decoder is one 3-frame window
    res = attribute(
        TinyDecoder(), activity, window=5, start=7, stop=10, steps=8, method="ig"
    )
    assert res.values.shape == (3, 12) and res.params["windows"] == 1


def test_normalizer_and_rest_baseline(activity):
    norm = Normalizer(activity.mean(0), activity.std(0) + 1.0)
    W = np.ones((12, 1), dtype=np.float32)
    rest = np.arange(0, 10)
    res = attribute(
        Linear(W),
        activity,
        window=4,
        start=20,
        stop=30,
        method="ig",
        normalizer=norm,
        baseline="rest",
        rest_frames=rest,
    )
    xn = (activity - norm.mean) / norm.std
    np.testing.assert_allclose(res.values, xn[20:30] - xn[rest].mean(0), rtol=1e-4, atol=1e-5)
    assert res.baseline == "rest"


def test_ablation_by_groups_sums_to_group_effect(activity):
    W = np.arange(12, dtype=np.float32).reshape(12, 1)
    groups = np.array(["A"] * 4 + ["B"] * 8)
    res = attribute(
        Linear(W), activity, window=5, start=0, stop=5, method="ablation", groups=groups
    )
    x = activity[:5]
    # removing group A (setting it to the baseline 0) lowers F by sum over A of x * w
    np.testing.assert_allclose(res.values[:, :4].sum(), (x[:, :4] * W[:4, 0]).sum(), rtol=1e-4)
    np.testing.assert_allclose(res.values[:, 4:].sum(), (x[:, 4:] * W[4:, 0]).sum(), rtol=1e-4)


def test_internal_batch_size_does_not_change_result(activity):
    kw = {"method": "ig", "window": 5, "start": 0, "stop": 20, "steps": 16}
    a = attribute(TinyDecoder(), activity, internal_batch_size=7, **kw)
    b = attribute(TinyDecoder(), activity, **kw)
    np.testing.assert_allclose(a.values, b.values, rtol=1e-4, atol=1e-6)


def test_save_load_roundtrip(tmp_path, activity):
    res = attribute(
        TinyDecoder(),
        activity,
        method="ig",
        window=5,
        start=2,
        stop=20,
        steps=8,
        provenance={"fish_id": "f1"},
        neuron_ids=np.arange(100, 112),
    )
    p = res.save(tmp_path / "s.h5")
    back = SalienceResult.load(p)
    np.testing.assert_array_equal(back.values, res.values)
    np.testing.assert_array_equal(back.convergence_delta, res.convergence_delta)
    assert (back.start, back.stop, back.method, back.target) == (2, 20, "ig", "sum")
    assert back.provenance == {"fish_id": "f1"} and back.params == res.params
    assert back.neuron_ids.tolist() == list(range(100, 112))
    assert not list(tmp_path.glob(".*tmp"))  # atomic write left no temp file


# -- checkpoint integration with a stand-in checkpoint (the real loader is the core's) ---------


def _recording(activity: np.ndarray) -> Recording:
    """A real in-memory recording: a rest epoch then a left epoch, three channels."""
    T, N = activity.shape
    return Recording(
        activity,
        np.zeros((T, 3), np.float32),
        np.zeros((N, 3), np.float32),
        frame_rate_hz=1.0,
        behavior_names=["a", "b", "c"],
        epochs=[Epoch("rest", 0, 10), Epoch("left", 10, 30)],
        fish_id="tiny",
    )


def _loaded(n: int = 12):
    """A tiny decoder with a real checkpoint description of it."""
    from decoding.backbones import resolve
    from decoding.checkpoint import CheckpointInfo
    from decoding.spec import DecoderSpec

    info = CheckpointInfo(
        decoder=DecoderSpec(backbone=resolve("lstm"), mode="full", window=5),
        n_neurons=n,
        n_outputs=3,
        behavior_names=["a", "b", "c"],
        normalizer=Normalizer.identity(n),
        target_normalizer=Normalizer.identity(3),
    )
    return TinyDecoder(n=n), info


def test_cache_hit_returns_identical_result(tmp_path, activity):
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    rec = _recording(activity)
    cache = SalienceCache(tmp_path / "cache")
    first = salience_from_checkpoint(
        ckpt, rec, epoch="left", steps=8, cache=cache, loaded=_loaded(), method="ig"
    )
    assert not first.from_cache and len(list(cache.directory.glob("*.h5"))) == 1
    second = salience_from_checkpoint(
        ckpt, rec, epoch="left", steps=8, cache=cache, loaded=_loaded(), method="ig"
    )
    assert second.from_cache
    np.testing.assert_array_equal(second.values, first.values)
    np.testing.assert_array_equal(second.convergence_delta, first.convergence_delta)
    assert second.provenance == first.provenance
    # any change of method parameters is a different entry
    third = salience_from_checkpoint(
        ckpt, rec, epoch="left", steps=9, cache=cache, loaded=_loaded(), method="ig"
    )
    assert not third.from_cache and len(list(cache.directory.glob("*.h5"))) == 2
    rest = salience_from_checkpoint(
        ckpt,
        rec,
        epoch="left",
        steps=8,
        baseline="rest",
        cache=cache,
        loaded=_loaded(),
        method="ig",
    )
    assert rest.baseline == "rest" and not rest.from_cache


def test_write_behind_cache_returns_before_the_file_and_reports_a_failed_write(
    tmp_path, activity, capsys
):
    """``write_behind``: the result comes back at once, its file follows (whole, atomically) and
    a later lookup finds it; a write that fails says so on stderr and raises nothing."""
    import threading

    from decoding.salience import _writer as salience_writer

    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    (ckpt / "config.json").write_text("{}")
    rec = _recording(activity)
    cache = SalienceCache(tmp_path / "cache", write_behind=True)
    hold = threading.Event()
    blocker = salience_writer().submit(hold.wait)  # the writer is busy: the file must wait
    first = salience_from_checkpoint(
        ckpt, rec, epoch="left", steps=8, cache=cache, loaded=_loaded(), method="ig"
    )
    assert not first.from_cache and not list(cache.directory.glob("*.h5"))
    hold.set()
    blocker.result()
    SalienceCache.flush()
    (path,) = cache.directory.glob("*.h5")
    again = salience_from_checkpoint(
        ckpt, rec, epoch="left", steps=8, cache=cache, loaded=_loaded(), method="ig"
    )
    assert again.from_cache
    np.testing.assert_array_equal(again.values, first.values)
    # the cache's folder is a file now: the write fails, the caller still has its result
    broken = SalienceCache(tmp_path / "not_a_folder", write_behind=True)
    broken.directory.write_text("")
    broken.put("k", first)
    SalienceCache.flush()
    assert "could not write" in capsys.readouterr().err
    assert not list(tmp_path.glob("not_a_folder*/*.h5"))


def test_bad_inputs_refused(tmp_path, activity):
    m = TinyDecoder()
    with pytest.raises(SalienceError, match="unknown salience method 'foo'"):
        attribute(m, activity, window=5, method="foo")
    with pytest.raises(SalienceError, match=r"not inside the recording's 40 frames"):
        attribute(m, activity, window=5, start=30, stop=50, method="ig")
    with pytest.raises(SalienceError, match="target channel 7 is out of range"):
        attribute(m, activity, window=5, target=7, method="ig")
    with pytest.raises(SalienceError, match="unknown salience target 'left'"):
        attribute(m, activity, window=5, target="left", method="ig")
    with pytest.raises(SalienceError, match="unknown baseline 'mean'"):
        attribute(m, activity, window=5, baseline="mean", method="ig")
    with pytest.raises(SalienceError, match="no epoch named 'rest'"):
        attribute(m, activity, window=5, baseline="rest", method="ig")
    with pytest.raises(SalienceError, match="steps must be a whole number >= 1"):
        attribute(m, activity, window=5, steps=0, method="ig")
    bad = activity.copy()
    bad[3, 3] = np.nan
    with pytest.raises(SalienceError, match="NaN or inf"):
        attribute(m, bad, window=5, method="ig")
    with pytest.raises(SalienceError, match="one label per neuron"):
        attribute(m, activity, window=5, method="ablation", groups=["a", "b"])
    with pytest.raises(CheckpointError, match="does not exist"):
        salience_from_checkpoint(tmp_path / "nope", _recording(activity), method="ig")
    (tmp_path / "ck").mkdir()
    with pytest.raises(CheckpointError, match="trained on 13 neurons"):
        salience_from_checkpoint(
            tmp_path / "ck", _recording(activity), cache=False, loaded=_loaded(13), method="ig"
        )
    with pytest.raises(SalienceError, match="not a salience file"):
        p = tmp_path / "x.h5"
        import h5py

        with h5py.File(p, "w") as f:
            f.attrs["format"] = "other"
        SalienceResult.load(p)


class GRUBackbone(torch.nn.Module):
    hidden_size = 8

    def __init__(self):
        super().__init__()
        self.rnn = torch.nn.GRU(8, 8, batch_first=True)

    def forward(self, e: torch.Tensor) -> torch.Tensor:
        return self.rnn(torch.tanh(e))[0]

    def embedding_std(self) -> float:
        return 0.05  # the Decoder then scales its projection (a non-trivial affine map)


@pytest.mark.parametrize("method", ["ig", "ixg", "saliency"])
def test_embedding_fast_path_equals_input_path(method, activity):
    from decoding.models import Decoder

    torch.manual_seed(3)
    dec = Decoder(n_neurons=12, n_outputs=3, backbone=GRUBackbone())
    kw = dict(window=5, start=3, stop=25, method=method, steps=16, target="lateral")
    fast = attribute(dec, activity, fast=True, **kw)
    slow = attribute(dec, activity, fast=False, **kw)
    assert fast.params.get("path") == "embedding" and "path" not in slow.params
    np.testing.assert_allclose(fast.values, slow.values, rtol=1e-4, atol=1e-6)
    if method == "ig":
        np.testing.assert_allclose(fast.output_difference, slow.output_difference, rtol=1e-5)
        assert fast.max_abs_delta < 0.05 * np.abs(fast.output_difference).max()


def test_context_windows_match_the_whole_part(activity):
    # with context (like predict) an epoch's map is the crop of the map of its whole split part,
    # and windows never cross part boundaries
    kw = dict(window=5, method="ixg", parts=[(0, 20), (20, 40)], context=True)
    whole = attribute(TinyDecoder(), activity, start=0, stop=40, **kw)
    piece = attribute(TinyDecoder(), activity, start=8, stop=27, **kw)
    np.testing.assert_allclose(piece.values, whole.values[8:27], rtol=1e-5, atol=1e-7)
    first = attribute(TinyDecoder(), activity, start=0, stop=20, window=5, method="ixg")
    np.testing.assert_allclose(whole.values[:20], first.values, rtol=1e-5, atol=1e-7)
    # a part boundary inside the range: frames 18..22 are averaged over different windows
    assert whole.params["windows"] == 2 * (20 - 5 + 1)


@pytest.mark.parametrize(
    ("backbone", "mode"),
    [
        ("tiny-gpt2", "full"),
        ("tiny-bert", "frozen"),
        ("tiny-llama", "lora"),
        ("lstm", "full"),
        ("reservoir", "frozen"),
        ("ridge", "frozen"),
    ],
)
def test_every_backbone_and_mode(backbone, mode, activity):
    from decoding.backbones import resolve
    from decoding.models import build_decoder
    from decoding.spec import DecoderSpec

    torch.manual_seed(0)
    spec = resolve(backbone, "random", hidden_size=16)
    model = build_decoder(DecoderSpec(backbone=spec, mode=mode), n_neurons=12, n_outputs=3)
    kw = dict(window=4, start=0, stop=12, steps=24)
    fast = attribute(model, activity, method="ig", **kw)
    slow = attribute(model, activity, fast=False, method="ig", **kw)
    np.testing.assert_allclose(fast.values, slow.values, rtol=1e-3, atol=1e-6)
    assert fast.relative_delta < 0.05
    ixg = attribute(model, activity, method="ixg", **kw)
    assert ixg.values.shape == (12, 12) and np.isfinite(ixg.values).all()


# -- validation helpers (decoding.salience_check) ----------------------------------------------


def test_auroc_and_average_precision_known_values():
    from decoding.salience_check import auroc, average_precision

    labels = np.array([1, 0, 1, 0, 0], dtype=bool)
    scores = np.array([0.9, 0.8, 0.7, 0.1, 0.0])
    assert auroc(scores, labels) == pytest.approx(5 / 6)  # 5 of 6 (pos, neg) pairs ordered
    assert average_precision(scores, labels) == pytest.approx((1 / 1 + 2 / 3) / 2)
    assert auroc(-scores, labels) == pytest.approx(1 / 6)
    with pytest.raises(SalienceError, match="positives and negatives"):
        auroc(scores, np.ones(5, dtype=bool))


def test_ground_truth_recovery_perfect_and_random():
    from decoding.salience_check import ground_truth_recovery

    rng = np.random.default_rng(0)
    regions = np.repeat(["A", "B", "C", "D"], 50)
    importance = np.zeros(200)
    importance[:20] = rng.uniform(1, 2, 20)  # drivers in A
    importance[50:60] = rng.uniform(1, 2, 10)  # and in B
    rep = ground_truth_recovery(importance + 0.01 * rng.random(200), importance, regions)
    assert rep.auroc == pytest.approx(1.0) and rep.average_precision == pytest.approx(1.0)
    assert rep.driver_regions == ["A", "B"] and rep.driver_regions_first
    assert rep.precision_at_drivers == 1.0 and rep.n_drivers == 30
    noise = ground_truth_recovery(rng.random(200), importance, regions)
    assert 0.3 < noise.auroc < 0.7 and noise.average_precision < 0.4


def test_randomise_weights_changes_every_parameter():
    from decoding.salience_check import randomisation_check, randomise_weights

    model = TinyDecoder()
    rand = randomise_weights(model, seed=5)
    for (name, p), q in zip(model.named_parameters(), rand.parameters(), strict=True):
        assert not torch.equal(p, q), name
    rep = randomisation_check(np.arange(100.0), np.arange(100.0)[::-1], k=10)
    assert rep.spearman == pytest.approx(-1.0) and rep.top_overlap == 0.0


def test_drop_neurons(small_recording):
    from decoding.salience_check import drop_neurons

    sub = drop_neurons(small_recording, np.array([0, 5, 7]), label="-x")
    assert sub.n_neurons == small_recording.n_neurons - 3
    np.testing.assert_array_equal(sub.activity[:, 0], small_recording.activity[:, 1])
    assert sub.ground_truth.driver_weight.shape[0] == sub.n_neurons
    assert sub.fish_id.endswith("-x")


def test_gradshap_gives_the_same_map_for_the_same_seed(activity):
    # Captum draws GradientShap's points on the path from numpy's global generator: seeding torch
    # alone gave another map on every call (the cache keys it by its seed)
    kw = dict(window=5, start=10, stop=30, method="gradshap", steps=8)
    np.random.seed(123)
    outside = np.random.get_state()[1].copy()
    a = attribute(TinyDecoder(), activity, seed=4, **kw)
    b = attribute(TinyDecoder(), activity, seed=4, **kw)
    other = attribute(TinyDecoder(), activity, seed=5, **kw)
    np.testing.assert_array_equal(a.values, b.values)
    assert not np.allclose(a.values, other.values)
    assert np.array_equal(np.random.get_state()[1], outside)  # the caller's generator untouched


def test_gradshap_maps_computed_at_once_in_two_threads_are_each_their_seeds(activity):
    # torch's and numpy's generators are global: a computation seeding them while another drew
    # its points on the path gave that other another map (two pages of the dashboard at once)
    from concurrent.futures import ThreadPoolExecutor

    kw = dict(window=5, start=10, stop=30, method="gradshap", steps=8, internal_batch_size=8)
    alone = {seed: attribute(TinyDecoder(), activity, seed=seed, **kw).values for seed in (4, 5)}
    models = [TinyDecoder() for _ in range(6)]  # built here: building one seeds torch too

    def one(i: int) -> np.ndarray:  # 4 GradientShap maps, and 2 IG maps computed meanwhile
        method = "gradshap" if i < 4 else "ig"
        return attribute(models[i], activity, seed=4 + i % 2, **{**kw, "method": method}).values

    with ThreadPoolExecutor(6) as pool:
        at_once = list(pool.map(one, range(6)))
    for i, values in enumerate(at_once[:4]):
        np.testing.assert_array_equal(values, alone[4 + i % 2])


def test_gradshap_maps_cached_before_numpy_was_seeded_are_not_reused():
    shap = SalienceRequest(method="gradshap").identity()
    assert shap["seeded"] == "torch and numpy"
    assert "seeded" not in SalienceRequest(method="ig").identity()  # other keys unchanged
