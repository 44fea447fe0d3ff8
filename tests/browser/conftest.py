"""Browser tests for the XQuant panel: a real `tensorboard` subprocess + headless Chromium (Playwright).

Environment:
  TB_XQUANT_DEMO_LOGDIR  logdir with MCT XQuant demo output; if unset or incomplete, tests/conftest.py generates
                         the demo once per session (skipped without MCT).
  TB_XQUANT_CHROMIUM     chromium binary (default /usr/bin/chromium).
  TB_XQUANT_FAKE=1       run against frontend/dev/fake_server.py instead of tensorboard (frontend development).
"""
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = os.environ.get("TB_XQUANT_CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
FAKE = os.environ.get("TB_XQUANT_FAKE") == "1"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_http(url, proc, timeout=120.0, predicate=lambda body: True):
    """Poll an URL until it answers 200 and predicate(body) holds (readiness; no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before becoming ready")
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                body = r.read()
                if r.status == 200 and predicate(body):
                    return body
        except (urllib.error.URLError, ConnectionError, OSError) as e:
            last = e
        time.sleep(0.25)  # polling interval, not synchronisation
    raise TimeoutError(f"{url} not ready after {timeout}s (last error: {last})")


class Server:
    def __init__(self, base, proc, log):
        self.base = base          # e.g. http://127.0.0.1:1234/foo (no trailing slash)
        self.proc = proc
        self.log = log

    def api(self, route, **params):
        q = urllib.parse.urlencode(params)
        url = f"{self.base}/data/plugin/xquant/{route}" + (f"?{q}" if q else "")
        with urllib.request.urlopen(url, timeout=60) as r:
            return json.loads(r.read())

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
        self.log.close()


import urllib.parse  # noqa: E402


def start_server(logdir, tmp_path_factory, path_prefix="", require_plugin_listed=True):
    port = free_port()
    logf = open(tmp_path_factory.mktemp("tb") / "server.log", "w+")
    if FAKE:
        cmd = [sys.executable, str(REPO / "frontend/dev/fake_server.py"), "--port", str(port)]
        env = dict(os.environ, FAKE_NO_BIG="1")
    else:
        tb = shutil.which("tensorboard", path=str(Path(sys.executable).parent)) or shutil.which("tensorboard")
        if not tb:
            pytest.skip("tensorboard executable not found next to the test interpreter")
        cmd = [tb, "--logdir", str(logdir), "--port", str(port), "--host", "127.0.0.1"]
        env = dict(os.environ)
    if path_prefix:
        cmd += ["--path_prefix", path_prefix]
    proc = subprocess.Popen(cmd, stdout=logf, stderr=subprocess.STDOUT, env=env, cwd=str(REPO))
    base = f"http://127.0.0.1:{port}{path_prefix}"
    srv = Server(base, proc, logf)
    try:
        if FAKE:
            wait_http(f"{base}/data/plugin/xquant/reports", proc)
        else:
            wait_http(f"{base}/data/plugins_listing", proc,
                      predicate=(lambda b: b"xquant" in b) if require_plugin_listed else (lambda b: True))
            body = wait_http(f"{base}/data/plugin/xquant/reports", proc)
            # TensorBoard loads event files in the background: wait until every report that has a graph
            # can serve it (readiness by polling, bounded).
            for r in json.loads(body)["reports"]:
                if r.get("has_graph"):
                    wait_http(f"{base}/data/plugin/xquant/graph?report={r['id']}", proc, timeout=120)
    except Exception:
        logf.seek(0)
        out = logf.read()[-4000:]
        srv.stop()
        raise RuntimeError(f"server failed to start: {' '.join(cmd)}\n{out}")
    return srv


@pytest.fixture(scope="session")
def demo_logdir(request):
    # The real demo comes from the root tests/conftest.py (TB_XQUANT_DEMO_LOGDIR if it holds a generated
    # demo, else generated once per session); the fake backend needs none.
    if FAKE:
        return Path(os.environ.get("TB_XQUANT_DEMO_LOGDIR", "/work/main/demo_logs"))
    return Path(request.getfixturevalue("generated_demo_logdir"))


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
