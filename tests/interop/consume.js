// Runtime-neutral feed consumer for the interop tests: the same code runs in Node, in a Chromium page and in a
// workerd Worker, and returns a plain JSON-able summary that tests/interop/helpers.mjs checks against the reference
// server's /expected. It only uses the public API (openFeed, feed.batches()/events()/for-await, feed.cursors()).

/**
 * Python's `json.dumps(value)` (ensure_ascii, ", " and ": " separators) for values that come out of JSON.parse.
 * Numbers: only integers and floats whose Python repr equals JS's String() (the dataset keeps to those).
 */
export function pyDumps(value) {
  if (value === null) return 'null';
  if (value === true) return 'true';
  if (value === false) return 'false';
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return pyString(value);
  if (Array.isArray(value)) return value.length === 0 ? '[]' : `[${value.map(pyDumps).join(', ')}]`;
  const keys = Object.keys(value);
  if (keys.length === 0) return '{}';
  return `{${keys.map((k) => `${pyString(k)}: ${pyDumps(value[k])}`).join(', ')}}`;
}

function pyString(s) {
  let out = '"';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x22) out += '\\"';
    else if (c === 0x5c) out += '\\\\';
    else if (c === 0x0a) out += '\\n';
    else if (c === 0x0d) out += '\\r';
    else if (c === 0x09) out += '\\t';
    else if (c === 0x08) out += '\\b';
    else if (c === 0x0c) out += '\\f';
    else if (c < 0x20 || c > 0x7e) out += `\\u${c.toString(16).padStart(4, '0')}`;
    else out += s[i];
  }
  return `${out}"`;
}

/** The compact record of one delivered event: [partition, id, JSON.stringify(data), pyDumps(data), headers JSON]. */
export function eventRecord(ev) {
  const d = ev.data;
  return [
    ev.partition,
    d !== null && typeof d === 'object' ? d.id : null,
    JSON.stringify(d),
    pyDumps(d),
    ev.headers === undefined ? null : JSON.stringify(ev.headers),
  ];
}

function errorSummary(e) {
  if (e === null || typeof e !== 'object') return { name: typeof e, message: String(e) };
  return {
    name: e.name,
    code: e.code,
    status: e.status,
    bodySnippet: typeof e.bodySnippet === 'string' ? e.bodySnippet.slice(0, 200) : undefined,
    message: String(e.message).slice(0, 500),
    isFeedError: e.name === 'FeedError',
  };
}

/**
 * Consumes a feed and summarises what it delivered.
 * @param {object} api - the module namespace of a dist/entrypoints/*.js (openFeed, FeedError)
 * @param {string} url - the feed URL
 * @param {object} options - openFeed options (JSON-able; `onRetry` is added when `countRetries`)
 * @param {object} how - { mode: 'events' | 'batches' | 'iterator', breakAfter?: number events, keepData?: boolean,
 *                         countRetries?: boolean }
 * @returns summary: { events: [partition, id, jsText, pyText, headersJson|null][], batches, batchViolations,
 *   checkpoints, cursors, error, prototypeClean, protoOwn, ms, data? }
 */
/** A `fetch` that counts how the answers' bodies are read: the reader mode asked for, the reads, their bytes. */
function countingFetch(reads) {
  const wrap = (body) => ({
    getReader(options) {
      reads.modes.push(options?.mode ?? 'default');
      const reader = body.getReader(options);
      return {
        read: async (view) => {
          const r = await reader.read(view);
          if (!r.done) {
            reads.reads++;
            reads.bytes += r.value.byteLength;
            reads.largest = Math.max(reads.largest, r.value.byteLength);
          }
          return r;
        },
        cancel: (why) => reader.cancel(why),
      };
    },
  });
  return async (request) => {
    const res = await fetch(request);
    return new Proxy(res, { get: (t, k) => (k === 'body' ? t.body && wrap(t.body) : Reflect.get(t, k)) });
  };
}

/**
 * Consumes the feed at `url` with `options`; `how`: `mode` ('events' | 'batches'), `keepData`, `countRetries`,
 * `headers` (what a `requestHeaders` hook gives), and
 * `countReads` (the summary's `reads`: how the bodies were read, through a counting `fetch`).
 */
export async function consume(api, url, options = {}, how = {}) {
  const mode = how.mode ?? 'events';
  const started = Date.now();
  const events = [];
  const data = how.keepData ? [] : undefined;
  let batches = 0;
  let checkpoints = 0;
  let batchViolations = 0;
  let protoOwn = 0;
  let retries = 0;
  let error = null;
  const opts = { ...options };
  if (how.countRetries) opts.onRetry = () => { retries++; };
  if (how.headers) opts.requestHeaders = () => how.headers;
  const reads = how.countReads ? { modes: [], reads: 0, bytes: 0, largest: 0 } : undefined;
  if (reads) opts.fetch = countingFetch(reads);
  const feed = api.openFeed(url, opts);

  const record = (ev) => {
    const d = ev.data;
    events.push(eventRecord(ev));
    if (d !== null && typeof d === 'object' && Object.prototype.hasOwnProperty.call(d, '__proto__')) {
      if (Object.getPrototypeOf(d) === Object.prototype) protoOwn++;
    }
    if (data) data.push(d);
  };

  try {
    if (mode === 'batches') {
      outer: for await (const batch of feed.batches()) {
        batches++;
        checkpoints += batch.checkpoints.length;
        // Every event must be covered by a checkpoint of its partition in the same batch (the dataset's cursor is
        // the seq, so "covered" means a cursor >= the event's seq).
        const top = new Map();
        for (const c of batch.checkpoints) top.set(c.partition, Math.max(top.get(c.partition) ?? -1, Number(c.cursor)));
        for (const ev of batch.events) {
          const seq = ev.data && typeof ev.data === 'object' ? ev.data.seq : NaN;
          if (!(top.get(ev.partition) >= seq)) batchViolations++;
          record(ev);
          if (how.breakAfter !== undefined && events.length >= how.breakAfter) break outer;
        }
      }
    } else {
      const iterable = mode === 'iterator' ? feed : feed.events();
      for await (const ev of iterable) {
        record(ev);
        if (how.breakAfter !== undefined && events.length >= how.breakAfter) break;
      }
    }
  } catch (e) {
    error = errorSummary(e);
  }
  const probe = {};
  return {
    events,
    batches,
    batchViolations,
    checkpoints,
    retries,
    cursors: feed.cursors(),
    error,
    prototypeClean: probe.polluted === undefined && probe.isAdmin === undefined && Object.prototype.polluted === undefined,
    protoOwn,
    ms: Date.now() - started,
    ...(data ? { data } : {}),
    ...(reads ? { reads } : {}),
  };
}
