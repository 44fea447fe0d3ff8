"""``tb-xquant export model-explorer``: the files follow Model Explorer's JSON graph and node-data formats, and
Model Explorer itself (pip ``ai-edge-model-explorer``, its own server on 127.0.0.1, offline) loads them in headless
Chromium: the nodes, the module scopes as layers, and the overlay colours appear.

The overlay colours are checked against MCT's own rule computed here from quant_report.json (a value past the
threshold is red, within it green), both in the files and in what Model Explorer paints."""
from __future__ import annotations

import base64
import importlib.util
import json
import sys
from pathlib import Path
from typing import Dict, List

import pytest

from test_cli_gates import tbx
from tb_xquant_plugin.export import model_explorer as mex
from tb_xquant_plugin.model.scopes import module_scopes

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from testkit.procs import ModelExplorerProcess  # noqa: E402,F401 - tests/browser/test_model_explorer_view.py

RED, GREEN = mex.PAST_THRESHOLD, mex.WITHIN_THRESHOLD


def rgb(hex_colour: str):
    h = hex_colour.lstrip("#")
    return tuple(int(h[i:i + 2], 16) for i in (0, 2, 4))


def bin_colour(bins: List[Dict], value: float):
    """Model Explorer's rule: the first bin whose upper value is >= the node's value."""
    for b in bins:
        if value <= b["value"]:
            return b["bgColor"]
    return None


def export(report_path: Path, out: Path) -> Dict[str, Path]:
    p = tbx("export", "model-explorer", str(report_path), "--out", str(out))
    assert p.returncode == 0, p.stderr
    files = {f.name: f for f in out.iterdir()}
    assert "view: model-explorer %s --node_data_paths " % (out / "graph.json") in p.stdout
    return files


def load(path: Path):
    return json.loads(path.read_text(encoding="utf-8"))


# ------------------------------------------------------------------------------------------------------------
# the files
# ------------------------------------------------------------------------------------------------------------
def test_graph_json_is_model_explorers_format(tmp_path, mct_format_logdir, generated_models, generated_api):
    m = generated_models["model_200"]
    files = export(m.dir, tmp_path / "me")
    g = load(files["graph.json"])
    assert set(g) == {"label", "graphs"} and len(g["graphs"]) == 1
    graph = g["graphs"][0]
    nodes = graph["nodes"]
    ids = [n["id"] for n in nodes]
    assert len(set(ids)) == len(ids)
    for n in nodes:
        assert set(n) <= {"id", "label", "namespace", "attrs", "incomingEdges", "outputsMetadata"}
        assert isinstance(n["label"], str) and n["label"]
        assert all(set(a) == {"key", "value"} and isinstance(a["value"], str) for a in n["attrs"])
        for e in n["incomingEdges"]:
            assert e["sourceNodeId"] in ids and e["sourceNodeId"] != n["id"]
    # the same graph and module scopes as the tab's graph view
    rid = generated_api.report_ids()[m.rel]
    tab = generated_api.json("graph", report=rid)["nodes"]
    assert ids == [t["id"] for t in tab]
    assert [n["namespace"] for n in nodes] == [t["group"] for t in tab]
    assert [n["namespace"] for n in nodes] == module_scopes([t["name"] for t in tab])
    assert sum(1 for n in nodes if n["namespace"]) > len(nodes) / 2  # the scopes do group the model
    # layers carry their metrics and the degraded flag
    by_layer = {a["value"]: n for n in nodes for a in n["attrs"] if a["key"] == "xquant.layer"}
    assert set(by_layer) == set(m.quant_report["intermediate_similarity_metrics_repr"])
    for name, n in by_layer.items():
        attrs = {a["key"]: a["value"] for a in n["attrs"]}
        assert attrs["xquant.degraded"] == ("yes" if name in m.mct_degraded else "no")
        assert float(attrs["xquant.mse.val"]) == pytest.approx(
            m.quant_report["intermediate_similarity_metrics_val"][name]["mse"], rel=1e-5)


def test_overlays_colour_by_mcts_rule(tmp_path, generated_models):
    m = generated_models["model_60"]
    files = export(m.dir, tmp_path / "me")
    g = load(files["graph.json"])["graphs"][0]
    node_of = {a["value"]: n["id"] for n in g["nodes"] for a in n["attrs"] if a["key"] == "xquant.layer"}
    thr = m.xquant_config["threshold_quantize_error"]
    under = m.xquant_config["is_detect_under_threshold_quantize_error"]
    metrics = list(m.quant_report["output_similarity_metrics_repr"])
    assert set(files) == {"graph.json", "nodedata.worst.json"} | {
        "nodedata.%s.%s.json" % (k, ds) for k in metrics for ds in ("repr", "val")}
    red_somewhere = set()
    for k in metrics:
        for ds in ("repr", "val"):
            data = load(files["nodedata.%s.%s.json" % (k, ds)])
            assert list(data) == [g["id"]]
            gd = data[g["id"]]
            assert gd["name"].startswith("%s (%s)" % (k, ds))
            values = [b["value"] for b in gd["thresholds"]]
            assert values == sorted(values)
            for layer, metrics_of in m.quant_report["intermediate_similarity_metrics_" + ds].items():
                v = metrics_of[k]
                got = gd["results"][node_of[layer]]["value"]
                assert got == pytest.approx(v)
                past = v <= thr[k] if under[k] else v >= thr[k]
                assert bin_colour(gd["thresholds"], got) == (RED if past else GREEN), (layer, k, ds, v)
                if past:
                    red_somewhere.add(layer)
    assert red_somewhere == set(m.mct_degraded)
    worst = load(files["nodedata.worst.json"])[g["id"]]
    reds = {l for l, nid in node_of.items() if bin_colour(worst["thresholds"], worst["results"][nid]["value"]) == RED}
    assert reds == set(m.mct_degraded)


def test_a_threshold_on_the_value_itself_is_past_it(tmp_path, generated_models):
    """MCT degrades mse >= threshold: a layer exactly at the threshold is red (the green bin ends just below)."""
    m = generated_models["model_60"]
    layer, metrics = next(iter(m.quant_report["intermediate_similarity_metrics_repr"].items()))
    p = tbx("export", "model-explorer", str(m.dir), "--out", str(tmp_path / "me"),
            "--threshold", "mse=%r" % metrics["mse"])
    assert p.returncode == 0, p.stderr
    data = load(tmp_path / "me" / "nodedata.mse.repr.json")
    gd = next(iter(data.values()))
    assert bin_colour(gd["thresholds"], metrics["mse"]) == RED
    assert bin_colour(gd["thresholds"], metrics["mse"] * (1 - 1e-9)) == GREEN


def test_several_reports_get_a_folder_each(tmp_path, mct_format_logdir, generated_models):
    p = tbx("export", "model-explorer", str(mct_format_logdir), "--out", str(tmp_path / "me"))
    assert p.returncode == 0, p.stderr
    assert sorted(d.name for d in (tmp_path / "me").iterdir()) == sorted(
        m.rel.replace("/", "__") for m in generated_models.values())
    p = tbx("export", "model-explorer", str(tmp_path / "me"), "--out", str(tmp_path / "x"))
    assert p.returncode == 4 and "no XQuant report found" in p.stderr


# ------------------------------------------------------------------------------------------------------------
# Model Explorer itself
# ------------------------------------------------------------------------------------------------------------
def _chromium():
    from tiers import skip_or_fail

    if importlib.util.find_spec("model_explorer") is None:
        skip_or_fail("ai-edge-model-explorer is not installed (pip install -e '.[test]')")
    if importlib.util.find_spec("playwright") is None or not Path("/usr/bin/chromium").exists():
        skip_or_fail("playwright or /usr/bin/chromium missing")


CELL_COLOURS_JS = """
() => {
  const out = [];
  for (const table of document.querySelectorAll('table')) {
    for (const td of table.querySelectorAll('td')) {
      const text = td.innerText.trim();
      if (!/^-?[0-9.]+(e[-+]?[0-9]+)?$/.test(text)) continue;
      out.push([text, getComputedStyle(td).backgroundColor,
                td.closest('table').innerText.slice(0, 300)]);
    }
  }
  return out;
}
"""


COUNT_COLOURS_JS = """
async ([src, colours, width]) => {
  const img = new Image();
  img.src = src;
  await img.decode();
  const c = document.createElement('canvas');
  c.width = img.width; c.height = img.height;
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  const d = ctx.getImageData(0, 0, Math.min(width, img.width), img.height).data;
  return colours.map(([r, g, b]) => {
    let n = 0;
    for (let i = 0; i < d.length; i += 4)
      if (Math.abs(d[i] - r) <= 6 && Math.abs(d[i + 1] - g) <= 6 && Math.abs(d[i + 2] - b) <= 6) n++;
    return n;
  });
}
"""


def canvas_colour_counts(browser, png: Path, colours, right_edge: int) -> list:
    """How many pixels of each colour (+-6 per channel) the screenshot's graph area holds, left of ``right_edge``
    (the side panel's tables are right of it); the PNG is decoded by the browser itself."""
    page = browser.new_page()
    try:
        src = "data:image/png;base64," + base64.b64encode(png.read_bytes()).decode()
        return page.evaluate(COUNT_COLOURS_JS, [src, [list(c) for c in colours], right_edge])
    finally:
        page.close()
