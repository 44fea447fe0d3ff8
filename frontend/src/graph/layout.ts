// Hierarchical layout, one group level at a time: each expanded group lays out only its direct children with
// dagre (child groups that are themselves expanded are laid out first and enter as one big box). Results of a
// group are cached by the set of expanded groups inside it, so expanding one group only re-lays out its
// ancestors' levels.
import {Graph, layout as dagreLayout} from '@dagrejs/dagre';
import {DAGRE_SPACING, HEADER, PAD} from '../constants';
import type {Hierarchy} from './model';

export interface Box { id: string; kind: 'node' | 'group'; expanded: boolean; x: number; y: number; w: number; h: number; depth: number }
export interface Edge { from: string; to: string; pts: number[] }
export interface LayoutResult { boxes: Box[]; edges: Edge[]; width: number; height: number; ms: number; levels: number }

interface Local { w: number; h: number; pos: Map<string, {x: number; y: number; w: number; h: number}>; edges: Edge[] }

export class Layouter {
  private cache = new Map<string, Local>();
  levelsComputed = 0;
  constructor(private hier: Hierarchy) {}

  layout(expandedList: string[]): LayoutResult {
    const t0 = performance.now();
    this.levelsComputed = 0;
    const expanded = new Set(expandedList);
    // expanded descendants per group, for cache keys
    const inner = new Map<string, string[]>();
    for (const g of expandedList) {
      let p = this.hier.items[g]?.parent ?? null;
      while (p !== null) {
        let a = inner.get(p); if (!a) inner.set(p, a = []);
        a.push(g);
        p = this.hier.items[p].parent;
      }
    }
    const root = Object.values(this.hier.items).find((i) => i.parent === null)!;
    const local = (gid: string): Local => {
      const key = gid + '|' + (inner.get(gid) ?? []).sort().join('|');
      const hit = this.cache.get(key);
      if (hit) return hit;
      const it = this.hier.items[gid];
      const g = new Graph({multigraph: false});
      g.setGraph({rankdir: 'TB', ...DAGRE_SPACING, marginx: 0, marginy: 0});
      g.setDefaultEdgeLabel(() => ({}));
      const sizes = new Map<string, {w: number; h: number}>();
      for (const c of it.children) {
        const ci = this.hier.items[c];
        let w = ci.w, h = ci.h;
        if (ci.kind === 'group' && expanded.has(c)) {
          const l = local(c);
          w = Math.max(l.w + 2 * PAD, ci.w);
          h = l.h + HEADER + PAD;
        }
        sizes.set(c, {w, h});
        g.setNode(c, {width: w, height: h});
      }
      for (const [a, b] of this.hier.levelEdges[gid] ?? []) if (a !== b && sizes.has(a) && sizes.has(b)) g.setEdge(a, b);
      dagreLayout(g);
      this.levelsComputed++;
      const pos = new Map<string, {x: number; y: number; w: number; h: number}>();
      for (const c of it.children) {
        const n = g.node(c) as unknown as {x: number; y: number};
        const s = sizes.get(c)!;
        pos.set(c, {x: n.x - s.w / 2, y: n.y - s.h / 2, w: s.w, h: s.h});
      }
      const edges: Edge[] = [];
      for (const e of g.edges()) {
        const lbl = g.edge(e) as unknown as {points?: {x: number; y: number}[]};
        const pts: number[] = [];
        for (const p of lbl.points ?? []) pts.push(p.x, p.y);
        edges.push({from: e.v, to: e.w, pts});
      }
      const gl = g.graph() as unknown as {width?: number; height?: number};
      const res: Local = {w: Math.max(gl.width ?? 0, 1), h: Math.max(gl.height ?? 0, 1), pos, edges};
      this.cache.set(key, res);
      return res;
    };

    const boxes: Box[] = [];
    const edges: Edge[] = [];
    const place = (gid: string, ox: number, oy: number, depth: number) => {
      const l = local(gid);
      for (const e of l.edges) {
        const pts = e.pts.slice();
        for (let i = 0; i < pts.length; i += 2) { pts[i] += ox; pts[i + 1] += oy; }
        edges.push({from: e.from, to: e.to, pts});
      }
      for (const c of this.hier.items[gid].children) {
        const p = l.pos.get(c)!;
        const ci = this.hier.items[c];
        const exp = ci.kind === 'group' && expanded.has(c);
        boxes.push({id: c, kind: ci.kind, expanded: exp, x: p.x + ox, y: p.y + oy, w: p.w, h: p.h, depth});
        if (exp) {
          const inner = local(c);
          place(c, p.x + ox + (p.w - inner.w) / 2, p.y + oy + HEADER, depth + 1);
        }
      }
    };
    place(root.id, 0, 0, 0);
    const rl = local(root.id);
    return {boxes, edges, width: rl.w, height: rl.h, ms: performance.now() - t0, levels: this.levelsComputed};
  }
}
