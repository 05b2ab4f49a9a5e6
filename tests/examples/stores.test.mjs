// The SQL store examples, each used as a user would: the tarball `npm pack` makes is installed beside a copy of the
// example (with `pg`, from the npm cache where it can), then
// - examples/node-postgres: `node consume.mjs <feed> 4` twice against a throwaway PostgreSQL server: the first run
//   applies every event, the second resumes and applies none;
// - the README's PostgreSQL block, run as written (DATABASE_URL and the feed URL pointed at the test servers);
// - tests/examples/pg-worker: node-postgres and postgresStore in workerd (nodejs_compat, its TCP sockets), bundled by
//   wrangler, consume into PostgreSQL (what runs behind Hyperdrive);
// - examples/workers-d1: `wrangler deploy --dry-run --outdir` bundles it (resolving `feedpump/d1` through the
//   package's exports); the bundle runs in Miniflare (workerd) with a D1 database until it has caught up.
// Every check compares with the reference server's own dataset (GET /expected). Run `npm run build` first.
// Run: node --test --test-force-exit --test-timeout=300000 tests/examples/stores.test.mjs
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { exampleProject, packTarball, run, runInMiniflare } from './project.mjs';
import { fetchExpected, lastCursors, repoRoot, startRefServer } from '../interop/helpers.mjs';
import { startPostgres } from '../db/postgres.mjs';

const bin = (name) => join(repoRoot, 'node_modules', '.bin', name);
const pgVersion = JSON.parse(readFileSync(join(repoRoot, 'node_modules/pg/package.json'), 'utf8')).version;

let work;
let tarball;
let server;
let expected;
let postgres;

before(async () => {
  assert.ok(existsSync(join(repoRoot, 'dist/stores/postgres.js')), 'dist/ is missing: run `npm run build` first');
  work = mkdtempSync(join(tmpdir(), 'feedpump-store-examples-'));
  tarball = await packTarball(work);
  // TCP as well as the socket: workerd's sockets reach the server over TCP.
  [server, postgres] = await Promise.all([startRefServer(), startPostgres({ tcp: true })]);
  expected = await fetchExpected(server.base);
});

after(async () => {
  await postgres?.stop();
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

test('node-postgres: consume.mjs applies every event once into PostgreSQL; a second run resumes and applies none', async (t) => {
  await postgres.sql('CREATE DATABASE example');
  const dir = await exampleProject(work, tarball, 'node-postgres', [`pg@${pgVersion}`]);
  const env = { ...process.env, DATABASE_URL: postgres.connectionString.replace(/\/postgres$/, '/example') };
  const args = [join(dir, 'consume.mjs'), server.feedUrl, '4'];
  const first = (await run(process.execPath, args, { cwd: dir, env, timeout: 90_000 })).stdout;
  t.diagnostic(`first run:\n${first.trim()}`);
  const second = (await run(process.execPath, args, { cwd: dir, env, timeout: 90_000 })).stdout;
  t.diagnostic(`second run:\n${second.trim()}`);
  const cursorsLine = `cursors: ${JSON.stringify(lastCursors(expected))}`;
  assert.match(first, /^this run: 10000 events in \d+ batches, started from first cursors$/m);
  assert.match(first, /^applied in total: 10000 events \(10000 distinct\)$/m);
  assert.ok(first.includes(cursorsLine), first);
  assert.match(first, /^caught up$/m);
  assert.match(second, /^this run: 0 events in 0 batches, started from stored cursors$/m);
  assert.match(second, /^applied in total: 10000 events \(10000 distinct\)$/m);
  const pool = postgres.pool({ database: 'example' });
  const { rows } = await pool.query("SELECT cursors FROM feedpump_cursors WHERE feed_key = 'example-orders'");
  assert.deepEqual(rows, [{ cursors: lastCursors(expected) }], 'the cursor row, readable with SQL');
});

test('README: the PostgreSQL example of consume() runs as written', async (t) => {
  const readme = readFileSync(join(repoRoot, 'README.md'), 'utf8');
  const m = /<!-- consume-postgres-example[^>]*-->\s*```js\n([\s\S]*?)```/.exec(readme);
  assert.ok(m, 'README has a consume-postgres-example block');
  const code = m[1].replace(/http:\/\/127\.0\.0\.1:\d+/g, server.base);
  assert.ok(code.includes(server.base), 'the example names a loopback feed URL');
  await postgres.sql('CREATE DATABASE readme');
  const dir = await exampleProject(work, tarball, 'readme-postgres', [`pg@${pgVersion}`]);
  writeFileSync(join(dir, 'example.mjs'), code);
  const env = { ...process.env, DATABASE_URL: postgres.connectionString.replace(/\/postgres$/, '/readme') };
  const out = [];
  for (let i = 0; i < 2; i++) out.push((await run(process.execPath, [join(dir, 'example.mjs')], { cwd: dir, env, timeout: 90_000 })).stdout.trim());
  t.diagnostic(`README PostgreSQL example printed: ${out.join(' | ')}`);
  assert.equal(out[0], `applied 10000 events; orders stored: 10000; cursors ${JSON.stringify(lastCursors(expected))}`);
  assert.equal(out[1], `applied 0 events; orders stored: 10000; cursors ${JSON.stringify(lastCursors(expected))}`);
});

/** A wrangler --dry-run bundle of `dir`, run in Miniflare with `options`; `t.after` disposes it. */
async function bundleAndRun(t, dir, options) {
  const outdir = join(dir, 'out');
  await run(bin('wrangler'), ['deploy', '--dry-run', '--outdir', outdir], {
    cwd: dir,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', WRANGLER_LOG_PATH: join(work, 'wrangler-logs') },
  });
  const mf = await runInMiniflare(outdir, options);
  t.after(() => mf.dispose());
  return mf;
}

test('postgres in workerd: node-postgres (nodejs_compat, TCP sockets) and postgresStore, bundled by wrangler, consume into PostgreSQL', async (t) => {
  await postgres.sql('CREATE DATABASE worker');
  const dir = await exampleProject(work, tarball, 'pg-worker', [`pg@${pgVersion}`], join(repoRoot, 'tests/examples/pg-worker'));
  const mf = await bundleAndRun(t, dir, {
    compatibilityFlags: ['nodejs_compat'],
    bindings: { FEED_URL: server.feedUrl, DATABASE_URL: postgres.connectionString.replace(/\/postgres$/, '/worker') },
  });
  const t0 = Date.now();
  let report;
  let runs = 0;
  do {
    runs++;
    const res = await mf.dispatchFetch('http://worker.test/', { signal: AbortSignal.timeout(60_000) });
    const text = await res.text();
    assert.ok(res.ok, `${res.status} ${text.slice(0, 800)}`);
    report = JSON.parse(text);
    assert.ok(Date.now() - t0 < 150_000, `not caught up in time: ${text}`);
  } while (!report.caughtUp);
  t.diagnostic(`postgresStore in workerd: ${JSON.stringify(report)} after ${runs} requests, ${Date.now() - t0} ms`);
  assert.equal(report.applied, expected.events.length);
  assert.equal(report.distinct_events, expected.events.length);
  assert.deepEqual(report.cursors, lastCursors(expected));
});

test('workers-d1: `wrangler deploy --dry-run` bundles the D1 example; the bundle catches up into D1 in workerd', async (t) => {
  const dir = await exampleProject(work, tarball, 'workers-d1');
  const mf = await bundleAndRun(t, dir, { d1Databases: ['DB'], bindings: { FEED_URL: server.feedUrl } });
  const outdir = join(dir, 'out');
  t.diagnostic(`wrangler dry-run output: ${readdirSync(outdir).join(', ')}`);
  assert.match(readFileSync(join(outdir, 'worker.js'), 'utf8'), /feedpump_cursors/, 'the bundle includes d1Store (feedpump/d1 resolved through the exports map)');
  const call = async (path, init) => {
    const res = await mf.dispatchFetch(`http://worker.test${path}`, { ...init, signal: AbortSignal.timeout(30_000) });
    const text = await res.text();
    assert.ok(res.ok, `${path}: ${res.status} ${text.slice(0, 500)}`);
    return JSON.parse(text);
  };
  const t0 = Date.now();
  let runs = 0;
  for (;;) {
    runs++;
    if ((await call('/consume', { method: 'POST' })).caughtUp) break;
    assert.ok(Date.now() - t0 < 120_000, 'not caught up in time');
  }
  const status = await call('/status');
  t.diagnostic(`workers-d1 bundle in Miniflare: ${JSON.stringify(status)} after ${runs} runs, ${Date.now() - t0} ms`);
  assert.equal(status.applied, expected.events.length);
  assert.equal(status.distinct, expected.events.length);
  assert.deepEqual(status.cursors, lastCursors(expected));
  assert.equal((await call('/consume', { method: 'POST' })).events, 0, 'caught up: a further run applies nothing');
});
