// d1Store against D1 in Miniflare (real workerd; the store runs here in Node on Miniflare's D1 binding, and in workerd
// in tests/stores/kill-d1.test.mjs and examples/workers-d1): the store contract, then D1's own cases: the batch guard
// that catches a commit between the store's read and its batch, statements that fail, a handler that returns no array.
// Run: node --test --test-timeout=60000 --test-force-exit tests/stores/d1.test.mjs
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Miniflare } from 'miniflare';
import { d1Store } from 'feedpump/d1';
import { isFeedError } from '../../dist/errors.js';
import { contract } from './contract.mjs';
import { workerOptions } from '../workerd/miniflare.mjs';

let mf;
let db;
before(async () => {
  mf = new Miniflare(
    workerOptions({ modules: true, script: 'export default { fetch() { return new Response("d1 test") } }', d1Databases: ['DB'] }),
  );
  db = await mf.getD1Database('DB');
});
after(async () => {
  await mf?.dispose();
});

let tables = 0;
async function fresh(options = {}) {
  const n = ++tables;
  await db.prepare(`CREATE TABLE effects${n} (name TEXT PRIMARY KEY, value INTEGER NOT NULL)`).run();
  const make = () => d1Store(db, { table: `cursors${n}`, ...options });
  const write = (tx, name, value) => [tx.prepare(`INSERT INTO effects${n} (name, value) VALUES (?, ?)`).bind(name, value)];
  const read = async (name) => (await db.prepare(`SELECT value FROM effects${n} WHERE name = ?`).bind(name).first())?.value ?? undefined;
  return { n, store: make(), other: make, write, read };
}

contract('d1', () => fresh());

test('d1: a commit between the store\'s read and its batch → the guard fails the batch: cursor-conflict, none of the handler\'s statements committed', async () => {
  const { store, other, write, read } = await fresh();
  const base = { identity: 'i', cursors: { 0: '1' }, savedAt: 1 };
  await store.save('k', base, undefined, null);
  await assert.rejects(
    store.save('k', { identity: 'i', cursors: { 0: '2' }, savedAt: 2 }, async (tx) => {
      // Another consumer commits while this handler computes its statements.
      await other().save('k', { identity: 'i', cursors: { 0: 'other' }, savedAt: 3 }, (t) => write(t, 'other', 1), base);
      return write(tx, 'mine', 1);
    }, base),
    (e) => isFeedError(e, 'cursor-conflict'),
  );
  assert.equal(await read('mine'), undefined, "the handler's statements rolled back with the guard");
  assert.equal(await read('other'), 1);
  assert.deepEqual((await store.load('k')).cursors, { 0: 'other' });
  // The first record of a key: the guard for "no row yet".
  // (Another consumer's record, not one equal to ours: an equal one, the same cursors saved in the same millisecond,
  // reads as ours after a lost answer, see the last test.)
  await assert.rejects(
    store.save('fresh', base, async (tx) => {
      await other().save('fresh', { ...base, savedAt: 9 }, undefined, null);
      return write(tx, 'fresh-mine', 1);
    }, null),
    (e) => isFeedError(e, 'cursor-conflict'),
  );
  assert.equal(await read('fresh-mine'), undefined);
});

test('d1: a failing statement of the handler → store-failed, nothing of the batch committed; a handler that returns no array → bad-options', async () => {
  const { n, store, write, read } = await fresh();
  await store.save('k', { identity: 'i', cursors: { 0: '1' }, savedAt: 1 }, (tx) => write(tx, 'a', 1));
  await assert.rejects(
    store.save('k', { identity: 'i', cursors: { 0: '2' }, savedAt: 2 }, (tx) => [...write(tx, 'b', 1), ...write(tx, 'a', 2)]),
    (e) => isFeedError(e, 'store-failed') && /UNIQUE constraint failed/.test(e.message),
  );
  assert.equal(await read('b'), undefined);
  assert.equal(await read('a'), 1);
  assert.deepEqual((await store.load('k')).cursors, { 0: '1' });
  await assert.rejects(
    store.save('k', { identity: 'i', cursors: { 0: '3' }, savedAt: 3 }, (tx) => tx.prepare(`INSERT INTO effects${n} VALUES ('c', 1)`)),
    (e) => isFeedError(e, 'bad-options'),
  );
  assert.equal(await read('c'), undefined);
  assert.deepEqual((await store.load('k')).cursors, { 0: '1' });
});

test('d1: the table and its columns; createTable: false; bad options', async () => {
  const { store } = await fresh();
  await store.save('k', { identity: 'i', partitions: [3, 1], cursors: { 3: 'c', 1: 'a' }, savedAt: 9 });
  const { results } = await db.prepare(`SELECT * FROM cursors${tables}`).all();
  assert.deepEqual(results, [{ feed_key: 'k', identity: 'i', partitions: '[3,1]', cursors: '{"1":"a","3":"c"}', saved_at: 9 }]);
  const manual = d1Store(db, { table: 'manual', createTable: false });
  await assert.rejects(manual.load('k'), (e) => isFeedError(e, 'store-failed') && /no such table/.test(e.message));
  await db.prepare(manual.schema).run();
  assert.equal(await manual.load('k'), undefined);
  assert.throws(() => d1Store(db, { table: 'a.b' }), (e) => isFeedError(e, 'bad-options'));
  assert.throws(() => d1Store({}), (e) => isFeedError(e, 'bad-options'));
});

/** `db` whose `batch()` answers with `lost` (an error, as when the connection drops) after D1 ran it, or instead of running it (`before`). */
function losingAnswers(target, { before = false } = {}) {
  const lost = () => new Error('D1_ERROR: Network connection lost.');
  return new Proxy(target, {
    get(t, prop) {
      if (prop === 'batch') {
        return async (statements) => {
          if (before) throw lost();
          await t.batch(statements);
          throw lost();
        };
      }
      const v = Reflect.get(t, prop, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

test("d1: a batch that committed but whose answer was lost → the save succeeds (not cursor-conflict); one lost before D1 ran it → store-failed, nothing committed", async () => {
  const { n, write, read } = await fresh();
  const lostAfter = d1Store(losingAnswers(db), { table: `cursors${n}` });
  const base = { identity: 'i', cursors: { 0: '1' }, savedAt: 1 };
  // The first record of a key (the "no row yet" guard), then a later one (the "same row" guard).
  await lostAfter.save('k', base, (tx) => write(tx, 'a', 1), null);
  const next = { identity: 'i', cursors: { 0: '2' }, savedAt: 2 };
  await lostAfter.save('k', next, (tx) => write(tx, 'b', 1), base);
  assert.equal(await read('a'), 1);
  assert.equal(await read('b'), 1);
  assert.deepEqual((await lostAfter.load('k')).cursors, { 0: '2' });

  const lostBefore = d1Store(losingAnswers(db, { before: true }), { table: `cursors${n}` });
  await assert.rejects(
    lostBefore.save('k', { identity: 'i', cursors: { 0: '3' }, savedAt: 3 }, (tx) => write(tx, 'c', 1), next),
    (e) => isFeedError(e, 'store-failed') && /nothing of it committed/.test(e.message) && /Network connection lost/.test(e.message),
  );
  assert.equal(await read('c'), undefined);
  // Without `expected` the store cannot tell its record from the one before: a lost answer is store-failed, and says so.
  await assert.rejects(
    lostAfter.save('k', { identity: 'i', cursors: { 0: '4' }, savedAt: 4 }, (tx) => write(tx, 'd', 1)),
    (e) => isFeedError(e, 'store-failed') && /whether it committed is unknown/.test(e.message),
  );
  assert.equal(await read('d'), 1, 'D1 did commit it');
});
