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

const PAGES = {
  _first: '{"partition":0,"data":1}\n{"partition":1,"data":2}\n{"partition":0,"cursor":"a"}\n{"partition":1,"cursor":"a"}\n',
  a: '{"partition":0,"data":3}\n{"partition":0,"cursor":"b"}\n',
};
let server;
let flaky = 0;
before(async () => {
  server = await startScriptedServer({
    '/flaky': (url) => {
      flaky += 1;
      if (flaky === 2) return { status: 503, headers: { 'retry-after': '0' }, body: 'busy' };
      return { body: PAGES[url.searchParams.get('cursor0')] ?? '' };
    },
    '/down': { status: 500, body: 'down' },
  });
});
after(async () => {
  await server.close();
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
