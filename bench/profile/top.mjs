// Bench only: the top self-time functions of a .cpuprofile (node --cpu-prof), as % of all samples.
//   node bench/profile/top.mjs FILE.cpuprofile [N] [SKIP]
import { readFileSync } from 'node:fs';

const [file, n = '25', skip] = process.argv.slice(2);
const prof = JSON.parse(readFileSync(file, 'utf8'));
// SKIP (optional RegExp): leave out samples with a frame whose function name matches, e.g. the feed's generation
// (`^(buildFeed|runVariant)$`) when a whole bench job was profiled.
const parent = new Map();
for (const node of prof.nodes) for (const c of node.children ?? []) parent.set(c, node.id);
const byId = new Map(prof.nodes.map((node) => [node.id, node]));
const skipped = new Map();
const skipRe = skip ? new RegExp(skip) : undefined;
const isSkipped = (id) => {
  if (!skipRe) return false;
  if (skipped.has(id)) return skipped.get(id);
  const node = byId.get(id);
  const out = skipRe.test(node.callFrame.functionName) || (parent.has(id) && isSkipped(parent.get(id)));
  skipped.set(id, out);
  return out;
};
const dt = new Map();
// Samples are counted, not weighted by their time deltas: on a loaded machine a delta also holds the time the
// process waited for a CPU, which says nothing about the function sampled. One sample ~ the sampling interval.
const interval = prof.samples.length > 1 ? (prof.endTime - prof.startTime) / prof.samples.length : 1000;
for (const id of prof.samples) if (!isSkipped(id)) dt.set(id, (dt.get(id) ?? 0) + interval);
const self = new Map();
let total = 0;
for (const node of prof.nodes) {
  const us = dt.get(node.id) ?? 0;
  if (us === 0) continue;
  const f = node.callFrame;
  const where = f.url ? `${f.url.replace(/^.*\/(dist|bench|node_modules)\//, '$1/')}:${f.lineNumber + 1}` : '';
  const key = `${f.functionName || '(anonymous)'} ${where}`.trim();
  self.set(key, (self.get(key) ?? 0) + us);
  total += us;
}
const idle = self.get('(idle)') ?? 0;
/** Where a function belongs, by its name and file (wasm names need a `wasm-opt -g` build). */
function category(key) {
  if (key.startsWith('(garbage collector)')) return 'GC';
  if (/^(feedpump_core::|memchr::|core\[|<\[u8\]>::is_ascii|alloc::|<alloc::|dlmalloc|__rust|__rdl|__rg|memcpy|memmove|memset)/.test(key)) return 'wasm: core (framing, scanning, batches) and allocator';
  if (/^feedpump::/.test(key)) return 'wasm: Core (the synchronous surface)';
  if (/^wasm-function|wasm:\/\//.test(key) && !/^(wasm-to-js|js-to-wasm)/.test(key)) return 'wasm: other (bindings, unnamed)';
  if (/^(wasm-to-js|js-to-wasm|GenericJSToWasmWrapper)/.test(key) || /dist\/wasm\//.test(key)) return 'wasm-bindgen glue and boundary';
  if (/^(setTimeout|clearTimeout|listOnTimeout|processTimers|Timeout|insert|unenroll|Timer)/.test(key) || /node:timers|internal\/timers/.test(key)) return 'timers';
  if (/addEventListener|removeEventListener|AbortSignal|AbortController|internal\/event_target|internal\/abort_controller/.test(key)) return 'abort signals / event listeners';
  if (/undici|internal\/streams|webstreams|internal\/buffer|net:|stream_base|internal\/errors/.test(key)) return 'fetch / streams (undici, web streams)';
  if (/internal\/encoding/.test(key)) return 'TextDecoder';
  if (/dist\/feed\.js/.test(key)) return 'batch decoding (dist/feed.js, with JSON.parse)';
  if (/dist\/reader\//.test(key)) return 'TS shell (dist/reader/)';
  if (/Microtask|nextTick|task_queues|processTicks|AsyncFunction|Promise/.test(key)) return 'promise / microtask machinery';
  return 'other';
}
const cats = new Map();
for (const [key, us] of self) if (key !== '(idle)') cats.set(category(key), (cats.get(category(key)) ?? 0) + us);
console.log('by area (% of non-idle):', [...cats].sort((a, b) => b[1] - a[1]).map(([k, us]) => `${k} ${((100 * us) / (total - idle)).toFixed(1)}%`).join('; '));
console.log(`total ${(total / 1000).toFixed(0)} ms sampled, of which idle ${(idle / 1000).toFixed(0)} ms; % of non-idle time:`);
for (const [key, us] of [...self].filter(([k]) => k !== '(idle)').sort((a, b) => b[1] - a[1]).slice(0, Number(n))) {
  console.log(`${((100 * us) / (total - idle)).toFixed(1).padStart(5)}%  ${(us / 1000).toFixed(0).padStart(6)} ms  ${key}`);
}
