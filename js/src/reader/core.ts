/**
 * Internal: the numbers of the boundary with the synchronous wasm core (src/core.rs, `Core`): what `poll()` and
 * `handleChunk()` return, and the kinds of failure `handleError()` takes. One home on this side; src/core.rs's `code`
 * module is the other end of the same contract (docs/wasm-contract.md).
 * @internal
 * @packageDocumentation
 */

/** Read the body's next chunk (or keep awaiting the read in flight) under the idle watchdog. */
export const READ = 0;
/** The same, while released events wait: under the flush deadline of `pollTimeout()`. */
export const READ_FLUSH = 1;
/** Take the batch with `batch()` and hand it out. */
export const BATCH = 2;
/** The feed is done (caught up, not live, everything handed out). */
export const DONE = 3;
/** The feed failed: `error()` is its error (again on every later poll). */
export const FAIL = 4;
/** Tell the caller of a retry: `error()`, `attempt`, `delayMs`; then poll again. */
export const RETRY = 5;
/** Cancel the body and drop a read in flight. */
export const CANCEL = 6;
/** GET `url()`. */
export const FETCH = 7;
/** GET `url()` with fresh credentials (after a 401). */
export const FETCH_REFRESH = 8;
/** Nothing to do before `pollTimeout()`. */
export const WAIT = 9;

/** `handleError` kinds: the reader was aborted. */
export const ABORTED = 0;
/** A body read failed (the connection was cut). */
export const CUT = 1;
/** The request failed before a response. */
export const NETWORK = 2;
/** The caller's code or objects failed (their hook threw, their `fetch` gave no response, their body is not bytes). */
export const CALLER = 3;
