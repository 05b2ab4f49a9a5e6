/**
 * Redirects in Node and workerd: the `requestHeaders` hook's headers (credentials, as a rule) go only to the origin of
 * the feed's request. fetch follows a redirect to another origin with every header but `authorization`, so an
 * `x-api-key` would reach it. Here each redirect is fetched in turn (`redirect: 'manual'`, which these runtimes answer
 * with the redirect itself): one within the origin with the request's headers, one to another origin without any.
 * Browsers answer a manual redirect with an opaque response (no `Location`), so the web entry points keep fetch's own
 * rule; a runtime that does so here gets it too.
 * @internal
 * @packageDocumentation
 */
import type { FetchLike } from './types.js';

/** fetch's own limit. */
const MAX_REDIRECTS = 20;
const REDIRECTS = [301, 302, 303, 307, 308];

/**
 * `request` through `fetch`, each redirect followed as above (the redirect's own body is cancelled). What is not a
 * redirect is handed back as it came, whatever it is (the reader checks it).
 */
export async function withinOrigin(fetch: FetchLike, request: Request): Promise<Response> {
  const { origin } = new URL(request.url);
  let current = request;
  for (let hops = 0; ; hops++) {
    const response = await fetch(new Request(current, { redirect: 'manual' }));
    let next: URL;
    try {
      const location = REDIRECTS.includes(response.status) ? response.headers.get('location') : null;
      if (location === null) return response;
      next = new URL(location, current.url);
      // A failure to cancel changes nothing.
      response.body?.cancel().then(undefined, () => {});
    } catch {
      return response;
    }
    // As fetch: too many redirects is a network error (retried as one). A URL of another scheme is fetch's to refuse.
    if (hops >= MAX_REDIRECTS) throw new TypeError('too many redirects');
    const init: RequestInit = { signal: current.signal };
    if (next.origin === origin) init.headers = current.headers;
    current = new Request(next, init);
  }
}
