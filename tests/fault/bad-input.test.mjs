// The bad-input catalogue: every kind of bad answer, served for real over HTTP on 127.0.0.1, ends in a FeedError
// with a stable code that names what and where (page, line, byte offset, partition), and the cursors never move past
// the last delivered checkpoint.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { inspect } from 'node:util';
import * as api from '../../dist/entrypoints/node.js';
import { startScriptedServer } from './scripted-server.mjs';

const GOOD = '{"partition":0,"data":{"ok":1}}\n{"partition":0,"cursor":"c1"}\n';
const enc = new TextEncoder();
const bytes = (...parts) => {
  const arrays = parts.map((p) => (typeof p === 'string' ? enc.encode(p) : Uint8Array.from(p)));
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.length, 0));
  let at = 0;
  for (const a of arrays) { out.set(a, at); at += a.length; }
  return out;
};

const cases = {
  '/malformed-data': { body: `${GOOD}{"partition":0,"data":{"token":s3cr3t}}\n{"partition":0,"cursor":"c2"}\n` },
  '/malformed-envelope': { body: `${GOOD}{"partition":0,"data":[1,2}\n` },
  '/too-long': { body: `${GOOD}{"partition":0,"data":"${'x'.repeat(500)}"}\n` },
  '/invalid-utf8': { body: bytes(GOOD, '{"partition":0,"data":"ab', [0xc3, 0x28], '"}\n') },
  '/missing-partition': { body: `${GOOD}{"data":1}\n` },
  '/non-integer-partition': { body: `${GOOD}{"partition":"1","data":1}\n` },
  '/partition-out-of-range': { body: `${GOOD}{"partition":4,"data":1}\n` },
  '/non-string-cursor': { body: `${GOOD}{"partition":2,"data":1}\n{"partition":2,"cursor":12}\n` },
  '/html-200': { headers: { 'content-type': 'text/html' }, body: '<!doctype html>\n<html><body>Service Unavailable</body></html>\n' },
  '/json-400': { status: 400, headers: { 'content-type': 'application/json' }, body: '{"detail":"Partition count doesn\'t match as expected"}' },
  '/empty-200': { body: '' },
  '/no-content-204': { status: 204 },
  '/truncated': { body: `${GOOD}{"partition":0,"data":{"half":` },
  '/regressed': { body: `${GOOD}{"partition":0,"data":2}\n{"partition":0,"cursor":"c1"}\n` },
  '/no-progress': { body: '{"partition":0,"data":1}\n{"partition":1,"data":2}\n' },
  // Partition 1 never gets a checkpoint while its events keep coming (partition 0's do).
  // The page is served from _first only; after it the feed is caught up (an empty page).
  '/held-too-long': (url) => ({
    body: url.searchParams.get('cursor0') !== '_first' ? '' : GOOD + Array.from({ length: 40 }, (_, i) =>
      `{"partition":1,"data":"${'y'.repeat(100)}"}\n{"partition":0,"data":${i}}\n{"partition":0,"cursor":"d${i}"}\n`).join(''),
  }),
};

let server;
before(async () => { server = await startScriptedServer(cases); });
after(async () => { await server.close(); });

/** Consumes `path` to its end; returns the error (or null), the events and the delivered cursors. */
async function consume(path, extra = {}) {
  const feed = api.openFeed(`${server.base}${path}`, { partitionCount: 4, retry: false, ...extra });
  const events = [];
  let error = null;
  try {
    for await (const ev of feed) events.push(ev);
  } catch (e) {
    error = e;
  }
  return { error, events, cursors: feed.cursors() };
}

function expectError(r, code, where = {}) {
  assert.ok(r.error instanceof api.FeedError, `expected a FeedError, got ${r.error}`);
  assert.equal(r.error.code, code, r.error.message);
  assert.equal(r.error.name, 'FeedError');
  for (const [k, v] of Object.entries(where)) assert.equal(r.error[k], v, `${k} in ${r.error.message}`);
  if (where.line !== undefined) assert.match(r.error.message, new RegExp(`line ${where.line}\\b`));
  assert.match(r.error.message, /page 1\b/);
}

/** The events before the bad line came with their checkpoint, and nothing past it. */
function expectGoodPrefix(r) {
  assert.deepEqual(r.events.map((e) => e.data), [{ ok: 1 }]);
  assert.equal(r.cursors[0], 'c1');
}

test('malformed JSON in data: bad-line at its line, byte offset and partition', async () => {
  const r = await consume('/malformed-data');
  expectError(r, 'bad-line', { line: 3, offset: 62, partition: 0, page: 1 });
  // V8 quotes the text it refused (`"[{"token":s3cr3t}]" is not valid JSON`): the error says why, never what.
  assert.match(r.error.message, /Unexpected token 's', … is not valid JSON/);
  assert.doesNotMatch(inspect(r.error, { depth: 5 }), /s3cr3t/, 'no event data in the message, a field or a cause');
  assert.equal(r.error.cause, undefined);
  assert.deepEqual(r.cursors, { 0: '_first', 1: '_first', 2: '_first', 3: '_first' }, 'the bad batch is not delivered');
});

test('malformed JSON envelope: bad-line from the core', async () => {
  const r = await consume('/malformed-envelope');
  expectError(r, 'bad-line', { line: 3, offset: 62 });
  expectGoodPrefix(r);
});

test('a line over maxLineLength: line-too-long', async () => {
  const r = await consume('/too-long', { maxLineLength: 200 });
  expectError(r, 'line-too-long', { line: 3, offset: 62 });
  expectGoodPrefix(r);
});

test('invalid UTF-8: invalid-utf8 at the bad byte', async () => {
  const r = await consume('/invalid-utf8');
  expectError(r, 'invalid-utf8', { line: 3, offset: 62 + 25 });
  expectGoodPrefix(r);
});

test('missing partition: bad-partition', async () => {
  const r = await consume('/missing-partition');
  expectError(r, 'bad-partition', { line: 3, offset: 62 });
  assert.match(r.error.message, /no partition/);
  expectGoodPrefix(r);
});

test('non-integer partition: bad-partition', async () => {
  const r = await consume('/non-integer-partition');
  expectError(r, 'bad-partition', { line: 3 });
  assert.match(r.error.message, /not a non-negative integer/);
});

test('partition >= n: bad-partition', async () => {
  const r = await consume('/partition-out-of-range');
  expectError(r, 'bad-partition', { line: 3 });
  assert.match(r.error.message, /not below the partition count/);
});

test('non-string cursor: bad-cursor naming the partition', async () => {
  const r = await consume('/non-string-cursor');
  expectError(r, 'bad-cursor', { line: 4, partition: 2 });
  expectGoodPrefix(r);
});

test('an HTML error page with 200: bad-line on line 1', async () => {
  const r = await consume('/html-200');
  expectError(r, 'bad-line', { line: 1, offset: 0 });
  assert.equal(r.events.length, 0);
});

test('4xx with a JSON body: http-status with the status and the body', async () => {
  const r = await consume('/json-400');
  expectError(r, 'http-status', { status: 400 });
  assert.equal(r.error.bodySnippet, '{"detail":"Partition count doesn\'t match as expected"}');
  assert.match(r.error.message, /400 Bad Request/);
});

test('an empty 200 and a 204 are valid empty pages (ZEH: zero events = caught up), not errors', async () => {
  for (const path of ['/empty-200', '/no-content-204']) {
    const r = await consume(path);
    assert.equal(r.error, null, path);
    assert.equal(r.events.length, 0);
  }
});

test('a truncated body: truncated-body, never a short page', async () => {
  const r = await consume('/truncated');
  expectError(r, 'truncated-body', { line: 3, offset: 62 });
  expectGoodPrefix(r);
});

test('a checkpoint that goes backwards: cursor-regressed', async () => {
  const r = await consume('/regressed');
  expectError(r, 'cursor-regressed', { line: 4, partition: 0 });
  expectGoodPrefix(r);
});

test('events without any checkpoint: no-progress instead of an endless loop', async () => {
  const r = await consume('/no-progress');
  expectError(r, 'no-progress');
  assert.equal(r.events.length, 0);
});

test('events held back beyond maxHeldBytes (a partition without checkpoints): no-progress naming it, not unbounded memory', async () => {
  const r = await consume('/held-too-long', { maxHeldBytes: 2_000 });
  // Each held event of partition 1 is 102 bytes of batch text (its data), a comma and 28 bytes of bookkeeping: the
  // 16th passes 2,000 bytes (16 * 130 + 15), on line 3 + 15 * 3.
  expectError(r, 'no-progress', { partition: 1, line: 48 });
  assert.match(r.error.message, /maxHeldBytes/);
  assert.ok(r.events.every((e) => e.partition === 0), 'no event of partition 1 is delivered without its checkpoint');
  assert.ok(r.events.length >= 15, `partition 0's released events come first (${r.events.length})`);
  assert.equal(r.cursors[1], '_first');
  // Under the default limit (64 MiB) the page is just one whose partition 1 has no checkpoint yet: its events are
  // held back and dropped at the page's end, partition 0's are delivered, and the next page finds the feed caught up.
  const ok = await consume('/held-too-long');
  assert.equal(ok.error, null, String(ok.error));
  assert.equal(ok.events.length, 41);
  assert.deepEqual(ok.cursors, { 0: 'd39', 1: '_first', 2: '_first', 3: '_first' });
});
