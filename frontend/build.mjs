// Deterministic bundle build: writes tb_xquant_plugin/static/{index.js,layout_worker.js,style.css}.
// No source maps, no timestamps, no absolute paths: `npm ci && npm run build && git diff --exit-code` must pass.
import * as esbuild from 'esbuild';
import {copyFileSync, mkdirSync} from 'node:fs';
import {dirname, resolve} from 'node:path';
import {fileURLToPath} from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = resolve(here, '../tb_xquant_plugin/static');
mkdirSync(out, {recursive: true});

const common = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: ['es2022', 'chrome100', 'firefox100', 'safari15'],
  minify: true,
  sourcemap: false,
  legalComments: 'eof',
  charset: 'utf8',
  logLevel: 'warning',
  absWorkingDir: here,
};

await esbuild.build({...common, entryPoints: {index: 'src/index.ts', layout_worker: 'src/graph/layout_worker.ts'}, outdir: out});
copyFileSync(resolve(here, 'src/style.css'), resolve(out, 'style.css'));
console.log('bundle written to', 'tb_xquant_plugin/static');
