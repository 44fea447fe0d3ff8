"""Scale and load against real MCT demo output.

* ``bench/load.py`` run briefly (8 clients x 10 s) against a real ``tensorboard`` process, with
  ``--load_fast=false`` (Python multiplexer) and ``--load_fast=true`` (Rust data server): every route, random
  threshold overrides; zero errors (no 5xx, no timeout, strict JSON, and answers with the structure of the first
  answer: e.g. the graph keeps all its nodes) and the server's RSS stays bounded.
* A cold start under load: clients hammer ``graph`` from the moment the tab is listed, while TensorBoard is still
  loading; a report's graph may be empty before its events are loaded, but once it had nodes it never answers
  fewer.
* 500 runs in one logdir (unrelated scalar runs next to copies of real demo reports): discovery finds exactly the
  reports; every route answers on each, through the werkzeug test client and through a real ``tensorboard``.

``bench/load.py`` is loaded by path (``bench/`` is not a package this file relies on).
"""
from __future__ import annotations

import importlib.util
import json
import shutil
import threading
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("tb_xquant_bench_load", REPO / "bench" / "load.py")
load = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(load)

LOAD_FAST = ["false"]
if importlib.util.find_spec("tensorboard_data_server") is not None:
    LOAD_FAST.append("true")

CLIENTS, SECONDS = 8, 10.0
# RSS growth allowed between the end of the warm-up and the peak of the load phase.  Measured on the demo
# logdir: ~8-11 MB (the analysis LRU filling up with random thresholds); a leak per request (~4,000 requests
# here) or an unbounded cache would exceed this.
RSS_GROWTH_LIMIT_MB = 80


def strict_json(body):
    def bad(tok):
        raise AssertionError("bare %s token in JSON" % tok)
    return json.loads(body if isinstance(body, str) else body.decode("utf-8"), parse_constant=bad)


# --------------------------------------------------------------------------------------------
# bench/load.py, briefly
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("load_fast", LOAD_FAST, ids=lambda v: "load_fast=" + v)
def test_load_every_route(load_fast, demo_logdir, tmp_path):
    res = load.run(demo_logdir, clients=CLIENTS, seconds=SECONDS, load_fast=load_fast, seed=7, timeout=30,
                   log_path=str(tmp_path / "tensorboard.log"), echo=lambda s: None)
    table = load.format_table(res)
    print("\n" + table)
    assert res["warmup"]["errors"] == 0, table
    assert res["total"]["server_alive"] and not res["total"]["hung_clients"], table
    for route, r in res["routes"].items():
        assert r["requests"] > 0, "no %s request in %.0fs\n%s" % (route, SECONDS, table)
        assert r["errors"] == 0, "%s: %s\n%s" % (route, r["error_kinds"], table)
    assert res["total"]["requests"] >= 20 * SECONDS, table  # far from a hang: even 2 slow cores do ~400 req/s
    rss = res["rss_kb"]
    assert rss["after_warmup"] and rss["peak_load"], table
    assert rss["growth_load"] / 1024 < RSS_GROWTH_LIMIT_MB, table
    assert (rss["end"] - rss["after_warmup"]) / 1024 < RSS_GROWTH_LIMIT_MB, table


def shrinking(answers):
    """Pairs (earlier, later) of graph answers where ``later`` started after ``earlier`` had completed but has
    fewer nodes.  ``answers``: [(start, end, node_count)].  Overlapping requests are not ordered."""
    out = []
    by_end = sorted(answers, key=lambda a: a[1])
    for later in answers:
        done_before = [a for a in by_end if a[1] < later[0]]
        if done_before:
            most = max(done_before, key=lambda a: a[2])
            if later[2] < most[2]:
                out.append((most, later))
    return out


@pytest.mark.parametrize("load_fast", LOAD_FAST, ids=lambda v: "load_fast=" + v)
def test_cold_start_under_load_graph_never_shrinks(load_fast, demo_logdir, tmp_path):
    """Clients start while TensorBoard is still loading the logdir.  Every answer is 200 JSON; a report's graph
    may have no nodes before its events are loaded, but once an answer with N nodes has been received, no request
    started afterwards gets fewer; and the end state is the full graph (as read from the files)."""
    expected_nodes = {}
    from tb_xquant_plugin.producers import build_all
    for r in build_all(str(demo_logdir)):
        expected_nodes[r.id] = sorted(n.id for n in r.nodes)
    tb = load.TensorBoard(demo_logdir, load_fast, log_path=str(tmp_path / "tensorboard.log"))
    try:
        tb.poll("xquant listed", lambda: tb.json_plain("/data/plugins_listing").get("xquant"), 60)
        ids = tb.poll("reports listed", lambda: [r["id"] for r in tb.json("reports")["reports"]], 60)
        assert sorted(ids) == sorted(expected_nodes)
        lock = threading.Lock()
        graphs = {rid: [] for rid in ids}  # rid -> [(start, end, node count)]
        problems = []
        done = {rid: False for rid in ids}
        end = time.monotonic() + 60.0  # bound; the clients stop once every graph was full for a while
        full_since = [None]

        def client(i):
            k = i
            while time.monotonic() < end:
                with lock:
                    if full_since[0] is not None and time.monotonic() - full_since[0] > 3.0:
                        return
                rid = ids[k % len(ids)]
                k += 1
                route = "layers" if k % 3 == 0 else "report"
                try:
                    t0 = time.monotonic()
                    status, ctype, body = tb.api("graph", {"report": rid}, timeout=30)
                    t1 = time.monotonic()
                    s2, c2, b2 = tb.api(route, {"report": rid}, timeout=30)
                except OSError as e:
                    with lock:
                        problems.append("%s: %r" % (rid, e))
                    continue
                with lock:
                    for st, ct, b, what in ((status, ctype, body, "graph"), (s2, c2, b2, route)):
                        if st != 200 or ct != "application/json":
                            problems.append("%s %s -> %s %s %r" % (what, rid, st, ct, b[:200]))
                    if status != 200:
                        continue
                    nodes = sorted(n["id"] for n in strict_json(body)["nodes"])
                    graphs[rid].append((t0, t1, len(nodes)))
                    if nodes == expected_nodes[rid]:
                        done[rid] = True
                    if all(done.values()) and full_since[0] is None:
                        full_since[0] = time.monotonic()

        threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(120)
        assert not any(t.is_alive() for t in threads), "clients hung"
        assert not problems, "\n".join(problems[:20]) + "\n" + tb.output()
        for rid, answers in graphs.items():
            bad = shrinking(answers)
            t_start = min(a[0] for g in graphs.values() for a in g)
            assert not bad, "graph of %s: %d answers with fewer nodes than one received before they were asked, " \
                "e.g. %d nodes at +%.2fs..+%.2fs after %d nodes at +%.2fs..+%.2fs" % (
                    rid, len(bad), bad[0][1][2], bad[0][1][0] - t_start, bad[0][1][1] - t_start, bad[0][0][2],
                    bad[0][0][0] - t_start, bad[0][0][1] - t_start)
        assert all(done.values()), (done, {rid: max(a[2] for a in g) for rid, g in graphs.items() if g})
    finally:
        tb.stop()


# --------------------------------------------------------------------------------------------
# 500 runs in one logdir
# --------------------------------------------------------------------------------------------
TOTAL_RUNS = 500
REPORT_COPIES = {"copy_outlier": "outlier", "copy_clean": "clean", "copy_shift": "shift_negative",
                 "nested/deeper/copy_mp": "mixed_precision"}


def write_scalar_run(folder: Path, seed: int):
    from tensorboard.compat.proto import event_pb2, summary_pb2
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    folder.mkdir(parents=True, exist_ok=True)
    w = EventFileWriter(str(folder))
    for step in range(5):
        w.add_event(event_pb2.Event(wall_time=1.0 + step, step=step, summary=summary_pb2.Summary(value=[
            summary_pb2.Summary.Value(tag="loss", simple_value=1.0 / (1 + step + seed)),
            summary_pb2.Summary.Value(tag="accuracy", simple_value=0.5 + 0.01 * step)])))
    w.close()


@pytest.fixture(scope="module")
def many_runs_logdir(tmp_path_factory, demo_logdir):
    """500 runs: copies of four real demo scenarios (report + mct_logs, ~23 runs each) and unrelated scalar runs
    at various depths, some with names that look like XQuant's (but no report)."""
    from tb_xquant_plugin.readers.events import LocalEventSource

    root = tmp_path_factory.mktemp("runs500")
    for dst, src in REPORT_COPIES.items():
        shutil.copytree(demo_logdir / src, root / dst)
    n_report_runs = len(LocalEventSource(str(root)).runs())
    for i in range(TOTAL_RUNS - n_report_runs):
        name = ("exp_%03d/train" % i if i % 3 == 0 else "exp_%03d/eval/seed_%d" % (i, i % 5) if i % 3 == 1
                else "xquant_report_like_%03d/tensorboard_logs_not" % i)
        write_scalar_run(root / name, i)
    # a stray JSON that is not a report, and an empty folder named like a report dir
    (root / "exp_000" / "quant_report.json.bak").write_text("{}")
    (root / "empty" / "xquant_report").mkdir(parents=True)
    assert len(LocalEventSource(str(root)).runs()) == TOTAL_RUNS
    return root


def expected_report_names():
    return sorted("%s/xquant_report" % d for d in REPORT_COPIES)


class WsgiApi:
    """The plugin's routes (``Routes(ReportStore(...)).apps()``) behind a tiny dispatcher, in werkzeug's test
    client; the store reads event files directly and discovers in the foreground (no thread)."""

    def __init__(self, logdir):
        from werkzeug.test import Client

        from tb_xquant_plugin.readers.events import LocalEventSource
        from tb_xquant_plugin.server.app import Routes
        from tb_xquant_plugin.server.store import ReportStore

        self.store = ReportStore(str(logdir), lambda: LocalEventSource(str(logdir)), background=False)
        self.client = Client(Routes(self.store).wsgi_app())

    def get(self, route, **params):
        r = self.client.get("/" + route, query_string=params or None)
        return r.status_code, r.mimetype, r.get_data()

    def json(self, route, **params):
        status, ctype, body = self.get(route, **params)
        assert status == 200 and ctype == "application/json", (route, params, status, body[:500])
        return strict_json(body)


def check_every_route(get_json, get_raw, reports):
    """Every route on every report through ``get_json(route, **params)`` / ``get_raw``; returns the structural
    answers (per report: degraded layers, layer names, node ids, verdicts) for comparisons."""
    out = {}
    for r in reports:
        rid = r["id"]
        s = get_json("report", report=rid)
        layers = get_json("layers", report=rid)["layers"]
        g = get_json("graph", report=rid)
        v = get_json("verdicts", report=rid)
        assert s["layer_count"] == len(layers) > 0 and g["nodes"], r["name"]
        assert len(v["verdicts"]) == s["verdict_count"] and v["general"] == s["general"]
        for l in layers:
            assert get_json("layer", report=rid, layer=l["name"])["name"] == l["name"]
        for a in s["artifacts"]:
            status, ctype, body = get_raw("artifact", report=rid, id=a["id"])
            assert status == 200 and ctype == "image/png" and body.startswith(b"\x89PNG"), (r["name"], a)
        out[r["name"]] = {
            "degraded": s["degraded_layers"], "layers": [l["name"] for l in layers],
            "nodes": sorted(n["id"] for n in g["nodes"]),
            "verdicts": sorted((x["judge"], x["source"], tuple(x["layers"])) for x in v["verdicts"]),
            "problems": s["problems"]}
    ids = [r["id"] for r in reports]
    for a, b in zip(ids, ids[1:] + ids[:1]):
        c = get_json("compare", a=a, b=b)
        assert c["a"] == a and c["b"] == b and c["layers"]
    assert get_json("manual")["entries"]
    status, ctype, body = get_raw("static/index.js")
    assert status == 200 and ctype == "text/javascript" and body
    return out


def test_500_runs_werkzeug(many_runs_logdir, scenarios):
    api = WsgiApi(many_runs_logdir)
    t0 = time.monotonic()
    dirs = api.store.discover()
    discover_s = time.monotonic() - t0
    assert sorted(dirs) == expected_report_names()
    assert len(api.store._runs) == TOTAL_RUNS
    body = api.json("reports")
    reports = body["reports"]
    assert [r["name"] for r in reports] == expected_report_names()
    for r in reports:
        assert r["problems"] == [] and r["has_graph"] and r["has_histograms"] and r["stage_logs"], r
    got = check_every_route(api.json, api.get, reports)
    for dst, src in REPORT_COPIES.items():
        assert got[dst + "/xquant_report"]["degraded"] == scenarios[src].mct_degraded
    # discovery of 500 runs is far from the 15 s refresh period
    assert discover_s < 10, discover_s


@pytest.mark.parametrize("load_fast", LOAD_FAST, ids=lambda v: "load_fast=" + v)
def test_500_runs_tensorboard(load_fast, many_runs_logdir, tmp_path):
    """The same logdir in a real tensorboard: no 5xx, no hang, and the same answers as the files give."""
    api = WsgiApi(many_runs_logdir)
    want = check_every_route(api.json, api.get, api.json("reports")["reports"])
    with load.TensorBoard(many_runs_logdir, load_fast, log_path=str(tmp_path / "tensorboard.log")) as tb:
        reports = tb.wait_ready(deadline=150)
        assert [r["name"] for r in reports] == expected_report_names()

        def get_raw(route, **params):
            return tb.api(route, params or None, timeout=30)

        def get_json(route, **params):
            status, ctype, body = get_raw(route, **params)
            assert status == 200 and ctype == "application/json", (route, params, status, body[:500])
            return strict_json(body)

        got = check_every_route(get_json, get_raw, reports)
        assert got == want
        assert tb.proc.poll() is None
