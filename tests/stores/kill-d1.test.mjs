// Exactly-once into D1 on workerd: a runner process (tests/stores/kill-d1-runner.mjs) starts Miniflare with the
// examples/workers-d1 consumer (through tests/stores/d1-harness.js) on a persisted D1 database and consumes the
// reference feed (4 × 2,500 events); the test SIGKILLs the runner's process group (Node and workerd, which holds D1)
// KILLS times (default 30): at random moments after start-up, after the handler built a batch's statements, and while
// the store's batch() (guard, effects, cursor row) is being committed. Then one more run catches up. Every event must be
// in D1 exactly once and the stored cursors must be the server's last checkpoints.
// Run: node --test --test-timeout=240000 --test-force-exit tests/stores/kill-d1.test.mjs
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fetchExpected, lastCursors, repoRoot, startRefServer } from '../interop/helpers.mjs';

const KILLS = Number(process.env.KILLS ?? 30);
const CHAOS_RATE = process.env.CHAOS_RATE ?? '0.12';
const countBy = (list) => list.reduce((m, k) => ({ ...m, [k]: (m[k] ?? 0) + 1 }), {});

let server;
let expected;
const persist = mkdtempSync(path.join(tmpdir(), 'feedpump-d1-kill-'));
const children = new Set();
before(async () => {
  server = await startRefServer();
  expected = await fetchExpected(server.base);
});
after(async () => {
  for (const child of children) killGroup(child);
  await server?.stop();
  rmSync(persist, { recursive: true, force: true });
});

/** SIGKILL to the runner's whole process group: Node and its workerd. */
function killGroup(child) {
  try {
    process.kill(-child.pid, 'SIGKILL');
    return true;
  } catch {
    return false;
  }
}

test(`d1: workerd SIGKILLed ${KILLS} times (also while the batch commits) → each event exactly once`, async (t) => {
  const t0 = Date.now();
  const kills = [];
  let runs = 0;
  let status;
  while (status === undefined) {
    runs++;
    const killing = kills.length < KILLS;
    const child = spawn(process.execPath, [path.join(repoRoot, 'tests/stores/kill-d1-runner.mjs'), server.feedUrl, persist], {
      cwd: repoRoot,
      detached: true, // its own process group, so that workerd dies with it
      env: { ...process.env, CHAOS_RATE: killing ? CHAOS_RATE : '0' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.add(child);
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s) => (stderr += s));
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const outcome = await new Promise((resolve) => {
      let out = '';
      const kill = (where) => {
        if (killGroup(child)) resolve({ kill: where });
      };
      child.stdout.setEncoding('utf8').on('data', (s) => {
        out += s;
        const lines = out.split('\n');
        out = lines.pop();
        for (const line of lines) {
          if (line.startsWith('kill ') && killing) kill(line.slice(5));
          else if (line === 'ready' && killing && runs % 3 === 1) setTimeout(() => kill('random'), Math.random() * 600);
          else if (line.startsWith('done ')) resolve({ done: JSON.parse(line.slice(5)) });
        }
      });
      exited.then(({ code, signal }) => resolve({ exit: `code ${code} signal ${signal}` }));
    });
    await exited;
    children.delete(child);
    if (outcome.done) status = outcome.done;
    else if (outcome.exit) assert.fail(`the runner exited on its own (${outcome.exit}): ${stderr.slice(-2000)}`);
    else kills.push(outcome.kill);
  }
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
