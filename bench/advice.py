"""The advice benchmark: apply what each verdict proposes -- tb-xquant's and MCT's -- and measure what it did.

    python -m bench.advice --out advice_logs                       # torchvision architectures (slow: minutes each)
    python -m bench.advice --out advice_logs --arch resnet18 --steps 80
    python -m bench.advice --out advice_logs --demo                # the demo's small models (about a minute)

For each model and scenario it runs a study (``tb_xquant_plugin.mct_study.try_countermeasures`` with
``proposals="all"``, no general path): the baseline PTQ + XQuant report, then one attempt per countermeasure a
verdict proposes -- the actionable ones tb-xquant computes, the z_threshold its outlier judge turned down as "not
the cause", and what MCT's own verdicts propose -- each re-quantized and reported again.  Per judge and source it
counts the verdicts, the fixes that lowered the error of the layers the verdict is about (5 % or more, nowhere
worse by 5 %), those that improved the model (fewer degraded layers or model-output SQNR up 5 %) or its accuracy,
those that lowered accuracy by more than 0.5 points, and, for the verdicts marked "not the cause", those that
changed nothing measurable (no layer's degradation, SQNR within 5 %, accuracy within 0.5 points).

Scenarios (torchvision models with ``weights=None``, trained briefly on digits upscaled to 64x64; ``demo/zoo.py``):
``natural`` (as trained), ``outlier`` (one channel of a BatchNorm -> ReLU -> Conv chain scaled 60x and the
convolution's input channel scaled back: the same float function with an activation outlier channel),
``tight_mp`` (mixed precision under a weights-memory target that leaves the classifier at 2 bits), ``silu_off``
(models with SiLU / Hardswish quantized with shift_negative_activation_correction off).  With ``--demo``: the
demo's outlier, mixed-precision, shift-negative and unbalanced-concatenation models."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

ARCHS = ("resnet18", "mobilenet_v2", "mobilenet_v3_small", "squeezenet1_1", "efficientnet_b0", "googlenet",
         "regnet_x_400mf", "densenet121")
NEGATIVE_ACTIVATIONS = ("SiLU", "Hardswish", "GELU", "PReLU", "ELU")
OUTLIER_SCALE = 60.0


# ------------------------------------------------------------------------------------------------
# Scenarios on torchvision models
# ------------------------------------------------------------------------------------------------
def inject_outlier_channel(model) -> Optional[str]:
    """Scale channel 0 of the first BatchNorm (or Conv) -> ReLU -> Conv chain by OUTLIER_SCALE and the next
    convolution's input channel 0 by its inverse (ReLU is positively homogeneous: the float function stays);
    returns the scaled module's path, or None when the model has no such chain."""
    import torch
    import torch.fx as fx
    import torch.nn as nn

    try:
        gm = fx.symbolic_trace(model)
    except Exception:  # noqa: BLE001 - not traceable: no injection
        return None
    mods = dict(gm.named_modules())

    def mod(n):
        return mods.get(n.target) if n.op == "call_module" else None

    def is_relu(n):
        return isinstance(mod(n), nn.ReLU) or (n.op == "call_function" and getattr(n.target, "__name__", "") == "relu")

    for n in gm.graph.nodes:
        src = mod(n)
        if not isinstance(src, (nn.BatchNorm2d, nn.Conv2d)) or len(n.users) != 1:
            continue
        (r,) = n.users
        if not is_relu(r) or len(r.users) != 1:
            continue
        (c,) = r.users
        conv = mod(c)
        if not isinstance(conv, nn.Conv2d) or conv.groups != 1:
            continue
        with torch.no_grad():
            src.weight[0] *= OUTLIER_SCALE
            if src.bias is not None:
                src.bias[0] *= OUTLIER_SCALE
            conv.weight[:, 0] /= OUTLIER_SCALE
        return n.target
    return None


def classifier_2bit_memory(model) -> float:
    """Weights bytes with every Conv / Linear at 8 bits but the last one at 2."""
    import torch.nn as nn

    layers = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    return sum(m.weight.numel() * (2 if m is layers[-1] else 8) / 8.0 for m in layers)


def has_negative_activations(model) -> bool:
    return any(type(m).__name__ in NEGATIVE_ACTIVATIONS for m in model.modules())


def torchvision_cases(arch: str, steps: int) -> List[Tuple[str, Any, Any, Any, Any]]:
    """(scenario, float model, core_config, resource target, data) for one architecture."""
    import copy

    import model_compression_toolkit as mct

    from demo import zoo

    data = zoo.Digits64()
    import torch

    torch.manual_seed(0)
    base = zoo.train(zoo._arch(arch)(), data, steps)
    cases = [("natural", base, None, None, data)]
    out = copy.deepcopy(base)
    where = inject_outlier_channel(out)
    if where is not None:
        cases.append(("outlier", out, None, None, data))
    mp = mct.core.CoreConfig(mixed_precision_config=mct.core.MixedPrecisionQuantizationConfig())
    cases.append(("tight_mp", base, mp, mct.core.ResourceUtilization(weights_memory=classifier_2bit_memory(base)), data))
    if has_negative_activations(base):
        off = mct.core.CoreConfig(mct.core.QuantizationConfig(shift_negative_activation_correction=False))
        cases.append(("silu_off", base, off, None, data))
    return cases


def demo_cases() -> List[Tuple[str, Any, Any, Any, Any]]:
    from demo import models as M
    from demo.study import study_args

    data = M.DigitsData()
    out = []
    for name in ("outlier", "mixed_precision", "shift_negative", "unbalanced_concat"):
        model, core, ru, _scale = study_args(name, data)
        out.append((name, model, core, ru, data))
    return out


# ------------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------------
def outcome(base: Dict[str, Any], att: Dict[str, Any], max_drop: float = 0.5) -> Dict[str, Any]:
    """What one attempt did against the baseline."""
    ok = att.get("status") == "ok"
    scale = 100.0 if max(abs(base.get("accuracy") or 0), abs(att.get("accuracy") or 0)) > 1.5 else 1.0
    d_acc = ((att["accuracy"] - base["accuracy"]) * 100.0 / scale
             if ok and att.get("accuracy") is not None and base.get("accuracy") is not None else None)
    sq_b, sq_a = base.get("output_sqnr"), att.get("output_sqnr")
    sq_ratio = sq_a / sq_b if ok and sq_a is not None and sq_b else None
    fewer = ok and att["degraded_count"] < base["degraded_count"]
    return {
        "ok": ok,
        "target_improved": bool(att.get("target_improved")),
        "model_improved": bool(ok and (fewer or (sq_ratio is not None and sq_ratio > 1.05)
                                       or (d_acc is not None and d_acc > max_drop))),
        "accuracy_lowered": bool(d_acc is not None and d_acc < -max_drop),
        "changed_nothing": bool(ok and att["degraded_count"] == base["degraded_count"]
                                and (sq_ratio is None or 0.95 <= sq_ratio <= 1.05)
                                and (d_acc is None or abs(d_acc) <= max_drop)),
        "d_accuracy_points": d_acc, "sqnr_ratio": sq_ratio,
        "degraded": (base["degraded_count"], att.get("degraded_count")),
    }


def tally(rows: List[Dict[str, Any]]) -> Dict[Tuple[str, str, str], Dict[str, int]]:
    """(judge, source, kind) -> counts, kind "actionable" or "not the cause"."""
    out: Dict[Tuple[str, str, str], Dict[str, int]] = {}
    for r in rows:
        for src in r["sources"]:
            kind = "not the cause" if src["source"] == "computed" and src["actionable"] is False else "actionable"
            if src["source"] != "computed":
                kind = "MCT's"
            t = out.setdefault((r["judge"], src["source"], kind), {
                "verdicts": 0, "tried": 0, "target_improved": 0, "model_improved": 0, "accuracy_lowered": 0,
                "changed_nothing": 0})
            t["verdicts"] += 1
            o = r["outcome"]
            if o is None or not o["ok"]:
                continue
            t["tried"] += 1
            for k in ("target_improved", "model_improved", "accuracy_lowered", "changed_nothing"):
                t[k] += int(o[k])
    return out


def table(counts: Dict[Tuple[str, str, str], Dict[str, int]]) -> str:
    lines = ["| judge (source) | proposals | tried | targeted layer better | model or accuracy better | accuracy -0.5 pt or "
             "worse | changed nothing |", "|---|---|---|---|---|---|---|"]
    for (judge, _source, kind), t in sorted(counts.items()):
        lines.append("| %s (%s) | %d | %d | %d | %d | %d | %d |" % (
            judge, kind, t["verdicts"], t["tried"], t["target_improved"], t["model_improved"], t["accuracy_lowered"],
            t["changed_nothing"]))
    return "\n".join(lines)


def run_case(label: str, model, core, ru, data, out_root: str, max_attempts: int) -> List[Dict[str, Any]]:
    from model_compression_toolkit.xquant import XQuantConfig

    from tb_xquant_plugin.mct_study import try_countermeasures

    folder = os.path.join(out_root, label)
    s = try_countermeasures(model, data.representative(), data.validation(), XQuantConfig(report_dir=folder),
                            out_dir=folder, evaluate=data.accuracy, core_config=core, target_resource_utilization=ru,
                            max_attempts=max_attempts, proposals="all", general=False, model_name=label,
                            progress=None)
    base = next(a for a in s["attempts"] if a["id"] == "baseline")
    rows = []
    for a in s["attempts"]:
        v = a.get("verdict")
        if not v:
            continue
        rows.append({"case": label, "attempt": a["id"], "label": a["label"], "judge": v["judge"],
                     "sources": v.get("sources") or [{"source": "computed", "actionable": v.get("actionable", True)}],
                     "outcome": outcome(base, a), "error": a.get("error")})
    for p in s.get("proposed", [])[len(rows):]:  # proposed but not tried (budget)
        rows.append({"case": label, "attempt": None, "label": p["label"], "judge": p["verdict"]["judge"],
                     "sources": p["verdict"].get("sources", []), "outcome": None, "error": None})
    return rows


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--arch", nargs="*", default=list(ARCHS))
    p.add_argument("--steps", type=int, default=120, help="training steps per torchvision model")
    p.add_argument("--demo", action="store_true", help="the demo's small models instead of torchvision ones")
    p.add_argument("--max-attempts", type=int, default=6)
    args = p.parse_args(argv)
    import logging
    import warnings

    warnings.filterwarnings("ignore")
    logging.getLogger("Model Compression Toolkit").setLevel(logging.ERROR)
    os.makedirs(args.out, exist_ok=True)
    rows: List[Dict[str, Any]] = []
    t0 = time.time()
    groups = [("demo", demo_cases)] if args.demo else [(a, lambda a=a: torchvision_cases(a, args.steps))
                                                      for a in args.arch]
    for name, make in groups:
        t1 = time.time()
        try:
            cases = make()
        except Exception as e:  # noqa: BLE001 - an architecture that cannot be built or trained is reported
            print("%s: skipped (%s: %s)" % (name, type(e).__name__, e))
            continue
        for scenario, model, core, ru, data in cases:
            label = "%s_%s" % (name, scenario)
            try:
                got = run_case(label, model, core, ru, data, args.out, args.max_attempts)
            except Exception as e:  # noqa: BLE001 - e.g. the baseline quantization fails: reported, bench goes on
                print("%s: failed (%s: %s)" % (label, type(e).__name__, str(e)[:200]))
                continue
            rows += got
            print("%-28s %3d verdict attempts  %6.1fs" % (label, len(got), time.time() - t1), flush=True)
            t1 = time.time()
    counts = tally(rows)
    with open(os.path.join(args.out, "advice.json"), "w", encoding="utf-8") as f:
        json.dump({"rows": rows, "counts": {" / ".join(k): v for k, v in counts.items()},
                   "elapsed_s": round(time.time() - t0, 1)}, f, indent=1, default=str)
    print()
    print(table(counts))
    print("\n%d attempts in %.0f s; per-attempt rows in %s" % (len(rows), time.time() - t0,
                                                               os.path.join(args.out, "advice.json")))
    return 0


if __name__ == "__main__":
    sys.exit(main())
