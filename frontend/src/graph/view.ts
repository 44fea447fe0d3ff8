// Canvas graph view: zoom, pan, fit, search, keyboard navigation, collapsible name-scope groups.
import type {GraphNode} from '../api';
import {fmt} from '../api';
import type {CompareMark} from '../compare';
import {ARROW_MIN_ZOOM, BADGE_TEXT, CANVAS_FONT, FIT_ZOOM_MAX, FIT_ZOOM_MIN, HEADER, INITIAL_ZOOM_MAX, INITIAL_ZOOM_MIN, LABEL_PX,
  LEGIBLE_PX, NODE_JUDGES, OPEN_MIN_BOXES, SEARCH_HITS_MAX, SEARCH_MATCH, TEXT_MIN_ZOOM, WHEEL_ZOOM_PER_LINE, WHEEL_ZOOM_PER_PIXEL, ZOOM_IN_BELOW,
  ZOOM_IN_TO, ZOOM_MAX, ZOOM_MIN, ZOOM_STEP_IN, ZOOM_STEP_OUT, FIT_MARGIN, DEFAULT_FOLD, FOLD_TRIES} from '../constants';
import {clear, h, judgeMark} from '../dom';
import {palette} from '../theme';
import {LayoutClient} from './client';
import type {Box, Edge, LayoutResult, LayoutStats} from './layout';
import {GraphModel, ROOT} from './model';

export interface GraphViewCallbacks {
  onSelect(nodeId: string, layer: string | null): void;
}

interface Transform { k: number; tx: number; ty: number }
type Rect = {x: number; y: number; w: number; h: number};
/** The zoom at which labels are LEGIBLE_PX on screen. */
const LEGIBLE_K = LEGIBLE_PX / LABEL_PX;
/** What one layout call cost, for the tests' budget checks (window.__xquant.layoutLog()). */
export interface LayoutLogEntry extends LayoutStats {
  reason: string; boxes: number;
  /** from the request to the result on the main thread, and the layout's own time in the worker */
  ms: number; workerMs: number;
}

export class GraphView {
  readonly el: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private search: HTMLInputElement;
  private results: HTMLElement;
  private status: HTMLElement;
  private compareLegend: HTMLElement;
  private model: GraphModel | null = null;
  /** the nodes of the last setGraph, to tell a new structure from new statuses */
  private lastNodes: GraphNode[] = [];
  private expanded = new Set<string>([ROOT]);
  private layoutRes: LayoutResult | null = null;
  private boxById = new Map<string, Box>();
  private visSucc = new Map<string, string[]>();
  private visPred = new Map<string, string[]>();
  private t: Transform = {k: 1, tx: 0, ty: 0};
  private client = new LayoutClient();
  private layoutSeq = 0;
  private frame = 0;
  private selectedNode: string | null = null;
  private focusId: string | null = null;
  private hoverId: string | null = null;
  private matches = new Set<string>();
  private compare: Map<string, CompareMark> | null = null;     // layer name -> status, badge, deltas
  /** badge text drawn on each node in the last frame (node id -> text), for the test hook */
  private drawnBadges = new Map<string, string>();
  private width = 0; private height = 0; private dpr = 1;
  /** a layout that wants its first view was installed while the canvas had no size: resize() makes it */
  private pendingFit = false;
  private layoutDone: Promise<void> = Promise.resolve();
  /** screen position of the box being toggled, kept there by the next layout */
  private anchor: {id: string; x: number; y: number} | null = null;
  /** the canvas height at the legible zoom (world px) when the first view was made, and the fold height it chose
   *  (kept by later layouts so that expanding a scope does not re-arrange the columns) */
  private foldHeight = DEFAULT_FOLD;
  private fold = 0;
  /** the next first view shows the whole graph (Expand all / Collapse all) instead of the degraded layers */
  private viewAll = false;
  /** canvas size when the first view was made, and whether the user has left that view alone since */
  private openedAt: {w: number; h: number} | null = null;
  private pristine = false;
  private settleTimer = 0;
  /** the first view being made (openView runs one at a time), and a number that tells a superseded one */
  private opening: Promise<void> = Promise.resolve();
  private openGen = 0;
  /** every layout call of the current model */
  private log: LayoutLogEntry[] = [];

  constructor(private cb: GraphViewCallbacks) {
    this.canvas = h('canvas', {class: 'graph-canvas', tabindex: '0', 'aria-label': 'Model graph. Arrow keys move along edges, Enter selects, / searches, f fits.', dataset: {state: 'empty'}});
    this.ctx = this.canvas.getContext('2d')!;
    this.search = h('input', {class: 'search', type: 'search', placeholder: 'Search layer ( / )', 'aria-label': 'Search layer by name'});
    this.results = h('div', {class: 'search-results', role: 'listbox'});
    this.status = h('span', {class: 'graph-status muted'});
    const btn = (label: string, title: string, fn: () => void) => h('button', {class: 'btn small', title, text: label, onclick: fn});
    const toolbar = h('div', {class: 'graph-toolbar'},
      h('div', {class: 'search-wrap'}, this.search, this.results),
      btn('Fit', 'Fit the graph to the view (f)', () => this.fit()),
      btn('+', 'Zoom in', () => this.zoomBy(ZOOM_STEP_IN)),
      btn('−', 'Zoom out', () => this.zoomBy(ZOOM_STEP_OUT)),
      btn('Expand all', 'Expand every group (slow for very large graphs)', () => this.expandAll()),
      btn('Collapse all', 'Collapse all groups', () => this.collapseAll()),
      this.status);
    const legend = h('div', {class: 'graph-legend muted'},
      h('span', {class: 'swatch degraded'}), 'degraded ',
      h('span', {class: 'swatch selected'}), 'selected ',
      ...NODE_JUDGES.map((j) => {
        const m = judgeMark(j);
        const s = h('span', {class: 'judge-chip', title: m.title, text: m.letter}); s.style.background = m.color;
        return h('span', {class: 'legend-item', title: m.title}, s, ' ' + m.title.split(' (')[0] + ' ');
      }));
    this.compareLegend = h('span', {class: 'legend-item compare-legend', hidden: true},
      h('span', {class: 'swatch improved'}), '▲ improved ', h('span', {class: 'swatch worse'}), '▼ worse (B vs A; badge: Δ of the worst metric, hover for all)');
    legend.appendChild(this.compareLegend);
    this.el = h('div', {class: 'graph-view'}, toolbar, h('div', {class: 'canvas-wrap'}, this.canvas), legend);
    this.bind();
    new ResizeObserver(() => this.resize()).observe(this.canvas);
  }

  // ---------------------------------------------------------------- data
  /** Sets the graph. Re-lays out only when the structure changed; status changes just redraw. */
  async setGraph(nodes: GraphNode[]) {
    const same = this.model !== null && sameStructure(this.lastNodes, nodes);
    this.lastNodes = nodes;
    if (this.model && same) {
      for (const n of nodes) { const m = this.model.nodes.get(n.id); if (m) Object.assign(m, n); }
      this.model.refreshStatus();
      this.publishCounts();
      this.requestDraw();
      return;
    }
    const t0 = performance.now();
    performance.mark('xq:setGraph');
    this.model = new GraphModel(nodes);
    this.layoutRes = null;          // the old layout belongs to the old model
    this.boxById.clear();
    this.layoutSeq++;               // drop any layout still in flight for the old model
    this.expanded = this.model.openExpanded();
    const sent = new Set<string>(), model = this.model;
    this.client.init((expanded) => model.hierarchyFor(expanded, sent));
    this.pendingFit = false;
    this.viewAll = false;
    this.log = [];
    this.publishCounts();
    this.canvas.dataset.modelMs = String(Math.round(performance.now() - t0));
    await this.openView();
    this.canvas.dataset.firstDrawMs = String(Math.round(performance.now() - t0));
    performance.mark('xq:firstDraw');
  }

  /** The first view: the scope level of about OPEN_MIN_BOXES..OPEN_MAX_BOXES boxes (model.openExpanded), then
   *  scopes collapsed again, one per step, until the degraded layers (or, without any, the whole graph) fit in the
   *  canvas at a legible zoom. Each step re-places laid-out levels only (no dagre run). */
  private openView(reason = 'open'): Promise<void> {
    // one first view at a time: a resize during one waits for it and then re-checks (settle)
    const run = this.opening.then(() => this.openViewNow(reason));
    this.opening = run.catch(() => undefined);
    return run;
  }

  private async openViewNow(reason: string) {
    const model = this.model;
    if (!model) return;
    const gen = ++this.openGen;
    const stale = () => this.model !== model || gen !== this.openGen;
    this.expanded = model.openExpanded();
    this.viewAll = false;
    this.foldHeight = this.height > 100 ? Math.max(240, (this.height - 2 * FIT_MARGIN) / LEGIBLE_K) : DEFAULT_FOLD;
    this.fold = 0;
    this.openedAt = {w: this.width, h: this.height};
    this.pristine = true;
    await this.relayout(reason, false, true);
    for (let i = 0; i < 24 && this.layoutRes && this.width > 20 && this.height > 20; i++) {
      if (stale() || !this.pristine) return;
      if (this.fitsLegibly(this.focusRect(this.layoutRes))) break;
      const victim = this.collapseVictim();
      if (!victim) break;
      for (const id of model.expandedWithin(victim, this.expanded)) this.expanded.delete(id);
      await this.relayout(reason + ':collapse ' + (model.items.get(victim)?.sub ?? victim), false, true);
    }
    if (!stale() && this.layoutRes) this.canvas.dataset.state = 'ready';
  }

  /** The canvas changed size since the first view was made (the summary above it rendered, the window was
   *  resized) and the user has not moved or changed the view yet: make the first view again for the new size. */
  async settle() {
    await this.opening;
    await this.layoutDone;
    this.measure();   // the ResizeObserver may not have reported the new size yet
    const o = this.openedAt;
    if (!this.model || !this.pristine || !o || this.width < 20 || this.height < 20) return;
    if (Math.abs(o.w - this.width) < 24 && Math.abs(o.h - this.height) < 24) return;
    await this.openView('open:resized');
  }
  /** The user moved, zoomed or changed the view: it is no longer re-made on resize. */
  private touched() { this.pristine = false; }

  /** A scope to collapse when the first view does not fit: the largest expanded one without degraded layers, else
   *  the deepest one holding some (collapsed, it still shows their count). Scopes showing three boxes or fewer gain
   *  nothing when collapsed and stay; none is collapsed when that would leave fewer than OPEN_MIN_BOXES boxes. */
  private collapseVictim(): string | null {
    const m = this.model, r = this.layoutRes;
    if (!m || !r) return null;
    const shown = r.boxes.filter((b) => !b.expanded).length;
    let best: string | null = null, bestScore = -Infinity;
    for (const id of this.expanded) {
      if (id === ROOT) continue;
      const b = this.boxById.get(id);
      if (!b) continue;
      const inside = r.boxes.filter((x) => !x.expanded && m.ancestors(x.id).includes(id)).length;
      if (inside <= 3 || shown - inside + 1 < OPEN_MIN_BOXES) continue;
      const deg = m.degradedIn.get(id) ?? 0;
      const area = Math.min(b.w * b.h, 1e9 - 1);
      const score = deg ? (m.depth.get(id) ?? 0) * 1e9 + area : 1e12 + area;
      if (score > bestScore) { bestScore = score; best = id; }
    }
    return best;
  }

  /** World rectangle of the boxes standing for degraded layers (red nodes, collapsed groups holding some), with
   *  room for their badges; the whole graph when nothing is degraded. */
  focusRect(r: LayoutResult): Rect {
    let x0 = Infinity, y0 = Infinity, x1 = -Infinity, y1 = -Infinity;
    for (const b of r.boxes) {
      if (b.expanded || !this.degradedShown(b)) continue;
      x0 = Math.min(x0, b.x - 6); y0 = Math.min(y0, b.y - 12); x1 = Math.max(x1, b.x + b.w + 6); y1 = Math.max(y1, b.y + b.h + 6);
    }
    if (!Number.isFinite(x0)) return {x: 0, y: 0, w: r.width, h: r.height};
    return {x: x0, y: y0, w: x1 - x0, h: y1 - y0};
  }
  private degradedShown(b: Box): number {
    if (!this.model) return 0;
    if (b.kind === 'group') return this.model.degradedIn.get(b.id) ?? 0;
    return this.model.nodes.get(b.id)?.degraded ? 1 : 0;
  }
  private fitsLegibly(f: Rect): boolean {
    return f.w * LEGIBLE_K <= this.width - 2 * FIT_MARGIN && f.h * LEGIBLE_K <= this.height - 2 * FIT_MARGIN;
  }

  clearGraph(message: string) {
    this.model = null; this.lastNodes = []; this.layoutRes = null; this.boxById.clear();
    this.canvas.dataset.state = 'empty';
    this.canvas.dataset.degradedCount = '0';
    this.canvas.dataset.drawnDegraded = '0';
    this.canvas.dataset.nodeCount = '0';
    this.status.textContent = message;
    this.requestDraw();
  }

  setCompare(marks: Map<string, CompareMark> | null) {
    this.compare = marks;
    this.canvas.dataset.compare = marks ? 'on' : 'off';
    this.compareLegend.hidden = !marks;
    this.requestDraw();
  }

  /** Badge text drawn on a node in the last frame (null when the node was not drawn or has no badge). */
  drawnBadge(nodeId: string): string | null { return this.drawnBadges.get(nodeId) ?? null; }
  /** Hover text of a node or group (the canvas title while the pointer is over it). */
  hoverText(id: string): string | null { const b = this.boxById.get(id); return b && this.model ? this.tooltip(b) : null; }

  private publishCounts() {
    if (!this.model) return;
    let deg = 0;
    for (const n of this.model.nodes.values()) if (n.degraded) deg++;
    this.canvas.dataset.degradedCount = String(deg);
    this.canvas.dataset.nodeCount = String(this.model.nodes.size);
  }

  /** Lays out the current expansion (levels shown for the first time run dagre, the others are only re-placed).
   *  `final`: mark the canvas ready afterwards (the first view's steps leave that to openView). */
  private relayout(reason = 'layout', final = true, fit = false): Promise<void> {
    if (!this.model) return Promise.resolve();
    const seq = ++this.layoutSeq;
    this.canvas.dataset.state = 'layout';
    this.status.textContent = 'Laying out…';
    const t0 = performance.now();
    // the first view tries a few fold heights and keeps the one that fits the canvas best; later layouts keep it
    const opening = fit && !this.viewAll;
    const h = this.foldHeight;
    const opts = opening && this.width > 20 && this.height > 20
      ? {folds: FOLD_TRIES.map((f) => f * h), view: {w: (this.width - 2 * FIT_MARGIN) / LEGIBLE_K, h: (this.height - 2 * FIT_MARGIN) / LEGIBLE_K}}
      : {folds: [this.fold || h]};
    const p = this.client.layout([...this.expanded], opts).then((res) => {
      if (seq !== this.layoutSeq) return;
      this.canvas.dataset.layoutMode = this.client.mode;   // 'worker', or 'main-thread' where workers cannot start
      this.fold = res.fold;
      const anchor = this.anchor;
      this.anchor = null;
      this.layoutRes = res;
      this.boxById.clear();
      for (const b of res.boxes) this.boxById.set(b.id, b);
      this.buildVisibleAdjacency();
      if (fit) {
        this.pendingFit = !(this.width > 20 && this.height > 20);
        if (!this.pendingFit) this.initialView();
      } else if (anchor) {
        // keep the box the user expanded or collapsed where it was on screen, then bring an expanded one into view
        const b = this.boxById.get(anchor.id);
        if (b) {
          this.t.tx = anchor.x - b.x * this.t.k; this.t.ty = anchor.y - b.y * this.t.k;
          if (b.expanded) this.reveal(b);
        }
      }
      const ms = performance.now() - t0;
      const st = res.stats;
      this.log.push({...st, reason, boxes: res.boxes.length, ms: Math.round(ms), workerMs: Math.round(res.ms * 10) / 10});
      this.canvas.dataset.layoutMs = String(Math.round(ms));
      this.canvas.dataset.visibleCount = String(res.boxes.length);
      this.canvas.dataset.boxCount = String(res.boxes.filter((b) => !b.expanded).length);
      this.canvas.dataset.layoutMode = this.client.mode;
      this.canvas.dataset.dagreNodes = String(st.dagreNodes);
      this.status.textContent = `${this.model!.nodes.size} nodes, ${res.boxes.filter((b) => !b.expanded).length} boxes shown · ` +
        `layout ${Math.round(ms)} ms (${this.client.mode}; ${st.dagreCalls ? `dagre on ${st.dagreNodes} boxes` : 'no dagre run'})`;
      this.drawNow();
      if (final) this.canvas.dataset.state = 'ready';
    }).catch((e) => {
      if (seq !== this.layoutSeq) return;
      this.canvas.dataset.state = 'error';
      this.status.textContent = 'Layout failed: ' + (e as Error).message;
      console.warn('xquant layout failed', e);
    });
    this.layoutDone = p;
    return p;
  }

  /** Every layout call of the current model and its work (for the tests). */
  layoutLog(): LayoutLogEntry[] { return this.log.map((e) => ({...e})); }

  /** What the canvas shows, in canvas CSS pixels (for the tests): zoom, on-screen label size, the boxes drawn
   *  (leaves and collapsed scopes) with their degraded counts, the frames of the expanded scopes, and the rectangle
   *  of the degraded ones. */
  viewState() {
    const r = this.layoutRes, {k, tx, ty} = this.t;
    const scr = (b: Rect) => ({x: b.x * k + tx, y: b.y * k + ty, w: b.w * k, h: b.h * k});
    const boxes = (r?.boxes ?? []).filter((b) => !b.expanded).map((b) => ({id: b.id, kind: b.kind, degraded: this.degradedShown(b),
      label: this.model?.items.get(b.id)?.label ?? '', children: this.model?.items.get(b.id)?.children.length ?? 0,
      fanIn: r?.fanIn[b.id] ?? 0, ...scr(b)}));
    const frames = (r?.boxes ?? []).filter((b) => b.expanded).map((b) => ({id: b.id, degraded: this.degradedShown(b),
      label: this.model?.items.get(b.id)?.label ?? '', ...scr(b)}));
    return {k, labelPx: LABEL_PX * k, width: this.width, height: this.height, boxes, frames, focus: r ? scr(this.focusRect(r)) : null,
      expanded: [...this.expanded].filter((id) => id !== ROOT).map((id) => this.model?.items.get(id)?.sub ?? id),
      bundled: r?.stats.bundled ?? 0, foldHeight: this.fold};
  }

  private buildVisibleAdjacency() {
    this.visSucc.clear(); this.visPred.clear();
    if (!this.model) return;
    const repCache = new Map<string, string>();
    const rep = (id: string) => { let r = repCache.get(id); if (!r) repCache.set(id, r = this.model!.rep(id, this.expanded)); return r; };
    for (const [u, vs] of this.model.succ) {
      const ru = rep(u);
      for (const v of vs) {
        const rv = rep(v);
        if (ru === rv) continue;
        addUnique(this.visSucc, ru, rv); addUnique(this.visPred, rv, ru);
      }
    }
  }

  // ---------------------------------------------------------------- expansion / selection
  toggle(gid: string) {
    if (!this.model) return;
    this.touched();
    const b = this.boxById.get(gid);
    if (b) this.anchor = {id: gid, x: b.x * this.t.k + this.t.tx, y: b.y * this.t.k + this.t.ty};
    if (this.expanded.has(gid)) {
      // collapse the group and everything inside it
      for (const id of this.model.expandedWithin(gid, this.expanded)) this.expanded.delete(id);
      this.relayout('collapse ' + (this.model.items.get(gid)?.sub ?? gid));
    } else {
      this.expanded.add(gid);
      this.relayout('expand ' + (this.model.items.get(gid)?.sub ?? gid));
    }
  }
  expandAll() {
    if (!this.model) return;
    this.touched();
    for (const it of this.model.items.values()) if (it.kind === 'group') this.expanded.add(it.id);
    this.viewAll = true;
    this.relayout('expand all', true, true);
  }
  collapseAll() { this.touched(); this.expanded = new Set([ROOT]); this.viewAll = true; this.relayout('collapse all', true, true); }

  /** Select a node (by node id); expands its groups and brings it into view. */
  async selectNode(nodeId: string | null, center = true) {
    this.selectedNode = nodeId;
    if (nodeId) this.touched();
    if (!nodeId || !this.model || !this.model.items.has(nodeId)) { this.requestDraw(); return; }
    const anc = this.model.ancestors(nodeId);
    const missing = anc.filter((a) => !this.expanded.has(a));
    if (missing.length) { for (const a of missing) this.expanded.add(a); await this.relayout('select ' + nodeId); }
    else await this.layoutDone;
    this.focusId = nodeId;
    if (center) this.ensureVisible(nodeId);
    this.requestDraw();
  }

  /** Node for a layer name: quant_report layer, else a node with that short name (verdicts may name
   *  activation nodes that are not quant_report layers), else a node id. */
  nodeIdForLayer(layer: string): string | null {
    const m = this.model;
    if (!m) return null;
    return m.byLayer.get(layer) ?? m.byName.get(layer) ?? (m.nodes.has(layer) ? layer : null);
  }

  /** Center of a node's box in canvas CSS pixels (for tests: a real click at these coordinates selects it). */
  nodePoint(nodeId: string): {x: number; y: number} | null {
    const b = this.boxById.get(nodeId);
    if (!b) return null;
    return {x: (b.x + b.w / 2) * this.t.k + this.t.tx, y: (b.y + b.h / 2) * this.t.k + this.t.ty};
  }

  private ensureVisible(id: string) {
    const b = this.boxById.get(id);
    if (!b) return;
    const x0 = b.x * this.t.k + this.t.tx, y0 = b.y * this.t.k + this.t.ty;
    const x1 = x0 + b.w * this.t.k, y1 = y0 + b.h * this.t.k;
    const zoomIn = this.t.k < ZOOM_IN_BELOW;
    if (zoomIn) this.t.k = ZOOM_IN_TO;
    if (zoomIn || x0 < 10 || y0 < 10 || x1 > this.width - 10 || y1 > this.height - 10) {
      this.t.tx = this.width / 2 - (b.x + b.w / 2) * this.t.k;
      this.t.ty = this.height / 2 - (b.y + b.h / 2) * this.t.k;
    }
    this.requestDraw();
  }

  /** Pans (and zooms out, not below the legible zoom) as little as needed to show a box whole; a box too big for
   *  that starts at the top left of the canvas. */
  private reveal(b: Rect) {
    const m = FIT_MARGIN, W = this.width, H = this.height;
    const need = Math.min((W - 2 * m) / b.w, (H - 2 * m) / b.h);
    if (need < this.t.k) {
      const k = Math.max(LEGIBLE_K, Math.min(need, this.t.k));
      const cx = b.x * this.t.k + this.t.tx, cy = b.y * this.t.k + this.t.ty;   // keep the top left where it is
      this.t = {k, tx: cx - b.x * k, ty: cy - b.y * k};
    }
    const k = this.t.k;
    const shift = (pos: number, size: number, view: number) => {
      if (size > view - 2 * m) return m - pos;                 // too big: start at the margin
      if (pos < m) return m - pos;
      if (pos + size > view - m) return view - m - (pos + size);
      return 0;
    };
    this.t.tx += shift(b.x * k + this.t.tx, b.w * k, W);
    this.t.ty += shift(b.y * k + this.t.ty, b.h * k, H);
  }

  // ---------------------------------------------------------------- view transform
  fit() {
    this.touched();
    const r = this.layoutRes;
    if (!r || !this.width || !this.height) return;
    const m = 24;
    const k = Math.min(FIT_ZOOM_MAX, Math.max(FIT_ZOOM_MIN, Math.min((this.width - 2 * m) / Math.max(r.width, 1), (this.height - 2 * m) / Math.max(r.height, 1))));
    this.t = {k, tx: (this.width - r.width * k) / 2, ty: Math.max(m, (this.height - r.height * k) / 2)};
    this.requestDraw();
  }
  /** First view of a layout: the degraded layers (or the whole graph) fitted at a zoom between legible and
   *  INITIAL_ZOOM_MAX; what does not fit at the legible zoom starts at its top left. After "Expand all" / "Collapse
   *  all" (no degraded focus wanted) the whole graph, never smaller than INITIAL_ZOOM_MIN. */
  private initialView() {
    const r = this.layoutRes;
    if (!r || !this.width || !this.height) return;
    const focus = this.viewAll ? null : this.focusRect(r);
    const f = focus ?? {x: 0, y: 0, w: r.width, h: r.height};
    const m = FIT_MARGIN;
    const fit = Math.min((this.width - 2 * m) / Math.max(f.w, 1), (this.height - 2 * m) / Math.max(f.h, 1));
    const k = focus ? Math.min(INITIAL_ZOOM_MAX, Math.max(LEGIBLE_K, fit)) : Math.min(FIT_ZOOM_MAX, Math.max(INITIAL_ZOOM_MIN, fit));
    // per axis: the whole graph centred when it fits, else the focus centred (or from its start when it does not
    // fit either) without leaving an empty band beside the graph
    const place = (view: number, size: number, f0: number, fs: number) => {
      if (size * k <= view - 2 * m) return (view - size * k) / 2;
      const t = fs * k <= view - 2 * m ? view / 2 - (f0 + fs / 2) * k : m - f0 * k;
      return Math.min(m, Math.max(view - m - size * k, t));
    };
    this.t = {k, tx: place(this.width, r.width, f.x, f.w), ty: place(this.height, r.height, f.y, f.h)};
    this.requestDraw();
  }

  zoomBy(f: number, cx = this.width / 2, cy = this.height / 2) {
    this.touched();
    const k = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, this.t.k * f));
    const real = k / this.t.k;
    this.t.tx = cx - (cx - this.t.tx) * real;
    this.t.ty = cy - (cy - this.t.ty) * real;
    this.t.k = k;
    this.requestDraw();
  }

  /** Reads the canvas size; true when it changed. */
  private measure(): boolean {
    const r = this.canvas.getBoundingClientRect();
    const dpr = window.devicePixelRatio || 1;
    const w = Math.max(1, r.width), hgt = Math.max(1, r.height);
    if (w === this.width && hgt === this.height && dpr === this.dpr) return false;
    this.dpr = dpr; this.width = w; this.height = hgt;
    this.canvas.width = Math.round(this.width * this.dpr);
    this.canvas.height = Math.round(this.height * this.dpr);
    return true;
  }

  private resize() {
    this.measure();
    if (this.pendingFit && this.layoutRes && this.width > 20 && this.height > 20) { this.pendingFit = false; this.initialView(); }
    this.drawNow();
    // a window resize re-makes an untouched first view (the App settles the one after a report load itself)
    if (this.pristine && this.canvas.dataset.state === 'ready') {
      clearTimeout(this.settleTimer);
      this.settleTimer = window.setTimeout(() => void this.settle(), 150);
    }
  }

  // ---------------------------------------------------------------- input
  private hit(x: number, y: number): {box: Box; header: boolean} | null {
    if (!this.layoutRes) return null;
    const wx = (x - this.t.tx) / this.t.k, wy = (y - this.t.ty) / this.t.k;
    const boxes = this.layoutRes.boxes;
    for (let i = boxes.length - 1; i >= 0; i--) {
      const b = boxes[i];
      if (b.expanded) continue;
      if (wx >= b.x && wx <= b.x + b.w && wy >= b.y && wy <= b.y + b.h) return {box: b, header: false};
    }
    let best: Box | null = null;
    for (const b of boxes) {
      if (!b.expanded) continue;
      if (wx >= b.x && wx <= b.x + b.w && wy >= b.y && wy <= b.y + HEADER) if (!best || b.depth > best.depth) best = b;
    }
    return best ? {box: best, header: true} : null;
  }

  private activate(b: Box) {
    if (b.kind === 'group') { this.toggle(b.id); return; }
    const n = this.model?.nodes.get(b.id);
    this.selectedNode = b.id;
    this.focusId = b.id;
    this.requestDraw();
    this.cb.onSelect(b.id, n?.layer ?? null);
  }

  private bind() {
    const c = this.canvas;
    let drag: {x: number; y: number; tx: number; ty: number; moved: boolean} | null = null;
    c.addEventListener('pointerdown', (e) => {
      c.focus({preventScroll: true});
      drag = {x: e.clientX, y: e.clientY, tx: this.t.tx, ty: this.t.ty, moved: false};
      c.setPointerCapture?.(e.pointerId);
    });
    c.addEventListener('pointermove', (e) => {
      const r = c.getBoundingClientRect();
      if (drag) {
        const dx = e.clientX - drag.x, dy = e.clientY - drag.y;
        if (Math.abs(dx) + Math.abs(dy) > 3) drag.moved = true;
        if (drag.moved) { this.touched(); this.t.tx = drag.tx + dx; this.t.ty = drag.ty + dy; this.requestDraw(); }
        return;
      }
      const hit = this.hit(e.clientX - r.left, e.clientY - r.top);
      const id = hit?.box.id ?? null;
      if (id !== this.hoverId) {
        this.hoverId = id;
        c.style.cursor = id ? 'pointer' : 'grab';
        c.title = id ? this.tooltip(hit!.box) : '';
        this.requestDraw();
      }
    });
    c.addEventListener('pointerleave', () => {
      if (drag || !this.hoverId) return;
      this.hoverId = null;
      c.title = '';
      this.requestDraw();
    });
    c.addEventListener('pointerup', (e) => {
      const d = drag; drag = null;
      if (!d || d.moved) return;
      const r = c.getBoundingClientRect();
      const hit = this.hit(e.clientX - r.left, e.clientY - r.top);
      if (hit) this.activate(hit.box);
    });
    c.addEventListener('wheel', (e) => {
      e.preventDefault();
      const r = c.getBoundingClientRect();
      this.zoomBy(Math.exp(-e.deltaY * (e.deltaMode === 1 ? WHEEL_ZOOM_PER_LINE : WHEEL_ZOOM_PER_PIXEL)), e.clientX - r.left, e.clientY - r.top);
    }, {passive: false});
    c.addEventListener('keydown', (e) => this.onKey(e));
    // search
    const runSearch = () => this.runSearch(this.search.value);
    this.search.addEventListener('input', runSearch);
    this.search.addEventListener('keydown', (e) => {
      if (e.key === 'Enter') { const first = this.results.querySelector('button'); if (first) (first as HTMLButtonElement).click(); }
      if (e.key === 'Escape') { this.search.value = ''; this.runSearch(''); c.focus(); }
      if (e.key === 'ArrowDown') { (this.results.querySelector('button') as HTMLButtonElement | null)?.focus(); e.preventDefault(); }
    });
    // global shortcuts
    document.addEventListener('keydown', (e) => {
      const tgt = e.target as HTMLElement;
      const typing = tgt && (tgt.tagName === 'INPUT' || tgt.tagName === 'TEXTAREA' || tgt.tagName === 'SELECT' || tgt.isContentEditable);
      if (typing || e.ctrlKey || e.metaKey || e.altKey || !this.el.isConnected || this.el.offsetParent === null) return;
      if (e.key === '/') { e.preventDefault(); this.search.focus(); this.search.select(); }
      else if (e.key === 'f' && tgt !== c) { e.preventDefault(); this.fit(); }
    });
  }

  private tooltip(b: Box): string {
    if (b.kind === 'group') {
      const it = this.model!.items.get(b.id)!;
      const d = this.model!.degradedIn.get(b.id) ?? 0;
      return `${it.sub || it.label}\n${it.leafCount} nodes${d ? `, ${d} degraded` : ''}\nClick to ${b.expanded ? 'collapse' : 'expand'}`;
    }
    const n = this.model!.nodes.get(b.id)!;
    const lines = [n.id, `op: ${n.op ?? '?'}`];
    if (n.layer && n.layer !== n.name) lines.push(`layer: ${n.layer}`);
    if (n.worst) lines.push(`worst: ${n.worst.metric} (${n.worst.dataset}) = ${fmt(n.worst.value)}`);
    if (n.judges?.length) lines.push('judges: ' + n.judges.join(', '));
    const cm = this.compare && n.layer ? this.compare.get(n.layer) : undefined;
    if (cm) lines.push(...cm.lines);
    return lines.join('\n');
  }

  private runSearch(q: string) {
    clear(this.results);
    this.matches.clear();
    q = q.trim().toLowerCase();
    if (!q || !this.model) { this.requestDraw(); return; }
    const hits: GraphNode[] = [];
    for (const n of this.model.nodes.values()) {
      if (n.id.toLowerCase().includes(q) || (n.layer ?? '').toLowerCase().includes(q) || (n.op ?? '').toLowerCase() === q) {
        this.matches.add(n.id);
        if (hits.length < SEARCH_HITS_MAX) hits.push(n);
      }
    }
    for (const n of hits) {
      this.results.appendChild(h('button', {class: 'search-hit' + (n.degraded ? ' degraded' : ''), role: 'option', onclick: () => {
        this.results.replaceChildren();
        this.selectNode(n.id).then(() => this.cb.onSelect(n.id, n.layer));
        this.canvas.focus();
      }, onkeydown: (e: KeyboardEvent) => {
        const t = e.target as HTMLElement;
        if (e.key === 'ArrowDown') { (t.nextElementSibling as HTMLElement | null)?.focus(); e.preventDefault(); }
        if (e.key === 'ArrowUp') { ((t.previousElementSibling as HTMLElement | null) ?? this.search).focus(); e.preventDefault(); }
      }}, h('span', {text: n.name || n.id}), h('span', {class: 'muted', text: ' ' + (n.op ?? '') + ' · ' + n.id})));
    }
    if (this.matches.size > hits.length) this.results.appendChild(h('div', {class: 'muted small', text: `${this.matches.size - hits.length} more…`}));
    if (!this.matches.size) this.results.appendChild(h('div', {class: 'muted small', text: 'No layer matches'}));
    this.requestDraw();
  }

  private onKey(e: KeyboardEvent) {
    if (!this.layoutRes) return;
    const cur = this.focusId && this.boxById.has(this.focusId) ? this.focusId : (this.selectedNode && this.boxById.has(this.selectedNode) ? this.selectedNode : null);
    const pick = (cands: string[], from: Box | null, dir: 'up' | 'down' | 'left' | 'right'): string | null => {
      let best: string | null = null, bs = Infinity;
      for (const id of cands) {
        const b = this.boxById.get(id);
        if (!b || b.expanded) continue;
        const cx = b.x + b.w / 2, cy = b.y + b.h / 2;
        if (!from) { const s = cy * 10 + cx; if (s < bs) { bs = s; best = id; } continue; }
        const fx = from.x + from.w / 2, fy = from.y + from.h / 2;
        const dx = cx - fx, dy = cy - fy;
        let s: number;
        if (dir === 'left') { if (dx >= -1) continue; s = -dx + 3 * Math.abs(dy); }
        else if (dir === 'right') { if (dx <= 1) continue; s = dx + 3 * Math.abs(dy); }
        else if (dir === 'down') { if (dy <= 1) continue; s = dy + 2 * Math.abs(dx); }
        else { if (dy >= -1) continue; s = -dy + 2 * Math.abs(dx); }
        if (s < bs) { bs = s; best = id; }
      }
      return best;
    };
    const all = () => this.layoutRes!.boxes.map((b) => b.id);
    const from = cur ? this.boxById.get(cur)! : null;
    let next: string | null = null;
    switch (e.key) {
      case 'ArrowDown': next = from ? (pick(this.visSucc.get(from.id) ?? [], from, 'down') ?? pick(this.visSucc.get(from.id) ?? [], null, 'down') ?? pick(all(), from, 'down')) : pick(all(), null, 'down'); break;
      case 'ArrowUp': next = from ? (pick(this.visPred.get(from.id) ?? [], from, 'up') ?? pick(this.visPred.get(from.id) ?? [], null, 'up') ?? pick(all(), from, 'up')) : pick(all(), null, 'up'); break;
      case 'ArrowLeft': next = pick(all(), from, 'left'); break;
      case 'ArrowRight': next = pick(all(), from, 'right'); break;
      case 'Enter': case ' ': if (from) this.activate(from); e.preventDefault(); return;
      case 'f': this.fit(); e.preventDefault(); return;
      case '+': case '=': this.zoomBy(ZOOM_STEP_IN); return;
      case '-': this.zoomBy(ZOOM_STEP_OUT); return;
      default: return;
    }
    e.preventDefault();
    if (next) { this.focusId = next; this.canvas.dataset.focus = next; this.ensureVisible(next); this.requestDraw(); }
  }

  // ---------------------------------------------------------------- drawing
  requestDraw() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => { this.frame = 0; this.drawNow(); });
  }

  drawNow() {
    const t0 = performance.now();
    const ctx = this.ctx, P = palette;
    ctx.setTransform(this.dpr, 0, 0, this.dpr, 0, 0);
    ctx.fillStyle = P.bg;
    ctx.fillRect(0, 0, this.width, this.height);
    const r = this.layoutRes;
    this.drawnBadges.clear();
    if (!r || !this.model) { this.canvas.dataset.drawMs = '0'; this.canvas.dataset.drawnDegraded = '0'; return; }
    const {k, tx, ty} = this.t;
    ctx.setTransform(this.dpr * k, 0, 0, this.dpr * k, this.dpr * tx, this.dpr * ty);
    const vx0 = -tx / k, vy0 = -ty / k, vx1 = (this.width - tx) / k, vy1 = (this.height - ty) / k;
    const inView = (b: {x: number; y: number; w: number; h: number}) => b.x + b.w >= vx0 && b.x <= vx1 && b.y + b.h >= vy0 && b.y <= vy1;
    const showText = k > TEXT_MIN_ZOOM;
    const font = CANVAS_FONT;
    // expanded groups (background)
    for (const b of r.boxes) {
      if (!b.expanded || !inView(b)) continue;
      const it = this.model.items.get(b.id);
      if (!it) continue;
      ctx.fillStyle = P.group;
      ctx.globalAlpha = 0.55 + Math.min(0.4, b.depth * 0.12);
      roundRect(ctx, b.x, b.y, b.w, b.h, 8); ctx.fill();
      ctx.globalAlpha = 1;
      ctx.lineWidth = 1 / Math.max(k, 0.5);
      ctx.strokeStyle = this.hoverId === b.id ? P.accent : P.groupStroke; ctx.stroke();
      if (showText) {
        ctx.fillStyle = P.muted; ctx.font = `600 ${LABEL_PX}px ${font}`; ctx.textBaseline = 'middle';
        const d = this.model.degradedIn.get(b.id) ?? 0;
        ctx.fillText(`− ${it.label}  (${it.leafCount})`, b.x + 8, b.y + 13, b.w - 16);
        if (d) { ctx.fillStyle = P.degraded; ctx.textAlign = 'right'; ctx.fillText(`${d} degraded`, b.x + b.w - 8, b.y + 13); ctx.textAlign = 'left'; }
      }
    }
    // edges: the main path (dagre's routes, smoothed), routes between folded columns, and bundled skip edges
    // (orthogonal, so that the edges sharing a bus draw as one line); the hovered box's edges on top
    const edgeInView = (p: number[]) => {
      let minx = Infinity, maxx = -Infinity, miny = Infinity, maxy = -Infinity;
      for (let i = 0; i < p.length; i += 2) { minx = Math.min(minx, p[i]); maxx = Math.max(maxx, p[i]); miny = Math.min(miny, p[i + 1]); maxy = Math.max(maxy, p[i + 1]); }
      return !(maxx < vx0 || minx > vx1 || maxy < vy0 || miny > vy1);
    };
    const heads: Edge[] = [];
    const hot: Edge[] = [];
    const hover = this.hoverId ? this.boxById.get(this.hoverId) : undefined;
    const hotId = hover && !hover.expanded ? hover.id : null;
    const baseWidth = 1.2 / Math.max(k, 0.6);
    for (const pass of ['main', 'bundle'] as const) {
      ctx.beginPath();
      for (const e of r.edges) {
        if ((e.kind === 'bundle') !== (pass === 'bundle') || e.pts.length < 4 || !edgeInView(e.pts)) continue;
        tracePath(ctx, e);
        if (k > ARROW_MIN_ZOOM) heads.push(e);
        if (hotId && (e.from === hotId || e.to === hotId)) hot.push(e);
      }
      ctx.strokeStyle = P.edge;
      ctx.globalAlpha = pass === 'bundle' ? 0.6 : 1;
      ctx.lineWidth = pass === 'bundle' ? baseWidth * 1.3 : baseWidth;
      ctx.stroke();
      ctx.globalAlpha = 1;
    }
    ctx.fillStyle = P.edge;
    ctx.beginPath();
    for (const e of heads) arrowHead(ctx, e.pts);
    ctx.fill();
    if (hot.length) {
      ctx.strokeStyle = P.accent; ctx.fillStyle = P.accent; ctx.lineWidth = 2.2 / Math.max(k, 0.5);
      ctx.beginPath();
      for (const e of hot) tracePath(ctx, e);
      ctx.stroke();
      ctx.beginPath();
      for (const e of hot) arrowHead(ctx, e.pts);
      ctx.fill();
    }
    // leaves and collapsed groups
    ctx.textBaseline = 'middle';
    // Degraded layers actually drawn: red nodes plus the counts shown on collapsed groups.
    let drawnDegraded = 0;
    for (const b of r.boxes) {
      if (b.expanded || !inView(b)) continue;
      if (b.kind === 'group') drawnDegraded += this.drawGroup(ctx, b, showText, font);
      else drawnDegraded += this.drawNode(ctx, b, showText, font);
    }
    // fan-in summary: how many inputs of a box arrive on the bus
    if (showText) {
      ctx.font = `600 10px ${font}`;
      for (const b of r.boxes) {
        const n = r.fanIn[b.id];
        if (!n || !inView(b)) continue;
        const txt = `+${n}`;
        const w = ctx.measureText(txt).width + 8;
        // a layer: its bottom right corner; a scope (whose corners hold its count and judge marks): across the top
        // edge on the left
        const x = b.kind === 'node' ? b.x + b.w - w - 6 : b.x + 8, y = b.kind === 'node' ? b.y + b.h - 7 : b.y - 7;
        ctx.fillStyle = this.hoverId === b.id ? P.accent : P.edge; roundRect(ctx, x, y, w, 13, 6.5); ctx.fill();
        ctx.fillStyle = BADGE_TEXT; ctx.fillText(txt, x + 4, y + 7);
      }
    }
    this.canvas.dataset.drawnDegraded = String(drawnDegraded);
    this.canvas.dataset.drawMs = (performance.now() - t0).toFixed(2);
  }

  /** Draws a collapsed group; returns the number of degraded layers it shows. */
  private drawGroup(ctx: CanvasRenderingContext2D, b: Box, showText: boolean, font: string): number {
    const P = palette, it = this.model!.items.get(b.id);
    if (!it) return 0;
    const d = this.model!.degradedIn.get(b.id) ?? 0;
    ctx.fillStyle = P.group;
    roundRect(ctx, b.x, b.y, b.w, b.h, 6); ctx.fill();
    ctx.lineWidth = d ? 2 : 1;
    ctx.strokeStyle = this.focusId === b.id || this.hoverId === b.id ? P.accent : d ? P.degraded : P.groupStroke;
    ctx.stroke();
    // stacked look
    ctx.beginPath(); ctx.moveTo(b.x + 4, b.y + b.h + 3); ctx.lineTo(b.x + b.w - 4, b.y + b.h + 3); ctx.strokeStyle = P.groupStroke; ctx.lineWidth = 1; ctx.stroke();
    if (!showText) return d;
    ctx.fillStyle = P.fg; ctx.font = `600 ${LABEL_PX}px ${font}`;
    ctx.fillText('+ ' + it.label, b.x + 8, b.y + 15, b.w - 16);
    ctx.fillStyle = P.muted; ctx.font = `11px ${font}`;
    ctx.fillText(`${it.leafCount} nodes`, b.x + 8, b.y + 32, b.w - 16);
    if (d) {
      const txt = `${d} degraded`;
      ctx.font = `600 10px ${font}`;
      const w = ctx.measureText(txt).width + 10;
      ctx.fillStyle = P.degraded; roundRect(ctx, b.x + b.w - w - 6, b.y + 25, w, 14, 7); ctx.fill();
      ctx.fillStyle = BADGE_TEXT; ctx.fillText(txt, b.x + b.w - w - 1, b.y + 32);
    }
    drawJudgeMarks(ctx, this.model!.judgesIn.get(b.id) ?? [], b.x + b.w - 8, b.y, font);
    return d;
  }

  /** Draws a layer node; returns 1 when it is drawn as degraded. */
  private drawNode(ctx: CanvasRenderingContext2D, b: Box, showText: boolean, font: string): number {
    const P = palette, n = this.model!.nodes.get(b.id);
    if (!n) return 0;
    let fill = P.node, stroke = P.nodeStroke, lw = 1;
    const cm = this.compare && n.layer ? this.compare.get(n.layer) : undefined;
    const cmp = cm?.status;
    if (this.compare) {
      if (cmp === 'improved') { fill = P.improved; stroke = P.improved; }
      else if (cmp === 'worse') { fill = P.worse; stroke = P.worse; }
      lw = cmp === 'improved' || cmp === 'worse' ? 2 : 1;
      // still degraded in B: red outline over the compare colour
      if (n.degraded) { stroke = P.degraded; lw = 2; }
    } else if (n.degraded) { fill = P.degradedFill; stroke = P.degraded; lw = 2; }
    ctx.fillStyle = fill;
    if (this.compare && (cmp === 'improved' || cmp === 'worse')) ctx.globalAlpha = 0.3;
    roundRect(ctx, b.x, b.y, b.w, b.h, 5); ctx.fill();
    ctx.globalAlpha = 1;
    if (this.matches.has(b.id)) { ctx.lineWidth = 4; ctx.strokeStyle = SEARCH_MATCH; ctx.stroke(); }
    if (this.selectedNode === b.id) { lw = 3; stroke = P.selected; }
    ctx.lineWidth = lw; ctx.strokeStyle = stroke; ctx.stroke();
    if (this.focusId === b.id && this.selectedNode !== b.id) {
      ctx.setLineDash([4, 3]); ctx.lineWidth = 2; ctx.strokeStyle = P.accent;
      roundRect(ctx, b.x - 3, b.y - 3, b.w + 6, b.h + 6, 7); ctx.stroke(); ctx.setLineDash([]);
    }
    const deg = n.degraded ? 1 : 0;
    if (!showText) return deg;
    ctx.fillStyle = P.fg; ctx.font = `${LABEL_PX}px ${font}`;
    ctx.fillText(this.model!.items.get(b.id)?.label || n.name || n.id, b.x + 8, b.y + 12, b.w - 14);
    ctx.fillStyle = P.muted; ctx.font = `10px ${font}`;
    ctx.fillText(n.op ?? '', b.x + 8, b.y + 25, b.w - 14);
    // worst-metric badge; in compare mode the status and the worst metric's delta A → B
    let badge: string | null = null, badgeColor = P.degraded;
    if (this.compare) {
      if (cm?.badge) { badge = cm.badge; badgeColor = cmp === 'improved' ? P.improved : cmp === 'worse' ? P.worse : P.unchanged; }
    } else if (n.degraded && n.worst) badge = `${n.worst.metric} ${fmt(n.worst.value, 3)}`;
    if (badge) {
      ctx.font = `600 10px ${font}`;
      const w = ctx.measureText(badge).width + 10;
      ctx.fillStyle = badgeColor; roundRect(ctx, b.x - 4, b.y - 9, w, 14, 7); ctx.fill();
      ctx.fillStyle = BADGE_TEXT; ctx.fillText(badge, b.x + 1, b.y - 2);
      this.drawnBadges.set(b.id, badge);
    }
    drawJudgeMarks(ctx, n.judges ?? [], b.x + b.w - 8, b.y, font);
    return deg;
  }
}

/** Judge marks (coloured letters) along a box's top edge, from its right end leftwards. */
function drawJudgeMarks(ctx: CanvasRenderingContext2D, judges: string[], x: number, y: number, font: string) {
  for (const j of judges) {
    const m = judgeMark(j);
    ctx.fillStyle = m.color;
    ctx.beginPath(); ctx.arc(x, y, 7, 0, Math.PI * 2); ctx.fill();
    ctx.fillStyle = BADGE_TEXT; ctx.font = `700 9px ${font}`; ctx.textAlign = 'center';
    ctx.fillText(m.letter, x, y + 0.5); ctx.textAlign = 'left';
    x -= 16;
  }
}

/** Adds an edge's path: dagre's routes smoothed through their points, the orthogonal routes (between columns, on
 *  a bus) with small rounded corners so that routes sharing a segment draw on one line. */
function tracePath(ctx: CanvasRenderingContext2D, e: Edge) {
  const p = e.pts;
  ctx.moveTo(p[0], p[1]);
  if (e.kind !== 'main') {
    for (let i = 2; i < p.length - 2; i += 2) {
      const r = Math.min(6, Math.hypot(p[i] - p[i - 2], p[i + 1] - p[i - 1]) / 2, Math.hypot(p[i + 2] - p[i], p[i + 3] - p[i + 1]) / 2);
      ctx.arcTo(p[i], p[i + 1], p[i + 2], p[i + 3], r);
    }
    ctx.lineTo(p[p.length - 2], p[p.length - 1]);
  } else if (p.length >= 6) {
    for (let i = 2; i < p.length - 2; i += 2) {
      const mx = (p[i] + p[i + 2]) / 2, my = (p[i + 1] + p[i + 3]) / 2;
      ctx.quadraticCurveTo(p[i], p[i + 1], i + 4 >= p.length ? p[i + 2] : mx, i + 4 >= p.length ? p[i + 3] : my);
    }
  } else ctx.lineTo(p[2], p[3]);
}

function arrowHead(ctx: CanvasRenderingContext2D, p: number[]) {
  const n = p.length;
  const x = p[n - 2], y = p[n - 1], px = p[n - 4], py = p[n - 3];
  const a = Math.atan2(y - py, x - px), s = 6;
  ctx.moveTo(x, y);
  ctx.lineTo(x - s * Math.cos(a - 0.4), y - s * Math.sin(a - 0.4));
  ctx.lineTo(x - s * Math.cos(a + 0.4), y - s * Math.sin(a + 0.4));
  ctx.closePath();
}

function roundRect(ctx: CanvasRenderingContext2D, x: number, y: number, w: number, h: number, r: number) {
  ctx.beginPath();
  ctx.moveTo(x + r, y);
  ctx.arcTo(x + w, y, x + w, y + h, r);
  ctx.arcTo(x + w, y + h, x, y + h, r);
  ctx.arcTo(x, y + h, x, y, r);
  ctx.arcTo(x, y, x + w, y, r);
  ctx.closePath();
}
function addUnique(m: Map<string, string[]>, k: string, v: string) {
  const a = m.get(k);
  if (a) { if (!a.includes(v)) a.push(v); } else m.set(k, [v]);
}

/** Whether two node lists have the same nodes with the same inputs, in the same order. */
function sameStructure(a: GraphNode[], b: GraphNode[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) {
    if (a[i].id !== b[i].id) return false;
    const x = a[i].inputs ?? [], y = b[i].inputs ?? [];
    if (x.length !== y.length) return false;
    for (let j = 0; j < x.length; j++) if (x[j] !== y[j]) return false;
  }
  return true;
}
