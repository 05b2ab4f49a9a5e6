// Size budget of the published package: brotli (quality 11, as CDNs serve it) of the wasm, and of the JS each entry
// point ships once bundled and minified (esbuild, as an app's bundler would; every export kept, so an upper bound).
// Prints what it measured; exits 1 over budget. Run after `npm run build`.
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { buildSync } from 'esbuild';
import { join, relative } from 'node:path';
import { brotliCompressSync, constants } from 'node:zlib';

const root = new URL('..', import.meta.url).pathname;
const dist = join(root, 'dist');
const KB = 1024;
// The gate: over it, CI fails. Issue #11's targets: the wasm <= 40 KB, every JS entry point <= 15 KB. Each line also
// says how many bytes are left under it.
const BUDGET = { wasm: 40 * KB, js: 15 * KB };

function brotli(bytes) {
  return brotliCompressSync(bytes, {
    params: {
      [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY,
      [constants.BROTLI_PARAM_SIZE_HINT]: bytes.length,
    },
  }).length;
}

function jsFiles(dir) {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return jsFiles(path);
    return name.endsWith('.js') ? [path] : [];
  });
}

const fmt = (n) => `${(n / KB).toFixed(1)} KB`;
let failed = false;

function report(label, files, budget) {
  const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
  const size = brotli(bytes);
  const ok = size <= budget;
  failed ||= !ok;
  console.log(
    `${ok ? 'ok  ' : 'FAIL'} ${label.padEnd(6)} raw ${fmt(bytes.length).padStart(9)}  brotli ${fmt(size).padStart(8)}` +
      `  budget ${fmt(budget)}, ${budget - size} B left  (${files.map((f) => relative(root, f)).join(', ')})`,
  );
}

let wasm;
try {
  wasm = join(dist, 'wasm', 'feedpump_bg.wasm');
  statSync(wasm);
} catch {
  console.error('size: dist/wasm/feedpump_bg.wasm is missing; run `npm run build` first');
  process.exit(1);
}
report('wasm', [wasm], BUDGET.wasm);
for (const entry of ['web', 'node', 'workerd', 'indexeddb', 'durable-object']) {
  const file = join(dist, 'entrypoints', `${entry}.js`);
  const out = buildSync({
    entryPoints: [file],
    bundle: true,
    minify: true,
    format: 'esm',
    platform: entry === 'node' ? 'node' : 'neutral',
    target: 'es2022',
    external: ['*.wasm', 'node:*'],
    write: false,
    logLevel: 'silent',
  }).outputFiles[0].contents;
  const size = brotli(out);
  const ok = size <= BUDGET.js;
  failed ||= !ok;
  console.log(
    `${ok ? 'ok  ' : 'FAIL'} js/${entry.padEnd(8)} minified ${fmt(out.length).padStart(9)}  brotli ${fmt(size).padStart(8)}` +
      `  budget ${fmt(BUDGET.js)}, ${BUDGET.js - size} B left  (${relative(root, file)} bundled; unminified package JS: ${fmt(jsFiles(dist).reduce((n, f) => n + statSync(f).size, 0))})`,
  );
}
if (failed) {
  console.error('size: over budget');
  process.exit(1);
}
