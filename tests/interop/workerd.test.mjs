// Interop in workerd: Miniflare (from wrangler's devDependencies) runs tests/interop/worker/index.js, which imports
// dist/entrypoints/workerd.js and consumes the reference server over loopback; the test checks the summary it returns.
// Run: node --test --test-timeout=180000 --test-force-exit tests/interop/workerd.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { Miniflare } from 'miniflare';
import {
  registerByobTest, registerFailureTests,
  startRefServer, fetchExpected, verifyEvents, describe, assertComplete, lastCursors, repoRoot, waitFor,
} from './helpers.mjs';
import { scriptWorker } from '../workerd/miniflare.mjs';
import { startScriptedServer } from '../fault/scripted-server.mjs';

let server;
let expected;
let mf;

/** Rejects after ms: a Miniflare that hangs must fail the test, not the whole run (TOOLCHAIN.md pitfall 4). */
const within = (ms, promise, what) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms).unref())]);

before(async () => {
  server = await startRefServer();
  expected = await fetchExpected(server.base);
  mf = new Miniflare(scriptWorker(repoRoot, 'tests/interop/worker/index.js'));
  await within(60_000, mf.ready, 'Miniflare start');
});

after(async () => {
  await within(15_000, mf?.dispose() ?? Promise.resolve(), 'Miniflare dispose').catch((e) => console.error(e.message));
  await server?.stop();
});

async function run(url, options, how) {
  const res = await within(
    120_000,
    mf.dispatchFetch('http://worker.test/', { method: 'POST', body: JSON.stringify({ url, options, how }) }),
    'worker run',
  );
  const body = await res.json();
  assert.equal(res.status, 200, body.workerError);
  return body;
}

test('workerd: _first to caught-up, every event once, data identical, final cursors', async (t) => {
  const s = await run(server.feedUrl, { partitionCount: 4, pageSizeHint: 500 }, { mode: 'events' });
  const v = verifyEvents(s, expected);
  t.diagnostic(describe('workerd events()', v, s));
  assertComplete(v, s, 10_000);
  assert.deepEqual(s.cursors, lastCursors(expected));
  assert.equal(s.protoOwn, 4 * Math.floor(2500 / 97));
});

test('workerd: batches() on /ragged/v1 with headers=[ce_id], every event once', async (t) => {
  const s = await run(`${server.base}/ragged/v1`, { partitionCount: 4, pageSizeHint: 1000, headers: ['ce_id'] }, { mode: 'batches' });
  const v = verifyEvents(s, expected);
  t.diagnostic(describe('workerd ragged batches()', v, s));
  assertComplete(v, s, 10_000);
  assert.deepEqual(s.cursors, lastCursors(expected));
  assert.equal(s.events.filter(([, id, , , h]) => h !== JSON.stringify({ ce_id: id })).length, 0);
});

// Fewer, larger reads than workerd's default reader's ~4 KB.
registerByobTest('workerd', run, () => server, 4096);

registerFailureTests('workerd', run, () => server);

test("workerd: requestHeaders' headers follow a redirect within the origin, never one to another origin", async () => {
  const PAGE = '{"partition":0,"data":{"id":"a","seq":1}}\n{"partition":0,"cursor":"1"}\n';
  const page = (url) => ({ body: url.searchParams.get('cursor0') === '_first' ? PAGE : '' });
  const other = await startScriptedServer({ '/feed': page });
  const home = await startScriptedServer({
    '/moved': (url) => ({ status: 302, headers: { location: `${other.base}/feed${url.search}` } }),
    '/old': (url) => ({ status: 307, headers: { location: `/new${url.search}` } }),
    '/new': page,
  });
  try {
    const headers = { 'x-api-key': 'k3y-4711-abc' };
    for (const path of ['/moved', '/old']) {
      const s = await run(`${home.base}${path}`, { partitionCount: 1, retry: false }, { mode: 'events', headers });
      assert.equal(s.error, null, path);
      assert.equal(s.events.length, 1, `${path}: the page was read`);
    }
    assert.ok(home.requests.every((r) => r.headers['x-api-key'] === 'k3y-4711-abc'), 'the home origin has the header');
    assert.ok(home.requests.some((r) => r.url.pathname === '/new'), 'the redirect within the origin was followed');
    assert.ok(other.requests.length >= 1, 'the redirect to the other origin was followed');
    assert.ok(other.requests.every((r) => r.headers['x-api-key'] === undefined), 'no x-api-key at the other origin');
  } finally {
    await home.close();
    await other.close();
  }
});
