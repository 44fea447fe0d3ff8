"""The general troubleshoots: what to do when no judge names a cause, or the judges cannot run."""
from __future__ import annotations

from typing import Any, List

from tb_xquant_plugin import manual
from tb_xquant_plugin.judges.base import GENERAL as GENERAL_KIND
from tb_xquant_plugin.judges.base import Judge, JudgeContext
from tb_xquant_plugin.judges.mixed_precision import bits_text, degraded_bits, is_mixed_precision
from tb_xquant_plugin.model import verdict as V
from tb_xquant_plugin.model.report import LAYER_METRICS


def general(reason: str, message: str, **numbers: Any) -> V.Verdict:
    return V.Verdict(V.GENERAL, V.COMPUTED, [], dict(numbers, reason=reason), manual.GENERAL_REASON_TO_MANUAL[reason],
                     message, None)


def run(ctx: JudgeContext) -> List[V.Verdict]:
    det, th, report = ctx.detection, ctx.thresholds, ctx.report
    if det.judges_skipped:
        return [general(
            V.DEGRADED_RATIO_OVER_LIMIT,
            "%d of %d layers (%.0f%%) are degraded, at or over threshold_degrade_layer_ratio=%g: the problem is not "
            "one layer, so the judges are skipped. Check the representative dataset and its preprocessing first."
            % (len(det.degraded), len(report.layers), 100 * det.ratio, th.degrade_layer_ratio),
            ratio=det.ratio, limit=th.degrade_layer_ratio, degraded=len(det.degraded), layers=len(report.layers))]
    if not det.degraded:
        return [general(
            V.NO_DEGRADED_LAYERS,
            "No layer crosses the quantization-error thresholds. If accuracy still dropped, look at the data "
            "(representative set size, diversity, preprocessing) and the general countermeasures.",
            layers=len(report.layers))]
    if not ctx.verdicts and not ctx.producer_verdicts:
        if is_mixed_precision(report):
            # mixed precision already chose these bits: show them instead of proposing it again
            bits = degraded_bits(report, det.degraded)
            return [general(
                V.NO_JUDGE_APPLIES,
                "%d layers are degraded but none of the judges found a cause. Mixed precision chose their bits "
                "(%s): give the degraded ones more (a larger resource target, or pin them with a bit-width config), "
                "or try the other general countermeasures: isolate a layer at 16 bits (network editor), bias "
                "correction or GPTQ."
                % (len(det.degraded), bits_text(bits)), degraded=len(det.degraded), degraded_bits=bits)]
        return [general(
            V.NO_JUDGE_APPLIES,
            "%d layers are degraded but none of the judges found a cause. Try the general countermeasures: "
            "isolate a layer at 16 bits, bias correction, mixed precision or GPTQ." % len(det.degraded),
            degraded=len(det.degraded))]
    return []


JUDGE = Judge(V.GENERAL, GENERAL_KIND, frozenset((LAYER_METRICS,)), run,
              doc="no degraded layer, too many degraded layers, or degraded layers without a judged cause")
