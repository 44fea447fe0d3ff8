"""Verdicts: the judged cause of a degradation, the numbers that justify it, and what to do about it."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

# Judge names (MCT 2.6.1's keys in troubleshoot_report.json for the four it has).
OUTLIER_REMOVAL = "outlier_removal"
SHIFT_NEGATIVE_ACTIVATION = "shift_negative_activation"
UNBALANCED_CONCATENATION = "unbalanced_concatenation"
MIXED_PRECISION = "mixed_precision_with_model_output_loss_objective"
GENERAL = "general"

# Reasons of the general troubleshoots.
NO_DEGRADED_LAYERS = "no_degraded_layers"
DEGRADED_RATIO_OVER_LIMIT = "degraded_ratio_over_limit"
NO_JUDGE_APPLIES = "no_judge_applies"
COUNTERMEASURE_DID_NOT_IMPROVE = "countermeasure_did_not_improve"

COMPUTED = "computed"  # a verdict tb-xquant computed from the logs
PRODUCER = "mct"  # a verdict the producer wrote itself (MCT's troubleshoot_report.json)


@dataclasses.dataclass
class Verdict:
    judge: str
    source: str  # COMPUTED | PRODUCER
    layers: List[str]
    numbers: Dict[str, Any]
    manual: str
    message: str
    snippet: Optional[str] = None
    # what to change, as data (model.countermeasure): the snippet is rendered from it, the study applies it
    countermeasure: Optional[Dict[str, Any]] = None

    def to_json(self) -> Dict[str, Any]:
        # Shallow on purpose: dataclasses.asdict deep-copies every number, and views serialize at once.
        return {"judge": self.judge, "source": self.source, "layers": list(self.layers), "numbers": self.numbers,
                "manual": self.manual, "message": self.message, "snippet": self.snippet,
                "countermeasure": self.countermeasure}
