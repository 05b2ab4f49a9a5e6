// The Node entry point in a Node that has Web Locks of its own (Node 24.5+; js-test.sh runs this file on Node 24 as
// well as on the machine's Node 20, where it is skipped): consume() is not in tabs mode unless asked for.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { consume, memoryStore, isFeedError } from '../../../dist/entrypoints/node.js';
import { fakeFeed } from './consume-fake-feed.mjs';

const native = typeof globalThis.navigator?.locks?.request === 'function';

test("Node's own Web Locks: two consume() of one key both lead (one fails cursor-conflict), no lock is held; tabs: true elects one", { skip: !native && 'no navigator.locks in this Node' }, async () => {
  const slow = fakeFeed({ partitions: 1, count: 8, checkpointEvery: 1, pageSize: 2 });
  const source = { url: slow.url, partitionCount: 1, fetch: (r) => new Promise((ok) => setTimeout(ok, 5)).then(() => slow.fetch(r)), retry: false };
  const run = (store, extra) => {
    const roles = [];
    return { roles, done: consume(source, { store, key: 'k', handler: () => {}, onRole: (r) => roles.push(r), ...extra }) };
  };
  const store = memoryStore();
  const a = run(store);
  const b = run(store);
  const held = await navigator.locks.query();
  const settled = await Promise.allSettled([a.done, b.done]);
  assert.deepEqual([a.roles, b.roles], [['leader'], ['leader']]);
  assert.deepEqual(held.held ?? [], [], 'no lock held by default');
  assert.ok(settled.some((r) => r.status === 'rejected' && isFeedError(r.reason, 'cursor-conflict')), 'the two calls raced on the store');
  // Asked for: one leads, the other follows and then finds nothing new.
  const shared = memoryStore();
  const c = run(shared, { tabs: true });
  const d = run(shared, { tabs: true });
  await Promise.all([c.done, d.done]);
  assert.deepEqual([c.roles, d.roles].map((r) => r.join(',')).sort(), ['follower,leader', 'leader']);
});
