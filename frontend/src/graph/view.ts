// Canvas graph view: zoom, pan, fit, search, keyboard navigation, collapsible name-scope groups.
import type {GraphNode} from '../api';
import {fmt} from '../api';
import type {CompareMark} from '../compare';
import {ARROW_MIN_ZOOM, BADGE_TEXT, CANVAS_FONT, FIT_ZOOM_MAX, FIT_ZOOM_MIN, HEADER, INITIAL_ZOOM_MIN, NODE_JUDGES, SEARCH_HITS_MAX,
  SEARCH_MATCH, TEXT_MIN_ZOOM, WHEEL_ZOOM_PER_LINE, WHEEL_ZOOM_PER_PIXEL, ZOOM_IN_BELOW, ZOOM_IN_TO, ZOOM_MAX, ZOOM_MIN, ZOOM_STEP_IN,
  ZOOM_STEP_OUT} from '../constants';
import {clear, h, judgeMark} from '../dom';
import {palette} from '../theme';
import {LayoutClient} from './client';
import type {Box, Edge, LayoutResult} from './layout';
import {GraphModel, ROOT} from './model';

export interface GraphViewCallbacks {
  onSelect(nodeId: string, layer: string | null): void;
}

interface Transform { k: number; tx: number; ty: number }

export class GraphView {
  readonly el: HTMLElement;
  readonly canvas: HTMLCanvasElement;
  private ctx: CanvasRenderingContext2D;
  private search: HTMLInputElement;
  private results: HTMLElement;
  private status: HTMLElement;
  private compareLegend: HTMLElement;
  private model: GraphModel | null = null;
  private structureKey = '';
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
  private fittedOnce = false;
  private layoutDone: Promise<void> = Promise.resolve();

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
    const key = nodes.length + ':' + nodes.map((n) => n.id + '<' + (n.inputs ?? []).join(',')).join(';');
    if (this.model && key === this.structureKey) {
      for (const n of nodes) { const m = this.model.nodes.get(n.id); if (m) Object.assign(m, n); }
      this.model.refreshStatus();
      this.publishCounts();
      this.requestDraw();
      return;
    }
    this.structureKey = key;
    const t0 = performance.now();
    this.model = new GraphModel(nodes);
    this.layoutRes = null;          // the old layout belongs to the old model
    this.boxById.clear();
    this.layoutSeq++;               // drop any layout still in flight for the old model
    this.expanded = this.model.defaultExpanded();
    this.client.init(this.model.hierarchy());
    this.fittedOnce = false;
    this.publishCounts();
    this.canvas.dataset.modelMs = String(Math.round(performance.now() - t0));
    await this.relayout();
    this.canvas.dataset.firstDrawMs = String(Math.round(performance.now() - t0));
  }

  clearGraph(message: string) {
    this.model = null; this.structureKey = ''; this.layoutRes = null; this.boxById.clear();
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

  private relayout(): Promise<void> {
    if (!this.model) return Promise.resolve();
    const seq = ++this.layoutSeq;
    this.canvas.dataset.state = 'layout';
    this.status.textContent = 'Laying out…';
    const t0 = performance.now();
    const p = this.client.layout([...this.expanded]).then((res) => {
      if (seq !== this.layoutSeq) return;
      this.layoutRes = res;
      this.boxById.clear();
      for (const b of res.boxes) this.boxById.set(b.id, b);
      this.buildVisibleAdjacency();
      if (!this.fittedOnce && this.width > 20 && this.height > 20) { this.initialView(); this.fittedOnce = true; }
      const ms = performance.now() - t0;
      this.canvas.dataset.layoutMs = String(Math.round(ms));
      this.canvas.dataset.visibleCount = String(res.boxes.length);
      this.canvas.dataset.layoutMode = this.client.mode;
      this.status.textContent = `${this.model!.nodes.size} nodes, ${res.boxes.length} boxes shown · layout ${Math.round(ms)} ms (${this.client.mode})`;
      this.drawNow();
      this.canvas.dataset.state = 'ready';
    }).catch((e) => {
      if (seq !== this.layoutSeq) return;
      this.canvas.dataset.state = 'error';
      this.status.textContent = 'Layout failed: ' + (e as Error).message;
      console.warn('xquant layout failed', e);
    });
    this.layoutDone = p;
    return p;
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
    if (this.expanded.has(gid)) {
      // collapse the group and everything inside it
      for (const id of [...this.expanded]) if (id === gid || this.model.ancestors(id).includes(gid)) this.expanded.delete(id);
    } else {
      this.expanded.add(gid);
    }
    this.relayout();
  }
  expandAll() {
    if (!this.model) return;
    for (const it of this.model.items.values()) if (it.kind === 'group') this.expanded.add(it.id);
    this.fittedOnce = false;
    this.relayout();
  }
  collapseAll() { this.expanded = new Set([ROOT]); this.fittedOnce = false; this.relayout(); }

  /** Select a node (by node id); expands its groups and brings it into view. */
  async selectNode(nodeId: string | null, center = true) {
    this.selectedNode = nodeId;
    if (!nodeId || !this.model || !this.model.items.has(nodeId)) { this.requestDraw(); return; }
    const anc = this.model.ancestors(nodeId);
    const missing = anc.filter((a) => !this.expanded.has(a));
    if (missing.length) { for (const a of missing) this.expanded.add(a); await this.relayout(); }
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

  // ---------------------------------------------------------------- view transform
  fit() {
    const r = this.layoutRes;
    if (!r || !this.width || !this.height) return;
    const m = 24;
    const k = Math.min(FIT_ZOOM_MAX, Math.max(FIT_ZOOM_MIN, Math.min((this.width - 2 * m) / Math.max(r.width, 1), (this.height - 2 * m) / Math.max(r.height, 1))));
    this.t = {k, tx: (this.width - r.width * k) / 2, ty: Math.max(m, (this.height - r.height * k) / 2)};
    this.requestDraw();
  }
  /** First view of a graph: fit, but never smaller than readable text; a tall graph starts at its top. */
  private initialView() {
    this.fit();
    const r = this.layoutRes;
    if (!r || this.t.k >= INITIAL_ZOOM_MIN) return;
    const k = INITIAL_ZOOM_MIN;
    this.t = {k, tx: r.width * k <= this.width ? (this.width - r.width * k) / 2 : 24, ty: 24};
    this.requestDraw();
  }

  zoomBy(f: number, cx = this.width / 2, cy = this.height / 2) {
    const k = Math.min(ZOOM_MAX, Math.max(ZOOM_MIN, this.t.k * f));
    const real = k / this.t.k;
    this.t.tx = cx - (cx - this.t.tx) * real;
    this.t.ty = cy - (cy - this.t.ty) * real;
    this.t.k = k;
    this.requestDraw();
  }

  private resize() {
    const r = this.canvas.getBoundingClientRect();
    this.dpr = window.devicePixelRatio || 1;
    this.width = Math.max(1, r.width); this.height = Math.max(1, r.height);
    this.canvas.width = Math.round(this.width * this.dpr);
    this.canvas.height = Math.round(this.height * this.dpr);
    if (!this.fittedOnce && this.layoutRes && this.width > 20 && this.height > 20) { this.initialView(); this.fittedOnce = true; }
    this.drawNow();
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
        if (drag.moved) { this.t.tx = drag.tx + dx; this.t.ty = drag.ty + dy; this.requestDraw(); }
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
        ctx.fillStyle = P.muted; ctx.font = `600 11px ${font}`; ctx.textBaseline = 'middle';
        const d = this.model.degradedIn.get(b.id) ?? 0;
        ctx.fillText(`− ${it.label}  (${it.leafCount})`, b.x + 8, b.y + 13, b.w - 16);
        if (d) { ctx.fillStyle = P.degraded; ctx.textAlign = 'right'; ctx.fillText(`${d} degraded`, b.x + b.w - 8, b.y + 13); ctx.textAlign = 'left'; }
      }
    }
    // edges
    ctx.strokeStyle = P.edge; ctx.fillStyle = P.edge;
    ctx.lineWidth = 1.2 / Math.max(k, 0.6);
    ctx.beginPath();
    const heads: Edge[] = [];
    for (const e of r.edges) {
      const p = e.pts;
      if (p.length < 4) continue;
      let minx = Infinity, maxx = -Infinity, miny = Infinity, maxy = -Infinity;
      for (let i = 0; i < p.length; i += 2) { minx = Math.min(minx, p[i]); maxx = Math.max(maxx, p[i]); miny = Math.min(miny, p[i + 1]); maxy = Math.max(maxy, p[i + 1]); }
      if (maxx < vx0 || minx > vx1 || maxy < vy0 || miny > vy1) continue;
      ctx.moveTo(p[0], p[1]);
      if (p.length >= 6) {
        for (let i = 2; i < p.length - 2; i += 2) {
          const mx = (p[i] + p[i + 2]) / 2, my = (p[i + 1] + p[i + 3]) / 2;
          ctx.quadraticCurveTo(p[i], p[i + 1], i + 4 >= p.length ? p[i + 2] : mx, i + 4 >= p.length ? p[i + 3] : my);
        }
      } else ctx.lineTo(p[2], p[3]);
      if (k > ARROW_MIN_ZOOM) heads.push(e);
    }
    ctx.stroke();
    ctx.beginPath();
    for (const e of heads) {
      const p = e.pts, n = p.length;
      const x = p[n - 2], y = p[n - 1], px = p[n - 4], py = p[n - 3];
      const a = Math.atan2(y - py, x - px), s = 6;
      ctx.moveTo(x, y);
      ctx.lineTo(x - s * Math.cos(a - 0.4), y - s * Math.sin(a - 0.4));
      ctx.lineTo(x - s * Math.cos(a + 0.4), y - s * Math.sin(a + 0.4));
      ctx.closePath();
    }
    ctx.fill();
    // leaves and collapsed groups
    ctx.textBaseline = 'middle';
    // Degraded layers actually drawn: red nodes plus the counts shown on collapsed groups.
    let drawnDegraded = 0;
    for (const b of r.boxes) {
      if (b.expanded || !inView(b)) continue;
      if (b.kind === 'group') drawnDegraded += this.drawGroup(ctx, b, showText, font);
      else drawnDegraded += this.drawNode(ctx, b, showText, font);
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
    ctx.fillStyle = P.fg; ctx.font = `600 12px ${font}`;
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
    ctx.fillStyle = P.fg; ctx.font = `12px ${font}`;
    ctx.fillText(n.name || n.id, b.x + 8, b.y + 12, b.w - 14);
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
    // judge marks
    let jx = b.x + b.w - 8;
    for (const j of n.judges ?? []) {
      const m = judgeMark(j);
      ctx.fillStyle = m.color;
      ctx.beginPath(); ctx.arc(jx, b.y, 7, 0, Math.PI * 2); ctx.fill();
      ctx.fillStyle = BADGE_TEXT; ctx.font = `700 9px ${font}`; ctx.textAlign = 'center';
      ctx.fillText(m.letter, jx, b.y + 0.5); ctx.textAlign = 'left';
      jx -= 16;
    }
    return deg;
  }
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
