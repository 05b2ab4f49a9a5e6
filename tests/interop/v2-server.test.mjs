// The FeedAPI v2 client against the v2 reference server written from the spec (tests/v2_server/server.mjs), over
// real HTTP on 127.0.0.1: negotiation, every event once with data identical, type filters sent to the server and
// applied in the client when the server ignores them, auth, method-1 splits in order, a method-2 split with a token
// change in the middle of consumption, and a token rotation mid-run.
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';
import { SECRET, startV2Server } from '../v2_server/server.mjs';

let server;
before(async () => { server = await startV2Server(); });
after(async () => { await server.close(); });
beforeEach(async () => { await control({ reset: true }); });

async function control(body) {
  const r = await fetch(`${server.url}/_control`, { method: 'POST', body: JSON.stringify(body) });
  assert.ok(r.ok, `control ${JSON.stringify(body)}: ${r.status}`);
  return r.json();
}

async function expected(query) {
  const r = await fetch(`${server.url}/expected?${query}`);
  return (await r.json()).partitions;
}

/** Reads a feed to its end: the events, and a map seq key -> data text, checking nothing comes twice. */
async function readAll(feed, onEvent = () => {}) {
  const events = [];
  for await (const ev of feed) {
    events.push(ev);
    await onEvent(ev, events.length);
  }
  const keys = events.map((e) => `${e.partition}:${JSON.stringify(e.data)}`);
  assert.equal(new Set(keys).size, keys.length, 'no event twice');
  return events;
}

/** The cursor after the last event of each partition of a feed (the server's cursors: base64url of feed|partition|seq). */
async function endCursors(feedName) {
  const partitions = await expected(`feed=${feedName}`);
  return Object.fromEntries(
    Object.entries(partitions).map(([p, evs]) => [p, Buffer.from(`${feedName}|${p}|${evs.at(-1)?.seq ?? 0}`).toString('base64url')]),
  );
}

function sameAsExpected(events, partitions) {
  const want = Object.entries(partitions).flatMap(([p, evs]) => evs.map((e) => `${p}:${JSON.stringify(e.data)}`)).sort();
  const got = events.map((e) => `${e.partition}:${JSON.stringify(e.data)}`).sort();
  assert.equal(got.length, want.length, 'event count');
  assert.deepEqual(got, want, 'data identical to what the server holds');
}

test('v2 reference server: negotiated, every event once, data identical (string data kept as sent)', async (t) => {
  const events = await readAll(api.openFeed(`${server.url}/feed`, { pageSizeHint: 137 }));
  t.diagnostic(`v2 /feed: ${events.length} events`);
  sameAsExpected(events, await expected('feed=feed'));
  assert.ok(events.some((e) => typeof e.data === 'string'), 'string data delivered as a string');
});

test('v2 filters: exact names go to the server; a server that ignores them is filtered in the client', async (t) => {
  const filter = { include: ['OrderCreated', 'Payment.Captured'] };
  const want = await expected('feed=feed&event-types=OrderCreated;Payment.Captured');
  for (const feedName of ['feed', 'nofilter']) {
    const feed = api.openFeed(`${server.url}/${feedName}`, { protocol: 'v2', pageSizeHint: 200, filter });
    const events = await readAll(feed);
    t.diagnostic(`v2 /${feedName} filtered: ${events.length} events, cursors ${JSON.stringify(feed.cursors())}`);
    sameAsExpected(events, want);
    assert.deepEqual(feed.cursors(), await endCursors(feedName), 'the cursors reach the end of every partition');
  }
  // A filter that matches nothing: no event, yet every partition is read to its end (its checkpoints delivered).
  for (const feedName of ['feed', 'nofilter']) {
    const feed = api.openFeed(`${server.url}/${feedName}`, { protocol: 'v2', pageSizeHint: 200, filter: { include: ['NoSuchType'] } });
    assert.equal((await readAll(feed)).length, 0);
    assert.deepEqual(feed.cursors(), await endCursors(feedName), `/${feedName}: nothing kept, cursors at the end`);
  }
  const prefix = await readAll(api.openFeed(`${server.url}/nofilter`, { protocol: 'v2', filter: { include: [{ prefix: 'Payment.' }], exclude: [/Refunded$/] } }));
  assert.ok(prefix.length > 0 && prefix.every((e) => (typeof e.data === 'string' ? JSON.parse(e.data) : e.data).type === 'Payment.Captured'));
});

test('v2 auth: the request-headers hook reaches every request; without it, 401', async () => {
  const ok = await readAll(api.openFeed(`${server.url}/secure`, { protocol: 'v2', requestHeaders: () => ({ authorization: `Bearer ${SECRET}` }) }));
  assert.equal(ok.length, 2000);
  await assert.rejects(readAll(api.openFeed(`${server.url}/secure`, { protocol: 'v2' })), (e) => e.code === 'http-status' && e.status === 401);
});

test('v2 split (startsAfterPartition): the closed parent first, so every order version comes in order', async () => {
  const events = await readAll(api.openFeed(`${server.url}/split`, { pageSizeHint: 60 }));
  sameAsExpected(events, await expected('feed=split'));
  const last = new Map();
  for (const e of events) {
    const d = typeof e.data === 'string' ? JSON.parse(e.data) : e.data;
    assert.equal(d.version, (last.get(d.orderId) ?? 0) + 1, `order ${d.orderId} in order`);
    last.set(d.orderId, d.version);
  }
});

test('v2 token rotation mid-run and a method-2 split mid-consumption: rediscovered, nothing lost or repeated', async (t) => {
  // Rotation on /feed after 300 events.
  const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', pageSizeHint: 50 });
  const events = await readAll(feed, async (_, n) => { if (n === 300) await control({ feed: 'feed', rotateToken: true }); });
  sameAsExpected(events, await expected('feed=feed'));
  // /cosmos: read part of "0", stop, split (new token, children with cursorFromPartitions ["0"]), resume.
  const first = api.openFeed(`${server.url}/cosmos`, { protocol: 'v2', pageSizeHint: 40 });
  const before = [];
  const cursors = {};
  for await (const batch of first.batches()) {
    // Committed with its checkpoints, as a consumer does: exactly once across the stop.
    before.push(...batch.events);
    for (const c of batch.checkpoints) cursors[c.partition] = c.cursor;
    if (before.length >= 200) break;
  }
  await control({ feed: 'cosmos', split: true });
  const resumed = api.openFeed(`${server.url}/cosmos`, { protocol: 'v2', pageSizeHint: 40, cursors });
  const after = await readAll(resumed);
  const key = (e) => { const d = typeof e.data === 'string' ? JSON.parse(e.data) : e.data; return `${d.orderId}#${d.version}`; };
  const all = [...before, ...after].map(key);
  t.diagnostic(`v2 cosmos: ${before.length} before the split, ${after.length} after; cursors ${JSON.stringify(resumed.cursors())}`);
  assert.equal(new Set(all).size, all.length, 'no order version twice across the split');
  const want = Object.values(await expected('feed=cosmos')).flat().map((e) => { const d = typeof e.data === 'string' ? JSON.parse(e.data) : e.data; return `${d.orderId}#${d.version}`; });
  assert.deepEqual([...new Set(all)].sort(), [...new Set(want)].sort(), 'every order version of the redistributed history');
});
