"""Behaviour of the graph on big models (5,000 and 20,000 layers): it opens collapsed, search reaches a deep node,
pan and zoom work, nothing errors.

No timing assertions: the speed and memory targets live in bench/ (``python -m bench.browser`` measures the tab
against TensorBoard's Graphs tab on generated MCT logdirs).  Every model here is written in MCT 2.6.1's on-disk
format by bench/mct_format.py (no torch, no MCT) and read by the real plugin: the big-graph tests through
frontend/dev/dev_server.py (the plugin in TensorBoard's WSGI router, the panel page opened directly: no event
loading to wait for), one test and the 300-layer check through a real ``tensorboard``.
"""
import sys

import pytest

from conftest import REPO, open_panel, start_server

if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

BOX_LIMIT = 400          # boxes shown when a big graph opens (breadth-first expansion stops at ~260)
BIG = (5000, 20000)
BIG_READY_S = 600.0      # the first build of both big reports, on a busy 2-core machine


@pytest.fixture(scope="module")
def big_logdir(tmp_path_factory):
    """model_5000/ and model_20000/ (about 30 s to write on 2 cores)."""
    from testkit.logdirs import ensure_model_logdir

    out = tmp_path_factory.mktemp("mct_big")
    for n in BIG:
        ensure_model_logdir(str(out), n, seed=0)
    return out


@pytest.fixture(scope="module")
def big_server(big_logdir, tmp_path_factory):
    srv = start_server(big_logdir, tmp_path_factory, dev_server=True, ready_timeout=BIG_READY_S)
    yield srv
    srv.stop()


def report_of(server, n):
    return next(r["id"] for r in server.api("reports")["reports"] if r["name"] == "model_%d/xquant_report" % n)


def unique_layer(server, rid, deepest=False):
    """A layer whose name matches exactly one graph node in the panel's search (node id or layer name contains
    it), with its node id and its group depth: from the middle of the model, or (``deepest``) among the layers in
    the most deeply nested module scopes."""
    nodes = server.api("graph", report=rid)["nodes"]
    depth = {n["id"]: (n["group"].count("/") + 1 if n["group"] else 0) for n in nodes}
    layers = [l for l in server.api("layers", report=rid)["layers"] if l.get("node")]
    if deepest:
        most = max(depth[l["node"]] for l in layers)
        layers = [l for l in layers if depth[l["node"]] == most]
    for l in layers[len(layers) // 2:] + layers[:len(layers) // 2]:
        q = l["name"].lower()
        hits = [n for n in nodes if q in n["id"].lower() or q in (n.get("layer") or "").lower()]
        if len(hits) == 1 and hits[0]["id"] == l["node"]:
            return l["name"], l["node"], depth[l["node"]]
    pytest.fail("no layer name matches a single node")


@pytest.fixture
def big_page(browser, big_server):
    """Yields (open_report(n) -> graph canvas, page, errors) for the panel page of the dev server; asserts at the
    end that no page error or console error happened."""
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("console", lambda m: errors.append(f"console.{m.type}: {m.text}")
            if m.type == "error" and "favicon" not in (m.location or {}).get("url", "") else None)

    def open_report(n):
        page.goto(f"{big_server.base}/data/plugin_entry.html?name=xquant#report={report_of(big_server, n)}")
        page.wait_for_selector("#xquant-root[data-state=ready]", timeout=120000)
        page.wait_for_selector("canvas.graph-canvas[data-state=ready]", timeout=120000)
        return page.locator("canvas.graph-canvas")

    yield open_report, page, errors
    ctx.close()
    assert not errors, "\n".join(errors)


def attr(canvas, name):
    return int(canvas.get_attribute("data-" + name))


@pytest.fixture(scope="module")
def deep_20000(big_server):
    """(layer, node id, group depth) of a layer in the most deeply nested scopes of the 20,000-layer model."""
    return unique_layer(big_server, report_of(big_server, 20000), deepest=True)


@pytest.mark.parametrize("n", BIG)
def test_big_graph_opens_collapsed(big_page, big_server, n):
    open_report, page, errors = big_page
    c = open_report(n)
    nodes = big_server.api("graph", report=report_of(big_server, n))["nodes"]
    assert attr(c, "node-count") == len(nodes) >= n
    visible = attr(c, "visible-count")
    assert 0 < visible <= BOX_LIMIT, f"{visible} boxes shown when opening a {len(nodes)}-node graph"
    assert c.get_attribute("data-layout-mode") == "worker"
    assert attr(c, "degraded-count") == sum(1 for x in nodes if x["degraded"]) > 0
    # the summary lists at most 200 degraded layers and says how many more
    assert page.locator("#degraded-list .degraded-row").count() <= 200


def test_search_finds_and_selects_a_deep_node_in_20000(big_page, deep_20000):
    open_report, page, errors = big_page
    deep, deep_node, depth = deep_20000
    assert depth >= 3
    c = open_report(20000)
    assert page.evaluate("n => window.__xquant.nodePoint(n)", deep) is None   # inside collapsed groups
    page.fill("input.search", deep)
    page.wait_for_selector(".search-results .search-hit")
    assert deep_node in page.locator(".search-results .search-hit").first.inner_text()
    page.press("input.search", "Enter")
    page.wait_for_selector(f'#layer-panel[data-state=ready][data-layer="{deep}"]', timeout=60000)
    page.wait_for_selector("canvas.graph-canvas[data-state=ready]")
    assert page.evaluate("() => window.__xquant.state().layer") == deep
    # its groups were expanded (and only those: each level shows at most 300 boxes, so the view stays bounded)
    # and it is brought into view
    visible = attr(c, "visible-count")
    assert visible <= 5 * 300 + BOX_LIMIT, visible
    pt = page.evaluate("n => window.__xquant.nodePoint(n)", deep)
    box = c.bounding_box()
    assert pt is not None and 0 <= pt["x"] <= box["width"] and 0 <= pt["y"] <= box["height"], pt


NEAR = """([n, x, y, tol]) => { const p = window.__xquant.nodePoint(n);
  return !!p && Math.abs(p.x - x) < tol && Math.abs(p.y - y) < tol; }"""


def test_pan_and_zoom_move_the_view_of_a_big_graph(big_page, deep_20000):
    open_report, page, errors = big_page
    deep = deep_20000[0]
    c = open_report(20000)
    page.evaluate("n => window.__xquant.selectLayer(n)", deep)
    page.wait_for_selector(f'#layer-panel[data-state=ready][data-layer="{deep}"]', timeout=60000)
    page.wait_for_selector("canvas.graph-canvas[data-state=ready]")
    box = c.bounding_box()
    cx, cy = box["x"] + box["width"] / 2, box["y"] + box["height"] / 2
    before = page.evaluate("n => window.__xquant.nodePoint(n)", deep)
    assert before is not None
    # drag: the node follows the mouse
    page.mouse.move(cx, cy)
    page.mouse.down()
    for i in range(1, 11):
        page.mouse.move(cx + 12 * i, cy + 6 * i)
    page.mouse.up()
    page.wait_for_function(NEAR, arg=[deep, before["x"] + 120, before["y"] + 60, 1], timeout=10000)
    after = page.evaluate("n => window.__xquant.nodePoint(n)", deep)
    # wheel: zooming in around the mouse moves the node away from it, zooming out brings it back
    page.mouse.move(cx, cy)
    mx = cx - box["x"]
    d0 = abs(after["x"] - mx)
    for _ in range(5):
        page.mouse.wheel(0, -120)
    page.wait_for_function("([n, mx, d0]) => { const p = window.__xquant.nodePoint(n); return !!p && Math.abs(p.x - mx) > 1.5 * d0; }",
                           arg=[deep, mx, d0], timeout=10000)
    for _ in range(5):
        page.mouse.wheel(0, 120)
    page.wait_for_function(NEAR, arg=[deep, after["x"], after["y"], 2], timeout=10000)
    assert c.get_attribute("data-state") == "ready"
    assert float(c.get_attribute("data-draw-ms")) >= 0


# ------------------------------------------------------------------------------------------------------------
# generated MCT logdirs through a real tensorboard (the dev server with TB_XQUANT_FAKE=1)

@pytest.fixture(scope="module")
def mct_5000(big_logdir, tmp_path_factory):
    srv = start_server(big_logdir / "model_5000", tmp_path_factory, ready_timeout=BIG_READY_S)
    yield srv
    srv.stop()


def test_generated_5000_layer_model_in_tensorboard(browser, mct_5000):
    panel, ctx = open_panel(browser, mct_5000)
    try:
        c = panel.frame.locator("canvas.graph-canvas")
        rid = panel.state()["report"]
        n_nodes = len(mct_5000.api("graph", report=rid)["nodes"])
        assert attr(c, "node-count") == n_nodes >= 5000
        assert 0 < attr(c, "visible-count") <= BOX_LIMIT
        assert attr(c, "degraded-count") == sum(1 for n in mct_5000.api("graph", report=rid)["nodes"] if n["degraded"])
        name, node, _ = unique_layer(mct_5000, rid)
        assert panel.frame.evaluate("n => window.__xquant.nodePoint(n)", name) is None   # collapsed away
        panel.frame.fill("input.search", name)
        panel.frame.wait_for_selector(".search-results .search-hit")
        assert node in panel.frame.locator(".search-results .search-hit").first.inner_text()
        panel.frame.press("input.search", "Enter")
        panel.frame.wait_for_selector(f'#layer-panel[data-state=ready][data-layer="{name}"]', timeout=60000)
        panel.frame.wait_for_selector("canvas.graph-canvas[data-state=ready]")
        assert panel.frame.evaluate("n => window.__xquant.nodePoint(n)", name) is not None
        # the error charts of 5,000 layers draw too
        panel.frame.click("button.tab[data-view=chart]")
        panel.frame.wait_for_selector("canvas.chart-canvas", state="visible")
        assert panel.frame.locator("canvas.chart-canvas").count() == 6
        assert not panel.errors, "\n".join(panel.errors)
    finally:
        ctx.close()


@pytest.fixture(scope="module")
def mct_300(tmp_path_factory):
    from testkit.logdirs import ensure_model_logdir

    model_dir, _ = ensure_model_logdir(str(tmp_path_factory.mktemp("mct_300")), 300, seed=0)
    srv = start_server(model_dir, tmp_path_factory)
    yield srv
    srv.stop()


def test_300_layer_model_opens_on_its_modules_with_input_and_output_in_view(browser, mct_300):
    """The issue's 300-layer readability check: the model opens on its module scopes (not on arbitrary slices),
    with the first and last layer drawn and every block reachable by expanding its group."""
    panel, ctx = open_panel(browser, mct_300)
    try:
        c = panel.frame.locator("canvas.graph-canvas")
        rid = panel.state()["report"]
        nodes = mct_300.api("graph", report=rid)["nodes"]
        layers = [l["name"] for l in mct_300.api("layers", report=rid)["layers"] if l.get("node")]
        groups = {n["group"].split("/")[0] for n in nodes if n["group"]}
        assert {"stem", "blocks", "classifier"} <= groups, groups
        assert 0 < attr(c, "visible-count") <= BOX_LIMIT
        panel.frame.get_by_role("button", name="Fit", exact=True).click()
        panel.frame.wait_for_selector("canvas.graph-canvas[data-state=ready]")
        box = c.bounding_box()
        for name in (layers[0], layers[-1]):
            pt = panel.frame.evaluate("n => window.__xquant.nodePoint(n)", name)
            assert pt is not None, f"{name} is hidden in a collapsed group when the model opens"
            assert 0 <= pt["x"] <= box["width"] and 0 <= pt["y"] <= box["height"], (name, pt)
        assert not panel.errors, "\n".join(panel.errors)
    finally:
        ctx.close()
