// The views of the centre area and the tabs that switch between them: the graph (graph/view.ts), the error charts
// (chart.ts), the Manual (manual.ts) and, when the logdir holds studies, the Attempts of one (study.ts).
import type {CompareResponse, LayersResponse, ReportSummary} from '../api';
import {routeUrl} from '../api';
import {ChartsView} from '../chart';
import {compareMarks} from '../compare';
import {h} from '../dom';
import {GraphView} from '../graph/view';
import {ManualView, setManualNavigator} from '../manual';
import type {View} from '../state';
import {AttemptsView, type AttemptsEvents} from '../study';

export interface ViewEvents {
  /** a graph node was clicked or picked (layer: its quant_report layer, if any) */
  onNode(nodeId: string, layer: string | null): void;
  /** a chart point was clicked */
  onChartLayer(layer: string): void;
  /** a manual entry was picked, or a cross-reference / countermeasure link followed */
  openManual(id: string): void;
  /** a tab was clicked */
  onTab(view: View): void;
  /** an attempt of the study was clicked */
  onAttempt: AttemptsEvents['onAttempt'];
}

export class Views {
  readonly graph: GraphView;
  readonly charts: ChartsView;
  readonly manual: ManualView;
  readonly attempts: AttemptsView;
  readonly tabs: Record<View, HTMLButtonElement> = {
    graph: h('button', {class: 'tab', text: 'Graph', dataset: {view: 'graph'}}),
    chart: h('button', {class: 'tab', text: 'Error charts', dataset: {view: 'chart'}}),
    manual: h('button', {class: 'tab', text: 'Manual', title: 'Every troubleshooting entry of the XQuant manual', dataset: {view: 'manual'}}),
    attempts: h('button', {class: 'tab', text: 'Attempts', id: 'attempts-tab', hidden: true,
      title: 'The countermeasures a study tried, one quantization each (tb_xquant_plugin.mct_study)', dataset: {view: 'attempts'}}),
  };
  /** the tab strip, for the top bar */
  readonly tabList: HTMLElement;
  /** the centre area holding the three views */
  readonly center: HTMLElement;
  private graphHost = h('div', {class: 'view-host'});
  private chartHost = h('div', {class: 'view-host'});
  private manualHost = h('div', {class: 'view-host', id: 'manual-host'});
  private attemptsHost = h('div', {class: 'view-host', id: 'attempts-host'});

  constructor(ev: ViewEvents) {
    this.graph = new GraphView({onSelect: (nodeId, layer) => ev.onNode(nodeId, layer)});
    this.charts = new ChartsView((layer) => ev.onChartLayer(layer));
    this.manual = new ManualView((id) => ev.openManual(id));
    this.attempts = new AttemptsView({onAttempt: (a, base) => ev.onAttempt(a, base)});
    setManualNavigator((id) => ev.openManual(id));
    this.graphHost.appendChild(this.graph.el);
    this.chartHost.appendChild(this.charts.el);
    this.manualHost.appendChild(this.manual.el);
    this.attemptsHost.appendChild(this.attempts.el);
    for (const t of Object.values(this.tabs)) t.addEventListener('click', () => ev.onTab(t.dataset.view as View));
    this.tabList = h('div', {class: 'tabs', role: 'tablist'}, this.tabs.graph, this.tabs.chart, this.tabs.manual, this.tabs.attempts);
    this.center = h('div', {class: 'center'}, this.graphHost, this.chartHost, this.manualHost, this.attemptsHost);
  }

  /** Show view `v` (the Manual at entry `man`, or its overview). */
  show(v: View, man: string | null) {
    this.graphHost.hidden = v !== 'graph';
    this.chartHost.hidden = v !== 'chart';
    this.manualHost.hidden = v !== 'manual';
    this.attemptsHost.hidden = v !== 'attempts';
    for (const [k, t] of Object.entries(this.tabs)) { t.classList.toggle('active', k === v); t.setAttribute('aria-selected', String(k === v)); }
    if (v === 'chart') requestAnimationFrame(() => this.charts.draw());
    else if (v === 'manual') void this.manual.show(man);
    else if (v === 'graph') this.graph.requestDraw();
  }

  /** The Attempts tab is shown only when the logdir holds a study (or the view is open). */
  showAttemptsTab(on: boolean) { this.tabs.attempts.hidden = !on; }

  /** A report's answers arrived (the graph itself is set as soon as it arrives): compare marks and charts. */
  setAnswers(a: {summary: ReportSummary; layers: LayersResponse | null; compare: CompareResponse | null}, report: string | null) {
    const c = a.compare;
    this.graph.setCompare(c ? compareMarks(c.layers, c.thresholds ?? a.summary.thresholds) : null);
    this.charts.set(a.layers, a.summary, c, artifactLinks(a.summary, report));
  }

  /** The theme changed. */
  redraw() { this.graph.requestDraw(); this.charts.draw(); }
}

/** The last part of a graph node id (`Model/Conv_0/stem_conv` → `stem_conv`): what verdicts call a node. */
export function nodeShortName(nodeId: string): string {
  const i = nodeId.lastIndexOf('/');
  return i >= 0 ? nodeId.slice(i + 1) : nodeId;
}

/** Links to the images MCT wrote for the report (shown under the charts). */
function artifactLinks(s: ReportSummary, report: string | null): HTMLElement | null {
  const arts = s.artifacts ?? [];
  if (!arts.length) return null;
  return h('div', {class: 'artifacts'}, h('span', {class: 'muted', text: 'MCT images: '}),
    ...arts.map((a) => h('a', {href: routeUrl('artifact', {report, id: a.id}), target: '_blank', rel: 'noopener', text: a.name, class: 'artifact-link'})));
}
