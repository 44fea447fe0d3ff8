// GENERATED from tb_xquant_plugin/api/contract.py -- do not edit. Regenerate with:
//   scripts/gen_contract.sh
// tests/test_contract.py fails when this file and the contract differ.

/** A number; JSON has no NaN or infinities, so those arrive as strings (decode with api.ts's num()). */
export type Num = number | 'NaN' | 'Infinity' | '-Infinity' | null;

export interface Accuracy {
  float?: Num;
  quantized?: Num;
  dataset?: unknown;
  [key: string]: unknown;
}
export interface LayerBits {
  /** attribute (weight) -> bits */
  weights?: Record<string, unknown>;
  activation?: unknown;
  [key: string]: unknown;
}
export interface BitWidths {
  layers?: Record<string, LayerBits>;
  last_layer?: unknown;
  [key: string]: unknown;
}
export interface Manifest {
  schema?: unknown;
  model_name?: string | null;
  created?: unknown;
  xquant_config?: Record<string, unknown>;
  custom_metrics?: unknown[];
  stage_logs?: string | null;
  troubleshoot?: unknown;
  versions?: Record<string, unknown>;
  accuracy?: Accuracy | null;
  bit_widths?: BitWidths | null;
  extra?: Record<string, unknown>;
  [key: string]: unknown;
}
export interface Problem {
  /** what is wrong with the report */
  what: string;
  /** how to fix it */
  hint: string;
}
export interface ReportRef {
  /** stable id from the report's path (use it in the other routes) */
  id: string;
  name: string;
  /** the report dir relative to the logdir */
  path: string;
  model_name: string | null;
  has_quant_report: boolean;
  has_troubleshoot_report: boolean;
  has_graph: boolean;
  has_histograms: boolean;
  /** the MCT stage-log folder used, relative to the logdir */
  stage_logs: string | null;
  layer_count: number;
  manifest: Manifest | null;
  problems: Problem[];
}
export interface ReportsResponse {
  logdir: string;
  reports: ReportRef[];
  /** only when no report was found: how to make one */
  hint?: string;
}
export interface Thresholds {
  /** threshold_quantize_error per metric */
  quantize_error: Record<string, Num>;
  /** is_detect_under_threshold_quantize_error per metric */
  detect_under: Record<string, boolean>;
  degrade_layer_ratio: Num;
  zscore_outlier_removal: Num;
  ratio_unbalanced_concatenation: Num;
  bitwidth_mixed_precision_with_model_output_loss_objective: Num;
}
export interface VerdictGroup {
  judge: string;
  source: 'computed' | 'mct';
  /** the judge's finding, when it names one (`numbers.finding`: outlier_removal e.g. real_outlier_tail / normal_tail, shift_negative_activation e.g. shift_helps / small_share / clip_trade); else null */
  cause: string | null;
  /** the kind of its countermeasure (quantization_config, bit_width, layer_activation, model_change, onnx_option...); null for verdicts without one */
  advice: string | null;
  /** verdicts in the group */
  count: number;
  /** the first few layers its verdicts name (at most 8), in verdict order */
  layers: string[];
  /** distinct layers its verdicts name */
  layer_count: number;
  manual: string | null;
  /** the first verdict's message */
  message: string;
}
export interface Verdict {
  /** outlier_removal, shift_negative_activation, unbalanced_concatenation, mixed_precision_with_model_output_loss_objective or general */
  judge: string;
  /** computed from the logs, or MCT's own troubleshoot_report.json */
  source: 'computed' | 'mct';
  /** the report's layer or node names it is about */
  layers: string[];
  /** the numbers that justify it (per judge; docs/api.md) */
  numbers: Record<string, unknown>;
  /** the manual entry id (GET manual?id=) */
  manual: string | null;
  message: string;
  /** Python to paste (MCT 2.6.1), or null */
  snippet: string | null;
  /** what to change as data (docs/api.md, Countermeasures): the snippet is rendered from it */
  countermeasure: Record<string, unknown> | null;
}
export interface JoinInput {
  name: string;
  node: string;
  range: Num[];
  width: Num;
  /** where the range was read */
  from: 'histogram' | 'threshold';
  /** the layer of the module that produced this input (itself when it is one), null when a join or a fork is in the way */
  module?: string | null;
}
export interface ConcatCheck {
  node: string;
  node_id: string;
  op: string;
  kind: 'concatenation' | 'add';
  inputs: JoinInput[];
  /** inputs without a value range */
  unmeasured: string[];
  /** widest / narrowest input range, null when fewer than two are measured */
  ratio: Num;
  scale: Num;
  scale_input: string | null;
  wide_input: string | null;
  /** ratio >= threshold_ratio_unbalanced_concatenation */
  flagged?: boolean;
}
export interface ConcatSummary {
  joins: number;
  measured: number;
  flagged: number;
  threshold: Num;
  widest: ConcatCheck[];
}
export interface MctRule {
  available: boolean | null;
  problem: string | null;
  error: string | null;
  module_paths?: string;
}
export interface MctPair {
  layer: string | null;
  rule: string | null;
  first: string;
  second: string;
  kind: string;
  ratio: Num;
  ratio_from: string | null;
  in_troubleshoot_report: boolean | null;
  flagged: boolean | null;
  join: string | null;
  relation: string | null;
}
export interface AgreementItem {
  status: 'agree' | 'mct_only' | 'graph_only';
  join: string | null;
  mct_pair: string[] | null;
  mct_ratio: Num;
  graph_ratio: Num;
  threshold: Num;
  reason: string;
}
export interface ConcatAgreement {
  threshold?: Num;
  mct_source?: 'troubleshoot_report' | 'name_heuristic' | null;
  mct_rule?: MctRule;
  mct_pairs?: MctPair[];
  items?: AgreementItem[];
  counts?: Record<string, number>;
}
export interface Artifact {
  id: string;
  kind: 'similarity_chart' | 'outlier_histogram' | 'other';
  name: string;
  metric: string | null;
  dataset: string | null;
  layer: string | null;
}
export interface ReportSummary {
  id: string;
  name: string;
  model_name: string | null;
  /** the thresholds of this analysis (manifest, then MCT's defaults, then the query) */
  thresholds: Thresholds;
  metrics: string[];
  /** dataset (repr / val) -> metric -> value at the output */
  output_metrics: Record<string, Record<string, Num>>;
  layer_count: number;
  /** in MCT's order */
  degraded_layers: string[];
  degraded_ratio: Num;
  /** degraded ratio at or over threshold_degrade_layer_ratio */
  judges_skipped: boolean;
  metrics_without_threshold: string[];
  /** computed verdicts and MCT's own (every one: GET verdicts; per layer: GET layer) */
  verdict_count: number;
  /** the verdicts grouped by judge, source, cause and advice, in the order of their first verdict (computed, then MCT's own) */
  verdict_groups: VerdictGroup[];
  /** the general troubleshoots that apply */
  general: Verdict[];
  concat_summary: ConcatSummary;
  concat_agreement: ConcatAgreement;
  artifacts: Artifact[];
  manifest: Manifest | null;
  /** the manifest's float / quantized accuracy */
  accuracy: Accuracy | null;
  problems: Problem[];
}
export interface Worst {
  metric: string;
  dataset: string;
  value: Num;
  /** how far past its threshold (>= 1 is degraded), comparable across metrics */
  severity: Num;
}
export interface GraphNode {
  id: string;
  name: string;
  op: string | null;
  /** module scope recovered from the torch.fx name (blocks/3/conv) */
  group: string | null;
  inputs: string[];
  output_shape: unknown;
  /** the XQuant layer this node is, if any */
  layer: string | null;
  degraded: boolean;
  worst: Worst | null;
  judges: string[];
}
export interface GraphResponse {
  nodes: GraphNode[];
  problems: Problem[];
}
export interface LayerRow {
  name: string;
  node: string | null;
  op: string | null;
  index: number;
  repr: Record<string, Num>;
  val: Record<string, Num>;
  /** "metric.dataset" -> degraded by it */
  flags: Record<string, boolean>;
  degraded: boolean;
  worst: Worst | null;
  judges: string[];
  [key: string]: unknown;
}
export interface VerdictNode {
  name: string;
  node: string | null;
  op: string | null;
  judges: string[];
}
export interface LayersResponse {
  metrics: string[];
  datasets: string[];
  layers: LayerRow[];
  /** graph nodes a verdict names that are not compare points */
  verdict_nodes: VerdictNode[];
  thresholds: Thresholds;
}
export interface VerdictsResponse {
  verdicts: Verdict[];
  general: Verdict[];
  judges_skipped: boolean;
  /** every concatenation / add with its measured input ranges */
  concat_checks: ConcatCheck[];
  concat_agreement: ConcatAgreement;
}
export interface QuantParams {
  activation_nbits: number | null;
  activation_threshold: Num;
  /** [min, max] of the quantized grid (QDQ ONNX models) */
  activation_range: Num[] | null;
  signed: boolean | null;
  quant_mode: string | null;
  z_threshold: Num;
  shift_negative_activation_correction: boolean | null;
  shift_negative_ratio: Num;
  activation_error_method: string | null;
  weights_bias_correction: boolean | null;
  op: string | null;
  weights_nbits: number | null;
  /** stage graph, mct log or manifest */
  weights_nbits_source: string | null;
  weights_nbits_candidates: number[] | null;
  /** the manifest's activation bits of the quantized model */
  activation_nbits_final?: number;
}
export interface Histogram {
  /** [left, right, count], at most 512 (neighbours merged beyond) */
  buckets: Num[][];
  bins: Num[];
  counts: Num[];
  mu: Num;
  sigma: Num;
  zscore: Num[];
  max_zscore: Num;
  suggested_z_threshold: Num;
  /** the z threshold of this analysis */
  z_threshold: Num;
  /** the logged histogram had more buckets than are sent */
  downsampled: boolean;
}
export interface LayerDetail {
  name: string;
  node: string | null;
  op: string | null;
  output_shape: unknown;
  /** false for a graph node that is not an XQuant compare point */
  is_layer: boolean;
  repr: Record<string, Num>;
  val: Record<string, Num>;
  flags: Record<string, boolean>;
  degraded: boolean;
  worst: Worst | null;
  thresholds: Thresholds;
  quant: QuantParams | null;
  histogram: Histogram | null;
  verdicts: Verdict[];
  [key: string]: unknown;
}
export interface CompareLayer {
  name: string;
  status: 'improved' | 'worse' | 'unchanged' | 'only_a' | 'only_b';
  a: Record<string, Record<string, Num>> | null;
  b: Record<string, Record<string, Num>> | null;
  /** "metric.dataset" -> b - a */
  delta: Record<string, Num>;
  degraded_a: boolean;
  degraded_b: boolean;
  /** the layer's name in A (null: only in B) */
  name_a: string | null;
  /** the layer's name in B (null: only in A); `name` is B's name when there is one */
  name_b: string | null;
  /** the module key the two layers paired by (null when paired by name) */
  key: string | null;
}
export interface CompareAccuracy {
  a: Accuracy | null;
  b: Accuracy | null;
}
export interface SettingChange {
  param: string;
  a: unknown;
  b: unknown;
  source: 'stage graph' | 'manifest';
  layers: number;
  examples: string[];
}
export interface OutputChange {
  a: Num;
  b: Num;
  better: boolean | null;
}
export interface Improved {
  degraded_layers: boolean;
  output_metrics: boolean;
  accuracy: boolean;
}
export interface Countermeasure {
  /** B's manifest extra.countermeasure */
  declared: Record<string, unknown> | null;
  changes: SettingChange[];
  applied: boolean;
  degraded_a: number;
  degraded_b: number;
  output_dataset: string;
  output_metrics: Record<string, OutputChange>;
  accuracy_a: Num;
  accuracy_b: Num;
  improved: Improved;
  did_not_improve: boolean;
  reason: string;
}
export interface ComparePairing {
  /** by name (same toolchain family), by module key (MCT vs ONNX) */
  method: 'name' | 'module key';
  paired: number;
  /** A's layers with no partner in B (at most 50) */
  only_a: string[];
  /** B's layers with no partner in A (at most 50) */
  only_b: string[];
  /** what the pairs compare when the toolchains differ */
  notes: string[];
}
export interface CompareResponse {
  a: string;
  b: string;
  a_name: string;
  b_name: string;
  metrics: string[];
  layers: CompareLayer[];
  summary: Record<string, number>;
  output_delta_val: Record<string, Num>;
  accuracy: CompareAccuracy;
  countermeasure: Countermeasure;
  general: Verdict[];
  thresholds: Thresholds;
  pairing: ComparePairing;
}
export interface ReplayResponse {
  layer: string;
  /** the z asked for (clip_z) */
  z: Num;
  /** mu - z sigma, mu + z sigma: where the z window ends on the value axis */
  clip: Num[];
  max_zscore: Num;
  /** the outlier judge's replay at z (the numbers of an outlier verdict's `replay`: finding, thresholds or ranges, noise with and without, body SQNR) */
  replay: Record<string, unknown> | null;
  /** the finding as a sentence */
  text: string;
}
export interface ManualRef {
  id: string;
  title: string;
  kind: 'judgeable' | 'general';
  judge: string | null;
}
export interface ManualList {
  entries: ManualRef[];
}
export interface ManualEntry {
  id: string;
  title: string;
  kind: 'judgeable' | 'general';
  judge: string | null;
  markdown: string;
  html: string;
  snippets: string[];
}
export interface StudyRef {
  /** stable id from the study folder's path (use it in GET study) */
  id: string;
  /** the study folder relative to the logdir */
  name: string;
  model_name: string | null;
  /** running, done or failed, as study.json says (empty when it could not be read) */
  status: string;
  /** attempts recorded, the baseline included */
  attempts: number;
  /** the best attempt's id */
  best: string | null;
  /** why study.json could not be read */
  problems: Problem[];
}
export interface StudiesResponse {
  logdir: string;
  studies: StudyRef[];
  /** only when no study was found: how to make one */
  hint?: string;
}
export interface AttemptVerdict {
  judge?: string | null;
  layers?: string[];
  message?: string | null;
}
export interface StudyAttempt {
  id: string;
  /** the countermeasure in a few words (baseline for the baseline) */
  label: string;
  /** baseline, verdict (a verdict's countermeasure), combined (the helpful ones together) or general (a general troubleshoot) */
  source: string;
  /** ok, failed or running */
  status: string;
  /** why a failed attempt failed */
  error: string | null;
  dir: string | null;
  /** its report folder, relative to the study folder */
  report: string | null;
  /** that report's id in GET reports; null when it is not listed or lies outside the study folder */
  report_id: string | null;
  parent: string | null;
  /** what the attempt changed, as data (null for the baseline) */
  countermeasure: Record<string, unknown> | null;
  /** the verdict that proposed it */
  verdict: AttemptVerdict | null;
  /** quantized accuracy (the study's evaluate), null when unknown */
  accuracy: Num;
  float_accuracy: Num;
  /** model-output SQNR on the validation set */
  output_sqnr: Num;
  output_mse: Num;
  degraded_count: number | null;
  /** the degraded layers */
  degraded: string[];
  /** seconds the attempt took (quantization and report) */
  time_s: Num;
  /** peak resident memory of the study's process after it, MB */
  peak_rss_mb: Num;
  /** bytes of the quantized weights at their bit widths */
  size_bytes: Num;
  /** better than the baseline (fewer degraded layers, higher output SQNR or accuracy) without losing accuracy; null for the baseline */
  helped: boolean | null;
}
export interface StudyResponse {
  id: string;
  /** the study folder relative to the logdir */
  name: string;
  model_name: string | null;
  toolchain: string | null;
  created: string | null;
  status: string;
  /** the budget that stopped it (max_attempts, time_budget_s), or why it failed */
  stopped_by: string | null;
  elapsed_s: Num;
  /** the baseline attempt's id */
  baseline: string | null;
  /** the best attempt's id: of those that helped, the highest accuracy (else output SQNR), then the fewest degraded; the baseline when none helped */
  best: string | null;
  /** the baseline first, in the order they ran */
  attempts: StudyAttempt[];
  winning_countermeasure: Record<string, unknown> | null;
  /** Python to paste: the best attempt's configuration, when it helped */
  winning_snippet: string | null;
  /** the general troubleshoots the study tried when no countermeasure helped */
  general_path: string[];
  float_model_untouched: boolean | null;
  /** attempts whose report is not listed */
  problems: Problem[];
}
export interface CliReport {
  name: string;
  id: string;
  model_name: string | null;
  layer_count: number;
  degraded_layers: string[];
  degraded_ratio: Num;
  judges_skipped: boolean;
  thresholds: Thresholds;
  output_metrics: Record<string, Record<string, Num>>;
  /** the verdicts, then the general troubleshoots */
  verdicts: Verdict[];
  concat_checks: ConcatCheck[];
  concat_agreement: ConcatAgreement;
  accuracy: Accuracy | null;
  problems: Problem[];
}
export interface ErrorAnswer {
  /** what was wrong with the request (4xx) or why it could not be answered (503) */
  error: string;
  hint: string;
}
