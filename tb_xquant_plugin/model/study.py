"""A study (``tb_xquant_plugin.mct_study``): the baseline and the attempts that each applied one countermeasure,
as ``study.json`` in the study folder holds them.  This module gives the schema and reads a parsed JSON object
into what the API, the CLI and the panel show; it does no I/O."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional

SCHEMA = "tb-xquant-study/1"
FILENAME = "study.json"
RUNNING, OK, FAILED, DONE = "running", "ok", "failed", "done"
MAX_ATTEMPTS_READ = 500  # attempts kept from one study.json (a study writes a few dozen)

# What an attempt row carries to the API / CLI (the rest of a study.json attempt is left out).
ATTEMPT_FIELDS = ("id", "dir", "report", "parent", "label", "source", "status", "error", "countermeasure",
                  "accuracy", "float_accuracy", "output_sqnr", "output_mse", "degraded_count", "degraded",
                  "time_s", "peak_rss_mb", "size_bytes", "helped", "verdict")


def _num(v: Any) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _str(v: Any, limit: int = 2000) -> Optional[str]:
    return v[:limit] if isinstance(v, str) else None


def attempt_row(a: Mapping[str, Any]) -> Dict[str, Any]:
    """One attempt with every field typed (numbers finite or None, strings bounded)."""
    degraded = a.get("degraded") if isinstance(a.get("degraded"), list) else []
    cm = a.get("countermeasure")
    v = a.get("verdict")
    return {
        "id": _str(a.get("id"), 200) or "?", "dir": _str(a.get("dir"), 500), "report": _str(a.get("report"), 500),
        "parent": _str(a.get("parent"), 200), "label": _str(a.get("label"), 500) or "", "source":
            _str(a.get("source"), 40) or "", "status": _str(a.get("status"), 20) or "", "error": _str(a.get("error")),
        "countermeasure": cm if isinstance(cm, dict) else None,
        "accuracy": _num(a.get("accuracy")), "float_accuracy": _num(a.get("float_accuracy")),
        "output_sqnr": _num(a.get("output_sqnr")), "output_mse": _num(a.get("output_mse")),
        "degraded_count": int(a["degraded_count"]) if isinstance(a.get("degraded_count"), int)
        and not isinstance(a.get("degraded_count"), bool) else None,
        "degraded": [d[:500] for d in degraded[:200] if isinstance(d, str)],
        "time_s": _num(a.get("time_s")), "peak_rss_mb": _num(a.get("peak_rss_mb")), "size_bytes": _num(a.get("size_bytes")),
        "helped": a.get("helped") if isinstance(a.get("helped"), bool) else None,
        "verdict": {k: v.get(k) for k in ("judge", "layers", "message") if k in v} if isinstance(v, dict) else None,
    }


def parse(obj: Any) -> Dict[str, Any]:
    """A study.json object as the API shows it; ValueError when it is not one."""
    if not isinstance(obj, dict) or obj.get("schema") != SCHEMA:
        raise ValueError("not a tb-xquant study (schema %r expected)" % SCHEMA)
    attempts = obj.get("attempts") if isinstance(obj.get("attempts"), list) else []
    rows = [attempt_row(a) for a in attempts[:MAX_ATTEMPTS_READ] if isinstance(a, dict)]
    ids = {r["id"] for r in rows}
    best = obj.get("best") if isinstance(obj.get("best"), str) and obj.get("best") in ids else None
    return {
        "model_name": _str(obj.get("model_name"), 500) or "", "toolchain": _str(obj.get("toolchain"), 100),
        "created": _str(obj.get("created"), 100), "status": _str(obj.get("status"), 20) or "",
        "stopped_by": _str(obj.get("stopped_by"), 200), "elapsed_s": _num(obj.get("elapsed_s")),
        "attempts": rows, "best": best,
        "winning_countermeasure": obj.get("winning_countermeasure")
        if isinstance(obj.get("winning_countermeasure"), dict) else None,
        "winning_snippet": _str(obj.get("winning_snippet"), 20000),
        "general_path": [s[:200] for s in obj.get("general_path", []) if isinstance(s, str)][:20]
        if isinstance(obj.get("general_path"), list) else [],
        "float_model_untouched": obj.get("float_model_untouched")
        if isinstance(obj.get("float_model_untouched"), bool) else None,
    }


def best_attempt(attempts: List[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """Among the attempts that helped, the one with the highest accuracy (else model-output SQNR), then the fewest
    degraded layers; the baseline when none helped (None when even the baseline failed)."""
    ok = [a for a in attempts if a.get("status") == OK]
    helped = [a for a in ok if a.get("helped") is True]
    if not helped:
        return next((a for a in ok if a.get("countermeasure") is None), None)

    def key(a: Mapping[str, Any]):
        acc = _num(a.get("accuracy"))
        sq = _num(a.get("output_sqnr"))
        return (acc if acc is not None else -math.inf, sq if sq is not None else -math.inf,
                -(a.get("degraded_count") or 0))

    return max(helped, key=key)
