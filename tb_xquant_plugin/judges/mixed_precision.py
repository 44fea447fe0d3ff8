"""Mixed precision with model-output loss objective: the last layer ended at very few bits.

MCT 2.6.1 (``judge_mixed_precision_with_model_output_loss_objective``) looks at the quantized
model's last two child modules: the weights quantizer of the last layer (``weight`` attribute) and
the activation holder after it, and flags the layer when either ``num_bits`` is at or under
``threshold_bitwidth_mixed_precision_with_model_output_loss_objective`` (whether or not the layer
is degraded).  ``xquant_report_with_manifest`` records exactly those two widths.  Without them,
the last layer is the node of the quantized graph that feeds no other, with its bits from the
report's quantization parameters (``Report.quant``): weights from the stage graph, MCT's log line
"Final weights bit-width configuration" or the manifest's per-layer widths (see
``producers.mct_pytorch.fill_weights_bits``), activation from the final stage graph; the producer puts the
result in ``Report.last_layer``."""
from __future__ import annotations

from typing import Dict, List, Optional

from tb_xquant_plugin import manual
from tb_xquant_plugin.judges.base import CAUSE, Judge, JudgeContext
from tb_xquant_plugin.judges.facts import facts_of
from tb_xquant_plugin.judges.snippets import WEIGHTS_ATTR, render
from tb_xquant_plugin.model import countermeasure as C
from tb_xquant_plugin.model import manifest as mf
from tb_xquant_plugin.model.report import MCT_PYTORCH, Report
from tb_xquant_plugin.model.verdict import COMPUTED, MIXED_PRECISION, Verdict


def pin_bits(report: Report, layer: str, bits_threshold: float) -> int:
    """The width to pin the last layer at: its smallest candidate above the threshold (MCT's default
    mixed-precision candidates are 8, 4 and 2 bits), else the next power of two above the threshold."""
    qp = report.quant.get(layer)
    candidates = sorted(c for c in (qp.weights_nbits_candidates or []) if c > bits_threshold) if qp else []
    if candidates:
        return candidates[0]
    bits = 2
    while bits <= bits_threshold and bits < 32:  # thresholds are whole numbers in 1..32 (model.thresholds)
        bits *= 2
    return bits


def countermeasure(layer: str, low: List[str], now_bits: Optional[int], pin: int, weights_memory: Optional[float],
                   toolchain: str = MCT_PYTORCH) -> dict:
    """PTQ again with the last layer pinned at ``pin`` bits (the manual's first countermeasure); for weights, the
    memory target raised by exactly what the wider layer costs, so the old allocation still fits."""
    if "weights" in low:
        return C.bit_width(layer, "weights", pin, now_bits, WEIGHTS_ATTR.get(toolchain, WEIGHTS_ATTR[MCT_PYTORCH]),
                           weights_memory)
    return C.bit_width(layer, "activation", pin, now_bits)


def snippet(layer: str, low: List[str], now_bits: Optional[int], pin: int, weights_memory: Optional[float],
            toolchain: str = MCT_PYTORCH) -> Optional[str]:
    """The snippet of :func:`countermeasure` (the layer name only ever a string literal: judges.snippets)."""
    return render(countermeasure(layer, low, now_bits, pin, weights_memory, toolchain), toolchain)


def is_mixed_precision(report: Report) -> bool:
    """Whether mixed precision chose the bits of this run: a layer's weights had several bit-width candidates in
    the stage graph, or the manifest recorded a resource-utilization target.  Once per report (it reads every
    layer's quantization parameters, and every new threshold runs this judge again)."""
    f = facts_of(report)
    if f.mixed_precision is None:
        f.mixed_precision = any(len(set(q.weights_nbits_candidates or [])) > 1 for q in report.quant.values()) \
            or mf.weights_memory(report.manifest) is not None
    return f.mixed_precision


def degraded_bits(report: Report, degraded: List[str]) -> Dict[str, Dict[str, Optional[int]]]:
    """``{layer: {"weights", "activation"}}`` bits of the degraded layers (None where unknown)."""
    out: Dict[str, Dict[str, Optional[int]]] = {}
    for name in degraded:
        qp = report.quant.get(name)
        quantized = qp is not None and (qp.quant_mode or "QUANT") == "QUANT"  # FLN_QUANT: fused, not quantized
        out[name] = {"weights": qp.weights_nbits if qp else None,
                     "activation": qp.activation_nbits if quantized else None}
    return out


def bits_text(bits: Dict[str, Dict[str, Optional[int]]], limit: int = 6) -> str:
    def b(x: Optional[int]) -> str:
        return "?" if x is None else str(x)
    items = ["%s W%s%s" % (k, b(v["weights"]), "/A%s" % v["activation"] if v["activation"] is not None else "")
             for k, v in list(bits.items())[:limit]]
    return ", ".join(items) + (", ..." if len(bits) > limit else "")


def judge(report: Report, bits_threshold: float, degraded: Optional[List[str]] = None) -> List[Verdict]:
    last = report.last_layer
    if last is None:
        return []
    info = last.to_json()
    w, a = last.weights_nbits, last.activation_nbits
    low = [k for k, v in (("weights", w), ("activation", a)) if isinstance(v, int) and v <= bits_threshold]
    if not low:
        return []
    numbers = dict(info, threshold=bits_threshold)
    mem = mf.weights_memory(report.manifest)
    if mem is not None:
        numbers["weights_memory"] = mem
    msg = ("The last layer %s ends at %s bits (weights) / %s bits (activation), at or under %g bits: mixed precision "
           "took the bits from the layer the model output depends on most." % (last.layer, w, a, bits_threshold))
    pin = pin_bits(report, last.layer, bits_threshold)
    numbers["pin_bits"] = pin
    if degraded and is_mixed_precision(report):
        numbers["degraded_bits"] = degraded_bits(report, degraded)
    cm = countermeasure(last.layer, low, w if "weights" in low else a, pin, mem, report.toolchain)
    return [Verdict(MIXED_PRECISION, COMPUTED, [last.layer], numbers, manual.JUDGE_TO_MANUAL[MIXED_PRECISION], msg,
                    render(cm, report.toolchain), cm)]


def run(ctx: JudgeContext) -> List[Verdict]:
    return judge(ctx.report, ctx.thresholds.bitwidth_mixed_precision_with_model_output_loss_objective,
                 ctx.detection.degraded)


JUDGE = Judge(MIXED_PRECISION, CAUSE, frozenset(), run,
              doc="the last layer ends at or under the bit-width threshold (MCT checks it whether or not it is degraded)")
