"""The demo's ONNX scenarios (demo/onnx_demo.py): each one's verdict, read the way the tab reads it (the report
built from the folder by the ONNX producer, ``judges.run.analyse`` with the report's own thresholds, and the
HTTP routes of the plugin for the same reports)."""
from __future__ import annotations

import ast
import json
import math

import pytest

from demo.onnx_demo import ONNX_SCENARIOS, available

# the scenarios generated here (tests/conftest.py's ONNX_DEMO; not imported from conftest, which may resolve to
# tests/browser/conftest.py when both folders are collected)
ONNX_DEMO = tuple(n for n, why in available().items() if why is None)

pytestmark = pytest.mark.onnx

from tb_xquant_plugin.judges.run import analyse  # noqa: E402
from tb_xquant_plugin.model.report import ONNX_ORT, ONNX_PPQ, ONNX_QUARK  # noqa: E402
from testkit.flags import flagged  # noqa: E402


def need(name):
    if name not in ONNX_DEMO:
        pytest.skip("%s is not generated here: %s" % (name, available().get(name) or "unknown scenario"))


@pytest.fixture(scope="module")
def onnx_runs(scenarios):
    """name -> (Analysis under the report's own thresholds, onnx_qdq.json)"""
    out = {}
    for name in ONNX_DEMO:
        sc = scenarios[name]
        rep = sc.report()
        with open(sc.dir / "onnx_qdq.json", encoding="utf-8") as f:
            out[name] = (analyse(rep), json.load(f))
    return out


def verdicts(a, judge):
    return [v for v in a.verdicts if v.judge == judge]


SNIPPET_API = {ONNX_ORT: "onnxruntime.quantization", ONNX_QUARK: "quark.onnx", ONNX_PPQ: "esp_ppq"}
TOOLCHAIN = {"onnx_ort": ONNX_ORT, "onnx_quark": ONNX_QUARK, "onnx_ppq": ONNX_PPQ}


@pytest.mark.parametrize("name", sorted(ONNX_SCENARIOS))
def test_every_onnx_scenario_is_a_paired_onnx_report(name, onnx_runs, scenarios):
    need(name)
    a, details = onnx_runs[name]
    rep = a.report
    assert rep.toolchain == TOOLCHAIN["_".join(name.split("_")[:2])]
    st = details["pairing"]
    assert st["unpaired"] == 0 and st["paired_structurally"] == st["compare_points"] >= 7, st
    assert rep.manifest["extra"]["scenario"] == name
    assert scenarios[name].mct_degraded == a.degraded  # the tab's detection is MCT's rule on quant_report.json
    for v in a.verdicts:
        if v.snippet:
            ast.parse(v.snippet)
            assert SNIPPET_API[rep.toolchain] in v.snippet and "model_compression_toolkit" not in v.snippet


def test_clean_scenario_has_no_degraded_layer(onnx_runs):
    need("onnx_ort_clean")
    a, _ = onnx_runs["onnx_ort_clean"]
    assert a.degraded == [] and not a.detection.judges_skipped
    assert not [v for v in a.verdicts if v.numbers.get("actionable")]
    assert a.general  # the general troubleshoots stand in


@pytest.mark.parametrize("name", ["onnx_ort_outlier", "onnx_quark_outlier", "onnx_ppq_style_outlier"])
def test_outlier_tail_is_judged_actionable(name, onnx_runs):
    need(name)
    a, _ = onnx_runs[name]
    assert not a.detection.judges_skipped
    assert "/mix_conv/Conv" in a.degraded
    (v,) = [v for v in verdicts(a, "outlier_removal") if v.layers == ["/mix_conv/Conv"]]
    # the mixing conv's error is its input's quantization: the bottleneck's wide channel stretched its range
    assert v.numbers["actionable"] and v.snippet, v.message
    assert "/project_conv/Conv" in v.message and "real outlier tail" in v.message
    assert v.numbers["z_threshold"] > 5


def test_symmetric_silu_range_is_judged(onnx_runs):
    need("onnx_ort_symmetric_silu")
    a, _ = onnx_runs["onnx_ort_symmetric_silu"]
    (v,) = [v for v in verdicts(a, "shift_negative_activation") if v.layers == ["/Mul"]]
    lo, hi = v.numbers["range"]
    assert abs(lo + hi) < 0.02 * (hi - lo)  # ActivationSymmetric=True: a symmetric range for a SiLU
    assert v.numbers["actionable"] and 0.8 < v.numbers["lost_bits"] < 1.2 and "'/Mul'" in v.snippet
    # without the option the same SiLU gets an asymmetric range: not the cause there
    if "onnx_ort_clean" in onnx_runs:
        (plain,) = [v for v in verdicts(onnx_runs["onnx_ort_clean"][0], "shift_negative_activation")
                    if v.layers == ["/Mul"]]
        assert not plain.numbers["actionable"] and plain.snippet is None


def test_unbalanced_concat_is_judged(onnx_runs):
    need("onnx_ort_unbalanced_concat")
    a, _ = onnx_runs["onnx_ort_unbalanced_concat"]
    (v,) = [v for v in verdicts(a, "unbalanced_concatenation") if v.numbers.get("node") == "/Concat"]
    assert v.numbers["ratio"] >= a.thresholds.ratio_unbalanced_concatenation
    assert 20 < v.numbers["ratio"] < 60  # the Relu branch was made 40x the SiLU branch
    assert {"/c3/Conv", "/Mul"} <= set(v.layers)


def test_low_bit_last_layer_is_judged(onnx_runs):
    need("onnx_ort_low_bit_head")
    a, details = onnx_runs["onnx_ort_low_bit_head"]
    assert details["last_layer"]["name"] == "/fc/Gemm" and details["last_layer"]["weights_nbits"] == 4
    (v,) = verdicts(a, "mixed_precision_with_model_output_loss_objective")
    assert v.layers == ["/fc/Gemm"] and v.numbers["weights_nbits"] == 4 and v.numbers["threshold"] == 4
    assert "/fc/Gemm" in a.degraded


def test_quark_xint8_replacement_is_a_problem(onnx_runs):
    need("onnx_quark_xint8")
    a, details = onnx_runs["onnx_quark_xint8"]
    assert [(r["float_op"], r["qdq_op"], r["changes_function"]) for r in details["replacements"]] == [
        ("Sigmoid", "HardSigmoid", True)]
    assert any("HardSigmoid" in p.what for p in a.report.problems)
    assert a.report.node_by_id["/Sigmoid"].op == "HardSigmoid"
    assert all(a.report.quant[l.name].quant_mode == "power_of_two" for l in a.report.layers)


def test_quark_cle_shows_no_false_degradation(onnx_runs):
    """CLE rescaled channels of the QDQ model: measured against the float tensor as they are, the equalized layers
    look broken; after undoing the factors read from the weights, none is degraded where the output got better."""
    need("onnx_quark_cle")
    a, details = onnx_runs["onnx_quark_cle"]
    th = a.thresholds
    rescaled = {n: l for n, l in details["layers"].items() if "unadjusted_metrics" in l}
    assert "/c1/Conv" in rescaled and rescaled["/c1/Conv"]["rescaled"]["undone"]
    false_alarms = flagged({n: l["unadjusted_metrics"] for n, l in rescaled.items()}, th)
    assert "/c1/Conv" in false_alarms  # what a name-paired comparison would report
    for n, l in rescaled.items():
        adjusted = a.report.layer_by_name[n].metrics
        improved = all(adjusted[ds]["mse"] <= l["unadjusted_metrics"][ds]["mse"] for ds in adjusted)
        if improved:
            assert n not in a.degraded, n
    assert a.degraded == []
    assert any("rescaled per channel" in p.what for p in a.report.problems)


def test_ppq_style_scenario_is_labelled_and_uses_ppq_thresholds(onnx_runs):
    need("onnx_ppq_style_outlier")
    a, details = onnx_runs["onnx_ppq_style_outlier"]
    assert "ppq_style" in a.report.manifest["extra"] and "NOT esp-ppq" in a.report.manifest["extra"]["description"]
    assert details["pairing"]["name_pairing_agrees"] <= 1  # only the graph input keeps its name
    assert a.thresholds.quantize_error["snr"] == 0.1 and a.thresholds.quantize_error["cs"] == 0.99
    if "onnx_ort_outlier" in onnx_runs:  # the same quantized model under other names: the same layers
        ort = onnx_runs["onnx_ort_outlier"][0].report
        assert {l.name for l in a.report.layers} == {l.name for l in ort.layers}


def test_real_esp_ppq_scenario_percentile_observer_clips_the_outlier(onnx_runs):
    """The real esp-ppq run on the outlier model: PPQ's TRT_INT8 percentile observer clips the wide channel that
    ONNX Runtime's min-max range keeps, so the layer min-max leaves degraded is not degraded here."""
    need("onnx_ppq_outlier")
    a, details = onnx_runs["onnx_ppq_outlier"]
    assert a.report.toolchain == ONNX_PPQ and "ppq_style" not in a.report.manifest["extra"]
    assert a.report.manifest["extra"]["quantization_config"]["platform"] == "TRT_INT8"
    assert details["pairing"]["name_pairing_agrees"] <= 1  # PPQ renames every tensor but the graph input
    assert a.thresholds.quantize_error["snr"] == 0.1 and a.thresholds.quantize_error["cs"] == 0.99
    assert a.degraded == []
    if "onnx_ort_outlier" in onnx_runs:
        ort = onnx_runs["onnx_ort_outlier"][0]
        assert "/mix_conv/Conv" in ort.degraded
        ppq_out, ort_out = a.report.output_metrics["val"], ort.report.output_metrics["val"]
        assert ppq_out["mse"] < ort_out["mse"]


def test_tab_routes_give_the_same_verdicts(demo_api, onnx_runs):
    """The HTTP routes (what the panel reads) on the ONNX scenarios: the same degraded layers and judges."""
    ids = demo_api.report_ids()
    for name, (a, _) in onnx_runs.items():
        rid = ids["%s/xquant_report" % name]
        s = demo_api.json("report", report=rid)
        assert s["degraded_layers"] == a.degraded, name
        got = sorted((v["judge"], tuple(v["layers"])) for v in demo_api.json("verdicts", report=rid)["verdicts"])
        assert got == sorted((v.judge, tuple(v.layers)) for v in a.verdicts), name


# --------------------------------------------------------------------------------------------------
# An MCT report and an ONNX report of the same model, compared
# --------------------------------------------------------------------------------------------------
def test_module_keys_of_onnx_and_mct_names():
    from types import SimpleNamespace

    from tb_xquant_plugin.judges.compare import _mct_match, module_key

    onnx_r, mct_r = SimpleNamespace(toolchain=ONNX_ORT), SimpleNamespace(toolchain="mct-pytorch")
    assert module_key(onnx_r, "/blocks/0/conv/Conv") == "blocks_0_conv"
    assert module_key(onnx_r, "/project_conv/Conv:out1") is None  # a second compare point of the node
    assert module_key(onnx_r, "/Concat") == "cat" and module_key(onnx_r, "/Add_1") == "add_1"
    assert module_key(onnx_r, "input") is None and module_key(onnx_r, "PPQ_Operation_3") is None
    assert module_key(onnx_r, "/Conv") is None  # a top-level op that is not a torch function
    assert module_key(mct_r, "blocks_0_conv") == "blocks_0_conv"
    keys = {"stem": "/stem/Conv", "stem_conv": "/stem_conv/Conv", "head": "/head/Gemm"}
    assert _mct_match("stem_conv_bn", keys) == "stem_conv"  # BN folded: the longest key it extends
    assert _mct_match("head", keys) == "head" and _mct_match("mix_conv_bn", keys) is None


def test_compare_pairs_an_mct_report_with_the_onnx_report_of_the_same_model(demo_api, scenarios):
    """GET compare on MCT's 'clean' report and onnx_ort_mct_clean (the same ConvNet, same weights, exported to ONNX
    and quantized by ONNX Runtime): the layers pair by module key although every name differs."""
    need("onnx_ort_mct_clean")
    ids = demo_api.report_ids()
    mct, onnx_rid = ids["clean/xquant_report"], ids["onnx_ort_mct_clean/xquant_report"]
    mct_layers = list(scenarios["clean"].quant_report["intermediate_similarity_metrics_val"])
    assert all(not n.startswith("/") for n in mct_layers)
    c = demo_api.json("compare", a=mct, b=onnx_rid)
    p = c["pairing"]
    assert p["method"] == "module key" and p["paired"] == len(mct_layers) == 4 and p["only_a"] == []
    assert set(p["only_b"]) <= {"input", "/pool/GlobalAveragePool", "/Flatten"}  # ops MCT reports no metrics for
    paired = [r for r in c["layers"] if r["name_a"] and r["name_b"]]
    assert {(r["name_a"], r["name_b"]) for r in paired} == {
        ("stem_conv_bn", "/stem_conv/Conv"), ("block1_conv_bn", "/block1_conv/Conv"),
        ("block2_conv_bn", "/block2_conv/Conv"), ("head", "/head/Gemm")}
    for r in paired:
        assert r["name"] == r["name_b"]  # drawn on B's graph
        assert r["status"] in ("improved", "worse", "unchanged") and r["key"]
        assert r["delta"] and all(isinstance(v, float) and math.isfinite(v) for v in r["delta"].values()), r
    assert set(c["metrics"]) == {"mse", "cs", "sqnr"}  # the metrics both have
    assert any("before its activation" in n and "/stem_conv/Conv" in n for n in p["notes"])
    # the other way round: the same pairs, B is the MCT report
    back = demo_api.json("compare", a=onnx_rid, b=mct)
    assert back["pairing"]["paired"] == 4 and set(back["pairing"]["only_a"]) == set(p["only_b"])
    assert {r["name"] for r in back["layers"] if r["name_a"] and r["name_b"]} == set(mct_layers)
    # reports of one family still pair by name
    same = demo_api.json("compare", a=ids["onnx_quark_outlier/xquant_report"], b=ids["onnx_ort_outlier/xquant_report"])
    assert same["pairing"]["method"] == "name" and same["pairing"]["only_a"] == [] and same["pairing"]["notes"] == []
    assert all(r["key"] is None and r["name_a"] == r["name_b"] == r["name"] for r in same["layers"])
