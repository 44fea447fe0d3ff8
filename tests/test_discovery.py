"""Report discovery: which folders are XQuant reports, and what happens when the manifest points
at stage logs that are not there.

A folder is a report when it holds ``quant_report.json`` or an ``xquant`` run whose graph carries
MCT's per-layer metrics (``xquant_repr`` / ``xquant_val`` node attributes).  The event files used
here are MCT's own, copied from the demo."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tb_xquant_plugin.producers.mct_pytorch import build_report
from tb_xquant_plugin.producers import mct_files as art
from tb_xquant_plugin.model import manifest as mf
from tb_xquant_plugin.readers import events, files
from tb_xquant_plugin.readers.events import LocalEventSource


def events_in(folder: Path) -> Path:
    (p,) = [p for p in folder.iterdir() if "tfevents" in p.name]
    return p


def stage_events(scenario_dir: Path, stage: str = "initial_graph") -> Path:
    (d,) = scenario_dir.glob("mct_logs/logs_*/tensorboard_logs/%s" % stage)
    return events_in(d)


@pytest.fixture(autouse=True)
def fresh_scan_cache():
    events._marker_scans.clear()
    yield
    events._marker_scans.clear()


def discover(logdir: Path):
    return art.discover_report_dirs(str(logdir), LocalEventSource(str(logdir)).runs())


def test_a_run_merely_named_xquant_is_not_a_report(tmp_path, demo_logdir, make_api):
    clean = demo_logdir / "clean"
    # MCT's stage graph (no per-layer metrics) in a folder named xquant, no quant_report.json
    (tmp_path / "impostor" / "xquant").mkdir(parents=True)
    shutil.copy(stage_events(clean), tmp_path / "impostor" / "xquant")
    # the real XQuant events without quant_report.json: still a report (the graph carries the metrics)
    (tmp_path / "graph_only").mkdir()
    shutil.copytree(clean / "xquant_report" / "xquant", tmp_path / "graph_only" / "xquant")
    # quant_report.json and no events at all: a report
    (tmp_path / "json_only").mkdir()
    shutil.copy(clean / "xquant_report" / "quant_report.json", tmp_path / "json_only")
    # the impostor's events next to a quant_report.json: a report (by its JSON)
    (tmp_path / "impostor_with_json" / "xquant").mkdir(parents=True)
    shutil.copy(stage_events(clean), tmp_path / "impostor_with_json" / "xquant")
    shutil.copy(clean / "xquant_report" / "quant_report.json", tmp_path / "impostor_with_json")

    assert sorted(discover(tmp_path)) == ["graph_only", "impostor_with_json", "json_only"]
    api = make_api(str(tmp_path))
    assert sorted(api.report_ids()) == ["graph_only", "impostor_with_json", "json_only"]


def test_a_growing_event_file_becomes_a_report_when_the_graph_arrives(tmp_path, demo_logdir, monkeypatch):
    clean = demo_logdir / "clean"
    run = tmp_path / "late" / "xquant"
    run.mkdir(parents=True)
    target = run / "events.out.tfevents.1.local"
    # small chunks so that the attribute names straddle chunk boundaries
    monkeypatch.setattr(files, "CHUNK", 7)
    target.write_bytes(stage_events(clean).read_bytes())  # a first event file without metrics
    assert discover(tmp_path) == {}
    scanned = events._marker_scans[str(target)][1]
    assert scanned == target.stat().st_size
    # the XQuant graph is appended (records are self-delimiting: two event streams concatenate)
    with open(target, "ab") as f:
        f.write(events_in(clean / "xquant_report" / "xquant").read_bytes())
    reads = []
    real_chunks = files.chunks
    monkeypatch.setattr(files, "chunks", lambda path, offset=0, limit=None: reads.append(offset) or real_chunks(path, offset, limit))
    assert list(discover(tmp_path)) == ["late"]
    # only the new bytes were searched (plus an overlap as long as a marker)
    assert reads == [scanned - (max(len(m) for m in art.XQUANT_ATTR_MARKERS) - 1)]
    # the file is readable by the report builder like any report
    r = build_report(LocalEventSource(str(tmp_path)), str(tmp_path), "late", str(tmp_path / "late"))
    assert r.has_graph and r.layers


def test_discovery_does_not_reread_unchanged_event_files(tmp_path, demo_logdir, monkeypatch):
    clean = demo_logdir / "clean"
    (tmp_path / "impostor" / "xquant").mkdir(parents=True)
    shutil.copy(stage_events(clean), tmp_path / "impostor" / "xquant")
    shutil.copytree(clean / "xquant_report" / "xquant", tmp_path / "graph_only" / "xquant")
    first = discover(tmp_path)
    reads = []
    real_chunks = files.chunks
    monkeypatch.setattr(files, "chunks", lambda path, offset=0, limit=None: reads.append(path) or real_chunks(path, offset, limit))
    for _ in range(3):
        assert discover(tmp_path) == first == {"graph_only": str(tmp_path / "graph_only")}
    assert reads == []
    # a file replaced by another one (new inode) is searched again
    p = events_in(tmp_path / "impostor" / "xquant")
    tmp = p.with_name(p.name + ".tmp")
    shutil.copy(events_in(clean / "xquant_report" / "xquant"), tmp)
    tmp.replace(p)
    assert sorted(discover(tmp_path)) == ["graph_only", "impostor"]
    assert reads == [str(p)]


def test_manifest_stage_logs_that_match_no_run_are_a_problem(tmp_path, demo_logdir):
    src = demo_logdir / "outlier"
    shutil.copytree(src, tmp_path / "outlier")
    manifest_path = tmp_path / "outlier" / "xquant_report" / mf.FILENAME
    manifest = json.loads(manifest_path.read_text())
    rel = "outlier/xquant_report"

    def build():
        return build_report(LocalEventSource(str(tmp_path)), str(tmp_path), rel, str(tmp_path / rel))

    good = build()
    assert good.problems == [] and good.stage_run

    manifest["stage_logs"] = "../moved_elsewhere/tensorboard_logs"
    manifest_path.write_text(json.dumps(manifest))
    r = build()
    (p,) = [p for p in r.problems if "stage_logs" in p.what]
    assert "moved_elsewhere" in p.what and "matches no" in p.what and mf.FILENAME in p.hint
    # ... and the stage logs are still found by the name rule: the same run as with the right path
    assert r.stage_run == good.stage_run
    assert {k: v.to_json() for k, v in r.quant.items()} == {k: v.to_json() for k, v in good.quant.items()}


def test_manifest_stage_logs_without_any_stage_run_say_both(tmp_path, demo_logdir):
    """No stage logs at all: the manifest's path is named, and the usual 'no stage logs' problem stays."""
    src = demo_logdir / "outlier" / "xquant_report"
    shutil.copytree(src, tmp_path / "only_report" / "xquant_report", ignore=shutil.ignore_patterns("logs_*"))
    rel = "only_report/xquant_report"
    r = build_report(LocalEventSource(str(tmp_path)), str(tmp_path), rel, str(tmp_path / rel))
    whats = [p.what for p in r.problems]
    assert any("stage_logs" in w and "matches no" in w for w in whats)
    assert any(w.startswith("no MCT stage logs found") for w in whats)
    assert r.stage_run is None
