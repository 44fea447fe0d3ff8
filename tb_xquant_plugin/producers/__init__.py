"""Producer adapters: one per toolchain, listed once in :data:`PRODUCERS`.

``discover`` asks every adapter for its reports; ``build`` hands a report folder to the adapter that
found it.  Adding a toolchain is one new module with a :class:`~tb_xquant_plugin.producers.base.Producer`
subclass and one line here (docs/architecture.md)."""
from __future__ import annotations

import os
from typing import Dict, List, Optional, Tuple

from tb_xquant_plugin.model.report import Report
from tb_xquant_plugin.producers import mct_files
from tb_xquant_plugin.producers.base import Producer
from tb_xquant_plugin.producers.mct_keras import MCTKeras
from tb_xquant_plugin.producers.mct_pytorch import MCTPyTorch
from tb_xquant_plugin.producers.onnx_qdq import OnnxQDQ
from tb_xquant_plugin.readers.events import EventSource, LocalEventSource

# MCT for Keras first: MCT's report dirs look alike, and MCTKeras claims only the Keras ones.
PRODUCERS: Tuple[Producer, ...] = (OnnxQDQ(), MCTKeras(), MCTPyTorch())  # ONNX: folders with onnx_qdq.json
PRODUCER_BY_NAME = {p.name: p for p in PRODUCERS}
# What builds a folder no adapter discovered (it then lists what is missing as problems).
FALLBACK = PRODUCER_BY_NAME[MCTPyTorch.name]


def discover(logdir: str, runs: List[str]) -> Dict[str, Tuple[str, Producer]]:
    """``{report path relative to the logdir: (report folder, producer)}``; the first adapter listed wins."""
    found: Dict[str, Tuple[str, Producer]] = {}
    with mct_files.one_walk():
        for p in PRODUCERS:
            for rel, d in p.discover(logdir, runs).items():
                found.setdefault(rel, (d, p))
    return found


def build_all(logdir: str, source: Optional[EventSource] = None) -> List[Report]:
    """Every report under ``logdir`` (CLI / tests); reads event files directly."""
    source = source or LocalEventSource(logdir)
    runs = source.runs()
    return [p.build(source, logdir, rel, d, runs) for rel, (d, p) in sorted(discover(logdir, runs).items())]


def build_report_dir(report_dir: str, logdir: Optional[str] = None) -> Report:
    """The report in one folder (the folder given to ``XQuantConfig(report_dir=...)``).

    The logdir defaults to the report dir's parent, so the sibling MCT stage logs are found."""
    report_dir = os.path.abspath(report_dir)
    logdir = os.path.abspath(logdir or os.path.dirname(report_dir))
    source = LocalEventSource(logdir)
    rel = os.path.relpath(report_dir, logdir).replace(os.sep, "/")
    runs = source.runs()
    with mct_files.one_walk():
        for p in PRODUCERS:
            if rel in p.discover(logdir, runs):
                return p.build(source, logdir, rel, report_dir, runs)
    return FALLBACK.build(source, logdir, rel, report_dir, runs)
