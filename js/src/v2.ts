/**
 * FeedAPI v2 (vippsas/feedapi-spec): discovery, one reader per partition, `409 Conflict` → discover again, closed and
 * split partitions, server-side event-type filters. The wasm reader speaks v2 for one partition
 * (docs/wasm-contract.md); this module decides which partition to read when, and from which cursor.
 * @internal
 * @packageDocumentation
 */
import { FeedError, isFeedError } from './errors.js';
import { freeReader, newReader, type BatchSource } from './feed.js';
import type { ReaderOptions } from './options.js';
import type { FeedReader, RawBatch } from './wasm/feedpump.js';

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

/** How to make the discovery request: the reader options' fetch, headers hook and signal. */
type Requester = Pick<ReaderOptions, 'fetch' | 'requestHeaders' | 'signal'>;

function badDiscovery(why: string): FeedError {
  return new FeedError('bad-discovery', `bad-discovery: ${why}`);
}

/** SPEC: a string holding an integer 0..32767; the Go server sends `startsAfterPartition` and `cursorFromPartitions`
 * as JSON numbers, so those are accepted too. */
function partitionId(v: unknown, what: string): number {
  const n =
    typeof v === 'string' && /^(?:0|[1-9][0-9]{0,4})$/.test(v) ? Number(v) : typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : NaN;
  if (!(n <= 32_767)) throw badDiscovery(`${what} must be a string holding an integer 0..32767, got ${JSON.stringify(v)}`);
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

/**
 * The protocol negotiation of the SPEC: "start with a simple GET to the FeedAPI endpoint without any arguments. For
 * version 1 (ZeroEventHub) this should result in a 400 error; for version 2 the result will be the discovery
 * endpoint JSON payload".
 * @internal
 */
export async function discover(url: string, req: Requester): Promise<{ v1: true } | { v1: false; discovery: Discovery }> {
  const headers = req.requestHeaders ? await req.requestHeaders({ refresh: false }) : undefined;
  const init: RequestInit = { method: 'GET' };
  if (headers !== undefined) init.headers = headers;
  if (req.signal !== undefined) init.signal = req.signal;
  const request = new Request(url, init);
  let response: Response;
  try {
    response = await (req.fetch ?? fetch)(request);
  } catch (e) {
    if (req.signal?.aborted) throw new FeedError('aborted', 'aborted: the feed was aborted', { cause: req.signal.reason });
    throw new FeedError('network', 'network: the discovery request failed before a response arrived', { cause: e });
  }
  if (response.status === 400) {
    await response.body?.cancel();
    return { v1: true };
  }
  const text = await response.text();
  if (!response.ok) {
    const snippet = text.slice(0, 512).trim();
    throw new FeedError('http-status', `http-status: discovery answered ${response.status} ${response.statusText}: ${snippet}`, {
      status: response.status,
      bodySnippet: snippet,
    });
  }
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch (e) {
    throw new FeedError('bad-discovery', 'bad-discovery: the discovery answer is not JSON', { cause: e });
  }
  return { v1: false, discovery: parseDiscovery(body) };
}

/** Options of a v2 source besides the reader options. */
export interface V2SourceOptions {
  /** The delivered cursor of a partition, if any. */
  cursorOf(partition: number): string | undefined;
  /** Server-side filters (SPEC: `event-types` / `skip-event-types`, `;`-joined, never both). */
  eventTypes?: string[] | undefined;
  skipEventTypes?: string[] | undefined;
  /** Poll again after a pass that found nothing new, after this many ms (`undefined`: end once caught up). */
  liveIntervalMs?: number | undefined;
}

const EMPTY = new Uint32Array(0);

/**
 * Reads every partition of a v2 feed, one at a time, each until it is caught up:
 * - a partition that `startsAfterPartition` X starts only once X is closed and read to its end (SPEC method 1:
 *   "First read all events from partition 0. Then, when that partition is fully consumed, it continues with the
 *   children");
 * - a partition with no delivered cursor starts from the delivered cursor of the first of its `cursorFromPartitions`
 *   that has one (method 2), else from `_first`;
 * - a `409 Conflict` ends the current reader and the discovery is made again ("Consumers should respond to 409
 *   Conflict by re-starting from the discovery phase"); partitions restart from their delivered cursors, so nothing
 *   is lost or repeated;
 * - a pass over the partitions that all caught up ends the feed (or, live, waits and passes again).
 * @internal
 */
export class V2Source implements BatchSource {
  #discovery: Discovery | undefined;
  #reader: FeedReader | undefined;
  #current: V2Partition | undefined;
  /** Closed partitions read to their end: never read again. */
  readonly #finished = new Set<number>();
  /** Partitions caught up in the current pass. */
  #pass = new Set<number>();
  #page = 0;
  #closed = false;

  constructor(
    readonly url: string,
    readonly options: ReaderOptions,
    readonly v2: V2SourceOptions,
    discovery?: Discovery,
  ) {
    this.#discovery = discovery;
  }

  async next(): Promise<RawBatch | undefined> {
    for (;;) {
      if (this.#closed) return undefined;
      this.#discovery ??= await this.#discover();
      if (this.#reader === undefined) {
        const next = this.#pick(this.#discovery);
        if (next === undefined) {
          // A whole pass found every readable partition caught up.
          const signal: RawBatch = { text: '[]', meta: EMPTY, checkpoints: [], page: this.#page, ascii: true, signal: 'caught-up' };
          this.#pass = new Set();
          if (this.v2.liveIntervalMs === undefined) {
            this.#closed = true;
            return signal;
          }
          await sleep(this.v2.liveIntervalMs, this.options.signal);
          return signal;
        }
        this.#open(this.#discovery, next);
      }
      const reader = this.#reader;
      const partition = this.#current;
      if (reader === undefined || partition === undefined) continue;
      let raw: RawBatch | undefined;
      try {
        raw = await reader.next();
      } catch (e) {
        if (isFeedError(e) || (e instanceof Error && e.name === 'FeedError')) {
          if ((e as FeedError).status === 409) {
            this.#drop();
            this.#discovery = undefined; // the token changed: discover again
            continue;
          }
        }
        throw e;
      }
      if (raw === undefined) {
        // This partition is caught up for now.
        this.#drop();
        this.#pass.add(partition.id);
        if (partition.closed) this.#finished.add(partition.id);
        continue;
      }
      this.#page += 1;
      if (raw.signal !== undefined) delete raw.signal; // a partition's caught-up is not the feed's
      if (raw.meta.length === 0 && raw.checkpoints.length === 0) continue;
      return raw;
    }
  }

  close(): void {
    this.#closed = true;
    this.#drop();
  }

  /** Starts from a discovery already made (by protocol negotiation). */
  useDiscovery(d: Discovery): void {
    this.#discovery ??= d;
  }

  async #discover(): Promise<Discovery> {
    const found = await discover(this.url, this.options);
    if (found.v1) {
      throw new FeedError('bad-options', 'bad-options: the server speaks FeedAPI v1 (ZeroEventHub): use protocol v1 and partitionCount');
    }
    return found.discovery;
  }

  /** The next partition to read in this pass, or `undefined` when the pass is complete. */
  #pick(d: Discovery): V2Partition | undefined {
    return d.partitions.find((p) => {
      if (this.#pass.has(p.id) || this.#finished.has(p.id)) return false;
      const parent = p.startsAfterPartition;
      return parent === undefined || this.#finished.has(parent) || !d.partitions.some((q) => q.id === parent);
    });
  }

  #open(d: Discovery, p: V2Partition): void {
    const start =
      this.v2.cursorOf(p.id) ??
      p.cursorFromPartitions.map((a) => this.v2.cursorOf(a)).find((c) => c !== undefined) ??
      '_first';
    const v2: { token: string; partition: number; eventTypes?: string[]; skipEventTypes?: string[] } = {
      token: d.token,
      partition: p.id,
    };
    if (this.v2.eventTypes !== undefined) v2.eventTypes = this.v2.eventTypes;
    if (this.v2.skipEventTypes !== undefined) v2.skipEventTypes = this.v2.skipEventTypes;
    const { live: _live, partitions: _partitions, headers: _headers, ...rest } = this.options;
    this.#reader = newReader(this.url, { ...rest, partitionCount: 1, cursors: [start], v2 } as ReaderOptions);
    this.#current = p;
  }

  #drop(): void {
    const reader = this.#reader;
    this.#reader = undefined;
    this.#current = undefined;
    freeReader(reader);
  }
}

/** Waits `ms`, or until the signal aborts. */
function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve) => {
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
