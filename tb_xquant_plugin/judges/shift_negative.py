"""Shift negative activation: activation layers whose outputs go negative.

MCT 2.6.1 lists every PReLU / ELU / Hardswish / SiLU / GELU node (class or functional form).
We do the same from the graph's op names and add any other activation whose logged float
histogram reaches below zero (e.g. LeakyReLU, Mish), with the minimum value as evidence."""
from __future__ import annotations

from typing import List

import numpy as np

from tb_xquant_plugin import manual
from tb_xquant_plugin.judges.base import CAUSE, Judge, JudgeContext
from tb_xquant_plugin.judges.facts import facts_of
from tb_xquant_plugin.judges.snippets import core_config_snippet
from tb_xquant_plugin.model.report import GRAPH, Report
from tb_xquant_plugin.model.verdict import COMPUTED, SHIFT_NEGATIVE_ACTIVATION, Verdict

MCT_NEGATIVE_ACTIVATIONS = {"prelu", "elu", "hardswish", "silu", "gelu"}
OTHER_ACTIVATIONS = {"leakyrelu", "leaky_relu", "selu", "celu", "mish", "tanh", "softsign", "hardtanh", "rrelu"}


def _norm(op: str) -> str:
    return (op or "").lower().lstrip("_").replace("torch.nn.functional.", "")


def judge(report: Report) -> List[Verdict]:
    out = []
    for n in report.nodes:
        op = _norm(n.op)
        known = op in MCT_NEGATIVE_ACTIVATIONS
        if not known and op not in OTHER_ACTIVATIONS:
            continue
        h = report.histogram(n.name)
        min_value = None
        if h is not None and len(h):
            mins = np.asarray(h)[:, 0]
            mins = mins[np.isfinite(mins)]
            min_value = float(mins.min()) if mins.size else None
        if not known and (min_value is None or min_value >= 0):
            continue
        qp = report.quant.get(n.name)
        snc = qp.shift_negative_activation_correction if qp else None
        numbers = {"layer": n.name, "activation": n.op, "min_value": min_value,
                   "shift_negative_activation_correction": snc, "in_mct_list": known}
        if snc is True:
            # The correction was on for this run: the next knob is the search of its parameters (a ratio of
            # 0.1 or more made MCT 2.6.1 fail in our runs, so the default ratio stays).
            advice = ("shift-negative correction was already on for it; the next step is "
                      "shift_negative_params_search=True")
            code = core_config_snippet(report.toolchain, shift_negative_activation_correction=True, shift_negative_params_search=True)
        else:
            advice = ("shift-negative correction was off for it" if snc is False else
                      "turn shift_negative_activation_correction on (its setting is not in the logs)")
            code = core_config_snippet(report.toolchain, shift_negative_activation_correction=True)
        msg = "%s (%s) outputs negative values%s; %s" % (
            n.name, n.op, (" down to %.3g" % min_value) if min_value is not None else "", advice)
        out.append(Verdict(SHIFT_NEGATIVE_ACTIVATION, COMPUTED, [n.name], numbers,
                           manual.JUDGE_TO_MANUAL[SHIFT_NEGATIVE_ACTIVATION], msg, code))
    return out


def run(ctx: JudgeContext) -> List[Verdict]:
    f = facts_of(ctx.report)
    if f.shift_negative is None:  # does not depend on the thresholds: once per report
        f.shift_negative = judge(ctx.report)
    return f.shift_negative


JUDGE = Judge(SHIFT_NEGATIVE_ACTIVATION, CAUSE, frozenset((GRAPH,)), run,
              doc="activations whose outputs go negative (MCT's list, or a logged histogram below zero)")
