// Module worker (served from static/layout_worker.js): runs the hierarchical dagre layout off the main thread.
// Also importable from the main thread as a fallback when module workers are unavailable.
import {Layouter} from './layout';
import type {FromWorker, ToWorker} from './messages';

export {Layouter};

declare const WorkerGlobalScope: unknown;
const inWorker = typeof WorkerGlobalScope !== 'undefined' && typeof self !== 'undefined' &&
  (self as unknown) instanceof (WorkerGlobalScope as {new (): unknown});

if (inWorker) {
  let layouter: Layouter | null = null;
  const post = (m: FromWorker) => (self as unknown as Worker).postMessage(m);
  self.onmessage = (ev: MessageEvent<ToWorker>) => {
    const msg = ev.data;
    try {
      if (msg.type === 'init') {
        layouter = new Layouter();
        post({type: 'ready', req: msg.req});
      } else if (msg.type === 'layout' && layouter) {
        layouter.extend(msg.add);
        post({type: 'layout', req: msg.req, res: layouter.layout(msg.expanded, msg.opts)});
      }
    } catch (e) {
      post({type: 'error', req: msg.req, error: String((e as Error)?.stack ?? e)});
    }
  };
}
