"""What MCT 2.6.1's XQuant reports share across frameworks, and the one builder of their :class:`Report`.

The report dir (``quant_report.json``, the ``xquant`` run, tb-xquant's manifest), the stage logs of
``mct.set_log_folder`` and ``mct_log.log`` have the same layout for PyTorch and Keras; what differs (the
names in the quantized graph, the sign of ``cs``, the troubleshooting extension) is an :class:`MCTFlavour`,
one per adapter (``producers.mct_pytorch``, ``producers.mct_keras``).  Missing or broken parts become
``problems``; nothing raises."""
from __future__ import annotations

import logging
import math
import os
from typing import Any, Dict, List, Optional, Tuple

from tb_xquant_plugin.model import manifest as mf
from tb_xquant_plugin.model.report import (
    MCT_PYTORCH,
    BIT_WIDTHS,
    GRAPH,
    HISTOGRAMS,
    LAYER_METRICS,
    PRODUCER_VERDICTS,
    QUANT_PARAMS,
    STAGE_GRAPHS,
    LastLayer,
    Layer,
    Problem,
    QuantParams,
    Report,
    StageGraph,
    report_id,
)
from tb_xquant_plugin.model.thresholds import Thresholds
from tb_xquant_plugin.producers import mct_files as art
from tb_xquant_plugin.producers import mct_log
from tb_xquant_plugin.producers import mct_matching, mct_verdicts
from tb_xquant_plugin.producers.mct_stages import (
    assign_final_weights_bits,
    read_stage_graph,
    stage_weights_candidates,
)
from tb_xquant_plugin.readers import events, files
from tb_xquant_plugin.readers.events import EventSource
from tb_xquant_plugin.readers.files import ReadError, join
from tb_xquant_plugin.readers.graphs import (
    XQUANT_REPR,
    XQUANT_VAL,
    GraphNode,
    display_graph,
    layer_name_of,
    main_nodes,
    parse_graph,
    parse_metric_dict,
)

logger = logging.getLogger(__name__)

STAGE_LOGS_FOLDER = "tensorboard_logs"
# Stage graphs from the latest to the earliest that carry final activation quantization parameters.
STAGE_PREFERENCE = (
    "after_activation_bias_correction",
    "after_statistics_correction",
    "statistics_computation",
    "post_statistics_collection_substitutions",
    "after_shift_negative_correction",
    "thresholds_selection",
)
# Stage graphs from the latest to the earliest that MCT 2.6.1 logs before mixed precision sets the
# final bit widths: their ``.weights`` nodes list the weights bit-width candidates (``'[8]'``, or
# ``'[8, 4, 2]'`` under mixed precision).  The later stages (``after_statistics_correction``,
# ``after_activation_bias_correction``) log the final weights configurations without their bits.
WEIGHTS_CANDIDATE_STAGES = (
    "statistics_computation",
    "post_statistics_collection_substitutions",
    "after_shift_negative_correction",
    "thresholds_selection",
    "after_statistic_collection",
    "after_candidates_filtering",
    "after_graph_marking",
)


def stage_runs_by_folder(runs: List[str]) -> Dict[str, Dict[str, str]]:
    """``{stage-log folder: {stage: run}}`` for the ``.../tensorboard_logs/<stage>`` runs."""
    by_folder: Dict[str, Dict[str, str]] = {}
    for r in runs:
        parts = r.split("/")
        if len(parts) >= 2 and parts[-2] == STAGE_LOGS_FOLDER:
            by_folder.setdefault("/".join(parts[:-1]), {})[parts[-1]] = r
    return by_folder


def find_stage_runs(runs: List[str], report_rel: str, manifest: Optional[dict],
                    layer_names: List[str], source: EventSource,
                    problems: Optional[List[Problem]] = None) -> Tuple[Optional[str], Optional[str]]:
    """The MCT stage-log folder of a report and the stage run to read quantization parameters from.

    Rule: if the manifest names the stage logs (``stage_logs``, relative to the report dir), use
    that folder.  Otherwise look for ``.../tensorboard_logs/<stage>`` runs inside the report's
    parent folder; when several ``tensorboard_logs`` folders qualify, take the one whose stage
    graph contains the most of the report's layer names (ties: the last in name order, which for
    ``logs_<timestamp>`` folders of the same day is the newest).  A manifest path that matches no
    stage run falls back to that rule, with a problem appended to ``problems``.
    Returns ``(stage_logs_rel, run)``.
    """
    by_folder = stage_runs_by_folder(runs)
    wanted: Optional[str] = None
    if mf.stage_logs(manifest) is not None:
        wanted = files.normpath_rel(report_rel, mf.stage_logs(manifest)).strip("/")
        if wanted not in by_folder and problems is not None:
            problems.append(Problem(
                "the manifest's stage_logs %r (%s from the logdir) matches no folder of MCT stage graphs in the "
                "logdir; the stage logs were looked for by name instead"
                % (mf.stage_logs(manifest)[:300], wanted[:300]),
                "Point TensorBoard at a folder that holds both the report dir and the mct.set_log_folder folder, "
                "or fix stage_logs in %s (relative to the report dir, ending in tensorboard_logs)."
                % mf.FILENAME))
    if not by_folder:
        return None, None
    candidates: List[str]
    if wanted is not None and wanted in by_folder:
        candidates = [wanted]
    else:
        parent = report_rel.rsplit("/", 1)[0] if "/" in report_rel else ""
        candidates = sorted(f for f in by_folder if not parent or f.startswith(parent + "/"))
    if not candidates:
        return None, None

    def stage_of(folder: str) -> Optional[str]:
        for st in STAGE_PREFERENCE:
            if st in by_folder[folder]:
                return by_folder[folder][st]
        return None

    if len(candidates) == 1:
        return candidates[0], stage_of(candidates[0])
    best, best_score = candidates[-1], -1
    names = set(layer_names)
    for folder in candidates:
        run = stage_of(folder)
        if run is None:
            continue
        try:
            nodes = parse_graph(source.graph(run), attrs=(), shapes=False)
        except ValueError:
            continue
        score = len(names & {n.name for n in nodes})
        if score >= best_score:
            best, best_score = folder, score
    return best, stage_of(best)


BITS_HINT = ("Keep MCT's mct_log.log in the folder mct.set_log_folder created (beside tensorboard_logs/; its line "
             "'Final weights bit-width configuration' holds the widths mixed precision chose), or write the report "
             "with tb_xquant_plugin.mct_run.xquant_report_with_manifest, which records every layer's bits. The "
             "mixed-precision judge needs the last layer's.")


def fill_weights_bits(source: EventSource, logdir: str, runs: List[str], stage_logs: Optional[str],
                      quant: Dict[str, QuantParams], manifest: Optional[dict]) -> Optional[Problem]:
    """Set ``weights_nbits`` of every layer with weights, from the first source that has it:

    1. the stage graph: a layer whose weights have a single bit-width candidate in the last stage
       logged before mixed precision (WEIGHTS_CANDIDATE_STAGES) -- that is its final width;
    2. MCT's log line ``Final weights bit-width configuration: [...]`` (mct_log.log beside the stage
       logs), one width per layer with several candidates, in MCT's topological order of the stage
       graph (see ``readers.graphs.stage_weights_candidates``); used only when it has exactly one
       width per such layer and each width is among that layer's candidates;
    3. the manifest's ``bit_widths.layers``.

    Returns a problem naming what is missing when a layer whose weights have several candidates (mixed
    precision) is left without bits."""
    candidates: Dict[str, List[int]] = {}
    configurable: List[str] = []
    log_note = ""
    if stage_logs:
        stages = stage_runs_by_folder(runs).get(stage_logs, {})
        for st in WEIGHTS_CANDIDATE_STAGES:
            if st in stages:
                try:
                    candidates, configurable = stage_weights_candidates(source.graph(stages[st]))
                except Exception:  # noqa: BLE001 - an unreadable stage: try an earlier one
                    continue
                if candidates:
                    break
        final_config = None
        if configurable:
            final_config, log_note = art.final_weights_config(join(logdir, *stage_logs.split("/")), logdir)
        if not assign_final_weights_bits(quant, candidates, configurable, final_config):
            if len(final_config or []) != len(configurable):
                log_note = ("%s has %d widths %s but the stage graph has %d layers with several candidates; it was "
                            "not used" % (art.MCT_LOG, len(final_config or []), final_config, len(configurable)))
            else:
                log_note = ("%s's widths %s are not all among the stage graph's candidates; it was not used"
                            % (art.MCT_LOG, final_config))
    for name, bits in mf.layer_bits(manifest).items():
        bits = bits["weights_nbits"]
        if bits is None:
            continue
        qp = quant.setdefault(name, QuantParams())
        if qp.weights_nbits is None:
            qp.weights_nbits, qp.weights_nbits_source = bits, "manifest"
    if not stage_logs:
        return None  # without stage logs another problem already says the bit widths are unknown
    # Stage logs without any stage from before mixed precision are not what MCT 2.6.1 writes (it logs
    # them all); they are read as they are, without a problem (bench/mct_format.py writes such logs).
    unknown = [n for n in candidates if quant[n].weights_nbits is None]
    if not unknown:
        return None
    why = ("the stage graphs list several mixed-precision candidates (e.g. %s: %s) and %s"
           % (unknown[0], candidates[unknown[0]], log_note or "MCT's log gives no final configuration"))
    return Problem("weights bit widths of %d layer%s are unknown (%s): %s"
                   % (len(unknown), "" if len(unknown) == 1 else "s", ", ".join(unknown[:5])
                      + (", ..." if len(unknown) > 5 else ""), why), BITS_HINT)


def key_by_quantized_graph(source: EventSource, runs: List[str], stage_logs: Optional[str],
                           stage_main: Optional[List[GraphNode]], nodes: List[GraphNode],
                           histograms: Dict[str, Any], quant: Dict[str, QuantParams],
                           problems: List[Problem]) -> mct_matching.Keyed:
    """:func:`mct_matching.key_by_quantized_graph` (``stage_main``: the main nodes of the stage graph,
    ``mct_stages.read_stage_graph``) with the node names of the latest stage logged before shift-negative
    correction (to recognise the nodes MCT inserted), and problems for what stays unpaired."""
    before = None
    stages = stage_runs_by_folder(runs).get(stage_logs, {}) if stage_logs else {}
    for st in mct_matching.BEFORE_INSERTION_STAGES:
        if st in stages:
            try:
                before = [n.name for n in parse_graph(source.graph(stages[st]), attrs=(), shapes=False)]
            except Exception:  # noqa: BLE001 - an unreadable stage: try an earlier one
                continue
            if before:
                break
            before = None
    keyed = mct_matching.key_by_quantized_graph(nodes, stage_main, histograms, quant, before, main_only=True)
    for n in nodes:
        if n.id in keyed.inserted:
            n.attrs = dict(n.attrs, inserted_by_mct=keyed.inserted[n.id])
    if keyed.unpaired:
        problems.append(Problem(
            "%d node%s of the quantized graph found no counterpart in MCT's stage graph (%s): no float histogram or "
            "quantization parameter is shown for %s" % (
                len(keyed.unpaired), "" if len(keyed.unpaired) == 1 else "s",
                ", ".join(keyed.unpaired[:5]) + (", ..." if len(keyed.unpaired) > 5 else ""),
                "it" if len(keyed.unpaired) == 1 else "them"),
            "Nodes are paired by op and by their already-paired neighbours, from the module nodes outwards; a node "
            "that only one of the two torch.fx traces has, or that nothing tells apart from a sibling, stays "
            "unpaired rather than getting another node's values."))
    if keyed.dropped:
        problems.append(Problem(
            "the float histograms of %d functional node%s (%s) are not used: without MCT's stage logs they cannot be "
            "paired with the quantized graph, whose torch.fx trace numbers functional nodes in another order"
            % (len(keyed.dropped), "" if len(keyed.dropped) == 1 else "s",
               ", ".join(keyed.dropped[:5]) + (", ..." if len(keyed.dropped) > 5 else "")),
            "Call mct.set_log_folder(...) before quantizing and keep its folder beside the report dir: its stage "
            "graphs let each node of the quantized graph be paired with its histogram by structure."))
    return keyed


def _read_json(path: str, label: str, root: str, problems: List[Problem]):
    """A JSON file, or None with the reason appended to ``problems``."""
    try:
        return files.read_json(path, label, root)
    except ReadError as e:
        problems.append(Problem(e.what, e.hint))
        return None


def _read_object(path: str, label: str, root: str, problems: List[Problem], hint: str) -> Optional[dict]:
    """A JSON object from disk, or None with the reason appended to ``problems``."""
    data = _read_json(path, label, root, problems)
    if data is not None and not isinstance(data, dict):
        problems.append(Problem("%s is not a JSON object; ignoring it" % label, hint))
        return None
    return data


class MCTFlavour:
    """What one framework's XQuant output does differently; the defaults are MCT 2.6.1 for PyTorch."""

    producer = "mct-pytorch-xquant"
    toolchain = MCT_PYTORCH
    # MCT's report functions, named in the problems' hints.
    report_function = "xquant_report_troubleshoot_pytorch_experimental (or xquant_report_pytorch_experimental)"
    troubleshoot_function: Optional[str] = "xquant_report_troubleshoot_pytorch_experimental"
    # Node attributes of the XQuant graph the flavour reads (``padding``: whether a convolution pads, which the
    # shift-negative judge needs).
    graph_attrs: Tuple[str, ...] = (XQUANT_REPR, XQUANT_VAL, "padding", "mode")  # "mode": an Upsample's (judges.concat)

    def folded(self, op: str) -> bool:
        """Whether the display drops the nodes of this op that have an input (read without their attributes)."""
        return op.startswith("fake_quant")  # readers.graphs.is_fake_quant: display_graph folds them

    def display(self, nodes_all: List[GraphNode]) -> Tuple[List[GraphNode], Dict[str, str]]:
        """The quantized graph as the user reads it, and ``{removed node id: the node it stood for}``."""
        return display_graph(main_nodes(nodes_all))

    def layer_name(self, node: GraphNode) -> str:
        """The report's layer name of a display node."""
        return layer_name_of(node)

    def layer_key_map(self, nodes_all: List[GraphNode]) -> Dict[str, str]:
        """``{quant_report.json layer key: report layer name}`` where the two differ."""
        return {}

    def metric_values(self, metrics: Dict[str, float]) -> Dict[str, float]:
        """One layer's (or the output's) metrics as the report shows them."""
        return metrics

    def finish(self, report: Report, quant_report: Optional[Dict[str, Any]], key_map: Dict[str, str]) -> None:
        """Last touches on the built report.  ``quant_report``: the file (``mct_files.normalise_quant_report``)
        with its keys and values as MCT wrote them; ``key_map``: :meth:`layer_key_map`'s answer."""


PYTORCH = MCTFlavour()


def build_report(source: EventSource, logdir: str, rel: str, report_dir: str,
                 runs: Optional[List[str]] = None, flavour: MCTFlavour = PYTORCH) -> Report:
    problems: List[Problem] = []
    runs = runs if runs is not None else source.runs()
    # A run of this report's folder holding an event file that must not be read (a FIFO, a link out of the logdir)
    # is not used at all: TensorBoard's loader reads such files, so its data provider could hand their content on.
    runs, refused_runs = events.drop_refused_runs(logdir, runs, rel.rsplit("/", 1)[0] if "/" in rel else "")
    for run, why in refused_runs[:5]:
        problems.append(Problem("the events of run %s were not used: %s" % (run[:300], why),
                                "Remove that entry, or put the event file itself (not a link) in the logdir."))

    manifest = _read_object(join(report_dir, mf.FILENAME), mf.FILENAME, logdir, problems,
                            "Re-run with tb_xquant_plugin.mct_run.xquant_report_with_manifest.")

    raw_qr = _read_json(join(report_dir, art.QUANT_REPORT), art.QUANT_REPORT, logdir, problems)
    mct_qr, qr_problems = art.normalise_quant_report(raw_qr) if raw_qr is not None else (None, [])
    problems.extend(qr_problems)

    # The XQuant graph of the quantized model.
    xrun = files.run_path(rel, art.XQUANT_RUN)
    nodes_all = []
    histograms = {}
    if xrun in runs:
        try:
            nodes_all = parse_graph(source.graph(xrun), attrs=flavour.graph_attrs, folded=flavour.folded)
        except ValueError as e:
            problems.append(Problem("the XQuant graph could not be read: %s" % e,
                                    "The event file may be truncated; re-run the XQuant report."))
        except Exception as e:  # noqa: BLE001
            problems.append(Problem("the XQuant graph could not be read: %s" % e, "Reload once the run has finished."))
        try:
            histograms = source.histograms(xrun)
        except Exception as e:  # noqa: BLE001
            problems.append(Problem("float histograms could not be read: %s" % e, "Reload once the run has finished."))
    if not nodes_all:
        problems.append(Problem(
            "no XQuant graph for this report (expected events with a graph in %s/xquant/)" % rel,
            "Run %s with XQuantConfig(report_dir=...) inside the logdir; it writes the graph there."
            % flavour.report_function))
    if not histograms and nodes_all:
        problems.append(Problem("no float activation histograms in %s/xquant/" % rel,
                                "They are written by the XQuant report; the outlier-removal judge needs them."))
    nodes, alias = flavour.display(nodes_all) if nodes_all else ([], {})
    key_map = flavour.layer_key_map(nodes_all) if nodes_all else {}
    qr = mct_qr
    if mct_qr is not None and (key_map or type(flavour).metric_values is not MCTFlavour.metric_values):
        qr = {"output": {ds: flavour.metric_values(dict(m)) for ds, m in mct_qr["output"].items()},
              "layers": {ds: {key_map.get(k, k): flavour.metric_values(dict(m)) for k, m in by_layer.items()}
                         for ds, by_layer in mct_qr["layers"].items()}}

    # Layers and metrics: quant_report.json first, graph attributes as a fallback.
    graph_metrics: Dict[str, Dict[str, Dict[str, float]]] = {}
    layer_node: Dict[str, Tuple[str, str]] = {}
    for n in nodes:
        lname = flavour.layer_name(n)
        r = n.attrs.get(XQUANT_REPR)
        v = n.attrs.get(XQUANT_VAL)
        if isinstance(r, str) or isinstance(v, str):
            graph_metrics[lname] = {"repr": flavour.metric_values(parse_metric_dict(r or "")),
                                    "val": flavour.metric_values(parse_metric_dict(v or ""))}
            layer_node[lname] = (n.id, n.op)
    for n in nodes:
        layer_node.setdefault(flavour.layer_name(n), (n.id, n.op))

    layers: List[Layer] = []
    output_metrics = {"repr": {}, "val": {}}
    if qr is not None and (qr["layers"]["repr"] or qr["layers"]["val"]):
        names = list(qr["layers"]["repr"].keys())
        names += [k for k in qr["layers"]["val"].keys() if k not in qr["layers"]["repr"]]
        for i, name in enumerate(names):
            metrics = {ds: dict(qr["layers"][ds].get(name, {})) for ds in ("repr", "val")}
            nid, op = layer_node.get(name, (None, None))
            layers.append(Layer(name, i, metrics, nid, op))
        output_metrics = qr["output"]
    elif graph_metrics:
        for i, (name, metrics) in enumerate(graph_metrics.items()):
            nid, op = layer_node[name]
            layers.append(Layer(name, i, metrics, nid, op))
        problems.append(Problem("no quant_report.json; per-layer metrics were taken from the graph's node attributes "
                                "and output metrics are unknown",
                                "XQuant writes quant_report.json into report_dir; copy it next to the xquant/ folder."))
    elif raw_qr is None:
        problems.append(Problem("no per-layer metrics: quant_report.json is missing and the graph carries none",
                                "Run the XQuant report; it writes quant_report.json into XQuantConfig.report_dir."))

    metrics: List[str] = []
    for src in (output_metrics.get("repr", {}),):
        for m in src:
            if m not in metrics:
                metrics.append(m)
    for l in layers:
        for ds in ("repr", "val"):
            for m in l.metrics.get(ds, {}):
                if m not in metrics:
                    metrics.append(m)
    nan_layers = [l.name for l in layers for ds in ("repr", "val") for v in l.metrics.get(ds, {}).values()
                  if isinstance(v, float) and math.isnan(v)]
    if nan_layers:
        problems.append(Problem("%d metric values are NaN or not numbers (e.g. layer %s); they never count as degraded"
                                % (len(nan_layers), nan_layers[0]),
                                "A NaN usually means the float output of that layer is all zeros (cs/sqnr undefined)."))

    # Stage logs: quantization parameters.
    stage_logs, stage_run = find_stage_runs(runs, rel, manifest, [l.name for l in layers], source, problems)
    quant: Dict[str, QuantParams] = {}
    stage_read = None
    if stage_run:
        try:
            stage_read = read_stage_graph(source.graph(stage_run))
            quant = stage_read.quant
        except ValueError as e:
            problems.append(Problem("the MCT stage graph %s could not be read: %s" % (stage_run, e),
                                    "Re-run quantization after mct.set_log_folder(...)."))
    bits_problem = fill_weights_bits(source, logdir, runs, stage_logs if stage_run else None, quant, manifest)
    if bits_problem:
        problems.append(bits_problem)
    # The histograms and quantization parameters keyed by the quantized graph's names (producers.mct_matching).
    keyed = None
    if flavour.toolchain == MCT_PYTORCH and nodes:
        keyed = key_by_quantized_graph(source, runs, stage_logs if stage_read and stage_read.size else None,
                                       stage_read.main if stage_read else None, nodes, histograms, quant, problems)
    if not stage_run:
        problems.append(Problem("no MCT stage logs found for this report; bit widths and activation thresholds are unknown "
                                "and the unbalanced-concatenation judge can only use histograms",
                                "Call mct.set_log_folder('<logdir>/<run>/mct_logs') before quantizing, and keep the "
                                "report dir in the same folder (or record the path with xquant_report_with_manifest)."))

    ts = _read_object(join(report_dir, art.TROUBLESHOOT_REPORT), art.TROUBLESHOOT_REPORT, logdir, problems,
                      "Re-run %s." % (flavour.troubleshoot_function or flavour.report_function))

    defaults, refused = Thresholds.from_config(mf.xquant_config(manifest))
    if refused:
        problems.append(Problem("%s: %d threshold value%s refused and MCT's default used instead: %s"
                                % (mf.FILENAME, len(refused), "" if len(refused) == 1 else "s", "; ".join(refused[:3])),
                                "Fix xquant_config in %s (finite numbers; bit widths whole numbers in 1..32)."
                                % mf.FILENAME))
    stage_folder = join(logdir, *stage_run.rsplit("/", 1)[0].split("/")) if stage_run and "/" in stage_run else None
    report = Report(
        id=report_id(rel),
        rel=rel,
        dir=report_dir,
        manifest=manifest,
        defaults=defaults,
        metrics=metrics,
        layers=layers,
        output_metrics=output_metrics,
        nodes=nodes,
        node_alias=alias,
        histograms=keyed.histograms if keyed else histograms,
        quant=keyed.quant if keyed else quant,
        stage_run=stage_run,
        mct_troubleshoot=ts,
        artifacts=art.list_artifacts(report_dir, logdir),
        problems=problems,
        has_quant_report=raw_qr is not None,
        has_graph=bool(nodes),
        producer=flavour.producer,
        toolchain=flavour.toolchain,
        supplies=frozenset(s for s, present in (
            (GRAPH, bool(nodes)), (LAYER_METRICS, bool(layers)), (HISTOGRAMS, bool(histograms)),
            (QUANT_PARAMS, bool(quant)), (BIT_WIDTHS, any(q.weights_nbits is not None for q in quant.values())),
            (PRODUCER_VERDICTS, ts is not None), (STAGE_GRAPHS, stage_folder is not None)) if present),
        stage_graph_loader=(lambda stage: load_stage_graph(stage_folder, stage, logdir)) if stage_folder else None,
        mct_names=keyed.mct_names if keyed else {},
        mct_histograms=histograms,
        mct_quant=quant,
        inserted_by_mct=keyed.inserted if keyed else {},
    )
    report.last_layer = last_layer_bits(report)
    if ts is not None:
        report.producer_verdicts, verdict_problems = mct_verdicts.load(report)
        report.problems.extend(verdict_problems)
    if stage_run and not bits_problem:
        last = report.last_layer
        if last is not None and last.weights_nbits is None and last.activation_nbits is None:
            report.problems.append(Problem(
                "the bit widths of the last layer %s are unknown, so the mixed-precision judge cannot check it "
                "(neither the stage graph nor a manifest has bits for it)" % last.layer[:200], BITS_HINT))
    check_against_mct_log(report, logdir, bool(nodes_all), bool(stage_run))
    flavour.finish(report, mct_qr, key_map)
    return report


def check_against_mct_log(report: Report, logdir: str, has_graph: bool, has_stage_logs: bool) -> None:
    """Problems from MCT's own log of the XQuant run (``producers.mct_log``): a run that stopped before its graph,
    and thresholds in effect that do not reproduce the degraded layers MCT logged."""
    xlog = mct_log.read_xquant_log(report.dir, logdir)
    label = files.rel_path(logdir, xlog.path) if xlog is not None else ""
    if not has_graph and not report.layers and (report.histograms or has_stage_logs or xlog is not None):
        generic = ("no XQuant graph for this report", "no per-layer metrics")
        report.problems[:] = [mct_log.crashed_run_problem(report.rel, xlog, bool(report.histograms), has_stage_logs,
                                                          mf.xquant_error(report.manifest))] + [
            p for p in report.problems if not p.what.startswith(generic)]
        return
    if report.mct_troubleshoot is not None:  # the troubleshooting variant ran MCT's detection and logged it
        problem = mct_log.threshold_check(xlog, report.layers, report.metrics, report.defaults, label)
        if problem is not None:
            report.problems.append(problem)


def last_layer_bits(report: Report) -> Optional[LastLayer]:
    """The layer MCT's mixed-precision judge inspects and its weights / activation bit widths.

    MCT 2.6.1 (``judge_mixed_precision_with_model_output_loss_objective``) looks at the quantized model's last
    two child modules: the weights quantizer of the last layer and the activation holder after it.
    ``xquant_report_with_manifest`` records exactly those two widths.  Without them, the last layer is the
    node of the quantized graph that feeds no other, with its bits from the quantization parameters."""
    last = mf.last_layer(report.manifest)
    if last is not None:
        name, source, w, a = last["name"], "manifest", last["weights_nbits"], last["activation_nbits"]
    else:
        consumers = {i for n in report.nodes for i in n.inputs}
        sinks = [n for n in report.nodes if n.id not in consumers]
        if not sinks:
            return None
        name, source, w, a = layer_name_of(sinks[-1]), "graph", None, None
    qp = report.quant.get(name)
    w_from = "manifest" if w is not None else None
    if w is None and qp is not None and qp.weights_nbits is not None:
        w, w_from = qp.weights_nbits, qp.weights_nbits_source
    if a is None and qp is not None:
        a = qp.activation_nbits
    return LastLayer(name, w, a, source, w_from)


def load_stage_graph(stage_folder: str, stage: str, root: str) -> StageGraph:
    """The graph MCT logged for one stage: the last graph of the stage's first event file (what MCT's own
    troubleshooting opens with an EventAccumulator), or None and why."""
    paths = events.event_files(join(stage_folder, stage), root)
    if not paths:
        return None, "the stage logs have no %s stage" % stage
    try:
        nodes = parse_graph(events.last_graph_in_file(paths[0], root), attrs=(), shapes=False)
    except Exception as e:  # noqa: BLE001 - truncated or foreign files
        return None, "the %s stage graph could not be read: %s" % (stage, e)
    if not nodes:
        return None, "the %s stage log holds no graph" % stage
    return nodes, None


