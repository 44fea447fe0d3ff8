"""A plain wheel installs and works without Node, torch or MCT.

``pip wheel --no-deps`` builds the package from a copy of its sources (setup.py, README.md, tb_xquant_plugin/:
the panel's bundle in static/ is committed, so no Node); the wheel holds the bundle, the manual's entries and the
entry points.  It is installed by this environment's pip (``--python``, ``--no-index``) into a new venv
(``python -m venv --without-pip``) beside copies of its ``install_requires`` closure as installed here (no package
index is asked: a resolver run would test the machine's index, not the wheel), where ``import torch`` fails; there ``tb-xquant report`` gives
the same JSON and gate result as the development install, and ``tensorboard --logdir`` lists an enabled XQuant
tab that serves its bundle and the analysis.

Marked ``slow`` (about a minute: the install unpacks numpy, grpcio and TensorBoard)."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from importlib import metadata
from pathlib import Path
from typing import List

import pytest

from test_cli_gates import failed_lines, tbx

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from testkit.procs import TensorBoardProcess  # noqa: E402

pytestmark = pytest.mark.slow


def pip(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    env = dict(os.environ, PIP_DISABLE_PIP_VERSION_CHECK="1")
    p = subprocess.run([sys.executable, "-m", "pip", *args], capture_output=True, text=True, timeout=timeout, env=env,
                       stdin=subprocess.DEVNULL)
    assert p.returncode == 0, "pip %s\n%s\n%s" % (" ".join(args), p.stdout[-3000:], p.stderr[-3000:])
    return p


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"
    src.mkdir()
    for name in ("setup.py", "README.md"):
        shutil.copy(REPO / name, src / name)
    shutil.copytree(REPO / "tb_xquant_plugin", src / "tb_xquant_plugin",
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    # --no-build-isolation: setuptools from this environment (nothing downloaded); the build backend is the same
    pip("wheel", str(src), "--no-deps", "--no-build-isolation", "-w", str(tmp / "dist"), "-q")
    (whl,) = (tmp / "dist").glob("tb_xquant-*.whl")
    return whl


def requirement_closure(wheel: Path) -> List[metadata.Distribution]:
    """The installed distributions the wheel's ``Requires-Dist`` pulls in (no extras), transitively."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    with zipfile.ZipFile(wheel) as z:
        (meta,) = [n for n in z.namelist() if n.endswith(".dist-info/METADATA")]
        text = z.read(meta).decode()
    todo = [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]
    seen = {}
    while todo:
        req = Requirement(todo.pop())
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        name = canonicalize_name(req.name)
        if name in seen:
            continue
        dist = metadata.distribution(req.name)
        assert dist.version in req.specifier, "%s %s does not satisfy %s" % (req.name, dist.version, req)
        seen[name] = dist
        todo.extend(dist.requires or [])
    return list(seen.values())


@pytest.fixture(scope="module")
def clean_venv(wheel, tmp_path_factory) -> Path:
    """A new venv holding the wheel (installed by pip, no index) and copies of its dependencies' installed files.

    The dependencies are copied from this environment rather than resolved again: the test is about the wheel,
    and a resolver run depends on what the package index of the machine serves.  ``pip check`` then confirms
    that every requirement of the wheel and of its dependencies is met."""
    tmp = tmp_path_factory.mktemp("venv")
    venv = tmp / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                               capture_output=True, text=True, check=True).stdout.strip())
    for dist in requirement_closure(wheel):
        root = Path(dist.locate_file(""))
        for f in dist.files or []:
            src = Path(dist.locate_file(f))
            rel = src.resolve().relative_to(root.resolve()) if src.resolve().is_relative_to(root.resolve()) else None
            if rel is None or not src.is_file() or "__pycache__" in rel.parts:
                continue  # console scripts in bin/ and byte code: not needed by `python -m` and imports
            (site / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(src, site / rel)
    pip("--python", str(venv / "bin" / "python"), "install", "-q", "--no-index", "--no-deps", str(wheel))
    pip("--python", str(venv / "bin" / "python"), "check")
    return venv


def in_venv(venv: Path, *args: str, timeout: float = 180) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PYTHONIOENCODING"] = "utf-8"
    return subprocess.run(list(args), capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL, cwd=str(venv))


def test_wheel_holds_the_panel_the_manual_and_the_entry_points(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert "tb_xquant_plugin/static/index.js" in names
    entries = sorted(n for n in names if n.startswith("tb_xquant_plugin/manual/entries/") and n.endswith(".md"))
    assert entries == sorted("tb_xquant_plugin/manual/entries/" + p.name
                             for p in (REPO / "tb_xquant_plugin" / "manual" / "entries").glob("*.md"))
    assert "tb_xquant_plugin/export/markdown.py" in names
    for n in names:  # nothing of the development tree
        assert not n.startswith(("tests/", "frontend/", "demo/", "bench/", "testkit/")), n
        assert "__pycache__" not in n
    (ep,) = [n for n in names if n.endswith(".dist-info/entry_points.txt")]
    text = zipfile.ZipFile(wheel).read(ep).decode()
    assert "tb-xquant = tb_xquant_plugin.cli:main" in text
    assert "xquant = tb_xquant_plugin.plugin:XQuantPlugin" in text


def test_clean_venv_has_no_torch_or_mct(clean_venv):
    py = str(clean_venv / "bin" / "python")
    for mod in ("torch", "model_compression_toolkit", "tensorflow"):
        p = in_venv(clean_venv, py, "-c", "import %s" % mod)
        assert p.returncode != 0 and "ModuleNotFoundError" in p.stderr, mod
    p = in_venv(clean_venv, py, "-c", "import tb_xquant_plugin, sys; print(tb_xquant_plugin.__file__)")
    assert p.returncode == 0 and str(clean_venv) in p.stdout, p.stdout + p.stderr


def test_cli_from_the_wheel(clean_venv, mct_format_logdir, generated_models):
    exe = str(clean_venv / "bin" / "tb-xquant")
    p = in_venv(clean_venv, exe, "report", str(mct_format_logdir), "--format", "json")
    assert p.returncode == 0, p.stderr
    assert json.loads(p.stdout) == json.loads(tbx("report", str(mct_format_logdir), "--format", "json").stdout)
    p = in_venv(clean_venv, exe, "report", str(mct_format_logdir), "--fail-on", "degraded", "--format", "md")
    assert p.returncode == 3, p.stderr
    assert set(failed_lines(p.stderr, "degraded")) == {m.rel for m in generated_models.values()}
    assert p.stdout.startswith("# XQuant report")
    p = in_venv(clean_venv, exe, "manual", "gptq")
    assert p.returncode == 0 and p.stdout.strip()


class VenvTensorBoard(TensorBoardProcess):
    """TensorBoard of the clean venv (not this interpreter's)."""

    def __init__(self, venv: Path, logdir, **kw):
        self.venv = venv
        super().__init__(logdir, **kw)

    def command(self, port: int) -> List[str]:
        cmd = super().command(port)
        return [str(self.venv / "bin" / "python")] + cmd[1:]


def test_tensorboard_from_the_wheel_shows_the_tab(clean_venv, mct_format_logdir, generated_models, tmp_path):
    env = {"PYTHONPATH": ""}
    with VenvTensorBoard(clean_venv, mct_format_logdir, env=env, cwd=clean_venv, log_path=tmp_path / "tb.log") as tb:
        tb.poll("the XQuant tab enabled", lambda: (tb.xquant_listing() or {}).get("enabled"), deadline=120)
        status, ctype, body = tb.plugin_request("static/index.js")
        assert status == 200 and "javascript" in ctype and len(body) > 10000
        assert body == (REPO / "tb_xquant_plugin" / "static" / "index.js").read_bytes()
        reports = {r["name"]: r for r in tb.plugin_json("reports")["reports"]}
        assert set(reports) == {m.rel for m in generated_models.values()}
        for m in generated_models.values():
            s = tb.plugin_json("report", {"report": reports[m.rel]["id"]}, timeout=120)
            assert s["degraded_layers"] == m.mct_degraded


@pytest.mark.mct
def test_cli_from_the_wheel_on_the_demo(clean_venv, demo_logdir, scenarios):
    p = in_venv(clean_venv, str(clean_venv / "bin" / "tb-xquant"), "report", str(demo_logdir), "--format", "json")
    assert p.returncode == 0, p.stderr
    got = {r["name"]: r["degraded_layers"] for r in json.loads(p.stdout)}
    assert got == {sc.rel: sc.mct_degraded for sc in scenarios.values()}
