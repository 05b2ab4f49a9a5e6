/**
 * `durableObjectStore()`: a {@link CursorStore} in Cloudflare Durable Object storage. A save is one
 * `storage.transaction()`: the handler's writes and the cursor record commit together or not at all, and a Durable
 * Object reads its own writes (strongly consistent, one object = one writer).
 *
 * Workers KV is deliberately not offered: it is eventually consistent (other locations may read an old value for a
 * minute or more, so a restart elsewhere may resume from a stale cursor and apply events twice) and has no
 * transactions (the effects and the cursor cannot commit together).
 * @packageDocumentation
 */
import { FeedError, isFeedError } from '../errors.js';
import { conflict, sameRecord, type CursorRecord, type CursorStore } from './types.js';

/**
 * The part of a Durable Object storage transaction feedpump uses (`DurableObjectTransaction` of
 * @cloudflare/workers-types qualifies). The handler gets the real object, with all its methods.
 *
 * @example
 * ```ts
 * handler: async (batch, txn) => { await txn.put('count', (Number(await txn.get('count')) || 0) + batch.events.length); }
 * ```
 */
export interface DurableObjectTransactionLike {
  /** The value stored under `key`, as this transaction sees it. */
  get(key: string): Promise<unknown>;
  /** Writes `value` under `key`; it commits with the transaction. */
  put(key: string, value: unknown): Promise<void>;
}

/**
 * The part of `DurableObjectStorage` (`ctx.storage`) feedpump uses.
 *
 * @example
 * ```ts
 * const store = durableObjectStore(this.ctx.storage);
 * ```
 */
export interface DurableObjectStorageLike<Txn extends DurableObjectTransactionLike = DurableObjectTransactionLike> {
  /** The value stored under `key` (the committed cursor record, for `load`). */
  get(key: string): Promise<unknown>;
  /** Runs `closure` in one transaction: everything it writes commits together, or nothing if it throws. */
  transaction<T>(closure: (txn: Txn) => Promise<T>): Promise<T>;
}

/**
 * Options of {@link durableObjectStore}.
 *
 * @example
 * ```ts
 * durableObjectStore(this.ctx.storage, { prefix: 'cursors/' });
 * ```
 */
export interface DurableObjectStoreOptions {
  /**
   * The storage key prefix of the cursor records (the feed key follows it).
   * @defaultValue `'feedpump:cursors:'`
   */
  prefix?: string | undefined;
}

/**
 * Makes a Durable Object {@link CursorStore}; the handler gets the storage transaction.
 *
 * @example
 * ```ts
 * import { DurableObject } from 'cloudflare:workers';
 * import { consume, type Batch } from 'feedpump';
 * import { durableObjectStore } from 'feedpump/durable-object';
 *
 * export class Projection extends DurableObject {
 *   async alarm() {
 *     await consume({ url: this.env.FEED_URL, partitionCount: 4, partitions: [0] }, {
 *       store: durableObjectStore(this.ctx.storage),
 *       key: 'orders',
 *       handler: async (batch: Batch<Order>, txn) => { for (const e of batch.events) await txn.put(`order:${e.data.id}`, e.data); },
 *     });
 *   }
 * }
 * ```
 */
export function durableObjectStore<Txn extends DurableObjectTransactionLike>(
  storage: DurableObjectStorageLike<Txn>,
  options: DurableObjectStoreOptions = {},
): CursorStore<Txn> {
  const prefix = options.prefix ?? 'feedpump:cursors:';
  const failed = (what: string, cause: unknown): FeedError => {
    if (isFeedError(cause)) return cause;
    const why = cause instanceof Error ? `: ${cause.message}` : '';
    return new FeedError('store-failed', `Durable Object storage ${what}${why}`, { cause });
  };
  return {
    async load(key) {
      try {
        return (await storage.get(prefix + key)) as CursorRecord | undefined;
      } catch (e) {
        throw failed(`could not read the cursors of ${JSON.stringify(key)}`, e);
      }
    },
    async save(key, record, effects, expected) {
      /** The handler's error or a conflict, passed on as they are (a throw inside `transaction` rolls everything back). */
      let passOn: { error: unknown } | undefined;
      try {
        await storage.transaction(async (txn) => {
          if (expected !== undefined && !sameRecord((await txn.get(prefix + key)) as CursorRecord | undefined, expected)) {
            passOn = { error: conflict(key) };
            throw passOn.error;
          }
          if (effects) {
            try {
              await effects(txn);
            } catch (e) {
              passOn = { error: e };
              throw e;
            }
          }
          await txn.put(prefix + key, record);
        });
      } catch (e) {
        if (passOn) throw passOn.error;
        throw failed(`transaction failed (feed key ${JSON.stringify(key)})`, e);
      }
    },
  };
}
