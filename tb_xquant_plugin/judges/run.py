"""Run detection and every judge the report can feed, for one set of thresholds."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

from tb_xquant_plugin.judges import concat, registry
from tb_xquant_plugin.judges.base import CAUSE, GENERAL, JudgeContext
from tb_xquant_plugin.judges.detection import Detection, detect
from tb_xquant_plugin.model.report import Report
from tb_xquant_plugin.model.thresholds import Thresholds
from tb_xquant_plugin.model.verdict import Verdict


@dataclasses.dataclass
class Analysis:
    report: Report
    thresholds: Thresholds
    detection: Detection
    verdicts: List[Verdict]  # computed then the producer's own
    general: List[Verdict]
    # Every concatenation / add node with its measured input ranges (judges.concat.measure, plus "flagged"), and
    # where the graph and MCT 2.6.1's name heuristic agree on them (judges.concat.agreement).
    concat_checks: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    concat_agreement: Dict[str, Any] = dataclasses.field(default_factory=dict)
    # Serialized answers of the HTTP views of this analysis (view name -> JSON text), filled on
    # first use: an analysis never changes, so repeated requests are served from here.
    json_cache: Dict[str, str] = dataclasses.field(default_factory=dict, repr=False, compare=False)
    gzip_cache: Dict[str, bytes] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    @property
    def degraded(self) -> List[str]:
        return self.detection.degraded

    def judges_of(self) -> Dict[str, List[str]]:
        """layer or node name -> judges that name it."""
        out: Dict[str, List[str]] = {}
        for v in self.verdicts:
            for l in v.layers:
                js = out.setdefault(l, [])
                if v.judge not in js:
                    js.append(v.judge)
        return out


def analyse(report: Report, th: Optional[Thresholds] = None) -> Analysis:
    th = th or report.defaults
    det = detect(report, th)
    ctx = JudgeContext(report, th, det, producer_verdicts=list(report.producer_verdicts))
    computed: List[Verdict] = []
    general: List[Verdict] = []
    if report.layers:
        if not det.judges_skipped:
            for judge in registry.of_kind(CAUSE):
                if judge.applies_to(report):
                    computed += judge.run(ctx)
        ctx.verdicts = computed
        for judge in registry.of_kind(GENERAL):
            if judge.applies_to(report):
                general += judge.run(ctx)
    checks = concat.joins_json(report, th.ratio_unbalanced_concatenation)
    agreement = concat.agreement(report, concat.joins_of(report), det.degraded, th.ratio_unbalanced_concatenation,
                                 det.judges_skipped) if report.layers else {}
    return Analysis(report, th, det, computed + ctx.producer_verdicts, general, checks, agreement)
