"""Under TensorBoard the store checks a settled report (the provider's answer unchanged for SETTLE_SECONDS) against
the data provider (every histogram tag of its runs: 50-150 ms at 5,000 layers) off the request: a request after
the check expired is answered with the cached report at once, a thread asks the provider again, and what it finds
decides the next request.  A report whose runs are still loading, and every report without revalidation (the
benches, the CLI), is checked in time, as before."""
from __future__ import annotations

import shutil
import threading

import pytest

from tb_xquant_plugin.readers.events import EventSource, LocalEventSource
from tb_xquant_plugin.server.store import ReportStore


class GatedSource(EventSource):
    """The demo's events read directly, with a provider-like fingerprint that waits for ``gate`` and records the
    thread that asked."""

    def __init__(self, logdir, state):
        self.inner = LocalEventSource(logdir)
        self.state = state

    def runs(self):
        return self.inner.runs()

    def graph(self, run):
        return self.inner.graph(run)

    def histograms(self, run):
        return self.inner.histograms(run)

    def fingerprint(self, runs):
        self.state["askers"].append(threading.current_thread())
        assert self.state["gate"].wait(timeout=60), "the test never opened the gate"
        return (self.state["version"],)


def _fingerprint_threads():
    return [t for t in threading.enumerate() if t.name == "tb-xquant-fingerprint"]


@pytest.fixture
def logdir(demo_logdir, tmp_path):
    root = tmp_path / "logs"
    shutil.copytree(demo_logdir / "clean", root / "clean")
    return root


def _store(logdir, state, revalidate, settle=0.0):
    store = ReportStore(str(logdir), lambda: GatedSource(str(logdir), state), background=False, revalidate=revalidate)
    store.FINGERPRINT_SECONDS = 0.0  # every check has expired: what happens then is under test
    store.SETTLE_SECONDS = settle
    return store


def _built(logdir, revalidate, settle=0.0):
    """A store over the demo report with the provider's answer at version 1, the report built once."""
    state = {"gate": threading.Event(), "version": 1, "askers": []}
    state["gate"].set()
    store = _store(logdir, state, revalidate=revalidate, settle=settle)
    (rid,) = store.ids()
    return state, store, rid, store.report(rid)


def test_an_expired_check_does_not_hold_the_request(logdir):
    state, store, rid, first = _built(logdir, revalidate=True)
    # nothing cached: asked in time (before the build, and for the runs the build read)
    assert first is not None and state["askers"] and set(state["askers"]) == {threading.current_thread()}
    asked = len(state["askers"])
    # the provider has more now, and answers slowly
    state["gate"].clear()
    state["version"] = 2
    again = store.report(rid)
    assert again is first  # answered from the cache, without waiting for the provider
    threads = _fingerprint_threads()
    assert len(threads) == 1 and threading.current_thread() not in state["askers"][asked:]  # off the request
    assert store.report(rid) is first and _fingerprint_threads() == threads  # one question at a time
    state["gate"].set()
    threads[0].join(timeout=60)
    assert not threads[0].is_alive() and state["askers"][asked:] == threads  # once
    rebuilt = store.report(rid)
    assert rebuilt is not first and rebuilt.id == first.id  # the new answer rebuilt it


def test_without_revalidation_every_request_asks_in_time(logdir):
    state, store, rid, first = _built(logdir, revalidate=False)
    state["version"] = 2
    assert store.report(rid) is not first
    assert state["askers"] and all(t is threading.current_thread() for t in state["askers"])
    assert not _fingerprint_threads()


def test_a_report_still_loading_is_checked_in_time(logdir):
    """The provider's answer changed less than SETTLE_SECONDS ago (TensorBoard is loading the runs): an expired
    check is made on the request, so the answer is never older than what the provider has."""
    state, store, rid, first = _built(logdir, revalidate=True, settle=3600.0)
    state["version"] = 2
    assert store.report(rid) is not first
    assert all(t is threading.current_thread() for t in state["askers"]) and not _fingerprint_threads()
