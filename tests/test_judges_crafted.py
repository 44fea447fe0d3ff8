"""The computed judges and the before/after comparison on small logdirs crafted here, in MCT 2.6.1's
on-disk format (real TensorBoard event files with the GraphDefs and legacy histograms MCT writes, the
report JSON files, the manifest), so each number a verdict carries can be worked out by hand.

Every expected number is computed in the test from the crafted inputs (histogram edges as float32, as
TensorBoard stores them); nothing needs torch or MCT."""
from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
import pytest

from tb_xquant_plugin.judges import concat
from tb_xquant_plugin.model import verdict as V
from tb_xquant_plugin.judges.run import analyse
from tb_xquant_plugin.mct_run import write_manifest
from tb_xquant_plugin.producers.mct_pytorch import build_report
from tb_xquant_plugin.readers.events import LocalEventSource
from tb_xquant_plugin.model.report import QuantParams
from tb_xquant_plugin.api import views

GOOD = {"mse": 0.001, "cs": 0.999, "sqnr": 900.0}
BAD = {"mse": 0.5, "cs": 0.6, "sqnr": 0.05}
THRESHOLDS = {
    "threshold_quantize_error": {"mse": 0.1, "cs": 0.1, "sqnr": 0.1},
    "is_detect_under_threshold_quantize_error": {"mse": False, "cs": True, "sqnr": True},
    "threshold_degrade_layer_ratio": 0.5,
    "threshold_zscore_outlier_removal": 5.0,
    "threshold_ratio_unbalanced_concatenation": 16.0,
    "threshold_bitwidth_mixed_precision_with_model_output_loss_objective": 2,
}
STAGE = "after_activation_bias_correction"


# --------------------------------------------------------------------------------------------
# Writers
# --------------------------------------------------------------------------------------------
class N:
    """A node of a crafted graph: ``name`` (MCT's node name), ``op``, input names, and for a compare point
    (a layer MCT wraps: ``layer=True``) its metrics, written as the quantized graph's xquant_repr/val."""

    def __init__(self, name: str, op: str, inputs: Sequence[str] = (), layer: bool = False,
                 metrics: Optional[Dict[str, float]] = None):
        self.name, self.op, self.inputs, self.layer = name, op, list(inputs), layer
        self.metrics = dict(metrics or GOOD)


def _scoped(nodes: Sequence[N], graph: str, suffix=lambda n: "") -> Dict[str, str]:
    """MCT's node naming: Input/<n>, Output/<n> (no consumer), else <graph>/<Op>_<k>/<n>."""
    consumed = {i for n in nodes for i in n.inputs}
    counts: Dict[str, int] = {}
    out = {}
    for n in nodes:
        k = counts.get(n.op, 0)
        counts[n.op] = k + 1
        leaf = n.name + suffix(n)
        out[n.name] = ("Input/" + leaf if not n.inputs else "Output/" + leaf if n.name not in consumed
                       else "%s/%s_%d/%s" % (graph, n.op, k, leaf))
    return out


def graph_def(nodes: Sequence[N], graph: str = "PytorchModel", quantized: bool = True):
    """The quantized model's GraphDef as XQuant logs it (wrapped layers named <name>_layer, carrying metrics)."""
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    names = _scoped(nodes, graph, (lambda n: "_layer" if n.layer else "") if quantized else (lambda n: ""))
    g = GraphDef()
    for n in nodes:
        d = g.node.add(name=names[n.name], op=n.op)
        d.input.extend(names[i] + ":0" for i in n.inputs)
        if quantized and n.layer:
            d.attr["xquant_repr"].s = repr(n.metrics).encode()
            d.attr["xquant_val"].s = repr(n.metrics).encode()
    return g


def stage_graph_def(nodes: Sequence[N], quant: Dict[str, Dict[str, Any]], graph: str = "Net"):
    """An MCT stage graph: per node a main node, a ``.weights`` node and an ``.activation`` node carrying the
    quantization settings of ``quant[name]`` (threshold, signed, bits, z_threshold, shift-negative flag)."""
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    names = _scoped(nodes, graph)
    g = GraphDef()
    for n in nodes:
        q = quant.get(n.name, {})
        w = g.node.add(name=names[n.name] + ".weights", op="WeightsConfig")
        if "weights_nbits" in q:
            w.attr["weights_n_bits"].i = q["weights_nbits"]
        a = g.node.add(name=names[n.name] + ".activation", op="ActivationConfig")
        a.input.append(names[n.name] + ":0")
        a.attr["activation_n_bits"].i = q.get("bits", 8)
        if "threshold" in q:
            a.attr["activation_quantization_params"].s = (
                "{'threshold': np.float64(%r), 'is_signed': np.%s_}" % (q["threshold"], q.get("signed", False))).encode()
        a.attr["z_threshold"].f = q.get("z_threshold", float("inf"))
        a.attr["shift_negative_activation_correction"].b = q.get("snc", True)
        m = g.node.add(name=names[n.name], op=n.op)
        m.input.extend([names[i] + ".activation:0" for i in n.inputs] + [w.name + ":1"])
    return g


def write_events(folder: Path, graph=None, histograms: Optional[Dict[str, Tuple[float, float]]] = None) -> None:
    """An event file as MCT writes it: the GraphDef, then one legacy histogram per node (bucket_limit = bin left
    edges, min / max = the lowest / highest edge) spanning ``(low, high)``."""
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    folder.mkdir(parents=True, exist_ok=True)
    w = EventFileWriter(str(folder))
    if graph is not None:
        w.add_event(event_pb2.Event(wall_time=1.0, graph_def=graph.SerializeToString()))
    for tag, (lo, hi) in (histograms or {}).items():
        edges = np.linspace(lo, hi, 9)
        h = summary_pb2.HistogramProto(min=float(lo), max=float(hi), num=9.0, bucket_limit=edges.tolist(),
                                       bucket=[1.0] * 9)
        w.add_event(event_pb2.Event(wall_time=2.0, summary=summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, histo=h)])))
    w.close()


def float32_width(lo: float, hi: float) -> float:
    """A histogram range as the plugin reads it back: TensorBoard keeps float32 edges."""
    return float(np.float32(hi)) - float(np.float32(lo))


def write_run(root: Path, name: str, nodes: Sequence[N], *, histograms=None, quant=None, stage_nodes=None,
              output: Optional[Dict[str, float]] = None, manifest: Optional[Dict[str, Any]] = None,
              troubleshoot: Optional[Dict[str, Any]] = None, pairing_nodes: Optional[Sequence[N]] = None) -> Path:
    """One scenario folder ``root/name`` laid out as demo.generate writes it; returns the report dir.

    ``pairing_nodes``: the float graph MCT logs as its first stage graphs (initial_graph,
    after_graph_preparation, pre_statistics_collection_substitutions), which MCT's own
    unbalanced-concatenation judge pairs names in."""
    report_dir = root / name / "xquant_report"
    stage_root = root / name / "mct_logs" / "logs_01012025_000000" / "tensorboard_logs"
    write_events(report_dir / "xquant", graph_def(nodes), histograms)
    stage_list = stage_nodes if stage_nodes is not None else nodes
    write_events(stage_root / STAGE, stage_graph_def(stage_list, quant or {}))
    if pairing_nodes is not None:
        for stage in concat.MCT_STAGE_LOGS:
            write_events(stage_root / stage, graph_def(pairing_nodes, "Net", quantized=False))
    layers = {n.name: n.metrics for n in nodes if n.layer}
    out = dict(output or GOOD)
    qr = {"output_similarity_metrics_repr": out, "output_similarity_metrics_val": out,
          "intermediate_similarity_metrics_repr": layers, "intermediate_similarity_metrics_val": layers}
    (report_dir / "quant_report.json").write_text(json.dumps(qr, indent=4))
    if troubleshoot is not None:
        (report_dir / "troubleshoot_report.json").write_text(json.dumps(troubleshoot, indent=4))
    if manifest is not None:
        write_manifest(str(report_dir), thresholds=manifest.get("xquant_config", THRESHOLDS),
                       stage_logs_dir=str(stage_root), model_name=name, accuracy=manifest.get("accuracy"),
                       bit_widths=manifest.get("bit_widths"), extra=manifest.get("extra"))
    return report_dir


def load(root: Path, name: str):
    rel = "%s/xquant_report" % name
    return build_report(LocalEventSource(str(root)), str(root), rel, str(root / rel))


def of(a, judge: str, source: str = "computed") -> List[V.Verdict]:
    return [v for v in a.verdicts if v.judge == judge and v.source == source]


# --------------------------------------------------------------------------------------------
# Unbalanced concatenation: the graph's joins
# --------------------------------------------------------------------------------------------
def branches_model(cat_op: str = "cat") -> List[N]:
    """x -> stem -> (left_conv -> left_act, right_conv -> right_act) -> cat -> head."""
    return [
        N("x", "DummyPlaceHolder"),
        N("stem", "Conv2d", ["x"], layer=True),
        N("left_conv", "Conv2d", ["stem"], layer=True),
        N("right_conv", "Conv2d", ["stem"], layer=True),
        N("left_act", "ReLU", ["left_conv"]),
        N("right_act", "ReLU", ["right_conv"]),
        N(cat_op, cat_op, ["left_act", "right_act"]),
        N("head", "Linear", [cat_op], layer=True),
    ]


@pytest.mark.parametrize("right_high, fires", [(8.0, True), (7.99, False)])
def test_concat_fires_exactly_at_the_threshold(tmp_path, right_high, fires):
    left, right = (0.0, 0.5), (0.0, right_high)
    write_run(tmp_path, "m", branches_model(), histograms={"left_act": left, "right_act": right},
              manifest={})
    a = analyse(load(tmp_path, "m"))
    w_left, w_right = float32_width(*left), float32_width(*right)
    ratio = w_right / w_left
    assert (ratio >= 16.0) == fires  # 8 / 0.5 is exactly 16; 7.99 / 0.5 is under it
    (check,) = a.concat_checks
    assert check["node"] == "cat" and check["kind"] == "concatenation"
    assert check["ratio"] == pytest.approx(ratio, rel=1e-12) and check["scale"] == pytest.approx(ratio, rel=1e-12)
    assert check["scale_input"] == "left_act" and check["wide_input"] == "right_act"
    assert {i["name"]: i["width"] for i in check["inputs"]} == {"left_act": w_left, "right_act": w_right}
    assert all(i["from"] == "histogram" for i in check["inputs"])
    assert check["flagged"] is fires
    verdicts = of(a, V.UNBALANCED_CONCATENATION)
    if not fires:
        assert verdicts == []
        # the same join is flagged once the threshold comes down to its ratio
        lowered = analyse(a.report, a.thresholds.with_overrides({"concat": repr(ratio)}))
        assert [c["flagged"] for c in lowered.concat_checks] == [True]
        assert len(of(lowered, V.UNBALANCED_CONCATENATION)) == 1
        return
    (v,) = verdicts
    assert v.numbers["ratio"] == pytest.approx(ratio, rel=1e-12)
    assert v.numbers["scale"] == pytest.approx(ratio, rel=1e-12)
    assert v.numbers["scale_input"] == "left_act"
    assert v.numbers["threshold"] == 16.0
    assert v.layers == ["cat", "left_act", "right_act"]
    assert "SCALE = %.4g" % ratio in v.snippet
    # the JSON views carry the same check: every join in GET verdicts, the widest in GET report
    for view, key in ((views.verdicts, "concat_checks"), (views.summary, "concat_summary")):
        body = json.loads(views.dumps(view(a)))
        (got,) = body[key] if key == "concat_checks" else body[key]["widest"]
        assert got["ratio"] == pytest.approx(ratio, rel=1e-12) and got["flagged"] is True
    assert json.loads(views.dumps(views.summary(a)))["concat_summary"]["flagged"] == 1


def test_add_node_measured_from_stage_thresholds(tmp_path):
    """An add whose inputs have no histogram: their ranges come from the activation thresholds of the stage
    graph (signed: [-t, t]; unsigned: [0, t])."""
    nodes = [
        N("x", "DummyPlaceHolder"),
        N("a_conv", "Conv2d", ["x"], layer=True),
        N("b_conv", "Conv2d", ["x"], layer=True),
        N("add", "add", ["a_conv", "b_conv"]),
        N("head", "Linear", ["add"], layer=True),
    ]
    quant = {"a_conv": {"threshold": 1.0, "signed": True}, "b_conv": {"threshold": 64.0, "signed": False}}
    write_run(tmp_path, "m", nodes, quant=quant, manifest={})
    a = analyse(load(tmp_path, "m"))
    w_a, w_b = 1.0 - (-1.0), 64.0 - 0.0
    ratio = w_b / w_a
    (check,) = a.concat_checks
    assert check["kind"] == "add" and check["op"] == "add"
    assert {i["name"]: (i["range"], i["from"]) for i in check["inputs"]} == {
        "a_conv": ([-1.0, 1.0], "threshold"), "b_conv": ([0.0, 64.0], "threshold")}
    assert check["ratio"] == ratio and check["scale_input"] == "a_conv"
    (v,) = of(a, V.UNBALANCED_CONCATENATION)
    assert v.numbers["kind"] == "add" and v.numbers["scale"] == ratio and v.numbers["scale_input"] == "a_conv"
    # at a threshold just over the ratio the add is still measured but no longer flagged
    higher = analyse(a.report, a.thresholds.with_overrides({"concat": repr(ratio * 1.001)}))
    assert of(higher, V.UNBALANCED_CONCATENATION) == []
    assert [(c["node"], c["ratio"], c["flagged"]) for c in higher.concat_checks] == [("add", ratio, False)]


def test_join_without_ranges_is_listed_unmeasured(tmp_path):
    write_run(tmp_path, "m", branches_model(), histograms={"left_act": (0.0, 1.0)}, manifest={})
    a = analyse(load(tmp_path, "m"))
    (check,) = a.concat_checks
    assert check["ratio"] is None and check["flagged"] is False
    assert check["unmeasured"] == ["right_act"]
    assert of(a, V.UNBALANCED_CONCATENATION) == []


# --------------------------------------------------------------------------------------------
# Unbalanced concatenation: the graph next to MCT 2.6.1's name heuristic
# --------------------------------------------------------------------------------------------
def heuristic_run(tmp_path: Path, right_high: float, degraded: str, troubleshoot: Optional[Dict[str, Any]]):
    """A float graph with torchvision-style names (left.0 conv, left.1 BN, left.2 ReLU ...), where MCT's
    rule for a degraded ``left_0_bn`` pairs left.0 with the next node listed, right.0: the two branches of cat."""
    pairing = [
        N("x", "DummyPlaceHolder"),
        N("stem_0", "Conv2d", ["x"]), N("stem_1", "ReLU", ["stem_0"]),
        N("left_0", "Conv2d", ["stem_1"]), N("right_0", "Conv2d", ["stem_1"]),
        N("left_1", "BatchNorm2d", ["left_0"]), N("right_1", "BatchNorm2d", ["right_0"]),
        N("left_2", "ReLU", ["left_1"]), N("right_2", "ReLU", ["right_1"]),
        N("cat", "cat", ["left_2", "right_2"]), N("head", "Linear", ["cat"]),
    ]
    quantized = [
        N("x", "DummyPlaceHolder"),
        N("stem_0", "Conv2d", ["x"], layer=True, metrics=BAD if degraded == "stem_0" else GOOD),
        N("stem_1", "ReLU", ["stem_0"]),
        N("left_0_bn", "Conv2d", ["stem_1"], layer=True, metrics=BAD if degraded == "left_0_bn" else GOOD),
        N("right_0_bn", "Conv2d", ["stem_1"], layer=True),
        N("left_2", "ReLU", ["left_0_bn"]), N("right_2", "ReLU", ["right_0_bn"]),
        N("cat", "cat", ["left_2", "right_2"]),
        N("head", "Linear", ["cat"], layer=True, metrics=BAD if degraded == "head" else GOOD),
    ]
    write_run(tmp_path, "m", quantized, pairing_nodes=pairing, troubleshoot=troubleshoot, manifest={},
              histograms={"stem_1": (0.0, 3.0), "left_2": (0.0, 1.0), "right_2": (0.0, right_high)})
    return analyse(load(tmp_path, "m"))


def test_mct_and_graph_agree(tmp_path):
    a = heuristic_run(tmp_path, 20.0, "left_0_bn", {V.UNBALANCED_CONCATENATION: [["left.0", "right.0",
                                                                                    "first layer * 20.5"]]})
    ag = a.concat_agreement
    assert ag["mct_source"] == "troubleshoot_report" and ag["mct_rule"]["available"] is True
    (pair,) = ag["mct_pairs"]
    assert (pair["layer"], pair["rule"], pair["first"], pair["second"]) == ("left_0_bn", "_bn", "left.0", "right.0")
    assert pair["join"] == "cat" and pair["in_troubleshoot_report"] is True and pair["flagged"] is True
    assert pair["ratio"] == 20.5
    (item,) = ag["items"]
    assert item["status"] == "agree" and item["join"] == "cat" and item["mct_pair"] == ["left.0", "right.0"]
    assert item["graph_ratio"] == pytest.approx(float32_width(0.0, 20.0) / float32_width(0.0, 1.0))
    assert ag["counts"] == {"agree": 1, "mct_only": 0, "graph_only": 0}


def test_mct_only_when_the_graph_ratio_is_under_the_threshold(tmp_path):
    a = heuristic_run(tmp_path, 10.0, "left_0_bn", {V.UNBALANCED_CONCATENATION: [["left.0", "right.0",
                                                                                    "first layer * 0.04"]]})
    (item,) = a.concat_agreement["items"]
    graph_ratio = float32_width(0.0, 10.0) / float32_width(0.0, 1.0)
    assert item["status"] == "mct_only" and item["join"] == "cat"
    assert item["mct_ratio"] == pytest.approx(25.0)  # MCT's ratio under 1 is folded over, as MCT compares it
    assert item["graph_ratio"] == pytest.approx(graph_ratio)
    assert ("graph ratio %.3g < 16" % graph_ratio) in item["reason"]


def test_graph_only_when_no_degraded_layer_leads_mct_to_the_join(tmp_path):
    a = heuristic_run(tmp_path, 20.0, "head", {})
    ag = a.concat_agreement
    assert ag["mct_pairs"] == []
    (item,) = ag["items"]
    assert item["status"] == "graph_only" and item["join"] == "cat" and item["mct_pair"] is None
    assert "<x>_bn" in item["reason"]


def test_mct_rule_without_troubleshoot_report(tmp_path):
    """Without troubleshoot_report.json the pairs come from MCT's rule on the stage logs; the ratio MCT would
    measure (the inputs of left.0 and right.0: both stem.1's output) is estimated from stem_1's histogram."""
    a = heuristic_run(tmp_path, 20.0, "left_0_bn", None)
    ag = a.concat_agreement
    assert ag["mct_source"] == "name_heuristic"
    (pair,) = ag["mct_pairs"]
    assert (pair["first"], pair["second"], pair["join"]) == ("left.0", "right.0", "cat")
    assert pair["ratio_from"] == "estimate" and pair["ratio"] == 1.0 and pair["flagged"] is False
    assert [(i["status"], i["join"]) for i in ag["items"]] == [("graph_only", "cat")]
    assert "its ratio is 1 < 16" in ag["items"][0]["reason"]


def test_mct_pair_inside_one_branch_is_not_a_join(tmp_path):
    """A degraded stem_0 is not one MCT's rule looks at; a degraded <x>_bn whose next node is its own BN pairs
    two modules in a chain, which is reported as such."""
    a = heuristic_run(tmp_path, 20.0, "stem_0", {})
    assert a.concat_agreement["mct_pairs"] == []
    g = concat.PairingGraph.of(concat.read_pairing_graph(a.report)[0].nodes)
    pairs, error = concat.mct_rule_pairs(g, ["right_0_bn"])  # right_0 is followed by left_1 in the node list
    assert error is None
    assert [(p["first"], p["second"]) for p in pairs] == [("right.0", "left.1")]
    assert concat.pair_join(g.branches, g.joins, "right_0", "left_1") == "cat"
    pairs, _ = concat.mct_rule_pairs(g, ["stem_1_bn"])
    assert [(p["first"], p["second"]) for p in pairs] == [("stem.1", "left.0")]
    assert concat.pair_join(g.branches, g.joins, "stem_1", "left_0") is None


def test_judges_skipped_keep_the_measurements(tmp_path):
    nodes = branches_model()
    for n in nodes:
        if n.layer:
            n.metrics = dict(BAD)
    write_run(tmp_path, "m", nodes, histograms={"left_act": (0.0, 1.0), "right_act": (0.0, 32.0)}, manifest={})
    a = analyse(load(tmp_path, "m"))
    assert a.detection.judges_skipped
    assert of(a, V.UNBALANCED_CONCATENATION) == []
    assert [c["flagged"] for c in a.concat_checks] == [True]
    assert a.concat_agreement["items"] == []


# --------------------------------------------------------------------------------------------
# Shift negative activation
# --------------------------------------------------------------------------------------------
def test_shift_negative_functional_and_class_forms(tmp_path):
    nodes = [
        N("x", "DummyPlaceHolder"),
        N("conv", "Conv2d", ["x"], layer=True),
        N("silu", "silu", ["conv"]),            # torch.nn.functional.silu
        N("gelu", "gelu", ["silu"]),            # torch.nn.functional.gelu
        N("act", "SiLU", ["gelu"]),             # torch.nn.SiLU
        N("hs", "Hardswish", ["act"]),
        N("leaky", "LeakyReLU", ["hs"]),        # not in MCT's list: flagged by its negative histogram
        N("leaky_pos", "LeakyReLU", ["leaky"]),  # ... and not when it stays >= 0
        N("relu", "ReLU", ["leaky_pos"]),
        N("head", "Linear", ["relu"], layer=True),
    ]
    hist = {"silu": (-0.278, 3.0), "gelu": (-0.17, 2.0), "act": (-0.25, 1.0), "leaky": (-0.03, 2.0),
            "leaky_pos": (0.0, 2.0), "relu": (0.0, 2.0)}
    quant = {"silu": {"snc": False}, "gelu": {"snc": True}}
    write_run(tmp_path, "m", nodes, histograms=hist, quant=quant, manifest={})
    a = analyse(load(tmp_path, "m"))
    got = {v.layers[0]: v.numbers for v in of(a, V.SHIFT_NEGATIVE_ACTIVATION)}
    assert set(got) == {"silu", "gelu", "act", "hs", "leaky"}
    for name in ("silu", "gelu", "act", "hs"):
        assert got[name]["in_mct_list"] is True
    assert got["leaky"]["in_mct_list"] is False
    for name in ("silu", "gelu", "act", "leaky"):
        assert got[name]["min_value"] == float(np.float32(hist[name][0]))
    assert got["hs"]["min_value"] is None  # no histogram: listed by its op alone, as MCT does
    assert got["silu"]["activation"] == "silu" and got["act"]["activation"] == "SiLU"
    assert got["silu"]["shift_negative_activation_correction"] is False
    assert got["gelu"]["shift_negative_activation_correction"] is True
    # silu feeds gelu, not a Conv2d / Linear whose bias could take the shift: MCT cannot shift it, whatever the
    # setting, and the verdict says so instead of "turn the correction on" (judges/shift_negative.py)
    silu = of(a, V.SHIFT_NEGATIVE_ACTIVATION)[0]
    assert "MCT cannot shift it" in silu.message and silu.numbers["advice"] == "nothing_left" and silu.snippet is None


# --------------------------------------------------------------------------------------------
# Mixed precision with model-output loss objective
# --------------------------------------------------------------------------------------------
def mp_nodes() -> List[N]:
    return [N("x", "DummyPlaceHolder"), N("conv", "Conv2d", ["x"], layer=True), N("head", "Linear", ["conv"], layer=True)]


@pytest.mark.parametrize("bits, fires", [(2, True), (3, False)])
def test_mixed_precision_from_the_manifest(tmp_path, bits, fires):
    bw = {"layers": {"head": {"weights": {"weight": bits}, "activation": 8}},
          "last_layer": {"name": "head", "weights_nbits": bits, "activation_name": "head_activation_holder_quantizer",
                         "activation_nbits": 8}}
    write_run(tmp_path, "m", mp_nodes(), manifest={"bit_widths": bw})
    report = load(tmp_path, "m")
    a = analyse(report)
    verdicts = of(a, V.MIXED_PRECISION)
    if fires:
        (v,) = verdicts
        assert v.layers == ["head"]
        assert v.numbers["weights_nbits"] == bits and v.numbers["activation_nbits"] == 8
        assert v.numbers["threshold"] == 2
    else:
        assert verdicts == []
        # at a threshold equal to the bits it fires
        at = analyse(report, report.defaults.with_overrides({"bits": str(bits)}))
        assert [v.numbers["weights_nbits"] for v in of(at, V.MIXED_PRECISION)] == [bits]


@pytest.mark.parametrize("bits, fires", [(2, True), (4, False)])
def test_mixed_precision_activation_bits_from_the_stage_graph(tmp_path, bits, fires):
    """No manifest: the last layer is the graph's sink, its activation bits from the stage graph."""
    write_run(tmp_path, "m", mp_nodes(), quant={"head": {"bits": bits, "threshold": 8.0}})
    a = analyse(load(tmp_path, "m"))
    got = [(v.layers, v.numbers["activation_nbits"]) for v in of(a, V.MIXED_PRECISION)]
    assert got == ([(["head"], bits)] if fires else [])


def test_mixed_precision_weights_bits_from_the_stage_graph(tmp_path):
    if "weights_nbits" not in {f.name for f in dataclasses.fields(QuantParams)}:
        pytest.skip("this reader does not take weights bit widths from stage graphs")
    write_run(tmp_path, "m", mp_nodes(), quant={"head": {"weights_nbits": 2, "threshold": 8.0}})
    report = load(tmp_path, "m")
    assert report.quant["head"].weights_nbits == 2
    (v,) = of(analyse(report), V.MIXED_PRECISION)
    assert v.numbers["weights_nbits"] == 2 and v.numbers["activation_nbits"] == 8
    assert of(analyse(report, report.defaults.with_overrides({"bits": "1"})), V.MIXED_PRECISION) == []


# --------------------------------------------------------------------------------------------
# Before / after: "countermeasure did not improve"
# --------------------------------------------------------------------------------------------
def pair_run(root: Path, name: str, *, degraded: bool, z: float, output: Dict[str, float], accuracy: float,
             countermeasure: Optional[Dict[str, Any]] = None):
    nodes = [
        N("x", "DummyPlaceHolder"),
        N("conv", "Conv2d", ["x"], layer=True, metrics=BAD if degraded else GOOD),
        N("mid", "Conv2d", ["conv"], layer=True),
        N("head", "Linear", ["mid"], layer=True),
    ]
    quant = {n.name: {"threshold": 4.0, "z_threshold": z} for n in nodes}
    extra = {"countermeasure": countermeasure} if countermeasure else None
    write_run(root, name, nodes, quant=quant, output=output,
              manifest={"accuracy": {"float": 0.9, "quantized": accuracy, "dataset": "validation"}, "extra": extra})
    return analyse(load(root, name))


def reasons(c) -> List[str]:
    return [g["numbers"]["reason"] for g in c["general"]]


def test_countermeasure_that_did_not_improve(tmp_path):
    before_out = {"mse": 0.2, "cs": 0.95, "sqnr": 30.0}
    after_out = {"mse": 0.21, "cs": 0.95, "sqnr": 29.0}  # worse on two metrics, same on one
    a = pair_run(tmp_path, "before", degraded=True, z=float("inf"), output=before_out, accuracy=0.80)
    b = pair_run(tmp_path, "after", degraded=True, z=4.0, output=after_out, accuracy=0.79,
                 countermeasure={"z_threshold": 4.0})
    c = json.loads(views.dumps(views.compare(a, b)))
    assert reasons(c) == [V.COUNTERMEASURE_DID_NOT_IMPROVE]
    cm = c["countermeasure"]
    assert cm["applied"] is True and cm["did_not_improve"] is True
    assert cm["declared"] == {"z_threshold": 4.0}
    (change,) = cm["changes"]
    # every node of the stage graph got the new z_threshold
    assert (change["param"], change["a"], change["b"], change["layers"]) == ("z_threshold", "Infinity", 4.0,
                                                                            len(b.report.quant))
    assert cm["improved"] == {"degraded_layers": False, "output_metrics": False, "accuracy": False}
    assert {m: (v["a"], v["b"], v["better"]) for m, v in cm["output_metrics"].items()} == {
        "mse": (0.2, 0.21, False), "cs": (0.95, 0.95, None), "sqnr": (30.0, 29.0, False)}
    n = c["general"][0]["numbers"]
    assert (n["degraded_before"], n["degraded_after"]) == (1, 1)
    assert (n["accuracy_before"], n["accuracy_after"]) == (0.80, 0.79)
    assert "z_threshold=4" in c["general"][0]["message"] and "0.8 -> 0.79" in c["general"][0]["message"]


@pytest.mark.parametrize("what", ["degraded", "outputs", "accuracy"])
def test_countermeasure_that_improved_one_thing(tmp_path, what):
    out = {"mse": 0.2, "cs": 0.95, "sqnr": 30.0}
    a = pair_run(tmp_path, "before", degraded=True, z=float("inf"), output=out, accuracy=0.80)
    b = pair_run(tmp_path, "after", degraded=what != "degraded", z=4.0,
                 output={"mse": 0.1, "cs": 0.97, "sqnr": 30.0} if what == "outputs" else out,
                 accuracy=0.81 if what == "accuracy" else 0.80)
    c = views.compare(a, b)
    assert reasons(c) == []
    assert c["countermeasure"]["applied"] is True  # from the stage graph alone: no manifest entry here
    assert c["countermeasure"]["declared"] is None
    key = {"degraded": "degraded_layers", "outputs": "output_metrics", "accuracy": "accuracy"}[what]
    assert [k for k, v in c["countermeasure"]["improved"].items() if v] == [key]


def test_no_countermeasure_applied(tmp_path):
    out = {"mse": 0.2, "cs": 0.95, "sqnr": 30.0}
    a = pair_run(tmp_path, "before", degraded=True, z=float("inf"), output=out, accuracy=0.80)
    b = pair_run(tmp_path, "again", degraded=True, z=float("inf"), output=out, accuracy=0.80)
    c = views.compare(a, b)
    assert reasons(c) == []
    assert c["countermeasure"]["applied"] is False and c["countermeasure"]["changes"] == []


def test_demo_outlier_fix_is_not_flagged(demo_reports, scenarios):
    """The demo's before/after pair: outlier_fixed re-quantized with the proposed z_threshold and lost its
    degraded layers, so it must not be told that the countermeasure did not help; the reverse direction
    (back to no z_threshold) did not improve."""
    before, after = analyse(demo_reports["outlier"]), analyse(demo_reports["outlier_fixed"])
    c = views.compare(before, after)
    assert reasons(c) == []
    cm = c["countermeasure"]
    declared = scenarios["outlier_fixed"].manifest["extra"]["countermeasure"]
    assert cm["applied"] and cm["declared"] == declared
    assert any(g["param"] == "z_threshold" and g["b"] == pytest.approx(declared["z_threshold"]) for g in cm["changes"])
    assert cm["improved"]["degraded_layers"]
    back = views.compare(after, before)
    assert reasons(back) == [V.COUNTERMEASURE_DID_NOT_IMPROVE]
    assert views.compare(before, before)["countermeasure"]["applied"] is False


def test_compare_route_reports_the_countermeasure(tmp_path, make_api):
    out = {"mse": 0.2, "cs": 0.95, "sqnr": 30.0}
    pair_run(tmp_path, "before", degraded=True, z=float("inf"), output=out, accuracy=0.80)
    pair_run(tmp_path, "after", degraded=True, z=4.0, output=out, accuracy=0.80, countermeasure={"z_threshold": 4.0})
    api = make_api(str(tmp_path))
    ids = api.report_ids()
    c = api.json("compare", a=ids["before/xquant_report"], b=ids["after/xquant_report"])
    assert reasons(c) == [V.COUNTERMEASURE_DID_NOT_IMPROVE]
    assert c["countermeasure"]["changes"][0]["param"] == "z_threshold"
    v = api.json("verdicts", report=ids["before/xquant_report"])
    assert v["concat_checks"] == [] and v["concat_agreement"]["items"] == []
