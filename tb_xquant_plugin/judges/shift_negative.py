"""Shift negative activation: activation layers whose outputs go negative, and what is left to do about each.

MCT 2.6.1 lists every PReLU / ELU / Hardswish / SiLU / GELU node (class or functional form; in Keras models
``Activation('swish')`` / ``'gelu'`` layers and ``PReLU`` / ``ELU`` layers, see ``_activation``).  We do the same
from the graph's op names and add any other activation whose logged float histogram reaches below zero (e.g.
LeakyReLU, Mish), with the minimum value as evidence.

The advice reads what the run did instead of repeating the defaults.  MCT's correction
(``core/common/substitutions/shift_negative_activation.py``) shifts an activation only when

- its output goes to exactly one ``Conv2d`` / ``Linear``, possibly through ``reshape``, ``avg_pool2d``,
  ``Dropout`` or one ``ZeroPad2d`` (it corrects that layer's bias), and
- ``|min| / threshold <= shift_negative_ratio`` (0.05 by default), with the minimum of the collected statistics
  and the activation's threshold;

and when it does, the stage graphs hold a ``<activation>_post_add`` node after it (and the activation itself
moves to 16 bits).  So per activation:

- correction off -> turn it on, at the run's ratio (an activation that needs more gets it raised on it alone);
- on and shifted -> nothing left (the parameter search was measured to help nowhere);
- on, not shifted, ratio too small -> raise the ratio on this activation alone (a network-editor rule), unless
  the activation after the padded convolution that follows it is shifted too: MCT 2.6.1 then stops with
  ``ValueError: Fused operation ... is not a valid linear chain`` when that one is a GELU (reproduced on the demo's
  NegActNet: ``tests/test_verdicts_right.py``; with the correction off, the same check at the model-wide ratio);
- not correctable by MCT (structure, or an op MCT does not shift) -> nothing left in MCT's settings.

Before turning the correction on or raising a ratio, the shift is replayed on the activation's histogram
(:mod:`judges.shift_replay`): a raise that would remove under 5 % of the next layer's input error, or any shift
that adds noise everywhere, is "not the cause" (with ``test_countermeasure``, the activation shifted alone); a
shift whose clip outweighs its finer step is proposed as ``uncertain``.  With the correction off, a small share
still proposes the switch: it shifts every covered activation at once, and their small gains add up."""
from __future__ import annotations

import collections
import math
import re
from typing import Any, Dict, List, Optional, Tuple

import numpy as np

from tb_xquant_plugin import manual
from tb_xquant_plugin.judges import shift_replay as SR
from tb_xquant_plugin.judges.base import CAUSE, Judge, JudgeContext
from tb_xquant_plugin.judges.facts import facts_of
from tb_xquant_plugin.judges.snippets import ASYMMETRIC_ACTIVATIONS, config_countermeasure, render
from tb_xquant_plugin.model import countermeasure as C
from tb_xquant_plugin.model import manifest as mf
from tb_xquant_plugin.model.report import GRAPH, MCT_PYTORCH, ONNX_TOOLCHAINS, Report
from tb_xquant_plugin.model.verdict import COMPUTED, SHIFT_NEGATIVE_ACTIVATION, Verdict
from tb_xquant_plugin.readers.graphs import GraphNode

MCT_NEGATIVE_ACTIVATIONS = {"prelu", "elu", "hardswish", "silu", "gelu"}
OTHER_ACTIVATIONS = {"leakyrelu", "leaky_relu", "selu", "celu", "mish", "tanh", "softsign", "hardtanh", "rrelu"}
# MCT 2.6.1's pytorch shift_negative_activation.py: the layers whose bias takes the correction, the nodes it
# looks through on the way there, and the padding node it can move.
LINEAR_OPS = {"Conv2d", "Linear"}
BYPASS_OPS = {"reshape", "avg_pool2d", "Dropout"}
PAD_OPS = {"ZeroPad2d"}
DEFAULT_RATIO = 0.05  # QuantizationConfig.shift_negative_ratio
# The activation after the padded convolution whose shift makes MCT 2.6.1 fail (crash_pair).
FAILING_SECOND = {"gelu"}
# The largest ratio proposed: beyond it the negative part is a large share of the threshold, and the shifted
# (unsigned) range would have to cover it (the manual's advice: 0.1 to 0.5).
MAX_RATIO = 0.5
SHIFTED_BITS = 16  # SHIFT_NEGATIVE_NON_LINEAR_NUM_BITS: a shifted activation is quantized at 16 bits
POST_ADD = "_post_add"  # MCT names the inserted shift <activation>_post_add

# Advice kinds (numbers["advice"]).
TURN_ON = "turn_on"
RAISE_RATIO = "raise_ratio"
ASYMMETRIC_RANGE = "asymmetric_range"  # QDQ ONNX models: give the output an asymmetric range
# QDQ ONNX models: the resolution a range loses below the lowest output before the range is worth changing.
LOST_BITS_WORTH_FIXING = 0.5
NOTHING_LEFT = "nothing_left"
NOT_THE_CAUSE = "not_the_cause"  # MCT could shift it, but the replay shows the shift would not help its next layer


def _norm(op: str) -> str:
    return (op or "").lower().lstrip("_").replace("torch.nn.functional.", "")


# Keras spellings (MCT for Keras): an ``Activation`` layer names its function in its ``activation`` attribute (MCT
# splits ``Conv2D(activation=...)`` into a ``<name>_post_activation`` Activation layer too), and a ``ReLU`` with a
# negative slope is a leaky ReLU.
KERAS_NAMES = {"swish": "silu", "hard_swish": "hardswish", "hard_silu": "hardswish", "leaky_relu": "leakyrelu"}


def _activation(n: GraphNode) -> str:
    """The node's activation function in the names of the sets above (Keras forms mapped)."""
    op = _norm(n.op)
    fn = n.attrs.get("activation")
    if isinstance(fn, str) and fn and op not in MCT_NEGATIVE_ACTIVATIONS:
        op = _norm(fn)
    elif op == "relu":
        try:
            op = "leakyrelu" if float(n.attrs.get("negative_slope") or 0) > 0 else op
        except (TypeError, ValueError):
            pass
    return KERAS_NAMES.get(op, op)


def _label(n: GraphNode) -> str:
    """The op as the verdict shows it: ``Activation(swish)`` for a Keras Activation layer."""
    fn = n.attrs.get("activation")
    return "%s(%s)" % (n.op, fn) if isinstance(fn, str) and fn else n.op


def _pads(node: GraphNode) -> Optional[bool]:
    """Whether a convolution pads its input (its ``padding`` attribute), None when the graph does not say."""
    p = node.attrs.get("padding")
    if p is None:
        return None
    text = str(p).strip().lower()
    if text in ("valid",):
        return False
    if text in ("same",):
        return True
    return any(int(d) != 0 for d in re.findall(r"\d+", text)) if re.search(r"\d", text) else None


def _consumers(report: Report) -> Dict[str, List[GraphNode]]:
    out: Dict[str, List[GraphNode]] = collections.defaultdict(list)
    for n in report.nodes:
        for i in n.inputs:
            out[i].append(n)
    return out


def correction_target(node: GraphNode, consumers: Dict[str, List[GraphNode]],
                      shifted: bool = False) -> Tuple[Optional[GraphNode], str]:
    """The Conv2d / Linear whose bias MCT would correct for this activation (MCT's ``get_next_nodes_to_correct``),
    or None and why not.  ``shifted``: MCT already shifted it, so the add (and pad) it inserted come first."""
    cur, pad = node, None
    inserted = 1 if shifted else 0  # the inserted add; a pad of the convolution may follow it
    for _ in range(16):
        nxt = consumers.get(cur.id, [])
        if len(nxt) != 1:
            return None, ("its output goes to %d layers" % len(nxt)) if nxt else "nothing consumes its output"
        n = nxt[0]
        if inserted and n.op in ("add", "__add__"):
            cur, inserted = n, 0
            continue
        if shifted and n.op in ("pad", "ZeroPad2d") and n.name.endswith("pre_pad") or (
                shifted and n.op == "pad"):
            cur = n
            continue
        if n.op in LINEAR_OPS:
            if pad is not None and _pads(n):
                return None, "a ZeroPad2d and the padding of %s are both between it and the layer to correct" % n.name
            return n, ""
        if n.op in BYPASS_OPS:
            cur = n
            continue
        if n.op in PAD_OPS and pad is None:
            cur, pad = n, n
            continue
        return None, "its output goes to %s (%s), not to a Conv2d / Linear whose bias could take the shift" % (
            n.name, n.op)
    return None, "no Conv2d / Linear within 16 nodes"


def _padded(node: GraphNode, target: GraphNode, consumers: Dict[str, List[GraphNode]]) -> bool:
    """Whether the corrected convolution pads its input: its own padding, or a pad node in front of it (where MCT
    moved that padding when it shifted the activation).  Unknown padding counts as padding."""
    if target.op != "Conv2d":
        return False
    if _pads(target) is not False:
        return True
    cur = node
    for _ in range(8):
        nxt = consumers.get(cur.id, [])
        if len(nxt) != 1 or nxt[0] is target:
            return False
        cur = nxt[0]
        if cur.op in ("pad", "ZeroPad2d"):
            return True
    return False


def _shift_inserted(node: GraphNode, qp: Any, consumers: Dict[str, List[GraphNode]], inserted: Dict[str, str]) -> bool:
    """Whether MCT inserted its shift after this activation: the add after it is one MCT inserted (the graph
    pairing says so, or it is named ``<activation>_post_add``), or the activation moved to MCT's 16 bits for a
    shifted activation and feeds an add."""
    for c in consumers.get(node.id, []):
        why = inserted.get(c.id) or c.attrs.get("inserted_by_mct") or ""
        if c.name.startswith(node.name + POST_ADD) or (isinstance(why, str) and "adds the shift" in why):
            return True
        if c.op in ("add", "__add__") and qp is not None and qp.activation_nbits == SHIFTED_BITS:
            return True
    return False


def _min_value(report: Report, name: str) -> Optional[float]:
    h = report.histogram(name)
    if h is None or not len(h):
        return None
    mins = np.asarray(h)[:, 0]
    mins = mins[np.isfinite(mins)]
    return float(mins.min()) if mins.size else None


def _needed_ratio(rate: float) -> float:
    """The smallest ratio with two decimals that lets the shift through (MCT compares ``rate <= ratio``)."""
    return math.ceil(rate * 100.0 - 1e-9) / 100.0


def _run_setting(report: Report, key: str) -> Optional[Any]:
    """A QuantizationConfig field of the run, when the manifest recorded it."""
    v = mf.quantization_config(report.manifest).get(key)
    return v if isinstance(v, (bool, int, float)) else None


def judge(report: Report) -> List[Verdict]:
    consumers = _consumers(report)
    shifted_names = {name[: -len(POST_ADD)] for name in list(report.quant) + list(report.node_by_name)
                     if name.endswith(POST_ADD)}
    inserted = getattr(report, "inserted_by_mct", None) or {}
    params_search = _run_setting(report, "shift_negative_params_search")
    pytorch = report.toolchain in (MCT_PYTORCH, "")
    rows: List[Dict[str, Any]] = []
    for n in report.nodes:
        op = _activation(n)
        known = op in MCT_NEGATIVE_ACTIVATIONS
        if not known and op not in OTHER_ACTIVATIONS:
            continue
        min_value = _min_value(report, n.name)
        if not known and (min_value is None or min_value >= 0):
            continue
        qp = report.quant.get(n.name)
        threshold = qp.activation_threshold if qp else None
        ratio = qp.shift_negative_ratio if qp and qp.shift_negative_ratio is not None else None
        shifted = n.name in shifted_names or _shift_inserted(n, qp, consumers, inserted)
        # the structure MCT needs is known for PyTorch graphs (op names of torch modules and functions)
        target, why_not = correction_target(n, consumers, shifted) if known and pytorch else (None, "")
        rate = abs(min_value) / threshold if min_value is not None and min_value < 0 and threshold else None
        rows.append({"node": n, "op": op, "known": known, "min_value": min_value, "qp": qp, "threshold": threshold,
                     "ratio": ratio, "rate": rate, "target": target, "why_not": why_not,
                     "shifted": shifted, "padded": _padded(n, target, consumers) if target is not None else None})
    if report.toolchain in ONNX_TOOLCHAINS:  # no shift-negative correction there: the range the quantizer chose
        return [_qdq_verdict(report, row) for row in rows]
    single = {nid: (c[0] if len(c) == 1 else None) for nid, c in consumers.items()}
    memo: Dict[Any, Any] = {}  # crash_pair's answers per ratio: the same for every row
    return [_verdict(report, row, rows, params_search, single, memo) for row in rows]


def crash_pair(rows: List[Dict[str, Any]], ratio: float, consumers_of: Dict[str, Optional[GraphNode]],
               memo: Optional[Dict[Any, Any]] = None, only: Optional[Dict[str, Any]] = None,
               others_at: Optional[float] = None) -> Optional[Tuple[Dict[str, Any], Dict[str, Any]]]:
    """Two activations a ``shift_negative_ratio`` of ``ratio`` would both shift where the first one's corrected
    convolution pads and feeds the second, a GELU whose corrected convolution pads too: MCT 2.6.1 inserts a pad
    into the fused [pad, conv, GELU] of the first, the GELU's shift then breaks that chain, and its graph check
    stops with "Fused operation ... is not a valid linear chain".  Measured on MCT 2.6.1 (SiLU or GELU first, with
    or without a BatchNorm): a GELU second fails; SiLU, Hardswish or PReLU second, or a 1x1 convolution on either
    side, quantize.  ``only``: the ratio raised on that activation alone (a network-editor rule); the others are
    shifted where MCT shifted them, or, with ``others_at``, wherever that ratio lets the shift through (the correction
    turned on at the run's ratio).  ``memo``: answers per ratio, shared by the rows of one report."""
    if memo is not None:
        key = ("crash", round(ratio, 12), id(only), others_at)
        if key not in memo:
            memo[key] = crash_pair(rows, ratio, consumers_of, only=only, others_at=others_at)
        return memo[key]

    def within(r: Dict[str, Any], at: float) -> bool:
        return r["rate"] is not None and r["rate"] <= at + 1e-12

    def shifted_at(r: Dict[str, Any]) -> bool:
        if not (r["known"] and r["target"] is not None):
            return False
        if r["shifted"] or ((only is None or r is only) and within(r, ratio)):
            return True
        return only is not None and others_at is not None and within(r, others_at)

    by_node = {r["node"].id: r for r in rows if shifted_at(r)}
    for a in by_node.values():
        conv = a["target"]
        b = by_node.get(getattr(consumers_of.get(conv.id), "id", None)) if a["padded"] else None
        if b is not None and b["padded"] and b["op"] in FAILING_SECOND:
            return a, b
    return None


def _verdict(report: Report, row: Dict[str, Any], rows: List[Dict[str, Any]], params_search: Optional[bool],
             consumers_of: Dict[str, Optional[GraphNode]], memo: Optional[Dict[Any, Any]] = None) -> Verdict:
    n, qp = row["node"], row["qp"]
    snc = qp.shift_negative_activation_correction if qp else None
    ratio_in_force = row["ratio"] if row["ratio"] is not None else DEFAULT_RATIO
    rate = row["rate"]
    rate_text = "%.3g" % rate if rate is not None else "unknown"  # no statistics for it (e.g. renamed since)
    needed = _needed_ratio(rate) if rate is not None else None
    numbers: Dict[str, Any] = {
        "layer": n.name, "activation": _label(n), "min_value": row["min_value"], "in_mct_list": row["known"],
        "shift_negative_activation_correction": snc, "shift_negative_ratio": row["ratio"],
        "threshold": row["threshold"], "negative_rate": rate, "needed_ratio": needed,
        "shifted": row["shifted"] if qp else None,
        "corrects": row["target"].name if row["target"] is not None else None,
        "shift_negative_params_search": params_search, "crash_pair": None,
    }
    cm = None
    tc = report.toolchain
    low = (" down to %.3g" % row["min_value"]) if row["min_value"] is not None else ""

    def crash_text(pair) -> str:
        return ("%s and %s would both be shifted, each before a padded convolution, and MCT 2.6.1 then stops with "
                "\"ValueError: Fused operation ... is not a valid linear chain\"" % (pair[0]["node"].name,
                                                                                    pair[1]["node"].name))

    if not row["known"]:
        advice = NOTHING_LEFT
        text = ("MCT 2.6.1's shift-negative correction does not cover %s: nothing left for this cause in MCT's "
                "settings" % n.op)
    elif row["shifted"]:
        # The correction is in force and did its work.  The one knob left, shift_negative_params_search, was measured
        # to help nowhere (bench/advice.py, MobileNetV3-small with MCT's defaults: none of the 7 shifted activations'
        # layers got 5 % better, and the model-output SQNR fell 8 %), so it is not proposed as a fix.
        advice = NOTHING_LEFT
        text = ("MCT shifted it (%s%s inserted)%s: nothing left for this cause%s"
                % (n.name, POST_ADD, " with shift_negative_params_search on" if params_search else "",
                   "" if params_search else " (shift_negative_params_search=True, the one knob left, made none of "
                                            "the shifted activations' layers better where it was measured)"))
    elif row["target"] is None and row["why_not"]:
        advice = NOTHING_LEFT
        text = "MCT cannot shift it: %s; nothing left for this cause in MCT's settings" % row["why_not"]
    elif needed is not None and needed > MAX_RATIO and needed > ratio_in_force + 1e-12:
        advice = NOTHING_LEFT
        text = ("%s; |min| / threshold = %.3g: the negative part is too large a share of its range for a shift "
                "(it would need shift_negative_ratio >= %g, over %g): nothing left for this cause in MCT's settings"
                % ("the correction was on but MCT did not shift it" if snc is True else
                   "shift-negative correction was off for it" if snc is False else
                   "its shift-negative setting is not in the logs", rate, needed, MAX_RATIO))
    elif snc is True and (rate is None or rate <= ratio_in_force + 1e-12):
        advice = NOTHING_LEFT
        text = ("the correction was on and |min| / threshold = %s is within shift_negative_ratio=%g, yet MCT did "
                "not shift it (its statistics did not go negative, or it is quantized uniformly): nothing left for "
                "this cause" % ("%.3g" % rate if rate is not None else "?", ratio_in_force))
    else:
        # Off (or unknown), or on with a ratio too small for it.  First what the shift would do to this activation,
        # replayed on its histogram (judges.shift_replay): a shift that would not help its next layer is not the fix.
        ev = SR.assess(report, n.name, row["min_value"], row["threshold"], qp.activation_nbits if qp else None)
        numbers["replay"] = {k: v for k, v in ev.items() if k != "text"}
        numbers["finding"] = ev["finding"]
        refuted = ev["finding"] in (SR.SMALL_SHARE, SR.CLIPS)
        if snc is True:
            # The correction was on with a ratio too small for it: the ratio raised on this activation alone (a
            # network-editor rule applied before MCT decides what to shift), so no other activation moves.
            ratio = needed
            pair = crash_pair(rows, ratio, consumers_of, memo, only=row)
            one = C.layer_activation([n.name], shift_negative_ratio=ratio)
            stated = ("the correction was on but MCT did not shift it: |min| / threshold = %.3g > shift_negative_ratio"
                      "=%g" % (rate, ratio_in_force))
            if pair is not None:
                numbers["crash_pair"] = [pair[0]["node"].name, pair[1]["node"].name]
                advice = NOTHING_LEFT
                text = ("%s, and with shift_negative_ratio=%g on it %s: nothing left for this cause in MCT 2.6.1's "
                        "settings" % (stated, ratio, crash_text(pair)))
            elif refuted:
                advice, numbers["test_countermeasure"] = NOT_THE_CAUSE, one
                text = "%s; %s: not the cause" % (stated, ev["text"])
            else:
                advice, cm = RAISE_RATIO, one
                text = ("%s; raise it to %g on this activation alone (the others keep their ratio); %s"
                        % (stated, ratio, ev["text"]))
        else:
            # Off (or unknown): the switch, at the run's ratio.  An activation that needs more gets the ratio raised
            # on it alone (a network-editor rule), never for the whole model: a model-wide ratio moves every other
            # activation under it too.  Measured on MobileNetV3-small with the correction off: the switch with the
            # model-wide ratio at 0.1 (what three of its Hardswishes needed) gave an output SQNR of x0.83; at 0.05,
            # x1.16 with every shifted activation's next layer better.
            raise_it = needed is not None and needed > ratio_in_force + 1e-12
            pair = (crash_pair(rows, needed, consumers_of, memo, only=row, others_at=ratio_in_force) if raise_it
                    else crash_pair(rows, ratio_in_force, consumers_of, memo))
            switch = {"shift_negative_activation_correction": True}
            advice = TURN_ON
            text = ("shift-negative correction was off for it" if snc is False else
                    "turn shift_negative_activation_correction on (its setting is not in the logs)")
            if pair is not None:
                numbers["crash_pair"] = [pair[0]["node"].name, pair[1]["node"].name]
                # the shift it needs stops MCT: turning the correction on may help the others, not this one
                advice = NOTHING_LEFT
                text += ("; it would need shift_negative_ratio >= %g (|min| / threshold = %s), but then %s: nothing "
                         "left for it in MCT 2.6.1's settings" % (needed, rate_text, crash_text(pair)) if raise_it
                         else "; but then %s" % crash_text(pair))
            elif ev["finding"] == SR.CLIPS:
                # more noise everywhere: shifted alone (the others left as the run had them), it cannot help
                advice = NOT_THE_CAUSE
                if needed is not None:
                    numbers["test_countermeasure"] = C.combine([
                        C.quantization_config(shift_negative_activation_correction=True, shift_negative_ratio=0.0),
                        C.layer_activation([n.name], shift_negative_ratio=max(needed, 0.01))])
                text += "; %s: not the cause" % ev["text"]
            else:
                if raise_it:
                    text += (", and |min| / threshold = %s is over shift_negative_ratio=%g: turn it on with the ratio "
                             "raised to %g on this activation alone (the others keep %g)"
                             % (rate_text, ratio_in_force, needed, ratio_in_force))
                    cm = C.combine([config_countermeasure(tc, **switch),
                                    C.layer_activation([n.name], shift_negative_ratio=needed)])
                else:
                    cm = config_countermeasure(tc, **switch)
                text += "; %s" % ev["text"]
                if ev["finding"] == SR.SMALL_SHARE:
                    # Not "not the cause": with the correction off, every covered activation is unshifted and their
                    # small gains add up downstream.  Measured on EfficientNet-B0 with the correction off (each
                    # shifted alone): the next layer gained under 5 % for all 8 tried, yet the model's output SQNR
                    # rose 6-16 % for 4 of them; all shifted together, x1.54 and 3 fewer degraded layers.
                    text += (" on its own, but the switch shifts every activation it covers and their gains add up "
                             "downstream")
    numbers["advice"] = advice
    numbers["actionable"] = advice not in (NOTHING_LEFT, NOT_THE_CAUSE)
    # a claim the replay cannot settle: proposed, to be measured (the study tries it)
    numbers["uncertain"] = numbers.get("finding") == SR.TRADE and numbers["actionable"]
    msg = "%s (%s) outputs negative values%s; %s" % (n.name, _label(n), low, text)
    return Verdict(SHIFT_NEGATIVE_ACTIVATION, COMPUTED, [n.name], numbers,
                   manual.JUDGE_TO_MANUAL[SHIFT_NEGATIVE_ACTIVATION], msg, render(cm, report.toolchain), cm)


def _qdq_verdict(report: Report, row: Dict[str, Any]) -> Verdict:
    """An activation going negative in a QDQ ONNX model.  ONNX quantizers have no shift-negative correction;
    what the negative part costs depends on the range the quantizer gave the output: an asymmetric one that
    starts near the lowest value costs nothing, a symmetric one leaves the levels below the lowest value unused
    (about one bit for a SiLU), an unsigned one clips the negative values."""
    n, qp = row["node"], row["qp"]
    m = row["min_value"]
    rng = qp.activation_range if qp else None
    numbers: Dict[str, Any] = {"layer": n.name, "activation": _label(n), "min_value": m,
                               "range": list(rng) if rng else None, "quant_mode": qp.quant_mode if qp else None,
                               "unused_share": None, "lost_bits": None}
    cm = None
    low = (" down to %.3g" % m) if m is not None else ""
    if rng is None or m is None:
        advice = NOTHING_LEFT
        text = ("the range the quantizer gave it is not in the report (no Q/DQ pair on its output)" if rng is None
                else "its float minimum was not recorded") + ": what its negative part costs is not measured"
    else:
        lo, hi = float(rng[0]), float(rng[1])
        width = hi - lo
        if lo > m + 1e-12 * max(1.0, abs(m)) and lo >= 0:
            advice = ASYMMETRIC_RANGE
            text = ("its quantized range [%.4g, %.4g] starts at %.4g: every negative output is clipped to it; an "
                    "asymmetric range (a zero point) keeps them" % (lo, hi, lo))
            cm = C.onnx_option(ASYMMETRIC_ACTIVATIONS, layers=[n.name])
        else:
            unused = max(0.0, (m - lo) / width) if width > 0 else 0.0
            lost = -math.log2(1.0 - unused) if unused < 1.0 else math.inf
            numbers.update(unused_share=round(unused, 4), lost_bits=round(lost, 3))
            if lost >= LOST_BITS_WORTH_FIXING:
                advice = ASYMMETRIC_RANGE
                text = ("its quantized range [%.4g, %.4g] is %s: %.0f%% of its levels lie below its lowest output "
                        "(%.2g bits of resolution unused); an asymmetric range for it gets them back"
                        % (lo, hi, "symmetric" if abs(lo + hi) <= 0.02 * width else "wider than its values",
                           100 * unused, lost))
                cm = C.onnx_option(ASYMMETRIC_ACTIVATIONS, layers=[n.name])
            else:
                advice = NOTHING_LEFT
                text = ("its quantized range [%.4g, %.4g] already fits the negative part (%.1f%% of the levels lie "
                        "below its lowest output, %.2g bits): the negative outputs are not what costs precision "
                        "here: not the cause" % (lo, hi, 100 * unused, lost))
    numbers["advice"] = advice
    numbers["actionable"] = advice != NOTHING_LEFT
    msg = "%s (%s) outputs negative values%s; %s" % (n.name, _label(n), low, text)
    return Verdict(SHIFT_NEGATIVE_ACTIVATION, COMPUTED, [n.name], numbers,
                   manual.JUDGE_TO_MANUAL[SHIFT_NEGATIVE_ACTIVATION], msg, render(cm, report.toolchain), cm)


def run(ctx: JudgeContext) -> List[Verdict]:
    f = facts_of(ctx.report)
    if f.shift_negative is None:  # does not depend on the thresholds: once per report
        f.shift_negative = judge(ctx.report)
    return f.shift_negative


JUDGE = Judge(SHIFT_NEGATIVE_ACTIVATION, CAUSE, frozenset((GRAPH,)), run,
              doc="activations whose outputs go negative (MCT's list, or a logged histogram below zero)")
