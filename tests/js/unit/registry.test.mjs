// The typed event registry (js/src/registry.ts) on the built dist/ (run `bash scripts/build.sh` first): runtime
// behaviour, then its types: a TypeScript file compiled by tsc against dist/registry.d.ts.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { compileTypeFilter, serverTypeFilter } from '../../../dist/filters.js';
import * as api from '../../../dist/index.js';
import { createRegistry, EventDecodeError } from '../../../dist/registry.js';

const ev = (type, data = {}, partition = 0) => ({ partition, data: { type, ...data } });
async function* stream(events) {
  for (const e of events) {
    await null;
    yield e;
  }
}
const collect = async (it) => {
  const out = [];
  for await (const x of it) out.push(x);
  return out;
};

test('exported from the package index', () => {
  assert.equal(api.createRegistry, createRegistry);
  assert.equal(api.EventDecodeError, EventDecodeError);
});

test('dispatch: exact, prefix and RegExp registrations; handlers get key, type, decoded data and the event', async () => {
  const seen = [];
  const reg = createRegistry()
    .on('OrderCreated', (d) => ({ id: d.id }), (e) => seen.push(['created', e.key, e.type, e.data]))
    .on({ prefix: 'Payment.' }, (e) => seen.push(['payment', e.key, e.type, e.data.amount]))
    .on(/^customer\./i, { key: 'customer', handle: (e) => seen.push(['customer', e.key, e.type]) });
  const e1 = ev('OrderCreated', { id: 'o1', extra: true });
  await reg.dispatch(e1);
  await reg.dispatch(ev('Payment.Captured', { amount: 5 }));
  await reg.dispatch(ev('Customer.Updated'));
  assert.deepEqual(seen, [
    ['created', 'OrderCreated', 'OrderCreated', { id: 'o1' }],
    ['payment', 'Payment.*', 'Payment.Captured', 5],
    ['customer', 'customer', 'Customer.Updated'],
  ]);
  assert.equal(reg.match(e1).event, e1);
  assert.equal(reg.size, 3);
});

test('first match wins, in registration order', async () => {
  const hits = [];
  const reg = createRegistry()
    .on({ prefix: 'Order' }, () => hits.push('prefix'))
    .on('OrderCreated', () => hits.push('exact')) // never reached: the prefix comes first
    .on(/Shipped$/, () => hits.push('regexp'));
  await reg.dispatch(ev('OrderCreated'));
  await reg.dispatch(ev('OrderShipped'));
  await reg.dispatch(ev('Parcel.Shipped'));
  assert.deepEqual(hits, ['prefix', 'prefix', 'regexp']);
  assert.equal(reg.match(ev('OrderCreated')).key, 'Order*');
});

test('the same exact name or prefix twice is a TypeError; bad arguments too', () => {
  assert.throws(() => createRegistry().on('A', () => {}).on('A', () => {}), TypeError);
  assert.throws(() => createRegistry().on({ prefix: 'A' }, () => {}).on({ prefix: 'A' }, () => {}), TypeError);
  createRegistry().on('A*', () => {}).on({ prefix: 'A' }, () => {}); // different patterns
  createRegistry().on(/a/, () => {}).on(/a/, () => {}); // RegExps are not compared
  assert.throws(() => createRegistry().on(42, () => {}), TypeError);
  assert.throws(() => createRegistry().on('A', 'not a function', undefined), TypeError);
  assert.throws(() => createRegistry().on('A', undefined, 7), TypeError);
  assert.throws(() => createRegistry().fallback(null), TypeError);
});

test('two arguments: a handler; three: decoder then handler (either may be undefined)', async () => {
  const calls = [];
  const reg = createRegistry()
    .on('A', (e) => calls.push(['A', e.data]))
    .on('B', (d) => `decoded ${d.v}`, undefined)
    .on('C', null, (e) => calls.push(['C', e.data.v]));
  await reg.dispatch(ev('A', { v: 1 }));
  await reg.dispatch(ev('B', { v: 2 }));
  await reg.dispatch(ev('C', { v: 3 }));
  assert.deepEqual(calls, [['A', { type: 'A', v: 1 }], ['C', 3]]);
  assert.equal(reg.match(ev('B', { v: 2 })).data, 'decoded 2');
});

test('one argument: typed iteration only (matched, data as it came, no handler runs)', async () => {
  const reg = createRegistry().on('A').on({ prefix: 'P.' });
  assert.equal(reg.size, 2);
  assert.deepEqual(reg.match(ev('A', { v: 1 })), { key: 'A', type: 'A', data: { type: 'A', v: 1 }, event: ev('A', { v: 1 }) });
  assert.equal(reg.match(ev('P.x')).key, 'P.*');
  assert.equal(await reg.dispatch(ev('A')), undefined);
  const keys = [];
  for await (const e of reg.typed([ev('A'), ev('Z'), ev('P.y')], { unknown: 'skip' })) keys.push(e.key);
  assert.deepEqual(keys, ['A', 'P.*']);
});

test('unknown types go to the fallback; without one dispatch ignores them', async () => {
  const unknown = [];
  const plain = createRegistry().on('A', () => unknown.push('A?'));
  assert.equal(await plain.dispatch(ev('Z')), undefined);
  assert.deepEqual(unknown, []);
  const reg = createRegistry()
    .on('A', () => 'handled A')
    .fallback((e) => {
      unknown.push([e.key, e.type, e.data]);
      return 'fell back';
    });
  assert.equal(await reg.dispatch(ev('A')), 'handled A');
  assert.equal(await reg.dispatch(ev('Z')), 'fell back');
  assert.equal(await reg.dispatch({ partition: 1, data: 'binary' }), 'fell back');
  assert.deepEqual(unknown, [[null, 'Z', { type: 'Z' }], [null, undefined, 'binary']]);
});

test('handle() dispatches in order and awaits async handlers one at a time', async () => {
  const log = [];
  const reg = createRegistry().on({ prefix: '' }, async (e) => {
    log.push(`start ${e.data.i}`);
    await new Promise((r) => setTimeout(r, 3 - e.data.i));
    log.push(`end ${e.data.i}`);
  });
  assert.equal(await reg.handle(stream([0, 1, 2].map((i) => ev('T', { i })))), 3);
  assert.deepEqual(log, ['start 0', 'end 0', 'start 1', 'end 1', 'start 2', 'end 2']);
  assert.equal(await reg.handle([ev('T', { i: 0 })]), 1, 'sync iterables too');
});

test('typed(): yields every event with its key; unknowns as key null, or skipped, or thrown', async () => {
  const reg = createRegistry().on('A', (d) => d.v, undefined).on({ prefix: 'P.' }, () => {});
  const events = [ev('A', { v: 1 }), ev('X'), ev('P.q'), { partition: 2, data: 'raw' }];
  const all = await collect(reg.typed(stream(events)));
  assert.deepEqual(all.map((e) => [e.key, e.type]), [['A', 'A'], [null, 'X'], ['P.*', 'P.q'], [null, undefined]]);
  assert.equal(all[0].data, 1);
  const known = await collect(reg.typed(stream(events), { unknown: 'skip' }));
  assert.deepEqual(known.map((e) => e.key), ['A', 'P.*']);
  await assert.rejects(collect(reg.typed(stream(events), { unknown: 'throw' })), /unknown type "X" in partition 0/);
  await assert.rejects(collect(reg.typed([], { unknown: 'maybe' })), TypeError);
});

test('a decoder that throws becomes an EventDecodeError naming the registration; no handler runs', async () => {
  let ran = false;
  const reg = createRegistry().on(
    'A',
    (d) => {
      if (typeof d.v !== 'number') throw new Error('v must be a number');
      return d;
    },
    () => (ran = true),
  );
  const bad = ev('A', { v: 'x' }, 3);
  await assert.rejects(reg.dispatch(bad), (e) => {
    assert.ok(e instanceof EventDecodeError);
    assert.equal(e.name, 'EventDecodeError');
    assert.equal(e.key, 'A');
    assert.equal(e.event, bad);
    assert.match(e.message, /partition 3.*v must be a number/);
    assert.equal(e.cause.message, 'v must be a number');
    return true;
  });
  assert.equal(ran, false);
});

test('typeFrom: the type can come from a header or a function; string data holding JSON works', async () => {
  const reg = createRegistry({ typeFrom: { header: 'ce_type' } }).on('A', () => {});
  assert.equal(reg.match({ partition: 0, data: {}, headers: { ce_type: 'A' } }).key, 'A');
  assert.equal(reg.match(ev('A')).key, null);
  const fn = createRegistry({ typeFrom: (e) => e.data.kind }).on('K', () => {});
  assert.equal(fn.match({ partition: 0, data: { kind: 'K' } }).key, 'K');
  const str = createRegistry().on('S', (d) => JSON.parse(d).n, undefined);
  assert.equal(str.match({ partition: 0, data: '{"type":"S","n":9}' }).data, 9);
});

test('typeFilter(): keeps what the registrations match; exact-only registries can ask the server', () => {
  const reg = createRegistry().on('OrderCreated', () => {}).on('Payment.Captured', () => {});
  const keep = compileTypeFilter(reg.typeFilter());
  assert.deepEqual(['OrderCreated', 'OrderShipped', 'Payment.Captured'].map((t) => keep(ev(t))), [true, false, true]);
  assert.deepEqual(serverTypeFilter(reg.typeFilter()), { eventTypes: ['OrderCreated', 'Payment.Captured'] });
  assert.equal(serverTypeFilter(createRegistry().on('A', () => {}).on(/B/, () => {}).typeFilter()), undefined);
});

// An empty registry: an empty `include` means "no include constraint", so its filter must not be one.
test('typeFilter() of a registry without registrations keeps nothing (it matches nothing), and asks the server for nothing', () => {
  const empty = createRegistry();
  const keep = compileTypeFilter(empty.typeFilter());
  assert.deepEqual(['OrderCreated', 'X'].map((t) => keep(ev(t))), [false, false], 'no event kept: the registrations match none');
  assert.equal(keep({ partition: 0, data: { n: 1 } }), false, 'nor one without a type');
  assert.equal(serverTypeFilter(empty.typeFilter()), undefined);
});

// ---- type level: compiled by the project's tsc against dist/registry.d.ts (strict, exactOptionalPropertyTypes).
const TYPES_TS = (dist) => `
import { createRegistry, type TypedEvent, type UnknownEvent } from '${dist}/registry.js';
import type { FeedEvent } from '${dist}/types.js';
type IsExact<A, B> = (<T>() => T extends A ? 1 : 2) extends (<T>() => T extends B ? 1 : 2) ? true : false;
function typeAssert<T extends true>(): T | void {}
interface Order { orderId: string }
interface Payment { amount: number }
declare const events: AsyncIterable<FeedEvent>;

const reg = createRegistry()
  .on('OrderCreated', (d): Order => d as Order, (ev) => { typeAssert<IsExact<typeof ev.data, Order>>(); })
  .on({ prefix: 'Payment.' }, (d): Payment => d as Payment, undefined)
  .on(/^Customer\\./, { key: 'customer', decode: (d) => String(d) })
  .on('Ping', (ev) => { typeAssert<IsExact<typeof ev.data, unknown>>(); typeAssert<IsExact<typeof ev.type, 'Ping'>>(); })
  .fallback((ev) => { typeAssert<IsExact<typeof ev, UnknownEvent>>(); });

export async function run(): Promise<void> {
  for await (const ev of reg.typed(events)) {
    if (ev.key === 'OrderCreated') {
      typeAssert<IsExact<typeof ev.data, Order>>();
      typeAssert<IsExact<typeof ev.type, 'OrderCreated'>>();
    } else if (ev.key === 'Payment.*') {
      typeAssert<IsExact<typeof ev.data, Payment>>();
      typeAssert<IsExact<typeof ev.type, \`Payment.\${string}\`>>();
    } else if (ev.key === 'customer') {
      typeAssert<IsExact<typeof ev.data, string>>();
    } else if (ev.key === null) {
      typeAssert<IsExact<typeof ev, UnknownEvent>>();
    } else {
      typeAssert<IsExact<typeof ev.key, 'Ping'>>();
    }
  }
  for await (const ev of reg.typed(events, { unknown: 'skip' })) {
    typeAssert<IsExact<typeof ev.key, 'OrderCreated' | 'Payment.*' | 'customer' | 'Ping'>>();
  }
  const m = reg.match({ partition: 0, data: {} });
  typeAssert<IsExact<typeof m.key, 'OrderCreated' | 'Payment.*' | 'customer' | 'Ping' | null>>();

  // declared up front: handlers and decoders are checked against the map
  createRegistry<{ OrderCreated: Order }>().on('OrderCreated', (ev) => { typeAssert<IsExact<typeof ev.data, Order>>(); });
  // @ts-expect-error the decoder must return the declared type
  createRegistry<{ OrderCreated: Order }>().on('OrderCreated', (d) => d as number, undefined);
  // @ts-expect-error a pattern is a string, { prefix } or a RegExp
  createRegistry().on(42, () => {});
  // @ts-expect-error data is unknown without a decoder
  createRegistry().on('A', (ev) => ev.data.anything);

  const unlabeled = createRegistry().on(/x/, () => {});
  for await (const ev of unlabeled.typed(events, { unknown: 'throw' })) {
    typeAssert<IsExact<typeof ev, TypedEvent<\`/\${string}\`, string, unknown>>>();
  }
}
`;

async function tsc(source) {
  const dir = mkdtempSync(join(tmpdir(), 'registry-types-'));
  try {
    writeFileSync(join(dir, 'check.ts'), source);
    writeFileSync(
      join(dir, 'tsconfig.json'),
      JSON.stringify({
        compilerOptions: {
          target: 'ES2022',
          module: 'NodeNext',
          moduleResolution: 'NodeNext',
          lib: ['ES2022', 'ESNext.Disposable', 'DOM', 'DOM.Iterable'],
          types: [],
          strict: true,
          exactOptionalPropertyTypes: true,
          noUncheckedIndexedAccess: true,
          noEmit: true,
          skipLibCheck: false,
        },
        files: ['check.ts'],
      }),
    );
    const bin = fileURLToPath(new URL('../../../node_modules/typescript/bin/tsc', import.meta.url));
    try {
      await promisify(execFile)(process.execPath, [bin, '-p', dir], { timeout: 120_000 });
      return { ok: true, out: '' };
    } catch (e) {
      return { ok: false, out: `${e.stdout}${e.stderr}` };
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const DIST = fileURLToPath(new URL('../../../dist', import.meta.url));

test('types: typed() is a discriminated union on key; declared maps are enforced (tsc)', async () => {
  const r = await tsc(TYPES_TS(DIST));
  assert.ok(r.ok, r.out);
});

test('types: the checker itself fails on a wrong assertion (tsc)', async () => {
  const wrong = TYPES_TS(DIST).replace(
    "typeAssert<IsExact<typeof ev.data, string>>();",
    'typeAssert<IsExact<typeof ev.data, number>>();',
  );
  assert.notEqual(wrong, TYPES_TS(DIST));
  const r = await tsc(wrong);
  assert.equal(r.ok, false);
  assert.match(r.out, /TS2344/);
});

test('registering many patterns is linear: 200,000 exact names and prefixes, duplicates still refused', () => {
  // Each registration searched every earlier one for a duplicate: 64,000 took 27 s, these 200,000 about 4.5 minutes.
  // (A bound in the minutes' place: the new code takes a fraction of a second.)
  const started = Date.now();
  const r = createRegistry();
  for (let i = 0; i < 100_000; i++) r.on(`T${i}`).on({ prefix: `T${i}.` });
  assert.ok(Date.now() - started < 20_000, `registering took ${Date.now() - started} ms`);
  assert.equal(r.size, 200_000);
  assert.throws(() => r.on('T99999'), /registered twice/);
  assert.throws(() => r.on({ prefix: 'T0.' }), /registered twice/);
  r.on(/T/).on(/T/); // RegExps are never duplicates
  assert.equal(r.match(ev('T5.x')).key, 'T5.*');
});
