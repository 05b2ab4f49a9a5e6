/**
 * The `CursorStore` interface: where `consume()` keeps the cursors of a feed, in the same transaction as the effects
 * of the events they cover.
 *
 * Why not Workers KV: KV is eventually consistent (a write may take 60 s or more to be seen by other locations, and a
 * read after a write in another place may return the old value) and has no transactions, so the cursor and the
 * effects cannot be committed together, and a restart may read a stale cursor and apply events again. Cursors need a
 * store that commits the effects and the cursor atomically and reads its own writes: IndexedDB in browsers, Durable
 * Object storage on Workers, a SQL database on servers.
 * @packageDocumentation
 */

import { FeedError } from '../errors.js';

/** Cursors by partition: what `openFeed`'s `cursors` option takes. */
export type Cursors = { [partition: number]: string };

/**
 * What a store keeps under a feed key. `identity` marks which feed the cursors belong to (by default the normalised
 * feed URL without query values, the protocol and the partition count) and `partitions` which of its partitions:
 * cursors of another feed are not resumed (docs/consume.md, "Missing cursors").
 *
 * @example
 * ```ts
 * const record: CursorRecord = { identity: 'https://host/feed/v1 v1 n=4', partitions: [0, 1, 2, 3], cursors: { 0: '17', 1: '4' }, savedAt: Date.now() };
 * ```
 */
export interface CursorRecord {
  /** The feed the cursors belong to. */
  identity: string;
  /**
   * The partitions the cursors are for, sorted. Absent: every partition of the feed (FeedAPI v2, whose partitions
   * come from discovery, or a record written before this field existed).
   */
  partitions?: number[] | undefined;
  /** The committed cursors: every event up to and including them has been applied. */
  cursors: Cursors;
  /** When the record was written (ms since the epoch). */
  savedAt: number;
}

/**
 * Where `consume()` keeps cursors. Two methods, keyed by a feed key:
 *
 * - `load(key)`: the committed record, or `undefined` (or `null`, as storage APIs such as `localStorage` answer) when
 *   there is none.
 * - `save(key, record, effects?, expected?)`: ONE transaction that runs `effects(tx)` (the caller's writes for a
 *   batch) and writes `record`. It resolves only once the transaction is durably committed; if `effects` throws or the
 *   store fails, nothing of it is committed and the promise rejects (the effects' error as it is; store failures as a
 *   `FeedError` `'store-failed'`). With `expected` (`null`: no record), the store first reads the record inside the
 *   same transaction and commits nothing unless it is still `expected` (`FeedError` `'cursor-conflict'`): two
 *   consumers of one key (two tabs, two runs in one Durable Object) never both apply a batch.
 *
 * `Tx` is the transaction the effects write through: an `IDBTransaction` (`indexedDbStore` of `feedpump/indexeddb`),
 * the Durable Object storage transaction (`durableObjectStore` of `feedpump/durable-object`), or a staging map
 * ({@link memoryStore}); the SQL stores of the subpaths `feedpump/postgres`, `feedpump/sqlite` and `feedpump/d1` hand over the transaction's `pg`
 * client, the better-sqlite3 `Database`, or the D1 binding (D1's handler returns prepared statements: docs/consume.md).
 *
 * @typeParam Tx - the transaction handed to `effects`
 * @example
 * ```ts
 * const store: CursorStore<MemoryTransaction> = memoryStore();
 * await store.save('orders', { identity: 'x', cursors: { 0: '7' }, savedAt: Date.now() }, (tx) => tx.set('seen', 7));
 * console.log(await store.load('orders'));
 * ```
 */
export interface CursorStore<Tx = unknown> {
  /** The record saved under `key`, or `undefined` (`null` too: nothing stored). Rejects with `FeedError`
   * `'store-failed'` if the store fails. */
  load(key: string): Promise<CursorRecord | null | undefined>;
  /** Runs `effects` and writes `record` in one transaction; resolves once it is committed. */
  save(key: string, record: CursorRecord, effects?: (tx: Tx) => unknown, expected?: CursorRecord | null): Promise<void>;
}

/**
 * Whether two stored records are the same commit (the optimistic check of `save`'s `expected`).
 * @internal
 */
export function sameRecord(a: CursorRecord | null | undefined, b: CursorRecord | null | undefined): boolean {
  if (a == null || b == null) return a == null && b == null;
  if (a.identity !== b.identity || a.savedAt !== b.savedAt || String(a.partitions) !== String(b.partitions)) return false;
  const ka = Object.keys(a.cursors);
  const kb = Object.keys(b.cursors);
  return ka.length === kb.length && ka.every((k) => (a.cursors as Record<string, string>)[k] === (b.cursors as Record<string, string>)[k]);
}

/**
 * The error of a failed `expected` check.
 * @internal
 */
export function conflict(key: string): FeedError {
  return new FeedError(
    'cursor-conflict',
    `the cursors under ${JSON.stringify(key)} changed since they were read: another consumer of this key committed; nothing of this batch was committed`,
  );
}
