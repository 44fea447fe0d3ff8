"""``tb-xquant`` command line: the same analysis as the XQuant tab, in a terminal.

    tb-xquant report PATH [--json] [--threshold METRIC=VALUE ...] [--under METRIC=0|1]
                          [--ratio R] [--z Z] [--concat C] [--bits B]
    tb-xquant manual [ID]
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import List, Optional

from tb_xquant_plugin import manual
from tb_xquant_plugin.api import views
from tb_xquant_plugin.judges.run import analyse
from tb_xquant_plugin.model.thresholds import KNOBS
from tb_xquant_plugin.producers import build_all
from tb_xquant_plugin.readers import files


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
    return out


def report_json(path: str, overrides: dict) -> List[dict]:
    """``tb-xquant report --json``: one ``api.contract.CliReport`` per report."""
    return [views.cli_report(analyse(r, r.defaults.with_overrides(overrides))) for r in build_all(path)]


def _fmt(v) -> str:
    return "%.4g" % v if isinstance(v, float) else str(v)


def print_text(reports: List[dict], out) -> None:
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
        for name in r["degraded_layers"]:
            print("     - %s" % name, file=out)
        for v in r["verdicts"]:
            print("   [%s/%s] %s" % (v["judge"], v["source"], v["message"]), file=out)
            print("       manual: tb-xquant manual %s" % v["manual"], file=out)
        print_concat(r, out)
        for p in r["problems"]:
            print("   ! %s\n     -> %s" % (p["what"], p["hint"]), file=out)


JOINS_SHOWN = 10


def print_concat(r: dict, out) -> None:
    """The measured joins (widest ratio first, at most JOINS_SHOWN) and the graph-vs-MCT comparison."""
    checks = r.get("concat_checks") or []
    ag = r.get("concat_agreement") or {}
    thr = ag.get("threshold", r["thresholds"].get("ratio_unbalanced_concatenation"))
    if checks:
        measured = sorted((c for c in checks if c["ratio"] is not None), key=lambda c: -c["ratio"])
        print("   joins: %d concatenation/add nodes, %d measured, %d at ratio >= %s" % (
            len(checks), len(measured), sum(1 for c in checks if c["flagged"]), _fmt(thr)), file=out)
        for c in measured[:JOINS_SHOWN]:
            print("     %s %-24s ratio %8.3f  (%s vs %s)%s" % (
                "!" if c["flagged"] else " ", c["node"], c["ratio"], c["wide_input"], c["scale_input"],
                "  scale %s by %.4g" % (c["scale_input"], c["scale"]) if c["flagged"] else ""), file=out)
        if len(measured) > JOINS_SHOWN:
            print("     ... %d more" % (len(measured) - JOINS_SHOWN), file=out)
        for c in checks:
            if c["ratio"] is None:
                print("       %-24s not measured: no range for %s" % (c["node"], ", ".join(c["unmeasured"])), file=out)
    items = ag.get("items") or []
    if items:
        print("   unbalanced concatenation, graph vs MCT 2.6.1 (%s):" % (ag.get("mct_source") or "MCT's judge unavailable"),
              file=out)
        for it in items:
            print("     [%s] %s" % (it["status"].replace("_", " "), it["reason"]), file=out)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="tb-xquant", description="MCT XQuant troubleshooting from the command line")
    sub = p.add_subparsers(dest="cmd", required=True)
    rp = sub.add_parser("report", help="analyse every XQuant report under PATH")
    rp.add_argument("path")
    rp.add_argument("--json", action="store_true", help="print JSON (api.contract.CliReport; docs/api.md)")
    rp.add_argument("--threshold", action="append", metavar="METRIC=VALUE", help="threshold_quantize_error override")
    rp.add_argument("--under", action="append", metavar="METRIC=0|1", help="is_detect_under_threshold override")
    rp.add_argument("--ratio", help="threshold_degrade_layer_ratio")
    rp.add_argument("--z", help="threshold_zscore_outlier_removal")
    rp.add_argument("--concat", help="threshold_ratio_unbalanced_concatenation")
    rp.add_argument("--bits", help="threshold_bitwidth_mixed_precision_with_model_output_loss_objective")
    mp = sub.add_parser("manual", help="show the troubleshooting manual (an entry by id)")
    mp.add_argument("id", nargs="?")
    args = p.parse_args(argv)
    if args.cmd == "manual":
        return manual.cli_main([args.id] if args.id else [])
    if not (files.is_remote(args.path) or files.is_dir(args.path) or files.exists(args.path)):
        print("tb-xquant: no such path: %s" % args.path, file=sys.stderr)
        return 2
    try:
        reports = report_json(args.path, _overrides(args))
    except ValueError as e:
        print("tb-xquant: %s" % e, file=sys.stderr)
        return 2
    if args.json:
        json.dump(views.safe(reports), sys.stdout, indent=2, allow_nan=False)
        sys.stdout.write("\n")
    else:
        print_text(reports, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
