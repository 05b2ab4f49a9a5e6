// Tabs mode in a real browser: three pages of one Chromium context (tabs of one profile: one origin, one IndexedDB,
// one Web Locks manager) all call consume() on the reference feed (4 × 2,500 events) into one IndexedDB projection.
// One leads, two follow. The test closes the current leader CLOSES times (default 6; most right after its k-th commit),
// opening a new page each time so that three stay open. Afterwards: every event applied exactly once, the stored cursors are the
// server's last checkpoints, followers heard remote commits, every tab led once and never two at a time (by the role
// reports and by the commit log written in the batches' own transactions).
// Run: node --test --test-timeout=240000 --test-force-exit tests/browser/tabs.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { lastCursors } from '../interop/helpers.mjs';
import { exactlyOnce, runPage, snapshot, startRig, stopRig, watch } from './harness.mjs';

const CLOSES = Number(process.env.CLOSES ?? 6);
/** Most closes come right after the leader's k-th own commit, k = 1..MAX_COMMITS (the feed takes about 250). */
const MAX_COMMITS = Number(process.env.MAX_COMMITS ?? 10);
/** The consumers' fetch delay (up to this many ms, random): 0 makes them as fast as they get relative to the closes. */
const DELAY_MS = Number(process.env.DELAY_MS ?? 40);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

let rig;
let server;
let statics;
let expected;
let browser;

before(async () => {
  const options = "{ tab: Number(q.get('tab')), pageSizeHint: Number(q.get('page')), delayMs: Number(q.get('delay')), report }";
  rig = await startRig({ module: 'tabs-consumer.js', pages: { '/run': runPage('feedpump tabs test', 'tabs-consumer.js', options) } });
  ({ server, statics, expected, browser } = rig);
});

after(() => stopRig(rig));

const state = (page) =>
  page.evaluate(() => ({ done: window.done ?? null, failed: window.failed ?? null, tab: window.tabState ?? null })).catch(() => null);

test(`chromium: three tabs consume() one feed; the leader is closed ${CLOSES} times → one consumer at a time, every event exactly once`, async (t) => {
  const context = await browser.newContext();
  /** Per tab: its role reports (page clock) and the remote commits it heard. */
  const tabs = new Map();
  const tabInfo = (tab) => {
    if (!tabs.has(tab)) tabs.set(tab, { roles: [], remote: [], closedAt: null, commitsAtClose: null });
    return tabs.get(tab);
  };
  await context.exposeBinding('feedpumpReport', (_source, m) => {
    if (m.type === 'role') tabInfo(m.tab).roles.push({ role: m.role, at: m.at });
    else if (m.type === 'remote') tabInfo(m.tab).remote.push(m.ids);
  });
  const runUrl = `${statics.url}/run?feed=${encodeURIComponent(server.feedUrl)}&page=10&delay=${DELAY_MS}`;
  const open = new Map(); // tab → page
  let nextTab = 0;
  const openTab = async () => {
    const tab = nextTab++;
    tabInfo(tab);
    const page = watch(rig, await context.newPage(), `tab ${tab} `);
    open.set(tab, page);
    await page.goto(`${runUrl}&tab=${tab}`, { waitUntil: 'commit' });
    return tab;
  };
  const currentRole = (tab) => tabs.get(tab).roles.at(-1)?.role;
  const assertNoFailure = async () => {
    for (const [tab, page] of open) {
      const st = await state(page);
      if (st?.failed) assert.fail(`tab ${tab}: the consumer failed: ${st.failed}`);
    }
  };

  const t0 = Date.now();
  for (let i = 0; i < 3; i++) await openTab();
  let closes = 0;
  let closesAfterCommits = 0;
  let finishedEarly = false;
  while (closes < CLOSES) {
    // Wait until one of the open tabs reports that it leads.
    let leader;
    for (const deadline = Date.now() + 30_000; leader === undefined; await sleep(10)) {
      leader = [...open.keys()].find((tab) => currentRole(tab) === 'leader');
      if (Date.now() > deadline) assert.fail(`no tab became leader: ${JSON.stringify([...tabs])}`);
    }
    // Some closes right after the takeover (while the new leader loads the cursors or fetches), most after the
    // leader's k-th own commit: the schedule follows progress, not the clock, so a slow machine cannot let the feed
    // finish before every close has happened.
    if (Math.random() < 0.3) {
      await sleep(Math.random() * 150);
    } else {
      const k = 1 + Math.floor(Math.random() * MAX_COMMITS);
      await open
        .get(leader)
        .waitForFunction((n) => (window.tabState?.commits ?? 0) >= n || window.done || window.failed, k, { timeout: 60_000, polling: 5 })
        .catch(() => {}); // the page is between documents: its state is read below
      await sleep(Math.random() * 20);
    }
    await assertNoFailure();
    const st = await state(open.get(leader));
    if (st?.done) {
      finishedEarly = true;
      break;
    }
    const info = tabs.get(leader);
    info.commitsAtClose = st?.tab?.commits ?? null;
    info.closedAt = Date.now();
    await open.get(leader).close();
    open.delete(leader);
    closes++;
    if ((info.commitsAtClose ?? 0) > 0) closesAfterCommits++;
    await openTab();
  }

  // Let the feed finish: the leader catches up, then each follower in turn takes over, finds nothing new and returns.
  const results = new Map();
  for (const [tab, page] of open) {
    await page.waitForFunction(() => window.done || window.failed, null, { timeout: 120_000, polling: 50 });
    const st = await state(page);
    if (st?.failed) assert.fail(`tab ${tab}: the consumer failed: ${st.failed}`);
    results.set(tab, st.done);
  }
  const ms = Date.now() - t0;
  for (const page of open.values()) await page.close();

  const snap = await snapshot(rig, context);
  await context.close();

  // Exactly once.
  const { counts, duplicates, losses, unexpected } = exactlyOnce(snap.ids, expected);

  // Remote notifications: only of committed events, each batch heard at most once per tab.
  const remoteNotes = [...tabs.values()].reduce((n, i) => n + i.remote.length, 0);
  const remoteEvents = [...tabs.values()].reduce((n, i) => n + i.remote.flat().length, 0);
  for (const [tab, info] of tabs) {
    const heard = info.remote.flat();
    assert.equal(new Set(heard).size, heard.length, `tab ${tab} heard no event twice`);
    for (const id of heard) assert.ok(counts.has(id), `tab ${tab} heard only of committed events (${id})`);
  }

  // Roles: every tab led exactly once (the closed ones while leading, the others in turn at the end), after at most
  // one 'follower'; and a tab became leader only after the previous leader had been closed, or had made its last
  // commit (page clocks and this process's clock are the same machine clock).
  const leaders = [];
  for (const [tab, info] of tabs) {
    const roles = info.roles.map((r) => r.role);
    assert.ok(['leader', 'follower,leader'].includes(roles.join()), `tab ${tab} roles: ${roles}`);
    leaders.push({ tab, at: info.roles.at(-1).at, closedAt: info.closedAt });
  }
  leaders.sort((a, b) => a.at - b.at);
  const commitsOf = (tab) => snap.commits.filter((c) => c.tab === tab);
  for (let i = 1; i < leaders.length; i++) {
    const prev = leaders[i - 1];
    const lastCommit = commitsOf(prev.tab).at(-1)?.at ?? prev.at;
    const prevEnd = Math.max(lastCommit, prev.closedAt ?? 0);
    assert.ok(leaders[i].at >= prevEnd, `tab ${leaders[i].tab} led at ${leaders[i].at}, before tab ${prev.tab} ended (${prevEnd})`);
  }
  // The commit log, in commit order: each tab's commits form one run, in the order the tabs became leader, and each
  // lies inside its tab's leadership.
  const runs = snap.commits.map((c) => c.tab).filter((tab, i, all) => i === 0 || all[i - 1] !== tab);
  assert.deepEqual(runs, leaders.map((l) => l.tab).filter((tab) => commitsOf(tab).length > 0), 'one run of commits per leader, in leader order');
  for (const c of snap.commits) {
    const i = leaders.findIndex((x) => x.tab === c.tab);
    const next = leaders[i + 1]?.at ?? Infinity;
    assert.ok(c.at >= leaders[i].at && c.at <= next, `commit of tab ${c.tab} at ${c.at} inside its leadership (${leaders[i].at}..${next})`);
  }
  assert.equal(snap.commits.reduce((n, c) => n + c.events, 0), snap.ids.length);

  const line =
    `chromium tabs test: leader-closes=${closes} (${closesAfterCommits} after commits) tabs=${tabs.size} ` +
    `events=${snap.ids.length} unique=${counts.size} duplicates=${duplicates} losses=${losses} unexpected=${unexpected} ` +
    `remote-notifications=${remoteNotes} (${remoteEvents} events) commits=${snap.commits.length} ` +
    `leaders=${leaders.map((l) => l.tab).join('>')} last-runs=${JSON.stringify([...results.values()].map((r) => r.events))} ` +
    `cursors=${JSON.stringify(snap.cursors)} ${ms} ms`;
  t.diagnostic(line);
  console.log(line);
  assert.equal(finishedEarly, false, `the feed was consumed before ${CLOSES} leader closes (only ${closes})`);
  assert.ok(closes >= Math.min(CLOSES, 5));
  assert.ok(closesAfterCommits >= 1, 'some leaders were closed after they had committed batches');
  assert.equal(duplicates, 0, 'duplicates');
  assert.equal(losses, 0, 'losses');
  assert.equal(unexpected, 0);
  assert.equal(snap.ids.length, 10_000);
  assert.deepEqual(snap.cursors, lastCursors(expected));
  assert.equal(snap.identity, `${server.feedUrl} v1 n=4`);
  assert.ok(remoteNotes > 0, 'followers heard remote commits');
  assert.equal(tabs.size, closes + 3);
});

test('chromium: a follower ignores commit messages of a wrong shape on its channel (another page, an older version); a sound one is heard', async (t) => {
  const context = await browser.newContext();
  try {
    const page = watch(rig, await context.newPage(), 'hostile-channel ');
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${statics.url}/blank`);
    const r = await page.evaluate(async (feedUrl) => {
      const { consume, memoryStore } = await import('/dist/entrypoints/web.js');
      const key = 'hostile-channel';
      // Another tab's leader: the lock is held until `release`.
      let release;
      const held = new Promise((resolve) => (release = resolve));
      await new Promise((ok) => navigator.locks.request(`feedpump:${key}`, () => (ok(), held)));
      const roles = [];
      const heard = [];
      let settled;
      const run = consume(
        { url: feedUrl, partitionCount: 4 },
        {
          store: memoryStore(),
          key,
          maxBatches: 1,
          handler: () => {},
          onRole: (role) => roles.push(role),
          onCommit: ({ batch, cursors, remote }) => {
            if (remote) heard.push({ ids: batch.events.map((e) => e.data.id), cursors });
          },
        },
      ).then(
        (res) => (settled = { events: res.events }),
        (e) => (settled = { error: `${e?.name}: ${e?.code ?? ''} ${e?.message}` }),
      );
      const until = async (cond) => {
        for (let i = 0; i < 500 && !cond(); i++) await new Promise((res) => setTimeout(res, 10));
      };
      await until(() => roles.includes('follower'));
      const channel = new BroadcastChannel(`feedpump:${key}`);
      const message = (batch, more = {}) => ({ type: 'feedpump-commit', key, batch, cursors: { 0: 'c1' }, ...more });
      // Wrong shapes: events that are not events (raw or not), checkpoints that are not checkpoints, no cursors.
      channel.postMessage(message({ events: [null], checkpoints: [] }, { raw: true }));
      channel.postMessage(message({ events: ['x', 7], checkpoints: [] }));
      channel.postMessage(message({ events: [], checkpoints: [null] }));
      channel.postMessage(message({ events: [], checkpoints: [] }, { cursors: null }));
      // A sound commit of another leader.
      channel.postMessage(message({ events: [{ partition: 0, data: { id: 'good' } }], checkpoints: [{ partition: 0, cursor: 'c1' }] }));
      await until(() => heard.length > 0 || settled !== undefined);
      const beforeRelease = settled ?? null;
      channel.close();
      release();
      await run;
      return { roles, heard, beforeRelease, settled };
    }, rig.server.feedUrl);
    t.diagnostic(JSON.stringify(r));
    assert.equal(r.beforeRelease, null, 'the follower still waits for the lock');
    assert.deepEqual(r.heard, [{ ids: ['good'], cursors: { 0: 'c1' } }], 'only the sound commit was heard');
    assert.deepEqual(r.roles, ['follower', 'leader']);
    assert.ok(r.settled.events > 0, JSON.stringify(r.settled));
    assert.deepEqual(errors, []);
  } finally {
    await context.close();
  }
});

/**
 * Runs `body` (evaluated in a blank page of a new context) while another tab, this page through `navigator.locks`,
 * leads the key `label` until `window.rig.release()`. `body` gets `{ feedUrl, key }`; `window.rig` has `release()`,
 * `post(ids)` (a commit of that other leader on the channel), `until(cond)` (polls for up to 5 s), `sleep(ms)` and
 * `outcome(promise)` (what it settled with, as plain data). Fails on an uncaught page error.
 */
async function withOtherLeader(t, label, body) {
  const context = await browser.newContext();
  try {
    const page = watch(rig, await context.newPage(), `${label} `);
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${statics.url}/blank`);
    await page.evaluate(async (key) => {
      let release;
      const held = new Promise((resolve) => (release = resolve));
      await new Promise((ok) => navigator.locks.request(`feedpump:${key}`, () => (ok(), held)));
      const channel = new BroadcastChannel(`feedpump:${key}`);
      const sleep = (ms) => new Promise((res) => setTimeout(res, ms));
      window.rig = {
        release: () => (release(), channel.close()),
        post: (ids) =>
          channel.postMessage({
            type: 'feedpump-commit',
            key,
            batch: { events: ids.map((id) => ({ partition: 0, data: { id } })), checkpoints: [{ partition: 0, cursor: 'c1' }] },
            cursors: { 0: 'c1' },
          }),
        sleep,
        until: async (cond) => {
          for (let i = 0; i < 500 && !cond(); i++) await sleep(10);
        },
        outcome: (p) =>
          p.then(
            (value) => ({ value: value?.events ?? value }),
            (e) => ({ code: e?.code ?? null, message: String(e?.message ?? e), cause: e?.cause?.message ?? e?.cause ?? null }),
          ),
      };
    }, label);
    const r = await page.evaluate(body, { feedUrl: rig.server.feedUrl, key: label });
    await page.evaluate(() => window.rig.release());
    t.diagnostic(JSON.stringify(r));
    assert.deepEqual(errors, []);
    return r;
  } finally {
    await context.close();
  }
}

test("chromium: leadAcrossTabs (consume()'s tabs mode): the signal fires while a follower's remote hook runs → it settles only after the hook, with the hook's failure", async (t) => {
  // A hook that the signal does not end (consume()'s own hooks end their wait on the signal).
  const raw = await withOtherLeader(t, 'abort-raw-hook', async ({ key }) => {
    const { post, until, sleep, outcome } = window.rig;
    const { leadAcrossTabs } = await import('/dist/tabs.js');
    const controller = new AbortController();
    const log = [];
    let fail;
    const hook = new Promise((_, reject) => (fail = reject));
    let settled;
    const run = outcome(
      leadAcrossTabs({ lockName: `feedpump:${key}`, channelName: `feedpump:${key}` }, key, controller.signal, {
        onRole: async (role) => log.push(role),
        onRemoteCommit: async () => (log.push('remote hook'), hook),
      }, async () => 'led'),
    ).then((o) => (settled = o));
    await until(() => log.includes('follower'));
    post(['a']);
    await until(() => log.includes('remote hook'));
    controller.abort('user left');
    await sleep(100);
    const whileHookRuns = settled ?? null;
    log.push('hook rejects');
    fail(new Error('render failed'));
    await run;
    return { log, whileHookRuns, settled };
  });
  assert.equal(raw.whileHookRuns, null, `settled while its remote hook still ran: ${JSON.stringify(raw.whileHookRuns)}`);
  assert.deepEqual(raw.settled, { code: null, message: 'render failed', cause: null }, "the hook's failure, not 'aborted'");
  assert.deepEqual(raw.log, ['follower', 'remote hook', 'hook rejects']);
});

test("chromium: a follower's remote onCommit that rejects as the signal fires (it renders with that signal) is hook-failed, not 'aborted'", async (t) => {
  const r = await withOtherLeader(t, 'abort-on-commit', async ({ feedUrl, key }) => {
    const { post, until, sleep, outcome } = window.rig;
    const { consume, memoryStore } = await import('/dist/entrypoints/web.js');
    const controller = new AbortController();
    const { signal } = controller;
    const log = [];
    let settled;
    const run = outcome(
      consume({ url: feedUrl, partitionCount: 4, signal }, {
        store: memoryStore(),
        key,
        handler: () => {},
        onRole: (role) => log.push(role),
        onCommit: () => {
          log.push('remote onCommit');
          return new Promise((_, reject) => signal.addEventListener('abort', () => reject(new Error('render cancelled'))));
        },
      }),
    ).then((o) => (settled = o));
    await until(() => log.includes('follower'));
    post(['a']);
    await until(() => log.includes('remote onCommit'));
    controller.abort('user left');
    await run;
    await sleep(50);
    return { log, settled };
  });
  assert.deepEqual(r.log, ['follower', 'remote onCommit']);
  assert.equal(r.settled.code, 'hook-failed', JSON.stringify(r.settled));
  assert.equal(r.settled.message, 'hook-failed: onCommit failed (Error; its error is the cause)');
  assert.equal(r.settled.cause, 'render cancelled');
});

test('chromium: a follower that takes the lock while its remote onCommit still runs commits, tells its own commit only after the remote one, settles only after it, and rejects with its failure', async (t) => {
  const r = await withOtherLeader(t, 'late-remote-hook', async ({ feedUrl, key }) => {
    const { release, post, until, sleep, outcome } = window.rig;
    const { consume, memoryStore } = await import('/dist/entrypoints/web.js');
    const log = [];
    let fail;
    const rendering = new Promise((_, reject) => (fail = reject));
    let settled;
    const store = memoryStore();
    const run = outcome(
      consume({ url: feedUrl, partitionCount: 4 }, {
        store,
        key,
        maxBatches: 1,
        handler: () => {},
        onRole: (role) => log.push(role),
        onCommit: ({ remote }) => {
          log.push(remote ? 'remote onCommit' : 'own onCommit');
          // Renders the other tab's commit: still running when this call holds the lock and has consumed.
          if (remote) return rendering;
        },
      }),
    ).then((o) => (settled = o));
    await until(() => log.includes('follower'));
    post(['a']);
    await until(() => log.includes('remote onCommit'));
    release();
    // Its own first batch commits; its onCommit waits for the remote one.
    let committed;
    await until(() => (store.load(key).then((r) => (committed = r)), committed !== undefined || settled));
    await sleep(100);
    const whileHookRuns = settled ?? null;
    log.push('remote onCommit rejects');
    fail(new Error('render failed'));
    await run;
    return { log, whileHookRuns, settled, committed: committed !== undefined };
  });
  assert.equal(r.whileHookRuns, null, `consume() settled while its remote onCommit still ran: ${JSON.stringify(r.whileHookRuns)}`);
  assert.equal(r.committed, true, 'its own batch committed while the remote onCommit ran');
  // The own commit is not told: the remote onCommit before it failed, and consume() rejects with that instead.
  assert.deepEqual(r.log, ['follower', 'remote onCommit', 'leader', 'remote onCommit rejects']);
  assert.deepEqual(r.settled, { code: 'hook-failed', message: 'hook-failed: onCommit failed (Error; its error is the cause)', cause: 'render failed' });
});

test("chromium: a follower's remote onCommit that never settles does not hold consume() past the signal ('aborted'), as the leader's onCommit", async (t) => {
  const r = await withOtherLeader(t, 'hung-remote-hook', async ({ feedUrl, key }) => {
    const { post, until, outcome } = window.rig;
    const { consume, memoryStore } = await import('/dist/entrypoints/web.js');
    const controller = new AbortController();
    const log = [];
    const run = outcome(
      consume({ url: feedUrl, partitionCount: 4, signal: controller.signal }, {
        store: memoryStore(),
        key,
        handler: () => {},
        onRole: (role) => log.push(role),
        onCommit: () => (log.push('remote onCommit'), new Promise(() => {})),
      }),
    );
    await until(() => log.includes('follower'));
    post(['a']);
    await until(() => log.includes('remote onCommit'));
    controller.abort('user left');
    return { log, settled: await run };
  });
  assert.deepEqual(r.log, ['follower', 'remote onCommit']);
  assert.deepEqual(r.settled, { code: 'aborted', message: 'aborted: the signal fired while waiting for the lock of another tab', cause: 'user left' });
});
