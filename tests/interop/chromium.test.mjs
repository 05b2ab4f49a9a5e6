// Interop in a browser: headless Debian Chromium (playwright-core) loads a page from a static server on one loopback
// port; the page imports dist/entrypoints/web.js and consumes the reference server on another port (cross-origin,
// so CORS is exercised). Run: node --test --test-timeout=180000 --test-force-exit tests/interop/chromium.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startStaticServer } from '../../www/server.mjs';
import { eventKey, expectedKeys, startV2Publisher } from './v2-publisher.mjs';
import { startV2Server } from '../v2_server/server.mjs';
import { registerByobTest, registerFailureTests,
  startRefServer, fetchExpected, verifyEvents, describe, assertComplete, lastCursors, repoRoot, waitFor, launchChromium } from './helpers.mjs';


const PAGE = `<!doctype html><meta charset="utf-8"><title>feedpump interop</title>
<script type="module">
  try {
    const [api, { consume }] = await Promise.all([import('/dist/entrypoints/web.js'), import('/tests/interop/consume.js')]);
    window.run = (url, options, how) => consume(api, url, options, how);
    window.ready = 'ok';
  } catch (e) {
    window.ready = 'failed: ' + (e && e.stack || e);
  }
</script>`;

let server;
let v2;
let v2ref;
let statics;
let expected;
let browser;
let page;
const pageLog = [];

before(async () => {
  server = await startRefServer();
  v2 = await startV2Publisher();
  v2ref = await startV2Server();
  expected = await fetchExpected(server.base);
  statics = await startStaticServer({
    mounts: { '/dist/': path.join(repoRoot, 'dist'), '/tests/interop/': path.join(repoRoot, 'tests/interop') },
    pages: { '/': PAGE },
  });
  // playwright gives every launch a fresh temporary profile (its own --user-data-dir) and removes it on close.
  browser = await launchChromium();
  page = await browser.newPage();
  page.on('console', (m) => pageLog.push(`console.${m.type()}: ${m.text()}`));
  page.on('pageerror', (e) => pageLog.push(`pageerror: ${e.message}`));
  await page.goto(`${statics.url}/`);
  await page.waitForFunction(() => window.ready !== undefined, null, { timeout: 30_000 });
  const ready = await page.evaluate(() => window.ready);
  assert.equal(ready, 'ok', `page setup: ${ready}\n${pageLog.join('\n')}`);
});

after(async () => {
  if (pageLog.length) console.log(`page log:\n  ${pageLog.slice(0, 50).join('\n  ')}`);
  await browser?.close().catch(() => {});
  await statics?.close();
  await server?.stop();
  await v2?.close();
  await v2ref?.close();
});

const run = (url, options, how) => page.evaluate(([u, o, h]) => window.run(u, o, h), [url, options, how]);

test('chromium: _first to caught-up over CORS, every event once, data identical, final cursors', async (t) => {
  const s = await run(server.feedUrl, { partitionCount: 4, pageSizeHint: 500 }, { mode: 'events' });
  const v = verifyEvents(s, expected);
  t.diagnostic(describe('chromium events()', v, s));
  assertComplete(v, s, 10_000);
  assert.deepEqual(s.cursors, lastCursors(expected));
  assert.equal(s.protoOwn, 4 * Math.floor(2500 / 97));
});

test('chromium: batches() with headers=_all on /ragged/v1 (hold-back), every event once', async (t) => {
  const s = await run(`${server.base}/ragged/v1`, { partitionCount: 4, pageSizeHint: 333, headers: '_all' }, { mode: 'batches' });
  const v = verifyEvents(s, expected);
  t.diagnostic(describe('chromium ragged batches()', v, s));
  assertComplete(v, s, 10_000);
  assert.deepEqual(s.cursors, lastCursors(expected));
  const bad = s.events.filter(([, id, , , h]) =>
    h !== JSON.stringify({ ce_id: id, ce_type: 'feedpump.test.v1', 'content-type': 'application/json' })).length;
  assert.equal(bad, 0, 'headers of every event');
});

// The web entry point asks for them.
registerByobTest('chromium', run, () => server);
registerFailureTests('chromium', run, () => server);

test('chromium: FeedAPI v2 (negotiated): closed parent, split children, a token change → every event once', async (t) => {
  v2.rotateTokenAfter(5);
  const s = await run(`${v2.base}/feed`, { pageSizeHint: 4, cursors: { 3: '4' } }, { mode: 'events' });
  assert.equal(s.error, null, JSON.stringify(s.error));
  const keys = s.events.map(([partition, , js]) => eventKey(partition, JSON.parse(js)));
  t.diagnostic(`chromium v2: ${keys.length} events, token ${v2.token()}, cursors ${JSON.stringify(s.cursors)}`);
  assert.equal(new Set(keys).size, keys.length, 'no event twice');
  assert.deepEqual([...keys].sort(), [...expectedKeys()].sort());
  assert.notEqual(v2.token(), 't1');
  assert.deepEqual(s.cursors, { 0: '30', 1: '20', 3: '4', 7: '10' });
});

test('chromium: the v2 reference server ignoring filters → filtered in the client, every matching event once', async (t) => {
  const s = await run(`${v2ref.url}/nofilter`, { protocol: 'v2', pageSizeHint: 200, filter: { include: ['OrderCreated', 'Payment.Captured'] } }, { mode: 'events' });
  assert.equal(s.error, null, JSON.stringify(s.error));
  const want = (await (await fetch(`${v2ref.url}/expected?feed=nofilter&event-types=OrderCreated;Payment.Captured`)).json()).partitions;
  const wantKeys = Object.entries(want).flatMap(([p, evs]) => evs.map((e) => `${p}:${JSON.stringify(e.data)}`)).sort();
  const got = s.events.map(([p, , js]) => `${p}:${js}`).sort();
  t.diagnostic(`chromium v2 reference server: ${got.length} events (${wantKeys.length} expected)`);
  assert.equal(new Set(got).size, got.length);
  assert.deepEqual(got, wantKeys);
});
