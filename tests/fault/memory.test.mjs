// Memory stays bounded on a long page: a 200 MB page streamed through events() must not keep its chunks alive
// (regression: racing every read against one long-lived abort promise kept each chunk reachable, so
// arrayBuffers grew one-to-one with the page).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';

const enc = new TextEncoder();
const line = (p, i) => `{"partition":${p},"data":{"i":${i},"pad":"${'x'.repeat(250)}"}}\n`;

function body(mb) {
  let sent = 0;
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (sent > mb * 1e6) return c.close();
      let s = '';
      for (let k = 0; k < 200; k++, i++) {
        s += line(i % 4, i);
        if (i % 100 === 99) for (let p = 0; p < 4; p++) s += `{"partition":${p},"cursor":"${i}"}\n`;
      }
      const b = enc.encode(s);
      sent += b.length;
      c.enqueue(b);
    },
  });
}

test('a 200 MB page: ArrayBuffer memory stays bounded (< 32 MB growth)', async (t) => {
  let page = 0;
  const fetch = async () => new Response(page++ === 0 ? body(200) : '');
  const before = process.memoryUsage().arrayBuffers;
  let peak = 0;
  let n = 0;
  for await (const _ of api.openFeed('http://127.0.0.1:9/feed', { partitionCount: 4, fetch })) {
    if (++n % 20_000 === 0) peak = Math.max(peak, process.memoryUsage().arrayBuffers - before);
  }
  t.diagnostic(`events=${n} peak arrayBuffers growth=${(peak / 1e6).toFixed(1)} MB`);
  assert.ok(n > 600_000, `only ${n} events`);
  assert.ok(peak < 32e6, `arrayBuffers grew by ${(peak / 1e6).toFixed(0)} MB`);
});

// maxHeldBytes bounds what held events cost, their bookkeeping (28 bytes each in the wasm) included: a page of the
// smallest events and no checkpoint fails `no-progress` once that reaches the limit. It counted their text only (two
// bytes each), so the default 64 MiB held 33.5 million events (2.9 GB of rss at the error) and a limit of 128 MiB ran
// the wasm out of memory: the feed died with "attempted to take ownership of Rust value while it was borrowed".
test('a page of tiny events without a checkpoint: no-progress before their bookkeeping passes maxHeldBytes', async (t) => {
  const limit = 4 << 20;
  const chunk = enc.encode('{"partition":0,"data":0}\n'.repeat(4096));
  let reads = 0;
  const endless = new ReadableStream({
    pull(c) {
      reads++;
      c.enqueue(chunk);
    },
  });
  const fetch = async () => new Response(endless);
  const feed = api.openFeed('http://127.0.0.1:9/feed', { partitionCount: 1, fetch, retry: false, maxHeldBytes: limit });
  const e = await (async () => {
    for await (const _ of feed) assert.fail('no event can be delivered');
  })().catch((e) => e);
  assert.ok(api.isFeedError(e, 'no-progress'), String(e));
  const held = e.line - 1;
  t.diagnostic(`no-progress at line ${e.line} after ${reads} chunks of 4096 lines`);
  assert.ok(held <= limit / 28, `${held} events held under maxHeldBytes ${limit}: more than ${limit / 28} of 28 bytes`);
});
