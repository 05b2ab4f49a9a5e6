/**
 * Internal: what a feed tells about itself: `feed.state` and `feed.stats()`, the `onRequest` / `onResponse` hooks and
 * the `logger`. Kept from the requests the readers make (transport.ts tells of each), the retries they report and
 * the batches they hand out (each batch brings its body bytes, and the one that ends a page says so): nothing per event.
 * @internal
 * @packageDocumentation
 */
import type { FeedError } from './errors.js';
import { redact } from './stores/identity.js';
import type { AnyFeedOptions as FeedOptions, FeedState, FeedStats, LogFields, RequestKind, ResponseInfo } from './types.js';

/**
 * Calls a caller's callback, the method `key` of `o` (if any): what reading it or calling it throws, or the promise
 * (or thenable) it returns rejects with, is ignored.
 * @internal
 */
export function call(o: object | undefined, key: string, ...args: unknown[]): void {
  try {
    // What it returns is adopted: a promise of another realm (a vm context, an iframe) is not `instanceof Promise`.
    Promise.resolve((o as Record<string, ((...a: unknown[]) => unknown) | undefined> | undefined)?.[key]?.(...args)).catch(() => undefined);
  } catch {
    // the caller's: it must not stop the feed
  }
}

/** A request told of, until its `onResponse`. */
type Sent = ResponseInfo & { at: number };

/** @internal */
export class Observer {
  state: FeedState = 'idle';
  /** Where the feed is when it is not retrying. */
  #position: 'catching-up' | 'live' = 'catching-up';
  /** The counters of `feed.stats()`, but the last event times (feed.ts keeps those). */
  readonly n: Omit<FeedStats, 'lastEventAt'> = { events: 0, bytes: 0, pages: 0, retries: 0, lastErrorCode: undefined };
  /** Requests made (the `page` of the hooks). */
  #requests = 0;
  /** The retry attempt the next request is (0: not a retry). */
  #attempt = 0;
  /** The URL of the latest request (no query values). */
  url: string | undefined;
  /** The request in flight or being read, until its `onResponse`. */
  #req: Sent | undefined;
  readonly #o: FeedOptions;

  constructor(options: FeedOptions) {
    this.#o = options;
  }

  #log(level: 'debug' | 'info' | 'warn' | 'error', message: string, fields: LogFields): void {
    call(this.#o.logger, level, message, fields);
  }

  /** Moves to `state` and tells `onStateChange` and the logger. */
  set(state: FeedState, error?: FeedError): void {
    const previous = this.state;
    if (previous === state || previous === 'closed' || previous === 'failed') return;
    this.state = state;
    call(this.#o, 'onStateChange', state, previous, error);
    this.#log('info', 'state', { state, previous });
  }

  /** A reader retries after `error`. */
  retry(error: FeedError, attempt: number, delayMs: number): void {
    this.n.retries += 1;
    this.n.lastErrorCode = error.code;
    this.#attempt = attempt;
    this.#req = undefined;
    this.set('retrying', error);
    this.#log('warn', error.message, { code: error.code, attempt, delayMs });
  }

  /** A request to `url` is sent (transport.ts tells, for every reader and the v2 discovery): what `got` takes. */
  sent(url: string, kind: RequestKind = 'page'): Sent {
    this.#respond(); // a request whose answer was not told yet (a defect's): told now
    // A query key without a value (`?TOKEN`, `?TOKEN=`) may be the credential itself: blanked before redact() drops
    // the values and keeps the keys.
    const shown = redact(url.replace(/([?&])[^=&#\s]+(?==?(?:[&#\s]|$))/g, '$1[hidden]'));
    const info = { page: ++this.#requests, url: (this.url = shown), attempt: this.#attempt, kind };
    call(this.#o, 'onRequest', info);
    this.#log('debug', 'request', info);
    return { ...info, status: 0, durationMs: 0, bytes: 0, events: 0, checkpoints: 0, at: Date.now() };
  }

  /** The response of the request `req` arrived. */
  got(req: Sent, response: unknown): void {
    this.#req = req;
    let status: unknown;
    try {
      status = (response as { status?: unknown } | null)?.status;
    } catch {
      // a hostile response: the reader fails it
    }
    req.status = typeof status === 'number' ? status : 0;
    // A response whose body the reader reads as a page (2xx): any other is told to `onResponse` when it arrives, as
    // no batch will end its page (a 5xx or 429 is retried, a v2 409 rediscovers, a 4xx fails the feed).
    if (req.status < 200 || req.status >= 300) this.#respond();
    else {
      this.#attempt = 0;
      if (this.state === 'retrying') this.set(this.#position);
    }
  }

  /** The body of the request being read was read whole by the v2 discovery (`bytes` of it): its answer is told now. */
  read(bytes: number): void {
    if (this.#req) this.#req.bytes += bytes;
    this.#respond();
  }

  /** Tells `onResponse` and the logger about the request being read, once. */
  #respond(): void {
    const req = this.#req;
    if (req === undefined) return;
    this.#req = undefined;
    const { at, ...info } = req;
    info.durationMs = Date.now() - at;
    call(this.#o, 'onResponse', info);
    this.#log('debug', 'response', info);
  }

  /**
   * A batch arrived (`bytes`: the body bytes read since the previous one; `end`: it ends its page) with `events` read
   * (those in it and those the core's type filter dropped).
   */
  batch(raw: { checkpoints: unknown[]; bytes?: number; end?: boolean; signal?: string }, live: boolean, events: number): void {
    const bytes = raw.bytes ?? 0;
    this.n.events += events;
    this.n.bytes += bytes;
    const req = this.#req;
    if (req) {
      req.events += events;
      req.bytes += bytes;
      req.checkpoints += raw.checkpoints.length;
    }
    if (raw.end) {
      this.n.pages += 1;
      this.#respond();
    }
    if (raw.signal === 'caught-up' && live) this.#position = 'live';
    else if (raw.signal === 'fell-behind') this.#position = 'catching-up';
    this.set(this.#position);
  }

  /** The iteration ended: `error` when it failed. */
  end(error?: FeedError): void {
    if (error !== undefined) {
      this.n.lastErrorCode = error.code;
      this.#log('error', error.message, { code: error.code });
    }
    this.set(error ? 'failed' : 'closed', error);
  }
}
