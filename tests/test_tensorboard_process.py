"""A real ``tensorboard`` process: the plugin is discovered through its entry point, and its routes
answer through TensorBoard's data provider (``DataProviderSource``), both the Python multiplexer
(``--load_fast=false``) and the Rust data server (``--load_fast=true``) when it is installed."""
from __future__ import annotations

import importlib.util
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

DEADLINE = 60.0
POLL = 0.2  # polling interval of the deadline loops (not synchronisation)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class TensorBoard:
    def __init__(self, logdir, log_path, load_fast: str):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.log = open(log_path, "w+")
        cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--port", str(self.port),
               "--host", "127.0.0.1", "--load_fast=%s" % load_fast, "--reload_interval", "1"]
        # (--bind_all is a store_true flag in TensorBoard 2.21; leaving it out with --host 127.0.0.1 binds locally)
        self.proc = subprocess.Popen(cmd, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def get(self, path: str, **params):
        url = self.base + path + ("?" + urllib.parse.urlencode(params) if params else "")
        try:
            with urllib.request.urlopen(url, timeout=30) as r:
                return r.status, r.headers.get_content_type(), r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get_content_type(), e.read()

    def json(self, path: str, **params):
        status, ctype, body = self.get(path, **params)
        assert status == 200, (path, status, body[:500])
        assert ctype == "application/json"
        return json.loads(body)

    def output(self) -> str:
        self.log.seek(0)
        return self.log.read()[-4000:]

    def poll(self, what: str, fn, deadline: float = DEADLINE):
        """Call fn() until it returns a truthy value; fail with the server log after the deadline."""
        end = time.monotonic() + deadline
        last = None
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                pytest.fail("tensorboard exited with %s while waiting for %s:\n%s"
                            % (self.proc.returncode, what, self.output()))
            try:
                value = fn()
                if value:
                    return value
            except (urllib.error.URLError, ConnectionError, OSError, ValueError, KeyError) as e:
                last = e
            time.sleep(POLL)
        pytest.fail("%s not reached after %.0fs (last error: %r)\n%s" % (what, deadline, last, self.output()))

    def xquant_listing(self):
        return self.json("/data/plugins_listing").get("xquant")

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(15)
        self.log.close()


LOAD_FAST = ["false"]
if importlib.util.find_spec("tensorboard_data_server") is not None:
    LOAD_FAST.append("true")


@pytest.fixture(scope="module", params=LOAD_FAST, ids=lambda v: "load_fast=" + v)
def tb(request, demo_logdir, tmp_path_factory):
    srv = TensorBoard(demo_logdir, tmp_path_factory.mktemp("tb") / "tensorboard.log", request.param)
    yield srv
    srv.stop()


def approx_tree(obj, rel=1e-5):
    """obj with every float replaced by pytest.approx (structure and all other values compared exactly)."""
    if isinstance(obj, dict):
        return {k: approx_tree(v, rel) for k, v in obj.items()}
    if isinstance(obj, list):
        return [approx_tree(v, rel) for v in obj]
    if isinstance(obj, float):
        return pytest.approx(obj, rel=rel, abs=1e-9)
    return obj


def reference_summaries(api):
    out = {}
    for name, rid in api.report_ids().items():
        out[name] = api.json("report", report=rid)
    return out


def test_plugin_listed_and_reports_match_werkzeug(tb, demo_api, scenarios):
    entry = tb.poll("xquant listed and enabled", lambda: (lambda e: e if e and e["enabled"] else None)(
        tb.xquant_listing()))
    assert entry["tab_name"] == "XQuant"
    assert entry["loading_mechanism"]["type"] == "IFRAME"

    ref = reference_summaries(demo_api)
    ref_reports = {r["name"]: r for r in demo_api.json("reports")["reports"]}

    # The data provider loads event files in the background: poll until every report has its
    # graph, histograms and stage logs (as read directly from the files), then compare.
    def loaded():
        body = tb.json("/data/plugin/xquant/reports")
        by_name = {r["name"]: r for r in body["reports"]}
        if set(by_name) != set(ref_reports):
            return None
        for name, r in by_name.items():
            want = ref_reports[name]
            if (r["has_graph"], r["has_histograms"], r["stage_logs"]) != (
                    want["has_graph"], want["has_histograms"], want["stage_logs"]):
                return None
        return by_name

    reports = tb.poll("all reports loaded through the data provider", loaded)
    for name, r in reports.items():
        assert r["id"] == ref_reports[name]["id"]
        assert r["problems"] == ref_reports[name]["problems"] == []
        s = tb.json("/data/plugin/xquant/report", report=r["id"])
        want = ref[name]
        assert s["degraded_layers"] == want["degraded_layers"]
        assert len(s["degraded_layers"]) == len(scenarios[name.split("/")[0]].mct_degraded)
        assert s["judges_skipped"] == want["judges_skipped"]
        # the Rust data server keeps MCT's float64 histograms, the Python one float32: numbers agree to 1e-5
        assert s["verdicts"] == approx_tree(want["verdicts"])
        assert s["general"] == want["general"]
        assert s["layer_count"] == want["layer_count"]
        g = tb.json("/data/plugin/xquant/graph", report=r["id"])
        assert g == approx_tree(demo_api.json("graph", report=r["id"]))

    # histograms through the data provider give the same z-scores as from the files
    rid = ref_reports["outlier/xquant_report"]["id"]
    layer = scenarios["outlier"].troubleshoot["outlier_removal"][0][0]
    via_tb = tb.json("/data/plugin/xquant/layer", report=rid, layer=layer)["histogram"]
    direct = demo_api.json("layer", report=rid, layer=layer)["histogram"]
    assert via_tb["max_zscore"] == pytest.approx(direct["max_zscore"])
    assert via_tb["mu"] == pytest.approx(direct["mu"]) and via_tb["sigma"] == pytest.approx(direct["sigma"])

    # the static bundle and a PNG artifact through the real server
    status, ctype, body = tb.get("/data/plugin/xquant/static/index.js")
    assert status == 200 and ctype == "text/javascript" and body
    art = ref["outlier/xquant_report"]["artifacts"][0]
    status, ctype, body = tb.get("/data/plugin/xquant/artifact", report=rid, id=art["id"])
    assert status == 200 and ctype == "image/png" and body.startswith(b"\x89PNG")
    status, ctype, body = tb.get("/data/plugin/xquant/artifact", report=rid, id="../quant_report.json")
    assert status == 404 and ctype == "application/json"
    status, ctype, body = tb.get("/data/plugin/xquant/report", report=rid, ratio="abc")
    assert status == 400 and "error" in json.loads(body)


def test_logdir_without_report_is_listed_disabled(tmp_path):
    logdir = tmp_path / "empty_logdir"
    (logdir / "some_run").mkdir(parents=True)
    (logdir / "some_run" / "notes.txt").write_text("no XQuant here")
    srv = TensorBoard(logdir, tmp_path / "tensorboard.log", "false")
    try:
        entry = srv.poll("xquant in plugins_listing", srv.xquant_listing)
        assert entry["enabled"] is False
        body = srv.json("/data/plugin/xquant/reports")
        assert body["reports"] == [] and body["hint"]
        # still disabled once discovery has certainly run (reports above triggered it)
        assert srv.xquant_listing()["enabled"] is False
    finally:
        srv.stop()
