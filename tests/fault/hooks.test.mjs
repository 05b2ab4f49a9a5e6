// The caller's requestHeaders hook failing (issue #12: "unknown throws from user hooks named as such, not network"):
// thrown or rejected, on the first request or a later page, over FeedAPI v1 (the wasm reader) and v2 (discovery and
// its pages). Each is a 'hook-failed' FeedError whose cause is what the hook threw, not retried, and no request is sent
// with the headers it did not give. Real HTTP on 127.0.0.1 against the built dist/.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as api from '../../dist/entrypoints/node.js';
import { startScriptedServer } from './scripted-server.mjs';
import { startV2Server } from '../v2_server/server.mjs';

const PAGES = 5;
let v1;
let v2;
before(async () => {
  v1 = await startScriptedServer({
    '/pages': (url) => {
      const c = url.searchParams.get('cursor0');
      const n = c === '_first' ? 0 : Number(c);
      return { body: n >= PAGES ? '' : `{"partition":0,"data":${n}}\n{"partition":0,"cursor":"${n + 1}"}\n` };
    },
  });
  v2 = await startV2Server();
});
after(async () => {
  await Promise.all([v1?.close(), v2?.close()]);
});

class TokenStoreDown extends Error {
  name = 'TokenStoreDown';
}

const HOW = {
  throws: (e) => () => {
    throw e;
  },
  rejects: (e) => async () => {
    await new Promise((r) => setTimeout(r, 1));
    throw e;
  },
};

for (const protocol of ['v1', 'v2']) {
  for (const [how, wrap] of Object.entries(HOW)) {
    for (const [when, okCalls] of [
      ['on the first request', 0],
      ['on a later request', 2],
    ]) {
      test(`${protocol}: a requestHeaders hook that ${how} ${when} is hook-failed (cause kept, not retried, nothing sent without its headers)`, async () => {
        const boom = new TokenStoreDown('the token store is down');
        let calls = 0;
        const fail = wrap(boom);
        const requestHeaders = (context) => (++calls > okCalls ? fail(context) : { authorization: 'Bearer t' });
        let retries = 0;
        const target = protocol === 'v1' ? [`${v1.base}/pages`, { partitionCount: 1 }] : [`${v2.url}/feed`, { protocol: 'v2' }];
        const feed = api.openFeed(target[0], { ...target[1], pageSizeHint: 1, requestHeaders, onRetry: () => retries++ });
        const events = [];
        await assert.rejects(
          (async () => {
            for await (const ev of feed) events.push(ev);
          })(),
          (e) => {
            assert.ok(api.isFeedError(e, 'hook-failed'), `${e?.code}: ${e?.message}`);
            assert.match(e.message, /^hook-failed: requestHeaders failed \(TokenStoreDown; its error is the cause\)/);
            assert.ok(!e.message.includes('token store'), 'the hook\'s own message is not quoted');
            assert.equal(e.cause, boom);
            return true;
          },
        );
        assert.equal(retries, 0, 'not retried');
        assert.equal(calls, okCalls + 1, 'the hook was not asked again');
      });
    }
  }
}

test('a FeedError the hook throws is wrapped too (only the transport\'s own bad-header / bad-options pass as they are)', async () => {
  const own = new api.FeedError('network', 'from the hook');
  const feed = api.openFeed(`${v1.base}/pages`, { partitionCount: 1, requestHeaders: () => { throw own; } });
  await assert.rejects(feed.batches().next(), (e) => api.isFeedError(e, 'hook-failed') && e.cause === own);
  const bad = api.openFeed(`${v1.base}/pages`, { partitionCount: 1, requestHeaders: () => 'not headers' });
  await assert.rejects(bad.batches().next(), (e) => api.isFeedError(e, 'bad-options'));
});
