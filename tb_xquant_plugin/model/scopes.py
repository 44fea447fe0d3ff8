"""Module scopes of a quantized PyTorch graph, recovered from its node names, for collapsible graph groups.

The graph MCT writes for the quantized model puts every node in a scope named after its op type and a counter
(``PytorchModel/Conv2d_3/blocks_1_conv``), which groups nothing useful. The module structure is in the node
names instead: ``torch.fx`` names a call of module ``blocks.1.conv`` ``blocks_1_conv``, and MCT appends
``_layer`` to the wrapped ones. This module turns those names back into nested scopes:

* a name is split at ``_`` into tokens (the ``_layer`` suffix and a leading ``_`` are ignored);
* ``add_3`` is one token when a node named ``add`` exists too: that is fx numbering repeated calls of a
  function, not a module called ``add`` with a child ``3``;
* a token prefix becomes a scope when at least two nodes share it and they sit together in graph order: fx
  lists a module's calls one after the other, while nodes that merely share a word are spread over the model.
  "Together" means the stretch from the first to the last member is at most half foreign, and the foreign
  nodes are function calls (one-token names such as ``add`` or ``cat_2``), never another module's calls;
* the function calls inside a scope's stretch join it (the ``add`` of a residual block), and stretches nest
  or are disjoint, so the grouped graph is still acyclic.

The result for each node is a ``/``-separated scope path (``blocks/1/conv``), or ``""`` at the top level.
Single-child scopes are left in; the panel merges them when it draws.
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

LAYER_SUFFIX = "_layer"


def _tokens(name: str, names: frozenset) -> Tuple[str, ...]:
    if name.endswith(LAYER_SUFFIX):
        name = name[: -len(LAYER_SUFFIX)]
    if not name or name.startswith("_"):
        return (name,)
    parts = name.split("_")
    if len(parts) > 1 and parts[-1].isdigit() and "_".join(parts[:-1]) in names:
        return (name,)
    return tuple(p for p in parts if p) or (name,)


def module_scopes(names: Sequence[str]) -> List[str]:
    """The scope path of each node, given the node names in graph order."""
    bare = frozenset(n[: -len(LAYER_SUFFIX)] if n.endswith(LAYER_SUFFIX) else n for n in names)
    tokens = [_tokens(n, bare) for n in names]
    # token prefix -> [count, first position, last position]
    seen: Dict[Tuple[str, ...], List[int]] = {}
    for pos, toks in enumerate(tokens):
        for k in range(1, len(toks)):
            entry = seen.get(toks[:k])
            if entry is None:
                seen[toks[:k]] = [1, pos, pos]
            else:
                entry[0] += 1
                entry[2] = pos
    def cohesive(prefix: Tuple[str, ...], count: int, first: int, last: int) -> bool:
        # At least half the stretch is the scope's own, and nothing in it is another module's call: parallel
        # branches (``left_0``, ``right_0``, ``left_1``, ``right_1``) interleave in graph order, and neither
        # may swallow the other.
        if count < 2 or last - first + 1 > 2 * count:
            return False
        k = len(prefix)
        return all(len(t) == 1 or t[:k] == prefix for t in tokens[first:last + 1])

    candidates = sorted((first, -last, prefix) for prefix, (count, first, last) in seen.items()
                        if cohesive(prefix, count, first, last))
    # A scope is the whole stretch of graph order from its first to its last member: nodes fx placed in
    # between (the ``add`` of a residual block) belong to it. Stretches must nest or be disjoint; one that
    # crosses an earlier (outer) one is dropped. Collapsing a stretch of a topological order cannot make a
    # cycle, so the grouped graph stays a DAG.
    accepted: List[Tuple[int, int, Tuple[str, ...]]] = []
    stack: List[int] = []  # last positions of the open accepted scopes
    for first, neg_last, prefix in candidates:
        last = -neg_last
        while stack and stack[-1] < first:
            stack.pop()
        if stack and last > stack[-1]:
            continue
        accepted.append((first, last, prefix))
        stack.append(last)
    out: List[str] = []
    open_scopes: List[Tuple[int, Tuple[str, ...], str]] = []  # (last, prefix, path)
    nxt = 0
    for pos in range(len(names)):
        while open_scopes and open_scopes[-1][0] < pos:
            open_scopes.pop()
        while nxt < len(accepted) and accepted[nxt][0] == pos:
            first, last, prefix = accepted[nxt]
            nxt += 1
            parent_prefix, parent_path = (open_scopes[-1][1], open_scopes[-1][2]) if open_scopes else ((), "")
            rel = prefix[len(parent_prefix):] if prefix[: len(parent_prefix)] == parent_prefix else prefix
            label = "_".join(rel)
            open_scopes.append((last, prefix, parent_path + "/" + label if parent_path else label))
        out.append(open_scopes[-1][2] if open_scopes else "")
    return out
