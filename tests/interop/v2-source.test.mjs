// The FeedAPI v2 source (js/src/v2.ts, V2Source) over real HTTP on 127.0.0.1 against the v2 reference server
// (tests/v2_server/server.mjs): close() at each point (inside onRetry, inside fetch, during a live wait), retries of
// discovery and of 409s (attempts, delays, Retry-After, the backoff reset by a success), live polling, a turn's page
// limit, and which cursor a partition starts from. The server's request log proves what was (not) requested; each
// test is fast (the whole file runs in a few seconds: StrykerJS runs it once per mutant of v2.ts).
import assert from 'node:assert/strict';
import { after, before, beforeEach, test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';
import { startV2Server } from '../v2_server/server.mjs';

let server;
before(async () => {
  server = await startV2Server();
});
after(async () => {
  await server.close();
});
beforeEach(async () => {
  await control({ reset: true });
});

async function control(body) {
  const r = await fetch(`${server.url}/_control`, { method: 'POST', body: JSON.stringify(body) });
  assert.equal(r.status, 200, `control ${JSON.stringify(body)}`);
  return r.json();
}
const pathOf = (r) => new URL(r.url, 'http://x').pathname;
const requests = (path) => server.state.log.filter((r) => pathOf(r) === path);
const discoveries = (feed = 'feed') => requests(`/${feed}`).length;
const eventRequests = (feed = 'feed') => requests(`/${feed}/events`);
const drain = async (feed) => {
  for await (const _ of feed);
};

test('close() from onRetry while discovery is retried: the iteration ends quietly, no further request', async () => {
  for (const protocol of ['v2', 'auto']) {
    await control({ reset: true });
    await control({ feed: 'feed', discovery: { status: 503, times: 3 } });
    const retries = [];
    const feed = api.openFeed(`${server.url}/feed`, {
      protocol,
      retry: { initialMs: 1, maxMs: 1, maxAttempts: 2 },
      onRetry: (r) => {
        retries.push(r.error.status);
        feed.close();
      },
      signal: AbortSignal.timeout(10_000),
    });
    await drain(feed);
    assert.deepEqual(retries, [503], `${protocol}: one retry announced, then closed`);
    assert.equal(discoveries(), 1, `${protocol}: no discovery after close()`);
    assert.equal(eventRequests().length, 0, protocol);
  }
});

test('close() from fetch while discovery is in flight, and it fails: no retry, no onRetry, no further request', async () => {
  await control({ feed: 'feed', discovery: { status: 503, times: 3 } });
  let retries = 0;
  const feed = api.openFeed(`${server.url}/feed`, {
    protocol: 'v2',
    retry: { initialMs: 1, maxMs: 1, maxAttempts: 2 },
    onRetry: () => retries++,
    fetch: (request) => {
      feed.close();
      return fetch(request);
    },
    signal: AbortSignal.timeout(10_000),
  });
  await drain(feed);
  assert.equal(retries, 0);
  assert.equal(discoveries(), 1);
  assert.equal(eventRequests().length, 0);
});
