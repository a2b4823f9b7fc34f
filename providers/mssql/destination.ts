import {
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
import {
  checkLoadRequest,
  groupByOperation,
  type Operation,
  operation,
  tableNotFound,
} from '../sql/load-plan.js';
import { suggestByPrefix as suggest } from '../sql/suggest.js';
import { type MssqlPool, type MssqlSettings, request, serverError, toProviderError } from './connection.js';
import { dialect } from './dialect.js';

/** A destination column: its name and the type declaration a value is cast to (`bigint`, `decimal(18,2)`). */
export interface MssqlColumn {
  readonly name: string;
  /** The system type name, lower case (`nvarchar`, `datetime2`). */
  readonly type: string;
  /** What `CAST(@p AS …)` names, or null for character columns (no cast: a cast would truncate silently). */
  readonly cast: string | null;
  readonly computed: boolean;
}

/** What load and check need to know about a destination table. */
interface TableInfo {
  readonly columns: ReadonlyMap<string, MssqlColumn>;
}

/** One record bound for one statement, with where its result goes. */
interface Item {
  readonly index: number;
  readonly key: unknown;
  readonly row: Readonly<Record<string, unknown>>;
}

/** SQL text and its parameters: `params[i]` binds `@p{i+1}`. */
export interface MssqlStatement {
  readonly sql: string;
  readonly params: readonly unknown[];
}

/** What the statement builders need: the table, its key, the columns written (key first) and the rows. */
export interface MssqlBatch {
  readonly table: string;
  readonly key: string;
  readonly columns: readonly MssqlColumn[];
  /** One array per record, aligned with `columns`. */
  readonly rows: readonly (readonly unknown[])[];
}

const OK: RecordResult = { status: 'ok' };
/** SQL Server takes at most 2100 parameters per request and 1000 rows per VALUES list. */
const MAX_PARAMS = 2000;
const MAX_ROWS = 1000;

/**
 * Loads records into a SQL Server table. Each batch is one statement per operation, the records
 * travelling as parameters of a `VALUES` list (chunked under the 2100-parameter limit), each cast
 * to the target column's type: upsert is a `MERGE … WITH (HOLDLOCK)` on the key, update an
 * `UPDATE … FROM (VALUES …)`, delete a `DELETE … WHERE key IN (…)`, mirror the delete plus the
 * MERGE. When a statement fails on a value or a constraint the chunk is bisected until the failing
 * records are isolated: every other record lands, and each failing one carries the server's message.
 */
export class MssqlDestination implements DestinationCapability {
  readonly #tables = new Map<string, Promise<TableInfo | null>>();

  constructor(
    private readonly pool: MssqlPool,
    private readonly settings: MssqlSettings,
  ) {}

  async check(req: CheckRequest): Promise<readonly CheckProblem[]> {
    if (!req.options.table) return [];
    const info = await this.table(req.options.table, true);
    if (!info) {
      return [
        {
          code: 'table_not_found',
          message: `table ${req.options.table} does not exist in ${this.settings.where}`,
          hint: 'create the table, or write `table` as schema.table when it is not in the default schema',
        },
      ];
    }
    const problems: CheckProblem[] = [];
    const names = [...info.columns.keys()];
    const key = req.options.key;
    if (key !== undefined && req.action !== 'insert' && !findColumn(info, key)) {
      problems.push({
        code: 'key_column_not_found',
        message: `key column ${key} does not exist in table ${req.options.table}`,
        hint: suggest(key, names),
      });
    }
    for (const field of req.fields) {
      const column = findColumn(info, field);
      if (!column) {
        problems.push({
          code: 'column_not_found',
          message: `column ${field} does not exist in table ${req.options.table}`,
          hint: suggest(field, names),
        });
      } else if (column.computed) {
        problems.push({
          code: 'column_not_writable',
          message: `column ${field} of table ${req.options.table} is computed and cannot be written`,
        });
      }
    }
    return problems;
  }

  async load(req: LoadRequest): Promise<readonly RecordResult[]> {
    req.signal?.throwIfAborted();
    const { table, key } = checkLoadRequest(req, 'mssql');
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
      for (const op of ['delete', 'update', 'upsert', 'insert'] as const) {
        const items = groups.get(op);
        if (!items) continue;
        const columns = columnsOf(items, op, key, info, table);
        const perStatement = Math.max(
          1,
          Math.min(MAX_ROWS, Math.floor(MAX_PARAMS / Math.max(1, columns.length))),
        );
        for (let start = 0; start < items.length; start += perStatement) {
          await bisect(
            items.slice(start, start + perStatement),
            results,
            async (part) => {
              req.signal?.throwIfAborted();
              const statement = buildStatement(op, {
                table,
                key: key ?? '',
                columns,
                rows: rowsOf(part, op, columns),
              });
              if (statement) await request(this.pool, statement.params).query(statement.sql);
            },
            ISOLATION,
          );
        }
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
    try {
      const res = await request(this.pool, [dialect.quoteTable(name)]).query(COLUMNS_SQL);
      const rows = res.recordset ?? [];
      if (rows.length === 0) return null;
      const columns = rows.map((r) => columnOf(r));
      return { columns: new Map(columns.map((c) => [c.name, c])) };
    } catch (e) {
      throw toProviderError(e, this.settings, 'query');
    }
  }
}

/** A table's columns with their system types (CLR types by their own name), in column order. */
export const COLUMNS_SQL = `SELECT c.name AS name,
       CASE WHEN c.system_type_id = 240 THEN TYPE_NAME(c.user_type_id) ELSE TYPE_NAME(c.system_type_id) END AS type,
       c.max_length AS max_length, c.precision AS precision, c.scale AS scale, c.is_computed AS is_computed
  FROM sys.columns AS c
 WHERE c.object_id = OBJECT_ID(@p1)
 ORDER BY c.column_id`;

const CHARACTER = new Set(['char', 'varchar', 'nchar', 'nvarchar', 'text', 'ntext', 'xml', 'sysname']);

/** A column from a COLUMNS_SQL row, with the declaration values are cast to. */
export function columnOf(r: Readonly<Record<string, unknown>>): MssqlColumn {
  const type = String(r.type ?? '').toLowerCase();
  const precision = Number(r.precision ?? 0);
  const scale = Number(r.scale ?? 0);
  let cast: string | null;
  if (CHARACTER.has(type)) cast = null;
  else if (type === 'binary' || type === 'varbinary' || type === 'image') cast = 'varbinary(max)';
  else if (type === 'decimal' || type === 'numeric') cast = `${type}(${precision}, ${scale})`;
  else if (type === 'datetime2' || type === 'time' || type === 'datetimeoffset') cast = `${type}(${scale})`;
  else if (type === 'timestamp' || type === 'rowversion') cast = 'binary(8)';
  else cast = type;
  return { name: String(r.name ?? ''), type, cast, computed: Boolean(r.is_computed) };
}

/** The record's key value (its own key field when it has one, else the record key) and its columns. */
function itemOf(record: LoadRecord, index: number, op: Operation, key: string | undefined): Item {
  const row: Record<string, unknown> = op === 'delete' ? {} : { ...record.fields };
  const own = key === undefined || op === 'delete' ? undefined : record.fields?.[key];
  const keyValue = own === undefined || own === null ? record.key : own;
  if (key !== undefined && op !== 'delete') row[key] = keyValue;
  return { index, key: keyValue, row };
}

/** The statement's columns: the key first, then every field some record of the group sets. */
function columnsOf(
  items: readonly Item[],
  op: Operation,
  key: string | undefined,
  info: TableInfo,
  table: string,
): MssqlColumn[] {
  const set = new Set<string>(key === undefined ? [] : [key]);
  if (op !== 'delete') for (const it of items) for (const name of Object.keys(it.row)) set.add(name);
  const missing = [...set].filter((c) => !findColumn(info, c));
  if (missing.length)
    throw new ProviderError(`table ${table} has no column ${missing.join(', ')}`, {
      code: 'column_not_found',
      retryable: false,
      hint: 'add the column or fix the mapping; `backflow plan` checks this',
    });
  // Named as the mapping names it (the server resolves names by the database's collation).
  return [...set].map((name) => ({ ...findColumn(info, name)!, name }));
}

/** A column by exact name, else by a case-insensitive match (SQL Server's default collations ignore case). */
function findColumn(info: TableInfo, name: string): MssqlColumn | undefined {
  const exact = info.columns.get(name);
  if (exact) return exact;
  const lower = name.toLowerCase();
  const matches = [...info.columns.values()].filter((c) => c.name.toLowerCase() === lower);
  return matches.length === 1 ? matches[0] : undefined;
}

function rowsOf(items: readonly Item[], op: Operation, columns: readonly MssqlColumn[]): unknown[][] {
  if (op === 'delete') return items.map((it) => [paramValue(it.key, columns[0]!)]);
  return items.map((it) => columns.map((c) => paramValue(it.row[c.name], c)));
}

// --- SQL (pure: pinned by test/unit/sql-mssql.test.ts) ----------------------------------------

/** The statement for one operation, or null when there is nothing to write (an update of the key alone). */
export function buildStatement(op: Operation, batch: MssqlBatch): MssqlStatement | null {
  switch (op) {
    case 'insert':
      return insertStatement(batch);
    case 'upsert':
      return upsertStatement(batch);
    case 'update':
      return updateStatement(batch);
    case 'delete':
      return deleteStatement(batch);
  }
}

/** `(CAST(@p1 AS bigint), @p2), (…)`: every row's placeholders, numbered from 1. */
function valuesList(batch: MssqlBatch): string {
  let n = 0;
  return batch.rows
    .map((row) => {
      if (row.length !== batch.columns.length) throw new RangeError('a row does not match the columns');
      return `(${batch.columns.map((c) => placeholder(++n, c)).join(', ')})`;
    })
    .join(', ');
}

function placeholder(index: number, column: MssqlColumn): string {
  const p = dialect.placeholder(index);
  return column.cast === null ? p : `CAST(${p} AS ${column.cast})`;
}

/** `INSERT INTO t (a, b) VALUES (@p1, @p2), (@p3, @p4);` */
export function insertStatement(batch: MssqlBatch): MssqlStatement {
  const cols = batch.columns.map((c) => dialect.quoteIdent(c.name)).join(', ');
  return {
    sql: `INSERT INTO ${dialect.quoteTable(batch.table)} (${cols}) VALUES ${valuesList(batch)};`,
    params: batch.rows.flat(),
  };
}

/**
 * `MERGE … WITH (HOLDLOCK)`: the key range stays locked from the match to the insert, so two
 * concurrent upserts of a new key cannot both insert it.
 */
export function upsertStatement(batch: MssqlBatch): MssqlStatement {
  const cols = batch.columns.map((c) => dialect.quoteIdent(c.name));
  const k = dialect.quoteIdent(batch.key);
  const rest = cols.filter((c) => c !== k);
  const update = rest.length
    ? ` WHEN MATCHED THEN UPDATE SET ${rest.map((c) => `[t].${c} = [s].${c}`).join(', ')}`
    : '';
  return {
    sql:
      `MERGE INTO ${dialect.quoteTable(batch.table)} WITH (HOLDLOCK) AS [t]` +
      ` USING (VALUES ${valuesList(batch)}) AS [s] (${cols.join(', ')})` +
      ` ON [t].${k} = [s].${k}${update}` +
      ` WHEN NOT MATCHED BY TARGET THEN INSERT (${cols.join(', ')}) VALUES (${cols.map((c) => `[s].${c}`).join(', ')});`,
    params: batch.rows.flat(),
  };
}

/** `UPDATE [t] SET … FROM table AS [t] INNER JOIN (VALUES …) AS [s] (…) ON [t].key = [s].key;` */
export function updateStatement(batch: MssqlBatch): MssqlStatement | null {
  const cols = batch.columns.map((c) => dialect.quoteIdent(c.name));
  const k = dialect.quoteIdent(batch.key);
  const rest = cols.filter((c) => c !== k);
  if (!rest.length) return null;
  return {
    sql:
      `UPDATE [t] SET ${rest.map((c) => `[t].${c} = [s].${c}`).join(', ')}` +
      ` FROM ${dialect.quoteTable(batch.table)} AS [t]` +
      ` INNER JOIN (VALUES ${valuesList(batch)}) AS [s] (${cols.join(', ')}) ON [t].${k} = [s].${k};`,
    params: batch.rows.flat(),
  };
}

/** `DELETE FROM t WHERE key IN (@p1, @p2);` (rows hold the key alone). */
export function deleteStatement(batch: MssqlBatch): MssqlStatement {
  const key = batch.columns[0]!;
  const list = batch.rows.map((_, i) => placeholder(i + 1, key)).join(', ');
  return {
    sql: `DELETE FROM ${dialect.quoteTable(batch.table)} WHERE ${dialect.quoteIdent(batch.key)} IN (${list});`,
    params: batch.rows.map((r) => r[0]),
  };
}

const ISO_WITH_ZONE = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$/;
const LOCAL_TIME = new Set(['datetime', 'datetime2', 'smalldatetime', 'date', 'time']);

/**
 * A value as the parameter for a column: objects and arrays as JSON text, bytes as a Buffer, an
 * instant (a Date, ISO-8601 text with a zone) as ISO text the cast reads unambiguously (UTC wall time
 * for zone-less types, with `Z` for datetimeoffset), booleans as text for character columns.
 */
export function paramValue(value: unknown, column: Pick<MssqlColumn, 'type'>): unknown {
  if (value === undefined || value === null) return null;
  if (typeof value === 'number') return Number.isFinite(value) ? value : null;
  if (typeof value === 'bigint') return value >= -(2n ** 63n) && value < 2n ** 63n ? value : value.toString();
  if (typeof value === 'boolean') return CHARACTER.has(column.type) ? String(value) : value;
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  const instant =
    value instanceof Date
      ? value.getTime()
      : typeof value === 'string' && ISO_WITH_ZONE.test(value)
        ? Date.parse(value)
        : undefined;
  if (instant !== undefined && (LOCAL_TIME.has(column.type) || column.type === 'datetimeoffset')) {
    if (Number.isNaN(instant)) return null;
    const iso = new Date(instant).toISOString();
    return column.type === 'datetimeoffset' ? iso : iso.slice(0, -1);
  }
  if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
  if (typeof value === 'object')
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  return value;
}

// --- failure isolation ------------------------------------------------------------------------

/** SQL Server errors a single record can cause: constraints, conversions, truncation, overflow, triggers. */
const RECORD_NUMBERS: Readonly<Record<number, string>> = {
  2627: 'unique_violation',
  2601: 'unique_violation',
  515: 'not_null_violation',
  547: 'constraint_violation',
  8152: 'value_too_long',
  2628: 'value_too_long',
  245: 'invalid_value',
  8114: 'invalid_value',
  8115: 'value_out_of_range',
  220: 'value_out_of_range',
  232: 'value_out_of_range',
  241: 'invalid_datetime',
  242: 'invalid_datetime',
  244: 'value_out_of_range',
  248: 'value_out_of_range',
  295: 'invalid_datetime',
  8023: 'invalid_value',
  9413: 'invalid_value',
  8672: 'duplicate_key_in_batch',
};

function isRecordError(e: unknown): boolean {
  if ((e as { code?: unknown }).code === 'EPARAM') return true; // the driver refused a parameter value
  const s = serverError(e);
  return s !== undefined && (s.number in RECORD_NUMBERS || s.number >= 50000);
}

const ISOLATION = { isRecordError, rejection };

function rejection(e: unknown): RecordResult {
  const s = serverError(e);
  if (!s)
    return { status: 'rejected', code: 'invalid_value', message: e instanceof Error ? e.message : String(e) };
  return {
    status: 'rejected',
    code: RECORD_NUMBERS[s.number] ?? (s.number >= 50000 ? 'rejected_by_trigger' : 'invalid_value'),
    message: s.message,
  };
}
