// Exactly-once of consume() across restarts on FeedAPI v2, over real HTTP on 127.0.0.1 against the v2 reference
// server (tests/v2_server/server.mjs), into the SQLite store (better-sqlite3, a file) and memoryStore: a consumer that
// stops (maxBatches, its signal between the handler and the commit) and a new consume() that resumes from the store,
// while the publisher splits partitions, adds one, answers 409s; a method-2 child whose ancestor is still listed; the
// signal ending the waits for the caller's policies (and for a v2 discovery's requestHeaders hook), and a failed batch
// not skipped once the signal fired; `protocol: 'auto'` with a partition count resuming partitions beyond the count.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, beforeEach, test } from 'node:test';
import Database from 'better-sqlite3';
import * as api from '../../dist/entrypoints/node.js';
import { sqliteStore } from 'feedpump/sqlite';
import { startV2Server } from '../v2_server/server.mjs';

let server;
const dir = mkdtempSync(path.join(tmpdir(), 'feedpump-v2-resume-'));
before(async () => {
  server = await startV2Server();
});
after(async () => {
  await server.close();
  rmSync(dir, { recursive: true, force: true });
});
beforeEach(async () => {
  await server.control({ reset: true });
});

/** An event's id (`<partition>-<seq>`, from its data; string data holds the JSON). */
const idOf = (e) => (typeof e.data === 'string' ? JSON.parse(e.data) : e.data).id;

async function expectedIds(feed) {
  const x = await (await fetch(`${server.url}/expected?feed=${feed}`)).json();
  return Object.entries(x.partitions).flatMap(([pid, list]) => list.map((e) => `${pid}-${e.seq}`));
}

/** A SQLite file store whose handler appends every event's id to `applied` (no unique key: twice is two rows). */
function sqliteTarget(name) {
  const db = new Database(path.join(dir, `${name}.db`));
  db.pragma('journal_mode = WAL');
  db.exec('CREATE TABLE applied (id TEXT NOT NULL)');
  const insert = db.prepare('INSERT INTO applied (id) VALUES (?)');
  return {
    store: sqliteStore(db),
    apply: (batch) => {
      for (const e of batch.events) insert.run(idOf(e));
    },
    ids: () => db.prepare('SELECT id FROM applied').all().map((r) => r.id),
    close: () => db.close(),
  };
}

function assertOnce(ids, want, what) {
  const counts = new Map();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  const twice = [...counts].filter(([, n]) => n > 1).map(([id]) => id);
  const never = want.filter((id) => !counts.has(id));
  assert.deepEqual({ twice: twice.slice(0, 5), twiceCount: twice.length, never: never.slice(0, 5), neverCount: never.length }, { twice: [], twiceCount: 0, never: [], neverCount: 0 }, what);
  assert.equal(ids.length, want.length, `${what}: count`);
}

test('v2 into SQLite: stopped at random (maxBatches, the signal right after a handler) while 1 splits, 6 is added and 409s come: every event once', async (t) => {
  const target = sqliteTarget('chaos');
  const source = { url: `${server.url}/feed`, protocol: 'v2', pageSizeHint: 30, retry: { initialMs: 1, maxMs: 5, maxAttempts: 50 } };
  let runs = 0;
  let batches = 0;
  let aborted = 0;
  const script = [
    [10, { feed: 'feed', conflicts: 3 }],
    [25, { feed: 'feed', splitRunning: { partition: '1', children: ['4', '5'], count: 90 } }],
    [40, { feed: 'feed', addPartition: { partition: '6', count: 120 } }],
    [55, { feed: 'feed', conflicts: 2 }],
  ];
  for (;;) {
    runs++;
    assert.ok(runs < 400, 'consume() makes progress');
    const ac = new AbortController();
    const stopAfter = 1 + Math.floor(Math.random() * 6);
    const viaSignal = runs % 2 === 0;
    let n = 0;
    try {
      const result = await api.consume(
        { ...source, signal: ac.signal },
        {
          store: target.store,
          key: 'v2-chaos',
          maxBatches: viaSignal ? undefined : stopAfter,
          handler: async (batch, db) => {
            target.apply(batch, db);
            batches++;
            while (script.length > 0 && batches >= script[0][0]) await server.control(script.shift()[1]);
            // The signal fires after the effects, before the cursor row is written: the batch still commits.
            if (viaSignal && ++n === stopAfter) ac.abort('stop');
          },
        },
      );
      if (result.caughtUp && script.length === 0) break;
      // Caught up before the script's moment: the publisher's next step now.
      if (result.caughtUp) await server.control(script.shift()[1]);
    } catch (e) {
      if (!api.isFeedError(e, 'aborted')) throw e;
      aborted++;
    }
  }
  const want = await expectedIds('feed');
  t.diagnostic(`v2 sqlite chaos: ${runs} runs (${aborted} aborted), ${target.ids().length} rows, ${want.length} events`);
  assert.ok(server.state.feeds.feed.parts.has('6') && server.state.feeds.feed.parts.get('1').closed, 'the publisher split 1 and added 6 during the runs');
  assertOnce(target.ids(), want, 'every event of the feed, after the split and the new partition');
  target.close();
});

test('v2 method 2: a child whose cursorFromPartitions ancestor is still listed (closed) starts once the ancestor is read to its end', async (t) => {
  // Run 1 reads part of "0"; then the split lists "1" and "2" (cursorFromPartitions ["0"]) with "0" still listed,
  // closed; run 2 resumes from the store. Read in turns, a child would start from 0's cursor of that moment and the
  // rest of 0's history would come on 0 and again on the child.
  const target = sqliteTarget('cosmos-kept');
  const source = { url: `${server.url}/cosmos`, protocol: 'v2', pageSizeHint: 20 };
  const first = await api.consume(source, { store: target.store, key: 'cosmos', maxBatches: 6, handler: target.apply });
  assert.equal(first.caughtUp, false);
  await server.control({ feed: 'cosmos', split: { keepParent: true } });
  const second = await api.consume(source, { store: target.store, key: 'cosmos', handler: target.apply });
  t.diagnostic(`cosmos, parent kept: ${first.events} + ${second.events} events; cursors ${JSON.stringify(second.cursors)}`);
  // Events are known by their global seq (`0-<seq>` on every partition): 600 of the history, 200 after the split.
  const want = Array.from({ length: 800 }, (_, i) => `0-${i + 1}`);
  assertOnce(target.ids(), want, 'every event of the history once, and the 200 new ones');
  target.close();
});

test('the signal ends a wait for onMissingCursors that never settles: aborted, nothing requested', async () => {
  const ac = new AbortController();
  const before = server.state.log.length;
  const done = api.consume(
    { url: `${server.url}/feed`, protocol: 'v2', signal: ac.signal },
    { store: api.memoryStore(), key: 'k', handler: () => {}, onMissingCursors: () => new Promise(() => {}) },
  );
  setTimeout(() => ac.abort('stop'), 50);
  const outcome = await Promise.race([done.then(() => 'resolved', (e) => e), new Promise((r) => setTimeout(() => r('still waiting after 3 s'), 3_000))]);
  assert.ok(api.isFeedError(outcome, 'aborted'), `aborted, got ${outcome}`);
  assert.equal(server.state.log.length, before, 'no request');
});

test('the signal ends a wait for onHandlerError that never settles: aborted, nothing of the batch committed', async () => {
  const ac = new AbortController();
  const store = api.memoryStore();
  const done = api.consume(
    { url: `${server.url}/feed`, protocol: 'v2', pageSizeHint: 10, signal: ac.signal },
    {
      store,
      key: 'k',
      handler: () => {
        throw new Error('poison');
      },
      onHandlerError: () => {
        setTimeout(() => ac.abort('stop'), 20);
        return new Promise(() => {});
      },
    },
  );
  const outcome = await Promise.race([done.then(() => 'resolved', (e) => e), new Promise((r) => setTimeout(() => r('still waiting after 3 s'), 3_000))]);
  assert.ok(api.isFeedError(outcome, 'aborted'), `aborted, got ${outcome}`);
  assert.equal(await store.load('k'), undefined, 'nothing committed');
});

test("onHandlerError 'skip' after the signal fired (a handler failing because the consumer stops): not skipped, the next run applies the batch", async () => {
  const target = sqliteTarget('skip-abort');
  const ac = new AbortController();
  const source = { url: `${server.url}/feed`, protocol: 'v2', pageSizeHint: 10 };
  await assert.rejects(
    api.consume(
      { ...source, signal: ac.signal },
      {
        store: target.store,
        key: 'skip',
        onHandlerError: 'skip',
        handler: (batch, db) => {
          // Shutting down: the handler's own work is cancelled by the same signal and fails.
          ac.abort('shutdown');
          throw new Error('cancelled by shutdown');
        },
      },
    ),
    (e) => api.isFeedError(e, 'aborted'),
  );
  assert.equal(await target.store.load('skip'), undefined, 'the batch was not committed without its effects');
  const result = await api.consume(source, { store: target.store, key: 'skip', handler: target.apply });
  assert.equal(result.skipped, 0);
  assertOnce(target.ids(), await expectedIds('feed'), 'every event applied');
  target.close();
});

test('a requestHeaders hook that never settles on the v2 discovery: the signal ends consume(), close() ends the iteration', async () => {
  const never = () => new Promise(() => {});
  const within = (p) => Promise.race([p, new Promise((r) => setTimeout(() => r('still waiting after 3 s'), 3_000))]);
  const ac = new AbortController();
  const done = api.consume(
    { url: `${server.url}/feed`, protocol: 'v2', requestHeaders: never, signal: ac.signal },
    { store: api.memoryStore(), key: 'k', handler: () => {} },
  );
  setTimeout(() => ac.abort('stop'), 50);
  const outcome = await within(done.then(() => 'resolved', (e) => e));
  assert.ok(api.isFeedError(outcome, 'aborted'), `consume(): aborted, got ${outcome}`);
  const feed = api.openFeed(`${server.url}/feed`, { protocol: 'v2', requestHeaders: never });
  setTimeout(() => feed.close(), 50);
  const ended = await within((async () => { for await (const _ of feed); return 'ended'; })());
  assert.equal(ended, 'ended', 'close() ends the iteration');
});

// Each run is a new feed: with maxBatches 3 (3 pages of 50) it ends within its first turn (4 pages + 1 batch), so it
// reads one partition only, the one its round robin starts at. That start is random (Math.random, once per feed,
// among the partitions due; see core/src/schedule.rs): every partition is read unless one of the four is never
// drawn in 64 runs, a chance of at most 4 × (3/4)^64 ≈ 4e-8. (Before, every run started at the first listed partition,
// the hot one: the others were never read.)
test('runs bounded by maxBatches while partition 0 is hot: each run starts its turns at a random partition, so every partition is read', async () => {
  await server.control({ feed: 'feed', hot: { partition: '0', perRequest: 150 } });
  const store = api.memoryStore();
  const seen = new Set();
  for (let run = 0; run < 64; run++) {
    await api.consume(
      { url: `${server.url}/feed`, protocol: 'v2', pageSizeHint: 50 },
      { store, key: 'hot', maxBatches: 3, handler: (batch) => { for (const e of batch.events) seen.add(e.partition); } },
    );
  }
  await server.control({ feed: 'feed', hot: null });
  assert.deepEqual([...seen].sort(), [0, 1, 2, 3], 'every partition is read within 64 runs of 3 batches');
});

test("protocol 'auto' with a partitionCount on a v2 server: partitions beyond the count (added, split children) resume from their stored cursors", async (t) => {
  await server.control({ feed: 'feed', addPartition: { partition: '6', count: 30 } });
  await server.control({ feed: 'feed', splitRunning: { partition: '1', children: ['4', '5'], count: 20 } });
  const target = sqliteTarget('auto-count');
  const all = { url: `${server.url}/feed`, protocol: 'auto', partitionCount: 4, pageSizeHint: 100 };
  const sub = { ...all, partitions: [1] };
  const first = await api.consume(all, { store: target.store, key: 'all', handler: target.apply });
  const again = await api.consume(all, { store: target.store, key: 'all', handler: target.apply });
  const subFirst = await api.consume(sub, { store: target.store, key: 'sub', handler: target.apply });
  const subAgain = await api.consume(sub, { store: target.store, key: 'sub', handler: target.apply });
  t.diagnostic(`auto n=4: ${first.events} then ${again.events} events; partitions [1]: ${subFirst.events} then ${subAgain.events}`);
  assert.equal(first.events, 2070);
  assert.equal(subFirst.events, 540, 'partition 1 and its children 4 and 5');
  assert.deepEqual([again.events, subAgain.events], [0, 0], 'nothing applied again on resume');
  target.close();
});
