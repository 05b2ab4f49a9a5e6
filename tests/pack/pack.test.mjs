// Pack smoke test: the tarball `npm pack` makes, installed into an empty project, must work in the three places it is
// published for: Node (export condition `node`), a browser bundle (esbuild, condition `browser`) and workerd
// (wrangler's bundle, condition `workerd`, run in Miniflare). The browser bundle runs in Debian's headless Chromium. Run `npm run build` first; `npm run test:pack` runs it.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, extname, join, normalize } from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { scriptWorker } from '../workerd/miniflare.mjs';

const root = fileURLToPath(new URL('../..', import.meta.url));
const bin = (name) => join(root, 'node_modules', '.bin', name);
const builtWasm = join(root, 'dist', 'wasm', 'feedpump_bg.wasm');

// Debian's chromium, driven by playwright-core (never a downloaded browser); the flags of TOOLCHAIN.md.
const CHROMIUM = '/usr/bin/chromium';
const CHROMIUM_ARGS = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage',
  '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-default-apps',
  '--disable-extensions', '--no-first-run', '--no-default-browser-check'];
const TYPES = { '.html': 'text/html', '.js': 'text/javascript', '.wasm': 'application/wasm' };

/** A static file server for `dir` on 127.0.0.1 (random port). */
function serve(dir) {
  const server = createServer((req, res) => {
    const path = normalize(join(dir, decodeURIComponent(new URL(req.url, 'http://x').pathname)));
    if (!path.startsWith(dir) || !existsSync(path)) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { 'content-type': TYPES[extname(path)] ?? 'application/octet-stream' });
    res.end(readFileSync(path));
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

let work; // temp dir: the tarball and the consumer project
let app;

/** Runs a command with a time limit; its output is shown only when it fails. */
function run(cmd, args, options = {}) {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8', timeout: 120_000, stdio: 'pipe', ...options });
  } catch (e) {
    throw new Error(`${cmd} ${args.join(' ')} failed:\n${e.stdout ?? ''}\n${e.stderr ?? ''}`, { cause: e });
  }
}

// What every runtime checks: the API is there, options are checked, and the wasm instance runs (a feed over a
// `fetch` that answers with an empty page is caught up at once; without the wasm, openFeed's iteration would throw).
const PROBE = `
import { openFeed, FeedError, isFeedError } from 'feedpump';
export async function probe() {
  let badOptions = 'none';
  try { openFeed('http://127.0.0.1:9/feed/v1', { partitionCount: 0 }); } catch (e) { badOptions = e instanceof FeedError ? e.code : String(e); }
  let events = 0, wasm = 'ok';
  try {
    const feed = openFeed('http://127.0.0.1:9/feed/v1', { partitionCount: 2, fetch: async () => new Response('') });
    for await (const _ of feed) events++;
  } catch (e) { wasm = String(e && e.message); }
  return { openFeed: typeof openFeed, FeedError: typeof FeedError, isFeedError: typeof isFeedError, badOptions, wasm, events };
}
`;
const EXPECTED = { openFeed: 'function', FeedError: 'function', isFeedError: 'function', badOptions: 'bad-options', wasm: 'ok', events: 0 };

before(() => {
  assert.ok(existsSync(builtWasm), 'dist/ is missing: run `npm run build` first');
  work = mkdtempSync(join(tmpdir(), 'feedpump-pack-'));
  const [packed] = JSON.parse(run('npm', ['pack', '--json', '--ignore-scripts', '--pack-destination', work], { cwd: root }));
  const files = packed.files.map((f) => f.path);
  for (const f of ['package.json', 'dist/index.d.ts', 'dist/entrypoints/node.js', 'dist/entrypoints/web.js',
    'dist/entrypoints/workerd.js', 'dist/wasm/feedpump.js', 'dist/wasm/feedpump_bg.wasm']) {
    assert.ok(files.includes(f), `the tarball lacks ${f}`);
  }
  const stray = files.filter((f) => !/^(dist\/|README\.md$|CHANGELOG\.md$|LICENSE-(MIT|APACHE)$|package\.json$)/.test(f));
  assert.deepEqual(stray, [], 'only dist/, README, CHANGELOG, the licenses and package.json are published');
  app = join(work, 'app');
  mkdirSync(app);
  writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', private: true, type: 'module' }));
  run('npm', ['install', '--no-audit', '--no-fund', '--offline', join(work, packed.filename)], { cwd: app });
  writeFileSync(join(app, 'probe.js'), PROBE);
});

after(() => {
  if (work) rmSync(work, { recursive: true, force: true });
});

test('node: import feedpump resolves the node entry point and runs the wasm', () => {
  const out = run(process.execPath, ['--input-type=module', '-e',
    "import { probe } from './probe.js'; console.log(JSON.stringify(await probe()));"], { cwd: app });
  assert.deepEqual(JSON.parse(out), EXPECTED);
  const resolved = run(process.execPath, ['--input-type=module', '-e', "console.log(import.meta.resolve('feedpump'))"], { cwd: app });
  assert.match(resolved.trim(), /\/node_modules\/feedpump\/dist\/entrypoints\/node\.js$/);
});

test('bin: the installed package has a working `feedpump` command (npx feedpump)', () => {
  const help = run(join(app, 'node_modules', '.bin', 'feedpump'), ['--help'], { cwd: app });
  assert.match(help, /^Usage: feedpump <command> <feed-url>/);
  const version = run(join(app, 'node_modules', '.bin', 'feedpump'), ['--version'], { cwd: app });
  assert.equal(version.trim(), JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')).version);
});

test('browser bundle: esbuild resolves the browser entry point; the bundle runs in headless Chromium', async (t) => {
  const { build } = await import(join(root, 'node_modules', 'esbuild', 'lib', 'main.js'));
  const site = join(app, 'site');
  const outdir = join(site, 'js');
  const result = await build({
    absWorkingDir: app,
    entryPoints: ['probe.js'],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    loader: { '.wasm': 'file' },
    outdir,
    metafile: true,
    logLevel: 'silent',
  });
  assert.deepEqual(result.errors, []);
  const inputs = Object.keys(result.metafile.inputs);
  assert.ok(inputs.some((p) => p.endsWith('feedpump/dist/entrypoints/web.js')), `browser entry point not used: ${inputs}`);
  assert.ok(!inputs.some((p) => /entrypoints\/(node|workerd)\.js$/.test(p)), 'a node/workerd entry point was bundled');
  const bundle = readFileSync(join(outdir, 'probe.js'), 'utf8');
  assert.ok(!/node:fs|readFileSync/.test(bundle), 'node-only code in the browser bundle');
  // The init must survive tree shaking ("sideEffects" lists the entry points). esbuild keeps new URL(…, import.meta.url)
  // as it is and does not copy the file (evanw/esbuild#795; Vite, webpack 5, Rollup and Parcel do): an esbuild user
  // puts feedpump_bg.wasm where that URL points, as done here.
  // (The bindings' own fallback URL comes earlier in the bundle; the one used is in the web entry point's section.)
  const webSection = bundle.slice(bundle.indexOf('feedpump/dist/entrypoints/web.js'));
  const ref = /new URL\("([^"]+\.wasm)", import\.meta\.url\)/.exec(webSection);
  assert.ok(ref, 'the bundle does not load the wasm through new URL(..., import.meta.url)');
  const wasmPath = fileURLToPath(new URL(ref[1], pathToFileURL(join(outdir, 'probe.js'))));
  assert.ok(wasmPath.startsWith(site), `the wasm URL ${ref[1]} points outside the site`);
  mkdirSync(dirname(wasmPath), { recursive: true });
  copyFileSync(join(app, 'node_modules', 'feedpump', 'dist', 'wasm', 'feedpump_bg.wasm'), wasmPath);
  writeFileSync(
    join(site, 'index.html'),
    '<!doctype html><script type="module">import { probe } from "./js/probe.js"; ' +
      'probe().then((r) => { globalThis.result = r; }, (e) => { globalThis.result = { error: String(e) }; });</script>',
  );

  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} is missing: the bundle was built but not run`);
    return;
  }
  const server = await serve(site);
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const { chromium } = await import(join(root, 'node_modules', 'playwright-core', 'index.mjs'));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('requestfailed', (r) => problems.push(`requestfailed: ${r.url()}`));
  page.on('response', (r) => r.status() >= 400 && problems.push(`HTTP ${r.status()}: ${r.url()}`));
  await page.goto(`http://127.0.0.1:${server.address().port}/index.html`, { timeout: 30_000 });
  await page.waitForFunction(() => globalThis.result !== undefined, null, { timeout: 30_000 }).catch((e) => {
    throw new Error(`the page gave no result: ${problems.join('; ') || e.message}`, { cause: e });
  });
  assert.deepEqual(await page.evaluate(() => globalThis.result), EXPECTED);
});

/** Serves `site` and loads its index.html in headless Chromium; resolves with `globalThis.result` of the page. */
async function inChromium(t, site) {
  const server = await serve(site);
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const { chromium } = await import(join(root, 'node_modules', 'playwright-core', 'index.mjs'));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
  t.after(() => browser.close());
  const page = await browser.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(`http://127.0.0.1:${server.address().port}/index.html`, { timeout: 30_000 });
  await page.waitForFunction(() => globalThis.result !== undefined, null, { timeout: 30_000 }).catch((e) => {
    throw new Error(`the page gave no result: ${problems.join('; ') || e.message}`, { cause: e });
  });
  return { result: await page.evaluate(() => globalThis.result), problems };
}

const PAGE =
  '<!doctype html><script type="module">import { probe } from "./js/probe.js"; ' +
  'probe().then((r) => { globalThis.result = r; }, (e) => { globalThis.result = { error: String(e) }; });</script>';

test('inline: esbuild bundles feedpump/inline with no .wasm file to copy; the bundle runs in Node and in Chromium', async (t) => {
  const { build } = await import(join(root, 'node_modules', 'esbuild', 'lib', 'main.js'));
  writeFileSync(join(app, 'probe-inline.js'), PROBE.replace("from 'feedpump'", "from 'feedpump/inline'"));
  const site = join(app, 'site-inline');
  const outdir = join(site, 'js');
  const result = await build({
    absWorkingDir: app,
    entryPoints: { probe: 'probe-inline.js' },
    bundle: true,
    platform: 'browser',
    format: 'esm',
    outdir,
    metafile: true,
    logLevel: 'silent',
  });
  assert.deepEqual(result.errors, []);
  const outputs = Object.keys(result.metafile.outputs);
  assert.deepEqual(outputs.filter((f) => !f.endsWith('.js')), [], 'no file besides the bundle');
  const inputs = Object.keys(result.metafile.inputs);
  assert.ok(inputs.some((p) => p.endsWith('feedpump/dist/entrypoints/inline.js')), `inline entry point not used: ${inputs}`);

  // Node runs the browser bundle as it is (Node has fetch, Response and atob).
  const out = run(process.execPath, ['--input-type=module', '-e',
    `import { probe } from ${JSON.stringify(pathToFileURL(join(outdir, 'probe.js')).href)}; console.log(JSON.stringify(await probe()));`], { cwd: app });
  assert.deepEqual(JSON.parse(out), EXPECTED);

  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} is missing: the bundle ran in Node only`);
    return;
  }
  writeFileSync(join(site, 'index.html'), PAGE);
  const { result: page, problems } = await inChromium(t, site);
  assert.deepEqual(page, EXPECTED, problems.join('; '));
});

test('a .wasm file that is not there: the import succeeds and the first use throws FeedError wasm-load-failed (Chromium)', async (t) => {
  if (!existsSync(CHROMIUM)) {
    t.skip(`${CHROMIUM} is missing`);
    return;
  }
  const { build } = await import(join(root, 'node_modules', 'esbuild', 'lib', 'main.js'));
  const site = join(app, 'site-nowasm');
  await build({ absWorkingDir: app, entryPoints: ['probe.js'], bundle: true, platform: 'browser', format: 'esm', outdir: join(site, 'js'), logLevel: 'silent' });
  writeFileSync(join(site, 'index.html'), PAGE); // the esbuild user forgot to copy feedpump_bg.wasm
  const { result } = await inChromium(t, site);
  assert.equal(result.error, undefined, 'the import failed');
  assert.equal(result.badOptions, 'bad-options', 'options are checked without the wasm');
  assert.match(result.wasm, /^wasm-load-failed: the WebAssembly module could not be loaded/);
});

test('workerd: wrangler bundles the workerd entry point; the Worker runs in Miniflare', async (t) => {
  writeFileSync(
    join(app, 'worker.js'),
    "import { probe } from './probe.js';\nexport default { async fetch() { return Response.json(await probe()); } };\n",
  );
  writeFileSync(
    join(app, 'wrangler.toml'),
    'name = "pack-smoke"\nmain = "worker.js"\ncompatibility_date = "2025-01-01"\nsend_metrics = false\n',
  );
  const outdir = join(app, 'worker-out');
  run(bin('wrangler'), ['deploy', '--dry-run', '--outdir', outdir], {
    cwd: app,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true' },
  });
  const script = join(outdir, 'worker.js');
  assert.match(readFileSync(script, 'utf8'), /^import \w+ from "\.\/[0-9a-f]+-feedpump_bg\.wasm";$/m);

  const { Miniflare } = await import(join(root, 'node_modules', 'miniflare', 'dist', 'src', 'index.js'));
  // Miniflare treats *.js as CommonJS unless told otherwise; a start that throws must not leave handles open
  // (TOOLCHAIN.md pitfall 4): always dispose, and bound every wait.
  const mf = new Miniflare(scriptWorker(outdir, script));
  t.after(() => mf.dispose());
  const res = await mf.dispatchFetch('http://localhost/', { signal: AbortSignal.timeout(30_000) });
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), EXPECTED);
});
