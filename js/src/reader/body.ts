/**
 * Internal: what `fetch` answered, read defensively: the body of a `Response`, or of whatever the caller's `fetch`
 * returned in its place.
 *
 * A body is read through one shape, `read() -> Promise<{ done, value }>` plus an optional `cancel()`: a web
 * `ReadableStream`'s default reader has it, and so has the iterator of an async-iterable body (a Node `Readable`, as
 * node-fetch gives), whose `next()` and `return()` are used. Nothing here relies on `ReadableStream` being
 * async-iterable (Safari's is not). The caller's objects may throw anywhere (getters, proxies, their reader): every
 * property is read through js/src/transport.ts's `read`, every call is caught. A body the reader cannot read is the caller's fault:
 * a `bad-options` error (thrown here, made by the wasm's `callerError`, whose numbers say what broke; reported by the
 * reader as the caller's failure).
 * @internal
 * @packageDocumentation
 */
import { kindOf, read as prop } from '../transport.js';
import { callerError } from '../wasm/feedpump.js';

/** The wasm's `callerError` (the `bad-options` error of what broke, by number), whose last arguments may be left out. */
export const bad = callerError as (which: number, page?: number, kind?: string, cause?: unknown) => Error;

/** A body being read: `read` (and `cancel`, if any) are called on `target`. */
export type Body = [target: object, read: () => unknown, cancel: unknown];

/** Opens `body` (a `ReadableStream`, or an async iterable of bytes): `undefined` for none (`null` / `undefined`, an
 * empty page). Throws a `bad-options` error. */
export function openBody(body: unknown, bodyUsed: unknown, page: number): Body | undefined {
  if (bodyUsed) throw bad(0, page);
  if (body === undefined || body === null) return undefined;
  // How to open it, read it and cancel it, and what it means when opening it throws.
  const how: [PropertyKey, string, string, number] | undefined =
    typeof prop(body, 'getReader') === 'function'
      ? ['getReader', 'read', 'cancel', 0]
      : typeof prop(body, Symbol.asyncIterator) === 'function'
        ? [Symbol.asyncIterator, 'next', 'return', 1]
        : undefined;
  if (how === undefined) throw bad(2, page, kindOf(body));
  const [open, read, cancel, threw] = how;
  let target: unknown;
  try {
    target = (prop(body, open) as () => unknown).call(body);
  } catch (e) {
    throw bad(threw, page, '', e);
  }
  const r = prop(target, read);
  if (typeof r !== 'function') throw bad(3, page);
  return [target as object, r as () => unknown, prop(target, cancel)];
}

/** Starts a read: what it gave (a promise of `{ done, value }`, to await once). Throws a `bad-options` error. */
export function startRead([target, read]: Body, page: number): unknown {
  try {
    return read.call(target);
  } catch (e) {
    throw bad(4, page, '', e);
  }
}

/** Does nothing (a rejection handler). */
export function noop(): void {}

/** Cancels a body in a later microtask (no caller code runs in ours); whatever the cancel throws or rejects with
 * needs no handling: the body is dropped either way. */
export function cancelBody([target, , cancel]: Body): void {
  if (typeof cancel === 'function') {
    Promise.resolve()
      .then(() => cancel.call(target))
      .then(undefined, noop);
  }
}

/** What a read resolved to (`{ done, value }`): the bytes, or `undefined` at the end of the body. Throws a
 * `bad-options` FeedError when it is not bytes. */
export function chunkOf(result: unknown, page: number): Uint8Array | undefined {
  if (typeof result !== 'object' || result === null) {
    throw bad(5, page, kindOf(result));
  }
  if (prop(result, 'done')) return undefined;
  const value = prop(result, 'value');
  if (value instanceof Uint8Array) return value;
  throw bad(6, page, kindOf(value));
}
