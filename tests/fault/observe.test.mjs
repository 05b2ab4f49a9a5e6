// feed.state, onStateChange and feed.stats() over real HTTP (tests/fault/scripted-server.mjs on 127.0.0.1): a scripted
// server walks a feed through its states (catching up, a 503 retried, live, closed; a failure), and the counters are
// checked against what the server really sent.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';
import { startScriptedServer } from './scripted-server.mjs';

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
