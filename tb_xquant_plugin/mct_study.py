"""Try the fixes: quantize, judge, apply each proposed countermeasure, quantize again, and keep what helped.

``try_countermeasures`` closes the loop MCT's troubleshooting manual leaves to the user.  It runs

1. the **baseline**: PTQ with the caller's configuration, then XQuant with the manifest
   (``mct_run.xquant_report_with_manifest``), judged by tb-xquant;
2. each **applicable countermeasure** of the baseline's computed verdicts (``Verdict.countermeasure``, the object
   the verdict's snippet is rendered from), one at a time, in the order the verdicts come;
3. the **helpful ones together**, when more than one helped;
4. when none helped (or none was proposed) and the baseline has degraded layers or lost accuracy, the **general
   troubleshoots** in this order, until one helps: a larger or more diverse representative set (only when the
   caller passes ``more_representative_data_gen``), bias correction off, GPTQ
   with a small budget (``gptq_epochs``), and the most degraded layer's weights and activation at 16 bits through
   MCT's network editor (which confirms, or clears, a suspect layer; ``BitWidthConfig`` cannot: MCT 2.6.1's
   default TPC refuses 16-bit activations for Conv and Linear nodes).

Every attempt is a report folder under ``out_dir`` (``<nn>_<slug>/xquant_report`` with MCT's stage logs beside it)
whose manifest names its parent and its countermeasure (``extra.study``, ``extra.countermeasure`` for the tab's
compare judge).  ``out_dir/study.json`` (``model.study``) is rewritten after each attempt, so a running study can
be watched in the XQuant tab.  An attempt that raises is recorded with its error and the study goes on; the budgets
(``max_attempts``, ``time_budget_s``) stop it between attempts.  The float model is never modified: each attempt
quantizes a deep copy.

An attempt *helped* when it has fewer degraded layers than the baseline or a higher model-output SQNR on the
validation set, and (when ``evaluate`` is given) its accuracy is not lower than the baseline's by more than
``max_accuracy_drop`` (0.5 points on a 0..100 scale, 0.005 on a 0..1 one).  The best attempt is the one with the
highest accuracy (or, without ``evaluate``, output SQNR), then the fewest degraded layers.

Only this module and ``mct_run`` import torch and MCT."""
from __future__ import annotations

import copy
import datetime
import json
import math
import os
import re
import time
import traceback
from typing import Any, Callable, Dict, List, Optional

from tb_xquant_plugin.model import countermeasure as C
from tb_xquant_plugin.model import study as S
from tb_xquant_plugin.model.walk import compare_points

__all__ = ["core_config_with", "try_countermeasures"]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "_", text).strip("_")[:40] or "attempt"


def _apply(cm: Optional[Dict[str, Any]], core_config: Any, ru: Any, float_model: Any, toolchain_attr: str = "weight"):
    """(core_config, resource_utilization, use_gptq, gptq_epochs, use_more_data) for one countermeasure, built on
    deep copies of the caller's objects."""
    import model_compression_toolkit as mct

    core = copy.deepcopy(core_config) if core_config is not None else mct.core.CoreConfig()
    ru = copy.deepcopy(ru)
    gptq, epochs, more = False, 0, False
    for part in (C.parts_of(cm) if cm else []):
        kind = part["kind"]
        if kind == C.QUANTIZATION_CONFIG:
            for k, v in part["fields"].items():
                if not hasattr(core.quantization_config, k):
                    raise ValueError("QuantizationConfig has no field %r" % k)
                setattr(core.quantization_config, k, v)
        elif kind == C.LAYER_ACTIVATION:
            ne = mct.core.network_editor
            if core.debug_config is None:
                core.debug_config = mct.core.DebugConfig()
            core.debug_config.network_editor = list(core.debug_config.network_editor or []) + [
                ne.EditRule(filter=ne.NodeNameFilter(layer),
                            action=ne.ChangeCandidatesActivationQuantConfigAttr(**part["fields"]))
                for layer in part["layers"]]
        elif kind == C.GENERAL and part["step"] == C.WORST_LAYER_16_BITS:
            ne = mct.core.network_editor
            flt = ne.NodeNameFilter(part["layer"])
            if core.debug_config is None:
                core.debug_config = mct.core.DebugConfig()
            core.debug_config.network_editor = list(core.debug_config.network_editor or []) + [
                ne.EditRule(filter=flt, action=ne.ChangeCandidatesActivationQuantConfigAttr(activation_n_bits=16)),
                ne.EditRule(filter=flt, action=ne.ChangeCandidatesWeightsQuantConfigAttr(
                    attr_name=toolchain_attr, weights_n_bits=16))]
        elif kind == C.BIT_WIDTH:
            pin = part
            flt = mct.core.network_editor.NodeNameFilter(pin["layer"])
            if core.bit_width_config is None:
                core.bit_width_config = mct.core.BitWidthConfig()
            if pin["target"] == "weights":
                core.bit_width_config.set_manual_weights_bit_width(flt, pin["bits"], pin.get("attr") or toolchain_attr)
                if ru is not None and pin.get("from_bits") is not None and getattr(ru, "weights_memory", None):
                    numel = _weights_count(float_model, pin["layer"])
                    if numel is not None and math.isfinite(ru.weights_memory):
                        ru.weights_memory += numel * (pin["bits"] - pin["from_bits"]) / 8.0
            else:
                core.bit_width_config.set_manual_activation_bit_width(flt, pin["bits"])
        elif kind == C.GENERAL and part["step"] == C.BIAS_CORRECTION_OFF:
            core.quantization_config.weights_bias_correction = False
        elif kind == C.GENERAL and part["step"] == C.GPTQ:
            gptq, epochs = True, int(part.get("n_epochs", 5))
        elif kind == C.GENERAL and part["step"] == C.MORE_REPRESENTATIVE_DATA:
            more = True
        else:
            raise ValueError("cannot apply a %s countermeasure to an MCT run" % kind)
    return core, ru, gptq, epochs, more


def core_config_with(cm: Optional[Dict[str, Any]], core_config: Any = None) -> Any:
    """MCT's ``CoreConfig`` with one countermeasure applied (a deep copy of ``core_config``; a fresh one without
    it): what a verdict's snippet runs, for callers that quantize themselves.  ValueError for a countermeasure that
    is not a configuration change (GPTQ, more data, a model change, a weights pin that must raise a memory target)."""
    if cm and any(p["kind"] == C.BIT_WIDTH and p.get("target") == "weights" for p in C.parts_of(cm)):
        raise ValueError("a weights pin needs the run's resource target: use try_countermeasures")
    core, _, gptq, _, more = _apply(cm, core_config, None, None)
    if gptq or more:
        raise ValueError("%s is not a CoreConfig change" % C.describe(cm))
    return core


def _weights_count(float_model: Any, node_name: str) -> Optional[int]:
    for name, m in float_model.named_modules():
        if name.replace(".", "_") == node_name and getattr(m, "weight", None) is not None:
            return int(m.weight.numel())
    return None


def _weights_bytes(bit_widths: Dict[str, Any], quantized_model: Any) -> Optional[float]:
    """Bytes of the quantized model's weights at their bit widths (the attempt's size)."""
    total = 0.0
    for name, mod in quantized_model.named_children():
        wq = getattr(mod, "weights_quantizers", None)
        layer = getattr(mod, "layer", None)
        if not isinstance(wq, dict) or layer is None:
            continue
        for attr, q in wq.items():
            w = getattr(layer, attr, None)
            if w is not None and hasattr(w, "numel"):
                total += float(w.numel()) * int(getattr(q, "num_bits", 32) or 32) / 8.0
    return total or None


def _accuracy_scale(*values: Optional[float]) -> float:
    """100 when accuracies are percentages, 1 when fractions."""
    return 100.0 if max(abs(v) for v in values if v is not None) > 1.5 else 1.0


def _helped(base: Dict[str, Any], att: Dict[str, Any], max_drop: float) -> bool:
    """Fewer degraded layers, a model-output SQNR at least 5 % higher, or an accuracy higher by more than
    ``max_drop`` points -- and, in every case, an accuracy not lower by more than ``max_drop`` points."""
    if att.get("status") != S.OK or base.get("status") != S.OK:
        return False
    ba, aa = base.get("accuracy"), att.get("accuracy")
    margin = None
    if ba is not None and aa is not None:
        margin = max_drop * _accuracy_scale(ba, aa) / 100.0
        if aa < ba - margin:
            return False
    fewer = att["degraded_count"] < base["degraded_count"]
    sq_b, sq_a = base.get("output_sqnr"), att.get("output_sqnr")
    better_out = sq_b is not None and sq_a is not None and sq_a > sq_b * 1.05
    better_acc = margin is not None and aa > ba + margin
    return fewer or better_out or better_acc


def _target_errors(rep: Any, layers: List[str]) -> Dict[str, Optional[float]]:
    """Validation MSE at the compare points of the layers a verdict is about (what its countermeasure should
    lower)."""
    out: Dict[str, Optional[float]] = {}
    for name in layers[:20]:
        for point in compare_points(rep, name):
            layer = rep.layer_by_name.get(point)
            out[point] = layer.mse() if layer else None
    return out


def try_countermeasures(
    float_model: Any,
    representative_data_gen: Callable,
    validation_data_gen: Callable,
    xquant_config: Any,
    *,
    out_dir: str,
    evaluate: Optional[Callable[[Any], float]] = None,
    core_config: Any = None,
    target_resource_utilization: Any = None,
    more_representative_data_gen: Optional[Callable] = None,
    max_attempts: int = 8,
    time_budget_s: float = 900.0,
    gptq_epochs: int = 2,
    max_accuracy_drop: float = 0.5,
    proposals: str = "actionable",
    general: bool = True,
    judges: Optional[List[str]] = None,
    model_name: Optional[str] = None,
    progress: Optional[Callable[[str], None]] = print,
) -> Dict[str, Any]:
    """Run the study (module docstring) and return what ``out_dir/study.json`` holds.

    Args:
        float_model: the trained float ``torch.nn.Module`` (left untouched).
        representative_data_gen: MCT's representative dataset (a callable yielding lists of input batches).
        validation_data_gen: XQuant's validation dataset, the same form.
        xquant_config: an ``XQuantConfig``; its ``report_dir`` is replaced per
            attempt, its thresholds are kept.
        out_dir: the study folder (put it inside your TensorBoard logdir to see it in the XQuant tab).
        evaluate: optional ``evaluate(model) -> accuracy`` for the manifest and the comparison.
        core_config, target_resource_utilization: the baseline's MCT configuration (copied, never changed).
        more_representative_data_gen: a larger or more diverse representative set for the general path.
        max_attempts: attempts after the baseline; time_budget_s: no new attempt starts after it.
        gptq_epochs: GPTQ's ``n_epochs`` in the general path.
        max_accuracy_drop: points of accuracy an attempt may lose and still count as helping.
        proposals: ``"actionable"`` tries the countermeasures of tb-xquant's actionable verdicts; ``"all"`` also
            the ones its "not the cause" outlier verdicts turned down and the ones MCT's own verdicts propose
            (the advice benchmark, ``bench/advice.py``, measures what each would have done).
        general: whether the general path may run.
        judges: try only the countermeasures of these judges' verdicts (e.g. ``["shift_negative_activation"]``);
            the others stay in ``proposed``, untried.
        progress: called with one line per step (None: quiet).
    """
    import model_compression_toolkit as mct
    import torch

    from tb_xquant_plugin import producers
    from tb_xquant_plugin.judges.run import analyse
    from tb_xquant_plugin.judges.snippets import render
    from tb_xquant_plugin.mct_run import quantized_bit_widths, xquant_report_with_manifest
    from tb_xquant_plugin.model.report import MCT_PYTORCH

    say = progress or (lambda _line: None)
    os.makedirs(out_dir, exist_ok=True)
    t_start = time.monotonic()
    before = {k: v.detach().clone() for k, v in float_model.state_dict().items()}
    study: Dict[str, Any] = {
        "schema": S.SCHEMA, "model_name": model_name or type(float_model).__name__, "toolchain": MCT_PYTORCH,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "status": S.RUNNING, "budget": {"max_attempts": max_attempts, "time_budget_s": time_budget_s},
        "attempts": [], "best": None, "winning_countermeasure": None, "winning_snippet": None, "stopped_by": None,
    }

    def save() -> None:
        _write(out_dir, study)

    def attempt(cm: Optional[Dict[str, Any]], source: str, verdict: Optional[Dict[str, Any]] = None,
                parent: Optional[str] = "baseline") -> Dict[str, Any]:
        n = len(study["attempts"])
        aid = "baseline" if cm is None else "%02d_%s" % (n, _slug(C.describe(cm)))
        folder = os.path.join(out_dir, aid)
        rec: Dict[str, Any] = {"id": aid, "dir": aid, "report": aid + "/xquant_report", "parent": parent if cm else None,
                               "countermeasure": cm, "label": C.describe(cm), "source": source, "verdict": verdict,
                               "status": S.RUNNING, "error": None}
        study["attempts"].append(rec)
        save()
        say("[study] %s: %s" % (aid, rec["label"]))
        t0 = time.monotonic()
        try:
            core, ru, gptq, epochs, more = _apply(cm, core_config, target_resource_utilization, float_model)
            repr_gen = more_representative_data_gen if more else representative_data_gen
            if more and more_representative_data_gen is None:
                raise ValueError("no larger representative set was offered")
            model = copy.deepcopy(float_model)
            mct.set_log_folder(os.path.join(folder, "mct_logs"))
            kwargs: Dict[str, Any] = {"core_config": core}
            if ru is not None:
                kwargs["target_resource_utilization"] = ru
            if gptq:
                q, _ = mct.gptq.pytorch_gradient_post_training_quantization(
                    model, repr_gen, gptq_config=mct.gptq.get_pytorch_gptq_config(n_epochs=epochs), **kwargs)
            else:
                q, _ = mct.ptq.pytorch_post_training_quantization(model, repr_gen, **kwargs)
            cfg = copy.copy(xquant_config)
            cfg.report_dir = os.path.join(folder, "xquant_report")
            # MCT logs this attempt's stages into <folder>/mct_logs/logs_<timestamp> (Logger.LOG_PATH)
            from model_compression_toolkit.logger import Logger

            cfg.quantize_reported_dir = Logger.LOG_PATH
            size = _weights_bytes(quantized_bit_widths(q), q)
            extra: Dict[str, Any] = {"study": {"parent": rec["parent"], "countermeasure": cm, "source": source,
                                               "cost": {"quantize_s": round(time.monotonic() - t0, 2),
                                                        "weights_bytes": size}}}
            if cm is not None:
                extra["countermeasure"] = {"label": rec["label"], **({"fields": cm["fields"]}
                                                                     if cm.get("kind") in (C.QUANTIZATION_CONFIG,
                                                                                           C.LAYER_ACTIVATION)
                                                                     else {})}
            xquant_report_with_manifest(model, q, representative_data_gen, validation_data_gen, cfg,
                                        model_name=study["model_name"], evaluate=evaluate, extra=extra,
                                        core_config=core)
            rep = producers.build_report_dir(cfg.report_dir, out_dir)
            analysis = analyse(rep)
            val = (rep.output_metrics or {}).get("val") or (rep.output_metrics or {}).get("repr") or {}
            acc = (rep.manifest or {}).get("accuracy") or {}
            def val_mse(name: str) -> float:
                layer = rep.layer_by_name.get(name)
                x = layer.mse() if layer else None
                return -math.inf if x is None else x

            rec["worst_layer"] = max(analysis.degraded, key=val_mse) if analysis.degraded else None
            rec["_report"] = rep
            rec.update(status=S.OK, degraded=list(analysis.degraded)[:200], degraded_count=len(analysis.degraded),
                       output_sqnr=val.get("sqnr"), output_mse=val.get("mse"),
                       accuracy=acc.get("quantized"), float_accuracy=acc.get("float"),
                       size_bytes=size,
                       verdicts=[v.to_json() for v in analysis.verdicts if v.source == "computed"][:50])
            rec["_analysis"] = analysis
        except Exception as e:  # noqa: BLE001 - a failing attempt is a result; the study goes on
            rec.update(status=S.FAILED, error=("%s: %s" % (type(e).__name__, e))[:2000],
                       traceback=traceback.format_exc()[-4000:])
            say("[study] %s failed: %s" % (aid, rec["error"]))
        rec["time_s"] = round(time.monotonic() - t0, 2)
        rec["peak_rss_mb"] = _peak_rss_mb()
        save()
        return rec

    def over_budget() -> Optional[str]:
        if len(study["attempts"]) - 1 >= max_attempts:
            return "max_attempts"
        if time.monotonic() - t_start >= time_budget_s:
            return "time_budget_s"
        return None

    base = attempt(None, "baseline")
    if base["status"] != S.OK:
        study["status"], study["stopped_by"] = S.FAILED, "baseline failed"
        save()
        return _public(study)
    proposed = _proposals(base.pop("_analysis"), proposals == "all")
    if judges:  # the chosen judges' first, the others listed after them, never tried
        proposed.sort(key=lambda p: p[1]["judge"] not in judges)
    base_report = base.pop("_report")
    study["proposed"] = [{"countermeasure": cm, "label": C.describe(cm), "verdict": v} for cm, v in proposed]
    if judges:
        proposed = [p for p in proposed if p[1]["judge"] in judges]
    helpful: List[Dict[str, Any]] = []
    for cm, v in proposed:
        stop = over_budget()
        if stop:
            study["stopped_by"] = stop
            break
        rec = attempt(cm, "verdict", v)
        rec.pop("_analysis", None)
        rec["helped"] = _helped(base, rec, max_accuracy_drop)
        if rec["status"] == S.OK:  # the layers the verdict is about, before and after
            before_t = _target_errors(base_report, v["layers"])
            after_t = _target_errors(rec.pop("_report"), v["layers"])
            rec["target_mse"] = {"before": before_t, "after": after_t}
            pairs = [(before_t[k], after_t[k]) for k in before_t if before_t[k] is not None and after_t.get(k) is not None]
            # better by 5 % somewhere it shows, and worse by 5 % nowhere
            rec["target_improved"] = (any(a < 0.95 * b for b, a in pairs) and
                                      not any(a > 1.05 * b for b, a in pairs))
        if rec["helped"]:
            helpful.append(rec)
    helpful = [r for r in helpful if (r.get("verdict") or {}).get("actionable", True)]
    if len(helpful) > 1 and not study["stopped_by"]:
        both = C.combine([r["countermeasure"] for r in helpful])
        if both is not None and not over_budget():
            rec = attempt(both, "combined")
            rec.pop("_analysis", None)
            rec["helped"] = _helped(base, rec, max_accuracy_drop)
    lost = (base.get("float_accuracy") is not None and base.get("accuracy") is not None and
            base["float_accuracy"] - base["accuracy"] > max_accuracy_drop * _accuracy_scale(
                base["float_accuracy"], base["accuracy"]) / 100.0)
    if not general:
        study["general_path_skipped"] = "general=False"
    elif not helpful and not study["stopped_by"] and not base["degraded_count"] and not lost:
        study["general_path_skipped"] = ("the baseline has no degraded layer and %s: nothing for the general "
                                         "troubleshoots to fix" % ("no accuracy loss" if base.get("accuracy") is not None
                                                                   else "no accuracy was measured"))
    elif not helpful and not study["stopped_by"]:
        worst = _worst_layer(base)
        steps = ([C.general(C.MORE_REPRESENTATIVE_DATA)] if more_representative_data_gen is not None else []) + [
            C.general(C.BIAS_CORRECTION_OFF), C.general(C.GPTQ, n_epochs=gptq_epochs)] + (
            [C.general(C.WORST_LAYER_16_BITS, layer=worst)] if worst else [])
        study["general_path"] = [C.describe(s) for s in steps]
        for cm in steps:  # in order, until one helps
            stop = over_budget()
            if stop:
                study["stopped_by"] = stop
                break
            rec = attempt(cm, "general")
            rec.pop("_analysis", None)
            rec["helped"] = _helped(base, rec, max_accuracy_drop)
            if rec["helped"]:
                break
    for r in study["attempts"]:
        r.pop("_analysis", None)
        r.pop("_report", None)
    best = S.best_attempt(study["attempts"])
    study["best"] = best["id"] if best else None
    if best is not None and best["countermeasure"] is not None and best.get("helped"):
        study["winning_countermeasure"] = best["countermeasure"]
        study["winning_snippet"] = render(best["countermeasure"], MCT_PYTORCH)
    study["status"] = S.DONE
    study["elapsed_s"] = round(time.monotonic() - t_start, 2)
    after = float_model.state_dict()
    study["float_model_untouched"] = all(torch.equal(before[k], after[k]) for k in before) and set(before) == set(after)
    save()
    say("[study] done: best %s" % study["best"])
    return _public(study)


def _proposals(analysis: Any, everything: bool = False) -> List[Any]:
    """(countermeasure, verdict summary) of the computed actionable verdicts, the same countermeasure once.  With
    ``everything``: also the z_threshold a computed outlier verdict found not to be the cause (``actionable``
    False), set on the layers its replay judged only (the claim is about those), and what MCT's own verdicts propose
    (``source`` "mct": its outlier z_threshold, global as MCT advises it; its mixed-precision verdict is ours) and,
    for a shift-negative "not the cause", the activation shifted alone (its ``test_countermeasure``); each summary
    lists every verdict that proposed the countermeasure (``uncertain``: a proposal the replay could not settle)."""
    out: Dict[str, Any] = {}
    for v in analysis.verdicts:
        numbers = v.numbers or {}
        cm = getattr(v, "countermeasure", None)
        actionable = bool(numbers.get("actionable", True))
        if v.source == "computed" and C.is_applicable(cm) and actionable:
            pass
        elif everything and v.judge == "outlier_removal" and isinstance(numbers.get("z_threshold"), (int, float)):
            z = float(numbers["z_threshold"])
            # ours: the layers its replay judged (the verdict's layer and the activations feeding it), as the
            # countermeasure would set them were the tail real; MCT's: the global value it advises
            judged = list(v.layers[:1]) + [i["layer"] for i in numbers.get("inputs") or [] if i.get("layer")]
            cm = (C.layer_activation(judged, z_threshold=z) if v.source == "computed" and judged
                  else C.quantization_config(z_threshold=z))
            actionable = v.source == "computed" and actionable
        elif everything and v.source == "computed" and C.is_applicable(numbers.get("test_countermeasure")):
            # a shift-negative "not the cause": the activation shifted alone, as the claim is about it
            cm = numbers["test_countermeasure"]
        else:
            continue
        key = json.dumps(cm, sort_keys=True)
        summary = out.setdefault(key, (cm, {"judge": v.judge, "layers": list(v.layers)[:5], "message": v.message[:500],
                                            "actionable": actionable, "sources": []}))[1]
        summary["sources"].append({"source": v.source, "actionable": actionable if v.source == "computed" else None,
                                   "uncertain": bool(numbers.get("uncertain")) if v.source == "computed" else None,
                                   "layers": list(v.layers)[:5]})
        summary["actionable"] = summary["actionable"] or actionable
    # what our actionable verdicts propose first (the study's budget goes to them), then the claims to test
    rank = {True: 0, False: 1}
    return sorted(out.values(), key=lambda p: (rank[bool(p[1]["actionable"])], 0 if any(
        s["source"] == "computed" for s in p[1]["sources"]) else 1))


def _worst_layer(base: Dict[str, Any]) -> Optional[str]:
    """The degraded layer with the largest validation MSE (the suspect the 16-bit attempt confirms or clears)."""
    return base.get("worst_layer")


def _peak_rss_mb() -> Optional[float]:
    try:
        import resource

        return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0, 1)
    except Exception:  # noqa: BLE001 - not on every platform
        return None


def _finite(v: Any) -> Any:
    """JSON-safe: non-finite floats as None, containers walked, other objects as their str()."""
    if isinstance(v, float):
        return v if math.isfinite(v) else None
    if isinstance(v, (str, int, bool)) or v is None:
        return v
    if isinstance(v, dict):
        return {str(k): _finite(x) for k, x in v.items() if not str(k).startswith("_")}
    if isinstance(v, (list, tuple)):
        return [_finite(x) for x in v]
    return str(v)


def _write(out_dir: str, study: Dict[str, Any]) -> None:
    """study.json, replaced atomically (the tab may be reading it)."""
    path = os.path.join(out_dir, S.FILENAME)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(_finite(study), f, indent=1, allow_nan=False)
    os.replace(tmp, path)


def _public(study: Dict[str, Any]) -> Dict[str, Any]:
    return _finite(study)
