// Node-side helpers of the interop tests: start/stop the reference ZeroEventHub server (tests/ref_server/app.py),
// fetch its expected dataset, and check a consume() summary (tests/interop/consume.js) against it.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import path from 'node:path';
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { chromium } from 'playwright-core';
import { BYOB_BYTES } from '../../dist/reader/body.js';

export const repoRoot = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const distDir = path.join(repoRoot, 'dist');

/** Debian's Chromium (`CHROMIUM_PATH` overrides), headless, with the flags it needs as root (shared/TOOLCHAIN.md). */
export const CHROMIUM_PATH = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';
const CHROMIUM_ARGS = [
  '--headless=new', '--no-sandbox', '--disable-gpu', '--disable-dev-shm-usage', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic',
];

/** Launches that Chromium through playwright-core (never a downloaded browser). */
export function launchChromium() {
  return chromium.launch({ executablePath: CHROMIUM_PATH, args: CHROMIUM_ARGS, timeout: 30_000 });
}

/** The Python of the repo's venv (.venv), or $FEEDPUMP_PYTHON. */
export function refServerPython() {
  if (process.env.FEEDPUMP_PYTHON) return process.env.FEEDPUMP_PYTHON;
  const py = path.join(repoRoot, '.venv/bin/python');
  if (!existsSync(py)) {
    throw new Error(
      `${py} is missing: python3 -m venv .venv && .venv/bin/pip install -r tests/ref_server/requirements.txt`,
    );
  }
  return py;
}

/**
 * Starts tests/ref_server/app.py on 127.0.0.1 on a free port (or on `port`, to restart a stopped one); resolves once it prints "LISTENING <port>".
 * The server exits when our end of its stdin closes, so it never outlives this process.
 * @returns {Promise<{ base: string, port: number, feedUrl: string, stop: () => Promise<void>, stats: () => Promise<any> }>}
 */
export function startRefServer({ timeoutMs = 30_000, port: listenPort = 0 } = {}) {
  const child = spawn(
    refServerPython(),
    [path.join(repoRoot, 'tests/ref_server/app.py'), '--port', String(listenPort), '--exit-with-stdin'],
    { cwd: repoRoot, stdio: ['pipe', 'pipe', 'pipe'] },
  );
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (s) => {
    stderr += s;
    if (process.env.FEEDPUMP_VERBOSE) process.stderr.write(`[ref-server] ${s}`);
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`ref server did not start within ${timeoutMs} ms; stderr:\n${stderr}`));
    }, timeoutMs);
    exited.then(({ code, signal }) => {
      clearTimeout(timer);
      reject(new Error(`ref server exited early (code ${code}, signal ${signal}); stderr:\n${stderr}`));
    });
    let out = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s) => {
      out += s;
      const m = /LISTENING (\d+)/.exec(out);
      if (!m) return;
      clearTimeout(timer);
      const port = Number(m[1]);
      const base = `http://127.0.0.1:${port}`;
      let stopping;
      resolve({
        base,
        port,
        feedUrl: `${base}/feed/v1`,
        pid: child.pid,
        stats: async () => (await fetch(`${base}/stats`)).json(),
        stop: () => {
          stopping ??= (async () => {
            if (child.exitCode !== null || child.signalCode !== null) return;
            child.kill('SIGTERM');
            const t = setTimeout(() => child.kill('SIGKILL'), 4_000);
            await exited;
            clearTimeout(t);
            child.stdin.destroy();
          })();
          return stopping;
        },
      });
    });
  });
}

/** GET /expected: { partitions, eventsPerPartition, lastCursors, events: [{partition,id,seq,wire,js}], byId }. */
export async function fetchExpected(base) {
  const res = await fetch(`${base}/expected`);
  assert.equal(res.status, 200);
  const expected = await res.json();
  expected.byId = new Map(expected.events.map((e) => [e.id, e]));
  return expected;
}

/**
 * Compares the events a consume() summary delivered with the expected dataset.
 * @param {object} summary - from consume()
 * @param {object} expected - from fetchExpected()
 * @param {(e: {partition:number, seq:number}) => boolean} [want] - which expected events should have arrived (default all)
 * @returns {{ received: number, unique: number, duplicates: number, lost: number, unexpected: number,
 *             mismatches: number, orderViolations: number, partitionMismatches: number, firstProblems: string[] }}
 */
export function verifyEvents(summary, expected, want = () => true) {
  const seen = new Map();
  const problems = [];
  let duplicates = 0;
  let unexpected = 0;
  let mismatches = 0;
  let orderViolations = 0;
  let partitionMismatches = 0;
  const lastSeq = new Map();
  for (const [partition, id, js, py] of summary.events) {
    const exp = expected.byId.get(id);
    if (!exp || !want(exp)) {
      unexpected++;
      if (problems.length < 5) problems.push(`unexpected event ${id} (partition ${partition})`);
      continue;
    }
    if (seen.has(id)) {
      duplicates++;
      if (problems.length < 5) problems.push(`duplicate ${id}`);
    }
    seen.set(id, (seen.get(id) ?? 0) + 1);
    if (partition !== exp.partition) {
      partitionMismatches++;
      if (problems.length < 5) problems.push(`${id}: partition ${partition}, expected ${exp.partition}`);
    }
    // Exact text twice over: JSON.stringify of the parsed value vs the server's compact ensure_ascii=False dump, and
    // a Python-style re-serialisation vs the very bytes the server put on the wire.
    if (js !== exp.js || py !== exp.wire) {
      mismatches++;
      if (problems.length < 5) {
        const [a, b] = js !== exp.js ? [js, exp.js] : [py, exp.wire];
        let i = 0;
        while (i < a.length && a[i] === b[i]) i++;
        problems.push(`${id}: data differs at char ${i}: got ${JSON.stringify(a.slice(i, i + 40))}, expected ${JSON.stringify(b.slice(i, i + 40))}`);
      }
    }
    const prev = lastSeq.get(partition) ?? 0;
    if (exp.seq <= prev) orderViolations++;
    lastSeq.set(partition, exp.seq);
  }
  let lost = 0;
  let wanted = 0;
  for (const e of expected.events) {
    if (!want(e)) continue;
    wanted++;
    if (!seen.has(e.id)) {
      lost++;
      if (problems.length < 10) problems.push(`lost ${e.id}`);
    }
  }
  return {
    received: summary.events.length,
    wanted,
    unique: seen.size,
    duplicates,
    lost,
    unexpected,
    mismatches,
    orderViolations,
    partitionMismatches,
    firstProblems: problems,
  };
}

/** One line for the test log. */
export function describe(label, v, summary) {
  return `${label}: events=${v.received} unique=${v.unique} duplicates=${v.duplicates} lost=${v.lost} ` +
    `unexpected=${v.unexpected} mismatches=${v.mismatches} order=${v.orderViolations} batches=${summary.batches} ` +
    `retries=${summary.retries} cursors=${JSON.stringify(summary.cursors)} ${summary.ms} ms` +
    (summary.error ? ` error=${JSON.stringify(summary.error)}` : '');
}

/** Asserts a full, clean delivery of the wanted events. */
export function assertComplete(v, summary, expectedCount) {
  assert.deepEqual(v.firstProblems, [], 'problems');
  assert.equal(summary.error, null, 'no error');
  assert.equal(v.received, expectedCount, 'events received');
  assert.equal(v.unique, expectedCount, 'distinct events');
  assert.equal(v.duplicates, 0);
  assert.equal(v.lost, 0);
  assert.equal(v.unexpected, 0);
  assert.equal(v.mismatches, 0);
  assert.equal(v.orderViolations, 0);
  assert.equal(v.partitionMismatches, 0);
  assert.equal(summary.batchViolations, 0, 'every event covered by a checkpoint of its batch');
  assert.equal(summary.prototypeClean, true, 'Object.prototype untouched');
}

/** Polls fn() until it returns a truthy value or the time is up. */
export async function waitFor(fn, { timeoutMs = 5_000, intervalMs = 50 } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > end) return v;
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}

/** The expected cursors() after caught-up: every partition at its last cursor. */
export function lastCursors(expected) {
  return Object.fromEntries(Object.entries(expected.lastCursors).map(([p, c]) => [p, c]));
}

export const ALL_FIRST = (n) => Object.fromEntries(Array.from({ length: n }, (_, p) => [p, '_first']));

/**
 * The test that a runtime's entry point reads bodies with BYOB reads of at most BYOB_BYTES (js/src/reader/body.ts
 * `readBodiesInto`): every body read through a BYOB reader, every event once. `minLargest`: the largest read must be
 * above it (workerd's default reader gives ~4 KB). `run` and `server` as for registerFailureTests.
 */
export function registerByobTest(label, run, server, minLargest = 0) {
  test(`${label}: the body is read with BYOB reads of up to ${BYOB_BYTES / 1024} KiB`, async (t) => {
    const s = await run(server().feedUrl, { partitionCount: 4, pageSizeHint: 2000 }, { mode: 'batches', countReads: true });
    assertComplete(verifyEvents(s, await fetchExpected(server().base)), s, 10_000);
    const { modes, reads, bytes, largest } = s.reads;
    t.diagnostic(`${modes.length} bodies (${[...new Set(modes)]}), ${reads} reads of ${bytes} bytes, the largest ${largest}`);
    assert.ok(modes.length >= 2 && modes.every((m) => m === 'byob'), `reader modes: ${modes}`);
    assert.ok(largest > minLargest && largest <= BYOB_BYTES, `largest read ${largest}`);
  });
}

/**
 * The failure cases every runtime must pass the same way: a cut body, an n mismatch, and leaving the loop early.
 * `run(url, options, how)` consumes in that runtime and returns a consume() summary; `server()` gives the reference
 * server once the file's before() has started it.
 */
export function registerFailureTests(label, run, server) {
  test(`${label}: truncated body → truncated-body, cursors not past the last checkpoint`, async (t) => {
    const s = await run(`${server().base}/broken/v1`, { partitionCount: 4, pageSizeHint: 100, retry: false }, { mode: 'batches' });
    t.diagnostic(`${label} broken: events=${s.events.length} cursors=${JSON.stringify(s.cursors)} error=${JSON.stringify(s.error)}`);
    assert.equal(s.error?.name, 'FeedError');
    assert.equal(s.error?.code, 'truncated-body');
    for (const p of ['0', '1', '2', '3']) assert.ok(['_first', '7'].includes(s.cursors[p]), `cursor of ${p}: ${s.cursors[p]}`);
    assert.equal(s.events.filter(([, , js]) => JSON.parse(js).seq > 7).length, 0);
  });

  test(`${label}: n mismatch → http-status 400`, async (t) => {
    const s = await run(server().feedUrl, { partitionCount: 3 }, { mode: 'events' });
    t.diagnostic(`${label} n=3: error=${JSON.stringify(s.error)}`);
    assert.equal(s.error?.code, 'http-status');
    assert.equal(s.error?.status, 400);
  });

  test(`${label}: break early → the server sees the request go away`, async (t) => {
    const before = (await server().stats()).slow ?? { aborted: 0 };
    const s = await run(`${server().base}/slow/v1`, { partitionCount: 4, pageSizeHint: 1000 }, { mode: 'events', breakAfter: 5 });
    assert.equal(s.error, null);
    assert.equal(s.events.length, 5);
    const st = await waitFor(async () => {
      const x = (await server().stats()).slow;
      return x && x.aborted > before.aborted ? x : null;
    });
    t.diagnostic(`${label} break: ${s.ms} ms; server slow stats ${JSON.stringify(st)}`);
    assert.ok(st, 'the server saw the client go away');
  });
}
