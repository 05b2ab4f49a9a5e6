// consume() under a failure at every await point (tests/fault/abort-points.test.mjs runs it in child processes).
//
// One case: consume() runs against a real loopback feed (the PyPI reference server, FeedAPI v1, or the v2 test
// server) into a memoryStore or a sqliteStore (better-sqlite3, in memory), and at the k-th await point it can reach
// (store load and save, the handler, onRole / onFeed / onCommit, the `fetch` option, each read of a response body)
// the case injects its failure: the source's signal aborted there ('abort'), aborted there and the point finished a
// macrotask later ('abort-late': a save in flight commits after the signal fired), or the point throws ('throw').
// Then it checks what consume() promises:
// - the first run rejects with a FeedError of the code that failure means (or resolves, when the failure came after
//   its last await);
// - nothing of the case's code is called after it settled, and no save or handler is still running then;
// - a macrotask after it settled: no timer left (process.getActiveResourcesInfo()), no body of a response still
//   open, no fetch still pending, no unhandled rejection;
// - restarted on the same store (no failure) until caught up, every event of the feed was applied exactly once.
// Each failed check is a line of `problems`; the case's point count says when k has gone past the last point.

import assert from 'node:assert/strict';
import { setImmediate as macrotask } from 'node:timers/promises';

/** What the failure at each kind of point must end consume() with (`'throw'`). */
export const THROWN = {
  load: ['store-failed'],
  save: ['store-failed'],
  handler: ['handler-failed'],
  onRole: ['hook-failed'],
  onFeed: ['hook-failed'],
  onCommit: ['hook-failed'],
  fetch: ['network'],
  read: ['network', 'truncated-body'],
};

/** Timers alive now (the `Timeout` entries of the process's active resources). */
const timers = () => process.getActiveResourcesInfo().filter((r) => r === 'Timeout').length;

/**
 * Applied events, by id, in a store the case can restart on: `memory` (memoryStore, the counts in its data) or
 * `sqlite` (sqliteStore on an in-memory better-sqlite3 Database, a row per application).
 */
export async function makeStore(lib, kind) {
  if (kind === 'memory') {
    const store = lib.memoryStore();
    return {
      store,
      apply: (ids, tx) => {
        for (const id of ids) tx.set(id, (tx.get(id) ?? 0) + 1);
      },
      counts: () => new Map([...store.data].map(([id, n]) => [id, n])),
    };
  }
  const { default: Database } = await import('better-sqlite3');
  const { sqliteStore } = await import(new URL('../../dist/stores/sqlite.js', import.meta.url).href);
  const db = new Database(':memory:');
  db.exec('CREATE TABLE applied (id TEXT NOT NULL)');
  const put = db.prepare('INSERT INTO applied (id) VALUES (?)');
  return {
    store: sqliteStore(db),
    apply: (ids) => {
      for (const id of ids) put.run(id);
    },
    counts: () => new Map(db.prepare('SELECT id, COUNT(*) AS n FROM applied GROUP BY id').all().map((r) => [r.id, r.n])),
  };
}

/** The id of an event of either server (v2 sends some `data` as a JSON string). */
const idOf = (e) => (typeof e.data === 'string' ? JSON.parse(e.data).id : e.data.id);

/**
 * Runs one case. `feed`: { source, expected: Set of ids } (the source without signal and fetch); `k`: the point to
 * fail at (0: none); `mode`: 'abort' | 'abort-late' | 'throw'. Resolves to { points, problems, outcome, runs }.
 */
export async function runCase(lib, { feed, storeKind, k, mode, only, extra = {}, first = {}, abortAfterMs, codes }) {
  const { FeedError } = lib;
  const problems = [];
  const unhandled = [];
  const onUnhandled = (e) => unhandled.push(e);
  process.on('unhandledRejection', onUnhandled);
  const { store: inner, apply, counts } = await makeStore(lib, storeKind);
  const timersBefore = timers();

  let n = 0;
  let failing = true; // the first run only
  let settled = false;
  let controller;
  let running = { save: 0, handler: 0 };
  let kindAt;
  /** Open response bodies (read neither to their end nor cancelled) and fetches not settled, of the current run. */
  const bodies = new Set();
  let fetching = 0;

  /** Aborts the failing run's signal `ms` later (during a wait that follows the point: a backoff, a live poll's). */
  let laterTimer;
  const later = (ms) => {
    const c = controller;
    laterTimer = setTimeout(() => c.abort(new Error('aborted later')), ms);
  };
  /** An await point: counts it and, at the k-th of the failing run, injects the failure. */
  const at = async (kind) => {
    if (settled) problems.push(`${kind} called after consume() settled`);
    if (!failing || (only !== undefined && kind !== only)) return;
    n++;
    if (n !== k) return;
    kindAt = kind;
    if (abortAfterMs !== undefined) later(abortAfterMs);
    if (mode === 'throw') throw new Error(`injected at ${kind}`);
    controller.abort(new Error(`aborted at ${kind}`));
    if (mode === 'abort-late') await macrotask();
  };
  /** `at` for points that must stay synchronous when they do not fail (a promise there is awaited by consume()). */
  const atSync = (kind) => {
    if (settled) problems.push(`${kind} called after consume() settled`);
    if (!failing || (only !== undefined && kind !== only)) return undefined;
    n++;
    if (n !== k) return undefined;
    kindAt = kind;
    if (abortAfterMs !== undefined) later(abortAfterMs);
    if (mode === 'throw') throw new Error(`injected at ${kind}`);
    controller.abort(new Error(`aborted at ${kind}`));
    return mode === 'abort-late' ? macrotask() : undefined;
  };

  const store = {
    load: async (key) => {
      await at('load');
      return inner.load(key);
    },
    save: async (key, record, effects, expected) => {
      running.save++;
      try {
        await at('save');
        return await inner.save(key, record, effects, expected);
      } finally {
        running.save--;
      }
    },
  };
  const handler = (batch, tx) => {
    running.handler++;
    const done = () => running.handler--;
    try {
      const wait = atSync('handler');
      apply(batch.events.map(idOf), tx);
      if (wait === undefined) return done();
      return wait.then(done, (e) => (done(), Promise.reject(e)));
    } catch (e) {
      done();
      throw e;
    }
  };

  /** The case's `fetch`: a point before the request, and each body read a point (a pull of a stream of ours). */
  const fetch = async (request) => {
    await at('fetch');
    fetching++;
    let response;
    try {
      response = await globalThis.fetch(request);
    } finally {
      fetching--;
    }
    if (response.body === null) return response;
    const upstream = response.body.getReader();
    const entry = { url: request.url };
    bodies.add(entry);
    const body = new ReadableStream(
      {
        async pull(c) {
          try {
            await at('read');
          } catch (e) {
            bodies.delete(entry);
            upstream.cancel().catch(() => {});
            throw e;
          }
          let done;
          let value;
          try {
            ({ done, value } = await upstream.read());
          } catch (e) {
            // The request's signal aborted (undici errors the body then): not open any more.
            bodies.delete(entry);
            throw e;
          }
          if (done) {
            bodies.delete(entry);
            c.close();
          } else c.enqueue(value);
        },
        cancel(reason) {
          bodies.delete(entry);
          return upstream.cancel(reason);
        },
      },
      { highWaterMark: 0 },
    );
    return new Response(body, { status: response.status, statusText: response.statusText, headers: response.headers });
  };

  const run = async () => {
    controller = new AbortController();
    // `first`: the failing run's own source options (a function is given `later` and the run's controller).
    const own = failing ? (typeof first === 'function' ? first(later, controller) : first) : {};
    const source = { ...feed.source, ...own, fetch, signal: controller.signal };
    return lib.consume(source, {
      store,
      key: 'k',
      handler,
      onRole: () => atSync('onRole'),
      onFeed: () => atSync('onFeed'),
      onCommit: () => atSync('onCommit'),
      tabs: false,
      ...extra,
    });
  };

  let outcome;
  const firstRun = run();
  try {
    const r = await firstRun;
    outcome = { resolved: r };
  } catch (e) {
    outcome = { error: e };
  }
  settled = true;
  clearTimeout(laterTimer);
  if (running.save || running.handler) problems.push(`still running when consume() settled: ${JSON.stringify(running)}`);
  await macrotask();
  await macrotask();
  if (outcome.error !== undefined) {
    const e = outcome.error;
    if (!(e instanceof FeedError)) problems.push(`rejected with a non-FeedError: ${e?.name}: ${e?.message}`);
    else {
      const want = codes ?? (mode !== 'throw' ? ['aborted'] : abortAfterMs !== undefined ? [...THROWN[kindAt], 'aborted'] : THROWN[kindAt]);
      if (want === undefined || !want.includes(e.code)) problems.push(`rejected with ${e.code} (${e.message}); failure at ${kindAt} (${mode}) wants ${want}`);
    }
  } else if (kindAt !== undefined && mode === 'throw' && kindAt !== 'fetch' && kindAt !== 'read') {
    problems.push(`resolved although ${kindAt} threw`);
  }
  const left = timers() - timersBefore;
  if (left > 0) problems.push(`${left} timer(s) left after consume() settled`);
  if (bodies.size) problems.push(`${bodies.size} response body(ies) left open: ${[...bodies].map((b) => b.url).join(', ')}`);
  if (fetching) problems.push(`${fetching} fetch(es) left pending`);
  const points = n;

  // Restart, no failure, until caught up.
  failing = false;
  settled = false;
  let runs = 1;
  for (; runs < 6; runs++) {
    try {
      const r = await run();
      if (r.caughtUp) break;
    } catch (e) {
      problems.push(`restart ${runs} failed: ${e?.code} ${e?.message}`);
      break;
    }
  }
  const got = counts();
  let dup = 0;
  let lost = 0;
  let extraIds = 0;
  for (const [id, c] of got) {
    if (!feed.expected.has(id)) extraIds++;
    else if (c > 1) dup += c - 1;
  }
  for (const id of feed.expected) if (!got.has(id)) lost++;
  if (dup || lost || extraIds) problems.push(`applied: ${dup} duplicate(s), ${lost} lost, ${extraIds} unexpected of ${feed.expected.size}`);
  await macrotask();
  process.off('unhandledRejection', onUnhandled);
  for (const e of unhandled) problems.push(`unhandled rejection: ${e?.name}: ${e?.message}`);
  return { points, problems, kindAt, outcome: outcome.error ? `${outcome.error.code ?? outcome.error}` : 'resolved', runs };
}

export { assert };
