// FeedAPI v2 chaos: the v2 reference server (tests/v2_server/server.mjs) behind the fault proxy (proxy.mjs: cut
// bodies, 500/503/429, stalled bodies, delayed headers, on discovery and events requests alike), while the publisher
// itself, driven from the consumer's progress, answers 409 storms, rotates its token, has a hot partition and closes a
// partition to split it into two children mid-run. An exactly-once consumer (each batch's effects and cursors committed
// together; a restart from the committed cursors when the feed gives up) must end with every event exactly once and
// every partition's cursor monotone.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';
import { startV2Server } from '../v2_server/server.mjs';
import { startFaultProxy } from './proxy.mjs';

let server;
before(async () => {
  server = await startV2Server();
});
after(async () => {
  await server?.close();
});

async function control(body) {
  const r = await fetch(`${server.url}/_control`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(r.status, 200);
}

/** The position of a cursor of the v2 server (opaque to clients; decoded here only to check monotony). */
const seqOf = (cursor) => Number(Buffer.from(cursor, 'base64url').toString().split('|')[2]);
const idOf = (e) => (typeof e.data === 'string' ? JSON.parse(e.data) : e.data).id;

test('v2 chaos: 1,000+ faults, 409 storms, token rotation, a hot partition, a split: every event once, cursors monotone', async (t) => {
  const proxy = await startFaultProxy({ upstream: server.url, seed: 20261129, faultRate: 0.75, stallMs: 5_000 });
  const db = { ids: [], cursors: {} };
  const c = { batches: 0, restarts: 0, retries: 0, storms: 0, rotations: 0, nonMonotone: 0, split: false, hotOff: false };
  const chaos = async () => {
    c.batches++;
    if (c.batches === 5) await control({ feed: 'feed', hot: { partition: '0', perRequest: 3 } });
    if (c.batches === 700 && !c.hotOff) {
      c.hotOff = true;
      await control({ feed: 'feed', hot: null });
    }
    if (c.batches === 150 && !c.split) {
      c.split = true;
      await control({ feed: 'feed', splitRunning: { partition: '1', children: ['4', '5'], count: 100 } });
    }
    if (c.batches < 1200 && c.batches % 37 === 0) {
      c.storms++;
      await control({ feed: 'feed', conflicts: 1 + (c.batches % 4) });
    }
    if (c.batches < 1200 && c.batches % 53 === 0) {
      c.rotations++;
      await control({ feed: 'feed', rotateToken: true });
    }
  };
  const started = Date.now();
  try {
    for (;;) {
      const feed = api.openFeed(`${proxy.url}/feed`, {
        protocol: 'v2',
        pageSizeHint: 2,
        cursors: { ...db.cursors },
        idleTimeoutMs: 60,
        retry: { initialMs: 1, maxMs: 4, maxAttempts: 8 },
        onRetry: () => c.retries++,
      });
      try {
        for await (const batch of feed.batches()) {
          const cursors = { ...db.cursors };
          for (const { partition, cursor } of batch.checkpoints) {
            if (cursors[partition] !== undefined && seqOf(cursor) < seqOf(cursors[partition])) c.nonMonotone++;
            cursors[partition] = cursor;
          }
          db.ids.push(...batch.events.map(idOf)); // commit: effects …
          db.cursors = cursors; // … and cursors together
          await chaos();
        }
        if (c.hotOff) break;
      } catch (e) {
        if (!api.isFeedError(e) || c.restarts >= 200) throw e;
        c.restarts++; // the retry budget ran out: start again from the committed cursors
      }
    }
  } finally {
    await proxy.close();
  }
  const s = proxy.stats;
  const conflicts = server.state.log.filter((r) => r.status === 409).length;
  const proxyFaults = s.cut + s.status + s.stall;
  const expected = await (await fetch(`${server.url}/expected?feed=feed`)).json();
  const want = Object.entries(expected.partitions).flatMap(([pid, list]) => list.map((e) => `${pid}-${e.seq}`));
  const have = new Set(db.ids);
  const lost = want.filter((id) => !have.has(id)).length;
  const duplicated = db.ids.length - have.size;
  const counts = Object.fromEntries(Object.entries(expected.partitions).map(([p, l]) => [p, l.length]));
  t.diagnostic(
    `v2 chaos: faults=${proxyFaults + conflicts} (cut=${s.cut} status=${s.status} stall=${s.stall} 409=${conflicts}; delayed=${s.delay}) ` +
      `storms=${c.storms} rotations=${c.rotations} split=${c.split} requests=${s.requests} retries=${c.retries} restarts=${c.restarts} ` +
      `events=${db.ids.length} unique=${have.size} expected=${want.length} ${JSON.stringify(counts)} lost=${lost} duplicated=${duplicated} ` +
      `nonMonotone=${c.nonMonotone} ${Date.now() - started} ms`,
  );
  assert.ok(proxyFaults + conflicts >= 1_000, `only ${proxyFaults + conflicts} faults were injected`);
  assert.ok(c.split && counts[4] === 100 && counts[5] === 100 && counts[0] > 500, 'the split and the hot partition happened');
  assert.equal(lost, 0, 'lost');
  assert.equal(duplicated, 0, 'duplicated');
  assert.equal(have.size, want.length);
  assert.equal(c.nonMonotone, 0);
  for (const [p, list] of Object.entries(expected.partitions)) {
    assert.equal(seqOf(db.cursors[p]), list.at(-1).seq, `partition ${p}'s cursor is at its end`);
  }
});
