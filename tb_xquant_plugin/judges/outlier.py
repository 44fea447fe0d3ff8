"""Outlier removal: MCT's z-score on the logged float activation histogram of each degraded layer."""
from __future__ import annotations

import dataclasses
import math
from typing import List, Optional

import numpy as np

from tb_xquant_plugin import manual
from tb_xquant_plugin.judges.base import CAUSE, Judge, JudgeContext
from tb_xquant_plugin.judges.facts import facts_of
from tb_xquant_plugin.judges.snippets import core_config_snippet
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
        cand = None
        widest = 0.0
        for g in np.where(np.diff(nz) > 1)[0]:
            begin = zs[nz[g + 1]]
            tail_mass = cs[nz[g + 1]:].sum() / total
            width = begin - zs[nz[g]]
            if begin > 2.0 and tail_mass <= 0.1 and width > widest:
                widest, cand = width, float(begin)
        if cand is None:
            for i in range(1, len(cs)):
                if zs[i] > 2.0 and cs[i] > cs[i - 1]:
                    cand = float(zs[i])
                    break
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


def judge(report: Report, degraded: List[str], z_threshold: float) -> List[Verdict]:
    out = []
    for name in degraded:
        zh = zscore_of(report, name)
        if zh is None or not np.any(zh.zscore >= z_threshold):
            continue
        suggestion = zh.suggested_z_threshold
        if suggestion is None or suggestion >= zh.max_zscore:
            suggestion = round(float(z_threshold), 2)
        numbers = {
            "layer": name,
            "max_zscore": round(zh.max_zscore, 4),
            "threshold": z_threshold,
            "z_threshold": suggestion,
            "mu": zh.mu,
            "sigma": zh.sigma,
            "outlier_fraction": float(zh.counts[zh.zscore > suggestion].sum() / zh.counts.sum()),
        }
        msg = ("Layer %s has float outputs up to %.1f standard deviations from the mean (z-score >= %g). "
               "Setting z_threshold=%g removes the tail beyond z=%g when MCT picks activation thresholds."
               % (name, zh.max_zscore, z_threshold, suggestion, suggestion))
        out.append(Verdict(OUTLIER_REMOVAL, COMPUTED, [name], numbers, manual.JUDGE_TO_MANUAL[OUTLIER_REMOVAL], msg,
                           core_config_snippet(report.toolchain, z_threshold=suggestion)))
    return out


def run(ctx: JudgeContext) -> List[Verdict]:
    return judge(ctx.report, ctx.detection.degraded, ctx.thresholds.zscore_outlier_removal)


JUDGE = Judge(OUTLIER_REMOVAL, CAUSE, frozenset((LAYER_METRICS, HISTOGRAMS)), run,
              doc="a degraded layer whose logged float histogram reaches z-scores at or over the threshold")
