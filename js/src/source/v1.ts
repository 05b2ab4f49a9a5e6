/**
 * Internal: the FeedAPI v1 (ZeroEventHub) source: one wasm reader for every partition.
 * @internal
 * @packageDocumentation
 */
import type { ReaderOptions } from '../options.js';
import type { FeedReader } from '../reader/reader.js';
import type { RawBatch } from '../wasm/feedpump.js';
import { freeReader, newReader, type BatchSource } from './source.js';

/** FeedAPI v1: one reader for every partition, created on the first step (an unused feed makes no request). */
export class V1Source implements BatchSource {
  readonly #url: string;
  readonly #options: ReaderOptions;
  #reader: FeedReader | undefined;
  #closed = false;

  constructor(url: string, options: ReaderOptions) {
    this.#url = url;
    this.#options = options;
  }

  next(): Promise<RawBatch | undefined> {
    if (this.#closed) return Promise.resolve(undefined);
    this.#reader ??= newReader(this.#url, this.#options);
    return this.#reader.next();
  }

  close(): void {
    this.#closed = true;
    const reader = this.#reader;
    this.#reader = undefined; // cleared before anything can throw
    freeReader(reader);
  }
}

