// Ambient declarations for the entry points only. Not emitted: the published .d.ts files never mention them.

/**
 * A `.wasm` import as workerd (wrangler, Miniflare's `CompiledWasm` rule) and other Workers-style runtimes resolve it:
 * an already compiled `WebAssembly.Module`.
 */
declare module '*.wasm' {
  const module: WebAssembly.Module;
  export default module;
}

/**
 * The one `node:fs` function the Node entry point uses. Declared here rather than pulling in `@types/node`, so Node's
 * globals (`process`, `Buffer`) cannot creep into the runtime-neutral wrapper code.
 */
declare module 'node:fs' {
  export function readFileSync(path: URL): Uint8Array;
}
