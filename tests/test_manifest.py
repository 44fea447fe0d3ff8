"""The manifest (``tb_xquant_manifest.json``) that ``tb_xquant_plugin.mct_run`` writes beside MCT's report.

Every field of every demo scenario's manifest is checked against a reference outside the manifest: the installed
distributions, the validation split of the demo data, MCT's stage graphs and console log, and MCT's own
XQuantConfig.  The wrapper itself is run once on a tiny model with non-default thresholds, against the
XQuantConfig MCT's detection actually received."""
from __future__ import annotations

import glob
import json
import math
import os
import re
from importlib.metadata import PackageNotFoundError, version

import pytest

from mct_test_utils import mct_logging_restored, stage_event_files, stage_nodes
from tb_xquant_plugin.mct_run import MANIFEST_FILENAME, MANIFEST_SCHEMA

SCENARIOS = ("clean", "outlier", "outlier_fixed", "shift_negative", "unbalanced_concat", "mixed_precision",
             "majority_degraded")
# the XQuantConfig fields the manifest records (the thresholds)
CONFIG_FIELDS = ("threshold_quantize_error", "is_detect_under_threshold_quantize_error",
                 "threshold_degrade_layer_ratio", "threshold_zscore_outlier_removal",
                 "threshold_ratio_unbalanced_concatenation",
                 "threshold_bitwidth_mixed_precision_with_model_output_loss_objective")
# MCT 2.6.1 writes one folder per stage under tensorboard_logs/; these two always exist, and the second one holds
# the layers as XQuant names them (after folding and collapsing)
FIRST_STAGE, QUANTIZED_STAGE = "initial_graph", "after_statistics_correction"


def stage_node_names(stage_dir: str) -> list:
    """Full node names of the GraphDef(s) MCT wrote into one stage folder."""
    return [n.name for n in stage_nodes(stage_event_files(stage_dir)).values()]


def config_fields(cfg) -> dict:
    return {f: (dict(getattr(cfg, f)) if isinstance(getattr(cfg, f), dict) else getattr(cfg, f))
            for f in CONFIG_FIELDS}


def mct_logged_detections(report_dir) -> list:
    """``(metric, layer)`` in the order MCT 2.6.1's detection logged them (``Logger.info("{metric}[{layer}]=..")``)
    while it wrote this report: its log file in ``<report_dir>/logs_*/``, up to the dump of this report's
    troubleshoot_report.json (MCT's logger keeps writing there for whatever runs next)."""
    logs = sorted(glob.glob(os.path.join(str(report_dir), "logs_*", "mct_log.log")))
    assert logs, "MCT's xquant call writes a log under the report dir"
    end = "Dumping report data to: %s" % os.path.join(str(report_dir), "troubleshoot_report.json")
    out = []
    with open(logs[-1], encoding="utf-8", errors="replace") as f:
        for line in f:
            if line.strip() == end:
                return out
            m = re.match(r"^(\w+)\[(.+)\]=([-+0-9.eE]+|nan|inf)$", line.strip())
            if m:
                out.append((m.group(1), m.group(2)))
    raise AssertionError("no end of this report's run in %s" % logs[-1])


def detections_by_config(quant_report: dict, cfg: dict) -> list:
    """What MCT's detection logs for these thresholds: per metric, repr then val, every layer that hits."""
    out = []
    for metric in quant_report["output_similarity_metrics_repr"]:
        if metric not in cfg["threshold_quantize_error"]:
            continue
        thr = cfg["threshold_quantize_error"][metric]
        under = cfg["is_detect_under_threshold_quantize_error"].get(metric, False)
        for ds in ("repr", "val"):
            for layer, values in quant_report["intermediate_similarity_metrics_" + ds].items():
                v = values[metric]
                if (v <= thr) if under else (v >= thr):
                    out.append((metric, layer))
    return out


@pytest.fixture(scope="session")
def validation_size():
    pytest.importorskip("torch")
    pytest.importorskip("sklearn")
    from demo.models import DigitsData

    return len(DigitsData().y_val)


# --------------------------------------------------------------------------------------------
# The demo's manifests
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", SCENARIOS)
def test_manifest_has_every_field(name, scenarios):
    m = scenarios[name].manifest
    assert m["schema"] == MANIFEST_SCHEMA
    assert {"model_name", "created", "xquant_config", "custom_metrics", "stage_logs", "troubleshoot", "versions",
            "accuracy", "bit_widths", "extra"} <= set(m)
    assert set(m["xquant_config"]) == set(CONFIG_FIELDS)
    assert m["troubleshoot"] is True and (scenarios[name].dir / "troubleshoot_report.json").is_file()
    assert m["custom_metrics"] == []
    assert m["extra"]["scenario"] == name


@pytest.mark.parametrize("name", SCENARIOS)
def test_manifest_versions_are_the_installed_ones(name, scenarios):
    versions = scenarios[name].manifest["versions"]
    for dist in ("model-compression-toolkit", "torch"):
        try:
            installed = version(dist)
        except PackageNotFoundError:
            pytest.skip("%s is not installed: cannot compare the manifest's version" % dist)
        assert versions[dist] == installed, dist


@pytest.mark.parametrize("name", SCENARIOS)
def test_manifest_accuracy_is_on_the_validation_split(name, scenarios, validation_size):
    acc = scenarios[name].manifest["accuracy"]
    assert acc["dataset"] == "validation"
    for which in ("float", "quantized"):
        value = acc[which]
        assert isinstance(value, float) and math.isfinite(value) and 0.0 <= value <= 1.0, (which, value)
        # a share of correct predictions over the validation split: k / len(validation) for a whole k
        correct = value * validation_size
        assert abs(correct - round(correct)) < 1e-3, (which, value, validation_size)


def test_same_float_model_same_float_accuracy(scenarios):
    """Scenarios quantizing the same (seeded) model class report the same float accuracy: the float figure is
    the float model's, not the quantized one's."""
    by_model = {}
    for name in SCENARIOS:
        m = scenarios[name].manifest
        by_model.setdefault(m["model_name"], set()).add(m["accuracy"]["float"])
    assert all(len(values) == 1 for values in by_model.values()), by_model
    assert len(by_model) < len(SCENARIOS)  # some model is shared (clean / majority_degraded, outlier / outlier_fixed)
    # and where quantization went wrong the quantized accuracy shows it
    bad = scenarios["majority_degraded"].manifest["accuracy"]
    assert bad["quantized"] < bad["float"]


@pytest.mark.parametrize("name", SCENARIOS)
def test_manifest_model_name_is_the_quantized_class(name, scenarios):
    sc = scenarios[name]
    model_name = sc.manifest["model_name"]
    assert isinstance(model_name, str) and model_name.strip()
    # MCT's stage graphs scope every node of the model under the model's class name
    stage_logs = os.path.normpath(os.path.join(str(sc.dir), sc.manifest["stage_logs"]))
    scopes = {n.split("/", 1)[0] for n in stage_node_names(os.path.join(stage_logs, FIRST_STAGE))}
    assert scopes - {"Input", "Output"} == {model_name}


@pytest.mark.parametrize("name", SCENARIOS)
def test_manifest_model_name_is_a_demo_model_class(name, scenarios):
    torch = pytest.importorskip("torch")
    from demo import models

    cls = getattr(models, scenarios[name].manifest["model_name"], None)
    assert isinstance(cls, type) and issubclass(cls, torch.nn.Module)


@pytest.mark.parametrize("name", SCENARIOS)
def test_manifest_thresholds_are_what_mct_used(name, scenarios, tmp_path):
    sc = scenarios[name]
    cfg = sc.manifest["xquant_config"]
    # the demo passes no thresholds: MCT ran with its XQuantConfig defaults
    xquant = pytest.importorskip("model_compression_toolkit.xquant")
    assert cfg == config_fields(xquant.XQuantConfig(report_dir=str(tmp_path)))
    # and MCT's console log lists exactly the detections these thresholds give on its quant_report.json
    logged = mct_logged_detections(sc.dir)
    assert logged == detections_by_config(sc.quant_report, cfg)
    assert {layer for _, layer in logged} == set(sc.mct_degraded)


@pytest.mark.parametrize("name", SCENARIOS)
def test_manifest_stage_logs_hold_this_runs_stage_graphs(name, scenarios):
    sc = scenarios[name]
    rel = sc.manifest["stage_logs"]
    assert rel and not os.path.isabs(rel)  # relative: the logdir can move
    stage_logs = os.path.normpath(os.path.join(str(sc.dir), rel))
    assert os.path.isdir(stage_logs)
    assert stage_logs.startswith(str(sc.logdir / name / "mct_logs") + os.sep)  # this scenario's own mct.set_log_folder
    stages = [d for d in os.listdir(stage_logs) if os.path.isdir(os.path.join(stage_logs, d))]
    with_events = [d for d in stages if glob.glob(os.path.join(stage_logs, d, "*tfevents*"))]
    assert {FIRST_STAGE, QUANTIZED_STAGE} <= set(with_events)
    # the stage graph is of this report's model: it holds every layer XQuant compared
    names = {n.rsplit("/", 1)[-1] for n in stage_node_names(os.path.join(stage_logs, QUANTIZED_STAGE))}
    layers = set(sc.quant_report["intermediate_similarity_metrics_repr"])
    assert layers and layers <= names, layers - names


# --------------------------------------------------------------------------------------------
# The wrapper on a tiny model
# --------------------------------------------------------------------------------------------
@pytest.fixture
def mct_logger_restored():
    """MCT's log folder and logger handlers are process-global: put them back after the test."""
    mct = pytest.importorskip("model_compression_toolkit")
    with mct_logging_restored():
        yield mct


def test_wrapper_on_a_tiny_model(tmp_path, monkeypatch, mct_logger_restored):
    mct = mct_logger_restored
    torch = pytest.importorskip("torch")
    from model_compression_toolkit.xquant import XQuantConfig
    from model_compression_toolkit.xquant.pytorch import core_report_generator

    from demo.models import DigitsData
    from tb_xquant_plugin.mct_run import xquant_report_with_manifest

    class TinyNet(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(1, 4, 3, padding=1)
            self.act = torch.nn.ReLU()
            self.fc = torch.nn.Linear(4 * 64, 10)

        def forward(self, x):
            return self.fc(torch.flatten(self.act(self.conv(x)), 1))

    torch.manual_seed(0)
    data = DigitsData()
    float_model = TinyNet().eval()
    mct.set_log_folder(str(tmp_path / "mct_logs"))
    quantized, _ = mct.ptq.pytorch_post_training_quantization(
        float_model, data.representative(n_batches=2), core_config=mct.core.CoreConfig())

    # MCT's detection gets the XQuantConfig: record what it holds at that moment
    received = []
    real_detect = core_report_generator.core_detect_degrade_layer

    def spy(repr_sim, val_sim, cfg):
        received.append(json.loads(json.dumps(config_fields(cfg))))
        return real_detect(repr_sim, val_sim, cfg)

    monkeypatch.setattr(core_report_generator, "core_detect_degrade_layer", spy)
    thresholds = {"mse": 0.05, "cs": 0.2, "sqnr": 3.0, "maxdiff": 50.0}  # 'maxdiff' has no direction: MCT adds one
    under = {"mse": False, "cs": True, "sqnr": True}
    report_dir = tmp_path / "xquant_report"
    cfg = XQuantConfig(report_dir=str(report_dir),
                       custom_similarity_metrics={"maxdiff": lambda f, q: float((f - q).abs().max())},
                       threshold_quantize_error=thresholds, is_detect_under_threshold_quantize_error=under,
                       threshold_degrade_layer_ratio=0.9, threshold_zscore_outlier_removal=4.5,
                       threshold_ratio_unbalanced_concatenation=8.0,
                       threshold_bitwidth_mixed_precision_with_model_output_loss_objective=3)
    result, path = xquant_report_with_manifest(float_model, quantized, data.representative(n_batches=2),
                                               data.validation(n_batches=2), cfg, evaluate=data.accuracy,
                                               extra={"note": "tiny"})

    assert path == os.path.join(str(report_dir), MANIFEST_FILENAME)
    with open(path, encoding="utf-8") as f:
        m = json.load(f)
    # MCT's own return value is handed back, and it is what MCT wrote
    similarity, troubleshoot = result
    with open(report_dir / "quant_report.json", encoding="utf-8") as f:
        assert json.load(f) == json.loads(json.dumps(similarity))
    with open(report_dir / "troubleshoot_report.json", encoding="utf-8") as f:
        assert json.load(f) == json.loads(json.dumps(troubleshoot))
    assert "maxdiff" in similarity["output_similarity_metrics_repr"]
    # thresholds: exactly what MCT's detection received, which are the non-default ones passed here
    assert len(received) == 1
    assert m["xquant_config"] == received[0]
    assert m["xquant_config"]["threshold_quantize_error"] == thresholds
    assert m["xquant_config"]["threshold_bitwidth_mixed_precision_with_model_output_loss_objective"] == 3
    assert m["xquant_config"] != config_fields(XQuantConfig(report_dir=str(tmp_path)))
    # the caller's dicts are left alone although MCT adds the missing direction to the config it is given
    assert under == {"mse": False, "cs": True, "sqnr": True}
    assert cfg.is_detect_under_threshold_quantize_error.get("maxdiff") is False
    assert m["custom_metrics"] == ["maxdiff"]
    # model name, versions, accuracy, bit widths, extra
    assert m["model_name"] == "TinyNet"
    assert m["versions"]["model-compression-toolkit"] == version("model-compression-toolkit")
    assert m["versions"]["torch"] == version("torch")
    assert m["accuracy"] == {"float": data.accuracy(float_model), "quantized": data.accuracy(quantized),
                             "dataset": "validation"}
    assert m["bit_widths"]["last_layer"]["name"] == "fc"
    assert m["bit_widths"]["last_layer"]["weights_nbits"] == quantized.fc.weights_quantizers["weight"].num_bits
    assert m["extra"] == {"note": "tiny"}
    # stage logs: the folder mct.set_log_folder made, relative to the report, with this run's stage graphs
    stage_logs = os.path.normpath(os.path.join(str(report_dir), m["stage_logs"]))
    assert stage_logs.startswith(str(tmp_path / "mct_logs") + os.sep) and os.path.basename(stage_logs) == (
        "tensorboard_logs")
    names = {n.rsplit("/", 1)[-1] for n in stage_node_names(os.path.join(stage_logs, QUANTIZED_STAGE))}
    assert set(similarity["intermediate_similarity_metrics_repr"]) <= names
    # the plugin reads this manifest back
    from tb_xquant_plugin.api import analyse_report_dir

    analysis = analyse_report_dir(str(report_dir))
    assert analysis.report.defaults.quantize_error["mse"] == thresholds["mse"]
    assert analysis.report.defaults.bitwidth_mixed_precision_with_model_output_loss_objective == 3
