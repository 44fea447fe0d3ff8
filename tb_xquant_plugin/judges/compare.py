"""The compare judge: did report B (after a countermeasure) improve on report A (before)?

B applied a countermeasure when its manifest declares one (``extra.countermeasure``) or a
quantization setting differs between the two stage graphs (or recorded bit widths).  It improved
when it has fewer degraded layers, better output metrics or a higher quantized accuracy; only when
a countermeasure was applied and none of the three got better is the verdict "did not improve".

Layers pair by name when both reports come from the same family of toolchains (MCT, or QDQ ONNX).  An MCT report
and an ONNX report of the same model name their layers differently -- MCT after the torch.fx nodes
(``blocks_0_conv``, ``project_conv_bn`` for a Conv with its BatchNorm folded), the ONNX report after the float
ONNX nodes (``/blocks/0/conv/Conv``) -- so they pair by *module key* (:func:`module_key`): the module path the
name comes from, written with ``_`` (``blocks_0_conv``); an MCT name pairs with the longest key it equals or
extends by ``_...`` (``project_conv_bn`` -> ``project_conv``).  A key two layers of one report share pairs
nothing.  The comparison says which pairing it used and which layers stayed unpaired."""
from __future__ import annotations

import dataclasses
import math
from typing import TYPE_CHECKING, Any, Dict, List, Optional

from tb_xquant_plugin.judges.base import COMPARE, Judge, JudgeContext
from tb_xquant_plugin.judges.general import general as general_verdict
from tb_xquant_plugin.model import manifest as mf
from tb_xquant_plugin.model import verdict as V
from tb_xquant_plugin.model.report import DATASETS, LAYER_METRICS, ONNX_TOOLCHAINS, Report

if TYPE_CHECKING:  # pragma: no cover
    from tb_xquant_plugin.judges.run import Analysis


@dataclasses.dataclass
class Comparison:
    metrics: List[str]
    rows: List[Dict[str, Any]]
    counts: Dict[str, int]
    output_delta_val: Dict[str, float]
    accuracy: Dict[str, Any]
    outcome: Dict[str, Any]
    general: List[V.Verdict]
    pairing: Dict[str, Any] = dataclasses.field(default_factory=dict)


# --------------------------------------------------------------------------------------------------
# Pairing the layers of two reports
# --------------------------------------------------------------------------------------------------
BY_NAME = "name"
BY_MODULE = "module key"
# Top-level functional ONNX ops and the torch.fx node names of the same calls (``torch.cat`` -> ``cat``,
# ``x + y`` -> ``add``); the k-th call carries ``_k`` in both (``/Add_1``, ``add_1``).
FX_FUNCTION = {"Add": "add", "Sub": "sub", "Mul": "mul", "Div": "truediv", "Concat": "cat", "Flatten": "flatten",
               "ReduceMean": "mean", "MatMul": "matmul", "Relu": "relu", "Sigmoid": "sigmoid", "Softmax": "softmax"}
MAX_UNPAIRED_LISTED = 50


def family(r: Report) -> str:
    """``onnx`` for a QDQ ONNX report, ``mct`` for the others: names are comparable within a family."""
    return "onnx" if r.toolchain in ONNX_TOOLCHAINS else "mct"


def module_key(r: Report, name: str) -> Optional[str]:
    """The module path an ONNX layer's name comes from, ``_``-joined: ``/blocks/0/conv/Conv`` -> ``blocks_0_conv``
    (torch.onnx.export names a node ``/<module path>/<Op>``); a top-level functional op gets its torch.fx name
    (``/Concat`` -> ``cat``, ``/Add_1`` -> ``add_1``); an MCT layer's key is its name (already the fx name).
    None when the name says nothing about a module (a graph input, a renamed node) and for a node's second
    compare point (``/Mul_1:out1``: an inserted op's output or a second output, which MCT has no layer for)."""
    if family(r) != "onnx":
        return name
    if ":" in name or not name.startswith("/"):
        return None
    parts = [p for p in name.split("/") if p]
    if len(parts) >= 2:
        return "_".join(p.replace(".", "_") for p in parts[:-1])
    if len(parts) == 1:
        op, _, k = parts[0].partition("_")
        fn = FX_FUNCTION.get(op)
        if fn and (not k or k.isdigit()):
            return fn + ("_" + k if k else "")
    return None


def _unique_keys(r: Report) -> Dict[str, str]:
    """key -> layer name, for the keys exactly one layer of ``r`` has."""
    seen: Dict[str, List[str]] = {}
    for l in r.layers:
        k = module_key(r, l.name)
        if k:
            seen.setdefault(k, []).append(l.name)
    return {k: names[0] for k, names in seen.items() if len(names) == 1}


def _mct_match(mct_name: str, onnx_keys: Dict[str, str]) -> Optional[str]:
    """The ONNX key an MCT layer name stands for: equal, else the longest key it extends by ``_...`` (MCT names a
    Conv with its BatchNorm folded ``<conv>_bn``)."""
    if mct_name in onnx_keys:
        return mct_name
    best = None
    for k in onnx_keys:
        if mct_name.startswith(k + "_") and (best is None or len(k) > len(best)):
            best = k
    return best


def pair_layers(a: Report, b: Report) -> Dict[str, Any]:
    """How the layers of A and B pair: ``method`` (``name`` or ``module key``), ``pairs`` [(name in A, name in B,
    key)] in A's order, the names left unpaired on each side, and notes on what the pairs compare."""
    fa, fb = family(a), family(b)
    notes: List[str] = []
    if fa == fb:
        pairs = [(l.name, l.name, None) for l in a.layers if l.name in b.layer_by_name]
        method = BY_NAME
    else:
        method = BY_MODULE
        onnx_r, mct_r = (a, b) if fa == "onnx" else (b, a)
        onnx_keys = _unique_keys(onnx_r)
        matched: Dict[str, str] = {}  # mct name -> onnx name
        used = set()
        for mct_name in _unique_keys(mct_r).values():
            k = _mct_match(mct_name, onnx_keys)
            if k is not None and k not in used:
                used.add(k)
                matched[mct_name] = onnx_keys[k]
        key_of = {v: k for k, v in onnx_keys.items()}
        if fa == "onnx":
            inverse = {o: m for m, o in matched.items()}
            pairs = [(l.name, inverse[l.name], key_of[l.name]) for l in a.layers if l.name in inverse]
        else:
            pairs = [(l.name, matched[l.name], key_of[matched[l.name]]) for l in a.layers if l.name in matched]
        absorbed = []
        for na, nb, _ in pairs:
            onnx_name = na if fa == "onnx" else nb
            layer = onnx_r.layer_by_name[onnx_name]
            node = onnx_r.node_by_id.get(layer.node or onnx_name)
            if node is not None and node.attrs.get("absorbed"):
                absorbed.append(onnx_name)
        notes.append("%s and %s name layers differently: paired by module key (the module path of the ONNX node "
                     "name, the torch.fx name of the MCT layer); a key two layers of one report share pairs nothing."
                     % (a.toolchain or fa, b.toolchain or fb))
        notes.append("MCT measures a weighted layer's output before its activation; an ONNX compare point is the "
                     "quantized tensor, after the activation the quantizer fused into the layer%s: the deltas of "
                     "those pairs compare different tensors (and MCT's mse / sqnr are not on the same scale as the "
                     "ONNX report's after a Relu)."
                     % (" (%d of the pairs: %s)" % (len(absorbed), ", ".join(absorbed[:6])) if absorbed else ""))
        if not pairs:
            notes.append("No layer paired: the two reports may not be of the same model, or the ONNX model was not "
                         "exported with torch.onnx.export's module-scoped node names.")
    in_a = {p[0] for p in pairs}
    in_b = {p[1] for p in pairs}
    only_a = [l.name for l in a.layers if l.name not in in_a]
    only_b = [l.name for l in b.layers if l.name not in in_b]
    return {"method": method, "pairs": pairs, "paired": len(pairs), "only_a": only_a, "only_b": only_b,
            "notes": notes}


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
    return mf.layer_bits(r.manifest)


def countermeasure_changes(a: Report, b: Report) -> Dict[str, Any]:
    """What B changed relative to A: B's manifest ``extra.countermeasure`` and every quantization setting
    that differs between the two stage graphs (or recorded bit widths), grouped by (param, before, after)."""
    declared = mf.declared_countermeasure(b.manifest)
    groups: Dict[tuple, Dict[str, Any]] = {}

    def note(layer: str, param: str, va: Any, vb: Any, source: str) -> None:
        key = (param, repr(va), repr(vb))
        g = groups.setdefault(key, {"param": param, "a": va, "b": vb, "source": source, "layers": 0, "examples": []})
        g["layers"] += 1
        if len(g["examples"]) < 3:
            g["examples"].append(layer)

    seen = set()
    # MCT's node names: both runs read the same float model, whose trace names them alike (the quantized graphs'
    # names of functional nodes can differ between the runs, e.g. when one inserted shift-negative nodes)
    for name, qb in b.mct_quant.items():
        qa = a.mct_quant.get(name)
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
    return mf.quantized_accuracy(r.manifest)


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


def countermeasure_outcome(a: "Analysis", b: "Analysis", metrics: List[str]) -> Dict[str, Any]:
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


def compare(a: "Analysis", b: "Analysis") -> Comparison:
    """Per-layer deltas from report A (before) to report B (after).  A layer improved when every
    metric moved towards "not degraded" or stayed, and at least one moved."""
    th = a.thresholds
    metrics = [m for m in a.report.metrics if m in b.report.metrics]
    rows = []
    counts = {"improved": 0, "worse": 0, "unchanged": 0, "only_a": 0, "only_b": 0}
    deg_a, deg_b = set(a.degraded), set(b.degraded)
    pairing = pair_layers(a.report, b.report)
    partner = {na: (nb, key) for na, nb, key in pairing["pairs"]}
    # in A's order (its unpaired layers where they are), then B's unpaired layers
    entries = [(l.name,) + partner.get(l.name, (None, None)) for l in a.report.layers]
    entries += [(None, n, None) for n in pairing["only_b"]]
    for name_a, name_b, key in entries:
        la = a.report.layer_by_name.get(name_a) if name_a is not None else None
        lb = b.report.layer_by_name.get(name_b) if name_b is not None else None
        # the row is drawn on B's graph (the report on screen): B's name when it has one
        name = name_b if name_b is not None else name_a
        ids = {"name_a": name_a, "name_b": name_b, "key": key}
        if la is None or lb is None:
            status = "only_b" if la is None else "only_a"
            counts[status] += 1
            rows.append(dict({"name": name, "status": status, "a": la.metrics if la else None,
                              "b": lb.metrics if lb else None, "delta": {}, "degraded_a": name_a in deg_a,
                              "degraded_b": name_b in deg_b}, **ids))
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
        rows.append(dict({"name": name, "status": status, "a": la.metrics, "b": lb.metrics, "delta": delta,
                          "degraded_a": name_a in deg_a, "degraded_b": name_b in deg_b}, **ids))
    counts["degraded_a"], counts["degraded_b"] = len(deg_a), len(deg_b)
    general: List[V.Verdict] = []
    out_a, out_b = a.report.output_metrics.get("val", {}), b.report.output_metrics.get("val", {})
    out_delta = {m: out_b[m] - out_a[m] for m in metrics if m in out_a and m in out_b}
    outcome = countermeasure_outcome(a, b, metrics)
    if outcome["did_not_improve"]:
        outs = ", ".join("%s %s -> %s" % (m, _num_text(v["a"]), _num_text(v["b"]))
                         for m, v in outcome["output_metrics"].items())
        acc = ("; quantized accuracy %s -> %s" % (_num_text(outcome["accuracy_a"]), _num_text(outcome["accuracy_b"]))
               if outcome["accuracy_a"] is not None and outcome["accuracy_b"] is not None else "")
        general.append(general_verdict(
            V.COUNTERMEASURE_DID_NOT_IMPROVE,
            "B applied a countermeasure (%s) but nothing improved: %d degraded layers (before: %d); output metrics "
            "on %s data %s%s. The countermeasure did not help; move on to the general troubleshoots."
            % (_change_text(outcome), len(deg_b), len(deg_a), outcome["output_dataset"], outs or "unknown", acc),
            degraded_before=len(deg_a), degraded_after=len(deg_b), output_metrics=outcome["output_metrics"],
            output_dataset=outcome["output_dataset"], accuracy_before=outcome["accuracy_a"],
            accuracy_after=outcome["accuracy_b"], countermeasure=outcome["declared"],
            changes=outcome["changes"][:10]))
    acc = {"a": mf.accuracy(a.report.manifest), "b": mf.accuracy(b.report.manifest)}
    summary = {k: pairing[k] for k in ("method", "paired", "notes")}
    summary["only_a"] = pairing["only_a"][:MAX_UNPAIRED_LISTED]
    summary["only_b"] = pairing["only_b"][:MAX_UNPAIRED_LISTED]
    return Comparison(metrics, rows, counts, out_delta, acc, outcome, general, summary)


def run(ctx: JudgeContext) -> List[V.Verdict]:
    """The compare judge under the common interface: ``ctx.baseline`` is A, the analysis of ``ctx.report`` is B."""
    from tb_xquant_plugin.judges.run import analyse  # the analysis of B under A's thresholds

    if ctx.baseline is None:
        return []
    return compare(ctx.baseline, analyse(ctx.report, ctx.thresholds)).general


JUDGE = Judge(V.COUNTERMEASURE_DID_NOT_IMPROVE, COMPARE, frozenset((LAYER_METRICS,)), run,
              doc="report B applied a countermeasure and neither degraded layers, output metrics nor accuracy improved")
