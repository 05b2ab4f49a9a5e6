// Worker for tests/interop/workerd.test.mjs: imports the package's workerd entry point (the .wasm comes in as a
// compiled WebAssembly.Module) and consumes the feed named in the POSTed job; answers with the consume() summary.

import * as api from '../../../dist/entrypoints/workerd.js';
import { consume } from '../consume.js';

/** A `fetch` that counts how the answers' bodies are read: the reader mode asked for, the reads, their bytes. */
function countingFetch(reads) {
  const wrap = (body) => ({
    getReader(options) {
      reads.modes.push(options?.mode ?? 'default');
      const reader = body.getReader(options);
      return {
        read: async (view) => {
          const r = await reader.read(view);
          if (!r.done) {
            reads.reads++;
            reads.bytes += r.value.byteLength;
            reads.largest = Math.max(reads.largest, r.value.byteLength);
          }
          return r;
        },
        cancel: (why) => reader.cancel(why),
      };
    },
  });
  return async (request) => {
    const res = await fetch(request);
    return new Proxy(res, { get: (t, k) => (k === 'body' ? t.body && wrap(t.body) : Reflect.get(t, k)) });
  };
}

export default {
  async fetch(request) {
    if (request.method !== 'POST') return new Response('POST a {url, options, how} job\n', { status: 405 });
    const { url, options, how } = await request.json();
    try {
      if (!how.countReads) return Response.json(await consume(api, url, options, how));
      const reads = { modes: [], reads: 0, bytes: 0, largest: 0 };
      const summary = await consume(api, url, { ...options, fetch: countingFetch(reads) }, how);
      return Response.json({ ...summary, reads });
    } catch (e) {
      return Response.json({ workerError: String((e && e.stack) || e) }, { status: 500 });
    }
  },
};
