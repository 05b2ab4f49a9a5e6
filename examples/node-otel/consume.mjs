// OpenTelemetry for a feed consumer in Node: feedpump/otel gives a span per page request, a span per committed batch
// of consume(), and metrics (events, bytes, pages, retries and errors by code, page and commit durations, and the
// time since each partition's latest event). This script sets up the OpenTelemetry SDK with in-memory exporters,
// consumes a ZeroEventHub feed to its end, and prints what was exported: one line per span, then the metrics.
//
//   node examples/node-otel/consume.mjs [feedUrl] [partitionCount]
//   defaults: http://127.0.0.1:8400/feed/v1 (the demo's reference feed), 4
//
// A service exports elsewhere: put an OTLP exporter (@opentelemetry/exporter-trace-otlp-http, …-metrics-otlp-http)
// where the in-memory ones are, or start @opentelemetry/sdk-node; feedpump/otel only talks to @opentelemetry/api.
// Install beside this file: the feedpump tarball (`npm pack`), @opentelemetry/api, @opentelemetry/sdk-trace-base and
// @opentelemetry/sdk-metrics (package.json).
import { metrics, trace } from '@opentelemetry/api';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { consume, memoryStore, FeedError } from 'feedpump';
import { instrument } from 'feedpump/otel';

const [url = 'http://127.0.0.1:8400/feed/v1', n = '4'] = process.argv.slice(2);
const partitionCount = Number(n);

// The SDK, registered as the global providers (instrument() uses them when it is given none).
const spans = new InMemorySpanExporter();
const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
const meterProvider = new MeterProvider({ readers: [reader] });
trace.setGlobalTracerProvider(tracerProvider);
metrics.setGlobalMeterProvider(meterProvider);

// The instrumentation: its hooks go into the source (requests, retries, state) and the options (commits); onFeed
// hands consume()'s feed to `watch`, whose stats() feed the per-partition idle gauge.
const otel = instrument({ feed: 'orders', partitions: Array.from({ length: partitionCount }, (_, p) => p) });
let feed;
const result = await consume(
  { url, partitionCount, pageSizeHint: 1000, ...otel.hooks },
  {
    store: memoryStore(),
    key: 'orders',
    handler: () => {}, // a real consumer applies batch.events here, through the store's transaction
    onCommit: otel.hooks.onCommit,
    onFeed: (f) => {
      feed = f;
      otel.watch(f);
    },
  },
).catch((e) => {
  console.error(e instanceof FeedError ? `${e.code}: ${e.message}` : e);
  process.exit(1);
});

await reader.forceFlush(); // one more collection: the counters as they are now, and the gauge
await tracerProvider.forceFlush();
console.log(`feed ${url} (${partitionCount} partitions)`);
console.log(`consumed: ${result.events} events in ${result.batches} batches, ${result.caughtUp ? 'caught up' : 'not caught up'}`);
console.log(`feed.state ${feed.state}, feed.stats() ${JSON.stringify({ ...feed.stats(), lastEventAt: undefined })}`);

// What the exporters got. One line per span: its name, status and attributes.
for (const s of spans.getFinishedSpans()) {
  const ms = (s.endTime[0] - s.startTime[0]) * 1e3 + (s.endTime[1] - s.startTime[1]) / 1e6;
  console.log(`span ${s.name} status=${s.status.code} ${ms.toFixed(1)}ms ${JSON.stringify(s.attributes)}`);
}
// One line per metric: the sum of a counter, the count and sum of a histogram, the values of a gauge, per attributes.
const last = exporter.getMetrics().at(-1);
for (const m of last?.scopeMetrics.flatMap((sm) => sm.metrics) ?? []) {
  const points = m.dataPoints.map((d) => ({
    attributes: d.attributes,
    ...(typeof d.value === 'number' ? { value: d.value } : { count: d.value.count, sum: Math.round(d.value.sum) }),
  }));
  console.log(`metric ${m.descriptor.name} ${JSON.stringify(points)}`);
}
await meterProvider.shutdown();
await tracerProvider.shutdown();
