import type { BigQuery, Query } from '@google-cloud/bigquery';
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
import { type BigquerySettings, errorReason, jobOptions, runJob, toProviderError } from './connection.js';
import { dialect } from './dialect.js';
import type { SchemaField } from './source.js';

/** A destination column: its schema field (name, type, mode, sub-fields). */
export type BigqueryColumn = SchemaField & { readonly name: string; readonly type: string };

/** What load and check need to know about a destination table. */
interface TableInfo {
  readonly columns: readonly BigqueryColumn[];
}

type Operation = 'insert' | 'upsert' | 'update' | 'delete' | 'mirror';

interface Item {
  readonly index: number;
  readonly key: unknown;
  /** Null for a record to delete (mirror). */
  readonly row: Readonly<Record<string, unknown>> | null;
}

/** One DML statement with its single parameter `@p1`: the rows, an ARRAY of STRUCT<c0, c1, …, d>. */
export interface BigqueryStatement {
  readonly sql: string;
  readonly params: Readonly<Record<string, unknown>>;
  /** The parameter's type in the client's notation (`[{ c0: 'INT64', c1: 'STRING' }]`). */
  readonly types: Readonly<Record<string, unknown>>;
}

/** What the statement builders need: the table, the columns (key first) and one row per record. */
export interface BigqueryBatch {
  readonly table: string;
  readonly columns: readonly BigqueryColumn[];
  /** Aligned with `columns`; `null` for a record that mirror deletes. */
  readonly rows: readonly (readonly unknown[] | null)[];
  /** The key of each row (used for deletes and the deleted rows of mirror). */
  readonly keys: readonly unknown[];
}

const OK: RecordResult = { status: 'ok' };

/**
 * Loads records into a BigQuery table with DML, one job per batch: the records travel as one query
 * parameter (an array of structs typed from the table's schema) read through `UNNEST(@p1)`: insert
 * is `INSERT … SELECT`, upsert a `MERGE … USING (SELECT * FROM UNNEST(@p1))`, update an
 * `UPDATE … FROM`, delete `DELETE … IN UNNEST`, and mirror a single `MERGE` that also deletes (each
 * row carries a delete flag), so a mirror batch is one job. BigQuery DML is slow (seconds per job) and quota-limited (concurrent mutating DML per
 * table queues): keep `batch_size` large. A failing job is bisected to isolate bad records, which
 * costs about 2·log2(n) extra jobs per bad record. No streaming inserts: rows in the streaming buffer
 * could not be updated or deleted by the next sync.
 */
export class BigqueryDestination implements DestinationCapability {
  readonly #tables = new Map<string, Promise<TableInfo | null>>();

  constructor(
    private readonly client: BigQuery,
    private readonly settings: BigquerySettings,
  ) {}

  async check(req: CheckRequest): Promise<readonly CheckProblem[]> {
    if (!req.options.table) return [];
    const info = await this.table(req.options.table, true);
    if (!info) {
      return [
        {
          code: 'table_not_found',
          message: `table ${req.options.table} does not exist in ${this.settings.where}`,
          hint: 'create the table, or write `table` as dataset.table when it is in another dataset',
        },
      ];
    }
    const problems: CheckProblem[] = [];
    const names = info.columns.map((c) => c.name);
    const key = req.options.key;
    if (key !== undefined && req.action !== 'insert' && !findColumn(info, key)) {
      problems.push({
        code: 'key_column_not_found',
        message: `key column ${key} does not exist in table ${req.options.table}`,
        hint: `the table's columns: ${names.join(', ')}`,
      });
    }
    for (const field of req.fields) {
      if (!findColumn(info, field)) {
        problems.push({
          code: 'column_not_found',
          message: `column ${field} does not exist in table ${req.options.table}`,
          hint: `the table's columns: ${names.join(', ')}`,
        });
      }
    }
    return problems;
  }

  async load(req: LoadRequest): Promise<readonly RecordResult[]> {
    req.signal?.throwIfAborted();
    const { table, key } = checkLoadRequest(req, 'bigquery');
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
      for (const op of ['delete', 'update', 'mirror', 'upsert', 'insert'] as const) {
        const items = groups.get(op);
        if (!items) continue;
        const columns = columnsOf(items, op, key, info, table);
        await bisect(
          items,
          results,
          async (part) => {
            req.signal?.throwIfAborted();
            const statement = buildStatement(op, {
              table,
              columns,
              rows: part.map((it) => (it.row === null ? null : columns.map((c) => rowValue(it, c, key)))),
              keys: part.map((it) => it.key),
            });
            if (!statement) return;
            await runJob(
              this.client,
              jobOptions(this.settings, statement.sql, {
                params: statement.params,
                types: statement.types as Query['types'],
              }),
              req.signal,
            );
          },
          ISOLATION,
        );
      }
    } catch (e) {
      if (e instanceof UserError || req.signal?.aborted) throw e;
      const err = toProviderError(e, this.settings, 'query');
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
    const parts = name.split('.');
    const tableId = parts.pop()!;
    const datasetId = parts.pop() ?? this.settings.dataset;
    const projectId = parts.pop() ?? this.settings.project;
    try {
      const [meta] = await this.client.dataset(datasetId, { projectId }).table(tableId).getMetadata();
      const fields = ((meta as { schema?: { fields?: SchemaField[] } }).schema?.fields ??
        []) as SchemaField[];
      return {
        columns: fields.map((f) => ({ ...f, name: f.name ?? '', type: (f.type ?? 'STRING').toUpperCase() })),
      };
    } catch (e) {
      if ((e as { code?: unknown }).code === 404 || errorReason(e) === 'notFound') return null;
      throw toProviderError(e, this.settings, 'query');
    }
  }
}

function operation(action: ActionName, record: LoadRecord): Operation | undefined {
  const deleted = record.change === 'deleted' || record.fields === null;
  switch (action) {
    case 'upsert':
    case 'insert':
    case 'update':
      return deleted ? undefined : action;
    case 'delete':
      return 'delete';
    case 'mirror':
      return 'mirror';
    default:
      return undefined;
  }
}

function itemOf(record: LoadRecord, index: number, op: Operation, key: string | undefined): Item {
  const deleted = op === 'delete' || record.change === 'deleted' || record.fields === null;
  const own = key === undefined || deleted ? undefined : record.fields?.[key];
  const keyValue = own === undefined || own === null ? record.key : own;
  return { index, key: keyValue, row: deleted ? null : { ...record.fields } };
}

/** A column by exact name, else case-insensitively (BigQuery column names ignore case). */
function findColumn(info: TableInfo, name: string): BigqueryColumn | undefined {
  return (
    info.columns.find((c) => c.name === name) ??
    info.columns.find((c) => c.name.toLowerCase() === name.toLowerCase())
  );
}

function columnsOf(
  items: readonly Item[],
  op: Operation,
  key: string | undefined,
  info: TableInfo,
  table: string,
): (BigqueryColumn & { readonly field: string })[] {
  const fields = new Set<string>(key === undefined ? [] : [key]);
  if (op !== 'delete') for (const it of items) for (const name of Object.keys(it.row ?? {})) fields.add(name);
  const missing = [...fields].filter((f) => !findColumn(info, f));
  if (missing.length)
    throw new ProviderError(`table ${table} has no column ${missing.join(', ')}`, {
      code: 'column_not_found',
      retryable: false,
      hint: 'add the column or fix the mapping; `backflow plan` checks this',
    });
  return [...fields].map((field) => ({ ...findColumn(info, field)!, field }));
}

function rowValue(it: Item, c: { readonly field: string }, key: string | undefined): unknown {
  return c.field === key ? it.key : it.row?.[c.field];
}

// --- SQL and parameters (pure: pinned by test/unit/sql-bigquery.test.ts) ----------------------

/** The statement for one operation, or null when there is nothing to write (an update of the key alone). */
export function buildStatement(op: Operation, batch: BigqueryBatch): BigqueryStatement | null {
  const t = dialect.quoteTable(batch.table);
  const p = dialect.placeholder(1);
  const key = batch.columns[0];
  if (op === 'delete') {
    if (!key) throw new RangeError('a delete needs the key column');
    return {
      sql: `DELETE FROM ${t} WHERE ${dialect.quoteIdent(key.name)} IN UNNEST(${p})`,
      params: { p1: batch.keys.map((k) => paramValue(k, { ...key, mode: 'NULLABLE' })) },
      types: { p1: [paramType({ ...key, mode: 'NULLABLE' })] },
    };
  }
  const cols = batch.columns.map((c) => dialect.quoteIdent(c.name));
  const src = batch.columns.map((_, i) => `s.c${i}`);
  const setList = cols.slice(1).map((c, i) => `${c} = ${src[i + 1]}`);
  const on = key ? `t.${cols[0]} = ${src[0]}` : '';
  const insert = `INSERT (${cols.join(', ')}) VALUES (${src.join(', ')})`;
  const flagged = op === 'mirror';
  let sql: string;
  switch (op) {
    case 'insert':
      sql = `INSERT INTO ${t} (${cols.join(', ')}) SELECT ${src.join(', ')} FROM UNNEST(${p}) AS s`;
      break;
    case 'upsert':
      sql =
        `MERGE ${t} AS t USING (SELECT * FROM UNNEST(${p})) AS s ON ${on}` +
        (setList.length ? ` WHEN MATCHED THEN UPDATE SET ${setList.join(', ')}` : '') +
        ` WHEN NOT MATCHED THEN ${insert}`;
      break;
    case 'mirror':
      sql =
        `MERGE ${t} AS t USING (SELECT * FROM UNNEST(${p})) AS s ON ${on}` +
        ' WHEN MATCHED AND s.d THEN DELETE' +
        (setList.length ? ` WHEN MATCHED THEN UPDATE SET ${setList.join(', ')}` : '') +
        ` WHEN NOT MATCHED AND NOT s.d THEN ${insert}`;
      break;
    case 'update':
      if (!setList.length) return null;
      sql = `UPDATE ${t} AS t SET ${setList.join(', ')} FROM UNNEST(${p}) AS s WHERE ${on}`;
      break;
  }
  const struct: Record<string, unknown> = {};
  batch.columns.forEach((c, i) => {
    struct[`c${i}`] = paramType(c);
  });
  if (flagged) struct.d = 'BOOL';
  const rows = batch.rows.map((row, r) => {
    const out: Record<string, unknown> = {};
    batch.columns.forEach((c, i) => {
      // A deleted row of mirror carries its key only.
      out[`c${i}`] = paramValue(row === null ? (i === 0 ? batch.keys[r] : null) : row[i], c);
    });
    if (flagged) out.d = row === null;
    return out;
  });
  return { sql, params: { p1: rows }, types: { p1: [struct] } };
}

const TYPE_ALIASES: Readonly<Record<string, string>> = {
  INTEGER: 'INT64',
  INT64: 'INT64',
  FLOAT: 'FLOAT64',
  FLOAT64: 'FLOAT64',
  BOOLEAN: 'BOOL',
  BOOL: 'BOOL',
  NUMERIC: 'NUMERIC',
  BIGNUMERIC: 'BIGNUMERIC',
  STRING: 'STRING',
  BYTES: 'BYTES',
  DATE: 'DATE',
  DATETIME: 'DATETIME',
  TIME: 'TIME',
  TIMESTAMP: 'TIMESTAMP',
  GEOGRAPHY: 'GEOGRAPHY',
  JSON: 'JSON',
};

/** A column's parameter type in the client's notation: `'INT64'`, `['STRING']`, `{ a: 'DATE' }`. */
export function paramType(field: SchemaField): unknown {
  const type = (field.type ?? 'STRING').toUpperCase();
  const element =
    type === 'RECORD' || type === 'STRUCT'
      ? Object.fromEntries((field.fields ?? []).map((f) => [f.name ?? '', paramType(f)]))
      : (TYPE_ALIASES[type] ?? 'STRING');
  return field.mode === 'REPEATED' ? [element] : element;
}

const ISO_WITH_ZONE = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$/;
/** Types the client sends from a wrapper's `value` (it reads `.value` for anything with TIME or DATE in its name). */
const WRAPPED = new Set(['DATE', 'DATETIME', 'TIME', 'TIMESTAMP', 'GEOGRAPHY']);

/**
 * A value as the parameter for a column: text for STRING (objects as JSON), base64 for BYTES, digit
 * strings for INT64 and NUMERIC, JSON text for JSON, instants as ISO text (UTC wall time for
 * DATETIME), arrays and structs converted element by element. Wrapped where the client expects it.
 */
export function paramValue(value: unknown, field: SchemaField): unknown {
  if (field.mode === 'REPEATED') {
    const list = typeof value === 'string' && /^\s*\[/.test(value) ? safeParse(value) : value;
    if (!Array.isArray(list)) return list === null || list === undefined ? [] : list;
    return list.map((v) => paramValue(v, { ...field, mode: 'NULLABLE' }));
  }
  if (value === undefined || value === null) return null;
  const type = (field.type ?? 'STRING').toUpperCase();
  if (type === 'RECORD' || type === 'STRUCT') {
    const obj = typeof value === 'string' ? safeParse(value) : value;
    if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) return obj;
    return Object.fromEntries(
      (field.fields ?? []).map((f) => [
        f.name ?? '',
        paramValue((obj as Record<string, unknown>)[f.name ?? ''], f),
      ]),
    );
  }
  const scalar = scalarFor(value, TYPE_ALIASES[type] ?? 'STRING');
  return scalar !== null && WRAPPED.has(TYPE_ALIASES[type] ?? '') ? { value: scalar } : scalar;
}

function scalarFor(value: unknown, type: string): unknown {
  if (typeof value === 'number' && !Number.isFinite(value)) return null;
  switch (type) {
    case 'INT64':
    case 'NUMERIC':
    case 'BIGNUMERIC':
      if (typeof value === 'boolean') return value ? '1' : '0';
      return typeof value === 'object' ? jsonText(value) : String(value);
    case 'FLOAT64':
      return typeof value === 'number' ? value : String(value);
    case 'BOOL':
      return typeof value === 'boolean' ? value : typeof value === 'number' ? value !== 0 : String(value);
    case 'BYTES':
      if (value instanceof Uint8Array)
        return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
      return Buffer.from(String(value), 'utf8').toString('base64');
    case 'JSON':
      if (typeof value === 'string' && /^\s*[[{]/.test(value) && safeParse(value) !== undefined) return value;
      return jsonText(value);
    case 'TIMESTAMP':
    case 'DATETIME':
    case 'DATE': {
      const ms =
        value instanceof Date
          ? value.getTime()
          : typeof value === 'string' && ISO_WITH_ZONE.test(value)
            ? Date.parse(value)
            : undefined;
      if (ms === undefined) return String(value);
      if (Number.isNaN(ms)) return null;
      const iso = new Date(ms).toISOString();
      return type === 'TIMESTAMP' ? iso : type === 'DATE' ? iso.slice(0, 10) : iso.slice(0, -1);
    }
    default:
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
      if (value instanceof Uint8Array)
        return Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('base64');
      return typeof value === 'object' ? jsonText(value) : String(value);
  }
}

function safeParse(text: string): unknown {
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

function jsonText(value: unknown): string {
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

// --- failure isolation ------------------------------------------------------------------------

/** Messages that concern the statement or the table, never one record. */
const STATEMENT_MESSAGES =
  /Syntax error|Unrecognized name|Not found|not found|No matching signature|cannot be inserted into column|Access Denied|Permission/i;

/** A job that failed on a value: an invalid query whose message is not about the statement itself. */
function isRecordError(e: unknown): boolean {
  const reason = errorReason(e);
  const message = e instanceof Error ? e.message : String(e);
  return (reason === 'invalidQuery' || reason === 'invalid') && !STATEMENT_MESSAGES.test(message);
}

const ISOLATION = { isRecordError, rejection, singlesUpTo: 0 };

function rejection(e: unknown): RecordResult {
  const message = e instanceof Error ? e.message : String(e);
  const code = /must match at most one source row/i.test(message)
    ? 'duplicate_key_in_batch'
    : 'invalid_value';
  return { status: 'rejected', code, message };
}
