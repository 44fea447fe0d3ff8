"""Verdicts MCT itself wrote to ``troubleshoot_report.json`` (shown as ``source: mct``).

MCT names things in two ways there: layers and activations by their graph names (``stem_act``,
``fc1_act``), and, in its unbalanced-concatenation judge, torch *module* paths (``stem.0``).
Each verdict's ``layers`` are the report's own names (a quant_report.json layer or a graph node),
so the panel can select them; MCT's original strings stay in ``numbers``.  A histogram PNG path
becomes the id of the report artifact it points at (never a file path)."""
from __future__ import annotations

import bisect
import posixpath
import re
from typing import Any, Dict, List, Optional

from tb_xquant_plugin.judges import verdict as V
from tb_xquant_plugin.model.report import Report

_SCALE_RE = re.compile(r"([-+]?\d+\.?\d*(?:[eE][-+]?\d+)?|inf|nan)\s*$", re.IGNORECASE)


def resolve_name(report: Report, name: str) -> Optional[str]:
    """The report's name for something MCT printed: a layer, a graph node, or a module path.

    A module path ``a.b.0`` is written ``a_b_0`` in MCT's graph; after folding it may carry a
    suffix (``a_b_0_bn``, ``a_b_0_collapsed``) or a ``bn_`` prefix."""
    if name in report.layer_by_name or name in report.node_by_name:
        return name
    base = name.replace(".", "_")
    for cand in (base, base + "_bn", base + "_collapsed", "bn_" + base):
        if cand in report.layer_by_name or cand in report.node_by_name:
            return cand
    if "." not in name:
        return None
    names = report.sorted_layer_names
    prefix = base + "_"
    i = bisect.bisect_left(names, prefix)
    # exactly one layer name starting with the prefix (names are sorted: look at two)
    prefixed = [n for n in names[i:i + 2] if n.startswith(prefix)]
    return prefixed[0] if len(prefixed) == 1 else None


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


def load(report: Report) -> List[V.Verdict]:
    ts: Dict[str, Any] = report.mct_troubleshoot  # type: ignore[assignment]
    out: List[V.Verdict] = []
    if not isinstance(ts, dict):
        return out
    for item in ts.get(V.OUTLIER_REMOVAL) or []:
        if isinstance(item, (list, tuple)) and item:
            layer = str(item[0])
            png = _artifact_id(report, str(item[1])) if len(item) > 1 else None
            out.append(V.Verdict(V.OUTLIER_REMOVAL, "mct", _layers(report, layer),
                                 {"layer": layer, "histogram_artifact": png},
                                 V.MANUAL_FOR_JUDGE[V.OUTLIER_REMOVAL],
                                 "MCT found outputs of %s that deviate strongly from the mean." % layer))
        elif isinstance(item, str):
            out.append(V.Verdict(V.OUTLIER_REMOVAL, "mct", _layers(report, item), {"layer": item},
                                 V.MANUAL_FOR_JUDGE[V.OUTLIER_REMOVAL], "MCT found outliers in %s." % item))
    for item in ts.get(V.SHIFT_NEGATIVE_ACTIVATION) or []:
        if isinstance(item, str):
            out.append(V.Verdict(V.SHIFT_NEGATIVE_ACTIVATION, "mct", _layers(report, item), {"layer": item},
                                 V.MANUAL_FOR_JUDGE[V.SHIFT_NEGATIVE_ACTIVATION],
                                 "MCT lists %s as an activation with negative outputs." % item))
    for item in ts.get(V.UNBALANCED_CONCATENATION) or []:
        if isinstance(item, (list, tuple)) and len(item) >= 2:
            first, second = str(item[0]), str(item[1])
            formula = str(item[2]) if len(item) > 2 else ""
            m = _SCALE_RE.search(formula)
            scale = float(m.group(1)) if m else None
            numbers = {"first_layer": first, "second_layer": second, "scale": scale, "formula": formula,
                       "first_layer_in_report": resolve_name(report, first),
                       "second_layer_in_report": resolve_name(report, second)}
            out.append(V.Verdict(V.UNBALANCED_CONCATENATION, "mct", _layers(report, first, second), numbers,
                                 V.MANUAL_FOR_JUDGE[V.UNBALANCED_CONCATENATION],
                                 "MCT compared the value ranges of modules %s and %s (found by name) and recommends "
                                 "scaling: %s." % (first, second, formula)))
    for item in ts.get(V.MIXED_PRECISION) or []:
        if isinstance(item, str):
            out.append(V.Verdict(V.MIXED_PRECISION, "mct", _layers(report, item), {"layer": item},
                                 V.MANUAL_FOR_JUDGE[V.MIXED_PRECISION],
                                 "MCT found the last layer %s at an extremely small bit width." % item))
    return out
