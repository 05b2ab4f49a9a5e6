// Security: credentials never leak into errors, feed data cannot pollute prototypes, and cursors with any characters
// are percent-encoded and come back to the server exactly.
import assert from 'node:assert/strict';
import { inspect } from 'node:util';
import { after, before, test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';
import { startScriptedServer } from './scripted-server.mjs';

const SECRET = 'Bearer s3cr3t-T0KEN-4711';
const NASTY = 'a&b=c#d%e f/ø+😀?x\\"q';
let server;
const received = [];

before(async () => {
  server = await startScriptedServer({
    '/unauthorized': { status: 401, body: 'denied' },
    '/unavailable': { status: 503, headers: { 'retry-after': '0' }, body: 'busy' },
    // An error page that quotes what it was sent (an echo, a "bad token: ..." page).
    '/echo': (url, req) => ({ status: 400, body: `refused ${req.headers.authorization} for ${url.search}` }),
    '/proto': (url) => ({
      body: url.searchParams.get('cursor0') !== '_first' ? '' :
        '{"partition":0,"headers":{"__proto__":{"polluted":"h"}},"data":{"__proto__":{"polluted":"yes"},"constructor":{"prototype":{"polluted":"c"}}}}\n' +
        '{"partition":0,"data":[{"__proto__":{"isAdmin":true}}]}\n{"partition":0,"cursor":"1"}\n',
    }),
    '/cursor': (url) => {
      const c = url.searchParams.get('cursor0');
      received.push(c);
      if (c === '_first') {
        return { body: `{"partition":0,"data":1}\n{"partition":0,"cursor":${JSON.stringify(NASTY)}}\n` };
      }
      return { body: '' };
    },
  });
});
after(async () => { await server.close(); });

/** Every way an error may be shown or logged. */
function renderings(e) {
  return [e.message, String(e), e.stack ?? '', JSON.stringify(e), inspect(e, { depth: 10, showHidden: true })];
}

test('auth header values never appear in errors, toString, JSON or inspect (401 with refresh, retried 503, network)', async () => {
  const seen = [];
  const requestHeaders = async ({ refresh }) => ({ authorization: refresh ? `${SECRET}-renewed` : SECRET });
  for (const [path, extra] of [
    ['/unauthorized', {}],
    ['/unavailable', { retry: { initialMs: 1, maxMs: 2, maxAttempts: 2 }, onRetry: ({ error }) => seen.push(error) }],
  ]) {
    const feed = api.openFeed(`${server.base}${path}`, { partitionCount: 1, requestHeaders, ...extra });
    await assert.rejects(
      (async () => { for await (const _ of feed); })(),
      (e) => {
        seen.push(e);
        return e instanceof api.FeedError && e.code === 'http-status';
      },
    );
  }
  // A connection refused: the cause is the runtime's own network error.
  const closed = await startScriptedServer({});
  const dead = closed.base;
  await closed.close();
  const feed = api.openFeed(`${dead}/feed`, { partitionCount: 1, requestHeaders, retry: false });
  await assert.rejects((async () => { for await (const _ of feed); })(), (e) => {
    seen.push(e);
    return e.code === 'network';
  });
  assert.equal(seen.length, 5, 'two retries of the 503, its final error, the 401 and the network error');
  const auths = server.requests.filter((r) => r.headers.authorization).map((r) => r.headers.authorization);
  assert.ok(auths.includes(SECRET) && auths.includes(`${SECRET}-renewed`), 'the headers were really sent');
  for (const e of seen) {
    for (const text of renderings(e)) assert.ok(!text.includes('s3cr3t'), `credential leaked: ${text.slice(0, 300)}`);
  }
});

test('feed data with __proto__ / constructor keys does not pollute prototypes (parsed and raw mode)', async () => {
  for (const mode of ['parsed', 'raw']) {
    const feed = api.openFeed(`${server.base}/proto`, { partitionCount: 1, mode });
    const events = [];
    for await (const ev of feed) events.push(ev);
    const [first, second] = events;
    assert.equal(first.data.polluted, undefined, mode);
    assert.ok(Object.hasOwn(first.data, '__proto__'), 'kept as an own key');
    assert.equal(first.data.__proto__.polluted, 'yes');
    assert.ok(Object.hasOwn(first.headers, '__proto__'));
    assert.equal(Object.getPrototypeOf(first.data), Object.prototype);
    assert.equal(second.data[0].isAdmin, undefined);
    assert.equal({}.polluted, undefined);
    assert.equal({}.isAdmin, undefined);
    assert.equal(Object.prototype.polluted, undefined);
  }
});

test('cursors with & = # % space, non-ASCII and quotes are percent-encoded and round-trip exactly', async () => {
  received.length = 0;
  const feed = api.openFeed(`${server.base}/cursor`, { partitionCount: 1 });
  for await (const _ of feed);
  assert.deepEqual(received, ['_first', NASTY], 'the server got the cursor back unchanged');
  assert.deepEqual(feed.cursors(), { 0: NASTY });
  const raw = server.requests.filter((r) => r.url.pathname === '/cursor').map((r) => r.url.search);
  assert.ok(raw[1].includes('cursor0=a%26b%3Dc%23d%25e%20f%2F%C3%B8%2B%F0%9F%98%80%3Fx%5C%22q'), raw[1]);
});

// TODO (not fixed: it does not fit the web entry's budget, 14 B left): an http-status message quotes the start of the
// error body, and a server that echoes what it was sent puts the credential there. The fix: the reader blanks the
// request's secrets (the transport's: the hook's header values and the URL's query values, the longest first) in
// the message of every fault the core reports (FAIL and RETRY), remaking the error so that its stack does not keep
// the old text; about 80-120 B brotli in each entry (the transport would hand the reader a `blank(text)`), or the
// query values and the hook's values handed to the wasm core, which would blank its snippet itself (~25 B of JS,
// ~200 B of wasm).
test('a server that echoes the credential and the query in its error body: neither is in the http-status error', { todo: 'blank the request secrets in the core-made messages (see above)' }, async () => {
  const feed = api.openFeed(`${server.base}/echo?key=q-s3cr3t-4711`, { partitionCount: 1, requestHeaders: () => ({ authorization: SECRET }) });
  const seen = [];
  await assert.rejects((async () => { for await (const _ of feed); })(), (e) => {
    seen.push(e);
    return e.code === 'http-status';
  });
  assert.match(seen[0].message, /refused/, 'the body is quoted');
  for (const text of renderings(seen[0])) assert.ok(!text.includes('s3cr3t'), `credential leaked: ${text.slice(0, 300)}`);
});
