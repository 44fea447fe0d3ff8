"""Mixed precision with model-output loss objective: the last layer ended at very few bits.

MCT 2.6.1 (``judge_mixed_precision_with_model_output_loss_objective``) looks at the quantized
model's last two child modules: the weights quantizer of the last layer (``weight`` attribute) and
the activation holder after it, and flags the layer when either ``num_bits`` is at or under
``threshold_bitwidth_mixed_precision_with_model_output_loss_objective`` (whether or not the layer
is degraded).  ``xquant_report_with_manifest`` records exactly those two widths.  Without them,
the last layer is the node of the quantized graph that feeds no other, with its bits from the
report's quantization parameters (``Report.quant``): weights from the stage graph, MCT's log line
"Final weights bit-width configuration" or the manifest's per-layer widths (see
``model.builder.fill_weights_bits``), activation from the final stage graph."""
from __future__ import annotations

from typing import List, Optional

from tb_xquant_plugin.judges.verdict import MANUAL_FOR_JUDGE, MIXED_PRECISION, Verdict
from tb_xquant_plugin.model.report import Report
from tb_xquant_plugin.readers.graphs import as_bits, layer_name_of


def last_layer_bits(report: Report) -> Optional[dict]:
    """The layer MCT's judge inspects and its weights / activation bit widths (None when unknown)."""
    bw = (report.manifest or {}).get("bit_widths") if isinstance(report.manifest, dict) else None
    last = bw.get("last_layer") if isinstance(bw, dict) else None
    if isinstance(last, dict) and isinstance(last.get("name"), str) and last["name"]:
        name, source = last["name"], "manifest"
        w, a = as_bits(last.get("weights_nbits")), as_bits(last.get("activation_nbits"))
    else:
        # Without the manifest: the node that feeds no other node.
        consumers = {i for n in report.nodes for i in n.inputs}
        sinks = [n for n in report.nodes if n.id not in consumers]
        if not sinks:
            return None
        name, source, w, a = layer_name_of(sinks[-1]), "graph", None, None
    qp = report.quant.get(name)
    w_from = "manifest" if w is not None else None
    if w is None and qp is not None and qp.weights_nbits is not None:
        w, w_from = qp.weights_nbits, qp.weights_nbits_source
    if a is None and qp is not None:
        a = qp.activation_nbits
    return {"layer": name, "weights_nbits": w, "activation_nbits": a, "from": source, "weights_from": w_from}


def pin_bits(report: Report, layer: str, bits_threshold: float) -> int:
    """The width to pin the last layer at: its smallest candidate above the threshold (MCT's default
    mixed-precision candidates are 8, 4 and 2 bits), else the next power of two above the threshold."""
    qp = report.quant.get(layer)
    candidates = sorted(c for c in (qp.weights_nbits_candidates or []) if c > bits_threshold) if qp else []
    if candidates:
        return candidates[0]
    bits = 2
    while bits <= bits_threshold:
        bits *= 2
    return bits


def snippet(layer: str, low: List[str], now_bits: Optional[int], pin: int, weights_memory: Optional[float]) -> str:
    """PTQ again with the last layer pinned at ``pin`` bits (the manual's first countermeasure), the weights
    target raised by exactly what the wider last layer costs, so the old allocation still fits."""
    lines = ["import model_compression_toolkit as mct", ""]
    if "weights" in low:
        target = repr(weights_memory) if weights_memory is not None else "WEIGHTS_MEMORY_BYTES"
        lines += [
            "# %s ended at %s-bit weights: mixed precision met the memory target by taking bits from the" % (
                layer, now_bits),
            "# layer the output depends on most. Pin it at %d bits and give the target the bytes that costs." % pin,
            "last_layer = %r  # MCT's node name: the module path with '.' -> '_'" % layer,
            "last_module = next(m for name, m in float_model.named_modules() if name.replace('.', '_') == last_layer)",
            "old_target = %s  # bytes: the weights_memory of the run in this report" % target,
            "new_target = old_target + last_module.weight.numel() * (%d - %s) / 8" % (pin, now_bits),
            "",
            "bit_width_config = mct.core.BitWidthConfig()",
            "bit_width_config.set_manual_weights_bit_width(",
            "    mct.core.network_editor.NodeNameFilter(last_layer), %d, 'weight')" % pin,
            "quantized_model, quantization_info = mct.ptq.pytorch_post_training_quantization(",
            "    float_model, representative_data_gen,",
            "    target_resource_utilization=mct.core.ResourceUtilization(weights_memory=new_target),",
            "    core_config=mct.core.CoreConfig(bit_width_config=bit_width_config))",
        ]
    else:
        lines += [
            "# %s's output ended at %s-bit activations. Pin it at %d bits (raise activation_memory in" % (
                layer, now_bits, pin),
            "# your ResourceUtilization target by what that costs, if you set one).",
            "last_layer = %r  # MCT's node name: the module path with '.' -> '_'" % layer,
            "bit_width_config = mct.core.BitWidthConfig()",
            "bit_width_config.set_manual_activation_bit_width(",
            "    mct.core.network_editor.NodeNameFilter(last_layer), %d)" % pin,
            "quantized_model, quantization_info = mct.ptq.pytorch_post_training_quantization(",
            "    float_model, representative_data_gen,",
            "    target_resource_utilization=target_resource_utilization,  # the target of the run in this report",
            "    core_config=mct.core.CoreConfig(bit_width_config=bit_width_config))",
        ]
    return "\n".join(lines) + "\n"


def judge(report: Report, bits_threshold: float, info: Optional[dict] = None) -> List[Verdict]:
    info = last_layer_bits(report) if info is None else info
    if not info:
        return []
    w, a = info.get("weights_nbits"), info.get("activation_nbits")
    low = [k for k, v in (("weights", w), ("activation", a)) if isinstance(v, int) and v <= bits_threshold]
    if not low:
        return []
    numbers = dict(info, threshold=bits_threshold)
    mem = None
    ru = ((report.manifest or {}).get("extra") or {}).get("resource_utilization") if isinstance(report.manifest, dict) else None
    if isinstance(ru, dict) and isinstance(ru.get("weights_memory"), (int, float)):
        mem = ru["weights_memory"]
        numbers["weights_memory"] = mem
    msg = ("The last layer %s ends at %s bits (weights) / %s bits (activation), at or under %g bits: mixed precision "
           "took the bits from the layer the model output depends on most." % (info["layer"], w, a, bits_threshold))
    pin = pin_bits(report, info["layer"], bits_threshold)
    numbers["pin_bits"] = pin
    code = snippet(info["layer"], low, w if "weights" in low else a, pin, mem)
    return [Verdict(MIXED_PRECISION, "computed", [info["layer"]], numbers, MANUAL_FOR_JUDGE[MIXED_PRECISION], msg, code)]
