"""docs/architecture.md's worked example of a new judge is real: the code block, registered as the page says,
runs through analyse() on a generated MCT-format report, and is skipped for a report that cannot feed it."""
from __future__ import annotations

import dataclasses
import re
import types
from pathlib import Path

from tb_xquant_plugin import manual
from tb_xquant_plugin.judges import registry
from tb_xquant_plugin.judges.run import analyse
from tb_xquant_plugin.model.report import QUANT_PARAMS
from tb_xquant_plugin.producers import build_all

DOC = Path(__file__).resolve().parents[1] / "docs" / "architecture.md"


def example_module():
    text = DOC.read_text(encoding="utf-8")
    (code,) = [c for c in re.findall(r"```python\n(.*?)```", text, re.S) if "JUDGE = Judge(" in c]
    mod = types.ModuleType("low_activation_bits")
    exec(compile(code, str(DOC), "exec"), mod.__dict__)  # noqa: S102 - our own documentation
    return mod


def test_worked_example_judge_runs_when_registered(mct_format_logdir, monkeypatch):
    mod = example_module()
    monkeypatch.setattr(registry, "JUDGES", registry.JUDGES + (mod.JUDGE,))
    report = next(r for r in build_all(str(mct_format_logdir)) if r.layers)

    def low(r):
        return {v.layers[0]: v.numbers["activation_nbits"] for v in analyse(r).verdicts
                if v.judge == mod.LOW_ACTIVATION_BITS}

    degraded = analyse(report).degraded
    expected = {n: report.quant[n].activation_nbits for n in degraded
                if n in report.quant and report.quant[n].activation_nbits is not None
                and report.quant[n].activation_nbits < 8}
    assert low(report) == expected
    target = next(n for n in degraded if n not in expected and n in report.quant)
    report.quant[target] = dataclasses.replace(report.quant[target], activation_nbits=4)
    assert low(report) == dict(expected, **{target: 4})
    assert all(v.manual in manual.MANUAL_IDS for v in analyse(report).verdicts)
    # a report that does not supply quantization parameters never reaches the judge
    report.supplies = report.supplies - {QUANT_PARAMS}
    assert not [v for v in analyse(report).verdicts if v.judge == mod.LOW_ACTIVATION_BITS]
