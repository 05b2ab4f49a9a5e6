// The Node side of the benchmark, run by bench/run.mjs in its own process (the loopback server runs in the parent,
// so the server and the client do not share an event loop). Argument: a JSON job; prints a JSON result on stdout.
//   { task: 'suite', base, variants, events, warmup, reps, cases? }   the throughput cases of bench/workloads.js
//   { task: 'latency', base, rate, count, configs }          live latency
//   { task: 'memory', base, mb, kind }                       heap growth while streaming /big (needs --expose-gc)
import * as api from '../dist/entrypoints/node.js';
import { runSuite, runLatency, baselineFeed } from './workloads.js';
import { PARTITIONS } from './gen.js';

const job = JSON.parse(process.argv[2]);
const log = (m) => process.stderr.write(`  [node] ${m}\n`);
let result;

if (job.task === 'suite') {
  const cpu = async () => {
    const u = process.cpuUsage();
    return (u.user + u.system) / 1000;
  };
  result = await runSuite(api, { ...job, clock: async () => performance.now(), cpu, log });
} else if (job.task === 'latency') {
  result = [];
  for (const config of job.configs) {
    const r = await runLatency(api, { base: job.base, rate: job.rate, count: job.count, config });
    log(`latency ${JSON.stringify(config)}: p50 ${r.p50.toFixed(2)} ms, p99 ${r.p99.toFixed(2)} ms`);
    result.push(r);
  }
} else if (job.task === 'memory') {
  // heapUsed is sampled every 2,000 events (and by a 20 ms timer); the reference is heapUsed after a full GC with
  // the module loaded and before the first request.
  globalThis.gc();
  globalThis.gc();
  const base0 = process.memoryUsage();
  let peakHeap = base0.heapUsed;
  let peakRss = base0.rss;
  const sample = () => {
    const m = process.memoryUsage();
    if (m.heapUsed > peakHeap) peakHeap = m.heapUsed;
    if (m.rss > peakRss) peakRss = m.rss;
  };
  const timer = setInterval(sample, 20);
  const url = `${job.base}/big/${job.mb}`;
  let events = 0;
  let sum = 0;
  const t0 = performance.now();
  if (job.kind === 'baseline') {
    for await (const ev of baselineFeed((u) => fetch(u), url)) {
      sum += ev.data.seq;
      if (++events % 2000 === 0) sample();
    }
  } else {
    const feed = api.openFeed(url, { partitionCount: PARTITIONS, retry: false, mode: job.kind === 'raw' ? 'raw' : 'parsed' });
    for await (const ev of feed.events()) {
      sum += ev.partition;
      if (++events % 2000 === 0) sample();
    }
  }
  const secs = (performance.now() - t0) / 1000;
  clearInterval(timer);
  sample();
  globalThis.gc();
  const end = process.memoryUsage();
  result = {
    kind: job.kind,
    events,
    seconds: secs,
    baseHeapMB: base0.heapUsed / 1048576,
    peakHeapGrowthMB: (peakHeap - base0.heapUsed) / 1048576,
    endHeapGrowthMB: (end.heapUsed - base0.heapUsed) / 1048576,
    peakRssGrowthMB: (peakRss - base0.rss) / 1048576,
    externalEndMB: end.external / 1048576,
    sum,
  };
  log(`memory ${job.kind}: ${events} events in ${secs.toFixed(1)} s, peak heap +${result.peakHeapGrowthMB.toFixed(1)} MB`);
}
process.stdout.write(JSON.stringify(result));
