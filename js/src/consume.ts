/**
 * `consume()`: exactly-once consumption. Each committable batch's effects and its cursors are written in ONE
 * transaction of a {@link CursorStore}; on restart the feed resumes from the committed cursors.
 *
 * Why this is exactly-once: ZeroEventHub says a checkpoint resumes "right after everything that preceded it" in its
 * partition. The core hands out only events followed by a checkpoint of their partition (events after a page's last
 * checkpoint are held back and fetched again), so a batch's checkpoints cover all of its events and nothing more.
 * Committing the effects and those checkpoints atomically means a crash leaves either both or neither.
 * @packageDocumentation
 */
import { FeedError, isFeedError, messageOf } from './errors.js';
import { openFeed } from './feed.js';
import { ifAborted, sleep, badOption, watched } from './options.js';
import { isObject } from './filters.js';
import type { Batch, Feed, FeedOptions, FeedUrl, FetchLike } from './types.js';
import type { CursorRecord, CursorStore, Cursors } from './stores/types.js';
import { leadAcrossTabs, tabsConfig, type TabRole, type TabsOptions } from './tabs.js';
import { describe, feedIdentity, partitionsOf, resumable } from './stores/identity.js';
import { hookFailed } from './transport.js';

/**
 * The feed `consume()` opens: `openFeed`'s options plus `url`. `cursors` is not among them: they come from the store.
 *
 * @example
 * ```ts
 * const source: ConsumeSource = { url: 'https://host/feed/v1', partitionCount: 4, pageSizeHint: 500 };
 * ```
 */
export type ConsumeSource = (FeedOptions extends infer O ? (O extends unknown ? Omit<O, 'cursors'> : never) : never) & {
  /**
   * The feed endpoint, as for `openFeed`; or several base URLs of one feed ({@link FeedUrl}), v1 or v2: the cursors
   * are stored under the first URL's identity whichever URL serves.
   */
  url: FeedUrl;
};

/**
 * Why the store had no usable cursors: `'absent'` (nothing stored under the key: a first run, or storage that was
 * evicted, a new origin, a wiped Durable Object) or `'other-feed'` (cursors of another feed identity: another URL,
 * protocol or partition count, or partitions that were not stored).
 *
 * @example
 * ```ts
 * onMissingCursors: ({ reason }) => (reason === 'absent' ? 'first' : 'throw')
 * ```
 */
export interface MissingCursorsInfo {
  /** Why: nothing stored under the key, or cursors of another feed identity. */
  reason: 'absent' | 'other-feed';
  /** The feed key. */
  key: string;
  /** This feed's identity. */
  identity: string;
  /** The partitions this call reads, when known before reading (FeedAPI v1). */
  partitions?: number[] | undefined;
  /** The record found, for `'other-feed'`. */
  found?: CursorRecord | undefined;
}

/**
 * What to do when cursors are missing: start at `'_first'` (apply everything again: right when the effects were lost
 * with the cursors, as in one IndexedDB database), at `'_last'` (skip history), `'throw'` a `FeedError`
 * `'cursors-missing'`, or resume from the cursors returned.
 *
 * The static `'first'` and `'last'` apply only when nothing is stored (`'absent'`). Cursors of another feed
 * (`'other-feed'`) throw `'cursors-missing'` unless a function decides: applying every effect again is never chosen
 * for you when the store holds another feed's progress.
 *
 * @example
 * ```ts
 * onMissingCursors: async () => (await serverSaysFirstRun()) ? 'first' : 'throw'
 * ```
 */
export type MissingCursorsPolicy =
  | 'first'
  | 'last'
  | 'throw'
  | ((info: MissingCursorsInfo) => 'first' | 'last' | 'throw' | Cursors | Promise<'first' | 'last' | 'throw' | Cursors>);

/**
 * What `onHandlerError` is told about a handler that threw. Nothing of the batch was committed.
 *
 * @example
 * ```ts
 * onHandlerError: ({ error, attempt }) => (attempt < 3 ? 'retry' : 'stop')
 * ```
 */
export interface HandlerErrorInfo<T = unknown> {
  /** What the handler threw. */
  error: unknown;
  /** The batch (give it to a dead-letter queue before `'skip'`). */
  batch: Batch<T>;
  /** 1 for the first failure of this batch, then 2, … */
  attempt: number;
}

/**
 * `'retry'`: run the handler on the same batch again in a new transaction (after a backoff of 100 ms doubling up to
 * 5 s); `'skip'`: commit the batch's cursors without its effects (a poison batch); `'stop'`: reject with `FeedError`
 * `'handler-failed'`.
 *
 * @example
 * ```ts
 * const action: HandlerErrorAction = 'skip';
 * ```
 */
export type HandlerErrorAction = 'retry' | 'skip' | 'stop';

/**
 * Options of {@link consume}.
 *
 * @typeParam T - the type of the events' `data`
 * @typeParam Tx - the store's transaction type
 * @example
 * ```ts
 * const options: ConsumeOptions<Order, IDBTransaction> = { store, key: 'orders', handler: (batch, tx) => apply(batch, tx) };
 * ```
 */
export interface ConsumeOptions<T, Tx> {
  /** Where the cursors are committed, together with the handler's writes. */
  store: CursorStore<Tx>;
  /** The feed key the cursors are stored under (one per consumer of a feed). */
  key: string;
  /**
   * Applies a committable batch through `tx`: everything written there commits with the batch's cursors. With
   * IndexedDB, await only requests of `tx` (see `idbRequest`): awaiting anything else lets the transaction commit
   * early. A throw (or rejection) commits nothing of the batch; then `onHandlerError` decides.
   */
  handler: (batch: Batch<T>, tx: Tx) => unknown;
  /**
   * The feed identity stored with the cursors; cursors of another identity count as missing. The partitions read are
   * stored beside it: reading a subset of the stored partitions resumes from their cursors.
   * @defaultValue `<url> <protocol>[ n=<partitionCount>]`, the URL normalised: scheme, lower-case host, port unless
   * the default, path and the query's keys without their values (docs/consume.md)
   */
  identity?: string | undefined;
  /**
   * See {@link MissingCursorsPolicy}. `'first'` and `'last'` apply only to `'absent'`; `'other-feed'` throws unless a
   * function decides. A function that throws or rejects ends `consume()` with `'hook-failed'` (its error the `cause`).
   * @defaultValue `'first'`
   */
  onMissingCursors?: MissingCursorsPolicy | undefined;
  /**
   * A static action or a function choosing one per failure (see {@link HandlerErrorAction}). The process is never
   * exited; `'stop'` rejects `consume()`'s promise. Once the source's `signal` fired, nothing of the failed batch is
   * committed whatever the action (not even a skip): `consume()` rejects with `'aborted'`. A function that throws or
   * rejects ends `consume()` with `'hook-failed'` (its error the `cause`; nothing of the batch is committed).
   * @defaultValue `'stop'`
   */
  onHandlerError?: HandlerErrorAction | ((info: HandlerErrorInfo<T>) => HandlerErrorAction | Promise<HandlerErrorAction>) | undefined;
  /**
   * Return after this many committed batches (`caughtUp: false`), e.g. to bound one Durable Object alarm.
   * @defaultValue no limit
   */
  maxBatches?: number | undefined;
  /**
   * Told after every committed batch: this call's own (`remote: false`) and, in tabs mode, each batch another tab
   * committed before this call's first own commit (`remote: true`; its effects are already in the store). A remote
   * notification is best-effort: one still in flight when the leader's tab closed may be lost; the store is the
   * truth. A promise it returns is awaited: the next batch waits for it, and the next remote one (a follower's wait
   * goes on meanwhile), so the calls of one `consume()` never overlap and come in commit order; `consume()` settles
   * only after the last. The source's `signal` ends a wait that never settles (a rejection after
   * that is not seen). A throw, or a rejection of that promise, rejects `consume()` (after the commit) with
   * `'hook-failed'` (its error the `cause`; a remote one's also when this call has led and returned since, and over
   * `'aborted'` when it rejects as the signal fires); a rejection is never left unhandled.
   * @defaultValue none
   */
  onCommit?: ((info: CommitInfo<T>) => void) | undefined;
  /**
   * Tabs mode: one consumer per feed key across the tabs (and workers) of an origin. The call that holds the Web Lock
   * `feedpump:<key>` consumes; the others wait for it (`signal` ends the wait with `'aborted'`) and meanwhile hear the
   * leader's commits through `onCommit` (`remote: true`, over a `BroadcastChannel`). When the leader's tab closes, or
   * its `consume()` returns or throws, a waiting call takes over from the committed cursors, read after it holds the
   * lock. `true` or {@link TabsOptions} insists on it (`'bad-options'` without Web Locks); `false` turns it off.
   * @defaultValue on where Web Locks exist (browsers, web workers); off in Node (also Node 24.5 and later, which have
   * Web Locks: there `true` makes one consumer per key in the process and its worker threads) and in workerd
   */
  tabs?: boolean | TabsOptions | undefined;
  /**
   * Browsers: no request starts while the page is hidden (`document.visibilityState === 'hidden'`): a live feed stops
   * polling until a `visibilitychange` shows the page again, then goes on from its cursors. A request already in
   * flight completes. Where there is no `document` (workers) it does nothing, as in Node and workerd (their entry
   * points do not carry it, a `document` global such as jsdom's included).
   * @defaultValue `false`
   * @example
   * ```ts
   * await consume({ url, partitionCount: 4, live: true }, { store, key: 'orders', handler, pauseWhenHidden: true });
   * ```
   */
  pauseWhenHidden?: boolean | undefined;
  /**
   * Given the feed this call reads, once, when it starts consuming (after the cursors are loaded, before the first
   * request; in tabs mode when this call leads): read its {@link Feed.state}, {@link Feed.stats} and {@link Feed.lag}
   * while the call runs and after it settled. The iteration is `consume()`'s: stop it with the source's `signal`.
   * A promise it returns is awaited before the first request. A throw or a rejection rejects `consume()` with
   * `'hook-failed'` (nothing is committed). `feedpump/otel`'s `watch` fits here as it is.
   * @defaultValue none
   * @example
   * ```ts
   * let feed: Pick<Feed, 'state' | 'stats' | 'lag'> | undefined;
   * const done = consume(source, { store, key: 'orders', handler, onFeed: (f) => (feed = f) });
   * setInterval(() => console.log(feed?.state, feed?.stats()), 1_000);
   * ```
   */
  onFeed?: ((feed: Pick<Feed<T>, 'state' | 'stats' | 'lag'>) => void) | undefined;
  /**
   * Told `'follower'` when the call has to wait for another tab's lock, and `'leader'` when it starts consuming (at
   * once when tabs mode is off). A promise it returns is awaited for `'leader'` (before anything is read), not for
   * `'follower'` (the wait goes on; `consume()` settles only after it). A throw or a rejection rejects `consume()` with
   * `'hook-failed'` (its error the `cause`).
   * @defaultValue none
   */
  onRole?: ((role: TabRole) => void) | undefined;
}

/**
 * What `onCommit` is told: the committed batch, the cursors after it, and whether another tab committed it.
 *
 * @example
 * ```ts
 * onCommit: ({ batch, remote }: CommitInfo<Order>) => refreshView(batch.events, remote)
 * ```
 */
export interface CommitInfo<T = unknown> {
  /**
   * The committed batch. For `remote` ones: its `events` and `checkpoints` only (a structured clone); in
   * `mode: 'raw'` the events have the leader's shape (`raw`, `data` parsed when read, `headers`).
   */
  batch: Batch<T>;
  /** The committed cursors after the batch. */
  cursors: Cursors;
  /** `true` when the leader tab committed the batch and this call, a follower, was told. */
  remote: boolean;
  /** The handler's time on the batch (to its promise settling), in ms; not set for `remote` ones. */
  handlerMs?: number;
  /** The commit's time besides the handler (the store's transaction and cursor write), in ms; not set for `remote` ones. */
  commitMs?: number;
}

/**
 * What {@link consume} resolves with.
 *
 * @example
 * ```ts
 * const { events, cursors, caughtUp } = await consume(source, options);
 * ```
 */
export interface ConsumeResult {
  /** Batches committed by this call (skipped ones included). */
  batches: number;
  /** Events applied by this call. */
  events: number;
  /** Batches committed without effects by an `onHandlerError` `'skip'`. */
  skipped: number;
  /** Where this call started: the stored cursors, or the missing-cursor policy's choice. */
  start: 'stored' | 'first' | 'last' | 'custom';
  /** Why the cursors were missing, when they were. */
  missing?: MissingCursorsInfo['reason'] | undefined;
  /** The committed cursors at the end. */
  cursors: Cursors;
  /** `true` when the feed ended (caught up, or closed); `false` when `maxBatches` stopped it. */
  caughtUp: boolean;
}

function partitionsRead(source: ConsumeSource): readonly number[] {
  if (source.partitions !== undefined) return source.partitions;
  if (source.partitionCount !== undefined) return Array.from({ length: source.partitionCount }, (_, p) => p);
  throw badOption(36);
}

/**
 * A policy option: absent, a function, or one of the names `ok` (consume()'s checks; consumeGroup() makes them up
 * front).
 * @internal
 */
export const oneOf = (v: unknown, ...ok: string[]): boolean => v === undefined || typeof v === 'function' || ok.includes(v as string);

/**
 * Consumes a feed exactly once into a {@link CursorStore}: resumes from the cursors stored under `key`, and for every
 * committable batch runs `handler(batch, tx)` and writes the batch's cursors in the same transaction. The network and
 * JSON parsing are done before the transaction opens (the batch is parsed when it is handed out), so an IndexedDB
 * transaction never waits on the network.
 *
 * Resolves when the feed ends (caught up, unless `live`), or after `maxBatches`. Rejects with a `FeedError`: the
 * feed's own codes, `'store-failed'`, `'cursors-missing'`, `'handler-failed'` (`cause` = the handler's error),
 * `'hook-failed'` (a policy function, a callback, or a feed hook of the source such as `onCaughtUp` threw or rejected;
 * `cause` = its error). Nothing of a failed batch is committed, so calling
 * `consume()` again continues exactly where it stopped.
 *
 * In browsers it runs in tabs mode by default (see `tabs`): every tab may call `consume()` with the same key; one
 * consumes, the others wait and hear its commits, and one of them takes over when the leader's tab closes.
 *
 * @param source - `openFeed`'s options and the `url` (without `cursors`)
 * @param options - the store, the feed key, the handler and the policies
 * @example
 * ```ts
 * import { consume } from 'feedpump';
 * import { indexedDbStore } from 'feedpump/indexeddb';
 *
 * const store = indexedDbStore({ database: 'app', userStores: ['orders'], upgrade: (db) => db.createObjectStore('orders') });
 * const result = await consume<Order, IDBTransaction>({ url: 'https://host/feed/v1', partitionCount: 4 }, {
 *   store,
 *   key: 'orders',
 *   handler: (batch, tx) => {
 *     for (const { data } of batch.events) tx.objectStore('orders').put(data, data.id);
 *   },
 *   onHandlerError: ({ attempt }) => (attempt < 3 ? 'retry' : 'stop'),
 *   // In every tab: one consumes, the others are told of its commits and take over when it closes.
 *   onRole: (role) => console.log(role),
 *   onCommit: ({ batch, remote }) => render(batch.events, remote),
 * });
 * console.log(result.events, result.cursors);
 * ```
 */
export async function consume<T = unknown, Tx = unknown>(source: ConsumeSource, options: ConsumeOptions<T, Tx>): Promise<ConsumeResult> {
  const { store, key, handler, onCommit, onRole } = options;
  // The messages are the wasm's (badOption: src/options.rs).
  if (!isObject(store) || typeof store.load !== 'function' || typeof store.save !== 'function') {
    throw badOption(30);
  }
  if (typeof key !== 'string' || key === '') throw badOption(31);
  if (typeof handler !== 'function') throw badOption(7, 'handler');
  const maxBatches = options.maxBatches ?? Infinity;
  if (!(maxBatches >= 1)) throw badOption(32);
  // A callback that is not a function is refused up front (tell() passes over what is not a function).
  for (const hook of ['onRole', 'onFeed', 'onCommit'] as const) if (!oneOf(options[hook])) throw badOption(7, hook);
  const policy = options.onMissingCursors;
  if (!oneOf(policy, 'first', 'last', 'throw')) throw badOption(33, JSON.stringify(policy));
  // A typo would act as the default ('stop').
  if (!oneOf(options.onHandlerError, 'retry', 'skip', 'stop')) throw badOption(34, JSON.stringify(options.onHandlerError));
  const tabs = tabsConfig(options.tabs, key);
  // Nothing of the caller's (a hook, the store, fetch) is called for a signal that fired already.
  ifAborted(source.signal, 'before consume() started');
  if (tabs === undefined) {
    await tell('onRole', onRole, 'leader', source.signal);
    return consumeHere(source, options);
  }
  return leadAcrossTabs<T, ConsumeResult>(
    tabs,
    key,
    source.signal,
    {
      onRole: (r) => tell('onRole', onRole, r, source.signal),
      onRemoteCommit: (m) => tell('onCommit', onCommit, { batch: m.batch, cursors: m.cursors, remote: true }, source.signal),
    },
    (postCommit) => consumeHere(source, options, postCommit),
  );
}

/** `pauseWhenHidden`'s `fetch`, given by the browser entry points (js/src/visible.ts): elsewhere no page is hidden. */
let visible: ((fetch: FetchLike | undefined) => FetchLike | undefined) | undefined;

/**
 * Makes `pauseWhenHidden` wrap the source's `fetch` with `wrap` (the browser entry points: js/src/visible.ts).
 * @internal
 */
export function pauseWhenHiddenBy(wrap: typeof visible): void {
  visible = wrap;
}

/**
 * What the callback or policy `name` (`onRole`, `onFeed`, `onCommit`; `onMissingCursors`, `onHandlerError`) returns
 * for `arg`, awaited; `otherwise` when it is not a function (a static policy, or no callback). The one place they are
 * called: a throw, or a rejection of the promise returned, is `'hook-failed'` naming it (its error the `cause`), as
 * `consume()` rejects only with FeedErrors, and never an unhandled rejection. `signal` ends a wait that never settles
 * (`'aborted'`; the caller then throws `'aborted'`, or the feed does).
 */
async function tell(name: string, callback: unknown, arg: unknown, signal: AbortSignal | undefined, otherwise = callback): Promise<unknown> {
  if (typeof callback !== 'function') return otherwise;
  try {
    return await watched(callback(arg), Infinity, signal);
  } catch (e) {
    throw hookFailed(name, e, 0);
  }
}

/** The consumer itself, run once this call may consume (it holds the tabs lock, or tabs mode is off). */
async function consumeHere<T, Tx>(
  source: ConsumeSource,
  options: ConsumeOptions<T, Tx>,
  postCommit?: (batch: Batch<T>, cursors: Cursors) => Promise<void>,
): Promise<ConsumeResult> {
  const { store, key, handler, onCommit } = options;
  const maxBatches = options.maxBatches ?? Infinity;
  const identity = options.identity ?? feedIdentity(source);
  const { signal } = source;

  // Where to start: the stored cursors of this feed, or what the missing-cursor policy says.
  let stored: CursorRecord | undefined;
  let resumed: ReturnType<typeof resumable>;
  try {
    // The signal ends the wait for the load, which may never settle (an IndexedDB open that another connection
    // blocks); a save is waited for (below), so that the result and onCommit tell what committed.
    const got = await watched(store.load(key), Infinity, signal);
    if (got === 'aborted') ifAborted(signal, 'while the cursors were loaded');
    // null: nothing stored, as undefined (what some storage APIs answer).
    stored = (got as CursorRecord | null | undefined) ?? undefined;
    // A record that is not one (a custom store's defect) fails here, as the load's own errors do.
    resumed = stored === undefined ? undefined : resumable(stored, identity, source, options.identity === undefined);
  } catch (e) {
    throw isFeedError(e) ? e : new FeedError('store-failed', `could not load the cursors of ${JSON.stringify(key)}`, { cause: e });
  }
  /** Where the feed starts, and what every record written by this call starts from. */
  let start: Cursors;
  let partitions = partitionsOf(source);
  let from: ConsumeResult['start'] = 'stored';
  let missing: MissingCursorsInfo['reason'] | undefined;
  if (resumed !== undefined) {
    start = resumed.cursors;
    partitions = resumed.partitions;
  } else {
    const info: MissingCursorsInfo = { reason: stored === undefined ? 'absent' : 'other-feed', key, identity, partitions, found: stored };
    missing = info.reason;
    const policy = options.onMissingCursors ?? 'first';
    // 'first' and 'last' mean "nothing is stored"; cursors of another feed are only dropped by a function's choice.
    // The signal ends the wait for a function's choice (one that never settles held consume() past the abort).
    const choice = await tell('onMissingCursors', policy, info, signal, info.reason === 'absent' ? policy : 'throw');
    ifAborted(signal, 'while onMissingCursors decided');
    if (choice === 'throw') {
      const why =
        stored === undefined
          ? 'nothing stored: evicted or new storage?'
          : `stored for ${describe(stored.identity, stored.partitions)}: another feed; 'first' and 'last' apply only when nothing is stored, ` +
            'a function given as onMissingCursors may decide for another feed';
      throw new FeedError('cursors-missing', `no cursors of ${describe(identity, partitions)} under key ${JSON.stringify(key)} (${why})`);
    }
    if (choice === 'first') {
      start = {};
      from = 'first';
    } else if (choice === 'last') {
      start = Object.fromEntries(partitionsRead(source).map((p) => [p, '_last']));
      from = 'last';
    } else if (isObject(choice)) {
      start = { ...choice };
      from = 'custom';
    } else {
      throw badOption(35, JSON.stringify(choice));
    }
  }

  const { url, ...feedOptions } = source;
  if (options.pauseWhenHidden === true && visible) feedOptions.fetch = visible(feedOptions.fetch);
  // The source is one of FeedOptions' shapes without `cursors` (ConsumeSource); the spread only loses that to TypeScript.
  const feed = openFeed<T>(url, { ...feedOptions, cursors: start } as FeedOptions);
  let cursors: Cursors = { ...start };
  const result: ConsumeResult = { batches: 0, events: 0, skipped: 0, start: from, missing, cursors, caughtUp: false };
  let n = 0;
  /** The record this consumer last saw committed: every save checks that nobody else committed since. */
  let committed: CursorRecord | undefined = stored;
  try {
    await tell('onFeed', options.onFeed, feed, signal);
    for await (const batch of feed.batches()) {
      // Signal-only batches of live feeds carry nothing to commit; every event comes with its checkpoints.
      if (batch.checkpoints.length === 0) continue;
      n++;
      const next: Cursors = { ...cursors };
      for (const c of batch.checkpoints) next[c.partition] = c.cursor;
      const record: CursorRecord = { identity, cursors: next, savedAt: Date.now() };
      if (partitions !== undefined) record.partitions = partitions;
      let skipped = false;
      let handlerMs = 0;
      let saveStart = 0;
      for (let attempt = 1; ; attempt++) {
        /** What the handler threw in this attempt; while it threw nothing, `batch` (which no store rejects with). */
        let thrown: unknown = batch;
        const effects = (tx: Tx): unknown => {
          const at = Date.now();
          /** `v`, once the handler is done with it (its time is only told for a batch it committed). */
          const took = <V>(v: V): V => ((handlerMs = Date.now() - at), v);
          const failed = (error: unknown): never => {
            thrown = error;
            throw error;
          };
          try {
            const r = handler(batch, tx);
            // A thenable (object or function) is awaited by the store: its rejection is the handler's too.
            return r != null && typeof (r as PromiseLike<unknown>).then === 'function' ? Promise.resolve(r).then(took, failed) : took(r);
          } catch (error) {
            return failed(error);
          }
        };
        try {
          saveStart = Date.now();
          // A skip commits the cursors without effects, through the same save (its failure is the store's too).
          await store.save(key, record, skipped ? undefined : effects, committed ?? null);
          committed = record;
          break;
        } catch (e) {
          // Not the handler's failure (the store's, or a cursor conflict): passed on, never retried or skipped. The
          // store passes the handler's error on as it is; any other error is the store's own, also after a handler
          // failure that the store itself tried again (PostgreSQL's serialization failures).
          if (thrown !== e) {
            throw isFeedError(e) ? e : new FeedError('store-failed', `could not commit batch ${n}`, { cause: e });
          }
          const action = await tell('onHandlerError', options.onHandlerError, { error: e, batch, attempt }, signal); // none: 'stop'
          if (action === 'retry') await sleep(Math.min(50 * 2 ** attempt, 5_000), signal); // 100 ms, doubling, up to 5 s
          // Once the signal fired (before or while the policy decided, or while the retry waited) nothing of the
          // batch commits, not even a skip: a handler that fails because its consumer stops is no poison batch. The
          // next run has the batch again.
          ifAborted(signal, 'while a failed batch was decided');
          if (action === 'skip') {
            handlerMs = 0;
            skipped = true;
          }
          if (action === 'retry' || skipped) continue;
          throw new FeedError('handler-failed', `the handler threw on batch ${n} (${batch.events.length} events, nothing committed): ${messageOf(e)}`, {
            cause: e,
          });
        }
      }
      cursors = next;
      result.cursors = cursors;
      result.batches++;
      if (skipped) result.skipped++;
      else result.events += batch.events.length;
      await postCommit?.(batch, cursors);
      await tell('onCommit', onCommit, { batch, cursors, remote: false, handlerMs, commitMs: Math.max(0, Date.now() - saveStart - handlerMs) }, signal);
      if (result.batches >= maxBatches) return result;
    }
    result.caughtUp = true;
    return result;
  } catch (e) {
    // The feed's own hooks (onCaughtUp, onFellBehind, a filter's typeFrom) throw through openFeed as they are.
    throw isFeedError(e) ? e : hookFailed('a feed hook', e, 0);
  } finally {
    feed.close();
  }
}
