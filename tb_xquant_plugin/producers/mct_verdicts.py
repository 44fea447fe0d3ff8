"""Verdicts MCT itself wrote to ``troubleshoot_report.json`` (shown as ``source: mct``).

MCT names things in two ways there: layers and activations by their graph names (``stem_act``,
``fc1_act``), and, in its unbalanced-concatenation judge, torch *module* paths (``stem.0``).
Each verdict's ``layers`` are the report's own names (a quant_report.json layer or a graph node),
so the panel can select them; MCT's original strings stay in ``numbers``.  A histogram PNG path
becomes the id of the report artifact it points at (never a file path)."""
from __future__ import annotations

import posixpath
from typing import Any, Dict, List, Optional, Tuple

from tb_xquant_plugin import manual
from tb_xquant_plugin.model import verdict as V
from tb_xquant_plugin.model.names import resolve_name
from tb_xquant_plugin.model.report import Problem, Report

MAX_VERDICTS = 2000  # entries read per judge from troubleshoot_report.json

MAX_NUMBER_CHARS = 64  # the scale MCT prints ends its formula ("first layer * 100.92"): a float's repr is shorter
_NUMBER_CHARS = frozenset("0123456789.+-eE")


def trailing_number(text: str) -> Optional[float]:
    """The number a formula ends with (``"first layer * 100.92"`` -> 100.92; ``inf`` / ``nan`` too), or None.

    A scan from the end, linear in the length of the number: a backtracking regular expression searched over a
    long run of digits takes cubic time (a 1,000-digit formula: 20 s)."""
    s = text.rstrip()
    if s[-3:].lower() in ("inf", "nan"):
        return float(s[-3:])
    i = len(s)
    while i > 0 and s[i - 1] in _NUMBER_CHARS:
        i -= 1
        if len(s) - i > MAX_NUMBER_CHARS:
            return None  # no float MCT prints is this long
    tail = s[i:]
    while tail:
        if tail[0].isdigit() or (tail[0] in "+-" and tail[1:2].isdigit()):
            try:
                return float(tail)
            except ValueError:
                pass
        tail = tail[1:]
    return None


def _layers(report: Report, *names: str) -> List[str]:
    out: List[str] = []
    for n in names:
        r = resolve_name(report, n) or n
        if r not in out:
            out.append(r)
    return out


def _artifact_id(report: Report, path: Optional[str]) -> Optional[str]:
    if not path:
        return None
    base = posixpath.basename(path.replace("\\", "/"))
    for a in report.artifacts:
        if a.name == base:
            return a.id
    return None


def _entries(ts: Dict[str, Any], judge: str, problems: List[Problem]) -> List[Any]:
    """The list MCT wrote for one judge; anything else (a number, a string, an object) is a problem."""
    items = ts.get(judge)
    if items is None:
        return []
    if not isinstance(items, list):
        problems.append(Problem("troubleshoot_report.json: %s is a %s, not a list; it was ignored"
                                % (judge, type(items).__name__),
                                "Re-run xquant_report_troubleshoot_pytorch_experimental; MCT writes a list per judge."))
        return []
    if len(items) > MAX_VERDICTS:
        problems.append(Problem("troubleshoot_report.json: %s has %d entries; the first %d were read"
                                % (judge, len(items), MAX_VERDICTS), "Check the file: MCT names each layer once."))
        return items[:MAX_VERDICTS]
    return items


def load(report: Report) -> Tuple[List[V.Verdict], List[Problem]]:
    """MCT's own verdicts in the report's names, and a problem per entry of the wrong shape."""
    ts: Dict[str, Any] = report.mct_troubleshoot  # type: ignore[assignment]
    out: List[V.Verdict] = []
    problems: List[Problem] = []
    if not isinstance(ts, dict):
        return out, problems
    for item in _entries(ts, V.OUTLIER_REMOVAL, problems):
        if isinstance(item, (list, tuple)) and item:
            layer = str(item[0])
            png = _artifact_id(report, str(item[1])) if len(item) > 1 else None
            out.append(V.Verdict(V.OUTLIER_REMOVAL, V.PRODUCER, _layers(report, layer),
                                 {"layer": layer, "histogram_artifact": png},
                                 manual.JUDGE_TO_MANUAL[V.OUTLIER_REMOVAL],
                                 "MCT found outputs of %s that deviate strongly from the mean." % layer))
        elif isinstance(item, str):
            out.append(V.Verdict(V.OUTLIER_REMOVAL, V.PRODUCER, _layers(report, item), {"layer": item},
                                 manual.JUDGE_TO_MANUAL[V.OUTLIER_REMOVAL], "MCT found outliers in %s." % item))
    for item in _entries(ts, V.SHIFT_NEGATIVE_ACTIVATION, problems):
        if isinstance(item, str):
            out.append(V.Verdict(V.SHIFT_NEGATIVE_ACTIVATION, V.PRODUCER, _layers(report, item), {"layer": item},
                                 manual.JUDGE_TO_MANUAL[V.SHIFT_NEGATIVE_ACTIVATION],
                                 "MCT lists %s as an activation with negative outputs." % item))
    for item in _entries(ts, V.UNBALANCED_CONCATENATION, problems):
        if isinstance(item, (list, tuple)) and len(item) >= 2:
            first, second = str(item[0]), str(item[1])
            formula = str(item[2]) if len(item) > 2 else ""
            scale = trailing_number(formula)
            numbers = {"first_layer": first, "second_layer": second, "scale": scale, "formula": formula,
                       "first_layer_in_report": resolve_name(report, first),
                       "second_layer_in_report": resolve_name(report, second)}
            out.append(V.Verdict(V.UNBALANCED_CONCATENATION, V.PRODUCER, _layers(report, first, second), numbers,
                                 manual.JUDGE_TO_MANUAL[V.UNBALANCED_CONCATENATION],
                                 "MCT compared the value ranges of modules %s and %s (found by name) and recommends "
                                 "scaling: %s." % (first, second, formula)))
    for item in _entries(ts, V.MIXED_PRECISION, problems):
        if isinstance(item, str):
            out.append(V.Verdict(V.MIXED_PRECISION, V.PRODUCER, _layers(report, item), {"layer": item},
                                 manual.JUDGE_TO_MANUAL[V.MIXED_PRECISION],
                                 "MCT found the last layer %s at an extremely small bit width." % item))
    return out, problems
