/**
 * `indexedDbStore()`: a {@link CursorStore} in IndexedDB whose transactions also cover the caller's object stores, so
 * a batch's effects and its cursors commit together (idb-keyval's shape: lazy open, one small promise helper).
 *
 * Durability rules it keeps:
 * - the database is opened lazily, once, and opened again if the browser closes the connection (`close` event,
 *   storage pressure, devtools "clear storage") or another tab upgrades it (`versionchange`);
 * - a save resolves on the transaction's `complete` event, never on a request's `success` (a request can succeed in a
 *   transaction that later aborts);
 * - the cursor is written after the effects: a transaction that IndexedDB commits early (the handler awaited
 *   something that is not a request of the transaction, so the transaction went idle) commits effects without the
 *   cursor, which is reported and leads to the batch being applied again (never to a lost batch).
 * @packageDocumentation
 */
import { FeedError, isFeedError } from '../errors.js';
import type { IdbDatabase, IdbFactory, IdbRequestLike, IdbTransaction } from './idb-types.js';
import { conflict, sameRecord, type CursorRecord, type CursorStore } from './types.js';

/**
 * Options of {@link indexedDbStore}.
 *
 * @example
 * ```ts
 * const options: IndexedDbStoreOptions = {
 *   database: 'orders-app',
 *   userStores: ['orders'],
 *   upgrade: (db) => db.createObjectStore('orders', { keyPath: 'id' }),
 * };
 * ```
 */
export interface IndexedDbStoreOptions {
  /** The database name. */
  database: string;
  /**
   * The database version; raise it when `upgrade` changes the schema.
   * @defaultValue `1`
   */
  version?: number | undefined;
  /**
   * The caller's object stores that every save transaction covers (the handler writes to them through the
   * `IDBTransaction` it is given).
   * @defaultValue `[]`
   */
  userStores?: readonly string[] | undefined;
  /**
   * Creates or migrates the caller's object stores (`upgradeneeded`). The cursor store is created by feedpump.
   * @defaultValue none
   */
  upgrade?: ((db: IdbDatabase, oldVersion: number, transaction: IdbTransaction) => void) | undefined;
  /**
   * The object store that holds the cursor records (out-of-line keys: the feed keys).
   * @defaultValue `'feedpump-cursors'`
   */
  cursorStore?: string | undefined;
  /**
   * Ask the browser to make the origin's storage persistent (`navigator.storage.persist()`) on first open, so it is
   * not evicted under storage pressure. The answer is {@link IndexedDbStore.persisted}.
   * @defaultValue `false`
   */
  persist?: boolean | undefined;
  /**
   * The transactions' durability hint. `'strict'` waits for the data to reach the disk before `complete`, so a
   * committed cursor survives an OS crash or power loss, not only a closed tab.
   * @defaultValue `'strict'`
   */
  durability?: 'strict' | 'relaxed' | 'default' | undefined;
  /**
   * The `IDBFactory` to use (tests pass fake-indexeddb's).
   * @defaultValue `globalThis.indexedDB`
   */
  indexedDB?: IdbFactory | undefined;
}

/**
 * An IndexedDB {@link CursorStore}; the handler gets the save's `IDBTransaction`.
 *
 * @example
 * ```ts
 * const store = indexedDbStore({ database: 'app', userStores: ['orders'], upgrade: (db) => db.createObjectStore('orders') });
 * const db = await store.db(); // the open connection, e.g. to read the projection
 * ```
 */
export interface IndexedDbStore extends CursorStore<IdbTransaction> {
  /** The open database (opens it if needed). */
  db(): Promise<IdbDatabase>;
  /** Whether the storage is persistent (`navigator.storage.persisted()`), or `undefined` where unknown. */
  persisted(): Promise<boolean | undefined>;
  /** Closes the connection; the next operation opens it again. */
  close(): void;
}

/**
 * A request as a promise: resolves with `result` on `success`, rejects with `error` on `error`. Inside a handler,
 * `await` only such requests of the transaction: awaiting anything else lets IndexedDB commit the transaction early.
 *
 * @example
 * ```ts
 * const old = await idbRequest(tx.objectStore('orders').get(id));
 * ```
 */
export function idbRequest<T>(request: IdbRequestLike<T>): Promise<T> {
  return new Promise<T>((resolve, reject) => {
    request.addEventListener('success', () => resolve(request.result));
    request.addEventListener('error', () => reject(request.error));
  });
}

function storeFailed(what: string, cause: unknown): FeedError {
  const why = cause instanceof Error ? `: ${cause.name}: ${cause.message}` : '';
  return new FeedError('store-failed', `IndexedDB ${what}${why}`, { cause });
}

function isThenable(v: unknown): v is PromiseLike<unknown> {
  return typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';
}

/**
 * Makes an {@link IndexedDbStore}. Nothing is opened until the first `load` or `save`.
 *
 * @example
 * ```ts
 * import { consume } from 'feedpump';
 * import { indexedDbStore } from 'feedpump/indexeddb';
 *
 * const store = indexedDbStore({
 *   database: 'orders-app',
 *   userStores: ['orders'],
 *   upgrade: (db) => db.createObjectStore('orders', { keyPath: 'id' }),
 *   persist: true,
 * });
 * await consume({ url: 'https://host/feed/v1', partitionCount: 4 }, {
 *   store,
 *   key: 'orders',
 *   handler: (batch, tx) => { for (const e of batch.events) tx.objectStore('orders').put(e.data); },
 * });
 * ```
 */
export function indexedDbStore(options: IndexedDbStoreOptions): IndexedDbStore {
  const { database, version = 1, userStores = [], upgrade, cursorStore = 'feedpump-cursors', persist = false } = options;
  const durability = options.durability ?? 'strict';
  // A store named twice is fine: a transaction's scope is a set.
  const scope = [cursorStore, ...userStores];
  /** The connection being opened or open; cleared when the browser closes it, so the next call opens again. */
  let opening: Promise<IDBDatabase> | undefined;
  let persisted: Promise<boolean | undefined> | undefined;

  const factory = (): IDBFactory => {
    const f = options.indexedDB ?? (globalThis as { indexedDB?: IDBFactory }).indexedDB;
    if (f === undefined) throw new FeedError('store-failed', 'IndexedDB is not available here');
    return f;
  };

  const askPersist = (): Promise<boolean | undefined> => {
    const storage = (globalThis as { navigator?: { storage?: StorageManager } }).navigator?.storage;
    if (storage === undefined) return Promise.resolve(undefined);
    const ask = persist && typeof storage.persist === 'function' ? storage.persist() : storage.persisted?.();
    return Promise.resolve(ask).catch(() => undefined);
  };

  const open = (): Promise<IDBDatabase> => {
    if (opening) return opening;
    if (persist) persisted ??= askPersist();
    const p = new Promise<IDBDatabase>((resolve, reject) => {
      let request: IDBOpenDBRequest;
      try {
        request = factory().open(database, version);
      } catch (e) {
        // Refused at once: an opaque origin (sandboxed iframe, data: URL) gets a SecurityError, a bad version a
        // TypeError; a store's errors are FeedErrors, whatever the browser throws.
        return reject(isFeedError(e) ? e : storeFailed(`could not open database ${JSON.stringify(database)}`, e));
      }
      /** A throw of the upgrade: what the open fails with (a throw out of an event handler would reach the page). */
      let upgradeFailed: { error: unknown } | undefined;
      request.onupgradeneeded = (ev) => {
        const db = request.result;
        try {
          if (!db.objectStoreNames.contains(cursorStore)) db.createObjectStore(cursorStore);
          if (upgrade && request.transaction) upgrade(db, ev.oldVersion, request.transaction);
        } catch (e) {
          // Abort the versionchange transaction: nothing of the upgrade stays, and the open fails with the throw.
          upgradeFailed = { error: e };
          try {
            request.transaction?.abort();
          } catch {
            // Already aborting: `error` follows.
          }
        }
      };
      request.onsuccess = () => {
        const db = request.result;
        const forget = (): void => {
          if (opening === p) opening = undefined;
        };
        // The browser closed the connection (storage cleared, disk error): open again next time.
        db.onclose = forget;
        // Another tab wants a newer version: let it upgrade, and open the new version next time.
        db.onversionchange = () => {
          forget();
          db.close();
        };
        resolve(db);
      };
      request.onerror = () =>
        reject(
          upgradeFailed
            ? storeFailed(`upgrade of database ${JSON.stringify(database)} failed`, upgradeFailed.error)
            : storeFailed(`could not open database ${JSON.stringify(database)}`, request.error),
        );
      request.onblocked = () => {
        // Another connection holds an older version open; the open continues once it closes.
      };
    });
    opening = p;
    p.catch(() => {
      if (opening === p) opening = undefined;
    });
    return p;
  };

  /** A transaction on a live connection: a connection closed since it was opened is opened again, once. */
  const transaction = async (stores: string[], mode: IDBTransactionMode): Promise<IDBTransaction> => {
    for (let attempt = 0; ; attempt++) {
      const db = await open();
      try {
        return db.transaction(stores, mode, { durability });
      } catch (e) {
        if (attempt === 0 && e instanceof Error && e.name === 'InvalidStateError') {
          opening = undefined;
          continue;
        }
        throw storeFailed(`could not start a transaction on ${JSON.stringify(stores)}`, e);
      }
    }
  };

  return {
    db: open,
    persisted: () => (persisted ??= askPersist()),
    close() {
      const p = opening;
      opening = undefined;
      void p?.then((db) => db.close(), () => undefined);
    },

    async load(key) {
      const tx = await transaction([cursorStore], 'readonly');
      return new Promise<CursorRecord | undefined>((resolve, reject) => {
        let value: unknown;
        const request = tx.objectStore(cursorStore).get(key);
        request.onsuccess = () => (value = request.result);
        tx.oncomplete = () => resolve(value as CursorRecord | undefined);
        tx.onabort = () => reject(storeFailed(`could not read the cursors of ${JSON.stringify(key)}`, tx.error));
      });
    },

    async save(key, record, effects, expected) {
      const tx = await transaction(scope, 'readwrite');
      return new Promise<void>((resolve, reject) => {
        /** The first failure: what the promise rejects with (the handler's error is kept as it is). */
        let failure: { error: unknown } | undefined;
        let cursorWritten = false;
        const fail = (error: unknown): void => {
          if (failure) return;
          failure = { error };
          try {
            tx.abort();
          } catch {
            // Already committed or aborting: `complete` / `abort` settles the promise.
          }
        };
        tx.oncomplete = () => {
          if (cursorWritten && !failure) resolve();
          else
            reject(
              failure?.error ??
                new FeedError(
                  'store-failed',
                  'IndexedDB committed the transaction before the handler finished: await only requests ' +
                    'of the transaction inside the handler. Its writes were committed without the cursor; the batch ' +
                    'will be applied again',
                ),
            );
        };
        tx.onabort = () => reject(failure ? failure.error : storeFailed(`transaction aborted (feed key ${JSON.stringify(key)})`, tx.error));
        const writeCursor = (): void => {
          if (failure) return;
          try {
            tx.objectStore(cursorStore).put(record, key);
            cursorWritten = true;
          } catch (e) {
            fail(storeFailed('could not write the cursor', e));
          }
        };
        const run = (): void => {
          let result: unknown;
          try {
            result = effects?.(tx);
          } catch (e) {
            fail(e);
            return;
          }
          if (isThenable(result)) result.then(writeCursor, fail);
          else writeCursor();
        };
        if (expected === undefined) return run();
        // The optimistic check, inside this readwrite transaction: a concurrent save of the key waits for it.
        const current = tx.objectStore(cursorStore).get(key);
        current.onsuccess = () => {
          if (sameRecord(current.result as CursorRecord | undefined, expected)) run();
          else fail(conflict(key));
        };
      });
    },
  };
}
