"""End-to-end checks of the XQuant panel inside TensorBoard (see conftest.py for the fixtures)."""
import re
from pathlib import Path

import pytest

from conftest import FAKE, open_panel

REPO = Path(__file__).resolve().parents[2]


def current_report(panel):
    return panel.state()["report"]


def degraded_node_count(server, report, **thr):
    g = server.api("graph", report=report, **thr)
    return sum(1 for n in g["nodes"] if n.get("degraded"))


def test_tab_appears_and_loads(panel):
    if not FAKE:
        # The tab is in TensorBoard's own header (outside the iframe).
        assert panel.page.get_by_text(re.compile(r"^\s*xquant\s*$", re.I)).first.is_visible()
    assert panel.root.get_attribute("data-state") == "ready"
    reports = panel.server.api("reports")["reports"]
    assert panel.frame.locator("#report-select option").count() == len(reports)


def test_highlight_count_matches_api(panel):
    rid = current_report(panel)
    summary = panel.server.api("report", report=rid)
    canvas = panel.frame.locator("canvas.graph-canvas")
    assert int(canvas.get_attribute("data-degraded-count")) == degraded_node_count(panel.server, rid)
    assert int(panel.frame.locator("#degraded-stat").get_attribute("data-count")) == len(summary["degraded_layers"])
    assert panel.frame.locator("#degraded-list .degraded-row").count() == min(200, len(summary["degraded_layers"]))


def pick_layer_with_verdict(panel):
    """Find (report, layer, verdict) for a degraded layer that has a judgeable verdict with a snippet."""
    for r in panel.server.api("reports")["reports"]:
        try:
            vs = panel.server.api("verdicts", report=r["id"])
        except Exception:
            continue
        for v in vs.get("verdicts", []):
            if v.get("layers") and v.get("snippet") and v.get("manual"):
                return r["id"], v["layers"][0], v
    pytest.skip("no report in the demo logdir has a verdict with a snippet")


def test_click_degraded_layer_shows_countermeasure_and_snippet(panel):
    rid, layer, verdict = pick_layer_with_verdict(panel)
    if current_report(panel) != rid:
        panel.frame.select_option("#report-select", rid)
        panel.frame.wait_for_function("id => window.__xquant.state().report === id", arg=rid)
        panel.wait_ready()
    # Make sure the node is laid out and visible (expands its groups), then deselect via another route.
    panel.frame.evaluate("l => window.__xquant.selectLayer(l)", layer)
    panel.frame.wait_for_selector(f"#layer-panel[data-state=ready]")
    pt = panel.frame.evaluate("l => window.__xquant.nodePoint(l)", layer)
    assert pt is not None, f"layer {layer} has no node in the graph: " + panel.frame.evaluate("JSON.stringify([window.__xquant.state(), document.querySelector('canvas.graph-canvas').dataset, location.href, document.querySelector('#problems').textContent, document.querySelector('.graph-status').textContent])")
    # A real click on the canvas at the node's coordinates.
    panel.frame.evaluate("() => window.__xquant.selectLayer(null)")
    panel.frame.wait_for_selector("#layer-panel[data-state=empty]")
    pt = panel.frame.evaluate("l => window.__xquant.nodePoint(l)", layer)
    panel.frame.locator("canvas.graph-canvas").click(position={"x": pt["x"], "y": pt["y"]})
    side = panel.frame.locator("#layer-panel")
    panel.frame.wait_for_function("l => document.querySelector('#layer-panel').dataset.layer === l && document.querySelector('#layer-panel').dataset.state === 'ready'", arg=layer)
    card = side.locator(f".verdict[data-judge={verdict['judge']}]").first
    card.wait_for()
    panel.frame.wait_for_selector(f"#layer-panel .verdict[data-judge={verdict['judge']}][data-manual-loaded='1']")
    assert card.locator(".manual-html").inner_text().strip() != ""
    code = card.locator("pre.snippet code").first.inner_text()
    assert code.strip() == verdict["snippet"].strip()
    assert panel.state()["layer"] == layer
    card.locator("button.copy").first.click()
    panel.frame.wait_for_selector("#layer-panel button.copy[data-copied]")
    panel.page.screenshot(path=str(REPO / "docs" / "screenshot.png"))


def test_threshold_change_changes_highlight_count(panel):
    rid = current_report(panel)
    canvas = panel.frame.locator("canvas.graph-canvas")
    before = int(canvas.get_attribute("data-degraded-count"))
    summary = panel.server.api("report", report=rid)
    metric = summary["metrics"][0]
    # A threshold that flags every layer on the chosen metric (direction above, threshold below every value)
    # or none (huge threshold), whichever differs from the current count.
    candidates = [{"thr." + metric: "1e30", "under." + metric: "0"}, {"thr." + metric: "-1e30", "under." + metric: "0"}]
    for thr in candidates:
        expected = degraded_node_count(panel.server, rid, **thr)
        if expected != before:
            break
    else:
        pytest.skip("no threshold change alters the degraded count for this report")
    panel.frame.click("#thr-toggle")
    panel.frame.select_option(f"#under-{metric}", thr["under." + metric])
    panel.frame.fill(f"#thr-{metric}", thr["thr." + metric])
    panel.frame.wait_for_function("n => document.querySelector('canvas.graph-canvas').dataset.degradedCount === String(n)", arg=expected)
    panel.wait_ready()
    assert panel.state()["t"]["thr"][metric] == thr["thr." + metric]
    # chart reflects the same thresholds
    flagged = panel.server.api("layers", report=rid, **thr)
    n_flag = sum(1 for l in flagged["layers"] if l["flags"].get(f"{metric}.repr"))
    assert panel.frame.locator(f"canvas.chart-canvas[data-metric={metric}][data-dataset=repr]").get_attribute("data-flagged") == str(n_flag)


def test_compare_view_shows_deltas(panel):
    reports = panel.server.api("reports")["reports"]
    if len(reports) < 2:
        pytest.skip("need two reports to compare")
    a, b = reports[0]["id"], reports[1]["id"]
    cmp = panel.server.api("compare", a=a, b=b)
    panel.frame.evaluate("h => { location.hash = h; }", f"#report={b}&cmp={a}")
    panel.frame.wait_for_selector("#compare-summary")
    panel.wait_ready()
    box = panel.frame.locator("#compare-summary")
    assert box.get_attribute("data-improved") == str(cmp["summary"].get("improved", 0))
    assert box.get_attribute("data-worse") == str(cmp["summary"].get("worse", 0))
    changed = [l for l in cmp["layers"] if l["status"] in ("improved", "worse")]
    assert panel.frame.locator("#delta-table .delta-row").count() == min(100, len(changed))
    if cmp.get("general"):
        assert box.locator(".verdict[data-judge=general]").count() == len(cmp["general"])


def test_state_restored_from_hash(browser, tb):
    reports = tb.api("reports")["reports"]
    rid = reports[-1]["id"]
    layers = tb.api("layers", report=rid)["layers"]
    if not layers:
        pytest.skip("report without layers")
    layer = layers[len(layers) // 2]["name"]
    import urllib.parse
    h = "#" + urllib.parse.urlencode({"report": rid, "layer": layer, "view": "chart"})
    p, ctx = open_panel(browser, tb, h)
    try:
        p.frame.wait_for_function("l => document.querySelector('#layer-panel').dataset.layer === l", arg=layer)
        p.frame.wait_for_function("id => window.__xquant.state().report === id", arg=rid)
        p.wait_ready()
        # the picker shows it (its list is refreshed when the report from the URL was not in it yet)
        p.frame.wait_for_function("id => document.querySelector('#report-select').value === id", arg=rid)
        assert p.frame.locator(".charts").is_visible()
        assert p.frame.locator("canvas.chart-canvas").count() >= 1
        assert not p.errors
    finally:
        ctx.close()


def test_keyboard_search_and_fit(panel):
    panel.frame.locator("canvas.graph-canvas").focus()
    panel.frame.locator("canvas.graph-canvas").press("/")
    assert panel.frame.evaluate("document.activeElement.classList.contains('search')")
    g = panel.server.api("graph", report=current_report(panel))
    target = next((n for n in g["nodes"] if n.get("layer")), None)
    if not target:
        pytest.skip("no layer nodes")
    panel.frame.locator("input.search").fill(target["name"])
    panel.frame.locator("input.search").press("Enter")
    panel.frame.wait_for_function("l => document.querySelector('#layer-panel').dataset.layer === l", arg=target["layer"])
    canvas = panel.frame.locator("canvas.graph-canvas")
    canvas.focus()
    canvas.press("ArrowDown")
    focused = canvas.get_attribute("data-focus")
    assert focused, "arrow key did not move the keyboard focus along an edge"
    g_ids = {n["id"] for n in g["nodes"]}
    canvas.press("Enter")
    if focused in g_ids:
        node = next(n for n in g["nodes"] if n["id"] == focused)
        if node.get("layer"):
            panel.frame.wait_for_function("l => document.querySelector('#layer-panel').dataset.layer === l", arg=node["layer"])
    canvas.press("f")


@pytest.mark.skipif(FAKE, reason="dark mode follows the TensorBoard parent page")
def test_follows_tensorboard_dark_mode(panel):
    panel.page.evaluate("document.body.classList.add('dark-mode')")
    panel.frame.wait_for_function("document.documentElement.classList.contains('dark')")
    panel.page.evaluate("document.body.classList.remove('dark-mode')")
    panel.frame.wait_for_function("!document.documentElement.classList.contains('dark')")


def test_works_under_path_prefix(browser, tb_prefixed):
    p, ctx = open_panel(browser, tb_prefixed)
    try:
        assert p.root.get_attribute("data-state") == "ready"
        assert "/foo/" in p.frame.url
        assert not p.errors
    finally:
        ctx.close()


def test_reload_button_and_tensorboard_reload(panel):
    with panel.page.expect_request(lambda r: "/data/plugin/xquant/reports" in r.url):
        panel.frame.click("#reload")
    panel.wait_ready()
    if FAKE:
        return
    # TensorBoard's own reload button refetches data/runs in the parent page; the panel follows it.
    assert panel.root.get_attribute("data-reload-hook") == "parent"
    with panel.page.expect_request(lambda r: "/data/plugin/xquant/reports" in r.url, timeout=15000):
        panel.page.click("button.reload-button")
    panel.wait_ready()


@pytest.mark.skipif(FAKE, reason="needs the real backend")
def test_empty_logdir_explains_what_to_run(browser, tmp_path, tmp_path_factory):
    from conftest import start_server
    empty = tmp_path / "empty_logdir"
    empty.mkdir()
    srv = start_server(empty, tmp_path_factory, require_plugin_listed=False)
    ctx = browser.new_context()
    try:
        page = ctx.new_page()
        page.goto(f"{srv.base}/data/plugin_entry.html?name=xquant")
        page.wait_for_selector("#xquant-root[data-state=empty]", timeout=60000)
        text = page.locator("#summary").inner_text()
        assert "No XQuant report found" in text
        assert "xquant_report_troubleshoot_pytorch_experimental" in text
    finally:
        ctx.close()
        srv.stop()
