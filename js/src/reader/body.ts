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

/** A body being read: `read` (and `cancel`, if any) are called on `target`; `read` is given `view` (a BYOB read's
 * buffer: see {@link readBodiesInto}), if any. */
export type Body = [target: object, read: (view?: Uint8Array) => unknown, cancel: unknown, view: Uint8Array | undefined];

/** The size of the buffer a body is read into with a BYOB reader, where the body is a byte stream; 0: read it with
 * its default reader. */
let byob = 0;

/** The buffer of BYOB reads, where an entry point asks for them: reads of at most 256 KiB. */
export const BYOB_BYTES = 256 * 1024;

/**
 * Reads the bodies that are byte streams into a buffer of `bytes` (a BYOB reader, whose read gives what has arrived, up
 * to the buffer's size; the buffer is reused from read to read), not with their default reader. For the runtimes whose
 * default reader's chunks cost more: workerd's gives ~4 KB per read (a BYOB read ~32 KB whatever the buffer, and each
 * read has a fixed cost), Chromium's up to a few hundred KB in fresh buffers (BYOB reads of at most 64 KiB took 7-13%
 * less CPU over loopback, of at most 256 KiB another 8-14% less in raw and filtered reading: bench/NOTES.md).
 * Node's default reader gives ~64 KB already. A body that is not a byte stream is read with its default reader.
 */
export function readBodiesInto(bytes: number): void {
  byob = bytes;
}

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
  const opener = prop(body, open) as (options?: object) => unknown;
  let target: unknown;
  let view: Uint8Array | undefined;
  if (byob > 0 && threw === 0) {
    try {
      target = opener.call(body, { mode: 'byob' });
      view = new Uint8Array(byob);
    } catch {
      // not a byte stream: its default reader below
    }
  }
  if (view === undefined) {
    try {
      target = opener.call(body);
    } catch (e) {
      throw bad(threw, page, '', e);
    }
  }
  const r = prop(target, read);
  if (typeof r !== 'function') throw bad(3, page);
  return [target as object, r as () => unknown, prop(target, cancel), view];
}

/** After a chunk was handed to the core (which copied it): the next read's view is the buffer this one filled (a
 * BYOB read transfers the buffer it is given and gives it back in the chunk), or a new one if the chunk is not all of
 * a buffer of the size asked for. */
export function recycle(b: Body, chunk: Uint8Array): void {
  if (b[3] === undefined) return;
  let buffer: unknown;
  try {
    buffer = chunk.byteOffset === 0 ? chunk.buffer : undefined;
  } catch {
    // a chunk of theirs whose getters throw: a new buffer
  }
  b[3] = buffer instanceof ArrayBuffer && buffer.byteLength === byob ? new Uint8Array(buffer) : new Uint8Array(byob);
}

/** Starts a read: what it gave (a promise of `{ done, value }`, to await once). Throws a `bad-options` error. */
export function startRead([target, read, , view]: Body, page: number): unknown {
  try {
    return read.call(target, view);
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
  // A real one (not a Proxy): the wasm glue sizes its copy by `length`, which a subclass or an own property could
  // make lie (bytes lost, or written past what it allocated). One of ours, copied by the engine, has the true one.
  if (ArrayBuffer.isView(value) && value instanceof Uint8Array) {
    return Object.getPrototypeOf(value) === Uint8Array.prototype && !Object.hasOwn(value, 'length') ? value : new Uint8Array(value);
  }
  throw bad(6, page, kindOf(value));
}
