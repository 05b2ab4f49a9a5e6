// Type-level tests of feedpump/group, checked by `tsc -p tests/group` (scripts/ci/groups.sh): the handler's client is
// the pool's own client type, inferred from the store; the handle's and the status' shapes.
import pg from 'pg';
import { postgresStore } from 'feedpump/postgres';
import { consumeGroup, groupStatus, type GroupResult, type GroupStatus, type RevokeReason } from 'feedpump/group';

type IsExact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const typeAssert = <T extends true>(): T => true as T;

const store = postgresStore(new pg.Pool());
const member = consumeGroup<{ id: string }, pg.PoolClient>({ url: 'http://x/feed/v1', partitionCount: 8 }, {
  store,
  group: 'g',
  handler: async (batch, client) => {
    typeAssert<IsExact<typeof client, pg.PoolClient>>();
    for (const e of batch.events) await client.query('SELECT $1', [e.data.id]);
  },
  onRevoke: (partitions, reason) => {
    typeAssert<IsExact<typeof partitions, number[]>>();
    typeAssert<IsExact<typeof reason, RevokeReason>>();
  },
});
const inferred = consumeGroup({ url: 'http://x/feed/v1', partitionCount: 8 }, {
  store,
  group: 'g',
  handler: (_batch, client) => {
    typeAssert<IsExact<typeof client, pg.PoolClient>>();
  },
});
typeAssert<IsExact<Awaited<typeof member.done>, GroupResult>>();
typeAssert<IsExact<Awaited<ReturnType<typeof inferred.status>>, GroupStatus>>();
typeAssert<IsExact<Awaited<ReturnType<typeof groupStatus>>, GroupStatus>>();
// @ts-expect-error a store that is not PostgreSQL's
consumeGroup({ url: 'http://x/feed/v1', partitionCount: 8 }, { store: { load: async () => undefined, save: async () => {} }, group: 'g', handler: () => {} });
// A FeedAPI v2 source: no partition count, the ids come from discovery.
consumeGroup({ url: 'http://x/feed', protocol: 'v2', pageSizeHint: 500 }, { store, group: 'g2', handler: () => {} });
