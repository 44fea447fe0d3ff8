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


# --------------------------------------------------------------------------------------------------
# One snippet per countermeasure (model.countermeasure): the code a verdict shows is rendered from the same object
# the study applies.
# --------------------------------------------------------------------------------------------------
# The name of the weights attribute MCT's bit-width config targets, and how MCT names the layer, per toolchain.
WEIGHTS_ATTR = {MCT_PYTORCH: "weight", MCT_KERAS: "kernel"}
NODE_NAME = {MCT_PYTORCH: "MCT's node name: the module path with '.' -> '_'", MCT_KERAS: "the Keras layer name"}
# How many kernel weights a layer has (the layer's MCT name in the variable given), per toolchain.
WEIGHT_COUNT = {
    MCT_PYTORCH: "next(m for name, m in float_model.named_modules() if name.replace('.', '_') == %s).weight.numel()",
    MCT_KERAS: "float_model.get_layer(%s).get_weights()[0].size",
}


def config_countermeasure(toolchain: str, **fields: Any) -> dict:
    """MCT QuantizationConfig fields as a countermeasure, or, for a QDQ ONNX model, the quantizer's nearest option
    (:func:`onnx_config_snippet`'s reading: z_threshold -> percentile calibration, shift-negative -> asymmetric)."""
    from tb_xquant_plugin.model import countermeasure as C

    if toolchain in ONNX_TOOLCHAINS:
        if "z_threshold" in fields:
            return C.onnx_option(CLIP_OUTLIERS, percentile=percentile_for_z(fields["z_threshold"]))
        if fields.get("shift_negative_activation_correction"):
            return C.onnx_option(ASYMMETRIC_ACTIVATIONS, layers=fields.get("layers") or ())
    return C.quantization_config(**fields)


def render(cm: Any, toolchain: str) -> Optional[str]:
    """The snippet of a countermeasure for this toolchain, or None when no code applies it (a larger
    representative set, an MCT option for a toolchain MCT does not quantize)."""
    from tb_xquant_plugin.model import countermeasure as C

    if not cm:
        return None
    kind = cm.get("kind")
    if kind == C.ONNX_OPTION:
        return onnx_snippet(toolchain, cm["change"], layers=cm.get("layers") or (),
                            percentile=cm.get("percentile", 99.99))
    if kind == C.QUANTIZATION_CONFIG:
        return core_config_snippet(toolchain, **cm["fields"])
    if kind == C.GENERAL:
        step = cm.get("step")
        if step == C.BIAS_CORRECTION_OFF:
            return core_config_snippet(toolchain, weights_bias_correction=False)
        if step == C.GPTQ:
            return gptq_snippet(toolchain, int(cm.get("n_epochs", 5)))
        if step == C.WORST_LAYER_16_BITS:
            return layer_16_bits_snippet(cm["layer"], toolchain)
        return None
    if kind == C.MODEL_CHANGE and cm.get("change") == C.SCALE_BRANCH:
        return scale_branch_snippet(cm["join"], cm["narrow_input"], float(cm["factor"]), toolchain)
    if kind not in (C.BIT_WIDTH, C.LAYER_ACTIVATION, "combined"):
        return None
    return bit_width_snippet(C.parts_of(cm), toolchain)


def network_editor_lines(edits: list) -> list:
    """``rules = [...]``: MCT network-editor rules that set activation quantization fields on named layers only
    (``layer_activation`` countermeasures; names as string literals, values as numbers)."""
    lines = ["# Set on these layers only (MCT's node names); every other activation keeps the run's settings.",
             "ne = mct.core.network_editor", "rules = ["]
    for e in edits:
        args = quantization_config_args(**e["fields"])
        for name in e["layers"]:
            lines.append("    ne.EditRule(filter=ne.NodeNameFilter(%s)," % py_str(name))
            lines.append("                action=ne.ChangeCandidatesActivationQuantConfigAttr(%s))," % args)
    lines.append("]")
    return lines


def bit_width_snippet(parts: list, toolchain: str) -> Optional[str]:
    """PTQ again with layers pinned through MCT's BitWidthConfig, per-layer activation fields through MCT's network
    editor, and any QuantizationConfig fields among ``parts``; pinned weights raise the memory target by what they
    cost, so the old allocation still fits.  One pinned layer is ``last_layer`` (mixed precision's verdict is about
    the last layer), several ``layer_1``..."""
    from tb_xquant_plugin.model import countermeasure as C

    call = ptq_call(toolchain)
    if call is None:
        return None
    fields: dict = {}
    for p in parts:
        if p["kind"] == C.QUANTIZATION_CONFIG:
            fields.update(p["fields"])
    pins = [p for p in parts if p["kind"] == C.BIT_WIDTH]
    edits = [p for p in parts if p["kind"] == C.LAYER_ACTIVATION]
    if not pins and not edits:
        return core_config_snippet(toolchain, **fields)
    qc = "mct.core.QuantizationConfig(%s), " % quantization_config_args(**fields) if fields else ""
    debug = "debug_config=mct.core.DebugConfig(network_editor=rules)" if edits else ""
    if not pins:
        return "\n".join(["import model_compression_toolkit as mct", ""] + network_editor_lines(edits) + [
            "core_config = mct.core.CoreConfig(%s%s)" % (qc, debug),
            "quantized_model, quantization_info = %s(" % call,
            "    float_model, representative_data_gen, core_config=core_config)"]) + "\n"
    lines = ["import model_compression_toolkit as mct", ""]
    for p in pins:
        now = py_num(p["from_bits"]) if p.get("from_bits") is not None else "None"
        if p["target"] == "weights":
            lines += ["# The layer ended at %s-bit weights: mixed precision met the memory target by taking bits" % now,
                      "# from the layer the output depends on most. Pin it at %d bits and give the target what that"
                      " costs." % p["bits"]]
        else:
            lines += ["# The layer's output ended at %s-bit activations. Pin it at %d bits (raise activation_memory"
                      % (now, p["bits"]), "# in your ResourceUtilization target by what that costs, if you set one)."]
    costs = []
    names = ["last_layer"] if len(pins) == 1 else ["layer_%d" % i for i in range(1, len(pins) + 1)]
    for var, p in zip(names, pins):
        lines.append("%s = %s  # %s" % (var, py_str(p["layer"]), NODE_NAME.get(toolchain, NODE_NAME[MCT_PYTORCH])))
        if p["target"] == "weights" and p.get("from_bits") is not None:
            wvar = var.replace("layer", "weights")
            lines.append("%s = %s" % (wvar, WEIGHT_COUNT.get(toolchain, WEIGHT_COUNT[MCT_PYTORCH]) % var))
            costs.append("%s * (%d - %s) / 8" % (wvar, int(p["bits"]), py_num(p["from_bits"])))
    if costs:
        mem = next((p.get("weights_memory") for p in pins if p.get("weights_memory") is not None), None)
        lines += ["old_target = %s  # bytes: the weights_memory of the run in this report"
                  % (py_num(mem) if mem is not None else "WEIGHTS_MEMORY_BYTES"),
                  "new_target = old_target + %s" % " + ".join(costs)]
    lines += ["", "bit_width_config = mct.core.BitWidthConfig()"]
    for var, p in zip(names, pins):
        if p["target"] == "weights":
            attr = p.get("attr") or WEIGHTS_ATTR.get(toolchain, WEIGHTS_ATTR[MCT_PYTORCH])
            lines += ["bit_width_config.set_manual_weights_bit_width(",
                      "    mct.core.network_editor.NodeNameFilter(%s), %d, %s)" % (var, int(p["bits"]), py_str(attr))]
        else:
            lines += ["bit_width_config.set_manual_activation_bit_width(",
                      "    mct.core.network_editor.NodeNameFilter(%s), %d)" % (var, int(p["bits"]))]
    if edits:
        lines += network_editor_lines(edits)
    lines += ["quantized_model, quantization_info = %s(" % call,
              "    float_model, representative_data_gen,",
              ("    target_resource_utilization=mct.core.ResourceUtilization(weights_memory=new_target)," if costs else
               "    target_resource_utilization=target_resource_utilization,  # the target of the run in this report"),
              "    core_config=mct.core.CoreConfig(%sbit_width_config=bit_width_config%s))" % (qc, ", " + debug if debug else "")]
    return "\n".join(lines) + "\n"


GPTQ_CONFIG = {MCT_PYTORCH: ("get_pytorch_gptq_config", "pytorch_gradient_post_training_quantization"),
               MCT_KERAS: ("get_keras_gptq_config", "keras_gradient_post_training_quantization")}


def gptq_snippet(toolchain: str, n_epochs: int = 5) -> Optional[str]:
    names = GPTQ_CONFIG.get(toolchain)
    if names is None:
        return None
    return ("import model_compression_toolkit as mct\n\n"
            "# GPTQ: fine-tune the quantized weights' rounding against the float model's outputs (a small budget).\n"
            "gptq_config = mct.gptq.%s(n_epochs=%d)\n"
            "quantized_model, quantization_info = mct.gptq.%s(\n"
            "    float_model, representative_data_gen, gptq_config=gptq_config)\n" % (names[0], int(n_epochs), names[1]))


# Where the user multiplies the narrow input by SCALE, per toolchain.
SCALE_WHERE = {
    MCT_PYTORCH: "# in forward(): multiply the output of narrow_input by SCALE before the join",
    MCT_KERAS: "# in the model: tf.keras.layers.Rescaling(SCALE) on the output of narrow_input, before the join",
}


def scale_branch_snippet(node: str, small: str, factor: float, toolchain: str = MCT_PYTORCH) -> Optional[str]:
    """Scale a join's narrow input by ``factor`` (a model change), with MCT's collapsing off as the setting to
    compare."""
    call = ptq_call(toolchain)
    if call is None:
        return None
    return (
        "# Balance the inputs of the join: scale the narrow branch up before it and undo the factor in the\n"
        "# layer that consumes the join (or fold it into the producing layer).\n"
        "join_node = %(node)s\n"
        "narrow_input = %(small)s\n"
        "SCALE = %(f)s  # range of the widest input / range of narrow_input\n"
        "%(where)s\n\n"
        "# Or stop MCT from merging layers around it and compare:\n"
        "import model_compression_toolkit as mct\n"
        "core_config = mct.core.CoreConfig(mct.core.QuantizationConfig(linear_collapsing=False, residual_collapsing=False))\n"
        "quantized_model, quantization_info = %(call)s(\n"
        "    float_model, representative_data_gen, core_config=core_config)\n"
    ) % {"node": py_str(node), "small": py_str(small), "f": py_num(float("%.4g" % factor)), "call": call,
         "where": SCALE_WHERE.get(toolchain, SCALE_WHERE[MCT_PYTORCH])}


def layer_16_bits_snippet(layer: str, toolchain: str) -> Optional[str]:
    """One layer's weights and activation at 16 bits through MCT's network editor (to confirm a suspect: the
    manual's network-editor-16bit entry)."""
    call = ptq_call(toolchain)
    if call is None:
        return None
    attr = WEIGHTS_ATTR.get(toolchain, WEIGHTS_ATTR[MCT_PYTORCH])
    return (
        "import model_compression_toolkit as mct\n\n"
        "# The suspect layer at 16 bits, everything else unchanged: if the degradation goes, it was this layer.\n"
        "layer = %s  # %s\n"
        "ne = mct.core.network_editor\n"
        "rules = [ne.EditRule(filter=ne.NodeNameFilter(layer),\n"
        "                     action=ne.ChangeCandidatesActivationQuantConfigAttr(activation_n_bits=16)),\n"
        "         ne.EditRule(filter=ne.NodeNameFilter(layer),\n"
        "                     action=ne.ChangeCandidatesWeightsQuantConfigAttr(attr_name=%s, weights_n_bits=16))]\n"
        "core_config = mct.core.CoreConfig(debug_config=mct.core.DebugConfig(network_editor=rules))\n"
        "quantized_model, quantization_info = %s(\n"
        "    float_model, representative_data_gen, core_config=core_config)\n"
    ) % (py_str(layer), NODE_NAME.get(toolchain, NODE_NAME[MCT_PYTORCH]), py_str(attr), call)
