/**
 * `feedpump/postgres`: {@link postgresStore}, a {@link CursorStore} in PostgreSQL through node-postgres (`pg`). A save
 * is one `BEGIN ... COMMIT` on one pooled client: the handler writes its effects through that client, then the
 * cursor row is written, and both commit together or not at all. This is the pattern ZeroEventHub's own client
 * README recommends: "the effect of changes to our own database and the updated cursor value in the same transaction".
 *
 * `pg` is an optional peer dependency: only this subpath needs it, and this module does not import it (it takes your
 * `Pool`), so the core package stays free of dependencies and the browser bundle does not grow.
 * @module feedpump/postgres
 */
import { FeedError } from '../errors.js';
import { conflict, sameRecord, type CursorRecord, type CursorStore } from './types.js';
import { CREATE_RACE, encodeCursors, fromRow, HANDLER_TIMEOUT_MS, quoteTable, storeFailed, timeoutOption } from './sql.js';

/**
 * What a query answers (node-postgres' `QueryResult` qualifies).
 *
 * @example
 * ```ts
 * const { rows, command } = await client.query('SELECT 1 AS one');
 * ```
 */
export interface PgQueryResultLike {
  /** The rows, as objects by column name. */
  rows: Record<string, unknown>[];
  /** The command tag: `'COMMIT'`, or `'ROLLBACK'` when PostgreSQL rolled a failed transaction back at `COMMIT`. */
  command?: string | undefined;
}

/**
 * The part of a node-postgres `PoolClient` feedpump uses. The handler gets your real client, with all its methods.
 *
 * @example
 * ```ts
 * handler: async (batch, client) => { for (const e of batch.events) await client.query('INSERT INTO orders (id) VALUES ($1)', [e.data.id]); }
 * ```
 */
export interface PgClientLike {
  /** Runs one statement with `$1`, `$2`, … parameters. */
  query(text: string, values?: unknown[]): Promise<PgQueryResultLike>;
  /** Gives the client back to the pool; `true` (or an error) destroys it instead (a broken connection). */
  release(destroy?: boolean | Error): void;
}

/**
 * The part of a node-postgres `Pool` feedpump uses: it checks out one client per load and per save.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * import type { PgPoolLike } from 'feedpump/postgres';
 * const pool: PgPoolLike<pg.PoolClient> = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * ```
 */
export interface PgPoolLike<C extends PgClientLike = PgClientLike> {
  /** A client of the pool, checked out until `release()`. */
  connect(): Promise<C>;
}

/**
 * A node-postgres `Pool` as its types declare it (`connect()` has a callback overload too): this shape lets
 * TypeScript infer the handler's client type (`PoolClient`) from your pool.
 *
 * @example
 * ```ts
 * import pg from 'pg';
 * const store = postgresStore(new pg.Pool()); // handler: (batch, client: pg.PoolClient) => ...
 * ```
 */
export interface PgPool<C extends PgClientLike = PgClientLike> extends PgPoolLike<C> {
  /** A client of the pool, checked out until `release()`. */
  connect(): Promise<C>;
  /** node-postgres' callback form (not used by feedpump). */
  connect(callback: (...args: never[]) => void): void;
}

/**
 * Options of {@link postgresStore}.
 *
 * @example
 * ```ts
 * postgresStore(pool, { table: 'app.feed_cursors', createTable: false, isolation: 'serializable' });
 * ```
 */
export interface PostgresStoreOptions {
  /**
   * The cursor table, optionally schema-qualified (`schema.table`); plain identifiers only.
   * @defaultValue `'feedpump_cursors'`
   */
  table?: string | undefined;
  /**
   * Create the table on first use (`CREATE TABLE IF NOT EXISTS`, see {@link PostgresStore.schema}) when it does not
   * exist: a role without CREATE on the schema uses the table your migrations made. `false`: your migrations create it.
   * @defaultValue `true`
   */
  createTable?: boolean | undefined;
  /**
   * The isolation level of the save transactions. The cursor check is correct at every level (the row is locked with
   * `SELECT ... FOR UPDATE`); choose a stricter level for what your handler reads.
   * @defaultValue `'read committed'`
   */
  isolation?: 'read committed' | 'repeatable read' | 'serializable' | undefined;
  /**
   * How many times a save is tried when PostgreSQL aborts it with a serialization failure (`40001`) or a deadlock
   * (`40P01`): the whole transaction, the handler included, runs again after a short backoff. Every try that fails
   * commits nothing.
   * @defaultValue `5`
   */
  maxAttempts?: number | undefined;
  /**
   * Ends a save's transaction that stays idle (waiting for this process) longer than this many milliseconds: the
   * server rolls it back and closes its session, which frees the cursor row's lock. Without it, a consumer frozen
   * inside its commit transaction (SIGSTOP, a VM pause, a handler that awaits for ever between two statements) holds
   * the lock for as long as its connection lives, and another consumer of the key (a restart, a failover instance)
   * waits for it for ever. It is PostgreSQL's `idle_in_transaction_session_timeout`, set for the transaction only
   * (`SET LOCAL`, as `set_config(..., true)` right after `BEGIN`); it counts the time between statements, not a
   * statement that runs long (that is `statement_timeout`). The consumer whose transaction was ended fails with
   * `'store-failed'` once it runs again; nothing of its batch is committed, and the next consumer of the key resumes
   * from the last commit.
   *
   * Not set by default: then the server's setting applies (role, database or `postgresql.conf`; PostgreSQL's own
   * default is none). A default here would override a stricter setting your administrator chose, and no default suits
   * every handler: choose one longer than your handler's longest wait between two statements. An integer from 1 to
   * 2^31-1 (PostgreSQL refuses more). In `feedpump/group` the commit uses the smaller of this and `leaseMs`.
   * @defaultValue `undefined` (the server's `idle_in_transaction_session_timeout`)
   * @example
   * ```ts
   * postgresStore(pool, { transactionIdleTimeoutMs: 60_000, lockTimeoutMs: 120_000 });
   * ```
   */
  transactionIdleTimeoutMs?: number | undefined;
  /**
   * Bounds every lock wait of a save's transaction to this many milliseconds (PostgreSQL's `lock_timeout`, set for the
   * transaction only): above all the wait for the cursor row, locked by another consumer of the key inside its commit.
   * Past it the save rejects with `'store-failed'` and commits nothing. The waiting side's bound: it holds also when
   * the consumer that holds the lock has no {@link PostgresStoreOptions.transactionIdleTimeoutMs} (another version,
   * another setting); make it longer than the longest commit of the other consumers, or a slow but live one fails
   * yours. It bounds the handler's lock waits too (and in `feedpump/group` the wait for the lease row).
   *
   * Not set by default: the server's `lock_timeout` applies (PostgreSQL's own default is none). An integer from 1 to
   * 2^31-1.
   * @defaultValue `undefined` (the server's `lock_timeout`)
   */
  lockTimeoutMs?: number | undefined;
  /**
   * How long a save waits for an async handler (one that returns a promise) inside its transaction, in milliseconds.
   * While it awaits, the transaction is open on its pooled client: the cursor row stays locked against the key's other
   * consumers, and the client is not back in the pool. A handler that has not settled by then is given up: the save
   * rejects with `FeedError` `'store-failed'` (`consume()` stops with it: a stuck handler is no failure to try again),
   * and nothing of the batch is committed. The store cannot stop the handler itself, and the client is the handler's
   * until it settles, so the client is destroyed, never given back to the pool: closing its session rolls the
   * transaction back (once a statement of the handler still running on it ends: that is `statement_timeout`'s bound),
   * and a handler that goes on later fails on a closed client instead of writing into another save's transaction.
   * A synchronous handler is never cut (it has finished when the store could look).
   *
   * The same bound as `sqliteStore`'s. A save also gives up at once, the same way, when the client's connection dies
   * while the handler runs (node-postgres' `'error'` event: the server ended the session for
   * {@link PostgresStoreOptions.transactionIdleTimeoutMs}, a terminated backend, a network failure): the handler may
   * await something that is not the database, and would otherwise keep the save waiting for ever.
   *
   * An integer from 1 to 2^31-1 (a timer's limit; longer would fire at once). Choose it longer than your slowest
   * batch's handler, statements included.
   * @defaultValue `60_000`
   * @example
   * ```ts
   * postgresStore(pool, { handlerTimeoutMs: 5_000 }); // a handler that calls a service inside the transaction
   * ```
   */
  handlerTimeoutMs?: number | undefined;
}

/**
 * A PostgreSQL {@link CursorStore}: the handler gets the transaction's client (`PoolClient`).
 *
 * @typeParam C - your pool's client type
 * @example
 * ```ts
 * const store = postgresStore(pool);
 * await store.migrate(); // optional: the table is also created on first use
 * console.log(store.schema);
 * ```
 */
export interface PostgresStore<C extends PgClientLike = PgClientLike> extends CursorStore<C> {
  /** The DDL of the cursor table (`CREATE TABLE IF NOT EXISTS ...`), for your migrations. */
  readonly schema: string;
  /** Creates the cursor table if it does not exist. */
  migrate(): Promise<void>;
  /** The pool the store was made on (`consumeGroup` of `feedpump/group` keeps its leases there). */
  readonly pool: PgPoolLike<C>;
}

/**
 * What a {@link PostgresStore}'s `save` also takes, as a fifth argument (`feedpump/group`'s).
 * @internal
 */
export interface SaveHooks<C> {
  /**
   * Statements run on the transaction's client right after `BEGIN` and the transaction's bounds, before the cursor row
   * is locked (the group's lease fence).
   */
  first?: ((client: C) => Promise<void>) | undefined;
  /**
   * A bound of the transaction's idle time of the caller's own (the group's lease: a member stopped inside the
   * transaction must not hold its locks longer): the transaction is bounded by the smaller of this and the store's
   * {@link PostgresStoreOptions.transactionIdleTimeoutMs}.
   */
  idleTimeoutMs?: number | undefined;
}

/**
 * Bounds the open transaction on `client`: its idle time (`idle_in_transaction_session_timeout`) and its lock waits
 * (`lock_timeout`), each when given, for this transaction only (`set_config(..., true)` is `SET LOCAL`), in one
 * statement. The one place these settings are made: {@link postgresStore}'s saves and `feedpump/group`'s fence.
 * @internal
 */
export async function boundTransaction(client: PgClientLike, idleMs: number | undefined, lockMs: number | undefined): Promise<void> {
  const calls: string[] = [];
  const values: string[] = [];
  const bound = (setting: string, ms: number | undefined): void => {
    if (ms === undefined) return;
    values.push(String(Math.ceil(ms)));
    calls.push(`set_config('${setting}', $${values.length}, true)`);
  };
  bound('idle_in_transaction_session_timeout', idleMs);
  bound('lock_timeout', lockMs);
  if (calls.length > 0) await client.query(`SELECT ${calls.join(', ')}`, values);
}

/** PostgreSQL's SQLSTATEs of a transaction that may succeed when tried again. */
const RETRYABLE = new Set(['40001', '40P01']);
const sqlState = (e: unknown): unknown => (e !== null && typeof e === 'object' ? (e as { code?: unknown }).code : undefined);
/** A try that PostgreSQL aborted with a serialization failure or a deadlock: `error` as thrown (by the handler or a statement of the store). */
class Retry {
  constructor(
    readonly error: unknown,
    readonly fromHandler: boolean,
  ) {}
}
const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
/**
 * A save that stopped waiting for its handler, which may still run with the client: `error` is what the save rejects
 * with. Its client is destroyed, never rolled back and given back (see {@link PostgresStoreOptions.handlerTimeoutMs}).
 */
class GaveUp {
  constructor(readonly error: FeedError) {}
}
/** A client while the store holds it: node-postgres' `pg.Client` is an EventEmitter (a pool of your own may not be). */
type Events = Partial<Record<'on' | 'off', (event: 'error', listener: (error: unknown) => void) => void>>;

/**
 * Runs `ddl` (`CREATE TABLE IF NOT EXISTS ...` of `tables`, quoted names) unless every one of them exists. PostgreSQL
 * checks the CREATE privilege on the schema before it looks for the table, so a role without it (least privilege; no
 * role has it on `public` by default since PostgreSQL 15) could not use the tables its migrations made. Two first uses
 * at once can lose the race on the catalog's unique index (`CREATE_RACE`): the table exists afterwards.
 * @internal
 */
export async function createMissing(query: (text: string, values?: unknown[]) => Promise<Record<string, unknown>[]>, tables: string[], ddl: string): Promise<void> {
  const [found] = await query('SELECT bool_and(to_regclass(t) IS NOT NULL) AS ok FROM unnest($1::text[]) AS t', [tables]);
  if (found?.['ok'] === true) return;
  try {
    await query(ddl);
  } catch (e) {
    if (!CREATE_RACE.has(sqlState(e) as string)) throw e;
  }
}

/**
 * Makes a PostgreSQL {@link CursorStore} on a node-postgres `Pool`. One row per feed key in the cursor table. A save
 * checks out one client and runs, in one transaction:
 *
 * 1. `BEGIN`, then the transaction's bounds when you set them ({@link PostgresStoreOptions.transactionIdleTimeoutMs},
 *    {@link PostgresStoreOptions.lockTimeoutMs}): a consumer frozen inside its commit must not hold the cursor row's
 *    lock for ever, nor another wait for it for ever;
 * 2. with `expected` (what `consume()` always passes): `SELECT ... FOR UPDATE` of the key's row, and nothing is
 *    committed unless it is still the expected record (`FeedError` `'cursor-conflict'`): of two consumers of one key,
 *    the second waits for the first's lock and then sees its commit;
 * 3. the handler, with the client (write your effects through it; do not `COMMIT`, `ROLLBACK` or `release()` it),
 *    waited for at most {@link PostgresStoreOptions.handlerTimeoutMs} and while the client's connection lives;
 * 4. the cursor row (`INSERT`, or `INSERT ... ON CONFLICT DO UPDATE`);
 * 5. `COMMIT`, which must answer `COMMIT`: a transaction in which a statement failed (a handler that caught a
 *    database error and went on) is rolled back by PostgreSQL at `COMMIT`, and the save rejects.
 *
 * A handler error rolls back and passes as it is; a database failure is `FeedError` `'store-failed'`; serialization
 * failures and deadlocks are tried again ({@link PostgresStoreOptions.maxAttempts}). A lock wait past `lockTimeoutMs`
 * for the cursor row is `'store-failed'` too; a handler's statement that waits past it fails in the handler. So is an
 * async handler that has not settled within `handlerTimeoutMs`, or whose client's connection died while it ran (the
 * server ended the session for `transactionIdleTimeoutMs`): its client is destroyed, never given back to the pool,
 * so that nothing the handler still does lands in a later save's transaction.
 *
 * On Cloudflare Workers, node-postgres runs with `nodejs_compat` through Hyperdrive (`new Pool({ connectionString:
 * env.HYPERDRIVE.connectionString })`, created and ended in the request that consumes); feedpump's tests run this
 * store in Node and in workerd over its TCP sockets, not through Hyperdrive itself (see docs/consume.md).
 *
 * @param pool - a node-postgres `Pool` (or anything with `connect()` giving a client with `query()` and `release()`)
 * @param options - the table, its creation, the isolation level, the retries, the transaction's and the handler's time bounds
 * @example
 * ```ts
 * import pg from 'pg';
 * import { consume, type Batch } from 'feedpump';
 * import { postgresStore } from 'feedpump/postgres';
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * await consume({ url: 'https://host/feed/v1', partitionCount: 4 }, {
 *   // A consumer frozen in its commit (SIGSTOP, a VM pause) frees the cursor row after 60 s idle; a restarted one
 *   // waits at most 2 min for a cursor row that another holds.
 *   store: postgresStore(pool, { transactionIdleTimeoutMs: 60_000, lockTimeoutMs: 120_000 }),
 *   key: 'orders',
 *   handler: async (batch: Batch<Order>, client) => {
 *     for (const { data } of batch.events) {
 *       await client.query('INSERT INTO orders (id, body) VALUES ($1, $2) ON CONFLICT (id) DO UPDATE SET body = $2', [data.id, data]);
 *     }
 *   },
 * });
 * ```
 */
export function postgresStore<C extends PgClientLike>(pool: PgPool<C>, options?: PostgresStoreOptions): PostgresStore<C>;
/**
 * Makes a PostgreSQL {@link CursorStore} on a pool of your own (no callback form of `connect()`): the same store as
 * with a node-postgres `Pool`; the handler gets your client type `C`.
 * @param pool - anything with `connect()` giving a client with `query()` and `release()`
 * @param options - the table, its creation, the isolation level, the retries, the transaction's and the handler's time bounds
 * @example
 * ```ts
 * const store = postgresStore<MyClient>(myPool);
 * ```
 */
export function postgresStore<C extends PgClientLike>(pool: PgPoolLike<C>, options?: PostgresStoreOptions): PostgresStore<C>;
export function postgresStore<C extends PgClientLike>(pool: PgPoolLike<C>, options: PostgresStoreOptions = {}): PostgresStore<C> {
  if (pool === null || typeof pool !== 'object' || typeof pool.connect !== 'function') {
    throw new FeedError('bad-options', 'postgresStore() needs a pg Pool (an object with connect())');
  }
  const table = quoteTable(options.table);
  const isolation = options.isolation ?? 'read committed';
  if (!['read committed', 'repeatable read', 'serializable'].includes(isolation)) {
    throw new FeedError('bad-options', `isolation must be 'read committed', 'repeatable read' or 'serializable', got ${JSON.stringify(isolation)}`);
  }
  const maxAttempts = options.maxAttempts ?? 5;
  if (!(Number.isInteger(maxAttempts) && maxAttempts >= 1)) throw new FeedError('bad-options', 'maxAttempts must be an integer >= 1');
  const createTable = options.createTable ?? true;
  const idleTimeoutMs = timeoutOption('transactionIdleTimeoutMs', options.transactionIdleTimeoutMs);
  const lockTimeoutMs = timeoutOption('lockTimeoutMs', options.lockTimeoutMs);
  const handlerTimeoutMs = timeoutOption('handlerTimeoutMs', options.handlerTimeoutMs) ?? HANDLER_TIMEOUT_MS;
  const schema =
    `CREATE TABLE IF NOT EXISTS ${table} (\n` +
    '  feed_key   text PRIMARY KEY,\n' +
    '  identity   text NOT NULL,\n' +
    '  partitions integer[],\n' +
    '  cursors    json NOT NULL,  -- json, not jsonb: jsonb refuses the \\u0000 escape, and cursors are any text\n' +
    '  saved_at   bigint NOT NULL,\n' +
    '  updated_at timestamptz NOT NULL DEFAULT now()\n' +
    ')';
  const columns = 'identity, partitions, cursors, saved_at';
  const values = (key: string, r: CursorRecord): unknown[] => [key, r.identity, r.partitions ?? null, encodeCursors(r.cursors), r.savedAt];
  const insert = `INSERT INTO ${table} (feed_key, ${columns}) VALUES ($1, $2, $3, $4::json, $5)`;
  const upsert =
    `${insert} ON CONFLICT (feed_key) DO UPDATE SET identity = EXCLUDED.identity, partitions = EXCLUDED.partitions, ` +
    'cursors = EXCLUDED.cursors, saved_at = EXCLUDED.saved_at, updated_at = now()';

  /**
   * Runs `body` with a checked-out client, and gives it back exactly once when `body` settles; a client whose
   * connection broke, or that `body` marks `broken`, is destroyed (`release(true)`: the pool ends it), not given back.
   * `lost` rejects with the client's error once its connection dies while the store holds it.
   */
  const withClient = async <T>(what: string, body: (client: C, broken: () => void, lost: Promise<never>) => Promise<T>): Promise<T> => {
    let client: C;
    try {
      client = await pool.connect();
    } catch (e) {
      throw storeFailed('PostgreSQL', `could not connect (${what})`, e);
    }
    let destroy = false;
    let lose: (error: unknown) => void = () => {};
    const lost = new Promise<never>((_, reject) => (lose = reject));
    lost.catch(() => {}); // looked at only while a handler runs
    const broken = (): void => {
      destroy = true;
    };
    // node-postgres emits 'error' on a checked-out client whose connection dies between queries (the server ended the
    // session, a terminated backend); without a listener that is an uncaught exception. While the store holds the
    // client, such an error marks it broken (the query that meets the dead connection rejects on its own), and ends
    // the wait for a handler that may await something else (`lost`).
    const events = client as unknown as Events;
    const onError = (error: unknown): void => {
      destroy = true;
      lose(error);
    };
    events.on?.call(client, 'error', onError);
    try {
      return await body(client, broken, lost);
    } finally {
      events.off?.call(client, 'error', onError);
      client.release(destroy);
    }
  };

  /**
   * Waits for what the handler returned: a promise at most `handlerTimeoutMs`, and only while the client's connection
   * lives; past either, rejects with {@link GaveUp} (the handler may still run). The timer is cleared on every path.
   */
  const awaitHandler = async (done: unknown, lost: Promise<never>, key: string): Promise<void> => {
    if (done == null || typeof (done as PromiseLike<unknown>).then !== 'function') return; // synchronous: finished
    const batch = `inside the transaction of feed key ${JSON.stringify(key)}`;
    const closed = 'its client destroyed (the session closed, which rolls the transaction back), nothing of the batch committed';
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new GaveUp(new FeedError('store-failed', `PostgreSQL: the handler did not settle within handlerTimeoutMs (${handlerTimeoutMs} ms) ${batch}: ${closed}`))),
        handlerTimeoutMs,
      );
    });
    const gone = lost.catch((e: unknown) => {
      const code = sqlState(e);
      const why =
        code === '25P03'
          ? ' (SQLSTATE 25P03: the transaction idled longer than idle_in_transaction_session_timeout, transactionIdleTimeoutMs)'
          : typeof code === 'string'
            ? ` (SQLSTATE ${code})`
            : '';
      throw new GaveUp(new FeedError('store-failed', `PostgreSQL: the connection was lost while the handler ran${why} ${batch}: ${closed}`, { cause: e }));
    });
    try {
      // A late settlement of the handler (after the save gave up) is handled by the race: never an unhandled rejection.
      await Promise.race([done, gone, expired]);
    } finally {
      clearTimeout(timer);
    }
  };

  /** The table's creation, once per store (again after a failure). */
  let created: Promise<void> | undefined;
  const migrate = (): Promise<void> => {
    created ??= withClient('creating the cursor table', (client) =>
      createMissing(async (text, values) => (await client.query(text, values)).rows, [table], schema),
    ).catch((e: unknown) => {
      created = undefined;
      throw storeFailed('PostgreSQL', `could not create the cursor table ${table}`, e);
    });
    return created;
  };

  /** One try of a save. */
  const saveOnce = (
    key: string,
    record: CursorRecord,
    effects: ((tx: C) => unknown) | undefined,
    expected: CursorRecord | null | undefined,
    hooks: SaveHooks<C> | undefined,
  ) =>
    withClient(`saving ${JSON.stringify(key)}`, async (client, broken, lost) => {
      /** The handler's error or a conflict: passed on as they are, after the rollback. */
      let passOn: { error: unknown } | undefined;
      try {
        await client.query(`BEGIN ISOLATION LEVEL ${isolation.toUpperCase()}`);
        // Before any lock is taken: a consumer stopped inside this transaction must not hold the cursor row for ever,
        // and this one must not wait for ever for another's.
        const idle = hooks?.idleTimeoutMs === undefined ? idleTimeoutMs : Math.min(hooks.idleTimeoutMs, idleTimeoutMs ?? Infinity);
        await boundTransaction(client, idle, lockTimeoutMs);
        // feedpump/group's fence, before the cursor row is locked (a FeedError passes as it is).
        if (hooks?.first) await hooks.first(client);
        if (expected !== undefined) {
          let rows: Record<string, unknown>[];
          try {
            ({ rows } = await client.query(`SELECT ${columns} FROM ${table} WHERE feed_key = $1 FOR UPDATE`, [key]));
          } catch (e) {
            if (sqlState(e) !== '55P03') throw e;
            throw new Error(
              `the cursor row stayed locked longer than lockTimeoutMs (${lockTimeoutMs} ms): another consumer of the key is inside its commit, or stopped there`,
              { cause: e },
            );
          }
          const row = rows[0];
          if (!sameRecord(row === undefined ? undefined : fromRow(row as never, key), expected)) {
            passOn = { error: conflict(key) };
            throw passOn.error;
          }
        }
        if (effects) {
          try {
            await awaitHandler(effects(client), lost, key);
          } catch (e) {
            if (!(e instanceof GaveUp)) passOn = { error: e };
            throw e;
          }
        }
        try {
          await client.query(expected === null ? insert : upsert, values(key, record));
        } catch (e) {
          // No row was expected and another consumer inserted one first (there was no row to lock).
          if (expected === null && sqlState(e) === '23505') passOn = { error: conflict(key) };
          // 25P02: a statement of the handler failed and the handler caught it and went on; PostgreSQL refuses the rest.
          if (sqlState(e) === '25P02') throw new Error('a statement of the handler failed (did the handler catch a database error and go on?)', { cause: e });
          throw passOn?.error ?? e;
        }
        const done = await client.query('COMMIT');
        if (done.command !== undefined && done.command !== 'COMMIT') {
          throw new Error(`COMMIT answered ${done.command}: a statement of the transaction had failed (did the handler catch a database error and go on?)`);
        }
      } catch (e) {
        if (e instanceof GaveUp) {
          // The handler may still run with this client: no ROLLBACK (it would queue behind a statement of the handler
          // that may never end), and the client is destroyed, so that nothing the handler does later lands in another
          // save's transaction on it. The server rolls the transaction back when the session closes.
          broken();
          throw e.error;
        }
        try {
          await client.query('ROLLBACK');
        } catch {
          broken(); // the connection is gone or unusable: never give it back to the pool
        }
        if (RETRYABLE.has(sqlState(e) as string)) throw new Retry(e, passOn !== undefined);
        if (passOn !== undefined) throw passOn.error;
        throw storeFailed('PostgreSQL', `could not commit the batch (feed key ${JSON.stringify(key)})`, e);
      }
    });

  return {
    schema,
    migrate,
    pool,
    async load(key) {
      if (createTable) await migrate();
      return withClient(`loading ${JSON.stringify(key)}`, async (client) => {
        let rows: Record<string, unknown>[];
        try {
          ({ rows } = await client.query(`SELECT ${columns} FROM ${table} WHERE feed_key = $1`, [key]));
        } catch (e) {
          throw storeFailed('PostgreSQL', `could not read the cursors of ${JSON.stringify(key)}`, e);
        }
        const row = rows[0];
        return row === undefined ? undefined : fromRow(row as never, key);
      });
    },
    // `hooks` (internal, {@link SaveHooks}): feedpump/group's fence and idle bound, applied right after BEGIN.
    async save(key, record, effects, expected, hooks?: SaveHooks<C>) {
      if (createTable) await migrate();
      for (let attempt = 1; ; attempt++) {
        try {
          await saveOnce(key, record, effects, expected, hooks);
          return;
        } catch (e) {
          if (!(e instanceof Retry)) throw e;
          if (attempt >= maxAttempts) {
            if (e.fromHandler) throw e.error;
            throw storeFailed('PostgreSQL', `could not commit the batch (feed key ${JSON.stringify(key)}) in ${attempt} attempts`, e.error);
          }
          // Jittered, doubling: the transactions that collided should not collide again.
          await sleep(Math.min(1_000, 10 * 2 ** attempt) * (0.5 + Math.random()));
        }
      }
    },
  };
}
