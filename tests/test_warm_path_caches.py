"""The warm path's memos answer what computing afresh answers (issue 17: every warm route under 50 ms at 20,000
layers): the summary's verdict groups, built run by run and remembered by the identity of the verdicts, and the
parts of MCT's concatenation agreement that do not depend on the degraded layers (where each pair sits, its
estimated ratio, the joins by node, the widest and the flagged joins)."""
from __future__ import annotations

import copy
import random
from pathlib import Path

import pytest

from bench import mct_format
from tb_xquant_plugin import producers
from tb_xquant_plugin.api import views
from tb_xquant_plugin.judges import concat
from tb_xquant_plugin.judges.run import analyse
from tb_xquant_plugin.model.verdict import Verdict


def plain_groups(vs):
    """The summary's grouping written the direct way: one pass, no memo."""
    groups, seen = {}, {}
    for v in vs:
        finding = v.numbers.get("finding") if isinstance(v.numbers, dict) else None
        cm = v.countermeasure if isinstance(v.countermeasure, dict) else None
        key = (v.judge, v.source, finding if isinstance(finding, str) else None,
               cm.get("kind") if cm and isinstance(cm.get("kind"), str) else None)
        if key not in groups:
            groups[key] = {"judge": key[0], "source": key[1], "cause": key[2], "advice": key[3], "count": 0,
                           "layers": [], "layer_count": 0, "manual": v.manual, "message": v.message}
            seen[key] = set()
        g = groups[key]
        g["count"] += 1
        for l in v.layers:
            if l not in seen[key]:
                seen[key].add(l)
                if len(g["layers"]) < views.GROUP_LAYERS:
                    g["layers"].append(l)
        g["layer_count"] = len(seen[key])
    return list(groups.values())


def random_verdicts(rng: random.Random, n: int):
    judges = ["outlier_removal", "shift_negative_activation", "unbalanced_concatenation"]
    out = []
    for i in range(n):
        layers = ["L%d" % rng.randrange(30) for _ in range(rng.choice((0, 1, 1, 2, 3)))]
        numbers = {"finding": rng.choice(("real_outlier_tail", "normal_tail"))} if rng.random() < 0.5 else {}
        cm = {"kind": rng.choice(("quantization_config", "layer_activation"))} if rng.random() < 0.6 else None
        out.append(Verdict(rng.choice(judges), rng.choice(("computed", "mct")), layers, numbers, "manual-id",
                           "message %d" % i, None, cm))
    return out


def test_verdict_groups_run_by_run_equal_one_pass():
    rng = random.Random(17)
    for case in range(300):
        vs = random_verdicts(rng, rng.randrange(0, 60))
        expected = plain_groups(vs)
        first = views.verdict_groups(vs)
        assert first == expected, case
        # the caller may change what it got: the remembered runs stay as they were
        for g in first:
            g["layers"].append("changed")
            g["count"] += 100
        assert views.verdict_groups(vs) == expected, case
        # runs shared with another list (the same Verdict objects, in another order and with new ones between)
        mixed = vs[len(vs) // 2:] + random_verdicts(rng, 5) + vs[: len(vs) // 2]
        assert views.verdict_groups(mixed) == plain_groups(mixed), case


def test_verdict_groups_see_a_new_verdict_object_with_the_same_contents_as_new():
    v = Verdict("outlier_removal", "computed", ["a"], {"finding": "normal_tail"}, "m", "one")
    assert views.verdict_groups([v])[0]["message"] == "one"
    w = copy.copy(v)
    w.message = "two"
    assert views.verdict_groups([w])[0]["message"] == "two"


@pytest.fixture(scope="module")
def bench_report(tmp_path_factory):
    """A generated 300-layer MCT logdir whose troubleshoot report lists unbalanced pairs, with its stage logs."""
    out = tmp_path_factory.mktemp("warm")
    report_dir = mct_format.write_model_logdir(str(out), 300, seed=11)
    return producers.build_report_dir(report_dir, str(Path(report_dir).parent))


def test_concat_agreement_with_memos_equals_a_fresh_computation(bench_report):
    rep = bench_report
    base = analyse(rep)
    assert base.concat_agreement["mct_pairs"], "the generated report should list MCT pairs"
    layers = [l.name for l in rep.layers]
    rng = random.Random(5)
    for case in range(12):
        degraded = rng.sample(layers, rng.randrange(0, 40))
        thr = rng.choice((2.0, 4.0, 16.0, 64.0))
        warm = concat.agreement(rep, concat.joins_of(rep), degraded, thr, False)
        facts, rep.facts = rep.facts, None  # every memo empty: computed afresh
        try:
            fresh = concat.agreement(rep, concat.joins_of(rep), degraded, thr, False)
        finally:
            rep.facts = facts
        assert warm == fresh, case
    # a list of joins other than the report's own is never answered from the memos
    other = [dict(c, ratio=None) for c in concat.joins_of(rep)]
    got = concat.agreement(rep, other, [], 2.0, False)
    assert got["counts"]["graph_only"] == 0
