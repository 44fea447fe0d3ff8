"""The one reader of tb-xquant's manifest (``tb_xquant_manifest.json``, written by ``mct_run``).

The manifest is user-controlled JSON: every accessor checks types and returns None (or an empty
value) for anything of the wrong shape, so no caller has to."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

from tb_xquant_plugin.model.report import LastLayer, as_bits  # noqa: F401 - LastLayer for callers' typing

FILENAME = "tb_xquant_manifest.json"
SCHEMA = 1


def _obj(v: Any) -> Dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _number(v: Any) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _text(v: Any, limit: int = 1000) -> Optional[str]:
    return v[:limit] if isinstance(v, str) and v else None


def model_name(m: Optional[Mapping[str, Any]]) -> Optional[str]:
    return _text(_obj(m).get("model_name"), 300)


def stage_logs(m: Optional[Mapping[str, Any]]) -> Optional[str]:
    """The stage-log folder, relative to the report dir."""
    return _text(_obj(m).get("stage_logs"), 4096)


def xquant_config(m: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    return _obj(_obj(m).get("xquant_config"))


def accuracy(m: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    acc = _obj(m).get("accuracy")
    return acc if isinstance(acc, dict) else None


def quantized_accuracy(m: Optional[Mapping[str, Any]]) -> Optional[float]:
    return _number((accuracy(m) or {}).get("quantized"))


def float_accuracy(m: Optional[Mapping[str, Any]]) -> Optional[float]:
    return _number((accuracy(m) or {}).get("float"))


def layer_bits(m: Optional[Mapping[str, Any]]) -> Dict[str, Dict[str, Optional[int]]]:
    """``{layer: {"weights_nbits", "activation_nbits"}}`` recorded from the quantized model."""
    layers = _obj(_obj(_obj(m).get("bit_widths")).get("layers"))
    out: Dict[str, Dict[str, Optional[int]]] = {}
    for name, entry in layers.items():
        if isinstance(entry, dict):
            weights = _obj(entry.get("weights"))  # the kernel's attribute: "weight" (PyTorch), "kernel" (Keras)
            out[str(name)] = {"weights_nbits": as_bits(weights.get("weight", weights.get("kernel"))),
                              "activation_nbits": as_bits(entry.get("activation"))}
    return out


def last_layer(m: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """``{"name", "weights_nbits", "activation_nbits"}`` of the last layer MCT's judge inspects, or None."""
    last = _obj(_obj(_obj(m).get("bit_widths")).get("last_layer"))
    name = _text(last.get("name"), 1000)
    if name is None:
        return None
    return {"name": name, "weights_nbits": as_bits(last.get("weights_nbits")),
            "activation_nbits": as_bits(last.get("activation_nbits"))}


def weights_memory(m: Optional[Mapping[str, Any]]) -> Optional[float]:
    """The weights-memory target (bytes) the run was quantized under, when the caller recorded it."""
    return _number(_obj(_obj(_obj(m).get("extra")).get("resource_utilization")).get("weights_memory"))


def quantization_config(m: Optional[Mapping[str, Any]]) -> Dict[str, Any]:
    """The run's ``QuantizationConfig`` fields the caller recorded: ``quantization_config`` (written by
    ``mct_run.xquant_report_with_manifest(core_config=...)``) over ``extra.quantization_config``; scalars only."""
    out: Dict[str, Any] = {}
    for src in (_obj(_obj(_obj(m).get("extra")).get("quantization_config")), _obj(_obj(m).get("quantization_config"))):
        for k, v in src.items():
            if isinstance(k, str) and (isinstance(v, (bool, str)) or _number(v) is not None):
                out[k] = v
    return out


def float_modules(m: Optional[Mapping[str, Any]]) -> Optional[List[Tuple[str, str]]]:
    """``[(path, class name)]`` of the float model's ``named_modules()`` the manifest recorded (``float_modules``,
    written by ``mct_run.xquant_report_with_manifest``), or None when it has none.  Entries of the wrong shape are
    skipped; a bare path gets an empty class name."""
    raw = _obj(m).get("float_modules")
    if not isinstance(raw, list):
        return None
    out: List[Tuple[str, str]] = []
    for entry in raw[:200000]:
        if isinstance(entry, str):
            out.append((entry, ""))
        elif isinstance(entry, list) and entry and isinstance(entry[0], str):
            out.append((entry[0], entry[1] if len(entry) > 1 and isinstance(entry[1], str) else ""))
    return out


def xquant_error(m: Optional[Mapping[str, Any]]) -> Optional[str]:
    """What MCT's report function raised, when the manifest wrapper recorded a failed run."""
    return _text(_obj(m).get("xquant_error"), 2000)


def declared_countermeasure(m: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """``extra.countermeasure``: what the run says it changed (non-empty object), or None."""
    cm = _obj(_obj(m).get("extra")).get("countermeasure")
    return cm if isinstance(cm, dict) and cm else None
