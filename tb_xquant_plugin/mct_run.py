"""Run MCT's XQuant report and write the tb-xquant manifest beside it.

MCT does not record which thresholds the XQuant run used, where the stage logs of the
quantization are, or how accurate the float and quantized models were.  The viewer needs
those facts, so this thin wrapper calls MCT's report function and then writes
``tb_xquant_manifest.json`` into the report directory.

Only this module imports torch / MCT, and only when its functions are called; the viewer
itself never imports it.
"""
from __future__ import annotations

import copy
import datetime
import json
import os
from typing import Any, Callable, Dict, Mapping, Optional

from tb_xquant_plugin.model.manifest import FILENAME as MANIFEST_FILENAME
from tb_xquant_plugin.model.manifest import SCHEMA as MANIFEST_SCHEMA

__all__ = ["xquant_report_with_manifest", "write_manifest", "MANIFEST_FILENAME"]


def _versions() -> Dict[str, Optional[str]]:
    out: Dict[str, Optional[str]] = {}
    for dist in ("model-compression-toolkit", "torch", "torchvision", "mct-quantizers"):
        try:
            from importlib.metadata import version

            out[dist] = version(dist)
        except Exception:  # noqa: BLE001 - a missing distribution is just unknown
            out[dist] = None
    return out


def _config_thresholds(xquant_config: Any) -> Dict[str, Any]:
    return {
        "threshold_quantize_error": dict(xquant_config.threshold_quantize_error),
        "is_detect_under_threshold_quantize_error": dict(
            xquant_config.is_detect_under_threshold_quantize_error
        ),
        "threshold_degrade_layer_ratio": xquant_config.threshold_degrade_layer_ratio,
        "threshold_zscore_outlier_removal": xquant_config.threshold_zscore_outlier_removal,
        "threshold_ratio_unbalanced_concatenation": xquant_config.threshold_ratio_unbalanced_concatenation,
        "threshold_bitwidth_mixed_precision_with_model_output_loss_objective": (
            xquant_config.threshold_bitwidth_mixed_precision_with_model_output_loss_objective
        ),
    }


def quantized_bit_widths(quantized_model: Any) -> Dict[str, Any]:
    """Final bit widths per layer of an MCT-quantized PyTorch model (not in MCT's logs).

    Returns ``{"layers": {name: {"weights": {attr: bits}, "activation": bits}}, "last_layer": {...}}``
    where ``last_layer`` is the layer MCT 2.6.1's mixed-precision judge inspects (the second to
    last child module, and the last child for the activation).
    """
    layers: Dict[str, Dict[str, Any]] = {}
    children = list(quantized_model.named_children())
    suffix = "_activation_holder_quantizer"
    for name, mod in children:
        wq = getattr(mod, "weights_quantizers", None)
        if isinstance(wq, dict) and wq:
            entry = layers.setdefault(name, {})
            entry["weights"] = {str(k): int(getattr(q, "num_bits", 0) or 0) for k, q in wq.items()}
        aq = getattr(mod, "activation_holder_quantizer", None)
        if aq is not None and getattr(aq, "num_bits", None) is not None:
            base = name[: -len(suffix)] if name.endswith(suffix) else name
            layers.setdefault(base, {})["activation"] = int(aq.num_bits)
    last = {}
    if len(children) >= 2:
        w_name, w_mod = children[-2]
        a_name, a_mod = children[-1]
        wq = getattr(w_mod, "weights_quantizers", None)
        aq = getattr(a_mod, "activation_holder_quantizer", None)
        last = {
            "name": w_name,
            "weights_nbits": int(wq["weight"].num_bits) if isinstance(wq, dict) and "weight" in wq else None,
            "activation_name": a_name,
            "activation_nbits": int(aq.num_bits) if aq is not None else None,
        }
    return {"layers": layers, "last_layer": last}


def write_manifest(
    report_dir: str,
    *,
    thresholds: Mapping[str, Any],
    stage_logs_dir: Optional[str],
    model_name: str,
    accuracy: Optional[Mapping[str, Any]] = None,
    troubleshoot: bool = True,
    custom_metrics: Optional[list] = None,
    extra: Optional[Mapping[str, Any]] = None,
    bit_widths: Optional[Mapping[str, Any]] = None,
) -> str:
    """Write the manifest JSON into ``report_dir`` and return its path.

    Paths are stored relative to the report directory when they share a root, so a logdir
    can be moved or copied to another machine and still resolve.
    """
    stage_rel = None
    if stage_logs_dir:
        try:
            stage_rel = os.path.relpath(os.path.abspath(stage_logs_dir), os.path.abspath(report_dir))
        except ValueError:  # different drive on Windows
            stage_rel = os.path.abspath(stage_logs_dir)
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "model_name": model_name,
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "xquant_config": dict(thresholds),
        "custom_metrics": list(custom_metrics or []),
        "stage_logs": stage_rel,
        "troubleshoot": bool(troubleshoot),
        "versions": _versions(),
        "accuracy": dict(accuracy) if accuracy else None,
        "bit_widths": dict(bit_widths) if bit_widths else None,
        "extra": dict(extra) if extra else {},
    }
    os.makedirs(report_dir, exist_ok=True)
    path = os.path.join(report_dir, MANIFEST_FILENAME)
    tmp = path + ".tmp"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(manifest, f, indent=2, allow_nan=True)
    os.replace(tmp, path)
    return path


def xquant_report_with_manifest(
    float_model: Any,
    quantized_model: Any,
    repr_dataset: Callable,
    validation_dataset: Callable,
    xquant_config: Any,
    *,
    model_name: Optional[str] = None,
    evaluate: Optional[Callable[[Any], float]] = None,
    accuracy: Optional[Mapping[str, Any]] = None,
    troubleshoot: bool = True,
    extra: Optional[Mapping[str, Any]] = None,
):
    """Call MCT's XQuant report (troubleshoot variant by default) and write the manifest.

    Args:
        float_model, quantized_model, repr_dataset, validation_dataset, xquant_config: passed to
            ``xquant_report_troubleshoot_pytorch_experimental`` (or the plain
            ``xquant_report_pytorch_experimental`` when ``troubleshoot`` is False).
        model_name: shown in the XQuant tab; defaults to the float model's class name.
        evaluate: optional ``evaluate(model) -> accuracy`` run on both models for the manifest.
        accuracy: precomputed ``{"float": ..., "quantized": ..., "dataset": ...}`` instead of ``evaluate``.
        troubleshoot: use the troubleshooting extension (writes troubleshoot_report.json and PNGs).
        extra: free-form facts to keep with the report (e.g. which countermeasure was applied).

    Returns:
        ``(mct_result, manifest_path)`` where ``mct_result`` is what MCT returned.

    Call ``mct.set_log_folder`` before quantizing so MCT writes its stage logs; the manifest
    records that folder (``xquant_config.quantize_reported_dir``).
    """
    from model_compression_toolkit.xquant import (  # imported lazily: heavy and optional
        xquant_report_pytorch_experimental,
        xquant_report_troubleshoot_pytorch_experimental,
    )

    # MCT mutates its default dicts when custom metrics lack a direction; give it copies.
    xquant_config.threshold_quantize_error = copy.deepcopy(dict(xquant_config.threshold_quantize_error))
    xquant_config.is_detect_under_threshold_quantize_error = copy.deepcopy(
        dict(xquant_config.is_detect_under_threshold_quantize_error)
    )
    thresholds = _config_thresholds(xquant_config)
    stage_root = xquant_config.quantize_reported_dir
    stage_logs = os.path.join(stage_root, "tensorboard_logs") if stage_root else None

    fn = xquant_report_troubleshoot_pytorch_experimental if troubleshoot else xquant_report_pytorch_experimental
    result = fn(float_model, quantized_model, repr_dataset, validation_dataset, xquant_config)

    acc = dict(accuracy) if accuracy else None
    if evaluate is not None:
        acc = {"float": float(evaluate(float_model)), "quantized": float(evaluate(quantized_model)),
               "dataset": "validation"}
    custom = sorted((xquant_config.custom_similarity_metrics or {}).keys())
    path = write_manifest(
        xquant_config.report_dir,
        thresholds=thresholds,
        stage_logs_dir=stage_logs,
        model_name=model_name or type(float_model).__name__,
        accuracy=acc,
        troubleshoot=troubleshoot,
        custom_metrics=custom,
        extra=extra,
        bit_widths=quantized_bit_widths(quantized_model),
    )
    return result, path
