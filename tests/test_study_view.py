"""The viewing side of studies (``tb_xquant_plugin.mct_study``): ``GET studies``, ``GET study`` and
``tb-xquant study``, on a study folder built from real MCT report dirs (the demo's ``outlier`` as the baseline,
``outlier_fixed`` as the attempt that applied the proposed z_threshold, ``testkit/studies.py``), and on hostile
``study.json`` files: not JSON, another schema, over the size limit, a FIFO, links out of the logdir, NaN numbers,
HTML and terminal escapes in strings, shapes ``model.study.parse`` does not expect."""
from __future__ import annotations

import json
import math
import os
import shutil
import threading
from pathlib import Path

import pytest

from tb_xquant_plugin import cli
from tb_xquant_plugin.api import contract
from tb_xquant_plugin.api.studies import MAX_STUDY_BYTES, study_id
from tb_xquant_plugin.model import countermeasure as C
from tb_xquant_plugin.model import study as S
from tb_xquant_plugin.model.report import report_id
from testkit.procs import strict_json
from testkit.studies import BASELINE, FAILED, FIXED, HTML_ERROR, HTML_LABEL, REPORT, write_demo_study

STUDY = "my_study"


def conforms(body, tp, where=""):
    errors = contract.check(body, tp)
    assert not errors, "%s: %s" % (where, "\n".join(errors[:20]))


def strict(api, route, expect=200, **params):
    """The answer as strict JSON (no bare NaN / Infinity), with its status and content type checked."""
    r = api.get(route, **params)
    body = r.get_data(as_text=True)
    assert r.status_code == expect, (route, params, r.status_code, body[:1000])
    assert r.mimetype == "application/json"
    return strict_json(body)


# --------------------------------------------------------------------------------------------------------------
# a study of real report dirs
# --------------------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def study_logdir(demo_logdir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study_logdir")
    write_demo_study(Path(demo_logdir), root / STUDY)
    return root


@pytest.fixture(scope="module")
def study_json(study_logdir):
    return json.loads((study_logdir / STUDY / S.FILENAME).read_text(encoding="utf-8"))


@pytest.fixture(scope="module")
def api(study_logdir, make_api):
    return make_api(str(study_logdir))


def test_get_studies_lists_the_study(api, study_json):
    body = strict(api, "studies")
    conforms(body, contract.StudiesResponse, "studies")
    assert "hint" not in body
    (ref,) = body["studies"]
    assert ref == {"id": study_id(STUDY), "name": STUDY, "model_name": study_json["model_name"], "status": "done",
                   "attempts": 3, "best": FIXED, "problems": []}


def test_get_study_maps_every_attempt_to_its_report(api, study_json, scenarios):
    ids = api.report_ids()
    assert set(ids) == {"%s/%s/%s" % (STUDY, BASELINE, REPORT), "%s/%s/%s" % (STUDY, FIXED, REPORT)}
    s = strict(api, "study", study=study_id(STUDY))
    conforms(s, contract.StudyResponse, "study")
    assert (s["id"], s["name"], s["status"], s["baseline"], s["best"]) == (study_id(STUDY), STUDY, "done", BASELINE, FIXED)
    assert s["problems"] == []
    by_id = {a["id"]: a for a in s["attempts"]}
    assert list(by_id) == [BASELINE, FIXED, FAILED]
    assert by_id[BASELINE]["report_id"] == ids["%s/%s/%s" % (STUDY, BASELINE, REPORT)]
    assert by_id[FIXED]["report_id"] == ids["%s/%s/%s" % (STUDY, FIXED, REPORT)]
    assert by_id[FAILED]["report_id"] is None and by_id[FAILED]["error"] == HTML_ERROR
    assert by_id[FAILED]["label"] == HTML_LABEL  # data: returned as written, the panel shows it as text
    # the numbers are the reports' own
    for aid, scenario in ((BASELINE, "outlier"), (FIXED, "outlier_fixed")):
        sc, a = scenarios[scenario], by_id[aid]
        assert a["accuracy"] == sc.manifest["accuracy"]["quantized"]
        assert a["output_sqnr"] == sc.quant_report["output_similarity_metrics_val"]["sqnr"]
        assert a["degraded"] == sc.mct_degraded and a["degraded_count"] == len(sc.mct_degraded)
        summary = api.json("report", report=a["report_id"])
        assert summary["degraded_layers"] == a["degraded"]
    assert by_id[BASELINE]["degraded_count"] > 0 and by_id[FIXED]["degraded_count"] == 0
    assert by_id[FIXED]["helped"] is True and by_id[BASELINE]["helped"] is None
    assert by_id[FIXED]["countermeasure"] == study_json["attempts"][1]["countermeasure"]
    assert by_id[FIXED]["countermeasure"]["fields"] == {"z_threshold": 3.62}
    assert by_id[FIXED]["verdict"]["judge"] == "outlier_removal"
    assert s["winning_snippet"] == study_json["winning_snippet"] and "z_threshold=3.62" in s["winning_snippet"]
    # the attempt against the baseline: the compare route on the two report ids
    cmp = strict(api, "compare", a=by_id[BASELINE]["report_id"], b=by_id[FIXED]["report_id"])
    conforms(cmp, contract.CompareResponse, "compare")
    assert cmp["countermeasure"]["improved"]["degraded_layers"] is True


def test_study_route_errors(api):
    for params, code, what in (({}, 400, "missing parameter 'study'"), ({"study": "s-none"}, 404, "unknown study"),
                               ({"study": "x" * 5000}, 404, "unknown study")):
        body = strict(api, "study", expect=code, **params)
        conforms(body, contract.ErrorAnswer, "study %s" % params)
        assert what in body["error"] and body["hint"]


def test_cli_study_text(study_logdir, study_json, capsys):
    assert cli.main(["study", str(study_logdir)]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert lines[0].startswith("== %s (%s): done, 3 attempts" % (STUDY, study_json["model_name"]))
    head = lines[1].split()
    assert head == ["attempt", "countermeasure", "source", "status", "accuracy", "output", "SQNR", "degraded", "time",
                    "size"]
    rows = {l.split()[1] if l.split()[0] in ("*", "+", "*+") else l.split()[0]: l for l in lines[2:6]}
    fixed = rows[FIXED]
    assert fixed.split()[0] == "*+" and "z_threshold=3.62" in fixed and "verdict" in fixed
    acc = study_json["attempts"][1]["accuracy"]
    assert ("%.4g" % acc) in fixed and ("%.4g" % study_json["attempts"][1]["output_sqnr"]) in fixed
    assert " 0 " in fixed and "2.8 s" in fixed and "15.5 KB" in fixed
    base = rows[BASELINE]
    assert base.split()[0] == BASELINE and " %d " % study_json["attempts"][0]["degraded_count"] in base
    failed = rows[FAILED]
    assert "failed" in failed and failed.split()[0] == FAILED
    # a failed attempt's error: its first line only
    assert "! " + HTML_ERROR.splitlines()[0] in out and HTML_ERROR.splitlines()[1].strip() not in out
    # the winning snippet, pasteable as printed
    assert "winning configuration: %s (%s)" % (C.describe(study_json["winning_countermeasure"]), FIXED) in out
    assert "winning configuration: z_threshold=3.62 on project_conv_bn" in out
    assert study_json["winning_snippet"].rstrip("\n") in out


def test_cli_study_json_is_the_api_answer(study_logdir, api, capsys):
    assert cli.main(["study", str(study_logdir), "--json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    conforms(item, contract.StudyResponse, "cli --json")
    assert item == strict(api, "study", study=study_id(STUDY))


def test_cli_study_on_the_study_folder_and_its_file(study_logdir, capsys):
    for path in (study_logdir / STUDY, study_logdir / STUDY / S.FILENAME):
        assert cli.main(["study", str(path), "--json"]) == 0
        (item,) = json.loads(capsys.readouterr().out)
        assert item["name"] == "." and item["id"] == study_id(".")
        assert [a["report_id"] for a in item["attempts"]] == [report_id("%s/%s" % (BASELINE, REPORT)),
                                                              report_id("%s/%s" % (FIXED, REPORT)), None]
        assert cli.main(["study", str(path)]) == 0
        assert capsys.readouterr().out.startswith("== %s (" % STUDY)


def test_cli_study_without_a_study(tmp_path, capsys):
    (tmp_path / "empty").mkdir()
    assert cli.main(["study", str(tmp_path / "empty")]) == 4
    assert "no tb-xquant study under" in capsys.readouterr().err
    assert cli.main(["study", str(tmp_path / "missing")]) == 2


# --------------------------------------------------------------------------------------------------------------
# hostile study.json files (no demo needed: the torch-free tier)
# --------------------------------------------------------------------------------------------------------------
def _minimal(**kw):
    study = {"schema": S.SCHEMA, "model_name": "m", "status": "done", "best": "baseline",
             "attempts": [{"id": "baseline", "label": "baseline", "source": "baseline", "status": "ok",
                           "report": "baseline/xquant_report", "countermeasure": None}]}
    study.update(kw)
    return study


def _write(folder: Path, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / S.FILENAME).write_text(text, encoding="utf-8")


ESC = "\x1b[31mred\x1b[0m"
HTML = "<img src=x onerror=alert(1)>&amp;<script>x</script>"


@pytest.fixture(scope="module")
def hostile_logdir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hostile_studies")
    outside = tmp_path_factory.mktemp("outside_logdir")
    _write(outside / "real", json.dumps(_minimal(model_name="outside")))
    _write(root / "not_json", "{not json")
    _write(root / "truncated", json.dumps(_minimal())[:40])
    _write(root / "wrong_schema", json.dumps({"schema": "someone-else/2", "attempts": []}))
    _write(root / "a_list", "[1, 2, 3]")
    _write(root / "deep", "[" * 200_000 + "]" * 200_000)
    big = _minimal(padding="x" * (MAX_STUDY_BYTES + 10))
    _write(root / "huge", json.dumps(big))
    (root / "fifo").mkdir()
    os.mkfifo(root / "fifo" / S.FILENAME)
    (root / "link_out").mkdir()
    os.symlink(outside / "real" / S.FILENAME, root / "link_out" / S.FILENAME)
    os.symlink(outside / "real", root / "folder_link_out")
    _write(root / "nan", json.dumps(_minimal(elapsed_s=math.nan, attempts=[
        {"id": "baseline", "label": "baseline", "source": "baseline", "status": "ok", "accuracy": math.nan,
         "output_sqnr": math.inf, "time_s": -math.inf, "size_bytes": 1e400, "degraded_count": True,
         "countermeasure": {"kind": "quantization_config", "fields": {"z_threshold": math.nan}}}])))
    _write(root / "html", json.dumps(_minimal(model_name=HTML + ESC, status=HTML, attempts=[
        {"id": HTML, "label": HTML + ESC, "source": "verdict", "status": "failed", "error": ESC + HTML + "\nline 2",
         "report": "../../outside/xquant_report", "verdict": {"judge": 5, "layers": [HTML, 3], "message": HTML}},
        {"id": "abs", "label": "abs", "source": "verdict", "status": "ok", "report": "/etc/xquant_report"},
        {"id": "up", "label": "up", "source": "verdict", "status": "ok", "report": "../nan/baseline/xquant_report"}],
        winning_snippet=HTML + ESC + "\nprint(1)")))
    _write(root / "odd_shapes", json.dumps(_minimal(best=["not", "hashable"], attempts="nope", general_path=[1])))
    _write(root / "odd_attempts", json.dumps(_minimal(attempts=[None, 1, "x", {"id": ["a"], "degraded": "abc",
                                                                                "verdict": "v", "helped": "yes"}])))
    return root


LISTED_UNREADABLE = {"not_json", "truncated", "deep", "huge"}


def _get_with_deadline(api, route, **params):
    """A request that must not block (a FIFO must never be opened): answered within a deadline or failed."""
    box = {}
    t = threading.Thread(target=lambda: box.setdefault("r", api.get(route, **params)), daemon=True)
    t.start()
    t.join(60)
    assert not t.is_alive(), "GET %s %s blocked" % (route, params)
    return box["r"]


def test_hostile_studies_are_listed_or_refused_never_a_5xx(hostile_logdir, make_api):
    api = make_api(str(hostile_logdir))
    r = _get_with_deadline(api, "studies")
    assert r.status_code == 200
    body = strict_json(r.get_data(as_text=True))
    conforms(body, contract.StudiesResponse, "studies")
    listed = {s["name"]: s for s in body["studies"]}
    # another schema (and a JSON list) is not a study; the FIFO and the links out of the logdir are never read
    assert not {"wrong_schema", "a_list", "fifo", "link_out", "folder_link_out"} & set(listed)
    assert set(listed) == LISTED_UNREADABLE | {"nan", "html", "odd_shapes", "odd_attempts"}
    for name in LISTED_UNREADABLE:
        (p,) = listed[name]["problems"]
        assert p["what"].startswith(name + "/study.json") and p["hint"]
        assert (listed[name]["status"], listed[name]["attempts"], listed[name]["best"]) == ("", 0, None)
    assert "larger than the %d-byte limit" % MAX_STUDY_BYTES in listed["huge"]["problems"][0]["what"]
    assert "not valid JSON" in listed["not_json"]["problems"][0]["what"]
    for name in ("nan", "html", "odd_attempts", "odd_shapes"):
        assert listed[name]["problems"] == []
    # fields of the wrong type are dropped, not trusted: a list as "best", a string as "attempts"
    assert (listed["odd_shapes"]["attempts"], listed["odd_shapes"]["best"]) == (0, None)
    # every study and every id, good or not: a JSON answer, 200 or 404, never 5xx, never blocking
    for name in ["wrong_schema", "a_list", "fifo", "link_out", "folder_link_out"] + sorted(listed):
        r = _get_with_deadline(api, "study", study=study_id(name))
        body = strict_json(r.get_data(as_text=True))
        if name in ("nan", "html", "odd_attempts", "odd_shapes"):
            assert r.status_code == 200, (name, body)
            conforms(body, contract.StudyResponse, name)
        else:
            assert r.status_code == 404, (name, r.status_code, body)
            conforms(body, contract.ErrorAnswer, name)
    wrong = strict(api, "study", expect=404, study=study_id("wrong_schema"))
    assert "not a tb-xquant study" in wrong["error"]
    assert "larger than" in strict(api, "study", expect=404, study=study_id("huge"))["error"]


def test_hostile_values_come_back_typed(hostile_logdir, make_api):
    api = make_api(str(hostile_logdir))
    nan = strict(api, "study", study=study_id("nan"))
    (a,) = nan["attempts"]
    assert nan["elapsed_s"] is None
    assert (a["accuracy"], a["output_sqnr"], a["time_s"], a["size_bytes"], a["degraded_count"]) == (None,) * 5
    assert a["countermeasure"] == {"kind": "quantization_config", "fields": {"z_threshold": "NaN"}}  # as data, encoded
    html = strict(api, "study", study=study_id("html"))
    assert html["model_name"] == HTML + ESC and html["status"] == HTML[:20]  # bounded by model.study.parse
    first, absolute, up = html["attempts"]
    assert first["id"] == HTML and first["label"] == HTML + ESC and first["error"].startswith(ESC + HTML)
    assert first["verdict"] == {"judge": None, "layers": [HTML], "message": HTML}
    # report paths out of the study folder map to no report
    assert first["report_id"] is None and absolute["report_id"] is None and up["report_id"] is None
    assert len(html["problems"]) == 2  # the two successful attempts without a listed report
    odd = strict(api, "study", study=study_id("odd_attempts"))
    (row,) = odd["attempts"]
    assert row["id"] == "?" and row["degraded"] == [] and row["verdict"] is None and row["helped"] is None


def test_cli_on_hostile_studies(hostile_logdir, capsys):
    assert cli.main(["study", str(hostile_logdir)]) == 4  # some study.json could not be read
    cap = capsys.readouterr()
    assert "\x1b" not in cap.out and "\\x1b[31m" in cap.out  # terminal escapes shown, not obeyed
    assert HTML in cap.out and "line 2" not in cap.out
    for name in LISTED_UNREADABLE:
        assert "cannot read %s/study.json" % name in cap.err
    assert "cannot read odd_shapes" not in cap.err
    assert "exit 4" in cap.err
    assert cli.main(["study", str(hostile_logdir / "html"), "--json"]) == 0
    (item,) = json.loads(capsys.readouterr().out)
    conforms(item, contract.StudyResponse, "cli html")
    assert item["attempts"][0]["label"] == HTML + ESC
    assert cli.main(["study", str(hostile_logdir / "fifo")]) == 4  # not read: no study there
    assert cli.main(["study", str(hostile_logdir / "wrong_schema")]) == 4


def test_a_study_appears_without_a_restart(tmp_path, make_api):
    """GET studies?refresh=1 walks again; a rewritten study.json is read again (its version changed)."""
    api = make_api(str(tmp_path))
    assert strict(api, "studies")["studies"] == [] and "hint" in strict(api, "studies")
    _write(tmp_path / "later", json.dumps(_minimal(status=S.RUNNING)))
    (ref,) = strict(api, "studies", refresh="1")["studies"]
    assert ref["status"] == S.RUNNING
    tmp = tmp_path / "later" / "study.json.tmp"
    tmp.write_text(json.dumps(_minimal(status=S.DONE)), encoding="utf-8")
    os.replace(tmp, tmp_path / "later" / S.FILENAME)  # how mct_study writes it
    assert strict(api, "studies")["studies"][0]["status"] == S.DONE
    assert strict(api, "study", study=ref["id"])["status"] == S.DONE
    shutil.rmtree(tmp_path / "later")
    conforms(strict(api, "study", expect=404, study=ref["id"]), contract.ErrorAnswer, "gone")
    assert strict(api, "studies", refresh="1")["studies"] == []
