// The measured workloads, runtime-neutral: the same module runs in Node (bench/node-runner.mjs), in a headless
// Chromium page and in a workerd Worker (bench/worker.js). It only uses web APIs (fetch, Response, ReadableStream,
// TextDecoder, TextEncoder) and the package's public API (`openFeed`).

import { buildFeed, chunk, PARTITIONS } from './gen.js';

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
  return { events: 0, partitions: 0, x: 0 };
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

export const CASES = [
  { id: 'fp-events', label: 'feedpump events() parsed', kind: 'feedpump', how: 'events', mode: 'parsed' },
  { id: 'fp-batches', label: 'feedpump batches() parsed', kind: 'feedpump', how: 'batches', mode: 'parsed' },
  { id: 'fp-raw-events', label: 'feedpump events() raw', kind: 'feedpump', how: 'events', mode: 'raw' },
  { id: 'fp-raw-batches', label: 'feedpump batches() raw', kind: 'feedpump', how: 'batches', mode: 'raw' },
  { id: 'baseline', label: 'pure-JS baseline', kind: 'baseline' },
];

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};

/**
 * Runs every case for one variant: `warmup` untimed rounds, then `reps` timed rounds (the cases interleaved, the
 * order rotated each round so drift hits all alike). `clock()` is async so workerd can advance its clock with I/O.
 * @returns {Promise<object>} per case: median ms, events/s, MB/s (10^6 bytes), all run times
 */
export async function runVariant(api, { base, variant, events, warmup, reps, clock, log = () => {} }) {
  const feed = buildFeed({ events, variant, withLines: true });
  const bytes = new TextEncoder().encode(feed.text);
  const chunks = chunk(bytes);
  const lines = feed.eventLines;
  const fetchMem = memoryFetch(chunks);
  const loopUrl = `${base}/feed/${variant}`;
  const memUrl = `http://memory.invalid/feed/${variant}`;
  const options = (mode, transport) => ({
    partitionCount: PARTITIONS,
    mode,
    retry: false,
    ...(transport === 'memory' ? { fetch: fetchMem } : {}),
  });

  const jobs = [];
  for (const transport of ['loopback', 'memory']) {
    for (const c of CASES) {
      const url = transport === 'memory' ? memUrl : loopUrl;
      const run =
        c.kind === 'baseline'
          ? (s) => baseline(transport === 'memory' ? fetchMem : (u) => fetch(u), url, s)
          : c.how === 'events'
            ? (s) => feedpumpEvents(api, url, options(c.mode, transport), s)
            : (s) => feedpumpBatches(api, url, options(c.mode, transport), s);
      jobs.push({ key: `${transport}/${c.id}`, transport, case: c, run, times: [] });
    }
  }
  jobs.push({ key: 'floor/json-parse', transport: 'none', case: { id: 'floor', label: 'JSON.parse floor (prebuilt strings)' }, run: async (s) => floor(lines, s), times: [] });

  const once = async (job) => {
    const s = sink();
    const t0 = await clock();
    await job.run(s);
    const t1 = await clock();
    if (s.events !== events) throw new Error(`${variant} ${job.key}: ${s.events} events, expected ${events}`);
    if (chunks[0].byteLength === 0) throw new Error('a 64 KiB chunk was detached; the in-memory transport must copy');
    return { ms: t1 - t0, s };
  };

  const checks = new Map();
  for (let w = 0; w < warmup; w++) {
    for (const job of jobs) {
      const { s } = await once(job);
      checks.set(job.key, s.partitions);
    }
    log(`${variant}: warm-up ${w + 1}/${warmup} done`);
  }
  const sums = new Set([...checks.values()]);
  if (sums.size > 1) throw new Error(`${variant}: the workloads disagree on the events (partition sums ${[...sums]})`);
  for (let r = 0; r < reps; r++) {
    for (let k = 0; k < jobs.length; k++) {
      const job = jobs[(k + r) % jobs.length];
      job.times.push((await once(job)).ms);
    }
    log(`${variant}: round ${r + 1}/${reps} done`);
  }

  const out = {};
  for (const job of jobs) {
    const ms = median(job.times);
    out[job.key] = {
      label: job.case.label,
      transport: job.transport,
      ms,
      eventsPerSec: events / (ms / 1000),
      mbPerSec: bytes.length / 1e6 / (ms / 1000),
      times: job.times.map((t) => Math.round(t * 10) / 10),
    };
  }
  return { variant, events, checkpoints: feed.checkpoints, bytes: bytes.length, nonAscii: bytes.length !== feed.text.length, results: out };
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
