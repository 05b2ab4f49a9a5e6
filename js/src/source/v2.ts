/**
 * FeedAPI v2 (vippsas/feedapi-spec): discovery, one reader per partition, `409 Conflict` → discover again, closed and
 * split partitions, server-side event-type filters. The wasm reader speaks v2 for one partition
 * (docs/wasm-contract.md); the core's schedule (core/src/schedule.rs, the wasm `Schedule`) decides which partition to
 * read when, and when a turn has used its pages; this module drives it: readers, discovery with retries (the core's
 * retry policy, through the wasm `Backoff`), and from which cursor each partition starts.
 * @internal
 * @packageDocumentation
 */
import { FeedError, isFeedError, toFeedError } from '../errors.js';
import { ifAborted, sleep, type ReaderOptions, badOption } from '../options.js';
import type { FeedReader } from '../reader/reader.js';
import { Backoff, Schedule, type RawBatch } from '../wasm/feedpump.js';
import { discoverOnce, RETRY_AFTER, type Discovery, type V2Partition } from './discovery.js';
import { freeReader, newReader, requireWasm, type BatchSource } from './source.js';

/** Options of a v2 source besides the reader options. */
export interface V2SourceOptions {
  /** The delivered cursors, by partition: the feed writes them as its consumer takes batches, this source reads
   * them to start a partition (the one object both sides hold). */
  delivered: ReadonlyMap<number, string>;
  /** Server-side filters (SPEC: `event-types` / `skip-event-types`, `;`-joined, never both). */
  eventTypes?: string[] | undefined;
  skipEventTypes?: string[] | undefined;
  /** Poll a caught-up partition again after this many ms (`'default'`: the core's live interval; `undefined`: end
   * once caught up). */
  liveIntervalMs?: number | 'default' | undefined;
  /** Read only these partitions and their split children (`undefined`: all). */
  partitions?: number[] | undefined;
}

const EMPTY = new Uint32Array(0);

/**
 * Reads a v2 feed: discovery, then the partitions the wasm `Schedule` names, one turn at a time, each with its own
 * wasm reader:
 * - a partition with no delivered cursor starts from the delivered cursor of the first of its `cursorFromPartitions`
 *   that has one (method 2), else from `_first`;
 * - a turn ends when the partition is caught up (its reader ends), with the first batch of a page after the core's
 *   `PAGES_PER_TURN` pages, or after `BATCHES_PER_TURN` batches while another partition waits (a page that never
 *   ends: the schedule's `handleBatch`; the reader's empty batches for pieces of body of only heartbeats or blank
 *   lines count too); the reader is then closed, and the next turn starts from the delivered cursors, so nothing is
 *   lost or repeated;
 * - a `409 Conflict` ends the turn and the discovery is made again ("Consumers should respond to 409 Conflict by
 *   re-starting from the discovery phase"), then the schedule re-plans from the new list;
 * - 409s and discovery failures (network, 5xx, 408, 429, cut or stalled bodies) go through the retry policy: the
 *   core's backoff decides the delay, `onRetry` hears of each retry, and after `maxAttempts` the feed fails with the
 *   last error. A `401` on discovery asks `requestHeaders({ refresh: true })` once more first;
 * - several base URLs (`options.replicas`): the core's URL choice (held by the same `Backoff`) names the URL of each
 *   discovery and, at the end of each turn, of the next turn. A token is its server's, so a turn on another URL than
 *   the last discovery's discovers there first (the delivered cursors carry over: replicas share them). The readers do
 *   not retry then: their failures go through the retry policy here, which cools a failing URL down.
 * @internal
 */
export class V2Source implements BatchSource {
  /** Made on the first step (the wasm is ready by then); freed by close(). */
  #scheduleState: Schedule | undefined;
  #backoff: Backoff | undefined;
  #needDiscovery = true;
  #token = '';
  /** The base URL the token is from: `url` or one of `options.replicas`. */
  #base = '';
  #reader: FeedReader | undefined;
  /** The turn used its pages (the schedule said so): it ends before the next read. */
  #turnOver = false;
  /** The feed's page count (every reader's pages, and caught-up signals), and the current reader's page. */
  #page = 0;
  #readerPage = 0;
  /** close() was called, or the feed ended: every later step ends at once. */
  #closed = false;
  /** Aborted by close(), and (forwarded by #follow) by the caller's signal: ends a discovery request or body, and a
   * live or retry wait, at once. */
  readonly #stop = new AbortController();
  readonly #follow = (): void => this.#stop.abort(this.#options.signal?.reason);
  readonly #url: string;
  readonly #options: ReaderOptions;
  readonly #v2: V2SourceOptions;

  constructor(url: string, options: ReaderOptions, v2: V2SourceOptions) {
    this.#url = url;
    this.#options = options;
    this.#v2 = v2;
  }

  get #schedule(): Schedule {
    // The first turn goes to a partition due at random (the core's `start`): runs shorter than a turn (maxBatches, a
    // time budget), each a new feed, would otherwise all read the first listed partition while it has news.
    return (this.#scheduleState ??= new Schedule(this.#v2.partitions, this.#v2.liveIntervalMs, Math.random() * 2 ** 32));
  }

  /**
   * Protocol negotiation (`auto`): the first discovery, with retries. `'v1'` when the server answered the bare GET
   * with 400; else the discovery is kept for the first step.
   */
  async negotiate(): Promise<'v1' | 'v2'> {
    const found = await this.#discover();
    if (found === undefined) return 'v1';
    this.#plan(found);
    return 'v2';
  }

  async next(): Promise<RawBatch | undefined> {
    for (;;) {
      if (this.#closed) return undefined;
      if (this.#needDiscovery) {
        const found = await this.#discover();
        if (found === undefined) {
          throw badOption(37);
        }
        if (this.#closed) return undefined;
        this.#plan(found);
      }
      if (this.#reader !== undefined && this.#turnOver) this.#endTurn(false);
      const reader = this.#reader;
      if (reader !== undefined) {
        const raw = await this.#read(reader);
        if (raw === 'again') continue;
        return raw;
      }
      const step = this.#schedule.poll(now());
      if (step.kind === 'read') {
        this.#open(step.partition);
      } else if (step.kind === 'wait') {
        await this.#sleep(step.ms);
        if (step.rediscover) this.#needDiscovery = true;
      } else if (step.kind === 'caught-up') {
        this.#page += 1;
        return { text: '[]', meta: EMPTY, checkpoints: [], page: this.#page, bytes: 0, signal: 'caught-up' };
      } else {
        this.#closed = true;
        return undefined;
      }
    }
  }

  close(): void {
    this.#closed = true;
    this.#stop.abort();
    this.#options.signal?.removeEventListener('abort', this.#follow);
    this.#drop();
    this.#backoff?.free();
    this.#backoff = undefined;
    this.#scheduleState?.free();
    this.#scheduleState = undefined;
  }

  /** One batch of the current turn, or `'again'` when the turn ended (caught up, or a 409). */
  async #read(reader: FeedReader): Promise<RawBatch | 'again'> {
    let raw: RawBatch | undefined;
    try {
      raw = await reader.next();
    } catch (e) {
      if (this.#closed) return 'again';
      const error = toFeedError(e);
      const conflict = isFeedError(error, 'http-status') && error.status === 409;
      // With several URLs the reader does not retry (the core's v2 session): its failures take the retry policy
      // here, which cools a failing URL down, and the next turn starts on the first healthy URL.
      if (!conflict && !this.#options.replicas?.length) throw error;
      // SPEC: "Consumers should respond to 409 Conflict by re-starting from the discovery phase": through the retry
      // policy, so a server that keeps answering 409 ends the feed. The failure counts against the reader's URL (the
      // last polled) before the turn ends.
      await this.#retry(error, conflict ? 'conflict' : error.code, error.status ?? 0, undefined);
      this.#endTurn(false);
      this.#needDiscovery ||= conflict;
      return 'again';
    }
    if (this.#closed) return 'again';
    this.#backoffState().handleSuccess(); // an events request was answered: the token works
    if (raw === undefined) {
      this.#endTurn(true);
      return 'again';
    }
    // Events the core's type filter dropped were read too (as they were when the filter ran after parsing).
    if (this.#schedule.handleBatch(raw.page, raw.meta.length > 0 || raw.dropped !== undefined)) this.#turnOver = true;
    // Pages are numbered per reader; the feed numbers them across readers (for lag() and error messages).
    if (raw.page !== this.#readerPage) {
      this.#readerPage = raw.page;
      this.#page += 1;
    }
    raw.page = this.#page;
    delete raw.signal; // a partition's caught-up is not the feed's
    // A batch with nothing in it goes on too: it may end a page, which the feed's stats and onResponse count.
    return raw;
  }

  #plan(d: Discovery): void {
    this.#drop();
    this.#schedule.plan(d);
    this.#token = d.token;
    this.#needDiscovery = false;
  }

  /** Discovery with retries, each on the URL the core picks: the discovery, or `undefined` when the server speaks v1
   * (400 on the bare GET). */
  async #discover(): Promise<Discovery | undefined> {
    requireWasm();
    // The request listens to #stop, which follows the caller's signal (one listener: added once, removed by close()).
    const signal = this.#options.signal;
    if (signal?.aborted) this.#follow();
    signal?.addEventListener('abort', this.#follow);
    for (;;) {
      const url = this.#pollUrl();
      try {
        const found = await discoverOnce(url, { ...this.#options, signal: this.#stop.signal });
        this.#base = url;
        return found.v1 ? undefined : found.discovery;
      } catch (e) {
        const error = toFeedError(e);
        // A code the core does not retry gives up: `error` is thrown.
        await this.#retry(error, error.code, error.status ?? 0, RETRY_AFTER.get(error));
      }
    }
  }

  /** The base URL of the next request (the core's choice): `url` or one of `options.replicas`. */
  #pollUrl(): string {
    return this.#backoffState().pollUrl(now()) ?? this.#url;
  }

  #backoffState(): Backoff {
    return (this.#backoff ??= new Backoff(this.#options));
  }

  /**
   * A retryable failure: the core's backoff decides the delay or gives up (then `error` is thrown); `onRetry` hears
   * of it (no Rust state is borrowed by then; its own errors do not stop the feed); then the wait.
   */
  async #retry(error: FeedError, code: string, status: number, retryAfter: string | undefined): Promise<void> {
    // Closed (from a callback, or while the request ran): no retry. close() freed the backoff, so a new one would
    // count from 0 and retry forever; the feed ignores what a closed source throws.
    if (this.#closed) throw error;
    const backoff = this.#backoffState();
    const delayMs = backoff.handleFailure(now(), code, status, retryAfter);
    if (delayMs < 0) throw error;
    // The caller's hook failing (a throw, a rejected promise: options.ts's wrapper ignores both) is not the feed failing.
    this.#options.onRetry?.({ error, attempt: backoff.attempts, delayMs });
    await this.#sleep(delayMs);
    if (this.#closed) throw error;
  }

  /** Waits `ms` or until the feed closes; the caller's signal fired during the wait is an `'aborted'` FeedError. */
  async #sleep(ms: number): Promise<void> {
    await sleep(ms, this.#stop.signal); // #stop follows the caller's signal from the first discovery on
    ifAborted(this.#options.signal);
  }

  #open(p: V2Partition): void {
    const start =
      this.#v2.delivered.get(p.id) ??
      p.cursorFromPartitions.map((a) => this.#v2.delivered.get(a)).find((c) => c !== undefined) ??
      '_first';
    // The filters as given (the wasm reads an undefined one as none).
    const { eventTypes, skipEventTypes } = this.#v2;
    const v2 = { token: this.#token, partition: p.id, eventTypes, skipEventTypes };
    // With `replicas` the reader keeps to its URL (the token is one server's) and does not retry (see #read).
    const { live: _live, partitions: _partitions, headers: _headers, ...rest } = this.#options;
    this.#reader = newReader(this.#base, { ...rest, partitionCount: 1, cursors: [start], v2 } as ReaderOptions);
    this.#readerPage = 0;
    this.#turnOver = false;
  }

  /**
   * Ends the current turn: caught up, its pages used, or failed. The next turn on another URL (a failure moved the
   * feed, or the first URL's cool-down is over) needs that server's token and partition list first. Checked here, at
   * the end of a turn, so that each discovery is followed by at least one turn on its URL (a short cool-down cannot
   * make the feed only ever discover).
   */
  #endTurn(caughtUp: boolean): void {
    this.#drop();
    this.#schedule.handleTurnEnd(caughtUp, now());
    this.#needDiscovery ||= !this.#closed && this.#pollUrl() !== this.#base;
  }

  #drop(): void {
    const reader = this.#reader;
    this.#reader = undefined;
    freeReader(reader);
  }
}

function now(): number {
  return typeof performance !== 'undefined' ? performance.now() : Date.now();
}
