/**
 * The IndexedDB types of the public API, written so that the package's `.d.ts` files compile in every project:
 * with the DOM lib they are exactly the DOM's `IDBDatabase`, `IDBTransaction` and `IDBFactory`; without it (Node with
 * `lib: ["es2023"]`, Workers with @cloudflare/workers-types) they fall back to `unknown` / `object` instead of naming
 * types that do not exist there. They read the DOM's classes off `typeof globalThis`, which never fails to compile.
 * @packageDocumentation
 */

/** The DOM's `IDBDatabase` where the DOM lib is loaded, else `unknown`. */
export type IdbDatabase = typeof globalThis extends {
  /** The DOM lib's global class. */
  readonly IDBDatabase: {
    /** Its instances' type. */
    readonly prototype: infer P;
  };
}
  ? P
  : unknown;

/** The DOM's `IDBTransaction` where the DOM lib is loaded, else `unknown`. */
export type IdbTransaction = typeof globalThis extends {
  /** The DOM lib's global class. */
  readonly IDBTransaction: {
    /** Its instances' type. */
    readonly prototype: infer P;
  };
}
  ? P
  : unknown;

/** The DOM's `IDBFactory` (`indexedDB`) where the DOM lib is loaded, else `object` (e.g. fake-indexeddb's factory). */
export type IdbFactory = typeof globalThis extends {
  /** The DOM lib's global class. */
  readonly IDBFactory: {
    /** Its instances' type. */
    readonly prototype: infer P;
  };
}
  ? P
  : object;

/** What {@link idbRequest} needs of an `IDBRequest<T>` (which qualifies). */
export interface IdbRequestLike<T> {
  /** The request's result, once `success` fired. */
  readonly result: T;
  /** The request's error, once `error` fired. */
  readonly error: unknown;
  /** Listens for `success` and `error`. */
  addEventListener(type: 'success' | 'error', listener: () => void): void;
}
