// The measured workloads, runtime-neutral: the same module runs in Node (bench/node-runner.mjs), in a headless
// Chromium page and in a workerd Worker (bench/worker.js). It only uses web APIs (fetch, Response, ReadableStream,
// TextDecoder, TextEncoder) and the package's public API (`openFeed`).

import { buildFeed, chunk, FILTER_TYPE, PARTITIONS } from './gen.js';

// ---------------------------------------------------------------------------------------------------------------
// The pure-JS baseline: a plain ZeroEventHub line parser written the way a good JS developer would. A streaming
// TextDecoder per chunk, keep the partial line, split on '\n', JSON.parse per line, an async generator yielding one
// event per line. Checkpoint lines update the cursors. It does NOT hold events back until their partition's checkpoint
// (no committable batches), nor report error locations; feedpump does both.
// ---------------------------------------------------------------------------------------------------------------

/** Events of one NDJSON body; checkpoint lines update `cursors` in place. */
export async function* baselineLines(body, cursors) {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let rest = '';
  try {
    for (;;) {
      const { done, value } = await reader.read();
      const text = done ? rest + decoder.decode() : rest + decoder.decode(value, { stream: true });
      let start = 0;
      let nl;
      while ((nl = text.indexOf('\n', start)) !== -1) {
        if (nl > start) {
          const line = JSON.parse(text.slice(start, nl));
          if (line.cursor !== undefined) cursors[line.partition] = line.cursor;
          else yield line;
        }
        start = nl + 1;
      }
      rest = start === 0 ? text : text.slice(start);
      if (done) break;
    }
    if (rest.trim() !== '') throw new Error('baseline: body ended inside a line');
  } finally {
    reader.releaseLock();
  }
}

/** The baseline client: pages from `_first` until a page brings no events, one event per `yield`. */
export async function* baselineFeed(fetchFn, url, partitionCount = PARTITIONS) {
  const cursors = new Array(partitionCount).fill('_first');
  for (;;) {
    const query = cursors.map((c, p) => `cursor${p}=${encodeURIComponent(c)}`).join('&');
    const res = await fetchFn(`${url}?n=${partitionCount}&${query}`);
    if (!res.ok) throw new Error(`baseline: HTTP ${res.status}`);
    let n = 0;
    for await (const event of baselineLines(res.body, cursors)) {
      n++;
      yield event;
    }
    if (n === 0) return;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// The in-memory transport: a `fetch` answering page 1 (every cursor `_first`) with the whole dataset as a
// ReadableStream of 64 KiB chunks, and any later page with an empty body.
// ---------------------------------------------------------------------------------------------------------------

export const isFirstPage = (url) => !/cursor\d+=(?!_first(&|$))/.test(url.slice(url.indexOf('?')));

export function memoryFetch(chunks) {
  return async (input) => {
    const url = typeof input === 'string' ? input : input.url;
    if (!isFirstPage(url)) return new Response('', { headers: { 'content-type': 'application/x-ndjson' } });
    let i = 0;
    const body = new ReadableStream({
      pull(controller) {
        if (i < chunks.length) controller.enqueue(chunks[i++]);
        else controller.close();
      },
    });
    return new Response(body, { headers: { 'content-type': 'application/x-ndjson' } });
  };
}

// ---------------------------------------------------------------------------------------------------------------
// One run of each workload. Every loop body does the same small amount of work per event, so nothing is optimised
// away: count, sum the partitions, and read one field of `data` (parsed) or the length of `raw` (raw mode).
// ---------------------------------------------------------------------------------------------------------------

function sink() {
  return { events: 0, partitions: 0, x: 0, bytes: 0, reads: 0 };
}

async function feedpumpEvents(api, url, options, s) {
  const feed = api.openFeed(url, options);
  if (options.mode === 'raw') {
    for await (const ev of feed.events()) {
      s.events++;
      s.partitions += ev.partition;
      s.x += ev.raw.length;
    }
  } else {
    for await (const ev of feed.events()) {
      s.events++;
      s.partitions += ev.partition;
      s.x ^= ev.data.seq;
    }
  }
}

async function feedpumpBatches(api, url, options, s) {
  const feed = api.openFeed(url, options);
  const raw = options.mode === 'raw';
  for await (const batch of feed.batches()) {
    const { events } = batch;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i];
      s.events++;
      s.partitions += ev.partition;
      if (raw) s.x += ev.raw.length;
      else s.x ^= ev.data.seq;
    }
  }
}

/** The plain loop filtering the way one would by hand: parse every line, then drop the types it does not keep. */
async function baselineFiltered(fetchFn, url, s) {
  for await (const ev of baselineFeed(fetchFn, url)) {
    if (ev.data.type !== FILTER_TYPE) continue;
    s.events++;
    s.partitions += ev.partition;
    s.x ^= ev.data.seq;
  }
}

/**
 * The transport floor: the same two requests (page 1, then the empty page 2), each body read chunk by chunk to its
 * end, counting bytes and nothing else (no decoding, framing or parsing). No reader of the body can be faster.
 * `byob`: the bytes of a BYOB reader's buffer, for the runtimes where feedpump reads a byte stream that way (workerd
 * and browsers: js/src/entrypoints/workerd.ts, web.ts), so that the floor reads as feedpump does; else the default
 * reader.
 */
export async function transportFloor(fetchFn, url, s, byob) {
  for (const cursor of ['_first', 'end']) {
    const query = Array.from({ length: PARTITIONS }, (_, p) => `cursor${p}=${cursor}`).join('&');
    const res = await fetchFn(`${url}?n=${PARTITIONS}&${query}`);
    if (!res.ok) throw new Error(`transport floor: HTTP ${res.status}`);
    let reader;
    try {
      reader = byob ? res.body.getReader({ mode: 'byob' }) : undefined;
    } catch {
      // not a byte stream: as feedpump does, its default reader
    }
    let buffer = reader ? new ArrayBuffer(byob) : undefined;
    reader ??= res.body.getReader();
    for (;;) {
      const { done, value } = await reader.read(buffer && new Uint8Array(buffer));
      if (done) break;
      s.bytes += value.byteLength;
      s.reads++;
      if (buffer) buffer = value.buffer;
    }
  }
}

async function baseline(fetchFn, url, s) {
  for await (const ev of baselineFeed(fetchFn, url)) {
    s.events++;
    s.partitions += ev.partition;
    s.x ^= ev.data.seq;
  }
}

/** The JSON.parse floor: the same event lines, parsed from prebuilt strings (no I/O, no decoding, no framing). */
function floor(lines, s) {
  for (let i = 0; i < lines.length; i++) {
    const ev = JSON.parse(lines[i]);
    s.events++;
    s.partitions += ev.partition;
    s.x ^= ev.data.seq;
  }
}

/**
 * The cases run per transport. `base`: the case its ratio is taken against (the plain loop, or the plain loop that
 * filters); `group`: cases of one group must agree on the events they saw (their partition sums).
 */
export const CASES = [
  { id: 'fp-events', label: 'feedpump events() parsed', kind: 'feedpump', how: 'events', mode: 'parsed', base: 'baseline', group: 'all' },
  { id: 'fp-batches', label: 'feedpump batches() parsed', kind: 'feedpump', how: 'batches', mode: 'parsed', base: 'baseline', group: 'all' },
  { id: 'fp-raw-events', label: 'feedpump events() raw', kind: 'feedpump', how: 'events', mode: 'raw', base: 'baseline', group: 'all' },
  { id: 'fp-raw-batches', label: 'feedpump batches() raw', kind: 'feedpump', how: 'batches', mode: 'raw', base: 'baseline', group: 'all' },
  { id: 'baseline', label: 'pure-JS baseline', kind: 'baseline', group: 'all' },
  { id: 'fp-filter-events', label: 'feedpump events() parsed, type filter (10% kept)', kind: 'feedpump', how: 'events', mode: 'parsed', filter: true, base: 'baseline-filter', group: 'filtered' },
  { id: 'fp-filter-batches', label: 'feedpump batches() parsed, type filter (10% kept)', kind: 'feedpump', how: 'batches', mode: 'parsed', filter: true, base: 'baseline-filter', group: 'filtered' },
  { id: 'baseline-filter', label: 'pure-JS baseline, parse then drop (10% kept)', kind: 'baseline', filter: true, group: 'filtered' },
  { id: 'transport', label: 'transport floor (read chunks, count bytes)', kind: 'transport', group: 'bytes' },
];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

const spread = (xs) => (xs.length ? [Math.min(...xs), Math.max(...xs)] : [0, 0]);

/**
 * Runs every case for one variant: `warmup` untimed rounds, then `reps` timed rounds (the cases interleaved, the
 * order rotated each round so drift hits all alike). `clock()` is async so workerd can advance its clock with I/O.
 * `cpu()` (optional, async) gives the CPU time the runtime has used so far in ms (Node: `process.cpuUsage()`; workerd:
 * its process, read by the loopback server; Chromium: the renderer's main-thread task time): each run's CPU time is
 * the difference around it.
 * `byob` (optional): see transportFloor.
 * `cases` (optional): a RegExp source; only the case keys (`loopback/fp-events`, `floor/json-parse`, …) it matches run.
 * @returns {Promise<object>} per case: median ms, events/s, MB/s (10^6 bytes), all run times, CPU ms per run
 */
export async function runVariant(api, { base, variant, events, warmup, reps, clock, cpu, cases, byob, log = () => {} }) {
  const feed = buildFeed({ events, variant, withLines: true });
  const bytes = new TextEncoder().encode(feed.text);
  const chunks = chunk(bytes);
  const lines = feed.eventLines;
  const fetchMem = memoryFetch(chunks);
  const loopUrl = `${base}/feed/${variant}`;
  const memUrl = `http://memory.invalid/feed/${variant}`;
  const options = (c, transport) => ({
    partitionCount: PARTITIONS,
    mode: c.mode,
    retry: false,
    ...(c.filter ? { filter: { include: [FILTER_TYPE] } } : {}),
    ...(transport === 'memory' ? { fetch: fetchMem } : {}),
  });
  const only = cases ? new RegExp(String(cases)) : undefined;

  const jobs = [];
  for (const transport of ['loopback', 'memory']) {
    const fetchFn = transport === 'memory' ? fetchMem : (u) => fetch(u);
    const url = transport === 'memory' ? memUrl : loopUrl;
    for (const c of CASES) {
      let run;
      if (c.kind === 'baseline') run = c.filter ? (s) => baselineFiltered(fetchFn, url, s) : (s) => baseline(fetchFn, url, s);
      else if (c.kind === 'transport') run = (s) => transportFloor(fetchFn, url, s, byob);
      else {
        // The filtered cases are parsed mode with `filter` set (options()): the same loop bodies.
        const fn = c.how === 'events' ? feedpumpEvents : feedpumpBatches;
        run = (s) => fn(api, url, options(c, transport), s);
      }
      const expect = c.filter ? feed.kept : events;
      jobs.push({ key: `${transport}/${c.id}`, transport, case: c, run, expect, times: [], cpu: [] });
    }
  }
  jobs.push({ key: 'floor/json-parse', transport: 'none', case: { id: 'floor', label: 'JSON.parse floor (prebuilt strings)', group: 'all' }, run: async (s) => floor(lines, s), expect: events, times: [], cpu: [] });
  const measured = only ? jobs.filter((j) => only.test(j.key)) : jobs;

  const once = async (job) => {
    const s = sink();
    const c0 = cpu ? await cpu() : undefined;
    const t0 = await clock();
    await job.run(s);
    const t1 = await clock();
    const c1 = cpu ? await cpu() : undefined;
    if (job.case.kind === 'transport') {
      if (s.bytes !== bytes.length) throw new Error(`${variant} ${job.key}: ${s.bytes} bytes, expected ${bytes.length}`);
    } else if (s.events !== job.expect) {
      throw new Error(`${variant} ${job.key}: ${s.events} events, expected ${job.expect}`);
    }
    if (chunks[0].byteLength === 0) throw new Error('a 64 KiB chunk was detached; the in-memory transport must copy');
    return { ms: t1 - t0, cpuMs: c0 === undefined || c1 === undefined ? undefined : c1 - c0, s };
  };

  const checks = new Map();
  for (let w = 0; w < warmup; w++) {
    for (const job of measured) {
      const { s } = await once(job);
      if (job.case.group !== 'bytes') checks.set(job.key, [job.case.group, s.partitions]);
    }
    log(`${variant}: warm-up ${w + 1}/${warmup} done`);
  }
  for (const group of ['all', 'filtered']) {
    const sums = new Set([...checks.values()].filter(([g]) => g === group).map(([, x]) => x));
    if (sums.size > 1) throw new Error(`${variant}: the ${group} workloads disagree on the events (partition sums ${[...sums]})`);
  }
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < measured.length; k++) {
      const job = measured[(k + r) % measured.length];
      const { ms, cpuMs, s } = await once(job);
      job.times.push(ms);
      if (s.reads) job.reads = s.reads;
      if (cpuMs !== undefined) job.cpu.push(cpuMs);
    }
    log(`${variant}: round ${r + 1}/${reps} done`);
  }

  const out = {};
  for (const job of measured) {
    const ms = median(job.times);
    out[job.key] = {
      label: job.case.label,
      transport: job.transport,
      id: job.case.id,
      base: job.case.base,
      events: job.expect,
      ms,
      eventsPerSec: events / (ms / 1000),
      mbPerSec: bytes.length / 1e6 / (ms / 1000),
      times: job.times.map((t) => Math.round(t * 10) / 10),
      spread: spread(job.times),
      cpuMs: job.cpu.length ? median(job.cpu) : undefined,
      cpu: job.cpu.map((t) => Math.round(t * 10) / 10),
      ...(job.reads ? { reads: job.reads } : {}),
    };
  }
  return { variant, events, kept: feed.kept, checkpoints: feed.checkpoints, bytes: bytes.length, nonAscii: bytes.length !== feed.text.length, results: out };
}

/** Every variant in turn. */
export async function runSuite(api, opts) {
  const variants = [];
  for (const variant of opts.variants) variants.push(await runVariant(api, { ...opts, variant }));
  return variants;
}

// ---------------------------------------------------------------------------------------------------------------
// Live latency: the server (/live) writes events at a fixed rate on an open chunked page, each stamped with
// `performance.timeOrigin + performance.now()` at its write; the loop body subtracts that from its own clock.
// ---------------------------------------------------------------------------------------------------------------

const pct = (sorted, q) => sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];

/** One latency run. `config`: { kind: 'feedpump', maxBatchDelayMs? } or { kind: 'baseline' }. */
export async function runLatency(api, { base, rate, count, skip = 50, config }) {
  const url = `${base}/live/${rate}/${count}`;
  const now = () => performance.timeOrigin + performance.now();
  const lat = [];
  if (config.kind === 'baseline') {
    for await (const ev of baselineFeed((u) => fetch(u), url)) lat.push(now() - ev.data.t);
  } else {
    const options = { partitionCount: PARTITIONS, retry: false };
    if (config.maxBatchDelayMs !== undefined) options.maxBatchDelayMs = config.maxBatchDelayMs;
    for await (const ev of api.openFeed(url, options).events()) lat.push(now() - ev.data.t);
  }
  if (lat.length !== count) throw new Error(`latency: ${lat.length} events, expected ${count}`);
  const s = lat.slice(skip).sort((a, b) => a - b);
  return { config, rate, count, measured: s.length, p50: pct(s, 0.5), p90: pct(s, 0.9), p99: pct(s, 0.99), max: s[s.length - 1] };
}
