#!/usr/bin/env python
"""MCT's own report step (its matplotlib PNG charts) versus the XQuant tab's first chart, on the demo models.

    .venv/bin/python -m bench.mct_pngs [--scenario outlier ...] [--out DIR] [--repeat 3] [--json PATH] [--reuse]

For each demo scenario (default: all of ``demo/generate.py``'s, ``--scenario`` picks some) the demo model is
built, quantized with MCT PTQ and reported with ``xquant_report_troubleshoot_pytorch_experimental`` exactly as
``python -m demo.generate`` does, with timers wrapped around MCT 2.6.1's own functions:

* the whole XQuant troubleshoot call (histogram collection, similarity metrics on both datasets, TensorBoard
  events, JSON, degraded-layer detection, judges, PNGs);
* ``core_detect_degrade_layer`` (detection + the similarity charts), and inside it every
  ``make_similarity_graph`` (one ``quant_loss_<metric>_<dataset>.png`` per metric x dataset);
* every ``_save_outlier_histogram`` (``outlier_histgrams/<layer>.png``, for degraded layers with outliers).

Then, on the saved data only, ``core_detect_degrade_layer`` is replayed ``--repeat`` times from
``quant_report.json`` into a scratch folder (matplotlib already imported: the cost of drawing the charts alone),
and the import of ``matplotlib.pyplot`` is timed in a fresh interpreter.

On the same reports, one ``tensorboard --logdir <scenario>`` per scenario (default fast loader) and headless
Chromium: the time from navigation to the panel's first per-layer error chart drawn (the panel page opened at
``#report=ID&view=chart``), cold (the first open after TensorBoard started: includes the backend building the
report) and warm (median of ``--repeat``), and the user's way (click the XQuant tab in a loaded TensorBoard,
then "Error charts" once the panel is ready).

Prints a table; ``--json`` writes every number.
"""
from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("MPLBACKEND", "Agg")

from bench.browser import (Browser, TensorBoard, fmt_s, median, open_chart, open_tab_chart, stop_on_sigterm,  # noqa: E402
                           table)


class Timers:
    """Wraps MCT's report functions; times are attributed to the report dir of the call in progress."""

    def __init__(self):
        self.by_dir: Dict[str, Dict[str, Any]] = {}
        self.current: Optional[str] = None

    def slot(self) -> Dict[str, Any]:
        return self.by_dir.setdefault(self.current or "?", {"xquant_s": 0.0, "detect_s": 0.0, "similarity_png_s": 0.0,
                                                             "similarity_pngs": 0, "outlier_png_s": 0.0,
                                                             "outlier_pngs": 0})

    def install(self):
        import model_compression_toolkit.xquant as xq
        from model_compression_toolkit.xquant.pytorch import core_detect_degrade_layer as cdl
        from model_compression_toolkit.xquant.pytorch import core_report_generator as crg
        from model_compression_toolkit.xquant.pytorch import judge_troubleshoot_utils as jtu

        timers = self

        def timed(fn, key, count=None, outer=False):
            def wrapper(*args, **kwargs):
                if outer:
                    cfg = args[4] if len(args) > 4 else kwargs.get("xquant_config")
                    timers.current = os.path.abspath(cfg.report_dir)
                t0 = time.perf_counter()
                try:
                    return fn(*args, **kwargs)
                finally:
                    s = timers.slot()
                    s[key] += time.perf_counter() - t0
                    if count:
                        s[count] += 1
            wrapper.__wrapped__ = fn
            return wrapper

        xq.xquant_report_troubleshoot_pytorch_experimental = timed(
            xq.xquant_report_troubleshoot_pytorch_experimental, "xquant_s", outer=True)
        crg.core_detect_degrade_layer = timed(crg.core_detect_degrade_layer, "detect_s")
        cdl.make_similarity_graph = timed(cdl.make_similarity_graph, "similarity_png_s", "similarity_pngs")
        jtu._save_outlier_histogram = timed(jtu._save_outlier_histogram, "outlier_png_s", "outlier_pngs")


def generate(out: str, names: List[str], verbose: bool) -> Dict[str, Dict[str, Any]]:
    from demo import generate as G

    timers = Timers()
    timers.install()
    sink = io.StringIO()
    t0 = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if not verbose:   # MCT prints progress bars and log paths
            stack.enter_context(contextlib.redirect_stderr(sink))
            stack.enter_context(contextlib.redirect_stdout(sink))
        walls = G.generate(out, names)
    res = {}
    for name in names:
        rd = os.path.abspath(os.path.join(out, name, "xquant_report"))
        res[name] = dict(timers.by_dir.get(rd, {}), scenario_wall_s=walls.get(name))
    print("generated %s in %.0fs" % (", ".join(names), time.perf_counter() - t0), file=sys.stderr)
    return res


def replay(report_dir: str, repeat: int) -> Dict[str, Any]:
    """MCT's detection + similarity charts on the saved quant_report.json, into a scratch folder."""
    from model_compression_toolkit.xquant import XQuantConfig
    from model_compression_toolkit.xquant.pytorch import core_detect_degrade_layer as cdl
    fn = getattr(cdl.core_detect_degrade_layer, "__wrapped__", cdl.core_detect_degrade_layer)

    with open(os.path.join(report_dir, "quant_report.json")) as f:
        q = json.load(f)
    cfg_d = {}
    man = os.path.join(report_dir, "tb_xquant_manifest.json")
    if os.path.exists(man):
        with open(man) as f:
            cfg_d = json.load(f).get("xquant_config", {})
    times = []
    with tempfile.TemporaryDirectory(prefix="mct_png_replay_") as tmp:
        for _ in range(repeat):
            cfg = XQuantConfig(report_dir=tmp)
            if cfg_d.get("threshold_quantize_error"):
                cfg.threshold_quantize_error = dict(cfg_d["threshold_quantize_error"])
                cfg.is_detect_under_threshold_quantize_error = dict(cfg_d["is_detect_under_threshold_quantize_error"])
            repr_sim = (q["output_similarity_metrics_repr"], q["intermediate_similarity_metrics_repr"])
            val_sim = (q["output_similarity_metrics_val"], q["intermediate_similarity_metrics_val"])
            sink = io.StringIO()
            with contextlib.redirect_stderr(sink), contextlib.redirect_stdout(sink):
                t0 = time.perf_counter()
                fn(repr_sim, val_sim, cfg)
                times.append(time.perf_counter() - t0)
        pngs = sorted(p for p in os.listdir(tmp) if p.endswith(".png"))
    return {"replay_s": statistics.median(times), "replay_all_s": times, "pngs": len(pngs),
            "layers": len(q["intermediate_similarity_metrics_repr"])}


def pyplot_import_s() -> Optional[float]:
    code = "import time; t=time.perf_counter(); import matplotlib.pyplot; print(time.perf_counter()-t)"
    try:
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                             env=dict(os.environ, MPLBACKEND="Agg"))
        return float(out.stdout.strip().splitlines()[-1])
    except (subprocess.SubprocessError, ValueError, IndexError):
        return None


def tab_chart(br: Browser, scenario_dir: str, repeat: int) -> Dict[str, Any]:
    from tb_xquant_plugin.model.report import report_id

    tb = TensorBoard(scenario_dir)
    try:
        tb.wait_loaded("xquant_report/xquant", xquant=True)
        rid = report_id("xquant_report")
        cold = open_chart(br, tb, rid)
        warm = [open_chart(br, tb, rid) for _ in range(repeat)]
        click = open_tab_chart(br, tb)
        return {"cold_s": cold["chart_s"], "warm_s": median([w["chart_s"] for w in warm]), "tab_click_s": click["chart_s"],
                "charts": cold["charts"], "errors": cold["errors"] + [e for w in warm for e in w["errors"]] + click["errors"]}
    finally:
        tb.stop()


def main(argv: Optional[List[str]] = None) -> int:
    from demo.generate import ORDER

    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--scenario", nargs="+", choices=ORDER, help="demo scenarios (default: all)")
    p.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "tb_xquant_bench_mct"),
                   help="where the demo scenarios are (re)generated")
    p.add_argument("--repeat", type=int, default=3)
    p.add_argument("--json", help="also write every number as JSON here")
    p.add_argument("--reuse", action="store_true",
                   help="reuse the reports and MCT timings of a previous run in --out (no MCT run)")
    p.add_argument("--verbose", action="store_true", help="show MCT's output")
    args = p.parse_args(argv)
    names = args.scenario or list(ORDER)
    if "outlier_fixed" in names and "outlier" not in names:
        names = ["outlier"] + names   # outlier_fixed re-quantizes the outlier model with its proposed z_threshold
    os.makedirs(args.out, exist_ok=True)
    stop_on_sigterm()
    timings_path = os.path.join(args.out, "mct_timings.json")
    if args.reuse and os.path.exists(timings_path):
        with open(timings_path) as f:
            mct = json.load(f)
        missing = [n for n in names if n not in mct]
        if missing:
            raise SystemExit("--reuse: no MCT timings for %s in %s" % (", ".join(missing), timings_path))
    else:
        mct = generate(args.out, names, args.verbose)
        with open(timings_path, "w") as f:
            json.dump(mct, f, indent=1)
    imp = pyplot_import_s()
    rows, results = [], {}
    br = Browser()
    try:
        for name in names:
            rd = os.path.join(args.out, name, "xquant_report")
            rp = replay(rd, args.repeat)
            tab = tab_chart(br, os.path.join(args.out, name), args.repeat)
            m = mct[name]
            png_s = m.get("similarity_png_s", 0.0) + m.get("outlier_png_s", 0.0)
            results[name] = {"mct": m, "replay": rp, "tab": tab}
            rows.append([name, str(rp["layers"]), "%d+%d" % (m.get("similarity_pngs", 0), m.get("outlier_pngs", 0)),
                         fmt_s(m.get("xquant_s")), fmt_s(m.get("detect_s")), fmt_s(png_s), fmt_s(rp["replay_s"]),
                         fmt_s(tab["cold_s"]), fmt_s(tab["warm_s"]), fmt_s(tab["tab_click_s"]),
                         "%.1fx" % (png_s / tab["warm_s"]) if tab["warm_s"] else "-",
                         "%.1fx" % (m["xquant_s"] / tab["warm_s"]) if tab["warm_s"] and m.get("xquant_s") else "-"])
            print("  %s done" % name, file=sys.stderr, flush=True)
    finally:
        br.close()
    print("MCT 2.6.1's report step (matplotlib PNGs) vs the XQuant tab's first per-layer error chart, demo models; "
          "seconds.")
    print("PNGs = similarity charts + outlier histograms written by MCT; 'PNG drawing' = time inside "
          "make_similarity_graph and _save_outlier_histogram during the XQuant call; 'replay' = "
          "core_detect_degrade_layer (detection + the similarity charts) re-run on quant_report.json, median of %d; "
          "tab = navigation to the first chart drawn (cold: first open after TensorBoard started; warm: median of %d; "
          "click: XQuant tab then 'Error charts' clicked in a loaded TensorBoard)." % (args.repeat, args.repeat))
    if imp is not None:
        print("import matplotlib.pyplot in a fresh interpreter: %.2fs (not included above)" % imp)
    print()
    print(table(["scenario", "layers", "PNGs", "MCT xquant call", "detect+charts", "PNG drawing", "replay charts",
                 "tab cold", "tab warm", "tab click", "PNG drawing / tab warm", "xquant call / tab warm"], rows))
    errs = [(n, e) for n, r in results.items() for e in r["tab"]["errors"]]
    if errs:
        print("Page errors: " + "; ".join("%s: %s" % x for x in errs[:10]))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"pyplot_import_s": imp, "results": results}, f, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
