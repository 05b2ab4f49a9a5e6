/**
 * Internal: the one place the wasm module is instantiated. Every entry point (node, web, workerd) imports this module
 * and the same generated bindings (`./wasm/feedpump.js`), so there is one wasm instance per JS realm however many
 * entry points are loaded, and `openFeed` can tell whether it is ready.
 * @internal
 * @packageDocumentation
 */
import init, { initSync, type InitInput, type SyncInitInput } from './wasm/feedpump.js';

/** Set once the instance exists; `openFeed` refuses to run before. */
let ready = false;
/** The instantiation in flight (async entry points), shared so a second caller waits for the first. */
let pending: Promise<void> | undefined;

/**
 * Instantiates the wasm synchronously from bytes or a compiled `WebAssembly.Module`. A no-op once instantiated.
 * @internal
 */
export function loadWasmSync(module: SyncInitInput): void {
  if (ready) return;
  initSync({ module });
  ready = true;
}

/**
 * Instantiates the wasm from a URL, `Response`, bytes or module. A no-op once instantiated; concurrent callers share
 * one instantiation.
 * @internal
 */
export function loadWasm(input: InitInput | Promise<InitInput>): Promise<void> {
  if (ready) return Promise.resolve();
  pending ??= init({ module_or_path: input }).then(
    () => {
      ready = true;
    },
    (e: unknown) => {
      pending = undefined; // let a later call try again
      throw e;
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
