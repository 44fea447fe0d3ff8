"""MCT 2.6.1 itself as the reference: its degrade-layer detection
(``xquant/pytorch/core_detect_degrade_layer.py``) run on every demo report's ``quant_report.json`` with the
report's XQuantConfig, and its unbalanced-concatenation judge (``judge_unbalanced_concatnation``) run on a
small torch model with stage logs written here, against what the plugin computes from the logs.

Skipped when MCT (or torch) is not importable: the viewer itself runs without them."""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Any, Dict, List

import pytest

from tb_xquant_plugin.judges import concat
from tb_xquant_plugin.judges.detection import detect
from tb_xquant_plugin.model.thresholds import Thresholds

pytestmark = pytest.mark.mct  # runs MCT's own detection

mct_detect = pytest.importorskip("model_compression_toolkit.xquant.pytorch.core_detect_degrade_layer",
                                 reason="MCT 2.6.1 is not importable (the viewer runs without it)")
from model_compression_toolkit.xquant import XQuantConfig  # noqa: E402

SCENARIOS = ("clean", "outlier", "outlier_fixed", "shift_negative", "unbalanced_concat", "mixed_precision",
             "majority_degraded")


def xquant_config(report_dir: Path, cfg: Dict[str, Any]) -> XQuantConfig:
    """MCT's XQuantConfig from a manifest's ``xquant_config`` (copies: MCT writes into its dicts)."""
    return XQuantConfig(
        report_dir=str(report_dir),
        threshold_quantize_error=dict(cfg["threshold_quantize_error"]),
        is_detect_under_threshold_quantize_error=dict(cfg["is_detect_under_threshold_quantize_error"]),
        threshold_degrade_layer_ratio=cfg["threshold_degrade_layer_ratio"],
        threshold_zscore_outlier_removal=cfg["threshold_zscore_outlier_removal"],
        threshold_ratio_unbalanced_concatenation=cfg["threshold_ratio_unbalanced_concatenation"],
        threshold_bitwidth_mixed_precision_with_model_output_loss_objective=cfg[
            "threshold_bitwidth_mixed_precision_with_model_output_loss_objective"],
    )


@pytest.fixture(autouse=True)
def no_charts(monkeypatch):
    """MCT's detection also draws its six similarity charts with matplotlib (most of its run time); the
    drawing returns nothing and does not touch the list it detects, so it is left out here."""
    drawn = []
    monkeypatch.setattr(mct_detect, "make_similarity_graph", lambda *args: drawn.append(args[:2]))
    return drawn


def mct_degraded(quant_report: Dict[str, Any], cfg: Dict[str, Any], report_dir: Path) -> List[str]:
    """MCT's own function on the similarity data exactly as MCT passes it: (output metrics, per-layer metrics)."""
    repr_sim = (quant_report["output_similarity_metrics_repr"], quant_report["intermediate_similarity_metrics_repr"])
    val_sim = (quant_report["output_similarity_metrics_val"], quant_report["intermediate_similarity_metrics_val"])
    return mct_detect.core_detect_degrade_layer(repr_sim, val_sim, xquant_config(report_dir, cfg))


@pytest.mark.parametrize("name", SCENARIOS)
def test_degraded_layers_equal_mcts_own_detection(name, scenarios, demo_reports, tmp_path, no_charts):
    sc = scenarios[name]
    cfg = sc.xquant_config
    expected = mct_degraded(sc.quant_report, cfg, tmp_path)
    assert no_charts  # MCT's detection ran (it draws once per metric and dataset)
    report = demo_reports[name]
    det = detect(report, report.defaults)
    assert det.degraded == expected  # same layers, in MCT's order
    # MCT runs its judges only while degraded / layers < threshold_degrade_layer_ratio
    n = len(sc.quant_report["intermediate_similarity_metrics_repr"])
    assert det.judges_skipped == (not len(expected) / n < cfg["threshold_degrade_layer_ratio"])


# Threshold settings the tab can ask for (query overrides), and the same as an XQuantConfig.
OVERRIDES = [
    {"thr.mse": "0.01"},
    {"thr.mse": "0.0001", "thr.sqnr": "5000"},
    {"thr.cs": "0.99999"},
    {"under.mse": "1", "thr.mse": "0.01"},
    {"under.cs": "0", "thr.cs": "0.9999"},
]


def _apply(cfg: Dict[str, Any], overrides: Dict[str, str]) -> Dict[str, Any]:
    out = copy.deepcopy(cfg)
    for key, value in overrides.items():
        kind, metric = key.split(".", 1)
        if kind == "thr":
            out["threshold_quantize_error"][metric] = float(value)
        else:
            out["is_detect_under_threshold_quantize_error"][metric] = value == "1"
    return out


@pytest.mark.parametrize("overrides", OVERRIDES, ids=lambda o: ",".join("%s=%s" % kv for kv in o.items()))
@pytest.mark.parametrize("name", ["outlier", "unbalanced_concat", "mixed_precision", "shift_negative"])
def test_overridden_thresholds_equal_mcts_detection(name, overrides, scenarios, demo_reports, tmp_path):
    sc = scenarios[name]
    expected = mct_degraded(sc.quant_report, _apply(sc.xquant_config, overrides), tmp_path)
    report = demo_reports[name]
    assert detect(report, report.defaults.with_overrides(overrides)).degraded == expected


def test_metric_without_threshold_or_direction_as_mct(scenarios, demo_reports, tmp_path):
    """MCT skips a metric with no threshold and treats one with no direction as "above"."""
    sc = scenarios["outlier"]
    cfg = copy.deepcopy(sc.xquant_config)
    del cfg["threshold_quantize_error"]["sqnr"]
    del cfg["is_detect_under_threshold_quantize_error"]["cs"]
    cfg["threshold_quantize_error"]["cs"] = 0.99999
    expected = mct_degraded(sc.quant_report, cfg, tmp_path)
    th = Thresholds(cfg["threshold_quantize_error"], cfg["is_detect_under_threshold_quantize_error"])
    assert detect(demo_reports["outlier"], th).degraded == expected


# --------------------------------------------------------------------------------------------
# MCT's unbalanced-concatenation pairing, on a torch model and stage logs written here
# --------------------------------------------------------------------------------------------
def _pairing_graph():
    """The float graph as MCT's stage logs list it (torch.fx names: module path with '_'), in the order written."""
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    nodes = [
        ("Input/x", "DummyPlaceHolder", []),
        ("Net/Conv2d_0/stem_0", "Conv2d", ["Input/x"]),
        ("Net/ReLU_0/stem_1", "ReLU", ["Net/Conv2d_0/stem_0"]),
        ("Net/Conv2d_1/left_0", "Conv2d", ["Net/ReLU_0/stem_1"]),
        ("Net/Conv2d_2/right_0", "Conv2d", ["Net/ReLU_0/stem_1"]),
        ("Net/BatchNorm2d_0/left_1", "BatchNorm2d", ["Net/Conv2d_1/left_0"]),
        ("Net/BatchNorm2d_1/right_1", "BatchNorm2d", ["Net/Conv2d_2/right_0"]),
        ("Net/cat_0/cat", "cat", ["Net/BatchNorm2d_0/left_1", "Net/BatchNorm2d_1/right_1"]),
        ("Net/Conv2d_3/fuse_0", "Conv2d", ["Net/cat_0/cat"]),
        ("Net/add_0/add", "add", ["Net/Conv2d_3/fuse_0", "Net/cat_0/cat"]),
        ("Net/flatten_0/flatten", "flatten", ["Net/add_0/add"]),
        ("Output/head", "Linear", ["Net/flatten_0/flatten"]),
    ]
    g = GraphDef()
    for name, op, inputs in nodes:
        n = g.node.add(name=name, op=op)
        n.input.extend(i + ":0" for i in inputs)
    return g


@pytest.fixture(scope="module")
def pairing_setup(tmp_path_factory):
    torch = pytest.importorskip("torch")
    from tensorboard.compat.proto import event_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    root = tmp_path_factory.mktemp("mct_pairing")
    graph = _pairing_graph()
    for stage in concat.MCT_STAGE_LOGS:
        w = EventFileWriter(str(root / "tensorboard_logs" / stage))
        w.add_event(event_pb2.Event(wall_time=1.0, graph_def=graph.SerializeToString()))
        w.close()
    nn = torch.nn

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.stem = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
            self.left = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4))
            self.right = nn.Sequential(nn.Conv2d(4, 4, 1), nn.BatchNorm2d(4))
            self.fuse = nn.Sequential(nn.Conv2d(8, 8, 1))
            self.head = nn.Linear(8 * 4 * 4, 3)

        def forward(self, x):
            h = self.stem(x)
            c = torch.cat([self.left(h), self.right(h)], dim=1)
            return self.head(torch.flatten(self.fuse(c) + c, 1))

    torch.manual_seed(0)
    model = Net().eval()

    def dataset():
        for _ in range(2):
            yield torch.randn(2, 1, 4, 4), None

    from tb_xquant_plugin.readers.graphs import parse_graph

    g = concat.PairingGraph.of(parse_graph(graph.SerializeToString(), attrs=(), shapes=False))
    return root, model, dataset, g


DEGRADED_CASES = [
    ["left_0_bn"],                          # _bn: left.0 and the next node listed, right.0
    ["bn_left_1"],                          # bn_: the node listed before left.1 (right.0), and left.1
    ["fuse_0_add_collapsed"],               # _collapsed: fuse.0 and the add after it
    ["stem_1_bn", "left_0_bn", "right_0_bn"],
    ["left_0_bn", "nothing_bn"],            # no match: MCT reuses the previous layer's nodes
    ["head", "right_0_bn", "cat_collapsed"],  # not a _bn/_collapsed/bn_ layer; a _collapsed one without a pair
]


@pytest.mark.parametrize("degraded", DEGRADED_CASES, ids=lambda d: "+".join(d))
def test_mct_pairing_rule_equals_mcts_judge(degraded, pairing_setup):
    """Every pair MCT's judge measures (threshold 0: it reports all of them), in its order, is what
    concat.mct_rule_pairs derives from the same stage graph."""
    from model_compression_toolkit.xquant.pytorch.judge_troubleshoot_utils import judge_unbalanced_concatnation

    root, model, dataset, g = pairing_setup
    cfg = XQuantConfig(report_dir=str(root), quantize_reported_dir=str(root),
                       threshold_ratio_unbalanced_concatenation=0.0)
    got = judge_unbalanced_concatnation(list(degraded), model, dataset, cfg)
    pairs, error = concat.mct_rule_pairs(g, degraded)
    assert error is None
    assert [(p["first"], p["second"]) for p in pairs] == [(first, second) for first, second, _ in got]
    assert pairs  # every case yields at least one pair


@pytest.mark.parametrize("degraded, error", [(["nothing_bn"], UnboundLocalError), (["head_bn"], IndexError)])
def test_mct_pairing_errors_equal_mcts_judge(degraded, error, pairing_setup):
    from model_compression_toolkit.xquant.pytorch.judge_troubleshoot_utils import judge_unbalanced_concatnation

    root, model, dataset, g = pairing_setup
    cfg = XQuantConfig(report_dir=str(root), quantize_reported_dir=str(root))
    with pytest.raises(error):
        judge_unbalanced_concatnation(list(degraded), model, dataset, cfg)
    pairs, message = concat.mct_rule_pairs(g, degraded)
    assert pairs == [] and error.__name__ in message
