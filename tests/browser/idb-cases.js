// IndexedDB store cases shared by the Node unit tests (fake-indexeddb, tests/js/unit/stores.test.mjs) and the real
// IndexedDB of headless Chromium (tests/browser/stores.test.mjs). No imports: the caller passes the package's
// `indexedDbStore` / `idbRequest` and an `IDBFactory`.

/**
 * A request that fails AFTER the cursor put succeeded: the transaction aborts, so nothing of the batch may count as
 * committed. A store that resolved `save()` on the cursor put's `success` (instead of the transaction's `complete`)
 * would report a commit that never happened. The failing request is queued right after the cursor put, wherever the
 * store places that put, by wrapping the transaction's cursor object store (the handler gets the same transaction).
 * Returns what the caller asserts: whether save() rejected, and the record and projection before and after.
 */
export async function requestFailsAfterCursorPut({ indexedDbStore, idbRequest, indexedDB, database }) {
  const store = indexedDbStore({
    database,
    userStores: ['projection'],
    upgrade: (db) => db.createObjectStore('projection', { keyPath: 'id' }),
    indexedDB,
  });
  const record = (cursor) => ({ identity: 'feed', partitions: [0], cursors: { 0: cursor }, savedAt: Number(cursor) });
  await store.save('k', record('1'), (tx) => void tx.objectStore('projection').add({ id: 'e1' }));
  const before = await store.load('k');
  let cursorPutSucceeded = false;
  let failingQueued = false;
  let outcome;
  try {
    await store.save('k', record('2'), (tx) => {
      tx.objectStore('projection').add({ id: 'e2' });
      const objectStore = tx.objectStore.bind(tx);
      tx.objectStore = (name) => {
        const os = objectStore(name);
        if (name !== 'feedpump-cursors') return os;
        const put = os.put.bind(os);
        os.put = (...args) => {
          const request = put(...args);
          request.addEventListener('success', () => (cursorPutSucceeded = true));
          // A duplicate key: ConstraintError, after the cursor put has succeeded; not handled, so the transaction aborts.
          objectStore('projection').add({ id: 'e1' });
          failingQueued = true;
          return request;
        };
        return os;
      };
    });
    outcome = { saveRejected: false };
  } catch (e) {
    outcome = { saveRejected: true, code: e?.code ?? null, message: String(e?.message ?? e) };
  }
  const after = await store.load('k');
  const db = await store.db();
  const ids = (await idbRequest(db.transaction(['projection'], 'readonly').objectStore('projection').getAllKeys())).map(String);
  store.close();
  return { ...outcome, cursorPutSucceeded, failingQueued, before, after, ids };
}

/**
 * An `upgrade` that throws: the open fails, and what load() rejects with says so and carries the caller's error (a
 * store-failed FeedError with the throw as its cause), not a bare AbortError of the aborted versionchange transaction
 * while the throw escapes to the page as an uncaught exception. A later store with a sound upgrade then opens the
 * database (the failed upgrade left nothing behind).
 */
export async function upgradeThrows({ indexedDbStore, indexedDB, database }) {
  const boom = new Error('schema migration failed');
  const failing = indexedDbStore({
    database,
    userStores: ['projection'],
    upgrade: () => {
      throw boom;
    },
    indexedDB,
  });
  let outcome;
  try {
    await failing.load('k');
    outcome = { rejected: false };
  } catch (e) {
    outcome = { rejected: true, code: e?.code ?? null, name: e?.name ?? null, message: String(e?.message ?? e), causeIsThrow: e?.cause === boom };
  }
  failing.close();
  const sound = indexedDbStore({ database, userStores: ['projection'], upgrade: (db) => db.createObjectStore('projection'), indexedDB });
  const afterwards = (await sound.load('k')) ?? null;
  sound.close();
  return { ...outcome, afterwards };
}

/**
 * A re-entrant save: the handler of a save awaits another save of the same key on the same store (what a handler that
 * calls `consume()` into its own store does). IndexedDB queues the inner readwrite transaction behind the outer one,
 * but the outer one has no request pending while its handler awaits, so IndexedDB commits it: the inner save runs,
 * and the outer one fails `'store-failed'` (committed before the handler finished) instead of waiting for ever.
 * Returns how each save ended (or `'pending'` after `waitMs`) and the record afterwards.
 */
export async function reentrantSave({ indexedDbStore, indexedDB, database, waitMs = 5_000 }) {
  const store = indexedDbStore({ database, userStores: [], indexedDB });
  const record = (cursor) => ({ identity: 'feed', partitions: [0], cursors: { 0: cursor }, savedAt: Number(cursor) });
  const ended = (p) =>
    Promise.race([
      p.then(
        () => ({ ended: 'resolved' }),
        (e) => ({ ended: 'rejected', code: e?.code ?? null, message: String(e?.message ?? e) }),
      ),
      new Promise((resolve) => setTimeout(() => resolve({ ended: 'pending' }), waitMs)),
    ]);
  let inner;
  const outer = await ended(
    store.save('k', record('2'), async () => {
      inner = await ended(store.save('k', record('1'), undefined, null));
    }, null),
  );
  const after = (await store.load('k')) ?? null;
  store.close();
  return { outer, inner: inner ?? null, after };
}
