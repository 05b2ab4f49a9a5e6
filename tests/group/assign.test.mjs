// The assignment of a consumer group (js/src/group/assign.ts), pure: its cost is linear in the partitions. Every
// member computes it at every heartbeat; the rules it keeps are tested in tests/group/group.test.mjs.
// Run: node --test tests/group/assign.test.mjs
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { assign } from '../../dist/group/assign.js';

test('assign is linear in the partitions: 400,000 of them to 3 members, from none owned and from half owned', () => {
  // A search of the free list per partition and a shift per partition handed out made it O(P²): 32,768 partitions took
  // 1 s (per heartbeat, per member), these 400,000 about 3 minutes. (A bound in the minutes' place: the new code
  // takes a fraction of a second.)
  const P = 400_000;
  const parts = Array.from({ length: P }, (_, i) => i);
  const started = Date.now();
  const fresh = assign(parts, ['a', 'b', 'c'], new Map());
  const half = assign(parts, ['a', 'b', 'c'], new Map(parts.filter((p) => p % 2 === 0).map((p) => [p, 'a'])));
  assert.ok(Date.now() - started < 20_000, `assigning took ${Date.now() - started} ms`);
  for (const t of [fresh, half]) {
    assert.deepEqual([...t.values()].map((x) => x.length), [133_334, 133_333, 133_333]);
    assert.equal(new Set([...t.values()].flat()).size, P, 'every partition exactly once');
  }
  assert.equal(half.get('a').filter((p) => p % 2 === 0).length, 133_334, "a keeps what it can of what it owned");
});
