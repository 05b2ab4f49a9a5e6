/**
 * `feedDefaults()`: the option defaults a caller may need to apply itself.
 * @packageDocumentation
 */
import type { FeedDefaults } from './types.js';
import { readerDefaults } from './wasm/feedpump.js';

/**
 * The defaults feedpump applies to the limits a caller leaves out (see {@link FeedDefaults}): read from the wasm, where
 * they are defined once, so a tool that reads a feed's answers itself can keep to the same bounds.
 *
 * @returns a fresh object
 * @example
 * ```ts
 * const { maxLineLength, idleTimeoutMs } = feedDefaults(); // 16777216, 60000
 * ```
 */
export function feedDefaults(): FeedDefaults {
  const { idleTimeoutMs, maxLineLength } = readerDefaults() as FeedDefaults;
  return { idleTimeoutMs, maxLineLength };
}
