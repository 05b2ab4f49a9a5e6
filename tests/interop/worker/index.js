// Worker for tests/interop/workerd.test.mjs: imports the package's workerd entry point (the .wasm comes in as a
// compiled WebAssembly.Module) and consumes the feed named in the POSTed job; answers with the consume() summary.

import * as api from '../../../dist/entrypoints/workerd.js';
import { consume } from '../consume.js';

export default {
  async fetch(request) {
    if (request.method !== 'POST') return new Response('POST a {url, options, how} job\n', { status: 405 });
    const { url, options, how } = await request.json();
    try {
      return Response.json(await consume(api, url, options, how));
    } catch (e) {
      return Response.json({ workerError: String((e && e.stack) || e) }, { status: 500 });
    }
  },
};
