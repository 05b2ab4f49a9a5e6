/**
 * `FeedError`: every failure of a feed, with a stable `code` to switch on and the place it happened.
 * @packageDocumentation
 */

/**
 * The stable identity of a {@link FeedError}: a kebab-case string literal.
 *
 * - `'http-status'`: a non-2xx answer; `status` and a bounded `bodySnippet` are set.
 * - `'bad-line'`: a line that is not a JSON object of the protocol's shape, or `data` that `JSON.parse` rejects.
 * - `'bad-partition'`: `partition` missing, not a non-negative integer, `>= partitionCount`, or not among `partitions`.
 * - `'bad-cursor'`: a checkpoint's `cursor` that is not a non-empty string.
 * - `'line-too-long'`: a line longer than `maxLineLength`.
 * - `'invalid-utf8'`: a line that is not UTF-8 (`offset` is the bad byte).
 * - `'truncated-body'`: the body ended inside a line, or the connection was cut.
 * - `'stalled-body'`: the response brought no bytes for too long (no head after the request, or no more body).
 * - `'network'`: the request failed before a response arrived (also: the `fetch` you passed threw or rejected).
 * - `'hook-failed'`: the `requestHeaders` hook you passed threw or rejected, or a `consume()` policy function
 *   (`onMissingCursors`, `onHandlerError`), callback (`onRole`, `onFeed`, `onCommit`) or feed hook of its source
 *   (`onCaughtUp`, `onFellBehind`, a filter's `typeFrom`); `cause` is what it threw. Not retried.
 * - `'aborted'`: the `signal` fired.
 * - `'no-progress'`: a page had events but no checkpoint after any of them, or held back more than `maxHeldBytes` of
 *   events waiting for their checkpoints.
 * - `'cursor-regressed'`: a checkpoint moved a partition back to a cursor it had passed, with or without events
 *   between (resuming from it would deliver events again).
 * - `'bad-discovery'`: a FeedAPI v2 discovery answer that is not of the SPEC's shape.
 * - `'bad-header'`: a `requestHeaders` value (or name) that `fetch` refuses; the message names the header, never its
 *   value.
 * - `'bad-options'`: invalid options, or a feed iterated twice.
 * - `'wasm-load-failed'`: the WebAssembly module could not be loaded or instantiated (a missing or wrong `.wasm` file,
 *   an HTML page served in its place); thrown at the first use of a feed, never at import; `cause` is the original.
 * - `'closed'`: the reader cannot continue.
 * - `'store-failed'`: a cursor store could not read or commit (an IndexedDB transaction aborted, a Durable Object
 *   storage error, a SQL store's database error or a handler past its `handlerTimeoutMs`); nothing of the batch is
 *   committed (a D1 batch whose answer was lost and whose row could not be read back says its outcome is unknown).
 * - `'cursors-missing'`: `consume()` found no stored cursors and its policy is `'throw'`, or cursors of another feed
 *   and no `onMissingCursors` function chose otherwise.
 * - `'handler-failed'`: the `consume()` handler threw and the policy stopped; nothing of that batch is committed
 *   (`cause` is what the handler threw).
 * - `'cursor-conflict'`: another consumer of the same feed key committed since this one read the cursors (two tabs,
 *   two runs in one Durable Object); nothing of the batch is committed.
 *
 * @example
 * ```ts
 * if (isFeedError(e) && e.code === 'http-status' && e.status === 401) await login();
 * ```
 */
export type FeedErrorCode = (typeof FEED_ERROR_CODES)[number];

/**
 * Every {@link FeedErrorCode}, in the order of its documentation: the one list (the type, `isFeedError` and the test
 * that the wasm's codes are among them all derive from it).
 *
 * @example
 * ```ts
 * const counts = Object.fromEntries(FEED_ERROR_CODES.map((code) => [code, 0]));
 * ```
 */
export const FEED_ERROR_CODES = [
  'http-status',
  'bad-line',
  'bad-partition',
  'bad-cursor',
  'line-too-long',
  'invalid-utf8',
  'truncated-body',
  'stalled-body',
  'network',
  'aborted',
  'no-progress',
  'cursor-regressed',
  'bad-discovery',
  'bad-header',
  'hook-failed',
  'bad-options',
  'wasm-load-failed',
  'closed',
  'store-failed',
  'cursors-missing',
  'handler-failed',
  'cursor-conflict',
] as const;

const CODES: ReadonlySet<string> = new Set(FEED_ERROR_CODES);

/**
 * Where and why a {@link FeedError} happened. Every field is optional; `cause` is the original error, if any.
 *
 * @example
 * ```ts
 * new FeedError('bad-line', 'data is not JSON', { page: 3, line: 17, offset: 2048, partition: 1 });
 * ```
 */
export interface FeedErrorDetails {
  /** The HTTP status of a `'http-status'` error. */
  status?: number | undefined;
  /** The start of the error body (at most 512 bytes) of a `'http-status'` error. */
  bodySnippet?: string | undefined;
  /** The partition of the line at fault. */
  partition?: number | undefined;
  /** The 1-based line number in the page body. */
  line?: number | undefined;
  /** The byte offset in the page body (of the line, or of the bad byte for `'invalid-utf8'`). */
  offset?: number | undefined;
  /** The page (HTTP request) number of the feed. */
  page?: number | undefined;
  /** The original error. */
  cause?: unknown;
}

/** The location fields of {@link FeedErrorDetails} (all but `cause`), copied onto an error when given. */
const DETAILS = ['status', 'bodySnippet', 'partition', 'line', 'offset', 'page'] as const;

/**
 * The error every feed failure is thrown as. Switch on `code`, which is stable; the message is for people and names
 * what and where (page, line, byte offset, partition). The original error, if any, is `cause`.
 *
 * @example
 * ```ts
 * try {
 *   for await (const event of feed) handle(event);
 * } catch (e) {
 *   if (!(e instanceof FeedError)) throw e;
 *   console.error(e.code, e.message, e.page, e.line);
 * }
 * ```
 */
export class FeedError extends Error {
  /** The stable identity of the error. */
  readonly code: FeedErrorCode;
  // The optional fields are `declare`d, so that only the known ones become own properties (class fields would
  // define every one, as `undefined`) and a logged error shows no noise.
  /** The HTTP status, for `'http-status'`. */
  declare readonly status?: number;
  /** The start of the error body (at most 512 bytes), for `'http-status'`. */
  declare readonly bodySnippet?: string;
  /** The partition of the line at fault. */
  declare readonly partition?: number;
  /** The 1-based line number in the page body. */
  declare readonly line?: number;
  /** The byte offset in the page body. */
  declare readonly offset?: number;
  /** The page (HTTP request) number. */
  declare readonly page?: number;

  /**
   * @param code - the stable code
   * @param message - a message for people, naming what and where; the error's `message` is it after `code: ` (added
   *   unless it is there already)
   * @param details - location fields and the original error as `cause`
   */
  constructor(code: FeedErrorCode, message: string, details: FeedErrorDetails = {}) {
    super(message.startsWith(`${code}: `) ? message : `${code}: ${message}`, 'cause' in details ? { cause: details.cause } : undefined);
    this.name = 'FeedError';
    this.code = code;
    for (const key of DETAILS) if (details[key] !== undefined) (this as Record<string, unknown>)[key] = details[key];
  }
}

/**
 * Whether `e` is a {@link FeedError}, optionally of one `code`. Unlike `instanceof`, it also recognises a FeedError
 * from another copy of the package (two bundles, a realm boundary) by its `name` and `code`.
 *
 * @example
 * ```ts
 * catch (e) { if (isFeedError(e, 'aborted')) return; throw e; }
 * ```
 */
export function isFeedError(e: unknown, code?: FeedErrorCode): e is FeedError {
  if (e instanceof FeedError) return code === undefined || e.code === code;
  if (!(e instanceof Error) || e.name !== 'FeedError') return false;
  const found: unknown = (e as Error & { code?: unknown }).code;
  return typeof found === 'string' && CODES.has(found) && (code === undefined || found === code);
}


/**
 * Internal: turns whatever a feed operation threw into a {@link FeedError}.
 *
 * - A FeedError of this package passes as it is.
 * - The wasm reader's errors (an `Error` named `'FeedError'` with a known `code`) become a FeedError with the same
 *   message, code and fields; its `cause` is kept.
 * - Anything else (a runtime error: the caller's `fetch` and hooks are wrapped before this) becomes code
 *   `'network'`, "the request failed", with the original as `cause`: nothing is lost, and callers only ever see
 *   FeedError.
 *
 * @internal
 */
export function toFeedError(e: unknown): FeedError {
  if (e instanceof FeedError) return e;
  if (isFeedError(e)) {
    // The fields of their types only (a number field is finite).
    const details: Record<string, unknown> = {};
    for (const key of DETAILS) {
      const v: unknown = e[key];
      if (key === 'bodySnippet' ? typeof v === 'string' : typeof v === 'number' && Number.isFinite(v)) details[key] = v;
    }
    if ('cause' in e) details.cause = e.cause;
    return new FeedError(e.code, e.message, details as FeedErrorDetails);
  }
  return new FeedError('network', `the request failed: ${messageOf(e)}`, { cause: e });
}

/**
 * What a thrown value says: an `Error`'s message, anything else as a string.
 * @internal
 */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/**
 * Why `JSON.parse` refused a value, without the text it refused: V8 and JavaScriptCore quote it (`Unexpected token
 * 's', "{"token":s3cr3t}" is not valid JSON`), and event data may be sensitive, so the quoted part becomes `…`. A
 * `bad-line` error carries this and never the parser's own error.
 * @internal
 */
export function parseWhy(e: unknown): string {
  return messageOf(e).replace(/".*"/s, '…');
}
