"""Helpers shared by the tests that run MCT or read its stage logs directly (not through the plugin's readers)."""
from __future__ import annotations

import contextlib
import glob
import logging
import os
from typing import Dict, Iterator, List


def stage_nodes(paths: List[str]) -> Dict[str, object]:
    """short node name -> NodeDef of the graphs in these MCT stage-log event files."""
    from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
    from tensorboard.compat.proto import event_pb2, graph_pb2

    nodes = {}
    for path in paths:
        for raw in RawEventFileLoader(path).Load():
            ev = event_pb2.Event.FromString(raw)
            if ev.HasField("graph_def"):
                for n in graph_pb2.GraphDef.FromString(ev.graph_def).node:
                    nodes[n.name.rsplit("/", 1)[-1]] = n
    return nodes


def stage_event_files(stage_dir: str) -> List[str]:
    return sorted(glob.glob(os.path.join(stage_dir, "*tfevents*")))


@contextlib.contextmanager
def mct_logging_restored() -> Iterator[None]:
    """MCT's log folder, its logger's handlers and matplotlib's figures are process-global: put them back."""
    from model_compression_toolkit.logger import Logger

    logger = logging.getLogger("Model Compression Toolkit")
    handlers, log_path = list(logger.handlers), Logger.LOG_PATH
    try:
        yield
    finally:
        for handler in list(logger.handlers):
            if handler not in handlers:
                logger.removeHandler(handler)
                handler.close()
        Logger.LOG_PATH = log_path
        try:
            import matplotlib.pyplot as plt

            plt.close("all")
        except ImportError:  # pragma: no cover
            pass
