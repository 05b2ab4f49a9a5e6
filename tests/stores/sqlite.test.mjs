// sqliteStore against real SQLite files (better-sqlite3 12.x, built by npm): the store contract (the second consumer
// on its own connection to the same file, as another process would be), then SQLite's own cases.
// Run: node --test --test-timeout=60000 tests/stores/sqlite.test.mjs
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import { consume } from 'feedpump';
import { sqliteStore } from 'feedpump/sqlite';
import { isFeedError } from '../../dist/errors.js';
import { contract } from './contract.mjs';
import { fakeFeed } from '../js/unit/consume-fake-feed.mjs';

const dir = mkdtempSync(path.join(tmpdir(), 'feedpump-sqlite-'));
const open = [];
after(() => {
  for (const db of open) db.close();
  rmSync(dir, { recursive: true, force: true });
});

let files = 0;
/** A connection to `file` in WAL mode; a short busy timeout (a second connection in this same thread waits synchronously). */
function connect(file) {
  const db = new Database(file, { timeout: 50 });
  db.pragma('journal_mode = WAL');
  open.push(db);
  return db;
}

function fresh(options = {}) {
  const file = path.join(dir, `db${++files}.sqlite`);
  const db = connect(file);
  db.exec('CREATE TABLE effects (name TEXT PRIMARY KEY, value INTEGER NOT NULL)');
  const write = (tx, name, value) => void tx.prepare('INSERT INTO effects (name, value) VALUES (?, ?)').run(name, value);
  const read = async (name) => db.prepare('SELECT value FROM effects WHERE name = ?').get(name)?.value;
  return { file, db, store: sqliteStore(db, options), other: () => sqliteStore(connect(file), options), write, read };
}

contract('sqlite', () => fresh());

test('sqlite: saves of one store on one connection take turns (async handlers do not interleave transactions)', async () => {
  const { store, read } = fresh();
  const order = [];
  const handler = (name) => async (db) => {
    order.push(`${name} start`);
    db.prepare('INSERT INTO effects (name, value) VALUES (?, 1)').run(name);
    await new Promise((r) => setTimeout(r, 20));
    order.push(`${name} end`);
  };
  await Promise.all([
    store.save('a', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 }, handler('a')),
    store.save('b', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 }, handler('b')),
  ]);
  assert.deepEqual(order, ['a start', 'a end', 'b start', 'b end']);
  assert.equal(await read('a'), 1);
  assert.equal(await read('b'), 1);
});

// A re-entrant save on one Database waits for its turn behind the save whose handler awaits it: that save ends at
// handlerTimeoutMs ('store-failed', rolled back), and its message says why it may not have settled. Not detected at
// once: telling it from another consumer's save on the same Database, which must wait its turn, needs the async
// context of the call (AsyncLocalStorage, which on Node 20 turns on promise hooks for the whole process).
// docs/consume.md, "Re-entrant saves".
test('sqlite: a handler that awaits a save on its own Database (a save of its store, a nested consume()) ends at handlerTimeoutMs with store-failed naming a re-entrant save; the inner save then commits', async () => {
  const { store, db } = fresh({ handlerTimeoutMs: 300 });
  const record = (cursor) => ({ identity: 'i', cursors: { 0: cursor }, savedAt: 1 });
  let inner;
  await assert.rejects(
    store.save('a', record('1'), () => (inner = store.save('b', record('1'), undefined, null)), null),
    (e) => isFeedError(e, 'store-failed') && /handlerTimeoutMs/.test(e.message) && /1 save on this Database waits behind it/.test(e.message) && /re-entrant/.test(e.message),
  );
  await inner;
  assert.deepEqual([await store.load('a'), (await store.load('b'))?.cursors], [undefined, { 0: '1' }]);
  assert.equal(db.inTransaction, false);

  const feed = fakeFeed({ partitions: 1, count: 4, checkpointEvery: 2, pageSize: 2 });
  const source = { url: feed.url, partitionCount: 1, fetch: feed.fetch };
  const { store: other } = fresh({ handlerTimeoutMs: 300 });
  await assert.rejects(
    consume(source, { store: other, key: 'outer', handler: () => consume(source, { store: other, key: 'inner', handler: () => {} }) }),
    (e) => isFeedError(e, 'store-failed') && /re-entrant/.test(e.message),
  );
});

test('sqlite: saves of two stores on one connection take turns too (two feeds consumed into one Database)', async () => {
  // One better-sqlite3 Database has one transaction at a time, whichever store wrapper opened it: a second
  // BEGIN IMMEDIATE while the first save's handler runs fails ('cannot start a transaction within a transaction').
  const { db, read } = fresh();
  const orders = sqliteStore(db);
  const customers = sqliteStore(db, { table: 'customer_cursors' });
  const order = [];
  const handler = (name, pause) => async (tx) => {
    order.push(`${name} start`);
    tx.prepare('INSERT INTO effects (name, value) VALUES (?, 1)').run(name);
    if (pause) await new Promise((r) => setTimeout(r, 20));
    order.push(`${name} end`);
  };
  const results = await Promise.allSettled([
    orders.save('orders', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 }, handler('a', true), null),
    customers.save('customers', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 }, handler('b', false), null),
    orders.save('orders2', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 }, handler('c', false), null),
  ]);
  assert.deepEqual(results.map((r) => r.status === 'fulfilled' || `${r.reason.code}: ${r.reason.message}`), [true, true, true]);
  assert.deepEqual(order, ['a start', 'a end', 'b start', 'b end', 'c start', 'c end']);
  assert.deepEqual([await read('a'), await read('b'), await read('c')], [1, 1, 1]);
  assert.deepEqual([(await orders.load('orders')).cursors, (await customers.load('customers')).cursors], [{ 0: '1' }, { 0: '1' }]);
});

test('sqlite: a failing statement of the handler → its error, rolled back; a handler that ends the transaction → store-failed', async () => {
  const { store, db, read } = fresh();
  await store.save('k', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 });
  await assert.rejects(
    store.save('k', { identity: 'i', cursors: { 0: '2' }, savedAt: 2 }, (tx) => {
      tx.prepare('INSERT INTO effects (name, value) VALUES (?, ?)').run('x', 1);
      tx.prepare('INSERT INTO effects (name, value) VALUES (?, ?)').run('x', 2); // UNIQUE constraint
    }),
    (e) => e.code === 'SQLITE_CONSTRAINT_PRIMARYKEY',
  );
  assert.equal(await read('x'), undefined);
  await assert.rejects(
    store.save('k', { identity: 'i', cursors: { 0: '3' }, savedAt: 3 }, (tx) => {
      tx.prepare('INSERT INTO effects (name, value) VALUES (?, ?)').run('y', 1);
      tx.exec('COMMIT');
    }),
    (e) => isFeedError(e, 'store-failed') && /ended by the handler/.test(e.message),
  );
  assert.equal(db.inTransaction, false);
  assert.deepEqual((await store.load('k')).cursors, { 0: '1' });
});

test('sqlite: another connection holding the write lock: BEGIN IMMEDIATE is tried again; past maxAttempts → store-failed', async () => {
  const { file, store, read } = fresh({ maxAttempts: 3 });
  const blocker = connect(file);
  blocker.exec('BEGIN IMMEDIATE');
  const saving = store.save('k', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 }, (tx) => void tx.prepare("INSERT INTO effects VALUES ('z', 1)").run());
  setTimeout(() => blocker.exec('COMMIT'), 60);
  await saving;
  assert.equal(await read('z'), 1, 'committed once the lock was free');
  blocker.exec('BEGIN IMMEDIATE');
  await assert.rejects(store.save('k', { identity: 'i', cursors: { 0: '2' }, savedAt: 2 }), (e) => isFeedError(e, 'store-failed') && /SQLITE_BUSY|locked/i.test(`${e.message} ${e.cause?.code}`));
  blocker.exec('ROLLBACK');
});

test('sqlite: the table and its columns; createTable: false; bad options', async () => {
  const { db, store } = fresh();
  await store.save('k', { identity: 'i', partitions: [1, 2], cursors: { 2: 'b', 1: 'a' }, savedAt: 7 });
  assert.deepEqual(db.prepare('SELECT * FROM feedpump_cursors').all(), [{ feed_key: 'k', identity: 'i', partitions: '[1,2]', cursors: '{"1":"a","2":"b"}', saved_at: 7 }]);
  const manual = sqliteStore(db, { table: 'mine', createTable: false });
  await assert.rejects(manual.load('k'), (e) => isFeedError(e, 'store-failed') && /no such table: mine/.test(e.message));
  db.exec(manual.schema);
  assert.equal(await manual.load('k'), undefined);
  assert.throws(() => sqliteStore(db, { table: 'a b' }), (e) => isFeedError(e, 'bad-options'));
  assert.throws(() => sqliteStore(null), (e) => isFeedError(e, 'bad-options'));
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
/** `work`'s outcome (its result, or what it threw), or 'still waiting' after `ms`: a hang fails the test, not its timeout. */
const within = (work, ms) => Promise.race([work.then((r) => r, (e) => e), sleep(ms).then(() => 'still waiting')]);
const never = () => new Promise(() => {});

test('sqlite: an async handler that never settles: after handlerTimeoutMs the save rolls back and rejects store-failed, and the later saves on the Database (another store\'s too) go on', async () => {
  const { file, db, store, write, read } = fresh({ handlerTimeoutMs: 300 });
  const one = { identity: 'i', cursors: { 0: '1' }, savedAt: 1 };
  await store.save('k', one, undefined, null);
  const hung = store.save('k', { identity: 'i', cursors: { 0: '2' }, savedAt: 2 }, async (tx) => {
    write(tx, 'hung', 1);
    await never();
  }, one);
  // Waits its turn behind the hung save (one transaction per Database), on a store of its own with the defaults.
  const later = sqliteStore(db).save('other', { identity: 'i', cursors: { 0: '1' }, savedAt: 3 }, (tx) => write(tx, 'later', 1), null);
  const outcome = await within(hung, 20_000);
  assert.notEqual(outcome, 'still waiting', 'the save waited 20 s for a handler that never settles');
  assert.ok(isFeedError(outcome, 'store-failed'), `the save ended with ${outcome?.code}: ${outcome?.message}`);
  assert.match(outcome.message, /did not settle within handlerTimeoutMs \(300 ms\).*rolled back/);
  assert.notEqual(await within(later, 20_000), 'still waiting', 'the next save on the Database waited for ever');
  assert.equal(db.inTransaction, false);
  assert.equal(await read('hung'), undefined, 'nothing of the hung batch committed');
  assert.equal(await read('later'), 1);
  assert.deepEqual((await store.load('k')).cursors, { 0: '1' });
  // Another connection (another process) gets the write lock; the same store commits the batch again, once.
  const second = connect(file);
  second.exec('BEGIN IMMEDIATE');
  second.exec('ROLLBACK');
  await store.save('k', { identity: 'i', cursors: { 0: '2' }, savedAt: 4 }, (tx) => write(tx, 'again', 1), one);
  assert.equal(await read('again'), 1);
  assert.deepEqual((await store.load('k')).cursors, { 0: '2' });
});

test('sqlite: consume() with a handler that hangs: store-failed after handlerTimeoutMs, nothing of its batch committed, and the next consumer on the same Database applies every event once', async () => {
  const { db } = fresh();
  db.exec('CREATE TABLE applied (id TEXT NOT NULL, by TEXT NOT NULL)');
  const feed = fakeFeed({ partitions: 1, count: 9, checkpointEvery: 3, pageSize: 3, ragged: false });
  const run = (by, store, hangAt) =>
    consume(
      { url: feed.url, partitionCount: 1, fetch: feed.fetch },
      {
        store,
        key: 'k',
        tabs: false,
        handler: async (batch, tx) => {
          for (const e of batch.events) tx.prepare('INSERT INTO applied (id, by) VALUES (?, ?)').run(e.data.id, by);
          if (batch.events[0].data.seq === hangAt) await never();
        },
      },
    );
  const outcome = await within(run('hung', sqliteStore(db, { handlerTimeoutMs: 300 }), 4), 20_000);
  assert.notEqual(outcome, 'still waiting', 'consume() waited 20 s for a handler that never settles');
  assert.ok(isFeedError(outcome, 'store-failed'), `consume() ended with ${outcome?.code}: ${outcome?.message}`);
  const next = await within(run('next', sqliteStore(db)), 20_000);
  assert.notEqual(next, 'still waiting', 'the next consumer waited for ever');
  assert.deepEqual([next.caughtUp, next.events], [true, 6]);
  assert.deepEqual(db.prepare('SELECT by, count(*) AS n, count(DISTINCT id) AS ids FROM applied GROUP BY by ORDER BY by').all(), [
    { by: 'hung', n: 3, ids: 3 }, // its first batch committed; the hung one (seq 4..6) did not
    { by: 'next', n: 6, ids: 6 },
  ]);
});

test('sqlite: handlerTimeoutMs does not cut a synchronous handler (it has finished when the store looks); bad values are refused', async () => {
  const { store, write, read } = fresh({ handlerTimeoutMs: 1 });
  await store.save('k', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 }, (tx) => {
    const until = Date.now() + 20;
    while (Date.now() < until); // longer than the bound, synchronously
    write(tx, 'sync', 1);
  }, null);
  assert.equal(await read('sync'), 1);
  const { db } = fresh();
  for (const bad of [0, -1, 1.5, 2 ** 31, NaN, Infinity, '1000']) {
    assert.throws(() => sqliteStore(db, { handlerTimeoutMs: bad }), (e) => isFeedError(e, 'bad-options') && /handlerTimeoutMs must be an integer from 1 to 2147483647/.test(e.message), String(bad));
  }
  sqliteStore(db, { handlerTimeoutMs: 2 ** 31 - 1 });
});
