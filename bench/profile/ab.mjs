// Bench only: an A/B of two builds of the package in one Node process, in memory (no transport), CPU time per run.
//   node bench/profile/ab.mjs DIST_A DIST_B [ROUNDS] [VARIANT] [CASE...]
// DIST_A / DIST_B: two copies of dist/ (e.g. `cp -r dist /tmp/dist-before` before a change). CASE: filter-events,
// filter-batches, batches, events, raw-batches (default: all five; raw mode reads `raw.length` as the bench does). Runs alternate A, B, A, B, … so both see the same load; prints
// the median and minimum CPU ms of each case and build, and B's median as a share of A's.
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { buildFeed, chunk, FILTER_TYPE, PARTITIONS } from '../gen.js';
import { memoryFetch } from '../workloads.js';

const [distA, distB, rounds = '15', variant = 'ascii', ...which] = process.argv.slice(2);
const load = (d) => import(pathToFileURL(path.resolve(d, 'entrypoints/node.js')).href);
const apis = [await load(distA), await load(distB)];
const feed = buildFeed({ events: 200_000, variant });
const fetchMem = memoryFetch(chunk(new TextEncoder().encode(feed.text)));
const url = `http://memory.invalid/feed/${variant}`;
const all = {
  'filter-events': { how: 'events', filter: true },
  'filter-batches': { how: 'batches', filter: true },
  batches: { how: 'batches' },
  events: { how: 'events' },
  'raw-batches': { how: 'batches', raw: true },
};
const cases = which.length ? which : Object.keys(all);

async function once(api, c) {
  const feedApi = api.openFeed(url, {
    partitionCount: PARTITIONS, mode: c.raw ? 'raw' : 'parsed', retry: false, fetch: fetchMem,
    ...(c.filter ? { filter: { include: [FILTER_TYPE] } } : {}),
  });
  let n = 0;
  let x = 0;
  if (c.how === 'events') {
    for await (const ev of feedApi.events()) { n++; x += ev.data.seq; }
  } else {
    for await (const b of feedApi.batches()) for (const ev of b.events) { n++; x += c.raw ? ev.raw.length : ev.data.seq; }
  }
  if (n !== (c.filter ? feed.kept : 200_000)) throw new Error(`${n} events`);
  return x;
}

const median = (v) => [...v].sort((a, b) => a - b)[v.length >> 1];
for (const name of cases) {
  const c = all[name];
  const cpu = [[], []];
  for (let r = -2; r < Number(rounds); r++) {
    for (const k of [0, 1]) {
      const c0 = process.cpuUsage();
      await once(apis[k], c);
      const d = process.cpuUsage(c0);
      if (r >= 0) cpu[k].push((d.user + d.system) / 1000);
    }
  }
  const [ma, mb] = cpu.map(median);
  const [na, nb] = cpu.map((v) => Math.min(...v));
  console.log(`${variant} ${name}: A median ${ma.toFixed(0)} ms (min ${na.toFixed(0)}), B median ${mb.toFixed(0)} ms (min ${nb.toFixed(0)}): B/A ${(mb / ma).toFixed(3)} (min ${(nb / na).toFixed(3)})`);
}
