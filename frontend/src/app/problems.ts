// The problem banner under the top bar (what is missing or broken, each with how to fix it) and the error box used
// wherever a request failed.
import type {ApiError, Problem} from '../api';
import {clear, h} from '../dom';

export class ProblemBanner {
  readonly el = h('div', {class: 'banner', id: 'problems'});

  show(problems: Problem[]) {
    clear(this.el);
    for (const p of problems) {
      this.el.appendChild(h('div', {class: 'problem'}, h('b', {text: p.what}), p.hint ? h('div', {class: 'hint'}, 'To fix: ', h('code', {text: p.hint})) : null));
    }
  }

  showError(e: unknown) {
    clear(this.el);
    this.el.appendChild(errorBox(e));
  }
}

/** A failed request: its message and, for the backend's errors, the hint. */
export function errorBox(e: unknown): HTMLElement {
  const err = e as ApiError;
  return h('div', {class: 'problem error'}, h('b', {text: err.message ?? String(e)}),
    err.hint ? h('div', {class: 'hint'}, 'To fix: ', h('code', {text: err.hint})) : null);
}
