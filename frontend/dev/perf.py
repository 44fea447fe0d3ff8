"""Dev helper: measure graph timings on the fake backend's synthetic reports.
usage: .venv/bin/python frontend/dev/perf.py BASE_URL REPORT_ID"""
import json
import sys
import time
from playwright.sync_api import sync_playwright

ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]
base, rid = sys.argv[1], sys.argv[2]
with sync_playwright() as p:
    b = p.chromium.launch(executable_path="/usr/bin/chromium", args=ARGS)
    pg = b.new_page(viewport={"width": 1400, "height": 900})
    t0 = time.monotonic()
    pg.goto(f"{base}/data/plugin_entry.html?name=xquant#report={rid}")
    pg.wait_for_selector("#xquant-root[data-state=ready]", timeout=120000)
    print("page ready (s)", round(time.monotonic() - t0, 2))
    c = pg.locator("canvas.graph-canvas")
    print({k: c.get_attribute("data-" + k) for k in ["node-count", "visible-count", "model-ms", "layout-ms", "first-draw-ms"]})
    def pan_stats():
        ms = []
        box = c.bounding_box()
        for i in range(30):
            pg.mouse.move(box["x"] + 300, box["y"] + 300)
            pg.mouse.wheel(0, -40 if i % 2 else 40)
            pg.wait_for_timeout(20)
            ms.append(float(c.get_attribute("data-draw-ms")))
        return max(ms), sum(ms) / len(ms)
    print("zoom frames max/avg ms", pan_stats())
    t1 = time.monotonic()
    pg.click("text=Expand all")
    pg.wait_for_selector("canvas.graph-canvas[data-state=ready]", timeout=300000)
    print("expand all (s)", round(time.monotonic() - t1, 2), {k: c.get_attribute("data-" + k) for k in ["visible-count", "layout-ms"]})
    print("zoom frames after expand-all max/avg ms", pan_stats())
    b.close()
