// Typed client for the tb-xquant backend (docs/api.md). All URLs are relative to this module,
// which TensorBoard serves at <tb>/data/plugin/xquant/static/index.js, so they keep working under
// --path_prefix and inside the plugin iframe.

export type Num = number | string | null | undefined;

export interface Problem { what: string; hint: string }
export interface ReportRef {
  id: string; name: string; path: string;
  has_quant_report: boolean; has_troubleshoot_report: boolean; has_graph: boolean; has_histograms: boolean;
  stage_logs?: string | null; manifest?: unknown; problems?: Problem[];
}
export interface ReportsResponse { logdir: string; reports: ReportRef[]; problems?: Problem[] }

export interface Verdict {
  judge: string; source: string; layers: string[]; numbers: Record<string, unknown>;
  manual: string | null; message: string; snippet: string | null;
}
export interface Thresholds {
  quantize_error: Record<string, Num>; detect_under: Record<string, boolean>;
  degrade_layer_ratio: Num; zscore_outlier_removal: Num; ratio_unbalanced_concatenation: Num;
  bitwidth_mixed_precision_with_model_output_loss_objective: Num;
}
export interface Artifact { id: string; kind: string; name: string; metric?: string | null; dataset?: string | null; layer?: string | null }
export interface Worst { metric: string; dataset: string; value: Num }
export interface ReportSummary {
  id: string; name: string; thresholds: Thresholds; metrics: string[];
  output_metrics: Record<string, Record<string, Num>>;
  layer_count: number; degraded_layers: string[]; degraded_ratio: Num; judges_skipped: boolean;
  verdicts: Verdict[]; general: Verdict[]; artifacts: Artifact[]; manifest?: unknown; problems?: Problem[];
  /** counts of the measured concatenation / add joins and the widest few; every join is in GET verdicts */
  concat_summary?: {joins: number; measured: number; flagged: number; threshold: Num; widest: ConcatCheck[]};
}
export interface VerdictsResponse { verdicts: Verdict[]; general: Verdict[]; judges_skipped: boolean; concat_checks?: ConcatCheck[] }
export interface ConcatCheck {
  node: string; node_id?: string | null; op?: string | null; kind?: string | null;
  inputs: {name: string; node?: string; range: Num[]; width?: Num; from?: string}[];
  unmeasured?: string[]; ratio: Num; flagged?: boolean; scale?: Num; scale_input?: string | null; wide_input?: string | null;
}
export interface GraphNode {
  id: string; name: string; op: string | null; group: string | null; inputs: string[];
  output_shape?: unknown; layer: string | null; degraded: boolean; worst: Worst | null; judges: string[];
}
export interface GraphResponse { nodes: GraphNode[]; problems?: Problem[] }
export interface LayerRow {
  name: string; node: string | null; op: string | null; index: number;
  repr?: Record<string, Num>; val?: Record<string, Num>; [dataset: string]: unknown;
  flags: Record<string, boolean>; degraded: boolean; worst: Worst | null; judges: string[];
}
export interface LayersResponse { metrics: string[]; datasets: string[]; layers: LayerRow[]; problems?: Problem[] }
export interface Histogram {
  bins: Num[]; counts: Num[]; mu: Num; sigma: Num; zscore?: Num[]; max_zscore?: Num; suggested_z_threshold?: Num;
}
export interface LayerDetail {
  name: string; node: string | null; op: string | null; output_shape?: unknown;
  repr?: Record<string, Num>; val?: Record<string, Num>; flags: Record<string, boolean>; degraded: boolean;
  quant: Record<string, unknown> | null; histogram: Histogram | null; verdicts: Verdict[];
  [k: string]: unknown;
}
export interface CompareLayer {
  name: string; a?: Record<string, Record<string, Num>> | null; b?: Record<string, Record<string, Num>> | null;
  delta: Record<string, Num>; status: string; degraded_a: boolean; degraded_b: boolean;
}
export interface CompareResponse {
  a: string; b: string; metrics: string[]; layers: CompareLayer[];
  summary: Record<string, number>; general: Verdict[]; problems?: Problem[];
  thresholds?: Thresholds;
}
export interface ManualEntry { id: string; title: string; kind: string; judge: string | null; markdown?: string; html?: string; snippets?: string[] }

/** Base URL of the plugin routes: <tb>/data/plugin/xquant/ */
export const base = new URL('../', import.meta.url);

export function routeUrl(route: string, params: Record<string, string | number | undefined | null> = {}): string {
  const u = new URL(route, base);
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== '') u.searchParams.set(k, String(v));
  }
  return u.toString();
}

export class ApiError extends Error {
  constructor(public status: number, message: string, public hint: string, public route: string) { super(message); }
}

export async function getJson<T>(route: string, params: Record<string, string | number | undefined | null> = {}, signal?: AbortSignal): Promise<T> {
  const url = routeUrl(route, params);
  let resp: Response;
  try {
    resp = await fetch(url, {signal, headers: {Accept: 'application/json'}});
  } catch (e) {
    if ((e as Error).name === 'AbortError') throw e;
    throw new ApiError(0, `Cannot reach TensorBoard (${(e as Error).message})`, 'Is the tensorboard process still running?', route);
  }
  const text = await resp.text();
  let body: any = null;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  if (!resp.ok || body === null) {
    const msg = body && typeof body.error === 'string' ? body.error : `HTTP ${resp.status} for ${route}`;
    const hint = body && typeof body.hint === 'string' ? body.hint :
      resp.status === 404 ? 'Is the tb-xquant plugin installed in the Python environment running tensorboard (pip install tb-xquant)?' : '';
    throw new ApiError(resp.status, msg, hint, route);
  }
  return body as T;
}

/** Decode a JSON number that may be encoded as "NaN" / "Infinity" / "-Infinity". */
export function num(v: unknown): number {
  if (typeof v === 'number') return v;
  if (v === 'NaN') return NaN;
  if (v === 'Infinity' || v === 'inf') return Infinity;
  if (v === '-Infinity' || v === '-inf') return -Infinity;
  if (typeof v === 'string' && v.trim() !== '' && !isNaN(Number(v))) return Number(v);
  return NaN;
}

export function fmt(v: unknown, digits = 4): string {
  if (v === null || v === undefined) return '—';
  const n = num(v);
  if (Number.isNaN(n)) return typeof v === 'string' && v !== 'NaN' ? v : 'NaN';
  if (!Number.isFinite(n)) return n > 0 ? '∞' : '−∞';
  if (n === 0) return '0';
  const a = Math.abs(n);
  if (a >= 1e5 || a < 1e-3) return n.toExponential(2);
  if (Number.isInteger(n)) return String(n);
  return String(Number(n.toPrecision(digits)));
}
