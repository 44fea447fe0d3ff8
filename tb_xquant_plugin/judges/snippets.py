"""Code to paste, built from values: names only inside string literals made by ``repr()``, numbers only as
formatted numbers, comments never hold a model-derived string.  A name with a newline or a quote
therefore stays a string; ``tests/test_hostile_inputs.py`` parses every snippet of reports with injected names."""
from __future__ import annotations

import math
from typing import Any, Optional

from tb_xquant_plugin.model.report import MCT_KERAS, MCT_PYTORCH, ONNX_ORT, ONNX_PPQ, ONNX_QDQ, ONNX_QUARK, ONNX_TOOLCHAINS

# MCT's post-training quantization entry point per toolchain; a toolchain not listed gets no MCT snippet.
PTQ_FUNCTION = {MCT_PYTORCH: "pytorch_post_training_quantization", MCT_KERAS: "keras_post_training_quantization"}


def ptq_call(toolchain: str) -> Optional[str]:
    """``mct.ptq.<function>`` for the toolchain, or None when MCT does not quantize it."""
    fn = PTQ_FUNCTION.get(toolchain)
    return "mct.ptq.%s" % fn if fn else None


def py_str(value: Any) -> str:
    """A Python string literal of ``value``."""
    return repr(str(value))


def py_num(value: Any) -> str:
    """A Python number literal (bools as True / False); ValueError for anything else or a non-finite number."""
    if isinstance(value, bool):
        return repr(value)
    if isinstance(value, int):
        return str(int(value))
    if isinstance(value, float) and math.isfinite(value):
        return repr(float(value))
    raise ValueError("not a finite number: %r" % (value,))


def quantization_config_args(**fields: Any) -> str:
    """``name=value, ...`` of QuantizationConfig fields (the names are this module's callers' own)."""
    for k in fields:
        if not k.isidentifier():
            raise ValueError("not a field name: %r" % k)
    return ", ".join("%s=%s" % (k, py_num(v)) for k, v in fields.items())


def core_config_snippet(toolchain: str, **fields: Any) -> Optional[str]:
    """A runnable MCT 2.6.1 snippet that re-quantizes with the given QuantizationConfig fields (None when the
    toolchain is not MCT's)."""
    if toolchain in ONNX_TOOLCHAINS:  # a QDQ ONNX model: the quantizer's own option (onnx_snippet)
        return onnx_config_snippet(toolchain, **fields)
    call = ptq_call(toolchain)
    if call is None:
        return None
    return (
        "import model_compression_toolkit as mct\n\n"
        "core_config = mct.core.CoreConfig(mct.core.QuantizationConfig(%s))\n"
        "quantized_model, quantization_info = %s(\n"
        "    float_model, representative_data_gen, core_config=core_config)\n" % (quantization_config_args(**fields), call)
    )


# --------------------------------------------------------------------------------------------------
# QDQ ONNX models (producers.onnx_qdq): each quantizer's own options.  Same rules as above: names (node names
# of the float model, which the quantizers take) only as repr() literals, numbers through py_num.  Free names
# a snippet expects, like float_model / representative_data_gen in the MCT ones: float_model_path and
# calibration_data_reader (Quark, ONNX Runtime), calibration_dataloader and input_shape (PPQ).
# --------------------------------------------------------------------------------------------------
# Countermeasures an ONNX snippet can apply.
CLIP_OUTLIERS = "clip_outliers"  # percentile calibration (+ CLE for Quark): MCT's z_threshold
ASYMMETRIC_ACTIVATIONS = "asymmetric_activations"  # a range that fits negative outputs: MCT's shift-negative
HIGHER_PRECISION = "higher_precision"  # the named layers at 16 bits / float
FAST_FINETUNE = "fast_finetune"  # Quark's AdaRound / AdaQuant
SMOOTH_QUANT = "smooth_quant"
ONNX_CHANGES = (CLIP_OUTLIERS, ASYMMETRIC_ACTIVATIONS, HIGHER_PRECISION, FAST_FINETUNE, SMOOTH_QUANT)

_QUARK_IMPORT = "from quark.onnx import ModelQuantizer, QConfig, QLayerConfig, Int8Spec, UInt8Spec, Int16Spec, CalibMethod\n"
_QUARK_RUN = ("quantized_model_path = 'model_quantized.onnx'\n"
              "ModelQuantizer(config).quantize_model(float_model_path, quantized_model_path, calibration_data_reader)\n")
_ORT_IMPORT = "from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static\n"
# ONNX Runtime overrides tensors, not nodes: the named nodes' output tensors, read from the float model.
_ORT_OVERRIDES = ("layers = %s\n"
                  "outputs = {n.name: n.output[0] for n in onnx.load(float_model_path).graph.node}\n")
_PPQ_HEAD = ("import esp_ppq.api.interface as ppq_interface\n"
             "from esp_ppq.api import QuantizationSettingFactory, export_ppq_graph, quantize_onnx_model\n"
             "from esp_ppq.core import TargetPlatform\n\n"
             "ppq_interface.FORMATTER_FUSE_SWISH = False  # keep Sigmoid * x as two ops onnxruntime can run\n"
             "setting = QuantizationSettingFactory.default_setting()\n")
_PPQ_RUN = ("graph = quantize_onnx_model(float_model_path, calibration_dataloader, calib_steps=32, input_shape=input_shape,\n"
            "                            platform=TargetPlatform.TRT_INT8, setting=setting, collate_fn=lambda x: x,\n"
            "                            device='cpu')\n"
            "quantized_model_path = 'model_quantized.onnx'\n"
            "export_ppq_graph(graph, platform=TargetPlatform.ONNXRUNTIME, graph_save_to=quantized_model_path)\n")


def percentile_for_z(z: Any) -> float:
    """The calibration percentile that keeps values within ``z`` standard deviations of a normal distribution
    (one-sided), clamped to 99.0 .. 99.9999: how MCT's z_threshold reads for a percentile calibrator."""
    try:
        zf = float(z)
    except (TypeError, ValueError):
        zf = math.inf
    if not math.isfinite(zf):
        return 99.9999
    p = 100.0 * 0.5 * (1.0 + math.erf(zf / math.sqrt(2.0)))
    return round(min(99.9999, max(99.0, p)), 4)


def _names(layers: Any) -> str:
    return "[%s]" % ", ".join(py_str(l) for l in (layers or []))


def onnx_snippet(toolchain: str, change: str, layers: Any = (), percentile: float = 99.99,
                 alpha: float = 0.5) -> Optional[str]:
    """A runnable snippet that re-quantizes the float ONNX model with ``toolchain``'s option for ``change``
    (one of :data:`ONNX_CHANGES`); ``layers``: float-model node names the change is about.  None when the
    toolchain is not an ONNX one or has no such option."""
    if toolchain not in ONNX_TOOLCHAINS or change not in ONNX_CHANGES:
        return None
    pct = py_num(float(percentile))
    names = _names(layers)
    if toolchain == ONNX_QUARK:
        if change == CLIP_OUTLIERS:
            return (_QUARK_IMPORT + "from quark.onnx import CLEConfig\n\n"
                    "# Clip the outlier tail when the activation ranges are calibrated (percentile), after equalizing\n"
                    "# the weights of consecutive layers (CLE) so that no channel needs the whole range.\n"
                    "config = QConfig(\n"
                    "    global_config=QLayerConfig(activation=UInt8Spec(calibration_method=CalibMethod.Percentile),\n"
                    "                               weight=Int8Spec()),\n"
                    "    algo_config=[CLEConfig(cle_steps=-1)],\n"
                    "    Percentile=%s)\n" % pct + _QUARK_RUN)
        if change == ASYMMETRIC_ACTIVATIONS:
            return (_QUARK_IMPORT + "\n"
                    "# Activations on an asymmetric uint8 range (a zero point), so negative outputs do not waste half\n"
                    "# of a symmetric one; the layers named here get 16 bits as well.\n"
                    "layers = %s\n"
                    "config = QConfig(\n"
                    "    global_config=QLayerConfig(activation=UInt8Spec(symmetric=False), weight=Int8Spec()),\n"
                    "    specific_layer_config={QLayerConfig(activation=Int16Spec(), weight=Int8Spec()): layers})\n"
                    % names + _QUARK_RUN)
        if change == HIGHER_PRECISION:
            return (_QUARK_IMPORT + "\n"
                    "# Mixed precision by hand: these layers at A16W8, the rest at A8W8.\n"
                    "layers = %s\n"
                    "config = QConfig(\n"
                    "    global_config=QLayerConfig(activation=UInt8Spec(), weight=Int8Spec()),\n"
                    "    specific_layer_config={QLayerConfig(activation=Int16Spec(), weight=Int8Spec()): layers})\n"
                    % names + _QUARK_RUN)
        if change == FAST_FINETUNE:
            return (_QUARK_IMPORT + "from quark.onnx import AdaRoundConfig\n\n"
                    "# Fast finetune: AdaRound learns each weight's rounding on the calibration data (AdaQuantConfig\n"
                    "# trains the weights themselves instead).\n"
                    "config = QConfig(\n"
                    "    global_config=QLayerConfig(activation=UInt8Spec(), weight=Int8Spec()),\n"
                    "    algo_config=[AdaRoundConfig(num_iterations=1000, learning_rate=0.1)])\n" + _QUARK_RUN)
        if change == SMOOTH_QUANT:
            return (_QUARK_IMPORT + "from quark.onnx import SmoothQuantConfig\n\n"
                    "# SmoothQuant moves part of the activations' range into the weights (alpha: how much).\n"
                    "config = QConfig(\n"
                    "    global_config=QLayerConfig(activation=Int8Spec(), weight=Int8Spec()),\n"
                    "    algo_config=[SmoothQuantConfig(alpha=%s)])\n" % py_num(float(alpha)) + _QUARK_RUN)
        return None
    if toolchain in (ONNX_ORT, ONNX_QDQ):
        head = _ORT_IMPORT + "\nquantized_model_path = 'model_quantized.onnx'\n"
        if change == CLIP_OUTLIERS:
            return (head + "# Percentile calibration clips the outlier tail; per-channel weights keep one wide channel\n"
                    "# from coarsening the others.\n"
                    "quantize_static(float_model_path, quantized_model_path, calibration_data_reader,\n"
                    "                quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,\n"
                    "                weight_type=QuantType.QInt8, per_channel=True,\n"
                    "                calibrate_method=CalibrationMethod.Percentile,\n"
                    "                extra_options={'CalibPercentile': %s})\n" % pct)
        if change == ASYMMETRIC_ACTIVATIONS:
            return ("import onnx\n" + head + _ORT_OVERRIDES % names +
                    "# An asymmetric range (a zero point) for the outputs of these nodes, so that values going negative\n"
                    "# do not leave half of a symmetric range unused (ActivationSymmetric=False does it for all).\n"
                    "overrides = {outputs[name]: [{'symmetric': False}] for name in layers}\n"
                    "quantize_static(float_model_path, quantized_model_path, calibration_data_reader,\n"
                    "                quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,\n"
                    "                weight_type=QuantType.QInt8, extra_options={'TensorQuantOverrides': overrides})\n")
        if change == HIGHER_PRECISION:
            return ("import onnx\n" + head + _ORT_OVERRIDES % names +
                    "# 16-bit activations on the outputs of these nodes; every other tensor as before.  (nodes_to_exclude\n"
                    "# is not the same: a node's output stays quantized when the node after it is quantized.)\n"
                    "overrides = {outputs[name]: [{'quant_type': QuantType.QUInt16}] for name in layers}\n"
                    "quantize_static(float_model_path, quantized_model_path, calibration_data_reader,\n"
                    "                quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,\n"
                    "                weight_type=QuantType.QInt8, per_channel=True,\n"
                    "                extra_options={'TensorQuantOverrides': overrides})\n")
        return None
    if toolchain == ONNX_PPQ:
        if change == CLIP_OUTLIERS:
            return (_PPQ_HEAD + "# Percentile calibration of the activations clips the outlier tail.\n"
                    "setting.quantize_activation_setting.calib_algorithm = 'percentile'\n" + _PPQ_RUN)
        if change in (ASYMMETRIC_ACTIVATIONS, HIGHER_PRECISION):
            return (_PPQ_HEAD + "# Dispatch these ops to FP32 (or a higher-bit platform of your target, e.g. an INT16 one).\n"
                    "for name in %s:\n"
                    "    setting.dispatching_table.append(operation=name, platform=TargetPlatform.FP32)\n" % names
                    + _PPQ_RUN)
        return None
    return None


def onnx_config_snippet(toolchain: str, **fields: Any) -> Optional[str]:
    """:func:`core_config_snippet`'s MCT QuantizationConfig fields, read as the ONNX quantizer's nearest option:
    ``z_threshold`` -> percentile calibration; ``shift_negative_activation_correction`` -> asymmetric
    activations; anything else -> None."""
    if "z_threshold" in fields:
        return onnx_snippet(toolchain, CLIP_OUTLIERS, percentile=percentile_for_z(fields["z_threshold"]))
    if fields.get("shift_negative_activation_correction"):
        return onnx_snippet(toolchain, ASYMMETRIC_ACTIVATIONS)
    return None
