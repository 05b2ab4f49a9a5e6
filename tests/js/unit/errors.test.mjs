// FeedError, isFeedError and the conversion of whatever a feed operation throws (js/src/errors.ts), on dist/.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { FeedError, isFeedError, toFeedError } from '../../../dist/errors.js';

/** An error of the shape the wasm reader throws: a plain Error named 'FeedError' with a code and fields. */
function wasmError(code, message, fields = {}) {
  const e = new Error(message);
  e.name = 'FeedError';
  return Object.assign(e, { code }, fields);
}

test('FeedError: name, code, only the given fields, cause kept', () => {
  const cause = new TypeError('boom');
  const e = new FeedError('http-status', 'http-status: 503 (page 2)', { status: 503, bodySnippet: 'busy', page: 2, cause });
  assert.ok(e instanceof Error);
  assert.equal(e.name, 'FeedError');
  assert.equal(e.code, 'http-status');
  assert.equal(e.status, 503);
  assert.equal(e.bodySnippet, 'busy');
  assert.equal(e.page, 2);
  assert.equal(e.cause, cause);
  assert.deepEqual(Object.keys(e).sort(), ['bodySnippet', 'code', 'name', 'page', 'status']);
  assert.equal('cause' in new FeedError('closed', 'closed'), false);
});

test('toFeedError: a wasm FeedError-shaped Error becomes a FeedError with the same code, message and fields', () => {
  const cause = new TypeError('fetch failed');
  const raw = wasmError('bad-partition', 'bad-partition: partition 9 >= n at line 3, byte 120, partition 9 (page 4)', {
    line: 3, offset: 120, partition: 9, page: 4, cause,
  });
  const e = toFeedError(raw);
  assert.ok(e instanceof FeedError);
  assert.equal(e.code, 'bad-partition');
  assert.equal(e.message, raw.message);
  assert.equal(e.line, 3);
  assert.equal(e.offset, 120);
  assert.equal(e.partition, 9);
  assert.equal(e.page, 4);
  assert.equal(e.cause, cause);
  assert.equal(e.status, undefined);
});

test('toFeedError: http-status keeps status and bodySnippet; wrong-typed fields are dropped', () => {
  const e = toFeedError(wasmError('http-status', 'http-status: 400', { status: 400, bodySnippet: '{"detail":"n"}', line: 'x' }));
  assert.equal(e.status, 400);
  assert.equal(e.bodySnippet, '{"detail":"n"}');
  assert.equal('line' in e, false);
});

test('toFeedError: a FeedError passes as it is', () => {
  const e = new FeedError('aborted', 'aborted');
  assert.equal(toFeedError(e), e);
});

test('toFeedError: anything else becomes network, with the original as cause', () => {
  const original = new TypeError('token service down');
  const e = toFeedError(original);
  assert.equal(e.code, 'network');
  assert.match(e.message, /token service down/);
  assert.equal(e.cause, original);
  const s = toFeedError('a thrown string');
  assert.equal(s.code, 'network');
  assert.equal(s.cause, 'a thrown string');
  // Named FeedError but with an unknown code: not ours, so it is wrapped rather than trusted.
  const odd = wasmError('teapot', 'teapot');
  assert.equal(toFeedError(odd).code, 'network');
  assert.equal(toFeedError(odd).cause, odd);
});

test('isFeedError: instances, foreign copies by name and code, and a code filter', () => {
  assert.equal(isFeedError(new FeedError('closed', 'x')), true);
  assert.equal(isFeedError(new FeedError('closed', 'x'), 'closed'), true);
  assert.equal(isFeedError(new FeedError('closed', 'x'), 'aborted'), false);
  assert.equal(isFeedError(wasmError('aborted', 'x')), true);
  assert.equal(isFeedError(wasmError('aborted', 'x'), 'network'), false);
  assert.equal(isFeedError(wasmError('nope', 'x')), false);
  assert.equal(isFeedError(new Error('x')), false);
  assert.equal(isFeedError({ name: 'FeedError', code: 'aborted' }), false);
  assert.equal(isFeedError(undefined), false);
});

test('one catalogue of codes: every code the wasm (core and shell) makes is in FEED_ERROR_CODES, and docs/errors.md documents each', async () => {
  const { readFile, readdir } = await import('node:fs/promises');
  const { FEED_ERROR_CODES } = await import('../../../dist/errors.js');
  const root = new URL('../../../', import.meta.url);
  const read = (p) => readFile(new URL(p, root), 'utf8');
  const fromRust = new Set();
  // The core's codes: the arms of ErrorKind::code.
  for (const m of (await read('core/src/error.rs')).matchAll(/ErrorKind::\w+ => "([a-z0-9-]+)"/g)) fromRust.add(m[1]);
  // The shell's: every feed_error("code", …) and the codes its faults are converted to.
  for (const f of (await readdir(new URL('src/', root))).filter((f) => f.endsWith('.rs'))) {
    const src = await read(`src/${f}`);
    for (const m of src.matchAll(/feed_error\(\s*"([a-z0-9-]+)"/g)) fromRust.add(m[1]);
    for (const m of src.matchAll(/\(\s*"([a-z0-9]+-[a-z0-9-]+)",\s*format!/g)) fromRust.add(m[1]);
  }
  assert.ok(fromRust.size >= 12, `found the wasm's codes: ${[...fromRust]}`);
  for (const code of fromRust) assert.ok(FEED_ERROR_CODES.includes(code), `the wasm makes '${code}', which FEED_ERROR_CODES lacks`);
  const docs = await read('docs/errors.md');
  for (const code of FEED_ERROR_CODES) assert.match(docs, new RegExp(`^\\| \`${code}\` \\|`, 'm'), `docs/errors.md documents '${code}'`);
  assert.equal(new Set(FEED_ERROR_CODES).size, FEED_ERROR_CODES.length, 'no code twice');
});

test('the FeedError constructor puts the code before the message once', () => {
  assert.equal(new FeedError('aborted', 'the feed was aborted').message, 'aborted: the feed was aborted');
  assert.equal(new FeedError('aborted', 'aborted: the feed was aborted').message, 'aborted: the feed was aborted');
});
