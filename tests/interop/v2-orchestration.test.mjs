// FeedAPI v2 orchestration over real HTTP on 127.0.0.1 against a small scripted v2 publisher: negotiation (a bare
// GET: 400 on v1, discovery JSON on v2), a closed partition read before the one that startsAfterPartition it, a split
// whose child takes its cursor from the ancestor (cursorFromPartitions), a token change mid-run answered with 409
// and followed by a new discovery, server-side event-type filters, and `data` given as a string.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';
import { startScriptedServer } from '../fault/scripted-server.mjs';

/** partition id -> events (cursor = index + 1 as a string) */
const LOG = {
  0: Array.from({ length: 30 }, (_, i) => ({ type: i % 3 === 0 ? 'Order.Created' : 'Order.Shipped', p: 0, i })),
  1: Array.from({ length: 20 }, (_, i) => ({ type: 'Order.Shipped', p: 1, i })),
  7: Array.from({ length: 10 }, (_, i) => (i % 2 ? `raw-${i}` : { type: 'Payment.Captured', p: 7, i })),
};
let token = 't1';
let requestsSinceRotation = 0;
let rotateAfter = Infinity;
let server;
let v1;

function discovery() {
  return {
    token,
    exactlyOnce: true,
    partitions: [
      { id: '1', startsAfterPartition: '0' },
      { id: '0', closed: true },
      { id: '7', cursorFromPartitions: ['3'] },
    ],
  };
}

before(async () => {
  server = await startScriptedServer({
    '/feed': (url) => ({ headers: { 'content-type': 'application/json' }, body: JSON.stringify(discovery()) }),
    '/feed/events': (url) => {
      const q = url.searchParams;
      if (q.get('token') !== token) return { status: 409, body: 'token changed' };
      if (++requestsSinceRotation > rotateAfter) {
        token = `t${Number(token.slice(1)) + 1}`;
        requestsSinceRotation = 0;
        rotateAfter = Infinity;
        return { status: 409, body: 'token changed' };
      }
      const log = LOG[q.get('partition')];
      const cursor = q.get('cursor');
      const from = cursor === '_first' ? 0 : Number(cursor);
      const hint = Number(q.get('pagesizehint') ?? 4);
      const only = q.get('event-types')?.split(';');
      let body = '';
      let at = from;
      for (; at < Math.min(log.length, from + hint); at++) {
        const e = log[at];
        const type = typeof e === 'string' ? 'raw' : e.type;
        if (only && !only.includes(type)) continue;
        body += `${JSON.stringify({ data: e })}\n`;
      }
      // SPEC: every response carries at least one cursor, also when there is nothing new.
      body += `${JSON.stringify({ cursor: String(at) })}\n{"resync":"a future command, ignored"}\n`;
      return { body };
    },
  });
  v1 = await startScriptedServer({ '/v1': { status: 400, body: '{"detail":"Parameter n not found"}' } });
});
after(async () => {
  await server.close();
  await v1.close();
});

test('v2: closed parent first, split children, a token change mid-run: every event once', async (t) => {
  token = 't1';
  rotateAfter = 7;
  const seen = [];
  const feed = api.openFeed(`${server.base}/feed`, { pageSizeHint: 4, cursors: { 3: '4' } }); // protocol: 'auto'
  for await (const ev of feed) seen.push(ev);
  const key = (e) => `${e.partition}:${typeof e.data === 'string' ? e.data : e.data.i}`;
  const keys = seen.map(key);
  t.diagnostic(`v2: ${seen.length} events, token now ${token}, cursors ${JSON.stringify(feed.cursors())}`);
  assert.equal(new Set(keys).size, keys.length, 'no event twice');
  const want = [
    ...LOG[0].map((e) => `0:${e.i}`),
    ...LOG[1].map((e) => `1:${e.i}`),
    ...LOG[7].slice(4).map((e, k) => `7:${typeof e === 'string' ? e : e.i}`),
  ];
  assert.deepEqual([...keys].sort(), [...want].sort(), 'every event of 0 and 1, and of 7 after the inherited cursor 4');
  const firstOf1 = keys.indexOf('1:0');
  assert.ok(keys.lastIndexOf(`0:${LOG[0].length - 1}`) < firstOf1, 'the closed parent is read to its end before its child');
  assert.notEqual(token, 't1', 'the token changed during the run');
  assert.deepEqual(feed.cursors(), { 0: '30', 1: '20', 3: '4', 7: '10' });
  assert.equal(seen.find((e) => e.partition === 7 && typeof e.data === 'string')?.data, 'raw-5', 'string data kept');
});

test('v2: event-types are sent to the server, checkpoints still advance past filtered events', async () => {
  token = 't1';
  rotateAfter = Infinity;
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
