"""Countermeasures as data: what a verdict proposes to change, in a form code can apply.

A verdict's snippet is rendered from its countermeasure (``judges.snippets.render``) and the study
(``tb_xquant_plugin.mct_study``) applies the same object to MCT's configuration objects, so the code a user pastes
and the run the study makes cannot differ.  Every countermeasure is a JSON object with a ``kind``:

``quantization_config``
    ``fields``: MCT ``QuantizationConfig`` fields to set (e.g. ``{"z_threshold": 4.57}``).
``bit_width``
    pin one layer at a bit width through MCT's ``BitWidthConfig`` (network editor node-name filter):
    ``layer`` (MCT's node name), ``target`` ``"weights"`` or ``"activation"``, ``bits``, ``from_bits`` (what the
    run gave it), ``attr`` (the weights attribute), ``weights_memory`` (the run's target in bytes, when known:
    it is raised by what the wider layer costs, so the old allocation still fits).
``layer_activation``
    MCT activation quantization fields set on named layers only, through MCT's network editor
    (``ChangeCandidatesActivationQuantConfigAttr``): ``layers`` (MCT's node names), ``fields`` (e.g.
    ``{"z_threshold": 3.62}``).  The same field as ``quantization_config`` would apply to every activation.
``onnx_option``
    a QDQ ONNX quantizer's own option (``change``: one of ``judges.snippets.ONNX_CHANGES``), with ``layers``
    and, for clipping, ``percentile``.
``model_change``
    needs a change of the float model: ``description``; nothing applies it.  ``change`` ``"scale_branch"``
    (``join``, ``narrow_input``, ``factor``): multiply a join's narrow input before it.
``general``
    one of the general troubleshoots (``step``: see :data:`GENERAL_STEPS`), with the parameters it takes
    (``n_epochs`` for GPTQ, ``layer`` for the worst layer at 16 bits).

Names (layers, node names) are data here; only ``judges.snippets`` turns them into code, as string literals."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional

QUANTIZATION_CONFIG = "quantization_config"
BIT_WIDTH = "bit_width"
LAYER_ACTIVATION = "layer_activation"
ONNX_OPTION = "onnx_option"
MODEL_CHANGE = "model_change"
GENERAL = "general"
KINDS = (QUANTIZATION_CONFIG, BIT_WIDTH, LAYER_ACTIVATION, ONNX_OPTION, MODEL_CHANGE, GENERAL)
# Model changes with a snippet: scale a join's narrow input (``join``, ``narrow_input``, ``factor``).
SCALE_BRANCH = "scale_branch"

# The general troubleshoots in the order the study tries them when no judged countermeasure helped.
MORE_REPRESENTATIVE_DATA = "more_representative_data"  # only when the caller offers a larger / more diverse set
BIAS_CORRECTION_OFF = "bias_correction_off"
GPTQ = "gptq"
# Confirms or clears a suspect: the most degraded layer's weights and activation at 16 bits through MCT's network
# editor (the manual's network-editor-16bit entry).  BitWidthConfig cannot do it: MCT 2.6.1's default TPC refuses
# "Manually selected activation bit-width 16" for Conv and Linear nodes; the network editor's candidate attributes
# are not checked against the TPC.
WORST_LAYER_16_BITS = "worst_layer_16_bits"
GENERAL_STEPS = (MORE_REPRESENTATIVE_DATA, BIAS_CORRECTION_OFF, GPTQ, WORST_LAYER_16_BITS)


def _checked_fields(fields: Mapping[str, Any]) -> Dict[str, Any]:
    for k, v in fields.items():
        if not k.isidentifier():
            raise ValueError("not a field name: %r" % k)
        if not isinstance(v, (bool, int, float)) or (isinstance(v, float) and not math.isfinite(v)):
            raise ValueError("not a finite number or bool: %s=%r" % (k, v))
    return dict(fields)


def quantization_config(**fields: Any) -> Dict[str, Any]:
    return {"kind": QUANTIZATION_CONFIG, "fields": _checked_fields(fields)}


def layer_activation(layers: Any, **fields: Any) -> Dict[str, Any]:
    names = [str(l) for l in (layers or [])]
    if not names:
        raise ValueError("a layer_activation countermeasure names at least one layer")
    return {"kind": LAYER_ACTIVATION, "layers": names, "fields": _checked_fields(fields)}


def bit_width(layer: str, target: str, bits: int, from_bits: Optional[int] = None, attr: Optional[str] = None,
              weights_memory: Optional[float] = None) -> Dict[str, Any]:
    if target not in ("weights", "activation"):
        raise ValueError("target is weights or activation, not %r" % (target,))
    cm: Dict[str, Any] = {"kind": BIT_WIDTH, "layer": str(layer), "target": target, "bits": int(bits),
                          "from_bits": int(from_bits) if from_bits is not None else None}
    if target == "weights":
        cm["attr"] = attr
        cm["weights_memory"] = float(weights_memory) if weights_memory is not None else None
    return cm


def onnx_option(change: str, layers: Any = (), percentile: Optional[float] = None) -> Dict[str, Any]:
    cm: Dict[str, Any] = {"kind": ONNX_OPTION, "change": change, "layers": [str(l) for l in (layers or [])]}
    if percentile is not None:
        cm["percentile"] = float(percentile)
    return cm


def model_change(description: str) -> Dict[str, Any]:
    return {"kind": MODEL_CHANGE, "description": description, "needs_model_change": True}


def general(step: str, **params: Any) -> Dict[str, Any]:
    if step not in GENERAL_STEPS:
        raise ValueError("unknown general step %r" % (step,))
    return dict(params, kind=GENERAL, step=step)


def is_applicable(cm: Optional[Mapping[str, Any]]) -> bool:
    """Whether code can apply it (a model change cannot; a combined one when every part can)."""
    if not cm:
        return False
    if cm.get("kind") == "combined":
        return bool(cm.get("parts")) and all(is_applicable(p) for p in cm["parts"])
    return cm.get("kind") in (QUANTIZATION_CONFIG, BIT_WIDTH, LAYER_ACTIVATION, ONNX_OPTION, GENERAL)


def combine(cms: List[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """Several MCT countermeasures as one: the union of their QuantizationConfig fields (the first value of a field
    wins), their bit-width pins and their per-layer activation edits.  None when there is nothing to combine (fewer than two, or an ONNX / model /
    general one among them)."""
    if len(cms) < 2 or any(c.get("kind") not in (QUANTIZATION_CONFIG, BIT_WIDTH, LAYER_ACTIVATION, "combined")
                           for c in cms):
        return None
    fields: Dict[str, Any] = {}
    pins: List[Dict[str, Any]] = []
    for c in cms:
        parts = c["parts"] if c.get("kind") == "combined" else [c]
        for p in parts:
            if p["kind"] == QUANTIZATION_CONFIG:
                for k, v in p["fields"].items():
                    fields.setdefault(k, v)
            elif p not in pins:
                pins.append(dict(p))
    parts: List[Dict[str, Any]] = ([quantization_config(**fields)] if fields else []) + pins
    return {"kind": "combined", "parts": parts}


def parts_of(cm: Mapping[str, Any]) -> List[Mapping[str, Any]]:
    return list(cm["parts"]) if cm.get("kind") == "combined" else [cm]


def describe(cm: Optional[Mapping[str, Any]]) -> str:
    """A short human label: ``z_threshold=4.57``, ``fc weights at 8 bits``, ``GPTQ``..."""
    if not cm:
        return "baseline"
    kind = cm.get("kind")
    if kind == "combined":
        return " + ".join(describe(p) for p in cm["parts"])
    if kind == QUANTIZATION_CONFIG:
        return ", ".join("%s=%s" % (k, v) for k, v in cm["fields"].items())
    if kind == BIT_WIDTH:
        return "%s %s at %d bits" % (cm["layer"], cm["target"], cm["bits"])
    if kind == LAYER_ACTIVATION:
        layers = cm.get("layers") or []
        return "%s on %s%s" % (", ".join("%s=%s" % (k, v) for k, v in cm["fields"].items()), ", ".join(layers[:3]),
                               " and %d more" % (len(layers) - 3) if len(layers) > 3 else "")
    if kind == ONNX_OPTION:
        return "%s%s" % (cm["change"], " on %s" % ", ".join(cm["layers"][:3]) if cm.get("layers") else "")
    if kind == MODEL_CHANGE:
        return "model change: %s" % cm.get("description", "")
    if kind == GENERAL:
        step = cm.get("step")
        if step == WORST_LAYER_16_BITS:
            return "%s at 16 bits (general)" % cm.get("layer", "the worst layer")
        return {MORE_REPRESENTATIVE_DATA: "more representative data (general)",
                BIAS_CORRECTION_OFF: "bias correction off (general)", GPTQ: "GPTQ (general)"}.get(step, str(step))
    return str(kind)
