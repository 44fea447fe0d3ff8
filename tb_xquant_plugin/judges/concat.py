"""Unbalanced concatenation, read from the graph itself.

For every concatenation (and add) node, the value range of each input is taken from the logged
float histogram of the input's producer or, failing that, from its activation quantization
threshold in the MCT stage graph.  When the widest range is at least
``threshold_ratio_unbalanced_concatenation`` times the narrowest, the narrower input would be
quantized with a step far too coarse for it; the scaling factor to apply is that ratio.

MCT 2.6.1's own judge does something different: for degraded layers named ``<conv>_bn`` /
``<name>_collapsed`` / ``bn_<name>`` it compares the input range of a module with the one of the
module after it, found by node-name heuristics.  Its verdicts are shown as ``source: mct``."""
from __future__ import annotations

from typing import List, Optional, Tuple

import numpy as np

from tb_xquant_plugin.judges.verdict import MANUAL_FOR_JUDGE, UNBALANCED_CONCATENATION, Verdict
from tb_xquant_plugin.model.report import Report
from tb_xquant_plugin.readers.graphs import GraphNode

CONCAT_OPS = {"cat", "concat", "concatenate", "stack", "hstack", "vstack"}
ADD_OPS = {"add", "iadd", "__add__", "sum"}


def _range(report: Report, node_id: str) -> Optional[Tuple[float, float, str]]:
    n = report.node_by_id.get(node_id)
    name = n.name if n else node_id.rsplit("/", 1)[-1]
    from tb_xquant_plugin.readers.graphs import layer_name_of

    lname = layer_name_of(n) if n else name
    h = report.histogram(lname)
    if h is not None and len(h):
        arr = np.asarray(h)
        lo, hi = float(np.nanmin(arr[:, 0])), float(np.nanmax(arr[:, 1]))
        if np.isfinite(lo) and np.isfinite(hi):
            return lo, hi, "histogram"
    qp = report.quant.get(lname)
    if qp and qp.activation_threshold:
        t = qp.activation_threshold
        return (-t if qp.signed else 0.0), t, "threshold"
    return None


def snippet(node: str, small: str, factor: float) -> str:
    return (
        "# Balance the inputs of %(node)s: scale the narrow branch up before the concatenation and\n"
        "# undo it in the layer that consumes it (or fold the factor into the producing layer).\n"
        "SCALE = %(f).4g  # range(widest input) / range(%(small)s)\n"
        "# in forward():  %(small)s_out = %(small)s_out * SCALE\n\n"
        "# Or stop MCT from merging layers around it and compare:\n"
        "import model_compression_toolkit as mct\n"
        "core_config = mct.core.CoreConfig(mct.core.QuantizationConfig(linear_collapsing=False, residual_collapsing=False))\n"
        "quantized_model, quantization_info = mct.ptq.pytorch_post_training_quantization(\n"
        "    float_model, representative_data_gen, core_config=core_config)\n"
    ) % {"node": node, "small": small.replace("-", "_"), "f": factor}


def joins(report: Report) -> List[Tuple[GraphNode, str, List[dict]]]:
    """Every concatenation / add node with the value ranges of at least two of its inputs (independent of the
    thresholds: computed once per report)."""
    out = []
    for n in report.nodes:
        op = (n.op or "").lower()
        kind = "concatenation" if op in CONCAT_OPS else "add" if op in ADD_OPS else None
        if kind is None or len(n.inputs) < 2:
            continue
        ranges = []
        for i in n.inputs:
            r = _range(report, i)
            if r is None:
                continue
            lo, hi, src = r
            width = hi - lo
            if width > 0:
                src_node = report.node_by_id.get(i)
                ranges.append({"name": src_node.name if src_node else i, "node": i, "range": [lo, hi],
                               "width": width, "from": src})
        if len(ranges) >= 2:
            out.append((n, kind, ranges))
    return out


def judge(report: Report, ratio_threshold: float,
          joined: Optional[List[Tuple[GraphNode, str, List[dict]]]] = None) -> List[Verdict]:
    out = []
    for n, kind, ranges in (joins(report) if joined is None else joined):
        wide = max(ranges, key=lambda r: r["width"])
        narrow = min(ranges, key=lambda r: r["width"])
        ratio = wide["width"] / narrow["width"]
        if ratio < ratio_threshold:
            continue
        numbers = {"node": n.name, "op": n.op, "kind": kind, "inputs": ranges, "ratio": ratio,
                   "scale": ratio, "scale_input": narrow["name"], "threshold": ratio_threshold}
        msg = ("The %s %s joins %s (range width %.3g) with %s (%.3g): %.1fx apart. Multiply %s by %.3g before it, "
               "or move the %s to where the ranges match." % (
                   kind, n.name, wide["name"], wide["width"], narrow["name"], narrow["width"], ratio,
                   narrow["name"], ratio, kind))
        out.append(Verdict(UNBALANCED_CONCATENATION, "computed", [n.name] + [r["name"] for r in ranges], numbers,
                           MANUAL_FOR_JUDGE[UNBALANCED_CONCATENATION], msg, snippet(n.name, narrow["name"], ratio)))
    return out
