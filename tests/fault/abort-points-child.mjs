// One process of tests/fault/abort-points.test.mjs: runs consume() failure cases (tests/fault/abort-points.mjs)
// against the servers the test started, prints one JSON line per case, and must then exit on its own: a timer, a
// socket or a body read consume() left behind would keep it alive (the test kills it after a bound and fails).
//
//   node tests/fault/abort-points-child.mjs <v1 feed url> <v2 base url> <store: memory|sqlite> <cases per mode>

import * as lib from '../../dist/entrypoints/node.js';
import { runCase } from './abort-points.mjs';

const [v1Url, v2Base, storeKind, perMode] = process.argv.slice(2);
const say = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);

const v1Expected = new Set((await (await fetch(new URL('/expected', v1Url))).json()).events.filter((e) => e.partition === 2).map((e) => e.id));
// The ragged feed: events after a page's last checkpoint are held back and fetched again.
const v1 = { source: { url: v1Url, partitionCount: 4, partitions: [2], pageSizeHint: 400, retry: false }, expected: v1Expected };
const v2Data = await (await fetch(`${v2Base}/expected?feed=feed`)).json();
const v2Expected = new Set(Object.values(v2Data.partitions).flatMap((list) => list.map((e) => (typeof e.data === 'string' ? JSON.parse(e.data) : e.data).id)));
const v2 = { source: { url: `${v2Base}/feed`, protocol: 'auto', pageSizeHint: 300, retry: false }, expected: v2Expected };

/** Every point kind of a run, k spread over them: `count` cases per mode (k = 1 and the last point among them). */
async function sweep(name, feed, modes, count) {
  const { points, problems } = await runCase(lib, { feed, storeKind, k: 0, mode: 'abort' });
  say({ name: `${name}: no failure`, problems });
  for (const mode of modes) {
    for (let i = 0; i < count; i++) {
      const k = 1 + Math.round((i * (points - 1)) / Math.max(1, count - 1));
      const r = await runCase(lib, { feed, storeKind, k, mode });
      say({ name: `${name}: ${mode} at point ${k} of ${points} (${r.kindAt})`, problems: r.problems, outcome: r.outcome });
    }
  }
}

const n = Number(perMode);
await sweep('v1', v1, ['abort', 'abort-late', 'throw'], n);
// Each point kind at its first and second occurrence, so every kind is hit whatever the spread picked.
for (const only of ['load', 'onRole', 'onFeed', 'save', 'handler', 'onCommit', 'fetch', 'read']) {
  for (const mode of ['abort', 'abort-late', 'throw']) {
    for (const k of only === 'load' || only === 'onRole' || only === 'onFeed' ? [1] : [1, 2]) {
      const r = await runCase(lib, { feed: v1, storeKind, k, mode, only });
      say({ name: `v1: ${mode} at ${only} #${k}`, problems: r.problems, outcome: r.outcome });
    }
  }
}
await sweep('v2 (auto)', v2, ['abort', 'abort-late', 'throw'], Math.ceil(n / 2));

// The signal already aborted when consume() is called.
for (const feed of [v1, v2]) {
  const r = await runCase(lib, { feed, storeKind, k: 0, mode: 'abort', codes: ['aborted'], first: (_, c) => (c.abort(new Error('before')), {}) });
  say({ name: `${feed === v1 ? 'v1' : 'v2'}: aborted before the call`, problems: r.problems, outcome: r.outcome });
}
// Aborted during the reader's retry backoff, after a failed request and after a cut body.
for (const only of ['fetch', 'read']) {
  for (const feed of [v1, v2]) {
    const r = await runCase(lib, {
      feed,
      storeKind,
      k: 2,
      mode: 'throw',
      only,
      codes: ['aborted'],
      first: (later) => ({ retry: { initialMs: 300, maxMs: 300, maxAttempts: 5 }, onRetry: () => later(5) }),
    });
    say({ name: `${feed === v1 ? 'v1' : 'v2'}: aborted in the backoff after a failed ${only}`, problems: r.problems, outcome: r.outcome });
  }
}
// Aborted during consume()'s own backoff before a failed batch is tried again.
{
  const r = await runCase(lib, { feed: v1, storeKind, k: 2, mode: 'throw', only: 'handler', abortAfterMs: 30, codes: ['aborted'], extra: { onHandlerError: 'retry' } });
  say({ name: "v1: aborted in onHandlerError 'retry''s backoff", problems: r.problems, outcome: r.outcome });
}
// Aborted during live mode's wait for the next poll (and as it starts).
for (const feed of [v1, v2]) {
  for (const ms of [0, 50]) {
    const r = await runCase(lib, {
      feed,
      storeKind,
      k: 0,
      mode: 'abort',
      codes: ['aborted'],
      first: (later) => ({ live: { minIntervalMs: 300, maxIntervalMs: 300 }, onCaughtUp: () => later(ms) }),
    });
    say({ name: `${feed === v1 ? 'v1' : 'v2'}: aborted ${ms} ms into live mode's wait`, problems: r.problems, outcome: r.outcome });
  }
}
say({ done: true });
