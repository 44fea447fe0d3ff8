"""Walks of a report's graph that every stage needs: the compare points (report layers, XQuant's measured nodes)
nearest to a node upstream or downstream, and the compare points that show a verdict's node."""
from __future__ import annotations

from typing import Any, Callable, Dict, List

from tb_xquant_plugin.readers.graphs import layer_name_of


def nearest_compare_points(rep: Any, start: Any, step: Callable[[Any], List[Any]], limit: int = 6) -> List[str]:
    """The first report layers (compare points) reached from graph node ``start`` along ``step`` (its inputs or its
    consumers), breadth first, not walking past a compare point; at most ``limit`` nodes visited."""
    out: List[str] = []
    seen, todo = {start.id}, list(step(start))
    while todo and limit > 0:
        n = todo.pop(0)
        if n is None or n.id in seen:
            continue
        seen.add(n.id)
        limit -= 1
        ln = layer_name_of(n)
        if ln in rep.layer_by_name:
            if ln not in out:
                out.append(ln)
            continue
        todo.extend(step(n))
    return out


def consumers_of(rep: Any) -> Callable[[Any], List[Any]]:
    """``step`` for :func:`nearest_compare_points` downstream: a node's consumers (index built once)."""
    users: Dict[str, List[Any]] = {}
    for m in rep.nodes:
        for i in m.inputs:
            users.setdefault(i, []).append(m)
    return lambda n: users.get(n.id, [])


def compare_points(rep: Any, name: str) -> List[str]:
    """The report layers whose metrics show a verdict's node: the node itself when XQuant measures it, else the
    compare points right before it (an activation fused into the convolution before it is measured there) and
    right after it (the layer that takes its output)."""
    if name in rep.layer_by_name:
        return [name]
    node = rep.node_by_name.get(name)
    if node is None:
        return []
    before = nearest_compare_points(rep, node, lambda n: [rep.node_by_id.get(i) for i in n.inputs])
    return list(dict.fromkeys(before + nearest_compare_points(rep, node, consumers_of(rep))))
