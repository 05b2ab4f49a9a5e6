// The request plumbing shared by the wasm reader and the v2 discovery (js/src/transport.ts), on the built dist/: the
// request-headers hook's answer checked into a Headers (or bad-header / bad-options), and a fetch that fails before a
// response turned into the 'network' FeedError with every header and query value blanked. The fetch functions here are
// the caller's own (hostile ones included); one case uses the global fetch against a real server on 127.0.0.1.
// Over a whole reader: tests/fault/hostile-reader.test.mjs.
import assert from 'node:assert/strict';
import http from 'node:http';
import { test } from 'node:test';
// The entry point loads the wasm, as every use of the transport does (its bad-options messages are the wasm's).
import '../../../dist/entrypoints/node.js';
import { FeedError } from '../../../dist/errors.js';
import { feedError, kindOf, safeUrl, transport, urlSecrets } from '../../../dist/transport.js';

/** The transport of a caller's `fetch` and `requestHeaders` (no observer). */
const wrap = (fetch, requestHeaders) => transport({ fetch, requestHeaders });

const URL_ = 'http://127.0.0.1:9/feed/v1?token=QUERYSECRET&n=1';

/** The error `fetch` of a transport rejects with when the caller's fetch rejects with `cause`. */
async function failure(cause, { url = URL_, page = 0, headers } = {}) {
  const calls = wrap(() => Promise.reject(cause), headers === undefined ? undefined : () => headers);
  if (headers !== undefined) await calls.requestHeaders({ refresh: false }, page);
  try {
    await calls.fetch(new Request(url), page);
  } catch (e) {
    assert.ok(e instanceof FeedError, `a FeedError, not ${e}`);
    assert.equal(e.code, 'network');
    return e;
  }
  assert.fail('fetch resolved');
}

const PREFIX = 'network: GET http://127.0.0.1:9/feed/v1 failed before a response arrived: ';

test('feedError: the code leads the message; " (page N)" and a page field only inside a reader (page > 0)', () => {
  const outside = feedError('network', 'it broke', 0);
  assert.equal(outside.message, 'network: it broke');
  assert.equal(outside.code, 'network');
  assert.ok(!('page' in outside) && !('cause' in outside));
  const inside = feedError('bad-header', 'no', 3, { cause: 'why' });
  assert.equal(inside.message, 'bad-header: no (page 3)');
  assert.equal(inside.page, 3);
  assert.equal(inside.cause, 'why');
});

test('safeUrl: origin and path, never the query, the fragment or user info; not a URL: a fixed text', () => {
  assert.equal(safeUrl('https://user:pw@example.test:8443/a/b?token=x#frag'), 'https://example.test:8443/a/b');
  assert.equal(safeUrl('not a url ?token=x'), 'the feed URL');
});

test('kindOf: what a value is, never its content', () => {
  const kinds = [null, [1], undefined, { a: 1 }, 'secret', 4, true, () => 1, 1n, Symbol('s')].map(kindOf);
  assert.deepEqual(kinds, ['null', 'an array', 'undefined', 'an object', 'a string', 'a number', 'a boolean', 'a function', 'a bigint', 'a symbol']);
});

test('fetch: the caller\'s fetch is called with the request; its answer is passed through', async () => {
  const seen = [];
  const answer = { status: 204 };
  const calls = wrap(async (r) => (seen.push(r.url), answer), undefined);
  assert.equal(calls.requestHeaders, undefined, 'no hook given: none');
  assert.equal(await calls.fetch(new Request(URL_), 2), answer);
  assert.deepEqual(seen, [URL_]);
});

test('fetch: without a fetch of the caller, the global fetch (looked up at each call) reaches a real server', async (t) => {
  const server = http.createServer((req, res) => res.end(`hello ${req.url}`));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const base = `http://127.0.0.1:${server.address().port}`;
  const calls = wrap(undefined, undefined);
  const response = await calls.fetch(new Request(`${base}/x?y=1`), 0);
  assert.equal(await response.text(), 'hello /x?y=1');
  const saved = globalThis.fetch;
  globalThis.fetch = () => Promise.reject(new Error('replaced global'));
  try {
    await assert.rejects(calls.fetch(new Request(`${base}/x`), 0), (e) => e.code === 'network' && e.message.endsWith(': replaced global'));
  } finally {
    globalThis.fetch = saved;
  }
});

test('network: the root of the cause chain is named; the cause is kept when it quotes no secret', async () => {
  const root = new Error('connect ECONNREFUSED 127.0.0.1:9');
  const cause = new TypeError('fetch failed', { cause: new Error('', { cause: root }) });
  const e = await failure(cause);
  assert.equal(e.message, `${PREFIX}connect ECONNREFUSED 127.0.0.1:9`);
  assert.equal(e.cause, cause);
  assert.ok(!('page' in e));
  const paged = await failure(cause, { page: 7 });
  assert.equal(paged.message, `${PREFIX}connect ECONNREFUSED 127.0.0.1:9 (page 7)`);
  assert.equal(paged.page, 7);
});

test('network: a level without a message gives its code; a string cause; a blank message; nothing: unknown error', async () => {
  const aggregate = new AggregateError([], '');
  aggregate.code = 'ECONNREFUSED';
  assert.equal((await failure(new Error('fetch failed', { cause: aggregate }))).message, `${PREFIX}ECONNREFUSED`);
  assert.equal((await failure(new Error('outer', { cause: 'a string root' }))).message, `${PREFIX}a string root`);
  assert.equal((await failure('a string')).message, `${PREFIX}a string`);
  assert.equal((await failure(new Error('outer', { cause: 42 }))).message, `${PREFIX}outer`, 'a number ends the chain');
  assert.equal((await failure(new Error('outer', { cause: new Error('   ') }))).message, `${PREFIX}outer`, 'a blank message is skipped');
  assert.equal((await failure(undefined)).message, `${PREFIX}unknown error`);
  assert.equal((await failure(null)).message, `${PREFIX}unknown error`);
  assert.equal((await failure({ message: 7, code: 8 })).message, `${PREFIX}unknown error`);
});

test('network: a hostile error (throwing getters, a throwing proxy, an endless chain) cannot throw; the chain is cut', async () => {
  const getters = {};
  for (const key of ['message', 'code', 'cause']) Object.defineProperty(getters, key, { get() { throw new Error('trap'); } });
  assert.equal((await failure(getters)).message, `${PREFIX}unknown error`);
  const proxy = new Proxy({}, { get() { throw new Error('trap'); } });
  assert.equal((await failure(new Error('outer', { cause: proxy }))).message, `${PREFIX}outer`);
  // A chain of 8 levels is read to its end; the 9th is not read.
  let chain = new Error('level 8');
  for (let i = 7; i >= 1; i--) chain = new Error(`level ${i}`, { cause: chain });
  assert.equal((await failure(chain)).message, `${PREFIX}level 8`);
  chain = new Error('level 0', { cause: chain });
  assert.equal((await failure(chain)).message, `${PREFIX}level 7`);
  const loop = new Error('loop');
  loop.cause = loop;
  assert.equal((await failure(loop)).message, `${PREFIX}loop`);
});

test('network: a long root message is cut to 300 characters', async () => {
  const e = await failure(new Error('x'.repeat(1000)));
  assert.equal(e.message, `${PREFIX}${'x'.repeat(300)}`);
});

test('network: the query (whole and each value, decoded) and the header values are blanked; the cause is dropped then', async () => {
  const url = 'http://127.0.0.1:9/feed/v1?token=Q%20SECRET&n=1';
  const headers = { authorization: 'Bearer HSECRET', 'x-key': 'KEYSECRET' };
  const e = await failure(new Error('sent Bearer HSECRET and KEYSECRET to /feed/v1?token=Q%20SECRET&n=1 (Q SECRET)'), { url, headers });
  assert.equal(e.message, `${PREFIX}sent [hidden] and [hidden] to /feed/v1?[hidden] ([hidden])`);
  assert.ok(!('cause' in e), 'the runtime error quotes a secret: not kept');
  // Every level of the chain is blanked, though only the root is shown: a secret anywhere drops the cause.
  const outer = await failure(new Error('outer KEYSECRET', { cause: new Error('root') }), { headers });
  assert.equal(outer.message, `${PREFIX}root`);
  assert.ok(!('cause' in outer));
});

test('network: a value that contains another is blanked whole; values under 3 characters are not blanked', async () => {
  const headers = [['x-a', 'SECRET'], ['x-b', 'TOPSECRETS'], ['x-c', 'ab']];
  const e = await failure(new Error('TOPSECRETS SECRET ab 1'), { url: 'http://127.0.0.1:9/feed/v1?n=1', headers });
  assert.equal(e.message, `${PREFIX}[hidden] [hidden] ab 1`);
  const f = await failure(new Error('SECRET TOPSECRETS'), { url: 'http://127.0.0.1:9/feed/v1', headers: [['x-b', 'SECRET'], ['x-a', 'TOPSECRETS'], ['x-c', 'ECRETXYZ']] });
  assert.equal(f.message, `${PREFIX}[hidden] [hidden]`);
  const g = await failure(new Error('abc'), { url: 'http://127.0.0.1:9/feed/v1', headers: [['x-c', 'abc']] });
  assert.equal(g.message, `${PREFIX}[hidden]`, 'three characters are blanked');
});

test('the secrets of a request are the values the hook gave last', async () => {
  let value = 'FIRSTSECRET';
  const calls = wrap(() => Promise.reject(new Error('FIRSTSECRET SECONDSECRET')), () => ({ 'x-token': value }));
  await calls.requestHeaders({ refresh: false }, 1);
  value = 'SECONDSECRET';
  await calls.requestHeaders({ refresh: false }, 1);
  await assert.rejects(calls.fetch(new Request('http://127.0.0.1:9/f'), 1), (e) => {
    assert.equal(e.message, 'network: GET http://127.0.0.1:9/f failed before a response arrived: FIRSTSECRET [hidden] (page 1)');
    return true;
  });
});

test('requestHeaders: the hook sees only { refresh }; a record, pairs, a Map and a Headers all become Headers', async () => {
  const contexts = [];
  const forms = [
    { 'x-a': '1', 'x-b': '2' },
    [['x-a', '1'], ['x-b', '2']],
    new Map([['x-a', '1'], ['x-b', '2']]),
    new Headers([['x-a', '1'], ['x-b', '2']]),
    [new Set(['x-a', '1']), ['x-b', '2']],
  ];
  for (const form of forms) {
    const calls = wrap(undefined, (context) => (contexts.push(context), form));
    const headers = await calls.requestHeaders({ refresh: true, extra: 'not passed' }, 0);
    assert.ok(headers instanceof Headers);
    assert.deepEqual([...headers], [['x-a', '1'], ['x-b', '2']]);
  }
  assert.deepEqual(contexts, forms.map(() => ({ refresh: true })));
  const async = wrap(undefined, async ({ refresh }) => ({ 'x-refresh': String(refresh) }));
  assert.deepEqual([...(await async.requestHeaders({ refresh: false }, 0))], [['x-refresh', 'false']]);
});

test('requestHeaders: nothing (undefined, null) sends no headers; a value of another kind is bad-options', async () => {
  for (const given of [undefined, null]) assert.equal(await wrap(undefined, () => given).requestHeaders({ refresh: false }, 0), undefined);
  for (const [given, kind] of [['x-a: 1', 'a string'], [5, 'a number'], [true, 'a boolean']]) {
    await assert.rejects(wrap(undefined, () => given).requestHeaders({ refresh: false }, 2), (e) => {
      assert.equal(e.code, 'bad-options');
      assert.equal(
        e.message,
        `bad-options: requestHeaders must give headers: an object, an array of [name, value] pairs or a Headers (it gave ${kind}) (page 2)`,
      );
      assert.equal(e.page, 2);
      return true;
    });
  }
});

test('requestHeaders: entries that are not [name, value] pairs, and iterators that throw, are bad-options', async () => {
  const throwing = { [Symbol.iterator]() { throw new Error('no'); } };
  const throwingEntry = [{ [Symbol.iterator]() { throw new Error('no'); } }];
  const trapped = new Proxy({}, { ownKeys() { throw new Error('trap'); } });
  for (const [given, kind] of [
    [[['x-a', '1', 'extra']], 'an array'],
    [[['x-a']], 'an array'],
    [[5], 'an array'],
    [throwingEntry, 'an array'],
    [throwing, 'an object'],
    [trapped, 'an object'],
  ]) {
    await assert.rejects(wrap(undefined, () => given).requestHeaders({ refresh: false }, 0), (e) => {
      assert.equal(e.code, 'bad-options', String(e));
      assert.ok(e.message.endsWith(`(it gave ${kind})`), e.message);
      return true;
    });
  }
});

test('requestHeaders: a header the runtime refuses is bad-header naming it (JSON-quoted, cut), never its value', async () => {
  const cases = [
    [{ 'x-token': 'VALUE\nInjected: 1' }, '"x-token"'],
    [[['bad name', 'VALUE']], '"bad name"'],
    [[['bad\nname', 'VALUE']], '"bad\\nname"'],
    [[[`${'n'.repeat(150)} `, 'VALUE']], `"${'n'.repeat(100)}"`],
    [[[Symbol('s'), 'VALUE']], '(a name that is a symbol)'],
  ];
  for (const [given, shown] of cases) {
    await assert.rejects(wrap(undefined, () => given).requestHeaders({ refresh: false }, 4), (e) => {
      assert.equal(e.code, 'bad-header');
      assert.equal(e.message, `bad-header: requestHeaders gave a header that cannot be sent: ${shown} (its value is not shown) (page 4)`);
      assert.ok(!('cause' in e) && !e.message.includes('VALUE'));
      return true;
    });
  }
});

test('network: a value given longer first and shorter later is still blanked whole (longest first, whatever the order)', async () => {
  const headers = [['x-b', 'TOPSECRETS'], ['x-a', 'SECRET'], ['x-c', 'CRE']];
  const e = await failure(new Error('TOPSECRETS, SECRET and CRE'), { url: 'http://127.0.0.1:9/feed/v1', headers });
  assert.equal(e.message, `${PREFIX}[hidden], [hidden] and [hidden]`);
});

test('network: a header value given as a number (sent as its text) is blanked like a string', async () => {
  const e = await failure(new Error('rejected key 31415926 and 27182818'), { url: 'http://127.0.0.1:9/feed/v1', headers: { 'x-key': 31415926, 'x-pin': 27182818n } });
  assert.equal(e.message, `${PREFIX}rejected key [hidden] and [hidden]`);
  assert.ok(!('cause' in e));
});

test('the secrets of a request URL are found in O(n log n): a v1 URL of 300,000 cursors, longest first', () => {
  // Each query value was inserted into the sorted list on its own (a search and a splice): O(n²) per request in the
  // partitions of a v1 feed, whose cursors are all in its URL (32,768 took 1 s per request; 300,000 about 1.5 min).
  // (A bound in the minutes' place: the new code takes a fraction of a second.)
  const n = 300_000;
  const url = `http://127.0.0.1:9/feed?n=${n}&${Array.from({ length: n }, (_, i) => `cursor${i}=c${i}`).join('&')}`;
  const started = Date.now();
  const secrets = ['hook-value-1'];
  urlSecrets(url, secrets);
  assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
  // The hook's value, the whole query, `n`'s value and the cursors but c0..c9 (under 3 characters).
  assert.equal(secrets.length, 1 + 1 + 1 + n - 10);
  assert.equal(secrets[0], url.slice(url.indexOf('?') + 1), 'the whole query first (the longest)');
  assert.ok(secrets.every((s, i) => i === 0 || secrets[i - 1].length >= s.length), 'longest first');
  assert.ok(secrets.includes('hook-value-1') && secrets.includes('c299999') && !secrets.includes('c9'));
});
