// A fault-injection proxy for tests: it sits on 127.0.0.1 between a feed client and an upstream feed server and, per
// request, by a seeded random draw, either passes the response through or injects one fault:
//   cut      - forwards the status and part of the body, then destroys the socket at a random byte offset
//              (mid-line and mid-UTF-8 included): the client sees a truncated chunked body
//   status   - answers 500, 503 or 429 (with Retry-After: 0) without asking upstream
//   stall    - forwards part of the body, then sends nothing more (the client's idle watchdog must fire)
//   delay    - holds the response headers back for a while, then passes it through
// It only ever connects to the given upstream (a loopback URL) and listens on 127.0.0.1.

import http from 'node:http';

/** xorshift32: reproducible from the seed. */
function rng(seed) {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13; x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5; x >>>= 0;
    return x / 0x100000000;
  };
}

/**
 * @param {{ upstream: string, seed?: number, faultRate?: number, stallMs?: number, delayMs?: number }} opts
 * @returns {Promise<{ url: string, stats: Record<string, number>, close: () => Promise<void> }>}
 */
export async function startFaultProxy({ upstream, seed = 1, faultRate = 0.5, stallMs = 10_000, delayMs = 30 }) {
  const up = new URL(upstream);
  if (!['127.0.0.1', 'localhost', '[::1]'].includes(up.hostname)) throw new Error('upstream must be on loopback');
  const random = rng(seed);
  const stats = { requests: 0, passed: 0, cut: 0, status: 0, stall: 0, delay: 0 };
  const sockets = new Set();
  const timers = new Set();
  const later = (ms, fn) => { const t = setTimeout(() => { timers.delete(t); fn(); }, ms); timers.add(t); };

  const server = http.createServer((req, res) => {
    stats.requests += 1;
    const draw = random();
    const fault = draw >= faultRate ? 'pass' : ['cut', 'cut', 'status', 'stall', 'delay'][Math.floor(random() * 5)];
    if (fault === 'status') {
      stats.status += 1;
      const status = [500, 503, 429][Math.floor(random() * 3)];
      res.writeHead(status, { 'content-type': 'text/plain', 'retry-after': '0', 'access-control-allow-origin': '*' });
      res.end(`injected ${status}`);
      return;
    }
    const forward = () => {
      const target = new URL(req.url, up);
      const upReq = http.request(target, { method: req.method, headers: { ...req.headers, host: up.host } }, (upRes) => {
        res.writeHead(upRes.statusCode ?? 502, upRes.headers);
        if (fault === 'pass' || fault === 'delay') {
          stats[fault === 'pass' ? 'passed' : 'delay'] += 1;
          upRes.pipe(res);
          return;
        }
        // cut or stall after a random number of body bytes (at least 1, so the status has been sent; at most a few
        // lines, so small pages are hit too)
        const limit = 1 + Math.floor(random() * 700);
        let sent = 0;
        let done = false;
        upRes.on('data', (chunk) => {
          if (done) return;
          const room = limit - sent;
          if (chunk.length < room) {
            sent += chunk.length;
            res.write(chunk);
            return;
          }
          done = true;
          res.write(chunk.subarray(0, room));
          upRes.destroy();
          if (fault === 'cut') {
            stats.cut += 1;
            res.socket?.destroy();
          } else {
            stats.stall += 1;
            later(stallMs, () => res.socket?.destroy());
          }
        });
        upRes.on('end', () => { if (!done) { stats.passed += 1; res.end(); } });
      });
      upReq.on('error', () => res.socket?.destroy());
      req.on('close', () => { if (!res.writableEnded) upReq.destroy(); });
      upReq.end();
    };
    if (fault === 'delay') later(Math.floor(random() * delayMs), forward);
    else forward();
  });
  server.on('connection', (s) => { sockets.add(s); s.on('close', () => sockets.delete(s)); });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = /** @type {import('node:net').AddressInfo} */ (server.address());
  return {
    url: `http://127.0.0.1:${port}`,
    stats,
    close: () => new Promise((resolve) => {
      for (const t of timers) clearTimeout(t);
      for (const s of sockets) s.destroy();
      server.close(() => resolve());
    }),
  };
}
