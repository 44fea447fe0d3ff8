"""Synthetic models written in MCT 2.6.1's on-disk format, for benchmarks (no torch, no MCT).

    python -m bench.mct_format --out DIR --layers 100 1000 5000 20000 [--seed 0] [--bins 30] [--manifest]
    python -m bench.mct_format --out DIR --shape densenet --shape googlenet [--degraded 0.1]   # SHAPES

``write_model_logdir(out_dir, n_layers, seed)`` writes one run laid out like a ``demo.generate`` scenario::

    out_dir/model_<N>/
      mct_logs/logs_01012025_000000/tensorboard_logs/after_activation_bias_correction/events.out.tfevents.*
      xquant_report/
        quant_report.json                 per-layer mse / cs / sqnr on representative and validation data
        troubleshoot_report.json          what MCT's own judges would report (optional)
        xquant/events.out.tfevents.*      float histograms, the quantized model's GraphDef, 'Resources' metadata
        output_similarity_metrics_{repr,val}/events.out.tfevents.*   MCT's text summaries
        tb_xquant_manifest.json           only with ``manifest=True``

The model is a plausible CNN of N compare points (XQuant compares the layers MCT wraps with
``PytorchQuantizationWrapper``: convolutions and linear layers): a stem, four stages of blocks -- inverted
bottlenecks with a residual ``add``, inception-style blocks whose two branches meet in a ``cat``, single
convolutions whose residual ``add`` MCT collapsed into them, strided downsampling convolutions -- then
pooling, ``flatten`` and a two-layer classifier.  Modules are named torchvision-style (``blocks.3.conv.0``) so
MCT's names follow (``blocks_3_conv_0_bn`` after BN folding, ``blocks_7_conv_add_12_collapsed``).
A seeded few percent of the layers are degraded (so detection and the judges have work but the
majority rule does not trigger), some of them with outlier tails in their float histograms; some blocks use
activations that go negative (SiLU, Hardswish, GELU, LeakyReLU, PReLU); some concatenations join branches
whose ranges differ by 20-80x; mixed precision left the classifier's activation at 2 bits.

What follows MCT 2.6.1 exactly (``core/common/visualization/tensorboard_writer.py``,
``xquant/common/tensorboard_utils.py``, ``xquant/pytorch/tensorboard_utils.py``, checked against the real
demo logs): event files written by TensorBoard's ``EventFileWriter``; node names ``<graph>/<Op>_<k>/<name>``,
``Input/<name>``, ``Output/<name>``, ``device == op``; per-type attribute encoding (int -> ``i``, float -> ``f``,
bool -> ``b``, anything else -> ``s = str(v)``); the stage graph's ``.weights`` / ``.activation`` helper nodes
with every field of MCT's quantization configs; the quantized graph as ``torch.fx`` traces MCT's exported model
(``Input/_args``, ``getitem``, ``fake_quantize_per_tensor_affine[_k]`` activation quantizers, wrapped layers
named ``<name>_layer``, no quantizer after fused or non-quantized nodes) with ``xquant_repr`` / ``xquant_val``
holding ``str()`` of the metric dicts; a ``TaggedRunMetadata`` tagged ``Resources`` after each graph; one
legacy ``histo`` summary per node whose activation is quantized or not fused (tag = float node name,
``bucket_limit`` = the left edges of the bins, float counts as MCT's merged histograms have); the JSON files'
keys, order and ``indent=4``.

What differs from a real run, to keep files small and generation fast: histograms have ``bins`` bins
(default 30; MCT's ``HistogramCollector`` uses 2048, pass ``bins=MCT_HISTOGRAM_BINS`` for full size -- about
30 KB more per histogram); only the stage graph the viewer reads is written (MCT writes about 13 stages plus
per-channel statistics); no PNG charts and no ``mct_log.log``.
"""
from __future__ import annotations

import argparse
import collections
import dataclasses
import json
import math
import os
import shutil
import sys
import time
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np
from tensorboard.compat.proto.attr_value_pb2 import AttrValue
from tensorboard.compat.proto.config_pb2 import RunMetadata
from tensorboard.compat.proto.event_pb2 import Event, TaggedRunMetadata
from tensorboard.compat.proto.graph_pb2 import GraphDef
from tensorboard.compat.proto.node_def_pb2 import NodeDef
from tensorboard.compat.proto.step_stats_pb2 import AllocatorMemoryUsed, DeviceStepStats, NodeExecStats, StepStats
from tensorboard.compat.proto.summary_pb2 import HistogramProto, Summary, SummaryMetadata
from tensorboard.compat.proto.tensor_pb2 import TensorProto
from tensorboard.compat.proto.tensor_shape_pb2 import TensorShapeProto
from tensorboard.plugins.text.plugin_data_pb2 import TextPluginData
from tensorboard.summary.writer.event_file_writer import EventFileWriter

__all__ = ["write_model_logdir", "MCT_HISTOGRAM_BINS", "DEFAULT_BINS", "STAGE"]

MCT_HISTOGRAM_BINS = 2048  # model_compression_toolkit HistogramCollector(n_bins=2048)
DEFAULT_BINS = 30
STAGE = "after_activation_bias_correction"  # the last stage MCT logs, holding final quantization parameters
STAGE_LOG_FOLDER = "logs_01012025_000000"  # mct.set_log_folder adds logs_<ddmmyyyy_HHMMSS>
XQUANT_TAG = "xquant"  # MCT's TENSORBOARD_DEFAULT_TAG
MODEL_CLASS = "SyntheticNet"  # the float graph is named after the model class
QUANTIZED_GRAPH = "PytorchModel"  # MCT's name for the graph read back from the quantized model
BATCH = 32  # representative batch size, the first dimension of every logged shape
N_BATCHES = 8  # representative batches whose statistics the histograms merge
DEGRADED_FRACTION = 0.03
OUTLIER_HISTOGRAM_DIR = "outlier_histgrams"  # (sic) MCT 2.6.1

# MCT's XQuantConfig defaults: what decides the degraded layers of troubleshoot_report.json.
MCT_THRESHOLDS = {"mse": 0.1, "cs": 0.1, "sqnr": 0.1}
MCT_DETECT_UNDER = {"mse": False, "cs": True, "sqnr": True}
MCT_DEGRADE_LAYER_RATIO = 0.5
MCT_ZSCORE_OUTLIER = 5.0
MCT_BITWIDTH_LAST_LAYER = 2

QUANT, FLN_QUANT, NO_QUANT = "QUANT", "FLN_QUANT", "NO_QUANT"  # ActivationQuantizationMode
FUSED_AFTER_CONV = {"ReLU", "ReLU6", "LeakyReLU", "Hardtanh", "SiLU", "Hardswish", "PReLU", "Sigmoid", "Tanh"}
MCT_NEGATIVE_ACTIVATIONS = {"PReLU", "ELU", "elu", "Hardswish", "SiLU", "GELU"}  # judge_shift_negative_activation
# Activation of a block: (torch class, how its float output is distributed, lowest value as a fraction of the
# positive scale, probability).  ReLU dominates, as in most CNNs.
ACTIVATIONS = (
    ("ReLU", "relu", 0.0, 0.78),
    ("SiLU", "negative", 0.278, 0.06),
    ("Hardswish", "negative", 0.375, 0.05),
    ("LeakyReLU", "negative", 0.04, 0.05),
    ("GELU", "negative", 0.17, 0.04),
    ("PReLU", "negative", 0.9, 0.02),
)
ACTIVATION_ATTRS = {
    "ReLU": {"inplace": False}, "SiLU": {"inplace": False}, "Hardswish": {"inplace": False},
    "LeakyReLU": {"negative_slope": 0.01, "inplace": False}, "GELU": {"approximate": "none"},
    "PReLU": {"num_parameters": 1, "init": 0.25},
}
STAGE_CHANNELS = (24, 48, 96, 160)  # each stage after the first starts with a strided convolution
BLOCK_KINDS = (("bottleneck", 0.45), ("inception", 0.35), ("collapsed", 0.20))


@dataclasses.dataclass
class Node:
    """A node of MCT's float graph (after BN folding and residual collapsing), with what the generator
    needs to write it: its activation quantization mode, weights and how its float output is distributed."""

    name: str
    op: str
    inputs: List[int]
    shape: Tuple[int, ...]
    attrs: Dict[str, Any]
    mode: str = QUANT
    weights: int = 0  # > 0: a layer MCT wraps (kernel and bias), i.e. an XQuant compare point
    weight_attrs: Tuple[str, ...] = ()  # quantized weight attributes ("weight", "bias")
    dist: str = "gauss"  # relu | negative | gauss | input
    scale: float = 1.0  # standard deviation of the positive side
    low: float = 0.0  # lowest value as a fraction of scale ("negative")
    tail_z: float = 0.0  # > 0: an outlier tail reaching this many scales from the body
    activation_bits: int = 8
    module: str = ""  # torch module path (for MCT's unbalanced-concatenation judge)

    @property
    def has_histogram(self) -> bool:
        """MCT collects statistics for every node except a layer fused with its activation."""
        return self.mode != FLN_QUANT

    @property
    def quantizer_follows(self) -> bool:
        """Whether the quantized model has an activation quantizer (fake_quantize) after this node."""
        return self.mode == QUANT


class _ModelBuilder:
    """Builds the float graph block by block, naming nodes as torch.fx and MCT's substitutions do."""

    def __init__(self, rng: np.random.Generator):
        self.rng = rng
        self.nodes: List[Node] = []
        self._fx_counts: Dict[str, int] = collections.Counter()

    # -- primitives ----------------------------------------------------------------------------
    def add_node(self, node: Node) -> int:
        self.nodes.append(node)
        return len(self.nodes) - 1

    def fx_name(self, base: str) -> str:
        """torch.fx names functional calls ``add``, ``add_1``, ``add_2``, ..."""
        k = self._fx_counts[base]
        self._fx_counts[base] += 1
        return base if k == 0 else "%s_%d" % (base, k)

    def input(self, channels: int, size: int) -> int:
        return self.add_node(Node("x", "DummyPlaceHolder", [], (BATCH, channels, size, size), {}, dist="input",
                              scale=1.0))

    def conv(self, src: int, module: str, out_ch: int, kernel: int = 1, stride: int = 1, depthwise: bool = False,
             bn: bool = True, fused: bool = True, name: Optional[str] = None) -> int:
        """A Conv2d (BN folded into it when ``bn``: MCT names it ``<conv>_bn``)."""
        shape = self.nodes[src].shape
        in_ch, size = shape[1], shape[2]
        groups = in_ch if depthwise else 1
        out_size = max(1, size // stride)
        pad = kernel // 2
        attrs = {"in_channels": in_ch, "out_channels": out_ch, "kernel_size": (kernel, kernel), "stride": (stride, stride),
                 "padding": (pad, pad), "dilation": (1, 1), "groups": groups, "bias": True, "padding_mode": "zeros"}
        base = module.replace(".", "_")
        node_name = name or (base + "_bn" if bn else base)
        weights = out_ch * (in_ch // groups) * kernel * kernel + out_ch
        return self.add_node(Node(node_name, "Conv2d", [src], (BATCH, out_ch, out_size, out_size), attrs,
                              mode=FLN_QUANT if fused else QUANT, weights=weights, weight_attrs=("weight", "bias"),
                              dist="gauss", scale=self.draw_scale(), module=module))

    def activation(self, src: int, module: str, kind: Tuple[str, str, float, float]) -> int:
        cls, dist, low, _p = kind
        return self.add_node(Node(module.replace(".", "_"), cls, [src], self.nodes[src].shape, dict(ACTIVATION_ATTRS.get(cls, {})),
                              weight_attrs=("weight",) if cls == "PReLU" else (), dist=dist, scale=self.draw_scale(),
                              low=low))

    def add(self, a: int, b: int, scale: float) -> int:
        return self.add_node(Node(self.fx_name("add"), "add", [a, b], self.nodes[a].shape, {}, dist="gauss", scale=scale))

    def cat(self, srcs: Sequence[int]) -> int:
        shapes = [self.nodes[s].shape for s in srcs]
        widest = self.nodes[max(srcs, key=lambda s: self.nodes[s].scale)]
        return self.add_node(Node(self.fx_name("cat"), "cat", list(srcs), (BATCH, sum(s[1] for s in shapes)) + shapes[0][2:],
                              {}, dist=widest.dist, scale=widest.scale, low=widest.low))

    def draw_scale(self) -> float:
        return float(np.exp(self.rng.normal(math.log(1.5), 0.45)))

    def pick_activation(self) -> Tuple[str, str, float, float]:
        p = np.array([a[3] for a in ACTIVATIONS])
        return ACTIVATIONS[int(self.rng.choice(len(ACTIVATIONS), p=p / p.sum()))]

    # -- blocks (each returns its output node and adds its compare points) -------------------------
    def conv_act(self, src: int, module: str, conv_index: int, out_ch: int, kernel: int, act, stride: int = 1,
                 depthwise: bool = False) -> int:
        """``module.<i>`` conv, ``module.<i+1>`` BN, ``module.<i+2>`` activation, as in torchvision."""
        fused = act[0] in FUSED_AFTER_CONV
        c = self.conv(src, "%s.%d" % (module, conv_index), out_ch, kernel, stride, depthwise, fused=fused)
        return self.activation(c, "%s.%d" % (module, conv_index + 2), act)

    def bottleneck(self, src: int, b: int) -> int:
        """Inverted bottleneck: expand, depthwise, linear projection, residual add (3 compare points)."""
        ch = self.nodes[src].shape[1]
        act = self.pick_activation()
        m = "blocks.%d.conv" % b
        h = self.conv_act(src, m, 0, ch * 4, 1, act)
        h = self.conv_act(h, m, 3, ch * 4, 3, act, depthwise=True)
        p = self.conv(h, "%s.6" % m, ch, 1, fused=False)
        self.nodes[p].scale = self.nodes[src].scale * float(self.rng.uniform(0.3, 1.2))
        return self.add(src, p, math.hypot(self.nodes[src].scale, self.nodes[p].scale))

    def inception(self, src: int, b: int, unbalanced: bool) -> int:
        """Two branches concatenated, then a 1x1 fuse convolution (4 compare points)."""
        ch = self.nodes[src].shape[1]
        act = self.pick_activation()
        left = self.conv_act(src, "blocks.%d.branch1" % b, 0, ch // 2, 1, act)
        right = self.conv_act(src, "blocks.%d.branch2" % b, 0, ch // 2, 1, act)
        right = self.conv_act(right, "blocks.%d.branch2" % b, 3, ch // 2, 3, act)
        if unbalanced:
            self.nodes[right].scale *= float(self.rng.uniform(20.0, 80.0))
        joined = self.cat([left, right])
        return self.conv_act(joined, "blocks.%d.fuse" % b, 0, ch, 1, act)

    def collapsed(self, src: int, b: int) -> int:
        """``x + conv(x)``, which MCT's residual collapsing turns into one convolution (1 compare point)."""
        ch = self.nodes[src].shape[1]
        add_name = self.fx_name("add")
        node = self.conv(src, "blocks.%d.conv" % b, ch, 3, bn=False, fused=False,
                         name="blocks_%d_conv_%s_collapsed" % (b, add_name))
        self.nodes[node].scale = self.nodes[src].scale * float(self.rng.uniform(1.0, 1.5))
        return node

    def downsample(self, src: int, b: int, out_ch: int) -> int:
        """A strided convolution between stages (1 compare point)."""
        return self.conv_act(src, "blocks.%d" % b, 0, out_ch, 3, ACTIVATIONS[0], stride=2)


def build_model(n_layers: int, rng: np.random.Generator) -> List[Node]:
    """The float graph of a model with ``n_layers`` compare points (at least 5)."""
    n_layers = max(5, int(n_layers))
    mb = _ModelBuilder(rng)
    x = mb.input(3, 64)
    h = mb.conv_act(x, "stem", 0, STAGE_CHANNELS[0], 3, ACTIVATIONS[0], stride=2)
    body = n_layers - 1 - 2  # the stem and the classifier's two linear layers
    stages = len(STAGE_CHANNELS)
    per_stage = [body // stages + (1 if i < body % stages else 0) for i in range(stages)]
    block = 0
    kinds = [k for k, _ in BLOCK_KINDS]
    probs = np.array([p for _, p in BLOCK_KINDS])
    for stage, channels in enumerate(STAGE_CHANNELS):
        left = per_stage[stage]
        if stage > 0 and left > 0:
            h = mb.downsample(h, block, channels)
            block, left = block + 1, left - 1
        while left > 0:
            kind = kinds[int(rng.choice(len(kinds), p=probs))]
            if kind == "inception" and left >= 4:
                h = mb.inception(h, block, unbalanced=rng.random() < 0.04)
                left -= 4
            elif kind == "bottleneck" and left >= 3:
                h = mb.bottleneck(h, block)
                left -= 3
            else:
                h = mb.collapsed(h, block)
                left -= 1
            block += 1
    ch = mb.nodes[h].shape[1]
    pool = mb.add_node(Node("pool", "AdaptiveAvgPool2d", [h], (BATCH, ch, 1, 1), {"output_size": 1},
                        dist=mb.nodes[h].dist, scale=mb.nodes[h].scale * 0.5, low=mb.nodes[h].low))
    flat = mb.add_node(Node(mb.fx_name("flatten"), "flatten", [pool], (BATCH, ch), {}, mode=NO_QUANT,
                        dist=mb.nodes[pool].dist, scale=mb.nodes[pool].scale, low=mb.nodes[pool].low))
    fc = mb.add_node(Node("classifier_0", "Linear", [flat], (BATCH, 4 * ch),
                      {"in_features": ch, "out_features": 4 * ch, "bias": True}, weights=ch * 4 * ch + 4 * ch,
                      weight_attrs=("weight", "bias"), scale=mb.draw_scale(), module="classifier.0"))
    act = mb.activation(fc, "classifier.1", ACTIVATIONS[-1])
    mb.add_node(Node("classifier_2", "Linear", [act], (BATCH, 10), {"in_features": 4 * ch, "out_features": 10, "bias": True},
                 weights=4 * ch * 10 + 10, weight_attrs=("weight", "bias"), scale=4.0 * mb.draw_scale(), module="classifier.2",
                 activation_bits=MCT_BITWIDTH_LAST_LAYER))
    return mb.nodes


# ------------------------------------------------------------------------------------------------
# other graph shapes: torchvision architectures as torch.fx and MCT name their nodes
# ------------------------------------------------------------------------------------------------
RELU = ACTIVATIONS[0]
SILU = ("SiLU", "negative", 0.278, 0.0)
HARDSWISH = ("Hardswish", "negative", 0.375, 0.0)
SIGMOID = ("Sigmoid", "gauss", 0.0, 0.0)


class _ShapeBuilder(_ModelBuilder):
    """Builds the float graph of a torchvision architecture: module calls named after the module path
    (``features.denseblock1.denselayer1.conv1`` -> ``features_denseblock1_denselayer1_conv1``), functional calls
    named by torch.fx's per-function counters (``cat``, ``cat_1``, ``relu_3``), BN folded into the convolution
    before it (``<conv>_bn``), a BN after a concatenation kept as a node of its own."""

    def func(self, base: str, op: str, srcs: Sequence[int], shape: Optional[Tuple[int, ...]] = None,
             mode: str = QUANT, attrs: Optional[Dict[str, Any]] = None) -> int:
        """A functional call (``torch.cat``, ``F.relu``, ``x.chunk``, ``operator.mul``): one-token fx name."""
        src = self.nodes[srcs[0]]
        return self.add_node(Node(self.fx_name(base), op, list(srcs), shape or src.shape, dict(attrs or {}), mode=mode,
                                  dist=src.dist, scale=src.scale, low=src.low))

    def module(self, src: int, module: str, op: str, shape: Optional[Tuple[int, ...]] = None,
               attrs: Optional[Dict[str, Any]] = None, dist: Optional[str] = None) -> int:
        """A call of a weightless module (pooling, BatchNorm kept apart, an activation module)."""
        s = self.nodes[src]
        return self.add_node(Node(module.replace(".", "_"), op, [src], shape or s.shape, dict(attrs or {}),
                                  dist=dist or s.dist, scale=s.scale, low=s.low))

    def bn(self, src: int, module: str) -> int:
        """A BatchNorm2d MCT cannot fold (it follows a concatenation, not a convolution)."""
        ch = self.nodes[src].shape[1]
        n = self.module(src, module, "BatchNorm2d", attrs={"num_features": ch, "eps": 1e-5, "momentum": 0.1,
                                                            "affine": True, "track_running_stats": True}, dist="gauss")
        self.nodes[n].weight_attrs = ("weight", "bias")
        return n

    def pool(self, src: int, module: str, kernel: int, stride: int, kind: str = "MaxPool2d") -> int:
        s = self.nodes[src].shape
        return self.module(src, module, kind, (s[0], s[1], max(1, s[2] // stride), max(1, s[3] // stride)),
                           {"kernel_size": kernel, "stride": stride, "padding": 0})

    def linear(self, src: int, module: str, out_features: int, last: bool = False) -> int:
        in_f = self.nodes[src].shape[1]
        return self.add_node(Node(module.replace(".", "_"), "Linear", [src], (BATCH, out_features),
                                  {"in_features": in_f, "out_features": out_features, "bias": True},
                                  weights=in_f * out_features + out_features, weight_attrs=("weight", "bias"),
                                  scale=4.0 * self.draw_scale() if last else self.draw_scale(), module=module,
                                  activation_bits=MCT_BITWIDTH_LAST_LAYER if last else 8))

    def head(self, src: int, classifier: str = "classifier", pool_module: Optional[str] = None,
             dropout: Optional[str] = None) -> int:
        """Global average pooling (``F.adaptive_avg_pool2d``, or the module ``pool_module``), flatten, a Dropout
        module when named, the linear classifier (the model's last compare point)."""
        ch = self.nodes[src].shape[1]
        if pool_module:
            p = self.module(src, pool_module, "AdaptiveAvgPool2d", (BATCH, ch, 1, 1), {"output_size": 1})
        else:
            p = self.func("adaptive_avg_pool2d", "adaptive_avg_pool2d", [src], (BATCH, ch, 1, 1))
        f = self.func("flatten", "flatten", [p], (BATCH, ch), mode=NO_QUANT)
        if dropout:
            f = self.module(f, dropout, "Dropout", attrs={"p": 0.2, "inplace": False})
            self.nodes[f].mode = NO_QUANT
        return self.linear(f, classifier, 10, last=True)


def _densenet(mb: _ShapeBuilder, blocks: Sequence[int] = (6, 12, 24, 16), growth: int = 32) -> None:
    """torchvision densenet121: every dense layer concatenates all earlier outputs of its block."""
    x = mb.input(3, 32)
    h = mb.conv(x, "features.conv0", 64, 7, 2, name="features_conv0_bn")
    h = mb.activation(h, "features.relu0", RELU)
    h = mb.pool(h, "features.pool0", 3, 2)
    for b, n_layers in enumerate(blocks, 1):
        feats = [h]
        for k in range(1, n_layers + 1):
            m = "features.denseblock%d.denselayer%d" % (b, k)
            ch = sum(mb.nodes[f].shape[1] for f in feats)
            cat = mb.func("cat", "cat", feats, (BATCH, ch) + mb.nodes[feats[0]].shape[2:])
            t = mb.bn(cat, m + ".norm1")
            t = mb.activation(t, m + ".relu1", RELU)
            t = mb.conv(t, m + ".conv1", 4 * growth, 1, name=m.replace(".", "_") + "_conv1_bn")
            t = mb.activation(t, m + ".relu2", RELU)
            t = mb.conv(t, m + ".conv2", growth, 3, bn=False, fused=False)
            feats.append(t)
        ch = sum(mb.nodes[f].shape[1] for f in feats)
        h = mb.func("cat", "cat", feats, (BATCH, ch) + mb.nodes[feats[0]].shape[2:])
        if b < len(blocks):
            m = "features.transition%d" % b
            h = mb.bn(h, m + ".norm")
            h = mb.activation(h, m + ".relu", RELU)
            h = mb.conv(h, m + ".conv", ch // 2, 1, bn=False, fused=False)
            h = mb.pool(h, m + ".pool", 2, 2, "AvgPool2d")
    h = mb.bn(h, "features.norm5")
    h = mb.func("relu", "relu", [h])
    mb.head(h)


def _googlenet(mb: _ShapeBuilder) -> None:
    """torchvision googlenet (no aux logits): inception blocks of four parallel branches joined by a cat;
    BasicConv2d is conv + bn + F.relu."""
    def basic(src: int, module: str, out_ch: int, kernel: int, stride: int = 1) -> int:
        c = mb.conv(src, module + ".conv", out_ch, kernel, stride, name=module.replace(".", "_") + "_conv_bn")
        return mb.func("relu", "relu", [c])

    x = mb.input(3, 32)
    h = basic(x, "conv1", 64, 7, 2)
    h = mb.pool(h, "maxpool1", 3, 2)
    h = basic(h, "conv2", 64, 1)
    h = basic(h, "conv3", 192, 3)
    h = mb.pool(h, "maxpool2", 3, 2)
    plan = (("inception3a", 64), ("inception3b", 120), None, ("inception4a", 128), ("inception4b", 128),
            ("inception4c", 128), ("inception4d", 132), ("inception4e", 208), None, ("inception5a", 208),
            ("inception5b", 256))
    pools = iter(("maxpool3", "maxpool4"))
    for step in plan:
        if step is None:
            h = mb.pool(h, next(pools), 3, 2)
            continue
        m, ch = step
        b1 = basic(h, m + ".branch1", ch, 1)
        b2 = basic(basic(h, m + ".branch2.0", ch // 2, 1), m + ".branch2.1", ch, 3)
        b3 = basic(basic(h, m + ".branch3.0", ch // 4, 1), m + ".branch3.1", ch // 2, 3)
        b4 = basic(mb.pool(h, m + ".branch4.0", 3, 1), m + ".branch4.1", ch // 2, 1)
        shape = mb.nodes[b1].shape
        h = mb.func("cat", "cat", [b1, b2, b3, b4], (BATCH, sum(mb.nodes[b].shape[1] for b in (b1, b2, b3, b4))) + shape[2:])
    mb.head(h, "fc", pool_module="avgpool", dropout="dropout")


def _efficientnet(mb: _ShapeBuilder) -> None:
    """torchvision efficientnet_b0: stages of MBConv blocks (expand, depthwise, squeeze-excitation, project,
    residual add), nested four scopes deep (``features.6.2.block.1.fc1``)."""
    def cna(src: int, module: str, out_ch: int, kernel: int, stride: int = 1, depthwise: bool = False,
            act=SILU) -> int:
        c = mb.conv(src, module + ".0", out_ch, kernel, stride, depthwise, fused=act is not None,
                    name=module.replace(".", "_") + "_0_bn")
        return mb.activation(c, module + ".2", act) if act else c

    x = mb.input(3, 32)
    h = cna(x, "features.0", 32, 3, 2)
    stages = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 40, 2, 2), (6, 80, 3, 2), (6, 112, 3, 1), (6, 192, 4, 2), (6, 320, 1, 1))
    for s, (expand, out_ch, repeats, stride) in enumerate(stages, 1):
        for r in range(repeats):
            m = "features.%d.%d.block" % (s, r)
            src = h
            in_ch = mb.nodes[src].shape[1]
            k = 0
            t = src
            if expand != 1:
                t = cna(t, "%s.%d" % (m, k), in_ch * expand, 1)
                k += 1
            t = cna(t, "%s.%d" % (m, k), mb.nodes[t].shape[1], 3, stride if r == 0 else 1, depthwise=True)
            k += 1
            se = "%s.%d" % (m, k)
            ch = mb.nodes[t].shape[1]
            p = mb.module(t, se + ".avgpool", "AdaptiveAvgPool2d", (BATCH, ch, 1, 1), {"output_size": 1})
            f1 = mb.conv(p, se + ".fc1", max(1, in_ch // 4), 1, bn=False, fused=True)
            a = mb.activation(f1, se + ".activation", SILU)
            f2 = mb.conv(a, se + ".fc2", ch, 1, bn=False, fused=False)
            sg = mb.activation(f2, se + ".scale_activation", SIGMOID)
            t = mb.func("mul", "mul", [sg, t], mb.nodes[t].shape)
            k += 1
            t = cna(t, "%s.%d" % (m, k), out_ch, 1, act=None)
            if r > 0 and in_ch == out_ch:
                t = mb.add(t, src, math.hypot(mb.nodes[t].scale, mb.nodes[src].scale))
            h = t
    h = cna(h, "features.8", 1280, 1)
    mb.head(h, "classifier.1", pool_module="avgpool", dropout="classifier.0")


def _shufflenet(mb: _ShapeBuilder) -> None:
    """torchvision shufflenet_v2_x0_5: the input of a block is split in two channel halves (``chunk``), one half
    goes through the branch, the halves are concatenated and the channels shuffled (view, transpose, view)."""
    def shuffle(src: int) -> int:
        shape = mb.nodes[src].shape
        v = mb.func("view", "view", [src], (shape[0], 2, shape[1] // 2) + shape[2:], mode=NO_QUANT)
        t = mb.func("transpose", "transpose", [v], mode=NO_QUANT)
        c = mb.func("contiguous", "contiguous", [t], mode=NO_QUANT)
        return mb.func("view", "view", [c], shape)

    def branch(src: int, module: str, out_ch: int, stride: int) -> int:
        t = mb.conv(src, module + ".0", out_ch, 1, name=module.replace(".", "_") + "_0_bn")
        t = mb.activation(t, module + ".2", RELU)
        t = mb.conv(t, module + ".3", out_ch, 3, stride, depthwise=True, fused=False, name=module.replace(".", "_") + "_3_bn")
        t = mb.conv(t, module + ".5", out_ch, 1, name=module.replace(".", "_") + "_5_bn")
        return mb.activation(t, module + ".7", RELU)

    x = mb.input(3, 32)
    h = mb.conv(x, "conv1.0", 24, 3, 2, name="conv1_0_bn")
    h = mb.activation(h, "conv1.2", RELU)
    h = mb.pool(h, "maxpool", 3, 2)
    for s, (repeats, ch) in enumerate(((4, 48), (8, 96), (4, 192)), 2):
        for r in range(repeats):
            m = "stage%d.%d" % (s, r)
            half = ch // 2
            if r == 0:
                b1 = mb.conv(h, m + ".branch1.0", mb.nodes[h].shape[1], 3, 2, depthwise=True, fused=False,
                             name=m.replace(".", "_") + "_branch1_0_bn")
                b1 = mb.conv(b1, m + ".branch1.2", half, 1, name=m.replace(".", "_") + "_branch1_2_bn")
                b1 = mb.activation(b1, m + ".branch1.4", RELU)
                b2 = branch(h, m + ".branch2", half, 2)
                parts = [b1, b2]
            else:
                ck = mb.func("chunk", "chunk", [h], mode=NO_QUANT)
                x1 = mb.func("getitem", "getitem", [ck], (BATCH, half) + mb.nodes[h].shape[2:], mode=NO_QUANT)
                x2 = mb.func("getitem", "getitem", [ck], (BATCH, half) + mb.nodes[h].shape[2:], mode=NO_QUANT)
                parts = [x1, branch(x2, m + ".branch2", half, 1)]
            shape = mb.nodes[parts[1]].shape
            h = shuffle(mb.func("cat", "cat", parts, (BATCH, ch) + shape[2:]))
    h = mb.conv(h, "conv5.0", 1024, 1, name="conv5_0_bn")
    h = mb.activation(h, "conv5.2", RELU)
    m = mb.func("mean", "mean", [h], (BATCH, 1024))
    mb.linear(m, "fc", 10, last=True)


SHAPES = {"densenet": _densenet, "googlenet": _googlenet, "efficientnet": _efficientnet, "shufflenet": _shufflenet}
"""Graph shapes besides the default CNN (``build_model``), written with ``write_model_logdir(..., shape=)`` into
``model_<shape>/``: ``densenet`` (densenet121's dense fan-in), ``googlenet`` (inception branches),
``efficientnet`` (efficientnet_b0's squeeze-excitation blocks, scopes four deep), ``shufflenet``
(shufflenet_v2_x0_5's channel split and shuffle; MCT 2.6.1's XQuant cannot re-trace the real one).  Checked
against real MCT 2.6.1 reports of the torchvision models (tests/test_bench_shapes.py with TB_XQUANT_ZOO_LOGDIR):
the densenet121 (374 nodes) and efficientnet_b0 (193) graphs are the real ones node for node -- names, ops, order;
googlenet has the real 142 nodes, ordered a little differently inside the inception blocks.  Nodes are in MCT's
order (``topological_generations``); metrics, histograms and the judges' inputs are made as for the default model."""


def topological_generations(nodes: List[Node]) -> List[Node]:
    """The nodes in the order MCT writes its graphs (networkx ``topological_sort``: generation after generation of
    nodes whose inputs are all placed, each generation in the order its nodes were reached), inputs renumbered.
    Parallel branches (inception, a block's shortcut) interleave in this order, as in MCT's real logs."""
    succ: Dict[int, List[int]] = collections.defaultdict(list)
    indeg = [len(n.inputs) for n in nodes]
    for i, n in enumerate(nodes):
        for j in n.inputs:
            succ[j].append(i)
    order: List[int] = []
    gen = [i for i, d in enumerate(indeg) if d == 0]
    while gen:
        order.extend(gen)
        nxt = []
        for u in gen:
            for v in succ[u]:
                indeg[v] -= 1
                if indeg[v] == 0:
                    nxt.append(v)
        gen = nxt
    new_index = {old: k for k, old in enumerate(order)}
    return [dataclasses.replace(nodes[old], inputs=[new_index[j] for j in nodes[old].inputs]) for old in order]


def build_shape(shape: str, rng: np.random.Generator) -> List[Node]:
    """The float graph of one of SHAPES, in MCT's node order."""
    mb = _ShapeBuilder(rng)
    SHAPES[shape](mb)
    return topological_generations(mb.nodes)


# ------------------------------------------------------------------------------------------------
# metrics
# ------------------------------------------------------------------------------------------------
def similarity_metrics(nodes: List[Node], rng: np.random.Generator, fraction: float = DEGRADED_FRACTION) -> Dict[str, Any]:
    """quant_report.json's content: mse / cs / sqnr of every compare point, a seeded few percent degraded
    (always including the classifier, whose 2-bit activation mixed precision chose), the rest healthy with
    errors growing with depth.  Degraded linear layers (projections, collapsed residuals, the classifier) get
    outlier tails in their float histograms."""
    layers = [i for i, n in enumerate(nodes) if n.weights]
    count = len(layers)
    depth = np.linspace(0.0, 1.0, count)
    mse = np.exp(rng.normal(np.log(1.5e-3) + 1.8 * depth, 0.9))
    mse = np.clip(mse, 1e-7, 0.06)
    power = np.exp(rng.normal(0.0, 0.8, count))
    n_degraded = max(2, int(round(fraction * count)))
    unfused = [k for k, i in enumerate(layers) if nodes[i].has_histogram]
    degraded = {count - 1}  # the classifier
    from_unfused = rng.choice(unfused, size=min(len(unfused), n_degraded // 2 + 1), replace=False)
    degraded.update(int(k) for k in from_unfused)
    rest = [k for k in range(count) if k not in degraded]
    degraded.update(int(k) for k in rng.choice(rest, size=max(0, n_degraded - len(degraded)), replace=False))
    deg = np.array(sorted(degraded))
    mse[deg] = np.exp(rng.uniform(np.log(0.12), np.log(4.0), deg.size))
    low_power = deg[rng.random(deg.size) < 0.25]  # these also fall under the cs / sqnr thresholds
    power[low_power] = mse[low_power] * rng.uniform(0.02, 0.09, low_power.size)
    outlier_layers = [int(k) for k in deg if nodes[layers[k]].has_histogram and rng.random() < 0.75]
    if not outlier_layers and len(unfused):
        outlier_layers = [int(k) for k in deg if nodes[layers[k]].has_histogram][:1]
    for k in outlier_layers:
        nodes[layers[k]].tail_z = float(rng.uniform(10.0, 30.0))

    val_mse = mse * np.exp(rng.normal(0.0, 0.08, count))
    healthy = [k for k in range(count) if k not in degraded]
    val_only = rng.choice(healthy, size=min(len(healthy), max(1, count // 200)), replace=False)
    mse[val_only] = rng.uniform(0.06, 0.09, val_only.size)
    val_mse[val_only] = rng.uniform(0.11, 0.2, val_only.size)

    def metric_dicts(m: np.ndarray) -> List[Dict[str, float]]:
        sqnr = power / m
        cs = np.clip(1.0 - 1.0 / (2.0 * sqnr + 1.0), -1.0, 1.0)
        return [{"mse": float(a), "cs": float(b), "sqnr": float(c)} for a, b, c in zip(m, cs, sqnr)]

    names = [nodes[i].name for i in layers]
    repr_m, val_m = metric_dicts(mse), metric_dicts(val_mse)
    out_repr, out_val = dict(repr_m[-1]), dict(val_m[-1])
    for d in (out_repr, out_val):
        d["mse"] *= 1.1
    return {
        "output_similarity_metrics_repr": out_repr,
        "output_similarity_metrics_val": out_val,
        "intermediate_similarity_metrics_repr": dict(zip(names, repr_m)),
        "intermediate_similarity_metrics_val": dict(zip(names, val_m)),
    }


def mct_degraded_layers(report: Dict[str, Any]) -> List[str]:
    """MCT 2.6.1's core_detect_degrade_layer with XQuantConfig's default thresholds."""
    out: List[str] = []
    seen = set()
    for metric in report["output_similarity_metrics_repr"]:
        thr, under = MCT_THRESHOLDS[metric], MCT_DETECT_UNDER[metric]
        for ds in ("repr", "val"):
            for layer, values in report["intermediate_similarity_metrics_" + ds].items():
                v = values[metric]
                if (v <= thr if under else v >= thr) and layer not in seen:
                    seen.add(layer)
                    out.append(layer)
    return out


# ------------------------------------------------------------------------------------------------
# histograms
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Histograms:
    """One float histogram per node with statistics, as MCT's HistogramCollector holds them."""

    nodes: List[int]  # float-graph index of each row
    left_edges: np.ndarray  # [rows, bins]: MCT logs bins[:-1]
    counts: np.ndarray  # [rows, bins]
    low: np.ndarray  # [rows] lowest value
    high: np.ndarray  # [rows] highest value

    def __post_init__(self):
        self.row_of: Dict[int, int] = {i: r for r, i in enumerate(self.nodes)}


def node_histograms(nodes: List[Node], bins: int, rng: np.random.Generator) -> Histograms:
    """Histograms computed from each node's distribution on a ``bins``-bin grid over its value range
    (vectorised): ReLU-like outputs with a spike at zero, outputs that go slightly negative, symmetric
    pre-activations, the input image in [0, 1]; outlier tails beyond an empty gap where ``tail_z`` is set."""
    idx = [i for i, n in enumerate(nodes) if n.has_histogram]
    h = len(idx)
    dist = np.array([nodes[i].dist for i in idx])
    scale = np.array([nodes[i].scale for i in idx])
    low_frac = np.array([nodes[i].low for i in idx])
    tail_z = np.array([nodes[i].tail_z for i in idx])
    total = np.array([float(np.prod(nodes[i].shape) * N_BATCHES) for i in idx])
    reach = rng.uniform(3.6, 4.4, h)
    center = np.where(dist == "gauss", scale * rng.uniform(-0.3, 0.3, h), 0.0)
    lo = np.select([dist == "input", dist == "relu", dist == "negative"],
                   [np.zeros(h), np.zeros(h), -low_frac * scale], center - reach * scale)
    hi = np.where(dist == "input", 1.0, center + reach * scale)
    body_hi = hi.copy()
    hi = np.where(tail_z > 0, center + tail_z * scale, hi)
    spike = np.where(dist == "relu", rng.uniform(0.3, 0.6, h), 0.0)
    tail_mass = np.where(tail_z > 0, rng.uniform(0.001, 0.005, h), 0.0)

    steps = np.arange(bins) / bins
    left = lo[:, None] + (hi - lo)[:, None] * steps[None, :]
    width = ((hi - lo) / bins)[:, None]
    mid = left + width / 2
    sigma_neg = np.maximum(np.abs(lo) / 2.5, 1e-9)[:, None]
    sigma = np.where((mid < center[:, None]) & (dist == "negative")[:, None], sigma_neg, scale[:, None])
    body = np.exp(-0.5 * ((mid - center[:, None]) / sigma) ** 2)
    body = np.where(dist[:, None] == "input", 1.0 + 0.5 * np.sin(6.0 * mid), body)
    body = np.where(mid <= body_hi[:, None] + width, body, 0.0)
    body[:, -1] = np.where(tail_z > 0, 0.0, np.maximum(body[:, -1], 1e-4))  # the maximum lies in the last bin
    body *= ((1.0 - spike - tail_mass) * total / body.sum(axis=1))[:, None]
    body[:, 0] += spike * total
    tail_bins = (mid >= (hi - 0.03 * (hi - lo))[:, None]) | (np.arange(bins) == bins - 1)[None, :]
    tail_bins &= (tail_z > 0)[:, None]
    body += np.where(tail_bins, (tail_mass * total / np.maximum(tail_bins.sum(axis=1), 1))[:, None], 0.0)
    counts = body.astype(np.float32).astype(np.float64)
    return Histograms(idx, left, counts, lo, hi)


def mct_zscore_max(left_edges: np.ndarray, counts: np.ndarray) -> float:
    """MCT's _compute_zscore on a logged histogram (bins[:-1] and counts), maximum over the bins."""
    mu = np.sum(left_edges * counts) / np.sum(counts)
    sigma = np.sqrt(np.sum((left_edges - mu) ** 2 * counts) / np.sum(counts))
    return float(np.max(np.abs(left_edges - mu) / sigma)) if sigma > 0 else 0.0


# ------------------------------------------------------------------------------------------------
# GraphDefs
# ------------------------------------------------------------------------------------------------
def attr_value(v: Any) -> AttrValue:
    """MCT's get_node_properties: int -> i, float -> f, bool -> b, anything else -> s=str(v)."""
    if type(v) == int:  # noqa: E721 - MCT tests the exact type (a bool is not an int here)
        return AttrValue(i=v)
    if type(v) == float:  # noqa: E721
        return AttrValue(f=v)
    if type(v) == bool:  # noqa: E721
        return AttrValue(b=v)
    return AttrValue(s=str(v).encode("utf-8"))


def shapes_attr(shape: Tuple[int, ...]) -> AttrValue:
    return AttrValue(list=AttrValue.ListValue(shape=[TensorShapeProto(dim=[TensorShapeProto.Dim(size=d)
                                                                           for d in shape])]))


def _template(attrs: Dict[str, Any]) -> NodeDef:
    node = NodeDef()
    for k, v in attrs.items():
        node.attr[k].CopyFrom(attr_value(v))
    return node


def _object_repr(cls: str, rng: np.random.Generator) -> str:
    return "<%s object at 0x7f%010x>" % (cls, int(rng.integers(0, 1 << 40)))


WEIGHTS_ATTR_CONFIG = "model_compression_toolkit.core.common.quantization.node_quantization_config.WeightsAttrQuantizationConfig"
# NodeWeightsQuantizationConfig.__dict__ of a node without kernel (the fields MCT logs on '.weights' nodes).
WEIGHTS_FIELDS = {"simd_size": 32, "min_threshold": 1.52587890625e-05, "weights_bias_correction": True,
                  "weights_second_moment_correction": False, "attributes_config_mapping": {},
                  "pos_attributes_config_mapping": {}}
# NodeActivationQuantizationConfig.__dict__ (the fields MCT logs on '.activation' nodes), power-of-two defaults.
ACTIVATION_FIELDS = {
    "activation_quantization_fn": "<function power_of_two_quantization at 0x7fb37d8dcfe0>",
    "activation_quantization_params_fn": "<function power_of_two_selection_histogram at 0x7fb3808468e0>",
    "activation_quantization_params": {}, "activation_quantization_method": "QuantizationMethod.POWER_OF_TWO",
    "activation_n_bits": 8, "relu_bound_to_power_of_2": False, "activation_bias_correction_term": None,
    "_activation_error_method": "QuantizationErrorMethod.MSE", "activation_channel_equalization": False,
    "input_scaling": False, "min_threshold": 1.52587890625e-05, "l_p_value": 2, "z_threshold": math.inf,
    "shift_negative_activation_correction": True, "concat_threshold_update": False, "shift_negative_ratio": 0.05,
    "shift_negative_threshold_recalculation": False, "signedness": "Signedness.AUTO",
    "quant_mode": "ActivationQuantizationMode.QUANT",
}


def _power_of_two(x: float) -> float:
    return float(2.0 ** math.ceil(math.log2(max(x, 1e-6))))


class _BiasReprs:
    """``str()`` of corrected bias vectors as numpy prints them (8 decimals, 6 per line), cut from a pool of
    formatted random values: formatting every vector with numpy would dominate the generation time."""

    PER_LINE = 6

    def __init__(self, rng: np.random.Generator, pool: int = 4096):
        self.rng = rng
        self.tokens = ["%11.8f" % v for v in rng.normal(0.0, 0.01, pool)] * 2

    def __call__(self, channels: int) -> str:
        start = int(self.rng.integers(0, len(self.tokens) // 2))
        values = self.tokens[start:start + channels]
        lines = [" ".join(values[k:k + self.PER_LINE]) for k in range(0, len(values), self.PER_LINE)]
        return "[" + "\n ".join(lines) + "]"


def _node_stats(name: str, weights: int) -> NodeExecStats:
    return NodeExecStats(node_name=name, memory=[AllocatorMemoryUsed(total_bytes=int(weights))])


def _resources(stats: List[NodeExecStats]) -> Event:
    run_metadata = RunMetadata(step_stats=StepStats(dev_stats=[DeviceStepStats(device="/device:CPU:0",
                                                                               node_stats=stats)]))
    return Event(tagged_run_metadata=TaggedRunMetadata(tag="Resources", run_metadata=run_metadata.SerializeToString()))


def _scoped_names(nodes: List[Node], graph: str, leaf_names: List[str]) -> List[str]:
    """TensorboardWriter.add_graph's names: Input/<n>, Output/<n>, else <graph>/<Op>_<k>/<n>."""
    consumers = collections.Counter(j for n in nodes for j in n.inputs)
    op_ids: Dict[str, int] = collections.Counter()
    out = []
    for i, n in enumerate(nodes):
        k = op_ids[n.op]
        op_ids[n.op] += 1
        if not n.inputs:
            out.append("Input/" + leaf_names[i])
        elif not consumers[i]:
            out.append("Output/" + leaf_names[i])
        else:
            out.append("%s/%s_%d/%s" % (graph, n.op, k, leaf_names[i]))
    return out


def stage_graph(nodes: List[Node], hists: Histograms, rng: np.random.Generator) -> Tuple[GraphDef, Event]:
    """The float graph as ``mct.set_log_folder`` logs it after quantization-parameter selection: for each node a
    ``.weights`` node (weights quantization config), an ``.activation`` node (activation quantization config and
    output shape, reading the main node) and the main node (framework attributes), which reads the
    ``.activation`` nodes of its inputs and its own ``.weights``."""
    names = _scoped_names(nodes, MODEL_CLASS, [n.name for n in nodes])
    weights_plain = _template(WEIGHTS_FIELDS)
    activation_plain = _template(ACTIVATION_FIELDS)
    bias_repr = _BiasReprs(rng)
    graph = GraphDef()
    stats = []
    for i, n in enumerate(nodes):
        main_name = names[i]
        w = graph.node.add()
        w.CopyFrom(weights_plain)
        w.name = main_name + ".weights"
        if n.weight_attrs:
            w.attr["attributes_config_mapping"].s = ("{%s}" % ", ".join(
                "'%s': %s" % (a, _object_repr(WEIGHTS_ATTR_CONFIG, rng)) for a in n.weight_attrs)).encode()
        if "bias" in n.weight_attrs:
            w.attr["bias_corrected"].s = bias_repr(n.shape[1]).encode()
        a = graph.node.add()
        a.CopyFrom(activation_plain)
        a.name = main_name + ".activation"
        a.input.append(main_name + ":0")
        a.attr["quant_mode"].s = ("ActivationQuantizationMode." + n.mode).encode()
        if n.mode == QUANT:
            lo, hi = hists.low[hists.row_of[i]], hists.high[hists.row_of[i]]
            a.attr["activation_n_bits"].i = n.activation_bits
            a.attr["activation_quantization_params"].s = (
                "{'threshold': np.float64(%r), 'is_signed': np.%s_}" % (_power_of_two(max(abs(lo), abs(hi))),
                                                                        lo < 0)).encode()
        else:
            a.attr["activation_n_bits"].i = 32
        a.attr["_output_shapes"].CopyFrom(shapes_attr(n.shape))
        m = graph.node.add()
        m.name, m.op, m.device = main_name, n.op, n.op
        m.input.extend([names[j] + ".activation:0" for j in n.inputs] + [w.name + ":1"])
        for k, v in n.attrs.items():
            m.attr[k].CopyFrom(attr_value(v))
        m.attr["_output_shapes"].CopyFrom(shapes_attr(n.shape))
        stats.append(_node_stats(n.name, 4 * n.weights))
    return graph, _resources(stats)


def xquant_graph(nodes: List[Node], report: Dict[str, Any]) -> Tuple[GraphDef, Event]:
    """The quantized model as MCT's XQuant reads it back with torch.fx: ``_args`` and ``getitem`` for the input,
    a ``fake_quantize_per_tensor_affine`` after every node whose activation is quantized, wrapped layers named
    ``<name>_layer`` and carrying ``xquant_repr`` / ``xquant_val``."""
    repr_m = report["intermediate_similarity_metrics_repr"]
    val_m = report["intermediate_similarity_metrics_val"]
    q_nodes: List[Node] = []  # the quantized graph, as Node records (no weights configs)
    leaf: List[str] = []
    output_of: Dict[int, int] = {}  # float node -> quantized node holding its (quantized) output
    fx_counts: Dict[str, int] = collections.Counter()

    def emit(node: Node, name: str) -> int:
        q_nodes.append(node)
        leaf.append(name)
        return len(q_nodes) - 1

    def quantizer(src: int) -> int:
        k = fx_counts["fq"]
        fx_counts["fq"] += 1
        name = "fake_quantize_per_tensor_affine" + ("_%d" % k if k else "")
        return emit(Node(name, "fake_quantize_per_tensor_affine", [src], q_nodes[src].shape, {}), name)

    for i, n in enumerate(nodes):
        if not n.inputs:
            args = emit(Node("_args", "DummyPlaceHolder", [], n.shape, {}), "_args")
            q = emit(Node("getitem", "getitem", [args], n.shape, {}), "getitem")
        else:
            attrs = dict(n.attrs)
            name = n.name + "_layer" if n.weights else n.name
            if n.weights:
                attrs["xquant_repr"] = repr_m[n.name]
                attrs["xquant_val"] = val_m[n.name]
            q = emit(Node(name, n.op, [output_of[j] for j in n.inputs], n.shape, attrs, weights=n.weights), name)
        output_of[i] = quantizer(q) if n.quantizer_follows else q
    names = _scoped_names(q_nodes, QUANTIZED_GRAPH, leaf)
    graph = GraphDef()
    stats = []
    for i, n in enumerate(q_nodes):
        m = graph.node.add()
        m.name, m.op, m.device = names[i], n.op, n.op
        m.input.extend(names[j] + ":0" for j in n.inputs)
        for k, v in n.attrs.items():
            m.attr[k].CopyFrom(attr_value(v))
        m.attr["_output_shapes"].CopyFrom(shapes_attr(n.shape))
        stats.append(_node_stats(leaf[i], n.weights))
    return graph, _resources(stats)


# ------------------------------------------------------------------------------------------------
# events and files
# ------------------------------------------------------------------------------------------------
def _write_events(logdir: str, events: Sequence[Event]) -> None:
    writer = EventFileWriter(logdir)
    for ev in events:
        writer.add_event(ev)
    writer.close()


def histogram_events(nodes: List[Node], hists: Histograms) -> List[Event]:
    """TensorboardWriter.add_histograms: one legacy ``histo`` summary per node (tag = node name)."""
    out = []
    for r, i in enumerate(hists.nodes):
        bins, counts = hists.left_edges[r], hists.counts[r]
        proto = HistogramProto(min=float(bins.min()), max=float(bins.max()), num=len(bins),
                               sum=float((bins * counts).sum()), sum_squares=float(((bins * bins) * counts).sum()),
                               bucket_limit=bins.tolist(), bucket=counts.tolist())
        out.append(Event(summary=Summary(value=[Summary.Value(tag=nodes[i].name, histo=proto)])))
    return out


def text_event(tag: str, text: str) -> Event:
    """TensorboardWriter.add_text."""
    meta = SummaryMetadata(plugin_data=SummaryMetadata.PluginData(
        plugin_name="text", content=TextPluginData(version=0).SerializeToString()))
    tensor = TensorProto(dtype="DT_STRING", string_val=[text.encode("utf_8")],
                         tensor_shape=TensorShapeProto(dim=[TensorShapeProto.Dim(size=1)]))
    return Event(summary=Summary(value=[Summary.Value(tag=tag, metadata=meta, tensor=tensor)]))


def troubleshoot_report(nodes: List[Node], hists: Histograms, report: Dict[str, Any], report_dir: str,
                        rng: np.random.Generator) -> Dict[str, Any]:
    """What xquant_report_troubleshoot_pytorch_experimental's judges write, in MCT's key order; ``{}`` when no
    layer is degraded or the degraded ratio reaches threshold_degrade_layer_ratio."""
    degraded = mct_degraded_layers(report)
    n_layers = len(report["intermediate_similarity_metrics_repr"])
    if not degraded or len(degraded) / n_layers >= MCT_DEGRADE_LAYER_RATIO:
        return {}
    by_name = {n.name: i for i, n in enumerate(nodes)}
    outliers = []
    for name in degraded:
        r = hists.row_of.get(by_name[name])
        if r is not None and mct_zscore_max(hists.left_edges[r], hists.counts[r]) >= MCT_ZSCORE_OUTLIER:
            outliers.append([name, os.path.join(report_dir, OUTLIER_HISTOGRAM_DIR, name + ".png")])
    # MCT's own unbalanced-concatenation judge compares a degraded '<conv>_bn' layer with the module after the
    # conv (the BN) by their float ranges; the ratio is not in the logs, so it is drawn here.
    concat = []
    for name in degraded:
        n = nodes[by_name[name]]
        if name.endswith("_bn") and n.module and rng.random() < 0.5:
            head, _, index = n.module.rpartition(".")
            ratio = float(rng.uniform(16.0, 120.0))
            # the BN module after the conv: ``blocks.3.conv.0`` -> ``.1``; torchvision's named ones
            # (``conv1.conv`` -> ``conv1.bn``, ``features.conv0`` -> ``features.norm0``) in the other shapes
            after = str(int(index) + 1) if index.isdigit() else ("bn" if index == "conv" else index.replace("conv", "norm"))
            concat.append([n.module, "%s.%s" % (head, after), "first layer * %r" % ratio])
    negative = [n.name for n in nodes if n.op in MCT_NEGATIVE_ACTIVATIONS]
    last = [n for n in nodes if n.weights][-1]
    data = {
        "outlier_removal": outliers,
        "unbalanced_concatenation": concat,
        "shift_negative_activation": negative,
        "mixed_precision_with_model_output_loss_objective":
            [last.name] if last.activation_bits <= MCT_BITWIDTH_LAST_LAYER else [],
    }
    return {k: v for k, v in data.items() if v}


def _dump_json(path: str, data: Any) -> None:
    with open(path, "w") as f:
        json.dump(data, f, indent=4)


def _write_manifest(report_dir: str, stage_logs: str, nodes: List[Node], seed: int, bins: int) -> None:
    from tb_xquant_plugin.mct_run import write_manifest

    layers: Dict[str, Dict[str, Any]] = {}
    for n in nodes:
        entry: Dict[str, Any] = {}
        if n.weights:
            entry["weights"] = {"weight": 8}
        if n.quantizer_follows:
            entry["activation"] = n.activation_bits
        if entry:
            layers[n.name] = entry
    last = [n for n in nodes if n.weights][-1]
    thresholds = {
        "threshold_quantize_error": dict(MCT_THRESHOLDS),
        "is_detect_under_threshold_quantize_error": dict(MCT_DETECT_UNDER),
        "threshold_degrade_layer_ratio": MCT_DEGRADE_LAYER_RATIO,
        "threshold_zscore_outlier_removal": MCT_ZSCORE_OUTLIER,
        "threshold_ratio_unbalanced_concatenation": 16.0,
        "threshold_bitwidth_mixed_precision_with_model_output_loss_objective": MCT_BITWIDTH_LAST_LAYER,
    }
    write_manifest(report_dir, thresholds=thresholds, stage_logs_dir=stage_logs, model_name=MODEL_CLASS,
                   bit_widths={"layers": layers, "last_layer": {
                       "name": last.name, "weights_nbits": 8, "activation_name": last.name + "_activation_holder_quantizer",
                       "activation_nbits": last.activation_bits}},
                   extra={"generator": "bench.mct_format", "seed": seed, "histogram_bins": bins})


def write_model_logdir(out_dir: str, n_layers: int, seed: int = 0, *, bins: int = DEFAULT_BINS,
                       troubleshoot: bool = True, manifest: bool = False, shape: Optional[str] = None,
                       degraded_fraction: float = DEGRADED_FRACTION) -> str:
    """Write one synthetic MCT run with ``n_layers`` compare points under ``out_dir/model_<n_layers>/`` (its
    ``mct_logs`` and ``xquant_report`` folders are replaced) and return the report dir's path.

    ``bins``: histogram bins (MCT logs ``MCT_HISTOGRAM_BINS``); ``troubleshoot``: also write
    troubleshoot_report.json as the troubleshooting variant of the report does; ``manifest``: also write
    tb-xquant's manifest (thresholds, stage-log folder, bit widths).  ``shape``: one of SHAPES instead of the
    default CNN (``n_layers`` is then ignored and the run is written to ``out_dir/model_<shape>/``);
    ``degraded_fraction``: the share of compare points made degraded."""
    rng = np.random.default_rng(seed)
    model_dir = os.path.join(out_dir, "model_%s" % shape if shape else "model_%d" % n_layers)
    report_dir = os.path.join(model_dir, "xquant_report")
    stage_logs = os.path.join(model_dir, "mct_logs", STAGE_LOG_FOLDER)
    for d in (os.path.join(model_dir, "mct_logs"), report_dir):
        if os.path.isdir(d):
            shutil.rmtree(d)
    os.makedirs(report_dir)

    nodes = build_shape(shape, rng) if shape else build_model(n_layers, rng)
    report = similarity_metrics(nodes, rng, degraded_fraction)
    hists = node_histograms(nodes, bins, rng)

    graph, resources = stage_graph(nodes, hists, rng)
    _write_events(os.path.join(stage_logs, "tensorboard_logs", STAGE),
                  [Event(graph_def=graph.SerializeToString()), resources])
    del graph

    _dump_json(os.path.join(report_dir, "quant_report.json"), report)
    for ds, label in (("repr", "representative"), ("val", "validation")):
        tag = "output_similarity_metrics_" + ds
        text = "Similarity Metrics on outputs using %s dataset: \n" % label + "\n".join(
            "%s: %.4f" % kv for kv in report[tag].items())
        _write_events(os.path.join(report_dir, tag), [text_event(tag, text)])
    graph, resources = xquant_graph(nodes, report)
    _write_events(os.path.join(report_dir, XQUANT_TAG),
                  histogram_events(nodes, hists) + [Event(graph_def=graph.SerializeToString()), resources])
    del graph
    if troubleshoot:
        _dump_json(os.path.join(report_dir, "troubleshoot_report.json"),
                   troubleshoot_report(nodes, hists, report, report_dir, rng))
    if manifest:
        _write_manifest(report_dir, os.path.join(stage_logs, "tensorboard_logs"), nodes, seed, bins)
    return report_dir


def _size(path: str) -> int:
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def main(argv: Optional[List[str]] = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", required=True, help="folder to write model_<N>/ into")
    p.add_argument("--layers", type=int, nargs="+", default=[100, 1000, 5000, 20000], help="compare points N")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bins", type=int, default=DEFAULT_BINS,
                   help="histogram bins (MCT logs %d; default %d)" % (MCT_HISTOGRAM_BINS, DEFAULT_BINS))
    p.add_argument("--no-troubleshoot", action="store_true", help="no troubleshoot_report.json")
    p.add_argument("--manifest", action="store_true", help="also write tb_xquant_manifest.json")
    p.add_argument("--shape", choices=sorted(SHAPES), action="append",
                   help="write this torchvision-like graph shape (model_<shape>/) instead of --layers; repeatable")
    p.add_argument("--degraded", type=float, default=DEGRADED_FRACTION,
                   help="share of compare points made degraded (default %g)" % DEGRADED_FRACTION)
    args = p.parse_args(argv)
    for n in args.shape or args.layers:
        t0 = time.perf_counter()
        report_dir = write_model_logdir(args.out, 0 if args.shape else n, args.seed, bins=args.bins,
                                        troubleshoot=not args.no_troubleshoot, manifest=args.manifest,
                                        shape=n if args.shape else None, degraded_fraction=args.degraded)
        model_dir = os.path.dirname(report_dir)
        print("%s  %.1f s  %.1f MB" % (model_dir, time.perf_counter() - t0, _size(model_dir) / 1e6), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
