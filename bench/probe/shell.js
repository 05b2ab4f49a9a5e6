// Shell probe (issue #11), bench only: candidate (B), a JavaScript read loop that owns `fetch`, the body reader and
// the timers, and drives a SYNCHRONOUS wasm core (src/probe.rs, feature `probe-sync`, built into bench/probe/out/ by
// bench/probe/build.sh). Compared with today's Rust shell (src/reader.rs: a Rust future per read, a Promise.race
// against the abort signal and a timer on every read, wasm-bindgen-futures) it has
//   - one `await` per read (`reader.read()`) and no race at all: the flush deadline is one timer per released batch
//     (not per read) that, when it fires during a read, hands the released events to the waiting `next()` itself;
//     the idle watchdog is one timer per page, re-armed lazily from the time of the last read;
//   - no Rust future and no RefCell borrowed across a JS call (every wasm call returns before any other code runs).
// The batches it hands out are the same `RawBatch` objects as FeedReader's, and they go through the same decoding
// (js/src/feed.ts's FeedImpl: one JSON.parse per batch, RawEvent, the events() iterator): only the shell differs.
//
// HAPPY PATH ONLY, to measure: no retries, no failover, no 401 refresh, no error held back behind the last batch,
// no live polling; any error ends the feed. Not a product: see bench/NOTES.md, "Shell probe".
import init, { initSync, ProbeSession } from './out/feedpump.js';
import { FeedImpl } from '../../dist/feed.js';
import { readerOptions } from '../../dist/options.js';
import { Observer } from '../../dist/observe.js';
import { transport } from '../../dist/transport.js';
import { FeedError } from '../../dist/errors.js';

/** The core's BATCH_BYTES (feedpump_core::session): bodies are fed in slices of at most this size. */
const BATCH_BYTES = 64 * 1024;
/** src/options.rs's defaults of maxBatchDelayMs and idleTimeoutMs. */
const DEFAULT_FLUSH_MS = 10;
const DEFAULT_IDLE_MS = 60_000;

/** Loads the probe's wasm: `module` (bytes or a WebAssembly.Module) where given, else fetched next to its glue. */
export async function ready(module) {
  if (module !== undefined) initSync({ module });
  else await init();
}

/** `openFeed` (v1 only) over the probe shell, decoded by the package's own FeedImpl. */
export function openFeed(url, options) {
  const observer = new Observer(options);
  const v1 = readerOptions(options, observer);
  return new FeedImpl(v1, options, new SyncShellSource(url, v1), observer);
}

/** A `BatchSource` (js/src/source/source.ts): `next()` gives the next RawBatch or undefined; `close()` releases everything. */
class SyncShellSource {
  #s;
  #fetch;
  #flushMs;
  #idleMs;
  #reader;
  #controller;
  /** The chunk being fed to the core, and how far. */
  #chunk;
  #pos = 0;
  /** The body was read to its end (the batch that empties the page says so). */
  #pageDone = false;
  #flushNow = false;
  /** When released events first waited (ms): the flush deadline counts from here. */
  #releasedSince;
  #flushTimer;
  #idleTimer;
  #lastRead = 0;
  /** The `next()` waiting for a batch. */
  #waiter;
  /** The loop is running (possibly awaiting a read or a fetch). */
  #running = false;
  #failed;
  #closed = false;

  constructor(url, options) {
    this.#s = new ProbeSession(url, options);
    this.#fetch = transport(options).fetch;
    this.#flushMs = options.maxBatchDelayMs ?? DEFAULT_FLUSH_MS;
    this.#idleMs = options.idleTimeoutMs ?? DEFAULT_IDLE_MS;
    options.signal?.addEventListener('abort', () => this.#fail(new FeedError('aborted', 'aborted: the feed was aborted')), { once: true });
  }

  next() {
    if (this.#failed !== undefined) return Promise.reject(this.#failed);
    if (this.#closed) return Promise.resolve(undefined);
    return new Promise((resolve, reject) => {
      this.#waiter = { resolve, reject };
      if (!this.#running) this.#run();
    });
  }

  close() {
    this.#closed = true;
    this.#release();
    this.#deliver(undefined);
    try {
      this.#s.free();
    } catch {
      // freed already
    }
  }

  #deliver(batch) {
    const w = this.#waiter;
    this.#waiter = undefined;
    this.#releasedSince = undefined;
    if (this.#flushTimer !== undefined) {
      clearTimeout(this.#flushTimer);
      this.#flushTimer = undefined;
    }
    w?.resolve(batch);
  }

  #fail(e) {
    this.#failed ??= e;
    this.#release();
    const w = this.#waiter;
    this.#waiter = undefined;
    w?.reject(this.#failed);
  }

  #release() {
    clearTimeout(this.#flushTimer);
    clearTimeout(this.#idleTimer);
    this.#flushTimer = this.#idleTimer = undefined;
    this.#controller?.abort();
    this.#reader?.cancel().catch(() => {});
    this.#reader = undefined;
  }

  /** The flush deadline passed while the loop awaits a read: hand what was released to the waiting `next()`. */
  #onFlush = () => {
    this.#flushTimer = undefined;
    if (this.#waiter === undefined || this.#failed !== undefined || this.#closed) return;
    if (!this.#s.hasReleased()) return;
    const batch = this.#s.pollBatch(true, false);
    if (batch !== undefined) this.#deliver(batch);
  };

  /** The idle watchdog: one timer per page, re-armed for what is left since the last read. */
  #onIdle = () => {
    this.#idleTimer = undefined;
    if (this.#reader === undefined || this.#failed !== undefined || this.#closed) return;
    const quiet = Date.now() - this.#lastRead;
    if (quiet < this.#idleMs) {
      this.#idleTimer = setTimeout(this.#onIdle, this.#idleMs - quiet);
      return;
    }
    this.#fail(new FeedError('stalled-body', `stalled-body: the body brought no bytes for ${this.#idleMs} ms (page ${this.#s.page()})`));
  };

  async #run() {
    this.#running = true;
    const s = this.#s;
    try {
      while (this.#waiter !== undefined && this.#failed === undefined && !this.#closed) {
        const flush = this.#flushNow;
        this.#flushNow = false;
        const fed = this.#chunk === undefined || this.#pos >= this.#chunk.length;
        const batch = s.pollBatch(flush, this.#pageDone && fed);
        if (batch !== undefined) {
          if (batch.end) this.#pageDone = false;
          this.#deliver(batch);
          continue;
        }
        if (!fed) {
          const chunk = this.#chunk;
          const end = Math.min(this.#pos + BATCH_BYTES, chunk.length);
          s.handleChunk(this.#pos === 0 && end === chunk.length ? chunk : chunk.subarray(this.#pos, end));
          this.#pos = end;
          continue;
        }
        const reader = this.#reader;
        if (reader !== undefined) {
          if (s.hasReleased()) {
            const now = Date.now();
            this.#releasedSince ??= now;
            const left = this.#releasedSince + this.#flushMs - now;
            if (left <= 0) {
              this.#flushNow = true;
              continue;
            }
            this.#flushTimer ??= setTimeout(this.#onFlush, left);
          }
          const { done, value } = await reader.read();
          if (this.#failed !== undefined || this.#closed) return;
          this.#lastRead = Date.now();
          if (done) {
            this.#reader = undefined;
            clearTimeout(this.#idleTimer);
            this.#idleTimer = undefined;
            s.handleEof();
            this.#pageDone = true;
          } else {
            this.#chunk = value;
            this.#pos = 0;
          }
          continue;
        }
        if (s.isCaughtUp()) {
          this.#deliver(undefined);
          continue;
        }
        const url = s.pollRequest(Date.now());
        if (url === undefined) throw new FeedError('closed', 'closed: the probe cannot continue (no retries, no live polling)');
        await this.#startPage(url);
      }
    } catch (e) {
      this.#fail(e);
    } finally {
      this.#running = false;
    }
  }

  async #startPage(url) {
    const s = this.#s;
    this.#controller = new AbortController();
    const response = await this.#fetch(new Request(url, { method: 'GET', signal: this.#controller.signal }), s.page());
    if (this.#failed !== undefined || this.#closed) return;
    s.handleStatus(response.status);
    if (response.body === null) {
      s.handleEof();
      this.#pageDone = true;
      return;
    }
    this.#reader = response.body.getReader();
    this.#lastRead = Date.now();
    if (this.#idleMs > 0) this.#idleTimer = setTimeout(this.#onIdle, this.#idleMs);
  }
}
