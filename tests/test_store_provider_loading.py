"""A report built while TensorBoard's data provider is still loading is built again once the runs it depends on
have loaded: not only its own events and the stage run it chose, but every run it read (the stage graphs it
scored to choose its stage logs) and the names of the runs beside it (a stage run not listed yet).

TensorBoard's own multiplexer and data provider, in process: runs are added to the multiplexer and loaded one
step at a time, as its reload thread does on a busy machine.  The demo's outlier scenario gets a decoy stage-log
folder (another scenario's, named to sort last): until the real stage runs are loaded, the decoy is the only
candidate with a graph, and the report is built from the wrong stage graph."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from tb_xquant_plugin.readers import events
from tb_xquant_plugin.server.store import ReportStore

pytest.importorskip("tensorboard.backend.event_processing.data_provider")
from tensorboard import context  # noqa: E402
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer  # noqa: E402

DECOY = "logs_99999999_999999"  # sorts after MCT's logs_<date>_<time> folders: the tie-break's choice


@pytest.fixture
def logdir_with_decoy(demo_logdir, tmp_path):
    root = tmp_path / "logs"
    shutil.copytree(demo_logdir / "outlier", root / "outlier")
    (clean_logs,) = (demo_logdir / "clean" / "mct_logs").glob("logs_*")
    shutil.copytree(clean_logs, root / "outlier" / "mct_logs" / DECOY)
    return root


def _runs(root: Path):
    """run name -> path of every folder holding event files, as TensorBoard names them."""
    return {str(p.parent.relative_to(root)): str(p.parent) for p in root.rglob("events.out.tfevents.*")}


@pytest.mark.parametrize("real_stage_runs", ["unlisted", "listed_not_loaded"])
def test_report_is_rebuilt_once_its_stage_logs_load(logdir_with_decoy, real_stage_runs):
    root = logdir_with_decoy
    local = ReportStore(str(root), lambda: events.LocalEventSource(str(root)), background=False)
    (rid,) = local._entries()
    want = local.report(rid)
    assert want.stage_run and DECOY not in want.stage_run
    real_folder = want.stage_run.rsplit("/", 1)[0]

    runs = _runs(root)
    real = {n: p for n, p in runs.items() if n.startswith(real_folder + "/")}
    assert real, runs
    held = root.parent / "not_written_yet"
    if real_stage_runs == "listed_not_loaded":  # the folders are there, their event files are not written yet
        for name, path in real.items():
            for f in Path(path).glob("events.out.tfevents.*"):
                (held / name).mkdir(parents=True, exist_ok=True)
                f.rename(held / name / f.name)
    mux = plugin_event_multiplexer.EventMultiplexer()
    for name, path in runs.items():
        if name not in real or real_stage_runs == "listed_not_loaded":
            mux.AddRun(path, name)
    mux.Reload()
    provider = data_provider.MultiplexerDataProvider(mux, str(root))
    store = ReportStore(str(root), lambda: events.DataProviderSource(provider, context.RequestContext()),
                        background=False)
    store.FINGERPRINT_SECONDS = 0.0  # ask the provider on every call (the deadline is not under test)

    early = store.report(rid)
    if real_stage_runs == "unlisted":
        assert early.stage_run and DECOY in early.stage_run  # built from the only stage graph there was
    else:  # the manifest names the real stage logs: chosen, but their graphs are not there yet
        assert early.stage_run == want.stage_run
        assert [p.what for p in early.problems] != [p.what for p in want.problems]

    for name, path in real.items():
        for f in (held / name).glob("events.out.tfevents.*"):
            f.rename(Path(path) / f.name)
        mux.AddRun(path, name)  # a no-op for a run already added
    mux.Reload()
    late = store.report(rid)
    assert late is not early
    assert late.stage_run == want.stage_run
    assert [p.what for p in late.problems] == [p.what for p in want.problems]
    assert set(late.histograms) == set(want.histograms)
    assert {k: q.activation_threshold for k, q in late.quant.items()} == {k: q.activation_threshold for k, q in want.quant.items()}
    assert store.report(rid) is late  # and kept, now that nothing changes
