// The kill harness around examples/workers-durable-objects: the example's Worker and Durable Object, plus
//  - `/abort`: resets the object (ctx.abort) at whatever moment the request arrives;
//  - mid-batch resets: with probability env.CHAOS_RATE, applyBatch writes half of the batch's effects into the open
//    storage transaction and then resets the object, so that transaction never commits;
//  - resets between the effects and the cursor write: the object's storage is wrapped so that, with probability
//    env.CURSOR_CHAOS_RATE, writing the cursor record (`feedpump:cursors:*`) first yields to the test (a service call,
//    which also lets every earlier write settle) and then resets the object. A store that commits the effects and the
//    cursor in one storage.transaction() loses that transaction whole; one that splits them into two transactions, or
//    writes the cursor outside the transaction, has committed the effects without the cursor, and the batch is
//    applied twice. The wrapper intercepts the cursor write wherever it happens (txn.put or storage.put).
// Each reset is reported to the test through the KILLS service binding before it happens.
import worker, { PartitionConsumer as ExampleConsumer } from '../../examples/workers-durable-objects/src/worker.js';

export default worker;

const CURSOR_PREFIX = 'feedpump:cursors:';
const isCursorWrite = (key) => typeof key === 'string' && key.startsWith(CURSOR_PREFIX);

/** `target` with some methods replaced; every other method bound to the target (workerd's objects need it). */
function wrap(target, overrides) {
  return new Proxy(target, {
    get(t, prop) {
      if (Object.hasOwn(overrides, prop)) return overrides[prop];
      const v = Reflect.get(t, prop, t);
      return typeof v === 'function' ? v.bind(t) : v;
    },
  });
}

export class PartitionConsumer extends ExampleConsumer {
  constructor(ctx, env) {
    super(ctx, env);
    const storage = ctx.storage;
    /** Maybe resets the object right before a cursor record is written (`where`: in or outside a transaction). */
    const beforeCursor = async (where) => {
      if (!(Math.random() < Number(env.CURSOR_CHAOS_RATE ?? 0))) return;
      await env.KILLS.fetch(`https://kills/before-cursor?where=${where}`);
      ctx.abort('chaos: reset between the effects and the cursor write');
      throw new Error('reset'); // not reached
    };
    const wrappedTxn = (txn) =>
      wrap(txn, {
        put: async (key, ...rest) => {
          if (isCursorWrite(key)) await beforeCursor('transaction');
          return txn.put(key, ...rest);
        },
      });
    const wrapped = wrap(storage, {
      transaction: (closure) => storage.transaction((txn) => closure(wrappedTxn(txn))),
      put: async (key, ...rest) => {
        if (isCursorWrite(key)) await beforeCursor('outside');
        return storage.put(key, ...rest);
      },
    });
    // The example builds its store from this.ctx.storage: hand it the wrapped storage.
    this.ctx = wrap(ctx, { storage: wrapped });
  }

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
