/**
 * Internal: where a feed's raw batches come from ({@link BatchSource}), and the reader every source reads
 * through (js/src/reader/, made over the one transport, js/src/transport.ts).
 * @internal
 * @packageDocumentation
 */
import { toFeedError } from '../errors.js';
import type { ReaderOptions } from '../options.js';
import { wasmNotReady, wasmReady } from '../runtime.js';
import { transport } from '../transport.js';
import { FeedReader } from '../reader/reader.js';
import type { RawBatch } from '../wasm/feedpump.js';

/**
 * Where a feed's raw batches come from. `next()` gives `undefined` once the feed has ended; `close()` releases every
 * request, body and reader and is idempotent.
 * @internal
 */
export interface BatchSource {
  next(): Promise<RawBatch | undefined>;
  close(): void;
}

/**
 * Throws the FeedError of `wasmNotReady()` (`'wasm-load-failed'` or `'bad-options'`) when the wasm module is not ready.
 * @internal
 */
export function requireWasm(): void {
  if (!wasmReady()) throw wasmNotReady();
}

/**
 * Makes a reader. Throws a `FeedError` when the wasm is not initialised or the options are refused.
 * @internal
 */
export function newReader(url: string, options: ReaderOptions): FeedReader {
  requireWasm();
  try {
    // The reader calls out through the same transport as the v2 discovery (its errors are made there).
    const { fetch, requestHeaders, hide } = transport(options);
    return new FeedReader(url, { ...options, fetch, requestHeaders, hide });
  } catch (e) {
    throw toFeedError(e);
  }
}

/**
 * Closes and frees a reader.
 * @internal
 */
export function freeReader(reader: FeedReader | undefined): void {
  if (reader === undefined) return;
  try {
    reader.close();
  } finally {
    reader.free();
  }
}

