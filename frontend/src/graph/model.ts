// Hierarchical graph model: nodes grouped by their module scope (node.group = "blocks/1", recovered by the backend
// from the torch.fx names, see tb_xquant_plugin/model/scopes.py), groups nested by path prefix. Groups with too many direct children are split into synthetic "part" groups so that no single
// layout call ever sees more than MAX_CHILDREN boxes (dagre overflows its stack around 5,000 nodes).
import type {GraphNode} from '../api';
import {EXPAND_BUDGET, GROUP_H, MAX_CHILDREN, NODE_H} from '../constants';

export const ROOT = '\u29c9';          // id of the root group
export const GPREFIX = '\u29c9g:';     // prefix of group ids (cannot collide with node ids in practice)

export interface HItem {
  id: string; kind: 'node' | 'group'; parent: string | null; label: string; sub: string;
  children: string[]; w: number; h: number; leafCount: number; synthetic?: boolean;
}
/** Serializable hierarchy sent to the layout worker. */
export interface Hierarchy {
  items: Record<string, HItem>;
  /** edges lifted to the level where they live: levelEdges[groupId] = [[childA, childB], ...] */
  levelEdges: Record<string, [string, string][]>;
}

export function textWidth(s: string, px = 7): number { return s.length * px; }

export class GraphModel {
  items = new Map<string, HItem>();
  nodes = new Map<string, GraphNode>();
  byLayer = new Map<string, string>();         // layer name -> node id
  byName = new Map<string, string>();          // node short name -> node id (first one wins)
  succ = new Map<string, string[]>();
  pred = new Map<string, string[]>();
  levelEdges = new Map<string, Map<string, [string, string]>>();
  depth = new Map<string, number>();
  /** degraded leaf count per group, judges per group */
  degradedIn = new Map<string, number>();

  constructor(nodes: GraphNode[]) {
    const root: HItem = {id: ROOT, kind: 'group', parent: null, label: '', sub: '', children: [], w: 0, h: 0, leafCount: 0};
    this.items.set(ROOT, root);
    this.depth.set(ROOT, 0);
    const ensureGroup = (path: string): string => {
      if (!path) return ROOT;
      const id = GPREFIX + path;
      if (this.items.has(id)) return id;
      const cut = path.lastIndexOf('/');
      const parent = ensureGroup(cut >= 0 ? path.slice(0, cut) : '');
      const label = cut >= 0 ? path.slice(cut + 1) : path;
      const it: HItem = {id, kind: 'group', parent, label, sub: path, children: [], w: 0, h: GROUP_H, leafCount: 0};
      this.items.set(id, it);
      this.items.get(parent)!.children.push(id);
      return id;
    };
    for (const n of nodes) {
      if (this.nodes.has(n.id)) continue;
      this.nodes.set(n.id, n);
      if (n.layer) this.byLayer.set(n.layer, n.id);
      if (n.name && !this.byName.has(n.name)) this.byName.set(n.name, n.id);
      const parent = ensureGroup(n.group ?? '');
      const label = n.name || n.id.slice(n.id.lastIndexOf('/') + 1);
      const op = n.op ?? '';
      const w = Math.min(240, Math.max(72, Math.max(textWidth(label, 7), textWidth(op, 6)) + 26));
      this.items.set(n.id, {id: n.id, kind: 'node', parent, label, sub: op, children: [], w, h: NODE_H, leafCount: 1});
      this.items.get(parent)!.children.push(n.id);
    }
    this.flatten(ROOT);
    this.chunk(ROOT);
    this.computeCounts(ROOT, 0);
    // Edges.
    for (const n of this.nodes.values()) {
      for (const src of n.inputs ?? []) {
        if (!this.nodes.has(src) || src === n.id) continue;
        push(this.succ, src, n.id);
        push(this.pred, n.id, src);
        this.liftEdge(src, n.id);
      }
    }
    this.refreshStatus();
  }

  /** A module scope with a single child (a block holding one conv) is
   *  replaced by that child, and a chain of single-group scopes is merged into one "a/b" group. */
  private flatten(gid: string) {
    const g = this.items.get(gid)!;
    g.children = g.children.map((c) => {
      const ci = this.items.get(c)!;
      if (ci.kind !== 'group') return c;
      this.flatten(c);
      if (ci.children.length !== 1) return c;
      const only = this.items.get(ci.children[0])!;
      this.items.delete(c);
      only.parent = gid;
      if (only.kind === 'group') only.label = ci.label + '/' + only.label;
      return only.id;
    });
  }

  private chunk(gid: string) {
    const g = this.items.get(gid)!;
    while (g.children.length > MAX_CHILDREN) {
      const kids = g.children;
      const per = Math.ceil(kids.length / Math.ceil(kids.length / MAX_CHILDREN));
      const size = Math.max(per, Math.ceil(kids.length / MAX_CHILDREN));
      const parts: string[] = [];
      for (let i = 0, k = 0; i < kids.length; i += size, k++) {
        const id = `${gid}#${g.children.length}.${k}`;
        const slice = kids.slice(i, i + size);
        const first = this.items.get(slice[0])!.label, last = this.items.get(slice[slice.length - 1])!.label;
        const it: HItem = {id, kind: 'group', parent: gid, label: `part ${k + 1}: ${first} … ${last}`, sub: g.sub,
          children: slice, w: 0, h: GROUP_H, leafCount: 0, synthetic: true};
        for (const c of slice) this.items.get(c)!.parent = id;
        this.items.set(id, it);
        parts.push(id);
      }
      g.children = parts;
    }
    for (const c of g.children) if (this.items.get(c)!.kind === 'group') this.chunk(c);
  }

  private computeCounts(id: string, d: number): number {
    const it = this.items.get(id)!;
    this.depth.set(id, d);
    if (it.kind === 'node') return 1;
    let n = 0;
    for (const c of it.children) n += this.computeCounts(c, d + 1);
    it.leafCount = n;
    if (id !== ROOT) it.w = Math.min(340, Math.max(150, textWidth(it.label, 7) + 140));
    return n;
  }

  ancestors(id: string): string[] {   // from root to parent
    const out: string[] = [];
    let p = this.items.get(id)?.parent ?? null;
    while (p !== null) { out.push(p); p = this.items.get(p)!.parent; }
    return out.reverse();
  }

  private liftEdge(u: string, v: string) {
    const au = this.ancestors(u), av = this.ancestors(v);
    let i = 0;
    while (i < au.length && i < av.length && au[i] === av[i]) i++;
    const lca = au[i - 1];
    const cu = i < au.length ? au[i] : u;
    const cv = i < av.length ? av[i] : v;
    if (cu === cv) return;
    let m = this.levelEdges.get(lca);
    if (!m) this.levelEdges.set(lca, m = new Map());
    m.set(cu + '\u0000' + cv, [cu, cv]);
  }

  hierarchy(): Hierarchy {
    const items: Record<string, HItem> = {};
    for (const [k, v] of this.items) items[k] = v;
    const levelEdges: Record<string, [string, string][]> = {};
    for (const [k, m] of this.levelEdges) levelEdges[k] = [...m.values()];
    return {items, levelEdges};
  }

  /** Recompute per-group degraded counts after node statuses changed (thresholds). */
  refreshStatus() {
    this.degradedIn.clear();
    for (const n of this.nodes.values()) {
      if (!n.degraded) continue;
      for (const a of this.ancestors(n.id)) this.degradedIn.set(a, (this.degradedIn.get(a) ?? 0) + 1);
    }
  }

  /** Default expansion: breadth-first while the number of visible boxes stays under `budget`. */
  defaultExpanded(budget = EXPAND_BUDGET): Set<string> {
    const exp = new Set<string>([ROOT]);
    let visible = this.items.get(ROOT)!.children.length;
    const queue = [...this.items.get(ROOT)!.children];
    while (queue.length) {
      const id = queue.shift()!;
      const it = this.items.get(id)!;
      if (it.kind !== 'group') continue;
      const add = it.children.length - 1;
      if (visible + add > budget && !(it.children.length === 1)) continue;
      exp.add(id); visible += add;
      queue.push(...it.children);
    }
    return exp;
  }

  /** The visible box that represents `id` given the expanded set (itself or its top-most collapsed ancestor). */
  rep(id: string, expanded: Set<string>): string {
    for (const a of this.ancestors(id)) if (!expanded.has(a)) return a;
    return id;
  }
}

function push(m: Map<string, string[]>, k: string, v: string) {
  const a = m.get(k);
  if (a) { if (!a.includes(v)) a.push(v); } else m.set(k, [v]);
}
