// consumeGroup on FeedAPI v2 feeds, against a real PostgreSQL server (tests/db/postgres.mjs) and the v2 reference
// server (tests/v2_server/server.mjs): members lease the top-level partitions discovery lists; the holder of a parent
// reads its split children (never leased, never read twice); a split while the group runs (method 1), a partition
// added later (picked up by the next discovery) and a member stopped mid-run whose parent partition, with its
// children's cursors, another member takes over; and method 2 (cursorFromPartitions: the parent disappears, the
// children start from its cursor). The effects table is keyed by the event's id and counts every apply.
// Run: node --test --test-concurrency=1 --test-timeout=120000 --test-force-exit tests/group/v2.test.mjs
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { postgresStore } from 'feedpump/postgres';
import { consumeGroup, groupStatus } from 'feedpump/group';
import { isFeedError } from '../../dist/errors.js';
import { leaseRoots } from '../../dist/group/roots.js';
import { startPostgres } from '../db/postgres.mjs';
import { startV2Server } from '../v2_server/server.mjs';
import { createEffects, effectsSummary, spawnGroupWorker } from './helpers.mjs';

let pg;
let pool;
let v2;
before(async () => {
  [pg, v2] = await Promise.all([startPostgres(), startV2Server()]);
  pool = pg.pool({ max: 20 });
});
after(async () => {
  await Promise.all([pg?.stop(), v2?.close()]);
});

let n = 0;
/** A fresh schema: the effects table (one row per event id, `applies` counting every apply), cursors, group tables. */
async function fresh() {
  const schema = `v${++n}`;
  await pool.query(
    `CREATE SCHEMA ${schema};
     CREATE TABLE ${schema}.applied (id text PRIMARY KEY, partition integer NOT NULL, applies integer NOT NULL DEFAULT 1, member text NOT NULL)`,
  );
  return { schema, store: postgresStore(pool, { table: `${schema}.cursors` }), table: `${schema}.grp` };
}

/** The v2 server sends some events' data as a string holding the JSON. */
const dataOf = (e) => (typeof e.data === 'string' ? JSON.parse(e.data) : e.data);

/** A group handler: the batch's events into `<schema>.applied` through the commit's client. */
const applyInto = (schema, member) => async (batch, client) => {
  if (batch.events.length === 0) return;
  await client.query(
    `INSERT INTO ${schema}.applied (id, partition, member) SELECT * FROM unnest($1::text[], $2::integer[], $3::text[])
     ON CONFLICT (id) DO UPDATE SET applies = ${schema}.applied.applies + 1`,
    [batch.events.map((e) => dataOf(e).id), batch.events.map((e) => e.partition), batch.events.map(() => member)],
  );
};

async function summary(schema) {
  const { rows } = await pool.query(`SELECT count(*)::int AS events, coalesce(sum(applies - 1), 0)::int AS duplicates FROM ${schema}.applied`);
  return rows[0];
}
const count = async (schema, where = 'true') => (await pool.query(`SELECT count(*)::int AS n FROM ${schema}.applied WHERE ${where}`)).rows[0].n;

/** Every event id the server holds now, over every partition it lists. */
async function expectedIds(feed) {
  const body = await (await fetch(`${v2.url}/expected?feed=${feed}`)).json();
  return new Set(Object.values(body.partitions).flatMap((list) => list.map((e) => dataOf(e).id)));
}

const control = async (body) => {
  const r = await fetch(`${v2.url}/_control`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(r.status, 200, await r.text());
};

async function until(cond, what, ms = 60_000) {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

const source = (feed) => ({ url: `${v2.url}/${feed}`, protocol: 'v2', pageSizeHint: 20, live: { minIntervalMs: 50, maxIntervalMs: 200 } });

const part = (id, more = {}) => ({ id, closed: false, cursorFromPartitions: [], ...more });

test('leaseRoots: the partitions no lease reaches get one; split children never do', () => {
  const none = new Set();
  // Method 1: the children of a listed, closed parent are read by its holder (chains too).
  const m1 = [part(0, { closed: true }), part(1, { startsAfterPartition: 0, closed: true }), part(2, { startsAfterPartition: 0 }), part(3, { startsAfterPartition: 1 })];
  assert.deepEqual(leaseRoots(m1, none), [0]);
  assert.deepEqual(leaseRoots(m1, new Set([0])), []);
  // Method 2: the parent is no longer listed; its lease (and its cursor) covers the children. A new group leases them.
  const m2 = [part(1, { cursorFromPartitions: [0] }), part(2, { cursorFromPartitions: [0] })];
  assert.deepEqual(leaseRoots(m2, new Set([0])), []);
  assert.deepEqual(leaseRoots(m2, none), [1, 2]);
  // A second method-2 split of a child: the path to the root is listed; the lease of 0 still covers it.
  assert.deepEqual(leaseRoots([part(2, { cursorFromPartitions: [0] }), part(3, { cursorFromPartitions: [1, 0] })], new Set([0])), []);
  // A partition listed later without a parent is a new root; a child whose parent is neither listed nor leased too.
  assert.deepEqual(leaseRoots([part(0), part(1), part(7)], new Set([0, 1])), [7]);
  assert.deepEqual(leaseRoots([part(5, { startsAfterPartition: 9 })], none), [5]);
  assert.deepEqual(leaseRoots([part(5, { startsAfterPartition: 9 })], new Set([9])), []);
  // A startsAfterPartition cycle (it breaks the SPEC) is not left unread: its members get leases (and their readers
  // fail with 'bad-discovery', as consume() does).
  assert.deepEqual(leaseRoots([part(0), part(1, { startsAfterPartition: 2 }), part(2, { startsAfterPartition: 1 })], none), [0, 1, 2]);
});

test('v2: three members share the partitions; a split while running, a partition added later, a member stopped mid-run: every event once', async () => {
  await control({ reset: true });
  const { schema, store, table } = await fresh();
  const group = 'v2-split';
  const assigned = [];
  const join = (id) =>
    consumeGroup(source('feed'), {
      store,
      group,
      table,
      memberId: id,
      leaseMs: 1500,
      heartbeatMs: 200,
      handler: applyInto(schema, id),
      onAssign: (ps) => assigned.push([id, ...ps]),
    });
  const members = [join('a'), join('b'), join('c')];
  try {
    // Mid-run: partition 1 is split (closed; children 4 and 5 startsAfterPartition 1, a new token) and partition 6 is
    // listed: a top-level partition no lease covers yet.
    await until(async () => (await count(schema)) >= 300, '300 events applied');
    await control({ feed: 'feed', splitRunning: { partition: '1', children: ['4', '5'], count: 300 } });
    await control({ feed: 'feed', addPartition: { partition: '6', count: 200 } });
    // The holder of 1 reads its children; once it has committed some of them, it stops: another member takes 1 over
    // and resumes 4 and 5 from the cursors committed in partition 1's record.
    await until(async () => (await count(schema, 'partition IN (4, 5)')) >= 40, 'children events applied');
    const holder = members.find((m) => m.assigned().includes(1));
    assert.ok(holder, 'a member holds partition 1');
    const childrenBefore = await count(schema, 'partition IN (4, 5)');
    await holder.stop();
    const rest = members.filter((m) => m !== holder);
    const ids = await expectedIds('feed');
    assert.equal(ids.size, 4 * 500 + 2 * 300 + 200);
    await until(async () => (await count(schema)) >= ids.size, `all ${ids.size} events applied`);
    // Settle: nothing more arrives (a duplicate would show up as applies > 1).
    await new Promise((r) => setTimeout(r, 500));
    const s = await summary(schema);
    const applied = new Set((await pool.query(`SELECT id FROM ${schema}.applied`)).rows.map((r) => r.id));
    const lost = [...ids].filter((id) => !applied.has(id));
    const status = await groupStatus(store, group, { table });
    const leased = status.partitions.map((p) => p.partition);
    const takeover = rest.find((m) => m.assigned().includes(1));
    console.log(
      `v2 group: ${s.events} events, ${s.duplicates} duplicates, ${lost.length} losses; leased ${leased}; ` +
        `partition 1 from ${holder.memberId} to ${takeover?.memberId} after ${childrenBefore} children events; assigns ${JSON.stringify(assigned)}`,
    );
    assert.equal(s.duplicates, 0, 'no event applied twice');
    assert.deepEqual(lost, [], 'no event lost');
    assert.equal(s.events, ids.size);
    assert.deepEqual(leased, [0, 1, 2, 3, 6], 'the split children are not leased; the partition added later is');
    assert.ok(takeover, 'another member took partition 1 over');
    assert.ok(status.partitions.every((p) => p.owner !== undefined && p.owner !== holder.memberId), 'every lease held by a running member');
    // Children of 1 were applied by the holder of 1 only, before and after the takeover.
    const byMember = (await pool.query(`SELECT DISTINCT member FROM ${schema}.applied WHERE partition IN (4, 5) ORDER BY member`)).rows.map((r) => r.member);
    assert.ok(byMember.every((m) => m === holder.memberId || m === takeover.memberId), `children applied by ${byMember}`);
  } finally {
    await Promise.all(members.map((m) => m.stop().catch(() => {})));
  }
});

test('v2: the member reading the split children is SIGKILLed; after its lease another member resumes them from the parent\'s record: every event once', async () => {
  await control({ reset: true });
  const schema = 'v2kill';
  await createEffects(pool, schema);
  const holders = new Map(); // partition -> member, from the workers' assign/revoke lines
  const workers = [];
  const spawnWorker = (member) => {
    const settings = { config: pg.config, url: `${v2.url}/feed`, v2: true, schema, member, leaseMs: 1500, heartbeatMs: 300, pageSizeHint: 20, delayMs: 5 };
    const child = spawnGroupWorker(settings, (m) => {
      for (const p of m.assign ?? []) holders.set(p, m.member);
      for (const p of m.revoke ?? []) if (holders.get(p) === m.member) holders.delete(p);
    });
    workers.push(child);
    return child;
  };
  try {
    for (const m of ['k1', 'k2', 'k3']) spawnWorker(m);
    await until(async () => (await count(schema)) >= 300, '300 events applied');
    await control({ feed: 'feed', splitRunning: { partition: '1', children: ['4', '5'], count: 300 } });
    await until(async () => (await count(schema, 'partition IN (4, 5)')) >= 40, 'children events applied');
    const victim = workers.find((w) => w.member === holders.get(1));
    assert.ok(victim, 'a worker holds partition 1');
    victim.kill('SIGKILL');
    await victim.exited;
    const total = 4 * 500 + 2 * 300;
    await until(async () => (await count(schema)) >= total, `all ${total} events applied`);
    await new Promise((r) => setTimeout(r, 500));
    const s = await effectsSummary(pool, schema, { partitions: 1, perPartition: total });
    const takeover = holders.get(1);
    console.log(`v2 kill: SIGKILLed ${victim.member} (holder of 1), partition 1 taken over by ${takeover}; events ${s.events}, duplicates ${s.duplicates}, losses ${s.losses}`);
    assert.equal(s.duplicates, 0, 'no event applied twice');
    assert.equal(s.losses, 0, 'no event lost');
    assert.ok(takeover !== undefined && takeover !== victim.member, 'another worker took partition 1 over');
  } finally {
    for (const w of workers) if (w.exitCode === null && w.signalCode === null) w.kill('SIGTERM');
    await Promise.all(workers.map((w) => w.exited));
  }
});

test('v2 method 2: the parent disappears, its holder reads the children from its cursor; every event once', async () => {
  await control({ reset: true });
  const { schema, store, table } = await fresh();
  const group = 'v2-cosmos';
  const members = ['a', 'b'].map((id) =>
    consumeGroup(source('cosmos'), { store, group, table, memberId: id, leaseMs: 1500, heartbeatMs: 200, handler: applyInto(schema, id) }),
  );
  try {
    await until(async () => (await count(schema)) >= 200, '200 events applied');
    await control({ feed: 'cosmos', split: true });
    const ids = await expectedIds('cosmos');
    await until(async () => (await count(schema)) >= ids.size, `all ${ids.size} events applied`);
    await new Promise((r) => setTimeout(r, 500));
    const s = await summary(schema);
    const status = await groupStatus(store, group, { table });
    console.log(`v2 cosmos group: ${s.events} events, ${s.duplicates} duplicates; leased ${status.partitions.map((p) => p.partition)}`);
    assert.equal(s.duplicates, 0, 'no event applied twice');
    assert.equal(s.events, ids.size);
    assert.deepEqual(
      status.partitions.map((p) => p.partition),
      [0],
      'the children (cursorFromPartitions ["0"]) are read by the holder of 0',
    );
  } finally {
    await Promise.all(members.map((m) => m.stop().catch(() => {})));
  }
});

test('v2: a feed given with replicas (several base URLs), the first down: discovery asks the URLs of the list in turn, the group reads every event once', async () => {
  // consume() takes a FeedUrl list (failover); the group's own discovery must ask one of its URLs, not the list's
  // text joined by commas.
  await control({ reset: true });
  const { schema, store, table } = await fresh();
  const errors = [];
  const m = consumeGroup(
    // The first URL refuses connections (nothing listens on port 1): discovery and the readers fail over to the second.
    { url: ['http://127.0.0.1:1/feed', `${v2.url}/feed`], protocol: 'v2', pageSizeHint: 200, live: { minIntervalMs: 50 } },
    { store, group: 'replicas', table, handler: applyInto(schema, 'r'), leaseMs: 1500, heartbeatMs: 200, onError: (e) => errors.push(e.message) },
  );
  const ended = m.done.then(() => 'resolved', (e) => `rejected: ${e.message}`);
  try {
    await until(async () => errors.length > 0 || (await Promise.race([ended, null])) !== null || (await count(schema)) >= 2000, 'the 2000 events, or a failure');
  } finally {
    await m.stop().catch(() => {});
  }
  assert.deepEqual([errors.slice(0, 1), await ended], [[], 'resolved']);
  assert.deepEqual(await summary(schema), { events: 2000, duplicates: 0 });
});

test('v2: bad options and a v1 server behind protocol v2 stop the member', async () => {
  const { store, table } = await fresh();
  const handler = () => {};
  assert.throws(
    () => consumeGroup({ url: `${v2.url}/feed`, protocol: 'v2', partitions: [0] }, { store, group: 'x', handler, table }),
    (e) => isFeedError(e, 'bad-options'),
  );
  // Discovery with `n` answers 400 there: a v1 server, by the negotiation rule.
  const m = consumeGroup({ url: `${v2.url}/feed?n=1`, protocol: 'v2' }, { store, group: 'x', handler, table, leaseMs: 500, heartbeatMs: 100 });
  await assert.rejects(m.done, (e) => isFeedError(e, 'bad-options'));
  // protocol 'auto' with a partition count asks discovery: a v2 server makes it a v2 group.
  const { schema, store: s2, table: t2 } = await fresh();
  await control({ reset: true });
  const auto = consumeGroup(
    { url: `${v2.url}/feed`, protocol: 'auto', partitionCount: 4, pageSizeHint: 200, live: { minIntervalMs: 50 } },
    { store: s2, group: 'auto', table: t2, handler: applyInto(schema, 'auto'), leaseMs: 1500, heartbeatMs: 200 },
  );
  try {
    await until(async () => (await count(schema)) >= 2000, 'the 2000 events of the v2 feed');
    assert.deepEqual(auto.assigned(), [0, 1, 2, 3]);
    assert.equal((await summary(schema)).duplicates, 0);
  } finally {
    await auto.stop();
  }
});
