"""bench/mct_format.py's torchvision graph shapes (``SHAPES``, used by tests/browser/test_graph_first_view.py and
``python -m bench.browser --real shapes``): each is read by the plugin like a real MCT report of that
architecture, and its module scopes come out as torchvision's (torch-free, a few seconds)."""
from __future__ import annotations

import collections

import pytest

from bench import mct_format
from tb_xquant_plugin.judges.run import analyse
from tb_xquant_plugin.producers import build_all
from tb_xquant_plugin.readers.events import LocalEventSource

# graph nodes per shape (densenet121 as MCT 2.6.1 traces it: 374) and a scope each must have
EXPECTED = {"densenet": (374, "features/denseblock3"), "googlenet": (142, "inception4a"),
            "efficientnet": (193, "features/6/2/block"), "shufflenet": (217, "stage3_1/branch2")}


@pytest.fixture(scope="module")
def shapes(tmp_path_factory):
    out = tmp_path_factory.mktemp("shapes")
    for shape in mct_format.SHAPES:
        mct_format.write_model_logdir(str(out), 0, seed=1, shape=shape, degraded_fraction=0.1)
    source = LocalEventSource(str(out))
    return {r.rel.split("/")[0].replace("model_", ""): r for r in build_all(str(out), source)}


def test_every_shape_is_written_and_read_like_a_real_report(shapes):
    assert sorted(shapes) == sorted(mct_format.SHAPES) == sorted(EXPECTED)
    for shape, r in shapes.items():
        assert r.problems == [] and r.has_quant_report and r.has_graph and r.histograms, (shape, r.problems)
        n_nodes, scope = EXPECTED[shape]
        assert len(r.nodes) == n_nodes, (shape, len(r.nodes))
        for l in r.layers:
            assert l.node is not None and r.node_by_id[l.node].name == l.name + "_layer", (shape, l.name)
        a = analyse(r)
        assert 0 < a.detection.ratio < mct_format.MCT_DEGRADE_LAYER_RATIO, shape


def test_module_scopes_come_out_as_torchvision_has_them(shapes):
    from tb_xquant_plugin.model.scopes import module_scopes

    for shape, r in shapes.items():
        groups = collections.Counter(module_scopes([n.name for n in r.nodes]))
        assert EXPECTED[shape][1] in groups, (shape, sorted(groups)[:20])
    dense = shapes["densenet"]
    cats = [n for n in dense.nodes if n.op == "cat"]
    # every dense layer concatenates the block input and all layers before it
    assert max(len(n.inputs) for n in cats) == 25 and len(cats) == 6 + 12 + 24 + 16 + 4


def test_default_model_is_unchanged_by_the_shape_options(tmp_path):
    """The shape options are additive: the default CNN comes out byte-identical with or without them."""
    import numpy as np

    def digest(**kw):
        rng = np.random.default_rng(5)
        nodes = mct_format.build_model(60, rng)
        rep = mct_format.similarity_metrics(nodes, rng, **kw)
        return [(n.name, n.op, n.inputs) for n in nodes], rep

    assert digest() == digest(fraction=mct_format.DEGRADED_FRACTION)


ZOO = {"efficientnet": "efficientnet_b0", "densenet": "densenet121", "googlenet": "googlenet"}


@pytest.mark.parametrize("shape", sorted(ZOO))
def test_shape_matches_a_real_mct_report(shapes, shape):
    """With TB_XQUANT_ZOO_LOGDIR (``python -m demo.zoo --out DIR``: torchvision models quantized by MCT 2.6.1): the
    generated graph has the real report's nodes (names and ops) and, where MCT's order within a topological
    generation is reproduced (efficientnet_b0, densenet121), the same sequence and module scopes."""
    import os
    from pathlib import Path

    from tb_xquant_plugin.model.scopes import module_scopes

    zoo = os.environ.get("TB_XQUANT_ZOO_LOGDIR")
    folder = Path(zoo or "-") / ZOO[shape]
    if not (folder / "xquant_report" / "quant_report.json").is_file():
        pytest.skip("no real MCT report of %s (TB_XQUANT_ZOO_LOGDIR)" % ZOO[shape])
    (real,) = build_all(str(folder), LocalEventSource(str(folder)))
    gen = shapes[shape]
    key = lambda r: [(n.name, n.op) for n in r.nodes]  # noqa: E731
    assert sorted(key(gen)) == sorted(key(real))
    if shape != "googlenet":   # MCT puts the pooling branch first within a generation; the generator does not
        assert key(gen) == key(real)
        assert module_scopes([n.name for n in gen.nodes]) == module_scopes([n.name for n in real.nodes])
