/**
 * `feedpump/group`: {@link consumeGroup}, consumer groups over PostgreSQL. Several processes share the partitions of
 * one feed; each partition is leased in the database with an owner, an epoch and an expiry; a crashed member's
 * partitions move to the others; and a member that lost a lease can never commit, because the lease's owner and epoch
 * are checked inside every commit transaction (a fencing token).
 *
 * FeedAPI v1 and v2 feeds; on v2 a partition's split children are read by the holder of the partition.
 *
 * Each held partition runs `consume()` of its own (`partitions: [p]`, feed key `<group>:<p>`) on the
 * {@link PostgresStore} you pass, through a store wrapper whose `save` checks the lease in the same transaction as the
 * effects and the cursor row. So a partition's cursor is one row that survives reassignment, two members committing
 * different partitions never touch the same row, and a stale owner of a partition always fails.
 * @packageDocumentation
 */
import { FeedError, isFeedError } from '../errors.js';
import { consume, oneOf, type ConsumeSource, type HandlerErrorAction, type HandlerErrorInfo, type MissingCursorsPolicy } from '../consume.js';
import type { AnyFeedOptions, Batch } from '../types.js';
import type { CursorRecord, CursorStore, Cursors } from '../stores/types.js';
import { quoteTable } from '../stores/sql.js';
import { boundTransaction, createMissing, type PgClientLike, type PgPoolLike, type PostgresStore, type SaveHooks } from '../stores/postgres.js';
import { discoverOnce, type Requester } from '../source/discovery.js';
import { isFinal } from '../wasm/feedpump.js';
import { assign } from './assign.js';
import { leaseRoots } from './roots.js';
import { badOption, MAX_TIMER_MS, sleep, watched } from '../options.js';

/**
 * Why a member gave up partitions: `'rebalance'` (the assignment moved them to another member; the current batch was
 * committed first), `'lost'` (the lease expired and another member took it, e.g. after a pause longer than the
 * lease: nothing more of the partition was committed by this member), `'shutdown'` (`stop()`, the signal, or a fatal
 * error).
 *
 * @example
 * ```ts
 * onRevoke: (partitions, reason) => console.log(`gave up ${partitions} (${reason})`)
 * ```
 */
export type RevokeReason = 'rebalance' | 'lost' | 'shutdown';

/**
 * Options of {@link consumeGroup}.
 *
 * @typeParam T - the type of the events' `data`
 * @typeParam C - the store's client type (node-postgres' `PoolClient`)
 * @example
 * ```ts
 * import pg from 'pg';
 * const options: GroupOptions<Order, pg.PoolClient> = { store: postgresStore(pool), group: 'billing', handler: apply };
 * ```
 */
export interface GroupOptions<T, C extends PgClientLike> {
  /** The PostgreSQL store: cursors, effects and leases commit in one transaction on its pool. */
  store: PostgresStore<C>;
  /** The group's name: members with the same name share the partitions. Also the prefix of the feed keys (`<group>:<p>`). */
  group: string;
  /**
   * Applies a batch (of one partition) through the transaction's client, as `consume()`'s handler. A commit waits for
   * it at most the store's `handlerTimeoutMs` (`postgresStore`'s option, default 60 s), and no longer than the
   * transaction's session lives (the server ends it once it idles a lease): then the commit fails with
   * `'store-failed'` (told to `onError`), nothing of the batch is committed, its client is destroyed, and the
   * partition is read again at the next heartbeat while the lease is this member's.
   */
  handler: (batch: Batch<T>, client: C) => unknown;
  /**
   * This member's id, unique in the group. Assignment orders members by id.
   * @defaultValue `m-<random UUID>`
   */
  memberId?: string | undefined;
  /**
   * How long a lease and a member's heartbeat last without renewal, in ms (the database's clock counts), up to
   * 2^31-1 as every timer option. A member stopped longer than this loses its partitions; its late commits are refused
   * (`'cursor-conflict'`).
   * @defaultValue `30_000`
   */
  leaseMs?: number | undefined;
  /**
   * How often the member renews its leases and heartbeat and rebalances, in ms; less than `leaseMs / 2`.
   * @defaultValue `leaseMs / 3`
   */
  heartbeatMs?: number | undefined;
  /**
   * The prefix of the group tables (`<prefix>_members`, `<prefix>_leases`), optionally schema-qualified.
   * @defaultValue `'feedpump_group'`
   */
  table?: string | undefined;
  /** As `consume()`'s `identity`. @defaultValue the feed's identity */
  identity?: string | undefined;
  /** As `consume()`'s `onMissingCursors`, per partition. @defaultValue `'first'` */
  onMissingCursors?: MissingCursorsPolicy | undefined;
  /**
   * As `consume()`'s `onHandlerError`. `'stop'` stops the member (its `done` rejects). A handler whose statements
   * failed because the server ended the transaction's session is tried again whatever this says (one that awaited
   * something else then is no handler failure: the commit fails, see `handler`).
   * @defaultValue `'stop'`
   */
  onHandlerError?: HandlerErrorAction | ((info: HandlerErrorInfo<T>) => HandlerErrorAction | Promise<HandlerErrorAction>) | undefined;
  /** Told the partitions this member just leased, before it reads them. @defaultValue none */
  onAssign?: ((partitions: number[]) => void) | undefined;
  /** Told the partitions this member gave up, once it no longer reads them. @defaultValue none */
  onRevoke?: ((partitions: number[], reason: RevokeReason) => void) | undefined;
  /** Told after every committed batch, with its partition. @defaultValue none */
  onCommit?: ((info: { partition: number; batch: Batch<T>; cursors: Cursors }) => void) | undefined;
  /**
   * Told of a failed heartbeat or rebalance (the database was unreachable), and of a partition's reader that failed
   * (the feed, or a commit: `'store-failed'`, e.g. a handler that did not settle); the member tries again at the next
   * heartbeat. Its commits stay fenced meanwhile. @defaultValue none
   */
  onError?: ((error: unknown) => void) | undefined;
}

/**
 * One member of a group, as {@link groupStatus} lists it.
 *
 * @example
 * ```ts
 * const members: GroupMember[] = (await groupStatus(store, 'billing')).members;
 * for (const { memberId, live } of members) console.log(memberId, live);
 * ```
 */
export interface GroupMember {
  /** The member's id. */
  memberId: string;
  /** Whether its heartbeat is current. */
  live: boolean;
  /** Whether it is paused (it holds its partitions without reading them). */
  paused: boolean;
  /** Its last heartbeat (ms since the epoch, database clock). */
  heartbeatAt: number;
}

/**
 * One partition of a group, as {@link groupStatus} lists it.
 *
 * @example
 * ```ts
 * for (const p of (await groupStatus(store, 'billing')).partitions) console.log(p.partition, p.owner, p.cursor, p.caughtUp);
 * ```
 */
export interface GroupPartition {
  /** The partition. */
  partition: number;
  /** The member holding its lease, or `undefined` (free, or the lease expired). */
  owner: string | undefined;
  /** The lease epoch: incremented on every takeover. */
  epoch: number;
  /** The committed cursor, or `undefined` when nothing was committed. */
  cursor: string | undefined;
  /** When a batch of it was last committed (ms since the epoch, database clock). */
  committedAt: number | undefined;
  /** Lag: whether a member holds it now and its reader had caught up (its last page brought no events) at that
   * member's last heartbeat; `false` while nobody holds it (nobody reads it). */
  caughtUp: boolean;
  /** Lag: milliseconds since its last commit, by the database clock. */
  msSinceCommit: number | undefined;
}

/**
 * What {@link groupStatus} answers.
 *
 * @example
 * ```ts
 * const { members, partitions } = await groupStatus(store, 'billing');
 * ```
 */
export interface GroupStatus {
  /** The members that have a heartbeat row (live or expired). */
  members: GroupMember[];
  /** The partitions, with owner, cursor and lag. */
  partitions: GroupPartition[];
}

/**
 * What a member's `done` resolves with.
 *
 * @example
 * ```ts
 * const { events, rebalances } = await member.done;
 * ```
 */
export interface GroupResult {
  /** The member's id. */
  memberId: string;
  /** Batches this member committed. */
  batches: number;
  /** Events this member applied. */
  events: number;
  /** How many times this member's target partitions changed after the first assignment. */
  rebalances: number;
  /** Commits refused by the fence: this member had lost the partition's lease (nothing of those batches committed). */
  fenced: number;
}

/**
 * A running member of a group, as {@link consumeGroup} returns it.
 *
 * @example
 * ```ts
 * process.on('SIGTERM', () => void member.stop());
 * const result = await member.done;
 * ```
 */
export interface GroupMemberHandle {
  /** This member's id. */
  readonly memberId: string;
  /** Settles when the member stopped: resolves after `stop()` (or the signal); rejects with a fatal error. */
  readonly done: Promise<GroupResult>;
  /** The partitions this member holds now. */
  assigned(): number[];
  /** The group's members and partitions (see {@link groupStatus}). */
  status(): Promise<GroupStatus>;
  /** Stops reading after the current batches commit; the leases are kept (renewed), so the partitions do not move. */
  pause(): void;
  /** Reads the held partitions again after `pause()`. */
  resume(): void;
  /**
   * Graceful shutdown: finishes and commits the batches being applied and waits for the heartbeat in flight (a
   * database failure of it is told to `onError`), then releases the leases so other members take the partitions
   * over at once, and leaves the group. Resolves with `done`'s result. A batch that has not committed within
   * `leaseMs` (a handler that never returns) is not waited for longer: its lease is left to expire; nor is a database
   * that does not answer (the heartbeat and the release are each waited for at most `leaseMs`).
   */
  stop(): Promise<GroupResult>;
}

/** One lease this member holds. */
interface Lease {
  epoch: string;
  abort?: AbortController | undefined;
  run?: Promise<void> | undefined;
  caughtUp: boolean;
  /** A source that is not live ended (caught up): not read again. */
  ended: boolean;
  releasing: boolean;
  /** When the batch being committed started (ms, this process' clock), while one is. */
  since?: number | undefined;
  /** The connection of the last commit transaction broke while the handler ran (see `onHandlerError` below). */
  connectionLost: boolean;
  /** `onRevoke` was told of it. */
  revoked: boolean;
}

const DEFAULT_PREFIX = 'feedpump_group';
function tables(prefix: string | undefined): { members: string; leases: string } {
  const p = prefix ?? DEFAULT_PREFIX;
  quoteTable(p); // the prefix itself must be a plain name (or schema.name): refused with 'bad-options' otherwise
  return { members: quoteTable(`${p}_members`), leases: quoteTable(`${p}_leases`) };
}

/** The DDL of the group tables (`CREATE TABLE IF NOT EXISTS`): members and their heartbeats, partition leases. */
function groupSchema(t: { members: string; leases: string }): string {
  return (
    `CREATE TABLE IF NOT EXISTS ${t.members} (\n` +
    '  group_name   text NOT NULL,\n' +
    '  member_id    text NOT NULL,\n' +
    '  joined_at    timestamptz NOT NULL DEFAULT now(),\n' +
    '  heartbeat_at timestamptz NOT NULL DEFAULT now(),\n' +
    '  expires_at   timestamptz NOT NULL,\n' +
    '  paused       boolean NOT NULL DEFAULT false,\n' +
    '  PRIMARY KEY (group_name, member_id)\n' +
    `);\nCREATE TABLE IF NOT EXISTS ${t.leases} (\n` +
    '  group_name   text NOT NULL,\n' +
    '  partition    integer NOT NULL,\n' +
    '  owner        text,\n' +
    '  epoch        bigint NOT NULL DEFAULT 0,\n' +
    '  expires_at   timestamptz NOT NULL DEFAULT now(),\n' +
    '  committed_at timestamptz,\n' +
    '  caught_up    boolean NOT NULL DEFAULT false,\n' +
    '  PRIMARY KEY (group_name, partition)\n' +
    ')'
  );
}

/** SQLSTATEs of a session the server ended: idle-in-transaction timeout, admin/crash shutdown, connection failures. */
const CONNECTION_LOST = new Set(['25P03', '57P01', '57P02', '57P03', '08000', '08003', '08006']);
const sqlState = (e: unknown): unknown => (e !== null && typeof e === 'object' ? (e as { code?: unknown }).code : undefined);

/** Runs one statement on a pooled client. */
async function query(pool: PgPoolLike, text: string, values?: unknown[]): Promise<Record<string, unknown>[]> {
  const client = await pool.connect();
  let broken = false;
  // node-postgres emits 'error' on a checked-out client whose connection dies (the server ended the session):
  // without a listener that is an uncaught exception. The query meets the dead connection and rejects on its own.
  const events = client as unknown as Partial<Record<'on' | 'off', (event: 'error', listener: () => void) => void>>;
  const onError = (): void => {
    broken = true;
  };
  events.on?.call(client, 'error', onError);
  try {
    return (await client.query(text, values)).rows;
  } catch (e) {
    if (sqlState(e) === undefined) broken = true; // no SQLSTATE: the connection failed, not the statement
    throw e;
  } finally {
    events.off?.call(client, 'error', onError);
    client.release(broken);
  }
}

/** Creates the group tables unless they exist (a role without CREATE on the schema uses those of its migrations). */
function migrate(pool: PgPoolLike, t: { members: string; leases: string }): Promise<void> {
  return createMissing((text, values) => query(pool, text, values), [t.members, t.leases], groupSchema(t));
}

const feedKey = (group: string, p: number): string => `${group}:${p}`;
const ms = (v: unknown): number | undefined => (v == null ? undefined : v instanceof Date ? v.getTime() : Number(v));

/**
 * The state of a group, read from the database: its members (live or expired), and per partition the lease owner
 * and epoch, the committed cursor and the lag (caught up at the owner's last heartbeat, ms since the last commit).
 *
 * @param store - the group's PostgreSQL store
 * @param group - the group's name
 * @param options - `table`, as given to {@link consumeGroup}
 * @example
 * ```ts
 * const { members, partitions } = await groupStatus(postgresStore(pool), 'billing');
 * console.table(partitions.map(({ partition, owner, cursor, msSinceCommit }) => ({ partition, owner, cursor, msSinceCommit })));
 * ```
 */
export async function groupStatus(store: PostgresStore, group: string, options: { table?: string | undefined } = {}): Promise<GroupStatus> {
  const t = tables(options.table);
  const pool = store.pool;
  try {
    await migrate(pool, t);
    const members = await query(
      pool,
      `SELECT member_id, expires_at > now() AS live, paused, heartbeat_at FROM ${t.members} WHERE group_name = $1 ORDER BY member_id`,
      [group],
    );
    const leases = await query(
      pool,
      `SELECT partition, CASE WHEN expires_at > now() THEN owner END AS owner, epoch, committed_at, ` +
        // Caught up only while someone reads it: a released or expired lease's flag is its last holder's.
        'owner IS NOT NULL AND expires_at > now() AND caught_up AS caught_up, ' +
        `(extract(epoch FROM now() - committed_at) * 1000)::bigint AS since FROM ${t.leases} WHERE group_name = $1 ORDER BY partition`,
      [group],
    );
    const partitions: GroupPartition[] = [];
    for (const r of leases) {
      const partition = Number(r['partition']);
      const record = await store.load(feedKey(group, partition));
      partitions.push({
        partition,
        owner: (r['owner'] as string | null) ?? undefined,
        epoch: Number(r['epoch']),
        cursor: record?.cursors[partition],
        committedAt: ms(r['committed_at']),
        caughtUp: r['caught_up'] === true,
        msSinceCommit: r['since'] == null ? undefined : Number(r['since']),
      });
    }
    return {
      members: members.map((r) => ({ memberId: String(r['member_id']), live: r['live'] === true, paused: r['paused'] === true, heartbeatAt: ms(r['heartbeat_at']) ?? 0 })),
      partitions,
    };
  } catch (e) {
    if (isFeedError(e)) throw e;
    throw new FeedError('store-failed', `could not read the state of group ${JSON.stringify(group)}${e instanceof Error ? `: ${e.message}` : ''}`, { cause: e });
  }
}

/**
 * The protocol and (FeedAPI v1) partitions of a group's source: v1 reads `0 .. partitionCount - 1` or the
 * `partitions` given (a subset); v2 leases what discovery lists (see {@link leaseRoots}); `'auto'` with a partition
 * count asks discovery first, as `openFeed` does.
 */
function groupProtocol(given: ConsumeSource): { protocol: 'v1' | 'auto'; partitions: number[] } | { protocol: 'v2'; partitions: [] } {
  // Read as the merged shape: the checks below are for callers without TypeScript too.
  const source: Omit<AnyFeedOptions, 'cursors'> = given;
  const count = source.partitionCount;
  if (source.protocol === 'v2' || (count === undefined && source.protocol !== 'v1')) {
    if (source.partitions !== undefined) {
      throw new FeedError('bad-options', 'a FeedAPI v2 group reads every partition discovery lists: partitions cannot be given (docs/groups.md)');
    }
    return { protocol: 'v2', partitions: [] };
  }
  if (count === undefined) throw new FeedError('bad-options', 'consumeGroup() needs partitionCount for a FeedAPI v1 (ZeroEventHub) feed');
  const list = source.partitions !== undefined ? [...source.partitions] : Array.from({ length: count }, (_, p) => p);
  if (list.length === 0 || !list.every((p) => Number.isInteger(p) && p >= 0 && p < count)) {
    throw new FeedError('bad-options', 'consumeGroup() needs partitionCount >= 1, and partitions, when given, among 0 .. partitionCount - 1');
  }
  return { protocol: source.protocol === 'auto' ? 'auto' : 'v1', partitions: [...new Set(list)].sort((a, b) => a - b) };
}

/**
 * Joins a consumer group: this process and every other process calling `consumeGroup` with the same `group` share
 * the feed's partitions, each partition read by one member at a time, every event applied exactly once.
 *
 * - **Leases.** Each partition has a lease row (`<prefix>_leases`): owner, epoch, expiry by the database's clock.
 *   A member takes a partition only when it is free or its lease expired (`epoch + 1`), renews what it holds every
 *   `heartbeatMs`, and loses it when it does not renew within `leaseMs`.
 * - **Fencing.** Every commit runs, first in its transaction (before the cursor row is locked), `UPDATE <leases> ...
 *   WHERE owner = <me> AND epoch = <mine>`: a member that lost the lease (stopped, partitioned, slow) commits nothing
 *   and its `consume()` of that partition ends with `'cursor-conflict'`. A takeover waits for a commit in flight (row lock),
 *   and the new owner loads the cursor after its takeover, so it resumes exactly after the last commit.
 * - **Rebalancing.** Members heartbeat in `<prefix>_members`. At every heartbeat each member computes the same
 *   assignment over the live members (sorted ids; fair shares; members keep what they hold up to their share), gives
 *   up its surplus after committing the current batch (`onRevoke(..., 'rebalance')`) and takes its free targets
 *   (`onAssign`).
 * - **Cursors.** Partition `p`'s cursor is the store's row `<group>:<p>`, so it survives reassignment.
 * - **Protocols.** FeedAPI v1 (ZeroEventHub): the partitions are `0 .. partitionCount - 1` (or the `partitions`
 *   given). FeedAPI v2 (`protocol: 'v2'`, or no `partitionCount`): the partitions discovery lists that no lease
 *   reaches are leased; the split children of a leased partition (`startsAfterPartition` it, or
 *   `cursorFromPartitions` naming it) are read by its holder, through `partitions: [p]`, with their cursors in `p`'s
 *   record, so they move with it. Every member repeats the discovery at each heartbeat (one at a time, in the
 *   background), so partitions listed later get leases. `protocol: 'auto'` with a partition count asks discovery.
 *
 * The source is read live (`live` defaults to `true`); each partition is one `consume()` with `partitions: [p]`.
 *
 * A batch must commit within `leaseMs`: a commit transaction idle longer (or longer than the store's shorter
 * `transactionIdleTimeoutMs`) is ended by the server (rolled back), and a
 * batch in flight longer stops renewing its lease, so that a stuck member cannot hold a partition forever.
 *
 * In Node, `feedpump/group` instantiates the wasm itself; elsewhere import `feedpump` too.
 *
 * @param source - `consume()`'s source: the URL and `openFeed`'s options (`partitionCount` for FeedAPI v1)
 * @param options - the store, the group, the handler, the lease timings and the callbacks
 * @returns the member: `done`, `status()`, `pause()`, `resume()`, `stop()`
 * @example
 * ```ts
 * import pg from 'pg';
 * import type { Batch } from 'feedpump';
 * import { postgresStore } from 'feedpump/postgres';
 * import { consumeGroup } from 'feedpump/group';
 *
 * const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL });
 * const member = consumeGroup({ url: 'https://host/feed/v1', partitionCount: 8 }, {
 *   store: postgresStore(pool),
 *   group: 'billing',
 *   handler: async (batch: Batch<Order>, client) => {
 *     for (const { data } of batch.events) await client.query('INSERT INTO invoices (id) VALUES ($1)', [data.id]);
 *   },
 *   onAssign: (partitions) => console.log('reading', partitions),
 *   onRevoke: (partitions, reason) => console.log('gave up', partitions, reason),
 * });
 * process.on('SIGTERM', () => void member.stop());
 * await member.done;
 * ```
 */
export function consumeGroup<T = unknown, C extends PgClientLike = PgClientLike>(source: ConsumeSource, options: GroupOptions<T, C>): GroupMemberHandle {
  const { store, group, handler } = options;
  if (store === null || typeof store !== 'object' || typeof store.save !== 'function' || store.pool === undefined) {
    throw new FeedError('bad-options', 'consumeGroup() needs a postgresStore(pool) as store');
  }
  if (typeof group !== 'string' || group === '') throw new FeedError('bad-options', 'consumeGroup() needs a non-empty group');
  if (typeof handler !== 'function') throw new FeedError('bad-options', 'consumeGroup() needs a handler function');
  // consume()'s check, up front: a typo would act as 'stop' (consume() refuses it only after the member started).
  if (!oneOf(options.onHandlerError, 'retry', 'skip', 'stop')) throw badOption(34, JSON.stringify(options.onHandlerError));
  const chosen = groupProtocol(source);
  /** `'auto'` until discovery answers. */
  let protocol = chosen.protocol;
  /** The partitions leased: v1's, fixed; v2's, every lease row of the group (read at each heartbeat). */
  let partitions: number[] = chosen.partitions;
  const leaseMs = options.leaseMs ?? 30_000;
  // At most a timer's limit, as every timer option: the member sleeps and times its discovery by it, and each commit
  // sets PostgreSQL's idle_in_transaction_session_timeout to it (which refuses more than 2^31-1 ms: every commit failed).
  if (!(leaseMs >= 100 && leaseMs <= MAX_TIMER_MS)) throw new FeedError('bad-options', `leaseMs must be a number from 100 to ${MAX_TIMER_MS}`);
  const heartbeatMs = options.heartbeatMs ?? Math.floor(leaseMs / 3);
  if (!(heartbeatMs >= 10 && heartbeatMs < leaseMs / 2)) throw new FeedError('bad-options', 'heartbeatMs must be >= 10 and < leaseMs / 2');
  const memberId = options.memberId ?? `m-${crypto.randomUUID()}`;
  if (typeof memberId !== 'string' || memberId === '') throw new FeedError('bad-options', 'memberId must be a non-empty string');
  const t = tables(options.table);
  const pool = store.pool as PgPoolLike;

  const leases = new Map<number, Lease>();
  const result: GroupResult = { memberId, batches: 0, events: 0, rebalances: 0, fenced: 0 };
  const stopping = new AbortController();
  let paused = false;
  let fatal: { error: unknown } | undefined;
  let lastTarget: string | undefined;
  let wake: (() => void) | undefined;

  const fail = (error: unknown): void => {
    fatal ??= { error };
    stopping.abort();
  };
  /** Tells `onError`; a throw of it is fatal, as of every callback (never an unhandled rejection, never a member left running). */
  const report = (error: unknown): void => {
    try {
      options.onError?.(error);
    } catch (e) {
      fail(e);
    }
  };
  const onSignal = (): void => stopping.abort();
  if (source.signal?.aborted) stopping.abort();
  source.signal?.addEventListener('abort', onSignal, { once: true });

  /** `store`, fenced: every save also checks (and stamps) this member's lease of `p`, in the same transaction. */
  const fenced = (p: number, lease: Lease): CursorStore<C> => ({
    load: (key) => store.load(key),
    save: (key: string, record: CursorRecord, effects?: (tx: C) => unknown, expected?: CursorRecord | null) => {
      const { epoch } = lease;
      lease.since = Date.now();
      lease.connectionLost = false;
      /**
       * The server may end this transaction's session (the idle timeout, after this process was stopped; a terminated
       * backend): node-postgres then emits 'error' on the client, and its next statement fails with no SQLSTATE ("not
       * queryable"). That is no fault of the handler. Watched from the transaction's first statement of the group's
       * (the session may end before the handler runs: this process stopped after the cursor row was locked) until the
       * save settles.
       */
      let watched: C | undefined;
      const onError = (): void => {
        lease.connectionLost = true;
      };
      const events = (client: C) => client as unknown as Partial<Record<'on' | 'off', (event: 'error', listener: () => void) => void>>;
      const watch = (client: C): void => {
        if (watched !== undefined) return;
        watched = client;
        events(client).on?.call(client, 'error', onError);
      };
      /**
       * The fence, as the first statement of the commit transaction after its bounds. A member stopped (SIGSTOP, a VM
       * pause) inside this transaction holds its locks: the server ends the session once it idles longer than a lease
       * (or the store's shorter `transactionIdleTimeoutMs`), which rolls the batch back and frees the rows. postgresStore
       * sets that bound right after BEGIN (`idleTimeoutMs` of {@link SaveHooks}); `bounded`: the fence sets it itself.
       */
      const fence = async (client: C, bounded: boolean): Promise<void> => {
        try {
          // A store that did not take the hooks (a wrapper of postgresStore): the same statement, here.
          if (!bounded) await boundTransaction(client, leaseMs, undefined);
          // The fence: locks the lease row, and commits nothing unless this member still holds it at this epoch. A
          // commit also renews the lease (the heartbeat skips rows locked by a commit in flight).
          const { rows } = await client.query(
            `UPDATE ${t.leases} SET committed_at = now(), expires_at = greatest(expires_at, now() + $5 * interval '1 millisecond') ` +
              'WHERE group_name = $1 AND partition = $2 AND owner = $3 AND epoch = $4 RETURNING 1 AS ok',
            [group, p, memberId, epoch, leaseMs],
          );
          if (rows.length !== 1) {
            result.fenced++;
            throw new FeedError(
              'cursor-conflict',
              `member ${JSON.stringify(memberId)} no longer holds the lease of partition ${p} of group ${JSON.stringify(group)} (epoch ${epoch}): nothing of this batch was committed`,
            );
          }
        } catch (e) {
          if (CONNECTION_LOST.has(sqlState(e) as string)) lease.connectionLost = true;
          throw e;
        }
      };
      /** Whether the store ran the fence right after BEGIN, before it locked the cursor row (postgresStore does). */
      let fencedFirst = false;
      const hooks: SaveHooks<C> = {
        idleTimeoutMs: leaseMs,
        first: async (client) => {
          watch(client);
          fencedFirst = false;
          await fence(client, true);
          fencedFirst = true;
        },
      };
      const save = store.save as (...args: [...Parameters<PostgresStore<C>['save']>, SaveHooks<C>]) => Promise<void>;
      return save(
        key,
        record,
        async (client) => {
          watch(client); // a store that did not run `first`
          try {
            // A store that did not run `first` (a wrapper of postgresStore): fenced here, before the handler.
            if (!fencedFirst) await fence(client, false);
            return await effects?.(client);
          } catch (e) {
            if (CONNECTION_LOST.has(sqlState(e) as string)) lease.connectionLost = true;
            throw e;
          }
        },
        expected,
        hooks,
      ).finally(() => {
        lease.since = undefined;
        if (watched !== undefined) events(watched).off?.call(watched, 'error', onError);
      });
    },
  });

  const revoke = (all: [number, Lease][], reason: RevokeReason): void => {
    const ps = all.filter(([, l]) => !l.revoked).map(([p, l]) => ((l.revoked = true), p));
    if (ps.length === 0) return;
    try {
      options.onRevoke?.(ps, reason);
    } catch (e) {
      fail(e);
    }
  };

  /** Starts reading a held partition. */
  const start = (p: number, lease: Lease): void => {
    const abort = new AbortController();
    lease.abort = abort;
    const { onCaughtUp, onFellBehind } = source;
    const src = {
      ...source,
      protocol: protocol === 'v2' ? 'v2' : 'v1',
      live: source.live ?? true,
      partitions: [p],
      signal: abort.signal,
      onCaughtUp: () => {
        lease.caughtUp = true;
        onCaughtUp?.();
      },
      onFellBehind: () => {
        lease.caughtUp = false;
        onFellBehind?.();
      },
    } as ConsumeSource; // the caller's source, one partition of it, with the protocol it was found to speak
    lease.run = consume<T, C>(src, {
      store: fenced(p, lease),
      key: feedKey(group, p),
      handler,
      identity: options.identity,
      onMissingCursors: options.onMissingCursors,
      // A handler whose statements failed because the server ended the transaction's session is tried again, in a new
      // transaction that checks the lease first, whatever the policy: the batch is not at fault.
      onHandlerError: async (info) => {
        if (lease.connectionLost) return 'retry';
        const policy = options.onHandlerError ?? 'stop';
        return typeof policy === 'function' ? policy(info) : policy;
      },
      tabs: false,
      onCommit: ({ batch, cursors }) => {
        result.batches++;
        result.events += batch.events.length;
        options.onCommit?.({ partition: p, batch, cursors });
      },
    }).then(
      () => {
        lease.ended = true;
        lease.run = undefined;
      },
      (e: unknown) => {
        lease.run = undefined;
        if (abort.signal.aborted && isFeedError(e, 'aborted')) return;
        if (isFeedError(e, 'cursor-conflict')) {
          // The lease moved on: another member holds the partition now.
          if (leases.get(p) === lease) leases.delete(p);
          revoke([[p, lease]], 'lost');
          return;
        }
        // The handler's policy said stop, a policy function threw ('hook-failed'), or the options or cursors are
        // wrong: the member stops. Anything else (the database or the feed failed) is reported, and the next
        // heartbeat reads the partition again if the lease is still this member's.
        const stops = ['handler-failed', 'hook-failed', 'bad-options', 'cursors-missing'] as const;
        if (!isFeedError(e) || stops.some((code) => isFeedError(e, code))) fail(e);
        else report(e);
      },
    );
  };

  /** Stops reading `p` (the batch being applied commits first) and gives its lease back. */
  const release = async (p: number, lease: Lease, reason: RevokeReason): Promise<void> => {
    lease.releasing = true;
    lease.abort?.abort();
    await lease.run;
    if (leases.get(p) !== lease) return; // lost meanwhile
    let gone = false;
    try {
      const rows = await query(
        pool,
        `UPDATE ${t.leases} SET owner = NULL, expires_at = now() WHERE group_name = $1 AND partition = $2 AND owner = $3 AND epoch = $4 RETURNING partition`,
        [group, p, memberId, lease.epoch],
      );
      // No row: the lease had expired and another member took it while the batch in flight finished (this member was
      // paused past its lease), so it was lost, not given back.
      gone = rows.length === 0;
    } catch (e) {
      report(e); // it expires by itself
    }
    leases.delete(p);
    revoke([[p, lease]], gone ? 'lost' : reason);
  };

  /** FeedAPI v2: a discovery was applied (the group's lease rows hold its roots). */
  let discovered = false;
  /** The rediscovery in flight: at most one, started at a heartbeat. */
  let rediscovery: Promise<void> | undefined;

  /**
   * One discovery (FeedAPI v2, or `'auto'`'s negotiation): the partitions that need a lease of their own
   * ({@link leaseRoots}) get lease rows. Bounded by a lease: a discovery that has not answered by then is aborted.
   */
  const discover = async (): Promise<void> => {
    const abort = new AbortController();
    const timer = setTimeout(() => abort.abort(new FeedError('network', `the discovery did not answer within ${leaseMs} ms (leaseMs)`)), Math.min(leaseMs, MAX_TIMER_MS));
    const onStop = (): void => abort.abort();
    stopping.signal.addEventListener('abort', onStop, { once: true });
    try {
      const req: Requester = { signal: abort.signal };
      if (source.fetch !== undefined) req.fetch = source.fetch;
      if (source.requestHeaders !== undefined) req.requestHeaders = source.requestHeaders;
      if (source.idleTimeoutMs !== undefined) req.idleTimeoutMs = source.idleTimeoutMs;
      if (source.maxLineLength !== undefined) req.maxLineLength = source.maxLineLength;
      // A feed given with replicas ({@link FeedUrl}): each URL in turn until one answers, as the readers fail over.
      const urls = Array.isArray(source.url) ? (source.url as readonly (string | URL)[]) : [source.url as string | URL];
      let found: Awaited<ReturnType<typeof discoverOnce>> | undefined;
      for (let i = 0; found === undefined; i++) {
        try {
          found = await discoverOnce(String(urls[i]), req);
        } catch (e) {
          if (i + 1 >= urls.length || abort.signal.aborted) throw e;
        }
      }
      if (found.v1) {
        if (protocol !== 'auto') throw badOption(37);
        protocol = 'v1';
        await query(pool, `INSERT INTO ${t.leases} (group_name, partition) SELECT $1, unnest($2::integer[]) ON CONFLICT (group_name, partition) DO NOTHING`, [
          group,
          partitions,
        ]);
        return;
      }
      protocol = 'v2';
      const rows = await query(pool, `SELECT partition FROM ${t.leases} WHERE group_name = $1`, [group]);
      const roots = leaseRoots(found.discovery.partitions, new Set(rows.map((r) => Number(r['partition']))));
      if (roots.length > 0) {
        await query(pool, `INSERT INTO ${t.leases} (group_name, partition) SELECT $1, unnest($2::integer[]) ON CONFLICT (group_name, partition) DO NOTHING`, [
          group,
          roots,
        ]);
      }
      discovered = true;
    } catch (e) {
      // Our own time limit: a failure to try again, not the caller's abort.
      if (abort.signal.aborted && !stopping.signal.aborted) throw abort.signal.reason;
      throw e;
    } finally {
      clearTimeout(timer);
      stopping.signal.removeEventListener('abort', onStop);
    }
  };

  /**
   * The discovery at a heartbeat: one at a time, in the background, so that a slow discovery never delays the
   * renewal of leases. The first is awaited for at most a heartbeat (the member claims nothing before it, or before
   * another member's discovery filled the lease rows). A failure that no retry can help (`'bad-discovery'`, a v1 server
   * behind `protocol: 'v2'`) stops a member whose discovery never succeeded; every other failure is reported to
   * `onError` and the next heartbeat tries again.
   */
  const rediscover = async (): Promise<void> => {
    if (protocol === 'v1') return;
    rediscovery ??= discover()
      .catch((e: unknown) => {
        if (stopping.signal.aborted) return;
        if (!discovered && isFeedError(e) && (isFinal(e.code) || isFeedError(e, 'bad-options'))) fail(e);
        else report(e);
      })
      .finally(() => {
        rediscovery = undefined;
      });
    if (!discovered) await Promise.race([rediscovery, sleep(heartbeatMs, stopping.signal)]);
  };

  /** One heartbeat: renew, read the group, rebalance. */
  const tick = async (): Promise<void> => {
    await query(
      pool,
      `INSERT INTO ${t.members} (group_name, member_id, expires_at, paused) VALUES ($1, $2, now() + $3 * interval '1 millisecond', $4) ` +
        'ON CONFLICT (group_name, member_id) DO UPDATE SET heartbeat_at = now(), expires_at = EXCLUDED.expires_at, paused = EXCLUDED.paused',
      [group, memberId, leaseMs, paused],
    );
    // Members gone for ten leases (crashed, never stopped) leave the table.
    await query(pool, `DELETE FROM ${t.members} WHERE group_name = $1 AND expires_at < now() - $2 * interval '1 millisecond'`, [group, leaseMs * 10]);
    await rediscover();
    if (protocol === 'auto') return; // discovery has not said which protocol yet
    const caughtUp = [...leases].filter(([, l]) => l.caughtUp).map(([p]) => p);
    // A batch that has not committed within a lease (a handler that hangs) gives its lease up: it is not renewed,
    // another member takes the partition once it expires, and this member's commit of it is refused.
    const now = Date.now();
    const renewable = [...leases].filter(([, l]) => !(l.since !== undefined && now - l.since > leaseMs)).map(([p]) => p);
    // Rows locked by a commit in flight are skipped (that commit renews them), and read as they are.
    const renewed = await query(
      pool,
      `WITH mine AS (SELECT partition FROM ${t.leases} WHERE group_name = $1 AND owner = $2 AND partition = ANY($5::integer[]) FOR UPDATE SKIP LOCKED), ` +
        `renewed AS (UPDATE ${t.leases} l SET expires_at = now() + $3 * interval '1 millisecond', caught_up = (l.partition = ANY($4::integer[])) ` +
        'FROM mine WHERE l.group_name = $1 AND l.partition = mine.partition AND l.owner = $2 RETURNING l.partition, l.epoch) ' +
        `SELECT partition, epoch FROM renewed UNION ALL SELECT partition, epoch FROM ${t.leases} ` +
        'WHERE group_name = $1 AND owner = $2 AND partition = ANY($5::integer[]) AND partition NOT IN (SELECT partition FROM renewed)',
      [group, memberId, leaseMs, caughtUp, renewable],
    );
    const held = new Map(renewed.map((r) => [Number(r['partition']), String(r['epoch'])]));
    for (const [p, lease] of [...leases]) {
      if (held.get(p) === lease.epoch) continue;
      // Taken over (this member did not renew in time), or given up (a batch stuck): stop reading it; its commits
      // are refused anyway.
      leases.delete(p);
      lease.abort?.abort();
      void Promise.resolve(lease.run).then(() => revoke([[p, lease]], 'lost'));
    }
    // Lease rows of this member that it does not read (a claim whose answer was lost): given back, unless a commit
    // in flight (a stuck one) holds them; those expire.
    await query(
      pool,
      `UPDATE ${t.leases} SET owner = NULL, expires_at = now() WHERE group_name = $1 AND owner = $2 AND NOT (partition = ANY($3::integer[])) ` +
        `AND partition IN (SELECT partition FROM ${t.leases} WHERE group_name = $1 AND owner = $2 FOR UPDATE SKIP LOCKED)`,
      [group, memberId, [...leases.keys()]],
    );
    const members = (await query(pool, `SELECT member_id FROM ${t.members} WHERE group_name = $1 AND expires_at > now()`, [group])).map((r) =>
      String(r['member_id']),
    );
    if (!members.includes(memberId)) members.push(memberId);
    const rows = await query(pool, `SELECT partition, owner, expires_at > now() AS live FROM ${t.leases} WHERE group_name = $1`, [group]);
    // v2: every member assigns the same set, the group's lease rows, whatever its own last discovery said.
    if (protocol === 'v2') partitions = rows.map((r) => Number(r['partition'])).sort((a, b) => a - b);
    const owners = new Map<number, string>();
    const live = new Set(members);
    const free = new Set<number>();
    for (const r of rows) {
      const p = Number(r['partition']);
      const owner = r['owner'] as string | null;
      if (owner !== null && r['live'] === true && live.has(owner)) owners.set(p, owner);
      if (owner === null || r['live'] !== true) free.add(p);
    }
    for (const p of leases.keys()) owners.set(p, memberId);
    const target = assign(partitions, members, owners).get(memberId) ?? [];
    const key = target.join(',');
    if (lastTarget !== undefined && key !== lastTarget) result.rebalances++;
    lastTarget = key;
    const targeted = new Set(target); // (`target.includes` per lease: O(P²) for a member that holds many)
    for (const [p, lease] of leases) if (!targeted.has(p) && !lease.releasing) void release(p, lease, 'rebalance');
    const got: number[] = [];
    for (const p of target) {
      if (leases.has(p) || !free.has(p) || stopping.signal.aborted) continue;
      const claimed = await query(
        pool,
        // SKIP LOCKED: a row locked by a commit in flight (its owner is alive, or stopped until the server ends its
        // session) is not waited for; the next heartbeat looks again.
        `UPDATE ${t.leases} SET owner = $3, epoch = epoch + 1, expires_at = now() + $4 * interval '1 millisecond', caught_up = false ` +
          `WHERE group_name = $1 AND partition = (SELECT partition FROM ${t.leases} WHERE group_name = $1 AND partition = $2 ` +
          'AND (owner IS NULL OR expires_at <= now()) FOR UPDATE SKIP LOCKED) RETURNING epoch',
        [group, p, memberId, leaseMs],
      );
      const row = claimed[0];
      // Another member was faster; or this member stopped meanwhile (it no longer waits for this heartbeat): the lease
      // expires unrenewed.
      if (row === undefined || stopping.signal.aborted) continue;
      leases.set(p, { epoch: String(row['epoch']), caughtUp: false, ended: false, releasing: false, revoked: false, connectionLost: false });
      got.push(p);
    }
    if (got.length > 0) {
      try {
        options.onAssign?.(got);
      } catch (e) {
        fail(e);
      }
    }
    if (!paused && !stopping.signal.aborted) for (const [p, lease] of leases) if (lease.run === undefined && !lease.ended && !lease.releasing) start(p, lease);
  };

  const run = async (): Promise<GroupResult> => {
    try {
      return await runMember();
    } finally {
      source.signal?.removeEventListener('abort', onSignal);
    }
  };
  const runMember = async (): Promise<GroupResult> => {
    try {
      await migrate(pool, t);
      if (protocol === 'v1') {
        await query(
          pool,
          `INSERT INTO ${t.leases} (group_name, partition) SELECT $1, unnest($2::integer[]) ON CONFLICT (group_name, partition) DO NOTHING`,
          [group, partitions],
        );
      }
    } catch (e) {
      throw new FeedError('store-failed', `PostgreSQL could not set up group ${JSON.stringify(group)}${e instanceof Error ? `: ${e.message}` : ''}`, { cause: e });
    }
    /** A heartbeat's failure: a FeedError but a database's stops the member; the next heartbeat tries again. */
    const failedBeat = (e: unknown): void => (isFeedError(e) && !isFeedError(e, 'store-failed') ? fail(e) : report(e));
    /** The heartbeat in flight, its failure told if it comes after stop(): the shutdown waits for it (below). */
    let beat: Promise<void> = Promise.resolve();
    while (!stopping.signal.aborted) {
      try {
        // A database that does not answer holds a statement of the heartbeat for ever: stop() does not wait for it
        // here, and the shutdown waits at most a lease.
        const ticking = tick();
        beat = ticking.then(
          () => undefined,
          (e: unknown) => {
            if (stopping.signal.aborted) failedBeat(e); // else the catch below has it
          },
        );
        await watched(ticking, Infinity, stopping.signal);
      } catch (e) {
        failedBeat(e);
      }
      if (stopping.signal.aborted) break;
      const nap = new AbortController();
      wake = () => nap.abort();
      const onStop = (): void => nap.abort();
      stopping.signal.addEventListener('abort', onStop, { once: true });
      await sleep(heartbeatMs, nap.signal);
      stopping.signal.removeEventListener('abort', onStop);
      wake = undefined;
    }
    // Shutdown: the batches in flight commit, then every lease is given back and the member leaves. A batch is waited
    // for at most a lease: one that has not committed by then is stuck (a handler that never returns), as the heartbeat
    // says; its transaction holds its lease row, which is left to expire (SKIP LOCKED), and nothing of it commits
    // after that lease unless the handler returns before the server ends its idle session.
    const held = [...leases];
    for (const [, lease] of held) lease.abort?.abort();
    // The heartbeat in flight too: stop() settles with none of the member's statements running (its client back in
    // the pool), unless the database does not answer.
    await watched(Promise.all([...held.map(([, l]) => l.run), rediscovery, beat]), leaseMs, undefined);
    try {
      // Also waited for at most a lease (a database that does not answer): the leases expire by themselves.
      await watched(
        (async () => {
          await query(
            pool,
            `UPDATE ${t.leases} SET owner = NULL, expires_at = now() WHERE group_name = $1 AND owner = $2 ` +
              `AND partition IN (SELECT partition FROM ${t.leases} WHERE group_name = $1 AND owner = $2 FOR UPDATE SKIP LOCKED)`,
            [group, memberId],
          );
          await query(pool, `DELETE FROM ${t.members} WHERE group_name = $1 AND member_id = $2`, [group, memberId]);
        })(),
        leaseMs,
        undefined,
      );
    } catch (e) {
      report(e); // the leases expire by themselves
    }
    leases.clear();
    revoke(held, 'shutdown');
    if (fatal !== undefined) throw fatal.error;
    return result;
  };

  const done = run();
  done.catch(() => {}); // the caller gets it through `done`; no unhandled rejection when only stop() is awaited
  return {
    memberId,
    done,
    assigned: () => [...leases.keys()].sort((a, b) => a - b),
    status: () => groupStatus(store as PostgresStore, group, { table: options.table }),
    pause() {
      paused = true;
      for (const lease of leases.values()) lease.abort?.abort();
    },
    resume() {
      paused = false;
      wake?.();
    },
    stop() {
      stopping.abort();
      return done;
    },
  };
}
