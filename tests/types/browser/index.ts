// A browser app: IndexedDB cursors, consume() across tabs, live signals.
import { consume, openFeed, type FeedSignal } from 'feedpump';
import { idbRequest, indexedDbStore } from 'feedpump/indexeddb';

const store = indexedDbStore({
  database: 'app',
  userStores: ['orders'],
  upgrade: (db) => {
    if (!db.objectStoreNames.contains('orders')) db.createObjectStore('orders');
  },
});
const controller = new AbortController();
await consume<{ id: string }, IDBTransaction>(
  { url: new URL('/feed/v1', location.href), partitionCount: 4, signal: controller.signal, live: {} },
  {
    store,
    key: 'orders',
    tabs: true,
    onRole: (role) => console.log(role),
    handler: (batch, tx) => {
      for (const e of batch.events) tx.objectStore('orders').put(e.data, e.data.id);
    },
  },
);
const db = await store.db();
console.log(await idbRequest(db.transaction('orders').objectStore('orders').count()));

const feed = openFeed('/feed/v1', { partitionCount: 4, live: { minIntervalMs: 500 } });
for await (const batch of feed.batches()) {
  const signal: FeedSignal | undefined = batch.signal;
  console.log(signal, batch.events.length);
}
const it = feed.events();
const first = await it.next();
if (!first.done) console.log(first.value.partition);
