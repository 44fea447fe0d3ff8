"""Run detection and every judge on a report for a set of thresholds."""
from __future__ import annotations

import dataclasses
from typing import Any, Callable, Dict, List, Optional

from tb_xquant_plugin.judges import concat, mct_verdicts, mixed_precision, outlier, shift_negative
from tb_xquant_plugin.judges import verdict as V
from tb_xquant_plugin.judges.detection import Detection, detect
from tb_xquant_plugin.model.report import Report
from tb_xquant_plugin.model.thresholds import Thresholds


@dataclasses.dataclass
class Analysis:
    report: Report
    thresholds: Thresholds
    detection: Detection
    verdicts: List[V.Verdict]  # computed then MCT's
    general: List[V.Verdict]
    # Every concatenation / add node with its measured input ranges (judges.concat.measure, plus "flagged"), and
    # where the graph and MCT 2.6.1's name heuristic agree on them (judges.concat.agreement).
    concat_checks: List[Dict[str, Any]] = dataclasses.field(default_factory=list)
    concat_agreement: Dict[str, Any] = dataclasses.field(default_factory=dict)
    # Serialized answers of the HTTP views of this analysis (view name -> JSON text), filled on
    # first use: an analysis never changes, so repeated requests are served from here.
    json_cache: Dict[str, str] = dataclasses.field(default_factory=dict, repr=False, compare=False)

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


def per_report(report: Report, key: str, compute: Callable[[], Any]) -> Any:
    """A result that does not depend on the thresholds (or only on one named in ``key``), computed once per report."""
    if key not in report.memo:
        report.memo[key] = compute()
    return report.memo[key]


def analyse(report: Report, th: Optional[Thresholds] = None) -> Analysis:
    th = th or report.defaults
    det = detect(report, th)
    computed: List[V.Verdict] = []
    general: List[V.Verdict] = []
    mct = per_report(report, "mct_verdicts", lambda: mct_verdicts.load(report) if report.mct_troubleshoot else [])
    checks = per_report(report, "concat_checks", lambda: concat.measure(report))
    concat_thr = th.ratio_unbalanced_concatenation
    if not report.layers:
        pass
    elif det.judges_skipped:
        general.append(V.general(
            V.DEGRADED_RATIO_OVER_LIMIT,
            "%d of %d layers (%.0f%%) are degraded, at or over threshold_degrade_layer_ratio=%g: the problem is not "
            "one layer, so the judges are skipped. Check the representative dataset and its preprocessing first."
            % (len(det.degraded), len(report.layers), 100 * det.ratio, th.degrade_layer_ratio),
            ratio=det.ratio, limit=th.degrade_layer_ratio, degraded=len(det.degraded), layers=len(report.layers)))
    else:
        computed += outlier.judge(report, det.degraded, th.zscore_outlier_removal)
        computed += per_report(report, "shift_negative", lambda: shift_negative.judge(report))
        # depends on the ratio threshold only: computed once per report and ratio
        computed += per_report(report, "concat_judge@%r" % concat_thr, lambda: concat.judge(report, concat_thr, checks))
        computed += mixed_precision.judge(report, th.bitwidth_mixed_precision_with_model_output_loss_objective,
                                          per_report(report, "last_layer", lambda: mixed_precision.last_layer_bits(report)))
        if not det.degraded:
            general.append(V.general(
                V.NO_DEGRADED_LAYERS,
                "No layer crosses the quantization-error thresholds. If accuracy still dropped, look at the data "
                "(representative set size, diversity, preprocessing) and the general countermeasures.",
                layers=len(report.layers)))
        elif not computed and not mct:
            general.append(V.general(
                V.NO_JUDGE_APPLIES,
                "%d layers are degraded but none of the judges found a cause. Try the general countermeasures: "
                "isolate a layer at 16 bits, bias correction, mixed precision or GPTQ." % len(det.degraded),
                degraded=len(det.degraded)))
    agreement = concat.agreement(report, checks, det.degraded, concat_thr, det.judges_skipped) if report.layers else {}
    checks_json = per_report(report, "concat_checks_json@%r" % concat_thr, lambda: concat.checks_json(checks, concat_thr))
    return Analysis(report, th, det, computed + mct, general, checks_json, agreement)
