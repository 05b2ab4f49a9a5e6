// The one Miniflare configuration of the tests and the bench: the compatibility date, loopback only on a free port,
// and how modules are found (ES modules and the wasm as a compiled module, as wrangler bundles them). Each caller adds
// only its own script, bindings and storage.

import { readdir } from 'node:fs/promises';
import path from 'node:path';

/** The compatibility date every worker of the tests and the bench runs with. */
export const COMPATIBILITY_DATE = '2025-09-01';

/** Module rules: `*.js` and `*.mjs` are ES modules (Miniflare takes `*.js` for CommonJS otherwise), `*.wasm` compiled. */
export const MODULE_RULES = [
  { type: 'ESModule', include: ['**/*.js', '**/*.mjs'] },
  { type: 'CompiledWasm', include: ['**/*.wasm'] },
];

/** Miniflare options: the shared ones, then `options` (which may override them). */
export function workerOptions(options = {}) {
  return { compatibilityDate: COMPATIBILITY_DATE, host: '127.0.0.1', port: 0, ...options };
}

/** A worker whose entry is the file `scriptPath`, its imports resolved from the files under `root`. */
export function scriptWorker(root, scriptPath, options = {}) {
  return workerOptions({ modules: true, modulesRoot: root, rootPath: root, scriptPath, modulesRules: MODULE_RULES, ...options });
}

/** Every module of `<root>/dist` as Miniflare module entries (ES modules and the compiled wasm). */
export async function distModules(root) {
  const out = [];
  for (const entry of await readdir(path.join(root, 'dist'), { recursive: true })) {
    const file = path.join(root, 'dist', entry);
    if (file.endsWith('.js')) out.push({ type: 'ESModule', path: file });
    else if (file.endsWith('.wasm')) out.push({ type: 'CompiledWasm', path: file });
  }
  return out;
}
