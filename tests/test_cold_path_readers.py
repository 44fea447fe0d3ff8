"""The cold path's shortcuts answer what the plain ways answer (issue 17): GraphDefs parsed a chunk of nodes at a
time, the stage graph read in one walk, the side-effect scan's filter comparison, and the garbage-collector pause
that builds and analyses run under."""
from __future__ import annotations

import gc
import math
import threading

import numpy as np
import pytest
from tensorboard.compat.proto.graph_pb2 import GraphDef

from tb_xquant_plugin import producers
from tb_xquant_plugin.judges import activation_noise as AN
from tb_xquant_plugin.producers import mct_matching, mct_stages
from tb_xquant_plugin.readers import graphs
from tb_xquant_plugin.readers.events import LocalEventSource
from tb_xquant_plugin.server.store import collector_paused


@pytest.fixture(scope="module")
def stage_graph(demo_logdir):
    """The serialized stage graph the demo's outlier report reads its quantization parameters from."""
    folder = str(demo_logdir / "outlier")
    rep = producers.build_report_dir(folder + "/xquant_report", folder)
    assert rep.stage_run
    return LocalEventSource(folder).graph(rep.stage_run)


def test_graph_nodes_in_chunks_are_the_graphdefs_nodes(stage_graph, monkeypatch):
    whole = list(GraphDef.FromString(stage_graph).node)
    assert len(whole) > 20
    monkeypatch.setattr(graphs, "GRAPH_CHUNK_NODES", 7)  # many chunks, the last one short
    chunked = list(graphs.graph_nodes(stage_graph))
    assert [n.SerializeToString() for n in chunked] == [n.SerializeToString() for n in whole]
    with pytest.raises(ValueError, match="not a valid GraphDef"):
        list(graphs.graph_nodes(stage_graph[:-3] + b"\xff\xff\xff"))


def test_stage_graph_in_one_walk_is_parse_graph_and_stage_main_nodes(stage_graph):
    read = mct_stages.read_stage_graph(stage_graph)
    every = graphs.parse_graph(stage_graph)
    assert read.size == len(every)
    main = mct_matching.stage_main_nodes(every)
    assert [(n.id, n.name, n.op, n.inputs, n.output_shapes) for n in read.main] == \
        [(n.id, n.name, n.op, n.inputs, n.output_shapes) for n in main]
    # every helper's parameters, under its layer's name, as the helper's own attributes say
    helpers = [n for n in every if n.id.endswith((".activation", ".weights"))]
    assert helpers and set(read.quant) == {n.name.rsplit(".", 1)[0] for n in helpers}
    for n in helpers:
        qp = read.quant[n.name.rsplit(".", 1)[0]]
        if n.id.endswith(".activation"):
            z = n.attrs.get("z_threshold")
            assert qp.z_threshold == z or (math.isinf(z) and math.isinf(qp.z_threshold))
            assert qp.activation_nbits == mct_stages.decided_bits(mct_stages.bit_candidates(n.attrs["activation_n_bits"]))
        else:
            assert qp.weights_bias_correction == n.attrs.get("weights_bias_correction")


def test_same_filter_is_comparing_the_filtered_counts():
    rng = np.random.default_rng(7)
    checked = 0
    for _ in range(300):
        n = int(rng.integers(3, 60))
        lo = rng.normal(0, 2)
        edges = np.linspace(lo, lo + rng.uniform(0.1, 20), n + 1)  # MCT's bins: a linspace
        counts = rng.integers(0, 4, n).astype(float) * (rng.random(n) > 0.3)
        hist = AN.MCTHistogram(edges, counts)
        replay = AN.ThresholdReplay(hist)
        zs = list(np.concatenate([replay.zs, rng.uniform(0, 6, 4)])) + [math.inf]
        for a in rng.choice(zs, 5):
            for b in rng.choice(zs, 5):
                assert replay.same_filter(a, b) == np.array_equal(replay.filtered(a), replay.filtered(b))
                checked += 1
    assert checked == 300 * 25


def test_collector_pause_nests_and_restores():
    assert gc.isenabled()
    started, release = threading.Event(), threading.Event()

    def other():
        with collector_paused():
            started.set()
            release.wait(10)

    with collector_paused():
        assert not gc.isenabled()
        t = threading.Thread(target=other)
        t.start()
        started.wait(10)
        with collector_paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert not gc.isenabled()  # the other thread's build is still under way
    release.set()
    t.join(10)
    assert gc.isenabled()
    gc.disable()  # a process that runs without the collector keeps it off
    try:
        with collector_paused():
            pass
        assert not gc.isenabled()
    finally:
        gc.enable()
