/**
 * `memoryStore()`: a `Map`-backed {@link CursorStore} for tests and for consumers whose effects live in memory too.
 * A save stages the effects' writes and applies them together with the cursor record, or not at all.
 * @packageDocumentation
 */
import { FeedError } from '../errors.js';
import { conflict, sameRecord, type CursorRecord, type CursorStore } from './types.js';

/**
 * The transaction of a {@link memoryStore}: reads see the transaction's own writes; the writes reach the store's
 * `data` only when the save commits. A write after the save ended (a handler that did not await its work) throws a
 * `'store-failed'` FeedError, as an IndexedDB transaction refuses it.
 *
 * @example
 * ```ts
 * const store = memoryStore();
 * await store.save(key, record, (tx) => tx.set(`order:${id}`, (Number(tx.get(`order:${id}`)) || 0) + 1));
 * ```
 */
export interface MemoryTransaction {
  /** The value under `key`, as this transaction sees it. */
  get(key: string): unknown;
  /** Stages `value` under `key`. */
  set(key: string, value: unknown): void;
  /** Stages the removal of `key`. */
  delete(key: string): void;
}

/**
 * A memory {@link CursorStore}, with the user's data beside the cursors.
 *
 * @example
 * ```ts
 * const store = memoryStore();
 * await consume({ url, partitionCount: 4 }, { store, key: 'orders', handler: (batch: Batch<Order>, tx) => {
 *   for (const e of batch.events) tx.set(String(e.data.id), e.data);
 * } });
 * console.log(store.data.size, await store.load('orders'));
 * ```
 */
export interface MemoryStore extends CursorStore<MemoryTransaction> {
  /** The user's committed data (what the effects wrote). */
  readonly data: Map<string, unknown>;
  /** The committed cursor records, by feed key. */
  readonly records: Map<string, CursorRecord>;
}

/** A sentinel for a staged delete (a staged `undefined` is a real value). */
const DELETED = Symbol('deleted');

/**
 * Makes a {@link MemoryStore}.
 *
 * @example
 * ```ts
 * const store = memoryStore();
 * ```
 */
export function memoryStore(): MemoryStore {
  const data = new Map<string, unknown>();
  const records = new Map<string, CursorRecord>();
  return {
    data,
    records,
    load(key) {
      return Promise.resolve(structuredClone(records.get(key)));
    },
    async save(key, record, effects, expected) {
      if (expected !== undefined && !sameRecord(records.get(key), expected)) throw conflict(key);
      const staged = new Map<string, unknown>();
      let open = true;
      /** Stages a write; after the save ended (the handler did not await its work) it throws, as IndexedDB does. */
      const stage = (k: string, v: unknown): void => {
        if (!open) throw new FeedError('store-failed', 'a write after its transaction ended');
        staged.set(k, v);
      };
      const tx: MemoryTransaction = {
        get: (k) => {
          if (!staged.has(k)) return data.get(k);
          const v = staged.get(k);
          return v === DELETED ? undefined : v;
        },
        set: (k, v) => stage(k, v),
        delete: (k) => stage(k, DELETED),
      };
      try {
        if (effects) await effects(tx);
        // Another save of this key finished while the effects ran: the check and the commit are one synchronous step.
        if (expected !== undefined && !sameRecord(records.get(key), expected)) throw conflict(key);
        // Commit: all of it in one synchronous step, so no reader sees half of it.
        for (const [k, v] of staged) {
          if (v === DELETED) data.delete(k);
          else data.set(k, v);
        }
        records.set(key, structuredClone(record));
      } finally {
        open = false;
      }
    },
  };
}
