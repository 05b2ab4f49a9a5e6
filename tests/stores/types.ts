// Type-level tests of the store subpaths, checked by `tsc -p tests/stores` (scripts/ci/stores-sql.sh): the handler's
// transaction type is the driver's own type, inferred from what you pass.
import pg from 'pg';
import Database from 'better-sqlite3';
import { consume } from 'feedpump';
import { postgresStore, type PgClientLike } from 'feedpump/postgres';

type IsExact<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const typeAssert = <T extends true>(): T => true as T;
type TxOf<S> = S extends { save(key: string, record: never, effects?: (tx: infer Tx) => unknown): unknown } ? Tx : never;

const pool = new pg.Pool();
typeAssert<IsExact<TxOf<ReturnType<typeof postgresStore<pg.PoolClient>>>, pg.PoolClient>>();
const store = postgresStore(pool);
typeAssert<IsExact<TxOf<typeof store>, pg.PoolClient>>();
void consume({ url: 'http://x/feed/v1', partitionCount: 1 }, {
  store,
  key: 'k',
  handler: async (_batch, client) => {
    typeAssert<IsExact<typeof client, pg.PoolClient>>();
    await client.query('SELECT 1');
  },
});
// A pool of your own without pg's callback overload: the client type is yours.
const custom = postgresStore({ connect: async (): Promise<PgClientLike & { tag: 1 }> => ({ tag: 1, query: async () => ({ rows: [] }), release: () => {} }) });
typeAssert<IsExact<TxOf<typeof custom>, PgClientLike & { tag: 1 }>>();
void Database;
