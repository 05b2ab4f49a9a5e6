/**
 * Internal: the batch decoder. The wasm reader hands out each committable batch as one JSON array text of the events'
 * values plus tables of offsets into it (`RawBatch`, docs/wasm-contract.md); here it becomes {@link Batch} objects:
 * with ONE `JSON.parse` and an object per event (parsed mode), no parse (raw mode), or, through a type filter whose
 * types the reader found, a parse of the kept events only.
 * @internal
 * @packageDocumentation
 */
import { FeedError, parseWhy } from './errors.js';
import type { CompiledFilter } from './filters.js';
import type { Batch, FeedEvent } from './types.js';
import type { RawBatch } from './wasm/feedpump.js';

// `RawBatch.meta`, per event, offsets in `text` (or `wide`, see `cut`) in UTF-16 units: where its values start (its
// headers', or its data's when it has none) and where its data ends; its partition; the line number and byte offset of
// its line in the page body; where its data starts. So it has headers when its data does not start where its values do
// (the headers end at the comma before the data).
/** @internal */
export const META_STRIDE = 6;
const END = 1;
/** @internal */
export const META_PARTITION = 2;
const LINE = 3;
const OFFSET = 4;
const DATA = 5;
// `RawBatch.types`, per event: the start and end in `text` of its type string's contents (no escape in them), or twice
// one of these markers (the core's TYPE_ABSENT and TYPE_UNKNOWN: no type; only a parse can tell).
const TYPE_STRIDE = 2;
const TYPE_ABSENT = 0;
const TYPE_UNKNOWN = 1;
// Offsets from here on are in `RawBatch.wide` (the core's WIDE).
const WIDE = 2 ** 31;

/** The batch's text from offset `from` to `to`: in `wide` (raw mode's events with text outside ASCII) past WIDE. */
function cut(raw: RawBatch, from = 0, to = 0): string {
  return (from < WIDE ? raw.text : (raw.wide ?? '')).slice(from % WIDE, to % WIDE);
}

/**
 * The events at the `meta` offsets `only` (default: every event of `meta`), made from one parse of `json`, their
 * values in order (`H,D` or `D` per event): `{ partition, headers, data }` or `{ partition, data }`. A text that does
 * not parse is a `'bad-line'` FeedError naming the first bad event ({@link badLine}).
 */
function eventsOf<T>(raw: RawBatch, json: string, only?: readonly number[]): FeedEvent<T>[] {
  let values: unknown[];
  try {
    values = JSON.parse(json) as unknown[];
  } catch (e) {
    throw badLine(raw, e, only);
  }
  const { meta } = raw;
  const n = only ? only.length : meta.length / META_STRIDE;
  const events = new Array<FeedEvent<T>>(n);
  for (let j = 0, k = 0; j < n; j++) {
    const at = only ? (only[j] ?? 0) : j * META_STRIDE;
    const partition = meta[at + META_PARTITION] ?? 0;
    events[j] =
      meta[at] === meta[at + DATA]
        ? { partition, data: values[k++] as T }
        : { partition, headers: values[k++] as Record<string, string>, data: values[k++] as T };
  }
  return events;
}

/**
 * One `JSON.parse` for the whole batch: its text is the events' values, `[D1,H2,D2,…]`, so the parse makes no envelope
 * object and decodes no key of one; the event objects are made from the values and `meta`.
 * @internal
 */
export function parseBatch<T>(raw: RawBatch): Batch<T> {
  return { events: eventsOf<T>(raw, raw.text), checkpoints: raw.checkpoints };
}

/**
 * An event of raw mode: `data` stays JSON text in `raw` until it is read. The batch is kept once (its text, offset
 * table and page); each event only holds it and where its entry is.
 */
class RawEvent<T> implements FeedEvent<T> {
  readonly partition: number;
  readonly raw: string;
  readonly #batch: RawBatch;
  readonly #at: number;
  #data: { value: T } | undefined;
  #headers: { value: Record<string, string> | undefined } | undefined;

  constructor(batch: RawBatch, at: number) {
    const { meta } = batch;
    this.partition = meta[at + META_PARTITION] ?? 0;
    this.raw = cut(batch, meta[at + DATA], meta[at + END]);
    this.#batch = batch;
    this.#at = at;
  }

  /** Parses one of the event's values. The core validates neither `data` nor `headers`: a bad one is the event's
   * `bad-line`. */
  #parse<V>(json: string): { value: V } {
    try {
      return { value: JSON.parse(json) as V };
    } catch (e) {
      throw badEvent(e, this.#batch.meta, this.#at, this.#batch.page);
    }
  }

  /** Parsed on the first read; every read gives the same value (as in parsed mode). */
  get data(): T {
    return (this.#data ??= this.#parse<T>(this.raw)).value;
  }

  /** Parsed on the first read; every read gives the same object (as in parsed mode). */
  get headers(): Record<string, string> | undefined {
    if (this.#headers === undefined) {
      // The event's values are `H,D` when it has headers, `D` when not.
      const { meta } = this.#batch;
      const start = meta[this.#at] ?? 0;
      const dataStart = meta[this.#at + DATA] ?? 0;
      this.#headers = start === dataStart ? { value: undefined } : this.#parse(cut(this.#batch, start, dataStart - 1));
    }
    return this.#headers.value;
  }
}

/** Raw mode: no parsing at all, only an object per event. @internal */
export function rawBatch<T>(raw: RawBatch): Batch<T> {
  const { meta } = raw;
  const events: FeedEvent<T>[] = [];
  for (let i = 0; i + META_STRIDE <= meta.length; i += META_STRIDE) events.push(new RawEvent<T>(raw, i));
  return { events, checkpoints: raw.checkpoints };
}

/**
 * A batch through a type filter. Where the reader found the events' types without parsing (`raw.types`), an event the
 * filter drops is never parsed (parsed mode) nor made an object (raw mode); the core may have dropped most of them
 * already (`typeFilter`). Events whose type only a parse can tell (all of them without `raw.types`) are parsed and go
 * through the whole filter. The batch's checkpoints are all kept, whatever the events.
 * @internal
 */
export function filteredBatch<T>(raw: RawBatch, filter: CompiledFilter, rawMode?: boolean): Batch<T> {
  const { meta, types } = raw;
  /** `meta` offsets of the events to hand out; `-1 - offset` for those the whole filter still has to decide. */
  const picked: number[] = [];
  for (let i = 0, t = 0; i < meta.length; i += META_STRIDE, t += TYPE_STRIDE) {
    const from = types?.[t] ?? TYPE_UNKNOWN;
    if (from === TYPE_UNKNOWN) picked.push(-1 - i);
    else if (filter.match(from === TYPE_ABSENT ? undefined : cut(raw, from, types?.[t + 1]))) picked.push(i);
  }
  const at = (k: number): number => (k < 0 ? -1 - k : k);
  let events: FeedEvent<T>[];
  if (rawMode) {
    events = picked.map((k) => new RawEvent<T>(raw, at(k)));
  } else if (picked.length * META_STRIDE === meta.length) {
    // Every event goes on (the usual case when the core filtered): one parse of the whole text.
    events = eventsOf<T>(raw, raw.text);
  } else {
    const only = picked.map(at);
    events = eventsOf<T>(raw, `[${only.map((i) => cut(raw, meta[i], meta[i + END])).join(',')}]`, only);
  }
  return { events: events.filter((e, j) => (picked[j] ?? 0) >= 0 || filter.keep(e)), checkpoints: raw.checkpoints };
}

function badEvent(e: unknown, meta: Uint32Array, i: number, page: number): FeedError {
  const partition = meta[i + META_PARTITION] ?? 0;
  const line = meta[i + LINE] ?? 0;
  const offset = meta[i + OFFSET] ?? 0;
  const why = parseWhy(e);
  return new FeedError(
    'bad-line',
    `the event's JSON does not parse (${why}) at line ${line}, byte ${offset}, partition ${partition} (page ${page})`,
    { partition, line, offset, page },
  );
}

/**
 * The batch (or the events at the `meta` offsets `only`) did not parse: find the first event that does not, by its
 * offsets in `meta`, and name where it came from. Only on this error path is each event parsed on its own.
 * @internal
 */
export function badLine(raw: RawBatch, batchError: unknown, only?: readonly number[]): FeedError {
  const { meta, page } = raw;
  // The events' offsets: `only`, or every META_STRIDE-th index of `meta`.
  for (const i of only ?? meta.keys()) {
    if (i % META_STRIDE) continue;
    try {
      JSON.parse(`[${cut(raw, meta[i], meta[i + END])}]`);
    } catch (e) {
      return badEvent(e, meta, i, page);
    }
  }
  const why = parseWhy(batchError);
  return new FeedError('bad-line', `the batch's JSON does not parse (${why}) (page ${page})`, { page });
}
