/**
 * The two calls out every request makes, wrapped once and handed alike to the wasm reader and to the v2 discovery:
 * the caller's `requestHeaders` (what it gives is checked into a `Headers`, or a `'bad-header'` / `'bad-options'`
 * FeedError; a throw or rejection of the hook is `'hook-failed'`) and the caller's (or the global) `fetch` (a failure
 * before a response becomes the `'network'` FeedError, with every header and query value blanked out). One home for
 * both, so both paths give the same errors.
 * @internal
 * @packageDocumentation
 */
import { FeedError, toFeedError, type FeedErrorCode } from './errors.js';
import type { Observer } from './observe.js';
import { callerError } from './wasm/feedpump.js';
import type { FetchLike, RequestHeadersContext, RequestKind } from './types.js';

/** The calls out of one requester (one reader, or one discovery attempt): `page` is 0 outside a reader. */
export interface Transport {
  fetch: (request: Request, page: number) => Promise<unknown>;
  requestHeaders?: (context: RequestHeadersContext, page: number) => Promise<Headers | undefined>;
  /** Blanks the secrets of the last request (its header values and query) out of `e`'s message and `bodySnippet`,
   * when `e` is an `'http-status'` error: they quote the answer's body, which may echo what was sent. */
  hide: (e: unknown) => void;
}

/** Shorter values (in UTF-16 units) are not blanked: they would blank every `1` of a message, and hide nothing. */
const MIN_SECRET_CHARS = 3;

/**
 * A FeedError of the reader's shape: `"<code>: <message>"`, and `" (page N)"` with a `page` field inside a reader.
 * @internal
 */
export function feedError(code: FeedErrorCode, message: string, page: number, cause?: { cause: unknown }): FeedError {
  // FeedError leaves out the details that are undefined: no page (0) is not one.
  return new FeedError(code, `${message}${page > 0 ? ` (page ${page})` : ''}`, { page: page > 0 ? page : undefined, ...cause });
}

/** A URL as errors may show it: origin and path, never the query (it may hold a token) or user info. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    return `${u.origin}${u.pathname}`;
  } catch {
    return 'the feed URL';
  }
}

/** What a value is, for a message: "a string", "an object", … (never its content). */
export function kindOf(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  const type = typeof v;
  return type === 'undefined' ? type : type === 'object' ? 'an object' : `a ${type}`;
}

/**
 * `o[key]`, with a throwing getter or proxy trap (or a value that is not an object: `Reflect.get` throws) read as
 * `undefined`.
 * @internal
 */
export function read(o: unknown, key: PropertyKey): unknown {
  try {
    return Reflect.get(o as object, key);
  } catch {
    return undefined;
  }
}

/**
 * The messages of `e`'s `cause` chain, outermost first (undici puts the root cause, "connect ECONNREFUSED …", two
 * levels down). A level with an empty message (an `AggregateError`) gives its `code`. A hostile error cannot throw here.
 */
function causeMessages(e: unknown): string[] {
  const out: string[] = [];
  let level = e;
  for (let i = 0; i < 8 && level !== undefined && level !== null; i++) {
    if (typeof level !== 'object') {
      if (typeof level === 'string') out.push(level);
      break;
    }
    const message = read(level, 'message');
    const code = read(level, 'code');
    if (typeof message === 'string' && message.trim() !== '') out.push(message);
    else if (typeof code === 'string') out.push(code);
    level = read(level, 'cause');
  }
  return out;
}

/**
 * Adds `s` to the texts never to show, kept longest first (so a value that contains another is blanked whole). This
 * and {@link urlSecrets}, {@link blank} and {@link safeUrl} are the one home of what no message may show and how it
 * is blanked out, for the transport's errors and the CLI's messages (js/src/cli/main.ts imports them as `#transport`:
 * package.json's `imports`; so not internal: dist/transport.d.ts types them for it).
 */
export function addSecret(secrets: string[], s: string): void {
  if (s.length < MIN_SECRET_CHARS) return;
  const at = secrets.findIndex((t) => t.length < s.length);
  secrets.splice(at < 0 ? secrets.length : at, 0, s);
}

/** Adds the query of `url`, whole (as written) and each value (decoded), to `secrets`, then sorts them once (longest
 * first, as {@link addSecret} keeps them): an `addSecret` per value made every v1 request O(n²) in its partitions
 * (32,768 cursors took 1 s). */
export function urlSecrets(url: string, secrets: string[]): void {
  try {
    const u = new URL(url);
    for (const v of [u.search.slice(1), ...u.searchParams.values()]) if (v.length >= MIN_SECRET_CHARS) secrets.push(v);
    secrets.sort((a, b) => b.length - a.length);
  } catch {
    // not a URL: nothing to hide from it
  }
}

/** `text` with every one of `secrets` (longest first: {@link addSecret}) blanked out. */
export function blank(text: string, secrets: readonly string[]): string {
  for (const s of secrets) text = text.split(s).join('[hidden]');
  return text;
}

/** The error of a request that failed before a response; the runtime's error is kept as `cause` unless it quotes a secret. */
function networkError(url: string, cause: unknown, secrets: readonly string[], page: number): FeedError {
  let leaks = false;
  const messages = causeMessages(cause).map((text) => {
    const shown = blank(text, secrets);
    leaks ||= shown !== text;
    return shown;
  });
  const root = (messages.at(-1) ?? 'unknown error').slice(0, 300);
  return feedError('network', `GET ${safeUrl(url)} failed before a response arrived: ${root}`, page, leaks ? undefined : { cause });
}

/**
 * The error of a hook of the caller's that threw or rejected (`'hook-failed'`, final: asking again gives the same): the
 * `requestHeaders` hook here, `consume()`'s policy functions there (`page` 0: outside a reader). Its message names the
 * hook and what was thrown (an error's `name`, else its kind), never the thrown message, which may quote a credential;
 * `cause` is what was thrown, as it was.
 * @internal
 */
export function hookFailed(hook: string, e: unknown, page: number): FeedError {
  const name = e instanceof Error ? read(e, 'name') : undefined;
  const what = typeof name === 'string' && name !== '' ? name.slice(0, 60) : kindOf(e);
  return feedError('hook-failed', `${hook} failed (${what}; its error is the cause)`, page, { cause: e });
}

/** The wasm's message (src/error.rs `caller_error`), as a FeedError of this module's class. */
function notHeaders(given: unknown, page: number): FeedError {
  return toFeedError(callerError(10, page, kindOf(given), undefined));
}

/**
 * The `Headers` to send from what the hook gave (a record, pairs, a `Headers` or a `Map`); every value, as sent (a
 * number as its text), is added to `secrets`. A header the runtime refuses is a `'bad-header'` error naming it: the
 * runtime's own error quotes the value, which is often a credential, so it is not kept.
 */
function toHeaders(given: object, secrets: string[], page: number): Headers {
  let entries: unknown[];
  try {
    entries = typeof read(given, Symbol.iterator) === 'function' ? Array.from(given as Iterable<unknown>) : Object.entries(given);
  } catch {
    throw notHeaders(given, page);
  }
  const headers = new Headers();
  for (const entry of entries) {
    let pair: unknown[];
    try {
      pair = Array.from(entry as Iterable<unknown>);
    } catch {
      pair = []; // not iterable: not a pair either
    }
    const [name, value] = pair;
    if (pair.length !== 2) throw notHeaders(given, page);
    let text: string;
    try {
      // The value as the runtime sends it (the WebIDL ToString a `Headers` applies: a number or an object becomes its
      // text, a symbol throws), converted once: that text is the secret, whatever the hook gave.
      text = `${value as string}`;
      headers.append(name as string, text);
    } catch {
      // JSON quoting shows a name with a newline on one line.
      const shown = typeof name === 'string' ? JSON.stringify(name.slice(0, 100)) : `(a name that is ${kindOf(name)})`;
      throw feedError('bad-header', `requestHeaders gave a header that cannot be sent: ${shown} (its value is not shown)`, page);
    }
    addSecret(secrets, text);
  }
  return headers;
}

/** How a request meets redirects: fetch's own rule, or the one an entry point chose ({@link followRedirects}). */
let follow = (fetch: FetchLike, request: Request): Promise<Response> => fetch(request);

/**
 * Follows redirects with `how` (Node's and workerd's entry points: js/src/redirects.ts) instead of fetch's own rule.
 * @internal
 */
export function followRedirects(how: typeof follow): void {
  follow = how;
}

/**
 * Wraps `fetch` (default: the global one, looked up at each call) and `requestHeaders` for one requester, and tells
 * the feed's `observer` (its `onRequest` / `onResponse` hooks and logger) about each request, as a `kind` request
 * (default `'page'`). The secrets of a request are the values the hook gave last and the request URL's query: one
 * transport must not be shared by requests in flight at once.
 * @internal
 */
export function transport(
  {
    fetch,
    requestHeaders,
    observer,
  }: {
    fetch?: FetchLike | undefined;
    requestHeaders?: ((context: RequestHeadersContext) => HeadersInit | Promise<HeadersInit>) | undefined;
    observer?: Observer | undefined;
  },
  kind?: RequestKind,
): Transport {
  // The values the hook gave last, and all the secrets of the last request (those and its query's).
  let secrets: string[] = [];
  let last: string[] = [];
  const out: Transport = {
    fetch: async (request, page) => {
      const url = request.url;
      urlSecrets(url, (last = [...secrets]));
      const sent = observer?.sent(url, kind);
      let response;
      try {
        response = await follow(fetch ?? globalThis.fetch, request);
      } catch (e) {
        throw networkError(url, e, last, page);
      }
      if (sent) observer?.got(sent, response);
      return response;
    },
    hide: (e) => {
      if (read(e, 'code') !== 'http-status') return;
      for (const key of ['message', 'bodySnippet']) {
        const text = read(e, key);
        // Reflect.set: a frozen error of the caller's is left as it is.
        if (typeof text === 'string') Reflect.set(e as object, key, blank(text, last));
      }
    },
  };
  if (requestHeaders !== undefined) {
    out.requestHeaders = async (context, page) => {
      secrets = [];
      let given: unknown;
      try {
        given = await requestHeaders({ refresh: context.refresh });
      } catch (e) {
        throw hookFailed('requestHeaders', e, page);
      }
      if (given === undefined || given === null) return undefined;
      if (typeof given !== 'object') throw notHeaders(given, page);
      return toHeaders(given, secrets, page);
    };
  }
  return out;
}
