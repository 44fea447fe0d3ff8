// Hierarchical graph model: nodes grouped by their module scope (node.group = "blocks/1", recovered by the backend
// from the torch.fx names, see tb_xquant_plugin/model/scopes.py), groups nested by path prefix. Levels with more than
// CHUNK_ABOVE direct children are split into synthetic "part" groups (stretches cut where few edges cross), so that
// a flat model still opens on a readable number of boxes and no layout call sees more than CHUNK_ABOVE boxes.
import type {GraphNode} from '../api';
import {CHUNK_ABOVE, GROUP_H, NODE_H, OPEN_MAX_BOXES, OPEN_MIN_BOXES, ROOT_PARTS} from '../constants';

export const ROOT = '\u29c9';          // id of the root group
export const GPREFIX = '\u29c9g:';     // prefix of group ids (cannot collide with node ids in practice)
const LEVEL = '\u29c9level:';        // hierarchyFor's mark of a group whose level was given

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
  /** degraded leaf count per group, and the judges that marked a layer inside it (in NODE_JUDGES order of first sight) */
  degradedIn = new Map<string, number>();
  judgesIn = new Map<string, string[]>();
  private num = new Map<string, number>();
  private succNum: number[][] = [];
  private stamp = new Int32Array(0);
  private slot = new Int32Array(0);
  private chunkPass = 0;

  constructor(nodes: GraphNode[]) {
    const root: HItem = {id: ROOT, kind: 'group', parent: null, label: '', sub: '', children: [], w: 0, h: 0, leafCount: 0};
    this.items.set(ROOT, root);
    this.depth.set(ROOT, 0);
    const groupOf = new Map<string, string>();   // scope path -> group id, so a node's group costs one lookup
    const ensureGroup = (path: string): string => {
      if (!path) return ROOT;
      const known = groupOf.get(path);
      if (known !== undefined) return known;
      const id = GPREFIX + path;
      groupOf.set(path, id);
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
      this.items.set(n.id, {id: n.id, kind: 'node', parent, label, sub: n.op ?? '', children: [], w: 0, h: NODE_H, leafCount: 1});
      this.items.get(parent)!.children.push(n.id);
    }
    this.flatten(ROOT);
    for (const n of this.nodes.values()) {
      for (const src of n.inputs ?? []) {
        if (!this.nodes.has(src) || src === n.id) continue;
        push(this.succ, src, n.id);
        push(this.pred, n.id, src);
      }
    }
    // node numbers and numbered successors, for chunk()
    let k = 0;
    for (const id of this.nodes.keys()) this.num.set(id, k++);
    this.succNum = [...this.nodes.keys()].map((id) => (this.succ.get(id) ?? []).map((v) => this.num.get(v)!));
    this.stamp = new Int32Array(k); this.slot = new Int32Array(k);
    const parts: HItem[] = [];
    this.chunk(ROOT, parts);
    // labels relative to the scope drawn around them (after single-child scopes were merged away)
    const prefixOf = new Map<string, string>();
    for (const it of this.items.values()) {
      if (it.kind !== 'node') continue;
      const scope = this.items.get(it.parent!)?.sub ?? '';
      let prefix = prefixOf.get(scope);
      if (prefix === undefined) prefixOf.set(scope, prefix = scopePrefix(scope));
      it.label = stripScope(it.label, prefix);
      it.w = Math.min(240, Math.max(72, Math.max(textWidth(it.label, 7), textWidth(it.sub, 6)) + 26));
    }
    for (const it of parts) it.label = this.partLabel(it);
    this.computeCounts(ROOT, 0);
    for (const [u, vs] of this.succ) for (const v of vs) this.liftEdge(u, v);
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

  /** Splits a level of more than CHUNK_ABOVE children (the top level: OPEN_MAX_BOXES) into "part" groups of about √n consecutive children (graph
   *  order), cut where the fewest edges of the level cross, so that a part is a stretch of blocks rather than an
   *  arbitrary slice; again on the parts while there are too many of them. Parts are stretches of a topological
   *  order, so the grouped graph stays acyclic. */
  private chunk(gid: string, made: HItem[]) {
    const g = this.items.get(gid)!;
    // the top level is split above OPEN_MAX_BOXES already, so that the first view can stay within it
    const limit = gid === ROOT ? Math.min(CHUNK_ABOVE, OPEN_MAX_BOXES) : CHUNK_ABOVE;
    while (g.children.length > limit) {
      const kids = g.children;
      const n = kids.length;
      // about √n parts; at the top level at most ROOT_PARTS (parts that are too big are split in their turn)
      const p = gid === ROOT ? Math.min(ROOT_PARTS, Math.ceil(Math.sqrt(n))) : Math.ceil(Math.sqrt(n));
      const size = n / p;
      // crossing[i]: edges of this level from a child at or before i to one after i (the level's nodes stamped
      // with this pass's number and their child's index, so nothing is cleared between passes)
      const pass = ++this.chunkPass;
      const under: number[] = [];
      kids.forEach((c, i) => this.eachLeaf(c, (leaf) => {
        const k = this.num.get(leaf)!;
        this.stamp[k] = pass; this.slot[k] = i; under.push(k);
      }));
      const diff = new Int32Array(n + 1);
      for (const k of under) {
        const i = this.slot[k];
        for (const v of this.succNum[k]) {
          if (this.stamp[v] !== pass) continue;
          const j = this.slot[v];
          if (j !== i) { diff[Math.min(i, j)]++; diff[Math.max(i, j)]--; }
        }
      }
      const crossing = new Int32Array(n);
      for (let i = 0, run = 0; i < n; i++) { run += diff[i]; crossing[i] = run; }
      const cuts: number[] = [];   // cut after these indexes
      let prev = -1;
      for (let k = 1; k < p; k++) {
        const t = Math.round(k * size) - 1, w = Math.max(1, Math.floor(size / 3));
        let best = -1;
        for (let i = Math.max(prev + 2, t - w); i <= Math.min(n - 2, t + w); i++) {
          if (best < 0 || crossing[i] < crossing[best] || (crossing[i] === crossing[best] && Math.abs(i - t) < Math.abs(best - t))) best = i;
        }
        if (best >= 0) { cuts.push(best); prev = best; }
      }
      cuts.push(n - 1);
      const partIds: string[] = [];
      let start = 0;
      cuts.forEach((end, k) => {
        const id = `${gid}#${n}.${k}`;
        const slice = kids.slice(start, end + 1);
        start = end + 1;
        const it: HItem = {id, kind: 'group', parent: gid, label: `part ${k + 1}`, sub: g.sub, children: slice, w: 0, h: GROUP_H,
          leafCount: 0, synthetic: true};
        for (const c of slice) this.items.get(c)!.parent = id;
        this.items.set(id, it);
        made.push(it);
        partIds.push(id);
      });
      g.children = partIds;
    }
    for (const c of g.children) if (this.items.get(c)!.kind === 'group') this.chunk(c, made);
  }

  /** Calls `f` with every node id under an item. */
  private eachLeaf(id: string, f: (leaf: string) => void) {
    const stack = [id];
    while (stack.length) {
      const it = this.items.get(stack.pop()!)!;
      if (it.kind === 'node') f(it.id); else for (const c of it.children) stack.push(c);
    }
  }

  /** "first … last" of a part: its first and last module-named member (a scope, or a layer), else its first and
   *  last child. */
  private partLabel(it: HItem): string {
    const named = it.children.filter((c) => { const x = this.items.get(c)!; return x.kind === 'group' || !!this.nodes.get(c)?.layer; });
    const use = named.length ? named : it.children;
    // a member's name up to its second token (`blocks_128_conv_add_88_collapsed` -> `blocks_128`, `stage3_0/branch2`
    // -> `stage3_0`): parts are stretches of blocks, so the block names say where they are
    const lab = (c: string) => {
      const x = this.items.get(c)!;
      const l = x.synthetic ? x.label.replace(/ … .*| \(part\)$/, '') : x.label;
      const head = l.split('/')[0];
      return head.split('_').slice(0, 2).join('_') || l;
    };
    const first = lab(use[0]), last = lab(use[use.length - 1]);
    return first === last ? `${first} (part)` : `${first} … ${last}`;
  }

  private computeCounts(id: string, d: number): number {
    const it = this.items.get(id)!;
    this.depth.set(id, d);
    if (it.kind === 'node') return 1;
    let n = 0;
    for (const c of it.children) n += this.computeCounts(c, d + 1);
    it.leafCount = n;
    if (id !== ROOT) it.w = Math.min(340, Math.max(124, textWidth(it.label, 7) + 100));
    return n;
  }

  ancestors(id: string): string[] {   // from root to parent
    const out: string[] = [];
    let p = this.items.get(id)?.parent ?? null;
    while (p !== null) { out.push(p); p = this.items.get(p)!.parent; }
    return out.reverse();
  }

  /** Files the edge u -> v (two nodes) at the level of their lowest common group, between the children of that
   *  group holding them: both climbed to the same depth, then together until their parents meet (depth from
   *  computeCounts). */
  private liftEdge(u: string, v: string) {
    let cu = u, cv = v;
    let du = this.depth.get(u)!, dv = this.depth.get(v)!;
    const up = (id: string) => this.items.get(id)!.parent!;
    while (du > dv) { cu = up(cu); du--; }
    while (dv > du) { cv = up(cv); dv--; }
    while (cu !== cv && up(cu) !== up(cv)) { cu = up(cu); cv = up(cv); }
    if (cu === cv) return;
    const lca = up(cu);
    let m = this.levelEdges.get(lca);
    if (!m) this.levelEdges.set(lca, m = new Map());
    m.set(cu + '\u0000' + cv, [cu, cv]);
  }

  /** What a layout with these groups expanded needs of the hierarchy and `sent` does not hold yet: each group's
   *  level (its children, at their collapsed sizes, and the edges between them) and the chain of groups above it.
   *  Adds what it returns to `sent`, so the layout worker is given each item once, when a view first shows it,
   *  instead of the whole graph up front. */
  hierarchyFor(expanded: Iterable<string>, sent: Set<string>): Hierarchy {
    const items: Record<string, HItem> = {};
    const levelEdges: Record<string, [string, string][]> = {};
    const give = (id: string) => {
      if (sent.has(id)) return;
      const it = this.items.get(id);
      if (!it) return;
      sent.add(id);
      items[id] = it;
    };
    for (const g of expanded) {
      const it = this.items.get(g);
      const level = LEVEL + g;
      if (!it || it.kind !== 'group' || sent.has(level)) continue;
      sent.add(level);
      for (let p: string | null = g; p !== null; p = this.items.get(p)?.parent ?? null) give(p);
      for (const c of it.children) give(c);
      const m = this.levelEdges.get(g);
      if (m) levelEdges[g] = [...m.values()];
    }
    return {items, levelEdges};
  }

  /** Recompute per-group degraded counts and judge marks after node statuses changed (thresholds). */
  refreshStatus() {
    this.degradedIn.clear();
    this.judgesIn.clear();
    for (const n of this.nodes.values()) {
      if (!n.degraded && !n.judges?.length) continue;
      for (const a of this.ancestors(n.id)) {
        if (n.degraded) this.degradedIn.set(a, (this.degradedIn.get(a) ?? 0) + 1);
        for (const j of n.judges ?? []) {
          const js = this.judgesIn.get(a);
          if (!js) this.judgesIn.set(a, [j]); else if (!js.includes(j)) js.push(j);
        }
      }
    }
  }

  /** The first view's expanded groups: scope levels opened one after the other while all the boxes they show stay
   *  at most `max`; at the level where they stop fitting, only the groups holding degraded layers are opened (those
   *  that fit, most degraded first), or, while fewer than `min` boxes show or when nothing is degraded, the smallest
   *  groups that fit. Single-child scopes were merged when the model was built, so they never cost a level. */
  openExpanded(min = OPEN_MIN_BOXES, max = OPEN_MAX_BOXES): Set<string> {
    const exp = new Set<string>([ROOT]);
    const kids = (id: string) => this.items.get(id)!.children;
    const groupsIn = (ids: string[]) => ids.filter((c) => this.items.get(c)!.kind === 'group');
    let visible = kids(ROOT).length;
    let frontier = groupsIn(kids(ROOT));
    while (frontier.length) {
      const full = visible + frontier.reduce((s, g) => s + kids(g).length - 1, 0);
      if (full <= max) {
        for (const g of frontier) exp.add(g);
        visible = full;
        frontier = groupsIn(frontier.flatMap(kids));
        continue;
      }
      const deg = (g: string) => this.degradedIn.get(g) ?? 0;
      const order = frontier.slice().sort((a, b) => (deg(b) - deg(a)) || (kids(a).length - kids(b).length));
      // nothing degraded anywhere: the whole graph is what the view shows, so the smaller scopes fill the budget
      const fill = !this.degradedIn.get(ROOT);
      const next: string[] = [];
      for (const g of order) {
        const add = kids(g).length - 1;
        if (visible + add > max) continue;
        if (!deg(g) && visible >= min && !fill) continue;
        exp.add(g); visible += add;
        next.push(...groupsIn(kids(g)));
      }
      // nothing fits and the view is still nearly empty: open the smallest group anyway
      if (!next.length && visible < min) {
        const g = frontier.filter((f) => !exp.has(f)).sort((a, b) => kids(a).length - kids(b).length)[0];
        if (g) { exp.add(g); visible += kids(g).length - 1; next.push(...groupsIn(kids(g))); }
      }
      frontier = next;
    }
    return exp;
  }

  /** Expanded groups inside `gid` (itself included), deepest first. */
  expandedWithin(gid: string, expanded: Set<string>): string[] {
    return [...expanded].filter((id) => id === gid || this.ancestors(id).includes(gid))
      .sort((a, b) => (this.depth.get(b) ?? 0) - (this.depth.get(a) ?? 0));
  }

  /** The visible box that represents `id` given the expanded set (itself or its top-most collapsed ancestor). */
  rep(id: string, expanded: Set<string>): string {
    for (const a of this.ancestors(id)) if (!expanded.has(a)) return a;
    return id;
  }
}

/** A node's label inside its scope: torch.fx names a call of module `a.b.conv` `a_b_conv` (MCT appends `_layer`
 *  to wrapped layers), so inside scope `a/b` the node reads `conv`. Names that do not start with the scope stay. */
export function shortLabel(name: string, scope: string): string {
  return stripScope(name, scopePrefix(scope));
}

/** `a/b` -> `a_b_`, the start of the names torch.fx gives inside that scope ('' for the root). */
function scopePrefix(scope: string): string {
  return scope ? scope.split('/').join('_') + '_' : '';
}

function stripScope(name: string, prefix: string): string {
  const bare = name.endsWith('_layer') && name.length > 6 ? name.slice(0, -6) : name;
  if (!prefix) return bare;
  return bare.startsWith(prefix) && bare.length > prefix.length ? bare.slice(prefix.length) : bare;
}

function push(m: Map<string, string[]>, k: string, v: string) {
  const a = m.get(k);
  if (a) { if (!a.includes(v)) a.push(v); } else m.set(k, [v]);
}
