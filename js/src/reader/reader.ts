/**
 * Internal: `FeedReader`, the I/O shell over the synchronous wasm core (src/core.rs, `Core`, over the core's
 * `Driver`): one committable batch per `next()`.
 *
 * The core decides everything (what to fetch, when a batch is handed out, when a body is stalled, what a failure is
 * and whether it is retried, the 401 resent once, the error held back behind the last batch): this shell only fetches
 * the URL it is given, reads the body's chunks, sets the timers the core asks for, calls the caller's code and hands
 * the core's outputs on. See core/src/driver.rs and docs/wasm-contract.md.
 *
 * The read loop ({@link FeedReader.next} starts it) awaits one thing at a time: a read, a request, a backoff. A read
 * is awaited alone (one `await`, no race, no timer of its own); the timers run beside it: the flush timer (one per
 * released batch, while released events wait) and the idle watchdog (one per page, re-armed lazily: it fires at the
 * deadline of the first read and, if reads came since, sleeps again for what is left). When a timer's deadline is
 * reached during a read, it tells the core and, if a `next()` waits, polls it: a batch is handed out while the read
 * stays in flight (the loop takes its chunk later: nothing is lost), and a failure (a stalled body) abandons the
 * read. An abort or `close()` abandons whatever the loop awaits the same way: every await ends on them.
 *
 * Abandoning is a generation count: a loop whose generation is not current does nothing after its await. Every call
 * into the core returns before any caller code runs, so no state is ever half-updated when the caller's code (a
 * hook, their `fetch`, a getter of their body, an abort listener) re-enters with `close()` or `next()`.
 * @internal
 * @packageDocumentation
 */
import { MAX_TIMER_MS, sleep, type ReaderOptions } from '../options.js';
import { feedError, kindOf, type Transport } from '../transport.js';
import { Core, type RawBatch } from '../wasm/feedpump.js';
import { cancelBody, chunkOf, openBody, prop, startRead, type Body } from './body.js';
import * as C from './core.js';

/** The options of a reader: the config fields the core reads, and the calls out (the wrapper passes its transport,
 * js/src/transport.ts, which makes the `network` and `bad-header` errors). */
export type FeedReaderOptions = Omit<ReaderOptions, 'fetch' | 'requestHeaders'> & {
  fetch?: Transport['fetch'] | undefined;
  requestHeaders?: Transport['requestHeaders'] | undefined;
};

/** A loop that is not current any more stops after its await. */
const ABANDONED = -2;
/** "Poll the core" (no action in hand). */
const POLL = -1;
/** A read was started (its promise is `#inflight`). */
const READING = -3;

const now = Date.now;

function noop(): void {}

/** Internal: the wrapper's handle on one feed. See docs/wasm-contract.md. */
export class FeedReader {
  readonly #core: Core;
  readonly #fetch: Transport['fetch'] | undefined;
  readonly #requestHeaders: Transport['requestHeaders'];
  readonly #onRetry: ReaderOptions['onRetry'];
  /** The caller's signal, until released. */
  #signal: AbortSignal | undefined;
  #onAbort: (() => void) | undefined;
  /** The reader's own controller for its whole life: `close()` or the caller's signal aborts it. Never handed to a
   * request: each request has its own (a runtime that keeps a listener on a request's signal until the request is
   * collected, undici, would pile them on one signal). */
  readonly #controller = new AbortController();
  #request: AbortController | undefined;
  #body: Body | undefined;
  /** The read just started, until the loop awaits it. */
  #inflight: unknown;
  /** The pending `next()`. */
  #resolve: ((batch: RawBatch | undefined) => void) | undefined;
  #reject: ((error: unknown) => void) | undefined;
  /** The current loop's generation; a loop is running (`#active`), and awaiting a read (`#reading`). */
  #gen = 0;
  #active = false;
  #reading = false;
  /** What the core said while no `next()` waited (a batch it holds, a retry to report): the next loop starts there. */
  #pending = POLL;
  /** The one timer of the reads (see {@link FeedReader.#arm}), when it fires, and whether it fires by the flush
   * deadline of the released events. */
  #timer: ReturnType<typeof setTimeout> | undefined;
  #at = 0;
  #flush = false;
  #closed = false;
  #failed = false;
  /** The error that ended the reader, thrown again by later `next()` calls. */
  #error: unknown;
  /** The JS value of the failure the core reports next: the error itself (network, the caller's) or its cause. */
  #cause: unknown;
  /** The status text of the last response, for an `http-status` message. */
  #statusText: unknown;
  /** The page of the body being read (for its errors). */
  #page = 0;
  #freed = false;

  /** Checks the options (the core reads its config fields); no request is made before the first `next()`. */
  constructor(url: string, options: FeedReaderOptions) {
    this.#core = new Core(url, options, options.requestHeaders !== undefined);
    this.#fetch = options.fetch;
    this.#requestHeaders = options.requestHeaders;
    this.#onRetry = options.onRetry;
    const signal = options.signal;
    if (signal === undefined) return;
    if (signal.aborted) {
      this.#abort(signal.reason);
      return;
    }
    // Weak: the listener must not keep the reader alive (the signal may outlive it).
    const me = new WeakRef(this);
    this.#onAbort = () => {
      const reader = me.deref();
      if (reader !== undefined) reader.#abort(signal.reason);
    };
    this.#signal = signal;
    signal.addEventListener('abort', this.#onAbort);
  }

  /** The next committable batch, or `undefined` once caught up or closed. */
  next(): Promise<RawBatch | undefined> {
    if (this.#failed) return Promise.reject(this.#error);
    if (this.#resolve !== undefined) {
      return Promise.reject(feedError('bad-options', 'next() called while a previous call is pending', 0));
    }
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      this.#resolve = resolve;
      this.#reject = reject;
      if (this.#reading) this.#poll();
      else if (!this.#active) this.#start(this.#pending);
    });
  }

  /** Aborts the request in flight and cancels the body. Idempotent, and safe from anywhere: from the caller's
   * callbacks, their `fetch` and their abort listeners, while a `next()` is in flight (it then gives `undefined`). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#abandon();
    const resolve = this.#resolve;
    this.#resolve = this.#reject = undefined;
    this.#release();
    this.#abort(undefined);
    resolve?.(undefined);
  }

  /** Closes the reader and frees the core's memory. */
  free(): void {
    this.close();
    if (this.#freed) return;
    this.#freed = true;
    this.#core.free();
  }

  /** Aborts the reader and the request in flight (runs every abort listener, the caller's among them), and ends
   * whatever the loop awaits: a waiting `next()` gets the `aborted` error. */
  #abort(reason: unknown): void {
    const signal = this.#controller.signal;
    if (!signal.aborted) this.#controller.abort(reason);
    this.#request?.abort(signal.reason);
    if (this.#closed || this.#failed || !this.#active) return;
    this.#abandon();
    if (this.#resolve !== undefined) this.#start(POLL);
  }

  /** The loop in flight (if any) stops at its next step. */
  #abandon(): void {
    this.#gen++;
    this.#active = false;
    this.#reading = false;
  }

  #start(action: number): void {
    // An abort is reported before anything but a batch the core already gave.
    if (this.#controller.signal.aborted && action !== C.BATCH) action = POLL;
    this.#pending = POLL;
    this.#active = true;
    void this.#run(++this.#gen, action);
  }

  /** Polls the core while the loop awaits a read (a `next()` came, or a timer fired): a batch is handed out and the
   * read stays in flight; anything else (a stalled body) abandons the read and starts a loop there. */
  #poll(): void {
    const action = this.#core.poll(now());
    if (action === C.BATCH) this.#deliver(this.#core.batch());
    else if (action === C.READ || action === C.READ_FLUSH) this.#arm(action);
    else {
      this.#abandon();
      this.#start(action);
    }
  }

  /** The timer a read runs under: the flush deadline while released events wait (`READ_FLUSH`), else the idle
   * watchdog. One timer: set once per page and re-armed lazily when it fires early (reads came since), and set
   * sooner for a flush deadline; so a read costs no timer, and no wasm call once the timer is set. */
  #arm(action: number): void {
    const flush = action === C.READ_FLUSH;
    if (this.#timer !== undefined && (!flush || this.#flush)) return;
    const at = this.#core.pollTimeout();
    this.#flush = flush;
    if (at < 0 || this.#at <= at && this.#timer !== undefined) return;
    clearTimeout(this.#timer);
    this.#set(at);
  }

  #set(at: number): void {
    this.#at = at;
    this.#timer = setTimeout(this.#fire, Math.min(Math.max(0, at - now()), MAX_TIMER_MS));
  }

  /** The timer fired: if a read is in flight and the core's deadline is reached, tell the core (and hand out what it
   * gives, if a `next()` waits); if not yet (reads came since, or the timer fired early), sleep again until it. */
  readonly #fire = (): void => {
    this.#timer = undefined;
    this.#flush = false;
    if (!this.#reading) return; // the next read arms what it needs
    const at = this.#core.pollTimeout();
    const t = now();
    if (at < 0) return;
    if (t < at) return this.#set(at);
    this.#core.handleTimeout(t);
    if (this.#resolve !== undefined) this.#poll();
  };

  #clearTimer(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#flush = false;
  }

  /** Hands a batch (or the end) to the pending `next()`; a final failure (its error may still wait behind this
   * batch) releases everything now. */
  #deliver(batch: RawBatch | undefined): void {
    const resolve = this.#resolve;
    this.#resolve = this.#reject = undefined;
    // What was released is handed out: the timer, if set by its flush deadline, re-arms for the watchdog when it fires.
    this.#flush = false;
    if (this.#core.hasFailed()) this.#release();
    resolve?.(batch);
  }

  #fail(error: unknown): void {
    this.#failed = true;
    this.#error = error;
    this.#abandon();
    const reject = this.#reject;
    this.#resolve = this.#reject = undefined;
    this.#release();
    reject?.(error);
  }

  /** Releases the body, the timers and the listener on the caller's signal. */
  #release(): void {
    this.#dropBody();
    if (this.#onAbort !== undefined) this.#signal?.removeEventListener('abort', this.#onAbort);
    this.#signal = this.#onAbort = undefined;
  }

  #dropBody(): void {
    const body = this.#body;
    this.#body = undefined;
    this.#clearTimer();
    if (body !== undefined) cancelBody(body);
  }

  /** Reports a failure to the core; keeps its JS value when the core's next fault is this one. */
  #report(kind: number, value: unknown): void {
    if (this.#core.handleError(now(), kind)) this.#cause = value;
  }

  /** The JS error of the fault the core reports; the JS value kept for it is used up. */
  #takeError(): unknown {
    const cause = this.#cause;
    this.#cause = undefined;
    return this.#core.error(cause, this.#statusText);
  }

  /** Does what the core says until a batch is ready or the feed ends, then stops. The shell decides nothing. */
  async #run(gen: number, action: number): Promise<void> {
    const core = this.#core;
    try {
      for (;;) {
        if (action === POLL) {
          if (this.#controller.signal.aborted) this.#report(C.ABORTED, this.#controller.signal.reason);
          action = core.poll(now());
        }
        if (this.#resolve === undefined) {
          // Nobody waits (a read ended after its batch was handed out): stop; the next `next()` starts here.
          this.#pending = action === C.READ || action === C.READ_FLUSH ? POLL : action;
          this.#active = false;
          return;
        }
        switch (action) {
          case C.BATCH:
            this.#active = false;
            this.#deliver(core.batch());
            return;
          case C.DONE:
            this.#active = false;
            this.#deliver(undefined);
            return;
          case C.FAIL:
            this.#fail(this.#takeError());
            return;
          case C.RETRY:
            this.#retry();
            break;
          case C.CANCEL:
            this.#dropBody();
            break;
          case C.FETCH:
          case C.FETCH_REFRESH:
            action = await this.#send(gen, action === C.FETCH_REFRESH);
            if (action === ABANDONED) return;
            continue;
          case C.WAIT: {
            const at = core.pollTimeout();
            await sleep(at < 0 ? MAX_TIMER_MS : at - now(), this.#controller.signal);
            break;
          }
          default: {
            // One await per read: the read itself.
            action = this.#startRead(action);
            if (action !== READING) continue;
            const read = this.#inflight;
            this.#inflight = undefined;
            let result: unknown;
            try {
              result = await read;
            } catch (e) {
              if (gen !== this.#gen) return;
              action = this.#cut(e);
              continue;
            }
            if (gen !== this.#gen) return;
            action = this.#took(gen, result);
            if (action === ABANDONED) return;
            continue;
          }
        }
        if (gen !== this.#gen) return;
        action = POLL;
      }
    } catch (e) {
      // Only a defect can land here (every call out is caught where it is made): end the feed with it, loudly.
      if (gen === this.#gen) this.#fail(e);
    }
  }

  /** Starts reading one chunk for the core, under the timers {@link FeedReader.#arm} sets: `READING` (the read is
   * `#inflight`), or the next action. */
  #startRead(action: number): number {
    const body = this.#body;
    // No body to read (the core asks only after one was opened): it ended.
    if (body === undefined) return this.#core.handleChunk(now(), undefined);
    try {
      this.#inflight = startRead(body, this.#page);
    } catch (e) {
      this.#report(C.CALLER, e);
      return POLL;
    }
    this.#arm(action);
    this.#reading = true;
    return READING;
  }

  /** The read failed: the connection was cut. */
  #cut(e: unknown): number {
    this.#reading = false;
    this.#body = undefined;
    this.#clearTimer();
    this.#report(C.CUT, e);
    return POLL;
  }

  /** What the read gave, to the core: one call per chunk, which also gives the next action. */
  #took(gen: number, result: unknown): number {
    this.#reading = false;
    let chunk: Uint8Array | undefined;
    try {
      chunk = chunkOf(result, this.#page);
    } catch (e) {
      this.#report(C.CALLER, e);
      return POLL;
    }
    if (gen !== this.#gen) return ABANDONED; // a getter of the caller's result may have closed the reader
    if (chunk === undefined) {
      this.#body = undefined;
      this.#clearTimer();
    }
    return this.#core.handleChunk(now(), chunk);
  }

  /** Sends one request and hands its status and body to the core (which reads it, keeps the start of an error's, or
   * cancels it to resend a 401). Every call out (the hook, `fetch`, the answer's getters, the body's reader) is
   * followed by a check that the loop is still current. */
  async #send(gen: number, refresh: boolean): Promise<number> {
    const core = this.#core;
    const page = core.page;
    const request = new AbortController();
    this.#request = request;
    let headers: Headers | undefined;
    if (this.#requestHeaders !== undefined) {
      try {
        headers = await this.#requestHeaders({ refresh }, page);
      } catch (e) {
        if (gen !== this.#gen) return ABANDONED;
        this.#report(C.CALLER, e);
        return POLL;
      }
      if (gen !== this.#gen) return ABANDONED;
    }
    let sent: Request;
    try {
      const init: RequestInit = { method: 'GET', signal: request.signal };
      if (headers !== undefined && headers !== null) init.headers = headers;
      sent = new Request(core.url(), init);
    } catch {
      // The runtime's error would quote the URL, query included: it is not kept.
      this.#report(C.CALLER, feedError('bad-options', 'the feed URL is not a valid URL', page));
      return POLL;
    }
    let response: unknown;
    try {
      // The wrapper's fetch (js/src/transport.ts) makes the `network` error of a failure before a response.
      response = await (this.#fetch !== undefined ? this.#fetch(sent, page) : globalThis.fetch(sent));
    } catch (e) {
      if (gen !== this.#gen) return ABANDONED;
      this.#report(C.NETWORK, e);
      return POLL;
    }
    if (gen !== this.#gen) return ABANDONED;
    const status = prop(response, 'status');
    if (typeof status !== 'number' || !Number.isInteger(status) || status < 0 || status > 999) {
      const msg = `the fetch you passed returned something that is not a Response (${kindOf(response)})`;
      this.#report(C.CALLER, feedError('bad-options', msg, page));
      return POLL;
    }
    const given = prop(response, 'headers');
    const get = prop(given, 'get');
    let retryAfter: unknown;
    try {
      if (typeof get === 'function') retryAfter = get.call(given, 'retry-after');
    } catch {
      // a header we cannot read is a header we do not have
    }
    this.#statusText = prop(response, 'statusText');
    const bodyUsed = prop(response, 'bodyUsed');
    const stream = prop(response, 'body');
    if (gen !== this.#gen) return ABANDONED; // a getter of theirs may have closed the reader
    core.handleStatus(status, retryAfter);
    this.#page = page;
    // The core takes the body in every case: to read it, to keep the start of an error's, or to cancel it.
    let body: Body | undefined;
    try {
      body = openBody(stream, bodyUsed, page);
    } catch (e) {
      if (gen !== this.#gen) return ABANDONED;
      this.#report(C.CALLER, e);
      return POLL;
    }
    if (gen !== this.#gen) {
      if (body !== undefined) cancelBody(body);
      return ABANDONED;
    }
    if (body === undefined) return core.handleChunk(now(), undefined);
    this.#body = body;
    return POLL;
  }

  /** Tells the caller's `onRetry` about a retry. Its own errors, thrown or as a rejected promise, are not ours to
   * handle, but must not stop the feed or go unhandled; it may `close()` the reader. */
  #retry(): void {
    const cause = this.#cause;
    this.#cause = undefined;
    const info = this.#core.retry(cause, this.#statusText);
    const onRetry = this.#onRetry;
    if (onRetry === undefined) return;
    try {
      const returned: unknown = onRetry(info as Parameters<typeof onRetry>[0]);
      if (typeof returned === 'object' && returned !== null) {
        new Promise((resolve) => resolve(returned)).then(undefined, noop);
      }
    } catch {
      // theirs
    }
  }
}
