// consume() under cancellation and failure at every await point, against the PyPI reference server (FeedAPI v1, its
// ragged feed) and the v2 test server, into memoryStore and sqliteStore: the signal aborted at the k-th point (and the
// point finished after it: a save in flight commits), or the point throwing; the signal already aborted; aborted in
// the reader's retry backoff, in onHandlerError's, and in live mode's wait. Each case checks the FeedError code, that
// nothing of the case's runs after consume() settled, that no timer, body or fetch is left, no unhandled rejection,
// and, restarted until caught up, every event applied exactly once (tests/fault/abort-points.mjs). The cases run in
// child processes that must exit on their own (tests/fault/abort-points-child.mjs).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { after, before, test } from 'node:test';
import { consume, memoryStore, isFeedError } from '../../dist/entrypoints/node.js';
import { startRefServer } from '../interop/helpers.mjs';
import { startV2Server } from '../v2_server/server.mjs';

const CHILD = fileURLToPath(new URL('./abort-points-child.mjs', import.meta.url));
let ref;
let v2;
before(async () => {
  [ref, v2] = await Promise.all([startRefServer(), startV2Server()]);
});
after(async () => {
  await Promise.all([ref?.stop(), v2?.close()]);
});

/** Runs the child for `store`; resolves to its case lines once it exited on its own (else it is killed: a failure). */
function child(store, perMode) {
  const c = spawn(process.execPath, [CHILD, `${ref.base}/ragged/v1`, v2.url, store, String(perMode)], { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  c.stdout.setEncoding('utf8').on('data', (s) => (out += s));
  c.stderr.setEncoding('utf8').on('data', (s) => (err += s));
  let done = false;
  let killed = false;
  const exited = new Promise((resolve) => c.on('exit', (code, signal) => resolve({ code, signal })));
  // Once it printed its last line it must exit within 5 s: anything consume() left behind would hold it.
  const watch = setInterval(() => {
    if (!done && out.includes('"done":true')) {
      done = true;
      setTimeout(() => {
        if (c.exitCode === null) {
          killed = true;
          c.kill('SIGKILL');
        }
      }, 5_000).unref();
    }
  }, 50);
  return exited.then(({ code, signal }) => {
    clearInterval(watch);
    const lines = out.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    return { code, signal, killed, err, lines };
  });
}

for (const store of ['memory', 'sqlite']) {
  test(`every await point, ${store} store: the FeedError of the failure, nothing left running or open, each event applied once after restarts`, async () => {
    const r = await child(store, 8);
    assert.equal(r.killed, false, 'the child did not exit on its own after its last case: something was left behind');
    assert.equal(r.code, 0, `the child failed: ${r.err}`);
    assert.ok(r.lines.at(-1)?.done, 'every case ran');
    const failed = r.lines.filter((l) => l.problems?.length).map((l) => `${l.name}: ${l.problems.join('; ')}`);
    assert.deepEqual(failed, [], `${failed.length} of ${r.lines.length - 1} cases failed`);
    assert.ok(r.lines.length > 80, `${r.lines.length} cases`);
  });
}

test("consume() rejects only with FeedErrors: a throw or rejection of the feed's own hooks (onCaughtUp, a filter's typeFrom; onFellBehind takes the same path) is hook-failed, its error the cause", async () => {
  const boom = new Error('the hook failed');
  const source = { url: `${ref.base}/ragged/v1`, partitionCount: 4, partitions: [2], pageSizeHint: 1000 };
  const hooks = {
    'onCaughtUp throws': { onCaughtUp: () => { throw boom; } },
    'onCaughtUp rejects': { onCaughtUp: async () => { throw boom; } },
    'typeFrom throws': { filter: { include: ['feedpump.test.v1'], typeFrom: () => { throw boom; } } },
  };
  for (const [name, extra] of Object.entries(hooks)) {
    const store = memoryStore();
    let events = 0;
    const run = consume({ ...source, ...extra }, { store, key: 'k', handler: (b) => void (events += b.events.length) });
    await assert.rejects(run, (e) => {
      assert.ok(isFeedError(e, 'hook-failed'), `${name}: rejected with ${e?.name}: ${e?.code ?? ''} ${e?.message}`);
      assert.equal(e.cause, boom, name);
      assert.match(e.message, /^hook-failed: a feed hook failed \(Error; its error is the cause\)$/, name);
      return true;
    });
    // What was committed before stays: the next run goes on after it.
    const next = await consume(source, { store, key: 'k', handler: (b) => void (events += b.events.length) });
    assert.equal(events, 2500, `${name}: every event once`);
    assert.equal(next.caughtUp, true);
  }
});
