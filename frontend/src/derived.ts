// What the panel computes itself from the backend's answers instead of reading it from them. Each function here is a
// candidate for a field the backend could send; none is needed by more than the module named in its comment.
import type {CompareLayer, ConcatCheck, LayerDetail, ReportSummary, Thresholds} from './api';
import {num} from './api';

/** How far past its threshold a value is (>= 1 means degraded), comparable across metrics.
 *  The one client-side copy of the backend's detection.severity() (tb_xquant_plugin/judges/detection.py); keep the
 *  two in step. Used only by worstKey() below. */
export function severity(v: number, thr: number, under: boolean): number {
  if (!Number.isFinite(thr) || Number.isNaN(v)) return 0;
  const eps = 1e-12;
  if (under) return v > 0 ? (Math.abs(thr) + eps) / (Math.abs(v) + eps) : (v <= thr ? Infinity : 0);
  return (Math.abs(v) + eps) / (Math.abs(thr) + eps);
}

/** "metric.dataset" → [metric, dataset] (the metric may itself contain dots). */
export function splitKey(key: string): [string, string] {
  const i = key.lastIndexOf('.');
  return i < 0 ? [key, ''] : [key.slice(0, i), key.slice(i + 1)];
}

/** A compare row's value of "metric.dataset" in report A or B. */
export function compareValue(l: CompareLayer, which: 'a' | 'b', key: string): number {
  const [metric, ds] = splitKey(key);
  return num(l[which]?.[ds]?.[metric]);
}

/** compare.ts: the metric whose delta a compare badge shows: the one furthest past its threshold in A or in B (the
 *  layer's worst metric before or after), else the one that changed most relative to A. The backend could send it
 *  per row of `GET compare`. */
export function worstKey(l: CompareLayer, th: Thresholds | null): string | null {
  const keys = Object.keys(l.delta ?? {}).filter((k) => Number.isFinite(num(l.delta[k])));
  if (!keys.length) return null;
  let best: string | null = null, bs = 0;
  for (const k of keys) {
    const [metric] = splitKey(k);
    const thr = num(th?.quantize_error?.[metric]);
    const under = !!th?.detect_under?.[metric];
    const s = Math.max(severity(compareValue(l, 'a', k), thr, under), severity(compareValue(l, 'b', k), thr, under));
    if (s > bs) { bs = s; best = k; }
  }
  if (best) return best;
  let rel = -1;
  for (const k of keys) {
    const r = Math.abs(num(l.delta[k])) / (Math.abs(compareValue(l, 'a', k)) + 1e-12);
    if (r > rel) { rel = r; best = k; }
  }
  return best;
}

/** app/summary.ts: float and quantized accuracy in percent and the drop in points, or null when the report has no
 *  usable accuracy. Values <= 1 are taken as fractions. The backend could send these numbers in `GET report`. */
export function accuracyChange(s: ReportSummary): {float: number; quantized: number; drop: number; dataset: unknown} | null {
  const acc = s.accuracy ?? s.manifest?.accuracy;
  if (!acc) return null;
  const f = num(acc.float), q = num(acc.quantized);
  if (!Number.isFinite(f) || !Number.isFinite(q)) return null;
  const pct = (x: number) => (x <= 1 ? x * 100 : x);
  return {float: pct(f), quantized: pct(q), drop: pct(f) - pct(q), dataset: acc.dataset};
}

/** panel.ts: weight bit width of a layer: a number, 'none' (the recorded bit widths list no weights for it) or
 *  'unknown'. The backend could send this state with `GET layer`'s quant. */
export function weightBits(d: LayerDetail, summary: ReportSummary | null): number | 'none' | 'unknown' {
  const v = d.quant ? d.quant.weights_nbits : undefined;
  if (typeof v === 'number') return v;
  const layers = summary?.manifest?.bit_widths?.layers;
  const rec = layers && Object.prototype.hasOwnProperty.call(layers, d.name) ? layers[d.name] : undefined;
  if (rec && !Object.keys(rec.weights ?? {}).length) return 'none';
  return 'unknown';
}

/** panel.ts: whether a join is unbalanced: the backend's `flagged`, else ratio >= limit (for answers without it). */
export function joinFlagged(c: ConcatCheck, limit: number): boolean {
  const ratio = num(c.ratio);
  return typeof c.flagged === 'boolean' ? c.flagged : Number.isFinite(ratio) && Number.isFinite(limit) && ratio >= limit;
}

/** app/data.ts: the names the summary's verdict groups and general troubleshoots point at (graph nodes that are not
 *  quant_report layers can be selected through them). A group names its first few layers only; `GET layers`'
 *  verdict_nodes lists every non-layer name. */
export function verdictLayerNames(s: ReportSummary | null): Set<string> {
  return new Set([...(s?.verdict_groups ?? []), ...(s?.general ?? [])].flatMap((v) => v.layers ?? []));
}
