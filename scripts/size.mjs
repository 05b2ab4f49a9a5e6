// Size budget of the published package: brotli (quality 11, as CDNs serve it) of the wasm, and of the JS each entry
// point ships once bundled and minified (esbuild, as an app's bundler would; every export kept, so an upper bound).
// Prints what it measured; exits 1 over budget, or when the README's inline-vs-wasm sizes are not the build's. Run
// after `npm run build`.
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

/** Prints the line of `files` against `budget`; returns their brotli size. */
function report(label, files, budget) {
  const bytes = Buffer.concat(files.map((f) => readFileSync(f)));
  const size = brotli(bytes);
  const ok = size <= budget;
  failed ||= !ok;
  console.log(
    `${ok ? 'ok  ' : 'FAIL'} ${label.padEnd(6)} raw ${fmt(bytes.length).padStart(9)}  brotli ${fmt(size).padStart(8)}` +
      `  budget ${fmt(budget)}, ${budget - size} B left  (${files.map((f) => relative(root, f)).join(', ')})`,
  );
  return size;
}

let wasm;
try {
  wasm = join(dist, 'wasm', 'feedpump_bg.wasm');
  statSync(wasm);
} catch {
  console.error('size: dist/wasm/feedpump_bg.wasm is missing; run `npm run build` first');
  process.exit(1);
}
const wasmBrotli = report('wasm', [wasm], BUDGET.wasm);
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
// The README's figures for feedpump/inline ("<inline> KB instead of <wasm> KB over the wire with brotli"): the wasm as
// base64 in a module against the .wasm file, each brotli'd as above, in whole KB (within 1 KB of the build's). A doc
// that drifted from the build fails here.
{
  const inline = brotli(readFileSync(join(dist, 'wasm', 'feedpump_inline.js')));
  const file = wasmBrotli;
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const m = /(\d+) KB instead of (\d+) KB over the wire with brotli/.exec(readme);
  const want = [Math.round(inline / KB), Math.round(file / KB)];
  const ok = m !== null && Math.abs(Number(m[1]) - inline / KB) <= 1 && Math.abs(Number(m[2]) - file / KB) <= 1;
  failed ||= !ok;
  console.log(
    `${ok ? 'ok  ' : 'FAIL'} README: feedpump/inline's wasm module ${fmt(inline)} brotli, the .wasm ${fmt(file)}: ` +
      (ok ? `"${m[0]}" holds` : m ? `it says "${m[0]}": write ${want[0]} KB instead of ${want[1]} KB` : 'its sentence was not found'),
  );
}
if (failed) {
  console.error('size: over budget, or the README\'s sizes are not the build\'s');
  process.exit(1);
}
