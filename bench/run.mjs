// `npm run bench`: feedpump vs a pure-JS baseline in Node, headless Chromium and workerd, plus memory (Node), live
// latency (Node, Chromium) and the wasm size; writes BENCHMARKS.md. Needs dist/ (`npm run build`).
//   --quick              tiny sizes, 1 round, nothing written unless --out is given (CI: proves it works)
//   --only=node,chromium,workerd   runtimes to measure (default: all three)
//   --no-memory --no-latency       skip those parts
//   --events=N --reps=N --warmup=N --mb=N   override the sizes (defaults 200000 events, 5 rounds, 2 warm-ups, 1024 MB)
//   --out=FILE           where to write the report (default BENCHMARKS.md; with --quick: nowhere); the run's data
//                        goes to bench/results.json for BENCHMARKS.md, else beside FILE (FILE.md -> FILE.json)
//   --render=FILE        only re-render FILE (bench/results.json, written by every full run) with the current bench/NOTES.md
//   --cases=REGEX        only the throughput cases whose key (`loopback/fp-events`, `floor/json-parse`, …) matches
import { execFile } from 'node:child_process';
import { readFileSync, writeFileSync, existsSync, readdirSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, constants } from 'node:zlib';
import { startBenchServer } from './server.mjs';
import { scriptWorker } from '../tests/workerd/miniflare.mjs';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const args = Object.fromEntries(
  process.argv.slice(2).map((a) => {
    const [k, v] = a.replace(/^--/, '').split('=');
    return [k, v ?? true];
  }),
);
const quick = Boolean(args.quick);
const cfg = {
  events: Number(args.events ?? (quick ? 3000 : 200_000)),
  reps: Number(args.reps ?? (quick ? 1 : 5)),
  warmup: Number(args.warmup ?? (quick ? 1 : 2)),
  mb: Number(args.mb ?? (quick ? 8 : 1024)),
  latencyCount: Number(args['latency-count'] ?? (quick ? 300 : 5000)),
  variants: ['ascii', 'mixed'],
};
const only = new Set(String(args.only ?? 'node,chromium,workerd').split(','));
const out = args.out ? String(args.out) : quick ? undefined : path.join(root, 'BENCHMARKS.md');
const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];
const log = (m) => console.error(m);

if (!existsSync(path.join(root, 'dist/wasm/feedpump_bg.wasm'))) {
  console.error('bench: dist/ is missing; run `npm run build` first');
  process.exit(1);
}

// The renderer's CPU time comes from the page's CDP session (window.benchCpu, exposed below).
const PAGE = `<!doctype html><meta charset="utf-8"><title>feedpump bench</title>
<script type="module">
  try {
    const [api, w, { BYOB_BYTES }] = await Promise.all([
      import('/dist/entrypoints/web.js'), import('/bench/workloads.js'), import('/dist/reader/body.js'),
    ]);
    const cpu = typeof window.benchCpu === 'function' ? () => window.benchCpu() : undefined;
    // feedpump reads byte streams here with BYOB reads of BYOB_BYTES (js/src/entrypoints/web.ts): so does the floor.
    window.runVariant = (job) => w.runVariant(api, { ...job, clock: async () => performance.now(), cpu, byob: BYOB_BYTES });
    window.runLatency = (job) => w.runLatency(api, job);
    window.ready = 'ok';
  } catch (e) {
    window.ready = 'failed: ' + (e && e.stack || e);
  }
</script>`;

/** Runs bench/node-runner.mjs in a child process (async: the server in this process must keep answering). */
function nodeJob(job, flags = []) {
  return new Promise((resolve, reject) => {
    const child = execFile(process.execPath, [...flags, path.join(root, 'bench/node-runner.mjs'), JSON.stringify(job)], {
      maxBuffer: 1 << 26,
      cwd: root,
    }, (err, stdout) => (err ? reject(err) : resolve(JSON.parse(stdout))));
    child.stderr.pipe(process.stderr);
  });
}

const within = (ms, promise, what) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms).unref())]);

if (args.render) {
  const saved = JSON.parse(readFileSync(String(args.render), 'utf8'));
  const text = render(saved);
  writeFileSync(out ?? path.join(root, 'BENCHMARKS.md'), text);
  log('bench: re-rendered the saved run (no new measurements)');
  process.exit(0);
}

const load = () => os.loadavg().map((x) => x.toFixed(2)).join(' ');
/** The machine the run measures on, as BENCHMARKS.md shows it (kept in results.json: a re-render shows the run's). */
function machine() {
  const cpu = os.cpus();
  return `${cpu[0]?.model ?? '?'} x ${cpu.length} logical CPUs, ${(os.totalmem() / 2 ** 30).toFixed(1)} GiB RAM, ${os.type()} ${os.release()}`;
}
const report = { started: new Date().toISOString(), machine: machine(), loadBefore: load(), cfg, runtimes: {}, versions: { node: process.version } };
const server = await startBenchServer({ events: cfg.events, page: PAGE });
for (const v of cfg.variants) server.warm(v);
const job = { base: server.base, events: cfg.events, warmup: cfg.warmup, reps: cfg.reps, cases: args.cases };

/** The pid of the descendant process of this one named `name` (Linux /proc), or undefined. */
function descendant(name) {
  const parent = new Map();
  const comm = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      comm.set(Number(d), stat.slice(stat.indexOf('(') + 1, close));
      parent.set(Number(d), Number(stat.slice(close + 2).split(' ')[1]));
    } catch {
      // gone meanwhile
    }
  }
  for (const [pid, c] of comm) {
    if (c !== name) continue;
    for (let p = parent.get(pid); p !== undefined && p > 1; p = parent.get(p)) if (p === process.pid) return pid;
  }
  return undefined;
}
const t0 = Date.now();

try {
  if (only.has('node')) {
    log('== node');
    report.runtimes.node = await nodeJob({ task: 'suite', variants: cfg.variants, ...job });
  }

  if (only.has('chromium')) {
    log('== chromium');
    const { chromium } = await import('playwright-core');
    const browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS, timeout: 30_000 });
    try {
      report.versions.chromium = browser.version();
      const page = await browser.newPage();
      page.on('pageerror', (e) => log(`  [chromium] pageerror: ${e.message}`));
      const cdp = await page.context().newCDPSession(page);
      await cdp.send('Performance.enable');
      await page.exposeFunction('benchCpu', async () => {
        const { metrics } = await cdp.send('Performance.getMetrics');
        return 1000 * (metrics.find((m) => m.name === 'TaskDuration')?.value ?? NaN);
      });
      await page.goto(`${server.base}/`);
      await page.waitForFunction(() => window.ready !== undefined, null, { timeout: 30_000 });
      const ready = await page.evaluate(() => window.ready);
      if (ready !== 'ok') throw new Error(`chromium page: ${ready}`);
      report.runtimes.chromium = [];
      for (const variant of cfg.variants) {
        report.runtimes.chromium.push(await page.evaluate((j) => window.runVariant(j), { ...job, variant }));
        log(`  [chromium] ${variant} done`);
      }
      if (!args['no-latency']) {
        report.latencyChromium = [];
        for (const config of [{ kind: 'feedpump', maxBatchDelayMs: 0 }, { kind: 'feedpump' }, { kind: 'baseline' }]) {
          report.latencyChromium.push(await page.evaluate((j) => window.runLatency(j), { base: server.base, rate: 1000, count: cfg.latencyCount, config }));
        }
        log('  [chromium] latency done');
      }
    } finally {
      await browser.close().catch(() => {});
    }
  }

  if (only.has('workerd')) {
    log('== workerd');
    const { Miniflare } = await import('miniflare');
    const mf = new Miniflare(scriptWorker(root, 'bench/worker.js'));
    try {
      await within(60_000, mf.ready, 'Miniflare start');
      const workerd = descendant('workerd');
      if (workerd === undefined) log('  [workerd] process not found: no CPU times');
      else server.cpuOf(workerd);
      report.versions.workerd = JSON.parse(readFileSync(path.join(root, 'node_modules/workerd/package.json'), 'utf8')).version;
      report.versions.miniflare = JSON.parse(readFileSync(path.join(root, 'node_modules/miniflare/package.json'), 'utf8')).version;
      report.runtimes.workerd = [];
      for (const variant of cfg.variants) {
        const res = await within(900_000, mf.dispatchFetch('http://bench.test/', { method: 'POST', body: JSON.stringify({ ...job, variant }) }), 'workerd run');
        const body = await res.json();
        if (res.status !== 200) throw new Error(`workerd: ${body.workerError}`);
        report.runtimes.workerd.push(body);
        log(`  [workerd] ${variant} done`);
      }
    } finally {
      await within(15_000, mf.dispose(), 'Miniflare dispose').catch((e) => log(e.message));
    }
  }

  if (!args['no-latency'] && only.has('node')) {
    log('== latency (node)');
    report.latencyNode = await nodeJob({
      task: 'latency', base: server.base, rate: 1000, count: cfg.latencyCount,
      configs: [{ kind: 'feedpump', maxBatchDelayMs: 0 }, { kind: 'feedpump' }, { kind: 'baseline' }],
    });
  }

  if (!args['no-memory']) {
    log(`== memory (node, ${cfg.mb} MB)`);
    report.memory = [];
    for (const kind of ['parsed', 'raw', 'baseline']) {
      report.memory.push(await nodeJob({ task: 'memory', base: server.base, mb: cfg.mb, kind }, ['--expose-gc']));
    }
  }
} finally {
  await server.close();
}

const wasm = readFileSync(path.join(root, 'dist/wasm/feedpump_bg.wasm'));
const brotli = brotliCompressSync(wasm, {
  params: { [constants.BROTLI_PARAM_QUALITY]: constants.BROTLI_MAX_QUALITY, [constants.BROTLI_PARAM_SIZE_HINT]: wasm.length },
}).length;
report.size = { raw: wasm.length, brotli };
report.loadAfter = load();
report.seconds = (Date.now() - t0) / 1000;

const text = render(report);
console.log(text);
if (out) {
  writeFileSync(out, text);
  // The saved run for --render: bench/results.json for the report BENCHMARKS.md; beside any other --out file.
  const saved = args.out ? `${String(out).replace(/\.md$/, '')}.json` : path.join(root, 'bench/results.json');
  writeFileSync(saved, JSON.stringify(report, null, 1));
  log(`bench: wrote ${path.relative(process.cwd(), out)}`);
}

// ---------------------------------------------------------------------------------------------------------------

function render(r) {
  // A run can take 0 ms on workerd's coarse clock (the in-memory transport floor): its rates print as '-'.
  const ok = (x) => typeof x === 'number' && Number.isFinite(x);
  const f0 = (x) => (ok(x) ? Math.round(x).toLocaleString('en-US') : '-');
  const f1 = (x) => (ok(x) ? x.toFixed(1) : '-');
  const f2 = (x) => (ok(x) ? x.toFixed(2) : '-');
  const lines = [];
  lines.push('# Benchmarks', '');
  lines.push('Generated by `npm run bench` (bench/run.mjs); see "Method" below and bench/NOTES.md. Do not edit by hand.', '');
  lines.push(`- Date: ${r.started}; whole run ${Math.round(r.seconds)} s`);
  lines.push(`- Machine: ${r.machine ?? '(not recorded in the saved run)'} (shared machine)`);
  lines.push(`- Load average (1/5/15 min): before ${r.loadBefore}, after ${r.loadAfter}`);
  lines.push(`- Runtimes: Node ${r.versions.node}; Chromium ${r.versions.chromium ?? '-'} (headless, playwright-core); workerd ${r.versions.workerd ?? '-'} (Miniflare ${r.versions.miniflare ?? '-'})`);
  lines.push(`- Feed: ${f0(r.cfg.events)} events per run, ~315 B each, 4 partitions, 10 event types, a checkpoint per partition every 100 of its events; medians of ${r.cfg.reps} timed runs after ${r.cfg.warmup} warm-up rounds; MB = 10^6 bytes of NDJSON body`);
  lines.push('- Ratios are of median times in this run ("vs plain loop": its time / this time; "time / transport floor": this time / the floor\'s). CPU ms: the median CPU time of a run (Node: `process.cpuUsage()` of the client process; workerd: all threads of the workerd process, from /proc; Chromium: the renderer main thread\'s busy time, CDP `Performance.getMetrics` `TaskDuration`, which follows wall time on a loaded machine)');
  lines.push('');
  const targets = [];
  for (const [rt, variants] of Object.entries(r.runtimes)) {
    lines.push(`## ${rt}`, '');
    for (const v of variants) {
      const res = v.results;
      const kept = v.kept === undefined ? '' : `, ${f0(v.kept)} of the filtered type`;
      lines.push(`### ${rt}, ${v.variant} (${f1(v.bytes / 1e6)} MB, ${f0(v.events)} events${kept}, ${f0(v.checkpoints)} checkpoints)`, '');
      lines.push('| transport | workload | events/s | MB/s | vs plain loop | vs JSON.parse floor | time / transport floor | CPU ms | CPU vs plain loop | runs (ms) |');
      lines.push('|---|---|---:|---:|---:|---:|---:|---:|---:|---|');
      const floor = res['floor/json-parse'];
      for (const [key, x] of Object.entries(res)) {
        // Runs saved before the filtered workload (bench/results.json) name no `base`: theirs is the plain loop.
        const baseId = x.base ?? (key.split('/')[1] === 'baseline' || x.transport === 'none' ? undefined : 'baseline');
        const base = baseId ? res[`${x.transport}/${baseId}`] : undefined;
        const tfloor = res[`${x.transport}/transport`];
        const ratio = base ? `${f2(base.ms / x.ms)}x` : '';
        const ofFloor = x !== floor && floor && x.id !== 'transport' ? `${f1((100 * floor.ms) / x.ms)}%` : '';
        const ofTransport = tfloor && x !== tfloor ? `${f2(x.ms / tfloor.ms)}x` : '';
        const cpuRatio = base && base.cpuMs && x.cpuMs ? `${f2(base.cpuMs / x.cpuMs)}x` : '';
        lines.push(`| ${x.transport} | ${x.label}${x.reads ? `, ${f0(x.reads)} reads` : ''} | ${f0(x.eventsPerSec)} | ${f1(x.mbPerSec)} | ${ratio} | ${ofFloor} | ${ofTransport} | ${x.cpuMs === undefined ? '' : f0(x.cpuMs)} | ${cpuRatio} | ${x.times.join(', ')} |`);
        if (!base) continue;
        const id = x.id ?? key.split('/')[1];
        const vsBase = base.ms / x.ms;
        const t = (what, value, goal, fmt, atMost = false) => targets.push({ rt, v: v.variant, key, what, value, goal, fmt, atMost });
        const xf = (q) => `${f2(q)}x`;
        if (id.endsWith('-events') && !id.includes('raw') && !id.includes('filter')) t('parsed events() >= 1.0x plain loop', vsBase, 1.0, xf);
        if (id.endsWith('-batches') && !id.includes('raw') && !id.includes('filter')) {
          const goal = rt === 'node' ? 1.05 : 1.2;
          t(`parsed batches() >= ${goal}x plain loop`, vsBase, goal, xf);
        }
        if (id.includes('raw') && x.transport === 'memory') {
          const goal = v.variant === 'ascii' ? 3.0 : 2.0;
          t(`raw >= ${goal}x plain loop (in memory, ${v.variant})`, vsBase, goal, xf);
        }
        if (id.includes('raw') && x.transport === 'loopback') {
          if (tfloor) t('raw time <= 1.5x transport floor (loopback)', x.ms / tfloor.ms, 1.5, xf, true);
          if (v.variant === 'ascii') t('raw >= 2.0x plain loop (loopback, ASCII)', vsBase, 2.0, xf);
        }
        if (id.includes('filter') && !id.startsWith('baseline')) t('filtered >= 3.0x plain loop filtering', vsBase, 3.0, xf);
      }
      lines.push('');
    }
  }
  if (targets.length) {
    lines.push('## Targets', '');
    lines.push('The targets of issue #11, from the medians of this run (wall time). "short by" is how far the ratio is from the goal.', '');
    lines.push('| runtime | variant | workload | target | measured | result |');
    lines.push('|---|---|---|---|---:|---|');
    for (const t of targets) {
      const ok = t.atMost ? t.value <= t.goal : t.value >= t.goal;
      const miss = ok ? 'met' : `missed, ${t.atMost ? 'over' : 'short'} by ${f1((100 * Math.abs(t.goal - t.value)) / t.goal)}%`;
      lines.push(`| ${t.rt} | ${t.v} | ${t.key} | ${t.what} | ${t.fmt(t.value)} | ${miss} |`);
    }
    lines.push('');
  }
  if (r.memory) {
    lines.push('## Memory (Node only)', '');
    lines.push(`\`events()\` over a ~${r.cfg.mb} MB feed generated on the fly by the loopback server (one page, chunked). heapUsed sampled every 2,000 events and every 20 ms, compared with heapUsed after a full GC before the first request (\`node --expose-gc\`). Target: peak growth < 32 MB.`, '');
    lines.push('| client | events | time (s) | MB/s | peak heapUsed growth (MB) | heapUsed growth after GC at end (MB) | peak RSS growth (MB) | result |');
    lines.push('|---|---:|---:|---:|---:|---:|---:|---|');
    for (const m of r.memory) {
      const name = m.kind === 'baseline' ? 'pure-JS baseline' : `feedpump events() ${m.kind}`;
      const heap = m.peakHeapGrowthMB < 32 ? 'heap met' : 'heap MISSED';
      const rss = m.peakRssGrowthMB > r.cfg.mb / 2 ? '; RSS NOT bounded (grows with the page)' : '';
      const verdict = m.kind === 'baseline' ? '' : heap + rss;
      lines.push(`| ${name} | ${f0(m.events)} | ${f1(m.seconds)} | ${f1((r.cfg.mb) / m.seconds)} | ${f1(m.peakHeapGrowthMB)} | ${f1(m.endHeapGrowthMB)} | ${f1(m.peakRssGrowthMB)} | ${verdict} |`);
    }
    lines.push('');
  }
  const lat = [['Node', r.latencyNode], ['Chromium', r.latencyChromium]].filter(([, x]) => x);
  if (lat.length) {
    lines.push('## Live latency', '');
    lines.push(`The server writes ${f0(r.cfg.latencyCount)} events at 1,000 events/s on one open chunked page (each event followed by its partition's checkpoint, so every event is committable at once), stamped with \`performance.timeOrigin + performance.now()\` at the write; the \`for await\` body subtracts that from its own clock (same machine). The first 50 events are left out. workerd is not measured: its clock stands still between I/O events.`, '');
    lines.push('| runtime | client | p50 (ms) | p90 (ms) | p99 (ms) | max (ms) |');
    lines.push('|---|---|---:|---:|---:|---:|');
    for (const [rt, rows] of lat) {
      for (const x of rows) {
        const name = x.config.kind === 'baseline' ? 'pure-JS baseline' : `feedpump events(), maxBatchDelayMs ${x.config.maxBatchDelayMs ?? '10 (default)'}`;
        lines.push(`| ${rt} | ${name} | ${f2(x.p50)} | ${f2(x.p90)} | ${f2(x.p99)} | ${f2(x.max)} |`);
      }
    }
    lines.push('');
  }
  lines.push('## Size', '');
  lines.push(`dist/wasm/feedpump_bg.wasm (built with \`+simd128\`, .cargo/config.toml): ${f1(r.size.raw / 1024)} KB raw, ${f1(r.size.brotli / 1024)} KB brotli (quality 11); budget 40 KB brotli, checked in CI by \`npm run size\`: ${r.size.brotli <= 40 * 1024 ? 'met' : 'MISSED'}.`, '');
  const notes = path.join(root, 'bench/NOTES.md');
  if (existsSync(notes)) lines.push(readFileSync(notes, 'utf8').trim(), '');
  return lines.join('\n');
}
