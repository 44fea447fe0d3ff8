"""The Attempts view on a real ``tensorboard --logdir``: a study folder built from real MCT report dirs
(``testkit/studies.py``: the demo's ``outlier`` as the baseline, ``outlier_fixed`` as the attempt that applied the
proposed z_threshold, and a failed attempt whose label and error look like HTML).  The study picker and the Attempts
tab appear; the view lists every attempt with its numbers, the best one and the helped one marked, the failed one
with its error as text (nothing injected); clicking an attempt opens the compare view of its report against the
baseline's; the winning snippet has a Copy button."""
from __future__ import annotations

import json
import urllib.parse
from pathlib import Path

import pytest

from conftest import FAKE, open_panel, start_server
from testkit.studies import BASELINE, FAILED, FIXED, HTML_ERROR, HTML_LABEL, write_demo_study

STUDY = "outlier_study"

NO_INJECTION_JS = """() => ({
  pwned: typeof window.__pwned,
  injected: document.querySelectorAll('img[src="x"], [onerror]').length
    + [...document.querySelectorAll('script')].filter((s) => s.textContent.includes('__pwned')).length,
})"""


@pytest.fixture(scope="module")
def study_logdir(demo_logdir, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("study_panel")
    write_demo_study(Path(demo_logdir), root / STUDY)
    return root


@pytest.fixture(scope="module")
def study_tb(study_logdir, tmp_path_factory):
    srv = start_server(study_logdir, tmp_path_factory)
    yield srv
    srv.stop()


def _rows(frame):
    return frame.locator(".attempt-row").evaluate_all(
        "rs => rs.map(r => ({id: r.dataset.attempt, best: r.dataset.best, helped: r.dataset.helped, "
        "status: r.dataset.status, report: r.dataset.report, label: r.querySelector('.attempt-label').textContent, "
        "cells: [...r.children].map(c => c.textContent)}))")


def test_attempts_view_lists_marks_and_opens_compare(browser, study_tb):
    (ref,) = study_tb.api("studies")["studies"]
    study = study_tb.api("study", study=ref["id"])
    by_id = {a["id"]: a for a in study["attempts"]}
    panel, ctx = open_panel(browser, study_tb)
    try:
        f = panel.frame
        # the logdir holds a study: its picker and the Attempts tab are there
        assert f.locator("#study-field").is_visible() and f.locator("#attempts-tab").is_visible()
        assert f.locator("#study-select option").evaluate_all("os => os.map(o => o.textContent)") == [STUDY]
        f.locator("#attempts-tab").click()
        f.wait_for_selector("#attempts[data-state=ready]")
        assert panel.state()["view"] == "attempts" and panel.state()["study"] == ref["id"]
        assert f.locator("#attempts").get_attribute("data-study") == ref["id"]

        rows = _rows(f)
        assert [r["id"] for r in rows] == [BASELINE, FIXED, FAILED]
        got = {r["id"]: r for r in rows}
        # the best one marked, the helped one marked, the others not
        assert [r["id"] for r in rows if r["best"] == "1"] == [FIXED]
        assert [r["id"] for r in rows if r["helped"] == "1"] == [FIXED]
        assert f.locator(".attempt-row[data-best='1'] .badge.best").count() == 1
        assert f.locator(".attempt-row .badge.helped").count() == 1
        # each row's report is its report id; the numbers are the study's
        assert got[BASELINE]["report"] == by_id[BASELINE]["report_id"] and got[FIXED]["report"] == by_id[FIXED]["report_id"]
        assert got[FAILED]["report"] == "" and got[FAILED]["status"] == "failed"
        acc = by_id[FIXED]["accuracy"] * 100
        fixed_cells = got[FIXED]["cells"]
        assert fixed_cells[1].startswith("z_threshold=3.62") and "verdict" in fixed_cells[2] and fixed_cells[3] == "ok"
        assert fixed_cells[4].startswith("%s%%" % f.evaluate("v => String(Number(v.toPrecision(4)))", acc))
        assert fixed_cells[6].startswith("0") and fixed_cells[6] != got[BASELINE]["cells"][6]
        assert got[BASELINE]["cells"][6] == str(by_id[BASELINE]["degraded_count"])
        assert fixed_cells[7] == "2.81 s" and fixed_cells[9] == "15.5 KB" and fixed_cells[8] == "1085 MB"

        # the HTML-looking label and error are text, nothing was injected
        assert got[FAILED]["label"] == HTML_LABEL
        err = f.locator(".attempt-row[data-attempt='%s'] .attempt-error" % FAILED)
        assert err.text_content() == HTML_ERROR.split("\n")[0] and err.get_attribute("title") == HTML_ERROR
        assert f.evaluate(NO_INJECTION_JS) == {"pwned": "undefined", "injected": 0}

        # the winning configuration: one snippet with a Copy button
        assert f.locator("#winning").get_attribute("data-state") == "snippet"
        assert f.locator("#winning pre").text_content() == study["winning_snippet"]
        assert f.locator("#winning button.copy").count() == 1

        # clicking the attempt opens its report against the baseline's in compare mode
        f.locator(".attempt-row[data-attempt='%s'] .attempt-label" % FIXED).click()
        f.wait_for_selector("#compare-summary")
        f.wait_for_selector("canvas.graph-canvas[data-compare=on]", state="attached")
        panel.wait_ready()
        s = panel.state()
        assert (s["report"], s["cmp"], s["view"]) == (by_id[FIXED]["report_id"], by_id[BASELINE]["report_id"], "graph")
        assert f.locator("#attempts-host").is_hidden()
        cmp = study_tb.api("compare", a=s["cmp"], b=s["report"])
        summary = f.locator("#compare-summary")
        assert summary.get_attribute("data-improved") == str(cmp["summary"]["improved"])
        assert "%d → %d" % (by_id[BASELINE]["degraded_count"], by_id[FIXED]["degraded_count"]) in summary.text_content()

        # back to the Attempts tab: the same study, still rendered
        f.locator("#attempts-tab").click()
        f.wait_for_selector("#attempts[data-state=ready]")
        assert [r["id"] for r in _rows(f)] == [BASELINE, FIXED, FAILED]
        assert f.evaluate(NO_INJECTION_JS) == {"pwned": "undefined", "injected": 0}
    finally:
        errs = list(panel.errors)
        ctx.close()
    assert not errs, "console errors:\n" + "\n".join(errs)


def test_attempts_view_restored_from_the_hash(browser, study_tb):
    """A link naming the Attempts view and the study opens it; the baseline row opens the baseline alone."""
    (ref,) = study_tb.api("studies")["studies"]
    study = study_tb.api("study", study=ref["id"])
    base = next(a for a in study["attempts"] if a["id"] == BASELINE)
    h = "#" + urllib.parse.urlencode({"view": "attempts", "study": ref["id"]})
    panel, ctx = open_panel(browser, study_tb, h)
    try:
        f = panel.frame
        f.wait_for_selector("#attempts[data-state=ready][data-study='%s']" % ref["id"])
        assert f.locator("#attempts-tab.active").count() == 1
        f.locator(".attempt-row[data-attempt='%s']" % BASELINE).click()
        f.wait_for_function("r => window.__xquant.state().report === r && window.__xquant.state().view === 'graph'",
                            arg=base["report_id"])
        panel.wait_ready()
        assert panel.state()["cmp"] is None and f.locator("#compare-summary").count() == 0
        assert json.loads(json.dumps(panel.state()))["study"] == ref["id"]
    finally:
        errs = list(panel.errors)
        ctx.close()
    assert not errs, "console errors:\n" + "\n".join(errs)
