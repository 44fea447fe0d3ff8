"""The advice benchmark: apply what each verdict proposes -- tb-xquant's and MCT's -- and measure what it did.

    python -m bench.advice --out advice_logs                       # torchvision architectures (an hour or more)
    python -m bench.advice --out advice_logs --arch resnet18 --scenarios natural outlier
    python -m bench.advice --out advice_logs --demo                # the demo's small models (about a minute)

For each model and scenario it runs a study (``tb_xquant_plugin.mct_study.try_countermeasures`` with
``proposals="all"``, no general path): the baseline PTQ + XQuant report, then one attempt per countermeasure a
verdict proposes -- the actionable ones tb-xquant computes, the z_threshold its outlier judge turned down as "not
the cause", and MCT's own outlier z_threshold -- each re-quantized and reported again.  An unbalanced
concatenation's countermeasure is a change of the float model (scale the narrow branch, undo it after the join):
the bench makes it itself (``fold_scale_branch``, folded into the convolutions around the join) and quantizes the
changed model.  MCT's shift-negative and mixed-precision verdicts are counted on the attempt that applies what
they propose (the correction on, the last layer wider) when one of ours proposed the same.

Per judge and source it counts the verdicts, the fixes that lowered the error of the layers the verdict is about
(validation MSE 5 % lower at one of them at least, 5 % higher at none; ``target_points``: for an outlier verdict
the layer and the layers consuming its output, for a concatenation the layers after the join), those that
improved the model (fewer degraded layers, model-output SQNR up 5 %, or accuracy up 0.5 points), those that
lowered accuracy by more than 0.5 points, and, for verdicts marked "not the cause", those that changed nothing
measurable (the same number of degraded layers, SQNR within 5 %, accuracy within 0.5 points); then PASS / MISS for
the issue's targets.

Scenarios (torchvision models, ``weights=None``, trained on digits upscaled to 64x64 with ``zoo.train_well``; the
trained weights are cached in ``OUT/weights``):

- ``natural``: as trained;
- ``outlier``: one channel scaled 300x with the float function unchanged (``inject_outlier_channel``): at a linear
  bottleneck (MobileNetV2's last projection conv + BN, the next 1x1 conv's input channel divided back) or, in
  ResNet18, at the bn1 -> ReLU -> conv2 of the block whose conv2 output has the widest z-score (``layer3.1``);
- ``tight_mp``: mixed precision with every other Conv / Linear pinned at 8 bits and a weights-memory target with
  room for the classifier at 2 bits only (``tight_mp_config``);
- ``concat``: SqueezeNet's first Fire module with its 3x3 expand branch 40x wider than its 1x1 branch, the next
  squeeze convolution dividing it back (``inject_unbalanced_concat``);
- ``silu_off``: models with SiLU / Hardswish quantized with shift_negative_activation_correction off.

With ``--demo``: the demo's outlier, mixed-precision, shift-negative and unbalanced-concatenation models."""
from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

from tb_xquant_plugin.model import countermeasure as C  # noqa: E402 - after the path above

ARCHS = ("resnet18", "mobilenet_v2", "mobilenet_v3_small", "squeezenet1_1", "efficientnet_b0", "googlenet",
         "regnet_x_400mf", "densenet121")
NEGATIVE_ACTIVATIONS = ("SiLU", "Hardswish", "GELU", "PReLU", "ELU")
OUTLIER_SCALE = 300.0  # the ReLU chain: the next layer degrades through its coarse input step
BOTTLENECK_OUTLIER_SCALE = 300.0  # enough for the layer to degrade; MobileNetV2 already falls to chance at 300x
CONCAT_SCALE = 40.0
REPR_BATCHES, VAL_BATCHES = 2, 2
SCENARIOS = ("natural", "outlier", "tight_mp", "concat", "silu_off")
MP_ARCHS = ("resnet18", "mobilenet_v2")


# ------------------------------------------------------------------------------------------------
# Training (cached) and scenarios on torchvision models
# ------------------------------------------------------------------------------------------------
# steps (batch 32) and peak learning rate per architecture: measured to reach > 90 % validation accuracy on the
# upscaled digits (``zoo.train_well``: one-cycle schedule, BatchNorm statistics re-estimated at the end)
TRAINING = {"squeezenet1_1": (1000, 5e-4)}
DEFAULT_TRAINING = (200, 2e-3)


def trained(arch: str, data, cache_dir: Optional[str], steps: Optional[int] = None):
    """The float model of ``arch`` trained on the digits; its state is cached in ``cache_dir`` between runs."""
    import torch

    from demo import zoo

    n, lr = TRAINING.get(arch, DEFAULT_TRAINING)
    n = steps or n
    model = zoo._arch(arch)()
    path = os.path.join(cache_dir, "%s_s%d.pt" % (arch, n)) if cache_dir else None
    if path and os.path.isfile(path):
        model.load_state_dict(torch.load(path))
        return model.eval()
    torch.manual_seed(0)
    zoo.train_well(model, data, n, lr=lr)
    if path:
        os.makedirs(cache_dir, exist_ok=True)
        torch.save(model.state_dict(), path)
    return model.eval()


def _trace(model):
    import torch.fx as fx

    gm = fx.symbolic_trace(model)
    return gm, dict(gm.named_modules())


def _mod(mods, n):
    return mods.get(n.target) if n.op == "call_module" else None


def _is_relu(mods, n) -> bool:
    import torch.nn as nn

    return isinstance(_mod(mods, n), nn.ReLU) or (n.op == "call_function" and getattr(n.target, "__name__", "") == "relu")


def _max_zscore(model, module, images) -> float:
    """max |x - mean| / std over a module's float outputs on ``images`` (the z-score MCT's outlier judge reads)."""
    import torch

    got = []
    h = module.register_forward_hook(lambda _m, _i, out: got.append(out.detach().flatten()))
    try:
        with torch.no_grad():
            model(images)
    finally:
        h.remove()
    x = torch.cat(got).double()
    sd = float(x.std())
    return float((x - x.mean()).abs().max()) / sd if sd > 0 else 0.0


def inject_outlier_channel(model, scale: Optional[float] = None, images=None) -> Optional[Dict[str, Any]]:
    """One activation outlier channel, the float function unchanged (exactly: only positive scalings through
    linear maps and ReLUs).

    Preferred: a **linear bottleneck** (MobileNetV2's projection conv + BN feeding the next block's 1x1 conv with
    nothing in between; the widest such BN): BN channel 0 times ``scale``, the next convolution's input channel 0
    divided by it.  The projection's own output (logged, quantized) carries the outlier; its absolute MSE grows
    with the square of the factor (MCT's 0.1 must be passed through that channel alone), and its activation
    quantizer's coarse step shows in the next convolution.
    Else (ResNet): a BN -> ReLU -> Conv chain (bn1 -> relu -> conv2 of a BasicBlock; with ``images``, the one
    whose conv2 + bn2 output has the largest float z-score, else the last): the ReLU output carries the outlier
    and conv2 (a linear layer before the residual add, logged) degrades because its input step is coarse.  Returns what was scaled, or None when the model has neither."""
    import torch
    import torch.nn as nn

    try:
        gm, mods = _trace(model)
    except Exception:  # noqa: BLE001 - not traceable: no injection
        return None
    linear, relu_chain = [], []
    for n in gm.graph.nodes:
        src = _mod(mods, n)
        if not isinstance(src, nn.BatchNorm2d) or len(n.users) != 1:
            continue
        (u,) = n.users
        conv = _mod(mods, u)
        if isinstance(conv, nn.Conv2d) and conv.groups == 1 and conv.kernel_size == (1, 1):
            linear.append((src.num_features, n.target, u.target))
        elif _is_relu(mods, u) and len(u.users) == 1:
            (c,) = u.users
            conv = _mod(mods, c)
            if isinstance(conv, nn.Conv2d) and conv.groups == 1:
                after = [u for u in c.users if isinstance(_mod(mods, u), nn.BatchNorm2d)] if len(c.users) == 1 else []
                relu_chain.append((src.num_features, n.target, c.target, after[0].target if after else c.target))
    if linear:
        kind, (_, bn_name, conv_name) = "linear bottleneck", max(linear)
    elif relu_chain:
        # the chain whose convolution's own output has the widest z-score: an outlier verdict fires only on a
        # degraded layer whose logged histogram reaches z >= 5 (the degraded layer is the convolution; the outlier
        # is in its input), so the injection goes where both judges can see it
        pick = relu_chain[-1]
        if images is not None:
            zs = [(_max_zscore(model, mods[c[3]], images), c) for c in relu_chain]
            pick = max(zs, key=lambda t: t[0])[1]
        kind, (_, bn_name, conv_name, _after) = "bn-relu-conv", pick
    else:
        return None
    bn, conv = mods[bn_name], mods[conv_name]
    if scale is None:
        scale = BOTTLENECK_OUTLIER_SCALE if kind == "linear bottleneck" else OUTLIER_SCALE
    with torch.no_grad():
        bn.weight[0] *= scale
        bn.bias[0] *= scale
        conv.weight[:, 0] /= scale
    return {"kind": kind, "scaled": bn_name, "compensated": conv_name, "channel": 0, "scale": scale,
            "channels": bn.num_features}


def inject_unbalanced_concat(model, scale: float = CONCAT_SCALE) -> Optional[Dict[str, Any]]:
    """A wide and a narrow branch joined: in a SqueezeNet Fire module whose output feeds the next Fire's squeeze
    convolution, the 3x3 expand branch (conv -> ReLU) times ``scale`` and the squeeze convolution's matching input
    channels divided by it (ReLU is positively homogeneous: the same float function); the concatenation then
    joins the 1x1 branch with a branch ``scale`` times wider."""
    import torch

    fires = [(name, m) for name, m in model.named_modules() if hasattr(m, "expand3x3") and hasattr(m, "squeeze")]
    for (name, fire), (next_name, nxt) in zip(fires[:-1], fires[1:]):
        e1 = fire.expand1x1.out_channels
        if nxt.squeeze.in_channels != e1 + fire.expand3x3.out_channels:
            continue
        with torch.no_grad():
            fire.expand3x3.weight.mul_(scale)
            fire.expand3x3.bias.mul_(scale)
            nxt.squeeze.weight[:, e1:] /= scale
        return {"kind": "fire concat", "scaled": name + ".expand3x3", "compensated": next_name + ".squeeze",
                "scale": scale}
    return None


def fold_scale_branch(model, cm: Dict[str, Any], sample) -> Tuple[Any, str]:
    """Apply an unbalanced-concatenation countermeasure (``multiply the output of <narrow> by f before <join> and
    undo the factor after it``) to a copy of the float model, folded into the weights so no new op is quantized:
    the convolution (and its BN) producing the narrow input times f (through ReLUs / max-pools, which commute
    with a positive factor), the convolutions consuming the join's channels of that input divided by f.  Raises
    ValueError when the graph does not allow it (a join that is an add, a producer or consumer that is not a
    convolution)."""
    import copy

    import torch
    import torch.nn as nn
    from torch.fx.passes.shape_prop import ShapeProp

    f = float(cm["factor"])
    if not f > 0:
        raise ValueError("factor %r" % f)
    m = copy.deepcopy(model)
    gm, mods = _trace(m)
    ShapeProp(gm).propagate(sample)
    by_name = {n.name: n for n in gm.graph.nodes}

    def find(report_name: str):
        for cand in (report_name, report_name[:-3] if report_name.endswith("_bn") else None):
            if cand and cand in by_name:
                return by_name[cand]
        return None

    join, narrow = find(cm["join"]), find(cm["narrow_input"])
    if join is None or narrow is None:
        raise ValueError("join %r or input %r not in the traced model" % (cm["join"], cm["narrow_input"]))
    if not (join.op == "call_function" and getattr(join.target, "__name__", "") == "cat"):
        raise ValueError("the join %s is not a concatenation: the factor cannot be undone after it" % join.name)
    parts = join.args[0]
    dim = join.args[1] if len(join.args) > 1 else join.kwargs.get("dim", 0)
    if dim not in (1, -3) or narrow not in parts:
        raise ValueError("not a channel concatenation of %s" % narrow.name)
    offset = sum(p.meta["tensor_meta"].shape[1] for p in parts[:parts.index(narrow)])
    width = narrow.meta["tensor_meta"].shape[1]
    homogeneous = (nn.ReLU, nn.MaxPool2d, nn.Dropout, nn.Identity)
    cur, scaled = narrow, []
    while True:  # up: to the convolution producing the narrow input
        mod = _mod(mods, cur)
        if isinstance(mod, nn.BatchNorm2d):
            scaled.append(mod)
            break
        if isinstance(mod, nn.Conv2d):
            scaled.append(mod)
            break
        if isinstance(mod, homogeneous) or _is_relu(mods, cur):
            cur = cur.args[0]
            continue
        raise ValueError("the narrow input %s is not produced by a convolution" % narrow.name)
    consumers, todo = [], list(join.users)
    while todo:  # down: the convolutions reading the joined channels
        u = todo.pop()
        mod = _mod(mods, u)
        if isinstance(mod, nn.Conv2d) and mod.groups == 1:
            consumers.append(mod)
        elif isinstance(mod, homogeneous) or _is_relu(mods, u):
            todo.extend(u.users)
        else:
            raise ValueError("the join %s feeds %s, which cannot absorb the factor" % (join.name, u.name))
    with torch.no_grad():
        for mod in scaled:
            mod.weight.mul_(f)
            if mod.bias is not None:
                mod.bias.mul_(f)
        for mod in consumers:
            mod.weight[:, offset:offset + width] /= f
    m.eval()
    return m, "%s x%g, %d consumer(s) / %g" % (narrow.name, f, len(consumers), f)


def tight_mp_config(model):
    """Mixed precision that leaves the classifier at 2 bits: every other Conv2d / Linear pinned at 8 bits
    (``BitWidthConfig``) and a weights-memory target with exactly room for the classifier at 2 bits.  Without the
    pins MCT meets the target by lowering a convolution instead (the classifier is a tiny share of the weights).
    None when the last weighted layer is a convolution (the pins are by type)."""
    import model_compression_toolkit as mct
    import torch.nn as nn

    layers = [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    head_name, head = layers[-1]
    if not isinstance(head, nn.Linear):
        return None
    ne = mct.core.network_editor
    bw = mct.core.BitWidthConfig()
    bw.set_manual_weights_bit_width(ne.NodeTypeFilter(nn.Conv2d), 8, "weight")
    for n, m in layers[:-1]:
        if isinstance(m, nn.Linear):
            bw.set_manual_weights_bit_width(ne.NodeNameFilter(n.replace(".", "_")), 8, "weight")
    core = mct.core.CoreConfig(mixed_precision_config=mct.core.MixedPrecisionQuantizationConfig(),
                               bit_width_config=bw)
    memory = sum(m.weight.numel() * (2 if m is head else 8) / 8.0 for _, m in layers)
    return core, mct.core.ResourceUtilization(weights_memory=memory)


def has_negative_activations(model) -> bool:
    return any(type(m).__name__ in NEGATIVE_ACTIVATIONS for m in model.modules())


def torchvision_cases(arch: str, steps: Optional[int], cache_dir: Optional[str],
                      scenarios: Sequence[str] = SCENARIOS) -> List[Tuple[str, Any, Any, Any, Any, Dict[str, Any]]]:
    """(scenario, float model, core_config, resource target, data, notes) for one architecture."""
    import copy

    import model_compression_toolkit as mct

    from demo import zoo

    data = zoo.Digits64()
    base = trained(arch, data, cache_dir, steps)
    acc = data.accuracy(base)
    cases = []
    if "outlier" in scenarios:
        out = copy.deepcopy(base)
        where = inject_outlier_channel(out, images=data.x_train[:64])
        # a single channel among C reaches a z-score of about sqrt(C): narrower than 64 channels, no verdict fires
        # (MobileNetV3-small's only such bottleneck has 16) and the case would repeat the natural one
        if where is not None and where["channels"] >= 64:
            cases.append(("outlier", out, None, None, data, dict(where or {}, float_accuracy=data.accuracy(out))))
    if "tight_mp" in scenarios and arch in MP_ARCHS:
        got = tight_mp_config(base)
        if got is not None:
            cases.append(("tight_mp", base, got[0], got[1], data, {"weights_memory": got[1].weights_memory}))
    if "concat" in scenarios:
        cat = copy.deepcopy(base)
        where = inject_unbalanced_concat(cat)
        if where is not None:
            cases.append(("concat", cat, None, None, data, dict(where, float_accuracy=data.accuracy(cat))))
    if "silu_off" in scenarios and has_negative_activations(base):
        off = mct.core.CoreConfig(mct.core.QuantizationConfig(shift_negative_activation_correction=False))
        cases.append(("silu_off", base, off, None, data, {}))
    if "natural" in scenarios:
        cases.append(("natural", base, None, None, data, {"float_accuracy": acc}))
    return cases


DEMO_CASES = ("outlier", "mixed_precision", "shift_negative", "unbalanced_concat")


def demo_cases(names: Sequence[str] = DEMO_CASES) -> List[Tuple[str, Any, Any, Any, Any, Dict[str, Any]]]:
    from demo import models as M
    from demo.study import study_args

    data = M.DigitsData()
    out = []
    for name in names:
        model, core, ru, _scale = study_args(name, data)
        out.append((name, model, core, ru, data, {}))
    return out


# ------------------------------------------------------------------------------------------------
# Measuring
# ------------------------------------------------------------------------------------------------
def _node_of(rep, name: str):
    for key in (name, name + "_layer"):
        if key in rep.node_by_name:
            return rep.node_by_name[key]
    from tb_xquant_plugin.readers.graphs import layer_name_of

    return next((n for n in rep.nodes if layer_name_of(n) == name), None)


def consumers(rep, name: str, limit: int = 12) -> List[str]:
    """The compare points fed by ``name``'s output (through nodes XQuant does not measure): where the error of
    its activation quantizer shows, since XQuant measures a layer before its own activation quantizer."""
    from tb_xquant_plugin.model.walk import consumers_of, nearest_compare_points

    node = _node_of(rep, name)
    return nearest_compare_points(rep, node, consumers_of(rep), limit) if node is not None else []


def target_points(rep, judge: str, layers: List[str]) -> List[str]:
    """The compare points a verdict's countermeasure should improve.

    outlier_removal: the layer and its consumers (a z_threshold moves the layer's activation quantizer, whose
    error XQuant measures at the consumers, and the quantizers feeding the layer, measured at the layer);
    unbalanced_concatenation: the consumers of the join (scaling a branch changes the scale, hence the absolute
    MSE, of the layers before the join; after it the factor is undone); the others: what
    ``model.walk.compare_points`` gives (the layer, or the compare points around an activation)."""
    from tb_xquant_plugin.model.walk import compare_points

    pts: List[str] = []
    if judge == "outlier_removal":
        for name in layers[:1]:
            pts += compare_points(rep, name) + consumers(rep, name)
    elif judge == "unbalanced_concatenation":
        pts = consumers(rep, layers[0])
    else:
        for name in layers[:20]:
            pts += compare_points(rep, name)
    return list(dict.fromkeys(pts))


def mse_at(rep, points: List[str]) -> Dict[str, Optional[float]]:
    """Each compare point's MSE (validation data, else representative; None where not a finite number)."""
    return {p: (rep.layer_by_name[p].mse() if p in rep.layer_by_name else None) for p in points}


def improved(before: Dict[str, Optional[float]], after: Dict[str, Optional[float]]) -> Optional[bool]:
    """Better by 5 % at one point at least, worse by 5 % at none (None: nothing to compare)."""
    pairs = [(b, after.get(k)) for k, b in before.items() if b is not None and after.get(k) is not None]
    if not pairs:
        return None
    return any(a < 0.95 * b for b, a in pairs) and not any(a > 1.05 * b for b, a in pairs)


def target_improved(base_rep, att_rep, judge: str, layers: List[str]) -> bool:
    """Whether an attempt lowered the error of the layers a verdict is about (:func:`target_points`)."""
    pts = target_points(base_rep, judge, list(layers))
    return bool(improved(mse_at(base_rep, pts), mse_at(att_rep, pts)))


def outcome(base: Dict[str, Any], att: Dict[str, Any], target: Optional[bool],
            max_drop: float = 0.5) -> Dict[str, Any]:
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
        "target_improved": bool(target),
        "model_improved": bool(ok and (fewer or (sq_ratio is not None and sq_ratio > 1.05)
                                       or (d_acc is not None and d_acc > max_drop))),
        "accuracy_lowered": bool(d_acc is not None and d_acc < -max_drop),
        "changed_nothing": bool(ok and att["degraded_count"] == base["degraded_count"]
                                and (sq_ratio is None or 0.95 <= sq_ratio <= 1.05)
                                and (d_acc is None or abs(d_acc) <= max_drop)),
        "d_accuracy_points": d_acc, "sqnr_ratio": sq_ratio,
        "degraded": (base["degraded_count"], att.get("degraded_count")),
        "accuracy": (base.get("accuracy"), att.get("accuracy")),
    }


KIND_NOT_THE_CAUSE, KIND_ACTIONABLE, KIND_MCT = "not the cause", "actionable", "MCT's"
KIND_TO_TEST = "to test"  # proposed, but the verdict says its replay cannot tell (shift negative's clip trade)


def source_kind(src: Dict[str, Any]) -> str:
    if src["source"] != "computed":
        return KIND_MCT
    if src.get("actionable") is False:
        return KIND_NOT_THE_CAUSE
    return KIND_TO_TEST if src.get("uncertain") else KIND_ACTIONABLE


def tally(rows: List[Dict[str, Any]]) -> Dict[Tuple[str, str], Dict[str, int]]:
    """(judge, kind) -> counts, kind "actionable", "not the cause" (ours) or "MCT's"."""
    out: Dict[Tuple[str, str], Dict[str, int]] = {}
    for r in rows:
        for src in r["sources"]:
            t = out.setdefault((r["judge"], source_kind(src)), {
                "verdicts": 0, "tried": 0, "target_improved": 0, "model_improved": 0, "accuracy_lowered": 0,
                "changed_nothing": 0, "improved_nothing": 0})
            t["verdicts"] += 1
            o = r["outcome"]
            if o is None or not o["ok"]:
                continue
            t["tried"] += 1
            target = bool(src.get("target_improved", o["target_improved"]))
            t["target_improved"] += int(target)
            for k in ("model_improved", "accuracy_lowered", "changed_nothing"):
                t[k] += int(o[k])
            # a "not the cause" claim is refuted by a fix that helps, not by one that makes things worse
            t["improved_nothing"] += int(not target and not o["model_improved"])
    return out


def table(counts: Dict[Tuple[str, str], Dict[str, int]]) -> str:
    lines = ["| judge (source) | verdicts | tried | targeted layers better | model or accuracy better | accuracy "
             "-0.5 pt or worse | changed nothing | improved nothing |", "|---|---|---|---|---|---|---|---|"]
    for (judge, kind), t in sorted(counts.items()):
        lines.append("| %s (%s) | %d | %d | %d | %d | %d | %d | %d |" % (
            judge, kind, t["verdicts"], t["tried"], t["target_improved"], t["model_improved"], t["accuracy_lowered"],
            t["changed_nothing"], t.get("improved_nothing", 0)))
    return "\n".join(lines)


def targets(counts: Dict[Tuple[str, str], Dict[str, int]], rows: List[Dict[str, Any]]) -> List[str]:
    """PASS / MISS for the issue's three targets (on our verdicts)."""
    act = [c for (j, k), c in counts.items() if k == KIND_ACTIONABLE]
    tried = sum(c["tried"] for c in act)
    better = sum(c["target_improved"] for c in act)
    ours = [r for r in rows if r["outcome"] and r["outcome"]["ok"] and
            any(source_kind(s) == KIND_ACTIONABLE for s in r["sources"])]
    worst = min((r["outcome"]["d_accuracy_points"] for r in ours if r["outcome"]["d_accuracy_points"] is not None),
                default=None)
    ntc = [c for (j, k), c in counts.items() if k == KIND_NOT_THE_CAUSE]
    ntc_tried = sum(c["tried"] for c in ntc)
    ntc_nothing = sum(c["changed_nothing"] for c in ntc)
    ntc_no_gain = sum(c.get("improved_nothing", 0) for c in ntc)
    out = []
    if tried:
        out.append("%s  %d of %d countermeasures of our actionable verdicts improved the targeted layers (%.0f %%; "
                   "target >= 90 %%)" % ("PASS" if better >= 0.9 * tried else "MISS", better, tried,
                                         100.0 * better / tried))
    if worst is not None:
        out.append("%s  largest accuracy drop of an actionable verdict's fix: %+.2f points (target: none over 0.5)" % (
            "PASS" if worst >= -0.5 else "MISS", worst))
    unsure = [c for (j, k), c in counts.items() if k == KIND_TO_TEST]
    if sum(c["tried"] for c in unsure):
        out.append("info  %d of %d countermeasures our verdicts marked 'to test' (the replay cannot tell) improved the "
                   "targeted layers" % (sum(c["target_improved"] for c in unsure), sum(c["tried"] for c in unsure)))
    if ntc_tried:
        out.append("%s  %d of %d 'not the cause' countermeasures changed nothing measurable" % (
            "PASS" if ntc_nothing == ntc_tried else "MISS", ntc_nothing, ntc_tried))
        out.append("%s  %d of %d 'not the cause' countermeasures improved neither the targeted layers nor the model "
                   "(the claim stands unless the fix helps)" % ("PASS" if ntc_no_gain == ntc_tried else "MISS",
                                                                ntc_no_gain, ntc_tried))
    return out


def _mct_equivalent(v, attempts: List[Dict[str, Any]]) -> Optional[str]:
    """The attempt that applies what one of MCT's own verdicts proposes, when a computed verdict proposed the same:
    shift negative -> the correction on; mixed precision -> the last layer pinned wider (MCT's outlier z_threshold
    is tried on its own: mct_study._proposals)."""
    for a in attempts:
        cm = a.get("countermeasure") or {}
        if v.judge == "shift_negative_activation" and (cm.get("fields") or {}).get(
                "shift_negative_activation_correction") is True:
            return a["id"]
        if v.judge == "mixed_precision_with_model_output_loss_objective" and cm.get("kind") == "bit_width" and \
                cm.get("layer") in v.layers:
            return a["id"]
    return None


def run_case(label: str, model, core, ru, data, out_root: str, max_attempts: int,
             notes: Optional[Dict[str, Any]] = None, judges: Optional[List[str]] = None) -> List[Dict[str, Any]]:
    from model_compression_toolkit.xquant import XQuantConfig

    from tb_xquant_plugin import producers
    from tb_xquant_plugin.judges.run import analyse
    from tb_xquant_plugin.mct_study import try_countermeasures

    folder = os.path.join(out_root, label)
    # fewer batches on the torchvision models (2 of 32 images each): XQuant's histograms and per-layer metrics are
    # most of an attempt's time; the accuracy is still measured on the whole validation split
    small = hasattr(data, "batches")
    repr_gen = data.representative(REPR_BATCHES) if small else data.representative()
    val_gen = data.validation(VAL_BATCHES) if small else data.validation()

    def study(m, sub: str, attempts: int, core_=core, ru_=ru):
        d = os.path.join(folder, sub) if sub else folder
        return d, try_countermeasures(m, repr_gen, val_gen, XQuantConfig(report_dir=d),
                                      out_dir=d, evaluate=data.accuracy, core_config=core_,
                                      target_resource_utilization=ru_, max_attempts=attempts, proposals="all",
                                      general=False, judges=judges, model_name=label, progress=None)

    _, s = study(model, "", max_attempts)
    reports: Dict[str, Any] = {}

    def rep_of(d: str, aid: str):
        key = os.path.join(d, aid)
        if key not in reports:
            reports[key] = producers.build_report_dir(os.path.join(d, aid, "xquant_report"), d)
        return reports[key]

    base = next(a for a in s["attempts"] if a["id"] == "baseline")
    base_rep = rep_of(folder, "baseline")
    base_analysis = analyse(base_rep)
    by_id = {a["id"]: a for a in s["attempts"]}
    rows: List[Dict[str, Any]] = []

    def judge_source(src, judge, att):
        """Each verdict behind a tried countermeasure is judged at its own layers."""
        if src.get("layers"):
            src["target_improved"] = target_improved(base_rep, rep_of(att["_dir"], att["id"]), judge, src["layers"])

    def add_row(att, judge, layers, sources, label_, extra=None):
        o, tgt = None, None
        if att is not None and att.get("status") == "ok":
            pts = target_points(base_rep, judge, layers)
            before = mse_at(base_rep, pts)
            after = mse_at(rep_of(att["_dir"], att["id"]), pts)
            tgt = {"points": pts, "before": before, "after": after, "improved": improved(before, after),
                   "study_rule": att.get("target_improved")}
            o = outcome(base, att, tgt["improved"])
            for src in sources:
                judge_source(src, judge, att)
        rows.append(dict({"case": label, "attempt": att and att["id"], "label": label_, "judge": judge,
                          "layers": layers[:5], "sources": sources, "outcome": o, "target": tgt,
                          "error": att and att.get("error")}, **(extra or {})))
        return rows[-1]

    tried_rows: Dict[str, Dict[str, Any]] = {}
    tried_attempts: Dict[str, Dict[str, Any]] = {}  # the attempt each of those rows measured
    for a in s["attempts"]:
        v = a.get("verdict")
        if not v or a.get("source") != "verdict":
            continue
        a["_dir"] = folder
        note, aid = None, a["id"]
        cm = a.get("countermeasure") or {}
        if a.get("status") != "ok" and cm.get("kind") == "bit_width" and "at least one array" in (a.get("error") or ""):
            # MCT 2.6.1's mixed-precision search raises when no layer is left configurable (our tight_mp pins every
            # other layer): the same pin applied without the search, the memory raised as the countermeasure says
            a, note = _pinned_without_search(study, model, core, cm, a), "applied without MCT's search (%s)" % (
                a.get("error") or "")[:80]
        tried_rows[aid] = add_row(a, v["judge"], v["layers"], list(v.get("sources") or []), a["label"],
                                  {"note": note} if note else None)
        tried_attempts[aid] = a
    for p in s.get("proposed", [])[len(tried_rows):]:  # proposed but not tried (budget)
        add_row(None, p["verdict"]["judge"], p["verdict"]["layers"], p["verdict"].get("sources", []), p["label"],
                {"not_tried": "max_attempts" if not judges or p["verdict"]["judge"] in judges else "--judges"})
    # MCT's own verdicts whose countermeasure a computed verdict also proposed: counted on the same attempt
    for v in base_analysis.verdicts:
        if v.source == "computed" or v.judge in ("outlier_removal", "unbalanced_concatenation"):
            continue
        src = {"source": v.source, "actionable": None, "layers": list(v.layers)[:5]}
        aid = _mct_equivalent(v, s["attempts"])
        if aid is not None and aid in tried_rows:
            tried_rows[aid]["sources"].append(src)
            if tried_attempts[aid].get("status") == "ok":
                judge_source(src, v.judge, tried_attempts[aid])
        else:
            add_row(None, v.judge, list(v.layers), [src], "MCT: %s" % v.judge,
                    {"not_tried": "its countermeasure is in force or none was proposed by a computed verdict"})
    # unbalanced concatenations: a model change, applied here (mct_study does not change models)
    sample = next(iter(repr_gen()))[0][:2]
    done: Dict[str, Dict[str, Any]] = {}
    for v in base_analysis.verdicts:
        if v.judge != "unbalanced_concatenation":
            continue
        src = {"source": v.source, "actionable": None if v.source != "computed" else True, "layers": list(v.layers)[:5]}
        cm = v.countermeasure
        if v.source != "computed" or not cm:
            add_row(None, v.judge, list(v.layers), [src], "MCT: %s" % v.judge,
                    {"not_tried": "names a layer (%s), not a join and a branch to scale" % ", ".join(v.layers[:2])})
            continue
        key = "%s/%s/%g" % (cm["join"], cm["narrow_input"], cm["factor"])
        if key in done:
            done[key]["sources"].append(src)
            continue
        try:
            fixed, how = fold_scale_branch(model, cm, sample)
        except Exception as e:  # noqa: BLE001 - a join this bench cannot rewrite: reported as not tried
            done[key] = add_row(None, v.judge, list(v.layers), [src], C.describe(cm), {"not_tried": str(e)[:200]})
            continue
        sub = "scale_%s" % len(done)
        d, s2 = study(fixed, sub, 0)
        att = dict(s2["attempts"][0], id="baseline", _dir=d)
        done[key] = add_row(att, v.judge, list(v.layers), [src], C.describe(cm) + " (%s)" % how)
    for r in rows:
        r["notes"] = notes or {}
    return rows


def _pinned_without_search(study, model, core, cm: Dict[str, Any], failed: Dict[str, Any]) -> Dict[str, Any]:
    import copy

    import model_compression_toolkit as mct

    pinned = mct.core.CoreConfig(bit_width_config=copy.deepcopy(core.bit_width_config))
    pinned.bit_width_config.set_manual_weights_bit_width(
        mct.core.network_editor.NodeNameFilter(cm["layer"]), cm["bits"], cm.get("attr") or "weight")
    d, s2 = study(model, "pinned_" + failed["id"], 0, pinned, None)
    return dict(s2["attempts"][0], id="baseline", _dir=d, label=failed["label"], verdict=failed.get("verdict"))


def rejudge_sources(rows: List[Dict[str, Any]], out_dir: str) -> None:
    """Per-verdict targets for rows saved without them (runs before ``judge_source``): each source of a tried
    study attempt judged at its own layers from the reports on disk."""
    from tb_xquant_plugin import producers

    cache: Dict[str, Any] = {}

    def rep(d, aid):
        key = os.path.join(d, aid)
        if key not in cache:
            cache[key] = producers.build_report_dir(os.path.join(key, "xquant_report"), d)
        return cache[key]

    for r in rows:
        if not (r.get("outcome") and r["outcome"]["ok"] and r.get("attempt") and r["attempt"] != "baseline"):
            continue
        d = os.path.join(out_dir, r["case"])
        if not os.path.isdir(os.path.join(d, r["attempt"])):
            continue
        for src in r["sources"]:
            if "target_improved" in src or not src.get("layers"):
                continue
            src["target_improved"] = target_improved(rep(d, "baseline"), rep(d, r["attempt"]), r["judge"], src["layers"])


def reclassify(rows: List[Dict[str, Any]], out_dir: str) -> int:
    """Our verdicts' actionable / "not the cause" flags as the judges give them now: each case's baseline report on
    disk analysed again, and each computed source given the flag of today's verdicts on its layers (a judge change
    is measured on saved runs without quantizing again).  Returns how many flags changed."""
    from tb_xquant_plugin import producers
    from tb_xquant_plugin.judges.run import analyse

    analyses: Dict[str, Any] = {}
    changed = 0
    for r in rows:
        case = r["case"]
        if case not in analyses:
            base = os.path.join(out_dir, case, "baseline")
            rd = os.path.join(base, "xquant_report")
            analyses[case] = analyse(producers.build_report_dir(rd, base)) if os.path.isdir(rd) else None
        a = analyses[case]
        if a is None:
            continue
        for src in r["sources"]:
            if src.get("source") != "computed" or not src.get("layers"):
                continue
            now = [v for v in a.verdicts
                   if v.judge == r["judge"] and v.source == "computed" and set(v.layers) & set(src["layers"])]
            if not now:
                continue
            flag = any(v.numbers.get("actionable", True) is not False for v in now)
            unsure = flag and all(v.numbers.get("uncertain") for v in now if v.numbers.get("actionable", True))
            if flag != (src.get("actionable") is not False) or unsure != bool(src.get("uncertain")):
                changed += 1
            src["actionable"], src["uncertain"] = flag, unsure
    return changed


def merged_rows(parser, paths: Sequence[str], drop: Sequence[str], rejudge: bool) -> List[Dict[str, Any]]:
    """The rows of saved runs, merged: a case in a later file replaces the same case of an earlier one, and a run
    limited to some judges (``--judges``) replaces only those judges' rows of its cases."""
    rows: List[Dict[str, Any]] = []
    for path in paths:
        with open(path, encoding="utf-8") as f:
            saved = json.load(f)
        got = saved["rows"]
        rejudge_sources(got, os.path.dirname(os.path.abspath(path)))
        if rejudge:
            n = reclassify(got, os.path.dirname(os.path.abspath(path)))
            print("%s: %d verdict flags changed with today's judges" % (path, n), file=sys.stderr)
        only = parser.parse_args(saved.get("argv") or []).judges if saved.get("argv") else None
        if only:
            got = [r for r in got if r["judge"] in only]
        cases = {r["case"] for r in got}
        rows = [r for r in rows if r["case"] not in cases or (only and r["judge"] not in only)] + [
            r for r in got if r["case"] not in drop]
    return rows


def misses(rows: List[Dict[str, Any]]) -> str:
    """One line per verdict of ours that the bench counts against a target: an actionable or 'to test' fix that
    did not improve its targeted layers, a 'not the cause' fix that improved them or the model."""
    out = ["| case | judge | kind | first layer | targeted layers better | output SQNR | degraded | accuracy |",
           "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        o = r.get("outcome")
        if not o or not o["ok"]:
            continue
        for src in r["sources"]:
            kind = source_kind(src)
            if kind == KIND_MCT:
                continue
            target = bool(src.get("target_improved", o["target_improved"]))
            bad = (not target) if kind != KIND_NOT_THE_CAUSE else (target or o["model_improved"])
            if bad:
                out.append("| %s | %s | %s | %s | %s | %s | %s -> %s | %s |" % (
                    r["case"], r["judge"], kind, (src.get("layers") or ["-"])[0], "yes" if target else "no",
                    "-" if o["sqnr_ratio"] is None else "x%.2f" % o["sqnr_ratio"], o["degraded"][0],
                    o["degraded"][1], "-" if o["d_accuracy_points"] is None else "%+.1f" % o["d_accuracy_points"]))
    return "\n".join(out)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=False)
    p.add_argument("--arch", nargs="*", default=list(ARCHS))
    p.add_argument("--scenarios", nargs="*", default=list(SCENARIOS), choices=SCENARIOS)
    p.add_argument("--steps", type=int, default=None, help="training steps per torchvision model (default: "
                   "per architecture, %d or as TRAINING says)" % DEFAULT_TRAINING[0])
    p.add_argument("--demo", action="store_true", help="the demo's small models instead of torchvision ones")
    p.add_argument("--max-attempts", type=int, default=4)
    p.add_argument("--threads", type=int, default=1, help="torch threads (1: on a shared machine, run two benches "
                   "on different --arch lists instead, then --from-json A/advice.json B/advice.json)")
    p.add_argument("--judges", nargs="*", default=None, metavar="JUDGE", help="try only these judges' verdicts "
                   "(e.g. shift_negative_activation); with --from-json such a run replaces only those judges' rows")
    p.add_argument("--drop", nargs="*", default=[], metavar="CASE", help="with --from-json: cases left out")
    p.add_argument("--rejudge", action="store_true", help="with --from-json: our verdicts' actionable / 'not the "
                   "cause' flags from today's judges, the saved baselines analysed again (reclassify)")
    p.add_argument("--misses", action="store_true", help="with --from-json: also list each verdict of ours counted "
                   "against a target")
    p.add_argument("--from-json", nargs="*", metavar="ADVICE_JSON",
                   help="print the table of saved runs (several: merged, a case in a later file replacing the same case of an earlier one) instead of running")
    args = p.parse_args(argv)
    if args.from_json:
        rows = merged_rows(p, args.from_json, args.drop, args.rejudge)
        counts = tally(rows)
        print(table(counts))
        print()
        for line in targets(counts, rows):
            print(line)
        if args.misses:
            print()
            print(misses(rows))
        return 0
    if not args.out:
        p.error("--out is required to run")
    import logging
    import warnings

    import torch

    warnings.filterwarnings("ignore")
    logging.getLogger("Model Compression Toolkit").setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    os.makedirs(args.out, exist_ok=True)
    cache = os.path.join(args.out, "weights")
    rows: List[Dict[str, Any]] = []
    t0 = time.time()
    groups = [("demo", demo_cases)] if args.demo else [
        (a, lambda a=a: torchvision_cases(a, args.steps, cache, args.scenarios)) for a in args.arch]
    json_path = os.path.join(args.out, "advice.json")

    def save():
        counts = tally(rows)
        with open(json_path, "w", encoding="utf-8") as f:
            json.dump({"rows": rows, "counts": {" / ".join(k): v for k, v in counts.items()},
                       "elapsed_s": round(time.time() - t0, 1), "argv": argv or sys.argv[1:]}, f, indent=1,
                      default=str)
        return counts

    for name, make in groups:
        t1 = time.time()
        try:
            cases = make()
        except Exception as e:  # noqa: BLE001 - an architecture that cannot be built or trained is reported
            print("%s: skipped (%s: %s)" % (name, type(e).__name__, e), flush=True)
            continue
        print("%-28s trained / loaded in %.0fs" % (name, time.time() - t1), flush=True)
        for scenario, model, core, ru, data, notes in cases:
            t1 = time.time()
            label = "%s_%s" % (name, scenario)
            try:
                got = run_case(label, model, core, ru, data, args.out, args.max_attempts, notes, args.judges)
            except Exception as e:  # noqa: BLE001 - e.g. the baseline quantization fails: reported, bench goes on
                print("%s: failed (%s: %s)" % (label, type(e).__name__, str(e)[:200]), flush=True)
                continue
            rows.extend(got)
            save()
            acc = next((r["outcome"]["accuracy"][0] for r in got if r["outcome"]), None)
            print("%-28s %3d verdict rows, %d tried  baseline acc %s  %6.1fs" % (
                label, len(got), sum(1 for r in got if r["outcome"]), "-" if acc is None else "%.3f" % acc,
                time.time() - t1), flush=True)
    counts = save()
    print()
    print(table(counts))
    print()
    for line in targets(counts, rows):
        print(line)
    print("\n%d rows in %.0f s; per-attempt rows in %s" % (len(rows), time.time() - t0, json_path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
