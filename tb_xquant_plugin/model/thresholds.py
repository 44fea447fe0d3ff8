"""XQuantConfig thresholds: MCT 2.6.1 defaults, manifest values and per-request overrides."""
from __future__ import annotations

import dataclasses
import math
from typing import Any, Dict, Mapping, Optional

MANIFEST_FILENAME = "tb_xquant_manifest.json"
MANIFEST_SCHEMA = 1

# Defaults of model_compression_toolkit.xquant.XQuantConfig in MCT 2.6.1.
DEFAULT_QUANTIZE_ERROR = {"mse": 0.1, "cs": 0.1, "sqnr": 0.1}
DEFAULT_DETECT_UNDER = {"mse": False, "cs": True, "sqnr": True}
DEFAULT_DEGRADE_LAYER_RATIO = 0.5
DEFAULT_ZSCORE_OUTLIER_REMOVAL = 5.0
DEFAULT_RATIO_UNBALANCED_CONCATENATION = 16.0
DEFAULT_BITWIDTH_MP_OUTPUT_LOSS = 2


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
    def from_manifest(cls, manifest: Optional[Mapping[str, Any]]) -> "Thresholds":
        """Thresholds recorded in a manifest, falling back to MCT's defaults field by field."""
        base = cls.defaults()
        cfg = (manifest or {}).get("xquant_config") if isinstance(manifest, Mapping) else None
        if not isinstance(cfg, Mapping):
            return base
        qe = dict(base.quantize_error)
        du = dict(base.detect_under)
        if isinstance(cfg.get("threshold_quantize_error"), Mapping):
            for k, v in cfg["threshold_quantize_error"].items():
                f = _as_float(v)
                if f is not None:
                    qe[str(k)] = f
        if isinstance(cfg.get("is_detect_under_threshold_quantize_error"), Mapping):
            for k, v in cfg["is_detect_under_threshold_quantize_error"].items():
                du[str(k)] = bool(v)

        def pick(key: str, default: float) -> float:
            f = _as_float(cfg.get(key))
            return default if f is None else f

        return cls(
            qe,
            du,
            pick("threshold_degrade_layer_ratio", base.degrade_layer_ratio),
            pick("threshold_zscore_outlier_removal", base.zscore_outlier_removal),
            pick("threshold_ratio_unbalanced_concatenation", base.ratio_unbalanced_concatenation),
            pick(
                "threshold_bitwidth_mixed_precision_with_model_output_loss_objective",
                base.bitwidth_mixed_precision_with_model_output_loss_objective,
            ),
        )

    def with_overrides(self, args: Mapping[str, str]) -> "Thresholds":
        """Apply query-style overrides: ``thr.<metric>``, ``under.<metric>``, ``ratio``, ``z``,
        ``concat``, ``bits``.  Raises ``ValueError`` with a readable message on bad values."""
        qe = dict(self.quantize_error)
        du = dict(self.detect_under)
        changes: Dict[str, float] = {}
        for key, raw in args.items():
            if key.startswith("thr."):
                metric = key[4:]
                if not metric:
                    raise ValueError("empty metric name in %r" % key)
                qe[metric] = _parse_float(key, raw)
            elif key.startswith("under."):
                metric = key[6:]
                if not metric:
                    raise ValueError("empty metric name in %r" % key)
                du[metric] = _parse_bool(key, raw)
            elif key in ("ratio", "z", "concat", "bits"):
                changes[key] = _parse_float(key, raw)
        return Thresholds(
            qe,
            du,
            changes.get("ratio", self.degrade_layer_ratio),
            changes.get("z", self.zscore_outlier_removal),
            changes.get("concat", self.ratio_unbalanced_concatenation),
            changes.get("bits", self.bitwidth_mixed_precision_with_model_output_loss_objective),
        )

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


def _as_float(v: Any) -> Optional[float]:
    if isinstance(v, bool) or v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _parse_float(key: str, raw: str) -> float:
    try:
        f = float(raw)
    except (TypeError, ValueError):
        raise ValueError("%s must be a number, got %r" % (key, raw)) from None
    if math.isnan(f):
        raise ValueError("%s must be a number, got NaN" % key)
    return f


def _parse_bool(key: str, raw: str) -> bool:
    low = str(raw).strip().lower()
    if low in ("1", "true", "yes", "under", "on"):
        return True
    if low in ("0", "false", "no", "above", "off"):
        return False
    raise ValueError("%s must be 1/0 (true/false), got %r" % (key, raw))
