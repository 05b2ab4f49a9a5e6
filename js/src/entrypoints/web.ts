/**
 * The `browser` and `default` export conditions: fetches and instantiates the wasm (top-level await), then exposes the
 * API. Vite, webpack 5, Rollup and Parcel see `new URL('…wasm', import.meta.url)` and ship the file; with esbuild,
 * import `feedpump/inline` instead (or copy `dist/wasm/feedpump_bg.wasm` to `wasm/` beside the bundle's folder). A
 * file that fails to load does not fail the import: the first use of a feed throws `FeedError` `'wasm-load-failed'`.
 *
 * @example
 * ```ts
 * import { openFeed } from 'feedpump'; // browsers and bundlers resolve this file
 * ```
 * @packageDocumentation
 */
import { BYOB_BYTES, readBodiesInto } from '../reader/body.js';
import { decodeAsciiAsLatin1 } from '../reader/reader.js';
import { loadWasm } from '../runtime.js';
import { pauseWhenHiddenBy } from '../consume.js';
import { visibleFetch } from '../visible.js';

// A browser's default reader of a fetch body gives chunks of up to a few hundred KB in fresh buffers; BYOB reads into
// one reused buffer (BYOB_BYTES) take less CPU in Chromium (bench/NOTES.md).
readBodiesInto(BYOB_BYTES);
decodeAsciiAsLatin1();

await loadWasm(new URL('../wasm/feedpump_bg.wasm', import.meta.url));

// consume()'s pauseWhenHidden: only a page can be hidden (js/src/visible.ts).
pauseWhenHiddenBy(visibleFetch);

export * from '../index.js';
