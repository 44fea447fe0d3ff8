// The top bar: brand, report picker, compare picker, study picker (when the logdir holds studies), the view tabs,
// "reloaded" time, Thresholds toggle, Copy link and Reload.
import type {ReportRef, StudyRef} from '../api';
import {COPY_FEEDBACK_MS} from '../constants';
import {clear, copyText, h} from '../dom';

export interface TopBarEvents {
  /** a report was picked */
  onReport(id: string): void;
  /** a baseline was picked (null: no comparison) */
  onCompare(id: string | null): void;
  /** a study was picked (the Attempts view opens on it) */
  onStudy(id: string): void;
  onReload(): void;
  /** the link Copy link copies */
  shareUrl(): string;
}

export class TopBar {
  readonly el: HTMLElement;
  private reportSel = h('select', {id: 'report-select', 'aria-label': 'XQuant report'});
  private cmpSel = h('select', {id: 'compare-select', 'aria-label': 'Compare with report'});
  private studySel = h('select', {id: 'study-select', 'aria-label': 'Study'});
  private studyField: HTMLElement;
  private updated = h('span', {class: 'muted small'});

  /** `tabs` and `thresholdsToggle` belong to the views and the threshold bar; the top bar only places them. */
  constructor(parts: {tabs: HTMLElement; thresholdsToggle: HTMLElement}, ev: TopBarEvents) {
    const reload = h('button', {class: 'btn', id: 'reload', title: 'Reload reports from the log directory', text: '⟳ Reload', onclick: () => ev.onReload()});
    const copyLink = h('button', {class: 'btn', id: 'copy-link', text: 'Copy link', type: 'button',
      title: 'Copy a link that opens TensorBoard on this view: report, layer, view, thresholds, comparison'});
    copyLink.addEventListener('click', async () => {
      const url = ev.shareUrl();
      const ok = await copyText(url);
      copyLink.dataset.url = url;
      copyLink.dataset.copied = ok ? '1' : '0';
      copyLink.textContent = ok ? 'Link copied' : 'Copy failed';
      setTimeout(() => { copyLink.textContent = 'Copy link'; }, COPY_FEEDBACK_MS);
    });
    this.reportSel.addEventListener('change', () => ev.onReport(this.reportSel.value));
    this.cmpSel.addEventListener('change', () => ev.onCompare(this.cmpSel.value || null));
    this.studySel.addEventListener('change', () => { if (this.studySel.value) ev.onStudy(this.studySel.value); });
    this.studyField = h('label', {class: 'field', id: 'study-field', hidden: true,
      title: 'Studies of this logdir (tb_xquant_plugin.mct_study): the countermeasures tried, in the Attempts view'},
    h('span', {class: 'muted', text: 'Study '}), this.studySel);
    this.el = h('div', {class: 'topbar'},
      h('span', {class: 'brand', text: 'XQuant'}),
      h('label', {class: 'field'}, h('span', {class: 'muted', text: 'Report '}), this.reportSel),
      h('label', {class: 'field'}, h('span', {class: 'muted', text: 'Compare with '}), this.cmpSel),
      this.studyField,
      parts.tabs,
      h('span', {class: 'spacer'}),
      this.updated, parts.thresholdsToggle, copyLink, reload);
  }

  /** Fill both pickers from the report list and select the state's report and baseline. */
  fill(reports: ReportRef[], report: string | null, cmp: string | null) {
    clear(this.reportSel); clear(this.cmpSel);
    this.cmpSel.appendChild(h('option', {value: '', text: '— none —'}));
    for (const r of reports) {
      this.reportSel.appendChild(h('option', {value: r.id, text: r.name + (r.has_quant_report ? '' : ' (incomplete)')}));
      this.cmpSel.appendChild(h('option', {value: r.id, text: r.name}));
    }
    if (report) this.reportSel.value = report;
    this.cmpSel.value = cmp ?? '';
  }

  /** Fill the study picker (hidden when the logdir holds no study) and select `study`. */
  fillStudies(studies: StudyRef[], study: string | null) {
    clear(this.studySel);
    this.studyField.hidden = !studies.length;
    for (const s of studies) {
      const what = s.problems?.length && !s.status ? ' (unreadable)' : s.status === 'running' ? ' (running)' : '';
      this.studySel.appendChild(h('option', {value: s.id, text: s.name + what}));
    }
    if (study && studies.some((s) => s.id === study)) this.studySel.value = study;
  }
  selectStudy(study: string) { this.studySel.value = study; }

  selectReport(report: string) { this.reportSel.value = report; }
  select(report: string, cmp: string | null) {
    this.reportSel.value = report;
    this.cmpSel.value = cmp ?? '';
  }
  /** Whether the report picker lists (and shows) `report`: a report reached through the URL may be newer. */
  showsReport(report: string | null): boolean { return this.reportSel.value === report; }

  reloaded() { this.updated.textContent = 'reloaded ' + new Date().toLocaleTimeString(); }
}
