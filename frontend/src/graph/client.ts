// Talks to the layout worker; falls back to laying out on the main thread if the worker cannot start.
import type {Hierarchy} from './model';
import type {LayoutResult} from './layout';

type Pending = {resolve: (r: LayoutResult) => void; reject: (e: Error) => void};

export class LayoutClient {
  private worker: Worker | null = null;
  private local: {layout(e: string[]): LayoutResult} | null = null;
  private req = 0;
  private pending = new Map<number, Pending>();
  private hier: Hierarchy | null = null;
  readonly workerUrl = new URL('./layout_worker.js', import.meta.url);

  constructor() {
    try {
      this.worker = new Worker(this.workerUrl, {type: 'module', name: 'xquant-layout'});
      this.worker.onmessage = (ev) => this.onMessage(ev.data);
      this.worker.onerror = (ev) => { ev.preventDefault(); this.fallback(String(ev.message || 'worker error')); };
    } catch {
      this.worker = null;
    }
  }

  get mode() { return this.worker ? 'worker' : 'main-thread'; }

  private onMessage(d: {type: string; req: number; res?: LayoutResult; error?: string}) {
    const p = this.pending.get(d.req);
    if (!p) return;
    this.pending.delete(d.req);
    if (d.type === 'layout') p.resolve(d.res!);
    else if (d.type === 'error') p.reject(new Error(d.error));
  }

  private async fallback(reason: string) {
    console.warn('xquant: layout worker unavailable, laying out on the main thread:', reason);
    this.worker?.terminate();
    this.worker = null;
    const mod = await import(/* @vite-ignore */ this.workerUrl.href) as {Layouter: new (h: Hierarchy) => {layout(e: string[]): LayoutResult}};
    this.local = this.hier ? new mod.Layouter(this.hier) : null;
    (this as unknown as {LayouterCtor: unknown}).LayouterCtor = mod.Layouter;
    for (const [, p] of this.pending) p.reject(new Error('retry'));
    this.pending.clear();
  }

  init(hier: Hierarchy) {
    this.hier = hier;
    const ctor = (this as unknown as {LayouterCtor?: new (h: Hierarchy) => {layout(e: string[]): LayoutResult}}).LayouterCtor;
    if (this.worker) this.worker.postMessage({type: 'init', hier, req: ++this.req});
    else if (ctor) this.local = new ctor(hier);
  }

  async layout(expanded: string[]): Promise<LayoutResult> {
    for (let attempt = 0; attempt < 2; attempt++) {
      if (this.worker) {
        const req = ++this.req;
        try {
          return await new Promise<LayoutResult>((resolve, reject) => {
            this.pending.set(req, {resolve, reject});
            this.worker!.postMessage({type: 'layout', expanded, req});
          });
        } catch (e) {
          if ((e as Error).message !== 'retry') throw e;
        }
      } else {
        if (!this.local) {
          const mod = await import(/* @vite-ignore */ this.workerUrl.href) as {Layouter: new (h: Hierarchy) => {layout(e: string[]): LayoutResult}};
          this.local = new mod.Layouter(this.hier!);
        }
        return this.local.layout(expanded);
      }
    }
    throw new Error('layout failed');
  }
}
