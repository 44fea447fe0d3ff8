"""On-disk XQuant artifacts, read through TensorBoard's ``gfile`` (so remote logdirs work):
``quant_report.json``, ``troubleshoot_report.json``, the manifest and the PNG charts."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import posixpath
import re
import threading
from typing import Any, Dict, List, Optional, Tuple

from tensorboard.compat import tf

from tb_xquant_plugin.model.thresholds import MANIFEST_FILENAME
from tb_xquant_plugin.readers.events import join

QUANT_REPORT = "quant_report.json"
TROUBLESHOOT_REPORT = "troubleshoot_report.json"
XQUANT_RUN = "xquant"
OUTLIER_DIR = "outlier_histgrams"  # (sic) MCT 2.6.1's folder name
MAX_JSON_BYTES = 64 * 1024 * 1024

_CHART_RE = re.compile(r"^quant_loss_(.+)_(repr|val)\.png$")


@dataclasses.dataclass
class Problem:
    what: str
    hint: str

    def to_json(self) -> Dict[str, str]:
        return {"what": self.what, "hint": self.hint}


@dataclasses.dataclass
class Artifact:
    id: str
    kind: str  # similarity_chart | outlier_histogram | other
    name: str
    path: str
    metric: Optional[str] = None
    dataset: Optional[str] = None
    layer: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("path")
        return d


def report_id(rel_path: str) -> str:
    """Stable id of a report from its path relative to the logdir."""
    return "r" + hashlib.sha1(rel_path.encode("utf-8", "surrogatepass")).hexdigest()[:12]


def read_json(path: str, label: str) -> Tuple[Optional[Any], Optional[Problem]]:
    """Load a JSON file; on failure return a problem that says what is wrong and how to fix it."""
    gf = tf.io.gfile
    try:
        if not gf.exists(path):
            return None, None
        size = gf.stat(path).length
        if size > MAX_JSON_BYTES:
            return None, Problem("%s is %d bytes, larger than the %d-byte limit" % (label, size, MAX_JSON_BYTES),
                                 "Re-run the XQuant report; a report this large is probably not MCT's.")
        with gf.GFile(path, "rb") as f:
            raw = f.read()
    except Exception as e:  # noqa: BLE001
        return None, Problem("%s could not be read: %s" % (label, e), "Check the file's permissions.")
    try:
        text = raw.decode("utf-8")
        return json.loads(text), None
    except (UnicodeDecodeError, ValueError, RecursionError) as e:  # RecursionError: absurdly deep nesting
        return None, Problem(
            "%s is not valid JSON (%s); it may still be being written or was truncated" % (label, e),
            "Wait for the XQuant run to finish, or re-run xquant_report_troubleshoot_pytorch_experimental.",
        )


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
    for ds in ("repr", "val"):
        o = data.get("output_similarity_metrics_" + ds)
        if isinstance(o, dict):
            out["output"][ds] = {str(k): _finite_or_nan(v) for k, v in o.items()}
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
            out["layers"][ds][str(layer)] = {str(k): _finite_or_nan(v) for k, v in metrics.items()}
        if bad:
            problems.append(Problem("%d layer entries of intermediate_similarity_metrics_%s are not metric objects" % (bad, ds),
                                    "Re-run the XQuant report."))
    return out, problems


def list_artifacts(report_dir: str) -> List[Artifact]:
    """PNG charts MCT saved for this report (the six similarity charts and outlier histograms)."""
    gf = tf.io.gfile
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
        try:
            names = gf.listdir(d) if gf.isdir(d) else []
        except Exception:  # noqa: BLE001
            names = []
        for name in sorted(names):
            name = name.rstrip("/")
            if name.lower().endswith(".png"):
                add(join(d, name), name, folder)
    return found


# Node attribute names MCT puts on every compare point of the XQuant graph.  A GraphDef stores map
# keys as plain bytes, so they can be looked for in the event files without decoding anything.
XQUANT_ATTR_MARKERS = (b"xquant_repr", b"xquant_val")
_SCAN_CHUNK = 4 * 1024 * 1024
_MAX_MARKER_SCANS = 4096
# event file path -> (file identity, bytes already scanned, marker found)
_marker_scans: Dict[str, Tuple[Any, int, bool]] = {}
_marker_lock = threading.Lock()


def _file_identity(path: str) -> Tuple[Any, int]:
    """(identity, size) of a file: device and inode for local files (a replaced file is a new one)."""
    if "://" not in path:
        st = os.stat(path)
        return (st.st_dev, st.st_ino), st.st_size
    return None, tf.io.gfile.stat(path).length


def _chunks_from(path: str, offset: int):
    """The bytes of a file from ``offset`` on, in chunks."""
    if "://" not in path:
        with open(path, "rb") as f:
            f.seek(offset)
            while True:
                b = f.read(_SCAN_CHUNK)
                if not b:
                    return
                yield b
    skip = offset  # TensorBoard's gfile stub cannot seek: read and drop the scanned part
    with tf.io.gfile.GFile(path, "rb") as f:
        while True:
            b = f.read(_SCAN_CHUNK)
            if not b:
                return
            if skip >= len(b):
                skip -= len(b)
                continue
            yield b[skip:]
            skip = 0


def event_file_has_xquant_metrics(path: str) -> bool:
    """Whether an event file holds a graph whose nodes carry ``xquant_repr`` / ``xquant_val``.

    A byte search, not a decode; remembered per file, and a file that grew is searched only in its
    new bytes (event files are append-only), so the discovery loop re-checks growing files cheaply."""
    identity, size = _file_identity(path)
    with _marker_lock:
        last = _marker_scans.get(path)
    if last is not None and last[0] == identity and last[1] <= size:
        if last[2] or last[1] == size:
            return last[2]
        start = last[1]
    else:
        start = 0
    keep = max(len(m) for m in XQUANT_ATTR_MARKERS) - 1
    pos = max(0, start - keep)
    tail, found = b"", False
    for chunk in _chunks_from(path, pos):
        window = tail + chunk
        if any(m in window for m in XQUANT_ATTR_MARKERS):
            found = True
            break
        tail = window[-keep:]
        pos += len(chunk)
    with _marker_lock:
        if len(_marker_scans) >= _MAX_MARKER_SCANS:
            _marker_scans.clear()
        _marker_scans[path] = (identity, size if found else min(pos, size), found)
    return found


def run_has_xquant_metrics(run_dir: str) -> bool:
    """Whether one of the event files of a run directory carries MCT's XQuant metrics."""
    gf = tf.io.gfile
    try:
        names = sorted(gf.listdir(run_dir))
    except Exception:  # noqa: BLE001 - vanished
        return False
    for name in names:
        if "tfevents" not in name:
            continue
        try:
            if event_file_has_xquant_metrics(join(run_dir, name.rstrip("/"))):
                return True
        except Exception:  # noqa: BLE001 - unreadable or vanished file
            continue
    return False


def discover_report_dirs(logdir: str, runs: List[str]) -> Dict[str, str]:
    """Report directories under ``logdir`` as ``{relative path: absolute path}``.

    A report directory holds ``quant_report.json``, or an ``xquant`` run (MCT writes the events
    of the report into ``<report_dir>/xquant/``) whose graph carries MCT's per-layer metrics
    (``xquant_repr`` / ``xquant_val`` node attributes): a run that is merely named ``xquant`` is
    not a report."""
    gf = tf.io.gfile
    found: Dict[str, str] = {}
    for run in runs:
        parts = run.split("/")
        if parts and parts[-1] == XQUANT_RUN:
            rel = "/".join(parts[:-1]) or "."
            report_dir = join(logdir, *parts[:-1]) if rel != "." else logdir
            try:
                has_json = gf.exists(join(report_dir, QUANT_REPORT))
            except Exception:  # noqa: BLE001
                has_json = False
            if has_json or run_has_xquant_metrics(join(logdir, *parts)):
                found[rel] = report_dir
    try:
        if gf.isdir(logdir):
            for dirpath, _dirs, files in gf.walk(logdir):
                if QUANT_REPORT in files:
                    rel = _rel(logdir, dirpath)
                    found[rel] = dirpath
    except Exception:  # noqa: BLE001 - a vanished folder mid-walk
        pass
    return found


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


def final_weights_config(stage_logs_dir: str) -> Tuple[Optional[List[int]], str]:
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
        if not tf.io.gfile.exists(log_path):
            return None, "there is no %s beside the stage logs" % MCT_LOG
        if tf.io.gfile.stat(log_path).length > MAX_LOG_BYTES:
            return None, "%s is larger than %d bytes and was not read" % (MCT_LOG, MAX_LOG_BYTES)
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

        for chunk in _chunks_from(log_path, 0):
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


def _rel(root: str, path: str) -> str:
    if "://" in root:
        r = path[len(root):].strip("/")
    else:
        r = os.path.relpath(path, root).replace("\\", "/")
    return r if r and r != "." else "."


def run_path(report_rel: str, *more: str) -> str:
    parts = [p for p in report_rel.split("/") if p and p != "."] + list(more)
    return "/".join(parts) or "."


def manifest_path(report_dir: str) -> str:
    return join(report_dir, MANIFEST_FILENAME)


def normpath_rel(base_rel: str, rel: str) -> str:
    """Join a path relative to a report dir onto the report's logdir-relative path."""
    joined = posixpath.normpath(posixpath.join(base_rel if base_rel != "." else "", rel))
    return joined
