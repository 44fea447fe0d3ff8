"""Browser tests for the XQuant panel: a real `tensorboard` subprocess + headless Chromium (Playwright).

Environment:
  TB_XQUANT_DEMO_LOGDIR  logdir with MCT XQuant demo output; if unset or incomplete, tests/conftest.py generates
                         the demo once per session (skipped without MCT).
  TB_XQUANT_CHROMIUM     chromium binary (default /usr/bin/chromium).
  TB_XQUANT_FAKE=1       serve the same logdirs with frontend/dev/dev_server.py (the plugin in TensorBoard's WSGI
                         router, files read directly, no tensorboard process) and open the panel page itself
                         instead of TensorBoard's page (frontend development: quicker, no event loading).

Every test here is marked ``browser`` (tests/conftest.py); those on the demo are ``mct`` too.
"""
import os
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from testkit.procs import DevServerProcess, TensorBoardProcess  # noqa: E402

CHROMIUM = os.environ.get("TB_XQUANT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FAKE = os.environ.get("TB_XQUANT_FAKE") == "1"
READY_TIMEOUT = 120.0


class Server:
    """A running server for the panel: ``base`` (e.g. http://127.0.0.1:1234/foo, no trailing slash), ``api()``
    on the plugin's routes, ``stop()``; ``process`` is the testkit.procs process."""

    def __init__(self, process):
        self.process = process
        self.base = process.base

    def api(self, route, **params):
        return self.process.plugin_json(route, params or None, timeout=60)

    def output(self):
        return self.process.output()

    def stop(self):
        self.process.stop()


def wait_ready(srv: Server, require_plugin_listed=True, timeout=READY_TIMEOUT):
    """The plugin listed (unless not required), ``reports`` answering, and every report that has a graph serving
    its nodes (TensorBoard loads event files in the background; a big report's first build takes a while).
    Polled with a deadline."""
    p = srv.process
    ask = min(60.0, timeout)  # per request: a cold build of a big report answers late, not never
    if require_plugin_listed:
        p.poll("xquant in plugins_listing", lambda: p.get_json("/data/plugins_listing", timeout=ask).get("xquant"),
               timeout)
    reports = p.poll("reports answering", lambda: p.plugin_json("reports", timeout=ask), timeout)["reports"]
    for r in reports:
        if r.get("has_graph"):
            p.poll("graph of %s" % r["name"], lambda: p.plugin_json("graph", {"report": r["id"]}, ask)["nodes"],
                   timeout)
    return reports


def start_server(logdir, tmp_path_factory, path_prefix="", require_plugin_listed=True, dev_server=None,
                 ready_timeout=READY_TIMEOUT):
    """A tensorboard (or, with TB_XQUANT_FAKE=1 or ``dev_server=True``, frontend/dev/dev_server.py) on ``logdir``,
    ready for the panel (``ready_timeout``: seconds for each readiness step)."""
    use_dev = FAKE if dev_server is None else dev_server
    kind = DevServerProcess if use_dev else TensorBoardProcess
    log_path = tmp_path_factory.mktemp("dev_server" if use_dev else "tb") / "server.log"
    srv = Server(kind(str(logdir), path_prefix=path_prefix, log_path=log_path).start(timeout=READY_TIMEOUT))
    try:
        wait_ready(srv, require_plugin_listed, ready_timeout)
    except BaseException:
        srv.stop()
        raise
    return srv


# demo_logdir comes from tests/conftest.py (TB_XQUANT_DEMO_LOGDIR if it holds a generated demo, else generated
# once per session); with TB_XQUANT_FAKE=1 the dev server serves it too.


@pytest.fixture(scope="session")
def chromium_path():
    if not os.path.exists(CHROMIUM):
        reason = f"{CHROMIUM} not found: apt-get install -y chromium"
        if os.environ.get("TB_XQUANT_REQUIRE_ALL") == "1":  # scripts/test.sh: a missing browser fails the run
            pytest.fail(reason + " [TB_XQUANT_REQUIRE_ALL=1]", pytrace=False)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture(scope="session")
def tb(demo_logdir, tmp_path_factory):
    srv = start_server(demo_logdir, tmp_path_factory)
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def tb_prefixed(demo_logdir, tmp_path_factory):
    srv = start_server(demo_logdir, tmp_path_factory, path_prefix="/foo")
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def browser(chromium_path):
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path, args=CHROMIUM_ARGS)
        yield b
        b.close()


class Panel:
    """A loaded XQuant panel: `page` is the TensorBoard page, `frame` the plugin iframe."""

    def __init__(self, page, frame, server, errors):
        self.page, self.frame, self.server, self.errors = page, frame, server, errors

    @property
    def root(self):
        return self.frame.locator("#xquant-root")

    def wait_ready(self, timeout=60000):
        self.frame.wait_for_selector("#xquant-root[data-state=ready]", timeout=timeout)
        self.frame.wait_for_selector("canvas.graph-canvas[data-state=ready], canvas.graph-canvas[data-state=empty]", state="attached", timeout=timeout)

    def state(self):
        return self.frame.evaluate("window.__xquant.state()")

    def hover_title(self, layer):
        """A real pointer move over a layer's node: the canvas's hover text (its title, once it is the text the
        panel computes for that node); the pointer then leaves the node."""
        canvas = self.frame.locator("canvas.graph-canvas")
        pt = self.frame.evaluate("l => window.__xquant.nodePoint(l)", layer)
        canvas.hover(position={"x": pt["x"], "y": pt["y"]})
        self.frame.wait_for_function(
            "l => document.querySelector('canvas.graph-canvas').title === window.__xquant.hoverText(l)", arg=layer)
        title = canvas.get_attribute("title")
        canvas.hover(position={"x": 2, "y": 2})
        return title


def _ignored(url):
    """TensorBoard's own missing assets (its pip package ships no Roboto files) are not the panel's errors."""
    return "/font-roboto/" in url or "favicon" in url


def watch_errors(page, errors=None):
    """Collect the page's console errors, uncaught exceptions and HTTP errors (>= 400) into a list."""
    errors = [] if errors is None else errors

    def on_console(m):
        url = (m.location or {}).get("url", "")
        if m.type == "error" and not _ignored(url):
            errors.append(f"console.{m.type}: {m.text} ({url})")

    page.on("console", on_console)
    page.on("pageerror", lambda e: errors.append(f"pageerror: {e}"))
    page.on("response", lambda r: errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 and not _ignored(r.url) else None)
    return errors


def open_panel(browser, server, hash_=""):
    ctx = browser.new_context(viewport={"width": 1440, "height": 1000})
    page = ctx.new_page()
    errors = watch_errors(page)
    if FAKE:
        page.goto(f"{server.base}/data/plugin_entry.html?name=xquant{hash_}")
        frame = page.main_frame
    else:
        page.goto(f"{server.base}/#xquant")
        page.wait_for_selector("iframe", state="attached", timeout=60000)
        frame = None
        deadline = time.monotonic() + 60
        while frame is None and time.monotonic() < deadline:
            frame = next((f for f in page.frames if "plugin_entry.html" in f.url and "name=xquant" in f.url), None)
            if frame is None:
                page.wait_for_timeout(100)
        assert frame is not None, "XQuant iframe never appeared"
        if hash_:
            frame.evaluate("h => { location.hash = h; }", hash_)
    panel = Panel(page, frame, server, errors)
    panel.wait_ready()
    return panel, ctx


@pytest.fixture
def panel(browser, tb):
    p, ctx = open_panel(browser, tb)
    yield p
    errs = list(p.errors)
    ctx.close()
    assert not errs, "console errors:\n" + "\n".join(errs)
