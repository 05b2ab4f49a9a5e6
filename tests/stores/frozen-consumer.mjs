// A consumer that freezes inside its commit transaction (tests/stores/postgres.test.mjs): consume() of the scripted
// feed (tests/js/unit/consume-fake-feed.mjs) into PostgreSQL with postgresStore, whose handler writes the batch's
// events into `<schema>.applied`, prints "frozen" and stops its own process with SIGSTOP, as a VM pause would: the
// transaction is open and holds the cursor row's lock (SELECT ... FOR UPDATE, taken before the handler). The test
// SIGKILLs it at the end. Told its settings in FEEDPUMP_FROZEN (JSON): { config, schema, storeOptions }.
import pg from 'pg';
import { consume } from 'feedpump';
import { postgresStore } from 'feedpump/postgres';
import { fakeFeed } from '../js/unit/consume-fake-feed.mjs';

const { config, schema, storeOptions } = JSON.parse(process.env.FEEDPUMP_FROZEN);
const pool = new pg.Pool({ ...config, max: 2 });
pool.on('error', () => {});
const feed = fakeFeed({ partitions: 1, count: 9, checkpointEvery: 3, pageSize: 3, ragged: false });
const say = (line) => new Promise((r) => process.stdout.write(`${line}\n`, r));
try {
  await consume(
    { url: feed.url, partitionCount: 1, fetch: feed.fetch },
    {
      store: postgresStore(pool, { table: `${schema}.feedpump_cursors`, ...storeOptions }),
      key: 'k',
      tabs: false,
      handler: async (batch, client) => {
        for (const e of batch.events) await client.query(`INSERT INTO ${schema}.applied (id, by) VALUES ($1, 'frozen')`, [e.data.id]);
        await say('frozen');
        process.kill(process.pid, 'SIGSTOP');
      },
    },
  );
  await say('done');
} catch (e) {
  await say(`failed ${e.code}: ${e.message}`);
}
