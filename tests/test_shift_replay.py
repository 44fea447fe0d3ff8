"""judges.shift_replay against MCT 2.6.1's own code: the shift MCT computes for an activation, and the noise its
quantizer leaves on the shifted (unsigned) and the unshifted (signed) values, on histograms shaped like the SiLU,
Hardswish and GELU outputs of the torchvision bench (tails under and over the threshold)."""
from __future__ import annotations

import math

import numpy as np
import pytest

from tb_xquant_plugin.judges import activation_noise as AN
from tb_xquant_plugin.judges import shift_replay as SR
from tb_xquant_plugin.model.report import Layer

pytestmark = pytest.mark.mct


def mct_shift(min_value: float, threshold: float, n_bits: int) -> float:
    """The lines of MCT 2.6.1's shift_negative_function that pick the shift, run on the same inputs."""
    num_q_points = 2 ** n_bits
    lsb = threshold / num_q_points
    q_points = np.linspace(0, threshold - lsb, num_q_points).astype("float32")
    delta = q_points + min_value
    delta[delta < 0] = np.inf
    return float(q_points[np.argmin(delta)])


def histogram(rng, low, high_tail, n=200_000, bins=2048):
    body = rng.gamma(2.0, 0.6, n) + low
    tail = rng.uniform(0, high_tail, n // 2000)
    values = np.concatenate([np.clip(body, low, high_tail), tail, [low]])
    counts, edges = np.histogram(values, bins=bins)
    return AN.MCTHistogram(edges.astype(np.float64), counts.astype(np.float64))


@pytest.mark.parametrize("low,threshold,bits", [(-0.278, 2.0, 8), (-0.278, 4.0, 8), (-0.375, 4.0, 8),
                                                 (-0.17, 1.0, 8), (-0.278, 8.0, 4)])
def test_shift_is_mcts(low, threshold, bits):
    assert SR.shift_value(low, threshold, bits) == pytest.approx(mct_shift(low, threshold, bits), abs=1e-6)


@pytest.mark.parametrize("seed,low,tail,threshold", [(0, -0.278, 1.5, 2.0), (1, -0.278, 6.5, 4.0),
                                                     (2, -0.375, 6.6, 4.0), (3, -0.17, 0.5, 1.0)])
def test_noise_is_mcts_quantizer_on_the_histogram(seed, low, tail, threshold):
    from model_compression_toolkit.core.common.quantization.quantizers.quantizers_helpers import quantize_tensor

    h = histogram(np.random.default_rng(seed), low, tail)
    r = SR.replay(h, threshold, 8, low)
    x, c = h.edges[:-1], h.counts
    s = mct_shift(low, threshold, 8)
    plain = np.sum((quantize_tensor(x, threshold, 8, True) - x) ** 2 * c) / c.sum()
    shifted = np.sum((quantize_tensor(x + s, threshold, 8, False) - (x + s)) ** 2 * c) / c.sum()
    assert r.shift == pytest.approx(s, abs=1e-6)
    assert r.noise == pytest.approx(plain, rel=1e-9) and r.shifted_noise == pytest.approx(shifted, rel=1e-9)
    assert r.clipped == pytest.approx(c[x + s > threshold * (1 - 2 ** -8)].sum() / c.sum())
    assert r.shifted_body_noise <= r.shifted_noise and r.body_noise <= r.noise


def test_a_tail_under_the_threshold_halves_the_step_and_a_tail_over_it_trades():
    rng = np.random.default_rng(7)
    under = SR.replay(histogram(rng, -0.278, 1.5), 2.0, 8, -0.278)
    assert under.clipped == 0 and 3.0 < under.noise_ratio < 4.5  # a quarter of the rounding noise, nothing clipped
    over = SR.replay(histogram(rng, -0.375, 7.5), 4.0, 8, -0.375)
    assert over.clipped > 0 and over.shifted_body_noise < over.body_noise / 3 and over.noise_ratio < 1


class _Report:
    """The two things assess reads of a report: the activation's histogram and the layers' metrics."""

    def __init__(self, hist, mse=None):
        e, c = hist.edges, hist.counts
        self._buckets = np.stack([e[:-1], e[1:], c], axis=1)
        self.layer_by_name = {"act": Layer("act", 0, {"val": {"mse": mse}})} if mse is not None else {}
        self.node_by_name = {}

    def histogram(self, name):
        return self._buckets if name == "act" else None


@pytest.mark.parametrize("threshold,bits", [(math.inf, 8), (-2.0, 8), (math.nan, 8), (0.0, 8), (2.0, 0),
                                            (2.0, 10 ** 9), (2.0, None), ("2", 8)])
def test_unusable_threshold_or_bits_from_hostile_logs_are_unmeasured(threshold, bits):
    r = SR.assess(_Report(histogram(np.random.default_rng(1), -0.278, 1.5)), "act", -0.278, threshold, bits)
    assert r["finding"] == SR.UNMEASURED and "not a usable number" in r["text"]


def test_the_share_is_the_noise_saved_over_the_error_reaching_the_activation():
    h = histogram(np.random.default_rng(2), -0.278, 1.5)
    rep = SR.replay(h, 2.0, 8, -0.278)
    small = SR.assess(_Report(h, mse=100 * rep.noise), "act", -0.278, 2.0, 8)  # measured at the activation itself
    assert small["finding"] == SR.SMALL_SHARE and small["input_point"] == "act"
    assert small["share"] == pytest.approx((rep.noise - rep.shifted_noise) / (101 * rep.noise), abs=1e-4)
    big = SR.assess(_Report(h, mse=rep.noise), "act", -0.278, 2.0, 8)
    assert big["finding"] == SR.HELPS and big["share"] > SR.MIN_SHARE
    assert SR.assess(_Report(h), "act", -0.278, 2.0, 8)["finding"] == SR.HELPS  # nothing measured upstream
