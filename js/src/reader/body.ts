/**
 * Internal: what `fetch` answered, read defensively: the status, headers and body of a `Response`, or of whatever the
 * caller's `fetch` returned in its place.
 *
 * A body is read through one shape, `read() -> Promise<{ done, value }>` plus an optional `cancel()`: a web
 * `ReadableStream`'s default reader has it, and so has the iterator of an async-iterable body (a Node `Readable`, as
 * node-fetch gives), whose `next()` and `return()` are used. Nothing here relies on `ReadableStream` being
 * async-iterable (Safari's is not). The caller's objects may throw anywhere (getters, proxies, their reader): every
 * property is read through {@link prop}, every call is caught.
 * @internal
 * @packageDocumentation
 */
import { kindOf } from '../transport.js';

/** Why a body cannot be read: a message for a `bad-options` error, and the runtime's error if there was one (a
 * `TypeError` about a locked stream: it holds no data of ours). */
export class BodyError {
  constructor(
    readonly message: string,
    readonly cause?: { cause: unknown },
  ) {}
}

const LOCKED = 'the response body cannot be read (locked or already read)';

/** `o[key]`, with a throwing getter or proxy trap (or a value that is not an object) read as `undefined`. */
export function prop(o: unknown, key: PropertyKey): unknown {
  if ((typeof o !== 'object' || o === null) && typeof o !== 'function') return undefined;
  try {
    return Reflect.get(o, key);
  } catch {
    return undefined;
  }
}

function noop(): void {}

/** A reader of a response body: `read` called on `target` gives `{ done, value }` (a promise of it). */
export class Body {
  readonly #target: object;
  readonly #read: () => unknown;
  readonly #cancel: (() => unknown) | undefined;

  private constructor(target: object, read: () => unknown, cancel: (() => unknown) | undefined) {
    this.#target = target;
    this.#read = read;
    this.#cancel = cancel;
  }

  /** Opens `body`: `undefined` for no body (`null` / `undefined`, an empty page). Throws a {@link BodyError}. */
  static open(body: unknown, bodyUsed: boolean): Body | undefined {
    if (bodyUsed) throw new BodyError(LOCKED);
    if (body === undefined || body === null) return undefined;
    const getReader = prop(body, 'getReader');
    if (typeof getReader === 'function') {
      let reader: unknown;
      try {
        reader = getReader.call(body);
      } catch (cause) {
        throw new BodyError(LOCKED, { cause });
      }
      return Body.#with(reader, 'read', 'cancel');
    }
    const iterate = prop(body, Symbol.asyncIterator);
    if (typeof iterate === 'function') {
      let iterator: unknown;
      try {
        iterator = iterate.call(body);
      } catch (cause) {
        throw new BodyError('the response body cannot be read (its iterator threw)', { cause });
      }
      return Body.#with(iterator, 'next', 'return');
    }
    throw new BodyError(`the response body is not a ReadableStream or an async iterable (it is ${kindOf(body)})`);
  }

  static #with(target: unknown, read: string, cancel: string): Body {
    const r = prop(target, read);
    if (typeof r !== 'function') throw new BodyError("the response body cannot be read (its reader has no read())");
    const c = prop(target, cancel);
    return new Body(target as object, r as () => unknown, typeof c === 'function' ? (c as () => unknown) : undefined);
  }

  /** Starts a read: what it gave (a promise of `{ done, value }`, to await once). Throws a {@link BodyError}. */
  read(): unknown {
    try {
      return this.#read.call(this.#target);
    } catch (cause) {
      throw new BodyError("the response body cannot be read (its read() threw)", { cause });
    }
  }

  /** Cancels the body in a later microtask (no caller code runs in ours); whatever the cancel throws or rejects
   * with needs no handling: the body is dropped either way. */
  cancel(): void {
    const cancel = this.#cancel;
    if (cancel === undefined) return;
    const target = this.#target;
    // A `then` callback runs the cancel later; a thenable it returns is adopted, and its rejection handled.
    Promise.resolve()
      .then(() => cancel.call(target))
      .then(undefined, noop);
  }
}

/** What a read resolved to (`{ done, value }`): the bytes, or `undefined` at the end of the body. Throws a
 * {@link BodyError} when it is not bytes. */
export function chunkOf(result: unknown): Uint8Array | undefined {
  if (typeof result !== 'object' || result === null) {
    throw new BodyError(`the response body's read() gave ${kindOf(result)}, not { done, value }`);
  }
  if (prop(result, 'done')) return undefined;
  const value = prop(result, 'value');
  if (value instanceof Uint8Array) return value;
  throw new BodyError(`the response body gave a chunk that is not a Uint8Array (it is ${kindOf(value)})`);
}

/** The parts of a `Response` the reader uses, read once. */
export interface Answer {
  status: number;
  statusText: string;
  body: unknown;
  bodyUsed: boolean;
  /** The `Retry-After` header, if any. */
  retryAfter: string | undefined;
}

/** Reads `response`; `undefined` when it has no integer HTTP status (not a `Response`, or a hostile one). */
export function answerOf(response: unknown): Answer | undefined {
  const status = prop(response, 'status');
  if (typeof status !== 'number' || !Number.isInteger(status) || status < 0 || status > 999) return undefined;
  const statusText = prop(response, 'statusText');
  const headers = prop(response, 'headers');
  const get = prop(headers, 'get');
  let retryAfter: unknown;
  if (typeof get === 'function') {
    try {
      retryAfter = get.call(headers, 'retry-after');
    } catch {
      // a header we cannot read is a header we do not have
    }
  }
  return {
    status,
    statusText: typeof statusText === 'string' ? statusText : '',
    body: prop(response, 'body'),
    bodyUsed: Boolean(prop(response, 'bodyUsed')),
    retryAfter: typeof retryAfter === 'string' ? retryAfter : undefined,
  };
}
