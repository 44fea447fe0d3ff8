"""MCT XQuant's detection rule on bare metrics, for tests that check what a report *would* flag on metrics it does
not show (the unadjusted metrics of rescaled ONNX layers, onnx_qdq.json)."""
from __future__ import annotations

from typing import Any, Dict, Set


def flagged(layer_metrics: Dict[str, Dict[str, Dict[str, Any]]], th) -> Set[str]:
    """The layers of ``{layer: {dataset: {metric: value}}}`` that ``th`` (a ``model.thresholds.Thresholds``) flags:
    a metric at or beyond its threshold, in its direction, on any dataset."""
    out = set()
    for layer, by_ds in layer_metrics.items():
        for values in by_ds.values():
            for m, v in values.items():
                if m in th.quantize_error and isinstance(v, (int, float)) and not isinstance(v, bool):
                    thr, under = th.quantize_error[m], th.detect_under.get(m, False)
                    if (v <= thr) if under else (v >= thr):
                        out.add(layer)
    return out
