// The consumer process of tests/stores/kill.test.mjs: consume() the reference feed into PostgreSQL or SQLite until
// caught up, every event APPENDED to `applied` (no unique key: an event applied twice is two rows). The test SIGKILLs
// this process at random moments. The handler has two chaos points per batch, inside the open transaction: after half
// of the batch's events are written, and after all of them (right before the store writes the cursor row). At the
// CHAOS_AT-th point of the run (1-based; 0: never) it tells the test ("in-tx mid-batch" / "in-tx before-cursor" on
// stdout) and waits to be killed there. A point counted by progress, not a probability, bounds how far a run gets,
// so a fast machine cannot finish the feed before the test has made its kills.
//
//   node tests/stores/kill-consumer.mjs postgres <feedUrl> <connectionString>
//   node tests/stores/kill-consumer.mjs sqlite <feedUrl> <file>
// Prints "done <ConsumeResult JSON>" when caught up.
import { consume } from 'feedpump';

const [kind, feedUrl, target] = process.argv.slice(2);
const CHAOS_AT = Number(process.env.CHAOS_AT ?? 0);
const DELAY_MS = Number(process.env.DELAY_MS ?? 10);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const say = (line) => new Promise((r) => process.stdout.write(`${line}\n`, r));
/** Waits for the test's SIGKILL (and fails loudly should it never come). */
const waitForKill = async () => {
  await sleep(30_000);
  throw new Error('not killed');
};
let points = 0;
/** A chaos point: at the CHAOS_AT-th, tell the test and wait inside the transaction. */
const chaos = async (where) => {
  if (++points !== CHAOS_AT) return;
  await say(`in-tx ${where}`);
  await waitForKill();
};

let store;
let write; // (tx, events) => Promise<void> | void
if (kind === 'postgres') {
  const { default: pg } = await import('pg');
  const { postgresStore } = await import('feedpump/postgres');
  const pool = new pg.Pool({ connectionString: target, max: 2 });
  await pool.query('CREATE TABLE IF NOT EXISTS applied (id text NOT NULL, partition integer NOT NULL, seq integer NOT NULL)');
  store = postgresStore(pool);
  write = async (client, events) => {
    if (events.length === 0) return;
    const values = events.map((_, i) => `($${3 * i + 1}, $${3 * i + 2}, $${3 * i + 3})`).join(', ');
    await client.query(`INSERT INTO applied (id, partition, seq) VALUES ${values}`, events.flatMap((e) => [e.data.id, e.partition, e.data.seq]));
  };
} else if (kind === 'sqlite') {
  const { default: Database } = await import('better-sqlite3');
  const { sqliteStore } = await import('feedpump/sqlite');
  const db = new Database(target);
  db.pragma('journal_mode = WAL');
  db.pragma('synchronous = NORMAL');
  db.exec('CREATE TABLE IF NOT EXISTS applied (id TEXT NOT NULL, partition INTEGER NOT NULL, seq INTEGER NOT NULL)');
  const insert = db.prepare('INSERT INTO applied (id, partition, seq) VALUES (?, ?, ?)');
  store = sqliteStore(db);
  write = (_db, events) => {
    for (const e of events) insert.run(e.data.id, e.partition, e.data.seq);
  };
} else {
  throw new Error(`unknown store ${kind}`);
}

const result = await consume(
  {
    url: feedUrl,
    partitionCount: 4,
    pageSizeHint: 5,
    // A random delay per request spreads a run over time, so random kills land in every phase.
    fetch: async (request) => {
      await sleep(Math.random() * DELAY_MS);
      return fetch(request);
    },
  },
  {
    store,
    key: 'kill-test',
    handler: async (batch, tx) => {
      const half = Math.ceil(batch.events.length / 2);
      await write(tx, batch.events.slice(0, half));
      await chaos('mid-batch');
      await write(tx, batch.events.slice(half));
      await chaos('before-cursor');
    },
  },
);
await say(`done ${JSON.stringify(result)}`);
process.exit(0);
