"""Hostile layer names in the real panel: a copy of the demo's ``outlier`` scenario (real MCT 2.6.1 output) whose
layer names are rewritten consistently — in ``quant_report.json``, ``troubleshoot_report.json``, the manifest,
the outlier PNG's file name, and every event file (the XQuant graph's node names and inputs, the histogram tags,
the MCT stage graphs) — into HTML / script payloads, a 10,000-character name and odd Unicode.

Loaded in Chromium against a real ``tensorboard --logdir`` process: the XQuant tab is opened, each hostile layer
is selected (search box + Enter, a real click on the graph canvas, the degraded-layer list, the URL hash), its
details and verdicts are shown, and after every step: ``window.__pwned`` is undefined in the plugin iframe and the
TensorBoard page, no dialog fired, no console error, no element was injected, and the raw name is there as text.
"""
from __future__ import annotations

import json
import shutil
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import FAKE, _ignored, start_server

pytestmark = pytest.mark.skipif(FAKE, reason="needs the real backend and real MCT output")

IMG = "<img src=x onerror=window.__pwned=1>"
SCRIPT = "<script>window.__pwned=2</script>"
SVG = '"><svg onload=window.__pwned=3>'
ALERT = "quote'\"\\&amp;&lt;<img src=y onerror=alert(5)>"
UNICODE = "Ünïcødé 😀 \u202eRTL\u202c zero\u200bwidth e\u0301 𝔘𝔫𝔦 ﷽ 量子化"
LONG = ("<i>量子化レイヤー😀" * 1200)[:10000]
# demo layer name -> hostile name.  SCRIPT holds a '/', which TensorBoard graphs read as a name-scope separator:
# its graph node is split (no node maps to the layer), the layer itself is still listed from quant_report.json.
RENAME = {"project_conv_bn": IMG, "head": SCRIPT, "mix_conv_bn": SVG, "pre1_conv_bn": ALERT,
          "expand_conv_bn": UNICODE, "stem_conv_bn": LONG}
SUFFIXES = ("_layer", ".weights", ".activation")


def _component(c: str) -> str:
    for suffix in SUFFIXES:
        if c.endswith(suffix) and c[: -len(suffix)] in RENAME:
            return RENAME[c[: -len(suffix)]] + suffix
    return RENAME.get(c, c)


def _node_ref(ref: str) -> str:
    """Rename a node name or an input reference (``^name``, ``name:0``) component by component."""
    ctrl = "^" if ref.startswith("^") else ""
    core = ref[len(ctrl):]
    port = ""
    head, sep, tail = core.rpartition(":")
    if sep and tail.isdigit():
        core, port = head, ":" + tail
    return ctrl + "/".join(_component(c) for c in core.split("/")) + port


def _rename_json(obj):
    if isinstance(obj, dict):
        return {_rename_json(k) if isinstance(k, str) else k: _rename_json(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_rename_json(v) for v in obj]
    if isinstance(obj, str):
        if obj in RENAME:
            return RENAME[obj]
        p = Path(obj)
        if p.suffix == ".png" and p.stem in RENAME:  # outlier histogram paths in troubleshoot_report.json
            return str(p.with_name(RENAME[p.stem] + ".png"))
    return obj


def _rewrite_events(path: Path):
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.compat.proto import event_pb2
    from tensorboard.compat.proto.graph_pb2 import GraphDef
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    events = []
    for raw in event_file_loader.RawEventFileLoader(str(path)).Load():
        ev = event_pb2.Event.FromString(raw)
        if ev.HasField("file_version"):
            continue  # the writer adds its own
        if ev.HasField("graph_def"):
            g = GraphDef()
            g.ParseFromString(ev.graph_def)
            for n in g.node:
                n.name = _node_ref(n.name)
                renamed = [_node_ref(i) for i in n.input]
                del n.input[:]
                n.input.extend(renamed)
            ev.graph_def = g.SerializeToString()
        if ev.HasField("summary"):
            for v in ev.summary.value:
                v.tag = RENAME.get(v.tag, v.tag)
        events.append(ev)
    path.unlink()
    w = EventFileWriter(str(path.parent))
    for ev in events:
        w.add_event(ev)
    w.close()


def make_hostile_report(demo_logdir: Path, dst: Path) -> Path:
    shutil.copytree(demo_logdir / "outlier", dst)
    rd = dst / "xquant_report"
    for name in ("quant_report.json", "troubleshoot_report.json", "tb_xquant_manifest.json"):
        p = rd / name
        p.write_text(json.dumps(_rename_json(json.loads(p.read_text(encoding="utf-8"))), ensure_ascii=False),
                     encoding="utf-8")
    for png in (rd / "outlier_histgrams").glob("*.png"):
        if png.stem in RENAME:
            png.rename(png.with_name(RENAME[png.stem] + ".png"))
    for ev in [p for p in dst.rglob("*") if "tfevents" in p.name]:
        _rewrite_events(ev)
    return rd


@pytest.fixture(scope="module")
def hostile_logdir(demo_logdir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile_names")
    make_hostile_report(Path(demo_logdir), root / "hostile")
    return root


@pytest.fixture(scope="module")
def hostile_tb(hostile_logdir, tmp_path_factory):
    srv = start_server(hostile_logdir, tmp_path_factory)
    yield srv
    srv.stop()


# --------------------------------------------------------------------------------------------
# the panel, with dialogs / console / injection watched from before the first script runs
# --------------------------------------------------------------------------------------------
NO_INJECTION_JS = """() => ({
  pwned: typeof window.__pwned,
  injected: document.querySelectorAll('img[src="x"], img[src="y"], [onerror], [onload], svg[onload]').length,
  scripts: [...document.querySelectorAll('script')].filter((s) => s.textContent.includes('__pwned')).length,
})"""


class HostilePanel:
    def __init__(self, browser, server, hash_=""):
        self.ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
        self.page = self.ctx.new_page()
        self.dialogs, self.errors = [], []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda e: self.errors.append("pageerror: %s" % e))
        self.page.on("response", lambda r: self.errors.append("HTTP %s %s" % (r.status, r.url))
                     if r.status >= 400 and not _ignored(r.url) else None)
        self.page.goto(server.base + "/#xquant")
        self.frame = None
        deadline = time.monotonic() + 60
        while self.frame is None and time.monotonic() < deadline:
            self.frame = next((f for f in self.page.frames if "plugin_entry.html" in f.url and "name=xquant" in f.url),
                              None)
            if self.frame is None:
                self.page.wait_for_timeout(100)  # polling interval of the deadline loop
        assert self.frame is not None, "XQuant iframe never appeared"
        if hash_:
            self.frame.evaluate("h => { location.hash = h; }", hash_)
        self.frame.wait_for_selector("#xquant-root[data-state=ready]", timeout=60000)
        self.frame.wait_for_selector("canvas.graph-canvas[data-state=ready]", state="attached", timeout=60000)

    def _console(self, m):
        url = (m.location or {}).get("url", "")
        if m.type == "error" and not _ignored(url):
            self.errors.append("console.error: %s (%s)" % (m.text, url))

    def wait_layer(self, name):
        try:
            self.frame.wait_for_function(
                "l => { const p = document.querySelector('#layer-panel'); "
                "return (p.dataset.layer === l && p.dataset.state === 'ready') || p.dataset.state === 'error'; }",
                arg=name, timeout=30000)
            ok = self.frame.evaluate("l => { const p = document.querySelector('#layer-panel'); "
                                     "return p.dataset.layer === l && p.dataset.state === 'ready'; }", name)
        except Exception:
            ok = False
        if not ok:
            panel = self.frame.evaluate("() => { const p = document.querySelector('#layer-panel'); "
                                        "return {layer: (p.dataset.layer || '').slice(0, 80), state: p.dataset.state, "
                                        "text: p.textContent.slice(0, 300)}; }")
            pytest.fail("layer %r never shown: panel %s, state %s, errors %s" % (
                name[:60], panel, json.dumps(self.frame.evaluate("window.__xquant.state()"))[:300],
                [e[:300] for e in self.errors]))

    def layer_panel_text(self) -> str:
        return self.frame.locator("#layer-panel").evaluate("e => e.textContent")

    def assert_clean(self, when):
        for where, target in (("iframe", self.frame), ("page", self.page)):
            state = target.evaluate(NO_INJECTION_JS)
            assert state == {"pwned": "undefined", "injected": 0, "scripts": 0}, (when, where, state)
        assert not self.dialogs, (when, self.dialogs)
        assert not self.errors, (when, self.errors)

    def close(self):
        self.ctx.close()


def test_hostile_names_through_the_api(hostile_tb, scenarios):
    """The rewrite is consistent: the API lists the hostile names as layers, graph nodes and verdicts."""
    (r,) = hostile_tb.api("reports")["reports"]
    assert r["problems"] == [] and r["has_graph"] and r["has_histograms"] and r["stage_logs"]
    s = hostile_tb.api("report", report=r["id"])
    assert s["degraded_layers"] == [RENAME.get(n, n) for n in scenarios["outlier"].mct_degraded]
    vs = hostile_tb.api("verdicts", report=r["id"])["verdicts"]
    assert {(v["judge"], v["source"], tuple(v["layers"])) for v in vs} >= {
        ("outlier_removal", "computed", (IMG,)), ("outlier_removal", "mct", (IMG,))}
    layers = [l["name"] for l in hostile_tb.api("layers", report=r["id"])["layers"]]
    original = scenarios["outlier"].quant_report["intermediate_similarity_metrics_repr"]
    assert layers == [RENAME.get(n, n) for n in original]
    g = hostile_tb.api("graph", report=r["id"])
    by_layer = {n["layer"]: n for n in g["nodes"] if n["layer"]}
    assert set(by_layer) == set(layers) - {SCRIPT}  # the '/' in SCRIPT splits its node (see RENAME)
    assert by_layer[IMG]["judges"] == ["outlier_removal"]
    d = hostile_tb.api("layer", report=r["id"], layer=IMG)
    assert d["name"] == IMG and d["histogram"] and d["quant"]["activation_nbits"] == 8
    assert any(a["layer"] == IMG for a in s["artifacts"])


def test_hostile_names_in_the_panel(browser, hostile_tb):
    p = HostilePanel(browser, hostile_tb)
    try:
        f = p.frame
        p.assert_clean("panel loaded")
        # the degraded-layer list holds the raw names as text
        rows = f.locator("#degraded-list .degraded-row .name")
        assert rows.evaluate_all("els => els.map(e => e.textContent)") == [IMG, SVG, SCRIPT]

        # 1. search box + Enter: the <img> layer, with its outlier verdicts, manual and PNG link
        f.locator("input.search").fill("<img src=x")
        f.wait_for_selector(".search-results .search-hit")
        f.locator("input.search").press("Enter")
        p.wait_layer(IMG)
        assert f.locator("#layer-panel .layer-name").evaluate("e => e.textContent") == IMG
        card = f.locator("#layer-panel .verdict[data-judge=outlier_removal]").first
        card.wait_for()
        f.wait_for_selector("#layer-panel .verdict[data-judge=outlier_removal][data-manual-loaded='1']")
        assert IMG in card.locator(".verdict-layers").evaluate("e => e.textContent")
        assert f.locator("#layer-panel .verdict[data-judge=outlier_removal][data-source=mct]").count() == 1
        links = f.locator("#layer-panel a.artifact-link").evaluate_all("els => els.map(e => e.textContent)")
        assert links == [IMG + ".png"]
        assert IMG in p.layer_panel_text()
        p.assert_clean("img layer selected")

        # 2. a real click on the graph canvas: the "><svg> layer
        pt = f.evaluate("l => window.__xquant.nodePoint(l)", SVG)
        if pt is None:  # not laid out yet: selecting it expands its group, then deselect and click
            f.evaluate("l => window.__xquant.selectLayer(l)", SVG)
            p.wait_layer(SVG)
            f.evaluate("() => window.__xquant.selectLayer(null)")
            f.wait_for_selector("#layer-panel[data-state=empty]")
            pt = f.evaluate("l => window.__xquant.nodePoint(l)", SVG)
        assert pt is not None
        f.locator("canvas.graph-canvas").click(position={"x": pt["x"], "y": pt["y"]})
        p.wait_layer(SVG)
        assert f.locator("#layer-panel .layer-name").evaluate("e => e.textContent") == SVG
        p.assert_clean("svg layer clicked")

        # 3. the degraded-layer list: the <script> layer (no graph node maps to it)
        f.locator("#degraded-list .degraded-row").nth(2).click()
        p.wait_layer(SCRIPT)
        assert "<script>window.__pwned=2</script>" in p.layer_panel_text()
        assert f.locator("#layer-panel .layer-name").evaluate("e => e.textContent") == SCRIPT
        p.assert_clean("script layer from the list")

        # 4. the Unicode name and the quote/entity/alert name through the search box
        for name, query in ((UNICODE, "Ünïcødé 😀"), (ALERT, "&amp;&lt;<img src=y")):
            search = f.locator("input.search")
            search.fill(query)
            f.wait_for_selector(".search-results .search-hit")
            search.press("Enter")
            p.wait_layer(name)
            assert f.locator("#layer-panel .layer-name").evaluate("e => e.textContent") == name
            p.assert_clean("search %r" % query[:20])
        # the hash carries the name; the entity text stays literal
        assert "&amp;&lt;" in p.layer_panel_text()
        state = f.evaluate("window.__xquant.state()")
        assert state["layer"] == ALERT

        # 5. the chart view with every hostile layer plotted
        f.evaluate("h => { location.hash = h; }", "#" + urllib.parse.urlencode(
            {"report": state["report"], "layer": IMG, "view": "chart"}))
        f.wait_for_selector("canvas.chart-canvas", state="attached")
        p.wait_layer(IMG)
        p.assert_clean("chart view")
    finally:
        p.close()


def test_long_cjk_name_in_the_panel(browser, hostile_tb):
    """The 10,000-character name (CJK + emoji: ~90 KB once percent-encoded, over the 64 KB request line the
    server accepts) through the search box: its details load (the panel asks by index) and show the whole name
    as text; the ``layer`` route answers for its index through the real server."""
    (r,) = hostile_tb.api("reports")["reports"]
    row = next(l for l in hostile_tb.api("layers", report=r["id"])["layers"] if l["name"] == LONG)
    assert hostile_tb.api("layer", report=r["id"], index=row["index"])["name"] == LONG
    p = HostilePanel(browser, hostile_tb)
    try:
        f = p.frame
        search = f.locator("input.search")
        search.fill(LONG[:40])
        f.wait_for_selector(".search-results .search-hit")
        search.press("Enter")
        p.wait_layer(LONG)
        assert f.locator("#layer-panel .layer-name").evaluate("e => e.textContent") == LONG
        assert f.evaluate("window.__xquant.state()")["layer"] == LONG
        p.assert_clean("long name")
    finally:
        p.close()


def test_the_checks_catch_an_injection(browser, hostile_tb):
    """Self-test of ``assert_clean``: the same name inserted as markup (what the panel must never do) is caught,
    whether or not a Content-Security-Policy stops its handler from running (then the element itself is found)."""
    p = HostilePanel(browser, hostile_tb)
    try:
        p.assert_clean("before")
        p.frame.evaluate("n => { const d = document.createElement('div'); d.innerHTML = n; document.body.append(d); }",
                         IMG)
        p.frame.wait_for_function("document.querySelector('img[src=\"x\"]') !== null")
        with pytest.raises(AssertionError):
            p.assert_clean("after an innerHTML insertion")
    finally:
        p.close()


def test_hostile_layer_restored_from_hash(browser, hostile_tb):
    """A shared link naming the <script> layer opens it (the hash is data, never markup)."""
    (r,) = hostile_tb.api("reports")["reports"]
    h = "#" + urllib.parse.urlencode({"report": r["id"], "layer": SCRIPT})
    p = HostilePanel(browser, hostile_tb, h)
    try:
        p.wait_layer(SCRIPT)
        assert p.frame.locator("#layer-panel .layer-name").evaluate("e => e.textContent") == SCRIPT
        assert p.frame.locator("#degraded-list .degraded-row.selected .name").evaluate("e => e.textContent") == SCRIPT
        p.assert_clean("restored from hash")
    finally:
        p.close()
