"""The advice benchmark (``bench/advice.py``) on one demo case: the outlier verdict's countermeasure, applied and
measured, lowers the error of the layers it is about (the layer and the one consuming its output).  The full benchmark (torchvision
architectures, minutes each) is not in CI; this is its one-model version (about 20 s on 2 cores)."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

pytestmark = pytest.mark.mct


def test_outlier_verdict_fix_lowers_the_targeted_error(tmp_path):
    import logging
    import warnings

    from bench import advice

    warnings.filterwarnings("ignore")
    logging.getLogger("Model Compression Toolkit").setLevel(logging.ERROR)
    ((name, model, core, ru, data, notes),) = advice.demo_cases(["outlier"])
    rows = advice.run_case("demo_outlier", model, core, ru, data, str(tmp_path), max_attempts=2, notes=notes)
    ours = [r for r in rows if r["judge"] == "outlier_removal" and r["outcome"] is not None
            and any(advice.source_kind(s) == advice.KIND_ACTIONABLE for s in r["sources"])]
    assert ours, [(r["judge"], r["label"], r["sources"]) for r in rows]
    row = ours[0]
    t = row["target"]
    assert t["points"] and t["improved"], t
    assert any(t["after"][p] < 0.95 * t["before"][p] for p in t["points"]
               if t["before"][p] is not None and t["after"][p] is not None), t
    assert row["outcome"]["ok"], row["outcome"]
    counts = advice.tally(rows)
    assert counts[("outlier_removal", advice.KIND_ACTIONABLE)]["target_improved"] >= 1
    assert advice.targets(counts, rows)[0].startswith("PASS")
