// Entry point: TensorBoard imports this ES module inside the plugin iframe and calls render().
import type {CompareResponse, ConcatCheck, GraphResponse, LayerDetail, LayersResponse, Problem, ReportRef, ReportsResponse, ReportSummary, Verdict, VerdictsResponse} from './api';
import {ApiError, fmt, getJson, num, routeUrl} from './api';
import {ChartsView} from './chart';
import {compareMarks} from './compare';
import {clear, copyText, debounce, GENERAL_REASON, h, judgeChip, judgeMark} from './dom';
import {GraphView} from './graph/view';
import {ManualView, setManualNavigator} from './manual';
import {concatChecksTable, renderLayerPanel, verdictCard} from './panel';
import {type AppState, panelStateFromTb, parseHash, parseTbHash, thresholdQuery, toHash, type View, withPanelState} from './state';
import {onThemeChange, watchTheme} from './theme';

const POLL_MS = 30_000;

/** The plugin's name in TensorBoard (the tab id in TensorBoard's page hash). */
function pluginName(): string { return new URLSearchParams(location.search).get('name') || 'xquant'; }

/** TensorBoard's page around the plugin iframe, when it is same-origin (it always is for a dynamic plugin). */
function tbPage(): Window | null {
  try {
    const p = window.parent;
    if (!p || p === window) return null;
    void p.location.hash;   // throws when cross-origin
    return p;
  } catch { return null; }
}

/** The iframe's own hash wins; a fresh iframe (TensorBoard loads it without one) takes the state that a shared
 *  link put into TensorBoard's page hash (`#xquant&xq=...`). */
function initialState(): AppState {
  if (location.hash.length > 1) return parseHash(location.hash);
  const p = tbPage();
  const xq = p ? panelStateFromTb(p.location.hash) : null;
  return parseHash(xq ? '#' + xq : '');
}

class App {
  state: AppState = initialState();
  root = h('div', {id: 'xquant-root', class: 'xq', dataset: {state: 'loading'}});
  private reports: ReportRef[] = [];
  private reportsJson = '';
  private summary: ReportSummary | null = null;
  private summaryJson = '';
  private layers: LayersResponse | null = null;
  private layerNames = new Set<string>();
  private compare: CompareResponse | null = null;
  private reportSel = h('select', {id: 'report-select', 'aria-label': 'XQuant report'});
  private cmpSel = h('select', {id: 'compare-select', 'aria-label': 'Compare with report'});
  private tabs = {graph: h('button', {class: 'tab', text: 'Graph', dataset: {view: 'graph'}}), chart: h('button', {class: 'tab', text: 'Error charts', dataset: {view: 'chart'}}),
    manual: h('button', {class: 'tab', text: 'Manual', title: 'Every troubleshooting entry of the XQuant manual', dataset: {view: 'manual'}})};
  private banner = h('div', {class: 'banner', id: 'problems'});
  private header = h('div', {class: 'summary', id: 'summary'});
  private thrBar = h('div', {class: 'thresholds', id: 'thresholds'});
  private side = h('aside', {class: 'side', id: 'layer-panel', dataset: {state: 'empty'}});
  private graphHost = h('div', {class: 'view-host'});
  private chartHost = h('div', {class: 'view-host'});
  private manualHost = h('div', {class: 'view-host', id: 'manual-host'});
  private updated = h('span', {class: 'muted small'});
  private graph: GraphView;
  private charts: ChartsView;
  private manual: ManualView;
  private gen = 0;
  private graphRetries = 0;
  private abort: AbortController | null = null;
  private layerAbort: AbortController | null = null;

  constructor() {
    this.graph = new GraphView({onSelect: (nodeId, layer) => {
      // Nodes that are not quant_report layers can still carry verdicts (e.g. activations for shift negative).
      const name = layer ?? this.graphNodeName(nodeId);
      this.selectLayer(name && (layer || this.verdictLayers().has(name)) ? name : null, nodeId, false);
    }});
    this.charts = new ChartsView((layer) => this.selectLayer(layer, null, true));
    this.manual = new ManualView((id) => this.openManual(id));
    setManualNavigator((id) => this.openManual(id));
    this.graphHost.appendChild(this.graph.el);
    this.chartHost.appendChild(this.charts.el);
    this.manualHost.appendChild(this.manual.el);
    const reload = h('button', {class: 'btn', id: 'reload', title: 'Reload reports from the log directory', text: '⟳ Reload', onclick: () => this.loadAll(true)});
    const thrToggle = h('button', {class: 'btn', id: 'thr-toggle', text: 'Thresholds', 'aria-expanded': 'false', onclick: () => {
      const open = this.thrBar.classList.toggle('open');
      thrToggle.setAttribute('aria-expanded', String(open));
    }});
    for (const t of Object.values(this.tabs)) t.addEventListener('click', () => this.setView(t.dataset.view as View));
    const copyLink = h('button', {class: 'btn', id: 'copy-link', text: 'Copy link', type: 'button',
      title: 'Copy a link that opens TensorBoard on this view: report, layer, view, thresholds, comparison'});
    copyLink.addEventListener('click', async () => {
      const url = this.shareUrl();
      const ok = await copyText(url);
      copyLink.dataset.url = url;
      copyLink.dataset.copied = ok ? '1' : '0';
      copyLink.textContent = ok ? 'Link copied' : 'Copy failed';
      setTimeout(() => { copyLink.textContent = 'Copy link'; }, 1500);
    });
    this.reportSel.addEventListener('change', () => { this.graphRetries = 0; this.state.report = this.reportSel.value; this.state.layer = null; if (this.state.cmp === this.state.report) this.state.cmp = null; this.loadReport(); });
    this.cmpSel.addEventListener('change', () => { this.state.cmp = this.cmpSel.value || null; this.loadReport(false); });
    const top = h('div', {class: 'topbar'},
      h('span', {class: 'brand', text: 'XQuant'}),
      h('label', {class: 'field'}, h('span', {class: 'muted', text: 'Report '}), this.reportSel),
      h('label', {class: 'field'}, h('span', {class: 'muted', text: 'Compare with '}), this.cmpSel),
      h('div', {class: 'tabs', role: 'tablist'}, this.tabs.graph, this.tabs.chart, this.tabs.manual),
      h('span', {class: 'spacer'}),
      this.updated, thrToggle, copyLink, reload);
    const main = h('div', {class: 'main'}, h('div', {class: 'center'}, this.graphHost, this.chartHost, this.manualHost), this.side);
    this.root.append(top, this.thrBar, this.banner, this.header, main);
    this.renderSideEmpty();
    window.addEventListener('hashchange', () => this.onHashChange());
    this.watchTbHash();
    onThemeChange(() => { this.graph.requestDraw(); this.charts.draw(); if (this.state.layer) this.loadLayer(); });
    setInterval(() => this.poll(), POLL_MS);
    this.watchParentReload();
    document.addEventListener('visibilitychange', () => { if (!document.hidden) this.poll(); });
  }

  // --------------------------------------------------------------- state
  private writeHash() {
    this.mirrorToTb();
    const hs = toHash(this.state);
    if (hs === location.hash || (hs === '' && location.hash === '')) return;
    // Absolute URL: the plugin entry page has <base href="plugin/xquant/">, so a bare '#...' would resolve
    // against the base and move the iframe to another path.
    const u = new URL(location.href);
    u.hash = hs;
    history.replaceState(null, '', u.href);
  }
  /** Mirror the state into TensorBoard's page hash (`#xquant&...&xq=<our hash>`) while our tab is the active one,
   *  so that the address bar holds a link to this view. replaceState: no history entry, no hashchange. */
  private mirrorToTb() {
    const p = tbPage();
    if (!p) return;
    try {
      if (parseTbHash(p.location.hash).tab !== pluginName()) return;
      const next = withPanelState(p.location.hash, this.state, pluginName());
      if (next === p.location.hash) return;
      const u = new URL(p.location.href);
      u.hash = next;
      p.history.replaceState(p.history.state, '', u.href);
      this.root.dataset.tbHash = 'mirrored';
    } catch { /* TensorBoard page gone or not ours */ }
  }
  /** A link pasted into the address bar of an open TensorBoard changes only its hash: follow it. */
  private watchTbHash() {
    const p = tbPage();
    if (!p) return;
    p.addEventListener('hashchange', () => {
      if (!this.root.isConnected) return;
      let xq: string | null = null;
      try {
        if (parseTbHash(p.location.hash).tab !== pluginName()) return;
        xq = panelStateFromTb(p.location.hash);
      } catch { return; }
      if (xq === null || '#' + xq === toHash(this.state)) return;
      const u = new URL(location.href);
      u.hash = xq;
      history.replaceState(null, '', u.href);
      this.onHashChange();
    });
  }
  /** Link to this view: TensorBoard's page with our state in its hash, or this page when it runs on its own. */
  shareUrl(): string {
    const p = tbPage();
    if (p) {
      try {
        const u = new URL(p.location.href);
        u.hash = withPanelState(p.location.hash, this.state, pluginName());
        return u.href;
      } catch { /* fall back to the iframe's own URL */ }
    }
    const u = new URL(location.href);
    u.hash = toHash(this.state);
    return u.href;
  }
  private onHashChange() {
    const s = parseHash(location.hash);
    const reportChanged = s.report !== this.state.report || s.cmp !== this.state.cmp || JSON.stringify(s.t) !== JSON.stringify(this.state.t);
    const layerChanged = s.layer !== this.state.layer;
    this.state = s;
    this.mirrorToTb();
    this.setView(s.view, false);
    if (reportChanged) this.loadReport(false);
    else if (layerChanged) this.selectLayer(s.layer, null, true);
  }
  private setView(v: View, write = true) {
    this.state.view = v;
    this.graphHost.hidden = v !== 'graph';
    this.chartHost.hidden = v !== 'chart';
    this.manualHost.hidden = v !== 'manual';
    for (const [k, t] of Object.entries(this.tabs)) { t.classList.toggle('active', k === v); t.setAttribute('aria-selected', String(k === v)); }
    if (v === 'chart') requestAnimationFrame(() => this.charts.draw());
    else if (v === 'manual') void this.manual.show(this.state.man);
    else this.graph.requestDraw();
    if (write) this.writeHash();
  }
  /** Open a manual entry in the Manual view (list item, cross-reference, verdict countermeasure). */
  openManual(id: string) {
    this.state.man = id;
    this.setView('manual');
  }
  private params(): Record<string, string> { return thresholdQuery(this.state.t); }

  // --------------------------------------------------------------- loading
  async loadAll(userAction = false) {
    this.root.dataset.state = 'loading';
    try {
      const r = await getJson<ReportsResponse>('reports');
      this.reportsJson = JSON.stringify(r);
      this.reports = r.reports ?? [];
      this.fillReportSelects();
      if (!this.reports.length) { this.showNoReports(r); return; }
      if (!this.state.report || !this.reports.some((x) => x.id === this.state.report)) {
        this.state.report = (this.reports.find((x) => x.has_quant_report) ?? this.reports[0]).id;
      }
      this.reportSel.value = this.state.report;
      await this.loadReport(false);
      if (userAction) this.updated.textContent = 'reloaded ' + new Date().toLocaleTimeString();
    } catch (e) {
      this.showError(e);
    }
  }

  /** TensorBoard's reload (button or auto-reload) refetches `data/runs` in the parent page; the iframe is
   *  same-origin, so watch the parent's resource timings for it. Falls back to polling alone. */
  private watchParentReload() {
    try {
      const pw = window.parent as unknown as {PerformanceObserver?: typeof PerformanceObserver};
      if (!pw || (pw as unknown) === window || !pw.PerformanceObserver) return;
      const kick = debounce(() => this.poll(), 500);
      const obs = new pw.PerformanceObserver((list) => {
        if (list.getEntries().some((e) => /\/data\/(runs|environment)(\?|$)/.test(e.name))) kick();
      });
      obs.observe({type: 'resource', buffered: false});
      this.root.dataset.reloadHook = 'parent';
    } catch { /* cross-origin or unsupported: polling only */ }
  }

  private async poll() {
    if (document.hidden) return;
    try {
      const r = await getJson<ReportsResponse>('reports');
      const j = JSON.stringify(r);
      if (j !== this.reportsJson) { await this.loadAll(); return; }
      if (!this.state.report || this.root.dataset.state !== 'ready') return;
      const sj = JSON.stringify(await getJson<ReportSummary>('report', {report: this.state.report, ...this.params()}));
      if (sj !== this.summaryJson) await this.loadReport(false);
    } catch { /* transient */ }
  }

  private async refreshReportList() {
    try {
      const r = await getJson<ReportsResponse>('reports', {refresh: 1});
      this.reportsJson = JSON.stringify(r);
      this.reports = r.reports ?? [];
      this.fillReportSelects();
    } catch { /* transient: the next poll retries */ }
  }

  private fillReportSelects() {
    clear(this.reportSel); clear(this.cmpSel);
    this.cmpSel.appendChild(h('option', {value: '', text: '— none —'}));
    for (const r of this.reports) {
      this.reportSel.appendChild(h('option', {value: r.id, text: r.name + (r.has_quant_report ? '' : ' (incomplete)')}));
      this.cmpSel.appendChild(h('option', {value: r.id, text: r.name}));
    }
    if (this.state.report) this.reportSel.value = this.state.report;
    this.cmpSel.value = this.state.cmp ?? '';
  }

  async loadReport(resetLayer = true) {
    if (!this.state.report) return this.loadAll();
    if (resetLayer) this.state.layer = null;
    this.reportSel.value = this.state.report;
    this.cmpSel.value = this.state.cmp ?? '';
    this.writeHash();
    this.abort?.abort();
    const ac = this.abort = new AbortController();
    const gen = ++this.gen;
    this.root.dataset.state = 'loading';
    const q = {report: this.state.report, ...this.params()};
    try {
      const graphP = getJson<GraphResponse>('graph', q, ac.signal).catch((e) => errOrNull(e));
      // Lay out and draw the graph as soon as it arrives: it needs neither the summary nor the layers.
      const graphDrawn = graphP.then(async (g) => {
        if (gen === this.gen && g && !(g instanceof Error) && g.nodes?.length) await this.graph.setGraph(g.nodes);
      });
      graphDrawn.catch(() => { /* aborted: reported through Promise.all below */ });
      const [summary, layers, graph, cmp] = await Promise.all([
        getJson<ReportSummary>('report', q, ac.signal),
        getJson<LayersResponse>('layers', q, ac.signal).catch((e) => errOrNull(e)),
        graphP,
        this.state.cmp && this.state.cmp !== this.state.report
          ? getJson<CompareResponse>('compare', {a: this.state.cmp, b: this.state.report, ...this.params()}, ac.signal).catch((e) => errOrNull(e))
          : Promise.resolve(null),
      ]);
      if (gen !== this.gen) return;
      this.summary = summary;
      this.summaryJson = JSON.stringify(summary);
      this.layers = layers instanceof Error ? null : layers;
      this.layerNames = new Set((this.layers?.layers ?? []).map((l) => l.name));
      this.compare = cmp instanceof Error ? null : cmp;
      const problems: Problem[] = [...(summary.problems ?? [])];
      if (layers instanceof Error) problems.push(errProblem('layers', layers));
      if (graph instanceof Error) problems.push(errProblem('graph', graph));
      if (cmp instanceof Error) problems.push(errProblem('compare', cmp));
      if (graph && !(graph instanceof Error)) problems.push(...(graph.problems ?? []));
      this.renderProblems(problems);
      this.renderSummary();
      this.renderThresholds();
      this.root.dataset.degradedCount = String(summary.degraded_layers?.length ?? 0);
      // graph
      if (graph && !(graph instanceof Error) && graph.nodes?.length) {
        await graphDrawn;
      } else {
        const ref = this.reports.find((r) => r.id === this.state.report);
        if (ref?.has_graph && this.graphRetries < 10) {
          // TensorBoard loads event files in the background: right after start-up the graph may not be
          // readable yet although the report lists one. Retry a few times.
          this.graphRetries++;
          this.graph.clearGraph('Waiting for TensorBoard to load the graph…');
          const g0 = gen;
          setTimeout(() => { if (g0 === this.gen) this.loadReport(false); }, 2000);
        } else {
          this.graph.clearGraph(graph instanceof Error ? graph.message : 'This report has no model graph.');
        }
      }
      if (graph && !(graph instanceof Error) && graph.nodes?.length) this.graphRetries = 0;
      if (gen !== this.gen) return;
      this.graph.setCompare(this.compare ? compareMarks(this.compare.layers, this.compare.thresholds ?? summary.thresholds) : null);
      this.charts.set(this.layers, summary, this.compare, this.artifactLinks());
      this.setView(this.state.view, false);
      if (this.state.layer) await this.selectLayer(this.state.layer, null, true);
      else this.renderSideEmpty();
      if (gen !== this.gen) return;
      // A report reached through the URL may be newer than the list in the picker: refresh the list.
      if (this.reportSel.value !== this.state.report) void this.refreshReportList();
      this.root.dataset.state = 'ready';
    } catch (e) {
      if ((e as Error).name === 'AbortError' || gen !== this.gen) return;
      this.showError(e);
    }
  }

  /** Names that can be selected (verdicts from MCT may name float-model modules such as `stem.0`). */
  private known = (l: string) => this.layerNames.has(l) || this.graph.nodeIdForLayer(l) !== null;
  private verdictLayers(): Set<string> {
    return new Set([...(this.summary?.verdicts ?? []), ...(this.summary?.general ?? [])].flatMap((v) => v.layers ?? []));
  }
  private graphNodeName(nodeId: string): string | null {
    const i = nodeId.lastIndexOf('/');
    return i >= 0 ? nodeId.slice(i + 1) : nodeId;
  }

  private refreshThresholds = debounce(() => this.loadReport(false), 350);

  // --------------------------------------------------------------- selection
  async selectLayer(layer: string | null, nodeId: string | null, centerGraph: boolean) {
    this.state.layer = layer;
    this.writeHash();
    const nid = nodeId ?? (layer ? this.graph.nodeIdForLayer(layer) : null);
    this.charts.select(layer);
    for (const r of this.header.querySelectorAll<HTMLElement>('.degraded-row')) r.classList.toggle('selected', r.dataset.layer === layer);
    await this.graph.selectNode(nid, centerGraph);
    if (!layer) {
      if (nodeId) this.renderNodeOnly(nodeId); else this.renderSideEmpty();
      return;
    }
    await this.loadLayer();
  }

  private async loadLayer() {
    const layer = this.state.layer;
    if (!layer || !this.state.report) return;
    this.layerAbort?.abort();
    const ac = this.layerAbort = new AbortController();
    this.side.dataset.state = 'loading';
    try {
      const d = await getJson<LayerDetail>('layer', {report: this.state.report, ...this.layerQuery(layer), ...this.params()}, ac.signal);
      if (layer !== this.state.layer) return;
      const z = num(this.summary?.thresholds.zscore_outlier_removal ?? 5);
      renderLayerPanel(this.side, d, this.summary, z, (l) => this.selectLayer(l, null, true), this.known,
        (id) => routeUrl('artifact', {report: this.state.report, id}));
      this.side.dataset.state = 'ready';
    } catch (e) {
      if ((e as Error).name === 'AbortError') return;
      clear(this.side);
      this.side.appendChild(errorBox(e));
      this.side.dataset.state = 'error';
    }
  }

  /** A layer by name, or by its index in GET layers when the name is too long for a URL. */
  private layerQuery(layer: string): Record<string, string | number> {
    const MAX_ENCODED_NAME = 4000;
    if (encodeURIComponent(layer).length <= MAX_ENCODED_NAME) return {layer};
    const row = this.layers?.layers.find((l) => l.name === layer);
    return row ? {index: row.index} : {layer};
  }

  private renderNodeOnly(nodeId: string) {
    clear(this.side);
    this.side.dataset.state = 'ready';
    this.side.dataset.layer = '';
    this.side.append(h('div', {class: 'panel-title'}, h('span', {class: 'layer-name', text: nodeId})),
      h('div', {class: 'muted', text: 'This node has no XQuant metrics (it is not a quantized layer in quant_report.json).'}));
  }

  private renderSideEmpty() {
    clear(this.side);
    this.side.dataset.state = 'empty';
    this.side.append(h('div', {class: 'empty'},
      h('div', {class: 'empty-title', text: 'Select a layer'}),
      h('div', {text: 'Click a node in the graph (degraded layers are red), a point in the error charts, or a degraded layer in the summary above.'}),
      h('div', {class: 'muted small', text: 'Keys: / search · f fit · arrows move along edges · Enter selects.'})));
  }

  // --------------------------------------------------------------- rendering
  private renderProblems(problems: Problem[]) {
    clear(this.banner);
    for (const p of problems) {
      this.banner.appendChild(h('div', {class: 'problem'}, h('b', {text: p.what}), p.hint ? h('div', {class: 'hint'}, 'To fix: ', h('code', {text: p.hint})) : null));
    }
  }

  private renderSummary() {
    const s = this.summary!;
    clear(this.header);
    const ratio = num(s.degraded_ratio), limit = num(s.thresholds.degrade_layer_ratio);
    const nDeg = s.degraded_layers?.length ?? 0;
    const stats = h('div', {class: 'stats'},
      h('div', {class: 'stat' + (nDeg ? ' bad' : ' good'), id: 'degraded-stat', dataset: {count: String(nDeg)}},
        h('div', {class: 'stat-num', text: `${nDeg} / ${s.layer_count}`}),
        h('div', {class: 'stat-label', text: `layers degraded (${fmt(ratio * 100, 3)}%; limit ${fmt(limit * 100, 3)}%)`})),
      this.accuracyStat(s),
      this.outputMetricsTable(s));
    this.header.appendChild(stats);
    // degraded layers list
    if (nDeg) {
      const worstBy = new Map((this.layers?.layers ?? []).map((l) => [l.name, l]));
      const list = h('div', {class: 'degraded-list', id: 'degraded-list'});
      for (const name of s.degraded_layers.slice(0, 200)) {
        const l = worstBy.get(name);
        const row = h('button', {class: 'degraded-row' + (name === this.state.layer ? ' selected' : ''), dataset: {layer: name}, title: 'Show this layer',
          onclick: () => this.selectLayer(name, null, true)},
          h('span', {class: 'name', text: name}),
          l?.worst ? h('span', {class: 'worst', text: `${l.worst.metric}/${l.worst.dataset} ${fmt(l.worst.value, 3)}`}) : null,
          ...(l?.judges ?? []).map((j) => judgeChip(j)));
        list.appendChild(row);
      }
      if (nDeg > 200) list.appendChild(h('span', {class: 'muted', text: `+${nDeg - 200} more`}));
      this.header.appendChild(h('div', {class: 'sub-h', text: 'Degraded layers'}));
      this.header.appendChild(list);
    }
    // verdicts
    const vs = s.verdicts ?? [];
    if (vs.length || s.judges_skipped) {
      const box = h('div', {class: 'verdict-summary', id: 'verdict-summary'});
      if (s.judges_skipped) box.appendChild(h('div', {class: 'muted small', text: 'Automatic judges were skipped (too many degraded layers); see the general troubleshoots.'}));
      for (const v of vs) box.appendChild(verdictLine(v, (l) => this.selectLayer(l, null, true), this.known));
      this.header.appendChild(h('div', {class: 'sub-h', text: 'Causes found'}));
      this.header.appendChild(box);
    }
    const gen = s.general ?? [];
    if (gen.length) {
      const box = h('details', {class: 'general', id: 'general', open: !vs.length},
        h('summary', {text: `General troubleshoots (${gen.length})`}),
        ...gen.map((v) => verdictCard(v, (l) => this.selectLayer(l, null, true), false, this.known)));
      this.header.appendChild(box);
    }
    const joins = this.concatSection(s);
    if (joins) this.header.appendChild(joins);
    if (this.compare) this.header.appendChild(this.compareSummary(this.compare));
  }

  /** The concatenation / add joins the backend measured: the widest few from `report`, all of them from
   *  `verdicts` (`concat_checks`, large for big graphs) when the section is opened. */
  private concatSection(s: ReportSummary): HTMLElement | null {
    const cs = s.concat_summary;
    if (!cs || !cs.joins) return null;
    const limit = num(cs.threshold ?? s.thresholds.ratio_unbalanced_concatenation);
    const widest = cs.widest ?? [];
    const all = cs.joins <= widest.length;
    const body = h('div', {class: 'concat-checks'});
    const det = h('details', {class: 'general', id: 'concat-checks', dataset: {state: all ? 'all' : 'widest', joins: String(cs.joins)}},
      h('summary', {text: `Concatenation / add joins: ${cs.joins} (${cs.measured} measured, ${cs.flagged} unbalanced at ratio ≥ ${fmt(limit)})`}), body);
    const onLayer = (l: string) => this.selectLayer(l, null, true);
    const show = (checks: ConcatCheck[], note: string) => {
      clear(body);
      body.append(h('div', {class: 'muted small', text: note}), concatChecksTable(checks, limit, onLayer, this.known));
    };
    const why = 'Widest / narrowest input value range per join; at or over threshold_ratio_unbalanced_concatenation the narrow input loses precision.';
    show(widest, all ? why : `${why} The ${widest.length} widest of ${cs.joins}; loading all…`);
    if (!all) {
      const report = this.state.report, gen = this.gen;
      det.addEventListener('toggle', () => {
        if (!det.open || det.dataset.state !== 'widest') return;
        det.dataset.state = 'loading';
        getJson<VerdictsResponse>('verdicts', {report, ...this.params()}).then((v) => {
          if (gen !== this.gen) return;
          show(v.concat_checks ?? widest, why);
          det.dataset.state = 'all';
        }).catch((e) => { det.dataset.state = 'widest'; body.appendChild(errorBox(e)); });
      });
    }
    return det;
  }

  /** Float vs quantized accuracy, when the report's manifest recorded it (`accuracy` in `report`). */
  private accuracyStat(s: ReportSummary): HTMLElement | null {
    const acc = ((s as unknown as {accuracy?: Record<string, unknown>}).accuracy ??
      (s.manifest as {accuracy?: Record<string, unknown>} | null | undefined)?.accuracy) as Record<string, unknown> | undefined;
    if (!acc) return null;
    const f = num(acc.float), q = num(acc.quantized);
    if (!Number.isFinite(f) || !Number.isFinite(q)) return null;
    const pct = (x: number) => (x <= 1 ? x * 100 : x);
    const drop = pct(f) - pct(q);
    return h('div', {class: 'stat' + (drop > 0.5 ? ' bad' : ' good'), id: 'accuracy-stat'},
      h('div', {class: 'stat-num', text: `${fmt(pct(f), 4)}% → ${fmt(pct(q), 4)}%`}),
      h('div', {class: 'stat-label', text: `accuracy float → quantized (${drop >= 0 ? '−' : '+'}${fmt(Math.abs(drop), 3)} pts${acc.dataset ? ', ' + String(acc.dataset) : ''})`}));
  }

  private outputMetricsTable(s: ReportSummary): HTMLElement {
    const ds = Object.keys(s.output_metrics ?? {});
    if (!ds.length) return h('div', {class: 'muted small', text: 'No output metrics.'});
    const ms = [...new Set(ds.flatMap((d) => Object.keys(s.output_metrics[d] ?? {})))];
    return h('table', {class: 'metrics output', id: 'output-metrics'},
      h('tr', null, h('th', {text: 'model output'}), ...ms.map((m) => h('th', {text: m}))),
      ...ds.map((d) => h('tr', null, h('td', {text: d}), ...ms.map((m) => h('td', {text: fmt(s.output_metrics[d]?.[m])})))));
  }

  private compareSummary(c: CompareResponse): HTMLElement {
    const name = (id: string) => this.reports.find((r) => r.id === id)?.name ?? id;
    const sm = c.summary ?? {};
    const box = h('div', {class: 'compare-summary', id: 'compare-summary', dataset: {improved: String(sm.improved ?? 0), worse: String(sm.worse ?? 0)}},
      h('div', {class: 'sub-h', text: `Comparison: A = ${name(c.a)} → B = ${name(c.b)}`}),
      h('div', {class: 'stats'},
        h('div', {class: 'stat good'}, h('div', {class: 'stat-num', text: String(sm.improved ?? 0)}), h('div', {class: 'stat-label', text: 'layers improved'})),
        h('div', {class: 'stat bad'}, h('div', {class: 'stat-num', text: String(sm.worse ?? 0)}), h('div', {class: 'stat-label', text: 'layers worse'})),
        h('div', {class: 'stat'}, h('div', {class: 'stat-num', text: String(sm.unchanged ?? 0)}), h('div', {class: 'stat-label', text: 'unchanged'})),
        h('div', {class: 'stat'}, h('div', {class: 'stat-num', text: `${sm.degraded_a ?? '?'} → ${sm.degraded_b ?? '?'}`}), h('div', {class: 'stat-label', text: 'degraded layers A → B'}))));
    const rows = c.layers.filter((l) => l.status === 'improved' || l.status === 'worse');
    if (rows.length) {
      const keys = Object.keys(c.layers.find((l) => Object.keys(l.delta ?? {}).length)?.delta ?? {});
      const t = h('table', {class: 'metrics delta-table', id: 'delta-table'},
        h('tr', null, h('th', {text: 'layer'}), h('th', {text: 'status'}), ...keys.map((k) => h('th', {text: 'Δ ' + k}))));
      for (const l of rows.slice(0, 100)) {
        t.appendChild(h('tr', {class: 'delta-row ' + l.status, dataset: {layer: l.name}, onclick: () => this.selectLayer(l.name, null, true)},
          h('td', {text: l.name}), h('td', {text: l.status}), ...keys.map((k) => h('td', {text: fmt(l.delta?.[k], 3)}))));
      }
      box.appendChild(h('details', {class: 'delta-details'}, h('summary', {text: `Per-layer deltas (${rows.length} changed)`}), t));
    }
    for (const v of c.general ?? []) box.appendChild(verdictCard(v, (l) => this.selectLayer(l, null, true), true, this.known));
    return box;
  }

  private artifactLinks(): HTMLElement | null {
    const arts = this.summary?.artifacts ?? [];
    if (!arts.length) return null;
    return h('div', {class: 'artifacts'}, h('span', {class: 'muted', text: 'MCT images: '}),
      ...arts.map((a) => h('a', {href: routeUrl('artifact', {report: this.state.report, id: a.id}), target: '_blank', rel: 'noopener', text: a.name, class: 'artifact-link'})));
  }

  private renderThresholds() {
    const s = this.summary!;
    clear(this.thrBar);
    const t = this.state.t;
    const onChange = () => { this.writeHash(); this.refreshThresholds(); };
    const numInput = (label: string, value: unknown, set: (v: string) => void, title: string, id: string) => {
      const inp = h('input', {type: 'number', step: 'any', value: fmt(value, 6) === '∞' ? 'Infinity' : String(num(value)), id, title, 'aria-label': label});
      inp.addEventListener('input', () => { if (inp.value !== '' && Number.isFinite(Number(inp.value))) { set(inp.value); onChange(); } });
      return h('label', {class: 'thr-field', title}, h('span', {class: 'muted', text: label}), inp);
    };
    const metrics = s.metrics ?? Object.keys(s.thresholds.quantize_error ?? {});
    for (const m of metrics) {
      const dir = h('select', {id: `under-${m}`, 'aria-label': `${m} direction`, title: 'Which side of the threshold counts as degraded'},
        h('option', {value: '0', text: 'above'}), h('option', {value: '1', text: 'below'}));
      dir.value = s.thresholds.detect_under[m] ? '1' : '0';
      dir.addEventListener('change', () => { t.under[m] = dir.value; onChange(); });
      const f = numInput(m, s.thresholds.quantize_error[m], (v) => { t.thr[m] = v; }, `threshold_quantize_error['${m}']`, `thr-${m}`);
      f.append(h('span', {class: 'muted', text: 'flag if'}), dir);
      this.thrBar.appendChild(f);
    }
    this.thrBar.appendChild(numInput('degraded ratio', s.thresholds.degrade_layer_ratio, (v) => { t.ratio = v; }, 'threshold_degrade_layer_ratio', 'thr-ratio'));
    this.thrBar.appendChild(numInput('z-score', s.thresholds.zscore_outlier_removal, (v) => { t.z = v; }, 'threshold_zscore_outlier_removal', 'thr-z'));
    this.thrBar.appendChild(numInput('concat ratio', s.thresholds.ratio_unbalanced_concatenation, (v) => { t.concat = v; }, 'threshold_ratio_unbalanced_concatenation', 'thr-concat'));
    this.thrBar.appendChild(numInput('bits', s.thresholds.bitwidth_mixed_precision_with_model_output_loss_objective, (v) => { t.bits = v; }, 'threshold_bitwidth_mixed_precision_with_model_output_loss_objective', 'thr-bits'));
    this.thrBar.appendChild(h('button', {class: 'btn small', id: 'thr-reset', text: 'Reset', title: 'Back to the report\'s own thresholds', onclick: () => {
      this.state.t = {thr: {}, under: {}}; this.writeHash(); this.loadReport(false);
    }}));
    const custom = Object.keys(thresholdQuery(t)).length;
    const btn = this.root.querySelector('#thr-toggle');
    if (btn) btn.textContent = custom ? `Thresholds (${custom} changed)` : 'Thresholds';
  }

  // --------------------------------------------------------------- empty / error states
  private showNoReports(r: ReportsResponse) {
    this.root.dataset.state = 'empty';
    clear(this.header);
    this.graph.clearGraph('No report');
    this.header.appendChild(h('div', {class: 'empty big'},
      h('div', {class: 'empty-title', text: 'No XQuant report found'}),
      h('div', null, 'Looked in ', h('code', {text: r.logdir ?? '(logdir)'}), '. Run MCT\'s XQuant and write the report inside the TensorBoard logdir, e.g.:'),
      h('pre', {class: 'snippet', text: 'from model_compression_toolkit.xquant import xquant_report_troubleshoot_pytorch_experimental, XQuantConfig\n' +
        'xquant_config = XQuantConfig(report_dir="<logdir>/my_model/xquant_report")\n' +
        'result = xquant_report_troubleshoot_pytorch_experimental(float_model, quantized_model, repr_dataset, validation_dataset, xquant_config)'}),
      h('div', {class: 'muted', text: 'Then press Reload.'})));
    this.renderProblems(r.problems ?? []);
  }

  private showError(e: unknown) {
    this.root.dataset.state = 'error';
    clear(this.banner);
    this.banner.appendChild(errorBox(e));
  }
}

function errOrNull(e: unknown): Error | null {
  if ((e as Error).name === 'AbortError') throw e;
  if (e instanceof ApiError && e.status === 404 && /no (graph|layers)/i.test(e.message)) return e;
  return e as Error;
}
function errProblem(route: string, e: Error): Problem {
  return {what: `${route}: ${e.message}`, hint: e instanceof ApiError ? e.hint : ''};
}
function errorBox(e: unknown): HTMLElement {
  const err = e as ApiError;
  return h('div', {class: 'problem error'}, h('b', {text: err.message ?? String(e)}),
    err.hint ? h('div', {class: 'hint'}, 'To fix: ', h('code', {text: err.hint})) : null);
}
function verdictLine(v: Verdict, onLayer: (l: string) => void, known: (l: string) => boolean): HTMLElement {
  const m = judgeMark(v.judge);
  return h('div', {class: 'verdict-line', dataset: {judge: v.judge}}, judgeChip(v.judge), h('b', {text: ' ' + m.title.split(' (')[0] + ': '}),
    h('span', {text: v.message || GENERAL_REASON[String(v.numbers?.reason)] || ''}), ' ',
    ...(v.layers ?? []).slice(0, 6).map((l) => known(l)
      ? h('a', {href: '#', class: 'layer-link', text: l, onclick: (e: Event) => { e.preventDefault(); onLayer(l); }})
      : h('code', {class: 'layer-ref', text: l + ' '})),
    v.source === 'mct' ? h('span', {class: 'muted small', text: ' (reported by MCT)'}) : null);
}

let app: App | null = null;

export function render() {
  watchTheme();
  const css = h('link', {rel: 'stylesheet', href: new URL('./style.css', import.meta.url).href});
  document.head.appendChild(css);
  document.body.classList.add('xq-body');
  app = new App();
  document.body.appendChild(app.root);
  const a = app;
  // Test / automation hooks (read-only helpers plus selection).
  (window as unknown as {__xquant: unknown}).__xquant = {
    selectLayer: (name: string) => a.selectLayer(name, null, true),
    nodePoint: (name: string) => {
      const g = (a as unknown as {graph: GraphView}).graph;
      const id = g.nodeIdForLayer(name) ?? name;
      return g.nodePoint(id);
    },
    state: () => JSON.parse(JSON.stringify(a.state)),
    // compare badge drawn on a layer's node in the last frame, and its hover text
    drawnBadge: (name: string) => {
      const g = (a as unknown as {graph: GraphView}).graph;
      return g.drawnBadge(g.nodeIdForLayer(name) ?? name);
    },
    hoverText: (name: string) => {
      const g = (a as unknown as {graph: GraphView}).graph;
      return g.hoverText(g.nodeIdForLayer(name) ?? name);
    },
    shareUrl: () => a.shareUrl(),
    reload: () => a.loadAll(true),
  };
  a.loadAll();
}
