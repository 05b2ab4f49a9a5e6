// consumeGroup against a real PostgreSQL server (tests/db/postgres.mjs) and the reference ZeroEventHub server's
// 8-partition feed (/group/v1): the assignment (pure), members sharing the partitions, rebalancing on joins with
// minimal moves, the lease fence inside the commit transaction, graceful stop handing the partitions over at once,
// pause and resume, and the status query.
// Run: node --test --test-concurrency=1 --test-timeout=120000 --test-force-exit tests/group/group.test.mjs
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { postgresStore } from 'feedpump/postgres';
import { consumeGroup, groupStatus } from 'feedpump/group';
import { assign } from '../../dist/group/assign.js';
import { isFeedError } from '../../dist/errors.js';
import { startPostgres } from '../db/postgres.mjs';
import { startRefServer } from '../interop/helpers.mjs';
import { PARTITIONS, EVENTS_PER_PARTITION, applyInto, createEffects, effectsSummary, spawnGroupWorker } from './helpers.mjs';

let pg;
let pool;
let ref;
let url;
before(async () => {
  [pg, ref] = await Promise.all([startPostgres(), startRefServer()]);
  pool = pg.pool({ max: 20 });
  url = `${ref.base}/group/v1`;
});
after(async () => {
  await Promise.all([pg?.stop(), ref?.stop()]);
});

let n = 0;
/** A fresh schema: effects table, cursor table and group tables in it. */
async function fresh() {
  const schema = `g${++n}`;
  await createEffects(pool, schema);
  const store = postgresStore(pool, { table: `${schema}.cursors` });
  return { schema, store, table: `${schema}.grp` };
}

/** Waits for `cond()` (polled every 50 ms); fails after `ms` with `what`. */
async function until(cond, what, ms = 60_000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const source = () => ({ url, partitionCount: PARTITIONS, pageSizeHint: 100, live: { minIntervalMs: 50, maxIntervalMs: 200 } });
const allAtHead = async (store, group, table) =>
  (await groupStatus(store, group, { table })).partitions.every((p) => p.cursor === String(EVENTS_PER_PARTITION));

test('assign: every partition to exactly one member, fair shares, deterministic, and minimal moves from any owners', () => {
  let seed = 7;
  const rand = (k) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31), seed % k);
  for (let round = 0; round < 2000; round++) {
    const P = 1 + rand(20);
    const M = 1 + rand(7);
    const parts = Array.from({ length: P }, (_, i) => i * 3 + rand(3));
    const members = Array.from({ length: M }, (_, i) => `m${rand(100)}-${i}`);
    const owners = new Map();
    for (const p of parts) if (rand(3) > 0) owners.set(p, rand(4) === 0 ? 'gone' : members[rand(M)]);
    const a = assign(parts, members, owners);
    const b = assign([...parts].reverse(), [...members].reverse(), new Map([...owners].reverse()));
    assert.deepEqual([...a].sort(), [...b].sort(), 'the same answer for the same snapshot in any order');
    const all = [...a.values()].flat().sort((x, y) => x - y);
    assert.deepEqual(all, [...new Set(parts)].sort((x, y) => x - y), 'every partition exactly once');
    const sizes = [...a.values()].map((t) => t.length);
    assert.ok(Math.max(...sizes) - Math.min(...sizes) <= 1, `fair shares: ${sizes}`);
    // Minimal moves: a member keeps min(owned, share) of its partitions; nothing else it owns is kept elsewhere.
    for (const [m, t] of a) {
      const mine = parts.filter((p) => owners.get(p) === m);
      const kept = mine.filter((p) => t.includes(p)).length;
      assert.equal(kept, Math.min(mine.length, t.length), `member ${m} keeps what it can`);
    }
  }
  // 8 partitions held 4/4, a third member joins: 2 moves (3/3/2), not more.
  const owners = new Map([0, 1, 2, 3, 4, 5, 6, 7].map((p) => [p, p < 4 ? 'a' : 'b']));
  const t = assign([0, 1, 2, 3, 4, 5, 6, 7], ['a', 'b', 'c'], owners);
  assert.deepEqual(t.get('a'), [0, 1, 2]);
  assert.deepEqual(t.get('b'), [4, 5, 6]);
  assert.deepEqual(t.get('c'), [3, 7]);
});

test('three members join one after another: fair shares with minimal moves, every event exactly once, every partition at its head, status lists it', async () => {
  const { schema, store, table } = await fresh();
  const log = [];
  const member = (id) =>
    consumeGroup(source(), {
      store,
      group: 'billing',
      table,
      memberId: id,
      leaseMs: 3_000,
      heartbeatMs: 200,
      handler: applyInto(schema, id),
      onAssign: (ps) => log.push({ id, assign: ps }),
      onRevoke: (ps, reason) => log.push({ id, revoke: ps, reason }),
    });
  const a = member('a');
  await until(() => a.assigned().length === PARTITIONS, 'a to hold every partition');
  const b = member('b');
  await until(() => a.assigned().length === 4 && b.assigned().length === 4, 'a 4/4 split');
  const c = member('c');
  await until(() => [a, b, c].every((m) => m.assigned().length >= 2) && a.assigned().length + b.assigned().length + c.assigned().length === PARTITIONS, 'a 3/3/2 split');
  await until(() => allAtHead(store, 'billing', table), 'every partition at its head');
  const status = await c.status();
  assert.deepEqual(status.members.map((m) => [m.memberId, m.live, m.paused]), [['a', true, false], ['b', true, false], ['c', true, false]]);
  assert.deepEqual(status.partitions.map((p) => p.partition), [0, 1, 2, 3, 4, 5, 6, 7]);
  for (const p of status.partitions) {
    assert.ok(['a', 'b', 'c'].includes(p.owner), `partition ${p.partition} has a live owner`);
    assert.equal(p.cursor, '2500');
    assert.ok(p.msSinceCommit >= 0 && p.committedAt > 0);
  }
  const results = await Promise.all([a.stop(), b.stop(), c.stop()]);
  const revokes = log.filter((e) => e.reason === 'rebalance').flatMap((e) => e.revoke).length;
  const sizes = [a, b, c].map((m) => results.find((r) => r.memberId === m.memberId));
  const summary = await effectsSummary(pool, schema);
  console.log(`# members a, b, c: moves by rebalance ${revokes}, events ${summary.events}, duplicates ${summary.duplicates}, losses ${summary.losses}, per member ${sizes.map((r) => `${r.memberId}=${r.events}`).join(' ')}`);
  assert.equal(revokes, 4 + 2, 'minimal moves: 4 when b joins (8/0 to 4/4), 2 when c joins (4/4 to 3/3/2)');
  assert.equal(summary.duplicates, 0);
  assert.equal(summary.losses, 0);
  assert.equal(results.reduce((s, r) => s + r.events, 0), PARTITIONS * EVENTS_PER_PARTITION);
  const after = await groupStatus(store, 'billing', { table });
  assert.deepEqual(after.members, [], 'stopped members left the group');
  assert.ok(after.partitions.every((p) => p.owner === undefined), 'and released every lease');
});

for (const [how, wrap] of [
  ['', (store) => store],
  // A store wrapping postgresStore that does not pass save()'s internal fifth argument: fenced inside the handler's
  // effects instead of right after BEGIN.
  [' (a store wrapping postgresStore)', (store) => ({ ...store, save: (key, record, effects, expected) => store.save(key, record, effects, expected) })],
]) test(`the fence${how}: a lease taken over while its owner commits waits for that commit, and the old owner commits nothing of the partition after it`, async () => {
  const { schema, store: plain, table } = await fresh();
  const store = wrap(plain);
  const order = [];
  let takeover;
  const lost = [];
  const apply = applyInto(schema, 'a');
  const a = consumeGroup({ ...source(), partitions: [0] }, {
    store,
    group: 'fence',
    table,
    memberId: 'a',
    leaseMs: 60_000,
    heartbeatMs: 20_000,
    handler: async (batch, client) => {
      await apply(batch, client);
      if (takeover === undefined) {
        // Inside a's commit transaction: another member takes the lease over (here by hand, as a member whose
        // clock says a's lease expired would). It must wait for this transaction: a's lease row is locked.
        order.push('takeover sent');
        takeover = pool
          .query(`UPDATE ${table}_leases SET owner = 'b', epoch = epoch + 1, expires_at = now() + interval '1 hour' WHERE group_name = 'fence' AND partition = 0 RETURNING epoch, committed_at`)
          .then(({ rows }) => rows[0]);
        await new Promise((r) => setTimeout(r, 200)); // give the takeover time to overtake, if it could
      }
    },
    onCommit: ({ cursors }) => order.push(`commit ${cursors[0]}`),
    onRevoke: (ps, reason) => lost.push({ ps, reason }),
  });
  await until(() => lost.length > 0, 'a to lose partition 0');
  const took = await takeover;
  await a.stop();
  console.log(`# fence: ${order.join(', ')}; takeover to epoch ${took.epoch}; revoked ${JSON.stringify(lost)}`);
  // The takeover ran after a's first commit (it saw the commit's stamp: before it, committed_at was NULL).
  assert.equal(took.epoch, '2');
  assert.ok(took.committed_at instanceof Date, 'the takeover waited for the commit in flight');
  assert.deepEqual(order, ['takeover sent', 'commit 100']);
  assert.equal(order.filter((o) => o.startsWith('commit')).length, 1, 'no commit after the takeover');
  assert.deepEqual(lost, [{ ps: [0], reason: 'lost' }]);
  const { rows } = await pool.query(`SELECT count(*)::int AS n, max(seq) AS top FROM ${schema}.applied`);
  assert.deepEqual(rows[0], { n: 100, top: 100 }, 'the effects of the first batch only');
  assert.equal((await store.load('fence:0')).cursors[0], '100');
});

/** The clients of `p` checked out (in use): 0 once every commit gave its client back or destroyed it. */
const inUse = (p) => p.totalCount - p.idleCount;

/**
 * A member (leaseMs `leaseMs`, a store with `storeOptions` on a pool of its own) whose handler hangs once, on its first
 * batch, after it applied it, until `open()`; then it applies the batch again through the same client (had the
 * client gone to a later commit, that apply would land there: a duplicate). `failed`: the first error reported (the
 * hung commit's), or the error of a wait of 20 s for one.
 */
async function hungOnce(name, leaseMs, storeOptions = {}) {
  const { schema } = await fresh();
  const own = pg.pool({ max: 4 });
  const store = postgresStore(own, { table: `${schema}.cursors`, ...storeOptions });
  const table = `${schema}.grp`;
  let open;
  const gate = new Promise((r) => (open = r));
  let stuck = false;
  let late;
  const errors = [];
  const revoked = [];
  const apply = applyInto(schema, 'a');
  const member = consumeGroup({ ...source(), partitions: [0] }, {
    store,
    group: name,
    table,
    memberId: 'a',
    leaseMs,
    heartbeatMs: 100,
    handler: async (batch, client) => {
      await apply(batch, client);
      if (!stuck) {
        stuck = true;
        await gate; // stuck inside the transaction, holding the lease row's and the cursor row's locks
        late = await apply(batch, client).then(() => 'applied', (e) => e);
      }
    },
    onRevoke: (ps, reason) => revoked.push(reason),
    onError: (e) => errors.push(e),
  });
  const failed = await until(() => errors.length > 0, 'the hung commit to fail', 20_000).then(() => errors[0], (e) => e);
  return { schema, store, table, own, member, errors, revoked, failed, open, late: () => late };
}

test('a batch stuck inside its commit (a handler that never settles): the commit fails once the server ends its idle session (a lease), its client destroyed; the partition is read again from the committed cursor, and the handler, woken later, applies nothing twice', async () => {
  const { schema, store, own, member, errors, revoked, failed, open, late } = await hungOnce('stuck', 1_000);
  let head;
  try {
    assert.ok(isFeedError(failed, 'store-failed'), `the hung commit did not fail while its handler hung: ${failed?.message ?? failed}`);
    assert.match(failed.message, /connection was lost while the handler ran \(SQLSTATE 25P03/);
    await until(async () => (await store.load('stuck:0'))?.cursors[0] === String(EVENTS_PER_PARTITION), 'partition 0 at its head');
    head = true;
  } finally {
    open(); // the stuck handler goes on: its client is closed, it commits nothing
    if (head) await until(() => late() !== undefined, 'the woken handler to finish');
    await member.stop();
  }
  const { rows } = await pool.query(`SELECT count(*)::int AS n, coalesce(sum(applies - 1), 0)::int AS dup FROM ${schema}.applied`);
  console.log(`# stuck batch: ${failed.code} (${failed.message.slice(0, 80)}...), revoked ${revoked.join(',')}, events ${rows[0].n}, duplicates ${rows[0].dup}, then: ${errors.map((e) => e.code).join(',')}`);
  assert.ok(late() instanceof Error, `the woken handler's apply: ${late()}`);
  assert.deepEqual(rows[0], { n: EVENTS_PER_PARTITION, dup: 0 });
  assert.equal(inUse(own), 0, `the store's pool has ${own.totalCount} clients, ${own.idleCount} idle: one is still checked out`);
});

test('a batch stuck inside its commit, with the store\'s handlerTimeoutMs shorter than the lease: the commit fails after handlerTimeoutMs, the member reads on, nothing applied twice', async () => {
  // A 60 s lease: the server would end the idle session only after it.
  const { schema, store, own, member, failed, open, late } = await hungOnce('stuck-timeout', 60_000, { handlerTimeoutMs: 300 });
  let head;
  try {
    assert.ok(isFeedError(failed, 'store-failed'), `the hung commit did not fail while its handler hung: ${failed?.message ?? failed}`);
    assert.match(failed.message, /did not settle within handlerTimeoutMs \(300 ms\)/);
    await until(async () => (await store.load('stuck-timeout:0'))?.cursors[0] === String(EVENTS_PER_PARTITION), 'partition 0 at its head');
    head = true;
  } finally {
    open();
    if (head) await until(() => late() !== undefined, 'the woken handler to finish');
    await member.stop();
  }
  const { rows } = await pool.query(`SELECT count(*)::int AS n, coalesce(sum(applies - 1), 0)::int AS dup FROM ${schema}.applied`);
  assert.ok(late() instanceof Error, `the woken handler's apply: ${late()}`);
  assert.deepEqual(rows[0], { n: EVENTS_PER_PARTITION, dup: 0 });
  assert.equal(inUse(own), 0, `the store's pool has ${own.totalCount} clients, ${own.idleCount} idle: one is still checked out`);
});

test('stop() while a heartbeat\'s statement waits: stop() settles after that heartbeat, with no client of the member still checked out', async () => {
  const { schema } = await fresh();
  const own = pg.pool({ max: 4 });
  const store = postgresStore(own, { table: `${schema}.cursors` });
  const table = `${schema}.grp`;
  const member = consumeGroup({ ...source(), partitions: [0] }, { store, group: 'beat', table, memberId: 'a', leaseMs: 10_000, heartbeatMs: 100, handler: () => {} });
  const locker = await pool.connect();
  try {
    const beats = () => pool.query(`SELECT 1 FROM ${table}_members WHERE member_id = 'a'`).then((r) => r.rows.length, () => 0); // no table yet
    await until(async () => (await beats()) === 1, 'the first heartbeat');
    // The member's next heartbeat waits on its row, locked here.
    await locker.query('BEGIN');
    await locker.query(`SELECT 1 FROM ${table}_members WHERE member_id = 'a' FOR UPDATE`);
    await until(
      async () => (await pool.query("SELECT 1 FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND query LIKE 'INSERT INTO %_members%'")).rows.length > 0,
      'a heartbeat waiting on the locked row',
    );
    let stopped = false;
    const stopping = member.stop().then(() => (stopped = true));
    await new Promise((r) => setTimeout(r, 300));
    assert.equal(stopped, false, `stop() settled while its heartbeat's statement still waited, holding ${inUse(own)} client(s) of the pool`);
    await locker.query('COMMIT');
    await stopping;
    assert.equal(inUse(own), 0, `the store's pool has ${own.totalCount} clients, ${own.idleCount} idle after stop(): one is still checked out`);
  } finally {
    await locker.query('ROLLBACK').catch(() => {});
    locker.release();
    await member.stop();
    await own.end();
  }
});

test('the server ends the commit transaction\'s session while the handler runs (the idle timeout after a SIGSTOP, a terminated backend): the batch is tried again, the member does not stop', async () => {
  const { schema, store, table } = await fresh();
  const apply = applyInto(schema, 'a');
  let terminated = 0;
  const member = consumeGroup({ ...source(), partitions: [0] }, {
    store,
    group: 'terminated',
    table,
    memberId: 'a',
    leaseMs: 5_000,
    heartbeatMs: 100,
    handler: async (batch, client) => {
      if (terminated === 0) {
        terminated++;
        const { rows } = await client.query('SELECT pg_backend_pid() AS pid');
        await pool.query('SELECT pg_terminate_backend($1)', [rows[0].pid]);
      }
      await apply(batch, client); // fails on the first batch: its session is gone
    },
  });
  let failed;
  member.done.catch((e) => (failed = e));
  await until(async () => failed !== undefined || (await store.load('terminated:0'))?.cursors[0] === String(EVENTS_PER_PARTITION), 'partition 0 at its head');
  assert.equal(failed, undefined, `the member stopped: ${failed?.message}`);
  await member.stop();
  const { rows } = await pool.query(`SELECT count(*)::int AS n, coalesce(sum(applies - 1), 0)::int AS dup FROM ${schema}.applied`);
  console.log(`# terminated session: events ${rows[0].n}, duplicates ${rows[0].dup}`);
  assert.deepEqual(rows[0], { n: EVENTS_PER_PARTITION, dup: 0 });
});

test('the session ends after the store locked the cursor row, before the handler runs (this process stopped there past a lease): the batch is tried again, the member does not stop', async () => {
  const { schema } = await fresh();
  // The store's pool, as it is but for one thing: once, right after the store's SELECT ... FOR UPDATE of the cursor
  // row, the transaction's backend is terminated and node-postgres has emitted 'error' on the client, before the
  // handler runs (what a SIGSTOP there past the idle timeout does, without its timing).
  let armed = true;
  const ending = {
    connect: async () => {
      const client = await pool.connect();
      const { query, release } = client;
      client.query = async function (...args) {
        const result = await query.apply(client, args);
        if (armed && typeof args[0] === 'string' && /cursors"? WHERE feed_key = \$1 FOR UPDATE/.test(args[0])) {
          armed = false;
          const lost = new Promise((resolve) => client.once('error', resolve));
          await pool.query('SELECT pg_terminate_backend($1)', [client.processID]);
          await lost;
        }
        return result;
      };
      client.release = (...a) => {
        client.query = query;
        client.release = release;
        return release.apply(client, a);
      };
      return client;
    },
  };
  const store = postgresStore(ending, { table: `${schema}.cursors` });
  const apply = applyInto(schema, 'a');
  const member = consumeGroup({ ...source(), partitions: [0] }, {
    store,
    group: 'ended-early',
    table: `${schema}.grp`,
    memberId: 'a',
    leaseMs: 5_000,
    heartbeatMs: 100,
    handler: apply, // its first statement fails on the first batch: 'not queryable', no SQLSTATE
  });
  let failed;
  member.done.catch((e) => (failed = e));
  await until(async () => failed !== undefined || (await store.load('ended-early:0'))?.cursors[0] === String(EVENTS_PER_PARTITION), 'partition 0 at its head');
  assert.equal(armed, false, 'the session was ended once');
  assert.equal(failed, undefined, `the member stopped: ${failed?.message}`);
  await member.stop();
  const { rows } = await pool.query(`SELECT count(*)::int AS n, coalesce(sum(applies - 1), 0)::int AS dup FROM ${schema}.applied`);
  assert.deepEqual(rows[0], { n: EVENTS_PER_PARTITION, dup: 0 });
});

test('stop() finishes the batch, releases the leases, and another member takes over at once (long before the lease would expire)', async () => {
  const { schema, store, table } = await fresh();
  const opts = (id) => ({ store, group: 'handover', table, memberId: id, leaseMs: 600_000, heartbeatMs: 100, handler: applyInto(schema, id) });
  const a = consumeGroup(source(), opts('a'));
  await until(() => a.assigned().length === PARTITIONS, 'a to hold every partition');
  const b = consumeGroup(source(), opts('b'));
  await until(() => b.assigned().length === 4, 'b to get its share');
  const stopped = Date.now();
  const ra = await a.stop();
  await until(() => b.assigned().length === PARTITIONS, 'b to take a\'s partitions', 30_000);
  console.log(`# handover: b held every partition ${Date.now() - stopped} ms after a.stop() (lease 600000 ms); a applied ${ra.events}`);
  await until(() => allAtHead(store, 'handover', table), 'every partition at its head');
  await b.stop();
  const summary = await effectsSummary(pool, schema);
  assert.deepEqual([summary.duplicates, summary.losses], [0, 0]);
});

test('an onError that throws stops the member (done rejects with its error, the leases are given back); it is never an unhandled rejection', async () => {
  // The feed answers 404: each partition's consume() fails with a FeedError that is reported to onError.
  const { store, table } = await fresh();
  const unhandled = [];
  const onUnhandled = (e) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  const thrown = new Error('onError threw');
  let told = 0;
  const a = consumeGroup({ url: `${ref.base}/missing/v1`, partitionCount: 2 }, {
    store,
    group: 'throwing-on-error',
    table,
    memberId: 'a',
    leaseMs: 3_000,
    heartbeatMs: 100,
    handler: () => {},
    onError: () => {
      told++;
      throw thrown;
    },
  });
  try {
    const settled = await Promise.race([a.done.then(() => 'resolved', (e) => e), new Promise((r) => setTimeout(() => r('still running'), 5_000))]);
    assert.equal(settled, thrown, `done: ${settled}`);
    assert.ok(told >= 1);
    const status = await groupStatus(store, 'throwing-on-error', { table });
    assert.deepEqual([status.members, status.partitions.map((p) => p.owner)], [[], [undefined, undefined]], 'the member left and gave its leases back');
  } finally {
    await a.stop().catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    process.off('unhandledRejection', onUnhandled);
  }
  assert.deepEqual(unhandled, []);
});

test('a policy function that throws stops the member: done rejects with hook-failed (its error the cause), never reported and retried', async () => {
  const { store, table } = await fresh();
  const thrown = new TypeError('policy threw');
  const reported = [];
  const a = consumeGroup({ url, partitionCount: PARTITIONS }, {
    store,
    group: 'throwing-policy',
    table,
    memberId: 'a',
    leaseMs: 3_000,
    heartbeatMs: 100,
    handler: () => {},
    onMissingCursors: () => {
      throw thrown;
    },
    onError: (e) => reported.push(e),
  });
  try {
    const settled = await Promise.race([a.done.then(() => 'resolved', (e) => e), new Promise((r) => setTimeout(() => r('still running'), 5_000))]);
    assert.ok(isFeedError(settled, 'hook-failed'), `done: ${settled}`);
    assert.equal(settled.cause, thrown);
    assert.deepEqual(reported, []);
  } finally {
    await a.stop().catch(() => {});
  }
});

test('a role without CREATE on the schema runs a group on the tables its migrations made', async () => {
  // Least privilege: the members' role may read and write the group's tables, not create any; the tables exist.
  const { schema, store: owners, table } = await fresh();
  await groupStatus(owners, 'least', { table }); // creates the group tables (as the owner would, in a migration)
  await owners.migrate();
  await pool.query(`DROP ROLE IF EXISTS grp_dml; CREATE ROLE grp_dml LOGIN; GRANT USAGE ON SCHEMA ${schema} TO grp_dml;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO grp_dml`);
  const app = pg.pool({ user: 'grp_dml', max: 10 });
  const store = postgresStore(app, { table: `${schema}.cursors`, createTable: false });
  const errors = [];
  const a = consumeGroup(source(), { store, group: 'least', table, memberId: 'a', leaseMs: 3_000, heartbeatMs: 100, handler: applyInto(schema, 'a'), onError: (e) => errors.push(e.message) });
  const ended = a.done.then(() => 'resolved', (e) => `rejected: ${e.message}`);
  try {
    await until(async () => errors.length > 0 || (await Promise.race([ended, null])) !== null || (a.assigned().length === PARTITIONS && (await allAtHead(owners, 'least', table))), 'every partition at its head, or a failure');
  } finally {
    await a.stop().catch(() => {});
  }
  assert.deepEqual([errors.slice(0, 1), await Promise.race([ended, 'running'])], [[], 'resolved']);
  const summary = await effectsSummary(pool, schema);
  assert.deepEqual([summary.events, summary.duplicates, summary.losses], [PARTITIONS * EVENTS_PER_PARTITION, 0, 0]);
});

test('status: caughtUp only while a member holds the partition (a released or expired lease is read by nobody)', async () => {
  const { schema, store, table } = await fresh();
  const a = consumeGroup(source(), { store, group: 'lag', table, memberId: 'a', leaseMs: 600_000, heartbeatMs: 100, handler: applyInto(schema, 'a') });
  await until(async () => {
    const { partitions } = await a.status();
    return partitions.length === PARTITIONS && partitions.every((p) => p.caughtUp && p.owner === 'a' && p.cursor === String(EVENTS_PER_PARTITION));
  }, 'a caught up on every partition');
  await a.stop();
  const after = await groupStatus(store, 'lag', { table });
  assert.deepEqual(after.partitions.map((p) => [p.owner, p.caughtUp, p.cursor]), Array(PARTITIONS).fill([undefined, false, String(EVENTS_PER_PARTITION)]));
});

test('pause() keeps the leases and stops reading; resume() reads on from the committed cursors', async () => {
  const { schema, store, table } = await fresh();
  const count = async () => (await pool.query(`SELECT count(*)::int AS n FROM ${schema}.applied`)).rows[0].n;
  let pauseOnCommit = true;
  const member = consumeGroup(source(), {
    store,
    group: 'pausing',
    table,
    memberId: 'a',
    leaseMs: 1_000,
    heartbeatMs: 100,
    handler: applyInto(schema, 'a'),
    onCommit: () => {
      if (pauseOnCommit) member.pause();
    },
  });
  const beats = async (k) => {
    let last = (await groupStatus(store, 'pausing', { table })).members[0]?.heartbeatAt ?? 0;
    let seen = 0;
    await until(async () => {
      const now = (await groupStatus(store, 'pausing', { table })).members[0]?.heartbeatAt ?? 0;
      if (now > last) (seen++, (last = now));
      return seen >= k;
    }, `${k} heartbeats`);
  };
  await until(async () => (await count()) > 0, 'a first commit');
  await beats(3); // the batches in flight when it paused commit
  const n1 = await count();
  await beats(12); // longer than the lease: the paused member renews it
  const status = await groupStatus(store, 'pausing', { table });
  assert.equal(await count(), n1, 'nothing applied while paused');
  assert.ok(n1 < PARTITIONS * EVENTS_PER_PARTITION);
  assert.deepEqual(status.members.map((m) => m.paused), [true]);
  assert.ok(status.partitions.every((p) => p.owner === 'a' && p.epoch === 1), 'the leases are kept, never taken over');
  pauseOnCommit = false;
  member.resume();
  await until(() => allAtHead(store, 'pausing', table), 'every partition at its head');
  const result = await member.stop();
  const summary = await effectsSummary(pool, schema);
  console.log(`# pause: ${n1} events before the pause, ${result.events} in all, duplicates ${summary.duplicates}, losses ${summary.losses}`);
  assert.deepEqual([summary.duplicates, summary.losses], [0, 0]);
});

test('members starting at once on fresh tables all set them up (CREATE TABLE IF NOT EXISTS racing on the catalog)', async () => {
  // Concurrent CREATE TABLE IF NOT EXISTS can fail with 23505, 42P07 or 42710 ("type ... already exists"): each
  // round creates the group tables and a cursor table from 8 callers at once.
  const failures = [];
  for (let round = 0; round < 30; round++) {
    const store = postgresStore(pool, { table: `race${round}_cursors` });
    const out = await Promise.allSettled(Array.from({ length: 8 }, () => groupStatus(store, 'g', { table: `race${round}_grp` })));
    for (const o of out) if (o.status === 'rejected') failures.push(o.reason.message);
  }
  assert.deepEqual(failures, []);
});

test('bad options are refused with bad-options', () => {
  const store = postgresStore(pool);
  const ok = { store, group: 'g', handler: () => {} };
  for (const [src, opts] of [
    [{ url, protocol: 'v1' }, ok], // v1 needs the count ({ url } alone is FeedAPI v2: tests/group/v2.test.mjs)
    [{ url, partitionCount: 2 }, { ...ok, group: '' }],
    [{ url, partitionCount: 2 }, { ...ok, store: { load() {}, save() {} } }],
    [{ url, partitionCount: 2 }, { ...ok, leaseMs: 1_000, heartbeatMs: 600 }],
    // Past a timer's limit: PostgreSQL's idle_in_transaction_session_timeout (set to the lease in every commit)
    // refuses it, so every commit would fail.
    [{ url, partitionCount: 2 }, { ...ok, leaseMs: 2 ** 31, heartbeatMs: 100 }],
    [{ url, partitionCount: 2 }, { ...ok, leaseMs: NaN }],
    [{ url, partitionCount: 2 }, { ...ok, onHandlerError: 'Skip' }], // a typo would act as 'stop'
    [{ url, partitionCount: 2 }, { ...ok, table: 'bad name' }],
    [{ url, protocol: 'v2', partitions: [0] }, ok], // a v2 group reads what discovery lists
    [{ url, partitionCount: 2, partitions: [2] }, ok],
  ]) {
    assert.throws(() => consumeGroup(src, opts), (e) => isFeedError(e, 'bad-options'));
  }
});

test('a member stopped (SIGSTOP) inside a commit right after the store locked the cursor row: the server ends its transaction after a lease, and another member reads its partitions to their heads', async () => {
  const { schema, store, table } = await fresh();
  const said = [];
  const frozen = spawnGroupWorker(
    { config: pg.config, url, schema, member: 'a', leaseMs: 1_500, heartbeatMs: 300, pageSizeHint: 100, delayMs: 0, stopInCursorLock: true, group: 'frozen', table },
    (m) => said.push(m),
  );
  let b;
  try {
    await until(() => said.some((m) => m.stopping), 'a to stop in a commit');
    b = consumeGroup(source(), { store, group: 'frozen', table, memberId: 'b', leaseMs: 1_500, heartbeatMs: 300, handler: applyInto(schema, 'b') });
    // The lease of a takes 1.5 s to expire, and the server ends a's idle transaction after a lease (1.5 s) too.
    await until(() => allAtHead(store, 'frozen', table), 'every partition at its head, read by b', 20_000);
  } finally {
    frozen.kill('SIGKILL');
    await frozen.exited;
    await b?.stop();
  }
  const summary = await effectsSummary(pool, schema);
  console.log(`# stopped in the cursor lock: events ${summary.events}, duplicates ${summary.duplicates}, losses ${summary.losses}`);
  assert.deepEqual([summary.duplicates, summary.losses], [0, 0]);
});

test('stop() while a handler never returns: done settles after a lease (the batch commits nothing), the other partitions are given back at once', async () => {
  const { schema, store, table } = await fresh();
  const apply = applyInto(schema, 'a');
  let entered = false;
  let unblock; // called once the test is over: the hung handler's client goes back to the pool, which after() ends
  const a = consumeGroup({ ...source(), partitions: [0, 1] }, {
    store,
    group: 'hung',
    table,
    memberId: 'a',
    leaseMs: 1_000,
    heartbeatMs: 100,
    handler: async (batch, client) => {
      await apply(batch, client);
      if (batch.events[0]?.partition === 0 && !entered) {
        entered = true;
        await new Promise((r) => (unblock = r)); // does not settle while the test runs
      }
    },
  });
  await until(() => entered && a.assigned().length === 2, 'the handler of partition 0 to hang');
  const stopped = Date.now();
  let settled;
  let took;
  let status;
  try {
    settled = await Promise.race([a.stop().then(() => 'resolved', (e) => `rejected: ${e.message}`), new Promise((r) => setTimeout(() => r('still running'), 10_000))]);
    took = Date.now() - stopped;
    status = await groupStatus(store, 'hung', { table });
  } finally {
    unblock();
  }
  console.log(`# stop() with a hung handler: ${settled} after ${took} ms; owners ${JSON.stringify(status.partitions.map((p) => p.owner ?? null))}`);
  assert.equal(settled, 'resolved');
  assert.deepEqual(status.members, [], 'the member left the group');
  assert.equal(status.partitions.find((p) => p.partition === 1).owner, undefined, 'partition 1 was given back');
  // Another member reads partition 0 from its committed cursor: nothing of the hung batch was committed.
  const b = consumeGroup({ ...source(), partitions: [0, 1] }, { store, group: 'hung', table, memberId: 'b', leaseMs: 1_000, heartbeatMs: 100, handler: applyInto(schema, 'b') });
  await until(async () => (await groupStatus(store, 'hung', { table })).partitions.every((p) => p.cursor === String(EVENTS_PER_PARTITION)), 'partitions 0 and 1 at their heads');
  await b.stop();
  const { rows } = await pool.query(`SELECT count(*)::int AS n, coalesce(sum(applies - 1), 0)::int AS dup FROM ${schema}.applied`);
  assert.deepEqual(rows[0], { n: 2 * EVENTS_PER_PARTITION, dup: 0 });
});

test('a member whose setup fails leaves no listener on the source\'s signal (a retry loop on a long-lived signal grows nothing)', async () => {
  const { getEventListeners } = await import('node:events');
  const refused = pg.pool({ user: 'no_such_role', max: 1 }); // the server refuses the login: the setup fails
  const store = postgresStore(refused);
  const controller = new AbortController();
  const codes = [];
  for (let i = 0; i < 12; i++) {
    const m = consumeGroup({ url, partitionCount: 2, signal: controller.signal }, { store, group: 'setup', handler: () => {} });
    codes.push(await m.done.then(() => 'resolved', (e) => e.code));
  }
  assert.deepEqual(new Set(codes), new Set(['store-failed']));
  assert.equal(getEventListeners(controller.signal, 'abort').length, 0);
});

test('stop() while the database does not answer (its backends stopped): done settles within two leases', async () => {
  const { schema, table } = await fresh();
  // Two connections, both open (idle ones are kept): once their backends are stopped, no statement of the member is answered.
  const frozenPool = pg.pool({ max: 2, idleTimeoutMillis: 0, application_name: 'frozen-db' });
  const store = postgresStore(frozenPool, { table: `${schema}.cursors` });
  const a = consumeGroup(source(), { store, group: 'frozen-db', table, memberId: 'a', leaseMs: 1_000, heartbeatMs: 100, handler: applyInto(schema, 'a') });
  await until(() => a.assigned().length === PARTITIONS, 'a to hold every partition');
  const backends = async () => (await pool.query("SELECT pid FROM pg_stat_activity WHERE application_name = 'frozen-db'")).rows.map((r) => r.pid);
  await until(async () => (await backends()).length === 2, 'both connections of the member open');
  const pids = await backends();
  for (const pid of pids) process.kill(pid, 'SIGSTOP');
  let settled;
  try {
    await new Promise((r) => setTimeout(r, 300)); // the member's statements now wait for answers that do not come
    settled = await Promise.race([a.stop().then(() => 'resolved', (e) => `rejected: ${e.code}`), new Promise((r) => setTimeout(() => r('still running'), 5_000))]);
  } finally {
    for (const pid of pids) process.kill(pid, 'SIGCONT');
  }
  console.log(`# stop() with ${pids.length} backends stopped: ${settled}`);
  assert.equal(settled, 'resolved');
});
