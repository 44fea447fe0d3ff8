"""The graph's first view on models shaped like real torchvision architectures: it opens on a readable number of
boxes with the degraded layers in view at a legible zoom, dense fan-ins are bundled, and every layout call stays
within a counted budget of work (the panel's own counts, ``window.__xquant.layoutLog()``; no timing here, the
timings live in ``python -m bench.browser --real``).

The models are written by bench/mct_format.py in MCT 2.6.1's on-disk format with torchvision's module names, as
torch.fx and MCT name them (no torch, no MCT: a couple of seconds), one per graph shape the first view has to
handle: ``densenet`` (densenet121: 374 nodes, every dense layer fed by all earlier ones), ``googlenet``
(inception branches), ``efficientnet`` (efficientnet_b0: squeeze-excitation blocks, scopes four deep, a quarter
of the layers degraded as in a real run), ``shufflenet`` (shufflenet_v2_x0_5: channel split and shuffle, a flat
top level of 140 nodes).

Environment:
  TB_XQUANT_ZOO_LOGDIR        also run the first-view checks on real MCT reports (``python -m demo.zoo --out DIR``:
                              torchvision models quantized and reported by MCT 2.6.1), one test per report.
  TB_XQUANT_SCREENSHOT_DIR    write each first view as graph_<model>.png there (docs/ holds the ones of the docs).
"""
import os
from pathlib import Path

import pytest

from conftest import open_panel, start_server

SHAPES = {"densenet": 0.08, "googlenet": 0.06, "efficientnet": 0.25, "shufflenet": 0.06}   # shape: degraded share
SEED = 4
LONG_LIST_LAYERS = 1500                # model_1500: 3,000 nodes, ~450 degraded layers, ~950 verdicts
MIN_BOXES, MAX_BOXES = 10, 40          # boxes (not counting the frames of expanded scopes) the first view shows
LEGIBLE_PX = 9                         # smallest on-screen label size accepted
# Work budget of one layout call, in boxes given to dagre: the first view lays out each level it shows once (its
# boxes plus the frames of the expanded scopes), expanding a scope lays out that scope's children only; no level
# has more than CHUNK_ABOVE (frontend/src/constants.ts) children.
OPEN_DAGRE_BUDGET = 100
CHUNK_ABOVE = 60
DEGRADED = (0xD3, 0x2F, 0x2F)          # palette.degraded (light theme): outline and badge of degraded boxes
ZOO = os.environ.get("TB_XQUANT_ZOO_LOGDIR")
SHOTS = os.environ.get("TB_XQUANT_SCREENSHOT_DIR")

COUNT_PIXELS_JS = """([rect, rgb]) => {
  const c = document.querySelector('canvas.graph-canvas');
  const s = c.width / c.clientWidth;
  const x0 = Math.max(0, Math.floor(rect[0] * s)), y0 = Math.max(0, Math.floor(rect[1] * s));
  const x1 = Math.min(c.width, Math.ceil(rect[2] * s)), y1 = Math.min(c.height, Math.ceil(rect[3] * s));
  if (x1 <= x0 || y1 <= y0) return 0;
  const d = c.getContext('2d').getImageData(x0, y0, x1 - x0, y1 - y0).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) if (d[i] === rgb[0] && d[i + 1] === rgb[1] && d[i + 2] === rgb[2]) n++;
  return n;
}"""


@pytest.fixture(scope="module")
def shapes_logdir(tmp_path_factory):
    from bench import mct_format

    out = tmp_path_factory.mktemp("shapes")
    for shape, share in SHAPES.items():
        mct_format.write_model_logdir(str(out), 0, seed=SEED, shape=shape, degraded_fraction=share)
    # and the default generated CNN, big, with hundreds of degraded layers and verdicts (the summary's lists)
    mct_format.write_model_logdir(str(out), LONG_LIST_LAYERS, seed=2, degraded_fraction=0.3)
    return out


@pytest.fixture(scope="module")
def shapes_server(shapes_logdir, tmp_path_factory):
    srv = start_server(shapes_logdir, tmp_path_factory, dev_server=True)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def zoo_server(tmp_path_factory):
    if not ZOO or not Path(ZOO).is_dir():
        pytest.skip("TB_XQUANT_ZOO_LOGDIR is not set (python -m demo.zoo --out DIR writes real MCT reports)")
    srv = start_server(ZOO, tmp_path_factory, dev_server=True)
    yield srv
    srv.stop()


class GraphPage:
    """The panel page of a dev server (plugin_entry.html opened directly), on one report."""

    def __init__(self, browser, server, name, init_script=None):
        self.server = server
        self.report = next(r for r in server.api("reports")["reports"] if r["name"].split("/")[0] == name)
        self.name = name
        self.ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
        self.page = self.ctx.new_page()
        if init_script:
            self.page.add_init_script(init_script)
        self.errors = []
        self.page.on("pageerror", lambda e: self.errors.append(f"pageerror: {e}"))
        self.page.on("console", lambda m: self.errors.append(f"console.{m.type}: {m.text}")
                     if m.type == "error" and "favicon" not in (m.location or {}).get("url", "") else None)
        self.page.goto(f"{server.base}/data/plugin_entry.html?name=xquant#report={self.report['id']}")
        self.page.wait_for_selector("#xquant-root[data-state=ready]", timeout=120000)
        self.settled()

    def settled(self, quiet_ms=400):
        """Wait until the graph is ready and no layout call came for `quiet_ms` (a resize of the canvas right after
        the load re-makes an untouched first view)."""
        js = """() => { const c = document.querySelector('canvas.graph-canvas'), n = window.__xquant.layoutLog().length;
          if (c.dataset.state !== 'ready') { window.__q = null; return false; }
          if (!window.__q || window.__q.n !== n) { window.__q = {n, t: performance.now()}; return false; }
          return performance.now() - window.__q.t >= %d; }""" % quiet_ms
        self.page.wait_for_function(js, timeout=120000, polling=100)

    def view(self):
        return self.page.evaluate("() => window.__xquant.view()")

    def log(self):
        return self.page.evaluate("() => window.__xquant.layoutLog()")

    def nodes(self):
        return self.server.api("graph", report=self.report["id"])["nodes"]

    def click_box(self, box):
        before = len(self.log())
        self.page.locator("canvas.graph-canvas").click(position={"x": box["x"] + min(20, box["w"] / 2), "y": box["y"] + box["h"] / 2})
        self.page.wait_for_function("n => window.__xquant.layoutLog().length > n", arg=before)
        self.settled()
        return self.log()[before:]

    def close(self):
        self.ctx.close()
        assert not self.errors, "\n".join(self.errors)


def inside(box, v, margin=0):
    return box["x"] >= -margin and box["y"] >= -margin and box["x"] + box["w"] <= v["width"] + margin \
        and box["y"] + box["h"] <= v["height"] + margin


def overlaps(boxes):
    """Pairs of drawn boxes (frames of expanded scopes aside) that overlap: the layout never puts two on top of
    each other, whatever was stretched or folded."""
    out = []
    for i, a in enumerate(boxes):
        for b in boxes[i + 1:]:
            if a["x"] < b["x"] + b["w"] - 0.5 and b["x"] < a["x"] + a["w"] - 0.5 and \
                    a["y"] < b["y"] + b["h"] - 0.5 and b["y"] < a["y"] + a["h"] - 0.5:
                out.append((a["label"], b["label"]))
    return out


def check_first_view(gp, shot_name=None):
    """The first view's promises, from the panel's state and the canvas; returns what was measured."""
    v = gp.view()
    nodes = gp.nodes()
    degraded = sum(1 for n in nodes if n["degraded"])
    boxes = v["boxes"]
    # a readable number of boxes, labels legible on screen
    assert MIN_BOXES <= len(boxes) <= MAX_BOXES, (gp.name, len(boxes), v["expanded"])
    assert v["labelPx"] >= LEGIBLE_PX, (gp.name, v["k"])
    assert not overlaps(boxes), (gp.name, overlaps(boxes)[:5])
    # every degraded layer is drawn: red nodes plus the counts on collapsed scopes, all inside the canvas
    shown = [b for b in boxes if b["degraded"]]
    assert sum(b["degraded"] for b in shown) == degraded, (gp.name, degraded, shown)
    out = [b["label"] for b in shown if not inside(b, v)]
    assert not out, f"{gp.name}: degraded boxes outside the view: {out}"
    canvas = gp.page.locator("canvas.graph-canvas")
    assert int(canvas.get_attribute("data-drawn-degraded")) == degraded
    # ... and they are red on the canvas (outline and badge in palette.degraded)
    for b in shown:
        red = gp.page.evaluate(COUNT_PIXELS_JS, [[b["x"] - 6, b["y"] - 10, b["x"] + b["w"] + 6, b["y"] + b["h"] + 4], list(DEGRADED)])
        assert red > 40, (gp.name, b["label"], red)
    if not degraded:   # nothing degraded: input to output in view
        assert all(inside(b, v, margin=2) for b in boxes), gp.name
    # work: the first view ran dagre on each level it shows once, nothing bigger than a level
    log = gp.log()
    assert log and log[0]["reason"] == "open", log
    for e in log:
        assert e["dagreNodes"] <= OPEN_DAGRE_BUDGET and e["maxDagreNodes"] <= CHUNK_ABOVE, (gp.name, e)
    assert sum(e["dagreCalls"] for e in log) <= len(v["expanded"]) + 1 + sum(1 for e in log if e["reason"] != "open")
    shot(gp, name=shot_name)
    return {"boxes": len(boxes), "labelPx": round(v["labelPx"], 1), "degraded": degraded,
            "dagreNodes": sum(e["dagreNodes"] for e in log)}


def shot(gp, suffix="", name=None):
    if SHOTS:
        Path(SHOTS).mkdir(parents=True, exist_ok=True)
        name = name or gp.name.replace("model_", "")
        gp.page.screenshot(path=str(Path(SHOTS) / f"graph_{name}{suffix}.png"))


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_first_view_shows_the_degraded_layers_readably(browser, shapes_server, shape):
    gp = GraphPage(browser, shapes_server, "model_" + shape)
    try:
        check_first_view(gp)
    finally:
        gp.close()


NO_WORKERS = "window.Worker = function () { throw new Error('workers are off in this test'); };"


def test_without_a_layout_worker_the_first_view_is_the_same(browser, shapes_server):
    """Where module workers cannot start, the panel lays out on the main thread, given the hierarchy level by level
    as the worker is: the first view and its expansions are box for box the ones the worker makes."""
    views = []
    for script in (None, NO_WORKERS):
        gp = GraphPage(browser, shapes_server, "model_efficientnet", init_script=script)
        try:
            check_first_view(gp)
            v = gp.view()
            group = next(b for b in v["boxes"] if b["kind"] == "group" and inside(b, v))
            gp.click_box(group)
            views.append((v["boxes"], gp.view()["boxes"],
                          gp.page.evaluate("() => document.querySelector('canvas.graph-canvas').dataset.layoutMode")))
        finally:
            gp.close()
    (first_w, expanded_w, mode_w), (first_m, expanded_m, mode_m) = views
    assert (mode_w, mode_m) == ("worker", "main-thread")
    assert first_m == first_w and expanded_m == expanded_w
    assert len(expanded_m) > len(first_m)


@pytest.mark.parametrize("shape", sorted(SHAPES))
def test_expanding_a_scope_lays_out_that_scope_only(browser, shapes_server, shape):
    gp = GraphPage(browser, shapes_server, "model_" + shape)
    try:
        v = gp.view()
        groups = [b for b in v["boxes"] if b["kind"] == "group" and inside(b, v)]
        assert groups, f"{shape}: no collapsed scope in view"
        g = max(groups, key=lambda b: b["children"])
        (entry,) = gp.click_box(g)
        assert entry["reason"].startswith("expand"), entry
        # dagre ran on the scope's own children (or not at all when the first view had laid it out already);
        # the levels around it were only re-placed
        assert entry["dagreCalls"] <= 1 and entry["dagreNodes"] in (0, g["children"]), (g, entry)
        after = gp.view()
        assert len(after["boxes"]) == len(v["boxes"]) - 1 + g["children"]
        assert not overlaps(after["boxes"]), overlaps(after["boxes"])[:5]
        # the opened scope is in view (whole, or from its top left when it is larger than the canvas), legibly
        frame = next(f for f in after["frames"] if f["id"] == g["id"])
        fits = frame["w"] <= after["width"] and frame["h"] <= after["height"]
        assert inside(frame, after, margin=1) if fits else (0 <= frame["x"] < after["width"] / 2 and 0 <= frame["y"] < after["height"] / 2), frame
        assert after["labelPx"] >= LEGIBLE_PX
        # collapsing it again (a click on its title strip) needs no dagre run at all
        (back,) = gp.click_box({"x": frame["x"], "y": frame["y"], "w": frame["w"], "h": 12 * after["k"]})
        assert back["reason"].startswith("collapse") and back["dagreCalls"] == 0, back
        assert len(gp.view()["boxes"]) == len(v["boxes"])
        # open three scopes one after the other (side by side ones stretch the level between them): each call lays
        # out the opened scope only, and no two boxes ever overlap
        for _ in range(3):
            now = gp.view()
            cands = [b for b in now["boxes"] if b["kind"] == "group" and inside(b, now) and b["children"] <= CHUNK_ABOVE]
            if not cands:
                break
            g = max(cands, key=lambda b: b["children"])
            (entry,) = gp.click_box(g)
            assert entry["dagreCalls"] <= 1 and entry["dagreNodes"] in (0, g["children"]), (g, entry)
            assert not overlaps(gp.view()["boxes"]), overlaps(gp.view()["boxes"])[:5]
    finally:
        gp.close()


def test_dense_fan_in_is_bundled(browser, shapes_server):
    """DenseNet: opening a dense block shows its layers on the main path; the skip edges into each concatenation
    are bundled on a bus (dagre never sees them) and each concatenation says how many inputs arrive on it."""
    gp = GraphPage(browser, shapes_server, "model_densenet")
    try:
        nodes = gp.nodes()
        v = gp.view()
        block = next(b for b in v["boxes"] if b["kind"] == "group" and b["label"] == "denseblock3")
        if not inside(block, v):
            gp.page.evaluate("() => window.__xquant.selectLayer(null)")
        (entry,) = gp.click_box(block)
        after = gp.view()
        cats = [b for b in after["boxes"] if b["label"].startswith("cat") and b["fanIn"]]
        # the block's concatenations as the graph API has them: the k-th one joins the block's input (an edge from
        # outside the block, drawn at the level above) and the k - 1 layers before it, all of them but the last
        # one skip edges
        block_cats = [n for n in nodes if n["op"] == "cat" and n["group"] == "features/denseblock3"]
        widest = max(len(n["inputs"]) for n in block_cats)
        assert widest >= 20
        assert entry["dagreCalls"] == 1 and entry["dagreNodes"] == block["children"], (block, entry)
        assert entry["dagreEdges"] < 2 * entry["dagreNodes"], entry          # the main path only: no dense fan-in
        assert len(cats) >= len(block_cats) - 2 and max(c["fanIn"] for c in cats) == widest - 2, \
            [(c["label"], c["fanIn"]) for c in cats]
        assert after["bundled"] >= sum(len(n["inputs"]) - 2 for n in block_cats if len(n["inputs"]) >= 4)
        assert after["labelPx"] >= LEGIBLE_PX
        shot(gp, "_denseblock3")
    finally:
        gp.close()


def test_expand_all_lays_out_each_level_once(browser, shapes_server):
    gp = GraphPage(browser, shapes_server, "model_densenet")
    try:
        before = len(gp.log())
        gp.page.get_by_role("button", name="Expand all", exact=True).click()
        gp.page.wait_for_function("n => window.__xquant.layoutLog().length > n && "
                                  "document.querySelector('canvas.graph-canvas').dataset.state === 'ready'", arg=before)
        (entry,) = gp.log()[before:]
        assert entry["maxDagreNodes"] <= CHUNK_ABOVE, entry
        assert not overlaps(gp.view()["boxes"])
        assert entry["dagreNodes"] <= len(gp.nodes()) + entry["placedLevels"], entry
        # a second Expand all (nothing new) runs no dagre at all
        gp.page.get_by_role("button", name="Collapse all", exact=True).click()
        gp.page.wait_for_function("n => window.__xquant.layoutLog().length > n + 1", arg=before)
        gp.page.get_by_role("button", name="Expand all", exact=True).click()
        gp.page.wait_for_function("n => window.__xquant.layoutLog().length > n + 2 && "
                                  "document.querySelector('canvas.graph-canvas').dataset.state === 'ready'", arg=before)
        assert [e["dagreCalls"] for e in gp.log()[before + 1:]] == [0, 0]
    finally:
        gp.close()


def test_long_degraded_and_cause_lists_stay_compact(browser, shapes_server):
    """Hundreds of degraded layers: the list above the graph keeps two lines, grouped by scope with a count, shows
    all of them on "Show all" (still a bounded, scrolling box) and orders them worst first on request; verdicts
    that say the same thing about several layers are one line. The first view of the 3,000-node graph is still
    10-40 boxes with every degraded layer counted in view."""
    gp = GraphPage(browser, shapes_server, "model_%d" % LONG_LIST_LAYERS)
    try:
        f = gp.page
        rid = gp.report["id"]
        summary = gp.server.api("report", report=rid)
        degraded = summary["degraded_layers"]
        assert len(degraded) > 300
        lst = f.locator("#degraded-list")
        assert lst.get_attribute("data-count") == str(len(degraded))
        scopes = int(lst.get_attribute("data-scopes"))
        assert 2 <= scopes, scopes
        rows = f.locator("#degraded-list .degraded-row")
        assert rows.count() == 200                                    # made at once; the rest on "Show all"
        assert f.locator("#degraded-list .degraded-scope").count() >= 2
        assert lst.evaluate("e => e.getBoundingClientRect().height") <= 60
        assert f.locator("#degraded-more").inner_text() == "Show all %d" % len(degraded)
        f.click("#degraded-more")
        f.wait_for_function("n => document.querySelectorAll('#degraded-list .degraded-row').length === n", arg=len(degraded))
        assert sorted(rows.evaluate_all("els => els.map(e => e.dataset.layer)")) == sorted(degraded)
        assert lst.evaluate("e => e.getBoundingClientRect().height <= 0.4 * innerHeight + 1 && e.scrollHeight > e.clientHeight")
        # worst first: by the backend's severity
        f.click("#degraded-order")
        f.wait_for_selector("#degraded-list[data-order=severity]")
        sev = {l["name"]: (l.get("worst") or {}).get("severity") for l in gp.server.api("layers", report=rid)["layers"]}
        num = lambda x: float("inf") if x == "Infinity" else float(x or 0)  # noqa: E731
        shown = rows.evaluate_all("els => els.map(e => e.dataset.layer)")
        assert [num(sev[n]) for n in shown] == sorted((num(sev[n]) for n in degraded), reverse=True)
        # a row still selects its layer
        rows.nth(0).click()
        f.wait_for_function("l => document.querySelector('#layer-panel').dataset.layer === l", arg=shown[0])
        # the causes: one line per group of equal verdicts, together naming every verdict
        lines = f.locator("#verdict-summary .verdict-line")
        counts = lines.evaluate_all("els => els.map(e => Number(e.dataset.count))")
        assert counts == [g["count"] for g in summary["verdict_groups"]], counts
        assert sum(counts) == summary["verdict_count"] and len(counts) < summary["verdict_count"] / 10, counts
    finally:
        gp.close()


def test_first_view_of_a_big_generated_model(browser, shapes_server):
    gp = GraphPage(browser, shapes_server, "model_%d" % LONG_LIST_LAYERS)
    try:
        check_first_view(gp)
    finally:
        gp.close()


def zoo_reports():
    if not ZOO or not Path(ZOO).is_dir():
        return ["(TB_XQUANT_ZOO_LOGDIR unset)"]
    return sorted(p.parent.parent.name for p in Path(ZOO).glob("*/xquant_report/quant_report.json"))


@pytest.mark.parametrize("arch", zoo_reports())
def test_first_view_of_a_real_mct_report(browser, zoo_server, arch):
    gp = GraphPage(browser, zoo_server, arch)
    try:
        check_first_view(gp, shot_name="real_" + arch)
    finally:
        gp.close()
