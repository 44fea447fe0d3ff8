"""``python -m bench.peers`` end to end at one small size: the XQuant tab, TensorBoard's Graphs tab and Model
Explorer measured on the same 300-layer graph in one Chromium (a subprocess: one sync Playwright per process).
No timing targets here (they are the benchmark's, on big graphs): every tool has finite timings, the same degraded
layers are coloured in the tab and in Model Explorer's overlay, and the XQuant tab asks nothing outside 127.0.0.1."""
from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tiers import skip_or_fail

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = os.environ.get("TB_XQUANT_CHROMIUM", "/usr/bin/chromium")


def finite(x) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) and x > 0


@pytest.mark.browser
@pytest.mark.slow
def test_peers_bench_at_300_layers(tmp_path):
    for mod in ("playwright", "model_explorer", "PIL", "numpy"):
        if importlib.util.find_spec(mod) is None:
            skip_or_fail("%s is not installed (pip install -e '.[test]')" % mod)
    if not Path(CHROMIUM).exists():
        skip_or_fail("%s not found" % CHROMIUM)
    out_json = tmp_path / "peers.json"
    p = subprocess.run([sys.executable, "-m", "bench.peers", "--sizes", "300", "--repeat", "1",
                        "--gesture-steps", "12", "--timeout", "120", "--out", str(tmp_path / "bench"),
                        "--json", str(out_json)], cwd=str(REPO), capture_output=True, text=True, timeout=600)
    assert p.returncode == 0, (p.stdout[-3000:], p.stderr[-3000:])
    for name in ("XQuant tab", "Graphs tab", "Model Explorer", "Overall:"):
        assert name in p.stdout, p.stdout[-3000:]
    d = json.loads(out_json.read_text())
    assert [r["n"] for r in d["results"]] == [300]
    r = d["results"][0]
    tools = r["tools"]
    assert set(tools) == {"xquant", "graphs_tab", "model_explorer"}
    for name, t in tools.items():
        assert finite(t["cold_s"]) and finite(t["warm_s"]), (name, t["cold_s"], t["warm_s"])
        for g in ("pan", "zoom"):
            s = t["first_view"][g]
            assert s["input_frames"] > 0 and finite(s["frame_work_ms"]["p95"]), (name, g, s)
            assert finite(s["interval_ms"]["p95"]), (name, g, s)
    for name in ("xquant", "model_explorer"):
        assert finite(tools[name]["expand_all"]["expand_s"]), tools[name]["expand_all"]
    # the XQuant tab: no request leaves the machine (its iframe and worker; TensorBoard's page neither)
    x = tools["xquant"]
    assert x["external"]["tab_requests"] == 0 and x["external"]["requests"] == 0, x["external"]
    # cold, warm and interaction from navigation, plus the tab clicked in a loaded TensorBoard
    assert x["pages"] == tools["graphs_tab"]["pages"] == 4 and tools["model_explorer"]["pages"] == 3
    assert finite(x["click_s"]) and finite(tools["graphs_tab"]["click_s"])
    # the same degraded layers: drawn red in the tab, red in Model Explorer's overlay, and red on its canvas
    assert int(x["degraded_count"]) == r["me_export"]["red_nodes"] == r["me_export"]["degraded_layers"] > 0
    me = tools["model_explorer"]
    for o in [me["cold"]] + me["warm"]:
        assert o["buffer_pixels"] >= 20 and o["screen_pixels"] > 0, o
        assert finite(o["first_draw_s"]) and o["first_draw_s"] <= o["colored_s"] + 0.001, o
