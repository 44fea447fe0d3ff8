"""A logdir written while it is read: reports appearing after the server started, ``quant_report.json``
rewritten half-way, event files being appended, a report dir re-run in place, and a writer thread racing
readers.

The invariant checked everywhere: every answer is exactly the answer a *fresh* server (new ``ReportStore``,
cold caches) gives for some state the files really were in while the request ran — the state before the write
or the state after it; never a mix (e.g. layers of the old ``quant_report.json`` with degraded flags of the new
one), never a 5xx; and once the writer is done, a later request (after one discovery pass, which the background
thread makes every 15 s; or ``GET reports?refresh=1``) shows the final state, i.e. nothing stale or broken
sticks.

The werkzeug tests drive ``ReportStore(background=False)`` through ``Routes(store).apps()`` and call
``store.discover()`` explicitly where the background thread would; one test runs a real ``tensorboard``.
Everything is built from copies of the real MCT demo output.
"""
from __future__ import annotations

import importlib.util
import json
import os
import re
import shutil
import struct
import threading
from pathlib import Path
from typing import Dict, List, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
_spec = importlib.util.spec_from_file_location("tb_xquant_bench_load", REPO / "bench" / "load.py")
bench = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(bench)

ANALYSIS_ROUTES = ("report", "layers", "verdicts", "graph")


def strict_json(body):
    def bad(tok):
        raise AssertionError("bare %s token in JSON" % tok)
    return json.loads(body if isinstance(body, str) else body.decode("utf-8"), parse_constant=bad)


class WsgiApi:
    """``Routes(ReportStore(..., background=False)).wsgi_app()`` in werkzeug's test client (files read directly
    through ``LocalEventSource``)."""

    def __init__(self, logdir):
        from tb_xquant_plugin.readers.events import LocalEventSource
        from tb_xquant_plugin.server.app import Routes
        from tb_xquant_plugin.server.store import ReportStore

        self.logdir = str(logdir)
        self.store = ReportStore(self.logdir, lambda: LocalEventSource(self.logdir), background=False)
        self.app = Routes(self.store).wsgi_app()

    def get(self, route, **params):
        from werkzeug.test import Client

        r = Client(self.app).get("/" + route, query_string=params or None)  # a client per call: thread-safe
        return r.status_code, r.mimetype, r.get_data()

    def json(self, route, **params):
        status, ctype, body = self.get(route, **params)
        assert status == 200 and ctype == "application/json", (route, params, status, body[:800])
        return strict_json(body)


def requests_for(rid: str, layer: str = None) -> List[Tuple[str, Dict[str, str]]]:
    out = [(r, {"report": rid}) for r in ANALYSIS_ROUTES]
    if layer:
        out.append(("layer", {"report": rid, "layer": layer}))
    return out


def ask(api: WsgiApi, reqs) -> Dict[str, object]:
    """route -> answer (status != 200 is kept as ('status', code, body) so that it compares unequal)."""
    out = {}
    for route, params in reqs:
        status, ctype, body = api.get(route, **params)
        key = route + "?" + "&".join("%s=%s" % kv for kv in sorted(params.items()))
        ok = status == 200 and ctype == "application/json"
        out[key] = strict_json(body) if ok else ("status", status, body[:300])
    return out


def fresh(logdir, reqs, refresh_listing=False) -> Dict[str, object]:
    """What a brand-new server answers on the files as they are now."""
    api = WsgiApi(logdir)
    out = ask(api, reqs)
    if refresh_listing:
        out["reports"] = api.json("reports")
    return out


def assert_one_of(got: Dict[str, object], states: Dict[str, Dict[str, object]], when: str) -> str:
    """Every answer equals the fresh answer of one of ``states`` (name -> answers); returns the state matched by
    all of them (answers of different routes may legitimately come from different states only if the files
    changed between them, which the sequential tests never do)."""
    matched = None
    for key, answer in got.items():
        names = [n for n, s in states.items() if s.get(key) == answer]
        assert names, "%s: %s is none of the states %s:\n%s" % (when, key, list(states), json.dumps(answer)[:1500])
        if matched is None:
            matched = set(names)
        else:
            matched &= set(names)
        assert matched, "%s: answers mix the states (%s answers %s)" % (when, key, names)
    return sorted(matched)[0]


def tfrecords(data: bytes) -> List[bytes]:
    """Split an event file into its TFRecord frames (uint64 length, crc, payload, crc)."""
    out, i = [], 0
    while i < len(data):
        (n,) = struct.unpack("<Q", data[i:i + 8])
        out.append(data[i:i + 8 + 4 + n + 4])
        i += 8 + 4 + n + 4
    assert b"".join(out) == data
    return out


def event_file(report_dir: Path) -> Path:
    (p,) = [p for p in (report_dir / "xquant").iterdir() if "tfevents" in p.name]
    return p


def graph_record_index(records: List[bytes]) -> int:
    from tensorboard.compat.proto import event_pb2

    for i, rec in enumerate(records):
        ev = event_pb2.Event.FromString(rec[12:-4])
        if ev.HasField("graph_def"):
            return i
    raise AssertionError("no graph event")


def version_b(quant_report: dict) -> dict:
    """Another valid quant_report.json for the same model: the first layer becomes degraded (mse 5.0) and
    every other layer looks perfect (so the degraded set and the verdicts change)."""
    b = json.loads(json.dumps(quant_report))
    for ds in ("repr", "val"):
        layers = b["intermediate_similarity_metrics_" + ds]
        for i, name in enumerate(layers):
            if i == 0:
                layers[name].update(mse=5.0, cs=0.5, sqnr=0.05)
            else:
                layers[name].update(mse=1e-6, cs=1.0, sqnr=1e5)
    return b


def write_in_place(path: Path, data: bytes):
    """The way a plain ``open(..., 'w')`` writer leaves a file at some moment (no atomic rename)."""
    with open(path, "wb") as f:
        f.write(data)


def copy_scenario(demo_logdir: Path, name: str, dst: Path) -> Path:
    shutil.copytree(demo_logdir / name, dst)
    return dst / "xquant_report"


def rid_of(rel: str) -> str:
    from tb_xquant_plugin.model.report import report_id

    return report_id(rel)


def degraded_layer(scenarios, name) -> str:
    return scenarios[name].mct_degraded[0]


# --------------------------------------------------------------------------------------------
# werkzeug: a report appearing after the server started, copied in stages
# --------------------------------------------------------------------------------------------
def test_report_appearing_after_start(tmp_path, demo_logdir, scenarios):
    logdir = tmp_path / "logdir"
    copy_scenario(demo_logdir, "clean", logdir / "base")
    api = WsgiApi(logdir)
    api.store.discover()
    listing = api.json("reports")
    assert [r["name"] for r in listing["reports"]] == ["base/xquant_report"]

    src = demo_logdir / "outlier"
    late = logdir / "late"
    rd = late / "xquant_report"
    rid = rid_of("late/xquant_report")
    layer = degraded_layer(scenarios, "outlier")
    reqs = requests_for(rid, layer)
    full_qr = (src / "xquant_report" / "quant_report.json").read_bytes()
    records = tfrecords(event_file(src / "xquant_report").read_bytes())
    ev_name = event_file(src / "xquant_report").name
    gi = graph_record_index(records)

    def stage_mct_logs():
        shutil.copytree(src / "mct_logs", late / "mct_logs")

    def stage_half_quant_report():
        rd.mkdir(parents=True)
        write_in_place(rd / "quant_report.json", full_qr[: len(full_qr) // 2])

    def stage_full_quant_report():
        write_in_place(rd / "quant_report.json", full_qr)

    def stage_histogram_events():
        (rd / "xquant").mkdir()
        write_in_place(rd / "xquant" / ev_name, b"".join(records[:gi]))

    def stage_half_graph_record():
        with open(rd / "xquant" / ev_name, "ab") as f:
            f.write(records[gi][: len(records[gi]) // 2])

    def stage_rest():
        write_in_place(rd / "xquant" / ev_name, b"".join(records))
        for p in (src / "xquant_report").iterdir():
            if p.name not in ("quant_report.json", "xquant"):
                (shutil.copytree if p.is_dir() else shutil.copy2)(p, rd / p.name)

    prev_listing, prev = listing, None
    for stage in (stage_mct_logs, stage_half_quant_report, stage_full_quant_report, stage_histogram_events,
                  stage_half_graph_record, stage_rest):
        stage()
        want_listing = fresh(logdir, [], refresh_listing=True)["reports"]
        # before the next discovery pass: the old listing or the new one, nothing else
        assert api.json("reports") in (prev_listing, want_listing), stage.__name__
        # a request naming the new report finds it without waiting for discovery
        want = fresh(logdir, reqs)
        states = {"now": want} if prev is None else {"before": prev, "now": want}
        assert_one_of(ask(api, reqs), states, stage.__name__)
        # after one discovery pass (what the background thread does) everything is the current state
        api.store.discover()
        assert api.json("reports") == want_listing, stage.__name__
        assert ask(api, reqs) == want, stage.__name__
        assert api.json("reports", refresh="1") == want_listing
        prev_listing, prev = want_listing, want

    final = api.json("report", report=rid)
    assert final["problems"] == [] and final["degraded_layers"] == scenarios["outlier"].mct_degraded
    assert any(g["judge"] == "outlier_removal" for g in final["verdict_groups"])
    assert [r["name"] for r in api.json("reports")["reports"]] == ["base/xquant_report", "late/xquant_report"]


# --------------------------------------------------------------------------------------------
# werkzeug: quant_report.json rewritten half-way, and events appended record by record
# --------------------------------------------------------------------------------------------
def test_quant_report_rewritten_half_way(tmp_path, demo_logdir, scenarios):
    logdir = tmp_path / "logdir"
    rd = copy_scenario(demo_logdir, "outlier", logdir / "run")
    rid = rid_of("run/xquant_report")
    reqs = requests_for(rid, degraded_layer(scenarios, "outlier"))
    api = WsgiApi(logdir)
    api.store.discover()
    a_bytes = (rd / "quant_report.json").read_bytes()
    b_bytes = json.dumps(version_b(json.loads(a_bytes)), indent=2).encode()
    assert len(b_bytes) != len(a_bytes)
    states = {"A": fresh(logdir, reqs)}
    assert ask(api, reqs) == states["A"]
    a_degraded = states["A"]["report?report=" + rid]["degraded_layers"]

    prev = "A"
    for frac in (0.0, 0.3, 0.7, 1.0):
        name = "B[:%d%%]" % (frac * 100)
        write_in_place(rd / "quant_report.json", b_bytes[: int(len(b_bytes) * frac)])
        states[name] = fresh(logdir, reqs)
        got = assert_one_of(ask(api, reqs), {prev: states[prev], name: states[name]}, name)
        # the next request shows what is on disk now (the file's size changed)
        assert ask(api, reqs) == states[name], (name, got)
        summary = states[name]["report?report=" + rid]
        if frac < 1.0:
            assert any("not valid JSON" in p["what"] and "being written" in p["what"] for p in summary["problems"])
        prev = name
    b = states["B[:100%]"]["report?report=" + rid]
    assert b["problems"] == [] and b["degraded_layers"] != a_degraded
    assert b["degraded_layers"] == [next(iter(json.loads(b_bytes)["intermediate_similarity_metrics_repr"]))]


def same_size_variant(raw: bytes) -> bytes:
    """quant_report.json with the first layer's mse replaced by a huge number of the same length: the file keeps
    its size byte for byte but the first layer becomes degraded."""
    text = raw.decode()
    start = text.index('"intermediate_similarity_metrics_repr"')
    m = re.compile(r'"mse": ([0-9.e+-]+)').search(text, start)
    old = m.group(1)
    assert len(old) >= 3
    new = "9" * (len(old) - 2) + ".0"
    out = text[: m.start(1)] + new + text[m.end(1):]
    assert len(out) == len(text) and out != text
    return out.encode()


@pytest.mark.parametrize("how", ["in_place", "os_replace"])
def test_same_size_rewrite_is_noticed(how, tmp_path, demo_logdir, scenarios):
    """An XQuant re-run whose quant_report.json happens to have the same byte size as the previous one (MCT
    writes floats with repr(), so equal sizes are common) must not be served from the old cache forever."""
    logdir = tmp_path / "logdir"
    rd = copy_scenario(demo_logdir, "outlier", logdir / "run")
    rid = rid_of("run/xquant_report")
    reqs = requests_for(rid)
    api = WsgiApi(logdir)
    api.store.discover()
    old = ask(api, reqs)
    raw = (rd / "quant_report.json").read_bytes()
    new_bytes = same_size_variant(raw)
    if how == "in_place":
        write_in_place(rd / "quant_report.json", new_bytes)
    else:
        tmp = rd / "quant_report.json.tmp"
        tmp.write_bytes(new_bytes)
        os.replace(tmp, rd / "quant_report.json")
    want = fresh(logdir, reqs)
    first_layer = next(iter(json.loads(new_bytes)["intermediate_similarity_metrics_repr"]))
    assert first_layer in want["report?report=" + rid]["degraded_layers"]
    assert_one_of(ask(api, reqs), {"old": old, "new": want}, how)
    # what a user can do: wait for discovery, press reload (GET reports?refresh=1), request again
    api.store.discover()
    api.json("reports", refresh="1")
    got = ask(api, reqs)
    assert got == want, "the rewritten quant_report.json is never picked up: degraded layers still %s, on disk %s" % (
        got["report?report=" + rid]["degraded_layers"], want["report?report=" + rid]["degraded_layers"])


def test_event_file_appended(tmp_path, demo_logdir, scenarios):
    """The xquant/ event file grows record by record (and mid-record), as MCT's writer flushes it."""
    logdir = tmp_path / "logdir"
    rd = copy_scenario(demo_logdir, "outlier", logdir / "run")
    rid = rid_of("run/xquant_report")
    reqs = requests_for(rid, degraded_layer(scenarios, "outlier"))
    ev = event_file(rd)
    records = tfrecords(ev.read_bytes())
    gi = graph_record_index(records)
    cuts = [b"".join(records[:1]), b"".join(records[:3]), b"".join(records[:gi]),
            b"".join(records[:gi]) + records[gi][:40], b"".join(records[:gi]) + records[gi][:-3],
            b"".join(records)]
    write_in_place(ev, cuts[0])
    api = WsgiApi(logdir)
    api.store.discover()
    prev = fresh(logdir, reqs)
    assert ask(api, reqs) == prev
    for i, data in enumerate(cuts[1:], 1):
        with open(ev, "ab") as f:
            f.write(data[len(cuts[i - 1]):])
        want = fresh(logdir, reqs)
        assert_one_of(ask(api, reqs), {"before": prev, "now": want}, "cut %d" % i)
        assert ask(api, reqs) == want, "cut %d" % i
        prev = want
    final = prev["report?report=" + rid]
    assert final["problems"] == [] and final["degraded_layers"] == scenarios["outlier"].mct_degraded
    assert prev["graph?report=" + rid]["nodes"]


# --------------------------------------------------------------------------------------------
# werkzeug: a writer thread swapping quant_report.json atomically while readers request
# --------------------------------------------------------------------------------------------
SWAPS = 120
READERS = 4


def test_atomic_rewrites_race_readers(tmp_path, demo_logdir):
    """A writer alternates quant_report.json between two valid versions with os.replace (always a complete file
    on disk) while reader threads request ``layers`` and ``report``.  Every answer equals the full answer of A or of
    B; an answer to a request during which the file did not change is the version on disk; after the writer stops,
    the next request answers the final version."""
    logdir = tmp_path / "logdir"
    rd = copy_scenario(demo_logdir, "outlier", logdir / "run")
    rid = rid_of("run/xquant_report")
    a_bytes = (rd / "quant_report.json").read_bytes()
    b_bytes = json.dumps(version_b(json.loads(a_bytes)), indent=2).encode()
    versions = [a_bytes, b_bytes]
    reqs = [("layers", {"report": rid}), ("report", {"report": rid})]
    expected = {}
    for name, data in zip("AB", versions):
        (rd / "quant_report.json").write_bytes(data)
        expected[name] = fresh(logdir, reqs)
    assert expected["A"] != expected["B"]
    (rd / "quant_report.json").write_bytes(a_bytes)

    api = WsgiApi(logdir)
    api.store.discover()
    cond = threading.Condition()
    count = [0]
    done = threading.Event()
    bad: List[str] = []
    seen = {"A": 0, "B": 0}
    stale: List[str] = []
    disk = {"gen": 0, "version": "A"}  # gen is odd while a swap is in progress

    def writer():
        try:
            for i in range(1, SWAPS + 1):
                with cond:
                    # let at least one reader answer between two swaps (a condition, not a sleep)
                    target = count[0] + 1
                    if not cond.wait_for(lambda: count[0] >= target or bad, timeout=30):
                        bad.append("readers stopped answering")
                        return
                    if bad:
                        return
                tmp = rd / ("quant_report.json.tmp%d" % i)
                tmp.write_bytes(versions[i % 2])
                with cond:
                    disk["gen"] += 1
                os.replace(tmp, rd / "quant_report.json")
                with cond:
                    disk["gen"] += 1
                    disk["version"] = "AB"[i % 2]
        finally:
            done.set()

    def reader(k):
        i = k
        while not done.is_set():
            route, params = reqs[i % len(reqs)]
            i += 1
            with cond:
                gen0, version0 = disk["gen"], disk["version"]
            status, ctype, body = api.get(route, **params)
            key = route + "?" + "&".join("%s=%s" % kv for kv in sorted(params.items()))
            with cond:
                stable = gen0 == disk["gen"] and gen0 % 2 == 0
                if status != 200 or ctype != "application/json":
                    bad.append("%s -> %s %r" % (key, status, body[:300]))
                else:
                    answer = strict_json(body)
                    names = [n for n in "AB" if expected[n][key] == answer]
                    if not names:
                        bad.append("%s answered neither A nor B: %s" % (key, json.dumps(answer)[:600]))
                    else:
                        seen[names[0]] += 1
                        if stable and names != [version0]:
                            stale.append("%s answered %s while %s was on disk for the whole request"
                                         % (key, names[0], version0))
                count[0] += 1
                cond.notify_all()

    threads = [threading.Thread(target=reader, args=(k,), daemon=True) for k in range(READERS)]
    w = threading.Thread(target=writer, daemon=True)
    for t in threads + [w]:
        t.start()
    w.join(300)
    for t in threads:
        t.join(60)
    assert not w.is_alive() and not any(t.is_alive() for t in threads), "hung"
    assert not bad, "\n".join(bad[:10])
    assert seen["A"] and seen["B"], seen  # the readers did see both versions
    assert not stale, "%d stale answers out of %d, e.g.:\n%s" % (len(stale), sum(seen.values()), "\n".join(stale[:5]))
    final = "AB"[SWAPS % 2]
    assert (rd / "quant_report.json").read_bytes() == versions[SWAPS % 2]
    got = ask(api, reqs)
    assert got == expected[final], "after the writer stopped at version %s the server answers %s" % (
        final, "the other version" if got == expected["AB".replace(final, "")] else "something else")


# --------------------------------------------------------------------------------------------
# a real tensorboard process
# --------------------------------------------------------------------------------------------
def structural(answers: Dict[str, object]) -> Dict[str, object]:
    """The parts of the answers that do not depend on histogram float precision (the Python multiplexer keeps
    float32 histograms, the files float64): layer names and metrics, degraded layers, node ids, judges."""
    out = {}
    for key, a in answers.items():
        if not isinstance(a, dict):
            out[key] = a
        elif key.startswith("report?"):
            out[key] = {k: a[k] for k in ("layer_count", "degraded_layers", "judges_skipped", "output_metrics")}
            out[key]["verdicts"] = sorted((g["judge"], g["source"], g["cause"] or "", g["advice"] or "", g["count"],
                                           tuple(g["layers"])) for g in a["verdict_groups"])
            out[key]["problems"] = [p["what"] for p in a["problems"]]
        elif key.startswith("layers?"):
            out[key] = [(l["name"], l["node"], l["degraded"], l["judges"], json.dumps(l["repr"], sort_keys=True))
                        for l in a["layers"]]
        elif key.startswith("graph?"):
            out[key] = sorted((n["id"], n["layer"], n["degraded"], tuple(n["judges"])) for n in a["nodes"])
        elif key.startswith("verdicts?"):
            out[key] = sorted((v["judge"], v["source"], tuple(v["layers"])) for v in a["verdicts"])
        else:
            out[key] = a
    return out


class Live:
    """A real tensorboard process and the answers it gives (any non-200 answer is recorded as an error)."""

    def __init__(self, logdir, load_fast, log_path):
        self.logdir = logdir
        self.tb = bench.TensorBoard(logdir, load_fast, reload_interval=1, log_path=log_path)
        self.errors: List[str] = []

    def answers(self, reqs):
        out = {}
        for route, params in reqs:
            status, ctype, body = self.tb.api(route, params, timeout=30)
            key = route + "?" + "&".join("%s=%s" % kv for kv in sorted(params.items()))
            if status != 200 or ctype != "application/json":
                self.errors.append("%s -> %s %r" % (key, status, body[:300]))
                out[key] = ("status", status)
            else:
                out[key] = strict_json(body)
        return out

    def converge(self, what, reqs, want, deadline=30.0):
        """Poll (bounded) until the structural answers equal ``want``; fail with the difference."""
        last = {}

        def reached():
            last["got"] = structural(self.answers(reqs))
            return last["got"] == want
        try:
            self.tb.poll(what, reached, deadline)
        except TimeoutError:
            got = last.get("got", {})
            diff = {k: {"want": want[k], "got": got.get(k)} for k in want if got.get(k) != want[k]}
            pytest.fail("%s: not reached after %.0fs; differences:\n%s" % (what, deadline, json.dumps(diff)[:3000]))
        assert not self.errors, "\n".join(self.errors[:10])


def test_writes_under_real_tensorboard(tmp_path, demo_logdir, scenarios):
    """tensorboard --load_fast=false --reload_interval 1: a report appears after the start (stage logs and
    quant_report.json first, then its events in two steps), then its quant_report.json is rewritten half-way and
    completed.  Every answer is 200, and each step reaches the state of the files (what a fresh server reading them
    directly answers) before a deadline."""
    logdir = tmp_path / "logdir"
    copy_scenario(demo_logdir, "clean", logdir / "base")
    live = Live(logdir, "false", str(tmp_path / "tensorboard.log"))
    tb = live.tb
    try:
        tb.wait_ready()
        base_reqs = requests_for(rid_of("base/xquant_report"))
        live.converge("base loaded", base_reqs, structural(fresh(logdir, base_reqs)))

        # 1. a report appears: mct_logs + quant_report.json first, the xquant/ events in two steps
        src = demo_logdir / "outlier"
        rd = logdir / "late" / "xquant_report"
        late_rid = rid_of("late/xquant_report")
        shutil.copytree(src / "mct_logs", logdir / "late" / "mct_logs")
        rd.mkdir(parents=True)
        shutil.copy2(src / "xquant_report" / "quant_report.json", rd / "quant_report.json")
        records = tfrecords(event_file(src / "xquant_report").read_bytes())
        gi = graph_record_index(records)
        (rd / "xquant").mkdir()
        ev = rd / "xquant" / event_file(src / "xquant_report").name
        write_in_place(ev, b"".join(records[:gi]))
        tb.poll("late report listed", lambda: late_rid in {
            r["id"] for r in tb.json("reports", refresh="1")["reports"]}, 30)
        live.answers(requests_for(late_rid))
        with open(ev, "ab") as f:
            f.write(b"".join(records[gi:]))
        for p in (src / "xquant_report").iterdir():
            if p.name not in ("quant_report.json", "xquant"):
                (shutil.copytree if p.is_dir() else shutil.copy2)(p, rd / p.name)
        late_reqs = requests_for(late_rid, degraded_layer(scenarios, "outlier"))
        live.converge("late report complete", late_reqs, structural(fresh(logdir, late_reqs)))
        s = live.answers([("report", {"report": late_rid})])["report?report=" + late_rid]
        assert s["degraded_layers"] == scenarios["outlier"].mct_degraded

        # 2. its quant_report.json rewritten half-way, then completed
        a_bytes = (rd / "quant_report.json").read_bytes()
        b_bytes = json.dumps(version_b(json.loads(a_bytes)), indent=2).encode()
        write_in_place(rd / "quant_report.json", b_bytes[: len(b_bytes) // 2])
        half = live.answers([("report", {"report": late_rid})])["report?report=" + late_rid]
        assert not live.errors, live.errors
        assert any("not valid JSON" in p["what"] for p in half["problems"]) or \
            half["degraded_layers"] == scenarios["outlier"].mct_degraded
        write_in_place(rd / "quant_report.json", b_bytes)
        live.converge("rewritten quant_report.json picked up", late_reqs, structural(fresh(logdir, late_reqs)))
        assert tb.proc.poll() is None
    finally:
        tb.stop()


LOAD_FAST = [pytest.param("false", id="load_fast=false")]
if importlib.util.find_spec("tensorboard_data_server") is not None:
    LOAD_FAST.append(pytest.param("true", id="load_fast=true"))


@pytest.mark.parametrize("load_fast", LOAD_FAST)
def test_rerun_in_place_under_real_tensorboard(load_fast, tmp_path, demo_logdir, scenarios):
    """A report dir re-run in place with another model while tensorboard runs, as MCT does it: a second event
    file in xquant/ (the first stays), the JSON files and PNGs overwritten, a new stage-log folder named in the
    manifest.  Before a deadline the running server must answer what a tensorboard started afresh on the final
    files answers (same --load_fast): nothing built from the data provider's not-yet-reloaded state may stick."""
    logdir = tmp_path / "logdir"
    base_rd = copy_scenario(demo_logdir, "clean", logdir / "base")
    rid = rid_of("base/xquant_report")
    reqs = requests_for(rid)
    live = Live(logdir, load_fast, str(tmp_path / "tensorboard.log"))
    try:
        live.tb.wait_ready()
        live.converge("first run loaded", reqs, structural(fresh(logdir, reqs)))

        # MCT's order: quantization writes the stage logs (TensorBoard loads them), then XQuant writes its files;
        # the new event file lands last and is requested at once, before TensorBoard's next reload (1 s).
        other = demo_logdir / "shift_negative"
        (logs,) = list((other / "mct_logs").iterdir())  # MCT's logs_<date>_<time>; keep the first run's too
        shutil.copytree(logs, logdir / "base" / "mct_logs" / ("rerun_" + logs.name))
        new_stage = "base/mct_logs/rerun_%s/tensorboard_logs/after_activation_bias_correction" % logs.name
        live.tb.poll("new stage logs loaded", lambda: new_stage in live.tb.json_plain("/data/runs"), 30)
        shutil.copytree(other / "xquant_report", base_rd, dirs_exist_ok=True,
                        ignore=lambda d, names: [n for n in names if "tfevents" in n and Path(d).name == "xquant"])
        manifest = json.loads((base_rd / "tb_xquant_manifest.json").read_text())
        manifest["stage_logs"] = manifest["stage_logs"].replace(logs.name, "rerun_" + logs.name)
        (base_rd / "tb_xquant_manifest.json").write_text(json.dumps(manifest))
        new_events = event_file(other / "xquant_report")
        staged = tmp_path / new_events.name
        shutil.copy2(new_events, staged)
        os.replace(staged, base_rd / "xquant" / new_events.name)
        live.answers(reqs)  # the running server sees the change while its data provider has not reloaded yet
        assert len(list((base_rd / "xquant").iterdir())) == 2

        with bench.TensorBoard(logdir, load_fast, log_path=str(tmp_path / "fresh.log")) as again:
            again.wait_ready()
            fresh_live = Live.__new__(Live)
            fresh_live.tb, fresh_live.errors = again, []
            want = structural(fresh_live.answers(reqs))
            assert not fresh_live.errors, fresh_live.errors
        assert want["report?report=" + rid]["degraded_layers"] == scenarios["shift_negative"].mct_degraded
        live.converge("re-run report dir as a fresh tensorboard shows it", reqs, want)
        assert live.tb.proc.poll() is None
    finally:
        live.tb.stop()
