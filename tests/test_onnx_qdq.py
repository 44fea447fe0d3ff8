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
import json
import os

import numpy as np
import pytest

pytestmark = pytest.mark.onnx

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from demo import onnx_demo  # noqa: E402 - the CNN, its twins and the quantizer calls, shared with the demo
from tb_xquant_plugin import producers  # noqa: E402
from tb_xquant_plugin.judges.run import analyse  # noqa: E402
from tb_xquant_plugin.judges import snippets  # noqa: E402
from tb_xquant_plugin.model.report import ONNX_ORT, ONNX_PPQ, ONNX_QUARK  # noqa: E402
from tb_xquant_plugin.onnx_run import onnx_xquant_report  # noqa: E402
from tb_xquant_plugin.producers.onnx_qdq import OnnxQDQ  # noqa: E402
from testkit.flags import flagged  # noqa: E402

N_REPR, N_VAL = 64, 128


def _quark():
    return onnx_demo.quark()  # compiles its custom ops at first import (g++)


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """The float models (clean, outlier), the data files and a few helpers, in one folder."""
    pytest.importorskip("torch")
    sklearn = pytest.importorskip("sklearn.datasets")
    root = tmp_path_factory.mktemp("onnx_qdq")
    digits = sklearn.load_digits()
    X = (digits.images / 16.0).astype(np.float32)[:, None]
    y = digits.target
    # demo/onnx_demo.py's CNN and its rescaled twin (the same function), trained on the first 1400 images
    model = onnx_demo.train_cnn(X[:1400], y[:1400])
    outlier = onnx_demo.rescaled_twin(model, X[1400:], channel_factor=60.0, branch_factor=40.0)
    paths = {}
    for name, m in (("clean", model), ("outlier", outlier)):
        paths[name] = onnx_demo.export_onnx(m, str(root / ("%s.onnx" % name)), X)
    np.save(root / "repr.npy", X[:N_REPR])
    np.save(root / "val.npy", X[1400:1400 + N_VAL])
    np.save(root / "labels.npy", y[1400:1400 + N_VAL])
    logdir = root / "logs"
    logdir.mkdir()

    class Work:
        pass

    w = Work()
    w.root, w.logdir, w.paths, w.X, w.y = root, logdir, paths, X, y
    w.repr, w.val, w.labels = str(root / "repr.npy"), str(root / "val.npy"), str(root / "labels.npy")

    def reader():
        return onnx_demo.calibration_reader(X[:N_REPR], 1)

    w.reader = reader

    def report(float_path, q_path, name, **kw):
        out = str(logdir / name)
        summary = onnx_xquant_report(float_path, q_path, w.repr, w.val, out, labels=w.labels, **kw)
        rep = producers.build_report_dir(out, str(logdir))
        return summary, rep, analyse(rep)

    w.report = report
    return w


def ort_quantize(w, float_path, out_name, **kw):
    return onnx_demo.ort_quantize(float_path, str(w.root / out_name), w.reader(), **kw)


def quark_quantize(w, float_path, out_name, config):
    return onnx_demo.quark_quantize(float_path, str(w.root / out_name), w.reader(), config)


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
    renamed = onnx_demo.ppq_style_rename(q, str(work.root / "outlier_ppq_style.onnx"))
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
    """esp-ppq itself (in .venv-ppq: it pins onnx < 1.20): its QDQ export pairs by structure, every compare point."""
    from demo.ppq_env import ppq_quantize, why_unavailable
    from tiers import skip_or_fail

    if why_unavailable():
        skip_or_fail(why_unavailable())
    out = str(work.root / "clean_espppq.onnx")
    info = ppq_quantize(work.paths["clean"], work.repr, out, platform="TRT_INT8", steps=32)
    assert info["esp_ppq"] == "1.3.12"
    summary, rep, _ = work.report(work.paths["clean"], out, "clean_espppq")
    assert rep.toolchain == ONNX_PPQ and rep.manifest["quantizer"] == "ppq"
    assert summary["pairing"]["unpaired"] == 0
    assert summary["pairing"]["paired_structurally"] == summary["pairing"]["compare_points"] >= 5
    assert summary["pairing"]["name_pairing_agrees"] <= 1  # PPQ renames every tensor but the graph input


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
    cfg = onnx_demo.quark_a8w8([quark.CLEConfig(cle_steps=-1)])
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


def test_quark_smoothquant_rescaling_is_not_reported_as_degradation(work, quark):
    """Quark's SmoothQuant (0.13: MatMul with constant weights only) divides each MatMul input by a per-channel
    factor in an inserted Mul and multiplies the weights' rows by it.  On the token MLP whose hidden channel 0 is
    30x the others (the same function), the smoothed tensors look broken against their float tensors until the
    Mul's factor is undone; after that no layer is degraded, and the output is better than without SmoothQuant."""
    from tb_xquant_plugin.judges.compare import compare

    mlp = onnx_demo.train(onnx_demo.digits_mlp, work.X[:1400], work.y[:1400])
    f = onnx_demo.export_onnx(onnx_demo.smooth_twin(mlp, work.X[1400:], 30.0), str(work.root / "mlp.onnx"), work.X)
    plain = quark_quantize(work, f, "mlp_quark.onnx", onnx_demo.quark_a8w8())
    sq = quark_quantize(work, f, "mlp_quark_sq.onnx", onnx_demo.quark_a8w8([quark.SmoothQuantConfig(alpha=0.75)]))
    _, rep0, a0 = work.report(f, plain, "mlp_quark")
    summary, rep, a = work.report(f, sq, "mlp_quark_sq")
    assert rep.toolchain == ONNX_QUARK
    st = summary["pairing"]
    assert st["unpaired"] == 0 and st["paired_structurally"] == st["compare_points"]
    assert len(summary["inserted_nodes"]) == 2  # one smoothing Mul before each MatMul
    rescaled = {n: l for n, l in summary["layers"].items() if "unadjusted_metrics" in l}
    assert rescaled and all("smooth_mul" in l["rescaled"]["from"] for l in rescaled.values())
    hidden = [l for l in rescaled.values() if l["rescaled"]["channels"] == 32]
    assert hidden and hidden[0]["rescaled"]["undone"] and hidden[0]["rescaled"]["factor_min"] < 0.1  # the 30x channel
    raw = {n: l["unadjusted_metrics"] for n, l in rescaled.items()}
    assert flagged(raw, rep.defaults) - set(a.degraded), "measured as written, a smoothed tensor would be flagged"
    # the smoothed MatMuls' outputs are not rescaled (the input's factor is undone before reading their weights)
    assert all(summary["layers"][n].get("rescaled") is None for n in ("/l1/MatMul", "/l2/MatMul"))
    for ds in ("repr", "val"):
        assert rep.output_metrics[ds]["mse"] < rep0.output_metrics[ds]["mse"]  # SmoothQuant helped the output
    assert a.degraded == []
    c = compare(a0, a)
    assert not [r["name"] for r in c.rows if r["status"] == "improved" and r["degraded_b"]]
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
