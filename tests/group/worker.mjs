// One member of the kill test's group (tests/group/kill.test.mjs, and the v2 one in tests/group/v2.test.mjs), a process
// of its own: consumeGroup over the reference server's 8-partition feed (or a FeedAPI v2 feed) into PostgreSQL. Told its settings in FEEDPUMP_GROUP_WORKER (JSON); prints one
// JSON line per assign, revoke and fatal error; SIGTERM stops it gracefully (commit, release the leases, leave).
import pg from 'pg';
import { postgresStore } from 'feedpump/postgres';
import { consumeGroup } from 'feedpump/group';
import { applyInto } from './helpers.mjs';

const { config, url, schema, member, leaseMs, heartbeatMs, pageSizeHint, delayMs, v2 = false, stopInCursorLock = false, group: groupName = 'kill', table = `${schema}.grp` } = JSON.parse(process.env.FEEDPUMP_GROUP_WORKER);
const say = (o) => process.stdout.write(`${JSON.stringify({ member, ...o })}\n`);
const pool = new pg.Pool({ ...config, max: 6 });
pool.on('error', () => {}); // a backend that dies with an idle client: the next checkout fails and is reported
if (stopInCursorLock) {
  // The process stops (SIGSTOP, as a VM pause would) in its first commit transaction right after the store locked an
  // existing cursor row (SELECT ... FOR UPDATE), before any other statement of that transaction: tests/group/group.test.mjs.
  const connect = pool.connect.bind(pool);
  let stopped = false;
  const wrapped = new WeakSet();
  pool.connect = async () => {
    const client = await connect();
    if (wrapped.has(client)) return client;
    wrapped.add(client);
    const query = client.query.bind(client);
    client.query = async (...args) => {
      const r = await query(...args);
      if (!stopped && typeof args[0] === 'string' && /^SELECT .* FOR UPDATE$/.test(args[0]) && r.rows.length === 1) {
        stopped = true;
        say({ stopping: true });
        process.kill(process.pid, 'SIGSTOP');
      }
      return r;
    };
    return client;
  };
}

const apply = applyInto(schema, member);
const group = consumeGroup(
  // v2 (tests/group/v2.test.mjs): the partitions come from discovery.
  { url, ...(v2 ? { protocol: 'v2' } : { partitionCount: 8 }), pageSizeHint, live: { minIntervalMs: 50, maxIntervalMs: 300 }, retry: { maxAttempts: Infinity } },
  {
    store: postgresStore(pool, { table: `${schema}.cursors` }),
    group: groupName,
    table,
    memberId: member,
    leaseMs,
    heartbeatMs,
    handler: async (batch, client) => {
      await apply(batch, client);
      await new Promise((r) => setTimeout(r, delayMs)); // a handler that takes a while, inside the transaction
    },
    onAssign: (partitions) => say({ assign: partitions }),
    onRevoke: (partitions, reason) => say({ revoke: partitions, reason }),
    onError: (e) => say({ warn: e instanceof Error ? e.message : String(e) }),
  },
);
process.on('SIGTERM', () => void group.stop());
try {
  const result = await group.done;
  say({ done: result });
  await pool.end();
  process.exit(0);
} catch (e) {
  say({ fatal: e instanceof Error ? `${e.name} ${e.code ?? ''}: ${e.message}` : String(e) });
  process.exit(1);
}
