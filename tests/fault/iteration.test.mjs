// Iteration misuse and hooks that never settle, over real HTTP on 127.0.0.1: `return()` or `throw()` while a `next()` waits for
// a body that does not come (events() and batches()), and close() or the caller's signal while onCaughtUp /
// onFellBehind (the same await) has not settled. Each must end the iteration at once and close the request, not wait for the server
// or the hook (the idle limit is set far beyond the test's own timeout, so only a hang can pass it).
import assert from 'node:assert/strict';
import http from 'node:http';
import { after, before, test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';
import { startScriptedServer } from './scripted-server.mjs';

const EVENTS = '{"partition":0,"data":1}\n{"partition":0,"cursor":"1"}\n';
/** Far beyond the test's timeout: the watchdog cannot be what ends a case. */
const IDLE = 600_000;

let server;
/** A server that sends the head of a 200 and then nothing; `closed` counts the requests the client closed. */
let stall;
before(async () => {
  server = await startScriptedServer({
    '/events': (url) => ({ body: url.searchParams.get('cursor0') === '_first' ? EVENTS : '' }),
  });
  const open = new Set();
  const s = http.createServer((req, res) => {
    open.add(res);
    stall.requests++;
    req.on('close', () => stall.closed++);
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write('');
  });
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  stall = {
    base: `http://127.0.0.1:${s.address().port}`,
    requests: 0,
    closed: 0,
    close: () => new Promise((r) => { for (const res of open) res.destroy(); s.closeAllConnections(); s.close(() => r()); }),
  };
});
after(async () => {
  await server.close();
  await stall.close();
});

/** Resolves once `cond()` holds (polled; the test's timeout bounds it). */
async function until(cond) {
  while (!cond()) await new Promise((r) => setTimeout(r, 10));
}

/** Settles with `['done', value]`, `['error', code]`, or `['pending']` if `p` has not settled after the others. */
async function settled(p) {
  return Promise.race([
    p.then((v) => ['done', v], (e) => ['error', e?.code ?? String(e)]),
    new Promise((r) => setTimeout(() => r(['pending']), 2_000)),
  ]);
}

for (const how of ['events', 'batches']) {
  test(`${how}(): return() while a next() waits for the body ends both at once and closes the request`, async () => {
    const feed = api.openFeed(`${stall.base}/feed`, { partitionCount: 1, idleTimeoutMs: IDLE });
    const it = feed[how]();
    const before = { requests: stall.requests, closed: stall.closed };
    const pending = it.next();
    await until(() => stall.requests > before.requests);
    assert.deepEqual(await settled(it.return()), ['done', { value: undefined, done: true }]);
    assert.deepEqual(await settled(pending), ['done', { value: undefined, done: true }]);
    await until(() => stall.closed > before.closed);
    assert.equal(feed.state, 'closed');
    assert.deepEqual(await it.next(), { value: undefined, done: true });
  });
}

for (const how of ['events', 'batches']) {
  test(`${how}(): throw(e) while a next() waits for the body rejects with e at once and closes the request`, async () => {
    const feed = api.openFeed(`${stall.base}/feed`, { partitionCount: 1, idleTimeoutMs: IDLE });
    const it = feed[how]();
    const before = { requests: stall.requests, closed: stall.closed };
    const pending = it.next();
    await until(() => stall.requests > before.requests);
    assert.deepEqual(await settled(it.throw(new Error('the caller stopped'))), ['error', 'Error: the caller stopped']);
    assert.deepEqual(await settled(pending), ['done', { value: undefined, done: true }]);
    await until(() => stall.closed > before.closed);
    assert.equal(feed.state, 'closed');
    assert.deepEqual(await it.next(), { value: undefined, done: true });
  });
}

test('onCaughtUp that never settles: close() ends the iteration at once, without the batch the hook was told of', async () => {
  let told = 0;
  const feed = api.openFeed(`${server.base}/events`, {
    partitionCount: 1,
    idleTimeoutMs: IDLE,
    onCaughtUp: () => {
      told++;
      return new Promise(() => {});
    },
  });
  const got = [];
  const run = (async () => { for await (const b of feed.batches()) got.push(b.signal ?? b.events.length); })();
  await until(() => told === 1);
  feed.close();
  assert.deepEqual(await settled(run), ['done', undefined]);
  assert.deepEqual(got, [1]);
  assert.equal(feed.state, 'closed');
});

test('onCaughtUp that never settles: the caller\'s signal ends the iteration at once with aborted', async () => {
  const ac = new AbortController();
  let told = 0;
  const feed = api.openFeed(`${server.base}/events`, {
    partitionCount: 1,
    idleTimeoutMs: IDLE,
    signal: ac.signal,
    onCaughtUp: () => {
      told++;
      return new Promise(() => {});
    },
  });
  const run = (async () => { for await (const b of feed.batches()) void b; })();
  await until(() => told === 1);
  ac.abort(new Error('stop'));
  assert.deepEqual(await settled(run), ['error', 'aborted']);
  assert.equal(feed.state, 'failed');
});

test('close() from inside onCaughtUp: no batch is handed out after it', async () => {
  const feed = api.openFeed(`${server.base}/events`, { partitionCount: 1, onCaughtUp: () => feed.close() });
  const got = [];
  for await (const b of feed.batches()) got.push(b.signal ?? b.events.length);
  assert.deepEqual(got, [1]);
});

// A fetch of the caller's that does not pass the request's signal on answers after close(); or a getter of the answer
// closes the feed: the body of that answer is cancelled (the server sees the request closed), not left open. The test
// holds on to each answer, so that no finalizer of the runtime's closes it for us.
const answers = [];
for (const [name, fetchOf] of [
  ['a fetch of the caller\'s that ignores the request\'s signal answers after close()', (feed) => async (request) => {
    await until(() => feed.closedByTest);
    const response = await fetch(request.url);
    answers.push(response);
    return response;
  }],
  ['a getter of the answer closes the feed', (feed) => async (request) => {
    const response = await fetch(request.url);
    answers.push(response);
    return new Proxy(response, {
      get(target, key) {
        if (key === 'statusText') feed.close();
        const value = Reflect.get(target, key);
        return typeof value === 'function' ? value.bind(target) : value;
      },
    });
  }],
]) {
  test(`${name}: its body is cancelled, the request closed`, async () => {
    const holder = {};
    const before = { requests: stall.requests, closed: stall.closed };
    const feed = api.openFeed(`${stall.base}/feed`, { partitionCount: 1, idleTimeoutMs: IDLE, fetch: (r) => fetchOf(holder.feed)(r) });
    holder.feed = feed;
    const pending = feed.batches().next();
    if (name.includes('after close()')) {
      feed.close();
      feed.closedByTest = true;
    }
    assert.deepEqual(await settled(pending), ['done', { value: undefined, done: true }]);
    await until(() => stall.requests > before.requests);
    assert.deepEqual(await settled(until(() => stall.closed > before.closed)), ['done', undefined], 'the request is still open');
  });
}
