"""``tb-xquant`` command line: the same analysis as the XQuant tab, in a terminal, a CI job or a pull request.

    tb-xquant report PATH [--format text|json|md] [--json] [--out FILE] [--fail-on COND ...]
                          [--threshold METRIC=VALUE ...] [--under METRIC=0|1]
                          [--ratio R] [--z Z] [--concat C] [--bits B]
    tb-xquant export model-explorer PATH --out DIR [threshold options]
    tb-xquant study PATH [--json]
    tb-xquant manual [ID]

Exit codes (docs/cli.md): 0 passed, 2 bad usage, 3 a --fail-on condition held, 4 nothing to judge (no report,
a report without per-layer metrics, or a run that did not finish; for ``study``: no study, or a study.json that cannot
be read)."""
from __future__ import annotations

import argparse
import io
import json
import os
import re
import sys
import unicodedata
from typing import Callable, List, Optional, Tuple

from tb_xquant_plugin import manual
from tb_xquant_plugin.api import studies as study_api
from tb_xquant_plugin.api import views
from tb_xquant_plugin.export import gates, markdown, model_explorer
from tb_xquant_plugin.judges.run import Analysis, analyse
from tb_xquant_plugin.model import study as study_model
from tb_xquant_plugin.model.report import Report
from tb_xquant_plugin.model.thresholds import KNOBS, Thresholds
from tb_xquant_plugin.producers import discover
from tb_xquant_plugin.readers import files
from tb_xquant_plugin.readers.events import LocalEventSource


def _overrides(args) -> dict:
    out = {}
    for item in args.threshold or []:
        if "=" not in item:
            raise ValueError("--threshold takes METRIC=VALUE, got %r" % item)
        k, v = item.split("=", 1)
        out["thr." + k.strip()] = v
    for item in args.under or []:
        if "=" not in item:
            raise ValueError("--under takes METRIC=0|1, got %r" % item)
        k, v = item.split("=", 1)
        out["under." + k.strip()] = v
    for knob in KNOBS:
        if getattr(args, knob.key) is not None:
            out[knob.key] = getattr(args, knob.key)
    Thresholds.defaults().with_overrides(out)  # every value checked (ValueError: exit 2) before any report is read
    return out


def load(path: str, overrides: dict, progress=None) -> Tuple[List[Report], List[Analysis], List[str]]:
    """Every report under ``path`` and its analysis, and the runs that could not be judged: reports whose analysis
    failed, and runs that left no finished report (``gates.incomplete_runs``).  ``progress(i, n, name)`` is
    called before each report is read."""
    source = LocalEventSource(path)
    runs = source.runs()
    found = sorted(discover(path, runs).items())
    reports: List[Report] = []
    analyses: List[Analysis] = []
    failed: List[str] = []
    for i, (rel, (d, producer)) in enumerate(found):
        if progress:
            progress(i + 1, len(found), rel)
        r = producer.build(source, path, rel, d, runs)
        reports.append(r)
        th = r.defaults.with_overrides(overrides)  # a bad override is a usage error (ValueError), not a crash
        try:
            analyses.append(analyse(r, th))
        except Exception as e:  # noqa: BLE001 - one report's failure must not hide the others, nor pass a gate
            failed.append("%s: the analysis failed (%s: %s)" % (rel, type(e).__name__, str(e)[:300]))
    return reports, analyses, failed + gates.incomplete_runs(runs, reports)


def report_json(path: str, overrides: dict) -> List[dict]:
    """``tb-xquant report --json``: one ``api.contract.CliReport`` per report."""
    return [views.cli_report(a) for a in load(path, overrides)[1]]


def _fmt(v) -> str:
    return "%.4g" % v if isinstance(v, float) else str(v)


DEGRADED_SHOWN = 10  # degraded layers listed by name; the rest counted
FIRST_LAYERS = 3  # layers named on a grouped cause line


def print_text(reports: List[dict], out) -> None:
    """The text report: per report its degraded layers, one line per cause (computed and MCT's verdicts merged
    when they agree, shift negative grouped by activation type), the joins and the problems."""
    if not reports:
        print("No XQuant report found. Run xquant_report_troubleshoot_pytorch_experimental with "
              "XQuantConfig(report_dir=...) under this folder.", file=out)
    for r in reports:
        print("== %s%s" % (r["name"], " (%s)" % r["model_name"] if r["model_name"] else ""), file=out)
        acc = r.get("accuracy") or {}
        if acc:
            print("   accuracy: float %s, quantized %s" % (_fmt(acc.get("float")), _fmt(acc.get("quantized"))), file=out)
        print("   degraded: %d of %d layers (%.0f%%)%s" % (
            len(r["degraded_layers"]), r["layer_count"], 100 * r["degraded_ratio"],
            " - judges skipped" if r["judges_skipped"] else ""), file=out)
        bits = _degraded_bits(r["verdicts"])
        for name in r["degraded_layers"][:DEGRADED_SHOWN]:
            print("     - %s%s" % (name, bits.get(name, "")), file=out)
        if len(r["degraded_layers"]) > DEGRADED_SHOWN:
            print("     ... %d more" % (len(r["degraded_layers"]) - DEGRADED_SHOWN), file=out)
        for line in cause_lines(r["verdicts"]):
            print("   " + line, file=out)
        print_concat(r, out)
        for (what, hint), n in _counted((p["what"], p["hint"]) for p in r["problems"]):
            print("   ! %s%s\n     -> %s" % (what, " (x%d)" % n if n > 1 else "", hint), file=out)


def _counted(items) -> List[Tuple[object, int]]:
    """Identical items once, in first-seen order, with how often they occurred."""
    seen: dict = {}
    for it in items:
        seen[it] = seen.get(it, 0) + 1
    return list(seen.items())


def _names(layers: List[str], shown: int = FIRST_LAYERS) -> str:
    return ", ".join(layers[:shown]) + (", ..." if len(layers) > shown else "")


def _degraded_bits(verdicts: List[dict]) -> dict:
    """layer -> " (W4 A8)" from the verdicts of a mixed-precision run (numbers.degraded_bits)."""
    out = {}
    for v in verdicts:
        for layer, b in ((v.get("numbers") or {}).get("degraded_bits") or {}).items():
            if isinstance(b, dict):
                w, a = b.get("weights"), b.get("activation")
                out[layer] = " (W%s%s)" % (w if w is not None else "?", " A%s" % a if a is not None else "")
    return out


def _manual(v: dict) -> str:
    return "  -> tb-xquant manual %s" % v["manual"] if v.get("manual") else ""


def cause_lines(verdicts: List[dict]) -> List[str]:
    """One line per cause.  A computed verdict and MCT's on the same layers of the same judge make one line
    ("MCT agrees"); shift-negative verdicts are grouped by activation type and advice; identical lines once."""
    sn = "shift_negative_activation"
    computed = [v for v in verdicts if v["source"] != "mct"]
    mct = [v for v in verdicts if v["source"] == "mct"]
    used = set()
    lines: List[str] = []
    lines += _shift_negative_lines([v for v in computed if v["judge"] == sn], [v for v in mct if v["judge"] == sn],
                                   used)
    for v in computed:
        if v["judge"] == sn:
            continue
        agree = next((k for k, w in enumerate(mct) if k not in used and w["judge"] == v["judge"]
                      and set(w["layers"]) == set(v["layers"])), None)
        if agree is not None:
            used.add(agree)
        tag = v["judge"] if v["judge"] != "general" else "general"
        lines.append("[%s] %s%s%s" % (tag, v["message"], " (MCT agrees)" if agree is not None else "", _manual(v)))
    for k, w in enumerate(mct):
        if k not in used and w["judge"] != sn:
            lines.append("[%s/mct] %s%s" % (w["judge"], w["message"], _manual(w)))
    return ["%s (x%d)" % (line, n) if n > 1 else line for line, n in _counted(lines)]


def _sn_kind(n: dict) -> Tuple[str, str]:
    """(group key, what to do) of one shift-negative verdict, without its layer-specific numbers."""
    advice = n.get("advice")
    unsure = (" (to be measured: replayed on their histograms, the clip of their largest values outweighs the finer "
              "step)" if n.get("uncertain") else "")
    if advice == "turn_on":
        need, in_force = n.get("needed_ratio"), n.get("shift_negative_ratio") or 0.05
        if isinstance(need, (int, float)) and need > in_force + 1e-12:
            return ("turn_on_raise" + ("?" if unsure else ""), "shift-negative correction was off (or not in the "
                    "logs), and |min| / threshold is over shift_negative_ratio: turn "
                    "shift_negative_activation_correction on, with shift_negative_ratio raised on them alone%s" % unsure)
        return ("turn_on" + ("?" if unsure else ""), "shift-negative correction was off (or not in the logs): turn "
                "shift_negative_activation_correction on%s" % unsure)
    if advice == "raise_ratio":
        return ("raise_ratio" + ("?" if unsure else ""), "the correction was on but MCT did not shift them "
                "(|min| / threshold over shift_negative_ratio): raise shift_negative_ratio on them alone%s" % unsure)
    if advice == "not_the_cause":
        return ("not_the_cause", "replayed on their histograms, a shift would not help the layer after them (under "
                                 "5 % of its input error, or more noise): not the cause")
    if advice == "nothing_left" and n.get("shifted"):
        return ("shifted", "MCT shifted them (the correction is in force): nothing left for this cause")
    if isinstance(n.get("needed_ratio"), (int, float)) and n["needed_ratio"] > 0.5 and advice == "nothing_left" \
            and not n.get("shifted") and n.get("corrects"):
        return ("too_negative", "their negative part is too large a share of their range for a shift "
                                "(|min| / threshold over 0.5): nothing left for this cause")
    if n.get("crash_pair"):
        return ("crash", "they would need a larger shift_negative_ratio, at which MCT 2.6.1 stops with \"not a "
                         "valid linear chain\" (%s before padded convolutions): nothing left for this cause"
                % " and ".join(n["crash_pair"]))
    if n.get("in_mct_list") is False:
        return ("not_covered", "MCT's correction does not cover this activation: nothing left for this cause")
    if n.get("corrects") is None and not n.get("shifted"):
        return ("no_target", "MCT cannot shift them (their output does not go to a single Conv2d / Linear): "
                             "nothing left for this cause")
    return ("nothing", "nothing left for this cause in MCT's settings")


def _shift_negative_lines(computed: List[dict], mct: List[dict], used: set) -> List[str]:
    groups: dict = {}
    for v in computed:
        n = v.get("numbers") or {}
        key, text = _sn_kind(n)
        g = groups.setdefault((n.get("activation") or "?", key), {"text": text, "layers": [], "ratio": None, "v": v})
        g["layers"] += v["layers"]
        need = n.get("needed_ratio")
        if key.rstrip("?") in ("raise_ratio", "turn_on_raise", "crash") and isinstance(need, (int, float)):
            g["ratio"] = max(need, g["ratio"] or need)
    listed = [l for w in mct for l in w["layers"]]
    lines = []
    for (act, key), g in groups.items():
        ratio = (" (up to %g)" % g["ratio"] if key.rstrip("?") in ("raise_ratio", "turn_on_raise")
                 and g["ratio"] is not None else "")
        both = [l for l in g["layers"] if l in listed]
        # MCT's verdict lists the activation and says to check the correction: it agrees with a fix, not with "not
        # the cause"
        agree = (" (MCT lists them)" if key == "not_the_cause" and len(both) == len(g["layers"]) else
                 " (MCT agrees)" if len(both) == len(g["layers"]) else
                 " (MCT lists %d of them)" % len(both) if both else "")
        lines.append("[shift_negative_activation] %s x%d (%s): %s%s%s%s" % (
            act, len(g["layers"]), _names(g["layers"]), g["text"], ratio, agree, _manual(g["v"])))
    mine = {l for g in groups.values() for l in g["layers"]}
    rest = [l for l in listed if l not in mine]
    for k, w in enumerate(mct):
        used.add(k) if any(l in mine for l in w["layers"]) or w["layers"] else None
    if rest:
        lines.append("[shift_negative_activation/mct] MCT lists %d activation%s with negative outputs (%s)%s" % (
            len(rest), "" if len(rest) == 1 else "s", _names(rest), _manual(mct[0]) if mct else ""))
    return lines


JOINS_SHOWN = 10


def _input_label(c: dict, name: Optional[str]) -> str:
    """An input of a join by the module producing it (``relu_27 (layer2.0.conv2)``) when it is not one itself."""
    for i in c.get("inputs") or []:
        if i.get("name") == name:
            mod = i.get("module")
            return "%s (%s)" % (name, mod) if mod and mod != name else str(name)
    return str(name)


def print_concat(r: dict, out) -> None:
    """The measured joins (widest ratio first, at most JOINS_SHOWN rows; joins whose rows read the same are one
    row), the joins not measured (one line) and the graph-vs-MCT comparison."""
    checks = r.get("concat_checks") or []
    ag = r.get("concat_agreement") or {}
    thr = ag.get("threshold", r["thresholds"].get("ratio_unbalanced_concatenation"))
    if checks:
        measured = sorted((c for c in checks if c["ratio"] is not None), key=lambda c: -c["ratio"])
        print("   joins: %d concatenation/add nodes, %d measured, %d at ratio >= %s" % (
            len(checks), len(measured), sum(1 for c in checks if c["flagged"]), _fmt(thr)), file=out)
        rows: dict = {}
        for c in measured:
            row = "ratio %8.3f  (%s vs %s)%s" % (
                c["ratio"], _input_label(c, c["wide_input"]), _input_label(c, c["scale_input"]),
                "  scale %s by %.4g" % (c["scale_input"], c["scale"]) if c["flagged"] else "")
            rows.setdefault((c["flagged"], row), []).append(c["node"])
        for k, ((flag, row), nodes) in enumerate(rows.items()):
            if k == JOINS_SHOWN:
                print("     ... %d more" % (len(rows) - JOINS_SHOWN), file=out)
                break
            print("     %s %-24s %s" % ("!" if flag else " ", _names(nodes, 2) + (" (x%d)" % len(nodes)
                                                                               if len(nodes) > 1 else ""), row),
                  file=out)
        missing = [c for c in checks if c["ratio"] is None]
        if missing:
            print("     %d not measured (no range for an input): %s" % (
                len(missing), _names(["%s (%s)" % (c["node"], ", ".join(c["unmeasured"][:2])) for c in missing])),
                file=out)
    items = ag.get("items") or []
    if items:
        print("   unbalanced concatenation, graph vs MCT 2.6.1 (%s):" % (ag.get("mct_source") or "MCT's judge unavailable"),
              file=out)
        for (status, reason), n in _counted((it["status"], it["reason"]) for it in items):
            print("     [%s] %s%s" % (status.replace("_", " "), reason, " (x%d)" % n if n > 1 else ""), file=out)


def _progress(stream) -> Optional[Callable[[int, int, str], None]]:
    """Per-report lines on a terminal (reading a large report's events takes seconds); silent in pipes and CI logs."""
    if not getattr(stream, "isatty", lambda: False)():
        return None

    def show(i: int, n: int, name: str) -> None:
        print("tb-xquant: reading report %d of %d: %s" % (i, n, name), file=stream, flush=True)
    return show


def _threshold_options(sp) -> None:
    sp.add_argument("--threshold", action="append", metavar="METRIC=VALUE", help="threshold_quantize_error override")
    sp.add_argument("--under", action="append", metavar="METRIC=0|1", help="is_detect_under_threshold override")
    sp.add_argument("--ratio", help="threshold_degrade_layer_ratio")
    sp.add_argument("--z", help="threshold_zscore_outlier_removal")
    sp.add_argument("--concat", help="threshold_ratio_unbalanced_concatenation")
    sp.add_argument("--bits", help="threshold_bitwidth_mixed_precision_with_model_output_loss_objective")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="tb-xquant", description="MCT XQuant troubleshooting from the command line",
                                epilog="exit codes: 0 passed, 2 bad usage, 3 a --fail-on condition held, 4 nothing "
                                       "to judge (no report, a report without per-layer metrics, an unfinished run)")
    sub = p.add_subparsers(dest="cmd", required=True)
    rp = sub.add_parser("report", help="analyse every XQuant report under PATH",
                        description="Analyse every XQuant report under PATH; --fail-on turns it into a CI gate.")
    rp.add_argument("path")
    rp.add_argument("--format", choices=("text", "json", "md"), default=None,
                    help="text (default), json (a list of api.contract.CliReport; docs/api.md) or md (Markdown)")
    rp.add_argument("--json", action="store_true", help="same as --format json")
    rp.add_argument("--out", metavar="FILE", help="write the report to FILE instead of standard output")
    rp.add_argument("--fail-on", action="append", metavar="COND", default=[],
                    help="exit 3 when COND holds for a report: degraded, verdict, problem, judge:<name>, "
                         "accuracy-drop=<points> (repeat or comma-separate)")
    _threshold_options(rp)
    ep = sub.add_parser("export", help="write a report for another tool")
    esub = ep.add_subparsers(dest="target", required=True)
    me = esub.add_parser("model-explorer", help="Model Explorer JSON graph + node-data overlays",
                         description="Write the quantized graph in Model Explorer's JSON graph format (module scopes "
                                     "as namespaces) and one node-data overlay per metric and dataset.")
    me.add_argument("path", help="a report dir or a logdir (one output folder per report when it holds several)")
    me.add_argument("--out", required=True, metavar="DIR")
    _threshold_options(me)
    sp = sub.add_parser("study", help="show the attempts of a study (tb_xquant_plugin.mct_study) under PATH",
                        description="Show each attempt of a study: its countermeasure, status, accuracy, model-output "
                                    "SQNR, degraded layers, time and size, the best one and the winning snippet.")
    sp.add_argument("path", help="a study folder (holding study.json) or a logdir holding studies")
    sp.add_argument("--json", action="store_true", help="a list of api.contract.StudyResponse (GET study; docs/api.md)")
    mp = sub.add_parser("manual", help="show the troubleshooting manual (an entry by id)")
    mp.add_argument("id", nargs="?")
    return p


def _err(msg: str) -> None:
    print("tb-xquant: %s" % msg, file=sys.stderr)


def _slug(rel: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_.-]+", "_", rel.replace("/", "__")).strip("._") or "report"
    return s[:150]


def _emit(text: str, out: Optional[str]) -> None:
    if out:
        files.write_text(out, text)
    else:
        sys.stdout.write(text)


def _tolerant_output() -> None:
    """Names from the logdir may hold anything, a lone surrogate included ("\\ud800", which no encoding can
    write): print it escaped rather than die with UnicodeEncodeError half-way through the text."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            try:
                reconfigure(errors="backslashreplace")
            except (ValueError, OSError):  # a stream that cannot change its error handler now
                pass


def main(argv: Optional[List[str]] = None) -> int:
    _tolerant_output()
    args = parser().parse_args(argv)
    if args.cmd == "manual":
        return manual.cli_main([args.id] if args.id else [])
    if not (files.is_remote(args.path) or files.is_dir(args.path) or files.exists(args.path)):
        _err("no such path: %s" % args.path)
        return gates.EXIT_USAGE
    if args.cmd == "study":
        return study_main(args.path, args.json)
    try:
        conditions = gates.parse_conditions(getattr(args, "fail_on", []) or [])
        overrides = _overrides(args)
        reports, analyses, unfinished = load(args.path, overrides, _progress(sys.stderr))
    except ValueError as e:
        _err(str(e))
        return gates.EXIT_USAGE
    if args.cmd == "export":
        return export_model_explorer(analyses, unfinished, args.out)
    clis = [views.cli_report(a) for a in analyses]
    fmt = "json" if args.json else (args.format or "text")
    if args.json and args.format not in (None, "json"):
        _err("--json and --format %s disagree" % args.format)
        return gates.EXIT_USAGE
    try:
        if fmt == "json":
            _emit(json.dumps(views.safe(clis), indent=2, allow_nan=False) + "\n", args.out)
        elif fmt == "md":
            _emit(markdown.render(analyses, unfinished=unfinished), args.out)
        else:
            buf = io.StringIO()
            print_text(clis, buf)
            for note in unfinished:
                print("!! %s" % note, file=buf)
            _emit(buf.getvalue(), args.out)
    except OSError as e:
        _err("cannot write %s: %s" % (args.out, e))
        return gates.EXIT_USAGE
    return judge_gates(clis, unfinished, conditions)


def judge_gates(clis: List[dict], unfinished: List[str], conditions: List[gates.Condition]) -> int:
    """Say on standard error what blocked the analysis and which condition failed for which report; the exit code."""
    code = gates.EXIT_OK
    if not clis:
        _err("no XQuant report found (exit 4)")
        code = gates.EXIT_UNREADABLE
    for note in unfinished:
        _err("cannot judge: %s" % note)
        code = gates.EXIT_UNREADABLE
    for r in clis:
        why = gates.blocking(r)
        if why:
            _err("cannot judge %s: %s" % (r["name"], why))
            code = gates.EXIT_UNREADABLE
    failed = 0
    for cond in conditions:
        for r in clis:
            why = gates.evaluate(cond, r)
            if why:
                failed += 1
                _err("FAILED --fail-on %s: %s: %s" % (cond.text, r["name"], why))
    if conditions:
        if failed and code == gates.EXIT_OK:
            code = gates.EXIT_GATE
        if not failed and code == gates.EXIT_OK:
            _err("passed --fail-on %s (%d report%s)" % (", ".join(c.text for c in conditions), len(clis),
                                                          "" if len(clis) == 1 else "s"))
    if code != gates.EXIT_OK:
        _err("exit %d: %s" % (code, {gates.EXIT_GATE: "a --fail-on condition held",
                                     gates.EXIT_UNREADABLE: "not every run could be judged"}[code]))
    return code


def export_model_explorer(analyses: List[Analysis], unfinished: List[str], out: str) -> int:
    if not analyses:
        _err("no XQuant report found: nothing to export")
        return gates.EXIT_UNREADABLE
    code = gates.EXIT_OK
    for a in analyses:
        if not a.report.nodes:
            _err("%s has no graph to export (%s)" % (a.report.rel, gates.blocking(views.cli_report(a)) or
                                                      "no XQuant graph in its xquant/ events"))
            code = gates.EXIT_UNREADABLE
            continue
        folder = out if len(analyses) == 1 else files.join(out, _slug(a.report.rel))
        try:
            written = model_explorer.export(a, folder)
        except OSError as e:
            _err("cannot write %s: %s" % (folder, e))
            return gates.EXIT_USAGE
        print("%s -> %s" % (a.report.rel, folder))
        for path in written:
            print("  %s" % path)
        print("  view: model-explorer %s --node_data_paths %s" % (written[0], ",".join(written[1:])))
    for note in unfinished:
        _err("cannot judge: %s" % note)
    return code


# --------------------------------------------------------------------------------------------------
# tb-xquant study
# --------------------------------------------------------------------------------------------------
def load_studies(path: str) -> Tuple[List[dict], List[str]]:
    """(one ``api.contract.StudyResponse`` per readable study under ``path``, what could not be read).  ``path`` is
    a study folder, its study.json, or a logdir; report ids are those of ``tb-xquant report PATH``."""
    logdir = _study_root(path)
    found = [study_api.read(logdir, rel, d) for rel, d in sorted(study_api.discover(logdir).items())]
    found = [sf for sf in found if not sf.foreign]
    unreadable = [sf.problem.what for sf in found if sf.study is None and sf.problem]
    readable = [sf for sf in found if sf.study is not None]
    reports: dict = {}
    if readable:
        source = LocalEventSource(logdir)
        reports = study_api.reports_by_rel(discover(logdir, source.runs()))
    return [study_api.study_view(sf, reports) for sf in readable], unreadable


def _study_root(path: str) -> str:
    """The folder a ``tb-xquant study`` PATH names (the study folder when PATH is its study.json)."""
    if not files.is_remote(path) and os.path.basename(os.path.normpath(path)) == study_model.FILENAME \
            and not files.is_dir(path):
        return os.path.dirname(os.path.abspath(path))
    return path


def _plain(text, limit: Optional[int] = None, newlines: bool = False) -> str:
    """A model-derived string for a terminal: control characters (escape sequences included) shown escaped."""
    text = "" if text is None else str(text)
    if limit is not None and len(text) > limit:
        text = text[: limit - 1] + "…"
    keep = "\n\t" if newlines else ""
    return "".join(c if c in keep or unicodedata.category(c) not in ("Cc", "Cf", "Zl", "Zp") or c == "\u200d"
                   else c.encode("unicode_escape").decode("ascii") for c in text)


def _size(b) -> str:
    if not isinstance(b, (int, float)):
        return "-"
    for unit, div in (("MB", 1024.0 ** 2), ("KB", 1024.0)):
        if b >= div:
            return "%.1f %s" % (b / div, unit)
    return "%d B" % b


def _num_or_dash(v, pattern: str = "%.4g") -> str:
    return pattern % v if isinstance(v, (int, float)) and not isinstance(v, bool) else "-"


LABEL_WIDTH = 44
ID_WIDTH = 36


def print_study(s: dict, out, where: Optional[str] = None) -> None:
    """One study: a line per attempt (best ``*``, helped ``+``), failed attempts' errors, the winning snippet."""
    n = len(s["attempts"])
    print("== %s%s: %s, %d attempt%s (baseline included)%s" % (
        _plain(s["name"] if s["name"] != "." else os.path.basename(os.path.abspath(where or "."))), " (%s)" % _plain(s["model_name"], 200) if s["model_name"] else "", _plain(s["status"]) or "?",
        n, "" if n == 1 else "s", ", stopped by %s" % _plain(s["stopped_by"]) if s["stopped_by"] else ""), file=out)
    head = ("", "attempt", "countermeasure", "source", "status", "accuracy", "output SQNR", "degraded", "time", "size")
    rows = []
    for a in s["attempts"]:
        mark = ("*" if a["id"] == s["best"] else " ") + ("+" if a["helped"] else " ")
        rows.append((mark, _plain(a["id"], ID_WIDTH), _plain(a["label"], LABEL_WIDTH), _plain(a["source"], 12),
                     _plain(a["status"], 10), _num_or_dash(a["accuracy"]), _num_or_dash(a["output_sqnr"]),
                     _num_or_dash(a["degraded_count"], "%d"), _num_or_dash(a["time_s"], "%.1f s"),
                     _size(a["size_bytes"])))
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    right = {5, 6, 7, 8, 9}
    fmt_row = lambda r: "  ".join(c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths)))
    print("   " + fmt_row(head).rstrip(), file=out)
    for a, r in zip(s["attempts"], rows):
        print("   " + fmt_row(r).rstrip(), file=out)
        if a["status"] == study_model.FAILED or a["error"]:
            first = (a["error"] or "failed").strip().splitlines()
            print("   %s   ! %s" % (" " * widths[0], _plain(first[0] if first else "failed", 300)), file=out)
    print("   (* best, + helped: fewer degraded layers or a better output SQNR / accuracy than the baseline)", file=out)
    best = next((a for a in s["attempts"] if a["id"] == s["best"]), None)
    if s["winning_snippet"]:
        print("   winning configuration%s" % (": %s (%s)" % (_plain(best["label"]), _plain(best["id"])) if best else ":"),
              file=out)
        print(_plain(s["winning_snippet"], newlines=True).rstrip("\n"), file=out)
    elif best is not None and best["helped"]:
        print("   best: %s (%s) helped; it has no snippet to paste" % (_plain(best["label"]), _plain(best["id"])),
              file=out)
    elif s["status"] == study_model.RUNNING:
        print("   still running: no winning configuration yet", file=out)
    else:
        print("   no attempt helped: no winning configuration%s" % (
            " (general troubleshoots tried: %s)" % _plain(", ".join(s["general_path"]), 400) if s["general_path"] else ""),
            file=out)
    for p in s["problems"]:
        print("   ! %s\n     -> %s" % (_plain(p["what"], 500), _plain(p["hint"], 500)), file=out)


def study_main(path: str, as_json: bool) -> int:
    """``tb-xquant study PATH [--json]``: exit 0, 4 when no study was found or one could not be read."""
    shown, unreadable = load_studies(path)
    if as_json:
        sys.stdout.write(json.dumps(views.safe(shown), indent=2, allow_nan=False) + "\n")
    else:
        buf = io.StringIO()
        for k, s in enumerate(shown):
            if k:
                print("", file=buf)
            print_study(s, buf, _study_root(path))
        sys.stdout.write(buf.getvalue())
    for what in unreadable:
        _err("cannot read %s" % _plain(what, 500))
    if not shown and not unreadable:
        _err("no tb-xquant study under %s (a folder holding study.json with schema %s); %s (exit %d)" % (
            path, study_model.SCHEMA, study_api.NO_STUDY_HINT, gates.EXIT_UNREADABLE))
        return gates.EXIT_UNREADABLE
    if unreadable:
        _err("exit %d: not every study could be read" % gates.EXIT_UNREADABLE)
        return gates.EXIT_UNREADABLE
    return gates.EXIT_OK


if __name__ == "__main__":
    sys.exit(main())
