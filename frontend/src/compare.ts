// Compare mode on the graph: for each layer of `compare?a=A&b=B`, the badge drawn on its node (status arrow and the
// delta of its worst metric) and the per-metric deltas shown in the node's hover text. Which metric the badge shows
// (worstKey, with the client-side copy of the backend's severity()) is in derived.ts.
import type {CompareLayer, Thresholds} from './api';
import {fmt, num} from './api';
import {compareValue, worstKey} from './derived';

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

export function signed(v: number, digits = 3): string {
  const s = fmt(v, digits);
  return v > 0 && Number.isFinite(v) ? '+' + s : s.replace(/^-/, '−');
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
    // paired across toolchains (MCT vs ONNX): the layer's name in A differs from the one on this graph
    if (l.name_a && l.name_b && l.name_a !== l.name_b) lines.push(`A's layer: ${l.name_a}` + (l.key ? ` (module ${l.key})` : ''));
    for (const k of Object.keys(l.delta ?? {})) {
      lines.push(`Δ ${k} ${signed(num(l.delta[k]), 4)} (${fmt(compareValue(l, 'a', k), 4)} → ${fmt(compareValue(l, 'b', k), 4)})${k === key && badge ? ' ◀' : ''}`);
    }
    out.set(l.name, {status: l.status, key, delta, badge, lines});
  }
  return out;
}
