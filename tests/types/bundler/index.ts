// The typed registry's forms and FeedOptions' shapes, as users write them against the published types.
import {
  consume,
  createRegistry,
  memoryStore,
  openFeed,
  type AnyFeedOptions,
  type ConsumeSource,
  type DeclaredData,
  type FeedEvent,
  type FeedOptions,
  type TypedEvent,
  type UnknownEvent,
} from 'feedpump';

type IsExact<A, B> = (<T>() => T extends A ? 1 : 2) extends <T>() => T extends B ? 1 : 2 ? true : false;
function typeAssert<T extends true>(): T | void {}
interface Order {
  orderId: string;
}
interface Payment {
  amount: number;
}
declare const events: AsyncIterable<FeedEvent>;

// Typed iteration only: one argument.
const typedOnly = createRegistry<{ OrderCreated: Order }>().on('OrderCreated').on({ prefix: 'Payment.' });
for await (const ev of typedOnly.typed(events, { unknown: 'skip' })) {
  if (ev.key === 'OrderCreated') typeAssert<IsExact<typeof ev.data, Order>>();
  else typeAssert<IsExact<typeof ev, TypedEvent<'Payment.*', `Payment.${string}`, unknown>>>();
}

// A decoder is a named option; a handler alone is the second argument.
const reg = createRegistry()
  .on('OrderCreated', {
    decode: (data): Order => data as Order,
    handle: (ev) => typeAssert<IsExact<typeof ev.data, Order>>(),
  })
  .on({ prefix: 'Payment.' }, { decode: (data) => data as Payment })
  .on('Ping', (ev) => {
    typeAssert<IsExact<typeof ev.data, unknown>>();
    typeAssert<IsExact<typeof ev.type, 'Ping'>>();
  })
  .on(/^Customer\./, { key: 'customer', decode: (data) => String(data) })
  .fallback((ev) => typeAssert<IsExact<typeof ev, UnknownEvent>>());
for await (const ev of reg.typed(openFeed('/feed/v1', { partitionCount: 1 }))) {
  if (ev.key === 'OrderCreated') typeAssert<IsExact<typeof ev.data, Order>>();
  else if (ev.key === 'Payment.*') typeAssert<IsExact<typeof ev.data, Payment>>();
  else if (ev.key === 'customer') typeAssert<IsExact<typeof ev.data, string>>();
  else if (ev.key === null) typeAssert<IsExact<typeof ev, UnknownEvent>>();
  else typeAssert<IsExact<typeof ev.key, 'Ping'>>();
}

// What users see is exported: the data type of a declared name.
typeAssert<IsExact<DeclaredData<{ A: Order }, 'A'>, Order>>();
typeAssert<IsExact<DeclaredData<{ A: Order }, 'B'>, unknown>>();

// Mistakes that must not compile.
// @ts-expect-error a one-argument function is the handler: data is unknown there, so decode with { decode }
createRegistry().on('A', (ev) => ev.data.orderId);
// @ts-expect-error the decoder must return the declared type
createRegistry<{ OrderCreated: Order }>().on('OrderCreated', { decode: (d) => d as number });
// @ts-expect-error a pattern is a string, { prefix } or a RegExp
createRegistry().on(42);
// @ts-expect-error the same for the one-argument form's handler: a handler gets a typed event, not the data
createRegistry<{ OrderCreated: Order }>().on('OrderCreated', (ev: Order) => ev.orderId);

// The inline entry point (esbuild users) has the same types.
import { openFeed as openInline, type Feed } from 'feedpump/inline';
const inline: Feed<Order> = openInline<Order>('/feed/v1', { partitionCount: 1 });
export { inline };

// FeedOptions, one shape per protocol: an option of one protocol on a feed of the other does not compile.
openFeed('/feed/v1', { partitionCount: 4, headers: ['ce_id'] });
openFeed('/feed', { protocol: 'v2', eventTypes: ['A'], partitions: [1] });
openFeed('/feed', { partitionCount: 4, eventTypes: ['A'] }); // auto: partitionCount if v1, eventTypes if v2
openFeed('/feed', {});
// @ts-expect-error FeedAPI v2 partitions come from discovery: no partitionCount
openFeed('/feed', { protocol: 'v2', partitionCount: 4 });
// @ts-expect-error FeedAPI v2 has no headers option
openFeed('/feed', { protocol: 'v2', headers: '_all' });
// @ts-expect-error eventTypes is FeedAPI v2's
openFeed('/feed/v1', { protocol: 'v1', partitionCount: 4, eventTypes: ['A'] });
// @ts-expect-error a v1 feed needs partitionCount
openFeed('/feed/v1', { protocol: 'v1' });
const v2Source: ConsumeSource = { url: '/feed', protocol: 'v2', live: true };
// @ts-expect-error consume()'s source takes the same shapes
const badSource: ConsumeSource = { url: '/feed', protocol: 'v2', partitionCount: 2 };
void consume(v2Source, { store: memoryStore(), key: 'k', handler: () => {} });
void badSource;
// Options built at run time: the merged shape, checked by openFeed.
const built: AnyFeedOptions = {};
built.protocol = 'v2';
built.partitionCount = 4;
openFeed('/feed', built as FeedOptions);
