// postgresStore in workerd: node-postgres over workerd's TCP sockets (nodejs_compat), as it runs behind Hyperdrive.
// Each request runs one bounded catch-up step (maxBatches) and reports what PostgreSQL holds.
import pg from 'pg';
import { consume } from 'feedpump';
import { postgresStore } from 'feedpump/postgres';

export default {
  async fetch(request, env) {
    // One pool per request: Workers do not keep connections between requests (Hyperdrive pools them).
    const pool = new pg.Pool({ connectionString: env.DATABASE_URL, max: 1 });
    try {
      await pool.query('CREATE TABLE IF NOT EXISTS worker_events (partition integer NOT NULL, event_id text NOT NULL)');
      const result = await consume({ url: env.FEED_URL, partitionCount: 4, pageSizeHint: 500 }, {
        store: postgresStore(pool),
        key: 'worker',
        handler: async (batch, client) => {
          const rows = batch.events.map((_, i) => `($${2 * i + 1}, $${2 * i + 2})`).join(', ');
          await client.query(`INSERT INTO worker_events (partition, event_id) VALUES ${rows}`, batch.events.flatMap((e) => [e.partition, String(e.data.id)]));
        },
        maxBatches: 10,
      });
      const { rows } = await pool.query('SELECT count(*)::int AS applied, count(DISTINCT event_id)::int AS distinct_events FROM worker_events');
      return Response.json({ events: result.events, caughtUp: result.caughtUp, cursors: result.cursors, ...rows[0] });
    } finally {
      await pool.end();
    }
  },
};
