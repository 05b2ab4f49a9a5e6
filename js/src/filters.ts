/**
 * Event-type filters: `include` / `exclude` lists of type patterns, compiled into a predicate over {@link FeedEvent}s,
 * and the translation of the plain parts into FeedAPI v2's server-side `event-types` / `skip-event-types` parameters.
 * Pure functions; no transport.
 * @packageDocumentation
 */
import type { FeedEvent, TypeFilter, TypePattern, TypeSource } from './types.js';

/**
 * Whether `v` is a non-null object (arrays and class instances too): the shape check of every options object.
 * @internal
 */
export function isObject(v: unknown): v is object {
  return v !== null && typeof v === 'object';
}

/** The default {@link TypeSource}: the `type` field of `data`. */
export const DEFAULT_TYPE_SOURCE: TypeSource = Object.freeze({ field: 'type' });

/** The separator of type names in `event-types` / `skip-event-types` (SPEC: "Types should be delimited by `;`"). */
export const EVENT_TYPES_SEPARATOR = ';';

/** A compiled pattern: `test(type)`. */
interface Matcher {
  test(type: string): boolean;
  /** The pattern as the core's type filter takes it (lowercased with `ignoreCase`); none for a RegExp. */
  core?: TypePattern | undefined;
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
  const fold = (t: string): string => (ignoreCase ? t.toLowerCase() : t);
  if (typeof p === 'string') {
    const name = fold(p);
    return { test: (t) => fold(t) === name, core: name };
  }
  if (p instanceof RegExp) {
    const re = new RegExp(p.source, p.flags.replace(/[gy]/g, ''));
    return { test: (t) => re.test(t) };
  }
  if (isObject(p) && typeof (p as { prefix?: unknown }).prefix === 'string') {
    const prefix = fold(p.prefix);
    return { test: (t) => fold(t).startsWith(prefix), core: { prefix } };
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
  if (isObject(source)) {
    if ('header' in source) {
      const name = source.header;
      if (typeof name !== 'string' || name === '') throw new TypeError('typeFrom.header must be a non-empty string');
      return (event) => {
        const v = event.headers?.[name];
        return typeof v === 'string' ? v : undefined;
      };
    }
    if ('field' in source) {
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
          if (!isObject(v) || Array.isArray(v) || !Object.hasOwn(v, k)) return undefined;
          v = (v as Record<string, unknown>)[k];
        }
        return typeof v === 'string' ? v : undefined;
      };
    }
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
  /**
   * With `field`: the filter as the reader's `typeFilter`, which the core applies to the types it reads, dropping
   * events before they reach JavaScript, when it can: every pattern a name or a prefix (a RegExp is `undefined` here;
   * the core decides, core/src/typefilter.rs). With `ignoreCase` the patterns are lowercased here (the core lowercases
   * ASCII types only).
   */
  readonly core: { include: (TypePattern | undefined)[]; exclude: (TypePattern | undefined)[]; ignoreCase: boolean } | undefined;
}

/**
 * Compiles a {@link TypeFilter}. Patterns are checked once here (a `TypeError` for a bad one).
 * @internal
 */
export function compileFilter(filter: TypeFilter = {}): CompiledFilter {
  if (!isObject(filter)) throw new TypeError('a type filter must be an object');
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
  const field = path?.some((k) => /\p{Cs}/u.test(k)) ? undefined : path;
  const cores = (l: Matcher[]) => l.map((m) => m.core);
  const core = field && { include: cores(include), exclude: cores(exclude), ignoreCase };
  return { keep: (event) => match(typeOf(event)), match, field, core };
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
