"""Server subprocesses for the tests and the benchmarks.

    from testkit.procs import TensorBoardProcess, free_port

    with TensorBoardProcess(logdir, load_fast="false", reload_interval=1, log_path=tmp / "tb.log") as tb:
        status, ctype, body = tb.request("/data/plugin/xquant/reports")
        reports = tb.get_json("/data/plugin/xquant/reports")["reports"]
        tb.poll("the tab is enabled", lambda: tb.get_json("/data/plugins_listing")["xquant"]["enabled"])

``start()`` (also called by ``with``) spawns the process and returns once its HTTP port answers (polled, with a
deadline; no fixed sleeps).  Every wait fails with the tail of the process's log.  ``stop()`` terminates it
(SIGTERM, then SIGKILL after a grace period) and is safe to call twice.

HTTP goes through ``http.client`` straight to 127.0.0.1 (``urllib`` would honour ``http_proxy``).
"""
from __future__ import annotations

import http.client
import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Sequence, Tuple, Union

REPO = Path(__file__).resolve().parents[1]
HOST = "127.0.0.1"
PLUGIN_PREFIX = "/data/plugin/xquant/"
POLL_INTERVAL = 0.1  # how often a deadline loop looks again (never a synchronisation delay)
START_TIMEOUT = 120.0  # seconds until the HTTP port must answer (TensorBoard on 2 busy cores: ~3-10 s)
BIND_RETRIES = 3  # a free_port() port taken by someone else before the server bound it: retry on a new one

PathLike = Union[str, os.PathLike]


def free_port(host: str = HOST) -> int:
    """A TCP port nothing listens on right now (picked by the OS; another process may still take it before it is
    used, which ``ServerProcess.start`` retries)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


class Answer(NamedTuple):
    """One HTTP answer; unpacks as ``status, content_type, body``."""

    status: int
    content_type: str
    body: bytes


class UnexpectedAnswer(AssertionError):
    """An answer that is not the expected one (status or content type); ``answer`` holds it."""

    def __init__(self, message: str, answer: Optional[Answer] = None):
        super().__init__(message)
        self.answer = answer


class ServerExited(RuntimeError):
    """The server process ended while it was expected to serve."""


# errors a poll treats as "not yet": the server is not listening yet, or answers something else for now
NOT_YET = (OSError, ValueError, KeyError, TypeError, http.client.HTTPException, UnexpectedAnswer)


class ServerProcess:
    """A local HTTP server subprocess on a free port of 127.0.0.1, with its output in a log file.

    Subclasses say what to run (``command(port)``); this class spawns it, waits for the port, talks HTTP to it,
    polls for conditions and stops it."""

    name = "server"
    ready_path = "/"  # any HTTP answer on it means the server is up

    def __init__(self, *, port: Optional[int] = None, host: str = HOST, path_prefix: str = "",
                 env: Optional[Dict[str, str]] = None, log_path: Optional[PathLike] = None,
                 delete_log: bool = False, cwd: Optional[PathLike] = REPO, start_timeout: float = START_TIMEOUT):
        self.host = host
        self._fixed_port = port is not None
        self.port = port if port is not None else free_port(host)
        self.path_prefix = path_prefix.rstrip("/")
        self.env = dict(env or {})
        self.cwd = None if cwd is None else str(cwd)
        self.start_timeout = start_timeout
        if log_path is None:
            fd, log_path = tempfile.mkstemp(prefix="tb_xquant_%s_" % self.name, suffix=".log")
            os.close(fd)
        self.log_path = str(log_path)
        self.delete_log = delete_log
        self.proc: Optional[subprocess.Popen] = None
        self.started: Optional[float] = None  # time.monotonic() of the (last) spawn
        self._log = None
        self.cmd: List[str] = self.command(self.port)

    # -- what to run -----------------------------------------------------------------------------
    def command(self, port: int) -> List[str]:
        raise NotImplementedError

    # -- addresses --------------------------------------------------------------------------------
    @property
    def origin(self) -> str:
        return "http://%s:%d" % (self.host, self.port)

    @property
    def base(self) -> str:
        """Base URL, path prefix included, without a trailing slash (``http://127.0.0.1:6006/foo``)."""
        return self.origin + self.path_prefix

    def url(self, path: str, params: Optional[Dict[str, Any]] = None) -> str:
        return self.base + _path_with_query(path, params)

    @property
    def pid(self) -> int:
        assert self.proc is not None, "not started"
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    # -- lifecycle ---------------------------------------------------------------------------------
    def spawn(self) -> "ServerProcess":
        """Start the process without waiting for it (``wait_up()`` waits)."""
        if self.proc is not None:
            raise RuntimeError("%s already started" % self.name)
        self._log = open(self.log_path, "w+", errors="replace")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        env.update(self.env)
        self.started = time.monotonic()
        self.proc = subprocess.Popen(self.cmd, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=self.cwd,
                                     stdin=subprocess.DEVNULL)
        return self

    def wait_up(self, timeout: Optional[float] = None) -> float:
        """Poll until the HTTP port answers (any status); returns the seconds since the spawn."""
        self.poll("%s answering on %s" % (self.name, self.url(self.ready_path)),
                  lambda: self.request(self.ready_path, timeout=5.0) is not None,
                  self.start_timeout if timeout is None else timeout)
        return time.monotonic() - (self.started or time.monotonic())

    def start(self, timeout: Optional[float] = None) -> "ServerProcess":
        """Spawn and wait until the port answers.  A port taken in between (``free_port`` races) is retried on a
        new free port unless the port was given."""
        for attempt in range(BIND_RETRIES + 1):
            self.spawn()
            try:
                self.wait_up(timeout)
                return self
            except ServerExited:
                if self._fixed_port or attempt == BIND_RETRIES or not self._port_was_taken():
                    self.stop()
                    raise
                self.stop(keep_log=True)
                self.port = free_port(self.host)
                self.cmd = self.command(self.port)
                self.proc = None
            except BaseException:
                self.stop()
                raise
        raise AssertionError("unreachable")

    def _port_was_taken(self) -> bool:
        text = self.output(2000).lower()
        return "already in use" in text or "address in use" in text

    def stop(self, grace: float = 15.0, keep_log: Optional[bool] = None) -> Optional[int]:
        """SIGTERM, then SIGKILL after ``grace`` seconds; returns the exit code (None if never started)."""
        rc = None
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(grace)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(grace)
            rc = self.proc.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        if (not keep_log if keep_log is not None else self.delete_log) and os.path.exists(self.log_path):
            try:
                os.unlink(self.log_path)
            except OSError:
                pass
        return rc

    def __enter__(self):
        if self.proc is None:
            self.start()
        return self

    def __exit__(self, *exc):
        self.stop()

    # -- HTTP ----------------------------------------------------------------------------------------
    def request(self, path: str, params: Optional[Dict[str, Any]] = None, timeout: float = 30.0) -> Answer:
        """GET ``path`` (below the path prefix, e.g. ``/data/plugins_listing``); raises ``socket.timeout`` /
        ``OSError`` / ``http.client.HTTPException`` when the transport fails."""
        target = self.path_prefix + _path_with_query(path, params)
        conn = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            conn.request("GET", target)
            r = conn.getresponse()
            body = r.read()
            return Answer(r.status, (r.getheader("Content-Type") or "").split(";")[0].strip(), body)
        finally:
            conn.close()

    def get_json(self, path: str, params: Optional[Dict[str, Any]] = None, timeout: float = 30.0,
                 expect: int = 200, strict: bool = False) -> Any:
        """The JSON body of ``GET path``; ``UnexpectedAnswer`` for another status or content type.  ``strict``
        refuses bare NaN / Infinity tokens."""
        a = self.request(path, params, timeout)
        if a.status != expect or a.content_type != "application/json":
            raise UnexpectedAnswer("GET %s -> %s %s (expected %s application/json): %r"
                                   % (self.url(path, params), a.status, a.content_type, expect, a.body[:500]), a)
        return strict_json(a.body) if strict else json.loads(a.body)

    def plugin_request(self, route: str, params: Optional[Dict[str, Any]] = None, timeout: float = 30.0) -> Answer:
        """``request`` on a route of the XQuant plugin (``reports``, ``graph``, ``static/index.js``...)."""
        return self.request(PLUGIN_PREFIX + route, params, timeout)

    def plugin_json(self, route: str, params: Optional[Dict[str, Any]] = None, timeout: float = 30.0,
                    **kw) -> Any:
        return self.get_json(PLUGIN_PREFIX + route, params, timeout, **kw)

    # -- waiting -----------------------------------------------------------------------------------
    def output(self, tail: int = 4000) -> str:
        """The end of the process's log."""
        if self._log is not None:
            self._log.flush()
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()[-tail:]
        except OSError:
            return ""

    def poll(self, what: str, fn: Callable[[], Any], deadline: float = 120.0,
             not_yet: Tuple[type, ...] = NOT_YET) -> Any:
        """Call ``fn()`` until it returns a truthy value and return that.  Exceptions in ``not_yet`` mean "not
        yet".  ``ServerExited`` when the process ends, ``TimeoutError`` after ``deadline`` seconds (both with the
        log's tail)."""
        end = time.monotonic() + deadline
        last: Any = None
        while True:
            if self.proc is None:
                raise RuntimeError("%s not started" % self.name)
            if self.proc.poll() is not None:
                raise ServerExited("%s exited with %s while waiting for %s\n$ %s\n%s"
                                   % (self.name, self.proc.returncode, what, " ".join(self.cmd), self.output()))
            try:
                value = fn()
                if value:
                    return value
                last = value
            except not_yet as e:
                last = e
            if time.monotonic() >= end:
                raise TimeoutError("%s not reached after %.0fs (last: %r)\n$ %s\n%s"
                                   % (what, deadline, last, " ".join(self.cmd), self.output()))
            time.sleep(POLL_INTERVAL)


class TensorBoardProcess(ServerProcess):
    """``python -m tensorboard.main --logdir LOGDIR --host 127.0.0.1 --port P`` with this interpreter.

    ``load_fast``: ``"true"`` / ``"false"`` / ``"auto"`` (``--load_fast=``; None leaves TensorBoard's default);
    ``reload_interval``: ``--reload_interval`` seconds; ``path_prefix``: ``--path_prefix`` (``base`` includes
    it); ``extra_args``: appended as given; ``env``: added to this process's environment."""

    name = "tensorboard"
    ready_path = "/data/environment"  # answered by TensorBoard's core plugin; calls no XQuant route

    def __init__(self, logdir: PathLike, *, load_fast: Optional[str] = None,
                 reload_interval: Optional[float] = None, extra_args: Sequence[str] = (), **kw):
        self.logdir = str(logdir)
        self.load_fast = load_fast
        self.reload_interval = reload_interval
        self.extra_args = list(extra_args)
        super().__init__(**kw)

    def command(self, port: int) -> List[str]:
        cmd = [sys.executable, "-m", "tensorboard.main", "--logdir", self.logdir, "--host", self.host,
               "--port", str(port)]
        # (--bind_all is a store_true flag in TensorBoard 2.21: leaving it out with --host 127.0.0.1 binds locally)
        if self.load_fast is not None:
            cmd.append("--load_fast=%s" % self.load_fast)
        if self.reload_interval is not None:
            cmd += ["--reload_interval", _num(self.reload_interval)]
        if self.path_prefix:
            cmd += ["--path_prefix", self.path_prefix]
        return cmd + self.extra_args

    def xquant_listing(self) -> Optional[Dict[str, Any]]:
        """The XQuant entry of ``/data/plugins_listing`` (None while the plugin is not listed)."""
        return self.get_json("/data/plugins_listing").get("xquant")


DEV_SERVER = REPO / "frontend" / "dev" / "dev_server.py"


class DevServerProcess(ServerProcess):
    """``frontend/dev/dev_server.py``: the plugin in TensorBoard's WSGI router on a logdir, files read directly
    (no tensorboard process, no data provider).  ``logdir`` serves that folder; without it the script generates
    ``layers`` with bench/mct_format.py into ``out``."""

    name = "dev_server"
    ready_path = "/data/plugins_listing"

    def __init__(self, logdir: Optional[PathLike] = None, *, layers: Iterable[int] = (), out: Optional[PathLike] = None,
                 seed: int = 0, extra_args: Sequence[str] = (), **kw):
        self.logdir = None if logdir is None else str(logdir)
        self.layers = [int(n) for n in layers]
        self.out = None if out is None else str(out)
        self.seed = seed
        self.extra_args = list(extra_args)
        super().__init__(**kw)

    def command(self, port: int) -> List[str]:
        cmd = [sys.executable, str(DEV_SERVER), "--host", self.host, "--port", str(port)]
        if self.logdir is not None:
            cmd += ["--logdir", self.logdir]
        if self.layers:
            cmd += ["--layers"] + [str(n) for n in self.layers]
        if self.out is not None:
            cmd += ["--out", self.out]
        if self.seed:
            cmd += ["--seed", str(self.seed)]
        if self.path_prefix:
            cmd += ["--path_prefix", self.path_prefix]
        return cmd + self.extra_args


# An HTTP(S) proxy nobody listens on (the discard port of 127.0.0.1): a server given it cannot reach the internet,
# and its attempts fail at once
OFFLINE_PROXY_ENV = {"HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9",
                     "http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
                     "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


class ModelExplorerProcess(ServerProcess):
    """``model-explorer GRAPH --node_data_paths ... --host 127.0.0.1 --port P --no_open_in_browser`` (Google's
    Model Explorer, pip ``ai-edge-model-explorer``, next to this interpreter).  ``app_url()`` is the page URL it
    prints.  ``offline=True`` gives it :data:`OFFLINE_PROXY_ENV`: its server asks pypi.python.org (and github.com)
    for a newer version whenever a page loads (``/api/v1/check_new_version``); offline that fails at once."""

    name = "model_explorer"
    ready_path = "/check_health"

    def __init__(self, graph: PathLike, node_data: Sequence[PathLike] = (), *, offline: bool = False, **kw):
        self.graph, self.node_data = graph, list(node_data)
        if offline:
            kw["env"] = dict(OFFLINE_PROXY_ENV, **(kw.get("env") or {}))
        super().__init__(**kw)

    def command(self, port: int) -> List[str]:
        exe = str(Path(sys.executable).with_name("model-explorer"))
        cmd = [exe, str(self.graph)]
        if self.node_data:
            cmd += ["--node_data_paths", ",".join(str(p) for p in self.node_data)]
        return cmd + ["--host", self.host, "--port", str(port), "--no_open_in_browser"]

    def app_url(self, timeout: float = 120.0) -> str:
        """The page URL the server prints (its ``data=`` parameter names the files to load)."""
        import re

        found = self.poll("the server's URL", lambda: re.search(r"(http://\S+/\?data=\S+)", self.output(20000)),
                          timeout)
        return found.group(1)


# ------------------------------------------------------------------------------------------------
def strict_json(body: Union[bytes, str]) -> Any:
    """``json.loads`` refusing bare NaN / Infinity tokens (the API encodes them as strings)."""
    def bad(token):
        raise ValueError("bare %s token in JSON" % token)
    return json.loads(body.decode("utf-8") if isinstance(body, bytes) else body, parse_constant=bad)


def _path_with_query(path: str, params: Optional[Dict[str, Any]]) -> str:
    if not path.startswith("/"):
        path = "/" + path
    return path + ("?" + urllib.parse.urlencode(params) if params else "")


def _num(x: float) -> str:
    return str(int(x)) if float(x).is_integer() else str(x)
