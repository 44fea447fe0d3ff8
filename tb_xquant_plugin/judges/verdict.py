"""Verdicts: the judged cause of a degradation, its numbers, and the manual entry to read."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

from tb_xquant_plugin.manual import GENERAL_REASON_TO_MANUAL, JUDGE_TO_MANUAL

OUTLIER_REMOVAL = "outlier_removal"
SHIFT_NEGATIVE_ACTIVATION = "shift_negative_activation"
UNBALANCED_CONCATENATION = "unbalanced_concatenation"
MIXED_PRECISION = "mixed_precision_with_model_output_loss_objective"
GENERAL = "general"
JUDGES = (OUTLIER_REMOVAL, SHIFT_NEGATIVE_ACTIVATION, UNBALANCED_CONCATENATION, MIXED_PRECISION)

NO_DEGRADED_LAYERS = "no_degraded_layers"
DEGRADED_RATIO_OVER_LIMIT = "degraded_ratio_over_limit"
NO_JUDGE_APPLIES = "no_judge_applies"
COUNTERMEASURE_DID_NOT_IMPROVE = "countermeasure_did_not_improve"

# Manual entry ids come from the manual itself (one source of truth; a test checks each exists).
MANUAL_FOR_JUDGE = JUDGE_TO_MANUAL
MANUAL_FOR_REASON = GENERAL_REASON_TO_MANUAL


@dataclasses.dataclass
class Verdict:
    judge: str
    source: str  # "computed" | "mct"
    layers: List[str]
    numbers: Dict[str, Any]
    manual: str
    message: str
    snippet: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        # Shallow on purpose: dataclasses.asdict deep-copies every number, and views serialize at once.
        return {"judge": self.judge, "source": self.source, "layers": list(self.layers), "numbers": self.numbers,
                "manual": self.manual, "message": self.message, "snippet": self.snippet}


def general(reason: str, message: str, **numbers: Any) -> Verdict:
    return Verdict(GENERAL, "computed", [], dict(numbers, reason=reason), MANUAL_FOR_REASON[reason], message, None)


def core_config_snippet(**qc: Any) -> str:
    """A runnable MCT 2.6.1 snippet that re-quantizes with the given QuantizationConfig fields."""
    args = ", ".join("%s=%r" % (k, v) for k, v in qc.items())
    return (
        "import model_compression_toolkit as mct\n\n"
        "core_config = mct.core.CoreConfig(mct.core.QuantizationConfig(%s))\n"
        "quantized_model, quantization_info = mct.ptq.pytorch_post_training_quantization(\n"
        "    float_model, representative_data_gen, core_config=core_config)\n" % args
    )
