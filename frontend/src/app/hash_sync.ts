// The panel's state in URLs: the iframe's own hash (`#report=…&layer=…&view=…`) and its mirror in TensorBoard's
// page hash (`<tb>/#xquant&…&xq=<state>`), which is the link Copy link copies and a fresh iframe restores.
import {type AppState, panelStateFromTb, parseHash, parseTbHash, toHash, withPanelState} from '../state';

/** The plugin's name in TensorBoard (the tab id in TensorBoard's page hash). */
export function pluginName(): string { return new URLSearchParams(location.search).get('name') || 'xquant'; }

/** TensorBoard's page around the plugin iframe, when it is same-origin (it always is for a dynamic plugin). */
export function tbPage(): Window | null {
  try {
    const p = window.parent;
    if (!p || p === window) return null;
    void p.location.hash;   // throws when cross-origin
    return p;
  } catch { return null; }
}

/** The iframe's own hash wins; a fresh iframe (TensorBoard loads it without one) takes the state that a shared
 *  link put into TensorBoard's page hash (`#xquant&xq=...`). */
export function initialState(): AppState {
  if (location.hash.length > 1) return parseHash(location.hash);
  const p = tbPage();
  const xq = p ? panelStateFromTb(p.location.hash) : null;
  return parseHash(xq ? '#' + xq : '');
}

/** The state in the iframe's hash now (after a hashchange). */
export function stateFromHash(): AppState { return parseHash(location.hash); }

export class HashSync {
  /** `root` gets `data-tb-hash=mirrored` once TensorBoard's page hash holds our state. */
  constructor(private root: HTMLElement, private state: () => AppState) {}

  /** Write the state into the iframe's hash and TensorBoard's (replaceState: no history entry, no hashchange). */
  write() {
    this.mirror();
    const hs = toHash(this.state());
    if (hs === location.hash || (hs === '' && location.hash === '')) return;
    // Absolute URL: the plugin entry page has <base href="plugin/xquant/">, so a bare '#...' would resolve
    // against the base and move the iframe to another path.
    const u = new URL(location.href);
    u.hash = hs;
    history.replaceState(null, '', u.href);
  }

  /** Mirror the state into TensorBoard's page hash (`#xquant&...&xq=<our hash>`) while our tab is the active one,
   *  so that the address bar holds a link to this view. */
  mirror() {
    const p = tbPage();
    if (!p) return;
    try {
      if (parseTbHash(p.location.hash).tab !== pluginName()) return;
      const next = withPanelState(p.location.hash, this.state(), pluginName());
      if (next === p.location.hash) return;
      const u = new URL(p.location.href);
      u.hash = next;
      p.history.replaceState(p.history.state, '', u.href);
      this.root.dataset.tbHash = 'mirrored';
    } catch { /* TensorBoard page gone or not ours */ }
  }

  /** Call `onChange` when the iframe's hash changes, and when a link pasted into the address bar of an open
   *  TensorBoard (a change of its hash only) carries another state for us: that state is copied into our hash first. */
  listen(onChange: () => void) {
    window.addEventListener('hashchange', onChange);
    const p = tbPage();
    if (!p) return;
    p.addEventListener('hashchange', () => {
      if (!this.root.isConnected) return;
      let xq: string | null = null;
      try {
        if (parseTbHash(p.location.hash).tab !== pluginName()) return;
        xq = panelStateFromTb(p.location.hash);
      } catch { return; }
      if (xq === null || '#' + xq === toHash(this.state())) return;
      const u = new URL(location.href);
      u.hash = xq;
      history.replaceState(null, '', u.href);
      onChange();
    });
  }

  /** Link to this view: TensorBoard's page with our state in its hash, or this page when it runs on its own. */
  shareUrl(): string {
    const p = tbPage();
    if (p) {
      try {
        const u = new URL(p.location.href);
        u.hash = withPanelState(p.location.hash, this.state(), pluginName());
        return u.href;
      } catch { /* fall back to the iframe's own URL */ }
    }
    const u = new URL(location.href);
    u.hash = toHash(this.state());
    return u.href;
  }
}
