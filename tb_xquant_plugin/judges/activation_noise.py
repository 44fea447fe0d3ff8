"""What a ``z_threshold`` would do to one activation: MCT 2.6.1's threshold selection replayed on the logged
float histogram, with and without the z-score filter, and the quantization noise each choice leaves.

MCT picks an activation's power-of-two threshold from the histogram its statistics collector gathered
(``quantization_params_generation``):

- ``z_score_filter`` zeroes the counts of the bins whose z-score ``|bin - mu| / sigma`` is above
  ``z_threshold`` (mu and sigma from the bins' left edges, weighted by the counts); ``math.inf`` by default.
- With the default error method (``QuantizationErrorMethod.MSE``), ``qparams_selection_histogram_search``
  starts at twice the power of two above the largest ``|edge|`` of the histogram (the filter changes the
  counts, never the edges) and tries that value halved 19 more times.  Each candidate quantizes the bin
  edges (``quantize_tensor``: a grid of ``2**n_bits`` levels from ``-T`` or 0 up to ``T - step``) and is
  scored by ``sum((q(edge) - edge)**2 * count) / sum(count)`` over the filtered counts; the lowest score wins.
  MAE and LP use ``|q - edge|`` to the power 1 or p; ``NOCLIPPING`` takes the power of two above the largest
  ``|edge|`` whose bin still has a count.
- The sign comes from the quantization config or, when automatic, from whether any bin left after the
  filter lies below zero.

The noise of a choice is the same score on the *unfiltered* counts: the expected squared error the
quantizer leaves on every value the layer produced, the clipped tail included.  It is split into the part
on the values the filter keeps (the body) and the part on the values it drops (the tail)."""
from __future__ import annotations

import bisect
import dataclasses
import math
from typing import List, Optional, Tuple

import numpy as np

from tb_xquant_plugin.judges.facts import facts_of
from tb_xquant_plugin.model.report import ONNX_TOOLCHAINS

MIN_THRESHOLD = 2.0 ** -16  # model_compression_toolkit.constants.MIN_THRESHOLD
HISTOGRAM_SEARCH_ITERATIONS = 20  # power_of_two_selection_histogram's n_iter (get_activations_qparams keeps it)
SEARCHED_METHODS = {"MSE": 2.0, "HMSE": 2.0, "MAE": 1.0}  # error method -> power of |q - x| (LP: l_p_value)


@dataclasses.dataclass
class MCTHistogram:
    """A histogram as MCT's collector holds it: ``edges`` (n + 1 values, a linspace) and ``counts`` (n)."""

    edges: np.ndarray
    counts: np.ndarray


def from_tensorboard(buckets: Optional[np.ndarray]) -> Optional[MCTHistogram]:
    """MCT's histogram back from the ``[left, right, count]`` buckets TensorBoard keeps.

    MCT logs ``bucket_limit = edges[:-1]`` (the left edge of every bin) with its count.  TensorBoard reads
    each limit as a right edge, drops the empty buckets at both ends and writes the histogram's min (the first
    left edge) as the first left and its max (the *last left edge*) as the last right, all in float32.  The
    edges are a linspace, so: ``edges[0]`` is the first left, the bin width is the spacing of the inner rights,
    the last row is the bin after the one before it, and the last right tells how many bins there were.
    None when the buckets do not have that shape (too few, or not evenly spaced)."""
    if buckets is None:
        return None
    b = np.asarray(buckets, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 3 or b.shape[0] < 3 or not np.all(np.isfinite(b)) or np.any(b[:, 2] < 0):
        return None
    lefts, rights, counts = b[:, 0], b[:, 1], b[:, 2]
    inner = np.diff(rights[:-1])
    step = float(np.median(inner))
    if not step > 0 or np.any(np.abs(inner - step) > 1e-3 * step + 1e-6 * np.abs(rights[:-2]).max()):
        return None
    lo = float(lefts[0])
    first = int(round((rights[0] - lo) / step))
    last_left = int(round((rights[-1] - lo) / step))  # index of the last left edge: n_bins - 1
    n = last_left + 1
    k = b.shape[0]
    if first < 0 or first + k > n or n > 1 << 20:
        return None
    # float32 rights put the spacing off by ~1e-7; the true linspace runs from the min to the max edge
    step = (float(rights[-1]) - lo) / (n - 1) if n > 1 else step
    edges = lo + step * np.arange(n + 1, dtype=np.float64)
    full = np.zeros(n, dtype=np.float64)
    full[first:first + k] = counts
    return MCTHistogram(edges, full)


def z_filter(edges: np.ndarray, counts: np.ndarray, z_threshold: float) -> np.ndarray:
    """MCT's ``z_score_filter``: the counts with every bin of z-score above ``z_threshold`` zeroed."""
    return ThresholdReplay(MCTHistogram(edges, counts)).filtered(z_threshold)


def zscores(edges: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """The z-score of every bin's left edge, under the histogram's own mean and deviation (0 without spread)."""
    return ThresholdReplay(MCTHistogram(edges, counts)).zs


def quantize(x: np.ndarray, threshold, n_bits: int, signed: bool) -> np.ndarray:
    """MCT's power-of-two ``quantize_tensor``: a uniform grid of 2**n_bits levels on [-T or 0, T - step],
    nudged so that zero is a level (``fix_range_to_include_zero``: the range always holds zero here), values
    clipped to it and rounded to the nearest level.  ``threshold`` may be an array of shape (k, 1): k grids."""
    threshold = np.asarray(threshold, dtype=np.float64)
    step = threshold / 2 ** (n_bits - int(signed))
    low, high = (-threshold if signed else np.zeros_like(threshold)), threshold - step
    scale = (high - low) / (2 ** n_bits - 1)
    a = scale * np.round(low / scale)
    b = high - low + a
    delta = (b - a) / (2 ** n_bits - 1)
    return delta * np.round((np.clip(x, a, b) - a) / delta) + a


def power_of_two_ceil(x: float, min_threshold: float = MIN_THRESHOLD) -> float:
    return float(2.0 ** math.ceil(math.log2(max(x, min_threshold))))


def histogram_error(edges: np.ndarray, counts: np.ndarray, threshold: float, n_bits: int, signed: bool,
                    power: float = 2.0) -> float:
    """``sum(|q(edge) - edge|**power * count) / sum(count)`` over the bins' left edges (MCT's histogram error)."""
    total = counts.sum()
    if not total > 0:
        return math.nan
    err = np.abs(quantize(edges, threshold, n_bits, signed) - edges)[:-1]
    return float(np.sum(err ** power * counts) / total)


def auto_signed(edges: np.ndarray, counts: np.ndarray) -> bool:
    """MCT's automatic signedness: a bin with a count whose left edge is below zero."""
    return bool(np.any(edges[:-1][counts > 0] < 0))


def select_threshold(hist: MCTHistogram, n_bits: int, signed: Optional[bool], z_threshold: float = math.inf,
                     method: str = "MSE", l_p_value: float = 2.0) -> Tuple[float, bool]:
    """(threshold, signed) MCT 2.6.1 picks for this histogram: ``z_score_filter`` then
    ``power_of_two_selection_histogram``.  ``signed=None``: automatic (from the filtered histogram).
    ValueError for an error method this does not replay (KL)."""
    return ThresholdReplay(hist).select(n_bits, signed, z_threshold, method, l_p_value)


@dataclasses.dataclass
class Noise:
    """The noise one (threshold, signed) choice leaves on a histogram."""

    threshold: float
    signed: bool
    total: float  # expected squared error over every value
    body: float  # over the values inside the z window (the ones the filter keeps)
    tail: float  # over the values beyond it (clipped or not)


def noise_of(hist: MCTHistogram, threshold: float, n_bits: int, signed: bool, keep: np.ndarray) -> Noise:
    return ThresholdReplay(hist).noise(threshold, n_bits, signed, keep)


def _noise(hist: MCTHistogram, q_edges: np.ndarray, threshold: float, signed: bool, keep: np.ndarray) -> Noise:
    sq = (q_edges - hist.edges)[:-1] ** 2
    c = hist.counts
    total = c.sum()
    kc, tc = c[keep].sum(), c[~keep].sum()
    return Noise(threshold, signed, float(np.sum(sq * c) / total),
                 float(np.sum(sq[keep] * c[keep]) / kc) if kc > 0 else 0.0,
                 float(np.sum(sq[~keep] * c[~keep]) / tc) if tc > 0 else 0.0)


@dataclasses.dataclass
class ZEffect:
    """MCT's threshold for one activation without and with a z_threshold, and the noise of each."""

    z_threshold: float
    n_bits: int
    method: str
    without: Noise
    with_z: Noise
    tail_fraction: float  # share of the values beyond the z window
    power: float  # the signal power E[x^2], to put the noise in proportion

    @property
    def changes_threshold(self) -> bool:
        return self.without.threshold != self.with_z.threshold or self.without.signed != self.with_z.signed

    @property
    def noise_ratio(self) -> float:
        """Noise with the filter / noise without (over every value): < 1 when the filter helps."""
        if self.without.total > 0:
            return self.with_z.total / self.without.total
        return 1.0 if self.with_z.total == 0 else math.inf

    @property
    def body_ratio(self) -> float:
        """The same on the values the filter keeps."""
        if self.without.body > 0:
            return self.with_z.body / self.without.body
        return 1.0 if self.with_z.body == 0 else math.inf


def z_effect(hist: MCTHistogram, z_threshold: float, n_bits: int, signed: Optional[bool],
             method: str = "MSE", l_p_value: float = 2.0, base_z: float = math.inf) -> ZEffect:
    """Replay MCT's threshold selection at ``base_z`` (the run's own z_threshold: none by default) and at
    ``z_threshold``.  ``signed`` is the signedness the run used (the stage graph's); with the filter it is
    recomputed as MCT does under automatic signedness when that reproduces the run's (else kept)."""
    return ThresholdReplay(hist).z_effect(z_threshold, n_bits, signed, method, l_p_value, base_z)


class ThresholdReplay:
    """MCT 2.6.1's activation threshold selection replayed on one logged histogram, and the noise each choice
    leaves.  The threshold-independent parts (z-scores, the search's candidates, every candidate's error on every
    bin, the quantized edges of each threshold chosen) are computed once and kept: the outlier judge replays
    hundreds of activations at every z it tries, and :func:`prepared` keeps one replay per report and layer."""

    __slots__ = ("hist", "left", "total", "zs", "sigma_ok", "candidates", "_errors", "_q", "_auto", "_counted_zs")

    def __init__(self, hist: MCTHistogram):
        self.hist = hist
        self.left = hist.edges[:-1]
        counts = hist.counts
        self.total = counts.sum()
        mu = np.sum(self.left * counts) / self.total
        sigma = math.sqrt(np.sum((self.left - mu) ** 2 * counts) / self.total)
        self.sigma_ok = sigma > 0
        self.zs = np.abs(self.left - mu) / sigma if self.sigma_ok else np.zeros_like(self.left)
        self.candidates = None
        self._errors: dict = {}
        self._q: dict = {}
        self._auto: dict = {}
        self._counted_zs: Optional[List[float]] = None

    def same_filter(self, z_a: float, z_b: float) -> bool:
        """``np.array_equal(self.filtered(z_a), self.filtered(z_b))`` without filtering: the counts (finite and
        non-negative: :func:`from_tensorboard`) differ only where one filter zeroes a counted bin the other keeps,
        a bin whose z-score lies between the two thresholds."""
        if not self.sigma_ok:
            return True
        lo = z_a if math.isfinite(z_a) else math.inf
        hi = z_b if math.isfinite(z_b) else math.inf
        if lo > hi:
            lo, hi = hi, lo
        if lo == hi:
            return True
        if self._counted_zs is None:
            self._counted_zs = np.sort(self.zs[self.hist.counts != 0]).tolist()
        counted = self._counted_zs
        first_above = bisect.bisect_right(counted, lo)  # the first counted bin filtered at lo
        return first_above >= len(counted) or not counted[first_above] <= hi

    def filtered(self, z_threshold: float) -> np.ndarray:
        """The counts with every bin of z-score above ``z_threshold`` zeroed (MCT's ``z_score_filter``)."""
        out = np.array(self.hist.counts, dtype=np.float64)
        if not math.isfinite(z_threshold) or not self.sigma_ok:
            return out
        out[self.zs > z_threshold] = 0.0
        return out

    def auto_signed(self, z_threshold: float) -> bool:
        hit = self._auto.get(z_threshold)
        if hit is None:
            hit = self._auto[z_threshold] = auto_signed(self.hist.edges, self.filtered(z_threshold))
        return hit

    def select(self, n_bits: int, signed: Optional[bool], z_threshold: float, method: str,
               l_p_value: float = 2.0) -> Tuple[float, bool]:
        """See :func:`select_threshold`."""
        edges = self.hist.edges
        counts = self.filtered(z_threshold)
        if signed is None:
            signed = auto_signed(edges, counts)
        if method == "NOCLIPPING":
            kept = np.abs(edges)[1:][counts > 0]
            return power_of_two_ceil(float(kept.max()) if kept.size else 0.0, MIN_THRESHOLD), signed
        if method == "LP":
            power = float(l_p_value)
        elif method in SEARCHED_METHODS:
            power = SEARCHED_METHODS[method]
        else:
            raise ValueError("threshold selection with error method %s is not replayed" % method)
        if self.candidates is None:
            start = 2.0 * power_of_two_ceil(float(np.max(np.abs(edges))), MIN_THRESHOLD)
            self.candidates = start / np.power(2.0, np.arange(HISTOGRAM_SEARCH_ITERATIONS, dtype=np.float64))
        candidates = self.candidates
        total = counts.sum()
        if not total > 0:
            return float(max(candidates[0], MIN_THRESHOLD)), signed
        key = (n_bits, signed, power)
        e = self._errors.get(key)
        if e is None:
            err = np.abs(quantize(edges[None, :], candidates[:, None], n_bits, signed) - edges[None, :])[:, :-1]
            e = self._errors[key] = err ** power
        errors = np.sum(e * counts[None, :], axis=1) / total
        return float(max(candidates[int(np.nanargmin(errors))], MIN_THRESHOLD)), signed

    def noise(self, threshold: float, n_bits: int, signed: bool, keep: np.ndarray) -> Noise:
        """The noise of one (threshold, signed) choice over every value, the kept ones and the tail."""
        key = (threshold, n_bits, signed)
        q = self._q.get(key)
        if q is None:
            if len(self._q) >= 64:
                self._q.pop(next(iter(self._q)))
            q = self._q[key] = quantize(self.hist.edges, threshold, n_bits, signed)
        return _noise(self.hist, q, threshold, signed, keep)

    def z_effect(self, z_threshold: float, n_bits: int, signed: Optional[bool], method: str = "MSE",
                 l_p_value: float = 2.0, base_z: float = math.inf) -> ZEffect:
        """See :func:`z_effect`."""
        hist = self.hist
        base_t, base_s = self.select(n_bits, signed, base_z, method, l_p_value)
        auto = signed is None or self.auto_signed(base_z) == signed
        z_t, z_s = self.select(n_bits, None if auto else signed, z_threshold, method, l_p_value)
        keep = self.zs <= z_threshold
        total = self.total
        left = self.left
        return ZEffect(z_threshold, n_bits, method,
                       self.noise(base_t, n_bits, base_s, keep), self.noise(z_t, n_bits, z_s, keep),
                       float(hist.counts[~keep].sum() / total), float(np.sum(left ** 2 * hist.counts) / total))


_NO_HISTOGRAM = object()


def prepared(report, name: str) -> Optional[ThresholdReplay]:
    """The replay's threshold-independent parts for one activation of a report (once per report and name), or None
    without a usable histogram."""
    cache = facts_of(report).replays
    hit = cache.get(name)
    if hit is None:
        hist = from_tensorboard(report.histogram(name))
        hit = ThresholdReplay(hist) if hist is not None and hist.counts.sum() > 0 else _NO_HISTOGRAM
        cache[name] = hit
    return None if hit is _NO_HISTOGRAM else hit


# --------------------------------------------------------------------------------------------
# One activation of a report: what the filter would do there, and what kind of tail it has
# --------------------------------------------------------------------------------------------
REAL_OUTLIER = "real_outlier_tail"
IN_FORCE = "in_force"  # the run already used this z_threshold (or a lower one)
NORMAL_TAIL = "normal_tail"
NO_EFFECT = "no_effect"  # the filter leaves MCT's threshold where it is
BOUNDED = "bounded"  # MCT takes the threshold from the op's known range; the filter plays no part
NOT_QUANTIZED = "not_quantized"  # MCT leaves this output in float (fused into the next op, or not quantized)
NOT_REPLAYED = "not_replayed"  # an error method this module does not replay

# A tail is a real outlier tail when, without the filter, the values inside the z window are starved of levels
# (their SQNR under STARVED_BODY_DB: fewer than ~4 effective bits, because the tail stretched the threshold),
# the filter gives them at least MIN_GAIN_DB more, and the tail is a tail (at most MAX_TAIL_FRACTION of the
# values).  MIN_GAIN_DB is more than one halving of the range (6.02 dB): halving a power-of-two threshold is what
# clipping a heavy but normal tail gives.  Measured (issue 13, bench/advice.py): bodies starved by an outlier
# channel gain 20-30 dB on MCT's power-of-two thresholds (demo; ResNet18 and RegNet with a 300x channel, where
# the clip fixed the model: accuracy +1.2 and +2.6 points) and 9-10 dB on a QDQ model's min-max range (a 50x
# channel); EfficientNet-B0's squeeze-excitation products gain exactly one halving, and clipping them made the
# model worse (output SQNR x0.6, degraded layers 28 -> 45).  Ordinary layers' bodies sit at 30-46 dB.
STARVED_BODY_DB = 24.0
MIN_GAIN_DB = 8.0
MAX_TAIL_FRACTION = 0.10
# A far tail is real too: the clip divides a starved body's threshold by MIN_THRESHOLD_CUT or more (three halvings),
# so the tail is a population far beyond the body (an outlier channel), whatever the gain measured inside the z
# window (whose values between the new threshold and the window's edge are clipped too).  Measured (bench/advice.py,
# the z_threshold set on that layer only): EfficientNet-B0 with a 300x channel at features.7.0's projection,
# threshold 2048 -> 256, body 15.4 -> 20.2 dB: accuracy 11 -> 71 %; the squeeze-excitation products, one halving
# each, got worse (degraded layers 25 -> 27-29).
MIN_THRESHOLD_CUT = 8.0
# Ops MCT 2.6.1 knows the output range of (LAYER2MINMAX with both bounds): their threshold is not searched.
BOUNDED_OPS = {"softmax", "sigmoid", "hardsigmoid"}
DEFAULT_BITS = 8
NOT_QUANTIZED_MODES = {"NO_QUANT", "FLN_QUANT"}
# On a QDQ model's range, clipping at z is a real outlier removal when it at least halves the noise over every
# value (or un-starves the body as above); a smaller cut trims a normal tail.
QDQ_MIN_NOISE_CUT = 0.5


def _db(power: float, noise: float) -> Optional[float]:
    if not noise > 0:
        return None if not power > 0 else math.inf
    return 10.0 * math.log10(power / noise) if power > 0 else None


def classify(effect: ZEffect, body_power: float) -> str:
    if effect.noise_ratio < 1.0 and effect.changes_threshold:
        return REAL_OUTLIER  # the noise over every value falls (NOCLIPPING runs, or the sign becomes unsigned)
    if not effect.changes_threshold:
        return NO_EFFECT
    before, after = _db(body_power, effect.without.body), _db(body_power, effect.with_z.body)
    starved = before is not None and after is not None and before < STARVED_BODY_DB
    if starved and effect.tail_fraction <= MAX_TAIL_FRACTION and (
            after - before >= MIN_GAIN_DB or effect.without.threshold >= MIN_THRESHOLD_CUT * effect.with_z.threshold):
        return REAL_OUTLIER
    return NORMAL_TAIL


def _or_nan(x: Optional[float]) -> float:
    return math.nan if x is None else x


def _num(x: float, digits: int = 4) -> Optional[float]:
    """A JSON-friendly number: None for NaN, +-inf kept (views.safe writes them as strings)."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return None
    return float("%.*g" % (digits, x)) if math.isfinite(x) else x


def affine_quantize(x: np.ndarray, low: float, high: float, n_bits: int) -> np.ndarray:
    """A QDQ model's ``QuantizeLinear`` / ``DequantizeLinear`` pair on the range [low, high]: 2**n_bits levels
    ``scale * (k - zero_point)``, the zero point rounded so that zero is a level, values clipped to the grid."""
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    levels = 2 ** n_bits - 1
    scale = (high - low) / levels if high > low else 1.0
    zp = round(-low / scale)
    k = np.clip(np.round(np.asarray(x, dtype=np.float64) / scale) + zp, 0, levels)
    return scale * (k - zp)


def assess_qdq_range(report, name: str, z_threshold: float, out: dict, qp) -> dict:
    """The replay for a QDQ ONNX model: the range the quantizer chose (read from the model's scale and zero
    point) against the same range clipped to the z window ``mu +- z * sigma`` of the float histogram -- what a
    percentile calibration at the matching percentile does.  No MCT threshold search is involved."""
    hist = from_tensorboard(report.histogram(name))
    rng = qp.activation_range if qp is not None else None
    out["range_from"] = "QDQ model"
    if rng is None or hist is None:
        out["finding"] = NOT_REPLAYED
        return out
    lo, hi = float(rng[0]), float(rng[1])
    left = hist.edges[:-1]
    total = hist.counts.sum()
    mu = float(np.sum(left * hist.counts) / total)
    sigma = math.sqrt(float(np.sum((left - mu) ** 2 * hist.counts) / total))
    keep = zscores(hist.edges, hist.counts) <= z_threshold
    w_lo, w_hi = mu - z_threshold * sigma, mu + z_threshold * sigma
    if qp.quant_mode == "symmetric" or (lo < 0 and abs(lo + hi) <= 0.02 * (hi - lo)):
        t = min(max(abs(lo), abs(hi)), max(abs(w_lo), abs(w_hi)))  # a symmetric range stays symmetric
        c_lo, c_hi = (-t if lo < 0 else lo), t
    else:
        c_lo, c_hi = (max(lo, w_lo) if lo < 0 else lo), min(hi, w_hi)
    bits = out["n_bits"]
    without = _noise(hist, affine_quantize(hist.edges, lo, hi, bits), max(abs(lo), abs(hi)), lo < 0, keep)
    with_z = _noise(hist, affine_quantize(hist.edges, c_lo, c_hi, bits), max(abs(c_lo), abs(c_hi)), c_lo < 0, keep)
    kc = hist.counts[keep]
    body_power = float(np.sum(left[keep] ** 2 * kc) / kc.sum()) if kc.sum() > 0 else 0.0
    effect = ZEffect(z_threshold, bits, "range", without, with_z, float(hist.counts[~keep].sum() / total),
                     float(np.sum(left ** 2 * hist.counts) / total))
    changed = (c_hi - c_lo) < (hi - lo) * (1 - 1e-3)
    tail_values = left[~keep][hist.counts[~keep] > 0]
    finding = classify(effect, body_power) if changed else NO_EFFECT
    if finding == REAL_OUTLIER and effect.noise_ratio < 1.0 and effect.noise_ratio > QDQ_MIN_NOISE_CUT:
        finding = NORMAL_TAIL  # a cut of a few percent is a tail trimmed, not an outlier removed
    out.update(
        finding=finding,
        range_without=[_num(lo), _num(hi)], range_with=[_num(c_lo), _num(c_hi)],
        threshold_without=_num(max(abs(lo), abs(hi))), threshold_with=_num(max(abs(c_lo), abs(c_hi))),
        tail_fraction=_num(effect.tail_fraction), tail_range=[_num(float(tail_values.min())),
                                                              _num(float(tail_values.max()))] if tail_values.size else None,
        noise_without=_num(without.total), noise_with=_num(with_z.total), noise_ratio=_num(effect.noise_ratio),
        body_noise_without=_num(without.body), body_noise_with=_num(with_z.body),
        body_noise_ratio=_num(effect.body_ratio),
        body_sqnr_db_without=_num(_or_nan(_db(body_power, without.body)), 3),
        body_sqnr_db_with=_num(_or_nan(_db(body_power, with_z.body)), 3),
    )
    return out


def assess(report, name: str, z_threshold: float, finding_only: bool = False) -> Optional[dict]:
    """The replay for one activation of a report as JSON-friendly numbers, or None without a usable histogram.
    ``finding_only``: the caller reads only ``finding``; when the z filter leaves the same counts as the run's own
    (most activations: no counted bin between the two z-scores), the answer is ``{"finding": NO_EFFECT}`` without
    the replay's numbers.

    Bit width, sign, error method and the run's own z_threshold come from the stage graph (``Report.quant``);
    without stage logs 8 bits, MSE and the histogram's sign are assumed (``bits_from: "assumed"``)."""
    prep = prepared(report, name)
    if prep is None:
        return None
    hist = prep.hist
    qp = report.quant.get(name)
    op = (qp.op if qp and qp.op else "") or ""
    node = report.node_by_name.get(name) or report.node_by_name.get(name + "_layer")
    op = op or (node.op if node else "")
    bits = qp.activation_nbits if qp and qp.activation_nbits else None
    out = {"layer": name, "z_threshold": _num(z_threshold), "op": op or None,
           "n_bits": bits or DEFAULT_BITS, "bits_from": "stage graph" if bits else "assumed",
           "signed": qp.signed if qp else None, "error_method": (qp.activation_error_method if qp else None) or "MSE",
           "run_z_threshold": qp.z_threshold if qp else None,
           "stage_threshold": qp.activation_threshold if qp else None}
    if report.toolchain in ONNX_TOOLCHAINS:  # the quantizer's own range, not MCT's search
        return assess_qdq_range(report, name, z_threshold, out, qp)
    if op.lower().lstrip("_").replace("torch.nn.functional.", "") in BOUNDED_OPS:
        out["finding"] = BOUNDED
        return out
    if qp is not None and (qp.quant_mode in NOT_QUANTIZED_MODES or (qp.activation_nbits or 0) > 16):
        out["finding"] = NOT_QUANTIZED
        return out
    run_z = qp.z_threshold if qp and qp.z_threshold is not None else math.inf
    if run_z <= z_threshold * (1 + 1e-6):
        out["finding"] = IN_FORCE
        return out
    if finding_only and (out["error_method"] in SEARCHED_METHODS or out["error_method"] in ("LP", "NOCLIPPING")) \
            and prep.same_filter(z_threshold, run_z):
        # the same counts select the same threshold and sign: z_effect would find no change
        return {"layer": name, "finding": NO_EFFECT}
    try:
        effect = prep.z_effect(z_threshold, out["n_bits"], out["signed"], out["error_method"], base_z=run_z)
        at_run = effect.without.threshold
    except ValueError:
        out["finding"] = NOT_REPLAYED
        return out
    keep = prep.zs <= z_threshold
    left = hist.edges[:-1]
    kc = hist.counts[keep]
    body_power = float(np.sum(left[keep] ** 2 * kc) / kc.sum()) if kc.sum() > 0 else 0.0
    tail_values = left[~keep][hist.counts[~keep] > 0]
    out.update(
        finding=classify(effect, body_power),
        threshold_without=effect.without.threshold, threshold_with=effect.with_z.threshold,
        signed_without=effect.without.signed, signed_with=effect.with_z.signed,
        # the replay at the run's own z_threshold picks the stage graph's threshold: the histogram is the run's
        replays_stage_graph=(at_run == out["stage_threshold"]) if out["stage_threshold"] else None,
        tail_fraction=_num(effect.tail_fraction), tail_range=[_num(float(tail_values.min())),
                                                              _num(float(tail_values.max()))] if tail_values.size else None,
        noise_without=_num(effect.without.total), noise_with=_num(effect.with_z.total),
        noise_ratio=_num(effect.noise_ratio),
        body_noise_without=_num(effect.without.body), body_noise_with=_num(effect.with_z.body),
        body_noise_ratio=_num(effect.body_ratio),
        body_sqnr_db_without=_num(_or_nan(_db(body_power, effect.without.body)), 3),
        body_sqnr_db_with=_num(_or_nan(_db(body_power, effect.with_z.body)), 3),
    )
    return out


def feeding_activations(report, name: str, limit: int = 4) -> list:
    """The quantized activations whose noise enters a layer's XQuant metric: the metric compares the layer's
    own output before its activation quantizer, so what reaches it quantized are its inputs.  Walks up through
    nodes MCT does not quantize (``NO_QUANT``, ``FLN_QUANT``: flatten, a convolution fused with its ReLU...)."""
    node = report.node_by_name.get(name + "_layer") or report.node_by_name.get(name)
    if node is None:
        return []
    found: list = []
    stack = list(node.inputs)
    seen = set()
    while stack and len(found) < limit and len(seen) < 64:
        nid = stack.pop(0)
        if nid in seen:
            continue
        seen.add(nid)
        src = report.node_by_id.get(nid)
        if src is None:
            continue
        sname = src.name[: -len("_layer")] if src.name.endswith("_layer") else src.name
        qp = report.quant.get(sname)
        quantized = qp is not None and qp.activation_nbits is not None and qp.activation_nbits <= 16 and \
            (qp.quant_mode or "QUANT") not in NOT_QUANTIZED_MODES
        if quantized and report.histogram(sname) is not None:
            found.append(sname)
        elif not quantized:
            stack.extend(src.inputs)
    return found
