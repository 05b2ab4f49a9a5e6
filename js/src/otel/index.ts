/**
 * `feedpump/otel`: OpenTelemetry instrumentation of a feed, built on its hooks (`onRequest`, `onResponse`, `onRetry`,
 * `onStateChange`, and `consume()`'s `onCommit`). `@opentelemetry/api` is an optional peer dependency: only this
 * subpath imports it, and the SDK (exporters, processors) is the application's.
 *
 * - a span per request: `feedpump.page` for a page of events, `feedpump.discovery` for a FeedAPI v2 discovery request
 *   (its `kind`, see `RequestKind`); feed, partitions, request number, URL (no query values), status, bytes, events,
 *   checkpoints, retry attempt; a failure is recorded on it with its code (`error.type`). A discovery's `400` is no
 *   failure (a v1 server's answer to `protocol: 'auto'`; if the feed fails on it, `feedpump.errors` counts that);
 * - a span per committed batch of `consume()` (`feedpump.commit`): events, checkpoints, handler time and commit time;
 * - metrics: `feedpump.events`, `feedpump.bytes`, `feedpump.pages` (pages of events read to their end: never a
 *   discovery answer), `feedpump.retries` and `feedpump.errors` (by `error.type`), the histograms
 *   `feedpump.page.duration` (pages only) and `feedpump.commit.duration` (ms), and the gauge
 *   `feedpump.partition.idle` (ms since the latest event, per partition; after the feed ends, one collection reports
 *   it, then its callback is removed).
 *
 * @example
 * ```ts
 * import { openFeed } from 'feedpump';
 * import { instrument } from 'feedpump/otel';
 *
 * const otel = instrument({ feed: 'orders' });
 * const feed = openFeed(url, { partitionCount: 4, ...otel.hooks });
 * otel.watch(feed); // the per-partition gauge reads feed.stats() (consume(): `onFeed: otel.watch`, or it uses the commits)
 * ```
 * @packageDocumentation
 */
import {
  metrics,
  trace,
  SpanKind,
  SpanStatusCode,
  type Attributes,
  type Meter,
  type MeterProvider,
  type ObservableResult,
  type Span,
  type Tracer,
  type TracerProvider,
} from '@opentelemetry/api';
import type { CommitInfo } from '../consume.js';
import type { FeedError } from '../errors.js';
import type { Feed, FeedState, RequestInfo, ResponseInfo, RetryInfo } from '../types.js';

/** The instrumentation scope's name. */
const SCOPE = 'feedpump';

/**
 * What {@link instrument} is given.
 *
 * @example
 * ```ts
 * const options: InstrumentOptions = { feed: 'orders', partitions: [0, 1] };
 * ```
 */
export interface InstrumentOptions {
  /** A name of the feed, the `feedpump.feed` attribute of every span and metric. @defaultValue none */
  feed?: string | undefined;
  /** The partitions read, the `feedpump.partitions` attribute of page spans. @defaultValue none */
  partitions?: readonly number[] | undefined;
  /** @defaultValue the global one (`trace.getTracerProvider()`) */
  tracerProvider?: TracerProvider | undefined;
  /** @defaultValue the global one (`metrics.getMeterProvider()`) */
  meterProvider?: MeterProvider | undefined;
}

/**
 * The hooks to spread into `openFeed`'s or `consume()`'s options. Compose with your own by calling both.
 *
 * @example
 * ```ts
 * const { hooks } = instrument();
 * openFeed(url, { partitionCount: 1, ...hooks, onRetry: (info) => (hooks.onRetry(info), console.warn(info)) });
 * ```
 */
export interface FeedHooks {
  /** Starts the request's span. */
  onRequest(info: RequestInfo): void;
  /** Ends the request's span; counts pages (not discovery answers), events and bytes. */
  onResponse(info: ResponseInfo): void;
  /** Counts the retry and records its error on the request's span. */
  onRetry(info: RetryInfo): void;
  /** Records the error that ends the feed; ends the spans still open. */
  onStateChange(state: FeedState, previous: FeedState, error?: FeedError): void;
  /** `consume()`'s: the commit's span and duration, and the partitions' latest events. */
  onCommit(info: CommitInfo<unknown>): void;
}

/**
 * What {@link instrument} returns.
 *
 * @example
 * ```ts
 * const { hooks, watch } = instrument({ feed: 'orders' });
 * ```
 */
export interface Instrumentation {
  /** The hooks to spread into the options. */
  hooks: FeedHooks;
  /**
   * Reads the time of the latest event per partition from a feed's `stats()` for the gauge: an `openFeed` feed, or
   * `consume()`'s, given as its `onFeed` (`onFeed: otel.watch`).
   */
  watch(feed: Pick<Feed, 'stats'>): void;
}

/**
 * Instruments a feed with OpenTelemetry: spans and metrics (see the module's documentation). One instrumentation per
 * feed (or per `consume()` call).
 *
 * @param options - see {@link InstrumentOptions}
 * @returns the hooks, and `watch` for `openFeed` feeds
 * @example
 * ```ts
 * import { consume, memoryStore } from 'feedpump';
 * import { instrument } from 'feedpump/otel';
 *
 * const { hooks, watch } = instrument({ feed: 'orders' });
 * await consume({ url, partitionCount: 4, ...hooks }, { store: memoryStore(), key: 'orders', handler: apply, onCommit: hooks.onCommit, onFeed: watch });
 * ```
 */
export function instrument(options: InstrumentOptions = {}): Instrumentation {
  const tracer: Tracer = (options.tracerProvider ?? trace.getTracerProvider()).getTracer(SCOPE);
  const meter: Meter = (options.meterProvider ?? metrics.getMeterProvider()).getMeter(SCOPE);
  const base: Attributes = options.feed === undefined ? {} : { 'feedpump.feed': options.feed };
  const events = meter.createCounter('feedpump.events', { description: 'Events read' });
  const bytes = meter.createCounter('feedpump.bytes', { description: 'Body bytes read', unit: 'By' });
  const pages = meter.createCounter('feedpump.pages', { description: 'Pages read to their end' });
  const retries = meter.createCounter('feedpump.retries', { description: 'Retries, by error code' });
  const errors = meter.createCounter('feedpump.errors', { description: 'Failures (retried or not), by error code' });
  const pageDuration = meter.createHistogram('feedpump.page.duration', { description: 'From a request to the end of its body', unit: 'ms' });
  const commitDuration = meter.createHistogram('feedpump.commit.duration', { description: 'A committed batch: handler and commit', unit: 'ms' });
  const idle = meter.createObservableGauge('feedpump.partition.idle', { description: 'Time since the latest event of a partition', unit: 'ms' });
  const lastEventAt = new Map<number, number>();
  let watched: Pick<Feed, 'stats'> | undefined;
  /** Set when the feed ends: the next collection is the gauge's last. */
  let ended = false;
  const observeIdle = (result: ObservableResult): void => {
    if (watched !== undefined) for (const [p, at] of Object.entries(watched.stats().lastEventAt)) lastEventAt.set(Number(p), at);
    const now = Date.now();
    for (const [p, at] of lastEventAt) result.observe(now - at, { ...base, 'feedpump.partition': p });
    if (!ended) return;
    // One collection after the feed ended reports it (the final numbers of a run), then the callback goes: the meter
    // provider would otherwise keep it, and the feed it reads, for ever (one per instrumented feed), reporting an idle
    // time that grows after the feed is gone. Removed after the collection's turn: the SDK is iterating its callbacks.
    watched = undefined;
    void Promise.resolve().then(() => idle.removeCallback(observeIdle));
  };
  idle.addCallback(observeIdle);

  /** The spans of requests not answered yet, by request number. */
  const open = new Map<number, Span>();
  const fail = (error: FeedError): void => {
    errors.add(1, { ...base, 'error.type': error.code });
    // The request that failed is the latest one still open (a failing status already ended its span).
    const last = [...open.keys()].pop();
    if (last === undefined) return;
    const span = open.get(last) as Span;
    open.delete(last);
    span.recordException({ name: 'FeedError', message: error.message, code: error.code });
    span.setAttribute('error.type', error.code);
    span.setStatus({ code: SpanStatusCode.ERROR, message: error.code });
    span.end();
  };

  const hooks: FeedHooks = {
    onRequest: ({ page, url, attempt, kind }) => {
      const attributes: Attributes = { ...base, 'feedpump.page': page, 'url.full': url, 'feedpump.attempt': attempt };
      if (options.partitions !== undefined) attributes['feedpump.partitions'] = [...options.partitions];
      const name = kind === 'discovery' ? 'feedpump.discovery' : 'feedpump.page';
      open.set(page, tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }));
    },
    onResponse: (r) => {
      const span = open.get(r.page);
      open.delete(r.page);
      const discovery = r.kind === 'discovery';
      // A discovery's 400 is the FeedAPI SPEC's "this is a v1 server" (protocol 'auto' goes on as v1); a feed that
      // fails on it reports that through onStateChange.
      const failed = r.status === 0 || (r.status >= 400 && !(discovery && r.status === 400));
      span?.setAttributes({
        'http.response.status_code': r.status,
        'feedpump.bytes': r.bytes,
        'feedpump.events': r.events,
        'feedpump.checkpoints': r.checkpoints,
      });
      if (failed) {
        span?.setAttribute('error.type', 'http-status');
        span?.setStatus({ code: SpanStatusCode.ERROR, message: `HTTP ${r.status}` });
      } else if (!discovery) {
        pages.add(1, base);
        events.add(r.events, base);
        bytes.add(r.bytes, base);
        pageDuration.record(r.durationMs, { ...base, 'http.response.status_code': r.status });
      }
      span?.end();
    },
    onRetry: ({ error }) => {
      retries.add(1, { ...base, 'error.type': error.code });
      fail(error);
    },
    onStateChange: (state, _previous, error) => {
      if (state === 'failed' && error !== undefined) fail(error);
      if (state === 'closed' || state === 'failed') {
        for (const span of open.values()) span.end();
        open.clear();
        ended = true;
      }
    },
    onCommit: ({ batch, remote, handlerMs = 0, commitMs = 0 }) => {
      if (remote) return;
      const end = Date.now();
      for (const e of batch.events) lastEventAt.set(e.partition, end);
      const span = tracer.startSpan('feedpump.commit', {
        startTime: end - handlerMs - commitMs,
        attributes: {
          ...base,
          'feedpump.events': batch.events.length,
          'feedpump.checkpoints': batch.checkpoints.length,
          'feedpump.handler_ms': handlerMs,
          'feedpump.commit_ms': commitMs,
        },
      });
      span.end(end);
      commitDuration.record(handlerMs + commitMs, base);
    },
  };
  return {
    hooks,
    watch: (feed) => {
      watched = feed;
    },
  };
}
