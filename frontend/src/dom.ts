// Tiny DOM helper. Text is always inserted with textContent: model-derived strings never go through innerHTML.
import {COPY_FEEDBACK_MS, JUDGE_MARK, UNKNOWN_JUDGE_COLOR} from './constants';

type Child = Node | string | number | null | undefined | false;
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K, attrs: Record<string, unknown> | null = null, ...children: (Child | Child[])[]
): HTMLElementTagNameMap[K] {
  const el = document.createElement(tag);
  if (attrs) {
    for (const [k, v] of Object.entries(attrs)) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') el.className = String(v);
      else if (k === 'text') el.textContent = String(v);
      else if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v as EventListener);
      else if (k === 'dataset') Object.assign(el.dataset, v);
      else if (k === 'value') (el as unknown as HTMLInputElement).value = String(v);
      else if (k === 'checked') (el as unknown as HTMLInputElement).checked = Boolean(v);
      else el.setAttribute(k, v === true ? '' : String(v));
    }
  }
  append(el, children);
  return el;
}
export function append(el: Element, children: (Child | Child[])[]) {
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.appendChild(typeof c === 'string' || typeof c === 'number' ? document.createTextNode(String(c)) : c);
  }
}
export function clear(el: Element) { while (el.firstChild) el.removeChild(el.firstChild); }

export function judgeMark(j: string) {
  return JUDGE_MARK[j] ?? {letter: (j[0] ?? '?').toUpperCase(), title: j, color: UNKNOWN_JUDGE_COLOR};
}
export function judgeChip(j: string): HTMLElement {
  const m = judgeMark(j);
  const chip = h('span', {class: 'judge-chip', title: m.title, text: m.letter});
  chip.style.background = m.color;
  return chip;
}

export const GENERAL_REASON: Record<string, string> = {
  no_degraded_layers: 'No layer exceeds its threshold, yet accuracy dropped: the loss is spread over the network.',
  degraded_ratio_over_limit: 'Too many layers are degraded for a single-layer fix to help.',
  no_judge_applies: 'Degraded layers were found, but none of the automatic judges explains them.',
  countermeasure_did_not_improve: 'The countermeasure was applied, but the layers did not improve.',
};

export function debounce<T extends unknown[]>(fn: (...a: T) => void, ms: number) {
  let t: number | undefined;
  return (...a: T) => { if (t !== undefined) clearTimeout(t); t = window.setTimeout(() => fn(...a), ms); };
}

export async function copyText(text: string): Promise<boolean> {
  try { await navigator.clipboard.writeText(text); return true; } catch { /* fall back */ }
  const ta = h('textarea', {value: text, readonly: true});
  ta.style.position = 'fixed'; ta.style.opacity = '0';
  document.body.appendChild(ta); ta.select();
  let ok = false;
  try { ok = document.execCommand('copy'); } catch { ok = false; }
  ta.remove();
  return ok;
}

/** A "Copy" button that copies `text()` and says whether it worked (`data-copied` = 1 or 0). */
export function copyButton(text: () => string, title = 'Copy this code to the clipboard'): HTMLButtonElement {
  const btn = h('button', {class: 'btn small copy', text: 'Copy', title, type: 'button'});
  btn.addEventListener('click', async () => {
    const ok = await copyText(text());
    btn.textContent = ok ? 'Copied' : 'Copy failed';
    btn.dataset.copied = ok ? '1' : '0';
    setTimeout(() => { btn.textContent = 'Copy'; }, COPY_FEEDBACK_MS);
  });
  return btn;
}

/** Resolves once the browser has painted the next frame (a timer queued from that frame's animation callback runs
 *  after its paint): work after it no longer delays what is already drawn.  A hidden page paints no frame: then
 *  after `maxMs`. */
export function afterPaint(maxMs = 100): Promise<void> {
  return new Promise((resolve) => {
    requestAnimationFrame(() => setTimeout(resolve, 0));
    setTimeout(resolve, maxMs);
  });
}
