"""The judge interface: every judge is a :class:`Judge` with the same ``run(context) -> verdicts``.

A judge declares what it needs from the report (``model.report.SUPPLIES``) and the toolchains it
applies to; ``judges.registry`` lists them all, ``judges.run`` runs the ones a report can feed."""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Callable, FrozenSet, List, Optional

from tb_xquant_plugin.judges.detection import Detection
from tb_xquant_plugin.judges.facts import ReportFacts, facts_of
from tb_xquant_plugin.model.report import Report
from tb_xquant_plugin.model.thresholds import Thresholds
from tb_xquant_plugin.model.verdict import Verdict

if TYPE_CHECKING:  # pragma: no cover
    from tb_xquant_plugin.judges.run import Analysis

CAUSE = "cause"  # names a cause of degraded layers; runs unless the degraded ratio skips the judges
GENERAL = "general"  # the general troubleshoots: runs after the cause judges, sees their verdicts
COMPARE = "compare"  # judges report B against report A (a countermeasure's before and after)


@dataclasses.dataclass
class JudgeContext:
    report: Report
    thresholds: Thresholds
    detection: Detection
    # Verdicts so far: the cause judges' and the producer's own (for GENERAL judges).
    verdicts: List[Verdict] = dataclasses.field(default_factory=list)
    producer_verdicts: List[Verdict] = dataclasses.field(default_factory=list)
    # COMPARE judges: the analysis of the report before the countermeasure (``report`` is the one after).
    baseline: Optional["Analysis"] = None

    @property
    def facts(self) -> ReportFacts:
        return facts_of(self.report)


@dataclasses.dataclass(frozen=True)
class Judge:
    name: str  # the verdicts' ``judge``
    kind: str  # CAUSE | GENERAL | COMPARE
    needs: FrozenSet[str]  # what the report must supply (model.report.SUPPLIES)
    run: Callable[[JudgeContext], List[Verdict]]
    toolchains: Optional[FrozenSet[str]] = None  # None: every toolchain
    doc: str = ""

    def applies_to(self, report: Report) -> bool:
        if self.toolchains is not None and report.toolchain not in self.toolchains:
            return False
        return self.needs <= report.supplies
