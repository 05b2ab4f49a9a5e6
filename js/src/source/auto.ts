/**
 * Internal: `protocol: 'auto'`: a v2 discovery call decides between the v1 and the v2 source.
 * @internal
 * @packageDocumentation
 */
import { badOption, type ReaderOptions } from '../options.js';
import type { RawBatch } from '../wasm/feedpump.js';
import type { BatchSource } from './source.js';
import { V1Source } from './v1.js';
import type { V2Source } from './v2.js';

/**
 * Protocol negotiation: the first step makes the discovery call (with the v2 source's retries) and then reads
 * through the v1 or the v2 source.
 */
export class AutoSource implements BatchSource {
  readonly #url: string;
  readonly #v2: V2Source;
  readonly #v1Options: () => ReaderOptions | undefined;
  #source: BatchSource | undefined;
  #closed = false;

  constructor(url: string, v2: V2Source, v1Options: () => ReaderOptions | undefined) {
    this.#url = url;
    this.#v2 = v2;
    this.#v1Options = v1Options;
  }

  async next(): Promise<RawBatch | undefined> {
    if (this.#source === undefined) {
      const found = await this.#v2.negotiate();
      if (this.#closed) return undefined;
      if (found === 'v1') {
        const v1 = this.#v1Options();
        if (v1 === undefined) {
          throw badOption(37);
        }
        this.#source = new V1Source(this.#url, v1);
      } else {
        this.#source = this.#v2;
      }
    }
    return this.#source.next();
  }

  close(): void {
    this.#closed = true;
    this.#source?.close();
    this.#v2.close();
  }
}

