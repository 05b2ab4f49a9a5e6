// The FeedAPI v2 discovery, one attempt (js/src/source/discovery.ts) and the check of its document (parseDiscovery,
// the same module), on the built dist/, against a real HTTP server on 127.0.0.1: negotiation (400: v1), the 401 refresh,
// non-2xx answers (snippet, Retry-After), the size cap, stalled and cut bodies, aborts, and how the retry policy sees
// each failure (the core's `isFinal` of its code; `RETRY_AFTER`). Whole feeds over the v2 reference server: tests/interop/v2-hardening.test.mjs.
import assert from 'node:assert/strict';
import { getEventListeners } from 'node:events';
import http from 'node:http';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { openFeed } from '../../../dist/entrypoints/node.js'; // instantiates the wasm (discovery reads the core's defaults)
import { FeedError } from '../../../dist/errors.js';
import { discoverOnce, RETRY_AFTER } from '../../../dist/source/discovery.js';
import { isFinal } from '../../../dist/wasm/feedpump.js';
import { parseDiscovery } from '../../../dist/source/discovery.js';

/** How the core's backoff sees a discovery failure: whether no retry helps it, and its `Retry-After`. */
const failureOf = (e) => ({ final: isFinal(e.code), retryAfter: RETRY_AFTER.get(e) });

const DOC = { token: 't1', exactlyOnce: true, partitions: [{ id: '0', closed: true }, { id: '1', startsAfterPartition: '0', cursorFromPartitions: ['0'] }] };

let server;
let base;
const seen = [];
before(async () => {
  server = http.createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    seen.push({ path: url.pathname, auth: req.headers.authorization });
    const route = {
      '/doc': () => res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(DOC)),
      '/v1': () => res.writeHead(400).end('missing partition'),
      '/busy': () => res.writeHead(503, { 'retry-after': '7' }).end('  busy, come back later \n'),
      '/teapot': () => res.writeHead(418).end(),
      '/long-error': () => res.writeHead(500).end('e'.repeat(2000)),
      '/auth': () => {
        if (req.headers.authorization === 'fresh') res.writeHead(200).end(JSON.stringify(DOC));
        else res.writeHead(401).end('expired');
      },
      '/not-json': () => res.writeHead(200).end('{"token":'),
      '/not-utf8': () => res.writeHead(200).end(Buffer.from([0x22, 0xff, 0x22])),
      '/size': () => res.writeHead(200).end(url.searchParams.get('body')),
      '/stall': () => res.writeHead(200).write('{"token":'),
      '/cut': () => {
        res.writeHead(200, { 'content-length': '1000' }).write('{"token":');
        setImmediate(() => res.destroy());
      },
      '/stall-error': () => res.writeHead(503).write('half'),
      '/cut-error': () => {
        res.writeHead(503, { 'content-length': '1000' }).write('half');
        setImmediate(() => res.destroy());
      },
      '/empty': () => res.writeHead(204).end(),
      '/long-v1': () => res.writeHead(400).end('x'.repeat(5000)),
    }[url.pathname];
    if (route) route();
    else res.writeHead(404).end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${server.address().port}`;
});
after(async () => {
  server.closeAllConnections();
  await new Promise((resolve) => server.close(resolve));
});

async function fails(promise, code) {
  try {
    await promise;
  } catch (e) {
    assert.ok(e instanceof FeedError, `a FeedError, not ${e}`);
    assert.equal(e.code, code, e.message);
    return e;
  }
  assert.fail('it did not fail');
}

test('parseDiscovery: ids as strings 0..32767 (or JSON numbers), closed and exactlyOnce only when true, cursorFromPartitions default []', () => {
  assert.deepEqual(parseDiscovery(DOC), {
    token: 't1',
    exactlyOnce: true,
    partitions: [
      { id: 0, closed: true, startsAfterPartition: undefined, cursorFromPartitions: [] },
      { id: 1, closed: false, startsAfterPartition: 0, cursorFromPartitions: [0] },
    ],
  });
  const loose = parseDiscovery({ token: '', exactlyOnce: 'true', partitions: [{ id: 32767, closed: 'true', startsAfterPartition: 0, cursorFromPartitions: [3, '32767'] }] });
  assert.deepEqual(loose, { token: '', exactlyOnce: false, partitions: [{ id: 32767, closed: false, startsAfterPartition: 0, cursorFromPartitions: [3, 32767] }] });
  assert.deepEqual(parseDiscovery({ token: 't', partitions: [] }), { token: 't', exactlyOnce: false, partitions: [] });
});

test('parseDiscovery: every malformed part is bad-discovery naming where, the value shown cut at 60 characters', () => {
  const bad = (body, message) =>
    assert.throws(() => parseDiscovery(body), (e) => {
      assert.ok(e instanceof FeedError);
      assert.equal(e.code, 'bad-discovery');
      assert.equal(e.message, `bad-discovery: ${message}`);
      return true;
    });
  for (const body of [null, 5, 'x', undefined]) bad(body, 'the answer is not a JSON object');
  bad({ partitions: [] }, 'token must be a string');
  bad({ token: 1, partitions: [] }, 'token must be a string');
  bad({ token: 't' }, 'partitions must be an array');
  bad({ token: 't', partitions: {} }, 'partitions must be an array');
  bad({ token: 't', partitions: [{ id: '0' }, null] }, 'partitions[1] is not an object');
  bad({ token: 't', partitions: [7] }, 'partitions[0] is not an object');
  bad({ token: 't', partitions: [{ id: '0', cursorFromPartitions: '0' }] }, 'partitions[0].cursorFromPartitions must be an array');
  const id = (v, shown) => bad({ token: 't', partitions: [{ id: v }] }, `partitions[0].id must be a string holding an integer 0..32767, got ${shown}`);
  for (const v of ['01', '32768', '-1', '1e3', '', ' 1', '1.0', '123456']) id(v, JSON.stringify(v));
  for (const v of [32768, -1, 1.5, NaN, true, null, ['5'], { toString: () => '5' }]) id(v, JSON.stringify(v));
  id(undefined, 'undefined');
  id('9'.repeat(80), `"${'9'.repeat(59)}…`);
  id('9'.repeat(58), `"${'9'.repeat(58)}"`);
  bad(
    { token: 't', partitions: [{ id: '0', startsAfterPartition: 'x' }] },
    'partitions[0].startsAfterPartition must be a string holding an integer 0..32767, got "x"',
  );
  bad(
    { token: 't', partitions: [{ id: '0', cursorFromPartitions: ['1', -2] }] },
    'partitions[0].cursorFromPartitions[1] must be a string holding an integer 0..32767, got -2',
  );
});

test('discoverOnce: a 2xx answer is the parsed document; a 400 on the bare GET means FeedAPI v1', async () => {
  assert.deepEqual(await discoverOnce(`${base}/doc`, {}), { v1: false, discovery: parseDiscovery(DOC) });
  assert.deepEqual(await discoverOnce(`${base}/v1`, {}), { v1: true });
});

test('discoverOnce: a non-2xx answer is http-status with its status, trimmed snippet (512 bytes) and Retry-After for the policy', async () => {
  const busy = await fails(discoverOnce(`${base}/busy`, {}), 'http-status');
  assert.equal(busy.message, 'http-status: discovery answered 503 Service Unavailable: busy, come back later');
  assert.equal(busy.status, 503);
  assert.equal(busy.bodySnippet, 'busy, come back later');
  assert.deepEqual(failureOf(busy), { final: false, retryAfter: '7' });
  const teapot = await fails(discoverOnce(`${base}/teapot`, {}), 'http-status');
  assert.equal(teapot.message, "http-status: discovery answered 418 I'm a Teapot: ");
  assert.deepEqual(failureOf(teapot), { final: false, retryAfter: undefined });
  const long = await fails(discoverOnce(`${base}/long-error`, {}), 'http-status');
  assert.equal(long.bodySnippet, 'e'.repeat(512));
});

test('discoverOnce: a 401 asks requestHeaders once more with refresh: true; without the hook the 401 counts', async () => {
  const contexts = [];
  const from = seen.length;
  const found = await discoverOnce(`${base}/auth`, {
    requestHeaders: (context) => (contexts.push(context), { authorization: context.refresh ? 'fresh' : 'stale' }),
  });
  assert.equal(found.v1, false);
  assert.deepEqual(contexts, [{ refresh: false }, { refresh: true }]);
  assert.deepEqual(seen.slice(from).map((r) => r.auth), ['stale', 'fresh']);
  const still = await fails(discoverOnce(`${base}/auth`, { requestHeaders: () => ({ authorization: 'stale' }) }), 'http-status');
  assert.equal(still.status, 401);
  const bare = seen.length;
  const plain = await fails(discoverOnce(`${base}/auth`, {}), 'http-status');
  assert.equal(plain.status, 401);
  assert.equal(seen.length - bare, 1, 'no second request without a hook');
});

test('discoverOnce: the hook failing is final (hook-failed, cause kept); a refused header is bad-header, sent nowhere', async () => {
  const boom = new Error('hook broke');
  const threw = await fails(discoverOnce(`${base}/doc`, { requestHeaders: () => { throw boom; } }), 'hook-failed');
  assert.equal(threw.message, 'hook-failed: requestHeaders failed (Error; its error is the cause)');
  assert.equal(threw.cause, boom);
  assert.equal(failureOf(threw).final, true);
  const from = seen.length;
  const header = await fails(discoverOnce(`${base}/doc`, { requestHeaders: () => ({ 'x-key': 'SECRET\nx' }) }), 'bad-header');
  assert.equal(failureOf(header).final, true);
  const shape = await fails(discoverOnce(`${base}/doc`, { requestHeaders: () => 'SECRET' }), 'bad-options');
  assert.equal(failureOf(shape).final, true);
  assert.equal(seen.length, from);
});

test('discoverOnce: fetch failures are network (retried); a URL fetch refuses is bad-options without the URL\'s secrets', async () => {
  const net = await fails(discoverOnce(`${base}/doc?key=QSECRET`, { fetch: () => Promise.reject(new Error('down QSECRET')) }), 'network');
  assert.equal(net.message, `network: GET ${base}/doc failed before a response arrived: down [hidden]`);
  assert.deepEqual(failureOf(net), { final: false, retryAfter: undefined });
  const refused = await fails(discoverOnce(`http://user:PWSECRET@127.0.0.1:1/feed?key=QSECRET`, {}), 'bad-options');
  assert.equal(refused.message, 'bad-options: fetch refuses the discovery request to http://127.0.0.1:1/feed');
  assert.ok(!('cause' in refused));
});

test('discoverOnce: an aborted signal gives aborted, before the request and when fetch fails after the abort', async () => {
  const from = seen.length;
  const early = await fails(discoverOnce(`${base}/doc`, { signal: AbortSignal.abort() }), 'aborted');
  assert.equal(failureOf(early).final, true);
  assert.equal(seen.length, from, 'nothing was requested');
  const controller = new AbortController();
  const late = await fails(
    discoverOnce(`${base}/doc`, {
      signal: controller.signal,
      fetch: (request) => {
        assert.equal(request.signal.aborted, false);
        controller.abort();
        return Promise.reject(new Error('aborted under me'));
      },
    }),
    'aborted',
  );
  assert.ok(late);
  const hookAbort = new AbortController();
  await fails(discoverOnce(`${base}/doc`, { signal: hookAbort.signal, requestHeaders: () => (hookAbort.abort(), {}) }), 'aborted');
});

test('discoverOnce: a body that is not JSON (or not UTF-8) is bad-discovery; the size cap is maxLineLength bytes', async () => {
  const notJson = await fails(discoverOnce(`${base}/not-json`, {}), 'bad-discovery');
  assert.equal(notJson.message, 'bad-discovery: the discovery answer is not JSON');
  assert.ok(notJson.cause instanceof SyntaxError);
  const notUtf8 = await fails(discoverOnce(`${base}/not-utf8`, {}), 'bad-discovery');
  assert.equal(notUtf8.message, 'bad-discovery: the discovery answer is not JSON', 'not decoded with U+FFFD into a JSON string');
  const body = JSON.stringify({ token: 't', partitions: [] });
  const at = await discoverOnce(`${base}/size?body=${encodeURIComponent(body)}`, { maxLineLength: body.length });
  assert.equal(at.discovery.token, 't');
  const over = await fails(discoverOnce(`${base}/size?body=${encodeURIComponent(body)}`, { maxLineLength: body.length - 1 }), 'bad-discovery');
  assert.equal(over.message, `bad-discovery: the discovery document is larger than ${body.length - 1} bytes (maxLineLength)`);
  assert.equal(failureOf(over).final, true);
});

test('discoverOnce: a stalled body is stalled-body after idleTimeoutMs; a cut body truncated-body; both retried', async () => {
  const stalled = await fails(discoverOnce(`${base}/stall`, { idleTimeoutMs: 50 }), 'stalled-body');
  assert.equal(stalled.message, 'stalled-body: the discovery response did not come whole within 50 ms');
  assert.equal(failureOf(stalled).final, false);
  const cut = await fails(discoverOnce(`${base}/cut`, { idleTimeoutMs: 0 }), 'truncated-body');
  assert.equal(cut.message, 'truncated-body: the discovery body was cut: other side closed', 'the root of undici\'s cause chain');
  assert.ok('cause' in cut);
  assert.equal(failureOf(cut).final, false);
  // The body of an error answer that stalls: what came is the snippet.
  const half = await fails(discoverOnce(`${base}/stall-error`, { idleTimeoutMs: 50 }), 'http-status');
  assert.equal(half.bodySnippet, 'half');
  const controller = new AbortController();
  const reading = discoverOnce(`${base}/stall`, { signal: controller.signal, idleTimeoutMs: 0 });
  setTimeout(() => controller.abort(), 20);
  await fails(reading, 'aborted');
});

test('isFinal: the codes the retry policy does not know are final; the four it retries, and a v2 409, are not', () => {
  for (const code of ['bad-discovery', 'bad-options', 'hook-failed', 'bad-header', 'aborted', 'line-too-long', 'status', 'stalled', '']) {
    assert.equal(isFinal(code), true, code);
  }
  for (const code of ['network', 'stalled-body', 'truncated-body', 'http-status', 'conflict']) assert.equal(isFinal(code), false, code);
  assert.deepEqual(failureOf(new FeedError('http-status', 'x', { status: 500 })), { final: false, retryAfter: undefined });
});

/** A Response whose body is the caller's own stream (a custom fetch may give any): `chunks`, then open or closed. */
function streamed(chunks, { status = 200, end = true, onCancel } = {}) {
  const enc = new TextEncoder();
  let i = 0;
  return new Response(
    new ReadableStream({
      pull(c) {
        if (i < chunks.length) {
          const chunk = chunks[i++];
          if (chunk instanceof Error) c.error(chunk);
          else c.enqueue(enc.encode(chunk));
        } else if (end) c.close();
        else return new Promise(() => {}); // open: no more bytes, ever
      },
      cancel() {
        onCancel?.();
      },
    }),
    { status },
  );
}

test('discoverOnce: a body that errors with a hostile cause chain names its root (8 levels at most, a cycle ends)', async () => {
  let chain = new Error('level 9');
  for (let i = 8; i >= 0; i--) chain = new Error(`level ${i}`, { cause: chain });
  const deep = await fails(discoverOnce(`${base}/doc`, { fetch: async () => streamed(['{"to', chain]) }), 'truncated-body');
  assert.equal(deep.message, 'truncated-body: the discovery body was cut: level 8');
  const loop = new Error('loop');
  loop.cause = loop;
  const cyclic = await fails(discoverOnce(`${base}/doc`, { fetch: async () => streamed([loop]) }), 'truncated-body');
  assert.equal(cyclic.message, 'truncated-body: the discovery body was cut: loop');
  const nullCause = await fails(discoverOnce(`${base}/doc`, { fetch: async () => streamed([new Error('plain', { cause: null })]) }), 'truncated-body');
  assert.equal(nullCause.message, 'truncated-body: the discovery body was cut: plain');
  const cutError = await fails(discoverOnce(`${base}/cut-error`, { idleTimeoutMs: 0 }), 'http-status');
  assert.equal(cutError.bodySnippet, 'half', 'an error answer cut short keeps what came');
});

test('discoverOnce: an abort reaches the request and a body that ignores the signal; already aborted: nothing is called', async () => {
  let hooked = 0;
  await fails(discoverOnce(`${base}/doc`, { signal: AbortSignal.abort(), requestHeaders: () => (hooked++, {}) }), 'aborted');
  assert.equal(hooked, 0, 'the hook is not called once aborted');
  const inFlight = new AbortController();
  const pending = discoverOnce(`${base}/doc`, {
    signal: inFlight.signal,
    fetch: (request) => new Promise((_, reject) => request.signal.addEventListener('abort', () => reject(request.signal.reason))),
  });
  setImmediate(() => inFlight.abort());
  await fails(pending, 'aborted');
  const during = new AbortController();
  const reading = discoverOnce(`${base}/doc`, { signal: during.signal, idleTimeoutMs: 0, fetch: async () => streamed(['{"tok'], { end: false }) });
  setTimeout(() => during.abort(), 10);
  await fails(reading, 'aborted');
  const before = new AbortController();
  await fails(
    discoverOnce(`${base}/doc`, { signal: before.signal, idleTimeoutMs: 0, fetch: async () => (before.abort(), streamed(['{"tok'], { end: false })) }),
    'aborted',
  );
  const calm = await discoverOnce(`${base}/doc`, { signal: new AbortController().signal });
  assert.equal(calm.discovery.token, 't1', 'a signal not aborted changes nothing');
});

test('discoverOnce: a body in many reads with a signal leaves no abort listener behind', async () => {
  // The Request made with the signal follows it (one listener of the runtime's): reads must add none.
  const listenersAfter = async (parts) => {
    const signal = new AbortController().signal;
    const found = await discoverOnce(`${base}/doc`, { signal, fetch: async () => streamed(parts) });
    assert.equal(found.discovery.token, 't1');
    return getEventListeners(signal, 'abort').length;
  };
  const parts = JSON.stringify(DOC).match(/.{1,3}/g);
  assert.ok(parts.length > 20);
  assert.equal(await listenersAfter(parts), await listenersAfter([JSON.stringify(DOC)]));
});

test('discoverOnce: the size cap counts every read; a long error body is cut at 512 bytes and released', async () => {
  const over = await fails(discoverOnce(`${base}/doc`, { maxLineLength: 25, fetch: async () => streamed(['{"token":"', 'aaaaaaaaaa', 'aaaaaaaaaa"}']) }), 'bad-discovery');
  assert.match(over.message, /larger than 25 bytes/);
  let cancelled = 0;
  const long = await fails(
    discoverOnce(`${base}/doc`, { fetch: async () => streamed(Array(100).fill('e'.repeat(100)), { status: 500, end: false, onCancel: () => cancelled++ }) }),
    'http-status',
  );
  assert.equal(long.bodySnippet, 'e'.repeat(512));
  assert.equal(cancelled, 1, 'the rest of the body is cancelled');
});

test('discoverOnce: a 400 or 401 with a long body is still negotiation / a refresh; no body (204) is bad-discovery', async () => {
  assert.deepEqual(await discoverOnce(`${base}/long-v1`, {}), { v1: true });
  const refreshed = [];
  const found = await discoverOnce(`${base}/doc`, {
    fetch: async (r) => (refreshed.push(r.headers.get('x-r')), refreshed.length === 1 ? new Response('u'.repeat(5000), { status: 401 }) : fetch(r)),
    requestHeaders: ({ refresh }) => ({ 'x-r': String(refresh) }),
  });
  assert.equal(found.discovery.token, 't1');
  assert.deepEqual(refreshed, ['false', 'true']);
  const once = [];
  await discoverOnce(`${base}/doc`, { requestHeaders: (c) => (once.push(c.refresh), {}) });
  assert.deepEqual(once, [false], 'a 2xx: the hook is asked once');
  const empty = await fails(discoverOnce(`${base}/empty`, {}), 'bad-discovery');
  assert.equal(empty.message, 'bad-discovery: the discovery answer is not JSON');
  const bodiless = await fails(discoverOnce(`${base}/doc`, { fetch: async () => new Response(null, { status: 502 }) }), 'http-status');
  assert.equal(bodiless.bodySnippet, '');
});

test('discoverOnce: a FeedError the hook throws is wrapped as final too (only its own bad-header / bad-options pass)', async () => {
  const own = new FeedError('network', 'network: from the hook');
  const e = await fails(discoverOnce(`${base}/doc`, { requestHeaders: () => { throw own; } }), 'hook-failed');
  assert.equal(e.message, 'hook-failed: requestHeaders failed (FeedError; its error is the cause)');
  assert.equal(e.cause, own);
  assert.equal(failureOf(e).final, true, 'not retried');
});

test('Backoff.pollUrl: the core URL choice a v2 feed with several URLs discovers on (a failure of the URL\'s own moves it, a cool-down brings it back)', async () => {
  const { Backoff } = await import('../../../dist/wasm/feedpump.js');
  const b = new Backoff({ replicas: ['http://b/feed', 'http://c/feed'], failoverCooldownMs: 1_000, retry: { initialMs: 1, maxMs: 1 } });
  assert.equal(b.pollUrl(0), undefined, 'the feed URL first');
  assert.ok(b.handleFailure(10, 'network', 0, undefined) >= 0);
  assert.equal(b.pollUrl(20), 'http://b/feed', 'the next URL while the first cools down');
  assert.ok(b.handleFailure(30, 'http-status', 429, undefined) >= 0);
  assert.equal(b.pollUrl(40), 'http://b/feed', "a 429 is not the URL's failure");
  assert.ok(b.handleFailure(50, 'http-status', 503, undefined) >= 0);
  assert.equal(b.pollUrl(60), 'http://c/feed');
  assert.ok(b.handleFailure(70, 'conflict', 409, undefined) >= 0);
  assert.equal(b.pollUrl(80), 'http://c/feed', 'a 409 rediscovers on the same URL');
  assert.equal(b.pollUrl(1_010), undefined, 'the feed URL again after its cool-down');
  b.free();
  const one = new Backoff({ failoverCooldownMs: 1_000 });
  one.handleFailure(10, 'network', 0, undefined);
  assert.equal(one.pollUrl(20), undefined, 'one URL: always that one');
  one.free();
  assert.throws(() => new Backoff({ replicas: 'http://b/feed' }), /refused option replicas/);
});

/** What a caller's `fetch` may give in place of a Response (node-fetch's has a Node Readable as its body). */
const responseLike = (body, status = 200) => ({ ok: status < 300, status, statusText: 'OK', headers: new Headers(), body });
const readable = (text) => Readable.from([Buffer.from(text.slice(0, 7)), Buffer.from(text.slice(7))]);

test('discoverOnce reads the bodies the reader reads (an async iterable, as node-fetch gives); a body it cannot read is bad-options, final', async () => {
  const found = await discoverOnce(`${base}/doc`, { fetch: async () => responseLike(readable(JSON.stringify(DOC))) });
  assert.equal(found.discovery.token, 't1');
  const busy = await fails(discoverOnce(`${base}/doc`, { fetch: async () => responseLike(readable('busy'), 503) }), 'http-status');
  assert.equal(busy.bodySnippet, 'busy');
  const text = await fails(discoverOnce(`${base}/doc`, { fetch: async () => responseLike('{"token":"t"}') }), 'bad-options');
  assert.match(text.message, /the response body is not a ReadableStream or an async iterable \(it is a string\)/);
  assert.equal(failureOf(text).final, true);
  // A whole v2 feed through such a fetch: discovery and pages alike.
  const fetch = async (request) => {
    const url = new URL(request.url);
    if (url.pathname === '/feed') return responseLike(readable(JSON.stringify({ token: 't', partitions: [{ id: '0' }] })));
    return responseLike(readable(url.searchParams.get('cursor') === '_first' ? '{"data":1}\n{"cursor":"1"}\n' : '{"cursor":"1"}\n'));
  };
  const events = [];
  for await (const e of openFeed('http://127.0.0.1:9/feed', { protocol: 'v2', fetch, retry: false })) events.push(e.data);
  assert.deepEqual(events, [1]);
});

/** A caller's `fetch` over the real server whose body first gives `empties` empty chunks, each read of which resolves
 * at once (a careless stream of the caller's); `seen.timerAt`: how many had been read when a timer set at the first
 * one ran. */
const padded = (empties, seen = {}) => async (request) => {
  const r = await fetch(request);
  const reader = r.body.getReader();
  let read = 0;
  const body = new ReadableStream(
    {
      async pull(c) {
        if (read < empties) {
          if (read++ === 0) setTimeout(() => (seen.timerAt ??= read));
          return c.enqueue(new Uint8Array(0));
        }
        const { done, value } = await reader.read();
        if (done) c.close();
        else c.enqueue(value);
      },
    },
    { highWaterMark: 0 },
  );
  return new Response(body, { status: r.status, headers: r.headers });
};

test('a discovery body of empty chunks that read at once: the caller\'s timers and signal still run', async () => {
  // Each empty read resolved at once and the next read followed in the same microtask run: no timer ran for as long as
  // they came (nor the signal's: nothing could end them), and every one was kept (300 MB per million reads).
  const seen = {};
  const found = await discoverOnce(`${base}/doc`, { fetch: padded(300, seen) });
  assert.equal(found.discovery.token, 't1');
  assert.ok(seen.timerAt <= 10, `a timer set at the first empty chunk ran after ${seen.timerAt} of 300`);
  // The signal ends them: after 50 ms, not after the 20,000 empty chunks before the document.
  const e = await fails(discoverOnce(`${base}/doc`, { fetch: padded(20_000), signal: AbortSignal.timeout(50) }), 'aborted');
  assert.equal(failureOf(e).final, true);
});

test('a discovery body of nothing but empty chunks (each read at once) is stalled after idleTimeoutMs, as a page body is', async () => {
  const started = Date.now();
  const e = await fails(
    discoverOnce(`${base}/doc`, { fetch: padded(1e9), idleTimeoutMs: 100, signal: AbortSignal.timeout(1000) }),
    'stalled-body',
  );
  assert.equal(e.message, 'stalled-body: the discovery response did not come whole within 100 ms');
  assert.equal(failureOf(e).final, false);
  assert.ok(Date.now() - started < 900, `${Date.now() - started} ms`);
});
