// OpenTelemetry for a feed consumer on Cloudflare Workers: feedpump/otel's spans (one per page request, one per
// committed batch of consume()) and metrics, exported through the OpenTelemetry SDK. Workers have no process-wide
// SDK to start: each invocation makes its providers, passes them to instrument(), and flushes them before it ends
// (ctx.waitUntil for a cron trigger).
//
// Here the exporters are in-memory, so that the example shows what was exported:
//   GET /consume   consumes FEED_URL to its end (a memory store: every run starts from the first event) and answers
//                  { consumed, state, stats, spans, metrics }, the spans and metrics as the exporters got them.
// A deployed Worker puts an OTLP exporter over fetch where the in-memory ones are, and the cursors in a Durable
// Object (see examples/workers-durable-objects); the scheduled() handler below is that shape.
import { consume, memoryStore } from 'feedpump';
import { instrument } from 'feedpump/otel';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AggregationTemporality, InMemoryMetricExporter, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';

/** The SDK for one invocation: tracer and meter providers and their in-memory exporters. */
function telemetry() {
  const spans = new InMemorySpanExporter();
  const tracerProvider = new BasicTracerProvider({ spanProcessors: [new SimpleSpanProcessor(spans)] });
  const exporter = new InMemoryMetricExporter(AggregationTemporality.CUMULATIVE);
  // No periodic export within an invocation: the metrics are collected once, at the end (forceFlush).
  const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 3_600_000 });
  const meterProvider = new MeterProvider({ readers: [reader] });
  return {
    tracerProvider,
    meterProvider,
    /** Flushes both providers and shuts them down; returns what the exporters got. */
    async finish() {
      await reader.forceFlush();
      const exported = {
        spans: spans.getFinishedSpans().map((s) => ({ name: s.name, status: s.status.code, attributes: s.attributes })),
        metrics: Object.fromEntries(
          (exporter.getMetrics().at(-1)?.scopeMetrics.flatMap((sm) => sm.metrics) ?? []).map((m) => [
            m.descriptor.name,
            m.dataPoints.map((d) => ({
              attributes: d.attributes,
              ...(typeof d.value === 'number' ? { value: d.value } : { count: d.value.count, sum: Math.round(d.value.sum) }),
            })),
          ]),
        ),
      };
      await Promise.all([tracerProvider.shutdown(), meterProvider.shutdown()]);
      return exported;
    },
  };
}

/** One consumer run with the instrumentation: the hooks in the source and the options, onFeed for the idle gauge. */
async function run(env, partitionCount = 4) {
  const sdk = telemetry();
  const otel = instrument({
    feed: 'orders',
    partitions: Array.from({ length: partitionCount }, (_, p) => p),
    tracerProvider: sdk.tracerProvider,
    meterProvider: sdk.meterProvider,
  });
  let feed;
  let result;
  let exported;
  try {
    result = await consume(
      { url: env.FEED_URL, partitionCount, pageSizeHint: 1000, ...otel.hooks },
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
    );
  } finally {
    exported = await sdk.finish(); // also when consume() failed: its spans record the error
  }
  return {
    consumed: { events: result.events, batches: result.batches, caughtUp: result.caughtUp },
    state: feed.state,
    stats: feed.stats(),
    ...exported,
  };
}

export default {
  async fetch(request, env) {
    if (new URL(request.url).pathname !== '/consume') return new Response('GET /consume\n', { status: 404 });
    try {
      return Response.json(await run(env));
    } catch (e) {
      return Response.json({ error: e?.code ?? 'error', message: String(e?.message ?? e) }, { status: 500 });
    }
  },
  // A cron trigger: the same run, kept alive until it is done (telemetry flushed) by waitUntil.
  scheduled(_controller, env, ctx) {
    ctx.waitUntil(run(env));
  },
};
