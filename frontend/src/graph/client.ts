// Talks to the layout worker; falls back to laying out on the main thread if the worker cannot start.
import type {LayoutOptions, LayoutResult} from './layout';
import type {FromWorker, ToWorker} from './messages';
import type {Hierarchy} from './model';

type Pending = {resolve: (r: LayoutResult) => void; reject: (e: Error) => void};
interface LocalLayouter { layout(expanded: string[], opts: LayoutOptions): LayoutResult; extend(add: Hierarchy): void }
type LayouterCtor = new (h?: Hierarchy) => LocalLayouter;
/** The part of the graph's hierarchy a layout of these expanded groups needs, not given before (and now given). */
type HierarchyPart = (expanded: string[]) => Hierarchy;

export class LayoutClient {
  private worker: Worker | null = null;
  private local: LocalLayouter | null = null;
  /** the worker module's Layouter once it was imported on the main thread */
  private layouterCtor: LayouterCtor | null = null;
  private req = 0;
  private pending = new Map<number, Pending>();
  /** everything given to the layouter of the current graph, for a main-thread layouter made after a worker failed */
  private given: Hierarchy = {items: {}, levelEdges: {}};
  private part: HierarchyPart = () => ({items: {}, levelEdges: {}});
  readonly workerUrl = new URL('./layout_worker.js', import.meta.url);

  constructor() {
    try {
      this.worker = new Worker(this.workerUrl, {type: 'module', name: 'xquant-layout'});
      this.worker.onmessage = (ev: MessageEvent<FromWorker>) => this.onMessage(ev.data);
      this.worker.onerror = (ev) => { ev.preventDefault(); this.fallback(String(ev.message || 'worker error')); };
    } catch {
      this.worker = null;
    }
  }

  get mode() { return this.worker ? 'worker' : 'main-thread'; }

  private post(msg: ToWorker) { this.worker!.postMessage(msg); }

  private onMessage(d: FromWorker) {
    const p = this.pending.get(d.req);
    if (!p) return;           // 'ready' answers an init, which nobody waits for
    this.pending.delete(d.req);
    if (d.type === 'layout') p.resolve(d.res);
    else if (d.type === 'error') p.reject(new Error(d.error));
  }

  /** The same module as the worker, imported into the main thread. */
  private async importLayouter(): Promise<LayouterCtor> {
    const mod = await import(/* @vite-ignore */ this.workerUrl.href) as {Layouter: LayouterCtor};
    this.layouterCtor = mod.Layouter;
    return mod.Layouter;
  }

  private async fallback(reason: string) {
    console.warn('xquant: layout worker unavailable, laying out on the main thread:', reason);
    this.worker?.terminate();
    this.worker = null;
    const Ctor = await this.importLayouter();
    this.local = new Ctor(this.given);
    for (const [, p] of this.pending) p.reject(new Error('retry'));
    this.pending.clear();
  }

  /** A new graph. `part` gives the hierarchy level by level as layouts need it (GraphModel.hierarchyFor): the
   *  worker is never sent the whole graph, and a view's cost follows what it shows. */
  init(part: HierarchyPart) {
    this.part = part;
    this.given = {items: {}, levelEdges: {}};
    if (this.worker) this.post({type: 'init', req: ++this.req});
    // Main thread: a new layouter now, or on the next layout() once the module is imported.
    else this.local = this.layouterCtor ? new this.layouterCtor() : null;
  }

  async layout(expanded: string[], opts: LayoutOptions): Promise<LayoutResult> {
    const add = this.part(expanded);
    Object.assign(this.given.items, add.items);
    Object.assign(this.given.levelEdges, add.levelEdges);
    for (let attempt = 0; attempt < 2; attempt++) {
      if (this.worker) {
        const req = ++this.req;
        try {
          return await new Promise<LayoutResult>((resolve, reject) => {
            this.pending.set(req, {resolve, reject});
            this.post({type: 'layout', expanded, opts, req, add});
          });
        } catch (e) {
          if ((e as Error).message !== 'retry') throw e;
        }
      } else {
        // a layouter made after the worker failed already holds everything given (this.given)
        if (!this.local) this.local = new (await this.importLayouter())(this.given);
        else if (attempt === 0) this.local.extend(add);
        return this.local.layout(expanded, opts);
      }
    }
    throw new Error('layout failed');
  }
}
