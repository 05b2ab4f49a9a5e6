// Bench only: an A/B of two builds of the package in headless Chromium, wall time per run (bench/NOTES.md).
//   node bench/profile/ab-chromium.mjs DIST_A DIST_B [ROUNDS] [VARIANT] [CASES-REGEX]
// DIST_A / DIST_B: two copies of dist/ (e.g. `cp -r dist /tmp/dist-before` before a change). One browser, one page per
// build, each served by its own bench server (bench/server.mjs) from a temporary tree holding a copy of bench/ and
// the build as dist/; rounds alternate A, B and B, A, two runs each, after two warm-up rounds. CASES-REGEX picks the
// throughput cases of bench/workloads.js (default: raw `events()` and `batches()` in memory). Prints the median and
// minimum of each case and build, and B's median as a share of A's.
import { cpSync, mkdtempSync, rmSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [distA, distB, rounds = '8', variant = 'ascii', cases = '^memory/fp-raw-(events|batches)$'] = process.argv.slice(2);
if (!distA || !distB) throw new Error('usage: ab-chromium.mjs DIST_A DIST_B [ROUNDS] [VARIANT] [CASES-REGEX]');
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { chromium } = await import(pathToFileURL(path.join(repo, 'node_modules/playwright-core/index.mjs')).href);
const EVENTS = 200_000;
const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
  try {
    const [api, w, { BYOB_BYTES }] = await Promise.all([
      import('/dist/entrypoints/web.js'), import('/bench/workloads.js'), import('/dist/reader/body.js'),
    ]);
    window.runVariant = (job) => w.runVariant(api, { ...job, clock: async () => performance.now(), byob: BYOB_BYTES });
    window.ready = 'ok';
  } catch (e) { window.ready = 'failed: ' + (e && e.stack || e); }
</script>`;

const trees = [];
const servers = [];
let browser;
try {
  for (const dist of [distA, distB]) {
    const tree = mkdtempSync(path.join(tmpdir(), 'ab-chromium-'));
    trees.push(tree);
    cpSync(path.join(repo, 'bench'), path.join(tree, 'bench'), { recursive: true });
    symlinkSync(path.resolve(dist), path.join(tree, 'dist'));
    const { startBenchServer } = await import(pathToFileURL(path.join(tree, 'bench/server.mjs')).href);
    const server = await startBenchServer({ events: EVENTS, page: PAGE });
    server.warm(variant);
    servers.push(server);
  }
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
      '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'],
  });
  const pages = [];
  for (const server of servers) {
    const page = await browser.newPage();
    await page.goto(`${server.base}/`);
    await page.waitForFunction(() => window.ready !== undefined);
    const ready = await page.evaluate(() => window.ready);
    if (ready !== 'ok') throw new Error(ready);
    pages.push(page);
  }
  const job = (k, warmup, reps) => ({ base: servers[k].base, events: EVENTS, warmup, reps, cases, variant });
  for (const k of [0, 1]) await pages[k].evaluate((j) => window.runVariant(j), job(k, 2, 1));
  const times = [{}, {}];
  for (let r = 0; r < Number(rounds); r++) {
    for (const k of r % 2 ? [1, 0] : [0, 1]) {
      const res = await pages[k].evaluate((j) => window.runVariant(j), job(k, 0, 2));
      for (const [c, v] of Object.entries(res.results)) (times[k][c] ??= []).push(...v.times);
    }
  }
  const median = (a) => [...a].sort((x, y) => x - y)[a.length >> 1];
  for (const c of Object.keys(times[0])) {
    const [a, b] = [times[0][c], times[1][c]];
    console.log(`${variant} ${c}: A median ${median(a).toFixed(1)} ms (min ${Math.min(...a).toFixed(1)}), ` +
      `B median ${median(b).toFixed(1)} ms (min ${Math.min(...b).toFixed(1)}): B/A ${(median(b) / median(a)).toFixed(3)}`);
  }
} finally {
  await browser?.close();
  for (const s of servers) await s.close();
  for (const t of trees) rmSync(t, { recursive: true, force: true });
}
