// The checker must not pass by accident: a perfect delivery passes, and each kind of damage a client could do is
// caught (lost, duplicated, reordered, wrong partition, altered text, __proto__ turned into a prototype).
// Run: node --test --test-force-exit tests/interop/checker.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { eventRecord } from './consume.js';
import { startRefServer, fetchExpected, verifyEvents } from './helpers.mjs';

let server;
let expected;
before(async () => {
  server = await startRefServer();
  expected = await fetchExpected(server.base);
});
after(() => server?.stop());

const perfect = () => expected.events.map((e) => ({ partition: e.partition, data: JSON.parse(e.wire) }));
const check = (evs) => verifyEvents({ events: evs.map(eventRecord) }, expected);
const find = (pred) => perfect().findIndex((ev) => pred(ev.data));

test('a perfect delivery passes', () => {
  const v = check(perfect());
  assert.deepEqual([v.received, v.unique, v.lost, v.duplicates, v.mismatches, v.orderViolations], [10_000, 10_000, 0, 0, 0, 0]);
});

test('lost, duplicated, reordered and misfiled events are caught', () => {
  let evs = perfect(); evs.splice(5000, 1);
  assert.equal(check(evs).lost, 1);
  evs = perfect(); evs.push(evs[17]);
  assert.equal(check(evs).duplicates, 1);
  evs = perfect(); [evs[10], evs[11]] = [evs[11], evs[10]];
  assert.equal(check(evs).orderViolations, 1);
  evs = perfect(); evs[3] = { ...evs[3], partition: 2 };
  assert.equal(check(evs).partitionMismatches, 1);
});

test('altered text is caught: U+2028 as a newline, U+0085 dropped, emoji replaced, escaped "\\\\n" unescaped', () => {
  const cases = [
    [(d) => typeof d.text === 'string' && d.text.includes('\u2028'), (s) => s.replace('\u2028', '\n')],
    [(d) => typeof d.text === 'string' && d.text.includes('\u0085'), (s) => s.replace('\u0085', '')],
    [(d) => typeof d.text === 'string' && d.text.includes('😀'), (s) => s.replace('😀', '\ufffd')],
    [(d) => typeof d.text === 'string' && d.text.includes('"\\n"'), (s) => s.replace('"\\n"', '"\n"')],
  ];
  for (const [pred, damage] of cases) {
    const evs = perfect();
    const i = evs.findIndex((ev) => pred(ev.data));
    assert.ok(i >= 0);
    evs[i] = { ...evs[i], data: { ...evs[i].data, text: damage(evs[i].data.text) } };
    assert.equal(check(evs).mismatches, 1, String(damage));
  }
});

test('a "__proto__" key that became the prototype is caught', () => {
  const evs = perfect();
  const i = find((d) => Object.hasOwn(d, '__proto__'));
  const { __proto__: _ignored, ...rest } = { ...evs[i].data };
  const d = Object.assign(Object.create({ polluted: 'yes', isAdmin: true }), rest);
  evs[i] = { ...evs[i], data: d };
  assert.equal(check(evs).mismatches, 1);
});

test('a float rendered differently or a key order change is caught', () => {
  let evs = perfect();
  let i = find((d) => d.nested);
  evs[i] = { ...evs[i], data: { ...evs[i].data, nested: { ...evs[i].data.nested, list: [1, -2, 1.5, 0.1, -2.25, 1, false, null, 's', [], {}] } } };
  assert.equal(check(evs).mismatches, 1);
  evs = perfect();
  const { id, ...others } = evs[0].data;
  evs[0] = { ...evs[0], data: { ...others, id } };
  assert.equal(check(evs).mismatches, 1);
});
