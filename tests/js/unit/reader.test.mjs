// The TypeScript shell (js/src/reader/) over the wasm Core, against an in-page scripted `fetch` (tests/js/feed_server.js):
// what the Rust shell's wasm-bindgen suite checked (tests/common, moved here when the shell became TypeScript), and
// the shell's own mechanisms: the lazily re-armed idle watchdog, a read in flight when the flush timer fired, one read
// at a time. The real servers are exercised by tests/fault, tests/interop and tests/v2_server.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../../dist/entrypoints/node.js'; // loads the wasm
import { parseBatch } from '../../../dist/decode.js';
import { FeedReader } from '../../../dist/reader/reader.js';
import { delay, scriptedFetch } from '../feed_server.js';

const enc = new TextEncoder();

function reader(pages, options, url = 'http://127.0.0.1:9/feed/v1?key=k') {
  const { fetch, log } = scriptedFetch(pages);
  return { r: new FeedReader(url, { ...options, fetch }), log };
}

/** Reads a reader to its end: `{ events, checkpoints, error }` (error `null` when it ended caught up). */
async function run(r) {
  const events = [];
  const checkpoints = [];
  let error = null;
  for (;;) {
    let b;
    try {
      b = await r.next();
    } catch (e) {
      error = e;
      break;
    }
    if (b === undefined) break;
    events.push(...parseBatch(b).events);
    checkpoints.push(...b.checkpoints);
  }
  return { events, checkpoints, error };
}

test('pages split inside UTF-8 are followed to caught-up', async () => {
  const pages = [
    { chunks: [[123, 34, 112, 97, 114, 116, 105, 116, 105, 111, 110, 34, 58, 48, 44, 34, 100, 97, 116, 97, 34, 58, 34, 195],
      [166, 240, 159], [152, 128, 34, 125, 10], '{"partition":1,"data":2}\n{"partition":0,"cursor":"c0"}\n{"partition":1,"da', 'ta":3}\n'] },
    { chunks: ['{"partition":1,"data":2}\r\n{"partition":1,"data":3}\n{"cursor": "c1", "partition": 1}\n'] },
    { chunks: [] },
  ];
  const { r, log } = reader(pages, { partitionCount: 2, cursors: ['_first', '_first'], pageSizeHint: 50 });
  const out = await run(r);
  assert.equal(out.error, null);
  assert.deepEqual(out.events, [{ partition: 0, data: 'æ😀' }, { partition: 1, data: 2 }, { partition: 1, data: 3 }]);
  assert.deepEqual(out.checkpoints, [{ partition: 0, cursor: 'c0' }, { partition: 1, cursor: 'c1' }]);
  assert.deepEqual(log.urls, [
    'http://127.0.0.1:9/feed/v1?key=k&n=2&cursor0=_first&cursor1=_first&pagesizehint=50',
    'http://127.0.0.1:9/feed/v1?key=k&n=2&cursor0=c0&cursor1=_first&pagesizehint=50',
    'http://127.0.0.1:9/feed/v1?key=k&n=2&cursor0=c0&cursor1=c1&pagesizehint=50',
  ]);
});

test('a cut connection is truncated-body after the released events, and the error is sticky', async () => {
  const pages = [{ chunks: ['{"partition":0,"data":1}\n{"partition":0,"cursor":"a"}\n{"partition":0,"data":2}\n{"parti'], end: 'cut' }];
  const { r } = reader(pages, { partitionCount: 1, retry: false });
  const out = await run(r);
  assert.deepEqual(out.events, [{ partition: 0, data: 1 }]);
  assert.deepEqual(out.checkpoints, [{ partition: 0, cursor: 'a' }]);
  assert.equal(out.error.code, 'truncated-body');
  assert.equal(out.error.name, 'FeedError');
  assert.equal(out.error.offset, 86);
  await assert.rejects(r.next(), (e) => e === out.error);
});

test('a partial last line is truncated-body, not a short page', async () => {
  const pages = [{ chunks: ['{"partition":0,"data":1}\n{"partition":0,"cursor":"a"}\n{"partition":0,"data":2}'] }];
  const { r } = reader(pages, { partitionCount: 1, retry: false });
  const out = await run(r);
  assert.equal(out.error.code, 'truncated-body');
  assert.equal(out.error.line, 3);
  assert.deepEqual(out.checkpoints, [{ partition: 0, cursor: 'a' }]);
});

test('a non-2xx status is http-status with its status text and a bounded snippet; the rest is cancelled', async () => {
  const pages = [{ status: 503, statusText: 'Service Unavailable', chunks: ['x'.repeat(3000)] }];
  const { r, log } = reader(pages, { partitionCount: 4, retry: false });
  const { error } = await run(r);
  assert.equal(error.code, 'http-status');
  assert.equal(error.status, 503);
  assert.equal(error.bodySnippet.length, 512);
  assert.match(error.message, /503 Service Unavailable/);
  await delay(0);
  assert.equal(log.cancelled, 1);
});

test('protocol errors name the line, offset, partition and page', async () => {
  const pages = [{ chunks: ['{"partition":0,"data":1}\n{"partition":1,"cursor":5}\n'] }];
  const { r } = reader(pages, { partitionCount: 2 });
  const { error } = await run(r);
  assert.equal(error.code, 'bad-cursor');
  assert.equal(error.line, 2);
  assert.equal(error.offset, 25);
  assert.equal(error.partition, 1);
  assert.equal(error.page, 1);
});

test('the request-headers hook runs for every request, refreshes once on 401 and stays out of errors', async () => {
  const pages = [
    { chunks: ['{"partition":0,"data":1}\n{"partition":0,"cursor":"a"}\n'] },
    { status: 401, chunks: ['token expired'] },
    { chunks: ['{"partition":0,"data":2}\n{"partition":0,"cursor":"b"}\n'] },
    { status: 401, chunks: ['denied'] },
  ];
  let n = 0;
  const requestHeaders = async ({ refresh }) => new Headers({ authorization: `Bearer secret-${++n}${refresh ? '-refreshed' : ''}` });
  const { r, log } = reader(pages, { partitionCount: 1, requestHeaders });
  const out = await run(r);
  assert.deepEqual(log.headers, [
    { authorization: 'Bearer secret-1' }, { authorization: 'Bearer secret-2' },
    { authorization: 'Bearer secret-3-refreshed' }, { authorization: 'Bearer secret-4' },
    { authorization: 'Bearer secret-5-refreshed' },
  ]);
  assert.deepEqual(out.events, [{ partition: 0, data: 1 }, { partition: 0, data: 2 }]);
  assert.equal(out.error.status, 401, 'a second 401 is final');
  assert.ok(!JSON.stringify(out.error).includes('secret') && !out.error.message.includes('secret'));
  assert.match(out.error.message, /401/);
});

test('failures are retried from the last checkpoint without loss or duplicates; onRetry is told each', async () => {
  const pages = [
    { chunks: ['{"partition":0,"data":1}\n{"partition":0,"cursor":"a"}\n{"partition":0,"data":2}\n{"par'], end: 'cut' },
    { status: 503, chunks: ['busy'] },
    { status: 429, chunks: [] },
    { chunks: ['{"partition":0,"data":2}\n'], end: 'stall' },
    { chunks: ['{"partition":0,"data":2}\n{"partition":0,"data":3}\n{"partition":0,"cursor":"b"}\n'] },
    { chunks: [] },
  ];
  const retries = [];
  const onRetry = (info) => {
    retries.push([info.error.code, info.attempt, info.delayMs <= 20]);
    // Neither a throw nor a rejected promise of theirs stops the feed or goes unhandled.
    if (info.attempt === 1) throw new Error('theirs');
    return Promise.reject(new Error('theirs too'));
  };
  const { r, log } = reader(pages, { partitionCount: 1, idleTimeoutMs: 50, retry: { initialMs: 10, maxMs: 20, maxAttempts: 5 }, onRetry });
  const out = await run(r);
  assert.equal(out.error, null);
  assert.deepEqual(out.events, [{ partition: 0, data: 1 }, { partition: 0, data: 2 }, { partition: 0, data: 3 }]);
  assert.deepEqual(retries, [['truncated-body', 1, true], ['http-status', 2, true], ['http-status', 3, true], ['stalled-body', 4, true]]);
  assert.equal(log.urls.filter((u) => u.includes('cursor0=a')).length, 4, 'every retry resumes from the last checkpoint');
  await delay(0);
  assert.equal(log.cancelled, 1, 'the stalled body was cancelled');
});

test('Retry-After is honoured and client errors are not retried', async () => {
  const pages = [{ status: 400, chunks: ['{"detail":"Partition count doesn\'t match as expected"}'] }];
  const retries = [];
  const { r, log } = reader(pages, { partitionCount: 3, onRetry: (i) => retries.push(i.attempt) });
  const { error } = await run(r);
  assert.equal(error.status, 400);
  assert.equal(retries.length, 0);
  assert.equal(log.urls.length, 1);
});

test('an abort signal stops a stalled body, and its listener is removed on release', async () => {
  const controller = new AbortController();
  let listeners = 0;
  const signal = controller.signal;
  const add = signal.addEventListener.bind(signal);
  const remove = signal.removeEventListener.bind(signal);
  signal.addEventListener = (...a) => { listeners++; add(...a); };
  signal.removeEventListener = (...a) => { listeners--; remove(...a); };
  const { r, log } = reader([{ chunks: ['{"partition":0,"data":1}\n'], end: 'stall' }], { partitionCount: 1, signal });
  const pending = r.next();
  await delay(20);
  controller.abort(new Error('stop'));
  await assert.rejects(pending, (e) => e.code === 'aborted' && e.cause.message === 'stop');
  assert.equal(listeners, 0, "the reader's listener on the caller's signal is removed");
  await delay(0);
  assert.equal(log.cancelled, 1);
});

test('close() cancels the body and ends the reader; it is idempotent', async () => {
  let chunk = '';
  for (let i = 0; i < 1200; i++) chunk += `{"partition":0,"data":{"i":${i},"pad":"${'p'.repeat(40)}"}}\n{"partition":0,"cursor":"${i}"}\n`;
  const { r, log } = reader([{ chunks: [chunk], end: 'stall' }], { partitionCount: 1 });
  const first = await r.next();
  assert.ok(first.text.length >= 64 * 1024);
  r.close();
  r.close();
  await delay(0);
  assert.equal(log.cancelled, 1);
  assert.equal(await r.next(), undefined);
  r.free();
  r.free();
});

test('close() from onRetry, from the requestHeaders hook, from fetch: the pending next() gives undefined', async () => {
  const busy = [{ status: 503, headers: { 'retry-after': '0' }, chunks: ['busy'] }];
  for (const where of ['onRetry', 'requestHeaders', 'fetch']) {
    const { fetch } = scriptedFetch(busy);
    let r;
    const options = { partitionCount: 1, retry: { initialMs: 1, maxMs: 1 } };
    if (where === 'onRetry') options.onRetry = () => r.close();
    if (where === 'requestHeaders') options.requestHeaders = async () => { r.close(); return undefined; };
    options.fetch = where === 'fetch' ? (req, page) => { r.close(); return fetch(req, page); } : fetch;
    r = new FeedReader('http://127.0.0.1:9/feed/v1', options);
    assert.equal(await r.next(), undefined, where);
    assert.equal(await r.next(), undefined, where);
    r.free();
  }
});

test('close() from abort listeners (on the caller’s signal, on the request’s) is safe; the pending next() ends', async () => {
  const controller = new AbortController();
  let r;
  let requestAborted = false;
  // Registered before the reader's own listener: it runs first, inside the abort.
  controller.signal.addEventListener('abort', () => r.close());
  const fetch = (request) => {
    request.signal.addEventListener('abort', () => {
      requestAborted = true;
      r.close();
    });
    return new Promise(() => {});
  };
  r = new FeedReader('http://127.0.0.1:9/feed/v1', { partitionCount: 1, signal: controller.signal, fetch });
  const pending = r.next();
  await delay(10);
  controller.abort();
  assert.equal(await pending, undefined);
  assert.ok(requestAborted, "the request's own signal was aborted");
  assert.equal(await r.next(), undefined);
  r.free();
});

test('next() while one is pending is bad-options', async () => {
  const { r } = reader([{ chunks: [], end: 'stall' }], { partitionCount: 1 });
  const first = r.next();
  await assert.rejects(r.next(), (e) => e.code === 'bad-options' && /pending/.test(e.message));
  r.close();
  assert.equal(await first, undefined);
});

test('bad options are refused before any request', () => {
  for (const opts of [
    { partitionCount: 0 },
    { partitionCount: 2, cursors: ['a'] },
    { partitionCount: 1, cursors: [''] },
    { partitionCount: 3, partitions: [2, 1] },
    { partitionCount: 3, partitions: [1, 1] },
    { partitionCount: 3, partitions: [] },
    { partitionCount: 3, partitions: [3] },
  ]) {
    assert.throws(() => new FeedReader('http://127.0.0.1:9/', opts), (e) => e.code === 'bad-options', JSON.stringify(opts));
  }
  assert.throws(() => new FeedReader(7, { partitionCount: 1 }), (e) => e.code === 'bad-options');
});

test('a URL that Request refuses is bad-options, without quoting the URL', async () => {
  const { r } = reader([{ chunks: [] }], { partitionCount: 1, retry: false }, 'http://[bad/feed?token=SECRET');
  const { error } = await run(r);
  assert.equal(error.code, 'bad-options');
  assert.match(error.message, /not a valid URL/);
  assert.ok(!error.message.includes('SECRET') && error.cause === undefined);
});

test('live feeds keep polling after catching up and signal it', async () => {
  const pages = [
    { chunks: ['{"partition":0,"data":1}\n{"partition":0,"cursor":"1"}\n'] },
    { chunks: [] },
    { chunks: [] },
    { chunks: ['{"partition":0,"data":2}\n{"partition":0,"cursor":"2"}\n'] },
    { chunks: ['{"partition":0,"data":3}\n{"partition":0,"cursor":"3"}\n'] },
    { chunks: [] },
  ];
  const { r, log } = reader(pages, { partitionCount: 1, live: { minIntervalMs: 5, maxIntervalMs: 20, longPollParam: 'wait' } });
  const data = [];
  const signals = [];
  while (data.length < 3 || signals.length < 3) {
    const b = await r.next();
    for (const e of parseBatch(b).events) data.push(e.data);
    if (b.signal) signals.push([b.signal, data.length]);
  }
  r.close();
  assert.deepEqual(data, [1, 2, 3]);
  assert.deepEqual(signals, [['caught-up', 1], ['fell-behind', 3], ['caught-up', 3]]);
  assert.ok(log.urls.some((u) => u.includes('cursor0=1&wait=5')) && !log.urls.some((u) => u.includes('_first&wait')));
});

test('released events are handed out when the body goes quiet (the flush timer)', async () => {
  const pages = [{ chunks: ['{"partition":0,"data":1}\n{"partition":0,"cursor":"1"}\n'], end: 'stall' }];
  const { r, log } = reader(pages, { partitionCount: 1, maxBatchDelayMs: 5 });
  const b = await r.next();
  assert.deepEqual(parseBatch(b).events, [{ partition: 0, data: 1 }]);
  r.close();
  await delay(0);
  assert.equal(log.cancelled, 1);
});

test('an abort during a backoff wait ends it at once', async () => {
  const controller = new AbortController();
  const { r } = reader([{ status: 503, chunks: ['busy'] }], {
    partitionCount: 1,
    retry: { initialMs: 60_000, maxMs: 60_000, multiplier: 1 },
    signal: controller.signal,
  });
  const pending = r.next();
  await delay(50);
  controller.abort();
  await assert.rejects(pending, (e) => e.code === 'aborted');
});

test('an abort while the caller’s fetch never answers ends the wait', async () => {
  const controller = new AbortController();
  const r = new FeedReader('http://127.0.0.1:9/feed/v1', { partitionCount: 1, signal: controller.signal, fetch: () => new Promise(() => {}) });
  const pending = r.next();
  await delay(10);
  controller.abort();
  await assert.rejects(pending, (e) => e.code === 'aborted');
});

test('a v2 reader reads one partition by token and reports 409', async () => {
  const pages = [
    { chunks: ['{"data": {"type": "a"}}\n{"cursor": "c1"}\n'] },
    { status: 409, chunks: ['token changed'] },
  ];
  const { r, log } = reader(pages, { partitionCount: 1, cursors: ['_first'], v2: { token: 't 1', partition: 16000, eventTypes: ['a', 'b.c'] } });
  const out = await run(r);
  assert.deepEqual(out.events, [{ partition: 16000, data: { type: 'a' } }]);
  assert.deepEqual(out.checkpoints, [{ partition: 16000, cursor: 'c1' }]);
  assert.equal(out.error.status, 409);
  assert.deepEqual(log.urls, [
    'http://127.0.0.1:9/feed/v1/events?key=k&token=t%201&partition=16000&cursor=_first&event-types=a;b.c',
    'http://127.0.0.1:9/feed/v1/events?key=k&token=t%201&partition=16000&cursor=c1&event-types=a;b.c',
  ]);
});

/** A response whose body is a reader the test drives: each `read()` waits for the test to `give` a chunk or `end`. */
function drivenBody() {
  const state = { reads: 0, inFlight: 0, maxInFlight: 0, cancelled: 0, waiting: [] };
  const reader = {
    read() {
      state.reads++;
      state.inFlight++;
      state.maxInFlight = Math.max(state.maxInFlight, state.inFlight);
      return new Promise((resolve) => state.waiting.push(resolve));
    },
    cancel() {
      state.cancelled++;
    },
  };
  const settle = (result) => {
    const resolve = state.waiting.shift();
    state.inFlight--;
    resolve(result);
  };
  state.give = (text) => settle({ done: false, value: enc.encode(text) });
  state.end = () => settle({ done: true, value: undefined });
  const response = { status: 200, statusText: 'OK', headers: new Headers(), bodyUsed: false, body: { getReader: () => reader } };
  return { state, response };
}

test('a read in flight when the flush timer fired is not lost, and is awaited by the next read (one read at a time)', async () => {
  const { state, response } = drivenBody();
  const empty = new Response('');
  let n = 0;
  const r = new FeedReader('http://127.0.0.1:9/feed/v1', { partitionCount: 1, maxBatchDelayMs: 5, fetch: async () => (n++ === 0 ? response : empty) });
  const first = r.next();
  await delay(5);
  state.give('{"partition":0,"data":1}\n{"partition":0,"cursor":"1"}\n');
  // The flush timer hands the released event out while the next read is in flight.
  assert.deepEqual(parseBatch(await first).events, [{ partition: 0, data: 1 }]);
  assert.equal(state.inFlight, 1, 'a read is in flight after the batch');
  const reads = state.reads;
  const second = r.next();
  await delay(20);
  assert.equal(state.reads, reads, 'the next read awaits the read in flight, not a new one');
  state.give('{"partition":0,"data":2}\n{"partition":0,"cursor":"2"}\n');
  assert.deepEqual(parseBatch(await second).events, [{ partition: 0, data: 2 }], 'the chunk of the read in flight reached the core');
  await delay(5);
  state.end();
  const rest = await run(r);
  assert.equal(rest.error, null);
  assert.equal(state.maxInFlight, 1, 'never two reads at once');
  r.free();
});

test('the idle watchdog is one timer re-armed lazily: it spares a body that keeps bringing bytes, and fires on one that stalls', async () => {
  const { state, response } = drivenBody();
  const timers = [];
  const real = globalThis.setTimeout;
  let r;
  try {
    // Count the reader's timers of the idle length.
    globalThis.setTimeout = (f, ms, ...a) => {
      if (ms > 100) timers.push(ms);
      return real(f, ms, ...a);
    };
    r = new FeedReader('http://127.0.0.1:9/feed/v1', { partitionCount: 1, idleTimeoutMs: 300, retry: false, fetch: async () => response });
    const pending = r.next();
    // 8 chunks 50 ms apart (400 ms in all, more than the idle limit; each gap a sixth of it): none of them is late.
    for (let i = 0; i < 8; i++) {
      await delay(50);
      state.give(`{"partition":0,"data":${i}}\n`);
    }
    // Then the body stalls: the watchdog ends it, about one idle limit after the last read began.
    await assert.rejects(pending, (e) => e.code === 'stalled-body' && /no bytes for 300 ms/.test(e.message));
    assert.ok(state.reads >= 9, `${state.reads} reads`);
    assert.ok(timers.length <= 5, `one watchdog re-armed now and then, not a timer per read: ${timers.length} for ${state.reads} reads`);
    await delay(0);
    assert.equal(state.cancelled, 1, 'the stalled body is cancelled');
  } finally {
    globalThis.setTimeout = real;
    r?.free();
  }
});

test('a batch whose text a decoder cannot make fails the feed with that error, also from the flush timer', async () => {
  // TextDecoder.decode never throws on a batch's bounded text; a decoder made to throw stands for any throw of the
  // core's one call out (src/convert.rs): the timer's callback must not let it escape (an uncaught exception).
  const decode = TextDecoder.prototype.decode;
  const boom = new RangeError('decoder failed');
  TextDecoder.prototype.decode = function (bytes) {
    // The batch's text `[1]` only; every other decoding goes on.
    if (bytes?.length === 3 && String.fromCharCode(...bytes) === '[1]') throw boom;
    return decode.call(this, bytes);
  };
  try {
    const pages = [{ chunks: ['{"partition":0,"data":1}\n{"partition":0,"cursor":"1"}\n'], end: 'stall' }];
    const { r } = reader(pages, { partitionCount: 1, maxBatchDelayMs: 5 });
    await assert.rejects(r.next(), (e) => e === boom);
    await assert.rejects(r.next(), (e) => e === boom, 'the failure is sticky');
    r.free();
  } finally {
    TextDecoder.prototype.decode = decode;
  }
});
