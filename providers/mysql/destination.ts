import type mysql from 'mysql2';
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
import {
  checkLoadRequest,
  groupByOperation,
  type Operation,
  operation,
  tableNotFound,
} from '../sql/load-plan.js';
import { suggest } from '../sql/suggest.js';
import { giveBack, type MysqlPool, query, serverError, toProviderError } from './connection.js';
import { dialect } from './dialect.js';

/** What load and check need to know about a destination column. */
interface ColumnInfo {
  /** The column's own name. */
  readonly name: string;
  /** information_schema DATA_TYPE (`bigint`, `datetime`, `longtext`, `json`). */
  readonly type: string;
  /** A JSON column: MySQL's JSON type, or MariaDB's JSON alias (LONGTEXT + json_valid check). */
  readonly json: boolean;
}

/** Names keyed lower case: MySQL column names ignore case. */
interface TableInfo {
  readonly columns: ReadonlyMap<string, ColumnInfo>;
  /** Columns (lower case) with a unique, single-column, full-length index (what ON DUPLICATE KEY UPDATE matches on). */
  readonly uniqueColumns: ReadonlySet<string>;
}

/** One record bound for one statement: its SQL literals, one per statement column. */
interface Item {
  readonly index: number;
  readonly values: readonly string[];
  /** Length of its SQL text. */
  readonly chars: number;
}

const OK: RecordResult = { status: 'ok' };
/**
 * SQL text per statement, in UTF-16 code units: at most 3 bytes of UTF-8 each, so a statement stays
 * under 12 MB, below MariaDB's default max_allowed_packet (16 MB; MySQL 8: 64 MB).
 */
const MAX_STATEMENT_CHARS = 4 * 1024 * 1024;

/**
 * Loads records into a MySQL / MariaDB table: one multi-row statement per operation (INSERT …
 * ON DUPLICATE KEY UPDATE for upsert, UPDATE … JOIN for update, DELETE … IN for delete), values
 * written as literals by the dialect on connections whose sql_mode the literals are written for.
 * When a statement fails on a value or a constraint the batch is bisected until the failing
 * records are isolated: every other record lands, and each failing one carries the server's message.
 * Note ON DUPLICATE KEY UPDATE fires on any unique index: a record whose value collides with another
 * row in a second unique column updates that row (MySQL's semantics; PostgreSQL rejects the record).
 */
export class MysqlDestination implements DestinationCapability {
  readonly #tables = new Map<string, Promise<TableInfo | null>>();

  constructor(private readonly db: MysqlPool) {}

  async check(req: CheckRequest): Promise<readonly CheckProblem[]> {
    if (!req.options.table) return [];
    const info = await this.table(req.options.table, true);
    const where = this.db.settings.where;
    if (!info) {
      return [
        {
          code: 'table_not_found',
          message: `table ${req.options.table} does not exist in ${where}`,
          hint: 'create the table, or write `table` as database.table when it is not in the url’s database',
        },
      ];
    }
    const problems: CheckProblem[] = [];
    const names = [...info.columns.values()].map((c) => c.name);
    const key = req.options.key;
    if (key !== undefined && req.action !== 'insert') {
      if (!info.columns.has(key.toLowerCase())) {
        problems.push({
          code: 'key_column_not_found',
          message: `key column ${key} does not exist in table ${req.options.table}`,
          hint: suggest(key, names),
        });
      } else if (
        (req.action === 'upsert' || req.action === 'mirror') &&
        !info.uniqueColumns.has(key.toLowerCase())
      ) {
        problems.push(notUnique(req.options.table, key, req.action));
      }
    }
    for (const field of req.fields) {
      if (!info.columns.has(field.toLowerCase())) {
        problems.push({
          code: 'column_not_found',
          message: `column ${field} does not exist in table ${req.options.table}`,
          hint: suggest(field, names),
        });
      }
    }
    return problems;
  }

  async load(req: LoadRequest): Promise<readonly RecordResult[]> {
    req.signal?.throwIfAborted();
    const { table, key } = checkLoadRequest(req, 'mysql');
    if (req.records.length === 0) return [];

    const info = await this.table(table, false);
    if (!info) throw tableNotFound(table, this.db.settings.where);

    // Without a unique key on `key`, ON DUPLICATE KEY UPDATE would insert every record as a new row.
    if (
      key &&
      (req.action === 'upsert' || req.action === 'mirror') &&
      !info.uniqueColumns.has(key.toLowerCase())
    ) {
      const p = notUnique(table, key, req.action);
      throw new ProviderError(p.message, { code: p.code, retryable: false, hint: p.hint });
    }

    const results: RecordResult[] = new Array(req.records.length);
    const groups = groupByOperation(req, results, operation, (record, index, op) => ({
      index,
      row: rowOf(record, op, key),
    }));

    const conn = await this.db.acquire();
    let broken: unknown;
    try {
      // One statement per operation; a batch never holds the same key twice, so their order is free.
      for (const op of ['delete', 'update', 'upsert', 'insert'] as const) {
        const rows = groups.get(op);
        if (!rows) continue;
        const columns = columnsOf(rows, op, key, info, table);
        const items: Item[] = rows.map(({ index, row }) => {
          const values = columns.map((c) => literal(row[c], info.columns.get(c.toLowerCase())!));
          return { index, values, chars: values.reduce((n, v) => n + v.length + 2, 2) };
        });
        const write = writer(op, table, columns, key);
        if (write === null) {
          for (const it of items) results[it.index] = OK;
          continue;
        }
        for (const chunk of chunks(items)) {
          await bisect(
            chunk,
            results,
            async (part) => {
              req.signal?.throwIfAborted();
              await query(conn, write(part));
            },
            ISOLATION,
          );
        }
      }
    } catch (e) {
      broken = e;
      if (e instanceof UserError || req.signal?.aborted) throw e;
      throw toProviderError(e, this.db.settings.where, 'query');
    } finally {
      giveBack(conn, broken);
    }
    return results;
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
    const dot = name.indexOf('.');
    const schema = dot < 0 ? 'DATABASE()' : dialect.literal(name.slice(0, dot));
    const tableName = dialect.literal(dot < 0 ? name : name.slice(dot + 1));
    const conn = await this.db.acquire();
    let broken: unknown;
    try {
      const cols = await query<{ name: string; type: string }[]>(
        conn,
        `SELECT COLUMN_NAME AS name, LOWER(DATA_TYPE) AS type FROM information_schema.COLUMNS
          WHERE TABLE_SCHEMA = ${schema} AND TABLE_NAME = ${tableName} ORDER BY ORDINAL_POSITION`,
      );
      if (cols.length === 0) return null;
      const unique = await query<{ idx: string; col: string }[]>(
        conn,
        `SELECT INDEX_NAME AS idx, MAX(COLUMN_NAME) AS col FROM information_schema.STATISTICS
          WHERE TABLE_SCHEMA = ${schema} AND TABLE_NAME = ${tableName} AND NON_UNIQUE = 0
          GROUP BY INDEX_NAME HAVING COUNT(*) = 1 AND MAX(SUB_PART) IS NULL`,
      );
      // The result metadata says which columns are JSON on both servers (MariaDB's extended metadata).
      const fields = await new Promise<mysql.FieldPacket[]>((resolve, reject) =>
        conn.query(`SELECT * FROM ${dialect.quoteTable(name)} LIMIT 0`, (err, _rows, f) =>
          err ? reject(err) : resolve(f ?? []),
        ),
      );
      const json = new Set(
        fields
          .filter((f) => f.extendedFormat === 'json' || f.columnType === 245)
          .map((f) => f.name.toLowerCase()),
      );
      const columns = new Map<string, ColumnInfo>();
      for (const c of cols) {
        const lower = c.name.toLowerCase();
        columns.set(lower, { name: c.name, type: c.type, json: json.has(lower) || c.type === 'json' });
      }
      return { columns, uniqueColumns: new Set(unique.map((u) => u.col.toLowerCase())) };
    } catch (e) {
      broken = e;
      throw toProviderError(e, this.db.settings.where, 'query');
    } finally {
      giveBack(conn, broken);
    }
  }
}

/** The record as a row: its fields, and the key column from the record's key when the fields lack it. */
function rowOf(record: LoadRecord, op: Operation, key: string | undefined): Record<string, unknown> {
  const row: Record<string, unknown> = op === 'delete' ? {} : { ...record.fields };
  if (key !== undefined) {
    const own = op === 'delete' ? undefined : record.fields?.[key];
    row[key] = own === undefined || own === null ? record.key : own;
  }
  return row;
}

/** The statement's columns: every field some record of the group sets, the key first. */
function columnsOf(
  rows: readonly { row: Record<string, unknown> }[],
  op: Operation,
  key: string | undefined,
  info: TableInfo,
  table: string,
): string[] {
  const set = new Set<string>(key === undefined ? [] : [key]);
  if (op !== 'delete') for (const { row } of rows) for (const name of Object.keys(row)) set.add(name);
  const missing = [...set].filter((c) => !info.columns.has(c.toLowerCase()));
  if (missing.length)
    throw new ProviderError(`table ${table} has no column ${missing.join(', ')}`, {
      code: 'column_not_found',
      retryable: false,
      hint: 'add the column or fix the mapping; `backflow plan` checks this',
    });
  return [...set];
}

/** Builds the SQL for a part of a batch, or null when there is nothing to write (an update of the key alone). */
export function writer(
  op: Operation,
  table: string,
  columns: readonly string[],
  key: string | undefined,
): ((items: readonly Item[]) => string) | null {
  const t = dialect.quoteTable(table);
  const cols = columns.map((c) => dialect.quoteIdent(c));
  const k = key === undefined ? undefined : dialect.quoteIdent(key);
  const rest = cols.filter((c) => c !== k);
  const tuples = (items: readonly Item[]) => items.map((it) => `(${it.values.join(', ')})`).join(',\n');
  switch (op) {
    case 'insert':
      return (items) => `INSERT INTO ${t} (${cols.join(', ')}) VALUES ${tuples(items)}`;
    case 'upsert': {
      // VALUES(col) rather than MySQL 8's row alias: MariaDB has no row alias.
      const set = (rest.length ? rest : [k!]).map((c) => `${c} = VALUES(${c})`).join(', ');
      return (items) =>
        `INSERT INTO ${t} (${cols.join(', ')}) VALUES ${tuples(items)} ON DUPLICATE KEY UPDATE ${set}`;
    }
    case 'update': {
      if (!rest.length) return null;
      const set = rest.map((c) => `t.${c} = s.${c}`).join(', ');
      return (items) => {
        const rows = items.map((it, i) =>
          i === 0
            ? `SELECT ${it.values.map((v, j) => `${v} AS ${cols[j]}`).join(', ')}`
            : `SELECT ${it.values.join(', ')}`,
        );
        return `UPDATE ${t} AS t JOIN (${rows.join('\nUNION ALL ')}) AS s ON t.${k} = s.${k} SET ${set}`;
      };
    }
    case 'delete':
      return (items) => `DELETE FROM ${t} WHERE ${k} IN (${items.map((it) => it.values[0]).join(', ')})`;
  }
}

/** Splits items so that no statement exceeds MAX_STATEMENT_CHARS. */
function chunks(items: readonly Item[]): (readonly Item[])[] {
  const out: Item[][] = [];
  let cur: Item[] = [];
  let chars = 0;
  for (const it of items) {
    if (cur.length && chars + it.chars > MAX_STATEMENT_CHARS) {
      out.push(cur);
      cur = [];
      chars = 0;
    }
    cur.push(it);
    chars += it.chars;
  }
  if (cur.length) out.push(cur);
  return out;
}

const ISO_DATETIME = /^(\d{4}-\d\d-\d\d)[T ](\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d(?::?\d\d)?)?$/;

/**
 * ISO-8601 text as MySQL DATETIME text. With a zone (`…Z`, `…+02:00`) it is converted to UTC, which
 * write connections use as their time_zone; without one it is taken as written.
 */
export function mysqlDatetime(text: string): string {
  const m = ISO_DATETIME.exec(text);
  if (!m) return text;
  const [, date, time, frac = '', zone] = m;
  if (zone === undefined) return `${date} ${time}${frac}`;
  const offset =
    zone === 'Z'
      ? 'Z'
      : zone.length === 3
        ? `${zone}:00`
        : zone.includes(':')
          ? zone
          : `${zone.slice(0, 3)}:${zone.slice(3)}`;
  const ms = Date.parse(`${date}T${time}${offset}`);
  if (Number.isNaN(ms)) return text;
  const iso = new Date(ms).toISOString();
  return `${iso.slice(0, 10)} ${iso.slice(11, 19)}${frac}`;
}

/** JSON text for a JSON column: JSON text stays as it is, anything else is encoded (a string as a JSON string). */
function jsonText(value: unknown): string {
  if (typeof value === 'string') {
    if (/^\s*[[{]/.test(value)) {
      try {
        JSON.parse(value);
        return value;
      } catch {
        // not JSON after all: stored as a JSON string
      }
    }
    return JSON.stringify(value);
  }
  return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
}

/** A value as a SQL literal for a column. */
function literal(value: unknown, column: ColumnInfo): string {
  if (value === undefined || value === null) return 'NULL';
  if (value instanceof Uint8Array)
    return `X'${Buffer.from(value.buffer, value.byteOffset, value.byteLength).toString('hex')}'`;
  if (column.json) return dialect.literal(jsonText(value));
  if (column.type === 'datetime' || column.type === 'timestamp') {
    if (typeof value === 'string') return dialect.literal(mysqlDatetime(value));
    if (value instanceof Date) return dialect.literal(mysqlDatetime(value.toISOString()));
  }
  return dialect.literal(value);
}

// errno → the code a rejected record carries. MariaDB 4025 is its CHECK failure (MySQL: 3819).
const REJECT_CODES: ReadonlyMap<number, string> = new Map([
  [1062, 'unique_violation'],
  [1048, 'not_null_violation'],
  [1364, 'not_null_violation'],
  [1451, 'foreign_key_violation'],
  [1452, 'foreign_key_violation'],
  [3819, 'check_violation'],
  [4025, 'check_violation'],
  [1406, 'value_too_long'],
  [1264, 'value_out_of_range'],
  [1690, 'value_out_of_range'],
  [1265, 'invalid_value'],
  [1292, 'invalid_value'],
  [1366, 'invalid_value'],
  [1367, 'invalid_value'],
  [1411, 'invalid_value'],
  [3140, 'invalid_value'],
  [1644, 'rejected_by_trigger'],
]);

const ISOLATION = {
  isRecordError: (e: unknown) => {
    const db = serverError(e);
    return db !== undefined && REJECT_CODES.has(db.errno);
  },
  rejection,
};

function rejection(e: unknown): RecordResult {
  const db = serverError(e)!;
  return { status: 'rejected', code: REJECT_CODES.get(db.errno) ?? 'invalid_value', message: db.sqlMessage };
}

function notUnique(table: string, key: string, action: ActionName): CheckProblem & { hint: string } {
  return {
    code: 'key_not_unique',
    message: `key column ${key} of table ${table} has no unique index or primary key, which ${action} needs (ON DUPLICATE KEY UPDATE): add a unique index on that column`,
    hint: `ALTER TABLE ${dialect.quoteTable(table)} ADD UNIQUE (${dialect.quoteIdent(key)})`,
  };
}
