// The runnable examples of examples/, each used as a user would: the tarball `npm pack` makes is installed beside a
// copy of the example (tests/pack's approach), then
// - examples/vite: `vite build`; the built site runs in headless Chromium and reads the reference feed to the end;
// - examples/script-module: served as it is (no build step); runs in Chromium the same way;
// - examples/node: `node consume.mjs <feed>` twice: the first run applies every event, the second resumes and applies none;
// - examples/workers-durable-objects: `wrangler deploy --dry-run --outdir` bundles it (no network to Cloudflare);
//   the bundle runs in Miniflare (workerd) until each partition's Durable Object has caught up.
// Every check compares with the reference server's own dataset (GET /expected): 10,000 events, its last cursors.
// Run `npm run build` first. Run: node --test --test-force-exit --test-timeout=300000 tests/examples/
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { exampleProject, packTarball, run, runInMiniflare } from './project.mjs';
import { fetchExpected, lastCursors, repoRoot, startRefServer, launchChromium } from '../interop/helpers.mjs';
import { startStaticServer } from '../../www/server.mjs';

const bin = (name) => join(repoRoot, 'node_modules', '.bin', name);

let work; // temp dir: the tarball and one project per example
let tarball;
let server; // the reference feed server
let expected; // its dataset
let browser;

before(async () => {
  assert.ok(existsSync(join(repoRoot, 'dist/wasm/feedpump_bg.wasm')), 'dist/ is missing: run `npm run build` first');
  work = mkdtempSync(join(tmpdir(), 'feedpump-examples-'));
  tarball = await packTarball(work);
  server = await startRefServer();
  expected = await fetchExpected(server.base);
  assert.equal(expected.events.length, 10_000, 'the reference dataset');
});

after(async () => {
  await browser?.close().catch(() => {});
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Opens `url` in headless Chromium and waits until the example page has caught up or failed. */
async function readInChromium(t, url) {
  browser ??= await launchChromium();
  const page = await browser.newPage();
  t.after(() => page.close());
  const problems = [];
  const wasm = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  page.on('requestfailed', (r) => problems.push(`requestfailed: ${r.url()}`));
  page.on('response', (r) => {
    if (r.status() >= 400) problems.push(`HTTP ${r.status()}: ${r.url()}`);
    if (r.url().endsWith('.wasm')) wasm.push(`${r.url()} ${r.headers()['content-type']}`);
  });
  await page.goto(url, { timeout: 30_000 });
  await page
    .waitForFunction(() => ['caught-up', 'failed'].includes(document.body.dataset.state), null, { timeout: 60_000 })
    .catch((e) => {
      throw new Error(`the page did not finish: ${problems.join('; ') || e.message}`, { cause: e });
    });
  const shown = await page.evaluate(() => ({
    state: document.body.dataset.state,
    count: document.getElementById('count').textContent,
    status: document.getElementById('status').textContent,
    cursors: document.getElementById('cursors').textContent,
  }));
  return { shown, problems, wasm };
}

/** What both browser examples must show: every event of the reference feed, and its last cursors. */
function assertCaughtUp({ shown, problems }) {
  assert.deepEqual(problems, []);
  assert.equal(shown.state, 'caught-up', shown.status);
  assert.equal(Number(shown.count), expected.events.length);
  assert.deepEqual(JSON.parse(shown.cursors), lastCursors(expected));
}

test('vite: `vite build` bundles feedpump and its wasm; the built site reads the reference feed in Chromium', async (t) => {
  // The example pins the same vite as the repository, which CI installs (package-lock.json).
  const pinned = JSON.parse(readFileSync(join(repoRoot, 'examples/vite/package.json'), 'utf8')).devDependencies.vite;
  assert.equal(pinned, JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')).devDependencies.vite);
  const dir = await exampleProject(work, tarball, 'vite');
  await run(bin('vite'), ['build', '--logLevel', 'warn'], { cwd: dir });
  const assets = readdirSync(join(dir, 'dist', 'assets'));
  t.diagnostic(`vite build: dist/assets = ${assets.join(', ')}`);
  assert.ok(assets.some((f) => /^feedpump_bg-[\w-]+\.wasm$/.test(f)), 'vite emitted the wasm as an asset');

  const site = await startStaticServer({ mounts: { '/': join(dir, 'dist') } });
  t.after(() => site.close());
  const result = await readInChromium(t, `${site.url}/index.html?feed=${encodeURIComponent(server.feedUrl)}`);
  t.diagnostic(`vite example in Chromium: ${JSON.stringify(result.shown)}; wasm: ${result.wasm.join(', ')}`);
  assertCaughtUp(result);
  assert.ok(result.wasm.some((w) => /\/assets\/feedpump_bg-[\w-]+\.wasm application\/wasm$/.test(w)), 'the bundled wasm was loaded');
});

test('script-module: the plain <script type="module"> page reads the reference feed in Chromium, no build step', async (t) => {
  const dir = await exampleProject(work, tarball, 'script-module');
  const site = await startStaticServer({ mounts: { '/': dir } });
  t.after(() => site.close());
  const result = await readInChromium(t, `${site.url}/index.html?feed=${encodeURIComponent(server.feedUrl)}`);
  t.diagnostic(`script-module example in Chromium: ${JSON.stringify(result.shown)}; wasm: ${result.wasm.join(', ')}`);
  assertCaughtUp(result);
  assert.ok(result.wasm.some((w) => w.includes('/node_modules/feedpump/dist/wasm/feedpump_bg.wasm')), 'the package wasm was loaded');
});

test('node: consume.mjs applies every event once into its file store; a second run resumes and applies none', async (t) => {
  const dir = await exampleProject(work, tarball, 'node');
  const state = join(dir, 'state.json');
  const args = [join(dir, 'consume.mjs'), server.feedUrl, '4', state];
  const first = (await run(process.execPath, args, { cwd: dir, timeout: 60_000 })).stdout;
  t.diagnostic(`first run:\n${first.trim()}`);
  const second = (await run(process.execPath, args, { cwd: dir, timeout: 60_000 })).stdout;
  t.diagnostic(`second run:\n${second.trim()}`);

  const perPartition = {};
  for (const e of expected.events) perPartition[e.partition] = (perPartition[e.partition] ?? 0) + 1;
  const cursorsLine = `cursors: ${JSON.stringify(lastCursors(expected))}`;
  assert.match(first, /^this run: 10000 events in \d+ batches, started from first cursors$/m);
  assert.ok(first.includes(`applied in total: 10000 events; per partition ${JSON.stringify(perPartition)}`), first);
  assert.ok(first.includes(cursorsLine), first);
  assert.match(first, /^caught up$/m);
  assert.match(second, /^this run: 0 events in 0 batches, started from stored cursors$/m);
  assert.ok(second.includes('applied in total: 10000 events'), second);
  assert.ok(second.includes(cursorsLine), second);
  const stored = JSON.parse(readFileSync(state, 'utf8'));
  assert.deepEqual(stored.records.example.cursors, lastCursors(expected));
});

test('workers: `wrangler deploy --dry-run` bundles the Durable Object example; the bundle catches up in workerd', async (t) => {
  const dir = await exampleProject(work, tarball, 'workers-durable-objects');
  const outdir = join(dir, 'out');
  await run(bin('wrangler'), ['deploy', '--dry-run', '--outdir', outdir], {
    cwd: dir,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', WRANGLER_LOG_PATH: join(work, 'wrangler-logs') },
  });
  const files = readdirSync(outdir);
  t.diagnostic(`wrangler dry-run output: ${files.join(', ')}`);
  const script = readFileSync(join(outdir, 'worker.js'), 'utf8');
  assert.match(script, /^import \w+ from "\.\/[0-9a-f]+-feedpump_bg\.wasm";$/m, 'the workerd entry point imports the wasm module');
  assert.match(script, /^export \{[^}]*\bPartitionConsumer\b/m, 'the Durable Object class is exported');

  const mf = await runInMiniflare(outdir, {
    durableObjects: { CONSUMER: { className: 'PartitionConsumer', useSQLite: true } },
    bindings: { FEED_URL: server.feedUrl },
  });
  t.after(() => mf.dispose());
  const call = async (path, init) => (await mf.dispatchFetch(`http://worker.test${path}`, { ...init, signal: AbortSignal.timeout(30_000) })).json();
  assert.deepEqual((await call('/start', { method: 'POST' })).started, [0, 1, 2, 3]);
  const want = lastCursors(expected);
  const t0 = Date.now();
  let status;
  for (;;) {
    status = await call('/status');
    if (status.every((s) => s.caughtUp && s.cursors[s.partition] === want[s.partition])) break;
    assert.ok(Date.now() - t0 < 120_000, `not caught up in time: ${JSON.stringify(status)}`);
    await new Promise((r) => setTimeout(r, 200));
  }
  const applied = status.reduce((n, s) => n + s.applied, 0);
  t.diagnostic(`workers bundle in Miniflare: applied=${applied} cursors=${JSON.stringify(status.map((s) => s.cursors))} ${Date.now() - t0} ms`);
  assert.equal(applied, expected.events.length);
  assert.equal(status.reduce((n, s) => n + s.distinct, 0), expected.events.length);
  assert.equal(status.reduce((n, s) => n + s.appliedMoreThanOnce, 0), 0);
  for (const s of status) assert.deepEqual(s.cursors, { [s.partition]: want[s.partition] });
});
