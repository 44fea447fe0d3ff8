// The side panel (#layer-panel): nothing selected, a graph node without metrics, or the selected layer's detail
// (loaded from GET layer and drawn by panel.ts).
import {getJson, num, routeUrl} from '../api';
import type {ReplayResponse} from '../api';
import {DEFAULT_ZSCORE} from '../constants';
import {clear, h} from '../dom';
import {renderLayerPanel} from '../panel';
import type {AppState} from '../state';
import type {DataStore} from './data';
import {errorBox} from './problems';

export interface SidePanelDeps {
  data: DataStore;
  state: () => AppState;
  onLayer: (layer: string) => void;
  known: (layer: string) => boolean;
}

export class SidePanel {
  readonly el = h('aside', {class: 'side', id: 'layer-panel', dataset: {state: 'empty'}});

  constructor(private deps: SidePanelDeps) {}

  /** Load and show the state's layer (a newer selection wins over an answer still on its way). */
  async showLayer() {
    const {data, state} = this.deps;
    const layer = state().layer, report = state().report;
    if (!layer || !report) return;
    const answer = data.loadLayer(report, layer);
    this.el.dataset.state = 'loading';
    try {
      const d = await answer;
      if (layer !== state().layer) return;
      const z = num(data.summary?.thresholds.zscore_outlier_removal ?? DEFAULT_ZSCORE);
      const report = state().report;
      renderLayerPanel(this.el, d, data.summary, z, this.deps.onLayer, this.deps.known,
        (id) => routeUrl('artifact', {report, id}),
        (zz) => getJson<ReplayResponse>('replay', {report, layer: d.name, clip_z: zz}));
      this.el.dataset.state = 'ready';
    } catch (e) {
      if ((e as Error).name === 'AbortError') return;
      clear(this.el);
      this.el.appendChild(errorBox(e));
      this.el.dataset.state = 'error';
    }
  }

  /** A graph node that is not a quant_report layer and that no verdict names. */
  showNode(nodeId: string) {
    clear(this.el);
    this.el.dataset.state = 'ready';
    this.el.dataset.layer = '';
    this.el.append(h('div', {class: 'panel-title'}, h('span', {class: 'layer-name', text: nodeId})),
      h('div', {class: 'muted', text: 'This node has no XQuant metrics (it is not a quantized layer in quant_report.json).'}));
  }

  showEmpty() {
    clear(this.el);
    this.el.dataset.state = 'empty';
    this.el.append(h('div', {class: 'empty'},
      h('div', {class: 'empty-title', text: 'Select a layer'}),
      h('div', {text: 'Click a node in the graph (degraded layers are red), a point in the error charts, or a degraded layer in the summary above.'}),
      h('div', {class: 'muted small', text: 'Keys: / search · f fit · arrows move along edges · Enter selects.'})));
  }
}
