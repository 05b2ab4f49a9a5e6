// The wrapper's own logic in js/src/decode.ts and js/src/feed.ts: batch parsing, locating a bad event from the offset
// table, and the feed object's life cycle that needs no request. End-to-end behaviour is proved against the reference
// server in tests/interop/, not here.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { inspect } from 'node:util';
import { FeedError, openFeed } from '../../../dist/entrypoints/node.js';
import { badLine, parseBatch, rawBatch as rawModeBatch } from '../../../dist/decode.js';
import { parseWhy } from '../../../dist/errors.js';

/**
 * A RawBatch as docs/wasm-contract.md describes it, built from each event's value texts: `data`, and `headers` when it
 * has them (the text holds `headers,data` then).
 */
function rawBatch(events, { page = 1, checkpoints = [] } = {}) {
  let text = '[';
  const meta = [];
  events.forEach(({ headers, data, partition, line, offset }, i) => {
    if (i > 0) text += ',';
    const start = text.length;
    if (headers !== undefined) text += `${headers},`;
    const dataStart = text.length;
    text += data;
    meta.push(start, text.length, partition, line, offset, dataStart);
  });
  text += ']';
  return { text, meta: Uint32Array.from(meta), checkpoints, page };
}

test('parseBatch: one parse gives the events, with the batch\'s checkpoints', () => {
  const checkpoints = [{ partition: 0, cursor: 'c1' }];
  const raw = rawBatch(
    [
      { data: '{"a":1}', partition: 0, line: 1, offset: 0 },
      { headers: '{"ce_id":"x"}', data: '"é"', partition: 0, line: 2, offset: 31 },
    ],
    { checkpoints },
  );
  const batch = parseBatch(raw);
  assert.deepEqual(batch.events, [
    { partition: 0, data: { a: 1 } },
    { partition: 0, headers: { ce_id: 'x' }, data: 'é' },
  ]);
  assert.deepEqual(batch.checkpoints, checkpoints);
});

test('parseBatch: a bad event is named by page, line, byte offset and partition', () => {
  const raw = rawBatch(
    [
      { headers: '{"h":"v"}', data: '1', partition: 1, line: 1, offset: 0 }, // good: its values are `H,D`
      { data: '[1,]', partition: 2, line: 5, offset: 4711 },
      { data: '3', partition: 2, line: 6, offset: 4800 },
    ],
    { page: 3 },
  );
  assert.throws(() => parseBatch(raw), (e) => {
    assert.ok(e instanceof FeedError);
    assert.equal(e.code, 'bad-line');
    assert.equal(e.page, 3);
    assert.equal(e.line, 5);
    assert.equal(e.offset, 4711);
    assert.equal(e.partition, 2);
    assert.equal(e.cause, undefined, 'the parser\'s own error may quote the event');
    assert.match(e.message, /line 5, byte 4711, partition 2 \(page 3\)/);
    return true;
  });
});

test('raw mode: data stays text until read; headers and a bad event are found from the offset table', () => {
  const raw = rawBatch(
    [
      { headers: '{"ce_id":"x"}', data: '{"a":[1,"é"]}', partition: 0, line: 1, offset: 0 },
      { data: '[1,]', partition: 3, line: 2, offset: 61 },
    ],
    { page: 4 },
  );
  const [ok, bad] = rawModeBatch(raw).events;
  assert.equal(ok.raw, '{"a":[1,"é"]}');
  assert.deepEqual(ok.data, { a: [1, 'é'] });
  assert.deepEqual(ok.headers, { ce_id: 'x' });
  assert.equal(bad.raw, '[1,]');
  assert.equal(bad.headers, undefined);
  assert.throws(() => bad.data, (e) => e instanceof FeedError && e.code === 'bad-line' && e.line === 2 && e.partition === 3);
});

test('raw mode: data is parsed once; every read gives the same value, changes to it included', () => {
  const raw = rawBatch([{ headers: '{"k":"😀"}', data: '{"a":{"b":1}}', partition: 1, line: 1, offset: 0 }]);
  const [ev] = rawModeBatch(raw).events;
  const first = ev.data;
  assert.equal(ev.data, first, 'the same object');
  first.a.b = 2;
  assert.deepEqual(ev.data, { a: { b: 2 } });
  assert.deepEqual(ev.headers, { k: '😀' });
});

test('raw mode: headers are parsed once; every read gives the same object, changes to it included (as in parsed mode)', () => {
  const raw = rawBatch([
    { headers: '{"k":"v"}', data: '1', partition: 1, line: 1, offset: 0 },
    { data: '2', partition: 1, line: 2, offset: 20 },
  ]);
  const [ev, bare] = rawModeBatch(raw).events;
  const first = ev.headers;
  assert.equal(ev.headers, first, 'the same object');
  first.k = 'w';
  assert.deepEqual(ev.headers, { k: 'w' });
  assert.equal(bare.headers, undefined);
  assert.equal(bare.headers, undefined, 'and again');
});

test('badLine: when every event of the table parses but the batch does not, the batch error is kept, named by page', () => {
  // Events whose values parse on their own in a text that does not (no closing bracket).
  const raw = rawBatch([
    { headers: '{"h":"v"}', data: '1', partition: 1, line: 1, offset: 0 },
    { data: '2', partition: 1, line: 2, offset: 30 },
  ], { page: 7 });
  raw.text = raw.text.slice(0, -1);
  assert.throws(() => parseBatch(raw), (e) => {
    assert.ok(e instanceof FeedError);
    assert.equal(e.code, 'bad-line');
    assert.equal(e.page, 7);
    assert.equal(e.line, undefined, 'no event to blame');
    assert.equal(e.partition, undefined);
    assert.equal(e.cause, undefined);
    assert.match(e.message, /^bad-line: the batch's JSON does not parse \(.+\) \(page 7\)$/);
    return true;
  });
});

test('raw mode: headers that do not parse throw FeedError bad-line naming the event, as its data does (the core does not validate them)', () => {
  const raw = rawBatch(
    [
      { headers: '{"ok":"é"}', data: '1', partition: 0, line: 1, offset: 0 },
      { headers: '{"h":[1,]}', data: '2', partition: 2, line: 9, offset: 321 },
    ],
    { page: 5 },
  );
  const [ok, bad] = rawModeBatch(raw).events;
  assert.deepEqual(ok.headers, { ok: 'é' });
  assert.equal(bad.data, 2, 'its data is fine');
  assert.throws(() => bad.headers, (e) => {
    assert.ok(e instanceof FeedError, String(e));
    assert.equal(e.code, 'bad-line');
    assert.deepEqual([e.line, e.offset, e.partition, e.page], [9, 321, 2, 5]);
    assert.equal(e.cause, undefined);
    return true;
  });
});

test('badLine: without a culprit in the table, the batch error says why', () => {
  const e = badLine({ text: '[', meta: new Uint32Array(0), checkpoints: [], page: 2 }, new SyntaxError('x'));
  assert.equal(e.code, 'bad-line');
  assert.equal(e.page, 2);
  assert.equal(e.message, "bad-line: the batch's JSON does not parse (x) (page 2)");
  assert.equal(e.line, undefined);
});

test('bad-line errors say why JSON.parse refused the event, never the text it refused (it may be sensitive)', () => {
  const secret = '{"token":s3cr3t}';
  const raw = rawBatch([{ data: secret, partition: 1, line: 4, offset: 99 }], { page: 6 });
  const inRaw = rawModeBatch(rawBatch([{ headers: secret, data: '1', partition: 1, line: 4, offset: 99 }], { page: 6 })).events[0];
  const thrown = [
    () => parseBatch(raw),
    () => rawModeBatch(raw).events[0].data,
    () => inRaw.headers,
    () => parseBatch({ ...raw, meta: new Uint32Array(0) }), // no culprit: the batch's own error
  ];
  for (const f of thrown) {
    assert.throws(f, (e) => {
      assert.ok(e instanceof FeedError && e.code === 'bad-line', String(e));
      // V8 says `Unexpected token 's', "[{"token":s3cr3t}]" is not valid JSON`; JavaScriptCore quotes the token too.
      assert.match(e.message, /Unexpected token 's', … is not valid JSON/);
      assert.doesNotMatch(inspect(e, { depth: 5 }), /s3cr3t/, 'not in the message, a field or a cause');
      return true;
    });
  }
  assert.equal(parseWhy(new SyntaxError('Unexpected token \'x\', ..."a":1, "b": x"... is not valid JSON')), "Unexpected token 'x', ...…... is not valid JSON", 'a cut quote too');
  assert.equal(parseWhy(new SyntaxError('Unexpected end of JSON input')), 'Unexpected end of JSON input', 'nothing quoted: kept');
});

test('openFeed: bad options throw FeedError bad-options at once', () => {
  assert.throws(() => openFeed('http://127.0.0.1:9/feed/v1', { partitionCount: 0 }), (e) => e instanceof FeedError && e.code === 'bad-options');
  assert.throws(() => openFeed('http://127.0.0.1:9/feed/v1', { partitionCount: 2, cursors: { 5: 'x' } }), /bad-options/);
});

test('cursors() before iterating: the starting cursors, as a fresh object', () => {
  const feed = openFeed('http://127.0.0.1:9/feed/v1', { partitionCount: 3, cursors: { 2: 'c-2' } });
  const c = feed.cursors();
  assert.deepEqual(c, { 0: '_first', 1: '_first', 2: 'c-2' });
  c[0] = 'changed';
  assert.equal(feed.cursors()[0], '_first');
  feed.close();
});

test('a feed is iterated once: a second batches()/events()/for-await throws bad-options', () => {
  const feed = openFeed('http://127.0.0.1:9/feed/v1', { partitionCount: 1 });
  const first = feed.batches(); // claims the feed; no request until its first next()
  assert.throws(() => feed.events(), (e) => e.code === 'bad-options' && /only once/.test(e.message));
  assert.throws(() => feed.batches(), /only once/);
  assert.throws(() => feed[Symbol.asyncIterator](), /only once/);
  feed.close();
  return first.return(undefined);
});

test('close() before iterating: the iteration is empty and makes no request; close is idempotent', async () => {
  let calls = 0;
  const fetch = async () => { calls++; throw new Error('must not be called'); };
  const feed = openFeed('http://127.0.0.1:9/feed/v1', { partitionCount: 1, fetch });
  feed.close();
  feed.close();
  const seen = [];
  for await (const e of feed) seen.push(e);
  assert.deepEqual(seen, []);
  assert.equal(calls, 0);
  feed.close();
});

/** A `fetch` option that serves `pages` in turn (each an NDJSON text) and empty pages after them. */
function pagesFetch(pages) {
  let i = 0;
  return async () => new Response(pages[i++] ?? '', { status: 200 });
}
const line = (o) => `${JSON.stringify(o)}\n`;
// Page 1: two batches' worth is not needed; one page with events of 2 partitions and their checkpoints.
const PAGE = [
  line({ partition: 0, data: { n: 1 } }), line({ partition: 1, data: { n: 2 } }), line({ partition: 0, cursor: 'a1' }),
  line({ partition: 0, data: { n: 3 } }), line({ partition: 1, cursor: 'b1' }), line({ partition: 0, cursor: 'a2' }),
].join('');

test('events(): every event once, in order; a batch counts as delivered only when the consumer comes back after it', async () => {
  const feed = openFeed('http://127.0.0.1:9/feed/v1', { partitionCount: 2, fetch: pagesFetch([PAGE]) });
  const it = feed.events();
  const seen = [];
  for (let r = await it.next(); !r.done; r = await it.next()) {
    seen.push(r.value.data.n);
    if (seen.length === 3) assert.deepEqual(feed.cursors(), { 0: '_first', 1: '_first' }, 'the batch is not delivered while its last event is being handled');
  }
  assert.deepEqual(seen, [1, 2, 3]);
  assert.deepEqual(feed.cursors(), { 0: 'a2', 1: 'b1' });
  assert.deepEqual(await it.next(), { value: undefined, done: true }, 'stays done');
});

test('events(): calls made without awaiting get distinct events in order, then done', async () => {
  const feed = openFeed('http://127.0.0.1:9/feed/v1', { partitionCount: 2, fetch: pagesFetch([PAGE]) });
  const it = feed.events();
  const results = await Promise.all([it.next(), it.next(), it.next(), it.next()]);
  assert.deepEqual(results.map((r) => (r.done ? 'done' : r.value.data.n)), [1, 2, 3, 'done']);
});

test('events(): break inside a batch keeps its cursors undelivered and releases the feed; close() ends at the next event', async () => {
  const feed = openFeed('http://127.0.0.1:9/feed/v1', { partitionCount: 2, fetch: pagesFetch([PAGE]) });
  for await (const ev of feed) if (ev.data.n === 2) break;
  assert.deepEqual(feed.cursors(), { 0: '_first', 1: '_first' });
  assert.throws(() => feed.events(), /only once/);

  const feed2 = openFeed('http://127.0.0.1:9/feed/v1', { partitionCount: 2, fetch: pagesFetch([PAGE]) });
  const seen = [];
  for await (const ev of feed2) {
    seen.push(ev.data.n);
    feed2.close();
  }
  assert.deepEqual(seen, [1]);
});

test('events(): an error of the feed rejects next() and ends the iteration', async () => {
  const fetch = async () => new Response('{"partition":0,"data":{}}\n{"partition":0,"cursor":"x"}\n{"partition":0,"data":', { status: 200 });
  const feed = openFeed('http://127.0.0.1:9/feed/v1', { partitionCount: 1, fetch, retry: false });
  const it = feed.events();
  assert.equal((await it.next()).done, false, 'the event before the failure is delivered first');
  await assert.rejects(it.next(), (e) => e instanceof FeedError && e.code === 'truncated-body');
  assert.deepEqual(await it.next(), { value: undefined, done: true });
});

test('events() and batches(): of calls made without awaiting while the feed fails, the first rejects and the others are done', async () => {
  for (const how of ['events', 'batches']) {
    const fetch = async () => new Response('{"partition":0,"data":', { status: 200 });
    const it = openFeed('http://127.0.0.1:9/feed/v1', { partitionCount: 1, fetch, retry: false })[how]();
    const results = await Promise.allSettled([it.next(), it.next(), it.next()]);
    assert.deepEqual(
      results.map((r) => (r.status === 'rejected' ? r.reason.code : r.value.done)),
      ['truncated-body', true, true],
      how,
    );
  }
});

test('onCaughtUp and onFellBehind: a promise they return is awaited, and its rejection ends the iteration as a throw does (never an unhandled rejection)', async () => {
  const unhandled = [];
  const seen = (e) => unhandled.push(e);
  process.on('unhandledRejection', seen);
  try {
    const boom = new Error('the hook failed');
    for (const onCaughtUp of [() => { throw boom; }, async () => { throw boom; }]) {
      const feed = openFeed('http://127.0.0.1:9/feed/v1', { partitionCount: 2, fetch: pagesFetch([PAGE]), onCaughtUp });
      await assert.rejects(async () => { for await (const ev of feed) void ev; }, (e) => e === boom);
    }
    // Awaited: the iteration goes on only once the hook's promise settled.
    const order = [];
    const feed = openFeed('http://127.0.0.1:9/feed/v1', { partitionCount: 2, fetch: pagesFetch([PAGE]), onCaughtUp: async () => {
      await new Promise((r) => setTimeout(r, 20));
      order.push('hook done');
    } });
    for await (const batch of feed.batches()) order.push(batch.signal ?? `${batch.events.length} events`);
    assert.deepEqual(order.slice(0, 2), ['3 events', 'hook done'], 'the batch of its signal comes after the hook settled');
    assert.ok(order.slice(2).every((x) => x === 'caught-up'), order.join());
    await new Promise((r) => setTimeout(r, 50));
    assert.deepEqual(unhandled, []);
  } finally {
    process.off('unhandledRejection', seen);
  }
});
