"""The transfer's anatomical prior: region energies, the per-neuron scale, folding it back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from decoding.backbones import resolve
from decoding.errors import DecodingError
from decoding.models import build_decoder
from decoding.region_prior import (
    ENERGY_MAX,
    ENERGY_MIN,
    fold_input_scale,
    input_energy,
    prior_scale,
    region_energy,
)
from decoding.spec import DecoderSpec


@pytest.fixture
def decoder():
    torch.manual_seed(0)
    spec = DecoderSpec(backbone=resolve("tiny-llama"), mode="full", proj_rank=4)
    return build_decoder(spec, n_neurons=8, n_outputs=2)


def test_region_energy_is_the_region_mean_over_the_fish_mean(decoder):
    with torch.no_grad():
        decoder.proj.down.weight.zero_()
        decoder.proj.down.weight[:, 0] = 2.0  # neuron 0 carries all the weight
    e = input_energy(decoder)
    assert e[0] > 0 and np.all(e[1:] == 0)
    regions = np.array(["a", "a", "a", "b", "b", "b", "c", "c"])  # c: too few neurons
    out = region_energy(decoder, regions)
    assert set(out) == {"a", "b"}
    assert out["a"] == pytest.approx((e[0] / 3) / e.mean()) and out["b"] == 0
    with pytest.raises(DecodingError, match="8 neurons in the projection but 3 region labels"):
        region_energy(decoder, regions[:3])
    with torch.no_grad():
        decoder.proj.down.weight.zero_()
    assert region_energy(decoder, regions) == {}


def test_prior_scale_pools_fish_and_leaves_unknown_regions_alone():
    energies = [{"drive": 9.0, "quiet": 0.25}, {"drive": 7.0, "quiet": 0.0}]
    regions = np.array(["drive", "quiet", "elsewhere"])
    np.testing.assert_allclose(prior_scale(energies, regions, 2.0), [8.0, 0.125, 1.0])
    np.testing.assert_allclose(prior_scale(energies, regions, 1.0), np.sqrt([8.0, 0.125, 1.0]))
    np.testing.assert_allclose(prior_scale(energies, regions, 0.0), 1.0)
    huge = prior_scale([{"drive": 1e9, "quiet": 0.0}], regions[:2], 2.0)
    np.testing.assert_allclose(huge, [ENERGY_MAX, ENERGY_MIN])
    with pytest.raises(DecodingError, match="--prior-strength"):
        prior_scale(energies, regions, -1.0)


def test_folding_the_scale_gives_the_same_outputs(decoder):
    torch.manual_seed(1)
    with torch.no_grad():
        decoder.proj.down.weight.normal_()
    scale = np.linspace(0.1, 5.0, 8).astype(np.float32)
    x = torch.randn(3, 5, 8)
    before = decoder.project(x * torch.from_numpy(scale))
    fold_input_scale(decoder, scale)
    torch.testing.assert_close(decoder.project(x), before, rtol=1e-5, atol=1e-6)
    with pytest.raises(DecodingError, match="3 values for 8 neurons"):
        fold_input_scale(decoder, scale[:3])
