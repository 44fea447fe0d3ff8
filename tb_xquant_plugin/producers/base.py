"""The producer seam: one adapter per toolchain turns what that toolchain wrote into a :class:`Report`.

An adapter declares its toolchain, what it supplies (``model.report.SUPPLIES``), how to find its
reports in a logdir and how to build one.  Judges and countermeasure snippets are chosen per
toolchain (``Report.toolchain``), so the same cause can carry one snippet per toolchain."""
from __future__ import annotations

from typing import Dict, FrozenSet, List, Optional, Sequence

from tb_xquant_plugin.model.report import MCT_KERAS, MCT_PYTORCH, ONNX_QDQ, Report  # noqa: F401 - toolchains
from tb_xquant_plugin.readers.events import EventSource


class Producer:
    """Interface of a producer adapter (subclass it in one file under ``producers/``, list it in ``registry``)."""

    name: str = ""
    toolchain: str = ""
    supplies: FrozenSet[str] = frozenset()

    def discover(self, logdir: str, runs: List[str]) -> Dict[str, str]:
        """``{report path relative to the logdir: report folder}`` of every report this producer can build."""
        raise NotImplementedError

    def signature_files(self) -> Sequence[str]:
        """Files of a report folder whose change means the report must be rebuilt."""
        return ()

    def event_run(self, report_rel: str) -> Optional[str]:
        """The run (relative to the logdir) holding the report's own events, if any."""
        return None

    def build(self, source: EventSource, logdir: str, rel: str, report_dir: str,
              runs: Optional[List[str]] = None) -> Report:
        """Build the report; missing or broken parts become ``Report.problems``, nothing raises."""
        raise NotImplementedError
