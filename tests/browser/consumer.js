// Runs in the test page (tests/browser/kill.test.mjs): consume() the reference feed into an IndexedDB projection.
// Every event is ADDED under an auto-increment key, so an event applied twice shows up as two rows, not as one
// overwritten row.
import { consume } from '/dist/entrypoints/web.js';
import { indexedDbStore, idbRequest } from '/dist/entrypoints/indexeddb.js';

export const KEY = 'ref-feed';

export function projectionStore() {
  return indexedDbStore({
    database: 'feedpump-kill-test',
    userStores: ['projection'],
    upgrade: (db) => db.createObjectStore('projection', { autoIncrement: true }),
  });
}

/**
 * `fetch` after a random delay of up to `delayMs`: spreads a run over time, so random kills land in every phase (a
 * request in flight, a body being read, a transaction open or committing). The delay is in the fetch because the
 * handler cannot wait: awaiting anything but a request of its transaction lets IndexedDB commit it early.
 */
export const slowFetch = (delayMs) => (request) =>
  new Promise((r) => setTimeout(r, Math.random() * delayMs)).then(() => fetch(request));

/** Consumes until caught up; `window.commits` counts committed batches (the test kills the page at random moments). */
export async function run(feedUrl, { pageSizeHint, delayMs }) {
  const store = projectionStore();
  window.commits = 0;
  return consume(
    { url: feedUrl, partitionCount: 4, pageSizeHint, fetch: slowFetch(delayMs) },
    {
      store,
      key: KEY,
      handler: (batch, tx) => {
        const projection = tx.objectStore('projection');
        for (const { partition, data } of batch.events) projection.add({ id: data.id, partition, seq: data.seq });
      },
      onCommit: () => void window.commits++,
    },
  );
}

/** Everything committed: the projection's ids in key order and the cursor record. */
export async function snapshot() {
  const store = projectionStore();
  const db = await store.db();
  const tx = db.transaction(['projection'], 'readonly');
  const rows = await idbRequest(tx.objectStore('projection').getAll());
  const record = await store.load(KEY);
  store.close();
  return { ids: rows.map((r) => r.id), cursors: record?.cursors ?? null, identity: record?.identity ?? null };
}
