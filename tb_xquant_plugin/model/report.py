"""The analysis model: everything known about one report, whichever toolchain produced it.

Pure data: nothing here reads a file or imports a toolchain.  A producer adapter
(``tb_xquant_plugin.producers``) fills a :class:`Report`; the judges read it."""
from __future__ import annotations

import dataclasses
import hashlib
import math
from typing import Any, Callable, Dict, FrozenSet, List, Optional, Tuple

import numpy as np

from tb_xquant_plugin.model.thresholds import Thresholds
from tb_xquant_plugin.model.verdict import Verdict
from tb_xquant_plugin.readers.graphs import GraphNode

DATASETS = ("repr", "val")

# Toolchains (Report.toolchain): which quantizer made the model a report is about.  Judges and snippets are
# chosen per toolchain.
MCT_PYTORCH = "mct-pytorch"
MCT_KERAS = "mct-keras"
ONNX_QDQ = "onnx-qdq"  # a QDQ ONNX model whose quantizer is not known
# QDQ ONNX models by quantizer (producers.onnx_qdq): the countermeasures are each quantizer's own options.
ONNX_QUARK = "onnx-quark"
ONNX_ORT = "onnx-onnxruntime"
ONNX_PPQ = "onnx-ppq"
ONNX_TOOLCHAINS = frozenset((ONNX_QDQ, ONNX_QUARK, ONNX_ORT, ONNX_PPQ))

# What a producer can supply (Report.supplies); a judge lists the ones it needs (judges.base.Judge.needs).
GRAPH = "graph"
LAYER_METRICS = "layer_metrics"
HISTOGRAMS = "histograms"
QUANT_PARAMS = "quant_params"
BIT_WIDTHS = "bit_widths"
PRODUCER_VERDICTS = "producer_verdicts"
STAGE_GRAPHS = "stage_graphs"
SUPPLIES = (GRAPH, LAYER_METRICS, HISTOGRAMS, QUANT_PARAMS, BIT_WIDTHS, PRODUCER_VERDICTS, STAGE_GRAPHS)


@dataclasses.dataclass
class Problem:
    """Something about a report the user should know and can fix: what is wrong, and how to fix it."""

    what: str
    hint: str

    def to_json(self) -> Dict[str, str]:
        return {"what": self.what, "hint": self.hint}


@dataclasses.dataclass
class Artifact:
    """A picture the producer saved beside its report (served by id, never by path)."""

    id: str
    kind: str  # similarity_chart | outlier_histogram | other
    name: str
    path: str
    metric: Optional[str] = None
    dataset: Optional[str] = None
    layer: Optional[str] = None

    def to_json(self) -> Dict[str, Any]:
        d = dataclasses.asdict(self)
        d.pop("path")
        return d


@dataclasses.dataclass
class QuantParams:
    """Quantization parameters of one node, as the quantization run set them."""

    activation_nbits: Optional[int] = None
    activation_threshold: Optional[float] = None
    # [min, max] of the quantized grid when the producer reads it (a QDQ model's scale and zero point)
    activation_range: Optional[List[float]] = None
    signed: Optional[bool] = None
    quant_mode: Optional[str] = None
    z_threshold: Optional[float] = None
    shift_negative_activation_correction: Optional[bool] = None
    shift_negative_ratio: Optional[float] = None
    activation_error_method: Optional[str] = None
    weights_bias_correction: Optional[bool] = None
    op: Optional[str] = None
    # Final bits of the kernel (the weights mixed precision configures) and where they were read:
    # "stage graph" (a single candidate), "mct log" (MCT's "Final weights bit-width configuration"
    # line) or "manifest"; the candidates the stage graph lists (several when mixed precision chose).
    weights_nbits: Optional[int] = None
    weights_nbits_source: Optional[str] = None
    weights_nbits_candidates: Optional[List[int]] = None

    def to_json(self) -> Dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class LastLayer:
    """The layer whose bit widths MCT's mixed-precision judge inspects, and its widths (None when unknown)."""

    layer: str
    weights_nbits: Optional[int]
    activation_nbits: Optional[int]
    source: str  # "manifest" | "graph"
    weights_from: Optional[str]

    def to_json(self) -> Dict[str, Any]:
        return {"layer": self.layer, "weights_nbits": self.weights_nbits, "activation_nbits": self.activation_nbits,
                "from": self.source, "weights_from": self.weights_from}


@dataclasses.dataclass
class Layer:
    """A compare point: a layer with metrics, named as the producer names it."""

    name: str
    index: int
    metrics: Dict[str, Dict[str, float]]  # dataset -> metric -> value
    node: Optional[str] = None  # id of the graph node it maps to
    op: Optional[str] = None

    def mse(self) -> Optional[float]:
        """Its MSE on the validation data, else on the representative data; None when not a finite number."""
        x = (self.metrics.get("val") or self.metrics.get("repr") or {}).get("mse")
        return float(x) if isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) else None


# (nodes, None) or (None, why they are not available): a stage graph the producer can load on demand.
StageGraph = Tuple[Optional[List[GraphNode]], Optional[str]]


def as_bits(value: Any) -> Optional[int]:
    """A bit width from JSON: an int, or a float holding one; anything else (bool, inf, text) is None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None


def report_id(rel_path: str) -> str:
    """Stable id of a report from its path relative to the logdir."""
    return "r" + hashlib.sha1(rel_path.encode("utf-8", "surrogatepass")).hexdigest()[:12]


@dataclasses.dataclass(eq=False)  # identity: reports are cache keys
class Report:
    id: str
    rel: str  # path relative to the logdir
    dir: str  # absolute (gfile) path of the report dir
    manifest: Optional[Dict[str, Any]]
    defaults: Thresholds
    metrics: List[str]
    layers: List[Layer]
    output_metrics: Dict[str, Dict[str, float]]
    nodes: List[GraphNode]  # display graph (fake-quantize nodes removed)
    node_alias: Dict[str, str]
    histograms: Dict[str, np.ndarray]
    quant: Dict[str, QuantParams]
    stage_run: Optional[str]
    mct_troubleshoot: Optional[Dict[str, Any]]
    artifacts: List[Artifact]
    problems: List[Problem]
    has_quant_report: bool = False
    has_graph: bool = False
    # Which producer adapter built it, for which toolchain, and what it could supply (SUPPLIES).
    producer: str = ""
    toolchain: str = ""
    supplies: FrozenSet[str] = frozenset()
    # The producer's own verdicts (MCT's troubleshoot_report.json), in the report's names.
    producer_verdicts: List[Verdict] = dataclasses.field(default_factory=list)
    last_layer: Optional[LastLayer] = None
    # Loads one of the producer's stage graphs by stage name (read on demand: most analyses never need one).
    stage_graph_loader: Optional[Callable[[str], StageGraph]] = dataclasses.field(default=None, repr=False)
    # Threshold-independent results of the judges (judges.facts.ReportFacts), created on first use.
    facts: Any = dataclasses.field(default=None, repr=False)
    # How the quantized graph's nodes were paired with the producer's own node names (MCT for PyTorch:
    # producers.mct_matching).  ``histograms`` and ``quant`` are keyed by the quantized graph's layer names;
    # ``mct_names`` maps a display node id to the producer's node name (histogram tag, stage-graph name),
    # ``mct_histograms`` / ``mct_quant`` keep the producer's keys (to replay its name-based rules), and
    # ``inserted_by_mct`` says, per display node id, what the quantizer inserted that node for (a node the float
    # model does not have, e.g. shift-negative correction's add / pad).
    mct_names: Dict[str, str] = dataclasses.field(default_factory=dict, repr=False)
    mct_histograms: Dict[str, np.ndarray] = dataclasses.field(default_factory=dict, repr=False)
    mct_quant: Dict[str, QuantParams] = dataclasses.field(default_factory=dict, repr=False)
    inserted_by_mct: Dict[str, str] = dataclasses.field(default_factory=dict)
    # The event runs whose graph or histograms the build read (set by the store): when TensorBoard's data
    # provider loads more of any of them, the report is built again.
    source_runs: Tuple[str, ...] = ()

    def __post_init__(self):
        self.layer_by_name: Dict[str, Layer] = {l.name: l for l in self.layers}
        self.sorted_layer_names: List[str] = sorted(self.layer_by_name)  # for prefix lookups
        self.node_by_id: Dict[str, GraphNode] = {n.id: n for n in self.nodes}
        self.node_by_name: Dict[str, GraphNode] = {}
        for n in self.nodes:
            self.node_by_name.setdefault(n.name, n)
        self.layer_of_node: Dict[str, str] = {l.node: l.name for l in self.layers if l.node}
        self.artifact_by_id: Dict[str, Artifact] = {a.id: a for a in self.artifacts}
        self._stage_graphs: Dict[str, StageGraph] = {}
        if not self.mct_histograms:  # not re-keyed: the producer's names are the report's
            self.mct_histograms = self.histograms
        if not self.mct_quant:
            self.mct_quant = self.quant

    @property
    def name(self) -> str:
        return self.rel

    @property
    def model_name(self) -> Optional[str]:
        return (self.manifest or {}).get("model_name") if isinstance(self.manifest, dict) else None

    def histogram(self, layer: str) -> Optional[np.ndarray]:
        h = self.histograms.get(layer)
        if h is None and layer.endswith("_layer"):
            h = self.histograms.get(layer[: -len("_layer")])
        return h

    def stage_graph(self, stage: str) -> StageGraph:
        """One stage graph of the quantization run, loaded once through the producer."""
        if stage not in self._stage_graphs:
            if self.stage_graph_loader is None:
                self._stage_graphs[stage] = (None, "no stage logs were found for this report")
            else:
                self._stage_graphs[stage] = self.stage_graph_loader(stage)
        return self._stage_graphs[stage]


def unreadable_report(rid: str, rel: str, report_dir: str, error: Exception) -> Report:
    """Stand-in for a report whose build failed unexpectedly, so that the other reports still load."""
    return Report(
        id=rid, rel=rel, dir=report_dir, manifest=None, defaults=Thresholds.defaults(), metrics=[], layers=[],
        output_metrics={"repr": {}, "val": {}}, nodes=[], node_alias={}, histograms={}, quant={}, stage_run=None,
        mct_troubleshoot=None, artifacts=[],
        problems=[Problem("this report could not be read: %s: %s" % (type(error).__name__, str(error)[:300]),
                          "The files of this report may be half-written; reload later. Other reports are unaffected.")])
