// Event-type filters (js/src/filters.ts) on the built dist/ (run `bash scripts/build.sh` first). Pure functions.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import {
  compilePattern,
  compileTypeFilter,
  encodeTypeList,
  EVENT_TYPES_SEPARATOR,
  serverTypeFilter,
  typeReader,
} from '../../../dist/filters.js';
import * as api from '../../../dist/index.js';
import { consume, memoryStore, openFeed } from '../../../dist/entrypoints/node.js';
import { fakeFeed } from './consume-fake-feed.mjs';

const ev = (type, extra = {}) => ({ partition: 0, data: { type, n: 1 }, ...extra });
const TYPES = ['OrderCreated', 'OrderShipped', 'Payment.Captured', 'Payment.Refunded', 'Customer.Updated', 'ordercreated'];
const kept = (filter) => TYPES.filter((t) => compileTypeFilter(filter)(ev(t)));

test('exported from the package index', () => {
  assert.equal(api.compileTypeFilter, compileTypeFilter);
  assert.equal(api.serverTypeFilter, serverTypeFilter);
  assert.equal(api.EVENT_TYPES_SEPARATOR, ';');
});

test('no include and no exclude keeps everything, typed or not', () => {
  assert.deepEqual(kept({}), TYPES);
  assert.equal(compileTypeFilter()({ partition: 0, data: 'opaque' }), true);
});

test('strings are exact (case and all; * is not a wildcard)', () => {
  assert.deepEqual(kept({ include: 'OrderCreated' }), ['OrderCreated']);
  assert.deepEqual(kept({ include: ['OrderCreated', 'Payment.Captured'] }), ['OrderCreated', 'Payment.Captured']);
  assert.deepEqual(kept({ include: 'Order*' }), []);
  assert.equal(compileTypeFilter({ include: 'Order*' })(ev('Order*')), true);
  assert.deepEqual(kept({ include: 'OrderCreated', ignoreCase: true }), ['OrderCreated', 'ordercreated']);
});

test('prefixes and RegExps; a global RegExp keeps no state between events', () => {
  assert.deepEqual(kept({ include: { prefix: 'Payment.' } }), ['Payment.Captured', 'Payment.Refunded']);
  assert.deepEqual(kept({ include: { prefix: 'order' }, ignoreCase: true }), ['OrderCreated', 'OrderShipped', 'ordercreated']);
  assert.deepEqual(kept({ include: /^Order/ }), ['OrderCreated', 'OrderShipped']);
  assert.deepEqual(kept({ include: /created$/i }), ['OrderCreated', 'ordercreated']);
  const g = compileTypeFilter({ include: /Order/g });
  assert.deepEqual([g(ev('OrderCreated')), g(ev('OrderCreated')), g(ev('OrderCreated'))], [true, true, true]);
});

test('exclude drops matches; include and exclude combine (in include, not in exclude)', () => {
  assert.deepEqual(kept({ exclude: { prefix: 'Payment.' } }), ['OrderCreated', 'OrderShipped', 'Customer.Updated', 'ordercreated']);
  assert.deepEqual(kept({ include: /^Order|^Payment/, exclude: ['OrderShipped', /Refunded$/] }), ['OrderCreated', 'Payment.Captured']);
});

test('events without a type: dropped by an include list, kept by an exclude list', () => {
  const untyped = [{ partition: 0, data: { kind: 'x' } }, { partition: 0, data: 'binary' }, { partition: 0, data: { type: 7 } }];
  for (const e of untyped) {
    assert.equal(compileTypeFilter({ include: /.*/ })(e), false);
    assert.equal(compileTypeFilter({ exclude: /.*/ })(e), true);
  }
});

test('type sources: data field, nested path, string data holding JSON, header, function', () => {
  assert.equal(typeReader()(ev('A')), 'A');
  assert.equal(typeReader({ field: 'meta.type' })({ partition: 0, data: { meta: { type: 'B' } } }), 'B');
  assert.equal(typeReader({ field: ['m.x', 'type'] })({ partition: 0, data: { 'm.x': { type: 'C' } } }), 'C');
  assert.equal(typeReader({ field: 'meta.type' })({ partition: 0, data: { meta: null } }), undefined);
  assert.equal(typeReader({ field: 'type' })({ partition: 0, data: ['type'] }), undefined);
  assert.equal(typeReader({ field: 'toString' })({ partition: 0, data: {} }), undefined, 'own properties only');
  assert.equal(typeReader()({ partition: 0, data: '{"type":"D"}' }), 'D', 'v2 data may be a JSON string');
  assert.equal(typeReader()({ partition: 0, data: '{not json' }), undefined);
  assert.equal(typeReader()({ partition: 0, data: 'aGVsbG8=' }), undefined);
  assert.equal(typeReader({ header: 'ce_type' })({ partition: 0, data: {}, headers: { ce_type: 'E' } }), 'E');
  assert.equal(typeReader({ header: 'ce_type' })({ partition: 0, data: {} }), undefined);
  assert.equal(typeReader((e) => e.data.kind)({ partition: 0, data: { kind: 'F' } }), 'F');
  assert.equal(typeReader(() => 42)(ev('x')), undefined, 'a non-string is no type');
  const byHeader = compileTypeFilter({ include: 'E', typeFrom: { header: 'ce_type' } });
  assert.equal(byHeader({ partition: 0, data: { type: 'E' } }), false);
  assert.equal(byHeader({ partition: 0, data: {}, headers: { ce_type: 'E' } }), true);
});

test('bad patterns and sources are TypeErrors at compile time', () => {
  for (const include of [42, null, { prefix: 1 }, {}, [['a']]]) {
    assert.throws(() => compileTypeFilter({ include }), TypeError, JSON.stringify(include));
  }
  for (const typeFrom of [{ field: '' }, { field: 'a..b' }, { field: [] }, { header: '' }, { other: 1 }, 'type']) {
    assert.throws(() => compileTypeFilter({ typeFrom }), TypeError, JSON.stringify(typeFrom));
  }
});

test('serverTypeFilter: exact include names become event-types (minus exact excludes)', () => {
  assert.deepEqual(serverTypeFilter({ include: ['OrderCreated', 'OrderShipped'] }), { eventTypes: ['OrderCreated', 'OrderShipped'] });
  assert.deepEqual(serverTypeFilter({ include: 'A' }), { eventTypes: ['A'] });
  assert.deepEqual(serverTypeFilter({ include: ['A', 'B', 'A'], exclude: ['B', /x/] }), { eventTypes: ['A'] });
  assert.deepEqual(serverTypeFilter({ include: ['A', 'b'], exclude: 'B', ignoreCase: true }), { eventTypes: ['A'] });
  assert.deepEqual(serverTypeFilter({ include: ['A', 'b'], exclude: 'B' }), { eventTypes: ['A', 'b'] });
});

test('serverTypeFilter: prefixes, RegExps, unsendable names, nothing left → undefined', () => {
  assert.equal(serverTypeFilter({}), undefined);
  assert.equal(serverTypeFilter({ include: { prefix: 'Order' } }), undefined);
  assert.equal(serverTypeFilter({ include: ['A', /B/] }), undefined);
  assert.equal(serverTypeFilter({ include: ['a;b'] }), undefined);
  assert.equal(serverTypeFilter({ include: [''] }), undefined);
  assert.equal(serverTypeFilter({ include: [' A'] }), undefined);
  assert.equal(serverTypeFilter({ include: 'A', exclude: 'A' }), undefined);
});

test('serverTypeFilter: skip-event-types only for case-insensitive exact excludes (servers compare case-insensitively)', () => {
  assert.equal(serverTypeFilter({ exclude: ['Internal.Audit'] }), undefined);
  assert.deepEqual(serverTypeFilter({ exclude: ['Internal.Audit', 'Debug'], ignoreCase: true }), { skipEventTypes: ['Internal.Audit', 'Debug'] });
  assert.equal(serverTypeFilter({ exclude: [{ prefix: 'Internal.' }], ignoreCase: true }), undefined);
});

test('what the server is asked for is a superset of what the filter keeps', () => {
  // The server semantics of docs/feedapi-v2.md: case-insensitive names, event-types keeps, skip-event-types drops.
  const server = (p, t) =>
    p === undefined ||
    (p.eventTypes
      ? p.eventTypes.some((n) => n.toLowerCase() === t.toLowerCase())
      : !p.skipEventTypes.some((n) => n.toLowerCase() === t.toLowerCase()));
  const filters = [
    { include: ['OrderCreated'] },
    { include: ['OrderCreated', 'ordercreated'], exclude: ['OrderCreated'] },
    { include: ['OrderCreated', 'Payment.Captured'], exclude: 'Payment.Captured', ignoreCase: true },
    { exclude: ['OrderShipped', 'Customer.Updated'], ignoreCase: true },
    { exclude: ['OrderCreated'] },
    { include: { prefix: 'Pay' } },
  ];
  for (const f of filters) {
    const p = serverTypeFilter(f);
    for (const t of TYPES) if (compileTypeFilter(f)(ev(t))) assert.ok(server(p, t), `${JSON.stringify(f)} loses ${t}`);
  }
});

test('encodeTypeList joins with the SPEC separator and refuses unsendable names', () => {
  assert.equal(EVENT_TYPES_SEPARATOR, ';');
  assert.equal(encodeTypeList(['a.b', 'C']), 'a.b;C');
  assert.equal(new URLSearchParams({ 'event-types': encodeTypeList(['a', 'b']) }).toString(), 'event-types=a%3Bb');
  for (const bad of [['a;b'], [''], ['x ']]) assert.throws(() => encodeTypeList(bad), TypeError);
});

// A filter that keeps only the first events of each partition: most batches keep no event at all, yet their
// checkpoints must still be delivered (and committed), or a consumer would read the rest of the feed again on every
// restart.
const EARLY = { include: 'early', typeFrom: (e) => (e.data.seq <= 3 ? 'early' : 'late') };

test('a filter that drops every event of most batches: the batches still come, with their checkpoints; cursors reach the end', async () => {
  const feed = fakeFeed({ partitions: 2, count: 20, checkpointEvery: 2, pageSize: 4 });
  const batches = openFeed(feed.url, { partitionCount: 2, fetch: feed.fetch, retry: false, filter: EARLY });
  let empty = 0;
  const ids = [];
  for await (const b of batches.batches()) {
    if (b.events.length === 0 && b.checkpoints.length > 0) empty++;
    ids.push(...b.events.map((e) => e.data.id));
  }
  assert.deepEqual(ids.sort(), ['p0-1', 'p0-2', 'p0-3', 'p1-1', 'p1-2', 'p1-3']);
  assert.ok(empty > 0, 'batches whose events were all filtered out are handed out');
  assert.deepEqual(batches.cursors(), { 0: '20', 1: '20' }, 'batches(): the cursors reach the end of the feed');

  const events = openFeed(feed.url, { partitionCount: 2, fetch: feed.fetch, retry: false, filter: EARLY });
  let n = 0;
  for await (const _ of events) n++;
  assert.equal(n, 6);
  assert.deepEqual(events.cursors(), { 0: '20', 1: '20' }, 'events(): the cursors reach the end of the feed');
});

test('consume() with a filter: the stored cursors reach the end, so a restart reads nothing again', async () => {
  const feed = fakeFeed({ partitions: 2, count: 20, checkpointEvery: 2, pageSize: 4 });
  const source = { url: feed.url, partitionCount: 2, fetch: feed.fetch, retry: false, filter: EARLY };
  const store = memoryStore();
  const handler = (batch, tx) => { for (const e of batch.events) tx.set(e.data.id, 1); };
  const r = await consume(source, { store, key: 'k', handler });
  assert.equal(r.events, 6);
  assert.deepEqual(r.cursors, { 0: '20', 1: '20' });
  assert.deepEqual((await store.load('k')).cursors, { 0: '20', 1: '20' }, 'committed up to the end of the feed');
  const before = feed.requests.length;
  const again = await consume(source, { store, key: 'k', handler });
  assert.equal(again.start, 'stored');
  assert.deepEqual(feed.requests.slice(before), [{ 0: '20', 1: '20' }], 'the restart asks only for what is new');
});

/** Asserts a TypeError whose message matches `pattern` (a message names what was wrong and what was given). */
const throwsType = (fn, pattern) => assert.throws(fn, (e) => e instanceof TypeError && pattern.test(e.message), String(pattern));

test('bad patterns, sources and filters: TypeErrors that say what was expected and what was given', () => {
  const cyclic = {};
  cyclic.self = cyclic;
  throwsType(() => compileTypeFilter({ include: 42 }), /^an event-type pattern must be a string, \{ prefix: string \} or a RegExp, got 42$/);
  throwsType(() => compileTypeFilter({ include: null }), /got null$/);
  throwsType(() => compileTypeFilter({ include: { prefix: 1 } }), /got \{"prefix":1\}$/);
  throwsType(() => compileTypeFilter({ include: [undefined] }), /got undefined$/);
  throwsType(() => compileTypeFilter({ exclude: [cyclic] }), /got \[object Object\]$/);
  // A function that has a `prefix` is not a `{ prefix }` pattern.
  throwsType(() => compileTypeFilter({ include: Object.assign(() => 'x', { prefix: 'x' }) }), /got \(\) => 'x'$/);
  throwsType(() => compileTypeFilter({ typeFrom: { field: ['a', 1] } }), /^typeFrom\.field must be a non-empty path, got \["a",1\]$/);
  throwsType(() => compileTypeFilter({ typeFrom: { header: 5 } }), /^typeFrom\.header must be a non-empty string$/);
  throwsType(() => compileTypeFilter({ typeFrom: { header: '' } }), /^typeFrom\.header must be a non-empty string$/);
  for (const [typeFrom, shown] of [[null, 'null'], ['type', '"type"'], [{ other: 1 }, '{"other":1}'], [7, '7']]) {
    throwsType(() => compileTypeFilter({ typeFrom }), new RegExp(`^typeFrom must be \\{ field \\}, \\{ header \\} or a function, got ${shown.replace(/[{}]/g, '\\$&')}$`));
  }
  for (const filter of [null, 5, 'x']) throwsType(() => compileTypeFilter(filter), /^a type filter must be an object$/);
  throwsType(() => encodeTypeList(['a;b']), /^event type "a;b" cannot be sent in event-types$/);
});

test('compilePattern: case-sensitive unless told; type readers: only strings are types, no lookups into strings', () => {
  assert.equal(compilePattern('A').test('a'), false);
  assert.equal(compilePattern({ prefix: 'Or' }).test('order'), false);
  assert.equal(compilePattern('A', true).test('a'), true);
  assert.equal(typeReader({ header: 'x' })({ partition: 0, data: {}, headers: { x: 5 } }), undefined);
  assert.equal(typeReader({ field: 'x.0' })({ partition: 0, data: { x: 'abc' } }), undefined, 'a string has no fields');
  assert.equal(typeReader({ field: 'x.length' })({ partition: 0, data: { x: [1] } }), undefined, 'an array has no fields');
  assert.equal(typeReader()({ partition: 0, data: '  {"type":"D"}' }), 'D', 'string data with leading white space');
});

test('serverTypeFilter: RegExp excludes are ignored for eventTypes; no exclude or an unsendable one sends no skip list', () => {
  assert.deepEqual(serverTypeFilter({ include: ['A'], exclude: [/x/, { prefix: 'y' }], ignoreCase: true }), { eventTypes: ['A'] });
  assert.equal(serverTypeFilter({ ignoreCase: true }), undefined);
  assert.equal(serverTypeFilter({ exclude: [], ignoreCase: true }), undefined);
  assert.equal(serverTypeFilter({ exclude: ['A', 'a;b'], ignoreCase: true }), undefined);
  // The client folds case with toLowerCase: 'ß' is not 'SS' to it, so the server must still be asked for 'ß'.
  assert.deepEqual(serverTypeFilter({ include: ['ß', 'x'], exclude: ['SS'], ignoreCase: true }), { eventTypes: ['ß', 'x'] });
  assert.equal(compileTypeFilter({ include: ['ß', 'x'], exclude: ['SS'], ignoreCase: true })(ev('ß')), true);
});
