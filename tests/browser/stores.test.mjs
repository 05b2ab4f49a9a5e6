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

/** Runs `fn(arg)` in a fresh page (its own origin storage: a new context) and returns its result; the page throws nothing. */
async function inPage(fn, arg) {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    const errors = [];
    page.on('pageerror', (e) => errors.push(e.message));
    await page.goto(`${statics.url}/blank`);
    const result = await page.evaluate(fn, arg);
    assert.deepEqual(errors, []);
    return result;
  } finally {
    await context.close();
  }
}

/** Runs an export of idb-cases.js in a fresh page and returns its result. */
function inChromium(caseName) {
  return inPage(async (name) => {
    const api = await import('/dist/entrypoints/indexeddb.js');
    const cases = await import('/tests/browser/idb-cases.js');
    return cases[name]({ indexedDbStore: api.indexedDbStore, idbRequest: api.idbRequest, indexedDB, database: `case-${name}` });
  }, caseName);
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

test('chromium IndexedDB: a re-entrant save (a handler awaiting a save of its own key) ends: the inner save commits, the outer one is store-failed, nothing waits for ever', async (t) => {
  const r = await inChromium('reentrantSave');
  t.diagnostic(JSON.stringify(r));
  assert.deepEqual(r.inner, { ended: 'resolved' });
  assert.equal(r.outer.ended, 'rejected', JSON.stringify(r.outer));
  assert.equal(r.outer.code, 'store-failed', r.outer.message);
  assert.match(r.outer.message, /before the handler finished/);
  assert.deepEqual(r.after?.cursors, { 0: '1' }, "the inner save's record, not the outer's");
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

test('chromium IndexedDB: in an opaque origin (a sandboxed iframe), where IndexedDB is denied, load() rejects store-failed, not a bare SecurityError', async (t) => {
  // The store, bundled into one module (an opaque origin cannot import the static server's modules without CORS).
  const { buildSync } = await import('esbuild');
  const file = path.join(repoRoot, 'dist/entrypoints/indexeddb.js');
  const code = buildSync({ entryPoints: [file], bundle: true, format: 'esm', write: false, logLevel: 'silent' }).outputFiles[0].text;
  const r = await inPage(async (code) => {
    const probe = `
      const out = {};
      for (const [what, call] of [['load', (s) => s.load('k')], ['save', (s) => s.save('k', { identity: 'f', cursors: {}, savedAt: 0 })], ['db', (s) => s.db()]]) {
        try {
          await call(indexedDbStore({ database: 'opaque' }));
          out[what] = { resolved: true };
        } catch (e) {
          out[what] = { name: e?.name ?? null, code: e?.code ?? null, message: String(e?.message ?? e), cause: e?.cause?.name ?? null };
        }
      }
      parent.postMessage(out, '*');`;
    const iframe = document.createElement('iframe');
    iframe.sandbox = 'allow-scripts'; // no allow-same-origin: an opaque origin
    iframe.srcdoc = `<script type="module">${code.replace(/<\/script/gi, '<\\/script')}\n${probe}<\/script>`;
    const got = new Promise((resolve) => addEventListener('message', (ev) => resolve(ev.data), { once: true }));
    document.body.append(iframe);
    return got;
  }, code);
  t.diagnostic(JSON.stringify(r));
  for (const what of ['load', 'save', 'db']) {
    assert.equal(r[what].code, 'store-failed', `${what}: ${r[what].name} ${r[what].message}`);
    assert.equal(r[what].name, 'FeedError');
    assert.equal(r[what].cause, 'SecurityError', `${what}: the browser's refusal is the cause`);
  }
});

// An open that another connection blocks (a connection of the page or another tab that does not close on
// `versionchange`) waits for ever: consume() races the load of the cursors with its signal, so the call still ends when
// the signal fires (stop 26; before, it neither settled nor saw its signal).
test('chromium IndexedDB: consume() whose store open is blocked by another connection ends aborted when its signal fires', async (t) => {
  const context = await browser.newContext();
  try {
    const page = await context.newPage();
    await page.goto(`${statics.url}/blank`);
    const r = await page.evaluate(async () => {
      const { consume } = await import('/dist/entrypoints/web.js');
      const { indexedDbStore } = await import('/dist/entrypoints/indexeddb.js');
      // A connection to version 1 that ignores versionchange (an older tab, or the app's own).
      await new Promise((resolve, reject) => {
        const open = indexedDB.open('blocked-db', 1);
        open.onsuccess = () => resolve(open.result);
        open.onerror = () => reject(open.error);
      });
      const signal = AbortSignal.timeout(300);
      const run = consume(
        { url: 'http://127.0.0.1:9/feed', partitionCount: 1, signal },
        { store: indexedDbStore({ database: 'blocked-db', version: 2 }), key: 'k', handler: () => {}, tabs: false },
      ).then(
        () => 'resolved',
        (e) => `rejected ${e?.code ?? e?.name}`,
      );
      return Promise.race([run, new Promise((resolve) => setTimeout(() => resolve('still pending 3 s after the signal fired'), 3_300))]);
    });
    t.diagnostic(r);
    assert.equal(r, 'rejected aborted');
  } finally {
    await context.close();
  }
});
