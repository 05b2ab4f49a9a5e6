// The IndexedDB store against Chromium's real IndexedDB (headless Debian Chromium). The Node unit tests run the same
// cases on fake-indexeddb (tests/js/unit/stores.test.mjs); this is the real part.
// Run: node --test --test-timeout=120000 --test-force-exit tests/browser/stores.test.mjs

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import path from 'node:path';
import { startStaticServer } from '../../www/server.mjs';
import { repoRoot, launchChromium } from '../interop/helpers.mjs';

let statics;
let browser;
before(async () => {
  statics = await startStaticServer({
    mounts: { '/dist/': path.join(repoRoot, 'dist'), '/tests/browser/': path.join(repoRoot, 'tests/browser') },
    pages: { '/blank': '<!doctype html><meta charset="utf-8"><title>stores</title>' },
  });
  browser = await launchChromium();
});
after(async () => {
  await browser?.close().catch(() => {});
  await statics?.close();
});

/** Runs an export of idb-cases.js in a fresh page (its own origin storage: a new context) and returns its result. */
async function inChromium(caseName) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${statics.url}/blank`);
    const result = await page.evaluate(async (name) => {
      const api = await import('/dist/entrypoints/indexeddb.js');
      const cases = await import('/tests/browser/idb-cases.js');
      return cases[name]({ indexedDbStore: api.indexedDbStore, idbRequest: api.idbRequest, indexedDB, database: `case-${name}` });
    }, caseName);
    assert.deepEqual(errors, []);
    return result;
  } finally {
    await context.close();
  }
}

test("chromium IndexedDB: a request failing after the cursor put aborts the transaction → save() rejects, load() unchanged", async (t) => {
  const r = await inChromium('requestFailsAfterCursorPut');
  t.diagnostic(JSON.stringify(r));
  assert.ok(r.failingQueued && r.cursorPutSucceeded, 'the cursor put succeeded before the failing request');
  assert.equal(r.saveRejected, true, 'save() rejected');
  assert.equal(r.code, 'store-failed', r.message);
  assert.match(r.message, /ConstraintError/);
  assert.deepEqual(r.after, r.before, 'load() still gives the record before the save');
  assert.deepEqual(r.ids, ['e1'], "the batch's effects were rolled back");
});

test('chromium IndexedDB: an upgrade that throws → load() rejects store-failed with the throw as its cause, nothing uncaught', async (t) => {
  const r = await inChromium('upgradeThrows');
  t.diagnostic(JSON.stringify(r));
  assert.equal(r.rejected, true, 'load() rejected');
  assert.equal(r.code, 'store-failed', `${r.name}: ${r.message}`);
  assert.match(r.message, /upgrade/);
  assert.match(r.message, /schema migration failed/);
  assert.equal(r.causeIsThrow, true, "the upgrade's throw is the cause");
  assert.equal(r.afterwards, null, 'a sound upgrade opens the database afterwards');
});
