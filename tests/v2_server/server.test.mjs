// The v2 test server itself, checked against the FeedAPI v2 rules (docs/feedapi-v2.md) with plain fetch. The server
// runs as a child process (`node server.mjs`, as other suites use it) on 127.0.0.1 and is stopped by closing stdin.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { after, before, beforeEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';

const SERVER = fileURLToPath(new URL('./server.mjs', import.meta.url));
let child;
let base;

before(async () => {
  child = spawn(process.execPath, [SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  let out = '';
  for await (const chunk of child.stdout) {
    out += chunk;
    const m = /LISTENING (\d+)\n/.exec(out);
    if (m) {
      base = `http://127.0.0.1:${m[1]}`;
      break;
    }
  }
  assert.ok(base, `the server did not print LISTENING: ${out}`);
});

after(async () => {
  if (child.exitCode === null) {
    child.stdin.end();
    await once(child, 'exit');
  }
});

beforeEach(async () => {
  await control({ reset: true });
});

async function control(body) {
  const r = await fetch(`${base}/_control`, { method: 'POST', body: JSON.stringify(body) });
  return { status: r.status, body: await r.json() };
}
const discover = async (feed, init) => (await fetch(`${base}/${feed}`, init)).json();
const expected = async (feed, extra = '') => (await fetch(`${base}/expected?feed=${feed}${extra}`)).json();

/** One events page, parsed by kind. */
async function page(feed, params, init) {
  const r = await fetch(`${base}/${feed}/events?${new URLSearchParams(params)}`, init);
  const text = await r.text();
  if (r.status !== 200) return { status: r.status, text };
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  assert.ok(text.endsWith('\n'), 'every line ends with \\n');
  const lines = text.slice(0, -1).split('\n').map((l) => JSON.parse(l));
  const events = [];
  const cursors = [];
  let unknown = 0;
  let afterLastCursor = 0;
  for (const l of lines) {
    assert.ok(!('partition' in l), 'v2 lines carry no partition');
    if ('data' in l) {
      assert.ok(typeof l.data === 'string' || (l.data !== null && typeof l.data === 'object' && !Array.isArray(l.data)));
      events.push(l.data);
      afterLastCursor++;
    } else if ('cursor' in l) {
      assert.equal(typeof l.cursor, 'string');
      assert.notEqual(l.cursor, '');
      cursors.push(l.cursor);
      afterLastCursor = 0;
    } else unknown++;
  }
  assert.ok(cursors.length >= 1, 'every response must contain at least one cursor');
  assert.equal(afterLastCursor, 0, 'this server ends every page with a checkpoint');
  return { status: 200, events, cursors, unknown, lines };
}

/** Reads a partition from `cursor` until a page brings no events and does not move the cursor. */
async function drain(feed, token, partition, cursor, extra = {}) {
  const events = [];
  let unknown = 0;
  let cursorOnly = 0;
  for (let i = 0; i < 10_000; i++) {
    const p = await page(feed, { token, partition, cursor, ...extra });
    assert.equal(p.status, 200, p.text);
    const next = p.cursors.at(-1);
    events.push(...p.events);
    unknown += p.unknown;
    if (p.events.length === 0 && next === cursor) return { events, cursor, unknown, cursorOnly, pages: i + 1 };
    if (p.events.length === 0) cursorOnly++;
    cursor = next;
  }
  throw new Error('no end');
}

const parse = (d) => (typeof d === 'string' ? JSON.parse(d) : d);

test('discovery: token, string ids, exactlyOnce; v1 arguments are refused; CORS', async () => {
  const r = await fetch(`${base}/feed`);
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('access-control-allow-origin'), '*');
  assert.match(r.headers.get('content-type'), /^application\/json/);
  const d = await r.json();
  assert.deepEqual(Object.keys(d).sort(), ['exactlyOnce', 'partitions', 'token']);
  assert.equal(typeof d.token, 'string');
  assert.deepEqual(d.partitions, [{ id: '0' }, { id: '1' }, { id: '2' }, { id: '3' }]);
  assert.equal(d.exactlyOnce, true);
  assert.equal((await fetch(`${base}/feed?n=4&cursor0=_first`)).status, 400);
  const pre = await fetch(`${base}/feed/events`, {
    method: 'OPTIONS',
    headers: { origin: 'http://x', 'access-control-request-method': 'GET', 'access-control-request-headers': 'authorization' },
  });
  assert.equal(pre.status, 204);
  assert.match(pre.headers.get('access-control-allow-headers'), /authorization/);
  assert.equal((await fetch(`${base}/nope`)).status, 404);
});

test('paging from _first to the end gives every event once, in order; unknown lines and string data occur', async () => {
  const { token } = await discover('feed');
  const exp = await expected('feed');
  for (const pid of ['0', '1', '2', '3']) {
    const got = await drain('feed', token, pid, '_first', { pagesizehint: '37' });
    assert.equal(got.events.length, 500);
    assert.deepEqual(got.events, exp.partitions[pid].map((e) => e.data));
    assert.deepEqual(got.events.map((d) => parse(d).seq), Array.from({ length: 500 }, (_, i) => i + 1));
    assert.ok(got.unknown > 0, 'unknown command lines are sent');
    assert.ok(got.events.some((d) => typeof d === 'string'), 'some data is a string');
  }
  const types = new Set(exp.partitions['0'].map((e) => e.type));
  assert.deepEqual([...types].sort(), ['Customer.Updated', 'OrderCreated', 'OrderShipped', 'Payment.Captured', 'Payment.Refunded']);
});

test('a checkpoint in the middle of a page resumes right after the events before it; _last is the end', async () => {
  const { token } = await discover('feed');
  const p = await page('feed', { token, partition: '2', cursor: '_first', pagesizehint: '20' });
  assert.equal(p.events.length, 20);
  assert.ok(p.cursors.length >= 3);
  const mid = p.cursors[1]; // after the 10th event
  const q = await page('feed', { token, partition: '2', cursor: mid, pagesizehint: '5' });
  assert.deepEqual(q.events.map((d) => parse(d).seq), [11, 12, 13, 14, 15]);
  const last = await page('feed', { token, partition: '2', cursor: '_last' });
  assert.equal(last.events.length, 0);
  assert.equal(last.cursors.length, 1);
  const end = await drain('feed', token, '2', '_first', { pagesizehint: '1000' });
  assert.equal(last.cursors[0], end.cursor, '_last is the position after the last event');
  await control({ feed: 'feed', append: { partition: '2', count: 3 } });
  const more = await page('feed', { token, partition: '2', cursor: end.cursor });
  assert.deepEqual(more.events.map((d) => parse(d).seq), [501, 502, 503]);
});

test('a rotated token answers 409 on every partition; discovery gives the new token, which works', async () => {
  const { token } = await discover('feed');
  const p = await page('feed', { token, partition: '0', cursor: '_first' });
  const c = await control({ rotateToken: true, feed: 'feed' });
  assert.equal(c.status, 200);
  assert.notEqual(c.body.token, token);
  for (const pid of ['0', '1', '2', '3']) {
    assert.equal((await page('feed', { token, partition: pid, cursor: p.cursors.at(-1) })).status, 409);
  }
  const d = await discover('feed');
  assert.equal(d.token, c.body.token);
  const q = await page('feed', { token: d.token, partition: '0', cursor: p.cursors.at(-1) });
  assert.equal(q.status, 200);
  assert.equal(parse(q.events[0]).seq, 101, 'cursors stay valid across a token change');
  // other feeds keep their token
  const other = await discover('split');
  assert.equal((await page('split', { token: other.token, partition: '0', cursor: '_first' })).status, 200);
});

test('bad requests: no token 400, unknown partition, bad cursor, bad pagesizehint, both filters', async () => {
  const { token } = await discover('feed');
  const bad = [
    { partition: '0', cursor: '_first' },
    { token, partition: '9', cursor: '_first' },
    { token, partition: 'x', cursor: '_first' },
    { token, partition: '0' },
    { token, partition: '0', cursor: 'garbage' },
    { token, partition: '1', cursor: (await page('feed', { token, partition: '0', cursor: '_first' })).cursors[0] },
    { token, partition: '0', cursor: '_first', pagesizehint: 'ten' },
    { token, partition: '0', cursor: '_first', 'event-types': 'OrderCreated', 'skip-event-types': 'OrderShipped' },
  ];
  for (const params of bad) assert.equal((await page('feed', params)).status, 400, JSON.stringify(params));
});

test('event-types: case-insensitive, ";"-separated; checkpoints advance past filtered events', async () => {
  const { token } = await discover('feed');
  const want = new Set(['OrderCreated', 'Payment.Captured']);
  const exp = await expected('feed', '&event-types=ordercreated;PAYMENT.CAPTURED');
  const all = await expected('feed');
  for (const pid of ['0', '3']) {
    assert.equal(exp.partitions[pid].length, all.partitions[pid].filter((e) => want.has(e.type)).length);
    const got = await drain('feed', token, pid, '_first', { pagesizehint: '10', 'event-types': 'ordercreated;PAYMENT.CAPTURED' });
    assert.deepEqual(got.events, exp.partitions[pid].map((e) => e.data));
    assert.ok(got.events.every((d) => want.has(parse(d).type)));
    const unfiltered = await drain('feed', token, pid, '_first', { pagesizehint: '1000' });
    assert.equal(got.cursor, unfiltered.cursor, 'the final cursor is past the filtered tail too');
  }
  // A rare type with a small page: some pages move the cursor without events (progress, not the end).
  const rare = await drain('feed', token, '1', '_first', { pagesizehint: '1', 'event-types': 'Customer.Updated' });
  assert.ok(rare.cursorOnly > 0, 'cursor-only pages occur');
  assert.ok(rare.pages >= 250, `a page scans at most 2 x pagesizehint events (${rare.pages} pages)`);
  assert.equal(rare.events.length, all.partitions['1'].filter((e) => e.type === 'Customer.Updated').length);
});

test('skip-event-types leaves out those types; /nofilter ignores filters (servers may)', async () => {
  const { token } = await discover('feed');
  const got = await drain('feed', token, '2', '_first', { 'skip-event-types': 'orderCreated;;orderShipped' });
  const all = (await expected('feed')).partitions['2'];
  assert.deepEqual(got.events, all.filter((e) => !e.type.startsWith('Order')).map((e) => e.data));
  const nf = await discover('nofilter');
  const ignored = await drain('nofilter', nf.token, '2', '_first', { 'event-types': 'OrderCreated' });
  assert.equal(ignored.events.length, 500);
});

test('split method 1: parent closed, children startsAfterPartition it; parent then children keeps order per order', async () => {
  const d = await discover('split');
  assert.deepEqual(d.partitions, [
    { id: '0', closed: true },
    { id: '1', startsAfterPartition: '0' },
    { id: '2', startsAfterPartition: '0' },
  ]);
  const parent = await drain('split', d.token, '0', '_first');
  const kids = [await drain('split', d.token, '1', '_first'), await drain('split', d.token, '2', '_first')];
  assert.equal(parent.events.length, 400);
  const versions = new Map();
  const check = (d) => {
    const { orderId, version } = parse(d);
    assert.equal(version, (versions.get(orderId) ?? 0) + 1, `order ${orderId}`);
    versions.set(orderId, version);
  };
  parent.events.forEach(check);
  for (const k of kids) {
    assert.equal(k.events.length, 150);
    k.events.forEach(check);
  }
  // children continue orders of the parent (so reading a child first would break their order)
  const parentOrders = new Set(parent.events.map((x) => parse(x).orderId));
  assert.ok(kids[0].events.some((x) => parentOrders.has(parse(x).orderId)));
  // a closed partition never grows
  assert.equal((await control({ feed: 'split', append: { partition: '0', count: 1 } })).status, 409);
  assert.equal((await control({ feed: 'split', append: { partition: '1', count: 1 } })).status, 200);
});

test('split method 2: after the split a cursor of the vanished parent is valid on both children', async () => {
  const before = await discover('cosmos');
  assert.deepEqual(before.partitions, [{ id: '0' }]);
  // read part of partition 0
  let cursor = '_first';
  const early = [];
  for (let i = 0; i < 3; i++) {
    const p = await page('cosmos', { token: before.token, partition: '0', cursor, pagesizehint: '50' });
    early.push(...p.events);
    cursor = p.cursors.at(-1);
  }
  assert.equal(early.length, 150);
  await control({ feed: 'cosmos', split: true });
  assert.equal((await page('cosmos', { token: before.token, partition: '0', cursor })).status, 409);
  const after = await discover('cosmos');
  assert.notEqual(after.token, before.token);
  assert.deepEqual(after.partitions, [
    { id: '1', cursorFromPartitions: ['0'] },
    { id: '2', cursorFromPartitions: ['0'] },
  ]);
  assert.equal((await page('cosmos', { token: after.token, partition: '0', cursor })).status, 400);
  const k1 = await drain('cosmos', after.token, '1', cursor);
  const k2 = await drain('cosmos', after.token, '2', cursor);
  const seqs = [...early, ...k1.events, ...k2.events].map((d) => parse(d).seq).sort((a, b) => a - b);
  assert.deepEqual(seqs, Array.from({ length: 800 }, (_, i) => i + 1), 'the whole history once: nothing lost, nothing repeated');
  // a child's cursor is not valid on its sibling
  assert.equal((await page('cosmos', { token: after.token, partition: '2', cursor: k1.cursor })).status, 400);
  const exp = await expected('cosmos');
  assert.deepEqual(Object.keys(exp.partitions), ['1', '2']);
  assert.equal(exp.partitions['1'].length + exp.partitions['2'].length, 800);
});

test('secure feed: 401 without a bearer token, 403 with a wrong one', async () => {
  assert.equal((await fetch(`${base}/secure`)).status, 401);
  assert.equal((await fetch(`${base}/secure`, { headers: { authorization: 'Bearer nope' } })).status, 403);
  const auth = { headers: { authorization: 'Bearer secret-token' } };
  const d = await discover('secure', auth);
  assert.equal((await page('secure', { token: d.token, partition: '0', cursor: '_first' })).status, 401);
  assert.equal((await page('secure', { token: d.token, partition: '0', cursor: '_first' }, auth)).status, 200);
});

test('the request log records what clients sent', async () => {
  const { token } = await discover('feed');
  await page('feed', { token, partition: '0', cursor: '_first', 'event-types': 'A;B' });
  const log = await (await fetch(`${base}/_requests`)).json();
  assert.ok(log.some((e) => e.url.includes('event-types=A%3BB') && e.status === 200), JSON.stringify(log));
});

test('the server exits when its stdin closes', async () => {
  const c = spawn(process.execPath, [SERVER], { stdio: ['pipe', 'pipe', 'inherit'] });
  const [chunk] = await once(c.stdout, 'data');
  assert.match(String(chunk), /^LISTENING \d+\n/);
  c.stdin.end();
  const [code] = await once(c, 'exit');
  assert.equal(code, 0);
});
