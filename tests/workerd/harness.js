// The kill harness around examples/workers-durable-objects: the example's Worker and Durable Object, plus
//  - `/abort`: resets the object (ctx.abort) at whatever moment the request arrives;
//  - mid-batch resets: with probability env.CHAOS_RATE, applyBatch writes half of the batch's effects into the open
//    storage transaction and then resets the object, so that transaction never commits. Each one is reported to the
//    test through the KILLS service binding before it happens.
import worker, { PartitionConsumer as ExampleConsumer } from '../../examples/workers-durable-objects/src/worker.js';

export default worker;

export class PartitionConsumer extends ExampleConsumer {
  async fetch(request) {
    if (new URL(request.url).pathname === '/abort') {
      this.ctx.abort('the test resets this object');
      return new Response('aborted'); // not reached
    }
    return super.fetch(request);
  }

  async applyBatch(batch, txn) {
    if (Math.random() < Number(this.env.CHAOS_RATE ?? 0)) {
      const half = Math.ceil(batch.events.length / 2);
      await super.applyBatch({ ...batch, events: batch.events.slice(0, half) }, txn);
      await this.env.KILLS.fetch(`https://kills/mid-batch?events=${batch.events.length}&written=${half}`);
      this.ctx.abort('chaos: reset in the middle of a batch');
      throw new Error('reset'); // not reached: abort() ends the object
    }
    return super.applyBatch(batch, txn);
  }
}
