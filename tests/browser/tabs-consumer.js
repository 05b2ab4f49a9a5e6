// Runs in each page of tests/browser/tabs.test.mjs: consume() the reference feed into an IndexedDB projection in tabs
// mode (the default in browsers), as every tab of an app would. Every event is ADDED under an auto-increment key with
// the tab that applied it, so an event applied twice shows up as two rows; every committed batch also adds a row to
// `commits` in the same transaction, which gives the order in which tabs committed.
import { consume } from '/dist/entrypoints/web.js';
import { indexedDbStore, idbRequest } from '/dist/entrypoints/indexeddb.js';
import { slowFetch } from './consumer.js';

export const KEY = 'ref-feed';

export function projectionStore() {
  return indexedDbStore({
    database: 'feedpump-tabs-test',
    userStores: ['projection', 'commits'],
    upgrade: (db) => {
      db.createObjectStore('projection', { autoIncrement: true });
      db.createObjectStore('commits', { autoIncrement: true });
    },
  });
}

/**
 * Consumes until caught up. `report(message)` tells the test about role changes and remote commits as they happen
 * (the page may be closed at any moment, so nothing is kept for the end); `window.tabState` is the same in short.
 */
export async function run(feedUrl, { tab, pageSizeHint, delayMs, report }) {
  const store = projectionStore();
  const state = (window.tabState = { tab, role: null, commits: 0, remote: 0 });
  return consume(
    { url: feedUrl, partitionCount: 4, pageSizeHint, fetch: slowFetch(delayMs) },
    {
      store,
      key: KEY,
      handler: (batch, tx) => {
        const projection = tx.objectStore('projection');
        for (const { partition, data } of batch.events) projection.add({ id: data.id, partition, seq: data.seq, tab });
        tx.objectStore('commits').add({ tab, events: batch.events.length, at: Date.now() });
      },
      onRole: (role) => {
        state.role = role;
        report({ type: 'role', tab, role, at: Date.now() });
      },
      onCommit: ({ batch, remote }) => {
        if (!remote) {
          state.commits++;
          return;
        }
        state.remote++;
        report({ type: 'remote', tab, ids: batch.events.map((e) => e.data.id), at: Date.now() });
      },
    },
  );
}

/** Everything committed: the projection (key order), the commit log (commit order) and the cursor record. */
export async function snapshot() {
  const store = projectionStore();
  const db = await store.db();
  const tx = db.transaction(['projection', 'commits'], 'readonly');
  const rows = await idbRequest(tx.objectStore('projection').getAll());
  const commits = await idbRequest(tx.objectStore('commits').getAll());
  const record = await store.load(KEY);
  store.close();
  return { ids: rows.map((r) => r.id), commits, cursors: record?.cursors ?? null, identity: record?.identity ?? null };
}
