"""Compare mode across toolchains: the ONNX Runtime report of the demo's ConvNet (onnx_ort_mct_clean) against MCT's
report of the same model (clean).  The layers pair by module key; the panel draws the deltas on the ONNX graph's
nodes, names A's layer in the hover text and says how the layers were paired."""
from __future__ import annotations

import pytest

from test_panel_features import report_id, set_panel_hash


def test_compare_mct_and_onnx_reports_of_the_same_model(panel):
    onnx_rid, mct = report_id(panel.server, "onnx_ort_mct_clean"), report_id(panel.server, "clean")
    cmp = panel.server.api("compare", a=mct, b=onnx_rid)
    if cmp["pairing"]["method"] != "module key":
        pytest.fail("an MCT and an ONNX report should pair by module key: %r" % cmp["pairing"])
    set_panel_hash(panel, f"#report={onnx_rid}&cmp={mct}", report=onnx_rid, cmp=mct)
    box = panel.frame.wait_for_selector("#compare-pairing")
    assert box.get_attribute("data-method") == "module key"
    assert box.get_attribute("data-paired") == str(cmp["pairing"]["paired"])
    text = box.inner_text()
    assert "before its activation" in text and "only in B" in text
    panel.frame.wait_for_selector("canvas.graph-canvas[data-compare=on]", state="attached")
    changed = [r for r in cmp["layers"] if r["status"] in ("improved", "worse") and r["name_a"] != r["name_b"]]
    assert changed
    for row in changed[:2]:
        name = row["name"]
        assert name == row["name_b"]  # B's node on B's graph
        panel.frame.evaluate("l => window.__xquant.selectLayer(l)", name)
        panel.frame.wait_for_function("l => window.__xquant.drawnBadge(l) !== null", arg=name)
        title = panel.hover_title(name)
        assert "compare A → B: " + row["status"] in title, title
        assert "A's layer: %s (module %s)" % (row["name_a"], row["key"]) in title, title
