// Entry point: TensorBoard imports this ES module inside the plugin iframe and calls render().
// The App only wires the modules of app/ together: what happens when the user acts, the URL changes or answers
// arrive. Loading and caching: app/data.ts; URL state: app/hash_sync.ts; the parts of the page: app/topbar.ts,
// app/threshold_bar.ts, app/problems.ts, app/summary.ts, app/views.ts, app/side_panel.ts.
import type {GraphResponse, ReportsResponse, StudyAttempt} from './api';
import {watchForReloads} from './app/auto_reload';
import {DataStore} from './app/data';
import {HashSync, initialState, stateFromHash} from './app/hash_sync';
import {ProblemBanner} from './app/problems';
import {SidePanel} from './app/side_panel';
import {SummaryHeader} from './app/summary';
import {installTestHooks} from './app/test_hooks';
import {ThresholdBar} from './app/threshold_bar';
import {TopBar} from './app/topbar';
import {nodeShortName, Views} from './app/views';
import {GRAPH_RETRIES, GRAPH_RETRY_MS, THRESHOLD_DEBOUNCE_MS} from './constants';
import {afterPaint, debounce, h} from './dom';
import {type AppState, emptyThresholds, type View} from './state';
import {onThemeChange, watchTheme} from './theme';

class App {
  state: AppState = initialState();
  readonly root = h('div', {id: 'xquant-root', class: 'xq', dataset: {state: 'loading'}});
  readonly data = new DataStore(() => this.state);
  readonly hash = new HashSync(this.root, () => this.state);
  readonly views: Views;
  private top: TopBar;
  private thresholds: ThresholdBar;
  private banner = new ProblemBanner();
  private header = new SummaryHeader();
  private side: SidePanel;
  private graphRetries = 0;
  private refreshThresholds = debounce(() => this.loadReport(false), THRESHOLD_DEBOUNCE_MS);
  /** Names that can be selected (verdicts from MCT may name float-model modules such as `stem.0`). */
  private known = (l: string) => this.data.hasLayer(l) || this.views.graph.nodeIdForLayer(l) !== null;

  constructor() {
    this.views = new Views({
      onNode: (nodeId, layer) => {
        // Nodes that are not quant_report layers can still carry verdicts (e.g. activations for shift negative).
        const name = layer ?? nodeShortName(nodeId);
        this.selectLayer(name && (layer || this.data.isVerdictLayer(name)) ? name : null, nodeId, false);
      },
      onChartLayer: (layer) => this.selectLayer(layer, null, true),
      openManual: (id) => this.openManual(id),
      onTab: (v) => this.setView(v),
      onAttempt: (a, base) => this.openAttempt(a, base),
    });
    this.thresholds = new ThresholdBar({
      onEdit: () => { this.hash.write(); this.refreshThresholds(); },
      onReset: () => { this.state.t = emptyThresholds(); this.hash.write(); this.loadReport(false); },
    });
    this.side = new SidePanel({data: this.data, state: () => this.state, onLayer: (l) => this.selectLayer(l, null, true), known: this.known});
    this.top = new TopBar({tabs: this.views.tabList, thresholdsToggle: this.thresholds.toggle}, {
      onReport: (id) => {
        this.graphRetries = 0;
        this.state.report = id;
        this.state.layer = null;
        if (this.state.cmp === this.state.report) this.state.cmp = null;
        this.loadReport();
      },
      onCompare: (id) => { this.state.cmp = id; this.loadReport(false); },
      onStudy: (id) => { this.state.study = id; this.setView('attempts'); },
      onReload: () => this.loadAll(true),
      shareUrl: () => this.hash.shareUrl(),
    });
    const main = h('div', {class: 'main'}, this.views.center, this.side.el);
    this.root.append(this.top.el, this.thresholds.el, this.banner.el, this.header.el, main);
    this.side.showEmpty();
    this.hash.listen(() => this.onHashChange());
    onThemeChange(() => { this.views.redraw(); if (this.state.layer) this.side.showLayer(); });
    watchForReloads(this.root, () => this.poll());
  }

  // --------------------------------------------------------------- state
  private onHashChange() {
    const s = stateFromHash();
    const reportChanged = s.report !== this.state.report || s.cmp !== this.state.cmp || JSON.stringify(s.t) !== JSON.stringify(this.state.t);
    const layerChanged = s.layer !== this.state.layer;
    this.state = s;
    this.hash.mirror();
    if (s.study) this.top.selectStudy(s.study);
    this.setView(s.view, false);
    if (reportChanged) this.loadReport(false);
    else if (layerChanged) this.selectLayer(s.layer, null, true);
  }
  private setView(v: View, write = true) {
    this.state.view = v;
    if (v !== 'chart') this.data.startGraph();  // a load started in the chart view asks for the graph now
    this.views.show(v, this.state.man);
    if (v === 'attempts') { this.views.showAttemptsTab(true); void this.showStudy(); }
    if (write) this.hash.write();
  }

  // --------------------------------------------------------------- studies (Attempts view)
  /** Show the state's study in the Attempts view (the first study when the state names none or one that is gone);
   *  `fresh`: ask the backend again even when it is the study shown (a running study rewrites its study.json). */
  private async showStudy(fresh = false) {
    const view = this.views.attempts;
    // a study named by a link may be newer than the list loaded
    const refill = !!this.state.study && !this.data.studyRef(this.state.study);
    if (refill) await this.data.loadStudies(true);
    if (!this.data.studies.length) { view.showEmpty(); return; }
    if (!this.state.study || !this.data.studyRef(this.state.study)) {
      this.state.study = this.data.studies[0].id;
      this.hash.write();
    }
    const id = this.state.study;
    if (refill) this.top.fillStudies(this.data.studies, id); else this.top.selectStudy(id);
    if (!fresh && this.data.study?.id === id) { view.render(this.data.study); return; }
    view.loading(id);
    try {
      const s = await this.data.loadStudy(id);
      if (this.state.study === id) view.render(s);
    } catch (e) {
      if ((e as Error).name === 'AbortError' || this.state.study !== id) return;
      view.showError(id, e);
    }
  }

  /** An attempt was clicked: its report in compare mode against the baseline's (the baseline alone for itself). */
  private openAttempt(a: StudyAttempt, base: StudyAttempt | null) {
    if (!a.report_id) return;
    this.graphRetries = 0;
    this.state.report = a.report_id;
    this.state.cmp = base && base.report_id && base.report_id !== a.report_id ? base.report_id : null;
    this.state.layer = null;
    this.setView('graph', false);
    void this.loadReport();
  }

  private async loadStudyList() {
    await this.data.loadStudies();
    this.top.fillStudies(this.data.studies, this.state.study);
    this.views.showAttemptsTab(this.data.studies.length > 0 || this.state.view === 'attempts');
  }
  /** Open a manual entry in the Manual view (list item, cross-reference, verdict countermeasure). */
  openManual(id: string) {
    this.state.man = id;
    this.setView('manual');
  }

  // --------------------------------------------------------------- loading
  async loadAll(userAction = false) {
    this.root.dataset.state = 'loading';
    try {
      const [r] = await Promise.all([this.data.loadReports(), this.loadStudyList()]);
      this.top.fill(this.data.reports, this.state.report, this.state.cmp);
      if (this.state.view === 'attempts') {
        this.views.show('attempts', this.state.man);  // at once: the report loads meanwhile
        void this.showStudy(true);
      }
      if (!this.data.reports.length) { this.showNoReports(r); return; }
      if (!this.state.report || !this.data.reportRef(this.state.report)) this.state.report = this.data.defaultReport();
      this.top.selectReport(this.state.report);
      await this.loadReport(false);
      if (userAction) this.top.reloaded();
    } catch (e) {
      this.showError(e);
    }
  }

  /** Re-read what changed on the backend (timer, tab shown again, TensorBoard's reload). */
  private async poll() {
    if (document.hidden) return;
    try {
      if (await this.data.reportsChanged()) { await this.loadAll(); return; }
      if (await this.data.studiesChanged()) await this.loadStudyList();
      if (this.state.view === 'attempts') await this.showStudy(true);
      if (!this.state.report || this.root.dataset.state !== 'ready') return;
      if (await this.data.summaryChanged(this.state.report)) await this.loadReport(false);
    } catch { /* transient */ }
  }

  private async refreshReportList() {
    try {
      await this.data.loadReports(true);
      this.top.fill(this.data.reports, this.state.report, this.state.cmp);
    } catch { /* transient: the next poll retries */ }
  }

  async loadReport(resetLayer = true) {
    if (!this.state.report) return this.loadAll();
    if (resetLayer) this.state.layer = null;
    this.top.select(this.state.report, this.state.cmp);
    this.hash.write();
    this.root.dataset.state = 'loading';
    // The chart view needs the layers only: the graph (the largest answer) is asked for when another view opens.
    const load = this.data.loadReport((nodes) => this.views.graph.setGraph(nodes), this.state.view !== 'chart');
    const gen = load.gen;
    try {
      // The summary, the layers (the charts) and the comparison do not wait for the graph answer, the largest. In
      // the graph view they are rendered after the graph's first frame: rendering them (header, lists) while the
      // layout worker works held its answer on the main thread for 0.2-0.5 s at 5,000 layers.
      const a = this.state.view === 'chart' ? await load.answers
        : (await Promise.all([load.answers, load.graphDrawn.catch(() => undefined)]))[0];
      // the graph's first frame on screen before the summary renders: at 20,000 layers the header and its lists
      // held the main thread for about a second between the graph's draw and its paint
      if (this.state.view !== 'chart') await afterPaint();
      if (!this.data.isCurrent(gen)) return;
      const problems = this.data.accept(a);
      this.banner.show(problems);
      const header = (graph: GraphResponse | null) => this.header.render({summary: a.summary, layers: this.data.layers,
        graph, compare: this.data.compare, reports: this.data.reports, selected: this.state.layer,
        onLayer: (l) => this.selectLayer(l, null, true), known: this.known, loadVerdicts: this.data.verdictsLoader()});
      header(null);
      this.thresholds.render(a.summary, this.state.t);
      this.root.dataset.degradedCount = String(a.summary.degraded_layers?.length ?? 0);
      this.views.setAnswers({summary: a.summary, layers: this.data.layers, compare: this.data.compare}, this.state.report);
      this.setView(this.state.view, false);
      const withGraph = async () => {
        const graph = await load.graph;
        if (!this.data.isCurrent(gen)) return false;
        this.banner.show([...problems, ...this.data.graphProblems(graph)]);
        if (!(graph instanceof Error) && graph.nodes?.length) {
          // the graph's first frame first: the header's re-render would hold the main thread while the layout
          // worker's answer waits
          await load.graphDrawn;
          if (!this.data.isCurrent(gen)) return false;
          header(graph);  // the degraded layers grouped by module scope, which the graph gives
          this.graphRetries = 0;
        } else this.noGraph(graph, gen);
        return this.data.isCurrent(gen);
      };
      if (this.state.view === 'chart') {
        // ready without the graph; it is drawn once asked for (the graph view opened)
        if (this.state.layer) await this.selectLayer(this.state.layer, null, true);
        else this.side.showEmpty();
        if (!this.data.isCurrent(gen)) return;
        if (!this.top.showsReport(this.state.report)) void this.refreshReportList();
        this.root.dataset.state = 'ready';
        void withGraph().then(async (current) => {
          if (!current) return;
          if (this.state.layer) await this.views.graph.selectNode(this.views.graph.nodeIdForLayer(this.state.layer), true);
          this.header.markSelected(this.state.layer);
        }).catch(() => { /* aborted by a newer load */ });
        return;
      }
      if (!(await withGraph())) return;
      if (this.state.layer) await this.selectLayer(this.state.layer, null, true);
      else this.side.showEmpty();
      if (!this.data.isCurrent(gen)) return;
      // A report reached through the URL may be newer than the list in the picker: refresh the list.
      if (!this.top.showsReport(this.state.report)) void this.refreshReportList();
      // the summary above took its room meanwhile: make the first view again for the canvas left
      await this.views.graph.settle();
      if (!this.data.isCurrent(gen)) return;
      this.root.dataset.state = 'ready';
    } catch (e) {
      if ((e as Error).name === 'AbortError' || !this.data.isCurrent(gen)) return;
      this.showError(e);
    }
  }

  /** The report's graph is empty or failed: say so, or retry while TensorBoard may still be loading the event files
   *  (right after start-up the graph may not be readable yet although the report lists one). */
  private noGraph(graph: GraphResponse | Error, gen: number) {
    const ref = this.data.reportRef(this.state.report);
    if (ref?.has_graph && this.graphRetries < GRAPH_RETRIES) {
      this.graphRetries++;
      this.views.graph.clearGraph('Waiting for TensorBoard to load the graph…');
      setTimeout(() => { if (this.data.isCurrent(gen)) this.loadReport(false); }, GRAPH_RETRY_MS);
    } else {
      this.views.graph.clearGraph(graph instanceof Error ? graph.message : 'This report has no model graph.');
    }
  }

  // --------------------------------------------------------------- selection
  async selectLayer(layer: string | null, nodeId: string | null, centerGraph: boolean) {
    this.state.layer = layer;
    this.hash.write();
    const nid = nodeId ?? (layer ? this.views.graph.nodeIdForLayer(layer) : null);
    this.views.charts.select(layer);
    this.header.markSelected(layer);
    await this.views.graph.selectNode(nid, centerGraph);
    if (!layer) {
      if (nodeId) this.side.showNode(nodeId); else this.side.showEmpty();
      return;
    }
    await this.side.showLayer();
  }

  // --------------------------------------------------------------- empty / error states
  private showNoReports(r: ReportsResponse) {
    this.root.dataset.state = 'empty';
    this.views.graph.clearGraph('No report');
    this.header.showNoReports(r.logdir);
    this.banner.show([]);
  }

  private showError(e: unknown) {
    this.root.dataset.state = 'error';
    this.banner.showError(e);
  }
}

export function render() {
  watchTheme();
  const css = h('link', {rel: 'stylesheet', href: new URL('./style.css', import.meta.url).href});
  document.head.appendChild(css);
  document.body.classList.add('xq-body');
  const app = new App();
  document.body.appendChild(app.root);
  installTestHooks({
    selectLayer: (name, nodeId, center) => app.selectLayer(name, nodeId, center),
    graph: app.views.graph,
    state: () => app.state,
    shareUrl: () => app.hash.shareUrl(),
    reload: () => app.loadAll(true),
  });
  app.loadAll();
}
