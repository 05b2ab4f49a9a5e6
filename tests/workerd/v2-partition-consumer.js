// The README's "one Durable Object per partition" pattern over FeedAPI v2 (tests/workerd/v2-partitions.test.mjs):
// each object consumes `protocol: 'v2', partitions: [p]` (p and its split children) in alarm-driven steps, effects and
// cursors in one storage transaction.
import { DurableObject } from 'cloudflare:workers';
import { consume } from 'feedpump';
import { durableObjectStore } from 'feedpump/durable-object';

export class PartitionConsumer extends DurableObject {
  async alarm() {
    const partition = await this.ctx.storage.get('partition');
    if (partition === undefined) return;
    const result = await consume(
      { url: this.env.FEED_URL, protocol: 'v2', partitions: [partition], pageSizeHint: 100 },
      {
        store: durableObjectStore(this.ctx.storage),
        key: 'v2',
        handler: async (batch, txn) => {
          for (let i = 0; i < batch.events.length; i += 128) {
            const events = batch.events.slice(i, i + 128);
            const keys = events.map((e) => `event:${(typeof e.data === 'string' ? JSON.parse(e.data) : e.data).id}`);
            const before = await txn.get(keys);
            const writes = {};
            keys.forEach((k) => (writes[k] = (before.get(k) ?? 0) + 1));
            await txn.put(writes);
          }
        },
        maxBatches: 10,
        onMissingCursors: 'first',
      },
    ).catch((e) => ({ caughtUp: false, error: `${e?.code}: ${e?.message}` }));
    await this.ctx.storage.put('caughtUp', result.caughtUp);
    if (result.error) await this.ctx.storage.put('error', result.error);
    await this.ctx.storage.setAlarm(Date.now() + (result.caughtUp ? 60_000 : result.error ? 200 : 0));
  }

  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/start') {
      await this.ctx.storage.put('partition', Number(url.searchParams.get('partition')));
      await this.ctx.storage.put('caughtUp', false);
      await this.ctx.storage.setAlarm(Date.now());
      return Response.json({ armed: true });
    }
    const events = await this.ctx.storage.list({ prefix: 'event:' });
    const byPartition = {};
    let twice = 0;
    for (const [key, applied] of events) {
      const p = key.slice('event:'.length).split('-')[0];
      byPartition[p] = (byPartition[p] ?? 0) + 1;
      if (applied !== 1) twice++;
    }
    return Response.json({
      partition: await this.ctx.storage.get('partition'),
      byPartition,
      twice,
      caughtUp: (await this.ctx.storage.get('caughtUp')) ?? false,
      error: await this.ctx.storage.get('error'),
      cursors: (await this.ctx.storage.get('feedpump:cursors:v2'))?.cursors ?? {},
    });
  }
}

export default {
  // POST /start?partition=p arms the object of partition p; GET /?partition=p reports it.
  async fetch(request, env) {
    const partition = new URL(request.url).searchParams.get('partition');
    return env.CONSUMER.get(env.CONSUMER.idFromName(`partition-${partition}`)).fetch(request);
  },
};
