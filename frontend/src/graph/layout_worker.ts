// Module worker (served from static/layout_worker.js): runs the hierarchical dagre layout off the main thread.
// Also importable from the main thread as a fallback when module workers are unavailable.
import {Layouter} from './layout';
import type {Hierarchy} from './model';

export {Layouter};

declare const WorkerGlobalScope: unknown;
const inWorker = typeof WorkerGlobalScope !== 'undefined' && typeof self !== 'undefined' &&
  (self as unknown) instanceof (WorkerGlobalScope as {new (): unknown});

if (inWorker) {
  let layouter: Layouter | null = null;
  self.onmessage = (ev: MessageEvent) => {
    const msg = ev.data as {type: string; hier?: Hierarchy; expanded?: string[]; req: number};
    try {
      if (msg.type === 'init') {
        layouter = new Layouter(msg.hier!);
        (self as unknown as Worker).postMessage({type: 'ready', req: msg.req});
      } else if (msg.type === 'layout' && layouter) {
        const res = layouter.layout(msg.expanded!);
        (self as unknown as Worker).postMessage({type: 'layout', req: msg.req, res});
      }
    } catch (e) {
      (self as unknown as Worker).postMessage({type: 'error', req: msg.req, error: String((e as Error)?.stack ?? e)});
    }
  };
}
