"""``tb-xquant report --fail-on``, ``--format`` and ``--out`` through the installed console script (what a CI job
runs), on torch-free logdirs in MCT's format (``mct_format_logdir``), on crafted broken runs, and on the MCT demo.

Exit codes (docs/cli.md): 0 passed, 2 bad usage, 3 a condition held, 4 nothing (or not everything) could be judged.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from test_cli_manual import console_script

# Thresholds under which no layer of any report is degraded (MCT's rule: mse >= t, cs / sqnr <= t).
NOTHING_DEGRADED = ["--threshold", "mse=1e300", "--threshold", "cs=-1e300", "--threshold", "sqnr=-1e300"]


def tbx(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHONIOENCODING="utf-8")
    return subprocess.run([console_script(), *args], capture_output=True, text=True, timeout=120, env=env,
                          cwd=str(cwd or Path(__file__).resolve().parent), stdin=subprocess.DEVNULL)


def json_reports(*args: str):
    p = tbx("report", *args, "--format", "json")
    assert p.returncode == 0, p.stderr
    return {r["name"]: r for r in json.loads(p.stdout)}


def failed_lines(stderr: str, cond: str):
    """report name -> reason, from the ``FAILED --fail-on COND: REPORT: why`` lines."""
    out = {}
    prefix = "tb-xquant: FAILED --fail-on %s: " % cond
    for line in stderr.splitlines():
        if line.startswith(prefix):
            name, why = line[len(prefix):].split(": ", 1)
            out[name] = why
    return out


def copy_report(src_logdir: Path, model: str, dst: Path) -> Path:
    """A copy of one generated model (report dir + stage logs) as ``dst/<model>``; returns its report dir."""
    shutil.copytree(src_logdir / model, dst / model, ignore=shutil.ignore_patterns(".bench_done"))
    return dst / model / "xquant_report"


def set_manifest(report_dir: Path, **fields):
    path = report_dir / "tb_xquant_manifest.json"
    data = json.loads(path.read_text()) if path.is_file() else {"schema": 1}
    data.update(fields)
    path.write_text(json.dumps(data))


def strip_graph(run_dir: Path) -> None:
    """Rewrite a run's event files without their graph: what an XQuant run that wrote its float histograms and
    then crashed leaves behind."""
    from tensorboard.backend.event_processing import event_file_loader
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    kept = []
    for f in sorted(run_dir.iterdir()):
        kept += [ev for ev in event_file_loader.LegacyEventFileLoader(str(f)).Load() if not ev.HasField("graph_def")]
        f.unlink()
    w = EventFileWriter(str(run_dir))
    for ev in kept:
        w.add_event(ev)
    w.close()


# ------------------------------------------------------------------------------------------------------------
# the conditions, on the generated logdir
# ------------------------------------------------------------------------------------------------------------
def test_degraded_fails_with_exit_3_and_names_every_report(mct_format_logdir, generated_models):
    p = tbx("report", str(mct_format_logdir), "--fail-on", "degraded")
    assert p.returncode == 3, p.stderr
    failed = failed_lines(p.stderr, "degraded")
    assert set(failed) == {m.rel for m in generated_models.values() if m.mct_degraded}
    for m in generated_models.values():
        assert failed[m.rel].startswith("%d of %d layers degraded: %s" % (
            len(m.mct_degraded), m.layers, m.mct_degraded[0]))
    assert "exit 3: a --fail-on condition held" in p.stderr
    assert "Traceback" not in p.stderr
    # the report itself is still printed, on standard output
    assert "degraded: %d of" % len(generated_models["model_60"].mct_degraded) in p.stdout


def test_gates_pass_with_exit_0_when_nothing_holds(mct_format_logdir):
    p = tbx("report", str(mct_format_logdir), *NOTHING_DEGRADED, "--fail-on", "degraded")
    assert p.returncode == 0, p.stderr
    assert "FAILED" not in p.stderr
    assert "passed --fail-on degraded (2 reports)" in p.stderr
    # MCT's own troubleshoot_report.json verdicts stay whatever the thresholds: its judges still fail the gate
    p = tbx("report", str(mct_format_logdir), *NOTHING_DEGRADED, "--fail-on", "degraded,judge:outlier_removal")
    assert p.returncode == 3, p.stderr
    assert set(failed_lines(p.stderr, "judge:outlier_removal")) == {"model_60/xquant_report", "model_200/xquant_report"}
    assert not failed_lines(p.stderr, "degraded")


def test_verdict_and_judge_conditions_follow_the_verdicts(mct_format_logdir):
    reports = json_reports(str(mct_format_logdir))
    p = tbx("report", str(mct_format_logdir), "--fail-on", "verdict,judge:unbalanced_concatenation",
            "--fail-on", "judge:general")
    assert p.returncode == 3, p.stderr
    verdict = failed_lines(p.stderr, "verdict")
    concat = failed_lines(p.stderr, "judge:unbalanced_concatenation")
    general = failed_lines(p.stderr, "judge:general")
    for name, r in reports.items():
        actionable = [v for v in r["verdicts"] if v["judge"] != "general" or v["snippet"]]
        assert (name in verdict) == bool(actionable), name
        if actionable:
            assert verdict[name].startswith("%d actionable verdict" % len(actionable))
        n_concat = sum(1 for v in r["verdicts"] if v["judge"] == "unbalanced_concatenation")
        assert (name in concat) == bool(n_concat)
        if n_concat:
            assert concat[name].startswith("%d unbalanced_concatenation verdict" % n_concat)
        assert (name in general) == any(v["judge"] == "general" for v in r["verdicts"])


def test_only_general_advice_is_not_an_actionable_verdict(tmp_path, generated_models):
    """A report without graph, histograms or MCT's troubleshoot file, and nothing degraded: its one verdict is the
    general 'no degraded layer' advice, which `verdict` does not count; `problem` sees the missing graph."""
    rd = tmp_path / "plain" / "xquant_report"
    rd.mkdir(parents=True)
    shutil.copy(generated_models["model_60"].dir / "quant_report.json", rd)
    args = ["report", str(tmp_path), *NOTHING_DEGRADED]
    r = json_reports(*args[1:])["plain/xquant_report"]
    assert [v["judge"] for v in r["verdicts"]] == ["general"] and r["verdicts"][0]["snippet"] is None
    p = tbx(*args, "--fail-on", "verdict,degraded")
    assert p.returncode == 0, p.stderr
    p = tbx(*args, "--fail-on", "problem")
    assert p.returncode == 3, p.stderr
    assert "no XQuant graph" in failed_lines(p.stderr, "problem")["plain/xquant_report"]
    p = tbx(*args, "--fail-on", "judge:general")
    assert p.returncode == 3, p.stderr


@pytest.mark.parametrize("float_acc, quant_acc, allowed, fails", [
    (0.76, 0.70, "5", True),      # fractions: 6 points
    (0.76, 0.70, "6.5", False),
    (76.0, 75.2, "1", False),     # percent: 0.8 points
    (76.0, 75.2, "0.5", True),
    (0.5, 0.5, "0", False),       # no drop passes accuracy-drop=0
])
def test_accuracy_drop_reads_fractions_and_percent(tmp_path, mct_format_logdir, float_acc, quant_acc, allowed, fails):
    rd = copy_report(mct_format_logdir, "model_200", tmp_path)
    set_manifest(rd, accuracy={"float": float_acc, "quantized": quant_acc, "dataset": "val"})
    p = tbx("report", str(tmp_path), "--fail-on", "accuracy-drop=" + allowed)
    assert p.returncode == (3 if fails else 0), p.stderr
    if fails:
        why = failed_lines(p.stderr, "accuracy-drop=%g" % float(allowed))["model_200/xquant_report"]
        drop = (float_acc - quant_acc) * (100 if float_acc <= 1 else 1)
        assert why.startswith("accuracy dropped %.4g points" % drop), why


def test_accuracy_drop_without_accuracy_is_not_a_pass(mct_format_logdir):
    p = tbx("report", str(mct_format_logdir), "--fail-on", "accuracy-drop=100")
    assert p.returncode == 3, p.stderr
    failed = failed_lines(p.stderr, "accuracy-drop=100")
    assert set(failed) == {"model_60/xquant_report", "model_200/xquant_report"}
    assert all("no float and quantized accuracy" in why for why in failed.values())


# ------------------------------------------------------------------------------------------------------------
# runs that cannot be judged: exit 4, never a pass
# ------------------------------------------------------------------------------------------------------------
def test_empty_folder_is_exit_4(tmp_path):
    p = tbx("report", str(tmp_path), "--fail-on", "degraded")
    assert p.returncode == 4, p.stderr
    assert "no XQuant report found" in p.stderr
    p = tbx("report", str(tmp_path))  # without a gate too: there is nothing to report
    assert p.returncode == 4


def test_crashed_xquant_run_beside_a_good_report_is_exit_4(tmp_path, mct_format_logdir):
    """model_200 is fine (and passes the gate); model_60's XQuant step wrote its histograms and died before the
    graph and quant_report.json.  Discovery cannot list it as a report, and the gate must not pass."""
    copy_report(mct_format_logdir, "model_200", tmp_path)
    crashed = copy_report(mct_format_logdir, "model_60", tmp_path)
    for name in ("quant_report.json", "troubleshoot_report.json"):
        (crashed / name).unlink()
    strip_graph(crashed / "xquant")
    p = tbx("report", str(tmp_path), *NOTHING_DEGRADED, "--fail-on", "degraded")
    assert p.returncode == 4, p.stderr
    assert ("cannot judge: model_60/xquant_report/xquant: an XQuant run without quant_report.json or per-layer "
            "metrics") in p.stderr
    assert "passed" not in p.stderr
    assert "!! model_60/xquant_report/xquant" in p.stdout  # the text report says it too


def test_quantization_without_an_xquant_report_is_exit_4(tmp_path, mct_format_logdir):
    """Only the MCT stage logs: the quantization ran, the XQuant report was never written."""
    (tmp_path / "model_60").mkdir()
    shutil.copytree(mct_format_logdir / "model_60" / "mct_logs", tmp_path / "model_60" / "mct_logs")
    copy_report(mct_format_logdir, "model_200", tmp_path)
    p = tbx("report", str(tmp_path), *NOTHING_DEGRADED, "--fail-on", "degraded")
    assert p.returncode == 4, p.stderr
    assert "cannot judge: model_60/mct_logs/logs_01012025_000000/tensorboard_logs: MCT stage logs" in p.stderr
    # a second quantization logged beside a report is that report's (re-runs), not an unfinished run
    shutil.copytree(mct_format_logdir / "model_60" / "mct_logs", tmp_path / "model_200" / "mct_logs_old")
    shutil.rmtree(tmp_path / "model_60")
    p = tbx("report", str(tmp_path), *NOTHING_DEGRADED, "--fail-on", "degraded")
    assert p.returncode == 0, p.stderr


def test_truncated_quant_report_without_graph_is_exit_4(tmp_path, generated_models):
    rd = tmp_path / "half" / "xquant_report"
    rd.mkdir(parents=True)
    text = (generated_models["model_60"].dir / "quant_report.json").read_text()
    (rd / "quant_report.json").write_text(text[: len(text) // 2])
    p = tbx("report", str(tmp_path), "--fail-on", "degraded", "--format", "json")
    assert p.returncode == 4, p.stderr
    assert "cannot judge half/xquant_report: no per-layer metrics to judge (quant_report.json is not valid JSON" \
        in p.stderr
    assert json.loads(p.stdout)[0]["layer_count"] == 0  # the JSON still lists it, with its problems


# ------------------------------------------------------------------------------------------------------------
# usage errors: exit 2, a message, no traceback
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("args, message", [
    (["--fail-on", "bogus"], "unknown condition 'bogus'"),
    (["--fail-on", "judge:nope"], "unknown judge 'nope'"),
    (["--fail-on", "accuracy-drop=lots"], "must be a number of points"),
    (["--fail-on", "accuracy-drop=-1"], "must be a number of points"),
    (["--json", "--format", "md"], "--json and --format md disagree"),
    (["--format", "pdf"], "invalid choice"),
    (["--threshold", "mse=abc", "--fail-on", "degraded"], "mse"),
])
def test_bad_usage_is_exit_2(mct_format_logdir, args, message):
    p = tbx("report", str(mct_format_logdir), *args)
    assert p.returncode == 2, (p.returncode, p.stderr)
    assert message in p.stderr
    assert "Traceback" not in p.stderr
    assert "FAILED" not in p.stderr


def test_missing_path_is_exit_2(tmp_path):
    p = tbx("report", str(tmp_path / "nope"), "--fail-on", "degraded")
    assert p.returncode == 2 and "no such path" in p.stderr


# ------------------------------------------------------------------------------------------------------------
# formats and --out
# ------------------------------------------------------------------------------------------------------------
def test_formats_and_out_file(tmp_path, mct_format_logdir, generated_models):
    base = ["report", str(mct_format_logdir)]
    as_json = tbx(*base, "--json")
    assert as_json.returncode == 0, as_json.stderr
    assert tbx(*base, "--format", "json").stdout == as_json.stdout  # --json is --format json
    assert {r["name"] for r in json.loads(as_json.stdout)} == {m.rel for m in generated_models.values()}
    for fmt, marker in (("json", '"degraded_layers"'), ("md", "# XQuant report"), ("text", "== model_60/")):
        out = tmp_path / ("report." + fmt)
        p = tbx(*base, "--format", fmt, "--out", str(out), "--fail-on", "degraded")
        assert p.returncode == 3, p.stderr
        assert p.stdout == ""  # the report went to the file; the gate's lines to standard error
        assert marker in out.read_text(encoding="utf-8")
        if fmt != "text":  # the same document as on standard output
            expected = as_json.stdout if fmt == "json" else tbx(*base, "--format", fmt).stdout
            assert out.read_text(encoding="utf-8") == expected
    p = tbx(*base, "--out", str(tmp_path / "no-such-dir" / "r.md"), "--format", "md")
    assert p.returncode == 2 and "cannot write" in p.stderr


# ------------------------------------------------------------------------------------------------------------
# the MCT demo
# ------------------------------------------------------------------------------------------------------------
@pytest.mark.mct
def test_demo_gates(demo_logdir, scenarios):
    p = tbx("report", str(demo_logdir), "--fail-on", "degraded", "--format", "json")
    assert p.returncode == 3, p.stderr
    failed = failed_lines(p.stderr, "degraded")
    assert set(failed) == {sc.rel for sc in scenarios.values() if sc.mct_degraded}
    for sc in scenarios.values():
        if sc.mct_degraded:
            assert failed[sc.rel].startswith("%d of" % len(sc.mct_degraded))
    # every scenario's own troubleshoot_report.json judge is a failing judge:<name> gate for it
    for judge in ("outlier_removal", "shift_negative_activation", "unbalanced_concatenation",
                  "mixed_precision_with_model_output_loss_objective"):
        p = tbx("report", str(demo_logdir), "--fail-on", "judge:" + judge, "--format", "json")
        failed = failed_lines(p.stderr, "judge:" + judge)
        for sc in scenarios.values():
            if (sc.troubleshoot or {}).get(judge):
                assert sc.rel in failed, (judge, sc.name, p.stderr)
    # accuracy is in the demo's manifests: the gate is computed, not refused
    accs = {sc.rel: sc.manifest.get("accuracy") for sc in scenarios.values()}
    assert all(a and a.get("float") is not None and a.get("quantized") is not None for a in accs.values())
    p = tbx("report", str(demo_logdir), "--fail-on", "accuracy-drop=0", "--format", "md")
    failed = failed_lines(p.stderr, "accuracy-drop=0")
    for rel, a in accs.items():
        scale = 100 if max(abs(a["float"]), abs(a["quantized"])) <= 1 else 1
        assert (rel in failed) == ((a["float"] - a["quantized"]) * scale > 0), (rel, a)
    assert "no float and quantized accuracy" not in p.stderr
    assert p.returncode == (3 if failed else 0)
