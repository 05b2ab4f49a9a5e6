/**
 * Internal: the one place the wasm module is instantiated. Every entry point (node, web, workerd, inline) imports this
 * module and the same generated bindings (`./wasm/feedpump.js`), so there is one wasm instance per JS realm however
 * many entry points are loaded, and `openFeed` can tell whether it is ready.
 *
 * A module that fails to load never fails the import (in an entry point's top-level `await` that would be an error no
 * `try` around the user's code can catch): the failure is kept and becomes a `FeedError` `'wasm-load-failed'` at the
 * first use of a feed, with the original error as `cause`.
 * @internal
 * @packageDocumentation
 */
import { FeedError } from './errors.js';
import { initSync, type SyncInitInput } from './wasm/feedpump.js';

/** Set once the instance exists; `openFeed` refuses to run before. */
let ready = false;
/** The instantiation in flight (async entry points), shared so a second caller waits for the first. */
let pending: Promise<void> | undefined;
/** Why the latest load failed, kept for the first use (cleared by a load that succeeds). */
let failure: { error: unknown } | undefined;

/**
 * Runs `load` (which reads or instantiates the wasm) and records the outcome. Never throws.
 * @internal
 */
export function loadWasmSync(load: () => SyncInitInput): void {
  if (ready) return;
  try {
    initSync({ module: load() });
    ready = true;
    failure = undefined;
  } catch (error) {
    failure = { error };
  }
}

/**
 * Compiles the module a URL points to, from its bytes: whatever content type the server sends (streaming compilation
 * needs `application/wasm` and gains little for a module of this size).
 */
async function compileUrl(url: URL): Promise<WebAssembly.Module> {
  const response = await fetch(url);
  if (!response.ok) throw new Error(`fetching ${url.href} answered ${response.status} ${response.statusText}`);
  return WebAssembly.compile(await response.arrayBuffer());
}

/**
 * Compiles the wasm (from a URL, or bytes) asynchronously, then instantiates it (instantiating a compiled module is
 * allowed on a browser's main thread; compiling synchronously is not). A no-op once instantiated; concurrent callers
 * share one load. Never rejects: a failure is recorded for the first use (and a later call may try again).
 * @internal
 */
export function loadWasm(input: URL | Promise<BufferSource>): Promise<void> {
  if (ready) return Promise.resolve();
  pending ??= (async () => {
    const source = await input;
    const module = source instanceof URL ? await compileUrl(source) : await WebAssembly.compile(source);
    loadWasmSync(() => module);
  })().then(
    () => {
      if (!ready) pending = undefined; // let a later call try again
    },
    (error: unknown) => {
      pending = undefined; // let a later call try again
      failure = { error };
    },
  );
  return pending;
}

/**
 * Whether the wasm instance exists.
 * @internal
 */
export function wasmReady(): boolean {
  return ready;
}

/**
 * The error for a use of the wasm before it is ready: `'wasm-load-failed'` (with the original error as `cause`) when
 * the load failed, else `'bad-options'` (no entry point loaded it, e.g. `dist/index.js` imported directly).
 * @internal
 */
export function wasmNotReady(): FeedError {
  if (failure !== undefined) {
    const e = failure.error;
    const why = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
    return new FeedError(
      'wasm-load-failed',
      `the WebAssembly module could not be loaded (${why}). With a bundler that does not ship ` +
        "feedpump_bg.wasm (esbuild), import 'feedpump/inline', or serve the file where the entry point's " +
        "new URL('../wasm/feedpump_bg.wasm', import.meta.url) points, as application/wasm",
      { cause: e },
    );
  }
  return new FeedError(
    'bad-options',
    "the wasm module is not initialised; import 'feedpump' (its node, browser or workerd entry point)",
  );
}
