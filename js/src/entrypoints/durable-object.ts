/**
 * `feedpump/durable-object`: the Durable Object storage cursor store for `consume()` on Cloudflare Workers, kept out of
 * the main entry points so that browser and Node bundles do not carry it. It needs no wasm: import it beside
 * `feedpump`.
 *
 * @example
 * ```ts
 * import { consume } from 'feedpump';
 * import { durableObjectStore } from 'feedpump/durable-object';
 * ```
 * @packageDocumentation
 */
export { durableObjectStore } from '../stores/durable-object.js';
export type {
  DurableObjectStorageLike,
  DurableObjectStoreOptions,
  DurableObjectTransactionLike,
} from '../stores/durable-object.js';
