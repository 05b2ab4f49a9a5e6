// Exactly-once into D1 on workerd: Miniflare runs the examples/workers-d1 consumer (through tests/stores/d1-harness.js)
// on a persisted D1 database and this test drives it (POST /consume) through the reference feed (4 × 2,500 events),
// SIGKILLing the workerd process, which runs both the Worker and D1, KILLS times (default 30): at random moments
// after start-up, after the handler built a batch's statements, and while the store's batch() (guard, effects, cursor
// row) is being committed. After each kill workerd is started again on the same D1 files. Then one more run catches
// up. Every event must be in D1 exactly once and the stored cursors must be the server's last checkpoints.
// Run: node --test --test-timeout=240000 --test-force-exit tests/stores/kill-d1.test.mjs
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { Miniflare } from 'miniflare';
import { fetchExpected, lastCursors, repoRoot, startRefServer } from '../interop/helpers.mjs';
import { distModules, workerOptions } from '../workerd/miniflare.mjs';

const KILLS = Number(process.env.KILLS ?? 30);
/** A chaos run stops at one of its first CHAOS_POINTS chaos points (two per batch of 80 events; the feed has 125). */
const CHAOS_POINTS = Number(process.env.CHAOS_POINTS ?? 4);
/** A run killed at a random moment stops at this chaos point at the latest, should the moment not come. */
const RANDOM_RUN_POINTS = 8;
const countBy = (list) => list.reduce((m, k) => ({ ...m, [k]: (m[k] ?? 0) + 1 }), {});
/** Rejects after ms: a Miniflare that hangs must fail the test, not the whole run (TOOLCHAIN.md pitfall 4). */
const within = (ms, promise, what) =>
  Promise.race([promise, new Promise((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer in ${ms} ms`)), ms).unref())]);

let server;
let expected;
let mf;
const persist = mkdtempSync(path.join(tmpdir(), 'feedpump-d1-kill-'));
before(async () => {
  server = await startRefServer();
  expected = await fetchExpected(server.base);
});
after(async () => {
  await mf?.dispose().catch(() => {});
  await server?.stop();
  rmSync(persist, { recursive: true, force: true });
});

/** The workerd processes Miniflare started (children of this process). */
function workerdPids() {
  const pids = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const m = /^\d+ \((.*)\) \S+ (\d+)/.exec(readFileSync(`/proc/${entry}/stat`, 'utf8'));
      if (m && Number(m[2]) === process.pid && m[1].startsWith('workerd')) pids.push(Number(entry));
    } catch {
      // gone meanwhile
    }
  }
  return pids;
}

/** A module with `from 'feedpump'` / `'feedpump/d1'` pointed at dist/, as a bundler would resolve them. */
function resolved(file) {
  const abs = path.join(repoRoot, file);
  const rel = (target) => {
    const r = path.relative(path.dirname(abs), path.join(repoRoot, target));
    return r.startsWith('.') ? r : `./${r}`;
  };
  const code = readFileSync(abs, 'utf8')
    .replace(/from 'feedpump'/g, `from '${rel('dist/entrypoints/workerd.js')}'`)
    .replace(/from 'feedpump\/d1'/g, `from '${rel('dist/stores/d1.js')}'`);
  return { type: 'ESModule', path: abs, contents: code };
}

test(`d1: workerd SIGKILLed ${KILLS} times (also while the batch commits) → each event exactly once`, async (t) => {
  const modules = [resolved('tests/stores/d1-harness.js'), resolved('examples/workers-d1/src/consumer.js'), ...(await distModules(repoRoot))];
  const t0 = Date.now();
  const kills = [];
  /** The kill of the current run: SIGKILL to workerd, counted once per run. */
  let killRun = () => {};
  let runs = 0;
  for (;;) {
    runs++;
    const killing = kills.length < KILLS;
    const randomRun = killing && runs % 3 === 1;
    let killed;
    killRun = (where) => {
      if (killed || !killing) return;
      killed = where;
      for (const pid of workerdPids()) process.kill(pid, 'SIGKILL');
    };
    mf = new Miniflare(workerOptions({
      modules,
      modulesRoot: repoRoot,
      d1Databases: ['DB'],
      d1Persist: persist,
      bindings: { FEED_URL: server.feedUrl, CHAOS_AT: String(!killing ? 0 : randomRun ? RANDOM_RUN_POINTS : 1 + Math.floor(Math.random() * CHAOS_POINTS)) },
      serviceBindings: {
        KILLS: (request) => {
          killRun(new URL(request.url).pathname.slice(1));
          return new Promise(() => {}); // workerd is gone
        },
      },
    }));
    await within(60_000, mf.ready, 'Miniflare start');
    assert.equal(workerdPids().length, 1, 'one workerd process to kill');
    const timer = randomRun ? setTimeout(() => killRun('random'), Math.random() * 600) : undefined;
    let caughtUp = false;
    try {
      while (!caughtUp && !killed) {
        const res = await within(60_000, mf.dispatchFetch('http://worker.test/consume', { method: 'POST' }), '/consume');
        const text = await res.text();
        if (killed) break;
        assert.ok(res.ok, `/consume: ${res.status} ${text.slice(0, 500)}`);
        caughtUp = JSON.parse(text).caughtUp;
      }
    } catch (e) {
      if (!killed) throw e; // a request cut by the kill fails; anything else is a failure of the test
    } finally {
      clearTimeout(timer);
    }
    if (killed) {
      kills.push(killed);
      await within(30_000, mf.dispose(), 'Miniflare dispose').catch(() => {});
      continue;
    }
    break;
  }
  const res = await within(30_000, mf.dispatchFetch('http://worker.test/status'), '/status');
  const status = await res.json();
  const duplicates = status.applied - status.distinct;
  const losses = expected.events.length - status.distinct;
  const line =
    `d1 kill test: kills=${kills.length} ${JSON.stringify(countBy(kills))} runs=${runs} events=${status.applied} distinct=${status.distinct} ` +
    `duplicates=${duplicates} losses=${losses} cursors=${JSON.stringify(status.cursors)} ${Date.now() - t0} ms`;
  t.diagnostic(line);
  console.log(line);
  assert.ok(kills.length >= KILLS, `kills ${kills.length} >= ${KILLS}`);
  assert.ok((countBy(kills)['in-batch'] ?? 0) >= 3, 'some kills while the batch was being committed');
  assert.equal(duplicates, 0, 'duplicates');
  assert.equal(losses, 0, 'losses');
  assert.equal(status.applied, 10_000);
  assert.deepEqual(status.cursors, lastCursors(expected));
});
