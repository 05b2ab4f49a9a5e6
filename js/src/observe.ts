/**
 * Internal: what a feed tells about itself, `feed.state` and `feed.stats()`, kept from the batches it hands out and
 * the retries the readers report (no per-event call: the numbers come with each batch).
 * @internal
 * @packageDocumentation
 */
import type { FeedError, FeedErrorCode } from './errors.js';
import type { FeedState, FeedStats, FetchLike } from './types.js';

/** Values per event in `RawBatch.meta` (see feed.ts). */
const META_STRIDE = 6;

/** @internal */
export class Observer {
  state: FeedState = 'idle';
  /** Where the feed is when it is not retrying: `'catching-up'` or `'live'`. */
  #position: 'catching-up' | 'live' = 'catching-up';
  events = 0;
  bytes = 0;
  pages = 0;
  retries = 0;
  lastErrorCode: FeedErrorCode | undefined;
  #page = -1;
  readonly #onChange: ((state: FeedState, previous: FeedState) => void) | undefined;

  constructor(onChange: ((state: FeedState, previous: FeedState) => void) | undefined) {
    this.#onChange = onChange;
  }

  /** Moves to `state` and tells the caller's callback, whose errors (thrown or rejected) are ignored. */
  set(state: FeedState): void {
    const previous = this.state;
    if (previous === state || previous === 'closed' || previous === 'failed') return;
    this.state = state;
    try {
      const r: unknown = this.#onChange?.(state, previous);
      if (r instanceof Promise) r.catch(() => undefined);
    } catch {
      // the caller's callback: not ours to handle, and it must not stop the feed
    }
  }

  /** A reader retries after `error`. */
  retry = (error: FeedError): void => {
    this.retries += 1;
    this.lastErrorCode = error.code;
    this.set('retrying');
  };

  /**
   * The `fetch` the readers call: the caller's (or the global one, looked up at each call), watched. An answer that is
   * not a failure to retry ends the `'retrying'` state (a live feed's empty pages bring no batch to tell it).
   */
  fetch(given: FetchLike | undefined): FetchLike {
    return async (request) => {
      const response = await (given ?? globalThis.fetch)(request);
      if (this.state === 'retrying' && isOk(response)) this.set(this.#position);
      return response;
    };
  }

  /** A batch arrived (`page` its page, `bytes` the body bytes read since the previous one). */
  batch(raw: { meta: Uint32Array; page: number; bytes?: number; signal?: string }, live: boolean): void {
    this.events += raw.meta.length / META_STRIDE;
    this.bytes += raw.bytes ?? 0;
    if (raw.page !== this.#page) {
      this.#page = raw.page;
      this.pages += 1;
    }
    if (raw.signal === 'caught-up' && live) this.#position = 'live';
    else if (raw.signal === 'fell-behind') this.#position = 'catching-up';
    this.set(this.#position);
  }

  /** The iteration ended: `error` when it failed. */
  end(error?: FeedError): void {
    if (error !== undefined) {
      this.lastErrorCode = error.code;
      this.set('failed');
    } else {
      this.set('closed');
    }
  }

  stats(lastEventAt: { [partition: number]: number }): FeedStats {
    const { events, bytes, pages, retries, lastErrorCode } = this;
    return { events, bytes, pages, retries, lastErrorCode, lastEventAt };
  }
}

/** Whether a fetch's answer is a response the reader goes on with (no 5xx, 408 or 429). */
function isOk(response: unknown): boolean {
  let status: unknown;
  try {
    status = (response as { status?: unknown } | null)?.status;
  } catch {
    return false;
  }
  return typeof status === 'number' && status < 500 && status !== 408 && status !== 429;
}
