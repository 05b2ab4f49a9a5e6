// 1,000+ injected faults between the client and the real reference server (tests/fault/proxy.mjs on 127.0.0.1): cut
// connections at random byte offsets (mid-line, mid-UTF-8), 500/503/429 with Retry-After, stalled bodies, delayed
// headers. An exactly-once consumer (each batch's effects and cursors committed together, and a restart from the
// committed cursors when the feed gives up) must end with every event exactly once and cursors monotone.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';
import { eventRecord } from '../interop/consume.js';
import { fetchExpected, lastCursors, startRefServer, verifyEvents } from '../interop/helpers.mjs';
import { startFaultProxy } from './proxy.mjs';

let server;
let expected;
before(async () => {
  server = await startRefServer();
  expected = await fetchExpected(server.base);
});
after(async () => {
  await server?.stop();
});

test('1,000+ injected faults: every event exactly once, cursors monotone per partition', async (t) => {
  const proxy = await startFaultProxy({ upstream: server.base, seed: 20261122, faultRate: 0.75, stallMs: 5_000 });
  // The "database": effects and cursors change together, once per committed batch.
  const db = { events: [], cursors: {} };
  let restarts = 0;
  let retries = 0;
  let nonMonotone = 0;
  const started = Date.now();
  try {
    for (;;) {
      const feed = api.openFeed(`${proxy.url}/feed/v1`, {
        partitionCount: 4,
        pageSizeHint: 2,
        cursors: { ...db.cursors },
        idleTimeoutMs: 60,
        retry: { initialMs: 1, maxMs: 4, maxAttempts: 8 },
        onRetry: () => retries++,
      });
      try {
        for await (const batch of feed.batches()) {
          const records = batch.events.map(eventRecord);
          const cursors = { ...db.cursors };
          for (const { partition, cursor } of batch.checkpoints) {
            if (cursors[partition] !== undefined && !(Number(cursor) > Number(cursors[partition]))) nonMonotone++;
            cursors[partition] = cursor;
          }
          db.events.push(...records); // commit: effects …
          db.cursors = cursors; // … and cursors together
        }
        break;
      } catch (e) {
        if (!api.isFeedError(e) || restarts >= 100) throw e;
        restarts++; // the retry budget ran out: start again from the committed cursors
      }
    }
  } finally {
    await proxy.close();
  }
  const s = proxy.stats;
  const failing = s.cut + s.status + s.stall;
  const v = verifyEvents({ events: db.events }, expected);
  t.diagnostic(
    `faults injected=${failing + s.delay} (cut=${s.cut} status=${s.status} stall=${s.stall} delayed=${s.delay}) ` +
      `requests=${s.requests} retries=${retries} restarts=${restarts} events=${v.received} unique=${v.unique} ` +
      `lost=${v.lost} duplicated=${v.duplicates} mismatched=${v.mismatches} nonMonotone=${nonMonotone} ${Date.now() - started} ms`,
  );
  assert.ok(failing >= 1_000, `only ${failing} failing faults were injected`);
  assert.deepEqual(v.firstProblems, []);
  assert.equal(v.lost, 0);
  assert.equal(v.duplicates, 0);
  assert.equal(v.unique, 10_000);
  assert.equal(nonMonotone, 0);
  assert.deepEqual(db.cursors, lastCursors(expected));
});
