// postgresStore against a real PostgreSQL server (tests/db/postgres.mjs starts a throwaway one): the store contract,
// then what only PostgreSQL does: COMMIT that answers ROLLBACK, serialization failures tried again, the table's
// creation and migration, a broken connection.
// Run: node --test --test-timeout=60000 tests/stores/postgres.test.mjs
import assert from 'node:assert/strict';
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
