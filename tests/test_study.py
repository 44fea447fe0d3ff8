"""The study (``tb_xquant_plugin.mct_study.try_countermeasures``) on the demo's problems, judged with MCT's numbers.

Each study quantizes a demo model with MCT 2.6.1, judges the report, applies the countermeasures its verdicts carry
and re-runs PTQ + XQuant; the checks read the attempts' own quant_report.json with MCT's detection rule
(the ``mct_rule`` fixture) and their manifests.  About a minute on 2 cores."""
from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest


REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

pytestmark = pytest.mark.mct


@pytest.fixture(scope="module")
def data():
    from demo import models as M

    return M.DigitsData()


@pytest.fixture(scope="module")
def study_root(tmp_path_factory):
    return tmp_path_factory.mktemp("studies")


def run(name, root, data, **kw):
    from demo.study import run_study

    lines = []
    s = run_study(name, str(root), data, progress=lines.append, **kw)
    s["_progress"] = lines
    s["_dir"] = root / ("%s_study" % name)
    return s


@pytest.fixture(scope="module")
def studies(study_root, data):
    return {name: run(name, study_root, data, max_attempts=4)
            for name in ("outlier", "mixed_precision", "shift_negative", "majority_degraded")}


def attempt(study, aid):
    return next(a for a in study["attempts"] if a["id"] == aid)


def load_json(path):
    return json.loads(Path(path).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def mct_degraded(mct_rule):
    def degraded(study, a):
        rd = study["_dir"] / a["report"]
        manifest = load_json(rd / "tb_xquant_manifest.json")
        return mct_rule(load_json(rd / "quant_report.json"), manifest["xquant_config"])
    return degraded


def test_outlier_study_picks_the_z_threshold_that_removes_the_degradation(studies, mct_degraded):
    s = studies["outlier"]
    base, best = attempt(s, "baseline"), attempt(s, s["best"])
    assert mct_degraded(s, base), "the demo's outlier model degrades layers"
    # the verdict's z_threshold, set on the outlier layers only (a global one would clip three healthy tails)
    assert best["source"] == "verdict" and best["countermeasure"]["kind"] == "layer_activation"
    assert "z_threshold" in best["countermeasure"]["fields"] and "project_conv_bn" in best["countermeasure"]["layers"]
    assert mct_degraded(s, best) == [] and best["helped"]
    assert best["accuracy"] >= base["accuracy"] and best["output_sqnr"] > base["output_sqnr"]
    assert best["target_improved"], best["target_mse"]
    # the winning snippet is the verdict's own snippet (both rendered from the same countermeasure)
    verdict_snippets = {v["snippet"] for v in base.get("verdicts", []) if v.get("countermeasure") == best["countermeasure"]}
    assert s["winning_snippet"] in verdict_snippets and "z_threshold=" in s["winning_snippet"]


def test_mixed_precision_study_pins_the_last_layer(studies, mct_degraded):
    s = studies["mixed_precision"]
    base, best = attempt(s, "baseline"), attempt(s, s["best"])
    assert mct_degraded(s, base)
    cm = best["countermeasure"]
    assert cm["kind"] == "bit_width" and cm["target"] == "weights" and cm["bits"] > cm["from_bits"]
    assert mct_degraded(s, best) == []
    # the pinned layer really ended at the pinned width (MCT's quantized model, recorded by the manifest)
    bits = load_json(s["_dir"] / best["report"] / "tb_xquant_manifest.json")["bit_widths"]["last_layer"]
    assert bits["name"] == cm["layer"] and bits["weights_nbits"] == cm["bits"]
    assert best["size_bytes"] > base["size_bytes"]  # the wider layer costs memory, and the study says how much


def test_shift_negative_study_lowers_the_targeted_activations_error(studies):
    s = studies["shift_negative"]
    tried = [a for a in s["attempts"] if a["source"] == "verdict"]
    def turns_on(cm):  # the switch, alone or with a ratio raised on one activation (a combined countermeasure)
        parts = cm["parts"] if cm["kind"] == "combined" else [cm]
        return any(p["kind"] == "quantization_config" and p["fields"].get("shift_negative_activation_correction")
                   for p in parts)

    assert tried and all(turns_on(a["countermeasure"]) for a in tried)
    assert any(a["target_improved"] for a in tried), [a["target_mse"] for a in tried]
    base = attempt(s, "baseline")
    if not base["degraded_count"]:  # a healthy baseline: the general path has nothing to fix and is not run
        assert "general_path" not in s and s["general_path_skipped"]


def test_majority_degraded_study_takes_the_general_path(studies, mct_degraded):
    s = studies["majority_degraded"]
    base = attempt(s, "baseline")
    assert len(mct_degraded(s, base)) * 2 >= len(load_json(s["_dir"] / base["report"] / "quant_report.json")) - 2
    assert not [a for a in s["attempts"] if a["source"] == "verdict"], "the judges are skipped: nothing to apply"
    assert s["general_path"][0].startswith("more representative data")
    general = [a for a in s["attempts"] if a["source"] == "general"]
    assert general and general[-1]["helped"] and len(general) <= len(s["general_path"])
    best = attempt(s, s["best"])
    assert best["source"] == "general" and len(mct_degraded(s, best)) < len(mct_degraded(s, base))


def test_every_attempt_is_a_report_that_names_its_parent_and_countermeasure(studies):
    from tb_xquant_plugin.model import study as S

    for s in studies.values():
        on_disk = json.loads((s["_dir"] / S.FILENAME).read_text())
        parsed = S.parse(on_disk)
        assert [a["id"] for a in parsed["attempts"]] == [a["id"] for a in s["attempts"]]
        assert on_disk["float_model_untouched"] is True and on_disk["status"] == S.DONE
        for a in s["attempts"]:
            m = load_json(s["_dir"] / a["report"] / "tb_xquant_manifest.json")
            st = m["extra"]["study"]
            assert st["parent"] == (None if a["id"] == "baseline" else "baseline")
            assert st["countermeasure"] == a["countermeasure"]
            assert st["cost"]["quantize_s"] > 0 and st["cost"]["weights_bytes"] > 0
            assert a["time_s"] >= st["cost"]["quantize_s"]
        assert len(s["_progress"]) >= len(s["attempts"])


def test_a_failing_attempt_is_recorded_and_the_budget_stops_the_study(study_root, data, monkeypatch):
    from tb_xquant_plugin import mct_study
    from tb_xquant_plugin.model import countermeasure as C

    real = mct_study._proposals

    def with_a_broken_one(analysis, *rest):
        return [(C.quantization_config(no_such_field=1), {"judge": "test", "layers": [], "message": "broken"})] + \
            real(analysis, *rest)

    monkeypatch.setattr(mct_study, "_proposals", with_a_broken_one)
    s = run("outlier", study_root / "budget", data, max_attempts=1)
    failed = attempt(s, s["attempts"][1]["id"])
    assert failed["status"] == "failed" and "no_such_field" in failed["error"]
    assert s["stopped_by"] == "max_attempts" and len(s["attempts"]) == 2 and s["status"] == "done"
    assert s["best"] == "baseline" and s["winning_snippet"] is None
