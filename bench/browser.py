#!/usr/bin/env python
"""Browser benchmark: the XQuant tab versus TensorBoard's own Graphs tab on generated MCT logdirs.

    .venv/bin/python -m bench.browser [--sizes 100 1000 5000 20000] [--out DIR] [--json PATH]
                                      [--repeat 3] [--graphs-timeout 180] [--expand-all] [--regenerate]
    .venv/bin/python -m bench.browser --from-json PATH      # print the tables of a saved run again
    .venv/bin/python -m bench.browser --real LOGDIR [--repeat 3] [--json PATH]   # first view of real models
    .venv/bin/python -m bench.browser --real shapes [--out DIR]                  # ... of bench.mct_format.SHAPES

``--real`` measures the graph's first view instead, report by report, on a logdir of real MCT reports
(``python -m demo.zoo --out zoo_logs``: torchvision architectures quantized by MCT 2.6.1) or, with ``shapes``,
on the torchvision-shaped models of ``bench.mct_format`` (densenet121 / googlenet / efficientnet_b0 /
shufflenet_v2 graphs, written into ``OUT/shapes``): per report the graph's nodes, the boxes shown at open, the
on-screen label size, the time from opening the tab to the graph drawn, the layout calls of the first view (their
time in the layout worker and end to end, the boxes given to dagre) and the same for "Expand all".  Target: a
374-node model (densenet121) laid out well under 0.3 s.

For every N it writes (once; reused while bench/mct_format.py is unchanged) a synthetic model in MCT 2.6.1's
on-disk format with ``bench.mct_format.write_model_logdir(OUT, N)`` (``OUT/model_<N>/``: ``mct_logs/`` stage
logs and ``xquant_report/`` with ``quant_report.json`` and the ``xquant/`` events holding the graph and the
histograms), then starts two real TensorBoard processes (default fast loader):

* ``tensorboard --logdir OUT/model_<N>`` for the XQuant tab;
* ``tensorboard --logdir OUT/model_<N>/xquant_report`` for the Graphs tab.  Its only graph run is ``xquant``,
  the very graph MCT wrote for TensorBoard.  (TensorBoard 2.21's ``#graphs&run=`` deep link does not select the
  run: the dashboard reads it, but its run selector stays at run 0, so with the model folder as logdir the
  Graphs tab would load a stage graph first.)

Both tabs are measured in the same headless Chromium (flags of ``tests/browser/conftest.py``), each page in a
fresh browser context (empty cache), up to the first animation frame in which the graph is on screen:

* XQuant: ``canvas.graph-canvas[data-state=ready]`` (set right after the panel drew the laid-out graph);
* Graphs tab: the first ``g.node`` in ``tf-graph-scene``'s shadow root (TensorBoard renders the SVG scene after
  fetching the graph, parsing it and building its hierarchy).

"Opening the tab" is timed from the mouse press on the tab in TensorBoard's header (TensorBoard loaded at its
Text dashboard beforehand), so TensorBoard's own page load, the same for both, is left out; it is in the *nav*
columns (navigation to ``/#xquant`` or ``/#graphs``).  The first open of each tab after TensorBoard started is
*cold* (for XQuant it includes the backend building the report), the median of ``--repeat`` further opens is
*warm*.  Then, on the XQuant tab, frame times while panning (mouse drag) and zooming (wheel), recorded in the
page: the panel's draw time per frame (``data-draw-ms``), the main-thread cost of each frame (from the start of
the frame's first requestAnimationFrame callback to a message posted from it, i.e. after the frame is painted)
and the interval between frames.  Also the time to the first per-layer error chart.

Prints one table per measure with PASS/MISS against the targets (2-core machine, no GPU: at 5,000 layers graph
drawn < 1.5 s and pan/zoom frames < 16 ms; at 20,000 all < 4x those; faster than the Graphs tab on every N) and
the growth of each cost between sizes next to N log N's.  A Graphs tab that has not drawn after
``--graphs-timeout`` seconds is reported as ``> timeout`` (the ratio as ``> ...``), not as a failure of the run.
The machine's load average is printed with each size: the numbers mean little on a busy machine.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from testkit.logdirs import ensure_model_logdir  # noqa: E402
from testkit.procs import TensorBoardProcess  # noqa: E402

CHROMIUM = os.environ.get("TB_XQUANT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 1000}
DEFAULT_SIZES = (100, 1000, 5000, 20000)
# Targets of the issue, at 5,000 layers; at 20,000 everything may take 4x.
TARGET_GRAPH_S = 1.5
TARGET_FRAME_MS = 16.0
BIG_FACTOR = 4.0
POLL = 0.25  # polling interval of deadline loops (never used as synchronisation)

# --------------------------------------------------------------------------------------------
# In-page recorder (installed in every frame before any page script runs)
# --------------------------------------------------------------------------------------------
RECORDER_JS = r"""
(() => {
  if (window.__bench) return;
  const B = window.__bench = {marks: {}, frames: null, draws: null, stop: false};
  const now = () => performance.timeOrigin + performance.now();   // epoch ms, comparable across frames
  B.now = now;
  B.mark = (k) => { if (!(k in B.marks)) B.marks[k] = now(); };
  // the moment the user presses the mouse (a tab click), capture phase of the top page
  if (window === window.top) window.addEventListener('mousedown', () => { if (B.armed) { B.armed = false; B.marks.click = now(); } }, true);
  // querySelector through open shadow roots
  const deep = (root, sel) => {
    const r = root.querySelector(sel);
    if (r) return r;
    for (const el of root.querySelectorAll('*')) if (el.shadowRoot) { const x = deep(el.shadowRoot, sel); if (x) return x; }
    return null;
  };
  B.deep = deep;
  let scene = null;
  const chartDrawn = (c) => {
    if (c.offsetParent === null || !c.width || !c.height) return false;
    try { return c.getContext('2d').getImageData(c.width >> 1, c.height >> 1, 1, 1).data[3] > 0; } catch (e) { return false; }
  };
  const check = () => {
    const g = document.querySelector('canvas.graph-canvas');
    if (g && g.dataset.state === 'ready') B.mark('graph');
    const root = document.getElementById('xquant-root');
    if (root && root.dataset.state === 'ready') B.mark('panel');
    if (!('chart' in B.marks)) for (const c of document.querySelectorAll('canvas.chart-canvas')) if (chartDrawn(c)) { B.mark('chart'); break; }
    if (window === window.top && location.hash.startsWith('#graphs') && !('tbgraph' in B.marks)) {
      if (!scene) scene = deep(document, 'tf-graph-scene');
      if (scene && scene.shadowRoot && scene.shadowRoot.querySelector('g.node')) {
        B.mark('tbgraph');
        B.tbNodes = scene.shadowRoot.querySelectorAll('g.node').length;
      }
    }
  };
  const loop = () => { if (B.stop) return; check(); requestAnimationFrame(loop); };
  requestAnimationFrame(loop);

  // Frame recorder for pan / zoom: per frame its start (rAF timestamp), its main-thread cost (until a message
  // posted from our rAF callback is delivered, i.e. after the frame's callbacks, style, layout and paint) and
  // the panel's draws (data-draw-ms mutations) that happened in it.
  B.startFrames = () => {
    B.frames = []; B.draws = [];
    const rec = {on: true};
    B._rec = rec;
    const ch = new MessageChannel();
    let pending = null;
    ch.port1.onmessage = () => { if (pending) { const e = performance.now(); pending.cost = e - pending.s; pending.since_vsync = e - pending.t; pending = null; } };
    const tick = (ts) => {
      if (!rec.on) return;
      // t: the frame's time stamp (vsync); s: when our callback, the frame's first rAF callback, started.
      // cost = s -> after paint (input events are dispatched before rAF callbacks and are not in it;
      // the panel's handlers only move the transform and request a draw).
      pending = {t: ts, s: performance.now(), cost: null, draws: 0};
      B.frames.push(pending);
      ch.port2.postMessage(0);
      requestAnimationFrame(tick);
    };
    requestAnimationFrame(tick);
    const c = document.querySelector('canvas.graph-canvas');
    if (c) {
      rec.mo = new MutationObserver((recs) => {
        for (const r of recs) {
          const f = B.frames[B.frames.length - 1];
          if (f) f.draws++;
        }
        B.draws.push(Number(c.dataset.drawMs));
      });
      rec.mo.observe(c, {attributes: true, attributeFilter: ['data-draw-ms']});
    }
  };
  B.stopFrames = () => new Promise((resolve) => {
    // let the last frame finish
    requestAnimationFrame(() => setTimeout(() => {
      const rec = B._rec; rec.on = false; if (rec.mo) rec.mo.disconnect();
      resolve({frames: B.frames, draws: B.draws});
    }, 50));
  });
})();
"""


# --------------------------------------------------------------------------------------------
# TensorBoard processes
# --------------------------------------------------------------------------------------------
class TensorBoard(TensorBoardProcess):
    """A real ``tensorboard --logdir X --host 127.0.0.1 --port P`` subprocess (default fast loader; testkit.procs),
    started and answering once constructed.  Its log is a temporary file, deleted on ``stop()``."""

    def __init__(self, logdir: str, extra_args: Optional[List[str]] = None, env: Optional[Dict[str, str]] = None):
        super().__init__(str(logdir), extra_args=list(extra_args or []), env=env, delete_log=True)
        self.start()

    def get(self, path: str, timeout: float = 30.0) -> Tuple[int, bytes]:
        status, _, body = self.request(path, timeout=timeout)
        return status, body

    def json(self, path: str, timeout: float = 30.0) -> Any:
        return self.get_json(path, timeout=timeout)

    def wait_loaded(self, run: str, deadline: float = 600.0, settle: float = 3.0, xquant: bool = False) -> float:
        """Wait until the data provider lists ``run`` with its graph and the runs / graph / histogram listings
        stayed unchanged for ``settle`` seconds (TensorBoard loads event files in the background).  With
        ``xquant``, also until the plugin is listed (its discovery found the report) — without ever calling an
        XQuant route, so that the first open of the tab stays cold.  Returns the seconds since the spawn."""
        state = {"last": None, "since": None}

        def settled():
            info = self.json("/data/plugin/graphs/info")
            hist = self.json("/data/plugin/histograms/tags")
            runs = self.json("/data/runs")
            ok = run in info and info[run].get("run_graph")
            if xquant:
                ok = ok and bool((self.xquant_listing() or {}).get("enabled"))
            now = json.dumps([info, hist, runs], sort_keys=True)
            if not (ok and now == state["last"]):
                state["last"], state["since"] = now, time.monotonic()
                return False
            return time.monotonic() - state["since"] >= settle

        self.poll("tensorboard on %s loaded" % self.logdir, settled, deadline)
        return time.monotonic() - self.started


# --------------------------------------------------------------------------------------------
# Browser helpers
# --------------------------------------------------------------------------------------------
class Browser:
    def __init__(self, chromium: str = CHROMIUM):
        from playwright.sync_api import sync_playwright
        if not os.path.exists(chromium):
            raise SystemExit("%s not found: apt-get install -y chromium (or set TB_XQUANT_CHROMIUM)" % chromium)
        self._pw = sync_playwright().start()
        self.browser = self._pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        self.version = self.browser.version

    def page(self):
        ctx = self.browser.new_context(viewport=VIEWPORT)
        ctx.add_init_script(RECORDER_JS)
        page = ctx.new_page()
        errors: List[str] = []
        page.on("pageerror", lambda e: errors.append("pageerror: %s" % e))
        ignored = lambda u: "/font-roboto/" in u or "favicon" in u  # noqa: E731 - TensorBoard's own missing assets
        page.on("response", lambda r: errors.append("HTTP %s %s" % (r.status, r.url))
                if r.status >= 400 and not ignored(r.url) else None)
        return ctx, page, errors

    def close(self):
        try:
            self.browser.close()
        finally:
            self._pw.stop()


def wait_until(fn: Callable[[], Any], timeout: float, what: str, page=None) -> Any:
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise TimeoutError(what)
        if page is not None:
            page.wait_for_timeout(50)
        else:
            time.sleep(0.05)


def xquant_frame(page, timeout: float = 60.0):
    def find():
        return next((f for f in page.frames if "plugin_entry.html" in f.url and "name=xquant" in f.url), None)
    return wait_until(find, timeout, "XQuant iframe never appeared", page)


def marks(frame) -> Dict[str, float]:
    try:
        return frame.evaluate("window.__bench ? window.__bench.marks : {}")
    except Exception:  # noqa: BLE001 - frame navigating
        return {}


def resource_timings(frame, needles: List[str]) -> Dict[str, float]:
    """responseEnd (epoch ms) of the first resource whose URL contains each needle."""
    js = """(needles) => { const out = {}; const t0 = performance.timeOrigin;
      for (const e of performance.getEntriesByType('resource')) for (const n of needles)
        if (!(n in out) && e.name.includes(n)) out[n] = t0 + e.responseEnd;
      return out; }"""
    try:
        return frame.evaluate(js, needles)
    except Exception:  # noqa: BLE001
        return {}


START_TAB = "text"   # a light dashboard both logdirs have (MCT writes text summaries); the tab is clicked from it


def _load_tb_page(page, tb: TensorBoard, hash_: str, timeout: float = 120.0):
    """Open TensorBoard's page at a dashboard and let it settle (its requests done)."""
    page.goto("%s/#%s" % (tb.base, hash_), wait_until="load")
    page.wait_for_selector("span.plugin-name[data-plugin-id]", timeout=timeout * 1000)
    try:
        page.wait_for_load_state("networkidle", timeout=15000)
    except Exception:  # noqa: BLE001 - TensorBoard keeps polling; settle time is only a courtesy
        pass
    page.wait_for_timeout(300)


def _start(page, tb: TensorBoard, plugin: str, mode: str) -> Tuple[float, Any]:
    """Navigate (mode "nav": TensorBoard's page straight at the plugin's tab) or click the plugin's tab in an
    already loaded TensorBoard (mode "click"). Returns (t0 epoch ms, marks getter of the top frame)."""
    if mode == "nav":
        page.goto("%s/#%s" % (tb.base, plugin), wait_until="commit")
        return page.evaluate("performance.timeOrigin"), None
    _load_tb_page(page, tb, START_TAB)
    page.evaluate("window.__bench.armed = true")
    page.click("span.plugin-name[data-plugin-id=%s]" % plugin)
    return page.evaluate("window.__bench.marks.click"), None


def _mark(frame, key: str, timeout: float, what: str, page) -> Dict[str, float]:
    return wait_until(lambda: (lambda mm: mm if key in mm else None)(marks(frame)), timeout, what, page)


def open_xquant(br: Browser, tb: TensorBoard, mode: str = "click", timeout: float = 300.0,
                keep: bool = False) -> Dict[str, Any]:
    """The XQuant tab (TensorBoard's page with the panel's iframe): time from opening the tab (mode "click":
    the tab clicked in a loaded TensorBoard; mode "nav": navigation to ``/#xquant``) to the graph drawn."""
    ctx, page, errors = br.page()
    try:
        t0, _ = _start(page, tb, "xquant", mode)
        frame = xquant_frame(page)
        m = _mark(frame, "graph", timeout, "XQuant graph not drawn after %ss" % timeout, page)
        c = frame.locator("canvas.graph-canvas")
        attrs = {k: c.get_attribute("data-" + k) for k in
                 ("node-count", "visible-count", "model-ms", "layout-ms", "first-draw-ms", "layout-mode")}
        frame_origin = frame.evaluate("performance.timeOrigin")
        res = resource_timings(frame, ["static/index.js", "/reports", "/report?", "/layers?", "/graph?"])
        rel = lambda k: (res[k] - t0) / 1000.0 if k in res else None  # noqa: E731
        out = {"mode": mode, "graph_s": (m["graph"] - t0) / 1000.0, "iframe_start_s": (frame_origin - t0) / 1000.0,
               "bundle_s": rel("static/index.js"), "reports_s": rel("/reports"), "graph_json_s": rel("/graph?"),
               "report_json_s": rel("/report?"), "layers_json_s": rel("/layers?"),
               "attrs": attrs, "errors": errors}
        if keep:
            out["_page"], out["_ctx"], out["_frame"] = page, ctx, frame
        return out
    finally:
        if not keep:
            ctx.close()


def open_graphs_tab(br: Browser, tb: TensorBoard, timeout: float, mode: str = "click") -> Dict[str, Any]:
    """TensorBoard's Graphs tab: time from opening the tab to the first SVG node of its scene drawn."""
    ctx, page, errors = br.page()
    try:
        t0, _ = _start(page, tb, "graphs", mode)
        try:
            m = _mark(page.main_frame, "tbgraph", timeout, "graphs tab", page)
        except TimeoutError:
            return {"mode": mode, "graph_s": None, "timeout": timeout, "errors": errors}
        res = resource_timings(page.main_frame, ["/data/plugin/graphs/graph?"])
        g = res.get("/data/plugin/graphs/graph?")
        return {"mode": mode, "graph_s": (m["tbgraph"] - t0) / 1000.0, "graph_json_s": (g - t0) / 1000.0 if g else None,
                "svg_nodes": page.evaluate("window.__bench.tbNodes"), "errors": errors}
    finally:
        ctx.close()


def open_chart(br: Browser, tb: TensorBoard, rid: str, timeout: float = 300.0) -> Dict[str, Any]:
    """The panel page itself with ``#report=ID&view=chart``: navigation to the first error chart drawn."""
    ctx, page, errors = br.page()
    try:
        page.goto("%s/data/plugin_entry.html?name=xquant#report=%s&view=chart" % (tb.base, rid), wait_until="commit")
        t0 = page.evaluate("performance.timeOrigin")
        m = _mark(page.main_frame, "chart", timeout, "no chart drawn after %ss" % timeout, page)
        res = resource_timings(page.main_frame, ["/layers?"])
        lj = res.get("/layers?")
        return {"chart_s": (m["chart"] - t0) / 1000.0, "layers_json_s": (lj - t0) / 1000.0 if lj else None,
                "charts": page.locator("canvas.chart-canvas").count(), "errors": errors}
    finally:
        ctx.close()


def open_tab_chart(br: Browser, tb: TensorBoard, timeout: float = 300.0) -> Dict[str, Any]:
    """The user's way: click the XQuant tab in a loaded TensorBoard, then "Error charts" as soon as the panel is
    ready; time from the tab click to the first chart drawn (includes the second click)."""
    ctx, page, errors = br.page()
    try:
        t0, _ = _start(page, tb, "xquant", "click")
        frame = xquant_frame(page)
        frame.wait_for_selector("#xquant-root[data-state=ready]", timeout=timeout * 1000)
        frame.click("button.tab[data-view=chart]")
        m = _mark(frame, "chart", timeout, "no chart drawn after %ss" % timeout, page)
        return {"chart_s": (m["chart"] - t0) / 1000.0, "panel_s": (m["panel"] - t0) / 1000.0 if "panel" in m else None,
                "errors": errors}
    finally:
        ctx.close()


# --------------------------------------------------------------------------------------------
# pan / zoom frames
# --------------------------------------------------------------------------------------------
def _pct(xs: List[float], q: float) -> Optional[float]:
    if not xs:
        return None
    s = sorted(xs)
    i = min(len(s) - 1, max(0, int(math.ceil(q / 100.0 * len(s))) - 1))
    return s[i]


def frame_stats(rec: Dict[str, Any]) -> Dict[str, Any]:
    frames = [f for f in rec["frames"] if f.get("cost") is not None]
    drawn = [f for f in frames if f["draws"]]
    costs = [f["cost"] for f in drawn]
    since_vsync = [f["since_vsync"] for f in drawn if f.get("since_vsync") is not None]
    ts = [f["t"] for f in rec["frames"]]
    intervals = [b - a for a, b in zip(ts, ts[1:])]
    draws = [d for d in rec["draws"] if d == d]
    return {"frames": len(frames), "frames_with_draw": len(drawn),
            "draw_ms": {"p50": _pct(draws, 50), "p95": _pct(draws, 95), "max": max(draws) if draws else None},
            "frame_ms": {"p50": _pct(costs, 50), "p95": _pct(costs, 95), "max": max(costs) if costs else None},
            "interval_ms": {"p50": _pct(intervals, 50), "p95": _pct(intervals, 95),
                            "max": max(intervals) if intervals else None},
            "since_vsync_ms": {"p50": _pct(since_vsync, 50), "p95": _pct(since_vsync, 95)},
            "long_intervals": sum(1 for i in intervals if i > 1.5 * 16.7)}


def gesture(page, frame, kind: str, steps: int = 60, pace: float = 0.016) -> Dict[str, Any]:
    box = frame.locator("canvas.graph-canvas").bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    frame.evaluate("window.__bench.startFrames()")
    if kind == "pan":
        page.mouse.down()
        for i in range(steps):
            a = 2 * math.pi * i / steps
            page.mouse.move(cx + 180 * math.sin(a), cy + 120 * (1 - math.cos(a)))
            time.sleep(pace)
        page.mouse.up()
    else:
        for i in range(steps):
            page.mouse.wheel(0, -100 if (i // 10) % 2 == 0 else 100)
            time.sleep(pace)
    rec = frame.evaluate("window.__bench.stopFrames()")
    return frame_stats(rec)


def expand_all(page, frame, timeout: float = 600.0) -> Dict[str, Any]:
    t0 = time.monotonic()
    # the click handler sets data-state=layout synchronously; ready again once the new layout is drawn
    frame.click("text=Expand all")
    frame.wait_for_selector("canvas.graph-canvas[data-state=ready]", timeout=timeout * 1000)
    c = frame.locator("canvas.graph-canvas")
    return {"expand_s": time.monotonic() - t0, "visible": c.get_attribute("data-visible-count"),
            "layout_ms": c.get_attribute("data-layout-ms")}


# --------------------------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------------------------
def ensure_model(out: str, n: int, seed: int = 0, regenerate: bool = False) -> Tuple[str, float]:
    """OUT/model_<N>, generated by bench.mct_format; reused while the generator's source and the seed are the
    same. Returns (model dir, seconds spent generating)."""
    return ensure_model_logdir(out, n, seed, regenerate=regenerate)


def report_dir_of(mdir: str) -> str:
    return os.path.join(mdir, "xquant_report")


def median(xs: List[float]) -> Optional[float]:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def bench_size(br: Browser, out: str, n: int, repeat: int, graphs_timeout: float, do_expand: bool,
               log: Callable[[str], None], regenerate: bool = False) -> Dict[str, Any]:
    from tb_xquant_plugin.model.report import report_id

    mdir, gen_s = ensure_model(out, n, regenerate=regenerate)
    res: Dict[str, Any] = {"n": n, "logdir": mdir, "generate_s": gen_s, "loadavg": os.getloadavg()[0]}
    rid = report_id("xquant_report")
    tb_x = TensorBoard(mdir)
    tb_g = TensorBoard(report_dir_of(mdir))
    try:
        res["tb_load_s"] = {"xquant_logdir": tb_x.wait_loaded("xquant_report/xquant", xquant=True),
                            "graphs_logdir": tb_g.wait_loaded("xquant")}
        log("  N=%d: tensorboard loaded (%.1fs / %.1fs)" % (n, res["tb_load_s"]["xquant_logdir"],
                                                             res["tb_load_s"]["graphs_logdir"]))
        cold_x = open_xquant(br, tb_x)
        log("  xquant cold %.2fs" % cold_x["graph_s"])
        cold_g = open_graphs_tab(br, tb_g, graphs_timeout)
        log("  graphs cold %s" % ("%.2fs" % cold_g["graph_s"] if cold_g["graph_s"] is not None else "> timeout"))
        warm_x, warm_g = [], []
        for i in range(repeat):
            warm_x.append(open_xquant(br, tb_x))
            # a Graphs tab that takes minutes is opened once more only
            if cold_g["graph_s"] is not None and (cold_g["graph_s"] < 60 or i == 0):
                warm_g.append(open_graphs_tab(br, tb_g, graphs_timeout))
        nav_x = open_xquant(br, tb_x, mode="nav")
        nav_g = open_graphs_tab(br, tb_g, graphs_timeout, mode="nav") if cold_g["graph_s"] is not None else \
            {"mode": "nav", "graph_s": None, "skipped": "cold open timed out"}
        res["xquant"] = {"cold": cold_x, "warm": warm_x, "warm_graph_s": median([w["graph_s"] for w in warm_x]),
                         "nav": nav_x}
        g_warm = [w["graph_s"] for w in warm_g]
        res["graphs_tab"] = {"cold": cold_g, "warm": warm_g,
                             "warm_graph_s": median(g_warm) if g_warm and None not in g_warm else None,
                             "nav": nav_g, "timeout": graphs_timeout}
        log("  warm xquant %s graphs %s; from navigation xquant %s graphs %s" % (
            fmt_s(res["xquant"]["warm_graph_s"]), fmt_s(res["graphs_tab"]["warm_graph_s"]),
            fmt_s(nav_x["graph_s"]), fmt_s(nav_g["graph_s"])))
        # first chart
        res["chart"] = {"direct": [open_chart(br, tb_x, rid) for _ in range(max(1, repeat))],
                        "tab_click": open_tab_chart(br, tb_x)}
        res["chart"]["direct_chart_s"] = median([c["chart_s"] for c in res["chart"]["direct"]])
        # pan / zoom on the default (collapsed) view
        o = open_xquant(br, tb_x, keep=True)
        try:
            page, frame = o["_page"], o["_frame"]
            page.wait_for_timeout(300)
            res["pan"] = gesture(page, frame, "pan")
            res["zoom"] = gesture(page, frame, "zoom")
            if do_expand:
                res["expand_all"] = expand_all(page, frame)
                frame.click("button:has-text('Fit')")
                res["expand_all"]["pan"] = gesture(page, frame, "pan")
                res["expand_all"]["zoom"] = gesture(page, frame, "zoom")
            res["page_errors"] = list(o["errors"])
            res["js_heap_mb"] = frame.evaluate("performance.memory ? performance.memory.usedJSHeapSize / 1048576 : null")
        finally:
            o["_ctx"].close()
        for k in ("_page", "_ctx", "_frame"):
            o.pop(k, None)
        log("  pan draw p95 %.2f ms, frame p95 %.2f ms; zoom draw p95 %.2f, frame p95 %.2f" % (
            res["pan"]["draw_ms"]["p95"] or -1, res["pan"]["frame_ms"]["p95"] or -1,
            res["zoom"]["draw_ms"]["p95"] or -1, res["zoom"]["frame_ms"]["p95"] or -1))
    finally:
        tb_x.stop()
        tb_g.stop()
    return res


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def nlogn(n: int) -> float:
    return n * math.log2(max(n, 2))


def targets_for(n: int) -> Optional[Tuple[float, float]]:
    """(graph seconds, frame ms) targets, or None below 5,000 layers (only the Graphs-tab comparison applies)."""
    if n >= 20000:
        return TARGET_GRAPH_S * BIG_FACTOR, TARGET_FRAME_MS * BIG_FACTOR
    if n >= 5000:
        return TARGET_GRAPH_S, TARGET_FRAME_MS
    return None


def fmt_s(x: Optional[float]) -> str:
    return "-" if x is None else "%.2f" % x


def fmt_ms(x: Optional[float]) -> str:
    return "-" if x is None else "%.1f" % x


def table(headers: List[str], rows: List[List[str]]) -> str:
    w = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.rjust(w[i]) if i else c.ljust(w[i]) for i, c in enumerate(cells))  # noqa: E731
    return "\n".join([line(headers), line(["-" * x for x in w])] + [line(r) for r in rows])


def verdict(ok: Optional[bool]) -> str:
    return "-" if ok is None else ("PASS" if ok else "MISS")


def summarize(results: List[Dict[str, Any]], env: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    out: List[str] = []
    checks: Dict[str, Any] = {}
    out.append("Browser benchmark: %s, %d CPU cores, Chromium %s headless (software rendering), TensorBoard %s"
               % (env["platform"], env["cpus"], env["chromium"], env["tensorboard"]))
    out.append("Opening a tab = clicking it in a loaded TensorBoard (from the mouse press to the first frame showing "
               "the graph); warm = median of %d opens, cold = the first open after TensorBoard started (XQuant: "
               "includes building the report); nav = navigation to TensorBoard's URL of the tab (includes "
               "TensorBoard's own page load)." % env["repeat"])
    out.append("")
    # --- time to graph
    rows = []
    for r in results:
        n = r["n"]
        to = r["graphs_tab"]["timeout"]
        x_c, x_w, x_n = r["xquant"]["cold"]["graph_s"], r["xquant"]["warm_graph_s"], r["xquant"]["nav"]["graph_s"]
        g_c, g_w, g_n = r["graphs_tab"]["cold"]["graph_s"], r["graphs_tab"]["warm_graph_s"], r["graphs_tab"]["nav"]["graph_s"]
        timed_out = g_c is None
        gs = lambda g: "> %ds" % to if g is None and timed_out else fmt_s(g)  # noqa: E731
        ratio = lambda g, x: ("> %.0fx" % (to / x) if timed_out else "-") if g is None else "%.1fx" % (g / x)  # noqa: E731
        t = targets_for(n)
        ok_w = None if t is None else x_w <= t[0]
        ok_c = None if t is None else x_c <= t[0]
        f_w, f_c = g_w is None or x_w < g_w, g_c is None or x_c < g_c
        f_n = g_n is None or x_n is None or x_n < g_n
        checks["graph_target_warm_%d" % n], checks["graph_target_cold_%d" % n] = ok_w, ok_c
        checks["faster_than_graphs_tab_warm_%d" % n] = f_w
        checks["faster_than_graphs_tab_cold_%d" % n] = f_c
        checks["faster_than_graphs_tab_nav_%d" % n] = f_n
        a = (r["xquant"]["warm"] or [r["xquant"]["cold"]])[0]["attrs"]
        rows.append([str(n), "%.1f" % r.get("loadavg", 0), fmt_s(x_w), fmt_s(x_c), gs(g_w), gs(g_c),
                     ratio(g_w, x_w), ratio(g_c, x_c), fmt_s(x_n), gs(g_n), ratio(g_n, x_n),
                     "%s/%s" % (a.get("visible-count"), a.get("node-count")),
                     "-" if t is None else "< %.1f" % t[0], verdict(ok_w), verdict(ok_c),
                     "/".join(verdict(x) for x in (f_w, f_c, f_n))])
    out.append("Time to graph drawn (s); ratio = Graphs tab / XQuant tab")
    out.append(table(["N", "load", "xquant warm", "cold", "graphs-tab warm", "cold", "ratio warm", "ratio cold",
                      "xquant nav", "graphs-tab nav", "ratio nav", "boxes/nodes", "target", "warm", "cold",
                      "faster warm/cold/nav"], rows))
    out.append("(load = 1-minute load average of the machine when the size started; boxes/nodes = boxes the XQuant "
               "tab shows when it opens / nodes of the graph)")
    out.append("")
    # --- breakdown of the XQuant warm open
    rows = []
    for r in results:
        w = r["xquant"]["warm"][len(r["xquant"]["warm"]) // 2] if r["xquant"]["warm"] else r["xquant"]["cold"]
        a = w["attrs"]
        gt = r["graphs_tab"]["warm"][0] if r["graphs_tab"]["warm"] else r["graphs_tab"]["cold"]
        fd = a.get("first-draw-ms")
        rows.append([str(r["n"]), fmt_s(w["iframe_start_s"]), fmt_s(w["bundle_s"]), fmt_s(w["reports_s"]),
                     fmt_s(w.get("report_json_s")), fmt_s(w.get("layers_json_s")), fmt_s(w["graph_json_s"]),
                     fmt_s(w["graph_s"] - int(fd) / 1000.0) if fd else "-",
                     a.get("model-ms") or "-", a.get("layout-ms") or "-", fd or "-", fmt_s(w["graph_s"]), fmt_s(gt.get("graph_json_s")),
                     fmt_s(gt.get("graph_s")), str(gt.get("svg_nodes") or "-")])
    out.append("Where the time goes (one warm open; s since the tab click, panel ms from its own attributes)")
    out.append(table(["N", "iframe", "index.js", "reports", "report", "layers", "graph json", "setGraph",
                      "model ms", "layout ms", "setGraph→draw ms", "drawn", "TB graph pbtxt", "TB drawn",
                      "TB svg nodes"], rows))
    out.append("(XQuant: when each answer was complete and when the panel started setGraph; TB: when the Graphs tab's "
               "graph request was complete and when its scene was drawn)")
    out.append("")
    # --- frames
    rows = []
    for r in results:
        t = targets_for(r["n"])
        for g in ("pan", "zoom"):
            s = r[g]
            worst = max(x for x in (s["frame_ms"]["p95"], s["draw_ms"]["p95"]) if x is not None)
            ok = None if t is None else worst < t[1]
            checks["%s_frames_%d" % (g, r["n"])] = ok
            rows.append([str(r["n"]), g, "%d/%d" % (s["frames_with_draw"], s["frames"]),
                         fmt_ms(s["draw_ms"]["p50"]), fmt_ms(s["draw_ms"]["p95"]), fmt_ms(s["draw_ms"]["max"]),
                         fmt_ms(s["frame_ms"]["p50"]), fmt_ms(s["frame_ms"]["p95"]), fmt_ms(s["frame_ms"]["max"]),
                         fmt_ms(s["interval_ms"]["p50"]), fmt_ms(s["interval_ms"]["p95"]), fmt_ms(s["interval_ms"]["max"]),
                         "-" if t is None else "< %.0f" % t[1], verdict(ok)])
        if "expand_all" in r:
            e = r["expand_all"]
            for g in ("pan", "zoom"):
                s = e[g]
                rows.append([str(r["n"]), g + " (all expanded)", "%d/%d" % (s["frames_with_draw"], s["frames"]),
                             fmt_ms(s["draw_ms"]["p50"]), fmt_ms(s["draw_ms"]["p95"]), fmt_ms(s["draw_ms"]["max"]),
                             fmt_ms(s["frame_ms"]["p50"]), fmt_ms(s["frame_ms"]["p95"]), fmt_ms(s["frame_ms"]["max"]),
                             fmt_ms(s["interval_ms"]["p50"]), fmt_ms(s["interval_ms"]["p95"]),
                             fmt_ms(s["interval_ms"]["max"]), "", "info"])
    out.append("Pan (mouse drag) and zoom (wheel) on the XQuant graph, ms: panel draw per frame, main-thread frame "
               "cost (frame start to after paint), interval between frames; PASS when p95 of draw and frame cost "
               "is under the target")
    out.append(table(["N", "gesture", "drawn/frames", "draw p50", "p95", "max", "frame p50", "p95", "max",
                      "interval p50", "p95", "max", "target", ""], rows))
    if any("expand_all" in r for r in results):
        out.append("Expand all: " + "; ".join("N=%d %.1fs (%s boxes, layout %s ms)" % (
            r["n"], r["expand_all"]["expand_s"], r["expand_all"]["visible"], r["expand_all"]["layout_ms"])
            for r in results if "expand_all" in r))
    out.append("")
    # --- first chart
    rows = []
    for r in results:
        c = r["chart"]
        rows.append([str(r["n"]), fmt_s(c["direct_chart_s"]), fmt_s(c["direct"][0].get("layers_json_s")),
                     str(c["direct"][0].get("charts")), fmt_s(c["tab_click"]["chart_s"])])
    out.append("Time to the first per-layer error chart drawn (s): the panel's page opened at #view=chart (from "
               "navigation), and the XQuant tab clicked then 'Error charts' clicked once the panel is ready")
    out.append(table(["N", "panel #view=chart", "layers json", "charts", "tab click + 'Error charts' click"], rows))
    out.append("")
    # --- growth
    if len(results) > 1:
        rows = []
        for a, b in zip(results, results[1:]):
            bound = nlogn(b["n"]) / nlogn(a["n"])

            def g(get):
                try:
                    x, y = get(a), get(b)
                except (KeyError, TypeError):
                    return "-", None
                if x is None or y is None or x <= 0:
                    return "-", None
                return "%.2fx" % (y / x), y / x <= bound

            cells, oks = [], []
            for get in (lambda r: r["xquant"]["warm_graph_s"], lambda r: r["xquant"]["cold"]["graph_s"],
                        lambda r: r["pan"]["draw_ms"]["p95"], lambda r: r["zoom"]["draw_ms"]["p95"],
                        lambda r: r["chart"]["direct_chart_s"], lambda r: r["graphs_tab"]["warm_graph_s"]):
                s_, ok = g(get)
                cells.append(s_ if ok is None or len(cells) == 5 else "%s %s" % (s_, "ok" if ok else "MISS"))
                oks.append(ok)
            for name, ok in zip(("xquant_warm", "xquant_cold", "pan_draw", "zoom_draw", "first_chart"), oks):
                checks["growth_%s_%d_%d" % (name, a["n"], b["n"])] = ok
            rows.append(["%d -> %d" % (a["n"], b["n"]), "%.1fx" % (b["n"] / a["n"]), "%.2fx" % bound] + cells)
        out.append("Growth between sizes: cost ratio, 'ok' when not above N log N's ratio (the Graphs tab's for "
                   "reference). Small sizes are dominated by fixed costs, so the last step is the telling one.")
        out.append(table(["sizes", "N", "N log N", "xquant warm", "xquant cold", "pan draw p95", "zoom draw p95",
                          "first chart", "graphs-tab warm"], rows))
        out.append("")
    errs = [(r["n"], e) for r in results for e in r.get("page_errors", []) + r["xquant"]["cold"]["errors"]]
    if errs:
        out.append("Page errors: " + "; ".join("N=%d %s" % x for x in errs[:10]))
    misses = [k for k, v in checks.items() if v is False]
    out.append("Overall: %s" % ("PASS" if not misses else "MISS (%s)" % ", ".join(misses)))
    return "\n".join(out), checks


def stop_on_sigterm():
    """SIGTERM ends the run through the finally blocks, so the TensorBoard processes are stopped too."""
    import signal

    def handler(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)


# --------------------------------------------------------------------------------------------
# --real: the first view of real models
# --------------------------------------------------------------------------------------------
REAL_TARGET_MS = 300.0  # a 374-node model laid out well under this


def _quiet(frame, quiet_ms: int = 400, timeout: float = 300.0) -> None:
    """Wait until the graph is ready and no layout call came for ``quiet_ms``."""
    js = """() => { const c = document.querySelector('canvas.graph-canvas'), n = window.__xquant.layoutLog().length;
      if (c.dataset.state !== 'ready') { window.__q = null; return false; }
      if (!window.__q || window.__q.n !== n) { window.__q = {n, t: performance.now()}; return false; }
      return performance.now() - window.__q.t >= %d; }""" % quiet_ms
    frame.wait_for_function(js, timeout=timeout * 1000, polling=100)


def open_real(br: Browser, tb: TensorBoard, rid: str, timeout: float = 300.0) -> Dict[str, Any]:
    """One report's first view in TensorBoard's page: time to the graph drawn, what it shows, its layout calls;
    then "Expand all"."""
    import urllib.parse

    ctx, page, errors = br.page()
    try:
        # TensorBoard's page at the XQuant tab with the panel's state in TensorBoard's hash (docs/frontend.md)
        t0 = time.monotonic()
        page.goto("%s/#xquant&xq=%s" % (tb.base, urllib.parse.quote("report=" + rid, safe="")), wait_until="load")
        frame = xquant_frame(page)
        frame.wait_for_function("id => window.__xquant && window.__xquant.state().report === id", arg=rid,
                                timeout=timeout * 1000)
        frame.wait_for_selector("#xquant-root[data-state=ready]", timeout=timeout * 1000)
        _quiet(frame, timeout=timeout)
        drawn = time.monotonic() - t0   # TensorBoard's own page load included (about the same for every model)
        view = frame.evaluate("() => window.__xquant.view()")
        opened = frame.evaluate("() => window.__xquant.layoutLog()")
        t1 = time.monotonic()
        frame.click("text=Expand all")
        frame.wait_for_function("n => window.__xquant.layoutLog().length > n", arg=len(opened), timeout=timeout * 1000)
        _quiet(frame, timeout=timeout)
        expand_s = time.monotonic() - t1
        expanded = frame.evaluate("() => window.__xquant.layoutLog()")[len(opened):]
        nodes = int(frame.locator("canvas.graph-canvas").get_attribute("data-node-count") or 0)
        return {"nodes": nodes, "boxes": len(view["boxes"]), "label_px": view["labelPx"], "k": view["k"],
                "degraded_boxes": sum(1 for b in view["boxes"] if b["degraded"]), "drawn_s": drawn,
                "open": opened, "expand_all": expanded, "expand_all_s": expand_s,
                "expanded_boxes": expanded[-1]["boxes"] if expanded else None, "errors": errors}
    finally:
        ctx.close()


def bench_real(br: Browser, logdir: str, repeat: int, log: Callable[[str], None]) -> List[Dict[str, Any]]:
    tb = TensorBoard(logdir)
    try:
        # TensorBoard finds the runs over a few seconds: wait for every report folder of the logdir
        want = sum(1 for _ in Path(logdir).glob("**/xquant_report/quant_report.json"))
        reports = tb.poll("%d reports with their graphs" % want, lambda: (
            lambda rs: rs if len(rs) >= want and all(r.get("has_graph") for r in rs) else None)(
            tb.plugin_json("reports", {"refresh": 1}).get("reports") or []), 300.0)
        for r in reports:
            if r.get("has_graph"):
                tb.poll("graph of %s" % r["name"], lambda: tb.plugin_json("graph", {"report": r["id"]})["nodes"], 300.0)
        out = []
        for r in sorted(reports, key=lambda r: r["name"]):
            if not r.get("has_graph"):
                continue
            log("  %s ..." % r["name"])
            runs = [open_real(br, tb, r["id"]) for _ in range(max(1, repeat))]
            out.append({"report": r["name"].split("/")[0], "runs": runs})
        return out
    finally:
        tb.stop()


def summarize_real(results: List[Dict[str, Any]]) -> str:
    rows = []
    for res in results:
        runs = res["runs"]
        first = runs[0]
        open_worker = median([sum(e["workerMs"] for e in r["open"]) for r in runs])
        open_ms = median([sum(e["ms"] for e in r["open"]) for r in runs])
        exp_worker = median([sum(e["workerMs"] for e in r["expand_all"]) for r in runs])
        exp_ms = median([sum(e["ms"] for e in r["expand_all"]) for r in runs])
        dagre_open = sum(e["dagreNodes"] for e in first["open"])
        dagre_exp = sum(e["dagreNodes"] for e in first["expand_all"])
        ok = None
        if 300 <= first["nodes"] <= 450:
            ok = max(open_ms or 0, exp_ms or 0) < REAL_TARGET_MS
        rows.append([res["report"], str(first["nodes"]), str(first["boxes"]), "%.1f" % first["label_px"],
                     "%d/%d" % (first["degraded_boxes"], first["boxes"]), fmt_s(median([r["drawn_s"] for r in runs])),
                     "%d (%d calls)" % (dagre_open, len(first["open"])), fmt_ms(open_worker), fmt_ms(open_ms),
                     str(first["expanded_boxes"]), str(dagre_exp), fmt_ms(exp_worker), fmt_ms(exp_ms),
                     verdict(ok) if ok is not None else "-"])
    head = ["report", "nodes", "boxes at open", "label px", "degraded boxes", "page load -> drawn",
            "dagre boxes at open", "open layout (worker)", "open layout (end to end)", "boxes expanded",
            "dagre boxes expand all", "expand all (worker)", "expand all (end to end)",
            "374-node < %d ms" % REAL_TARGET_MS]
    return table(head, rows)


def environment(br: Browser, repeat: int) -> Dict[str, Any]:
    import platform

    import tensorboard
    return {"platform": platform.platform(terse=True), "cpus": os.cpu_count(), "chromium": br.version,
            "tensorboard": tensorboard.__version__, "python": platform.python_version(), "repeat": repeat}


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="layer counts N")
    p.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "tb_xquant_bench"),
                   help="where the generated logdirs live (model_<N>/, reused across runs)")
    p.add_argument("--json", help="also write every measurement as JSON here")
    p.add_argument("--repeat", type=int, default=3, help="warm opens per tab (median reported)")
    p.add_argument("--graphs-timeout", type=float, default=180.0, help="seconds to wait for the Graphs tab")
    p.add_argument("--expand-all", action="store_true",
                   help="also time 'Expand all' and pan/zoom with every group expanded (reported, not judged)")
    p.add_argument("--regenerate", action="store_true", help="write the logdirs again even if present")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--from-json", metavar="PATH", help="only print the tables of a previous --json file")
    p.add_argument("--real", metavar="LOGDIR",
                   help="measure the graph's first view on every report of LOGDIR (real MCT reports, e.g. "
                        "python -m demo.zoo output), or on bench.mct_format's torchvision shapes with 'shapes'")
    args = p.parse_args(argv)
    if args.real:
        return main_real(args)
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        text, checks = summarize(saved["results"], saved["env"])
        print(text)
        return 1 if args.strict and False in checks.values() else 0
    os.makedirs(args.out, exist_ok=True)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    stop_on_sigterm()
    br = Browser()
    results = []
    try:
        env = environment(br, args.repeat)
        for n in sorted(args.sizes):
            log("N=%d ..." % n)
            results.append(bench_size(br, args.out, n, args.repeat, args.graphs_timeout, args.expand_all, log,
                                      args.regenerate))
    finally:
        br.close()
    text, checks = summarize(results, env)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "results": results, "checks": checks}, f, indent=1, default=str)
    return 1 if args.strict and False in checks.values() else 0


def main_real(args) -> int:
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    logdir = args.real
    if logdir == "shapes":
        from bench import mct_format

        logdir = os.path.join(args.out, "shapes")
        for shape in sorted(mct_format.SHAPES):
            if args.regenerate or not os.path.isdir(os.path.join(logdir, "model_" + shape, "xquant_report")):
                mct_format.write_model_logdir(logdir, 0, seed=4, shape=shape,
                                              degraded_fraction=0.25 if shape == "efficientnet" else 0.08)
    stop_on_sigterm()
    br = Browser()
    try:
        env = environment(br, args.repeat)
        log("first views of %s ..." % logdir)
        results = bench_real(br, logdir, args.repeat, log)
    finally:
        br.close()
    print("load average %s; %s" % (", ".join("%.1f" % x for x in os.getloadavg()), json.dumps(env)))
    print(summarize_real(results))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "real": logdir, "results": results}, f, indent=1, default=str)
    return 0


if __name__ == "__main__":
    sys.exit(main())
