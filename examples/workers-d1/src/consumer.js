// The consumer of src/worker.js, in its own module: workerd accepts only handlers and classes as exports of the main
// module. d1Store() takes the handler's statements and commits them with the cursors in one D1 batch().
import { consume } from 'feedpump';
import { d1Store } from 'feedpump/d1';

/** Bounds one run: each batch is one D1 batch() of (events + 2) statements, and each statement counts as a query. */
const BATCHES_PER_RUN = 20;

const SCHEMA = 'CREATE TABLE IF NOT EXISTS feed_events (partition INTEGER NOT NULL, event_id TEXT NOT NULL, data TEXT NOT NULL)';

/** A batch's effects: one INSERT per event (no unique key on purpose: an event applied twice would show). */
export function effects(batch, db) {
  const insert = db.prepare('INSERT INTO feed_events (partition, event_id, data) VALUES (?, ?, ?)');
  return batch.events.map((e) => insert.bind(e.partition, String(e.data?.id ?? ''), JSON.stringify(e.data)));
}

/** One catch-up run; `handler` defaults to {@link effects}. */
export async function catchUp(env, handler = effects) {
  await env.DB.prepare(SCHEMA).run();
  return consume(
    { url: env.FEED_URL, partitionCount: 4, pageSizeHint: 20 },
    {
      store: d1Store(env.DB),
      key: 'example-orders',
      handler: (batch, db) => handler(batch, db),
      maxBatches: BATCHES_PER_RUN,
    },
  );
}

export async function status(env) {
  await env.DB.prepare(SCHEMA).run();
  const counts = await env.DB.prepare('SELECT count(*) AS applied, count(DISTINCT partition || \':\' || event_id) AS distinct_events FROM feed_events').first();
  const record = await d1Store(env.DB).load('example-orders');
  return { applied: counts.applied, distinct: counts.distinct_events, cursors: record?.cursors ?? {} };
}
