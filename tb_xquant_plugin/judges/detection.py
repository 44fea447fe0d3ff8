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
from typing import Dict, List, Tuple

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


def detect(report: Report, th: Thresholds) -> Detection:
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
