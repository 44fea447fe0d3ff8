#!/usr/bin/env python
"""Concurrent load on every XQuant route of a real ``tensorboard`` process.

    python bench/load.py --clients 16 --seconds 60 [--logdir DIR] [--load-fast true|false] [--json OUT]

Starts ``python -m tensorboard.main --logdir DIR --host 127.0.0.1 --port <free>``, waits (polling with a
deadline) until TensorBoard's data provider has loaded every report as completely as the files on disk allow,
warms every route up once, then lets N client threads hammer a random mix of routes for a bounded time:
``reports``, ``report``, ``graph``, ``layers``, ``verdicts``, ``layer``, ``artifact``, ``compare``, ``manual``
and ``static/index.js``, the analysis routes with random threshold overrides (half of them the defaults,
which hit the analysis cache; the rest mostly fresh keys, which do not).

Every answer is checked.  An *error* is: a status >= 500, any other unexpected status, a body that is not
strict JSON where JSON is expected (or not a PNG / the bundle), a timeout or connection failure, or a
*mismatch*: an answer whose structure differs from the first answer of the same route (graph node ids,
layer names, layer count, report ids, ...), e.g. a graph with no nodes under load.

Per route it prints requests, errors, median / p95 / max latency; then totals, and the memory of the
tensorboard process: VmRSS after the warm-up, peak VmRSS during the load (sampled every 50 ms in a thread),
VmRSS at the end and VmHWM (kernel's peak), plus the peak RSS of its child processes (the Rust data server
with ``--load_fast=true``).  The client threads run in this process; the server is a separate process.

``run()`` is what ``tests/test_load.py`` calls; ``TensorBoard`` (``testkit.procs.TensorBoardProcess`` with the
calls the load needs) is reused by other tests.
"""
from __future__ import annotations

import argparse
import http.client
import json
import os
import random
import socket
import sys
import threading
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.append(str(REPO))  # a fallback only: an installed (or PYTHONPATH) tb_xquant_plugin comes first

from testkit.procs import PLUGIN_PREFIX as PREFIX, TensorBoardProcess  # noqa: E402

ROUTES = ("reports", "report", "graph", "layers", "verdicts", "layer", "artifact", "compare", "manual", "static")
JSON_ROUTES = set(ROUTES) - {"artifact", "static"}
POLL = 0.2  # polling interval of the deadline loops (never used as synchronisation)


def strict_json(body: bytes) -> Any:
    def bad(tok):
        raise ValueError("bare %s token" % tok)
    return json.loads(body.decode("utf-8"), parse_constant=bad)


# --------------------------------------------------------------------------------------------
# memory of a process, from /proc (no psutil)
# --------------------------------------------------------------------------------------------
def proc_status_kb(pid: int, field: str = "VmRSS") -> Optional[int]:
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def descendants(pid: int) -> List[int]:
    """Child processes (recursively) of pid, by scanning /proc/*/stat."""
    parent: Dict[int, int] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open("/proc/%s/stat" % d) as f:
                stat = f.read()
            # comm may hold spaces and parentheses: the fields after the last ')' are fixed
            ppid = int(stat.rsplit(")", 1)[1].split()[1])
            parent[int(d)] = ppid
        except (OSError, ValueError, IndexError):
            continue
    out, frontier = [], [pid]
    while frontier:
        p = frontier.pop()
        kids = [c for c, pp in parent.items() if pp == p]
        out.extend(kids)
        frontier.extend(kids)
    return out


class RssSampler(threading.Thread):
    """Samples VmRSS of a process (and the sum over its children) every ``interval`` seconds."""

    def __init__(self, pid: int, interval: float = 0.05):
        super().__init__(name="rss-sampler", daemon=True)
        self.pid, self.interval = pid, interval
        self.samples: List[Tuple[float, int, int]] = []  # (monotonic time, main kB, children kB)
        self._halt = threading.Event()
        self._kids: List[int] = []

    def run(self):
        n = 0
        while True:
            if n % 20 == 0:  # the process tree rarely changes: rescan it once a second
                self._kids = descendants(self.pid)
            n += 1
            main = proc_status_kb(self.pid)
            if main is not None:
                kids = sum(proc_status_kb(k) or 0 for k in self._kids)
                self.samples.append((time.monotonic(), main, kids))
            if self._halt.wait(self.interval):  # sampling period
                return

    def stop(self):
        self._halt.set()
        self.join(5)

    def peak(self, t0: float, t1: float) -> Tuple[Optional[int], Optional[int]]:
        win = [s for s in self.samples if t0 <= s[0] <= t1]
        if not win:
            return None, None
        return max(s[1] for s in win), max(s[2] for s in win)


# --------------------------------------------------------------------------------------------
# a real tensorboard process
# --------------------------------------------------------------------------------------------
class TensorBoard(TensorBoardProcess):
    """``python -m tensorboard.main --logdir LOGDIR --host 127.0.0.1 --port <free> --load_fast=...`` (testkit.procs),
    started and answering once constructed; its output goes to ``log_path`` (a temporary file if None)."""

    def __init__(self, logdir, load_fast: str = "auto", reload_interval: Optional[float] = None,
                 log_path: Optional[str] = None, extra_args: Tuple[str, ...] = ()):
        super().__init__(str(logdir), load_fast=load_fast, reload_interval=reload_interval, extra_args=extra_args,
                         log_path=log_path)
        self.start()

    def api(self, route: str, params: Optional[dict] = None, timeout: float = 30.0) -> Tuple[int, str, bytes]:
        """(status, content type, body) of an XQuant route; raises socket.timeout / OSError on transport failures."""
        return self.plugin_request(route, params, timeout)

    def json(self, route: str, timeout: float = 30.0, **params) -> Any:
        """The strict-JSON answer of an XQuant route (AssertionError unless 200 application/json)."""
        return self.plugin_json(route, params or None, timeout, strict=True)

    def json_plain(self, path: str) -> Any:
        return self.get_json(path)

    def wait_ready(self, expected: Optional[Dict[str, Tuple]] = None, deadline: float = 180.0) -> List[dict]:
        """Poll until the tab is enabled and every report is listed with graph / histograms / stage logs as
        the files allow (``expected``: name -> (has_graph, has_histograms, stage_logs), computed from the files
        when not given) and each graph answers nodes.  Returns the ``reports`` list."""
        if expected is None:
            expected = expected_states(self.logdir)

        def listed():
            entry = self.xquant_listing()
            return entry if entry and (entry["enabled"] or not expected) else None

        self.poll("xquant in plugins_listing", listed, deadline)

        def loaded():
            reports = self.json("reports")["reports"]
            got = {r["name"]: (r["has_graph"], r["has_histograms"], r["stage_logs"]) for r in reports}
            if got != expected:
                return None
            for r in reports:
                if r["has_graph"] and not self.json("graph", report=r["id"])["nodes"]:
                    return None
            return reports

        return self.poll("all %d reports loaded through the data provider" % len(expected), loaded, deadline)


def expected_states(logdir: str) -> Dict[str, Tuple]:
    """What ``GET reports`` says once everything is loaded: the plugin's answer on the files directly (werkzeug,
    no data provider)."""
    from werkzeug.test import Client

    from testkit.apps import wsgi_app

    app, _ = wsgi_app(str(logdir))
    body = strict_json(Client(app).get(PREFIX + "reports").get_data())
    return {e["name"]: (e["has_graph"], e["has_histograms"], e["stage_logs"]) for e in body["reports"]}


# --------------------------------------------------------------------------------------------
# targets, reference answers and checks
# --------------------------------------------------------------------------------------------
class Targets:
    """What the clients can ask for, and the structure every answer must have."""

    def __init__(self, tb: TensorBoard):
        reports = tb.json("reports")["reports"]
        if not reports:
            raise RuntimeError("no XQuant report under %s" % tb.logdir)
        self.report_ids = sorted(r["id"] for r in reports)
        self.reports: Dict[str, dict] = {}
        for r in reports:
            rid = r["id"]
            s = tb.json("report", report=rid)
            g = tb.json("graph", report=rid)
            layers = tb.json("layers", report=rid)
            self.reports[rid] = {
                "metrics": s["metrics"],
                "layer_count": s["layer_count"],
                "artifacts": [a["id"] for a in s["artifacts"]],
                "node_ids": sorted(n["id"] for n in g["nodes"]),
                "layer_names": [l["name"] for l in layers["layers"]],
            }
        self.manual_ids = [e["id"] for e in tb.json("manual")["entries"]]
        status, ctype, body = tb.api("static/index.js")
        if status != 200:
            raise RuntimeError("static/index.js -> %s" % status)
        self.static_len = len(body)

    def all_requests(self) -> List[Tuple[str, Dict[str, str]]]:
        """Every target once with default thresholds (the warm-up)."""
        out: List[Tuple[str, Dict[str, str]]] = [("reports", {}), ("manual", {}), ("static", {})]
        out += [("manual", {"id": m}) for m in self.manual_ids]
        for rid, r in self.reports.items():
            out += [(route, {"report": rid}) for route in ("report", "graph", "layers", "verdicts")]
            out += [("layer", {"report": rid, "layer": l}) for l in r["layer_names"]]
            out += [("artifact", {"report": rid, "id": a}) for a in r["artifacts"]]
        ids = self.report_ids
        out += [("compare", {"a": a, "b": b}) for a, b in zip(ids, ids[1:] + ids[:1])]
        return out

    def random_request(self, rng: random.Random) -> Tuple[str, Dict[str, str]]:
        route = rng.choice(ROUTES)
        rid = rng.choice(self.report_ids)
        r = self.reports[rid]
        if route == "reports":
            return route, ({"refresh": "1"} if rng.random() < 0.05 else {})
        if route == "static":
            return route, {}
        if route == "manual":
            return route, ({"id": rng.choice(self.manual_ids)} if self.manual_ids and rng.random() < 0.7 else {})
        if route == "artifact":
            if not r["artifacts"]:
                return "report", {"report": rid, **random_thresholds(rng, r["metrics"])}
            return route, {"report": rid, "id": rng.choice(r["artifacts"])}
        params = random_thresholds(rng, r["metrics"])
        if route == "compare":
            params.update(a=rid, b=rng.choice(self.report_ids))
        else:
            params["report"] = rid
        if route == "layer":
            if not r["layer_names"]:
                return "layers", params
            params["layer"] = rng.choice(r["layer_names"])
        return route, params

    def check(self, route: str, params: Dict[str, str], status: int, ctype: str, body: bytes) -> Optional[str]:
        """None when the answer is right, else the kind of error."""
        if status >= 500:
            return "5xx"
        if status != 200:
            return "status_%d" % status
        if route == "artifact":
            return None if ctype == "image/png" and body.startswith(b"\x89PNG") else "bad_body"
        if route == "static":
            return None if ctype == "text/javascript" and len(body) == self.static_len else "bad_body"
        if ctype != "application/json":
            return "non_json"
        try:
            d = strict_json(body)
        except ValueError:
            return "non_json"
        try:
            if route == "reports":
                ok = sorted(x["id"] for x in d["reports"]) == self.report_ids
            elif route == "graph":
                ok = sorted(n["id"] for n in d["nodes"]) == self.reports[params["report"]]["node_ids"]
            elif route == "layers":
                ok = [l["name"] for l in d["layers"]] == self.reports[params["report"]]["layer_names"]
            elif route == "report":
                ok = d["id"] == params["report"] and d["layer_count"] == self.reports[params["report"]]["layer_count"]
            elif route == "verdicts":
                ok = isinstance(d["verdicts"], list) and isinstance(d["general"], list)
            elif route == "layer":
                ok = d["name"] == params["layer"]
            elif route == "compare":
                ok = d["a"] == params["a"] and d["b"] == params["b"] and isinstance(d["layers"], list)
            elif route == "manual":
                ok = d["id"] == params["id"] if "id" in params else bool(d["entries"])
            else:
                ok = True
        except (KeyError, TypeError):
            ok = False
        return None if ok else "mismatch"


def random_thresholds(rng: random.Random, metrics: List[str]) -> Dict[str, str]:
    """Threshold overrides (docs/api.md): none half of the time, else a random valid mix."""
    if rng.random() < 0.5:
        return {}
    p: Dict[str, str] = {}
    for m in metrics:
        if rng.random() < 0.5:
            p["thr." + m] = "%.4g" % (10 ** rng.uniform(-3, 2))
        if rng.random() < 0.2:
            p["under." + m] = rng.choice(("0", "1"))
    if rng.random() < 0.3:
        p["ratio"] = "%.3f" % rng.uniform(0.05, 1.0)
    if rng.random() < 0.3:
        p["z"] = "%.2f" % rng.uniform(1.0, 10.0)
    if rng.random() < 0.2:
        p["concat"] = "%.1f" % rng.uniform(2.0, 64.0)
    if rng.random() < 0.2:
        p["bits"] = str(rng.randint(1, 8))
    return p


def _path(route: str) -> str:
    return "static/index.js" if route == "static" else route


# --------------------------------------------------------------------------------------------
# the load
# --------------------------------------------------------------------------------------------
class Recorder:
    def __init__(self):
        self.lock = threading.Lock()
        self.lat: Dict[str, List[float]] = {r: [] for r in ROUTES}
        self.errors: Dict[str, Dict[str, int]] = {r: {} for r in ROUTES}
        self.samples: List[str] = []

    def add(self, route: str, seconds: float, error: Optional[str], detail: str = ""):
        with self.lock:
            self.lat[route].append(seconds)
            if error:
                self.errors[route][error] = self.errors[route].get(error, 0) + 1
                if len(self.samples) < 20:
                    self.samples.append("%s %s: %s" % (route, error, detail[:300]))


def one_request(tb: TensorBoard, targets: Targets, rec: Recorder, route: str, params: Dict[str, str],
                timeout: float):
    t0 = time.perf_counter()
    try:
        status, ctype, body = tb.api(_path(route), params or None, timeout)
    except socket.timeout:
        rec.add(route, time.perf_counter() - t0, "timeout", urllib.parse.urlencode(params))
        return
    except (OSError, http.client.HTTPException) as e:
        rec.add(route, time.perf_counter() - t0, "conn", "%r %s" % (e, urllib.parse.urlencode(params)))
        return
    dt = time.perf_counter() - t0
    err = targets.check(route, params, status, ctype, body)
    rec.add(route, dt, err, "" if err is None else "%s -> %s %r" % (urllib.parse.urlencode(params), status, body[:200]))


def percentile(values: List[float], q: float) -> Optional[float]:
    if not values:
        return None
    v = sorted(values)
    return v[min(len(v) - 1, max(0, int(round(q * (len(v) - 1)))))]


def run(logdir, clients: int = 16, seconds: float = 60.0, load_fast: str = "auto", seed: int = 0,
        timeout: float = 30.0, reload_interval: Optional[float] = None, ready_deadline: float = 180.0,
        log_path: Optional[str] = None, echo: Callable[[str], None] = print) -> Dict[str, Any]:
    """Start tensorboard on ``logdir``, wait until loaded, warm up, load with ``clients`` threads for
    ``seconds``; return the figures (see ``format_table``)."""
    logdir = str(Path(logdir).resolve())
    tb = TensorBoard(logdir, load_fast, reload_interval=reload_interval, log_path=log_path)
    sampler = RssSampler(tb.pid)
    sampler.start()
    try:
        t_start = tb.started  # the spawn: ready_s includes tensorboard's start-up
        tb.wait_ready(deadline=ready_deadline)
        ready_s = time.monotonic() - t_start
        targets = Targets(tb)
        warm = Recorder()
        for route, params in targets.all_requests():
            one_request(tb, targets, warm, route, params, timeout)
        warm_kb = proc_status_kb(tb.pid)
        echo("tensorboard ready after %.1fs (%d reports); warm-up: %d requests, %d errors; VmRSS %s MB; "
             "loading %d clients x %.0fs" % (ready_s, len(targets.reports), sum(len(v) for v in warm.lat.values()),
                                              sum(sum(e.values()) for e in warm.errors.values()),
                                              _mb(warm_kb), clients, seconds))
        rec = Recorder()
        t0 = time.monotonic()
        end = t0 + seconds

        def client(i: int):
            rng = random.Random(seed * 1000 + i)
            while time.monotonic() < end:
                route, params = targets.random_request(rng)
                one_request(tb, targets, rec, route, params, timeout)

        threads = [threading.Thread(target=client, args=(i,), name="client-%d" % i, daemon=True)
                   for i in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(seconds + timeout + 30)
        hung = [t.name for t in threads if t.is_alive()]
        t1 = time.monotonic()
        end_kb = proc_status_kb(tb.pid)
        hwm_kb = proc_status_kb(tb.pid, "VmHWM")
        sampler.stop()
        peak_kb, kids_peak_kb = sampler.peak(t0, t1)
        warm_peak_kb, _ = sampler.peak(t_start, t0)
        alive = tb.proc.poll() is None
    finally:
        try:
            sampler.stop()
        finally:
            tb.stop()  # never leave a tensorboard behind

    routes = {}
    for r in ROUTES:
        lat = rec.lat[r]
        routes[r] = {"requests": len(lat), "errors": sum(rec.errors[r].values()), "error_kinds": dict(rec.errors[r]),
                     "median_ms": _ms(percentile(lat, 0.5)), "p95_ms": _ms(percentile(lat, 0.95)),
                     "max_ms": _ms(max(lat) if lat else None)}
    total_req = sum(v["requests"] for v in routes.values())
    total_err = sum(v["errors"] for v in routes.values())
    warm_errors = sum(sum(e.values()) for e in warm.errors.values())
    return {
        "config": {"logdir": logdir, "clients": clients, "seconds": seconds, "load_fast": load_fast, "seed": seed,
                   "timeout": timeout, "reload_interval": reload_interval, "cmd": tb.cmd, "cpus": os.cpu_count()},
        "ready_seconds": round(ready_s, 2),
        "reports": len(targets.reports),
        "warmup": {"requests": sum(len(v) for v in warm.lat.values()), "errors": warm_errors,
                   "samples": warm.samples},
        "routes": routes,
        "total": {"requests": total_req, "errors": total_err, "seconds": round(t1 - t0, 2),
                  "rps": round(total_req / max(t1 - t0, 1e-9), 1), "hung_clients": hung,
                  "server_alive": alive},
        "rss_kb": {"after_warmup": warm_kb, "peak_warmup": warm_peak_kb, "peak_load": peak_kb, "end": end_kb,
                   "hwm": hwm_kb, "children_peak_load": kids_peak_kb,
                   "growth_load": (peak_kb - warm_kb) if peak_kb and warm_kb else None},
        "error_samples": rec.samples,
        "log_path": tb.log_path,
    }


def _ms(s: Optional[float]) -> Optional[float]:
    return None if s is None else round(s * 1000.0, 1)


def _mb(kb: Optional[int]) -> str:
    return "?" if kb is None else "%.1f" % (kb / 1024.0)


def format_table(res: Dict[str, Any]) -> str:
    c = res["config"]
    lines = ["tensorboard --load_fast=%s, %d clients x %.0fs, %d reports, %s CPUs (logdir %s)"
             % (c["load_fast"], c["clients"], c["seconds"], res["reports"], c["cpus"], c["logdir"]),
             "%-9s %9s %7s %10s %10s %10s  %s" % ("route", "requests", "errors", "median ms", "p95 ms", "max ms",
                                                 "error kinds")]
    for r, v in res["routes"].items():
        lines.append("%-9s %9d %7d %10s %10s %10s  %s" % (
            r, v["requests"], v["errors"], v["median_ms"], v["p95_ms"], v["max_ms"],
            ", ".join("%s=%d" % kv for kv in sorted(v["error_kinds"].items())) or ""))
    t = res["total"]
    lines.append("%-9s %9d %7d   (%.1f req/s over %.1fs; warm-up %d requests, %d errors)"
                 % ("total", t["requests"], t["errors"], t["rps"], t["seconds"], res["warmup"]["requests"],
                    res["warmup"]["errors"]))
    m = res["rss_kb"]
    lines.append("tensorboard RSS: after warm-up %s MB, peak during load %s MB (growth %s MB), end %s MB, "
                 "VmHWM %s MB; children peak %s MB" % (_mb(m["after_warmup"]), _mb(m["peak_load"]),
                                                       _mb(m["growth_load"]), _mb(m["end"]), _mb(m["hwm"]),
                                                       _mb(m["children_peak_load"])))
    if t["hung_clients"]:
        lines.append("HUNG clients: %s" % ", ".join(t["hung_clients"]))
    if not t["server_alive"]:
        lines.append("tensorboard DIED during the load (log: %s)" % res["log_path"])
    for s in res["error_samples"] + res["warmup"]["samples"]:
        lines.append("  error: " + s)
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=16)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--logdir", default=os.environ.get("TB_XQUANT_DEMO_LOGDIR") or str(REPO / "demo_logs"),
                    help="a logdir with XQuant reports (default: $TB_XQUANT_DEMO_LOGDIR, else demo_logs/)")
    ap.add_argument("--load-fast", default="auto", choices=("true", "false", "auto"))
    ap.add_argument("--reload-interval", type=float, default=None, help="tensorboard --reload_interval")
    ap.add_argument("--timeout", type=float, default=30.0, help="per-request timeout (s)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", help="also write the figures to this file")
    args = ap.parse_args(argv)
    if not Path(args.logdir).is_dir():
        ap.error("logdir %s does not exist: generate it with `python -m demo.generate --out %s`"
                 % (args.logdir, args.logdir))
    res = run(args.logdir, args.clients, args.seconds, args.load_fast, args.seed, args.timeout,
              args.reload_interval, echo=lambda s: print(s, flush=True))
    print(format_table(res))
    if args.json:
        with open(args.json, "w") as f:
            json.dump(res, f, indent=1)
    bad = res["total"]["errors"] or res["warmup"]["errors"] or res["total"]["hung_clients"] \
        or not res["total"]["server_alive"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
