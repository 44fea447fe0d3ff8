"""Every judge, listed once, in the order their verdicts are shown."""
from __future__ import annotations

from typing import Tuple

from tb_xquant_plugin.judges import compare, concat, general, mixed_precision, outlier, shift_negative
from tb_xquant_plugin.judges.base import CAUSE, COMPARE, GENERAL, Judge

JUDGES: Tuple[Judge, ...] = (
    outlier.JUDGE,
    shift_negative.JUDGE,
    concat.JUDGE,
    mixed_precision.JUDGE,
    general.JUDGE,
    compare.JUDGE,
)


def of_kind(kind: str) -> Tuple[Judge, ...]:
    return tuple(j for j in JUDGES if j.kind == kind)


__all__ = ["JUDGES", "of_kind", "CAUSE", "GENERAL", "COMPARE"]
