/**
 * `openFeed`: async iteration over the reader (js/src/reader/, docs/wasm-contract.md).
 *
 * The wasm side hands out one committable batch per `next()`: a JSON array text plus an offset table. Here each batch
 * becomes objects with ONE `JSON.parse` (never one boundary crossing per event), and the cursors the caller may
 * persist advance only once a batch's events have all been delivered.
 * @packageDocumentation
 */
import { toFeedError, type FeedError } from './errors.js';
import { eventTypeList, feedUrl, readerOptions, v2Cursors, type ReaderOptions, badOption, V2_PARTITIONS, watched } from './options.js';
import { isObject, serverTypeFilter } from './filters.js';
import { filteredBatch, META_PARTITION, META_STRIDE, parseBatch, rawBatch } from './decode.js';
import { EventIterator } from './events.js';
import { Observer } from './observe.js';
import { AutoSource } from './source/auto.js';
import type { BatchSource } from './source/source.js';
import { V1Source } from './source/v1.js';
import { V2Source } from './source/v2.js';
import type { Batch, Feed, FeedUrl, FeedEventIterator, FeedOptions, FeedState, FeedStats, LiveOptions, PartitionLag } from './types.js';
import type { RawBatch } from './wasm/feedpump.js';


/**
 * Opens an event feed: ZeroEventHub (FeedAPI v1) or FeedAPI v2. The protocol is `options.protocol`; without it, a
 * `partitionCount` means v1 and its absence means `'auto'` (a v2 discovery call decides). Nothing is fetched until
 * the feed is iterated; the iteration asks for page after page from the latest checkpoints and ends once it is caught
 * up (or goes on polling with `live`).
 *
 * Options are checked at once: bad ones throw a {@link FeedError} with code `'bad-options'`.
 *
 * @param url - the feed endpoint, e.g. `https://host/feed/v1`; or several base URLs of one feed ({@link FeedUrl}):
 *   `[primary, replica]`
 * @param options - see {@link FeedOptions}; FeedAPI v1 needs `partitionCount`
 * @typeParam T - the type of the events' `data` (not checked at run time)
 * @returns a {@link Feed}, to iterate once
 * @example
 * ```ts
 * import { openFeed } from 'feedpump';
 *
 * const feed = openFeed('https://example.com/feed/v1', { partitionCount: 4, cursors: saved });
 * for await (const batch of feed.batches()) {
 *   await store(batch.events, batch.checkpoints); // one transaction per batch
 * }
 * saved = feed.cursors();
 * ```
 */
export function openFeed<T = unknown>(url: FeedUrl, options: FeedOptions): Feed<T> {
  const [href, ...replicas] = Array.isArray(url) ? (url as readonly unknown[]).map(feedUrl) : [feedUrl(url)];
  if (href === undefined) throw badOption(26);
  if (!isObject(options)) throw badOption(3);
  const protocol = options.protocol ?? (options.partitionCount === undefined ? 'auto' : 'v1');
  const observer = new Observer(options);
  const v1Options = (): ReaderOptions => ({ ...readerOptions(options, observer), replicas });
  if (protocol === 'v1') {
    const v1 = v1Options();
    return new FeedImpl<T>(v1, options, new V1Source(href, v1), observer);
  }
  if (protocol !== 'v2' && protocol !== 'auto') {
    throw badOption(27);
  }
  let eventTypes = eventTypeList(options.eventTypes, 'eventTypes');
  let skipEventTypes = eventTypeList(options.skipEventTypes, 'skipEventTypes');
  if (options.filter !== undefined && eventTypes === undefined && skipEventTypes === undefined) {
    // A filter of exact names also goes to the server; the client filters anyway (servers may ignore it).
    const server = serverTypeFilter(options.filter);
    eventTypes = server?.eventTypes;
    skipEventTypes = server?.skipEventTypes;
  }
  if (eventTypes && skipEventTypes) {
    throw badOption(28);
  }
  // The delivered cursors: the feed advances them as its consumer takes batches, the v2 source starts partitions from
  // them. One map, both sides.
  const delivered = v2Cursors(options.cursors);
  // The reader options every v2 partition reader shares; partitions and cursors are v2's own. `partitions` is checked
  // as v2 ids 0..32767 (against partitionCount once auto picks v1).
  const { partitions, ...shared } = readerOptions({ ...options, partitionCount: V2_PARTITIONS, cursors: undefined }, observer);
  shared.partitionCount = 1;
  shared.cursors = [];
  shared.replicas = replicas;
  const live = shared.live;
  // `live: true` has no minIntervalMs: the default too.
  const liveIntervalMs = live ? ((live as LiveOptions).minIntervalMs ?? 'default') : undefined;
  const v2 = new V2Source(href, shared, {
    delivered,
    eventTypes,
    skipEventTypes,
    liveIntervalMs,
    partitions,
  });
  const source: BatchSource =
    protocol === 'v2' ? v2 : new AutoSource(href, v2, () => (options.partitionCount === undefined ? undefined : v1Options()));
  return new FeedImpl<T>(shared, options, source, observer, delivered);
}

/** Per partition: when its latest event was delivered, and how many events the latest page brought. */
interface LagState {
  lastEventAt: number;
  eventsInLastPage: number;
  /** The page `eventsInLastPage` counts. */
  page: number;
}

/** The three states of an iteration: a feed is iterated at most once. */
type State = 'new' | 'iterating' | 'done';

/**
 * The feed over any {@link BatchSource}: `openFeed` gives it the wasm reader's; the bench's shell probe
 * (bench/probe/shell.js) gives it its own, so both shells share this decoding of batches.
 * @internal
 */
export class FeedImpl<T> implements Feed<T> {
  readonly #options: ReaderOptions;
  /** Where raw batches come from: one v1 reader, or v2 discovery and one reader per partition. */
  readonly #source: BatchSource;
  #state: State = 'new';
  /** `close()` was called: an iteration in progress ends quietly, whatever the reader says next. */
  #closed = false;
  /**
   * The delivered cursors, index = partition: the starting cursors advanced only by the checkpoints of batches the
   * consumer came back after. Never ahead of what the consumer has received (at-least-once on resume).
   */
  readonly #delivered: Map<number, string>;
  readonly #onCaughtUp: (() => void) | undefined;
  readonly #onFellBehind: (() => void) | undefined;
  readonly #lag = new Map<number, LagState>();
  readonly #observer: Observer;
  /** Aborted by `close()`: ends the wait for a hook. */
  readonly #stop = new AbortController();

  constructor(options: ReaderOptions, user: FeedOptions, source: BatchSource, observer: Observer, start?: Map<number, string>) {
    this.#options = options;
    this.#observer = observer;
    this.#delivered = start ?? new Map(options.cursors.map((c, p) => [p, c]));
    this.#source = source;
    this.#onCaughtUp = user.onCaughtUp;
    this.#onFellBehind = user.onFellBehind;
  }

  batches(): AsyncGenerator<Batch<T>, void, undefined> {
    this.#claim();
    const run = this.#run();
    // `return()` and `throw()` close the feed first: a generator's own waits for a `next()` in flight (the read of a
    // body that may never come) before it runs.
    const end = run.return.bind(run);
    const thrown = run.throw.bind(run);
    run.return = (v) => (this.close(), end(v));
    run.throw = (e) => (this.close(), thrown(e));
    return run;
  }

  events(): FeedEventIterator<T> {
    return new EventIterator(this.batches(), () => this.#closed);
  }

  [Symbol.asyncIterator](): FeedEventIterator<T> {
    return this.events();
  }

  cursors(): { [partition: number]: string } {
    return Object.fromEntries(this.#delivered);
  }

  lag(): { [partition: number]: PartitionLag } {
    const now = Date.now();
    const out: { [partition: number]: PartitionLag } = {};
    const read = this.#options.partitions ?? [...new Set([...this.#delivered.keys(), ...this.#lag.keys()])];
    for (const p of read) {
      const l = this.#lag.get(p);
      const at = l?.lastEventAt;
      out[p] = { lastEventAt: at, msSinceLastEvent: at === undefined ? undefined : now - at, eventsInLastPage: l?.eventsInLastPage ?? 0 };
    }
    return out;
  }

  get state(): FeedState {
    return this.#observer.state;
  }

  stats(): FeedStats {
    const at: { [partition: number]: number } = {};
    for (const [p, l] of this.#lag) at[p] = l.lastEventAt;
    return { ...this.#observer.n, lastEventAt: at };
  }

  /**
   * Counts a batch's events per partition for {@link FeedImpl.lag}, with those the core's type filter dropped (read,
   * never handed over: `raw.dropped`, pairs of partition and count); returns how many in all.
   */
  #track(raw: RawBatch): number {
    const now = Date.now();
    let read = 0;
    const count = (p = 0, n = 1): void => {
      read += n;
      let l = this.#lag.get(p);
      if (l === undefined) this.#lag.set(p, (l = { lastEventAt: now, eventsInLastPage: 0, page: raw.page }));
      if (l.page !== raw.page) {
        l.page = raw.page;
        l.eventsInLastPage = 0;
      }
      l.lastEventAt = now;
      l.eventsInLastPage += n;
    };
    for (let i = META_PARTITION; i < raw.meta.length; i += META_STRIDE) count(raw.meta[i]);
    const dropped = raw.dropped ?? [];
    for (let i = 0; i < dropped.length; i += 2) count(dropped[i], dropped[i + 1] ?? 0);
    return read;
  }

  close(): void {
    this.#closed = true;
    this.#stop.abort();
    this.#source.close();
    this.#observer.end();
  }

  #claim(): void {
    if (this.#state !== 'new') {
      throw badOption(29);
    }
    this.#state = 'iterating';
  }

  async *#run(): AsyncGenerator<Batch<T>, void, undefined> {
    const observer = this.#observer;
    let failure: FeedError | undefined;
    observer.set('catching-up');
    try {
      while (!this.#closed) {
        let raw: RawBatch | undefined;
        try {
          raw = await this.#source.next();
        } catch (e) {
          if (this.#closed) return;
          throw (failure = toFeedError(e));
        }
        if (raw === undefined || this.#closed) return;
        observer.batch(raw, this.#options.live !== undefined, this.#track(raw));
        // What the hook throws, or the promise it returns rejects with, ends the iteration (its promise is awaited).
        const hook = raw.signal === 'caught-up' ? this.#onCaughtUp : raw.signal === 'fell-behind' ? this.#onFellBehind : undefined;
        // `close()` and the caller's signal end the wait for it; the batch is not handed out then (the source says
        // why next: nothing, or `aborted`).
        if (hook) await watched(watched(hook(), Infinity, this.#options.signal), Infinity, this.#stop.signal);
        if (this.#closed || this.#options.signal?.aborted) continue;
        // A batch with only a signal is handed out too (live or not): `batches()` shows the position as it changes.
        if (raw.checkpoints.length === 0 && raw.meta.length === 0 && raw.signal === undefined) continue;
        const { filter, raw: rawMode } = this.#options;
        const batch = filter
          ? filteredBatch<T>(raw, filter, rawMode)
          : rawMode
            ? rawBatch<T>(raw)
            : parseBatch<T>(raw);
        if (raw.signal !== undefined) batch.signal = raw.signal;
        // Copied before the batch is handed out: the consumer may change the batch's objects.
        const commit = raw.checkpoints.map((c) => [c.partition, c.cursor] as const);
        yield batch;
        // The consumer came back for more: it has the batch, so its checkpoints count as delivered.
        for (const [partition, cursor] of commit) this.#delivered.set(partition, cursor);
      }
    } catch (e) {
      // What the consumer's callbacks or the batch parsing threw ends the feed as failed too.
      failure ??= toFeedError(e);
      throw e;
    } finally {
      this.#state = 'done';
      this.#source.close();
      observer.end(this.#closed ? undefined : failure);
    }
  }
}
