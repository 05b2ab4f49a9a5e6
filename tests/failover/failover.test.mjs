// Several base URLs: a feed reads [primary, replica] (two reference servers with the same dataset, so the same
// cursors). The primary is stopped mid-run and restarted on its port later. An exactly-once consumer (each batch's
// events and cursors applied together) must end with every event exactly once; the replica must have served pages
// while the primary was down, and the primary again after its cool-down.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';
import { eventRecord } from '../interop/consume.js';
import { fetchExpected, startRefServer, verifyEvents } from '../interop/helpers.mjs';

let primary;
let replica;
let expected;
before(async () => {
  [primary, replica] = await Promise.all([startRefServer(), startRefServer()]);
  expected = await fetchExpected(primary.base);
  const other = await fetchExpected(replica.base);
  assert.deepEqual(other.events.map((e) => e.id), expected.events.map((e) => e.id), 'the two servers hold the same feed');
});
after(async () => {
  await primary?.stop();
  await replica?.stop();
});

const portOf = (url) => new URL(url).port;

test('[primary, replica]: the primary killed and restarted mid-run → every event exactly once, pages from both', async () => {
  const db = { events: [], cursors: {} };
  const pagesFrom = new Map();
  const eventsFrom = new Map();
  const failedUrls = [];
  let phase = 'up';
  /** Page number → the phase its request was sent in. */
  const sentIn = new Map();
  let batches = 0;
  let restarted;
  const feed = api.openFeed([primary.feedUrl, replica.feedUrl], {
    partitionCount: 4,
    pageSizeHint: 40,
    retry: { initialMs: 5, maxMs: 50, maxAttempts: 20 },
    failoverCooldownMs: 300,
    // A page counts in the phase its request was sent in: one sent before the stop may still end after it (its
    // body was being read when batch 15 was handed out mid-page).
    onRequest: (r) => sentIn.set(r.page, phase),
    onResponse: (r) => {
      const key = `${portOf(r.url)} ${sentIn.get(r.page) ?? phase}`;
      pagesFrom.set(key, (pagesFrom.get(key) ?? 0) + 1);
      eventsFrom.set(portOf(r.url), (eventsFrom.get(portOf(r.url)) ?? 0) + r.events);
    },
    onRetry: ({ error, url }) => failedUrls.push(`${error.code} ${portOf(url)} ${phase}`),
  });
  for await (const batch of feed.batches()) {
    // The "transaction": effects and cursors together.
    for (const ev of batch.events) db.events.push(eventRecord(ev));
    for (const c of batch.checkpoints) db.cursors[c.partition] = c.cursor;
    batches++;
    if (batches === 15) {
      phase = 'down';
      await primary.stop(); // killed mid-run: the next request to it fails
    }
    if (batches === 35) {
      phase = 'restarting';
      restarted = startRefServer({ port: primary.port }).then((s) => {
        primary = s;
        phase = 'back';
      });
    }
    if (batches > 35 && phase === 'restarting') await restarted;
  }
  await restarted;
  const report = verifyEvents({ events: db.events }, expected);
  console.log(
    `events ${report.received}, unique ${report.unique} of ${expected.events.length}; duplicates ${report.duplicates}, lost ${report.lost}; batches ${batches};`,
    `pages by port and phase ${JSON.stringify(Object.fromEntries(pagesFrom))}; events by port ${JSON.stringify(Object.fromEntries(eventsFrom))};`,
    `retries ${failedUrls.length}: ${JSON.stringify([...new Set(failedUrls)])}`,
  );
  assert.deepEqual([report.duplicates, report.lost, report.unexpected, report.mismatches, report.orderViolations], [0, 0, 0, 0, 0], report.firstProblems.join('; '));
  assert.equal(report.unique, expected.events.length, 'every event once');
  const p = String(primary.port);
  const r = portOf(replica.feedUrl);
  assert.ok((pagesFrom.get(`${r} down`) ?? 0) > 0, 'the replica served while the primary was down');
  assert.equal(pagesFrom.get(`${p} down`) ?? 0, 0, 'no page from the stopped primary');
  assert.ok((pagesFrom.get(`${p} back`) ?? 0) > 0, 'the primary served again after its restart and cool-down');
  assert.ok(failedUrls.some((f) => f.startsWith(`network ${p}`)), 'onRetry named the failed URL');
  assert.ok(failedUrls.every((f) => f.includes(` ${p} `)), 'only the primary failed');
});

test("protocol 'auto' with [primary, replica], the primary down from the start: negotiated on the replica (v1), read to the end there", async () => {
  const [down, up] = await Promise.all([startRefServer(), startRefServer()]);
  try {
    const downPort = String(down.port);
    await down.stop();
    const failed = [];
    const events = [];
    const feed = api.openFeed([down.feedUrl, up.feedUrl], {
      protocol: 'auto',
      partitionCount: 4,
      pageSizeHint: 500,
      retry: { initialMs: 5, maxMs: 50, maxAttempts: 20 },
      onRetry: ({ error, url }) => failed.push(`${error.code} ${portOf(url)}`),
    });
    for await (const batch of feed.batches()) for (const ev of batch.events) events.push(eventRecord(ev));
    const report = verifyEvents({ events }, expected);
    console.log(`auto: events ${report.received}, unique ${report.unique} of ${expected.events.length}; duplicates ${report.duplicates}, lost ${report.lost}; retries ${JSON.stringify(failed)}`);
    assert.deepEqual([report.duplicates, report.lost, report.unexpected, report.mismatches], [0, 0, 0, 0], report.firstProblems.join('; '));
    assert.equal(report.unique, expected.events.length, 'every event once');
    assert.ok(failed.length > 0 && failed.every((f) => f === `network ${downPort}`), 'only the stopped primary failed');
  } finally {
    await down.stop();
    await up.stop();
  }
});
