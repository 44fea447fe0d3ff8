"""Unbalanced concatenation, read from the graph itself, next to MCT 2.6.1's name heuristic.

For every concatenation (and add) node, the value range of each input is taken from the logged
float histogram of the input's producer or, failing that, from its activation quantization
threshold in the MCT stage graph.  Every join measured this way is kept (``concat_checks``); when
the widest range is at least ``threshold_ratio_unbalanced_concatenation`` times the narrowest, the
narrower input would be quantized with a step far too coarse for it, and a verdict says so with the
scaling factor to apply (that ratio).

MCT 2.6.1's own judge (``judge_unbalanced_concatnation``) does something else: for each degraded
layer named ``<x>_bn`` / ``<x>_collapsed`` / ``bn_<x>`` it picks two nodes of the
``after_graph_preparation`` stage graph by their names and position in the node list, maps them to
torch modules by replacing ``_`` with ``.``, and compares the ranges of the two modules' inputs on
the float model.  :func:`mct_rule_pairs` reproduces that pairing from the stage logs (the ranges
need the float model, so they come from ``troubleshoot_report.json`` when there is one), and
:func:`agreement` lists, per report, where the two approaches agree and where only one flags."""
from __future__ import annotations

import collections
import dataclasses
import math
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from tb_xquant_plugin import manual
from tb_xquant_plugin.judges.base import CAUSE, Judge, JudgeContext
from tb_xquant_plugin.judges.facts import bounded_put, facts_of
from tb_xquant_plugin.judges.snippets import render
from tb_xquant_plugin.model import countermeasure as C
from tb_xquant_plugin.model.names import module_paths, node_name_of_module, resolve_name
from tb_xquant_plugin.model.report import GRAPH, MCT_KERAS, MCT_PYTORCH, Report
from tb_xquant_plugin.model.verdict import COMPUTED, UNBALANCED_CONCATENATION, Verdict
from tb_xquant_plugin.readers.graphs import GraphNode, layer_name_of, main_nodes

CONCAT_OPS = {"cat", "concat", "concatenate", "stack", "hstack", "vstack"}
ADD_OPS = {"add", "iadd", "__add__", "sum"}

# The stage logs MCT 2.6.1's judge opens (it gives up when one of them is missing) and the one it pairs names in.
MCT_STAGE_LOGS = ("initial_graph", "after_graph_preparation", "pre_statistics_collection_substitutions")
MCT_PAIRING_STAGE = "after_graph_preparation"


def join_kind(op: Optional[str]) -> Optional[str]:
    op = (op or "").lower()
    return "concatenation" if op in CONCAT_OPS else "add" if op in ADD_OPS else None


# Ops whose output values are among their (first) input's: a node of one of these without a range of its own
# takes its producer's.  Max-pooling and the pieces of a chunk / split keep a subset (the range is then the
# smallest one known to hold them); the others keep every value.  Upsampling keeps them only when nearest.
RANGE_KEEPING_OPS = frozenset(op.lower() for op in (
    "MaxPool1d", "MaxPool2d", "MaxPool3d", "max_pool1d", "max_pool2d", "max_pool3d", "AdaptiveMaxPool2d",
    "adaptive_max_pool2d", "getitem", "chunk", "split", "tensor_split", "unbind", "narrow",
    "reshape", "view", "flatten", "Flatten", "unflatten", "Unflatten", "squeeze", "unsqueeze", "permute",
    "transpose", "contiguous", "identity", "Identity", "clone", "detach", "dropout", "Dropout", "Dropout1d",
    "Dropout2d", "Dropout3d", "AlphaDropout", "stochastic_depth", "StochasticDepth", "ChannelShuffle",
    "channel_shuffle", "pixel_shuffle", "PixelShuffle", "pixel_unshuffle", "PixelUnshuffle",
    "UpsamplingNearest2d", "upsample_nearest2d", "expand", "repeat", "tile"))
UPSAMPLE_OPS = frozenset(("upsample", "interpolate"))


def keeps_range(node: GraphNode) -> bool:
    """Whether ``node``'s output values are among its first input's (so its input's range bounds its own)."""
    op = (node.op or "").lower()
    if op in RANGE_KEEPING_OPS:
        return True
    return op in UPSAMPLE_OPS and str(node.attrs.get("mode", "")).strip("'\"") == "nearest"


def value_range(report: Report, name: str) -> Optional[Tuple[float, float, str]]:
    """(low, high, source) of a node's float output: its histogram, else its activation threshold.

    ``name`` is a layer name of the quantized graph (``Report.histograms`` and ``Report.quant`` are keyed by them);
    for MCT's own node names use :func:`mct_value_range`."""
    return _lookup(report.histogram(name), report.quant.get(name))


def mct_value_range(report: Report, mct_name: str) -> Optional[Tuple[float, float, str]]:
    """:func:`value_range` of a node named as MCT names it (stage graphs, histogram tags)."""
    return _lookup(report.mct_histograms.get(mct_name), report.mct_quant.get(mct_name))


def _lookup(h, qp) -> Optional[Tuple[float, float, str]]:
    if h is not None and len(h):
        arr = np.asarray(h)
        lo, hi = float(np.nanmin(arr[:, 0])), float(np.nanmax(arr[:, 1]))
        if np.isfinite(lo) and np.isfinite(hi):
            return lo, hi, "histogram"
    if qp and qp.activation_threshold:
        t = qp.activation_threshold
        return (-t if qp.signed else 0.0), t, "threshold"
    return None


def _range(report: Report, node_id: str) -> Optional[Tuple[float, float, str]]:
    """A display node's range; a node that keeps its input's values (max-pool, reshape, a chunk's piece...)
    without a range of its own has its producer's, up the chain."""
    seen = set()
    while node_id not in seen:
        seen.add(node_id)
        n = report.node_by_id.get(node_id)
        r = value_range(report, layer_name_of(n) if n else node_id.rsplit("/", 1)[-1])
        if r is not None or n is None or not n.inputs or not keeps_range(n):
            return r
        node_id = _data_input(report, n)
    return None


def _data_input(report: Report, n: GraphNode) -> str:
    """The tensor input of a node (a reshape also reads the ints of ``x.size()``: they have no tensor shape)."""
    for i in n.inputs:
        src = report.node_by_id.get(i)
        if src is not None and src.output_shapes and len(src.output_shapes[0]) > 0:
            return i
    return n.inputs[0]


def countermeasure(node: str, small: str, factor: float) -> dict:
    """Scale the narrow input by ``factor`` before the join: a change of the float model."""
    f = float("%.4g" % factor)
    return dict(C.model_change("multiply the output of %s by %g before %s and undo the factor after it"
                               % (small, f, node)), change=C.SCALE_BRANCH, join=str(node), narrow_input=str(small),
                factor=f)


def snippet(node: str, small: str, factor: float, toolchain: str = MCT_PYTORCH) -> Optional[str]:
    """The snippet of :func:`countermeasure` (names only as string literals: judges.snippets)."""
    return render(countermeasure(node, small, factor), toolchain)


# --------------------------------------------------------------------------------------------
# The graph's joins (threshold-independent: measured once per report)
# --------------------------------------------------------------------------------------------
def measure(report: Report) -> List[Dict[str, Any]]:
    """Every concatenation / add node of the graph with the value ranges of its inputs.

    ``ratio`` (widest / narrowest range width), ``scale`` (the factor for the narrow input) and
    ``scale_input`` are null when fewer than two inputs have a range; inputs without one (or with
    an empty range) are listed in ``unmeasured``."""
    out = []
    for n in report.nodes:
        kind = join_kind(n.op)
        if kind is None or len(n.inputs) < 2:
            continue
        ranges, missing = [], []
        for i in n.inputs:
            src_node = report.node_by_id.get(i)
            name = layer_name_of(src_node) if src_node else i  # the report's layer name (no "_layer")
            r = _range(report, i)
            if r is None or not r[1] - r[0] > 0:
                missing.append(name)
                continue
            lo, hi, src = r
            ranges.append({"name": name, "node": i, "range": [lo, hi], "width": hi - lo, "from": src,
                           "module": producing_module(report, src_node)})
        check = {"node": n.name, "node_id": n.id, "op": n.op, "kind": kind, "inputs": ranges, "unmeasured": missing,
                 "ratio": None, "scale": None, "scale_input": None, "wide_input": None}
        if len(ranges) >= 2:
            wide = max(ranges, key=lambda r: r["width"])
            narrow = min(ranges, key=lambda r: r["width"])
            ratio = wide["width"] / narrow["width"]
            check.update(ratio=ratio, scale=ratio, scale_input=narrow["name"], wide_input=wide["name"])
        out.append(check)
    return out


def producing_module(report: Report, node: Optional[GraphNode], limit: int = 8) -> Optional[str]:
    """The layer of the nearest module node (a torch module: its op is a class name) at or above ``node`` along
    single inputs: the module that produced a functional node's values (``relu_27`` -> ``layer2_0_conv2``)."""
    cur = node
    for _ in range(limit):
        if cur is None:
            return None
        if cur.op[:1].isupper() and cur.op != "DummyPlaceHolder":
            return layer_name_of(cur)
        if len(cur.inputs) != 1 or join_kind(cur.op) is not None:
            return None
        cur = report.node_by_id.get(cur.inputs[0])
    return None


def flagged(check: Dict[str, Any], ratio_threshold: float) -> bool:
    return check["ratio"] is not None and check["ratio"] >= ratio_threshold


def checks_json(checks: List[Dict[str, Any]], ratio_threshold: float) -> List[Dict[str, Any]]:
    """The measured joins of one analysis, each with ``flagged`` (ratio >= threshold)."""
    return [dict(c, flagged=flagged(c, ratio_threshold)) for c in checks]


def judge(report: Report, ratio_threshold: float, checks: Optional[List[Dict[str, Any]]] = None) -> List[Verdict]:
    out = []
    for c in (measure(report) if checks is None else checks):
        if not flagged(c, ratio_threshold):
            continue
        ranges = c["inputs"]
        wide = next(r for r in ranges if r["name"] == c["wide_input"])
        narrow = next(r for r in ranges if r["name"] == c["scale_input"])
        ratio, kind, node = c["ratio"], c["kind"], c["node"]
        numbers = {"node": node, "op": c["op"], "kind": kind, "inputs": ranges, "ratio": ratio,
                   "scale": ratio, "scale_input": narrow["name"], "threshold": ratio_threshold}
        msg = ("The %s %s joins %s (range width %.3g) with %s (%.3g): %.1fx apart. Multiply %s by %.3g before it, "
               "or move the %s to where the ranges match." % (
                   kind, node, wide["name"], wide["width"], narrow["name"], narrow["width"], ratio,
                   narrow["name"], ratio, kind))
        out.append(Verdict(UNBALANCED_CONCATENATION, COMPUTED, [node] + [r["name"] for r in ranges], numbers,
                           manual.JUDGE_TO_MANUAL[UNBALANCED_CONCATENATION], msg,
                           snippet(node, narrow["name"], ratio, report.toolchain), countermeasure(node, narrow["name"], ratio)))
    return out


# --------------------------------------------------------------------------------------------
# Joins and their input branches (which nodes feed which input of which join)
# --------------------------------------------------------------------------------------------
def branch_index(nodes: Sequence[GraphNode], display: bool = False) -> Dict[str, List[Tuple[str, int]]]:
    """name -> [(join name, input position)] for every node on an input branch of a join.

    A branch is the join's input node plus the chain of producers above it that feed nothing else
    (single input, single consumer): ``left_0 -> left_1 -> cat`` puts both ``left_0`` and
    ``left_1`` on input 0 of ``cat``.  Walks stop at other joins and at forks, so each node is on
    at most one chain besides being a direct input: linear in the graph size."""
    by_id = {n.id: n for n in nodes}
    consumers = collections.Counter(i for n in nodes for i in n.inputs)
    out: Dict[str, List[Tuple[str, int]]] = {}
    for j in nodes:
        if join_kind(j.op) is None or len(j.inputs) < 2:
            continue
        for b, first in enumerate(j.inputs):
            cur = by_id.get(first)
            seen = set()
            while cur is not None and cur.id not in seen:
                seen.add(cur.id)
                names = (cur.name, layer_name_of(cur)) if display else (cur.name,)
                for name in dict.fromkeys(names):
                    out.setdefault(name, []).append((j.name, b))
                if join_kind(cur.op) is not None or len(cur.inputs) != 1 or consumers[cur.inputs[0]] != 1:
                    break
                cur = by_id.get(cur.inputs[0])
    return out


def pair_join(branches: Dict[str, List[Tuple[str, int]]], joins: Dict[str, GraphNode],
              first: str, second: str) -> Optional[str]:
    """The join two nodes belong to: ``second`` is the join and ``first`` on one of its inputs (MCT's add
    case), or both are on different inputs of one join."""
    if second in joins and any(jn == second for jn, _ in branches.get(first, ())):
        return second
    for ja, ba in branches.get(first, ()):
        for jb, bb in branches.get(second, ()):
            if ja == jb and ba != bb:
                return ja
    return None


# --------------------------------------------------------------------------------------------
# MCT 2.6.1's name heuristic
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class PairingGraph:
    """The ``after_graph_preparation`` stage graph as MCT's judge reads it."""

    names: List[str]  # full node names in GraphDef order (MCT splits them on '/' and takes the last part)
    nodes: List[GraphNode]
    last_index: Dict[str, int]  # short name -> last position (MCT's loops keep the last match)
    longest_first: Dict[str, Tuple[int, int]]  # short name -> (-len(full name), position): MCT's sort by length
    modules: frozenset  # torch module paths: the float model's (module_source "manifest") or assumed from the nodes
    by_name: Dict[str, GraphNode]
    branches: Dict[str, List[Tuple[str, int]]]
    joins: Dict[str, GraphNode]
    module_source: str = "assumed"  # "manifest": the float model's named_modules() the manifest recorded
    path_to_node: Optional[Dict[str, str]] = None  # module path -> node name, when the paths are real
    unmapped: List[str] = dataclasses.field(default_factory=list)  # MCT's module names that are not modules

    @classmethod
    def of(cls, nodes: List[GraphNode], module_paths: Optional[Sequence[str]] = None) -> "PairingGraph":
        names = [n.id for n in nodes]
        last_index: Dict[str, int] = {}
        longest: Dict[str, Tuple[int, int]] = {}
        for k, full in enumerate(names):
            short = full.split("/")[-1]
            last_index[short] = k
            key = (-len(full), k)
            if short not in longest or key < longest[short]:
                longest[short] = key
        # MCT checks `name in dict(float_model.named_modules())`; the float model is not in the logs.  A node
        # whose op is a class (Conv2d, BatchNorm2d) is a call_module node of torch.fx, whose name is the
        # module path with '.' written '_': assume the path had no '_' of its own, as MCT's mapping does.
        # With the float model's own module paths (the manifest's named_modules()), membership is MCT's exactly.
        if module_paths is not None:
            modules = frozenset(module_paths)
            source, path_to_node = "manifest", {p: node_name_of_module(p) for p in module_paths}
        else:
            modules = frozenset(n.name.replace("_", ".") for n in nodes
                                if n.op[:1].isupper() and n.op != "DummyPlaceHolder")
            source, path_to_node = "assumed", None
        main = main_nodes(nodes)
        joins = {n.name: n for n in main if join_kind(n.op) is not None and len(n.inputs) >= 2}
        return cls(names, nodes, last_index, longest, modules, {n.name: n for n in main}, branch_index(main), joins,
                   source, path_to_node)

    def node_of(self, path: str) -> str:
        """The node name of a module path (real paths: fx's sanitising; assumed ones: '.' -> '_')."""
        if self.path_to_node is not None and path in self.path_to_node:
            return self.path_to_node[path]
        return path.replace(".", "_")


def read_pairing_graph(report: Report) -> Tuple[Optional[PairingGraph], Optional[str]]:
    """The stage graph MCT's judge pairs names in, or None and why MCT's judge would not run."""
    if report.stage_graph_loader is None:
        return None, "no MCT stage logs were found for this report (MCT's judge reads them)"
    missing = [s for s in MCT_STAGE_LOGS if report.stage_graph(s)[0] is None]
    if missing:
        reasons = [report.stage_graph(s)[1] or "" for s in missing]
        if any("could not be read" in r for r in reasons) and MCT_PAIRING_STAGE in missing:
            return None, report.stage_graph(MCT_PAIRING_STAGE)[1]
        return None, ("the stage logs lack %s, so MCT 2.6.1's judge skips unbalanced concatenation"
                      % ", ".join(missing))
    return PairingGraph.of(report.stage_graph(MCT_PAIRING_STAGE)[0], module_paths(report)), None


_UNSET = object()


def mct_rule_pairs(g: PairingGraph, degraded: Sequence[str]) -> Tuple[List[Dict[str, Any]], Optional[str]]:
    """The module pairs MCT 2.6.1's ``judge_unbalanced_concatnation`` measures for these degraded layers,
    in its order (pairs of two modules first, then a module and an ``add``), and the error MCT itself
    would stop with, if any.

    Its rules, on the short node names of the ``after_graph_preparation`` graph:
    ``<x>_bn``: ``x`` and the node listed right after it; ``bn_<x>``: the node listed right before ``x`` and
    ``x``; ``<x>_collapsed``: the node with the longest full name whose short name starts ``x``, then the
    one named as the rest of ``x`` (or that rest without ``_bn``).  Both names become module paths by
    replacing ``_`` with ``.``; the pair is kept when both are modules, or the first is a module and the
    second is ``add``.  MCT does not reset its two variables between layers, so a layer whose name
    matches nothing reuses the previous layer's nodes -- reproduced here."""
    first_node: Any = _UNSET
    second_node: Any = _UNSET
    g.unmapped.clear()
    modules_pairs: List[Dict[str, Any]] = []
    add_pairs: List[Dict[str, Any]] = []
    names = g.names
    for layer in degraded:
        if layer[-3:] == "_bn":
            rule, target = "_bn", layer[:-3]
            k = g.last_index.get(target)
            if k is not None:
                if k + 1 >= len(names):
                    return modules_pairs + add_pairs, ("MCT 2.6.1 stops with IndexError at %s: %s is the last node "
                                                       "of the graph" % (layer, target))
                first_node, second_node = names[k], names[k + 1]
        elif layer[-10:] == "_collapsed":
            rule, target = "_collapsed", layer[:-10]
            first_node = None
            best = None
            for end in range(len(target) + 1):
                key = g.longest_first.get(target[:end])
                if key is not None and (best is None or key < best[0]):
                    best = (key, target[:end])
            if best is not None:
                first_node = best[1]
                rest = target[len(first_node) + 1:]
                cands = [(g.longest_first[s], s) for s in {rest, rest[:-3] if rest.endswith("_bn") else None}
                         if s is not None and s in g.longest_first]
                if cands:
                    second_node = min(cands)[1]
        elif layer[:3] == "bn_":
            rule, target = "bn_", layer[3:]
            k = g.last_index.get(target)
            if k is not None:
                first_node, second_node = names[k - 1], names[k]
        else:
            continue
        if first_node is _UNSET or (first_node is not None and second_node is _UNSET):
            return modules_pairs + add_pairs, ("MCT 2.6.1 stops with UnboundLocalError at %s: no node of the "
                                               "graph matches its name" % layer)
        if first_node is None or second_node is None:
            continue
        first = first_node.split("/")[-1].replace("_", ".")
        second = second_node.split("/")[-1].replace("_", ".")
        entry = {"layer": layer, "rule": rule, "first": first, "second": second}
        if first in g.modules and second in g.modules:
            modules_pairs.append(dict(entry, kind="concatenation"))
        elif first in g.modules and second == "add":
            add_pairs.append(dict(entry, kind="add"))
        else:  # MCT's '_' -> '.' gives a name that is not a module of the float model: it skips the pair
            for nm in (first, second):
                if nm not in g.modules and nm != "add" and nm not in g.unmapped:
                    g.unmapped.append(nm)
    return modules_pairs + add_pairs, None


def _mct_ratio(formula: str) -> Optional[float]:
    """MCT's ``range_ratio`` from its ``"first layer * <ratio>"`` text, folded to >= 1 as MCT compares it."""
    try:
        r = float(str(formula).rsplit("*", 1)[-1])
    except ValueError:
        return None
    if math.isnan(r) or r <= 0:
        return None
    return r if r >= 1.0 else 1.0 / r


def _estimate(report: Report, g: PairingGraph, pair: Dict[str, Any]) -> Optional[float]:
    """MCT's ratio from the logs, when they hold the ranges it measures: the input of each module (the output of
    the node before it) or, for an add, the add's output."""
    def input_width(module: str) -> Optional[float]:
        n = g.by_name.get(module.replace(".", "_"))
        src = g.by_name.get(n.inputs[0].split("/")[-1]) if n is not None and n.inputs else None
        r = mct_value_range(report, src.name) if src is not None else None
        return r[1] - r[0] if r is not None else None

    w1 = input_width(pair["first"])
    if pair["kind"] == "add":
        r = mct_value_range(report, "add")
        w2 = r[1] - r[0] if r is not None else None
    else:
        w2 = input_width(pair["second"])
    if not w1 or not w2 or w1 <= 0 or w2 <= 0:
        return None
    return max(w1, w2) / min(w1, w2)


def _fmt(x: Optional[float]) -> str:
    return "?" if x is None else "%.3g" % x


def pairing_graph(report: Report) -> Tuple[Optional[PairingGraph], Optional[str]]:
    """:func:`read_pairing_graph` (the stage graphs are loaded once per report, when MCT's rule needs them)."""
    return read_pairing_graph(report)


def display_joins(report: Report) -> Tuple[Dict[str, List[Tuple[str, int]]], Dict[str, GraphNode]]:
    """Input branches and joins of the quantized graph, once per report."""
    f = facts_of(report)
    if f.display_joins is None:
        joins = {n.name: n for n in report.nodes if join_kind(n.op) is not None and len(n.inputs) >= 2}
        f.display_joins = (branch_index(report.nodes, display=True), joins)
    return f.display_joins


def _needs_pairing(degraded: Sequence[str]) -> bool:
    return any(l[-3:] == "_bn" or l[-10:] == "_collapsed" or l[:3] == "bn_" for l in degraded)


def agreement(report: Report, checks: List[Dict[str, Any]], degraded: Sequence[str], ratio_threshold: float,
              judges_skipped: bool) -> Dict[str, Any]:
    """Where the graph's measurement and MCT 2.6.1's name heuristic agree on unbalanced joins.

    ``mct_pairs``: the pairs MCT's rule takes for the current degraded layers (from the stage logs), with
    MCT's ratio from ``troubleshoot_report.json`` when it reported the pair, else an estimate from the logs
    when they hold the ranges MCT measures; pairs only found in ``troubleshoot_report.json`` are added.
    ``items``: one per join or pair that either side flags, ``status`` ``agree`` / ``mct_only`` /
    ``graph_only`` with the ``reason`` in numbers."""
    out: Dict[str, Any] = {"threshold": ratio_threshold, "mct_source": None, "mct_rule": None, "mct_pairs": [],
                           "items": [], "counts": {"agree": 0, "mct_only": 0, "graph_only": 0}}
    if judges_skipped:
        out["mct_rule"] = {"available": False, "problem": "the judges are skipped (degraded ratio at or over the limit), "
                                                          "as MCT skips them", "error": None}
        return out
    ts = report.mct_troubleshoot if isinstance(report.mct_troubleshoot, dict) else None
    # The stage graph is read only when MCT's rule has a layer to pair or MCT's pairs need placing: without
    # a degraded <x>_bn / <x>_collapsed / bn_<x> layer the rule yields nothing, whatever the logs hold.
    if report.toolchain == MCT_KERAS:  # MCT's judge maps names to torch modules; MCT has none for Keras
        ts, g, problem = None, None, "MCT 2.6.1 has no troubleshooting (so no such judge) for Keras"
    else:
        g, problem = pairing_graph(report) if (ts is not None or _needs_pairing(degraded)) else (None, None)
    pairs: List[Dict[str, Any]] = []
    error = None
    if g is not None:
        pairs, error = mct_rule_pairs(g, degraded)
    out["mct_rule"] = {"available": None if g is None and problem is None else g is not None, "problem": problem,
                       "error": error, "module_paths": _module_paths_text(g, report)}

    # MCT's verdicts, when it wrote them, decide which pairs it flagged.
    reported: List[Tuple[str, str, Optional[float]]] = []
    if ts is not None:
        out["mct_source"] = "troubleshoot_report"
        items = ts.get(UNBALANCED_CONCATENATION)
        for item in (items[:2000] if isinstance(items, list) else []):  # wrong shapes: a problem of the producer
            if isinstance(item, (list, tuple)) and len(item) >= 2:
                reported.append((str(item[0]), str(item[1]), _mct_ratio(item[2]) if len(item) > 2 else None))
    elif problem is None:
        out["mct_source"] = "name_heuristic"
    left = list(reported)
    for p in pairs:
        hit = next((r for r in left if r[0] == p["first"] and r[1] == p["second"]), None)
        if hit is not None:
            left.remove(hit)
            p.update(ratio=hit[2], ratio_from="troubleshoot_report", in_troubleshoot_report=True)
        else:
            est = _estimate_once(report, g, p)
            p.update(ratio=est, ratio_from="estimate" if est is not None else None,
                     in_troubleshoot_report=False if ts is not None else None)
    for first, second, ratio in left:
        pairs.append({"layer": None, "rule": None, "first": first, "second": second,
                      "kind": "add" if second == "add" else "concatenation", "ratio": ratio,
                      "ratio_from": "troubleshoot_report", "in_troubleshoot_report": True})
    for p in pairs:
        if p["ratio_from"] == "troubleshoot_report":
            p["flagged"] = p["ratio"] is not None and p["ratio"] >= ratio_threshold
        elif ts is not None:
            p["flagged"] = False  # MCT measured it and did not report it (or did not find the modules)
        else:
            p["flagged"] = None if p["ratio"] is None else p["ratio"] >= ratio_threshold
        p["join"], p["relation"] = _locate_once(report, g, p)
    out["mct_pairs"] = pairs

    index = join_index(report, checks)
    by_node = index.by_node
    pairs_at: Dict[str, List[Dict[str, Any]]] = {}
    for p in pairs:
        if p["join"]:
            pairs_at.setdefault(p["join"], []).append(p)
    items: List[Dict[str, Any]] = []
    agreed = set()
    for p in pairs:
        if not p["flagged"]:
            continue
        pair_text = "%s/%s" % (p["first"], p["second"])
        base = {"join": p["join"], "mct_pair": [p["first"], p["second"]], "mct_ratio": p["ratio"],
                "graph_ratio": None, "threshold": ratio_threshold}
        c = by_node.get(p["join"]) if p["join"] else None
        if c is not None:
            base["graph_ratio"] = c["ratio"]
        if c is not None and flagged(c, ratio_threshold):
            agreed.add(c["node"])
            items.append(dict(base, status="agree", reason=(
                "both flag %s: graph ratio %s >= %g (%s vs %s), MCT's pair %s ratio %s"
                % (c["node"], _fmt(c["ratio"]), ratio_threshold, c["wide_input"], c["scale_input"], pair_text,
                   _fmt(p["ratio"])))))
        elif c is not None and c["ratio"] is not None:
            items.append(dict(base, status="mct_only", reason=(
                "graph ratio %s < %g at %s (%s vs %s); MCT's pair %s gives %s"
                % (_fmt(c["ratio"]), ratio_threshold, c["node"], c["wide_input"], c["scale_input"], pair_text,
                   _fmt(p["ratio"])))))
        elif c is not None:
            items.append(dict(base, status="mct_only", reason=(
                "the logs hold no value range for %s of %s, so the graph cannot measure it"
                % (" and ".join(c["unmeasured"]) or "the inputs", c["node"]))))
        elif p["join"]:
            items.append(dict(base, status="mct_only", reason=(
                "MCT's pair %s feeds %s, which is not in the quantized graph (MCT merged it into another layer), "
                "so there is no join left to measure" % (pair_text, p["join"]))))
        else:
            measured = index.widest
            items.append(dict(base, status="mct_only", reason=(
                "MCT's name heuristic pairs %s, which are not inputs of one join%s%s"
                % (pair_text, " (%s)" % p["relation"] if p["relation"] else "",
                   "; the graph measures %s" % ", ".join(
                       "%s at %s %s %g" % (c["node"], _fmt(c["ratio"]), ">=" if flagged(c, ratio_threshold) else "<",
                                           ratio_threshold) for c in measured) if measured else ""))))
    for c in index.flagged(ratio_threshold):
        if c["node"] in agreed:
            continue
        mine = pairs_at.get(c["node"])
        if mine:
            p = mine[0]
            why = ("MCT's pair %s/%s reaches %s but %s" % (
                p["first"], p["second"], c["node"],
                "MCT did not report it (its ratio was under %g or the module paths are not in the float model)"
                % ratio_threshold if p["ratio"] is None and ts is not None else
                "its ratio needs the float model (not in the logs)" if p["ratio"] is None else
                "its ratio is %s < %g" % (_fmt(p["ratio"]), ratio_threshold)))
        elif out["mct_source"] is None:
            why = "MCT 2.6.1's judge cannot run here: %s" % (problem or "no stage logs")
        else:
            why = ("MCT 2.6.1 only compares modules next to a degraded layer named <x>_bn, <x>_collapsed or bn_<x>; "
                   "none of the %d degraded layers leads its name heuristic to two inputs of %s"
                   % (len(degraded), c["node"]))
        items.append({"status": "graph_only", "join": c["node"], "mct_pair": None, "mct_ratio": None,
                      "graph_ratio": c["ratio"], "threshold": ratio_threshold,
                      "reason": "graph ratio %s >= %g (%s vs %s); %s" % (
                          _fmt(c["ratio"]), ratio_threshold, c["wide_input"], c["scale_input"], why)})
    out["items"] = items
    for it in items:
        out["counts"][it["status"]] += 1
    return out


def _module_paths_text(g: Optional[PairingGraph], report: Report) -> str:
    """Where the replay's module paths come from, and the names MCT's mapping did not find among them."""
    if g is not None and g.module_source == "manifest":
        text = "the float model's named_modules() (%d, recorded in the manifest)" % len(g.modules)
        if g.unmapped:
            text += ("; MCT's '_' -> '.' mapping gives %s, not module paths of the float model, so MCT skips them"
                     % ", ".join(g.unmapped[:5]) + (" and %d more" % (len(g.unmapped) - 5) if len(g.unmapped) > 5
                                                    else ""))
        return text
    text = ("assumed from the node names, '_' read as '.' (the float model's named_modules() is not in the logs: "
            "write the report with tb_xquant_plugin.mct_run.xquant_report_with_manifest to record it)")
    if g is not None and g.unmapped:
        text += "; names it could not map to a module node: %s" % ", ".join(g.unmapped[:5]) + (
            " and %d more" % (len(g.unmapped) - 5) if len(g.unmapped) > 5 else "")
    return text


def _locate_once(report: Report, g: Optional[PairingGraph], pair: Dict[str, Any]) -> Tuple[Optional[str], Optional[str]]:
    """:func:`_locate`, once per pair of module paths and report (the pairing graph is the report's)."""
    places = facts_of(report).pair_places
    key = (g is None, pair["first"], pair["second"])
    if key not in places:
        places[key] = _locate(report, g, pair)
    return places[key]


def _estimate_once(report: Report, g: PairingGraph, pair: Dict[str, Any]) -> Optional[float]:
    """:func:`_estimate`, once per pair and report."""
    estimates = facts_of(report).pair_estimates
    key = (pair["first"], pair["second"], pair["kind"])
    if key not in estimates:
        estimates[key] = _estimate(report, g, pair)
    return estimates[key]


@dataclasses.dataclass
class JoinIndex:
    """What :func:`agreement` looks up in a list of measured joins: by node name, the three widest, and the ones at
    or over each ratio threshold (bounded: MAX_PER_THRESHOLD)."""

    checks: List[Dict[str, Any]]
    by_node: Dict[str, Dict[str, Any]]
    widest: List[Dict[str, Any]]
    flagged_at: Dict[float, List[Dict[str, Any]]] = dataclasses.field(default_factory=dict)

    def flagged(self, ratio_threshold: float) -> List[Dict[str, Any]]:
        if ratio_threshold not in self.flagged_at:
            bounded_put(self.flagged_at, ratio_threshold, [c for c in self.checks if flagged(c, ratio_threshold)])
        return self.flagged_at[ratio_threshold]


def join_index(report: Report, checks: List[Dict[str, Any]]) -> JoinIndex:
    """The :class:`JoinIndex` of ``checks``, kept per report when it is the report's own :func:`joins_of` list."""
    f = facts_of(report)
    if checks is f.joins and f.join_index is not None:
        return f.join_index
    idx = JoinIndex(checks, {c["node"]: c for c in checks},
                    sorted((c for c in checks if c["ratio"] is not None), key=lambda c: -c["ratio"])[:3])
    if checks is f.joins:
        f.join_index = idx
    return idx


def _locate(report: Report, g: Optional[PairingGraph], pair: Dict[str, Any]) -> Tuple[Optional[str], Optional[str]]:
    """The join a pair of MCT module paths belongs to, or None and how the two relate instead."""
    if g is not None:
        a, b = g.node_of(pair["first"]), g.node_of(pair["second"])
    else:
        a, b = pair["first"].replace(".", "_"), pair["second"].replace(".", "_")
    if g is not None and a in g.by_name:
        j = pair_join(g.branches, g.joins, a, b)
        if j is not None:
            return j, None
        na, nb = g.by_name.get(a), g.by_name.get(b)
        if nb is not None and any(i.split("/")[-1] == a for i in nb.inputs):
            return None, "%s consumes %s" % (pair["second"], pair["first"])
        if na is not None and nb is not None and any(i.split("/")[-1] == b for i in na.inputs):
            return None, "%s consumes %s" % (pair["first"], pair["second"])
        return None, None
    # No stage graph: find the modules in the quantized graph by the names MCT gives them there.
    ra, rb = resolve_name(report, pair["first"]), resolve_name(report, pair["second"])
    if ra is None or rb is None:
        missing = pair["first"] if ra is None else pair["second"]
        return None, "%s is not in the quantized graph" % missing
    branches, joins = display_joins(report)
    return pair_join(branches, joins, ra, rb), None


def joins_of(report: Report) -> List[Dict[str, Any]]:
    """:func:`measure`, once per report."""
    f = facts_of(report)
    if f.joins is None:
        f.joins = measure(report)
    return f.joins


def joins_json(report: Report, ratio_threshold: float) -> List[Dict[str, Any]]:
    """:func:`checks_json` for one ratio threshold, kept for a bounded number of thresholds."""
    f = facts_of(report)
    if ratio_threshold not in f.joins_json:
        bounded_put(f.joins_json, ratio_threshold, checks_json(joins_of(report), ratio_threshold))
    return f.joins_json[ratio_threshold]


def run(ctx: JudgeContext) -> List[Verdict]:
    f = facts_of(ctx.report)
    thr = ctx.thresholds.ratio_unbalanced_concatenation
    if thr not in f.concat_verdicts:  # depends on the ratio threshold only
        bounded_put(f.concat_verdicts, thr, judge(ctx.report, thr, joins_of(ctx.report)))
    return f.concat_verdicts[thr]


JUDGE = Judge(UNBALANCED_CONCATENATION, CAUSE, frozenset((GRAPH,)), run,
              doc="a concatenation or add whose inputs' value ranges are at least the ratio threshold apart")
