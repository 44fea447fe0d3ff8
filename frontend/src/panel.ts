// Side panel for the selected layer: metrics vs thresholds, quantization config, activation histogram, verdicts
// with their countermeasure (manual html, from our own `manual` route only) and a copyable snippet.
import type {ConcatCheck, Histogram, LayerDetail, ReplayResponse, ReportSummary, Verdict} from './api';
import {fmt, num} from './api';
import {CANVAS_FONT, DATASETS, HIST_LOG_COUNT} from './constants';
import {joinFlagged, weightBits} from './derived';
import {clear, copyButton, GENERAL_REASON, h, judgeChip, judgeMark} from './dom';
import {getManual, listManual, openManual as openManualEntry, renderManualHtml} from './manual';
import {palette} from './theme';

export function snippetBlock(code: string): HTMLElement {
  const pre = h('pre', {class: 'snippet'}, h('code', {text: code}));
  return h('div', {class: 'snippet-wrap'}, copyButton(() => code), pre);
}

/** A verdict card: judge mark, message, numbers, countermeasure from the manual, snippet. */
export function verdictCard(v: Verdict, onLayer?: (l: string) => void, openManual = true, known?: (l: string) => boolean): HTMLElement {
  const m = judgeMark(v.judge);
  // Artifact ids (e.g. histogram_artifact) are shown as artifact links elsewhere, not as numbers.
  const nums = Object.entries(v.numbers ?? {}).filter(([k, x]) => !/_artifact$|_png$|_path$/.test(k) && (x === null || ['number', 'string', 'boolean'].includes(typeof x)));
  const card = h('div', {class: 'verdict', dataset: {judge: v.judge, source: v.source}},
    h('div', {class: 'verdict-head'}, judgeChip(v.judge), h('b', {text: ' ' + m.title}),
      h('span', {class: 'muted', text: v.source === 'mct' ? '  (reported by MCT)' : '  (computed)'})),
    h('div', {class: 'verdict-msg', text: v.message || (v.judge === 'general' ? GENERAL_REASON[String(v.numbers?.reason)] ?? '' : '')}));
  if (v.judge === 'general' && v.numbers?.reason && GENERAL_REASON[String(v.numbers.reason)] && v.message) {
    card.appendChild(h('div', {class: 'muted small', text: GENERAL_REASON[String(v.numbers.reason)]}));
  }
  if (v.layers?.length) {
    card.appendChild(h('div', {class: 'verdict-layers'}, 'Layers: ',
      ...v.layers.map((l) => onLayer && (!known || known(l)) ? h('a', {href: '#', class: 'layer-link', text: l, onclick: (e: Event) => { e.preventDefault(); onLayer(l); }}) : h('code', {text: l}))));
  }
  if (nums.length) {
    card.appendChild(h('table', {class: 'kv small'}, ...nums.map(([k, x]) => h('tr', null, h('td', {class: 'muted', text: k}), h('td', {text: typeof x === 'number' || x === 'Infinity' || x === 'NaN' || x === '-Infinity' ? fmt(x) : String(x)})))));
  }
  if (v.snippet) card.append(h('div', {class: 'sub-h', text: 'Paste this setting'}), snippetBlock(v.snippet));
  if (v.manual) {
    const body = h('div', {class: 'manual-body muted', text: 'Loading countermeasure…'});
    const det = h('details', {class: 'manual', open: openManual}, h('summary', {text: 'Countermeasure (from the XQuant manual)'}), body);
    card.appendChild(det);
    const mid = v.manual;
    Promise.all([getManual(mid), listManual().catch(() => null)]).then(([e, entries]) => {
      clear(body); body.classList.remove('muted');
      if (e.title) {
        body.appendChild(h('div', {class: 'manual-title'}, h('span', {text: e.title + ' '}),
          h('a', {href: '#', class: 'manual-open small', dataset: {entry: mid}, text: 'open in the Manual tab',
            onclick: (ev: Event) => { ev.preventDefault(); openManualEntry(mid); }})));
      }
      const html = h('div', {class: 'manual-html'});
      renderManualHtml(html, e, entries);
      body.appendChild(html);
      card.dataset.manualLoaded = '1';
    }).catch((err) => { body.textContent = 'Manual entry unavailable: ' + (err as Error).message; card.dataset.manualLoaded = 'error'; });
  }
  return card;
}

export function renderLayerPanel(el: HTMLElement, d: LayerDetail, summary: ReportSummary | null, z: number, onLayer: (l: string) => void,
  known?: (l: string) => boolean, artifactUrl?: (id: string) => string, replay?: (z: number) => Promise<ReplayResponse>) {
  clear(el);
  el.dataset.layer = d.name;
  el.appendChild(h('div', {class: 'panel-title'}, h('span', {class: 'layer-name', text: d.name}),
    d.degraded ? h('span', {class: 'badge degraded', text: 'degraded'}) : h('span', {class: 'badge ok', text: 'ok'})));
  const info = h('table', {class: 'kv'});
  const row = (k: string, v: string) => info.appendChild(h('tr', null, h('td', {class: 'muted', text: k}), h('td', {text: v})));
  row('op', d.op ?? '—');
  if (d.node) row('node', d.node);
  row('output shape', d.output_shape === undefined || d.output_shape === null ? '—' : JSON.stringify(d.output_shape));
  el.appendChild(info);

  // verdicts
  el.appendChild(h('div', {class: 'sub-h', text: d.verdicts?.length ? 'Why it degraded and what to do' : 'Verdicts'}));
  if (!d.verdicts?.length) {
    const gen = summary?.general ?? [];
    el.appendChild(h('div', {class: 'muted small', text: d.degraded
      ? (gen.length ? 'No judge explains this layer. General troubleshoots for this report:' : 'No judge explains this layer.')
      : 'No verdict for this layer.'}));
    if (d.degraded) for (const v of gen) el.appendChild(verdictCard(v, onLayer, false, known));
  }
  for (const v of d.verdicts ?? []) el.appendChild(verdictCard(v, onLayer, true, known));
  const arts = (summary?.artifacts ?? []).filter((a) => a.layer && (a.layer === d.name || a.layer === d.node));
  if (arts.length && artifactUrl) {
    el.appendChild(h('div', {class: 'artifacts small'}, h('span', {class: 'muted', text: 'MCT images for this layer: '}),
      ...arts.map((a) => h('a', {href: artifactUrl(a.id), target: '_blank', rel: 'noopener', class: 'artifact-link', text: a.name}))));
  }
  // metrics vs thresholds
  const metrics = summary?.metrics ?? Object.keys(d.repr ?? d.val ?? {});
  const datasets = DATASETS.filter((ds) => d[ds]);
  if (metrics.length && datasets.length) {
    el.appendChild(h('div', {class: 'sub-h', text: 'Quantization error'}));
    const t = h('table', {class: 'metrics'});
    t.appendChild(h('tr', null, h('th', {text: 'metric'}), ...datasets.map((ds) => h('th', {text: ds})), h('th', {text: 'threshold'})));
    for (const m of metrics) {
      const thr = summary?.thresholds.quantize_error[m];
      const under = summary?.thresholds.detect_under[m];
      t.appendChild(h('tr', null, h('td', {text: m}), ...datasets.map((ds) => {
        const flagged = !!d.flags?.[`${m}.${ds}`];
        return h('td', {class: flagged ? 'flagged' : '', title: flagged ? 'exceeds the threshold' : '', text: fmt((d[ds] as Record<string, unknown>)[m]) + (flagged ? ' ⚠' : '')});
      }), h('td', {class: 'muted', text: thr === undefined ? '—' : `${under ? '<' : '>'} ${fmt(thr)} is degraded`})));
    }
    el.appendChild(t);
  }
  // histogram
  if (d.histogram && d.histogram.bins?.length) {
    el.appendChild(h('div', {class: 'sub-h', text: 'Float activation histogram'}));
    const c = h('canvas', {class: 'hist', 'aria-label': 'activation histogram with z-score axis'});
    el.appendChild(c);
    const zCfg = num(d.quant?.z_threshold);
    const legend = h('div', {class: 'small muted'});
    const hist = d.histogram;
    legend.appendChild(h('span', {class: 'line-key detect', text: `— detection |z| = ${fmt(z)}`}));
    if (Number.isFinite(num(hist.suggested_z_threshold))) legend.appendChild(h('span', {class: 'line-key suggested', text: `  — suggested z_threshold = ${fmt(hist.suggested_z_threshold)}`}));
    if (Number.isFinite(zCfg)) legend.appendChild(h('span', {class: 'line-key configured', text: `  — configured z_threshold = ${fmt(zCfg)}`}));
    legend.appendChild(h('span', {text: `  μ = ${fmt(hist.mu)}, σ = ${fmt(hist.sigma)}, max |z| = ${fmt(hist.max_zscore)}`}));
    if (replay) legend.appendChild(h('span', {class: 'line-key clip', text: '  ┆ the z control below'}));
    el.appendChild(legend);
    let clipZ = NaN;
    const redraw = () => drawHistogram(c, hist, z, zCfg, clipZ);
    requestAnimationFrame(redraw);
    if (replay) el.appendChild(zControl(hist, zCfg, (zz) => { clipZ = zz; redraw(); }, replay));
  } else {
    el.appendChild(h('div', {class: 'muted small', text: 'No activation histogram for this layer (histograms are written by MCT when the report is run with a TensorBoard logger enabled: mct.set_log_folder(...)).'}));
  }
  // quantization
  el.appendChild(h('div', {class: 'sub-h', text: 'Quantization config'}));
  if (d.quant) {
    const q = h('table', {class: 'kv', id: 'quant-config'});
    for (const [k, v] of Object.entries(d.quant)) {
      q.appendChild(h('tr', {dataset: {key: k}}, h('td', {class: 'muted', text: k}),
        h('td', {text: v === null || v === undefined ? '—' : typeof v === 'number' || v === 'Infinity' || v === 'NaN' ? fmt(v) : typeof v === 'object' ? JSON.stringify(v) : String(v)})));
    }
    el.appendChild(q);
  } else {
    el.appendChild(h('div', {class: 'muted small', text: 'No quantization parameters for this layer: they are read from MCT\'s stage logs, ' +
      'which MCT writes when mct.set_log_folder(...) is called before quantizing.'}));
  }
  const bits = weightBits(d, summary);
  if (bits === 'none') el.appendChild(h('div', {class: 'muted small', id: 'weights-bits', dataset: {state: 'none'}, text: 'No quantized weights in this layer (from the final bit widths recorded for the report).'}));
  else if (bits === 'unknown') {
    el.appendChild(h('div', {class: 'note small', id: 'weights-bits', dataset: {state: 'unknown'}},
      h('b', {text: 'Weight bit width unknown. '}),
      'MCT\'s XQuant report does not record it. Run the report through ', h('code', {text: 'tb_xquant_plugin.mct_run.xquant_report_with_manifest(...)'}),
      ' (it reads the final bit widths from the quantized model into ', h('code', {text: 'tb_xquant_manifest.json'}), '), or call ',
      h('code', {text: 'mct.set_log_folder(...)'}), ' before quantizing so the stage logs with the quantization parameters are written beside the report; then press Reload.'));
  }
}

/** The z control under the histogram: drag to a z, see where it clips and what the replay of the quantizer's
 *  threshold choice predicts for the noise (GET replay). */
function zControl(hist: Histogram, zCfg: number, onZ: (z: number) => void, replay: (z: number) => Promise<ReplayResponse>): HTMLElement {
  const maxZ = Math.max(1, Math.ceil(num(hist.max_zscore) + 1));
  const start = [num(hist.suggested_z_threshold), zCfg, maxZ - 1].find((v) => Number.isFinite(v) && v > 0 && v <= maxZ) ?? 1;
  const input = h('input', {type: 'range', min: '0.5', max: String(maxZ), step: 'any', value: String(start), id: 'z-control',
    'aria-label': 'clip the activation at this z-score'}) as HTMLInputElement;
  const shown = h('b', {text: fmt(start)});
  const out = h('div', {class: 'small z-replay', id: 'z-replay', dataset: {state: 'idle'}});
  let timer = 0, asked = 0;
  const ask = () => {
    const zz = Number(input.value);
    shown.textContent = fmt(zz);
    onZ(zz);
    window.clearTimeout(timer);
    timer = window.setTimeout(() => {
      const mine = ++asked;
      out.dataset.state = 'loading';
      replay(zz).then((r) => {
        if (mine !== asked) return;
        clear(out);
        const rp = (r.replay ?? {}) as Record<string, unknown>;
        out.dataset.finding = String(rp.finding ?? '');
        out.dataset.z = String(r.z);
        out.appendChild(h('div', {text: r.text}));
        const facts: string[] = [];
        if (rp.noise_ratio !== undefined && rp.noise_ratio !== null) facts.push(`noise ×${fmt(rp.noise_ratio, 3)} over every value`);
        if (rp.body_sqnr_db_without !== undefined && rp.body_sqnr_db_with !== undefined) facts.push(`SQNR inside the window ${fmt(rp.body_sqnr_db_without, 3)} → ${fmt(rp.body_sqnr_db_with, 3)} dB`);
        if (rp.tail_fraction !== undefined && rp.tail_fraction !== null) facts.push(`${fmt(100 * num(rp.tail_fraction), 3)} % of the values clipped`);
        if (facts.length) out.appendChild(h('div', {class: 'muted', text: facts.join(' · ')}));
        out.dataset.state = 'ready';
      }).catch((e) => { if (mine === asked) { out.textContent = (e as Error).message; out.dataset.state = 'error'; } });
    }, 120);
  };
  input.addEventListener('input', ask);
  requestAnimationFrame(ask);
  return h('div', {class: 'z-control small'}, h('label', null, 'clip at z = ', shown, ' ', input), out);
}

function drawHistogram(c: HTMLCanvasElement, hist: Histogram, z: number, zCfg: number, clipZ = NaN) {
  const P = palette, dpr = window.devicePixelRatio || 1;
  const w = c.clientWidth || 320, hh = c.clientHeight || 170;
  c.width = w * dpr; c.height = hh * dpr;
  const ctx = c.getContext('2d')!;
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.fillStyle = P.bg; ctx.fillRect(0, 0, w, hh);
  const bins = hist.bins.map(num), counts = hist.counts.map(num);
  const mu = num(hist.mu), sigma = num(hist.sigma);
  const edges = bins.length === counts.length + 1 ? bins : null;
  const n = counts.length;
  const left = (i: number) => edges ? edges[i] : bins[i];
  const right = (i: number) => edges ? edges[i + 1] : (i + 1 < bins.length ? bins[i + 1] : bins[i] + (bins[i] - (bins[i - 1] ?? bins[i] - 1)));
  const lines: {x: number; color: string; dash: number[]}[] = [];
  const addZ = (zz: number, color: string, dash: number[]) => {
    if (!Number.isFinite(zz) || !Number.isFinite(mu) || !Number.isFinite(sigma)) return;
    lines.push({x: mu + zz * sigma, color, dash}, {x: mu - zz * sigma, color, dash});
  };
  addZ(z, P.degraded, [4, 3]);
  addZ(num(hist.suggested_z_threshold), P.accent, [6, 3]);
  addZ(zCfg, P.muted, []);
  addZ(clipZ, P.fg, [2, 2]);
  let x0 = Math.min(left(0), ...lines.map((l) => l.x)), x1 = Math.max(right(n - 1), ...lines.map((l) => l.x));
  if (!Number.isFinite(x0) || !Number.isFinite(x1) || x0 === x1) { x0 = 0; x1 = 1; }
  const pad = (x1 - x0) * 0.03; x0 -= pad; x1 += pad;
  const g = {l: 8, r: 8, t: 8, b: 34};
  const X = (v: number) => g.l + ((v - x0) / (x1 - x0)) * (w - g.l - g.r);
  const maxC = Math.max(1, ...counts.filter(Number.isFinite));
  const logc = maxC > HIST_LOG_COUNT;
  const Y = (cnt: number) => g.t + (1 - (logc ? Math.log10(1 + cnt) / Math.log10(1 + maxC) : cnt / maxC)) * (hh - g.t - g.b);
  ctx.fillStyle = P.series;
  for (let i = 0; i < n; i++) {
    const xa = X(left(i)), xb = X(right(i));
    ctx.fillRect(xa, Y(counts[i]), Math.max(1, xb - xa - 0.5), hh - g.b - Y(counts[i]));
  }
  for (const l of lines) {
    ctx.strokeStyle = l.color; ctx.setLineDash(l.dash); ctx.lineWidth = 1.5;
    ctx.beginPath(); ctx.moveTo(X(l.x), g.t); ctx.lineTo(X(l.x), hh - g.b); ctx.stroke();
  }
  ctx.setLineDash([]);
  // axes: value and z-score
  const font = CANVAS_FONT;
  ctx.strokeStyle = P.grid; ctx.beginPath(); ctx.moveTo(g.l, hh - g.b); ctx.lineTo(w - g.r, hh - g.b); ctx.stroke();
  ctx.fillStyle = P.muted; ctx.font = `10px ${font}`; ctx.textAlign = 'center'; ctx.textBaseline = 'top';
  for (let i = 0; i <= 4; i++) {
    const v = x0 + (i / 4) * (x1 - x0);
    ctx.textAlign = i === 0 ? 'left' : i === 4 ? 'right' : 'center';
    ctx.fillText(fmt(v, 3), X(v), hh - g.b + 2);
  }
  ctx.textAlign = 'center';
  if (Number.isFinite(mu) && Number.isFinite(sigma) && sigma > 0) {
    const zlo = Math.ceil((x0 - mu) / sigma), zhi = Math.floor((x1 - mu) / sigma);
    const step = Math.max(1, Math.ceil((zhi - zlo) / 8));
    ctx.fillStyle = P.fg;
    for (let zz = zlo; zz <= zhi; zz += step) ctx.fillText(`${zz}σ`, X(mu + zz * sigma), hh - g.b + 16);
  }
  ctx.textAlign = 'right'; ctx.textBaseline = 'top'; ctx.fillStyle = P.muted;
  ctx.fillText((logc ? 'count (log)' : 'count') + ' · x: value and z-score', w - g.r, g.t);
}

/** Measured concatenation / add joins (`concat_checks`): each input's value range and the widest / narrowest
 *  ratio against `threshold_ratio_unbalanced_concatenation` (`limit`). */
export function concatChecksTable(checks: ConcatCheck[], limit: number, onLayer: (l: string) => void, known?: (l: string) => boolean): HTMLElement {
  const name = (l: string) => known?.(l)
    ? h('a', {href: '#', class: 'layer-link', text: l, onclick: (e: Event) => { e.preventDefault(); onLayer(l); }})
    : h('code', {text: l});
  const t = h('table', {class: 'metrics concat-table'},
    h('tr', null, h('th', {text: 'join'}), h('th', {text: 'inputs (value range)'}), h('th', {text: 'ratio'}), h('th', {text: 'scale'})));
  for (const c of checks) {
    const ratio = num(c.ratio);
    const bad = joinFlagged(c, limit);
    const inputs = h('td', {class: 'concat-inputs'});
    for (const i of c.inputs ?? []) {
      const r = Array.isArray(i.range) ? i.range : [];
      inputs.append(h('div', null, name(String(i.name)), h('span', {class: 'muted', text: ` [${fmt(r[0], 3)}, ${fmt(r[1], 3)}]`})));
    }
    for (const u of c.unmeasured ?? []) inputs.append(h('div', {class: 'muted'}, h('code', {text: String(u)}), ' (range unknown)'));
    t.appendChild(h('tr', {class: 'concat-row' + (bad ? ' flagged-row' : ''), dataset: {node: String(c.node), flagged: bad ? '1' : '0'}},
      h('td', null, name(String(c.node)), h('div', {class: 'muted small', text: String(c.op ?? c.kind ?? '')})),
      inputs,
      h('td', {class: bad ? 'flagged' : '', title: Number.isFinite(limit) ? `unbalanced at ≥ ${fmt(limit)}` : '',
        text: Number.isFinite(ratio) ? fmt(ratio, 3) + (bad ? ' ⚠' : '') : '—'}),
      h('td', {text: c.scale_input && Number.isFinite(num(c.scale)) ? `×${fmt(c.scale, 3)} on ${c.scale_input}` : '—'})));
  }
  return t;
}
