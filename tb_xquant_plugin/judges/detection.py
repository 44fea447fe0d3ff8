"""Degraded-layer detection with the exact semantics of MCT 2.6.1's ``core_detect_degrade_layer``.

For every metric that has a threshold, and for the representative then the validation data, a
layer is degraded when its value is ``<= threshold`` (metrics detected *under* the threshold, e.g.
cs and sqnr) or ``>= threshold`` (the others, e.g. mse).  A metric without a direction counts as
"above".  NaN never compares true, so a NaN metric never marks a layer.  The judges run only when
``len(degraded) / len(layers) < threshold_degrade_layer_ratio``.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from tb_xquant_plugin.model.report import DATASETS, Report
from tb_xquant_plugin.model.thresholds import Thresholds


@dataclasses.dataclass
class Detection:
    degraded: List[str]  # in MCT's order
    flags: Dict[str, Dict[str, bool]]  # layer -> "metric.dataset" -> degraded by it
    worst: Dict[str, Tuple[str, str, float, float]]  # layer -> (metric, dataset, value, severity)
    ratio: float
    skipped_metrics: List[str]
    judges_skipped: bool


def severity(value: float, threshold: float, under: bool) -> float:
    """How far past the threshold a value is (>= 1 means degraded), comparable across metrics."""
    if value is None or math.isnan(value):
        return 0.0
    eps = 1e-12
    if under:
        return (abs(threshold) + eps) / (abs(value) + eps) if value > 0 else (math.inf if value <= threshold else 0.0)
    return (abs(value) + eps) / (abs(threshold) + eps)


class _Columns:
    """The report's metric values as one float column per (metric, dataset), NaN where a layer has none (``present``
    says which), built once per report: detection with new thresholds is then a few array comparisons."""

    def __init__(self, report: Report):
        self.names = [l.name for l in report.layers]
        self.cols: Dict[Tuple[str, str], Tuple[np.ndarray, np.ndarray]] = {}
        for metric in report.metrics:
            for ds in DATASETS:
                vals = [l.metrics.get(ds, {}).get(metric) for l in report.layers]
                present = np.fromiter((v is not None for v in vals), dtype=bool, count=len(vals))
                self.cols[(metric, ds)] = (np.array([math.nan if v is None else v for v in vals], dtype=np.float64),
                                           present)


def _columns(report: Report) -> Optional[_Columns]:
    """:class:`_Columns` of a report (cached with its facts), or None when a value is not a plain number (bool
    included: compared as Python compares it, by the loop below)."""
    from tb_xquant_plugin.judges.facts import facts_of  # facts imports the report model; late to keep this light

    f = facts_of(report)
    if f.detect_columns is None:
        ok = len({l.name for l in report.layers}) == len(report.layers) and all(
            v is None or type(v) in (float, int)
            for l in report.layers for ds in DATASETS for v in (l.metrics.get(ds) or {}).values())
        f.detect_columns = _Columns(report) if ok else False
    return f.detect_columns or None


MAX_COLUMN_KEYS = 31  # (metric, dataset) pairs a layer's flag pattern can encode in one int64


def detect(report: Report, th: Thresholds) -> Detection:
    cols = _columns(report) if report.layers and 2 * len(th.quantize_error) <= MAX_COLUMN_KEYS else None
    if cols is not None:
        return _detect_columns(report, th, cols)
    return _detect_loop(report, th)


def _detect_columns(report: Report, th: Thresholds, cols: _Columns) -> Detection:
    """:func:`_detect_loop` on the cached columns: the same degraded layers in the same order, the same flags and
    the same worst metric per layer (the first (metric, dataset) of the highest severity)."""
    names = cols.names
    n = len(names)
    skipped = [m for m in report.metrics if m not in th.quantize_error]
    keys: List[str] = []
    hits: List[np.ndarray] = []
    presents: List[np.ndarray] = []
    order_idx: List[int] = []
    seen = np.zeros(n, dtype=bool)
    best_s = np.full(n, -math.inf)
    best_k = np.full(n, -1, dtype=np.int64)
    eps = 1e-12
    specs: List[Tuple[str, str]] = []
    for metric in report.metrics:
        if metric not in th.quantize_error:
            continue
        thr = th.quantize_error[metric]
        under = bool(th.detect_under.get(metric, False))
        for ds in DATASETS:
            v, present = cols.cols[(metric, ds)]
            with np.errstate(invalid="ignore"):
                hit = (v <= thr) if under else (v >= thr)  # a NaN compares false: never degraded
            k = len(keys)
            keys.append("%s.%s" % (metric, ds))
            specs.append((metric, ds))
            hits.append(hit)
            presents.append(present)
            new = hit & ~seen
            if new.any():
                order_idx.extend(np.flatnonzero(new).tolist())
                seen |= hit
            if hit.any():
                with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                    if under:
                        s = np.where(v > 0, (abs(thr) + eps) / (np.abs(v) + eps), np.where(v <= thr, math.inf, 0.0))
                    else:
                        s = (np.abs(v) + eps) / (abs(thr) + eps)
                better = hit & (s > best_s)
                best_s = np.where(better, s, best_s)
                best_k = np.where(better, k, best_k)
    order = [names[i] for i in order_idx]
    # flags: one dict per distinct pattern of (present, hit) over the keys, shared by the layers that have it
    flags: Dict[str, Dict[str, bool]]
    if keys:
        code = np.zeros(n, dtype=np.int64)
        for k, (hit, present) in enumerate(zip(hits, presents)):
            code = code + (present.astype(np.int64) << (2 * k)) + ((hit & present).astype(np.int64) << (2 * k + 1))
        uniq, inverse = np.unique(code, return_inverse=True)
        shared = []
        for c in uniq.tolist():
            shared.append({keys[k]: bool((c >> (2 * k + 1)) & 1) for k in range(len(keys)) if (c >> (2 * k)) & 1})
        flags = {name: shared[j] for name, j in zip(names, inverse.tolist())}
    else:
        flags = {name: {} for name in names}
    worst: Dict[str, Tuple[str, str, float, float]] = {}
    for i in np.flatnonzero(best_k >= 0).tolist():
        metric, ds = specs[int(best_k[i])]
        value = report.layers[i].metrics[ds][metric]
        worst[names[i]] = (metric, ds, value, severity(value, th.quantize_error[metric],
                                                       bool(th.detect_under.get(metric, False))))
    worst = {name: worst[name] for name in order if name in worst}
    ratio = len(order) / n if n else 0.0
    return Detection(order, flags, worst, ratio, skipped, judges_skipped=bool(n) and ratio >= th.degrade_layer_ratio)


def _detect_loop(report: Report, th: Thresholds) -> Detection:
    order: List[str] = []
    seen = set()
    flags: Dict[str, Dict[str, bool]] = {l.name: {} for l in report.layers}
    worst: Dict[str, Tuple[str, str, float, float]] = {}
    skipped = [m for m in report.metrics if m not in th.quantize_error]
    for metric in report.metrics:
        if metric not in th.quantize_error:
            continue
        thr = th.quantize_error[metric]
        under = bool(th.detect_under.get(metric, False))
        for ds in DATASETS:
            key = "%s.%s" % (metric, ds)  # one string shared by every layer's flags
            for layer in report.layers:
                v = layer.metrics.get(ds, {}).get(metric)
                if v is None:
                    continue
                hit = v <= thr if under else v >= thr  # a NaN compares false: never degraded
                flags[layer.name][key] = hit
                if hit:
                    if layer.name not in seen:
                        seen.add(layer.name)
                        order.append(layer.name)
                    s = severity(v, thr, under)
                    if layer.name not in worst or s > worst[layer.name][3]:
                        worst[layer.name] = (metric, ds, v, s)
    n = len(report.layers)
    ratio = len(order) / n if n else 0.0
    return Detection(order, flags, worst, ratio, skipped, judges_skipped=bool(n) and ratio >= th.degrade_layer_ratio)
