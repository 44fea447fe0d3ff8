"""Logdirs on S3: ``s3://bucket/prefix`` through TensorBoard's own file-system layer (``tensorboard.compat``'s
gfile stub, which speaks S3 with boto3; ``S3_ENDPOINT`` points it at an S3-compatible server).

A real S3-compatible server (``moto_server``, from the ``moto`` package) is started on 127.0.0.1 by the tests;
a generated logdir (with a PNG chart) is uploaded to it, then:

* ``tb-xquant report s3://...`` (the console script) gives the same JSON as on the local copy, gates included;
* ``--out s3://...`` and ``export model-explorer`` from S3 work;
* the plugin's HTTP API over the S3 path (TensorBoard's WSGI router, ``ReportStore`` + ``LocalEventSource``)
  and a real ``tensorboard --logdir s3://...`` show the reports, their analysis and the PNG.
"""
from __future__ import annotations

import difflib
import importlib.util
import json
import os
import shutil
import struct
import subprocess
import sys
import textwrap
import zlib
from pathlib import Path
from typing import Dict, List

import pytest

from test_cli_gates import console_script, failed_lines

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from testkit.procs import ServerProcess, TensorBoardProcess  # noqa: E402

pytestmark = pytest.mark.slow  # about a minute: every file goes through a local S3 server

BUCKET = "xquant-logs"
PREFIX = "team/runs"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}


def tiny_png(rgb=(200, 30, 30)) -> bytes:
    """A valid 2x2 PNG."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)
    raw = b"".join(b"\x00" + bytes(rgb) * 2 for _ in range(2))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 2, 2, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class MotoServer(ServerProcess):
    """``moto_server -H 127.0.0.1 -p PORT``: an S3-compatible server in memory."""

    name = "moto_server"
    ready_path = "/"

    def command(self, port: int) -> List[str]:
        return [str(Path(sys.executable).with_name("moto_server")), "-H", self.host, "-p", str(port)]


def _no_tensorflow_dir(tmp: Path) -> Path:
    """With TensorFlow installed, TensorBoard reads through TensorFlow's gfile, which has no S3 without
    tensorflow-io.  A ``sitecustomize`` that registers ``tensorboard.compat.notf`` (TensorBoard's switch for its
    TensorFlow-free build) makes the child processes use TensorBoard's own stub: what a tb-xquant install has."""
    d = tmp / "notf"
    d.mkdir()
    (d / "sitecustomize.py").write_text(
        "import sys, types\nsys.modules.setdefault('tensorboard.compat.notf', types.ModuleType('notf'))\n")
    return d


@pytest.fixture(scope="module")
def s3(tmp_path_factory, mct_format_logdir):
    for mod in ("boto3", "moto"):
        if importlib.util.find_spec(mod) is None:
            from tiers import skip_or_fail

            skip_or_fail("%s is not installed (pip install -e '.[test]')" % mod)
    import boto3

    tmp = tmp_path_factory.mktemp("s3")
    local = tmp / "local"  # one model: every S3 request goes through moto, and the walk costs per folder
    shutil.copytree(mct_format_logdir / "model_60", local / "model_60", ignore=shutil.ignore_patterns(".bench_done"))
    (local / "model_60" / "xquant_report" / "quant_loss_mse_repr.png").write_bytes(tiny_png())
    server = MotoServer(env=CREDENTIALS, log_path=tmp / "moto.log").start()
    try:
        endpoint = server.origin
        client = boto3.client("s3", endpoint_url=endpoint, aws_access_key_id="testing",
                              aws_secret_access_key="testing", region_name="us-east-1")
        client.create_bucket(Bucket=BUCKET)
        for folder, _dirs, names in os.walk(local):
            for name in names:
                path = Path(folder) / name
                client.upload_file(str(path), BUCKET, "%s/%s" % (PREFIX, path.relative_to(local).as_posix()))
        env = dict(CREDENTIALS, S3_ENDPOINT=endpoint)
        if importlib.util.find_spec("tensorflow") is not None:
            env["PYTHONPATH"] = os.pathsep.join([str(_no_tensorflow_dir(tmp))] + (
                [os.environ["PYTHONPATH"]] if os.environ.get("PYTHONPATH") else []))
        yield {"url": "s3://%s/%s" % (BUCKET, PREFIX), "local": local, "env": env, "client": client, "tmp": tmp}
    finally:
        server.stop()


def run(s3, *args: str, timeout=180) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONIOENCODING="utf-8", **s3["env"])
    return subprocess.run([console_script(), *args], capture_output=True, text=True, timeout=timeout, env=env,
                          stdin=subprocess.DEVNULL, cwd=str(s3["tmp"]))


def test_cli_report_on_s3_matches_the_local_copy(s3):
    remote = run(s3, "report", s3["url"], "--format", "json")
    assert remote.returncode == 0, remote.stderr
    local = run(s3, "report", str(s3["local"]), "--format", "json")
    assert local.returncode == 0, local.stderr
    assert json.loads(remote.stdout) == json.loads(local.stdout)
    assert [r["name"] for r in json.loads(remote.stdout)] == ["model_60/xquant_report"]
    gate = run(s3, "report", s3["url"], "--fail-on", "degraded")
    assert gate.returncode == 3, gate.stderr
    assert set(failed_lines(gate.stderr, "degraded")) == {"model_60/xquant_report"}


def test_cli_writes_to_s3_and_exports_from_it(s3, tmp_path):
    key = "reports/review.md"
    p = run(s3, "report", s3["url"], "--format", "md", "--out", "s3://%s/%s" % (BUCKET, key))
    assert p.returncode == 0, p.stderr
    body = s3["client"].get_object(Bucket=BUCKET, Key=key)["Body"].read().decode("utf-8")
    local = run(s3, "report", str(s3["local"]), "--format", "md").stdout
    assert body == local, "\n".join(difflib.unified_diff(local.splitlines(), body.splitlines(), "local", "s3",
                                                          lineterm=""))[:4000]
    p = run(s3, "export", "model-explorer", s3["url"] + "/model_60", "--out", str(tmp_path / "me"))
    assert p.returncode == 0, p.stderr
    q = run(s3, "export", "model-explorer", str(s3["local"] / "model_60"), "--out", str(tmp_path / "me_local"))
    assert q.returncode == 0, q.stderr
    for f in (tmp_path / "me_local").iterdir():
        assert (tmp_path / "me" / f.name).read_bytes() == f.read_bytes(), f.name


HTTP_SCRIPT = textwrap.dedent("""
    import json, sys
    from werkzeug.test import Client
    from testkit.apps import wsgi_app

    app, plugin = wsgi_app(sys.argv[1])
    c = Client(app)
    pre = "/data/plugin/xquant/"

    def get(route, **q):
        r = c.get(pre + route, query_string=q or None)
        assert r.status_code == 200, (route, r.status_code, r.get_data(as_text=True)[:500])
        return r
    out = {"reports": json.loads(get("reports").get_data(as_text=True))["reports"]}
    for rep in out["reports"]:
        s = json.loads(get("report", report=rep["id"]).get_data(as_text=True))
        g = json.loads(get("graph", report=rep["id"]).get_data(as_text=True))
        rep["degraded"] = s["degraded_layers"]
        rep["nodes"] = len(g["nodes"])
        rep["pngs"] = [get("artifact", report=rep["id"], id=a["id"]).get_data()[:8].hex() for a in s["artifacts"]]
    out["active"] = plugin.is_active()
    print("RESULT" + json.dumps(out))
""")


def test_http_api_over_the_s3_path(s3, generated_models):
    """The plugin without a data provider (``ReportStore`` + ``LocalEventSource`` on ``s3://``), in a child
    process so that TensorBoard's S3 file system is created with ``S3_ENDPOINT`` set."""
    env = dict(os.environ, **s3["env"])
    env["PYTHONPATH"] = os.pathsep.join(p for p in (env.get("PYTHONPATH"), str(REPO)) if p)
    p = subprocess.run([sys.executable, "-c", HTTP_SCRIPT, s3["url"]], capture_output=True, text=True, env=env,
                       timeout=180, cwd=str(REPO), stdin=subprocess.DEVNULL)
    assert p.returncode == 0, p.stderr[-4000:]
    out = json.loads(p.stdout.split("RESULT", 1)[1])
    assert out["active"] is True
    (rep,) = out["reports"]
    m = generated_models["model_60"]
    assert rep["name"] == m.rel and rep["degraded"] == m.mct_degraded and rep["nodes"] > m.layers
    assert rep["pngs"] == [tiny_png()[:8].hex()]


def test_tensorboard_with_an_s3_logdir_shows_the_tab(s3, generated_models, tmp_path):
    """``tensorboard --logdir s3://... --load_fast=false``: TensorBoard's Python loader, which reads through the
    same file-system layer (the Rust data server of ``--load_fast=true`` does not), the XQuant tab listed and
    enabled, the analysis and the PNG served."""
    with TensorBoardProcess(s3["url"], load_fast="false", reload_interval=2, env=s3["env"],
                            log_path=tmp_path / "tb.log") as tb:
        tb.poll("the XQuant tab enabled", lambda: (tb.xquant_listing() or {}).get("enabled"), deadline=120)
        (rep,) = tb.plugin_json("reports")["reports"]
        m = generated_models["model_60"]
        assert rep["name"] == m.rel
        s = tb.plugin_json("report", {"report": rep["id"]}, timeout=120)
        assert s["degraded_layers"] == m.mct_degraded
        (art,) = [a for a in s["artifacts"] if a["name"] == "quant_loss_mse_repr.png"]
        assert art["kind"] == "similarity_chart"
        status, ctype, body = tb.plugin_request("artifact", {"report": rep["id"], "id": art["id"]})
        assert (status, ctype, body) == (200, "image/png", tiny_png())
