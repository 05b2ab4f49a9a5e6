// Type filters that skip parsing: the wasm reader reads each event's type from its raw `data` (core/src/typefield.rs)
// and the decoder (js/src/decode.ts) parses only the events the filter keeps. Checked against the oracle, the filter
// applied to every event after a plain JSON.parse, on generated pages full of the shapes that make this hard
// (repeated and escaped keys, escaped and non-ASCII types, string data, non-object data, nested paths), in parsed
// and raw mode; and that dropped events are really not parsed.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FeedError, compileTypeFilter, openFeed, typeReader } from '../../../dist/entrypoints/node.js';

/** A deterministic generator (xorshift32), so a failure names its seed. */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return (n) => {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    return x % n;
  };
}

const TYPES = ['Order.Created', 'Order.Paid', 'order.created', 'Payment.Captured', 'Refund', 'é-type', '😀', '', 'A"B', 'tab\tsep'];

/** The raw JSON text of one event's `data`, in one of many shapes. */
function dataText(r, i) {
  const t = TYPES[r(TYPES.length)];
  const q = JSON.stringify(t);
  switch (r(14)) {
    case 0: return `{"type":${q},"id":${i}}`;
    case 1: return `{"id":${i},"note":"é😀 \\"type\\": x","type":${q}}`;
    case 2: return `{"type":"Refund","id":${i},"type":${q}}`; // repeated: the last one counts
    case 3: return `{"t\\u0079pe":${q},"id":${i}}`; // escaped key
    case 4: return `{"type":"\\u0052efund","id":${i}}`; // escaped type: "Refund"
    case 5: return `{"meta":{"type":${q}},"type":${q},"id":${i}}`;
    case 6: return `{"meta":{"type":${q},"v":[1,{"type":"x"}]},"id":${i}}`;
    case 7: return JSON.stringify(JSON.stringify({ type: t, id: i })); // string data holding an object
    case 8: return JSON.stringify(`plain ${i}`);
    case 9: return `[${q},${i}]`;
    case 10: return `{"type":${i}}`;
    case 11: return 'null';
    case 12: return `{ "id" : ${i} , "type" : ${q} , "x" : { "type" : "nested" } }`;
    default: return `{"id":${i}}`;
  }
}

/** A page body: `count` events over 3 partitions, checkpoints now and then, and the oracle's view of it. */
function page(seed, count) {
  const r = rng(seed);
  const lines = [];
  const events = [];
  for (let i = 0; i < count; i++) {
    const partition = r(3);
    const data = dataText(r, i);
    const headers = r(4) === 0 ? `,"headers":{"ce_type":${JSON.stringify(TYPES[r(TYPES.length)])}}` : '';
    lines.push(`{"partition":${partition}${headers},"data":${data}}`);
    events.push(JSON.parse(lines.at(-1)));
    if (r(5) === 0) lines.push(JSON.stringify({ partition: r(3), cursor: `c${i}` }));
  }
  for (let p = 0; p < 3; p++) lines.push(JSON.stringify({ partition: p, cursor: `end${p}` }));
  return { body: `${lines.join('\n')}\n`, events };
}

/** A `fetch` that serves `body` to the first request and an empty page after (the feed is then caught up). */
function serve(body) {
  let n = 0;
  return async () => new Response(n++ === 0 ? body : '', { status: 200 });
}

async function read(body, options) {
  const feed = openFeed('http://127.0.0.1:1/feed', { partitionCount: 3, fetch: serve(body), retry: false, ...options });
  const events = [];
  for await (const b of feed.batches()) for (const e of b.events) events.push(options.mode === 'raw' ? { partition: e.partition, headers: e.headers, data: e.data } : e);
  return { events, cursors: feed.cursors() };
}

/** Events in a canonical form: per partition in order (order across partitions is not promised). */
function byPartition(events) {
  const out = [[], [], []];
  for (const e of events) out[e.partition].push(JSON.stringify(e));
  return out;
}

const FILTERS = [
  { include: ['Order.Created', 'Refund'] },
  { include: [{ prefix: 'Order.' }], ignoreCase: true },
  { exclude: ['Refund', '', 'A"B'] },
  { include: [/^P/, '😀', 'é-type', 'tab\tsep'] },
  { include: ['Order.Paid'], typeFrom: { field: 'meta.type' } },
  { exclude: [{ prefix: 'Order' }], typeFrom: { field: ['meta', 'type'] } },
  { include: ['Refund'], typeFrom: { header: 'ce_type' } }, // not a field: filtered after parsing, as before
];

test('filtered events are exactly those the filter keeps after a full parse, in parsed and raw mode', async () => {
  for (let seed = 1; seed <= 12; seed++) {
    const { body, events } = page(seed * 7919, 400);
    for (const filter of FILTERS) {
      const keep = compileTypeFilter(filter);
      const want = byPartition(events.filter(keep));
      for (const mode of ['parsed', 'raw']) {
        const got = await read(body, { filter, mode });
        assert.deepEqual(byPartition(got.events), want, `seed ${seed * 7919}, ${mode}, filter ${JSON.stringify(filter, (_, v) => (v instanceof RegExp ? String(v) : v))}`);
        assert.deepEqual(got.cursors, { 0: 'end0', 1: 'end1', 2: 'end2' }, 'the cursors reach the end whatever was dropped');
      }
    }
  }
});

test('raw mode: each event\'s raw is its data as the server sent it, headers and data as parsed; the reader keeps its batch texts ASCII, the events with text outside ASCII in `wide`', async () => {
  const { FeedReader } = await import('../../../dist/reader/reader.js');
  const { readerOptions } = await import('../../../dist/options.js');
  const ascii = (t) => /^[\x00-\x7f]*$/.test(t);
  for (let seed = 1; seed <= 8; seed++) {
    const { body, events } = page(seed * 6007, 500);
    const wire = body.split('\n').filter((l) => l.includes('"data":')).map((l) => l.slice(l.indexOf(',"data":') + 8, -1));
    const feed = openFeed('http://127.0.0.1:1/feed', { partitionCount: 3, fetch: serve(body), retry: false, mode: 'raw' });
    const got = [];
    for await (const b of feed.batches()) got.push(...b.events);
    const perPartition = (list) => [0, 1, 2].map((p) => list.filter((e) => e.partition === p).map((e) => [e.headers, e.data, e.raw]));
    const want = events.map((e, i) => ({ ...e, raw: wire[i] }));
    assert.deepEqual(perPartition(got), perPartition(want), `seed ${seed * 6007}`);
    // The reader's own batches: an event's values are in `text` when ASCII, in `wide` (offsets from 2^31) when not.
    const reader = new FeedReader('http://127.0.0.1:1/feed', readerOptions({ partitionCount: 3, fetch: serve(body), retry: false, mode: 'raw' }));
    let wide = 0;
    try {
      for (let raw = await reader.next(); raw !== undefined; raw = await reader.next()) {
        assert.ok(ascii(raw.text), 'the batch text is ASCII');
        for (let i = 0; i < raw.meta.length; i += 6) {
          const [start, end] = [raw.meta[i], raw.meta[i + 1]];
          const inWide = start >= 2 ** 31;
          const values = inWide ? raw.wide.slice(start - 2 ** 31, end - 2 ** 31) : raw.text.slice(start, end);
          assert.equal(ascii(values), !inWide, values);
          wide += Number(inWide);
        }
      }
    } finally {
      reader.free();
    }
    assert.ok(wide > 0, 'some events have text outside ASCII');
  }
});

test('dropped events are not parsed: JSON.parse sees only the kept events (plus the rare ones only a parse can decide)', async () => {
  const lines = [];
  for (let i = 0; i < 3000; i++) {
    lines.push(JSON.stringify({ partition: 0, data: { type: i % 10 === 0 ? 'Keep' : 'Drop', pad: 'x'.repeat(200) } }));
  }
  lines.push(JSON.stringify({ partition: 0, cursor: 'end' }));
  const body = `${lines.join('\n')}\n`;
  const parse = JSON.parse;
  let parsed = 0;
  JSON.parse = (text, ...rest) => {
    parsed += String(text).length;
    return parse(text, ...rest);
  };
  let kept;
  try {
    kept = await read(body, { partitionCount: 1, filter: { include: 'Keep' } });
  } finally {
    JSON.parse = parse;
  }
  assert.equal(kept.events.length, 300);
  const keptBytes = lines.filter((l) => l.includes('"Keep"')).join(',').length;
  assert.ok(parsed < keptBytes * 1.1, `JSON.parse read ${parsed} characters for ${keptBytes} of kept events (${body.length} in all)`);
});

test('a malformed event the filter drops is not reported; one it keeps is a bad-line naming its line', async () => {
  const body = [
    '{"partition":0,"data":{"type":"Drop","x":[1,]}}',
    '{"partition":0,"data":{"type":"Keep","n":1}}',
    '{"partition":0,"cursor":"c1"}',
    '',
  ].join('\n');
  const ok = await read(body, { partitionCount: 1, filter: { include: 'Keep' } });
  assert.deepEqual(ok.events, [{ partition: 0, data: { type: 'Keep', n: 1 } }]);
  const bad = body.replace('"Drop"', '"Keep"');
  await assert.rejects(read(bad, { partitionCount: 1, filter: { include: 'Keep' } }), (e) => {
    assert.equal(e.code, 'bad-line');
    assert.equal(e.line, 1);
    return true;
  });
});

// The core's type filter (core/src/typefilter.rs, the reader option `typeFilter`): a filter of names and prefixes on
// a field is applied while framing, so the events it drops never reach JavaScript. Checked on the wasm reader's own
// batches (the contract), and through the public API against the same filter as a predicate (`typeFrom` a function,
// which only JavaScript can apply): the same events, the same checkpoints batch by batch, the same stats and lag.

test('the reader hands over only the events a names-and-prefixes filter keeps: the dropped ones are only counted', async () => {
  const { FeedReader } = await import('../../../dist/reader/reader.js');
  const { readerOptions } = await import('../../../dist/options.js');
  const lines = [];
  for (let i = 0; i < 3000; i++) {
    const type = i % 10 === 0 ? 'Keep' : i % 10 === 1 ? 'Keep.sub' : 'Drop';
    lines.push(JSON.stringify({ partition: i % 2, data: { type, i, pad: 'x'.repeat(100) } }));
    if (i % 7 === 6) lines.push(JSON.stringify({ partition: i % 2, cursor: `c${i}` }));
  }
  lines.push('{"partition":0,"data":"{\\"type\\":\\"Drop\\"}"}', '{"partition":0,"data":{"type":"Dr\\u006fp"}}');
  lines.push(JSON.stringify({ partition: 0, cursor: 'end0' }), JSON.stringify({ partition: 1, cursor: 'end1' }));
  const options = readerOptions({ partitionCount: 2, fetch: serve(`${lines.join('\n')}\n`), retry: false, filter: { include: ['Keep', { prefix: 'Keep.' }] } });
  assert.deepEqual(options.typeFilter, { include: ['Keep', { prefix: 'Keep.' }], exclude: [], ignoreCase: false });
  const reader = new FeedReader('http://127.0.0.1:1/feed', options);
  const checkpoints = [];
  let events = 0;
  let dropped = 0;
  let unknown = 0;
  try {
    for (let raw = await reader.next(); raw !== undefined; raw = await reader.next()) {
      assert.ok(!raw.text.includes('"Drop"'), 'no dropped event crosses');
      const n = raw.meta.length / 6;
      events += n;
      for (let i = 0; i < n; i++) unknown += Number(raw.types[2 * i] === 1);
      for (let i = 0; i < (raw.dropped?.length ?? 0); i += 2) dropped += raw.dropped[i + 1];
      checkpoints.push(...raw.checkpoints.map((c) => `${c.partition}:${c.cursor}`));
    }
  } finally {
    reader.free();
  }
  assert.equal(events, 602, 'the kept events, and the two whose type only a parse can tell');
  assert.equal(unknown, 2);
  assert.equal(dropped, 2400);
  const want = lines.map((l) => JSON.parse(l)).filter((l) => l.cursor !== undefined).map((l) => `${l.partition}:${l.cursor}`);
  assert.deepEqual(checkpoints, want, 'every checkpoint, in order');
});

test('a filter the core applies delivers what the same filter applied in JavaScript does: events, batch cursors, stats, lag', async () => {
  for (let seed = 1; seed <= 6; seed++) {
    const { body } = page(seed * 104_729, 600);
    // The filters of names and prefixes on a field (no RegExp, no header): those the core applies.
    const inTheCore = FILTERS.filter((f) => !('header' in (f.typeFrom ?? {})) && ![f.include, f.exclude].flat().some((p) => p instanceof RegExp));
    assert.equal(inTheCore.length, 5);
    for (const filter of inTheCore) {
      const { readerOptions } = await import('../../../dist/options.js');
      assert.ok(readerOptions({ partitionCount: 1, filter }).typeFilter, 'the core applies it');
      const field = typeReader(filter.typeFrom ?? { field: 'type' });
      const run = async (f) => {
        const feed = openFeed('http://127.0.0.1:1/feed', { partitionCount: 3, fetch: serve(body), retry: false, filter: f });
        const batches = [];
        for await (const b of feed.batches()) batches.push({ events: b.events.map((e) => JSON.stringify(e)), checkpoints: b.checkpoints });
        const { lastEventAt, ...stats } = feed.stats();
        const lag = Object.fromEntries(Object.entries(feed.lag()).map(([p, l]) => [p, l.eventsInLastPage]));
        return { events: byPartition(batches.flatMap((b) => b.events.map((e) => JSON.parse(e)))), checkpoints: batches.flatMap((b) => b.checkpoints), stats, lag, partitions: Object.keys(lastEventAt), cursors: feed.cursors() };
      };
      const inCore = await run(filter);
      // The same reader as a function: only JavaScript can apply the filter then.
      const inJs = await run({ ...filter, typeFrom: (e) => field(e) });
      assert.deepEqual(inCore, inJs, `seed ${seed * 104_729}, filter ${JSON.stringify(filter)}`);
      assert.equal(inCore.stats.events, 600, 'stats count every event read, dropped ones too');
    }
  }
});

test('a filter the core cannot apply (a RegExp, a lone surrogate) leaves every event to JavaScript, which filters right', async () => {
  const { FeedReader } = await import('../../../dist/reader/reader.js');
  const { readerOptions } = await import('../../../dist/options.js');
  const types = ['Keep', 'Drop', '\uFFFD', '\uD800x'];
  const lines = types.map((type, i) => JSON.stringify({ partition: 0, data: { type, i } }));
  lines.push('{"partition":0,"cursor":"end"}');
  const body = `${lines.join('\n')}\n`;
  const cases = [
    [{ include: ['Keep', /^K/] }, ['Keep']],
    [{ exclude: ['\uD800'] }, types],
    [{ include: [{ prefix: '\uD800' }] }, ['\uD800x']],
    [{ include: ['\uFFFD'] }, ['\uFFFD']], // a real U+FFFD: left to JavaScript too (the core cannot tell them apart)
  ];
  for (const [filter, want] of cases) {
    const reader = new FeedReader('http://127.0.0.1:1/feed', readerOptions({ partitionCount: 1, fetch: serve(body), retry: false, filter }));
    try {
      const raw = await reader.next();
      assert.equal(raw.meta.length / 6, 4, `${JSON.stringify(filter)}: every event crosses`);
      assert.equal(raw.dropped, undefined);
    } finally {
      reader.free();
    }
    const got = await read(body, { partitionCount: 1, filter });
    assert.deepEqual(got.events.map((e) => e.data.type), want, JSON.stringify(filter));
  }
});

// A filter the core does not apply (a RegExp) but whose field the reader reads: JavaScript decides each event from
// the type's offsets in the batch text, and parses (parsed mode) only the events it keeps, at their offsets.

/** Spies on `JSON.parse` while `run` runs: the texts it was given. */
async function parsedTexts(run) {
  const parse = JSON.parse;
  const texts = [];
  JSON.parse = (text, ...rest) => {
    texts.push(String(text));
    return parse(text, ...rest);
  };
  try {
    return { result: await run(), texts };
  } finally {
    JSON.parse = parse;
  }
}

test('a filter JavaScript applies on the types the reader found parses no dropped event, and in raw mode no data until it is read', async () => {
  const lines = [];
  for (let i = 0; i < 2000; i++) {
    lines.push(JSON.stringify({ partition: 0, data: { type: i % 10 === 0 ? 'Keep' : 'Drop', i, pad: 'x'.repeat(100) } }));
  }
  lines.push(JSON.stringify({ partition: 0, cursor: 'end' }));
  const body = `${lines.join('\n')}\n`;
  const filter = { include: [/^Keep$/] };
  const parsed = await parsedTexts(() => read(body, { partitionCount: 1, filter }));
  assert.deepEqual(parsed.result.events.map((e) => e.data.i), Array.from({ length: 200 }, (_, k) => k * 10));
  assert.ok(parsed.texts.some((t) => t.includes('"Keep"')), 'the kept events are parsed');
  assert.ok(!parsed.texts.some((t) => t.includes('"Drop"')), 'no dropped event is parsed');
  const raw = await parsedTexts(async () => {
    const feed = openFeed('http://127.0.0.1:1/feed', { partitionCount: 1, fetch: serve(body), retry: false, filter, mode: 'raw' });
    const texts = [];
    for await (const b of feed.batches()) for (const e of b.events) texts.push(e.raw);
    return texts;
  });
  assert.equal(raw.result.length, 200);
  assert.ok(!raw.texts.some((t) => t.includes('"type"')), 'no event data parsed in raw mode until it is read');
});

// Page lines of one partition: with and without headers, non-ASCII before, in and after the values (UTF-16 offsets),
// dropped events between kept ones.
const MIXED = [
  '{"partition":0,"headers":{"ce_id":"é-😀"},"data":{"type":"Keep","n":"😀"}}',
  '{"partition":0,"data":{"type":"Drop","n":"é"}}',
  '{"partition":0,"data":{"type":"Keep","n":3}}',
  '{"partition":0,"headers":{"ce_id":"x","ce_type":"é"},"data":{"type":"Drop","n":4}}',
  '{"partition":0,"headers":{"ce_id":"y"},"data":{"type":"Keep","n":"ü5"}}',
];
const MIXED_BODY = (lines) => `${[...lines, '{"partition":0,"cursor":"c1"}'].join('\n')}\n`;

test('a filter JavaScript applies keeps events with and without headers at their UTF-16 offsets; a bad kept event after one with headers is a bad-line naming its line', async () => {
  const filter = { include: [/^Keep$/] };
  const want = MIXED.map((l) => JSON.parse(l)).filter((e) => e.data.type === 'Keep');
  for (const mode of ['parsed', 'raw']) {
    const got = await read(MIXED_BODY(MIXED), { partitionCount: 1, filter, mode });
    assert.deepEqual(got.events.map((e) => JSON.stringify(e)), want.map((e) => JSON.stringify(e)), mode);
  }
  const bad = [...MIXED];
  bad[4] = bad[4].replace('"ü5"', '[5,]');
  await assert.rejects(read(MIXED_BODY(bad), { partitionCount: 1, filter }), (e) => {
    assert.ok(e instanceof FeedError, String(e));
    assert.equal(e.code, 'bad-line');
    assert.equal(e.line, 5);
    assert.equal(e.partition, 0);
    return true;
  });
});

test('raw mode through a filter JavaScript applies: events keep their raw data and headers; a bad kept one is handed out and throws bad-line only when its data is read', async () => {
  const lines = [...MIXED];
  lines[0] = lines[0].replace('"😀"}}', '[1,]}}');
  const feed = openFeed('http://127.0.0.1:1/feed', { partitionCount: 1, fetch: serve(MIXED_BODY(lines)), retry: false, filter: { include: [/^Keep$/] }, mode: 'raw' });
  const events = [];
  for await (const b of feed.batches()) events.push(...b.events);
  const want = [0, 2, 4].map((i) => lines[i]);
  assert.deepEqual(events.map((e) => e.raw), want.map((l) => l.slice(l.indexOf('"data":') + 7, -1)));
  assert.deepEqual(events.map((e) => e.headers), [{ ce_id: 'é-😀' }, undefined, { ce_id: 'y' }]);
  assert.throws(() => events[0].data, (e) => e instanceof FeedError && e.code === 'bad-line' && e.line === 1 && e.partition === 0);
  assert.deepEqual(events.slice(1).map((e) => e.data), [{ type: 'Keep', n: 3 }, { type: 'Keep', n: 'ü5' }]);
  assert.deepEqual(feed.cursors(), { 0: 'c1' });
});

test('parsed mode reads text outside ASCII through \\u escapes (a faster text to decode), with the same values; raw mode keeps the server\'s text', async () => {
  const body = MIXED_BODY(MIXED);
  const want = MIXED.map((l) => JSON.parse(l));
  for (const filter of [undefined, { include: ['Keep', 'Drop'] }, { include: [/^(Keep|Drop)$/] }]) {
    const parsed = await parsedTexts(() => read(body, { partitionCount: 1, filter }));
    assert.deepEqual(parsed.result.events.map((e) => JSON.stringify(e)), want.map((e) => JSON.stringify(e)), String(filter?.include));
    assert.ok(parsed.texts.length > 0 && parsed.texts.every((t) => /^[\x00-\x7f]*$/.test(t)), `ASCII texts: ${parsed.texts}`);
    assert.ok(parsed.texts.some((t) => t.includes('\\ud83d\\ude00') && t.includes('\\u00e9')), 'a pair for 😀, one for é');
  }
  const raw = await read(body, { partitionCount: 1, mode: 'raw' });
  assert.deepEqual(raw.events.map((e) => JSON.stringify(e)), want.map((e) => JSON.stringify(e)));
  const feed = openFeed('http://127.0.0.1:1/feed', { partitionCount: 1, fetch: serve(body), retry: false, mode: 'raw' });
  const texts = [];
  for await (const b of feed.batches()) for (const e of b.events) texts.push(e.raw);
  assert.deepEqual(texts, MIXED.map((l) => l.slice(l.indexOf('"data":') + 7, -1)), 'raw: the data as the server sent it');
});
