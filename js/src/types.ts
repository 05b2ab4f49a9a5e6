/**
 * The public types of feedpump, written by hand. The wasm bindings' generated declarations stay internal.
 * @packageDocumentation
 */
import type { FeedError, FeedErrorCode } from './errors.js';

/**
 * The headers {@link FeedOptions.requestHeaders} returns: a `Headers` object, a record or a list of name/value pairs
 * (what the DOM lib calls `HeadersInit`, named here so the types compile in projects without the DOM lib).
 *
 * @example
 * ```ts
 * const headers: RequestHeaders = { authorization: 'Bearer t0k3n' };
 * ```
 */
export type RequestHeaders = Headers | Record<string, string> | [string, string][];

/**
 * A `fetch` the feed uses instead of the global one. It is called with a `Request` and must answer with a `Response`
 * whose body is a `ReadableStream`; `typeof fetch` qualifies.
 *
 * @example
 * ```ts
 * const feed = openFeed(url, { partitionCount: 4, fetch: (request) => myFetch(request) });
 * ```
 */
export type FetchLike = (request: Request) => Promise<Response>;

/**
 * What `requestHeaders` is told about the request it is asked for.
 *
 * @example
 * ```ts
 * requestHeaders: async ({ refresh }) => ({ authorization: `Bearer ${await token({ renew: refresh })}` })
 * ```
 */
export interface RequestHeadersContext {
  /** `true` when the previous answer was a 401 and this is the one retry with renewed headers. */
  refresh: boolean;
}

/**
 * What every feed takes, whatever its protocol: the part {@link V1FeedOptions}, {@link V2FeedOptions} and
 * {@link AutoFeedOptions} share.
 */
export interface CommonFeedOptions {
  /**
   * Keep only some event types, as esdbclient's `filter_include` / `filter_exclude`: exact names, `{ prefix }` or
   * regular expressions, the type read from `data.type` (default), another `data` field, a header or a function. The
   * filter always runs in the client; on FeedAPI v2 a filter of exact names is also sent to the server
   * (`event-types` / `skip-event-types`) unless `eventTypes` / `skipEventTypes` are given. Checkpoints advance past
   * filtered events: a batch may come with fewer events (or none) but with its checkpoints.
   *
   * Fastest with the type in a `data` field and only names and prefixes (no RegExp): the reader then reads each type
   * while framing and drops the events the filter does not keep before they reach JavaScript (never decoded nor
   * parsed; still counted in {@link Feed.stats}). Events whose type it cannot read that way (an escape in it, string
   * `data`) are parsed and filtered as any other. Either way a dropped event's `data` is never parsed, so a malformed
   * one is not reported.
   *
   * @defaultValue every event
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, filter: { include: [{ prefix: 'Order.' }], exclude: [/Test$/] } });
   * ```
   */
  filter?: TypeFilter | undefined;

  /**
   * Where to resume, per partition: a cursor from an earlier checkpoint (`batch.checkpoints`, `feed.cursors()`),
   * `'_first'` (the start of the partition) or `'_last'` (around now). Keys are partition numbers `< partitionCount`;
   * partitions left out start at `'_first'`. A partition at `'_last'` gets a position only with its first checkpoint
   * (ZEH: `_last` is "an arbitrary point around now"): until then each request asks `'_last'` again, so on a v1 server
   * that answers it with no events and no checkpoint, what is appended between requests is not read. (FeedAPI v2
   * servers send a cursor in every answer.)
   *
   * @defaultValue `'_first'` for every partition
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 2, cursors: { 0: 'c-1942', 1: '_last' } });
   * ```
   */
  cursors?: { [partition: number]: string } | undefined;

  /**
   * A hint of how many events a page should hold (the FeedAPI's `pagesizehint`). The server may ignore it.
   *
   * @defaultValue not sent (the server decides)
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, pageSizeHint: 1000 });
   * ```
   */
  pageSizeHint?: number | undefined;

  /**
   * Aborts the request in flight, the response body and any wait. The iteration then throws a {@link FeedError} with
   * code `'aborted'` (its `cause` is the signal's reason).
   *
   * @defaultValue none
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, signal: AbortSignal.timeout(30_000) });
   * ```
   */
  signal?: AbortSignal | undefined;

  /**
   * A `fetch` to use instead of the global one (a proxy, a Worker's service binding, a test double).
   *
   * @defaultValue `globalThis.fetch`
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, fetch: (request) => env.FEED_SERVICE.fetch(request) });
   * ```
   */
  fetch?: FetchLike | undefined;

  /**
   * Called before every request for the headers to send, typically a fresh auth token. After a 401 it is called once
   * more with `refresh: true` and the request is retried. A throw or rejection ends the iteration with a
   * `'hook-failed'` {@link FeedError} (not retried; `cause` is what it threw). The headers are never logged nor put
   * into errors. In Node and Workers they go only to the feed's origin: a redirect to another origin is followed
   * without them. Browsers follow redirects under `fetch`'s own rules (it drops only `authorization` on a redirect to
   * another origin; docs/errors.md, "Where the `requestHeaders` headers go").
   *
   * @defaultValue none (no extra headers)
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, requestHeaders: async () => ({ authorization: `Bearer ${await getToken()}` }) });
   * ```
   */
  requestHeaders?: ((context: RequestHeadersContext) => RequestHeaders | Promise<RequestHeaders>) | undefined;

  /**
   * The longest NDJSON line accepted, in bytes. A longer line fails with code `'line-too-long'`. For the feed's
   * lines, above 256 MiB (a batch must fit in a JavaScript string) it acts as 256 MiB.
   *
   * @defaultValue `16777216` (16 MiB)
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, maxLineLength: 1 << 20 });
   * ```
   */
  maxLineLength?: number | undefined;

  /**
   * The most bytes of events (their `data` and `headers` JSON, as held: in parsed mode an escaped character outside
   * ASCII counts as its `\u` escapes, 6 or 12 bytes; and 28 bytes of bookkeeping per event, so that a page of tiny
   * events is bounded too) a page may hold back waiting for their partitions' checkpoints
   * (an event is handed out only once a checkpoint of its partition follows it). More fails with code `'no-progress'`,
   * naming the partition and line, instead of growing memory with the page. Events released before are delivered
   * first. Above 256 MiB (a batch must fit in a JavaScript string) it acts as 256 MiB.
   *
   * @defaultValue `67108864` (64 MiB)
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, maxHeldBytes: 8 << 20 });
   * ```
   */
  maxHeldBytes?: number | undefined;

  /**
   * How failed pages are retried (network errors, 5xx/429, a truncated or stalled body): exponential backoff with full
   * jitter, honouring `Retry-After`. A retry starts again from the last delivered checkpoint, so nothing is lost or
   * repeated. `false`: the first failure ends the iteration.
   *
   * FeedAPI v2: the same policy bounds the discovery requests (network errors, 5xx/408/429, a cut or stalled body)
   * and the `409 Conflict` answers that send the feed back to discovery: a server that keeps answering 409 ends the
   * iteration with that error after `maxAttempts`, and `onRetry` hears of each one.
   *
   * @defaultValue `{ initialMs: 100, maxMs: 30000, multiplier: 2, maxAttempts: 10 }`
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, retry: { maxAttempts: 3, deadlineMs: 10_000 } });
   * openFeed(url, { partitionCount: 4, retry: false });
   * ```
   */
  retry?: false | RetryOptions | undefined;

  /**
   * Told about every retry before its wait starts (for logging or metrics). What it throws is ignored.
   *
   * @defaultValue none
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, onRetry: ({ error, attempt, delayMs }) => log.warn(error.code, attempt, delayMs) });
   * ```
   */
  onRetry?: ((info: RetryInfo) => void) | undefined;

  /**
   * A feed with several base URLs ({@link FeedUrl}): how long a URL whose request failed (no response, a 5xx, a cut
   * or stalled body) is passed over, in ms. The same for the pages and the discovery of a FeedAPI v2 feed.
   *
   * @defaultValue `30000`
   * @example
   * ```ts
   * openFeed([primary, replica], { partitionCount: 4, failoverCooldownMs: 10_000 });
   * ```
   */
  failoverCooldownMs?: number | undefined;

  /**
   * A request whose response head does not come for this long after it was sent (a page's counted from the
   * `requestHeaders` hook's call), or a response body that brings no bytes for this long, fails with code
   * `'stalled-body'` (and is retried; the request is dropped). A FeedAPI v2 discovery answer, one small document,
   * must also come whole within it: a discovery body that drips a byte now and then is stalled too. `0` turns the
   * watchdog off.
   *
   * @defaultValue `60000`
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, idleTimeoutMs: 15_000 });
   * ```
   */
  idleTimeoutMs?: number | undefined;

  /**
   * Read only these partitions: only their `cursor<p>` is sent (ZEH reads the partitions whose cursors a request
   * names), so one worker per partition is possible. A line of another partition fails with `'bad-partition'`.
   *
   * FeedAPI v2 (and `auto` when it picks v2): only these partition ids (0..32767) are requested, plus the split
   * children of a listed one (`startsAfterPartition` it, or `cursorFromPartitions` naming it), which count as listed
   * (docs/feedapi-v2.md).
   *
   * @defaultValue every partition (v1: `0 .. partitionCount - 1`; v2: every listed one)
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, partitions: [2], cursors: { 2: saved } });
   * ```
   */
  partitions?: readonly number[] | undefined;

  /**
   * Keep polling after catching up instead of ending: the wait between polls starts at `minIntervalMs`, doubles on
   * every empty page up to `maxIntervalMs`, and drops back as soon as events flow (pages with events are followed at
   * once). `longPollParam` adds that query parameter (the wait in ms) to live polls for servers that hold a request
   * open until events arrive; servers that ignore it answer at once and nothing changes.
   *
   * @defaultValue `false` (the iteration ends once caught up); `true` means `{ minIntervalMs: 250, maxIntervalMs: 5000 }`
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, live: { minIntervalMs: 100, maxIntervalMs: 2_000 }, onCaughtUp: () => ready() });
   * ```
   */
  live?: boolean | LiveOptions | undefined;

  /**
   * Events already covered by a checkpoint wait at most this long for more before they are handed out while the body
   * is still open (slow or streaming servers). A full batch (64 KiB) or the end of a page hands them out at once.
   *
   * @defaultValue `10`
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, live: true, maxBatchDelayMs: 2 });
   * ```
   */
  maxBatchDelayMs?: number | undefined;

  /**
   * Called when a page brings no events: everything there is has been delivered (before a live feed waits, or before
   * a feed that is not live ends). A live feed with a `pageSizeHint` that fell behind is caught up again at the first
   * page short of the hint. Also a `batches()` item with `signal: 'caught-up'` (on every feed, live or not). A promise
   * it returns is awaited before the iteration goes on (`close()` and the `signal` end the wait, and the iteration);
   * what it throws, or that promise rejects with, ends the iteration, thrown as it is (not a {@link FeedError};
   * `consume()` rejects with `'hook-failed'` instead).
   *
   * @defaultValue none
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, live: true, onCaughtUp: () => console.log('live now') });
   * ```
   */
  onCaughtUp?: (() => void) | undefined;

  /**
   * Called when a live feed that had caught up falls behind again: a page is full (`pageSizeHint` events or more) or,
   * without a hint, two pages in a row bring events. Also a `batches()` item with `signal: 'fell-behind'`. As with
   * `onCaughtUp`, a promise it returns is awaited (until `close()` or the `signal`), and what it throws or rejects
   * with ends the iteration, as it is (`consume()`: `'hook-failed'`).
   *
   * @defaultValue none
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, live: true, pageSizeHint: 500, onFellBehind: () => console.warn('behind') });
   * ```
   */
  onFellBehind?: (() => void) | undefined;

  /**
   * Called when {@link Feed.state} changes, with the new state, the one before, and for `'retrying'` and `'failed'` the
   * error. What it throws (or the promise it returns rejects with) is ignored: it cannot stop the feed.
   *
   * @defaultValue none
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, live: true, onStateChange: (state, previous) => console.log(previous, '->', state) });
   * ```
   */
  onStateChange?: ((state: FeedState, previous: FeedState, error?: FeedError) => void) | undefined;

  /**
   * Called before each request the feed makes (pages, and v2 discovery), with its number, its URL with every query
   * value removed, its retry attempt and its `kind` (`'page'` or `'discovery'`). Never given a header. What it throws
   * is ignored.
   *
   * @defaultValue none
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, onRequest: ({ page, url, attempt }) => console.log(page, url, attempt) });
   * ```
   */
  onRequest?: ((info: RequestInfo) => void) | undefined;

  /**
   * Called once per request that got a response: when its body was read to the end (with the page's bytes, events
   * and checkpoints), or at once for a status that fails (5xx, 408, 429, 4xx; then retried or thrown). A request that
   * fails before a response, or whose body is cut or stalls, gets none: {@link FeedOptions.onRetry} (or the error
   * thrown) tells why. A v2 discovery request's answer comes with `kind: 'discovery'`: it is no page (count pages with
   * `kind === 'page'`). What it throws is ignored.
   *
   * @defaultValue none
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, onResponse: (r) => histogram.record(r.durationMs, { status: r.status }) });
   * ```
   */
  onResponse?: ((info: ResponseInfo) => void) | undefined;

  /**
   * Where the feed logs (quiet without one): `debug` per request and response, `info` per state change, `warn` per
   * retry, `error` when the feed fails. Each call is `(message, fields)` with structured fields; no header value and
   * no query value ever appears (URLs show the query's names only). `console` works as it is; any method may be left
   * out. What a method throws is ignored.
   *
   * @defaultValue none
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, logger: { warn: console.warn, error: console.error } });
   * ```
   */
  logger?: Logger | undefined;

  /**
   * `'parsed'`: each event's `data` is parsed (one `JSON.parse` per batch, of a text where characters outside ASCII
   * are `\u` escapes while few events have any, which engines decode faster). `'raw'`: events carry their `data` as
   * JSON text, as the server sent it, in `raw` and parse it only when `data` is read, which is much faster for
   * consumers that forward or filter events without looking inside most of them. In raw mode `data` and `headers` are
   * validated when they are read (a bad one throws a {@link FeedError} `'bad-line'` then).
   *
   * @defaultValue `'parsed'`
   * @example
   * ```ts
   * for await (const ev of openFeed(url, { partitionCount: 4, mode: 'raw' })) await queue.send(ev.raw ?? '');
   * ```
   */
  mode?: 'parsed' | 'raw' | undefined;
}

/**
 * Options of a ZeroEventHub (FeedAPI v1) feed: `partitionCount` is required; FeedAPI v2's `eventTypes` and
 * `skipEventTypes` are not taken.
 *
 * @example
 * ```ts
 * const options: V1FeedOptions = {
 *   partitionCount: 4,
 *   cursors: { 0: saved0, 1: saved1 }, // partitions 2 and 3 start at '_first'
 *   pageSizeHint: 500,
 *   headers: ['ce_id'],
 * };
 * ```
 */
export interface V1FeedOptions extends CommonFeedOptions {
  /**
   * FeedAPI v1: the number of partitions the server has (`n`): an integer `>= 1`. Partitions are `0 .. n-1`. Not
   * used by FeedAPI v2, whose partitions come from discovery.
   *
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4 });
   * ```
   */
  partitionCount: number;


  /**
   * The protocol: `'v1'` (ZeroEventHub: `partitionCount` required), `'v2'` (FeedAPI v2: partitions come from the
   * discovery call), or `'auto'`: a bare `GET` first, which a v1 server answers with 400 and a v2 server with its
   * discovery JSON (the SPEC's negotiation).
   *
   * @defaultValue `'v1'` when `partitionCount` is given, else `'auto'`
   * @example
   * ```ts
   * openFeed('https://service/myfeed', { protocol: 'v2', eventTypes: ['OrderCreated'] });
   * ```
   */
  protocol?: 'v1' | undefined;


  /**
   * The event header names to ask for, or `'_all'` for every header. Events then carry `headers`.
   *
   * @defaultValue none (events have no `headers`)
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, headers: ['ce_id', 'ce_type'] });
   * openFeed(url, { partitionCount: 4, headers: '_all' });
   * ```
   */
  headers?: readonly string[] | '_all' | undefined;

  /** FeedAPI v2 only. */
  eventTypes?: undefined;
  /** FeedAPI v2 only. */
  skipEventTypes?: undefined;
}

/**
 * Options of a FeedAPI v2 feed: its partitions come from discovery, so ZeroEventHub's `partitionCount` and `headers`
 * are not taken.
 *
 * @example
 * ```ts
 * const options: V2FeedOptions = { protocol: 'v2', eventTypes: ['OrderCreated'], live: true };
 * ```
 */
export interface V2FeedOptions extends CommonFeedOptions {
  /** FeedAPI v2. */
  protocol: 'v2';

  /**
   * FeedAPI v2: ask the server for only these event types (`event-types`). Servers may ignore it, so filter in the
   * client too if it matters (see the `include` filter).
   *
   * @defaultValue all types
   * @example
   * ```ts
   * openFeed(url, { protocol: 'v2', eventTypes: ['ewallet.preparedepositrequested'] });
   * ```
   */
  eventTypes?: readonly string[] | undefined;


  /**
   * FeedAPI v2: ask the server to leave out these event types (`skip-event-types`); not together with `eventTypes`.
   *
   * @defaultValue none
   * @example
   * ```ts
   * openFeed(url, { protocol: 'v2', skipEventTypes: ['internal.audit'] });
   * ```
   */
  skipEventTypes?: readonly string[] | undefined;

  /** ZeroEventHub (FeedAPI v1) only: v2 partitions come from discovery. */
  partitionCount?: undefined;
  /** ZeroEventHub (FeedAPI v1) only. */
  headers?: undefined;
}

/**
 * Options of a feed whose protocol a discovery call decides (`protocol: 'auto'`, or no protocol and no
 * `partitionCount`): a bare `GET` first, which a v1 server answers with 400 and a v2 server with its discovery JSON
 * (the SPEC's negotiation). `partitionCount` and `headers` apply if the server speaks v1, `eventTypes` and
 * `skipEventTypes` if it speaks v2; without `partitionCount` a v1 server is `bad-options`.
 *
 * @example
 * ```ts
 * const options: AutoFeedOptions = { partitionCount: 4, eventTypes: ['OrderCreated'], protocol: 'auto' };
 * ```
 */
export interface AutoFeedOptions extends CommonFeedOptions {
  /** A discovery call decides. @defaultValue `'auto'` when there is no `partitionCount` */
  protocol?: 'auto' | undefined;
  /**
   * FeedAPI v1: the number of partitions the server has (`n`): an integer `>= 1`. Partitions are `0 .. n-1`. Not
   * used by FeedAPI v2, whose partitions come from discovery.
   *
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4 });
   * ```
   */
  partitionCount?: number | undefined;


  /**
   * The event header names to ask for, or `'_all'` for every header. Events then carry `headers`.
   *
   * @defaultValue none (events have no `headers`)
   * @example
   * ```ts
   * openFeed(url, { partitionCount: 4, headers: ['ce_id', 'ce_type'] });
   * openFeed(url, { partitionCount: 4, headers: '_all' });
   * ```
   */
  headers?: readonly string[] | '_all' | undefined;


  /**
   * FeedAPI v2: ask the server for only these event types (`event-types`). Servers may ignore it, so filter in the
   * client too if it matters (see the `include` filter).
   *
   * @defaultValue all types
   * @example
   * ```ts
   * openFeed(url, { protocol: 'v2', eventTypes: ['ewallet.preparedepositrequested'] });
   * ```
   */
  eventTypes?: readonly string[] | undefined;


  /**
   * FeedAPI v2: ask the server to leave out these event types (`skip-event-types`); not together with `eventTypes`.
   *
   * @defaultValue none
   * @example
   * ```ts
   * openFeed(url, { protocol: 'v2', skipEventTypes: ['internal.audit'] });
   * ```
   */
  skipEventTypes?: readonly string[] | undefined;
}

/**
 * Options of {@link openFeed}, one shape per protocol, so that the compiler rejects a v1-only option on a v2 feed and
 * the reverse: {@link V1FeedOptions} (`partitionCount` required), {@link V2FeedOptions} (`protocol: 'v2'`) or
 * {@link AutoFeedOptions} (a discovery call decides). What all take is {@link CommonFeedOptions}.
 *
 * @example
 * ```ts
 * const options: FeedOptions = {
 *   partitionCount: 4,
 *   cursors: { 0: saved0, 1: saved1 }, // partitions 2 and 3 start at '_first'
 *   pageSizeHint: 500,
 *   headers: ['ce_id'],
 * };
 * ```
 */
export type FeedOptions = V1FeedOptions | V2FeedOptions | AutoFeedOptions;

/**
 * The three shapes of {@link FeedOptions} merged into one, with no check across options: for code that builds the
 * options at run time (from command-line flags, a config file) and leaves the checks to `openFeed`, which makes them
 * anyway (a `bad-options` {@link FeedError} names the first wrong one). Pass it as `options as FeedOptions`.
 *
 * @example
 * ```ts
 * const options: AnyFeedOptions = {};
 * if (flags.partitions) options.partitionCount = Number(flags.partitions);
 * if (flags.protocol) options.protocol = flags.protocol;
 * const feed = openFeed(url, options as FeedOptions);
 * ```
 */
export interface AnyFeedOptions extends Omit<AutoFeedOptions, 'protocol'> {
  /** As in {@link FeedOptions}. */
  protocol?: 'v1' | 'v2' | 'auto' | undefined;
}

/**
 * Live polling of {@link FeedOptions.live}.
 *
 * @example
 * ```ts
 * const live: LiveOptions = { minIntervalMs: 100, maxIntervalMs: 2_000, longPollParam: 'wait' };
 * ```
 */
export interface LiveOptions {
  /**
   * The shortest wait between polls once caught up, in ms.
   * @defaultValue `250`
   * @example
   * ```ts
   * { minIntervalMs: 100 }
   * ```
   */
  minIntervalMs?: number | undefined;
  /**
   * The longest wait between polls, in ms.
   * @defaultValue `5000`
   * @example
   * ```ts
   * { maxIntervalMs: 10_000 }
   * ```
   */
  maxIntervalMs?: number | undefined;
  /**
   * A query parameter that tells servers supporting long polls how long they may hold the request (ms).
   * @defaultValue none
   * @example
   * ```ts
   * { longPollParam: 'wait' }
   * ```
   */
  longPollParam?: string | undefined;
}

/**
 * A change of the feed's position: `'caught-up'` (a page brought no events) or `'fell-behind'` (a live feed that had
 * caught up gets full pages again).
 *
 * @example
 * ```ts
 * for await (const batch of feed.batches()) if (batch.signal === 'caught-up') showLive();
 * ```
 */
export type FeedSignal = 'caught-up' | 'fell-behind';

/**
 * Where a feed is ({@link Feed.state}):
 * - `'idle'`: not iterated yet;
 * - `'catching-up'`: reading pages that bring events;
 * - `'live'`: a live feed that caught up and polls for more;
 * - `'retrying'`: a request failed and is retried (until a page answers again);
 * - `'closed'`: the iteration ended without an error (caught up on a feed that is not live, `close()`, a `break`);
 * - `'failed'`: the iteration ended with an error ({@link FeedStats.lastErrorCode} is its code).
 *
 * @example
 * ```ts
 * if (feed.state === 'retrying') showBanner('reconnecting…');
 * ```
 */
export type FeedState = 'idle' | 'catching-up' | 'live' | 'retrying' | 'closed' | 'failed';

/**
 * What a feed has done so far ({@link Feed.stats}). A fresh object every call.
 *
 * @example
 * ```ts
 * const { events, bytes, retries, lastErrorCode } = feed.stats();
 * ```
 */
export interface FeedStats {
  /** Events read (before the client-side `filter`). */
  events: number;
  /** Body bytes of the pages read. */
  bytes: number;
  /** Pages read to the end of their body (a page that failed and was retried is counted in `retries`). */
  pages: number;
  /** Retries so far (every failure retried, of pages and of v2 discovery). */
  retries: number;
  /** The code of the latest failure, retried or not. */
  lastErrorCode: FeedErrorCode | undefined;
  /** Per partition: when its latest event was delivered (ms since the epoch). */
  lastEventAt: { [partition: number]: number };
}

/**
 * A feed's URL: one, or several base URLs of the same feed (a primary and its replicas, which serve the same events
 * with the same cursors). With several, pages go to the first URL that is healthy; after a request fails with no
 * response, a 5xx, or a cut or stalled body, the retry goes to the next URL from the same cursors, and the failed URL
 * is tried again after {@link FeedOptions.failoverCooldownMs}. `onRetry` tells which URL failed (without its query
 * values). A FeedAPI v2 feed (also `protocol: 'auto'` when the server speaks v2) rediscovers on the new URL: the
 * token and the partition list are that server's, the delivered cursors carry over. Cursors stored by `consume()` are
 * those of the first URL's feed, whichever URL serves.
 *
 * @example
 * ```ts
 * openFeed(['https://primary/feed/v1', 'https://replica/feed/v1'], { partitionCount: 4 });
 * openFeed(['https://primary/orders', 'https://replica/orders'], { protocol: 'v2', failoverCooldownMs: 10_000 });
 * ```
 */
export type FeedUrl = string | URL | readonly (string | URL)[];

/**
 * A logger for {@link FeedOptions.logger}: any of the four methods, each called with a message and structured fields.
 *
 * @example
 * ```ts
 * const logger: Logger = { warn: (message, fields) => pino.warn(fields, message) };
 * ```
 */
export interface Logger {
  /** Each request (`'request'`) and each response (`'response'`). */
  debug?(message: string, fields: LogFields): void;
  /** Each state change (`'state'`, with `state` and `previous`). */
  info?(message: string, fields: LogFields): void;
  /** Each retry (the error's message; `code`, `attempt`, `delayMs`). */
  warn?(message: string, fields: LogFields): void;
  /** The failure that ends the feed (its message; `code`). */
  error?(message: string, fields: LogFields): void;
}

/**
 * The structured fields of a log call: those of {@link ResponseInfo}, `state`/`previous`, `code`, `attempt`, `delayMs`.
 *
 * @example
 * ```ts
 * const show = (fields: LogFields) => JSON.stringify(fields);
 * ```
 */
export type LogFields = { [field: string]: string | number | undefined };

/**
 * The defaults of the options that bound a feed's reads, as {@link feedDefaults} returns them: the values applied when
 * an option is left out.
 *
 * @example
 * ```ts
 * const limits: FeedDefaults = { idleTimeoutMs: 60_000, maxLineLength: 16 * 2 ** 20 };
 * ```
 */
export interface FeedDefaults {
  /** The default of {@link CommonFeedOptions.idleTimeoutMs}, in ms (`60000`). */
  idleTimeoutMs: number;
  /**
   * The default of {@link CommonFeedOptions.maxLineLength}, in bytes (`16777216`, 16 MiB): the longest line, and the
   * most a FeedAPI v2 discovery answer may hold.
   */
  maxLineLength: number;
}

/**
 * What a request of a feed is, in {@link RequestInfo.kind}: `'page'`, a request for events (a page of a v1 feed, of a
 * v2 partition); `'discovery'`, a FeedAPI v2 discovery request (`GET <feed>`: `protocol: 'v2'` and `'auto'`, and again
 * after a `409`), whose answer is the feed's partition list, never events. A v1 server answers `protocol: 'auto'`'s
 * discovery with a `400`, as the FeedAPI SPEC's negotiation expects: no failure, the feed goes on as v1.
 *
 * @example
 * ```ts
 * const isPage = (kind: RequestKind) => kind === 'page';
 * ```
 */
export type RequestKind = 'page' | 'discovery';

/**
 * What {@link FeedOptions.onRequest} is told.
 *
 * @example
 * ```ts
 * const onRequest = ({ page, url, kind }: RequestInfo) => console.log(`#${page} GET ${url} (${kind})`);
 * ```
 */
export interface RequestInfo {
  /** The feed's request number, 1-based (every request: pages, retries, v2 discovery). */
  page: number;
  /** The URL, with user info, fragment and every query value removed (`…/feed?cursor0&cursor1`); a query key with no
   * value (`?TOKEN`), which may be a credential itself, is shown as `[hidden]`. */
  url: string;
  /** 0 for a first try, n for the n-th retry. */
  attempt: number;
  /**
   * What the request is: `'page'` (events) or `'discovery'` (FeedAPI v2's partition list); see {@link RequestKind}.
   * Only the answer of a `'page'` request counts as a page in `feed.stats().pages`.
   */
  kind: RequestKind;
}

/**
 * What {@link FeedOptions.onResponse} is told.
 *
 * @example
 * ```ts
 * const onResponse = (r: ResponseInfo) => console.log(`#${r.page} ${r.status} ${r.bytes} B ${r.events} events in ${r.durationMs} ms`);
 * ```
 */
export interface ResponseInfo extends RequestInfo {
  /** The HTTP status. */
  status: number;
  /** From the request to the end of its body (or to the failing status), in ms. */
  durationMs: number;
  /** Body bytes read. */
  bytes: number;
  /** Events read from the page. */
  events: number;
  /** Checkpoints read from the page. */
  checkpoints: number;
}

/**
 * How far behind a partition may be, from what the feed has delivered.
 *
 * @example
 * ```ts
 * const { msSinceLastEvent } = feed.lag()[0] ?? {};
 * ```
 */
export interface PartitionLag {
  /** When the partition's latest event was delivered (ms since the epoch), if any was. */
  lastEventAt: number | undefined;
  /** Milliseconds since then, if any event was delivered. */
  msSinceLastEvent: number | undefined;
  /** Events of the partition in the latest page that brought any events. */
  eventsInLastPage: number;
}

/**
 * The retry policy of {@link FeedOptions.retry}. Every field is optional; the defaults apply to the ones left out.
 *
 * @example
 * ```ts
 * const retry: RetryOptions = { initialMs: 250, maxMs: 10_000, maxAttempts: Infinity, deadlineMs: 60_000 };
 * ```
 */
export interface RetryOptions {
  /**
   * The first backoff ceiling, in ms.
   * @defaultValue `100`
   * @example
   * ```ts
   * { initialMs: 500 }
   * ```
   */
  initialMs?: number | undefined;
  /**
   * The largest backoff ceiling, in ms. It caps the server's `Retry-After` too (a `Retry-After` of a day waits
   * `maxMs`), and no wait exceeds 2^31-1 ms (what timers accept).
   * @defaultValue `30000`
   * @example
   * ```ts
   * { maxMs: 5_000 }
   * ```
   */
  maxMs?: number | undefined;
  /**
   * The factor the ceiling grows by per attempt (`>= 1`).
   * @defaultValue `2`
   * @example
   * ```ts
   * { multiplier: 1.5 }
   * ```
   */
  multiplier?: number | undefined;
  /**
   * Attempts in a row before giving up (`Infinity`: never).
   * @defaultValue `10`
   * @example
   * ```ts
   * { maxAttempts: 3 }
   * ```
   */
  maxAttempts?: number | undefined;
  /**
   * Give up once retrying has lasted this long, in ms.
   * @defaultValue none
   * @example
   * ```ts
   * { deadlineMs: 60_000 }
   * ```
   */
  deadlineMs?: number | undefined;
}

/**
 * What {@link FeedOptions.onRetry} is told.
 *
 * @example
 * ```ts
 * const onRetry = (info: RetryInfo) => console.warn(`retry ${info.attempt} in ${info.delayMs} ms: ${info.error.message}`);
 * ```
 */
export interface RetryInfo {
  /** The failure being retried. */
  error: FeedError;
  /** 1 for the first retry, then 2, … */
  attempt: number;
  /** The wait before the retry, in ms. */
  delayMs: number;
  /** The URL of the request that failed, without query values (with replicas: which one failed). */
  url?: string | undefined;
}

/**
 * One event of the feed.
 *
 * @typeParam T - the type of `data`; not checked at run time.
 * @example
 * ```ts
 * for await (const event of feed) console.log(event.partition, event.data, event.headers?.ce_id);
 * ```
 */
export interface FeedEvent<T = unknown> {
  /** The partition the event belongs to. */
  partition: number;
  /** The event's `data`, parsed from JSON. */
  data: T;
  /** The headers asked for with the `headers` option, when the server sent any. */
  headers?: Record<string, string> | undefined;
  /** In raw mode ({@link FeedOptions.mode}): the `data` exactly as the server sent it, as JSON text. */
  raw?: string | undefined;
}

/**
 * A checkpoint: resuming `partition` from `cursor` continues right after every event before it in that partition.
 *
 * @example
 * ```ts
 * for (const { partition, cursor } of batch.checkpoints) saved[partition] = cursor;
 * ```
 */
export interface Checkpoint {
  /** The partition the cursor belongs to. */
  partition: number;
  /** An opaque cursor string to pass back in `cursors`. */
  cursor: string;
}

/**
 * A committable batch: every event in it is covered by a checkpoint of its partition in `checkpoints`. Store the
 * batch's effects and its checkpoints together and a restart neither loses nor repeats an event.
 *
 * @typeParam T - the type of the events' `data`.
 * @example
 * ```ts
 * for await (const batch of feed.batches()) {
 *   await myDb.transaction(async (tx) => {
 *     for (const event of batch.events) await apply(tx, event);
 *     for (const c of batch.checkpoints) await tx.saveCursor(c.partition, c.cursor);
 *   });
 * }
 * ```
 */
export interface Batch<T = unknown> {
  /** The events, in feed order (per partition). */
  events: FeedEvent<T>[];
  /** The checkpoints that cover `events`, in order: the new cursors of their partitions. */
  checkpoints: Checkpoint[];
  /**
   * Set on the batch that ends a page when the feed's position changed (see {@link FeedSignal}). A batch may carry
   * only a signal, with no events and no checkpoints: the `'caught-up'` one comes on every feed (before a live feed
   * waits, and before a feed that is not live ends), the `'fell-behind'` one on live feeds.
   */
  signal?: FeedSignal;
}

/**
 * What {@link Feed.events} returns: an async iterator of events that is also async-iterable (`for await`). Written
 * as its own interface rather than `AsyncIterableIterator<FeedEvent<T>, void, undefined>`, whose three type
 * parameters need TypeScript 5.6, so the package's types compile with TypeScript 5.4 too.
 *
 * @example
 * ```ts
 * const it = feed.events();
 * const first = await it.next(); // { value: FeedEvent, done: false } or { value: undefined, done: true }
 * ```
 */
export interface FeedEventIterator<T = unknown> extends AsyncIterator<FeedEvent<T>, void, undefined> {
  /** Returns the iterator itself, so it can be used in `for await`. */
  [Symbol.asyncIterator](): FeedEventIterator<T>;
}

/**
 * An open feed, made by {@link openFeed}. Iterate it once, with `batches()`, `events()` or `for await`; the iteration
 * ends when the feed is caught up (a page brings no events) or when `close()` is called. Leaving the loop early
 * (`break`, `throw`, `return`) releases the request, the body and the wasm reader: the iterator's `return()` closes
 * the feed, even while a `next()` waits (which then gives `done`).
 *
 * @typeParam T - the type of the events' `data`.
 * @example
 * ```ts
 * const feed = openFeed<Order>(url, { partitionCount: 4, cursors: await loadCursors() });
 * for await (const event of feed) handle(event.data);
 * await saveCursors(feed.cursors());
 * ```
 */
export interface Feed<T = unknown> extends AsyncIterable<FeedEvent<T>> {
  /**
   * The feed as committable batches (see {@link Batch}). A feed can be iterated only once.
   *
   * @throws {@link FeedError} on failure; events released before the failure are delivered first.
   * @example
   * ```ts
   * for await (const { events, checkpoints } of feed.batches()) await store(events, checkpoints);
   * ```
   */
  batches(): AsyncGenerator<Batch<T>, void, undefined>;

  /**
   * The feed event by event. A feed can be iterated only once.
   *
   * @throws {@link FeedError} on failure.
   * @example
   * ```ts
   * for await (const event of feed.events()) console.log(event.data);
   * ```
   */
  events(): FeedEventIterator<T>;

  /**
   * Same as {@link Feed.events}: `for await (const event of feed)`.
   *
   * @example
   * ```ts
   * for await (const event of feed) console.log(event.partition);
   * ```
   */
  [Symbol.asyncIterator](): FeedEventIterator<T>;

  /**
   * The cursor of every partition as far as events were **delivered**: the starting cursors, advanced by the
   * checkpoints of every batch the consumer has finished with, that is, came back for more after (or the events of
   * which it has all taken and come back after). A batch the loop was left in (`break`, `throw`) does not count, so
   * resuming from these cursors never skips an event; it may repeat that last batch. A fresh object every call.
   *
   * @example
   * ```ts
   * for await (const event of feed) handle(event);
   * localStorage.setItem('cursors', JSON.stringify(feed.cursors()));
   * ```
   */
  cursors(): { [partition: number]: string };

  /**
   * Per partition read: when its latest event was delivered and how many the latest page brought.
   *
   * @example
   * ```ts
   * for (const [partition, lag] of Object.entries(feed.lag())) metrics.gauge(`lag.${partition}`, lag.msSinceLastEvent ?? -1);
   * ```
   */
  lag(): { [partition: number]: PartitionLag };

  /**
   * Where the feed is (see {@link FeedState}); {@link FeedOptions.onStateChange} hears of each change.
   *
   * @example
   * ```ts
   * const feed = openFeed(url, { partitionCount: 4 });
   * console.log(feed.state); // 'idle'
   * ```
   */
  readonly state: FeedState;

  /**
   * Counters of what the feed has read: events, bytes, pages, retries, the latest error code, and the time of the
   * latest event per partition.
   *
   * @example
   * ```ts
   * setInterval(() => console.log(JSON.stringify(feed.stats())), 10_000);
   * ```
   */
  stats(): FeedStats;

  /**
   * Stops the feed: aborts the request in flight, cancels the body, frees the wasm reader. A running iteration ends
   * without an error. Idempotent; safe at any time, also before or after iterating.
   *
   * @example
   * ```ts
   * setTimeout(() => feed.close(), 10_000);
   * for await (const event of feed) handle(event); // ends when closed
   * ```
   */
  close(): void;
}

/**
 * One event-type pattern:
 * - a `string` matches that exact type (a `*` in it is an ordinary character, never a wildcard);
 * - `{ prefix }` matches every type that starts with `prefix` (`{ prefix: 'Payment.' }`);
 * - a `RegExp` is tested against the type (its `g` / `y` flags are dropped, so matching keeps no state).
 *
 * With `ignoreCase: true` ({@link TypeFilter}) strings and prefixes compare case-insensitively; a RegExp follows
 * only its own `i` flag.
 */
export type TypePattern =
  | string
  | {
      /** Matches every type that starts with it. */
      readonly prefix: string;
    }
  | RegExp;

/**
 * Where an event's type is read from:
 * - `{ field: 'type' }` / `{ field: 'meta.type' }` / `{ field: ['meta', 'type'] }`: a path into `data`. When `data` is
 *   a string holding a JSON object (FeedAPI v2 allows string `data`), the path is looked up in its parsed form.
 * - `{ header: 'ce_type' }`: an event header (exact name, as the server sent it).
 * - a function `(event) => string | undefined`.
 *
 * A value that is not a string means "no type".
 */
export type TypeSource =
  | {
      /** A path into `data`: `'meta.type'` or `['meta', 'type']`. */
      readonly field: string | readonly string[];
    }
  | {
      /** An event header's exact name. */
      readonly header: string;
    }
  | ((event: FeedEvent) => string | undefined);

/**
 * An event-type filter, as esdbclient's `filter_include` / `filter_exclude`.
 *
 * An event passes when its type matches **some** `include` pattern (or `include` is absent or empty) **and no**
 * `exclude` pattern. An event without a type passes only when there is no `include` list (`exclude` cannot match it).
 *
 * @example
 * ```ts
 * const keep = compileTypeFilter({ include: ['OrderCreated', { prefix: 'Payment.' }], exclude: [/Test$/] });
 * for await (const ev of feed) if (keep(ev)) handle(ev);
 * ```
 */
export interface TypeFilter {
  /** Keep only events whose type matches one of these. */
  include?: TypePattern | readonly TypePattern[] | undefined;
  /** Drop events whose type matches one of these. */
  exclude?: TypePattern | readonly TypePattern[] | undefined;
  /** Where the type comes from. @defaultValue `{ field: 'type' }` */
  typeFrom?: TypeSource | undefined;
  /** Compare strings and prefixes case-insensitively (FeedAPI v2 servers compare names that way). @defaultValue `false` */
  ignoreCase?: boolean | undefined;
}
