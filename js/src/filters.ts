/**
 * Event-type filters: `include` / `exclude` lists of type patterns, compiled into a predicate over {@link FeedEvent}s,
 * and the translation of the plain parts into FeedAPI v2's server-side `event-types` / `skip-event-types` parameters.
 * Pure functions; no transport.
 * @packageDocumentation
 */
import type { FeedEvent } from './types.js';

/**
 * One event-type pattern:
 * - a `string` matches that exact type (a `*` in it is an ordinary character, never a wildcard);
 * - `{ prefix }` matches every type that starts with `prefix` (`{ prefix: 'Payment.' }`);
 * - a `RegExp` is tested against the type (its `g` / `y` flags are dropped, so matching keeps no state).
 *
 * With `ignoreCase: true` ({@link TypeFilter}) strings and prefixes compare case-insensitively; a RegExp follows
 * only its own `i` flag.
 */
export type TypePattern =
  | string
  | {
      /** Matches every type that starts with it. */
      readonly prefix: string;
    }
  | RegExp;

/**
 * Where an event's type is read from:
 * - `{ field: 'type' }` / `{ field: 'meta.type' }` / `{ field: ['meta', 'type'] }`: a path into `data`. When `data` is
 *   a string holding a JSON object (FeedAPI v2 allows string `data`), the path is looked up in its parsed form.
 * - `{ header: 'ce_type' }`: an event header (exact name, as the server sent it).
 * - a function `(event) => string | undefined`.
 *
 * A value that is not a string means "no type".
 */
export type TypeSource =
  | {
      /** A path into `data`: `'meta.type'` or `['meta', 'type']`. */
      readonly field: string | readonly string[];
    }
  | {
      /** An event header's exact name. */
      readonly header: string;
    }
  | ((event: FeedEvent) => string | undefined);

/** The default {@link TypeSource}: the `type` field of `data`. */
export const DEFAULT_TYPE_SOURCE: TypeSource = Object.freeze({ field: 'type' });

/**
 * An event-type filter, as esdbclient's `filter_include` / `filter_exclude`.
 *
 * An event passes when its type matches **some** `include` pattern (or `include` is absent or empty) **and no**
 * `exclude` pattern. An event without a type passes only when there is no `include` list (`exclude` cannot match it).
 *
 * @example
 * ```ts
 * const keep = compileTypeFilter({ include: ['OrderCreated', { prefix: 'Payment.' }], exclude: [/Test$/] });
 * for await (const ev of feed) if (keep(ev)) handle(ev);
 * ```
 */
export interface TypeFilter {
  /** Keep only events whose type matches one of these. */
  include?: TypePattern | readonly TypePattern[] | undefined;
  /** Drop events whose type matches one of these. */
  exclude?: TypePattern | readonly TypePattern[] | undefined;
  /** Where the type comes from. @defaultValue `{ field: 'type' }` */
  typeFrom?: TypeSource | undefined;
  /** Compare strings and prefixes case-insensitively (FeedAPI v2 servers compare names that way). @defaultValue `false` */
  ignoreCase?: boolean | undefined;
}

/** The separator of type names in `event-types` / `skip-event-types` (SPEC: "Types should be delimited by `;`"). */
export const EVENT_TYPES_SEPARATOR = ';';

/** A compiled pattern: `test(type)`. */
interface Matcher {
  test(type: string): boolean;
}

function list(p: TypePattern | readonly TypePattern[] | undefined): readonly TypePattern[] {
  if (p === undefined) return [];
  return Array.isArray(p) ? (p as readonly TypePattern[]) : [p as TypePattern];
}

function describe(p: unknown): string {
  try {
    return p instanceof RegExp ? String(p) : JSON.stringify(p) ?? String(p);
  } catch {
    return String(p);
  }
}

/**
 * Compiles one pattern. Throws a `TypeError` for anything that is not a {@link TypePattern}.
 * @internal
 */
export function compilePattern(p: TypePattern, ignoreCase = false): Matcher {
  if (typeof p === 'string') {
    if (!ignoreCase) return { test: (t) => t === p };
    const lower = p.toLowerCase();
    return { test: (t) => t.toLowerCase() === lower };
  }
  if (p instanceof RegExp) {
    const re = new RegExp(p.source, p.flags.replace(/[gy]/g, ''));
    return { test: (t) => re.test(t) };
  }
  if (p !== null && typeof p === 'object' && typeof (p as { prefix?: unknown }).prefix === 'string') {
    const prefix = ignoreCase ? p.prefix.toLowerCase() : p.prefix;
    return { test: (t) => (ignoreCase ? t.toLowerCase() : t).startsWith(prefix) };
  }
  throw new TypeError(`an event-type pattern must be a string, { prefix: string } or a RegExp, got ${describe(p)}`);
}

function fieldPath(field: string | readonly string[]): readonly string[] {
  const path = typeof field === 'string' ? field.split('.') : field;
  if (path.length === 0 || path.some((k) => typeof k !== 'string' || k === '')) {
    throw new TypeError(`typeFrom.field must be a non-empty path, got ${describe(field)}`);
  }
  return path;
}

/**
 * Makes the function that reads an event's type from a {@link TypeSource}. Throws a `TypeError` for an invalid source.
 *
 * @example
 * ```ts
 * const typeOf = typeReader({ field: 'meta.type' });
 * typeOf({ partition: 0, data: { meta: { type: 'OrderCreated' } } }); // 'OrderCreated'
 * ```
 */
export function typeReader(source: TypeSource = DEFAULT_TYPE_SOURCE): (event: FeedEvent) => string | undefined {
  if (typeof source === 'function') {
    return (event) => {
      const t = source(event);
      return typeof t === 'string' ? t : undefined;
    };
  }
  if (source !== null && typeof source === 'object' && 'header' in source) {
    const name = source.header;
    if (typeof name !== 'string' || name === '') throw new TypeError('typeFrom.header must be a non-empty string');
    return (event) => {
      const v = event.headers?.[name];
      return typeof v === 'string' ? v : undefined;
    };
  }
  if (source !== null && typeof source === 'object' && 'field' in source) {
    const path = fieldPath(source.field);
    return (event) => {
      let v: unknown = event.data;
      if (typeof v === 'string') {
        if (!v.trimStart().startsWith('{')) return undefined;
        try {
          v = JSON.parse(v);
        } catch {
          return undefined;
        }
      }
      for (const k of path) {
        if (v === null || typeof v !== 'object' || Array.isArray(v) || !Object.hasOwn(v, k)) return undefined;
        v = (v as Record<string, unknown>)[k];
      }
      return typeof v === 'string' ? v : undefined;
    };
  }
  throw new TypeError(`typeFrom must be { field }, { header } or a function, got ${describe(source)}`);
}

/**
 * A compiled {@link TypeFilter}: the predicate over events, the test of a type name it applies, and the path in `data`
 * its types are read from when they come from a field (a reader can then find them without parsing the events).
 * @internal
 */
export interface CompiledFilter {
  readonly keep: (event: FeedEvent) => boolean;
  readonly match: (type: string | undefined) => boolean;
  /** Only keys a wasm string can carry (no lone surrogate). */
  readonly field: readonly string[] | undefined;
}

/**
 * Compiles a {@link TypeFilter}. Patterns are checked once here (a `TypeError` for a bad one).
 * @internal
 */
export function compileFilter(filter: TypeFilter = {}): CompiledFilter {
  if (filter === null || typeof filter !== 'object') throw new TypeError('a type filter must be an object');
  const ignoreCase = filter.ignoreCase === true;
  const include = list(filter.include).map((p) => compilePattern(p, ignoreCase));
  const exclude = list(filter.exclude).map((p) => compilePattern(p, ignoreCase));
  const source = filter.typeFrom === undefined ? DEFAULT_TYPE_SOURCE : filter.typeFrom;
  const typeOf = typeReader(source);
  const match = (type: string | undefined): boolean => {
    if (type === undefined) return include.length === 0;
    if (include.length > 0 && !include.some((m) => m.test(type))) return false;
    return !exclude.some((m) => m.test(type));
  };
  const path = 'field' in source ? fieldPath(source.field) : undefined;
  return {
    keep: (event) => match(typeOf(event)),
    match,
    field: path?.some((k) => /\p{Cs}/u.test(k)) ? undefined : path,
  };
}

/**
 * Compiles a {@link TypeFilter} into a predicate. Patterns are checked once here (a `TypeError` for a bad one).
 *
 * @example
 * ```ts
 * const keep = compileTypeFilter({ exclude: { prefix: 'internal.' }, typeFrom: { header: 'ce_type' } });
 * ```
 */
export function compileTypeFilter(filter: TypeFilter = {}): (event: FeedEvent) => boolean {
  return compileFilter(filter).keep;
}

/** A type name that can travel in `event-types` / `skip-event-types`: non-empty, no separator, no edge spaces. */
function sendable(p: TypePattern): p is string {
  return typeof p === 'string' && p !== '' && !p.includes(EVENT_TYPES_SEPARATOR) && p.trim() === p;
}

/**
 * What a FeedAPI v2 server can be asked to do for a filter: `{ eventTypes }` (sent as `event-types`),
 * `{ skipEventTypes }` (sent as `skip-event-types`) or `undefined` (nothing: filter only in the client).
 *
 * Only plain exact names can be sent, and only when the server's answer is then a **superset** of what the filter
 * keeps: servers "should be case-insensitive", and "can disregard" the parameters. So:
 * - `include` made only of sendable exact names → `eventTypes` = those names minus the exact `exclude` names
 *   (a superset even when the server matches case-insensitively);
 * - no `include`, `exclude` made only of sendable exact names, and `ignoreCase: true` → `skipEventTypes` (with a
 *   case-sensitive filter a case-insensitive server could skip `ordercreated` that the filter keeps);
 * - anything else (prefixes, RegExps, names holding `;`, nothing left to ask for) → `undefined`.
 *
 * Keep applying {@link compileTypeFilter} in the client either way. The server matches its own notion of an event's
 * type, which is assumed to be what `typeFrom` reads.
 *
 * @example
 * ```ts
 * serverTypeFilter({ include: ['OrderCreated', 'OrderShipped'] }); // { eventTypes: ['OrderCreated', 'OrderShipped'] }
 * serverTypeFilter({ include: { prefix: 'Order' } });             // undefined
 * ```
 */
export function serverTypeFilter(
  filter: TypeFilter,
):
  | {
      /** Sent as `event-types`. */
      eventTypes: string[];
      /** Never together with `eventTypes`. */
      skipEventTypes?: never;
    }
  | {
      /** Sent as `skip-event-types`. */
      skipEventTypes: string[];
      /** Never together with `skipEventTypes`. */
      eventTypes?: never;
    }
  | undefined {
  const include = list(filter.include);
  const exclude = list(filter.exclude);
  const ignoreCase = filter.ignoreCase === true;
  const key = (s: string) => (ignoreCase ? s.toLowerCase() : s);
  if (include.length > 0) {
    if (!include.every(sendable)) return undefined;
    const dropped = new Set(exclude.filter((p): p is string => typeof p === 'string').map(key));
    const names = [...new Set(include)].filter((n) => !dropped.has(key(n)));
    return names.length > 0 ? { eventTypes: names } : undefined;
  }
  if (exclude.length > 0 && ignoreCase && exclude.every(sendable)) return { skipEventTypes: [...new Set(exclude)] };
  return undefined;
}

/**
 * Joins type names into the value of `event-types` / `skip-event-types` (`a;b`). Throws a `TypeError` for a name
 * that cannot be sent (empty, holding `;`, or with leading/trailing spaces).
 */
export function encodeTypeList(names: readonly string[]): string {
  for (const n of names) {
    if (!sendable(n)) throw new TypeError(`event type ${describe(n)} cannot be sent in event-types`);
  }
  return names.join(EVENT_TYPES_SEPARATOR);
}
