"""MCT's own log of an XQuant run (``<report_dir>/logs_<time>/mct_log.log``) and what it says about the report.

``xquant_report_troubleshoot_pytorch_experimental`` opens its log in the report dir (``Logger.set_log_file``);
``TensorboardUtils`` writes ``Please run: tensorboard --logdir <report_dir>`` first, then
``core_detect_degrade_layer`` writes one line ``<metric>[<layer>]=<value>`` per degraded (metric, dataset,
layer), metric by metric, representative data before validation data, and a line ``XQuantConfig.threshold_
quantize_error['<metric>'] is not defined. Skipping ...`` per metric without a threshold.  MCT's logger keeps
writing into every log file it opened in the process, so a file may hold later runs too: only the section that
starts with this report dir's line, up to the next ``Please run: tensorboard`` / ``To use Tensorboard`` line, is
this run's.

From those lines, :func:`threshold_check` infers the threshold bounds MCT's run must have used (per metric,
between the largest value it did not flag and the smallest it flagged, or the other way round for metrics
detected under their threshold) and says when the thresholds in effect fall outside them."""
from __future__ import annotations

import dataclasses
import math
import re
from typing import Dict, List, Optional, Tuple

from tb_xquant_plugin.model.report import DATASETS, Layer, Problem
from tb_xquant_plugin.model.thresholds import Thresholds
from tb_xquant_plugin.readers import files
from tb_xquant_plugin.readers.files import join

LOG_NAME = "mct_log.log"
MAX_LOG_BYTES = 64 * 1024 * 1024
MAX_LOG_FOLDERS = 64
SECTION_START = "Please run: tensorboard --logdir "
OTHER_SECTION = "To use Tensorboard, please run: tensorboard --logdir "
_DETECTED = re.compile(r"^(?P<metric>[^\[\]\s]+)\[(?P<layer>.+)\]=(?P<value>[-+0-9.eE]+|nan|inf|-inf)\s*$")
_SKIPPED = re.compile(r"^XQuantConfig\.threshold_quantize_error\['(?P<metric>[^']+)'\] is not defined")


@dataclasses.dataclass
class XQuantLog:
    """This report's section of MCT's log."""

    path: str  # the log file (for messages: relative to the logdir when possible)
    lines: List[str]
    detected: List[Tuple[str, str, float]]  # (metric, layer, value) in MCT's order
    skipped_metrics: List[str]

    @property
    def finished_detection(self) -> bool:
        """Whether the run got as far as writing quant_report.json (MCT logs "Dumping report data to")."""
        return any("quant_report.json" in ln for ln in self.lines)


def _parts(path: str) -> List[str]:
    return [p for p in re.split(r"[\\/]+", path.strip()) if p]


def _tail_match(a: List[str], b: List[str]) -> int:
    n = 0
    while n < min(len(a), len(b)) and a[-1 - n] == b[-1 - n]:
        n += 1
    return n


# Trailing path components a log section must share with the report dir: the report folder and its parent
# (every report folder is called xquant_report in a copied or renamed logdir, so one component proves nothing).
MIN_TAIL = 2


def read_xquant_log(report_dir: str, root: Optional[str] = None) -> Optional[XQuantLog]:
    """The section of MCT's log for the XQuant run that wrote ``report_dir`` (the newest when it ran several
    times), or None without one.  Folders are matched on their trailing path components (the logdir may have
    been moved since)."""
    here = _parts(report_dir)
    best: Optional[Tuple[int, str, List[str]]] = None
    folders = sorted(n for n in files.list_dir(report_dir, root) if n.startswith("logs_"))[-MAX_LOG_FOLDERS:]
    for folder in folders:
        path = join(report_dir, folder, LOG_NAME)
        if not files.exists(path, root):
            continue
        try:
            raw = files.read_bytes(path, LOG_NAME, MAX_LOG_BYTES, root)
        except files.ReadError:
            continue
        if raw is None:
            continue
        section: Optional[List[str]] = None
        score = 0
        for line in raw.decode("utf-8", "replace").splitlines():
            start = line.find(SECTION_START)
            other = line.find(OTHER_SECTION)
            if start >= 0 and other < 0:
                if section is not None and score >= MIN_TAIL and (best is None or score >= best[0]):
                    best = (score, path, section)
                score = _tail_match(_parts(line[start + len(SECTION_START):]), here)
                section = []
            elif other >= 0:
                if section is not None and score >= MIN_TAIL and (best is None or score >= best[0]):
                    best = (score, path, section)
                section, score = None, 0
            elif section is not None:
                section.append(line)
        if section is not None and score >= MIN_TAIL and (best is None or score >= best[0]):
            best = (score, path, section)
    if best is None:
        return None
    _, path, lines = best
    detected: List[Tuple[str, str, float]] = []
    skipped: List[str] = []
    for ln in lines:
        m = _DETECTED.match(ln.strip())
        if m:
            try:
                detected.append((m.group("metric"), m.group("layer"), float(m.group("value"))))
            except ValueError:
                continue
            continue
        m = _SKIPPED.match(ln.strip())
        if m and m.group("metric") not in skipped:
            skipped.append(m.group("metric"))
    return XQuantLog(path, lines, detected, skipped)


def _same(a: float, b: float) -> bool:
    return a == b or (math.isfinite(a) and math.isfinite(b) and abs(a - b) <= 1e-9 * max(abs(a), abs(b), 1e-300))


@dataclasses.dataclass
class Bound:
    """The thresholds of one metric that flag exactly the (layer, dataset) pairs MCT's run flagged."""

    metric: str
    under: bool
    low: Optional[float]  # threshold > low (above) / >= low (under); None: no bound
    high: Optional[float]  # threshold <= high (above) / < high (under); None: no bound
    flagged: int

    def contains(self, thr: float) -> bool:
        if self.under:  # flagged: value <= thr -> thr >= max flagged, thr < min unflagged
            return (self.low is None or thr >= self.low) and (self.high is None or thr < self.high)
        return (self.low is None or thr > self.low) and (self.high is None or thr <= self.high)

    def text(self) -> str:
        lo, hi = self.low, self.high
        if self.under:
            return "%s %s" % (self.metric, " and ".join(x for x in (
                ">= %.4g" % lo if lo is not None else "", "< %.4g" % hi if hi is not None else "") if x) or "any")
        return "%s %s" % (self.metric, " and ".join(x for x in (
            "> %.4g" % lo if lo is not None else "", "<= %.4g" % hi if hi is not None else "") if x) or "any")


def infer_bounds(log: XQuantLog, layers: List[Layer], metrics: List[str],
                 detect_under: Dict[str, bool]) -> Tuple[List[Bound], List[str]]:
    """Per metric, the threshold interval that reproduces MCT's flags, and the metrics whose flags no single
    threshold reproduces (in the direction assumed)."""
    logged: Dict[str, List[Tuple[str, float]]] = {}
    for metric, layer, value in log.detected:
        logged.setdefault(metric, []).append((layer, value))
    bounds: List[Bound] = []
    impossible: List[str] = []
    for metric in metrics:
        if metric in log.skipped_metrics:
            continue
        under = bool(detect_under.get(metric, False))
        flagged_values, other_values = [], []
        marks = logged.get(metric, [])
        for layer in layers:
            for ds in DATASETS:
                v = layer.metrics.get(ds, {}).get(metric)
                if v is None or not isinstance(v, float) or math.isnan(v):
                    continue
                hit = any(name == layer.name and _same(v, lv) for name, lv in marks)
                (flagged_values if hit else other_values).append(v)
        if under:
            low = max(flagged_values) if flagged_values else None
            high = min(other_values) if other_values else None
            ok = low is None or high is None or low < high
        else:
            low = max(other_values) if other_values else None
            high = min(flagged_values) if flagged_values else None
            ok = low is None or high is None or low < high
        if not ok:
            impossible.append(metric)
            continue
        bounds.append(Bound(metric, under, low, high, len(flagged_values)))
    return bounds, impossible


def threshold_check(log: Optional[XQuantLog], layers: List[Layer], metrics: List[str], th: Thresholds,
                    log_label: str) -> Optional[Problem]:
    """A problem when the thresholds in effect do not flag what MCT's run flagged (its log), with the thresholds
    that would; None when they agree or there is nothing to compare."""
    if log is None or not layers:
        return None
    bounds, impossible = infer_bounds(log, layers, metrics, th.detect_under)
    wrong = [b for b in bounds if b.metric in th.quantize_error and not b.contains(th.quantize_error[b.metric])]
    missing = [b for b in bounds if b.metric not in th.quantize_error and b.flagged]
    if not wrong and not missing and not impossible:
        return None
    mct_layers = []
    for _metric, layer, _v in log.detected:
        if layer not in mct_layers:
            mct_layers.append(layer)
    ours = sorted({l.name for l in layers for ds in DATASETS for m, thr in th.quantize_error.items()
                   if _flags(l.metrics.get(ds, {}).get(m), thr, bool(th.detect_under.get(m, False)))})
    parts = ["%s=%g" % (b.metric, th.quantize_error[b.metric]) for b in wrong]
    what = ("the thresholds in effect (%s) do not reproduce the degraded layers MCT's own run logged in %s: MCT "
            "flagged %d layer%s (%s), these thresholds flag %d%s"
            % (", ".join(parts) or "no threshold for %s" % ", ".join(b.metric for b in missing), log_label,
               len(mct_layers), "" if len(mct_layers) == 1 else "s", ", ".join(mct_layers[:5]) +
               (", ..." if len(mct_layers) > 5 else "") if mct_layers else "none", len(ours),
               (" (%s)" % ", ".join(ours[:5]) + (", ..." if len(ours) > 5 else "")) if ours else ""))
    if impossible:
        what += "; no single threshold per metric reproduces MCT's flags for %s in the assumed direction" % (
            ", ".join(impossible))
    hint = ("MCT's run used other thresholds: %s reproduce%s its flags (bounds from the metric values it logged). "
            "Set them in the tab's thresholds, or `tb-xquant report --threshold METRIC=VALUE`; writing the report "
            "with tb_xquant_plugin.mct_run.xquant_report_with_manifest records the thresholds used."
            % ("; ".join(b.text() for b in wrong + missing), "s" if len(wrong + missing) == 1 else ""))
    return Problem(what, hint)


def _flags(v, thr: float, under: bool) -> bool:
    if not isinstance(v, float) or math.isnan(v):
        return False
    return v <= thr if under else v >= thr


def crashed_run_problem(report_dir_rel: str, log: Optional[XQuantLog], has_histograms: bool,
                        has_stage_logs: bool, error: Optional[str]) -> Problem:
    """The problem of a report dir where MCT's XQuant run stopped before writing its graph."""
    have = [x for x, present in (("float histograms", has_histograms), ("MCT stage logs", has_stage_logs),
                                 ("MCT's log (%s)" % LOG_NAME, log is not None)) if present]
    what = ("MCT's XQuant run did not finish in %s: it holds %s but no graph of the quantized model and no "
            "quant_report.json, so there are no per-layer metrics to judge" % (report_dir_rel, " and ".join(have)
                                                                               or "nothing usable"))
    if error:
        what += ". MCT raised: %s" % error[:500]
    else:
        what += (". XQuant writes the histograms of the float model first, then re-traces the quantized model with "
                 "torch.fx to draw its graph; a tensor method in forward (x.view(...), x.contiguous(), as in "
                 "ShuffleNetV2's channel_shuffle) makes that re-trace fail with \"descriptor 'view' for "
                 "'torch._C.TensorBase' objects doesn't apply to a 'Proxy' object\"")
    return Problem(what, "Rewrite the tensor methods in forward as torch functions (x.view(b, -1, h, w) -> "
                         "torch.reshape(x, (b, -1, h, w)); drop .contiguous(), torch.reshape copies when it must), "
                         "then quantize and run the report again: tb-xquant manual torch-fx-errors.")
