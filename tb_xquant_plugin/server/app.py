"""HTTP routes of the XQuant plugin (werkzeug).  Every answer is JSON (or PNG / static bundle),
errors are ``{"error", "hint"}`` with 4xx, and nothing a client sends is used as a file path."""
from __future__ import annotations

import logging
import mimetypes
import os
import re
from typing import Any, Callable, Dict

from tensorboard.backend import http_util
from werkzeug import wrappers

from tb_xquant_plugin import manual
from tb_xquant_plugin.api import studies as study_api
from tb_xquant_plugin.api import views
from tb_xquant_plugin.producers.mct_files import MAX_PNG_BYTES
from tb_xquant_plugin.model.thresholds import KNOB_BY_KEY, check_value
from tb_xquant_plugin.readers import files
from tb_xquant_plugin.server.store import ReportStore, collector_paused, threshold_args

logger = logging.getLogger(__name__)

STATIC_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "static")
_STATIC_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
MAX_STATIC_BYTES = 16 * 1024 * 1024


def _json(request, obj: Any, code: int = 200):
    body = views.dumps(obj)
    return http_util.Respond(request, body, "application/json", code=code)


# What TensorBoard's Respond compresses below: a client that accepts gzip gets the cached compressed body.
GZIP_MIN_BYTES = 1024
_ACCEPTS_GZIP = re.compile(r"\bgzip\b")


def _cached(request, a, route: str):
    """A cached view: its compressed body when the client accepts gzip and the answer is not tiny (compressed once
    per analysis, ``views.cached_gzip``), else its JSON text (Respond compresses a tiny one itself)."""
    with collector_paused():  # the first call builds the view: a record per node
        body = views.cached_json(a, route)
    if len(body) >= GZIP_MIN_BYTES and _ACCEPTS_GZIP.search(request.headers.get("Accept-Encoding", "")):
        return http_util.Respond(request, views.cached_gzip(a, route), "application/json", content_encoding="gzip")
    return http_util.Respond(request, body, "application/json")


def _error(request, code: int, error: str, hint: str = ""):
    return _json(request, {"error": error, "hint": hint}, code)


NO_REPORT_HINT = ("Pick a report from GET reports. Reports are folders under the logdir holding quant_report.json "
                  "or an xquant/ run written by xquant_report_troubleshoot_pytorch_experimental.")


NO_STUDY_HINT = "Pick a study from GET studies. " + study_api.NO_STUDY_HINT


class Routes:
    def __init__(self, store: ReportStore):
        self.store = store

    def apps(self) -> Dict[str, Callable]:
        routes = {
            "/reports": self.reports,
            "/report": self.report,
            "/graph": self.graph,
            "/layers": self.layers,
            "/verdicts": self.verdicts,
            "/layer": self.layer,
            "/artifact": self.artifact,
            "/compare": self.compare,
            "/replay": self.replay,
            "/manual": self.manual,
            "/studies": self.studies,
            "/study": self.study,
            "/static/*": self.static,
        }
        return {k: self._guard(v) for k, v in routes.items()}

    def wsgi_app(self) -> Callable:
        """The routes as one WSGI app mounted at ``/`` (the CLI-free way to serve or benchmark them
        without TensorBoard's router; inside TensorBoard, ``apps()`` is used)."""
        apps = self.apps()

        def dispatch(environ, start_response):
            path = environ.get("PATH_INFO", "")
            app = apps.get(path) or (apps["/static/*"] if path.startswith("/static/") else None)
            if app is None:
                start_response("404 Not Found", [("Content-Type", "text/plain")])
                return [b"no route"]
            return app(environ, start_response)

        return dispatch

    def _guard(self, fn):
        @wrappers.Request.application
        def handler(request):
            try:
                return fn(request)
            except ValueError as e:
                return _error(request, 400, str(e), "Check the query parameters (see docs/api.md).")
            except Exception as e:  # noqa: BLE001 - never a 500 page without a message
                logger.exception("tb-xquant: %s failed", request.path)
                return _error(request, 503, "the report could not be analysed right now: %s" % type(e).__name__,
                              "Reload; if it persists the logdir holds something the plugin cannot read.")

        return handler

    def _analysis(self, request, key: str = "report"):
        rid = request.args.get(key)
        if not rid:
            return None, _error(request, 400, "missing parameter %r" % key, NO_REPORT_HINT)
        a, _ = self.store.analysis(rid, threshold_args(request.args))
        if a is None:
            return None, _error(request, 404, "unknown report %r" % rid[:80], NO_REPORT_HINT)
        return a, None

    # -- routes ----------------------------------------------------------------------------
    def reports(self, request):
        refresh = request.args.get("refresh") in ("1", "true")
        self.store.report_dirs(refresh=refresh)
        entries = [views.report_entry(r) for r in self.store.all_reports()]
        body = {"logdir": self.store.logdir, "reports": entries}
        if not entries:
            body["hint"] = ("No XQuant report under this logdir. Run mct.set_log_folder(...), quantize, then "
                            "xquant_report_troubleshoot_pytorch_experimental(..., XQuantConfig(report_dir=<a folder "
                            "inside the logdir>)); or `python -m demo.generate --out <logdir>` for the demo.")
        return _json(request, body)

    def _view(self, request, route: str):
        """One of ``views.ANALYSIS_VIEWS``, serialized and compressed once per analysis."""
        a, err = self._analysis(request)
        return err or _cached(request, a, route)

    def report(self, request):
        return self._view(request, "report")

    def graph(self, request):
        return self._view(request, "graph")

    def layers(self, request):
        return self._view(request, "layers")

    def verdicts(self, request):
        return self._view(request, "verdicts")

    def layer(self, request):
        a, err = self._analysis(request)
        if err:
            return err
        name = request.args.get("layer")
        index = request.args.get("index")
        if not name and index is not None:
            # by position in GET layers: for names too long for a URL (browsers and servers cap it)
            try:
                i = int(index)
            except ValueError:
                raise ValueError("index must be an integer (a layer's index from GET layers)") from None
            if not 0 <= i < len(a.report.layers):
                return _error(request, 404, "no layer with index %d" % i, "Use an index from GET layers.")
            name = a.report.layers[i].name
        if not name:
            return _error(request, 400, "missing parameter 'layer'", "Use a layer name from GET layers.")
        d = views.layer_detail(a, name)
        if d is None:
            return _error(request, 404, "no layer named %r in this report" % name[:200], "Use a name from GET layers.")
        return _json(request, d)

    def replay(self, request):
        a, err = self._analysis(request)
        if err:
            return err
        name = request.args.get("layer")
        if not name:
            return _error(request, 400, "missing parameter 'layer'", "Use a layer name from GET layers.")
        try:
            z = check_value(KNOB_BY_KEY["z"], request.args.get("clip_z"))
        except ValueError as e:
            raise ValueError("clip_z" + str(e)[1:]) from None  # the knob's message, about this parameter
        d = views.z_replay(a, name, z)
        if d is None:
            return _error(request, 404, "no activation histogram for layer %r" % name[:200],
                          "The replay needs the layer's float histogram (GET layer shows whether it has one).")
        return _json(request, d)

    def compare(self, request):
        a, err = self._analysis(request, "a")
        if err:
            return err
        b, err = self._analysis(request, "b")
        if err:
            return err
        return _json(request, views.compare(a, b))

    def artifact(self, request):
        rid, aid = request.args.get("report"), request.args.get("id")
        if not rid or not aid:
            return _error(request, 400, "missing parameter 'report' or 'id'", "Use artifact ids from GET report.")
        report = self.store.report(rid)
        if report is None:
            return _error(request, 404, "unknown report %r" % rid[:80], NO_REPORT_HINT)
        artifact = report.artifact_by_id.get(aid)
        if artifact is None:
            return _error(request, 404, "unknown artifact %r" % aid[:80], "Use artifact ids from GET report.")
        try:
            data = files.read_bytes(artifact.path, artifact.name, MAX_PNG_BYTES, root=self.store.logdir)
        except files.ReadError as e:
            return _error(request, 404, e.what, e.hint)
        if data is None:
            return _error(request, 404, "artifact %s is no longer there" % artifact.name, "Reload the report.")
        if not data.startswith(b"\x89PNG"):
            return _error(request, 404, "artifact %s is not a PNG" % artifact.name, "")
        return http_util.Respond(request, data, "image/png")

    def manual(self, request):
        mid = request.args.get("id")
        if not mid:
            return _json(request, {"entries": manual.list_entries()})
        entry = manual.get_entry(mid)
        if entry is None:
            return _error(request, 404, "no manual entry %r" % mid[:80], "GET manual lists the entries.")
        return _json(request, entry)

    def studies(self, request):
        refresh = request.args.get("refresh") in ("1", "true")
        found = [study_api.study_ref(sf) for sf in self.store.studies(refresh=refresh) if not sf.foreign]
        body = {"logdir": self.store.logdir, "studies": found}
        if not found:
            body["hint"] = "No study under this logdir. " + study_api.NO_STUDY_HINT
        return _json(request, body)

    def study(self, request):
        sid = request.args.get("study")
        if not sid:
            return _error(request, 400, "missing parameter 'study'", NO_STUDY_HINT)
        sf = self.store.study(sid)
        if sf is None:
            return _error(request, 404, "unknown study %r" % sid[:80], NO_STUDY_HINT)
        if sf.study is None:
            problem = sf.problem
            return _error(request, 404, problem.what if problem else "the study could not be read",
                          problem.hint if problem else "")
        dirs = self.store.report_dirs_for(study_api.attempt_report_rels(sf))
        return _json(request, study_api.study_view(sf, study_api.reports_by_rel(dirs)))

    def static(self, request):
        name = request.path.rsplit("/static/", 1)[-1]
        # Only plain file names of the bundle folder: no separators, no dot-dot.
        if not _STATIC_NAME.match(name) or name.startswith("."):
            return _error(request, 404, "not found", "")
        try:
            data = files.read_bytes(os.path.join(STATIC_DIR, name), name, MAX_STATIC_BYTES, root=STATIC_DIR)
        except files.ReadError:
            data = None
        if data is None:
            return _error(request, 404, "not found", "Build the frontend: cd frontend && npm ci && npm run build")
        ctype = mimetypes.guess_type(name)[0] or "application/octet-stream"
        if name.endswith((".js", ".mjs")):
            ctype = "text/javascript"
        return http_util.Respond(request, data, ctype)
