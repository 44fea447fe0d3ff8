"""End-to-end checks of the XQuant panel inside TensorBoard (see conftest.py for the fixtures).

Environment (besides conftest.py's):
  TB_XQUANT_SCREENSHOT  where test_click_degraded_layer_shows_countermeasure_and_snippet saves its screenshot
                        (e.g. docs/screenshot.png to refresh the README's); by default pytest's tmp_path.
"""
import itertools
import json
import math
import os
import re
import urllib.parse
from pathlib import Path

import pytest

from conftest import FAKE, open_panel, watch_errors

REPO = Path(__file__).resolve().parents[2]

# The canvases publish no per-item state for the selection or the compare status, so those are read from
# the drawn pixels, in the light palette (frontend/src/theme.ts, LIGHT).
SELECTED = (0xF5, 0x7C, 0x00)      # palette.selected: the chart's selection line, the selected node's outline
SERIES_B = (0xF5, 0x7C, 0x00)      # palette.seriesB: report B's points in compare charts
SERIES = (0x60, 0x7D, 0x8B)        # palette.series: the points of a chart without compare
DEGRADED = (0xD3, 0x2F, 0x2F)      # palette.degraded: flagged chart points
STATUS_COLOR = {"improved": (0x2E, 0x7D, 0x32), "worse": (0xC6, 0x28, 0x28)}   # compare badges on nodes
# A name-scope group's box id in the graph view (frontend/src/graph/model.ts GPREFIX + scope path);
# window.__xquant.nodePoint() accepts it as well as layer names.
GROUP_PREFIX = "\u29c9g:"
DID_NOT_IMPROVE = "countermeasure_did_not_improve"

COUNT_PIXELS_JS = """([sel, rect, rgb, tol]) => {
  const c = document.querySelector(sel);
  if (!c || !c.clientWidth) return -1;
  const s = c.width / c.clientWidth;
  const r = rect || [0, 0, c.clientWidth, c.clientHeight];
  const x0 = Math.max(0, Math.floor(r[0] * s)), y0 = Math.max(0, Math.floor(r[1] * s));
  const x1 = Math.min(c.width, Math.ceil(r[2] * s)), y1 = Math.min(c.height, Math.ceil(r[3] * s));
  if (x1 <= x0 || y1 <= y0) return 0;
  const d = c.getContext('2d').getImageData(x0, y0, x1 - x0, y1 - y0).data;
  let n = 0;
  for (let i = 0; i < d.length; i += 4) {
    if (Math.abs(d[i] - rgb[0]) <= tol && Math.abs(d[i + 1] - rgb[1]) <= tol && Math.abs(d[i + 2] - rgb[2]) <= tol) n++;
  }
  return n;
}"""

# Vertical runs [y0, y1] (CSS px) of one exact colour in the pixel column under x.
COLUMN_RUNS_JS = """([sel, x, rgb]) => {
  const c = document.querySelector(sel);
  const s = c.width / c.clientWidth, col = Math.floor(x * s);
  const d = c.getContext('2d').getImageData(col, 0, 1, c.height).data;
  const runs = [];
  let start = -1;
  for (let y = 0; y <= c.height; y++) {
    const hit = y < c.height && d[4 * y] === rgb[0] && d[4 * y + 1] === rgb[1] && d[4 * y + 2] === rgb[2];
    if (hit && start < 0) start = y;
    if (!hit && start >= 0) { runs.push([start / s, (y - 1) / s]); start = -1; }
  }
  return runs;
}"""


def current_report(panel):
    return panel.state()["report"]


def degraded_node_count(server, report, **thr):
    g = server.api("graph", report=report, **thr)
    return sum(1 for n in g["nodes"] if n.get("degraded"))


def css_attr(value):
    """A string as a quoted CSS attribute value."""
    return json.dumps(value)


def choose_report(panel, rid):
    """Pick a report in the Report selector, as a user does, and wait until it is shown."""
    if current_report(panel) == rid:
        return
    panel.frame.select_option("#report-select", rid)
    panel.frame.wait_for_function("id => window.__xquant.state().report === id", arg=rid)
    panel.wait_ready()


def show_view(panel, view):
    """Click the Graph / Error charts tab."""
    panel.frame.click(f"button.tab[data-view={view}]")
    panel.frame.wait_for_selector(f"button.tab.active[data-view={view}]")


def wait_layer_shown(panel, layer):
    panel.frame.wait_for_function(
        "l => { const s = document.querySelector('#layer-panel'); return s.dataset.layer === l && s.dataset.state === 'ready'; }",
        arg=layer)


def count_pixels(frame, sel, rgb, rect=None, tol=0):
    return frame.evaluate(COUNT_PIXELS_JS, [sel, rect, list(rgb), tol])


def wait_pixels(frame, sel, rgb, rect=None, tol=0, at_least=1, timeout=15000):
    """Wait until a canvas shows at least `at_least` pixels of a colour (inside rect, CSS px)."""
    frame.wait_for_function(f"a => ({COUNT_PIXELS_JS})(a.slice(0, 4)) >= a[4]",
                            arg=[sel, rect, list(rgb), tol, at_least], timeout=timeout)


def graph_node(server, report, layer):
    return next((n for n in server.api("graph", report=report)["nodes"] if n.get("layer") == layer), None)


def node_point(panel, name):
    return panel.frame.evaluate("l => window.__xquant.nodePoint(l)", name)


def inside_canvas(panel, pt, margin=6):
    w, h = panel.frame.evaluate("() => { const c = document.querySelector('canvas.graph-canvas'); return [c.clientWidth, c.clientHeight]; }")
    return pt is not None and margin <= pt["x"] <= w - margin and margin <= pt["y"] <= h - margin


def on_screen_point(panel, name):
    """nodePoint of a box, after pressing Fit when the box lies outside the canvas (as a user would)."""
    pt = node_point(panel, name)
    if pt is not None and not inside_canvas(panel, pt):
        panel.frame.get_by_role("button", name="Fit", exact=True).click()
        pt = node_point(panel, name)
        assert inside_canvas(panel, pt), f"{name} stays outside the canvas after Fit: {pt}"
    return pt


def reveal_node(panel, layer):
    """Canvas coordinates of a layer's node, made visible the way a user does it: click the collapsed group
    that holds the node (level after level), then Fit if the node is outside the canvas."""
    node = graph_node(panel.server, current_report(panel), layer)
    assert node is not None, f"layer {layer} has no node in the graph API"
    canvas = panel.frame.locator("canvas.graph-canvas")
    parts = node["group"].split("/") if node.get("group") else []
    scopes = [GROUP_PREFIX + "/".join(parts[:i]) for i in range(len(parts), 0, -1)]   # deepest first
    for _ in range(len(parts) + 1):
        if node_point(panel, layer) is not None:
            break
        # The deepest scope that has a box is the collapsed group standing for the node (single-child scopes
        # are merged away by the view, so not every scope has one).
        group = next((g for g in scopes if node_point(panel, g) is not None), None)
        assert group is not None, (f"neither {layer} nor a name-scope group holding it ({scopes}) is drawn; "
                                   "the panel needs a hook giving the box that stands for a node")
        before = canvas.get_attribute("data-visible-count")
        canvas.click(position=on_screen_point(panel, group))
        panel.frame.wait_for_function(
            "n => { const c = document.querySelector('canvas.graph-canvas'); return c.dataset.state === 'ready' && c.dataset.visibleCount !== n; }",
            arg=before)
    pt = on_screen_point(panel, layer)
    assert pt is not None, f"{layer} is not drawn after expanding its groups"
    return pt


def collapse_all(panel):
    """Press "Collapse all" and wait for the new layout."""
    canvas = panel.frame.locator("canvas.graph-canvas")
    before = canvas.get_attribute("data-visible-count")
    panel.frame.get_by_role("button", name="Collapse all", exact=True).click()
    panel.frame.wait_for_function(
        "n => { const c = document.querySelector('canvas.graph-canvas'); return c.dataset.state === 'ready' && c.dataset.visibleCount !== n; }",
        arg=before)


def click_node(panel, layer):
    """A real click on the layer's node in the graph canvas; waits until the side panel shows the layer."""
    pt = reveal_node(panel, layer)
    panel.frame.locator("canvas.graph-canvas").click(position=pt)
    wait_layer_shown(panel, layer)
    return pt


def decode(v):
    """The API's encoding of non-finite floats."""
    return {"NaN": math.nan, "Infinity": math.inf, "-Infinity": -math.inf}.get(v, v) if isinstance(v, str) else v


def parse_fmt(text):
    """Inverse of frontend/src/api.ts fmt() (up to its rounding)."""
    text = text.strip()
    special = {"—": None, "∞": math.inf, "−∞": -math.inf, "NaN": math.nan}
    return special[text] if text in special else float(text.replace("−", "-"))


def normalize_ws(s):
    return " ".join(s.split())


def test_tab_appears_and_loads(panel):
    if not FAKE:
        # The tab is in TensorBoard's own header (outside the iframe).
        assert panel.page.get_by_text(re.compile(r"^\s*xquant\s*$", re.I)).first.is_visible()
    assert panel.root.get_attribute("data-state") == "ready"
    reports = panel.server.api("reports")["reports"]
    assert panel.frame.locator("#report-select option").count() == len(reports)


def test_highlight_count_matches_api(panel):
    # The report with the most degraded layers (the one opened first may have none).
    reports = panel.server.api("reports")["reports"]
    summaries = [panel.server.api("report", report=r["id"]) for r in reports]
    summary = max(summaries, key=lambda s: len(s["degraded_layers"]))
    if not summary["degraded_layers"]:
        pytest.skip("no report has degraded layers")
    rid = summary["id"]
    choose_report(panel, rid)
    canvas = panel.frame.locator("canvas.graph-canvas")
    assert int(canvas.get_attribute("data-degraded-count")) == degraded_node_count(panel.server, rid)
    assert int(panel.frame.locator("#degraded-stat").get_attribute("data-count")) == len(summary["degraded_layers"])
    rows = panel.frame.locator("#degraded-list .degraded-row")
    assert [rows.nth(i).get_attribute("data-layer") for i in range(rows.count())] == summary["degraded_layers"][:200]


def snippet_settings(verdict):
    """`key=value` settings of a verdict's snippet that carry one of its computed numbers (z_threshold=3.27)."""
    out = []
    for k, v in (verdict.get("numbers") or {}).items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and f"{k}={v}" in (verdict.get("snippet") or ""):
            out.append(f"{k}={v}")
    return out


def pick_degraded_layer_with_snippet(server):
    """(report, layer, verdict, settings): a degraded layer (summary.degraded_layers) with a graph node, named by
    a verdict with a manual entry whose snippet sets one of the verdict's computed numbers."""
    for r in server.api("reports")["reports"]:
        s = server.api("report", report=r["id"])
        degraded = set(s.get("degraded_layers") or [])
        for v in server.api("verdicts", report=r["id"]).get("verdicts") or []:
            settings = snippet_settings(v)
            if not (v.get("manual") and settings):
                continue
            for layer in v.get("layers") or []:
                if layer in degraded and graph_node(server, r["id"], layer):
                    return r["id"], layer, v, settings
    pytest.skip("no degraded layer in the demo logdir has a verdict whose snippet sets a computed value")


def verdict_card(panel, verdict):
    """The side panel's card for this verdict (same judge, source and message)."""
    cards = panel.frame.locator(f"#layer-panel .verdict[data-judge={verdict['judge']}][data-source={verdict['source']}]")
    cards.first.wait_for()
    for i in range(cards.count()):
        if cards.nth(i).locator(".verdict-msg").inner_text().strip() == verdict["message"].strip():
            return cards.nth(i)
    raise AssertionError(f"no card for verdict {verdict['judge']}: {verdict['message']!r}")


def assert_manual_shown(panel, card, manual_id):
    """The card's countermeasure is the manual entry's text (GET manual?id=), and it is open and visible."""
    entry = panel.server.api("manual", id=manual_id)
    card.locator("details.manual").wait_for()
    panel.frame.wait_for_function("c => c.dataset.manualLoaded === '1'", arg=card.element_handle())
    assert card.locator("details.manual").evaluate("d => d.open")
    body = card.locator(".manual-html")
    assert body.is_visible()
    # Every block of the entry's text (paragraphs, list items, code) is shown; the panel may add controls
    # around them (copy buttons, links to other entries).
    blocks = panel.frame.evaluate(
        "h => [...new DOMParser().parseFromString(h, 'text/html').body.querySelectorAll('p, li, pre, h1, h2, h3, h4, td')]"
        ".map((e) => e.textContent)", entry["html"])
    blocks = [normalize_ws(b) for b in blocks if normalize_ws(b)]
    assert blocks, f"manual entry {manual_id} has no text"
    shown = normalize_ws(body.evaluate("e => e.textContent"))
    missing = [b for b in blocks if b not in shown]
    assert not missing, f"manual text not shown: {missing[:3]}"
    assert card.locator(".manual-title").inner_text().strip().startswith(entry["title"].strip())


def test_click_degraded_layer_shows_countermeasure_and_snippet(panel, tmp_path):
    rid, layer, verdict, settings = pick_degraded_layer_with_snippet(panel.server)
    choose_report(panel, rid)
    f = panel.frame
    # As a user would: collapse every group, open the ones that hold the layer, click the layer's node.
    collapse_all(panel)
    assert f.locator("#layer-panel").get_attribute("data-state") == "empty"
    click_node(panel, layer)
    assert panel.state()["layer"] == layer
    side = f.locator("#layer-panel")
    assert side.locator(".panel-title .layer-name").inner_text() == layer
    assert side.locator(".panel-title .badge.degraded").is_visible()
    card = verdict_card(panel, verdict)
    assert_manual_shown(panel, card, verdict["manual"])
    snippet = card.locator(":scope > .snippet-wrap")           # the verdict's own snippet (not the manual's)
    code = snippet.locator("pre.snippet code").inner_text()
    assert code.strip() == verdict["snippet"].strip()
    for setting in settings:          # the computed value, e.g. z_threshold=3.27 from the verdict's numbers
        assert setting in code
    # Copy puts exactly the snippet on the clipboard.
    panel.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    snippet.locator("button.copy").click()
    f.wait_for_function("b => b.dataset.copied === '1'", arg=snippet.locator("button.copy").element_handle())
    assert f.evaluate("navigator.clipboard.readText()") == verdict["snippet"]
    shot = Path(os.environ.get("TB_XQUANT_SCREENSHOT") or tmp_path / "screenshot.png")
    panel.page.screenshot(path=str(shot))
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


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


def find_before_after_pair(server):
    """(A, B): the demo's before / after reports. B's manifest names its baseline (extra.compare_to, e.g.
    outlier_fixed -> outlier); without one, the pair named <x> and <x>_fixed."""
    reports = server.api("reports")["reports"]
    by_name = {r["name"]: r for r in reports}
    for b in reports:
        target = ((b.get("manifest") or {}).get("extra") or {}).get("compare_to")
        if target in by_name:
            return by_name[target], b
    for b in reports:
        top = b["name"].split("/")[0]
        if top.endswith("_fixed"):
            a = next((r for r in reports if r["name"].split("/")[0] == top[:-len("_fixed")]), None)
            if a:
                return a, b
    pytest.skip("no before/after report pair (manifest extra.compare_to or <x> / <x>_fixed) in the logdir")


def assert_delta_table(panel, cmp):
    """The per-layer delta rows equal the compare API's changed rows: layer, status and every delta value."""
    changed = [l for l in cmp["layers"] if l["status"] in ("improved", "worse")]
    box = panel.frame.locator("#compare-summary")
    if not changed:
        assert box.locator("#delta-table").count() == 0
        return
    box.locator("details.delta-details > summary").click()    # open "Per-layer deltas"
    table = box.locator("#delta-table")
    table.wait_for()
    keys = list(next(l["delta"] for l in cmp["layers"] if l.get("delta")))
    head = [t.strip() for t in table.locator("tr").first.locator("th").all_inner_texts()]
    assert head == ["layer", "status"] + ["Δ " + k for k in keys]
    rows = table.locator("tr.delta-row")
    assert rows.count() == min(100, len(changed))
    for i, want in enumerate(changed[:100]):
        cells = [t.strip() for t in rows.nth(i).locator("td").all_inner_texts()]
        assert cells[:2] == [want["name"], want["status"]]
        assert rows.nth(i).get_attribute("data-layer") == want["name"]
        for k, text in zip(keys, cells[2:]):
            got, exp = parse_fmt(text), decode(want["delta"].get(k))
            if exp is None or got is None:
                assert got is exp, (want["name"], k, text, exp)
            elif math.isnan(exp):
                assert math.isnan(got), (want["name"], k, text)
            else:
                # fmt(v, 3): three significant digits
                assert math.isclose(got, exp, rel_tol=5e-3, abs_tol=1e-12), (want["name"], k, text, exp)


def test_compare_view_shows_deltas(panel):
    a, b = find_before_after_pair(panel.server)
    cmp = panel.server.api("compare", a=a["id"], b=b["id"])
    f = panel.frame
    status_layers = {st: [l["name"] for l in cmp["layers"] if l["status"] == st] for st in STATUS_COLOR}
    if not any(status_layers.values()):
        pytest.skip(f"{a['name']} -> {b['name']}: no layer changed")
    choose_report(panel, b["id"])
    # Without a baseline: no compare colours in the graph, no B series in the charts.
    graph_sel, chart_sel = "canvas.graph-canvas", "canvas.chart-canvas"
    for st, rgb in STATUS_COLOR.items():
        assert count_pixels(f, graph_sel, rgb) == 0, f"{st} colour drawn before comparing"
    show_view(panel, "chart")
    wait_pixels(f, chart_sel, SERIES)              # the chart is drawn
    assert count_pixels(f, chart_sel, SERIES_B) == 0
    # Pick the baseline in "Compare with".
    f.select_option("#compare-select", a["id"])
    f.wait_for_function("id => window.__xquant.state().cmp === id", arg=a["id"])
    panel.wait_ready()
    box = f.locator("#compare-summary")
    box.wait_for()
    assert box.get_attribute("data-improved") == str(cmp["summary"]["improved"])
    assert box.get_attribute("data-worse") == str(cmp["summary"]["worse"])
    assert box.locator(".stat.good .stat-num").inner_text().strip() == str(cmp["summary"]["improved"])
    assert box.locator(".stat.bad .stat-num").inner_text().strip() == str(cmp["summary"]["worse"])
    assert_delta_table(panel, cmp)
    # The general advice equals the API's; for the demo's before/after pair the countermeasure worked, so the
    # "countermeasure did not improve" advice must be absent.
    general = cmp.get("general") or []
    assert DID_NOT_IMPROVE not in [g["numbers"].get("reason") for g in general]
    cards = box.locator(".verdict[data-judge=general]")
    assert [t.strip() for t in cards.locator(".verdict-msg").all_inner_texts()] == [g["message"].strip() for g in general]
    # Charts overlay B on A: B's colour appears.
    wait_pixels(f, chart_sel, SERIES_B)
    # Graph: each improved / worse layer carries its status colour (its badge), also once its group is
    # collapsed and opened again.
    show_view(panel, "graph")
    collapse_all(panel)
    for st, layers in status_layers.items():
        for layer in layers[:5]:
            if graph_node(panel.server, b["id"], layer) is None:
                continue
            pt = reveal_node(panel, layer)
            wait_pixels(f, graph_sel, STATUS_COLOR[st], rect=[pt["x"] - 130, pt["y"] - 40, pt["x"] + 130, pt["y"] + 25])


def test_compare_shows_did_not_improve_advice(panel):
    """A pair where the compare API gives the "countermeasure did not improve" advice shows it in the panel.

    The backend gives it only when B applied a countermeasure (recorded in its manifest or seen in its
    quantization settings) and nothing improved. The demo's before/after pair taken backwards (B = outlier,
    undoing outlier_fixed's z_threshold) is tried first, then every pair; its absence for the forward pair is
    checked by test_compare_view_shows_deltas."""
    reports = panel.server.api("reports")["reports"]
    ids = [r["id"] for r in reports]
    try:
        before, after = find_before_after_pair(panel.server)
        pairs = [(after["id"], before["id"])]
    except pytest.skip.Exception:
        pairs = []
    for a, b in pairs + list(itertools.permutations(ids, 2)):
        cmp = panel.server.api("compare", a=a, b=b)
        advice = [g for g in cmp.get("general") or [] if g["numbers"].get("reason") == DID_NOT_IMPROVE]
        if advice:
            break
    else:
        pytest.skip("no pair of reports in the logdir gets the 'countermeasure did not improve' advice from the API")
    choose_report(panel, b)
    panel.frame.select_option("#compare-select", a)
    panel.frame.wait_for_function("id => window.__xquant.state().cmp === id", arg=a)
    panel.wait_ready()
    cards = panel.frame.locator("#compare-summary .verdict[data-judge=general]")
    msgs = [t.strip() for t in cards.locator(".verdict-msg").all_inner_texts()]
    assert msgs == [g["message"].strip() for g in cmp["general"]]
    assert advice[0]["message"].strip() in msgs


def test_chart_and_graph_share_the_selection(panel):
    # A report with a flagged chart point (layer b) and another layer (a) far from it, both in the graph.
    for r in panel.server.api("reports")["reports"]:
        rows = panel.server.api("layers", report=r["id"])["layers"]
        in_graph = [i for i, l in enumerate(rows) if l.get("node") and graph_node(panel.server, r["id"], l["name"])]
        flagged = [(i, k) for i in in_graph for k, v in sorted(rows[i]["flags"].items()) if v]
        if flagged and len(in_graph) >= 2:
            i_b, key = flagged[-1]
            i_a = max((i for i in in_graph if i != i_b), key=lambda i: abs(i - i_b))
            rid = r["id"]
            break
    else:
        pytest.skip("no report with a flagged layer and a second layer in the graph")
    layer_a, layer_b = rows[i_a]["name"], rows[i_b]["name"]
    metric, dataset = key.split(".")
    f = panel.frame
    chart = f"canvas.chart-canvas[data-metric={css_attr(metric)}][data-dataset={css_attr(dataset)}]"
    choose_report(panel, rid)

    def chart_x(i):
        # chart.ts has no hook for point coordinates: it leaves its x scale on the canvas (`_X`), and a point's
        # y is read from the pixels below. Wait for a draw at the canvas' current size.
        f.wait_for_function("s => { const c = document.querySelector(s); return c && typeof c._X === 'function' && c.clientWidth > 0 && c.width === Math.round(c.clientWidth * (window.devicePixelRatio || 1)); }", arg=chart)
        return f.evaluate("([s, i]) => document.querySelector(s)._X(i)", [chart, i])

    def wait_chart_selection(i_on, i_off):
        """The selection line runs through the column of layer i_on (over half the height), none through i_off."""
        height = f.evaluate("s => document.querySelector(s).clientHeight", chart)
        f.wait_for_function(
            f"a => {{ const runs = ({COLUMN_RUNS_JS}); const c = document.querySelector(a[0]); "
            "const len = (i) => runs([a[0], c._X(i), a[3]]).reduce((n, r) => n + r[1] - r[0] + 1, 0); "
            "return len(a[1]) >= a[4] && len(a[2]) === 0; }",
            arg=[chart, i_on, i_off, list(SELECTED), height / 2])

    # Graph -> chart: a click on layer a's node marks layer a in the chart.
    click_node(panel, layer_a)
    show_view(panel, "chart")
    wait_chart_selection(i_a, i_b)
    # Chart -> graph: a click on layer b's (flagged, red) point selects it in the side panel and the graph.
    x_b = chart_x(i_b)
    runs = f.evaluate(COLUMN_RUNS_JS, [chart, x_b, list(DEGRADED)])
    y0, y1 = max(runs, key=lambda r: r[1] - r[0], default=(0, -1))
    assert y1 - y0 >= 3, f"no flagged point of {layer_b} drawn in {chart} at x={x_b}: {runs}"
    point = {"x": x_b, "y": (y0 + y1) / 2}
    canvas = f.locator(chart)
    canvas.hover(position=point)
    f.wait_for_selector(".chart-tip .tip-title")
    assert f.locator(".chart-tip .tip-title").inner_text().strip() == f"#{rows[i_b]['index']} {layer_b}"
    canvas.click(position=point)
    wait_layer_shown(panel, layer_b)
    assert panel.state()["layer"] == layer_b
    f.locator("#layer-panel").hover()            # the pointer leaves the chart (its hover line is gone)
    wait_chart_selection(i_b, i_a)
    show_view(panel, "graph")
    f.get_by_role("button", name="Fit", exact=True).click()
    pt_a, pt_b = node_point(panel, layer_a), node_point(panel, layer_b)
    assert inside_canvas(panel, pt_a) and inside_canvas(panel, pt_b), (pt_a, pt_b)
    around = lambda p: [p["x"] - 60, p["y"] - 50, p["x"] + 60, p["y"] + 50]  # noqa: E731
    # The selected node's outline is drawn in the selection colour (anti-aliased: a tolerance).
    wait_pixels(panel.frame, "canvas.graph-canvas", SELECTED, rect=around(pt_b), tol=40, at_least=10)
    assert count_pixels(panel.frame, "canvas.graph-canvas", SELECTED, rect=around(pt_a), tol=40) == 0


def test_state_restored_from_hash(browser, tb):
    reports = tb.api("reports")["reports"]
    rid = reports[-1]["id"]
    layers = tb.api("layers", report=rid)["layers"]
    if not layers:
        pytest.skip("report without layers")
    layer = layers[len(layers) // 2]["name"]
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


def pick_layer_with_manual_and_artifact(server):
    """(report, layer, verdict, artifact): a degraded layer with a verdict that has a manual entry and an
    MCT image of its own (the outlier histogram, for instance)."""
    for r in server.api("reports")["reports"]:
        s = server.api("report", report=r["id"])
        for art in s.get("artifacts") or []:
            if art.get("layer") not in (s.get("degraded_layers") or []):
                continue
            vs = server.api("verdicts", report=r["id"]).get("verdicts") or []
            v = next((v for v in vs if v.get("manual") and art["layer"] in (v.get("layers") or [])), None)
            if v:
                return r["id"], art["layer"], v, art
    pytest.skip("no degraded layer with a verdict and an image of its own in the logdir")


def test_works_under_path_prefix(browser, tb_prefixed):
    srv = tb_prefixed
    prefix = urllib.parse.urlsplit(srv.base).path            # "/foo"
    p, ctx = open_panel(browser, srv)
    responses = []
    ctx.on("response", lambda r: responses.append(r))          # the panel's page and the image's tab
    try:
        assert p.root.get_attribute("data-state") == "ready"
        assert f"{prefix}/" in p.frame.url
        assert not p.errors, "\n".join(p.errors)
        rid, layer, verdict, art = pick_layer_with_manual_and_artifact(srv)
        choose_report(p, rid)
        p.frame.click(f"#degraded-list .degraded-row[data-layer={css_attr(layer)}]")
        wait_layer_shown(p, layer)
        # the countermeasure (manual entry) of the layer's verdict, fetched under the prefix
        assert_manual_shown(p, verdict_card(p, verdict), verdict["manual"])
        # (the iframe's resource timings hold every fetch since it loaded, with the HTTP status)
        fetched = p.frame.evaluate("() => performance.getEntriesByType('resource').map((e) => [e.name, e.responseStatus])")
        manual = [(url, st) for url, st in fetched if urllib.parse.urlsplit(url).path == f"{prefix}/data/plugin/xquant/manual"
                  and urllib.parse.parse_qs(urllib.parse.urlsplit(url).query).get("id") == [verdict["manual"]]]
        assert manual and all(st == 200 for _, st in manual), (manual, fetched)
        # the layer's MCT image opens in a new tab, served under the prefix
        link = p.frame.locator("#layer-panel a.artifact-link", has_text=art["name"])
        href = urllib.parse.urlsplit(link.get_attribute("href"))
        assert href.path == f"{prefix}/data/plugin/xquant/artifact"
        assert urllib.parse.parse_qs(href.query) == {"report": [rid], "id": [art["id"]]}
        with ctx.expect_page() as popup_info:
            link.click()
        popup = popup_info.value
        popup.wait_for_load_state()
        image = [r for r in responses if urllib.parse.urlsplit(r.url).path == href.path and art["id"] in r.url]
        assert image, f"no request for {href.geturl()}"
        assert image[-1].status == 200 and image[-1].headers.get("content-type", "").startswith("image/png")
        assert image[-1].body()[:8] == b"\x89PNG\r\n\x1a\n"
        bad = [f"HTTP {r.status} {r.url}" for r in responses if r.status >= 400 and "/data/plugin/xquant/" in r.url]
        assert not bad and not p.errors, "\n".join(bad + p.errors)
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
        errors = watch_errors(page)
        page.goto(f"{srv.base}/data/plugin_entry.html?name=xquant")
        page.wait_for_selector("#xquant-root[data-state=empty]", timeout=60000)
        text = page.locator("#summary").inner_text()
        assert "No XQuant report found" in text
        assert "xquant_report_troubleshoot_pytorch_experimental" in text
        assert not errors, "console errors:\n" + "\n".join(errors)
    finally:
        ctx.close()
        srv.stop()


def test_chart_view_does_not_wait_for_the_graph(panel):
    """Opened on the chart view, a report's charts are drawn from `layers` alone: the panel does not ask for the graph
    (the largest answer) until the graph view opens, and the graph is drawn then."""
    reports = {r["name"]: r["id"] for r in panel.server.api("reports")["reports"]}
    rid = reports["shift_negative/xquant_report"]
    assert current_report(panel) != rid
    asked = []
    panel.page.on("request", lambda r: asked.append(urllib.parse.urlsplit(r.url)))

    def asked_for(route):
        return [u for u in asked if u.path.endswith("/" + route) and ("report=" + rid) in u.query]

    f = panel.frame
    f.evaluate("h => { location.hash = h; }", "#report=%s&view=chart" % rid)
    f.wait_for_function("id => window.__xquant.state().report === id && document.querySelector('#xquant-root')"
                        ".dataset.state === 'ready'", arg=rid)
    f.wait_for_function("() => { const c = document.querySelector('canvas.chart-canvas'); return c && c.width > 0; }")
    assert asked_for("layers") and asked_for("report")
    assert not asked_for("graph"), "the chart view asked for the graph"
    show_view(panel, "graph")
    for _ in range(200):  # the request starts as the view opens
        if asked_for("graph"):
            break
        panel.page.wait_for_timeout(50)
    assert len(asked_for("graph")) == 1
    f.wait_for_selector("canvas.graph-canvas[data-state=ready]")
