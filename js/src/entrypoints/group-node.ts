/**
 * The `node` export condition of `feedpump/group`: instantiates the wasm (as `feedpump`'s node entry point does; once
 * per process), then exposes {@link consumeGroup}.
 *
 * @example
 * ```ts
 * import { consumeGroup } from 'feedpump/group'; // Node resolves this file
 * ```
 * @packageDocumentation
 */
import './node.js';

export * from '../group/index.js';
