// A Node service that consumes a ZeroEventHub feed exactly once into PostgreSQL: each batch's effects (here: the
// events, one row each, in `feed_events`) and its cursors (in `feedpump_cursors`) are written in ONE transaction by
// postgresStore(), so a crash at any moment leaves both or neither. Run it twice: the second run resumes from the
// stored cursors and applies nothing that was already applied.
//
//   DATABASE_URL=postgresql://user@host/db node consume.mjs [feedUrl] [partitionCount] [--live]
//   defaults: http://127.0.0.1:8400/feed/v1 (the demo's reference feed), 4
//
// --live keeps following the feed after catching up, until SIGINT/SIGTERM (what a service does).
import pg from 'pg';
import { consume, isFeedError } from 'feedpump';
import { postgresStore } from 'feedpump/postgres';

const args = process.argv.slice(2).filter((a) => a !== '--live');
const live = process.argv.includes('--live');
const [url = 'http://127.0.0.1:8400/feed/v1', n = '4'] = args;
if (!process.env.DATABASE_URL) {
  console.error('set DATABASE_URL (e.g. postgresql://postgres@127.0.0.1:5432/postgres)');
  process.exit(2);
}

const pool = new pg.Pool({ connectionString: process.env.DATABASE_URL, max: 4 });
// Your own schema (a migration in a real service). The cursor table is created by the store on first use.
await pool.query(`CREATE TABLE IF NOT EXISTS feed_events (
  partition integer NOT NULL,
  event_id  text    NOT NULL,
  data      json    NOT NULL -- json, not jsonb: jsonb refuses the \\u0000 escape that JSON allows
)`);

const stop = new AbortController();
for (const signal of ['SIGINT', 'SIGTERM']) process.once(signal, () => stop.abort());

let result;
try {
  result = await consume(
    { url, partitionCount: Number(n), pageSizeHint: 1000, live, signal: stop.signal },
    {
      store: postgresStore(pool),
      key: 'example-orders',
      // Runs inside the transaction: write through `client`, the transaction's connection (never pool.query here).
      handler: async (batch, client) => {
        if (batch.events.length === 0) return;
        const rows = batch.events.map((_, i) => `($${3 * i + 1}, $${3 * i + 2}, $${3 * i + 3})`).join(', ');
        const values = batch.events.flatMap((e) => [e.partition, String(e.data?.id ?? ''), JSON.stringify(e.data)]);
        await client.query(`INSERT INTO feed_events (partition, event_id, data) VALUES ${rows}`, values);
      },
      onHandlerError: ({ attempt }) => (attempt < 3 ? 'retry' : 'stop'),
    },
  );
} catch (e) {
  if (!(isFeedError(e, 'aborted') && stop.signal.aborted)) {
    console.error(isFeedError(e) ? `${e.code}: ${e.message}` : e);
    process.exitCode = 1;
  }
}

const { rows } = await pool.query('SELECT count(*)::int AS total, count(DISTINCT (partition, event_id))::int AS distinct_events FROM feed_events');
console.log(`feed ${url} (${n} partitions) into PostgreSQL`);
if (result) console.log(`this run: ${result.events} events in ${result.batches} batches, started from ${result.start} cursors`);
console.log(`applied in total: ${rows[0].total} events (${rows[0].distinct_events} distinct)`);
if (result) console.log(`cursors: ${JSON.stringify(result.cursors)}`);
if (result?.caughtUp) console.log('caught up');
await pool.end();
