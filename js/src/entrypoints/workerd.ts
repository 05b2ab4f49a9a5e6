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
import { BYOB_BYTES, readBodiesInto } from '../reader/body.js';
import { loadWasmSync } from '../runtime.js';
import { withinOrigin } from '../redirects.js';
import { followRedirects } from '../transport.js';

loadWasmSync(() => wasmModule);
// workerd's default reader of a fetch body gives ~4 KB per read; a BYOB read gives what has arrived, ~32 KB: the same
// body in 8x fewer reads, ~4x less time in the reads (bench/NOTES.md).
readBodiesInto(BYOB_BYTES);
// The requestHeaders hook's headers go only to the feed's origin: redirects followed by js/src/redirects.ts.
followRedirects(withinOrigin);

export * from '../index.js';
