// The `feedpump` CLI (dist/cli/main.js, the package's bin) run as a user runs it, as a child process, against the
// reference server (PyPI zeroeventhub, v1) and the v2 reference server: events, filters, cursors, formats, progress,
// live mode, Ctrl-C, a closed pipe, and the exit code of each class of failure. Needs dist/ (scripts/build.sh).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { repoRoot, startRefServer } from '../interop/helpers.mjs';
import { SECRET, startV2Server } from '../v2_server/server.mjs';
import * as api from '../../dist/entrypoints/node.js';

const BIN = path.join(repoRoot, 'dist/cli/main.js');

let ref;
let v2;
before(async () => {
  [ref, v2] = await Promise.all([startRefServer(), startV2Server()]);
});
after(async () => {
  await ref?.stop();
  await v2?.close();
});

/**
 * Runs the CLI; resolves with { code, stdout, stderr }. `onStdout(chunk, child)` sees the output as it comes,
 * `onStderr(stderrSoFar, child)` the error output; `onStart(child)` is called once the child is spawned.
 * @param {string[]} args
 */
function cli(args, { onStdout, onStderr, onStart, timeoutMs = 60_000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    onStart?.(child);
    let stdout = '';
    let stderr = '';
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`feedpump ${args.join(' ')} did not end within ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.stdout.setEncoding('utf8');
    child.stderr.setEncoding('utf8');
    child.stdout.on('data', (s) => {
      stdout += s;
      onStdout?.(s, child);
    });
    child.stdout.on('error', () => {}); // destroyed on purpose by the closed-pipe test
    child.stderr.on('data', (s) => {
      stderr += s;
      onStderr?.(stderr, child);
    });
    child.on('error', reject);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

const lines = (s) => s.split('\n').filter(Boolean);
const events = (s) => lines(s).map((l) => JSON.parse(l));

test('tail: every event of a v1 feed as NDJSON, each partition in order, then exit 0', async () => {
  const { code, stdout, stderr } = await cli(['tail', ref.feedUrl, '-n', '4', '--page-size', '1000']);
  assert.equal(code, 0, stderr);
  assert.equal(stderr, '', 'no progress line when stdout is not a terminal');
  const got = events(stdout);
  assert.equal(got.length, 10000);
  for (let p = 0; p < 4; p++) {
    const seqs = got.filter((e) => e.partition === p).map((e) => e.data.seq);
    assert.equal(seqs.length, 2500);
    assert.ok(seqs.every((s, i) => s === i + 1), `partition ${p} in order`);
  }
  assert.deepEqual(Object.keys(got[0]).sort(), ['data', 'partition'], 'no headers unless asked for');
});

test('tail: --partitions, --from <cursors json> and --limit', async () => {
  const { code, stdout, stderr } = await cli(['tail', ref.feedUrl, '-n', '4', '-p', '2', '--from', '{"2":"2490"}', '--limit', '4']);
  assert.equal(code, 0, stderr);
  assert.deepEqual(events(stdout).map((e) => [e.partition, e.data.seq]), [[2, 2491], [2, 2492], [2, 2493], [2, 2494]]);
});

test('tail: --from last gives the newest event of each partition; --headers asks for event headers', async () => {
  const { code, stdout, stderr } = await cli(['tail', ref.feedUrl, '-n', '4', '--from', 'last', '--headers', 'ce_id']);
  assert.equal(code, 0, stderr);
  const got = events(stdout);
  assert.deepEqual(got.map((e) => e.data.seq), [2500, 2500, 2500, 2500]);
  assert.deepEqual(got.map((e) => e.partition).sort(), [0, 1, 2, 3]);
  for (const e of got) assert.equal(e.headers.ce_id, e.data.id);
});

test('cursors: the head cursors as JSON, which tail --from accepts', async () => {
  const { code, stdout, stderr } = await cli(['cursors', ref.feedUrl, '-n', '4']);
  assert.equal(code, 0, stderr);
  const expected = (await (await fetch(`${ref.base}/expected`)).json()).lastCursors;
  const cursors = JSON.parse(stdout);
  assert.deepEqual(cursors, expected);
  const tail = await cli(['tail', ref.feedUrl, '-n', '4', '--from', stdout.trim()]);
  assert.equal(tail.code, 0, tail.stderr);
  assert.equal(tail.stdout, '', 'nothing after the head');
});

test('tail --format table and --progress: a header row, one row per event, a progress line on stderr', async () => {
  const { code, stdout, stderr } = await cli(['tail', ref.feedUrl, '-n', '4', '-p', '0', '--limit', '3', '-f', 'table', '--progress']);
  assert.equal(code, 0, stderr);
  const rows = lines(stdout);
  assert.match(rows[0], /^ {1}PART {2}TYPE +DATA$/);
  assert.equal(rows.length, 4);
  assert.match(rows[1], /^ {4}0 {2}.{24} {2}\{"id":"p0-000001"/);
  assert.match(stderr, /3 events, \d+\/s \| p0 \S+/);
});

test('tail: a v2 feed, negotiated, with a --type prefix filter', async () => {
  const url = `${v2.url}/feed`;
  const { code, stdout, stderr } = await cli(['tail', url, '--type', 'Order*']);
  assert.equal(code, 0, stderr);
  const all = (await (await fetch(`${v2.url}/expected?feed=feed`)).json()).partitions;
  const want = Object.values(all).flat().filter((e) => e.type.startsWith('Order')).length;
  const got = events(stdout);
  assert.equal(got.length, want);
  assert.ok(got.every((e) => (typeof e.data === 'string' ? JSON.parse(e.data) : e.data).type.startsWith('Order')));
});

test('v2: --header sends auth; cursors and --from last find the partitions by discovery', async () => {
  const url = `${v2.url}/secure`;
  const denied = await cli(['tail', url, '--protocol', 'v2']);
  assert.equal(denied.code, 2, 'http-status: exit 2');
  const auth = ['-H', `Authorization: Bearer ${SECRET}`];
  const cursors = await cli(['cursors', url, ...auth]);
  assert.equal(cursors.code, 0, cursors.stderr);
  assert.deepEqual(Object.keys(JSON.parse(cursors.stdout)).sort(), ['0', '1', '2', '3']);
  const last = await cli(['tail', url, '--from', 'last', ...auth]);
  assert.equal(last.code, 0, last.stderr);
  assert.equal(last.stdout, '', 'v2 _last starts after the newest event');
});

test('exit codes: usage 1, HTTP error 2, protocol error 3; no header value in any message', async (t) => {
  const usage = await cli(['tail', ref.feedUrl, '--limit', 'ten']);
  assert.equal(usage.code, 1);
  assert.match(usage.stderr, /--limit must be an integer/);
  assert.equal((await cli(['nope', ref.feedUrl])).code, 1);

  const http = await cli(['tail', `${ref.base}/no-such-feed/v1`, '-n', '4', '-H', 'authorization: Bearer hunter2']);
  assert.equal(http.code, 2, http.stderr);
  assert.match(http.stderr, /^feedpump: http-status: /);
  assert.ok(!http.stderr.includes('hunter2'), 'the header value is never printed');

  const server = createServer((req, res) => res.end('<html>not a feed</html>\n'));
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => server.close(resolve)));
  const protocol = await cli(['tail', `http://127.0.0.1:${server.address().port}/feed/v1`, '-n', '1']);
  assert.equal(protocol.code, 3, protocol.stderr);
  assert.match(protocol.stderr, /^feedpump: bad-line: /);
});

test('a feed URL that does not parse is a usage error that does not echo it (it may hold a credential)', async () => {
  for (const url of ['ht!tp://feed.test/v1?token=s3cr3tval', 'https://user:pa55word@[feed/v1?token=s3cr3tval']) {
    const run = await cli(['tail', url, '-n', '1']);
    assert.equal(run.code, 1, run.stderr);
    assert.match(run.stderr, /^feedpump: not a URL /);
    for (const secret of ['s3cr3tval', 'pa55word']) assert.ok(!run.stderr.includes(secret), `${secret} is not printed: ${run.stderr}`);
  }
});

test('--live follows a growing feed; Ctrl-C ends it with exit 0', async () => {
  const url = `${ref.base}/live/v1`;
  let signalled = false;
  const { code, stdout, stderr } = await cli(['tail', url, '-n', '4', '--live'], {
    onStdout: (_, child) => {
      if (!signalled && lines(_).length > 0) {
        signalled = true;
        child.kill('SIGINT');
      }
    },
  });
  assert.equal(code, 0, stderr);
  assert.ok(events(stdout).length > 0, 'events arrived while following');
});

test('--from last --live on a server that answers _last with no checkpoint (the reference /live/v1): a note on stderr says why nothing is shown, once', async () => {
  // ZEH's `_last` is "an arbitrary point around now" and a cursor moves only on a checkpoint: with none, every poll
  // asks `_last` again and the events appended between polls are not read (the server's choice, not the client's).
  // Ctrl-C once the note is there, or after 10 s when it never comes.
  let timer;
  const result = await cli(['tail', `${ref.base}/live/v1`, '-n', '4', '--from', 'last', '--live'], {
    onStart: (child) => (timer = setTimeout(() => child.kill('SIGINT'), 10_000)),
    onStderr: (stderr, child) => {
      if (stderr.includes('\n')) child.kill('SIGINT');
    },
  });
  clearTimeout(timer);
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stdout, '', 'the server never gave a position: nothing to show');
  const notes = lines(result.stderr);
  assert.equal(notes.length, 1, `one note: ${JSON.stringify(result.stderr)}`);
  assert.match(notes[0], /^feedpump: note: partitions 0,1,2,3 have no cursor yet: the server answered _last with no checkpoint/);
});

test("the README's command lines run as written: exit 0 with events (--live: until Ctrl-C after the first)", async () => {
  // What a user copies from the README's "Command line" section, against the reference servers: its v1 URL is the
  // reference server's feed (whose `_last` gives each partition's newest event, so --from last --live prints),
  // `https://host/feed` the v2 reference server's. A flag renamed, or a command that needs an option the README leaves out, fails here.
  const readme = readFileSync(path.join(repoRoot, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## Command line'), readme.indexOf('## Runtimes'));
  const commands = [...section.matchAll(/^npx feedpump (.+?)(?:\s+#.*)?$/gm)].map((m) => m[1].trim());
  assert.ok(commands.length >= 3, `the README's commands were found (${commands.length})`);
  for (const command of commands) {
    const args = command.split(/\s+/).map((a) => a.replace(/^'(.*)'$/, '$1'));
    const live = args.includes('--live');
    const mapped = args.map((a) =>
      a === 'http://127.0.0.1:8400/feed/v1' ? ref.feedUrl : a === 'https://host/feed' ? `${v2.url}/feed` : a,
    );
    let signalled = false;
    const { code, stdout, stderr } = await cli(mapped, {
      onStdout: (chunk, child) => {
        if (live && !signalled && lines(chunk).length > 0) {
          signalled = true;
          child.kill('SIGINT');
        }
      },
    });
    assert.equal(code, 0, `npx feedpump ${command}: ${stderr}`);
    assert.ok(lines(stdout).length > 0, `npx feedpump ${command}: some output`);
  }
});

test('a closed pipe (| head) ends the run quietly with exit 0', async () => {
  const { code, stderr } = await cli(['tail', ref.feedUrl, '-n', '4'], {
    onStdout: (_, child) => child.stdout.destroy(),
  });
  assert.equal(code, 0, stderr);
  assert.equal(stderr, '');
});

test('--help lists the commands and every exit code', async () => {
  const { code, stdout } = await cli(['--help']);
  assert.equal(code, 0);
  for (const s of ['tail <url>', 'cursors <url>', '--from', '--partitions', '--type', '--live', '--headers', '--limit']) assert.ok(stdout.includes(s), s);
  for (const n of [0, 1, 2, 3, 4, 5, 6, 70, 130]) assert.match(stdout, new RegExp(`^  ${n} `, 'm'));
});

test('an error message never prints the code twice (the FeedError message starts with it)', async () => {
  const http = await cli(['tail', `${ref.base}/no-such-feed/v1`, '-n', '4']);
  assert.equal(http.code, 2, http.stderr);
  assert.match(http.stderr, /^feedpump: http-status: /);
  assert.doesNotMatch(http.stderr, /http-status: http-status: /);
});

test('--from last on a v2 URL: no user info or query value of the URL, and no header value, in any message', async () => {
  const port = new URL(v2.url).port;
  for (const args of [
    // fetch refuses a URL with user info, and its own error quotes the URL whole
    ['tail', `http://reader:hunter2pw@127.0.0.1:${port}/feed`, '--from', 'last'],
    ['cursors', `http://reader:hunter2pw@127.0.0.1:${port}/feed`],
    ['tail', `http://127.0.0.1:${port}/secure?apikey=hunter2pw`, '--from', 'last', '-H', 'authorization: Bearer hunter2pw'],
  ]) {
    const { code, stdout, stderr } = await cli(args);
    assert.notEqual(code, 0, stderr);
    assert.ok(!stderr.includes('hunter2pw') && !stdout.includes('hunter2pw'), `a secret was printed: ${stderr}`);
  }
});

test('a query value whose decoding has a stray % (hunter2pw%) is blanked too, as the library blanks it (the CLI\'s copy hid no query value then)', async (t) => {
  // The discovery for --from last answers 401 with a reason phrase that echoes the key it was sent.
  const server = createServer((req, res) => {
    const key = new URL(req.url, 'http://127.0.0.1').searchParams.get('apikey');
    res.writeHead(401, `no such key: ${key}`);
    res.end();
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }));
  const { code, stdout, stderr } = await cli(['tail', `http://127.0.0.1:${server.address().port}/feed?apikey=hunter2pw%25`, '--from', 'last']);
  assert.equal(code, 2, stderr);
  assert.equal(stderr, 'feedpump: http-status: discovery answered 401 no such key: [hidden]\n');
  assert.ok(!stdout.includes('hunter2pw'));
});

test('--from last on a v2 URL: the discovery fails as the feed would (network exit 4, a discovery without end exit 3)', async (t) => {
  // Nothing listens on this port: a network failure, which a run without --from last reports with exit 4.
  const closed = createServer();
  await new Promise((resolve) => closed.listen(0, '127.0.0.1', resolve));
  const port = closed.address().port;
  await new Promise((resolve) => closed.close(resolve));
  const refused = await cli(['tail', `http://127.0.0.1:${port}/feed`, '--from', 'last']);
  assert.equal(refused.code, 4, refused.stderr);
  assert.match(refused.stderr, /^feedpump: network: /);

  // A discovery answer that never ends (bytes keep coming): the feed's own discovery stops at maxLineLength.
  let sent = 0;
  const endless = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"token":"t","partitions":[');
    const chunk = Buffer.alloc(64 * 1024, 0x20);
    const pump = () => {
      while (!res.destroyed && (sent += chunk.length) && res.write(chunk));
      if (!res.destroyed) res.once('drain', pump);
    };
    pump();
  });
  await new Promise((resolve) => endless.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { endless.closeAllConnections(); endless.close(resolve); }));
  const huge = await cli(['tail', `http://127.0.0.1:${endless.address().port}/feed`, '--from', 'last'], { timeoutMs: 30_000 });
  assert.equal(huge.code, 3, huge.stderr);
  assert.match(huge.stderr, /^feedpump: bad-discovery: /);
  t.diagnostic(`the endless discovery sent ${(sent / 2 ** 20).toFixed(1)} MiB before the CLI stopped reading`);
});

test('--from last on a v2 URL: a discovery body that drips (a byte every 50 ms) fails stalled-body within --idle-timeout (exit 4), as the feed\'s own discovery does; --idle-timeout is checked', async (t) => {
  const server = createServer((req, res) => {
    res.writeHead(200, { 'content-type': 'application/json' });
    res.write('{"token":"t","partitions":[');
    const timer = setInterval(() => res.write(' '), 50);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }));
  const url = `http://127.0.0.1:${server.address().port}/feed`;
  const started = Date.now();
  const run = await cli(['tail', url, '--from', 'last', '--idle-timeout', '400'], { timeoutMs: 10_000 });
  assert.equal(run.code, 4, run.stderr);
  assert.equal(run.stderr, 'feedpump: stalled-body: the discovery response did not come whole within 400 ms\n');
  assert.ok(Date.now() - started < 5_000, `${Date.now() - started} ms`);
  for (const bad of ['-1', '2147483648', '1.5']) {
    const refused = await cli(['tail', url, `--idle-timeout=${bad}`]);
    assert.equal(refused.code, 1, refused.stderr);
    assert.match(refused.stderr, /--idle-timeout must be an integer from 0 to 2147483647/);
  }
});

test("--from last on a v2 URL reads the discovery under the package's default bound, feedDefaults().maxLineLength: at it both read the answer, one byte more both refuse it", async (t) => {
  const { maxLineLength, idleTimeoutMs } = api.feedDefaults();
  assert.deepEqual([maxLineLength, idleTimeoutMs], [16 * 2 ** 20, 60_000], 'the documented defaults (@defaultValue of maxLineLength and idleTimeoutMs)');
  const json = '{"token":"t","partitions":[]}';
  let size = 0;
  const server = createServer((req, res) => {
    if (new URL(req.url, 'http://127.0.0.1').pathname !== '/feed') return res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'application/json' });
    res.end(json + ' '.repeat(size - json.length));
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }));
  const url = `http://127.0.0.1:${server.address().port}/feed`;
  const packageReads = async () => {
    try {
      for await (const _ of api.openFeed(url, { protocol: 'v2' }));
      return 'ok';
    } catch (e) {
      return e.code;
    }
  };
  const outcomes = [];
  for (size of [maxLineLength, maxLineLength + 1]) {
    const run = await cli(['tail', url, '--from', 'last']);
    outcomes.push([size - maxLineLength, await packageReads(), run.code === 0 ? 'ok' : run.stderr.match(/^feedpump: ([a-z-]+):/)?.[1] ?? run.stderr]);
  }
  assert.deepEqual(outcomes, [[0, 'ok', 'ok'], [1, 'bad-discovery', 'bad-discovery']]);
});

test('no control character of the server\'s reaches the terminal: table rows, the progress line, error messages', async (t) => {
  // An OSC that retitles the terminal, a clear-screen CSI, and a C1 CSI.
  const ESC = '\u001b]0;pwned\u0007\u001b[2J\u009b1m';
  const server = createServer((req, res) => {
    const url = new URL(req.url, 'http://127.0.0.1');
    if (url.pathname === '/down') {
      // A status that fails at once. (It was a 503: the CLI retried it 10 times under the default policy's full-jitter
      // backoff with a random seed, Retry-After 0 shortening no delay: 0-81 s, about 40 s on average, so the run
      // passed cli()'s 60 s limit in roughly one run in ten and the test failed with its output lost.)
      res.writeHead(404);
      res.end(`down ${ESC}`);
      return;
    }
    res.writeHead(200, { 'content-type': 'application/x-ndjson' });
    if (url.searchParams.get('cursor0') !== '_first') return res.end('');
    res.end(`${JSON.stringify({ partition: 0, data: { type: `Order${ESC}` } })}\n${JSON.stringify({ partition: 0, cursor: `c${ESC}` })}\n`);
  });
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  t.after(() => new Promise((resolve) => { server.closeAllConnections(); server.close(resolve); }));
  const base = `http://127.0.0.1:${server.address().port}`;
  // The CLI's own progress line starts with "\r" and "ESC [ K" (erase the line): those are its, not the server's.
  const control = (s) => s.replaceAll('\r\u001b[K', '').match(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/u);
  const leaks = [];
  for (const args of [
    ['tail', `${base}/feed`, '-n', '1', '-f', 'table'],
    ['tail', `${base}/feed`, '-n', '1', '--progress'],
    ['tail', `${base}/down`, '-n', '1'],
  ]) {
    const { stdout, stderr } = await cli(args);
    const shown = args.includes('table') ? stdout : stderr;
    assert.ok(shown.includes('pwned'), `the text is shown: ${JSON.stringify(shown)}`);
    if (control(shown) !== null) leaks.push(`${args.slice(2).join(' ')}: ${JSON.stringify(shown)}`);
  }
  assert.deepEqual(leaks, []);
});
