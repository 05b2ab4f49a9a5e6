/**
 * The `workerd` export condition (Cloudflare Workers, wrangler, Miniflare): Workers hand a `.wasm` import over as a
 * compiled `WebAssembly.Module`, which is instantiated synchronously; no fetch, no extra configuration.
 *
 * @example
 * ```ts
 * import { openFeed } from 'feedpump'; // wrangler resolves this file
 * ```
 * @packageDocumentation
 */
import wasmModule from '../wasm/feedpump_bg.wasm';
import { loadWasmSync } from '../runtime.js';

loadWasmSync(() => wasmModule);

export * from '../index.js';
