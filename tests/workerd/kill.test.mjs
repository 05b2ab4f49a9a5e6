// Exactly-once on Workers: Miniflare (real workerd) runs examples/workers-durable-objects (one Durable Object per
// partition, alarm-driven catch-up, effects + cursor in one storage transaction) against the reference server, while
// the objects are reset at random moments from outside (/abort), in the middle of batches, and between a batch's
// effects and its cursor write (tests/workerd/harness.js: a store that splits the commit in two is caught there).
// Afterwards every partition must hold each of its 2,500 events exactly once. Also runs the README's Workers example.
// Run: node --test --test-timeout=240000 --test-force-exit tests/workerd/kill.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Miniflare } from 'miniflare';
import { startRefServer, repoRoot } from '../interop/helpers.mjs';
import { distModules, workerOptions } from './miniflare.mjs';

const ABORTS = Number(process.env.ABORTS ?? 30);
const CHAOS_RATE = process.env.CHAOS_RATE ?? '0.12';
const CURSOR_CHAOS_RATE = process.env.CURSOR_CHAOS_RATE ?? '0.12';
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const countBy = (list) => list.reduce((m, k) => ({ ...m, [k]: (m[k] ?? 0) + 1 }), {});
/** Rejects after ms: a Miniflare that hangs must fail the test, not the whole run (TOOLCHAIN.md pitfall 4). */
const within = (ms, promise, what) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms).unref())]);

let server;
const instances = [];
before(async () => {
  server = await startRefServer();
});
after(async () => {
  for (const mf of instances) await within(15_000, mf.dispose(), 'Miniflare dispose').catch((e) => console.error(e.message));
  await server?.stop();
});

/** dist/ as explicit modules, so that `'feedpump'` can be pointed at dist/entrypoints/workerd.js. */
/**
 * A module's source with `from 'feedpump'` pointed at the workerd entry point (and `from 'feedpump/<sub>'` at that
 * subpath's), as wrangler would resolve it.
 */
async function withPackage(file, code) {
  const source = code ?? (await readFile(path.join(repoRoot, file), 'utf8'));
  const entry = (sub) =>
    `./${path.relative(path.dirname(path.join(repoRoot, file)), path.join(repoRoot, `dist/entrypoints/${sub ?? 'workerd'}.js`))}`.replace('./../', '../');
  return { type: 'ESModule', path: path.join(repoRoot, file), contents: source.replace(/from 'feedpump(?:\/([a-z-]+))?'/g, (_, sub) => `from '${entry(sub)}'`) };
}

async function startWorker(modules, extra = {}) {
  const mf = new Miniflare(
    workerOptions({
      modules: [...modules, ...(await distModules(repoRoot))],
      modulesRoot: repoRoot,
      durableObjects: { CONSUMER: { className: 'PartitionConsumer', useSQLite: true } },
      bindings: { FEED_URL: server.feedUrl },
      ...extra,
    }),
  );
  instances.push(mf);
  await within(60_000, mf.ready, 'Miniflare start');
  return mf;
}

const call = async (mf, url, init) => {
  const res = await within(30_000, mf.dispatchFetch(url, init), url);
  return res.json();
};

/** Like call(), but a request that meets an object being reset (an error answer) is sent again. */
async function callAgain(mf, url, init) {
  for (let attempt = 1; ; attempt++) {
    const res = await within(30_000, mf.dispatchFetch(url, init), url);
    const text = await res.text();
    if (res.ok) return JSON.parse(text);
    if (attempt === 20) assert.fail(`${url}: ${res.status} ${text.slice(0, 300)}`);
    await sleep(50);
  }
}

test(`workerd: one Durable Object per partition, reset ${ABORTS} times from outside, mid-batch and before the cursor write → each event exactly once`, async (t) => {
  const midBatch = [];
  const beforeCursor = [];
  const mf = await startWorker(
    [
      { type: 'ESModule', path: path.join(repoRoot, 'tests/workerd/harness.js') },
      await withPackage('examples/workers-durable-objects/src/worker.js'),
    ],
    {
      bindings: { FEED_URL: server.feedUrl, CHAOS_RATE, CURSOR_CHAOS_RATE },
      serviceBindings: {
        KILLS: (request) => {
          const url = new URL(request.url);
          (url.pathname === '/before-cursor' ? beforeCursor : midBatch).push(url.search);
          return new Response('ok');
        },
      },
    },
  );
  const t0 = Date.now();
  const ns = await mf.getDurableObjectNamespace('CONSUMER');
  const stub = (p) => ns.get(ns.idFromName(`partition-${p}`));
  assert.deepEqual((await call(mf, 'http://worker.test/start', { method: 'POST' })).started, [0, 1, 2, 3]);

  let aborts = 0;
  let status;
  const done = (s) => s.every((x) => x.cursors[x.partition] === '2500');
  for (let round = 0; ; round++) {
    status = await callAgain(mf, 'http://worker.test/status');
    if (done(status)) break;
    if (Date.now() - t0 > 150_000) assert.fail(`not caught up in time: ${JSON.stringify(status)}`);
    if (aborts < ABORTS) {
      await sleep(50 + Math.random() * 250);
      const p = Math.floor(Math.random() * 4);
      // The reset ends the request with an error; the object is a new instance on the next request.
      await within(30_000, stub(p).fetch('https://consumer/abort'), 'abort').then((r) => r.text(), () => {});
      aborts++;
    } else {
      await sleep(200);
    }
    // Re-arm every alarm: a reset during an alarm leaves it to workerd's retry backoff otherwise.
    await callAgain(mf, 'http://worker.test/start', { method: 'POST' });
  }
  const ms = Date.now() - t0;
  const applied = status.reduce((n, s) => n + s.applied, 0);
  const distinct = status.reduce((n, s) => n + s.distinct, 0);
  const duplicates = status.reduce((n, s) => n + s.appliedMoreThanOnce, 0) + (applied - distinct);
  const losses = 4 * 2500 - distinct;
  const line =
    `workerd kill test: kills=${aborts + midBatch.length + beforeCursor.length} (outside=${aborts} mid-batch=${midBatch.length} ` +
    `before-cursor=${beforeCursor.length}: ${JSON.stringify(countBy(beforeCursor))}) events=${applied} ` +
    `distinct=${distinct} duplicates=${duplicates} losses=${losses} cursors=${JSON.stringify(status.map((s) => s.cursors))} ${ms} ms`;
  t.diagnostic(line);
  console.log(line);
  assert.ok(midBatch.length >= 3, `some resets hit the middle of a batch (${midBatch.length})`);
  assert.ok(beforeCursor.length >= 3, `some resets hit between the effects and the cursor write (${beforeCursor.length})`);
  assert.equal(duplicates, 0, 'duplicates');
  assert.equal(losses, 0, 'losses');
  assert.equal(applied, 10_000);
  for (const s of status) assert.deepEqual(s.cursors, { [s.partition]: '2500' });
});

test('README: the Workers example of consume() runs in workerd as written', async (t) => {
  const readme = await readFile(path.join(repoRoot, 'README.md'), 'utf8');
  const m = /<!-- consume-workers-example[^>]*-->\s*```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has a consume-workers-example block');
  const mf = await startWorker([await withPackage('tests/workerd/readme-example.js', m[1])]);
  let report;
  const t0 = Date.now();
  do {
    report = await call(mf, 'http://worker.test/?partition=2');
    if (!report.caughtUp) await sleep(100);
  } while (!report.caughtUp && Date.now() - t0 < 60_000);
  t.diagnostic(`README Workers example: ${JSON.stringify(report)} after ${Date.now() - t0} ms`);
  assert.deepEqual(report, { partition: 2, applied: 2500, caughtUp: true, cursors: { 2: '2500' } });
  const other = await call(mf, 'http://worker.test/?partition=0');
  assert.equal(other.partition, 0, 'another partition has its own object');
});
