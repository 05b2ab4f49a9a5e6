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
