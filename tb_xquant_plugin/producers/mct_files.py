"""MCT 2.6.1's report dir: ``quant_report.json``, ``troubleshoot_report.json``, the PNG charts, the XQuant
run's events, and ``mct_log.log`` beside the stage logs.  File access goes through ``readers.files``."""
from __future__ import annotations

import contextlib
import hashlib
import math
import os
import posixpath
import re
import threading
from typing import Any, Dict, List, Optional, Tuple

from tb_xquant_plugin.model.report import Artifact, Problem
from tb_xquant_plugin.producers.mct_log import read_xquant_log
from tb_xquant_plugin.readers import events, files
from tb_xquant_plugin.readers.files import join

QUANT_REPORT = "quant_report.json"
TROUBLESHOOT_REPORT = "troubleshoot_report.json"
XQUANT_RUN = "xquant"
OUTLIER_DIR = "outlier_histgrams"  # (sic) MCT 2.6.1's folder name
MAX_PNG_BYTES = 32 * 1024 * 1024
MAX_METRICS = 64  # distinct metric names read from quant_report.json
# Node attribute names MCT puts on every compare point of the XQuant graph.  A GraphDef stores map
# keys as plain bytes, so they can be looked for in the event files without decoding anything.
XQUANT_ATTR_MARKERS = (b"xquant_repr", b"xquant_val")

_CHART_RE = re.compile(r"^quant_loss_(.+)_(repr|val)\.png$")


def _finite_or_nan(v: Any) -> float:
    if isinstance(v, bool):
        return math.nan
    if isinstance(v, (int, float)):
        return float(v)
    if isinstance(v, str):
        try:
            return float(v)
        except ValueError:
            return math.nan
    return math.nan


def normalise_quant_report(data: Any) -> Tuple[Dict[str, Any], List[Problem]]:
    """Check the shape of quant_report.json and return it in a clean form:
    ``{"output": {"repr": {m: v}, "val": {...}}, "layers": {"repr": {layer: {m: v}}, "val": {...}}}``.
    Non-numeric values become NaN; entries of the wrong shape are skipped with a problem."""
    problems: List[Problem] = []
    out = {"output": {"repr": {}, "val": {}}, "layers": {"repr": {}, "val": {}}}
    if not isinstance(data, dict):
        problems.append(Problem("quant_report.json is not a JSON object", "Re-run the XQuant report."))
        return out, problems
    names: set = set()
    dropped: set = set()
    for ds in ("repr", "val"):
        o = data.get("output_similarity_metrics_" + ds)
        if isinstance(o, dict):
            out["output"][ds] = {str(k): _finite_or_nan(v) for k, v in list(o.items())[:MAX_METRICS]}
            names.update(out["output"][ds])
        elif o is not None:
            problems.append(Problem("output_similarity_metrics_%s has the wrong shape" % ds, "Re-run the XQuant report."))
        inter = data.get("intermediate_similarity_metrics_" + ds)
        if inter is None:
            problems.append(Problem("quant_report.json has no intermediate_similarity_metrics_%s" % ds,
                                    "Re-run the XQuant report with MCT 2.6.1."))
            continue
        if not isinstance(inter, dict):
            problems.append(Problem("intermediate_similarity_metrics_%s has the wrong shape" % ds,
                                    "Re-run the XQuant report."))
            continue
        bad = 0
        for layer, metrics in inter.items():
            if not isinstance(metrics, dict):
                bad += 1
                continue
            kept = {}
            for k, v in metrics.items():
                k = str(k)
                if k not in names:
                    if len(names) >= MAX_METRICS:
                        dropped.add(k)
                        continue
                    names.add(k)
                kept[k] = _finite_or_nan(v)
            out["layers"][ds][str(layer)] = kept
        if bad:
            problems.append(Problem("%d layer entries of intermediate_similarity_metrics_%s are not metric objects" % (bad, ds),
                                    "Re-run the XQuant report."))
    if dropped:
        problems.append(Problem("quant_report.json names more than %d metrics; %d more (e.g. %r) were left out"
                                % (MAX_METRICS, len(dropped), sorted(dropped)[0][:100]),
                                "XQuant reports MSE, CS, SQNR and your custom_similarity_metrics: check the file."))
    return out, problems


def list_artifacts(report_dir: str, root: Optional[str] = None) -> List[Artifact]:
    """PNG charts MCT saved for this report (the six similarity charts and outlier histograms)."""
    found: List[Artifact] = []

    def add(path: str, name: str, folder: str):
        m = _CHART_RE.match(name)
        aid = "a" + hashlib.sha1(path.encode("utf-8", "surrogatepass")).hexdigest()[:10]
        if folder == OUTLIER_DIR:
            found.append(Artifact(aid, "outlier_histogram", name, path, layer=name[:-4]))
        elif m:
            found.append(Artifact(aid, "similarity_chart", name, path, metric=m.group(1), dataset=m.group(2)))
        else:
            found.append(Artifact(aid, "other", name, path))

    for folder in ("", OUTLIER_DIR):
        d = join(report_dir, folder) if folder else report_dir
        for name in sorted(files.list_dir(d, root)):
            if name.lower().endswith(".png") and files.exists(join(d, name), root):
                add(join(d, name), name, folder)
    return found


_pass = threading.local()  # one_walk(): the walk's answer, shared by the MCT adapters of one discovery


@contextlib.contextmanager
def one_walk():
    """Within the block, :func:`discover_report_dirs` walks the logdir once per (logdir, runs) and hands
    every later caller (the PyTorch and the Keras adapter) the same answer."""
    outer = getattr(_pass, "memo", None)
    if outer is None:
        _pass.memo = {}
    try:
        yield
    finally:
        if outer is None:
            _pass.memo = None


def discover_report_dirs(logdir: str, runs: List[str]) -> Dict[str, str]:
    """:func:`find_report_dirs`, walked once per :func:`one_walk` block."""
    memo = getattr(_pass, "memo", None)
    if memo is None:
        return find_report_dirs(logdir, runs)
    key = (logdir, id(runs), len(runs))
    hit = memo.get(key)
    if hit is None or hit[0] is not runs:
        hit = memo[key] = (runs, find_report_dirs(logdir, runs))
    return dict(hit[1])


def find_report_dirs(logdir: str, runs: List[str]) -> Dict[str, str]:
    """Report directories under ``logdir`` as ``{relative path: absolute path}``.

    A report directory holds ``quant_report.json``, or an ``xquant`` run (MCT writes the events
    of the report into ``<report_dir>/xquant/``) whose graph carries MCT's per-layer metrics
    (``xquant_repr`` / ``xquant_val`` node attributes): a run that is merely named ``xquant`` is
    not a report."""
    found: Dict[str, str] = {}
    for run in runs:
        parts = run.split("/")
        if parts and parts[-1] == XQUANT_RUN:
            rel = "/".join(parts[:-1]) or "."
            report_dir = join(logdir, *parts[:-1]) if rel != "." else logdir
            if not files.is_dir(report_dir, logdir) or not files.is_canonical(logdir, report_dir):
                continue  # missing, outside the logdir, or a second name (through a link) of another report dir
            if files.exists(join(report_dir, QUANT_REPORT), logdir) or \
                    events.run_contains(join(logdir, *parts), XQUANT_ATTR_MARKERS, logdir) or \
                    stopped_xquant_run(report_dir, logdir):
                found[rel] = report_dir
    found.update(files.report_dirs_with(logdir, QUANT_REPORT))
    return found


def stopped_xquant_run(report_dir: str, root: Optional[str] = None) -> bool:
    """An ``xquant`` run without a graph is still a report when MCT's own log in the report dir names this folder
    as an XQuant report dir: the run stopped before writing its graph (``producers.mct_log``)."""
    return read_xquant_log(report_dir, root) is not None


MCT_LOG = "mct_log.log"  # written by MCT's logger into the folder mct.set_log_folder creates
MAX_LOG_BYTES = 256 * 1024 * 1024
_TB_LOGDIR_LINE = "To use Tensorboard, please run: tensorboard --logdir "
_FINAL_WEIGHTS_RE = re.compile(r"Final weights bit-width configuration: \[([0-9,\s]*)\]")


def _path_parts(path: str) -> List[str]:
    return [p for p in re.split(r"[\\/]+", path.strip()) if p]


def _common_tail(a: List[str], b: List[str]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


def final_weights_config(stage_logs_dir: str, root: Optional[str] = None) -> Tuple[Optional[List[int]], str]:
    """MCT's final weights bit widths for the quantization whose stage graphs are in
    ``stage_logs_dir`` (``.../logs_<time>/tensorboard_logs``), read from ``mct_log.log`` beside it.

    After mixed precision MCT 2.6.1 logs ``Final weights bit-width configuration: [8, 8, 2]``: one
    width per layer whose weights had several candidates, in topological order
    (``Graph.get_final_weights_config``).  MCT's logger keeps writing into every log file it has
    opened in the process, so the file may also hold later quantizations: only the section that
    starts with MCT's line ``To use Tensorboard, please run: tensorboard --logdir <this folder>``
    and ends at the next such line is read.  Folders are matched on their trailing path components
    (at least ``logs_<time>/tensorboard_logs``; the logdir may have been moved since); among
    equally good matches the last section wins.

    Returns ``(widths or None, what was found)``; the text explains a ``None``."""
    here = _path_parts(stage_logs_dir)
    log_path = join(posixpath.dirname(stage_logs_dir.rstrip("/")) if "://" in stage_logs_dir
                    else os.path.dirname(os.path.normpath(stage_logs_dir)), MCT_LOG)
    try:
        if not files.exists(log_path, root):
            if not is_remote_or_exists(log_path):
                return None, "there is no %s beside the stage logs" % MCT_LOG
            return None, "%s is not a regular file inside the logdir and was not read" % MCT_LOG
        best: Tuple[int, Optional[List[int]]] = (0, None)
        score, widths, rest = 0, None, b""

        def line(text: str):
            nonlocal score, widths, best
            i = text.find(_TB_LOGDIR_LINE)
            if i >= 0:
                if score >= 2 and score >= best[0]:
                    best = (score, widths)
                score, widths = _common_tail(_path_parts(text[i + len(_TB_LOGDIR_LINE):]), here), None
                return
            m = _FINAL_WEIGHTS_RE.search(text)
            if m:
                widths = [int(x) for x in re.findall(r"\d+", m.group(1))]

        for chunk in files.chunks(log_path, 0, MAX_LOG_BYTES):
            parts = (rest + chunk).split(b"\n")
            rest = parts.pop()
            for raw in parts:
                line(raw.decode("utf-8", "replace"))
        line(rest.decode("utf-8", "replace"))
        line(_TB_LOGDIR_LINE)  # closes the last section
    except Exception as e:  # noqa: BLE001
        return None, "%s could not be read (%s)" % (MCT_LOG, e)
    if best[0] == 0:
        return None, "%s has no section for these stage logs (no line %r naming them)" % (
            MCT_LOG, _TB_LOGDIR_LINE.strip())
    if best[1] is None:
        return None, "%s has no line 'Final weights bit-width configuration' for these stage logs" % MCT_LOG
    return best[1], "%s: Final weights bit-width configuration %s" % (MCT_LOG, best[1])


def is_remote_or_exists(path: str) -> bool:
    return files.is_remote(path) or os.path.lexists(path)
