"""Model Explorer (``ai-edge-model-explorer``, offline on loopback) shows the graph tb-xquant exports, with the
node-data overlays painted in our bins' colours (the export: ``tests/test_model_explorer_export.py``).  In
``tests/browser/`` so that it shares the session's Chromium: a second Playwright started in the same process
while the session's is running fails with "using Playwright Sync API inside the asyncio loop"."""
from __future__ import annotations

import re
import time
import urllib.parse

import pytest

from test_model_explorer_export import (CELL_COLOURS_JS, GREEN, RED, ModelExplorerProcess, _chromium, bin_colour,
                                        canvas_colour_counts, export, load, rgb)


@pytest.mark.browser
def test_model_explorer_shows_the_graph_and_overlay_colours(browser, tmp_path, generated_models):
    _chromium()
    m = generated_models["model_60"]
    files = export(m.dir, tmp_path / "me")
    graph = load(files["graph.json"])["graphs"][0]
    overlay = files["nodedata.mse.repr.json"]
    namespaces = {"/".join(n["namespace"].split("/")[:k]) for n in graph["nodes"] if n["namespace"]
                  for k in range(1, n["namespace"].count("/") + 2)}
    top = sorted({n["namespace"].split("/")[0] for n in graph["nodes"] if n["namespace"]})
    with ModelExplorerProcess(files["graph.json"], [files["nodedata.worst.json"], overlay],
                              log_path=tmp_path / "me.log") as me:
        url = me.app_url()
        assert urllib.parse.urlparse(url).hostname == "127.0.0.1"
        ctx = browser.new_context(viewport={"width": 1400, "height": 900})
        try:
            page = ctx.new_page()
            errors = []
            page.on("pageerror", lambda e: errors.append(str(e)))
            page.goto(url)
            # the graph: its node count, and one Model Explorer layer per module scope
            page.wait_for_function("document.body.innerText.includes('%d nodes')" % len(graph["nodes"]),
                                   timeout=60000)
            page.wait_for_function("document.body.innerText.includes('Root-level nodes stats')", timeout=60000)
            info = page.evaluate("document.body.innerText")
            assert re.search(r"op node count\s+%d\b" % len(graph["nodes"]), info), info[:1500]
            assert re.search(r"layer count\s+%d\b" % len(namespaces), info), info[:1500]
            stats = info.split("Root-level nodes stats", 1)[1].split("Node data", 1)[0]
            for scope in top:
                assert re.search(r"\b%s\b" % re.escape(scope), stats), (scope, stats[:800])
            # both overlays are loaded, by their names
            for f in (files["nodedata.worst.json"], overlay):
                assert next(iter(load(f).values()))["name"] in info
            # the node-data table paints each value with our bins (Model Explorer paints the table after its
            # text is in: wait until both colours are in it)
            painted = {"rgb(%d, %d, %d)" % rgb(c): c for c in (RED, GREEN)}
            page.wait_for_function("(cs) => { const got = new Set((%s)().map((c) => c[1]));"
                                   " return cs.every((c) => got.has(c)); }" % CELL_COLOURS_JS.strip(),
                                   arg=list(painted), timeout=60000)
            cells = page.evaluate(CELL_COLOURS_JS)
            gd = next(iter(load(overlay).values()))
            worst = next(iter(load(files["nodedata.worst.json"]).values()))
            seen = set()
            for text, colour, _ in cells:
                if colour not in painted:
                    continue
                v = float(text)
                expect = {bin_colour(gd["thresholds"], v), bin_colour(worst["thresholds"], v)}
                assert painted[colour] in expect, (text, colour)
                seen.add(painted[colour])
            assert seen == {RED, GREEN}, cells[:20]
            # and the graph canvas shows both colours (the layers' value bars): its WebGL frames may come after
            # the table, so screenshots are taken until both are drawn or a minute has passed
            shot = tmp_path / "model_explorer.png"
            deadline = time.monotonic() + 60
            while True:
                page.screenshot(path=str(shot))
                counts = canvas_colour_counts(browser, shot, [rgb(RED), rgb(GREEN)], right_edge=1000)
                if all(counts) or time.monotonic() > deadline:
                    break
                page.evaluate("new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))")
            assert all(counts), counts
            assert not errors, errors
        finally:
            ctx.close()
