// Interop: the built package (dist/entrypoints/node.js) against PyPI zeroeventhub's real server handler
// (tests/ref_server/app.py). Run: node --test --test-timeout=120000 --test-force-exit tests/interop/node.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { consume } from './consume.js';
import {
  startRefServer, fetchExpected, verifyEvents, describe, assertComplete, lastCursors, waitFor, distDir,
} from './helpers.mjs';

let server;
let expected;
let api;

before(async () => {
  api = await import(pathToFileURL(path.join(distDir, 'entrypoints/node.js')).href);
  server = await startRefServer();
  expected = await fetchExpected(server.base);
});

after(async () => {
  await server?.stop();
});

const TOTAL = 10_000;
const seqOf = (cursor) => (cursor === '_first' || cursor === undefined ? 0 : Number(cursor));

test('events(): _first to caught-up, every event once, data identical, final cursors', async (t) => {
  const s = await consume(api, server.feedUrl, { partitionCount: 4, pageSizeHint: 500 }, { mode: 'events', keepData: true });
  const v = verifyEvents(s, expected);
  t.diagnostic(describe('node events()', v, s));
  assertComplete(v, s, TOTAL);
  assert.deepEqual(s.cursors, lastCursors(expected));
  // Structural comparison too: each parsed value deep-equals JSON.parse of the exact wire text.
  let deepMismatches = 0;
  s.data.forEach((d, i) => {
    try {
      assert.deepStrictEqual(d, JSON.parse(expected.byId.get(s.events[i][1]).wire));
    } catch {
      deepMismatches++;
    }
  });
  t.diagnostic(`deep-equal mismatches: ${deepMismatches}; events with an own "__proto__" key: ${s.protoOwn}`);
  assert.equal(deepMismatches, 0);
  assert.equal(s.protoOwn, 4 * Math.floor(2500 / 97));
});

test('batches() with headers=[ce_id], server default page size: every batch committable, headers present', async (t) => {
  const s = await consume(api, server.feedUrl, { partitionCount: 4, headers: ['ce_id'] }, { mode: 'batches' });
  const v = verifyEvents(s, expected);
  t.diagnostic(describe('node batches()', v, s));
  assertComplete(v, s, TOTAL);
  assert.deepEqual(s.cursors, lastCursors(expected));
  const badHeaders = s.events.filter(([, id, , , h]) => h !== JSON.stringify({ ce_id: id })).length;
  assert.equal(badHeaders, 0, 'every event has headers {ce_id: id}');
  assert.ok(s.batches > 1);
});

test('the node entry point reads bodies with their default reader (undici gives ~64 KB chunks; BYOB gains nothing)', async () => {
  const s = await consume(api, server.feedUrl, { partitionCount: 4, pageSizeHint: 2000 }, { mode: 'batches', countReads: true });
  assertComplete(verifyEvents(s, expected), s, TOTAL);
  assert.ok(s.reads.modes.length >= 2 && s.reads.modes.every((m) => m === 'default'), `reader modes: ${s.reads.modes}`);
});

test('for await (ev of feed) on /ragged/v1 (trailing events without checkpoint are held back and refetched)', async (t) => {
  const s = await consume(api, `${server.base}/ragged/v1`, { partitionCount: 4, pageSizeHint: 50 }, { mode: 'iterator' });
  const v = verifyEvents(s, expected);
  t.diagnostic(describe('node ragged', v, s));
  assertComplete(v, s, TOTAL);
  assert.deepEqual(s.cursors, lastCursors(expected));
});

test('resume from given cursors (partitions left out start at _first)', async (t) => {
  const cursors = { 0: '1000', 2: '2499', 3: '2500' };
  const s = await consume(api, server.feedUrl, { partitionCount: 4, cursors, pageSizeHint: 300 }, { mode: 'batches' });
  const want = (e) => e.seq > seqOf(cursors[e.partition]);
  const v = verifyEvents(s, expected, want);
  t.diagnostic(describe('node resume', v, s));
  assertComplete(v, s, 1500 + 2500 + 1);
  assert.deepEqual(s.cursors, lastCursors(expected));
});

test('truncated body (backend fails after 40 lines, retry off): truncated-body, cursors not past the last checkpoint', async (t) => {
  // Page 1 from _first: 28 events (seq 1..7 of each partition), the 4 checkpoints "7", then seq 8 and 9 of each
  // partition (8 more lines), then the connection is cut.
  const s = await consume(api, `${server.base}/broken/v1`, { partitionCount: 4, pageSizeHint: 100, retry: false }, { mode: 'batches' });
  t.diagnostic(`node broken: events=${s.events.length} batches=${s.batches} cursors=${JSON.stringify(s.cursors)} error=${JSON.stringify(s.error)}`);
  assert.equal(s.error?.name, 'FeedError');
  assert.equal(s.error?.code, 'truncated-body');
  for (const p of ['0', '1', '2', '3']) assert.ok(['_first', '7'].includes(s.cursors[p]), `cursor of ${p}: ${s.cursors[p]}`);
  const beyond = s.events.filter(([p, , js]) => JSON.parse(js).seq > 7);
  assert.equal(beyond.length, 0, 'no event after the last checkpoint received is delivered');
  const v = verifyEvents(s, expected, (e) => e.seq <= 7);
  assert.equal(v.duplicates + v.mismatches + v.unexpected, 0);
  // cursors() counts only batches the consumer came back for: the events delivered are covered by them or by the
  // batch being consumed when the error came.
  assert.ok(s.events.length === 0 || s.events.length === 28, `events delivered: ${s.events.length}`);
});

test('body cut right after the 200 (0 bytes): truncated-body', async (t) => {
  const s = await consume(api, `${server.base}/broken/0/v1`, { partitionCount: 4, retry: false }, { mode: 'events' });
  t.diagnostic(`node broken/0: events=${s.events.length} error=${JSON.stringify(s.error)}`);
  assert.equal(s.error?.name, 'FeedError');
  assert.equal(s.error?.code, 'truncated-body');
  assert.equal(s.events.length, 0);
  assert.deepEqual(s.cursors, { 0: '_first', 1: '_first', 2: '_first', 3: '_first' });
});

test('retries survive a server that cuts every page: all events once', async (t) => {
  const s = await consume(
    api,
    `${server.base}/broken/v1`,
    { partitionCount: 4, pageSizeHint: 100, retry: { initialMs: 1, maxMs: 5, maxAttempts: Infinity, deadlineMs: 90_000 } },
    { mode: 'batches', countRetries: true },
  );
  const v = verifyEvents(s, expected);
  t.diagnostic(describe('node broken+retry', v, s));
  assertComplete(v, s, TOTAL);
  assert.deepEqual(s.cursors, lastCursors(expected));
  assert.ok(s.retries >= 300, `retries: ${s.retries}`);
});

test('n mismatch: http-status 400 with the server body', async (t) => {
  const s = await consume(api, server.feedUrl, { partitionCount: 3 }, { mode: 'events' });
  t.diagnostic(`node n=3: error=${JSON.stringify(s.error)}`);
  assert.equal(s.error?.name, 'FeedError');
  assert.equal(s.error?.code, 'http-status');
  assert.equal(s.error?.status, 400);
  assert.match(s.error?.bodySnippet ?? '', /Partition count doesn't match/);
  assert.equal(s.events.length, 0);
});

test('wrong path: http-status 404', async () => {
  const s = await consume(api, `${server.base}/nope/v1`, { partitionCount: 4 }, { mode: 'events' });
  assert.equal(s.error?.code, 'http-status');
  assert.equal(s.error?.status, 404);
});

test('break out of for-await early: the server sees the request go away; the next feed still works', async (t) => {
  const before = (await server.stats()).slow ?? { aborted: 0, completed: 0 };
  // /slow/v1 sleeps 3 ms per line: a 4,000-event page takes ~15 s, so it is surely still streaming when we break.
  const started = Date.now();
  const s = await consume(api, `${server.base}/slow/v1`, { partitionCount: 4, pageSizeHint: 1000 }, { mode: 'events', breakAfter: 5 });
  const breakMs = Date.now() - started;
  assert.equal(s.error, null);
  assert.equal(s.events.length, 5);
  const after = await waitFor(async () => {
    const st = (await server.stats()).slow;
    return st && st.aborted > before.aborted ? st : null;
  });
  t.diagnostic(`node break: took ${breakMs} ms; server slow stats ${JSON.stringify(after)}; cursors ${JSON.stringify(s.cursors)}`);
  assert.ok(after, 'the server saw the client go away');
  assert.ok(breakMs < 10_000);
  // The batch the loop was left in does not count.
  assert.deepEqual(s.cursors, { 0: '_first', 1: '_first', 2: '_first', 3: '_first' });
  // And the connection pool is fine afterwards.
  const s2 = await consume(api, server.feedUrl, { partitionCount: 4, cursors: { 0: '2490', 1: '2500', 2: '2500', 3: '2500' } }, { mode: 'events' });
  assert.equal(s2.error, null);
  assert.equal(s2.events.length, 10);
});

test('close() during iteration ends it without an error', async (t) => {
  const feed = api.openFeed(`${server.base}/slow/v1`, { partitionCount: 4, pageSizeHint: 1000 });
  let n = 0;
  const started = Date.now();
  for await (const ev of feed) {
    assert.equal(typeof ev.partition, 'number');
    if (++n === 3) feed.close();
  }
  t.diagnostic(`node close(): ${n} events, ${Date.now() - started} ms`);
  assert.equal(n, 3, 'no event after close()');
  assert.deepEqual(feed.cursors(), { 0: '_first', 1: '_first', 2: '_first', 3: '_first' }, 'a batch left mid-way is not delivered');
});

// Released events must not wait for 64 KiB or the end of the page: they are handed out within maxBatchDelayMs
// (default 10 ms) of their checkpoint, however the body trickles.
test('slowly streamed page: the first committable events arrive soon after their checkpoint', async (t) => {
  // /slow/v1: 3 ms per line; the first checkpoints (covering 28 events) are on the wire after ~32 lines (~0.1 s).
  const s = await consume(api, `${server.base}/slow/v1`, { partitionCount: 4, pageSizeHint: 1000 }, { mode: 'events', breakAfter: 1 });
  t.diagnostic(`node slow first event after ${s.ms} ms`);
  assert.equal(s.events.length, 1);
  assert.ok(s.ms < 1_000, `first event after ${s.ms} ms`);
});

test('a filter that keeps only the first 100 events of each partition: the cursors still reach the end of the feed', async (t) => {
  const filter = { include: 'early', typeFrom: (e) => (e.data.seq <= 100 ? 'early' : 'late') };
  for (const mode of ['events', 'batches']) {
    const s = await consume(api, server.feedUrl, { partitionCount: 4, pageSizeHint: 97, filter }, { mode });
    const v = verifyEvents(s, expected, (e) => e.seq <= 100);
    t.diagnostic(describe(`node filtered ${mode}()`, v, s));
    assertComplete(v, s, 400);
    assert.deepEqual(s.cursors, lastCursors(expected), 'batches whose events were all filtered out still advance the cursors');
  }
});

// The core's type filter (reader option `typeFilter`): a filter of names and prefixes on a field of `data` drops the
// events it does not keep while framing, before they reach JavaScript. Against the reference server, it must deliver
// what the same filter applied in JavaScript delivers (`typeFrom` as a function: JavaScript only, after parsing):
// per partition the same events and every checkpoint, in order (batches may be cut elsewhere), the same stats; and
// every cursor set consume() commits must be one of checkpoints the JavaScript filter's run passed, stored after
// exactly the kept events it covers (the server's cursor N covers seq <= N). The `text` field makes a good type: most
// are plain (`event 17 of partition 2`); the tricky ones hold escapes (the wire is ASCII-only JSON), which only a
// parse can read: they must reach the JavaScript filter.
test('a type filter in the core: the same events, checkpoints, stats and consume() commits as the filter in JavaScript', async (t) => {
  const textOf = api.typeReader({ field: 'text' });
  const filters = [
    { include: [{ prefix: 'event 1' }, '', 'quotes "double" \'single\' `back` “curly”'], exclude: [{ prefix: 'event 12' }] },
    { include: [{ prefix: 'EVENT 3' }, 'BACKSLASHES \\ \\\\ \\U0041 \\N (ALL LITERAL)'], exclude: ['event 30 of partition 1'], ignoreCase: true },
  ];
  const partitions = [0, 1, 2, 3];
  const seq = (id) => Number(id.slice(id.indexOf('-') + 1));
  for (const base of filters) {
    const inCore = { ...base, typeFrom: { field: 'text' } };
    const inJs = { ...base, typeFrom: (e) => textOf(e) };
    const stream = async (filter) => {
      // No flush deadline within a page (maxBatchDelayMs far away): batches are cut only at 64 KiB of released text
      // and at the end of a page, so their number says how much text crossed, not how fast the page was read.
      const feed = api.openFeed(server.feedUrl, { partitionCount: 4, pageSizeHint: 700, filter, maxBatchDelayMs: 60_000 });
      const events = partitions.map(() => []);
      const checkpoints = partitions.map(() => []);
      let batches = 0;
      for await (const b of feed.batches()) {
        batches++;
        for (const e of b.events) events[e.partition].push(e.data.id);
        for (const c of b.checkpoints) checkpoints[c.partition].push(c.cursor);
      }
      const { lastEventAt, ...stats } = feed.stats();
      return { events, checkpoints, stats, lastEventAt: Object.keys(lastEventAt), cursors: feed.cursors(), batches };
    };
    const core = await stream(inCore);
    const js = await stream(inJs);
    const kept = js.events.flat().length;
    t.diagnostic(`filter ${JSON.stringify(base)}: ${kept} events kept; batches: ${core.batches} (core) vs ${js.batches} (JS)`);
    assert.ok(kept > 100 && kept < TOTAL / 2, `${kept} kept`);
    assert.ok(js.events.flat().some((id) => seq(id) % 13 === 0), 'events whose type needs a parse are among those kept');
    assert.deepEqual(core.events, js.events, 'the same events per partition, in order');
    assert.deepEqual(core.checkpoints, js.checkpoints, 'every checkpoint, in order');
    assert.deepEqual(core.stats, js.stats, 'stats count the same events, bytes and pages');
    assert.equal(core.stats.events, TOTAL, 'every event read counts, kept or not');
    assert.deepEqual(core.lastEventAt, js.lastEventAt);
    assert.deepEqual(core.cursors, lastCursors(expected));
    assert.deepEqual(js.cursors, lastCursors(expected));
    assert.ok(core.batches < js.batches, 'fewer batches cross: the dropped events are not in them');

    const commits = async (filter) => {
      const applied = partitions.map(() => []);
      let log = 0;
      const result = await api.consume(
        { url: server.feedUrl, partitionCount: 4, pageSizeHint: 700, filter },
        {
          store: api.memoryStore(),
          key: 'filtered',
          handler: (b) => { for (const e of b.events) applied[e.partition].push(e.data.id); },
          onCommit: ({ cursors }) => {
            log++;
            for (const p of partitions) {
              const c = cursors[p] ?? '_first';
              assert.ok(c === '_first' || js.checkpoints[p].includes(c), `commits ${c} of partition ${p}, a checkpoint of the JavaScript filter's run`);
              const covered = js.events[p].filter((id) => c !== '_first' && seq(id) <= Number(c));
              assert.deepEqual(applied[p], covered, `partition ${p} committed at ${c} after exactly the kept events it covers`);
            }
          },
        },
      );
      return { applied, log, cursors: result.cursors };
    };
    const coreCommits = await commits(inCore);
    const jsCommits = await commits(inJs);
    t.diagnostic(`consume(): ${coreCommits.log} commits (core) vs ${jsCommits.log} (JS)`);
    assert.deepEqual(coreCommits.applied, js.events, 'consume() applies the kept events once, in order');
    assert.deepEqual(jsCommits.applied, js.events);
    assert.deepEqual(coreCommits.cursors, jsCommits.cursors, 'and ends at the same cursors');
    assert.deepEqual(coreCommits.cursors, lastCursors(expected));
  }
});
