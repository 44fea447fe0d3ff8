#!/usr/bin/env python
"""The XQuant tab, TensorBoard's Graphs tab and Google's Model Explorer on the same graphs, in one Chromium.

    .venv/bin/python -m bench.peers [--sizes 1000 5000 20000] [--out DIR] [--json PATH] [--repeat N]
                                    [--timeout 300] [--strict]
    .venv/bin/python -m bench.peers --from-json PATH        # print the tables of a saved run again

For every N it generates (once; reused while bench/mct_format.py is unchanged) the synthetic model of
``bench.mct_format.write_model_logdir`` in MCT 2.6.1's on-disk format (``OUT/model_<N>/``, as bench/browser.py),
exports the same report with ``tb_xquant_plugin.export.model_explorer`` into ``OUT/model_explorer/model_<N>/``
(the graph JSON and ``nodedata.worst.json``, the overlay that paints each layer past a threshold -- the tab's
degraded layers -- red; re-exported when the plugin's source changes), and starts three servers on 127.0.0.1:
``tensorboard --logdir OUT/model_<N>`` (XQuant tab), ``tensorboard --logdir OUT/model_<N>/xquant_report`` (Graphs
tab: TensorBoard 2.21 ignores ``#graphs&run=``, see bench/browser.py) and ``model-explorer graph.json
--node_data_paths nodedata.worst.json`` (its version check pointed at a closed local port).

Measured in one headless Chromium (``--headless --no-sandbox --disable-gpu``: software rendering), every page in a
new context (empty cache), each tool from the navigation to its URL (the only opening the three have in common;
TensorBoard's own page load is included for the two tabs, Model Explorer's app load for it) to the first frame
showing the graph with its degraded layers coloured:

* XQuant tab: the first animation frame after the panel's canvas is ``data-state=ready`` with
  ``data-drawn-degraded > 0`` (red nodes, or their count on a collapsed group), bench/browser.py's recorder;
* Graphs tab: the first ``g.node`` of its SVG scene, as bench/browser.py; it has no colouring by degradation,
  so this is its first frame of the graph at all;
* Model Explorer: its WebGL canvas has no DOM counterpart that says what was drawn (the side panel's node-data
  table is painted separately).  So the page's WebGL draws are watched (``drawElements`` & co. wrapped by an init
  script): after a task that drew into ``canvas.main`` and once the overlay is applied (its test hook
  ``window.me_test.renderers[0]``; without it, once ``nodedata.worst.json`` arrived), the drawing buffer is read
  back (``readPixels``, in a microtask of the drawing task, before the frame is presented) and searched for the
  overlay's red; the time is the next animation frame, minus the read-back's own duration (reported).  A
  screenshot of the canvas afterwards confirms the red is on screen.

Cold = the first open after the servers started and TensorBoard loaded the logdir (the XQuant report is built in
TensorBoard's background prefetch); warm = median of ``--repeat`` further opens.  The two TensorBoard tabs are
also opened the way bench/browser.py opens them, "tab click": from the mouse press on the tab in a TensorBoard
page already loaded (median of ``--repeat``); Model Explorer has no such opening (a graph is opened with its
page), so that ratio is Model Explorer's navigation over the XQuant tab's click.  Then, on one page per tool:
"full expansion" where the tool has it (XQuant's "Expand all": from the mouse press to the first frame after
``data-state=ready``; Model Explorer's toolbar "Expand all layers in the graph": to the first frame in which its
renderer lists every node of the graph; the Graphs tab has none), and pan (a mouse drag) and zoom (wheel; Ctrl +
wheel in Model Explorer, whose plain wheel pans) on the first view and after the expansion, recorded in the page:
the interval between consecutive requestAnimationFrame time stamps (60 Hz here, so 16.7 ms when no frame is
dropped), and for each frame that handled gesture input its work on the main thread, from its first mousemove /
wheel event (Chromium dispatches them at the start of the frame, before its rAF callbacks) to a message posted
from its rAF callback (i.e. after its paint).  Work done off the main thread (Model Explorer's WebGL in the
software GPU process, raster) shows in the intervals, not in the work.  Every request to a host other than
127.0.0.1 / localhost is aborted and counted (route interception in every page; the XQuant tab's own requests, from
its iframe and worker, are told apart from TensorBoard's page around it).

Targets (issue 17): at 5,000 and 20,000 layers the first coloured graph >= 5x faster than Model Explorer and >= 3x
faster than the Graphs tab, judged from navigation (cold and warm) and with the tab clicked; pan / zoom frame work
p95 < 8 ms on the XQuant tab's first view; no external request from the XQuant tab.  A tool that never draws
(timeout or page error) is reported as such ("never drew"), and a ratio to it counts as met.  Growth between sizes
is printed next to N log N's.  The load average is printed per size: the numbers mean little on a busy 2-core
machine.
"""
from __future__ import annotations

import argparse
import base64
import hashlib
import io
import json
import math
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from bench.pages import (Browser, TensorBoard, ensure_model, environment, fmt_ms, fmt_s, gesture,  # noqa: E402
                         marks, median, nlogn, open_graphs_tab, open_xquant, report_dir_of, resource_timings,
                         stop_on_sigterm, table, verdict, wait_until)
from testkit.logdirs import DONE_MARKER  # noqa: E402
from testkit.procs import ModelExplorerProcess  # noqa: E402

DEFAULT_SIZES = (1000, 5000, 20000)
TOOLS = ("xquant", "graphs_tab", "model_explorer")
TOOL_NAMES = {"xquant": "XQuant tab", "graphs_tab": "Graphs tab", "model_explorer": "Model Explorer"}
PEERS = ("graphs_tab", "model_explorer")
TARGET_SIZES = (5000, 20000)
TARGET_RATIO = {"model_explorer": 5.0, "graphs_tab": 3.0}
TARGET_FRAME_MS = 8.0
MIN_PIXELS = 20  # overlay-red pixels that make a Model Explorer frame "coloured" (antialiased edges are fewer)
COLOUR_TOLERANCE = 6  # per channel


# --------------------------------------------------------------------------------------------
# Model Explorer: its files and its first coloured frame
# --------------------------------------------------------------------------------------------
def plugin_source_key() -> str:
    """SHA-1 over the plugin's Python sources (the export depends on the analysis, not only on the exporter)."""
    h = hashlib.sha1()
    root = REPO / "tb_xquant_plugin"
    for p in sorted(root.rglob("*.py")):
        h.update(str(p.relative_to(root)).encode())
        h.update(p.read_bytes())
    return h.hexdigest()


def ensure_me_export(out: str, n: int, mdir: str) -> Dict[str, Any]:
    """``OUT/model_explorer/model_<N>/``: the report of ``mdir`` exported for Model Explorer (graph.json and the
    node-data overlays), redone when the model or the plugin's source changed.  Returns the paths and how many
    layers are degraded in the analysis and red in the overlay (the same set: both use MCT's thresholds)."""
    from tb_xquant_plugin.export import model_explorer as mex

    folder = os.path.join(out, "model_explorer", "model_%d" % n)
    with open(os.path.join(mdir, DONE_MARKER)) as f:
        key = {"model": json.load(f), "plugin": plugin_source_key()}
    marker = os.path.join(folder, DONE_MARKER)
    t0 = time.perf_counter()
    try:
        with open(marker) as f:
            done = json.load(f)
        if done.get("key") != key:
            raise ValueError("stale")
    except (OSError, ValueError):
        from tb_xquant_plugin import cli

        if os.path.isdir(folder):
            shutil.rmtree(folder)
        _, analyses, unfinished = cli.load(report_dir_of(mdir), {})
        if len(analyses) != 1:
            raise RuntimeError("expected one report in %s, got %d (%s)" % (mdir, len(analyses), unfinished))
        mex.export(analyses[0], folder)
        done = {"key": key, "degraded_layers": len(analyses[0].degraded)}
        with open(marker, "w") as f:
            json.dump(done, f)
    graph = os.path.join(folder, mex.GRAPH_FILE)
    overlay = os.path.join(folder, mex.WORST_FILE)
    with open(overlay) as f:
        gd = next(iter(json.load(f).values()))
    red = sum(1 for r in gd["results"].values() if bin_colour(gd["thresholds"], r["value"]) == mex.PAST_THRESHOLD)
    return {"dir": folder, "graph": graph, "overlay": overlay, "degraded_layers": done["degraded_layers"],
            "red_nodes": red, "colour": mex.PAST_THRESHOLD, "seconds": time.perf_counter() - t0,
            "graph_mb": os.path.getsize(graph) / 1e6}


def bin_colour(bins: List[Dict[str, Any]], value: float) -> Optional[str]:
    """Model Explorer's rule: the colour of the first bin whose upper value is >= the node's value."""
    return next((b["bgColor"] for b in bins if value <= b["value"]), None)


def me_hook_js(colour: str, overlay_name: str) -> str:
    """Init script for Model Explorer pages (after bench.pages.RECORDER_JS): finds the first WebGL draw of
    ``canvas.main`` whose drawing buffer holds the overlay colour; marks ``colored`` on the next animation frame."""
    rgb = [int(colour.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4)]
    return r"""
(() => {
  const B = window.__bench;
  if (!B || window !== window.top || B.me) return;
  const RGB = %(rgb)s, TOL = %(tol)d, MIN = %(min)d, NEEDLE = %(needle)s;
  const M = B.me = {draws: 0, firstDraw: null, checks: 0, checkMs: 0, coloredDraw: null, pixels: 0, lastCheckMs: 0,
                    gate: null};
  let buf = null, pending = false, dataIn = false;
  // Model Explorer's own test hook: the renderer of pane 0; its selected node-data run's results for the graph
  const applied = () => {
    try {
      const r = window.me_test && window.me_test.renderers && window.me_test.renderers[0];
      if (!r || !r.webglRendererNdpService) return null;
      const res = r.webglRendererNdpService.curNodeDataProviderResults();
      return !!res && Object.keys(res).length > 0;
    } catch (e) { return null; }
  };
  const check = (gl) => {
    pending = false;
    if (M.coloredDraw) return;
    const a = applied();
    if (a === false) { M.gate = 'me_test'; return; }
    if (a === null) {   // no test hook (another version): every draw once the overlay file has arrived
      M.gate = 'nodedata';
      if (!dataIn) dataIn = performance.getEntriesByType('resource').some((e) => e.name.includes(NEEDLE));
      if (!dataIn) return;
    } else M.gate = 'me_test';
    const t0 = performance.now();
    const w = gl.drawingBufferWidth, h = gl.drawingBufferHeight;
    if (!buf || buf.length !== w * h * 4) buf = new Uint8Array(w * h * 4);
    const fb = gl.getParameter(gl.FRAMEBUFFER_BINDING);
    const gl2 = typeof WebGL2RenderingContext !== 'undefined' && gl instanceof WebGL2RenderingContext;
    const pb = gl2 ? gl.getParameter(gl.PIXEL_PACK_BUFFER_BINDING) : null;
    if (fb) gl.bindFramebuffer(gl.FRAMEBUFFER, null);
    if (pb) gl.bindBuffer(gl.PIXEL_PACK_BUFFER, null);
    gl.readPixels(0, 0, w, h, gl.RGBA, gl.UNSIGNED_BYTE, buf);
    if (pb) gl.bindBuffer(gl.PIXEL_PACK_BUFFER, pb);
    if (fb) gl.bindFramebuffer(gl.FRAMEBUFFER, fb);
    const u = new Uint32Array(buf.buffer);
    let n = 0;
    for (let i = 0; i < u.length; i++) {
      const v = u[i];
      if (Math.abs((v & 255) - RGB[0]) <= TOL && Math.abs(((v >>> 8) & 255) - RGB[1]) <= TOL &&
          Math.abs(((v >>> 16) & 255) - RGB[2]) <= TOL) n++;
    }
    const ms = performance.now() - t0;
    M.checks++; M.checkMs += ms; M.lastCheckMs = ms;
    if (n >= MIN) {
      M.coloredDraw = performance.timeOrigin + t0; M.pixels = n;
      requestAnimationFrame(() => B.mark('colored'));
    }
  };
  const wrap = (proto, name) => {
    const orig = proto[name];
    if (!orig) return;
    proto[name] = function (...args) {
      const r = orig.apply(this, args);
      const c = this.canvas;
      if (c && c.classList && c.classList.contains('main')) {
        M.draws++;
        if (M.firstDraw === null) M.firstDraw = performance.timeOrigin + performance.now();
        if (!pending && !M.coloredDraw) { pending = true; queueMicrotask(() => check(this)); }
      }
      return r;
    };
  };
  for (const P of [window.WebGL2RenderingContext, window.WebGLRenderingContext])
    if (P) for (const n of ['drawArrays', 'drawElements', 'drawArraysInstanced', 'drawElementsInstanced',
                            'drawRangeElements']) wrap(P.prototype, n);
})();
""" % {"rgb": json.dumps(rgb), "tol": COLOUR_TOLERANCE, "min": MIN_PIXELS, "needle": json.dumps(overlay_name)}


def canvas_colour_pixels(page, selector: str, colour: str) -> Optional[int]:
    """Pixels of ``colour`` (+- COLOUR_TOLERANCE) in a screenshot of the element (what is on screen)."""
    import numpy as np
    from PIL import Image

    box = page.locator(selector).bounding_box()
    if not box:
        return None
    cdp = page.context.new_cdp_session(page)
    try:
        shot = cdp.send("Page.captureScreenshot", {"format": "png", "clip": dict(box, scale=1)})
    finally:
        cdp.detach()
    img = np.asarray(Image.open(io.BytesIO(base64.b64decode(shot["data"]))).convert("RGB")).astype(np.int16)
    rgb = np.array([int(colour.lstrip("#")[i:i + 2], 16) for i in (0, 2, 4)], dtype=np.int16)
    return int((np.abs(img - rgb).max(axis=2) <= COLOUR_TOLERANCE).sum())


def open_me(br: Browser, url: str, exp: Dict[str, Any], timeout: float, external: List[Dict[str, str]],
            keep: bool = False) -> Dict[str, Any]:
    """Model Explorer's page: from navigation to the first frame whose canvas shows the overlay colour."""
    ctx, page, errors = br.page(external=external,
                                init_scripts=[me_hook_js(exp["colour"], os.path.basename(exp["overlay"]))])
    kept = False
    try:
        page.goto(url, wait_until="commit")
        t0 = page.evaluate("performance.timeOrigin")
        failed_at: List[float] = []

        def done():
            m = marks(page.main_frame)
            if "colored" in m:
                return m
            if any(e.startswith("pageerror") for e in errors):
                # Model Explorer stays at "Processing graph..." after an error in its worker: give it 10 s more
                if not failed_at:
                    failed_at.append(time.monotonic())
                elif time.monotonic() - failed_at[0] > 10:
                    return {"failed": True}
            return None

        try:
            m = wait_until(done, timeout, "Model Explorer", page)
        except TimeoutError:
            m = {"failed": True}
        state = page.evaluate("window.__bench.me")
        res = resource_timings(page.main_frame, ["read_text_file?path=" + exp["graph"],
                                                 "read_text_file?path=" + exp["overlay"]])
        rel = lambda v: None if v is None else (v - t0) / 1000.0  # noqa: E731
        out = {"mode": "nav", "errors": errors, "draws": state["draws"], "first_draw_s": rel(state["firstDraw"]),
               "checks": state["checks"], "check_ms": state["checkMs"], "gate": state["gate"],
               "graph_json_s": rel(res.get("read_text_file?path=" + exp["graph"])),
               "nodedata_s": rel(res.get("read_text_file?path=" + exp["overlay"]))}
        if m.get("failed"):
            out.update({"colored_s": None, "failed": next((e for e in errors if e.startswith("pageerror")),
                                                          "no coloured frame after %ss" % timeout)})
            out["body"] = page.evaluate("document.body.innerText.slice(0, 300)")
        else:
            # the read-back ran between the draw and that frame: take its duration out
            out["colored_raw_s"] = rel(m["colored"])
            out["colored_s"] = out["colored_raw_s"] - state["lastCheckMs"] / 1000.0
            out["colored_draw_s"] = rel(state["coloredDraw"])
            out["buffer_pixels"] = state["pixels"]
            out["screen_pixels"] = canvas_colour_pixels(page, "canvas.main", exp["colour"])
            out["rendered"] = page.evaluate("""() => { const r = window.me_test && window.me_test.renderers[0];
                return r ? {nodes: r.curModelGraph.nodes.length, shown: r.nodesToRender.length} : null; }""")
        if keep:
            out["_page"], out["_ctx"], kept = page, ctx, True
        return out
    finally:
        if not kept:
            ctx.close()


# --------------------------------------------------------------------------------------------
# full expansion
# --------------------------------------------------------------------------------------------
ARM_CLICK_JS = """() => { window.__clickAt = null;
  window.addEventListener('mousedown', () => { window.__clickAt = performance.timeOrigin + performance.now(); },
                          {capture: true, once: true}); }"""


def timed_click(frame, selector: str, until_js: str, arg: Any, timeout: float) -> float:
    """Seconds from the mouse press on ``selector`` to the first animation frame in which ``until_js(arg)`` holds
    (checked in requestAnimationFrame callbacks)."""
    frame.evaluate(ARM_CLICK_JS)
    frame.click(selector)
    done = frame.wait_for_function("(arg) => (%s)(arg) && (performance.timeOrigin + performance.now())" % until_js,
                                   arg=arg, polling="raf", timeout=timeout * 1000).json_value()
    return (done - frame.evaluate("window.__clickAt")) / 1000.0


def xquant_expand_all(frame, timeout: float) -> Dict[str, Any]:
    # the click handler sets data-state=layout synchronously (Playwright's click returns after it ran)
    s = timed_click(frame, "text=Expand all",
                    "() => document.querySelector('canvas.graph-canvas').dataset.state === 'ready'", None, timeout)
    c = frame.locator("canvas.graph-canvas")
    return {"expand_s": s, "boxes": c.get_attribute("data-visible-count"), "nodes": c.get_attribute("data-node-count"),
            "layout_ms": c.get_attribute("data-layout-ms")}


def me_expand_all(page, timeout: float) -> Dict[str, Any]:
    total = page.evaluate("window.me_test.renderers[0].curModelGraph.nodes.length")
    s = timed_click(page.main_frame, ".mat-icon-container.expand-all",
                    "(n) => window.me_test.renderers[0].nodesToRender.length >= n", total, timeout)
    return {"expand_s": s, "boxes": page.evaluate("window.me_test.renderers[0].nodesToRender.length"),
            "nodes": total}


# --------------------------------------------------------------------------------------------
# one size
# --------------------------------------------------------------------------------------------
GESTURE_STEPS = [60]  # mouse moves / wheel ticks per gesture (--gesture-steps)
GESTURE_BUDGET_S = 20.0  # a gesture stops after this long (a page taking seconds per frame)


def gestures(page, frame, target, zoom_modifier: Optional[str] = None) -> Dict[str, Any]:
    steps = GESTURE_STEPS[0]
    return {"pan": gesture(page, frame, "pan", steps=steps, target=target, budget_s=GESTURE_BUDGET_S),
            "zoom": gesture(page, frame, "zoom", steps=steps, target=target, zoom_modifier=zoom_modifier,
                            budget_s=GESTURE_BUDGET_S)}


def external_summary(reqs: List[Dict[str, str]], own: Optional[Callable[[Dict[str, str]], bool]] = None):
    out = {"requests": len(reqs), "urls": sorted({r["url"] for r in reqs})[:20]}
    if own is not None:
        out["tab_requests"] = sum(1 for r in reqs if own(r))
        out["page_requests"] = len(reqs) - out["tab_requests"]
    return out


def xquant_own(r: Dict[str, str]) -> bool:
    """A request of the XQuant tab itself: from its iframe, or a worker / socket (it runs the only worker)."""
    return "name=xquant" in r["frame"] or r["frame"].startswith("(")


def bench_size(br: Browser, out: str, n: int, repeat: int, timeout: float,
               log: Callable[[str], None]) -> Dict[str, Any]:
    mdir, gen_s = ensure_model(out, n)
    exp = ensure_me_export(out, n, mdir)
    res: Dict[str, Any] = {"n": n, "loadavg": os.getloadavg(), "logdir": mdir, "generate_s": gen_s,
                           "me_export": {k: v for k, v in exp.items()}}
    log("  N=%d: model %s, Model Explorer files %s (%.0f MB graph, %.1fs)" % (
        n, mdir, exp["dir"], exp["graph_mb"], exp["seconds"]))
    tools: Dict[str, Dict[str, Any]] = {t: {"cold": None, "warm": [], "external": []} for t in TOOLS}
    res["tools"] = tools
    tb_x = TensorBoard(mdir)
    tb_g = TensorBoard(report_dir_of(mdir))
    me = ModelExplorerProcess(exp["graph"], [exp["overlay"]], offline=True, delete_log=True)
    try:
        me.start()
        me_url = me.app_url()
        res["tb_load_s"] = {"xquant_logdir": tb_x.wait_loaded("xquant_report/xquant", xquant=True),
                            "graphs_logdir": tb_g.wait_loaded("xquant")}
        log("  tensorboard loaded (%.1fs / %.1fs)" % (res["tb_load_s"]["xquant_logdir"],
                                                     res["tb_load_s"]["graphs_logdir"]))

        def open_tool(tool: str, keep: bool = False, mode: str = "nav") -> Dict[str, Any]:
            ext = tools[tool]["external"]
            tools[tool]["pages"] = tools[tool].get("pages", 0) + 1
            if tool == "xquant":
                return open_xquant(br, tb_x, mode=mode, timeout=timeout, keep=keep, until="colored", external=ext)
            if tool == "graphs_tab":
                return open_graphs_tab(br, tb_g, timeout, mode=mode, keep=keep, external=ext)
            return open_me(br, me_url, exp, timeout, ext, keep=keep)

        def seconds(o: Dict[str, Any]) -> Optional[float]:
            return o.get("colored_s") if "colored_s" in o else o.get("graph_s")

        for tool in TOOLS:
            o = open_tool(tool)
            tools[tool]["cold"] = o
            log("  %s cold %s" % (tool, fmt_s(seconds(o)) if seconds(o) is not None else "never (%s)" % (
                o.get("failed") or "timeout")))
        for i in range(repeat):
            for tool in TOOLS:
                if seconds(tools[tool]["cold"]) is None:
                    continue  # it never drew: once is enough
                tools[tool]["warm"].append(open_tool(tool))
        # the two TensorBoard tabs also the way bench/browser.py opens them: clicked in a loaded TensorBoard
        for i in range(repeat):
            for tool in ("xquant", "graphs_tab"):
                if seconds(tools[tool]["cold"]) is not None:
                    tools[tool].setdefault("click", []).append(open_tool(tool, mode="click"))

        def med(opens: List[Dict[str, Any]]) -> Optional[float]:
            xs = [seconds(o) for o in opens]
            return median(xs) if xs and None not in xs else None

        for tool in TOOLS:
            t = tools[tool]
            t["cold_s"] = seconds(t["cold"])
            t["warm_s"] = med(t["warm"])
            if "click" in t:
                t["click_s"] = med(t["click"])
        log("  warm: " + ", ".join("%s %s" % (t, fmt_s(tools[t]["warm_s"])) for t in TOOLS) +
            "; tab click: " + ", ".join("%s %s" % (t, fmt_s(tools[t].get("click_s"))) for t in TOOLS[:2]))
        # interaction, one page per tool
        o = open_tool("xquant", keep=True)
        try:
            page, frame = o["_page"], o["_frame"]
            canvas = frame.locator("canvas.graph-canvas")
            x = tools["xquant"]
            x["degraded_count"] = canvas.get_attribute("data-degraded-count")
            x["first_view"] = gestures(page, frame, canvas)
            x["expand_all"] = xquant_expand_all(frame, timeout)
            frame.click("button:has-text('Fit')")
            x["expanded"] = gestures(page, frame, canvas)
            x["interaction_errors"] = list(o["errors"])
        finally:
            o["_ctx"].close()
        log("  xquant expand all %.2fs" % tools["xquant"]["expand_all"]["expand_s"])
        if tools["graphs_tab"]["cold_s"] is not None:
            o = open_tool("graphs_tab", keep=True)
            try:
                page = o["_page"]
                tools["graphs_tab"]["first_view"] = gestures(page, page.main_frame, page.locator("tf-graph-scene"))
            finally:
                o["_ctx"].close()
        if tools["model_explorer"]["cold_s"] is not None:
            o = open_tool("model_explorer", keep=True)
            try:
                page = o["_page"]
                m = tools["model_explorer"]
                canvas = page.locator("canvas.main")
                m["first_view"] = gestures(page, page.main_frame, canvas, zoom_modifier="Control")
                try:
                    m["expand_all"] = me_expand_all(page, timeout)
                    page.click(".mat-icon-container.zoom-fit")
                    m["expanded"] = gestures(page, page.main_frame, canvas, zoom_modifier="Control")
                except Exception as e:  # noqa: BLE001 - reported, the other tools' numbers stand
                    m["expand_all"] = {"expand_s": None, "failed": "%s: %s" % (type(e).__name__, str(e)[:300])}
                m["interaction_errors"] = list(o["errors"])
            finally:
                o["_ctx"].close()
            log("  model explorer expand all %s" % fmt_s(tools["model_explorer"]["expand_all"].get("expand_s")))
    finally:
        tb_x.stop()
        tb_g.stop()
        me.stop()
    for tool in TOOLS:
        t = tools[tool]
        t["external"] = external_summary(t["external"], xquant_own if tool == "xquant" else None)
        for o in [t["cold"]] + t["warm"] + t.get("click", []):
            if o:
                for k in [k for k in o if k.startswith("_")]:
                    o.pop(k)
    return res


# --------------------------------------------------------------------------------------------
# report
# --------------------------------------------------------------------------------------------
def _get(d: Any, *path) -> Any:
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return None
        d = d[p]
    return d


def fmt_frames(s: Optional[Dict[str, Any]]) -> str:
    """'work p50 / p95 (rAF interval p50 / p95)' in ms."""
    if not s:
        return "-"
    cut = " [%d/%d]" % (s["steps_done"], s["steps"]) if s.get("steps_done", 0) < s.get("steps", 0) else ""
    return "%s / %s (%s / %s)%s" % (fmt_ms(_get(s, "frame_work_ms", "p50")), fmt_ms(_get(s, "frame_work_ms", "p95")),
                                    fmt_ms(_get(s, "interval_ms", "p50")), fmt_ms(_get(s, "interval_ms", "p95")), cut)


def never(t: Dict[str, Any]) -> bool:
    return t["cold_s"] is None


def ratio(peer: Dict[str, Any], v: Optional[float], x: Optional[float]) -> Optional[float]:
    """A peer's time ``v`` / the XQuant tab's ``x``; infinite for a peer that never drew."""
    if x is None or x <= 0:
        return None
    if never(peer):
        return math.inf
    return None if v is None else v / x


def fmt_ratio(v: Optional[float]) -> str:
    return "-" if v is None else ("never drew" if v == math.inf else "%.1fx" % v)


def comparisons(r: Dict[str, Any]) -> Dict[str, Dict[str, Any]]:
    """Per peer: its first coloured frame over the XQuant tab's, from navigation (cold, warm) and with the tabs
    clicked in a loaded TensorBoard ("click": the Graphs tab clicked too; Model Explorer has no such opening, so
    its navigation), and the targets at TARGET_SIZES, judged on both."""
    x = r["tools"]["xquant"]
    out = {}
    for peer in PEERS:
        p = r["tools"][peer]
        c = {"nav_cold": ratio(p, p["cold_s"], x["cold_s"]), "nav_warm": ratio(p, p["warm_s"], x["warm_s"]),
             "click": ratio(p, p.get("click_s") if peer == "graphs_tab" else p["warm_s"], x.get("click_s")),
             "target": TARGET_RATIO[peer], "never": never(p)}
        if r["n"] in TARGET_SIZES:
            nav = (c["nav_cold"], c["nav_warm"])
            c["ok_nav"] = None if None in nav else min(nav) >= c["target"]
            c["ok_click"] = None if c["click"] is None else c["click"] >= c["target"]
        out[peer] = c
    return out


def summarize(results: List[Dict[str, Any]], env: Dict[str, Any]) -> Tuple[str, Dict[str, Any]]:
    out: List[str] = []
    checks: Dict[str, Any] = {}
    out.append("Peers benchmark: %s, %d CPU cores, Chromium %s headless (software rendering), TensorBoard %s, "
               "Model Explorer %s" % (env["platform"], env["cpus"], env["chromium"], env["tensorboard"],
                                      env.get("model_explorer")))
    out.append("First coloured frame = navigation to the tool's URL -> first frame of the graph with the degraded "
               "layers coloured (Graphs tab: its first graph frame, it does not colour them); warm = median of %d "
               "opens, cold = the first one; tab click = the two TensorBoard tabs clicked in a loaded TensorBoard "
               "(bench/browser.py's 'open'), median; frame ms = main-thread work per frame that handled gesture input "
               "p50 / p95, from its first input event to after its paint (interval between rAF time stamps p50 / "
               "p95 in brackets, 16.7 = no dropped frame; [k/n]: the gesture stopped after %.0f s, k of its n "
               "inputs sent); external = requests to other hosts (aborted) / page loads." % (
                   env["repeat"], env.get("gesture_budget_s", GESTURE_BUDGET_S)))
    out.append("")
    for r in results:
        n = r["n"]
        t = r["tools"]
        x = t["xquant"]
        e = r["me_export"]
        out.append("N = %s layers (load average %s; %s graph nodes; degraded layers: %s in the XQuant tab, %s red in "
                   "the Model Explorer overlay)" % (
                       "{:,}".format(n), " / ".join("%.1f" % v for v in r["loadavg"]), _get(x, "cold", "attrs",
                                                                                               "node-count"),
                       x.get("degraded_count"), e["red_nodes"]))
        rows = []
        for tool in TOOLS:
            tt = t[tool]
            if never(tt):
                first = "never: %s" % str(tt["cold"].get("failed") or "timeout")[:60]
            else:
                first = "%s / %s s" % (fmt_s(tt["cold_s"]), fmt_s(tt["warm_s"]))
            click = "%s s" % fmt_s(tt["click_s"]) if tt.get("click_s") is not None else "-"
            ea = tt.get("expand_all")
            ex = "n/a" if tool == "graphs_tab" else ("-" if not ea else (
                "%s s (%s boxes)" % (fmt_s(ea.get("expand_s")), ea.get("boxes")) if ea.get("expand_s") is not None
                else "failed"))
            ext = tt["external"]
            ext_s = "%d / %d" % (ext["requests"], tt.get("pages", 0))
            if tool == "xquant":
                ext_s = "%d / %d (TensorBoard's page: %d)" % (ext["tab_requests"], tt.get("pages", 0),
                                                              ext["page_requests"])
            rows.append([TOOL_NAMES[tool], first, click, ex, fmt_frames(_get(tt, "first_view", "pan")),
                         fmt_frames(_get(tt, "first_view", "zoom")), fmt_frames(_get(tt, "expanded", "pan")),
                         fmt_frames(_get(tt, "expanded", "zoom")), ext_s])
        out.append(table(["tool", "first coloured frame cold / warm", "tab click", "expand all", "pan frame ms",
                          "zoom frame ms", "pan, expanded", "zoom, expanded", "external requests"], rows))
        # ratios
        rows = []
        for peer, c in comparisons(r).items():
            p = t[peer]
            xe, pe = _get(x, "expand_all", "expand_s"), _get(p, "expand_all", "expand_s")
            cells = [TOOL_NAMES[peer], fmt_ratio(c["nav_cold"]), fmt_ratio(c["nav_warm"]), fmt_ratio(c["click"]),
                     "%.1fx" % (pe / xe) if xe and pe else "-"]
            for g in ("pan", "zoom"):
                a = _get(x, "first_view", g, "frame_work_ms", "p95")
                b = _get(p, "first_view", g, "frame_work_ms", "p95")
                cells.append("%.1fx" % (b / a) if a and b else "-")
            if "ok_nav" in c:
                checks["faster_than_%s_%dx_%d_nav" % (peer, c["target"], n)] = c["ok_nav"]
                checks["faster_than_%s_%dx_%d_click" % (peer, c["target"], n)] = c["ok_click"]
                cells.append(">= %.0fx: %s / %s%s" % (c["target"], verdict(c["ok_nav"]), verdict(c["ok_click"]),
                                                      " (it never drew)" if c["never"] else ""))
            else:
                cells.append("-")
            rows.append(cells)
        out.append("Each peer / the XQuant tab (> 1: the XQuant tab is faster; tab click: the Graphs tab clicked / "
                   "the XQuant tab clicked, Model Explorer's navigation / the XQuant tab clicked)")
        out.append(table(["peer", "first coloured nav cold", "nav warm", "tab click", "expand all", "pan work p95",
                          "zoom work p95", "target (5,000 and 20,000) nav / click"], rows))
        # frame target, external requests
        fr = [_get(x, "first_view", g, "frame_work_ms", "p95") for g in ("pan", "zoom")]
        ok_fr = None if None in fr else max(fr) < TARGET_FRAME_MS
        checks["xquant_frames_%d" % n] = ok_fr
        checks["xquant_no_external_%d" % n] = x["external"]["tab_requests"] == 0
        me = t["model_explorer"]
        notes = ["XQuant pan / zoom frame p95 %s / %s ms: < %.0f ms %s" % (fmt_ms(fr[0]), fmt_ms(fr[1]),
                                                                        TARGET_FRAME_MS, verdict(ok_fr)),
                 "XQuant tab external requests: %d %s" % (x["external"]["tab_requests"],
                                                          verdict(x["external"]["tab_requests"] == 0))]
        if not never(me):
            c = me["cold"]
            notes.append("Model Explorer: graph file read %s s, overlay read %s s, first WebGL draw %s s, coloured "
                         "draw %s s (%d read-backs, %.0f ms; %s red pixels in the buffer, %s on screen)" % (
                             fmt_s(c.get("graph_json_s")), fmt_s(c.get("nodedata_s")), fmt_s(c.get("first_draw_s")),
                             fmt_s(c.get("colored_draw_s")), c["checks"], c["check_ms"], c.get("buffer_pixels"),
                             c.get("screen_pixels")))
        if me["external"]["requests"]:
            notes.append("Model Explorer's external requests (aborted): %s" % ", ".join(me["external"]["urls"][:3]))
        out.extend(notes)
        out.append("")
    # growth
    if len(results) > 1:
        rows = []
        for a, b in zip(results, results[1:]):
            bound = nlogn(b["n"]) / nlogn(a["n"])
            cells = ["%d -> %d" % (a["n"], b["n"]), "%.1fx" % (b["n"] / a["n"]), "%.2fx" % bound]
            for tool in TOOLS:
                for key in ("warm_s", "cold_s") + (("click_s",) if tool != "model_explorer" else ()):
                    va, vb = a["tools"][tool].get(key), b["tools"][tool].get(key)
                    if va and vb:
                        cells.append("%.2fx%s" % (vb / va, "" if tool != "xquant" else (
                            " ok" if vb / va <= bound else " MISS")))
                        if tool == "xquant":
                            checks["growth_xquant_%s_%d_%d" % (key[:-2], a["n"], b["n"])] = vb / va <= bound
                    else:
                        cells.append("never" if never(b["tools"][tool]) else "-")
                    if tool == "xquant" and key == "click_s" and va and vb:
                        checks["growth_xquant_click_%d_%d" % (a["n"], b["n"])] = vb / va <= bound
                ea, eb = _get(a["tools"][tool], "expand_all", "expand_s"), _get(b["tools"][tool], "expand_all",
                                                                                 "expand_s")
                if tool != "graphs_tab":
                    cells.append("%.2fx" % (eb / ea) if ea and eb else "-")
            rows.append(cells)
        out.append("Growth between sizes (cost ratio; 'ok' for the XQuant tab when not above N log N's ratio)")
        out.append(table(["sizes", "N", "N log N", "XQuant warm", "cold", "click", "expand all", "Graphs tab warm",
                          "cold", "click", "Model Explorer warm", "cold", "expand all"], rows))
        out.append("")
    misses = [k for k, v in checks.items() if v is False]
    out.append("load average at the end: %s" % " / ".join("%.1f" % v for v in env.get("loadavg_end", ())))
    out.append("Overall: %s" % ("PASS" if not misses else "MISS (%s)" % ", ".join(misses)))
    return "\n".join(out), checks


def markdown(results: List[Dict[str, Any]], env: Dict[str, Any]) -> str:
    """The README's tables: one row per size and tool, then the ratios and targets."""
    rows = ["| N (load) | tool | first coloured frame, navigation cold / warm | tab click | expand all | "
            "pan / zoom work p95 | pan / zoom rAF interval p95 | external requests |",
            "|---|---|---|---|---|---|---|---|"]
    for r in results:
        for i, tool in enumerate(TOOLS):
            t = r["tools"][tool]
            first = "never (%s)" % str(t["cold"].get("failed") or "timeout").replace("pageerror: ", "")[:40] \
                if never(t) else "%s / %s s" % (fmt_s(t["cold_s"]), fmt_s(t["warm_s"]))
            click = "%s s" % fmt_s(t["click_s"]) if t.get("click_s") is not None else "-"
            ea = _get(t, "expand_all", "expand_s")
            ex = "n/a" if tool == "graphs_tab" else ("-" if ea is None else "%s s" % fmt_s(ea))
            fv = t.get("first_view") or {}
            work = "%s / %s ms" % (fmt_ms(_get(fv, "pan", "frame_work_ms", "p95")),
                                   fmt_ms(_get(fv, "zoom", "frame_work_ms", "p95"))) if fv else "-"
            iv = "%s / %s ms" % (fmt_ms(_get(fv, "pan", "interval_ms", "p95")),
                                 fmt_ms(_get(fv, "zoom", "interval_ms", "p95"))) if fv else "-"
            ext = t["external"]
            e = "%d in %d pages" % (ext["tab_requests"] if tool == "xquant" else ext["requests"], t.get("pages", 0))
            head = "{:,} ({:.1f})".format(r["n"], r["loadavg"][0]) if i == 0 else ""
            rows.append("| %s | %s | %s | %s | %s | %s | %s | %s |" % (head, TOOL_NAMES[tool], first, click, ex, work,
                                                                       iv, e))
    out = ["\n".join(rows), ""]
    rows = ["| N | Graphs tab / XQuant: nav cold, warm; click | Model Explorer / XQuant: nav cold, warm; "
            "vs XQuant click | XQuant pan / zoom work p95 |", "|---|---|---|---|"]
    for r in results:
        x = r["tools"]["xquant"]
        cells = ["{:,}".format(r["n"])]
        for peer, c in comparisons(r).items():
            if c["never"]:
                cell = "never drew"
            else:
                cell = "%s, %s; %s" % (fmt_ratio(c["nav_cold"]), fmt_ratio(c["nav_warm"]), fmt_ratio(c["click"]))
            if "ok_nav" in c:
                cell += " (>= %.0fx: %s / %s)" % (c["target"], verdict(c["ok_nav"]), verdict(c["ok_click"]))
            cells.append(cell)
        fr = [_get(x, "first_view", g, "frame_work_ms", "p95") for g in ("pan", "zoom")]
        cells.append("%s / %s ms (< %.0f: %s)" % (fmt_ms(fr[0]), fmt_ms(fr[1]), TARGET_FRAME_MS,
                                                  verdict(None if None in fr else max(fr) < TARGET_FRAME_MS)))
        rows.append("| " + " | ".join(cells) + " |")
    out.append("\n".join(rows))
    return "\n".join(out)


def model_explorer_version() -> Optional[str]:
    try:
        from importlib.metadata import version
        return version("ai-edge-model-explorer")
    except Exception:  # noqa: BLE001
        return None


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter, epilog=__doc__)
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES), help="layer counts N")
    p.add_argument("--out", default=os.path.join(tempfile.gettempdir(), "tb_xquant_bench"),
                   help="where the generated logdirs and Model Explorer files live (reused across runs)")
    p.add_argument("--json", help="also write every measurement as JSON here")
    p.add_argument("--repeat", type=int, default=3, help="warm opens per tool (median reported)")
    p.add_argument("--timeout", type=float, default=300.0,
                   help="seconds to wait for a tool's first coloured frame (and for an expansion)")
    p.add_argument("--gesture-steps", type=int, default=GESTURE_STEPS[0],
                   help="mouse moves of a pan and wheel ticks of a zoom (one per ~16 ms)")
    p.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    p.add_argument("--from-json", metavar="PATH", help="only print the tables of a previous --json file")
    p.add_argument("--markdown", action="store_true", help="with --from-json: the README's markdown tables")
    args = p.parse_args(argv)
    if args.from_json:
        with open(args.from_json) as f:
            saved = json.load(f)
        text, checks = summarize(saved["results"], saved["env"])
        print(markdown(saved["results"], saved["env"]) if args.markdown else text)
        return 1 if args.strict and False in checks.values() else 0
    GESTURE_STEPS[0] = max(4, args.gesture_steps)
    os.makedirs(args.out, exist_ok=True)
    log = lambda s: print(s, file=sys.stderr, flush=True)  # noqa: E731
    stop_on_sigterm()
    br = Browser()
    results = []
    try:
        env = environment(br, args.repeat)
        env.update({"model_explorer": model_explorer_version(), "timeout": args.timeout,
                    "gesture_steps": GESTURE_STEPS[0], "gesture_budget_s": GESTURE_BUDGET_S,
                    "loadavg_start": os.getloadavg(),
                    "command": " ".join(["python -m bench.peers"] + (argv or sys.argv[1:]))})
        for n in sorted(args.sizes):
            log("N=%d ... (load average %s)" % (n, " / ".join("%.1f" % v for v in os.getloadavg())))
            results.append(bench_size(br, args.out, n, args.repeat, args.timeout, log))
    finally:
        br.close()
    env["loadavg_end"] = os.getloadavg()
    text, checks = summarize(results, env)
    print(text)
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "results": results, "checks": checks}, f, indent=1, default=str)
    return 1 if args.strict and False in checks.values() else 0


if __name__ == "__main__":
    sys.exit(main())
