// View state kept in the iframe's URL hash (and mirrored into TensorBoard's page hash as `xq=`) so that a view can be
// shared / restored.
export interface ThresholdParams {
  thr: Record<string, string>;      // metric -> value
  under: Record<string, string>;    // metric -> '1' | '0'
  ratio?: string; z?: string; concat?: string; bits?: string;
}
export interface AppState {
  report: string | null;
  layer: string | null;
  view: View;
  cmp: string | null;
  /** open manual entry (Manual view) */
  man: string | null;
  /** the study shown by the Attempts view (GET study?study=) */
  study: string | null;
  t: ThresholdParams;
}

export type View = 'graph' | 'chart' | 'manual' | 'attempts';
const VIEWS: View[] = ['graph', 'chart', 'manual', 'attempts'];

export function emptyThresholds(): ThresholdParams { return {thr: {}, under: {}}; }

export function parseHash(hash: string): AppState {
  const p = new URLSearchParams(hash.replace(/^#/, ''));
  const t = emptyThresholds();
  for (const [k, v] of p) {
    if (k.startsWith('thr.')) t.thr[k.slice(4)] = v;
    else if (k.startsWith('under.')) t.under[k.slice(6)] = v;
  }
  for (const k of ['ratio', 'z', 'concat', 'bits'] as const) { const v = p.get(k); if (v !== null && v !== '') t[k] = v; }
  const v = p.get('view') as View | null;
  const view: View = v && VIEWS.includes(v) ? v : 'graph';
  return {report: p.get('report'), layer: p.get('layer'), view, cmp: p.get('cmp'), man: p.get('man'), study: p.get('study'), t};
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
  if (s.man) p.set('man', s.man);
  if (s.study) p.set('study', s.study);
  for (const [k, v] of Object.entries(thresholdQuery(s.t))) p.set(k, v);
  const str = p.toString();
  return str ? '#' + str : '';
}

// TensorBoard's own page hash: `#<plugin>&key=value&...` (tf_storage: one bare word is the active tab, the other
// parts are URI-encoded key=value pairs; TensorBoard keeps keys it does not know when it rewrites the hash).
export const TB_STATE_KEY = 'xq';
export interface TbHash { tab: string | null; pairs: [string, string][] }

export function parseTbHash(hash: string): TbHash {
  const out: TbHash = {tab: null, pairs: []};
  for (const part of hash.replace(/^#/, '').split('&')) {
    if (!part) continue;
    const kv = part.split('=');
    try {
      if (kv.length === 1) out.tab = decodeURIComponent(kv[0]);
      else if (kv.length === 2) out.pairs.push([decodeURIComponent(kv[0]), decodeURIComponent(kv[1])]);
    } catch { /* malformed escape: dropped, as TensorBoard would fail on it too */ }
  }
  return out;
}

export function tbHashString(t: TbHash): string {
  const rest = t.pairs.map(([k, v]) => encodeURIComponent(k) + '=' + encodeURIComponent(v)).join('&');
  return (t.tab ?? '') + (rest ? (t.tab ? '&' : '') + rest : '');
}

/** TensorBoard page hash with our state under `xq` (removed when the state is the default one). */
export function withPanelState(hash: string, s: AppState, tab: string): string {
  const t = parseTbHash(hash);
  t.tab = tab;
  const ours = toHash(s).replace(/^#/, '');
  t.pairs = t.pairs.filter(([k]) => k !== TB_STATE_KEY);
  if (ours) t.pairs.push([TB_STATE_KEY, ours]);
  return '#' + tbHashString(t);
}

/** Our state from TensorBoard's page hash, or null when it carries none. */
export function panelStateFromTb(hash: string): string | null {
  const v = parseTbHash(hash).pairs.find(([k]) => k === TB_STATE_KEY)?.[1];
  return v ? v : null;
}
