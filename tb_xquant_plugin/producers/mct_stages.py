"""MCT 2.6.1's stage graphs (``mct.set_log_folder``): quantization parameters from the ``.activation`` /
``.weights`` helper nodes, weights bit-width candidates and their final configuration."""
from __future__ import annotations

import dataclasses
import re
from typing import Any, Dict, List, Optional, Tuple

from tb_xquant_plugin.model.report import QuantParams
from tb_xquant_plugin.producers.mct_matching import stage_main_nodes
from tb_xquant_plugin.readers.graphs import GraphNode, attr_value, cached_shapes, graph_nodes, node_inputs, read_attrs

_THRESHOLD_RE = re.compile(r"""['"]threshold['"]\s*:\s*(?:np\.float\d*\()?\s*([-+]?[0-9.eE+-]+|inf|nan)""")
_SIGNED_RE = re.compile(r"""['"]is_signed['"]\s*:\s*(?:np\.)?(True|False)_?""")


def _num(text: str) -> Optional[float]:
    try:
        return float(text)
    except (TypeError, ValueError):
        return None


_BIT_LIST_RE = re.compile(r"\[\s*\d+(?:\s*,\s*\d+)*\s*\]|\d+", re.ASCII)


def bit_candidates(value: Any) -> Optional[List[int]]:
    """The bit widths a stage-graph attribute lists: MCT logs the chosen value as an int once the bits
    are final, and before that the text of the per-candidate list (``'[8, 4, 2]'``, one entry per
    mixed-precision candidate, repeats included).  ``None`` for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return [value]
    if isinstance(value, str):
        text = value.strip()
        if _BIT_LIST_RE.fullmatch(text):
            return [int(x) for x in re.findall(r"[0-9]+", text)]
    return None


def decided_bits(candidates: Optional[List[int]]) -> Optional[int]:
    """The bit width when every candidate has the same one (nothing left for mixed precision to choose)."""
    if candidates and len(set(candidates)) == 1:
        return candidates[0]
    return None


_ACTIVATION = ".activation"
_WEIGHTS = ".weights"


def _activation_params(qp: QuantParams, get) -> None:
    """Fill ``qp`` from one ``.activation`` helper node; ``get(attr)``: the decoded attribute, or None."""
    bits = decided_bits(bit_candidates(get("activation_n_bits")))
    if bits is not None:
        qp.activation_nbits = bits
    params = get("activation_quantization_params") or ""
    m = _THRESHOLD_RE.search(params)
    if m:
        qp.activation_threshold = _num(m.group(1))
    m = _SIGNED_RE.search(params)
    if m:
        qp.signed = m.group(1) == "True"
    qp.quant_mode = (get("quant_mode") or "").replace("ActivationQuantizationMode.", "") or None
    z = get("z_threshold")
    if isinstance(z, float):
        qp.z_threshold = z
    v = get("shift_negative_activation_correction")
    if isinstance(v, bool):
        qp.shift_negative_activation_correction = v
    v = get("shift_negative_ratio")
    if isinstance(v, float):
        qp.shift_negative_ratio = v
    em = get("_activation_error_method") or get("activation_error_method")
    if isinstance(em, str):
        qp.activation_error_method = em.replace("QuantizationErrorMethod.", "")


def _weights_params(qp: QuantParams, get) -> None:
    """Fill ``qp`` from one ``.weights`` helper node; ``get(attr)``: the decoded attribute, or None."""
    v = get("weights_bias_correction")
    if isinstance(v, bool):
        qp.weights_bias_correction = v
    # MCT 2.6.1 logs final weights configurations without their bits (stage graphs after
    # mixed precision); read them only where a stage does carry them.
    candidates = bit_candidates(get("weights_n_bits"))
    if candidates:
        qp.weights_nbits_candidates = candidates
        bits = decided_bits(candidates)
        if bits is not None:
            qp.weights_nbits, qp.weights_nbits_source = bits, "stage graph"


@dataclasses.dataclass
class StageGraphRead:
    """What the build needs of the stage graph it reads quantization parameters from."""

    size: int  # nodes in the graph, helpers included
    main: List[GraphNode]  # ``mct_matching.stage_main_nodes`` of its nodes (without their attributes)
    quant: Dict[str, QuantParams]  # node name (last path component) -> quantization parameters


# The attributes _activation_params / _weights_params read.
_ACTIVATION_ATTRS = ("activation_n_bits", "activation_quantization_params", "quant_mode", "z_threshold",
                     "shift_negative_activation_correction", "shift_negative_ratio", "_activation_error_method",
                     "activation_error_method")
_WEIGHTS_ATTRS = ("weights_bias_correction", "weights_n_bits")


def read_stage_graph(data: Optional[bytes]) -> StageGraphRead:
    """The main nodes of a stage graph (``mct_matching.stage_main_nodes``: MCT's helpers dropped, each node
    reading its producers) and the quantization parameters of each (from its ``.activation`` / ``.weights``
    helpers), in one walk over the GraphDef that reads of each node only what those use: name, op, inputs and
    output shapes of the main nodes, the quantization attributes of the helpers (MCT logs two dozen attributes
    per helper, and the helpers are two thirds of the nodes).  Raises ``ValueError`` when the bytes are not a
    GraphDef."""
    if not data:
        return StageGraphRead(0, [], {})
    op_of: Dict[str, str] = {}  # every node id -> its op (the last node of an id, as a dict of nodes keeps it)
    helpers = []  # (id, is activation, its attributes read) of the .activation / .weights nodes, in graph order
    main: List[GraphNode] = []
    shape_cache: Dict[bytes, List[List[int]]] = {}
    size = 0
    for n in graph_nodes(data):
        size += 1
        nid = n.name
        op = op_of[nid] = n.op
        if nid.endswith(_ACTIVATION):
            helpers.append((nid, True, read_attrs(n.attr, _ACTIVATION_ATTRS)))
            continue
        if nid.endswith(_WEIGHTS):
            helpers.append((nid, False, read_attrs(n.attr, _WEIGHTS_ATTRS)))
            continue
        sv = n.attr.get("_output_shapes")
        main.append(GraphNode(nid, nid.rsplit("/", 1)[-1], op, node_inputs(n),
                              cached_shapes(sv, shape_cache) if sv is not None else [], {}))
    main = stage_main_nodes(main)  # each reading its producers directly
    quant: Dict[str, QuantParams] = {}
    for nid, is_activation, attrs in helpers:
        name = nid.rsplit("/", 1)[-1][: -len(_ACTIVATION if is_activation else _WEIGHTS)]
        qp = quant.get(name)
        if qp is None:
            qp = quant[name] = QuantParams()
        if is_activation:
            qp.op = op_of.get(nid[: -len(_ACTIVATION)])
            _activation_params(qp, attrs.get)
        else:
            _weights_params(qp, attrs.get)
    return StageGraphRead(size, main, quant)


def _topological_order(ids: List[str], inputs: Dict[str, List[str]]) -> List[str]:
    """Node ids in the order networkx's ``topological_sort`` gives (MCT sorts configurable nodes
    with it): generation by generation, starting from the nodes without inputs.  Inside a
    generation networkx follows the order edges were added, which the GraphDef does not record;
    the stage graph's node order stands in for it (exact for chains, where each generation holds
    one node)."""
    pos = {i: k for k, i in enumerate(ids)}
    children: Dict[str, List[str]] = {i: [] for i in ids}
    indegree = dict.fromkeys(ids, 0)
    for i in ids:
        for src in inputs.get(i, ()):
            if src in children and src != i:
                children[src].append(i)
                indegree[i] += 1
    for c in children.values():
        c.sort(key=pos.__getitem__)
    order: List[str] = []
    generation = [i for i in ids if indegree[i] == 0]
    while generation:
        order.extend(generation)
        nxt = []
        for i in generation:
            for c in children[i]:
                indegree[c] -= 1
                if indegree[c] == 0:
                    nxt.append(c)
        generation = nxt
    if len(order) < len(ids):  # a cycle: not an MCT graph; keep the rest in graph order
        seen = set(order)
        order += [i for i in ids if i not in seen]
    return order


def stage_weights_candidates(data: Optional[bytes]) -> Tuple[Dict[str, List[int]], List[str]]:
    """Weights bit-width candidates of a stage graph MCT logged before mixed precision chose
    (``weights_n_bits`` of the ``.weights`` helper nodes: ``'[8]'``, or ``'[8, 4, 2]'`` while
    undecided), and the names of the nodes whose weights mixed precision configures (more than one
    distinct candidate) in MCT's topological order -- the order of MCT's log line "Final weights
    bit-width configuration: [...]".  Raises ``ValueError`` when the bytes are not a GraphDef.

    Only node names, inputs and that one attribute are read, so a large graph stays cheap."""
    if not data:
        return {}, []
    candidates: Dict[str, List[int]] = {}
    weights_of: Dict[str, str] = {}  # main node id -> layer name with several candidates
    for n in graph_nodes(data):
        nid = n.name
        if nid.endswith(".weights"):
            attr = n.attr.get("weights_n_bits")
            c = bit_candidates(attr_value(attr)) if attr is not None else None
            if c:
                name = nid.rsplit("/", 1)[-1][: -len(".weights")]
                candidates[name] = c
                if len(set(c)) > 1:
                    weights_of[nid[: -len(".weights")]] = name
    if not weights_of:  # no mixed precision: no order needed (reading every input is the slow part)
        return candidates, []
    ids: List[str] = []
    inputs: Dict[str, List[str]] = {}
    for n in graph_nodes(data):  # parsed again, a chunk at a time: only mixed precision needs the inputs
        nid = n.name
        if nid.endswith(".weights") or nid.endswith(".activation"):
            continue
        ids.append(nid)
        ins = []
        for i in n.input:
            i = i.split(":")[0].lstrip("^")
            if i.endswith(".activation"):
                i = i[: -len(".activation")]
            elif i.endswith(".weights"):
                continue
            ins.append(i)
        inputs[nid] = ins
    return candidates, [weights_of[i] for i in _topological_order(ids, inputs) if i in weights_of]


def assign_final_weights_bits(quant: Dict[str, QuantParams], candidates: Dict[str, List[int]],
                              configurable: List[str], final_config: Optional[List[int]]) -> bool:
    """Fill ``weights_nbits`` of the layers whose weights have stage-graph candidates: a single
    candidate is the final width; several are resolved with MCT's final configuration (one entry per
    configurable layer, in ``configurable`` order).  Returns False when that configuration does not
    fit -- not one entry per configurable layer, or a width that is not among a layer's candidates
    (it then belongs to another run and is not used)."""
    for name, c in candidates.items():
        qp = quant.setdefault(name, QuantParams())
        if qp.weights_nbits_candidates is None:
            qp.weights_nbits_candidates = c
        bits = decided_bits(c)
        if bits is not None and qp.weights_nbits is None:
            qp.weights_nbits, qp.weights_nbits_source = bits, "stage graph"
    if not configurable or final_config is None:
        return True
    if len(final_config) != len(configurable) or any(
            b not in candidates[name] for name, b in zip(configurable, final_config)):
        return False
    for name, bits in zip(configurable, final_config):
        qp = quant[name]
        if qp.weights_nbits is None:
            qp.weights_nbits, qp.weights_nbits_source = int(bits), "mct log"
    return True
