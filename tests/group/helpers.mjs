import { spawn } from 'node:child_process';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
// Shared by the consumer-group tests and their worker processes: the effects table every member applies events into,
// and the check of what it holds. The table counts every apply of an event (`applies`), so a double apply is
// recorded, not absorbed by the unique key.
export const PARTITIONS = 8;
export const EVENTS_PER_PARTITION = 2500;

/** Creates `<schema>.applied`: one row per (partition, event id), `applies` counting how often it was applied. */
export async function createEffects(pool, schema) {
  await pool.query(
    `CREATE SCHEMA IF NOT EXISTS ${schema};
     CREATE TABLE IF NOT EXISTS ${schema}.applied (partition integer NOT NULL, id text NOT NULL, seq integer NOT NULL,
       applies integer NOT NULL DEFAULT 1, member text NOT NULL, PRIMARY KEY (partition, id))`,
  );
}

/** An event's data: the FeedAPI v2 test server sends some as a string holding the JSON. */
const dataOf = (e) => (typeof e.data === 'string' ? JSON.parse(e.data) : e.data);

/** A group handler: the batch's events into `<schema>.applied` through the commit's client, one statement. */
export function applyInto(schema, member) {
  return async (batch, client) => {
    if (batch.events.length === 0) return;
    await client.query(
      `INSERT INTO ${schema}.applied (partition, id, seq, member)
       SELECT * FROM unnest($1::integer[], $2::text[], $3::integer[], $4::text[])
       ON CONFLICT (partition, id) DO UPDATE SET applies = ${schema}.applied.applies + 1`,
      [batch.events.map((e) => e.partition), batch.events.map((e) => dataOf(e).id), batch.events.map((e) => dataOf(e).seq), batch.events.map(() => member)],
    );
  };
}

/** What the effects table holds: events, duplicates (applies beyond the first), losses (events never applied). */
export async function effectsSummary(pool, schema, { partitions = PARTITIONS, perPartition = EVENTS_PER_PARTITION } = {}) {
  const { rows } = await pool.query(
    `SELECT count(*)::int AS events, coalesce(sum(applies - 1), 0)::int AS duplicates,
            count(*) FILTER (WHERE seq < 1 OR seq > $1)::int AS foreign FROM ${schema}.applied`,
    [perPartition],
  );
  const per = await pool.query(`SELECT partition, count(*)::int AS n, max(seq) AS top FROM ${schema}.applied GROUP BY partition ORDER BY partition`);
  const { events, duplicates } = rows[0];
  return { events, duplicates, losses: partitions * perPartition - events, perPartition: per.rows };
}

/**
 * Starts a worker process (worker.mjs) with `settings`; `onMessage` gets each JSON line it prints (assign, revoke,
 * done, fatal). The child carries its `member` and an `exited` promise.
 */
export function spawnGroupWorker(settings, onMessage) {
  const child = spawn(process.execPath, [path.join(path.dirname(fileURLToPath(import.meta.url)), 'worker.mjs')], {
    env: { ...process.env, FEEDPUMP_GROUP_WORKER: JSON.stringify(settings) },
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  child.member = settings.member;
  child.exited = new Promise((r) => child.once('exit', r));
  createInterface({ input: child.stdout }).on('line', (line) => {
    let m;
    try {
      m = JSON.parse(line);
    } catch {
      return; // not one of the worker's messages
    }
    onMessage(m);
  });
  return child;
}
