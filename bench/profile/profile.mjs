// Bench only: a CPU profile of one reader over loopback (it served bench/NOTES.md's "Shell probe").
//   node --cpu-prof --cpu-prof-dir=DIR bench/profile/profile.mjs BASE SHELL HOW MODE VARIANT RUNS
// BASE: a running bench server (`node bench/server.mjs 200000` prints it); SHELL: feedpump (the package) | baseline
// (the plain loop) | transport; HOW: events | batches; MODE: parsed | raw. Prints the CPU time and wall time of each
// run. Summarise the profile with bench/profile/top.mjs. A 7th argument `filter` adds the filtered workload's type
// filter (`filter: { include: [FILTER_TYPE] }`, 10% kept).
import * as api from '../../dist/entrypoints/node.js';
import { baselineFeed } from '../workloads.js';
import { FILTER_TYPE, PARTITIONS } from '../gen.js';

const [base, shell, how, mode, variant, runs = '3', filtered] = process.argv.slice(2);
const impl = api;
const url = `${base}/feed/${variant}`;

async function once() {
  let n = 0;
  let x = 0;
  if (shell === 'baseline') {
    for await (const ev of baselineFeed((u) => fetch(u), url)) {
      n++;
      x ^= ev.data.seq;
    }
    return n;
  }
  if (shell === 'transport') {
    for (const cursor of ['_first', 'end']) {
      const q = Array.from({ length: PARTITIONS }, (_, p) => `cursor${p}=${cursor}`).join('&');
      const reader = (await fetch(`${url}?n=${PARTITIONS}&${q}`)).body.getReader();
      for (;;) {
        const { done, value } = await reader.read();
        if (done) break;
        n += value.byteLength;
      }
    }
    return n;
  }
  const filter = filtered === 'filter' ? { filter: { include: [FILTER_TYPE] } } : {};
  const feed = impl.openFeed(url, { partitionCount: PARTITIONS, mode, retry: false, ...filter });
  if (how === 'events') {
    for await (const ev of feed.events()) {
      n++;
      x += mode === 'raw' ? ev.raw.length : ev.data.seq;
    }
  } else {
    for await (const b of feed.batches()) {
      for (const ev of b.events) {
        n++;
        x += mode === 'raw' ? ev.raw.length : ev.data.seq;
      }
    }
  }
  return n;
}

for (let i = 0; i < Number(runs); i++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const n = await once();
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  console.log(`${shell} ${how} ${mode} ${variant}: ${n} in ${ms.toFixed(0)} ms wall, ${((c.user + c.system) / 1000).toFixed(0)} ms CPU`);
}
