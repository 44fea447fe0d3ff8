"""JSON views of an analysis: what the HTTP API and the CLI return.  Their shapes are defined once, in
``api.contract``; ``tests/test_contract.py`` checks every answer against it."""
from __future__ import annotations

import collections
import gzip
import io
import itertools
import json
import math
import operator
import threading
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from tb_xquant_plugin.judges import compare as cmp
from tb_xquant_plugin.judges.facts import facts_of
from tb_xquant_plugin.judges import activation_noise as AN
from tb_xquant_plugin.judges.outlier import finding_text, zscore_of
from tb_xquant_plugin.judges.run import Analysis
from tb_xquant_plugin.model import manifest as mf
from tb_xquant_plugin.model.report import DATASETS, Report
from tb_xquant_plugin.model.scopes import module_scopes


def safe(obj: Any) -> Any:
    """Make a structure JSON-safe: NaN / +-Infinity become strings, numpy scalars become numbers."""
    t = type(obj)
    if t is str or t is int or t is bool or obj is None:
        return obj
    if t is float:
        if obj != obj:
            return "NaN"
        if obj in (math.inf, -math.inf):
            return "Infinity" if obj > 0 else "-Infinity"
        return obj
    if t is dict:
        return {k if type(k) is str else str(k): safe(v) for k, v in obj.items()}
    if t is list or t is tuple:
        return [safe(v) for v in obj]
    if isinstance(obj, dict):
        return {str(k): safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [safe(v) for v in obj]
    if isinstance(obj, np.ndarray):
        return [safe(v) for v in obj.tolist()]
    if isinstance(obj, np.floating):
        return safe(float(obj))
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    if isinstance(obj, float):
        return safe(float(obj))
    return obj


def dumps(obj: Any) -> str:
    """JSON text of a view.  Most answers hold no NaN, infinity or numpy scalar: try the C encoder
    on the structure as it is, and walk it with :func:`safe` only when the encoder refuses it."""
    # ensure_ascii: every name survives, a lone surrogate included (as a \\u escape, which UTF-8 cannot hold).
    try:
        return json.dumps(obj, allow_nan=False)
    except (ValueError, TypeError):
        return json.dumps(safe(obj), allow_nan=False)


def report_entry(report: Report) -> Dict[str, Any]:
    return {
        "id": report.id,
        "name": report.rel,
        "path": report.rel,
        "model_name": report.model_name,
        "has_quant_report": report.has_quant_report,
        "has_troubleshoot_report": report.mct_troubleshoot is not None,
        "has_graph": report.has_graph,
        "has_histograms": bool(report.histograms),
        "stage_logs": report.stage_run.rsplit("/", 1)[0] if report.stage_run else None,
        "layer_count": len(report.layers),
        "manifest": report.manifest,
        "problems": [p.to_json() for p in report.problems],
    }


MAX_DISPLAY_BUCKETS = 512  # histogram buckets sent for display (more are merged, the z-score data truncated)


def display_buckets(raw: Any) -> List[List[float]]:
    """``[left, right, count]`` buckets for the panel: at most MAX_DISPLAY_BUCKETS, merging neighbours."""
    b = np.asarray(raw, dtype=np.float64)
    if b.ndim != 2 or b.shape[1] != 3:
        return []
    n = len(b)
    if n <= MAX_DISPLAY_BUCKETS:
        return b.tolist()
    edges = np.linspace(0, n, MAX_DISPLAY_BUCKETS + 1).astype(int)
    out = []
    for i, j in zip(edges[:-1], edges[1:]):
        if j > i:
            out.append([float(b[i, 0]), float(b[j - 1, 1]), float(np.nansum(b[i:j, 2]))])
    return out


def _worst(a: Analysis, name: str) -> Optional[Dict[str, Any]]:
    w = a.detection.worst.get(name)
    if not w:
        return None
    return {"metric": w[0], "dataset": w[1], "value": w[2], "severity": w[3]}


def summary(a: Analysis) -> Dict[str, Any]:
    r = a.report
    return {
        "id": r.id,
        "name": r.rel,
        "model_name": r.model_name,
        "thresholds": a.thresholds.to_json(),
        "metrics": r.metrics,
        "output_metrics": r.output_metrics,
        "layer_count": len(r.layers),
        "degraded_layers": list(a.degraded),
        "degraded_ratio": a.detection.ratio,
        "judges_skipped": a.detection.judges_skipped,
        "metrics_without_threshold": a.detection.skipped_metrics,
        "verdict_count": len(a.verdicts),
        "verdict_groups": verdict_groups(a.verdicts),
        "general": [v.to_json() for v in a.general],
        "concat_summary": concat_summary(a),
        "concat_agreement": a.concat_agreement,
        "artifacts": [x.to_json() for x in r.artifacts],
        "manifest": r.manifest,
        "accuracy": mf.accuracy(r.manifest),
        "problems": [p.to_json() for p in r.problems],
    }


CONCAT_WIDEST = 5
GROUP_LAYERS = 8  # layers named per verdict group in the summary


def verdict_groups(vs) -> List[Dict[str, Any]]:
    """The summary's verdicts: one entry per judge, source, cause (the judge's finding, when it has one) and advice
    (the countermeasure's kind), with the count, the first layers and the first message.  The verdicts themselves
    (numbers, snippets) are in ``GET verdicts`` and, per layer, in ``GET layer``: at 20,000 layers there are
    thousands.

    Grouped run by run (consecutive verdicts of one judge and source): the judges whose verdicts do not depend on
    the thresholds hand every analysis the same Verdict objects, so a new threshold regroups only the runs that
    changed (:func:`_run_groups`)."""
    merged: Dict[tuple, Tuple[Dict[str, Any], set]] = {}
    for _, run in itertools.groupby(vs, key=operator.attrgetter("judge", "source")):
        for key, (g, names) in _run_groups(list(run)).items():
            had = merged.get(key)
            if had is None:
                merged[key] = (dict(g, layers=list(g["layers"])), names)  # a copy: the cached group stays as it is
                continue
            m, seen = had
            union = seen | names
            m["count"] += g["count"]
            m["layers"] += [l for l in g["layers"] if l not in seen][:GROUP_LAYERS - len(m["layers"])]
            m["layer_count"] = len(union)
            merged[key] = (m, union)
    return [g for g, _ in merged.values()]


RUNS_KEPT = 64  # grouped runs remembered (a few per report and threshold)
_runs: "collections.OrderedDict[tuple, Tuple[list, Dict[tuple, Tuple[Dict[str, Any], set]]]]" = \
    collections.OrderedDict()
_runs_lock = threading.Lock()


def _run_groups(run: List[Any]) -> Dict[tuple, Tuple[Dict[str, Any], set]]:
    """(group, set of its layers) per group key for one run of verdicts, remembered by the identity of its
    Verdict objects.  The entry holds the run, so those objects (and their ids) live as long as it does."""
    ident = tuple(map(id, run))
    with _runs_lock:
        hit = _runs.get(ident)
        if hit is not None:
            _runs.move_to_end(ident)
            return hit[1]
    groups: Dict[tuple, Tuple[Dict[str, Any], set]] = {}
    for v in run:
        finding = v.numbers.get("finding") if isinstance(v.numbers, dict) else None
        cm = v.countermeasure if isinstance(v.countermeasure, dict) else None
        key = (v.judge, v.source, finding if isinstance(finding, str) else None,
               cm.get("kind") if cm and isinstance(cm.get("kind"), str) else None)
        entry = groups.get(key)
        if entry is None:
            entry = groups[key] = ({"judge": key[0], "source": key[1], "cause": key[2], "advice": key[3], "count": 0,
                                    "layers": [], "layer_count": 0, "manual": v.manual, "message": v.message}, set())
        g, names = entry
        g["count"] += 1
        for l in v.layers:
            if l not in names:
                names.add(l)
                if len(g["layers"]) < GROUP_LAYERS:
                    g["layers"].append(l)
        g["layer_count"] = len(names)
    with _runs_lock:
        _runs[ident] = (run, groups)
        while len(_runs) > RUNS_KEPT:
            _runs.popitem(last=False)
    return groups


def concat_summary(a: Analysis) -> Dict[str, Any]:
    """Counts of the measured joins and the widest few; the full list (``concat_checks``, a few MB at 20,000
    layers) is in ``GET verdicts``."""
    checks = a.concat_checks
    measured = [c for c in checks if c["ratio"] is not None]
    return {"joins": len(checks), "measured": len(measured), "flagged": sum(1 for c in checks if c["flagged"]),
            "threshold": a.thresholds.ratio_unbalanced_concatenation,
            "widest": sorted(measured, key=lambda c: -c["ratio"])[:CONCAT_WIDEST]}


def layers(a: Analysis) -> Dict[str, Any]:
    judges = a.judges_of()
    deg = set(a.degraded)
    out = []
    for l in a.report.layers:
        out.append({
            "name": l.name, "node": l.node, "op": l.op, "index": l.index,
            "repr": l.metrics.get("repr", {}), "val": l.metrics.get("val", {}),
            "flags": a.detection.flags.get(l.name, {}),
            "degraded": l.name in deg, "worst": _worst(a, l.name), "judges": judges.get(l.name, []),
        })
    # Graph nodes that are not XQuant compare points but that a verdict names (e.g. the activation
    # 'stem_act' from the shift-negative judge), with the node each maps to.
    named = []
    for name, js in judges.items():
        if name in a.report.layer_by_name:
            continue
        n = a.report.node_by_name.get(name) or a.report.node_by_id.get(name)
        named.append({"name": name, "node": n.id if n else None, "op": n.op if n else None, "judges": js})
    return {"metrics": a.report.metrics, "datasets": list(DATASETS), "layers": out, "verdict_nodes": named,
            "thresholds": a.thresholds.to_json()}


def graph(a: Analysis) -> Dict[str, Any]:
    r = a.report
    judges = a.judges_of()
    deg = set(a.degraded)
    f = facts_of(r)
    if f.module_scopes is None:
        f.module_scopes = module_scopes([n.name for n in r.nodes])
    scopes = f.module_scopes
    nodes = []
    for n, scope in zip(r.nodes, scopes):
        layer = r.layer_of_node.get(n.id)
        marks = list(judges.get(layer or n.name, []))
        for j in judges.get(n.name, []):
            if j not in marks:
                marks.append(j)
        nodes.append({
            "id": n.id, "name": n.name, "op": n.op,
            "group": scope,
            "inputs": [i for i in n.inputs if i in r.node_by_id],
            "output_shape": n.output_shapes, "layer": layer,
            "degraded": bool(layer and layer in deg),
            "worst": _worst(a, layer) if layer else None,
            "judges": marks,
        })
    problems = [p.to_json() for p in r.problems if "graph" in p.what]
    return {"nodes": nodes, "problems": problems}


def verdicts(a: Analysis) -> Dict[str, Any]:
    return {"verdicts": [v.to_json() for v in a.verdicts], "general": [v.to_json() for v in a.general],
            "judges_skipped": a.detection.judges_skipped, "concat_checks": a.concat_checks,
            "concat_agreement": a.concat_agreement}


def layer_detail(a: Analysis, name: str) -> Optional[Dict[str, Any]]:
    r = a.report
    l = r.layer_by_name.get(name)
    node = None
    if l is not None and l.node:
        node = r.node_by_id.get(l.node)
    if node is None:
        node = r.node_by_name.get(name) or r.node_by_id.get(name)
    if l is None and node is None:
        return None
    lname = l.name if l else node.name
    qp = r.quant.get(lname)
    hist = None
    zh = zscore_of(r, lname)
    raw = r.histogram(lname)
    if zh is not None and raw is not None:
        buckets = display_buckets(raw)
        bins, counts, z = zh.bins, zh.counts, zh.zscore
        if len(raw) > MAX_DISPLAY_BUCKETS:  # the merged buckets' right edges, as MCT's bins are
            bins = np.asarray([b[1] for b in buckets])
            counts = np.asarray([b[2] for b in buckets])
            z = np.abs(bins - zh.mu) / zh.sigma if zh.sigma > 0 else np.zeros_like(bins)
        hist = {"buckets": buckets, "bins": bins, "counts": counts, "mu": zh.mu, "sigma": zh.sigma,
                "zscore": z, "max_zscore": zh.max_zscore,
                "suggested_z_threshold": zh.suggested_z_threshold,
                "z_threshold": a.thresholds.zscore_outlier_removal,
                "downsampled": len(raw) > MAX_DISPLAY_BUCKETS}
    # weights_nbits comes from the stage graph, MCT's log or the manifest (producers.mct_pytorch.fill_weights_bits);
    # the manifest adds the activation bits recorded from the quantized model.
    quant = qp.to_json() if qp else None
    act_final = mf.layer_bits(r.manifest).get(lname, {}).get("activation_nbits")
    if act_final is not None:
        quant = dict(quant or {})
        quant["activation_nbits_final"] = act_final
    names = {lname, node.name if node else lname}
    return {
        "name": lname, "node": node.id if node else None, "op": node.op if node else None,
        "output_shape": node.output_shapes if node else None,
        "is_layer": l is not None,
        "repr": l.metrics.get("repr", {}) if l else {}, "val": l.metrics.get("val", {}) if l else {},
        "flags": a.detection.flags.get(lname, {}), "degraded": lname in set(a.degraded),
        "worst": _worst(a, lname), "thresholds": a.thresholds.to_json(),
        "quant": quant, "histogram": hist,
        "verdicts": [v.to_json() for v in a.verdicts if names & set(v.layers)],
    }


def compare(a: Analysis, b: Analysis) -> Dict[str, Any]:
    """Per-layer deltas from report A (before) to report B (after), and the countermeasure's outcome."""
    c = cmp.compare(a, b)
    return {"a": a.report.id, "b": b.report.id, "a_name": a.report.rel, "b_name": b.report.rel,
            "metrics": c.metrics, "layers": c.rows, "summary": c.counts, "output_delta_val": c.output_delta_val,
            "accuracy": c.accuracy, "countermeasure": c.outcome, "general": [v.to_json() for v in c.general],
            "thresholds": a.thresholds.to_json(), "pairing": c.pairing}


def cli_report(a: Analysis) -> Dict[str, Any]:
    """One report of ``tb-xquant report --json``: the summary's fields a terminal user needs, all joins."""
    s = summary(a)
    return {
        "name": s["name"], "id": s["id"], "model_name": s["model_name"],
        "layer_count": s["layer_count"], "degraded_layers": s["degraded_layers"],
        "degraded_ratio": s["degraded_ratio"], "judges_skipped": s["judges_skipped"],
        "thresholds": s["thresholds"], "output_metrics": s["output_metrics"],
        "verdicts": [v.to_json() for v in a.verdicts] + s["general"], "concat_checks": a.concat_checks,
        "concat_agreement": s["concat_agreement"], "accuracy": s["accuracy"], "problems": s["problems"],
    }


# The views served per analysis (HTTP route -> view), serialized once per analysis.
ANALYSIS_VIEWS = {"report": summary, "graph": graph, "layers": layers, "verdicts": verdicts}


def cached_json(a: Analysis, route: str) -> str:
    """JSON text of one of :data:`ANALYSIS_VIEWS` for this analysis, serialized on first use."""
    body = a.json_cache.get(route)
    if body is None:
        body = dumps(ANALYSIS_VIEWS[route](a))
        a.json_cache[route] = body
    return body


def cached_gzip(a: Analysis, route: str) -> bytes:
    """:func:`cached_json` gzipped as TensorBoard's ``http_util.Respond`` would (level 3, mtime 0: the same bytes),
    compressed on first use and kept with the JSON (``Analysis.gzip_cache``, same key, dropped with the analysis
    by the store's bounded cache)."""
    body = a.gzip_cache.get(route)
    if body is None:
        out = io.BytesIO()
        with gzip.GzipFile(fileobj=out, mode="wb", compresslevel=3, mtime=0) as f:
            f.write(cached_json(a, route).encode("utf-8"))
        body = out.getvalue()
        a.gzip_cache[route] = body
    return body


def z_replay(a: Analysis, name: str, z: float) -> Optional[Dict[str, Any]]:
    """``GET replay``: what clipping one layer's activation at ``z`` would do (the outlier judge's replay of the
    quantizer's threshold choice on the logged histogram), for the panel's z control; None without a histogram."""
    zh = zscore_of(a.report, name)
    if zh is None:
        return None
    own = AN.assess(a.report, name, z)
    return safe({"layer": name, "z": z, "clip": [zh.mu - z * zh.sigma, zh.mu + z * zh.sigma],
                 "max_zscore": zh.max_zscore, "replay": own, "text": finding_text(own, z)})
