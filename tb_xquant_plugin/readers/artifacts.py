"""On-disk XQuant artifacts, read through TensorBoard's ``gfile`` (so remote logdirs work):
``quant_report.json``, ``troubleshoot_report.json``, the manifest and the PNG charts."""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import posixpath
import re
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


def discover_report_dirs(logdir: str, runs: List[str]) -> Dict[str, str]:
    """Report directories under ``logdir`` as ``{relative path: absolute path}``.

    A report directory holds ``quant_report.json`` and/or an ``xquant`` run (MCT writes the
    events of the report into ``<report_dir>/xquant/``)."""
    gf = tf.io.gfile
    found: Dict[str, str] = {}
    for run in runs:
        parts = run.split("/")
        if parts and parts[-1] == XQUANT_RUN:
            rel = "/".join(parts[:-1]) or "."
            found[rel] = join(logdir, *parts[:-1]) if rel != "." else logdir
    try:
        if gf.isdir(logdir):
            for dirpath, _dirs, files in gf.walk(logdir):
                if QUANT_REPORT in files:
                    rel = _rel(logdir, dirpath)
                    found[rel] = dirpath
    except Exception:  # noqa: BLE001 - a vanished folder mid-walk
        pass
    return found


def _rel(root: str, path: str) -> str:
    if "://" in root:
        r = path[len(root):].strip("/")
    else:
        import os

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
