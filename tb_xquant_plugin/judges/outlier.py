"""Outlier removal: MCT's z-score on the logged float activation histogram of each degraded layer, and the
evidence whether the proposed z_threshold would help (``judges.activation_noise`` replays MCT's threshold
selection with and without it).  A verdict whose replay finds a normal tail says "not the cause" and carries
no snippet; MCT's own outlier verdicts get the same replay in their numbers and message."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Optional

import numpy as np

from tb_xquant_plugin import manual
from tb_xquant_plugin.judges import activation_noise as AN
from tb_xquant_plugin.judges.base import CAUSE, Judge, JudgeContext
from tb_xquant_plugin.judges.facts import facts_of
from tb_xquant_plugin.judges.snippets import PTQ_FUNCTION, config_countermeasure, render
from tb_xquant_plugin.model import countermeasure as C
from tb_xquant_plugin.model.report import HISTOGRAMS, LAYER_METRICS, Report
from tb_xquant_plugin.model.verdict import COMPUTED, OUTLIER_REMOVAL, Verdict


@dataclasses.dataclass
class ZScoreHistogram:
    bins: np.ndarray  # MCT's bin values (the histogram's bucket limits)
    counts: np.ndarray
    mu: float
    sigma: float
    zscore: np.ndarray
    max_zscore: float
    suggested_z_threshold: Optional[float]


def zscore_histogram(buckets: Optional[np.ndarray]) -> Optional[ZScoreHistogram]:
    """Rebuild MCT's z-score from a TensorBoard histogram ``[left, right, count]``.

    MCT logs ``bucket_limit = bins[:-1]`` and computes the z-score on those same values, so the
    right edges TensorBoard stores are exactly MCT's bins (TensorBoard drops empty buckets at both
    ends, which changes neither mu nor sigma)."""
    if buckets is None:
        return None
    b = np.asarray(buckets, dtype=np.float64)
    if b.ndim != 2 or b.shape[0] == 0 or b.shape[1] != 3:
        return None
    bins, counts = b[:, 1], b[:, 2]
    ok = np.isfinite(bins) & np.isfinite(counts) & (counts >= 0)
    bins, counts = bins[ok], counts[ok]
    total = counts.sum()
    if bins.size == 0 or not np.isfinite(total) or total <= 0:
        return None
    mu = float(np.sum(bins * counts) / total)
    sigma = float(np.sqrt(np.sum((bins - mu) ** 2 * counts) / total))
    if not math.isfinite(sigma) or sigma <= 0:
        return ZScoreHistogram(bins, counts, mu, 0.0, np.zeros_like(bins), 0.0, None)
    z = np.abs(bins - mu) / sigma
    return ZScoreHistogram(bins, counts, mu, sigma, z, float(z.max()), _tail_start(bins, counts, z, mu))


def _tail_start(bins, counts, z, mu) -> Optional[float]:
    """The z-score where the outlier tail begins: the z_threshold to set.

    On each side of the mean, walk outwards over the bins and look for empty stretches that cut
    off a small tail (at most 10% of the values) lying beyond z=2.  The widest such gap marks where
    the tail begins; the value returned sits just below the tail's first bin, so MCT's filter
    (which drops bins with z > z_threshold) removes the tail and keeps the body.  Without a gap,
    fall back to the first bin beyond z=2 where the counts rise again after falling (MCT's
    "outliers after the peak" colouring)."""
    total = counts.sum()
    best = None
    for side in (1, -1):
        idx = np.where((bins - mu) * side > 0)[0]
        if idx.size == 0:
            continue
        idx = idx[np.argsort(z[idx])]  # from the mean outwards
        zs, cs = z[idx], counts[idx]
        nz = np.where(cs > 0)[0]
        if nz.size < 2:
            continue
        # Vectorized over the gaps (a histogram of 10^6 buckets with every other one empty has 500,000 of them):
        # each gap's tail mass comes from one suffix sum instead of summing the tail again per gap.
        cand = None
        gaps = np.where(np.diff(nz) > 1)[0]
        if gaps.size:
            after = nz[gaps + 1]  # the first non-empty bin beyond each gap
            begin = zs[after]
            tail_mass = np.cumsum(cs[::-1])[::-1][after] / total
            width = begin - zs[nz[gaps]]
            ok = (begin > 2.0) & (tail_mass <= 0.1) & (width > 0.0)
            if ok.any():
                cand = float(begin[int(np.argmax(np.where(ok, width, -np.inf)))])  # the widest; first on ties
        if cand is None:
            rise = np.flatnonzero((zs[1:] > 2.0) & (cs[1:] > cs[:-1]))
            if rise.size:
                cand = float(zs[rise[0] + 1])
        if cand is None:
            continue
        cand = math.floor(cand * 100.0) / 100.0 - 0.01
        if best is None or cand < best:
            best = cand
    return None if best is None else round(best, 2)


def zscore_of(report: Report, name: str) -> Optional[ZScoreHistogram]:
    """:func:`zscore_histogram` of a layer's logged histogram, once per report and layer."""
    cache = facts_of(report).zscores
    if name not in cache:
        cache[name] = zscore_histogram(report.histogram(name))
    return cache[name]


MAX_EVIDENCE = 4096  # replays kept per report ((layer, z) pairs; the oldest dropped beyond)


def _x(r: float) -> str:
    return "%.0f" % r if r >= 100 else "%.3g" % r


def finding_text(a: Optional[Dict[str, Any]], z: float) -> str:
    """One sentence: what the replayed threshold selection says a z_threshold of ``z`` does to one activation."""
    if a is None:
        return ("no replay: the logged histogram is not the evenly spaced one MCT collects, so the effect of "
                "z_threshold=%g is not measured" % z)
    f = a["finding"]
    if f == AN.BOUNDED:
        return ("%s is bounded: MCT takes its threshold from the known output range, so z_threshold=%g changes "
                "nothing: not the cause" % (a.get("op") or a["layer"], z))
    if f == AN.NOT_QUANTIZED:
        return ("MCT does not quantize this output (it is fused into the next op or left in float), so "
                "z_threshold=%g changes nothing here: not the cause" % z)
    if f == AN.IN_FORCE:
        return ("the run already used z_threshold=%g (the stage graph records it), at or under z=%g: nothing "
                "left to clip for this cause" % (a["run_z_threshold"], z))
    if f == AN.NOT_REPLAYED:
        return "error method %s is not replayed: no evidence either way" % a["error_method"]
    t0, t1 = a["threshold_without"], a["threshold_with"]
    qdq = "range_without" in a  # a QDQ ONNX model: its quantizer's range, not MCT's threshold search
    if f == AN.NO_EFFECT and qdq:
        r = a["range_without"]
        return ("the quantizer's range [%.4g, %.4g] already ends inside the z=%g window: clipping there changes "
                "nothing: not the cause" % (r[0], r[1], z))
    if f == AN.NO_EFFECT:
        return ("normal tail: clipping at z=%g changes the noise by 0%% (MCT's %s search keeps the threshold at "
                "%g): not the cause" % (z, a["error_method"], t0))
    if qdq:  # "threshold a -> b" reads as the ranges the quantizer had and would have
        t0, t1 = ("[%.4g, %.4g]" % tuple(a["range_without"]), "[%.4g, %.4g]" % tuple(a["range_with"]))
    else:
        t0, t1 = "%g" % t0, "%g" % t1
    if f == AN.NORMAL_TAIL:
        ratio = a["noise_ratio"]
        change = "%+.0f%%" % ((ratio - 1.0) * 100.0) + (" (%sx)" % _x(ratio) if ratio >= 3 else "")
        return ("normal tail: clipping at z=%g changes the noise by %s (%s %s -> %s, %.2g%% of the values "
                "clipped): not the cause" % (z, change, "range" if qdq else "threshold", t0, t1,
                                             100 * a["tail_fraction"]))
    if a["noise_ratio"] < 1.0:
        return ("real outlier tail: %s cuts this layer's activation quantization noise by %sx "
                "(%s %s -> %s)" % ("clipping at z=%g" % z if qdq else "z_threshold=%g" % z, _x(1.0 / a["noise_ratio"]),
                                   "range" if qdq else "threshold", t0, t1))
    tail = a.get("tail_range") or [None, None]
    return ("real outlier tail: %s cuts this layer's activation quantization noise by %sx on the "
            "%.1f%% of values inside the window (%s %s -> %s, SQNR %.0f -> %.0f dB); it clips the %.2g%% "
            "beyond (%s to %s) at %s, which counted over every value is %sx the noise: right only if the layers "
            "after it do not need those values"
            % ("clipping at z=%g" % z if qdq else "z_threshold=%g" % z, _x(1.0 / a["body_noise_ratio"]),
               100 * (1 - a["tail_fraction"]), "range" if qdq else "threshold", t0, t1,
               a["body_sqnr_db_without"], a["body_sqnr_db_with"], 100 * a["tail_fraction"],
               "%.4g" % tail[0] if tail[0] is not None else "?", "%.4g" % tail[1] if tail[1] is not None else "?",
               t1, _x(a["noise_ratio"])))


def evidence(report: Report, layer: str, z: float) -> Dict[str, Any]:
    """The replay for a layer and the activations feeding it, at ``z`` (once per report, layer and z)."""
    cache = facts_of(report).outlier_evidence
    key = (layer, float(z))
    if key not in cache:
        own = AN.assess(report, layer, z)
        inputs = [a for a in (AN.assess(report, i, z) for i in AN.feeding_activations(report, layer)) if a]
        real = [a for a in [own] + inputs if a and a["finding"] == AN.REAL_OUTLIER]
        text = finding_text(own, z)
        driving = [a for a in inputs if a["finding"] == AN.REAL_OUTLIER]
        if driving:
            d = driving[0]
            about_input = ("its input %s (whose quantization noise is what this layer's metric measures) has a real "
                           "outlier tail: threshold %g -> %g, noise on the values kept cut %sx" % (
                               d["layer"], d["threshold_without"], d["threshold_with"],
                               _x(1.0 / d["body_noise_ratio"]) if d["body_noise_ratio"] else "?"))
            if own is not None and own["finding"] == AN.REAL_OUTLIER:
                text += "; " + about_input
            else:  # this layer's own output is not the reason; what feeds it is
                text = ("z_threshold=%g helps through its input: %s. Its own output: %s"
                        % (z, about_input, text.replace(": not the cause", "")))
        side = side_effects(report, z, {layer} | {a["layer"] for a in inputs}) if real else None
        side_text = None
        if side and side["changed"]:
            side_text = ("a global z_threshold would also move the thresholds of %d other activation%s%s, %d of them "
                         "normal tails it would clip (%s)" % (
                             side["changed"], "" if side["changed"] == 1 else "s",
                             " (of the first %d scanned)" % side["scanned"] if side["truncated"] else "",
                             side["normal_tails"], ", ".join(side["examples"]) or "-"))
        while len(cache) >= MAX_EVIDENCE:
            cache.pop(next(iter(cache)))
        cache[key] = {"own": own, "inputs": inputs, "actionable": bool(real), "side_effects": side,
                      "real_layers": [a["layer"] for a in real], "side_text": side_text,
                      "finding": AN.REAL_OUTLIER if real else (own or {}).get("finding"), "text": text}
    return cache[key]


def countermeasure(report: Report, ev: Dict[str, Any], z: float) -> Optional[Dict[str, Any]]:
    """What an actionable outlier verdict proposes: MCT's global ``z_threshold`` when it moves no other activation's
    threshold; otherwise the same z on the outlier layers only, through MCT's network editor, so that no other
    layer's tail is clipped (a QDQ ONNX model: its quantizer's percentile calibration)."""
    if not ev["actionable"]:
        return None
    if report.toolchain in PTQ_FUNCTION and ev["side_effects"] and ev["side_effects"]["changed"]:
        return C.layer_activation(ev["real_layers"], z_threshold=z)
    return config_countermeasure(report.toolchain, z_threshold=z)


def scope_text(ev: Dict[str, Any], cm: Optional[Dict[str, Any]], producer: bool = False) -> str:
    """The sentence on where the z_threshold applies: global (MCT's advice) or on the outlier layers only."""
    if not ev.get("side_text"):
        return ""
    if cm and cm.get("kind") == C.LAYER_ACTIVATION:
        return "; the snippet sets it on %s only (MCT's network editor): %s" % (", ".join(cm["layers"]),
                                                                             ev["side_text"])
    if producer and ev["actionable"]:
        return "; %s (tb-xquant's verdict sets it on %s only)" % (ev["side_text"], ", ".join(ev["real_layers"]))
    return "; " + ev["side_text"]


MAX_SIDE_SCAN = 400  # activations replayed per verdict for the side effects of a global z_threshold


def side_effects(report: Report, z: float, skip: set) -> Dict[str, Any]:
    """What the same z_threshold does to the report's other activations (MCT applies it to all of them): how many
    change threshold, and how many of those are normal tails (clipped without a starved body to gain)."""
    changed, normal, examples, scanned, moved = 0, 0, [], 0, []
    names = [n for n in report.histograms if n not in skip]
    for name in names[:MAX_SIDE_SCAN]:
        a = AN.assess(report, name, z, finding_only=True)
        scanned += 1
        if a is None or a["finding"] not in (AN.REAL_OUTLIER, AN.NORMAL_TAIL):
            continue
        changed += 1
        if len(moved) < 50:
            moved.append(name)
        if a["finding"] == AN.NORMAL_TAIL:
            normal += 1
            if len(examples) < 3:
                examples.append(name)
    return {"changed": changed, "normal_tails": normal, "examples": examples, "layers": moved, "scanned": scanned,
            "truncated": len(names) > MAX_SIDE_SCAN}


def suggested_z(zh: ZScoreHistogram, z_threshold: float) -> float:
    suggestion = zh.suggested_z_threshold
    if suggestion is None or suggestion >= zh.max_zscore:
        suggestion = round(float(z_threshold), 2)
    return suggestion


def judge(report: Report, degraded: List[str], z_threshold: float) -> List[Verdict]:
    out = []
    for name in degraded:
        zh = zscore_of(report, name)
        if zh is None or not np.any(zh.zscore >= z_threshold):
            continue
        suggestion = suggested_z(zh, z_threshold)
        ev = evidence(report, name, suggestion)
        numbers = {
            "layer": name,
            "max_zscore": round(zh.max_zscore, 4),
            "threshold": z_threshold,
            "z_threshold": suggestion,
            "mu": zh.mu,
            "sigma": zh.sigma,
            "outlier_fraction": float(zh.counts[zh.zscore > suggestion].sum() / zh.counts.sum()),
            "finding": ev["finding"],
            "actionable": ev["actionable"],
            "replay": ev["own"],
            "inputs": ev["inputs"],
            "side_effects": ev["side_effects"],
        }
        cm = countermeasure(report, ev, suggestion)
        msg = ("Layer %s has float outputs up to %.1f standard deviations from the mean (z-score >= %g): %s%s."
               % (name, zh.max_zscore, z_threshold, ev["text"], scope_text(ev, cm)))
        out.append(Verdict(OUTLIER_REMOVAL, COMPUTED, [name], numbers, manual.JUDGE_TO_MANUAL[OUTLIER_REMOVAL], msg,
                           render(cm, report.toolchain), cm))
    return out


def annotate_producer(report: Report, producer: List[Verdict], z_threshold: float) -> List[Verdict]:
    """MCT's own outlier verdicts with the same replay: the z_threshold the tail starts at for that layer, and
    what it would do.  New Verdict objects (the report's are shared between analyses)."""
    out = []
    for v in producer:
        layer = v.layers[0] if v.judge == OUTLIER_REMOVAL and v.layers else None
        zh = zscore_of(report, layer) if layer else None
        if zh is None:
            out.append(v)
            continue
        z = suggested_z(zh, z_threshold)
        ev = evidence(report, layer, z)
        numbers = dict(v.numbers, max_zscore=round(zh.max_zscore, 4), z_threshold=z, finding=ev["finding"],
                       actionable=ev["actionable"], replay=ev["own"], inputs=ev["inputs"],
                       side_effects=ev["side_effects"])
        out.append(dataclasses.replace(v, numbers=numbers, message="%s Replayed on its histogram: %s%s." % (
            v.message, ev["text"], scope_text(ev, None, producer=True))))
    return out


def run(ctx: JudgeContext) -> List[Verdict]:
    z = ctx.thresholds.zscore_outlier_removal
    ctx.producer_verdicts[:] = annotate_producer(ctx.report, ctx.producer_verdicts, z)
    return judge(ctx.report, ctx.detection.degraded, z)


JUDGE = Judge(OUTLIER_REMOVAL, CAUSE, frozenset((LAYER_METRICS, HISTOGRAMS)), run,
              doc="a degraded layer whose logged float histogram reaches z-scores at or over the threshold")
