// Exactly-once into PostgreSQL and SQLite: a consumer process (tests/stores/kill-consumer.mjs) consumes the reference
// feed (4 × 2,500 events, pages of 5 per partition) into the database and is SIGKILLed KILLS times (default 30) per
// store: at random moments (start-up, a request in flight, a transaction open or committing), and inside the open
// transaction, in the middle of a batch's effects or after all of them right before the cursor row is written. Then
// one more run catches up. Every event must be in the database exactly once and the stored cursors must be the
// server's last checkpoints.
// Run: node --test --test-concurrency=1 --test-timeout=180000 --test-force-exit tests/stores/kill.test.mjs
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import Database from 'better-sqlite3';
import { postgresStore } from 'feedpump/postgres';
import { sqliteStore } from 'feedpump/sqlite';
import { fetchExpected, lastCursors, repoRoot, startRefServer } from '../interop/helpers.mjs';
import { startPostgres } from '../db/postgres.mjs';

const KILLS = Number(process.env.KILLS ?? 30);
/** A chaos run stops at one of its first CHAOS_POINTS chaos points (two per batch of 20 events). */
const CHAOS_POINTS = Number(process.env.CHAOS_POINTS ?? 10);
/** A run killed at a random moment stops at this chaos point at the latest (20 batches), should the moment not come. */
const RANDOM_RUN_POINTS = 40;
const countBy = (list) => list.reduce((m, k) => ({ ...m, [k]: (m[k] ?? 0) + 1 }), {});

let server;
let expected;
let pg;
const dir = mkdtempSync(path.join(tmpdir(), 'feedpump-kill-'));
before(async () => {
  [server, pg] = await Promise.all([startRefServer(), startPostgres()]);
  expected = await fetchExpected(server.base);
});
after(async () => {
  await pg?.stop();
  await server?.stop();
  rmSync(dir, { recursive: true, force: true });
});

/**
 * Runs the consumer until it is caught up, SIGKILLing it KILLS times: every other run at a random moment, and every
 * run at the chaos point of its handler (inside the transaction) that the test picked for it, so no killing run gets
 * further than CHAOS_POINTS / 2 batches (a random run: RANDOM_RUN_POINTS / 2) and the feed (500 batches) always
 * outlasts the kills. Resolves with the kill counts and the last run's result.
 */
async function killRuns(args) {
  // The chaos runs alternate between the two points of a batch (odd: mid-batch, even: before the cursor row), each
  // at a random batch: both kinds are killed about equally often whatever the random draws.
  let chaosRuns = 0;
  const chaosPoint = () => (chaosRuns++ % 2) + 1 + 2 * Math.floor(Math.random() * (CHAOS_POINTS / 2));
  const kills = [];
  let runs = 0;
  for (;;) {
    runs++;
    const killing = kills.length < KILLS;
    const randomRun = killing && runs % 2 === 1;
    const child = spawn(process.execPath, [path.join(repoRoot, 'tests/stores/kill-consumer.mjs'), ...args], {
      cwd: repoRoot,
      env: { ...process.env, CHAOS_AT: String(!killing ? 0 : randomRun ? RANDOM_RUN_POINTS : chaosPoint()) },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (s) => (stderr += s));
    const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    const outcome = await new Promise((resolve) => {
      let out = '';
      child.stdout.setEncoding('utf8').on('data', (s) => {
        out += s;
        const lines = out.split('\n');
        out = lines.pop();
        for (const line of lines) {
          if (line.startsWith('in-tx ') && killing) {
            child.kill('SIGKILL');
            resolve({ kill: line.slice(6) });
          } else if (line.startsWith('done ')) resolve({ done: JSON.parse(line.slice(5)) });
        }
      });
      if (randomRun) {
        // A random moment: from the process start-up to well into its run (a run lives ~0.3-2 s before a chaos kill).
        setTimeout(() => {
          if (child.exitCode === null && child.signalCode === null && child.kill('SIGKILL')) resolve({ kill: 'random' });
        }, 100 + Math.random() * 600);
      }
      exited.then(({ code, signal }) => resolve({ exit: `code ${code} signal ${signal}` }));
    });
    await exited;
    if (outcome.done) return { kills, runs, result: outcome.done };
    if (outcome.exit) assert.fail(`the consumer exited on its own (${outcome.exit}): ${stderr.slice(-2000)}`);
    kills.push(outcome.kill);
  }
}

/** The kill test of one store: `rows()` gives the applied ids, `cursors()` the stored cursors. */
async function check(t, name, { args, rows, record }) {
  const t0 = Date.now();
  const { kills, runs, result } = await killRuns(args);
  const ids = await rows();
  const counts = new Map();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  const duplicates = ids.length - counts.size;
  const losses = expected.events.filter((e) => !counts.has(e.id)).length;
  const unexpected = [...counts.keys()].filter((id) => !expected.byId.has(id)).length;
  const stored = await record();
  const line =
    `${name} kill test: kills=${kills.length} ${JSON.stringify(countBy(kills))} runs=${runs} events=${ids.length} unique=${counts.size} ` +
    `duplicates=${duplicates} losses=${losses} unexpected=${unexpected} last-run=${JSON.stringify({ start: result.start, events: result.events })} ` +
    `cursors=${JSON.stringify(stored?.cursors)} ${Date.now() - t0} ms`;
  t.diagnostic(line);
  console.log(line);
  assert.ok(kills.length >= KILLS, `kills ${kills.length} >= ${KILLS}`);
  assert.ok((countBy(kills)['mid-batch'] ?? 0) >= 3, 'some kills in the middle of a batch, inside the transaction');
  assert.ok((countBy(kills)['before-cursor'] ?? 0) >= 3, 'some kills after the effects, right before the cursor row');
  assert.equal(duplicates, 0, 'duplicates');
  assert.equal(losses, 0, 'losses');
  assert.equal(unexpected, 0, 'unexpected');
  assert.equal(ids.length, 10_000);
  assert.deepEqual(stored.cursors, lastCursors(expected));
}

test(`postgres: the consumer SIGKILLed ${KILLS} times (also inside the transaction) → each event exactly once`, async (t) => {
  const pool = pg.pool();
  await check(t, 'postgres', {
    args: ['postgres', server.feedUrl, pg.connectionString],
    rows: async () => (await pool.query('SELECT id FROM applied')).rows.map((r) => r.id),
    record: () => postgresStore(pool).load('kill-test'),
  });
});

test(`sqlite: the consumer SIGKILLed ${KILLS} times (also inside the transaction) → each event exactly once`, async (t) => {
  const file = path.join(dir, 'kill.sqlite');
  await check(t, 'sqlite', {
    args: ['sqlite', server.feedUrl, file],
    rows: async () => {
      const db = new Database(file, { readonly: true });
      try {
        return db.prepare('SELECT id FROM applied').all().map((r) => r.id);
      } finally {
        db.close();
      }
    },
    record: async () => {
      const db = new Database(file);
      try {
        return await sqliteStore(db).load('kill-test');
      } finally {
        db.close();
      }
    },
  });
});
