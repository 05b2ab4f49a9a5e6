/**
 * Internal: the batch decoder. The wasm reader hands out each committable batch as one JSON array text plus tables of
 * offsets into it (`RawBatch`, docs/wasm-contract.md); here it becomes {@link Batch} objects: with ONE `JSON.parse`
 * (parsed mode), none (raw mode), or, through a type filter whose types the reader found, a parse of the kept events
 * only.
 * @internal
 * @packageDocumentation
 */
import { FeedError, messageOf } from './errors.js';
import type { CompiledFilter } from './filters.js';
import type { Batch, Checkpoint, FeedEvent } from './types.js';
import type { RawBatch } from './wasm/feedpump.js';

// `RawBatch.meta`, per event: the event object's start and end in `text` (UTF-16 offsets), its partition, the line
// number and byte offset of its line in the page body, and where its `data` starts in `text`.
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

function checkpointsOf(raw: RawBatch): Checkpoint[] {
  return raw.checkpoints.map((c) => ({ partition: c.partition, cursor: c.cursor }));
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
  return { events, checkpoints: checkpointsOf(raw) };
}

/**
 * An event of raw mode: `data` stays JSON text in `raw` until it is read. The text of a batch is kept once; each
 * event only holds its offsets into it.
 */
class RawEvent<T> implements FeedEvent<T> {
  readonly partition: number;
  readonly raw: string;
  readonly #text: string;
  readonly #meta: Uint32Array;
  readonly #at: number;
  readonly #page: number;
  #data: { value: T } | undefined;

  constructor(text: string, meta: Uint32Array, at: number, page: number) {
    this.partition = meta[at + META_PARTITION] ?? 0;
    this.raw = text.slice(meta[at + DATA], (meta[at + END] ?? 1) - 1);
    this.#text = text;
    this.#meta = meta;
    this.#at = at;
    this.#page = page;
  }

  get data(): T {
    if (this.#data === undefined) {
      try {
        this.#data = { value: JSON.parse(this.raw) as T };
      } catch (e) {
        throw badEvent(e, this.#meta, this.#at, this.#page);
      }
    }
    return this.#data.value;
  }

  get headers(): Record<string, string> | undefined {
    // The object text is `{"partition":P,"headers":{…},"data":…}` when the event has headers.
    const start = (this.#meta[this.#at] ?? 0) + `{"partition":${this.partition},`.length;
    if (!this.#text.startsWith('"headers":', start)) return undefined;
    const dataStart = this.#meta[this.#at + DATA] ?? 0;
    return JSON.parse(this.#text.slice(start + '"headers":'.length, dataStart - ',"data":'.length)) as Record<string, string>;
  }
}

/** Raw mode: no parsing at all, only an object per event. @internal */
export function rawBatch<T>(raw: RawBatch): Batch<T> {
  const { text, meta, page } = raw;
  const events: FeedEvent<T>[] = [];
  for (let i = 0; i + META_STRIDE <= meta.length; i += META_STRIDE) events.push(new RawEvent<T>(text, meta, i, page));
  return { events, checkpoints: checkpointsOf(raw) };
}

/**
 * A batch through a type filter. Where the reader found the events' types without parsing (`raw.types`), an event the
 * filter drops is never parsed (parsed mode) nor made an object (raw mode); the core may have dropped most of them
 * already (`typeFilter`). Events whose type only a parse can tell (all of them without `raw.types`) are parsed and go
 * through the whole filter. The batch's checkpoints are all kept, whatever the events.
 * @internal
 */
export function filteredBatch<T>(raw: RawBatch, filter: CompiledFilter, rawMode: boolean): Batch<T> {
  const { text, meta, page, types } = raw;
  /** `meta` offsets of the events to hand out; `-1 - offset` for those the whole filter still has to decide. */
  const picked: number[] = [];
  for (let i = 0, t = 0; i < meta.length; i += META_STRIDE, t += TYPE_STRIDE) {
    const from = types?.[t] ?? TYPE_UNKNOWN;
    if (from === TYPE_UNKNOWN) picked.push(-1 - i);
    else if (filter.match(from === TYPE_ABSENT ? undefined : text.slice(from, types?.[t + 1]))) picked.push(i);
  }
  const at = (k: number): number => (k < 0 ? -1 - k : k);
  let events: FeedEvent<T>[];
  if (rawMode) {
    events = picked.map((k) => new RawEvent<T>(text, meta, at(k), page));
  } else if (picked.length * META_STRIDE === meta.length) {
    // Every event goes on (the usual case when the core filtered): one parse of the whole text.
    events = parseBatch<T>(raw).events;
  } else {
    const json = `[${picked.map((k) => text.slice(meta[at(k)], meta[at(k) + END])).join(',')}]`;
    try {
      events = JSON.parse(json) as FeedEvent<T>[];
    } catch (e) {
      throw badLine(raw, e, picked.map(at));
    }
  }
  return { events: events.filter((e, j) => (picked[j] ?? 0) >= 0 || filter.keep(e)), checkpoints: checkpointsOf(raw) };
}

function badEvent(e: unknown, meta: Uint32Array, i: number, page: number): FeedError {
  const partition = meta[i + META_PARTITION] ?? 0;
  const line = meta[i + LINE] ?? 0;
  const offset = meta[i + OFFSET] ?? 0;
  const why = messageOf(e);
  return new FeedError(
    'bad-line',
    `the event's JSON does not parse (${why}) at line ${line}, byte ${offset}, partition ${partition} (page ${page})`,
    { partition, line, offset, page, cause: e },
  );
}

/**
 * The batch (or the events at the `meta` offsets `only`) did not parse: find the first event that does not, by its
 * offsets in `meta`, and name where it came from. Only on this error path is each event parsed on its own.
 * @internal
 */
export function badLine(raw: RawBatch, batchError: unknown, only?: readonly number[]): FeedError {
  const { text, meta, page } = raw;
  const offsets = only ?? Array.from({ length: meta.length / META_STRIDE }, (_, j) => j * META_STRIDE);
  for (const i of offsets) {
    try {
      JSON.parse(text.slice(meta[i] ?? 0, meta[i + END] ?? 0));
    } catch (e) {
      return badEvent(e, meta, i, page);
    }
  }
  const why = messageOf(batchError);
  return new FeedError('bad-line', `the batch's JSON does not parse (${why}) (page ${page})`, {
    page,
    cause: batchError,
  });
}
