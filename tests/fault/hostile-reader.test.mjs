// The wasm reader against hostile callers and servers (issue 15): re-entrant close() from every user callback, bodies
// that are not web streams, error bodies that never come, thousands of pages on one reader, header values that
// cannot be sent, refused connections and timers beyond what setTimeout accepts. Real HTTP on 127.0.0.1 against the
// built dist/; scenarios that could crash the process run in a child (tests/fault/hostile-child.mjs).
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import http from 'node:http';
import { fileURLToPath } from 'node:url';
import { inspect } from 'node:util';
import { after, before, test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';
import { parseBatch } from '../../dist/decode.js';
import { FeedReader } from '../../dist/reader/reader.js';
import { startScriptedServer } from './scripted-server.mjs';

const CHILD = fileURLToPath(new URL('./hostile-child.mjs', import.meta.url));
const PAGES = 2_000;
const EVENTS = '{"partition":0,"data":1}\n{"partition":0,"cursor":"1"}\n';

let server;
before(async () => {
  server = await startScriptedServer({
    '/busy': { status: 503, headers: { 'retry-after': '0' }, body: 'busy' },
    '/events': (url) => ({ body: url.searchParams.get('cursor0') === '_first' ? EVENTS : '' }),
    '/pages': (url) => {
      const c = url.searchParams.get('cursor0');
      const n = c === '_first' ? 0 : Number(c);
      return { body: n >= PAGES ? '' : `{"partition":0,"data":${n}}\n{"partition":0,"cursor":"${n + 1}"}\n` };
    },
  });
});
after(async () => { await server.close(); });

/** Runs one scenario of hostile-child.mjs; resolves with its exit code, parsed output and stderr. */
function child(scenario, timeoutMs = 60_000) {
  return new Promise((resolve) => {
    execFile(process.execPath, [CHILD, scenario, server.base], { timeout: timeoutMs }, (error, stdout, stderr) => {
      const last = stdout.trim().split('\n').pop() ?? '';
      let out;
      try { out = JSON.parse(last); } catch { out = undefined; }
      resolve({ code: error ? (error.code ?? error.signal) : 0, out, stderr });
    });
  });
}

/** Requests the server saw on `path` since `from`. */
function requestsTo(path, from) {
  return server.requests.slice(from).filter((r) => r.url.pathname === path).length;
}

/** Every way an error may be shown or logged, every `cause` level included. */
function renderings(e) {
  const out = [e.message, String(e), e.stack ?? '', JSON.stringify(e), inspect(e, { depth: 20, showHidden: true })];
  for (let c = e.cause, i = 0; c !== undefined && c !== null && i < 10; c = c.cause, i++) {
    out.push(String(c), String(c?.message), String(c?.stack), inspect(c, { depth: 20, showHidden: true }));
  }
  return out;
}

async function drain(feed) {
  const events = [];
  for await (const ev of feed) events.push(ev.data);
  return events;
}

for (const [scenario, path, maxRequests] of [
  ['close-in-onRetry', '/busy', 1],
  ['close-in-requestHeaders', '/events', 0],
  ['close-in-fetch', '/events', 1],
  ['close-in-request-signal-listener', '/events', 0],
  ['close-in-signal-listener', '/busy', 1],
]) {
  test(`6: ${scenario}: the iteration ends cleanly, no trap, no further requests`, async () => {
    const from = server.requests.length;
    const { code, out, stderr } = await child(scenario);
    assert.equal(code, 0, `the child crashed: ${stderr.slice(0, 2000)}`);
    assert.ok(
      out.outcome.ended === 'cleanly' || out.outcome.code === 'aborted',
      `ended with ${JSON.stringify(out.outcome)}`,
    );
    assert.ok(requestsTo(path, from) <= maxRequests, `${requestsTo(path, from)} requests after close()`);
  });
}

test('5: a Node Readable body (async-iterable) is read like a web stream', async () => {
  const { code, out, stderr } = await child('node-readable-body');
  assert.equal(code, 0, `the child crashed: ${stderr.slice(0, 2000)}`);
  assert.deepEqual(out.outcome, { ended: 'cleanly', events: [1] });
});

for (const [scenario, pattern] of [
  ['string-body', /the response body is not a ReadableStream or an async iterable \(it is a string\)/],
  ['locked-body', /the response body cannot be read \(locked or already read\)/],
  ['read-body', /the response body cannot be read \(locked or already read\)/],
  ['throwing-reader', /the response body cannot be read/],
  ['non-byte-chunks', /the response body gave a chunk that is not a Uint8Array \(it is a string\)/],
  ['hostile-response', /the fetch you passed returned something that is not a Response/],
]) {
  test(`5: ${scenario}: a FeedError bad-options, the process does not crash`, async () => {
    const { code, out, stderr } = await child(scenario);
    assert.equal(code, 0, `the child crashed: ${stderr.slice(0, 2000)}`);
    assert.equal(out.outcome.ended, 'error', JSON.stringify(out.outcome));
    assert.equal(out.outcome.name, 'FeedError');
    assert.equal(out.outcome.code, 'bad-options', out.outcome.message);
    assert.match(out.outcome.message, pattern);
  });
}

test('5: a fetch whose promise breaks Promise.resolve (a throwing constructor getter) gives network, no crash', async () => {
  const { code, out, stderr } = await child('throwing-promise');
  assert.equal(code, 0, `the child crashed: ${stderr.slice(0, 2000)}`);
  assert.equal(out.outcome.code, 'network', JSON.stringify(out.outcome));
  assert.match(out.outcome.message, /failed before a response arrived: constructor exploded/);
});

test('a body of empty chunks that come at once does not spin: the idle watchdog ends it (stalled-body), the body is cancelled', async () => {
  const { code, out, stderr } = await child('empty-chunks-watchdog', 20_000);
  assert.equal(code, 0, `the child hung or crashed: ${stderr.slice(0, 2000)}`);
  assert.equal(out.outcome.code, 'stalled-body', JSON.stringify(out.outcome));
  assert.equal(out.outcome.cancelled, 1);
});

test('a body of empty chunks that come at once does not starve the timers: close() from one ends the iteration, the body is cancelled', async () => {
  const { code, out, stderr } = await child('empty-chunks-close', 20_000);
  assert.equal(code, 0, `the child hung or crashed: ${stderr.slice(0, 2000)}`);
  assert.deepEqual(out.outcome, { ended: 'cleanly', events: [], cancelled: 1 });
});

// A body of the caller's whose reads settle at once with bytes for ever (blank lines, checkpoints) must not starve
// the timers: every 1024th read of the reader first waits for a macrotask (js/src/reader/reader.ts).
for (const scenario of ['endless-blank-lines', 'endless-checkpoints']) {
  test(`${scenario}: a body whose reads give bytes at once for ever does not starve the timers: close() from one ends it`, async () => {
    const { code, out, stderr } = await child(scenario, 5_000);
    assert.equal(code, 0, `the child hung or crashed: ${stderr.slice(0, 2000)}`);
    assert.deepEqual(out.outcome, { ended: 'cleanly', events: [], cancelled: 1 });
  });
}

test('chunks whose length lies: a Proxy is refused (bad-options), a Uint8Array is read as the bytes it has; no wasm trap', async () => {
  const { code, out, stderr } = await child('lying-chunks', 20_000);
  assert.equal(code, 0, `the child hung or crashed: ${stderr.slice(0, 2000)}`);
  assert.deepEqual(out.outcome, { proxy: 'bad-options', subclass: [1], 'own-property': [1], after: [1] });
});

/** A server whose every answer is a 503 head with a body that never comes. */
async function stalledErrorServer() {
  const open = new Set();
  const s = http.createServer((req, res) => {
    open.add(res);
    res.writeHead(503, { 'content-type': 'text/plain' });
    res.write(''); // the head goes out; the body never does
  });
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  return {
    base: `http://127.0.0.1:${s.address().port}`,
    close: () => new Promise((r) => { s.closeAllConnections(); s.close(() => r()); }),
  };
}

test('10: a 503 whose body never comes obeys idleTimeoutMs (http-status within seconds)', async () => {
  const s = await stalledErrorServer();
  const started = Date.now();
  try {
    const feed = api.openFeed(`${s.base}/feed`, { partitionCount: 1, retry: false, idleTimeoutMs: 300 });
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('the feed hung')), 5_000).unref());
    await assert.rejects(Promise.race([drain(feed), timeout]), (e) => {
      assert.equal(e.code, 'http-status', e.message);
      assert.equal(e.status, 503);
      return true;
    });
    feed.close();
  } finally {
    await s.close();
  }
  assert.ok(Date.now() - started < 3_000, `${Date.now() - started} ms`);
});

test('10: aborting while the body of a 503 is read gives aborted, not http-status', async () => {
  const s = await stalledErrorServer();
  try {
    const ac = new AbortController();
    const feed = api.openFeed(`${s.base}/feed`, { partitionCount: 1, retry: false, signal: ac.signal, idleTimeoutMs: 60_000 });
    setTimeout(() => ac.abort(), 300);
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('the feed hung')), 5_000).unref());
    await assert.rejects(Promise.race([drain(feed), timeout]), (e) => {
      assert.equal(e.code, 'aborted', e.message);
      return true;
    });
    feed.close();
  } finally {
    await s.close();
  }
});

test(`14: ${PAGES} pages on one reader: no MaxListenersExceededWarning`, async () => {
  const { code, out, stderr } = await child('pages', 120_000);
  assert.equal(code, 0, `the child crashed: ${stderr.slice(0, 2000)}`);
  assert.deepEqual(out.outcome, { ended: 'cleanly', events: PAGES });
  assert.deepEqual(out.warnings.filter((w) => w.includes('MaxListeners')), []);
  assert.ok(!stderr.includes('MaxListenersExceededWarning'), stderr.slice(0, 2000));
});

const SECRET = 's3cr3t-H3ADER';
for (const [form, headers] of [
  ['a record', { 'X-Token': `${SECRET}\nInjected: 1` }],
  ['pairs', [['accept', 'x'], ['X-Token', `${SECRET}\r\nInjected: 1`]]],
  ['a Map', new Map([['X-Token', `${SECRET}\nx`]])],
]) {
  test(`15: a header value that cannot be sent (${form}) is bad-header, named, its value nowhere`, async () => {
    const from = server.requests.length;
    const feed = api.openFeed(`${server.base}/events`, { partitionCount: 1, requestHeaders: () => headers });
    await assert.rejects(drain(feed), (e) => {
      assert.ok(e instanceof api.FeedError);
      assert.equal(e.code, 'bad-header', e.message);
      assert.equal(e.message, 'bad-header: requestHeaders gave a header that cannot be sent: "X-Token" (its value is not shown) (page 1)');
      for (const text of renderings(e)) assert.ok(!text.includes(SECRET), `the value leaked: ${text.slice(0, 300)}`);
      return true;
    });
    assert.equal(requestsTo('/events', from), 0, 'nothing was sent');
  });
}

test('18: a refused connection names the method, the URL without its query and the root cause', async () => {
  const closed = await startScriptedServer({});
  const port = new URL(closed.base).port;
  await closed.close();
  const feed = api.openFeed(`${closed.base}/feed/v1?apikey=SECRET`, { partitionCount: 1, retry: false });
  await assert.rejects(drain(feed), (e) => {
    assert.equal(e.code, 'network');
    assert.equal(
      e.message,
      `network: GET http://127.0.0.1:${port}/feed/v1 failed before a response arrived: connect ECONNREFUSED 127.0.0.1:${port} (page 1)`,
    );
    for (const text of [e.message, String(e), e.stack]) assert.ok(!text.includes('SECRET'), text);
    return true;
  });
});

test('18: a custom fetch rejecting with a header value in its message: the value is not shown', async () => {
  const feed = api.openFeed(`${server.base}/feed?token=QSECRET`, {
    partitionCount: 1,
    retry: false,
    requestHeaders: () => ({ authorization: `Bearer ${SECRET}` }),
    fetch: (request) => Promise.reject(new Error(`could not send ${request.headers.get('authorization')} to ${request.url}`)),
  });
  await assert.rejects(drain(feed), (e) => {
    assert.equal(e.code, 'network');
    assert.match(e.message, /^network: GET http:\/\/127\.0\.0\.1:\d+\/feed failed before a response arrived: could not send /);
    assert.ok(!e.message.includes(SECRET) && !e.message.includes('QSECRET'), e.message);
    return true;
  });
});

test('9: timers the reader sets are clamped to 2^31-1 ms (an idle limit of 2^32-1 does not fire at once)', async () => {
  // The public options refuse such values (see the unit tests); the reader (js/src/reader/) is fed one directly to prove its own
  // timers clamp: unclamped, setTimeout would fire after 1 ms and call a body that is 300 ms late stalled.
  const s = http.createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    res.write('');
    setTimeout(() => res.end(EVENTS), 300);
  });
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const reader = new FeedReader(`http://127.0.0.1:${s.address().port}/feed`, {
    partitionCount: 1,
    cursors: ['_first'],
    retry: false,
    idleTimeoutMs: 2 ** 32 - 1,
  });
  try {
    const batch = await reader.next();
    assert.deepEqual(parseBatch(batch).events, [{ partition: 0, data: 1 }]);
  } finally {
    reader.close();
    reader.free();
    s.closeAllConnections();
    await new Promise((r) => s.close(() => r()));
  }
});

test('9: Retry-After: 86400 with retry.maxMs 200: the retry comes within about maxMs (needs the core cap)', async () => {
  let n = 0;
  const s = await startScriptedServer({
    '/later': (url) => (n++ === 0
      ? { status: 503, headers: { 'retry-after': '86400' }, body: 'later' }
      : { body: url.searchParams.get('cursor0') === '_first' ? EVENTS : '' }),
  });
  const delays = [];
  const started = Date.now();
  try {
    const feed = api.openFeed(`${s.base}/later`, {
      partitionCount: 1,
      retry: { initialMs: 1, maxMs: 200, maxAttempts: 3 },
      onRetry: ({ delayMs }) => delays.push(delayMs),
    });
    const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('the retry waited for Retry-After')), 5_000).unref());
    assert.deepEqual(await Promise.race([drain(feed), timeout]), [1]);
  } finally {
    await s.close();
  }
  assert.equal(delays.length, 1);
  assert.ok(delays[0] <= 200, `onRetry was told ${delays[0]} ms`);
  assert.ok(Date.now() - started < 2_000, `${Date.now() - started} ms`);
});

/** A server that takes every request and never answers (no head, no body); `aborted` counts requests whose client
 * went away. */
async function silentServer() {
  const s = { aborted: 0, requests: 0 };
  const server = http.createServer((req) => {
    s.requests++;
    req.socket.on('close', () => s.aborted++);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  s.base = `http://127.0.0.1:${server.address().port}`;
  s.close = () => new Promise((r) => { server.closeAllConnections(); server.close(() => r()); });
  return s;
}

for (const protocol of ['v2', 'auto']) {
  test(`6: ${protocol}: close() while the discovery request waits for its answer ends the iteration at once and aborts the request`, async () => {
    const s = await silentServer();
    try {
      const feed = api.openFeed(`${s.base}/feed`, { protocol, retry: false });
      const done = drain(feed);
      while (s.requests === 0) await new Promise((r) => setTimeout(r, 10));
      const closedAt = Date.now();
      feed.close();
      const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('the iteration did not end after close()')), 3_000).unref());
      assert.deepEqual(await Promise.race([done, timeout]), []);
      assert.ok(Date.now() - closedAt < 1_000, `${Date.now() - closedAt} ms after close()`);
      for (let i = 0; i < 100 && s.aborted === 0; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(s.aborted, 1, 'the discovery request was aborted');
    } finally {
      await s.close();
    }
  });
}

test('6: v2: an async onRetry that rejects on a discovery retry does not go unhandled (no crash)', async () => {
  const { code, out, stderr } = await child('v2-async-onRetry-rejects');
  assert.equal(code, 0, `the child crashed: ${stderr.slice(0, 2000)}`);
  assert.equal(out.outcome.code, 'http-status', JSON.stringify(out.outcome));
  assert.equal(out.retries, 2, 'onRetry was told of each retry');
});

for (const protocol of ['v1', 'v2']) {
  test(`${protocol}: idleTimeoutMs also bounds the wait for the response head (a server that never answers)`, async () => {
    const s = await silentServer();
    try {
      const retry = { maxAttempts: 1, initialMs: 10, maxMs: 10 };
      const feed = api.openFeed(`${s.base}/feed`, { protocol, partitionCount: 1, idleTimeoutMs: 300, retry });
      const timeout = new Promise((_, reject) => setTimeout(() => reject(new Error('no error within 3 s of idleTimeoutMs 300')), 3_000).unref());
      await assert.rejects(Promise.race([drain(feed), timeout]), (e) => {
        assert.ok(api.isFeedError(e, 'stalled-body'), String(e));
        // v2's first request is its discovery.
        const said = protocol === 'v1' ? /the response brought no bytes for 300 ms, after 0 bytes of its body/ : /the discovery response did not come whole within 300 ms/;
        assert.match(e.message, said);
        return true;
      });
      assert.equal(s.requests, 2, 'tried again once, as a stalled body is');
      for (let i = 0; i < 100 && s.aborted < 2; i++) await new Promise((r) => setTimeout(r, 10));
      assert.equal(s.aborted, 2, 'each unanswered request was dropped');
      feed.close();
    } finally {
      await s.close();
    }
  });
}

test('v2: a partition whose page never ends does not starve the others', async () => {
  const s = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/feed') {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ token: 't', partitions: [{ id: '0' }, { id: '1' }] }));
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    if (url.searchParams.get('partition') === '1') {
      res.end(url.searchParams.get('cursor') === '_first' ? '{"data":"one"}\n{"cursor":"1"}\n' : '{"cursor":"1"}\n');
      return;
    }
    let n = 0; // partition 0: an event and a checkpoint every 5 ms, for ever
    const t = setInterval(() => res.write(`{"data":${++n}}\n{"cursor":"${n}"}\n`), 5);
    res.on('close', () => clearInterval(t));
  });
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  try {
    const feed = api.openFeed(`http://127.0.0.1:${s.address().port}/feed`, { protocol: 'v2', maxBatchDelayMs: 20 });
    const stop = setTimeout(() => feed.close(), 4_000);
    let one = false;
    for await (const e of feed) {
      if (e.data === 'one') {
        one = true;
        feed.close();
      }
    }
    clearTimeout(stop);
    assert.ok(one, 'partition 1 was read within 4 s');
  } finally {
    s.closeAllConnections();
    await new Promise((r) => s.close(() => r()));
  }
});
