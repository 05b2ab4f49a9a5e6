/**
 * Internal: checks the public {@link FeedOptions} and turns them into the reader's options, {@link ReaderOptions} (see
 * docs/wasm-contract.md). Pure, so it is unit-tested without the wasm.
 * @internal
 * @packageDocumentation
 */
import { FeedError, messageOf, toFeedError } from './errors.js';
import { wasmNotReady, wasmReady } from './runtime.js';
import { optionError } from './wasm/feedpump.js';
import { call, type Observer } from './observe.js';
import { compileFilter, isObject, type CompiledFilter } from './filters.js';
import { MAX_TIMER_MS } from './limits.js';
import type { AnyFeedOptions as FeedOptions, FetchLike, LiveOptions, RequestHeadersContext, RetryOptions } from './types.js';

/** The timer limit, from its one home (limits.ts), for the modules that import it from here. @internal */
export { MAX_TIMER_MS };

/**
 * The options of one reader: the one declaration of the contract's `ReaderOptions` (docs/wasm-contract.md), checked
 * once, by {@link readerOptions}. The TypeScript shell (js/src/reader/) takes the calls out (`fetch`,
 * `requestHeaders`, through js/src/transport.ts), `onRetry` and `signal`; the wasm `Core` reads the config fields
 * (src/options.rs: every other field here, as an untyped object, with the defaults that live there). The other
 * fields (`observer`, `filter`) are the wrapper's.
 */
export interface ReaderOptions {
  partitionCount: number;
  /** One cursor per partition, index = partition. */
  cursors: string[];
  pageSizeHint?: number;
  /** Comma-joined header names, or `'_all'`. */
  headers?: string;
  signal?: AbortSignal;
  fetch?: FetchLike;
  /** Told of each request by the transport (feed.ts's; not read by the wasm). */
  observer?: Observer;
  /** The compiled type filter (feed.ts's; not read by the wasm, which reads `typeField`). */
  filter?: CompiledFilter;
  requestHeaders?: (context: RequestHeadersContext) => HeadersInit | Promise<HeadersInit>;
  maxLineLength?: number;
  maxHeldBytes?: number;
  retry?: false | RetryOptions;
  /** Called by the reader with the core's FeedError-shaped `Error`; wrapped here so the caller sees a {@link FeedError}. */
  onRetry?: (info: { error: unknown; attempt: number; delayMs: number }) => void;
  idleTimeoutMs?: number;
  replicas?: string[];
  failoverCooldownMs?: number;
  partitions?: number[];
  live?: boolean | LiveOptions;
  maxBatchDelayMs?: number;
  /** The path in `data` of each event's type, read into `RawBatch.types` for the type filter. */
  typeField?: CompiledFilter['field'];
  /** The type filter, when the core can apply it to the types it reads: it drops the events it does not keep. */
  typeFilter?: CompiledFilter['core'];
  /** Raw mode: the batch text holds each value as the server sent it. Otherwise characters outside ASCII are `\u`
   * escapes in it while few events have any (the same values to `JSON.parse`, in a text engines decode faster). */
  raw?: boolean;
  /** FeedAPI v2: read this one partition (partitionCount 1, cursors [its cursor]). */
  v2?: { token: string; partition: number; eventTypes?: string[] | undefined; skipEventTypes?: string[] | undefined };
}

/** The cursor of a partition the caller gave none for: the start of the partition (FeedAPI `_first`). */
export const FIRST = '_first';

/** The wasm core takes u32 counts and sizes. */
const U32_MAX = 0xffff_ffff;


/**
 * `work`, or why waiting for it ended first: `'stalled'` after `ms` (clamped to {@link MAX_TIMER_MS}; `Infinity`:
 * never), `'aborted'` when the signal fires. The timer and the listener are released.
 * @internal
 */
export async function watched(work: unknown, ms: number, signal: AbortSignal | undefined): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  let onAbort: (() => void) | undefined;
  try {
    return await Promise.race([
      work,
      new Promise<'stalled' | 'aborted'>((resolve) => {
        if (ms !== Infinity) timer = setTimeout(() => resolve('stalled'), Math.min(Math.max(0, ms), MAX_TIMER_MS));
        if (signal !== undefined) {
          onAbort = () => resolve('aborted');
          if (signal.aborted) resolve('aborted');
          else signal.addEventListener('abort', onAbort);
        }
      }),
    ]);
  } finally {
    clearTimeout(timer);
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
  }
}

/**
 * Waits `ms` (clamped to {@link MAX_TIMER_MS}), or until `signal` aborts: {@link watched} of a promise of its own
 * that never settles (a shared one would keep a reaction per wait for ever).
 * @internal
 */
export function sleep(ms: number, signal: AbortSignal | undefined): Promise<unknown> {
  return watched(new Promise(() => {}), ms, signal);
}

/**
 * The `'aborted'` FeedError of `signal` (its reason as `cause`): "the signal fired <when>", or without `when` "the feed
 * was aborted".
 * @internal
 */
export function abortedError(signal: AbortSignal | undefined, when?: string): FeedError {
  return new FeedError('aborted', when ? `the signal fired ${when}` : 'the feed was aborted', { cause: signal?.reason });
}

/**
 * Throws {@link abortedError} when `signal` fired.
 * @internal
 */
export function ifAborted(signal: AbortSignal | undefined, when?: string): void {
  if (signal?.aborted) throw abortedError(signal, when);
}

/** The options that must be functions when given. */
const FUNCTIONS = ['fetch', 'requestHeaders', 'onRetry', 'onCaughtUp', 'onFellBehind', 'onStateChange', 'onRequest', 'onResponse'] as const;

/** A canonical non-negative decimal integer, as object keys of partition numbers are spelled. */
const PARTITION_KEY = /^(?:0|[1-9][0-9]*)$/;

/**
 * A `'bad-options'` FeedError: `"bad-options: <message>"` (the one home of that shape for every option check).
 * @internal
 */
export function bad(message: string, cause?: { cause: unknown }): FeedError {
  return new FeedError('bad-options', message, cause);
}

/**
 * The `'bad-options'` FeedError of an option check, whose message the wasm makes (`optionError`, src/options.rs: the
 * messages' one home, out of every JS bundle): `which` says which check, `a` and `n` are what the message shows.
 * Options are checked without the wasm too: before it is ready, the error is still `'bad-options'`, naming the check
 * by number and saying why the wasm is not there (`wasmNotReady()`'s message; its cause kept).
 * @internal
 */
export function badOption(which: number, a?: string, n = 0): FeedError {
  if (wasmReady()) return toFeedError(optionError(which, a, n));
  const why = wasmNotReady();
  return bad(`option check ${which} (its message is the wasm's): ${why.message}`, { cause: why.cause });
}

function isInteger(v: unknown, min: number, max = U32_MAX): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;
}

/** A timer option: an integer number of ms from `min` to {@link MAX_TIMER_MS}. */
function isTimerMs(v: unknown, min = 0): v is number {
  return isInteger(v, min, MAX_TIMER_MS);
}

/** A byte limit: an integer >= 1. */
function isBytes(v: unknown): v is number {
  return isInteger(v, 1);
}

/**
 * Copies `from[key]`, when it is set, to `to[key]`; a value that `ok` refuses is option check `which`, whose
 * message names `prefix + key` (the checks whose message names no option ignore it).
 */
function copyOption(from: object, to: object, key: string, ok: (v: unknown) => boolean, which: number, prefix = ''): void {
  const v = (from as Record<string, unknown>)[key];
  if (v === undefined) return;
  if (!ok(v)) throw badOption(which, prefix + key);
  (to as Record<string, unknown>)[key] = v;
}

/**
 * The feed URL as a string.
 * @internal
 */
export function feedUrl(url: unknown): string {
  if (typeof url === 'string' && url !== '') return url;
  if (url instanceof URL) return url.href;
  throw badOption(0);
}

/**
 * The `headers` query value: names joined with `,`, or `'_all'`; `undefined` (not sent) for none.
 * Names cannot contain a comma, which separates them on the wire.
 * @internal
 */
export function joinHeaders(headers: FeedOptions['headers']): string | undefined {
  if (headers === undefined) return undefined;
  if (headers === '_all') return '_all';
  if (!Array.isArray(headers)) throw badOption(1);
  for (const name of headers as readonly unknown[]) {
    if (typeof name !== 'string' || name === '' || name.includes(',')) {
      throw badOption(2, JSON.stringify(name));
    }
  }
  return headers.length === 0 ? undefined : headers.join(',');
}

/**
 * The starting cursor of every partition, index = partition: the caller's, or `'_first'`.
 * @internal
 */
export function startCursors(partitionCount: number, cursors: FeedOptions['cursors']): string[] {
  const out = new Array<string>(partitionCount).fill(FIRST);
  for (const [partition, cursor] of v2Cursors(cursors, partitionCount)) out[partition] = cursor;
  return out;
}

/**
 * Checks every option and builds the reader's options. Throws a `FeedError` with code `'bad-options'` naming the
 * first bad option.
 * @internal
 */
export function readerOptions(options: FeedOptions, observer?: Observer): ReaderOptions {
  if (!isObject(options)) throw badOption(3);
  const { partitionCount, pageSizeHint, signal, fetch, requestHeaders } = options;
  if (!isInteger(partitionCount, 1)) throw badOption(4);
  const out: ReaderOptions = { partitionCount, cursors: startCursors(partitionCount, options.cursors) };
  if (pageSizeHint !== undefined) {
    if (!isInteger(pageSizeHint, 0)) throw badOption(5);
    if (pageSizeHint > 0) out.pageSizeHint = pageSizeHint;
  }
  const headers = joinHeaders(options.headers);
  if (headers !== undefined) out.headers = headers;
  if (signal !== undefined) {
    if (typeof AbortSignal === 'undefined' || !(signal instanceof AbortSignal)) {
      throw badOption(6);
    }
    out.signal = signal;
  }
  for (const hook of FUNCTIONS) {
    if (options[hook] !== undefined && typeof options[hook] !== 'function') throw badOption(7, hook);
  }
  if (fetch !== undefined) out.fetch = fetch;
  if (observer !== undefined) out.observer = observer;
  if (requestHeaders !== undefined) out.requestHeaders = requestHeaders;
  copyOption(options, out, 'maxLineLength', isBytes, 8);
  copyOption(options, out, 'maxHeldBytes', isBytes, 8);
  if (options.retry !== undefined) out.retry = retryOptions(options.retry);
  const { onRetry } = options;
  if (onRetry !== undefined || observer !== undefined) {
    out.onRetry = ({ error, attempt, delayMs }) => {
      const e = toFeedError(error);
      observer?.retry(e, attempt, delayMs);
      // Called now (it may close the feed); what it throws, or the promise it returns rejects with, is ignored (as
      // for every hook of the observer's): the caller's hook failing is not the feed failing, nor unhandled.
      call(options, 'onRetry', { error: e, attempt, delayMs, url: observer?.url });
    };
  }
  copyOption(options, out, 'failoverCooldownMs', isTimerMs, 9);
  copyOption(options, out, 'idleTimeoutMs', isTimerMs, 10);
  const { partitions, live, mode } = options;
  if (partitions !== undefined) {
    if (!Array.isArray(partitions) || partitions.length === 0) throw badOption(11);
    for (const p of partitions as readonly unknown[]) {
      if (!isInteger(p, 0) || p >= partitionCount) {
        throw badOption(12, JSON.stringify(p), partitionCount - 1);
      }
    }
    out.partitions = [...new Set(partitions)].sort((a, b) => a - b);
  }
  if (live !== undefined && live !== false) out.live = liveOptions(live);
  copyOption(options, out, 'maxBatchDelayMs', isTimerMs, 9);
  if (mode !== undefined && mode !== 'parsed' && mode !== 'raw') throw badOption(13);
  if (mode === 'raw') out.raw = true;
  if (options.filter !== undefined) {
    try {
      out.filter = compileFilter(options.filter);
    } catch (e) {
      throw bad(`filter: ${messageOf(e)}`, { cause: e });
    }
    // The reader finds the types of a field source while framing (decode.ts then parses only the kept events), and
    // the core drops the events a filter of names and prefixes does not keep.
    out.typeField = out.filter.field;
    out.typeFilter = out.filter.core;
  }
  if (options.logger !== undefined && !isObject(options.logger)) {
    throw badOption(14);
  }
  return out;
}

/**
 * FeedAPI v2 partition ids are `0..V2_PARTITIONS - 1` (SPEC: "only allowed values is integers in the range
 * [0..32767]"); the core's `request::V2_PARTITIONS` is the wasm's side of the same rule.
 * @internal
 */
export const V2_PARTITIONS = 32_768;

/**
 * The start cursors the caller gave, checked: partitions `0..partitionCount - 1` (FeedAPI v2, or a feed not yet
 * negotiated: ids `0..V2_PARTITIONS - 1`), cursors non-empty strings. Only the given partitions are known.
 * @internal
 */
export function v2Cursors(cursors: FeedOptions['cursors'], partitionCount = V2_PARTITIONS): Map<number, string> {
  const out = new Map<number, string>();
  if (cursors === undefined) return out;
  if (!isObject(cursors)) throw badOption(15);
  for (const [key, cursor] of Object.entries(cursors)) {
    const partition = PARTITION_KEY.test(key) ? Number(key) : NaN;
    if (!(partition < partitionCount)) {
      throw badOption(16, JSON.stringify(key), partitionCount - 1);
    }
    if (typeof cursor !== 'string' || cursor === '') {
      throw badOption(17, undefined, partition);
    }
    out.set(partition, cursor);
  }
  return out;
}

/**
 * Checks the event-type lists of a v2 feed (sent as `event-types` / `skip-event-types`, never both).
 * @internal
 */
export function eventTypeList(v: unknown, name: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (!Array.isArray(v) || v.length === 0 || v.some((t) => typeof t !== 'string' || t === '' || t.includes(';'))) {
    throw badOption(18, name);
  }
  return v as string[];
}

/**
 * Checks the live polling options; `true` keeps the wasm's defaults.
 * @internal
 */
export function liveOptions(live: true | LiveOptions): true | LiveOptions {
  if (live === true) return true;
  if (!isObject(live)) throw badOption(19);
  const out: LiveOptions = {};
  for (const key of ['minIntervalMs', 'maxIntervalMs']) copyOption(live, out, key, isTimerMs, 9, 'live.');
  if (out.minIntervalMs !== undefined && out.maxIntervalMs !== undefined && out.maxIntervalMs < out.minIntervalMs) {
    throw badOption(20);
  }
  copyOption(live, out, 'longPollParam', (v) => typeof v === 'string' && v !== '', 21);
  return out;
}

/**
 * Checks the retry policy; the copy holds only the fields that were given (the wasm fills in the defaults).
 * @internal
 */
export function retryOptions(retry: false | RetryOptions): false | RetryOptions {
  if (retry === false) return false;
  if (!isObject(retry)) throw badOption(22);
  const out: RetryOptions = {};
  for (const key of ['initialMs', 'maxMs']) copyOption(retry, out, key, isTimerMs, 9, 'retry.');
  // A budget compared with the clock, not a timer: any u32.
  copyOption(retry, out, 'deadlineMs', (v) => isInteger(v, 0), 23);
  // Number.isFinite is false for anything but a number.
  copyOption(retry, out, 'multiplier', (v) => Number.isFinite(v) && (v as number) >= 1, 24);
  copyOption(retry, out, 'maxAttempts', (v) => v === Infinity || isInteger(v, 0), 25);
  return out;
}
