"""The API contract: the JSON answer of every route, defined once.

Each answer is a ``TypedDict`` below; ``NotRequired`` marks keys an answer may leave out and
``Annotated[type, "text"]`` documents a field.  Everything else is derived from or checked against
these definitions:

* ``frontend/src/api_types.ts`` is generated from them, and so are the field tables of ``docs/api.md``
  (``scripts/gen_contract.sh`` writes both); a test fails when a committed file differs;
* :func:`check` validates an answer (tests run it on every route of the demo logdir and of generated ones);
* the CLI's ``--json`` prints :class:`CliReport` items.

Numbers are :data:`Num`: a JSON number, or ``"NaN"`` / ``"Infinity"`` / ``"-Infinity"`` (JSON has no
non-finite numbers; ``api.views.safe`` writes them as these strings)."""
from __future__ import annotations

import sys
import typing
from typing import Any, Dict, List, Literal, Optional, Tuple, Union

from typing import Annotated, NotRequired, TypedDict

NonFinite = Literal["NaN", "Infinity", "-Infinity"]
Num = Union[float, NonFinite, None]


class Problem(TypedDict):
    what: Annotated[str, "what is wrong with the report"]
    hint: Annotated[str, "how to fix it"]


class ErrorAnswer(TypedDict):
    error: Annotated[str, "what was wrong with the request (4xx) or why it could not be answered (503)"]
    hint: str


class Accuracy(TypedDict, total=False):
    float: Num
    quantized: Num
    dataset: Any


class LayerBits(TypedDict, total=False):
    weights: Annotated[Dict[str, Any], "attribute (weight) -> bits"]
    activation: Any


class BitWidths(TypedDict, total=False):
    layers: Dict[str, LayerBits]
    last_layer: Any


# The manifest is the user's file, echoed as read: only its known keys are typed, any other key is allowed.
class Manifest(TypedDict, total=False):
    schema: Any
    model_name: Optional[str]
    created: Any
    xquant_config: Dict[str, Any]
    custom_metrics: List[Any]
    stage_logs: Optional[str]
    troubleshoot: Any
    versions: Dict[str, Any]
    accuracy: Optional[Accuracy]
    bit_widths: Optional[BitWidths]
    extra: Dict[str, Any]


OPEN = {"Manifest", "Accuracy", "BitWidths", "LayerBits"}  # types whose answers may carry keys the contract does not list
# Types the panel indexes by a computed key (a dataset name): TypeScript gets an index signature for them.
TS_INDEXED = {"LayerRow", "LayerDetail"}


class Thresholds(TypedDict):
    quantize_error: Annotated[Dict[str, Num], "threshold_quantize_error per metric"]
    detect_under: Annotated[Dict[str, bool], "is_detect_under_threshold_quantize_error per metric"]
    degrade_layer_ratio: Num
    zscore_outlier_removal: Num
    ratio_unbalanced_concatenation: Num
    bitwidth_mixed_precision_with_model_output_loss_objective: Num


class Verdict(TypedDict):
    judge: Annotated[str, "outlier_removal, shift_negative_activation, unbalanced_concatenation, "
                          "mixed_precision_with_model_output_loss_objective or general"]
    source: Annotated[Literal["computed", "mct"], "computed from the logs, or MCT's own troubleshoot_report.json"]
    layers: Annotated[List[str], "the report's layer or node names it is about"]
    numbers: Annotated[Dict[str, Any], "the numbers that justify it (per judge; docs/api.md)"]
    manual: Annotated[Optional[str], "the manual entry id (GET manual?id=)"]
    message: str
    snippet: Annotated[Optional[str], "Python to paste (MCT 2.6.1), or null"]
    countermeasure: Annotated[Optional[Dict[str, Any]], "what to change as data (docs/api.md, Countermeasures): "
                                                        "the snippet is rendered from it"]


class Artifact(TypedDict):
    id: str
    kind: Literal["similarity_chart", "outlier_histogram", "other"]
    name: str
    metric: Optional[str]
    dataset: Optional[str]
    layer: Optional[str]


class Worst(TypedDict):
    metric: str
    dataset: str
    value: Num
    severity: Annotated[Num, "how far past its threshold (>= 1 is degraded), comparable across metrics"]


# "from" is a Python keyword: this one is declared in the functional form.
JoinInput = TypedDict("JoinInput", {
    "name": str, "node": str, "range": List[Num], "width": Num,
    "from": Annotated[Literal["histogram", "threshold"], "where the range was read"],
    "module": NotRequired[Annotated[Optional[str], "the layer of the module that produced this input (itself when "
                                                   "it is one), null when a join or a fork is in the way"]]})


class ConcatCheck(TypedDict):
    node: str
    node_id: str
    op: str
    kind: Literal["concatenation", "add"]
    inputs: List[JoinInput]
    unmeasured: Annotated[List[str], "inputs without a value range"]
    ratio: Annotated[Num, "widest / narrowest input range, null when fewer than two are measured"]
    scale: Num
    scale_input: Optional[str]
    wide_input: Optional[str]
    flagged: NotRequired[Annotated[bool, "ratio >= threshold_ratio_unbalanced_concatenation"]]


class ConcatSummary(TypedDict):
    joins: int
    measured: int
    flagged: int
    threshold: Num
    widest: List[ConcatCheck]


class MctRule(TypedDict):
    available: Optional[bool]
    problem: Optional[str]
    error: Optional[str]
    module_paths: NotRequired[str]


class MctPair(TypedDict):
    layer: Optional[str]
    rule: Optional[str]
    first: str
    second: str
    kind: str
    ratio: Num
    ratio_from: Optional[str]
    in_troubleshoot_report: Optional[bool]
    flagged: Optional[bool]
    join: Optional[str]
    relation: Optional[str]


class AgreementItem(TypedDict):
    status: Literal["agree", "mct_only", "graph_only"]
    join: Optional[str]
    mct_pair: Optional[List[str]]
    mct_ratio: Num
    graph_ratio: Num
    threshold: Num
    reason: str


class ConcatAgreement(TypedDict, total=False):
    threshold: Num
    mct_source: Optional[Literal["troubleshoot_report", "name_heuristic"]]
    mct_rule: MctRule
    mct_pairs: List[MctPair]
    items: List[AgreementItem]
    counts: Dict[str, int]


# -- GET reports --------------------------------------------------------------------------------------------
class ReportRef(TypedDict):
    id: Annotated[str, "stable id from the report's path (use it in the other routes)"]
    name: str
    path: Annotated[str, "the report dir relative to the logdir"]
    model_name: Optional[str]
    has_quant_report: bool
    has_troubleshoot_report: bool
    has_graph: bool
    has_histograms: bool
    stage_logs: Annotated[Optional[str], "the MCT stage-log folder used, relative to the logdir"]
    layer_count: int
    manifest: Optional[Manifest]
    problems: List[Problem]


class ReportsResponse(TypedDict):
    logdir: str
    reports: List[ReportRef]
    hint: NotRequired[Annotated[str, "only when no report was found: how to make one"]]


# -- GET report ---------------------------------------------------------------------------------------------
class VerdictGroup(TypedDict):
    judge: str
    source: Literal["computed", "mct"]
    cause: Annotated[Optional[str], "the judge's finding, when it names one (`numbers.finding`: outlier_removal "
                                    "e.g. real_outlier_tail / normal_tail, shift_negative_activation e.g. "
                                    "shift_helps / small_share / clip_trade); else null"]
    advice: Annotated[Optional[str], "the kind of its countermeasure (quantization_config, bit_width, "
                                     "layer_activation, model_change, onnx_option...); null for verdicts without one"]
    count: Annotated[int, "verdicts in the group"]
    layers: Annotated[List[str], "the first few layers its verdicts name (at most 8), in verdict order"]
    layer_count: Annotated[int, "distinct layers its verdicts name"]
    manual: Optional[str]
    message: Annotated[str, "the first verdict's message"]


class ReportSummary(TypedDict):
    id: str
    name: str
    model_name: Optional[str]
    thresholds: Annotated[Thresholds, "the thresholds of this analysis (manifest, then MCT's defaults, then the query)"]
    metrics: List[str]
    output_metrics: Annotated[Dict[str, Dict[str, Num]], "dataset (repr / val) -> metric -> value at the output"]
    layer_count: int
    degraded_layers: Annotated[List[str], "in MCT's order"]
    degraded_ratio: Num
    judges_skipped: Annotated[bool, "degraded ratio at or over threshold_degrade_layer_ratio"]
    metrics_without_threshold: List[str]
    verdict_count: Annotated[int, "computed verdicts and MCT's own (every one: GET verdicts; per layer: GET layer)"]
    verdict_groups: Annotated[List[VerdictGroup], "the verdicts grouped by judge, source, cause and advice, in the "
                                                  "order of their first verdict (computed, then MCT's own)"]
    general: Annotated[List[Verdict], "the general troubleshoots that apply"]
    concat_summary: ConcatSummary
    concat_agreement: ConcatAgreement
    artifacts: List[Artifact]
    manifest: Optional[Manifest]
    accuracy: Annotated[Optional[Accuracy], "the manifest's float / quantized accuracy"]
    problems: List[Problem]


# -- GET graph ----------------------------------------------------------------------------------------------
class GraphNode(TypedDict):
    id: str
    name: str
    op: Optional[str]
    group: Annotated[Optional[str], "module scope recovered from the torch.fx name (blocks/3/conv)"]
    inputs: List[str]
    output_shape: Any
    layer: Annotated[Optional[str], "the XQuant layer this node is, if any"]
    degraded: bool
    worst: Optional[Worst]
    judges: List[str]


class GraphResponse(TypedDict):
    nodes: List[GraphNode]
    problems: List[Problem]


# -- GET layers ---------------------------------------------------------------------------------------------
class LayerRow(TypedDict):
    name: str
    node: Optional[str]
    op: Optional[str]
    index: int
    repr: Dict[str, Num]
    val: Dict[str, Num]
    flags: Annotated[Dict[str, bool], "\"metric.dataset\" -> degraded by it"]
    degraded: bool
    worst: Optional[Worst]
    judges: List[str]


class VerdictNode(TypedDict):
    name: str
    node: Optional[str]
    op: Optional[str]
    judges: List[str]


class LayersResponse(TypedDict):
    metrics: List[str]
    datasets: List[str]
    layers: List[LayerRow]
    verdict_nodes: Annotated[List[VerdictNode], "graph nodes a verdict names that are not compare points"]
    thresholds: Thresholds


# -- GET verdicts -------------------------------------------------------------------------------------------
class VerdictsResponse(TypedDict):
    verdicts: List[Verdict]
    general: List[Verdict]
    judges_skipped: bool
    concat_checks: Annotated[List[ConcatCheck], "every concatenation / add with its measured input ranges"]
    concat_agreement: ConcatAgreement


# -- GET layer ----------------------------------------------------------------------------------------------
class Histogram(TypedDict):
    buckets: Annotated[List[List[Num]], "[left, right, count], at most 512 (neighbours merged beyond)"]
    bins: List[Num]
    counts: List[Num]
    mu: Num
    sigma: Num
    zscore: List[Num]
    max_zscore: Num
    suggested_z_threshold: Num
    z_threshold: Annotated[Num, "the z threshold of this analysis"]
    downsampled: Annotated[bool, "the logged histogram had more buckets than are sent"]


class QuantParams(TypedDict):
    activation_nbits: Optional[int]
    activation_threshold: Num
    activation_range: Annotated[Optional[List[Num]], "[min, max] of the quantized grid (QDQ ONNX models)"]
    signed: Optional[bool]
    quant_mode: Optional[str]
    z_threshold: Num
    shift_negative_activation_correction: Optional[bool]
    shift_negative_ratio: Num
    activation_error_method: Optional[str]
    weights_bias_correction: Optional[bool]
    op: Optional[str]
    weights_nbits: Optional[int]
    weights_nbits_source: Annotated[Optional[str], "stage graph, mct log or manifest"]
    weights_nbits_candidates: Optional[List[int]]
    activation_nbits_final: NotRequired[Annotated[int, "the manifest's activation bits of the quantized model"]]


class LayerDetail(TypedDict):
    name: str
    node: Optional[str]
    op: Optional[str]
    output_shape: Any
    is_layer: Annotated[bool, "false for a graph node that is not an XQuant compare point"]
    repr: Dict[str, Num]
    val: Dict[str, Num]
    flags: Dict[str, bool]
    degraded: bool
    worst: Optional[Worst]
    thresholds: Thresholds
    quant: Optional[QuantParams]
    histogram: Optional[Histogram]
    verdicts: List[Verdict]


# -- GET compare --------------------------------------------------------------------------------------------
class CompareLayer(TypedDict):
    name: str
    status: Literal["improved", "worse", "unchanged", "only_a", "only_b"]
    a: Optional[Dict[str, Dict[str, Num]]]
    b: Optional[Dict[str, Dict[str, Num]]]
    delta: Annotated[Dict[str, Num], "\"metric.dataset\" -> b - a"]
    degraded_a: bool
    degraded_b: bool
    name_a: Annotated[Optional[str], "the layer's name in A (null: only in B)"]
    name_b: Annotated[Optional[str], "the layer's name in B (null: only in A); `name` is B's name when there is one"]
    key: Annotated[Optional[str], "the module key the two layers paired by (null when paired by name)"]


class SettingChange(TypedDict):
    param: str
    a: Any
    b: Any
    source: Literal["stage graph", "manifest"]
    layers: int
    examples: List[str]


class OutputChange(TypedDict):
    a: Num
    b: Num
    better: Optional[bool]


class Improved(TypedDict):
    degraded_layers: bool
    output_metrics: bool
    accuracy: bool


class Countermeasure(TypedDict):
    declared: Annotated[Optional[Dict[str, Any]], "B's manifest extra.countermeasure"]
    changes: List[SettingChange]
    applied: bool
    degraded_a: int
    degraded_b: int
    output_dataset: str
    output_metrics: Dict[str, OutputChange]
    accuracy_a: Num
    accuracy_b: Num
    improved: Improved
    did_not_improve: bool
    reason: str


class CompareAccuracy(TypedDict):
    a: Optional[Accuracy]
    b: Optional[Accuracy]


class ComparePairing(TypedDict):
    method: Annotated[Literal["name", "module key"], "by name (same toolchain family), by module key (MCT vs ONNX)"]
    paired: int
    only_a: Annotated[List[str], "A's layers with no partner in B (at most 50)"]
    only_b: Annotated[List[str], "B's layers with no partner in A (at most 50)"]
    notes: Annotated[List[str], "what the pairs compare when the toolchains differ"]


class CompareResponse(TypedDict):
    a: str
    b: str
    a_name: str
    b_name: str
    metrics: List[str]
    layers: List[CompareLayer]
    summary: Dict[str, int]
    output_delta_val: Dict[str, Num]
    accuracy: CompareAccuracy
    countermeasure: Countermeasure
    general: List[Verdict]
    thresholds: Thresholds
    pairing: ComparePairing


# -- GET manual ---------------------------------------------------------------------------------------------
class ManualRef(TypedDict):
    id: str
    title: str
    kind: Literal["judgeable", "general"]
    judge: Optional[str]


class ManualList(TypedDict):
    entries: List[ManualRef]


class ManualEntry(TypedDict):
    id: str
    title: str
    kind: Literal["judgeable", "general"]
    judge: Optional[str]
    markdown: str
    html: str
    snippets: List[str]


# -- tb-xquant report --json --------------------------------------------------------------------------------
class CliReport(TypedDict):
    name: str
    id: str
    model_name: Optional[str]
    layer_count: int
    degraded_layers: List[str]
    degraded_ratio: Num
    judges_skipped: bool
    thresholds: Thresholds
    output_metrics: Dict[str, Dict[str, Num]]
    verdicts: Annotated[List[Verdict], "the verdicts, then the general troubleshoots"]
    concat_checks: List[ConcatCheck]
    concat_agreement: ConcatAgreement
    accuracy: Optional[Accuracy]
    problems: List[Problem]


# -- GET studies / GET study (tb_xquant_plugin.mct_study; also tb-xquant study --json) ------------------------
class StudyRef(TypedDict):
    id: Annotated[str, "stable id from the study folder's path (use it in GET study)"]
    name: Annotated[str, "the study folder relative to the logdir"]
    model_name: Optional[str]
    status: Annotated[str, "running, done or failed, as study.json says (empty when it could not be read)"]
    attempts: Annotated[int, "attempts recorded, the baseline included"]
    best: Annotated[Optional[str], "the best attempt's id"]
    problems: Annotated[List[Problem], "why study.json could not be read"]


class StudiesResponse(TypedDict):
    logdir: str
    studies: List[StudyRef]
    hint: NotRequired[Annotated[str, "only when no study was found: how to make one"]]


class AttemptVerdict(TypedDict, total=False):
    judge: Optional[str]
    layers: List[str]
    message: Optional[str]


class StudyAttempt(TypedDict):
    id: str
    label: Annotated[str, "the countermeasure in a few words (baseline for the baseline)"]
    source: Annotated[str, "baseline, verdict (a verdict's countermeasure), combined (the helpful ones together) "
                           "or general (a general troubleshoot)"]
    status: Annotated[str, "ok, failed or running"]
    error: Annotated[Optional[str], "why a failed attempt failed"]
    dir: Optional[str]
    report: Annotated[Optional[str], "its report folder, relative to the study folder"]
    report_id: Annotated[Optional[str], "that report's id in GET reports; null when it is not listed or lies outside "
                                        "the study folder"]
    parent: Optional[str]
    countermeasure: Annotated[Optional[Dict[str, Any]], "what the attempt changed, as data (null for the baseline)"]
    verdict: Annotated[Optional[AttemptVerdict], "the verdict that proposed it"]
    accuracy: Annotated[Num, "quantized accuracy (the study's evaluate), null when unknown"]
    float_accuracy: Num
    output_sqnr: Annotated[Num, "model-output SQNR on the validation set"]
    output_mse: Num
    degraded_count: Optional[int]
    degraded: Annotated[List[str], "the degraded layers"]
    time_s: Annotated[Num, "seconds the attempt took (quantization and report)"]
    peak_rss_mb: Annotated[Num, "peak resident memory of the study's process after it, MB"]
    size_bytes: Annotated[Num, "bytes of the quantized weights at their bit widths"]
    helped: Annotated[Optional[bool], "better than the baseline (fewer degraded layers, higher output SQNR or "
                                      "accuracy) without losing accuracy; null for the baseline"]


class StudyResponse(TypedDict):
    id: str
    name: Annotated[str, "the study folder relative to the logdir"]
    model_name: Optional[str]
    toolchain: Optional[str]
    created: Optional[str]
    status: str
    stopped_by: Annotated[Optional[str], "the budget that stopped it (max_attempts, time_budget_s), or why it failed"]
    elapsed_s: Num
    baseline: Annotated[Optional[str], "the baseline attempt's id"]
    best: Annotated[Optional[str], "the best attempt's id: of those that helped, the highest accuracy (else "
                                   "output SQNR), then the fewest degraded; the baseline when none helped"]
    attempts: Annotated[List[StudyAttempt], "the baseline first, in the order they ran"]
    winning_countermeasure: Optional[Dict[str, Any]]
    winning_snippet: Annotated[Optional[str], "Python to paste: the best attempt's configuration, when it helped"]
    general_path: Annotated[List[str], "the general troubleshoots the study tried when no countermeasure helped"]
    float_model_untouched: Optional[bool]
    problems: Annotated[List[Problem], "attempts whose report is not listed"]


class ReplayResponse(TypedDict):
    layer: str
    z: Annotated[Num, "the z asked for (clip_z)"]
    clip: Annotated[List[Num], "mu - z sigma, mu + z sigma: where the z window ends on the value axis"]
    max_zscore: Num
    replay: Annotated[Optional[Dict[str, Any]], "the outlier judge's replay at z (the numbers of an outlier "
                                                "verdict's `replay`: finding, thresholds or ranges, noise with and "
                                                "without, body SQNR)"]
    text: Annotated[str, "the finding as a sentence"]


# Route -> answer type (GET <route>), in the order docs/api.md lists them.
ROUTES: Dict[str, Any] = {
    "reports": ReportsResponse,
    "report": ReportSummary,
    "graph": GraphResponse,
    "layers": LayersResponse,
    "verdicts": VerdictsResponse,
    "layer": LayerDetail,
    "compare": CompareResponse,
    "replay": ReplayResponse,
    "manual": ManualList,
    "manual?id": ManualEntry,
    "studies": StudiesResponse,
    "study": StudyResponse,
}


# -----------------------------------------------------------------------------------------------------------
# Reading the definitions
# -----------------------------------------------------------------------------------------------------------
def _strip(tp: Any) -> Tuple[Any, str, bool]:
    """(type, doc, required?) of one annotation: Annotated and NotRequired peeled off."""
    doc, required = "", True
    while True:
        origin = typing.get_origin(tp)
        if origin is NotRequired:
            required = False
            tp = typing.get_args(tp)[0]
        elif origin is Annotated:
            args = typing.get_args(tp)
            tp, doc = args[0], (args[1] if len(args) > 1 and isinstance(args[1], str) else doc)
        else:
            return tp, doc, required


def fields(td: Any) -> List[Tuple[str, Any, str, bool]]:
    """``(key, type, doc, required)`` of a TypedDict, in declaration order."""
    hints = typing.get_type_hints(td, include_extras=True)
    out = []
    for key, tp in hints.items():
        tp, doc, required = _strip(tp)
        required = required and key in getattr(td, "__required_keys__", frozenset(hints))
        out.append((key, tp, doc, required))
    return out


def is_typeddict(tp: Any) -> bool:
    return isinstance(tp, type) and issubclass(tp, dict) and hasattr(tp, "__annotations__") and hasattr(tp, "__total__")


def all_types() -> List[Any]:
    """Every TypedDict reachable from the routes and the CLI, dependencies first."""
    order: List[Any] = []

    def visit(tp: Any) -> None:
        tp = _strip(tp)[0]
        if is_typeddict(tp):
            if tp in order:
                return
            for _k, ft, _d, _r in fields(tp):
                visit(ft)
            order.append(tp)
        else:
            for a in typing.get_args(tp):
                visit(a)

    for tp in list(ROUTES.values()) + [CliReport, ErrorAnswer]:
        visit(tp)
    return order


# -----------------------------------------------------------------------------------------------------------
# Checking an answer
# -----------------------------------------------------------------------------------------------------------
def check(value: Any, tp: Any, path: str = "$") -> List[str]:
    """Where ``value`` (parsed JSON) departs from ``tp``: a list of ``path: what`` (empty when it conforms)."""
    tp = _strip(tp)[0]
    if tp is Any:
        return []
    if tp is type(None):
        return [] if value is None else ["%s: %r is not null" % (path, _short(value))]
    origin = typing.get_origin(tp)
    if origin is Union:
        for alt in typing.get_args(tp):
            if not check(value, alt, path):
                return []
        return ["%s: %r matches none of %s" % (path, _short(value), ts_type(tp))]
    if origin is Literal:
        return [] if value in typing.get_args(tp) else ["%s: %r is not one of %s" % (path, _short(value),
                                                                                   typing.get_args(tp))]
    if origin in (list, List):
        if not isinstance(value, list):
            return ["%s: not a list" % path]
        (item,) = typing.get_args(tp) or (Any,)
        errs: List[str] = []
        for i, v in enumerate(value):
            errs += check(v, item, "%s[%d]" % (path, i))
            if len(errs) > 20:
                break
        return errs
    if origin in (dict, Dict):
        if not isinstance(value, dict):
            return ["%s: not an object" % path]
        _k, item = typing.get_args(tp) or (str, Any)
        errs = []
        for k, v in value.items():
            errs += check(v, item, "%s.%s" % (path, k))
            if len(errs) > 20:
                break
        return errs
    if is_typeddict(tp):
        if not isinstance(value, dict):
            return ["%s: not an object (%s)" % (path, tp.__name__)]
        errs = []
        known = set()
        for key, ft, _doc, required in fields(tp):
            known.add(key)
            if key not in value:
                if required:
                    errs.append("%s: missing %s.%s" % (path, tp.__name__, key))
                continue
            errs += check(value[key], ft, "%s.%s" % (path, key))
        if tp.__name__ not in OPEN:
            errs += ["%s: %s has no field %r" % (path, tp.__name__, k) for k in value if k not in known]
        return errs
    if tp is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return [] if ok else ["%s: %r is not a number" % (path, _short(value))]
    if tp is int:
        ok = isinstance(value, int) and not isinstance(value, bool)
        return [] if ok else ["%s: %r is not an integer" % (path, _short(value))]
    if tp is bool:
        return [] if isinstance(value, bool) else ["%s: %r is not a boolean" % (path, _short(value))]
    if tp is str:
        return [] if isinstance(value, str) else ["%s: %r is not a string" % (path, _short(value))]
    raise TypeError("the contract uses a type check() does not know: %r" % (tp,))


def _short(v: Any) -> Any:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


# -----------------------------------------------------------------------------------------------------------
# TypeScript and Markdown
# -----------------------------------------------------------------------------------------------------------
def ts_type(tp: Any) -> str:
    tp = _strip(tp)[0]
    if tp is Any:
        return "unknown"
    if tp is type(None):
        return "null"
    if tp == Num:
        return "Num"
    origin = typing.get_origin(tp)
    if origin is Union:
        parts = [ts_type(a) for a in typing.get_args(tp)]
        if "Num" in parts or tp == Optional[Num]:
            parts = ["Num"] + [p for p in parts if p not in ("Num", "null", "number", "NonFinite")]
        out: List[str] = []
        for p in parts:
            if p not in out:
                out.append(p)
        return " | ".join(out)
    if origin is Literal:
        return " | ".join("'%s'" % a if isinstance(a, str) else str(a).lower() for a in typing.get_args(tp))
    if origin in (list, List):
        inner = ts_type(typing.get_args(tp)[0])
        return ("(%s)[]" % inner) if "|" in inner else inner + "[]"
    if origin in (dict, Dict):
        return "Record<string, %s>" % ts_type(typing.get_args(tp)[1])
    if is_typeddict(tp):
        return tp.__name__
    return {float: "number", int: "number", bool: "boolean", str: "string"}[tp]


def typescript() -> str:
    lines = [
        "// GENERATED from tb_xquant_plugin/api/contract.py -- do not edit. Regenerate with:",
        "//   scripts/gen_contract.sh",
        "// tests/test_contract.py fails when this file and the contract differ.",
        "",
        "/** A number; JSON has no NaN or infinities, so those arrive as strings (decode with api.ts's num()). */",
        "export type Num = number | 'NaN' | 'Infinity' | '-Infinity' | null;",
        "",
    ]
    for td in all_types():
        if td.__doc__ and td.__doc__ != dict.__doc__ and not td.__doc__.startswith(td.__name__ + "("):
            lines.append("/** %s */" % " ".join(td.__doc__.split()))
        lines.append("export interface %s {" % td.__name__)
        for key, tp, doc, required in fields(td):
            if doc:
                lines.append("  /** %s */" % doc)
            name = key if key.isidentifier() else "'%s'" % key
            lines.append("  %s%s: %s;" % (name, "" if required else "?", ts_type(tp)))
        if td.__name__ in OPEN or td.__name__ in TS_INDEXED:
            lines.append("  [key: string]: unknown;")
        lines.append("}")
    return "\n".join(lines) + "\n"


def md_type(tp: Any) -> str:
    return ts_type(tp).replace("|", "\\|")


MD_BEGIN = "<!-- contract:begin (generated from tb_xquant_plugin/api/contract.py by scripts/gen_contract.sh) -->"
MD_END = "<!-- contract:end -->"


def markdown() -> str:
    routes = {tp: route for route, tp in ROUTES.items()}
    lines = [MD_BEGIN, "", "## Answer shapes", "",
             "Generated from `tb_xquant_plugin/api/contract.py`. `Num` is a number or `\"NaN\"`, `\"Infinity\"`,",
             "`\"-Infinity\"`; `?` marks a field an answer may leave out.", ""]
    for td in all_types():
        title = td.__name__
        if td in routes:
            title += " — answer of `GET %s`" % routes[td]
        elif td is CliReport:
            title += " — one item of `tb-xquant report --json`"
        lines += ["### %s" % title, "", "| field | type | meaning |", "|---|---|---|"]
        for key, tp, doc, required in fields(td):
            lines.append("| `%s`%s | `%s` | %s |" % (key, "" if required else "?", md_type(tp), doc.replace("|", "\\|")))
        if td.__name__ in OPEN:
            lines.append("| *(any other key)* | | as written in the file |")
        lines.append("")
    lines.append(MD_END)
    return "\n".join(lines) + "\n"


def splice_markdown(doc: str) -> str:
    """``doc`` with its generated block replaced by :func:`markdown` (appended when it has none)."""
    block = markdown()
    if MD_BEGIN in doc and MD_END in doc:
        head = doc[: doc.index(MD_BEGIN)]
        tail = doc[doc.index(MD_END) + len(MD_END):].lstrip("\n")
        return head + block + (("\n" + tail) if tail else "")
    return doc.rstrip("\n") + "\n\n" + block


def main(argv: Optional[List[str]] = None) -> int:
    """Print the generated TypeScript, or ``docs/api.md`` with its generated block replaced (scripts/gen_contract.sh
    writes both)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args == ["--typescript"]:
        sys.stdout.write(typescript())
        return 0
    if len(args) == 2 and args[0] == "--markdown":
        from tb_xquant_plugin.readers.files import read_bytes

        doc = read_bytes(args[1], args[1], 4 * 1024 * 1024) or b""
        sys.stdout.write(splice_markdown(doc.decode("utf-8")))
        return 0
    print("usage: python -m tb_xquant_plugin.api.contract (--typescript | --markdown docs/api.md)", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
