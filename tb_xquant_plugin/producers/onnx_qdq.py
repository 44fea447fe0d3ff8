"""QDQ ONNX models (AMD Quark for ONNX, ONNX Runtime's ``quantize_static``, the PPQ family): the report folder
``tb_xquant_plugin.onnx_run`` writes.

The folder has MCT's layout -- ``quant_report.json``, the ``xquant`` run (float activation histograms, graph),
``tb_xquant_manifest.json`` -- plus ``onnx_qdq.json``, which marks it as an ONNX report and holds what MCT's
files do not: the display graph (the QDQ graph with its Q/DQ folded, nodes named after the float nodes they
were paired with by structure), each compare point's quantization parameters (scale, zero point, type,
per-channel, symmetric), op replacements (Quark XINT8's Sigmoid -> HardSigmoid) and the channels an
equivalence transform (CLE, SmoothQuant) rescaled, which were compared after undoing it.

Nothing here imports onnx or onnxruntime: the models were run by the user's own process."""
from __future__ import annotations

import math
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union

from tb_xquant_plugin.model import manifest as mf
from tb_xquant_plugin.model.report import (
    GRAPH,
    HISTOGRAMS,
    LAYER_METRICS,
    ONNX_ORT,
    ONNX_PPQ,
    ONNX_QDQ,
    ONNX_QUARK,
    QUANT_PARAMS,
    BIT_WIDTHS,
    LastLayer,
    Layer,
    Problem,
    QuantParams,
    Report,
    as_bits,
    report_id,
)
from tb_xquant_plugin.model.thresholds import DEFAULT_DETECT_UNDER, DEFAULT_QUANTIZE_ERROR, Thresholds
from tb_xquant_plugin.producers import mct_files as art
from tb_xquant_plugin.producers.base import Producer
from tb_xquant_plugin.readers import files
from tb_xquant_plugin.readers.events import EventSource
from tb_xquant_plugin.readers.files import ReadError, join
from tb_xquant_plugin.readers.graphs import GraphNode

DETAILS_FILE = "onnx_qdq.json"
FORMAT = "tb-xquant-onnx-qdq"
FORMAT_VERSION = 1
QUANT_REPORT = art.QUANT_REPORT
XQUANT_RUN = art.XQUANT_RUN
MAX_NODES = 200_000

# The quantizer a report names (``--toolchain``) -> Report.toolchain.
TOOLCHAIN_BY_QUANTIZER = {"quark": ONNX_QUARK, "onnxruntime": ONNX_ORT, "ppq": ONNX_PPQ}
QUANTIZER_LABEL = {ONNX_QUARK: "AMD Quark for ONNX", ONNX_ORT: "ONNX Runtime quantize_static",
                   ONNX_PPQ: "PPQ (esp-ppq / SpacemiT XQuant)", ONNX_QDQ: "an unknown ONNX quantizer"}

# PPQ's graph-wise analysis marks an output whose noise-to-signal ratio is above 0.1 or whose cosine similarity
# is under 0.99 (SpacemiT's XQuant documentation).  MSE and MCT's SQNR stay in the report without a threshold
# (their limits are set out of reach; override them in the tab with thr.mse / thr.sqnr).
PPQ_THRESHOLDS = {
    "threshold_quantize_error": {"snr": 0.1, "cs": 0.99, "mse": 1e300, "sqnr": -1e300},
    "is_detect_under_threshold_quantize_error": {"snr": False, "cs": True, "mse": False, "sqnr": True},
}
MCT_THRESHOLDS = {  # MCT XQuant's defaults; PPQ's snr is reported without a threshold
    "threshold_quantize_error": dict(DEFAULT_QUANTIZE_ERROR),
    "is_detect_under_threshold_quantize_error": dict(DEFAULT_DETECT_UNDER),
}
PRESETS = {"mct": MCT_THRESHOLDS, "ppq": PPQ_THRESHOLDS}


def thresholds_preset(which: Union[str, Mapping[str, Any]]) -> Dict[str, Any]:
    """The ``xquant_config`` a manifest records: a preset by name (``mct``, ``ppq``) or the caller's dict."""
    if isinstance(which, str):
        if which not in PRESETS:
            raise ValueError("thresholds must be one of %s or a dict, got %r" % (", ".join(sorted(PRESETS)), which))
        preset = PRESETS[which]
        return {k: dict(v) for k, v in preset.items()}
    return dict(which)


def _read(path: str, label: str, root: str, problems: List[Problem], hint: str) -> Optional[Any]:
    try:
        return files.read_json(path, label, root)
    except ReadError as e:
        problems.append(Problem(e.what, e.hint))
        return None


def _obj(v: Any) -> Dict[str, Any]:
    return v if isinstance(v, dict) else {}


def _str(v: Any, limit: int = 1000) -> Optional[str]:
    return v[:limit] if isinstance(v, str) and v else None


def _num(v: Any) -> Optional[float]:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    f = float(v)
    return f if math.isfinite(f) else None


def _quant_mode(q: Mapping[str, Any]) -> Optional[str]:
    if q.get("power_of_two") is True:
        return "power_of_two"
    if q.get("symmetric") is True:
        return "symmetric"
    if q.get("symmetric") is False:
        return "asymmetric"
    return None


def quant_params(node: Mapping[str, Any], layer: Mapping[str, Any]) -> QuantParams:
    """A compare point's quantization parameters as the tab shows them."""
    q = _obj(layer.get("quant"))
    attrs = _obj(node.get("attrs"))
    w = _obj(attrs.get("weights"))
    lo, hi = _num(q.get("min")), _num(q.get("max"))
    threshold = max(abs(lo), abs(hi)) if lo is not None and hi is not None else None
    return QuantParams(
        activation_nbits=as_bits(q.get("bits")),
        activation_threshold=threshold,
        activation_range=[lo, hi] if lo is not None and hi is not None else None,
        signed=(lo < 0) if lo is not None else None,
        quant_mode=_quant_mode(q),
        op=_str(node.get("op"), 200),
        weights_nbits=as_bits(w.get("bits")),
        weights_nbits_source="QDQ model" if as_bits(w.get("bits")) is not None else None,
    )


def is_onnx_report_dir(report_dir: str, root: Optional[str]) -> bool:
    return files.exists(join(report_dir, DETAILS_FILE), root)


def build_report(source: EventSource, logdir: str, rel: str, report_dir: str,
                 runs: Optional[List[str]] = None) -> Report:
    problems: List[Problem] = []
    runs = runs if runs is not None else source.runs()
    manifest = _read(join(report_dir, mf.FILENAME), mf.FILENAME, logdir, problems, "")
    if manifest is not None and not isinstance(manifest, dict):
        problems.append(Problem("%s is not a JSON object; ignoring it" % mf.FILENAME,
                                "Re-run tb_xquant_plugin.onnx_run.onnx_xquant_report."))
        manifest = None
    details = _read(join(report_dir, DETAILS_FILE), DETAILS_FILE, logdir, problems, "")
    if details is not None and (not isinstance(details, dict) or details.get("format") != FORMAT):
        problems.append(Problem("%s is not a tb-xquant ONNX report (format %r)" % (
            DETAILS_FILE, _obj(details).get("format")), "Re-run tb_xquant_plugin.onnx_run.onnx_xquant_report."))
        details = None
    details = _obj(details)
    raw_qr = _read(join(report_dir, QUANT_REPORT), QUANT_REPORT, logdir, problems, "")
    qr, qr_problems = art.normalise_quant_report(raw_qr) if raw_qr is not None else (None, [])
    problems.extend(qr_problems)

    toolchain = _str(_obj(manifest).get("toolchain"), 100) or ONNX_QDQ
    if toolchain not in QUANTIZER_LABEL:
        toolchain = ONNX_QDQ

    # The display graph.
    nodes: List[GraphNode] = []
    raw_nodes = details.get("nodes") if isinstance(details.get("nodes"), list) else []
    by_id: Dict[str, Mapping[str, Any]] = {}
    for n in raw_nodes[:MAX_NODES]:
        if not isinstance(n, dict) or not _str(n.get("id")):
            continue
        nid = _str(n["id"], 4000)
        if nid in by_id:
            continue
        attrs = {k: v for k, v in _obj(n.get("attrs")).items() if isinstance(v, (str, int, float, bool))}
        absorbed = _obj(n.get("attrs")).get("absorbed")
        if isinstance(absorbed, list):
            attrs["absorbed"] = ", ".join(str(a)[:300] for a in absorbed[:20])
        shapes = [[int(d) for d in s if isinstance(d, int) and not isinstance(d, bool)]
                  for s in (n.get("output_shapes") or []) if isinstance(s, list)][:8]
        inputs = [str(i)[:4000] for i in (n.get("inputs") or []) if isinstance(i, str)][:4096]
        nodes.append(GraphNode(nid, nid, _str(n.get("op"), 200) or "?", inputs, shapes, attrs))
        by_id[nid] = n
    if len(raw_nodes) > MAX_NODES:
        problems.append(Problem("the graph has %d nodes; the first %d are shown" % (len(raw_nodes), MAX_NODES),
                                "Nothing to fix."))
    if details and not nodes:
        problems.append(Problem("%s holds no graph nodes" % DETAILS_FILE,
                                "Re-run tb_xquant_plugin.onnx_run.onnx_xquant_report."))

    # Histograms: the xquant run, as MCT writes them.
    histograms = {}
    xrun = files.run_path(rel, XQUANT_RUN)
    if xrun in runs:
        try:
            histograms = source.histograms(xrun)
        except Exception as e:  # noqa: BLE001
            problems.append(Problem("float histograms could not be read: %s" % e, "Reload once the run has finished."))
    if not histograms:
        problems.append(Problem("no float activation histograms in %s/%s/" % (rel, XQUANT_RUN),
                                "onnx_xquant_report writes them; the outlier-removal and concatenation judges "
                                "need them."))

    # Layers: quant_report.json, mapped to display nodes through onnx_qdq.json.
    layer_info = _obj(details.get("layers"))
    layers: List[Layer] = []
    output_metrics: Dict[str, Dict[str, float]] = {"repr": {}, "val": {}}
    quant: Dict[str, QuantParams] = {}
    if qr is not None:
        names = list(qr["layers"]["repr"]) + [k for k in qr["layers"]["val"] if k not in qr["layers"]["repr"]]
        for i, name in enumerate(names):
            info = _obj(layer_info.get(name))
            nid = _str(info.get("node"), 4000)
            node = by_id.get(nid) if nid else None
            if node is None and name in by_id:
                nid, node = name, by_id[name]
            layers.append(Layer(name, i, {ds: dict(qr["layers"][ds].get(name, {})) for ds in ("repr", "val")},
                                nid if node is not None else None, _str(node.get("op"), 200) if node else None))
            if info:
                quant[name] = quant_params(node or {}, info)
        output_metrics = {ds: dict(qr["output"][ds]) for ds in ("repr", "val")}
    metrics: List[str] = []
    for ds in ("repr", "val"):
        for l in layers:
            metrics += [m for m in l.metrics.get(ds, {}) if m not in metrics]
    for m in output_metrics["repr"]:
        if m not in metrics:
            metrics.append(m)

    # In the layers' order, whatever order the event source lists the tags in (TensorBoard's data provider and the
    # files differ): the judges walk the histograms, and their messages must not depend on who read them.
    rank = {l.name: i for i, l in enumerate(layers)}
    histograms = dict(sorted(histograms.items(), key=lambda kv: (rank.get(kv[0], len(rank)), kv[0])))

    defaults, refused = Thresholds.from_config(mf.xquant_config(manifest))
    for msg in refused:
        problems.append(Problem("manifest threshold ignored: %s" % msg, "Fix xquant_config in %s." % mf.FILENAME))

    _pairing_problems(details, problems)

    last = _obj(details.get("last_layer"))
    last_layer = None
    if _str(last.get("name")):
        last_layer = LastLayer(_str(last["name"], 4000), as_bits(last.get("weights_nbits")),
                               as_bits(last.get("activation_nbits")), "graph",
                               "QDQ model" if as_bits(last.get("weights_nbits")) is not None else None)

    report = Report(
        id=report_id(rel), rel=rel, dir=report_dir, manifest=manifest, defaults=defaults, metrics=metrics,
        layers=layers, output_metrics=output_metrics, nodes=nodes, node_alias={}, histograms=histograms,
        quant=quant, stage_run=None, mct_troubleshoot=None, artifacts=art.list_artifacts(report_dir, logdir),
        problems=problems, has_quant_report=raw_qr is not None, has_graph=bool(nodes),
        producer=OnnxQDQ.name, toolchain=toolchain,
        supplies=frozenset(s for s, present in (
            (GRAPH, bool(nodes)), (LAYER_METRICS, bool(layers)), (HISTOGRAMS, bool(histograms)),
            (QUANT_PARAMS, bool(quant)), (BIT_WIDTHS, any(q.weights_nbits is not None for q in quant.values())))
            if present),
    )
    report.last_layer = last_layer
    return report


def _pairing_problems(details: Mapping[str, Any], problems: List[Problem]) -> None:
    """What the user should know about the pairing: op replacements, unpaired compare points, rescaled channels."""
    for r in (details.get("replacements") or [])[:50]:
        if not isinstance(r, dict):
            continue
        fop, qop = _str(r.get("float_op"), 100), _str(r.get("qdq_op"), 100)
        node = _str(r.get("float_node"), 300)
        if r.get("changes_function"):
            problems.append(Problem(
                "the quantizer replaced %s (%s) by %s: the quantized model computes a different function there, "
                "whatever the bits (Quark's XINT8 configuration approximates Sigmoid by HardSigmoid)" % (node, fop, qop),
                "If that layer is degraded or the accuracy dropped, keep the original op: with Quark, quantize with a "
                "configuration that does not target the NPU's op set (A8W8 / A16W8 instead of XINT8), or exclude "
                "the node from quantization (QConfig(exclude=[...])). docs/onnx.md"))
        else:
            problems.append(Problem("the quantizer replaced %s (%s) by %s (same function)" % (node, fop, qop),
                                    "Nothing to fix; the layer is compared against the float node it replaced."))
    st = _obj(details.get("pairing"))
    unpaired = st.get("unpaired")
    if isinstance(unpaired, int) and unpaired > 0:
        shown = [str(_obj(u).get("quantized_tensor"))[:200] for u in (details.get("unpaired_compare_points") or [])[:5]]
        problems.append(Problem(
            "%d quantized activation%s could not be paired with a float tensor by the graph's structure (%s); "
            "they have no metrics" % (unpaired, "" if unpaired == 1 else "s", ", ".join(shown)),
            "The quantized model has ops the float model does not (or the other way round). Pass the float model "
            "the quantizer was given (after its own pre-processing, e.g. onnxruntime's quant_pre_process)."))
    rescaled = st.get("rescaled")
    if isinstance(rescaled, int) and rescaled > 0:
        problems.append(Problem(
            "%d compare point%s rescaled per channel by an equivalence transform (cross-layer equalization or "
            "SmoothQuant folded into the weights); %s compared after undoing the factor read from the weights, so "
            "the rescaling is not reported as quantization error" % (
                rescaled, " was" if rescaled == 1 else "s were", "it was" if rescaled == 1 else "they were"),
            "Nothing to fix. onnx_qdq.json keeps the unadjusted metrics of each (unadjusted_metrics)."))


class OnnxQDQ(Producer):
    """QDQ ONNX models (Quark, ONNX Runtime, PPQ): the report folder of ``tb_xquant_plugin.onnx_run``."""

    name = "onnx-qdq-xquant"
    toolchain = ONNX_QDQ
    supplies = frozenset((GRAPH, LAYER_METRICS, HISTOGRAMS, QUANT_PARAMS, BIT_WIDTHS))

    def discover(self, logdir: str, runs: List[str]) -> Dict[str, str]:
        return {rel: d for rel, d in art.discover_report_dirs(logdir, runs).items() if is_onnx_report_dir(d, logdir)}

    def signature_files(self):
        return (QUANT_REPORT, DETAILS_FILE, mf.FILENAME)

    def event_run(self, report_rel: str) -> Optional[str]:
        return files.run_path(report_rel, XQUANT_RUN)

    def build(self, source: EventSource, logdir: str, rel: str, report_dir: str,
              runs: Optional[List[str]] = None) -> Report:
        return build_report(source, logdir, rel, report_dir, runs)


def toolchain_of(quantizer: Optional[str]) -> str:
    return TOOLCHAIN_BY_QUANTIZER.get(quantizer or "", ONNX_QDQ)


__all__: Tuple[str, ...] = ("OnnxQDQ", "build_report", "thresholds_preset", "TOOLCHAIN_BY_QUANTIZER",
                            "DETAILS_FILE", "PPQ_THRESHOLDS")
