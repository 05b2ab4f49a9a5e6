/**
 * `feedpump/d1`: {@link d1Store}, a {@link CursorStore} in Cloudflare D1. D1 has no interactive transactions: a
 * Worker cannot hold a transaction open while it runs code. What D1 does commit atomically is a `batch()` of prepared
 * statements ("if a statement in the sequence fails, then an error is returned for that specific statement, and it
 * aborts or rolls back the entire sequence"). So the handler does not write: it RETURNS the prepared statements of
 * its effects, and the store commits them in one `batch()` together with a guard (the cursor check) and the cursor
 * row.
 * @module feedpump/d1
 */
import { FeedError } from '../errors.js';
import { conflict, sameRecord, type CursorRecord, type CursorStore } from './types.js';
import { fromRow, quoteTable, sqliteSql, storeFailed, textColumns } from './sql.js';

/**
 * The part of a D1 prepared statement feedpump uses (`D1PreparedStatement` of @cloudflare/workers-types qualifies).
 *
 * @example
 * ```ts
 * const stmt = env.DB.prepare('INSERT INTO orders (id) VALUES (?)').bind(id);
 * ```
 */
export interface D1PreparedStatementLike {
  /** The statement with its `?` parameters bound. */
  bind(...values: unknown[]): D1PreparedStatementLike;
  /** The first row, or `null`. */
  first(): Promise<unknown>;
  /** Runs the statement alone. */
  run(): Promise<unknown>;
}

/**
 * The part of a D1 binding (`env.DB`, a `D1Database`) feedpump uses.
 *
 * @example
 * ```ts
 * const db: D1DatabaseLike = env.DB;
 * ```
 */
export interface D1DatabaseLike {
  /** A prepared statement. */
  prepare(query: string): D1PreparedStatementLike;
  /** Runs the statements as one transaction: all commit, or none. */
  batch(statements: D1PreparedStatementLike[]): Promise<unknown[]>;
}

/**
 * Options of {@link d1Store}.
 *
 * @example
 * ```ts
 * d1Store(env.DB, { table: 'feed_cursors', createTable: false });
 * ```
 */
export interface D1StoreOptions {
  /**
   * The cursor table; a plain identifier.
   * @defaultValue `'feedpump_cursors'`
   */
  table?: string | undefined;
  /**
   * Create the table on first use (see {@link D1Store.schema}). `false`: your D1 migrations create it.
   * @defaultValue `true`
   */
  createTable?: boolean | undefined;
}

/**
 * A D1 {@link CursorStore}: the handler gets the database and returns the prepared statements of its effects.
 *
 * @typeParam DB - your D1 binding's type
 * @example
 * ```ts
 * const store = d1Store(env.DB);
 * console.log(store.schema); // for `wrangler d1 migrations`
 * ```
 */
export interface D1Store<DB extends D1DatabaseLike = D1DatabaseLike> extends CursorStore<DB> {
  /** The DDL of the cursor table (`CREATE TABLE IF NOT EXISTS ...`), for your migrations. */
  readonly schema: string;
}

/**
 * Makes a D1 {@link CursorStore}. One row per feed key in the cursor table. A save:
 *
 * 1. reads the key's row; with `expected` (what `consume()` always passes) nothing happens unless it is the expected
 *    record (`FeedError` `'cursor-conflict'`; the handler does not run);
 * 2. runs the handler with the database: it returns an array of prepared statements (or nothing), its effects;
 * 3. commits ONE `batch()`: a guard statement that fails unless the row is still the expected record (another
 *    consumer may have committed since step 1; the failing guard rolls the whole batch back), the handler's
 *    statements, the cursor row.
 *
 * The handler's reads (`await db.prepare(...).first()`) see the committed state and are not part of the batch:
 * compute writes that do not depend on what another writer may change meanwhile (upserts, `INSERT ... ON CONFLICT`,
 * `UPDATE ... SET n = n + 1`). A handler error passes as it is; a failed batch (one of the handler's statements, or
 * D1) is `FeedError` `'store-failed'`, nothing of it committed; a guard that failed is `'cursor-conflict'`. A batch
 * whose answer was lost (the connection dropped after D1 committed it) is found by reading the cursor row back: the
 * save succeeds. When the row cannot be read back, it is `'store-failed'` and its message says that whether the
 * batch committed is unknown (a restart's `load()` tells). (A record equal to this save's, the same cursors saved in
 * the same millisecond by another consumer that read the same batch, reads as this save's: the batch's effects were
 * then committed once, by that consumer.)
 *
 * A batch counts as one query per statement against D1's per-invocation query limit: choose `pageSizeHint` so that a
 * batch's statements (plus two) stay under it.
 *
 * @param db - the D1 binding (`env.DB`)
 * @param options - the table and its creation
 * @example
 * ```ts
 * import { consume, type Batch } from 'feedpump';
 * import { d1Store, type D1DatabaseLike } from 'feedpump/d1';
 *
 * interface Env { FEED_URL: string; DB: D1DatabaseLike } // or D1Database, from the Workers types
 *
 * export default {
 *   async scheduled(_controller: unknown, env: Env) {
 *     await consume({ url: env.FEED_URL, partitionCount: 4 }, {
 *       store: d1Store(env.DB),
 *       key: 'orders',
 *       handler: (batch: Batch<Order>, db) =>
 *         batch.events.map(({ data }) =>
 *           db.prepare('INSERT INTO orders (id, body) VALUES (?, ?) ON CONFLICT (id) DO UPDATE SET body = excluded.body').bind(data.id, JSON.stringify(data)),
 *         ),
 *       maxBatches: 20,
 *     });
 *   },
 * };
 * ```
 */
export function d1Store<DB extends D1DatabaseLike>(db: DB, options: D1StoreOptions = {}): D1Store<DB> {
  if (db === null || typeof db !== 'object' || typeof db.prepare !== 'function' || typeof db.batch !== 'function') {
    throw new FeedError('bad-options', 'd1Store() needs a D1 binding (env.DB: prepare() and batch())');
  }
  const table = quoteTable(options.table);
  if (table.includes('.')) throw new FeedError('bad-options', 'a D1 table name has no schema part');
  const { schema, select, insert, upsert } = sqliteSql(table);
  const createTable = options.createTable ?? true;
  // The guard: `json()` of text that is not JSON raises an error, which fails the batch, which rolls all of it back.
  const guard = (condition: string): string => `SELECT json(CASE WHEN ${condition} THEN '0' ELSE 'feedpump: cursor-conflict' END) AS ok`;
  const guardAbsent = guard(`NOT EXISTS (SELECT 1 FROM ${table} WHERE feed_key = ?)`);
  const guardSame = guard(`EXISTS (SELECT 1 FROM ${table} WHERE feed_key = ? AND identity = ? AND partitions IS ? AND cursors = ? AND saved_at = ?)`);

  let created: Promise<void> | undefined;
  const ensureTable = (): Promise<void> => {
    if (!createTable) return Promise.resolve();
    created ??= db
      .prepare(schema)
      .run()
      .then(
        () => undefined,
        (e: unknown) => {
          created = undefined;
          throw storeFailed('D1', `could not create the cursor table ${table}`, e);
        },
      );
    return created;
  };
  const read = async (key: string): Promise<CursorRecord | undefined> => {
    const row = await db.prepare(select).bind(key).first();
    return row == null ? undefined : fromRow(row as never, key);
  };

  return {
    schema,
    async load(key) {
      await ensureTable();
      try {
        return await read(key);
      } catch (e) {
        throw storeFailed('D1', `could not read the cursors of ${JSON.stringify(key)}`, e);
      }
    },
    async save(key, record, effects, expected) {
      await ensureTable();
      if (expected !== undefined) {
        let current: CursorRecord | undefined;
        try {
          current = await read(key);
        } catch (e) {
          throw storeFailed('D1', `could not read the cursors of ${JSON.stringify(key)}`, e);
        }
        if (!sameRecord(current, expected)) throw conflict(key);
      }
      const statements = effects ? await effects(db) : undefined;
      if (statements != null && (!Array.isArray(statements) || !statements.every((s) => s !== null && typeof s === 'object' && typeof (s as D1PreparedStatementLike).bind === 'function'))) {
        throw new FeedError('bad-options', 'with d1Store, the handler returns an array of D1 prepared statements (or nothing)');
      }
      const batch: D1PreparedStatementLike[] = [];
      if (expected === null) batch.push(db.prepare(guardAbsent).bind(key));
      else if (expected !== undefined) batch.push(db.prepare(guardSame).bind(key, ...textColumns(expected)));
      batch.push(...((statements ?? []) as D1PreparedStatementLike[]));
      batch.push(db.prepare(expected === null ? insert : upsert).bind(key, ...textColumns(record)));
      try {
        await db.batch(batch);
      } catch (e) {
        // What failed is not reported in a form to rely on; the row says what happened (the batch commits whole or
        // not at all). Our own record, different from the one before: the batch committed and only its answer was
        // lost (a dropped connection), so the save succeeded. Neither ours nor the expected one: the guard failed, the
        // row is another consumer's commit. Without an `expected` to tell ours from the one before (or when they are
        // the same), our own record in the row leaves the outcome unknown.
        let now: CursorRecord | undefined;
        try {
          now = await read(key);
        } catch {
          throw storeFailed('D1', `batch failed and the cursor row could not be read: whether it committed is unknown (feed key ${JSON.stringify(key)})`, e);
        }
        const ours = sameRecord(now, record);
        if (expected !== undefined && !sameRecord(record, expected)) {
          if (ours) return;
          if (!sameRecord(now, expected)) throw conflict(key);
        }
        const what = ours ? 'whether it committed is unknown' : 'nothing of it committed';
        throw storeFailed('D1', `batch failed, ${what} (feed key ${JSON.stringify(key)})`, e);
      }
    },
  };
}
