"""Troubleshooting manual for tb-xquant.

The manual is a set of Markdown files in ``entries/`` (shipped as package data).
Each file starts with a small front-matter header::

    ---
    id: outlier-removal
    title: Outlier removal
    kind: judgeable            # or general
    judge: outlier_removal     # judge it answers, or none
    ---

This module only needs the standard library plus ``markdown`` (a TensorBoard
dependency) for HTML rendering; it never imports torch or MCT, so the
TensorBoard backend and the ``tb-xquant manual`` command stay light.
"""

from __future__ import annotations

import functools
import html as _html
import re
import sys
from importlib import resources
from typing import Dict, List, Optional

__all__ = [
    "MANUAL_IDS",
    "JUDGE_TO_MANUAL",
    "GENERAL_REASON_TO_MANUAL",
    "REQUIRED_SECTIONS",
    "list_entries",
    "get_entry",
    "entry_text",
    "manual_for_judge",
    "manual_for_reason",
    "cli_main",
]

# Order in which entries are listed (judgeable first, then the general ones in
# the order the overview recommends trying them).  Files that exist but are
# not listed here are appended alphabetically.
MANUAL_IDS: List[str] = [
    "outlier-removal",
    "shift-negative-activation",
    "unbalanced-concatenation",
    "mixed-precision-model-output-loss",
    "general-troubleshooting",
    "representative-dataset-size",
    "representative-dataset-mismatch",
    "bias-correction",
    "network-editor-16bit",
    "mixed-precision-resource-target",
    "gptq",
    "torch-fx-errors",
    "other-tools-techniques",
]

# MCT XQuant judge name -> manual entry id.
JUDGE_TO_MANUAL: Dict[str, str] = {
    "outlier_removal": "outlier-removal",
    "shift_negative_activation": "shift-negative-activation",
    "unbalanced_concatenation": "unbalanced-concatenation",
    "mixed_precision_with_model_output_loss_objective": "mixed-precision-model-output-loss",
}

# Reason of a "general" verdict -> the entry that is the best first read.
GENERAL_REASON_TO_MANUAL: Dict[str, str] = {
    # Nothing is flagged per layer: the overview explains how to tighten the
    # detection thresholds and which global measures to try.
    "no_degraded_layers": "general-troubleshooting",
    # Most layers are degraded at once: almost always a data problem
    # (calibration data that does not look like the evaluation data).
    "degraded_ratio_over_limit": "representative-dataset-mismatch",
    # Degraded layers exist but no judge explains them: isolate the suspect
    # layer at 16 bits to prove (or rule out) that it is the culprit.
    "no_judge_applies": "network-editor-16bit",
    # The suggested fix did not help: the overview gives the order of the
    # stronger measures (data, bias correction, mixed precision, GPTQ).
    "countermeasure_did_not_improve": "general-troubleshooting",
}

REQUIRED_SECTIONS: List[str] = [
    "What you see in the XQuant tab",
    "Why quantization suffers",
    "How to confirm",
    "What to change",
    "What it costs",
    "If it does not help",
]

_HEADER_KEYS = ("id", "title", "kind", "judge")
_FENCE_RE = re.compile(r"^```[ \t]*python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


class ManualFormatError(ValueError):
    """An entry file does not follow the expected format."""


def _entries_dir():
    return resources.files(__name__).joinpath("entries")


def _parse(text: str, filename: str) -> dict:
    text = text.replace("\r\n", "\n").lstrip("\ufeff")
    if not text.startswith("---\n"):
        raise ManualFormatError(f"{filename}: missing front-matter header")
    end = text.find("\n---", 4)
    if end < 0:
        raise ManualFormatError(f"{filename}: unterminated front-matter header")
    header_text = text[4:end]
    rest = text[end + 4:]
    # drop the remainder of the closing '---' line
    nl = rest.find("\n")
    body = rest[nl + 1:] if nl >= 0 else ""

    header: Dict[str, str] = {}
    for raw in header_text.split("\n"):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if ":" not in line:
            raise ManualFormatError(f"{filename}: bad header line {raw!r}")
        key, value = line.split(":", 1)
        header[key.strip()] = value.strip().strip("'\"")
    for key in _HEADER_KEYS:
        if not header.get(key):
            raise ManualFormatError(f"{filename}: header field {key!r} is missing")
    if header["kind"] not in ("judgeable", "general"):
        raise ManualFormatError(f"{filename}: kind must be 'judgeable' or 'general'")
    judge = header["judge"]
    if judge.lower() in ("none", "null", "-"):
        judge = None
    return {
        "id": header["id"],
        "title": header["title"],
        "kind": header["kind"],
        "judge": judge,
        "markdown": body.strip("\n") + "\n",
    }


def _render_html(markdown_text: str) -> str:
    try:
        import markdown  # TensorBoard depends on it
    except ImportError:  # pragma: no cover - fallback keeps the panel usable
        return "<pre>" + _html.escape(markdown_text) + "</pre>"
    return markdown.markdown(markdown_text, extensions=["fenced_code", "tables"])


@functools.lru_cache(maxsize=1)
def _load_all() -> Dict[str, dict]:
    entries: Dict[str, dict] = {}
    folder = _entries_dir()
    for item in sorted(folder.iterdir(), key=lambda p: p.name):
        if not item.name.endswith(".md") or not item.is_file():
            continue
        entry = _parse(item.read_text(encoding="utf-8"), item.name)
        if entry["id"] in entries:
            raise ManualFormatError(f"{item.name}: duplicate id {entry['id']!r}")
        entries[entry["id"]] = entry
    return entries


def _ordered_ids() -> List[str]:
    entries = _load_all()
    ids = [i for i in MANUAL_IDS if i in entries]
    ids += sorted(i for i in entries if i not in MANUAL_IDS)
    return ids


def list_entries() -> List[dict]:
    """All entries as ``{"id", "title", "kind", "judge"}`` (judge is None for general ones)."""
    entries = _load_all()
    return [{k: entries[i][k] for k in _HEADER_KEYS} for i in _ordered_ids()]


def extract_snippets(markdown_text: str) -> List[str]:
    """The ``python`` fenced code blocks of a Markdown text, in order."""
    return [m.group(1) for m in _FENCE_RE.finditer(markdown_text)]


def sections(markdown_text: str) -> List[str]:
    """The level-2 (``## ``) headings of a Markdown text, in order."""
    out = []
    in_fence = False
    for line in markdown_text.split("\n"):
        if line.startswith("```"):
            in_fence = not in_fence
            continue
        if not in_fence and line.startswith("## "):
            out.append(line[3:].strip())
    return out


def get_entry(entry_id: str) -> Optional[dict]:
    """One entry with its Markdown body, rendered HTML and Python snippets; None if unknown."""
    entry = _load_all().get(entry_id)
    if entry is None:
        return None
    md = entry["markdown"]
    return {
        "id": entry["id"],
        "title": entry["title"],
        "kind": entry["kind"],
        "judge": entry["judge"],
        "markdown": md,
        "html": _render_html(md),
        "snippets": extract_snippets(md),
    }


def manual_for_judge(judge: str) -> Optional[str]:
    """Entry id for an XQuant judge name ('general' gives the overview)."""
    if judge == "general":
        return "general-troubleshooting"
    return JUDGE_TO_MANUAL.get(judge)


def manual_for_reason(reason: str) -> str:
    """Entry id for the reason of a general verdict (falls back to the overview)."""
    return GENERAL_REASON_TO_MANUAL.get(reason, "general-troubleshooting")


def entry_text(entry_id: str) -> str:
    """Plain text of an entry for a terminal; raises KeyError for an unknown id."""
    entry = _load_all().get(entry_id)
    if entry is None:
        raise KeyError(entry_id)
    title = entry["title"]
    lines = [title, "=" * len(title)]
    meta = f"id: {entry['id']}   kind: {entry['kind']}"
    if entry["judge"]:
        meta += f"   judge: {entry['judge']}"
    lines += [meta, ""]
    in_fence = False
    for line in entry["markdown"].rstrip("\n").split("\n"):
        if line.startswith("```"):
            in_fence = not in_fence
            lines.append("    " + "-" * 40)
            continue
        if in_fence:
            lines.append("    " + line)
        elif line.startswith("## "):
            heading = line[3:].strip()
            lines += [heading, "-" * len(heading)]
        elif line.startswith("### "):
            lines.append(line[4:].strip())
        else:
            lines.append(line)
    return "\n".join(lines).rstrip() + "\n"


def _listing() -> str:
    rows = list_entries()
    width = max(len(r["id"]) for r in rows) if rows else 0
    out = ["Troubleshooting manual entries (show one with: tb-xquant manual ID)", ""]
    for kind, label in (("judgeable", "Answers an XQuant judge"), ("general", "General advice")):
        group = [r for r in rows if r["kind"] == kind]
        if not group:
            continue
        out.append(label + ":")
        for r in group:
            suffix = f"  [{r['judge']}]" if r["judge"] else ""
            out.append(f"  {r['id'].ljust(width)}  {r['title']}{suffix}")
        out.append("")
    return "\n".join(out)


def cli_main(argv: List[str]) -> int:
    """``tb-xquant manual [ID]``: list the entries, or print one entry as text."""
    args = [a for a in argv if a]
    if args and args[0] in ("-h", "--help"):
        print("usage: tb-xquant manual [ID]\n\nWithout ID, list the entries; with ID, print that entry.")
        return 0
    if len(args) > 1:
        print("usage: tb-xquant manual [ID]", file=sys.stderr)
        return 2
    if not args:
        print(_listing())
        return 0
    entry_id = args[0]
    # Accept judge names too (e.g. 'outlier_removal').
    resolved = entry_id if entry_id in _load_all() else manual_for_judge(entry_id)
    if resolved is None or resolved not in _load_all():
        known = ", ".join(_ordered_ids())
        print(f"tb-xquant manual: unknown entry {entry_id!r}. Known entries: {known}", file=sys.stderr)
        return 2
    sys.stdout.write(entry_text(resolved))
    return 0
