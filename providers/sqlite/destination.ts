import type { Statement } from 'better-sqlite3';
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
import {
  checkLoadRequest,
  eachOperation,
  type Operation,
  operation,
  tableNotFound,
} from '../sql/load-plan.js';
import { hint, suggest } from '../sql/suggest.js';
import { type SqliteConnection, sqliteCode, toProviderError } from './connection.js';
import { dialect } from './dialect.js';

/** What load and check need to know about a destination table (names keyed lower case: SQLite ignores case). */
interface TableInfo {
  /** lower-cased name → the column's own name. */
  readonly columns: ReadonlyMap<string, string>;
  /** Columns (lower case) with a single-column primary key or unique, non-partial index: what ON CONFLICT (col) needs. */
  readonly uniqueColumns: ReadonlySet<string>;
}

/** One record bound for one statement. */
interface Item {
  readonly index: number;
  readonly op: Operation;
  readonly row: Readonly<Record<string, unknown>>;
}

const OK: RecordResult = { status: 'ok' };
const MAX_CACHED_STATEMENTS = 200;

/**
 * Loads records into a table, one prepared statement per record (in the batch's order), the whole
 * batch in one transaction. When the batch fails on a record (a constraint, a value, a trigger),
 * it runs again record by record, each inside a SAVEPOINT: every other record lands, and each
 * failing one is rejected with SQLite's message. A missing table or column, or an upsert key
 * without a unique index, fails the whole batch with a ProviderError before anything is written.
 */
export class SqliteDestination implements DestinationCapability {
  readonly #tables = new Map<string, TableInfo | null>();
  readonly #statements = new Map<string, Statement>();

  constructor(private readonly conn: SqliteConnection) {}

  async check(req: CheckRequest): Promise<readonly CheckProblem[]> {
    req.signal?.throwIfAborted();
    const table = req.options.table;
    if (!table) return [];
    const info = this.table(table, true);
    if (!info) {
      return [
        {
          code: 'table_not_found',
          message: `table ${table} does not exist in ${this.conn.where}`,
          hint: 'create the table, or fix `table` (write schema.table for an attached database)',
        },
      ];
    }
    const problems: CheckProblem[] = [];
    const names = [...info.columns.values()];
    const key = req.options.key;
    if (key !== undefined && req.action !== 'insert') {
      if (!info.columns.has(key.toLowerCase())) {
        problems.push({
          code: 'key_column_not_found',
          message: `key column ${key} does not exist in table ${table}`,
          ...hint(suggest(key, names)),
        });
      } else if (
        (req.action === 'upsert' || req.action === 'mirror') &&
        !info.uniqueColumns.has(key.toLowerCase())
      ) {
        problems.push(notUnique(table, key, req.action));
      }
    }
    for (const field of req.fields) {
      if (!info.columns.has(field.toLowerCase())) {
        problems.push({
          code: 'column_not_found',
          message: `column ${field} does not exist in table ${table}`,
          ...hint(suggest(field, names)),
        });
      }
    }
    return problems;
  }

  async load(req: LoadRequest): Promise<readonly RecordResult[]> {
    req.signal?.throwIfAborted();
    const { table, key } = checkLoadRequest(req, 'sqlite');
    if (req.records.length === 0) return [];

    const info = this.table(table, false);
    if (!info) throw tableNotFound(table, this.conn.where);
    if (
      key &&
      (req.action === 'upsert' || req.action === 'mirror') &&
      !info.uniqueColumns.has(key.toLowerCase())
    ) {
      const p = notUnique(table, key, req.action);
      throw new ProviderError(p.message, { code: p.code, retryable: false, hint: p.hint! });
    }

    const results: RecordResult[] = new Array(req.records.length);
    const items: Item[] = [];
    eachOperation(req, results, operation, (op, record, index) => {
      items.push({ index, op, row: rowOf(record, op, key) });
    });
    checkColumns(items, info, table);

    const { db } = this.conn;
    const write = (it: Item) => this.write(table, key, it);
    try {
      db.transaction(() => {
        for (const it of items) write(it);
      }).immediate();
      for (const it of items) results[it.index] = OK;
    } catch (e) {
      if (!isRecordError(e)) throw toProviderError(e, this.conn.where, `writing to table ${table}`);
      const rejected = this.oneByOne(items, write);
      for (const it of items) results[it.index] = rejected.get(it.index) ?? OK;
    }
    return results;
  }

  /**
   * Runs the batch again record by record, each in a SAVEPOINT (better-sqlite3 runs a nested
   * transaction as one), so a failing record's partial work (a trigger's RAISE(FAIL)) is undone
   * alone. A record whose failure rolls back the whole transaction (ON CONFLICT ROLLBACK,
   * RAISE(ROLLBACK)) restarts the batch without it. Returns the rejected records by index.
   */
  private oneByOne(items: readonly Item[], write: (it: Item) => void): Map<number, RecordResult> {
    const { db } = this.conn;
    const one = db.transaction(write);
    const rejected = new Map<number, RecordResult>();
    const restart = Symbol('restart');
    for (;;) {
      try {
        db.transaction(() => {
          for (const it of items) {
            if (rejected.has(it.index)) continue;
            try {
              one(it);
            } catch (err) {
              if (!isRecordError(err)) throw err;
              rejected.set(it.index, rejection(err));
              if (!db.inTransaction) throw restart;
            }
          }
        }).immediate();
        return rejected;
      } catch (err) {
        if (err !== restart) throw toProviderError(err, this.conn.where, 'writing records one by one');
      }
    }
  }

  private write(table: string, key: string | undefined, it: Item): void {
    const columns = Object.keys(it.row);
    const stmt = this.statement(it.op, table, columns, key);
    if (stmt === null) return;
    const values = columns.map((c) => it.row[c]);
    switch (it.op) {
      case 'insert':
      case 'upsert':
        stmt.run(values);
        return;
      case 'update':
        stmt.run([...values.filter((_, i) => columns[i] !== key), it.row[key!]]);
        return;
      case 'delete':
        stmt.run([it.row[key!]]);
        return;
    }
  }

  /** The prepared statement for an operation on these columns, or null when there is nothing to write. */
  private statement(
    op: Operation,
    table: string,
    columns: readonly string[],
    key: string | undefined,
  ): Statement | null {
    const id = `${op}\0${table}\0${key ?? ''}\0${columns.join('\0')}`;
    let stmt = this.#statements.get(id);
    if (stmt) return stmt;
    const sql = statementSql(op, table, columns, key);
    if (sql === null) return null;
    stmt = this.conn.db.prepare(sql);
    if (this.#statements.size >= MAX_CACHED_STATEMENTS) this.#statements.clear();
    this.#statements.set(id, stmt);
    return stmt;
  }

  /** Table metadata, cached for the session (check reads it afresh; a missing table is looked up again). */
  private table(name: string, fresh: boolean): TableInfo | null {
    if (!fresh && this.#tables.has(name)) return this.#tables.get(name) ?? null;
    const info = lookup(this.conn, name);
    if (info) this.#tables.set(name, info);
    else this.#tables.delete(name);
    return info;
  }
}

/** The SQL for one operation (`?` placeholders in column order, the key last for update/delete). */
export function statementSql(
  op: Operation,
  table: string,
  columns: readonly string[],
  key: string | undefined,
): string | null {
  const t = dialect.quoteTable(table);
  const cols = columns.map((c) => dialect.quoteIdent(c));
  const params = columns.map((_, i) => dialect.placeholder(i + 1));
  const k = key === undefined ? undefined : dialect.quoteIdent(key);
  const rest = columns.filter((c) => c !== key).map((c) => dialect.quoteIdent(c));
  switch (op) {
    case 'insert':
      return `INSERT INTO ${t} (${cols.join(', ')}) VALUES (${params.join(', ')})`;
    case 'upsert': {
      const onConflict = rest.length
        ? `DO UPDATE SET ${rest.map((c) => `${c} = excluded.${c}`).join(', ')}`
        : 'DO NOTHING';
      return `INSERT INTO ${t} (${cols.join(', ')}) VALUES (${params.join(', ')}) ON CONFLICT (${k}) ${onConflict}`;
    }
    case 'update': {
      if (!rest.length) return null;
      const set = rest.map((c, i) => `${c} = ${dialect.placeholder(i + 1)}`).join(', ');
      return `UPDATE ${t} SET ${set} WHERE ${k} = ${dialect.placeholder(rest.length + 1)}`;
    }
    case 'delete':
      return `DELETE FROM ${t} WHERE ${k} = ${dialect.placeholder(1)}`;
  }
}

/** The record as a row of bindable values, with the key column from the record's key when the fields lack it. */
function rowOf(record: LoadRecord, op: Operation, key: string | undefined): Record<string, unknown> {
  const row: Record<string, unknown> = {};
  if (op !== 'delete')
    for (const [name, value] of Object.entries(record.fields ?? {})) row[name] = encode(value);
  if (key !== undefined) {
    const own = row[key];
    row[key] = own === undefined || own === null ? record.key : own;
  }
  return row;
}

/** Every column the batch writes must exist: one missing column fails the whole batch, not each record. */
function checkColumns(items: readonly Item[], info: TableInfo, table: string): void {
  const missing = new Set<string>();
  for (const it of items)
    for (const c of Object.keys(it.row)) if (!info.columns.has(c.toLowerCase())) missing.add(c);
  if (missing.size === 0) return;
  throw new ProviderError(`table ${table} has no column ${[...missing].join(', ')}`, {
    code: 'column_not_found',
    retryable: false,
    hint: 'add the column or fix the mapping; `backflow plan` checks this',
  });
}

const INT64_MAX = 2n ** 63n - 1n;
const INT64_MIN = -(2n ** 63n);

/** A value SQLite can bind: booleans as 1/0, objects and arrays as JSON text, bytes as a BLOB. */
function encode(value: unknown): unknown {
  switch (typeof value) {
    case 'undefined':
      return null;
    case 'string':
      return value;
    case 'number':
      // better-sqlite3 binds every JS number as REAL: 1 would land in a TEXT column as '1.0'.
      return Number.isSafeInteger(value) ? BigInt(value) : value;
    case 'bigint':
      return value >= INT64_MIN && value <= INT64_MAX ? value : value.toString();
    case 'boolean':
      return value ? 1 : 0;
    case 'object':
      if (value === null) return null;
      if (value instanceof Date) return Number.isNaN(value.getTime()) ? null : value.toISOString();
      if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength);
      return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
    default:
      return String(value);
  }
}

/** Failures one record can cause (its values, a constraint, a trigger); anything else fails the batch. */
function isRecordError(e: unknown): boolean {
  const code = sqliteCode(e);
  if (code === undefined) return e instanceof RangeError || e instanceof TypeError;
  return code.startsWith('SQLITE_CONSTRAINT') || code === 'SQLITE_MISMATCH' || code === 'SQLITE_TOOBIG';
}

const REJECT_CODES: Readonly<Record<string, string>> = {
  SQLITE_CONSTRAINT_PRIMARYKEY: 'unique_violation',
  SQLITE_CONSTRAINT_UNIQUE: 'unique_violation',
  SQLITE_CONSTRAINT_NOTNULL: 'not_null_violation',
  SQLITE_CONSTRAINT_FOREIGNKEY: 'foreign_key_violation',
  SQLITE_CONSTRAINT_CHECK: 'check_violation',
  SQLITE_CONSTRAINT_TRIGGER: 'rejected_by_trigger',
  SQLITE_CONSTRAINT_DATATYPE: 'invalid_value',
  SQLITE_MISMATCH: 'invalid_value',
  SQLITE_TOOBIG: 'value_too_long',
};

function rejection(e: unknown): RecordResult {
  const code = sqliteCode(e);
  const mapped = code === undefined ? 'invalid_value' : (REJECT_CODES[code] ?? 'constraint_violation');
  return { status: 'rejected', code: mapped, message: (e as Error).message };
}

function lookup(conn: SqliteConnection, name: string): TableInfo | null {
  const parts = name.split('.');
  if (parts.length > 2 || parts.some((p) => p === ''))
    throw new UserError(`table ${name} is not a valid SQLite table name`, {
      hint: 'write `table` as TABLE or SCHEMA.TABLE',
    });
  const [schema, table] = parts.length === 2 ? [parts[0]!, parts[1]!] : ['main', parts[0]!];
  const { db } = conn;
  try {
    const cols = db
      .prepare('SELECT name, pk FROM pragma_table_info(?, ?) ORDER BY cid')
      .all(table, schema) as {
      name: string;
      pk: number;
    }[];
    if (cols.length === 0) return null;
    const unique = new Set<string>();
    const pk = cols.filter((c) => c.pk > 0);
    if (pk.length === 1) unique.add(pk[0]!.name.toLowerCase());
    const indexes = db
      .prepare('SELECT name FROM pragma_index_list(?, ?) WHERE "unique" = 1 AND partial = 0')
      .pluck()
      .all(table, schema) as string[];
    const info = db.prepare('SELECT name, cid FROM pragma_index_info(?, ?)');
    for (const index of indexes) {
      const parts = info.all(index, schema) as { name: string | null; cid: number }[];
      if (parts.length === 1 && parts[0]!.cid >= 0 && parts[0]!.name)
        unique.add(parts[0]!.name.toLowerCase());
    }
    return { columns: new Map(cols.map((c) => [c.name.toLowerCase(), c.name])), uniqueColumns: unique };
  } catch (e) {
    throw toProviderError(e, conn.where, `reading the definition of table ${name}`);
  }
}

function notUnique(table: string, key: string, action: ActionName): CheckProblem {
  const [schema, bare] = table.includes('.')
    ? [table.split('.')[0]!, table.split('.')[1]!]
    : [undefined, table];
  const index = `${schema ? `${dialect.quoteIdent(schema)}.` : ''}${dialect.quoteIdent(`${bare}_${key}_key`)}`;
  return {
    code: 'key_not_unique',
    message: `key column ${key} of table ${table} has no unique index or primary key, which ${action} needs (ON CONFLICT): add a unique index on that column`,
    hint: `CREATE UNIQUE INDEX ${index} ON ${dialect.quoteIdent(bare)} (${dialect.quoteIdent(key)})`,
  };
}
