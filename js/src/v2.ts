/**
 * FeedAPI v2 (vippsas/feedapi-spec): discovery, one reader per partition, `409 Conflict` → discover again, closed and
 * split partitions, server-side event-type filters. The wasm reader speaks v2 for one partition
 * (docs/wasm-contract.md); {@link V2Schedule} decides which partition to read when; this module drives it: readers,
 * discovery with retries (the core's retry policy, through the wasm `Backoff`), and from which cursor each partition
 * starts.
 * @internal
 * @packageDocumentation
 */
import { FeedError, isFeedError, toFeedError } from './errors.js';
import { freeReader, newReader, requireWasm, type BatchSource } from './feed.js';
import { abortedError, sleep, type ReaderOptions, bad } from './options.js';
import { discoverOnce, failureOf } from './v2-discovery.js';
import { PAGES_PER_TURN, V2Schedule } from './v2-schedule.js';
import { Backoff, readerDefaults, type FeedReader, type RawBatch } from './wasm/feedpump.js';

/** One partition as discovery lists it. */
export interface V2Partition {
  /** SPEC: "String, but only allowed values is integers in the range [0..32767]". */
  id: number;
  /** No new events will ever appear on it: read it to its end once. */
  closed: boolean;
  /** Split method 1: start this partition only once that (closed) partition has been read to its end. */
  startsAfterPartition: number | undefined;
  /** Split method 2: "A cursor that was valid on an ancestor is also valid on the child". */
  cursorFromPartitions: number[];
}

/** What the discovery call answers. */
export interface Discovery {
  token: string;
  partitions: V2Partition[];
  exactlyOnce: boolean;
}


/** @internal */
export function badDiscovery(why: string): FeedError {
  return new FeedError('bad-discovery', `bad-discovery: ${why}`);
}

/** A value as a bounded message fragment (a hostile document may hold anything). */
function shown(v: unknown): string {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 60)}…` : s;
}

/** SPEC: a string holding an integer 0..32767; the Go server sends `startsAfterPartition` and `cursorFromPartitions`
 * as JSON numbers, so those are accepted too. */
function partitionId(v: unknown, what: string): number {
  const n =
    typeof v === 'string' && /^(?:0|[1-9][0-9]{0,4})$/.test(v) ? Number(v) : typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : NaN;
  if (!(n < V2_PARTITIONS)) throw badDiscovery(`${what} must be a string holding an integer 0..32767, got ${shown(v)}`);
  return n;
}

/**
 * Parses and checks a discovery answer.
 * @internal
 */
export function parseDiscovery(body: unknown): Discovery {
  if (body === null || typeof body !== 'object') throw badDiscovery('the answer is not a JSON object');
  const { token, partitions, exactlyOnce } = body as Record<string, unknown>;
  if (typeof token !== 'string') throw badDiscovery('token must be a string');
  if (!Array.isArray(partitions)) throw badDiscovery('partitions must be an array');
  const list = partitions.map((p: unknown, i): V2Partition => {
    if (p === null || typeof p !== 'object') throw badDiscovery(`partitions[${i}] is not an object`);
    const q = p as Record<string, unknown>;
    const from = q.cursorFromPartitions ?? [];
    if (!Array.isArray(from)) throw badDiscovery(`partitions[${i}].cursorFromPartitions must be an array`);
    return {
      id: partitionId(q.id, `partitions[${i}].id`),
      closed: q.closed === true,
      startsAfterPartition:
        q.startsAfterPartition === undefined ? undefined : partitionId(q.startsAfterPartition, `partitions[${i}].startsAfterPartition`),
      cursorFromPartitions: from.map((f, k) => partitionId(f, `partitions[${i}].cursorFromPartitions[${k}]`)),
    };
  });
  return { token, partitions: list, exactlyOnce: exactlyOnce === true };
}

/** FeedAPI v2 partition ids are 0..32767 (SPEC: "only allowed values is integers in the range [0..32767]"). */
export const V2_PARTITIONS = 32_768;

/** Options of a v2 source besides the reader options. */
export interface V2SourceOptions {
  /** The delivered cursor of a partition, if any. */
  cursorOf(partition: number): string | undefined;
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
 * Reads a v2 feed: discovery, then the partitions {@link V2Schedule} names, one turn at a time, each with its own
 * wasm reader:
 * - a partition with no delivered cursor starts from the delivered cursor of the first of its `cursorFromPartitions`
 *   that has one (method 2), else from `_first`;
 * - a turn ends when the partition is caught up (its reader ends) or with the first batch of a page after
 *   {@link PAGES_PER_TURN} pages; the reader is then closed, and the next turn starts from the delivered cursors, so
 *   nothing is lost or repeated;
 * - a `409 Conflict` ends the turn and the discovery is made again ("Consumers should respond to 409 Conflict by
 *   re-starting from the discovery phase"), then the schedule re-plans from the new list;
 * - 409s and discovery failures (network, 5xx, 408, 429, cut or stalled bodies) go through the retry policy: the
 *   core's backoff decides the delay, `onRetry` hears of each retry, and after `maxAttempts` the feed fails with the
 *   last error. A `401` on discovery asks `requestHeaders({ refresh: true })` once more first.
 * @internal
 */
export class V2Source implements BatchSource {
  /** Made on the first step (the wasm is ready by then: it holds the live interval's default). */
  #scheduleState: V2Schedule | undefined;
  #backoff: Backoff | undefined;
  #needDiscovery = true;
  #token = '';
  #reader: FeedReader | undefined;
  /** The first page (the reader's numbering) of the current turn, and whether the turn delivered events. */
  #turnFirstPage: number | undefined;
  #turnDelivered = false;
  /** The turn used its pages: it ends before the next read. */
  #turnOver = false;
  /** The feed's page count (every reader's pages, and caught-up signals), and the current reader's page. */
  #page = 0;
  #readerPage = 0;
  #closed = false;

  constructor(
    readonly url: string,
    readonly options: ReaderOptions,
    readonly v2: V2SourceOptions,
  ) {}

  get #schedule(): V2Schedule {
    if (this.#scheduleState === undefined) {
      const interval = this.v2.liveIntervalMs;
      this.#scheduleState = new V2Schedule({
        partitions: this.v2.partitions,
        live: interval !== undefined,
        intervalMs: interval === 'default' ? (readerDefaults() as { liveMinIntervalMs: number }).liveMinIntervalMs : (interval ?? 0),
      });
    }
    return this.#scheduleState;
  }

  /**
   * Protocol negotiation (`auto`): the first discovery, with retries. `'v1'` when the server answered the bare GET
   * with 400; else the discovery is kept for the first step.
   */
  async negotiate(): Promise<'v1' | 'v2'> {
    requireWasm();
    const found = await this.#discover();
    if (found === undefined) return 'v1';
    this.#plan(found);
    return 'v2';
  }

  async next(): Promise<RawBatch | undefined> {
    for (;;) {
      if (this.#closed) return undefined;
      if (this.#needDiscovery) {
        requireWasm();
        const found = await this.#discover();
        if (found === undefined) {
          throw bad('the server speaks FeedAPI v1 (ZeroEventHub): use protocol v1 and partitionCount');
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
        await sleep(step.ms, this.options.signal);
        if (this.options.signal?.aborted) throw abortedError(this.options.signal);
        if (step.rediscover) this.#needDiscovery = true;
      } else if (step.kind === 'caught-up') {
        this.#page += 1;
        return { text: '[]', meta: EMPTY, checkpoints: [], page: this.#page, ascii: true, bytes: 0, signal: 'caught-up' };
      } else {
        this.#closed = true;
        return undefined;
      }
    }
  }

  close(): void {
    this.#closed = true;
    this.#drop();
    this.#backoff?.free();
    this.#backoff = undefined;
  }

  /** One batch of the current turn, or `'again'` when the turn ended (caught up, or a 409). */
  async #read(reader: FeedReader): Promise<RawBatch | 'again'> {
    let raw: RawBatch | undefined;
    try {
      raw = await reader.next();
    } catch (e) {
      if (this.#closed) return 'again';
      const error = toFeedError(e);
      if (!(isFeedError(error, 'http-status') && error.status === 409)) throw error;
      // SPEC: "Consumers should respond to 409 Conflict by re-starting from the discovery phase": through the retry
      // policy, so a server that keeps answering 409 ends the feed.
      this.#endTurn(false);
      await this.#retry(error, 'conflict', 409, undefined);
      this.#needDiscovery = true;
      return 'again';
    }
    if (this.#closed) return 'again';
    this.#backoffState().handleSuccess(); // an events request was answered: the token works
    if (raw === undefined) {
      this.#endTurn(true);
      return 'again';
    }
    this.#turnFirstPage ??= raw.page;
    if (raw.page - this.#turnFirstPage >= PAGES_PER_TURN) this.#turnOver = true;
    // Pages are numbered per reader; the feed numbers them across readers (for lag() and error messages).
    if (raw.page !== this.#readerPage) {
      this.#readerPage = raw.page;
      this.#page += 1;
    }
    raw.page = this.#page;
    if (raw.signal !== undefined) delete raw.signal; // a partition's caught-up is not the feed's
    // A batch with nothing in it goes on too: it may end a page, which the feed's stats and onResponse count.
    if (raw.meta.length > 0) this.#turnDelivered = true;
    return raw;
  }

  #plan(d: Discovery): void {
    this.#drop();
    this.#schedule.plan(d);
    this.#token = d.token;
    this.#needDiscovery = false;
  }

  /** Discovery with retries: the discovery, or `undefined` when the server speaks v1 (400 on the bare GET). */
  async #discover(): Promise<Discovery | undefined> {
    for (;;) {
      try {
        const found = await discoverOnce(this.url, this.options);
        return found.v1 ? undefined : found.discovery;
      } catch (e) {
        const error = toFeedError(e);
        const { kind, retryAfter } = failureOf(error);
        if (kind === 'final') throw error;
        await this.#retry(error, kind, error.status ?? 0, retryAfter);
      }
    }
  }

  #backoffState(): Backoff {
    return (this.#backoff ??= new Backoff(this.options));
  }

  /**
   * A retryable failure: the core's backoff decides the delay or gives up (then `error` is thrown); `onRetry` hears
   * of it (no Rust state is borrowed by then; its own errors do not stop the feed); then the wait.
   */
  async #retry(error: FeedError, kind: string, status: number, retryAfter: string | undefined): Promise<void> {
    // Closed (from a callback, or while the request ran): no retry. close() freed the backoff, so a new one would
    // count from 0 and retry forever; the feed ignores what a closed source throws.
    if (this.#closed) throw error;
    const backoff = this.#backoffState();
    const delayMs = backoff.handleFailure(now(), kind, status, retryAfter);
    if (delayMs < 0) throw error;
    const attempt = backoff.attempts;
    try {
      this.options.onRetry?.({ error, attempt, delayMs });
    } catch {
      // the caller's hook failing is not the feed failing
    }
    await sleep(delayMs, this.options.signal);
    if (this.options.signal?.aborted) throw abortedError(this.options.signal);
    if (this.#closed) throw error;
  }

  #open(p: V2Partition): void {
    const start =
      this.v2.cursorOf(p.id) ??
      p.cursorFromPartitions.map((a) => this.v2.cursorOf(a)).find((c) => c !== undefined) ??
      '_first';
    const v2: { token: string; partition: number; eventTypes?: string[]; skipEventTypes?: string[] } = {
      token: this.#token,
      partition: p.id,
    };
    if (this.v2.eventTypes !== undefined) v2.eventTypes = this.v2.eventTypes;
    if (this.v2.skipEventTypes !== undefined) v2.skipEventTypes = this.v2.skipEventTypes;
    const { live: _live, partitions: _partitions, headers: _headers, ...rest } = this.options;
    this.#reader = newReader(this.url, { ...rest, partitionCount: 1, cursors: [start], v2 } as ReaderOptions);
    this.#turnFirstPage = undefined;
    this.#readerPage = 0;
    this.#turnDelivered = false;
    this.#turnOver = false;
  }

  /** Ends the current turn: caught up, or its pages used. */
  #endTurn(caughtUp: boolean): void {
    const delivered = this.#turnDelivered;
    this.#drop();
    this.#schedule.handleTurnEnd({ caughtUp, delivered }, now());
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
