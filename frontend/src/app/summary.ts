// The summary header (#summary): degraded layers against the ratio limit, accuracy, model-output metrics, the
// degraded-layer list, the causes found, the general troubleshoots, the measured concatenation / add joins and, in
// compare mode, the comparison's counts and deltas.
import type {CompareResponse, ConcatCheck, GraphResponse, LayersResponse, ReportRef, ReportSummary, VerdictsResponse} from '../api';
import {fmt, num} from '../api';
import {ACCURACY_DROP_BAD_PTS, DELTA_TABLE_MAX} from '../constants';
import {accuracyChange} from '../derived';
import {clear, GENERAL_REASON, h} from '../dom';
import {concatChecksTable, verdictCard} from '../panel';
import {causesList, degradedList} from './lists';
import {errorBox} from './problems';

/** What one rendering of the header shows and how it links back into the panel. */
export interface SummaryInput {
  summary: ReportSummary;
  layers: LayersResponse | null;
  /** the report's graph (the module scope of each layer, for grouping the degraded ones), if it loaded */
  graph: GraphResponse | null;
  compare: CompareResponse | null;
  /** the report list, for the names of compared reports */
  reports: ReportRef[];
  /** the selected layer (its row in the degraded list is marked) */
  selected: string | null;
  onLayer: (layer: string) => void;
  /** names that can be selected */
  known: (layer: string) => boolean;
  /** GET verdicts for this report; null when the report was replaced meanwhile */
  loadVerdicts: () => Promise<VerdictsResponse | null>;
}

export class SummaryHeader {
  readonly el = h('div', {class: 'summary', id: 'summary'});

  render(c: SummaryInput) {
    const s = c.summary;
    clear(this.el);
    const ratio = num(s.degraded_ratio), limit = num(s.thresholds.degrade_layer_ratio);
    const nDeg = s.degraded_layers?.length ?? 0;
    const stats = h('div', {class: 'stats'},
      h('div', {class: 'stat' + (nDeg ? ' bad' : ' good'), id: 'degraded-stat', dataset: {count: String(nDeg)}},
        h('div', {class: 'stat-num', text: `${nDeg} / ${s.layer_count}`}),
        h('div', {class: 'stat-label', text: `layers degraded (${fmt(ratio * 100, 3)}%; limit ${fmt(limit * 100, 3)}%)`})),
      accuracyStat(s),
      outputMetricsTable(s));
    this.el.appendChild(stats);
    // degraded layers list
    if (nDeg) {
      this.el.appendChild(degradedList({degraded: s.degraded_layers, layers: c.layers?.layers ?? [], graph: c.graph,
        selected: c.selected, onLayer: c.onLayer}));
    }
    // verdicts
    const groups = s.verdict_groups ?? [], nv = s.verdict_count ?? 0;
    if (nv || s.judges_skipped) {
      const box = h('div', {class: 'verdict-summary', id: 'verdict-summary', dataset: {verdicts: String(nv)}});
      if (s.judges_skipped) box.appendChild(h('div', {class: 'muted small', text: 'Automatic judges were skipped (too many degraded layers); see the general troubleshoots.'}));
      box.append(...causesList(groups, c.onLayer, c.known, c.loadVerdicts));
      this.el.appendChild(h('div', {class: 'sub-h', text: `Causes found: ${nv}`}));
      this.el.appendChild(box);
    }
    const gen = s.general ?? [];
    if (gen.length) {
      // closed: its summary line names the first reason, the cards open on demand
      const first = gen[0].message || GENERAL_REASON[String(gen[0].numbers?.reason)] || '';
      const box = h('details', {class: 'general', id: 'general'},
        h('summary', null, h('span', {text: `General troubleshoots (${gen.length})`}), h('span', {class: 'muted general-first', text: first ? ' · ' + first : ''})),
        ...gen.map((v) => verdictCard(v, c.onLayer, false, c.known)));
      this.el.appendChild(box);
    }
    const joins = concatSection(c);
    if (joins) this.el.appendChild(joins);
    if (c.compare) this.el.appendChild(compareSummary(c.compare, c));
  }

  /** Mark the selected layer's row in the degraded-layer list. */
  markSelected(layer: string | null) {
    for (const r of this.el.querySelectorAll<HTMLElement>('.degraded-row')) r.classList.toggle('selected', r.dataset.layer === layer);
  }

  /** The logdir holds no report: where we looked and how to write one. */
  showNoReports(logdir: string | undefined) {
    clear(this.el);
    this.el.appendChild(h('div', {class: 'empty big'},
      h('div', {class: 'empty-title', text: 'No XQuant report found'}),
      h('div', null, 'Looked in ', h('code', {text: logdir ?? '(logdir)'}), '. Run MCT\'s XQuant and write the report inside the TensorBoard logdir, e.g.:'),
      h('pre', {class: 'snippet', text: 'from model_compression_toolkit.xquant import xquant_report_troubleshoot_pytorch_experimental, XQuantConfig\n' +
        'xquant_config = XQuantConfig(report_dir="<logdir>/my_model/xquant_report")\n' +
        'result = xquant_report_troubleshoot_pytorch_experimental(float_model, quantized_model, repr_dataset, validation_dataset, xquant_config)'}),
      h('div', {class: 'muted', text: 'Then press Reload.'})));
  }
}

/** Float vs quantized accuracy, when the report's manifest recorded it (`accuracy` in `report`). */
function accuracyStat(s: ReportSummary): HTMLElement | null {
  const a = accuracyChange(s);
  if (!a) return null;
  return h('div', {class: 'stat' + (a.drop > ACCURACY_DROP_BAD_PTS ? ' bad' : ' good'), id: 'accuracy-stat'},
    h('div', {class: 'stat-num', text: `${fmt(a.float, 4)}% → ${fmt(a.quantized, 4)}%`}),
    h('div', {class: 'stat-label', text: `accuracy float → quantized (${a.drop >= 0 ? '−' : '+'}${fmt(Math.abs(a.drop), 3)} pts${a.dataset ? ', ' + String(a.dataset) : ''})`}));
}

function outputMetricsTable(s: ReportSummary): HTMLElement {
  const ds = Object.keys(s.output_metrics ?? {});
  if (!ds.length) return h('div', {class: 'muted small', text: 'No output metrics.'});
  const ms = [...new Set(ds.flatMap((d) => Object.keys(s.output_metrics[d] ?? {})))];
  return h('table', {class: 'metrics output', id: 'output-metrics'},
    h('tr', null, h('th', {text: 'model output'}), ...ms.map((m) => h('th', {text: m}))),
    ...ds.map((d) => h('tr', null, h('td', {text: d}), ...ms.map((m) => h('td', {text: fmt(s.output_metrics[d]?.[m])})))));
}

/** The concatenation / add joins the backend measured: the widest few from `report`, all of them from `verdicts`
 *  (`concat_checks`, large for big graphs) when the section is opened. */
function concatSection(c: SummaryInput): HTMLElement | null {
  const s = c.summary;
  const cs = s.concat_summary;
  if (!cs || !cs.joins) return null;
  const limit = num(cs.threshold ?? s.thresholds.ratio_unbalanced_concatenation);
  const widest = cs.widest ?? [];
  const all = cs.joins <= widest.length;
  const body = h('div', {class: 'concat-checks'});
  const det = h('details', {class: 'general', id: 'concat-checks', dataset: {state: all ? 'all' : 'widest', joins: String(cs.joins)}},
    h('summary', {text: `Concatenation / add joins: ${cs.joins} (${cs.measured} measured, ${cs.flagged} unbalanced at ratio ≥ ${fmt(limit)})`}), body);
  const show = (checks: ConcatCheck[], note: string) => {
    clear(body);
    body.append(h('div', {class: 'muted small', text: note}), concatChecksTable(checks, limit, c.onLayer, c.known));
  };
  const why = 'Widest / narrowest input value range per join; at or over threshold_ratio_unbalanced_concatenation the narrow input loses precision.';
  show(widest, all ? why : `${why} The ${widest.length} widest of ${cs.joins}; loading all…`);
  if (!all) {
    det.addEventListener('toggle', () => {
      if (!det.open || det.dataset.state !== 'widest') return;
      det.dataset.state = 'loading';
      c.loadVerdicts().then((v) => {
        if (!v) return;
        show(v.concat_checks ?? widest, why);
        det.dataset.state = 'all';
      }).catch((e) => { det.dataset.state = 'widest'; body.appendChild(errorBox(e)); });
    });
  }
  return det;
}

/** Compare mode: layers improved / worse / unchanged, degraded A → B, per-layer deltas and the general advice. */
function compareSummary(cmp: CompareResponse, c: SummaryInput): HTMLElement {
  const name = (id: string) => c.reports.find((r) => r.id === id)?.name ?? id;
  const sm = cmp.summary ?? {};
  const box = h('div', {class: 'compare-summary', id: 'compare-summary', dataset: {improved: String(sm.improved ?? 0), worse: String(sm.worse ?? 0)}},
    h('div', {class: 'sub-h', text: `Comparison: A = ${name(cmp.a)} → B = ${name(cmp.b)}`}),
    h('div', {class: 'stats'},
      h('div', {class: 'stat good'}, h('div', {class: 'stat-num', text: String(sm.improved ?? 0)}), h('div', {class: 'stat-label', text: 'layers improved'})),
      h('div', {class: 'stat bad'}, h('div', {class: 'stat-num', text: String(sm.worse ?? 0)}), h('div', {class: 'stat-label', text: 'layers worse'})),
      h('div', {class: 'stat'}, h('div', {class: 'stat-num', text: String(sm.unchanged ?? 0)}), h('div', {class: 'stat-label', text: 'unchanged'})),
      h('div', {class: 'stat'}, h('div', {class: 'stat-num', text: `${sm.degraded_a ?? '?'} → ${sm.degraded_b ?? '?'}`}), h('div', {class: 'stat-label', text: 'degraded layers A → B'}))));
  const rows = cmp.layers.filter((l) => l.status === 'improved' || l.status === 'worse');
  if (rows.length) {
    const keys = Object.keys(cmp.layers.find((l) => Object.keys(l.delta ?? {}).length)?.delta ?? {});
    const t = h('table', {class: 'metrics delta-table', id: 'delta-table'},
      h('tr', null, h('th', {text: 'layer'}), h('th', {text: 'status'}), ...keys.map((k) => h('th', {text: 'Δ ' + k}))));
    for (const l of rows.slice(0, DELTA_TABLE_MAX)) {
      t.appendChild(h('tr', {class: 'delta-row ' + l.status, dataset: {layer: l.name}, onclick: () => c.onLayer(l.name)},
        h('td', {text: l.name_a && l.name_a !== l.name ? `${l.name} ↔ ${l.name_a}` : l.name}), h('td', {text: l.status}), ...keys.map((k) => h('td', {text: fmt(l.delta?.[k], 3)}))));
    }
    box.appendChild(h('details', {class: 'delta-details'}, h('summary', {text: `Per-layer deltas (${rows.length} changed)`}), t));
  }
  const pairing = cmp.pairing;
  if (pairing && pairing.method !== 'name') {
    // an MCT report against an ONNX report: layers paired by module key, with what stayed unpaired and why it matters
    const unpaired = (side: string, names: string[]) => names.length ? `${names.length} only in ${side} (${names.slice(0, 6).join(', ')}${names.length > 6 ? ', …' : ''})` : '';
    const parts = [unpaired('A', pairing.only_a ?? []), unpaired('B', pairing.only_b ?? [])].filter((x) => x);
    box.appendChild(h('div', {class: 'compare-pairing', id: 'compare-pairing', dataset: {method: pairing.method, paired: String(pairing.paired)}},
      h('div', {text: `Layers paired by ${pairing.method}: ${pairing.paired} pairs` + (parts.length ? '; ' + parts.join('; ') : '')}),
      ...(pairing.notes ?? []).map((n) => h('div', {class: 'note', text: n}))));
  }
  for (const v of cmp.general ?? []) box.appendChild(verdictCard(v, c.onLayer, true, c.known));
  return box;
}
