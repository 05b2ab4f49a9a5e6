// One harness for the Chromium tests that consume the reference feed in pages of one browser context (the kill test,
// the tabs test): the reference server and what it serves, a static server for dist/ and tests/browser/, headless
// Chromium, the page templates that run a consumer module, page logs, the snapshot of what the consumers stored, and
// the exactly-once count against the server's events.

import path from 'node:path';
import { startStaticServer } from '../../www/server.mjs';
import { startRefServer, fetchExpected, repoRoot, launchChromium } from '../interop/helpers.mjs';

/**
 * A page that imports `module` (under /tests/browser/) and calls its `run(feed, options)`, the options built in the
 * page from the query string by `options` (JavaScript source of an expression over `q`, the URLSearchParams, and
 * `report`, a function posting to the test through `window.feedpumpReport` when the test exposes it). It sets
 * `window.done` to what `run` resolves to, or `window.failed` to the error's stack.
 */
export function runPage(title, module, options) {
  return `<!doctype html><meta charset="utf-8"><title>${title}</title>
<script type="module">
  const q = new URLSearchParams(location.search);
  const report = (m) => (window.feedpumpReport ? window.feedpumpReport(m).catch(() => {}) : undefined);
  import('/tests/browser/${module}')
    .then((c) => c.run(q.get('feed'), ${options}))
    .then((r) => { window.done = r; }, (e) => { window.failed = String((e && e.stack) || e); });
</script>`;
}

/** A page that sets `window.snap` to what `module`'s `snapshot()` resolves to (or `window.failed`). */
function snapshotPage(module) {
  return `<!doctype html><meta charset="utf-8"><script type="module">
  import('/tests/browser/${module}').then((c) => c.snapshot()).then((s) => { window.snap = s; }, (e) => { window.failed = String(e); });
</script>`;
}

/**
 * Starts the reference server, a static server with `pages` (plus `/snapshot` for `module` and `/blank`) and Chromium.
 * `stop()` prints the page log (when anything was logged) and stops all three.
 */
export async function startRig({ module, pages }) {
  const server = await startRefServer();
  const rig = { server, expected: undefined, statics: undefined, browser: undefined, pageLog: [] };
  try {
    rig.expected = await fetchExpected(server.base);
    rig.statics = await startStaticServer({
      mounts: { '/dist/': path.join(repoRoot, 'dist'), '/tests/browser/': path.join(repoRoot, 'tests/browser') },
      pages: { ...pages, '/snapshot': snapshotPage(module), '/blank': '<!doctype html><title>blank</title>' },
    });
    rig.browser = await launchChromium();
  } catch (e) {
    await stopRig(rig);
    throw e;
  }
  return rig;
}

export async function stopRig(rig) {
  if (rig === undefined) return;
  if (rig.pageLog.length) console.log(`page log:\n  ${rig.pageLog.slice(0, 30).join('\n  ')}`);
  await rig.browser?.close().catch(() => {});
  await rig.statics?.close();
  await rig.server?.stop();
}

/** Logs the page's uncaught errors into the rig's page log, labelled. */
export function watch(rig, page, label = '') {
  page.on('pageerror', (e) => rig.pageLog.push(`${label}pageerror: ${e.message}`));
  return page;
}

/** What the consumers stored, read by the consumer module's `snapshot()` in a new page of `context`. */
export async function snapshot(rig, context) {
  const page = watch(rig, await context.newPage(), 'snapshot ');
  await page.goto(`${rig.statics.url}/snapshot`);
  await page.waitForFunction(() => window.snap || window.failed, null, { timeout: 30_000 });
  const snap = await page.evaluate(() => window.snap ?? window.failed);
  await page.close();
  if (typeof snap !== 'object' || snap === null) throw new Error(`snapshot: ${snap}`);
  return snap;
}

/** Exactly once: the stored event ids against the server's events. */
export function exactlyOnce(ids, expected) {
  const counts = new Map();
  for (const id of ids) counts.set(id, (counts.get(id) ?? 0) + 1);
  return {
    counts,
    duplicates: ids.length - counts.size,
    losses: expected.events.filter((e) => !counts.has(e.id)).length,
    unexpected: [...counts.keys()].filter((id) => !expected.byId.has(id)).length,
  };
}
