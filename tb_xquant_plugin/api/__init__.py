"""The HTTP API and CLI answers: ``contract`` defines every route's JSON once, ``views`` builds it."""
from __future__ import annotations

from typing import Optional

from tb_xquant_plugin.judges.run import Analysis, analyse
from tb_xquant_plugin.model.thresholds import Thresholds
from tb_xquant_plugin.producers import build_report_dir


def analyse_report_dir(report_dir: str, logdir: Optional[str] = None,
                       thresholds: Optional[Thresholds] = None) -> Analysis:
    """Analyse one report directory (the folder given to ``XQuantConfig(report_dir=...)``); the logdir defaults
    to its parent, so the sibling MCT stage logs are found."""
    report = build_report_dir(report_dir, logdir)
    return analyse(report, thresholds or report.defaults)
