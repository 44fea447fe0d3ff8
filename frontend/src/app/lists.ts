// The two lists of the summary header that grow with the model: the degraded layers (grouped by module scope,
// or worst first; a count and "Show all") and the causes found (verdicts that say the same thing about several
// layers become one line naming them all).
import type {GraphResponse, LayerRow, Verdict, VerdictGroup, VerdictsResponse} from '../api';
import {fmt, num} from '../api';
import {DEGRADED_LIST_MAX, SCOPE_GROUPS_MIN, VERDICT_LINE_LAYERS_MAX} from '../constants';
import {clear, h, judgeChip, judgeMark} from '../dom';

export interface DegradedListInput {
  degraded: string[];
  layers: LayerRow[];
  graph: GraphResponse | null;
  selected: string | null;
  onLayer: (layer: string) => void;
}

interface Entry { name: string; row: LayerRow | undefined; severity: number; scope: string }

/** The module scope each degraded layer sits in, cut to the depth that splits them into a few groups: the
 *  shallowest depth giving SCOPE_GROUPS_MIN groups (or as many as the full scopes give). */
function scopes(names: string[], rows: Map<string, LayerRow>, graph: GraphResponse | null): Map<string, string> {
  const groupOf = new Map((graph?.nodes ?? []).map((n) => [n.id, n.group ?? '']));
  const full = new Map<string, string[]>();
  for (const name of names) {
    const node = rows.get(name)?.node;
    const g = node ? groupOf.get(node) ?? '' : '';
    full.set(name, g ? g.split('/') : []);
  }
  const distinct = (d: number) => new Set([...full.values()].map((p) => p.slice(0, d).join('/'))).size;
  const deepest = Math.max(0, ...[...full.values()].map((p) => p.length));
  const want = Math.min(SCOPE_GROUPS_MIN, distinct(deepest));
  let depth = deepest;
  for (let d = 1; d <= deepest; d++) if (distinct(d) >= want) { depth = d; break; }
  return new Map([...full].map(([n, p]) => [n, p.slice(0, depth).join('/')]));
}

/** `#degraded-list`: a header with the count, the order toggle and "Show all", then the rows (grouped by scope in
 *  model order, or worst first). Up to DEGRADED_LIST_MAX rows are made at once, the rest on "Show all". */
export function degradedList(c: DegradedListInput): HTMLElement {
  const rows = new Map(c.layers.map((l) => [l.name, l]));
  const scopeOf = scopes(c.degraded, rows, c.graph);
  const entries: Entry[] = c.degraded.map((name) => {
    const row = rows.get(name);
    const sv = num(row?.worst?.severity);
    return {name, row, severity: Number.isFinite(sv) ? sv : Number.isNaN(sv) ? 0 : Infinity, scope: scopeOf.get(name) ?? ''};
  });
  const n = entries.length;
  const nScopes = new Set(entries.map((e) => e.scope)).size;
  let order: 'scope' | 'severity' = 'scope';
  let all = n <= DEGRADED_LIST_MAX;
  const list = h('div', {class: 'degraded-list', id: 'degraded-list', dataset: {order, count: String(n), scopes: String(nScopes)}});
  const orderBtn = h('button', {class: 'btn small', id: 'degraded-order', title: 'Order of the degraded layers'});
  const moreBtn = h('button', {class: 'btn small', id: 'degraded-more'});
  const row = (e: Entry) => h('button', {class: 'degraded-row' + (e.name === c.selected ? ' selected' : ''), dataset: {layer: e.name, scope: e.scope},
    title: 'Show this layer', onclick: () => c.onLayer(e.name)},
  h('span', {class: 'name', text: e.name}),
  e.row?.worst ? h('span', {class: 'worst', text: `${e.row.worst.metric}/${e.row.worst.dataset} ${fmt(e.row.worst.value, 3)}`}) : null,
  ...(e.row?.judges ?? []).map((j) => judgeChip(j)));
  const render = () => {
    clear(list);
    list.dataset.order = order;
    const shown = all ? entries : null;
    let made = 0;
    const cap = (es: Entry[]) => {
      const room = shown ? es.length : Math.max(0, DEGRADED_LIST_MAX - made);
      made += Math.min(room, es.length);
      return es.slice(0, room);
    };
    if (order === 'severity') {
      for (const e of cap(entries.slice().sort((a, b) => b.severity - a.severity))) list.appendChild(row(e));
    } else {
      // scopes in model order (the order of their first degraded layer), layers in model order inside
      const groups = new Map<string, Entry[]>();
      for (const e of entries) { const g = groups.get(e.scope); if (g) g.push(e); else groups.set(e.scope, [e]); }
      for (const [scope, es] of groups) {
        const part = cap(es);
        if (!part.length) break;
        const worst = es.reduce((a, b) => (b.severity > a.severity ? b : a));
        if (nScopes > 1) {
          list.appendChild(h('span', {class: 'degraded-scope', dataset: {scope, count: String(es.length)},
            title: `${es.length} degraded in ${scope || 'the top level'}; worst ${worst.name}`,
            text: `${scope || '(top level)'} · ${es.length}`}));
        }
        for (const e of part) list.appendChild(row(e));
      }
    }
    orderBtn.textContent = order === 'scope' ? 'Worst first' : 'By scope';
    moreBtn.hidden = n <= 8 && all;
    moreBtn.textContent = list.classList.contains('open') ? 'Show fewer' : `Show all ${n}`;
    if (!all && n > made) list.appendChild(h('span', {class: 'muted', text: `+${n - made} more`}));
  };
  orderBtn.addEventListener('click', () => { order = order === 'scope' ? 'severity' : 'scope'; render(); });
  moreBtn.addEventListener('click', () => {
    const open = !list.classList.contains('open');
    list.classList.toggle('open', open);
    if (open) all = true;
    render();
  });
  render();
  const head = h('div', {class: 'sub-h list-head'},
    h('span', {text: `Degraded layers: ${n}` + (nScopes > 1 ? ` in ${nScopes} scopes` : '')}), orderBtn, moreBtn);
  return h('div', {class: 'degraded-section'}, head, list);
}

/** Whether a verdict belongs to a group of the summary (`verdict_groups`: judge, source, cause, advice). */
export function inGroup(v: Verdict, g: VerdictGroup): boolean {
  const finding = v.numbers?.finding, kind = v.countermeasure?.kind;
  return v.judge === g.judge && v.source === g.source && (typeof finding === 'string' ? finding : null) === g.cause &&
    (typeof kind === 'string' ? kind : null) === g.advice;
}

/** `#verdict-summary`'s lines: one per group of the summary (`verdict_groups`: the verdicts with the same judge,
 *  source, cause and advice). A line shows the first message, "× n", the first VERDICT_LINE_LAYERS_MAX layers, and
 *  on "+k more" / "details" every layer and each verdict's own message, loaded then (`GET verdicts`). */
export function causesList(groups: VerdictGroup[], onLayer: (l: string) => void, known: (l: string) => boolean,
  loadVerdicts: () => Promise<VerdictsResponse | null>): HTMLElement[] {
  const link = (l: string) => known(l)
    ? h('a', {href: '#', class: 'layer-link', text: l, onclick: (e: Event) => { e.preventDefault(); onLayer(l); }})
    : h('code', {class: 'layer-ref', text: l + ' '});
  return groups.map((g) => {
    const m = judgeMark(g.judge);
    const msg = g.message || '';
    const first = (g.layers ?? []).slice(0, VERDICT_LINE_LAYERS_MAX);
    const names = h('span', {class: 'verdict-layer-list'}, ...first.map(link));
    const line = h('div', {class: 'verdict-line', dataset: {judge: g.judge, count: String(g.count)}},
      judgeChip(g.judge), h('b', {text: ' ' + m.title.split(' (')[0] + (g.count > 1 ? ` × ${g.count}` : '') + ': '}),
      h('span', {class: 'verdict-text', title: msg, text: msg}), ' ', names,
      g.source === 'mct' ? h('span', {class: 'muted small', text: ' (reported by MCT)'}) : null);
    const hidden = g.layer_count - first.length;
    if (hidden > 0 || g.count > 1) {
      const label = hidden > 0 ? `+${hidden} more` : 'details';
      const more = h('button', {class: 'btn small verdict-more', text: label});
      const detail = h('div', {class: 'verdict-detail', hidden: true});
      let members: Verdict[] | null = null;
      const fill = (open: boolean) => {
        const layers = open && members ? [...new Set(members.flatMap((x) => x.layers ?? []))] : first;
        clear(names);
        names.append(...layers.map(link));
        if (open && members && !detail.firstChild && g.count > 1) {
          for (const x of members) detail.appendChild(h('div', {class: 'small'}, ...(x.layers ?? []).slice(0, 1).map(link), h('span', {class: 'muted', text: x.message})));
        }
      };
      more.addEventListener('click', () => {
        const open = detail.hidden;
        detail.hidden = !open;
        line.classList.toggle('open', open);
        more.textContent = open ? 'fewer' : label;
        if (!open || members) { fill(open); return; }
        more.disabled = true;
        loadVerdicts().then((v) => {
          members = (v?.verdicts ?? []).filter((x) => inGroup(x, g));
          if (!detail.hidden) fill(true);
        }).catch(() => { detail.hidden = true; line.classList.remove('open'); more.textContent = label; })
          .finally(() => { more.disabled = false; });
      });
      line.append(' ', more, detail);
    }
    return line;
  });
}
