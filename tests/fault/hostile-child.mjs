// One hostile-reader scenario in its own process, so that an uncaught exception or a wasm trap shows as an exit code
// instead of taking the test runner down. Usage: node hostile-child.mjs <scenario> <base URL>. Prints one JSON line
// `{ "outcome": ... }` and exits 0 when the scenario itself ran to its end.
import { Readable } from 'node:stream';
import * as api from '../../dist/entrypoints/node.js';

const [scenario, base] = process.argv.slice(2);
const warnings = [];
process.on('warning', (w) => warnings.push(`${w.name}: ${w.message}`));

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const EVENTS = '{"partition":0,"data":1}\n{"partition":0,"cursor":"1"}\n';

/** Iterates a feed to its end; the error (if any) becomes part of the outcome. */
async function drain(feed) {
  const events = [];
  try {
    for await (const ev of feed) events.push(ev.data);
    return { ended: 'cleanly', events };
  } catch (e) {
    return { ended: 'error', events, name: e?.name, code: e?.code, message: String(e?.message ?? e) };
  }
}

/** A Response-like whose `body` is `body` (a custom `fetch` may return anything with a status and a body). */
function responseLike(body) {
  return { ok: true, status: 200, statusText: 'OK', headers: new Headers(), body };
}

const scenarios = {
  // 6: close() from inside every user callback.
  async 'close-in-onRetry'() {
    const feed = api.openFeed(`${base}/busy`, {
      partitionCount: 1,
      retry: { initialMs: 1, maxMs: 2, maxAttempts: 20 },
      onRetry: () => feed.close(),
    });
    return drain(feed);
  },
  async 'close-in-requestHeaders'() {
    const feed = api.openFeed(`${base}/events`, {
      partitionCount: 1,
      requestHeaders: () => {
        feed.close();
        return { 'x-a': '1' };
      },
    });
    return drain(feed);
  },
  async 'close-in-fetch'() {
    const feed = api.openFeed(`${base}/events`, {
      partitionCount: 1,
      fetch: (request) => {
        feed.close();
        return fetch(request);
      },
    });
    return drain(feed);
  },
  // The request's own signal follows the feed's: a listener on it runs while the feed aborts its request.
  async 'close-in-request-signal-listener'() {
    const feed = api.openFeed(`${base}/events`, {
      partitionCount: 1,
      fetch: (request) => {
        request.signal.addEventListener('abort', () => feed.close());
        return new Promise(() => {}); // never answers: only the abort ends it
      },
    });
    const done = drain(feed);
    await sleep(100);
    feed.close();
    return done;
  },
  // The caller's signal fires from inside onRetry, and its listener closes the feed.
  async 'close-in-signal-listener'() {
    const ac = new AbortController();
    ac.signal.addEventListener('abort', () => feed.close());
    const feed = api.openFeed(`${base}/busy`, {
      partitionCount: 1,
      signal: ac.signal,
      retry: { initialMs: 1, maxMs: 2, maxAttempts: 20 },
      onRetry: () => ac.abort(),
    });
    return drain(feed);
  },
  // 5: bodies that are not web ReadableStreams.
  async 'node-readable-body'() {
    const feed = api.openFeed(`${base}/events`, {
      partitionCount: 1,
      fetch: async (request) => {
        const first = new URL(request.url).searchParams.get('cursor0') === '_first';
        return responseLike(Readable.from(first ? [Buffer.from(EVENTS.slice(0, 10)), Buffer.from(EVENTS.slice(10))] : []));
      },
    });
    return drain(feed);
  },
  async 'string-body'() {
    const feed = api.openFeed(`${base}/events`, { partitionCount: 1, fetch: async () => responseLike(EVENTS) });
    return drain(feed);
  },
  async 'locked-body'() {
    const feed = api.openFeed(`${base}/events`, {
      partitionCount: 1,
      fetch: async (request) => {
        const response = await fetch(request);
        response.body.getReader();
        return response;
      },
    });
    return drain(feed);
  },
  async 'read-body'() {
    const feed = api.openFeed(`${base}/events`, {
      partitionCount: 1,
      fetch: async (request) => {
        const response = await fetch(request);
        await response.text();
        return response;
      },
    });
    return drain(feed);
  },
  // A body whose reader throws on read() and whose chunks are not bytes.
  async 'throwing-reader'() {
    const body = { getReader: () => ({ read: () => { throw new TypeError('read exploded'); }, cancel: () => { throw new TypeError('cancel exploded'); } }) };
    const feed = api.openFeed(`${base}/events`, { partitionCount: 1, retry: false, fetch: async () => responseLike(body) });
    return drain(feed);
  },
  async 'non-byte-chunks'() {
    const body = new ReadableStream({ start(c) { c.enqueue('not bytes'); c.close(); } });
    const feed = api.openFeed(`${base}/events`, { partitionCount: 1, retry: false, fetch: async () => responseLike(body) });
    return drain(feed);
  },
  async 'hostile-response'() {
    const response = { get status() { throw new TypeError('status exploded'); } };
    const feed = api.openFeed(`${base}/events`, { partitionCount: 1, retry: false, fetch: async () => response });
    return drain(feed);
  },
  // A promise that makes `Promise.resolve(p)` throw (its `constructor` getter throws).
  async 'throwing-promise'() {
    const fetchLike = () => {
      const p = Promise.resolve(responseLike(null));
      Object.defineProperty(p, 'constructor', { get() { throw new TypeError('constructor exploded'); } });
      return p;
    };
    const feed = api.openFeed(`${base}/events`, { partitionCount: 1, retry: false, fetch: fetchLike });
    return drain(feed);
  },
  // 14: one reader, 2,000 pages.
  // The caller's fetch keeps every request (a log, say), so nothing a request holds on to is collected.
  async 'pages'() {
    const kept = [];
    const feed = api.openFeed(`${base}/pages`, {
      partitionCount: 1,
      fetch: (request) => {
        kept.push(request);
        return fetch(request);
      },
    });
    const out = await drain(feed);
    return { ...out, events: out.events.length };
  },
  // A body whose every read at once gives an empty chunk (no bytes, no end): the reads must not starve the timers
  // (a close() from one) and, being no progress, must not spare the body the idle watchdog.
  async 'empty-chunks-watchdog'() {
    const feed = api.openFeed(`${base}/events`, { partitionCount: 1, idleTimeoutMs: 300, retry: { maxAttempts: 0 }, fetch: async () => responseLike(emptyChunks()) });
    return { ...(await drain(feed)), cancelled };
  },
  async 'empty-chunks-close'() {
    const feed = api.openFeed(`${base}/events`, { partitionCount: 1, fetch: async () => responseLike(emptyChunks()) });
    setTimeout(() => feed.close(), 100);
    return { ...(await drain(feed)), cancelled };
  },
  // Bodies whose reads give bytes at once for ever (blank lines, or checkpoints: no event for events() to hand out):
  // no read waits for a macrotask, but the loop must still let timers run (a close() from one).
  async 'endless-blank-lines'() {
    const chunk = new TextEncoder().encode('\n'.repeat(1000));
    return endless(chunk);
  },
  async 'endless-checkpoints'() {
    const chunk = new TextEncoder().encode('{"partition":0,"cursor":"1"}\n'.repeat(100));
    return endless(chunk);
  },
  // Chunks whose `length` lies (wasm-bindgen reads it to size the copy into wasm memory): a Proxy of a Uint8Array
  // (refused: not a Uint8Array), and a real Uint8Array of a subclass, or with an own property, whose `length` says 0
  // and then 2^20 (read as the bytes it really has). A second feed then reads the same wasm instance.
  async 'lying-chunks'() {
    const bytes = () => new TextEncoder().encode(EVENTS);
    const liar = () => {
      let n = 0;
      return { get: () => (n++ === 0 ? 0 : 2 ** 20), configurable: true };
    };
    class Liar extends Uint8Array {}
    const outcome = {};
    for (const [name, make] of [
      ['proxy', () => new Proxy(bytes(), { get: (t, k) => (k === 'length' ? 2 ** 31 : typeof t[k] === 'function' ? t[k].bind(t) : t[k]) })],
      ['subclass', () => { const c = new Liar(bytes()); Object.defineProperty(Liar.prototype, 'length', liar()); return c; }],
      ['own-property', () => Object.defineProperty(bytes(), 'length', liar())],
    ]) {
      const feed = api.openFeed(`${base}/events`, { partitionCount: 1, retry: false, fetch: async (request) => {
        const first = new URL(request.url).searchParams.get('cursor0') === '_first';
        let done = !first;
        return responseLike({ getReader: () => ({ read: async () => (done ? { done } : ((done = true), { done: false, value: make() })) }) });
      } });
      const out = await drain(feed);
      outcome[name] = out.ended === 'error' ? out.code : out.events;
    }
    outcome.after = (await drain(api.openFeed(`${base}/events`, { partitionCount: 1 }))).events;
    return outcome;
  },
  // 6: an async onRetry that rejects, on the v2 discovery's retries (a 503 each time): not an unhandled rejection.
  async 'v2-async-onRetry-rejects'() {
    const feed = api.openFeed(`${base}/busy`, {
      protocol: 'v2',
      retry: { initialMs: 1, maxMs: 2, maxAttempts: 2 },
      onRetry: async () => {
        retries++;
        throw new Error('the log sink is down');
      },
    });
    return drain(feed);
  },
};
let retries = 0;
/** Bodies of empty-chunks scenarios cancelled. */
let cancelled = 0;

/** Reads a feed whose body gives `chunk` at once for ever, closed from a timer after 100 ms. */
async function endless(chunk) {
  const body = { getReader: () => ({ read: async () => ({ done: false, value: chunk }), cancel: () => { cancelled++; } }) };
  const feed = api.openFeed(`${base}/events`, { partitionCount: 1, fetch: async () => responseLike(body) });
  setTimeout(() => feed.close(), 100);
  return { ...(await drain(feed)), cancelled };
}

/** A body whose reads give an empty chunk at once, for ever. */
function emptyChunks() {
  return { getReader: () => ({ read: async () => ({ done: false, value: new Uint8Array(0) }), cancel: () => { cancelled++; } }) };
}

const outcome = await scenarios[scenario]();
await sleep(300); // anything the reader still does in the background shows up now
console.log(JSON.stringify({ outcome, warnings, retries }));
