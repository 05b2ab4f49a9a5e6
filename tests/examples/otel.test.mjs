// The OpenTelemetry examples, each used as a user would: the tarball `npm pack` makes is installed beside a copy of
// the example, with @opentelemetry/api, sdk-trace-base and sdk-metrics at the repository's versions (from the npm
// cache where it can: tests/examples/project.mjs), then
// - examples/node-otel: `node consume.mjs <feed> 4` consumes the reference feed with feedpump/otel and the SDK's
//   in-memory exporters and prints every span and metric;
// - examples/workers-otel: `wrangler deploy --dry-run --outdir` bundles it; the bundle runs in Miniflare (workerd) and
//   GET /consume answers with the spans and metrics its exporters got.
// Both are checked against the reference server: its dataset (10,000 events) and the requests it saw (/stats): one
// page span per request, every event and body byte counted once in the spans, the metrics and feed.stats().
// Run `npm run build` first. Run: node --test --test-force-exit --test-timeout=300000 tests/examples/otel.test.mjs
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { exampleProject, packTarball, run, runInMiniflare } from './project.mjs';
import { fetchExpected, repoRoot, startRefServer } from '../interop/helpers.mjs';

const bin = (name) => join(repoRoot, 'node_modules', '.bin', name);
/** The OpenTelemetry packages the examples install, at the versions the repository tests feedpump/otel with. */
const OTEL = ['@opentelemetry/api', '@opentelemetry/sdk-trace-base', '@opentelemetry/sdk-metrics'].map(
  (name) => `${name}@${JSON.parse(readFileSync(join(repoRoot, 'node_modules', name, 'package.json'), 'utf8')).version}`,
);

let work;
let tarball;
let server;
let expected;

before(async () => {
  assert.ok(existsSync(join(repoRoot, 'dist/otel/index.js')), 'dist/ is missing: run `npm run build` first');
  work = mkdtempSync(join(tmpdir(), 'feedpump-otel-examples-'));
  tarball = await packTarball(work);
  server = await startRefServer();
  expected = await fetchExpected(server.base);
  assert.equal(expected.events.length, 10_000, 'the reference dataset');
});

after(async () => {
  await server?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

/** Requests of the reference server's /feed/v1 that ran to the end of their body. */
const completed = async () => Object.values(await server.stats()).reduce((n, c) => n + c.completed, 0);

/**
 * What both examples must have exported for one run over the whole reference feed, whose server completed
 * `requests` requests meanwhile: `{ consumed, state, stats, spans: [{ name, status, attributes }], metrics }`.
 */
function assertExported(t, out, requests) {
  const pages = out.spans.filter((s) => s.name === 'feedpump.page');
  const commits = out.spans.filter((s) => s.name === 'feedpump.commit');
  const sum = (list, key) => list.reduce((n, s) => n + s.attributes[key], 0);
  const value = (name) => out.metrics[name]?.reduce((n, p) => n + p.value, 0);
  const histogram = (name) => out.metrics[name]?.[0] ?? {};
  t.diagnostic(
    `consumed ${JSON.stringify(out.consumed)}; state ${out.state}; page spans ${pages.length} (server requests ${requests}), ` +
      `commit spans ${commits.length}; metrics ${JSON.stringify(Object.fromEntries(Object.entries(out.metrics).map(([k, v]) => [k, v.length === 1 && 'value' in v[0] ? v[0].value : v])))}`,
  );
  assert.deepEqual(out.consumed, { events: expected.events.length, batches: out.consumed.batches, caughtUp: true });
  assert.equal(out.state, 'closed');
  assert.equal(out.stats.events, expected.events.length);

  // A span per page request: every request the server answered, each a 200 with no error; together every event once.
  assert.equal(pages.length, requests, 'one page span per request the server saw');
  assert.ok(pages.every((s) => s.status === 0 && s.attributes['http.response.status_code'] === 200), 'no page failed');
  assert.deepEqual(pages.map((s) => s.attributes['feedpump.page']), pages.map((_, i) => i + 1));
  assert.ok(pages.every((s) => s.attributes['feedpump.feed'] === 'orders' && String(s.attributes['feedpump.partitions']) === '0,1,2,3'));
  assert.ok(pages.every((s) => /\/feed\/v1\?n&cursor0&cursor1&cursor2&cursor3/.test(s.attributes['url.full'])), 'URLs without query values');
  assert.equal(sum(pages, 'feedpump.events'), expected.events.length);
  assert.equal(pages.at(-1).attributes['feedpump.events'], 0, 'the last page brought nothing: caught up');
  assert.equal(sum(pages, 'feedpump.bytes'), out.stats.bytes);

  // A span per committed batch.
  assert.equal(commits.length, out.consumed.batches);
  assert.equal(sum(commits, 'feedpump.events'), expected.events.length);

  // The metrics agree with the spans and with feed.stats().
  assert.equal(value('feedpump.events'), expected.events.length);
  assert.equal(value('feedpump.bytes'), out.stats.bytes);
  assert.equal(value('feedpump.pages'), pages.length);
  assert.equal(value('feedpump.pages'), out.stats.pages);
  assert.equal(value('feedpump.retries') ?? 0, 0);
  assert.equal(value('feedpump.errors') ?? 0, 0);
  assert.equal(histogram('feedpump.page.duration').count, pages.length);
  assert.equal(histogram('feedpump.commit.duration').count, commits.length);
  const idle = out.metrics['feedpump.partition.idle'] ?? [];
  assert.deepEqual(idle.map((p) => p.attributes['feedpump.partition']).sort(), [0, 1, 2, 3], 'the idle gauge, per partition');
  assert.ok(idle.every((p) => p.value >= 0));
}

test('node-otel: consume.mjs exports a span per page and per commit and the metrics, through the SDK', async (t) => {
  const dir = await exampleProject(work, tarball, 'node-otel', OTEL);
  const before = await completed();
  const { stdout } = await run(process.execPath, [join(dir, 'consume.mjs'), server.feedUrl, '4'], { cwd: dir, timeout: 60_000 });
  const requests = (await completed()) - before;
  for (const line of stdout.trim().split('\n')) if (!line.startsWith('span ')) t.diagnostic(line);
  // What it printed, read back: the run, then a line per span and per metric.
  const consumed = /^consumed: (\d+) events in (\d+) batches, (caught up|not caught up)$/m.exec(stdout);
  assert.ok(consumed, stdout);
  const state = /^feed\.state (\S+), feed\.stats\(\) (\{.*\})$/m.exec(stdout);
  assert.ok(state, stdout);
  const out = {
    consumed: { events: Number(consumed[1]), batches: Number(consumed[2]), caughtUp: consumed[3] === 'caught up' },
    state: state[1],
    stats: JSON.parse(state[2]),
    spans: [...stdout.matchAll(/^span (\S+) status=(\d+) [\d.]+ms (\{.*\})$/gm)].map((m) => ({
      name: m[1],
      status: Number(m[2]),
      attributes: JSON.parse(m[3]),
    })),
    metrics: Object.fromEntries([...stdout.matchAll(/^metric (\S+) (\[.*\])$/gm)].map((m) => [m[1], JSON.parse(m[2])])),
  };
  assertExported(t, out, requests);
});

test('workers-otel: `wrangler deploy --dry-run` bundles the example with the SDK; in workerd it exports the spans and metrics', async (t) => {
  const dir = await exampleProject(work, tarball, 'workers-otel', OTEL);
  const outdir = join(dir, 'out');
  await run(bin('wrangler'), ['deploy', '--dry-run', '--outdir', outdir], {
    cwd: dir,
    env: { ...process.env, WRANGLER_SEND_METRICS: 'false', CI: 'true', WRANGLER_LOG_PATH: join(work, 'wrangler-logs') },
  });
  const script = readFileSync(join(outdir, 'worker.js'), 'utf8');
  assert.match(script, /feedpump\.partition\.idle/, 'the bundle holds feedpump/otel (resolved through the exports map)');
  const mf = await runInMiniflare(outdir, { bindings: { FEED_URL: server.feedUrl } });
  t.after(() => mf.dispose());
  const before = await completed();
  const res = await mf.dispatchFetch('http://worker.test/consume', { signal: AbortSignal.timeout(60_000) });
  const text = await res.text();
  assert.ok(res.ok, `${res.status} ${text.slice(0, 800)}`);
  const requests = (await completed()) - before;
  assertExported(t, JSON.parse(text), requests);
});
