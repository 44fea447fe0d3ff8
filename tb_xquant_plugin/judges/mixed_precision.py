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


def snippet(weights_memory_hint: str = "a larger weights_memory") -> str:
    return (
        "import model_compression_toolkit as mct\n\n"
        "# Give mixed precision more room so the last layer keeps more bits, and weigh the\n"
        "# sensitivity of the model output more (distance to the last layer's output).\n"
        "ru = mct.core.ResourceUtilization(weights_memory=WEIGHTS_MEMORY_BYTES)  # %s\n"
        "mp = mct.core.MixedPrecisionQuantizationConfig(\n"
        "    distance_weighting_method=mct.core.MpDistanceWeighting.LAST_LAYER)\n"
        "core_config = mct.core.CoreConfig(mixed_precision_config=mp)\n"
        "quantized_model, quantization_info = mct.ptq.pytorch_post_training_quantization(\n"
        "    float_model, representative_data_gen, target_resource_utilization=ru, core_config=core_config)\n"
    ) % weights_memory_hint


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
    hint = ("was %g; try at least %g" % (mem, mem * 1.5)) if mem else "raise it"
    code = snippet(hint).replace("WEIGHTS_MEMORY_BYTES", str(round(mem * 1.5)) if mem else "WEIGHTS_MEMORY_BYTES")
    return [Verdict(MIXED_PRECISION, "computed", [info["layer"]], numbers, MANUAL_FOR_JUDGE[MIXED_PRECISION], msg, code)]
