// Follows TensorBoard's dark mode: TB toggles `dark-mode` on the parent page's <body>.
export interface Palette {
  bg: string; fg: string; muted: string; grid: string; node: string; nodeStroke: string; group: string; groupStroke: string;
  edge: string; degraded: string; degradedFill: string; accent: string; selected: string; improved: string; worse: string;
  unchanged: string; tooltipBg: string; series: string; seriesB: string;
}
const LIGHT: Palette = {
  bg: '#ffffff', fg: '#212121', muted: '#757575', grid: '#e0e0e0', node: '#ffffff', nodeStroke: '#9e9e9e',
  group: '#f5f5f5', groupStroke: '#bdbdbd', edge: '#9e9e9e', degraded: '#d32f2f', degradedFill: '#ffcdd2',
  accent: '#f57c00', selected: '#f57c00', improved: '#2e7d32', worse: '#c62828', unchanged: '#9e9e9e',
  tooltipBg: 'rgba(33,33,33,0.92)', series: '#607d8b', seriesB: '#f57c00',
};
const DARK: Palette = {
  bg: '#303030', fg: '#e0e0e0', muted: '#9e9e9e', grid: '#474747', node: '#3c3c3c', nodeStroke: '#8a8a8a',
  group: '#383838', groupStroke: '#5c5c5c', edge: '#8a8a8a', degraded: '#ff6e6e', degradedFill: '#6d2b2b',
  accent: '#ffa726', selected: '#ffa726', improved: '#66bb6a', worse: '#ef5350', unchanged: '#8a8a8a',
  tooltipBg: 'rgba(250,250,250,0.95)', series: '#90a4ae', seriesB: '#ffa726',
};
export let palette: Palette = LIGHT;
export let isDark = false;
const listeners: (() => void)[] = [];
export function onThemeChange(f: () => void) { listeners.push(f); }

function apply(dark: boolean) {
  if (dark === isDark && palette === (dark ? DARK : LIGHT)) return;
  isDark = dark; palette = dark ? DARK : LIGHT;
  document.documentElement.classList.toggle('dark', dark);
  document.body?.classList.toggle('dark-mode', dark);
  for (const f of listeners) f();
}

export function watchTheme() {
  let parentBody: HTMLElement | null = null;
  try {
    if (window.parent && window.parent !== window) parentBody = window.parent.document.body;
  } catch { parentBody = null; }
  const check = () => {
    let dark = false;
    try { dark = !!parentBody && parentBody.classList.contains('dark-mode'); } catch { dark = false; }
    if (!parentBody) {
      // Standalone (e.g. opened directly): follow the OS preference, or ?dark in the hash for tests.
      dark = location.hash.includes('dark=1') || (window.matchMedia?.('(prefers-color-scheme: dark)').matches ?? false);
    }
    apply(dark);
  };
  check();
  if (parentBody) {
    try { new MutationObserver(check).observe(parentBody, {attributes: true, attributeFilter: ['class']}); } catch { /* cross-origin */ }
  } else {
    window.matchMedia?.('(prefers-color-scheme: dark)').addEventListener?.('change', check);
  }
}
