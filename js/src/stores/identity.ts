/**
 * Feed identities: which feed a stored cursor record belongs to, and whether its cursors may be resumed.
 *
 * The default identity is `<url> <protocol>[ n=<partitionCount>]`, with the URL normalised so that what does not
 * change the feed does not change the identity, and no secret is ever stored or shown:
 * - scheme, lower-cased host, the port only when it is not the scheme's default, and the path;
 * - the query's KEYS, sorted and without duplicates, never their values (`?apikey=…&tenant=…` → `?apikey&tenant`): a
 *   rotated API key in the URL is the same feed;
 * - no user name or password, no fragment.
 *
 * Hosts are compared as written: `localhost` and `127.0.0.1` (or a host and its IP address) are two identities, since
 * nothing in the URL says they are one server.
 *
 * The partitions the cursors are for are stored beside the identity (`CursorRecord.partitions`): reading a subset of
 * the stored partitions resumes from their stored cursors; a partition that was not stored makes it another feed.
 * @packageDocumentation
 */
import type { CursorRecord, Cursors } from './types.js';
import type { FeedUrl } from '../types.js';

/**
 * What the identity is computed from: `consume()`'s source.
 * @internal
 */
export interface IdentitySource {
  /** A feed with replicas ({@link FeedUrl}) is known by its first URL: they share its cursors. */
  url: FeedUrl;
  protocol?: 'v1' | 'v2' | 'auto' | undefined;
  partitionCount?: number | undefined;
  partitions?: readonly number[] | undefined;
}

/** The query's keys, sorted, without duplicates and without values: `?a&b`, or `''` for none. */
function queryKeys(search: string): string {
  const keys = [...new Set(new URLSearchParams(search).keys())].sort();
  return keys.length === 0 ? '' : `?${keys.map(encodeURIComponent).join('&')}`;
}

/**
 * The URL of an identity: scheme, host (lower case, port only when not the default), path and the query's keys.
 * @internal
 */
export function normaliseUrl(url: string | URL): string {
  const text = String(url); // a URL's string is its href
  let u: URL | undefined;
  try {
    // A relative URL (a page's `fetch` accepts one) is resolved against the page, as fetch resolves it.
    u = new URL(text, (globalThis as { location?: { href?: string } }).location?.href);
  } catch {
    // Relative, with no page to resolve it against: kept as written, without query values or fragment.
  }
  if (u === undefined) return redact(text);
  return `${u.protocol}//${u.host}${u.pathname}${queryKeys(u.search)}`;
}

/**
 * Which protocol the cursors are of: `'v1'`, `'v2'`, or `'auto'` (a partition count, and the server decides).
 * `'auto'` without a partition count can only be v2 (v1 needs the count).
 */
function protocolOf(source: IdentitySource): 'v1' | 'v2' | 'auto' {
  const protocol = source.protocol ?? (source.partitionCount === undefined ? 'auto' : 'v1');
  return protocol === 'auto' && source.partitionCount === undefined ? 'v2' : protocol;
}

/**
 * The first URL of a feed given with replicas.
 * @internal
 */
export function primaryUrl(url: FeedUrl): string | URL {
  return Array.isArray(url) ? ((url as readonly (string | URL)[])[0] ?? '') : (url as string | URL);
}

/**
 * The default feed identity of a source.
 * @internal
 */
export function feedIdentity(source: IdentitySource): string {
  const protocol = protocolOf(source);
  const n = protocol !== 'v2' && source.partitionCount !== undefined ? ` n=${source.partitionCount}` : '';
  return `${normaliseUrl(primaryUrl(source.url))} ${protocol}${n}`;
}

/**
 * The partitions a source reads, sorted: the `partitions` option, or every partition of a v1 feed; `undefined` when
 * they are not known before reading (FeedAPI v2: discovery lists them).
 * @internal
 */
export function partitionsOf(source: IdentitySource): number[] | undefined {
  if (protocolOf(source) === 'v2' || source.partitionCount === undefined) return undefined;
  if (source.partitions !== undefined) return [...new Set(source.partitions)].sort((a, b) => a - b);
  return Array.from({ length: source.partitionCount }, (_, p) => p);
}

/**
 * The identity the default was before records carried their partitions (feedpump 0.1): the URL as given (query
 * values and all), `n=` and `partitions=`. Only its prefix without `partitions=` is returned; the list is parsed.
 */
function legacyBase(source: IdentitySource): string {
  const url = String(primaryUrl(source.url)); // a URL's href
  return source.partitionCount === undefined ? url : `${url} n=${source.partitionCount}`;
}

/** The partitions of a record, absent meaning "every partition of the feed" (none are named). */
type Stored = { partitions?: number[] | undefined };

/** A legacy identity of this source: the partitions it names (`undefined`: all), or `null` when it is another. */
function legacyPartitions(stored: string, source: IdentitySource): Stored | null {
  const base = legacyBase(source);
  if (stored === base) return {};
  if (!stored.startsWith(`${base} partitions=`)) return null;
  const list = stored.slice(base.length + ' partitions='.length);
  if (!/^\d+(?:,\d+)*$/.test(list)) return null;
  return { partitions: list.split(',').map(Number) };
}

/**
 * What `consume()` resumes from a stored record: every stored cursor, where the feed starts and what the next record
 * keeps (a feed reading a subset of the stored partitions uses those of the partitions it reads and loses nothing of
 * the others).
 * @internal
 */
export interface Resumed {
  /** The stored cursors, of every stored partition. */
  cursors: Cursors;
  /** The partitions the next record is for (the stored ones), or `undefined` for all. */
  partitions: number[] | undefined;
}

/**
 * Whether `stored` holds this feed's cursors for the partitions it reads: the same identity (or, with the default
 * identity, the legacy one of this exact source), and every partition read among the stored ones. `undefined`
 * means "another feed".
 * @internal
 */
export function resumable(stored: CursorRecord, identity: string, source: IdentitySource, defaultIdentity: boolean): Resumed | undefined {
  const wanted = partitionsOf(source);
  let found: Stored | null;
  if (stored.identity === identity) found = { partitions: stored.partitions };
  else found = defaultIdentity ? legacyPartitions(stored.identity, source) : null;
  if (found === null) return undefined;
  // A record that names no partitions is for all of them: a v1 feed's 0..n-1.
  const have = found.partitions ?? partitionsOf({ ...source, partitions: undefined });
  // (A set: `have.includes` per partition made every resume O(n²), 65,536 partitions 2.6 s.)
  const held = new Set(have);
  if (have !== undefined && (wanted === undefined || !wanted.every((p) => held.has(p)))) return undefined;
  // Every stored cursor is a start: a v1 reader uses those of the partitions it reads, and a feed may read partitions
  // beyond the ones counted (`protocol: 'auto'` with a partition count on a v2 server reads the split children and the
  // partitions added, whose cursors were dropped here: they were read again from `_first` at every resume).
  // Of the record's own cursors: a record without them (null, not a record: a store's defect) throws here.
  return { cursors: Object.fromEntries(Object.entries(stored.cursors)) as Cursors, partitions: have };
}

/**
 * An identity as it may be shown (error messages): every URL query's values, user info and fragment removed, so that
 * an identity stored by an older version (whose URL kept its query values) shows no secret.
 * @internal
 */
export function redact(identity: string): string {
  return identity
    .replace(/\/\/[^/@\s?#]*@/g, '//')
    .replace(/#\S*/g, '')
    .replace(/([?&][^=&#\s]*)=[^&#\s]*/g, '$1');
}

/**
 * An identity and its partitions, for messages.
 * @internal
 */
export function describe(identity: string, partitions: readonly number[] | undefined): string {
  return `${JSON.stringify(redact(identity))}${partitions === undefined ? '' : ` (partitions ${partitions.join(',')})`}`;
}
