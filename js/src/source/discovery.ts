/**
 * The FeedAPI v2 discovery request (`GET <feed>`), one attempt: the request-headers hook (a `401` asks it once more
 * with `refresh: true`), a body read under the idle watchdog, the `signal` and a size cap, and errors that never
 * carry a header value or the URL's query. Retrying is V2Source's (through the core's retry policy).
 * @internal
 * @packageDocumentation
 */
import { type FeedError, messageOf, toFeedError } from '../errors.js';
import { abortedError, ifAborted, sleep, watched, type ReaderOptions } from '../options.js';
import { read, safeUrl, transport, type Transport } from '../transport.js';
import { cancelBody, chunkOf, openBody, recycle, startRead } from '../reader/body.js';
import { parseDiscovery as checkDiscovery, discoveryError, readerDefaults, type Discovery } from '../wasm/feedpump.js';

/** A partition as discovery lists it, and the discovery (their one home: the wasm's parseDiscovery, src/discovery.rs). */
export type { Discovery, V2Partition } from '../wasm/feedpump.js';

/**
 * The FeedError of a discovery failure, made by the wasm's `discoveryError` (the messages' one home, src/discovery.rs):
 * `which` says what failed, `n`, `a` and `b` are what its message shows (`b` is the cause where there is one).
 */
function failed(which: number, n = 0, a?: string, b?: unknown): FeedError {
  return toFeedError(discoveryError(which, n, a, b));
}

/**
 * Parses and checks a discovery answer (in the wasm, src/discovery.rs: a malformed part is `'bad-discovery'` naming
 * where, the value shown cut at 60 characters; ids are strings holding an integer 0..32767, or JSON numbers as the Go
 * server sends `startsAfterPartition` and `cursorFromPartitions`).
 * @internal
 */
export function parseDiscovery(body: unknown): Discovery {
  try {
    return checkDiscovery(body);
  } catch (e) {
    throw toFeedError(e);
  }
}

/** What a discovery attempt needs: the reader options' fetch, headers hook, signal and limits. */
export type Requester = Pick<ReaderOptions, 'fetch' | 'requestHeaders' | 'observer' | 'signal' | 'idleTimeoutMs' | 'maxLineLength'>;

/**
 * The `Retry-After` header of a non-2xx discovery answer, for the core's backoff (it parses it).
 * @internal
 */
export const RETRY_AFTER = new WeakMap<FeedError, string>();

/** The innermost `cause` of an error (Node's `fetch failed` hides `connect ECONNREFUSED …` there). */
function rootMessage(e: unknown): string {
  let c = e;
  for (let i = 0; i < 8 && c instanceof Error && c.cause != null; i++) c = c.cause;
  return messageOf(c);
}

/**
 * One discovery request, through the same transport as the reader's pages; throws a FeedError (never a raw error).
 * Its response head must come within `idleMs`, as every read of its body must: the request has its own signal, so that
 * one left unanswered is dropped (the caller's signal, watched, drops it too).
 */
async function request(url: string, req: Requester, calls: Transport, refresh: boolean, idleMs: number): Promise<Response> {
  const signal = req.signal;
  ifAborted(signal);
  const mine = new AbortController();
  /** The hook's headers and the response head each come within `idleMs`, or before the signal (close() too). */
  const wait = async (work: unknown): Promise<unknown> => {
    const got = await watched(work, idleMs || Infinity, signal);
    if (got === 'stalled' || got === 'aborted') {
      mine.abort();
      throw got === 'stalled' ? failed(2, idleMs) : abortedError(signal);
    }
    return got;
  };
  let headers: unknown;
  // Its failures are FeedErrors of the transport's (hook-failed, bad-header, bad-options), all final.
  if (calls.requestHeaders !== undefined) headers = await wait(calls.requestHeaders({ refresh }, 0));
  const init: RequestInit = { method: 'GET', signal: mine.signal };
  if (headers !== undefined) init.headers = headers as Headers;
  let r: Request;
  try {
    r = new Request(url, init);
  } catch {
    // The runtime's error quotes the URL: it is not kept.
    throw failed(0, 0, safeUrl(url));
  }
  return (await wait(calls.fetch(r, 0))) as Response;
}

/**
 * Reads the body of `response`: at most `limit` bytes (`over` says what happens beyond: an error, or `'cut'` to stop
 * and keep what came), the whole of it within `idleMs` (0: no limit) and before the signal: a discovery answer is one
 * small document, and a body that drips a byte now and then under `idleMs` would otherwise hold the feed for as long
 * as `limit` allows (years with the defaults). The body is always released. Any body the
 * reader reads is read (js/src/reader/body.ts: a ReadableStream, or an async iterable such as node-fetch's); one it
 * cannot is the same `bad-options` FeedError.
 */
async function readBody(
  response: Response,
  limit: number,
  idleMs: number,
  signal: AbortSignal | undefined,
  over: (() => FeedError) | 'cut',
): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  let size = 0;
  let body;
  const end = Date.now() + (idleMs || Infinity);
  try {
    body = openBody(read(response, 'body'), read(response, 'bodyUsed'), 0);
    while (body !== undefined) {
      const reading = startRead(body, 0);
      let got: unknown;
      try {
        got = await watched(reading, end - Date.now(), signal);
      } catch (e) {
        ifAborted(signal);
        if (over === 'cut') break;
        throw failed(1, 0, rootMessage(e), e);
      }
      // Also when the read won the race: one that has its bytes already does, after the signal and the deadline too.
      ifAborted(signal);
      if (got === 'stalled' || Date.now() >= end) {
        if (over === 'cut') break;
        throw failed(2, idleMs);
      }
      const chunk = chunkOf(got, 0);
      if (chunk === undefined) break;
      const room = limit - size;
      if (chunk.length > room) {
        if (over !== 'cut') throw over();
        parts.push(chunk.subarray(0, room)); // not read into again: the loop ends
        break;
      }
      size += chunk.length;
      // No bytes (a body of the caller's `fetch`): nothing kept, and a macrotask before the next read, as the reader
      // waits. Reads that gave empty chunks at once starved every timer (the signal's too: nothing could end it) and
      // grew `parts` without end (300 MB per million reads).
      if (chunk.length) parts.push(chunk.slice()); // copied: a BYOB read fills its buffer again
      recycle(body, chunk);
      if (!chunk.length) await sleep(0, signal);
    }
  } catch (e) {
    throw toFeedError(e); // the body helpers' errors are the wasm's
  } finally {
    if (body !== undefined) cancelBody(body);
  }
  return new Uint8Array(await new Blob(parts as BlobPart[]).arrayBuffer());
}

/**
 * One discovery attempt (the SPEC's negotiation: "start with a simple GET to the FeedAPI endpoint without any
 * arguments. For version 1 (ZeroEventHub) this should result in a 400 error; for version 2 the result will be the
 * discovery endpoint JSON payload"). Throws a FeedError; the core's backoff sees it by its code (src/backoff.rs).
 * @internal
 */
export async function discoverOnce(url: string, req: Requester): Promise<{ v1: true } | { v1: false; discovery: Discovery }> {
  const defaults = readerDefaults() as { idleTimeoutMs: number; maxLineLength: number; snippetBytes: number };
  const idleMs = req.idleTimeoutMs ?? defaults.idleTimeoutMs;
  const cap = req.maxLineLength ?? defaults.maxLineLength;
  // Bytes of a non-2xx discovery body kept as `bodySnippet`: as many as of the reader's error bodies.
  const SNIPPET_BYTES = defaults.snippetBytes;
  const calls = transport(req, 'discovery');
  let response = await request(url, req, calls, false, idleMs);
  if (response.status === 401 && req.requestHeaders !== undefined) {
    // As for pages: a 401 asks the hook once more, with `refresh: true`, before it counts.
    await readBody(response, SNIPPET_BYTES, idleMs, req.signal, 'cut');
    response = await request(url, req, calls, true, idleMs);
  }
  if (response.status === 400) {
    await readBody(response, SNIPPET_BYTES, idleMs, req.signal, 'cut');
    return { v1: true };
  }
  if (!response.ok) {
    const bytes = await readBody(response, SNIPPET_BYTES, idleMs, req.signal, 'cut');
    const snippet = new TextDecoder().decode(bytes).trim();
    const error = failed(3, response.status, `${response.statusText}`, snippet);
    calls.hide(error);
    const retryAfter = response.headers.get('retry-after');
    if (retryAfter !== null) RETRY_AFTER.set(error, retryAfter);
    throw error;
  }
  const bytes = await readBody(response, cap, idleMs, req.signal, () => failed(4, cap));
  req.observer?.read(bytes.length);
  let body: unknown;
  try {
    body = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (e) {
    throw failed(5, 0, undefined, e);
  }
  return { v1: false, discovery: parseDiscovery(body) };
}
