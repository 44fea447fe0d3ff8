"""What MCT's shift-negative correction would do to one activation, replayed on its logged float histogram, and how
much of the error reaching the next layer that could remove.

MCT 2.6.1 (``core/common/substitutions/shift_negative_activation.py``) shifts an activation it corrects by the
smallest level of its unsigned grid (``2**n_bits`` levels from 0 to ``T - T / 2**n_bits``) at or above ``|min|``,
with ``T`` the threshold already selected for the signed activation.  The add it inserts is quantized *unsigned*
with that same ``T`` and bit width, and the activation itself moves to 16 bits, so its own rounding no longer counts.
The shifted output therefore loses the negative half of the grid: the step halves (a quarter of the rounding noise
on the values inside the range) and the values above ``T - step - shift`` are clipped.  Which of the two wins is
a property of the histogram: an activation whose largest values sit near ``T`` loses more to the clip than it
gains (measured: MobileNetV3-small's stem Hardswish, EfficientNet-B0's expansion SiLUs).

The noise of a choice is the expected squared error over every value of the histogram (bin left edges, as
:mod:`activation_noise` scores MCT's threshold search).  Whether the change matters for the layer that takes the
output: that layer's input error is the error XQuant measured where the activation's input is produced (the compare
point before it, the activation's slope taken as 1) plus the activation's own quantization noise; the shift can
remove at most ``(noise - shifted noise) / (input error + noise)`` of it, since that layer's own weight error only
adds to what is left.  Below :data:`MIN_SHARE` of it, the shift is not what costs that layer its precision."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Optional, Tuple

import numpy as np

from tb_xquant_plugin.judges import activation_noise as AN
from tb_xquant_plugin.model.report import Report
from tb_xquant_plugin.model.walk import nearest_compare_points

# The least share of the next layer's input error a shift must remove to be proposed as a fix.
MIN_SHARE = 0.05
MAX_BITS = 16  # wider is not quantized in effect (MCT moves a shifted activation itself to 16 bits)

HELPS = "shift_helps"  # it removes at least MIN_SHARE of the error reaching the next layer
SMALL_SHARE = "small_share"  # less noise, but too small a part of the error reaching the next layer
# the finer step cuts the noise of the values under the clip, the clip adds more on the few above it: what reaches
# the next layer depends on what that layer (and the activation after it) does with those few large errors, which
# the histograms do not show (measured both ways: bench/advice.py)
TRADE = "clip_trade"
CLIPS = "shift_clips"  # more noise everywhere: not a fix
UNMEASURED = "unmeasured"  # no histogram, threshold or bit width to replay


@dataclasses.dataclass
class ShiftReplay:
    threshold: float
    n_bits: int
    shift: float
    noise: float  # the activation's noise as the run quantized it (signed, at T)
    shifted_noise: float  # the noise of the shifted, unsigned output at T
    clipped: float  # share of the values the shifted grid clips
    body_noise: float  # the two noises on the values under the shifted grid's clip point only (per value of all)
    shifted_body_noise: float

    @property
    def noise_ratio(self) -> float:
        """How many times less noise the shift leaves (below 1: more)."""
        return self.noise / self.shifted_noise if self.shifted_noise > 0 else math.inf


def shift_value(min_value: float, threshold: float, n_bits: int) -> float:
    """MCT's shift: the smallest level of the unsigned grid at ``threshold`` that is at least ``-min_value``."""
    levels = 2 ** n_bits
    step = threshold / levels
    k = math.ceil(-min_value / step - 1e-9)
    return float(min(max(k, 0), levels - 1) * step)


def replay(hist: AN.MCTHistogram, threshold: float, n_bits: int, min_value: Optional[float] = None) -> ShiftReplay:
    """The activation's noise as quantized (signed, at ``threshold``) and once shifted as MCT would shift it."""
    x = hist.edges[:-1]
    c = hist.counts
    total = float(c.sum())
    low = float(x[c > 0].min()) if min_value is None else float(min_value)
    s = shift_value(low, threshold, n_bits)
    e_before = (AN.quantize(x, threshold, n_bits, True) - x) ** 2 * c
    y = x + s
    e_after = (AN.quantize(y, threshold, n_bits, False) - y) ** 2 * c
    under = y <= threshold - threshold / 2 ** n_bits
    return ShiftReplay(float(threshold), int(n_bits), s, float(e_before.sum() / total), float(e_after.sum() / total),
                       float(c[~under].sum() / total), float(e_before[under].sum() / total),
                       float(e_after[under].sum() / total))


def _mse(report: Report, name: str) -> Optional[float]:
    layer = report.layer_by_name.get(name)
    return layer.mse() if layer else None


def input_error(report: Report, name: str) -> Tuple[Optional[str], Optional[float]]:
    """(compare point, its MSE): the error that reaches the activation, measured where its input is produced (the
    activation itself when XQuant measures it: its metric is taken before its own quantizer)."""
    if name in report.layer_by_name:
        return name, _mse(report, name)
    node = report.node_by_name.get(name)
    if node is None:
        return None, None
    before = nearest_compare_points(report, node, lambda n: [report.node_by_id.get(i) for i in n.inputs])
    return (before[0], _mse(report, before[0])) if before else (None, None)


def assess(report: Report, name: str, min_value: Optional[float], threshold: Optional[float],
           n_bits: Optional[int]) -> Dict[str, Any]:
    """The replay of one activation and what it means (``finding``), as JSON-ready numbers and a sentence."""
    h = AN.from_tensorboard(report.histogram(name))
    out: Dict[str, Any] = {"finding": UNMEASURED, "threshold": threshold, "n_bits": n_bits}
    usable = (isinstance(threshold, (int, float)) and math.isfinite(threshold) and threshold > 0 and
              isinstance(n_bits, int) and 1 <= n_bits <= MAX_BITS)
    if h is None or not usable or not h.counts.sum() > 0:
        out["text"] = "its shift cannot be replayed (%s)" % (
            "no float histogram was logged for it" if h is None else
            "its threshold or bit width is not in the logs, or is not a usable number" if not usable else
            "its histogram is empty")
        return out
    r = replay(h, threshold, n_bits, min_value)
    point, e_in = input_error(report, name)
    share = (r.noise - r.shifted_noise) / (e_in + r.noise) if e_in is not None and e_in + r.noise > 0 else None
    out.update(shift=r.shift, noise=r.noise, shifted_noise=r.shifted_noise, noise_ratio=AN._num(r.noise_ratio),
               clipped_fraction=r.clipped, input_point=point, input_mse=e_in, share=AN._num(share))
    cut = ("shifted by %.4g, its %d-bit unsigned grid at threshold %g clips %.3g %% of its values" % (
        r.shift, r.n_bits, r.threshold, 100 * r.clipped))
    out.update(body_noise=r.body_noise, shifted_body_noise=r.shifted_body_noise)
    if r.shifted_noise >= r.noise and r.shifted_body_noise < r.body_noise:
        out["finding"] = TRADE
        out["text"] = ("replayed on its histogram, the shift cuts the noise of its values under the clip %.3gx "
                       "(%.3g -> %.3g) but %s, and their error outweighs it: its quantization noise goes from %.3g to "
                       "%.3g (x%.3g); whether the next layer gains depends on what it does with those few large "
                       "errors, which the logs do not show: worth a try on this activation alone" % (
                           r.body_noise / r.shifted_body_noise if r.shifted_body_noise else math.inf, r.body_noise,
                           r.shifted_body_noise, cut, r.noise, r.shifted_noise,
                           r.shifted_noise / r.noise if r.noise else math.inf))
    elif r.shifted_noise >= r.noise:
        out["finding"] = CLIPS
        out["text"] = ("replayed on its histogram, the shift leaves more noise, not less: %s, and its quantization "
                       "noise goes from %.3g to %.3g (x%.3g)" % (cut, r.noise, r.shifted_noise,
                                                                 r.shifted_noise / r.noise if r.noise else math.inf))
    elif share is None:
        out["finding"] = HELPS
        out["text"] = ("replayed on its histogram, the shift cuts its quantization noise %.3gx (%.3g -> %.3g; %s); "
                       "the error reaching it is not measured" % (r.noise_ratio, r.noise, r.shifted_noise, cut))
    else:
        where = "at %s" % point if point != name else "at it"
        out["finding"] = HELPS if share >= MIN_SHARE else SMALL_SHARE
        out["text"] = ("replayed on its histogram, the shift cuts its quantization noise %.3gx (%.3g -> %.3g); with "
                       "the error already reaching it (MSE %.3g %s), that is %.3g %% of the next layer's input error"
                       % (r.noise_ratio, r.noise, r.shifted_noise, e_in, where, 100 * share))
    return out

