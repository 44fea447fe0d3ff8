"""Threshold-independent facts the judges derive from a report, computed once per report.

Typed fields instead of string keys: each judge owns the fields it fills."""
from __future__ import annotations

import dataclasses
import threading
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Tuple

from tb_xquant_plugin.model.report import Report
from tb_xquant_plugin.model.verdict import Verdict

if TYPE_CHECKING:  # pragma: no cover
    from tb_xquant_plugin.judges.outlier import ZScoreHistogram

MAX_PER_THRESHOLD = 16  # results kept per report for distinct values of one threshold


@dataclasses.dataclass
class ReportFacts:
    zscores: Dict[str, Optional["ZScoreHistogram"]] = dataclasses.field(default_factory=dict)  # outlier
    # outlier: the replayed threshold selection per (layer, z_threshold) (bounded: MAX_PER_THRESHOLD)
    outlier_evidence: Dict[Tuple[str, float], Dict[str, Any]] = dataclasses.field(default_factory=dict)
    # activation_noise: the threshold-independent parts of each activation's replay (one per histogram)
    replays: Dict[str, Any] = dataclasses.field(default_factory=dict)
    detect_columns: Any = None  # detection: the metric values as columns (False: not plain numbers)
    mixed_precision: Optional[bool] = None  # mixed_precision.is_mixed_precision
    shift_negative: Optional[List[Verdict]] = None  # shift_negative
    joins: Optional[List[Dict[str, Any]]] = None  # concat.measure
    # concat results per ratio threshold (bounded: MAX_PER_THRESHOLD ratios, oldest dropped)
    concat_verdicts: Dict[float, List[Verdict]] = dataclasses.field(default_factory=dict)
    joins_json: Dict[float, List[Dict[str, Any]]] = dataclasses.field(default_factory=dict)
    display_joins: Optional[Tuple[Any, Any]] = None  # concat: branches and joins of the quantized graph
    # concat.agreement: where each pair of MCT module paths sits (join, relation), and its estimated ratio
    pair_places: Dict[Tuple[bool, str, str], Tuple[Optional[str], Optional[str]]] = dataclasses.field(default_factory=dict)
    pair_estimates: Dict[Tuple[str, str, str], Optional[float]] = dataclasses.field(default_factory=dict)
    join_index: Any = None  # concat.join_index of joins_of: by node, the widest, the flagged per ratio threshold
    module_scopes: Optional[List[str]] = None  # views.graph


_lock = threading.Lock()


def facts_of(report: Report) -> ReportFacts:
    if report.facts is None:
        with _lock:
            if report.facts is None:
                report.facts = ReportFacts()
    return report.facts


def bounded_put(cache: Dict[float, Any], key: float, value: Any) -> Any:
    """Store a per-threshold result, keeping at most MAX_PER_THRESHOLD of them."""
    while len(cache) >= MAX_PER_THRESHOLD:
        cache.pop(next(iter(cache)))
    cache[key] = value
    return value
