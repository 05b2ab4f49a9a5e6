// The cursor stores: memory, IndexedDB (fake-indexeddb in Node; the real thing runs in Chromium in tests/browser/)
// and Durable Object storage (a scripted storage here; the real one runs in workerd in tests/workerd/).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { IDBFactory } from 'fake-indexeddb';
import { isFeedError, memoryStore } from '../../../dist/entrypoints/node.js';
import { durableObjectStore } from '../../../dist/entrypoints/durable-object.js';
import { idbRequest, indexedDbStore } from '../../../dist/entrypoints/indexeddb.js';
import { reentrantSave, requestFailsAfterCursorPut } from '../../browser/idb-cases.js';
import { withNavigator } from './navigator.mjs';

const rec = (cursors, identity = 'feed') => ({ identity, cursors, savedAt: 1 });

test('memory: effects and record commit together; a throwing effect commits nothing', async () => {
  const store = memoryStore();
  assert.equal(await store.load('k'), undefined);
  await store.save('k', rec({ 0: '1' }), (tx) => {
    tx.set('a', 1);
    assert.equal(tx.get('a'), 1, 'reads see the transaction\'s writes');
    assert.equal(store.data.has('a'), false, 'not visible outside before the commit');
  });
  assert.deepEqual(await store.load('k'), rec({ 0: '1' }));
  await assert.rejects(
    store.save('k', rec({ 0: '2' }), async (tx) => {
      tx.set('b', 2);
      tx.delete('a');
      await null;
      throw new Error('nope');
    }),
    /nope/,
  );
  assert.deepEqual([...store.data], [['a', 1]]);
  assert.deepEqual((await store.load('k')).cursors, { 0: '1' });
  const loaded = await store.load('k');
  loaded.cursors[0] = 'changed';
  assert.equal((await store.load('k')).cursors[0], '1', 'load returns a copy');
});

function idbStore(factory = new IDBFactory(), extra = {}) {
  return indexedDbStore({
    database: 'app',
    userStores: ['projection'],
    upgrade: (db) => db.createObjectStore('projection', { autoIncrement: true }),
    indexedDB: factory,
    ...extra,
  });
}

async function projection(store) {
  const db = await store.db();
  const tx = db.transaction(['projection'], 'readonly');
  return idbRequest(tx.objectStore('projection').getAll());
}

test('memory: a write after the save ended (a handler that did not await its work) throws store-failed, as IndexedDB refuses it; nothing is lost silently', async () => {
  const store = memoryStore();
  const record = { identity: 'f', cursors: { 0: 'a' } };
  let tx;
  await store.save('k', record, (t) => {
    tx = t;
    t.set('in', 1);
  });
  assert.equal(store.data.get('in'), 1);
  for (const late of [() => tx.set('late', 1), () => tx.delete('in')]) {
    assert.throws(late, (e) => isFeedError(e, 'store-failed') && /after its transaction ended/.test(e.message));
  }
  assert.equal(store.data.has('late'), false);
  assert.equal(store.data.get('in'), 1);
  // A failed save's transaction is over too.
  await assert.rejects(store.save('k', record, (t) => { tx = t; throw new Error('handler'); }), /handler/);
  assert.throws(() => tx.set('x', 1), (e) => isFeedError(e, 'store-failed'));
});

test('indexeddb: opens lazily; a save commits the projection and the cursor in one transaction', async () => {
  const factory = new IDBFactory();
  const store = idbStore(factory);
  assert.deepEqual(await factory.databases(), [], 'nothing opened before the first call');
  assert.equal(await store.load('k'), undefined);
  assert.deepEqual((await factory.databases()).map((d) => d.name), ['app']);
  let scope;
  await store.save('k', rec({ 0: '3' }), async (tx) => {
    scope = [...tx.objectStoreNames].sort();
    const ps = tx.objectStore('projection');
    await idbRequest(ps.add({ id: 'x1' }));
    await idbRequest(ps.add({ id: 'x2' })); // awaiting requests of the transaction keeps it alive
  });
  assert.deepEqual(scope, ['feedpump-cursors', 'projection']);
  assert.deepEqual(await projection(store), [{ id: 'x1' }, { id: 'x2' }]);
  assert.deepEqual(await store.load('k'), rec({ 0: '3' }));
});

test('indexeddb: a throwing or rejecting handler aborts: neither its writes nor the cursor commit', async () => {
  const store = idbStore();
  await store.save('k', rec({ 0: '1' }));
  const boom = new Error('boom');
  await assert.rejects(store.save('k', rec({ 0: '2' }), (tx) => {
    tx.objectStore('projection').add({ id: 'sync' });
    throw boom;
  }), (e) => e === boom);
  await assert.rejects(store.save('k', rec({ 0: '3' }), async (tx) => {
    await idbRequest(tx.objectStore('projection').add({ id: 'async' }));
    throw boom;
  }), (e) => e === boom);
  assert.deepEqual(await projection(store), []);
  assert.deepEqual((await store.load('k')).cursors, { 0: '1' });
});

test('indexeddb: a failing request aborts the transaction → store-failed, nothing committed', async () => {
  const factory = new IDBFactory();
  const store = indexedDbStore({
    database: 'uniq',
    userStores: ['p'],
    upgrade: (db) => db.createObjectStore('p', { keyPath: 'id' }),
    indexedDB: factory,
  });
  await assert.rejects(store.save('k', rec({ 0: '1' }), (tx) => {
    tx.objectStore('p').add({ id: 1 });
    tx.objectStore('p').add({ id: 1 }); // ConstraintError: not awaited by the handler
  }), (e) => isFeedError(e, 'store-failed') && /ConstraintError/.test(e.message));
  assert.equal(await store.load('k'), undefined);
});

test('indexeddb: a handler that awaits something else lets the transaction commit early → store-failed, no cursor', async () => {
  const store = idbStore();
  await assert.rejects(store.save('k', rec({ 0: '9' }), async (tx) => {
    tx.objectStore('projection').add({ id: 'early' });
    await new Promise((r) => tx.addEventListener('complete', r)); // not a request: the transaction goes idle and commits
  }), (e) => isFeedError(e, 'store-failed') && /before the handler finished/.test(e.message));
  assert.equal(await store.load('k'), undefined, 'the cursor was not written: the batch is applied again, never lost');
});

test('indexeddb: save() resolves on the transaction\'s complete: a request failing after the cursor put → rejects, nothing committed', async () => {
  const r = await requestFailsAfterCursorPut({ indexedDbStore, idbRequest, indexedDB: new IDBFactory(), database: 'after-put' });
  assert.ok(r.failingQueued && r.cursorPutSucceeded, 'the cursor put succeeded before the failing request');
  assert.equal(r.saveRejected, true, 'save() rejected');
  assert.equal(r.code, 'store-failed', r.message);
  assert.match(r.message, /ConstraintError/);
  assert.deepEqual(r.after, r.before, 'load() still gives the record before the save');
  assert.deepEqual(r.ids, ['e1'], "the batch's effects were rolled back");
});

test('indexeddb: a re-entrant save (a handler awaiting a save of its own key) ends: the inner save commits, the outer one is store-failed', async () => {
  const r = await reentrantSave({ indexedDbStore, indexedDB: new IDBFactory(), database: 'reentrant' });
  assert.deepEqual(r.inner, { ended: 'resolved' });
  assert.equal(r.outer.ended, 'rejected', JSON.stringify(r.outer));
  assert.equal(r.outer.code, 'store-failed', r.outer.message);
  assert.match(r.outer.message, /before the handler finished/);
  assert.deepEqual(r.after?.cursors, { 0: '1' }, "the inner save's record, not the outer's");
});

test('memory: re-entrant saves never wait (it has no lock): a save of the same key inside a save commits and the outer one is cursor-conflict; one of another key inside a save commits, and so does the outer one', async () => {
  const store = memoryStore();
  const record = (cursor) => ({ identity: 'feed', cursors: { 0: cursor }, savedAt: 0 });
  await assert.rejects(
    store.save('k', record('2'), async () => store.save('k', record('1'), undefined, null), null),
    (e) => isFeedError(e, 'cursor-conflict'),
  );
  assert.deepEqual((await store.load('k')).cursors, { 0: '1' });
  await store.save('k2', record('2'), async () => store.save('k3', record('1'), undefined, null), null);
  assert.deepEqual([(await store.load('k2')).cursors, (await store.load('k3')).cursors], [{ 0: '2' }, { 0: '1' }]);
});

test('indexeddb: a closed connection is opened again', async () => {
  const store = idbStore();
  await store.save('k', rec({ 0: '1' }));
  (await store.db()).close(); // as if closed behind the store's back: transaction() now throws InvalidStateError
  await store.save('k', rec({ 0: '2' }), (tx) => void tx.objectStore('projection').add({ id: 'after-reopen' }));
  assert.deepEqual((await store.load('k')).cursors, { 0: '2' });
  store.close();
  assert.deepEqual(await projection(store), [{ id: 'after-reopen' }]);
});

test('indexeddb: versionchange from another connection closes ours; the next call opens again', async () => {
  const factory = new IDBFactory();
  const store = idbStore(factory);
  await store.save('k', rec({ 0: '1' }));
  const first = await store.db();
  let closedFirst = false;
  // A delete needs every connection to close: it is blocked until our versionchange handler closes the connection.
  await new Promise((resolve, reject) => {
    const del = factory.deleteDatabase('app');
    del.onsuccess = resolve;
    del.onerror = () => reject(del.error);
  });
  try {
    first.transaction(['projection']);
  } catch (e) {
    closedFirst = e.name === 'InvalidStateError';
  }
  assert.ok(closedFirst, 'our connection was closed on versionchange');
  assert.notEqual(await store.db(), first, 'forgotten at once: the next call opens a new connection');
  assert.equal(await store.load('k'), undefined, 'opened again (a fresh database after the delete)');
  assert.notEqual(await store.db(), first);
});

/** A Durable Object storage stand-in with transactional semantics (staged writes, rollback on throw). */
function scriptedStorage({ failPut } = {}) {
  const data = new Map();
  return {
    data,
    get: async (k) => data.get(k),
    transaction: async (closure) => {
      const staged = new Map();
      const txn = {
        get: async (k) => (staged.has(k) ? staged.get(k) : data.get(k)),
        put: async (k, v) => {
          if (failPut?.(k)) throw new Error(`put ${k} failed`);
          staged.set(k, v);
        },
      };
      const out = await closure(txn);
      for (const [k, v] of staged) data.set(k, structuredClone(v));
      return out;
    },
  };
}

test('durable object: the effects and the cursor in one storage.transaction; the handler error passes as it is', async () => {
  const storage = scriptedStorage();
  const store = durableObjectStore(storage);
  assert.equal(await store.load('k'), undefined);
  await store.save('k', rec({ 2: '5' }), async (txn) => txn.put('effect', 1));
  assert.deepEqual([...storage.data.keys()].sort(), ['effect', 'feedpump:cursors:k']);
  assert.deepEqual(await store.load('k'), rec({ 2: '5' }));
  const boom = new Error('boom');
  await assert.rejects(store.save('k', rec({ 2: '6' }), async (txn) => {
    await txn.put('effect', 2);
    throw boom;
  }), (e) => e === boom);
  assert.equal(storage.data.get('effect'), 1);
  assert.deepEqual((await store.load('k')).cursors, { 2: '5' });
});

test('durable object: a storage failure is store-failed; a custom prefix', async () => {
  const storage = scriptedStorage({ failPut: (k) => k.startsWith('c/') });
  const store = durableObjectStore(storage, { prefix: 'c/' });
  await assert.rejects(store.save('k', rec({ 0: '1' }), (txn) => txn.put('effect', 1)), (e) => isFeedError(e, 'store-failed') && /put c\/k failed/.test(e.message));
  assert.equal(storage.data.size, 0);
  const broken = durableObjectStore({ get: async () => { throw new Error('gone'); }, transaction: async () => {} });
  await assert.rejects(broken.load('k'), (e) => isFeedError(e, 'store-failed'));
});

test('expected record: every store commits nothing when the stored record changed since it was read', async () => {
  const stores = {
    memory: memoryStore(),
    indexeddb: idbStore(),
    'durable object': durableObjectStore(scriptedStorage()),
  };
  for (const [name, store] of Object.entries(stores)) {
    const first = rec({ 0: '1' });
    await store.save('k', first, undefined, null);
    await assert.rejects(store.save('k', rec({ 0: '2' }), undefined, null), (e) => isFeedError(e, 'cursor-conflict'), `${name}: null but a record exists`);
    const stale = { ...first, savedAt: 0 };
    let ran = false;
    await assert.rejects(store.save('k', rec({ 0: '2' }), () => { ran = true; }, stale), (e) => isFeedError(e, 'cursor-conflict'), name);
    assert.equal(ran, false, `${name}: the effects did not run`);
    await store.save('k', rec({ 0: '3' }), undefined, first);
    assert.deepEqual((await store.load('k')).cursors, { 0: '3' }, name);
  }
});

// The feed identity of cursor records (js/src/stores/identity.ts): pure functions.
test('identity: the normalised URL keeps scheme, lower-case host, a non-default port, path and query keys; drops the rest', async () => {
  const { normaliseUrl, feedIdentity, partitionsOf, redact, describe } = await import('../../../dist/stores/identity.js');
  assert.equal(normaliseUrl('HTTP://User:Pw@Example.COM:80/Feed/v1?b=2&a=1&a=3#frag'), 'http://example.com/Feed/v1?a&b');
  assert.equal(normaliseUrl(new URL('https://h:443/x?token=s3cret')), 'https://h/x?token');
  assert.equal(normaliseUrl('https://h:8443/x/'), 'https://h:8443/x/');
  assert.equal(normaliseUrl('http://h/x?a%20b=1&c'), 'http://h/x?a%20b&c');
  assert.equal(normaliseUrl('http://h/x?'), 'http://h/x');
  // No page to resolve against (Node): a relative URL keeps its path and query keys.
  assert.equal(normaliseUrl('/feed/v1?k=v&j=w#top'), '/feed/v1?k&j');
  assert.equal(normaliseUrl('/feed/v1#top?k=v'), '/feed/v1');
  assert.equal(normaliseUrl('/feed/v1'), '/feed/v1');

  const url = 'http://h/feed?key=v';
  assert.equal(feedIdentity({ url, partitionCount: 4 }), 'http://h/feed?key v1 n=4');
  assert.equal(feedIdentity({ url, protocol: 'v1', partitionCount: 3 }), 'http://h/feed?key v1 n=3');
  assert.equal(feedIdentity({ url, protocol: 'v1' }), 'http://h/feed?key v1', 'no count, no n=');
  assert.equal(feedIdentity({ url, protocol: 'v2', partitionCount: 4 }), 'http://h/feed?key v2');
  assert.equal(feedIdentity({ url }), 'http://h/feed?key v2', "'auto' without a partition count can only be v2");
  assert.equal(feedIdentity({ url, protocol: 'auto' }), 'http://h/feed?key v2');
  assert.equal(feedIdentity({ url, protocol: 'auto', partitionCount: 2 }), 'http://h/feed?key auto n=2');

  assert.deepEqual(partitionsOf({ url, partitionCount: 3 }), [0, 1, 2]);
  assert.deepEqual(partitionsOf({ url, partitionCount: 4, partitions: [3, 1, 1] }), [1, 3]);
  assert.deepEqual(partitionsOf({ url, partitionCount: 12, partitions: [10, 9] }), [9, 10], 'sorted as numbers');
  assert.deepEqual(partitionsOf({ url, protocol: 'auto', partitionCount: 2 }), [0, 1]);
  assert.equal(partitionsOf({ url, protocol: 'v2', partitionCount: 2, partitions: [0] }), undefined);
  assert.equal(partitionsOf({ url }), undefined);
  assert.equal(partitionsOf({ url, protocol: 'v1' }), undefined);

  assert.equal(redact('https://u:p@h/x?a=1&b=2#c n=2 partitions=1'), 'https://h/x?a&b n=2 partitions=1');
  assert.equal(redact('orders-v3'), 'orders-v3');
  assert.equal(redact('http://h/x#fragment v1'), 'http://h/x v1');
  assert.equal(describe('http://h/x?k=v v1 n=2', [0, 1]), '"http://h/x?k v1 n=2" (partitions 0,1)');
  assert.equal(describe('x', undefined), '"x"');
});

test('identity: which stored records resume, and from which cursors', async () => {
  const { resumable } = await import('../../../dist/stores/identity.js');
  const url = 'http://h/feed?key=OLD';
  const source = { url, partitionCount: 3 };
  const id = 'http://h/feed?key v1 n=3';
  const record = (identity, cursors, partitions) => ({ identity, cursors, savedAt: 0, ...(partitions ? { partitions } : {}) });
  const all = record(id, { 0: 'a', 1: 'b', 2: 'c' }, [0, 1, 2]);
  assert.deepEqual(resumable(all, id, source, true), { cursors: { 0: 'a', 1: 'b', 2: 'c' }, partitions: [0, 1, 2] });
  // A subset starts from every stored cursor too (a v1 reader uses those it reads; an 'auto' feed that is v2 reads
  // beyond the partitions counted).
  assert.deepEqual(resumable(all, id, { ...source, partitions: [2, 0] }, true), { cursors: { 0: 'a', 1: 'b', 2: 'c' }, partitions: [0, 1, 2] });
  assert.equal(resumable(record(id, { 1: 'b' }, [1]), id, source, true), undefined, 'a superset of the stored partitions');
  assert.deepEqual(resumable(record(id, { 1: 'b' }), id, source, true)?.partitions, [0, 1, 2], 'no partitions stored: all of them');
  assert.equal(resumable(record('other v1 n=3', { 0: 'a' }, [0]), id, source, true), undefined);
  // v2: the partitions come from discovery; a record without a list is for all of them, one with a list is not.
  const v2 = { url, protocol: 'v2' };
  const v2id = 'http://h/feed?key v2';
  assert.deepEqual(resumable(record(v2id, { 5: 'x' }), v2id, v2, true), { cursors: { 5: 'x' }, partitions: undefined });
  assert.equal(resumable(record(v2id, { 5: 'x' }, [5]), v2id, v2, true), undefined);
  // feedpump 0.1 records: only with the default identity, only the exact same source, a well-formed list.
  assert.deepEqual(resumable(record(`${url} n=3`, { 0: 'a' }), id, source, true)?.cursors, { 0: 'a' });
  assert.equal(resumable(record(`${url} n=3`, { 0: 'a' }), 'custom', source, false), undefined);
  assert.deepEqual(resumable(record(`${url} n=3 partitions=0,2`, { 0: 'a', 2: 'c' }), id, { ...source, partitions: [2] }, true), {
    cursors: { 0: 'a', 2: 'c' },
    partitions: [0, 2],
  });
  assert.equal(resumable(record(`${url} n=3 partitions=0,2`, { 0: 'a' }), id, { ...source, partitions: [1] }, true), undefined);
  for (const bad of [`${url} n=3 partitions=`, `${url} n=3 partitions=a`, `${url} n=3 partitions=1,`, `${url} n=3 extra`, `${url} n=30`]) {
    assert.equal(resumable(record(bad, { 0: 'a' }), id, source, true), undefined, bad);
  }
  // Malformed lists are refused even where they would name the partition read; the exact prefix is required.
  for (const bad of ['partitions=1,', 'partitions=x,1', 'partitions=1x', 'qqqqqqqqqq=1']) {
    assert.equal(resumable(record(`${url} n=3 ${bad}`, { 1: 'b' }), id, { ...source, partitions: [1] }, true), undefined, bad);
  }
  const wide = { url, partitionCount: 13 };
  const wideId = 'http://h/feed?key v1 n=13';
  assert.deepEqual(resumable(record(`${url} n=13 partitions=12`, { 12: 'z' }), wideId, { ...wide, partitions: [12] }, true)?.cursors, { 12: 'z' });
  assert.deepEqual(resumable(record(`${url} n=13 partitions=1,12`, { 12: 'z' }), wideId, { ...wide, partitions: [12] }, true)?.cursors, { 12: 'z' });
  assert.deepEqual(resumable(record(url, { 0: 'a' }), 'http://h/feed?key v2', v2, true)?.cursors, { 0: 'a' }, 'a 0.1 v2 record: the URL alone');
});

test('sameRecord: the same commit only when identity, savedAt, partitions and every cursor are equal; conflict message', async () => {
  const { sameRecord, conflict } = await import('../../../dist/stores/types.js');
  const r = (extra = {}) => ({ identity: 'f', savedAt: 1, cursors: { 0: 'a', 1: 'b' }, partitions: [0, 1], ...extra });
  assert.equal(sameRecord(null, undefined), true);
  assert.equal(sameRecord(r(), null), false);
  assert.equal(sameRecord(undefined, r()), false);
  assert.equal(sameRecord(r(), r()), true);
  assert.equal(sameRecord(r(), r({ identity: 'g' })), false);
  assert.equal(sameRecord(r(), r({ savedAt: 2 })), false);
  assert.equal(sameRecord(r(), r({ partitions: [0] })), false);
  assert.equal(sameRecord(r(), r({ partitions: undefined })), false);
  assert.equal(sameRecord(r(), r({ cursors: { 0: 'a' } })), false);
  assert.equal(sameRecord(r({ cursors: { 0: 'a' } }), r()), false);
  assert.equal(sameRecord(r(), r({ cursors: { 0: 'a', 1: 'c' } })), false);
  assert.equal(sameRecord(r(), r({ cursors: { 0: 'a', 2: 'b' } })), false);
  const e = conflict('k');
  assert.ok(isFeedError(e, 'cursor-conflict'));
  assert.match(e.message, /^cursor-conflict: the cursors under "k" changed since they were read/);
});

test('memory: the transaction reads committed data, its own writes and deletes; a delete commits', async () => {
  const store = memoryStore();
  await store.save('k', rec({ 0: '1' }), (tx) => { tx.set('a', 1); tx.set('b', 2); });
  await store.save('k', rec({ 0: '2' }), (tx) => {
    assert.equal(tx.get('a'), 1, 'committed data');
    tx.delete('a');
    assert.equal(tx.get('a'), undefined, 'a staged delete');
    tx.set('c', undefined);
    assert.equal(tx.get('c'), undefined);
    assert.equal(store.data.has('a'), true, 'not deleted before the commit');
  });
  assert.deepEqual([...store.data].sort(), [['b', 2], ['c', undefined]]);
  assert.equal(await store.load('missing'), undefined);
});

test('durable object: store failures are store-failed with what failed and the cause; a FeedError passes as it is', async () => {
  const gone = new Error('gone');
  const broken = durableObjectStore({ get: async () => { throw gone; }, transaction: async () => { throw gone; } });
  await assert.rejects(broken.load('k'), (e) => isFeedError(e, 'store-failed') && e.cause === gone && e.message === 'store-failed: Durable Object storage could not read the cursors of "k": gone');
  await assert.rejects(broken.save('k', rec({ 0: '1' })), (e) => isFeedError(e, 'store-failed') && e.cause === gone && e.message === 'store-failed: Durable Object storage transaction failed (feed key "k"): gone');
  const odd = durableObjectStore({ get: async () => { throw 'a string'; }, transaction: async () => {} });
  await assert.rejects(odd.load('k'), (e) => e.message === 'store-failed: Durable Object storage could not read the cursors of "k"' && e.cause === 'a string');
  const own = new (await import('../../../dist/errors.js')).FeedError('store-failed', 'store-failed: mine');
  const passing = durableObjectStore({ get: async () => { throw own; }, transaction: async () => { throw own; } });
  await assert.rejects(passing.load('k'), (e) => e === own);
  await assert.rejects(passing.save('k', rec({ 0: '1' })), (e) => e === own);
});

/** An IDBFactory stand-in whose connection's transaction() throws `name` (or runs `tx` as the transaction). */
function stubFactory({ throwName, tx } = {}) {
  const opens = [];
  const db = {
    transaction() {
      if (throwName) throw Object.assign(new Error('stub'), { name: throwName });
      return tx();
    },
    close() {},
  };
  return {
    opens,
    open(name, version) {
      opens.push([name, version]);
      const request = {};
      setTimeout(() => { request.result = db; request.onsuccess?.(); });
      return request;
    },
  };
}

test('indexeddb: a closed connection is retried once (InvalidStateError only); other transaction errors are store-failed', async () => {
  const closed = stubFactory({ throwName: 'InvalidStateError' });
  await assert.rejects(indexedDbStore({ database: 'd', indexedDB: closed }).load('k'), (e) =>
    isFeedError(e, 'store-failed') && e.message === 'store-failed: IndexedDB could not start a transaction on ["feedpump-cursors"]: InvalidStateError: stub');
  assert.equal(closed.opens.length, 2, 'opened again once');
  const missing = stubFactory({ throwName: 'NotFoundError' });
  await assert.rejects(indexedDbStore({ database: 'd', indexedDB: missing }).load('k'), (e) => isFeedError(e, 'store-failed') && /NotFoundError/.test(e.message));
  assert.equal(missing.opens.length, 1, 'not retried');
  // A load whose transaction aborts.
  const disk = new Error('disk');
  const aborting = stubFactory({
    tx: () => {
      const t = { objectStore: () => ({ get: () => { setTimeout(() => { t.error = disk; t.onabort(); }); return {}; } }) };
      return t;
    },
  });
  await assert.rejects(indexedDbStore({ database: 'd', indexedDB: aborting }).load('k'), (e) =>
    isFeedError(e, 'store-failed') && e.cause === disk && e.message === 'store-failed: IndexedDB could not read the cursors of "k": Error: disk');
  // No IndexedDB at all (Node has none).
  await assert.rejects(indexedDbStore({ database: 'd' }).load('k'), (e) => isFeedError(e, 'store-failed') && e.message === 'store-failed: IndexedDB is not available here');
});

test('indexeddb: defaults (no user stores, no upgrade, strict durability), one connection, close(), reopening after a failed open', async () => {
  const factory = new IDBFactory();
  const plain = indexedDbStore({ database: 'plain', indexedDB: factory });
  let durability;
  await plain.save('k', rec({ 0: '1' }), (tx) => { durability = tx.durability; });
  assert.equal(durability, 'strict');
  assert.deepEqual((await plain.load('k')).cursors, { 0: '1' });
  const db = await plain.db();
  assert.equal(await plain.db(), db, 'one connection while it is open');
  plain.close();
  await new Promise((r) => setTimeout(r, 0));
  assert.throws(() => db.transaction(['feedpump-cursors']), (e) => e.name === 'InvalidStateError', 'close() closed it');
  assert.notEqual(await plain.db(), db, 'the next call opens again');
  indexedDbStore({ database: 'never', indexedDB: factory }).close(); // never opened: nothing to close
  const relaxed = indexedDbStore({ database: 'relaxed', indexedDB: factory, durability: 'relaxed' });
  await relaxed.save('k', rec({ 0: '1' }), (tx) => { durability = tx.durability; });
  assert.equal(durability, 'relaxed');

  // A version upgrade keeps the cursor store and its records.
  const v2 = indexedDbStore({ database: 'plain', version: 2, indexedDB: factory, userStores: ['extra'], upgrade: (d) => d.createObjectStore('extra') });
  assert.deepEqual((await v2.load('k')).cursors, { 0: '1' });

  // An open that fails (its upgrade throws) is store-failed, and the next call opens again.
  let upgrades = 0;
  const flaky = indexedDbStore({
    database: 'flaky',
    indexedDB: factory,
    userStores: ['p'],
    upgrade: (d) => {
      if (upgrades++ === 0) throw new Error('first upgrade fails');
      d.createObjectStore('p');
    },
  });
  await assert.rejects(
    flaky.load('k'),
    (e) => isFeedError(e, 'store-failed') && /^store-failed: IndexedDB upgrade of database "flaky" failed/.test(e.message) && e.cause?.message === 'first upgrade fails',
  );
  assert.equal(await flaky.load('k'), undefined, 'opened again');
  flaky.close();
});

test('indexeddb: persist asks navigator.storage.persist() once on first open; persisted() asks persisted() otherwise', async () => {
  const calls = [];
  const storage = {
    persist: async () => (calls.push('persist'), true),
    persisted: async () => (calls.push('persisted'), false),
  };
  await withNavigator({ storage }, async () => {
    const factory = new IDBFactory();
    const asking = indexedDbStore({ database: 'a', indexedDB: factory, persist: true });
    assert.deepEqual(calls, [], 'nothing before the first open');
    await asking.load('k');
    await asking.load('k');
    assert.deepEqual(calls, ['persist'], 'asked on the first open');
    assert.equal(await asking.persisted(), true);
    assert.deepEqual(calls, ['persist']);
    calls.length = 0;
    const quiet = indexedDbStore({ database: 'b', indexedDB: factory });
    await quiet.load('k');
    assert.deepEqual(calls, [], 'persist: false asks nothing on open');
    assert.equal(await quiet.persisted(), false);
    assert.equal(await quiet.persisted(), false);
    assert.deepEqual(calls, ['persisted'], 'asked once');
    delete storage.persist;
    calls.length = 0;
    assert.equal(await indexedDbStore({ database: 'c', indexedDB: factory, persist: true }).persisted(), false, 'no persist(): persisted()');
    assert.deepEqual(calls, ['persisted']);
    storage.persisted = async () => { throw new Error('denied'); };
    assert.equal(await indexedDbStore({ database: 'd', indexedDB: factory }).persisted(), undefined, 'a failing answer is unknown');
  });
  await withNavigator({}, async () => {
    assert.equal(await indexedDbStore({ database: 'e', indexedDB: new IDBFactory() }).persisted(), undefined, 'no storage manager');
  });
  await withNavigator({ storage: {} }, async () => {
    assert.equal(await indexedDbStore({ database: 'f', indexedDB: new IDBFactory() }).persisted(), undefined, 'a storage manager without persisted()');
  });
  await withNavigator(undefined, async () => {
    assert.equal(await indexedDbStore({ database: 'g', indexedDB: new IDBFactory() }).persisted(), undefined, 'no navigator');
  });
});

test('indexeddb: what a save rejects with: an abort by the handler, an uncloneable record, a failed awaited request, odd return values', async () => {
  const store = idbStore(new IDBFactory(), { userStores: ['projection'] });
  // Aborted right after the cursor put (by someone else than the store): no error of its own, none to show.
  const abortAfterPut = (tx) => {
    const objectStore = tx.objectStore.bind(tx);
    tx.objectStore = (name) => {
      const os = objectStore(name);
      if (name === 'feedpump-cursors') {
        const put = os.put.bind(os);
        os.put = (...args) => { const r = put(...args); tx.abort(); return r; };
      }
      return os;
    };
  };
  await assert.rejects(store.save('k', rec({ 0: '1' }), abortAfterPut), (e) =>
    isFeedError(e, 'store-failed') && e.message === 'store-failed: IndexedDB transaction aborted (feed key "k")' && e.cause === null);
  // Aborted by the handler: the cursor cannot be written any more.
  await assert.rejects(store.save('k', rec({ 0: '1' }), (tx) => void tx.abort()), (e) => isFeedError(e, 'store-failed') && /could not write the cursor/.test(e.message));
  await assert.rejects(store.save('k', { ...rec({ 0: '1' }), fn: () => 1 }), (e) =>
    isFeedError(e, 'store-failed') && /^store-failed: IndexedDB could not write the cursor: DataCloneError/.test(e.message));
  let seen;
  await assert.rejects(store.save('k', rec({ 0: '1' }), async (tx) => {
    const ps = tx.objectStore('projection');
    await idbRequest(ps.add({ id: 1 }, 'x'));
    seen = await idbRequest(ps.add({ id: 2 }, 'x')).catch((e) => e);
  }), (e) => isFeedError(e, 'store-failed'));
  assert.equal(seen?.name, 'ConstraintError', 'idbRequest rejects with the request error');
  await assert.rejects(store.save('k', rec({ 0: '1' }), async (tx) => {
    tx.objectStore('projection').add({ id: 'e' });
    await new Promise((r) => tx.addEventListener('complete', r)); // idle: IndexedDB commits it
  }), (e) => e.message.endsWith('Its writes were committed without the cursor; the batch will be applied again'));
  // Return values that are not promises: null, and a function with a `then` property, commit at once.
  await store.save('k', rec({ 0: '2' }), () => null);
  await store.save('k', rec({ 0: '2' }), () => ({ id: 'a plain object' }));
  await store.save('k', rec({ 0: '3' }), () => Object.assign(() => {}, { then() {} }));
  assert.deepEqual((await store.load('k')).cursors, { 0: '3' });
});

test('identity: whether a stored record resumes a v1 feed of 400,000 partitions is linear in them', async () => {
  // consume() asks this at every start; it searched the stored list for every partition read: O(n²) (65,536
  // partitions: 2.6 s; these 400,000 about 1.5 minutes). (A bound in the minutes' place: the new code takes a fraction
  // of a second.)
  const { resumable, feedIdentity } = await import('../../../dist/stores/identity.js');
  const n = 400_000;
  const source = { url: 'http://h/feed', partitionCount: n };
  const id = feedIdentity(source);
  const partitions = Array.from({ length: n }, (_, p) => p);
  const cursors = Object.fromEntries(partitions.map((p) => [p, `c${p}`]));
  const started = Date.now();
  const resumed = resumable({ identity: id, cursors, savedAt: 0, partitions }, id, source, true);
  assert.ok(Date.now() - started < 20_000, `took ${Date.now() - started} ms`);
  assert.equal(resumed?.partitions.length, n);
  const missing = partitions.slice(0, -1);
  assert.equal(resumable({ identity: id, cursors, savedAt: 0, partitions: missing }, id, source, true), undefined, 'one partition not stored');
});
