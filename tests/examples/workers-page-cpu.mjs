// Measures, in workerd (Miniflare), what one page of N events costs a Durable Object, for docs/workers.md:
//   parse    openFeed().batches() over an in-memory body of N events (~315 B each, bench/gen.js): the feed's own work
//   commit   consume() into durableObjectStore(ctx.storage), a handler with one put per batch: + one transaction per batch
//   example  consume() with examples/workers-durable-objects' handler (one get + put per event, in 128-key chunks)
// workerd's clock stands still between I/O, so each run is bracketed by a tiny loopback request (GET /tick) as in
// bench/worker.js; a pair of ticks with nothing between is measured too and subtracted. Medians of 15 runs after 3
// warm-ups. Not a test (node --test does not pick it up). Needs dist/ (`npm run build`).
// Run: node tests/examples/workers-page-cpu.mjs [N,N,...]
import { createServer } from 'node:http';
import path from 'node:path';
import { Miniflare } from 'miniflare';
import { repoRoot } from '../interop/helpers.mjs';
import { distModules, workerOptions } from '../workerd/miniflare.mjs';

const sizes = (process.argv[2] ?? '100,250,500,1000,2000,5000').split(',').map(Number);

const WORKER = `
import { DurableObject } from 'cloudflare:workers';
import { openFeed, consume } from '../../dist/entrypoints/workerd.js';
import { durableObjectStore } from '../../dist/entrypoints/durable-object.js';
import { buildFeed, chunk } from '../../bench/gen.js';
import { memoryFetch } from '../../bench/workloads.js';

const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];

export class Probe extends DurableObject {
  async fetch(request) {
    const { n, tick, runs, warmup } = await request.json();
    const clock = async () => { await (await fetch(tick)).text(); return Date.now(); };
    const page = buildFeed({ events: n, variant: 'ascii' });
    const chunks = chunk(new TextEncoder().encode(page.text));
    const source = () => ({ url: 'http://memory.invalid/feed/v1', partitionCount: 4, retry: false, fetch: memoryFetch(chunks) });
    let batches = 0;
    let key = 0;
    const cases = {
      ticks: async () => {},
      parse: async () => {
        let events = 0;
        batches = 0;
        for await (const b of openFeed(source().url, source()).batches()) { events += b.events.length; batches++; }
        if (events !== n) throw new Error('parse: ' + events);
      },
      commit: async () => {
        const r = await consume(source(), { store: durableObjectStore(this.ctx.storage), key: 'k' + key++,
          handler: async (batch, txn) => { await txn.put('count', batch.events.length); } });
        if (r.events !== n) throw new Error('commit: ' + r.events);
      },
      example: async () => {
        const r = await consume(source(), { store: durableObjectStore(this.ctx.storage), key: 'k' + key++,
          handler: async (batch, txn) => {
            for (let i = 0; i < batch.events.length; i += 128) {
              const events = batch.events.slice(i, i + 128);
              const keys = events.map((e) => 'event:' + key + ':' + e.data.id);
              const before = await txn.get(keys);
              const writes = {};
              events.forEach((e, j) => { writes[keys[j]] = { seq: e.data.seq, applied: (before.get(keys[j])?.applied ?? 0) + 1 }; });
              await txn.put(writes);
            }
          } });
        if (r.events !== n) throw new Error('example: ' + r.events);
      },
    };
    const out = { n, bytes: page.text.length, batches: 0 };
    for (const [name, run] of Object.entries(cases)) {
      const times = [];
      for (let i = 0; i < warmup + runs; i++) {
        const t0 = await clock();
        await run();
        const t1 = await clock();
        if (i >= warmup) times.push(t1 - t0);
      }
      out[name] = median(times);
    }
    out.batches = batches;
    await this.ctx.storage.deleteAll();
    return Response.json(out);
  }
}
export default { fetch: (request, env) => env.PROBE.get(env.PROBE.idFromName('probe')).fetch(request) };
`;

const tickServer = createServer((req, res) => res.end('t'));
await new Promise((r) => tickServer.listen(0, '127.0.0.1', r));
const tick = `http://127.0.0.1:${tickServer.address().port}/tick`;

const modules = [{ type: 'ESModule', path: path.join(repoRoot, 'tests/examples/page-cpu-worker.js'), contents: WORKER }];
for (const f of ['bench/gen.js', 'bench/workloads.js']) modules.push({ type: 'ESModule', path: path.join(repoRoot, f) });
modules.push(...(await distModules(repoRoot)));
const mf = new Miniflare(workerOptions({ modules, modulesRoot: repoRoot, durableObjects: { PROBE: { className: 'Probe', useSQLite: true } } }));
try {
  console.log('| events per page | body | batches | parse (ms) | + commit per batch (ms) | + example handler (ms) |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  for (const n of sizes) {
    const res = await mf.dispatchFetch('http://probe.test/', { method: 'POST', body: JSON.stringify({ n, tick, runs: 15, warmup: 3 }) });
    if (!res.ok) throw new Error(await res.text());
    const r = await res.json();
    const net = (x) => Math.max(0, x - r.ticks);
    console.log(`| ${n} | ${(r.bytes / 1024).toFixed(0)} KiB | ${r.batches} | ${net(r.parse)} | ${net(r.commit)} | ${net(r.example)} |`);
  }
  console.log(`(tick overhead subtracted; workerd ${JSON.parse((await import('node:fs')).readFileSync(path.join(repoRoot, 'node_modules/workerd/package.json'), 'utf8')).version})`);
} finally {
  await mf.dispose();
  tickServer.close();
}
