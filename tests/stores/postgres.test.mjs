// postgresStore against a real PostgreSQL server (tests/db/postgres.mjs starts a throwaway one): the store contract,
// then what only PostgreSQL does: COMMIT that answers ROLLBACK, serialization failures tried again, the table's
// creation and migration, a broken connection.
// Run: node --test --test-timeout=60000 tests/stores/postgres.test.mjs
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, test } from 'node:test';
import { consume } from 'feedpump';
import { postgresStore } from 'feedpump/postgres';
import { isFeedError } from '../../dist/errors.js';
import { startPostgres } from '../db/postgres.mjs';
import { contract } from './contract.mjs';
import { fakeFeed } from '../js/unit/consume-fake-feed.mjs';

let server;
let pool;
before(async () => {
  server = await startPostgres();
  pool = server.pool({ max: 10 });
});
after(async () => {
  await server?.stop();
});

let schemas = 0;
/** A fresh schema with an effects table; the store's cursor table in it. */
async function fresh(options = {}) {
  const schema = `t${++schemas}`;
  await pool.query(`CREATE SCHEMA ${schema}; CREATE TABLE ${schema}.effects (name text PRIMARY KEY, value integer NOT NULL)`);
  const make = () => postgresStore(pool, { table: `${schema}.feedpump_cursors`, ...options });
  const write = (client, name, value) => {
    const p = client.query(`INSERT INTO ${schema}.effects (name, value) VALUES ($1, $2)`, [name, value]);
    p.catch(() => {}); // a handler that throws without awaiting it: the rollback decides, not this promise
    return p;
  };
  const read = async (name) => (await pool.query(`SELECT value FROM ${schema}.effects WHERE name = $1`, [name])).rows[0]?.value;
  return { schema, store: make(), other: make, write, read };
}

contract('postgres', () => fresh());

test('postgres: a handler that catches a failed statement and goes on: the transaction is aborted → store-failed that says so, nothing committed', async () => {
  const { store, write, read } = await fresh();
  await store.save('k', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 });
  await assert.rejects(
    store.save('k', { identity: 'i', cursors: { 0: '2' }, savedAt: 2 }, async (client) => {
      await write(client, 'before', 1);
      await client.query('SELECT 1/0').catch(() => {}); // the transaction is now aborted
    }),
    (e) => isFeedError(e, 'store-failed') && /a statement of the handler failed/.test(e.message),
  );
  assert.equal(await read('before'), undefined);
  assert.deepEqual((await store.load('k')).cursors, { 0: '1' });
});

test('postgres: a serialization failure of the handler\'s writes is tried again in a new transaction, and commits once', async () => {
  const { schema, store } = await fresh({ isolation: 'repeatable read' });
  await pool.query(`CREATE TABLE ${schema}.counter (id integer PRIMARY KEY, n integer NOT NULL); INSERT INTO ${schema}.counter VALUES (1, 0)`);
  // Both transactions read the counter before either writes it (a barrier), then both increment it: under
  // REPEATABLE READ the second writer fails with 40001 once the first commits, and must be run again.
  let reads = 0;
  let release;
  const bothRead = new Promise((r) => (release = r));
  const runs = { a: 0, b: 0 };
  const handler = (who) => async (client) => {
    runs[who]++;
    const { rows } = await client.query(`SELECT n FROM ${schema}.counter WHERE id = 1`);
    if (++reads === 2) release();
    await bothRead;
    await client.query(`UPDATE ${schema}.counter SET n = $1 WHERE id = 1`, [rows[0].n + 1]);
  };
  await Promise.all([
    store.save('a', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 }, handler('a'), null),
    store.save('b', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 }, handler('b'), null),
  ]);
  const { rows } = await pool.query(`SELECT n FROM ${schema}.counter WHERE id = 1`);
  assert.equal(rows[0].n, 2, 'no lost update: both increments counted');
  assert.equal(runs.a + runs.b, 3, `one handler ran twice (a=${runs.a} b=${runs.b})`);
  assert.deepEqual((await store.load('b')).cursors, { 0: '1' });
});

test('postgres: serialization failures past maxAttempts: the handler\'s error passes, nothing committed', async () => {
  const { store, write, read } = await fresh({ maxAttempts: 3 });
  let runs = 0;
  const serialization = Object.assign(new Error('could not serialize access'), { code: '40001' });
  await assert.rejects(
    store.save('k', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 }, async (client) => {
      runs++;
      await write(client, `run${runs}`, runs);
      throw serialization;
    }),
    (e) => e === serialization,
  );
  assert.equal(runs, 3);
  assert.equal(await read('run1'), undefined);
  assert.equal(await store.load('k'), undefined);
});

test('consume() on postgres: a handler\'s serialization failure tried again by the store, then another consumer\'s commit: cursor-conflict, not a handler failure', async () => {
  // The store runs the whole transaction again after the handler's 40001; by then another consumer of the key has
  // committed (it was waiting for the row lock), so the second try ends in 'cursor-conflict' before the handler runs.
  // That error is the store's: consume() must pass it on, not blame the handler's first, already retried, failure.
  const { schema, store, write } = await fresh();
  const feed = fakeFeed({ partitions: 1, count: 6, checkpointEvery: 3, pageSize: 3, ragged: false });
  let calls = 0;
  const policyCalls = [];
  let rival;
  const out = consume(
    { url: feed.url, partitionCount: 1, fetch: feed.fetch },
    {
      store,
      key: 'k',
      tabs: false,
      handler: async (batch, client) => {
        calls++;
        await write(client, `seq${batch.events[0].data.seq}-${calls}`, calls);
        if (calls !== 2) return;
        // Another consumer of the key, waiting for this transaction's row lock (taken by the cursor check).
        const other = await pool.connect();
        rival = (async () => {
          try {
            await other.query('BEGIN');
            await other.query(`UPDATE ${schema}.feedpump_cursors SET saved_at = saved_at + 1 WHERE feed_key = 'k'`);
            await other.query('COMMIT');
          } finally {
            other.release();
          }
        })();
        for (;;) {
          const { rows } = await pool.query("SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1", [other.processID]);
          if (rows[0]?.wait_event_type === 'Lock') break;
          await new Promise((r) => setTimeout(r, 10));
        }
        await client.query("DO $$ BEGIN RAISE EXCEPTION 'could not serialize access' USING ERRCODE = 'serialization_failure'; END $$");
      },
      onHandlerError: (info) => {
        policyCalls.push(info.error.code);
        return 'stop';
      },
    },
  ).catch((e) => e);
  const error = await out;
  await rival;
  assert.deepEqual([calls, policyCalls, error.code], [2, [], 'cursor-conflict'], `consume() ended with ${error.code}: ${error.message}`);
});

test('postgres: a role without CREATE on the schema uses the table its migrations made, with the default createTable', async () => {
  // Least privilege: the application's role may read and write the tables, not create any (PostgreSQL 15+ gives no
  // one CREATE on public by default). CREATE TABLE IF NOT EXISTS checks that privilege before it looks for the table.
  const { schema, store: owners } = await fresh();
  await owners.migrate();
  await pool.query(`DROP ROLE IF EXISTS app_dml; CREATE ROLE app_dml LOGIN; GRANT USAGE ON SCHEMA ${schema} TO app_dml;
    GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA ${schema} TO app_dml`);
  const app = server.pool({ user: 'app_dml', max: 2 });
  const store = postgresStore(app, { table: `${schema}.feedpump_cursors` });
  assert.equal(await store.load('k'), undefined);
  await store.save('k', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 }, (client) => client.query(`INSERT INTO ${schema}.effects VALUES ('a', 1)`), null);
  assert.deepEqual((await store.load('k')).cursors, { 0: '1' });
  // A table that does not exist is still created by a role that may (and refused, as before, for one that may not).
  const missing = postgresStore(app, { table: `${schema}.other_cursors` });
  await assert.rejects(missing.load('k'), (e) => isFeedError(e, 'store-failed') && /could not create the cursor table/.test(e.message));
});

test('postgres: the table is created on first use (also by two stores at once); createTable: false uses your migration', async () => {
  const stores = [postgresStore(pool, { table: 'race_cursors' }), postgresStore(pool, { table: 'race_cursors' }), postgresStore(pool, { table: 'race_cursors' })];
  await Promise.all(stores.map((s, i) => s.save(`k${i}`, { identity: 'i', cursors: { 0: String(i) }, savedAt: 1 })));
  assert.deepEqual((await stores[0].load('k2')).cursors, { 0: '2' });

  const manual = postgresStore(pool, { table: 'manual_cursors', createTable: false });
  await assert.rejects(manual.load('k'), (e) => isFeedError(e, 'store-failed') && /manual_cursors/.test(e.message));
  assert.match(manual.schema, /^CREATE TABLE IF NOT EXISTS "manual_cursors" \(/);
  await pool.query(manual.schema);
  await manual.save('k', { identity: 'i', cursors: { 0: '1' }, savedAt: 5 });
  const { rows } = await pool.query('SELECT feed_key, identity, partitions, cursors, saved_at FROM manual_cursors');
  assert.deepEqual(rows, [{ feed_key: 'k', identity: 'i', partitions: null, cursors: { 0: '1' }, saved_at: '5' }], 'plain columns, readable with SQL');
  assert.throws(() => postgresStore(pool, { table: 'x; DROP TABLE y' }), (e) => isFeedError(e, 'bad-options'));
  assert.throws(() => postgresStore({}), (e) => isFeedError(e, 'bad-options'));
});

test('postgres: a connection that dies in the transaction → store-failed, nothing committed, the broken client is not reused', async () => {
  const { store, write, read } = await fresh();
  await store.save('k', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 });
  await assert.rejects(
    store.save('k', { identity: 'i', cursors: { 0: '2' }, savedAt: 2 }, async (client) => {
      await write(client, 'x', 1);
      await pool.query('SELECT pg_terminate_backend($1)', [client.processID]);
    }),
    (e) => isFeedError(e, 'store-failed'),
  );
  assert.equal(await read('x'), undefined);
  assert.deepEqual((await store.load('k')).cursors, { 0: '1' });
  await store.save('k', { identity: 'i', cursors: { 0: '3' }, savedAt: 3 }, (client) => write(client, 'y', 1));
  assert.equal(await read('y'), 1, 'the pool works on');

  const unreachable = postgresStore(server.pool({ port: 1, host: '127.0.0.1', connectionTimeoutMillis: 2000 }));
  await assert.rejects(unreachable.load('k'), (e) => isFeedError(e, 'store-failed') && /could not connect/.test(e.message));
});

/**
 * Starts tests/stores/frozen-consumer.mjs on `schema` (with `storeOptions` for its postgresStore) and resolves once it
 * has stopped itself (SIGSTOP) inside its commit transaction, holding the cursor row's lock of key 'k'.
 */
async function frozenConsumer(schema, storeOptions) {
  const child = spawn(process.execPath, [new URL('./frozen-consumer.mjs', import.meta.url).pathname], {
    env: { ...process.env, FEEDPUMP_FROZEN: JSON.stringify({ config: server.config, schema, storeOptions }) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const exited = new Promise((r) => child.on('exit', r));
  let out = '';
  await new Promise((resolve, reject) => {
    child.stdout.on('data', (d) => {
      out += d;
      if (out.includes('frozen\n')) resolve();
    });
    exited.then(() => reject(new Error(`the frozen consumer exited before it froze: ${out}`)));
  });
  return {
    async kill() {
      child.kill('SIGKILL');
      await exited;
    },
  };
}

/**
 * A schema with `applied` (one row per event applied, by whom) and its cursor row of key 'k' at the scripted feed's
 * first batch (seq 1..3, applied by 'first'): the frozen consumer then locks an existing row before its handler.
 */
async function frozenSetup() {
  const { schema, store } = await fresh();
  await pool.query(`CREATE TABLE ${schema}.applied (id text NOT NULL, by text NOT NULL)`);
  const feed = fakeFeed({ partitions: 1, count: 9, checkpointEvery: 3, pageSize: 3, ragged: false });
  const consumer = (by, s = store, more = {}) =>
    consume(
      { url: feed.url, partitionCount: 1, fetch: feed.fetch },
      {
        ...more,
        store: s,
        key: 'k',
        tabs: false,
        handler: async (batch, client) => {
          for (const e of batch.events) await client.query(`INSERT INTO ${schema}.applied (id, by) VALUES ($1, $2)`, [e.data.id, by]);
        },
      },
    );
  const first = await consumer('first', store, { maxBatches: 1 });
  assert.equal(first.batches, 1);
  const applied = async () => (await pool.query(`SELECT by, count(*)::int AS n, count(DISTINCT id)::int AS ids FROM ${schema}.applied GROUP BY by ORDER BY by`)).rows;
  return { schema, store, consumer, applied };
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** `work`'s outcome (its result, or what it threw), or 'still waiting' after `ms`: a hang fails the test, not its timeout. */
const within = (work, ms) => Promise.race([work.then((r) => r, (e) => e), sleep(ms).then(() => 'still waiting')]);

test('postgres: a consumer frozen (SIGSTOP) inside its commit, with transactionIdleTimeoutMs: the server ends its transaction, and a second consumer of the key goes on from the last commit instead of waiting for ever', async () => {
  const { schema, consumer, applied } = await frozenSetup();
  // It locks the cursor row (at seq 3) and stops in its handler of batch 4..6.
  const frozen = await frozenConsumer(schema, { transactionIdleTimeoutMs: 1_500 });
  let second;
  let outcome;
  try {
    second = consumer('second');
    outcome = await within(second, 30_000);
  } finally {
    await frozen.kill();
    await second?.catch(() => {});
  }
  assert.notEqual(outcome, 'still waiting', 'the second consumer waited 30 s for the frozen one\'s row lock');
  assert.ok(!(outcome instanceof Error), `the second consumer failed: ${outcome?.message}`);
  assert.deepEqual([outcome.caughtUp, outcome.events, outcome.cursors], [true, 6, { 0: '9' }]);
  // The frozen consumer's batch was rolled back by the server: every event applied once, none of them by it.
  assert.deepEqual(await applied(), [
    { by: 'first', n: 3, ids: 3 },
    { by: 'second', n: 6, ids: 6 },
  ]);
});

test('postgres: a consumer frozen (SIGSTOP) inside its commit without a bound of its own: a second consumer with lockTimeoutMs fails typed (store-failed, no secrets) instead of waiting for ever, nothing committed', async () => {
  const { schema, store, consumer, applied } = await frozenSetup();
  const frozen = await frozenConsumer(schema, {}); // an older version, or a store without transactionIdleTimeoutMs
  const waiting = postgresStore(pool, { table: `${schema}.feedpump_cursors`, lockTimeoutMs: 500 });
  let second;
  let outcome;
  try {
    second = consumer('second', waiting);
    outcome = await within(second, 30_000);
  } finally {
    await frozen.kill();
    await second?.catch(() => {});
  }
  assert.notEqual(outcome, 'still waiting', 'the second consumer waited 30 s for the frozen one\'s row lock');
  assert.ok(isFeedError(outcome, 'store-failed'), `the second consumer ended with ${outcome?.code}: ${outcome?.message}`);
  assert.match(outcome.message, /stayed locked longer than lockTimeoutMs \(500 ms\)/);
  for (const secret of [server.dir, server.connectionString, String(server.port)]) assert.ok(!outcome.message.includes(secret), `the message names ${secret}`);
  assert.deepEqual(await applied(), [{ by: 'first', n: 3, ids: 3 }]);
  assert.deepEqual((await store.load('k')).cursors, { 0: '3' });
  // The frozen one gone, the same consumer goes on from the last commit.
  const again = await consumer('second', waiting);
  assert.deepEqual([again.caughtUp, again.events], [true, 6]);
  assert.deepEqual(await applied(), [
    { by: 'first', n: 3, ids: 3 },
    { by: 'second', n: 6, ids: 6 },
  ]);
});

test('postgres: transactionIdleTimeoutMs and lockTimeoutMs hold for the save\'s transaction only, the group\'s bound is taken when smaller, bad values are refused', async () => {
  const { store: plain } = await fresh();
  const settings = async (store, hooks) => {
    let seen;
    await store.save(
      'k',
      { identity: 'i', cursors: { 0: '1' }, savedAt: Date.now() },
      async (client) => {
        const { rows } = await client.query("SELECT current_setting('idle_in_transaction_session_timeout') AS idle, current_setting('lock_timeout') AS lock");
        seen = rows[0];
      },
      undefined,
      hooks,
    );
    return seen;
  };
  const { rows: server0 } = await pool.query("SELECT current_setting('idle_in_transaction_session_timeout') AS idle, current_setting('lock_timeout') AS lock");
  assert.deepEqual(server0[0], { idle: '0', lock: '0' }, 'the test server sets neither');
  assert.deepEqual(await settings(plain), { idle: '0', lock: '0' }, 'not set by default: the server\'s settings');
  const { schema } = await fresh();
  const table = `${schema}.feedpump_cursors`;
  const bounded = postgresStore(pool, { table, transactionIdleTimeoutMs: 1_500, lockTimeoutMs: 2_000 });
  assert.deepEqual(await settings(bounded), { idle: '1500ms', lock: '2s' });
  // feedpump/group passes its lease as a bound of its own: the smaller one holds.
  assert.deepEqual(await settings(bounded, { idleTimeoutMs: 60_000 }), { idle: '1500ms', lock: '2s' });
  assert.deepEqual(await settings(bounded, { idleTimeoutMs: 700 }), { idle: '700ms', lock: '2s' });
  assert.deepEqual(await settings(plain, { idleTimeoutMs: 5_000 }), { idle: '5s', lock: '0' });
  // PostgreSQL's largest value is taken.
  const largest = postgresStore(pool, { table, transactionIdleTimeoutMs: 2 ** 31 - 1, lockTimeoutMs: 2 ** 31 - 1 });
  assert.deepEqual(await settings(largest), { idle: '2147483647ms', lock: '2147483647ms' });
  // SET LOCAL: no client of the pool keeps them after its transaction.
  const clients = await Promise.all(Array.from({ length: 10 }, () => pool.connect()));
  try {
    for (const c of clients) {
      const { rows } = await c.query("SELECT current_setting('idle_in_transaction_session_timeout') AS idle, current_setting('lock_timeout') AS lock");
      assert.deepEqual(rows[0], { idle: '0', lock: '0' });
    }
  } finally {
    for (const c of clients) c.release();
  }
  for (const name of ['transactionIdleTimeoutMs', 'lockTimeoutMs']) {
    for (const bad of [0, -1, 1.5, 2 ** 31, NaN, Infinity, '1000']) {
      assert.throws(() => postgresStore(pool, { [name]: bad }), (e) => isFeedError(e, 'bad-options') && e.message.includes(`${name} must be an integer from 1 to 2147483647`), `${name}: ${bad}`);
    }
  }
});

// A handler that never settles (it awaits something that never comes, not the database): the save must not wait for
// it for ever, nor keep its pooled client. postgresStore gives up after handlerTimeoutMs, or at once when the client's
// connection dies (the server ended the session for transactionIdleTimeoutMs): 'store-failed', nothing committed, and
// the client destroyed rather than given back, since the handler may still use it. docs/consume.md, PostgreSQL.
const never = () => new Promise(() => {});
/** The clients of `p` checked out (in use): 0 once every save gave its client back or destroyed it. */
const inUse = (p) => p.totalCount - p.idleCount;

/** The frozen setup (cursor row at seq 3), and a consume() on a pool of its own (two clients) whose handler hangs on its first batch (seq 4..6). */
async function hangingSetup(storeOptions) {
  const { schema, consumer, applied } = await frozenSetup();
  const own = server.pool({ max: 2 });
  const store = postgresStore(own, { table: `${schema}.feedpump_cursors`, ...storeOptions });
  const feed = fakeFeed({ partitions: 1, count: 9, checkpointEvery: 3, pageSize: 3, ragged: false });
  const hung = consume(
    { url: feed.url, partitionCount: 1, fetch: feed.fetch },
    {
      store,
      key: 'k',
      tabs: false,
      handler: async (batch, client) => {
        for (const e of batch.events) await client.query(`INSERT INTO ${schema}.applied (id, by) VALUES ($1, 'hung')`, [e.data.id]);
        await never();
      },
    },
  );
  return { schema, consumer, applied, own, hung };
}

test('postgres: consume() with a handler that never settles: store-failed after handlerTimeoutMs, its client destroyed (none left checked out), nothing of the batch committed, and a second consumer of the key goes on', async () => {
  const { consumer, applied, own, hung } = await hangingSetup({ handlerTimeoutMs: 300 });
  let outcome;
  try {
    outcome = await within(hung, 20_000);
  } finally {
    if (outcome === 'still waiting') console.log(`# after 20 s: ${own.totalCount} clients, ${own.idleCount} idle`);
  }
  assert.notEqual(outcome, 'still waiting', 'consume() waited 20 s for a handler that never settles');
  assert.ok(isFeedError(outcome, 'store-failed'), `consume() ended with ${outcome?.code}: ${outcome?.message}`);
  assert.match(outcome.message, /did not settle within handlerTimeoutMs \(300 ms\) inside the transaction of feed key "k".*nothing of the batch committed/);
  for (const secret of [server.dir, server.connectionString, String(server.port)]) assert.ok(!outcome.message.includes(secret), `the message names ${secret}`);
  assert.equal(inUse(own), 0, `the pool has ${own.totalCount} clients, ${own.idleCount} idle: one is still checked out`);
  // The cursor row's lock is free (the session that held it is closed): the second consumer commits from seq 3.
  const second = await within(consumer('second'), 20_000);
  assert.notEqual(second, 'still waiting', 'the second consumer waited for the hung transaction\'s row lock');
  assert.deepEqual([second.caughtUp, second.events, second.cursors], [true, 6, { 0: '9' }]);
  assert.deepEqual(await applied(), [
    { by: 'first', n: 3, ids: 3 },
    { by: 'second', n: 6, ids: 6 },
  ]);
});

test('postgres: a handler that never settles, without handlerTimeoutMs: once the server ends the idle session (transactionIdleTimeoutMs), the save rejects store-failed saying so, its client is destroyed, and a second consumer goes on', async () => {
  // handlerTimeoutMs is its default (60 s): what ends the wait is the client's 'error' event.
  const { consumer, applied, own, hung } = await hangingSetup({ transactionIdleTimeoutMs: 500 });
  const outcome = await within(hung, 20_000);
  assert.notEqual(outcome, 'still waiting', 'consume() waited 20 s after the server ended the hung transaction\'s session (500 ms idle)');
  assert.ok(isFeedError(outcome, 'store-failed'), `consume() ended with ${outcome?.code}: ${outcome?.message}`);
  assert.match(outcome.message, /connection was lost while the handler ran \(SQLSTATE 25P03: .*transactionIdleTimeoutMs\)/);
  assert.equal(inUse(own), 0, `the pool has ${own.totalCount} clients, ${own.idleCount} idle: one is still checked out`);
  const second = await within(consumer('second'), 20_000);
  assert.deepEqual([second.caughtUp, second.events, second.cursors], [true, 6, { 0: '9' }]);
  assert.deepEqual(await applied(), [
    { by: 'first', n: 3, ids: 3 },
    { by: 'second', n: 6, ids: 6 },
  ]);
});

test('postgres: a handler that settles after its save gave up writes into no later transaction: its client was destroyed, not given to the next save', async () => {
  // One client in the pool: were the given-up client back in it, the next save would run on it, and the late handler's
  // INSERT would commit with that save's batch.
  const { schema, store: main, read } = await fresh();
  const one = server.pool({ max: 1 });
  const store = postgresStore(one, { table: `${schema}.feedpump_cursors`, handlerTimeoutMs: 300 });
  const first = { identity: 'i', cursors: { 0: '1' }, savedAt: 1 };
  await store.save('k', first, undefined, null);
  let wake;
  let late;
  const hungClient = {};
  const hung = store.save('k', { identity: 'i', cursors: { 0: '2' }, savedAt: 2 }, async (client) => {
    hungClient.pid = client.processID;
    await client.query(`INSERT INTO ${schema}.effects (name, value) VALUES ('hung', 1)`);
    await new Promise((r) => (wake = r));
    late = await client.query(`INSERT INTO ${schema}.effects (name, value) VALUES ('late', 1)`).then(() => 'written', (e) => e);
  }, first);
  const outcome = await within(hung, 20_000);
  assert.ok(isFeedError(outcome, 'store-failed'), `the save ended with ${outcome?.code ?? outcome}: ${outcome?.message ?? ''}`);
  assert.equal(inUse(one), 0);
  // The next save (the only client of the pool) is inside its transaction when the late handler writes.
  let commitNext;
  let nextClient;
  const next = store.save('k', { identity: 'i', cursors: { 0: '3' }, savedAt: 3 }, async (client) => {
    nextClient = client.processID;
    await client.query(`INSERT INTO ${schema}.effects (name, value) VALUES ('next', 1)`);
    await new Promise((r) => (commitNext = r));
  }, first);
  await until(() => commitNext !== undefined);
  wake();
  await until(() => late !== undefined);
  commitNext();
  await next;
  assert.deepEqual([await read('hung'), await read('late'), await read('next')], [undefined, undefined, 1], 'hung, late, next: what committed');
  assert.ok(late instanceof Error, `the late handler's INSERT was ${late}`);
  assert.notEqual(nextClient, hungClient.pid, 'the next save ran on the given-up client');
  assert.deepEqual((await main.load('k')).cursors, { 0: '3' });
});

test('postgres: a handler that awaits a save of its own key (a re-entrant save, waiting for the row lock its own transaction holds) ends at handlerTimeoutMs with store-failed; the inner save then commits', async () => {
  // docs/consume.md, "Re-entrant saves": a deadlock PostgreSQL cannot see (one side waits in this process). The outer
  // save gives up and closes its session, which frees the row; the inner save, on another client, then commits.
  const { schema } = await fresh();
  const own = server.pool({ max: 2 });
  const store = postgresStore(own, { table: `${schema}.feedpump_cursors`, handlerTimeoutMs: 300 });
  const first = { identity: 'i', cursors: { 0: '1' }, savedAt: 1 };
  await store.save('k', first, undefined, null);
  let inner;
  const outer = store.save('k', { identity: 'i', cursors: { 0: 'outer' }, savedAt: 2 }, () => (inner = store.save('k', { identity: 'i', cursors: { 0: 'inner' }, savedAt: 3 }, undefined, first)), first);
  const outcome = await within(outer, 20_000);
  assert.ok(isFeedError(outcome, 'store-failed') && /handlerTimeoutMs \(300 ms\)/.test(outcome.message), `the outer save ended with ${outcome?.code ?? outcome}: ${outcome?.message ?? ''}`);
  assert.equal(await within(inner, 20_000), undefined, 'the inner save committed');
  assert.deepEqual((await store.load('k')).cursors, { 0: 'inner' });
  assert.equal(inUse(own), 0);
});

/** Polls `cond()` every 10 ms. */
async function until(cond) {
  while (!(await cond())) await sleep(10);
}

test('postgres: handlerTimeoutMs does not cut a synchronous handler; bad values are refused; no timer is left behind (a process with a 2^31-1 ms bound exits once its pool ends)', async () => {
  const { schema, write, read } = await fresh();
  const store = postgresStore(pool, { table: `${schema}.feedpump_cursors`, handlerTimeoutMs: 1 });
  // A synchronous handler (it returns no promise) is finished when the store looks: never cut. Its statement is queued
  // on the client before the store's next one.
  await store.save('k', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 }, (client) => {
    const end = Date.now() + 20;
    while (Date.now() < end); // longer than the bound, synchronously
    void write(client, 'sync', 1);
  }, null);
  assert.equal(await read('sync'), 1);
  for (const bad of [0, -1, 1.5, 2 ** 31, NaN, Infinity, '1000']) {
    assert.throws(() => postgresStore(pool, { handlerTimeoutMs: bad }), (e) => isFeedError(e, 'bad-options') && /handlerTimeoutMs must be an integer from 1 to 2147483647/.test(e.message), String(bad));
  }
  // Every path of a save with an async handler: committed, the handler threw, the connection lost while it ran. With a
  // bound of 2^31-1 ms, a timer not cleared keeps the process alive for 24 days.
  const child = spawn(
    process.execPath,
    [
      '--input-type=module',
      '-e',
      `import pg from 'pg';
       import { postgresStore } from 'feedpump/postgres';
       const { config, table } = JSON.parse(process.env.FEEDPUMP_TIMERS);
       const pool = new pg.Pool({ ...config, max: 2 });
       pool.on('error', () => {});
       const store = postgresStore(pool, { table, handlerTimeoutMs: 2 ** 31 - 1 });
       const r = (n) => ({ identity: 'i', cursors: { 0: String(n) }, savedAt: n });
       await store.save('t', r(1), async (c) => { await c.query('SELECT 1'); });
       await store.save('t', r(2), async () => { throw new Error('handler'); }).catch(() => {});
       const lost = await store.save('t', r(3), async (c) => { await pool.query('SELECT pg_terminate_backend($1)', [c.processID]); await new Promise(() => {}); }).catch((e) => e.code);
       await pool.end();
       process.stdout.write(lost);`,
    ],
    { cwd: new URL('.', import.meta.url).pathname, env: { ...process.env, FEEDPUMP_TIMERS: JSON.stringify({ config: server.config, table: `${schema}.feedpump_cursors` }) }, stdio: ['ignore', 'pipe', 'inherit'] },
  );
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const exited = new Promise((r) => child.on('exit', r));
  const code = await within(exited, 20_000);
  if (code === 'still waiting') child.kill('SIGKILL');
  assert.equal(code, 0, `the process did not exit on its own (${code}): a timer was left running`);
  assert.equal(out, 'store-failed');
});
