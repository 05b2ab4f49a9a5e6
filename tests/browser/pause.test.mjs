// consume({ pauseWhenHidden }) in real Chromium: a live feed on the scripted server (tests/fault/scripted-server.mjs)
// polls every 20 ms; while the page is hidden (document.visibilityState patched to 'hidden' and a visibilitychange
// dispatched, as the browser does) the server sees no request, and after the page is shown again polling resumes.
// The same page without the option keeps polling while hidden (the emulation alone stops nothing).
import assert from 'node:assert/strict';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { startStaticServer } from '../../www/server.mjs';
import { launchChromium, repoRoot } from '../interop/helpers.mjs';
import { startScriptedServer } from '../fault/scripted-server.mjs';

const PAGE = `<!doctype html><meta charset="utf-8"><script type="module">
  import { consume, memoryStore } from '/dist/entrypoints/web.js';
  const q = new URLSearchParams(location.search);
  window.setHidden = (hidden) => {
    Object.defineProperty(document, 'visibilityState', { configurable: true, get: () => (hidden ? 'hidden' : 'visible') });
    document.dispatchEvent(new Event('visibilitychange'));
  };
  const ac = new AbortController();
  window.stop = () => ac.abort();
  window.events = 0;
  consume(
    { url: q.get('feed'), partitionCount: 1, live: { minIntervalMs: 20, maxIntervalMs: 20 }, signal: ac.signal },
    { store: memoryStore(), key: 'k', tabs: false, pauseWhenHidden: q.get('pause') === '1', handler: (b) => { window.events += b.events.length; } },
  ).then((r) => { window.done = r; }, (e) => { window.failed = String(e); });
</script>`;

let feedServer;
let statics;
let browser;
before(async () => {
  feedServer = await startScriptedServer({
    '/live': (url) => ({
      body: url.searchParams.get('cursor0') === '_first' ? '{"partition":0,"data":1}\n{"partition":0,"cursor":"1"}\n' : '',
    }),
  });
  statics = await startStaticServer({ mounts: { '/dist/': path.join(repoRoot, 'dist') }, pages: { '/pause': PAGE } });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close().catch(() => {});
  await statics?.close();
  await feedServer?.close();
});

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const polls = () => feedServer.requests.filter((r) => r.url.pathname === '/live').length;

async function waitFor(cond, what, ms = 10_000) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

async function run(pause) {
  const page = await browser.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(e.message));
  try {
    const start = polls();
    await page.goto(`${statics.url}/pause?pause=${pause ? 1 : 0}&feed=${encodeURIComponent(`${feedServer.base}/live`)}`);
    await waitFor(() => polls() - start >= 5, 'five polls while visible');
    await page.evaluate(() => window.setHidden(true));
    await sleep(100); // a request in flight when hidden completes
    const hiddenFrom = polls();
    await sleep(600); // 30 poll intervals
    const whileHidden = polls() - hiddenFrom;
    await page.evaluate(() => window.setHidden(false));
    const shownFrom = polls();
    await waitFor(() => polls() - shownFrom >= 3, 'polls after the page is shown again');
    const state = await page.evaluate(() => ({ events: window.events, failed: window.failed ?? null }));
    await page.evaluate(() => window.stop());
    assert.equal(state.failed, null);
    assert.equal(state.events, 1);
    assert.deepEqual(errors, []);
    return whileHidden;
  } finally {
    await page.close().catch(() => {});
  }
}

test('chromium: pauseWhenHidden stops a live feed polling while the page is hidden and resumes on visibilitychange', async () => {
  const paused = await run(true);
  const unpaused = await run(false);
  console.log(`requests while hidden for 600 ms: ${paused} with pauseWhenHidden, ${unpaused} without`);
  assert.equal(paused, 0, 'no request while hidden');
  assert.ok(unpaused >= 5, `without the option the feed keeps polling (${unpaused})`);
});
