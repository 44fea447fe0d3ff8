"""XQuantConfig thresholds: MCT 2.6.1 defaults, manifest values and per-request overrides.

Every threshold that enters an analysis -- from a URL, the CLI, the panel's link or a manifest --
goes through :func:`check_value`: finite, in its range, bit widths whole numbers.  Nothing else
in the package validates thresholds."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, List, Mapping, Optional, Tuple

# Defaults of model_compression_toolkit.xquant.XQuantConfig in MCT 2.6.1.
DEFAULT_QUANTIZE_ERROR = {"mse": 0.1, "cs": 0.1, "sqnr": 0.1}
DEFAULT_DETECT_UNDER = {"mse": False, "cs": True, "sqnr": True}
DEFAULT_DEGRADE_LAYER_RATIO = 0.5
DEFAULT_ZSCORE_OUTLIER_REMOVAL = 5.0
DEFAULT_RATIO_UNBALANCED_CONCATENATION = 16.0
DEFAULT_BITWIDTH_MP_OUTPUT_LOSS = 2


@dataclasses.dataclass(frozen=True)
class Knob:
    """One scalar threshold: its query key, its XQuantConfig field, its Thresholds attribute and valid range."""

    key: str
    config_field: str
    attr: str
    low: float
    high: float
    low_open: bool = False
    integer: bool = False

    def describe(self) -> str:
        kind = "a whole number" if self.integer else "a number"
        return "%s %s %g and %g" % (kind, "between (excluding)" if self.low_open else "between", self.low, self.high)


# The scalar thresholds, listed once: query key, XQuantConfig field, Thresholds attribute, range.
KNOBS = (
    Knob("ratio", "threshold_degrade_layer_ratio", "degrade_layer_ratio", 0.0, 1.0),
    Knob("z", "threshold_zscore_outlier_removal", "zscore_outlier_removal", 0.0, 1000.0),
    Knob("concat", "threshold_ratio_unbalanced_concatenation", "ratio_unbalanced_concatenation", 1.0, 1e9),
    Knob("bits", "threshold_bitwidth_mixed_precision_with_model_output_loss_objective",
         "bitwidth_mixed_precision_with_model_output_loss_objective", 1, 32, integer=True),
)
KNOB_BY_KEY = {k.key: k for k in KNOBS}
METRIC_THRESHOLD_LIMIT = 1e300  # |threshold| of a metric: any finite value MCT could compare with
MAX_METRIC_NAME = 200
MAX_OVERRIDES = 256
QUERY_PREFIXES = ("thr.", "under.")


def is_threshold_key(key: str) -> bool:
    return key in KNOB_BY_KEY or key.startswith(QUERY_PREFIXES)


def _to_float(raw: Any) -> Optional[float]:
    if isinstance(raw, bool):
        return None
    if isinstance(raw, (int, float)):
        try:
            return float(raw)
        except OverflowError:  # a huge int
            return math.inf
    if isinstance(raw, str) and len(raw) <= 64:
        try:
            return float(raw.strip())
        except ValueError:
            return None
    return None


def check_value(knob: Knob, raw: Any) -> float:
    """The value of a scalar threshold, or ValueError saying what is accepted."""
    f = _to_float(raw)
    shown = raw if not isinstance(raw, str) or len(raw) <= 40 else raw[:40] + "..."
    if f is None or not math.isfinite(f):
        raise ValueError("%s must be %s, got %r" % (knob.key, knob.describe(), shown))
    if knob.integer and not f.is_integer():
        raise ValueError("%s must be %s, got %r" % (knob.key, knob.describe(), shown))
    if f < knob.low or f > knob.high or (knob.low_open and f == knob.low):
        raise ValueError("%s must be %s, got %r" % (knob.key, knob.describe(), shown))
    return float(int(f)) if knob.integer else f


def check_metric_threshold(key: str, raw: Any) -> float:
    f = _to_float(raw)
    if f is None or not math.isfinite(f) or abs(f) > METRIC_THRESHOLD_LIMIT:
        raise ValueError("%s must be a finite number, got %r" % (key, raw if not isinstance(raw, str) else raw[:40]))
    return f


def parse_bool(key: str, raw: Any) -> bool:
    """Strict: JSON booleans, 1/0, and the words true/false, yes/no, on/off, under/above."""
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    low = raw.strip().lower() if isinstance(raw, str) else None
    if low in ("1", "true", "yes", "under", "on"):
        return True
    if low in ("0", "false", "no", "above", "off"):
        return False
    raise ValueError("%s must be 1/0 (true/false), got %r" % (key, raw if not isinstance(raw, str) else raw[:40]))


def _metric_name(key: str, prefix: str) -> str:
    metric = key[len(prefix):]
    if not metric:
        raise ValueError("empty metric name in %r" % key)
    if len(metric) > MAX_METRIC_NAME:
        raise ValueError("metric name in %r... is longer than %d characters" % (key[:40], MAX_METRIC_NAME))
    return metric


@dataclasses.dataclass(frozen=True)
class Thresholds:
    """The judge settings of one analysis (the fields of MCT's XQuantConfig that matter here)."""

    quantize_error: Mapping[str, float]
    detect_under: Mapping[str, bool]
    degrade_layer_ratio: float = DEFAULT_DEGRADE_LAYER_RATIO
    zscore_outlier_removal: float = DEFAULT_ZSCORE_OUTLIER_REMOVAL
    ratio_unbalanced_concatenation: float = DEFAULT_RATIO_UNBALANCED_CONCATENATION
    bitwidth_mixed_precision_with_model_output_loss_objective: float = DEFAULT_BITWIDTH_MP_OUTPUT_LOSS

    @classmethod
    def defaults(cls) -> "Thresholds":
        return cls(dict(DEFAULT_QUANTIZE_ERROR), dict(DEFAULT_DETECT_UNDER))

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> Tuple["Thresholds", List[str]]:
        """Thresholds of a recorded XQuantConfig (the manifest's ``xquant_config``), falling back to MCT's
        defaults field by field; returns the thresholds and a message per value that was refused."""
        base = cls.defaults()
        refused: List[str] = []
        if not isinstance(cfg, Mapping):
            return base, refused
        qe, du = dict(base.quantize_error), dict(base.detect_under)
        for field, target, check in (
                ("threshold_quantize_error", qe, check_metric_threshold),
                ("is_detect_under_threshold_quantize_error", du, parse_bool)):
            values = cfg.get(field)
            if values is None:
                continue
            if not isinstance(values, Mapping):
                refused.append("%s is not an object" % field)
                continue
            for k, v in list(values.items())[:MAX_OVERRIDES]:
                try:
                    target[str(k)[:MAX_METRIC_NAME]] = check("%s.%s" % (field, k), v)
                except ValueError as e:
                    refused.append(str(e))
        scalars: Dict[str, float] = {}
        for knob in KNOBS:
            if cfg.get(knob.config_field) is None:
                continue
            try:
                scalars[knob.attr] = check_value(knob, cfg[knob.config_field])
            except ValueError as e:
                refused.append("%s (%s)" % (e, knob.config_field))
        return cls(qe, du, **scalars), refused

    def with_overrides(self, args: Mapping[str, Any]) -> "Thresholds":
        """Apply query-style overrides: ``thr.<metric>``, ``under.<metric>``, ``ratio``, ``z``, ``concat``,
        ``bits``.  Raises ``ValueError`` with a readable message on bad values."""
        if len(args) > MAX_OVERRIDES:
            raise ValueError("at most %d threshold parameters, got %d" % (MAX_OVERRIDES, len(args)))
        qe, du = dict(self.quantize_error), dict(self.detect_under)
        scalars: Dict[str, float] = {}
        for key, raw in args.items():
            if key.startswith("thr."):
                qe[_metric_name(key, "thr.")] = check_metric_threshold(key, raw)
            elif key.startswith("under."):
                du[_metric_name(key, "under.")] = parse_bool(key, raw)
            elif key in KNOB_BY_KEY:
                knob = KNOB_BY_KEY[key]
                scalars[knob.attr] = check_value(knob, raw)
        return dataclasses.replace(self, quantize_error=qe, detect_under=du, **scalars)

    def key(self) -> tuple:
        """Hashable identity, used as a cache key."""
        return (
            tuple(sorted(self.quantize_error.items())),
            tuple(sorted(self.detect_under.items())),
            self.degrade_layer_ratio,
            self.zscore_outlier_removal,
            self.ratio_unbalanced_concatenation,
            self.bitwidth_mixed_precision_with_model_output_loss_objective,
        )

    def to_json(self) -> Dict[str, Any]:
        return {
            "quantize_error": dict(self.quantize_error),
            "detect_under": dict(self.detect_under),
            "degrade_layer_ratio": self.degrade_layer_ratio,
            "zscore_outlier_removal": self.zscore_outlier_removal,
            "ratio_unbalanced_concatenation": self.ratio_unbalanced_concatenation,
            "bitwidth_mixed_precision_with_model_output_loss_objective": _int_if_whole(
                self.bitwidth_mixed_precision_with_model_output_loss_objective
            ),
        }


def _int_if_whole(v: float) -> Any:
    """Bit widths are counts: ``2`` rather than ``2.0`` when whole."""
    return int(v) if isinstance(v, float) and v.is_integer() else v
