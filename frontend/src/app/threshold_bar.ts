// The threshold bar (#thresholds) and its toggle button (#thr-toggle): threshold_quantize_error and its direction per
// metric, the degraded-layer ratio, the z-score, the concatenation ratio and the bit width. Edits go straight into
// the state's threshold parameters; the owner re-requests the report.
import type {ReportSummary} from '../api';
import {fmt, num} from '../api';
import {clear, h} from '../dom';
import {thresholdQuery, type ThresholdParams} from '../state';

export interface ThresholdBarEvents {
  /** a value changed (already written into the ThresholdParams given to render) */
  onEdit(): void;
  /** Reset: back to the report's own thresholds */
  onReset(): void;
}

export class ThresholdBar {
  readonly el = h('div', {class: 'thresholds', id: 'thresholds'});
  readonly toggle = h('button', {class: 'btn', id: 'thr-toggle', text: 'Thresholds', 'aria-expanded': 'false'});

  constructor(private events: ThresholdBarEvents) {
    this.toggle.addEventListener('click', () => {
      const open = this.el.classList.toggle('open');
      this.toggle.setAttribute('aria-expanded', String(open));
    });
  }

  /** Inputs for the summary's thresholds; edits write into `t`. The toggle says how many values were changed. */
  render(s: ReportSummary, t: ThresholdParams) {
    clear(this.el);
    const onChange = () => this.events.onEdit();
    const numInput = (label: string, value: unknown, set: (v: string) => void, title: string, id: string) => {
      const inp = h('input', {type: 'number', step: 'any', value: fmt(value, 6) === '∞' ? 'Infinity' : String(num(value)), id, title, 'aria-label': label});
      inp.addEventListener('input', () => { if (inp.value !== '' && Number.isFinite(Number(inp.value))) { set(inp.value); onChange(); } });
      return h('label', {class: 'thr-field', title}, h('span', {class: 'muted', text: label}), inp);
    };
    const metrics = s.metrics ?? Object.keys(s.thresholds.quantize_error ?? {});
    for (const m of metrics) {
      const dir = h('select', {id: `under-${m}`, 'aria-label': `${m} direction`, title: 'Which side of the threshold counts as degraded'},
        h('option', {value: '0', text: 'above'}), h('option', {value: '1', text: 'below'}));
      dir.value = s.thresholds.detect_under[m] ? '1' : '0';
      dir.addEventListener('change', () => { t.under[m] = dir.value; onChange(); });
      const f = numInput(m, s.thresholds.quantize_error[m], (v) => { t.thr[m] = v; }, `threshold_quantize_error['${m}']`, `thr-${m}`);
      f.append(h('span', {class: 'muted', text: 'flag if'}), dir);
      this.el.appendChild(f);
    }
    this.el.appendChild(numInput('degraded ratio', s.thresholds.degrade_layer_ratio, (v) => { t.ratio = v; }, 'threshold_degrade_layer_ratio', 'thr-ratio'));
    this.el.appendChild(numInput('z-score', s.thresholds.zscore_outlier_removal, (v) => { t.z = v; }, 'threshold_zscore_outlier_removal', 'thr-z'));
    this.el.appendChild(numInput('concat ratio', s.thresholds.ratio_unbalanced_concatenation, (v) => { t.concat = v; }, 'threshold_ratio_unbalanced_concatenation', 'thr-concat'));
    this.el.appendChild(numInput('bits', s.thresholds.bitwidth_mixed_precision_with_model_output_loss_objective, (v) => { t.bits = v; }, 'threshold_bitwidth_mixed_precision_with_model_output_loss_objective', 'thr-bits'));
    this.el.appendChild(h('button', {class: 'btn small', id: 'thr-reset', text: 'Reset', title: 'Back to the report\'s own thresholds',
      onclick: () => this.events.onReset()}));
    const custom = Object.keys(thresholdQuery(t)).length;
    this.toggle.textContent = custom ? `Thresholds (${custom} changed)` : 'Thresholds';
  }
}
