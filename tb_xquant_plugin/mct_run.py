"""Run MCT's XQuant report and write the tb-xquant manifest beside it.

MCT does not record which thresholds the XQuant run used, where the stage logs of the
quantization are, or how accurate the float and quantized models were.  The viewer needs
those facts, so this thin wrapper calls MCT's report function and then writes
``tb_xquant_manifest.json`` into the report directory: ``xquant_report_with_manifest`` for
PyTorch, ``xquant_report_keras_with_manifest`` for Keras.

Only this module imports torch / TensorFlow / MCT, and only when its functions are called; the
viewer itself never imports it.
"""
from __future__ import annotations

import copy
import datetime
import json
import os
from typing import Any, Callable, Dict, Mapping, Optional

from tb_xquant_plugin.model.manifest import FILENAME as MANIFEST_FILENAME
from tb_xquant_plugin.model.manifest import SCHEMA as MANIFEST_SCHEMA
from tb_xquant_plugin.model.report import MCT_KERAS

__all__ = ["xquant_report_with_manifest", "xquant_report_keras_with_manifest", "write_manifest", "MANIFEST_FILENAME"]

TORCH_DISTRIBUTIONS = ("model-compression-toolkit", "torch", "torchvision", "mct-quantizers")
KERAS_DISTRIBUTIONS = ("model-compression-toolkit", "tensorflow", "mct-quantizers")
KERAS_TOOLCHAIN = MCT_KERAS  # the manifest's ``toolchain`` of a Keras report


def _versions(dists=TORCH_DISTRIBUTIONS) -> Dict[str, Optional[str]]:
    out: Dict[str, Optional[str]] = {}
    for dist in dists:
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
    toolchain: Optional[str] = None,
    versions: Optional[Mapping[str, Optional[str]]] = None,
    float_modules: Optional[list] = None,
    quantization_config: Optional[Mapping[str, Any]] = None,
    xquant_error: Optional[str] = None,
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
        "versions": dict(versions) if versions is not None else _versions(),
        "accuracy": dict(accuracy) if accuracy else None,
        "bit_widths": dict(bit_widths) if bit_widths else None,
        "extra": dict(extra) if extra else {},
    }
    if toolchain:  # PyTorch manifests leave it out (the default); Keras ones say "mct-keras"
        manifest["toolchain"] = toolchain
    if float_modules is not None:  # [[path, class name], ...] of float_model.named_modules()
        manifest["float_modules"] = [list(m) for m in float_modules]
    if quantization_config:  # the QuantizationConfig fields of the run (scalars)
        manifest["quantization_config"] = dict(quantization_config)
    if xquant_error:  # MCT's report function raised: what it said
        manifest["xquant_error"] = xquant_error
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
    core_config: Any = None,
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
        core_config: the ``mct.core.CoreConfig`` the model was quantized with; its QuantizationConfig
            fields are recorded (the judges read e.g. ``shift_negative_params_search`` from them).

    The manifest also records the float model's ``named_modules()`` paths and classes (``float_modules``):
    MCT's concatenation judge maps its node names onto them, and a folded BatchNorm is found by them.
    When MCT's report function raises, the manifest is still written, with ``xquant_error``, and the
    exception is raised again.

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
    modules = float_module_names(float_model)
    qc = quantization_config_fields(core_config)
    custom = sorted((xquant_config.custom_similarity_metrics or {}).keys())
    try:
        result = fn(float_model, quantized_model, repr_dataset, validation_dataset, xquant_config)
    except Exception as e:
        write_manifest(xquant_config.report_dir, thresholds=thresholds, stage_logs_dir=stage_logs,
                       model_name=model_name or type(float_model).__name__, troubleshoot=troubleshoot,
                       custom_metrics=custom, extra=extra, bit_widths=quantized_bit_widths(quantized_model),
                       float_modules=modules, quantization_config=qc,
                       xquant_error=("%s: %s" % (type(e).__name__, e))[:2000])
        raise

    acc = dict(accuracy) if accuracy else None
    if evaluate is not None:
        acc = {"float": float(evaluate(float_model)), "quantized": float(evaluate(quantized_model)),
               "dataset": "validation"}
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
        float_modules=modules,
        quantization_config=qc,
    )
    return result, path


def float_module_names(float_model: Any) -> list:
    """``[[path, class name], ...]`` of ``float_model.named_modules()`` (the root, path '', left out)."""
    try:
        return [[name, type(m).__name__] for name, m in float_model.named_modules() if name]
    except Exception:  # noqa: BLE001 - not a torch module: nothing recorded
        return []


def quantization_config_fields(core_config: Any) -> Dict[str, Any]:
    """The scalar fields of ``core_config.quantization_config`` (enums by name), or {} without a config."""
    qc = getattr(core_config, "quantization_config", None)
    if qc is None:
        return {}
    out: Dict[str, Any] = {}
    for k, v in vars(qc).items():
        if isinstance(v, bool) or isinstance(v, (int, float, str)):
            out[k] = v if not isinstance(v, float) or v == v and abs(v) != float("inf") else str(v)
        elif hasattr(v, "name") and isinstance(getattr(v, "name"), str):
            out[k] = v.name
    return out


# --------------------------------------------------------------------------------------------------
# MCT for Keras
# --------------------------------------------------------------------------------------------------
def keras_bit_widths(quantized_model: Any) -> Dict[str, Any]:
    """Final bit widths per layer of an MCT-quantized Keras model, named by the Keras layers.

    ``{"layers": {name: {"weights": {"kernel": bits}, "activation": bits}}, "last_layer": {...}}``: a
    ``KerasQuantizationWrapper`` gives its layer's weights bits, a ``KerasActivationQuantizationHolder`` the
    activation bits of the layer feeding it.  ``last_layer`` is the layer feeding the model's output holder
    (the head whose bits mixed precision may have cut), with that holder's bits."""
    layers: Dict[str, Dict[str, Any]] = {}

    def own_name(layer: Any) -> str:
        inner = getattr(layer, "layer", None)  # a wrapper: the Keras layer inside it
        return str(inner.name) if inner is not None and type(layer).__name__ == "KerasQuantizationWrapper" \
            else str(layer.name)

    def inbound(layer: Any) -> list:
        try:
            import tensorflow as tf

            return [il for node in layer.inbound_nodes for il in tf.nest.flatten(node.inbound_layers)]
        except Exception:  # noqa: BLE001 - a Keras without inbound_nodes: no activation bits
            return []

    holders = {}
    for layer in quantized_model.layers:
        kind = type(layer).__name__
        if kind == "KerasQuantizationWrapper":
            wq = getattr(layer, "weights_quantizers", None)
            if isinstance(wq, dict) and wq:
                layers.setdefault(own_name(layer), {})["weights"] = {
                    str(k): int(getattr(q, "num_bits", 0) or 0) for k, q in wq.items()}
        elif kind == "KerasActivationQuantizationHolder":
            aq = getattr(layer, "activation_holder_quantizer", None)
            src = inbound(layer)
            if aq is not None and getattr(aq, "num_bits", None) is not None and len(src) == 1:
                name = own_name(src[0])
                layers.setdefault(name, {})["activation"] = int(aq.num_bits)
                holders[str(layer.name)] = (name, src[0], int(aq.num_bits))
    last: Dict[str, Any] = {}
    out_layer = quantized_model.layers[-1] if quantized_model.layers else None
    if out_layer is not None and str(out_layer.name) in holders:
        name, src, abits = holders[str(out_layer.name)]
        wq = getattr(src, "weights_quantizers", None)
        last = {
            "name": name,
            "weights_nbits": int(wq["kernel"].num_bits) if isinstance(wq, dict) and "kernel" in wq else None,
            "activation_name": str(out_layer.name),
            "activation_nbits": abits,
        }
    return {"layers": layers, "last_layer": last}


def xquant_report_keras_with_manifest(
    float_model: Any,
    quantized_model: Any,
    repr_dataset: Callable,
    validation_dataset: Callable,
    xquant_config: Any,
    *,
    model_name: Optional[str] = None,
    evaluate: Optional[Callable[[Any], float]] = None,
    accuracy: Optional[Mapping[str, Any]] = None,
    extra: Optional[Mapping[str, Any]] = None,
):
    """``xquant_report_keras_experimental`` (MCT 2.6.1 for Keras, TensorFlow < 2.16) and the manifest.

    As :func:`xquant_report_with_manifest`, for a Keras float model and the model
    ``mct.ptq.keras_post_training_quantization`` returned.  MCT has no troubleshooting extension for Keras,
    so the manifest says ``troubleshoot: false`` and ``toolchain: "mct-keras"``; the bit widths are read from
    the quantized model's wrappers and activation holders (:func:`keras_bit_widths`).

    Returns ``(mct_result, manifest_path)``.  Call ``mct.set_log_folder`` before quantizing."""
    from model_compression_toolkit.xquant import xquant_report_keras_experimental  # lazily: TensorFlow is heavy

    xquant_config.threshold_quantize_error = copy.deepcopy(dict(xquant_config.threshold_quantize_error))
    xquant_config.is_detect_under_threshold_quantize_error = copy.deepcopy(
        dict(xquant_config.is_detect_under_threshold_quantize_error)
    )
    thresholds = _config_thresholds(xquant_config)
    stage_root = xquant_config.quantize_reported_dir
    stage_logs = os.path.join(stage_root, "tensorboard_logs") if stage_root else None

    result = xquant_report_keras_experimental(float_model, quantized_model, repr_dataset, validation_dataset,
                                              xquant_config)

    acc = dict(accuracy) if accuracy else None
    if evaluate is not None:
        acc = {"float": float(evaluate(float_model)), "quantized": float(evaluate(quantized_model)),
               "dataset": "validation"}
    custom = sorted((xquant_config.custom_similarity_metrics or {}).keys())
    path = write_manifest(
        xquant_config.report_dir,
        thresholds=thresholds,
        stage_logs_dir=stage_logs,
        model_name=model_name or str(getattr(float_model, "name", None) or type(float_model).__name__),
        accuracy=acc,
        troubleshoot=False,
        custom_metrics=custom,
        extra=extra,
        bit_widths=keras_bit_widths(quantized_model),
        toolchain=KERAS_TOOLCHAIN,
        versions=_versions(KERAS_DISTRIBUTIONS),
    )
    return result, path
