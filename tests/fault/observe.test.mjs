// feed.state, onStateChange and feed.stats() over real HTTP (tests/fault/scripted-server.mjs on 127.0.0.1): a scripted
// server walks a feed through its states (catching up, a 503 retried, live, closed; a failure), and the counters are
// checked against what the server really sent.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';
import { startScriptedServer } from './scripted-server.mjs';
import { startV2Server } from '../v2_server/server.mjs';

/** Pages by the cursor asked for: cursor -> [body, next]. */
const PAGES = {
  _first: '{"partition":0,"data":1}\n{"partition":1,"data":2}\n{"partition":0,"cursor":"a"}\n{"partition":1,"cursor":"a"}\n',
  a: '{"partition":0,"data":3}\n{"partition":0,"cursor":"b"}\n',
};
let server;
/** Per route: how many requests were made, so a route can fail the n-th one. */
const count = {};
before(async () => {
  const page = (url) => PAGES[url.searchParams.get('cursor0')] ?? '';
  server = await startScriptedServer({
    '/feed': (url) => ({ body: page(url) }),
    // The second request (cursor a) fails once with a 503, then answers.
    '/flaky': (url) => {
      count.flaky = (count.flaky ?? 0) + 1;
      if (count.flaky === 2) return { status: 503, headers: { 'retry-after': '0' }, body: 'busy' };
      return { body: page(url) };
    },
    '/down': { status: 500, body: 'down' },
    '/refused': { status: 400, body: 'bad n' },
    // consume()'s feed: the same pages, the second request fails once with a 503.
    '/consumed': (url) => {
      count.consumed = (count.consumed ?? 0) + 1;
      if (count.consumed === 2) return { status: 503, headers: { 'retry-after': '0' }, body: 'busy' };
      return { body: page(url) };
    },
  });
});
after(async () => {
  await server.close();
});

function recordStates(options) {
  const changes = [];
  return { changes, options: { ...options, onStateChange: (state, previous) => changes.push(`${previous}->${state}`) } };
}

test('a feed that is not live: idle -> catching-up -> retrying (503) -> catching-up -> closed; stats count what was sent', async () => {
  const { changes, options } = recordStates({ partitionCount: 2, retry: { initialMs: 1, maxMs: 1 } });
  const feed = api.openFeed(`${server.base}/flaky`, options);
  assert.equal(feed.state, 'idle');
  const signals = [];
  let events = 0;
  const seen = [];
  for await (const batch of feed.batches()) {
    seen.push(feed.state);
    events += batch.events.length;
    if (batch.signal) signals.push(batch.signal);
  }
  assert.equal(feed.state, 'closed');
  assert.deepEqual(changes, ['idle->catching-up', 'catching-up->retrying', 'retrying->catching-up', 'catching-up->closed']);
  assert.deepEqual(signals, ['caught-up'], 'the caught-up signal batch, on a feed that is not live');
  assert.equal(events, 3);
  const stats = feed.stats();
  const bodyBytes = Buffer.byteLength(PAGES._first) + Buffer.byteLength(PAGES.a);
  console.log('stats', JSON.stringify(stats), 'body bytes sent', bodyBytes, 'states', changes.join(' '));
  assert.equal(stats.events, 3);
  assert.equal(stats.bytes, bodyBytes, 'every body byte of the pages read (the 503 body is not a page)');
  assert.equal(stats.pages, 3, 'two pages of events and the empty one');
  assert.equal(stats.retries, 1);
  assert.equal(stats.lastErrorCode, 'http-status');
  assert.deepEqual(Object.keys(stats.lastEventAt).sort(), ['0', '1']);
  assert.ok(seen.every((s) => s === 'catching-up'), seen.join());
});

test('events() is unaffected by the signal batch: the same events, nothing extra', async () => {
  const feed = api.openFeed(`${server.base}/feed`, { partitionCount: 2 });
  const data = [];
  for await (const event of feed) data.push(event.data);
  assert.deepEqual(data.sort(), [1, 2, 3]);
  assert.equal(feed.state, 'closed');
});

test('a live feed: catching-up -> live; close() -> closed; the callback throwing does not stop the feed', async () => {
  const changes = [];
  const feed = api.openFeed(`${server.base}/feed`, {
    partitionCount: 2,
    live: { minIntervalMs: 5, maxIntervalMs: 5 },
    onStateChange: (state, previous) => {
      changes.push(`${previous}->${state}`);
      throw new Error('a callback that throws');
    },
  });
  for await (const batch of feed.batches()) {
    if (batch.signal === 'caught-up') {
      assert.equal(feed.state, 'live');
      feed.close();
    }
  }
  assert.equal(feed.state, 'closed');
  assert.deepEqual(changes, ['idle->catching-up', 'catching-up->live', 'live->closed']);
  assert.equal(feed.stats().events, 3);
});

test("consume({ onFeed }): the feed consume() reads, its state and stats while it runs and after it settled", async () => {
  const { changes, options } = recordStates({ partitionCount: 2, retry: { initialMs: 1, maxMs: 1 } });
  const handed = [];
  const inHandler = [];
  let feed;
  const result = await api.consume({ url: `${server.base}/consumed`, ...options }, {
    store: api.memoryStore(),
    key: 'k',
    onFeed: (f) => {
      feed = f;
      handed.push(f.state);
    },
    handler: (batch) => {
      inHandler.push([feed.state, feed.stats().events, batch.events.length]);
    },
  });
  assert.deepEqual(handed, ['idle'], 'given once, before the first request');
  assert.deepEqual(inHandler, [['catching-up', 2, 2], ['catching-up', 3, 1]], 'read while consume() runs');
  assert.equal(feed.state, 'closed');
  assert.deepEqual(changes, ['idle->catching-up', 'catching-up->retrying', 'retrying->catching-up', 'catching-up->closed']);
  const stats = feed.stats();
  console.log('consume onFeed stats', JSON.stringify(stats), 'result', JSON.stringify({ events: result.events, batches: result.batches }));
  assert.equal(stats.events, result.events);
  assert.equal(result.events, 3);
  assert.equal(stats.bytes, Buffer.byteLength(PAGES._first) + Buffer.byteLength(PAGES.a));
  assert.equal(stats.pages, 3);
  assert.equal(stats.retries, 1);
  assert.equal(stats.lastErrorCode, 'http-status');
  assert.deepEqual(Object.keys(stats.lastEventAt).sort(), ['0', '1']);
  assert.deepEqual(Object.keys(feed.lag()).sort(), ['0', '1']);

  // What onFeed throws rejects consume() ('hook-failed', its error the cause) before any request, nothing committed.
  const requests = count.consumed;
  const store = api.memoryStore();
  const boom = new Error('boom');
  await assert.rejects(
    api.consume({ url: `${server.base}/consumed`, partitionCount: 2 }, { store, key: 'k', handler: () => {}, onFeed: () => { throw boom; } }),
    (e) => api.isFeedError(e, 'hook-failed') && e.cause === boom,
  );
  assert.equal(count.consumed, requests, 'no request was made');
  assert.equal(await store.load('k'), undefined);
});

test('a failure that is not retried: failed, with its code', async () => {
  const { changes, options } = recordStates({ partitionCount: 1, retry: false });
  const feed = api.openFeed(`${server.base}/down`, options);
  await assert.rejects(async () => {
    for await (const _ of feed.batches());
  }, { code: 'http-status' });
  assert.equal(feed.state, 'failed');
  assert.deepEqual(changes, ['idle->catching-up', 'catching-up->failed']);
  assert.equal(feed.stats().lastErrorCode, 'http-status');
  assert.equal(feed.stats().retries, 0);
});

test('onRequest / onResponse: one response per request, with the page numbers the server saw; URLs without query values', async () => {
  count.flaky = 0;
  const requests = [];
  const responses = [];
  const before = server.requests.length;
  const feed = api.openFeed(`${server.base}/flaky?token=s3cr3t-4711&s3cr3t-key-alone`, {
    partitionCount: 2,
    retry: { initialMs: 1, maxMs: 1 },
    onRequest: (r) => requests.push(r),
    onResponse: (r) => {
      responses.push(r);
      throw new Error('a hook that throws');
    },
  });
  for await (const _ of feed.batches());
  const sent = server.requests.length - before;
  console.log('requests', sent, 'responses', JSON.stringify(responses.map(({ page, status, bytes, events, checkpoints, attempt }) => ({ page, status, bytes, events, checkpoints, attempt }))));
  assert.equal(requests.length, sent, 'onRequest once per request the server saw');
  assert.equal(responses.length, sent, 'onResponse once per request (the 503 too)');
  assert.deepEqual(requests.map((r) => r.page), [1, 2, 3, 4]);
  assert.deepEqual(requests.map((r) => r.attempt), [0, 0, 1, 0]);
  assert.deepEqual(responses.map((r) => r.status), [200, 503, 200, 200]);
  assert.deepEqual(responses.map((r) => r.bytes), [Buffer.byteLength(PAGES._first), 0, Buffer.byteLength(PAGES.a), 0]);
  assert.deepEqual(responses.map((r) => r.events), [2, 0, 1, 0]);
  assert.deepEqual(responses.map((r) => r.checkpoints), [2, 0, 1, 0]);
  for (const r of [...requests, ...responses]) {
    assert.match(r.url, /^http:\/\/127\.0\.0\.1:\d+\/flaky\?token&\[hidden\]&/, r.url);
    assert.ok(!r.url.includes('s3cr3t') && !r.url.includes('='), r.url);
  }
  assert.ok(responses.every((r) => r.durationMs >= 0));
});

test('onResponse for an answer the reader does not go on with: a 400 that fails a v1 feed, and v2 409s that rediscover', async () => {
  const seen = (into) => ({ onRequest: (r) => into.requests.push(r.page), onResponse: (r) => into.responses.push([r.page, r.status]) });
  const v1 = { requests: [], responses: [] };
  const feed = api.openFeed(`${server.base}/refused`, { partitionCount: 1, ...seen(v1) });
  await assert.rejects(async () => {
    for await (const _ of feed.batches());
  }, { code: 'http-status', status: 400 });
  assert.deepEqual(v1.responses, [[1, 400]], 'the 400 was told');
  const v2server = await startV2Server();
  try {
    await v2server.control({ feed: 'feed', conflicts: 2 });
    const v2 = { requests: [], responses: [] };
    let events = 0;
    for await (const _ of api.openFeed(`${v2server.url}/feed`, { protocol: 'v2', retry: { initialMs: 1, maxMs: 2 }, ...seen(v2) })) events++;
    assert.equal(events, 2000);
    const sent = (await (await fetch(`${v2server.url}/_requests`)).json()).filter((r) => r.method === 'GET');
    assert.equal(v2.requests.length, sent.length, 'onRequest once per request the server saw');
    assert.equal(v2.responses.length, sent.length, 'onResponse once per request, the 409s too');
    assert.deepEqual(
      v2.responses.filter(([, status]) => status !== 200).map(([, status]) => status),
      sent.filter((r) => r.status !== 200).map((r) => r.status),
    );
    assert.equal(v2.responses.filter(([, status]) => status === 409).length, 2);
  } finally {
    await v2server.close();
  }
});

test('onResponse of the v2 discovery: told once its document is read (bytes, durationMs), not when the next request goes out', async () => {
  const v2server = await startV2Server();
  try {
    const doc = await (await fetch(`${v2server.url}/feed`)).text();
    const responses = [];
    let hooks = 0;
    // The page requests' hook takes 1 s: before, the discovery's answer was told at the first page's request, its
    // durationMs then counting that second.
    const requestHeaders = async () => {
      if (hooks++ > 0) await new Promise((r) => setTimeout(r, 1_000));
      return {};
    };
    const feed = api.openFeed(`${v2server.url}/feed`, { protocol: 'v2', requestHeaders, onResponse: (r) => responses.push(r) });
    for await (const _ of feed.batches()) break;
    const discovery = responses.filter((r) => r.kind === 'discovery');
    assert.equal(discovery.length, 1, JSON.stringify(responses));
    assert.equal(discovery[0].status, 200);
    assert.equal(discovery[0].bytes, Buffer.byteLength(doc), 'the document\'s bytes');
    assert.ok(discovery[0].durationMs < 500, `durationMs ${discovery[0].durationMs}`);
    assert.equal(responses.indexOf(discovery[0]), 0, 'told before any page');
  } finally {
    await v2server.close();
  }
});

test('logger: debug per request and response, info per state, warn per retry, error at the end; no header or query value', async () => {
  count.flaky = 0;
  const lines = [];
  const logger = Object.fromEntries(['debug', 'info', 'warn', 'error'].map((level) => [level, (message, fields) => lines.push({ level, message, fields })]));
  const feed = api.openFeed(`${server.base}/flaky?token=s3cr3t-4711&s3cr3t-key-alone`, {
    partitionCount: 2,
    retry: { initialMs: 1, maxMs: 1 },
    requestHeaders: () => ({ authorization: 'Bearer s3cr3t-header' }),
    logger,
  });
  for await (const _ of feed.batches());
  const failing = api.openFeed(`${server.base}/down?token=s3cr3t-4711`, { partitionCount: 1, retry: false, logger });
  await assert.rejects(async () => {
    for await (const _ of failing);
  });
  const levels = {};
  for (const l of lines) levels[l.level] = (levels[l.level] ?? 0) + 1;
  console.log('log lines by level', JSON.stringify(levels));
  assert.equal(levels.debug, 4 * 2 + 2, 'request and response of 4 + 1 requests');
  assert.equal(levels.warn, 1);
  assert.equal(levels.error, 1);
  assert.equal(lines.find((l) => l.level === 'error').fields.code, 'http-status');
  assert.deepEqual(lines.filter((l) => l.level === 'info').map((l) => l.fields.state), ['catching-up', 'retrying', 'catching-up', 'closed', 'catching-up', 'failed']);
  const text = JSON.stringify(lines);
  assert.ok(!text.includes('s3cr3t'), 'no secret in a log line');
  // Quiet by default: a console that throws on any call is never called without a logger.
  const quiet = api.openFeed(`${server.base}/feed`, { partitionCount: 2 });
  const saved = { ...console };
  for (const k of ['debug', 'info', 'warn', 'error', 'log']) console[k] = () => { throw new Error(`console.${k} called`); };
  try {
    for await (const _ of quiet);
  } finally {
    Object.assign(console, saved);
  }
});

test('a logger whose members cannot even be read (a Proxy that throws): the feed reads to its end, close() does not throw', async () => {
  const trap = () => {
    throw new Error('the logger is gone');
  };
  const logger = new Proxy({}, { get: trap, has: trap });
  const feed = api.openFeed(`${server.base}/feed`, { partitionCount: 2, logger, retry: false });
  const events = [];
  for await (const ev of feed) events.push(ev.data);
  assert.deepEqual(events, [1, 2, 3]);
  const closing = api.openFeed(`${server.base}/feed`, { partitionCount: 2, logger });
  assert.doesNotThrow(() => closing.close());
});

test('hooks and logger methods that return a rejecting promise of another realm (a vm context, an iframe): never an unhandled rejection', async () => {
  const { createContext, runInContext } = await import('node:vm');
  const rejecting = runInContext('() => Promise.reject(new Error("the hook of another realm failed"))', createContext({}));
  const unhandled = [];
  const seen = (e) => unhandled.push(e);
  process.on('unhandledRejection', seen);
  try {
    count.flaky = 0;
    const logger = { debug: rejecting, info: rejecting, warn: rejecting, error: rejecting };
    const feed = api.openFeed(`${server.base}/flaky`, {
      partitionCount: 2,
      retry: { initialMs: 1, maxMs: 1 },
      onStateChange: rejecting,
      onRequest: rejecting,
      onResponse: rejecting,
      onRetry: rejecting,
      logger,
    });
    const events = [];
    for await (const ev of feed) events.push(ev.data);
    assert.deepEqual(events, [1, 2, 3]);
    await new Promise((r) => setTimeout(r, 50));
  } finally {
    process.off('unhandledRejection', seen);
  }
  assert.deepEqual(unhandled.map(String), []);
});
