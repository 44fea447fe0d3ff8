"""CI gates: ``tb-xquant report PATH --fail-on COND``.

A condition is checked on every report (an ``api.contract.CliReport``); the exit code says what happened:

* 0 (:data:`EXIT_OK`): every report was analysed and no condition holds;
* 2 (:data:`EXIT_USAGE`): bad command line (an unknown condition, a bad threshold, a missing path);
* 3 (:data:`EXIT_GATE`): a condition holds for a report;
* 4 (:data:`EXIT_UNREADABLE`): nothing could be judged: no XQuant report under the path, a report without
  per-layer metrics (:func:`blocking`), or a run that started and did not finish (:func:`incomplete_runs`).
  It wins over 3: a partly analysed logdir is never reported as a plain gate result, and never as a pass.
"""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Iterable, List, Optional, Sequence

from tb_xquant_plugin.judges import registry
from tb_xquant_plugin.judges.base import COMPARE
from tb_xquant_plugin.model.report import Report
from tb_xquant_plugin.producers.mct_files import XQUANT_RUN
from tb_xquant_plugin.producers.mct_pytorch import stage_runs_by_folder

EXIT_OK = 0
EXIT_USAGE = 2
EXIT_GATE = 3
EXIT_UNREADABLE = 4

DEGRADED = "degraded"
VERDICT = "verdict"
PROBLEM = "problem"
JUDGE = "judge"
ACCURACY_DROP = "accuracy-drop"
KINDS = (DEGRADED, VERDICT, PROBLEM, JUDGE + ":<name>", ACCURACY_DROP + "=<points>")
SHOWN = 5  # names listed in a failure message


def judge_names() -> List[str]:
    """Names ``judge:<name>`` accepts: every judge whose verdicts a report carries (MCT's use the same names)."""
    return [j.name for j in registry.JUDGES if j.kind != COMPARE]


@dataclasses.dataclass(frozen=True)
class Condition:
    kind: str
    arg: Any = None
    text: str = ""


def parse_conditions(items: Iterable[str]) -> List[Condition]:
    """``--fail-on`` values (each may list several, comma-separated) -> conditions; ValueError says what is accepted."""
    out: List[Condition] = []
    for item in items:
        for raw in item.split(","):
            text = raw.strip()
            if not text:
                continue
            out.append(parse_condition(text))
    return out


def parse_condition(text: str) -> Condition:
    low = text.lower()
    if low in (DEGRADED, VERDICT, PROBLEM):
        return Condition(low, None, low)
    if low.startswith(JUDGE + ":"):
        name = text.split(":", 1)[1].strip()
        if name not in judge_names():
            raise ValueError("--fail-on %s: unknown judge %r; judges: %s" % (text, name, ", ".join(judge_names())))
        return Condition(JUDGE, name, "%s:%s" % (JUDGE, name))
    if low.startswith(ACCURACY_DROP + "="):
        raw = text.split("=", 1)[1].strip()
        try:
            points = float(raw)
        except ValueError:
            points = math.nan
        if not math.isfinite(points) or points < 0:
            raise ValueError("--fail-on %s: the allowed accuracy drop must be a number of points >= 0 (e.g. "
                             "accuracy-drop=1.5), got %r" % (text, raw))
        return Condition(ACCURACY_DROP, points, "%s=%g" % (ACCURACY_DROP, points))
    raise ValueError("--fail-on: unknown condition %r; conditions: %s" % (text, ", ".join(KINDS)))


def actionable(verdict: Dict[str, Any]) -> bool:
    """A verdict that says what to change: a cause judge's (computed or MCT's own), or one with a snippet."""
    return verdict.get("judge") != "general" or bool(verdict.get("snippet"))


def _names(items: Sequence[str]) -> str:
    shown = ", ".join(items[:SHOWN])
    return shown + (", ... (%d more)" % (len(items) - SHOWN) if len(items) > SHOWN else "")


def _number(v: Any) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def accuracy_drop(accuracy: Optional[Dict[str, Any]]) -> Optional[float]:
    """Float minus quantized accuracy in points; fractions (both values <= 1) are read as 0..1 and scaled by 100.
    None when the manifest does not hold both numbers."""
    acc = accuracy or {}
    f, q = _number(acc.get("float")), _number(acc.get("quantized"))
    if f is None or q is None:
        return None
    scale = 100.0 if max(abs(f), abs(q)) <= 1.0 else 1.0
    return (f - q) * scale


def evaluate(cond: Condition, report: Dict[str, Any]) -> Optional[str]:
    """Why ``cond`` holds for a CliReport (the gate fails), or None when it passes."""
    if cond.kind == DEGRADED:
        deg = report["degraded_layers"]
        if deg:
            return "%d of %d layers degraded: %s" % (len(deg), report["layer_count"], _names(deg))
        return None
    if cond.kind == VERDICT:
        hits = [v for v in report["verdicts"] if actionable(v)]
        if hits:
            judges = sorted({v["judge"] for v in hits})
            return "%d actionable verdict%s (%s)" % (len(hits), "" if len(hits) == 1 else "s", ", ".join(judges))
        return None
    if cond.kind == JUDGE:
        hits = [v for v in report["verdicts"] if v["judge"] == cond.arg]
        if hits:
            layers = [l for v in hits for l in v["layers"]]
            return "%d %s verdict%s%s" % (len(hits), cond.arg, "" if len(hits) == 1 else "s",
                                         " on " + _names(list(dict.fromkeys(layers))) if layers else "")
        return None
    if cond.kind == PROBLEM:
        probs = report["problems"]
        if probs:
            return "%d problem%s: %s" % (len(probs), "" if len(probs) == 1 else "s", probs[0]["what"][:300])
        return None
    if cond.kind == ACCURACY_DROP:
        drop = accuracy_drop(report.get("accuracy"))
        if drop is None:
            # An unknown accuracy cannot pass an accuracy gate.
            return ("no float and quantized accuracy in the manifest (tb_xquant_manifest.json 'accuracy'), so the "
                    "drop cannot be checked")
        if drop > cond.arg:
            acc = report["accuracy"]
            return "accuracy dropped %.4g points (float %s, quantized %s), more than %g" % (
                drop, acc.get("float"), acc.get("quantized"), cond.arg)
        return None
    raise AssertionError(cond.kind)


def blocking(report: Dict[str, Any]) -> Optional[str]:
    """Why a report cannot be judged at all, or None.  A report without per-layer metrics has nothing to detect
    degradation on (no graph and no quant_report.json, a half-written run, a report that could not be read):
    every condition would pass on it, so it fails the run instead."""
    if report["layer_count"]:
        return None
    why = "; ".join(p["what"][:200] for p in report["problems"][:3])
    return "no per-layer metrics to judge" + (" (%s)" % why if why else "")


def incomplete_runs(runs: Sequence[str], reports: Sequence[Report]) -> List[str]:
    """Runs of the logdir that a finished XQuant report would have left, but that belong to no report found:

    * an ``.../xquant`` run with no ``quant_report.json`` beside it and no per-layer metrics in its graph (the
      report was cut off while writing);
    * MCT stage logs (``.../tensorboard_logs/<stage>``) with no report in or above their folder (the
      quantization ran, the XQuant report was never written).

    Each is described in a sentence."""
    rels = {r.rel for r in reports}
    out: List[str] = []
    for run in runs:
        parts = run.split("/")
        if parts[-1] == XQUANT_RUN:
            parent = "/".join(parts[:-1]) or "."
            if parent not in rels:
                out.append("%s: an XQuant run without quant_report.json or per-layer metrics (the report did not "
                           "finish?)" % run)
    parents = ["" if "/" not in r.rel else r.rel.rsplit("/", 1)[0] for r in reports]
    for folder in sorted(stage_runs_by_folder(list(runs))):
        if not any(p == "" or folder == p or folder.startswith(p + "/") for p in parents):
            out.append("%s: MCT stage logs with no XQuant report in or above their folder (the XQuant step did "
                       "not run or crashed?)" % folder)
    return out
