/**
 * `openFeed`: async iteration over the wasm `FeedReader` (docs/wasm-contract.md).
 *
 * The wasm side hands out one committable batch per `next()`: a JSON array text plus an offset table. Here each batch
 * becomes objects with ONE `JSON.parse` (never one boundary crossing per event), and the cursors the caller may
 * persist advance only once a batch's events have all been delivered.
 * @packageDocumentation
 */
import { FeedError, toFeedError } from './errors.js';
import { readerOptions, feedUrl, type ReaderOptions } from './options.js';
import { wasmReady } from './runtime.js';
import type { Batch, Checkpoint, Feed, FeedEvent, FeedOptions } from './types.js';
import { FeedReader, type RawBatch } from './wasm/feedpump.js';
import type { ReaderOptions as WasmReaderOptions } from './wasm/feedpump.js';

/** Values per event in `RawBatch.meta`: objStart, objEnd (UTF-16 offsets into text), partition, line, byte offset. */
const META_STRIDE = 5;

/**
 * Opens a ZeroEventHub FeedAPI v1 feed. Nothing is fetched until the feed is iterated; the iteration asks for page
 * after page from the latest checkpoints and ends once a page brings no events (caught up).
 *
 * Options are checked at once: bad ones throw a {@link FeedError} with code `'bad-options'`.
 *
 * @param url - the feed endpoint, e.g. `https://host/feed/v1`
 * @param options - see {@link FeedOptions}; `partitionCount` is required
 * @typeParam T - the type of the events' `data` (not checked at run time)
 * @returns a {@link Feed}, to iterate once
 * @example
 * ```ts
 * import { openFeed } from 'feedpump';
 *
 * const feed = openFeed('https://example.com/feed/v1', { partitionCount: 4, cursors: saved });
 * for await (const batch of feed.batches()) {
 *   await store(batch.events, batch.checkpoints); // one transaction per batch
 * }
 * saved = feed.cursors();
 * ```
 */
export function openFeed<T = unknown>(url: string | URL, options: FeedOptions): Feed<T> {
  return new FeedImpl<T>(feedUrl(url), readerOptions(options));
}

/** The three states of an iteration: a feed is iterated at most once. */
type State = 'new' | 'iterating' | 'done';

class FeedImpl<T> implements Feed<T> {
  readonly #url: string;
  readonly #options: ReaderOptions;
  /** Created on the first iteration step, so an unused feed costs no wasm memory and makes no request. */
  #reader: FeedReader | undefined;
  #state: State = 'new';
  /** `close()` was called: an iteration in progress ends quietly, whatever the reader says next. */
  #closed = false;
  /**
   * The delivered cursors, index = partition: the starting cursors advanced only by the checkpoints of batches the
   * consumer came back after. Never ahead of what the consumer has received (at-least-once on resume).
   */
  readonly #delivered: string[];

  constructor(url: string, options: ReaderOptions) {
    this.#url = url;
    this.#options = options;
    this.#delivered = options.cursors.slice();
  }

  batches(): AsyncGenerator<Batch<T>, void, undefined> {
    this.#claim();
    return this.#run();
  }

  events(): AsyncGenerator<FeedEvent<T>, void, undefined> {
    this.#claim();
    return this.#events();
  }

  [Symbol.asyncIterator](): AsyncGenerator<FeedEvent<T>, void, undefined> {
    return this.events();
  }

  cursors(): { [partition: number]: string } {
    return Object.assign({}, this.#delivered);
  }

  close(): void {
    this.#closed = true;
    this.#release();
  }

  #claim(): void {
    if (this.#state !== 'new') {
      throw new FeedError(
        'bad-options',
        'bad-options: a feed can be iterated only once; open a new one from feed.cursors() to continue',
      );
    }
    this.#state = 'iterating';
  }

  #open(): FeedReader {
    if (this.#reader !== undefined) return this.#reader;
    if (!wasmReady()) {
      throw new FeedError(
        'bad-options',
        "bad-options: the wasm module is not initialised; import 'feedpump' (its node, browser or workerd entry point)",
      );
    }
    try {
      // The contract's ReaderOptions; the generated declaration lags behind it (requestHeaders' context argument).
      this.#reader = new FeedReader(this.#url, this.#options as WasmReaderOptions);
    } catch (e) {
      throw toFeedError(e);
    }
    return this.#reader;
  }

  /** Closes and frees the wasm reader. Idempotent: the field is cleared before anything can throw. */
  #release(): void {
    const reader = this.#reader;
    this.#reader = undefined;
    if (reader === undefined) return;
    try {
      reader.close();
    } finally {
      reader.free();
    }
  }

  /**
   * The events of each batch in turn. A batch's cursors advance when the consumer comes back after its last event;
   * `close()` ends the iteration at the next event, even inside a batch.
   */
  async *#events(): AsyncGenerator<FeedEvent<T>, void, undefined> {
    for await (const batch of this.#run()) {
      for (const event of batch.events) {
        if (this.#closed) return;
        yield event;
      }
    }
  }

  async *#run(): AsyncGenerator<Batch<T>, void, undefined> {
    try {
      while (!this.#closed) {
        const reader = this.#open();
        let raw: RawBatch | undefined;
        try {
          raw = await reader.next();
        } catch (e) {
          if (this.#closed) return;
          throw toFeedError(e);
        }
        if (raw === undefined || this.#closed) return;
        if (raw.checkpoints.length === 0 && raw.meta.length === 0) continue;
        const batch = parseBatch<T>(raw);
        // Copied before the batch is handed out: the consumer may change the batch's objects.
        const commit = raw.checkpoints.map((c) => [c.partition, c.cursor] as const);
        yield batch;
        // The consumer came back for more: it has the batch, so its checkpoints count as delivered.
        for (const [partition, cursor] of commit) this.#delivered[partition] = cursor;
      }
    } finally {
      this.#state = 'done';
      this.#release();
    }
  }
}


/**
 * One `JSON.parse` for the whole batch. The text is `[{"partition":P[,"headers":H],"data":D},…]`, which already has the
 * shape of {@link FeedEvent}, so the parsed objects are handed out as they are.
 * @internal
 */
export function parseBatch<T>(raw: RawBatch): Batch<T> {
  let events: FeedEvent<T>[];
  try {
    events = JSON.parse(raw.text) as FeedEvent<T>[];
  } catch (e) {
    throw badLine(raw, e);
  }
  const checkpoints: Checkpoint[] = raw.checkpoints.map((c) => ({ partition: c.partition, cursor: c.cursor }));
  return { events, checkpoints };
}

/**
 * The batch did not parse: find the first event that does not, by its offsets in `meta`, and name where it came
 * from. Only on this error path is each event parsed on its own.
 * @internal
 */
export function badLine(raw: RawBatch, batchError: unknown): FeedError {
  const { text, meta, page } = raw;
  for (let i = 0; i + META_STRIDE <= meta.length; i += META_STRIDE) {
    try {
      JSON.parse(text.slice(meta[i] ?? 0, meta[i + 1] ?? 0));
    } catch (e) {
      const partition = meta[i + 2] ?? 0;
      const line = meta[i + 3] ?? 0;
      const offset = meta[i + 4] ?? 0;
      const why = e instanceof Error ? e.message : String(e);
      return new FeedError(
        'bad-line',
        `bad-line: the event's JSON does not parse (${why}) at line ${line}, byte ${offset}, partition ${partition} (page ${page})`,
        { partition, line, offset, page, cause: e },
      );
    }
  }
  const why = batchError instanceof Error ? batchError.message : String(batchError);
  return new FeedError('bad-line', `bad-line: the batch's JSON does not parse (${why}) (page ${page})`, {
    page,
    cause: batchError,
  });
}
