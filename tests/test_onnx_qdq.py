"""XQuant for QDQ ONNX models (tb_xquant_plugin.onnx_run + producers.onnx_qdq), on a small digits CNN exported
with torch.onnx.export and quantized for real by ONNX Runtime's quantize_static and AMD Quark (and esp-ppq when
it is installed; a PPQ-style renamed export otherwise).

The CNN: conv-relu-conv-relu, a Relu branch and a SiLU branch joined by a Concat, conv-relu, mean, Linear.  Its
"outlier" twin computes the same function with channel 0 of the first conv 60x larger (the next conv's input
weights divided by 60) and the Relu branch 40x larger than the SiLU branch (undone in the conv after the
Concat): per-tensor activation ranges then lose the other channels, and the Concat's inputs are unbalanced.
"""
from __future__ import annotations

import ast
import copy
import json
import os

import numpy as np
import pytest

pytestmark = pytest.mark.onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from tb_xquant_plugin import producers  # noqa: E402
from tb_xquant_plugin.judges.run import analyse  # noqa: E402
from tb_xquant_plugin.judges import snippets  # noqa: E402
from tb_xquant_plugin.model.report import ONNX_ORT, ONNX_PPQ, ONNX_QUARK  # noqa: E402
from tb_xquant_plugin.model.thresholds import Thresholds  # noqa: E402
from tb_xquant_plugin.onnx_run import onnx_xquant_report  # noqa: E402
from tb_xquant_plugin.producers.onnx_qdq import OnnxQDQ  # noqa: E402

N_REPR, N_VAL = 64, 128


def _quark():
    try:
        import quark.onnx  # noqa: F401 - compiles its custom ops at first import (g++)
    except Exception:  # noqa: BLE001
        return None
    return quark.onnx


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The float models (clean, outlier), the data files and a few helpers, in one folder."""
    torch = pytest.importorskip("torch")
    sklearn = pytest.importorskip("sklearn.datasets")
    nn = torch.nn
    root = tmp_path_factory.mktemp("onnx_qdq")
    digits = sklearn.load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target

    class Net(nn.Module):
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

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        model = Net()
        opt = torch.optim.Adam(model.parameters(), 1e-2)
        xt, yt = torch.tensor(X[:1400]), torch.tensor(y[:1400])
        for _ in range(15):
            for i in range(0, 1400, 100):
                opt.zero_grad()
                nn.functional.cross_entropy(model(xt[i:i + 100]), yt[i:i + 100]).backward()
                opt.step()
        model.eval()
        outlier = copy.deepcopy(model)
        with torch.no_grad():
            outlier.c1.weight[0] *= 60.0
            outlier.c1.bias[0] *= 60.0
            outlier.c2.weight[:, 0] /= 60.0
            outlier.c3.weight *= 40.0
            outlier.c3.bias *= 40.0
            outlier.c5.weight[:, :8] /= 40.0
            xv = torch.tensor(X[1400:])
            assert float((outlier(xv) - model(xv)).abs().max()) < 1e-3  # the same function
        paths = {}
        for name, m in (("clean", model), ("outlier", outlier)):
            paths[name] = str(root / ("%s.onnx" % name))
            torch.onnx.export(m, (torch.tensor(X[:1]),), paths[name], dynamo=False, opset_version=17,
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "n"}, "logits": {0: "n"}})
    finally:
        torch.set_num_threads(threads)
    np.save(root / "repr.npy", X[:N_REPR])
    np.save(root / "val.npy", X[1400:1400 + N_VAL])
    np.save(root / "labels.npy", y[1400:1400 + N_VAL])
    logdir = root / "logs"
    logdir.mkdir()

    class Work:
        pass

    w = Work()
    w.root, w.logdir, w.paths, w.X = root, logdir, paths, X
    w.repr, w.val, w.labels = str(root / "repr.npy"), str(root / "val.npy"), str(root / "labels.npy")

    def reader():
        from onnxruntime.quantization import CalibrationDataReader

        class Reader(CalibrationDataReader):
            def __init__(self):
                self.items = iter([{"input": X[i:i + 1]} for i in range(N_REPR)])

            def get_next(self):
                return next(self.items, None)

        return Reader()

    w.reader = reader

    def report(float_path, q_path, name, **kw):
        out = str(logdir / name)
        summary = onnx_xquant_report(float_path, q_path, w.repr, w.val, out, labels=w.labels, **kw)
        rep = producers.build_report_dir(out, str(logdir))
        return summary, rep, analyse(rep)

    w.report = report
    return w


def ort_quantize(w, float_path, out_name, **kw):
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static

    out = str(w.root / out_name)
    args = dict(quant_format=QuantFormat.QDQ, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
    args.update(kw)
    quantize_static(float_path, out, w.reader(), **args)
    return out


def quark_quantize(w, float_path, out_name, config):
    q = _quark()
    out = str(w.root / out_name)
    cwd = os.getcwd()
    os.chdir(w.root)  # Quark writes quantized_info.csv into the working directory
    try:
        q.ModelQuantizer(config).quantize_model(float_path, out, w.reader())
    finally:
        os.chdir(cwd)
    return out


def flagged(layer_metrics, th: Thresholds):
    """Layers MCT's rule flags on these metrics ({layer: {ds: {metric: value}}})."""
    out = set()
    for layer, by_ds in layer_metrics.items():
        for ds, values in by_ds.items():
            for m, v in values.items():
                if m in th.quantize_error and isinstance(v, (int, float)):
                    thr, under = th.quantize_error[m], th.detect_under.get(m, False)
                    if (v <= thr) if under else (v >= thr):
                        out.add(layer)
    return out


def qr_metrics(out_dir):
    with open(os.path.join(out_dir, "quant_report.json"), encoding="utf-8") as f:
        qr = json.load(f)
    layers = {}
    for ds in ("repr", "val"):
        for layer, values in qr["intermediate_similarity_metrics_" + ds].items():
            layers.setdefault(layer, {})[ds] = values
    return qr, layers


# --------------------------------------------------------------------------------------------------
# ONNX Runtime
# --------------------------------------------------------------------------------------------------
def test_ort_report_pairs_every_compare_point_by_structure(work):
    q = ort_quantize(work, work.paths["clean"], "clean_ort.onnx")
    summary, rep, a = work.report(work.paths["clean"], q, "clean_ort")
    st = summary["pairing"]
    assert st["compare_points"] >= 10 and st["unpaired"] == 0
    assert st["paired_structurally"] == st["compare_points"]
    # ORT drops each Relu after a Conv and names the Conv's output after the Relu: the compare point is paired
    # with the float Relu's output (absorbed), not with the float Conv's.
    c1 = summary["layers"]["/c1/Conv"]
    assert c1["float_tensor"] == "/Relu_output_0"
    nodes = {n["id"]: n for n in summary["nodes"]}
    assert nodes["/c1/Conv"]["attrs"]["absorbed"] == ["/Relu"]
    # The folder is discovered as an ONNX report (not as MCT's, whose quant_report.json it shares).
    found = producers.discover(str(work.logdir), [])
    assert isinstance(found["clean_ort"][1], OnnxQDQ)
    assert rep.toolchain == ONNX_ORT and rep.producer == OnnxQDQ.name
    assert {l.name for l in rep.layers} == set(summary["layers"])
    assert all(l.node in rep.node_by_id for l in rep.layers)
    assert all(rep.histogram(l.name) is not None for l in rep.layers)
    qp = rep.quant["/c1/Conv"]
    assert qp.activation_nbits == 8 and qp.weights_nbits == 8 and qp.signed is False
    assert rep.last_layer is not None and rep.last_layer.layer == "/fc/Gemm" and rep.last_layer.weights_nbits == 8
    acc = rep.manifest["accuracy"]
    assert acc["float"] > 0.5 and abs(acc["float"] - acc["quantized"]) < 0.1
    assert rep.manifest["versions"]["onnxruntime"] == ort.__version__
    assert not a.degraded  # a clean model at 8 bits


def test_ort_metrics_match_an_independent_computation(work):
    """Recompute one layer's and the output's metrics with torch (MCT's own formulas) on tensors read separately."""
    torch = pytest.importorskip("torch")
    q = str(work.root / "clean_ort.onnx")
    if not (work.logdir / "clean_ort").exists():
        q = ort_quantize(work, work.paths["clean"], "clean_ort.onnx")
        work.report(work.paths["clean"], q, "clean_ort")
    qr, layers = qr_metrics(str(work.logdir / "clean_ort"))

    def run(path, tensor):
        m = onnx.load(path)
        m.graph.output.append(onnx.ValueInfoProto(name=tensor))
        so = ort.SessionOptions()
        so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        s = ort.InferenceSession(m.SerializeToString(), so, providers=["CPUExecutionProvider"])
        xs = np.load(work.val)
        return [s.run([tensor], {"input": xs[i:i + 32]})[0] for i in range(0, len(xs), 32)]

    for f_t, q_t, layer in (("/Relu_1_output_0", "/Relu_1_output_0_DequantizeLinear_Output", "/c2/Conv"),
                            ("logits", "logits", None)):
        fs, qs = run(work.paths["clean"], f_t), run(q, q_t)
        mse = np.mean([torch.nn.functional.mse_loss(torch.tensor(a), torch.tensor(b)).item() for a, b in zip(fs, qs)])
        cs = np.mean([torch.nn.functional.cosine_similarity(torch.tensor(a).flatten(), torch.tensor(b).flatten(),
                                                            dim=0).item() for a, b in zip(fs, qs)])
        sqnr = np.mean([(np.mean(a ** 2) / np.mean((a - b) ** 2)) for a, b in zip(fs, qs)])
        mine = layers[layer]["val"] if layer else qr["output_similarity_metrics_val"]
        assert mine["mse"] == pytest.approx(mse, rel=1e-3)
        assert mine["cs"] == pytest.approx(cs, rel=1e-4)
        assert mine["sqnr"] == pytest.approx(sqnr, rel=1e-3)


def test_injected_outlier_is_judged_with_an_onnxruntime_snippet_that_helps(work):
    q = ort_quantize(work, work.paths["outlier"], "outlier_ort.onnx")
    summary, rep, _ = work.report(work.paths["outlier"], q, "outlier_ort")  # MCT's thresholds
    assert summary["pairing"]["unpaired"] == 0
    # Half the layers cross MCT's MSE threshold here (the outlier model's values are large), which would skip
    # the judges (threshold_degrade_layer_ratio=0.5): the tab's ratio knob at 0.9 lets them run.
    a = analyse(rep, rep.defaults.with_overrides({"ratio": 0.9}))
    assert a.degraded and not a.detection.judges_skipped, "the outlier channels should degrade some layers"
    by_judge = {}
    for v in a.verdicts:
        by_judge.setdefault(v.judge, []).append(v)
    # The injected outlier channels are judged on the layers they degrade.  (Whether the judge attaches its snippet
    # depends on its own evidence; the snippet is the toolchain's, built by judges.snippets for this report.)
    outliers = by_judge.get("outlier_removal", [])
    assert outliers and {v.layers[0] for v in outliers} <= set(a.degraded)
    concat = by_judge.get("unbalanced_concatenation", [])
    assert any(v.numbers["node"] == "/Concat" and v.numbers["ratio"] >= 16 for v in concat)
    # SiLU is Sigmoid * x in the export: the Mul is read as the SiLU it is.  ONNX Runtime's default range for it is
    # asymmetric (uint8 with a zero point) and starts near its lowest value, so its negative part is not the cause.
    silu = [v for v in by_judge.get("shift_negative_activation", []) if v.layers == ["/Mul"]]
    assert silu and not silu[0].numbers["actionable"] and silu[0].snippet is None
    lo, hi = silu[0].numbers["range"]
    assert lo <= silu[0].numbers["min_value"] < 0 < hi
    assert silu[0].numbers["lost_bits"] < 0.1 and "not the cause" in silu[0].message
    for v in a.verdicts:
        if v.snippet:
            ast.parse(v.snippet)
            assert "model_compression_toolkit" not in v.snippet
    code = snippets.core_config_snippet(rep.toolchain, z_threshold=outliers[0].numbers["z_threshold"])
    assert "CalibrationMethod.Percentile" in code and "model_compression_toolkit" not in code
    ast.parse(code)
    # The snippet, run as it is, lowers the output error.
    cwd = os.getcwd()
    os.chdir(work.root)
    try:
        ns = {"float_model_path": work.paths["outlier"], "calibration_data_reader": work.reader()}
        exec(compile(code, "<outlier snippet>", "exec"), ns)  # noqa: S102 - our own generated code
        fixed = os.path.join(str(work.root), ns["quantized_model_path"])
    finally:
        os.chdir(cwd)
    summary2, rep2, a2 = work.report(work.paths["outlier"], fixed, "outlier_ort_percentile")
    assert rep2.output_metrics["val"]["snr"] < rep.output_metrics["val"]["snr"]


def test_symmetric_silu_range_is_judged_and_its_snippet_gets_the_resolution_back(work):
    """The same SiLU quantized on ONNX Runtime's symmetric range: half of its levels lie below its lowest value,
    the verdict says so with the bits it costs, and its snippet, run as it is, gives that output an asymmetric
    range and lowers the layer's error."""
    q = ort_quantize(work, work.paths["clean"], "clean_ort_symmetric.onnx", extra_options={"ActivationSymmetric": True})
    _, rep, a = work.report(work.paths["clean"], q, "clean_ort_symmetric")
    (silu,) = [v for v in a.verdicts if v.judge == "shift_negative_activation" and v.layers == ["/Mul"]]
    lo, hi = silu.numbers["range"]
    assert abs(lo + hi) < 0.02 * (hi - lo), "ActivationSymmetric=True gives a symmetric range"
    assert silu.numbers["actionable"] and 0.8 < silu.numbers["lost_bits"] < 1.2, silu.numbers
    assert "TensorQuantOverrides" in silu.snippet and "'/Mul'" in silu.snippet
    cwd = os.getcwd()
    os.chdir(work.root)
    try:
        ns = {"float_model_path": work.paths["clean"], "calibration_data_reader": work.reader()}
        exec(compile(silu.snippet, "<shift-negative snippet>", "exec"), ns)  # noqa: S102 - our own generated code
        fixed = os.path.join(str(work.root), ns["quantized_model_path"])
    finally:
        os.chdir(cwd)
    _, rep2, a2 = work.report(work.paths["clean"], fixed, "clean_ort_symmetric_fixed")
    (after,) = [v for v in a2.verdicts if v.judge == "shift_negative_activation" and v.layers == ["/Mul"]]
    assert not after.numbers["actionable"] and after.numbers["lost_bits"] < 0.1, after.message
    for ds in ("repr", "val"):
        assert rep2.layer_by_name["/Mul"].metrics[ds]["mse"] < rep.layer_by_name["/Mul"].metrics[ds]["mse"]


def test_ppq_style_renamed_model_pairs_by_structure_not_name(work):
    """A PPQ-family export names every quantized tensor PPQ_Variable_N and every op PPQ_Operation_N."""
    q = str(work.root / "outlier_ort.onnx")
    if not (work.logdir / "outlier_ort").exists():
        q = ort_quantize(work, work.paths["outlier"], "outlier_ort.onnx")
        work.report(work.paths["outlier"], q, "outlier_ort")
    m = onnx.load(q)
    keep = {i.name for i in m.graph.input} | {o.name for o in m.graph.output} | {i.name for i in m.graph.initializer}
    names = {}
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
    renamed = str(work.root / "outlier_ppq_style.onnx")
    onnx.save(m, renamed)
    summary, rep, a = work.report(work.paths["outlier"], renamed, "outlier_ppq_style")
    st = summary["pairing"]
    assert st["unpaired"] == 0 and st["paired_structurally"] == st["compare_points"]
    assert st["name_pairing_agrees"] <= 1  # only the graph input keeps its name
    assert rep.toolchain == ONNX_PPQ and rep.manifest["quantizer"] == "ppq"
    # PPQ's thresholds are the default for a PPQ model.
    assert rep.defaults.quantize_error["snr"] == 0.1 and rep.defaults.quantize_error["cs"] == 0.99
    assert rep.defaults.detect_under["cs"] is True and rep.defaults.detect_under["snr"] is False
    # Same model, other names: the same layers and the same metrics as the ORT report.
    _, ort_layers = qr_metrics(str(work.logdir / "outlier_ort"))
    _, ppq_layers = qr_metrics(str(work.logdir / "outlier_ppq_style"))
    assert set(ppq_layers) == set(ort_layers)
    for layer, by_ds in ort_layers.items():
        assert ppq_layers[layer]["val"]["snr"] == pytest.approx(by_ds["val"]["snr"], rel=1e-6, abs=1e-12)
    for v in a.verdicts:
        if v.snippet:
            ast.parse(v.snippet)
            assert "esp_ppq" in v.snippet


def test_real_esp_ppq_export(work):
    esp_ppq = pytest.importorskip("esp_ppq", reason="esp-ppq pins onnx < 1.20 and is not in the [onnx] extra")
    torch = pytest.importorskip("torch")
    import esp_ppq.api.interface as ppq_interface
    from esp_ppq.api import export_ppq_graph, quantize_onnx_model
    from esp_ppq.core import TargetPlatform

    ppq_interface.FORMATTER_FUSE_SWISH = False
    data = [torch.tensor(work.X[i:i + 1]) for i in range(32)]
    g = quantize_onnx_model(work.paths["clean"], data, calib_steps=32, input_shape=[1, 1, 8, 8],
                            platform=TargetPlatform.TRT_INT8, collate_fn=lambda x: x, device="cpu")
    out = str(work.root / "clean_espppq.onnx")
    export_ppq_graph(g, platform=TargetPlatform.ONNXRUNTIME, graph_save_to=out)
    summary, rep, _ = work.report(work.paths["clean"], out, "clean_espppq")
    assert summary["pairing"]["unpaired"] == 0 and rep.toolchain == ONNX_PPQ
    assert esp_ppq is not None


# --------------------------------------------------------------------------------------------------
# AMD Quark
# --------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def quark(work):
    q = _quark()
    if q is None:
        pytest.skip("amd-quark is not installed (extra [onnx])")
    return q


def test_quark_cle_rescaling_is_not_reported_as_degradation(work, quark):
    cfg = quark.QConfig(global_config=quark.QLayerConfig(activation=quark.UInt8Spec(), weight=quark.Int8Spec()),
                        algo_config=[quark.CLEConfig(cle_steps=-1)])
    q = quark_quantize(work, work.paths["outlier"], "outlier_quark_cle.onnx", cfg)
    summary, rep, a = work.report(work.paths["outlier"], q, "outlier_quark_cle", thresholds="ppq")
    assert rep.toolchain == ONNX_QUARK
    assert summary["pairing"]["unpaired"] == 0
    c1 = summary["layers"]["/c1/Conv"]
    assert c1["rescaled"]["undone"] and c1["rescaled"]["factor_min"] < 0.1  # CLE shrank the 60x channel
    th = rep.defaults
    raw = {name: l["unadjusted_metrics"] for name, l in summary["layers"].items() if "unadjusted_metrics" in l}
    false_alarms = flagged(raw, th) - set(a.degraded)
    assert "/c1/Conv" in false_alarms, "name pairing would flag the equalized layer"
    assert "/c1/Conv" not in a.degraded
    # After CLE the outlier layer and the layer after it match their float outputs.
    _, layers = qr_metrics(str(work.logdir / "outlier_quark_cle"))
    assert layers["/c1/Conv"]["val"]["cs"] > 0.999 and layers["/c2/Conv"]["val"]["cs"] > 0.999
    assert any("rescaled per channel" in p.what for p in rep.problems)


def test_quark_xint8_hardsigmoid_replacement_is_reported(work, quark):
    q = quark_quantize(work, work.paths["clean"], "clean_quark_xint8.onnx", quark.XINT8_QCONFIG)
    summary, rep, a = work.report(work.paths["clean"], q, "clean_quark_xint8")
    assert summary["pairing"]["unpaired"] == 0
    reps = summary["replacements"]
    assert [(r["float_op"], r["qdq_op"], r["changes_function"]) for r in reps] == [("Sigmoid", "HardSigmoid", True)]
    assert summary["inserted_nodes"]  # XINT8's scaling Muls stand for their inputs
    assert any("HardSigmoid" in p.what for p in rep.problems)
    assert rep.node_by_id["/Sigmoid"].op == "HardSigmoid"
    assert all(rep.quant[l.name].quant_mode == "power_of_two" for l in rep.layers)
    for v in a.verdicts:
        if v.snippet:
            ast.parse(v.snippet)
            assert "quark.onnx" in v.snippet


# --------------------------------------------------------------------------------------------------
# Snippets, markdown
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("toolchain", [ONNX_QUARK, ONNX_ORT, ONNX_PPQ])
@pytest.mark.parametrize("change", snippets.ONNX_CHANGES)
def test_onnx_snippets_parse_with_hostile_names(toolchain, change):
    hostile = ["a'b\nc = 1 #", "x\"\"\"y", "\\"]
    code = snippets.onnx_snippet(toolchain, change, layers=hostile, percentile=99.99)
    if code is None:
        return
    tree = ast.parse(code)
    literals = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
    if change in (snippets.ASYMMETRIC_ACTIVATIONS, snippets.HIGHER_PRECISION):
        assert set(hostile) <= literals
    assert "c = 1" not in [ast.unparse(n) for n in tree.body]


def test_markdown_report_of_an_onnx_report(work):
    from tb_xquant_plugin.export import markdown

    out = work.logdir / "clean_ort"
    if not out.exists():
        q = ort_quantize(work, work.paths["clean"], "clean_ort.onnx")
        work.report(work.paths["clean"], q, "clean_ort")
    rep = producers.build_report_dir(str(out), str(work.logdir))
    text = markdown.render([analyse(rep, rep.defaults.with_overrides({"thr.snr": 0.1, "thr.cs": 0.99,
                                                                       "under.cs": 1}))])
    assert "/c2/Conv" in text and "snr" in text


ONNX_SECTION = "With ONNX quantizers (Quark, ONNX Runtime, PPQ)"


def _onnx_blocks(entry_id):
    import re

    from tb_xquant_plugin import manual

    md = manual.get_entry(entry_id)["markdown"]
    assert ONNX_SECTION in manual.sections(md), entry_id
    section = md.split("## " + ONNX_SECTION, 1)[1].split("\n## ", 1)[0]
    return re.findall(r"^```py\n(.*?)^```$", section, re.MULTILINE | re.DOTALL)


@pytest.mark.parametrize("entry_id", ["outlier-removal", "shift-negative-activation", "unbalanced-concatenation",
                                      "mixed-precision-model-output-loss"])
def test_manual_onnx_sections_run_with_onnxruntime(entry_id, work):
    """Every judgeable entry has an ONNX section; its snippets parse, and the ONNX Runtime ones run on the
    outlier model and change the quantized model."""
    blocks = _onnx_blocks(entry_id)
    assert blocks
    for code in blocks:
        ast.parse(code)
        if "onnxruntime.quantization" not in code:
            continue
        cwd = os.getcwd()
        os.chdir(work.root)
        try:
            ns = {"float_model_path": work.paths["outlier"], "calibration_data_reader": work.reader()}
            exec(compile(code, "<%s onnx snippet>" % entry_id, "exec"), ns)  # noqa: S102 - our manual
            made = onnx.load(str(work.root / "model_quantized.onnx"))
        finally:
            os.chdir(cwd)
        plain = onnx.load(str(work.root / "outlier_ort.onnx")) if (work.root / "outlier_ort.onnx").exists() else None
        if plain is not None:
            assert made.SerializeToString() != plain.SerializeToString()
