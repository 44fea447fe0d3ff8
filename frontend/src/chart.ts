// Per-layer error charts (metric × dataset), drawn on canvas: threshold line, degraded points, hover, click.
import type {CompareResponse, LayersResponse, LayerRow, ReportSummary} from './api';
import {fmt, num} from './api';
import {CANVAS_FONT, CHART_LOG_RATIO} from './constants';
import {clear, h} from './dom';
import {palette} from './theme';

interface Series { metric: string; dataset: string }

export class ChartsView {
  readonly el = h('div', {class: 'charts'});
  private data: LayersResponse | null = null;
  private summary: ReportSummary | null = null;
  private cmp: CompareResponse | null = null;
  private selected: string | null = null;
  private canvases: {c: HTMLCanvasElement; s: Series; hover: number | null}[] = [];
  private tip = h('div', {class: 'chart-tip', role: 'tooltip'});

  constructor(private onSelect: (layer: string) => void) {}

  set(data: LayersResponse | null, summary: ReportSummary | null, cmp: CompareResponse | null, artifactLinks: HTMLElement | null) {
    this.data = data; this.summary = summary; this.cmp = cmp;
    clear(this.el);
    this.canvases = [];
    if (!data || !data.layers.length) {
      this.el.appendChild(h('div', {class: 'empty big', id: 'charts-empty'},
        h('div', {class: 'empty-title', text: 'No per-layer metrics in this report'}),
        h('div', null, 'The charts plot ', h('code', {text: 'quant_report.json'}), ', which is missing or empty in this report folder. ' +
          'MCT writes it when its XQuant report runs with ', h('code', {text: 'report_dir'}), ' inside the TensorBoard logdir, e.g.:'),
        h('pre', {class: 'snippet', text: 'from model_compression_toolkit.xquant import XQuantConfig\n' +
          'from tb_xquant_plugin.mct_run import xquant_report_with_manifest  # or MCT\'s xquant_report_troubleshoot_pytorch_experimental\n' +
          'cfg = XQuantConfig(report_dir="<logdir>/my_model/xquant_report")\n' +
          'xquant_report_with_manifest(float_model, quantized_model, repr_dataset, validation_dataset, cfg)'}),
        h('div', {class: 'muted', text: 'Then press Reload.'})));
      return;
    }
    const grid = h('div', {class: 'chart-grid'});
    for (const metric of data.metrics) for (const dataset of data.datasets) {
      const s = {metric, dataset};
      const thr = summary ? num(summary.thresholds.quantize_error[metric]) : NaN;
      const under = summary ? !!summary.thresholds.detect_under[metric] : false;
      const flagged = data.layers.filter((l) => l.flags?.[`${metric}.${dataset}`]).length;
      const c = h('canvas', {class: 'chart-canvas', dataset: {metric, dataset, flagged: String(flagged)}, tabindex: '0',
        'aria-label': `${metric} on ${dataset} per layer`});
      const title = h('div', {class: 'chart-title'},
        h('b', {text: `${metric} · ${dataset}`}),
        h('span', {class: 'muted', text: Number.isFinite(thr) ? `  threshold ${fmt(thr)} (flag ${under ? 'below' : 'above'}) · ${flagged} flagged` : ''}));
      grid.appendChild(h('div', {class: 'chart-card'}, title, c));
      const entry = {c, s, hover: null as number | null};
      this.canvases.push(entry);
      this.bind(entry);
    }
    this.el.appendChild(grid);
    if (artifactLinks) this.el.appendChild(artifactLinks);
    this.el.appendChild(this.tip);
    requestAnimationFrame(() => this.draw());
  }

  select(layer: string | null) { this.selected = layer; this.draw(); }

  private values(l: LayerRow, s: Series, which: 'a' | 'b' | null): number {
    if (which && this.cmp) {
      const cl = this.cmpByName().get(l.name);
      const side = cl?.[which] as Record<string, Record<string, unknown>> | null | undefined;
      return num(side?.[s.dataset]?.[s.metric]);
    }
    const ds = l[s.dataset] as Record<string, unknown> | undefined;
    return num(ds?.[s.metric]);
  }
  private _cmpMap: Map<string, CompareResponse['layers'][number]> | null = null;
  private _cmpFor: CompareResponse | null = null;
  private cmpByName() {
    if (this._cmpFor !== this.cmp) { this._cmpFor = this.cmp; this._cmpMap = new Map((this.cmp?.layers ?? []).map((l) => [l.name, l])); }
    return this._cmpMap!;
  }

  private geom(c: HTMLCanvasElement) {
    const w = c.clientWidth || 400, hgt = c.clientHeight || 180;
    return {w, h: hgt, l: 52, r: 10, t: 10, b: 22};
  }

  private scale(s: Series) {
    const layers = this.data!.layers;
    let lo = Infinity, hi = -Infinity;
    const consider = (v: number) => { if (Number.isFinite(v)) { lo = Math.min(lo, v); hi = Math.max(hi, v); } };
    for (const l of layers) {
      if (this.cmp) { consider(this.values(l, s, 'a')); consider(this.values(l, s, 'b')); } else consider(this.values(l, s, null));
    }
    const thr = this.summary ? num(this.summary.thresholds.quantize_error[s.metric]) : NaN;
    consider(thr);
    if (!Number.isFinite(lo)) { lo = 0; hi = 1; }
    const log = lo > 0 && hi / lo > CHART_LOG_RATIO;
    if (hi === lo) { hi += Math.abs(hi) * 0.1 || 1; lo -= Math.abs(lo) * 0.1 || 0; }
    return {lo, hi, log};
  }

  draw() {
    if (!this.data) return;
    for (const e of this.canvases) this.drawOne(e);
  }

  private drawOne(e: {c: HTMLCanvasElement; s: Series; hover: number | null}) {
    const {c, s} = e, P = palette, layers = this.data!.layers;
    const g = this.geom(c), dpr = window.devicePixelRatio || 1;
    c.width = Math.round(g.w * dpr); c.height = Math.round(g.h * dpr);
    const ctx = c.getContext('2d')!;
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.fillStyle = P.bg; ctx.fillRect(0, 0, g.w, g.h);
    const {lo, hi, log} = this.scale(s);
    const n = layers.length;
    const X = (i: number) => g.l + (n <= 1 ? (g.w - g.l - g.r) / 2 : (i * (g.w - g.l - g.r)) / (n - 1));
    const tf = (v: number) => (log ? Math.log10(Math.max(v, lo)) : v);
    const Y = (v: number) => g.t + (1 - (tf(v) - tf(lo)) / (tf(hi) - tf(lo) || 1)) * (g.h - g.t - g.b);
    const font = CANVAS_FONT;
    // axes + ticks
    ctx.strokeStyle = P.grid; ctx.lineWidth = 1; ctx.fillStyle = P.muted; ctx.font = `10px ${font}`;
    ctx.textAlign = 'right'; ctx.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const v = log ? Math.pow(10, tf(lo) + (i / 4) * (tf(hi) - tf(lo))) : lo + (i / 4) * (hi - lo);
      const y = Y(v);
      ctx.beginPath(); ctx.moveTo(g.l, y); ctx.lineTo(g.w - g.r, y); ctx.stroke();
      ctx.fillText(fmt(v, 3), g.l - 4, y);
    }
    ctx.textAlign = 'center'; ctx.textBaseline = 'top';
    ctx.fillText('layer index' + (log ? ' (log y)' : ''), (g.l + g.w - g.r) / 2, g.h - 12);
    // selected layer
    const selIdx = this.selected ? layers.findIndex((l) => l.name === this.selected) : -1;
    if (selIdx >= 0) { ctx.strokeStyle = P.selected; ctx.lineWidth = 2; ctx.beginPath(); ctx.moveTo(X(selIdx), g.t); ctx.lineTo(X(selIdx), g.h - g.b); ctx.stroke(); }
    // threshold
    const thr = this.summary ? num(this.summary.thresholds.quantize_error[s.metric]) : NaN;
    if (Number.isFinite(thr)) {
      ctx.strokeStyle = P.degraded; ctx.setLineDash([5, 4]); ctx.lineWidth = 1;
      ctx.beginPath(); ctx.moveTo(g.l, Y(thr)); ctx.lineTo(g.w - g.r, Y(thr)); ctx.stroke(); ctx.setLineDash([]);
    }
    const line = (which: 'a' | 'b' | null, color: string) => {
      ctx.strokeStyle = color; ctx.lineWidth = 1.5; ctx.beginPath();
      let started = false;
      layers.forEach((l, i) => {
        const v = this.values(l, s, which);
        if (!Number.isFinite(v)) { started = false; return; }
        if (!started) { ctx.moveTo(X(i), Y(v)); started = true; } else ctx.lineTo(X(i), Y(v));
      });
      ctx.stroke();
    };
    if (this.cmp) { line('a', P.series); line('b', P.seriesB); }
    else line(null, P.series);
    // points
    layers.forEach((l, i) => {
      const flagged = !!l.flags?.[`${s.metric}.${s.dataset}`];
      const v = this.values(l, s, this.cmp ? 'b' : null);
      if (!Number.isFinite(v)) return;
      ctx.fillStyle = flagged ? P.degraded : this.cmp ? P.seriesB : P.series;
      ctx.beginPath(); ctx.arc(X(i), Y(v), flagged ? 4 : 2.5, 0, Math.PI * 2); ctx.fill();
    });
    if (this.cmp) {
      ctx.textAlign = 'left'; ctx.textBaseline = 'top'; ctx.font = `10px ${font}`;
      ctx.fillStyle = P.series; ctx.fillText('— A (baseline)', g.l + 4, g.t + 2);
      ctx.fillStyle = P.seriesB; ctx.fillText('— B (this report)', g.l + 90, g.t + 2);
    }
    if (e.hover !== null && layers[e.hover]) {
      ctx.strokeStyle = P.muted; ctx.lineWidth = 1; ctx.setLineDash([2, 2]);
      ctx.beginPath(); ctx.moveTo(X(e.hover), g.t); ctx.lineTo(X(e.hover), g.h - g.b); ctx.stroke(); ctx.setLineDash([]);
    }
    // Test hook, not dead code: tests/browser/test_panel.py reads the x scale of the last draw (`canvas._X(i)`) to
    // click a layer's point.
    (c as unknown as {_X: (i: number) => number})._X = X;
  }

  private indexAt(c: HTMLCanvasElement, clientX: number): number | null {
    const n = this.data?.layers.length ?? 0;
    if (!n) return null;
    const g = this.geom(c), r = c.getBoundingClientRect();
    const x = clientX - r.left;
    const i = n <= 1 ? 0 : Math.round(((x - g.l) / (g.w - g.l - g.r)) * (n - 1));
    return i < 0 || i >= n ? null : i;
  }

  private bind(e: {c: HTMLCanvasElement; s: Series; hover: number | null}) {
    e.c.addEventListener('mousemove', (ev) => {
      const i = this.indexAt(e.c, ev.clientX);
      if (i !== e.hover) { e.hover = i; this.drawOne(e); }
      if (i === null) { this.tip.style.display = 'none'; return; }
      const l = this.data!.layers[i];
      clear(this.tip);
      this.tip.appendChild(h('div', {class: 'tip-title', text: `#${l.index} ${l.name}`}));
      if (l.op) this.tip.appendChild(h('div', {class: 'muted', text: l.op}));
      for (const m of this.data!.metrics) {
        const parts = this.data!.datasets.map((d) => {
          const v = num((l[d] as Record<string, unknown> | undefined)?.[m]);
          return `${d} ${fmt(v)}${l.flags?.[`${m}.${d}`] ? ' ⚠' : ''}`;
        });
        this.tip.appendChild(h('div', {text: `${m}: ${parts.join(' · ')}`}));
      }
      if (this.cmp) {
        const cl = this.cmpByName().get(l.name);
        if (cl) this.tip.appendChild(h('div', {text: `Δ ${e.s.metric}.${e.s.dataset}: ${fmt(cl.delta[`${e.s.metric}.${e.s.dataset}`])} (${cl.status})`}));
      }
      const host = this.el.getBoundingClientRect();
      this.tip.style.display = 'block';
      this.tip.style.left = `${Math.min(ev.clientX - host.left + 12, host.width - 240)}px`;
      this.tip.style.top = `${ev.clientY - host.top + 12 + this.el.scrollTop}px`;
    });
    e.c.addEventListener('mouseleave', () => { e.hover = null; this.tip.style.display = 'none'; this.drawOne(e); });
    e.c.addEventListener('click', (ev) => {
      const i = this.indexAt(e.c, ev.clientX);
      if (i !== null) this.onSelect(this.data!.layers[i].name);
    });
    e.c.addEventListener('keydown', (ev) => {
      const layers = this.data!.layers;
      let i = this.selected ? layers.findIndex((l) => l.name === this.selected) : -1;
      if (ev.key === 'ArrowRight') i = Math.min(layers.length - 1, i + 1);
      else if (ev.key === 'ArrowLeft') i = Math.max(0, i - 1);
      else return;
      ev.preventDefault();
      this.onSelect(layers[i].name);
    });
  }
}
