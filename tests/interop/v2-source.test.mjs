// The FeedAPI v2 source (js/src/v2.ts, V2Source) over real HTTP on 127.0.0.1 against the v2 reference server
// (tests/v2_server/server.mjs): close() at each point (inside onRetry, inside fetch, during a live wait), retries of
// discovery and of 409s (attempts, delays, Retry-After, the backoff reset by a success), live polling, a turn's page
// limit, and which cursor a partition starts from. The server's request log proves what was (not) requested; each
// test is fast (the whole file runs in a few seconds: StrykerJS runs it once per mutant of v2.ts).
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';
import { readerDefaults, Schedule } from '../../dist/wasm/feedpump.js';
import { startV2Server } from '../v2_server/server.mjs';

const PAGES_PER_TURN = readerDefaults().pagesPerTurn; // the wasm is instantiated by the import of the node entry

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
const pathOf = (r) => new URL(r.url, 'http://x').pathname;
const requests = (path) => server.state.log.filter((r) => pathOf(r) === path);
const discoveries = (feed = 'feed') => requests(`/${feed}`).length;
const eventRequests = (feed = 'feed') => requests(`/${feed}/events`);
/** Every event's id (`<partition>-<seq>`), from the event's data (string data holds the JSON). */
const idOf = (e) => (typeof e.data === 'string' ? JSON.parse(e.data) : e.data).id;
const partitionOf = (r) => new URL(r.url, 'http://x').searchParams.get('partition');
async function expected(query) {
  return (await (await fetch(`${server.url}/expected?${query}`)).json()).partitions;
}
const expectedIds = (partitions) => Object.entries(partitions).flatMap(([p, evs]) => evs.map((e) => `${p}-${e.seq}`));
/** The server's cursor format (base64url of feed|partition|seq), to start from or compare with. */
const cursorAt = (feed, partition, seq) => Buffer.from(`${feed}|${partition}|${seq}`).toString('base64url');
/** A `fetch` that records when each request was sent (ms, this process's monotonic clock). */
function timedFetch(log) {
  return (request) => {
    const u = new URL(request.url);
    log.push({ path: u.pathname, partition: u.searchParams.get('partition'), at: performance.now() });
    return fetch(request);
  };
}
const drain = async (feed) => {
  for await (const _ of feed);
};

test('close() from onRetry while discovery is retried: the iteration ends quietly, no further request', async () => {
  for (const protocol of ['v2', 'auto']) {
    await control({ reset: true });
    await control({ feed: 'feed', discovery: { status: 503, times: 3 } });
    const retries = [];
    const feed = api.openFeed(`${server.url}/feed`, {
      protocol,
      retry: { initialMs: 1, maxMs: 1, maxAttempts: 2 },
      onRetry: (r) => {
        retries.push(r.error.status);
        feed.close();
      },
      signal: AbortSignal.timeout(10_000),
    });
    await drain(feed);
    assert.deepEqual(retries, [503], `${protocol}: one retry announced, then closed`);
    assert.equal(discoveries(), 1, `${protocol}: no discovery after close()`);
    assert.equal(eventRequests().length, 0, protocol);
  }
});

test('close() from fetch while discovery is in flight, and it fails: no retry, no onRetry, no further request', async () => {
  await control({ feed: 'feed', discovery: { status: 503, times: 3 } });
  let retries = 0;
  let answered;
  const feed = api.openFeed(`${server.url}/feed`, {
    protocol: 'v2',
    retry: { initialMs: 1, maxMs: 1, maxAttempts: 2 },
    onRetry: () => retries++,
    // close() aborts the request; a fetch of the caller's that ignores the abort still brings its answer (the feed
    // does not wait for it: the request is counted once it is answered).
    fetch: (request) => {
      feed.close();
      return (answered = fetch(request.url, { headers: request.headers }));
    },
    signal: AbortSignal.timeout(10_000),
  });
  await drain(feed);
  await answered;
  assert.equal(retries, 0);
  assert.equal(discoveries(), 1);
  assert.equal(eventRequests().length, 0);
});

test('close() before the first step: no request, no error, and the feed then ends at once', async () => {
  for (const protocol of ['v2', 'auto']) {
    const feed = api.openFeed(`${server.url}/feed`, { protocol });
    feed.close();
    feed.close();
    let events = 0;
    for await (const _ of feed) events++;
    assert.equal(events, 0, protocol);
  }
  assert.equal(server.state.log.filter((r) => pathOf(r) !== '/_control').length, 0);
});

test('close() from fetch during a discovery that succeeds: no events request after it, no schedule left unfreed', async () => {
  // The wasm schedules planned and not freed (a schedule is made for its first plan): none may outlive close().
  const live = new Set();
  const { plan, free } = Schedule.prototype;
  Schedule.prototype.plan = function (...args) {
    live.add(this);
    return plan.apply(this, args);
  };
  Schedule.prototype.free = function () {
    live.delete(this);
    return free.call(this);
  };
  after(() => Object.assign(Schedule.prototype, { plan, free }));
  for (const protocol of ['v2', 'auto']) {
    await control({ reset: true });
    let answered;
    const feed = api.openFeed(`${server.url}/feed`, {
      protocol,
      // close() aborts the request; a fetch of the caller's that ignores the abort still brings its answer (the feed
      // does not wait for it: the request is counted once it is answered).
      fetch: (request) => {
        if (new URL(request.url).pathname !== '/feed') return fetch(request);
        feed.close();
        return (answered = fetch(request.url, { headers: request.headers }));
      },
      signal: AbortSignal.timeout(10_000),
    });
    await drain(feed);
    await answered;
    assert.equal(discoveries(), 1, protocol);
    assert.equal(eventRequests().length, 0, protocol);
    assert.equal(live.size, 0, `${protocol}: a schedule planned after close() and never freed`);
  }
  // close() while the discovery's body is read (from the body's own stream, as its last bytes are taken).
  for (const protocol of ['v2', 'auto']) {
    await control({ reset: true });
    const feed = api.openFeed(`${server.url}/feed`, {
      protocol,
      fetch: async (request) => {
        const response = await fetch(request);
        if (pathOf(request) !== '/feed') return response;
        const bytes = new Uint8Array(await response.arrayBuffer());
        const body = new ReadableStream({
          pull(c) {
            c.enqueue(bytes);
            c.close();
            feed.close();
          },
        });
        return new Response(body, { status: response.status, headers: response.headers });
      },
      signal: AbortSignal.timeout(10_000),
    });
    await drain(feed);
    assert.equal(eventRequests().length, 0, protocol);
    assert.equal(live.size, 0, `${protocol}: a schedule planned after close() (in the discovery's body) and never freed`);
  }
});

// The waits (60 s) are far longer than the signal's 10 s: the iteration must have ended, through close(), before the
// signal fired (a closed feed ends quietly either way, so the signal's state is what tells).
test('close() while a live feed waits to poll again: no request after it, the iteration ends at once', async () => {
  const signal = AbortSignal.timeout(10_000);
  let atClose;
  const feed = api.openFeed(`${server.url}/feed`, {
    protocol: 'v2',
    live: { minIntervalMs: 60_000, maxIntervalMs: 60_000 },
    onCaughtUp: () =>
      setTimeout(() => {
        atClose = server.state.log.length;
        feed.close();
      }, 50),
    signal,
  });
  let events = 0;
  for await (const _ of feed) events++;
  assert.equal(signal.aborted, false, 'the iteration ended when close() was called, not when the wait or the signal did');
  assert.equal(events, 2000);
  assert.equal(server.state.log.length, atClose, 'no request after close()');
});

test('close() while a retry waits (discovery answered 503): no request after it, the iteration ends at once', async () => {
  await control({ reset: true });
  await control({ feed: 'feed', discovery: { status: 503, times: 10 } });
  const signal = AbortSignal.timeout(10_000);
  let atClose;
  let retries = 0;
  const feed = api.openFeed(`${server.url}/feed`, {
    protocol: 'v2',
    retry: { initialMs: 60_000, maxMs: 60_000 },
    onRetry: () => {
      retries++;
      setTimeout(() => {
        atClose = server.state.log.length;
        feed.close();
      }, 50);
    },
    signal,
  });
  await drain(feed);
  assert.equal(signal.aborted, false, 'the iteration ended when close() was called, not when the wait or the signal did');
  assert.equal(retries, 1);
  assert.equal(server.state.log.length, atClose, 'no request after close()');
  await control({ reset: true });
});

const V1_SERVER = "bad-options: the server speaks FeedAPI v1 (ZeroEventHub): use protocol 'v1' or 'auto' with partitionCount";

test("protocol 'v2' against a FeedAPI v1 server (400 on the bare GET): bad-options saying to use v1, one request", async () => {
  await control({ feed: 'feed', discovery: { status: 400, times: 10 } });
  const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', onRetry: () => assert.fail('no retry') });
  await assert.rejects(drain(feed), (e) => e.code === 'bad-options' && e.message === V1_SERVER);
  assert.equal(discoveries(), 1);
  assert.equal(eventRequests().length, 0);
  // protocol 'auto' negotiates once: v1, and v1 needs partitionCount.
  const auto = api.openFeed(`${server.url}/feed`, { protocol: 'auto' });
  await assert.rejects(drain(auto), (e) => e.code === 'bad-options' && e.message === V1_SERVER);
  assert.equal(discoveries(), 2);
});

test('an events request answered 400 (not 409) fails the feed at once: no rediscovery, no retry', async () => {
  // Partition 9 is listed but the server has no such partition: its events requests answer 400.
  await control({ feed: 'feed', discovery: { partitions: [{ id: '9' }] } });
  let retries = 0;
  const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', retry: { initialMs: 1, maxMs: 1 }, onRetry: () => retries++ });
  await assert.rejects(drain(feed), (e) => e.code === 'http-status' && e.status === 400);
  assert.equal(retries, 0);
  assert.equal(discoveries(), 1);
  assert.equal(eventRequests().length, 1);
});

test('a 409 in the middle of a closed partition: rediscovered, the rest of it is still read, then its children', async () => {
  let zeroRequests = 0;
  const retries = [];
  const ids = [];
  const feed = api.openFeed(`${server.url}/split`, {
    protocol: 'v2',
    pageSizeHint: 50,
    retry: { initialMs: 1, maxMs: 2 },
    onRetry: (r) => retries.push([r.error.status, r.attempt]),
    fetch: async (request) => {
      const u = new URL(request.url);
      if (u.pathname === '/split/events' && u.searchParams.get('partition') === '0' && ++zeroRequests === 3) {
        await control({ feed: 'split', conflicts: 1 }); // this request gets the 409
      }
      return fetch(request);
    },
  });
  for await (const e of feed) ids.push(idOf(e));
  assert.deepEqual(retries, [[409, 1]]);
  assert.equal(discoveries('split'), 2);
  assert.equal(new Set(ids).size, ids.length, 'no event twice');
  assert.deepEqual([...ids].sort(), expectedIds(await expected('feed=split')).sort());
  const lastOfParent = Math.max(...ids.map((id, i) => (id.startsWith('0-') ? i : -1)));
  assert.ok(ids.findIndex((id) => !id.startsWith('0-')) > lastOfParent, 'the children after the whole parent');
});

test('fair turns: each partition is read for PAGES_PER_TURN pages (and the first batch of one more), round robin', async () => {
  const log = [];
  const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', pageSizeHint: 50, fetch: timedFetch(log) });
  await drain(feed);
  // 500 events a partition, 50 a page: 10 pages of events, then a page that brings none (caught up).
  const perTurn = PAGES_PER_TURN + 1;
  const pages = 11;
  assert.notEqual(pages % perTurn, 0, 'no turn ends exactly at the empty page');
  const runs = [];
  for (const r of log.filter((r) => r.path === '/feed/events')) {
    if (runs.at(-1)?.[0] === r.partition) runs.at(-1)[1]++;
    else runs.push([r.partition, 1]);
  }
  // The round robin starts at a partition chosen at random (the core's `start`), then goes on in list order.
  const from = ['0', '1', '2', '3'].indexOf(runs[0]?.[0]);
  const order = ['0', '1', '2', '3', '0', '1', '2'].slice(from, from + 4);
  const want = [];
  for (let left = pages; left > 0; left -= perTurn) for (const p of order) want.push([p, Math.min(perTurn, left)]);
  assert.deepEqual(runs, want);
});

test('not live: caught up is signalled once, at the end; cursors and lag() of every partition', async () => {
  let caughtUp = 0;
  const signals = [];
  const perPartition = new Map();
  const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', pageSizeHint: 50, onCaughtUp: () => caughtUp++ });
  for await (const batch of feed.batches()) {
    if (batch.signal !== undefined) signals.push([batch.signal, batch.events.length]);
    for (const e of batch.events) perPartition.set(e.partition, (perPartition.get(e.partition) ?? 0) + 1);
  }
  assert.equal(caughtUp, 1);
  assert.deepEqual(signals, [['caught-up', 0]]);
  assert.deepEqual(Object.fromEntries(perPartition), { 0: 500, 1: 500, 2: 500, 3: 500 });
  assert.deepEqual(feed.cursors(), Object.fromEntries(['0', '1', '2', '3'].map((p) => [p, cursorAt('feed', p, 500)])));
  // The latest page with events of each partition brought 50 of them (pages are counted across the partitions' readers).
  for (const p of [0, 1, 2, 3]) assert.equal(feed.lag()[p].eventsInLastPage, 50, `partition ${p}`);
  // One page of 500 events comes in several batches: they are one page.
  await control({ reset: true });
  const big = api.openFeed(`${server.url}/feed`, { protocol: 'v2', pageSizeHint: 1000, partitions: [0, 1] });
  let batches = 0;
  for await (const batch of big.batches()) if (batch.events.some((e) => e.partition === 0)) batches++;
  assert.ok(batches >= 2, `one page in ${batches} batches`);
  assert.deepEqual([0, 1].map((p) => big.lag()[p].eventsInLastPage), [500, 500]);
});

test('live: a caught-up partition is polled again minIntervalMs later, caught up is signalled again only after news', async () => {
  const interval = 400;
  const log = [];
  const ids = [];
  let caughtUp = 0;
  let quiet;
  let appendedAt;
  const feed = api.openFeed(`${server.url}/feed`, {
    protocol: 'v2',
    pageSizeHint: 100,
    live: { minIntervalMs: interval },
    fetch: timedFetch(log),
    onCaughtUp: () => caughtUp++,
    // No signal: the waits must work without one (a stuck feed is closed after 10 s, and the counts below fail).
  });
  const guard = setTimeout(() => feed.close(), 10_000);
  for await (const batch of feed.batches()) {
    for (const e of batch.events) ids.push(idOf(e));
    if (batch.signal !== 'caught-up') continue;
    if (caughtUp === 1) {
      // Once every partition was polled again (pages with no events: no news, no second caught up), new events
      // come. Meanwhile the loop waits for the next batch (the feed reads only while it is asked for one).
      const at = log.length;
      const polled = () => new Set(log.slice(at).filter((r) => r.path === '/feed/events').map((r) => r.partition)).size === 4;
      void (async () => {
        while (!polled()) await new Promise((resolve) => setTimeout(resolve, 20));
        quiet = caughtUp;
        appendedAt = log.length;
        await control({ feed: 'feed', append: { partition: '2', count: 7 } });
      })();
    } else break;
  }
  clearTimeout(guard);
  feed.close();
  assert.equal(quiet, 1, 'polls that bring nothing do not signal caught up again');
  assert.equal(caughtUp, 2, 'caught up again once the new events were delivered');
  assert.equal(ids.length, 2007);
  assert.equal(new Set(ids).size, 2007);
  assert.deepEqual(ids.slice(2000), ['2-501', '2-502', '2-503', '2-504', '2-505', '2-506', '2-507']);
  assert.equal(discoveries(), 1, 'open partitions are polled without a new discovery');
  // Until the new events, each poll of a caught-up partition comes at least the interval after its previous request
  // (timers never fire early).
  const byPartition = new Map();
  for (const r of log.slice(0, appendedAt).filter((r) => r.path === '/feed/events')) byPartition.set(r.partition, [...(byPartition.get(r.partition) ?? []), r.at]);
  for (const [p, times] of byPartition) {
    // Requests 1..5 bring events, 6 brings none (caught up): each later one is a poll after a rest.
    const gaps = times.slice(6).map((t, i) => t - times[5 + i]);
    assert.ok(gaps.length >= 1 && gaps.every((g) => g >= interval - 5), `partition ${p}: gaps ${gaps.map(Math.round)}`);
  }
});

test('live (default interval) with every partition closed and read: discovery is made again at the interval, a new partition is read', async () => {
  await control({ feed: 'feed', discovery: { partitions: [{ id: '0', closed: true }] } });
  const log = [];
  const ids = [];
  let caughtUp = 0;
  const feed = api.openFeed(`${server.url}/feed`, {
    protocol: 'v2',
    live: true,
    fetch: timedFetch(log),
    onCaughtUp: () => caughtUp++,
    signal: AbortSignal.timeout(10_000),
  });
  for await (const batch of feed.batches()) {
    for (const e of batch.events) ids.push(idOf(e));
    if (batch.signal !== 'caught-up') continue;
    if (caughtUp === 1) {
      await control({ feed: 'feed', addPartition: { partition: '6', count: 20 }, discovery: { partitions: [{ id: '0', closed: true }, { id: '6' }] } });
    } else break;
  }
  feed.close();
  assert.equal(ids.length, 520);
  assert.equal(new Set(ids).size, 520);
  assert.ok(ids.slice(500).every((id) => id.startsWith('6-')));
  assert.deepEqual(new Set(eventRequests().map(partitionOf)), new Set(['0', '6']), 'the closed partition is not read again');
  const found = log.filter((r) => r.path === '/feed').map((r) => r.at);
  assert.ok(found.length >= 2);
  const gaps = found.slice(1).map((t, i) => t - found[i]);
  assert.ok(gaps.every((g) => g >= 250 - 5), `discoveries ${gaps.map(Math.round)} ms apart (the default live interval is 250 ms)`);
});

test('skipEventTypes goes to the server; the cursors still reach the end of every partition', async () => {
  const skip = ['OrderCreated', 'Payment.Captured'];
  const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', pageSizeHint: 200, skipEventTypes: skip });
  const ids = [];
  for await (const e of feed) ids.push(idOf(e));
  assert.deepEqual(ids.sort(), expectedIds(await expected(`feed=feed&skip-event-types=${skip.join(';')}`)).sort());
  assert.ok(eventRequests().every((r) => new URL(r.url, 'http://x').searchParams.get('skip-event-types') === skip.join(';')));
  assert.ok(eventRequests().every((r) => !new URL(r.url, 'http://x').searchParams.has('event-types')));
  assert.deepEqual(feed.cursors(), Object.fromEntries(['0', '1', '2', '3'].map((p) => [p, cursorAt('feed', p, 500)])));
});

test('a split child starts from the delivered cursor of the first of its cursorFromPartitions that has one', async () => {
  await control({ feed: 'cosmos', split: true });
  // Both children name an ancestor with no cursor (5) before the one that has one (0).
  const partitions = [
    { id: '1', cursorFromPartitions: ['5', '0'] },
    { id: '2', cursorFromPartitions: ['5', '0'] },
  ];
  await control({ feed: 'cosmos', discovery: { partitions } });
  const from = cursorAt('cosmos', '0', 300);
  const feed = api.openFeed(`${server.url}/cosmos`, { protocol: 'v2', pageSizeHint: 100, cursors: { 0: from } });
  const ids = [];
  for await (const e of feed) ids.push(`${e.partition}-${(typeof e.data === 'string' ? JSON.parse(e.data) : e.data).seq}`);
  const want = Object.entries(await expected('feed=cosmos')).flatMap(([p, evs]) => evs.filter((e) => e.seq > 300).map((e) => `${p}-${e.seq}`));
  assert.ok(want.length > 0);
  assert.deepEqual(ids.sort(), want.sort());
  const first = (p) => new URL(requests('/cosmos/events').find((r) => partitionOf(r) === p).url, 'http://x').searchParams.get('cursor');
  assert.deepEqual([first('1'), first('2')], [from, from]);
});

test('discovery retries: onRetry per attempt with the error and its delay; an answered events request resets the count', async () => {
  await control({ feed: 'feed', discovery: { status: 503, times: 2 } });
  const retries = [];
  let events = 0;
  const feed = api.openFeed(`${server.url}/feed`, {
    protocol: 'v2',
    retry: { initialMs: 1, maxMs: 5, maxAttempts: 2 },
    onRetry: ({ error, attempt, delayMs }) => retries.push({ code: error.code, status: error.status, attempt, ok: delayMs >= 0 && delayMs <= 5 }),
  });
  for await (const _ of feed) {
    if (++events === 100) await control({ feed: 'feed', conflicts: 2 });
  }
  assert.equal(events, 2000);
  const s = (status, attempt) => ({ code: 'http-status', status, attempt, ok: true });
  assert.deepEqual(retries, [s(503, 1), s(503, 2), s(409, 1), s(409, 2)], 'maxAttempts 2 is per run of failures');
  assert.equal(discoveries(), 5);
});

test('stats() and onResponse count every request of a v2 feed: the pages that bring nothing too', async () => {
  let responses = 0;
  const statuses = [];
  const feed = api.openFeed(`${server.url}/feed`, {
    protocol: 'v2',
    pageSizeHint: 100,
    onResponse: (r) => {
      responses++;
      statuses.push(r.status);
    },
  });
  await drain(feed);
  const answered = server.state.log.filter((r) => pathOf(r) !== '/_control');
  assert.equal(answered.length, 1 + 4 * 6, 'one discovery; per partition 5 pages of events and an empty one');
  assert.equal(responses, answered.length, 'onResponse once per request');
  assert.ok(statuses.every((s) => s === 200));
  assert.equal(feed.stats().pages, 4 * 6, 'pages read to the end of their body');
  assert.equal(feed.stats().events, 2000);
});

test('a server that keeps answering 409: the feed fails with the 409 after maxAttempts retries (delays of 0 ms too)', async () => {
  await control({ feed: 'feed', conflicts: 1e9 });
  const attempts = [];
  const feed = api.openFeed(`${server.url}/feed`, {
    protocol: 'v2',
    retry: { initialMs: 0, maxMs: 0, maxAttempts: 2 },
    onRetry: (r) => attempts.push([r.attempt, r.delayMs]),
    signal: AbortSignal.timeout(10_000),
  });
  await assert.rejects(drain(feed), (e) => e.code === 'http-status' && e.status === 409);
  assert.deepEqual(attempts, [[1, 0], [2, 0]]);
  assert.equal(eventRequests().length, 3);
  assert.equal(discoveries(), 3);
});

test('an abort while a live feed waits to poll again ends it with aborted at once, not at the end of the wait', async () => {
  const ac = new AbortController();
  let atAbort;
  const feed = api.openFeed(`${server.url}/feed`, {
    protocol: 'v2',
    live: { minIntervalMs: 600_000 },
    signal: ac.signal,
    onCaughtUp: () =>
      setTimeout(() => {
        atAbort = server.state.log.length;
        ac.abort(new Error('stop'));
      }, 20),
  });
  let events = 0;
  await assert.rejects(
    (async () => {
      for await (const _ of feed) events++;
    })(),
    (e) => e.code === 'aborted',
  );
  assert.equal(events, 2000);
  assert.equal(server.state.log.length, atAbort, 'no request after the abort');
});
