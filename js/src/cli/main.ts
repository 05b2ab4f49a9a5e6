#!/usr/bin/env node
/**
 * `npx feedpump`: look at a ZeroEventHub (FeedAPI v1) or FeedAPI v2 feed from a terminal before writing code, as
 * `kcat -C` or `nats consumer next` do for their systems. Node only; it uses the package's public API (`openFeed`),
 * imported by the package's own name, so it runs exactly what users import, and the library's transport.ts for what no
 * message may show, blanked as the library blanks it. Not imported by any other entry point.
 * @packageDocumentation
 */
import { parseArgs } from 'node:util';
import { FeedError, feedDefaults, openFeed, type AnyFeedOptions, type Feed, type FeedEvent, type FeedOptions, type TypePattern } from 'feedpump';
import { EXIT, exitCodeOf, HELP } from './exit.js';
// The library's one home of what no message may show and how it is blanked (dist/transport.js: package.json's imports).
import { addSecret, blank, safeUrl, urlSecrets } from '#transport';
// The library's one home of the longest timer (dist/limits.js).
import { MAX_TIMER_MS } from '#limits';

/** Thrown for a command line that cannot be run; exits with {@link EXIT.usage}. */
class UsageError extends Error {}

interface Tail {
  command: 'tail' | 'cursors';
  url: string;
  options: AnyFeedOptions;
  /** What no message may show (longest first, as `addSecret` keeps them): the URL's user name, password and query, and
   * the `--header` values. */
  secrets: string[];
  from: string;
  limit: number;
  format: 'ndjson' | 'table';
  progress: boolean;
}

/** `Order*` → `{ prefix: 'Order' }`, `/re/i` → a RegExp, anything else → the exact name. */
function typePattern(s: string): TypePattern {
  const re = /^\/(.*)\/([a-z]*)$/.exec(s);
  if (re) {
    try {
      return new RegExp(re[1] ?? '', re[2]);
    } catch (e) {
      throw new UsageError(`--type ${s}: ${(e as Error).message}`);
    }
  }
  return s.endsWith('*') ? { prefix: s.slice(0, -1) } : s;
}

function count(name: string, v: string | undefined, min: number, max = Number.MAX_SAFE_INTEGER): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!/^\d+$/.test(v) || !(n >= min && n <= max)) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `from ${min} to ${max}`;
    throw new UsageError(`--${name} must be an integer ${range}, got ${JSON.stringify(v)}`);
  }
  return n;
}

function parse(argv: string[]): Tail | 'help' | 'version' {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    strict: true,
    options: {
      help: { type: 'boolean', short: 'h' },
      version: { type: 'boolean' },
      'partition-count': { type: 'string', short: 'n' },
      protocol: { type: 'string' },
      from: { type: 'string' },
      partitions: { type: 'string', short: 'p' },
      type: { type: 'string', short: 't', multiple: true },
      live: { type: 'boolean' },
      headers: { type: 'string' },
      header: { type: 'string', short: 'H', multiple: true },
      limit: { type: 'string' },
      'page-size': { type: 'string' },
      'idle-timeout': { type: 'string' },
      format: { type: 'string', short: 'f' },
      progress: { type: 'boolean' },
      'no-progress': { type: 'boolean' },
    },
  });
  if (values.help) return 'help';
  if (values.version) return 'version';
  const [command, url, ...rest] = positionals;
  if (command !== 'tail' && command !== 'cursors') throw new UsageError(command === undefined ? 'no command' : `unknown command ${JSON.stringify(command)}`);
  if (url === undefined) throw new UsageError(`${command}: the feed URL is missing`);
  if (rest.length) throw new UsageError(`unexpected arguments: ${rest.join(' ')}`);
  try {
    new URL(url);
  } catch {
    // Not echoed: what does not parse has no query or user info to blank, and it may hold a credential.
    throw new UsageError('not a URL (the text given is not shown: it may hold a credential)');
  }

  const options: AnyFeedOptions = {};
  const secrets = userSecrets(url);
  urlSecrets(url, secrets);
  const n = count('partition-count', values['partition-count'], 1);
  if (n !== undefined) options.partitionCount = n;
  if (values.protocol !== undefined) {
    if (values.protocol !== 'v1' && values.protocol !== 'v2' && values.protocol !== 'auto') throw new UsageError('--protocol must be v1, v2 or auto');
    options.protocol = values.protocol;
  }
  if (values.partitions !== undefined) {
    options.partitions = values.partitions.split(',').map((p) => count('partitions', p.trim(), 0) ?? 0);
  }
  if (values.type?.length) options.filter = { include: values.type.map(typePattern) };
  if (values.live) {
    if (command === 'cursors') throw new UsageError('cursors reads up to the head once: --live does not apply');
    options.live = {};
  }
  if (values.headers !== undefined) options.headers = values.headers === '_all' ? '_all' : values.headers.split(',').map((h) => h.trim()).filter(Boolean);
  if (values.header?.length) {
    const pairs = values.header.map((h): [string, string] => {
      const i = h.indexOf(':');
      if (i <= 0) throw new UsageError('--header takes "Name: value"'); // never echo the value: it may be a secret
      const value = h.slice(i + 1).trim();
      addSecret(secrets, value);
      return [h.slice(0, i).trim(), value];
    });
    options.requestHeaders = () => pairs;
  }
  const pageSize = count('page-size', values['page-size'], 1);
  if (pageSize !== undefined) options.pageSizeHint = pageSize;
  // At most the longest timer (a larger delay fires at once), as openFeed checks it.
  const idle = count('idle-timeout', values['idle-timeout'], 0, MAX_TIMER_MS);
  if (idle !== undefined) options.idleTimeoutMs = idle;
  const format = values.format ?? 'ndjson';
  if (format !== 'ndjson' && format !== 'table') throw new UsageError('--format must be ndjson or table');
  const progress = values['no-progress'] ? false : (values.progress ?? process.stdout.isTTY === true);
  return {
    command,
    url,
    options,
    secrets,
    from: values.from ?? (command === 'cursors' ? 'last' : 'first'),
    limit: count('limit', values.limit, 1) ?? Infinity,
    format,
    progress,
  };
}

/**
 * The user name and password of a URL (as written and decoded), as secrets: the library never sends such a URL (it is
 * `bad-options`), so they are the CLI's own; the query's are the library's (`urlSecrets`).
 */
function userSecrets(url: string): string[] {
  const secrets: string[] = [];
  const u = new URL(url);
  for (const s of [u.username, u.password]) {
    addSecret(secrets, s);
    try {
      addSecret(secrets, decodeURIComponent(s));
    } catch {
      // a stray %: as written only
    }
  }
  return secrets;
}

/**
 * The partition ids of a FeedAPI v2 feed, from its discovery answer (for `--from last`), read under the package's own
 * default limits (`feedDefaults()`: the feed's discovery reads at most `maxLineLength` bytes, and a body that has not
 * come whole within `idleTimeoutMs` has stalled). Its failures are the FeedErrors (and exit codes) the feed's own discovery gives:
 * `network`, `http-status`, `truncated-body`, `stalled-body`, `bad-discovery` (too large, not JSON, no partition list);
 * a v1 feed (400) is a usage error. The messages show the URL without user info or query.
 */
async function v2PartitionIds(url: string, options: AnyFeedOptions): Promise<number[]> {
  const { maxLineLength: MAX_DISCOVERY_BYTES, idleTimeoutMs } = feedDefaults();
  const IDLE_MS = options.idleTimeoutMs ?? idleTimeoutMs;
  const shown = safeUrl(url);
  const headers = options.requestHeaders ? await options.requestHeaders({ refresh: false }) : undefined;
  let request: Request;
  try {
    request = new Request(url, headers === undefined ? {} : { headers });
  } catch {
    // The runtime's error quotes the URL (user info too) or a header value.
    throw new FeedError('bad-options', `fetch refuses the discovery request to ${shown} (--from last)`);
  }
  let res: Response;
  try {
    res = await fetch(request);
  } catch {
    throw new FeedError('network', `GET ${shown} failed before a response arrived (the discovery for --from last)`);
  }
  const body = res.body?.getReader();
  try {
    if (res.status === 400) {
      throw new UsageError('--from last needs the partitions: give --partition-count for a v1 feed (this URL answered 400 to the FeedAPI v2 discovery)');
    }
    if (!res.ok) throw new FeedError('http-status', `discovery answered ${res.status} ${res.statusText}`, { status: res.status });
    const parts: Uint8Array[] = [];
    let size = 0;
    const end = Date.now() + IDLE_MS;
    for (;;) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const stalled = new Promise<'stalled'>((resolve) => {
        if (IDLE_MS > 0) timer = setTimeout(() => resolve('stalled'), end - Date.now());
      });
      let got: Awaited<ReturnType<NonNullable<typeof body>['read']>> | 'stalled' | undefined;
      try {
        got = await Promise.race([body?.read(), stalled]);
      } catch {
        throw new FeedError('truncated-body', 'the discovery body was cut');
      } finally {
        clearTimeout(timer);
      }
      if (got === 'stalled') throw new FeedError('stalled-body', `the discovery response did not come whole within ${IDLE_MS} ms`);
      if (got === undefined || got.done) break;
      size += got.value.length;
      if (size > MAX_DISCOVERY_BYTES) throw new FeedError('bad-discovery', `the discovery document is larger than ${MAX_DISCOVERY_BYTES} bytes`);
      parts.push(got.value);
    }
    let list: unknown;
    try {
      list = (JSON.parse(Buffer.concat(parts).toString('utf8')) as { partitions?: unknown } | null)?.partitions;
    } catch {
      throw new FeedError('bad-discovery', 'the discovery answer is not JSON');
    }
    if (!Array.isArray(list)) throw new FeedError('bad-discovery', 'partitions must be an array');
    // Ids the feed's discovery refuses are left out here: it then fails naming them.
    const id = (v: unknown): number => (typeof v === 'number' ? v : typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : NaN);
    return list.map((p: unknown) => id((p as { id?: unknown } | null)?.id)).filter((n) => Number.isInteger(n) && n >= 0 && n < 32_768);
  } finally {
    body?.cancel().catch(() => undefined);
  }
}

/** Resolves `--from` into `options.cursors`. */
async function startAt(t: Tail): Promise<void> {
  if (t.from === 'first') return;
  if (t.from === 'last') {
    const n = t.options.partitionCount;
    const ids =
      t.options.partitions ?? (n !== undefined && t.options.protocol !== 'v2' ? Array.from({ length: n }, (_, i) => i) : await v2PartitionIds(t.url, t.options));
    t.options.cursors = Object.fromEntries(ids.map((p) => [p, '_last']));
    return;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(t.from);
  } catch {
    throw new UsageError('--from must be first, last or a JSON object of cursors, e.g. \'{"0":"1942","1":"_last"}\'');
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed) || !Object.values(parsed).every((c) => typeof c === 'string')) {
    throw new UsageError('--from: the cursors must be a JSON object of strings keyed by partition');
  }
  t.options.cursors = parsed as { [partition: number]: string };
}

/** Writes to stdout, waiting when the pipe is full; a closed pipe (`| head`) ends the run quietly. */
function writer(): (s: string) => Promise<void> {
  let closed = false;
  const waiting = new Set<() => void>();
  const wake = (): void => {
    for (const w of waiting) w();
    waiting.clear();
  };
  process.stdout.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    closed = true;
    wake();
  });
  process.stdout.on('drain', wake);
  return async (s) => {
    if (closed || process.stdout.write(s)) return closed ? Promise.reject(new PipeClosed()) : undefined;
    await new Promise<void>((resolve) => waiting.add(resolve));
    if (closed) throw new PipeClosed();
  };
}
class PipeClosed extends Error {}

function eventType(e: FeedEvent): string {
  const d = e.data as { type?: unknown } | null;
  if (d !== null && typeof d === 'object' && typeof d.type === 'string') return d.type;
  return e.headers?.['ce_type'] ?? '';
}

/**
 * `s` with every control character but the newline (C0, DEL, C1) shown as a `\u` escape: what the server sent (an
 * event type, a cursor, an error body) must not drive the terminal (an OSC that retitles it, a CSI that clears it).
 */
function printable(s: string): string {
  return s.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function formatEvent(e: FeedEvent, format: Tail['format']): string {
  const line = JSON.stringify(e.headers === undefined ? { partition: e.partition, data: e.data } : { partition: e.partition, headers: e.headers, data: e.data });
  if (format === 'ndjson') return `${line}\n`;
  const width = Math.max(40, (process.stdout.columns ?? 160) - 1);
  const row = `${String(e.partition).padStart(5)}  ${printable(eventType(e)).padEnd(24).slice(0, 24)}  ${printable(JSON.stringify(e.data))}`;
  return `${row.length > width ? `${row.slice(0, width - 1)}…` : row}\n`;
}

/** The progress line: events, events/s over the last interval, and per partition the cursor and the time since its latest event. */
function progressLine(feed: Feed, total: number, rate: number): string {
  const lag = feed.lag();
  const parts = Object.entries(feed.cursors()).map(([p, c]) => {
    const ms = lag[Number(p)]?.msSinceLastEvent;
    return `p${p} ${c}${ms === undefined ? '' : ` (${(ms / 1000).toFixed(1)}s)`}`;
  });
  return printable(`${total} events, ${Math.round(rate)}/s | ${parts.join(' ')}`);
}

/**
 * Once caught up, a note on stderr for the partitions still at `_last`. ZEH's `_last` is "an arbitrary point around
 * now", and a cursor moves only on a checkpoint: a server that answers `_last` with no events and no checkpoint (the
 * reference server's live feed does) gives no position, so every poll asks `_last` again and what was appended between
 * polls is never read. No client can do better (it has nothing to resume from); the note says why nothing shows.
 */
function noteLast(feed: Feed, progress: boolean): void {
  const still = Object.entries(feed.cursors())
    .filter(([, c]) => c === '_last')
    .map(([p]) => p);
  if (still.length === 0) return;
  process.stderr.write(
    `${progress ? '\r\x1b[K' : ''}feedpump: note: partition${still.length > 1 ? 's' : ''} ${still.join(',')} ha${still.length > 1 ? 've' : 's'} no cursor yet: ` +
      'the server answered _last with no checkpoint, so each poll starts again "around now" and events appended between ' +
      'polls are not shown until it sends one (--from first, or cursors of your own, read every event)\n',
  );
}

async function run(t: Tail): Promise<number> {
  await startAt(t);
  const controller = new AbortController();
  // Built from the flags; openFeed checks the combination (a bad-options error names the first wrong option).
  const feed = openFeed(t.url, { ...t.options, signal: controller.signal } as FeedOptions);
  let interrupted = false;
  const onSignal = (): void => {
    if (interrupted) process.exit(EXIT.interrupted); // a second Ctrl-C does not wait
    interrupted = true;
    feed.close();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);

  const write = writer();
  let total = 0;
  let timer: ReturnType<typeof setInterval> | undefined;
  if (t.progress && t.command === 'tail') {
    let last = 0;
    let lastAt = Date.now();
    timer = setInterval(() => {
      const now = Date.now();
      const rate = ((total - last) * 1000) / Math.max(1, now - lastAt);
      [last, lastAt] = [total, now];
      process.stderr.write(`\r\x1b[K${progressLine(feed, total, rate)}`);
    }, 500);
    timer.unref();
  }
  try {
    if (t.command === 'cursors') {
      for await (const batch of feed.batches()) void batch; // read up to the head; only the cursors matter
      await write(`${JSON.stringify(feed.cursors())}\n`);
      return EXIT.ok;
    }
    if (t.format === 'table') await write(`${'PART'.padStart(5)}  ${'TYPE'.padEnd(24)}  DATA\n`);
    let noted = false;
    for await (const batch of feed.batches()) {
      if (batch.signal === 'caught-up' && !noted) {
        noted = true;
        noteLast(feed, timer !== undefined);
      }
      let out = '';
      for (const e of batch.events) {
        out += formatEvent(e, t.format);
        if (++total >= t.limit) break;
      }
      if (out) await write(out);
      if (total >= t.limit) break;
    }
    return EXIT.ok;
  } catch (e) {
    if (e instanceof PipeClosed) return EXIT.ok;
    throw e;
  } finally {
    if (timer !== undefined) {
      clearInterval(timer);
      process.stderr.write(`\r\x1b[K${progressLine(feed, total, 0)}\n`);
    }
    feed.close();
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

async function main(argv: string[]): Promise<number> {
  let t: Tail | 'help' | 'version';
  try {
    t = parse(argv);
  } catch (e) {
    process.stderr.write(`feedpump: ${printable((e as Error).message)}\nRun \`feedpump --help\` for usage.\n`);
    return EXIT.usage;
  }
  if (t === 'help') {
    process.stdout.write(HELP);
    return EXIT.ok;
  }
  if (t === 'version') {
    const { createRequire } = await import('node:module');
    process.stdout.write(`${(createRequire(import.meta.url)('feedpump/package.json') as { version: string }).version}\n`);
    return EXIT.ok;
  }
  try {
    return await run(t);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`feedpump: ${printable(e.message)}\n`);
      return EXIT.usage;
    }
    const code = exitCodeOf(e);
    // A FeedError's message starts with its code and names what and where, never a header or query value (its rule);
    // any other error's may quote the URL: what the command line holds of secrets is blanked out of both. A message may
    // quote the server (an error body): no control character of it reaches the terminal.
    process.stderr.write(`feedpump: ${printable(blank(e instanceof Error ? e.message : String(e), t.secrets))}\n`);
    return code;
  }
}

process.exitCode = await main(process.argv.slice(2));
