/**
 * The `node` export condition: instantiates the wasm synchronously from the file shipped next to this module, then
 * exposes the API.
 *
 * @example
 * ```ts
 * import { openFeed } from 'feedpump'; // Node resolves this file
 * ```
 * @packageDocumentation
 */
import { readFileSync } from 'node:fs';
import { loadWasmSync } from '../runtime.js';

loadWasmSync(readFileSync(new URL('../wasm/feedpump_bg.wasm', import.meta.url)));

export * from '../index.js';
