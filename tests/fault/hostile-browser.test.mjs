// The hostile-reader cases in a browser (issue 15): headless Chromium loads dist/entrypoints/web.js from one loopback
// port and reads a scripted server on another. Before the fix, a body that is not a stream threw inside the wasm
// reader's background task and next() never settled; close() from onRetry trapped and the retries went on.
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startStaticServer } from '../../www/server.mjs';
import { launchChromium, repoRoot } from '../interop/helpers.mjs';
import { startScriptedServer } from './scripted-server.mjs';

const EVENTS = '{"partition":0,"data":1}\n{"partition":0,"cursor":"1"}\n';

// Each scenario resolves with how the iteration ended, or 'hung' when it did not settle within 5 s.
const PAGE = `<!doctype html><meta charset="utf-8"><title>feedpump hostile reader</title>
<script type="module">
  const api = await import('/dist/entrypoints/web.js');
  const responseLike = (body) => ({ ok: true, status: 200, statusText: 'OK', headers: new Headers(), body });
  async function drain(feed) {
    const events = [];
    try {
      for await (const ev of feed) events.push(ev.data);
      return { ended: 'cleanly', events };
    } catch (e) {
      return { ended: 'error', events, name: e?.name, code: e?.code, message: String(e?.message ?? e) };
    }
  }
  const scenarios = {
    'close-in-onRetry': (base) => {
      const feed = api.openFeed(base + '/busy', {
        partitionCount: 1, retry: { initialMs: 1, maxMs: 2, maxAttempts: 20 }, onRetry: () => feed.close(),
      });
      return drain(feed);
    },
    'close-in-signal-listener': (base) => {
      const ac = new AbortController();
      ac.signal.addEventListener('abort', () => feed.close());
      const feed = api.openFeed(base + '/busy', {
        partitionCount: 1, signal: ac.signal, retry: { initialMs: 1, maxMs: 2, maxAttempts: 20 }, onRetry: () => ac.abort(),
      });
      return drain(feed);
    },
    'string-body': (base) => drain(api.openFeed(base + '/events', { partitionCount: 1, fetch: async () => responseLike('{}') })),
    'locked-body': (base) => drain(api.openFeed(base + '/events', {
      partitionCount: 1,
      fetch: async (request) => { const r = await fetch(request); r.body.getReader(); return r; },
    })),
    'read-body': (base) => drain(api.openFeed(base + '/events', {
      partitionCount: 1,
      fetch: async (request) => { const r = await fetch(request); await r.text(); return r; },
    })),
    'bad-header': (base) => drain(api.openFeed(base + '/events', {
      partitionCount: 1, requestHeaders: () => ({ 'X-Token': 's3cr3t\\nInjected: 1' }),
    })),
  };
  window.scenario = (name, base) => Promise.race([
    scenarios[name](base),
    new Promise((resolve) => setTimeout(() => resolve({ ended: 'hung' }), 5000)),
  ]);
  window.ready = 'ok';
</script>`;

let server;
let statics;
let browser;
let page;
const pageErrors = [];

before(async () => {
  server = await startScriptedServer({
    '/busy': { status: 503, headers: { 'retry-after': '0' }, body: 'busy' },
    '/events': (url) => ({ body: url.searchParams.get('cursor0') === '_first' ? EVENTS : '' }),
  });
  statics = await startStaticServer({ mounts: { '/dist/': path.join(repoRoot, 'dist') }, pages: { '/': PAGE } });
  browser = await launchChromium();
  page = await browser.newPage();
  page.on('pageerror', (e) => pageErrors.push(e.message));
  await page.goto(`${statics.url}/`);
  await page.waitForFunction(() => window.ready === 'ok', null, { timeout: 30_000 });
});

after(async () => {
  await browser?.close().catch(() => {});
  await statics?.close();
  await server?.close();
});

async function scenario(name) {
  const from = server.requests.length;
  const errorsBefore = pageErrors.length;
  const outcome = await page.evaluate(([n, b]) => window.scenario(n, b), [name, server.base]);
  await new Promise((r) => setTimeout(r, 300)); // background work shows up now
  return { outcome, requests: server.requests.length - from, errors: pageErrors.slice(errorsBefore) };
}

for (const name of ['close-in-onRetry', 'close-in-signal-listener']) {
  test(`chromium: ${name}: ends cleanly, no trap, no request after close()`, async () => {
    const { outcome, requests, errors } = await scenario(name);
    assert.deepEqual(errors, []);
    assert.ok(outcome.ended === 'cleanly' || outcome.code === 'aborted', JSON.stringify(outcome));
    assert.equal(requests, 1);
  });
}

for (const [name, pattern] of [
  ['string-body', /not a ReadableStream or an async iterable \(it is a string\)/],
  ['locked-body', /cannot be read \(locked or already read\)/],
  ['read-body', /cannot be read \(locked or already read\)/],
]) {
  test(`chromium: ${name}: next() settles with bad-options, nothing uncaught`, async () => {
    const { outcome, errors } = await scenario(name);
    assert.deepEqual(errors, []);
    assert.equal(outcome.code, 'bad-options', JSON.stringify(outcome));
    assert.match(outcome.message, pattern);
  });
}

test('chromium: a header value with a newline is bad-header, named, not quoted, nothing sent', async () => {
  const { outcome, requests, errors } = await scenario('bad-header');
  assert.deepEqual(errors, []);
  assert.equal(outcome.code, 'bad-header', JSON.stringify(outcome));
  assert.match(outcome.message, /"X-Token" \(its value is not shown\)/);
  assert.ok(!outcome.message.includes('s3cr3t'));
  assert.equal(requests, 0);
});
