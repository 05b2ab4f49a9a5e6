/**
 * Tabs mode of `consume()`: one consumer per feed key across the tabs (and workers) of an origin.
 *
 * The tab that holds the Web Lock `feedpump:<key>` consumes; every other `consume()` call of that key waits for the
 * lock and meanwhile hears each batch the leader commits over a `BroadcastChannel` of the same name. When the leader
 * goes away (its tab closed, its `consume()` returned or threw) the browser releases its lock and the next waiter
 * takes over. It then reads the committed cursors from the store only after the lock is held, so it resumes exactly
 * after the leader's last commit.
 *
 * Why a lock and not only the store's `expected` check: the check (`'cursor-conflict'`) stops a second consumer from
 * committing, but both would still fetch the feed and one would fail; the lock lets exactly one tab do the work and
 * hands it over without an error. The check stays as the fence for what a lock cannot see: a consumer with tabs off,
 * or a transaction of a closed tab that was still committing when its lock was released.
 *
 * Nothing here touches `window` or `document`: the module loads in Node and workerd. Tabs mode is on by default only
 * where Web Locks exist and the entry point is not Node's: Node 24.5 and later have Web Locks (one process and its
 * worker threads), but a server's consumer would pay a structured clone of every batch for followers it rarely has
 * (the CPU of `consume()` up 50-100% in Node 20 with a Web Locks stand-in), so there it is on only when asked.
 * @packageDocumentation
 */
import { FeedError, parseWhy } from './errors.js';
import { ifAborted, badOption } from './options.js';
import { isObject } from './filters.js';
import type { Batch, FeedEvent } from './types.js';
import type { Cursors } from './stores/types.js';

/**
 * The role of a `consume()` call in tabs mode: `'leader'` consumes, a `'follower'` waits for the lock (and hears the
 * leader's commits).
 *
 * @example
 * ```ts
 * onRole: (role: TabRole) => (badge.textContent = role === 'leader' ? 'syncing' : 'another tab syncs')
 * ```
 */
export type TabRole = 'leader' | 'follower';

/**
 * Names for tabs mode (see `ConsumeOptions.tabs`). Both default to `feedpump:<key>`; consumers that should exclude
 * each other must use the same lock name, and the same channel name to hear each other's commits.
 *
 * @example
 * ```ts
 * const tabs: TabsOptions = { lockName: 'orders-sync', channelName: 'orders-sync' };
 * ```
 */
export interface TabsOptions {
  /**
   * The Web Lock held by the leader. Must not start with `-` (reserved by Web Locks).
   * @defaultValue `feedpump:<key>`
   */
  lockName?: string | undefined;
  /**
   * The `BroadcastChannel` the leader posts its commits to.
   * @defaultValue `feedpump:<key>`
   */
  channelName?: string | undefined;
}

/**
 * Tabs mode, resolved.
 * @internal
 */
export interface TabsConfig {
  lockName: string;
  channelName: string;
}

/**
 * What a leader posts after each commit: plain data (structured clone), the batch's events and checkpoints and the
 * committed cursors. Raw-mode events (`mode: 'raw'`) keep `data` and `headers` behind getters, which a structured
 * clone drops: they travel as `{ partition, raw, headers }` (`raw: true`) and are rebuilt with a lazy `data`.
 * @internal
 */
export interface CommitMessage<T = unknown> {
  type: 'feedpump-commit';
  key: string;
  batch: Batch<T>;
  cursors: Cursors;
  /** The events are raw-mode events, sent as `{ partition, raw, headers }`. */
  raw?: true | undefined;
}

/**
 * A raw-mode event as a follower gets it: the leader's shape (`partition` and `raw` own properties, `data` parsed
 * from `raw` when it is first read, `headers`).
 */
class RemoteRawEvent<T> implements FeedEvent<T> {
  readonly partition: number;
  readonly raw: string;
  readonly #headers: Record<string, string> | undefined;
  #data: { value: T } | undefined;

  constructor(partition: number, raw: string, headers: Record<string, string> | undefined) {
    this.partition = partition;
    this.raw = raw;
    this.#headers = headers;
  }

  get data(): T {
    if (this.#data === undefined) {
      try {
        this.#data = { value: JSON.parse(this.raw) as T };
      } catch (e) {
        throw new FeedError('bad-line', `the event's JSON does not parse (${parseWhy(e)}), partition ${this.partition}`, {
          partition: this.partition,
        });
      }
    }
    return this.#data.value;
  }

  get headers(): Record<string, string> | undefined {
    return this.#headers;
  }
}

/**
 * The message a leader posts for a commit. Raw-mode events keep `data` behind a getter (not an own property), which a
 * structured clone drops: they go as `{ partition, raw, headers }`, and the message says `raw: true`.
 */
function commitMessage<T>(key: string, { events, checkpoints }: Batch<T>, cursors: Cursors): CommitMessage<T> {
  const message: CommitMessage<T> = { type: 'feedpump-commit', key, batch: { events, checkpoints }, cursors };
  const first = events[0];
  if (typeof first?.raw === 'string' && !Object.hasOwn(first, 'data')) {
    message.raw = true;
    message.batch.events = events.map((e) => {
      let headers: Record<string, string> | undefined;
      try {
        headers = e.headers;
      } catch {
        // Headers that do not parse: the leader's getter throws too; followers see none.
      }
      return { partition: e.partition, raw: e.raw, headers } as FeedEvent<T>;
    });
  }
  return message;
}

/** A received commit's batch with the leader's event shape. */
function received<T>(m: CommitMessage<T>): CommitMessage<T> {
  if (m.raw !== true) return m;
  const events = m.batch.events.map((e) => new RemoteRawEvent<T>(e.partition, String(e.raw), e.headers));
  return { ...m, batch: { events, checkpoints: m.batch.checkpoints } };
}

type Locks = Pick<LockManager, 'request'>;

function lockManager(): Locks | undefined {
  const locks = (globalThis as { navigator?: { locks?: Locks } }).navigator?.locks;
  return typeof locks?.request === 'function' ? locks : undefined;
}

/** The runtime's Web Locks, which tabs mode needs: without them, a `'bad-options'` FeedError. */
function locksNeeded(): Locks {
  const locks = lockManager();
  if (locks === undefined) throw badOption(38);
  return locks;
}

/** Whether `tabs: undefined` means "on where Web Locks exist" (the default) or off (the Node entry point). */
let byDefault = true;

/**
 * Whether tabs mode is on where Web Locks exist unless `tabs: false` (`true`, the default), or only when asked for
 * (`tabs: true` or {@link TabsOptions}): the Node entry point.
 * @internal
 */
export function tabsByDefault(on: boolean): void {
  byDefault = on;
}

/**
 * Checks the `tabs` option and resolves it: `undefined` when tabs mode is off. `undefined` means "on where Web Locks
 * exist" (off with the Node entry point: {@link tabsByDefault}); `true` or an object insists on it
 * (`'bad-options'` where Web Locks are missing); `false` is off.
 * @internal
 */
export function tabsConfig(tabs: unknown, key: string): TabsConfig | undefined {
  if (tabs === false || (tabs === undefined && !(byDefault && lockManager()))) return undefined;
  const names = tabs === undefined || tabs === true ? {} : tabs;
  if (!isObject(names)) throw badOption(39, JSON.stringify(tabs));
  const name = `feedpump:${key}`;
  const { lockName = name, channelName = name } = names as TabsOptions;
  if (typeof lockName !== 'string' || lockName === '' || lockName.startsWith('-')) throw badOption(40, JSON.stringify(lockName));
  if (typeof channelName !== 'string' || channelName === '') throw badOption(41, JSON.stringify(channelName));
  locksNeeded();
  return { lockName, channelName };
}

/**
 * A commit message of this key, of the shape a leader posts (its events, checkpoints and cursors objects): anything
 * else on the channel (another page's, an older version's) is ignored, never handed to `onCommit` or rebuilt.
 */
function isCommitMessage(m: unknown, key: string): m is CommitMessage {
  const { type, key: k, batch, cursors } = Object(m) as Partial<CommitMessage>;
  return (
    type === 'feedpump-commit' &&
    k === key &&
    cursors instanceof Object &&
    [batch?.events, batch?.checkpoints].every((l) => Array.isArray(l) && l.every((x) => x instanceof Object))
  );
}

/**
 * What {@link leadAcrossTabs} reports while it waits or leads. Every promise a hook returns is settled before the call
 * settles, so a hook must settle: bound its wait by the signal (consume()'s do, through `tell()`). @internal
 */
export interface TabHooks<T> {
  /** Awaited as the leader; as a follower queued before the remote commits (the wait goes on), its rejection is
   * theirs. */
  onRole?: ((role: TabRole) => Promise<unknown>) | undefined;
  /**
   * A commit of another leader, heard before this call's first own commit. Not awaited (the wait goes on): a rejection
   * of the promise it returns ends the wait and is what `leadAcrossTabs` rejects with.
   */
  onRemoteCommit?: ((message: CommitMessage<T>) => Promise<unknown>) | undefined;
}

/**
 * Runs `lead` while holding the lock of `config`, waiting for it as a follower if another consumer has it. `lead` gets
 * `postCommit`, to await after each commit and before telling it: it posts the commit to the followers and waits for
 * the remote commits heard before it to be told. `signal` ends the wait (`FeedError` `'aborted'`); once leading,
 * `lead` itself must honour it. The lock is released when `lead` settles.
 *
 * A follower's hooks are called one after another, each once the one before settled (as the leader's `onCommit` is
 * awaited), while the wait goes on; every one has settled before the call settles, and none starts after the wait
 * ended or the channel was closed: no failure is lost, and no
 * callback of a `consume()` runs on after it settled, except one whose wait the signal ended (consume()'s hooks stop
 * waiting when it fires, as for the leader's `onCommit`: an abort is not held up by a hook that hangs). The call
 * rejects with the first failure, of a hook or of `lead` (also over `lead`'s result: a hook that fails after `lead`
 * returned); with the end of the wait (`'aborted'`, a refused lock) only when no hook failed: a callback that rejects as
 * the signal fires tells more than the signal did. A later failure is dropped (a FeedError's `cause` is the original
 * error, never a second one).
 * @internal
 */
export async function leadAcrossTabs<T, R>(
  config: TabsConfig,
  key: string,
  signal: AbortSignal | undefined,
  hooks: TabHooks<T>,
  lead: (postCommit: (batch: Batch<T>, cursors: Cursors) => Promise<void>) => Promise<R>,
): Promise<R> {
  const locks = locksNeeded();
  const Channel = (globalThis as { BroadcastChannel?: typeof BroadcastChannel }).BroadcastChannel;
  // Without BroadcastChannel the lock still elects one consumer; followers just hear nothing.
  const channel = typeof Channel === 'function' ? new Channel(config.channelName) : undefined;
  let leading = false;
  /**
   * Set by this call's first own commit: from then on the channel is not heard. Until then it is, even as the new
   * leader: the previous leader posted its last commits before it released the lock, and they arrive while this call
   * loads the cursors and fetches, so they are delivered, in order, before any commit of its own.
   */
  let committed = false;
  /** The first failure, of a hook or of `lead`: what `leadAcrossTabs` rejects with. */
  let failed: { error: unknown } | undefined;
  /**
   * The follower's hooks, one after another (each called once the one before settled, none once the wait ended):
   * settles when the last one queued has (their rejections caught). Awaited before an own commit is told and before
   * the call settles. One chain, not a list: a follower that waits for hours keeps no settled hook.
   */
  let started: Promise<unknown> = Promise.resolve();
  // The wait ends on the caller's signal or on a failed hook: one controller for both.
  const wait = new AbortController();
  const fail = (error: unknown): void => {
    failed ??= { error };
    wait.abort();
  };
  const start = (hook: () => unknown): void => void (started = started.then(() => wait.signal.aborted || hook()).catch(fail));
  const forward = (): void => wait.abort(signal?.reason);
  signal?.addEventListener('abort', forward, { once: true });

  const onMessage = (ev: MessageEvent): void => {
    // A message later than this call's first own commit is not delivered (it would come out of order), nor one after
    // the wait ended (the signal fired, or a hook failed); the store is the truth either way.
    if (committed || wait.signal.aborted || !isCommitMessage(ev.data, key)) return;
    const message = received(ev.data as CommitMessage<T>);
    start(() => hooks.onRemoteCommit?.(message));
  };
  channel?.addEventListener('message', onMessage as EventListener);

  const postCommit = async (batch: Batch<T>, cursors: Cursors): Promise<void> => {
    committed = true;
    try {
      channel?.postMessage(commitMessage(key, batch, cursors));
    } catch {
      // Data that cannot be cloned (not from JSON.parse): the followers miss this notification, nothing else.
    }
    // The remote commits heard before this one are told first; a hook that threw while this call led rejects as a
    // throw of the local onCommit does, after the commit.
    await started;
    if (failed) throw failed.error;
  };
  /** Leads with the lock; without it (taken: the first request's answer) returns nothing and `leading` stays false. */
  const granted = async (lock: Lock | null): Promise<R | undefined> => {
    if (lock === null) return;
    leading = true;
    await hooks.onRole?.('leader');
    return lead(postCommit);
  };

  try {
    // First without waiting, to know whether this call is a follower (`ifAvailable` and `signal` do not combine).
    const now = await locks.request(config.lockName, { ifAvailable: true }, granted);
    if (leading) return now as R;
    start(() => hooks.onRole?.('follower'));
    return (await locks.request(config.lockName, { signal: wait.signal }, granted)) as R;
  } catch (e) {
    // While leading: the leader's own failure, first or not among the hooks' (the finally throws the first). Waiting:
    // the end of the wait, unless a hook failed (the finally throws that instead, also one that fails after this).
    if (leading) fail(e);
    ifAborted(signal, 'while waiting for the lock of another tab');
    // Web Locks fail with a DOMException (e.g. `SecurityError` in an opaque origin); anything else is the caller's
    // and passes as it is. (Every runtime of the package has the global: Node >= 20, workerd, browsers.)
    if (!(e instanceof DOMException)) throw e;
    throw Object.assign(badOption(42, JSON.stringify(config.lockName)), { cause: e });
  } finally {
    // No hook starts after this (the channel is closed first); those in flight settle before the call does, and the
    // first failure among them is what it rejects with, over a result or the end of the wait.
    signal?.removeEventListener('abort', forward);
    channel?.removeEventListener('message', onMessage as EventListener);
    channel?.close();
    await started;
    if (failed) throw failed.error;
  }
}
