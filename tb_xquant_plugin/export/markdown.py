"""``tb-xquant report --format md``: the analysis as Markdown for a pull request or a wiki page.

Per report: the degraded-layer count, accuracy, output metrics, one table of every layer's metrics on both
datasets (values past their threshold in bold with a warning sign), bit widths where known, every verdict with
its fix (the snippet in a fenced ``python`` block), and the report's problems.

Every string that comes from the model or its files (layer and metric names, messages that quote them, problem
texts) goes through :func:`text`, which escapes what Markdown renderers (CommonMark / GitHub and
Python-Markdown) would read as markup: a name can never open a tag, a link, emphasis, a code span, a new table
cell or a new line.  Snippets go into a fence longer than any backtick run inside them."""
from __future__ import annotations

import math
import re
from typing import Any, Dict, List, Optional, Sequence

from tb_xquant_plugin.api import views
from tb_xquant_plugin.export.gates import accuracy_drop, actionable
from tb_xquant_plugin.judges.run import Analysis
from tb_xquant_plugin.model import manifest as mf
from tb_xquant_plugin.model.report import DATASETS

WARN = "\u26a0"  # marks a value past its threshold
NONE = "\u2014"  # an unknown value
MAX_CELL = 300  # characters of a model-derived string shown in a table cell
MAX_TEXT = 2000  # characters of a message or problem shown

# Backslash escapes that CommonMark and Python-Markdown (with its tables extension) both honour: what opens inline
# markup anywhere in a line (``(``, ``)`` and ``!`` only act after ``[`` or ``]``, which are escaped).
_BACKSLASHED = set("\\`*_{}[]|")
# What is markup only at the start of a line (a heading, a list item, a thematic break, an ordered list item).
_LINE_START = re.compile(r"^(?:[#+-]|\d{1,9}(?=[.)]))")
# Characters escaped as entities: HTML, and what only some renderers treat as markup (GitHub's ~strike~, $math$).
_ENTITIES = {"&": "&amp;", "<": "&lt;", ">": "&gt;", "~": "&#126;", "$": "&#36;"}
# Line breaks (a new line would end a table row or a paragraph) and control characters (Python-Markdown uses
# STX/ETX as its own placeholders) never reach the output.
_BREAKS = re.compile("\r\n|[\r\n\x0b\x0c\x85\u2028\u2029]")
_CONTROLS = re.compile("[\x00-\x08\x0e-\x1f\x7f]")
_SURROGATES = re.compile("[\ud800-\udfff]")


def _clean(s: str) -> str:
    s = _BREAKS.sub(" ", s)
    s = _CONTROLS.sub("\ufffd", s)
    return _SURROGATES.sub("\ufffd", s)


def text(value: Any, limit: int = MAX_TEXT) -> str:
    """A model-derived string as inert Markdown text (one line, no markup)."""
    s = _clean(str(value)).strip()  # leading spaces would make an indented code block
    if len(s) > limit:
        s = s[:limit] + "\u2026"
    out = []
    m = _LINE_START.match(s)
    if m:  # escape the marker (or the dot / parenthesis after the number)
        k = m.end()
        if s[0].isdigit():
            out.append(s[:k] + "\\" + s[k])
            k += 1
        else:
            out.append("\\" + s[0])
            k = 1
        s = s[k:]
    for ch in s:
        if ch in _BACKSLASHED:
            out.append("\\" + ch)
        elif ch in _ENTITIES:
            out.append(_ENTITIES[ch])
        elif ch == "\t":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def fence_for(code: str) -> str:
    """A backtick fence longer than the longest run of backticks in ``code`` (at least three)."""
    longest = max((len(m) for m in re.findall(r"`+", code)), default=0)
    return "`" * max(3, longest + 1)


def code_block(code: str, lang: str = "python") -> List[str]:
    code = _CONTROLS.sub("\ufffd", _SURROGATES.sub("\ufffd", code.replace("\r\n", "\n").replace("\r", "\n")))
    fence = fence_for(code)
    return [fence + lang] + code.rstrip("\n").split("\n") + [fence]


def num(v: Any) -> str:
    if v is None:
        return NONE
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, (int, float)):
        f = float(v)
        if math.isnan(f):
            return "NaN"
        if math.isinf(f):
            return "\u221e" if f > 0 else "\u2212\u221e"
        return "%.4g" % f if isinstance(v, float) else str(v)
    return text(v, 40)


def row(cells: Sequence[str]) -> str:
    return "| " + " | ".join(c if c else " " for c in cells) + " |"


def table(header: Sequence[str], rows: Sequence[Sequence[str]], align: Optional[Sequence[str]] = None) -> List[str]:
    align = align or ["---"] * len(header)
    return [row(header), row(align)] + [row(r) for r in rows]


# MCT 2.6.1's activation quantization modes other than QUANT: the node's own output is not quantized at its bits.
ACTIVATION_MODES = {"FLN_QUANT": "fused", "FLN_NO_QUANT": "fused", "NO_QUANT": "float", "PRESERVE_QUANT": "preserved"}


def layer_bits(a: Analysis) -> Dict[str, Dict[str, Any]]:
    """layer -> ``{"w": weights bits, "a": activation bits}`` where the manifest, the stage graph or MCT's log say
    (None when unknown).  An activation MCT fuses into the next op or leaves in float is named instead of given
    the 32 bits its config carries."""
    r = a.report
    final = mf.layer_bits(r.manifest)
    out: Dict[str, Dict[str, Any]] = {}
    for l in r.layers:
        qp = r.quant.get(l.name)
        rec = final.get(l.name, {})
        w = qp.weights_nbits if qp and qp.weights_nbits is not None else rec.get("weights_nbits")
        act: Any = rec.get("activation_nbits")
        if act is None and qp is not None:
            act = ACTIVATION_MODES.get(qp.quant_mode or "", qp.activation_nbits)
        out[l.name] = {"w": w, "a": act}
    return out


def _threshold_text(metric: str, th: Dict[str, Any]) -> str:
    thr = th["quantize_error"].get(metric)
    if thr is None:
        return "no threshold"
    return "%s %s" % ("\u2264" if th["detect_under"].get(metric) else "\u2265", num(thr))


def report_lines(a: Analysis, heading: str = "##") -> List[str]:
    s = views.cli_report(a)
    lay = views.layers(a)
    th = s["thresholds"]
    metrics: List[str] = list(lay["metrics"])
    lines: List[str] = []
    title = text(s["name"], MAX_CELL)
    if s["model_name"]:
        title += " (%s)" % text(s["model_name"], MAX_CELL)
    lines += ["%s %s" % (heading, title), ""]
    deg = s["degraded_layers"]
    summary = "**%d of %d layers degraded** (%.1f%%)" % (len(deg), s["layer_count"], 100 * (s["degraded_ratio"] or 0))
    if s["judges_skipped"]:
        summary += "; at or over threshold\\_degrade\\_layer\\_ratio %s, so the judges were skipped" % num(
            th["degrade_layer_ratio"])
    n_act = sum(1 for v in s["verdicts"] if actionable(v))
    summary += "; %d actionable verdict%s." % (n_act, "" if n_act == 1 else "s")
    lines += [summary, ""]

    acc = s["accuracy"] or {}
    if acc.get("float") is not None or acc.get("quantized") is not None:
        drop = accuracy_drop(acc)
        lines += ["%s# Accuracy" % heading, ""]
        lines += table(["float", "quantized", "drop (points)"],
                       [[num(acc.get("float")), num(acc.get("quantized")), num(drop)]])
        lines.append("")

    om = s["output_metrics"] or {}
    if any(om.get(ds) for ds in DATASETS):
        lines += ["%s# Output metrics" % heading, ""]
        names = list(dict.fromkeys(m for ds in DATASETS for m in (om.get(ds) or {})))
        lines += table(["metric"] + list(DATASETS), [[text(m, MAX_CELL)] + [num((om.get(ds) or {}).get(m))
                                                                         for ds in DATASETS] for m in names])
        lines.append("")

    if lay["layers"]:
        bits = layer_bits(a)
        lines += ["%s# Layers" % heading, ""]
        lines.append("Thresholds: " + ", ".join("%s %s" % (text(m, MAX_CELL), _threshold_text(m, th))
                                               for m in metrics) + ". Values past their threshold are **bold** " + WARN
                     + "; MCT counts a layer as degraded when any of them is.")
        lines.append("")
        header = ["#", "layer", "op", "W bits", "A bits"]
        header += ["%s (%s)" % (text(m, MAX_CELL), ds) for ds in DATASETS for m in metrics]
        header.append("degraded")
        rows = []
        for l in lay["layers"]:
            cells = [str(l["index"]), text(l["name"], MAX_CELL), text(l["op"], 60) if l["op"] else NONE,
                     num(bits[l["name"]]["w"]), num(bits[l["name"]]["a"])]
            for ds in DATASETS:
                for m in metrics:
                    v = l[ds].get(m)
                    c = num(v)
                    if l["flags"].get("%s.%s" % (m, ds)):
                        c = "**%s** %s" % (c, WARN)
                    cells.append(c)
            cells.append("yes" if l["degraded"] else "")
            rows.append(cells)
        lines += table(header, rows, ["--:", "---", "---", "--:", "--:"] + ["--:"] * (len(header) - 6) + [":-:"])
        lines.append("")

    lines += ["%s# Verdicts" % heading, ""]
    if not s["verdicts"]:
        lines += ["No verdict.", ""]
    for i, v in enumerate(s["verdicts"], 1):
        who = "%s, %s" % (text(v["judge"], 100), "MCT's own" if v["source"] == "mct" else "computed")
        on = ""
        if v["layers"]:
            on = " on " + ", ".join(text(l, MAX_CELL) for l in v["layers"][:10])
            if len(v["layers"]) > 10:
                on += ", \u2026 (%d more)" % (len(v["layers"]) - 10)
        lines += ["**%d. %s**%s" % (i, who, on), "", text(v["message"]), ""]
        if v["snippet"]:
            lines += ["Fix (MCT 2.6.1):", ""] + code_block(v["snippet"]) + [""]
        if v["manual"] and re.fullmatch(r"[A-Za-z0-9_-]+", v["manual"]):
            lines += ["Manual: `tb-xquant manual %s`" % v["manual"], ""]

    if s["problems"]:
        lines += ["%s# Problems" % heading, ""]
        for p in s["problems"]:
            lines.append("- %s \u2014 %s" % (text(p["what"]), text(p["hint"])))
        lines.append("")
    return lines


def render(analyses: Sequence[Analysis], title: str = "XQuant report", unfinished: Sequence[str] = ()) -> str:
    """The Markdown document for every analysed report; ``unfinished`` lists runs that left no report
    (``gates.incomplete_runs``)."""
    lines = ["# %s" % text(title, MAX_CELL), ""]
    if not analyses:
        lines += ["No XQuant report found.", ""]
    for a in analyses:
        lines += report_lines(a)
    if unfinished:
        lines += ["## Runs without a finished report", ""] + ["- %s" % text(n) for n in unfinished] + [""]
    return "\n".join(lines).rstrip("\n") + "\n"
