// Compare mode on the graph: for each layer of `compare?a=A&b=B`, the badge drawn on its node (status arrow and the
// delta of its worst metric) and the per-metric deltas shown in the node's hover text.
import type {CompareLayer, Thresholds} from './api';
import {fmt, num} from './api';

export interface CompareMark {
  status: string;
  /** "metric.dataset" the badge shows, or null (no comparable metric) */
  key: string | null;
  delta: number;
  /** text of the node badge, or null when the node gets none (unchanged) */
  badge: string | null;
  /** hover lines: status and every metric's delta */
  lines: string[];
}

/** How far past its threshold a value is (>= 1 means degraded); the same measure as the backend's detection. */
export function severity(v: number, thr: number, under: boolean): number {
  if (!Number.isFinite(thr) || Number.isNaN(v)) return 0;
  const eps = 1e-12;
  if (under) return v > 0 ? (Math.abs(thr) + eps) / (Math.abs(v) + eps) : (v <= thr ? Infinity : 0);
  return (Math.abs(v) + eps) / (Math.abs(thr) + eps);
}

export function signed(v: number, digits = 3): string {
  const s = fmt(v, digits);
  return v > 0 && Number.isFinite(v) ? '+' + s : s.replace(/^-/, '−');
}

function side(l: CompareLayer, which: 'a' | 'b', key: string): number {
  const [metric, ds] = splitKey(key);
  return num(l[which]?.[ds]?.[metric]);
}
function splitKey(key: string): [string, string] {
  const i = key.lastIndexOf('.');
  return i < 0 ? [key, ''] : [key.slice(0, i), key.slice(i + 1)];
}

/** The metric whose delta the badge shows: the one furthest past its threshold in A or in B (the layer's worst
 *  metric before or after), else the one that changed most relative to A. */
export function worstKey(l: CompareLayer, th: Thresholds | null): string | null {
  const keys = Object.keys(l.delta ?? {}).filter((k) => Number.isFinite(num(l.delta[k])));
  if (!keys.length) return null;
  let best: string | null = null, bs = 0;
  for (const k of keys) {
    const [metric] = splitKey(k);
    const thr = num(th?.quantize_error?.[metric]);
    const under = !!th?.detect_under?.[metric];
    const s = Math.max(severity(side(l, 'a', k), thr, under), severity(side(l, 'b', k), thr, under));
    if (s > bs) { bs = s; best = k; }
  }
  if (best) return best;
  let rel = -1;
  for (const k of keys) {
    const r = Math.abs(num(l.delta[k])) / (Math.abs(side(l, 'a', k)) + 1e-12);
    if (r > rel) { rel = r; best = k; }
  }
  return best;
}

const STATUS_TEXT: Record<string, string> = {
  improved: 'improved', worse: 'worse', unchanged: 'unchanged', only_a: 'only in A (baseline)', only_b: 'only in B (this report)',
};

export function compareMarks(rows: CompareLayer[], th: Thresholds | null): Map<string, CompareMark> {
  const out = new Map<string, CompareMark>();
  for (const l of rows) {
    const key = worstKey(l, th);
    const delta = key ? num(l.delta[key]) : NaN;
    let badge: string | null = null;
    if (l.status === 'improved' || l.status === 'worse') {
      badge = (l.status === 'improved' ? '▲ ' : '▼ ') + (key ? `${key} ${signed(delta)}` : l.status);
    } else if (l.status === 'only_a') badge = 'only in A';
    else if (l.status === 'only_b') badge = 'only in B';
    const lines = [`compare A → B: ${STATUS_TEXT[l.status] ?? l.status}` + (l.degraded_a !== l.degraded_b ? (l.degraded_b ? ', now degraded' : ', no longer degraded') : '')];
    for (const k of Object.keys(l.delta ?? {})) {
      lines.push(`Δ ${k} ${signed(num(l.delta[k]), 4)} (${fmt(side(l, 'a', k), 4)} → ${fmt(side(l, 'b', k), 4)})${k === key && badge ? ' ◀' : ''}`);
    }
    out.set(l.name, {status: l.status, key, delta, badge, lines});
  }
  return out;
}
