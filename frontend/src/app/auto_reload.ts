// When to re-check the backend without the user asking: every POLL_MS, when the tab becomes visible again, and when
// TensorBoard's own reload (button or auto-reload) refetches its run list in the parent page.
import {PARENT_RELOAD_DEBOUNCE_MS, POLL_MS} from '../constants';
import {debounce} from '../dom';

/** `poll` re-checks; `root` gets `data-reload-hook=parent` when TensorBoard's reloads can be seen. */
export function watchForReloads(root: HTMLElement, poll: () => void) {
  setInterval(poll, POLL_MS);
  watchParentReload(root, poll);
  document.addEventListener('visibilitychange', () => { if (!document.hidden) poll(); });
}

/** TensorBoard has no reload hook for dynamic plugins, but the iframe is same-origin: watch the parent's resource
 *  timings for `data/runs` / `data/environment`. Without access, polling alone remains. */
function watchParentReload(root: HTMLElement, poll: () => void) {
  try {
    const pw = window.parent as unknown as {PerformanceObserver?: typeof PerformanceObserver};
    if (!pw || (pw as unknown) === window || !pw.PerformanceObserver) return;
    const kick = debounce(poll, PARENT_RELOAD_DEBOUNCE_MS);
    const obs = new pw.PerformanceObserver((list) => {
      if (list.getEntries().some((e) => /\/data\/(runs|environment)(\?|$)/.test(e.name))) kick();
    });
    obs.observe({type: 'resource', buffered: false});
    root.dataset.reloadHook = 'parent';
  } catch { /* cross-origin or unsupported: polling only */ }
}
