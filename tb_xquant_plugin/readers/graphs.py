"""GraphDef bytes -> :class:`GraphNode` records, and the display form of a quantized graph.

Generic over producers; what a toolchain's node attributes mean is read in its producer
(MCT's stage-graph attributes: ``producers.mct_stages``)."""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from tensorboard.compat.proto.graph_pb2 import GraphDef

XQUANT_REPR = "xquant_repr"
XQUANT_VAL = "xquant_val"

# MCT writes per-layer metrics as the repr() of a Python dict: {'mse': 0.1, 'cs': 0.9, ...}.
_METRIC_RE = re.compile(
    r"""['"]([^'"]+)['"]\s*:\s*(?:np\.float\d*\(|float\()?\s*([-+]?(?:nan|inf|infinity|\d+\.?\d*(?:[eE][-+]?\d+)?|\.\d+(?:[eE][-+]?\d+)?))""",
    re.IGNORECASE,
)


@dataclasses.dataclass
class GraphNode:
    id: str
    name: str
    op: str
    inputs: List[str]
    output_shapes: List[List[int]]
    attrs: Dict[str, Any]

    def with_inputs(self, inputs: List[str]) -> "GraphNode":
        """The same node reading ``inputs`` (``dataclasses.replace(node, inputs=...)``, without its introspection:
        graphs are rewired node by node)."""
        return GraphNode(self.id, self.name, self.op, inputs, self.output_shapes, self.attrs)


def parse_metric_dict(text: str) -> Dict[str, float]:
    """Parse MCT's ``xquant_repr`` / ``xquant_val`` attribute without evaluating it."""
    out: Dict[str, float] = {}
    for key, num in _METRIC_RE.findall(text or ""):
        try:
            out[key] = float(num)
        except ValueError:
            out[key] = math.nan
    return out


def attr_value(v) -> Any:
    kind = v.WhichOneof("value")
    if kind == "s":
        return v.s.decode("utf-8", "replace")
    if kind == "i":
        return int(v.i)
    if kind == "f":
        return float(v.f)
    if kind == "b":
        return bool(v.b)
    if kind == "list":
        return None  # only _output_shapes uses lists; handled separately
    return None


def _shapes(v) -> List[List[int]]:
    shapes = []
    try:
        for s in v.list.shape:
            shapes.append([int(d.size) for d in s.dim])
    except Exception:  # noqa: BLE001
        pass
    return shapes


def cached_shapes(v, cache: Dict[bytes, List[List[int]]]) -> List[List[int]]:
    """:func:`_shapes` once per distinct ``_output_shapes`` value of a graph (most nodes share a few dozen shapes:
    reading the message's bytes in C is cheaper than walking its dimensions in Python).  The lists are shared
    between the nodes that have the same shapes; nothing mutates them."""
    key = v.SerializeToString()
    hit = cache.get(key)
    if hit is None:
        hit = cache[key] = _shapes(v)
    return hit


# A GraphDef's nodes are parsed this many at a time (graph_nodes): protobuf holds a parsed message in about three
# times its serialized size, 300 MB for the 100 MB stage graph of a 20,000-layer model, were it parsed whole.
GRAPH_CHUNK_NODES = 2048
_node_list = None


def _node_list_class():
    """A message with the one field of a GraphDef that holds its nodes, ``repeated NodeDef node = 1``, declared as
    ``repeated bytes``: the same wire format, so a GraphDef parses as it with each node left serialized."""
    global _node_list
    if _node_list is None:
        from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

        field = descriptor_pb2.FieldDescriptorProto
        proto = descriptor_pb2.FileDescriptorProto(name="tb_xquant_graph_nodes.proto", package="tb_xquant",
                                                   syntax="proto3")
        proto.message_type.add(name="GraphNodes").field.add(name="node", number=1, type=field.TYPE_BYTES,
                                                            label=field.LABEL_REPEATED)
        pool = descriptor_pool.DescriptorPool()
        pool.Add(proto)
        _node_list = message_factory.GetMessageClass(pool.FindMessageTypeByName("tb_xquant.GraphNodes"))
    return _node_list


def graph_nodes(data: bytes) -> Iterator[Any]:
    """The ``NodeDef`` messages of a serialized GraphDef in graph order, parsed by protobuf GRAPH_CHUNK_NODES at a
    time (a GraphDef of each chunk's nodes), so that only one chunk is held parsed.  Raises ``ValueError`` when the
    bytes are not a GraphDef (possibly after some nodes were yielded)."""
    node_list = _node_list_class()
    try:
        nodes = node_list.FromString(data).node
    except Exception as e:  # noqa: BLE001 - protobuf raises DecodeError
        try:  # protobuf's own words about the GraphDef
            GraphDef().ParseFromString(data)
        except Exception as why:  # noqa: BLE001
            e = why
        raise ValueError("graph is not a valid GraphDef: %s" % e) from None
    for start in range(0, len(nodes), GRAPH_CHUNK_NODES):
        chunk = node_list(node=nodes[start:start + GRAPH_CHUNK_NODES]).SerializeToString()
        g = GraphDef()
        try:
            g.ParseFromString(chunk)
        except Exception as e:  # noqa: BLE001
            raise ValueError("graph is not a valid GraphDef: %s" % e) from None
        del chunk
        yield from g.node


def parse_graph(data: Optional[bytes], attrs: Optional[Iterable[str]] = None,
                shapes: bool = True, folded: Optional[Callable[[str], bool]] = None) -> List[GraphNode]:
    """All nodes of a serialized GraphDef.  Raises ``ValueError`` when the bytes are not a GraphDef.

    ``attrs`` limits the decoded node attributes to those names (MCT's stage graphs carry dozens
    per node; decoding only what is read keeps large graphs fast); ``shapes=False`` skips
    ``_output_shapes``; ``folded(op)``: the ops whose nodes the caller folds into their input (fake-quantize
    nodes: :func:`display_graph`), read without attributes or shapes when they have an input."""
    if not data:
        return []
    wanted = None if attrs is None else tuple(k for k in frozenset(attrs) if k != "_output_shapes")
    shape_cache: Dict[bytes, List[List[int]]] = {}
    nodes = []
    append = nodes.append
    for n in graph_nodes(data):
        name = n.name
        op = n.op
        inputs = node_inputs(n)
        values = {}
        node_shapes: List[List[int]] = []
        if folded is not None and inputs and folded(op):
            append(GraphNode(name, name.rsplit("/", 1)[-1], op, inputs, node_shapes, values))
            continue
        attr_map = n.attr
        if wanted is None:
            for k in attr_map.keys():
                if k != "_output_shapes":
                    values[k] = attr_value(attr_map[k])
        else:
            values = read_attrs(attr_map, wanted)
        if shapes:
            sv = attr_map.get("_output_shapes")
            if sv is not None:
                node_shapes = cached_shapes(sv, shape_cache)
        append(GraphNode(name, name.rsplit("/", 1)[-1], op, inputs, node_shapes, values))
    return nodes


def read_attrs(attr_map, names: Iterable[str]) -> Dict[str, Any]:
    """The decoded attributes among ``names`` of one ``NodeDef``'s attribute map (the absent ones left out)."""
    out = {}
    for k in names:
        v = attr_map.get(k)
        if v is not None:
            out[k] = attr_value(v)
    return out


def node_inputs(n) -> List[str]:
    """The ids of the nodes a ``NodeDef`` reads (an output index or the ``^`` of a control input dropped)."""
    inputs = list(n.input)
    if inputs:
        joined = "".join(inputs)
        if ":" in joined or "^" in joined:  # an output index or a control input: the node's name alone
            inputs = [i.split(":")[0].lstrip("^") for i in inputs]
    return inputs


def is_fake_quant(node: GraphNode) -> bool:
    return node.op.startswith("fake_quantize") or node.op.startswith("fake_quant")


def layer_name_of(node: GraphNode) -> str:
    """The name MCT uses for the layer (PyTorch wrappers add ``_layer`` in the quantized graph)."""
    return node.name[: -len("_layer")] if node.name.endswith("_layer") else node.name


def main_nodes(nodes: List[GraphNode]) -> List[GraphNode]:
    """Nodes without MCT's ``.weights`` / ``.activation`` helper nodes."""
    return [n for n in nodes if not (n.id.endswith(".weights") or n.id.endswith(".activation"))]


def display_graph(nodes: List[GraphNode]) -> Tuple[List[GraphNode], Dict[str, str]]:
    """The quantized model's graph as a user reads it: fake-quantize nodes (activation quantizers)
    are removed and their consumers connected to their producers.  Returns the nodes and a map
    from each removed node id to the producer it stood for."""
    # fake-quantize node id -> its input
    folded = {n.id: n.inputs[0] for n in nodes if n.inputs and is_fake_quant(n)}
    alias: Dict[str, str] = {}

    def resolve(i: str) -> str:
        for _ in range(64):
            if i not in folded:
                break
            i = folded[i]
        return i

    kept = []
    for n in nodes:
        if n.id in folded:
            alias[n.id] = resolve(n.id)
            continue
        kept.append(n)
    out = []
    for n in kept:
        seen = []
        for i in n.inputs:
            r = resolve(i)
            if r not in seen and r != n.id:
                seen.append(r)
        out.append(n.with_inputs(seen))
    return out, alias
