/**
 * Internal: the event iterator of `feed.events()` over the feed's batches.
 * @internal
 * @packageDocumentation
 */
import type { Batch, FeedEvent, FeedEventIterator } from './types.js';

/**
 * `events()`: the events of each batch in turn. Not an async generator: a generator's `yield` costs an extra await
 * and a resumption per event, which was the largest per-event cost after parsing (bench/NOTES.md). Within a batch,
 * `next()` hands out a settled promise; at its end it pulls the next batch from `batches`, and that pull is what
 * tells the feed the consumer has finished the previous batch (its cursors then count as delivered). `close()`
 * ends the iteration at the next event, even inside a batch.
 * @internal
 */
export class EventIterator<T> implements FeedEventIterator<T> {
  readonly #batches: AsyncGenerator<Batch<T>, void, undefined>;
  readonly #closed: () => boolean;
  #events: FeedEvent<T>[] = [];
  #i = 0;
  #done = false;
  /** A pull in progress: calls made meanwhile wait for it, so events are handed out in order, each once. */
  #pulling: Promise<IteratorResult<FeedEvent<T>, void>> | undefined;

  constructor(batches: AsyncGenerator<Batch<T>, void, undefined>, closed: () => boolean) {
    this.#batches = batches;
    this.#closed = closed;
  }

  next(): Promise<IteratorResult<FeedEvent<T>, void>> {
    // Also after a pull that failed: the iteration is over then, and they are done (as an async generator's are).
    if (this.#pulling !== undefined) return this.#pulling.catch(() => {}).then(() => this.next());
    if (this.#i < this.#events.length && !this.#done && !this.#closed()) {
      return Promise.resolve({ value: this.#events[this.#i++] as FeedEvent<T>, done: false });
    }
    const pull = this.#pull();
    this.#pulling = pull;
    const clear = (): void => {
      if (this.#pulling === pull) this.#pulling = undefined;
    };
    pull.then(clear, clear);
    return pull;
  }

  async #pull(): Promise<IteratorResult<FeedEvent<T>, void>> {
    while (!this.#done) {
      if (this.#closed()) return this.return();
      let r: IteratorResult<Batch<T>, void>;
      try {
        r = await this.#batches.next();
      } catch (e) {
        this.#finish();
        throw e;
      }
      if (r.done === true) break;
      this.#events = r.value.events;
      this.#i = 0;
      if (this.#events.length > 0 && !this.#closed()) return { value: this.#events[this.#i++] as FeedEvent<T>, done: false };
    }
    this.#finish();
    return { value: undefined, done: true };
  }

  #finish(): void {
    this.#done = true;
    this.#events = [];
  }

  async return(): Promise<IteratorResult<FeedEvent<T>, void>> {
    this.#finish();
    await this.#batches.return(undefined);
    return { value: undefined, done: true };
  }

  async throw(e?: unknown): Promise<IteratorResult<FeedEvent<T>, void>> {
    await this.return();
    throw e;
  }

  [Symbol.asyncIterator](): this {
    return this;
  }
}

