"""A real ``tensorboard`` process: the plugin is discovered through its entry point, and its routes
answer through TensorBoard's data provider (``DataProviderSource``), both the Python multiplexer
(``--load_fast=false``) and the Rust data server (``--load_fast=true``) when it is installed.

Each logdir is served twice, by tensorboard and by the werkzeug test client on the files directly; once
tensorboard has loaded the event files, both must answer the same.  The synthetic logdir of
``bench/mct_format.py`` needs no torch; the demo (real MCT runs) adds its scenario-specific checks."""
from __future__ import annotations

import importlib.util
import json

import pytest

from demo.keras_env import KERAS_SCENARIOS  # the demo's Keras scenarios (tests/test_keras.py)
from demo.onnx_demo import ONNX_SCENARIOS  # the demo's ONNX scenarios (tests/test_onnx_demo.py)
from testkit.procs import TensorBoardProcess

DEADLINE = 60.0  # seconds for tensorboard to load a logdir's event files
LOAD_ALL_DEADLINE = 300.0  # ... all of them, stage graphs included

LOAD_FAST = ["false"]
if importlib.util.find_spec("tensorboard_data_server") is not None:
    LOAD_FAST.append("true")


def start_tensorboard(logdir, log_path, load_fast: str) -> TensorBoardProcess:
    return TensorBoardProcess(logdir, load_fast=load_fast, reload_interval=1, log_path=log_path).start()


@pytest.fixture(scope="module", params=LOAD_FAST, ids=lambda v: "load_fast=" + v)
def tb(request, demo_logdir, tmp_path_factory):
    with start_tensorboard(demo_logdir, tmp_path_factory.mktemp("tb") / "tensorboard.log", request.param) as srv:
        yield srv


@pytest.fixture(scope="module", params=LOAD_FAST, ids=lambda v: "load_fast=" + v)
def tb_generated(request, mct_format_logdir, tmp_path_factory):
    with start_tensorboard(mct_format_logdir, tmp_path_factory.mktemp("tb") / "tensorboard.log",
                           request.param) as srv:
        yield srv


def approx_tree(obj, rel=1e-5):
    """obj with every float replaced by pytest.approx (structure and all other values compared exactly)."""
    if isinstance(obj, dict):
        return {k: approx_tree(v, rel) for k, v in obj.items()}
    if isinstance(obj, list):
        return [approx_tree(v, rel) for v in obj]
    if isinstance(obj, float):
        return pytest.approx(obj, rel=rel, abs=1e-9)
    return obj


def xquant(tb, route, **params):
    return tb.plugin_json(route, params or None)


def enabled_listing(tb):
    entry = tb.poll("xquant listed and enabled",
                    lambda: (lambda e: e if e and e["enabled"] else None)(tb.xquant_listing()), DEADLINE)
    assert entry["tab_name"] == "XQuant"
    assert entry["loading_mechanism"]["type"] == "IFRAME"
    return entry


def loaded_reports(tb, api):
    """Poll until every report has its graph, histograms, stage logs and problems as read directly from the files
    (the data provider loads event files in the background, the stage graphs after the report's own ones: until
    then a report may carry a pairing problem); returns name -> tensorboard's entry."""
    want = {r["name"]: r for r in api.json("reports")["reports"]}

    differ: dict = {}

    def loaded():
        by_name = {r["name"]: r for r in xquant(tb, "reports")["reports"]}
        differ.clear()
        if set(by_name) != set(want):
            differ["names"] = sorted(set(by_name) ^ set(want))
            return None
        for name, r in by_name.items():
            w = want[name]
            for k in ("has_graph", "has_histograms", "stage_logs", "problems"):
                if r[k] != w[k]:
                    differ[name] = (k, r[k], w[k])
        return None if differ else by_name

    try:
        # the Python loader (load_fast=false) reads every run again each second: on a busy 2-core machine the
        # stage graphs of all scenarios take minutes
        reports = tb.poll("all reports loaded through the data provider", loaded, LOAD_ALL_DEADLINE)
    except TimeoutError as e:
        raise AssertionError("still different from the files: %r\n%s" % (differ, str(e)[:2000])) from None
    for name, r in reports.items():
        assert r["id"] == want[name]["id"]
        assert r["problems"] == want[name]["problems"]
        # a complete report has no problems; a Keras one has its two notes (cs as +cosine, no MCT troubleshooting); an
        # ONNX one its pairing notes (rescaled channels, replaced ops: tests/test_onnx_demo.py)
        assert r["problems"] == [] or (name.split("/")[0] in KERAS_SCENARIOS and len(r["problems"]) == 2) \
            or name.split("/")[0] in ONNX_SCENARIOS, r
    return reports


def settled_answer(tb, route, want, **params):
    """tensorboard's answer once it equals ``want`` (floats to 1e-5): while the data provider is still reading
    events (a busy machine), answers may come from part of them and are rebuilt on a later request.  After the
    deadline, the last answer (the assertion that follows shows the difference)."""
    last = {}

    def same():
        last["body"] = xquant(tb, route, **params)
        return last["body"] == approx_tree(want)

    try:
        tb.poll("%s %s as read from the files" % (route, params), same, DEADLINE)
    except TimeoutError:
        pass
    return last["body"]


def assert_same_answers(tb, api, reports, mct_degraded):
    """report, graph and the histograms of every report as tensorboard serves them equal the files' answers.
    ``mct_degraded``: report name -> MCT's degraded layers."""
    for name, r in reports.items():
        want = api.json("report", report=r["id"])
        s = settled_answer(tb, "report", want, report=r["id"])
        assert s["degraded_layers"] == want["degraded_layers"] == mct_degraded[name]
        assert s["judges_skipped"] == want["judges_skipped"]
        # the Rust data server keeps MCT's float64 histograms, the Python one float32: numbers agree to 1e-5
        assert s["verdict_groups"] == approx_tree(want["verdict_groups"])
        assert s["verdict_count"] == want["verdict_count"]
        assert s["general"] == want["general"]
        assert s["layer_count"] == want["layer_count"]
        graph = api.json("graph", report=r["id"])
        got = settled_answer(tb, "graph", graph, report=r["id"])
        assert got == approx_tree(graph)


def assert_histogram_matches(tb, api, rid, layer):
    via_tb = xquant(tb, "layer", report=rid, layer=layer)["histogram"]
    direct = api.json("layer", report=rid, layer=layer)["histogram"]
    assert direct is not None, layer
    assert via_tb["max_zscore"] == pytest.approx(direct["max_zscore"])
    assert via_tb["mu"] == pytest.approx(direct["mu"]) and via_tb["sigma"] == pytest.approx(direct["sigma"])


def assert_static_and_errors(tb, rid):
    status, ctype, body = tb.plugin_request("static/index.js")
    assert status == 200 and ctype == "text/javascript" and body
    status, ctype, body = tb.plugin_request("artifact", {"report": rid, "id": "../quant_report.json"})
    assert status == 404 and ctype == "application/json"
    status, ctype, body = tb.plugin_request("report", {"report": rid, "ratio": "abc"})
    assert status == 400 and "error" in json.loads(body)


def test_generated_logdir_matches_werkzeug(tb_generated, generated_api, generated_models):
    """Torch-free: the synthetic MCT-format logdir through a real tensorboard."""
    enabled_listing(tb_generated)
    reports = loaded_reports(tb_generated, generated_api)
    assert set(reports) == {m.rel for m in generated_models.values()}
    assert_same_answers(tb_generated, generated_api, reports,
                        {m.rel: m.mct_degraded for m in generated_models.values()})
    for m in generated_models.values():
        rid = reports[m.rel]["id"]
        layers = generated_api.json("layers", report=rid)["layers"]
        with_hist = [l["name"] for l in layers
                     if generated_api.json("layer", report=rid, layer=l["name"])["histogram"]]
        assert with_hist, m.name
        for layer in (with_hist[0], with_hist[-1]):
            assert_histogram_matches(tb_generated, generated_api, rid, layer)
    assert_static_and_errors(tb_generated, reports[generated_models["model_60"].rel]["id"])


def test_plugin_listed_and_reports_match_werkzeug(tb, demo_api, scenarios):
    enabled_listing(tb)
    reports = loaded_reports(tb, demo_api)
    assert_same_answers(tb, demo_api, reports, {sc.rel: sc.mct_degraded for sc in scenarios.values()})

    # histograms through the data provider give the same z-scores as from the files
    rid = reports["outlier/xquant_report"]["id"]
    layer = scenarios["outlier"].troubleshoot["outlier_removal"][0][0]
    assert_histogram_matches(tb, demo_api, rid, layer)

    # the static bundle and a PNG artifact through the real server
    art = demo_api.json("report", report=rid)["artifacts"][0]
    status, ctype, body = tb.plugin_request("artifact", {"report": rid, "id": art["id"]})
    assert status == 200 and ctype == "image/png" and body.startswith(b"\x89PNG")
    assert_static_and_errors(tb, rid)


def test_logdir_without_report_is_listed_disabled(tmp_path):
    """Also the helper itself: base URL, log file, readiness by polling, and a clean stop."""
    logdir = tmp_path / "empty_logdir"
    (logdir / "some_run").mkdir(parents=True)
    (logdir / "some_run" / "notes.txt").write_text("no XQuant here")
    srv = start_tensorboard(logdir, tmp_path / "tensorboard.log", "false")
    try:
        assert srv.base == "http://127.0.0.1:%d" % srv.port and srv.alive()
        assert srv.request("/data/environment").status == 200
        entry = srv.poll("xquant in plugins_listing", srv.xquant_listing, DEADLINE)
        assert entry["enabled"] is False
        body = xquant(srv, "reports")
        assert body["reports"] == [] and body["hint"]
        # still disabled once discovery has certainly run (reports above triggered it)
        assert srv.xquant_listing()["enabled"] is False
    finally:
        rc = srv.stop()
    assert not srv.alive() and rc is not None
    assert (tmp_path / "tensorboard.log").is_file()
    assert srv.stop() == rc  # twice is harmless
