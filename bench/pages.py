"""Shared helpers of the browser benchmarks (``bench/browser.py``, ``bench/peers.py``, ``bench/mct_pngs.py``):
headless Chromium through Playwright, TensorBoard processes, the in-page recorder that marks when a tab shows its
graph, opening the XQuant tab and TensorBoard's Graphs tab, pan / zoom frame recording, and table formatting.

Chromium runs with the flags of ``tests/browser/conftest.py`` (``--headless --no-sandbox --disable-gpu``: software
rendering).  ``Browser.page(external=[...])`` also aborts every request that does not go to 127.0.0.1 /
localhost and records it (route interception: only such requests reach Python, the page's own requests are not
slowed down)."""
from __future__ import annotations

import json
import math
import os
import re
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from testkit.logdirs import ensure_model_logdir  # noqa: E402
from testkit.procs import TensorBoardProcess  # noqa: E402

CHROMIUM = os.environ.get("TB_XQUANT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1440, "height": 1000}
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
    if (g && g.dataset.state === 'ready') {
      B.mark('graph');
      // the first view with the degraded layers drawn (red nodes, or their count on a collapsed group)
      if (Number(g.dataset.drawnDegraded) > 0) B.mark('colored');
    }
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
  // gesture input since the last frame started: when the first one was dispatched.  Chromium dispatches mousemove
  // and wheel at the start of the frame that shows their effect, before its requestAnimationFrame callbacks; they
  // reach this window in the capture phase, from open shadow roots too.
  for (const type of ['mousemove', 'wheel'])
    window.addEventListener(type, () => { if (B._inputAt === null) B._inputAt = performance.now(); },
                            {capture: true, passive: true});
  B._inputAt = null;

  // Frame recorder for pan / zoom: per frame its start (rAF timestamp), its main-thread cost (until a message
  // posted from our rAF callback is delivered, i.e. after the frame's callbacks, style, layout and paint) and
  // the panel's draws (data-draw-ms mutations) that happened in it.  The message names its frame: on a busy main
  // thread it can arrive after the next frame began, and the frame then ended no later than that.
  B.startFrames = () => {
    B.frames = []; B.draws = []; B._inputAt = null;
    const rec = {on: true};
    B._rec = rec;
    const ch = new MessageChannel();
    ch.port1.onmessage = (ev) => {
      const f = B.frames[ev.data], next = B.frames[ev.data + 1];
      if (!f) return;
      let e = performance.now();
      if (next) e = Math.min(e, next.s, next.inputAt === null ? Infinity : next.inputAt);
      f.cost = e - f.s; f.since_vsync = e - f.t;
      // work: from the frame's first gesture event (or its first rAF callback) to after its paint
      if (f.inputAt !== null) f.work = e - Math.min(f.s, f.inputAt);
    };
    const tick = (ts) => {
      if (!rec.on) return;
      // t: the frame's time stamp (vsync); s: when our callback, the frame's first rAF callback, started.
      // cost = s -> after paint (input events are dispatched before rAF callbacks and are not in it;
      // the panel's handlers only move the transform and request a draw).
      const f = {t: ts, s: performance.now(), cost: null, draws: 0, input: B._inputAt !== null, inputAt: B._inputAt};
      B._inputAt = null;
      B.frames.push(f);
      ch.port2.postMessage(B.frames.length - 1);
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

    def page(self, external: Optional[List[Dict[str, str]]] = None, init_scripts: Sequence[str] = ()):
        """A new context (empty cache) and page with the recorder in every frame; ``(context, page, errors)``.
        With a list as ``external``, every request (and WebSocket) to a host other than 127.0.0.1 / localhost is
        aborted and appended to it as ``{"url", "frame"}`` (the URL of the frame that asked, when known)."""
        ctx = self.browser.new_context(viewport=VIEWPORT)
        ctx.add_init_script(RECORDER_JS)
        for js in init_scripts:
            ctx.add_init_script(js)
        if external is not None:
            block_external(ctx, external)
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


# http(s) / ws(s) URLs whose host is not the loopback interface (the regular expression runs in Playwright's
# driver, so requests to 127.0.0.1 are not routed through Python at all)
EXTERNAL_URL = re.compile(r"^(?:https?|wss?)://(?!(?:127\.0\.0\.1|localhost|\[::1\])(?::\d+)?(?:[/?#]|$))",
                          re.IGNORECASE)


def block_external(ctx, external: List[Dict[str, str]]) -> None:
    """Abort (and record in ``external``) every request and WebSocket of ``ctx`` that leaves the machine."""
    def frame_url(request) -> str:
        try:
            return request.frame.url
        except Exception:  # noqa: BLE001 - a worker's request has no frame
            return "(worker)"

    def on_request(route):
        external.append({"url": route.request.url, "frame": frame_url(route.request)})
        route.abort("blockedbyclient")

    def on_socket(ws):
        external.append({"url": ws.url, "frame": "(websocket)"})
        ws.close()

    ctx.route(EXTERNAL_URL, on_request)
    ctx.route_web_socket(EXTERNAL_URL, on_socket)


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
                keep: bool = False, until: str = "graph",
                external: Optional[List[Dict[str, str]]] = None) -> Dict[str, Any]:
    """The XQuant tab (TensorBoard's page with the panel's iframe): time from opening the tab (mode "click":
    the tab clicked in a loaded TensorBoard; mode "nav": navigation to ``/#xquant``) to the graph drawn
    (``until="colored"``: to the first frame of the graph with its degraded layers drawn, ``colored_s``)."""
    ctx, page, errors = br.page(external=external)
    try:
        t0, _ = _start(page, tb, "xquant", mode)
        frame = xquant_frame(page)
        m = _mark(frame, until, timeout, "XQuant graph not drawn after %ss" % timeout, page)
        c = frame.locator("canvas.graph-canvas")
        attrs = {k: c.get_attribute("data-" + k) for k in
                 ("node-count", "visible-count", "model-ms", "layout-ms", "first-draw-ms", "layout-mode")}
        frame_origin = frame.evaluate("performance.timeOrigin")
        # the panel's own marks (frontend: xq:parsed:<route>, xq:setGraph, xq:firstDraw), epoch ms
        xq = frame.evaluate("() => Object.fromEntries(performance.getEntriesByType('mark').filter((m) => "
                            "m.name.startsWith('xq:')).map((m) => [m.name, performance.timeOrigin + m.startTime]))")
        res = resource_timings(frame, ["static/index.js", "/reports", "/report?", "/layers?", "/graph?"])
        rel = lambda k: (res[k] - t0) / 1000.0 if k in res else None  # noqa: E731
        out = {"mode": mode, "graph_s": (m["graph"] - t0) / 1000.0, "iframe_start_s": (frame_origin - t0) / 1000.0,
               "bundle_s": rel("static/index.js"), "reports_s": rel("/reports"), "graph_json_s": rel("/graph?"),
               "report_json_s": rel("/report?"), "layers_json_s": rel("/layers?"),
               "attrs": attrs, "errors": errors, "panel_marks": {k: (v - t0) / 1000.0 for k, v in xq.items()}}
        if "colored" in m:
            out["colored_s"] = (m["colored"] - t0) / 1000.0
        if keep:
            out["_page"], out["_ctx"], out["_frame"] = page, ctx, frame
        return out
    finally:
        if not keep:
            ctx.close()


def open_graphs_tab(br: Browser, tb: TensorBoard, timeout: float, mode: str = "click", keep: bool = False,
                    external: Optional[List[Dict[str, str]]] = None) -> Dict[str, Any]:
    """TensorBoard's Graphs tab: time from opening the tab to the first SVG node of its scene drawn."""
    ctx, page, errors = br.page(external=external)
    kept = False
    try:
        t0, _ = _start(page, tb, "graphs", mode)
        try:
            m = _mark(page.main_frame, "tbgraph", timeout, "graphs tab", page)
        except TimeoutError:
            return {"mode": mode, "graph_s": None, "timeout": timeout, "errors": errors}
        res = resource_timings(page.main_frame, ["/data/plugin/graphs/graph?"])
        g = res.get("/data/plugin/graphs/graph?")
        out = {"mode": mode, "graph_s": (m["tbgraph"] - t0) / 1000.0,
               "graph_json_s": (g - t0) / 1000.0 if g else None,
               "svg_nodes": page.evaluate("window.__bench.tbNodes"), "errors": errors}
        if keep:
            out["_page"], out["_ctx"], kept = page, ctx, True
        return out
    finally:
        if not kept:
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
    inputs = [f for f in frames if f.get("input")]
    work = [f["work"] for f in inputs if f.get("work") is not None]
    frame_time = [f["since_vsync"] for f in inputs if f.get("since_vsync") is not None]
    return {"frames": len(frames), "frames_with_draw": len(drawn),
            "draw_ms": {"p50": _pct(draws, 50), "p95": _pct(draws, 95), "max": max(draws) if draws else None},
            "frame_ms": {"p50": _pct(costs, 50), "p95": _pct(costs, 95), "max": max(costs) if costs else None},
            "interval_ms": {"p50": _pct(intervals, 50), "p95": _pct(intervals, 95),
                            "max": max(intervals) if intervals else None},
            "since_vsync_ms": {"p50": _pct(since_vsync, 50), "p95": _pct(since_vsync, 95)},
            "long_intervals": sum(1 for i in intervals if i > 1.5 * 16.7),
            # any tool (no draw signal needed), over the frames that handled gesture input: the main thread's work
            # (from the frame's first gesture event to after its paint) and the time from the frame's time stamp
            # (its vsync: includes waiting for the main thread) to after its paint
            "input_frames": len(inputs),
            "frame_work_ms": {"p50": _pct(work, 50), "p95": _pct(work, 95), "max": max(work) if work else None},
            "frame_time_ms": {"p50": _pct(frame_time, 50), "p95": _pct(frame_time, 95),
                              "max": max(frame_time) if frame_time else None}}


def gesture(page, frame, kind: str, steps: int = 60, pace: float = 0.016, target=None,
            zoom_modifier: Optional[str] = None, budget_s: Optional[float] = None) -> Dict[str, Any]:
    """Pan (a circular mouse drag) or zoom (wheel in and out) over the middle of ``target`` (a locator; the
    XQuant graph canvas by default) while ``frame``'s recorder records the frames.  ``zoom_modifier``: a key
    held while wheeling (Model Explorer zooms on Ctrl + wheel; its plain wheel pans).  ``budget_s``: stop early
    after that long (each input waits for the page to take it: a page that needs seconds per frame would take
    minutes); ``steps_done`` says how far it got."""
    box = (target if target is not None else frame.locator("canvas.graph-canvas")).bounding_box()
    end = None if budget_s is None else time.monotonic() + budget_s
    done = 0
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    page.mouse.move(cx, cy)
    frame.evaluate("window.__bench.startFrames()")
    if kind == "pan":
        page.mouse.down()
        for i in range(steps):
            a = 2 * math.pi * i / steps
            page.mouse.move(cx + 180 * math.sin(a), cy + 120 * (1 - math.cos(a)))
            done += 1
            if end is not None and time.monotonic() > end:
                break
            time.sleep(pace)
        page.mouse.up()
    else:
        if zoom_modifier:
            page.keyboard.down(zoom_modifier)
        try:
            for i in range(steps):
                page.mouse.wheel(0, -100 if (i // 10) % 2 == 0 else 100)
                done += 1
                if end is not None and time.monotonic() > end:
                    break
                time.sleep(pace)
        finally:
            if zoom_modifier:
                page.keyboard.up(zoom_modifier)
    rec = frame.evaluate("window.__bench.stopFrames()")
    return dict(frame_stats(rec), steps=steps, steps_done=done)


def expand_all(page, frame, timeout: float = 600.0) -> Dict[str, Any]:
    t0 = time.monotonic()
    # the click handler sets data-state=layout synchronously; ready again once the new layout is drawn
    frame.click("text=Expand all")
    frame.wait_for_selector("canvas.graph-canvas[data-state=ready]", timeout=timeout * 1000)
    c = frame.locator("canvas.graph-canvas")
    return {"expand_s": time.monotonic() - t0, "visible": c.get_attribute("data-visible-count"),
            "layout_ms": c.get_attribute("data-layout-ms")}


def ensure_model(out: str, n: int, seed: int = 0, regenerate: bool = False) -> Tuple[str, float]:
    """OUT/model_<N>, generated by bench.mct_format; reused while the generator's source and the seed are the
    same. Returns (model dir, seconds spent generating)."""
    return ensure_model_logdir(out, n, seed, regenerate=regenerate)


def report_dir_of(mdir: str) -> str:
    return os.path.join(mdir, "xquant_report")


def median(xs: List[float]) -> Optional[float]:
    xs = [x for x in xs if x is not None]
    return statistics.median(xs) if xs else None


def nlogn(n: int) -> float:
    return n * math.log2(max(n, 2))


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


def stop_on_sigterm():
    """SIGTERM ends the run through the finally blocks, so the TensorBoard processes are stopped too."""
    import signal

    def handler(signum, frame):
        raise SystemExit(128 + signum)
    signal.signal(signal.SIGTERM, handler)


def environment(br: Browser, repeat: int) -> Dict[str, Any]:
    import platform

    import tensorboard
    return {"platform": platform.platform(terse=True), "cpus": os.cpu_count(), "chromium": br.version,
            "tensorboard": tensorboard.__version__, "python": platform.python_version(), "repeat": repeat}
