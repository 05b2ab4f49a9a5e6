// A Node consumer: events, batches, a memory store, consume(), live options, auth headers and error codes.
import { consume, createRegistry, isFeedError, memoryStore, openFeed, type FeedEvent, type FeedOptions } from 'feedpump';

const options: FeedOptions = {
  partitionCount: 2,
  pageSizeHint: 100,
  requestHeaders: () => ({ authorization: 'Bearer x' }),
  signal: AbortSignal.timeout(1000),
};
const feed = openFeed<{ id: string }>('http://127.0.0.1:8400/feed/v1', options);
try {
  for await (const event of feed) {
    const e: FeedEvent<{ id: string }> = event;
    console.log(e.partition, e.data.id);
  }
  for await (const batch of feed.batches()) console.log(batch.events.length, batch.checkpoints.length);
} catch (e) {
  if (isFeedError(e)) console.error(e.code satisfies string);
}

const store = memoryStore();
const result = await consume(
  { url: 'http://127.0.0.1:8400/feed/v1', partitionCount: 2 },
  { store, key: 'orders', handler: (batch, tx) => tx.set('count', batch.events.length) },
);
console.log(result.events, result.caughtUp);

const registry = createRegistry().on('OrderCreated', (ev) => console.log(ev.type));
await registry.handle(openFeed('http://127.0.0.1:8400/feed/v1', { partitionCount: 1 }));

// A custom store over a storage API that answers null for nothing stored (consume() reads null as undefined).
const saved = new Map<string, string>();
const custom: import('feedpump').CursorStore<Map<string, string>> = {
  load: async (key) => {
    const text = saved.get(key) ?? null;
    return text === null ? null : (JSON.parse(text) as import('feedpump').CursorRecord);
  },
  save: async (key, record, effects) => {
    effects?.(saved);
    saved.set(key, JSON.stringify(record));
  },
};
await consume({ url: 'http://127.0.0.1:8400/feed/v1', partitionCount: 2 }, { store: custom, key: 'k', handler: () => {} });
