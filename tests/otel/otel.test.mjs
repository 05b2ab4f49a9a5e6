// feedpump/otel with the OpenTelemetry SDK's in-memory exporters, over real HTTP (the scripted server on 127.0.0.1):
// the spans of the pages (a 503 retried among them) and of consume()'s commits, and the metrics, checked against what
// the server sent.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import * as api from '../../dist/entrypoints/node.js';
import { instrument } from '../../dist/otel/index.js';
import { startScriptedServer } from '../fault/scripted-server.mjs';
import { startV2Server } from '../v2_server/server.mjs';

const PAGES = {
  _first: '{"partition":0,"data":1}\n{"partition":1,"data":2}\n{"partition":0,"cursor":"a"}\n{"partition":1,"cursor":"a"}\n',
  a: '{"partition":0,"data":3}\n{"partition":0,"cursor":"b"}\n',
};
let server;
let v2;
let flaky = 0;
before(async () => {
  server = await startScriptedServer({
    '/flaky': (url) => {
      flaky += 1;
      if (flaky === 2) return { status: 503, headers: { 'retry-after': '0' }, body: 'busy' };
      return { body: PAGES[url.searchParams.get('cursor0')] ?? '' };
    },
    '/down': { status: 500, body: 'down' },
    // A v1 server as the Go handler answers a bare GET (no `n`): 400.
    '/v1': (url) => (url.searchParams.has('n') ? { body: PAGES[url.searchParams.get('cursor0')] ?? '' } : { status: 400, body: 'handshake error: partition count missing' }),
  });
  v2 = await startV2Server();
});
after(async () => {
  await server.close();
  await v2.close();
});

function sdk() {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  const metricsNow = async () => {
    await reader.forceFlush();
    const out = {};
    for (const rm of exporter.getMetrics()) {
      for (const sm of rm.scopeMetrics) {
        for (const m of sm.metrics) out[m.descriptor.name] = m.dataPoints.map((d) => ({ attributes: d.attributes, value: d.value }));
      }
    }
    return out;
  };
  return { spans, tracerProvider, meterProvider, metricsNow };
}

test('consume(): a span per request (the 503 recorded with its code), a span per commit, and the metrics', async () => {
  flaky = 0;
  const { spans, tracerProvider, meterProvider, metricsNow } = sdk();
  const otel = instrument({ feed: 'orders', partitions: [0, 1], tracerProvider, meterProvider });
  const store = api.memoryStore();
  const result = await api.consume(
    { url: `${server.base}/flaky?token=s3cr3t`, partitionCount: 2, retry: { initialMs: 1, maxMs: 1 }, ...otel.hooks },
    {
      store,
      key: 'orders',
      handler: async () => {
        await new Promise((r) => setTimeout(r, 20));
      },
      onCommit: otel.hooks.onCommit,
    },
  );
  assert.equal(result.events, 3);
  const finished = spans.getFinishedSpans();
  const pages = finished.filter((s) => s.name === 'feedpump.page');
  const commits = finished.filter((s) => s.name === 'feedpump.commit');
  console.log('page spans', JSON.stringify(pages.map((s) => ({ status: s.status.code, ...s.attributes }))));
  console.log('commit spans', JSON.stringify(commits.map((s) => s.attributes)));
  assert.equal(pages.length, 4, 'one span per request the server saw');
  assert.deepEqual(pages.map((s) => s.attributes['http.response.status_code']), [200, 503, 200, 200]);
  assert.deepEqual(pages.map((s) => s.attributes['feedpump.events']), [2, 0, 1, 0]);
  assert.deepEqual(pages.map((s) => s.attributes['feedpump.bytes']), [Buffer.byteLength(PAGES._first), 0, Buffer.byteLength(PAGES.a), 0]);
  assert.deepEqual(pages.map((s) => s.status.code), [0, 2, 0, 0], 'the 503 is an error span');
  assert.equal(pages[1].attributes['error.type'], 'http-status');
  assert.ok(pages.every((s) => s.attributes['feedpump.feed'] === 'orders' && !String(s.attributes['url.full']).includes('s3cr3t')));
  assert.deepEqual(pages[0].attributes['feedpump.partitions'], [0, 1]);
  assert.equal(commits.length, 2, 'one span per committed batch');
  for (const c of commits) {
    assert.ok(c.attributes['feedpump.handler_ms'] >= 15, `handler time ${c.attributes['feedpump.handler_ms']}`);
    assert.ok(c.attributes['feedpump.commit_ms'] >= 0);
  }
  assert.deepEqual(commits.map((c) => c.attributes['feedpump.events']), [2, 1]);
  const m = await metricsNow();
  console.log('metrics', JSON.stringify(Object.fromEntries(Object.entries(m).map(([k, v]) => [k, v.map((d) => (typeof d.value === 'object' ? d.value.count : d.value))]))));
  assert.equal(m['feedpump.events'][0].value, 3);
  assert.equal(m['feedpump.bytes'][0].value, Buffer.byteLength(PAGES._first) + Buffer.byteLength(PAGES.a));
  assert.equal(m['feedpump.pages'][0].value, 3);
  assert.deepEqual(m['feedpump.retries'].map((d) => [d.attributes['error.type'], d.value]), [['http-status', 1]]);
  assert.equal(m['feedpump.page.duration'][0].value.count, 3);
  assert.equal(m['feedpump.commit.duration'][0].value.count, 2);
  assert.deepEqual(m['feedpump.partition.idle'].map((d) => d.attributes['feedpump.partition']).sort(), [0, 1]);
  assert.ok(m['feedpump.partition.idle'].every((d) => d.value >= 0 && d.value < 60_000));
});

test('openFeed: a failure that is not retried ends its span as an error with its code; watch() feeds the gauge', async () => {
  const { spans, tracerProvider, meterProvider, metricsNow } = sdk();
  const otel = instrument({ tracerProvider, meterProvider });
  const feed = api.openFeed(`${server.base}/down`, { partitionCount: 1, retry: false, ...otel.hooks });
  otel.watch(feed);
  await assert.rejects(async () => {
    for await (const _ of feed);
  }, { code: 'http-status' });
  const [span] = spans.getFinishedSpans();
  assert.equal(span.status.code, 2);
  assert.equal(span.attributes['http.response.status_code'], 500);
  const m = await metricsNow();
  assert.deepEqual(m['feedpump.errors'].map((d) => [d.attributes['error.type'], d.value]), [['http-status', 1]]);
  assert.equal(m['feedpump.partition.idle'], undefined, 'no event: no partition to report');
});

test('after the feed ends (consume() returned), one collection reports the idle gauge, then its callback is removed, not kept for ever', async () => {
  flaky = 10; // no 503 this time
  const { meterProvider, metricsNow } = sdk();
  const otel = instrument({ feed: 'ended', meterProvider });
  let statsCalls = 0;
  const result = await api.consume(
    { url: `${server.base}/flaky`, partitionCount: 2, ...otel.hooks },
    {
      store: api.memoryStore(),
      key: 'ended',
      handler: () => {},
      onCommit: otel.hooks.onCommit,
      onFeed: (feed) => otel.watch({ stats: () => (statsCalls++, feed.stats()) }),
    },
  );
  assert.equal(result.events, 3);
  const idle = (m) => (m['feedpump.partition.idle'] ?? []).map((d) => [d.attributes['feedpump.partition'], d.value]);
  // The first collection after the end: the run's final numbers.
  const first = idle(await metricsNow());
  assert.deepEqual(first.map(([p]) => p).sort(), [0, 1]);
  statsCalls = 0;
  await new Promise((r) => setTimeout(r, 30));
  const second = idle(await metricsNow());
  const third = idle(await metricsNow());
  console.log('idle after the end', JSON.stringify([first, second, third]));
  assert.equal(statsCalls, 0, "the ended feed's stats() is not read again");
  for (const later of [second, third]) {
    for (const [p, v] of later) assert.equal(v, new Map(first).get(p), `partition ${p}: the idle time of an ended feed does not keep growing`);
  }
});

test('FeedAPI v2: discovery answers are requests (spans), not pages; feedpump.pages counts the events pages the server served', async () => {
  await v2.control({ reset: true });
  // The token rotates mid-feed: the 409 makes the feed discover again, so two discovery answers come among the pages.
  let rotated = false;
  const { spans, tracerProvider, meterProvider, metricsNow } = sdk();
  const otel = instrument({ feed: 'split', tracerProvider, meterProvider });
  const kinds = [];
  const feed = api.openFeed(`${v2.url}/split`, {
    protocol: 'v2',
    ...otel.hooks,
    onResponse: (r) => (kinds.push(r.kind), otel.hooks.onResponse(r)),
  });
  let events = 0;
  for await (const _ of feed) {
    events += 1;
    if (events === 150 && !rotated) {
      rotated = true;
      await v2.control({ rotateToken: true, feed: 'split' });
    }
  }
  assert.equal(events, 700);
  const log = (await (await fetch(`${v2.url}/_requests`)).json()).filter((r) => r.method === 'GET');
  const discoveries = log.filter((r) => new URL(r.url, v2.url).pathname === '/split');
  const pages = log.filter((r) => new URL(r.url, v2.url).pathname === '/split/events' && r.status === 200);
  const conflicts = log.filter((r) => r.status === 409);
  console.log('server log', JSON.stringify({ discoveries: discoveries.length, pages: pages.length, conflicts: conflicts.length, all: log.length }));
  assert.equal(discoveries.length, 2, 'discovery at the start and after the 409');
  assert.equal(conflicts.length, 1);
  const m = await metricsNow();
  console.log('metrics', JSON.stringify({ pages: m['feedpump.pages'][0].value, durations: m['feedpump.page.duration'][0].value.count, stats: feed.stats().pages }));
  assert.equal(m['feedpump.pages'][0].value, pages.length, 'feedpump.pages: the events pages read, no discovery answer');
  assert.equal(m['feedpump.pages'][0].value, feed.stats().pages, 'as feed.stats() counts');
  assert.equal(m['feedpump.page.duration'][0].value.count, pages.length);
  assert.equal(m['feedpump.events'][0].value, 700);
  assert.equal(kinds.filter((k) => k === 'discovery').length, 2, 'onResponse tells a discovery answer as one');
  assert.equal(kinds.filter((k) => k === 'page').length, pages.length + conflicts.length);
  const finished = spans.getFinishedSpans();
  assert.equal(finished.length, log.length, 'a span per request the server saw, discovery too');
  const discoverySpans = finished.filter((s) => s.name === 'feedpump.discovery');
  assert.equal(discoverySpans.length, 2);
  assert.ok(discoverySpans.every((s) => s.attributes['http.response.status_code'] === 200 && s.status.code === 0));
  assert.equal(finished.filter((s) => s.name === 'feedpump.page').length, pages.length + conflicts.length);
});

test("protocol 'auto' on a v1 server: the discovery's 400 (the SPEC's answer of a v1 server) is no error span and no page", async () => {
  const { spans, tracerProvider, meterProvider, metricsNow } = sdk();
  const otel = instrument({ tracerProvider, meterProvider });
  const feed = api.openFeed(`${server.base}/v1`, { protocol: 'auto', partitionCount: 2, ...otel.hooks });
  let events = 0;
  for await (const _ of feed) events += 1;
  assert.equal(events, 3);
  const finished = spans.getFinishedSpans();
  console.log('spans', JSON.stringify(finished.map((s) => [s.name, s.attributes['http.response.status_code'], s.status.code])));
  const [discovery, ...pages] = finished;
  assert.equal(discovery.name, 'feedpump.discovery');
  assert.equal(discovery.attributes['http.response.status_code'], 400);
  assert.equal(discovery.status.code, 0, 'not an error: the feed goes on as v1');
  assert.equal(discovery.attributes['error.type'], undefined);
  assert.deepEqual(pages.map((s) => s.name), ['feedpump.page', 'feedpump.page', 'feedpump.page']);
  const m = await metricsNow();
  assert.equal(m['feedpump.pages'][0].value, 3);
  assert.equal(m['feedpump.errors'], undefined, 'no error counted');
});
