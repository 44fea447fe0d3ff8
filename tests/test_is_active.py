"""``XQuantPlugin.is_active()`` answers at once, whatever discovery is doing.

TensorBoard calls ``is_active()`` from its request threads; it must never wait for a walk of the
logdir or for the data provider.  Here TensorBoard's own data provider (an EventMultiplexer over a
copy of one demo scenario) is wrapped so that ``list_runs`` -- the first thing the background
discovery asks -- blocks until the test releases it.  No sleeps: the test waits on events the
provider sets, each with a deadline that only fails the test instead of hanging it."""
from __future__ import annotations

import shutil
import threading

import pytest

DEADLINE = 60.0  # seconds; a deadline for a failing test, never a synchronisation


class GatedProvider:
    """A data provider whose ``list_runs`` waits for ``release``; every other call goes to the real one."""

    def __init__(self, inner):
        self._inner = inner
        self.entered = threading.Event()  # list_runs has been called (discovery is under way)
        self.release = threading.Event()
        self.data_read = threading.Event()  # event data asked for: discovery is over, reports are being built

    def list_runs(self, ctx, *, experiment_id):
        self.entered.set()
        if not self.release.wait(DEADLINE):
            raise TimeoutError("the test never released list_runs")
        return self._inner.list_runs(ctx, experiment_id=experiment_id)

    def __getattr__(self, name):
        attr = getattr(self._inner, name)
        if name.startswith(("read_", "list_")) and callable(attr):
            def call(*args, **kwargs):
                self.data_read.set()
                return attr(*args, **kwargs)
            return call
        return attr


def answer_within(fn, seconds: float):
    """``fn()`` run in a thread; fails if it has not returned within ``seconds``."""
    out = {}
    t = threading.Thread(target=lambda: out.setdefault("value", fn()), daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "is_active() did not return while discovery was blocked"
    return out["value"]


@pytest.fixture
def gated_plugin(tmp_path, demo_logdir):
    from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
    from tensorboard.plugins import base_plugin

    from tb_xquant_plugin.plugin import XQuantPlugin

    logdir = tmp_path / "logdir"
    shutil.copytree(demo_logdir / "clean", logdir / "clean")
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(str(logdir))
    multiplexer.Reload()
    provider = GatedProvider(data_provider.MultiplexerDataProvider(multiplexer, str(logdir)))
    plugin = XQuantPlugin(base_plugin.TBContext(logdir=str(logdir), data_provider=provider))
    try:
        yield plugin, provider
    finally:
        provider.release.set()  # let the background thread go on (it is a daemon)


def test_is_active_answers_while_discovery_is_blocked(gated_plugin):
    plugin, provider = gated_plugin
    assert provider.entered.wait(DEADLINE), "the background discovery never asked for the runs"
    # discovery is stuck inside the data provider: is_active still answers, and says nothing is found yet
    for _ in range(3):
        assert answer_within(plugin.is_active, 5.0) is False
    assert not provider.release.is_set() and not provider.data_read.is_set()


def test_is_active_turns_true_once_the_background_refresh_finds_the_report(gated_plugin):
    plugin, provider = gated_plugin
    assert provider.entered.wait(DEADLINE)
    assert answer_within(plugin.is_active, 5.0) is False
    provider.release.set()
    # the store asks for event data only after discovery has stored what it found
    assert provider.data_read.wait(DEADLINE), "the background refresh never got past discovery"
    assert plugin.is_active() is True
    assert list(plugin.store.report_dirs()) == ["clean/xquant_report"]
