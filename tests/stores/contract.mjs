// The CursorStore contract, as every store must keep it (js/src/stores/types.ts), run against a real database by each
// store's test file. `setup()` gives a fresh store and how the store's transaction writes and reads an effect:
//
//   { store,                       // the CursorStore under test
//     write(tx, name, value),      // the handler's write of one effect (returns what the handler returns: D1's statements)
//     read(name),                  // the committed value of an effect, or undefined
//     other?: () => store }        // a second store on the same database (another process's connection)
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { isFeedError } from '../../dist/errors.js';

const rec = (cursors, extra = {}) => ({ identity: 'https://host/feed/v1 v1 n=4', cursors, savedAt: 1_700_000_000_000, ...extra });

/** Registers the contract tests of one store. */
export function contract(name, setup) {
  test(`${name}: load of a key never saved is undefined; a save commits the effects and the record together`, async () => {
    const { store, write, read } = await setup();
    assert.equal(await store.load('k'), undefined);
    const record = rec({ 0: '17', 3: '4', 10: 'x' }, { partitions: [0, 3, 10] });
    await store.save('k', record, (tx) => write(tx, 'a', 1));
    assert.deepEqual(await store.load('k'), record, 'the record reads back as saved (partitions and cursors)');
    assert.equal(await read('a'), 1);
    const noPartitions = rec({ 1: 'z' });
    await store.save('k', noPartitions);
    assert.deepEqual(await store.load('k'), noPartitions, 'a record without partitions reads back without them');
    assert.equal(await store.load('other'), undefined, 'keys are separate');
    // Cursors are opaque strings of the server: any text round-trips (PostgreSQL's jsonb, for one, refuses \u0000).
    const odd = rec({ 0: 'a\u0000b', 1: 'ü€😀 "q" \\ \n', 2: '' }, { identity: 'https://h/f?apikey&x v1 n=3' });
    await store.save('odd', odd, undefined, null);
    assert.deepEqual(await store.load('odd'), odd);
    await store.save('odd', rec({ 0: 'next' }), undefined, odd);
  });

  test(`${name}: a throwing or rejecting handler commits nothing, and its error passes as it is`, async () => {
    const { store, write, read } = await setup();
    await store.save('k', rec({ 0: '1' }), (tx) => write(tx, 'a', 1));
    const boom = new Error('boom');
    await assert.rejects(
      store.save('k', rec({ 0: '2' }), (tx) => {
        write(tx, 'sync', 2);
        throw boom;
      }),
      (e) => e === boom,
    );
    await assert.rejects(
      store.save('k', rec({ 0: '3' }), async (tx) => {
        await write(tx, 'async', 3);
        await null;
        throw boom;
      }),
      (e) => e === boom,
    );
    assert.equal(await read('sync'), undefined);
    assert.equal(await read('async'), undefined);
    assert.deepEqual((await store.load('k')).cursors, { 0: '1' });
  });

  test(`${name}: expected: nothing is committed (and the handler does not run) when the record changed since it was read`, async () => {
    const { store, write, read } = await setup();
    const first = rec({ 0: '1' });
    await store.save('k', first, undefined, null);
    let ran = false;
    await assert.rejects(
      store.save('k', rec({ 0: '2' }), () => { ran = true; }, null),
      (e) => isFeedError(e, 'cursor-conflict'),
      'null expected but a record exists',
    );
    const stale = { ...first, savedAt: first.savedAt - 1 };
    await assert.rejects(store.save('k', rec({ 0: '2' }), () => { ran = true; }, stale), (e) => isFeedError(e, 'cursor-conflict'), 'a stale record');
    const otherCursor = { ...first, cursors: { 0: '0' } };
    await assert.rejects(store.save('k', rec({ 0: '2' }), () => { ran = true; }, otherCursor), (e) => isFeedError(e, 'cursor-conflict'), 'another cursor');
    assert.equal(ran, false, 'the handler did not run');
    await store.save('k', rec({ 0: '3' }), (tx) => write(tx, 'b', 3), first);
    assert.deepEqual((await store.load('k')).cursors, { 0: '3' });
    assert.equal(await read('b'), 3);
  });

  test(`${name}: two consumers of one key save from the same record at once: one commits, the other is a cursor-conflict with nothing committed`, async () => {
    const { store, write, read, other } = await setup();
    const second = other ? other() : store;
    const base = rec({ 0: '1' });
    await store.save('k', base, undefined, null);
    for (const [label, expected] of [['from a record', base]]) {
      const results = await Promise.allSettled([
        store.save('k', rec({ 0: 'A' }, { savedAt: 2 }), (tx) => write(tx, 'winner-A', 1), expected),
        second.save('k', rec({ 0: 'B' }, { savedAt: 3 }), (tx) => write(tx, 'winner-B', 1), expected),
      ]);
      const ok = results.filter((r) => r.status === 'fulfilled').length;
      const conflicts = results.filter((r) => r.status === 'rejected' && isFeedError(r.reason, 'cursor-conflict')).length;
      assert.equal(ok, 1, `${label}: exactly one commits (${results.map((r) => r.reason?.message ?? 'ok').join(' | ')})`);
      assert.equal(conflicts, 1, `${label}: the other is a conflict`);
      const winner = (await store.load('k')).cursors[0];
      assert.equal(await read(`winner-${winner}`), 1, "the winner's effects committed");
      assert.equal(await read(`winner-${winner === 'A' ? 'B' : 'A'}`), undefined, "the loser's effects did not");
    }
    // The first record of a key: no row to lock yet.
    const results = await Promise.allSettled([
      store.save('fresh', rec({ 0: 'A' }), (tx) => write(tx, 'fresh-A', 1), null),
      second.save('fresh', rec({ 0: 'B' }), (tx) => write(tx, 'fresh-B', 1), null),
    ]);
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1, `first record: one commits (${results.map((r) => r.reason?.message ?? 'ok').join(' | ')})`);
    assert.ok(results.some((r) => r.status === 'rejected' && isFeedError(r.reason, 'cursor-conflict')), 'first record: the other is a conflict');
    const winner = (await store.load('fresh')).cursors[0];
    assert.equal(await read(`fresh-${winner === 'A' ? 'B' : 'A'}`), undefined, "first record: the loser's effects did not commit");
  });
}
