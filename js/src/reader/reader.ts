/**
 * Internal: `FeedReader`, the I/O shell over the synchronous wasm core (src/core.rs, `Core`, over the core's
 * `Driver`): one committable batch per `next()`.
 *
 * The core decides everything (what to fetch, when a batch is handed out, when a body is stalled, what a failure is
 * and whether it is retried, the 401 resent once, the error held back behind the last batch): this shell only fetches
 * the URL it is given, reads the body's chunks, sets the timer the core asks for, calls the caller's code and hands
 * the core's outputs on. See core/src/driver.rs and docs/wasm-contract.md.
 *
 * The read loop (`next()` starts it) awaits one thing at a time: a read, a request, a backoff. A read is awaited
 * alone (one `await`, no race, no timer of its own); one timer runs beside the reads: set once per page at the idle
 * watchdog's deadline and re-armed lazily (when it fires early because reads came since, it sleeps again for what is
 * left), and set sooner while released events wait for their flush deadline. When the core's deadline is reached
 * during a read, the timer tells the core and, if a `next()` waits, polls it: a batch is handed out while the read
 * stays in flight (the loop feeds its chunk later: nothing is lost, and the next read awaits it rather than reading
 * again), and a failure (a stalled body) abandons the read. An abort or `close()` abandons whatever the loop awaits
 * the same way: every await ends on them.
 *
 * Abandoning is a generation count: a loop whose generation is not current does nothing after its await. Every call
 * into the core returns before any caller code runs, so no state is ever half-updated when the caller's code (a
 * hook, their `fetch`, a getter of their body, an abort listener) re-enters with `close()` or `next()`.
 *
 * The reader is a closure over its state (not a class with private fields): the same code, a smaller bundle.
 * @internal
 * @packageDocumentation
 */
import { MAX_TIMER_MS, sleep, type ReaderOptions } from '../options.js';
import { kindOf, read as prop, type Transport } from '../transport.js';
import { call } from '../observe.js';
import { Core, type RawBatch } from '../wasm/feedpump.js';
import { bad, cancelBody, chunkOf, noop, openBody, recycle, startRead, type Body } from './body.js';
import * as C from './core.js';

/** The options of a reader: the config fields the core reads, and the calls out (the wrapper passes its transport,
 * js/src/transport.ts, which makes the `network` and `bad-header` errors). */
export type FeedReaderOptions = Omit<ReaderOptions, 'fetch' | 'requestHeaders'> & {
  fetch?: Transport['fetch'] | undefined;
  requestHeaders?: Transport['requestHeaders'] | undefined;
  hide?: Transport['hide'] | undefined;
};

/** Internal: the wrapper's handle on one feed. See docs/wasm-contract.md. */
export interface FeedReader {
  /** The next committable batch, or `undefined` once caught up or closed. A failure is thrown again by every later
   * call; a call while one is pending is `bad-options`. */
  next(): Promise<RawBatch | undefined>;
  /** Aborts the request in flight and cancels the body. Idempotent, and safe from anywhere: from the caller's
   * callbacks, their `fetch` and their abort listeners, while a `next()` is in flight (it then gives `undefined`). */
  close(): void;
  /** Closes the reader and frees the core's memory. */
  free(): void;
}

/** A loop that is not current any more stops after its await. */
const ABANDONED = -2;
/** "Poll the core" (no action in hand). */
const POLL = -1;

const now = Date.now;

/** The decoders of the batch texts, whose bytes the core checked (src/convert.rs): UTF-8, and for a text that is
 * all ASCII (raw mode's always) the one an entry point chose (see {@link decodeAsciiAsLatin1}). */
const utf8 = new TextDecoder();
let ascii = utf8;

/**
 * Decodes the batch texts that are all ASCII with a `latin1` decoder (exact for ASCII), not the UTF-8 one: for the
 * browsers (the web entry point), as Chromium's is the faster (raw reading in memory: 4-6% less time). Node's and
 * workerd's UTF-8 decoders are the faster there (workerd's `latin1` one took 20-25% more: bench/NOTES.md).
 */
export function decodeAsciiAsLatin1(): void {
  try {
    ascii = new TextDecoder('latin1');
  } catch {
    // a runtime without it keeps the UTF-8 decoder (as exact; an entry point's import must not fail)
  }
}

/** The listener on the caller's signal: made out here, so that it holds its reader's abort only weakly (the signal
 * may outlive the reader; the reader's `close()` holds its abort). */
function listener(ref: WeakRef<(reason: unknown) => void>, signal: AbortSignal): () => void {
  return () => ref.deref()?.(signal.reason);
}

/** Makes a reader (`new FeedReader(url, options)`): the core checks the options; no request is made before the first
 * `next()`. Throws the core's `bad-options` error. */
export const FeedReader = function FeedReader(url: string, options: FeedReaderOptions): FeedReader {
  const core = new Core(url, options, options.requestHeaders !== undefined, ascii, utf8);
  const { fetch, requestHeaders } = options;
  /** The reader's own controller for its whole life: `close()` or the caller's signal aborts it. Never handed to a
   * request: each request has its own (a runtime that keeps a listener on a request's signal until the request is
   * collected, undici, would pile them on one signal). */
  const controller = new AbortController();
  let request: AbortController | undefined;
  /** The caller's signal and our listener on it, until released. */
  let signal = options.signal;
  let onAbort: (() => void) | undefined;
  let body: Body | undefined;
  /** The page of the body being read (for its errors). */
  let page = 0;
  /** The pending `next()`. */
  let resolve: ((batch: RawBatch | undefined) => void) | undefined;
  let reject: ((error: unknown) => void) | undefined;
  /** The current loop's generation; a loop is running (`active`), and awaiting a read or a response under the
   * watchdog (`reading`). */
  let gen = 0;
  let active = false;
  let reading = false;
  /** What the core said while no `next()` waited (a batch it holds, a retry to report): the next loop starts there. */
  let pending = POLL;
  /** The one timer of the reads, when it fires, and whether it was set by the flush deadline of released events. */
  let timer: ReturnType<typeof setTimeout> | undefined;
  let timerAt = 0;
  let flush = false;
  let closed = false;
  let failed = false;
  /** The error that ended the reader, thrown again by later `next()` calls. */
  let error: unknown;
  /** The JS value of the failure the core reports next: the error itself (network, the caller's) or its cause. */
  let cause: unknown;
  /** The status text of the last response, for an `http-status` message. */
  let statusText: unknown;
  let freed = false;
  /** Reads so far: every 1024th waits for a macrotask first. */
  let reads = 0;

  /** The loop in flight (if any) stops at its next step; a request in flight is dropped (one still awaited would
   * never be read: a server that never answers would keep it open). */
  function abandon(): void {
    gen++;
    active = reading = false;
    request?.abort();
  }

  function start(action: number): void {
    // An abort is reported before anything but a batch the core already gave.
    if (controller.signal.aborted && action !== C.BATCH) action = POLL;
    pending = POLL;
    active = true;
    void run(++gen, action);
  }

  /** Aborts the reader and the request in flight (runs every abort listener, the caller's among them), and ends
   * whatever the loop awaits: a waiting `next()` gets the `aborted` error. */
  function abort(reason: unknown): void {
    if (!controller.signal.aborted) controller.abort(reason);
    request?.abort(controller.signal.reason);
    if (closed || failed || !active) return;
    abandon();
    if (resolve !== undefined) start(POLL);
  }

  /** Polls the core while the loop awaits a read (a `next()` came, or the timer fired): a batch is handed out and the
   * read stays in flight; anything else (a stalled body) abandons the read and starts a loop there. */
  function poll(): void {
    try {
      const action = core.poll(now());
      if (action === C.BATCH) deliver(core.batch());
      else if (action === C.READ || action === C.READ_FLUSH) arm(action);
      else {
        abandon();
        start(action);
      }
    } catch (e) {
      // As in `run`: only a defect lands here (`batch()` throws only if a decoder does); from the timer's callback
      // it would be an uncaught exception.
      fail(e);
    }
  }

  /** The timer a read runs under: the flush deadline while released events wait (`READ_FLUSH`), else the idle
   * watchdog. Set once per page and re-armed lazily, set sooner for a flush deadline: a read costs no timer, and no
   * wasm call once the timer is set. */
  function arm(action: number): void {
    const flushing = action === C.READ_FLUSH;
    if (timer !== undefined && (!flushing || flush)) return;
    const at = core.pollTimeout();
    flush = flushing;
    if (at < 0 || (timer !== undefined && timerAt <= at)) return;
    clearTimeout(timer);
    set(at);
  }

  function set(at: number): void {
    timerAt = at;
    timer = setTimeout(fire, Math.min(Math.max(0, at - now()), MAX_TIMER_MS));
  }

  /** The timer fired: if a read is in flight and the core's deadline is reached, tell the core (and hand out what it
   * gives, if a `next()` waits); if not yet (reads came since, or the timer fired early), sleep again until it. */
  function fire(): void {
    timer = undefined;
    flush = false;
    if (!reading) return; // the next read arms what it needs
    const at = core.pollTimeout();
    const t = now();
    // (No deadline any more, at < 0: handleTimeout does nothing.)
    if (t < at) return set(at);
    core.handleTimeout(t);
    if (resolve !== undefined) poll();
  }

  function clearTimer(): void {
    clearTimeout(timer);
    timer = undefined;
    flush = false;
  }

  /** Hands a batch (or the end) to the pending `next()`; a final failure (its error may still wait behind this
   * batch) releases everything now. */
  function deliver(batch: RawBatch | undefined): void {
    const done = resolve;
    resolve = reject = undefined;
    // What was released is handed out: a timer set by its flush deadline re-arms for the watchdog when it fires.
    flush = false;
    if (core.hasFailed()) release();
    done?.(batch);
  }

  function fail(e: unknown): void {
    failed = true;
    error = e;
    abandon();
    const done = reject;
    resolve = reject = undefined;
    release();
    done?.(e);
  }

  /** Releases the body, the timer and the listener on the caller's signal. */
  function release(): void {
    dropBody();
    if (onAbort !== undefined) signal?.removeEventListener('abort', onAbort);
    signal = onAbort = undefined;
  }

  function dropBody(): void {
    const b = body;
    body = undefined;
    clearTimer();
    if (b !== undefined) cancelBody(b);
  }

  /** Reports a failure to the core; keeps its JS value when the core's next fault is this one. */
  function report(kind: number, value: unknown): number {
    if (core.handleError(now(), kind)) cause = value;
    return POLL;
  }

  /** The cause kept for the fault the core reports (used up). */
  function takeCause(): unknown {
    const c = cause;
    cause = undefined;
    return c;
  }

  /** Does what the core says until a batch is ready or the feed ends, then stops. The shell decides nothing. */
  async function run(g: number, action: number): Promise<void> {
    try {
      for (;;) {
        if (action === POLL) {
          if (controller.signal.aborted) report(C.ABORTED, controller.signal.reason);
          action = core.poll(now());
        }
        if (resolve === undefined) {
          // Nobody waits (a read ended after its batch was handed out): stop; the next `next()` starts here.
          pending = action === C.READ || action === C.READ_FLUSH ? POLL : action;
          active = false;
          return;
        }
        switch (action) {
          case C.BATCH:
            active = false;
            return deliver(core.batch());
          case C.DONE:
            active = false;
            return deliver(undefined);
          case C.FAIL: {
            // The transport blanks the request's secrets out of an http-status error (it quotes the answer's body).
            const e = core.error(takeCause(), statusText);
            options.hide?.(e);
            return fail(e);
          }
          case C.RETRY:
            retry();
            break;
          case C.CANCEL:
            dropBody();
            break;
          case C.FETCH:
          case C.FETCH_REFRESH:
            // The request (the headers hook included) runs under the watchdog as a read does, until its answer.
            arm(action);
            reading = true;
            action = await send(g, action === C.FETCH_REFRESH);
            if (action === ABANDONED) return;
            reading = false;
            continue;
          case C.WAIT: {
            const at = core.pollTimeout();
            await sleep(at < 0 ? MAX_TIMER_MS : at - now(), controller.signal);
            break;
          }
          default: {
            // A read: one await, the read itself.
            if (body === undefined) {
              // No body to read (the core asks only after one was opened): it ended.
              action = core.handleChunk(now(), undefined);
              continue;
            }
            // Every 1024th read first waits for a macrotask (not under the timer: the core has been told everything):
            // a body whose reads give bytes at once for ever (blank lines, checkpoints) would starve every timer,
            // the caller's close() among them. About 1 ms per 1024 reads.
            if (!(++reads & 1023)) {
              await sleep(0, controller.signal);
              if (g !== gen) return;
            }
            const b = body;
            let read: unknown;
            try {
              read = startRead(b, page);
            } catch (e) {
              action = report(C.CALLER, e);
              continue;
            }
            arm(action);
            reading = true;
            let result: unknown;
            try {
              result = await read;
            } catch (e) {
              if (g !== gen) return;
              reading = false;
              body = undefined;
              clearTimer();
              action = report(C.CUT, e);
              continue;
            }
            if (g !== gen) return;
            reading = false;
            let chunk: Uint8Array | undefined;
            try {
              chunk = chunkOf(result, page);
            } catch (e) {
              action = report(C.CALLER, e);
              continue;
            }
            if (g !== gen) return; // a getter of the caller's result may have closed the reader
            if (chunk === undefined) {
              body = undefined;
              clearTimer();
            } else {
              // The next read's buffer (the core copies the chunk: its buffer can be read into again).
              recycle(b, chunk);
              if (!chunk.length) {
                // No bytes is no progress: the core is not told (the idle deadline stands), and the next read waits
                // for a macrotask, under the timer: reads that give empty chunks at once would starve every timer.
                reading = true;
                await sleep(0, controller.signal);
                if (g !== gen) return;
                reading = false;
                continue;
              }
            }
            // One call per chunk, which also gives the next action.
            action = core.handleChunk(now(), chunk);
            continue;
          }
        }
        if (g !== gen) return;
        action = POLL;
      }
    } catch (e) {
      // Only a defect can land here (every call out is caught where it is made): end the feed with it, loudly.
      if (g === gen) fail(e);
    }
  }

  /** Sends one request and hands its status and body to the core (which reads it, keeps the start of an error's, or
   * cancels it to resend a 401). Every call out (the hook, `fetch`, the answer's getters, the body's reader) is
   * followed by a check that the loop is still current. */
  async function send(g: number, refresh: boolean): Promise<number> {
    const p = core.page;
    const mine = new AbortController();
    request = mine;
    let headers: Headers | undefined;
    if (requestHeaders !== undefined) {
      try {
        headers = await requestHeaders({ refresh }, p);
      } catch (e) {
        return g !== gen ? ABANDONED : report(C.CALLER, e);
      }
      if (g !== gen) return ABANDONED;
    }
    let sent: Request;
    try {
      const init: RequestInit = { method: 'GET', signal: mine.signal };
      if (headers != null) init.headers = headers;
      sent = new Request(core.url(), init);
    } catch {
      // The runtime's error would quote the URL, query included: it is not kept.
      return report(C.CALLER, bad(8, p));
    }
    let response: unknown;
    try {
      // The wrapper's fetch (js/src/transport.ts) makes the `network` error of a failure before a response.
      response = await (fetch !== undefined ? fetch(sent, p) : globalThis.fetch(sent));
    } catch (e) {
      return g !== gen ? ABANDONED : report(C.NETWORK, e);
    }
    const status = prop(response, 'status');
    const given = prop(response, 'headers');
    const get = prop(given, 'get');
    let retryAfter: unknown;
    try {
      if (typeof get === 'function') retryAfter = get.call(given, 'retry-after');
    } catch {
      // a header we cannot read is a header we do not have
    }
    const text = prop(response, 'statusText');
    const bodyUsed = prop(response, 'bodyUsed');
    const stream = prop(response, 'body');
    if (g !== gen) {
      // Abandoned while the answer came (a fetch of the caller's that does not pass the request's signal on), or by
      // a getter of theirs: its body is cancelled, not left open.
      cancelBody([stream as object, noop, prop(stream, 'cancel'), undefined]);
      return ABANDONED;
    }
    statusText = text;
    // No integer HTTP status: not a Response (or a hostile one).
    if (!core.handleStatus(status, retryAfter)) return report(C.CALLER, bad(7, p, kindOf(response)));
    page = p;
    // The core takes the body in every case: to read it, to keep the start of an error's, or to cancel it.
    let opened: Body | undefined;
    try {
      opened = openBody(stream, bodyUsed, p);
    } catch (e) {
      return g !== gen ? ABANDONED : report(C.CALLER, e);
    }
    if (g !== gen) {
      if (opened !== undefined) cancelBody(opened);
      return ABANDONED;
    }
    if (opened === undefined) return core.handleChunk(now(), undefined);
    body = opened;
    return POLL;
  }

  /** Tells the caller's `onRetry` about a retry, through observe.ts's `call`: its own errors, thrown or as a rejected
   * promise, are not ours to handle, but must not stop the feed or go unhandled; it may `close()` the reader. */
  function retry(): void {
    const info = core.retry(takeCause(), statusText);
    options.hide?.(prop(info, 'error'));
    call(options, 'onRetry', info);
  }

  const me: FeedReader = {
    next() {
      if (failed) return Promise.reject(error);
      if (resolve !== undefined) {
        return Promise.reject(bad(9));
      }
      if (closed) return Promise.resolve(undefined);
      return new Promise((res, rej) => {
        resolve = res;
        reject = rej;
        if (reading) poll();
        else if (!active) start(pending);
      });
    },
    close() {
      if (closed) return;
      closed = true;
      abandon();
      const done = resolve;
      resolve = reject = undefined;
      release();
      abort(undefined);
      done?.(undefined);
    },
    free() {
      me.close();
      if (freed) return;
      freed = true;
      core.free();
    },
  };
  if (signal !== undefined) {
    if (signal.aborted) abort(signal.reason);
    else {
      onAbort = listener(new WeakRef(abort), signal);
      signal.addEventListener('abort', onAbort);
    }
  }
  return me;
} as unknown as new (url: string, options: FeedReaderOptions) => FeedReader;
