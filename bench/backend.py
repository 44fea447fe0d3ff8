"""Backend benchmark: cold analysis, warm API latency and memory on generated MCT logdirs of N layers.

    .venv/bin/python -m bench.backend [--sizes 100 1000 5000 20000] [--out DIR] [--json PATH]
                                      [--requests 50] [--bins 30] [--seed 0] [--tracemalloc] [--strict]

For every N, ``OUT/model_<N>/`` is written once by ``bench.mct_format.write_model_logdir`` (a finished one,
marked by ``.bench_done`` as ``bench.browser`` marks it, is reused), then measured in a fresh Python process
so that memory figures are honest, the way the plugin serves it without a data provider: a
``ReportStore(logdir, lambda: LocalEventSource(logdir), background=False)`` behind ``Routes(store).apps()``
and a tiny dispatcher, called through werkzeug's test client.

* cold: discovery (``store.report_dirs()``), building the report (``store.report``: events, graphs, JSON),
  the analysis with the default thresholds (``store.analysis``), then the first ``GET graph`` (the view and
  its JSON); their sum is the cold time.  TensorBoard's TensorFlow stub (``tensorboard.compat.tensorflow_stub``,
  which the event reader needs without TensorFlow) is imported before the clock and its time reported apart:
  TensorBoard imports it when it starts (its data ingester checks the logdir through ``tf.io.gfile``);
* warm: median and p95 over ``--requests`` calls (after one untimed call; with ``Accept-Encoding: gzip``, as
  a browser sends them, so that compressing an answer counts) of ``graph``, ``layers``,
  ``verdicts``, ``layer`` (a degraded layer with its histogram and quantization parameters) and
  ``rethreshold``: ``GET report`` with a new ``thr.mse`` on every call (``0.1 + i * 1e-4``), so that
  detection and every judge run again instead of hitting the analysis cache;
* memory: the process's peak RSS (``VmHWM``) after the cold path and at the end (the warm requests leave
  their analyses in the store's cache), and its RSS before the store existed; with
  ``--tracemalloc`` also the peak of Python allocations during the cold path (a second process, because
  tracing slows allocation down).

* bare cost: the event files the build read (recorded per run), read again with TensorBoard's record reader
  and the C CRC-32C, every record parsed as an ``Event`` and every GraphDef by protobuf, no node or histogram
  visited in Python: the limit the cold path can approach.

Prints a table (one row per N), the bare cost and how far the cold path is from it, the growth between
successive sizes next to N log N's, and PASS/MISS for the targets (issue 17): at 5,000 layers cold < 0.5 s and
every warm route's p95 < 50 ms; at 20,000 layers cold < 2 s, every warm p95 < 50 ms and peak RSS < 600 MiB.  The exit code is 0 (it is a benchmark) unless ``--strict`` and a target is missed.
"""
from __future__ import annotations

import argparse
import gzip
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from typing import Any, Dict, List, Optional, Tuple

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT_SIZES = (100, 1000, 5000, 20000)
REPORT_REL = "xquant_report"
WARM_ROUTES = ("graph", "layers", "verdicts", "layer", "rethreshold")
MEASURE_TIMEOUT = 1800  # seconds per size
# (N, cold seconds, warm p95 milliseconds, peak RSS MiB or None): issue 17's
TARGETS = ((5000, 0.5, 50.0, None), (20000, 2.0, 50.0, 600.0))
GROWTH_SLACK = 1.25  # a cost "grows like N log N" when its ratio stays within this factor of N log N's


# --------------------------------------------------------------------------------------------
# logdirs
# --------------------------------------------------------------------------------------------
def ensure_model(out: str, n: int, seed: int, bins: int) -> Tuple[str, float]:
    """``OUT/model_<N>``, generated unless a finished one with the same parameters and generator source is there
    (testkit.logdirs). Returns (model dir, seconds spent generating)."""
    from testkit.logdirs import ensure_model_logdir

    return ensure_model_logdir(out, n, seed, bins=bins)


def dir_size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


# --------------------------------------------------------------------------------------------
# measuring (in the child process)
# --------------------------------------------------------------------------------------------
def _rss_mib(field: str) -> float:
    """``VmRSS`` (now) or ``VmHWM`` (peak) of this process in MiB.  Linux's ``ru_maxrss`` is not used for the
    peak: it survives exec, so a child forked from a large parent starts with the parent's peak."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0  # kB
    raise RuntimeError("no %s in /proc/self/status" % field)


def _percentile(values: List[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(math.ceil(q * len(ordered))) - 1)]


def measure(model_dir: str, requests: int) -> Dict[str, Any]:
    """Cold path, warm latencies and peak RSS of one logdir (run in a fresh process)."""
    from werkzeug.test import Client

    from tb_xquant_plugin.model.report import report_id
    from tb_xquant_plugin.readers.events import LocalEventSource
    from tb_xquant_plugin.server.app import Routes
    from tb_xquant_plugin.server.store import ReportStore

    # TensorBoard's TensorFlow stub (gfile, boto3: 0.2-0.4 s here) is imported before the clock: TensorBoard imports
    # it at startup (its data ingester checks the logdir's filesystem through tf.io.gfile), long before a request.
    t_import = time.perf_counter()
    from tb_xquant_plugin.readers.events import use_native_crc32c

    use_native_crc32c()
    imports_s = time.perf_counter() - t_import
    rss_before = _rss_mib("VmRSS")
    rid = report_id(REPORT_REL)
    read_runs: List[str] = []

    class Recording(LocalEventSource):  # the runs whose events the build reads, for the bare cost below
        def _load(self, run):
            if run not in read_runs:
                read_runs.append(run)
            return super()._load(run)

    store = ReportStore(model_dir, lambda: Recording(model_dir), background=False)
    sent: Dict[str, int] = {}  # route -> bytes of its last compressed answer
    client = Client(Routes(store).wsgi_app())

    def get(route: str, **params) -> Tuple[float, bytes]:
        # as a browser asks: a compressed answer is accepted (and timed as it is sent); its JSON is returned
        t0 = time.perf_counter()
        resp = client.get("/" + route, query_string=dict(params, report=rid), headers={"Accept-Encoding": "gzip"})
        body = resp.get_data()
        seconds = time.perf_counter() - t0
        if resp.status_code != 200:
            raise RuntimeError("GET %s %s -> %d %s" % (route, params, resp.status_code, body[:300]))
        if resp.headers.get("Content-Encoding") == "gzip":
            sent[route] = len(body)
            body = gzip.decompress(body)
        return seconds, body

    t0 = time.perf_counter()
    dirs = store.report_dirs()
    t1 = time.perf_counter()
    report = store.report(rid)
    t2 = time.perf_counter()
    analysis, _ = store.analysis(rid, {})
    t3 = time.perf_counter()
    graph_s, graph_body = get("graph")
    # a capped list (MCT's troubleshoot report with more entries than the plugin reads) is a notice, not a failure
    fatal = [p.what for p in report.problems if "were read" not in p.what] if report else None
    if REPORT_REL not in dirs or report is None or fatal or not report.has_graph:
        raise RuntimeError("the generated report did not build cleanly: %s" % (fatal if report else dirs))
    cold = {"discover_s": t1 - t0, "build_s": t2 - t1, "analyse_s": t3 - t2, "graph_view_s": graph_s,
            "total_s": t3 - t0 + graph_s, "imports_s": imports_s}
    cold_peak = _rss_mib("VmHWM")

    with_histogram = [name for name in analysis.degraded if report.histogram(name) is not None]
    layer = (with_histogram or analysis.degraded or [report.layers[0].name])[0]
    calls = {
        "graph": lambda i: get("graph"),
        "layers": lambda i: get("layers"),
        "verdicts": lambda i: get("verdicts"),
        "layer": lambda i: get("layer", layer=layer),
        "rethreshold": lambda i: get("report", **{"thr.mse": "%.6f" % (0.1 + (i + 1) * 1e-4)}),
    }
    warm: Dict[str, Dict[str, float]] = {}
    sizes: Dict[str, int] = {"graph": len(graph_body)}
    for route in WARM_ROUTES:
        _, body = calls[route](-1)  # untimed: the view's first computation
        sizes[route] = len(body)
        times = [calls[route](i)[0] * 1000.0 for i in range(requests)]
        warm[route] = {"median_ms": statistics.median(times), "p95_ms": _percentile(times, 0.95),
                       "max_ms": max(times), "peak_rss_mib": _rss_mib("VmHWM")}
    peak = _rss_mib("VmHWM")
    bare = bare_cost(model_dir, read_runs)  # last: its GraphDefs must not count in the plugin's memory
    return {
        "layers": len(report.layers), "display_nodes": len(report.nodes), "histograms": len(report.histograms),
        "degraded": len(analysis.degraded), "verdicts": len(analysis.verdicts), "layer_route": layer,
        "cold": cold, "bare": bare, "warm": warm, "response_bytes": sizes, "gzip_bytes": sent,
        "rss_before_mib": rss_before, "cold_peak_rss_mib": cold_peak, "peak_rss_mib": peak,
    }


def bare_cost(model_dir: str, runs: List[str]) -> Dict[str, Any]:
    """The least any reader pays for the event data the build used: every record of those runs' event files read
    by TensorBoard's record reader with the C CRC-32C (``readers.events.use_native_crc32c``) and parsed as an
    ``Event``, and every GraphDef among them parsed by protobuf, without visiting a node or a histogram in Python.
    The files are in the page cache by then (the cold build read them)."""
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.compat.proto.graph_pb2 import GraphDef

    from tb_xquant_plugin.readers.events import LocalEventSource, use_native_crc32c

    native = use_native_crc32c()
    files_by_run = LocalEventSource(model_dir)._scan()
    t0 = time.perf_counter()
    records = graphs = nbytes = nodes = 0
    visit_s = 0.0
    for run in runs:
        for path in files_by_run.get(run, []):
            nbytes += os.path.getsize(path)
            for ev in event_file_loader.LegacyEventFileLoader(path).Load():
                records += 1
                if ev.HasField("graph_def"):
                    g = GraphDef()
                    g.ParseFromString(ev.graph_def)
                    graphs += 1
                    t_visit = time.perf_counter()
                    nodes += visit_nodes(g)
                    visit_s += time.perf_counter() - t_visit
                    del g
    return {"seconds": time.perf_counter() - t0 - visit_s, "runs": len(runs), "records": records, "graphs": graphs,
            "bytes": nbytes, "native_crc": native, "nodes": nodes, "visit_s": visit_s}


def visit_nodes(graph_def: Any) -> int:
    """The least Python work that learns a graph's structure: every node's name, op, inputs and attribute names
    read once (no attribute value decoded).  Any reader that builds the graph in Python pays at least this."""
    n = 0
    for node in graph_def.node:
        node.name, node.op, list(node.input), list(node.attr.keys())
        n += 1
    return n


def measure_traced(model_dir: str) -> Dict[str, Any]:
    """Peak of Python allocations (tracemalloc) over the cold path."""
    import tracemalloc

    from tb_xquant_plugin.model.report import report_id
    from tb_xquant_plugin.readers.events import LocalEventSource
    from tb_xquant_plugin.api import views
    from tb_xquant_plugin.server.store import ReportStore

    tracemalloc.start()
    rid = report_id(REPORT_REL)
    store = ReportStore(model_dir, lambda: LocalEventSource(model_dir), background=False)
    store.report_dirs()
    analysis, _ = store.analysis(rid, {})
    json.dumps(views.safe(views.graph(analysis)), allow_nan=False)
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return {"tracemalloc_peak_mib": peak / 2 ** 20, "tracemalloc_retained_mib": current / 2 ** 20}


def run_child(mode: str, model_dir: str, requests: int) -> Dict[str, Any]:
    cmd = [sys.executable, "-m", "bench.backend", mode, model_dir, "--requests", str(requests)]
    proc = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, timeout=MEASURE_TIMEOUT)
    if proc.returncode != 0:
        raise RuntimeError("%s failed (rc=%d):\n%s" % (" ".join(cmd), proc.returncode, proc.stderr[-4000:]))
    return json.loads(proc.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------------------------
# reporting
# --------------------------------------------------------------------------------------------
def n_log_n(n: int) -> float:
    return n * math.log2(n)


def worst_warm(result: Dict[str, Any], stat: str = "p95_ms") -> float:
    return max(v[stat] for v in result["warm"].values())


def growth(results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    """Cost ratios between successive sizes, next to the ratio of N log N."""
    out = []
    for a, b in zip(results, results[1:]):
        ref = n_log_n(b["n"]) / n_log_n(a["n"])
        costs = {
            "cold": b["cold"]["total_s"] / a["cold"]["total_s"],
            "warm median": worst_warm(b, "median_ms") / worst_warm(a, "median_ms"),
            "memory": (b["peak_rss_mib"] - b["rss_before_mib"]) / max(a["peak_rss_mib"] - a["rss_before_mib"], 1.0),
        }
        out.append({"from": a["n"], "to": b["n"], "n_ratio": b["n"] / a["n"], "n_log_n_ratio": ref,
                    "ratios": costs, "ok": {k: v <= GROWTH_SLACK * ref for k, v in costs.items()}})
    return out


def floor_s(result: Dict[str, Any]) -> Optional[float]:
    """Seconds a Python reader cannot go below on this logdir: reading and parsing the event files the build
    used (the bare cost) and visiting every graph node once (:func:`visit_nodes`)."""
    b = result.get("bare") or {}
    return b["seconds"] + b["visit_s"] if "visit_s" in b else None


def check_targets(results: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
    by_n = {r["n"]: r for r in results}
    checks = []
    for n, cold_s, warm_ms, rss_mib in TARGETS:
        r = by_n.get(n)
        if r is None:
            continue
        floor = floor_s(r)
        below = (" (a Python reader's floor here: %.2f s, %.0f %% of the target)" % (floor, 100.0 * floor / cold_s)
                 if floor is not None and floor >= 0.5 * cold_s else "")
        checks.append({"n": n, "what": "cold analysis < %g s" % cold_s,
                       "value": "%.2f s%s" % (r["cold"]["total_s"], below), "pass": r["cold"]["total_s"] < cold_s})
        route, worst = max(((k, v["p95_ms"]) for k, v in r["warm"].items()), key=lambda kv: kv[1])
        checks.append({"n": n, "what": "warm API p95 < %g ms (every route)" % warm_ms,
                       "value": "%.1f ms (%s)" % (worst, route), "pass": worst < warm_ms})
        if rss_mib is not None:
            checks.append({"n": n, "what": "peak backend RSS < %g MiB" % rss_mib,
                           "value": "%.0f MiB" % r["peak_rss_mib"], "pass": r["peak_rss_mib"] < rss_mib})
    return checks


def print_report(results: List[Dict[str, Any]], grow: List[Dict[str, Any]], checks: List[Dict[str, Any]]) -> None:
    head = ("%7s %7s %9s %6s %7s | %7s %7s %7s %7s %7s | " % ("N", "nodes", "disk MB", "gen s", "cold s",
                                                             "discov", "build", "analyse", "graph", "graphKB")
            + " ".join("%13s" % r for r in WARM_ROUTES) + " | %8s %8s %8s" % ("peak MiB", "cold", "before"))
    print("\ncold: seconds (TensorBoard's TensorFlow stub imported before the clock, as TensorBoard does at startup: "
          "%s s); warm: median/p95 ms over the requests; memory: peak RSS of the measuring process at the end, after "
          "the cold path, and RSS before the store existed"
          % ", ".join("%.2f" % r["cold"].get("imports_s", math.nan) for r in results))
    print(head)
    print("-" * len(head))
    for r in results:
        c = r["cold"]
        warm = " ".join("%6.1f/%6.1f" % (r["warm"][k]["median_ms"], r["warm"][k]["p95_ms"]) for k in WARM_ROUTES)
        traced = ("  tracemalloc peak %.0f MiB" % r["tracemalloc_peak_mib"]) if "tracemalloc_peak_mib" in r else ""
        print("%7d %7d %9.1f %6.1f %7.2f | %7.3f %7.3f %7.3f %7.3f %7.0f | %s | %8.0f %8.0f %8.0f%s" % (
            r["layers"], r["display_nodes"], r["disk_bytes"] / 1e6, r["generate_s"], c["total_s"], c["discover_s"],
            c["build_s"], c["analyse_s"], c["graph_view_s"], r["response_bytes"]["graph"] / 1e3, warm,
            r["peak_rss_mib"], r["cold_peak_rss_mib"], r["rss_before_mib"], traced))
    print("\nbare cost (the limit to approach): the same event files' records read with the C CRC-32C and parsed as "
          "Events, their GraphDefs parsed by protobuf, no node visited in Python")
    for r in results:
        b = r.get("bare")
        if b:
            print("  N=%-6d %.3f s (%d runs, %d records, %d graphs, %.0f MB%s); cold is %.1fx that, build %.1fx" % (
                r["layers"], b["seconds"], b["runs"], b["records"], b["graphs"], b["bytes"] / 1e6,
                "" if b["native_crc"] else ", pure-Python CRC", r["cold"]["total_s"] / b["seconds"],
                r["cold"]["build_s"] / b["seconds"]))
    print("\nfloor of a Python reader: the bare cost plus one visit of every node of those GraphDefs (name, op, inputs "
          "and attribute names read, no value decoded, no histogram decoded, nothing analysed)")
    for r in results:
        b = r.get("bare")
        if b and "visit_s" in b:
            print("  N=%-6d %.3f s + %.3f s for %d nodes = %.3f s; cold is %.1fx that" % (
                r["layers"], b["seconds"], b["visit_s"], b["nodes"], floor_s(r), r["cold"]["total_s"] / floor_s(r)))
    if grow:
        print("\ngrowth between sizes (ok: within %gx of N log N's ratio)" % GROWTH_SLACK)
        for g in grow:
            parts = ["%s x%.1f %s" % (k, v, "ok" if g["ok"][k] else "grows faster than N log N")
                     for k, v in g["ratios"].items()]
            print("  %d -> %d: N x%.1f (N log N x%.1f): %s" % (g["from"], g["to"], g["n_ratio"], g["n_log_n_ratio"],
                                                             "; ".join(parts)))
    print("\ntargets")
    for c in checks:
        print("  %-4s N=%-6d %-38s %s" % ("PASS" if c["pass"] else "MISS", c["n"], c["what"], c["value"]))
    if not checks:
        print("  (none at these sizes: targets are set at N=5000 and N=20000)")


def environment() -> Dict[str, Any]:
    from importlib.metadata import version

    return {"python": platform.python_version(), "platform": platform.platform(), "cpus": os.cpu_count(),
            "versions": {d: version(d) for d in ("tensorboard", "protobuf", "numpy", "werkzeug")},
            "date": time.strftime("%Y-%m-%d %H:%M:%S")}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="layer counts N")
    p.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "tb_xquant_bench"),
                   help="where the logdirs are generated (reused when present)")
    p.add_argument("--json", help="write the results here")
    p.add_argument("--requests", type=int, default=50, help="timed requests per warm route")
    p.add_argument("--bins", type=int, help="histogram bins of generated logdirs (default: the generator's)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--tracemalloc", action="store_true", help="also measure the Python allocation peak")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--measure", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    p.add_argument("--measure-traced", metavar="MODEL_DIR", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.measure:
        print(json.dumps(measure(args.measure, args.requests)))
        return 0
    if args.measure_traced:
        print(json.dumps(measure_traced(args.measure_traced)))
        return 0

    from bench import mct_format

    bins = args.bins or mct_format.DEFAULT_BINS
    results = []
    for n in sorted(set(args.sizes)):
        model_dir, gen_s = ensure_model(args.out, n, args.seed, bins)
        print("N=%d: %s %s" % (n, "generated in %.1f s," % gen_s if gen_s else "reusing", model_dir), flush=True)
        r = run_child("--measure", model_dir, args.requests)
        if args.tracemalloc:
            r.update(run_child("--measure-traced", model_dir, args.requests))
        r.update({"n": n, "generate_s": gen_s, "disk_bytes": dir_size(model_dir), "bins": bins})
        print("  cold %.2f s, worst warm p95 %.1f ms, peak RSS %.0f MiB" % (
            r["cold"]["total_s"], worst_warm(r), r["peak_rss_mib"]), flush=True)
        results.append(r)
    grow = growth(results)
    checks = check_targets(results)
    print_report(results, grow, checks)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"command": " ".join([os.path.basename(sys.executable), "-m", "bench.backend"] + sys.argv[1:]),
                       "env": environment(), "bins": bins, "seed": args.seed, "requests": args.requests,
                       "results": results, "growth": grow, "targets": checks}, f, indent=1)
    return 1 if args.strict and not all(c["pass"] for c in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
