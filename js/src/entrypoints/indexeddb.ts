/**
 * `feedpump/indexeddb`: the IndexedDB cursor store for `consume()`, a browser-only piece kept out of the main
 * entry points so that Node and Workers bundles do not carry it. It needs no wasm: import it beside `feedpump`.
 *
 * @example
 * ```ts
 * import { consume } from 'feedpump';
 * import { indexedDbStore, idbRequest } from 'feedpump/indexeddb';
 * ```
 * @packageDocumentation
 */
export { indexedDbStore, idbRequest } from '../stores/indexeddb.js';
export type { IndexedDbStore, IndexedDbStoreOptions } from '../stores/indexeddb.js';
export type { IdbDatabase, IdbFactory, IdbRequestLike, IdbTransaction } from '../stores/idb-types.js';
