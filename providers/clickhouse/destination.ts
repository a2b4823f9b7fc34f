import type { ClickHouseClient } from '@clickhouse/client';
import {
  type ActionName,
  type CheckProblem,
  type CheckRequest,
  type DestinationCapability,
  type LoadRecord,
  type LoadRequest,
  ProviderError,
  type RecordResult,
  UserError,
} from '../sdk.js';
import { bisect } from '../sql/isolate.js';
import { checkLoadRequest, groupByOperation, tableNotFound } from '../sql/load-plan.js';
import { suggestByPrefix as suggest } from '../sql/suggest.js';
import { type ClickhouseSettings, querySettings, serverError, toProviderError } from './connection.js';
import { dialect } from './dialect.js';

/** What load and check need to know about a destination table. */
interface TableInfo {
  /** Column name → ClickHouse type (`UInt64`, `Nullable(String)`, `Array(String)`). */
  readonly columns: ReadonlyMap<string, string>;
  /** MATERIALIZED and ALIAS columns: computed by the server, never written. */
  readonly computed: ReadonlySet<string>;
}

type Operation = 'insert' | 'update' | 'delete';

/** One record bound for one statement: where its result goes, its key value and its columns. */
interface Item {
  readonly index: number;
  readonly key: unknown;
  readonly row: Readonly<Record<string, unknown>>;
}

const OK: RecordResult = { status: 'ok' };

/**
 * Loads records into a ClickHouse table, the ClickHouse way:
 * - `insert`, and the inserting half of `upsert` and `mirror`: one JSONEachRow INSERT per batch.
 *   ClickHouse has no unique keys, so an upsert is an insert of the new version: design the table
 *   as `ReplacingMergeTree` ordered by the key (optionally with a version column) and read it with
 *   `FINAL` or `argMax`; a plain MergeTree keeps every version.
 * - `delete`, and the deleting half of `mirror`: `ALTER TABLE … DELETE WHERE key IN (…)`.
 * - `update`: one `ALTER TABLE … UPDATE col = multiIf(key = k1, v1, …, col) WHERE key IN (…)`.
 * Mutations run asynchronously on the server; each load waits until the table has none left
 * pending, so a successful load is visible to the next read. Values are cast to each column's
 * type; a null for a non-Nullable column is left out of an INSERT so the column takes its default.
 * A statement failing on a value is bisected until the failing records are isolated.
 */
export class ClickhouseDestination implements DestinationCapability {
  readonly #tables = new Map<string, Promise<TableInfo | null>>();

  constructor(
    private readonly client: ClickHouseClient,
    private readonly settings: ClickhouseSettings,
  ) {}

  async check(req: CheckRequest): Promise<readonly CheckProblem[]> {
    if (!req.options.table) return [];
    const info = await this.table(req.options.table, true);
    if (!info) {
      return [
        {
          code: 'table_not_found',
          message: `table ${req.options.table} does not exist in ${this.settings.where}`,
          hint: 'create the table, or write `table` as database.table when it is in another database',
        },
      ];
    }
    const problems: CheckProblem[] = [];
    const names = [...info.columns.keys()];
    const key = req.options.key;
    if (key !== undefined && req.action !== 'insert' && !info.columns.has(key)) {
      problems.push({
        code: 'key_column_not_found',
        message: `key column ${key} does not exist in table ${req.options.table}`,
        hint: suggest(key, names),
      });
    }
    for (const field of req.fields) {
      if (!info.columns.has(field)) {
        problems.push({
          code: 'column_not_found',
          message: `column ${field} does not exist in table ${req.options.table}`,
          hint: suggest(field, names),
        });
      } else if (info.computed.has(field)) {
        problems.push({
          code: 'column_not_writable',
          message: `column ${field} of table ${req.options.table} is MATERIALIZED or ALIAS and cannot be written`,
        });
      }
    }
    return problems;
  }

  async load(req: LoadRequest): Promise<readonly RecordResult[]> {
    req.signal?.throwIfAborted();
    const { table, key } = checkLoadRequest(req, 'clickhouse');
    if (req.records.length === 0) return [];

    const info = await this.table(table, false);
    if (!info) throw tableNotFound(table, this.settings.where);

    const results: (RecordResult | undefined)[] = new Array(req.records.length);
    const groups = groupByOperation(
      req,
      results,
      operation,
      (record, index, op): Item => itemOf(record, index, op, key),
    );

    try {
      // A batch never holds the same key twice, so the order of the operations is free.
      for (const op of ['delete', 'update', 'insert'] as const) {
        const items = groups.get(op);
        if (!items) continue;
        checkColumns(items, op, key, info, table);
        await bisect(
          items,
          results,
          async (part) => {
            req.signal?.throwIfAborted();
            await this.write(op, table, key, info, part, req.signal);
          },
          ISOLATION,
        );
      }
    } catch (e) {
      if (e instanceof UserError || req.signal?.aborted) throw e;
      const err = toProviderError(e, this.settings, 'query');
      // Nothing written yet: the whole batch failed, say so. Otherwise keep what landed (an INSERT
      // is not idempotent on a plain MergeTree) and fail only the records that did not.
      if (!results.some((r) => r === OK)) throw err;
      const failed: RecordResult = {
        status: err.retryable ? 'retry' : 'rejected',
        code: err.code,
        message: err.message,
      };
      for (let i = 0; i < results.length; i++) results[i] ??= failed;
    }
    return results as RecordResult[];
  }

  private async write(
    op: Operation,
    table: string,
    key: string | undefined,
    info: TableInfo,
    part: readonly Item[],
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const common = {
      clickhouse_settings: querySettings(this.settings),
      ...(signal ? { abort_signal: signal } : {}),
    };
    if (op === 'insert') {
      await this.client.insert({
        table: dialect.quoteTable(table),
        values: insertRows(part, info.columns),
        format: 'JSONEachRow',
        ...common,
      });
      return;
    }
    const sql =
      op === 'delete'
        ? deleteStatement(table, key!, info.columns, part)
        : updateStatement(table, key!, info.columns, part);
    if (sql === null) return;
    await this.client.command({ query: sql, ...common });
    await this.awaitMutations(table, signal);
  }

  /**
   * Waits until the table has no unfinished mutation (ClickHouse 18.x has no `mutations_sync`).
   * A mutation still running after the statement timeout (default 60 s) fails the records
   * retryably: the next sync sends them again, and a repeated DELETE or UPDATE is harmless.
   */
  private async awaitMutations(table: string, signal: AbortSignal | undefined): Promise<void> {
    const [database, name] = splitTable(table, this.settings.database);
    const limitMs = this.settings.statementTimeoutMs ?? 60_000;
    const deadline = Date.now() + limitMs;
    const query = `SELECT count() AS pending FROM system.mutations WHERE database = ${dialect.literal(database)} AND table = ${dialect.literal(name)} AND is_done = 0`;
    for (let delay = 10; ; delay = Math.min(delay * 2, 500)) {
      const rs = await this.client.query({
        query,
        format: 'JSONEachRow',
        ...(signal ? { abort_signal: signal } : {}),
      });
      const [row] = await rs.json<{ pending: string | number }>();
      if (Number(row?.pending ?? 0) === 0) return;
      if (Date.now() >= deadline)
        throw new ProviderError(
          `ClickHouse at ${this.settings.where}: a mutation on ${table} was accepted but had not finished after ${limitMs} ms`,
          {
            code: 'mutation_pending',
            retryable: true,
            hint: `see SELECT * FROM system.mutations WHERE table = '${name}' AND NOT is_done`,
          },
        );
      await sleep(delay, signal);
    }
  }

  /** Table metadata, cached for the session (a missing table is looked up again next time). */
  private table(name: string, fresh: boolean): Promise<TableInfo | null> {
    let p = fresh ? undefined : this.#tables.get(name);
    if (!p) {
      p = this.lookup(name);
      this.#tables.set(name, p);
      p.then(
        (info) => info === null && this.#tables.delete(name),
        () => this.#tables.delete(name),
      );
    }
    return p;
  }

  private async lookup(name: string): Promise<TableInfo | null> {
    try {
      const rs = await this.client.query({
        query: `DESCRIBE TABLE ${dialect.quoteTable(name)}`,
        format: 'JSONEachRow',
      });
      const rows = await rs.json<{ name: string; type: string; default_type: string }>();
      return {
        columns: new Map(rows.map((r) => [r.name, r.type])),
        computed: new Set(
          rows.filter((r) => /^(MATERIALIZED|ALIAS)$/.test(r.default_type)).map((r) => r.name),
        ),
      };
    } catch (e) {
      const code = serverError(e)?.code;
      if (code === 60 || code === 81) return null; // unknown table, unknown database
      throw toProviderError(e, this.settings, 'query');
    }
  }
}

function operation(action: ActionName, record: LoadRecord): Operation | undefined {
  const deleted = record.change === 'deleted' || record.fields === null;
  switch (action) {
    case 'upsert':
    case 'insert':
      return deleted ? undefined : 'insert';
    case 'update':
      return deleted ? undefined : 'update';
    case 'delete':
      return 'delete';
    case 'mirror':
      return deleted ? 'delete' : 'insert';
    default:
      return undefined;
  }
}

/** The record's key value (its own key field when it has one, else the record key) and its columns. */
function itemOf(record: LoadRecord, index: number, op: Operation, key: string | undefined): Item {
  const row: Record<string, unknown> = op === 'delete' ? {} : { ...record.fields };
  const own = key === undefined || op === 'delete' ? undefined : record.fields?.[key];
  const keyValue = own === undefined || own === null ? record.key : own;
  if (key !== undefined && op !== 'delete') row[key] = keyValue;
  return { index, key: keyValue, row };
}

function checkColumns(
  items: readonly Item[],
  op: Operation,
  key: string | undefined,
  info: TableInfo,
  table: string,
): void {
  const set = new Set<string>(key === undefined ? [] : [key]);
  if (op !== 'delete') for (const it of items) for (const name of Object.keys(it.row)) set.add(name);
  const missing = [...set].filter((c) => !info.columns.has(c));
  if (missing.length)
    throw new ProviderError(`table ${table} has no column ${missing.join(', ')}`, {
      code: 'column_not_found',
      retryable: false,
      hint: 'add the column or fix the mapping; `backflow plan` checks this',
    });
  const computed = [...set].filter((c) => info.computed.has(c) && c !== key);
  if (computed.length && op !== 'delete')
    throw new ProviderError(`column ${computed.join(', ')} of table ${table} is MATERIALIZED or ALIAS`, {
      code: 'column_not_writable',
      retryable: false,
      hint: 'remove the field from the mapping',
    });
}

// --- SQL and values (pure: pinned by test/integration/provider-clickhouse.test.ts) -------------

/** `db.table` → [db, table]; a bare table is in the connection's database. */
export function splitTable(table: string, database: string): [string, string] {
  const dot = table.indexOf('.');
  return dot === -1 ? [database, table] : [table.slice(0, dot), table.slice(dot + 1)];
}

/** The JSONEachRow rows of an INSERT: each value converted for its column's type. */
export function insertRows(
  items: readonly Pick<Item, 'row'>[],
  columns: ReadonlyMap<string, string>,
): Record<string, unknown>[] {
  return items.map((it) => {
    const out: Record<string, unknown> = {};
    for (const [name, value] of Object.entries(it.row)) {
      const type = columns.get(name) ?? 'String';
      const encoded = jsonValue(value, type);
      // A null for a non-Nullable column: left out, so the column takes its DEFAULT (what newer
      // servers do with input_format_null_as_default; 18.x would reject the row).
      if (encoded === null && !/^(LowCardinality\()?Nullable\(/.test(type)) continue;
      out[name] = encoded;
    }
    return out;
  });
}

/** `ALTER TABLE t DELETE WHERE key IN (…)`. */
export function deleteStatement(
  table: string,
  key: string,
  columns: ReadonlyMap<string, string>,
  items: readonly Pick<Item, 'key'>[],
): string {
  const keyType = columns.get(key) ?? 'String';
  const keys = items.map((it) => keySql(it.key, keyType));
  return `ALTER TABLE ${dialect.quoteTable(table)} DELETE WHERE ${dialect.quoteIdent(key)} IN (${keys.join(', ')})`;
}

/**
 * One mutation for the whole batch: each column set by some record becomes
 * `multiIf(key = k1, v1, key = k2, v2, …, column)`, so a record leaves the columns it does not set
 * as they are. The key column itself is never updated (ClickHouse cannot update a sorting key).
 * Null when no record sets anything but the key.
 */
export function updateStatement(
  table: string,
  key: string,
  columns: ReadonlyMap<string, string>,
  items: readonly Pick<Item, 'key' | 'row'>[],
): string | null {
  const keyType = columns.get(key) ?? 'String';
  const k = dialect.quoteIdent(key);
  const names: string[] = [];
  for (const it of items)
    for (const name of Object.keys(it.row)) if (name !== key && !names.includes(name)) names.push(name);
  if (names.length === 0) return null;
  const sets = names.map((name) => {
    const type = columns.get(name) ?? 'String';
    const c = dialect.quoteIdent(name);
    const branches = items
      .filter((it) => Object.hasOwn(it.row, name))
      .map((it) => `${k} = ${keySql(it.key, keyType)}, ${valueSql(it.row[name], type)}`);
    return `${c} = multiIf(${branches.join(', ')}, ${c})`;
  });
  const keys = items.map((it) => keySql(it.key, keyType));
  return `ALTER TABLE ${dialect.quoteTable(table)} UPDATE ${sets.join(', ')} WHERE ${k} IN (${keys.join(', ')})`;
}

/** A key value compared with a key column: a plain literal for a string column, else cast to its type. */
export function keySql(value: unknown, type: string): string {
  if (isStringType(baseType(type))) return dialect.literal(typeof value === 'string' ? value : String(value));
  return valueSql(value, type);
}

/**
 * A value as an SQL expression of exactly the column's type: `CAST(literal, 'Type')`. A value for a
 * `Nullable(T)` column is cast to `T` first: a direct cast turns text that does not parse into NULL.
 */
export function valueSql(value: unknown, type: string): string {
  const encoded = jsonValue(value, type);
  const base = baseType(type);
  const literal = literalOf(encoded);
  if (encoded === null || base === type) return `CAST(${literal}, ${dialect.literal(type)})`;
  return `CAST(CAST(${literal}, ${dialect.literal(base)}), ${dialect.literal(type)})`;
}

/** A converted value as a ClickHouse literal: arrays as `[…]`, strings quoted and escaped. */
function literalOf(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(literalOf).join(', ')}]`;
  if (v !== null && typeof v === 'object') return dialect.literal(jsonText(v));
  return dialect.literal(v);
}

/** Unwraps `Nullable(…)` and `LowCardinality(…)`. */
export function baseType(type: string): string {
  let t = type.trim();
  for (;;) {
    const m = /^(?:Nullable|LowCardinality)\((.*)\)$/.exec(t);
    if (!m?.[1]) return t;
    t = m[1].trim();
  }
}

const isStringType = (base: string) => base === 'String' || /^FixedString\(\d+\)$/.test(base);
const ISO_WITH_ZONE = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$/;

/**
 * A value converted for a column of `type`, as JSONEachRow reads it (and as `literalOf` writes it):
 * objects and arrays as JSON text for string columns, JSON text decoded for array columns, booleans
 * as 1/0 for numbers, bigints and 64-bit values as digit strings, instants (a Date, ISO-8601 text
 * with a zone) as Unix seconds for DateTime so no server time zone reinterprets them, bytes as base64.
 */
export function jsonValue(value: unknown, type: string): unknown {
  if (value === undefined || value === null) return null;
  const base = baseType(type);
  if (typeof value === 'bigint') return value.toString();
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) return null;
    return isStringType(base) ? String(value) : value;
  }
  if (typeof value === 'boolean') return isStringType(base) ? String(value) : value ? 1 : 0;
  if (value instanceof Date) {
    if (Number.isNaN(value.getTime())) return null;
    return instant(value.getTime(), base) ?? value.toISOString();
  }
  if (typeof value === 'string') {
    if (/^DateTime/.test(base) && ISO_WITH_ZONE.test(value)) return instant(Date.parse(value), base) ?? value;
    if (/^Array\(/.test(base) && /^\s*\[/.test(value)) {
      try {
        return jsonValue(JSON.parse(value), type);
      } catch {
        return value;
      }
    }
    return value;
  }
  if (value instanceof Uint8Array)
    return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
  const inner = /^Array\((.*)\)$/.exec(base)?.[1];
  if (Array.isArray(value) && inner !== undefined) return value.map((v) => jsonValue(v, inner));
  if (isStringType(base)) return jsonText(value);
  return JSON.parse(jsonText(value)) as unknown;
}

/** Unix seconds for DateTime, `YYYY-MM-DD` for Date, decimal seconds for DateTime64. */
function instant(ms: number, base: string): unknown {
  if (Number.isNaN(ms)) return undefined;
  if (/^DateTime64/.test(base)) return (ms / 1000).toFixed(3);
  if (/^DateTime/.test(base)) return Math.floor(ms / 1000);
  if (/^Date(32)?$/.test(base)) return new Date(ms).toISOString().slice(0, 10);
  return undefined;
}

function jsonText(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

// --- failure isolation ------------------------------------------------------------------------

// Errors that concern the statement or the server, never one record: splitting would repeat them.
const STATEMENT_CODES = new Set([
  16, 46, 47, 48, 60, 62, 81, 159, 164, 192, 193, 194, 195, 202, 209, 210, 241, 242, 252, 394, 420, 497, 516,
  999,
]);

/** A server error a value can cause (parse, cast, type, constraint): everything but STATEMENT_CODES. */
function isRecordError(e: unknown): boolean {
  const s = serverError(e);
  return s !== undefined && !STATEMENT_CODES.has(s.code);
}

const REJECT_CODES: Readonly<Record<number, string>> = {
  53: 'type_mismatch',
  70: 'invalid_value',
  321: 'value_out_of_range',
  349: 'not_null_violation',
  469: 'constraint_violation',
};

const ISOLATION = { isRecordError, rejection };

function rejection(e: unknown): RecordResult {
  const s = serverError(e)!;
  return { status: 'rejected', code: REJECT_CODES[s.code] ?? 'invalid_value', message: s.message };
}

function sleep(ms: number, signal: AbortSignal | undefined): Promise<void> {
  return new Promise((resolve, reject) => {
    signal?.throwIfAborted();
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}
