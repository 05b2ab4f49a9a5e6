// Exactly-once consumption of a 4-partition ZeroEventHub feed on Cloudflare Workers: ONE Durable Object per partition.
// Each object reads only its partition (`partitions: [p]`: only `cursor<p>` is sent), catches up in alarm-driven
// steps, and commits each batch's effects and its cursor in one Durable Object storage transaction
// (durableObjectStore). An object that is reset, evicted or crashes mid-batch loses nothing and repeats nothing: the
// next alarm resumes from the committed cursor.
//
//   POST /start   arms every partition's alarm (idempotent; also re-arms after a reset)
//   GET  /status  per partition: cursor, events applied, events applied more than once, alarm state
//
// Bindings (wrangler.toml): FEED_URL (var), CONSUMER (Durable Object namespace of class PartitionConsumer).
import { DurableObject } from 'cloudflare:workers';
import { consume } from 'feedpump';
import { durableObjectStore } from 'feedpump/durable-object';

// Not exported: workerd accepts only handlers (and classes) as exports of the main module.
const PARTITIONS = 4;
/** Batches per alarm: bounds one alarm's run time; the next alarm continues at once. */
const BATCHES_PER_ALARM = 25;
/** After catching up, poll again this often. */
const POLL_MS = 60_000;
/** After a failure (network, store), try again after this long. */
const RETRY_MS = 1_000;

export class PartitionConsumer extends DurableObject {
  async fetch(request) {
    const url = new URL(request.url);
    if (url.pathname === '/start') {
      const partition = Number(url.searchParams.get('partition'));
      await this.ctx.storage.put('partition', partition);
      await this.ctx.storage.setAlarm(Date.now());
      return Response.json({ partition, armed: true });
    }
    if (url.pathname === '/status') return Response.json(await this.status());
    return new Response('not found', { status: 404 });
  }

  /** One step of catch-up: up to BATCHES_PER_ALARM batches, then the next alarm. Never throws (no alarm retry storm). */
  async alarm() {
    const partition = await this.ctx.storage.get('partition');
    if (partition === undefined) return;
    let next = RETRY_MS;
    try {
      const result = await consume(
        { url: this.env.FEED_URL, partitionCount: PARTITIONS, partitions: [partition], pageSizeHint: 100 },
        {
          store: durableObjectStore(this.ctx.storage),
          key: 'feed',
          handler: (batch, txn) => this.applyBatch(batch, txn),
          maxBatches: BATCHES_PER_ALARM,
          // A wiped object lost its effects together with its cursor: rebuild from the start.
          onMissingCursors: 'first',
          onHandlerError: ({ attempt }) => (attempt < 3 ? 'retry' : 'stop'),
        },
      );
      next = result.caughtUp ? POLL_MS : 0;
      await this.ctx.storage.put('caughtUp', result.caughtUp);
    } catch (e) {
      console.error(`partition ${partition}: ${e?.code ?? ''} ${e?.message ?? e}`);
    }
    await this.ctx.storage.setAlarm(Date.now() + next);
  }

  /**
   * The effects of a batch, written through the storage transaction `txn` (so they commit with the cursor). Here: one
   * record per event with how often it was applied, and a running count.
   */
  async applyBatch(batch, txn) {
    for (let i = 0; i < batch.events.length; i += 128) {
      const events = batch.events.slice(i, i + 128); // get/put take at most 128 keys at a time
      const keys = events.map((e) => `event:${e.data.id}`);
      const before = await txn.get(keys);
      const writes = {};
      events.forEach((e, j) => {
        writes[keys[j]] = { seq: e.data.seq, applied: (before.get(keys[j])?.applied ?? 0) + 1 };
      });
      await txn.put(writes);
    }
    await txn.put('applied', ((await txn.get('applied')) ?? 0) + batch.events.length);
  }

  async status() {
    const storage = this.ctx.storage;
    const events = await storage.list({ prefix: 'event:' });
    let twice = 0;
    for (const v of events.values()) if (v.applied !== 1) twice++;
    const cursors = (await storage.get('feedpump:cursors:feed'))?.cursors ?? {};
    return {
      partition: await storage.get('partition'),
      cursors,
      applied: (await storage.get('applied')) ?? 0,
      distinct: events.size,
      appliedMoreThanOnce: twice,
      caughtUp: (await storage.get('caughtUp')) ?? false,
      alarm: await storage.getAlarm(),
    };
  }
}

const consumer = (env, partition) => env.CONSUMER.get(env.CONSUMER.idFromName(`partition-${partition}`));

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    const all = Array.from({ length: PARTITIONS }, (_, p) => p);
    if (pathname === '/start' && request.method === 'POST') {
      await Promise.all(all.map((p) => consumer(env, p).fetch(`https://consumer/start?partition=${p}`)));
      return Response.json({ started: all });
    }
    if (pathname === '/status') {
      return Response.json(await Promise.all(all.map(async (p) => (await consumer(env, p).fetch('https://consumer/status')).json())));
    }
    return new Response('POST /start, GET /status\n', { status: 404 });
  },
};
