"""Detection and judges on real MCT 2.6.1 output, checked against MCT's own files.

Expectations are derived from what MCT wrote (quant_report.json, troubleshoot_report.json,
the raw histograms in the XQuant event files) and the manifest's XQuantConfig thresholds,
never copied from an earlier run."""
from __future__ import annotations

import glob
import math
import os
import re

import numpy as np
import pytest

from tb_xquant_plugin.model import verdict as V
from tb_xquant_plugin.judges.detection import detect
from tb_xquant_plugin.model.names import resolve_name
from tb_xquant_plugin.judges.outlier import zscore_histogram
from tb_xquant_plugin.judges.run import analyse
from tb_xquant_plugin.model.report import Layer, Report
from tb_xquant_plugin.model.thresholds import Thresholds
from mct_test_utils import stage_event_files, stage_nodes

# The demo scenarios (demo/generate.py); the `scenarios` fixture of conftest.py loads each one.
SCENARIOS = ("clean", "outlier", "outlier_fixed", "shift_negative", "unbalanced_concat", "mixed_precision",
             "majority_degraded")


# --------------------------------------------------------------------------------------------
# Independent re-implementations of MCT 2.6.1
# --------------------------------------------------------------------------------------------
def mct_judges_ran(sc) -> bool:
    """core_report_generator_troubleshoot: judges run when ratio < threshold_degrade_layer_ratio."""
    n = len(sc.quant_report["intermediate_similarity_metrics_repr"])
    return len(sc.mct_degraded) / n < sc.xquant_config["threshold_degrade_layer_ratio"]


def mct_compute_zscore(bins: np.ndarray, counts: np.ndarray):
    """judge_troubleshoot_utils._compute_zscore after ``bins = bins[:-1]`` (what the event file holds)."""
    mu = np.sum(bins * counts) / np.sum(counts)
    sigma = np.sqrt(np.sum(np.power(bins - mu, 2.0) * counts) / np.sum(counts))
    return np.abs(bins - mu) / sigma, mu, sigma


def raw_event_histograms(report_dir) -> dict:
    """tag -> (bucket_limit, bucket) exactly as MCT wrote the HistogramProto (no TensorBoard migration)."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2

    out = {}
    for path in sorted(glob.glob(os.path.join(str(report_dir), "xquant", "*tfevents*"))):
        for raw in RawEventFileLoader(path).Load():
            ev = event_pb2.Event.FromString(raw)
            for v in ev.summary.value:
                if v.HasField("histo"):
                    out[v.tag] = (np.asarray(v.histo.bucket_limit, dtype=np.float64),
                                  np.asarray(v.histo.bucket, dtype=np.float64))
    return out


def raw_histogram_extent(report_dir) -> dict:
    """tag -> (min, max) of each HistogramProto MCT wrote into the XQuant event files."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2

    out = {}
    for path in sorted(glob.glob(os.path.join(str(report_dir), "xquant", "*tfevents*"))):
        for raw in RawEventFileLoader(path).Load():
            for v in event_pb2.Event.FromString(raw).summary.value:
                if v.HasField("histo"):
                    out[v.tag] = (float(v.histo.min), float(v.histo.max))
    return out


def stage_graph(sc, stage: str) -> dict:
    """short node name -> NodeDef of one MCT stage graph, read from the stage-log folder the manifest names
    (``<report dir>/<stage_logs>/<stage>/events...``) without the plugin's readers."""
    root = os.path.normpath(os.path.join(str(sc.dir), sc.manifest["stage_logs"]))
    paths = stage_event_files(os.path.join(root, stage))
    assert paths, "no %s stage log under %s" % (stage, root)
    return stage_nodes(paths)


def stage_activation_threshold(nodes: dict, name: str):
    """(threshold, signed) MCT chose for a node's activation, from its ``<name>.activation`` stage-graph node."""
    text = nodes[name + ".activation"].attr["activation_quantization_params"].s.decode()
    thr = re.search(r"'threshold':\s*(?:np\.float\d+\()?([-+0-9.eE]+)", text)
    signed = re.search(r"'is_signed':\s*(?:np\.)?(True|False)", text)
    assert thr and signed, text
    return float(thr.group(1)), signed.group(1) == "True"


def verdicts(analysis, judge, source=None):
    return [v for v in analysis.verdicts if v.judge == judge and (source is None or v.source == source)]


def mct_layers(ts: dict, judge: str) -> list:
    out = []
    for item in ts.get(judge, []):
        out.extend([item] if isinstance(item, str) else list(item[:1] if judge == V.OUTLIER_REMOVAL else item[:2]))
    return out


@pytest.fixture(scope="session")
def analyses(demo_reports):
    return {name: analyse(r, r.defaults) for name, r in demo_reports.items()}


# --------------------------------------------------------------------------------------------
# Every scenario: detection == MCT's rule, judges agree with MCT's troubleshoot_report.json
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SCENARIOS)
def test_thresholds_come_from_manifest(name, scenarios, demo_reports):
    cfg = scenarios[name].xquant_config
    th = demo_reports[name].defaults
    assert dict(th.quantize_error) == {k: float(v) for k, v in cfg["threshold_quantize_error"].items()}
    assert dict(th.detect_under) == {k: bool(v) for k, v in cfg["is_detect_under_threshold_quantize_error"].items()}
    assert th.degrade_layer_ratio == cfg["threshold_degrade_layer_ratio"]
    assert th.zscore_outlier_removal == cfg["threshold_zscore_outlier_removal"]
    assert th.ratio_unbalanced_concatenation == cfg["threshold_ratio_unbalanced_concatenation"]
    assert (th.bitwidth_mixed_precision_with_model_output_loss_objective
            == cfg["threshold_bitwidth_mixed_precision_with_model_output_loss_objective"])


@pytest.mark.parametrize("name", SCENARIOS)
def test_degraded_set_matches_mct_rule(name, scenarios, demo_reports, analyses):
    sc = scenarios[name]
    expected = sc.mct_degraded
    a = analyses[name]
    assert a.degraded == expected  # same layers, in MCT's order
    # layer order and names are quant_report.json's
    assert [l.name for l in demo_reports[name].layers] == list(sc.quant_report["intermediate_similarity_metrics_repr"])
    n = len(sc.quant_report["intermediate_similarity_metrics_repr"])
    assert a.detection.ratio == pytest.approx(len(expected) / n)
    assert a.detection.judges_skipped == (not mct_judges_ran(sc))
    # flags: one per metric/dataset that has a threshold, true exactly when MCT's comparison is
    cfg = sc.xquant_config
    for layer in demo_reports[name].layers:
        for metric, thr in cfg["threshold_quantize_error"].items():
            for ds in ("repr", "val"):
                v = sc.quant_report["intermediate_similarity_metrics_" + ds][layer.name][metric]
                under = cfg["is_detect_under_threshold_quantize_error"].get(metric, False)
                assert a.detection.flags[layer.name]["%s.%s" % (metric, ds)] == (v <= thr if under else v >= thr)


@pytest.mark.parametrize("name", SCENARIOS)
def test_mct_verdicts_are_subset_of_ours(name, scenarios, analyses):
    sc = scenarios[name]
    a = analyses[name]
    ts = sc.troubleshoot
    assert ts is not None, "MCT's troubleshoot variant always writes troubleshoot_report.json"
    if ts:
        assert not a.detection.judges_skipped, "MCT ran its judges, so must we"
    for judge in ts:
        # MCT's names, as the report names them (module paths such as 'stem.0' map to 'stem_0_bn')
        mct = [resolve_name(a.report, l) or l for l in mct_layers(ts, judge)]
        ours = {l for v in verdicts(a, judge) for l in v.layers}
        assert set(mct) <= ours, (judge, mct, ours)
        loaded = {l for v in verdicts(a, judge, "mct") for l in v.layers}
        assert set(mct) == loaded
    # every MCT judge that inspects degraded layers only names degraded layers
    for item in ts.get(V.OUTLIER_REMOVAL, []):
        assert item[0] in a.degraded
    # and the judges we compute on MCT's judgeable causes name what MCT names
    for judge in (V.OUTLIER_REMOVAL, V.SHIFT_NEGATIVE_ACTIVATION, V.MIXED_PRECISION):
        computed = {l for v in verdicts(a, judge, "computed") for l in v.layers}
        assert set(mct_layers(ts, judge)) <= computed, judge
    if a.detection.judges_skipped:
        assert not [v for v in a.verdicts if v.source == "computed"]


def test_majority_degraded_skips_judges(scenarios, analyses, mct_rule):
    sc = scenarios["majority_degraded"]
    cfg = sc.xquant_config
    expected = mct_rule(sc.quant_report, cfg)
    n = len(sc.quant_report["intermediate_similarity_metrics_repr"])
    assert len(expected) / n >= cfg["threshold_degrade_layer_ratio"]  # the scenario really is over the limit
    assert sc.troubleshoot == {}  # MCT skipped its judges
    a = analyses["majority_degraded"]
    assert a.detection.judges_skipped
    reasons = [g.numbers["reason"] for g in a.general]
    assert reasons == [V.DEGRADED_RATIO_OVER_LIMIT]
    g = a.general[0]
    assert g.numbers["ratio"] == pytest.approx(len(expected) / n)
    assert g.numbers["limit"] == cfg["threshold_degrade_layer_ratio"]
    assert g.manual == "representative-dataset-mismatch"


def test_clean_has_no_degraded_layers(scenarios, analyses):
    sc = scenarios["clean"]
    assert sc.mct_degraded == []
    a = analyses["clean"]
    assert a.degraded == []
    assert [g.numbers["reason"] for g in a.general] == [V.NO_DEGRADED_LAYERS]
    assert not verdicts(a, V.OUTLIER_REMOVAL)


def test_outlier_verdict_on_mct_layer(scenarios, demo_reports, analyses):
    sc = scenarios["outlier"]
    mct_items = sc.troubleshoot[V.OUTLIER_REMOVAL]
    assert mct_items, "the outlier scenario must make MCT report outliers"
    z_thr = sc.xquant_config["threshold_zscore_outlier_removal"]
    a = analyses["outlier"]
    computed = {v.numbers["layer"]: v for v in verdicts(a, V.OUTLIER_REMOVAL, "computed")}
    raw = raw_event_histograms(sc.dir)
    for item in mct_items:
        layer = item[0]
        assert layer in computed
        n = computed[layer].numbers
        assert n["threshold"] == z_thr
        assert n["max_zscore"] >= z_thr
        assert n["z_threshold"] < n["max_zscore"]
        assert 0 < n["outlier_fraction"] < 1
        # MCT's own z-score on its own histogram agrees that this layer has outliers
        z, _, _ = mct_compute_zscore(*raw[layer])
        assert np.any(z >= z_thr)
        assert n["max_zscore"] == pytest.approx(float(z.max()), rel=1e-5)
        # the snippet sets the proposed z_threshold
        assert "z_threshold=%r" % n["z_threshold"] in computed[layer].snippet
        # MCT's histogram PNG is an artifact of the report
        png = os.path.basename(item[1])
        arts = [x for x in demo_reports["outlier"].artifacts if x.kind == "outlier_histogram"]
        assert png in [x.name for x in arts]
        assert [x.layer for x in arts if x.name == png] == [layer]
    # degraded layers without a z-score over the threshold get no computed verdict
    for name in a.degraded:
        if name in raw:
            z, _, _ = mct_compute_zscore(*raw[name])
            assert (name in computed) == bool(np.any(z >= z_thr)), name


def test_outlier_fixed_has_no_degraded_layer(scenarios, demo_reports, analyses):
    before, after = scenarios["outlier"], scenarios["outlier_fixed"]
    cm = after.manifest["extra"]["countermeasure"]
    (v,) = verdicts(analyses["outlier"], V.OUTLIER_REMOVAL, "computed")
    assert cm["z_threshold"] == pytest.approx(v.numbers["z_threshold"])
    # the verdict sets the z_threshold on the outlier layers only (a global one would clip other layers' normal
    # tails), and MCT's stage graph of the fixed run recorded it for those activations and no other
    assert v.countermeasure["kind"] == "layer_activation"
    zs = {k: q.z_threshold for k, q in demo_reports["outlier_fixed"].quant.items() if q.z_threshold is not None}
    assert {k for k, z in zs.items() if math.isfinite(z)} == set(v.countermeasure["layers"])
    assert all(zs[k] == pytest.approx(cm["z_threshold"], rel=1e-6) for k in v.countermeasure["layers"])
    assert {q.z_threshold for q in demo_reports["outlier"].quant.values()} == {math.inf}
    # the README's claim: with the proposed z_threshold MCT reports no degraded layer at all (the outlier
    # run had some), so its troubleshooting has nothing to judge, and neither do we
    assert before.mct_degraded
    assert after.mct_degraded == []
    assert after.troubleshoot == {}
    fixed = analyses["outlier_fixed"]
    assert fixed.degraded == []
    assert not [v for v in fixed.verdicts if v.judge != V.GENERAL]
    assert [g.numbers["reason"] for g in fixed.general] == [V.NO_DEGRADED_LAYERS]


def test_shift_negative_covers_mct_list(scenarios, demo_reports, analyses):
    sc = scenarios["shift_negative"]
    mct = sc.troubleshoot[V.SHIFT_NEGATIVE_ACTIVATION]
    assert mct
    a = analyses["shift_negative"]
    computed = verdicts(a, V.SHIFT_NEGATIVE_ACTIVATION, "computed")
    assert set(mct) <= {v.numbers["layer"] for v in computed}
    raw = raw_event_histograms(sc.dir)
    for v in computed:
        if v.numbers["layer"] in mct:
            assert v.numbers["in_mct_list"]
        # the evidence is the logged float histogram's minimum
        layer = v.numbers["layer"]
        bins, _counts = raw[layer]
        assert v.numbers["min_value"] < 0
        assert v.numbers["min_value"] == pytest.approx(float(bins.min()), rel=1e-5)  # HistogramProto.min
        # the demo turned the correction off; the stage graph says so
        assert v.numbers["shift_negative_activation_correction"] is False


# The five activation types the README says the shift_negative scenario uses, as MCT's stage graph names
# their ops (module classes, or the function for a functional call such as F.elu).
SHIFT_NEGATIVE_TYPES = {"silu", "gelu", "hardswish", "elu", "prelu"}


def test_shift_negative_lists_all_five_activation_types(scenarios, analyses):
    sc = scenarios["shift_negative"]
    mct = sc.troubleshoot[V.SHIFT_NEGATIVE_ACTIVATION]
    # the type of each layer MCT listed, from MCT's own initial graph of the float model
    ops = {n: node.op for n, node in stage_graph(sc, "initial_graph").items()}
    mct_types = {layer: ops[layer].lower() for layer in mct}
    assert set(mct_types.values()) == SHIFT_NEGATIVE_TYPES, mct_types
    assert len(mct) == len(SHIFT_NEGATIVE_TYPES)  # one layer of each
    # our computed judge lists the same layers, each with the type MCT's graph gives it
    computed = {v.numbers["layer"]: v for v in verdicts(analyses["shift_negative"], V.SHIFT_NEGATIVE_ACTIVATION,
                                                        "computed")}
    assert set(computed) == set(mct)
    assert {layer: v.numbers["activation"].lower() for layer, v in computed.items()} == mct_types
    assert all(v.numbers["in_mct_list"] for v in computed.values())


def test_mixed_precision_matches_mct(scenarios, analyses):
    sc = scenarios["mixed_precision"]
    bits = sc.xquant_config["threshold_bitwidth_mixed_precision_with_model_output_loss_objective"]
    mct = sc.troubleshoot[V.MIXED_PRECISION]
    computed = verdicts(analyses["mixed_precision"], V.MIXED_PRECISION, "computed")
    assert [v.layers for v in computed] == [mct]
    n = computed[0].numbers
    assert n["weights_nbits"] <= bits
    assert n["weights_nbits"] == sc.manifest["bit_widths"]["last_layer"]["weights_nbits"]
    assert n["weights_memory"] == sc.manifest["extra"]["resource_utilization"]["weights_memory"]
    # no mixed-precision verdict where MCT gave none and the last layer keeps its bits
    for other in ("clean", "outlier", "shift_negative"):
        assert not verdicts(analyses[other], V.MIXED_PRECISION)


def test_unbalanced_concat_mct_verdict_loaded(scenarios, analyses):
    sc = scenarios["unbalanced_concat"]
    items = sc.troubleshoot[V.UNBALANCED_CONCATENATION]
    assert items
    a = analyses["unbalanced_concat"]
    loaded = verdicts(a, V.UNBALANCED_CONCATENATION, "mct")
    assert len(loaded) == len(items)
    for v, item in zip(loaded, items):
        assert v.source == "mct"
        assert v.numbers["first_layer"] == item[0] and v.numbers["second_layer"] == item[1]
        # MCT prints torch module paths ('stem.0'); the verdict names the report's layer for it
        mapped = v.numbers["first_layer_in_report"]
        assert mapped in a.report.layer_by_name and mapped.startswith(item[0].replace(".", "_"))
        assert v.layers[0] == mapped
        assert v.numbers["scale"] == pytest.approx(float(re.findall(r"[-+0-9.eE]+$", item[2])[0]))
        assert v.manual == "unbalanced-concatenation"
        # MCT judged a degraded '<module>_bn' / '_collapsed' / 'bn_' layer derived from the first module
        base = item[0].replace(".", "_")
        assert {base + "_bn", base + "_collapsed", "bn_" + base} & set(a.degraded)


def test_unbalanced_concat_computed_verdict_fires(scenarios, demo_reports, analyses):
    """The graph-based judge flags the demo's concatenation, at the ratio of its inputs' ranges measured here
    from MCT's own files: the float histograms of the XQuant events and the thresholds of the stage graph."""
    sc = scenarios["unbalanced_concat"]
    limit = sc.xquant_config["threshold_ratio_unbalanced_concatenation"]
    nodes = stage_graph(sc, "after_statistics_correction")
    cats = [n for n in nodes.values() if n.op == "cat"]
    assert len(cats) == 1, [n.name for n in cats]
    cat = cats[0]
    # its data inputs ('.../left_1.activation:0'), without the '.weights' helper input
    producers = [i.split(":")[0].rsplit("/", 1)[-1] for i in cat.input]
    producers = [p[: -len(".activation")] if p.endswith(".activation") else p
                 for p in producers if not p.endswith(".weights")]
    assert len(producers) == 2, producers
    extent = raw_histogram_extent(sc.dir)
    hist_width = {p: extent[p][1] - extent[p][0] for p in producers}
    thr_width = {}
    for p in producers:
        t, signed = stage_activation_threshold(nodes, p)
        thr_width[p] = 2 * t if signed else t
    hist_ratio = max(hist_width.values()) / min(hist_width.values())
    thr_ratio = max(thr_width.values()) / min(thr_width.values())
    # the demo is built with a margin: unbalanced both in the float data and after MCT chose its thresholds
    assert thr_ratio >= limit
    assert hist_ratio >= 2 * limit, hist_ratio

    a = analyses["unbalanced_concat"]
    computed = verdicts(a, V.UNBALANCED_CONCATENATION, "computed")
    assert len(computed) == 1, [v.numbers for v in computed]
    n = computed[0].numbers
    assert n["node"] == cat.name.rsplit("/", 1)[-1] and n["kind"] == "concatenation"
    assert n["threshold"] == limit
    # the histograms take precedence over thresholds; TensorBoard keeps them as float32
    assert {i["name"]: i["from"] for i in n["inputs"]} == {p: "histogram" for p in producers}
    for i in n["inputs"]:
        assert i["width"] == pytest.approx(hist_width[i["name"]], rel=1e-5)
    assert n["ratio"] == pytest.approx(hist_ratio, rel=1e-5)
    assert n["scale"] == pytest.approx(hist_ratio, rel=1e-5)
    assert n["scale_input"] == min(hist_width, key=hist_width.get)
    assert set(computed[0].layers) == {n["node"], *producers}
    # MCT's own name-heuristic verdict is still there beside it
    assert verdicts(a, V.UNBALANCED_CONCATENATION, "mct")
    # and the verdict follows the ratio threshold
    r = demo_reports["unbalanced_concat"]
    assert not verdicts(analyse(r, r.defaults.with_overrides({"concat": str(hist_ratio * 1.01)})),
                        V.UNBALANCED_CONCATENATION, "computed")
    assert verdicts(analyse(r, r.defaults.with_overrides({"concat": str(hist_ratio * 0.99)})),
                    V.UNBALANCED_CONCATENATION, "computed")


# --------------------------------------------------------------------------------------------
# Threshold overrides
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["clean", "outlier", "shift_negative"])
def test_tiny_mse_threshold_degrades_more(name, scenarios, demo_reports, mct_rule):
    sc = scenarios[name]
    r = demo_reports[name]
    th = r.defaults.with_overrides({"thr.mse": "1e-12"})
    cfg = dict(sc.xquant_config, threshold_quantize_error=dict(sc.xquant_config["threshold_quantize_error"], mse=1e-12))
    a = analyse(r, th)
    assert a.degraded == mct_rule(sc.quant_report, cfg)
    assert len(a.degraded) > len(analyse(r).degraded)


def test_ratio_zero_skips_judges(demo_reports):
    r = demo_reports["outlier"]
    a = analyse(r, r.defaults.with_overrides({"ratio": "0"}))
    assert a.detection.judges_skipped
    assert not [v for v in a.verdicts if v.source == "computed"]
    assert [g.numbers["reason"] for g in a.general] == [V.DEGRADED_RATIO_OVER_LIMIT]
    # MCT's own verdicts are still shown
    assert verdicts(a, V.OUTLIER_REMOVAL, "mct")


def test_z_threshold_override_controls_outlier_judge(demo_reports):
    r = demo_reports["outlier"]
    base = verdicts(analyse(r), V.OUTLIER_REMOVAL, "computed")
    assert base
    top = max(v.numbers["max_zscore"] for v in base)
    assert not verdicts(analyse(r, r.defaults.with_overrides({"z": str(top + 1)})), V.OUTLIER_REMOVAL, "computed")
    assert verdicts(analyse(r, r.defaults.with_overrides({"z": str(top - 0.5)})), V.OUTLIER_REMOVAL, "computed")


def test_bits_override_controls_mixed_precision(scenarios, demo_reports):
    r = demo_reports["mixed_precision"]
    w = scenarios["mixed_precision"].manifest["bit_widths"]["last_layer"]["weights_nbits"]
    assert not verdicts(analyse(r, r.defaults.with_overrides({"bits": str(w - 1)})), V.MIXED_PRECISION, "computed")
    assert verdicts(analyse(r, r.defaults.with_overrides({"bits": str(w)})), V.MIXED_PRECISION, "computed")


def test_under_override_flips_direction(scenarios, demo_reports, mct_rule):
    sc = scenarios["clean"]
    r = demo_reports["clean"]
    cfg = sc.xquant_config
    flipped = dict(cfg, is_detect_under_threshold_quantize_error=dict(
        cfg["is_detect_under_threshold_quantize_error"], mse=True))
    a = analyse(r, r.defaults.with_overrides({"under.mse": "1"}))
    assert a.degraded == mct_rule(sc.quant_report, flipped)
    assert a.degraded  # every small mse is now "under" 0.1


@pytest.mark.parametrize("bad", [{"thr.mse": "abc"}, {"ratio": "nan"}, {"under.cs": "maybe"}, {"thr.": "1"}])
def test_bad_override_raises_value_error(bad):
    with pytest.raises(ValueError):
        Thresholds.defaults().with_overrides(bad)


# --------------------------------------------------------------------------------------------
# z-score against MCT's _compute_zscore on the demo's own histograms
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["clean", "outlier", "shift_negative", "unbalanced_concat"])
def test_zscore_matches_mct_compute_zscore(name, scenarios, demo_reports):
    raw = raw_event_histograms(scenarios[name].dir)
    report = demo_reports[name]
    # MCT's tags (its node names); report.histograms holds the same arrays under the quantized graph's names
    assert raw and set(raw) == set(report.mct_histograms)
    assert {id(h) for h in report.histograms.values()} <= {id(h) for h in report.mct_histograms.values()}
    for tag, (bins, counts) in raw.items():
        z, mu, sigma = mct_compute_zscore(bins, counts)
        zh = zscore_histogram(report.mct_histograms[tag])
        assert zh is not None, tag
        # TensorBoard stores float32 [left, right, count] buckets: compare at float32 precision
        assert zh.mu == pytest.approx(mu, rel=1e-5, abs=1e-6 * sigma)
        assert zh.sigma == pytest.approx(sigma, rel=1e-5)
        assert zh.max_zscore == pytest.approx(float(z.max()), rel=1e-5)
        nz = counts > 0
        assert np.allclose(np.sort(zh.zscore[zh.counts > 0]), np.sort(z[nz]), rtol=1e-4, atol=1e-5)
        assert zh.counts.sum() == pytest.approx(counts.sum(), rel=1e-5)
        # the same verdict MCT's judge would reach, at the manifest's z threshold
        zt = scenarios[name].xquant_config["threshold_zscore_outlier_removal"]
        if abs(float(z.max()) - zt) > 1e-3:
            assert bool(np.any(zh.zscore >= zt)) == bool(np.any(z >= zt))


def test_zscore_crafted():
    bins = np.array([0.0, 1.0, 2.0, 3.0, 10.0])
    counts = np.array([5.0, 10.0, 5.0, 2.0, 1.0])
    buckets = np.stack([bins - 0.5, bins, counts], axis=1)
    z, mu, sigma = mct_compute_zscore(bins, counts)
    zh = zscore_histogram(buckets)
    assert zh.mu == pytest.approx(mu) and zh.sigma == pytest.approx(sigma)
    assert np.allclose(zh.zscore, z)
    # degenerate inputs: no crash, no verdict material
    assert zscore_histogram(None) is None
    assert zscore_histogram(np.zeros((0, 3))) is None
    assert zscore_histogram(np.array([[0.0, 1.0, 0.0]])) is None  # zero counts
    one = zscore_histogram(np.array([[0.0, 1.0, 7.0]]))  # one bucket: sigma 0
    assert one is not None and one.sigma == 0 and one.max_zscore == 0 and one.suggested_z_threshold is None
    assert zscore_histogram(np.array([1.0, 2.0, 3.0])) is None  # wrong shape
    nan = zscore_histogram(np.array([[0, 1, 3], [1, np.nan, 2], [2, 3, np.inf]], dtype=float))
    assert nan is not None and nan.counts.tolist() == [3.0]


# --------------------------------------------------------------------------------------------
# Detection semantics on a hand-built Report
# --------------------------------------------------------------------------------------------
def make_report(metrics_by_layer: dict, metrics=None) -> Report:
    layers = [Layer(name, i, {"repr": dict(m.get("repr", {})), "val": dict(m.get("val", {}))})
              for i, (name, m) in enumerate(metrics_by_layer.items())]
    if metrics is None:
        metrics = []
        for l in layers:
            for ds in ("repr", "val"):
                for k in l.metrics[ds]:
                    if k not in metrics:
                        metrics.append(k)
    return Report(id="rtest", rel="t", dir="/nonexistent", manifest=None, defaults=Thresholds.defaults(),
                  metrics=metrics, layers=layers, output_metrics={"repr": {}, "val": {}}, nodes=[], node_alias={},
                  histograms={}, quant={}, stage_run=None, mct_troubleshoot=None, artifacts=[], problems=[])


def th(qe, under, ratio=0.5):
    return Thresholds(qe, under, ratio)


def test_detect_under_and_above():
    r = make_report({
        "a": {"repr": {"mse": 0.1, "cs": 0.99}},   # mse == threshold: degraded (>=)
        "b": {"repr": {"mse": 0.0999, "cs": 0.5}},  # cs <= 0.5: degraded (under)
        "c": {"repr": {"mse": 0.05, "cs": 0.51}},
        "d": {"val": {"mse": 3.0}},                 # val only
    })
    d = detect(r, th({"mse": 0.1, "cs": 0.5}, {"mse": False, "cs": True}, ratio=1.0))
    assert d.degraded == ["a", "d", "b"]  # MCT's order: metric, then dataset, then layer
    assert d.flags["a"] == {"mse.repr": True, "cs.repr": False}
    assert d.flags["b"]["cs.repr"] is True
    assert d.flags["d"] == {"mse.val": True}
    assert d.ratio == 0.75 and not d.judges_skipped


def test_detect_nan_never_degrades():
    r = make_report({"a": {"repr": {"mse": math.nan, "cs": math.nan}}, "b": {"repr": {"mse": 0.0, "cs": 1.0}}})
    for under in (True, False):
        d = detect(r, th({"mse": 0.0, "cs": 1.0}, {"mse": under, "cs": under}, ratio=1.0))
        assert "a" not in d.degraded
        assert d.flags["a"] == {"mse.repr": False, "cs.repr": False}
        assert d.degraded == ["b"]


def test_metric_without_threshold_is_skipped():
    r = make_report({"a": {"repr": {"mse": 0.0, "custom": 1e9}}})
    d = detect(r, th({"mse": 0.1}, {"mse": False}))
    assert d.degraded == [] and d.skipped_metrics == ["custom"]
    assert "custom.repr" not in d.flags["a"]


def test_missing_direction_means_above():
    r = make_report({"a": {"repr": {"custom": 5.0}}, "b": {"repr": {"custom": 1.0}}})
    d = detect(r, th({"custom": 2.0}, {}, ratio=1.0))
    assert d.degraded == ["a"]


def test_ratio_limit_and_empty_report():
    r = make_report({"a": {"repr": {"mse": 1.0}}, "b": {"repr": {"mse": 0.0}}})
    assert detect(r, th({"mse": 0.5}, {}, ratio=0.5)).judges_skipped  # 1/2 >= 0.5
    assert not detect(r, th({"mse": 0.5}, {}, ratio=0.51)).judges_skipped
    empty = make_report({})
    d = detect(empty, Thresholds.defaults())
    assert d.degraded == [] and d.ratio == 0 and not d.judges_skipped
    a = analyse(empty)
    assert a.general == [] and a.verdicts == []


@pytest.mark.parametrize("name", SCENARIOS)
def test_no_judge_applies_only_when_mct_found_nothing_either(name, scenarios, analyses):
    """"Degraded layers but no judge applies" must not sit next to a verdict MCT itself gave."""
    reasons = [g.numbers["reason"] for g in analyses[name].general]
    if scenarios[name].troubleshoot:
        assert V.NO_JUDGE_APPLIES not in reasons
