"""The API contract (tb_xquant_plugin/api/contract.py) is the one definition of every answer: the generated
TypeScript and docs tables match it, and every route's real answer conforms to it (extra or missing fields fail)."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tb_xquant_plugin.api import contract

REPO = Path(__file__).resolve().parents[1]


def test_committed_typescript_is_generated_from_the_contract():
    committed = (REPO / "frontend/src/api_types.ts").read_text(encoding="utf-8")
    assert committed == contract.typescript(), (
        "frontend/src/api_types.ts differs from the contract: run scripts/gen_contract.sh")


def test_docs_field_tables_are_generated_from_the_contract():
    doc = (REPO / "docs/api.md").read_text(encoding="utf-8")
    assert contract.MD_BEGIN in doc and contract.splice_markdown(doc) == doc, (
        "docs/api.md's answer shapes differ from the contract: run scripts/gen_contract.sh")


def test_check_catches_drift():
    ok = {"what": "x", "hint": "y"}
    assert contract.check(ok, contract.Problem) == []
    assert contract.check({"what": "x"}, contract.Problem)  # missing field
    assert contract.check(dict(ok, extra=1), contract.Problem)  # a field the contract does not list
    assert contract.check({"what": 1, "hint": "y"}, contract.Problem)  # wrong type
    assert contract.check({"x": 1}, contract.Manifest) == []  # the manifest is open
    assert contract.check("NaN", contract.Num) == [] and contract.check("nan", contract.Num)


def conforms(body, tp, where):
    errors = contract.check(body, tp)
    assert not errors, "%s: %s" % (where, "\n".join(errors[:20]))


def check_every_route(api, thresholds=()):
    reports = api.json("reports")
    conforms(reports, contract.ReportsResponse, "reports")
    assert reports["reports"], "no report in the logdir"
    for ref in reports["reports"]:
        rid = ref["id"]
        for params in ({},) + tuple(thresholds):
            for route in ("report", "graph", "layers", "verdicts"):
                conforms(api.json(route, report=rid, **params), contract.ROUTES[route], "%s %s %s" % (route, rid, params))
        layers = api.json("layers", report=rid)
        names = [l["name"] for l in layers["layers"]][:5] + [n["name"] for n in layers["verdict_nodes"]][:3]
        for name in names:
            conforms(api.json("layer", report=rid, layer=name), contract.LayerDetail, "layer %s" % name)
    ids = [r["id"] for r in reports["reports"]]
    conforms(api.json("compare", a=ids[0], b=ids[-1]), contract.CompareResponse, "compare")
    listing = api.json("manual")
    conforms(listing, contract.ManualList, "manual")
    conforms(api.json("manual", id=listing["entries"][0]["id"]), contract.ManualEntry, "manual?id")
    conforms(api.json("report", expect=400, report=ids[0], bits="inf"), contract.ErrorAnswer, "a 400")
    conforms(api.json("report", expect=404, report="r-none"), contract.ErrorAnswer, "a 404")


def test_every_route_conforms_on_generated_logdirs(generated_api):
    check_every_route(generated_api, thresholds=({"thr.mse": "1e-9", "concat": "2"},))


@pytest.mark.mct
def test_every_route_conforms_on_the_demo(demo_api):
    check_every_route(demo_api, thresholds=({"ratio": "0"}, {"z": "0.5", "bits": "8"}))


def test_cli_json_conforms(mct_format_logdir):
    out = subprocess.run([sys.executable, "-m", "tb_xquant_plugin.cli", "report", str(mct_format_logdir), "--json"],
                         capture_output=True, text=True, timeout=300, check=True).stdout
    items = json.loads(out)
    assert items
    for item in items:
        conforms(item, contract.CliReport, "cli %s" % item.get("name"))
