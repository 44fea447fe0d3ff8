"""``bench.mct_format`` writes what real MCT 2.6.1 runs write: its synthetic logdirs are read by the plugin's
readers the same way as the demo logdir (real MCT output), structurally and in the analysis.

Every property below is checked on both sides, the demo (``demo_logdir``) and a generated model, so a change
of the readers that separates them, or a generator that drifts from MCT's format, fails here."""
from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Set, Tuple

import pytest

from tb_xquant_plugin.judges.run import analyse
from tb_xquant_plugin.producers import build_all
from tb_xquant_plugin.producers.mct_pytorch import STAGE_LOGS_FOLDER
from tb_xquant_plugin.producers import mct_files as art
from tb_xquant_plugin.readers import files
from tb_xquant_plugin.readers.events import LocalEventSource
from tb_xquant_plugin.readers.graphs import XQUANT_REPR, XQUANT_VAL, GraphNode, parse_graph, parse_metric_dict

from bench import mct_format

REPO = Path(__file__).resolve().parents[1]
N = 100
HELPERS = (".weights", ".activation")
QUANT = "ActivationQuantizationMode.QUANT"
FLN_QUANT = "ActivationQuantizationMode.FLN_QUANT"


class Logdir:
    """A logdir read as the plugin reads it, with the reports, raw graphs and analyses at hand."""

    def __init__(self, path: Path):
        self.path = str(path)
        self.source = LocalEventSource(self.path)
        self.runs = self.source.runs()
        self.report_dirs = art.discover_report_dirs(self.path, self.runs)
        # bench/mct_format.py writes MCT for PyTorch's format: compared with the demo's PyTorch reports only (its
        # Keras reports have Keras names and ops: tests/test_keras.py)
        self.reports = [r for r in build_all(self.path, self.source) if r.toolchain == "mct-pytorch"]
        self.analyses = {r.rel: analyse(r) for r in self.reports}

    def xquant_graph(self, report) -> List[GraphNode]:
        return parse_graph(self.source.graph(files.run_path(report.rel, art.XQUANT_RUN)))

    def stage_graph(self, report) -> List[GraphNode]:
        return parse_graph(self.source.graph(report.stage_run))

    def run_kinds(self) -> Set[str]:
        """What each run is, independent of the model: the report's own runs by name, stage runs by stage."""
        kinds = set()
        for run in self.runs:
            parts = run.split("/")
            if STAGE_LOGS_FOLDER in parts:
                kinds.add("stage:" + "/".join(parts[parts.index(STAGE_LOGS_FOLDER) + 1:]))
            else:
                kinds.add("report:" + parts[-1])
        return kinds


@pytest.fixture(scope="module")
def demo(demo_logdir) -> Logdir:
    return Logdir(demo_logdir)


@pytest.fixture(scope="module")
def generated_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("bench_logs")
    report_dir = mct_format.write_model_logdir(str(out), N, seed=3)
    assert Path(report_dir) == out / ("model_%d" % N) / "xquant_report"
    return out / ("model_%d" % N)


@pytest.fixture(scope="module")
def generated(generated_dir) -> Logdir:
    return Logdir(generated_dir)


@pytest.fixture(scope="module")
def both(demo, generated) -> Dict[str, Logdir]:
    return {"demo": demo, "generated": generated}


def load(path: str):
    with open(path, encoding="utf-8") as f:
        return json.load(f)


# --------------------------------------------------------------------------------------------
# discovery and report building
# --------------------------------------------------------------------------------------------
def test_discovery_finds_the_same_kinds_of_runs(demo, generated):
    assert list(generated.report_dirs) == ["xquant_report"]
    assert all(rel.endswith("/xquant_report") for rel in demo.report_dirs)
    kinds = generated.run_kinds()
    assert kinds <= demo.run_kinds(), kinds - demo.run_kinds()
    assert {"report:xquant", "report:output_similarity_metrics_repr", "report:output_similarity_metrics_val"} <= kinds
    # The stage the builder reads quantization parameters from is the same one.
    stages = {r.stage_run.rsplit("/", 1)[-1] for lg in (demo, generated) for r in lg.reports}
    assert stages == {mct_format.STAGE}


def test_reports_build_without_problems(both):
    for label, lg in both.items():
        for r in lg.reports:
            assert r.problems == [], (label, r.rel, [p.what for p in r.problems])
            assert r.has_quant_report and r.has_graph and r.histograms and r.mct_troubleshoot is not None


def test_layer_count_follows_the_request(generated, generated_dir):
    qr = load(str(generated_dir / "xquant_report" / "quant_report.json"))
    assert len(qr["intermediate_similarity_metrics_repr"]) == N
    assert list(qr) == ["output_similarity_metrics_repr", "output_similarity_metrics_val",
                        "intermediate_similarity_metrics_repr", "intermediate_similarity_metrics_val"]
    assert [l.name for l in generated.reports[0].layers] == list(qr["intermediate_similarity_metrics_repr"])


# --------------------------------------------------------------------------------------------
# graphs
# --------------------------------------------------------------------------------------------
def test_every_layer_maps_to_a_graph_node_carrying_its_metrics(both):
    for label, lg in both.items():
        for r in lg.reports:
            with_metrics = {n.id for n in r.nodes if XQUANT_REPR in n.attrs or XQUANT_VAL in n.attrs}
            assert with_metrics == {l.node for l in r.layers}, (label, r.rel)
            for l in r.layers:
                assert l.node is not None and l.op in ("Conv2d", "Linear"), (label, l.name)
                node = r.node_by_id[l.node]
                assert node.name == l.name + "_layer"
                for ds, attr in (("repr", XQUANT_REPR), ("val", XQUANT_VAL)):
                    assert parse_metric_dict(node.attrs[attr]) == l.metrics[ds], (label, l.name, ds)


_XQ_NAME = re.compile(r"^(Input|Output|PytorchModel/[A-Za-z0-9_]+_\d+)/[A-Za-z0-9_]+$")
_STAGE_NAME = re.compile(r"^(Input|Output|[A-Za-z]+/[A-Za-z0-9_]+_\d+)/[A-Za-z0-9_]+(\.weights|\.activation)?$")


def test_node_names_and_wiring_follow_mct(both):
    for label, lg in both.items():
        for r in lg.reports:
            xq = lg.xquant_graph(r)
            assert all(_XQ_NAME.match(n.id) for n in xq), (label, [n.id for n in xq if not _XQ_NAME.match(n.id)][:3])
            assert [n.id.split("/")[0] for n in xq].count("Input") == 1
            assert [n.id for n in xq if n.id.startswith("Output/")] == [xq[-1].id]
            assert xq[-1].op == "fake_quantize_per_tensor_affine"
            assert not any(n.id.endswith(HELPERS) for n in xq)
            ids = {n.id for n in xq}
            assert all(i in ids for n in xq for i in n.inputs)
            assert all(n.output_shapes for n in xq)
            # The display graph folds every activation quantizer away.
            assert not any(n.op.startswith("fake_quantize") for n in r.nodes)
            stage = lg.stage_graph(r)
            assert all(_STAGE_NAME.match(n.id) for n in stage), (label, [n.id for n in stage if not _STAGE_NAME.match(n.id)][:3])
            ids = {n.id for n in stage}
            for n in stage:  # a main node reads its inputs' .activation nodes (if logged), then its own .weights
                if n.id.endswith(HELPERS):
                    continue
                if n.id + ".weights" in ids:
                    assert n.inputs[-1] == n.id + ".weights", (label, n.id)
                for i in n.inputs:
                    assert i in ids and (i.endswith(HELPERS) or i + ".activation" not in ids), (label, n.id, i)


def attribute_types(nodes: List[GraphNode]) -> Dict[str, Set[Tuple[str, str]]]:
    """op (or helper kind) -> {(attribute, python type)} over all nodes of a graph."""
    out: Dict[str, Set[Tuple[str, str]]] = {}
    for n in nodes:
        key = next((h for h in HELPERS if n.id.endswith(h)), n.op)
        out.setdefault(key, set()).update((k, type(v).__name__) for k, v in n.attrs.items())
    return out


def test_same_attribute_names_and_types_per_op(demo, generated):
    for graph_of in (Logdir.xquant_graph, Logdir.stage_graph):
        demo_attrs: Dict[str, Set[Tuple[str, str]]] = {}
        for r in demo.reports:
            for op, attrs in attribute_types(graph_of(demo, r)).items():
                demo_attrs.setdefault(op, set()).update(attrs)
        gen_attrs = attribute_types(graph_of(generated, generated.reports[0]))
        common = set(demo_attrs) & set(gen_attrs)
        assert {"DummyPlaceHolder", "Conv2d", "Linear", "ReLU", "cat", "AdaptiveAvgPool2d", "flatten"} <= common
        for op in common:
            assert gen_attrs[op] == demo_attrs[op], (graph_of.__name__, op, gen_attrs[op] ^ demo_attrs[op])
    gen_ops = {n.op for n in generated.xquant_graph(generated.reports[0])}
    assert {"fake_quantize_per_tensor_affine", "getitem", "add", "PReLU"} <= gen_ops
    assert gen_ops & {"SiLU", "Hardswish", "GELU", "LeakyReLU"}


# --------------------------------------------------------------------------------------------
# histograms and quantization parameters
# --------------------------------------------------------------------------------------------
def test_histograms_belong_to_the_nodes_mct_collects_statistics_for(both):
    """MCT logs float histograms (tagged with float-graph names) for nodes whose activation is quantized or not
    quantized at all, never for a layer fused with its activation: a layer has one iff it is not fused."""
    for label, lg in both.items():
        for r in lg.reports:
            stage = lg.stage_graph(r)
            modes = {n.id[: -len(".activation")]: n.attrs["quant_mode"] for n in stage if n.id.endswith(".activation")}
            modes = {n.name: modes.get(n.id) for n in stage if not n.id.endswith(HELPERS)}  # None: no config logged
            tags = set(r.mct_histograms)  # MCT's tags (report.histograms: the same, keyed by the quantized graph)
            assert tags <= {k for k, m in modes.items() if m != FLN_QUANT}, label
            for l in r.layers:
                assert (r.histogram(l.name) is not None) == (modes[l.name] == QUANT), (label, l.name)
            for h in r.mct_histograms.values():
                assert h.ndim == 2 and h.shape[1] == 3 and (h[:, 2] >= 0).all() and h[:, 2].sum() > 0
                assert (h[1:, 0] == h[:-1, 1]).all()  # contiguous buckets


def test_stage_quantization_parameters_found_as_for_real_runs(both):
    for label, lg in both.items():
        for r in lg.reports:
            for l in r.layers:
                qp = r.quant.get(l.name)
                assert qp is not None and isinstance(qp.activation_nbits, int), (label, l.name)
                assert qp.quant_mode in ("QUANT", "FLN_QUANT")
                assert (qp.activation_threshold is not None) == (qp.quant_mode == "QUANT"), (label, l.name)
                assert qp.signed is None or qp.activation_threshold > 0
                assert qp.shift_negative_activation_correction is not None and qp.activation_error_method == "MSE"


def test_full_size_histograms_like_mct(tmp_path, demo):
    mdir = Path(mct_format.write_model_logdir(str(tmp_path), 8, bins=mct_format.MCT_HISTOGRAM_BINS)).parent
    lg = Logdir(mdir)
    rows = {len(h) for h in lg.reports[0].histograms.values()}
    demo_rows = {len(h) for r in demo.reports for h in r.histograms.values()}
    assert max(rows) == max(demo_rows) == mct_format.MCT_HISTOGRAM_BINS


# --------------------------------------------------------------------------------------------
# analysis
# --------------------------------------------------------------------------------------------
def test_analysis_finds_degraded_layers_and_every_judge(demo, generated, generated_dir, mct_rule):
    a = generated.analyses["xquant_report"]
    qr = load(str(generated_dir / "xquant_report" / "quant_report.json"))
    defaults = {"threshold_quantize_error": mct_format.MCT_THRESHOLDS,
                "is_detect_under_threshold_quantize_error": mct_format.MCT_DETECT_UNDER}
    assert a.degraded == mct_rule(qr, defaults)
    assert 0 < a.detection.ratio < mct_format.MCT_DEGRADE_LAYER_RATIO and not a.detection.judges_skipped
    kinds = {(v.judge, v.source) for v in a.verdicts}
    demo_kinds = {(v.judge, v.source) for da in demo.analyses.values() for v in da.verdicts}
    assert demo_kinds <= kinds, demo_kinds - kinds
    assert {v.judge for v in a.verdicts if v.source == "computed"} == {
        "outlier_removal", "shift_negative_activation", "unbalanced_concatenation",
        "mixed_precision_with_model_output_loss_objective"}


def test_computed_and_mct_verdicts_agree_where_both_judge_the_same_thing(both):
    for label, lg in both.items():
        for a in lg.analyses.values():
            def layers(judge, source):
                return {l for v in a.verdicts if v.judge == judge and v.source == source for l in v.layers}
            assert layers("outlier_removal", "computed") == layers("outlier_removal", "mct"), label
            assert layers("outlier_removal", "computed") <= set(a.degraded)
            assert layers("shift_negative_activation", "mct") <= layers("shift_negative_activation", "computed")
            for v in a.verdicts:  # the layer MCT names first is one of the report's (a BN it names may be folded)
                if v.source == "mct":
                    assert v.layers[0] in a.report.layer_by_name or v.layers[0] in a.report.node_by_name, (label, v)


def test_larger_model_keeps_a_few_percent_degraded(tmp_path):
    n = 1000
    lg = Logdir(Path(mct_format.write_model_logdir(str(tmp_path), n, seed=1)).parent)
    (r,) = lg.reports
    a = lg.analyses[r.rel]
    assert len(r.layers) == n and r.problems == []
    assert 0.01 <= a.detection.ratio <= 0.08
    assert len({v.judge for v in a.verdicts if v.source == "computed"}) == 4


def test_seeded_and_deterministic(tmp_path):
    def metrics(seed: int, where: str) -> str:
        rd = mct_format.write_model_logdir(str(tmp_path / where), 30, seed=seed)
        return (Path(rd) / "quant_report.json").read_text()

    assert metrics(5, "a") == metrics(5, "b")
    assert metrics(5, "a") != metrics(6, "c")


def test_cli_and_manifest(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.mct_format", "--out", str(tmp_path), "--layers", "12",
                           "--manifest"], cwd=str(REPO), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "model_12" in proc.stdout
    (r,) = build_all(str(tmp_path / "model_12"))
    assert r.problems == [] and len(r.layers) == 12
    assert r.manifest["bit_widths"]["last_layer"]["name"] == r.layers[-1].name
    assert r.stage_run.startswith(r.manifest["stage_logs"].replace("../", "").rsplit("/tensorboard_logs", 1)[0])
