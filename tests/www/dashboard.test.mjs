// The demo dashboard (www/) in headless Debian Chromium against the reference server's live feed (/live/v1, which
// grows while it is read): start, see events flow (counts, chart, partitions), reload during the run and resume from
// the stored cursors, stop; then the IndexedDB projection must hold every event of this run's history exactly once,
// contiguous per partition, with the stored cursors at the last applied event. Also: retries and errors show up in
// the page's log. The feed's state and counters the page shows are the library's (consume()'s onFeed: feed.state,
// feed.stats()): `live` once caught up, `retrying` / `failed` with the error's code, the events read equal to the events
// applied and stored. Saves a screenshot of the running dashboard to tests/www/artifacts/dashboard.png.
// Run: node --test --test-timeout=180000 --test-force-exit tests/www/dashboard.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import net from 'node:net';
import path from 'node:path';
import { mkdir } from 'node:fs/promises';
import { startStaticServer } from '../../www/server.mjs';
import { startRefServer, repoRoot, launchChromium } from '../interop/helpers.mjs';

const ARTIFACTS = path.join(repoRoot, 'tests/www/artifacts');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let server;
let statics;
let browser;

before(async () => {
  server = await startRefServer();
  statics = await startStaticServer({
    mounts: { '/': path.join(repoRoot, 'www'), '/dist/': path.join(repoRoot, 'dist') },
  });
  browser = await launchChromium();
});

after(async () => {
  await browser?.close().catch(() => {});
  await statics?.close();
  await server?.stop();
});

async function openDashboard(context, feedUrl) {
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  page.on('console', (m) => m.type() === 'error' && problems.push(`console: ${m.text()}`));
  await page.goto(`${statics.url}/?feed=${encodeURIComponent(feedUrl)}`);
  try {
    await page.waitForFunction(() => !document.getElementById('start').disabled, null, { timeout: 30_000 });
  } catch (e) {
    const state = await page.textContent('#state').catch(() => '?');
    throw new Error(`the dashboard did not get ready: ${state}; ${problems.join('; ')}`, { cause: e });
  }
  return { page, problems };
}

/** What the page shows: numbers parsed from the DOM. */
const view = (page) =>
  page.evaluate(() => {
    const num = (id) => Number(document.getElementById(id).textContent.replace(/,/g, ''));
    const rows = [...document.querySelectorAll('#partitions-body tr')].map((tr) =>
      [...tr.cells].map((td) => td.textContent));
    const text = (id) => document.getElementById(id).textContent;
    return {
      phase: document.getElementById('status').dataset.phase,
      // feed.state and feed.stats() as shown ('—': no feed in this tab)
      state: text('feed-state'),
      stats: {
        events: text('stat-events') === '—' ? undefined : num('stat-events'),
        bytes: text('stat-bytes'),
        pages: text('stat-pages') === '—' ? undefined : num('stat-pages'),
        retries: text('stat-retries') === '—' ? undefined : num('stat-retries'),
        lastError: text('stat-error'),
      },
      applied: num('applied'),
      total: num('total'),
      resume: document.getElementById('resume').textContent,
      rows,
      lastEvents: document.querySelectorAll('#events-body tr').length,
      record: document.getElementById('record').textContent,
      log: [...document.querySelectorAll('#log li')].map((li) => ({ kind: li.className, code: li.querySelector('.code')?.textContent })),
    };
  });

/** Pixels of the chart's bar colour (#2f5bd3): > 0 once the chart has data. */
const chartPixels = (page) =>
  page.evaluate(() => {
    const c = document.getElementById('chart');
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let n = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i] === 47 && d[i + 1] === 91 && d[i + 2] === 211) n++;
    return n;
  });

/** The page origin's IndexedDB, read directly (not through the page's code): the cursor record and the projection. */
const readDb = (page) =>
  page.evaluate(async () => {
    const db = await new Promise((resolve, reject) => {
      const r = indexedDB.open('feedpump-demo');
      r.onsuccess = () => resolve(r.result);
      r.onerror = () => reject(r.error);
    });
    const tx = db.transaction(['feedpump-cursors', 'events', 'totals'], 'readonly');
    const record = tx.objectStore('feedpump-cursors').get('demo');
    const keys = tx.objectStore('events').getAllKeys();
    const events = tx.objectStore('events').getAll();
    const totals = tx.objectStore('totals').getAll();
    await new Promise((resolve) => (tx.oncomplete = resolve));
    db.close();
    return { record: record.result, keys: keys.result, ids: events.result.map((e) => e.id), totals: totals.result };
  });

async function until(what, fn, timeoutMs = 30_000) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) assert.fail(`timed out waiting for ${what}`);
    await sleep(100);
  }
}

test('dashboard: start, events flow, reload resumes from the stored cursors, stop; every event exactly once', async (t) => {
  const feedUrl = `${server.base}/live/v1`;
  const context = await browser.newContext({ viewport: { width: 1280, height: 1100 } });
  const { page, problems } = await openDashboard(context, feedUrl);
  assert.equal(await page.inputValue('#url'), feedUrl);
  assert.equal(await page.isChecked('#live'), true, 'live is on by default');

  await page.click('#start');
  const first = await until('events to flow on all 4 partitions and the feed to catch up (feed.state live)', async () => {
    const v = await view(page);
    return v.state === 'live' && v.rows.length === 4 && v.rows.every((r) => Number(r[2].replace(/,/g, '')) > 0) && v;
  });
  assert.match(first.resume, /No stored cursors/);
  await sleep(2_500); // the live feed keeps producing: 50 events/s
  const flowing = await view(page);
  t.diagnostic(`first run: ${first.applied} → ${flowing.applied} applied; rows ${JSON.stringify(flowing.rows)}`);
  assert.ok(flowing.applied > first.applied, 'the count increases while the feed is live');
  assert.ok(flowing.lastEvents > 0, 'the last events are listed');
  assert.ok((await chartPixels(page)) > 0, 'the events/s chart has bars');
  assert.match(flowing.record, /"identity": ".*\/live\/v1 n=4"/, 'the stored cursor record is shown');
  for (const r of flowing.rows) assert.match(r[4], /^\d+(\.\d)? (ms|s)$/, `lag shown: ${r[4]}`);
  // feed.stats() as the page shows it: the events read are at least those applied (a batch may be in its handler).
  t.diagnostic(`feed.state ${flowing.state}, feed.stats() shown ${JSON.stringify(flowing.stats)}`);
  assert.ok(flowing.stats.events >= flowing.applied && flowing.stats.events > 0, JSON.stringify(flowing.stats));
  assert.ok(flowing.stats.pages > 0);
  assert.match(flowing.stats.bytes, /^[\d.]+ (B|KiB|MiB)$/);
  assert.equal(flowing.stats.retries, 0);
  assert.equal(flowing.stats.lastError, '—');
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard.png'), fullPage: true });

  // Reload during the run: the page starts again by itself and resumes from the stored cursors.
  const beforeReload = await readDb(page);
  await page.reload();
  const resumed = await until('the reloaded page to resume and apply new events', async () => {
    const v = await view(page);
    return v.state === 'live' && v.applied > 0 && v;
  });
  t.diagnostic(`after reload: ${resumed.resume}`);
  assert.match(resumed.resume, /^Resumed from stored cursors \{/);
  const shown = JSON.parse(/cursors (\{.*?\})/.exec(resumed.resume)[1]);
  for (let p = 0; p < 4; p++) {
    // The reload happened after beforeReload was read, so the run may have committed a little more meanwhile.
    assert.ok(Number(shown[p]) >= Number(beforeReload.record.cursors[p]), `partition ${p} resumed at or after ${beforeReload.record.cursors[p]}`);
  }
  assert.ok(resumed.total > resumed.applied, 'the total includes the events applied before the reload');
  await sleep(1_500);

  await page.click('#stop');
  await until('the run to stop', async () => (await view(page)).phase === 'stopped');
  const stopped = await view(page);
  const db = await readDb(page);
  t.diagnostic(`stopped: feed.state ${stopped.state}, feed.stats() shown ${JSON.stringify(stopped.stats)}, applied ${stopped.applied}`);
  await assertReadAsApplied(page, stopped.stats.events, stopped.applied);
  assert.equal(stopped.state, 'failed', 'Stop aborts the feed: the iteration ends with the FeedError aborted');
  assert.equal(stopped.stats.lastError, 'aborted');
  const heads = await (await fetch(`${server.base}/live/heads`)).json();

  // Reset: the cursor record and the projection are deleted, and the page shows it.
  await page.click('#reset');
  await until('the reset', async () => (await view(page)).record === '(nothing stored)');
  const afterReset = await readDb(page);
  assert.equal(afterReset.record, undefined, 'no cursor record after Reset');
  assert.equal(afterReset.keys.length, 0, 'no projection entries after Reset');
  assert.equal(afterReset.totals.length, 0, 'no totals after Reset');
  assert.equal((await view(page)).total, 0);
  assert.equal((await view(page)).state, '—', 'after Reset no feed is shown');
  await context.close();

  // Exactly once: the projection is keyed by [partition, seq], so an event applied twice would be one entry counted
  // twice; per partition the seqs must run without a hole from this server run's first event to the stored cursor.
  const applied = db.totals.reduce((s, tt) => s + tt.count, 0);
  assert.equal(db.keys.length, applied, 'one projection entry per applied event');
  assert.equal(new Set(db.ids).size, db.ids.length, 'event ids are unique');
  assert.equal(stopped.total, applied, 'the page shows the stored total');
  for (let p = 0; p < 4; p++) {
    const seqs = db.keys.filter(([kp]) => kp === p).map(([, seq]) => seq);
    const tt = db.totals.find((x) => x.partition === p);
    assert.equal(tt.firstSeq, heads.firstSeq[p] + 1, `partition ${p} starts at the first event of the feed's history`);
    assert.equal(seqs[0], tt.firstSeq);
    assert.equal(seqs.at(-1), tt.lastSeq);
    assert.equal(seqs.length, tt.lastSeq - tt.firstSeq + 1, `partition ${p}: no gap and no repeat`);
    assert.ok(seqs.every((s, i) => i === 0 || s === seqs[i - 1] + 1), `partition ${p}: contiguous`);
    assert.equal(tt.gaps, 0);
    assert.equal(tt.repeats, 0);
    assert.equal(db.record.cursors[p], String(tt.lastSeq), `partition ${p}: the stored cursor is the last applied event`);
    assert.ok(tt.lastSeq <= heads.head[p]);
    assert.ok(tt.lastSeq >= Number(beforeReload.record.cursors[p]), 'kept what was applied before the reload');
  }
  assert.equal(db.record.identity, `${feedUrl} n=4`);
  assert.ok(applied > beforeReload.keys.length, 'more events were applied after the reload');
  // The reloaded run started right after the cursors it showed: what it applied plus what those cursors cover is all.
  const coveredAtResume = db.totals.reduce((s, tt) => s + Number(shown[tt.partition]) - tt.firstSeq + 1, 0);
  assert.equal(stopped.applied + coveredAtResume, applied, 'the reloaded run applied exactly the events after its cursors');
  const line = `dashboard: applied=${applied} entries=${db.keys.length} before-reload=${beforeReload.keys.length} ` +
    `after-reload-run=${stopped.applied} cursors=${JSON.stringify(db.record.cursors)} ` +
    `first-seqs=${JSON.stringify(db.totals.map((x) => x.firstSeq))}`;
  t.diagnostic(line);
  console.log(line);
  assert.deepEqual(problems, []);
});

test('dashboard: a second tab follows the first (Web Lock) and takes over from the committed cursors when it closes', async (t) => {
  const feedUrl = `${server.base}/live/v1`;
  const context = await browser.newContext();
  const a = await openDashboard(context, feedUrl);
  await a.page.click('#start');
  await until('tab A to catch up', async () => (await view(a.page)).state === 'live');

  // Tab B: the run flag in localStorage makes it start by itself; tab A holds the lock, so B follows.
  const b = await context.newPage();
  const problems = [];
  b.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await b.goto(`${statics.url}/?feed=${encodeURIComponent(feedUrl)}`);
  await until('tab B to follow', async () => (await view(b)).phase === 'following');
  const cursorsOf = async (page) => (await view(page)).rows.map((r) => r[1]).join(',');
  const seen = await cursorsOf(b);
  await until("tab B to show tab A's newer commits", async () => (await cursorsOf(b)) !== seen);
  assert.equal((await view(b)).applied, 0, 'a follower applies nothing itself');
  assert.equal((await view(b)).state, '—', 'a follower reads no feed: no feed.state');
  await until("tab B to list the last events of tab A's commits", async () => (await view(b)).lastEvents > 0);

  await a.page.close();
  const took = await until('tab B to take over and apply events', async () => {
    const v = await view(b);
    return v.phase !== 'following' && v.applied > 0 && v;
  });
  t.diagnostic(`tab B took over: ${took.applied} applied, phase ${took.phase}`);
  const ownFeed = await until("tab B's own feed to catch up", async () => {
    const v = await view(b);
    return v.state === 'live' && v;
  });
  assert.ok(ownFeed.stats.events >= ownFeed.applied && ownFeed.stats.events > 0, JSON.stringify(ownFeed.stats));
  await b.click('#stop');
  await until('the run to stop', async () => (await view(b)).phase === 'stopped');
  const db = await readDb(b);
  await context.close();

  // Both tabs' applications together: each event once, contiguous per partition up to the stored cursor.
  const applied = db.totals.reduce((sum, tt) => sum + tt.count, 0);
  assert.equal(db.keys.length, applied, 'one projection entry per applied event');
  for (let p = 0; p < 4; p++) {
    const seqs = db.keys.filter(([kp]) => kp === p).map(([, seq]) => seq);
    const tt = db.totals.find((x) => x.partition === p);
    assert.equal(tt.repeats, 0, `partition ${p}: no event applied twice`);
    assert.equal(tt.gaps, 0, `partition ${p}: no gap`);
    assert.ok(seqs.every((sq, i) => i === 0 || sq === seqs[i - 1] + 1), `partition ${p}: contiguous`);
    assert.equal(db.record.cursors[p], String(seqs.at(-1)), `partition ${p}: the stored cursor is the last applied event`);
  }
  assert.deepEqual(problems, []);
});

test('dashboard: ?autostart=1 starts without a click, and at a phone\'s width (420 px) nothing overflows sideways', async (t) => {
  const feedUrl = `${server.base}/live/v1`;
  const context = await browser.newContext({ viewport: { width: 420, height: 900 }, deviceScaleFactor: 1 });
  const page = await context.newPage();
  const problems = [];
  page.on('pageerror', (e) => problems.push(`pageerror: ${e.message}`));
  await page.goto(`${statics.url}/?autostart=1&feed=${encodeURIComponent(feedUrl)}`);
  const v = await until('events to flow without a click on Start', async () => {
    const x = await view(page);
    return x.state === 'live' && x.applied > 0 && x.lastEvents > 0 && x;
  });
  t.diagnostic(`autostart: ${v.applied} applied, phase ${v.phase}`);
  const overflow = await page.evaluate(() => {
    const vw = window.innerWidth;
    const wide = [...document.querySelectorAll('body *')]
      .filter((el) => el.getBoundingClientRect().right > vw + 0.5 && !el.closest('.scroll-x'))
      .map((el) => `${el.tagName.toLowerCase()}${el.id ? `#${el.id}` : ''}${el.className ? `.${String(el.className).split(' ')[0]}` : ''}`);
    return { scrollWidth: document.documentElement.scrollWidth, innerWidth: vw, wide: wide.slice(0, 10) };
  });
  await mkdir(ARTIFACTS, { recursive: true });
  await page.screenshot({ path: path.join(ARTIFACTS, 'dashboard-420.png'), fullPage: true });
  assert.ok(overflow.scrollWidth <= overflow.innerWidth, `the page is ${overflow.scrollWidth} px wide in a ${overflow.innerWidth} px viewport: ${overflow.wide.join(', ')}`);
  assert.deepEqual(overflow.wide, [], 'no element sticks out of the viewport (wide tables scroll inside their box)');
  await page.click('#stop');
  await until('the run to stop', async () => (await view(page)).phase === 'stopped');
  // A new context has an empty IndexedDB: what is stored is this run's, and the feed read exactly that.
  const stopped = await view(page);
  const db = await readDb(page);
  const stored = db.totals.reduce((n, tt) => n + tt.count, 0);
  t.diagnostic(`autostart stopped: feed.stats() shown ${JSON.stringify(stopped.stats)}, applied ${stopped.applied}, stored ${stored}`);
  await assertReadAsApplied(page, stopped.stats.events, stored);
  assert.equal(stopped.applied, stored);
  await context.close();
  assert.deepEqual(problems, []);
});

/**
 * A stopped run's feed read the events it applied (consume() commits every batch it reads before the next), plus those
 * of at most one batch: one that arrived as Stop was pressed is counted as read (feed.stats() counts a batch's events as
 * it arrives) but is not handed out. A batch is one page at most: pageSizeHint events per partition.
 */
async function assertReadAsApplied(page, read, applied) {
  const onePage = await page.evaluate(() => ['partitions', 'pagesize'].reduce((n, id) => n * Number(document.getElementById(id).value), 1));
  assert.ok(
    read >= applied && read - applied <= onePage,
    `feed.stats().events (${read}) = the events applied (${applied}), plus at most one page's (${onePage}) read as it stopped`,
  );
}

async function refusedPort() {
  const s = net.createServer();
  await new Promise((r) => s.listen(0, '127.0.0.1', r));
  const { port } = s.address();
  await new Promise((r) => s.close(r));
  return port;
}

test('dashboard: retries and errors appear in the log as they happen', async (t) => {
  const context = await browser.newContext();
  const { page } = await openDashboard(context, `http://127.0.0.1:${await refusedPort()}/live/v1`);
  await page.click('#start');
  const retries = await until('retries of the refused connection', async () => {
    const v = await view(page);
    return v.log.filter((l) => l.kind === 'retry').length >= 2 && v;
  });
  assert.ok(retries.log.every((l) => l.kind === 'retry' && l.code === 'network'), JSON.stringify(retries.log));
  const retrying = await until('feed.state retrying', async () => {
    const v = await view(page);
    return v.state === 'retrying' && v;
  });
  t.diagnostic(`retrying: feed.stats() shown ${JSON.stringify(retrying.stats)}, ${retrying.log.length} retries logged`);
  assert.equal(retrying.stats.lastError, 'network');
  assert.equal(retrying.stats.events, 0);
  assert.ok(retrying.stats.retries >= 2, 'feed.stats().retries counts the retries');
  await page.click('#stop');
  await until('the run to stop', async () => (await view(page)).phase === 'stopped');

  // A request the server rejects (the live feed has 4 partitions, not 3): a 400, not retried, ends the run.
  await page.fill('#partitions', '3');
  await page.fill('#url', `${server.base}/live/v1`);
  await page.click('#start');
  const failed = await until('the http-status error', async () => {
    const v = await view(page);
    return v.phase === 'error' && v;
  });
  const last = failed.log[0];
  t.diagnostic(`log: ${JSON.stringify(failed.log.slice(0, 3))}`);
  assert.deepEqual(last, { kind: 'error', code: 'http-status' });
  assert.equal(failed.state, 'failed');
  assert.equal(failed.stats.lastError, 'http-status');
  assert.equal(failed.stats.retries, 0, "a new run's feed: its own counters");
  assert.match(await page.textContent('#log li.error'), /400/);
  await context.close();
});
