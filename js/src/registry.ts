/**
 * A typed event registry: map event types (exact names, prefixes, RegExps) to a decoder and a handler, then dispatch
 * events or iterate them as a discriminated union. Pure: it works on any (async) iterable of {@link FeedEvent}s.
 * @packageDocumentation
 */
import { compilePattern, isObject, typeReader } from './filters.js';
import type { FeedEvent, TypeFilter, TypePattern, TypeSource } from './types.js';

/**
 * The `key` a pattern gives its events: the exact name for a string, `` `${prefix}*` `` for `{ prefix }`, and for a
 * RegExp its `String(regexp)` (`"/^Customer\\./"`, typed `` `/${string}` ``) unless a `key` label is given.
 */
export type PatternKey<P> = P extends string
  ? P
  : P extends {
        /** The prefix of a `{ prefix }` pattern. */
        readonly prefix: infer X extends string;
      }
    ? `${X}*`
    : `/${string}`;

/** The type of `type` for events a pattern matches: the name itself, `` `${prefix}${string}` ``, or `string`. */
export type PatternType<P> = P extends string
  ? P
  : P extends {
        /** The prefix of a `{ prefix }` pattern. */
        readonly prefix: infer X extends string;
      }
    ? `${X}${string}`
    : string;

/**
 * An event matched by a registration.
 * @typeParam K - the registration's `key` (the discriminant).
 * @typeParam Ty - the event's type.
 * @typeParam T - the decoded data.
 */
export interface TypedEvent<K extends string = string, Ty extends string = string, T = unknown> {
  /** Which registration matched: the exact type, `` `${prefix}*` ``, or the RegExp's label. */
  readonly key: K;
  /** The event's type, as read by `typeFrom`. */
  readonly type: Ty;
  /** `data`, decoded by the registration's decoder (or as it came when it has none). */
  readonly data: T;
  /** The event as the feed delivered it (partition, raw data, headers). */
  readonly event: FeedEvent;
}

/** An event no registration matched (or that has no type): `key` is `null`. */
export interface UnknownEvent {
  /** `null`: no registration matched. */
  readonly key: null;
  /** The event's type as read by `typeFrom`, or `undefined` when it has none. */
  readonly type: string | undefined;
  /** `data` as it came (not decoded). */
  readonly data: unknown;
  /** The event as the feed delivered it (partition, raw data, headers). */
  readonly event: FeedEvent;
}

/** Decodes (and validates) `data`: throw to reject the event. */
export type Decoder<T> = (data: unknown, event: FeedEvent) => T;
/** Handles one typed event; may be async. */
export type Handler<E> = (event: E) => unknown;

/**
 * The data type the declared map `M` of {@link createRegistry} gives pattern `P`: `M[P]` for a declared exact name,
 * else `unknown`.
 */
export type DeclaredData<M, P> = P extends keyof M ? M[P] : unknown;

/** A decode failure: which registration, which event; the decoder's error is the `cause`. */
export class EventDecodeError extends Error {
  /** Always `'EventDecodeError'`. */
  override readonly name = 'EventDecodeError';
  /** The registration's key. */
  readonly key: string;
  /** The event's type. */
  readonly type: string;
  /** The event that failed to decode. */
  readonly event: FeedEvent;
  constructor(key: string, type: string, event: FeedEvent, cause: unknown) {
    super(`decoding a ${JSON.stringify(type)} event (registration ${JSON.stringify(key)}, partition ${event.partition}) failed: ${String(cause instanceof Error ? cause.message : cause)}`, { cause });
    this.key = key;
    this.type = type;
    this.event = event;
  }
}

/** Options of {@link createRegistry}. */
export interface RegistryOptions {
  /** Where an event's type is read from ({@link TypeSource}). @defaultValue `{ field: 'type' }` */
  typeFrom?: TypeSource | undefined;
}

/** What {@link Registry.typed} does with unknown events. */
export interface TypedOptions<U extends 'yield' | 'skip' | 'throw' = 'yield' | 'skip' | 'throw'> {
  /** `'yield'` them as {@link UnknownEvent} (default), `'skip'` them, or `'throw'` a `TypeError`. */
  unknown?: U | undefined;
}

/** The options form of {@link Registry.on}. */
export interface Registration<K extends string, T, E> {
  /** The key of the events (the discriminant); mostly for RegExps. @defaultValue see {@link PatternKey} */
  key?: K | undefined;
  /** Decodes (and validates) `data` before the handler sees it. @defaultValue none: `data` as it came */
  decode?: Decoder<T> | undefined;
  /** Handles the typed event; leave it out for typed iteration only. @defaultValue none */
  handle?: Handler<E> | undefined;
}

/**
 * A typed event registry. Each `on` returns the registry with its type extended, so chain the registrations (or
 * declare the types up front with `createRegistry<{ OrderCreated: Order }>()`).
 *
 * **First match wins**: an event's type is tested against the registrations in the order they were made; the first
 * that matches decodes and handles it. Register exact names before prefixes and RegExps that would also match them.
 * Registering the same exact name (or the same prefix) twice is a `TypeError`, since the second could never match.
 * Events that match nothing (or have no type) go to the {@link Registry.fallback} handler, if any.
 *
 * @typeParam M - declared data types by exact type name (optional).
 * @typeParam U - the union of typed events registered so far.
 */
export interface Registry<M = {}, U = never> {
  /**
   * Registers a pattern for typed iteration only ({@link Registry.typed}, {@link Registry.match}): no decoder, no
   * handler; `data` is typed as declared in `M`, else `unknown`.
   *
   * @example
   * ```ts
   * const registry = createRegistry<{ OrderCreated: Order }>().on('OrderCreated').on({ prefix: 'Payment.' });
   * ```
   */
  on<const P extends TypePattern>(pattern: P): Registry<M, U | TypedEvent<PatternKey<P>, PatternType<P>, DeclaredData<M, P>>>;
  /**
   * Registers a handler; `data` is not decoded (typed as declared in `M`, else `unknown`). A one-argument function
   * here is always the **handler**: to decode, use the options form, `.on(pattern, { decode })`.
   *
   * @example
   * ```ts
   * registry.on('OrderShipped', (ev) => ship(ev.event.partition));
   * ```
   */
  on<const P extends TypePattern>(
    pattern: P,
    handler: Handler<TypedEvent<PatternKey<P>, PatternType<P>, DeclaredData<M, P>>>,
  ): Registry<M, U | TypedEvent<PatternKey<P>, PatternType<P>, DeclaredData<M, P>>>;
  /**
   * Registers with options: `decode` (decodes and validates `data`), `handle`, and `key` (a label, mostly for
   * RegExps). The form to use whenever there is a decoder.
   *
   * @example
   * ```ts
   * registry.on('OrderCreated', { decode: (data) => parseOrder(data), handle: (ev) => save(ev.data) });
   * registry.on(/^Customer\./, { key: 'customer', decode: (data) => data as Customer }); // typed iteration only
   * ```
   */
  on<const P extends TypePattern, const K extends string = PatternKey<P>, T extends DeclaredData<M, P> = DeclaredData<M, P>>(
    pattern: P,
    registration: Registration<K, T, TypedEvent<K, PatternType<P>, T>>,
  ): Registry<M, U | TypedEvent<K, PatternType<P>, T>>;
  /** The positional form of the above: a decoder (or `null`), then optionally a handler. */
  on<const P extends TypePattern, T extends DeclaredData<M, P>>(
    pattern: P,
    decode: Decoder<T> | null | undefined,
    handler?: Handler<TypedEvent<PatternKey<P>, PatternType<P>, T>>,
  ): Registry<M, U | TypedEvent<PatternKey<P>, PatternType<P>, T>>;

  /** Sets the handler for events no registration matches (default: they are ignored by `dispatch`). */
  fallback(handler: Handler<UnknownEvent>): Registry<M, U>;

  /** Matches and decodes one event (no handler runs). Throws {@link EventDecodeError} when the decoder throws. */
  match(event: FeedEvent): U | UnknownEvent;

  /** Matches, decodes and runs the handler (or the fallback); resolves to what the handler returned. */
  dispatch(event: FeedEvent): Promise<unknown>;

  /** Dispatches every event of `source` in order, one at a time; resolves to the number of events. */
  handle(source: AsyncIterable<FeedEvent> | Iterable<FeedEvent>): Promise<number>;

  /**
   * The events of `source` as a discriminated union on `key` (no handlers run).
   *
   * @example
   * ```ts
   * const registry = createRegistry<{ OrderCreated: Order }>().on('OrderCreated');
   * for await (const ev of registry.typed(feed)) {
   *   if (ev.key === 'OrderCreated') ev.data.orderId; // narrowed
   * }
   * ```
   */
  typed(source: AsyncIterable<FeedEvent> | Iterable<FeedEvent>, options: TypedOptions<'skip' | 'throw'> & { unknown: 'skip' | 'throw' }): AsyncGenerator<U, void, undefined>;
  /** As above; with `unknown: 'yield'` (the default) unknown events come as {@link UnknownEvent} (`key: null`). */
  typed(source: AsyncIterable<FeedEvent> | Iterable<FeedEvent>, options?: TypedOptions<'yield'>): AsyncGenerator<U | UnknownEvent, void, undefined>;

  /**
   * A {@link TypeFilter} that keeps what the registrations match (for `compileTypeFilter`, or `serverTypeFilter` to
   * ask a v2 server for `event-types`). Only useful when unknown events are not wanted. With nothing registered it
   * keeps nothing.
   */
  typeFilter(): TypeFilter;

  /** The number of registrations. */
  readonly size: number;
}

interface Entry {
  key: string;
  test(type: string): boolean;
  pattern: TypePattern;
  decode: Decoder<unknown> | undefined;
  handle: Handler<never> | undefined;
}

function keyOf(p: TypePattern): string {
  if (typeof p === 'string') return p;
  if (p instanceof RegExp) return String(p);
  return `${p.prefix}*`;
}

function isFn(v: unknown): v is (...args: never[]) => unknown {
  return typeof v === 'function';
}

/**
 * Creates an empty typed registry.
 *
 * @example
 * ```ts
 * interface Order { orderId: string }
 * const registry = createRegistry()
 *   .on('OrderCreated', { decode: (data) => data as Order, handle: (ev) => save(ev.data.orderId) })
 *   .on({ prefix: 'Payment.' }, (ev) => audit(ev.type))
 *   .fallback((ev) => console.warn('unknown type', ev.type));
 * await registry.handle(feed);
 * ```
 */
export function createRegistry<M = {}>(options: RegistryOptions = {}): Registry<M, never> {
  if (!isObject(options)) throw new TypeError('registry options must be an object');
  const typeOf = typeReader(options.typeFrom);
  const entries: Entry[] = [];
  /** The exact names and prefixes registered: a set, as a search of `entries` made registering n patterns O(n²)
   * (64,000 took 27 s). */
  const identities = new Set<unknown>();
  let fallback: Handler<UnknownEvent> | undefined;

  function find(event: FeedEvent): { entry: Entry | undefined; result: TypedEvent | UnknownEvent } {
    const type = typeOf(event);
    if (type !== undefined) {
      for (const entry of entries) {
        if (!entry.test(type)) continue;
        let data: unknown = event.data;
        if (entry.decode) {
          try {
            data = entry.decode(event.data, event);
          } catch (e) {
            throw new EventDecodeError(entry.key, type, event, e);
          }
        }
        return { entry, result: { key: entry.key, type, data, event } };
      }
    }
    return { entry: undefined, result: { key: null, type, data: event.data, event } };
  }

  const registry = {
    on(pattern: TypePattern, a?: unknown, b?: unknown) {
      const test = compilePattern(pattern).test;
      let decode: unknown;
      let handle: unknown;
      let key = keyOf(pattern);
      if (arguments.length === 2 && isFn(a)) handle = a;
      else if (isObject(a)) {
        const r = a as Registration<string, unknown, unknown>;
        decode = r.decode;
        handle = r.handle;
        if (r.key !== undefined) {
          if (typeof r.key !== 'string') throw new TypeError('registration key must be a string');
          key = r.key;
        }
      } else {
        decode = a ?? undefined;
        handle = b;
      }
      if (decode !== undefined && !isFn(decode)) throw new TypeError(`the decoder of ${JSON.stringify(key)} must be a function`);
      if (handle !== undefined && !isFn(handle)) throw new TypeError(`the handler of ${JSON.stringify(key)} must be a function`);
      // A RegExp's is a new object: never a duplicate.
      const identity = pattern instanceof RegExp ? {} : keyOf(pattern) + (typeof pattern === 'string' ? '' : '\u0000prefix');
      if (identities.has(identity)) {
        throw new TypeError(`${JSON.stringify(keyOf(pattern))} is registered twice: the first registration always wins`);
      }
      identities.add(identity);
      entries.push({
        key,
        test,
        pattern,
        decode: decode as Decoder<unknown> | undefined,
        handle: handle as Handler<never> | undefined,
      });
      return registry;
    },
    fallback(handler: Handler<UnknownEvent>) {
      if (!isFn(handler)) throw new TypeError('the fallback must be a function');
      fallback = handler;
      return registry;
    },
    match(event: FeedEvent) {
      return find(event).result;
    },
    async dispatch(event: FeedEvent) {
      const { entry, result } = find(event);
      if (entry) return entry.handle ? await (entry.handle as Handler<TypedEvent>)(result as TypedEvent) : undefined;
      return fallback ? await fallback(result as UnknownEvent) : undefined;
    },
    async handle(source: AsyncIterable<FeedEvent> | Iterable<FeedEvent>) {
      let n = 0;
      for await (const event of source) {
        await registry.dispatch(event);
        n++;
      }
      return n;
    },
    async *typed(source: AsyncIterable<FeedEvent> | Iterable<FeedEvent>, opts: TypedOptions = {}) {
      const unknown = opts.unknown ?? 'yield';
      if (unknown !== 'yield' && unknown !== 'skip' && unknown !== 'throw') {
        throw new TypeError(`typed(): unknown must be 'yield', 'skip' or 'throw', got ${String(unknown)}`);
      }
      for await (const event of source) {
        const { result } = find(event);
        if (result.key === null && unknown !== 'yield') {
          if (unknown === 'skip') continue;
          throw new TypeError(`an event of unknown type ${JSON.stringify(result.type)} in partition ${event.partition}`);
        }
        yield result;
      }
    },
    typeFilter(): TypeFilter {
      // Nothing registered keeps nothing (an empty `include` would mean "no include constraint": every event).
      return { include: entries.length ? entries.map((e) => e.pattern) : [/(?!)/], typeFrom: options.typeFrom };
    },
    get size() {
      return entries.length;
    },
  };
  return registry as unknown as Registry<M, never>;
}
