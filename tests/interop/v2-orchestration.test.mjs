// FeedAPI v2 orchestration over real HTTP on 127.0.0.1 against a small scripted v2 publisher (v2-publisher.mjs):
// negotiation (a bare GET: 400 on v1, discovery JSON on v2), a closed partition read before the one that
// startsAfterPartition it, a split whose child takes its cursor from the ancestor (cursorFromPartitions), a token
// change mid-run answered with 409 and followed by a new discovery, server-side event-type filters, `data` as a string.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';
import { startScriptedServer } from '../fault/scripted-server.mjs';
import { eventKey, expectedKeys, LOG, startV2Publisher } from './v2-publisher.mjs';

let server;
let v1;
before(async () => {
  server = await startV2Publisher();
  v1 = await startScriptedServer({ '/v1': { status: 400, body: '{"detail":"Parameter n not found"}' } });
});
after(async () => {
  await server.close();
  await v1.close();
});

test('v2: closed parent first, split children, a token change mid-run: every event once', async (t) => {
  server.rotateTokenAfter(7);
  const seen = [];
  const feed = api.openFeed(`${server.base}/feed`, { pageSizeHint: 4, cursors: { 3: '4' } }); // protocol: 'auto'
  for await (const ev of feed) seen.push(ev);
  const keys = seen.map((e) => eventKey(e.partition, e.data));
  t.diagnostic(`v2: ${seen.length} events, token now ${server.token()}, cursors ${JSON.stringify(feed.cursors())}`);
  assert.equal(new Set(keys).size, keys.length, 'no event twice');
  assert.deepEqual([...keys].sort(), [...expectedKeys()].sort(), 'every event of 0 and 1, and of 7 after the inherited cursor 4');
  assert.ok(keys.lastIndexOf(`0:${LOG[0].length - 1}`) < keys.indexOf('1:0'), 'the closed parent is read to its end before its child');
  assert.notEqual(server.token(), 't1', 'the token changed during the run');
  assert.deepEqual(feed.cursors(), { 0: '30', 1: '20', 3: '4', 7: '10' });
  assert.equal(seen.find((e) => e.partition === 7 && typeof e.data === 'string')?.data, 'raw-5', 'string data kept');
});

test('v2: event-types are sent to the server, checkpoints still advance past filtered events', async () => {
  server.rotateTokenAfter(Infinity);
  const feed = api.openFeed(`${server.base}/feed`, { protocol: 'v2', pageSizeHint: 5, eventTypes: ['Order.Created'] });
  const seen = [];
  for await (const ev of feed) seen.push(ev);
  assert.deepEqual(seen.map((e) => e.data.i), LOG[0].filter((e) => e.type === 'Order.Created').map((e) => e.i));
  assert.equal(feed.cursors()[1], '20', 'partition 1 had no matching event, its cursor moved to the end anyway');
  const sent = server.requests.filter((r) => r.url.pathname === '/feed/events').at(-1).url.searchParams;
  assert.equal(sent.get('event-types'), 'Order.Created');
});

test('negotiation: a v1 server (400 on a bare GET) needs partitionCount; v2 options are checked', async () => {
  const feed = api.openFeed(`${v1.base}/v1`, {});
  await assert.rejects((async () => { for await (const _ of feed); })(), (e) => e.code === 'bad-options' && /v1/.test(e.message));
  assert.throws(() => api.openFeed(`${server.base}/feed`, { eventTypes: ['a'], skipEventTypes: ['b'] }), (e) => e.code === 'bad-options');
  assert.throws(() => api.openFeed(`${server.base}/feed`, { cursors: { 40000: 'x' } }), (e) => e.code === 'bad-options');
});

test('v2 with consume(): stopped every 3 batches and resumed from the store, every event applied once', async (t) => {
  server.rotateTokenAfter(11);
  const store = api.memoryStore();
  const applied = [];
  let runs = 0;
  for (;;) {
    runs++;
    const result = await api.consume(
      { url: `${server.base}/feed`, protocol: 'v2', pageSizeHint: 3, cursors: undefined },
      { store, key: 'v2', maxBatches: 3, handler: (batch) => { for (const e of batch.events) applied.push(eventKey(e.partition, e.data)); } },
    );
    if (result.caughtUp) break;
    assert.ok(runs < 200, 'consume makes progress');
  }
  t.diagnostic(`v2 consume: ${runs} runs, ${applied.length} events applied, token ${server.token()}`);
  assert.equal(new Set(applied).size, applied.length, 'no event applied twice');
  const want = [...LOG[0].map((e) => `0:${e.i}`), ...LOG[1].map((e) => `1:${e.i}`), ...LOG[7].map((e) => eventKey(7, e))];
  assert.deepEqual([...applied].sort(), want.sort());
});
