"""XQuant for ONNX quantize-dequantize models: run the float and the QDQ model, write a report folder the tab opens.

Producer side only: this module imports onnx and onnxruntime when :func:`onnx_xquant_report` is called, in the
user's own process.  The TensorBoard server never imports it; it reads the files written here
(``producers.onnx_qdq``).  Works for the QDQ models of AMD Quark for ONNX, ONNX Runtime's ``quantize_static``
and the PPQ family (esp-ppq, SpacemiT's XQuant): whichever made the model, the compare points are its quantized
activations (the DequantizeLinear outputs), each paired with the float tensor it quantizes by the graph's
structure (``producers.onnx_pairing``).

What it writes into ``out_dir`` (MCT's layout, so the viewer has one reader):

* ``quant_report.json``: per-layer and output metrics on the representative and the validation data, with MCT
  XQuant's keys and conventions (``mse``: mean squared error; ``cs``: cosine similarity of the flattened batch;
  ``sqnr``: signal power / noise power, a ratio, not dB; each per batch, averaged over batches) plus ``snr`` as
  PPQ computes it (noise power / signal power per sample, averaged) and the caller's custom metrics;
* ``xquant/``: an event file with the float activation histogram of every compare point (2048 bins over the
  representative data, logged as MCT logs them) and the display graph for TensorBoard's Graphs tab;
* ``onnx_qdq.json``: the display graph (the QDQ graph with Q/DQ folded, nodes named after their float
  counterparts), each layer's pairing and quantization parameters, op replacements, rescaled channels;
* ``tb_xquant_manifest.json``: the toolchain and versions, the thresholds (``thresholds="ppq"``: PPQ's), the
  accuracy when labels were given.

Command line: ``python -m tb_xquant_plugin.onnx_run --float F.onnx --quantized Q.onnx --representative R.npz
--validation V.npz --out REPORT_DIR [--toolchain quark|onnxruntime|ppq] [--labels L.npy] [--thresholds ppq]``.
"""
from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import sys
import time
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from tb_xquant_plugin.model.manifest import FILENAME as MANIFEST_FILENAME
from tb_xquant_plugin.model.manifest import SCHEMA as MANIFEST_SCHEMA
from tb_xquant_plugin.model.report import ONNX_ORT, ONNX_PPQ, ONNX_QDQ, ONNX_QUARK
from tb_xquant_plugin.producers import onnx_pairing as op
from tb_xquant_plugin.producers.onnx_qdq import (
    DETAILS_FILE,
    FORMAT,
    FORMAT_VERSION,
    QUANT_REPORT,
    TOOLCHAIN_BY_QUANTIZER,
    XQUANT_RUN,
    thresholds_preset,
)

__all__ = ["onnx_xquant_report", "load_data", "main"]

HISTOGRAM_BINS = 2048  # MCT's HistogramCollector default
DISTRIBUTIONS = {
    "quark": ("amd-quark", "onnx", "onnxruntime"),
    "onnxruntime": ("onnxruntime", "onnx"),
    "ppq": ("esp-ppq", "ppq", "onnx", "onnxruntime"),
    None: ("onnx", "onnxruntime"),
}
QUARK_DOMAINS = ("com.amd.quark", "com.vai.quantize")

Data = Union[str, np.ndarray, Mapping[str, Any], Sequence[Any], Any]


# --------------------------------------------------------------------------------------------------
# Metrics (MCT XQuant's conventions; snr is PPQ's)
# --------------------------------------------------------------------------------------------------
def mse(f: np.ndarray, q: np.ndarray) -> float:
    return float(np.mean((f - q) ** 2))


def cs(f: np.ndarray, q: np.ndarray) -> float:
    # Element-wise sums, not BLAS dot products: the same numbers, and no thread pool spinning up per call.
    a, b = f.ravel(), q.ravel()
    return float(np.sum(a * b) / max(float(np.sqrt(np.sum(a * a)) * np.sqrt(np.sum(b * b))), 1e-8))


def sqnr(f: np.ndarray, q: np.ndarray) -> float:
    noise = float(np.mean((f - q) ** 2))
    signal = float(np.mean(f ** 2))
    return signal / noise if noise > 0 else math.inf


def snr(f: np.ndarray, q: np.ndarray) -> float:
    """PPQ's "SNR": noise power / signal power of each sample, averaged over the batch (0 is perfect)."""
    n = f.shape[0] if f.ndim > 1 else 1
    a, b = f.reshape(n, -1), q.reshape(n, -1)
    signal = np.sum(a ** 2, axis=1)
    noise = np.sum((a - b) ** 2, axis=1)
    return float(np.mean(noise / np.maximum(signal, 1e-30)))


METRICS: Dict[str, Callable[[np.ndarray, np.ndarray], float]] = {"mse": mse, "cs": cs, "sqnr": sqnr, "snr": snr}


class _Mean:
    def __init__(self):
        self.total: Dict[str, float] = {}
        self.count: Dict[str, int] = {}

    def add(self, values: Mapping[str, float]) -> None:
        for k, v in values.items():
            self.total[k] = self.total.get(k, 0.0) + v
            self.count[k] = self.count.get(k, 0) + 1

    def result(self) -> Dict[str, float]:
        return {k: self.total[k] / self.count[k] for k in self.total}


class _Histogram:
    """MCT's histogram of a tensor over batches: one 2048-bin histogram per batch, merged on a common range."""

    def __init__(self, bins: int = HISTOGRAM_BINS):
        self.bins = bins
        self.parts: List[Tuple[np.ndarray, np.ndarray]] = []

    def add(self, x: np.ndarray) -> None:
        x = x[np.isfinite(x)]
        if x.size:
            counts, edges = np.histogram(x, bins=self.bins)
            self.parts.append((counts.astype(np.float64), edges))

    def result(self) -> Optional[Tuple[np.ndarray, np.ndarray]]:
        if not self.parts:
            return None
        lo = min(float(e[0]) for _, e in self.parts)
        hi = max(float(e[-1]) for _, e in self.parts)
        if hi <= lo:
            hi = lo + 1e-12
        edges = np.linspace(lo, hi, self.bins + 1)
        total = np.zeros(self.bins)
        for counts, e in self.parts:
            cdf = np.concatenate(([0.0], np.cumsum(counts)))
            total += np.diff(np.interp(edges, e, cdf))
        return total, edges


# --------------------------------------------------------------------------------------------------
# ONNX -> plain graphs
# --------------------------------------------------------------------------------------------------
def _attr_value(a) -> Any:
    import onnx
    from onnx import numpy_helper

    v = onnx.helper.get_attribute_value(a)
    if isinstance(v, onnx.TensorProto):
        return numpy_helper.to_array(v)
    if isinstance(v, bytes):
        return v.decode("utf-8", "replace")
    if isinstance(v, list):
        return [x.decode("utf-8", "replace") if isinstance(x, bytes) else x for x in v]
    if isinstance(v, (int, float, str)):
        return v
    return None


def to_graph(model) -> op.Graph:
    from onnx import numpy_helper

    g = model.graph
    constants: Dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
    nodes = []
    for i, n in enumerate(g.node):
        attrs = {a.name: _attr_value(a) for a in n.attribute}
        if n.op_type == "Constant" and n.output:
            value = attrs.get("value")
            if isinstance(value, np.ndarray):
                constants[n.output[0]] = value
            elif "value_float" in attrs:
                constants[n.output[0]] = np.asarray(attrs["value_float"], np.float32)
            elif "value_int" in attrs:
                constants[n.output[0]] = np.asarray(attrs["value_int"], np.int64)
            elif "value_floats" in attrs:
                constants[n.output[0]] = np.asarray(attrs["value_floats"], np.float32)
            elif "value_ints" in attrs:
                constants[n.output[0]] = np.asarray(attrs["value_ints"], np.int64)
        nodes.append(op.Node(n.name or "%s_%d" % (n.op_type, i), n.op_type, list(n.input), list(n.output),
                             {k: v for k, v in attrs.items() if not isinstance(v, np.ndarray) or v.size <= 16},
                             n.domain or ""))
    return op.Graph(nodes, [i.name for i in g.input], [o.name for o in g.output], constants)


def _shapes(model) -> Dict[str, List[Any]]:
    """Tensor shapes of a model from ONNX shape inference (symbolic dims as their names)."""
    import onnx

    try:
        inferred = onnx.shape_inference.infer_shapes(model)
    except Exception:  # noqa: BLE001 - shapes are a nicety
        inferred = model
    out: Dict[str, List[Any]] = {}
    for vi in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        t = vi.type.tensor_type
        if t.HasField("shape"):
            out[vi.name] = [d.dim_value if d.HasField("dim_value") else (d.dim_param or -1) for d in t.shape.dim]
    return out


def _with_outputs(model, names: Iterable[str]) -> bytes:
    """The model with extra graph outputs (no types: onnxruntime infers them)."""
    import onnx

    m = onnx.ModelProto()
    m.CopyFrom(model)
    have = {o.name for o in m.graph.output}
    for name in names:
        if name and name not in have:
            m.graph.output.append(onnx.ValueInfoProto(name=name))
            have.add(name)
    return m.SerializeToString()


def _session(model_bytes: bytes, uses_quark_ops: bool, session_options=None):
    import onnxruntime as ort

    so = session_options or ort.SessionOptions()
    # No graph fusion: the QDQ model is evaluated as written (each Q/DQ in float), identically for every
    # toolchain, and exposing intermediate tensors as outputs changes nothing.
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    so.log_severity_level = 3
    if uses_quark_ops:
        try:
            from quark.onnx.operators.custom_ops.build_custom_ops import get_library_path

            so.register_custom_ops_library(get_library_path())
        except Exception as e:  # noqa: BLE001
            raise RuntimeError("the quantized model uses Quark's custom Q/DQ ops (%s); install amd-quark to run it: %s"
                               % ("/".join(QUARK_DOMAINS), e)) from e
    return ort.InferenceSession(model_bytes, so, providers=["CPUExecutionProvider"])


# --------------------------------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------------------------------
def load_data(data: Data, input_names: Sequence[str]) -> List[Dict[str, np.ndarray]]:
    """Samples as ``[{input name: array with a batch axis}]``.

    Accepts a ``.npy`` / ``.npz`` path, an array (one input; first axis = samples), a dict of arrays (by input
    name), a list of feed dicts or arrays, or a calibration data reader (``get_next()`` returning feed dicts
    until None, as onnxruntime's and Quark's readers do).  Arrays are split into batches by :func:`batches`."""
    if isinstance(data, (str, os.PathLike)):
        path = os.fspath(data)
        if path.endswith(".npz"):
            with np.load(path, allow_pickle=False) as z:
                keys = list(z.keys())
                if all(k in keys for k in input_names):
                    return [{k: np.asarray(z[k]) for k in input_names}]
                return [{name: np.asarray(z[k]) for name, k in zip(input_names, keys)}]
        return [{input_names[0]: np.load(path, allow_pickle=False)}]
    if hasattr(data, "get_next"):
        out = []
        while True:
            feed = data.get_next()
            if feed is None:
                break
            out.append({k: np.asarray(v) for k, v in feed.items()})
        return out
    if isinstance(data, np.ndarray):
        return [{input_names[0]: data}]
    if isinstance(data, Mapping):
        return [{k: np.asarray(v) for k, v in data.items()}]
    out = []
    for item in data:
        if isinstance(item, Mapping):
            out.append({k: np.asarray(v) for k, v in item.items()})
        elif isinstance(item, (list, tuple)):
            out.append({n: np.asarray(v) for n, v in zip(input_names, item)})
        else:
            out.append({input_names[0]: np.asarray(item)})
    return out


def batches(feeds: List[Dict[str, np.ndarray]], batch_size: int, limit: Optional[int] = None
            ) -> Iterator[Dict[str, np.ndarray]]:
    """Split every feed along its first axis into batches of ``batch_size`` samples; at most ``limit`` batches."""
    n = 0
    for feed in feeds:
        size = min(int(v.shape[0]) for v in feed.values()) if feed else 0
        for start in range(0, size, batch_size):
            if limit is not None and n >= limit:
                return
            yield {k: v[start:start + batch_size] for k, v in feed.items()}
            n += 1


def _batch_size(models: Sequence[Any], requested: Optional[int]) -> int:
    """The batch size both models accept: a fixed first dimension of an input (PPQ exports fix it at 1), else
    ``requested`` (32 by default)."""
    fixed = []
    for model in models:
        for i in model.graph.input:
            dims = i.type.tensor_type.shape.dim
            if dims and dims[0].HasField("dim_value") and dims[0].dim_value > 0:
                fixed.append(dims[0].dim_value)
    if fixed:
        return min(fixed)
    return requested or 32


# --------------------------------------------------------------------------------------------------
# The report
# --------------------------------------------------------------------------------------------------
def detect_quantizer(model) -> Optional[str]:
    """Which quantizer wrote a QDQ model, from what it leaves in the file (None: unknown)."""
    names = [n.name for n in model.graph.node] + [o for n in model.graph.node for o in n.output]
    producer = (model.producer_name or "").lower()
    if "ppq" in producer or any(x.startswith("PPQ_") for x in names[:10000]):
        return "ppq"
    domains = {o.domain for o in model.opset_import} | {n.domain for n in model.graph.node}
    if "quark" in producer or any(d in domains for d in QUARK_DOMAINS):
        return "quark"
    if "onnx.quantize" in producer or "onnxruntime" in producer:
        return "onnxruntime"
    return None


def _versions(quantizer: Optional[str]) -> Dict[str, Optional[str]]:
    from importlib.metadata import PackageNotFoundError, version

    out: Dict[str, Optional[str]] = {}
    for dist in DISTRIBUTIONS.get(quantizer, DISTRIBUTIONS[None]):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            if dist not in ("ppq", "esp-ppq"):
                out[dist] = None
    return out


def _apply_rescale(q: np.ndarray, factor: Optional[np.ndarray], axis: int) -> Tuple[np.ndarray, bool]:
    """``q`` with the per-channel factor undone, or ``q`` unchanged (False) when the shapes do not fit."""
    if factor is None or q.ndim < 2:
        return q, False
    ax = axis % q.ndim
    c = q.shape[ax]
    f = factor
    if c != f.size:
        if c % f.size:
            return q, False
        f = np.repeat(f, c // f.size)  # a Flatten after the channel axis
    shape = [1] * q.ndim
    shape[ax] = c
    return q / f.reshape(shape), True


def _json_num(v: float) -> Any:
    return v if math.isfinite(v) else ("NaN" if math.isnan(v) else ("Infinity" if v > 0 else "-Infinity"))


def _events(out_dir: str, histograms: Dict[str, Tuple[np.ndarray, np.ndarray]], display: List[Dict[str, Any]]
            ) -> None:
    """The xquant run: one legacy histogram per compare point (as MCT logs them) and the display graph."""
    from tensorboard.compat.proto.attr_value_pb2 import AttrValue
    from tensorboard.compat.proto.event_pb2 import Event
    from tensorboard.compat.proto.graph_pb2 import GraphDef
    from tensorboard.compat.proto.node_def_pb2 import NodeDef
    from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    run_dir = os.path.join(out_dir, XQUANT_RUN)
    os.makedirs(run_dir, exist_ok=True)
    for name in os.listdir(run_dir):  # one report per folder: a re-run replaces the events
        if name.startswith("events.out.tfevents."):
            os.remove(os.path.join(run_dir, name))
    writer = EventFileWriter(run_dir)
    now = time.time()
    gd = GraphDef()
    for n in display:
        nd = NodeDef(name=n["id"], op=n["op"], input=list(n["inputs"]))
        for k in ("onnx_node", "float_node", "float_op"):
            if n["attrs"].get(k):
                nd.attr[k].CopyFrom(AttrValue(s=str(n["attrs"][k]).encode("utf-8", "replace")))
        gd.node.append(nd)
    writer.add_event(Event(wall_time=now, step=0, graph_def=gd.SerializeToString()))
    for tag, (counts, edges) in histograms.items():
        lefts = edges[:-1]
        hist = HistogramProto(min=float(lefts.min()), max=float(lefts.max()), num=float(counts.sum()),
                              sum=float((lefts * counts).sum()), sum_squares=float((lefts * lefts * counts).sum()),
                              bucket_limit=lefts.tolist(), bucket=counts.tolist())
        writer.add_event(Event(wall_time=now, step=0, summary=Summary(value=[Summary.Value(tag=tag, histo=hist)])))
    writer.flush()
    writer.close()


def _write_json(path: str, data: Any) -> None:
    tmp = "%s.tmp-%d" % (path, os.getpid())
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(data, f, indent=1, allow_nan=True)
    os.replace(tmp, path)


def _load_model(model):
    import onnx

    if isinstance(model, (str, os.PathLike)):
        return onnx.load(os.fspath(model)), os.path.abspath(os.fspath(model))
    return model, None


def onnx_xquant_report(
    float_model: Any,
    quantized_model: Any,
    representative: Data,
    validation: Optional[Data] = None,
    out_dir: str = "xquant_onnx",
    *,
    toolchain: Optional[str] = None,
    labels: Optional[Any] = None,
    custom_metrics: Optional[Mapping[str, Callable[[np.ndarray, np.ndarray], float]]] = None,
    thresholds: Union[str, Mapping[str, Any], None] = None,
    model_name: Optional[str] = None,
    batch_size: Optional[int] = None,
    max_batches: Optional[int] = None,
    extra: Optional[Mapping[str, Any]] = None,
) -> Dict[str, Any]:
    """Compare a float ONNX model with its QDQ model and write the XQuant report folder ``out_dir``.

    ``float_model`` / ``quantized_model``: paths or ``onnx.ModelProto``.  ``representative`` / ``validation``:
    see :func:`load_data` (validation defaults to the representative data).  ``toolchain``: ``quark``,
    ``onnxruntime`` or ``ppq`` (detected from the file when left out).  ``labels``: class labels of the
    validation samples (array or ``.npy``); gives the float and quantized top-1 accuracy.  ``custom_metrics``:
    ``{name: fn(float, quantized) -> float}``, per batch, averaged.  ``thresholds``: ``"mct"`` (MCT XQuant's
    defaults), ``"ppq"`` (snr above 0.1 or cs under 0.99 marks a layer, as PPQ's analysis does) or an
    XQuantConfig-like dict (``threshold_quantize_error``, ...); default ``"ppq"`` for a PPQ model, else MCT's.

    Returns the summary written to ``onnx_qdq.json`` (``pairing`` holds the pairing statistics)."""
    started = time.time()
    fmodel, fpath = _load_model(float_model)
    qmodel, qpath = _load_model(quantized_model)
    quantizer = toolchain or detect_quantizer(qmodel)
    if quantizer not in TOOLCHAIN_BY_QUANTIZER and quantizer is not None:
        raise ValueError("toolchain must be one of %s, got %r" % (", ".join(sorted(TOOLCHAIN_BY_QUANTIZER)),
                                                                  quantizer))
    fgraph, qgraph = to_graph(fmodel), to_graph(qmodel)
    fshapes = _shapes(fmodel)
    channels = {k: int(v[1]) for k, v in fshapes.items() if len(v) >= 2 and isinstance(v[1], int) and v[1] > 0}
    pairing = op.pair(fgraph, qgraph, channels)

    uses_quark = any(n.domain in QUARK_DOMAINS for n in qmodel.graph.node)
    cps = [c for c in pairing.compare_points if c.float_tensor is not None and c.node is not None]
    f_names = sorted({c.float_tensor for c in cps})
    q_names = sorted({c.qdq_tensor for c in cps})
    fsess = _session(_with_outputs(fmodel, f_names), False)
    qsess = _session(_with_outputs(qmodel, q_names), uses_quark)
    f_out_names = [o.name for o in fmodel.graph.output]
    q_out_names = [o.name for o in qmodel.graph.output]
    input_names = [i.name for i in fsess.get_inputs()]
    q_input_names = [i.name for i in qsess.get_inputs()]
    bs = _batch_size((fmodel, qmodel), batch_size)
    datasets = {"repr": load_data(representative, input_names),
                "val": load_data(validation if validation is not None else representative, input_names)}
    metric_fns = dict(METRICS)
    for k, fn in (custom_metrics or {}).items():
        metric_fns[str(k)] = fn

    by_node: Dict[str, List[op.ComparePoint]] = {}
    for c in cps:
        by_node.setdefault(c.node, []).append(c)
    layer_of: Dict[int, str] = {}
    for node_id, points in by_node.items():
        for k, c in enumerate(points):
            layer_of[id(c)] = node_id if k == 0 else "%s:out%d" % (node_id, k)

    layer_metrics = {ds: {layer_of[id(c)]: _Mean() for c in cps} for ds in datasets}
    raw_metrics = {ds: {layer_of[id(c)]: _Mean() for c in cps} for ds in datasets}
    out_metrics = {ds: _Mean() for ds in datasets}
    outputs_all = {ds: {o: _Mean() for o in f_out_names} for ds in datasets}
    hists = {layer_of[id(c)]: _Histogram() for c in cps}
    stats: Dict[str, Dict[str, float]] = {}
    predictions: Dict[str, List[np.ndarray]] = {"float": [], "quantized": []}
    rescale_applied: Dict[str, bool] = {}
    samples = {}
    for ds, feeds in datasets.items():
        count = 0
        for batch in batches(feeds, bs, max_batches):
            count += next(iter(batch.values())).shape[0]
            fvals = dict(zip([o.name for o in fsess.get_outputs()],
                             fsess.run(None, {k: batch[k] for k in input_names})))
            qfeed = {qk: batch[fk] for qk, fk in zip(q_input_names, input_names)}
            qvals = dict(zip([o.name for o in qsess.get_outputs()], qsess.run(None, qfeed)))
            for c in cps:
                name = layer_of[id(c)]
                f = np.asarray(fvals[c.float_tensor], np.float64)
                q = np.asarray(qvals[c.qdq_tensor], np.float64)
                if f.shape != q.shape:
                    continue
                adj, applied = _apply_rescale(q, c.rescale, c.rescale_axis)
                rescale_applied[name] = applied
                layer_metrics[ds][name].add({k: fn(f, adj) for k, fn in metric_fns.items()})
                if applied:
                    raw_metrics[ds][name].add({k: fn(f, q) for k, fn in metric_fns.items()})
                if ds == "repr":
                    hists[name].add(f)
                    st = stats.setdefault(name, {"min": math.inf, "max": -math.inf})
                    st["min"] = min(st["min"], float(f.min()))
                    st["max"] = max(st["max"], float(f.max()))
            for fo, qo in zip(f_out_names, q_out_names):
                f = np.asarray(fvals[fo], np.float64)
                q = np.asarray(qvals[qo], np.float64)
                if f.shape == q.shape:
                    values = {k: fn(f, q) for k, fn in metric_fns.items()}
                    outputs_all[ds][fo].add(values)
                    if fo == f_out_names[0]:
                        out_metrics[ds].add(values)
            if ds == "val" and labels is not None:
                predictions["float"].append(np.asarray(fvals[f_out_names[0]]))
                predictions["quantized"].append(np.asarray(qvals[q_out_names[0]]))
        samples[ds] = count
        if count == 0:
            raise ValueError("the %s data gave no samples" % ("representative" if ds == "repr" else "validation"))

    accuracy = None
    if labels is not None:
        y = np.load(labels, allow_pickle=False) if isinstance(labels, (str, os.PathLike)) else np.asarray(labels)
        y = y.reshape(-1)
        acc = {}
        for k, preds in predictions.items():
            p = np.concatenate(preds).reshape(-1, np.concatenate(preds).shape[-1]).argmax(axis=1)
            n = min(len(p), len(y))
            acc[k] = float(np.mean(p[:n] == y[:n])) if n else None
        accuracy = acc

    os.makedirs(out_dir, exist_ok=True)
    qr = {}
    for ds in datasets:
        qr["output_similarity_metrics_" + ds] = {k: _json_num(v) for k, v in out_metrics[ds].result().items()}
        qr["intermediate_similarity_metrics_" + ds] = {
            layer_of[id(c)]: {k: _json_num(v) for k, v in layer_metrics[ds][layer_of[id(c)]].result().items()}
            for c in cps}
    _write_json(os.path.join(out_dir, QUANT_REPORT), qr)

    histograms = {name: h.result() for name, h in hists.items()}
    histograms = {k: v for k, v in histograms.items() if v is not None}
    details = _details(pairing, cps, layer_of, fmodel, qmodel, fpath, qpath, quantizer, fshapes, raw_metrics,
                       layer_metrics, rescale_applied, stats, outputs_all, samples)
    _events(out_dir, histograms, details["nodes"])
    _write_json(os.path.join(out_dir, DETAILS_FILE), details)

    th = thresholds_preset(thresholds if thresholds is not None else ("ppq" if quantizer == "ppq" else "mct"))
    toolchain_name = TOOLCHAIN_BY_QUANTIZER.get(quantizer, ONNX_QDQ)
    manifest = {
        "schema": MANIFEST_SCHEMA,
        "model_name": model_name or os.path.splitext(os.path.basename(qpath or fpath or "model"))[0],
        "created": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "toolchain": toolchain_name,
        "quantizer": quantizer,
        "xquant_config": th,
        "custom_metrics": sorted(custom_metrics or {}),
        "stage_logs": None,
        "troubleshoot": False,
        "versions": _versions(quantizer),
        "accuracy": accuracy,
        "bit_widths": None,
        "extra": dict(extra or {}, seconds=round(time.time() - started, 3)),
    }
    _write_json(os.path.join(out_dir, MANIFEST_FILENAME), manifest)
    return details


def _details(pairing: op.Pairing, cps: List[op.ComparePoint], layer_of: Dict[int, str], fmodel, qmodel,
             fpath: Optional[str], qpath: Optional[str], quantizer: Optional[str], fshapes: Dict[str, List[Any]],
             raw_metrics, layer_metrics, rescale_applied: Dict[str, bool], stats, outputs_all, samples
             ) -> Dict[str, Any]:
    silu = op.silu_muls(pairing.display)
    point_of_node = {c.node: c for c in cps}
    nodes = []
    for d in pairing.display:
        attrs: Dict[str, Any] = {"onnx_node": d.qdq_node}
        if d.float_node:
            attrs["float_node"] = d.float_node
        if d.float_op:
            attrs["float_op"] = d.float_op
        if d.absorbed:
            attrs["absorbed"] = list(d.absorbed)
        if d.id in silu:
            attrs["activation"] = "silu" if any(
                n.op == "Sigmoid" for n in pairing.display if n.id in d.inputs) else "hardswish"
        if d.weights is not None:
            attrs["weights"] = d.weights.to_json()
        c = point_of_node.get(d.id)
        if c is not None:
            attrs["activation_quant"] = c.spec.to_json()
        shape = fshapes.get(c.float_tensor) if c is not None and c.float_tensor else None
        nodes.append({"id": d.id, "op": d.op, "inputs": list(d.inputs), "attrs": attrs,
                      "output_shapes": [[v if isinstance(v, int) else -1 for v in shape]] if shape else []})
    layers = {}
    for c in cps:
        name = layer_of[id(c)]
        entry: Dict[str, Any] = {"node": c.node, "qdq_tensor": c.qdq_tensor, "quantized_tensor": c.source,
                                 "float_tensor": c.float_tensor, "name_pairing": c.by_name,
                                 "name_pairing_agrees": c.by_name == c.float_tensor,
                                 "quant": c.spec.to_json(), "float_range": stats.get(name)}
        if c.rescale is not None and rescale_applied.get(name):
            info = pairing.rescaled.get(c.source, {})
            entry["rescaled"] = dict(info, undone=True)
            entry["unadjusted_metrics"] = {ds: {k: _json_num(v) for k, v in raw_metrics[ds][name].result().items()}
                                           for ds in raw_metrics}
        layers[name] = entry
    unpaired_points = [{"qdq_tensor": c.qdq_tensor, "quantized_tensor": c.source}
                       for c in pairing.compare_points if c.float_tensor is None or c.node is None]
    last = _last_layer(pairing, cps, layer_of, qmodel)
    return {
        "format": FORMAT, "version": FORMAT_VERSION, "quantizer": quantizer,
        "float_model": fpath, "quantized_model": qpath, "samples": samples,
        "nodes": nodes, "layers": layers, "pairing": pairing.stats(),
        "replacements": pairing.replacements, "inserted_nodes": pairing.inserted,
        "unpaired_qdq_nodes": pairing.unpaired_qdq[:1000], "unpaired_float_nodes": pairing.unpaired_float[:1000],
        "unpaired_compare_points": unpaired_points[:1000],
        "outputs": {ds: {o: {k: _json_num(v) for k, v in m.result().items()} for o, m in outs.items()}
                    for ds, outs in outputs_all.items()},
        "last_layer": last,
    }


def _last_layer(pairing: op.Pairing, cps: List[op.ComparePoint], layer_of: Dict[int, str], qmodel
                ) -> Optional[Dict[str, Any]]:
    """The display node that produces the (first) model output, with its weights and activation bits."""
    outs = [o.name for o in qmodel.graph.output]
    by_node = {d.id: d for d in pairing.display}
    point_of_dq = {c.qdq_tensor: c for c in cps}
    for o in outs[:1]:
        c = point_of_dq.get(o)
        node_id = c.node if c is not None else None
        if node_id is None:
            for d in pairing.display:
                if o in d.outputs:
                    node_id = d.id
        if node_id is None:
            continue
        # A last op without weights (Softmax, Reshape): the weighted node before it is the one that loses bits.
        d = by_node.get(node_id)
        seen = 0
        while d is not None and d.weights is None and len(d.inputs) == 1 and seen < 8:
            d = by_node.get(d.inputs[0])
            seen += 1
        d = d if d is not None and d.weights is not None else by_node.get(node_id)
        act = next((cc for cc in cps if cc.node == node_id), None)
        return {"name": d.id if d is not None else node_id,
                "weights_nbits": d.weights.bits if d is not None and d.weights is not None else None,
                "activation_nbits": act.spec.bits if act is not None else None}
    return None


def main(argv: Optional[Sequence[str]] = None) -> int:
    p = argparse.ArgumentParser(prog="python -m tb_xquant_plugin.onnx_run",
                                description="XQuant report of a QDQ ONNX model against its float model.")
    p.add_argument("--float", dest="float_model", required=True, help="the float ONNX model")
    p.add_argument("--quantized", required=True, help="the QDQ ONNX model (Quark, onnxruntime, PPQ)")
    p.add_argument("--representative", required=True, help=".npy (one input) or .npz (by input name)")
    p.add_argument("--validation", help=".npy / .npz; default: the representative data")
    p.add_argument("--out", required=True, help="the report folder to write (inside your TensorBoard logdir)")
    p.add_argument("--toolchain", choices=sorted(TOOLCHAIN_BY_QUANTIZER), help="default: read from the model")
    p.add_argument("--labels", help=".npy of the validation labels (top-1 accuracy)")
    p.add_argument("--thresholds", choices=("mct", "ppq"), help="default: ppq for a PPQ model, else mct")
    p.add_argument("--batch-size", type=int)
    p.add_argument("--max-batches", type=int)
    p.add_argument("--model-name")
    a = p.parse_args(argv)
    summary = onnx_xquant_report(a.float_model, a.quantized, a.representative, a.validation, a.out,
                                 toolchain=a.toolchain, labels=a.labels, thresholds=a.thresholds,
                                 model_name=a.model_name, batch_size=a.batch_size, max_batches=a.max_batches)
    st = summary["pairing"]
    print("wrote %s: %d compare points, %d paired by structure (name pairing agrees on %d), %d rescaled, "
          "%d op replacements" % (a.out, st["compare_points"], st["paired_structurally"], st["name_pairing_agrees"],
                                  st["rescaled"], st["replacements"]))
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
