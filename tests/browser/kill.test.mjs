// Exactly-once in a real browser: headless Debian Chromium consumes the reference feed (4 × 2,500 events) into an
// IndexedDB projection with consume() + indexedDbStore(), while this test closes or reloads the page (KILLS times,
// default 60): after the run's k-th commit for most kills, so the schedule follows progress and not the clock.
// Afterwards the projection must hold every event exactly once and the stored cursors must be the server's last
// checkpoints. Also runs the README's browser example. The rig (servers, Chromium, pages) is ./harness.mjs.
// Run: node --test --test-timeout=240000 --test-force-exit tests/browser/kill.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { readFile } from 'node:fs/promises';
import { lastCursors, repoRoot } from '../interop/helpers.mjs';
import { exactlyOnce, runPage, snapshot, startRig, stopRig, watch as watchPage } from './harness.mjs';

const KILLS = Number(process.env.KILLS ?? 60);
/** The consumer's fetch delay (up to this many ms, random): 0 makes the consumer as fast as it gets relative to the kills. */
const DELAY_MS = Number(process.env.DELAY_MS ?? 40);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let rig;
let server;
let statics;
let expected;
let browser;

before(async () => {
  // The consumer starts as soon as the module loads; `feed` etc. come in the query string.
  rig = await startRig({
    module: 'consumer.js',
    pages: { '/run': runPage('feedpump kill test', 'consumer.js', "{ pageSizeHint: Number(q.get('page')), delayMs: Number(q.get('delay')) }") },
  });
  ({ server, statics, expected, browser } = rig);
});

after(() => stopRig(rig));

const watch = (page) => watchPage(rig, page);

const state = (page) =>
  page
    .evaluate(() => ({ done: window.done ?? null, failed: window.failed ?? null, commits: window.commits ?? 0 }))
    .catch(() => null); // the page is between documents

test(`chromium: consume() into IndexedDB while the page is closed or reloaded ${KILLS} times → every event exactly once`, async (t) => {
  // A fresh context: its own, empty IndexedDB, shared by all its pages (as tabs of one profile share an origin's).
  const context = await browser.newContext();
  const runUrl = `${statics.url}/run?feed=${encodeURIComponent(server.feedUrl)}&page=5&delay=${DELAY_MS}`;
  const t0 = Date.now();
  let page = watch(await context.newPage());
  let kills = 0;
  let closes = 0;
  let reloads = 0;
  let killsAfterCommits = 0;
  let runs = 0;
  let result;
  let reload = false;
  for (;;) {
    runs++;
    if (reload) await page.reload({ waitUntil: 'commit' });
    else await page.goto(runUrl, { waitUntil: 'commit' });
    if (kills >= KILLS) break;
    // The kill schedule follows the run's progress, not the clock: every third kill hits a run that has not committed
    // yet (a random moment of start-up: module loading, the store opening, the first fetch), the others come right
    // after the run's k-th commit (k = 1..3), plus a few ms so that they land in every phase (a request in flight, a
    // body being read, a transaction open or committing). A run commits a few batches of the 500 the feed takes
    // (pages of 5 events per partition), so however slow the machine, the feed cannot be consumed before every kill.
    if (kills % 3 === 0) {
      await sleep(Math.random() * 300);
    } else {
      const k = 1 + Math.floor(Math.random() * 3);
      await page
        .waitForFunction((n) => (window.commits ?? 0) >= n || window.done || window.failed, k, { timeout: 60_000, polling: 5 })
        .catch(() => {}); // the page is between documents: its state is read below
      await sleep(Math.random() * 20);
    }
    const st = await state(page);
    if (st?.failed) assert.fail(`the consumer failed: ${st.failed}`);
    if (st?.done) {
      result = st.done;
      break;
    }
    if (Math.random() < 0.5) {
      await page.close();
      page = watch(await context.newPage());
      closes++;
      reload = false;
    } else {
      reloads++;
      reload = true; // the next round's reload is the kill
    }
    kills++;
    if ((st?.commits ?? 0) > 0) killsAfterCommits++;
  }
  if (result === undefined) {
    await page.waitForFunction(() => window.done || window.failed, null, { timeout: 120_000, polling: 50 });
    const st = await state(page);
    if (st?.failed) assert.fail(`the consumer failed: ${st.failed}`);
    result = st.done;
  }
  const ms = Date.now() - t0;
  await page.close();

  const snap = await snapshot(rig, context);
  await context.close();
  const { counts, duplicates, losses: lost, unexpected } = exactlyOnce(snap.ids, expected);
  const line =
    `chromium kill test: kills=${kills} (closes=${closes} reloads=${reloads}, ${killsAfterCommits} after commits) ` +
    `runs=${runs} events=${snap.ids.length} unique=${counts.size} duplicates=${duplicates} losses=${lost} ` +
    `unexpected=${unexpected} last-run=${JSON.stringify({ start: result.start, events: result.events, batches: result.batches })} ` +
    `cursors=${JSON.stringify(snap.cursors)} ${ms} ms`;
  t.diagnostic(line);
  console.log(line);
  assert.equal(kills, KILLS, `every kill happened before the feed was consumed (${kills} of ${KILLS})`);
  assert.ok(killsAfterCommits >= kills / 2, 'most kills hit a run that had already committed batches');
  assert.equal(duplicates, 0, 'duplicates');
  assert.equal(lost, 0, 'losses');
  assert.equal(unexpected, 0);
  assert.equal(snap.ids.length, 10_000);
  assert.deepEqual(snap.cursors, lastCursors(expected));
  assert.equal(snap.identity, `${server.feedUrl} v1 n=4`);
});

test("README: the browser example of consume() runs in Chromium as written", async (t) => {
  const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
  const m = /<!-- consume-browser-example[^>]*-->\s*```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has a consume-browser-example block');
  const code = m[1]
    .replace(/from 'feedpump\/indexeddb'/g, "from '/dist/entrypoints/indexeddb.js'")
    .replace(/from 'feedpump'/g, "from '/dist/entrypoints/web.js'")
    .replace(/http:\/\/127\.0\.0\.1:\d+/g, server.base);
  assert.ok(code.includes(server.base), 'the example names a loopback feed URL');
  const context = await browser.newContext();
  const page = await context.newPage();
  const logs = [];
  page.on('console', (msg) => logs.push(msg.text()));
  page.on('pageerror', (e) => logs.push(`pageerror: ${e.message}`));
  await page.goto(`${statics.url}/blank`);
  await page.evaluate(() => {
    window.addEventListener('error', () => { window.exampleFailed = true; });
    window.addEventListener('unhandledrejection', () => { window.exampleFailed = true; });
  });
  // Twice: the second run resumes from the stored cursors and has nothing left to apply.
  for (let i = 0; i < 2; i++) {
    await page.addScriptTag({ type: 'module', content: `${code}\nwindow.exampleDone = (window.exampleDone ?? 0) + 1;` });
    await page.waitForFunction((n) => window.exampleDone === n || window.exampleFailed, i + 1, { timeout: 60_000 });
  }
  await context.close();
  t.diagnostic(`README browser example printed: ${logs.join(' | ')}`);
  assert.deepEqual(logs.filter((l) => l.startsWith('pageerror')), []);
  assert.match(logs[0] ?? '', /applied 10000 events; orders stored: 10000; cursors \{"0":"2500","1":"2500","2":"2500","3":"2500"\}/);
  assert.match(logs[1] ?? '', /applied 0 events; orders stored: 10000/);
});
