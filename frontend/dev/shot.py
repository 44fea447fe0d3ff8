"""Dev helper: open the panel (fake or real backend), wait until ready, print console errors, screenshot.
usage: .venv/bin/python frontend/dev/shot.py URL OUT.png [js-to-eval-after-ready]"""
import sys
from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
url, out = sys.argv[1], sys.argv[2]
with sync_playwright() as p:
    b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
    pg = b.new_page(viewport={"width": 1400, "height": 900})
    pg.on("console", lambda m: print("console", m.type, m.text))
    pg.on("pageerror", lambda e: print("pageerror", e))
    pg.goto(url)
    pg.wait_for_selector("#xquant-root[data-state=ready], #xquant-root[data-state=error], #xquant-root[data-state=empty]", timeout=60000)
    if len(sys.argv) > 3:
        print(pg.evaluate(sys.argv[3]))
        pg.wait_for_timeout(1500)
    c = pg.query_selector("canvas.graph-canvas")
    if c:
        print({k: c.get_attribute("data-" + k) for k in ["state", "degraded-count", "node-count", "visible-count", "layout-ms", "draw-ms", "first-draw-ms", "layout-mode"]})
    pg.screenshot(path=out)
    b.close()
