// Typed client for the tb-xquant backend (docs/api.md). All URLs are relative to this module,
// which TensorBoard serves at <tb>/data/plugin/xquant/static/index.js, so they keep working under
// --path_prefix and inside the plugin iframe.

// The answers' types are declared in api_types.ts (no code there); every module imports them from here.
export type * from './api_types';

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
  performance.mark('xq:text:' + route);
  let body: any = null;
  try { body = text ? JSON.parse(text) : null; } catch { /* not JSON */ }
  performance.mark('xq:parsed:' + route);   // for bench/browser.py's breakdown
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
  if (a >= 1e5 || a < 1e-3) return n.toExponential(Math.max(0, digits - 1));
  if (Number.isInteger(n)) return String(n);
  return String(Number(n.toPrecision(digits)));
}
