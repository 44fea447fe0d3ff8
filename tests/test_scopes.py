"""Module scopes recovered from torch.fx node names (tb_xquant_plugin.model.scopes) and the graph route's groups."""
from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tb_xquant_plugin.model.scopes import module_scopes


def scopes_of(names):
    return dict(zip(names, module_scopes(names)))


def test_sequential_blocks_nest_and_function_calls_join_the_block_around_them():
    names = ["_args", "getitem", "features_0_0_layer", "features_0_2",
             "features_1_conv_0_0_layer", "features_1_conv_0_2", "features_1_conv_1_layer", "add",
             "features_2_conv_0_0_layer", "features_2_conv_0_2", "features_2_conv_1_layer",
             "flatten", "classifier_1_layer"]
    s = scopes_of(names)
    assert s["_args"] == s["getitem"] == s["flatten"] == s["classifier_1_layer"] == ""
    assert s["features_0_0_layer"] == s["features_0_2"] == "features/0"
    assert s["features_1_conv_0_0_layer"] == s["features_1_conv_0_2"] == "features/1/conv/0"
    assert s["features_1_conv_1_layer"] == "features/1/conv"
    # the residual add fx named `add` sits between features.1 and features.2: it belongs to `features`
    assert s["add"] == "features"


def test_interleaved_parallel_branches_do_not_swallow_each_other():
    names = ["stem_0_bn_layer", "stem_2", "left_0_layer", "right_0_layer", "left_1", "right_1", "cat"]
    s = scopes_of(names)
    assert s["stem_0_bn_layer"] == s["stem_2"] == "stem"
    assert s["left_0_layer"] != s["right_0_layer"] or s["left_0_layer"] == ""
    assert "left" not in s["right_0_layer"] and "right" not in s["left_1"]


def test_fx_call_counters_are_not_scopes():
    # relu, relu_1, relu_2 are three calls of F.relu, not a module `relu` with children 1 and 2
    names = ["relu", "fc_layer", "relu_1", "proj_layer", "relu_2"]
    assert set(module_scopes(names)) == {""}


def test_a_word_shared_by_distant_nodes_is_not_a_scope():
    names = ["head_x"] + ["n%d" % i for i in range(10)] + ["head_y"]
    assert module_scopes(names)[0] == "" and module_scopes(names)[-1] == ""


def lifted_edges(names, edges):
    """Edges between the top-most distinct scopes of their ends, as the panel lifts them for a level."""
    scopes = module_scopes(names)
    path = [s.split("/") if s else [] for s in scopes]
    out = set()
    for u, v in edges:
        pu, pv = path[u] + ["#%d" % u], path[v] + ["#%d" % v]
        i = 0
        while pu[i] == pv[i]:
            i += 1
        out.add(("/".join(pu[: i + 1]), "/".join(pv[: i + 1])))
    return out


def has_cycle(edges):
    graph = {}
    for a, b in edges:
        graph.setdefault(a, set()).add(b)
    state = {}

    def visit(n):
        state[n] = 1
        for m in graph.get(n, ()):
            if state.get(m) == 1 or (m not in state and visit(m)):
                return True
        state[n] = 2
        return False

    return any(n not in state and visit(n) for n in list(graph))


words = st.sampled_from(["blocks", "stem", "left", "right", "0", "1", "2", "conv", "bn", "add", "cat", "relu"])


@settings(max_examples=200, deadline=None)
@given(st.lists(st.lists(words, min_size=1, max_size=4), min_size=2, max_size=40), st.randoms())
def test_grouping_a_topologically_ordered_graph_never_makes_a_cycle(token_lists, rnd):
    names, used = [], set()
    for i, toks in enumerate(token_lists):
        name = "_".join(toks)
        if name in used:
            name = "%s_x%d" % (name, i)
        used.add(name)
        names.append(name)
    # edges only go forward in the given order, as in an fx graph
    edges = [(u, v) for v in range(1, len(names)) for u in rnd.sample(range(v), min(v, 2))]
    assert not has_cycle(lifted_edges(names, edges))


def test_graph_route_groups_the_demo_by_module(demo_logdir):
    from tb_xquant_plugin.readers.events import LocalEventSource
    from tb_xquant_plugin.api import views
    from tb_xquant_plugin.server.store import ReportStore

    store = ReportStore(str(demo_logdir), lambda: LocalEventSource(str(demo_logdir)), background=False)
    rid = next(r for r, (rel, _) in store.ids().items() if rel.startswith("unbalanced_concat/"))
    analysis, _ = store.analysis(rid, {})
    nodes = {n["name"]: n for n in views.graph(analysis)["nodes"]}
    # the stem's conv (with its folded bn) and its activation are one module scope
    stem = [n for n in nodes if n.startswith("stem_")]
    assert len(stem) >= 2 and {nodes[n]["group"] for n in stem} == {"stem"}
    # the two concatenated branches stay apart, so the join's inputs are visible side by side
    assert not any(nodes[n]["group"] for n in nodes if n.startswith(("left_", "right_")))


@pytest.mark.parametrize("n", [0, 1])
def test_tiny_graphs(n):
    assert module_scopes(["only_one"] * n) == [""] * n
