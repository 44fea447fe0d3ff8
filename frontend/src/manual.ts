// The troubleshooting manual: entry list (`GET manual`), entry pages (`GET manual?id=`), a Copy button on every
// code block and in-panel links for cross-references between entries.
//
// The entry html comes from our own backend's manual route (Markdown files shipped with the plugin), never from a
// model or a report, so it is the one place where innerHTML is used. Cross-references in the Markdown are plain
// emphasis (`see *GPTQ*`); the client turns the ones that name exactly one entry into links, with DOM calls only.
import type {ManualEntry, ManualList, ManualRef} from './api';
import {getJson} from './api';
import {clear, copyButton, h} from './dom';

const entryCache = new Map<string, Promise<ManualEntry>>();
let listPromise: Promise<ManualRef[]> | null = null;

export function getManual(id: string): Promise<ManualEntry> {
  let p = entryCache.get(id);
  if (!p) { p = getJson<ManualEntry>('manual', {id}); entryCache.set(id, p); p.catch(() => entryCache.delete(id)); }
  return p;
}

export function listManual(): Promise<ManualRef[]> {
  if (!listPromise) {
    const p = getJson<ManualList>('manual').then((r) => r.entries ?? []);
    listPromise = p;
    p.catch(() => { if (listPromise === p) listPromise = null; });
  }
  return listPromise;
}

/** Where a cross-reference link leads (the app opens the Manual view); set once by the app. */
let navigate: ((id: string) => void) | null = null;
export function setManualNavigator(fn: (id: string) => void) { navigate = fn; }
export function openManual(id: string) { navigate?.(id); }

const norm = (s: string) => s.replace(/\s+/g, ' ').trim().toLowerCase();

/** The entry an emphasised phrase refers to: its full title, or the title without its parenthesis / tail after a
 *  comma ("GPTQ" for "GPTQ (gradient-based post-training quantization)"). Null unless exactly one entry fits. */
export function entryForPhrase(phrase: string, entries: ManualRef[]): ManualRef | null {
  const t = norm(phrase);
  if (t.length < 3) return null;
  const hits = entries.filter((e) => {
    const title = norm(e.title);
    return title === t || title.startsWith(t + ' (') || title.startsWith(t + ',');
  });
  return hits.length === 1 ? hits[0] : null;
}

/** Render an entry's html into `el`: Copy button on every code block, cross-references as links. */
export function renderManualHtml(el: HTMLElement, entry: ManualEntry, entries: ManualRef[] | null) {
  clear(el);
  // Trusted content: html produced by our own backend's manual route (never model-derived strings).
  if (typeof entry.html === 'string') el.innerHTML = entry.html;
  else el.appendChild(h('pre', {text: entry.markdown ?? ''}));
  for (const pre of Array.from(el.querySelectorAll('pre'))) {
    pre.classList.add('snippet');
    const wrap = h('div', {class: 'snippet-wrap'});
    pre.replaceWith(wrap);
    wrap.append(copyButton(() => pre.textContent ?? ''), pre);
  }
  if (!entries?.length) return;
  let links = 0;
  for (const em of Array.from(el.querySelectorAll('em'))) {
    if (em.closest('a, pre, code')) continue;
    const target = entryForPhrase(em.textContent ?? '', entries);
    if (!target || target.id === entry.id) continue;
    const a = h('a', {href: '#', class: 'manual-link', title: `Open “${target.title}” in the manual`, dataset: {entry: target.id}});
    a.addEventListener('click', (e) => { e.preventDefault(); openManual(target.id); });
    em.replaceWith(a);
    a.appendChild(em);
    links++;
  }
  el.dataset.links = String(links);
}

const KIND_TITLE: Record<string, string> = {
  judgeable: 'Causes XQuant detects',
  general: 'General troubleshooting',
};

/** The Manual view: every entry in a list, the open one beside it. */
export class ManualView {
  readonly el: HTMLElement;
  private list = h('nav', {class: 'manual-list', id: 'manual-list', 'aria-label': 'Manual entries', dataset: {state: 'loading'}});
  private body = h('article', {class: 'manual-entry', id: 'manual-entry', dataset: {state: 'empty'}});
  private entries: ManualRef[] = [];
  private current: string | null = null;
  private seq = 0;

  constructor(private onPick: (id: string) => void) {
    this.el = h('div', {class: 'manual-view'}, this.list, this.body);
  }

  /** Show entry `id` (or the first entry, the overview, when null). */
  async show(id: string | null) {
    const seq = ++this.seq;
    try {
      if (!this.entries.length) {
        this.entries = await listManual();
        this.renderList();
      }
    } catch (e) {
      this.list.dataset.state = 'error';
      clear(this.list);
      this.list.appendChild(h('div', {class: 'problem error', text: 'Manual unavailable: ' + (e as Error).message}));
      return;
    }
    if (seq !== this.seq) return;
    const pick = id && this.entries.some((x) => x.id === id) ? id
      : (this.entries.find((x) => x.id === 'general-troubleshooting') ?? this.entries[0])?.id ?? null;
    if (!pick) return;
    if (pick === this.current && this.body.dataset.state === 'ready') return;
    this.current = pick;
    for (const b of this.list.querySelectorAll<HTMLElement>('.manual-item')) {
      const on = b.dataset.entry === pick;
      b.classList.toggle('active', on);
      if (on) b.setAttribute('aria-current', 'page'); else b.removeAttribute('aria-current');
    }
    this.body.dataset.state = 'loading';
    this.body.dataset.entry = pick;
    try {
      const e = await getManual(pick);
      if (seq !== this.seq) return;
      clear(this.body);
      const html = h('div', {class: 'manual-html'});
      this.body.append(h('h2', {class: 'manual-page-title', text: e.title}),
        h('div', {class: 'muted small', text: e.kind === 'judgeable' ? 'Checked automatically by XQuant' : 'General troubleshooting'}), html);
      renderManualHtml(html, e, this.entries);
      this.body.scrollTop = 0;
      this.body.dataset.state = 'ready';
    } catch (err) {
      if (seq !== this.seq) return;
      clear(this.body);
      this.body.appendChild(h('div', {class: 'problem error', text: 'Manual entry unavailable: ' + (err as Error).message}));
      this.body.dataset.state = 'error';
    }
  }

  private renderList() {
    clear(this.list);
    for (const kind of ['judgeable', 'general']) {
      const es = this.entries.filter((e) => (e.kind === 'judgeable' ? 'judgeable' : 'general') === kind);
      if (!es.length) continue;
      this.list.appendChild(h('div', {class: 'manual-kind', text: KIND_TITLE[kind]}));
      for (const e of es) {
        this.list.appendChild(h('button', {class: 'manual-item', type: 'button', text: e.title, dataset: {entry: e.id},
          onclick: () => this.onPick(e.id)}));
      }
    }
    this.list.dataset.state = 'ready';
    this.list.dataset.count = String(this.entries.length);
  }
}
