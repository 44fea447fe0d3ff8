"""Structural pairing of a quantize-dequantize (QDQ) ONNX model with the float model it was made from.

Pure Python and numpy: the runner (``tb_xquant_plugin.onnx_run``) turns both ONNX files into :class:`Graph`
records and hands them here; nothing in this module imports onnx or onnxruntime.

Why not pair by name: the quantizers rename and rewrite tensors.  ONNX Runtime's ``quantize_static`` drops a
Relu after a Conv and gives the Conv's output the Relu's name (so a tensor name means two different tensors in
the two files); PPQ-family exporters call every quantized tensor ``PPQ_Variable_N``; Quark replaces Sigmoid by
HardSigmoid (XINT8) and inserts scaling Muls; cross-layer equalization rescales the channels of intermediate
tensors, so a name-paired comparison reports errors where the output got better.

The rule used instead, from the graph inputs outwards:

1. Q/DQ are folded away: a DequantizeLinear of an initializer is a (dequantized) constant, a DequantizeLinear
   of a QuantizeLinear of tensor ``t`` stands for ``t`` -- and its output is a *compare point* (what MCT calls
   a layer's quantized output).
2. Graph inputs pair by name, else by position.
3. A QDQ compute node pairs with the not-yet-paired float node that consumes the float counterparts of its
   activation inputs (the same inputs, in order, or as a multiset for commutative ops) and has the same op type
   or a known replacement (Sigmoid -> HardSigmoid, Clip <-> Relu).  Several candidates: the same node name,
   then the constant inputs (same shapes, closest weights), then graph order.
4. Absorbed ops: after a node pairs, its output follows the float graph through single-consumer Relu / Clip /
   BatchNormalization / Identity / Dropout nodes the QDQ graph does not have at that place (ORT's Relu removal,
   BN folding), so the compare point is measured against the tensor it really approximates.
5. Inserted ops: a QDQ node with one activation input that pairs with nothing and only scales or passes it
   (Mul / Div by a constant, Identity, Cast) stands for its input's float tensor (Quark's scaling Muls).
6. Rescaled channels (CLE, SmoothQuant folded into the weights): for a paired Conv / Gemm / MatMul the QDQ
   weights are compared with the float ones, channel by channel, after undoing the input's own rescaling; an
   output channel whose weights are a clean multiple ``r`` of the float ones carries that factor, which
   propagates through positively homogeneous ops (Relu, pooling, Concat, Flatten, an Add of equally scaled
   inputs) and is undone before the errors are measured.  A channel whose weights do not fit a multiple
   (quantization destroyed them) keeps factor 1: its error stays visible.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

import numpy as np

QUANTIZE = "QuantizeLinear"
DEQUANTIZE = "DequantizeLinear"
# Quark's own Q/DQ ops (com.amd.quark / com.vai.quantize domains) carry the same inputs as the standard ones.
QUANTIZE_OPS = frozenset((QUANTIZE, "ExtendedQuantizeLinear", "VitisQuantizeLinear"))
DEQUANTIZE_OPS = frozenset((DEQUANTIZE, "ExtendedDequantizeLinear", "VitisDequantizeLinear"))

# Float ops a quantizer may absorb into the op before them (their output then has no node of its own).
ABSORBABLE = frozenset(("Relu", "Clip", "BatchNormalization", "Identity", "Dropout"))
# QDQ-only ops with one activation input that do not change what the tensor stands for.
PASS_THROUGH = frozenset(("Identity", "Cast", "Dropout"))
SCALING = frozenset(("Mul", "Div"))
COMMUTATIVE = frozenset(("Add", "Mul", "Sum", "Max", "Min", "Mean"))
# (float op, QDQ op) replacements that keep the node's place in the graph; ``True``: the function changes.
REPLACEMENTS: Dict[Tuple[str, str], bool] = {
    ("Sigmoid", "HardSigmoid"): True,
    ("HardSwish", "Mul"): False,
    ("Clip", "Relu"): True,  # Quark's ReplaceClip6Relu: Relu does not stop at 6
    ("Relu", "Clip"): False,
    ("Gemm", "MatMul"): False,
    ("MatMul", "Gemm"): False,
    ("AveragePool", "GlobalAveragePool"): False,
    ("GlobalAveragePool", "AveragePool"): False,
    ("ReduceMean", "GlobalAveragePool"): False,
    ("GlobalAveragePool", "ReduceMean"): False,
}
# Ops through which a per-channel factor on the input is the same factor on the output.
HOMOGENEOUS = frozenset(("Relu", "LeakyRelu", "MaxPool", "AveragePool", "GlobalAveragePool", "GlobalMaxPool",
                         "Identity", "Dropout", "Flatten", "Reshape", "Squeeze", "Unsqueeze", "Pad"))
WEIGHTED = frozenset(("Conv", "Gemm", "MatMul", "ConvTranspose"))
# A channel's QDQ weights count as a clean multiple of the float ones when the residual of the fit is under this
# (relative); a channel counts as rescaled when its factor is further than RESCALE_MIN from 1 and further than
# NOISE_MARGIN times the fit's residual.
FIT_RESIDUAL_MAX = 0.1
RESCALE_MIN = 0.05
NOISE_MARGIN = 4.0


@dataclasses.dataclass
class Node:
    name: str
    op: str
    inputs: List[str]
    outputs: List[str]
    attrs: Dict[str, Any] = dataclasses.field(default_factory=dict)
    domain: str = ""
    index: int = 0


@dataclasses.dataclass
class Graph:
    """An ONNX graph as plain data: nodes in file order, graph inputs / outputs (names), constant values."""

    nodes: List[Node]
    inputs: List[str]
    outputs: List[str]
    constants: Dict[str, np.ndarray]

    def __post_init__(self):
        self.producer: Dict[str, Node] = {}
        self.consumers: Dict[str, List[Node]] = {}
        for i, n in enumerate(self.nodes):
            n.index = i
            for o in n.outputs:
                if o:
                    self.producer[o] = n
            for t in n.inputs:
                if t:
                    self.consumers.setdefault(t, []).append(n)
        self.static = self._static_tensors()

    def _static_tensors(self) -> Set[str]:
        """Tensors that do not depend on the data: constants, Shape outputs and what only they feed."""
        static = set(self.constants)
        for n in self.topological():
            if n.op in ("Constant", "Shape", "Size") or (n.inputs and all(not t or t in static for t in n.inputs)
                                                          and n.op not in QUANTIZE_OPS | DEQUANTIZE_OPS):
                static.update(o for o in n.outputs if o)
        return static

    def topological(self) -> List[Node]:
        """Nodes in an order where every producer comes before its consumers (file order breaks ties)."""
        produced_by = {o: n for n in self.nodes for o in n.outputs if o}
        seen: Set[int] = set()
        order: List[Node] = []
        for start in self.nodes:
            if id(start) in seen:
                continue
            stack = [(start, False)]
            while stack:
                node, done = stack.pop()
                if done:
                    order.append(node)
                    continue
                if id(node) in seen:
                    continue
                seen.add(id(node))
                stack.append((node, True))
                for t in reversed(node.inputs):
                    p = produced_by.get(t)
                    if p is not None and id(p) not in seen:
                        stack.append((p, False))
        return order


@dataclasses.dataclass
class QuantSpec:
    """The quantization parameters of one QuantizeLinear / DequantizeLinear."""

    scale: np.ndarray
    zero_point: np.ndarray
    dtype: str  # int8, uint8, int16, uint16, int4, uint4, int32, ...
    axis: Optional[int]

    @property
    def bits(self) -> Optional[int]:
        digits = "".join(c for c in self.dtype if c.isdigit())
        return int(digits) if digits else None

    @property
    def signed_type(self) -> bool:
        return not self.dtype.startswith("u")

    @property
    def per_channel(self) -> bool:
        return self.scale.size > 1

    def qrange(self) -> Tuple[int, int]:
        b = self.bits or 8
        return (-(2 ** (b - 1)), 2 ** (b - 1) - 1) if self.signed_type else (0, 2 ** b - 1)

    def limits(self) -> Tuple[float, float]:
        """The smallest and largest values the quantizer represents (over channels)."""
        lo, hi = self.qrange()
        s = self.scale.astype(np.float64).ravel()
        z = np.broadcast_to(self.zero_point.astype(np.float64).ravel(), s.shape)
        return float(np.min((lo - z) * s)), float(np.max((hi - z) * s))

    def to_json(self) -> Dict[str, Any]:
        lo, hi = self.limits()
        b = self.bits
        z = self.zero_point.astype(np.int64).ravel()
        mid = 0 if self.signed_type else (2 ** (b - 1) if b else 128)
        s = self.scale.astype(np.float64).ravel()
        log2 = np.log2(s[s > 0]) if np.any(s > 0) else np.array([0.5])
        return {
            "dtype": self.dtype, "bits": b, "signed_type": self.signed_type, "per_channel": self.per_channel,
            "axis": self.axis if self.per_channel else None, "channels": int(s.size),
            "scale": float(s[0]) if s.size == 1 else [float(v) for v in s[:4096]],
            "zero_point": int(z[0]) if z.size == 1 else [int(v) for v in z[:4096]],
            "min": lo, "max": hi, "symmetric": bool(np.all(z == mid)),
            "power_of_two": bool(np.all(np.abs(log2 - np.round(log2)) < 1e-6)),
        }


def dequantize(q: np.ndarray, spec: QuantSpec) -> np.ndarray:
    """``(q - zero_point) * scale`` with per-axis parameters broadcast along ``axis``."""
    s = spec.scale.astype(np.float64)
    z = spec.zero_point.astype(np.float64)
    if s.size > 1 and q.ndim:
        axis = (spec.axis if spec.axis is not None else 1) % q.ndim
        shape = [1] * q.ndim
        shape[axis] = s.size
        s, z = s.reshape(shape), z.reshape(shape) if z.size > 1 else z
    return (q.astype(np.float64) - z) * s


def fake_quantize(x: np.ndarray, spec: QuantSpec) -> np.ndarray:
    s = spec.scale.astype(np.float64)
    z = spec.zero_point.astype(np.float64)
    if s.size > 1 and x.ndim:
        axis = (spec.axis if spec.axis is not None else 1) % x.ndim
        shape = [1] * x.ndim
        shape[axis] = s.size
        s, z = s.reshape(shape), z.reshape(shape) if z.size > 1 else z
    lo, hi = spec.qrange()
    q = np.clip(np.round(x / s) + z, lo, hi)
    return (q - z) * s


@dataclasses.dataclass
class ComparePoint:
    """A quantized activation: ``qdq_tensor`` (the DequantizeLinear output) against ``float_tensor``."""

    qdq_tensor: str  # the DequantizeLinear output to read from the QDQ model
    source: str  # the tensor the QuantizeLinear quantized (QDQ model)
    spec: QuantSpec
    node: Optional[str] = None  # display node whose output it is
    float_tensor: Optional[str] = None
    by_name: Optional[str] = None  # the float tensor a name-based pairing would pick (None: no such name)
    rescale: Optional[np.ndarray] = None  # per-channel factor QDQ / float, when an equivalence transform set one
    rescale_axis: int = 1


@dataclasses.dataclass
class DisplayNode:
    id: str
    op: str
    inputs: List[str]
    qdq_node: str
    float_node: Optional[str]
    float_op: Optional[str]
    absorbed: List[str]
    weights: Optional[QuantSpec]
    weights_dtype: Optional[str]
    outputs: List[str]  # QDQ tensors


@dataclasses.dataclass
class Pairing:
    compare_points: List[ComparePoint]
    display: List[DisplayNode]
    tensor_map: Dict[str, str]  # QDQ tensor -> float tensor
    node_map: Dict[str, str]  # QDQ node name -> float node name
    replacements: List[Dict[str, Any]]
    inserted: List[str]  # QDQ nodes that stand for their input
    unpaired_qdq: List[str]
    unpaired_float: List[str]
    rescaled: Dict[str, Dict[str, Any]]  # QDQ tensor -> {"factor_min", "factor_max", "channels", "from"}

    def stats(self) -> Dict[str, Any]:
        cps = self.compare_points
        paired = [c for c in cps if c.float_tensor is not None]
        same = [c for c in paired if c.by_name == c.float_tensor]
        return {
            "compare_points": len(cps),
            "paired_structurally": len(paired),
            "unpaired": len(cps) - len(paired),
            "name_pairing_agrees": len(same),
            "name_pairing_differs": sum(1 for c in paired if c.by_name is not None and c.by_name != c.float_tensor),
            "name_pairing_missing": sum(1 for c in cps if c.by_name is None),
            "rescaled": sum(1 for c in paired if c.rescale is not None),
            "replacements": len(self.replacements),
            "inserted_nodes": len(self.inserted),
        }


# --------------------------------------------------------------------------------------------------
# Q/DQ folding
# --------------------------------------------------------------------------------------------------
def _spec(graph: Graph, node: Node) -> Optional[QuantSpec]:
    if len(node.inputs) < 2 or node.inputs[1] not in graph.constants:
        return None
    scale = np.asarray(graph.constants[node.inputs[1]])
    if len(node.inputs) > 2 and node.inputs[2] and node.inputs[2] in graph.constants:
        zp = np.asarray(graph.constants[node.inputs[2]])
        dtype = str(zp.dtype)
    else:
        zp = np.zeros(1, dtype=np.uint8)
        dtype = "uint8"
    bits_attr = node.attrs.get("bit_width") or node.attrs.get("bits")  # Quark's extended ops
    if isinstance(bits_attr, int) and bits_attr not in (8, 16, 32):
        dtype = ("u" if dtype.startswith("u") else "") + "int%d" % bits_attr
    axis = node.attrs.get("axis")
    return QuantSpec(scale.astype(np.float64), zp, dtype, int(axis) if isinstance(axis, int) else 1)


@dataclasses.dataclass
class Folded:
    """The QDQ graph seen through its Q/DQ nodes."""

    graph: Graph
    compute: List[Node]  # nodes other than Q/DQ, in topological order
    resolve: Dict[str, str]  # DQ output -> activation it stands for
    const_value: Dict[str, np.ndarray]  # DQ output of a constant -> dequantized value
    const_spec: Dict[str, QuantSpec]  # DQ output of a constant -> its quantization
    act_spec: Dict[str, Tuple[QuantSpec, str]]  # activation -> (its quantization, the first DQ output)


def fold(graph: Graph) -> Folded:
    resolve: Dict[str, str] = {}
    const_value: Dict[str, np.ndarray] = {}
    const_spec: Dict[str, QuantSpec] = {}
    act_spec: Dict[str, Tuple[QuantSpec, str]] = {}
    q_source: Dict[str, Tuple[str, Optional[QuantSpec]]] = {}  # Q output -> (Q input, spec)
    for n in graph.topological():
        if n.op in QUANTIZE_OPS and n.inputs:
            src = resolve.get(n.inputs[0], n.inputs[0])
            q_source[n.outputs[0]] = (src, _spec(graph, n))
        elif n.op in DEQUANTIZE_OPS and n.inputs:
            x = n.inputs[0]
            spec = _spec(graph, n)
            if x in q_source:
                src, qspec = q_source[x]
                if src in graph.constants or src in const_value:  # Q -> DQ of a float weight
                    value = graph.constants.get(src, const_value.get(src))
                    const_value[n.outputs[0]] = fake_quantize(np.asarray(value, np.float64), spec) if spec else value
                    if spec:
                        const_spec[n.outputs[0]] = spec
                    continue
                resolve[n.outputs[0]] = src
                if spec is not None and src not in act_spec:
                    act_spec[src] = (spec, n.outputs[0])
            elif x in graph.constants:
                if spec is not None:
                    const_value[n.outputs[0]] = dequantize(np.asarray(graph.constants[x]), spec)
                    const_spec[n.outputs[0]] = spec
                else:
                    const_value[n.outputs[0]] = np.asarray(graph.constants[x], np.float64)
            else:
                resolve[n.outputs[0]] = resolve.get(x, x)
    compute = [n for n in graph.topological() if n.op not in QUANTIZE_OPS | DEQUANTIZE_OPS]
    return Folded(graph, compute, resolve, const_value, const_spec, act_spec)


# --------------------------------------------------------------------------------------------------
# Pairing
# --------------------------------------------------------------------------------------------------
def _is_const(folded: Folded, t: str) -> bool:
    return t in folded.const_value or t in folded.graph.static


def _const(folded: Folded, t: str) -> Optional[np.ndarray]:
    if t in folded.const_value:
        return folded.const_value[t]
    v = folded.graph.constants.get(t)
    return None if v is None else np.asarray(v)


def _act_inputs(folded: Folded, n: Node) -> List[str]:
    return [folded.resolve.get(t, t) for t in n.inputs if t and not _is_const(folded, t)]


def _float_act_inputs(g: Graph, n: Node) -> List[str]:
    return [t for t in n.inputs if t and t not in g.static]


def _weight_similarity(folded: Folded, qn: Node, fg: Graph, fn: Node) -> float:
    """How alike the constant inputs of two nodes are: shapes first, then the cosine of the values."""
    qc = [_const(folded, t) for t in qn.inputs if t and _is_const(folded, t)]
    fc = [np.asarray(fg.constants[t]) for t in fn.inputs if t in fg.constants]
    qc = [c for c in qc if c is not None and c.size > 1]
    fc = [c for c in fc if c.size > 1]
    if not qc and not fc:
        return 0.0
    if len(qc) != len(fc):
        return -1.0
    score = 0.0
    for a, b in zip(qc, fc):
        if a.shape != b.shape:
            return -1.0
        a, b = a.astype(np.float64).ravel(), b.astype(np.float64).ravel()
        den = float(np.linalg.norm(a) * np.linalg.norm(b))
        score += float(a @ b) / den if den > 0 else 0.0
    return score / len(qc)


def _replacement(f_op: str, q_op: str) -> Optional[bool]:
    return REPLACEMENTS.get((f_op, q_op))


def pair(float_graph: Graph, qdq_graph: Graph, channels: Optional[Dict[str, int]] = None) -> Pairing:
    """Pair every compare point of ``qdq_graph`` with the float tensor it quantizes (see the module doc)."""
    fg = float_graph
    folded = fold(qdq_graph)
    qg = qdq_graph
    tmap: Dict[str, str] = {}
    nmap: Dict[str, str] = {}
    used: Set[str] = set()
    absorbed_by: Dict[str, List[str]] = {}
    replacements: List[Dict[str, Any]] = []
    inserted: List[str] = []
    unpaired: List[str] = []

    f_inputs = [t for t in fg.inputs if t not in fg.constants]
    q_inputs = [t for t in qg.inputs if t not in qg.constants]
    for i, t in enumerate(q_inputs):
        if t in f_inputs:
            tmap[t] = t
        elif i < len(f_inputs):
            tmap[t] = f_inputs[i]

    # Op types of the QDQ nodes that read each activation (through its Q/DQ).
    consumer_ops: Dict[str, Set[str]] = {}
    for n in folded.compute:
        for a in _act_inputs(folded, n):
            consumer_ops.setdefault(a, set()).add(n.op)

    def absorb(qnode: Node, t: str) -> None:
        """Follow the float graph through ops the QDQ graph does not keep after ``t``."""
        f = tmap[t]
        kept = consumer_ops.get(t, set())
        for _ in range(8):
            cons = fg.consumers.get(f, [])
            if len(cons) != 1 or f in fg.outputs and f not in qg.outputs:
                break
            a = cons[0]
            if a.op not in ABSORBABLE or a.name in used or a.op in kept or len(_float_act_inputs(fg, a)) != 1:
                break
            used.add(a.name)
            absorbed_by.setdefault(qnode.name, []).append(a.name)
            f = a.outputs[0]
        tmap[t] = f

    for qn in folded.compute:
        acts = _act_inputs(folded, qn)
        if not acts or any(a not in tmap for a in acts):
            if qn.op == "Constant" or not acts:
                continue
            unpaired.append(qn.name)
            continue
        fins = [tmap[a] for a in acts]
        cands = []
        for fn in fg.consumers.get(fins[0], []):
            if fn.name in used:
                continue
            facts = _float_act_inputs(fg, fn)
            same = facts == fins or (qn.op in COMMUTATIVE and sorted(facts) == sorted(fins))
            if not same:
                continue
            if fn.op == qn.op:
                kind = 2
            elif _replacement(fn.op, qn.op) is not None:
                kind = 1
            else:
                continue
            score = (kind, fn.name == qn.name and bool(qn.name), _weight_similarity(folded, qn, fg, fn), -fn.index)
            cands.append((score, fn))
        if cands:
            cands.sort(key=lambda c: c[0], reverse=True)
            fn = cands[0][1]
            used.add(fn.name)
            nmap[qn.name] = fn.name
            if fn.op != qn.op:
                replacements.append({"float_node": fn.name, "float_op": fn.op, "qdq_node": qn.name, "qdq_op": qn.op,
                                     "changes_function": bool(_replacement(fn.op, qn.op))})
            for qo, fo in zip(qn.outputs, fn.outputs):
                if qo and fo:
                    tmap[qo] = fo
            if qn.outputs and qn.outputs[0] in tmap:
                absorb(qn, qn.outputs[0])
            continue
        other = [t for t in qn.inputs if t and _is_const(folded, t)]
        if len(acts) == 1 and (qn.op in PASS_THROUGH or (qn.op in SCALING and len(other) >= 1)):
            inserted.append(qn.name)
            for qo in qn.outputs:
                if qo:
                    tmap[qo] = tmap[acts[0]]
            continue
        unpaired.append(qn.name)

    rescaled = _rescale(fg, folded, nmap, tmap, inserted, absorbed_by, channels or {})
    display, point_node = _display(fg, folded, nmap, tmap, inserted, absorbed_by)
    compare_points = []
    for src, (spec, dq_out) in folded.act_spec.items():
        ft = tmap.get(src)
        cp = ComparePoint(dq_out, src, spec, point_node.get(src), ft,
                          src if (src in fg.producer or src in fg.inputs) else None)
        if src in rescaled:
            cp.rescale, cp.rescale_axis = rescaled[src]["factor"], rescaled[src]["axis"]
        compare_points.append(cp)
    float_paired = set(nmap.values()) | {a for v in absorbed_by.values() for a in v}
    unpaired_float = [n.name for n in fg.nodes if n.name not in float_paired and n.op != "Constant"
                      and any(t not in fg.static for t in n.inputs if t)]
    rescale_json = {t: {k: v for k, v in r.items() if k != "factor"} for t, r in rescaled.items()}
    return Pairing(compare_points, display, tmap, nmap, replacements, inserted, unpaired, unpaired_float,
                   rescale_json)


# --------------------------------------------------------------------------------------------------
# Rescaled channels
# --------------------------------------------------------------------------------------------------
def _weight_matrix(op: str, w: np.ndarray, attrs: Dict[str, Any]) -> Optional[np.ndarray]:
    """Weights as [out channels, ...] for the ops in WEIGHTED."""
    if op in ("Conv",):
        return w
    if op == "ConvTranspose":
        g = int(attrs.get("group", 1) or 1)
        if g != 1 or w.ndim < 2:
            return None
        return np.swapaxes(w, 0, 1)
    if op == "Gemm":
        return w if attrs.get("transB", 0) else w.T
    if op == "MatMul" and w.ndim == 2:
        return w.T
    return None


def channel_factors(op: str, wq: np.ndarray, wf: np.ndarray, attrs: Dict[str, Any],
                    r_in: Optional[np.ndarray]) -> Optional[Tuple[np.ndarray, np.ndarray]]:
    """Per output channel: the factor ``r`` with ``wq ~= r * wf`` once the input's factor ``r_in`` is undone, and
    the residual of that fit.  None when the weights do not have comparable shapes."""
    mq, mf = _weight_matrix(op, np.asarray(wq, np.float64), attrs), _weight_matrix(op, np.asarray(wf, np.float64), attrs)
    if mq is None or mf is None or mq.shape != mf.shape or mq.ndim < 2:
        return None
    if r_in is not None:
        groups = int(attrs.get("group", 1) or 1) if op == "Conv" else 1
        out_c, in_local = mq.shape[0], mq.shape[1]
        if groups < 1 or out_c % groups:
            return None
        per_group = out_c // groups
        idx = (np.arange(out_c)[:, None] // per_group) * in_local + np.arange(in_local)[None, :]
        if idx.max() >= r_in.size:
            return None
        shape = (out_c, in_local) + (1,) * (mq.ndim - 2)
        mq = mq * r_in[idx].reshape(shape)
    a = mq.reshape(mq.shape[0], -1)
    b = mf.reshape(mf.shape[0], -1)
    bb = np.einsum("ij,ij->i", b, b)
    r = np.where(bb > 0, np.einsum("ij,ij->i", a, b) / np.where(bb > 0, bb, 1.0), 1.0)
    res = np.linalg.norm(a - r[:, None] * b, axis=1) / np.maximum(np.linalg.norm(r[:, None] * b, axis=1), 1e-30)
    return r, res


def _rescale(fg: Graph, folded: Folded, nmap: Dict[str, str], tmap: Dict[str, str], inserted: List[str],
             absorbed_by: Dict[str, List[str]], channels: Dict[str, int]) -> Dict[str, Dict[str, Any]]:
    """``{QDQ tensor: {"factor": per-channel QDQ/float factor, "axis", "from", ...}}`` for rescaled tensors."""
    fnodes = {n.name: n for n in fg.nodes}
    factor: Dict[str, Tuple[np.ndarray, int, str]] = {}
    out: Dict[str, Dict[str, Any]] = {}
    inserted_set = set(inserted)
    for qn in folded.compute:
        acts = _act_inputs(folded, qn)
        if not qn.outputs or not qn.outputs[0]:
            continue
        ins = [factor.get(a) for a in acts]
        result: Optional[Tuple[np.ndarray, int, str]] = None
        if qn.name in inserted_set:
            result = ins[0] if ins else None
            scaled = _inserted_scale(folded, qn, result)
            if scaled is not None:
                result = scaled
        elif qn.op in WEIGHTED and qn.name in nmap:
            fn = fnodes[nmap[qn.name]]
            wq_name = next((t for t in qn.inputs[1:2] if t and _is_const(folded, t)), None)
            wf_name = next((t for t in fn.inputs[1:2] if t in fg.constants), None)
            wq = _const(folded, wq_name) if wq_name else None
            wf = np.asarray(fg.constants[wf_name], np.float64) if wf_name else None
            if wq is not None and wf is not None:
                wf = _fold_absorbed_bn(fg, fnodes, absorbed_by.get(qn.name, []), qn.op, wf, fn.attrs)
                r_in = ins[0][0] if ins and ins[0] is not None else None
                fit = channel_factors(qn.op, wq, wf, qn.attrs, r_in)
                if fit is not None:
                    r, res = fit
                    # A factor counts only where the weights are a clean multiple and the factor stands out of the
                    # fit's own noise: quantization error alone moves r by about as much as the residual.
                    good = (res < FIT_RESIDUAL_MAX) & (r > 0) & (np.abs(r - 1.0) > NOISE_MARGIN * res)
                    r = np.where(good, r, 1.0)
                    if np.any(np.abs(r - 1.0) > RESCALE_MIN):
                        result = (r, 1 if qn.op in ("Conv", "ConvTranspose") else -1, "weights of %s" % qn.name)
        elif qn.op in HOMOGENEOUS and ins and ins[0] is not None:
            result = ins[0]
        elif qn.op in ("ReduceMean", "ReduceMax") and ins and ins[0] is not None:
            axes = qn.attrs.get("axes")
            if isinstance(axes, list) and 1 not in axes and -1 not in axes:
                result = ins[0] if qn.attrs.get("keepdims", 1) or ins[0][1] == 1 else None
        elif qn.op == "Concat" and any(x is not None for x in ins) and qn.attrs.get("axis") == 1:
            parts = []
            for a, x in zip(acts, ins):
                if x is not None:
                    parts.append(x[0])
                else:
                    c = channels.get(tmap.get(a, ""))
                    if c is None:
                        parts = None
                        break
                    parts.append(np.ones(c))
            if parts is not None:
                result = (np.concatenate(parts), 1, "concat of rescaled inputs")
        elif qn.op in ("Add", "Sub", "Max", "Min") and any(x is not None for x in ins):
            if all(x is not None for x in ins) and all(x[0].shape == ins[0][0].shape and np.allclose(x[0], ins[0][0], rtol=1e-3)
                                                       for x in ins):
                result = ins[0]
        if result is not None:
            for qo in qn.outputs:
                if qo:
                    factor[qo] = result
    for t, (r, axis, why) in factor.items():
        if t in folded.act_spec:
            out[t] = {"factor": r, "axis": axis, "from": why, "channels": int(r.size),
                      "factor_min": float(r.min()), "factor_max": float(r.max())}
    return out


def _inserted_scale(folded: Folded, qn: Node, r_in: Optional[Tuple[np.ndarray, int, str]]
                    ) -> Optional[Tuple[np.ndarray, int, str]]:
    """The per-channel factor of an inserted ``Mul`` / ``Div`` by a constant vector (SmoothQuant's ``x * 1/s``
    before a MatMul, when the quantizer does not fold it into a previous op): the tensor it writes is its input
    times that vector, channel by channel.  The vector's axis: the last one for a 1-D constant (it broadcasts
    along the last axis), else the one axis of size > 1 of a ``(C, 1, ...)`` constant (counted from the end).
    None for a scalar or any other shape (a uniform scale changes no channel's share of the range)."""
    if qn.op not in SCALING:
        return None
    consts = [t for t in qn.inputs if t and _is_const(folded, t)]
    if len(consts) != 1 or (qn.op == "Div" and qn.inputs[1:2] != consts):
        return None
    c = _const(folded, consts[0])
    if c is None:
        return None
    c = np.asarray(c, np.float64)
    big = [i for i, d in enumerate(c.shape) if d > 1]
    if len(big) != 1 or c.size < 2 or not np.all(np.isfinite(c)) or np.any(c == 0):
        return None
    axis = big[0] - c.ndim  # from the end: broadcasting aligns the trailing axes
    v = c.reshape(-1)
    v = 1.0 / v if qn.op == "Div" else v
    if not np.all(v > 0) or np.allclose(v, 1.0, rtol=RESCALE_MIN):
        return None  # a sign flip is not a rescale the ops after it carry; a factor of ~1 changes nothing
    if r_in is not None:  # the input was rescaled already: both factors, when they are on the same channels
        if r_in[0].shape != v.shape or r_in[1] != axis:
            return None
        v = v * r_in[0]
    return v, axis, "constant of %s" % qn.name


def _fold_absorbed_bn(fg: Graph, fnodes: Dict[str, Node], absorbed: List[str], op: str, wf: np.ndarray,
                      attrs: Dict[str, Any]) -> np.ndarray:
    """The float weights with an absorbed BatchNormalization's per-channel scale folded in (as the quantizer did)."""
    for name in absorbed:
        bn = fnodes.get(name)
        if bn is None or bn.op != "BatchNormalization" or op != "Conv":
            continue
        try:
            gamma, var = (np.asarray(fg.constants[bn.inputs[i]], np.float64) for i in (1, 4))
        except (KeyError, IndexError):
            continue
        eps = float(bn.attrs.get("epsilon", 1e-5))
        s = gamma / np.sqrt(var + eps)
        if s.size == wf.shape[0]:
            wf = wf * s.reshape((-1,) + (1,) * (wf.ndim - 1))
    return wf


# --------------------------------------------------------------------------------------------------
# Display graph
# --------------------------------------------------------------------------------------------------
def _display(fg: Graph, folded: Folded, nmap: Dict[str, str], tmap: Dict[str, str], inserted: List[str],
             absorbed_by: Dict[str, List[str]]) -> Tuple[List[DisplayNode], Dict[str, str]]:
    """The QDQ graph without Q/DQ and inserted nodes, each node named after its float counterpart.

    Returns the nodes and ``{QDQ activation: display node id}`` (the node whose output it is)."""
    qg = folded.graph
    fnodes = {n.name: n for n in fg.nodes}
    inserted_set = set(inserted)
    taken: Set[str] = set()
    ids: Dict[str, str] = {}
    producer_id: Dict[str, str] = {}
    out: List[DisplayNode] = []

    def unique(name: str) -> str:
        base, k = name, 1
        while name in taken:
            k += 1
            name = "%s:%d" % (base, k)
        taken.add(name)
        return name

    for t in qg.inputs:
        if t in qg.constants:
            continue
        nid = unique(tmap.get(t, t))
        producer_id[t] = nid
        out.append(DisplayNode(nid, "Input", [], t, tmap.get(t), None, [], None, None, [t]))
    for qn in folded.compute:
        acts = _act_inputs(folded, qn)
        if qn.op == "Constant" or (not acts and not any(o in folded.act_spec for o in qn.outputs)):
            continue
        if all(o in qg.static for o in qn.outputs if o):
            continue
        if qn.name in inserted_set and acts:
            src = producer_id.get(acts[0])
            for qo in qn.outputs:
                if qo and src:
                    producer_id[qo] = src
            continue
        fname = nmap.get(qn.name)
        nid = unique(fname or qn.name or "%s_%d" % (qn.op, qn.index))
        ids[qn.name] = nid
        inputs: List[str] = []
        for a in acts:
            p = producer_id.get(a)
            if p and p not in inputs:
                inputs.append(p)
        wspec = None
        for t in qn.inputs[1:]:
            if t in folded.const_spec:
                wspec = folded.const_spec[t]
                break
        fop = fnodes[fname].op if fname in fnodes else None
        out.append(DisplayNode(nid, qn.op, inputs, qn.name, fname, fop if fop != qn.op else None,
                               list(absorbed_by.get(qn.name, [])), wspec, wspec.dtype if wspec else None,
                               [o for o in qn.outputs if o]))
        for qo in qn.outputs:
            if qo:
                producer_id[qo] = nid
    return out, {t: producer_id[t] for t in folded.act_spec if t in producer_id}


def silu_muls(nodes: Sequence[DisplayNode], graph_nodes: Iterable[Node] = ()) -> Set[str]:
    """Display ids of ``Mul(x, Sigmoid(x))`` / ``Mul(x, HardSigmoid(x))`` nodes: SiLU / HardSwish, as exported."""
    by_id = {n.id: n for n in nodes}
    found = set()
    for n in nodes:
        if n.op != "Mul" or len(n.inputs) != 2:
            continue
        a, b = (by_id.get(i) for i in n.inputs)
        for gate, other in ((a, n.inputs[1]), (b, n.inputs[0])):
            if gate is not None and gate.op in ("Sigmoid", "HardSigmoid") and gate.inputs == [other]:
                found.add(n.id)
    return found
