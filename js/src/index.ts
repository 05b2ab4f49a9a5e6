/**
 * feedpump: a streaming client for ZeroEventHub (FeedAPI v1) and FeedAPI v2 event feeds. Import it from the package
 * (`'feedpump'`): the package's entry point for your runtime (node, browser, workerd) instantiates the wasm first.
 *
 * @example
 * ```ts
 * import { openFeed, isFeedError } from 'feedpump';
 *
 * const feed = openFeed('https://example.com/feed/v1', { partitionCount: 4 });
 * try {
 *   for await (const event of feed) console.log(event.partition, event.data);
 * } catch (e) {
 *   if (isFeedError(e)) console.error(e.code, e.message); else throw e;
 * }
 * ```
 * @packageDocumentation
 */
export { openFeed } from './feed.js';
export { feedDefaults } from './defaults.js';
export { FEED_ERROR_CODES, FeedError, isFeedError } from './errors.js';
export { consume } from './consume.js';
export type {
  CommitInfo,
  ConsumeOptions,
  ConsumeResult,
  ConsumeSource,
  HandlerErrorAction,
  HandlerErrorInfo,
  MissingCursorsInfo,
  MissingCursorsPolicy,
} from './consume.js';
export type { TabRole, TabsOptions } from './tabs.js';
export { memoryStore } from './stores/memory.js';
export type { MemoryStore, MemoryTransaction } from './stores/memory.js';
export type { CursorRecord, CursorStore, Cursors } from './stores/types.js';
export type { FeedErrorCode, FeedErrorDetails } from './errors.js';
export type {
  Batch,
  Checkpoint,
  Feed,
  FeedEvent,
  FeedEventIterator,
  AnyFeedOptions,
  AutoFeedOptions,
  CommonFeedOptions,
  FeedOptions,
  V1FeedOptions,
  V2FeedOptions,
  FeedSignal,
  FeedDefaults,
  FeedState,
  FeedStats,
  FeedUrl,
  Logger,
  LogFields,
  RequestInfo,
  RequestKind,
  ResponseInfo,
  FetchLike,
  LiveOptions,
  PartitionLag,
  RequestHeaders,
  RequestHeadersContext,
  RetryInfo,
  RetryOptions,
} from './types.js';
export {
  compileTypeFilter,
  serverTypeFilter,
  encodeTypeList,
  typeReader,
  DEFAULT_TYPE_SOURCE,
  EVENT_TYPES_SEPARATOR,
} from './filters.js';
export type { TypeFilter, TypePattern, TypeSource } from './types.js';
export { createRegistry, EventDecodeError } from './registry.js';
export type {
  DeclaredData,
  Decoder,
  Handler,
  PatternKey,
  PatternType,
  Registration,
  Registry,
  RegistryOptions,
  TypedEvent,
  TypedOptions,
  UnknownEvent,
} from './registry.js';
