/**
 * Internal: limits shared by the main entry points and the store subpaths, in a module that imports nothing (a store
 * subpath must not bring the wasm glue that options.ts imports: tests/stores/subpaths.test.mjs).
 * @packageDocumentation
 */

/**
 * The longest delay a timer accepts (2^31-1 ms, about 24.8 days): `setTimeout` fires a longer one at once. This is the
 * one place that decides the limit of the timer options (`idleTimeoutMs`, `maxBatchDelayMs`, `live.*IntervalMs`,
 * `retry.initialMs`, `retry.maxMs`, the stores' `handlerTimeoutMs`, PostgreSQL's transaction bounds, whose server
 * settings are 32-bit integers of ms as well): above it they are `bad-options`. The wasm core takes any u32, and the
 * reader clamps every timer it sets to the same limit, as a last guard. Not part of the package's API (no entry point
 * exports it); typed in dist/limits.d.ts for the CLI, which imports it as `#limits` (package.json's `imports`).
 */
export const MAX_TIMER_MS = 0x7fff_ffff;
