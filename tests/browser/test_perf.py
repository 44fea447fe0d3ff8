"""Graph performance on large synthetic graphs (5,000 and 20,000 nodes).

Served by frontend/dev/fake_server.py (same JSON API as the backend, see docs/api.md): real MCT demo models are
small, and the performance targets concern the frontend's layout and drawing.
"""
import subprocess
import sys

import pytest

from conftest import REPO, free_port, wait_http


@pytest.fixture(scope="module")
def big_server(tmp_path_factory):
    port = free_port()
    log = open(tmp_path_factory.mktemp("fake") / "fake.log", "w")
    proc = subprocess.Popen([sys.executable, str(REPO / "frontend/dev/fake_server.py"), "--port", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_http(f"http://127.0.0.1:{port}/data/plugin/xquant/reports", proc, timeout=60)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        proc.wait(10)
        log.close()


def open_big(browser, base, rid):
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{base}/data/plugin_entry.html?name=xquant#report={rid}")
    page.wait_for_selector("#xquant-root[data-state=ready]", timeout=120000)
    return ctx, page, errors


def frame_times(page, n=20):
    canvas = page.locator("canvas.graph-canvas")
    box = canvas.bounding_box()
    page.mouse.move(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)
    times = []
    for i in range(n):
        page.mouse.wheel(0, -60 if i % 2 else 60)
        # wait for the frame that the wheel event scheduled
        page.evaluate("() => new Promise(r => requestAnimationFrame(() => requestAnimationFrame(r)))")
        times.append(float(canvas.get_attribute("data-draw-ms")))
    return times


def test_5000_nodes_first_draw_and_frames(browser, big_server):
    ctx, page, errors = open_big(browser, big_server, "big5000")
    try:
        c = page.locator("canvas.graph-canvas")
        assert c.get_attribute("data-node-count") == "5000"
        assert int(c.get_attribute("data-first-draw-ms")) < 1500
        assert int(c.get_attribute("data-visible-count")) <= 400   # collapsed groups by default
        assert max(frame_times(page)) < 16
        assert not errors
    finally:
        ctx.close()


def test_20000_nodes_stay_usable(browser, big_server):
    ctx, page, errors = open_big(browser, big_server, "big20000")
    try:
        c = page.locator("canvas.graph-canvas")
        assert c.get_attribute("data-node-count") == "20000"
        assert max(frame_times(page)) < 16
        # search finds a deep node, selecting it expands its groups and shows the layer
        page.fill("input.search", "b300s2op5")
        page.press("input.search", "Enter")
        page.wait_for_function("document.querySelector('#layer-panel').dataset.layer === 'b300s2op5'", timeout=60000)
        page.wait_for_selector("canvas.graph-canvas[data-state=ready]")
        assert page.evaluate("window.__xquant.nodePoint('b300s2op5')") is not None
        assert max(frame_times(page, 10)) < 16
        assert not errors
    finally:
        ctx.close()
