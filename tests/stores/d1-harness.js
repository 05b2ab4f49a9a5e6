// The Worker of tests/stores/kill-d1.test.mjs: examples/workers-d1's consumer, with two chaos points that tell the test
// runner (the KILLS service binding, which then never answers: the test SIGKILLs workerd meanwhile):
//  - `in-handler`: after the handler built its statements, before the store's batch;
//  - `in-batch`: while the batch (guard, effects, cursor row) is being committed: the kill is sent as the batch
//    starts, and lands before, during or after its commit.
// Only the env.CHAOS_AT-th point reached by this workerd process (1-based; 0: never) tells the runner: a point counted
// by progress, not a probability, bounds how far a run gets, so the feed always outlasts the test's kills.
import { catchUp, effects, status } from '../../examples/workers-d1/src/consumer.js';

let points = 0;
const chance = (env) => ++points === Number(env.CHAOS_AT ?? 0);

/** env with DB.batch() wrapped: maybe tell the runner while the batch is in flight. */
function chaosEnv(env) {
  const db = env.DB;
  const DB = new Proxy(db, {
    get(target, prop) {
      if (prop === 'batch') {
        return (statements) => {
          const committing = target.batch(statements);
          if (chance(env)) void env.KILLS.fetch('https://kills/in-batch');
          return committing;
        };
      }
      const v = Reflect.get(target, prop, target);
      return typeof v === 'function' ? v.bind(target) : v;
    },
  });
  return { ...env, DB };
}

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === '/status') return Response.json(await status(env));
    const chaotic = chaosEnv(env);
    const result = await catchUp(chaotic, async (batch, db) => {
      const statements = effects(batch, db);
      if (chance(env)) await env.KILLS.fetch('https://kills/in-handler'); // never answers
      return statements;
    });
    return Response.json({ events: result.events, batches: result.batches, caughtUp: result.caughtUp });
  },
};
