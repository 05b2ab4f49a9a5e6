/**
 * What the SQL stores ({@link postgresStore}, {@link sqliteStore}, {@link d1Store}) share: the cursor table's name
 * check and its row codec. One row per feed key; the record's fields in columns, so the cursors can be read with SQL.
 * @packageDocumentation
 * @internal
 */
import { FeedError, isFeedError } from '../errors.js';
import type { CursorRecord, Cursors } from './types.js';
import { MAX_TIMER_MS } from '../limits.js';

/**
 * How long a SQL store's save waits for an async handler inside its transaction by default (`handlerTimeoutMs` of
 * `sqliteStore` and `postgresStore`).
 * @internal
 */
export const HANDLER_TIMEOUT_MS = 60_000;

/**
 * Checks a store's time option `name`: not given (`undefined`, or `null` as the other options), or an integer of ms
 * from 1 to {@link MAX_TIMER_MS}; else `bad-options`.
 * @internal
 */
export function timeoutOption(name: string, value: unknown): number | undefined {
  if (value == null) return undefined;
  if (!(Number.isInteger(value) && (value as number) >= 1 && (value as number) <= MAX_TIMER_MS)) {
    throw new FeedError('bad-options', `${name} must be an integer from 1 to ${MAX_TIMER_MS} (milliseconds)`);
  }
  return value as number;
}

/**
 * The default name of the cursor table.
 * @internal
 */
export const DEFAULT_TABLE = 'feedpump_cursors';

/**
 * SQLSTATEs of a `CREATE TABLE IF NOT EXISTS` that lost a race with another session creating the same table (the
 * winner's commit makes it fail instead of skip): a unique violation on the catalog (23505), the relation (42P07) or
 * its row type (42710, "type ... already exists"). The table exists afterwards.
 * @internal
 */
export const CREATE_RACE: ReadonlySet<string> = new Set(['23505', '42P07', '42710']);

/**
 * A table name (optionally `schema.table`) as a quoted SQL identifier. Only plain identifiers are accepted: the name
 * is put into SQL text, so anything else is refused (`'bad-options'`) rather than escaped.
 * @internal
 */
export function quoteTable(name: string | undefined): string {
  const table = name ?? DEFAULT_TABLE;
  const parts = typeof table === 'string' ? table.split('.') : [];
  if (parts.length < 1 || parts.length > 2 || !parts.every((p) => /^[A-Za-z_][A-Za-z0-9_]{0,62}$/.test(p))) {
    throw new FeedError('bad-options', `table must be a plain SQL identifier or schema.table (letters, digits, _), got ${JSON.stringify(table)}`);
  }
  return parts.map((p) => `"${p}"`).join('.');
}

/**
 * The SQL of the cursor table in SQLite's dialect (better-sqlite3 and D1): its DDL, the read of one key's row, the
 * first insert and the upsert (parameters: key, then {@link textColumns}).
 * @internal
 */
export function sqliteSql(table: string): { schema: string; select: string; insert: string; upsert: string } {
  const insert = `INSERT INTO ${table} (feed_key, identity, partitions, cursors, saved_at) VALUES (?, ?, ?, ?, ?)`;
  return {
    schema:
      `CREATE TABLE IF NOT EXISTS ${table} (\n` +
      '  feed_key   TEXT PRIMARY KEY NOT NULL,\n' +
      '  identity   TEXT NOT NULL,\n' +
      '  partitions TEXT,            -- JSON array; NULL: every partition\n' +
      '  cursors    TEXT NOT NULL,   -- JSON object: partition -> cursor\n' +
      '  saved_at   INTEGER NOT NULL\n' +
      ')',
    select: `SELECT identity, partitions, cursors, saved_at FROM ${table} WHERE feed_key = ?`,
    insert,
    upsert:
      `${insert} ON CONFLICT (feed_key) DO UPDATE SET identity = excluded.identity, partitions = excluded.partitions, ` +
      'cursors = excluded.cursors, saved_at = excluded.saved_at',
  };
}

/**
 * The cursors as JSON with the partitions in ascending order, so that equal cursors always give equal text (the D1
 * store compares the stored text in SQL).
 * @internal
 */
export function encodeCursors(cursors: Cursors): string {
  const sorted = Object.keys(cursors)
    .map(Number)
    .sort((a, b) => a - b);
  return `{${sorted.map((p) => `${JSON.stringify(String(p))}:${JSON.stringify(cursors[p])}`).join(',')}}`;
}

/**
 * The columns of a record as the SQLite and D1 stores write them (`partitions` and `cursors` as JSON text).
 * @internal
 */
export function textColumns(record: CursorRecord): [identity: string, partitions: string | null, cursors: string, savedAt: number] {
  return [record.identity, record.partitions === undefined ? null : JSON.stringify(record.partitions), encodeCursors(record.cursors), record.savedAt];
}

/** A row's columns as stored: `partitions` and `cursors` as JSON text (SQLite, D1) or parsed values (PostgreSQL). */
interface Row {
  identity: unknown;
  partitions: unknown;
  cursors: unknown;
  saved_at: unknown;
}

/**
 * A stored row as a {@link CursorRecord}; a row that is not one (edited by hand) is `'store-failed'`.
 * @internal
 */
export function fromRow(row: Row, key: string): CursorRecord {
  const parse = (v: unknown): unknown => (typeof v === 'string' ? JSON.parse(v) : v);
  let partitions: unknown;
  let cursors: unknown;
  try {
    partitions = parse(row.partitions);
    cursors = parse(row.cursors);
  } catch {
    cursors = undefined;
  }
  const savedAt = Number(row.saved_at);
  const validPartitions = partitions == null || (Array.isArray(partitions) && partitions.every((p) => Number.isInteger(p)));
  if (typeof row.identity !== 'string' || cursors === null || typeof cursors !== 'object' || Array.isArray(cursors) || !validPartitions || !Number.isFinite(savedAt)) {
    throw new FeedError('store-failed', `the cursor row of ${JSON.stringify(key)} is not a cursor record`);
  }
  const record: CursorRecord = { identity: row.identity, cursors: cursors as Cursors, savedAt };
  if (partitions != null) record.partitions = partitions as number[];
  return record;
}

/**
 * A store failure as a `FeedError` `'store-failed'` (a `FeedError` passes as it is). The driver's message is kept:
 * it names the SQL failure, never a bound value.
 * @internal
 */
export function storeFailed(store: string, what: string, cause: unknown): FeedError {
  if (isFeedError(cause)) return cause;
  const why = cause instanceof Error ? `: ${cause.message}` : '';
  return new FeedError('store-failed', `${store} ${what}${why}`, { cause });
}
