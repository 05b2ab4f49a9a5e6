// FeedAPI v2 hardening (issue 15) over real HTTP on 127.0.0.1 against the v2 reference server
// (tests/v2_server/server.mjs): a split while the feed runs, 409 storms bounded by the retry policy, `partitions`,
// a hot partition, a 401 at rediscovery, impossible discovery documents, slow / huge / stalled discovery bodies,
// refused header values and network failures of discovery. The server's request log proves what was (not) requested.
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, beforeEach, test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';
import { SECRET, startV2Server } from '../v2_server/server.mjs';

let server;
before(async () => {
  server = await startV2Server();
});
after(async () => {
  await server.close();
});
beforeEach(async () => {
  await control({ reset: true });
});

const control = (body) => server.control(body);
const feedState = (name = 'feed') => server.state.feeds[name];
const requests = (path) => server.state.log.filter((r) => new URL(r.url, 'http://x').pathname === path);
const eventsOf = (partition) => requests('/feed/events').filter((r) => new URL(r.url, 'http://x').searchParams.get('partition') === partition);
/** Every event's id (`<partition>-<seq>`), from the event's data (string data holds the JSON). */
const idOf = (e) => (typeof e.data === 'string' ? JSON.parse(e.data) : e.data).id;

async function expectedIds(feed = 'feed') {
  const x = await (await fetch(`${server.url}/expected?feed=${feed}`)).json();
  return Object.entries(x.partitions).flatMap(([pid, list]) => list.map((e) => `${pid}-${e.seq}`));
}

/**
 * A `fetch` that splits partition 1 (method 1) just before the first events request made after 1's last event (1-500)
 * was served, while 1 was still open: that request then gets the 409. Whichever partition a round starts at (random,
 * the core's `Schedule` start), that request comes: 1 is not caught up before a page with no events.
 */
function splitAfterOneIsRead() {
  let lastServed = false;
  let done = false;
  return async (request) => {
    const url = new URL(request.url);
    if (lastServed && !done && url.pathname === '/feed/events') {
      done = true;
      await control({ feed: 'feed', splitRunning: { partition: '1', children: ['4', '5'], count: 600 } });
    }
    const response = await fetch(request);
    if (!done && url.pathname === '/feed/events' && url.searchParams.get('partition') === '1' && response.ok) {
      lastServed ||= (await response.clone().text()).includes('"1-500"');
    }
    return response;
  };
}

test('split while running: 1 read to its end while open, then closed with children 4 and 5 and a 409: every event once', async (t) => {
  const split = splitAfterOneIsRead();
  const seen = [];
  const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', pageSizeHint: 50, fetch: split });
  for await (const batch of feed.batches()) {
    for (const e of batch.events) seen.push(idOf(e));
  }
  const ids = seen;
  t.diagnostic(`caught-up pages served: ${[...(feedState().caughtUpServed ?? [])]}`);
  t.diagnostic(`split while running: ${ids.length} events, children 4: ${eventsOf('4').length} requests, 5: ${eventsOf('5').length}`);
  assert.ok(feedState().parts.has('4'), 'the split happened while the feed ran');
  assert.equal(new Set(ids).size, ids.length, 'no event twice');
  assert.deepEqual([...ids].sort(), (await expectedIds()).sort(), 'every event of 0..3 and of the children 4 and 5');
  assert.ok(ids.lastIndexOf('1-500') < ids.indexOf('4-1') && ids.lastIndexOf('1-500') < ids.indexOf('5-1'), 'children after the parent');
});

test('split while running, live, through consume(): the children are read before caught up is signalled', async (t) => {
  const split = splitAfterOneIsRead();
  const ids = [];
  const ac = new AbortController();
  let caughtUpWith;
  const want = 2000 + 1200;
  const result = consumeUntil(ac, () => ids.length >= want && caughtUpWith !== undefined);
  async function consumeUntil(ac, stop) {
    try {
      return await api.consume(
        { url: `${server.url}/feed`, protocol: 'v2', pageSizeHint: 50, live: { minIntervalMs: 20 }, signal: ac.signal, fetch: split,
          onCaughtUp: () => {
            if (feedState().parts.has('4') && caughtUpWith === undefined) caughtUpWith = ids.length;
            if (stop()) ac.abort(); // nothing more comes once caught up: the handler would not be called again
          } },
        {
          store: api.memoryStore(),
          key: 'split-live',
          onMissingCursors: 'first',
          handler: async (batch) => {
            for (const e of batch.events) ids.push(idOf(e));
            if (stop()) ac.abort();
          },
        },
      );
    } catch (e) {
      if (e.code !== 'aborted') throw e;
    }
  }
  const timer = setTimeout(() => ac.abort(), 15_000);
  await result;
  clearTimeout(timer);
  t.diagnostic(`live split: ${ids.length} events, caught up signalled after ${caughtUpWith} events`);
  assert.equal(new Set(ids).size, ids.length, 'no event twice');
  assert.deepEqual([...ids].sort(), (await expectedIds()).sort());
  assert.equal(caughtUpWith, want, 'caught up is signalled only once the children are read too');
});

test('a server that always answers 409: a typed error after maxAttempts, onRetry per attempt, no loop', async (t) => {
  await control({ feed: 'feed', conflicts: 1e9 });
  const retries = [];
  const started = Date.now();
  const feed = api.openFeed(`${server.url}/feed`, {
    protocol: 'v2',
    retry: { initialMs: 1, maxMs: 20, maxAttempts: 3 },
    onRetry: (info) => retries.push(info),
    signal: AbortSignal.timeout(10_000),
  });
  await assert.rejects(
    (async () => { for await (const _ of feed); })(),
    (e) => api.isFeedError(e) && e.code === 'http-status' && e.status === 409,
  );
  const ms = Date.now() - started;
  t.diagnostic(`409 storm: ${requests('/feed/events').length} events requests, ${requests('/feed').length} discoveries, ${retries.length} retries, ${ms} ms`);
  assert.deepEqual(retries.map((r) => r.attempt), [1, 2, 3]);
  assert.ok(retries.every((r) => r.error.code === 'http-status' && r.error.status === 409 && r.delayMs >= 0 && r.delayMs <= 20));
  assert.equal(requests('/feed/events').length, 4, 'maxAttempts + 1 events requests');
  assert.equal(requests('/feed').length, 4, 'one discovery per attempt');
  assert.ok(ms < 5_000, `ended within seconds (${ms} ms)`);
});

test('a short 409 storm is retried through the policy and the feed completes', async () => {
  await control({ feed: 'feed', conflicts: 3 });
  let retries = 0;
  const ids = [];
  const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', retry: { initialMs: 1, maxMs: 5 }, onRetry: () => retries++ });
  for await (const e of feed) ids.push(idOf(e));
  assert.equal(retries, 3);
  assert.equal(new Set(ids).size, 2000);
  assert.equal(ids.length, 2000);
});

test('a token that changes every 3rd events request (409): a feed that is not live still ends, every event once', async (t) => {
  // Each 409 is followed by an answered request, which resets the retry budget: the feed must end because partitions
  // caught up stay caught up across the rediscovery (before, each 409 made all four due again, for ever).
  await control({ feed: 'feed', conflictEvery: 3 });
  const ids = [];
  const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', retry: { initialMs: 1, maxMs: 5 }, signal: AbortSignal.timeout(20_000) });
  for await (const e of feed) ids.push(idOf(e));
  t.diagnostic(`${requests('/feed/events').length} events requests, ${requests('/feed').length} discoveries`);
  assert.equal(ids.length, 2000);
  assert.equal(new Set(ids).size, 2000);
  assert.ok(requests('/feed').length > 5, 'rediscovered after each 409');
});

test('live, a token that changes every 3rd events request: a caught-up partition is not polled again before its interval', async () => {
  await control({ feed: 'feed', conflictEvery: 3 });
  /** Pages without events served, per partition (the page that finds a partition caught up). */
  const empty = new Map();
  const counting = async (request) => {
    const response = await fetch(request);
    const url = new URL(request.url);
    if (url.pathname === '/feed/events' && response.ok && !(await response.clone().text()).includes('"data"')) {
      const p = url.searchParams.get('partition');
      empty.set(p, (empty.get(p) ?? 0) + 1);
    }
    return response;
  };
  const ac = new AbortController();
  let caughtUp = false;
  const timer = setTimeout(() => ac.abort(new Error('not caught up in 20 s')), 20_000);
  const feed = api.openFeed(`${server.url}/feed`, {
    protocol: 'v2',
    fetch: counting,
    live: { minIntervalMs: 60_000, maxIntervalMs: 60_000 },
    retry: { initialMs: 1, maxMs: 5 },
    onCaughtUp: () => {
      caughtUp = true;
      ac.abort(new Error('caught up'));
    },
    signal: ac.signal,
  });
  const ids = [];
  await assert.rejects((async () => { for await (const e of feed) ids.push(idOf(e)); })(), (e) => e.code === 'aborted');
  clearTimeout(timer);
  assert.ok(caughtUp, `caught up within 20 s (pages without events: ${JSON.stringify(Object.fromEntries(empty))})`);
  assert.equal(new Set(ids).size, 2000);
  assert.deepEqual(Object.fromEntries([...empty].sort()), { 0: 1, 1: 1, 2: 1, 3: 1 }, 'each partition found caught up once, in the minute');
});

test('a new token at every discovery, two feeds at once (each discovery 409s the other feed): both read every event once', async (t) => {
  await control({ feed: 'feed', rotateOnDiscovery: true });
  const read = async () => {
    const ids = [];
    const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', pageSizeHint: 50, signal: AbortSignal.timeout(20_000) });
    for await (const e of feed) ids.push(idOf(e));
    return ids;
  };
  const [a, b] = await Promise.all([read(), read()]);
  t.diagnostic(`${requests('/feed').length} discoveries, ${requests('/feed/events').filter((r) => r.status === 409).length} 409s`);
  for (const ids of [a, b]) {
    assert.equal(ids.length, 2000);
    assert.equal(new Set(ids).size, 2000);
  }
});

test('partitions: [2] reads only partition 2, over v2 and over auto', async () => {
  for (const protocol of ['v2', 'auto']) {
    await control({ reset: true });
    const ids = [];
    const feed = api.openFeed(`${server.url}/feed`, { protocol, partitions: [2] });
    for await (const e of feed) ids.push(idOf(e));
    assert.equal(ids.length, 500, protocol);
    assert.ok(ids.every((id) => id.startsWith('2-')), protocol);
    assert.deepEqual(new Set(requests('/feed/events').map((r) => new URL(r.url, 'http://x').searchParams.get('partition'))), new Set(['2']));
    assert.deepEqual(Object.keys(feed.cursors()), ['2']);
  }
  assert.throws(() => api.openFeed(`${server.url}/feed`, { protocol: 'v2', partitions: [40_000] }), (e) => e.code === 'bad-options');
  assert.throws(() => api.openFeed(`${server.url}/feed`, { protocol: 'v2', partitions: [] }), (e) => e.code === 'bad-options');
});

test('partitions: [1] also reads the split children of 1 (they count as listed), and nothing else', async () => {
  await control({ feed: 'feed', splitRunning: { partition: '1', children: ['4', '5'], count: 30 } });
  const ids = [];
  const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', partitions: [1] });
  for await (const e of feed) ids.push(idOf(e));
  const byPartition = {};
  for (const id of ids) byPartition[id.split('-')[0]] = (byPartition[id.split('-')[0]] ?? 0) + 1;
  assert.deepEqual(byPartition, { 1: 500, 4: 30, 5: 30 });
});

test('one hot partition does not starve the others', async (t) => {
  await control({ feed: 'feed', hot: { partition: '0', perRequest: 40 } });
  const count = new Map();
  const ac = new AbortController();
  const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', pageSizeHint: 20, signal: ac.signal });
  const timer = setTimeout(() => ac.abort(), 20_000);
  try {
    for await (const e of feed) {
      count.set(e.partition, (count.get(e.partition) ?? 0) + 1);
      if ([1, 2, 3].every((p) => count.get(p) === 500)) break;
      if ((count.get(0) ?? 0) > 20_000) break;
    }
  } finally {
    clearTimeout(timer);
  }
  t.diagnostic(`hot partition: ${JSON.stringify(Object.fromEntries(count))}`);
  assert.deepEqual([1, 2, 3].map((p) => count.get(p)), [500, 500, 500], 'the others were read to their end meanwhile');
});

test('a 401 at rediscovery asks requestHeaders({ refresh: true }) and goes on', async () => {
  let refreshes = 0;
  const ids = [];
  const feed = api.openFeed(`${server.url}/secure`, {
    protocol: 'v2',
    requestHeaders: ({ refresh }) => {
      if (refresh) refreshes++;
      return { authorization: `Bearer ${refresh ? feedState('secure').secret : SECRET}` };
    },
  });
  for await (const e of feed) {
    ids.push(idOf(e));
    if (ids.length === 100) await control({ feed: 'secure', secret: 's2', rotateToken: true });
  }
  assert.equal(new Set(ids).size, 2000);
  assert.equal(ids.length, 2000);
  assert.ok(refreshes >= 2, `refreshed (${refreshes})`);
  assert.ok(requests('/secure').some((r) => r.status === 401), 'discovery was answered 401 once');
});

test('a page that brings only ignored lines for ever (heartbeats, no cursor) does not keep the other partitions from being read', async (t) => {
  // Partition 0 answers every request with a heartbeat line (an unknown command) every 50 ms, for ever: no event, no
  // cursor. Each chunk of such lines counts against the turn as a batch does (BATCHES_PER_TURN), so its turn is cut
  // while the others are due, and they are read. (Before, that page made no batch: the turn never ended, and
  // partitions 1, 2 and 3 were never read, without an error.)
  await control({ feed: 'feed', heartbeats: '0' });
  const random = Math.random;
  Math.random = () => 0; // the schedule's first turn goes to partition 0 (the first listed)
  const ids = [];
  try {
    const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', pageSizeHint: 1000, signal: AbortSignal.timeout(30_000) });
    for await (const e of feed) {
      ids.push(idOf(e));
      if (ids.length === 1500) break;
    }
  } catch (e) {
    if (e?.code !== 'aborted') throw e;
  } finally {
    Math.random = random;
  }
  t.diagnostic(`requests for partition 0: ${eventsOf('0').length}`);
  assert.equal(ids.length, 1500, 'partitions 1, 2 and 3 were read while 0 streamed heartbeats');
  assert.deepEqual([...new Set(ids.map((id) => id.split('-')[0]))].sort(), ['1', '2', '3']);
  assert.equal(new Set(ids).size, 1500, 'no event twice');
  assert.equal(new URL(requests('/feed/events')[0].url, 'http://x').searchParams.get('partition'), '0', 'partition 0 was read first');
});

test('a child whose parent is open, and a parent cycle: the rest is read, then bad-discovery says why', async () => {
  await control({
    feed: 'feed',
    discovery: {
      partitions: [
        { id: '0' },
        { id: '1', startsAfterPartition: '0' },
        { id: '2', closed: true, startsAfterPartition: '3' },
        { id: '3', closed: true, startsAfterPartition: '2' },
      ],
    },
  });
  const ids = [];
  const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2' });
  await assert.rejects(
    (async () => { for await (const e of feed) ids.push(idOf(e)); })(),
    (e) => e.code === 'bad-discovery' && /\b1\b/.test(e.message) && /not closed/.test(e.message) && /cycle/.test(e.message),
  );
  assert.equal(ids.length, 500, 'partition 0 was read');
  assert.deepEqual(new Set(requests('/feed/events').map((r) => new URL(r.url, 'http://x').searchParams.get('partition'))), new Set(['0']));
});

test('a hostile discovery list (a 32,768-partition cycle; 100,000 entries) ends in bad-discovery at once', async () => {
  const ring = Array.from({ length: 32_768 }, (_, i) => ({ id: String(i), closed: true, startsAfterPartition: String((i + 1) % 32_768) }));
  for (const partitions of [ring, Array.from({ length: 100_000 }, (_, i) => ({ id: String(i % 32_768) }))]) {
    await control({ reset: true });
    await control({ feed: 'feed', discovery: { partitions } });
    const started = Date.now();
    const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', signal: AbortSignal.timeout(10_000) });
    await assert.rejects((async () => { for await (const _ of feed); })(), (e) => e.code === 'bad-discovery');
    assert.ok(Date.now() - started < 5_000, `${Date.now() - started} ms`);
    assert.equal(requests('/feed/events').length, 0);
  }
});

test('a stalled discovery body obeys idleTimeoutMs and the retry policy; an abort gives aborted', async () => {
  await control({ feed: 'feed', discovery: { stall: true } });
  const retries = [];
  const feed = api.openFeed(`${server.url}/feed`, {
    protocol: 'v2',
    idleTimeoutMs: 150,
    retry: { initialMs: 1, maxMs: 5, maxAttempts: 2 },
    onRetry: (r) => retries.push(r.error.code),
    signal: AbortSignal.timeout(10_000),
  });
  await assert.rejects((async () => { for await (const _ of feed); })(), (e) => e.code === 'stalled-body');
  assert.deepEqual(retries, ['stalled-body', 'stalled-body']);
  assert.equal(requests('/feed').length, 3);

  const ac = new AbortController();
  setTimeout(() => ac.abort(new Error('stop')), 200);
  const aborted = api.openFeed(`${server.url}/feed`, { protocol: 'auto', signal: ac.signal });
  await assert.rejects((async () => { for await (const _ of aborted); })(), (e) => e.code === 'aborted');

  await control({ feed: 'feed', discovery: { stallError: true } });
  const failing = api.openFeed(`${server.url}/feed`, { protocol: 'v2', idleTimeoutMs: 150, retry: false, signal: AbortSignal.timeout(10_000) });
  await assert.rejects((async () => { for await (const _ of failing); })(), (e) => e.code === 'http-status' && e.status === 503);
});

test('an endless discovery document is cut at the size cap (maxLineLength) with bad-discovery', async () => {
  await control({ feed: 'feed', discovery: { huge: true } });
  const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', maxLineLength: 1 << 20, signal: AbortSignal.timeout(10_000) });
  await assert.rejects((async () => { for await (const _ of feed); })(), (e) => e.code === 'bad-discovery' && /1048576 bytes/.test(e.message));
});

test('a discovery body that drips (a byte every 50 ms, under idleTimeoutMs, far below the size cap) fails stalled-body within idleTimeoutMs, then as the retry policy says', async () => {
  await control({ feed: 'feed', discovery: { drip: true } });
  const started = Date.now();
  const retries = [];
  const feed = api.openFeed(`${server.url}/feed`, {
    protocol: 'v2',
    idleTimeoutMs: 500,
    retry: { initialMs: 1, maxMs: 5, maxAttempts: 1 },
    onRetry: (r) => retries.push(r.error.code),
    signal: AbortSignal.timeout(5_000),
  });
  await assert.rejects((async () => { for await (const _ of feed); })(), (e) =>
    e.code === 'stalled-body' && e.message === 'stalled-body: the discovery response did not come whole within 500 ms');
  assert.deepEqual(retries, ['stalled-body']);
  assert.equal(requests('/feed').length, 2);
  assert.ok(Date.now() - started < 2_500, `${Date.now() - started} ms`);
});

test('a header value fetch refuses gives bad-header naming the header, never its value', async () => {
  for (const protocol of ['v2', 'auto']) {
    const feed = api.openFeed(`${server.url}/feed`, { protocol, requestHeaders: () => ({ 'x-api-key': 'sec\nret-value' }) });
    const e = await (async () => { for await (const _ of feed); })().then(() => undefined, (e) => e);
    assert.equal(e?.code, 'bad-header', protocol);
    assert.match(e.message, /x-api-key/);
    for (let c = e; c !== undefined && c !== null; c = c.cause) {
      assert.ok(!String(c.message ?? c).includes('ret-value') && !JSON.stringify(c, Object.getOwnPropertyNames(c)).includes('ret-value'));
    }
  }
});

test('a network failure of discovery names origin + path (never the query) and the root cause', async () => {
  // A port nothing listens on (fetch refuses port 9 itself as a "bad port").
  const closed = http.createServer();
  await new Promise((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = closed.address().port;
  await new Promise((resolve) => closed.close(resolve));
  const retries = [];
  const feed = api.openFeed(`http://127.0.0.1:${port}/feed/v2?token=hush`, {
    protocol: 'v2',
    retry: { initialMs: 1, maxMs: 2, maxAttempts: 1 },
    onRetry: (r) => retries.push(r.error.code),
  });
  const e = await (async () => { for await (const _ of feed); })().then(() => undefined, (e) => e);
  assert.equal(e?.code, 'network');
  assert.equal(e.message, `network: GET http://127.0.0.1:${port}/feed/v2 failed before a response arrived: connect ECONNREFUSED 127.0.0.1:${port}`);
  assert.deepEqual(retries, ['network']);
  // A fetch whose error quotes the URL: the query is not repeated.
  const quoting = api.openFeed(`http://127.0.0.1:${port}/feed/v2?token=hush`, {
    protocol: 'v2',
    retry: false,
    fetch: (request) => Promise.reject(new Error(`cannot reach ${request.url}`)),
  });
  const q = await (async () => { for await (const _ of quoting); })().then(() => undefined, (e) => e);
  assert.equal(q?.code, 'network');
  assert.ok(!q.message.includes('hush'), q.message);
});
