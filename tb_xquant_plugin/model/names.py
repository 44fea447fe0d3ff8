"""How MCT 2.6.1 names things, mapped onto a report's layer and node names."""
from __future__ import annotations

import bisect
import re
from typing import Dict, List, Optional

from tb_xquant_plugin.model import manifest as mf
from tb_xquant_plugin.model.report import Report

# Stage graphs from before BatchNorm folding, where a BatchNorm is still its own node fed by its convolution.
UNFOLDED_STAGES = ("initial_graph", "after_graph_preparation")
_NOT_IDENTIFIER = re.compile(r"[^0-9A-Za-z_]")


def node_name_of_module(path: str) -> str:
    """The torch.fx node name of a module path: every character that is not a letter, digit or ``_`` becomes
    ``_`` (``stem.0`` -> ``stem_0``, ``trunk_output.block3.block3-5`` -> ``trunk_output_block3_block3_5``)."""
    return _NOT_IDENTIFIER.sub("_", path)


def _known(report: Report, name: str) -> bool:
    return name in report.layer_by_name or name in report.node_by_name


def _direct(report: Report, name: str) -> Optional[str]:
    if _known(report, name):
        return name
    base = node_name_of_module(name)
    for cand in (base, base + "_bn", base + "_collapsed", "bn_" + base):
        if _known(report, cand):
            return cand
    return None


def resolve_name(report: Report, name: str) -> Optional[str]:
    """The report's name for something MCT printed: a layer, a graph node, or a module path.

    A module path ``a.b.0`` is written ``a_b_0`` in MCT's graph; after folding it may carry a
    suffix (``a_b_0_bn``, ``a_b_0_collapsed``) or a ``bn_`` prefix.  A BatchNorm folded into the
    convolution before it resolves to that convolution's layer (:func:`folded_into`)."""
    direct = _direct(report, name)
    if direct is not None:
        return direct
    folded = folded_into(report, name)
    if folded is not None:
        return folded
    if "." not in name:
        return None
    base = node_name_of_module(name)
    names = report.sorted_layer_names
    prefix = base + "_"
    i = bisect.bisect_left(names, prefix)
    # exactly one layer name starting with the prefix (names are sorted: look at two)
    prefixed = [n for n in names[i:i + 2] if n.startswith(prefix)]
    return prefixed[0] if len(prefixed) == 1 else None


def _module_before(report: Report, base: str) -> Optional[str]:
    """The module listed just before a BatchNorm in the float model's ``named_modules()`` (the manifest's), when
    the BatchNorm is one and the module before it is a convolution or linear layer."""
    modules = mf.float_modules(report.manifest)
    if not modules:
        return None
    for k, (path, cls) in enumerate(modules):
        if node_name_of_module(path) == base:
            if not cls.startswith("BatchNorm") or k == 0:
                return None
            prev, prev_cls = modules[k - 1]
            return prev if prev_cls.startswith(("Conv", "Linear")) else None
    return None


def _input_in_stage_graph(report: Report, base: str) -> Optional[str]:
    """The node feeding a BatchNorm node in a stage graph from before folding."""
    for stage in UNFOLDED_STAGES:
        nodes, _why = report.stage_graph(stage)
        if not nodes:
            continue
        by_id = {n.id: n for n in nodes}
        for n in nodes:
            if n.name == base and n.op.startswith("BatchNorm") and len(n.inputs) == 1:
                src = by_id.get(n.inputs[0])
                return src.name if src is not None else n.inputs[0].split("/")[-1]
    return None


def folded_into(report: Report, name: str) -> Optional[str]:
    """The report layer a BatchNorm was folded into: its convolution's layer (``<conv>_bn``...).

    The convolution is found in the float model's modules the manifest recorded, else in a stage graph from
    before folding, else by position (``stem.1`` after ``stem.0``)."""
    base = node_name_of_module(name)
    conv: Optional[str] = _module_before(report, base)
    if conv is None and report.stage_graph_loader is not None:
        conv = _input_in_stage_graph(report, base)
    if conv is None:
        m = re.match(r"^(.*?)(\d+)$", name)
        if m and int(m.group(2)) > 0:
            conv = "%s%d" % (m.group(1), int(m.group(2)) - 1)
        else:
            return None
    found = _direct(report, conv)
    if found is None or found == node_name_of_module(conv):
        # the convolution alone is no proof of folding: its folded layer carries the BatchNorm's suffix
        cb = node_name_of_module(conv) + "_bn"
        found = cb if _known(report, cb) else None
    return found


def module_map(report: Report) -> Optional[Dict[str, str]]:
    """``{torch.fx node name: module path}`` of the float model's modules, when the manifest recorded them."""
    modules = mf.float_modules(report.manifest)
    if modules is None:
        return None
    return {node_name_of_module(path): path for path, _cls in modules}


def module_paths(report: Report) -> Optional[List[str]]:
    modules = mf.float_modules(report.manifest)
    return None if modules is None else [p for p, _ in modules]
