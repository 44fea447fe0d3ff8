// View state kept in the iframe's URL hash so that a view can be shared / restored.
export interface ThresholdParams {
  thr: Record<string, string>;      // metric -> value
  under: Record<string, string>;    // metric -> '1' | '0'
  ratio?: string; z?: string; concat?: string; bits?: string;
}
export interface AppState {
  report: string | null;
  layer: string | null;
  view: 'graph' | 'chart';
  cmp: string | null;
  t: ThresholdParams;
}

export function emptyThresholds(): ThresholdParams { return {thr: {}, under: {}}; }

export function parseHash(hash: string): AppState {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  const t = emptyThresholds();
  for (const [k, v] of p) {
    if (k.startsWith('thr.')) t.thr[k.slice(4)] = v;
    else if (k.startsWith('under.')) t.under[k.slice(6)] = v;
  }
  for (const k of ['ratio', 'z', 'concat', 'bits'] as const) { const v = p.get(k); if (v !== null && v !== '') t[k] = v; }
  const view = p.get('view') === 'chart' ? 'chart' : 'graph';
  return {report: p.get('report'), layer: p.get('layer'), view, cmp: p.get('cmp'), t};
}

/** Query params understood by the backend (report, layers, verdicts, graph, compare). */
export function thresholdQuery(t: ThresholdParams): Record<string, string> {
  const q: Record<string, string> = {};
  for (const k of Object.keys(t.thr).sort()) q[`thr.${k}`] = t.thr[k];
  for (const k of Object.keys(t.under).sort()) q[`under.${k}`] = t.under[k];
  for (const k of ['ratio', 'z', 'concat', 'bits'] as const) if (t[k] !== undefined) q[k] = t[k] as string;
  return q;
}

export function toHash(s: AppState): string {
  const p = new URLSearchParams();
  if (s.report) p.set('report', s.report);
  if (s.layer) p.set('layer', s.layer);
  if (s.view !== 'graph') p.set('view', s.view);
  if (s.cmp) p.set('cmp', s.cmp);
  for (const [k, v] of Object.entries(thresholdQuery(s.t))) p.set(k, v);
  const str = p.toString();
  return str ? '#' + str : '';
}
