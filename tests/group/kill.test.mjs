// The consumer-group kill test: worker processes (tests/group/worker.mjs) of one group share the reference server's
// 8-partition feed (/group/v1, 8 x 2500 events) into a real PostgreSQL server. During the run, following its progress
// (events applied), workers are SIGKILLed, SIGSTOPped until their leases expired and others took their partitions,
// then SIGCONTed, and new workers join. At the end: every event applied exactly once (the effects table counts every
// apply), every partition's cursor at its head, and the counts printed.
// Run: node --test --test-timeout=180000 --test-force-exit tests/group/kill.test.mjs
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { startPostgres } from '../db/postgres.mjs';
import { startRefServer } from '../interop/helpers.mjs';
import { PARTITIONS, EVENTS_PER_PARTITION, createEffects, effectsSummary, spawnGroupWorker } from './helpers.mjs';

const TOTAL = PARTITIONS * EVENTS_PER_PARTITION;
const LEASE_MS = 1_500;

let pg;
let ref;
const workers = new Map();
after(async () => {
  for (const w of workers.values()) if (w.exitCode === null && w.signalCode === null) w.kill('SIGKILL');
  await Promise.all([pg?.stop(), ref?.stop()]);
});

test('4 workers on 8 partitions, SIGKILLed, SIGSTOPped past their lease and resumed, new ones joining: every event exactly once, every partition at its head', async () => {
  [pg, ref] = await Promise.all([startPostgres(), startRefServer()]);
  const pool = pg.pool({ max: 4 });
  const schema = 'kill';
  await createEffects(pool, schema);
  const counts = { lostStops: 0, fenced: 0, kills: 0, stops: 0, joins: 0, assigns: 0, revokes: { rebalance: 0, lost: 0, shutdown: 0 }, fatal: [] };
  const log = [];
  let next = 0;
  const spawnWorker = () => {
    const member = `w${++next}`;
    const settings = { config: pg.config, url: `${ref.base}/group/v1`, schema, member, leaseMs: LEASE_MS, heartbeatMs: 300, pageSizeHint: 50, delayMs: 5 };
    const child = spawnGroupWorker(settings, (m) => {
      log.push(m);
      if (m.assign) counts.assigns++;
      if (m.revoke) counts.revokes[m.reason]++;
      if (m.fatal) counts.fatal.push(`${m.member}: ${m.fatal}`);
      if (m.done) counts.fenced += m.done.fenced;
    });
    workers.set(member, child);
    return child;
  };
  const applied = async () => (await pool.query(`SELECT count(*)::int AS n FROM ${schema}.applied`)).rows[0].n;
  const until = async (cond, what, ms = 90_000) => {
    const end = Date.now() + ms;
    while (!(await cond())) {
      if (Date.now() > end) throw new Error(`timed out waiting for ${what}; fatal: ${counts.fatal.join('; ')}`);
      await new Promise((r) => setTimeout(r, 50));
    }
  };
  const alive = () => [...workers.values()].filter((w) => w.exitCode === null && w.signalCode === null);
  const owned = async (member) =>
    (await pool.query(`SELECT partition FROM ${schema}.grp_leases WHERE group_name = 'kill' AND owner = $1 AND expires_at > now()`, [member])).rows.map((r) => r.partition);
  const atProgress = (share) => until(async () => (await applied()) >= share * TOTAL, `${share * 100}% applied`);
  /** A worker that holds partitions now (so killing or stopping it moves some). */
  const holder = async () => {
    let found;
    await until(async () => {
      for (const w of alive()) if (!w.stopped && (await owned(w.member)).length > 0) return (found = w);
      return false;
    }, 'a worker holding partitions');
    return found;
  };
  const kill = async () => {
    const w = await holder();
    w.kill('SIGKILL');
    await w.exited;
    counts.kills++;
  };
  const stopPastLease = async () => {
    const w = await holder();
    const had = await owned(w.member);
    w.stopped = true;
    w.kill('SIGSTOP');
    counts.stops++;
    // Past its lease: another member holds one of its partitions now (its own leases all expired).
    await until(async () => {
      const { rows } = await pool.query(
        `SELECT count(*) FILTER (WHERE owner = $1 AND expires_at > now())::int AS mine, count(*) FILTER (WHERE owner <> $1 AND expires_at > now())::int AS taken
         FROM ${schema}.grp_leases WHERE group_name = 'kill' AND partition = ANY($2::integer[])`,
        [w.member, had],
      );
      return rows[0].mine === 0 && rows[0].taken > 0;
    }, `the partitions of stopped ${w.member} taken over`);
    const seen = log.length;
    w.kill('SIGCONT');
    w.stopped = false;
    // Resumed, it finds the partitions taken over and says so (reason 'lost') before the test goes on: otherwise the
    // next kill() may pick it between its renewal and that revoke, and the revoke is never seen.
    await until(async () => log.slice(seen).some((m) => m.member === w.member && m.revoke && m.reason === 'lost'), `stopped ${w.member} revoking its partitions as lost`, 30_000);
    counts.lostStops++;
  };
  const join = () => {
    spawnWorker();
    counts.joins++;
  };

  for (let i = 0; i < 4; i++) spawnWorker();
  await atProgress(0.08);
  await kill();
  await atProgress(0.18);
  await stopPastLease();
  await atProgress(0.28);
  join();
  await atProgress(0.38);
  await kill();
  await atProgress(0.48);
  await stopPastLease();
  await atProgress(0.58);
  join();
  await atProgress(0.68);
  await kill();
  await until(async () => {
    const { rows } = await pool.query(`SELECT feed_key, cursors FROM ${schema}.cursors`);
    return rows.length === PARTITIONS && rows.every((r) => r.cursors[r.feed_key.split(':')[1]] === String(EVENTS_PER_PARTITION));
  }, 'every partition at its head');
  // Graceful shutdown of the survivors: each commits, releases its leases and leaves the group.
  const survivors = alive();
  for (const w of survivors) w.kill('SIGTERM');
  await Promise.all(survivors.map((w) => w.exited));
  const summary = await effectsSummary(pool, schema);
  // Only the survivors' leases: a worker SIGKILLed after its partitions reached their heads keeps its rows until they
  // expire (nobody needs to take them over), which says nothing about a graceful shutdown.
  const { rows: leases } = await pool.query(`SELECT count(*)::int AS held FROM ${schema}.grp_leases WHERE owner = ANY($1::text[])`, [
    survivors.map((w) => w.member),
  ]);
  const { rows: epochs } = await pool.query(`SELECT sum(epoch)::int AS takeovers FROM ${schema}.grp_leases`);
  const rebalances = counts.revokes.rebalance + counts.revokes.lost;
  console.log(
    `# group kill test: workers ${next}, kills ${counts.kills}, stops ${counts.stops}, joins ${counts.joins}, ` +
      `rebalances ${rebalances} (partitions moved by rebalance ${counts.revokes.rebalance}, lost by stopped workers ${counts.revokes.lost}), ` +
      `lease takeovers ${epochs[0].takeovers}, commits fenced ${counts.fenced}, events ${summary.events}, duplicates ${summary.duplicates}, losses ${summary.losses}`,
  );
  assert.deepEqual(counts.fatal, []);
  assert.equal(summary.duplicates, 0, 'no event applied twice');
  assert.equal(summary.losses, 0, 'no event lost');
  assert.ok(summary.perPartition.every((p) => p.n === EVENTS_PER_PARTITION && p.top === EVENTS_PER_PARTITION));
  assert.equal(counts.kills, 3);
  assert.equal(counts.stops, 2);
  assert.equal(counts.lostStops, 2, 'each stopped worker found its partitions taken over');
  assert.equal(leases[0].held, 0, 'the survivors released every lease');
  assert.equal(survivors.every((w) => w.exitCode === 0), true, 'the survivors stopped gracefully');
});
