// The messages between the layout client (client.ts, main thread) and the layout worker (layout_worker.ts).
// Every request carries a `req` number; the worker answers with the same number.
import type {LayoutOptions, LayoutResult} from './layout';
import type {Hierarchy} from './model';

/** Main thread → worker. */
export type ToWorker =
  /** a new graph: replaces the worker's layouter (and its cache); the hierarchy comes with the layouts */
  | {type: 'init'; req: number}
  /** lay out the graph with these groups expanded (ignored before the first init), after adding `add`, the part
   *  of the hierarchy not given before (GraphModel.hierarchyFor); levels laid out before are only re-placed, see
   *  layout.ts */
  | {type: 'layout'; req: number; expanded: string[]; opts: LayoutOptions; add: Hierarchy};

/** Worker → main thread. */
export type FromWorker =
  | {type: 'ready'; req: number}
  | {type: 'layout'; req: number; res: LayoutResult}
  | {type: 'error'; req: number; error: string};
