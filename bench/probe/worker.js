// The workerd side of the benchmark with the shell probe (`npm run bench -- --probe`): bench/worker.js's handler,
// given the probe shell, whose wasm comes in as a compiled module (Miniflare's CompiledWasm rule).
import { handle } from '../worker.js';
import * as probe from './shell.js';
import wasm from './out/feedpump_bg.wasm';

let loaded;

export default {
  async fetch(request) {
    loaded ??= probe.ready(wasm);
    await loaded;
    return handle(request, probe);
  },
};
