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
    '/echo-busy': (url, req) => ({ status: 503, body: `refused ${req.headers.authorization} for ${url.search}` }),
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

// The requestHeaders hook gives credentials, as a rule. fetch follows a redirect to another origin with every header
// but `authorization`: an `x-api-key` reached the other origin. In Node (and workerd) the feed follows redirects
// itself: within the origin with the hook's headers, to another origin without them.
test("requestHeaders: a redirect to another origin gets none of the hook's headers, one within the origin all of them (v1 pages, v2 discovery)", async () => {
  const PAGE = '{"partition":0,"data":1}\n{"partition":0,"cursor":"1"}\n';
  const page = (url) => ({ body: url.searchParams.get('cursor0') === '_first' ? PAGE : '' });
  const other = await startScriptedServer({ '/feed': page, '/v2': { status: 404, body: 'no' } });
  const home = await startScriptedServer({
    '/moved': (url) => ({ status: 302, headers: { location: `${other.base}/feed${url.search}` } }),
    '/old': (url) => ({ status: 307, headers: { location: `/new${url.search}` } }),
    '/new': page,
    '/v2': { status: 308, headers: { location: `${other.base}/v2` } },
    '/loop': (url) => ({ status: 302, headers: { location: `/loop${url.search}` } }),
  });
  const requestHeaders = () => ({ 'x-api-key': 'k3y-4711-abc', authorization: 'Bearer t0k3n-4711' });
  const read = async (path, options = { partitionCount: 1 }) => {
    const events = [];
    const feed = api.openFeed(`${home.base}${path}`, { requestHeaders, retry: false, ...options });
    try {
      for await (const e of feed) events.push(e.data);
    } catch (e) {
      events.push(e.code);
    }
    return events;
  };
  try {
    assert.deepEqual(await read('/moved'), [1], 'the page is read from the other origin');
    assert.deepEqual(await read('/old'), [1], 'the page is read after a redirect within the origin');
    assert.deepEqual(await read('/v2', { protocol: 'v2' }), ['http-status'], 'discovery followed the redirect (the other origin answers 404)');
    // A redirect loop ends as fetch's does: a network error after 20 redirects (21 requests).
    assert.deepEqual(await read('/loop'), ['network']);
    assert.equal(home.requests.filter((r) => r.url.pathname === '/loop').length, 21);
    const keyed = (r) => r.headers['x-api-key'] === 'k3y-4711-abc' && r.headers.authorization === 'Bearer t0k3n-4711';
    assert.ok(home.requests.length >= 4 && home.requests.every(keyed), 'every request to the home origin has the headers');
    assert.ok(home.requests.some((r) => r.url.pathname === '/new'), 'the redirect within the origin was followed');
    assert.ok(other.requests.length >= 2, 'the redirects to the other origin were followed');
    for (const r of other.requests) {
      assert.equal(r.headers['x-api-key'], undefined, `${r.url.pathname}: no x-api-key at the other origin`);
      assert.equal(r.headers.authorization, undefined, `${r.url.pathname}: no authorization at the other origin`);
    }
  } finally {
    await home.close();
    await other.close();
  }
});

// An http-status message (and `bodySnippet`) quotes the start of the error body, and a server that echoes what it was
// sent (an echo, a "bad token ..." page) puts the query's token or the credential there. The transport that sent the
// request blanks them out of it (js/src/transport.ts `hide`), for the v1 pages and the v2 discovery alike.
test('a server that echoes the query in its error body: no query value is in the http-status errors (message, bodySnippet; final and retried; pages and discovery)', async () => {
  const seen = [];
  for (const [path, protocol] of [['/echo', 'v1'], ['/echo-busy', 'v1'], ['/echo-busy', 'v2']]) {
    const feed = api.openFeed(`${server.base}${path}?key=q-s3cr3t-4711&user=a%20b%2Bs3cr3t`, {
      ...(protocol === 'v1' ? { partitionCount: 1 } : { protocol }),
      retry: { initialMs: 1, maxMs: 1, maxAttempts: 1 },
      onRetry: ({ error }) => seen.push(error),
    });
    await assert.rejects((async () => { for await (const _ of feed); })(), (e) => {
      seen.push(e);
      return e.code === 'http-status';
    });
  }
  assert.equal(seen.length, 5, 'the 400, the retried 503 and its final error, of a page and of the discovery');
  for (const e of seen) {
    assert.match(e.message, /refused undefined for \?\[hidden\]/, 'the body is quoted, its query blanked');
    for (const text of [...renderings(e), e.bodySnippet]) {
      assert.ok(!text.includes('s3cr3t') && !text.includes('a b+'), `query value leaked: ${text.slice(0, 300)}`);
    }
  }
});

test('a server that echoes the credential in its error body: the header value is not in the http-status error (a page, the discovery)', async () => {
  const seen = [];
  for (const options of [{ partitionCount: 1 }, { protocol: 'v2', retry: false }]) {
    const feed = api.openFeed(`${server.base}/echo${options.protocol ? '-busy' : ''}`, { ...options, requestHeaders: () => ({ authorization: SECRET }) });
    await assert.rejects((async () => { for await (const _ of feed); })(), (e) => {
      seen.push(e);
      return e.code === 'http-status';
    });
  }
  assert.equal(seen.length, 2);
  for (const e of seen) {
    assert.match(e.message, /refused \[hidden\] for/, 'the body is quoted, the credential blanked');
    for (const text of [...renderings(e), e.bodySnippet]) assert.ok(!text.includes('s3cr3t'), `credential leaked: ${text.slice(0, 300)}`);
  }
});
