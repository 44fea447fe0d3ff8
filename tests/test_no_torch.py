"""The viewer never needs torch, torchvision, TensorFlow / Keras or MCT: in a subprocess where importing them
raises ImportError, the plugin, its HTTP apps and the ``tb-xquant`` CLI import and work -- on the demo's PyTorch
and (when generated) Keras reports.  TensorBoard then reads files through its own TensorFlow stub
(``tensorboard.compat``), as it does for a user who has no TensorFlow."""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from tb_xquant_plugin.model.thresholds import DEFAULT_DEGRADE_LAYER_RATIO

REPO = Path(__file__).resolve().parents[1]

BLOCKER = textwrap.dedent("""
    import importlib.abc, sys
    BLOCKED = ("torch", "torchvision", "model_compression_toolkit", "tensorflow", "keras", "tf_keras",
               "mct_quantizers")

    class _Blocker(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path=None, target=None):
            if name.split(".")[0] in BLOCKED:
                raise ImportError("blocked for this test: %s" % name)
            return None

    sys.meta_path.insert(0, _Blocker())
    for _m in list(sys.modules):
        if _m.split(".")[0] in BLOCKED:
            del sys.modules[_m]
""")


def run_python(code: str, *args: str, timeout: float = 180):
    return subprocess.run([sys.executable, "-c", BLOCKER + textwrap.dedent(code), *args], cwd=str(REPO),
                          capture_output=True, text=True, timeout=timeout)


def test_blocker_really_blocks():
    p = run_python("""
        try:
            import torch  # noqa: F401
        except ImportError as e:
            print("blocked:", e)
        else:
            raise SystemExit("torch imported")
        try:
            from model_compression_toolkit import xquant  # noqa: F401
        except ImportError:
            print("blocked mct")
        else:
            raise SystemExit("mct imported")
        try:
            import tensorflow  # noqa: F401
        except ImportError:
            print("blocked tensorflow")
        else:
            raise SystemExit("tensorflow imported")
        from tensorboard.compat import tf
        tf.io.gfile.exists(".")
        print("tensorboard uses the stub:", "tensorboard.compat.tensorflow_stub" in sys.modules)
    """)
    assert p.returncode == 0, p.stderr
    assert "blocked: blocked for this test: torch" in p.stdout and "blocked mct" in p.stdout
    assert "blocked tensorflow" in p.stdout and "tensorboard uses the stub: True" in p.stdout


def test_plugin_and_http_apps_without_torch(demo_logdir, scenarios):
    p = run_python("""
        import json, sys
        from tensorboard.backend import application
        from tensorboard.plugins import base_plugin
        from werkzeug.test import Client
        import tb_xquant_plugin.plugin as plugin_mod
        import tb_xquant_plugin.cli  # noqa: F401

        logdir = sys.argv[1]
        plugin = plugin_mod.XQuantPlugin(base_plugin.TBContext(logdir=logdir, data_provider=None))
        client = Client(application.TensorBoardWSGI([plugin]))
        pre = "/data/plugin/xquant/"
        out = {}
        reports = json.loads(client.get(pre + "reports").get_data(as_text=True))["reports"]
        for r in reports:
            s = client.get(pre + "report", query_string={"report": r["id"]})
            assert s.status_code == 200, s.get_data(as_text=True)
            s = json.loads(s.get_data(as_text=True))
            for route in ("graph", "layers", "verdicts"):
                assert client.get(pre + route, query_string={"report": r["id"]}).status_code == 200
            for a in s["artifacts"][:2]:
                resp = client.get(pre + "artifact", query_string={"report": r["id"], "id": a["id"]})
                assert resp.status_code == 200 and resp.mimetype == "image/png"
            for layer in s["degraded_layers"][:1]:
                resp = client.get(pre + "layer", query_string={"report": r["id"], "layer": layer})
                assert resp.status_code == 200
            out[r["name"]] = {"degraded": s["degraded_layers"], "verdicts": s["verdict_count"]}
        assert client.get(pre + "manual").status_code == 200
        assert client.get(pre + "static/index.js").status_code == 200
        listing = json.loads(client.get("/data/plugins_listing").get_data(as_text=True))
        out["_listed"] = "xquant" in listing
        out["_loaded"] = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
        print("RESULT" + json.dumps(out))
    """, str(demo_logdir))
    assert p.returncode == 0, p.stderr[-4000:]
    out = json.loads(p.stdout.split("RESULT", 1)[1])
    assert out.pop("_loaded") == []
    assert out.pop("_listed") is True
    assert set(out) == {sc.rel for sc in scenarios.values()}
    for sc in scenarios.values():
        assert out[sc.rel]["degraded"] == sc.mct_degraded
        assert out[sc.rel]["verdicts"] >= sum(len(v) for v in (sc.troubleshoot or {}).values())


def test_cli_without_torch(demo_logdir, scenarios, mct_rule):
    code = """
        import runpy, sys
        sys.argv = ["tb-xquant"] + sys.argv[1:]
        try:
            runpy.run_module("tb_xquant_plugin.cli", run_name="__main__")
        finally:
            loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
            sys.stderr.write("LOADED%r\\n" % (loaded,))
    """
    p = run_python(code, "report", str(demo_logdir), "--json")
    assert p.returncode == 0, p.stderr[-4000:]
    assert "LOADED[]" in p.stderr
    reports = {r["name"]: r for r in json.loads(p.stdout)}
    assert set(reports) == {sc.rel for sc in scenarios.values()}
    for sc in scenarios.values():
        r = reports[sc.rel]
        assert r["degraded_layers"] == sc.mct_degraded
        n = len(sc.quant_report["intermediate_similarity_metrics_repr"])
        assert r["layer_count"] == n
        # an ONNX report's manifest records the quantize-error thresholds only: the ratio is the default
        ratio = sc.xquant_config.get("threshold_degrade_layer_ratio", DEFAULT_DEGRADE_LAYER_RATIO)
        assert r["judges_skipped"] == (len(sc.mct_degraded) / n >= ratio)
        for judge, items in (sc.troubleshoot or {}).items():
            assert len([v for v in r["verdicts"] if v["judge"] == judge and v["source"] == "mct"]) == len(items)

    # text output and a threshold override
    p = run_python(code, "report", str(demo_logdir / "clean"), "--threshold", "mse=1e-12")
    assert p.returncode == 0, p.stderr[-4000:]
    sc = scenarios["clean"]
    cfg = dict(sc.xquant_config, threshold_quantize_error=dict(sc.xquant_config["threshold_quantize_error"], mse=1e-12))
    expected = mct_rule(sc.quant_report, cfg)
    assert expected
    assert "degraded: %d of %d layers" % (
        len(expected), len(sc.quant_report["intermediate_similarity_metrics_repr"])) in p.stdout
    for name in expected:
        assert "     - %s\n" % name in p.stdout

    # errors: exit code 2 and a message, no traceback
    p = run_python(code, "report", str(demo_logdir / "does-not-exist"))
    assert p.returncode == 2 and "no such path" in p.stderr and "Traceback" not in p.stderr
    p = run_python(code, "report", str(demo_logdir), "--threshold", "mse")
    assert p.returncode == 2 and "METRIC=VALUE" in p.stderr and "Traceback" not in p.stderr
    p = run_python(code, "report", str(demo_logdir), "--threshold", "mse=abc")
    assert p.returncode == 2 and "Traceback" not in p.stderr
