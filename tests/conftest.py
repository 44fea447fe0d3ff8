"""Shared fixtures of the backend test suite.

``demo_logdir`` is the MCT 2.6.1 demo (``python -m demo.generate``), generated once per session
into a pytest tmp dir, or reused from ``TB_XQUANT_DEMO_LOGDIR`` when that points at a complete
generated logdir.  The fixture exports ``TB_XQUANT_DEMO_LOGDIR`` so that later tests (and the
browser tests in ``tests/browser/``, whose ``demo_logdir`` defers to this one) use the same data.

Test tiers (markers registered in ``pytest.ini``): every test whose fixtures reach ``generated_demo_logdir`` (the
demo: ``demo_logdir``, ``scenarios``, ``demo_reports``, ``demo_api``...) is marked ``mct`` here at collection, as
are the tests marked by hand because they run MCT or torch themselves; every test under ``tests/browser/`` is
marked ``browser``.  ``pytest tests -m "not mct and not browser"`` is the torch-free tier: the backend and every
HTTP route, on logdirs that ``bench/mct_format.py`` writes in MCT's format (``mct_format_logdir``).
"""
from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # the demo package (demo/) lives at the repository root, next to tests/
    sys.path.insert(0, str(REPO))
from demo.keras_env import KERAS_SCENARIOS, keras_python  # noqa: E402 - imports no TensorFlow
from demo.onnx_demo import ONNX_SCENARIOS, available as onnx_available  # noqa: E402 - imports no onnx

PYTORCH_SCENARIOS = ("clean", "outlier", "outlier_fixed", "shift_negative", "unbalanced_concat", "mixed_precision",
                     "majority_degraded")
# The demo's MCT-for-Keras scenarios (demo/keras_demo.py), in the same logdir, when a TensorFlow 2.15 interpreter
# (.venv-keras, scripts/setup_keras.sh) can generate them; tests/test_keras.py checks them.
KERAS_DEMO = tuple(KERAS_SCENARIOS) if keras_python() else ()
# The demo's QDQ ONNX scenarios (demo/onnx_demo.py: ONNX Runtime, AMD Quark, a PPQ-style export), in the same logdir
# when the [onnx] extra is installed; tests/test_onnx_demo.py checks them.  They are reports of the logdir like the
# MCT ones (DemoScenario.onnx), without stage logs or troubleshoot_report.json.
ONNX_DEMO = tuple(n for n, why in onnx_available().items() if why is None)
SCENARIOS = PYTORCH_SCENARIOS + KERAS_DEMO + ONNX_DEMO
REPORT_SUBDIR = "xquant_report"
GENERATE_TIMEOUT = 1200  # seconds; the demo takes ~1-2 min on 2 cores

# TB_XQUANT_REQUIRE_ALL=1 (scripts/test.sh): a skip for a missing tool fails instead (tests/tiers.py; import
# skip_or_fail from there: ``from conftest import`` may get tests/browser/conftest.py)
if str(REPO / "tests") not in sys.path:  # tests/tiers.py (pytest's default import mode puts it there too)
    sys.path.insert(0, str(REPO / "tests"))
from tiers import REQUIRE_ALL, REQUIRED_MODULES, missing_modules, skip_or_fail, skip_to_failure  # noqa: E402,F401
import tiers  # noqa: E402

# fixtures that need torch + MCT: a test reaching one is marked ``mct``.  generated_demo_logdir is behind every
# demo fixture (demo_logdir, scenarios, demo_reports, demo_api); the others run MCT themselves (test_manual.py,
# test_manifest.py).  Tests that import MCT without such a fixture carry ``pytest.mark.mct`` themselves.
MCT_FIXTURES = frozenset({"generated_demo_logdir", "tiny_setup", "isolated_mct", "demo_models",
                          "mct_logger_restored"})
BROWSER_DIR = Path(__file__).resolve().parent / "browser"


@pytest.hookimpl(tryfirst=True)  # before ``-m`` deselects
def pytest_collection_modifyitems(config, items):
    for item in items:
        if MCT_FIXTURES.intersection(getattr(item, "fixturenames", ())) and not item.get_closest_marker("mct"):
            item.add_marker(pytest.mark.mct)
        if BROWSER_DIR in Path(str(item.fspath)).resolve().parents and not item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.browser)


def pytest_configure(config):
    tiers.configure(config)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    skip_to_failure(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    skip_to_failure(outcome.get_result())


def is_generated_logdir(path: Optional[str]) -> bool:
    """A logdir written by ``demo.generate``: every scenario has its report, manifest and events."""
    if not path:
        return False
    root = Path(path)
    for name in SCENARIOS:
        rd = root / name / REPORT_SUBDIR
        if not (rd / "quant_report.json").is_file() or not (rd / "tb_xquant_manifest.json").is_file():
            return False
        if not any("tfevents" in p.name for p in (rd / "xquant").glob("*")):
            return False
    return True


@pytest.fixture(scope="session")
def generated_demo_logdir(tmp_path_factory) -> Path:
    """The generator itself (a separate name so that conftests overriding ``demo_logdir`` can use it)."""
    env = os.environ.get("TB_XQUANT_DEMO_LOGDIR")
    if is_generated_logdir(env):
        return Path(env).resolve()
    if importlib.util.find_spec("model_compression_toolkit") is None or importlib.util.find_spec("torch") is None:
        skip_or_fail("model_compression_toolkit (MCT 2.6.1) / torch not importable: cannot generate the demo logdir; "
                    "install the 'mct' extra or set TB_XQUANT_DEMO_LOGDIR to a generated demo")
    out = tmp_path_factory.mktemp("demo_logs")
    proc = subprocess.run([sys.executable, "-m", "demo.generate", "--out", str(out)], cwd=str(REPO),
                          capture_output=True, text=True, timeout=GENERATE_TIMEOUT)
    if proc.returncode != 0 or not is_generated_logdir(str(out)):
        pytest.fail("python -m demo.generate failed (rc=%s):\n%s\n%s"
                    % (proc.returncode, proc.stdout[-3000:], proc.stderr[-6000:]), pytrace=False)
    os.environ["TB_XQUANT_DEMO_LOGDIR"] = str(out)
    return out


@pytest.fixture(scope="session")
def demo_logdir(generated_demo_logdir) -> Path:
    return generated_demo_logdir


def load_json(path: Path) -> Any:
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def mct_degraded_layers(quant_report: dict, cfg: dict) -> list:
    """MCT 2.6.1's rule (xquant/pytorch/core_detect_degrade_layer.py), re-implemented on quant_report.json
    and an XQuantConfig dict (the manifest's ``xquant_config``)."""
    thr = cfg["threshold_quantize_error"]
    under = dict(cfg["is_detect_under_threshold_quantize_error"])
    degraded = []
    for metric in quant_report["output_similarity_metrics_repr"].keys():
        if metric not in thr:
            continue  # MCT: "threshold is not defined. Skipping"
        for ds in ("repr", "val"):
            for layer, values in quant_report["intermediate_similarity_metrics_" + ds].items():
                q = values[metric]
                if isinstance(q, str):  # the ONNX reports write a non-finite value as "NaN" / "Infinity" (onnx_run)
                    q = float(q)
                hit = q <= thr[metric] if under.get(metric, False) else q >= thr[metric]  # missing direction: above
                if hit and layer not in degraded:
                    degraded.append(layer)
    return degraded


@pytest.fixture(scope="session")
def mct_rule():
    """``mct_rule(quant_report, xquant_config) -> [degraded layer names in MCT's order]``"""
    return mct_degraded_layers


class DemoScenario:
    """The MCT files of one demo scenario (what MCT and the manifest wrapper wrote)."""

    def __init__(self, logdir: Path, name: str):
        self.logdir = logdir
        self.name = name
        self.rel = "%s/%s" % (name, REPORT_SUBDIR)
        self.dir = logdir / name / REPORT_SUBDIR
        self.quant_report: Dict[str, Any] = load_json(self.dir / "quant_report.json")
        ts = self.dir / "troubleshoot_report.json"
        self.troubleshoot: Optional[Dict[str, Any]] = load_json(ts) if ts.is_file() else None
        self.manifest: Dict[str, Any] = load_json(self.dir / "tb_xquant_manifest.json")

    @property
    def xquant_config(self) -> Dict[str, Any]:
        return self.manifest["xquant_config"]

    @property
    def keras(self) -> bool:
        return self.name in KERAS_SCENARIOS

    @property
    def onnx(self) -> bool:
        """A QDQ ONNX report (demo/onnx_demo.py): no stage logs, no troubleshoot_report.json, onnx_qdq.json."""
        return self.name in ONNX_SCENARIOS

    @property
    def mct_degraded(self) -> list:
        """MCT's rule on quant_report.json.  Keras: on the values as the tab shows them -- cs as +cosine (MCT for
        Keras writes -cosine), layers by their Keras names (docs/keras.md); tests/test_keras.py checks both."""
        if not self.keras:
            return mct_degraded_layers(self.quant_report, self.xquant_config)
        names = {n.attrs["mct_wrapper"]: n.name for n in self.report().nodes if "mct_wrapper" in n.attrs}
        shown = {k: v if not k.startswith("intermediate_") else
                 {names.get(layer, layer): dict(m, cs=-m["cs"]) if "cs" in m else m for layer, m in v.items()}
                 for k, v in self.quant_report.items()}
        return mct_degraded_layers(shown, self.xquant_config)

    def report(self):
        """The plugin's Report of this scenario, read from the files (no data provider)."""
        from tb_xquant_plugin.producers import mct_keras, mct_pytorch, onnx_qdq
        from tb_xquant_plugin.readers.events import LocalEventSource

        build = mct_keras.build_report if self.keras else onnx_qdq.build_report if self.onnx else mct_pytorch.build_report
        return build(LocalEventSource(str(self.logdir)), str(self.logdir), self.rel, str(self.dir))


@pytest.fixture(scope="session")
def scenarios(demo_logdir) -> Dict[str, DemoScenario]:
    return {name: DemoScenario(demo_logdir, name) for name in SCENARIOS}


@pytest.fixture(scope="session")
def demo_reports(scenarios):
    """name -> Report, built once per session."""
    return {name: sc.report() for name, sc in scenarios.items()}


def make_wsgi_app(logdir: str):
    """The plugin inside TensorBoard's own WSGI router (no data provider: files are read directly)."""
    from testkit.apps import wsgi_app

    return wsgi_app(str(logdir))


class Api:
    """A werkzeug test client on ``/data/plugin/xquant/``."""

    PREFIX = "/data/plugin/xquant/"

    def __init__(self, logdir: str):
        from werkzeug.test import Client

        self.app, self.plugin = make_wsgi_app(logdir)
        self.client = Client(self.app)
        self.logdir = str(logdir)

    def get(self, route: str, query=None, **params):
        """Raw response; ``query`` may be a preformatted query string."""
        if query is not None:
            return self.client.get(self.PREFIX + route, query_string=query)
        return self.client.get(self.PREFIX + route, query_string=params or None)

    def json(self, route: str, expect: int = 200, **params):
        r = self.get(route, **params)
        assert r.status_code == expect, (route, params, r.status_code, r.get_data(as_text=True)[:2000])
        assert r.mimetype == "application/json", r.mimetype
        return json.loads(r.get_data(as_text=True))

    def report_ids(self) -> Dict[str, str]:
        """report name -> id"""
        return {r["name"]: r["id"] for r in self.json("reports")["reports"]}


@pytest.fixture(scope="session")
def demo_api(demo_logdir) -> Api:
    return Api(str(demo_logdir))


@pytest.fixture(scope="session")
def make_api():
    """``make_api(logdir) -> Api``: a fresh plugin (cold caches) on any logdir."""
    return Api


# --------------------------------------------------------------------------------------------
# MCT-format logdirs without torch: bench/mct_format.py
# --------------------------------------------------------------------------------------------
# name -> (layers, seed, with tb-xquant's manifest); small, so that the torch-free tier stays quick
GENERATED_MODELS = {"model_60": (60, 1, False), "model_200": (200, 2, True)}


class GeneratedModel:
    """One model of ``mct_format_logdir``: the files bench/mct_format.py wrote in MCT 2.6.1's format."""

    def __init__(self, logdir: Path, name: str, layers: int, seed: int):
        self.logdir = logdir
        self.name = name
        self.layers = layers
        self.seed = seed
        self.rel = "%s/%s" % (name, REPORT_SUBDIR)
        self.dir = logdir / name / REPORT_SUBDIR
        self.quant_report: Dict[str, Any] = load_json(self.dir / "quant_report.json")
        ts = self.dir / "troubleshoot_report.json"
        self.troubleshoot: Optional[Dict[str, Any]] = load_json(ts) if ts.is_file() else None
        man = self.dir / "tb_xquant_manifest.json"
        self.manifest: Optional[Dict[str, Any]] = load_json(man) if man.is_file() else None

    @property
    def xquant_config(self) -> Dict[str, Any]:
        """The manifest's thresholds, else XQuantConfig's defaults (what the plugin assumes without one)."""
        if self.manifest:
            return self.manifest["xquant_config"]
        from bench import mct_format

        return {"threshold_quantize_error": dict(mct_format.MCT_THRESHOLDS),
                "is_detect_under_threshold_quantize_error": dict(mct_format.MCT_DETECT_UNDER)}

    @property
    def mct_degraded(self) -> list:
        return mct_degraded_layers(self.quant_report, self.xquant_config)


@pytest.fixture(scope="session")
def mct_format_logdir(tmp_path_factory) -> Path:
    """A logdir of synthetic models written by ``bench.mct_format.write_model_logdir`` (numpy + TensorBoard only):
    reports ``model_60/xquant_report`` (no manifest, MCT's default thresholds) and ``model_200/xquant_report``
    (with tb-xquant's manifest), each with stage logs, histograms, the quantized graph and troubleshoot_report.json."""
    from testkit.logdirs import ensure_model_logdir

    out = tmp_path_factory.mktemp("mct_format_logs")
    for name, (layers, seed, manifest) in GENERATED_MODELS.items():
        ensure_model_logdir(str(out), layers, seed, manifest=manifest)
    return out


@pytest.fixture(scope="session")
def generated_models(mct_format_logdir) -> Dict[str, GeneratedModel]:
    return {name: GeneratedModel(mct_format_logdir, name, layers, seed)
            for name, (layers, seed, _) in GENERATED_MODELS.items()}


@pytest.fixture(scope="session")
def generated_api(mct_format_logdir) -> Api:
    return Api(str(mct_format_logdir))
