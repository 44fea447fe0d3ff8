"""Panel features on the demo logdir: compare deltas on the graph, the Manual view, shareable links, the count of
degraded boxes drawn, and the empty states that say what to run (fixtures in conftest.py)."""
import math
import re
import shutil
import time
import urllib.parse

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

from conftest import FAKE, open_panel, start_server


# ------------------------------------------------------------------------------------------------ helpers
def report_id(server, name):
    """Report id by its name ("outlier" -> "outlier/xquant_report"), never by list position."""
    for r in server.api("reports")["reports"]:
        if r["name"] == name or r["name"].split("/")[0] == name:
            return r["id"]
    pytest.skip(f"no report named {name!r} in the demo logdir")


def set_panel_hash(panel, hash_, **expect):
    """Put a view into the iframe's hash and wait until the panel has loaded it."""
    panel.frame.evaluate("h => { location.hash = h; }", hash_)
    panel.frame.wait_for_function(
        "e => { const s = window.__xquant.state(); return Object.entries(e).every(([k, v]) => s[k] === v) &&"
        " document.querySelector('#xquant-root').dataset.state === 'ready'; }", arg=expect)
    panel.wait_ready()


def select_report(panel, rid):
    panel.frame.select_option("#report-select", rid)
    panel.frame.wait_for_function("id => window.__xquant.state().report === id && "
                                  "document.querySelector('#xquant-root').dataset.state === 'ready'", arg=rid)
    panel.wait_ready()


def severity(v, thr, under):
    """Backend's detection severity (judges/detection.py): >= 1 means past the threshold."""
    if v is None or thr is None or (isinstance(v, float) and math.isnan(v)):
        return 0.0
    eps = 1e-12
    if under:
        return (abs(thr) + eps) / (abs(v) + eps) if v > 0 else (math.inf if v <= thr else 0.0)
    return (abs(v) + eps) / (abs(thr) + eps)


def expected_badge_key(row, th):
    """The metric whose delta the node badge shows: furthest past its threshold in A or B, else the largest
    change relative to A."""
    best, bs = None, 0.0
    for key in row["delta"]:
        metric, ds = key.rsplit(".", 1)
        thr = th["quantize_error"].get(metric)
        under = bool(th["detect_under"].get(metric))
        s = max(severity(row["a"][ds][metric], thr, under), severity(row["b"][ds][metric], thr, under))
        if s > bs:
            best, bs = key, s
    if best is None:
        best = max(row["delta"], key=lambda k: abs(row["delta"][k]) / (abs(row["a"][k.rsplit(".", 1)[1]][k.rsplit(".", 1)[0]]) + 1e-12))
    return best


def number(text):
    return float(text.replace("−", "-").replace("+", ""))


def close(a, b, digits):
    return math.isclose(a, b, rel_tol=10 ** (1 - digits), abs_tol=1e-12)


def plugin_frame(page, timeout=60):
    if FAKE:
        return page.main_frame
    page.wait_for_selector("iframe", state="attached", timeout=timeout * 1000)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        frame = next((f for f in page.frames if "plugin_entry.html" in f.url and "name=xquant" in f.url), None)
        if frame is not None:
            return frame
        page.wait_for_timeout(100)
    raise AssertionError("XQuant iframe never appeared")


# ------------------------------------------------------------------------------------------------ 1. compare
def test_compare_shows_deltas_on_graph_nodes(panel):
    a, b = report_id(panel.server, "outlier"), report_id(panel.server, "outlier_fixed")
    set_panel_hash(panel, f"#report={b}&cmp={a}", report=b, cmp=a)
    panel.frame.wait_for_selector("#compare-summary")
    panel.frame.wait_for_selector("canvas.graph-canvas[data-compare=on]", state="attached")
    cmp = panel.server.api("compare", a=a, b=b)
    changed = [r for r in cmp["layers"] if r["status"] in ("improved", "worse")]
    assert changed, "the outlier fix should change some layers"
    for row in changed:
        name = row["name"]
        panel.frame.evaluate("l => window.__xquant.selectLayer(l)", name)
        panel.frame.wait_for_function("l => window.__xquant.drawnBadge(l) !== null", arg=name)
        badge = panel.frame.evaluate("l => window.__xquant.drawnBadge(l)", name)
        key = expected_badge_key(row, cmp.get("thresholds") or panel.server.api("report", report=b)["thresholds"])
        m = re.fullmatch(r"([▲▼]) (\S+) (\S+)", badge)
        assert m, badge
        assert m.group(1) == ("▲" if row["status"] == "improved" else "▼"), badge
        assert m.group(2) == key, (badge, key)
        assert close(number(m.group(3)), row["delta"][key], 3), (badge, row["delta"][key])
        # The hover text of the node (a real pointer move over it) lists every metric's delta A -> B.
        title = panel.hover_title(name)
        assert "compare A → B: " + row["status"] in title, title
        for k, d in row["delta"].items():
            lm = re.search(r"^Δ " + re.escape(k) + r" (\S+) \(", title, re.M)
            assert lm, (k, title)
            assert close(number(lm.group(1)), d, 4), (k, lm.group(1), d)


# ------------------------------------------------------------------------------------------------ 2. manual
GENERAL_IDS = {"gptq", "torch-fx-errors", "bias-correction", "representative-dataset-size",
               "mixed-precision-resource-target", "other-tools-techniques"}


def linked_entries(markdown, entries, own_id):
    """Entries an entry's Markdown refers to with an emphasised title (`see *GPTQ*`), as the panel links them."""
    norm = lambda s: re.sub(r"\s+", " ", s).strip().lower()  # noqa: E731
    out = set()
    for phrase in re.findall(r"(?<![*\w])\*([^*`]+?)\*(?!\*)", markdown):
        t = norm(phrase)
        hits = [e for e in entries if norm(e["title"]) == t or norm(e["title"]).startswith(t + " (")
                or norm(e["title"]).startswith(t + ",")]
        if len(t) >= 3 and len(hits) == 1 and hits[0]["id"] != own_id:
            out.add(hits[0]["id"])
    return out


def test_manual_view_lists_every_entry_with_copy_buttons_and_links(panel):
    panel.page.context.grant_permissions(["clipboard-read", "clipboard-write"])
    entries = panel.server.api("manual")["entries"]
    assert GENERAL_IDS <= {e["id"] for e in entries}
    panel.frame.click("button.tab[data-view=manual]")
    panel.frame.wait_for_selector("#manual-list[data-state=ready]")
    items = panel.frame.locator("#manual-list .manual-item")
    assert [items.nth(i).get_attribute("data-entry") for i in range(items.count())] == [e["id"] for e in entries]
    panel.frame.wait_for_selector("#manual-entry[data-state=ready]")

    gptq = panel.server.api("manual", id="gptq")
    panel.frame.click("#manual-list .manual-item[data-entry=gptq]")
    panel.frame.wait_for_selector("#manual-entry[data-state=ready][data-entry=gptq]")
    assert panel.state()["view"] == "manual" and panel.state()["man"] == "gptq"
    assert panel.frame.locator("#manual-entry h2.manual-page-title").inner_text() == gptq["title"]
    # every code block has its Copy button, and it copies that block
    pres = panel.frame.locator("#manual-entry pre")
    assert pres.count() >= 1
    assert panel.frame.locator("#manual-entry .snippet-wrap > button.copy + pre").count() == pres.count()
    first = panel.frame.locator("#manual-entry .snippet-wrap").first
    first.locator("button.copy").click()
    panel.frame.wait_for_selector("#manual-entry button.copy[data-copied='1']")
    copied = panel.page.evaluate("navigator.clipboard.readText()")
    assert copied.strip() == first.locator("pre").text_content().strip()
    # cross-references become in-panel links to exactly the entries the Markdown names
    links = panel.frame.locator("#manual-entry a.manual-link")
    linked = {links.nth(i).get_attribute("data-entry") for i in range(links.count())}
    assert linked == linked_entries(gptq["markdown"], entries, "gptq")
    assert "network-editor-16bit" in linked
    panel.frame.locator("#manual-entry a.manual-link[data-entry=network-editor-16bit]").first.click()
    panel.frame.wait_for_selector("#manual-entry[data-state=ready][data-entry=network-editor-16bit]")
    assert panel.state()["man"] == "network-editor-16bit"
    assert panel.frame.locator("#manual-list .manual-item.active").get_attribute("data-entry") == "network-editor-16bit"


def test_countermeasure_in_side_panel_has_copy_buttons_and_opens_manual(panel):
    rid = report_id(panel.server, "outlier")
    select_report(panel, rid)
    v = next((v for v in panel.server.api("verdicts", report=rid)["verdicts"] if v.get("manual") and v.get("layers")), None)
    if v is None:
        pytest.skip("the outlier report has no verdict with a manual entry")
    panel.frame.evaluate("l => window.__xquant.selectLayer(l)", v["layers"][0])
    card = panel.frame.locator(f"#layer-panel .verdict[data-judge={v['judge']}][data-manual-loaded='1']").first
    card.wait_for()
    pres = card.locator(".manual-html pre")
    assert pres.count() >= 1
    assert card.locator(".manual-html .snippet-wrap > button.copy + pre").count() == pres.count()
    card.locator("a.manual-open").click()
    panel.frame.wait_for_selector(f"#manual-entry[data-state=ready][data-entry={v['manual']}]")
    assert panel.state()["view"] == "manual"


# ------------------------------------------------------------------------------------------------ 3. link
def test_copy_link_restores_the_view_in_a_fresh_page(browser, tb):
    panel, ctx = open_panel(browser, tb)
    try:
        ctx.grant_permissions(["clipboard-read", "clipboard-write"])
        a, b = report_id(tb, "outlier"), report_id(tb, "outlier_fixed")
        layer = next(r["name"] for r in tb.api("compare", a=a, b=b)["layers"] if r["status"] == "improved")
        set_panel_hash(panel, f"#report={b}&layer={urllib.parse.quote(layer)}&view=chart&cmp={a}&thr.mse=0.05&z=4",
                       report=b, layer=layer, view="chart", cmp=a)
        want = panel.state()
        assert want["t"]["thr"] == {"mse": "0.05"} and want["t"]["z"] == "4"
        if not FAKE:
            # TensorBoard's own address bar follows the panel: `#xquant&...&xq=<panel state>`
            panel.page.wait_for_function("() => location.hash.includes('xq=')")
            assert panel.page.url.split("#", 1)[1].split("&")[0] == "xquant"
        panel.frame.click("#copy-link")
        panel.frame.wait_for_selector("#copy-link[data-copied='1']")
        url = panel.frame.locator("#copy-link").get_attribute("data-url")
        assert panel.page.evaluate("navigator.clipboard.readText()") == url
        if not FAKE:
            assert url.startswith(tb.base + "/#xquant&"), url
    finally:
        ctx.close()
    fresh = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        page = fresh.new_page()
        errors = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(url)
        frame = plugin_frame(page)
        frame.wait_for_selector("#xquant-root[data-state=ready]", timeout=60000)
        frame.wait_for_selector(f"#layer-panel[data-state=ready][data-layer='{layer}']")
        assert frame.evaluate("window.__xquant.state()") == want
        assert frame.locator("#report-select").input_value() == b
        assert frame.locator("#compare-select").input_value() == a
        assert frame.locator("button.tab[data-view=chart]").get_attribute("aria-selected") == "true"
        assert frame.locator("#compare-summary").count() == 1
        assert float(frame.locator("#thr-mse").input_value()) == 0.05
        assert float(frame.locator("#thr-z").input_value()) == 4
        assert not errors, errors
    finally:
        fresh.close()


# ------------------------------------------------------------------------------------------------ 4. drawn count
def drawn_degraded(panel, expected):
    try:
        panel.frame.wait_for_function("n => document.querySelector('canvas.graph-canvas').dataset.drawnDegraded === String(n)",
                                      arg=expected, timeout=10000)
    except PlaywrightTimeout:
        pass  # reported by the caller's assertion with the value drawn
    return int(panel.frame.locator("canvas.graph-canvas").get_attribute("data-drawn-degraded"))


def relayout(panel, button):
    panel.frame.click(f".graph-toolbar button:text-is('{button}')")
    panel.frame.wait_for_selector("canvas.graph-canvas[data-state=ready]", state="attached")


def test_degraded_boxes_drawn_match_the_summary(panel):
    checked = 0
    for r in panel.server.api("reports")["reports"]:
        if not r.get("has_graph"):
            continue
        summary = panel.server.api("report", report=r["id"])
        n = len(summary["degraded_layers"])
        if not n:
            continue
        select_report(panel, r["id"])
        panel.frame.evaluate("() => window.__xquant.selectLayer(null)")
        for button in (None, "Collapse all", "Expand all"):
            if button:
                relayout(panel, button)
            panel.frame.click(".graph-toolbar button:text-is('Fit')")
            assert drawn_degraded(panel, n) == n, (r["name"], button or "default expansion")
        checked += 1
    assert checked, "no demo report has degraded layers"


# ------------------------------------------------------------------------------------------------ 5. empty states
def test_weight_bits_shown_when_known(panel):
    rid = report_id(panel.server, "outlier")
    select_report(panel, rid)
    layers = panel.server.api("layers", report=rid)["layers"]
    for l in layers:
        q = panel.server.api("layer", report=rid, layer=l["name"]).get("quant") or {}
        if isinstance(q.get("weights_nbits"), int):
            break
    else:
        pytest.skip("no layer of the outlier report has a known weight bit width")
    panel.frame.evaluate("l => window.__xquant.selectLayer(l)", l["name"])
    panel.frame.wait_for_function("l => document.querySelector('#layer-panel').dataset.layer === l && "
                                  "document.querySelector('#layer-panel').dataset.state === 'ready'", arg=l["name"])
    row = panel.frame.locator("#quant-config tr[data-key=weights_nbits] td").nth(1)
    assert row.inner_text().strip() == str(q["weights_nbits"])
    assert panel.frame.locator("#weights-bits[data-state=unknown]").count() == 0


@pytest.fixture(scope="module")
def bare_logdir(demo_logdir, tmp_path_factory):
    """`no_bits`: a copy of the demo's outlier report folder without the manifest and MCT's logs (weight bit widths
    unknown); `no_metrics`: a report folder whose quant_report.json is empty and that has no XQuant graph (no
    per-layer metrics at all)."""
    if FAKE:
        pytest.skip("needs the real demo report files")
    src = demo_logdir / "outlier" / "xquant_report"
    if not (src / "quant_report.json").exists():
        pytest.skip("demo logdir has no outlier report")
    root = tmp_path_factory.mktemp("bare")
    skip = shutil.ignore_patterns("tb_xquant_manifest.json", "logs_*", "mct_logs*")
    shutil.copytree(src, root / "no_bits" / "xquant_report", ignore=skip)
    (root / "no_metrics" / "xquant_report").mkdir(parents=True)
    (root / "no_metrics" / "xquant_report" / "quant_report.json").write_text("{}")
    return root


@pytest.fixture(scope="module")
def tb_bare(bare_logdir, tmp_path_factory):
    srv = start_server(bare_logdir, tmp_path_factory)
    yield srv
    srv.stop()


def test_empty_states_say_what_to_run(browser, tb_bare):
    panel, ctx = open_panel(browser, tb_bare)
    try:
        # no quant_report.json: the charts say which call writes it
        select_report(panel, report_id(tb_bare, "no_metrics"))
        panel.frame.click("button.tab[data-view=chart]")
        empty = panel.frame.locator("#charts-empty")
        empty.wait_for()
        text = empty.inner_text()
        assert "quant_report.json" in text
        assert "XQuantConfig(report_dir=" in text and "xquant_report_with_manifest(" in text
        assert "Reload" in text
        # no manifest, no stage logs: the layer panel says the weight bit width is unknown and how to get it
        rid = report_id(tb_bare, "no_bits")
        select_report(panel, rid)
        layer = next(l for l in tb_bare.api("layers", report=rid)["layers"] if l["op"] in ("Conv2d", "Linear"))
        q = tb_bare.api("layer", report=rid, layer=layer["name"]).get("quant") or {}
        assert q.get("weights_nbits") is None
        panel.frame.evaluate("l => window.__xquant.selectLayer(l)", layer["name"])
        note = panel.frame.locator("#layer-panel #weights-bits[data-state=unknown]")
        note.wait_for()
        text = note.inner_text()
        assert "Weight bit width unknown" in text
        assert "tb_xquant_plugin.mct_run.xquant_report_with_manifest" in text and "mct.set_log_folder" in text
        assert not [e for e in panel.errors if e.startswith("pageerror")], panel.errors
    finally:
        ctx.close()


# ------------------------------------------------------------------------------------------------ concat checks
def test_concat_joins_listed_with_ratio(panel):
    rid = report_id(panel.server, "unbalanced_concat")
    cs = panel.server.api("report", report=rid).get("concat_summary")
    if not cs or not cs.get("joins"):
        pytest.skip("this backend sends no concat_summary")
    checks = panel.server.api("verdicts", report=rid)["concat_checks"]
    select_report(panel, rid)
    section = panel.frame.locator("#concat-checks")
    assert int(section.get_attribute("data-joins")) == cs["joins"] == len(checks)
    section.locator("summary").click()
    panel.frame.wait_for_selector("#concat-checks[open][data-state=all]")
    rows = section.locator("tr.concat-row")
    assert rows.count() == len(checks)
    for i, c in enumerate(checks):
        row = rows.nth(i)
        assert row.get_attribute("data-node") == c["node"]
        assert row.get_attribute("data-flagged") == ("1" if c["flagged"] else "0")
        cell = row.locator("td").nth(2).inner_text().replace("⚠", "").strip()
        if c["ratio"] is None:
            assert cell == "—"
        else:
            assert close(float(cell), c["ratio"], 3), (cell, c["ratio"])
        for inp in c["inputs"]:
            assert inp["name"] in row.locator("td").nth(1).inner_text()


# ------------------------------------------------------------------------------------------------ z control
def test_z_control_under_the_histogram_replays_the_clip(panel):
    """Dragging the z control redraws the clip and shows the replay the backend computes for that z (GET replay):
    at the outlier verdict's z_threshold a real outlier tail, far out in the tail no effect."""
    rid = report_id(panel.server, "outlier")
    select_report(panel, rid)
    (v,) = [v for v in panel.server.api("verdicts", report=rid)["verdicts"]
            if v["judge"] == "outlier_removal" and v["source"] == "computed" and v["numbers"].get("actionable")][:1]
    layer, z = v["layers"][0], v["numbers"]["z_threshold"]
    panel.frame.evaluate("l => window.__xquant.selectLayer(l)", layer)
    f = panel.frame
    f.wait_for_selector(f"#layer-panel[data-state=ready][data-layer='{layer}'] #z-control")
    top = float(f.get_attribute("#z-control", "max"))  # beyond the largest z-score of the layer
    for zz, finding in ((z, "real_outlier_tail"), (top, "no_effect")):
        want = panel.server.api("replay", report=rid, layer=layer, clip_z=zz)
        assert want["replay"]["finding"] == finding
        f.evaluate("z => { const i = document.querySelector('#z-control'); i.value = String(z);"
                   " i.dispatchEvent(new Event('input')); }", zz)
        f.wait_for_function("z => { const o = document.querySelector('#z-replay');"
                            " return o.dataset.state === 'ready' && Number(o.dataset.z) === z; }", arg=float(zz))
        out = f.locator("#z-replay")
        assert out.get_attribute("data-finding") == finding
        assert out.locator("div").first.inner_text() == want["text"]
