// The "one Durable Object per partition" pattern over FeedAPI v2 in real workerd (Miniflare): four objects, each
// consuming `protocol: 'v2', partitions: [p]` into its own storage (tests/workerd/v2-partition-consumer.js), against
// the v2 reference server (tests/v2_server/server.mjs). Each object must hold exactly its partition's events, once;
// after a split of partition 1 (closed, children 4 and 5, new token) object 1 also reads the children.
// Run: node --test --test-timeout=180000 --test-force-exit tests/workerd/v2-partitions.test.mjs
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Miniflare } from 'miniflare';
import { repoRoot } from '../interop/helpers.mjs';
import { startV2Server } from '../v2_server/server.mjs';
import { distModules, workerOptions } from './miniflare.mjs';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const within = (ms, promise, what) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms).unref())]);

let server;
let mf;
before(async () => {
  server = await startV2Server();
});
after(async () => {
  if (mf) await within(15_000, mf.dispose(), 'Miniflare dispose').catch((e) => console.error(e.message));
  await server?.close();
});

/** dist/ as modules, and the consumer with `from 'feedpump'` pointed at the workerd entry point (`'feedpump/<sub>'` at that subpath's). */
async function modules() {
  const out = await distModules(repoRoot);
  const file = path.join(repoRoot, 'tests/workerd/v2-partition-consumer.js');
  const source = (await readFile(file, 'utf8')).replace(/from 'feedpump(?:\/([a-z-]+))?'/g, (_, sub) => `from '../../dist/entrypoints/${sub ?? 'workerd'}.js'`);
  return [{ type: 'ESModule', path: file, contents: source }, ...out];
}

async function status(p) {
  const res = await within(30_000, mf.dispatchFetch(`http://worker.test/?partition=${p}`), 'status');
  return res.json();
}

async function waitFor(what, check, ms = 90_000) {
  const t0 = Date.now();
  for (;;) {
    const all = await Promise.all([0, 1, 2, 3].map(status));
    if (check(all)) return all;
    if (Date.now() - t0 > ms) assert.fail(`${what}: not reached in time: ${JSON.stringify(all)}`);
    await sleep(200);
  }
}

test('workerd, v2: one Durable Object per partition reads only its partition (and its split children), each event once', async (t) => {
  mf = new Miniflare(
    workerOptions({
      modules: await modules(),
      modulesRoot: repoRoot,
      durableObjects: { CONSUMER: { className: 'PartitionConsumer', useSQLite: true } },
      bindings: { FEED_URL: `${server.url}/feed` },
    }),
  );
  await within(60_000, mf.ready, 'Miniflare start');
  const t0 = Date.now();
  for (const p of [0, 1, 2, 3]) await within(30_000, mf.dispatchFetch(`http://worker.test/start?partition=${p}`, { method: 'POST' }), 'start');
  const first = await waitFor('caught up', (all) => all.every((s) => s.caughtUp));
  t.diagnostic(`caught up after ${Date.now() - t0} ms: ${JSON.stringify(first.map((s) => s.byPartition))}`);
  for (const s of first) {
    assert.equal(s.error, undefined, `object ${s.partition}`);
    assert.deepEqual(s.byPartition, { [s.partition]: 500 }, `object ${s.partition} holds exactly its partition`);
    assert.equal(s.twice, 0);
    assert.deepEqual(Object.keys(s.cursors), [String(s.partition)], 'its identity and cursors name only its partition');
  }
  // Split partition 1 (method 1): closed, children 4 and 5, a new token. Object 1 reads them; the others do not.
  const r = await fetch(`${server.url}/_control`, {
    method: 'POST',
    body: JSON.stringify({ feed: 'feed', splitRunning: { partition: '1', children: ['4', '5'], count: 120 } }),
  });
  assert.equal(r.status, 200);
  for (const p of [0, 1, 2, 3]) await within(30_000, mf.dispatchFetch(`http://worker.test/start?partition=${p}`, { method: 'POST' }), 'start');
  const second = await waitFor('children read', (all) => all.every((s) => s.caughtUp) && all[1].byPartition[4] === 120 && all[1].byPartition[5] === 120);
  t.diagnostic(`after the split: ${JSON.stringify(second.map((s) => s.byPartition))} ${Date.now() - t0} ms`);
  assert.deepEqual(second[1].byPartition, { 1: 500, 4: 120, 5: 120 });
  for (const s of second) {
    assert.equal(s.twice, 0, `object ${s.partition}: no event twice`);
    if (s.partition !== 1) assert.deepEqual(s.byPartition, { [s.partition]: 500 });
  }
});
