// The top bar: brand, report picker, compare picker, the view tabs, "reloaded" time, Thresholds toggle, Copy link and
// Reload.
import type {ReportRef} from '../api';
import {COPY_FEEDBACK_MS} from '../constants';
import {clear, copyText, h} from '../dom';

export interface TopBarEvents {
  /** a report was picked */
  onReport(id: string): void;
  /** a baseline was picked (null: no comparison) */
  onCompare(id: string | null): void;
  onReload(): void;
  /** the link Copy link copies */
  shareUrl(): string;
}

export class TopBar {
  readonly el: HTMLElement;
  private reportSel = h('select', {id: 'report-select', 'aria-label': 'XQuant report'});
  private cmpSel = h('select', {id: 'compare-select', 'aria-label': 'Compare with report'});
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
    this.el = h('div', {class: 'topbar'},
      h('span', {class: 'brand', text: 'XQuant'}),
      h('label', {class: 'field'}, h('span', {class: 'muted', text: 'Report '}), this.reportSel),
      h('label', {class: 'field'}, h('span', {class: 'muted', text: 'Compare with '}), this.cmpSel),
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

  selectReport(report: string) { this.reportSel.value = report; }
  select(report: string, cmp: string | null) {
    this.reportSel.value = report;
    this.cmpSel.value = cmp ?? '';
  }
  /** Whether the report picker lists (and shows) `report`: a report reached through the URL may be newer. */
  showsReport(report: string | null): boolean { return this.reportSel.value === report; }

  reloaded() { this.updated.textContent = 'reloaded ' + new Date().toLocaleTimeString(); }
}
