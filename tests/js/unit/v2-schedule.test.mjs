// The FeedAPI v2 schedule (core/src/schedule.rs) through the wasm class v2.ts drives (src/schedule.rs): which
// partition is read next, fair turns, the re-plan after a 409, closed parents and their children, `partitions`,
// impossible documents, live resting times, errors as FeedError-shaped `bad-discovery`s. No reader, no HTTP, no clock:
// `now` is passed in. The same cases natively: core/tests/schedule.rs; over real HTTP: tests/interop/v2-*.test.mjs.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../../dist/entrypoints/node.js'; // instantiates the wasm
import { partitionScope, readerDefaults, Schedule } from '../../../dist/wasm/feedpump.js';

const PAGES_PER_TURN = readerDefaults().pagesPerTurn;

/** The wasm schedule with the options of the TypeScript class it replaced, `{ partitions, live, intervalMs }`, and its
 * turn ends, `{ caughtUp, delivered }` (delivered: the turn's batch brought events, as v2.ts reports it). */
class V2Schedule {
  #s;
  constructor({ partitions, live, intervalMs }) {
    this.#s = new Schedule(partitions, live ? intervalMs : undefined);
  }
  plan(d) {
    this.#s.plan(d);
  }
  poll(now) {
    return this.#s.poll(now);
  }
  handleTurnEnd({ caughtUp, delivered }, now) {
    if (delivered) this.#s.handleBatch(1, true);
    this.#s.handleTurnEnd(caughtUp, now);
  }
}

/** A discovery of partitions given as `id`, `id!` (closed), `id<parent` (startsAfterPartition), `id~a,b` (cursorFrom). */
function doc(...specs) {
  return {
    token: 't',
    exactlyOnce: true,
    partitions: specs.map((s) => {
      const m = /^(\d+)(!?)(?:<(\d+))?(?:~([\d,]+))?$/.exec(s);
      return {
        id: Number(m[1]),
        closed: m[2] === '!',
        startsAfterPartition: m[3] === undefined ? undefined : Number(m[3]),
        cursorFromPartitions: m[4] === undefined ? [] : m[4].split(',').map(Number),
      };
    }),
  };
}

/** Drives the schedule: `end(id)` says how each turn ends; returns the ids read, in order, until the step kind `until`. */
function drive(s, end, { until = 'end', max = 1000, now = 0 } = {}) {
  const read = [];
  for (let i = 0; i < max; i++) {
    const step = s.poll(now);
    if (step.kind === until) return { read, step };
    if (step.kind !== 'read') {
      read.push(step.kind);
      continue;
    }
    read.push(step.partition.id);
    s.handleTurnEnd(end(step.partition.id), now);
  }
  return { read, step: undefined };
}
const caughtUp = () => ({ caughtUp: true, delivered: false });

test('fair turns: a partition that is never caught up gets one turn in each round, the others are read meanwhile', () => {
  const s = new V2Schedule({ live: false, intervalMs: 0 });
  s.plan(doc('0', '1', '2'));
  const turns = new Map();
  const { read } = drive(s, (id) => {
    turns.set(id, (turns.get(id) ?? 0) + 1);
    return { caughtUp: id !== 0 && turns.get(id) >= 3, delivered: true };
  }, { max: 12 });
  assert.deepEqual(read.slice(0, 9), [0, 1, 2, 0, 1, 2, 0, 1, 2]);
  assert.deepEqual(read.slice(9, 12), [0, 0, 0], 'once 1 and 2 are caught up only the hot one is left');
  assert.ok(PAGES_PER_TURN >= 1);
});

test('a turn uses PAGES_PER_TURN pages: the batch that starts one more page ends it; no turn, no count', () => {
  const s = new Schedule(undefined, undefined);
  s.plan(doc('0'));
  assert.equal(s.handleBatch(1, true), false, 'no turn yet');
  assert.equal(s.poll(0).partition.id, 0);
  for (let page = 1; page <= PAGES_PER_TURN; page++) assert.equal(s.handleBatch(page, page === 1), false, `page ${page}`);
  assert.equal(s.handleBatch(PAGES_PER_TURN + 1, false), true);
  s.handleTurnEnd(false, 0);
  assert.equal(s.poll(0).partition.id, 0, 'not caught up: due again');
  s.handleTurnEnd(true, 0);
  assert.deepEqual([s.poll(0), s.poll(0)], [{ kind: 'caught-up' }, { kind: 'end' }]);
  s.free();
});

test('start: the first round begins at the partition due at that position, modulo their count (v2.ts passes Math.random() * 2 ** 32)', () => {
  // Any number Math.random() * 2 ** 32 gives crosses as a u32 (its fraction dropped), also those of 2^31 and more.
  for (const [start, first] of [[undefined, 0], [0, 0], [1.9, 1], [6, 2], [2 ** 31 + 3, 3], [2 ** 32 - 0.5, 3]]) {
    const s = new Schedule(undefined, undefined, start);
    s.plan(doc('0', '1', '2', '3'));
    const read = [];
    for (let k = 0; k < 5; k++) {
      read.push(s.poll(0).partition.id);
      s.handleTurnEnd(false, 0);
    }
    assert.deepEqual(read, [0, 1, 2, 3, 4].map((k) => (first + k) % 4), `start ${start}`);
    s.free();
  }
});

test('a read step hands back the listed object itself; the live interval "default" is the core\'s', () => {
  const d = doc('3', '5!');
  const s = new Schedule([5], 'default');
  s.plan(d);
  assert.equal(s.poll(0).partition, d.partitions[1]);
  s.handleTurnEnd(true, 0);
  assert.deepEqual([s.poll(0), s.poll(0)], [{ kind: 'caught-up' }, { kind: 'wait', ms: readerDefaults().liveMinIntervalMs, rediscover: true }]);
});

test('partitionScope (the consumer groups\' scope): the ids a filter reads, an id listed twice taken from its last entry', () => {
  const { partitions } = doc('0', '1!', '2', '4<1', '6!<1', '9<6', '11~1', '12~0');
  assert.deepEqual(partitionScope(partitions, [1]), [1, 4, 6, 9, 11]);
  assert.deepEqual(partitionScope(doc('3', '4<3', '3~9').partitions, [9]).sort(), [3, 3, 4]);
  assert.deepEqual(partitionScope(doc('3~9', '4<3', '3').partitions, [9]), []);
});

test('a split while running: 1 caught up while open, then listed closed with children: re-read, then the children', () => {
  const s = new V2Schedule({ live: false, intervalMs: 0 });
  s.plan(doc('0', '1', '2'));
  assert.deepEqual(drive(s, caughtUp, { until: 'caught-up' }).read, [0, 1, 2]);
  // The 409 of the next request: a new discovery, in which 1 is closed and 4, 5 start after it. 0 and 2, caught up
  // and still open, stay caught up (a 409 every few requests would otherwise keep the feed from ever ending).
  s.plan(doc('0', '1!', '2', '4<1', '5<1'));
  const { read } = drive(s, caughtUp);
  assert.deepEqual(read, [1, 4, 5, 'caught-up']);
});

test('a partition finished while closed stays finished across a rediscovery; children wait for their parent', () => {
  const s = new V2Schedule({ live: false, intervalMs: 0 });
  s.plan(doc('7<3', '3!'));
  assert.deepEqual(drive(s, caughtUp, { until: 'caught-up' }).read, [3, 7]);
  s.plan(doc('3!', '7!<3', '8<7'));
  assert.deepEqual(drive(s, caughtUp).read, [7, 8, 'caught-up'], '3 is not read again; 7 is, now closed; then 8');
});

test('partitions: only the listed ids and their split children (both methods, transitively)', () => {
  const s = new V2Schedule({ partitions: [1], live: false, intervalMs: 0 });
  s.plan(doc('0', '1!', '2', '4<1', '6!<1', '9<6', '11~1', '12~0'));
  // 11 takes the cursor of 1 (listed, closed): it starts once 1 is read to its end, after 4 and 6 (list order).
  assert.deepEqual(drive(s, caughtUp).read, [1, 4, 6, 11, 9, 'caught-up']);
  const t = new V2Schedule({ partitions: [4], live: false, intervalMs: 0 });
  t.plan(doc('1!', '4<1'));
  assert.deepEqual(drive(t, caughtUp).read, [4, 'caught-up'], 'a parent outside the scope is not waited for');
});

test('impossible documents: what can be read is read, then bad-discovery names why', () => {
  const s = new V2Schedule({ live: false, intervalMs: 0 });
  s.plan(doc('0', '1<0', '2!<3', '3!<2', '5<1'));
  const read = [];
  assert.throws(
    () => drive(s, (id) => (read.push(id), caughtUp())),
    (e) => e.code === 'bad-discovery' && /partition 1 startsAfterPartition 0, which is not closed/.test(e.message) && /cycle/.test(e.message),
  );
  assert.deepEqual(read, [0]);
  assert.throws(() => s.plan(doc('0', '0')), (e) => e.code === 'bad-discovery' && /listed twice/.test(e.message));
});

test('live: a caught-up partition rests for intervalMs; caught up is signalled once per catch-up', () => {
  const s = new V2Schedule({ live: true, intervalMs: 100 });
  s.plan(doc('0', '1'));
  assert.equal(s.poll(0).partition.id, 0);
  s.handleTurnEnd(caughtUp(), 0);
  assert.equal(s.poll(0).partition.id, 1);
  s.handleTurnEnd(caughtUp(), 10);
  assert.equal(s.poll(10).kind, 'caught-up');
  assert.deepEqual(s.poll(20), { kind: 'wait', ms: 80, rediscover: false });
  assert.equal(s.poll(100).partition.id, 0);
  s.handleTurnEnd({ caughtUp: true, delivered: true }, 100);
  assert.equal(s.poll(110).partition.id, 1);
  s.handleTurnEnd(caughtUp(), 110);
  assert.equal(s.poll(110).kind, 'caught-up', 'events came: caught up again');
  assert.equal(s.poll(110).kind, 'wait');
  // A hot partition cannot keep a resting one out: it comes back in its time.
  const h = new V2Schedule({ live: true, intervalMs: 50 });
  h.plan(doc('0', '1'));
  const order = [];
  for (let now = 0; now < 300; now += 10) {
    const step = h.poll(now);
    if (step.kind !== 'read') continue;
    order.push(step.partition.id);
    h.handleTurnEnd(step.partition.id === 0 ? { caughtUp: false, delivered: true } : caughtUp(), now);
  }
  assert.ok(order.filter((id) => id === 1).length >= 4, `partition 1 is polled again while 0 is hot: ${order}`);
  // A long live run (queues compacted on the way) keeps the same fair order.
  const late = [];
  for (let now = 300; now < 300 + 30_000 * 10; now += 10) {
    const step = h.poll(now);
    if (step.kind !== 'read') continue;
    if (now > 299_000) late.push(step.partition.id);
    h.handleTurnEnd(step.partition.id === 0 ? { caughtUp: false, delivered: true } : caughtUp(), now);
  }
  assert.ok(late.includes(0) && late.includes(1), `both still read after 30,000 turns: ${late}`);
  // Every partition closed and finished: wait, then discover again (a new token may list new partitions).
  const c = new V2Schedule({ live: true, intervalMs: 100 });
  c.plan(doc('0!'));
  assert.deepEqual(drive(c, caughtUp, { until: 'wait' }).step, { kind: 'wait', ms: 100, rediscover: true });
  c.plan(doc('0!'));
  assert.deepEqual(c.poll(200), { kind: 'wait', ms: 100, rediscover: true }, 'the same finished list: no new caught-up signal');
  c.plan(doc('0!', '1'));
  assert.equal(c.poll(300).partition.id, 1, 'a new partition is read');
  c.handleTurnEnd(caughtUp(), 300);
  assert.equal(c.poll(300).kind, 'caught-up');
});

test('hostile sizes cost linear time: a 32,768-partition chain listed children first; 100,000 entries', () => {
  const n = 32_768;
  const chain = { token: 't', exactlyOnce: true, partitions: [] };
  for (let id = n - 1; id >= 0; id--) {
    chain.partitions.push({ id, closed: true, startsAfterPartition: id === 0 ? undefined : id - 1, cursorFromPartitions: [] });
  }
  const s = new V2Schedule({ partitions: [0], live: false, intervalMs: 0 });
  s.plan(chain);
  const { read } = drive(s, caughtUp, { max: n + 10 });
  assert.equal(read.length, n + 1);
  assert.deepEqual(read.slice(0, 3), [0, 1, 2], 'each child after its parent');
  const ring = { ...chain, partitions: chain.partitions.map((p) => ({ ...p, startsAfterPartition: (p.id + 1) % n })) };
  const r = new V2Schedule({ live: false, intervalMs: 0 });
  r.plan(ring);
  assert.throws(() => r.poll(0), (e) => e.code === 'bad-discovery' && /cycle/.test(e.message) && e.message.length < 400);
  const many = { token: 't', exactlyOnce: true, partitions: Array.from({ length: 100_000 }, (_, i) => ({ id: i % n, closed: false, cursorFromPartitions: [] })) };
  assert.throws(() => new V2Schedule({ live: false, intervalMs: 0 }).plan(many), (e) => e.code === 'bad-discovery');
});

test('nothing to read: a fresh schedule, and a discovery listing no partition, signal caught up once, then end', () => {
  const fresh = new V2Schedule({ live: false, intervalMs: 0 });
  assert.deepEqual([fresh.poll(0), fresh.poll(0)], [{ kind: 'caught-up' }, { kind: 'end' }]);
  const empty = new V2Schedule({ live: false, intervalMs: 0 });
  empty.plan(doc());
  assert.deepEqual([empty.poll(0), empty.poll(0)], [{ kind: 'caught-up' }, { kind: 'end' }]);
  const live = new V2Schedule({ live: true, intervalMs: 100 });
  assert.deepEqual([live.poll(0), live.poll(0)], [{ kind: 'caught-up' }, { kind: 'wait', ms: 100, rediscover: true }]);
});

test('a turn end with no turn (a second end, or after a re-plan) changes nothing', () => {
  const s = new V2Schedule({ live: false, intervalMs: 0 });
  s.plan(doc('0'));
  assert.equal(s.poll(0).partition.id, 0);
  s.handleTurnEnd(caughtUp(), 0);
  s.handleTurnEnd({ caughtUp: false, delivered: true }, 0);
  assert.deepEqual(s.poll(0), { kind: 'caught-up' }, 'the second end neither queued a turn nor counted as events');
  const t = new V2Schedule({ live: false, intervalMs: 0 });
  t.plan(doc('0'));
  assert.equal(t.poll(0).partition.id, 0);
  t.plan(doc('0'));
  t.handleTurnEnd({ caughtUp: false, delivered: true }, 0);
  assert.deepEqual(drive(t, caughtUp).read, [0, 'caught-up'], 'partition 0 is due once, from the re-plan');
});

test('live: a round that brings no events is not signalled as caught up again', () => {
  const s = new V2Schedule({ live: true, intervalMs: 100 });
  s.plan(doc('0', '1'));
  assert.deepEqual(drive(s, caughtUp, { until: 'caught-up' }).read, [0, 1]);
  assert.equal(s.poll(100).partition.id, 0);
  s.handleTurnEnd(caughtUp(), 100);
  assert.equal(s.poll(100).partition.id, 1);
  s.handleTurnEnd(caughtUp(), 100);
  assert.deepEqual(s.poll(100), { kind: 'wait', ms: 100, rediscover: false });
});

test('a finished partition no longer listed, then listed open again, is read again (finished only while listed closed)', () => {
  const s = new V2Schedule({ live: false, intervalMs: 0 });
  s.plan(doc('3!'));
  assert.deepEqual(drive(s, caughtUp).read, [3, 'caught-up']);
  s.plan(doc('4'));
  assert.deepEqual(drive(s, caughtUp).read, [4, 'caught-up']);
  s.plan(doc('3', '4'));
  assert.deepEqual(drive(s, caughtUp).read, [3, 'caught-up'], '3 is open now: read again; 4 caught up, still open: not');
});

test('partitions: a child of an unlisted parent is in scope only if that parent is in the filter; a cycle outside the scope is ignored', () => {
  const s = new V2Schedule({ partitions: [9], live: false, intervalMs: 0 });
  s.plan(doc('4!<9', '5<8', '6', '7<4'));
  assert.deepEqual(drive(s, caughtUp).read, [4, 7, 'caught-up'], '4 (its parent 9 is in the filter, unlisted), then its child 7');
  const t = new V2Schedule({ partitions: [1], live: false, intervalMs: 0 });
  t.plan(doc('1', '5<6', '6<5'));
  assert.deepEqual(drive(t, caughtUp).read, [1, 'caught-up'], 'the cycle 5, 6 is not in scope: no bad-discovery');
});

test('impossible documents: the reasons are listed up to 5, then counted', () => {
  const s = new V2Schedule({ live: false, intervalMs: 0 });
  s.plan(doc('0', '1<0', '2<0', '3<0', '4<0', '5<0', '6<0', '7<0'));
  assert.throws(() => drive(s, caughtUp), (e) => {
    const reasons = [1, 2, 3, 4, 5].map((id) => `partition ${id} startsAfterPartition 0, which is not closed`);
    assert.equal(e.message, `bad-discovery: the discovery document can never be read to the end: ${reasons.join('; ')}; and 2 more`);
    return true;
  });
  const five = new V2Schedule({ live: false, intervalMs: 0 });
  five.plan(doc('0', '1<0', '2<0', '3<0', '4<0', '5<0'));
  assert.throws(() => drive(five, caughtUp), (e) => e.message.endsWith('partition 5 startsAfterPartition 0, which is not closed'));
});

test('impossible documents: a cycle is named by its members only, all of them up to 8, then cut', () => {
  const s = new V2Schedule({ live: false, intervalMs: 0 });
  s.plan(doc('5!<2', '2!<3', '3!<2'));
  assert.throws(() => s.poll(0), (e) => {
    assert.equal(e.message, 'bad-discovery: the discovery document can never be read to the end: partitions 2, 3 form a startsAfterPartition cycle');
    return true;
  });
  const ring = (n) => Array.from({ length: n }, (_, i) => `${i}!<${(i + 1) % n}`);
  const eight = new V2Schedule({ live: false, intervalMs: 0 });
  eight.plan(doc(...ring(8)));
  assert.throws(() => eight.poll(0), (e) => e.message.endsWith(': partitions 0, 1, 2, 3, 4, 5, 6, 7 form a startsAfterPartition cycle'));
  const nine = new V2Schedule({ live: false, intervalMs: 0 });
  nine.plan(doc(...ring(9)));
  assert.throws(() => nine.poll(0), (e) => e.message.endsWith(': partitions 0, 1, 2, 3, 4, 5, 6, 7, … (9 in all) form a startsAfterPartition cycle'));
});

test('a cycle through a partition finished earlier still blocks its members', () => {
  const s = new V2Schedule({ live: false, intervalMs: 0 });
  s.plan(doc('3!'));
  assert.deepEqual(drive(s, caughtUp).read, [3, 'caught-up']);
  s.plan(doc('3!<2', '2!<3'));
  const read = [];
  assert.throws(() => drive(s, (id) => (read.push(id), caughtUp())), (e) => /partitions 3, 2 form a startsAfterPartition cycle/.test(e.message));
  assert.deepEqual(read, [], '2 is not read though its parent 3 is finished');
});
