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
  assert.equal((await other.load('k')).identity, `${feed.url} v1 n=2`, 'the record now carries this feed identity');

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

/** A fake feed whose URL carries a query; `fetch` is the same whatever the URL's host and query. */
const withUrl = (feed, url, extra = {}) => ({ url, partitionCount: 2, fetch: feed.fetch, retry: false, ...extra });

test("another feed's cursors are never replayed by default: 'other-feed' throws cursors-missing, naming both identities without query values", async () => {
  const feed = fakeFeed({ partitions: 2, count: 6, checkpointEvery: 1, pageSize: 6 });
  const store = memoryStore();
  await consume(withUrl(feed, 'http://localhost:8080/feed/v1?apikey=OLD-SECRET'), { store, key: 'k', handler: countingHandler() });
  const record = await store.load('k');
  assert.equal(record.identity, 'http://localhost:8080/feed/v1?apikey v1 n=2', 'normalised: no query values stored');
  assert.deepEqual(record.partitions, [0, 1]);
  assert.doesNotMatch(JSON.stringify(record), /SECRET/);

  // A rotated API key, another key order, an upper-case host, a default port, a fragment: the same feed, resumed.
  const before = feed.requests.length;
  for (const url of ['http://localhost:8080/feed/v1?apikey=NEW-SECRET', 'http://LOCALHOST:8080/feed/v1?apikey=x#top']) {
    const r = await consume(withUrl(feed, url), { store, key: 'k', handler: countingHandler() });
    assert.equal(r.start, 'stored', url);
    assert.equal(r.events, 0, url);
  }
  assert.deepEqual(feed.requests.slice(before).map((q) => q[0]), ['6', '6'], 'resumed from the stored cursors');

  // localhost vs 127.0.0.1, another query key, another partition count, another protocol: other feeds. Every static
  // policy throws; nothing is requested; the message names both identities and no query value.
  const others = [
    [withUrl(feed, 'http://127.0.0.1:8080/feed/v1?apikey=NEW-SECRET'), 'http://127.0.0.1:8080/feed/v1?apikey v1 n=2'],
    [withUrl(feed, 'http://localhost:8080/feed/v1?apikey=NEW-SECRET&tenant=t1'), 'http://localhost:8080/feed/v1?apikey&tenant v1 n=2'],
    [withUrl(feed, 'http://localhost:8080/feed/v1?apikey=NEW-SECRET', { partitionCount: 3 }), 'http://localhost:8080/feed/v1?apikey v1 n=3'],
  ];
  for (const policy of [undefined, 'first', 'last', 'throw']) {
    for (const [source, identity] of others) {
      const n = feed.requests.length;
      await assert.rejects(consume(source, { store, key: 'k', handler: countingHandler(), onMissingCursors: policy }), (e) => {
        assert.ok(isFeedError(e, 'cursors-missing'), String(e));
        assert.ok(e.message.includes(JSON.stringify(identity)), e.message);
        assert.ok(e.message.includes('"http://localhost:8080/feed/v1?apikey v1 n=2" (partitions 0,1)'), e.message);
        assert.doesNotMatch(e.message, /SECRET|t1/);
        return true;
      });
      assert.equal(feed.requests.length, n, 'nothing fetched');
    }
  }
  assertExactlyOnce(store, { partitions: 2, count: 6 });

  // Only a function may drop another feed's cursors, and it is told why.
  const infos = [];
  const r = await consume(others[0][0], { store, key: 'k', handler: countingHandler(), onMissingCursors: (info) => (infos.push(info), 'first') });
  assert.equal(infos[0].reason, 'other-feed');
  assert.equal(infos[0].identity, 'http://127.0.0.1:8080/feed/v1?apikey v1 n=2');
  assert.equal(infos[0].found.identity, 'http://localhost:8080/feed/v1?apikey v1 n=2');
  assert.equal(r.start, 'first');
  assert.equal(r.missing, 'other-feed');
});

test('partitions: a subset of the stored partitions resumes from their cursors and keeps the others; a superset is another feed', async () => {
  const feed = fakeFeed({ partitions: 3, count: 8, checkpointEvery: 1, pageSize: 4 });
  const source = (extra = {}) => ({ url: feed.url, partitionCount: 3, fetch: feed.fetch, retry: false, ...extra });
  const store = memoryStore();
  await consume(source(), { store, key: 'k', handler: countingHandler(), maxBatches: 1 });
  const first = await store.load('k');
  assert.deepEqual(first.partitions, [0, 1, 2]);
  assert.deepEqual(first.cursors, { 0: '4', 1: '4', 2: '4' });

  const n = feed.requests.length;
  const sub = await consume(source({ partitions: [1] }), { store, key: 'k', handler: countingHandler(), onMissingCursors: 'throw' });
  assert.equal(sub.start, 'stored');
  assert.deepEqual(feed.requests[n], { 1: '4' }, 'partition 1 resumed from its stored cursor');
  assert.equal(sub.events, 4);
  const after = await store.load('k');
  assert.deepEqual(after.cursors, { 0: '4', 1: '8', 2: '4' }, 'the cursors of the partitions not read are kept');
  assert.deepEqual(after.partitions, [0, 1, 2]);

  // Back to all partitions: each resumes where it was.
  const all = await consume(source(), { store, key: 'k', handler: countingHandler(), onMissingCursors: 'throw' });
  assert.equal(all.start, 'stored');
  assertExactlyOnce(store, { partitions: 3, count: 8 });

  // Cursors stored for partition 0 only; reading 0 and 1 is another feed (partition 1 has no stored cursor).
  const one = memoryStore();
  await consume(source({ partitions: [0] }), { store: one, key: 'k', handler: countingHandler() });
  assert.deepEqual((await one.load('k')).partitions, [0]);
  await assert.rejects(consume(source({ partitions: [0, 1] }), { store: one, key: 'k', handler: countingHandler() }), (e) => {
    assert.ok(isFeedError(e, 'cursors-missing'), String(e));
    assert.match(e.message, /\(partitions 0,1\).*\(partitions 0\)/);
    return true;
  });
  await assert.rejects(consume(source(), { store: one, key: 'k', handler: countingHandler() }), (e) => isFeedError(e, 'cursors-missing'));
});

test('records of feedpump 0.1 (identity `<url> n=<count>[ partitions=<list>]`): the same source resumes; another one throws without query values', async () => {
  const feed = fakeFeed({ partitions: 2, count: 6, checkpointEvery: 1, pageSize: 6 });
  const url = 'http://feed.test/feed/v1?token=OLD-SECRET';
  const store = memoryStore();
  // What 0.1 stored after consuming events 1..3 of each partition.
  const seed = (identity, cursors) => store.save('k', { identity, cursors, savedAt: 0 });
  await seed(`${url} n=2`, { 0: '3', 1: '3' });
  const r = await consume(withUrl(feed, url), { store, key: 'k', handler: countingHandler(), onMissingCursors: 'throw' });
  assert.equal(r.start, 'stored');
  assert.deepEqual(feed.requests.at(0), { 0: '3', 1: '3' });
  assert.equal(r.events, 6);
  const record = await store.load('k');
  assert.equal(record.identity, 'http://feed.test/feed/v1?token v1 n=2', 'rewritten in the new form: no secret kept');
  assert.deepEqual(record.partitions, [0, 1]);

  // A 0.1 record of partitions=1, read again with partitions [1]: resumed.
  await seed(`${url} n=2 partitions=1`, { 1: '5' });
  const n = feed.requests.length;
  const sub = await consume(withUrl(feed, url, { partitions: [1] }), { store, key: 'k', handler: countingHandler(), onMissingCursors: 'throw' });
  assert.equal(sub.start, 'stored');
  assert.deepEqual(feed.requests[n], { 1: '5' });

  // A 0.1 record of another token (its identity holds the old URL's query values): never replayed, never shown.
  await seed(`${url} n=2`, { 0: '3', 1: '3' });
  await assert.rejects(consume(withUrl(feed, 'http://feed.test/feed/v1?token=NEW-SECRET'), { store, key: 'k', handler: countingHandler() }), (e) => {
    assert.ok(isFeedError(e, 'cursors-missing'), String(e));
    assert.ok(e.message.includes('"http://feed.test/feed/v1?token n=2"'), e.message);
    assert.doesNotMatch(e.message, /SECRET/);
    return true;
  });
});

test("a custom identity: compared exactly; the partitions are still stored; a bad static policy is refused", async () => {
  const feed = fakeFeed({ partitions: 2, count: 4, checkpointEvery: 1, pageSize: 4 });
  const store = memoryStore();
  await consume(withUrl(feed, feed.url), { store, key: 'k', identity: 'orders-v3', handler: countingHandler() });
  assert.deepEqual(await store.load('k').then((r) => [r.identity, r.partitions]), ['orders-v3', [0, 1]]);
  const again = await consume(withUrl(feed, 'http://other.test/feed/v1'), { store, key: 'k', identity: 'orders-v3', handler: countingHandler() });
  assert.equal(again.start, 'stored');
  await assert.rejects(consume(withUrl(feed, feed.url), { store, key: 'k', identity: 'orders-v4', handler: countingHandler() }), (e) =>
    isFeedError(e, 'cursors-missing') && /"orders-v4".*"orders-v3"/.test(e.message),
  );
  await assert.rejects(consume(withUrl(feed, feed.url), { store, key: 'k', handler: countingHandler(), onMissingCursors: 'frist' }), (e) =>
    isFeedError(e, 'bad-options'),
  );
});

test('bad options: each refused with what is wrong, before the store is read', async () => {
  const loads = [];
  const store = { load: async (k) => (loads.push(k), undefined), save: async () => {} };
  const source = { url: 'http://feed.test/feed/v1', partitionCount: 1 };
  const refused = async (src, options, message) =>
    assert.rejects(consume(src, { store, key: 'k', handler: () => {}, ...options }), (e) => isFeedError(e, 'bad-options') && e.message === message, message);
  const needsStore = 'bad-options: consume() needs a store with load() and save()';
  for (const bad of [null, 'store', {}, { load: store.load }, { save: store.save }, Object.assign(() => {}, store)]) await refused(source, { store: bad }, needsStore);
  for (const key of [5, '']) await refused(source, { key }, 'bad-options: consume() needs a non-empty key');
  await refused(source, { handler: 'h' }, 'bad-options: handler must be a function');
  for (const maxBatches of [0, 0.5, NaN, -1]) await refused(source, { maxBatches }, 'bad-options: maxBatches must be >= 1');
  await refused(source, { onRole: 'leader' }, 'bad-options: onRole must be a function');
  // Not called as it was (a TypeError at the first call, hook-failed, after the first commit for onCommit): refused.
  await refused(source, { onFeed: 1 }, 'bad-options: onFeed must be a function');
  await refused(source, { onCommit: 'render' }, 'bad-options: onCommit must be a function');
  await refused(source, { onMissingCursors: 'frist' }, `bad-options: onMissingCursors must be 'first', 'last', 'throw' or a function, got "frist"`);
  // A typo in the handler policy would otherwise stop at the first failure instead of retrying (or skipping).
  await refused(source, { onHandlerError: 'Retry' }, `bad-options: onHandlerError must be 'retry', 'skip', 'stop' or a function, got "Retry"`);
  assert.deepEqual(loads, [], 'the store was not read');
  // What a policy function returns must be a choice or cursors.
  for (const [choice, shown] of [[null, 'null'], [5, '5'], ['sometimes', '"sometimes"']]) {
    await refused(source, { onMissingCursors: () => choice }, `bad-options: onMissingCursors gave ${shown}`);
  }
  // 'last' needs to know the partitions (a v2 feed without partitions does not).
  await refused({ url: 'http://feed.test/feed', protocol: 'v2' }, { onMissingCursors: 'last' }, "bad-options: onMissingCursors 'last' needs partitionCount or partitions");
});

test("'last' starts only the partitions read at _last; a custom identity never resumes a 0.1 record", async () => {
  const feed = fakeFeed({ partitions: 3, count: 5, checkpointEvery: 1, pageSize: 5 });
  const store = memoryStore();
  const r = await consume({ url: feed.url, partitionCount: 3, partitions: [2], fetch: feed.fetch }, { store, key: 'k', handler: countingHandler(), onMissingCursors: 'last' });
  assert.equal(r.start, 'last');
  assert.deepEqual(feed.requests[0], { 2: '_last' });
  assert.deepEqual(r.cursors, { 2: '_last' }, 'only the partition read starts at _last');
  const legacy = memoryStore();
  await legacy.save('k', { identity: `${feed.url} n=3`, cursors: { 0: '5' }, savedAt: 0 });
  await assert.rejects(consume({ url: feed.url, partitionCount: 3, fetch: feed.fetch }, { store: legacy, key: 'k', identity: `${feed.url} n=3x`, handler: () => {} }), (e) =>
    isFeedError(e, 'cursors-missing') && e.message.includes("'first' and 'last' apply only when nothing is stored, a function given as onMissingCursors may decide for another feed"));
});

test('store failures: load and save errors are store-failed with the batch number and the cause; a FeedError passes as it is', async () => {
  const feed = fakeFeed({ partitions: 1, count: 4, checkpointEvery: 1, pageSize: 1 });
  const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch };
  const disk = new Error('disk');
  await assert.rejects(consume(source, { store: { load: async () => { throw disk; }, save: async () => {} }, key: 'k', handler: () => {} }), (e) =>
    isFeedError(e, 'store-failed') && e.cause === disk && e.message === 'store-failed: could not load the cursors of "k"');
  const own = new FeedError('store-failed', 'store-failed: mine');
  await assert.rejects(consume(source, { store: { load: async () => { throw own; }, save: async () => {} }, key: 'k', handler: () => {} }), (e) => e === own);
  const inner = memoryStore();
  let saves = 0;
  const flaky = { load: (k) => inner.load(k), save: async (...args) => { if (++saves === 3) throw disk; return inner.save(...args); } };
  await assert.rejects(consume(source, { store: flaky, key: 'k', handler: countingHandler() }), (e) =>
    isFeedError(e, 'store-failed') && e.cause === disk && e.message === 'store-failed: could not commit batch 3');
});

test('a store that loads something that is not a cursor record: store-failed naming the key, never a TypeError; null is nothing stored', async () => {
  const feed = fakeFeed({ partitions: 1, count: 2, checkpointEvery: 1, pageSize: 1 });
  const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch };
  const loading = (record) => ({ load: async () => record, save: async () => {} });
  const identity = `${feed.url} v1 n=1`;
  for (const record of [5, 'r', {}, { identity: 7, cursors: {} }, { identity, cursors: null }, { identity }, { identity: `${feed.url} n=1` }]) {
    await assert.rejects(consume(source, { store: loading(record), key: 'k', handler: () => {} }), (e) => {
      assert.ok(isFeedError(e, 'store-failed'), `${JSON.stringify(record)}: ${e}`);
      assert.equal(e.message, 'store-failed: could not load the cursors of "k"');
      return true;
    });
  }
  // A store that answers null for "nothing stored" (as localStorage does) starts as from nothing.
  const result = await consume(source, { store: { load: async () => null, save: async () => {} }, key: 'k', handler: () => {} });
  assert.equal(result.start, 'first');
  assert.equal(result.events, 2);
});

test('handler failures: the message names the batch and its events; async rejections are the handler error too; null is no promise', async () => {
  const feed = fakeFeed({ partitions: 1, count: 6, checkpointEvery: 2, pageSize: 2 });
  const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch };
  let calls = 0;
  const boom = new Error('boom');
  await assert.rejects(consume(source, { store: memoryStore(), key: 'k', handler: async () => { if (++calls === 2) throw boom; } }), (e) =>
    isFeedError(e, 'handler-failed') && e.cause === boom && e.message === 'handler-failed: the handler threw on batch 2 (2 events, nothing committed): boom');
  await assert.rejects(consume(source, { store: memoryStore(), key: 'k', handler: () => { throw 'plain'; } }), (e) =>
    e.message === 'handler-failed: the handler threw on batch 1 (2 events, nothing committed): plain' && e.cause === 'plain');
  const seen = [];
  const r = await consume(source, { store: memoryStore(), key: 'k', handler: async () => Promise.reject(boom), onHandlerError: ({ error }) => (seen.push(error), 'skip') });
  assert.equal(r.skipped, 3);
  assert.ok(seen.every((e) => e === boom) && seen.length === 3, 'onHandlerError got the rejection');
  // Return values that are not thenables commit at once, whatever they are.
  const ok = await consume(source, { store: memoryStore(), key: 'k', handler: () => null });
  assert.equal(ok.events, 6);
});

test('a retry after the signal fired stops with aborted', async () => {
  const feed = fakeFeed({ partitions: 1, count: 4, checkpointEvery: 2, pageSize: 2 });
  const controller = new AbortController();
  const store = memoryStore();
  await assert.rejects(
    consume({ url: feed.url, partitionCount: 1, fetch: feed.fetch, signal: controller.signal }, {
      store,
      key: 'k',
      handler: () => { throw new Error('flaky'); },
      onHandlerError: () => (controller.abort('stop now'), 'retry'),
    }),
    (e) => isFeedError(e, 'aborted') && e.message === 'aborted: the signal fired while a failed batch was decided' && e.cause === 'stop now',
  );
  assert.equal(await store.load('k'), undefined);
});

test('maxBatches: the feed is closed when consume() returns (its response body is cancelled)', async () => {
  let cancelled;
  const done = new Promise((r) => (cancelled = r));
  const fetch = async () => {
    const lines = ['{"partition":0,"data":{"id":"a"}}', '{"partition":0,"cursor":"1"}', ''].join('\n');
    const body = new ReadableStream({
      start: (c) => c.enqueue(new TextEncoder().encode(lines)), // and never closes: a page still being read
      cancel: () => cancelled('cancelled'),
    });
    return new Response(body, { status: 200 });
  };
  const r = await consume({ url: 'http://feed.test/feed/v1', partitionCount: 1, fetch, maxBatchDelayMs: 0 }, { store: memoryStore(), key: 'k', handler: () => {}, maxBatches: 1 });
  assert.equal(r.batches, 1);
  assert.equal(r.caughtUp, false);
  assert.equal(await done, 'cancelled');
});

test("the signal ends a load that never settles (a blocked IndexedDB open); a save in flight is waited for, so onCommit tells what committed", async () => {
  const load = async (store) => {
    const feed = fakeFeed({ partitions: 1, count: 4, checkpointEvery: 2, pageSize: 2 });
    const controller = new AbortController();
    const run = consume({ url: feed.url, partitionCount: 1, fetch: feed.fetch, signal: controller.signal }, { ...store, tabs: false });
    return { run, controller };
  };
  // A load that never settles.
  let loading = false;
  const { run, controller } = await load({ store: { load: () => ((loading = true), new Promise(() => {})), save: () => assert.fail('no save') }, key: 'k', handler: () => {} });
  while (!loading) await new Promise((r) => setTimeout(r, 5));
  controller.abort('stop now');
  let timer;
  const timeout = new Promise((resolve) => (timer = setTimeout(() => resolve('still pending 2 s after the signal fired'), 2_000)));
  const got = await Promise.race([run.then(() => 'resolved', (e) => e), timeout]);
  clearTimeout(timer);
  assert.ok(isFeedError(got, 'aborted'), `load: ${got}`);
  assert.equal(got.cause, 'stop now', "the signal's reason is the cause");
  assert.equal(got.message, 'aborted: the signal fired while the cursors were loaded');

  // A save that the signal interrupts: it commits, onCommit is told, then consume() ends aborted.
  const inner = memoryStore();
  let open;
  const gate = new Promise((r) => (open = r));
  let saving = false;
  const commits = [];
  const second = await load({
    store: { load: (key) => inner.load(key), save: async (...args) => { saving = true; await gate; return inner.save(...args); } },
    key: 'k',
    handler: () => {},
    onCommit: ({ cursors }) => commits.push(cursors),
  });
  while (!saving) await new Promise((r) => setTimeout(r, 5));
  second.controller.abort('stop now');
  await new Promise((r) => setTimeout(r, 50));
  assert.equal(commits.length, 0, 'nothing told before the save settles');
  open();
  await assert.rejects(second.run, (e) => isFeedError(e, 'aborted'));
  assert.deepEqual(commits, [{ 0: '2' }], 'the save in flight committed and was told');
  assert.deepEqual((await inner.load('k')).cursors, { 0: '2' });
});

test("a policy function that throws or rejects: hook-failed naming it (never its message), its error as cause; nothing committed", async () => {
  const feed = fakeFeed({ partitions: 1, count: 4, checkpointEvery: 2, pageSize: 2 });
  const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch };
  const secret = new TypeError('token s3cr3t expired');
  const policies = {
    sync: () => {
      throw secret;
    },
    async: async () => Promise.reject(secret),
  };
  for (const [how, policy] of Object.entries(policies)) {
    // onMissingCursors: asked before anything is read.
    const store = memoryStore();
    const requests = feed.requests.length;
    await assert.rejects(consume(source, { store, key: 'k', handler: countingHandler(), onMissingCursors: policy }), (e) => {
      assert.ok(e instanceof FeedError, `${how} onMissingCursors: a FeedError, not ${e}`);
      assert.equal(e.code, 'hook-failed');
      assert.equal(e.message, 'hook-failed: onMissingCursors failed (TypeError; its error is the cause)');
      assert.equal(e.cause, secret);
      return true;
    });
    assert.equal(feed.requests.length, requests, 'no request');
    assert.equal(await store.load('k'), undefined);
    // onHandlerError: asked after the handler threw on batch 2; batch 1 stays committed, nothing of batch 2.
    let calls = 0;
    await assert.rejects(
      consume(source, {
        store,
        key: 'k',
        handler: (batch, tx) => {
          countingHandler()(batch, tx);
          if (++calls === 2) throw new Error('boom');
        },
        onHandlerError: policy,
      }),
      (e) => {
        assert.ok(e instanceof FeedError, `${how} onHandlerError: a FeedError, not ${e}`);
        assert.equal(e.code, 'hook-failed');
        assert.equal(e.message, 'hook-failed: onHandlerError failed (TypeError; its error is the cause)');
        assert.equal(e.cause, secret);
        return true;
      },
    );
    assert.deepEqual((await store.load('k')).cursors, { 0: '2' });
    assert.deepEqual([...store.data.keys()].sort(), ['p0-1', 'p0-2']);
  }
});

test("a skip whose save fails: store-failed with the cause, as any other save's failure", async () => {
  const feed = fakeFeed({ partitions: 1, count: 4, checkpointEvery: 2, pageSize: 2 });
  const inner = memoryStore();
  const full = new Error('disk full');
  const store = {
    load: (k) => inner.load(k),
    // The skip's save (no effects) fails.
    save: async (k, record, effects, expected) => {
      if (effects === undefined) throw full;
      return inner.save(k, record, effects, expected);
    },
  };
  await assert.rejects(
    consume({ url: feed.url, partitionCount: 1, fetch: feed.fetch }, {
      store,
      key: 'k',
      handler: (batch) => {
        if (batch.events.some((e) => e.data.seq === 3)) throw new Error('poison');
      },
      onHandlerError: 'skip',
    }),
    (e) => {
      assert.ok(e instanceof FeedError, `a FeedError, not ${e}`);
      assert.equal(e.message, 'store-failed: could not commit batch 2');
      assert.equal(e.cause, full);
      return true;
    },
  );
  assert.deepEqual((await inner.load('k')).cursors, { 0: '2' });
});

test('a callback that throws (onFeed, onCommit, onRole) rejects consume() with a FeedError', async () => {
  const feed = fakeFeed({ partitions: 1, count: 4, checkpointEvery: 2, pageSize: 2 });
  const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch };
  const boom = () => {
    throw new TypeError('callback threw');
  };
  const codes = [];
  for (const callback of ['onFeed', 'onCommit', 'onRole']) {
    codes.push(await consume(source, { store: memoryStore(), key: 'k', handler: () => {}, tabs: false, [callback]: boom }).then(() => 'resolved', (e) => (isFeedError(e) ? e.code : `${e.name}`)));
  }
  assert.deepEqual(codes, ['hook-failed', 'hook-failed', 'hook-failed']);
});

/** Runs `fn`, then fails when a promise rejection went unhandled meanwhile (an async callback's, which crashes Node). */
async function noUnhandledRejection(fn) {
  const unhandled = [];
  const onUnhandled = (reason) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    await fn();
    await new Promise((r) => setTimeout(r, 20)); // a rejection is reported as unhandled after the microtasks
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  assert.deepEqual(unhandled, [], 'no unhandled rejection');
}

test('an async callback that rejects (onFeed, onCommit, onRole) rejects consume() with hook-failed, its error the cause; never unhandled', async () => {
  await noUnhandledRejection(async () => {
    const feed = fakeFeed({ partitions: 1, count: 4, checkpointEvery: 2, pageSize: 2 });
    const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch };
    for (const callback of ['onFeed', 'onCommit', 'onRole']) {
      const boom = new TypeError(`${callback} rejected`);
      const store = memoryStore();
      const handled = [];
      const options = { store, key: 'k', handler: (batch) => handled.push(batch.events.length), tabs: false, [callback]: async () => { throw boom; } };
      await assert.rejects(consume(source, options), (e) => {
        assert.ok(isFeedError(e, 'hook-failed'), `hook-failed, got ${e}`);
        assert.equal(e.message, `hook-failed: ${callback} failed (TypeError; its error is the cause)`);
        assert.equal(e.cause, boom);
        return true;
      });
      // onCommit's rejection comes after its batch committed, and before the next batch is handled.
      assert.deepEqual(handled, callback === 'onCommit' ? [2] : [], callback);
      assert.equal((await store.load('k'))?.cursors[0], callback === 'onCommit' ? '2' : undefined, callback);
    }
  });
});

test('consume() awaits what onCommit and onFeed return: the next batch waits for it', async () => {
  const feed = fakeFeed({ partitions: 1, count: 6, checkpointEvery: 2, pageSize: 2 });
  const log = [];
  const later = (what) => new Promise((r) => setTimeout(() => r(log.push(what)), 5));
  const result = await consume({ url: feed.url, partitionCount: 1, fetch: feed.fetch }, {
    store: memoryStore(),
    key: 'k',
    tabs: false,
    handler: (batch) => log.push(`handler ${batch.checkpoints.at(-1).cursor}`),
    onFeed: () => later('onFeed'),
    onCommit: ({ cursors }) => later(`onCommit ${cursors[0]}`),
  });
  assert.equal(result.batches, 3);
  assert.deepEqual(log, ['onFeed', 'handler 2', 'onCommit 2', 'handler 4', 'onCommit 4', 'handler 6', 'onCommit 6']);
});

test("the signal ends the wait for an onCommit promise that never settles: aborted, the batch before it committed", async () => {
  const feed = fakeFeed({ partitions: 1, count: 4, checkpointEvery: 2, pageSize: 2 });
  const controller = new AbortController();
  const store = memoryStore();
  const done = consume({ url: feed.url, partitionCount: 1, fetch: feed.fetch, signal: controller.signal }, {
    store,
    key: 'k',
    tabs: false,
    handler: () => {},
    onCommit: () => {
      setTimeout(() => controller.abort(new Error('user left')), 5);
      return new Promise(() => {});
    },
  });
  const got = await Promise.race([done.then(() => 'resolved', (e) => e), new Promise((r) => setTimeout(() => r('still waiting after 2 s'), 2_000))]);
  assert.ok(isFeedError(got, 'aborted'), `aborted, got ${got}`);
  assert.equal((await store.load('k')).cursors[0], '2');
});

test('a signal aborted before the call: consume() rejects aborted and calls nothing of the caller (no hook, load, fetch)', async () => {
  const feed = fakeFeed({ partitions: 1, count: 4, checkpointEvery: 2, pageSize: 4 });
  for (const onMissingCursors of ['first', () => 'first']) {
    const called = [];
    const note = (name, value) => (...args) => (called.push(name), typeof value === 'function' ? value(...args) : value);
    const inner = memoryStore();
    const run = consume(
      { url: feed.url, partitionCount: 1, fetch: note('fetch', feed.fetch), retry: false, signal: AbortSignal.abort('early') },
      {
        store: { load: note('load', (k) => inner.load(k)), save: note('save', (...a) => inner.save(...a)) },
        key: 'k',
        handler: note('handler'),
        onRole: note('onRole'),
        onFeed: note('onFeed'),
        onCommit: note('onCommit'),
        onMissingCursors: typeof onMissingCursors === 'function' ? note('onMissingCursors', onMissingCursors) : onMissingCursors,
      },
    );
    await assert.rejects(run, (e) => isFeedError(e, 'aborted') && e.cause === 'early' && e.message === 'aborted: the signal fired before consume() started');
    assert.deepEqual(called, [], 'nothing of the caller was called');
  }
});
