// Tabs mode of consume() (js/src/tabs.ts) in Node: off by default where there are no Web Locks (Node 20), the option
// checks, and the leader/follower protocol. Node 20 has a real BroadcastChannel but no navigator.locks, so the
// protocol tests install a small Web Locks stand-in (exclusive, FIFO, `ifAvailable`, `signal`, released when the
// callback settles: the parts of the spec that tabs.ts uses). The real thing, with real tabs being closed:
// tests/browser/tabs.test.mjs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { consume, memoryStore, isFeedError } from '../../../dist/entrypoints/node.js';
import { leadAcrossTabs, tabsByDefault, tabsConfig } from '../../../dist/tabs.js';
import { fakeFeed } from './consume-fake-feed.mjs';
import { withNavigator } from './navigator.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A Web Locks `LockManager.request` for one realm; `requests` logs every call. */
function fakeLocks() {
  const held = new Set();
  const queues = new Map();
  const requests = [];
  const grant = (name, callback, resolve, reject) => {
    held.add(name);
    Promise.resolve()
      .then(() => callback({ name, mode: 'exclusive' }))
      .then(resolve, reject)
      .finally(() => {
        held.delete(name);
        queues.get(name)?.shift()?.();
      });
  };
  const request = (name, options, callback) => {
    requests.push({ name, ifAvailable: options.ifAvailable === true, signal: options.signal !== undefined });
    return new Promise((resolve, reject) => {
      const queue = queues.get(name) ?? [];
      queues.set(name, queue);
      const busy = held.has(name) || queue.length > 0;
      if (options.ifAvailable) {
        if (busy) Promise.resolve().then(() => callback(null)).then(resolve, reject);
        else grant(name, callback, resolve, reject);
        return;
      }
      const { signal } = options;
      if (signal?.aborted) return reject(signal.reason);
      if (!busy) return grant(name, callback, resolve, reject);
      const waiter = () => grant(name, callback, resolve, reject);
      queue.push(waiter);
      signal?.addEventListener('abort', () => {
        const i = queue.indexOf(waiter);
        if (i >= 0) {
          queue.splice(i, 1);
          reject(signal.reason);
        }
      });
    });
  };
  return { request, requests, held };
}

/** Runs `fn` with a stand-in for `navigator.locks` (Node 20 has no `navigator`, Node 24.5+ has real Web Locks). */
function withLocks(fn) {
  const locks = fakeLocks();
  return withNavigator({ locks }, () => fn(locks));
}

/** A fake feed whose requests take `ms`, so a run spans several turns of the event loop. */
function slowFeed(ms, options) {
  const feed = fakeFeed(options);
  return { ...feed, fetch: (r) => sleep(ms).then(() => feed.fetch(r)) };
}

const countingHandler = (batch, tx) => {
  for (const e of batch.events) tx.set(e.data.id, (tx.get(e.data.id) ?? 0) + 1);
};

function assertExactlyOnce(store, total) {
  assert.deepEqual([...store.data.values()].filter((n) => n !== 1), [], 'no event applied twice');
  assert.equal(store.data.size, total, 'every event applied');
}

/** Options of one consume() call that records its roles and commits. */
function recorder(store, extra = {}) {
  const roles = [];
  const commits = [];
  const options = {
    store,
    key: 'k',
    handler: countingHandler,
    onRole: (role) => roles.push(role),
    onCommit: ({ batch, cursors, remote }) => commits.push({ remote, cursors, ids: batch.events.map((e) => e.data.id) }),
    ...extra,
  };
  return { roles, commits, options };
}

function assertBadOptions(fn, pattern) {
  assert.throws(fn, (e) => isFeedError(e, 'bad-options') && pattern.test(e.message));
}

test("the Node entry point: tabs mode is off unless asked for, also where Web Locks exist (Node 24.5+): a second consume() of a key is a cursor-conflict, not a follower, and no batch is posted", async (t) => {
  // The tests after this one are of the browser entry points' default (on where Web Locks exist), in Node with a
  // stand-in: they run after this test (node:test runs a file's tests in order), whatever its outcome.
  t.after(() => tabsByDefault(true));
  await withLocks(async (locks) => {
    const feed = slowFeed(5, { partitions: 1, count: 8, checkpointEvery: 1, pageSize: 2 });
    const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch, retry: false };
    const store = memoryStore();
    const heard = [];
    const channel = new BroadcastChannel('feedpump:k');
    channel.onmessage = (m) => heard.push(m.data);
    const a = recorder(store, { tabs: undefined });
    const b = recorder(store, { tabs: undefined });
    const [ra, rb] = await Promise.allSettled([consume(source, a.options), consume(source, b.options)]);
    await sleep(20);
    channel.close();
    assert.deepEqual([a.roles, b.roles], [['leader'], ['leader']]);
    assert.deepEqual(locks.requests, [], 'no lock asked for');
    assert.deepEqual(heard, [], 'no commit posted');
    assert.ok([ra, rb].some((r) => r.status === 'rejected' && isFeedError(r.reason, 'cursor-conflict')), 'the two calls raced on the store');
    // `tabs: true` still insists.
    const c = recorder(memoryStore(), { tabs: true });
    await consume(source, c.options);
    assert.deepEqual(locks.requests.map((r) => r.name), ['feedpump:k']);
  });
});

test('without Web Locks (Node before 24.5, workerd): tabs mode is off by default, true or names insist and are refused', () => withNavigator(undefined, async () => {
  assert.equal(tabsConfig(undefined, 'k'), undefined);
  assert.equal(tabsConfig(false, 'k'), undefined);
  assertBadOptions(() => tabsConfig(true, 'k'), /needs Web Locks/);
  assertBadOptions(() => tabsConfig({ lockName: 'x' }, 'k'), /needs Web Locks/);
  await assert.rejects(consume({ url: 'http://feed.test/feed/v1', partitionCount: 1 }, { ...recorder(memoryStore()).options, tabs: true }), (e) =>
    isFeedError(e, 'bad-options'),
  );

  // Off: consume() runs as before; onRole says 'leader' once and every onCommit is local.
  const feed = fakeFeed({ partitions: 2, count: 12 });
  const store = memoryStore();
  const r = recorder(store);
  const result = await consume({ url: feed.url, partitionCount: 2, fetch: feed.fetch, retry: false }, r.options);
  assert.deepEqual(r.roles, ['leader']);
  assert.ok(r.commits.length > 1);
  assert.ok(r.commits.every((c) => c.remote === false));
  assert.equal(result.events, 24);
  assertExactlyOnce(store, 24);
}));

test('options: lock and channel names default to feedpump:<key>; bad values are bad-options', async () => {
  await withLocks(async () => {
    assert.deepEqual(tabsConfig(undefined, 'orders'), { lockName: 'feedpump:orders', channelName: 'feedpump:orders' });
    assert.deepEqual(tabsConfig(true, 'orders'), { lockName: 'feedpump:orders', channelName: 'feedpump:orders' });
    assert.deepEqual(tabsConfig({ lockName: 'L' }, 'orders'), { lockName: 'L', channelName: 'feedpump:orders' });
    assert.deepEqual(tabsConfig({ channelName: 'C' }, 'orders'), { lockName: 'feedpump:orders', channelName: 'C' });
    assert.equal(tabsConfig(false, 'orders'), undefined);
    for (const tabs of ['yes', 1, null]) assertBadOptions(() => tabsConfig(tabs, 'k'), /tabs must be a boolean/);
    for (const lockName of ['', '-reserved', 5]) assertBadOptions(() => tabsConfig({ lockName }, 'k'), /tabs\.lockName/);
    for (const channelName of ['', {}]) assertBadOptions(() => tabsConfig({ channelName }, 'k'), /tabs\.channelName/);
    const store = memoryStore();
    await assert.rejects(consume({ url: 'http://x/', partitionCount: 1 }, { ...recorder(store).options, onRole: 'leader' }), (e) => isFeedError(e, 'bad-options'));
    await assert.rejects(consume({ url: 'http://x/', partitionCount: 1 }, { ...recorder(store).options, tabs: { lockName: '-x' } }), (e) => isFeedError(e, 'bad-options'));
  });
});

test('two consumers of one key: one leads, the other follows, hears every commit, then resumes from the store', async () => {
  await withLocks(async (locks) => {
    const feed = slowFeed(5, { partitions: 2, count: 30, checkpointEvery: 3, pageSize: 4 });
    const store = memoryStore();
    const source = { url: feed.url, partitionCount: 2, fetch: feed.fetch, retry: false };
    const a = recorder(store);
    const b = recorder(store);
    const [ra, rb] = await Promise.all([consume(source, a.options), consume(source, b.options)]);

    assert.deepEqual(a.roles, ['leader']);
    assert.deepEqual(b.roles, ['follower', 'leader']);
    assert.equal(ra.events, 60);
    assert.ok(a.commits.length >= 5 && a.commits.every((c) => !c.remote));
    // Every commit of the leader reached the follower, in order, with the same cursors and events.
    assert.deepEqual(b.commits, a.commits.map((c) => ({ ...c, remote: true })));
    // The follower took over after the leader returned: it read the leader's cursors and found nothing new.
    assert.equal(rb.start, 'stored');
    assert.equal(rb.events, 0);
    assert.deepEqual(rb.cursors, ra.cursors);
    assertExactlyOnce(store, 60);
    assert.ok(locks.requests.every((r) => r.name === 'feedpump:k'));
    assert.equal(locks.held.size, 0, 'the lock is released');
  });
});

test('the leader fails: the follower takes over from the committed cursors and finishes, exactly once', async () => {
  await withLocks(async () => {
    const feed = slowFeed(3, { partitions: 2, count: 40, checkpointEvery: 2, pageSize: 3 });
    const store = memoryStore();
    const source = { url: feed.url, partitionCount: 2, fetch: feed.fetch, retry: false };
    let batches = 0;
    const a = recorder(store, {
      handler: (batch, tx) => {
        countingHandler(batch, tx); // staged, then the throw: none of it commits
        if (++batches === 4) throw new Error('leader dies');
      },
    });
    const b = recorder(store);
    const [ra, rb] = await Promise.allSettled([consume(source, a.options), consume(source, b.options)]);
    assert.equal(ra.status, 'rejected');
    assert.ok(isFeedError(ra.reason, 'handler-failed'));
    assert.equal(rb.status, 'fulfilled', String(rb.reason));
    assert.deepEqual(b.roles, ['follower', 'leader']);
    const leaderEvents = a.commits.reduce((n, c) => n + c.ids.length, 0);
    assert.equal(a.commits.length, 3);
    assert.equal(rb.value.start, 'stored');
    assert.equal(rb.value.events, 80 - leaderEvents, 'the new leader applied exactly what the old one had not');
    assert.deepEqual(b.commits.filter((c) => c.remote), a.commits.map((c) => ({ ...c, remote: true })));
    assertExactlyOnce(store, 80);
  });
});

test('the signal ends a follower’s wait with aborted; the leader is not disturbed', async () => {
  await withLocks(async (locks) => {
    const feed = slowFeed(5, { partitions: 1, count: 30, checkpointEvery: 2, pageSize: 4 });
    const store = memoryStore();
    const a = recorder(store);
    const controller = new AbortController();
    const b = recorder(store, { onCommit: () => controller.abort(new Error('user left')) });
    const [ra, rb] = await Promise.allSettled([
      consume({ url: feed.url, partitionCount: 1, fetch: feed.fetch, retry: false }, a.options),
      consume({ url: feed.url, partitionCount: 1, fetch: feed.fetch, retry: false, signal: controller.signal }, b.options),
    ]);
    assert.equal(rb.status, 'rejected');
    assert.ok(isFeedError(rb.reason, 'aborted'), String(rb.reason));
    assert.equal(rb.reason.cause.message, 'user left');
    assert.deepEqual(b.roles, ['follower']);
    assert.equal(ra.status, 'fulfilled');
    assert.equal(ra.value.events, 30);
    assertExactlyOnce(store, 30);
    assert.equal(locks.held.size, 0);
    // An already aborted signal does not even ask for the lock.
    const before = locks.requests.length;
    await assert.rejects(consume({ url: feed.url, partitionCount: 1, fetch: feed.fetch, signal: AbortSignal.abort() }, recorder(store).options), (e) =>
      isFeedError(e, 'aborted'),
    );
    assert.equal(locks.requests.length, before);
  });
});

test('a follower whose onCommit or onRole throws rejects with hook-failed, that error its cause', async () => {
  await withLocks(async () => {
    const feed = slowFeed(5, { partitions: 1, count: 20, checkpointEvery: 2, pageSize: 4 });
    const store = memoryStore();
    const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch, retry: false };
    const boom = new Error('view failed');
    const [ra, rb] = await Promise.allSettled([
      consume(source, recorder(store).options),
      consume(source, recorder(store, { onCommit: () => { throw boom; } }).options),
    ]);
    assert.equal(ra.status, 'fulfilled');
    assert.equal(rb.status, 'rejected');
    assert.ok(isFeedError(rb.reason, 'hook-failed'), `hook-failed, got ${rb.reason}`);
    assert.match(rb.reason.message, /onCommit failed \(Error; its error is the cause\)/);
    assert.equal(rb.reason.cause, boom);

    const roleError = new Error('no role for you');
    const [rc, rd] = await Promise.allSettled([
      consume(source, recorder(store).options),
      consume(source, recorder(store, { onRole: (role) => { if (role === 'follower') throw roleError; } }).options),
    ]);
    assert.equal(rc.status, 'fulfilled');
    assert.ok(isFeedError(rd.reason, 'hook-failed'), `hook-failed, got ${rd.reason}`);
    assert.match(rd.reason.message, /onRole failed/);
    assert.equal(rd.reason.cause, roleError);
  });
});

test('tabs: false never asks for the lock; other names do not exclude each other', async () => {
  await withLocks(async (locks) => {
    const feed = fakeFeed({ partitions: 1, count: 10 });
    const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch, retry: false };
    const off = recorder(memoryStore(), { tabs: false });
    await consume(source, off.options);
    assert.deepEqual(off.roles, ['leader']);
    assert.equal(locks.requests.length, 0);

    // Two keys, two stores: each holds its own lock and both lead at once.
    const x = recorder(memoryStore(), { key: 'x' });
    const y = recorder(memoryStore(), { key: 'y' });
    await Promise.all([consume(source, x.options), consume(source, y.options)]);
    assert.deepEqual([x.roles, y.roles], [['leader'], ['leader']]);
    assert.deepEqual(new Set(locks.requests.map((r) => r.name)), new Set(['feedpump:x', 'feedpump:y']));
  });
});

test("mode 'raw': followers get the leader's event shape (raw, data, headers), not a clone without the getters", async () => {
  await withLocks(async () => {
    const feed = slowFeed(5, { partitions: 2, count: 12, checkpointEvery: 2, pageSize: 4, headers: true });
    const store = memoryStore();
    const source = { url: feed.url, partitionCount: 2, fetch: feed.fetch, retry: false, mode: 'raw', headers: '_all' };
    const seen = { a: [], b: [] };
    const shape = (list) => ({ batch, remote }) => {
      for (const e of batch.events) list.push({ remote, partition: e.partition, raw: e.raw, data: e.data, headers: e.headers });
    };
    const a = recorder(store, { onCommit: shape(seen.a) });
    const b = recorder(store, { onCommit: shape(seen.b) });
    await Promise.all([consume(source, a.options), consume(source, b.options)]);
    assert.deepEqual(b.roles, ['follower', 'leader']);
    assert.equal(seen.a.length, 24);
    assert.equal(typeof seen.a[0].raw, 'string');
    assert.deepEqual(seen.a[0].headers, { ce_id: `h-${seen.a[0].data.id}` }, 'the leader sees the headers');
    assert.deepEqual(seen.b, seen.a.map((e) => ({ ...e, remote: true })), 'the follower sees the same events');
  });
});

/** Holds the lock `feedpump:k` until `release()` is called (another tab that leads). */
function holdLock(locks) {
  let release;
  const held = new Promise((resolve) => {
    locks.request('feedpump:k', { ifAvailable: true }, () => new Promise((r) => { release = r; resolve(); }));
  });
  return held.then(() => release);
}

test('a follower hears only well-formed commit messages of its key; raw ones get a lazy data that fails as bad-line', async () => {
  await withLocks(async (locks) => {
    const release = await holdLock(locks);
    // Slow enough that a message posted at the first own commit arrives while the call still runs.
    const feed = slowFeed(10, { partitions: 1, count: 6, checkpointEvery: 1, pageSize: 1 });
    const store = memoryStore();
    const heard = [];
    let postAfterOwnCommit;
    const follower = consume({ url: feed.url, partitionCount: 1, fetch: feed.fetch, retry: false }, {
      store,
      key: 'k',
      handler: countingHandler,
      onCommit: ({ batch, cursors, remote }) => {
        if (!remote) return postAfterOwnCommit?.();
        const e = batch.events[0];
        let data;
        try {
          data = e?.data;
        } catch (error) {
          data = error;
        }
        heard.push({ cursors, n: batch.events.length, data, same: e === undefined || data instanceof Error || e.data === data, raw: e?.raw, headers: e?.headers });
      },
    });
    const channel = new BroadcastChannel('feedpump:k');
    const ok = { type: 'feedpump-commit', key: 'k', batch: { events: [], checkpoints: [] }, cursors: { 0: '1' } };
    for (const bad of [
      5,
      null,
      'feedpump-commit',
      { ...ok, type: 'other' },
      { ...ok, key: 'other' },
      { ...ok, cursors: undefined },
      { ...ok, cursors: 'x' },
      { ...ok, batch: undefined },
      { ...ok, batch: { events: {}, checkpoints: [] } },
      { ...ok, batch: { events: [], checkpoints: {} } },
    ]) channel.postMessage(bad);
    channel.postMessage(ok);
    channel.postMessage({ ...ok, raw: true, batch: { events: [{ partition: 3, raw: '{"a":1}', headers: { h: 'v' } }], checkpoints: [] } });
    channel.postMessage({ ...ok, raw: true, batch: { events: [{ partition: 3, raw: '{bad' }], checkpoints: [] } });
    while (heard.length < 3) await sleep(5);
    assert.equal(heard.length, 3, 'only the well-formed messages of key k');
    assert.deepEqual(heard[0], { cursors: { 0: '1' }, n: 0, data: undefined, same: true, raw: undefined, headers: undefined });
    assert.deepEqual(heard[1], { cursors: { 0: '1' }, n: 1, data: { a: 1 }, same: true, raw: '{"a":1}', headers: { h: 'v' } });
    const bad = heard[2].data;
    assert.ok(isFeedError(bad, 'bad-line'), String(bad));
    assert.match(bad.message, /^bad-line: the event's JSON does not parse \(.+\), partition 3$/);
    assert.equal(bad.partition, 3);
    assert.equal(bad.cause, undefined, 'the parser\'s own error may quote the event');
    // After this call's own first commit, the channel is no longer heard.
    let sent = 0;
    postAfterOwnCommit = () => { if (sent++ === 0) channel.postMessage(ok); };
    release();
    const r = await follower;
    await sleep(20);
    channel.close();
    assert.equal(r.events, 6);
    assert.equal(heard.length, 3, 'nothing heard after the first own commit');
    assert.ok(sent > 1, 'own commits went on after the message was posted');
  });
});

test('tabs: refusals and aborts say why; errors of the caller pass as they are; no BroadcastChannel still elects one', async () => {
  const source = { url: 'http://feed.test/feed/v1', partitionCount: 1, retry: false };
  const store = memoryStore();
  assertBadOptions(() => tabsConfig({ lockName: '-x' }, 'k'), /^bad-options: tabs\.lockName must be a non-empty string not starting with "-", got "-x"$/);
  await withLocks(async () => {
    assertBadOptions(() => tabsConfig({ channelName: '' }, 'k'), /^bad-options: tabs\.channelName must be a non-empty string, got ""$/);
    await assert.rejects(consume({ ...source, signal: AbortSignal.abort('gone') }, { store, key: 'k', handler: () => {} }), (e) =>
      isFeedError(e, 'aborted') && e.message === 'aborted: the signal fired before consume() started' && e.cause === 'gone');
  });
  // Web Locks that refuse (a DOMException) → bad-options with the cause; anything else thrown passes as it is.
  const refused = new DOMException('no locks here', 'SecurityError');
  const odd = new TypeError('odd');
  for (const [thrown, check] of [
    [refused, (e) => isFeedError(e, 'bad-options') && e.cause === refused && e.message === 'bad-options: Web Locks refused the lock "feedpump:k" (pass tabs: false to consume without it)'],
    [odd, (e) => e === odd],
  ]) {
    await withNavigator({ locks: { request: async () => { throw thrown; } } }, () =>
      assert.rejects(consume(source, { store, key: 'k', handler: () => {} }), check));
  }
  // `locks` without request(): no Web Locks.
  await withNavigator({ locks: {} }, () => assert.equal(tabsConfig(undefined, 'k'), undefined));
  // The lock is still taken without BroadcastChannel; no onRole given.
  const Channel = globalThis.BroadcastChannel;
  delete globalThis.BroadcastChannel;
  try {
    await withLocks(async (locks) => {
      const feed = fakeFeed({ partitions: 1, count: 3 });
      const r = await consume({ ...source, fetch: feed.fetch }, { store: memoryStore(), key: 'k', handler: countingHandler });
      assert.equal(r.events, 3);
      assert.equal(locks.requests.length, 1);
    });
  } finally {
    globalThis.BroadcastChannel = Channel;
  }
});

test('tabs: a DOMException thrown while leading is the callback\'s (hook-failed, its cause), not the lock\'s; a follower aborted while waiting says so', async () => {
  await withLocks(async () => {
    const feed = fakeFeed({ partitions: 1, count: 3 });
    const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch, retry: false };
    const quota = new DOMException('full', 'QuotaExceededError');
    await assert.rejects(consume(source, { store: memoryStore(), key: 'k', handler: countingHandler, onCommit: () => { throw quota; } }), (e) => isFeedError(e, 'hook-failed') && e.cause === quota);
  });
  await withLocks(async (locks) => {
    const release = await holdLock(locks);
    const controller = new AbortController();
    const waiting = consume({ url: 'http://feed.test/feed/v1', partitionCount: 1, signal: controller.signal }, { store: memoryStore(), key: 'k', handler: () => {} });
    await sleep(5);
    controller.abort('user left');
    await assert.rejects(waiting, (e) => isFeedError(e, 'aborted') && e.message === 'aborted: the signal fired while waiting for the lock of another tab' && e.cause === 'user left');
    release();
  });
});

test('tabs: batches whose events were all filtered out are announced too (raw and parsed)', async () => {
  for (const mode of ['raw', 'parsed']) {
    await withLocks(async () => {
      const feed = slowFeed(3, { partitions: 1, count: 8, checkpointEvery: 1, pageSize: 2 });
      const store = memoryStore();
      const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch, retry: false, mode, filter: { include: 'x', typeFrom: (e) => (e.data.seq <= 2 ? 'x' : 'y') } };
      const a = recorder(store);
      const b = recorder(store);
      await Promise.all([consume(source, a.options), consume(source, b.options)]);
      assert.ok(a.commits.some((c) => c.ids.length === 0), 'some batches kept no event');
      assert.deepEqual(b.commits.filter((c) => c.remote), a.commits.map((c) => ({ ...c, remote: true })), mode);
    });
  }
});

test('leadAcrossTabs without Web Locks is bad-options (consume() never gets there: tabsConfig refuses first)', () => withNavigator(undefined, async () => {
  await assert.rejects(leadAcrossTabs({ lockName: 'l', channelName: 'c' }, 'k', undefined, {}, async () => 1), (e) =>
    isFeedError(e, 'bad-options') && e.message === 'bad-options: tabs mode needs Web Locks (navigator.locks), absent here; pass tabs: false');
}));

test('a follower without onCommit waits quietly and takes over', async () => {
  await withLocks(async () => {
    const feed = slowFeed(3, { partitions: 1, count: 6, checkpointEvery: 1, pageSize: 2 });
    const store = memoryStore();
    const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch, retry: false };
    const roles = [];
    const [a, b] = await Promise.all([
      consume(source, { store, key: 'k', handler: countingHandler }),
      consume(source, { store, key: 'k', handler: countingHandler, onRole: (r) => roles.push(r) }),
    ]);
    assert.deepEqual(roles, ['follower', 'leader']);
    assert.equal(a.events + b.events, 6);
    assertExactlyOnce(store, 6);
  });
});

test('a call that has returned hears nothing more (its channel is closed)', async () => {
  await withLocks(async () => {
    const feed = slowFeed(3, { partitions: 1, count: 4, checkpointEvery: 1, pageSize: 2 });
    const store = memoryStore();
    const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch, retry: false };
    const a = recorder(store);
    const b = recorder(store);
    const [, rb] = await Promise.all([consume(source, a.options), consume(source, b.options)]);
    assert.equal(rb.events, 0, 'the follower took over and found nothing new: it never committed');
    const heardBefore = b.commits.length;
    const witness = new BroadcastChannel('feedpump:k');
    const arrived = new Promise((r) => witness.addEventListener('message', r, { once: true }));
    const sender = new BroadcastChannel('feedpump:k');
    sender.postMessage({ type: 'feedpump-commit', key: 'k', batch: { events: [], checkpoints: [] }, cursors: { 0: '9' } });
    await arrived;
    await sleep(10);
    witness.close();
    sender.close();
    assert.equal(b.commits.length, heardBefore, 'nothing delivered after consume() returned');
  });
});

test('a follower or leader whose async onCommit or onRole rejects rejects with hook-failed, that error its cause; never unhandled', async () => {
  const unhandled = [];
  const onUnhandled = (reason) => unhandled.push(reason);
  process.on('unhandledRejection', onUnhandled);
  try {
    await withLocks(async (locks) => {
      const feed = slowFeed(5, { partitions: 1, count: 20, checkpointEvery: 2, pageSize: 4 });
      const store = memoryStore();
      const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch, retry: false };
      const cases = [
        ['onCommit', 'follower', { onCommit: async ({ remote }) => { if (remote) throw new Error('view failed'); } }],
        ['onRole', 'follower', { onRole: async (role) => { if (role === 'follower') throw new Error('no role for you'); } }],
        ['onRole', 'leader', { onRole: async (role) => { if (role === 'leader') throw new Error('no lead for you'); } }],
      ];
      for (const [hook, role, extra] of cases) {
        let cause;
        const wrap = (f) => async (arg) => {
          try {
            await f(arg);
          } catch (e) {
            cause = e;
            throw e;
          }
        };
        const hooks = Object.fromEntries(Object.entries(extra).map(([k, f]) => [k, wrap(f)]));
        const calls = role === 'leader' ? [consume(source, recorder(store, hooks).options)] : [consume(source, recorder(store).options), consume(source, recorder(store, hooks).options)];
        const settled = await Promise.allSettled(calls);
        const failed = settled.at(-1);
        assert.equal(failed.status, 'rejected', `${role} ${hook}: rejected`);
        assert.ok(isFeedError(failed.reason, 'hook-failed'), `hook-failed, got ${failed.reason}`);
        assert.match(failed.reason.message, new RegExp(`${hook} failed \\(Error; its error is the cause\\)`));
        assert.equal(failed.reason.cause, cause);
        if (role === 'follower') assert.equal(settled[0].status, 'fulfilled');
        assert.equal(locks.held.size, 0);
      }
    });
    await sleep(20);
  } finally {
    process.off('unhandledRejection', onUnhandled);
  }
  assert.deepEqual(unhandled, [], 'no unhandled rejection');
});

test('leadAcrossTabs settles after every hook it started; it rejects with the first failure, of a hook or of the leading', async () => {
  const config = { lockName: 'feedpump:k', channelName: 'feedpump:k' };
  const commit = { type: 'feedpump-commit', key: 'k', batch: { events: [], checkpoints: [] }, cursors: { 0: '1' } };
  /** A follower of another holder of the lock that hears one remote commit, whose hook settles when told. */
  const follow = async (locks, lead) => {
    const release = await holdLock(locks);
    const log = [];
    let settle;
    const hook = new Promise((resolve, reject) => (settle = { resolve, reject }));
    const call = leadAcrossTabs(config, 'k', undefined, {
      onRole: async (role) => log.push(role),
      onRemoteCommit: () => (log.push('remote'), hook),
    }, async () => (log.push('lead'), lead()));
    call.then(() => log.push('settled'), () => log.push('settled'));
    const channel = new BroadcastChannel('feedpump:k');
    channel.postMessage(commit);
    while (!log.includes('remote')) await sleep(2);
    channel.close();
    release();
    while (!log.includes('lead')) await sleep(2);
    await sleep(20);
    return { log, settle, call };
  };
  await withLocks(async (locks) => {
    // The leading fails first, then the hook: the leading's failure; not before the hook settled.
    const own = new Error('leader failed');
    const a = await follow(locks, async () => { throw own; });
    assert.deepEqual(a.log, ['follower', 'remote', 'leader', 'lead']);
    a.settle.reject(new Error('view failed'));
    await assert.rejects(a.call, (e) => e === own);

    // The hook fails first (while leading), then the leading: the hook's failure.
    const view = new Error('view failed');
    let failLead;
    const b = await follow(locks, () => new Promise((_, reject) => (failLead = reject)));
    b.settle.reject(view);
    await sleep(10);
    assert.deepEqual(b.log, ['follower', 'remote', 'leader', 'lead'], 'still leading');
    failLead(new Error('leader failed'));
    await assert.rejects(b.call, (e) => e === view);

    // The leading returns, then the hook resolves: the result, once the hook is done.
    const c = await follow(locks, async () => 'led');
    assert.deepEqual(c.log, ['follower', 'remote', 'leader', 'lead'], 'not settled while the hook runs');
    c.settle.resolve();
    assert.equal(await c.call, 'led');
    assert.equal(locks.held.size, 0);
  });
});

test("onCommit calls of one consume() never overlap and come in commit order: a follower's remote ones one after another, its own first after them", async () => {
  await withLocks(async (locks) => {
    // Two consumers of one store: `a` leads (its commits come every 15 ms), `b` follows and takes over when `a` returns.
    const feed = slowFeed(15, { partitions: 1, count: 8, checkpointEvery: 1, pageSize: 1 });
    const store = memoryStore();
    const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch, retry: false };
    const log = [];
    let running = 0;
    let overlapped = 0;
    // b's onCommit: the first remote one is slow (60 ms), the others quick; an overlap or a swap shows in `log`.
    const onCommit = async ({ cursors, remote }) => {
      const at = `${remote ? 'remote' : 'own'} ${cursors[0]}`;
      if (running++ > 0) overlapped++;
      log.push(`start ${at}`);
      await sleep(log.length === 1 ? 60 : 1);
      log.push(`end ${at}`);
      running--;
    };
    const a = consume(source, { ...recorder(store).options, maxBatches: 4 });
    while (locks.held.size === 0) await sleep(1);
    const b = consume(source, { ...recorder(store).options, onCommit });
    const [ra, rb] = await Promise.all([a, b]);
    assert.equal(ra.events + rb.events, 8);
    assert.equal(overlapped, 0, `no two onCommit calls of b at once: ${log.join(', ')}`);
    const order = log.filter((l) => l.startsWith('end ')).map((l) => l.slice(4));
    assert.deepEqual(order, ['remote 1', 'remote 2', 'remote 3', 'remote 4', 'own 5', 'own 6', 'own 7', 'own 8']);
    assertExactlyOnce(store, 8);
  });
});

test('a follower keeps nothing of the remote commits it heard: memory does not grow with them', async () => {
  // The follower's hooks were chained as `Promise.all([started, hook])`, whose value nests the previous one: every
  // remote commit stayed reachable, with whatever the caller's onCommit returned, for as long as the follower waited
  // (hours, in a background tab). Counted here with WeakRefs to what each hook returned, after a GC.
  const { setFlagsFromString } = await import('node:v8');
  const { runInNewContext } = await import('node:vm');
  setFlagsFromString('--expose-gc');
  const gc = runInNewContext('gc');
  const config = { lockName: 'feedpump:k', channelName: 'feedpump:k' };
  const commit = { type: 'feedpump-commit', key: 'k', batch: { events: [], checkpoints: [] }, cursors: { 0: '1' } };
  const COMMITS = 200;
  await withLocks(async (locks) => {
    const release = await holdLock(locks);
    const returned = [];
    const call = leadAcrossTabs(config, 'k', undefined, {
      onRemoteCommit: async () => {
        const value = { payload: new Uint8Array(1024) };
        returned.push(new WeakRef(value));
        return value;
      },
    }, async () => 'led');
    const channel = new BroadcastChannel('feedpump:k');
    for (let i = 0; i < COMMITS; i++) channel.postMessage(commit);
    while (returned.length < COMMITS) await sleep(2);
    channel.close();
    await sleep(10);
    gc();
    await sleep(0);
    gc();
    const alive = returned.filter((r) => r.deref() !== undefined).length;
    release();
    assert.equal(await call, 'led');
    assert.ok(alive <= 2, `${alive} of ${COMMITS} values the follower's hooks returned are still reachable`);
  });
});
