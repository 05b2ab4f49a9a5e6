/**
 * `consume()`'s `pauseWhenHidden`, in the browser entry points only (web.ts, inline.ts): where there is no page (Node,
 * workerd) the option does nothing, and their bundles do not carry this.
 * @internal
 * @packageDocumentation
 */
import type { FetchLike } from './types.js';

/** The source's `fetch`, made to start no request while the page's `document` is hidden (as it is where there is none). */
export function visibleFetch(fetch: FetchLike | undefined): FetchLike | undefined {
  const doc = (globalThis as { document?: Document }).document;
  return doc === undefined ? fetch : whenVisible(doc, fetch);
}

/** A `fetch` that starts no request while `doc` is hidden: it waits for a `visibilitychange` (or the request's abort). */
function whenVisible(doc: Document, fetch: FetchLike | undefined): FetchLike {
  return async (request) => {
    while (doc.visibilityState === 'hidden' && !request.signal.aborted) {
      await new Promise<void>((resolve) => {
        const done = (): void => {
          doc.removeEventListener('visibilitychange', done);
          request.signal.removeEventListener('abort', done);
          resolve();
        };
        doc.addEventListener('visibilitychange', done);
        request.signal.addEventListener('abort', done);
      });
    }
    return (fetch ?? globalThis.fetch)(request);
  };
}
