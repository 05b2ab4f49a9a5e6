// Several base URLs of a FeedAPI v2 feed: [primary, replica], two v2 reference servers (tests/v2_server/server.mjs,
// each its own process) serving the same feed with the same cursors but different tokens (the replica's is rotated at
// start, so a token of one server gets 409 on the other). The primary is killed (SIGKILL) mid-run and restarted on its
// port later. The feed must rediscover on the replica (its token, its partition list) and go on from the delivered
// cursors, then back on the primary after its cool-down: every event exactly once, every partition's cursor monotone,
// and no events request ever sent with another server's token (no 409 on either server). Once with openFeed() and an
// exactly-once consumer, once with consume() (protocol 'auto', which finds v2) into the memory store, whose record
// keeps the first URL's identity.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, afterEach, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as api from '../../dist/entrypoints/node.js';

const SERVER = fileURLToPath(new URL('../v2_server/server.mjs', import.meta.url));
const COOLDOWN_MS = 300;
const children = new Set();

/** Starts the v2 server in its own process on 127.0.0.1 (port 0: a free one); `kill()` is a SIGKILL. */
function startV2Process(port = 0) {
  const child = spawn(process.execPath, [SERVER, '--port', String(port)], { stdio: ['pipe', 'pipe', 'inherit'] });
  children.add(child);
  const exited = new Promise((resolve) => child.once('exit', resolve));
  return new Promise((resolve, reject) => {
    let out = '';
    child.once('exit', (code, signal) => reject(new Error(`the v2 server exited early (${code ?? signal})`)));
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (s) => {
      out += s;
      const m = /LISTENING (\d+)\n/.exec(out);
      if (!m) return;
      const url = `http://127.0.0.1:${m[1]}`;
      resolve({
        port: Number(m[1]),
        url,
        kill: async () => {
          if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
          await exited;
          children.delete(child);
        },
      });
    });
  });
}

after(async () => {
  for (const child of children) child.kill('SIGKILL');
});

async function getJson(url, init) {
  const r = await fetch(url, init);
  assert.equal(r.status, 200, url);
  return r.json();
}

/** Two servers of the same feed; the replica's token rotated, so the two tokens differ. */
async function startPair() {
  const [primary, replica] = await Promise.all([startV2Process(), startV2Process()]);
  const { token } = await getJson(`${replica.url}/_control`, { method: 'POST', body: JSON.stringify({ rotateToken: true }) });
  const expected = await getJson(`${primary.url}/expected?feed=feed`);
  const other = await getJson(`${replica.url}/expected?feed=feed`);
  assert.notEqual(token, expected.token, 'the two servers hand out different tokens');
  assert.deepEqual(other.partitions, expected.partitions, 'the two servers hold the same feed');
  const ids = Object.values(expected.partitions).flatMap((list) => list.map((e) => idOf(e)));
  return { primary, replica, ids };
}

let pair;
afterEach(async () => {
  await pair?.primary.kill();
  await pair?.replica.kill();
  pair = undefined;
});

/** The position of a cursor of the v2 server (opaque to clients; decoded here only to check monotony). */
const seqOf = (cursor) => Number(Buffer.from(cursor, 'base64url').toString().split('|')[2]);
const idOf = (e) => (typeof e.data === 'string' ? JSON.parse(e.data) : e.data).id;
const portOf = (url) => new URL(url).port;
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * What a server was asked: discoveries, events requests, and the events requests that were refused (a 409: a token
 * of another server) or carried a token other than `token`.
 */
async function requestsOf(server) {
  const log = await getJson(`${server.url}/_requests`);
  const { token } = await getJson(`${server.url}/feed`); // after the log: this discovery is ours
  const events = log.filter((r) => r.url.startsWith('/feed/events'));
  return {
    discoveries: log.filter((r) => /^\/feed\/?$/.test(r.url)).length,
    events: events.length,
    refused: events.filter((r) => r.status !== 200).length,
    otherToken: events.filter((r) => new URL(r.url, 'http://x').searchParams.get('token') !== token).length,
  };
}

/**
 * Kills the primary at the batch `killAt` and restarts it on its port at `restartAt`; once it is back, waits out its
 * cool-down once, so that the rest of the run can go back to it. `phase()` says where the run is.
 */
function chaos(killAt, restartAt) {
  let phase = 'up';
  let restarted;
  let waited = false;
  return {
    phase: () => phase,
    async step(n) {
      if (n === killAt) {
        phase = 'down';
        await pair.primary.kill(); // killed mid-run: the next request to it fails
      }
      if (n === restartAt) {
        phase = 'restarting';
        restarted = startV2Process(pair.primary.port).then((s) => {
          pair.primary = s;
          phase = 'back';
        });
      }
      if (n > restartAt && !waited) {
        waited = true;
        await restarted;
        await sleep(COOLDOWN_MS + 50);
      }
    },
    done: () => restarted,
  };
}

test('v2 [primary, replica]: the primary killed and restarted mid-run → rediscovery on each URL, every event exactly once', async () => {
  pair = await startPair();
  const { primary, replica, ids } = pair;
  const primaryPort = String(primary.port);
  const db = { ids: [], cursors: {} };
  const pagesFrom = new Map();
  const failed = [];
  let nonMonotone = 0;
  let batches = 0;
  const run = chaos(12, 30);
  const feed = api.openFeed([`${primary.url}/feed`, `${replica.url}/feed`], {
    protocol: 'v2',
    pageSizeHint: 10,
    retry: { initialMs: 5, maxMs: 50, maxAttempts: 20 },
    failoverCooldownMs: COOLDOWN_MS,
    onResponse: (r) => {
      if (!r.url.includes('/events')) return;
      const key = `${portOf(r.url)} ${run.phase()}`;
      pagesFrom.set(key, (pagesFrom.get(key) ?? 0) + 1);
    },
    onRetry: ({ error, url }) => failed.push(`${error.code} ${portOf(url)} ${run.phase()}`),
  });
  for await (const batch of feed.batches()) {
    // The "transaction": effects and cursors together.
    for (const c of batch.checkpoints) {
      if (db.cursors[c.partition] !== undefined && seqOf(c.cursor) < seqOf(db.cursors[c.partition])) nonMonotone++;
      db.cursors[c.partition] = c.cursor;
    }
    db.ids.push(...batch.events.map(idOf));
    await run.step(++batches);
  }
  await run.done();
  const unique = new Set(db.ids);
  const onReplica = await requestsOf(replica);
  const onPrimary = await requestsOf(pair.primary); // since its restart
  console.log(
    `v2 openFeed: events ${db.ids.length}, unique ${unique.size} of ${ids.length}, duplicates ${db.ids.length - unique.size},`,
    `lost ${ids.filter((id) => !unique.has(id)).length}; non-monotone cursors ${nonMonotone}; batches ${batches};`,
    `pages by port and phase ${JSON.stringify(Object.fromEntries(pagesFrom))};`,
    `replica ${JSON.stringify(onReplica)}; primary after its restart ${JSON.stringify(onPrimary)};`,
    `retries ${failed.length}: ${JSON.stringify([...new Set(failed)])}`,
  );
  assert.equal(db.ids.length, ids.length, 'no duplicates');
  assert.deepEqual([...unique].sort(), [...ids].sort(), 'every event once');
  assert.equal(nonMonotone, 0, 'cursors monotone');
  const r = portOf(replica.url);
  assert.ok((pagesFrom.get(`${r} down`) ?? 0) > 0, 'the replica served while the primary was down');
  assert.equal(pagesFrom.get(`${primaryPort} down`) ?? 0, 0, 'no page from the killed primary');
  assert.ok((pagesFrom.get(`${primaryPort} back`) ?? 0) > 0, 'the primary served again after its restart and cool-down');
  assert.ok(onReplica.discoveries > 0 && onPrimary.discoveries > 0, 'discovery on each URL');
  assert.deepEqual([onReplica.refused, onReplica.otherToken, onPrimary.refused, onPrimary.otherToken], [0, 0, 0, 0], 'each server saw only its own token');
  assert.ok(failed.some((f) => f.startsWith(`network ${primaryPort}`)), 'onRetry named the failed URL');
  assert.ok(failed.every((f) => f.includes(` ${primaryPort} `)), 'only the primary failed');
});

test('v2 (auto) consume() with [primary, replica] into the memory store: the primary killed and restarted → every event once, the first URL\'s identity', async () => {
  pair = await startPair();
  const { primary, replica, ids } = pair;
  const store = api.memoryStore();
  const seen = [];
  let nonMonotone = 0;
  let batches = 0;
  const last = {};
  const run = chaos(10, 25);
  const source = {
    url: [`${primary.url}/feed`, `${replica.url}/feed`], // no partitionCount: protocol 'auto', which finds v2
    pageSizeHint: 10,
    retry: { initialMs: 5, maxMs: 50, maxAttempts: 20 },
    failoverCooldownMs: COOLDOWN_MS,
  };
  const result = await api.consume(source, {
    store,
    key: 'orders',
    handler: async (batch) => {
      seen.push(...batch.events.map(idOf));
      for (const c of batch.checkpoints) {
        if (last[c.partition] !== undefined && seqOf(c.cursor) < seqOf(last[c.partition])) nonMonotone++;
        last[c.partition] = c.cursor;
      }
      await run.step(++batches);
    },
  });
  await run.done();
  const record = await store.load('orders');
  const unique = new Set(seen);
  const onReplica = await requestsOf(replica);
  const onPrimary = await requestsOf(pair.primary);
  console.log(
    `v2 consume: events ${seen.length} (result ${result.events}), unique ${unique.size} of ${ids.length},`,
    `duplicates ${seen.length - unique.size}, lost ${ids.filter((id) => !unique.has(id)).length}; non-monotone cursors ${nonMonotone};`,
    `batches ${result.batches}; identity ${JSON.stringify(record?.identity)}; replica ${JSON.stringify(onReplica)};`,
    `primary after its restart ${JSON.stringify(onPrimary)}`,
  );
  assert.equal(seen.length, ids.length, 'no duplicates');
  assert.deepEqual([...unique].sort(), [...ids].sort(), 'every event once');
  assert.equal(nonMonotone, 0, 'cursors monotone');
  assert.ok(onReplica.events > 0, 'the replica served');
  assert.ok(onPrimary.events > 0, 'the primary served again after its restart');
  assert.deepEqual([onReplica.refused, onReplica.otherToken, onPrimary.refused, onPrimary.otherToken], [0, 0, 0, 0], 'each server saw only its own token');
  // The stored cursors are the feed's, whichever URL served: the identity is the first URL's (as for one URL) …
  assert.equal(record.identity, `http://127.0.0.1:${primary.port}/feed v2`);
  assert.deepEqual(record.cursors, last);
  // … so the same feed resumes from them, even served by the replica alone, and has nothing left to read.
  await pair.primary.kill();
  const again = await api.consume({ ...source, url: [`${primary.url}/feed`, `${replica.url}/feed`] }, { store, key: 'orders', handler: () => undefined });
  assert.deepEqual([again.start, again.missing, again.events], ['stored', undefined, 0]);
});

test('v2 [primary, replica]: a primary whose discovery answers 503, or stalls → discovered and read on the replica; onRetry names the primary', async () => {
  const { startV2Server } = await import('../v2_server/server.mjs');
  for (const [fault, code] of [[{ status: 503, times: 1e9 }, 'http-status'], [{ stall: true }, 'stalled-body']]) {
    const [primary, replica] = await Promise.all([startV2Server(), startV2Server()]);
    try {
      await getJson(`${primary.url}/_control`, { method: 'POST', body: JSON.stringify({ discovery: fault }) });
      const expected = await getJson(`${replica.url}/expected?feed=feed`);
      const ids = Object.values(expected.partitions).flatMap((list) => list.map((e) => idOf(e)));
      const failed = [];
      const seen = [];
      const feed = api.openFeed([`${primary.url}/feed`, `${replica.url}/feed`], {
        protocol: 'v2',
        pageSizeHint: 100,
        idleTimeoutMs: 300,
        retry: { initialMs: 5, maxMs: 50, maxAttempts: 10 },
        failoverCooldownMs: 60_000,
        onRetry: ({ error, url }) => failed.push(`${error.code} ${portOf(url)}`),
      });
      for await (const batch of feed.batches()) seen.push(...batch.events.map(idOf));
      console.log(`v2 discovery fault ${JSON.stringify(fault)}: events ${seen.length}, unique ${new Set(seen).size} of ${ids.length}; retries ${JSON.stringify(failed)}`);
      assert.equal(seen.length, ids.length, 'no duplicates');
      assert.deepEqual([...new Set(seen)].sort(), [...ids].sort(), 'every event once');
      assert.deepEqual(failed, [`${code} ${primary.port}`], 'one failure, the primary\'s; the replica then serves');
    } finally {
      await primary.close();
      await replica.close();
    }
  }
});

test('v2 [primary behind a fault proxy, replica]: cut, 5xx, 429 and stalled pages and discoveries on the primary → every event once, cursors monotone', async () => {
  const { startV2Server } = await import('../v2_server/server.mjs');
  const { startFaultProxy } = await import('../fault/proxy.mjs');
  const [primary, replica] = await Promise.all([startV2Server(), startV2Server()]);
  const proxy = await startFaultProxy({ upstream: primary.url, seed: 20261129, faultRate: 0.5, stallMs: 5_000 });
  try {
    await getJson(`${replica.url}/_control`, { method: 'POST', body: JSON.stringify({ rotateToken: true }) });
    const expected = await getJson(`${replica.url}/expected?feed=feed`);
    const ids = Object.values(expected.partitions).flatMap((list) => list.map((e) => idOf(e)));
    const failed = new Map();
    const seen = [];
    const cursors = {};
    let nonMonotone = 0;
    const feed = api.openFeed([`${proxy.url}/feed`, `${replica.url}/feed`], {
      protocol: 'v2',
      pageSizeHint: 10,
      idleTimeoutMs: 100,
      retry: { initialMs: 1, maxMs: 10, maxAttempts: 20 },
      failoverCooldownMs: 20,
      onRetry: ({ error, url }) => {
        const key = `${error.code}${error.status ? ` ${error.status}` : ''} ${portOf(url)}`;
        failed.set(key, (failed.get(key) ?? 0) + 1);
      },
    });
    for await (const batch of feed.batches()) {
      for (const c of batch.checkpoints) {
        if (cursors[c.partition] !== undefined && seqOf(c.cursor) < seqOf(cursors[c.partition])) nonMonotone++;
        cursors[c.partition] = c.cursor;
      }
      seen.push(...batch.events.map(idOf));
    }
    const onReplica = await requestsOf(replica);
    const onPrimary = await requestsOf(primary);
    console.log(
      `v2 fault proxy: events ${seen.length}, unique ${new Set(seen).size} of ${ids.length}; non-monotone ${nonMonotone};`,
      `proxy ${JSON.stringify(proxy.stats)}; retries ${JSON.stringify(Object.fromEntries(failed))};`,
      `replica ${JSON.stringify(onReplica)}; primary ${JSON.stringify(onPrimary)}`,
    );
    assert.equal(seen.length, ids.length, 'no duplicates');
    assert.deepEqual([...new Set(seen)].sort(), [...ids].sort(), 'every event once');
    assert.equal(nonMonotone, 0, 'cursors monotone');
    assert.ok([...failed.keys()].every((k) => k.endsWith(` ${portOf(proxy.url)}`)), 'only the primary failed');
    assert.ok(onReplica.events > 0 && onReplica.discoveries > 0 && onPrimary.events > 0, 'both served');
    assert.deepEqual([onReplica.refused, onReplica.otherToken, onPrimary.refused, onPrimary.otherToken], [0, 0, 0, 0], 'each server saw only its own token');
  } finally {
    await proxy.close();
    await primary.close();
    await replica.close();
  }
});

test('v2 [primary, replica], a cool-down shorter than a discovery: each discovery is followed by a turn on its URL, so the feed moves on', async () => {
  const http = await import('node:http');
  const { startV2Server } = await import('../v2_server/server.mjs');
  /** A forwarding proxy on 127.0.0.1: `answer(req)` may answer a request itself (a status) or delay it (ms). */
  const front = async (upstream, answer) => {
    const server = http.createServer(async (req, res) => {
      const { status, delayMs } = answer(req);
      if (status) return void res.writeHead(status).end('injected');
      if (delayMs) await sleep(delayMs);
      const r = await fetch(`${upstream}${req.url}`);
      res.writeHead(r.status, { 'content-type': r.headers.get('content-type') ?? 'text/plain' });
      res.end(Buffer.from(await r.arrayBuffer()));
    });
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    return { url: `http://127.0.0.1:${server.address().port}`, close: () => new Promise((resolve) => (server.closeAllConnections(), server.close(resolve))) };
  };
  const [primary, replica] = await Promise.all([startV2Server(), startV2Server()]);
  // The primary discovers fine but fails every events request (a 503: its URL cools down for 40 ms, longer than the
  // retry's wait); the replica's discovery takes 80 ms, longer than that cool-down.
  const p = await front(primary.url, (req) => (req.url.startsWith('/feed/events') ? { status: 503 } : {}));
  const r = await front(replica.url, (req) => (/^\/feed\/?$/.test(req.url) ? { delayMs: 80 } : {}));
  try {
    // One partition: the feed flips between the URLs at every turn (the primary's cool-down is always over by the end
    // of a turn), so it is read until every event came, not until caught up (each rediscovery queues it again).
    const expected = await getJson(`${replica.url}/expected?feed=feed`);
    const ids = expected.partitions['2'].map((e) => idOf(e));
    const seen = [];
    let retries = 0;
    const feed = api.openFeed([`${p.url}/feed`, `${r.url}/feed`], {
      protocol: 'v2',
      partitions: [2],
      pageSizeHint: 100,
      retry: { initialMs: 1, maxMs: 5, maxAttempts: 6 },
      failoverCooldownMs: 40,
      onRetry: () => retries++,
    });
    for await (const batch of feed.batches()) {
      seen.push(...batch.events.map(idOf));
      if (seen.length >= ids.length) break;
    }
    const onReplica = await requestsOf(replica);
    console.log(`v2 short cool-down: events ${seen.length}, unique ${new Set(seen).size} of ${ids.length}; retries ${retries}; replica ${JSON.stringify(onReplica)}`);
    assert.equal(seen.length, ids.length, 'no duplicates');
    assert.deepEqual([...new Set(seen)].sort(), [...ids].sort(), 'every event once');
  } finally {
    await p.close();
    await r.close();
    await primary.close();
    await replica.close();
  }
});
