"""MCT 2.6.1 for PyTorch: the XQuant report dir (+ the troubleshooting extension) and the stage logs.

The builder is shared with MCT for Keras (``producers.mct_common``); PyTorch is its default flavour.  The
names below are re-exported from there for the modules and tests that import them from here."""
from __future__ import annotations

from typing import Dict, List, Optional

from tb_xquant_plugin.model import manifest as mf
from tb_xquant_plugin.model.report import (
    BIT_WIDTHS,
    GRAPH,
    HISTOGRAMS,
    LAYER_METRICS,
    PRODUCER_VERDICTS,
    QUANT_PARAMS,
    STAGE_GRAPHS,
    Report,
)
from tb_xquant_plugin.producers import mct_files as art
from tb_xquant_plugin.producers.base import MCT_PYTORCH, Producer
from tb_xquant_plugin.producers.mct_common import (  # noqa: F401 - re-exported
    BITS_HINT,
    PYTORCH,
    STAGE_LOGS_FOLDER,
    STAGE_PREFERENCE,
    WEIGHTS_CANDIDATE_STAGES,
    MCTFlavour,
    fill_weights_bits,
    find_stage_runs,
    last_layer_bits,
    load_stage_graph,
    stage_runs_by_folder,
)
from tb_xquant_plugin.producers.mct_common import build_report as _build_mct_report
from tb_xquant_plugin.readers import files
from tb_xquant_plugin.readers.events import EventSource


def build_report(source: EventSource, logdir: str, rel: str, report_dir: str,
                 runs: Optional[List[str]] = None) -> Report:
    """The report of an MCT-for-PyTorch XQuant report dir."""
    return _build_mct_report(source, logdir, rel, report_dir, runs, PYTORCH)


class MCTPyTorch(Producer):
    """MCT 2.6.1 for PyTorch: XQuant report dir (+ troubleshoot extension) and the stage logs."""

    name = PYTORCH.producer
    toolchain = MCT_PYTORCH
    supplies = frozenset((GRAPH, LAYER_METRICS, HISTOGRAMS, QUANT_PARAMS, BIT_WIDTHS, PRODUCER_VERDICTS, STAGE_GRAPHS))

    def discover(self, logdir: str, runs: List[str]) -> Dict[str, str]:
        return art.discover_report_dirs(logdir, runs)

    def signature_files(self):
        return (art.QUANT_REPORT, art.TROUBLESHOOT_REPORT, mf.FILENAME)

    def event_run(self, report_rel: str) -> Optional[str]:
        return files.run_path(report_rel, art.XQUANT_RUN)

    def build(self, source: EventSource, logdir: str, rel: str, report_dir: str,
              runs: Optional[List[str]] = None) -> Report:
        return build_report(source, logdir, rel, report_dir, runs)
