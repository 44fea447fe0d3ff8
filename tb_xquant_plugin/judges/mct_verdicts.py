"""Verdicts MCT itself wrote to ``troubleshoot_report.json`` (shown as ``source: mct``)."""
from __future__ import annotations

import re
from typing import Any, Dict, List

from tb_xquant_plugin.judges import verdict as V

_SCALE_RE = re.compile(r"([-+]?\d+\.?\d*(?:[eE][-+]?\d+)?|inf|nan)\s*$", re.IGNORECASE)


def load(ts: Dict[str, Any]) -> List[V.Verdict]:
    out: List[V.Verdict] = []
    if not isinstance(ts, dict):
        return out
    for item in ts.get(V.OUTLIER_REMOVAL) or []:
        if isinstance(item, (list, tuple)) and item:
            layer = str(item[0])
            png = str(item[1]) if len(item) > 1 else None
            out.append(V.Verdict(V.OUTLIER_REMOVAL, "mct", [layer], {"layer": layer, "histogram_png": png},
                                 V.MANUAL_FOR_JUDGE[V.OUTLIER_REMOVAL],
                                 "MCT found outputs of %s that deviate strongly from the mean." % layer))
        elif isinstance(item, str):
            out.append(V.Verdict(V.OUTLIER_REMOVAL, "mct", [item], {"layer": item},
                                 V.MANUAL_FOR_JUDGE[V.OUTLIER_REMOVAL], "MCT found outliers in %s." % item))
    for item in ts.get(V.SHIFT_NEGATIVE_ACTIVATION) or []:
        if isinstance(item, str):
            out.append(V.Verdict(V.SHIFT_NEGATIVE_ACTIVATION, "mct", [item], {"layer": item},
                                 V.MANUAL_FOR_JUDGE[V.SHIFT_NEGATIVE_ACTIVATION],
                                 "MCT lists %s as an activation with negative outputs." % item))
    for item in ts.get(V.UNBALANCED_CONCATENATION) or []:
        if isinstance(item, (list, tuple)) and len(item) >= 2:
            first, second = str(item[0]), str(item[1])
            formula = str(item[2]) if len(item) > 2 else ""
            m = _SCALE_RE.search(formula)
            scale = float(m.group(1)) if m else None
            out.append(V.Verdict(V.UNBALANCED_CONCATENATION, "mct", [first, second],
                                 {"first_layer": first, "second_layer": second, "scale": scale, "formula": formula},
                                 V.MANUAL_FOR_JUDGE[V.UNBALANCED_CONCATENATION],
                                 "MCT compared the value ranges of %s and %s (modules found by name) and recommends "
                                 "scaling: %s." % (first, second, formula)))
    for item in ts.get(V.MIXED_PRECISION) or []:
        if isinstance(item, str):
            out.append(V.Verdict(V.MIXED_PRECISION, "mct", [item], {"layer": item},
                                 V.MANUAL_FOR_JUDGE[V.MIXED_PRECISION],
                                 "MCT found the last layer %s at an extremely small bit width." % item))
    return out
