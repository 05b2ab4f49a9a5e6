//! TypeScript declarations of the records that cross the boundary (internal; the wrapper's `types.ts` is public).

use wasm_bindgen::prelude::*;

#[wasm_bindgen(typescript_custom_section)]
const TS_TYPES: &str = r#"
/** Options read by `new FeedReader(url, options)`; see docs/wasm-contract.md. */
export interface ReaderOptions {
  partitionCount: number;
  cursors?: string[];
  pageSizeHint?: number;
  headers?: string;
  signal?: AbortSignal;
  fetch?: (request: Request) => Promise<Response>;
  requestHeaders?: (ctx: { refresh: boolean }) => HeadersInit | Promise<HeadersInit>;
  maxLineLength?: number;
  maxHeldBytes?: number;
  partitions?: number[];
  retry?: false | { initialMs?: number; maxMs?: number; multiplier?: number; maxAttempts?: number; deadlineMs?: number };
  onRetry?: (info: { error: Error; attempt: number; delayMs: number }) => void;
  idleTimeoutMs?: number;
  maxBatchDelayMs?: number;
  replicas?: string[];
  failoverCooldownMs?: number;
  /** The path in `data` of each event's type, read into `RawBatch.types`. */
  typeField?: string[];
  /** With `typeField`: the events whose type this filter does not keep are dropped in the core, counted in
   * `RawBatch.dropped` (patterns lowercased with ignoreCase; with an `undefined` one, e.g. a RegExp, or one holding
   * U+FFFD, the core does not filter). */
  typeFilter?: { include?: (string | { prefix: string } | undefined)[]; exclude?: (string | { prefix: string } | undefined)[]; ignoreCase?: boolean };
  live?: boolean | { minIntervalMs?: number; maxIntervalMs?: number; longPollParam?: string };
  /** Read one FeedAPI v2 partition (then partitionCount is 1 and cursors holds its cursor). */
  v2?: { token: string; partition: number; eventTypes?: string[]; skipEventTypes?: string[] };
}
/** One committable batch as the core builds it. */
export interface RawBatch {
  /** JSON array text of the event objects. */
  text: string;
  /** 6 u32 per event: start, end (UTF-16 offsets in text), partition, line, byte offset, data start. */
  meta: Uint32Array;
  /** With `typeField`: 2 u32 per event, the start and end in text of its type string's contents (no escape in
   * them); 0, 0 when it has none; 1, 1 when only parsing the event can tell. */
  types?: Uint32Array;
  /** With `typeFilter`: pairs of u32, a partition and how many of its events the checkpoints of this batch cover that
   * the core dropped (read, never in text); absent when none. */
  dropped?: Uint32Array;
  /** Checkpoints released with the events, in order. */
  checkpoints: { partition: number; cursor: string }[];
  /** Page number (1-based). */
  page: number;
  /** Whether text is pure ASCII. */
  ascii: boolean;
  /** Body bytes of the page read since the previous batch of this reader (the page's bytes, over its batches). */
  bytes: number;
  /** Set on the batch that ends a page whose body was read to its end (it may be empty: every page ends with one). */
  end?: boolean;
  /** A change of position found with this batch's page. */
  signal?: 'caught-up' | 'fell-behind';
}
"#;
