// Exactly-once consumption of a ZeroEventHub feed into Cloudflare D1. D1 has no interactive transactions, so the
// handler does not write: it RETURNS the prepared statements of a batch's effects, and d1Store() commits them in ONE
// atomic batch() together with the batch's cursors (and a guard that fails the batch if another run committed first).
// A Worker that is killed at any moment leaves both or neither; the next run resumes from the committed cursors.
//
//   POST /consume   catch up now (at most BATCHES_PER_RUN batches; the cron trigger does the same every minute)
//   GET  /status    events applied, distinct events, the stored cursors
//
// Bindings (wrangler.toml): FEED_URL (var), DB (D1 database).
import { catchUp, status } from './consumer.js';

export default {
  async fetch(request, env) {
    const { pathname } = new URL(request.url);
    if (pathname === '/consume' && request.method === 'POST') {
      const result = await catchUp(env);
      return Response.json({ events: result.events, batches: result.batches, caughtUp: result.caughtUp, cursors: result.cursors });
    }
    if (pathname === '/status') return Response.json(await status(env));
    return new Response('not found', { status: 404 });
  },
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(catchUp(env));
  },
};
