// Bench only: a CPU profile of workloads inside workerd (Miniflare with its inspector, CDP Profiler), for
// bench/NOTES.md's "Shell probe" (it served it). Runs bench/worker.js from ROOT (a tree with dist/ and bench/, by default this
// repo; give one whose wasm kept its names, `wasm-opt -g`, to see Rust function names).
//   node bench/profile/workerd-profile.mjs OUT.cpuprofile CASES-REGEX [ROOT] [VARIANT] [EVENTS] [REPS]
// e.g. CASES-REGEX '^loopback/fp-raw-batches$' profiles only the reader in raw batches() over loopback.
import net from 'node:net';
import path from 'node:path';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Miniflare } from 'miniflare';
import WebSocket from 'ws';
import { startBenchServer } from '../server.mjs';
import { scriptWorker } from '../../tests/workerd/miniflare.mjs';

const here = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const [out, cases, root = here, variant = 'ascii', events = '200000', reps = '3'] = process.argv.slice(2);

const freePort = () =>
  new Promise((resolve) => {
    const s = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });

const server = await startBenchServer({ events: Number(events) });
const inspectorPort = await freePort();
const mf = new Miniflare(scriptWorker(root, path.join(root, 'bench/worker.js'), { inspectorPort }));
try {
  await mf.ready;
  const targets = await (await fetch(`http://127.0.0.1:${inspectorPort}/json`)).json();
  const ws = new WebSocket(targets[0].webSocketDebuggerUrl);
  await new Promise((resolve, reject) => ws.once('open', resolve).once('error', reject));
  let id = 0;
  const pending = new Map();
  ws.on('message', (m) => {
    const msg = JSON.parse(m);
    if (msg.id !== undefined && pending.has(msg.id)) {
      pending.get(msg.id)(msg);
      pending.delete(msg.id);
    }
  });
  const send = (method, params = {}) =>
    new Promise((resolve) => {
      pending.set(++id, resolve);
      ws.send(JSON.stringify({ id, method, params }));
    });
  const job = { base: server.base, events: Number(events), warmup: 1, reps: Number(reps), variant, cases };
  // One untimed pass first (JIT, wasm compile), then the profiled one.
  await (await mf.dispatchFetch('http://bench.test/', { method: 'POST', body: JSON.stringify({ ...job, reps: 0 }) })).text();
  await send('Profiler.enable');
  await send('Profiler.start');
  const res = await mf.dispatchFetch('http://bench.test/', { method: 'POST', body: JSON.stringify({ ...job, warmup: 0 }) });
  const body = await res.json();
  const { result } = await send('Profiler.stop');
  writeFileSync(out, JSON.stringify(result.profile));
  for (const [key, x] of Object.entries(body.results ?? {})) console.log(`${key}: wall ${x.times.join(', ')} ms; CPU ${x.cpu.join(', ')} ms`);
  if (body.workerError) console.log(body.workerError);
  ws.close();
} finally {
  await mf.dispose();
  await server.close();
}
