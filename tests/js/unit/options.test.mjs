// Option checking and the translation to the wasm reader's options (js/src/options.ts), on the built dist/.
// Run `npm run build` first. No network: these are pure functions (the messages of a refused option are the wasm's,
// src/options.rs optionError; before the wasm is ready, see wasm-load.test.mjs).
import assert from 'node:assert/strict';
import { test } from 'node:test';
import '../../../dist/entrypoints/node.js'; // instantiates the wasm
import { FeedError } from '../../../dist/errors.js';
import { feedUrl, joinHeaders, readerOptions, startCursors, v2Cursors } from '../../../dist/options.js';

function assertBadOptions(fn, pattern) {
  assert.throws(fn, (e) => {
    assert.ok(e instanceof FeedError, `expected a FeedError, got ${e}`);
    assert.equal(e.code, 'bad-options');
    assert.equal(e.name, 'FeedError');
    if (pattern) assert.match(e.message, pattern);
    return true;
  });
}

test('defaults: every partition starts at _first, optional fields are absent', () => {
  assert.deepEqual(readerOptions({ partitionCount: 3 }), { partitionCount: 3, cursors: ['_first', '_first', '_first'] });
});

test('mode: raw mode tells the wasm reader to keep the server\'s text (parsed mode, the default, lets it escape)', () => {
  assert.equal(readerOptions({ partitionCount: 1, mode: 'raw' }).raw, true);
  for (const mode of ['parsed', undefined]) assert.equal('raw' in readerOptions({ partitionCount: 1, mode }), false, String(mode));
  assertBadOptions(() => readerOptions({ partitionCount: 1, mode: 'RAW' }), /mode must be 'parsed' or 'raw'/);
});

test('partitionCount must be an integer >= 1', () => {
  for (const n of [0, -1, 1.5, NaN, Infinity, '2', undefined, null, 2 ** 32]) {
    assertBadOptions(() => readerOptions({ partitionCount: n }), /partitionCount/);
  }
  assert.equal(readerOptions({ partitionCount: 1 }).cursors.length, 1);
});

test('options must be an object', () => {
  for (const o of [undefined, null, 4, 'x']) assertBadOptions(() => readerOptions(o), /options must be an object/);
});

test('cursors: given partitions override _first, others keep it', () => {
  assert.deepEqual(startCursors(4, { 1: 'c-1', 3: '_last' }), ['_first', 'c-1', '_first', '_last']);
  assert.deepEqual(startCursors(2, ['a', 'b']), ['a', 'b']);
  assert.deepEqual(startCursors(2, {}), ['_first', '_first']);
});

test('cursors: keys out of range or not partition numbers are refused, naming the key', () => {
  assertBadOptions(() => startCursors(2, { 2: 'x' }), /"2" is not a partition \(an integer 0\.\.1\)/);
  assertBadOptions(() => startCursors(2, { '-1': 'x' }), /"-1"/);
  assertBadOptions(() => startCursors(2, { '01': 'x' }), /"01"/);
  assertBadOptions(() => startCursors(2, { 1.5: 'x' }), /"1.5"/);
  assertBadOptions(() => startCursors(2, { foo: 'x' }), /"foo"/);
  assertBadOptions(() => startCursors(2, ['a', 'b', 'c']), /"2"/);
});

test('cursors: values must be non-empty strings', () => {
  assertBadOptions(() => startCursors(2, { 0: '' }), /partition 0 must be a non-empty string/);
  assertBadOptions(() => startCursors(2, { 1: 7 }), /partition 1/);
  assertBadOptions(() => startCursors(2, 'c'), /cursors must be an object/);
  assertBadOptions(() => startCursors(2, null), /cursors must be an object/);
});

test('headers: names joined with a comma, _all kept, none omitted', () => {
  assert.equal(joinHeaders(undefined), undefined);
  assert.equal(joinHeaders([]), undefined);
  assert.equal(joinHeaders(['ce_id']), 'ce_id');
  assert.equal(joinHeaders(['ce_id', 'content-type']), 'ce_id,content-type');
  assert.equal(joinHeaders('_all'), '_all');
  assert.equal(readerOptions({ partitionCount: 1, headers: ['a', 'b'] }).headers, 'a,b');
  assert.equal('headers' in readerOptions({ partitionCount: 1, headers: [] }), false);
});

test('headers: a comma inside a name, an empty name or a lone string is refused', () => {
  assertBadOptions(() => joinHeaders(['a,b']), /"a,b" is not a header name/);
  assertBadOptions(() => joinHeaders(['']), /"" is not a header name/);
  assertBadOptions(() => joinHeaders([1]), /1 is not a header name/);
  assertBadOptions(() => joinHeaders('ce_id'), /array of header names or '_all'/);
});

test('pageSizeHint: an integer >= 0; 0 means not sent', () => {
  assert.equal(readerOptions({ partitionCount: 1, pageSizeHint: 500 }).pageSizeHint, 500);
  assert.equal('pageSizeHint' in readerOptions({ partitionCount: 1, pageSizeHint: 0 }), false);
  for (const v of [-1, 1.5, '10', NaN]) {
    assertBadOptions(() => readerOptions({ partitionCount: 1, pageSizeHint: v }), /pageSizeHint/);
  }
});

test('signal, fetch, requestHeaders, maxLineLength, maxHeldBytes, idleTimeoutMs are checked and passed on', () => {
  const signal = new AbortController().signal;
  const fetch = async () => new Response('');
  const requestHeaders = () => ({ authorization: 'x' });
  const o = readerOptions({ partitionCount: 1, signal, fetch, requestHeaders, maxLineLength: 1024, maxHeldBytes: 4096, idleTimeoutMs: 0 });
  assert.equal(o.signal, signal);
  assert.equal(o.fetch, fetch);
  assert.equal(o.requestHeaders, requestHeaders);
  assert.equal(o.maxLineLength, 1024);
  assert.equal(o.maxHeldBytes, 4096);
  assert.equal(o.idleTimeoutMs, 0);
  assertBadOptions(() => readerOptions({ partitionCount: 1, signal: { aborted: false } }), /signal must be an AbortSignal/);
  assertBadOptions(() => readerOptions({ partitionCount: 1, fetch: 'fetch' }), /fetch must be a function/);
  assertBadOptions(() => readerOptions({ partitionCount: 1, requestHeaders: {} }), /requestHeaders must be a function/);
  assertBadOptions(() => readerOptions({ partitionCount: 1, maxLineLength: 0 }), /maxLineLength/);
  assertBadOptions(() => readerOptions({ partitionCount: 1, maxHeldBytes: 1.5 }), /maxHeldBytes/);
  assertBadOptions(() => readerOptions({ partitionCount: 1, idleTimeoutMs: -5 }), /idleTimeoutMs/);
});

test('undefined optional fields are the same as absent ones', () => {
  const o = readerOptions({
    partitionCount: 2, cursors: undefined, pageSizeHint: undefined, headers: undefined, signal: undefined,
    fetch: undefined, requestHeaders: undefined, maxLineLength: undefined, retry: undefined, onRetry: undefined,
    idleTimeoutMs: undefined, maxHeldBytes: undefined,
  });
  assert.deepEqual(o, { partitionCount: 2, cursors: ['_first', '_first'] });
});

test('retry: false, or an object of checked fields', () => {
  assert.equal(readerOptions({ partitionCount: 1, retry: false }).retry, false);
  assert.deepEqual(readerOptions({ partitionCount: 1, retry: { maxAttempts: Infinity, initialMs: 5 } }).retry, {
    initialMs: 5,
    maxAttempts: Infinity,
  });
  assertBadOptions(() => readerOptions({ partitionCount: 1, retry: true }), /retry must be false or an object/);
  assertBadOptions(() => readerOptions({ partitionCount: 1, retry: { multiplier: 0.5 } }), /retry.multiplier/);
  assertBadOptions(() => readerOptions({ partitionCount: 1, retry: { maxMs: -1 } }), /retry.maxMs/);
  assertBadOptions(() => readerOptions({ partitionCount: 1, retry: { maxAttempts: 1.5 } }), /retry.maxAttempts/);
});

test('onRetry receives a FeedError even though the wasm passes its own Error', () => {
  let seen;
  const o = readerOptions({ partitionCount: 1, onRetry: (info) => { seen = info; } });
  const raw = Object.assign(new Error('network: the request failed (page 2)'), { name: 'FeedError', code: 'network', page: 2 });
  o.onRetry({ error: raw, attempt: 1, delayMs: 80 });
  assert.ok(seen.error instanceof FeedError);
  assert.equal(seen.error.code, 'network');
  assert.equal(seen.error.page, 2);
  assert.equal(seen.attempt, 1);
  assert.equal(seen.delayMs, 80);
});

test('feedUrl: a string or a URL', () => {
  assert.equal(feedUrl('http://127.0.0.1:8400/feed/v1'), 'http://127.0.0.1:8400/feed/v1');
  assert.equal(feedUrl(new URL('http://127.0.0.1:8400/feed/v1?x=1')), 'http://127.0.0.1:8400/feed/v1?x=1');
  for (const u of ['', undefined, 42, {}]) assertBadOptions(() => feedUrl(u), /url must be/);
});

test('timer options above 2^31-1 ms (what setTimeout accepts) are bad-options; 2^31-1 itself is accepted', () => {
  const MAX = 2 ** 31 - 1;
  const cases = [
    [(v) => ({ idleTimeoutMs: v }), /idleTimeoutMs must be an integer from 0 to 2147483647 \(ms/],
    [(v) => ({ maxBatchDelayMs: v }), /maxBatchDelayMs must be an integer from 0 to 2147483647 \(ms/],
    [(v) => ({ live: { minIntervalMs: v, maxIntervalMs: MAX } }), /live\.minIntervalMs must be an integer from 0 to 2147483647 \(ms/],
    [(v) => ({ live: { maxIntervalMs: v } }), /live\.maxIntervalMs must be an integer from 0 to 2147483647 \(ms/],
    [(v) => ({ retry: { initialMs: v } }), /retry\.initialMs must be an integer from 0 to 2147483647 \(ms/],
    [(v) => ({ retry: { maxMs: v } }), /retry\.maxMs must be an integer from 0 to 2147483647 \(ms/],
  ];
  for (const [options, pattern] of cases) {
    for (const v of [MAX + 1, 2 ** 32 - 1]) {
      assertBadOptions(() => readerOptions({ partitionCount: 1, ...options(v) }), pattern);
    }
    assert.doesNotThrow(() => readerOptions({ partitionCount: 1, ...options(MAX) }));
  }
  // retry.deadlineMs is a budget, not a timer: any u32 is accepted.
  assert.equal(readerOptions({ partitionCount: 1, retry: { deadlineMs: 2 ** 32 - 1 } }).retry.deadlineMs, 2 ** 32 - 1);
});

test('v2Cursors: the given partitions only, ids 0..32767, checked as startCursors checks them', () => {
  assert.deepEqual([...v2Cursors({ 0: 'a', 32767: 'b' })], [[0, 'a'], [32767, 'b']]);
  assert.deepEqual([...v2Cursors(undefined)], []);
  assertBadOptions(() => v2Cursors({ 32768: 'x' }), /"32768" is not a partition \(an integer 0\.\.32767\)/);
  assertBadOptions(() => v2Cursors({ '01': 'x' }), /"01"/);
  assertBadOptions(() => v2Cursors({ 3: '' }), /the cursor of partition 3 must be a non-empty string/);
  assertBadOptions(() => v2Cursors('c'), /cursors must be an object/);
});
