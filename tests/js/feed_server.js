// In-process fake feed for the reader's unit tests (tests/js/unit/reader.test.mjs): a `fetch` that answers from
// scripted pages, each a status and a list of body chunks, optionally ending in a cut connection or a stall. It records
// what the client asked for and whether the body was cancelled. A unit-test double for the shell only; the real
// servers are tested in tests/fault, tests/interop and tests/v2_server.

const enc = new TextEncoder();

export function scriptedFetch(pages) {
  const log = { urls: [], headers: [], cancelled: 0 };
  let i = 0;
  const fetch = async (request) => {
    log.urls.push(request.url);
    log.headers.push(Object.fromEntries(request.headers));
    const page = pages[Math.min(i++, pages.length - 1)];
    const chunks = (page.chunks || []).map((c) => (typeof c === 'string' ? enc.encode(c) : new Uint8Array(c)));
    let k = 0;
    const body = new ReadableStream({
      pull(controller) {
        if (k < chunks.length) {
          controller.enqueue(chunks[k++]);
          return;
        }
        if (page.end === 'cut') controller.error(new TypeError('terminated'));
        else if (page.end === 'stall') return new Promise((resolve) => setTimeout(resolve, 60_000).unref?.());
        else controller.close();
      },
      cancel() {
        log.cancelled += 1;
      },
    }, { highWaterMark: 0 });
    if (page.signalCheck && request.signal.aborted) throw request.signal.reason;
    return new Response(page.status === 204 ? null : body, { status: page.status || 200, statusText: page.statusText || '' });
  };
  return { fetch, log };
}

export function delay(ms) {
  return new Promise((r) => setTimeout(r, ms));
}
