import type pg from 'pg';
import { jsonSourceText } from '../json.js';
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
import {
  acquire,
  lostConnection,
  type PostgresSettings,
  serverError,
  toProviderError,
} from './connection.js';
import { copyBatch, copyTextType } from './copy.js';
import { COPY_FORMAT } from './copy-out.js';
import { dialect } from './dialect.js';

/** What load and check need to know about a destination table. */
interface TableInfo {
  /** Column name → type as format_type writes it (`bigint`, `jsonb`, `text[]`). */
  readonly columns: ReadonlyMap<string, string>;
  /** Column name → type OID. */
  readonly typeIds: ReadonlyMap<string, number>;
  /** Columns with a unique, non-partial, single-column index (what ON CONFLICT (col) needs). */
  readonly uniqueColumns: ReadonlySet<string>;
}

/** One record bound for one statement, with where its result goes. */
interface Item {
  readonly index: number;
  readonly record: LoadRecord;
}

const OK: RecordResult = { status: 'ok' };

/**
 * Loads records into a table. upsert and insert batches go through COPY (copy.ts): insert straight
 * into the table, upsert into a temp table then one INSERT … ON CONFLICT. Small batches, update,
 * delete, and any batch COPY could not load, go as one statement per operation whose records travel
 * as one JSON parameter that `json_populate_recordset` turns into rows of the table's own row type.
 * Either way every column gets its declared type (bigint, numeric, timestamptz, jsonb, arrays)
 * through the server's input functions, with no float rounding on the way. When a statement fails
 * on a value or a constraint the batch is bisected until the failing records are isolated: every
 * other record lands, and each failing one carries the server's message.
 */
export class PostgresDestination implements DestinationCapability {
  /** Each load checks out its own pooled connection and commits on its own. */
  readonly concurrentLoads = 2;
  readonly #tables = new Map<string, Promise<TableInfo | null>>();
  /** Added records are COPYed straight in until one turns out to be there already (see copyBatch). */
  #insertFirst = true;

  constructor(
    private readonly pool: pg.Pool,
    private readonly settings: PostgresSettings,
  ) {}

  async check(req: CheckRequest): Promise<readonly CheckProblem[]> {
    if (!req.options.table) return [];
    const info = await this.table(req.options.table, true);
    if (!info) {
      return [
        {
          code: 'table_not_found',
          message: `table ${req.options.table} does not exist in ${this.settings.where}`,
          hint: 'create the table, or write `table` as schema.table when it is not on the search_path',
        },
      ];
    }
    const problems: CheckProblem[] = [];
    const names = [...info.columns.keys()];
    const key = req.options.key;
    if (key !== undefined && req.action !== 'insert') {
      if (!info.columns.has(key)) {
        problems.push({
          code: 'key_column_not_found',
          message: `key column ${key} does not exist in table ${req.options.table}`,
          hint: suggest(key, names),
        });
      } else if ((req.action === 'upsert' || req.action === 'mirror') && !info.uniqueColumns.has(key)) {
        problems.push(notUnique(req.options.table, key, req.action));
      }
    }
    for (const field of req.fields) {
      if (!info.columns.has(field)) {
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
    const { table, key } = checkLoadRequest(req, 'postgres');
    if (req.records.length === 0) return [];

    const info = await this.table(table, false);
    if (!info) throw tableNotFound(table, this.settings.where);

    if (key && (req.action === 'upsert' || req.action === 'mirror') && !info.uniqueColumns.has(key)) {
      const p = notUnique(table, key, req.action);
      throw new ProviderError(p.message, { code: p.code, retryable: false, hint: p.hint });
    }

    const results: RecordResult[] = new Array(req.records.length);
    const groups = groupByOperation(
      req,
      results,
      operation,
      (record, index, _op): Item => ({ index, record }),
    );

    const client = await acquire(this.pool, this.settings);
    let broken: unknown;
    try {
      // One statement per operation; a batch never holds the same key twice, so their order is free.
      for (const op of ['delete', 'update', 'upsert', 'insert'] as const) {
        const items = groups.get(op);
        if (!items) continue;
        const columns = columnsOf(items, op, key, info, table);
        const sql = statement(op, table, columns, key);
        if (sql === null) {
          for (const it of items) results[it.index] = OK;
          continue;
        }
        req.signal?.throwIfAborted();
        const bulk =
          (op === 'upsert' || op === 'insert') &&
          (await copyBatch({
            client,
            op,
            table,
            columns,
            types: info.columns,
            rowCount: items.length,
            value: (r, c) => cell(items[r]!.record, op, columns[c]!, key),
            sourceLine: sourceLineOf(items, columns, key, info),
            upsertFrom: (source) => statement('upsert', table, columns, key, source)!,
            isRecordError,
            ...(this.#insertFirst && items.every((it) => it.record.change === 'added')
              ? { insertFirst: { onConflict: () => (this.#insertFirst = false) } }
              : {}),
          }));
        if (bulk) {
          for (const it of items) results[it.index] = OK;
          continue;
        }
        // Some record failed (or the batch is small): statement by statement, bisecting to the failures.
        await bisect(
          items,
          results,
          async (part) => {
            req.signal?.throwIfAborted();
            await client.query(sql, [encodeRows(part, op, columns, key, info)]);
          },
          ISOLATION,
        );
      }
    } catch (e) {
      broken = e;
      if (e instanceof UserError || req.signal?.aborted) throw e;
      throw toProviderError(e, this.settings.where, 'query');
    } finally {
      client.release(lostConnection(broken));
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
    const client = await acquire(this.pool, this.settings);
    let broken: unknown;
    try {
      const qualified = dialect.quoteTable(name);
      const cols = await client.query<{ name: string; type: string; oid: string }>(
        `SELECT a.attname AS name, format_type(a.atttypid, a.atttypmod) AS type, a.atttypid::int8 AS oid
           FROM pg_attribute a
          WHERE a.attrelid = to_regclass($1) AND a.attnum > 0 AND NOT a.attisdropped
          ORDER BY a.attnum`,
        [qualified],
      );
      if (cols.rows.length === 0) {
        const exists = await client.query<{ oid: string | null }>('SELECT to_regclass($1)::oid AS oid', [
          qualified,
        ]);
        if (exists.rows[0]?.oid == null) return null;
      }
      const unique = await client.query<{ name: string }>(
        `SELECT a.attname AS name
           FROM pg_index i
           JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
          WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnkeyatts = 1
            AND i.indpred IS NULL AND i.indexprs IS NULL`,
        [qualified],
      );
      return {
        columns: new Map(cols.rows.map((r) => [r.name, r.type])),
        typeIds: new Map(cols.rows.map((r) => [r.name, Number(r.oid)])),
        uniqueColumns: new Set(unique.rows.map((r) => r.name)),
      };
    } catch (e) {
      broken = e;
      throw toProviderError(e, this.settings.where, 'query');
    } finally {
      client.release(lostConnection(broken));
    }
  }
}

/** A cell of the record's row: the field, or for the key column the record's key when the fields lack it. */
function cell(record: LoadRecord, op: Operation, column: string, key: string | undefined): unknown {
  if (column !== key) return op === 'delete' ? undefined : record.fields?.[column];
  const own = op === 'delete' ? undefined : record.fields?.[column];
  return own === undefined || own === null ? record.key : own;
}

/**
 * Each item's row as its source's own COPY text (LoadRecord.sourceText), where its fields are source
 * columns of the same built-in types as the table's. A row whose key column is NULL there is encoded
 * instead: `cell` gives it the record's key.
 */
function sourceLineOf(
  items: readonly Item[],
  columns: readonly string[],
  key: string | undefined,
  info: TableInfo,
): ((row: number) => Uint8Array | undefined) | undefined {
  if (!items[0]?.record.sourceText) return undefined;
  const types = columns.map((c) => copyTextType(info.typeIds.get(c)));
  const keyFirst = key !== undefined && columns[0] === key;
  return (r) => {
    const line = items[r]!.record.sourceText?.(COPY_FORMAT, columns, types);
    // `\N` then a tab or the newline: the key column (first) is NULL.
    if (line && keyFirst && line[0] === 92 && line[1] === 78 && (line[2] === 9 || line[2] === 10))
      return undefined;
    return line;
  };
}

/** The statement's columns: every field some record of the group sets, the key first. */
function columnsOf(
  items: readonly Item[],
  op: Operation,
  key: string | undefined,
  info: TableInfo,
  table: string,
): string[] {
  const set = new Set<string>(key === undefined ? [] : [key]);
  if (op !== 'delete')
    for (const it of items) {
      const names = it.record.fieldNames ?? Object.keys(it.record.fields ?? {});
      for (let i = 0; i < names.length; i++) set.add(names[i]!);
    }
  const missing = [...set].filter((c) => !info.columns.has(c));
  if (missing.length)
    throw new ProviderError(`table ${table} has no column ${missing.join(', ')}`, {
      code: 'column_not_found',
      retryable: false,
      hint: 'add the column or fix the mapping; `backflow plan` checks this',
    });
  return [...set];
}

/**
 * The SQL for one operation, or null when there is nothing to write (an update of the key alone).
 * The rows come from `source`: by default the statement's one JSON parameter as rows of the table.
 */
export function statement(
  op: Operation,
  table: string,
  columns: readonly string[],
  key: string | undefined,
  source = `json_populate_recordset(NULL::${dialect.quoteTable(table)}, $1::json)`,
): string | null {
  const t = dialect.quoteTable(table);
  const cols = columns.map((c) => dialect.quoteIdent(c));
  const k = key === undefined ? undefined : dialect.quoteIdent(key);
  const rest = cols.filter((c) => c !== k);
  switch (op) {
    case 'insert':
      return `INSERT INTO ${t} (${cols.join(', ')}) SELECT ${cols.join(', ')} FROM ${source}`;
    case 'upsert': {
      const onConflict = rest.length
        ? `DO UPDATE SET ${rest.map((c) => `${c} = EXCLUDED.${c}`).join(', ')}`
        : 'DO NOTHING';
      return `INSERT INTO ${t} (${cols.join(', ')}) SELECT ${cols.join(', ')} FROM ${source} ON CONFLICT (${k}) ${onConflict}`;
    }
    case 'update':
      if (!rest.length) return null;
      return `UPDATE ${t} AS t SET ${rest.map((c) => `${c} = s.${c}`).join(', ')} FROM ${source} AS s WHERE t.${k} = s.${k}`;
    case 'delete':
      return `DELETE FROM ${t} AS t USING ${source} AS s WHERE t.${k} = s.${k}`;
  }
}

/**
 * A value as the JSON `json_populate_recordset` reads for a column of type `type`: JSON text meant
 * for a json/jsonb column is decoded (sent as the object, not as a JSON string), bytes become bytea
 * hex, a bigint its digits. Other values go as they are and the column's input function parses them.
 */
function encodeValue(value: unknown, type: string | undefined): unknown {
  if (value === undefined || value === null) return null;
  if (typeof value === 'bigint') return value.toString();
  if (value instanceof Uint8Array) {
    const buf = Buffer.from(value.buffer, value.byteOffset, value.byteLength);
    return type === 'bytea' ? `\\x${buf.toString('hex')}` : buf.toString('base64');
  }
  if ((type === 'json' || type === 'jsonb') && typeof value === 'string' && /^\s*[[{]/.test(value)) {
    try {
      return JSON.parse(value);
    } catch {
      return value; // not JSON after all: stored as a JSON string
    }
  }
  return value;
}

/**
 * The items as the statement's one JSON parameter: an array of row objects. A json/jsonb value goes
 * in as its own JSON text where there is one (read from a json column, or JSON text given as a
 * string), so numbers keep their exact digits and scale (`1.50` stays `1.50`).
 */
function encodeRows(
  items: readonly Item[],
  op: Operation,
  columns: readonly string[],
  key: string | undefined,
  info: TableInfo,
): string {
  const names = columns.map((c) => `${JSON.stringify(c)}:`);
  const json = columns.map((c) => {
    const type = info.columns.get(c);
    return type === 'json' || type === 'jsonb';
  });
  const parts: string[] = [];
  for (const it of items) {
    let row = '{';
    columns.forEach((c, i) => {
      const value = cell(it.record, op, c, key);
      const own = json[i] ? ownJsonText(value) : undefined;
      row += `${i > 0 ? ',' : ''}${names[i]}${own ?? jsonValue(encodeValue(value, info.columns.get(c)))}`;
    });
    parts.push(`${row}}`);
  }
  return `[${parts.join(',')}]`;
}

/** The JSON text a json column's value already is: the text it was read from, or valid JSON text given. */
function ownJsonText(value: unknown): string | undefined {
  if (value !== null && typeof value === 'object') return jsonSourceText(value);
  if (typeof value === 'string' && /^\s*[[{]/.test(value)) {
    try {
      JSON.parse(value);
      return value;
    } catch {
      return undefined; // not JSON after all: stored as a JSON string
    }
  }
  return undefined;
}

function jsonValue(value: unknown): string {
  try {
    return JSON.stringify(value) ?? 'null';
  } catch (e) {
    // A bigint nested inside an object value: the slower replacer only when one is there.
    if (!(e instanceof TypeError)) throw e;
    return JSON.stringify(value, (_k, v: unknown) => (typeof v === 'bigint' ? v.toString() : v));
  }
}

/** SQLSTATE classes a single record can cause: bad values (22), constraints (23), a trigger's RAISE. */
function isRecordError(e: unknown): boolean {
  const db = serverError(e);
  return db !== undefined && (/^(21|22|23)/.test(db.code) || db.code === 'P0001');
}

const REJECT_CODES: Readonly<Record<string, string>> = {
  '23505': 'unique_violation',
  '23502': 'not_null_violation',
  '23503': 'foreign_key_violation',
  '23514': 'check_violation',
  '23P01': 'exclusion_violation',
  '22001': 'value_too_long',
  '22003': 'value_out_of_range',
  '22007': 'invalid_datetime',
  '22008': 'invalid_datetime',
  '21000': 'duplicate_key_in_batch',
  P0001: 'rejected_by_trigger',
};

const ISOLATION = { isRecordError, rejection };

function rejection(e: unknown): RecordResult {
  const db = serverError(e)!;
  const code = REJECT_CODES[db.code] ?? (db.code.startsWith('23') ? 'constraint_violation' : 'invalid_value');
  return { status: 'rejected', code, message: db.detail ? `${db.message} (${db.detail})` : db.message };
}

function notUnique(table: string, key: string, action: ActionName): CheckProblem & { hint: string } {
  return {
    code: 'key_not_unique',
    message: `key column ${key} of table ${table} has no unique index or primary key, which ${action} needs (ON CONFLICT): add a unique index on that column`,
    hint: `CREATE UNIQUE INDEX ON ${dialect.quoteTable(table)} (${dialect.quoteIdent(key)})`,
  };
}
