"""Mixed precision with model-output loss objective: the last layer ended at very few bits.

MCT 2.6.1 looks at the quantized model's last two child modules (the last weighted layer and its
activation holder).  Those bit widths are not in MCT's logs; ``xquant_report_with_manifest``
records them.  Without a manifest we fall back to the activation bits of the graph's output node
from the MCT stage graph, and the weights bits of MCT's log line "Final weights bit-width
configuration" are not used (their order is internal to MCT)."""
from __future__ import annotations

from typing import List, Optional

from tb_xquant_plugin.judges.verdict import MANUAL_FOR_JUDGE, MIXED_PRECISION, Verdict
from tb_xquant_plugin.model.report import Report


def last_layer_bits(report: Report) -> Optional[dict]:
    bw = (report.manifest or {}).get("bit_widths") if isinstance(report.manifest, dict) else None
    last = bw.get("last_layer") if isinstance(bw, dict) else None
    if isinstance(last, dict) and last.get("name"):
        return {"layer": str(last["name"]), "weights_nbits": last.get("weights_nbits"),
                "activation_nbits": last.get("activation_nbits"), "from": "manifest"}
    # Fallback: the node that feeds no other node, with stage-graph activation bits.
    consumers = {i for n in report.nodes for i in n.inputs}
    sinks = [n for n in report.nodes if n.id not in consumers]
    if not sinks:
        return None
    from tb_xquant_plugin.readers.graphs import layer_name_of

    name = layer_name_of(sinks[-1])
    qp = report.quant.get(name)
    return {"layer": name, "weights_nbits": None,
            "activation_nbits": qp.activation_nbits if qp else None, "from": "stage graph"}


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
    low = [k for k, v in (("weights", w), ("activation", a)) if isinstance(v, (int, float)) and v <= bits_threshold]
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
