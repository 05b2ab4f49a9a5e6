// The shell's BYOB reads (js/src/reader/body.ts `readBodiesInto`, which the workerd entry point turns on): a body that
// is a byte stream is read into one reused buffer, and every other body as before. Real web streams of Node (byte
// streams with `byobRequest`), the shell over the wasm core; tests/interop/workerd.test.mjs checks the same in workerd
// over loopback.
import assert from 'node:assert/strict';
import { afterEach, test } from 'node:test';
import '../../../dist/entrypoints/node.js'; // loads the wasm
import { readBodiesInto } from '../../../dist/reader/body.js';
import { parseBatch } from '../../../dist/decode.js';
import { FeedReader } from '../../../dist/reader/reader.js';

const enc = new TextEncoder();
const BUFFER = 4096;

afterEach(() => readBodiesInto(0));

/** The NDJSON of `n` events over 2 partitions (every 3rd one with non-ASCII text, so UTF-8 is split across reads),
 * a checkpoint after each 10; and the events and checkpoints a reader must give. */
function feed(n) {
  let text = '';
  const events = [];
  const checkpoints = [];
  for (let i = 0; i < n; i++) {
    const data = { seq: i, text: i % 3 === 0 ? `æøå 😀 ${'x'.repeat(i % 50)}` : 'plain'.repeat(i % 7) };
    text += `${JSON.stringify({ partition: i % 2, data })}\n`;
    events.push({ partition: i % 2, data });
    if (i % 10 === 9) {
      for (const p of [0, 1]) {
        // (checkpoints are released in the order they came)
        text += `{"partition":${p},"cursor":"c${i}"}\n`;
        checkpoints.push({ partition: p, cursor: `c${i}` });
      }
    }
  }
  return { bytes: enc.encode(text), events, checkpoints };
}

/** A byte stream over `bytes` in pieces of `piece` bytes, answering BYOB requests into the reader's view; `stat`
 * counts the pulls answered into a BYOB view, the others, and the distinct buffers the views came in. */
function byteStream(bytes, piece, stat) {
  let at = 0;
  return new ReadableStream({
    type: 'bytes',
    pull(c) {
      if (at >= bytes.length) {
        c.close();
        c.byobRequest?.respond(0);
        return;
      }
      const req = c.byobRequest;
      if (req) {
        const n = Math.min(piece, req.view.byteLength, bytes.length - at);
        req.view.set(bytes.subarray(at, at + n));
        stat.byob++;
        stat.sizes.add(req.view.buffer.byteLength);
        at += n;
        req.respond(n);
      } else {
        stat.plain++;
        c.enqueue(bytes.slice(at, at + piece));
        at += piece;
      }
    },
  });
}

/** A `fetch` answering page 1 with `body(bytes)` and every later page with an empty body. */
function fetchOf(body) {
  let page = 0;
  return async () => new Response(page++ === 0 ? body : '', { status: 200 });
}

async function readAll(fetch) {
  const r = new FeedReader('http://127.0.0.1:9/feed', { partitionCount: 2, retry: false, fetch });
  const events = [];
  const checkpoints = [];
  for (let b; (b = await r.next()) !== undefined; ) {
    events.push(...parseBatch(b).events);
    checkpoints.push(...b.checkpoints);
  }
  r.free();
  // A batch gives each partition's events in order, partition by partition: compare in the feed's order.
  events.sort((a, b) => a.data.seq - b.data.seq);
  return { events, checkpoints };
}

test('readBodiesInto: a byte stream is read with BYOB reads into a buffer of that size, every event once and intact', async () => {
  const f = feed(600);
  readBodiesInto(BUFFER);
  // Pieces smaller and larger than the buffer: a read gives at most the buffer, and UTF-8 is split anywhere.
  for (const piece of [997, 10_000]) {
    const stat = { byob: 0, plain: 0, sizes: new Set() };
    const out = await readAll(fetchOf(byteStream(f.bytes, piece, stat)));
    assert.deepEqual(out.events, f.events);
    assert.deepEqual(out.checkpoints, f.checkpoints);
    assert.equal(stat.plain, 0, 'no read without a view');
    assert.ok(stat.byob >= Math.ceil(f.bytes.length / Math.min(piece, BUFFER)), `${stat.byob} BYOB reads`);
    assert.deepEqual([...stat.sizes], [BUFFER], 'every view is of a buffer of the size asked for');
  }
});

test('without readBodiesInto, a byte stream is read with its default reader', async () => {
  const f = feed(200);
  const stat = { byob: 0, plain: 0, sizes: new Set() };
  const out = await readAll(fetchOf(byteStream(f.bytes, 997, stat)));
  assert.deepEqual(out.events, f.events);
  assert.equal(stat.byob, 0);
  assert.ok(stat.plain > 0);
});

test('readBodiesInto: a body that is not a byte stream, or refuses a BYOB reader, is read with its default reader', async () => {
  const f = feed(300);
  readBodiesInto(BUFFER);
  // A default stream (getReader({ mode: 'byob' }) throws a TypeError).
  const chunks = [];
  for (let i = 0; i < f.bytes.length; i += 1500) chunks.push(f.bytes.slice(i, i + 1500));
  const plain = () => new ReadableStream({ pull: (c) => (chunks.length ? c.enqueue(chunks.shift()) : c.close()) });
  assert.deepEqual((await readAll(fetchOf(plain()))).events, f.events);
  // A body of the caller's whose getReader throws for a BYOB reader only.
  const stream = new ReadableStream({ start: (c) => (c.enqueue(f.bytes), c.close()) });
  const modes = [];
  const theirs = {
    getReader(options) {
      modes.push(options?.mode ?? 'default');
      if (options?.mode === 'byob') throw new RangeError('no BYOB here');
      return stream.getReader();
    },
  };
  const out = await readAll(async () => ({ status: 200, headers: new Headers(), body: modes.length ? null : theirs }));
  assert.deepEqual(out.events, f.events);
  assert.deepEqual(modes, ['byob', 'default']);
});

test('readBodiesInto: a BYOB reader whose chunks are not its buffer (a part, or another size) is read right', async () => {
  const f = feed(300);
  readBodiesInto(BUFFER);
  // The caller's reader takes a view, ignores it and gives parts of one big buffer, or whole buffers of other sizes.
  const views = [];
  let at = 0;
  const reader = {
    read(view) {
      views.push(view);
      if (at >= f.bytes.length) return Promise.resolve({ done: true, value: undefined });
      const n = 100 + (at % 3000);
      const value = at % 2 ? f.bytes.subarray(at, at + n) : f.bytes.slice(at, at + n);
      at += n;
      return Promise.resolve({ done: false, value });
    },
  };
  let page = 0;
  const body = { getReader: () => reader };
  const out = await readAll(async () => ({ status: 200, headers: new Headers(), body: page++ === 0 ? body : null }));
  assert.deepEqual(out.events, f.events);
  // Every read was given a whole view of the size asked for, never a part of the caller's buffer.
  assert.ok(views.length > 2);
  for (const v of views) assert.ok(v instanceof Uint8Array && v.byteOffset === 0 && v.byteLength === BUFFER);
  assert.ok(!views.some((v) => v.buffer === f.bytes.buffer));
});
