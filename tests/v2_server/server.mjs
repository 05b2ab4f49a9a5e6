// A FeedAPI v2 reference publisher for tests, written from vippsas/feedapi-spec SPEC.md (see docs/feedapi-v2.md).
// Node stdlib only; listens on 127.0.0.1.
//
//   node tests/v2_server/server.mjs        prints `LISTENING <port>`, exits when stdin closes
//   import { startV2Server } from '...'    in-process: { url, port, close(), state }
//
// Feeds (each at /<name> with its events at /<name>/events):
//   /feed      partitions "0".."3", 500 events each, all open
//   /nofilter  the same events, but the server ignores event-types / skip-event-types (the SPEC allows that)
//   /secure    the same events behind `Authorization: Bearer secret-token` (none: 401, another: 403)
//   /split     method 1: "0" closed (400 events), "1" and "2" startsAfterPartition "0" (150 events each, open).
//              Events carry orderId and a per-order version: reading 0 first, then the children, gives every order's
//              versions 1, 2, 3, ... in order.
//   /cosmos    method 2: first only "0" (600 events); after POST /_control {"feed":"cosmos","split":true} the token
//              changes and the feed lists "1" and "2" with cursorFromPartitions ["0"]: the whole history is
//              redistributed by order (orderId even → "1", odd → "2") plus 100 new events each. A cursor of "0" is
//              valid on "1" and "2"; "0" is no longer listed (its events requests then answer 400).
//
// Events: data `{ type, id, partition, seq, orderId, version, amount, meta: { type, source } }` with types
// OrderCreated, OrderShipped, Payment.Captured, Payment.Refunded, Customer.Updated; every event with seq % 11 === 0
// sends `data` as a string holding that JSON; before events with seq % 50 === 25 an unknown command line
// `{"x-heartbeat":{..}}` is sent; every 13th event line has an unknown extra field. Cursors are opaque strings.
// A page returns at most `pagesizehint` (default 100, max 1000) events and scans at most twice that many, so a
// filtered page may hold no events but a moved cursor. Checkpoints: after every 5th event sent and always one at the
// end of the page (the last event scanned, filtered or not; the request's own position when nothing was scanned).
//
// Status codes: wrong token 409; no token, bad/unknown partition, bad cursor, bad pagesizehint, both filters, `n`
// on discovery 400; unknown path 404; /secure: 401/403.
//
// Test endpoints:
//   POST /_control {"rotateToken":true,"feed":"feed"}          → {"token":..}; the old token then gets 409
//   POST /_control {"feed":"cosmos","split":true}              → split (method 2) and a new token
//   POST /_control {"feed":"cosmos","split":{"keepParent":true}} → the same, but "0" stays listed, closed, serving its
//        history as before (a publisher mid-transition): read both without order and the history after the cursor
//        the children started from comes twice
//   POST /_control {"feed":"feed","append":{"partition":"0","count":10}}  → new events (409 on a closed partition)
//   POST /_control {"reset":true}                              → everything as at start (tokens too), log cleared
//   POST /_control {"feed":"feed","splitRunning":{"partition":"1","children":["4","5"],"count":600}}
//        → split method 1 while consumers run: "1" becomes closed, the children (startsAfterPartition "1", `count`
//          events each) are listed, and the token changes (the next events request gets 409)
//   POST /_control {"feed":"feed","addPartition":{"partition":"6","count":200}}
//        → a new top-level partition (no parent, `count` events) is listed, and the token changes
//   POST /_control {"feed":"feed","conflicts":N}               → the next N events requests answer 409 (a 409 storm;
//                                                                1e9 = always)
//   POST /_control {"feed":"feed","conflictEvery":N}           → a token that changes every few requests: every Nth
//        events request changes the token and answers 409 (the others are answered as usual; 0 stops it)
//   POST /_control {"feed":"feed","hot":{"partition":"0","perRequest":50}}  → every events request of that partition
//        first appends perRequest events, so it is never caught up ({"hot":null} stops it)
//   POST /_control {"feed":"feed","rotateOnDiscovery":true}   → every discovery answers a new token (the older ones
//        then get 409): consumers sharing the feed invalidate each other's tokens
//   POST /_control {"feed":"feed","heartbeats":"0"}            → every events request of that partition is answered 200
//        with an unknown command line (`{"x-heartbeat":..}`, to be ignored) every 50 ms, for ever: no event, no
//        cursor ({"heartbeats":null} stops it)
//   POST /_control {"feed":"feed","discovery":{...}}           → discovery faults: {"status":503,"times":2} (then
//        normal), {"stall":true} (headers and a part of the body, then silence), {"huge":true} (an endless
//        partition list), {"drip":true} (the start of a document, then one space every 50 ms, for
//        ever: never stalled, never over a size cap), {"stallError":true} (a 503 whose body stalls), {"partitions":[...]} (this raw list,
//        e.g. a cycle or 100,000 entries); {"discovery":null} → normal
//   POST /_control {"feed":"secure","secret":"s2"}              → the secret changes (the old bearer token gets 401)
//   GET  /expected?feed=feed[&event-types=a;b|&skip-event-types=a;b]
//        → {feed, token, partitions: {id: [{seq, type, data}]}} for the partitions listed now, filtered like the server
//   GET  /_requests → [{method, url, status}] since start/reset
// Every answer has CORS headers (Access-Control-Allow-Origin: *; OPTIONS preflight answered with 204).
import http from 'node:http';
import { pathToFileURL } from 'node:url';

export const TYPES = ['OrderCreated', 'OrderShipped', 'Payment.Captured', 'Payment.Refunded', 'Customer.Updated'];
export const FEEDS = ['feed', 'nofilter', 'secure', 'split', 'cosmos'];
export const SECRET = 'secret-token';
const DEFAULT_HINT = 100;
const MAX_HINT = 1000;
const CHECKPOINT_EVERY = 5;

function mix(...nums) {
  let h = 0x2545f491;
  for (const n of nums) {
    h = Math.imul(h ^ n, 0x9e3779b1);
    h ^= h >>> 15;
    h = Math.imul(h, 0x85ebca77);
    h ^= h >>> 13;
  }
  return h >>> 0;
}

/** An event as stored: { seq, type, data } where data is what goes on the wire (object or JSON string). */
function makeEvent(feedSalt, partition, seq, orderId, version) {
  const type = TYPES[mix(feedSalt, Number(partition), seq) % TYPES.length];
  const obj = {
    type,
    id: `${partition}-${seq}`,
    partition,
    seq,
    orderId,
    version,
    amount: mix(seq, 7) % 10_000,
    meta: { type, source: 'v2-test-server' },
  };
  return { seq, type, data: seq % 11 === 0 ? JSON.stringify(obj) : obj };
}

function plainPartitions(salt) {
  const parts = new Map();
  for (const id of ['0', '1', '2', '3']) {
    const versions = new Map();
    const list = [];
    for (let seq = 1; seq <= 500; seq++) {
      const orderId = `o${id}-${mix(salt, seq, Number(id)) % 25}`;
      const v = (versions.get(orderId) ?? 0) + 1;
      versions.set(orderId, v);
      list.push(makeEvent(salt, id, seq, orderId, v));
    }
    parts.set(id, { id, closed: false, events: list, versions });
  }
  return parts;
}

function splitFeed() {
  const versions = new Map();
  const next = (o) => {
    const v = (versions.get(o) ?? 0) + 1;
    versions.set(o, v);
    return v;
  };
  const p0 = [];
  for (let seq = 1; seq <= 400; seq++) {
    const o = mix(31, seq) % 30;
    p0.push(makeEvent(31, '0', seq, `o${o}`, next(`o${o}`)));
  }
  const kids = { 1: [], 2: [] };
  for (let k = 1; k <= 300; k++) {
    const o = mix(32, k) % 30;
    const pid = o % 2 === 0 ? '1' : '2';
    kids[pid].push(makeEvent(31, pid, kids[pid].length + 1, `o${o}`, next(`o${o}`)));
  }
  // Top up so each child has exactly 150 events (deterministic either way; keeps the counts simple).
  for (const pid of ['1', '2']) {
    let k = 0;
    while (kids[pid].length < 150) {
      const o = (pid === '1' ? 0 : 1) + 2 * (mix(33, k++) % 15);
      kids[pid].push(makeEvent(31, pid, kids[pid].length + 1, `o${o}`, next(`o${o}`)));
    }
    kids[pid] = kids[pid].slice(0, 150);
  }
  // Recompute versions over the final layout so that parent-then-child order gives 1, 2, 3, ... per order.
  const seen = new Map();
  const fix = (ev) => {
    const obj = typeof ev.data === 'string' ? JSON.parse(ev.data) : ev.data;
    const v = (seen.get(obj.orderId) ?? 0) + 1;
    seen.set(obj.orderId, v);
    obj.version = v;
    ev.data = typeof ev.data === 'string' ? JSON.stringify(obj) : obj;
  };
  p0.forEach(fix);
  for (const pid of ['1', '2']) kids[pid].forEach(fix);
  return new Map([
    ['0', { id: '0', closed: true, events: p0, versions: seen }],
    ['1', { id: '1', closed: false, startsAfterPartition: '0', events: kids[1], versions: seen }],
    ['2', { id: '2', closed: false, startsAfterPartition: '0', events: kids[2], versions: seen }],
  ]);
}

/** Method 2: one global history; seq is global so a cursor of "0" means the same position on "1" and "2". */
function cosmosHistory(count, from = 1, versions = new Map()) {
  const list = [];
  for (let seq = from; seq < from + count; seq++) {
    const o = mix(41, seq) % 40;
    const v = (versions.get(o) ?? 0) + 1;
    versions.set(o, v);
    list.push({ order: o, ev: makeEvent(41, '0', seq, `o${o}`, v) });
  }
  return { list, versions };
}

function cosmosBefore() {
  const { list, versions } = cosmosHistory(600);
  return { parts: new Map([['0', { id: '0', closed: false, events: list.map((x) => x.ev), versions }]]), history: list, versions };
}

function cosmosAfter(history, versions) {
  const more = cosmosHistory(200, history.length + 1, versions);
  const all = history.concat(more.list);
  const pick = (pid) =>
    all
      .filter((x) => (x.order % 2 === 0 ? '1' : '2') === pid)
      .map(({ ev }) => {
        const obj = typeof ev.data === 'string' ? JSON.parse(ev.data) : { ...ev.data };
        obj.partition = pid;
        obj.meta = { ...obj.meta };
        return { seq: ev.seq, type: ev.type, data: typeof ev.data === 'string' ? JSON.stringify(obj) : obj };
      });
  return new Map([
    ['1', { id: '1', closed: false, cursorFromPartitions: ['0'], events: pick('1'), versions }],
    ['2', { id: '2', closed: false, cursorFromPartitions: ['0'], events: pick('2'), versions }],
  ]);
}

function initialState() {
  const c = cosmosBefore();
  return {
    feeds: {
      feed: { token: 'feed-t1', parts: plainPartitions(11), filters: true },
      nofilter: { token: 'nofilter-t1', parts: plainPartitions(11), filters: false },
      secure: { token: 'secure-t1', parts: plainPartitions(11), filters: true, auth: true, secret: SECRET },
      split: { token: 'split-t1', parts: splitFeed(), filters: true },
      cosmos: { token: 'cosmos-t1', parts: c.parts, filters: true, history: c.history, versions: c.versions, splitDone: false },
    },
    log: [],
    rotations: 0,
  };
}

// ---- cursors: opaque to clients; here base64url of "<feed>|<partition>|<seq>"
function encodeCursor(feed, partition, seq) {
  return Buffer.from(`${feed}|${partition}|${seq}`).toString('base64url');
}
function decodeCursor(feed, cursor) {
  const m = /^([a-z]+)\|(\d+)\|(\d+)$/.exec(Buffer.from(cursor, 'base64url').toString());
  if (!m || m[1] !== feed) return undefined;
  return { partition: m[2], seq: Number(m[3]) };
}

/** The filter of a request: undefined (none) or { include: bool, names: Set(lowercased) }. Throws a string on 400. */
export function parseTypeFilter(q) {
  const inc = q.has('event-types');
  const exc = q.has('skip-event-types');
  if (inc && exc) throw 'event-types and skip-event-types cannot be used at the same time';
  if (!inc && !exc) return undefined;
  const names = (q.get(inc ? 'event-types' : 'skip-event-types') ?? '')
    .split(';')
    .map((s) => s.trim().toLowerCase())
    .filter((s) => s !== '');
  if (names.length === 0) return undefined;
  return { include: inc, names: new Set(names) };
}
function passes(filter, type) {
  if (!filter) return true;
  return filter.names.has(type.toLowerCase()) === filter.include;
}

function discovery(feedName, f) {
  return {
    token: f.token,
    partitions: [...f.parts.values()].map((p) => {
      const d = { id: p.id };
      if (p.closed) d.closed = true;
      if (p.startsAfterPartition !== undefined) d.startsAfterPartition = p.startsAfterPartition;
      if (p.cursorFromPartitions) d.cursorFromPartitions = [...p.cursorFromPartitions];
      return d;
    }),
    exactlyOnce: true,
  };
}

const CORS = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'authorization, content-type, x-requested-with',
  'access-control-expose-headers': 'retry-after, content-type',
  'access-control-max-age': '600',
};

function send(res, status, body, type = 'text/plain; charset=utf-8') {
  res.writeHead(status, { ...CORS, 'content-type': type, 'cache-control': 'no-store' });
  res.end(body);
}
const sendJson = (res, status, obj) => send(res, status, JSON.stringify(obj) + '\n', 'application/json');

/** The lines of one events page (strings without '\n'). Throws a string on 400. */
export function pageLines(feedName, f, q) {
  const pid = q.get('partition');
  if (pid === null || !/^(0|[1-9]\d{0,4})$/.test(pid) || Number(pid) > 32767) throw 'partition must be an id 0..32767';
  const part = f.parts.get(pid);
  if (!part) throw `partition ${pid} does not exist`;
  const cursor = q.get('cursor');
  if (cursor === null || cursor === '') throw 'no cursor argument';
  let after;
  if (cursor === '_first') after = 0;
  else if (cursor === '_last') after = part.events.length ? part.events[part.events.length - 1].seq : 0;
  else {
    const c = decodeCursor(feedName, cursor);
    const allowed = c && (c.partition === pid || (part.cursorFromPartitions ?? []).includes(c.partition));
    if (!allowed) throw `cursor ${JSON.stringify(cursor)} is not valid on partition ${pid}`;
    after = c.seq;
  }
  let hint = DEFAULT_HINT;
  if (q.has('pagesizehint')) {
    const h = q.get('pagesizehint');
    if (!/^\d{1,9}$/.test(h)) throw 'pagesizehint must be a non-negative integer';
    hint = Math.min(Math.max(Number(h), 1), MAX_HINT);
  }
  const filter = f.filters ? parseTypeFilter(q) : undefined;

  const lines = [];
  let sent = 0;
  let scanned = 0;
  let last = after;
  let lastCheckpoint = -1;
  for (const ev of part.events) {
    if (ev.seq <= after) continue;
    if (sent >= hint || scanned >= 2 * hint) break;
    scanned++;
    last = ev.seq;
    if (!passes(filter, ev.type)) continue;
    if (ev.seq % 50 === 25) lines.push(JSON.stringify({ 'x-heartbeat': { seq: ev.seq, note: 'unknown command: ignore' } }));
    const line = ev.seq % 13 === 0 ? { data: ev.data, 'x-trace': `t${ev.seq}` } : { data: ev.data };
    lines.push(JSON.stringify(line));
    sent++;
    if (sent % CHECKPOINT_EVERY === 0) {
      lines.push(JSON.stringify({ cursor: encodeCursor(feedName, pid, ev.seq) }));
      lastCheckpoint = ev.seq;
    }
  }
  if (lastCheckpoint !== last || lines.length === 0) lines.push(JSON.stringify({ cursor: encodeCursor(feedName, pid, last) }));
  return lines;
}

function expected(state, q) {
  const name = q.get('feed') ?? 'feed';
  const f = state.feeds[name];
  if (!f) throw `unknown feed ${name}`;
  const filter = parseTypeFilter(q);
  const partitions = {};
  for (const p of f.parts.values()) {
    partitions[p.id] = p.events.filter((ev) => passes(filter, ev.type)).map(({ seq, type, data }) => ({ seq, type, data }));
  }
  return { feed: name, token: f.token, partitions };
}

function control(state, body) {
  if (body.reset) {
    Object.assign(state, initialState());
    return { ok: true };
  }
  const name = body.feed ?? 'feed';
  const f = state.feeds[name];
  if (!f) throw `unknown feed ${name}`;
  const out = { ok: true };
  if (body.split) {
    if (name !== 'cosmos') throw 'only the cosmos feed splits';
    if (!f.splitDone) {
      const parent = f.parts.get('0');
      f.parts = cosmosAfter(f.history, f.versions);
      if (body.split.keepParent) f.parts = new Map([['0', { ...parent, closed: true }], ...f.parts]);
      f.splitDone = true;
    }
    body.rotateToken = true;
  }
  if (body.append) {
    const pid = String(body.append.partition ?? '0');
    const part = f.parts.get(pid);
    if (!part) throw `partition ${pid} does not exist`;
    if (part.closed) return { status: 409, body: { error: `partition ${pid} is closed: no new events, ever` } };
    const count = Number(body.append.count ?? 1);
    if (!Number.isInteger(count) || count < 0 || count > 100_000) throw 'append.count must be an integer 0..100000';
    appendEvents(name, f, pid, count);
    out.appended = count;
  }
  if (body.splitRunning) {
    const { partition, children, count } = body.splitRunning;
    const part = f.parts.get(String(partition));
    if (!part || !Array.isArray(children)) throw 'splitRunning needs a listed partition and children ids';
    part.closed = true;
    for (const id of children) {
      const kid = { id: String(id), closed: false, startsAfterPartition: part.id, events: [], versions: part.versions };
      f.parts.set(kid.id, kid);
      appendEvents(name, f, kid.id, Number(count ?? 100));
    }
    body.rotateToken = true;
  }
  if (body.addPartition) {
    const { partition, count } = body.addPartition;
    const id = String(partition);
    if (f.parts.has(id)) throw `partition ${id} is listed already`;
    f.parts.set(id, { id, closed: false, events: [], versions: new Map() });
    appendEvents(name, f, id, Number(count ?? 100));
    body.rotateToken = true;
  }
  if (body.conflicts !== undefined) f.conflicts = Number(body.conflicts);
  if (body.conflictEvery !== undefined) f.conflictEvery = { every: Number(body.conflictEvery), seen: 0 };
  if (body.hot !== undefined) f.hot = body.hot === null ? undefined : { partition: String(body.hot.partition), perRequest: Number(body.hot.perRequest ?? 50) };
  if (body.rotateOnDiscovery !== undefined) f.rotateOnDiscovery = Boolean(body.rotateOnDiscovery);
  if (body.heartbeats !== undefined) f.heartbeats = body.heartbeats ?? undefined;
  if (body.discovery !== undefined) f.discoveryFault = body.discovery ?? undefined;
  if (body.secret !== undefined) f.secret = String(body.secret);
  if (body.rotateToken) {
    state.rotations++;
    f.token = `${name}-t${state.rotations + 1}`;
  }
  out.token = f.token;
  return out;
}

/** Appends `count` new events to an open partition. */
function appendEvents(name, f, pid, count) {
  const part = f.parts.get(pid);
  for (let i = 0; i < count; i++) {
    const seq = (part.events.at(-1)?.seq ?? 0) + 1;
    const orderId = `o${pid}-live`;
    const v = (part.versions.get(orderId) ?? 0) + 1;
    part.versions.set(orderId, v);
    const ev = makeEvent(name.length, pid, seq, orderId, v);
    part.events.push(ev);
    if (name === 'cosmos' && !f.splitDone) f.history.push({ order: 0, ev });
  }
}

/** Answers discovery with the fault set by `{"discovery":{...}}` (see the header). */
function discoveryFault(res, name, f) {
  const d = f.discoveryFault;
  if (d.status !== undefined) {
    if (d.times !== undefined && --d.times <= 0) f.discoveryFault = undefined;
    return send(res, d.status, `discovery fault ${d.status}`);
  }
  if (d.partitions !== undefined) return sendJson(res, 200, { token: f.token, partitions: d.partitions, exactlyOnce: true });
  res.writeHead(d.stallError ? 503 : 200, { ...CORS, 'content-type': 'application/json' });
  if (d.drip) {
    res.write(`{"token":"${f.token}","partitions":[{"id":"0"}`);
    const timer = setInterval(() => res.write(' '), 50);
    res.on('close', () => clearInterval(timer));
    return;
  }
  if (d.stall || d.stallError) {
    res.write('{"token":"');
    return; // never ends; the client's idle watchdog must give up (the test closes the server)
  }
  // huge: an endless partition list, written as fast as the client reads it
  res.write(`{"token":"${f.token}","partitions":[{"id":"0"}`);
  const chunk = ',{"id":"1","closed":true}'.repeat(4096);
  const pump = () => {
    while (!res.destroyed && res.write(chunk));
    if (!res.destroyed) res.once('drain', pump);
  };
  res.on('close', () => res.removeAllListeners('drain'));
  pump();
}

function readBody(req) {
  return new Promise((resolve, reject) => {
    const chunks = [];
    let size = 0;
    req.on('data', (c) => {
      size += c.length;
      if (size > 1 << 24) reject(new Error('body too large'));
      else chunks.push(c);
    });
    req.on('end', () => resolve(Buffer.concat(chunks).toString()));
    req.on('error', reject);
  });
}

function handler(state) {
  return async (req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    const entry = { method: req.method, url: req.url, status: 0 };
    if (!url.pathname.startsWith('/_requests')) state.log.push(entry);
    res.on('finish', () => (entry.status = res.statusCode));
    try {
      if (req.method === 'OPTIONS') {
        res.writeHead(204, CORS);
        res.end();
        return;
      }
      const path = url.pathname.replace(/\/+$/, '') || '/';
      if (path === '/_control' && req.method === 'POST') {
        let body;
        try {
          body = JSON.parse((await readBody(req)) || '{}');
        } catch {
          return send(res, 400, 'control body must be JSON');
        }
        const r = control(state, body ?? {});
        return r.status ? sendJson(res, r.status, r.body) : sendJson(res, 200, r);
      }
      if (path === '/expected' && req.method === 'GET') return sendJson(res, 200, expected(state, url.searchParams));
      if (path === '/_requests' && req.method === 'GET') return sendJson(res, 200, state.log);
      const m = /^\/([a-z]+)(\/events)?$/.exec(path);
      const f = m && state.feeds[m[1]];
      if (!f || req.method !== 'GET') return send(res, f ? 405 : 404, f ? 'method not allowed' : 'not found');
      if (f.auth) {
        const auth = req.headers.authorization;
        if (!auth) {
          res.setHeader('www-authenticate', 'Bearer');
          return send(res, 401, 'missing bearer token');
        }
        if (auth !== `Bearer ${f.secret}`) return send(res, f.secret !== SECRET && auth === `Bearer ${SECRET}` ? 401 : 403, 'forbidden');
      }
      const q = url.searchParams;
      if (!m[2]) {
        if (q.has('n')) return send(res, 400, 'this is a FeedAPI v2 endpoint: discovery is a GET without arguments');
        if (f.discoveryFault) return discoveryFault(res, m[1], f);
        if (f.rotateOnDiscovery) control(state, { feed: m[1], rotateToken: true });
        return sendJson(res, 200, discovery(m[1], f));
      }
      if (!q.has('token')) return send(res, 400, 'token missing: call discovery first');
      if (f.conflicts > 0) {
        f.conflicts--;
        return send(res, 409, 'token changed, run discovery again');
      }
      if (q.get('token') !== f.token) return send(res, 409, 'token changed, run discovery again');
      if (f.conflictEvery?.every > 0 && ++f.conflictEvery.seen % f.conflictEvery.every === 0) {
        control(state, { feed: m[1], rotateToken: true });
        return send(res, 409, 'token changed, run discovery again');
      }
      if (f.heartbeats !== undefined && q.get('partition') === String(f.heartbeats)) {
        res.writeHead(200, { ...CORS, 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
        const timer = setInterval(() => res.write('{"x-heartbeat":{"note":"unknown command: ignore"}}\n'), 50);
        res.on('close', () => clearInterval(timer));
        return;
      }
      if (f.hot && q.get('partition') === f.hot.partition) appendEvents(m[1], f, f.hot.partition, f.hot.perRequest);
      const lines = pageLines(m[1], f, q);
      // Which partitions were served a page with no events (read to their end): tests time a split after that.
      if (!lines.some((l) => l.startsWith('{"data"'))) (f.caughtUpServed ??= new Set()).add(q.get('partition'));
      res.writeHead(200, { ...CORS, 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
      for (let i = 0; i < lines.length; i += 16) res.write(lines.slice(i, i + 16).join('\n') + '\n');
      res.end();
    } catch (e) {
      if (typeof e === 'string') return send(res, 400, e);
      send(res, 500, 'Internal server error');
    }
  };
}

/** Starts the server on 127.0.0.1 (port 0 unless given). */
export async function startV2Server({ port = 0 } = {}) {
  const state = initialState();
  const server = http.createServer(handler(state));
  server.keepAliveTimeout = 1000;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', resolve);
  });
  const actual = server.address().port;
  return {
    server,
    state,
    port: actual,
    url: `http://127.0.0.1:${actual}`,
    /** POST /_control (see the top of this file); resolves to its JSON answer, rejects unless it is a 200. */
    control: async (body) => {
      const r = await fetch(`http://127.0.0.1:${actual}/_control`, { method: 'POST', body: JSON.stringify(body) });
      if (r.status !== 200) throw new Error(`control ${JSON.stringify(body)}: ${r.status} ${await r.text()}`);
      return r.json();
    },
    close: () =>
      new Promise((resolve) => {
        server.closeAllConnections?.();
        server.close(() => resolve());
      }),
  };
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const portArg = process.argv.indexOf('--port');
  const s = await startV2Server({ port: portArg > 0 ? Number(process.argv[portArg + 1]) : 0 });
  process.stdout.write(`LISTENING ${s.port}\n`);
  const stop = () => s.close().then(() => process.exit(0));
  process.stdin.on('end', stop);
  process.stdin.on('close', stop);
  process.stdin.resume();
}
