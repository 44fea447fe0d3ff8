"""The TensorBoard plugin: an XQuant tab (dynamic plugin, ES module in an iframe)."""
from __future__ import annotations

from tensorboard.plugins import base_plugin

from tb_xquant_plugin.readers.events import DataProviderSource, LocalEventSource
from tb_xquant_plugin.server.app import Routes
from tb_xquant_plugin.server.store import ReportStore

PLUGIN_NAME = "xquant"


class XQuantPlugin(base_plugin.TBPlugin):
    plugin_name = PLUGIN_NAME

    def __init__(self, context: base_plugin.TBContext):
        self._logdir = context.logdir or ""
        provider = context.data_provider
        if provider is not None:
            from tensorboard import context as tb_context

            def source():
                return DataProviderSource(provider, tb_context.RequestContext(), "", logdir=self._logdir or None)
        else:
            def source():
                return LocalEventSource(self._logdir)
        self.store = ReportStore(self._logdir, source, background=bool(self._logdir))
        self._routes = Routes(self.store)

    def get_plugin_apps(self):
        return self._routes.apps()

    def is_active(self):
        # Never walks the logdir here: the store's background thread keeps this answer fresh.
        return self.store.has_reports()

    def data_plugin_names(self):
        return ()

    def frontend_metadata(self):
        return base_plugin.FrontendMetadata(es_module_path="/static/index.js", tab_name="XQuant")
