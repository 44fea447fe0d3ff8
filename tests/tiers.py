"""Test tiers and the "no silent skip" rule, for any test module: ``from tiers import skip_or_fail``.

Import these from here, not ``from conftest import ...``: tests/ and tests/browser/ both have a ``conftest.py``, and
pytest leaves whichever it imported last as the module ``conftest``, so such an import can get the wrong one.

scripts/test.sh (so CI, .ci/run) sets TB_XQUANT_REQUIRE_ALL=1: a test that would be skipped because MCT, torch or
another tool of the [mct,test] extras is missing fails instead, so a broken setup cannot pass as a green run
(tests/browser/conftest.py does the same for a missing chromium).  A run whose ``-m`` leaves a tier out
(``-m "not mct and not browser"``) does not require that tier's modules.
"""
from __future__ import annotations

import importlib.util
import os

import pytest

REQUIRE_ALL = os.environ.get("TB_XQUANT_REQUIRE_ALL") == "1"
REQUIRED_MODULES = ("model_compression_toolkit", "torch", "torchvision", "sklearn", "playwright")
# the modules each marker's tests need
TIER_MODULES = {"mct": ("model_compression_toolkit", "torch", "torchvision", "sklearn"), "browser": ("playwright",)}
_deselected_tiers: set = set()


def skip_or_fail(reason: str):
    """``pytest.skip(reason)``, or a failure under ``TB_XQUANT_REQUIRE_ALL=1``."""
    if REQUIRE_ALL:
        pytest.fail("%s [TB_XQUANT_REQUIRE_ALL=1: a missing tool fails instead of skipping]" % reason, pytrace=False)
    pytest.skip(reason)


def configure(config) -> None:
    """Note which tiers the ``-m`` expression leaves out (called from conftest's pytest_configure)."""
    _deselected_tiers.clear()
    expr = config.getoption("markexpr", "") or ""
    if not expr:
        return
    try:
        from _pytest.mark.expression import Expression

        compiled = Expression.compile(expr)
        for tier in TIER_MODULES:
            if not compiled.evaluate(lambda name, tier=tier, **kw: name == tier):
                _deselected_tiers.add(tier)
    except Exception:  # noqa: BLE001 - an unparsable or future expression: require everything
        _deselected_tiers.clear()


def missing_modules() -> list:
    """Required modules of the selected tiers that cannot be imported."""
    skipped = {m for tier in _deselected_tiers for m in TIER_MODULES[tier]}
    return [m for m in REQUIRED_MODULES if m not in skipped and importlib.util.find_spec(m) is None]


def skip_to_failure(rep) -> None:
    """Under TB_XQUANT_REQUIRE_ALL=1 with a required module missing, no skip passes silently: this turns the
    ``pytest.importorskip`` of every test module (at collection or in a test) into a failure."""
    if not (REQUIRE_ALL and rep.skipped):
        return
    missing = missing_modules()
    if missing:
        rep.outcome = "failed"
        rep.longrepr = "skipped (%s) while %s cannot be imported, and TB_XQUANT_REQUIRE_ALL=1" % (
            rep.longrepr[-1] if isinstance(rep.longrepr, tuple) else rep.longrepr, ", ".join(missing))
