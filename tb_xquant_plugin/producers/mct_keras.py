"""MCT 2.6.1 for Keras: ``xquant_report_keras_experimental``'s report dir and the stage logs.

The files have the PyTorch layout (``producers.mct_common`` builds both) with four differences:

* the XQuant graph is the quantized Keras model: every weighted layer sits in a ``KerasQuantizationWrapper``
  node (``model_1/KerasQuantizationWrapper_0/keras_quantization_wrapper_1``) whose ``layer`` attribute holds
  the wrapped Keras layer (class and config, its ``name`` among them), and every activation quantizer is a
  ``KerasActivationQuantizationHolder`` node between two layers.  The display graph names each wrapper by its
  Keras layer and folds the holders away, so it reads as the float model does (``stem_conv_bn`` -> ``stem_act``);
* ``quant_report.json``'s layer keys are the wrapper names (``keras_quantization_wrapper_N``; only weighted
  layers are compare points): they become the Keras layer names.  The stage graphs and the float
  histograms use the Keras names already;
* ``cs`` is ``tf.keras.losses.CosineSimilarity``, the **negative** cosine similarity (-0.9998 where PyTorch
  gives +0.9998).  The report shows +cosine (the sign flipped, nothing else), so that MCT's ``cs``
  threshold (0.1, degraded at or under it) means what it means for PyTorch.  A problem says so, with what
  MCT's rule would flag on the raw values (:func:`mct_rule_on_raw_values`) -- docs/keras.md;
* there is no troubleshooting extension for Keras in MCT 2.6.1 (no ``troubleshoot_report.json``, no PNGs):
  every verdict is computed by tb-xquant, and a problem says that too.
"""
from __future__ import annotations

import ast
import dataclasses
import re
import threading
from typing import Any, Dict, List, Optional, Tuple

from tb_xquant_plugin.model import manifest as mf
from tb_xquant_plugin.model.report import (
    BIT_WIDTHS,
    GRAPH,
    HISTOGRAMS,
    LAYER_METRICS,
    QUANT_PARAMS,
    STAGE_GRAPHS,
    Problem,
    Report,
)
from tb_xquant_plugin.model.thresholds import Thresholds
from tb_xquant_plugin.producers import mct_files as art
from tb_xquant_plugin.producers.base import MCT_KERAS, Producer
from tb_xquant_plugin.producers.mct_common import MCTFlavour, build_report as _build_mct_report
from tb_xquant_plugin.readers import files
from tb_xquant_plugin.readers.events import EventSource
from tb_xquant_plugin.readers.files import join
from tb_xquant_plugin.readers.graphs import XQUANT_REPR, XQUANT_VAL, GraphNode, display_graph, main_nodes

WRAPPER_OP = "KerasQuantizationWrapper"
HOLDER_OP = "KerasActivationQuantizationHolder"
WRAPPER_KEY_PREFIX = "keras_quantization_wrapper"
# The metric MCT for Keras writes with the opposite sign (tf.keras.losses.CosineSimilarity = -cosine).
NEGATED_METRICS = ("cs",)
# ``toolchain`` in tb-xquant's manifest (mct_run.xquant_report_keras_with_manifest writes it).
MANIFEST_TOOLCHAIN = "toolchain"
MAX_LAYER_ATTR = 200_000  # characters of a wrapper's ``layer`` attribute parsed
QUANT_REPORT_HEAD = 64 * 1024  # bytes of quant_report.json read to tell Keras from PyTorch
_FIRST_LAYER_KEY = re.compile(rb'"intermediate_similarity_metrics_(?:repr|val)"\s*:\s*\{\s*"((?:[^"\\]|\\.)*)"')
_CLASS_RE = re.compile(r"""['"]class_name['"]\s*:\s*['"]([^'"]+)['"]""")
_NAME_RE = re.compile(r"""['"]config['"]\s*:\s*\{\s*['"]name['"]\s*:\s*(?:'((?:[^'\\]|\\.)*)'|"((?:[^"\\]|\\.)*)")""")
_ACT_RE = re.compile(r"""['"]activation['"]\s*:\s*['"]([^'"]+)['"]""")


@dataclasses.dataclass(frozen=True)
class WrappedLayer:
    """The Keras layer inside a ``KerasQuantizationWrapper`` node."""

    class_name: Optional[str]
    name: Optional[str]
    activation: Optional[str]  # its ``activation`` argument (Dense / Conv2D), when it has one


def wrapped_layer(text: Any) -> WrappedLayer:
    """Read the wrapper's ``layer`` attribute: the ``repr`` of the Keras layer's serialized form
    (``{'module': 'keras.layers', 'class_name': 'Conv2D', 'config': {'name': 'stem_conv', ...}, ...}``).

    Parsed as a Python literal when it is one (names with quotes included); otherwise the class, the name
    and the activation are picked out with patterns.  Never evaluates anything."""
    if not isinstance(text, str) or not text:
        return WrappedLayer(None, None, None)
    text = text[:MAX_LAYER_ATTR]
    try:
        value = ast.literal_eval(text)
    except Exception:  # noqa: BLE001 - not a literal (or absurdly nested): fall back to the patterns
        value = None
    if isinstance(value, dict):
        config = value.get("config") if isinstance(value.get("config"), dict) else {}
        cls, name, act = value.get("class_name"), config.get("name"), config.get("activation")
        return WrappedLayer(cls if isinstance(cls, str) else None, name if isinstance(name, str) and name else None,
                            act if isinstance(act, str) else None)
    m = _CLASS_RE.search(text)
    n = _NAME_RE.search(text)
    a = _ACT_RE.search(text)
    name = None
    if n:
        raw = n.group(1) if n.group(1) is not None else n.group(2)
        try:
            name = ast.literal_eval(("'%s'" if n.group(1) is not None else '"%s"') % raw)
        except Exception:  # noqa: BLE001
            name = raw
    return WrappedLayer(m.group(1) if m else None, name or None, a.group(1) if a else None)


def _wrapper_key(node: GraphNode) -> str:
    """The wrapper's Keras name (quant_report.json's key): its ``name`` attribute, else the id's last part."""
    name = node.attrs.get("name")
    return name if isinstance(name, str) and name else node.name


def keras_layer_names(nodes: List[GraphNode]) -> Dict[str, str]:
    """``{wrapper name: Keras layer name}`` for every wrapper node whose layer name is known and unique
    among the graph's names (a clash keeps the wrapper name)."""
    out: Dict[str, str] = {}
    taken = {n.name for n in nodes if n.op != WRAPPER_OP}
    for n in nodes:
        if n.op != WRAPPER_OP:
            continue
        inner = wrapped_layer(n.attrs.get("layer")).name
        if inner and inner not in taken:
            out[_wrapper_key(n)] = inner
            taken.add(inner)
    return out


def _fold(nodes: List[GraphNode], drop) -> Tuple[List[GraphNode], Dict[str, str]]:
    """Remove the single-input nodes ``drop`` selects, connecting their consumers to their producers.
    Returns the nodes and ``{removed id: the node it stood for}`` (as ``readers.graphs.display_graph``)."""
    folded = {n.id: n.inputs[0] for n in nodes if drop(n) and len(n.inputs) == 1}

    def resolve(i: str) -> str:
        for _ in range(64):
            if i not in folded:
                break
            i = folded[i]
        return i

    alias: Dict[str, str] = {}
    out: List[GraphNode] = []
    for n in nodes:
        if n.id in folded:
            alias[n.id] = resolve(n.id)
            continue
        inputs: List[str] = []
        for i in n.inputs:
            r = resolve(i)
            if r not in inputs and r != n.id:
                inputs.append(r)
        out.append(dataclasses.replace(n, inputs=inputs))
    return out, alias


def keras_display_graph(nodes_all: List[GraphNode]) -> Tuple[List[GraphNode], Dict[str, str]]:
    """The quantized Keras model as its user reads it: wrapper nodes named and typed by their Keras layer
    (``attrs["mct_wrapper"]`` keeps the wrapper name), activation holders folded away."""
    names = keras_layer_names(nodes_all)
    renamed: List[GraphNode] = []
    for n in nodes_all:
        attrs = {k: v for k, v in n.attrs.items() if k != "layer"}
        if n.op == WRAPPER_OP:
            inner = wrapped_layer(n.attrs.get("layer"))
            key = _wrapper_key(n)
            attrs["mct_wrapper"] = key
            if inner.activation and inner.activation != "linear":
                attrs["activation"] = inner.activation
            renamed.append(dataclasses.replace(n, name=names.get(key, n.name), op=inner.class_name or n.op,
                                               attrs=attrs))
        else:
            renamed.append(dataclasses.replace(n, attrs=attrs))
    nodes, alias = display_graph(main_nodes(renamed))
    nodes, holders = _fold(nodes, lambda n: n.op == HOLDER_OP)
    for k, v in list(alias.items()):
        alias[k] = holders.get(v, v)
    alias.update(holders)
    return nodes, alias


def negate(metrics: Dict[str, float]) -> Dict[str, float]:
    """A layer's metrics with the sign of the negated ones (``cs``) flipped back; NaN stays NaN."""
    out = dict(metrics)
    for m in NEGATED_METRICS:
        v = out.get(m)
        if isinstance(v, float):
            out[m] = -v
    return out


def mct_rule_on_raw_values(quant_report: Optional[Dict[str, Any]], th: Thresholds,
                           key_map: Optional[Dict[str, str]] = None) -> List[str]:
    """The layers MCT 2.6.1's detection rule (``core_detect_degrade_layer``: for every metric with a
    threshold, representative then validation data, ``value <= threshold`` when detected under, else
    ``>=``; NaN never) flags on ``quant_report.json``'s values as MCT for Keras wrote them -- ``cs``
    negative.  MCT has no such detection for Keras; this is what its PyTorch rule would say about these
    numbers.  Names through ``key_map`` (wrapper -> Keras layer name), in MCT's order."""
    if not quant_report:
        return []
    key_map = key_map or {}
    order: List[str] = []
    seen = set()
    metrics = list(quant_report["output"].get("repr", {}))
    for ds in ("repr", "val"):
        for values in quant_report["layers"].get(ds, {}).values():
            metrics += [m for m in values if m not in metrics]
    for metric in metrics:
        if metric not in th.quantize_error:
            continue
        thr, under = th.quantize_error[metric], bool(th.detect_under.get(metric, False))
        for ds in ("repr", "val"):
            for key, values in quant_report["layers"].get(ds, {}).items():
                v = values.get(metric)
                if v is None:
                    continue
                if (v <= thr) if under else (v >= thr):
                    name = key_map.get(key, key)
                    if name not in seen:
                        seen.add(name)
                        order.append(name)
    return order


def _layers_text(names: List[str], limit: int = 5) -> str:
    shown = ", ".join(n[:100] for n in names[:limit])
    return shown + (", ..." if len(names) > limit else "")


class KerasFlavour(MCTFlavour):
    producer = "mct-keras-xquant"
    toolchain = MCT_KERAS
    report_function = "xquant_report_keras_experimental (or tb_xquant_plugin.mct_run.xquant_report_keras_with_manifest)"
    troubleshoot_function = None
    graph_attrs = (XQUANT_REPR, XQUANT_VAL, "name", "layer", "activation", "negative_slope", "alpha")

    def folded(self, op):
        return False  # every node is read whole: the Keras display renames and folds by attributes

    def display(self, nodes_all):
        return keras_display_graph(nodes_all)

    def layer_name(self, node):
        return node.name  # Keras names are the layers' own (no "_layer" suffix to strip)

    def layer_key_map(self, nodes_all):
        return keras_layer_names(nodes_all)

    def metric_values(self, metrics):
        return negate(metrics)

    def finish(self, report: Report, quant_report, key_map) -> None:
        th = report.defaults
        n = len(report.layers)
        if quant_report is not None and any("cs" in v for ds in quant_report["layers"].values() for v in ds.values()):
            raw = mct_rule_on_raw_values(quant_report, th, key_map)
            thr = th.quantize_error.get("cs")
            under = bool(th.detect_under.get("cs", False))
            skipped = bool(n) and len(raw) / n >= th.degrade_layer_ratio
            rule = ("with cs %s %g degraded" % ("<=" if under else ">=", thr)) if thr is not None else \
                "without a cs threshold"
            report.problems.append(Problem(
                "cs is shown as +cosine similarity: MCT for Keras writes tf.keras.losses.CosineSimilarity, the "
                "negative cosine (about -1 for a layer that matches its float output), so its sign is flipped "
                "here and cs reads and is thresholded as for PyTorch. MCT's own rule on the raw values (%s) "
                "would flag %d of %d layers%s%s" % (
                    rule, len(raw), n, (": " + _layers_text(raw)) if raw else "",
                    " and skip every judge (ratio at or over threshold_degrade_layer_ratio=%g)"
                    % th.degrade_layer_ratio if skipped else ""),
                "Nothing to fix in the run: quant_report.json keeps MCT's raw (negative) values. cs thresholds "
                "you give the tab apply to +cosine (docs/keras.md)."))
        report.problems.append(Problem(
            "MCT 2.6.1 has no troubleshooting for Keras (no judges, no troubleshoot_report.json): every verdict "
            "for this report is computed by tb-xquant from the logs, with Keras code for the countermeasures",
            "Nothing to fix. The manual's entries (tb-xquant manual) give the Keras form of each countermeasure."))


KERAS = KerasFlavour()

# report dir -> (version of quant_report.json or of the manifest, is Keras); bounded
_kind_cache: Dict[str, Tuple[Any, bool]] = {}
_kind_lock = threading.Lock()
_MAX_KIND_CACHE = 8192


def _cached(path: str, decide) -> bool:
    try:
        version = files.version_key(path)
    except Exception:  # noqa: BLE001 - vanished
        return False
    with _kind_lock:
        hit = _kind_cache.get(path)
    if hit is not None and hit[0] == version:
        return hit[1]
    answer = bool(decide())
    with _kind_lock:
        if len(_kind_cache) >= _MAX_KIND_CACHE:
            _kind_cache.clear()
        _kind_cache[path] = (version, answer)
    return answer


def quant_report_is_keras(path: str, root: Optional[str]) -> Optional[bool]:
    """Whether a quant_report.json is MCT for Keras' (its first layer key is a wrapper name), read from its
    first bytes; None when those bytes name no layer."""
    head = b"".join(files.chunks(path, 0, QUANT_REPORT_HEAD))
    m = _FIRST_LAYER_KEY.search(head)
    if m is None:
        return None
    return m.group(1).startswith(WRAPPER_KEY_PREFIX.encode())


def is_keras_report_dir(report_dir: str, root: Optional[str]) -> bool:
    """A report dir written by MCT for Keras: its quant_report.json's layer keys are
    ``keras_quantization_wrapper_N``, or (no layer key to go by) tb-xquant's manifest says ``mct-keras``."""
    qr = join(report_dir, art.QUANT_REPORT)
    if files.exists(qr, root):
        try:
            verdict = _cached(qr, lambda: quant_report_is_keras(qr, root))
        except Exception:  # noqa: BLE001 - unreadable: the PyTorch adapter reports the problem
            return False
        if verdict:
            return True
    man = join(report_dir, mf.FILENAME)
    if not files.exists(man, root):
        return False

    def manifest_says() -> bool:
        try:
            data = files.read_json(man, mf.FILENAME, root)
        except files.ReadError:
            return False
        return isinstance(data, dict) and data.get(MANIFEST_TOOLCHAIN) == MCT_KERAS

    try:
        return _cached(man, manifest_says)
    except Exception:  # noqa: BLE001
        return False


def build_report(source: EventSource, logdir: str, rel: str, report_dir: str,
                 runs: Optional[List[str]] = None) -> Report:
    """The report of an MCT-for-Keras XQuant report dir."""
    return _build_mct_report(source, logdir, rel, report_dir, runs, KERAS)


class MCTKeras(Producer):
    """MCT 2.6.1 for Keras: the XQuant report dir and the stage logs (MCT has no troubleshooting for Keras)."""

    name = KERAS.producer
    toolchain = MCT_KERAS
    supplies = frozenset((GRAPH, LAYER_METRICS, HISTOGRAMS, QUANT_PARAMS, BIT_WIDTHS, STAGE_GRAPHS))

    def discover(self, logdir: str, runs: List[str]) -> Dict[str, str]:
        return {rel: d for rel, d in art.discover_report_dirs(logdir, runs).items() if is_keras_report_dir(d, logdir)}

    def signature_files(self):
        return (art.QUANT_REPORT, mf.FILENAME)

    def event_run(self, report_rel: str) -> Optional[str]:
        return files.run_path(report_rel, art.XQUANT_RUN)

    def build(self, source: EventSource, logdir: str, rel: str, report_dir: str,
              runs: Optional[List[str]] = None) -> Report:
        return build_report(source, logdir, rel, report_dir, runs)
