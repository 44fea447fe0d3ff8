"""Pair the nodes of XQuant's quantized graph with MCT's own node names, by structure.

Three torch.fx traces meet in an MCT 2.6.1 report for PyTorch:

* the stage graphs of ``mct.set_log_folder``: snapshots of the one MCT graph of the quantization run, read from
  the float model (MCT's ``model_reader``), so they share its node names from stage to stage;
* the float histograms of the ``xquant`` run: XQuant builds a second MCT graph of the float model
  (``graph_preparation_runner`` with the default QuantizationConfig) and tags each histogram with that graph's
  node name.  Same model, same tracer, same substitutions before statistics: its names are those of the stage
  graphs before shift-negative correction (checked on real runs: every tag is a node of
  ``pre_statistics_collection_substitutions``);
* the graph of the ``xquant`` run: a fresh fx trace of the quantized model MCT rebuilt.  Its module nodes are
  named after the modules, which MCT named after its nodes, so those names agree; its functional nodes
  (``relu_N``, ``add_N``, ``getitem_N``) are numbered anew in the rebuilt model's execution order, so ``relu_6``
  there may be ``relu_8`` in MCT's graph, and the nodes MCT inserted (shift-negative ``add`` / ``pad``) shift the
  numbers of every later node of their op.

:func:`match` pairs each node of the quantized graph with its node of a stage graph without reading an
auto-numbered name: the model's inputs (by position) and the module nodes (whose names agree) first, then
outwards -- a node pairs with the one node of the same op (and output shape) whose already-paired inputs are the
partners of its own (forwards), or an unpaired input of a paired node with the one unpaired input of its partner
that fits it (backwards).  Siblings nothing else tells apart (the pieces of a chunk) pair in execution order.  A
node with no unique counterpart stays unpaired: it gets no histogram and no threshold rather than another node's.
:func:`rekey` then keys the histograms and quantization parameters by the quantized graph's names, and
:func:`inserted_by_mct` recognises the nodes MCT added (absent from the stages logged before it added them).

Pure functions over :class:`~tb_xquant_plugin.readers.graphs.GraphNode` lists: the producer reads the files."""
from __future__ import annotations

import collections
import dataclasses
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Set, Tuple, TypeVar

from tb_xquant_plugin.readers.graphs import GraphNode, layer_name_of

PLACEHOLDER = "DummyPlaceHolder"
# Stages logged before shift-negative correction, latest first: their node names are the float graph's
# (the histograms' tags).  A node of the final stage absent from them was inserted by MCT afterwards.
BEFORE_INSERTION_STAGES = ("after_statistic_collection", "after_candidates_filtering", "after_graph_marking",
                           "pre_statistics_collection_substitutions")
# How MCT 2.6.1 names the nodes it inserts (core/pytorch/graph_substitutions/substitutions/...), and what they do.
INSERTED_SUFFIXES = (
    ("_post_add", "shift-negative correction: adds the shift to the output of %s"),
    ("_pre_pad", "shift-negative correction: pads the input of %s with the shift"),
    ("_reconstructed", "BatchNorm reconstruction after %s"),
)

# Ops that return their input in eval mode.  One trace may keep such a node where the other traced through it
# (XQuant's trace of the rebuilt model drops torchvision's stochastic_depth): an op that only one graph has is
# read through, its consumers paired as if they read its input.
EVAL_IDENTITY_OPS = frozenset(("stochastic_depth", "dropout", "dropout1d", "dropout2d", "dropout3d", "alpha_dropout",
                               "feature_alpha_dropout", "identity", "Identity", "contiguous", "clone", "detach"))

V = TypeVar("V")


def is_module_node(node: GraphNode) -> bool:
    """A call_module node of torch.fx: its op is the module's class (``Conv2d``, ``ReLU``), its name the module's."""
    return node.op[:1].isupper() and node.op != PLACEHOLDER


def stage_main_nodes(nodes: Sequence[GraphNode]) -> List[GraphNode]:
    """A stage graph's nodes without MCT's ``.weights`` / ``.activation`` helpers, each reading its producers
    directly (a main node reads ``<producer>.activation``; its own ``.weights`` is dropped)."""
    main = [n for n in nodes if not (n.id.endswith(".weights") or n.id.endswith(".activation"))]
    ids = {n.id for n in main}
    out = []
    for n in main:
        ins = []
        for i in n.inputs:
            if i.endswith(".activation"):
                i = i[: -len(".activation")]
            if i in ids and i != n.id:
                ins.append(i)
        out.append(n.with_inputs(ins))
    return out


@dataclasses.dataclass
class Matching:
    """Which stage-graph node each node of the quantized graph is (ids of both graphs)."""

    pairs: Dict[str, str]  # quantized-graph node id -> stage-graph node id
    stage_names: Dict[str, str]  # quantized-graph node id -> the stage node's (MCT's) short name
    how: Dict[str, str]  # quantized-graph node id -> "input" | "module" | "structure"
    unpaired: List[str]  # quantized-graph node ids without a counterpart (graph order)

    def __len__(self) -> int:
        return len(self.pairs)


def _same_shape(a: GraphNode, b: GraphNode) -> Optional[bool]:
    """Whether two nodes' (first) output shapes agree, a dimension of -1 (dynamic) agreeing with any; None when
    one of them has none logged."""
    if not a.output_shapes or not b.output_shapes:
        return None
    x, y = a.output_shapes[0], b.output_shapes[0]
    return len(x) == len(y) and all(i == j or i < 0 or j < 0 for i, j in zip(x, y))


def match(quantized: Sequence[GraphNode], stage: Sequence[GraphNode]) -> Matching:
    """Pair the quantized graph's nodes (the display graph: no fake-quantize nodes) with a stage graph's main
    nodes (:func:`stage_main_nodes`) by structure.  Linear in the graph size for MCT's graphs."""
    quantized = _read_through(quantized, {n.op for n in stage})
    stage = _read_through(stage, {n.op for n in quantized})
    q_by_id = {n.id: n for n in quantized}
    s_by_id = {n.id: n for n in stage}
    q_pos = {n.id: k for k, n in enumerate(quantized)}
    s_pos = {n.id: k for k, n in enumerate(stage)}
    q_cons: Dict[str, List[str]] = collections.defaultdict(list)
    s_cons: Dict[str, List[str]] = collections.defaultdict(list)
    for nodes, by_id, cons in ((quantized, q_by_id, q_cons), (stage, s_by_id, s_cons)):
        for n in nodes:
            for i in (n.inputs if len(n.inputs) < 2 else dict.fromkeys(n.inputs)):
                if i in by_id:
                    cons[i].append(n.id)
    q2s: Dict[str, str] = {}
    s2q: Dict[str, str] = {}
    how: Dict[str, str] = {}
    work: collections.deque = collections.deque()

    def pair(q: str, s: str, why: str) -> None:
        q2s[q], s2q[s], how[q] = s, q, why
        work.append(q)
        work.extend(q_cons.get(q, ()))
        work.extend(i for i in q_by_id[q].inputs if i in q_by_id)

    # 1. The model's inputs, by position: XQuant's trace reads them as getitem(_args, k); MCT's graph as
    #    one placeholder per input.
    q_inputs = []
    for n in quantized:
        if n.op == PLACEHOLDER:
            users = [q_by_id[c] for c in q_cons.get(n.id, ())]
            getitems = [u for u in users if u.op == "getitem" and u.inputs == [n.id]]
            q_inputs.extend(getitems if getitems else [n])
    s_inputs = [n for n in stage if n.op == PLACEHOLDER]
    if len(q_inputs) == len(s_inputs):
        for qn, sn in zip(q_inputs, s_inputs):
            pair(qn.id, sn.id, "input")

    # 2. Module nodes: the names agree (a wrapped layer adds "_layer"), the op must too.
    s_by_name: Dict[str, List[GraphNode]] = collections.defaultdict(list)
    for n in stage:
        s_by_name[n.name].append(n)
    for n in quantized:
        if n.id in q2s or not is_module_node(n):
            continue
        hits = [s for s in s_by_name.get(layer_name_of(n), ()) if s.op == n.op and s.id not in s2q]
        if len(hits) == 1:
            pair(n.id, hits[0].id, "module")

    # 3. Outwards, by op and already-paired neighbours.
    def paired_inputs(qn: GraphNode) -> List[str]:
        return [q2s[i] for i in qn.inputs if i in q2s]

    def fits(qn: GraphNode, sn: GraphNode) -> bool:
        """Same op, and the paired inputs of each are the partners of the other's (as a multiset: the GraphDefs
        list inputs in graph order, which differs between the traces, not in argument order)."""
        if sn.op != qn.op or sn.id in s2q:
            return False
        mine = paired_inputs(qn)
        theirs = [i for i in sn.inputs if i in s2q]
        return collections.Counter(mine) == collections.Counter(theirs)

    def narrow(a: GraphNode, others: List[GraphNode]) -> List[GraphNode]:
        """The nodes of ``others`` that ``a`` could be, once output shapes and numbers of inputs are compared."""
        if len(others) > 1:
            by_shape = [c for c in others if _same_shape(a, c) is not False]
            if by_shape:
                others = by_shape
        if len(others) > 1:
            same_arity = [c for c in others if len(c.inputs) == len(a.inputs)]
            if same_arity:
                others = same_arity
        return others

    def forward(qn: GraphNode) -> None:
        """A node whose inputs are (partly) paired: the one consumer of their partners that fits it, when no
        other unpaired node of the quantized graph fits that consumer as well."""
        first = next((i for i in qn.inputs if i in q2s), None)
        if first is None:
            return
        cands = narrow(qn, [s_by_id[c] for c in s_cons.get(q2s[first], ()) if fits(qn, s_by_id[c])])
        if len(cands) != 1 or _same_shape(qn, cands[0]) is False:
            return
        sn = cands[0]
        rivals = [q_by_id[c] for c in q_cons.get(first, ()) if c not in q2s and fits(q_by_id[c], sn)]
        if len(narrow(sn, rivals)) != 1:
            return
        pair(qn.id, sn.id, "structure")

    def fits_down(un: GraphNode, sn: GraphNode) -> bool:
        """Same op and shape, and ``un``'s paired inputs (if any) are the partners of ``sn``'s."""
        if un.op != sn.op or _same_shape(un, sn) is False:
            return False
        mine = paired_inputs(un)
        theirs = [i for i in sn.inputs if i in s2q]
        return collections.Counter(mine) == collections.Counter(theirs)

    def backward(qn: GraphNode) -> None:
        """The unpaired inputs of a paired node: an input and an input of its partner pair when each is the
        only one that fits the other (same op and shape, partners for inputs).  Input positions are not
        compared: the GraphDefs list a concatenation's inputs in graph order, not argument order."""
        q_open = [q_by_id[u] for u in dict.fromkeys(qn.inputs) if u in q_by_id and u not in q2s]
        if not q_open:
            return
        sn = s_by_id[q2s[qn.id]]
        s_open = [s_by_id[t] for t in dict.fromkeys(sn.inputs) if t not in s2q]
        for un in q_open:
            if un.id in q2s:
                continue
            cands = [t for t in s_open if t.id not in s2q and fits_down(un, t)]
            if len(cands) != 1:
                continue
            rivals = [u for u in q_open if u.id not in q2s and fits_down(u, cands[0])]
            if len(rivals) == 1:
                pair(un.id, cands[0].id, "structure")

    def drain() -> None:
        seen_state: Dict[str, int] = {}
        while work:
            qid = work.popleft()
            qn = q_by_id.get(qid)
            if qn is None:
                continue
            state = len(q2s)
            if seen_state.get(qid) == state:  # nothing changed since this node was last looked at
                continue
            seen_state[qid] = state
            if qid in q2s:
                backward(qn)
            elif qn.op != PLACEHOLDER:
                forward(qn)

    work.extend(n.id for n in quantized)
    drain()
    # 4. Siblings that nothing tells apart (chunk halves, x.size() items): their order of execution.  MCT's
    #    rebuilt model runs its nodes in the stage graph's order, so the k-th unpaired sibling of a paired
    #    producer in one graph is the k-th in the other -- when both sides have the same number of them.
    while True:
        made = _pair_siblings(quantized, q_by_id, s_by_id, q_cons, s_cons, q2s, s2q, q_pos, s_pos, pair)
        if not made:
            break
        drain()
    _drop_inconsistent(q_by_id, s_by_id, q2s, s2q, how)
    return Matching(dict(q2s), {q: s_by_id[s].name for q, s in q2s.items()}, how,
                    [n.id for n in quantized if n.id not in q2s])


def _read_through(nodes: Sequence[GraphNode], other_ops: Set[str]) -> List[GraphNode]:
    """``nodes`` without their eval-identity nodes of an op the other graph lacks: consumers read their input."""
    skip = {n.id: n.inputs[0] for n in nodes
            if n.op in EVAL_IDENTITY_OPS and n.op not in other_ops and len(n.inputs) == 1}
    if not skip:
        return list(nodes)

    def source(i: str) -> str:
        for _ in range(64):
            if i not in skip:
                break
            i = skip[i]
        return i

    return [n.with_inputs([source(i) for i in n.inputs]) for n in nodes if n.id not in skip]


def _pair_siblings(quantized, q_by_id, s_by_id, q_cons, s_cons, q2s, s2q, q_pos, s_pos, pair) -> bool:
    made = False
    for n in quantized:
        if n.id not in q2s:
            continue
        s = q2s[n.id]
        q_open: Dict[str, List[str]] = collections.defaultdict(list)
        s_open: Dict[str, List[str]] = collections.defaultdict(list)
        for c in q_cons.get(n.id, ()):
            cn = q_by_id[c]
            if c not in q2s and all(i in q2s or i not in q_by_id for i in cn.inputs):
                q_open[cn.op].append(c)
        for c in s_cons.get(s, ()):
            cn = s_by_id[c]
            if c not in s2q and all(i in s2q for i in cn.inputs):
                s_open[cn.op].append(c)
        for op, qs in q_open.items():
            ss = s_open.get(op, [])
            if len(qs) < 2 or len(qs) != len(ss):
                continue
            qs.sort(key=q_pos.__getitem__)
            ss.sort(key=s_pos.__getitem__)
            for a, b in zip(qs, ss):
                qa, sb = q_by_id[a], s_by_id[b]
                mine = [q2s[i] for i in qa.inputs if i in q2s]
                if collections.Counter(mine) == collections.Counter(sb.inputs) and _same_shape(qa, sb) is not False:
                    pair(a, b, "structure")
                    made = True
    return made


def _drop_inconsistent(q_by_id, s_by_id, q2s, s2q, how) -> None:
    """Unpair a structural pair whose op or paired inputs disagree (a node matched ahead of its inputs)."""
    for _ in range(4):
        bad = []
        for q, s in q2s.items():
            if how[q] != "structure":
                continue
            qn, sn = q_by_id[q], s_by_id[s]
            mine = [q2s[i] for i in qn.inputs if i in q2s]
            theirs = [i for i in sn.inputs if i in s2q]
            if qn.op != sn.op or collections.Counter(mine) != collections.Counter(theirs):
                bad.append(q)
        if not bad:
            return
        for q in bad:
            s2q.pop(q2s.pop(q), None)
            how.pop(q, None)


def inserted_by_mct(m: Matching, stage: Sequence[GraphNode],
                    before: Optional[Iterable[str]] = None) -> Dict[str, str]:
    """``{quantized-graph node id: what MCT inserted it for}`` for the paired nodes that MCT added to the float
    graph after statistics collection: absent from a stage logged before (``before``: its node names), or -- when
    no such stage was logged -- named as MCT names the nodes it inserts."""
    s_by_id = {n.id: n for n in stage}
    earlier: Optional[Set[str]] = set(before) if before is not None else None
    out: Dict[str, str] = {}
    for q, s in m.pairs.items():
        sn = s_by_id[s]
        if sn.op == PLACEHOLDER:
            continue
        what = None
        for suffix, text in INSERTED_SUFFIXES:
            if sn.name.endswith(suffix) and len(sn.name) > len(suffix):
                what = text % sn.name[: -len(suffix)]
                break
        if earlier is not None:
            if sn.name in earlier:
                continue
            if what is None:
                if is_module_node(sn):
                    continue  # a merged layer (conv + BN, collapsed convs) is renamed, not inserted
                what = "inserted by MCT after statistics collection (%s)" % sn.op
        elif what is None:
            continue
        out[q] = "%s (MCT's node %s)" % (what, sn.name)
    return out


def rekey(m: Matching, quantized: Sequence[GraphNode], by_mct_name: Mapping[str, V]) -> Dict[str, V]:
    """Values keyed by MCT's node names (histogram tags, stage-graph names) re-keyed by the quantized graph's
    layer names (``_layer`` dropped).  A value whose MCT node has no paired counterpart keeps its MCT name only
    when no node of the quantized graph bears that name (so a name lookup can never land on another node)."""
    out: Dict[str, V] = {}
    taken = set()
    for n in quantized:
        taken.add(n.name)
        taken.add(layer_name_of(n))
    used = set()
    for n in quantized:
        s = m.stage_names.get(n.id)
        if s is not None and s in by_mct_name:
            out[layer_name_of(n)] = by_mct_name[s]
            used.add(s)
    for name, v in by_mct_name.items():
        if name not in used and name not in taken and name not in out:
            out[name] = v
    return out


def module_only(quantized: Sequence[GraphNode], by_name: Mapping[str, V]) -> Tuple[Dict[str, V], List[str]]:
    """Without a stage graph to match: keep the values of module nodes (names agree across traces) and of names
    that no node of the quantized graph bears; drop those of functional nodes, whose numbers may differ.  Returns
    the kept values and the dropped names."""
    functional = {layer_name_of(n) for n in quantized if not is_module_node(n) and n.op != PLACEHOLDER}
    functional |= {n.name for n in quantized if not is_module_node(n) and n.op != PLACEHOLDER}
    kept = {k: v for k, v in by_name.items() if k not in functional}
    return kept, sorted(k for k in by_name if k in functional)


@dataclasses.dataclass
class Keyed:
    """The report's histograms and quantization parameters keyed by the quantized graph's layer names."""

    histograms: Dict[str, object]
    quant: Dict[str, object]
    mct_names: Dict[str, str]  # quantized-graph node id -> MCT's node name
    inserted: Dict[str, str]  # quantized-graph node id -> what MCT inserted it for
    unpaired: List[str]  # names of quantized-graph nodes without a counterpart in MCT's graph
    dropped: List[str]  # histogram tags left out (no stage graph to pair functional nodes by)


def key_by_quantized_graph(quantized: Sequence[GraphNode], stage: Optional[Sequence[GraphNode]],
                           histograms: Mapping[str, V], quant: Mapping[str, object],
                           before: Optional[Iterable[str]] = None, main_only: bool = False) -> Keyed:
    """Pair ``quantized`` (the display graph) with the stage graph ``stage`` (all its nodes, helpers included, as
    parsed; None when the report has no stage logs) and re-key ``histograms`` (by histogram tag) and ``quant`` (by
    stage-graph name).  ``before``: node names of a stage logged before shift-negative correction (recognises
    the nodes MCT inserted).  ``main_only``: ``stage`` is :func:`stage_main_nodes`'s answer already
    (``producers.mct_stages.read_stage_graph``).  Without a stage graph only module nodes keep their histograms
    (their names agree); those of functional nodes are dropped rather than guessed."""
    if not quantized:
        return Keyed(dict(histograms), dict(quant), {}, {}, [], [])
    if stage is None:
        kept, dropped = module_only(quantized, histograms)
        return Keyed(kept, dict(quant), {}, {}, [], dropped)
    main = list(stage) if main_only else stage_main_nodes(stage)
    m = match(quantized, main)
    q_by_id = {n.id: n for n in quantized}
    # nodes that carry a tensor (not the model's *args, not the ints of x.size()) and found no counterpart
    unpaired = [q_by_id[i].name for i in m.unpaired if i in q_by_id and q_by_id[i].op != PLACEHOLDER
                and q_by_id[i].output_shapes and len(q_by_id[i].output_shapes[0]) > 0]
    return Keyed(rekey(m, quantized, histograms), rekey(m, quantized, quant), dict(m.stage_names),
                 inserted_by_mct(m, main, before), unpaired, [])
