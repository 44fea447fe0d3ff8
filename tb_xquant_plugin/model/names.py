"""How MCT 2.6.1 names things, mapped onto a report's layer and node names."""
from __future__ import annotations

import bisect
from typing import Optional

from tb_xquant_plugin.model.report import Report


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
