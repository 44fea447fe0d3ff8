// Hierarchical layout whose cost follows what is shown.
//
// * Each group level is laid out by dagre once per model, the first time the group is shown expanded, with every
//   child at its collapsed size (the level's "base"). Expanding a group later runs dagre on that group's children
//   only: its ancestors are not laid out again but *stretched* (a linear pass over their boxes and edge points:
//   ranks below the grown child move down, boxes right / left of it move apart, see stretch()).
// * Dense fan-ins: an input of a box that also reaches the box through another input (a skip edge, e.g. every
//   earlier layer of a DenseNet block feeding each concatenation) is not given to dagre when the box has several
//   of them. Those edges are bundled: drawn along one bus line beside the level's column, and the target carries
//   the number of its bundled inputs. dagre sees the main path only, which keeps the layout clean and cheap.
// * A level taller than the view is folded into columns (fold()), cut between ranks where few edges cross, so a
//   long chain of blocks reads left to right instead of running off the bottom of the screen.
// Every layout() call reports the work it did (dagre calls, nodes and edges given to dagre, boxes placed), for the
// panel's status line and the tests' budget checks.
import {Graph, layout as dagreLayout} from '@dagrejs/dagre';
import {BUNDLE_MIN_SKIPS, BUS_OFFSET, COL_GAP, DAGRE_SPACING, FOLD_MIN_RANKS, GROUP_H, HEADER, PAD} from '../constants';
import type {Hierarchy} from './model';

export interface Box { id: string; kind: 'node' | 'group'; expanded: boolean; x: number; y: number; w: number; h: number; depth: number }
/** main: routed by dagre; cross: a main-path edge between two folded columns; bundle: a bundled skip edge */
export type EdgeKind = 'main' | 'cross' | 'bundle';
export interface Edge { from: string; to: string; pts: number[]; kind: EdgeKind }
/** The work of one layout() call. */
export interface LayoutStats {
  /** dagre runs (one per group level laid out for the first time) */
  dagreCalls: number;
  /** boxes and edges given to dagre, summed over its runs, and the largest single run */
  dagreNodes: number; dagreEdges: number; maxDagreNodes: number;
  /** group levels placed (stretched / folded from their base: linear work) and the boxes / edges placed */
  placedLevels: number; placedBoxes: number; placedEdges: number;
  /** skip edges drawn bundled instead of routed by dagre */
  bundled: number;
}
export interface LayoutResult {
  boxes: Box[]; edges: Edge[]; width: number; height: number; ms: number;
  /** bundled (skip) inputs per box id */
  fanIn: Record<string, number>;
  stats: LayoutStats;
  /** the fold height used */
  fold: number;
}
export interface LayoutOptions {
  /** levels taller than this (world px) are folded into columns; 0 = never fold. With several, the one whose
   *  layout fits `view` (world px) at the largest scale is used. */
  folds: number[];
  view?: {w: number; h: number};
}

type Rect = {x: number; y: number; w: number; h: number};
interface Base {
  ids: string[];
  /** collapsed size and dagre centre of each child */
  w0: Float64Array; h0: Float64Array; cx: Float64Array; cy: Float64Array;
  rank: Int32Array; nRanks: number;
  /** top and height of each rank band */
  bandTop: Float64Array; bandH: Float64Array;
  edges: {a: number; b: number; pts: number[]}[];
  bundled: [number, number][];
  fanIn: Int32Array;
}
interface Local { w: number; h: number; pos: Map<string, Rect>; edges: Edge[]; fanIn: Map<string, number> }

const EPS = 0.5;

export class Layouter {
  private bases = new Map<string, Base>();
  private placed = new Map<string, Local>();
  private stats: LayoutStats = emptyStats();
  private rootId = '';
  /** nesting depth of each group (root 0), for the fold height of its level */
  private depthOf = new Map<string, number>();
  /** the hierarchy given so far (extend): the levels the views have shown */
  private hier: Hierarchy = {items: {}, levelEdges: {}};
  constructor(first?: Hierarchy) {
    if (first) this.extend(first);
  }

  /** Adds levels not given before (GraphModel.hierarchyFor); what was laid out stays valid. */
  extend(add: Hierarchy) {
    Object.assign(this.hier.items, add.items);
    Object.assign(this.hier.levelEdges, add.levelEdges);
    if (!this.rootId) this.rootId = Object.values(add.items).find((i) => i.parent === null)?.id ?? '';
  }

  layout(expandedList: string[], opts: LayoutOptions = {folds: [0]}): LayoutResult {
    const t0 = performance.now();
    this.stats = emptyStats();
    const folds = opts.folds?.length ? opts.folds : [0];
    let best: LayoutResult | null = null, bestScale = -1;
    for (const f of folds) {
      const res = this.layoutWith(expandedList, Math.max(0, f || 0));
      const v = opts.view;
      const scale = v ? Math.min(v.w / res.width, v.h / res.height) : 0;
      if (!best || scale > bestScale * 1.02) { best = res; bestScale = scale; }
    }
    best!.stats = this.stats;
    best!.ms = performance.now() - t0;
    return best!;
  }

  private layoutWith(expandedList: string[], fold: number): LayoutResult {
    const t0 = performance.now();
    const expanded = new Set(expandedList);
    // expanded descendants per group, for the placement cache keys
    const inner = new Map<string, string[]>();
    for (const g of expandedList) {
      let p = this.hier.items[g]?.parent ?? null;
      while (p !== null) {
        let a = inner.get(p); if (!a) inner.set(p, a = []);
        a.push(g);
        p = this.hier.items[p]?.parent ?? null;
      }
    }
    if (this.placed.size > 4000) this.placed.clear();
    const local = (gid: string): Local => {
      const key = gid + '|' + fold + '|' + (inner.get(gid) ?? []).sort().join('|');
      const hit = this.placed.get(key);
      if (hit) return hit;
      const base = this.base(gid);
      const n = base.ids.length;
      const w = new Float64Array(n), h = new Float64Array(n);
      for (let i = 0; i < n; i++) {
        const c = base.ids[i], ci = this.hier.items[c];
        w[i] = base.w0[i]; h[i] = base.h0[i];
        if (ci.kind === 'group' && expanded.has(c)) {
          const l = local(c);
          w[i] = Math.max(l.w + 2 * PAD, ci.w);
          h[i] = l.h + HEADER + PAD;
        }
      }
      // a nested level folds lower: its frames' title strips and padding above it take room too
      let depth = this.depthOf.get(gid);
      if (depth === undefined) {
        depth = 0;
        for (let p = this.hier.items[gid].parent; p !== null; p = this.hier.items[p]?.parent ?? null) depth++;
        this.depthOf.set(gid, depth);
      }
      const res = place(base, w, h, fold ? Math.max(4 * GROUP_H, fold - depth * (HEADER + PAD)) : 0);
      this.stats.placedLevels++;
      this.stats.placedBoxes += n;
      this.stats.placedEdges += res.edges.length;
      this.placed.set(key, res);
      return res;
    };

    const boxes: Box[] = [];
    const edges: Edge[] = [];
    const fanIn: Record<string, number> = {};
    const emit = (gid: string, ox: number, oy: number, depth: number) => {
      const l = local(gid);
      for (const e of l.edges) {
        const pts = e.pts.slice();
        for (let i = 0; i < pts.length; i += 2) { pts[i] += ox; pts[i + 1] += oy; }
        edges.push({from: e.from, to: e.to, pts, kind: e.kind});
      }
      for (const [id, k] of l.fanIn) fanIn[id] = k;
      for (const c of this.hier.items[gid].children) {
        const p = l.pos.get(c)!;
        const ci = this.hier.items[c];
        const exp = ci.kind === 'group' && expanded.has(c);
        boxes.push({id: c, kind: ci.kind, expanded: exp, x: p.x + ox, y: p.y + oy, w: p.w, h: p.h, depth});
        if (exp) {
          const il = local(c);
          emit(c, p.x + ox + (p.w - il.w) / 2, p.y + oy + HEADER, depth + 1);
        }
      }
    };
    emit(this.rootId, 0, 0, 0);
    const rl = local(this.rootId);
    this.stats.bundled = edges.reduce((s, e) => s + (e.kind === 'bundle' ? 1 : 0), 0);
    return {boxes, edges, width: rl.w, height: rl.h, ms: performance.now() - t0, fanIn, stats: this.stats, fold};
  }

  /** The level's base layout: dagre on its children at their collapsed sizes, computed once per model. */
  private base(gid: string): Base {
    const hit = this.bases.get(gid);
    if (hit) return hit;
    const it = this.hier.items[gid];
    const ids = it.children.slice();
    const n = ids.length;
    const index = new Map<string, number>();
    ids.forEach((c, i) => index.set(c, i));
    const w0 = new Float64Array(n), h0 = new Float64Array(n);
    for (let i = 0; i < n; i++) { const ci = this.hier.items[ids[i]]; w0[i] = ci.w; h0[i] = ci.h; }
    const all: [number, number][] = [];
    const seen = new Set<number>();
    for (const [a, b] of this.hier.levelEdges[gid] ?? []) {
      const ia = index.get(a), ib = index.get(b);
      if (ia === undefined || ib === undefined || ia === ib) continue;
      const k = ia * n + ib;
      if (seen.has(k)) continue;
      seen.add(k);
      all.push([ia, ib]);
    }
    const bundledSet = skipEdgesToBundle(n, all);
    const g = new Graph({multigraph: false});
    g.setGraph({rankdir: 'TB', ...DAGRE_SPACING, marginx: 0, marginy: 0});
    g.setDefaultEdgeLabel(() => ({}));
    for (let i = 0; i < n; i++) g.setNode(String(i), {width: w0[i], height: h0[i]});
    let dagreEdges = 0;
    const bundled: [number, number][] = [];
    const fanIn = new Int32Array(n);
    for (const [a, b] of all) {
      if (bundledSet.has(a * n + b)) { bundled.push([a, b]); fanIn[b]++; continue; }
      g.setEdge(String(a), String(b));
      dagreEdges++;
    }
    if (n) dagreLayout(g);
    this.stats.dagreCalls++;
    this.stats.dagreNodes += n;
    this.stats.dagreEdges += dagreEdges;
    this.stats.maxDagreNodes = Math.max(this.stats.maxDagreNodes, n);
    const cx = new Float64Array(n), cy = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      const p = g.node(String(i)) as unknown as {x: number; y: number};
      cx[i] = p.x; cy[i] = p.y;
    }
    // ranks: dagre puts the centres of one rank on one y
    const ys = [...new Set(Array.from(cy, (y) => Math.round(y * 2) / 2))].sort((a, b) => a - b);
    const rankOf = new Map<number, number>();
    ys.forEach((y, r) => rankOf.set(y, r));
    const rank = new Int32Array(n);
    const nRanks = ys.length;
    const bandH = new Float64Array(nRanks);
    for (let i = 0; i < n; i++) {
      rank[i] = rankOf.get(Math.round(cy[i] * 2) / 2)!;
      bandH[rank[i]] = Math.max(bandH[rank[i]], h0[i]);
    }
    const bandTop = new Float64Array(nRanks);
    for (let r = 0; r < nRanks; r++) bandTop[r] = ys[r] - bandH[r] / 2;
    const edges: Base['edges'] = [];
    for (const e of g.edges()) {
      const lbl = g.edge(e) as unknown as {points?: {x: number; y: number}[]};
      const pts: number[] = [];
      for (const p of lbl.points ?? []) pts.push(p.x, p.y);
      edges.push({a: Number(e.v), b: Number(e.w), pts});
    }
    const base: Base = {ids, w0, h0, cx, cy, rank, nRanks, bandTop, bandH, edges, bundled, fanIn};
    this.bases.set(gid, base);
    return base;
  }
}

function emptyStats(): LayoutStats {
  return {dagreCalls: 0, dagreNodes: 0, dagreEdges: 0, maxDagreNodes: 0, placedLevels: 0, placedBoxes: 0, placedEdges: 0, bundled: 0};
}

/** Skip edges to bundle, as keys a * n + b: an input a of b that reaches b through another of b's inputs too,
 *  when b has at least BUNDLE_MIN_SKIPS such inputs (a single residual edge stays a normal edge). The kept edges
 *  contain the level's transitive reduction, so what reaches what (and dagre's rank order) does not change. */
export function skipEdgesToBundle(n: number, edges: [number, number][]): Set<number> {
  const out = new Set<number>();
  if (n < 3 || edges.length < 3) return out;
  const preds: number[][] = Array.from({length: n}, () => []);
  const succ: number[][] = Array.from({length: n}, () => []);
  const indeg = new Int32Array(n);
  for (const [a, b] of edges) { preds[b].push(a); succ[a].push(b); indeg[b]++; }
  if (!preds.some((p) => p.length > BUNDLE_MIN_SKIPS)) return out;
  // topological order (Kahn); a cycle (should not happen: scopes are contiguous stretches of a DAG) bundles nothing
  const order: number[] = [];
  const q: number[] = [];
  for (let i = 0; i < n; i++) if (!indeg[i]) q.push(i);
  while (q.length) {
    const u = q.pop()!;
    order.push(u);
    for (const v of succ[u]) if (--indeg[v] === 0) q.push(v);
  }
  if (order.length !== n) return out;
  // reach[u] = bitset of the nodes u reaches (strictly), filled in reverse topological order
  const words = (n + 31) >>> 5;
  const reach = new Uint32Array(n * words);
  for (let k = n - 1; k >= 0; k--) {
    const u = order[k], ru = u * words;
    for (const v of succ[u]) {
      reach[ru + (v >>> 5)] |= 1 << (v & 31);
      const rv = v * words;
      for (let w = 0; w < words; w++) reach[ru + w] |= reach[rv + w];
    }
  }
  for (let b = 0; b < n; b++) {
    const ps = preds[b];
    if (ps.length <= BUNDLE_MIN_SKIPS) continue;
    const skips: number[] = [];
    for (const a of ps) {
      const ra = a * words;
      if (ps.some((c) => c !== a && (reach[ra + (c >>> 5)] >>> (c & 31)) & 1)) skips.push(a);
    }
    if (skips.length >= BUNDLE_MIN_SKIPS) for (const a of skips) out.add(a * n + b);
  }
  return out;
}

/** A level's placement for the current child sizes: its base stretched to the sizes, then folded into columns when
 *  taller than `fold`. Linear in the level's boxes and edge points. */
function place(base: Base, w: Float64Array, h: Float64Array, fold: number): Local {
  const n = base.ids.length;
  const {nRanks, rank} = base;
  // --- x: every child that grew pushes what lies left of its centre left and what lies right of it right, by half
  // its growth. The shift is monotone in x, so gaps never shrink and nothing starts to overlap.
  const splits: [number, number][] = [];
  for (let i = 0; i < n; i++) { const d = w[i] - base.w0[i]; if (d > EPS) splits.push([base.cx[i], d / 2]); }
  splits.sort((a, b) => a[0] - b[0]);
  const sx = splits.map((s) => s[0]);
  const pre = new Float64Array(splits.length + 1);
  for (let i = 0; i < splits.length; i++) pre[i + 1] = pre[i] + splits[i][1];
  const total = pre[splits.length];
  const shiftX = (x: number): number => {
    if (!splits.length) return x;
    const lo = lowerBound(sx, x - 1e-6), hi = lowerBound(sx, x + 1e-6);   // splits left of x: [0, lo); right: [hi, end)
    return x + pre[lo] - (total - pre[hi]);
  };
  // --- y: each rank band grows to its tallest child; the bands below move down
  const bandH = new Float64Array(nRanks);
  for (let r = 0; r < nRanks; r++) bandH[r] = base.bandH[r];
  for (let i = 0; i < n; i++) bandH[rank[i]] = Math.max(bandH[rank[i]], h[i]);
  const bandTop = new Float64Array(nRanks);
  for (let r = 0; r < nRanks; r++) {
    bandTop[r] = r === 0 ? base.bandTop[0] : bandTop[r - 1] + bandH[r - 1] + (base.bandTop[r] - base.bandTop[r - 1] - base.bandH[r - 1]);
  }
  const mapY = (y: number): number => {
    if (!nRanks) return y;
    let r = upperBound(base.bandTop, y) - 1;       // the last band starting at or above y
    if (r < 0) return y - base.bandTop[0] + bandTop[0];
    const top = base.bandTop[r], hh = base.bandH[r];
    if (y <= top + hh) return bandTop[r] + (hh > 0 ? (y - top) * bandH[r] / hh : 0);
    return bandTop[r] + bandH[r] + (y - top - hh);
  };
  const rect: Rect[] = new Array(n);
  for (let i = 0; i < n; i++) {
    const cx = shiftX(base.cx[i]), cy = bandTop[rank[i]] + bandH[rank[i]] / 2;
    rect[i] = {x: cx - w[i] / 2, y: cy - h[i] / 2, w: w[i], h: h[i]};
  }
  const routed: {a: number; b: number; pts: number[]}[] = base.edges.map((e) => {
    const pts = e.pts.slice();
    for (let i = 0; i < pts.length; i += 2) { pts[i] = shiftX(pts[i]); pts[i + 1] = mapY(pts[i + 1]); }
    const m = pts.length;
    if (m >= 4) {
      const ra = rect[e.a], rb = rect[e.b];
      pts[0] = clamp(pts[0], ra.x + 4, ra.x + ra.w - 4); pts[1] = ra.y + ra.h;
      pts[m - 2] = clamp(pts[m - 2], rb.x + 4, rb.x + rb.w - 4); pts[m - 1] = rb.y;
    }
    return {a: e.a, b: e.b, pts};
  });

  // --- fold: columns of consecutive ranks, each at most `fold` tall when a cut allows it
  const cols = foldRanks(nRanks, bandTop, bandH, routed, rank, fold);
  const colOf = new Int32Array(nRanks);
  cols.forEach(([a, b], c) => { for (let r = a; r <= b; r++) colOf[r] = c; });
  const nc = cols.length;
  const minX = new Float64Array(nc).fill(Infinity), maxX = new Float64Array(nc).fill(-Infinity);
  for (let i = 0; i < n; i++) {
    const c = colOf[rank[i]];
    minX[c] = Math.min(minX[c], rect[i].x); maxX[c] = Math.max(maxX[c], rect[i].x + rect[i].w);
  }
  const inCol = (e: {a: number; b: number}) => colOf[rank[e.a]] === colOf[rank[e.b]];
  for (const e of routed) {
    if (!inCol(e)) continue;
    const c = colOf[rank[e.a]];
    for (let i = 0; i < e.pts.length; i += 2) { minX[c] = Math.min(minX[c], e.pts[i]); maxX[c] = Math.max(maxX[c], e.pts[i]); }
  }
  const bundledAny = base.bundled.length > 0;
  const dx = new Float64Array(nc), dy = new Float64Array(nc);
  let cur = 0;
  for (let c = 0; c < nc; c++) {
    if (!Number.isFinite(minX[c])) { minX[c] = maxX[c] = 0; }
    dx[c] = cur - minX[c];
    dy[c] = nc > 1 ? -bandTop[cols[c][0]] : 0;
    cur += maxX[c] - minX[c] + (bundledAny ? BUS_OFFSET + 16 : 0) + COL_GAP;
  }
  for (let i = 0; i < n; i++) { const c = colOf[rank[i]]; rect[i].x += dx[c]; rect[i].y += dy[c]; }
  const colRight = (c: number) => maxX[c] + dx[c];
  let colBottom = 0;
  for (const [a, b] of cols) colBottom = Math.max(colBottom, bandTop[b] + bandH[b] + (nc > 1 ? -bandTop[a] : 0));
  const half = DAGRE_SPACING.ranksep / 2;
  const edges: Edge[] = [];
  for (const e of routed) {
    const from = base.ids[e.a], to = base.ids[e.b];
    if (inCol(e)) {
      const c = colOf[rank[e.a]];
      for (let i = 0; i < e.pts.length; i += 2) { e.pts[i] += dx[c]; e.pts[i + 1] += dy[c]; }
      edges.push({from, to, pts: e.pts, kind: 'main'});
      continue;
    }
    // between columns: down out of the source, along the gutter right of its column, into the target from above
    const ra = rect[e.a], rb = rect[e.b];
    const ca = colOf[rank[e.a]], cb = colOf[rank[e.b]];
    const x0 = clamp(e.pts[0] + dx[ca], ra.x + 4, ra.x + ra.w - 4);
    const x1 = clamp(e.pts[e.pts.length - 2] + dx[cb], rb.x + 4, rb.x + rb.w - 4);
    const y0 = ra.y + ra.h, y1 = rb.y;
    const gx = colRight(ca) + COL_GAP / 2 + (bundledAny ? BUS_OFFSET + 8 : 0);
    const pts = [x0, y0, x0, y0 + half, gx, y0 + half];
    if (cb > ca + 1) {
      const gx2 = colRight(cb - 1) + COL_GAP / 2 + (bundledAny ? BUS_OFFSET + 8 : 0);
      pts.push(gx, colBottom + half, gx2, colBottom + half, gx2, y1 - half);
    } else pts.push(gx, y1 - half);
    pts.push(x1, y1 - half, x1, y1);
    edges.push({from, to, pts, kind: 'cross'});
  }
  // bundled skip edges: from the right side of the source along its column's bus to the right side of the target
  const fanIn = new Map<string, number>();
  for (let i = 0; i < n; i++) if (base.fanIn[i]) fanIn.set(base.ids[i], base.fanIn[i]);
  const busTop = -BUS_OFFSET;
  for (const [a, b] of base.bundled) {
    const ra = rect[a], rb = rect[b];
    const ca = colOf[rank[a]], cb = colOf[rank[b]];
    const ya = ra.y + ra.h / 2, yb = rb.y + rb.h / 2;
    const bx = colRight(ca) + BUS_OFFSET;
    const pts = [ra.x + ra.w, ya, bx, ya];
    if (ca === cb) pts.push(bx, yb);
    else { const bx2 = colRight(cb) + BUS_OFFSET; pts.push(bx, busTop, bx2, busTop, bx2, yb); }
    pts.push(rb.x + rb.w, yb);
    edges.push({from: base.ids[a], to: base.ids[b], pts, kind: 'bundle'});
  }
  // normalise to the origin
  let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
  for (const r of rect) { x0 = Math.min(x0, r.x); y0 = Math.min(y0, r.y); x1 = Math.max(x1, r.x + r.w); y1 = Math.max(y1, r.y + r.h); }
  for (const e of edges) for (let i = 0; i < e.pts.length; i += 2) {
    x0 = Math.min(x0, e.pts[i]); x1 = Math.max(x1, e.pts[i]); y0 = Math.min(y0, e.pts[i + 1]); y1 = Math.max(y1, e.pts[i + 1]);
  }
  if (!Number.isFinite(x0)) { x0 = y0 = 0; x1 = y1 = 1; }
  const pos = new Map<string, Rect>();
  for (let i = 0; i < n; i++) pos.set(base.ids[i], {x: rect[i].x - x0, y: rect[i].y - y0, w: rect[i].w, h: rect[i].h});
  for (const e of edges) for (let i = 0; i < e.pts.length; i += 2) { e.pts[i] -= x0; e.pts[i + 1] -= y0; }
  return {w: Math.max(x1 - x0, 1), h: Math.max(y1 - y0, 1), pos, edges, fanIn};
}

/** Column cuts [firstRank, lastRank] for a level: greedy, each column as tall as fits in `fold`, cut in its lower
 *  half where the fewest main-path edges cross (ties: the later rank). One column when the level fits. */
function foldRanks(nRanks: number, top: Float64Array, hgt: Float64Array, edges: {a: number; b: number}[], rank: Int32Array,
  fold: number): [number, number][] {
  if (!fold || nRanks < FOLD_MIN_RANKS || top[nRanks - 1] + hgt[nRanks - 1] - top[0] <= fold) return [[0, nRanks - 1]];
  // crossing[r] = edges from a rank <= r to a rank > r
  const diff = new Int32Array(nRanks + 1);
  for (const e of edges) { const ra = rank[e.a], rb = rank[e.b]; if (rb > ra) { diff[ra]++; diff[rb]--; } }
  const crossing = new Int32Array(nRanks);
  let run = 0;
  for (let r = 0; r < nRanks; r++) { run += diff[r]; crossing[r] = run; }
  const cols: [number, number][] = [];
  let start = 0;
  while (start < nRanks) {
    const span = (e: number) => top[e] + hgt[e] - top[start];
    let end = start;
    while (end + 1 < nRanks && span(end + 1) <= fold) end++;
    if (end === nRanks - 1) { cols.push([start, end]); break; }
    let lo = start;
    while (lo < end && span(lo) < 0.55 * fold) lo++;
    let best = end;
    for (let r = end; r >= lo; r--) if (crossing[r] < crossing[best]) best = r;
    cols.push([start, best]);
    start = best + 1;
  }
  // a few small ranks before or after a tall one (the input before a model's big body, the classifier after it)
  // do not get a narrow column of their own when the two fit in a little more than `fold`
  const height = (c: [number, number]) => top[c[1]] + hgt[c[1]] - top[c[0]];
  for (let i = 0; i + 1 < cols.length;) {
    const a = cols[i], b = cols[i + 1];
    const small = Math.min(height(a), height(b)) < 0.3 * fold;
    if (small && height([a[0], b[1]]) <= 1.45 * fold) cols.splice(i, 2, [a[0], b[1]]);
    else i++;
  }
  return cols;
}

function clamp(v: number, lo: number, hi: number) { return hi < lo ? (lo + hi) / 2 : Math.min(hi, Math.max(lo, v)); }
function lowerBound(a: ArrayLike<number>, v: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) { const m = (lo + hi) >>> 1; if (a[m] < v) lo = m + 1; else hi = m; }
  return lo;
}
function upperBound(a: ArrayLike<number>, v: number): number {
  let lo = 0, hi = a.length;
  while (lo < hi) { const m = (lo + hi) >>> 1; if (a[m] <= v) lo = m + 1; else hi = m; }
  return lo;
}
