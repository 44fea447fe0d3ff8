"""The in-memory analysis model: everything known about one XQuant report, independent of thresholds."""
from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional

import numpy as np

from tb_xquant_plugin.readers.artifacts import Artifact, Problem
from tb_xquant_plugin.readers.graphs import GraphNode, QuantParams
from tb_xquant_plugin.model.thresholds import Thresholds

DATASETS = ("repr", "val")


@dataclasses.dataclass
class Layer:
    """A compare point of XQuant: a layer with metrics, named as MCT names it."""

    name: str
    index: int
    metrics: Dict[str, Dict[str, float]]  # dataset -> metric -> value
    node: Optional[str] = None  # id of the graph node it maps to
    op: Optional[str] = None


@dataclasses.dataclass
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
    # Threshold-independent results of the judges, computed on first use (judges.run.per_report).
    memo: Dict[str, Any] = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        self.layer_by_name: Dict[str, Layer] = {l.name: l for l in self.layers}
        self.sorted_layer_names: List[str] = sorted(self.layer_by_name)  # for prefix lookups
        self.node_by_id: Dict[str, GraphNode] = {n.id: n for n in self.nodes}
        self.node_by_name: Dict[str, GraphNode] = {}
        for n in self.nodes:
            self.node_by_name.setdefault(n.name, n)
        self.layer_of_node: Dict[str, str] = {l.node: l.name for l in self.layers if l.node}
        self.artifact_by_id: Dict[str, Artifact] = {a.id: a for a in self.artifacts}

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
