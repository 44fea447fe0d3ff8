// window.__xquant: read-only helpers plus selection, for the browser tests (tests/browser) and bench/browser.py.
import type {GraphView} from '../graph/view';
import type {AppState} from '../state';

export interface HookTarget {
  selectLayer(name: string, nodeId: null, center: true): Promise<void>;
  readonly graph: GraphView;
  state(): AppState;
  shareUrl(): string;
  reload(): Promise<void>;
}

export function installTestHooks(t: HookTarget) {
  const g = t.graph;
  const node = (name: string) => g.nodeIdForLayer(name) ?? name;
  (window as unknown as {__xquant: unknown}).__xquant = {
    selectLayer: (name: string) => t.selectLayer(name, null, true),
    /** canvas coordinates of a layer's node, for a real click */
    nodePoint: (name: string) => g.nodePoint(node(name)),
    state: () => JSON.parse(JSON.stringify(t.state())),
    /** compare badge drawn on a layer's node in the last frame, and its hover text */
    drawnBadge: (name: string) => g.drawnBadge(node(name)),
    hoverText: (name: string) => g.hoverText(node(name)),
    shareUrl: () => t.shareUrl(),
    reload: () => t.reload(),
    /** the graph as drawn: zoom, on-screen label px, boxes in canvas px with their degraded counts (graph/view.ts) */
    view: () => g.viewState(),
    /** the work of every layout call of the current graph: dagre runs, boxes and edges given to dagre, boxes placed */
    layoutLog: () => g.layoutLog(),
  };
}
