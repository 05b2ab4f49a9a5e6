// Bench only: one build in one fresh headless Chromium page, run after run, to see how a workload's time changes with
// the page's history (its JIT state, its heap, its GC) — the probe of bench/NOTES.md's "Chromium: raw `events()` on
// mixed text over rounds" (2026-11-30).
//   node bench/profile/rounds-chromium.mjs DIST PLAN ROUNDS [JSFLAGS] [LOG]
// DIST: a dist/ to serve. PLAN, one of:
//   - steps `VARIANT:HOW` separated by commas (HOW: events | batches), e.g. `mixed:events,ascii:events`: raw mode over
//     the in-memory transport with the feeds built once and not kept (only their 64 KiB chunks are), each step once
//     per round; prints per run the wall time, `q25` (the 25th percentile of the time per 5,000 events, scaled to
//     the whole run: it leaves out the bursts of a loaded machine and the GC pauses) and the renderer main thread's
//     CPU time (/proc, Linux);
//   - `VARIANT:CASES-REGEX`, e.g. `mixed:^memory/fp-raw-events$`: the bench's own harness (bench/workloads.js
//     runVariant, which keeps the feed's text, lines and bytes alive, as a full bench run does) for ROUNDS reps in
//     one call; prints the run times of each case, and logs `CLK` at each run's start and end (for gc-attrib.mjs).
// JSFLAGS: V8 flags (`--trace-gc --trace-incremental-marking`, `--trace-deopt`, `--log-code --logfile=F`, …); their
// output and the page's console (--enable-logging=stderr) go to LOG, line-buffered, in order.
// Environment: NICE=-19 runs Chromium at that priority (on a shared machine the other processes then disturb it less);
// HEAPUSE=1 prints CDP Runtime.getHeapUsage after each run; PROFILE=DIR writes a CDP sampling profile of each round
// (summarise with top.mjs; use a `wasm-opt -g` build for wasm names); PREGC=1 (harness plans, with
// JSFLAGS=--expose-gc) forces a full GC before each run; EV=N events (default 200,000).
import { spawn } from 'node:child_process';
import { cpSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [dist, plan = 'mixed:events', roundsArg = '10', jsflags = '', log = '/dev/null'] = process.argv.slice(2);
if (!dist) throw new Error('usage: rounds-chromium.mjs DIST PLAN ROUNDS [JSFLAGS] [LOG]');
const rounds = Number(roundsArg);
const repo = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const { chromium } = await import(pathToFileURL(path.join(repo, 'node_modules/playwright-core/index.mjs')).href);
const EVENTS = Number(process.env.EV ?? 200_000);
const W = 5000;
const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
  try {
    const [api, w, g] = await Promise.all([import('/dist/entrypoints/web.js'), import('/bench/workloads.js'), import('/bench/gen.js')]);
    const feeds = {};
    window.setup = (variant) => {
      feeds[variant] = w.memoryFetch(g.chunk(new TextEncoder().encode(g.buildFeed({ events: ${EVENTS}, variant }).text)));
    };
    window.run = async (variant, how) => {
      console.log('RUN-START ' + variant + ' ' + how);
      const s = { events: 0, partitions: 0, x: 0 };
      const feed = api.openFeed('http://memory.invalid/feed/' + variant, { partitionCount: g.PARTITIONS, mode: 'raw', retry: false, fetch: feeds[variant] });
      const t0 = performance.now();
      const marks = [t0];
      if (how === 'events') {
        for await (const ev of feed.events()) {
          s.events++; s.partitions += ev.partition; s.x += ev.raw.length;
          if (s.events % ${W} === 0) marks.push(performance.now());
        }
      } else {
        for await (const batch of feed.batches()) {
          const { events } = batch;
          for (let i = 0; i < events.length; i++) {
            const ev = events[i];
            s.events++; s.partitions += ev.partition; s.x += ev.raw.length;
            if (s.events % ${W} === 0) marks.push(performance.now());
          }
        }
      }
      const ms = performance.now() - t0;
      console.log('RUN-END ' + variant + ' ' + how + ' ' + ms.toFixed(1));
      if (s.events !== ${EVENTS}) throw new Error('events ' + s.events);
      const win = marks.slice(2).map((t, i) => t - marks[i + 1]).sort((a, b) => a - b);
      return { ms, q25: win.length ? win[Math.floor(win.length / 4)] * (${EVENTS} / ${W}) : NaN };
    };
    window.harness = async (variant, cases, reps, pregc) => {
      let k = 0;
      const clock = async () => {
        if (pregc && k++ % 2 === 0) globalThis.gc();
        console.log('CLK ' + variant);
        return performance.now();
      };
      const r = await w.runVariant(api, { base: location.origin, events: ${EVENTS}, warmup: 0, reps, cases, variant, clock });
      return Object.fromEntries(Object.entries(r.results).map(([key, v]) => [key, v.times]));
    };
    window.ready = 'ok';
  } catch (e) { window.ready = 'failed: ' + (e && e.stack || e); }
</script>`;

/** On-CPU ms of each renderer's main thread (/proc, Linux). */
function renderers() {
  const out = {};
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d))) {
    try {
      if (readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=renderer')) {
        out[pid] = Number(readFileSync(`/proc/${pid}/task/${pid}/schedstat`, 'utf8').split(' ')[0]) / 1e6;
      }
    } catch {
      // a process that ended meanwhile
    }
  }
  return out;
}
const cpuDelta = (a, b) => Math.max(0, ...Object.entries(b).map(([pid, ms]) => ms - (a[pid] ?? 0)));
const q = (a, f) => [...a].sort((x, y) => x - y)[Math.floor(f * (a.length - 1))];

const tree = mkdtempSync(path.join(tmpdir(), 'rounds-'));
const profile = mkdtempSync(path.join(tmpdir(), 'rounds-udd-'));
cpSync(path.join(repo, 'bench'), path.join(tree, 'bench'), { recursive: true });
symlinkSync(path.resolve(dist), path.join(tree, 'dist'));
const { startBenchServer } = await import(pathToFileURL(path.join(tree, 'bench/server.mjs')).href);
const server = await startBenchServer({ events: EVENTS, page: PAGE });
const port = 9300 + Math.floor(Math.random() * 600);
const out = openSync(log, 'w');
const args = ['--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic', `--remote-debugging-port=${port}`,
  `--user-data-dir=${profile}`, ...(jsflags ? ['--enable-logging=stderr', `--js-flags=${jsflags}`] : []), 'about:blank'];
const proc = spawn('/usr/bin/nice', ['-n', process.env.NICE ?? '0', '/usr/bin/stdbuf', '-oL', '-eL',
  process.env.CHROMIUM ?? '/usr/bin/chromium', ...args], { stdio: ['ignore', out, out] });
const exited = new Promise((resolve) => proc.on('exit', resolve));
let browser;
try {
  for (let i = 0; ; i++) {
    try {
      browser = await chromium.connectOverCDP(`http://127.0.0.1:${port}`);
      break;
    } catch (e) {
      if (i > 50) throw e;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }
  const page = await browser.contexts()[0].newPage();
  page.on('pageerror', (e) => console.log(`[page] ${e.message}`));
  await page.goto(`${server.base}/`);
  await page.waitForFunction(() => window.ready !== undefined);
  const ready = await page.evaluate(() => window.ready);
  if (ready !== 'ok') throw new Error(ready);
  const steps = plan.split(',').map((s) => s.split(/:(.*)/s).slice(0, 2));
  if (steps.some(([, how]) => how.startsWith('^'))) {
    for (const [variant, cases] of steps) {
      const res = await page.evaluate(([v, c, n, g]) => window.harness(v, c, n, g), [variant, cases, rounds, Boolean(process.env.PREGC)]);
      for (const [key, times] of Object.entries(res)) console.log(`${variant} ${key}: ${times.map((t) => t.toFixed(0)).join(' ')}`);
    }
  } else {
    for (const variant of new Set(steps.map(([v]) => v))) await page.evaluate((v) => window.setup(v), variant);
    const cdp = await page.context().newCDPSession(page);
    const profDir = process.env.PROFILE;
    if (profDir) {
      await cdp.send('Profiler.enable');
      await cdp.send('Profiler.setSamplingInterval', { interval: 500 });
    }
    const series = {};
    for (let r = 0; r < rounds; r++) {
      if (profDir) await cdp.send('Profiler.start');
      const line = [];
      for (const [variant, how] of steps) {
        const c0 = renderers();
        const x = await page.evaluate(([v, h]) => window.run(v, h), [variant, how]);
        const cpu = cpuDelta(c0, renderers());
        const key = `${variant}:${how}`;
        for (const [k, v] of [['wall', x.ms], ['q25', x.q25], ['cpu', cpu]]) ((series[key] ??= {})[k] ??= []).push(v);
        line.push(`${key} ${x.ms.toFixed(0)} ms (q25 ${x.q25.toFixed(0)}, cpu ${cpu.toFixed(0)})`);
        if (process.env.HEAPUSE) {
          const h = await cdp.send('Runtime.getHeapUsage');
          const mb = (b) => (b === undefined ? '?' : (b / 1e6).toFixed(1));
          line.push(`[heap ${mb(h.usedSize)} MB, embedder ${mb(h.embedderHeapUsedSize)}, backing stores ${mb(h.backingStorageSize)}]`);
        }
      }
      if (profDir) writeFileSync(`${profDir}/round-${r + 1}.cpuprofile`, JSON.stringify((await cdp.send('Profiler.stop')).profile));
      console.log(`round ${r + 1}: ${line.join('  ')}`);
    }
    for (const [key, s] of Object.entries(series)) {
      for (const [k, t] of Object.entries(s)) {
        const late = t.slice(Math.min(3, t.length >> 1));
        console.log(`${`${key} ${k}`.padEnd(22)} rounds 4+: min ${Math.min(...late).toFixed(1)}, q25 ${q(late, 0.25).toFixed(1)}, ` +
          `median ${q(late, 0.5).toFixed(1)} | all: ${t.map((x) => x.toFixed(0)).join(' ')}`);
      }
    }
  }
} finally {
  await browser?.close().catch(() => {});
  proc.kill();
  await exited;
  await server.close();
  rmSync(tree, { recursive: true, force: true });
  rmSync(profile, { recursive: true, force: true });
}
