"""The demo's ONNX scenarios: a small digits CNN exported with ``torch.onnx.export`` and quantized for real by ONNX
Runtime's ``quantize_static`` and AMD Quark for ONNX, reported with ``tb_xquant_plugin.onnx_run.onnx_xquant_report``.

``python -m demo.generate`` runs them after the MCT scenarios (in the same interpreter: they need onnx,
onnxruntime and, for the Quark ones, amd-quark -- the ``[onnx]`` extra); a scenario whose quantizer is not
importable is left out with a note.  Each scenario folder holds ``models/`` (the float and the quantized ONNX
files) and ``xquant_report/`` (the report: MCT's layout plus ``onnx_qdq.json``).

The CNN (:class:`DigitsCNN`): conv-relu-conv-relu, a Relu branch and a SiLU branch joined by a Concat, conv-relu,
mean, Linear.  Its twins (:func:`rescaled_twin`) compute the same function with one channel of the first conv
made large (the next conv's input weights divided by as much: an outlier channel) and / or the Relu branch made
larger than the SiLU branch (undone in the conv after the Concat: an unbalanced concatenation).  The building
blocks are shared with tests/test_onnx_qdq.py.

esp-ppq cannot share the venv (it pins ``onnx<1.20``), so the PPQ-family scenario is ONNX Runtime's QDQ model
with every tensor and node renamed the way PPQ's exporter names them (``PPQ_Variable_N``, ``PPQ_Operation_N``) and
PPQ's producer name: it is labelled as such in its description and its manifest.
"""
from __future__ import annotations

import copy
import hashlib
import os
import shutil
import time
from typing import Any, Dict, List, Optional, Sequence

import numpy as np

REPORT_SUBDIR = "xquant_report"
BATCH = 32
N_REPR = 256  # the MCT scenarios' representative set: 8 batches of 32 training images
N_VAL = 256  # and their validation set: 8 batches of 32

# name -> description (run in this order by :func:`generate`)
ONNX_SCENARIOS: Dict[str, str] = {
    "onnx_ort_clean": "ONNX Runtime quantize_static (QDQ, uint8 activations, int8 weights) on the digits CNN: no "
                      "degraded layer",
    "onnx_ort_outlier": "ONNX Runtime on a BottleneckNet whose linear bottleneck has one channel 50x wider (the next "
                        "conv ignores it): its min-max range starves the other channels -> outlier removal",
    "onnx_ort_symmetric_silu": "ONNX Runtime with ActivationSymmetric=True: the SiLU's symmetric range wastes the "
                               "levels under its minimum -> shift negative activation",
    "onnx_ort_unbalanced_concat": "ONNX Runtime on the CNN's twin whose Relu branch is 40x the SiLU branch "
                                  "(undone after the Concat) -> unbalanced concatenation",
    "onnx_ort_low_bit_head": "ONNX Runtime with the last Gemm's weights at 4 bits (int4, the lowest ONNX Runtime "
                             "offers; the report's bit-width threshold is 4) -> last layer at low bits",
    "onnx_quark_xint8": "AMD Quark XINT8 (power-of-two scales): Sigmoid replaced by HardSigmoid, a replacement "
                        "that changes the function, reported as a problem",
    "onnx_quark_outlier": "AMD Quark A8W8 (uint8 activations) on the same outlier BottleneckNet, no CLE: outlier "
                          "removal",
    "onnx_quark_cle": "AMD Quark A8W8 with cross-layer equalization on the CNN's twin whose first conv has one "
                      "channel 60x larger (the same function): CLE rescales channels, undone before measuring, so "
                      "no false degradation where the output got better",
    "onnx_ppq_style_outlier": "PPQ-style export (NOT esp-ppq: ONNX Runtime's QDQ model of the outlier model renamed "
                              "PPQ_Variable_N / PPQ_Operation_N, PPQ's thresholds): paired by structure, not name",
    "onnx_ppq_outlier": "a real esp-ppq 1.3.12 run (the PPQ family; quantized in .venv-ppq, scripts/setup_ppq.sh) "
                        "on the same outlier BottleneckNet, TRT_INT8 (percentile activation observer), exported as "
                        "QDQ: the percentile clips the wide channel and no layer passes PPQ's thresholds -- compare "
                        "it with onnx_ort_outlier (min-max)",
    "onnx_ort_mct_clean": "the MCT 'clean' scenario's ConvNet (same weights) exported to ONNX and quantized by ONNX "
                          "Runtime: compare it with clean/xquant_report across toolchains",
}

QUARK_SCENARIOS = frozenset(n for n in ONNX_SCENARIOS if n.startswith("onnx_quark_"))
PPQ_SCENARIOS = frozenset({"onnx_ppq_outlier"})  # quantized by esp-ppq in its own interpreter (demo/ppq_env.py)


def available() -> Dict[str, Optional[str]]:
    """name -> None when the scenario can run here, else why not (without importing onnx / onnxruntime / quark)."""
    import importlib.util

    base = [m for m in ("onnx", "onnxruntime") if importlib.util.find_spec(m) is None]
    quark = importlib.util.find_spec("quark") is None
    out: Dict[str, Optional[str]] = {}
    from demo.ppq_env import why_unavailable as ppq_missing

    for name in ONNX_SCENARIOS:
        missing = base + (["amd-quark"] if name in QUARK_SCENARIOS and quark else [])
        out[name] = ("needs %s (pip install -e '.[onnx]')" % ", ".join(missing)) if missing else None
        if name in PPQ_SCENARIOS and out[name] is None:
            out[name] = ppq_missing()
    return out


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------
def _torch():
    import torch

    return torch


def digits_cnn():
    """A fresh :class:`DigitsCNN` (defined on first use so that importing this module needs no torch)."""
    torch = _torch()
    nn = torch.nn

    class DigitsCNN(nn.Module):
        def __init__(self):
            super().__init__()
            self.c1 = nn.Conv2d(1, 8, 3, padding=1)
            self.c2 = nn.Conv2d(8, 16, 3, padding=1)
            self.c3 = nn.Conv2d(16, 8, 1)
            self.c4 = nn.Conv2d(16, 8, 1)
            self.c5 = nn.Conv2d(16, 16, 3, padding=1)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            x = torch.relu(self.c2(torch.relu(self.c1(x))))
            a, b = torch.relu(self.c3(x)), nn.functional.silu(self.c4(x))
            return self.fc(torch.relu(self.c5(torch.cat([a, b], 1))).mean((2, 3)))

    return DigitsCNN()


def digits_mlp():
    """A token MLP: the 8x8 image as 8 rows of 8 features in [-1, 1], Linear(8, 32)-tanh, times a per-channel
    ``gain`` (ones; :func:`smooth_twin` makes one channel large), Linear(32, 32)-relu, the mean over rows,
    Linear(32, 10).  On a 3-D input torch.onnx.export writes each Linear as MatMul + Add, the op Quark's SmoothQuant
    smooths (it leaves Gemm and Conv alone).  No input channel of a smoothed MatMul is always zero: Quark 0.13
    divides by the channel's largest value (a dead channel gets a factor of 1e9 that its int8 Mul constant
    cannot hold, and the whole model breaks)."""
    torch = _torch()
    nn = torch.nn

    class DigitsMLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.l1 = nn.Linear(8, 32)
            self.l2 = nn.Linear(32, 32)
            self.head = nn.Linear(32, 10)
            self.register_buffer("gain", torch.ones(32))

        def forward(self, x):
            h = torch.tanh(self.l1(x.reshape(x.shape[0], 8, 8) * 2.0 - 1.0)) * self.gain
            return self.head(torch.relu(self.l2(h)).mean(1))

    return DigitsMLP()


def smooth_twin(model, check: np.ndarray, factor: float = 30.0):
    """A copy of a trained :func:`digits_mlp` computing the same function with hidden channel 0 ``factor`` times
    larger before ``l2`` (``l2``'s weights on it divided by as much): the activation outlier SmoothQuant moves into
    the weights.  Checked on ``check``."""
    torch = _torch()
    twin = copy.deepcopy(model)
    with torch.no_grad():
        twin.gain[0] *= factor
        twin.l2.weight[:, 0] /= factor
        xv = torch.tensor(check)
        gap = float((twin(xv) - model(xv)).abs().max())
    if gap >= 1e-3:
        raise AssertionError("the smooth twin should compute the same function (max difference %g)" % gap)
    return twin


def train(make, x: np.ndarray, y: np.ndarray, epochs: int = 15, batch: int = 100, seed: int = 0):
    """``make()`` trained on ``x`` (N, 1, 8, 8) in [0, 1] / ``y`` with Adam, one thread (the same model on every run),
    in eval mode."""
    torch = _torch()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(seed)
        model = make()
        opt = torch.optim.Adam(model.parameters(), 1e-2)
        xt, yt = torch.tensor(x), torch.tensor(y)
        for _ in range(epochs):
            for i in range(0, len(xt), batch):
                opt.zero_grad()
                torch.nn.functional.cross_entropy(model(xt[i:i + batch]), yt[i:i + batch]).backward()
                opt.step()
    finally:
        torch.set_num_threads(threads)
    return model.eval()


def train_cnn(x: np.ndarray, y: np.ndarray, epochs: int = 15, batch: int = 100, seed: int = 0):
    """:func:`digits_cnn` trained (:func:`train`)."""
    return train(digits_cnn, x, y, epochs, batch, seed)


def rescaled_twin(model, check: np.ndarray, channel_factor: Optional[float] = 60.0,
                  branch_factor: Optional[float] = 40.0):
    """A copy of a trained :func:`digits_cnn` computing the same function with channel 0 of ``c1`` multiplied by
    ``channel_factor`` (``c2``'s input weights divided by it: an outlier channel for a per-tensor range) and the
    Relu branch ``c3`` multiplied by ``branch_factor`` (``c5``'s weights on it divided: the Concat joins inputs
    that far apart).  ``None`` leaves that part out.  Checked on ``check`` (inputs) to match the original."""
    torch = _torch()
    twin = copy.deepcopy(model)
    with torch.no_grad():
        if channel_factor:
            twin.c1.weight[0] *= channel_factor
            twin.c1.bias[0] *= channel_factor
            twin.c2.weight[:, 0] /= channel_factor
        if branch_factor:
            twin.c3.weight *= branch_factor
            twin.c3.bias *= branch_factor
            twin.c5.weight[:, :twin.c3.out_channels] /= branch_factor
        xv = torch.tensor(check)
        gap = float((twin(xv) - model(xv)).abs().max())
    if gap >= 1e-3:
        raise AssertionError("the rescaled twin should compute the same function (max difference %g)" % gap)
    return twin


def outlier_bottleneck(data, factor: float = 50.0):
    """demo/models.py's BottleneckNet (the MCT outlier scenario's architecture), trained, with channel 0 of the
    linear bottleneck ``project`` (conv + BN, no activation) ``factor`` times wider and the next convolution
    ignoring it: a continuous tail far beyond the other channels' values.  On a QDQ model's min-max range the
    bottleneck's 8-bit step then starves the other channels, which the next layer's error measures."""
    torch = _torch()
    from demo import models as M

    model = M.trained("BottleneckNet", lambda: M.BottleneckNet(), data)  # the MCT outlier scenario's training
    with torch.no_grad():
        model.project_bn.weight[0] *= factor
        model.project_bn.bias[0] *= factor
        model.mix_conv.weight[:, 0] = 0.0
    return model


def export_onnx(model, path: str, sample: np.ndarray) -> str:
    """``torch.onnx.export`` (TorchScript exporter, opset 17, dynamic batch): input ``input``, output ``logits``;
    nodes named after the modules (``/c1/Conv``, ``/blocks/0/conv/Conv``), BatchNorm folded into its Conv."""
    torch = _torch()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.onnx.export(model, (torch.tensor(sample[:1]),), path, dynamo=False, opset_version=17,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
    finally:
        torch.set_num_threads(threads)
    return path


# --------------------------------------------------------------------------------------------------
# Quantizers
# --------------------------------------------------------------------------------------------------
def calibration_reader(x: np.ndarray, batch: int = 1, input_name: str = "input"):
    """An ONNX Runtime ``CalibrationDataReader`` over ``x`` in batches of ``batch`` (Quark takes the same)."""
    from onnxruntime.quantization import CalibrationDataReader

    class Reader(CalibrationDataReader):
        def __init__(self):
            self.items = iter([{input_name: x[i:i + batch]} for i in range(0, len(x), batch)])

        def get_next(self):
            return next(self.items, None)

        def rewind(self):  # some quantizers read the data twice
            self.items = iter([{input_name: x[i:i + batch]} for i in range(0, len(x), batch)])

    return Reader()


def ort_quantize(float_path: str, out_path: str, reader, **kw) -> str:
    """ONNX Runtime ``quantize_static``: QDQ format, uint8 activations, int8 weights unless ``kw`` says otherwise."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    args: Dict[str, Any] = dict(quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8,
                                weight_type=QuantType.QInt8)
    args.update(kw)
    quantize_static(float_path, out_path, reader, **args)
    return out_path


def quark():
    """``quark.onnx`` (its first import compiles Quark's custom ops with g++), or None when it cannot be imported."""
    try:
        import quark.onnx as qo  # noqa: F401
    except Exception:  # noqa: BLE001 - not installed, or its build failed
        return None
    return qo


def quark_quantize(float_path: str, out_path: str, reader, config) -> str:
    """AMD Quark for ONNX: ``ModelQuantizer(config).quantize_model``.  Quark writes ``quantized_info.csv`` into the
    working directory: run it in ``out_path``'s folder."""
    qo = quark()
    if qo is None:
        raise RuntimeError("amd-quark is not importable (pip install -e '.[onnx]')")
    cwd = os.getcwd()
    os.chdir(os.path.dirname(os.path.abspath(out_path)))
    try:
        qo.ModelQuantizer(config).quantize_model(float_path, out_path, reader)
    finally:
        os.chdir(cwd)
    return out_path


def quark_a8w8(algos: Sequence[Any] = ()):
    """Quark's QConfig: uint8 activations, int8 weights, the given algorithms (``CLEConfig``, ``SmoothQuantConfig``)."""
    qo = quark()
    return qo.QConfig(global_config=qo.QLayerConfig(activation=qo.UInt8Spec(), weight=qo.Int8Spec()),
                      algo_config=list(algos))


def ppq_style_rename(src: str, dst: str) -> str:
    """The QDQ model ``src`` as a PPQ-family exporter names it: every computed tensor ``PPQ_Variable_N``, every node
    ``PPQ_Operation_N`` (graph inputs, outputs and initializers keep their names), producer "PPL Quantization Tool"."""
    import onnx

    m = onnx.load(src)
    keep = {i.name for i in m.graph.input} | {o.name for o in m.graph.output} | {i.name for i in m.graph.initializer}
    names: Dict[str, str] = {}
    for k, n in enumerate(m.graph.node):
        n.name = "PPQ_Operation_%d" % k
        for i, t in enumerate(n.output):
            if t not in keep:
                names.setdefault(t, "PPQ_Variable_%d" % len(names))
                n.output[i] = names[t]
    for n in m.graph.node:
        for i, t in enumerate(n.input):
            if t in names:
                n.input[i] = names[t]
    m.producer_name = "PPL Quantization Tool"
    onnx.save(m, dst)
    return dst


# --------------------------------------------------------------------------------------------------
# The scenarios
# --------------------------------------------------------------------------------------------------
MCT_THRESHOLDS_LOW_BIT = 4  # ONNX Runtime's lowest weight width: the low-bit-head scenario's bit-width threshold


class _Digits:
    """The MCT scenarios' split (demo/models.py's DigitsData) as numpy: repr = their representative images,
    val = their validation images and labels."""

    def __init__(self, data=None):
        from demo import models as M

        self.data = data or M.DigitsData()
        self.x_train = self.data.x_train.numpy()
        self.y_train = self.data.y_train.numpy()
        self.repr = self.x_train[:N_REPR]
        self.val = self.data.x_val.numpy()[:N_VAL]
        self.labels = self.data.y_val.numpy()[:N_VAL]


def _state_hash(model) -> str:
    h = hashlib.sha256()
    for k, v in model.state_dict().items():
        h.update(k.encode())
        h.update(v.detach().cpu().numpy().tobytes())
    return h.hexdigest()[:16]


class _Run:
    """One scenario folder: models/ and xquant_report/."""

    def __init__(self, out_root: str, name: str, d: _Digits):
        self.name = name
        self.dir = os.path.join(out_root, name)
        if os.path.isdir(self.dir):
            shutil.rmtree(self.dir)
        self.models = os.path.join(self.dir, "models")
        os.makedirs(self.models)
        self.d = d

    def path(self, file: str) -> str:
        return os.path.join(self.models, file)

    def reader(self):
        return calibration_reader(self.d.repr, BATCH)

    def report(self, float_path: str, q_path: str, *, quantizer: str, extra: Optional[dict] = None, **kw):
        from tb_xquant_plugin.onnx_run import onnx_xquant_report

        return onnx_xquant_report(
            float_path, q_path, self.d.repr, self.d.val, os.path.join(self.dir, REPORT_SUBDIR), toolchain=quantizer,
            labels=self.d.labels, model_name=self.name,
            extra=dict(extra or {}, scenario=self.name, description=ONNX_SCENARIOS[self.name]), **kw)


def generate(out_root: str, names: List[str], data=None) -> Dict[str, float]:
    """Run the ONNX scenarios ``names`` into ``out_root``; name -> seconds.  ``data``: demo.models.DigitsData."""
    d = _Digits(data)
    cache: Dict[str, Any] = {}

    def cnn():
        if "cnn" not in cache:
            cache["cnn"] = train_cnn(d.x_train, d.y_train)
        return cache["cnn"]

    def float_file(run: _Run, kind: str) -> str:
        """The float model ``kind`` (clean, outlier, concat) exported into the run's models/ folder."""
        if kind == "outlier":
            if "outlier" not in cache:
                cache["outlier"] = outlier_bottleneck(d.data)
            return export_onnx(cache["outlier"], run.path("float.onnx"), d.repr)
        model = cnn()
        if kind == "rescaled":
            model = rescaled_twin(model, d.val, channel_factor=60.0, branch_factor=None)
        elif kind == "concat":
            model = rescaled_twin(model, d.val, channel_factor=None, branch_factor=40.0)
        return export_onnx(model, run.path("float.onnx"), d.repr)

    timings: Dict[str, float] = {}
    for name in names:
        t0 = time.time()
        run = _Run(out_root, name, d)
        q = run.path("quantized.onnx")
        if name == "onnx_ort_clean":
            f = float_file(run, "clean")
            run.report(f, ort_quantize(f, q, run.reader()), quantizer="onnxruntime")
        elif name == "onnx_ort_outlier":
            f = float_file(run, "outlier")
            run.report(f, ort_quantize(f, q, run.reader()), quantizer="onnxruntime")
        elif name == "onnx_ort_symmetric_silu":
            f = float_file(run, "clean")
            run.report(f, ort_quantize(f, q, run.reader(), extra_options={"ActivationSymmetric": True}),
                       quantizer="onnxruntime", extra={"quantization_config": {"ActivationSymmetric": True}})
        elif name == "onnx_ort_unbalanced_concat":
            f = float_file(run, "concat")
            run.report(f, ort_quantize(f, q, run.reader()), quantizer="onnxruntime")
        elif name == "onnx_ort_low_bit_head":
            from onnxruntime.quantization import QuantType

            from tb_xquant_plugin.producers.onnx_qdq import thresholds_preset

            f = float_file(run, "clean")
            overrides = {"fc.weight": [{"quant_type": QuantType.QInt4}]}
            th = thresholds_preset("mct")
            th["threshold_bitwidth_mixed_precision_with_model_output_loss_objective"] = MCT_THRESHOLDS_LOW_BIT
            run.report(f, ort_quantize(f, q, run.reader(), extra_options={"TensorQuantOverrides": overrides}),
                       quantizer="onnxruntime", thresholds=th,
                       extra={"quantization_config": {"TensorQuantOverrides": {"fc.weight": "QInt4"}}})
        elif name == "onnx_quark_outlier":
            f = float_file(run, "outlier")
            run.report(f, quark_quantize(f, q, run.reader(), quark_a8w8()), quantizer="quark")
        elif name == "onnx_quark_cle":
            f = float_file(run, "rescaled")
            cle = quark().CLEConfig(cle_steps=-1)
            run.report(f, quark_quantize(f, q, run.reader(), quark_a8w8([cle])), quantizer="quark",
                       extra={"quantization_config": {"CLEConfig": {"cle_steps": -1}}})
        elif name == "onnx_quark_xint8":
            qo = quark()
            f = float_file(run, "clean")
            run.report(f, quark_quantize(f, q, run.reader(), qo.XINT8_QCONFIG), quantizer="quark")
        elif name == "onnx_ppq_style_outlier":
            f = float_file(run, "outlier")
            plain = ort_quantize(f, run.path("onnxruntime_qdq.onnx"), run.reader())
            run.report(f, ppq_style_rename(plain, q), quantizer="ppq", thresholds="ppq",
                       extra={"ppq_style": "ONNX Runtime's QDQ model renamed as PPQ's exporter names tensors and "
                                           "nodes; not an esp-ppq run (esp-ppq pins onnx<1.20)"})
        elif name == "onnx_ppq_outlier":
            from demo.ppq_env import ppq_quantize

            f = float_file(run, "outlier")
            calib = run.path("calibration.npy")
            np.save(calib, d.repr)
            info = ppq_quantize(f, calib, q, platform="TRT_INT8", steps=64)
            run.report(f, q, quantizer="ppq", thresholds="ppq",
                       extra={"quantization_config": {"platform": info["platform"], "calib_steps": info["samples"]}})
        elif name == "onnx_ort_mct_clean":
            from demo.generate import build_clean

            model = build_clean(d.data)  # seeded training: the weights of the MCT 'clean' scenario
            f = export_onnx(model, run.path("float.onnx"), d.repr)
            run.report(f, ort_quantize(f, q, run.reader()), quantizer="onnxruntime",
                       extra={"same_model_as": "clean/" + REPORT_SUBDIR, "weights_sha256_16": _state_hash(model),
                              "float_modules": [[n, type(m).__name__] for n, m in model.named_modules() if n]})
        else:
            raise SystemExit("unknown ONNX scenario %r; choose from %s" % (name, ", ".join(ONNX_SCENARIOS)))
        timings[name] = time.time() - t0
    return timings

