"""Weights bit widths without tb-xquant's manifest, from what MCT 2.6.1 itself logs.

The stage graphs of ``mct.set_log_folder`` list each layer's weights bit-width candidates before
mixed precision chooses (``'[8]'``, or ``'[8, 4, 2]'`` under mixed precision); the chosen widths are
in MCT's log line "Final weights bit-width configuration".  These tests run on copies of the real
demo with the manifest and troubleshoot_report.json removed, and compare with what the manifest
recorded from the quantized model (the reference: ``quantized_bit_widths`` reads ``num_bits`` of the
model's quantizers) and with MCT's own mixed-precision verdict."""
from __future__ import annotations

import random
import re
import shutil
from pathlib import Path

import pytest

from tb_xquant_plugin.model import verdict as V
from tb_xquant_plugin.judges.run import analyse
from tb_xquant_plugin.producers.mct_pytorch import WEIGHTS_CANDIDATE_STAGES, build_report
from tb_xquant_plugin.producers import mct_files as art
from tb_xquant_plugin.model import manifest as mf
from tb_xquant_plugin.readers.events import LocalEventSource
from tb_xquant_plugin.producers.mct_stages import _topological_order, stage_weights_candidates

SCENARIOS = ("clean", "outlier", "outlier_fixed", "shift_negative", "unbalanced_concat", "mixed_precision",
             "majority_degraded")
FINAL_WEIGHTS = re.compile(r"Final weights bit-width configuration: \[([0-9,\s]*)\]")


def manifest_weights(sc) -> dict:
    """layer -> kernel bits, as the manifest recorded them from the quantized model."""
    return {name: e["weights"]["weight"] for name, e in sc.manifest["bit_widths"]["layers"].items()
            if "weights" in e}


def strip_to_mct_output(src: Path, dst: Path) -> Path:
    """A copy of one demo scenario holding only what MCT wrote (no manifest, no troubleshoot_report.json)."""
    shutil.copytree(src, dst)
    for name in (mf.FILENAME, art.TROUBLESHOOT_REPORT):
        (dst / "xquant_report" / name).unlink()
    return dst


def build(logdir: Path, scenario: str):
    rel = "%s/xquant_report" % scenario
    return build_report(LocalEventSource(str(logdir)), str(logdir), rel, str(logdir / rel))


def stage_logs_dir(scenario_dir: Path) -> Path:
    (d,) = scenario_dir.glob("mct_logs/logs_*/tensorboard_logs")
    return d


def mct_log(scenario_dir: Path) -> Path:
    return stage_logs_dir(scenario_dir).parent / art.MCT_LOG


@pytest.fixture(scope="module")
def plain_logdir(tmp_path_factory, demo_logdir):
    """Every demo scenario as plain MCT output."""
    root = tmp_path_factory.mktemp("plain_mct")
    for name in SCENARIOS:
        strip_to_mct_output(demo_logdir / name, root / name)
    return root


@pytest.mark.parametrize("name", SCENARIOS)
def test_weights_bits_without_manifest_match_the_quantized_model(name, plain_logdir, scenarios):
    r = build(plain_logdir, name)
    assert r.manifest is None and r.mct_troubleshoot is None
    expected = manifest_weights(scenarios[name])
    assert expected
    got = {n: r.quant[n].weights_nbits for n in expected}
    assert got == expected
    for n in expected:
        qp = r.quant[n]
        assert type(qp.weights_nbits) is int
        # one candidate: the stage graph decides; several (mixed precision): MCT's log line does
        assert qp.weights_nbits_source == ("stage graph" if len(set(qp.weights_nbits_candidates)) == 1 else "mct log")
        assert qp.weights_nbits in qp.weights_nbits_candidates
    assert not [p for p in r.problems if "bit width" in p.what], [p.what for p in r.problems]


def test_mixed_precision_judge_fires_without_manifest_like_mct(plain_logdir, scenarios):
    sc = scenarios["mixed_precision"]
    r = build(plain_logdir, "mixed_precision")
    a = analyse(r)
    computed = [v for v in a.verdicts if v.judge == V.MIXED_PRECISION]
    # MCT's own verdict (troubleshoot_report.json of the original run) and the manifest's last layer
    assert [v.layers for v in computed] == [sc.troubleshoot[V.MIXED_PRECISION]]
    last = sc.manifest["bit_widths"]["last_layer"]
    n = computed[0].numbers
    assert computed[0].source == "computed" and n["from"] == "graph" and n["weights_from"] == "mct log"
    assert (n["layer"], n["weights_nbits"], n["activation_nbits"]) == (
        last["name"], last["weights_nbits"], last["activation_nbits"])
    assert n["weights_nbits"] <= n["threshold"] == sc.xquant_config[
        "threshold_bitwidth_mixed_precision_with_model_output_loss_objective"]
    # the other scenarios keep their bits: no verdict there, as MCT
    for other in ("clean", "outlier", "shift_negative"):
        assert not [v for v in analyse(build(plain_logdir, other)).verdicts if v.judge == V.MIXED_PRECISION]


def test_layer_route_gives_weights_bits_as_int(plain_logdir, scenarios, make_api):
    api = make_api(str(plain_logdir))
    rid = api.report_ids()["mixed_precision/xquant_report"]
    for name, bits in manifest_weights(scenarios["mixed_precision"]).items():
        quant = api.json("layer", report=rid, layer=name)["quant"]
        assert type(quant["weights_nbits"]) is int and quant["weights_nbits"] == bits
        assert quant["weights_nbits_source"] == "mct log"
        assert set(quant) >= {"activation_nbits", "weights_nbits_candidates"} and "stage" not in quant


def test_mct_log_order_is_the_stage_graph_order(demo_logdir, scenarios):
    """MCT's log line lists the layers with several candidates in topological order; the stage graph
    gives the same layers in the same order as the quantized model's children (the manifest's order)."""
    sc_dir = demo_logdir / "mixed_precision"
    widths, note = art.final_weights_config(str(stage_logs_dir(sc_dir)))
    assert widths is not None, note
    src = LocalEventSource(str(sc_dir))
    runs = {r.rsplit("/", 1)[-1]: r for r in src.runs() if "/tensorboard_logs/" in r}
    stage = next(st for st in WEIGHTS_CANDIDATE_STAGES if st in runs)
    candidates, configurable = stage_weights_candidates(src.graph(runs[stage]))
    expected = manifest_weights(scenarios["mixed_precision"])
    assert configurable == [n for n in expected if len(set(candidates[n])) > 1]
    assert widths == [expected[n] for n in configurable]
    # the same numbers as the line in the file
    (line,) = FINAL_WEIGHTS.findall(mct_log(sc_dir).read_text())
    assert widths == [int(x) for x in line.split(",")]


def test_mct_log_sections_of_other_runs_are_not_read(demo_logdir):
    """MCT's logger keeps writing into every log file opened in the process: the demo's first log
    also holds the mixed-precision run's line, which must not be taken for the first run's."""
    for name in SCENARIOS:
        text = mct_log(demo_logdir / name).read_text()
        widths, note = art.final_weights_config(str(stage_logs_dir(demo_logdir / name)))
        if name == "mixed_precision":
            assert widths is not None
            continue
        assert widths is None and "Final weights bit-width configuration" in note
        if FINAL_WEIGHTS.search(text):  # a later run's line in this file
            assert text.index(str(stage_logs_dir(demo_logdir / "mixed_precision"))) < FINAL_WEIGHTS.search(text).start()


def test_unknown_bits_are_a_problem_not_silence(tmp_path, demo_logdir):
    d = strip_to_mct_output(demo_logdir / "mixed_precision", tmp_path / "mixed_precision")
    mct_log(d).unlink()
    r = build(tmp_path, "mixed_precision")
    (p,) = [p for p in r.problems if "bit width" in p.what]
    assert "mct_log.log" in p.what and "candidates" in p.what
    assert "xquant_report_with_manifest" in p.hint and "Final weights bit-width configuration" in p.hint
    assert all(qp.weights_nbits is None for qp in r.quant.values() if qp.weights_nbits_candidates)
    assert not [v for v in analyse(r).verdicts if v.judge == V.MIXED_PRECISION]


def test_a_log_line_that_does_not_fit_is_not_used(tmp_path, demo_logdir, scenarios):
    d = strip_to_mct_output(demo_logdir / "mixed_precision", tmp_path / "mixed_precision")
    log = mct_log(d)
    text = log.read_text()
    widths = [int(x) for x in FINAL_WEIGHTS.search(text).group(1).split(",")]
    log.write_text(FINAL_WEIGHTS.sub("Final weights bit-width configuration: %s" % widths[:-1], text))
    r = build(tmp_path, "mixed_precision")
    (p,) = [p for p in r.problems if "bit width" in p.what]
    assert "%d widths" % (len(widths) - 1) in p.what and "not used" in p.what
    # as many widths as layers, but one that is none of the layer's candidates
    outside = max(c for qp in r.quant.values() for c in (qp.weights_nbits_candidates or [])) + 1
    log.write_text(FINAL_WEIGHTS.sub("Final weights bit-width configuration: %s" % (widths[:-1] + [outside]), text))
    r = build(tmp_path, "mixed_precision")
    (p,) = [p for p in r.problems if "bit width" in p.what]
    assert "not all among" in p.what and "not used" in p.what
    assert all(qp.weights_nbits is None for qp in r.quant.values() if qp.weights_nbits_candidates)
    # the manifest, when there is one, still gives them
    shutil.copy(demo_logdir / "mixed_precision" / "xquant_report" / mf.FILENAME, d / "xquant_report")
    r = build(tmp_path, "mixed_precision")
    assert not [p for p in r.problems if "bit width" in p.what]
    expected = manifest_weights(scenarios["mixed_precision"])
    assert {n: (r.quant[n].weights_nbits, r.quant[n].weights_nbits_source) for n in expected} == {
        n: (b, "manifest") for n, b in expected.items()}


def test_topological_order_is_networkx_s(tmp_path):
    """The order MCT sorts configurable layers in (networkx's topological_sort), on random DAGs whose
    edges are added in node order."""
    nx = pytest.importorskip("networkx")
    rng = random.Random(7)
    for _ in range(200):
        n = rng.randint(1, 14)
        ids = ["n%d" % i for i in rng.sample(range(100), n)]
        inputs = {i: [] for i in ids}
        g = nx.MultiDiGraph()
        g.add_nodes_from(ids)
        for k, node in enumerate(ids):
            for src in rng.sample(ids[:k], rng.randint(0, min(3, k))):
                inputs[node].append(src)
                g.add_edge(src, node)
        assert _topological_order(ids, inputs) == list(nx.topological_sort(g))
