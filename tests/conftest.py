"""Shared fixtures of the backend test suite.

``demo_logdir`` is the MCT 2.6.1 demo (``python -m demo.generate``), generated once per session
into a pytest tmp dir, or reused from ``TB_XQUANT_DEMO_LOGDIR`` when that points at a complete
generated logdir.  The fixture exports ``TB_XQUANT_DEMO_LOGDIR`` so that later tests (and the
browser tests in ``tests/browser/``, whose ``demo_logdir`` defers to this one) use the same data.
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
SCENARIOS = ("clean", "outlier", "outlier_fixed", "shift_negative", "unbalanced_concat", "mixed_precision",
             "majority_degraded")
REPORT_SUBDIR = "xquant_report"
GENERATE_TIMEOUT = 1200  # seconds; the demo takes ~1-2 min on 2 cores

# scripts/test.sh (so CI, .ci/run) sets TB_XQUANT_REQUIRE_ALL=1: a test that would be skipped because MCT, torch or
# another tool of the [mct,test] extras is missing fails instead, so a broken setup cannot pass as a green run.
# (tests/browser/conftest.py does the same for a missing chromium.)
REQUIRE_ALL = os.environ.get("TB_XQUANT_REQUIRE_ALL") == "1"
REQUIRED_MODULES = ("model_compression_toolkit", "torch", "torchvision", "sklearn", "playwright")


def skip_or_fail(reason: str):
    """``pytest.skip(reason)``, or a failure under ``TB_XQUANT_REQUIRE_ALL=1``."""
    if REQUIRE_ALL:
        pytest.fail("%s [TB_XQUANT_REQUIRE_ALL=1: a missing tool fails instead of skipping]" % reason, pytrace=False)
    pytest.skip(reason)


def missing_modules() -> list:
    return [m for m in REQUIRED_MODULES if importlib.util.find_spec(m) is None]


def _skip_to_failure(rep) -> None:
    """Under TB_XQUANT_REQUIRE_ALL=1 with a required module missing, no skip passes silently: this turns the
    ``pytest.importorskip`` of every test module (at collection or in a test) into a failure."""
    if not (REQUIRE_ALL and rep.skipped):
        return
    missing = missing_modules()
    if missing:
        rep.outcome = "failed"
        rep.longrepr = "skipped (%s) while %s cannot be imported, and TB_XQUANT_REQUIRE_ALL=1" % (
            rep.longrepr[-1] if isinstance(rep.longrepr, tuple) else rep.longrepr, ", ".join(missing))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    _skip_to_failure(outcome.get_result())


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    _skip_to_failure(outcome.get_result())


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
    def mct_degraded(self) -> list:
        return mct_degraded_layers(self.quant_report, self.xquant_config)

    def report(self):
        """The plugin's Report of this scenario, read from the files (no data provider)."""
        from tb_xquant_plugin.model.builder import build_report
        from tb_xquant_plugin.readers.events import LocalEventSource

        return build_report(LocalEventSource(str(self.logdir)), str(self.logdir), self.rel, str(self.dir))


@pytest.fixture(scope="session")
def scenarios(demo_logdir) -> Dict[str, DemoScenario]:
    return {name: DemoScenario(demo_logdir, name) for name in SCENARIOS}


@pytest.fixture(scope="session")
def demo_reports(scenarios):
    """name -> Report, built once per session."""
    return {name: sc.report() for name, sc in scenarios.items()}


def make_wsgi_app(logdir: str):
    """The plugin inside TensorBoard's own WSGI router (no data provider: files are read directly)."""
    from tensorboard.backend import application
    from tensorboard.plugins import base_plugin

    from tb_xquant_plugin.plugin import XQuantPlugin

    plugin = XQuantPlugin(base_plugin.TBContext(logdir=str(logdir), data_provider=None))
    return application.TensorBoardWSGI([plugin]), plugin


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
