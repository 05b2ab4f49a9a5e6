// A Worker with a Durable Object that consumes a feed exactly once into its storage.
import { consume, openFeed } from 'feedpump';
import { durableObjectStore } from 'feedpump/durable-object';

interface Env {
  FEED_URL: string;
  CONSUMER: DurableObjectNamespace;
}

export class Consumer implements DurableObject {
  constructor(private readonly ctx: DurableObjectState, private readonly env: Env) {}

  async fetch(): Promise<Response> {
    const store = durableObjectStore(this.ctx.storage);
    const result = await consume<{ amount: number }, DurableObjectTransaction>(
      { url: this.env.FEED_URL, partitionCount: 4, partitions: [0] },
      {
        store,
        key: 'orders',
        handler: async (batch, txn) => {
          const total = ((await txn.get<number>('total')) ?? 0) + batch.events.reduce((s, e) => s + e.data.amount, 0);
          await txn.put('total', total);
        },
      },
    );
    return Response.json(result);
  }
}

export default {
  async fetch(request: Request, env: Env): Promise<Response> {
    if (new URL(request.url).pathname === '/peek') {
      const feed = openFeed(env.FEED_URL, { partitionCount: 4, fetch: (r) => fetch(r) });
      let n = 0;
      for await (const _ of feed) n++;
      return Response.json({ n });
    }
    return env.CONSUMER.get(env.CONSUMER.idFromName('p0')).fetch(request);
  },
} satisfies ExportedHandler<Env>;
