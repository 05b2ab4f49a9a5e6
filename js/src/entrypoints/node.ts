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
import { withinOrigin } from '../redirects.js';
import { followRedirects } from '../transport.js';
import { tabsByDefault } from '../tabs.js';

// A missing or broken file does not fail the import: it is a FeedError 'wasm-load-failed' at the first use.
loadWasmSync(() => readFileSync(new URL('../wasm/feedpump_bg.wasm', import.meta.url)));
// The requestHeaders hook's headers go only to the feed's origin: redirects followed by js/src/redirects.ts.
followRedirects(withinOrigin);
// consume()'s tabs mode only when asked for: Node 24.5+ has Web Locks, but a server pays a clone per batch for it.
tabsByDefault(false);

export * from '../index.js';
