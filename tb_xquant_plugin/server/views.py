"""JSON views of an analysis: what the HTTP API and the CLI return (schema in docs/api.md)."""
from __future__ import annotations

import json
import math
from typing import Any, Dict, List, Optional

import numpy as np

from tb_xquant_plugin.judges import verdict as V
from tb_xquant_plugin.judges.outlier import zscore_histogram
from tb_xquant_plugin.judges.run import Analysis
from tb_xquant_plugin.model.report import DATASETS, Report
from tb_xquant_plugin.model.scopes import module_scopes
from tb_xquant_plugin.readers.graphs import as_bits


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
    try:
        return json.dumps(obj, allow_nan=False, ensure_ascii=False)
    except (ValueError, TypeError):
        return json.dumps(safe(obj), allow_nan=False, ensure_ascii=False)


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


def _worst(a: Analysis, name: str) -> Optional[Dict[str, Any]]:
    w = a.detection.worst.get(name)
    if not w:
        return None
    return {"metric": w[0], "dataset": w[1], "value": w[2]}


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
        "verdicts": [v.to_json() for v in a.verdicts],
        "general": [v.to_json() for v in a.general],
        "concat_summary": concat_summary(a),
        "concat_agreement": a.concat_agreement,
        "artifacts": [x.to_json() for x in r.artifacts],
        "manifest": r.manifest,
        "accuracy": (r.manifest or {}).get("accuracy") if isinstance(r.manifest, dict) else None,
        "problems": [p.to_json() for p in r.problems],
    }


CONCAT_WIDEST = 5


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
    if "module_scopes" not in r.memo:
        r.memo["module_scopes"] = module_scopes([n.name for n in r.nodes])
    scopes = r.memo["module_scopes"]
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
    zh = zscore_histogram(r.histogram(lname))
    raw = r.histogram(lname)
    if zh is not None and raw is not None:
        hist = {"buckets": np.asarray(raw).tolist(), "bins": zh.bins, "counts": zh.counts, "mu": zh.mu,
                "sigma": zh.sigma, "zscore": zh.zscore, "max_zscore": zh.max_zscore,
                "suggested_z_threshold": zh.suggested_z_threshold,
                "z_threshold": a.thresholds.zscore_outlier_removal}
    # weights_nbits comes from the stage graph, MCT's log or the manifest (model.builder.fill_weights_bits);
    # the manifest adds the activation bits recorded from the quantized model.
    quant = qp.to_json() if qp else None
    bw = r.manifest.get("bit_widths") if isinstance(r.manifest, dict) else None
    layers_bw = bw.get("layers") if isinstance(bw, dict) else None
    entry = layers_bw.get(lname) if isinstance(layers_bw, dict) else None
    act_final = as_bits(entry.get("activation")) if isinstance(entry, dict) else None
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


# Settings of B's stage graph (and manifest bit widths) compared with A's to tell whether B applied a
# countermeasure; QuantParams fields (weights_nbits only where the stage-graph reader provides it).
COUNTERMEASURE_PARAMS = ("z_threshold", "shift_negative_activation_correction", "shift_negative_ratio",
                         "activation_nbits", "weights_nbits")


def _same(x: Any, y: Any) -> bool:
    if isinstance(x, float) and isinstance(y, float):
        if math.isnan(x) or math.isnan(y):
            return math.isnan(x) and math.isnan(y)
        return x == y or math.isclose(x, y, rel_tol=1e-6, abs_tol=1e-12)
    return x == y


def _manifest_bits(r: Report) -> Dict[str, Dict[str, Any]]:
    """layer -> {"weights_nbits", "activation_nbits"} recorded by xquant_report_with_manifest."""
    bw = r.manifest.get("bit_widths") if isinstance(r.manifest, dict) else None
    layers = bw.get("layers") if isinstance(bw, dict) else None
    out: Dict[str, Dict[str, Any]] = {}
    for name, entry in (layers or {}).items() if isinstance(layers, dict) else ():
        if isinstance(entry, dict):
            w = entry.get("weights")
            out[name] = {"weights_nbits": w.get("weight") if isinstance(w, dict) else None,
                         "activation_nbits": entry.get("activation")}
    return out


def countermeasure_changes(a: Report, b: Report) -> Dict[str, Any]:
    """What B changed relative to A: B's manifest ``extra.countermeasure`` and every quantization setting
    that differs between the two stage graphs (or recorded bit widths), grouped by (param, before, after)."""
    extra = b.manifest.get("extra") if isinstance(b.manifest, dict) else None
    declared = extra.get("countermeasure") if isinstance(extra, dict) else None
    groups: Dict[tuple, Dict[str, Any]] = {}

    def note(layer: str, param: str, va: Any, vb: Any, source: str) -> None:
        key = (param, repr(va), repr(vb))
        g = groups.setdefault(key, {"param": param, "a": va, "b": vb, "source": source, "layers": 0, "examples": []})
        g["layers"] += 1
        if len(g["examples"]) < 3:
            g["examples"].append(layer)

    seen = set()
    for name, qb in b.quant.items():
        qa = a.quant.get(name)
        if qa is None:
            continue
        for param in COUNTERMEASURE_PARAMS:
            va, vb = getattr(qa, param, None), getattr(qb, param, None)
            if va is None and vb is None:
                continue
            seen.add((name, param))
            if not _same(va, vb):
                note(name, param, va, vb, "stage graph")
    bits_a, bits_b = _manifest_bits(a), _manifest_bits(b)
    for name, eb in bits_b.items():
        ea = bits_a.get(name)
        if ea is None:
            continue
        for param, vb in eb.items():
            va = ea.get(param)
            if (name, param) in seen or (va is None and vb is None) or _same(va, vb):
                continue
            note(name, param, va, vb, "manifest")
    changes = sorted(groups.values(), key=lambda g: (-g["layers"], g["param"]))
    return {"declared": declared if isinstance(declared, dict) and declared else None, "changes": changes,
            "applied": bool(isinstance(declared, dict) and declared) or bool(changes)}


def _accuracy(r: Report) -> Optional[float]:
    acc = r.manifest.get("accuracy") if isinstance(r.manifest, dict) else None
    q = acc.get("quantized") if isinstance(acc, dict) else None
    return float(q) if isinstance(q, (int, float)) and not isinstance(q, bool) and math.isfinite(q) else None


def _change_text(cm: Dict[str, Any]) -> str:
    parts = []
    if cm["declared"]:
        parts.append(", ".join("%s=%s" % (k, _num_text(v)) for k, v in cm["declared"].items()))
    for g in cm["changes"][:3]:
        parts.append("%s %s -> %s on %d layer%s" % (g["param"], _num_text(g["a"]), _num_text(g["b"]), g["layers"],
                                                    "" if g["layers"] == 1 else "s"))
    if len(cm["changes"]) > 3:
        parts.append("%d more changes" % (len(cm["changes"]) - 3))
    return "; ".join(parts)


def _num_text(v: Any) -> str:
    return "%.4g" % v if isinstance(v, float) else str(v)


def countermeasure_outcome(a: Analysis, b: Analysis, metrics: List[str]) -> Dict[str, Any]:
    """Whether B applied a countermeasure and whether it improved on A: fewer degraded layers, better output
    metrics (more of them moved towards "not degraded" than away, on validation data, else representative) or
    a higher quantized accuracy.  ``did_not_improve`` only when a countermeasure was applied and none of the
    three got better."""
    th = a.thresholds
    cm = countermeasure_changes(a.report, b.report)
    deg_a, deg_b = len(a.degraded), len(b.degraded)
    ds = "val" if a.report.output_metrics.get("val") and b.report.output_metrics.get("val") else "repr"
    out_a, out_b = a.report.output_metrics.get(ds, {}), b.report.output_metrics.get(ds, {})
    outputs: Dict[str, Dict[str, Any]] = {}
    better = worse = 0
    for m in metrics:
        va, vb = out_a.get(m), out_b.get(m)
        if not isinstance(va, (int, float)) or not isinstance(vb, (int, float)) or math.isnan(va) or math.isnan(vb):
            continue
        under = bool(th.detect_under.get(m, False))
        tol = 1e-9 + 1e-6 * max(abs(va), abs(vb))
        verdict = None if abs(vb - va) <= tol else ((vb > va) if under else (vb < va))
        better += verdict is True
        worse += verdict is False
        outputs[m] = {"a": va, "b": vb, "better": verdict}
    acc_a, acc_b = _accuracy(a.report), _accuracy(b.report)
    acc_better = acc_a is not None and acc_b is not None and acc_b > acc_a + 1e-9
    improved = {"degraded_layers": deg_b < deg_a, "output_metrics": better > worse, "accuracy": acc_better}
    outcome = dict(cm, degraded_a=deg_a, degraded_b=deg_b, output_dataset=ds, output_metrics=outputs,
                   accuracy_a=acc_a, accuracy_b=acc_b, improved=improved,
                   did_not_improve=cm["applied"] and not any(improved.values()))
    if not cm["applied"]:
        outcome["reason"] = ("B records no countermeasure and its quantization settings match A's: there is no "
                             "countermeasure to judge")
    elif any(improved.values()):
        outcome["reason"] = "improved: " + ", ".join(k.replace("_", " ") for k, v in improved.items() if v)
    else:
        outcome["reason"] = "applied (%s) without improvement" % _change_text(cm)
    return outcome


def compare(a: Analysis, b: Analysis) -> Dict[str, Any]:
    """Per-layer deltas from report A (before) to report B (after).  A layer improved when every
    metric moved towards "not degraded" or stayed, and at least one moved."""
    th = a.thresholds
    metrics = [m for m in a.report.metrics if m in b.report.metrics]
    rows = []
    counts = {"improved": 0, "worse": 0, "unchanged": 0, "only_a": 0, "only_b": 0}
    deg_a, deg_b = set(a.degraded), set(b.degraded)
    names = [l.name for l in a.report.layers] + [l.name for l in b.report.layers if l.name not in a.report.layer_by_name]
    for name in names:
        la, lb = a.report.layer_by_name.get(name), b.report.layer_by_name.get(name)
        if la is None or lb is None:
            status = "only_b" if la is None else "only_a"
            counts[status] += 1
            rows.append({"name": name, "status": status, "a": la.metrics if la else None, "b": lb.metrics if lb else None,
                         "delta": {}, "degraded_a": name in deg_a, "degraded_b": name in deg_b})
            continue
        delta, better, worse = {}, 0, 0
        for m in metrics:
            under = bool(th.detect_under.get(m, False))
            for ds in DATASETS:
                va, vb = la.metrics.get(ds, {}).get(m), lb.metrics.get(ds, {}).get(m)
                if va is None or vb is None or math.isnan(va) or math.isnan(vb):
                    continue
                d = vb - va
                delta["%s.%s" % (m, ds)] = d
                tol = 1e-9 + 1e-6 * max(abs(va), abs(vb))
                if abs(d) <= tol:
                    continue
                good = d > 0 if under else d < 0
                better += good
                worse += not good
        status = "unchanged" if not (better or worse) else ("improved" if better >= worse else "worse")
        counts[status] += 1
        rows.append({"name": name, "status": status, "a": la.metrics, "b": lb.metrics, "delta": delta,
                     "degraded_a": name in deg_a, "degraded_b": name in deg_b})
    counts["degraded_a"], counts["degraded_b"] = len(deg_a), len(deg_b)
    general = []
    out_a, out_b = a.report.output_metrics.get("val", {}), b.report.output_metrics.get("val", {})
    out_delta = {m: out_b[m] - out_a[m] for m in metrics if m in out_a and m in out_b}
    outcome = countermeasure_outcome(a, b, metrics)
    if outcome["did_not_improve"]:
        outs = ", ".join("%s %s -> %s" % (m, _num_text(v["a"]), _num_text(v["b"]))
                         for m, v in outcome["output_metrics"].items())
        acc = ("; quantized accuracy %s -> %s" % (_num_text(outcome["accuracy_a"]), _num_text(outcome["accuracy_b"]))
               if outcome["accuracy_a"] is not None and outcome["accuracy_b"] is not None else "")
        general.append(V.general(
            V.COUNTERMEASURE_DID_NOT_IMPROVE,
            "B applied a countermeasure (%s) but nothing improved: %d degraded layers (before: %d); output metrics "
            "on %s data %s%s. The countermeasure did not help; move on to the general troubleshoots."
            % (_change_text(outcome), len(deg_b), len(deg_a), outcome["output_dataset"], outs or "unknown", acc),
            degraded_before=len(deg_a), degraded_after=len(deg_b), output_metrics=outcome["output_metrics"],
            output_dataset=outcome["output_dataset"], accuracy_before=outcome["accuracy_a"],
            accuracy_after=outcome["accuracy_b"], countermeasure=outcome["declared"],
            changes=outcome["changes"][:10]).to_json())
    acc = {}
    for key, r in (("a", a.report), ("b", b.report)):
        m = r.manifest if isinstance(r.manifest, dict) else {}
        acc[key] = m.get("accuracy")
    return {"a": a.report.id, "b": b.report.id, "a_name": a.report.rel, "b_name": b.report.rel,
            "metrics": metrics, "layers": rows, "summary": counts, "output_delta_val": out_delta,
            "accuracy": acc, "countermeasure": outcome, "general": general, "thresholds": th.to_json()}


# The views served per analysis (HTTP route -> view), serialized once per analysis.
ANALYSIS_VIEWS = {"report": summary, "graph": graph, "layers": layers, "verdicts": verdicts}


def cached_json(a: Analysis, route: str) -> str:
    """JSON text of one of :data:`ANALYSIS_VIEWS` for this analysis, serialized on first use."""
    body = a.json_cache.get(route)
    if body is None:
        body = dumps(ANALYSIS_VIEWS[route](a))
        a.json_cache[route] = body
    return body
