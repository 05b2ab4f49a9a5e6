// consume(): the committable-batch rule (events after a page's last checkpoint are never handed to the handler; they
// are fetched again), restarts that resume exactly after the last committed batch, the missing-cursor policies and the
// handler-error policies. The feed is a scripted ZeroEventHub behind `fetch` (consume-fake-feed.mjs); the store is
// the memory store (the stores themselves: stores.test.mjs).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { consume, memoryStore, FeedError, isFeedError } from '../../../dist/entrypoints/node.js';
import { fakeFeed } from './consume-fake-feed.mjs';

/** A handler that counts each event id in the store's data, so a duplicate shows as a count of 2. */
const countingHandler = (seen) => (batch, tx) => {
  for (const e of batch.events) {
    tx.set(e.data.id, (tx.get(e.data.id) ?? 0) + 1);
    seen?.push(e);
  }
};

function assertExactlyOnce(store, { partitions, count }) {
  let dup = 0;
  for (const [, n] of store.data) if (n !== 1) dup++;
  assert.equal(dup, 0, 'no event applied twice');
  assert.equal(store.data.size, partitions * count, 'every event applied');
}

test('committable batches: no event after the last checkpoint of a page reaches the handler; held ones come again', async () => {
  const feed = fakeFeed({ partitions: 2, count: 20, checkpointEvery: 3, pageSize: 5, ragged: true });
  const store = memoryStore();
  const batches = [];
  const r = await consume(
    { url: feed.url, partitionCount: 2, fetch: feed.fetch, retry: false },
    {
      store,
      key: 'k',
      handler: (batch, tx) => {
        batches.push(batch);
        countingHandler()(batch, tx);
      },
    },
  );
  for (const b of batches) {
    const covered = new Map(b.checkpoints.map((c) => [c.partition, Number(c.cursor)]));
    for (const e of b.events) assert.ok(e.data.seq <= (covered.get(e.partition) ?? 0), `event ${e.data.id} is covered by a checkpoint of its batch`);
  }
  // Page 1 from _first holds seq 1..5 per partition; only 1..3 are covered (checkpoint at 3), 4 and 5 are held back,
  // dropped, and the second request starts at cursor 3.
  assert.deepEqual(feed.requests[0], { 0: '_first', 1: '_first' });
  assert.deepEqual(feed.requests[1], { 0: '3', 1: '3' });
  assertExactlyOnce(store, { partitions: 2, count: 20 });
  assert.deepEqual((await store.load('k')).cursors, { 0: '20', 1: '20' });
  assert.equal(r.events, 40);
  assert.equal(r.caughtUp, true);
  assert.equal(r.start, 'first');
  assert.equal(r.missing, 'absent');
});

test('restart: a run stopped by a failing handler resumes exactly after the last committed batch', async () => {
  const feed = fakeFeed({ partitions: 2, count: 30, checkpointEvery: 2, pageSize: 4 });
  const store = memoryStore();
  const source = { url: feed.url, partitionCount: 2, fetch: feed.fetch, retry: false };
  let calls = 0;
  await assert.rejects(
    consume(source, {
      store,
      key: 'k',
      handler: (batch, tx) => {
        countingHandler()(batch, tx); // written to the transaction, then the throw: none of it may commit
        if (++calls === 4) throw new Error('boom');
      },
    }),
    (e) => isFeedError(e, 'handler-failed') && e.cause.message === 'boom',
  );
  const mid = await store.load('k');
  const committed = [...store.data.keys()];
  // Everything committed is covered by the stored cursors, and nothing else is there.
  for (const id of committed) {
    const [, p, seq] = /^p(\d)-(\d+)$/.exec(id);
    assert.ok(Number(seq) <= Number(mid.cursors[p] ?? 0), `${id} covered by the stored cursor`);
  }
  const r = await consume(source, { store, key: 'k', handler: countingHandler() });
  assert.equal(r.start, 'stored');
  assert.equal(r.events + committed.length, 60);
  assertExactlyOnce(store, { partitions: 2, count: 30 });
});

test('maxBatches: returns caughtUp=false after n batches; the next call continues', async () => {
  const feed = fakeFeed({ partitions: 1, count: 12, checkpointEvery: 1, pageSize: 3, ragged: false });
  const store = memoryStore();
  const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch };
  const a = await consume(source, { store, key: 'k', handler: countingHandler(), maxBatches: 1 });
  assert.equal(a.caughtUp, false);
  assert.equal(a.batches, 1);
  let b;
  do b = await consume(source, { store, key: 'k', handler: countingHandler(), maxBatches: 2 });
  while (!b.caughtUp);
  assertExactlyOnce(store, { partitions: 1, count: 12 });
});

test("missing cursors: 'throw' → cursors-missing; 'last' starts at _last; a custom start; another feed's cursors", async () => {
  const feed = fakeFeed({ partitions: 2, count: 9, checkpointEvery: 1, pageSize: 9 });
  const source = { url: feed.url, partitionCount: 2, fetch: feed.fetch };
  const store = memoryStore();
  await assert.rejects(consume(source, { store, key: 'k', handler: () => {}, onMissingCursors: 'throw' }), (e) => {
    assert.ok(e instanceof FeedError);
    assert.equal(e.code, 'cursors-missing');
    assert.match(e.message, /nothing stored/);
    return true;
  });
  assert.equal(feed.requests.length, 0, 'no request before the policy allowed one');

  const last = await consume(source, { store, key: 'k', handler: countingHandler(), onMissingCursors: 'last' });
  assert.deepEqual(feed.requests.at(0), { 0: '_last', 1: '_last' });
  assert.equal(last.start, 'last');
  assert.equal(last.events, 0);
  assert.equal(store.data.size, 0);

  // Stored cursors of another identity (here: another URL) count as missing, reason 'other-feed'.
  const other = memoryStore();
  await other.save('k', { identity: 'https://elsewhere/feed/v1 n=2', cursors: { 0: '8', 1: '8' }, savedAt: 0 });
  const seen = [];
  const custom = await consume(source, {
    store: other,
    key: 'k',
    handler: countingHandler(),
    onMissingCursors: (info) => {
      seen.push(info);
      return { 0: '7', 1: '8' };
    },
  });
  assert.equal(seen[0].reason, 'other-feed');
  assert.equal(seen[0].found.cursors[0], '8');
  assert.equal(custom.start, 'custom');
  assert.deepEqual([...other.data.keys()].sort(), ['p0-8', 'p0-9', 'p1-9']);
  assert.equal((await other.load('k')).identity, `${feed.url} n=2`, 'the record now carries this feed identity');

  // Stored cursors of this identity: resumed, the policy is not asked.
  const again = await consume(source, { store: other, key: 'k', handler: countingHandler(), onMissingCursors: 'throw' });
  assert.equal(again.start, 'stored');
  assert.equal(again.events, 0);
});

test("handler errors: 'retry' runs the batch again in a new transaction; 'skip' commits its cursor without effects", async () => {
  // One page per batch here (the scripted body arrives at once): pages {1,2}, {3,4}, {5,6}.
  const feed = fakeFeed({ partitions: 1, count: 6, checkpointEvery: 2, pageSize: 2 });
  const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch };
  const store = memoryStore();
  const attempts = [];
  let fails = 2;
  await consume(source, {
    store,
    key: 'k',
    handler: (batch, tx) => {
      countingHandler()(batch, tx);
      if (batch.events.some((e) => e.data.seq === 3) && fails-- > 0) throw new Error('flaky');
    },
    onHandlerError: ({ attempt, error }) => {
      attempts.push([attempt, error.message]);
      return 'retry';
    },
  });
  assert.deepEqual(attempts, [[1, 'flaky'], [2, 'flaky']]);
  assertExactlyOnce(store, { partitions: 1, count: 6 });

  const poison = memoryStore();
  const r = await consume(source, {
    store: poison,
    key: 'k',
    handler: async (batch, tx) => {
      countingHandler()(batch, tx);
      if (batch.events.some((e) => e.data.seq === 3)) throw new Error('poison');
    },
    onHandlerError: 'skip',
  });
  assert.equal(r.skipped, 1);
  assert.deepEqual([...poison.data.keys()].sort(), ['p0-1', 'p0-2', 'p0-5', 'p0-6']);
  assert.deepEqual((await poison.load('k')).cursors, { 0: '6' });
});

test('a store that fails is not a handler error: store-failed, whatever onHandlerError says', async () => {
  const feed = fakeFeed({ partitions: 1, count: 4, checkpointEvery: 1, pageSize: 1 });
  const inner = memoryStore();
  let saves = 0;
  const store = {
    load: (k) => inner.load(k),
    save: async (k, record, effects) => {
      if (++saves === 2) throw new Error('disk full');
      return inner.save(k, record, effects);
    },
  };
  let asked = 0;
  await assert.rejects(
    consume({ url: feed.url, partitionCount: 1, fetch: feed.fetch }, {
      store,
      key: 'k',
      handler: countingHandler(),
      onHandlerError: () => (asked++, 'skip'),
    }),
    (e) => isFeedError(e, 'store-failed') && e.cause.message === 'disk full',
  );
  assert.equal(asked, 0);
  assert.deepEqual((await inner.load('k')).cursors, { 0: '1' });
});

test('bad options are refused before anything is read', async () => {
  const store = memoryStore();
  await assert.rejects(consume({ url: 'http://x/feed/v1', partitionCount: 1 }, { store, key: '', handler: () => {} }), (e) => isFeedError(e, 'bad-options'));
  await assert.rejects(consume({ url: 'http://x/feed/v1', partitionCount: 1 }, { store: {}, key: 'k', handler: () => {} }), (e) => isFeedError(e, 'bad-options'));
  await assert.rejects(consume({ url: 'http://x/feed/v1', partitionCount: 1 }, { store, key: 'k' }), (e) => isFeedError(e, 'bad-options'));
});

test('two consumers of one key at once: one commits, the other fails with cursor-conflict; nothing applied twice', async () => {
  const feed = fakeFeed({ partitions: 1, count: 10, checkpointEvery: 1, pageSize: 2 });
  const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch };
  const store = memoryStore();
  const slowHandler = async (batch, tx) => {
    countingHandler()(batch, tx);
    await new Promise((r) => setTimeout(r, 5));
  };
  const runs = await Promise.allSettled([
    consume(source, { store, key: 'k', handler: slowHandler }),
    consume(source, { store, key: 'k', handler: slowHandler }),
  ]);
  const failed = runs.filter((r) => r.status === 'rejected');
  assert.equal(failed.length, 1, 'exactly one of them lost the race');
  assert.ok(isFeedError(failed[0].reason, 'cursor-conflict'), String(failed[0].reason));
  for (const [, n] of store.data) assert.equal(n, 1);
  const r = await consume(source, { store, key: 'k', handler: countingHandler() });
  assert.equal(r.start, 'stored');
  assertExactlyOnce(store, { partitions: 1, count: 10 });
});
