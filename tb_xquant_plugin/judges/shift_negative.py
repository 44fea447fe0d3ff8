"""Shift negative activation: activation layers whose outputs go negative.

MCT 2.6.1 lists every PReLU / ELU / Hardswish / SiLU / GELU node (class or functional form).
We do the same from the graph's op names and add any other activation whose logged float
histogram reaches below zero (e.g. LeakyReLU, Mish), with the minimum value as evidence."""
from __future__ import annotations

from typing import List

import numpy as np

from tb_xquant_plugin.judges.verdict import MANUAL_FOR_JUDGE, SHIFT_NEGATIVE_ACTIVATION, Verdict, core_config_snippet
from tb_xquant_plugin.model.report import Report

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
        msg = "%s (%s) outputs negative values%s; %s" % (
            n.name, n.op, (" down to %.3g" % min_value) if min_value is not None else "",
            "shift-negative correction was off for it" if snc is False else
            "check that shift_negative_activation_correction is on and tune shift_negative_ratio")
        out.append(Verdict(SHIFT_NEGATIVE_ACTIVATION, "computed", [n.name], numbers,
                           MANUAL_FOR_JUDGE[SHIFT_NEGATIVE_ACTIVATION], msg,
                           core_config_snippet(shift_negative_activation_correction=True, shift_negative_ratio=0.05,
                                               shift_negative_params_search=True)))
    return out
