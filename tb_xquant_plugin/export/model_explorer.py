"""``tb-xquant export model-explorer``: the quantized graph in Model Explorer's JSON graph format, and the
per-layer metrics as Model Explorer node-data overlays.

Files written into the output folder (one folder per report):

* ``graph.json`` -- a graph collection ``{"label", "graphs": [{"id", "nodes": [...]}]}``; every node has its
  ``id``, its op as ``label``, the module scope as ``namespace`` (``model.scopes.module_scopes``: collapsible
  layers such as ``blocks/1/conv``), ``incomingEdges``, the output shape in ``outputsMetadata`` and the XQuant
  numbers (metrics, degraded, worst metric, bit widths, judges) in ``attrs``;
* ``nodedata.<metric>.<dataset>.json`` -- one overlay per metric and dataset: the layer's value on its graph
  node, coloured by the threshold MCT compares it with (two bins: past the threshold in red, within it in green;
  the bins reproduce MCT's ``<=`` / ``>=`` rule exactly);
* ``nodedata.worst.json`` -- the worst metric of each node as a severity (how far past its threshold; >= 1 is
  degraded), binned at 1.

Open them with ``model-explorer graph.json --node_data_paths nodedata.worst.json,...`` (pip package
``ai-edge-model-explorer``) or by uploading them in its web app.  JSON has no NaN or infinity: a NaN metric is
left out of an overlay (the node stays uncoloured), an infinite one is clamped to +-:data:`BIG`."""
from __future__ import annotations

import json
import math
import re
from typing import Any, Dict, List, Optional, Tuple

from tb_xquant_plugin.export.markdown import layer_bits
from tb_xquant_plugin.judges.detection import severity
from tb_xquant_plugin.judges.facts import facts_of
from tb_xquant_plugin.judges.run import Analysis
from tb_xquant_plugin.model.report import DATASETS
from tb_xquant_plugin.model.scopes import module_scopes
from tb_xquant_plugin.readers import files

GRAPH_FILE = "graph.json"
WORST_FILE = "nodedata.worst.json"
GRAPH_ID = "quantized model"
# Node colours of the overlays (CSS colours; Model Explorer paints the node's background with them).
PAST_THRESHOLD = "#ef5350"
WITHIN_THRESHOLD = "#66bb6a"
BIG = 1e300  # the last bin's upper edge; values are clamped into [-BIG, BIG]


def _finite(v: Any) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    if math.isnan(f):
        return None
    return max(-BIG, min(BIG, f))


def _s(v: Any) -> str:
    if isinstance(v, float):
        return "%.6g" % v
    return str(v)


def _scopes(a: Analysis) -> List[str]:
    f = facts_of(a.report)
    if f.module_scopes is None:
        f.module_scopes = module_scopes([n.name for n in a.report.nodes])
    return f.module_scopes


def graph_json(a: Analysis) -> Dict[str, Any]:
    """The report's quantized graph as a Model Explorer graph collection."""
    r = a.report
    judges = a.judges_of()
    deg = set(a.degraded)
    bits = layer_bits(a)
    nodes = []
    for n, scope in zip(r.nodes, _scopes(a)):
        layer_name = r.layer_of_node.get(n.id)
        layer = r.layer_by_name.get(layer_name) if layer_name else None
        attrs = [{"key": "name", "value": n.name}]
        if layer is not None:
            attrs.append({"key": "xquant.layer", "value": layer.name})
            attrs.append({"key": "xquant.degraded", "value": "yes" if layer.name in deg else "no"})
            w = a.detection.worst.get(layer.name)
            if w:
                attrs.append({"key": "xquant.worst", "value": "%s (%s) = %s" % (w[0], w[1], _s(w[2]))})
            for ds in DATASETS:
                for m in r.metrics:
                    v = layer.metrics.get(ds, {}).get(m)
                    if v is not None:
                        attrs.append({"key": "xquant.%s.%s" % (m, ds), "value": _s(v)})
            b = bits.get(layer.name, {})
            if b.get("w") is not None:
                attrs.append({"key": "xquant.weights_nbits", "value": str(b["w"])})
            if b.get("a") is not None:
                attrs.append({"key": "xquant.activation_nbits", "value": str(b["a"])})
        marks = list(judges.get(layer_name or n.name, []))
        for j in judges.get(n.name, []):
            if j not in marks:
                marks.append(j)
        if marks:
            attrs.append({"key": "xquant.judges", "value": ", ".join(marks)})
        node: Dict[str, Any] = {
            "id": n.id,
            "label": n.op or n.name,
            "namespace": scope,
            "attrs": attrs,
            "incomingEdges": [{"sourceNodeId": src, "sourceNodeOutputId": "0", "targetNodeInputId": str(k)}
                              for k, src in enumerate(i for i in n.inputs if i in r.node_by_id)],
        }
        if n.output_shapes:
            node["outputsMetadata"] = [
                {"id": str(k), "attrs": [{"key": "tensor_shape", "value": "[%s]" % ",".join(str(d) for d in shape)}]}
                for k, shape in enumerate(n.output_shapes)]
        nodes.append(node)
    return {"label": r.rel if r.rel != "." else (r.model_name or "xquant report"),
            "graphs": [{"id": GRAPH_ID, "nodes": nodes}]}


def bins(threshold: float, under: bool) -> List[Dict[str, Any]]:
    """Model Explorer colours a node by the first bin whose ``value`` is >= the node's value."""
    t = max(-BIG, min(BIG, float(threshold)))
    if under:  # degraded when value <= threshold (cs, sqnr)
        return [{"value": t, "bgColor": PAST_THRESHOLD}, {"value": BIG, "bgColor": WITHIN_THRESHOLD}]
    # degraded when value >= threshold (mse): within up to the largest float below it
    return [{"value": math.nextafter(t, -math.inf), "bgColor": WITHIN_THRESHOLD},
            {"value": BIG, "bgColor": PAST_THRESHOLD}]


def _overlay(name: str, results: Dict[str, float], thresholds: List[Dict[str, Any]]) -> Dict[str, Any]:
    return {GRAPH_ID: {"name": name, "results": {k: {"value": v} for k, v in results.items()},
                       "thresholds": thresholds}}


def node_data(a: Analysis) -> Dict[str, Tuple[str, Dict[str, Any]]]:
    """``{file name: (overlay name, Model Explorer node data)}``: one per metric with a threshold and dataset,
    and the worst-severity overlay."""
    r = a.report
    th = a.thresholds
    out: Dict[str, Tuple[str, Dict[str, Any]]] = {}
    used = {GRAPH_FILE, WORST_FILE}
    worst: Dict[str, float] = {}
    for m in r.metrics:
        if m not in th.quantize_error:
            continue
        thr, under = th.quantize_error[m], bool(th.detect_under.get(m, False))
        for ds in DATASETS:
            results: Dict[str, float] = {}
            for l in r.layers:
                if not l.node:
                    continue
                v = l.metrics.get(ds, {}).get(m)
                f = _finite(v)
                if f is None:
                    continue
                results[l.node] = f
                sev = _finite(severity(v, thr, under))
                if sev is not None and sev > worst.get(l.node, -1.0):
                    worst[l.node] = sev
            fname = _file_name("nodedata.%s.%s.json" % (m, ds), used)
            title = "%s (%s) %s %s" % (m, ds, "<=" if under else ">=", _s(thr))
            out[fname] = (title, _overlay(title, results, bins(thr, under)))
    worst_title = "worst metric severity (>= 1: past a threshold)"
    out[WORST_FILE] = (worst_title, _overlay(worst_title, worst, bins(1.0, False)))
    return out


def _file_name(name: str, used: set) -> str:
    """A portable file name (metric names are the user's: ``custom_similarity_metrics``)."""
    base = re.sub(r"[^A-Za-z0-9_.-]", "_", name)[:120]
    cand, k = base, 1
    while cand.lower() in used:
        k += 1
        cand = base[:-5] + "_%d.json" % k
    used.add(cand.lower())
    return cand


def export(a: Analysis, out_dir: str) -> List[str]:
    """Write the graph and its overlays into ``out_dir``; the paths written, the graph first."""
    files.make_dirs(out_dir)
    written = [files.join(out_dir, GRAPH_FILE)]
    files.write_text(written[0], json.dumps(graph_json(a), allow_nan=False))
    data = node_data(a)
    for fname in [WORST_FILE] + [f for f in data if f != WORST_FILE]:
        path = files.join(out_dir, fname)
        files.write_text(path, json.dumps(data[fname][1], allow_nan=False))
        written.append(path)
    return written
