"""The plugin as TensorBoard loads it, in TensorBoard's own WSGI router, without a tensorboard process.

``wsgi_app(logdir)`` finds the plugin class through its ``tensorboard_plugins`` entry point (what TensorBoard
itself does; so nothing here depends on where the backend's modules live) and mounts it with no data provider:
the plugin reads the logdir's files directly.  The router also serves ``/data/plugins_listing`` and
``/data/plugin_entry.html?name=xquant`` (with TensorBoard's Content-Security-Policy), so a browser can open the
panel page on it.
"""
from __future__ import annotations

from typing import Any, Callable, Tuple

ENTRY_POINT_GROUP = "tensorboard_plugins"
PLUGIN_NAME = "xquant"


def plugin_class() -> type:
    """The class registered as TensorBoard plugin ``xquant`` (setup.py's entry point); falls back to the source
    tree's ``tb_xquant_plugin.plugin.XQuantPlugin`` when the package is not installed."""
    from importlib import metadata

    try:
        eps = metadata.entry_points()
        group = eps.select(group=ENTRY_POINT_GROUP) if hasattr(eps, "select") else eps.get(ENTRY_POINT_GROUP, ())
        found = [ep for ep in group if ep.name == PLUGIN_NAME]
    except Exception:  # noqa: BLE001 - unreadable metadata: use the source tree
        found = []
    if found:
        return found[0].load()
    from tb_xquant_plugin.plugin import XQuantPlugin

    return XQuantPlugin


def make_plugin(logdir: str) -> Any:
    from tensorboard.plugins import base_plugin

    return plugin_class()(base_plugin.TBContext(logdir=str(logdir), data_provider=None))


def wsgi_app(logdir: str, path_prefix: str = "") -> Tuple[Callable, Any]:
    """(TensorBoard's WSGI app holding only the plugin, the plugin instance)."""
    from tensorboard.backend import application

    plugin = make_plugin(logdir)
    return application.TensorBoardWSGI([plugin], path_prefix=path_prefix.rstrip("/")), plugin
