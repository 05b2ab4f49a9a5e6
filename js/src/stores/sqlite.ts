/**
 * `feedpump/sqlite`: {@link sqliteStore}, a {@link CursorStore} in SQLite through better-sqlite3 (12.x). A save is one
 * `BEGIN IMMEDIATE ... COMMIT` on your connection: the handler writes its effects through the same `Database`, then
 * the cursor row is written, and both commit together or not at all.
 *
 * `better-sqlite3` is an optional peer dependency: only this subpath needs it, and this module does not import it (it
 * takes your `Database`).
 * @module feedpump/sqlite
 */
import { FeedError } from '../errors.js';
import { conflict, sameRecord, type CursorRecord, type CursorStore } from './types.js';
import { fromRow, HANDLER_TIMEOUT_MS, quoteTable, sqliteSql, storeFailed, textColumns, timeoutOption } from './sql.js';

/**
 * The part of a better-sqlite3 `Statement` feedpump uses.
 *
 * @example
 * ```ts
 * const row = db.prepare('SELECT 1 AS one').get();
 * ```
 */
export interface SqliteStatementLike {
  /** The first row, or `undefined`. */
  get(...params: unknown[]): unknown;
  /** Runs the statement. */
  run(...params: unknown[]): unknown;
}

/**
 * The part of a better-sqlite3 `Database` feedpump uses. The handler gets your real `Database`.
 *
 * @example
 * ```ts
 * import Database from 'better-sqlite3';
 * import type { SqliteDatabaseLike } from 'feedpump/sqlite';
 * const db: SqliteDatabaseLike = new Database('app.db');
 * ```
 */
export interface SqliteDatabaseLike {
  /** Compiles one statement. */
  prepare(sql: string): SqliteStatementLike;
  /** Runs SQL text without parameters. */
  exec(sql: string): unknown;
  /** Whether a transaction is open on the connection. */
  readonly inTransaction: boolean;
}

/**
 * Options of {@link sqliteStore}.
 *
 * @example
 * ```ts
 * sqliteStore(db, { table: 'feed_cursors', createTable: false });
 * ```
 */
export interface SqliteStoreOptions {
  /**
   * The cursor table (`schema.table` for an attached database); plain identifiers only.
   * @defaultValue `'feedpump_cursors'`
   */
  table?: string | undefined;
  /**
   * Create the table on first use (see {@link SqliteStore.schema}). `false`: your migrations create it.
   * @defaultValue `true`
   */
  createTable?: boolean | undefined;
  /**
   * How many times `BEGIN IMMEDIATE` is tried when another connection holds the write lock past better-sqlite3's
   * busy `timeout` (`SQLITE_BUSY`).
   * @defaultValue `5`
   */
  maxAttempts?: number | undefined;
  /**
   * How long a save waits for an async handler (one that returns a promise) inside its transaction, in milliseconds.
   * While it awaits, the transaction is open: the connection's next saves wait their turn, and `BEGIN IMMEDIATE` holds
   * the database file's write lock against every other connection. A handler that has not settled by then is given
   * up: the save rolls back, nothing of the batch is committed, and it rejects with `FeedError` `'store-failed'`
   * (`consume()` stops with it: a stuck handler is no failure to try again); the next saves on the `Database` go on.
   * The store cannot stop the handler itself: should it go on later and write through the `Database`, those writes
   * are outside this save (in no transaction, or in a later save's), so a handler must not outlive this bound. A
   * synchronous handler is never cut (it has finished when the store could look).
   *
   * An integer from 1 to 2^31-1 (a timer's limit; longer would fire at once).
   * @defaultValue `60_000`
   * @example
   * ```ts
   * sqliteStore(db, { handlerTimeoutMs: 5_000 }); // an async handler that calls a service inside the transaction
   * ```
   */
  handlerTimeoutMs?: number | undefined;
}

/**
 * A SQLite {@link CursorStore}: the handler gets the `Database`.
 *
 * @typeParam D - your `Database` type
 * @example
 * ```ts
 * const store = sqliteStore(db);
 * db.exec(store.schema); // optional: the table is also created on first use
 * ```
 */
export interface SqliteStore<D extends SqliteDatabaseLike = SqliteDatabaseLike> extends CursorStore<D> {
  /** The DDL of the cursor table (`CREATE TABLE IF NOT EXISTS ...`), for your migrations. */
  readonly schema: string;
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/**
 * The end of the last save on each connection: saves on one `Database` take turns (it has one transaction at a time),
 * whichever store made them (two feeds consumed into one database, each with a `sqliteStore` of its own).
 */
const turns = new WeakMap<object, Promise<unknown>>();
/**
 * The saves on each connection that wait for their turn: when a handler does not settle, those behind its save may be
 * what it awaits (a re-entrant save, which can never go first), and its error says so.
 */
const waiting = new WeakMap<object, number>();
/** What the handler's timer rejects with: told apart from what the handler throws. */
const EXPIRED: unique symbol = Symbol('expired');
const isBusy = (e: unknown): boolean => e !== null && typeof e === 'object' && /^SQLITE_BUSY/.test(String((e as { code?: unknown }).code));

/**
 * Makes a SQLite {@link CursorStore} on a better-sqlite3 `Database`. One row per feed key in the cursor table. A save
 * runs, on your connection:
 *
 * 1. `BEGIN IMMEDIATE`: the write lock is taken first, so no other connection commits in between (another
 *    connection that holds it is waited for, up to better-sqlite3's `timeout`, then tried again);
 * 2. with `expected` (what `consume()` always passes): the key's row is read, and nothing is committed unless it is
 *    still the expected record (`FeedError` `'cursor-conflict'`);
 * 3. the handler, with the `Database` (write your effects through it; do not `COMMIT` or `ROLLBACK`);
 * 4. the cursor row; 5. `COMMIT`.
 *
 * A handler error rolls back and passes as it is; a database failure is `FeedError` `'store-failed'`, and so is an
 * async handler that has not settled within {@link SqliteStoreOptions.handlerTimeoutMs} (rolled back; the next saves
 * on the `Database` go on).
 *
 * Write the handler synchronously (better-sqlite3 is synchronous): while an async handler awaits, the transaction
 * stays open on the connection, and anything else your process runs on that `Database` meanwhile becomes part of it.
 * Saves on one `Database` wait for each other, also those of two stores: so a handler must never await a save on its
 * own `Database` (a nested `consume()` into it), which waits for the handler's own save until `handlerTimeoutMs`
 * (then `'store-failed'`, whose message names the saves waiting behind it; docs/consume.md, "Re-entrant saves"). Use WAL mode (`db.pragma('journal_mode = WAL')`): readers do not block the
 * writer, and with `synchronous = NORMAL` a commit survives a killed process (an OS crash may lose the last commits,
 * effects and cursor together).
 *
 * @param db - a better-sqlite3 `Database`
 * @param options - the table, its creation, the busy retries and the handler's time bound
 * @example
 * ```ts
 * import Database from 'better-sqlite3';
 * import { consume, type Batch } from 'feedpump';
 * import { sqliteStore } from 'feedpump/sqlite';
 *
 * const db = new Database('app.db');
 * db.pragma('journal_mode = WAL');
 * db.exec('CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY, body TEXT NOT NULL)');
 * const put = db.prepare('INSERT OR REPLACE INTO orders (id, body) VALUES (?, ?)');
 * await consume({ url: 'https://host/feed/v1', partitionCount: 4 }, {
 *   store: sqliteStore(db),
 *   key: 'orders',
 *   handler: (batch: Batch<Order>) => {
 *     for (const { data } of batch.events) put.run(data.id, JSON.stringify(data));
 *   },
 * });
 * ```
 */
export function sqliteStore<D extends SqliteDatabaseLike>(db: D, options: SqliteStoreOptions = {}): SqliteStore<D> {
  if (db === null || typeof db !== 'object' || typeof db.prepare !== 'function' || typeof db.exec !== 'function') {
    throw new FeedError('bad-options', 'sqliteStore() needs a better-sqlite3 Database');
  }
  const table = quoteTable(options.table);
  const maxAttempts = options.maxAttempts ?? 5;
  if (!(Number.isInteger(maxAttempts) && maxAttempts >= 1)) throw new FeedError('bad-options', 'maxAttempts must be an integer >= 1');
  const handlerTimeoutMs = timeoutOption('handlerTimeoutMs', options.handlerTimeoutMs) ?? HANDLER_TIMEOUT_MS;
  const createTable = options.createTable ?? true;
  const { schema, select, insert, upsert } = sqliteSql(table);
  /** Whether this store made sure the table exists (in a save's transaction: DDL needs the write lock). */
  let created = !createTable;
  const read = (key: string): CursorRecord | undefined => {
    let row: unknown;
    try {
      row = db.prepare(select).get(key);
    } catch (e) {
      // The table is created by the first save: until then nothing is stored.
      if (!created && /no such table/.test(String((e as Error | undefined)?.message))) return undefined;
      throw e;
    }
    return row === undefined ? undefined : fromRow(row as never, key);
  };

  const saveNow = async (key: string, record: CursorRecord, effects: ((tx: D) => unknown) | undefined, expected: CursorRecord | null | undefined) => {
    for (let attempt = 1; ; attempt++) {
      try {
        db.exec('BEGIN IMMEDIATE');
        break;
      } catch (e) {
        if (!isBusy(e) || attempt >= maxAttempts) throw storeFailed('SQLite', `could not begin a transaction (feed key ${JSON.stringify(key)})`, e);
        await sleep(Math.min(1_000, 10 * 2 ** attempt) * (0.5 + Math.random()));
      }
    }
    /** The handler's error or a conflict: passed on as they are, after the rollback. */
    let passOn: { error: unknown } | undefined;
    try {
      if (!created) db.exec(schema);
      if (expected !== undefined && !sameRecord(read(key), expected)) {
        passOn = { error: conflict(key) };
        throw passOn.error;
      }
      if (effects) {
        let timer: ReturnType<typeof setTimeout> | undefined;
        try {
          const done = effects(db);
          // An async handler: awaited inside the open transaction for at most handlerTimeoutMs, never for ever (every
          // later save on this Database waits for this one). A late rejection is handled by the race.
          if (done != null && typeof (done as PromiseLike<unknown>).then === 'function') {
            await Promise.race([done, new Promise<never>((_, reject) => (timer = setTimeout(reject, handlerTimeoutMs, EXPIRED)))]);
          }
        } catch (e) {
          if (e !== EXPIRED) {
            passOn = { error: e };
            throw e;
          }
          // Another consumer's save waits here too, so this cannot say which it is (that needs the async context of the
          // call: AsyncLocalStorage, which on Node 20 turns on promise hooks for the whole process).
          const behind = waiting.get(db) ?? 0;
          const why =
            behind > 0
              ? `; ${behind} save${behind > 1 ? 's' : ''} on this Database wait${behind > 1 ? '' : 's'} behind it: if the handler awaits one ` +
                '(a save or consume() into this Database from inside the handler), that is a re-entrant save, which waits for this one'
              : '';
          throw new FeedError(
            'store-failed',
            `SQLite: the handler did not settle within handlerTimeoutMs (${handlerTimeoutMs} ms) inside the transaction of feed key ${JSON.stringify(key)}: rolled back, nothing of the batch committed${why}`,
          );
        } finally {
          clearTimeout(timer);
        }
      }
      if (!db.inTransaction) throw new Error('the transaction was ended by the handler (a COMMIT or ROLLBACK of its own?)');
      db.prepare(expected === null ? insert : upsert).run(key, ...textColumns(record));
      db.exec('COMMIT');
      created = true;
    } catch (e) {
      if (db.inTransaction) {
        try {
          db.exec('ROLLBACK');
        } catch {
          // SQLite rolled back already (some errors end the transaction themselves)
        }
      }
      if (passOn !== undefined) throw passOn.error;
      throw storeFailed('SQLite', `could not commit the batch (feed key ${JSON.stringify(key)})`, e);
    }
  };

  return {
    schema,
    load(key) {
      try {
        return Promise.resolve(read(key));
      } catch (e) {
        return Promise.reject(storeFailed('SQLite', `could not read the cursors of ${JSON.stringify(key)}`, e));
      }
    },
    save(key, record, effects, expected) {
      waiting.set(db, (waiting.get(db) ?? 0) + 1);
      const done = (turns.get(db) ?? Promise.resolve()).then(() => {
        waiting.set(db, (waiting.get(db) ?? 1) - 1);
        return saveNow(key, record, effects, expected);
      });
      turns.set(db, done.catch(() => {}));
      return done;
    },
  };
}
