"""Studies (``tb_xquant_plugin.mct_study``) as the API and the CLI show them: ``GET studies``, ``GET study`` and
``tb-xquant study``.

A study is a folder inside the logdir holding ``study.json`` (``model.study.FILENAME``) whose ``schema`` is
``model.study.SCHEMA``.  Study folders are found by the same bounded walk as report dirs
(``readers.files.report_dirs_with``: each real folder once, never through a symbolic link, never out of the logdir,
special files and links out of the logdir not counted); ``study.json`` is read with ``readers.files.read_json``
(regular files inside the logdir only, at most :data:`MAX_STUDY_BYTES`), then typed by ``model.study.parse``.

Each attempt's report folder is an ordinary XQuant report, listed by ``GET reports`` under its path relative to the
logdir: an attempt's ``report`` (relative to the study folder) is mapped to that report's id, and only when the
report is listed and lies inside the study folder (``../`` and absolute paths map to nothing)."""
from __future__ import annotations

import dataclasses
import hashlib
import posixpath
from typing import Any, Dict, List, Mapping, Optional

from tb_xquant_plugin.model import study as S
from tb_xquant_plugin.model.report import Problem, report_id
from tb_xquant_plugin.readers import files

MAX_STUDY_BYTES = 8 * 1024 * 1024  # a real study.json holds a few dozen attempts: tens of KB

NO_STUDY_HINT = ("A study is written by tb_xquant_plugin.mct_study.try_countermeasures(float_model, ..., "
                 "out_dir=<a folder inside the logdir>): the baseline and one attempt per countermeasure, with "
                 "study.json beside them.")


def study_id(rel: str) -> str:
    """Stable id of a study from its folder's path relative to the logdir (``r...`` are reports)."""
    return "s" + hashlib.sha1(rel.encode("utf-8", "surrogatepass")).hexdigest()[:12]


@dataclasses.dataclass
class StudyFile:
    """One ``study.json`` found: ``study`` is ``model.study.parse``'s answer, or None with ``problem`` saying why.
    ``foreign``: a readable JSON file of another schema (not a study: not listed)."""

    rel: str
    folder: str
    study: Optional[Dict[str, Any]] = None
    problem: Optional[Problem] = None
    foreign: bool = False

    @property
    def id(self) -> str:
        return study_id(self.rel)


def discover(logdir: str) -> Dict[str, str]:
    """``{study folder relative to the logdir: folder}`` of every folder holding a regular ``study.json``."""
    return files.report_dirs_with(logdir, S.FILENAME)


def label_of(rel: str) -> str:
    return "%s/%s" % (rel, S.FILENAME) if rel != "." else S.FILENAME


def read(logdir: str, rel: str, folder: str) -> StudyFile:
    """Read and type one study.json; never raises for what the file holds."""
    label = label_of(rel)
    sf = StudyFile(rel, folder)
    try:
        obj = files.read_json(files.join(folder, S.FILENAME), label, root=logdir, limit=MAX_STUDY_BYTES)
    except files.ReadError as e:
        sf.problem = Problem(e.what, e.hint)
        return sf
    if obj is None:
        sf.problem = Problem("%s is no longer there" % label, "Reload the list of studies.")
        return sf
    try:
        sf.study = S.parse(obj)
    except ValueError as e:
        sf.foreign = True
        sf.problem = Problem("%s is %s" % (label, e), "A study.json is written by tb_xquant_plugin.mct_study.")
    except Exception as e:  # noqa: BLE001 - a structure parse() does not expect: a problem, not a crash
        sf.problem = Problem("%s could not be read as a study (%s: %s)" % (label, type(e).__name__, str(e)[:200]),
                             "Re-run the study, or remove the file if it is not one.")
    return sf


def attempt_report_rel(study_rel: str, attempt: Mapping[str, Any]) -> Optional[str]:
    """The attempt's report folder relative to the logdir, when it lies inside the study folder."""
    rep = attempt.get("report")
    if not rep and attempt.get("dir"):
        rep = "%s/xquant_report" % attempt["dir"]
    if not isinstance(rep, str) or not rep or rep.startswith("/") or "\\" in rep or "://" in rep or "\x00" in rep:
        return None
    base = "" if study_rel == "." else study_rel
    joined = posixpath.normpath(posixpath.join(base, rep))
    if joined in (".", "..") or joined.startswith("../") or joined.startswith("/"):
        return None
    if base and not joined.startswith(base + "/"):
        return None
    return joined


def _text(v: Any, limit: int = 2000) -> Optional[str]:
    return v[:limit] if isinstance(v, str) and v else None


def _verdict(v: Any) -> Optional[Dict[str, Any]]:
    if not isinstance(v, dict):
        return None
    out: Dict[str, Any] = {}
    if "judge" in v:
        out["judge"] = _text(v["judge"], 200)
    if "layers" in v:
        out["layers"] = [x[:500] for x in v["layers"][:50] if isinstance(x, str)] if isinstance(v["layers"], list) else []
    if "message" in v:
        out["message"] = _text(v["message"], 4000)
    return out


def _attempt(study_rel: str, a: Mapping[str, Any], reports: Mapping[str, str]) -> Dict[str, Any]:
    rel = attempt_report_rel(study_rel, a)
    return {
        "id": a.get("id") or "?", "label": a.get("label") or "", "source": a.get("source") or "",
        "status": a.get("status") or "", "error": _text(a.get("error")),
        "dir": _text(a.get("dir"), 500), "report": _text(a.get("report"), 500),
        "report_id": reports.get(rel) if rel is not None else None,
        "parent": _text(a.get("parent"), 200),
        "countermeasure": a.get("countermeasure") if isinstance(a.get("countermeasure"), dict) else None,
        "verdict": _verdict(a.get("verdict")),
        "accuracy": a.get("accuracy"), "float_accuracy": a.get("float_accuracy"),
        "output_sqnr": a.get("output_sqnr"), "output_mse": a.get("output_mse"),
        "degraded_count": a.get("degraded_count"),
        "degraded": [d for d in a.get("degraded") or [] if isinstance(d, str)],
        "time_s": a.get("time_s"), "peak_rss_mb": a.get("peak_rss_mb"), "size_bytes": a.get("size_bytes"),
        "helped": a.get("helped") if isinstance(a.get("helped"), bool) else None,
    }


def baseline_of(attempts: List[Mapping[str, Any]]) -> Optional[Mapping[str, Any]]:
    """The baseline attempt: source ``baseline``, else the first without a countermeasure."""
    for a in attempts:
        if a.get("source") == "baseline":
            return a
    return next((a for a in attempts if a.get("countermeasure") is None and not a.get("parent")), None)


def study_ref(sf: StudyFile) -> Dict[str, Any]:
    """An ``api.contract.StudyRef``."""
    s = sf.study or {}
    return {"id": sf.id, "name": sf.rel, "model_name": s.get("model_name") or None, "status": s.get("status") or "",
            "attempts": len(s.get("attempts") or []), "best": s.get("best"),
            "problems": [sf.problem.to_json()] if sf.problem else []}


def study_view(sf: StudyFile, reports: Mapping[str, str]) -> Dict[str, Any]:
    """An ``api.contract.StudyResponse`` of a readable study; ``reports``: ``{report rel: report id}`` of the
    reports listed."""
    s = sf.study or {}
    rows = [_attempt(sf.rel, a, reports) for a in s.get("attempts") or []]
    base = baseline_of(rows)
    problems: List[Dict[str, str]] = []
    for r in rows:
        if r["report_id"] is None and r["status"] == S.OK:
            rel = attempt_report_rel(sf.rel, r)
            problems.append(Problem(
                "attempt %s: its report %s is not among the reports of this logdir" % (r["id"], rel or r["report"]),
                "The folder was moved, deleted or is still being written; reload. A report outside the study "
                "folder is not used.").to_json())
    return {
        "id": sf.id, "name": sf.rel, "model_name": s.get("model_name") or None,
        "toolchain": _text(s.get("toolchain")), "created": _text(s.get("created")), "status": s.get("status") or "",
        "stopped_by": _text(s.get("stopped_by")), "elapsed_s": s.get("elapsed_s"),
        "baseline": base["id"] if base else None, "best": s.get("best"), "attempts": rows,
        "winning_countermeasure": s.get("winning_countermeasure"), "winning_snippet": _text(s.get("winning_snippet"), 20000),
        "general_path": list(s.get("general_path") or []),
        "float_model_untouched": s.get("float_model_untouched"),
        "problems": problems,
    }


def reports_by_rel(report_rels) -> Dict[str, str]:
    """``{report rel: report id}`` for the reports listed (``GET reports``' names)."""
    return {rel: report_id(rel) for rel in report_rels}


def attempt_report_rels(sf: StudyFile) -> List[str]:
    """The report folders a study's attempts name (inside the study folder), relative to the logdir."""
    out = []
    for a in (sf.study or {}).get("attempts") or []:
        rel = attempt_report_rel(sf.rel, a)
        if rel is not None and a.get("status") == S.OK:
            out.append(rel)
    return out
