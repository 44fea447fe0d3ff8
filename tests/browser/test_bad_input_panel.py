"""The panel on the bad-input corpus of tests/test_bad_input.py, served by a real `tensorboard`:
every broken report opens without a page error and says what is wrong and how to fix it, and the
healthy report next to them still draws its graph."""
import shutil
import sys
from pathlib import Path

import pytest

from conftest import FAKE, open_panel, start_server

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
import test_bad_input as corpus  # noqa: E402  (the corpus builders live with the backend tests)

pytestmark = pytest.mark.skipif(FAKE, reason="needs the real backend")


@pytest.fixture(scope="module")
def bad_tb(demo_logdir, tmp_path_factory):
    root = tmp_path_factory.mktemp("bad_logdir_panel")
    shutil.copytree(Path(demo_logdir) / "outlier", root / "good_outlier")
    src = Path(demo_logdir) / "clean" / "xquant_report"
    for name, (build, _expect) in corpus.BROKEN.items():
        build(src, root / name / "xquant_report")
    srv = start_server(root, tmp_path_factory)
    # TensorBoard lists runs as its loader reaches them: a report known only through its run (a graph without
    # quant_report.json) may come after the first answer of `reports` on a busy machine
    expected = set(corpus.BROKEN) | {"good_outlier"}
    try:
        srv.process.poll("every report of the corpus listed", lambda: expected <= {
            r["name"].split("/")[0] for r in srv.api("reports")["reports"]}, 120.0)
    except BaseException:
        srv.stop()
        raise
    yield srv
    srv.stop()


def test_every_broken_report_shows_its_problem(browser, bad_tb):
    reports = {r["name"].split("/")[0]: r for r in bad_tb.api("reports")["reports"]}
    assert set(reports) == set(corpus.BROKEN) | {"good_outlier"}
    panel, ctx = open_panel(browser, bad_tb)
    try:
        for name in sorted(corpus.BROKEN):
            r = reports[name]
            panel.frame.evaluate("h => { location.hash = h; }", "#report=" + r["id"])
            panel.frame.wait_for_function("id => window.__xquant.state().report === id", arg=r["id"])
            panel.wait_ready()
            summary = bad_tb.api("report", report=r["id"])
            banner = panel.frame.locator("#problems")
            if summary["problems"]:
                text = banner.inner_text()
                # the first problem's sentence and its fix, rendered as text
                assert summary["problems"][0]["what"][:60] in text, (name, text[:300])
                assert "To fix" in text
            else:
                # nothing is wrong with the files (e.g. hostile names): the graph or the layer list is drawn
                assert panel.frame.locator("canvas.graph-canvas").get_attribute("data-state") in ("ready", "empty")
        good = reports["good_outlier"]
        panel.frame.evaluate("h => { location.hash = h; }", "#report=" + good["id"])
        panel.frame.wait_for_function("id => window.__xquant.state().report === id", arg=good["id"])
        panel.wait_ready()
        canvas = panel.frame.locator("canvas.graph-canvas")
        assert canvas.get_attribute("data-state") == "ready"
        assert int(canvas.get_attribute("data-node-count")) == len(bad_tb.api("graph", report=good["id"])["nodes"])
        assert not panel.errors, panel.errors
    finally:
        ctx.close()
