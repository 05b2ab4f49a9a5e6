// The benchmark's loopback server (127.0.0.1, a free port), run by bench/run.mjs and stopped by it.
//   GET /feed/<ascii|mixed>?…   page 1 (every cursor `_first`): the generated feed as chunked HTTP, written in 64 KiB
//                               pieces; any later page: an empty body (the feed is then caught up)
//   GET /big/<mb>?…             page 1: ~mb×10^6 bytes generated on the fly (never held in memory); later: empty
//   GET /live/<rate>/<count>?…  page 1: an open chunked page writing events live at `rate` events/s, each event
//                               followed by its partition's checkpoint and stamped with the write time; later: empty
//   GET /tick                   'ok' (workerd advances its clock only across I/O)
//   GET /cpu                    the CPU time (ms, all threads) of the process set by `cpuOf(pid)` (workerd's, whose
//                               Worker cannot read its own), from /proc/<pid>/task/*/schedstat; `null` when unknown
//   GET /dist/…, /bench/…       static files for the Chromium page; GET / the page itself
import http from 'node:http';
import { readFileSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildFeed, FeedGen, PARTITIONS } from './gen.js';
import { isFirstPage } from './workloads.js';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const MIME = { '.js': 'text/javascript', '.mjs': 'text/javascript', '.wasm': 'application/wasm', '.html': 'text/html' };
const NDJSON = { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' };
const CHUNK = 64 * 1024;

/** Writes `buf` in CHUNK pieces, waiting for 'drain' when the socket is full. */
async function writeAll(res, buf) {
  for (let i = 0; i < buf.length; i += CHUNK) {
    if (!res.write(buf.subarray(i, Math.min(i + CHUNK, buf.length)))) {
      await new Promise((resolve) => {
        const done = () => {
          res.off('drain', done);
          res.off('close', done);
          resolve();
        };
        res.on('drain', done);
        res.on('close', done);
      });
      if (res.destroyed) return;
    }
  }
}

/** ~`total` bytes of feed: a 400-event block of event lines repeated, each copy closed by fresh checkpoints. */
async function writeBig(res, total) {
  const gen = new FeedGen({ variant: 'ascii', seed: 7 });
  const lines = [];
  for (let i = 0; i < 400; i++) {
    const at = lines.length;
    gen.event(lines);
    lines.length = at + 1; // the block holds events only; checkpoints come per copy
  }
  const block = Buffer.from(`${lines.join('\n')}\n`);
  let written = 0;
  let n = 0;
  while (written < total && !res.destroyed) {
    n++;
    const cps = [];
    for (let p = 0; p < PARTITIONS; p++) cps.push(`{"partition":${p},"cursor":"big-${String(n).padStart(9, '0')}"}`);
    const buf = Buffer.concat([block, Buffer.from(`${cps.join('\n')}\n`)]);
    await writeAll(res, buf);
    written += buf.length;
  }
  return { bytes: written, events: n * 400 };
}

const now = () => performance.timeOrigin + performance.now();

/** CPU time of every live thread of process `pid` in ms (Linux /proc), or null. */
export function processCpuMs(pid) {
  try {
    let ns = 0;
    for (const t of readdirSync(`/proc/${pid}/task`)) ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, 'utf8').split(' ')[0]);
    return ns / 1e6;
  } catch {
    return null;
  }
}

/** Live: `count` events at `rate`/s; each write carries every event due, stamped with the time of the write. */
function writeLive(res, rate, count) {
  return new Promise((resolve) => {
    const gen = new FeedGen({ variant: 'ascii', seed: 3 });
    const pad = gen.data(0).slice(1, 200); // some realistic bulk, ~300 B lines
    let sent = 0;
    const start = now();
    const tick = () => {
      if (res.destroyed) return finish();
      const due = Math.min(count, Math.floor(((now() - start) * rate) / 1000) + 1);
      if (due > sent) {
        const out = [];
        const t = now();
        for (; sent < due; sent++) {
          const p = sent % PARTITIONS;
          out.push(`{"partition":${p},"data":{"t":${t},"seq":${sent},"pad":${JSON.stringify(pad)}}}`);
          out.push(`{"partition":${p},"cursor":"live-${sent}"}`);
        }
        res.write(`${out.join('\n')}\n`);
      }
      if (sent >= count) return finish();
      timer = setTimeout(tick, 1);
    };
    let timer = setTimeout(tick, 1);
    const finish = () => {
      clearTimeout(timer);
      res.end();
      resolve();
    };
  });
}

/**
 * @param {{ events: number, page?: string }} opts  events per /feed page; `page` the HTML served at /
 */
export async function startBenchServer({ events, page = '' }) {
  const bodies = new Map();
  const body = (variant) => {
    if (!bodies.has(variant)) bodies.set(variant, Buffer.from(buildFeed({ events, variant }).text));
    return bodies.get(variant);
  };
  const stats = { big: undefined };
  let cpuPid;
  const server = http.createServer(async (req, res) => {
    try {
      const url = new URL(req.url, 'http://x');
      const p = url.pathname;
      const cors = { 'access-control-allow-origin': '*' };
      if (p === '/tick') return void res.writeHead(200, { 'cache-control': 'no-store', ...cors }).end('ok');
      if (p === '/cpu') {
        const ms = cpuPid === undefined ? null : processCpuMs(cpuPid);
        return void res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store', ...cors }).end(JSON.stringify(ms));
      }
      if (p.startsWith('/feed/') || p.startsWith('/big/') || p.startsWith('/live/')) {
        res.writeHead(200, { ...NDJSON, ...cors });
        if (!isFirstPage(req.url)) return void res.end();
        const [, , a, b] = p.split('/');
        if (p.startsWith('/big/')) stats.big = await writeBig(res, Number(a) * 1e6);
        else if (p.startsWith('/live/')) await writeLive(res, Number(a), Number(b));
        else {
          const variant = p.slice('/feed/'.length);
          if (variant !== 'ascii' && variant !== 'mixed') return void res.end();
          await writeAll(res, body(variant));
        }
        return void res.end();
      }
      if (p === '/') return void res.writeHead(200, { 'content-type': 'text/html' }).end(page);
      if (p.startsWith('/dist/') || p.startsWith('/bench/')) {
        const file = path.resolve(root, `.${p}`);
        if (!file.startsWith(root + path.sep) || file.includes('..')) return void res.writeHead(404).end();
        const data = await readFile(file).catch(() => undefined);
        if (!data) return void res.writeHead(404).end();
        return void res.writeHead(200, { 'content-type': MIME[path.extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-store' }).end(data);
      }
      res.writeHead(404).end();
    } catch (e) {
      if (!res.headersSent) res.writeHead(500).end(String(e));
      else res.destroy();
    }
  });
  // Clients reuse connections across runs with gaps of seconds between requests: never close an idle keep-alive
  // socket under them (Node's default 5 s races with the next request: 'other side closed').
  server.keepAliveTimeout = 0;
  server.requestTimeout = 0;
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const base = `http://127.0.0.1:${server.address().port}`;
  return {
    base,
    stats,
    warm: (variant) => body(variant),
    cpuOf: (pid) => {
      cpuPid = pid;
    },
    close: () =>
      new Promise((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

// `node bench/server.mjs [events]`: run it alone (prints the base URL; Ctrl-C stops it).
if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const s = await startBenchServer({ events: Number(process.argv[2] ?? 200_000) });
  console.log(`LISTENING ${s.base}`);
}
