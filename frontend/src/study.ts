// The Attempts view: one study (`GET study`, written by tb_xquant_plugin.mct_study) as a table of the baseline and
// each attempt — its countermeasure, where it came from, status, accuracy, model-output SQNR, degraded layers, time,
// peak memory and size —, the best one and the ones that helped marked, failed ones with their error, and the winning
// configuration as one snippet to paste. Clicking an attempt opens it against the baseline in compare mode.
// Every string of the study (labels, ids, errors, snippets) goes through h()'s textContent.
import type {ApiError, StudyAttempt, StudyResponse} from './api';
import {fmt, num} from './api';
import {clear, h, judgeChip, judgeMark} from './dom';
import {snippetBlock} from './panel';

export interface AttemptsEvents {
  /** an attempt (or the baseline) was clicked: open its report, compared with the baseline's */
  onAttempt(attempt: StudyAttempt, baseline: StudyAttempt | null): void;
}

const SOURCE_TEXT: Record<string, string> = {
  baseline: 'baseline', verdict: 'verdict', combined: 'combined', general: 'general',
};

/** Accuracy in percent: values <= 1 are read as fractions (as the summary's accuracy). */
function pct(v: unknown): number {
  const x = num(v);
  return Number.isFinite(x) && Math.abs(x) <= 1 ? x * 100 : x;
}

function bytes(v: unknown): string {
  const b = num(v);
  if (!Number.isFinite(b)) return '—';
  if (b >= 1024 * 1024) return `${fmt(b / (1024 * 1024), 3)} MB`;
  if (b >= 1024) return `${fmt(b / 1024, 3)} KB`;
  return `${fmt(b)} B`;
}

function withUnit(v: unknown, unit: string, digits = 3): string {
  return v === null || v === undefined || !Number.isFinite(num(v)) ? '—' : `${fmt(v, digits)} ${unit}`;
}

/** "+1.81" / "−3" against the baseline, or '' when either is unknown or they are equal. */
function delta(v: number, base: number, digits = 3): string {
  if (!Number.isFinite(v) || !Number.isFinite(base) || v === base) return '';
  const d = v - base;
  return (d > 0 ? '+' : '−') + fmt(Math.abs(d), digits);
}

export class AttemptsView {
  readonly el = h('div', {class: 'attempts-view', id: 'attempts', dataset: {state: 'empty'}});
  private shown = '';

  constructor(private ev: AttemptsEvents) {}

  loading(study: string) {
    if (this.el.dataset.study === study && this.el.dataset.state === 'ready') return;  // keep it while it refreshes
    this.shown = '';
    clear(this.el);
    this.el.dataset.state = 'loading';
    this.el.dataset.study = study;
    this.el.appendChild(h('div', {class: 'empty', text: 'Loading the study…'}));
  }

  showEmpty() {
    this.shown = '';
    clear(this.el);
    this.el.dataset.state = 'empty';
    delete this.el.dataset.study;
    this.el.appendChild(h('div', {class: 'empty big'},
      h('div', {class: 'empty-title', text: 'No study in this logdir'}),
      h('div', null, 'A study tries the countermeasures the verdicts propose, one quantization per attempt, and keeps what helped. Run it with its output folder inside the logdir:'),
      h('pre', {class: 'snippet', text: 'from tb_xquant_plugin.mct_study import try_countermeasures\n' +
        'study = try_countermeasures(float_model, representative_data_gen, validation_data_gen, xquant_config,\n' +
        '                            out_dir="<logdir>/my_model_study", evaluate=my_accuracy_fn)'}),
      h('div', {class: 'muted', text: 'Then press Reload.'})));
  }

  showError(study: string, e: unknown) {
    this.shown = '';
    clear(this.el);
    this.el.dataset.state = 'error';
    this.el.dataset.study = study;
    const err = e as ApiError;
    this.el.appendChild(h('div', {class: 'problem error'}, h('b', {text: err.message ?? String(e)}),
      err.hint ? h('div', {class: 'hint'}, 'To fix: ', h('code', {text: err.hint})) : null));
  }

  render(s: StudyResponse) {
    const json = JSON.stringify(s);
    if (json === this.shown && this.el.dataset.state === 'ready') return;
    this.shown = json;
    clear(this.el);
    this.el.dataset.study = s.id;
    this.el.dataset.best = s.best ?? '';
    this.el.dataset.attempts = String(s.attempts.length);
    const base = s.attempts.find((a) => a.id === s.baseline) ?? null;
    const n = s.attempts.length;
    this.el.appendChild(h('div', {class: 'attempts-head'},
      h('span', {class: 'attempts-title', text: s.name}),
      s.model_name ? h('span', {class: 'muted', text: ` (${s.model_name})`}) : null,
      h('span', {class: 'muted', text: ` · ${s.status || '?'} · ${n} attempt${n === 1 ? '' : 's'} (baseline included)` +
        (s.stopped_by ? ` · stopped by ${s.stopped_by}` : '') + (s.elapsed_s !== null && s.elapsed_s !== undefined ? ` · ${fmt(s.elapsed_s, 3)} s` : '')})));
    for (const p of s.problems ?? []) {
      this.el.appendChild(h('div', {class: 'problem'}, h('b', {text: p.what}), p.hint ? h('div', {class: 'hint', text: p.hint}) : null));
    }
    this.el.appendChild(this.table(s, base));
    this.el.appendChild(h('div', {class: 'muted small', text:
      'Click an attempt to open it against the baseline (compare mode). Best: of the attempts that helped, the highest accuracy, else model-output SQNR, then the fewest degraded layers (the baseline when none helped). Helped: fewer degraded layers or a better output SQNR / accuracy than the baseline, without losing accuracy.'}));
    this.el.appendChild(winning(s));
    this.el.dataset.state = 'ready';
  }

  private table(s: StudyResponse, base: StudyAttempt | null): HTMLElement {
    const t = h('table', {class: 'metrics attempts-table', id: 'attempts-table'},
      h('tr', null, ...['', 'attempt', 'source', 'status', 'accuracy', 'output SQNR', 'degraded layers', 'time', 'peak memory', 'size']
        .map((c) => h('th', {text: c}))));
    const bAcc = base ? pct(base.accuracy) : NaN, bSq = base ? num(base.output_sqnr) : NaN;
    const bDeg = base && typeof base.degraded_count === 'number' ? base.degraded_count : NaN;
    s.attempts.forEach((a, i) => {
      const isBest = a.id === s.best, isBase = base !== null && a === base;
      const open = a.report_id !== null;
      const marks = h('td', {class: 'attempt-marks'},
        isBest ? h('span', {class: 'badge best', title: 'the best attempt', text: '★ best'}) : null,
        a.helped ? h('span', {class: 'badge ok helped', title: 'it helped', text: 'helped'}) : null);
      const label = open
        ? h('a', {href: '#', class: 'attempt-label', text: a.label || a.id,
          title: isBase ? 'Open the baseline report' : 'Open this attempt against the baseline (compare mode)',
          onclick: (e: Event) => { e.preventDefault(); e.stopPropagation(); this.ev.onAttempt(a, base); }})
        : h('span', {class: 'attempt-label', text: a.label || a.id, title: 'Its report is not listed in this logdir'});
      const first = (a.error ?? '').trim().split('\n')[0];
      const name = h('td', {class: 'attempt-name'}, label,
        a.label && a.label !== a.id ? h('div', {class: 'muted small attempt-id', text: a.id}) : null,
        a.error || a.status === 'failed' ? h('div', {class: 'attempt-error', title: a.error ?? '', text: first || 'failed'}) : null);
      const acc = pct(a.accuracy), sq = num(a.output_sqnr);
      const deg = typeof a.degraded_count === 'number' ? a.degraded_count : NaN;
      const cell = (text: string, d = '', better: boolean | null = null) => h('td', null, text,
        d && !isBase ? h('span', {class: 'attempt-delta small' + (better === true ? ' good' : better === false ? ' bad' : ''), text: ' ' + d}) : null);
      const row = h('tr', {class: 'attempt-row' + (isBest ? ' best' : '') + (open ? ' openable' : ''),
        dataset: {attempt: a.id, index: String(i), status: a.status, best: isBest ? '1' : '0', helped: a.helped ? '1' : '0',
          report: a.report_id ?? '', source: a.source}},
        marks, name,
        h('td', {class: 'attempt-source'}, a.verdict?.judge ? judgeChip(a.verdict.judge) : null,
          h('span', {text: ' ' + (SOURCE_TEXT[a.source] ?? a.source) + (a.verdict?.judge ? ` (${judgeMark(a.verdict.judge).title})` : '')})),
        h('td', {class: 'attempt-status ' + (a.status === 'failed' ? 'bad' : a.status === 'ok' ? '' : 'muted'), text: a.status || '?'}),
        cell(Number.isFinite(acc) ? `${fmt(acc, 4)}%` : '—', delta(acc, bAcc), acc > bAcc ? true : acc < bAcc ? false : null),
        cell(fmt(a.output_sqnr), delta(sq, bSq, 3), sq > bSq ? true : sq < bSq ? false : null),
        cell(Number.isFinite(deg) ? String(deg) : '—', delta(deg, bDeg), deg < bDeg ? true : deg > bDeg ? false : null),
        h('td', {text: withUnit(a.time_s, 's')}),
        h('td', {text: withUnit(a.peak_rss_mb, 'MB', 4)}),
        h('td', {text: bytes(a.size_bytes)}));
      if (a.degraded?.length) row.title = 'degraded: ' + a.degraded.slice(0, 20).join(', ') + (a.degraded.length > 20 ? ', …' : '');
      if (open) row.addEventListener('click', () => this.ev.onAttempt(a, base));
      t.appendChild(row);
    });
    return t;
  }
}

/** The winning configuration as one snippet to paste, or why there is none. */
function winning(s: StudyResponse): HTMLElement {
  const best = s.attempts.find((a) => a.id === s.best) ?? null;
  const box = h('div', {class: 'winning', id: 'winning', dataset: {state: s.winning_snippet ? 'snippet' : 'none'}});
  if (s.winning_snippet) {
    box.append(h('div', {class: 'sub-h', text: 'Winning configuration' + (best ? `: ${best.label || best.id}` : '')}), snippetBlock(s.winning_snippet));
  } else {
    const why = best && best.helped ? `The best attempt (${best.label || best.id}) helped, but it has no snippet to paste.`
      : s.status === 'running' ? 'The study is still running.'
        : 'No attempt helped: there is no winning configuration.' + (s.general_path?.length ? ` General troubleshoots tried: ${s.general_path.join(', ')}.` : '');
    box.append(h('div', {class: 'sub-h', text: 'Winning configuration'}), h('div', {class: 'muted', text: why}));
  }
  return box;
}
