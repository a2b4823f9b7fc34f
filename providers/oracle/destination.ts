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
import {
  checkLoadRequest,
  groupByOperation,
  type Operation,
  operation,
  tableNotFound,
} from '../sql/load-plan.js';
import {
  acquire,
  type OracleBatchError,
  type OracleConnection,
  type OraclePool,
  type OracleSettings,
  oracledb,
  toProviderError,
} from './connection.js';
import { dialect } from './dialect.js';

/** A destination column as the data dictionary names and types it. */
export interface OracleColumn {
  /** The stored name (usually upper case), quoted as it is in SQL. */
  readonly name: string;
  /** `NUMBER`, `VARCHAR2`, `CLOB`, `TIMESTAMP(6) WITH TIME ZONE`, … */
  readonly type: string;
  readonly virtual: boolean;
}

/** What load and check need to know about a destination table. */
interface TableInfo {
  /** The table as resolved in the dictionary, for SQL: `"CRM"` or `"APP"."CRM"`. */
  readonly sqlName: string;
  readonly columns: readonly OracleColumn[];
}

interface Item {
  readonly index: number;
  readonly key: unknown;
  readonly row: Readonly<Record<string, unknown>>;
}

/** How one bind position travels: its driver type, and a size for text and bytes. */
export interface BindDef {
  readonly kind: 'number' | 'string' | 'clob' | 'raw' | 'blob';
  readonly maxSize?: number;
}

/** One statement for `executeMany`: single-row SQL with `:1…:n`, the bind types and one bind row per record. */
export interface OracleStatement {
  readonly sql: string;
  readonly binds: readonly (readonly unknown[])[];
  readonly defs: readonly BindDef[];
}

const OK: RecordResult = { status: 'ok' };

/**
 * Loads records into an Oracle table. Each operation is one single-row statement run for the whole
 * batch with `executeMany` and `batchErrors`: the database reports each failing row with its error
 * and applies the others, so a bad record is isolated without bisecting. upsert is a `MERGE` on the
 * key from `DUAL`, update an `UPDATE … WHERE key = :n`, delete a `DELETE … WHERE key = :1`, mirror
 * the delete plus the MERGE; the batch commits once at the end. Names resolve case-insensitively
 * against the data dictionary (`table: crm` finds `CRM`), then are quoted exactly as stored.
 */
export class OracleDestination implements DestinationCapability {
  readonly #tables = new Map<string, Promise<TableInfo | null>>();

  constructor(
    private readonly pool: OraclePool,
    private readonly settings: OracleSettings,
  ) {}

  async check(req: CheckRequest): Promise<readonly CheckProblem[]> {
    if (!req.options.table) return [];
    const info = await this.table(req.options.table, true);
    if (!info) {
      return [
        {
          code: 'table_not_found',
          message: `table ${req.options.table} does not exist in ${this.settings.where}`,
          hint: 'create the table, or write `table` as OWNER.TABLE when another schema owns it',
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
      const column = findColumn(info, field);
      if (!column) {
        problems.push({
          code: 'column_not_found',
          message: `column ${field} does not exist in table ${req.options.table}`,
          hint: `the table's columns: ${names.join(', ')}`,
        });
      } else if (column.virtual) {
        problems.push({
          code: 'column_not_writable',
          message: `column ${field} of table ${req.options.table} is virtual and cannot be written`,
        });
      }
    }
    return problems;
  }

  async load(req: LoadRequest): Promise<readonly RecordResult[]> {
    req.signal?.throwIfAborted();
    const { table, key } = checkLoadRequest(req, 'oracle');
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

    const conn = await acquire(this.pool, this.settings);
    const onAbort = () => void conn.break().catch(() => undefined);
    req.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      for (const op of ['delete', 'update', 'upsert', 'insert'] as const) {
        const items = groups.get(op);
        if (!items) continue;
        const columns = columnsOf(items, op, key, info, table);
        const statement = buildStatement(op, {
          table: info.sqlName,
          key: columns[0]?.name ?? '',
          columns,
          rows: rowsOf(items, op, key, columns),
        });
        if (!statement) {
          for (const it of items) results[it.index] = OK;
          continue;
        }
        const errors = await executeMany(conn, statement);
        const failed = new Map(errors.map((e) => [e.offset, e]));
        items.forEach((it, i) => {
          const e = failed.get(i);
          results[it.index] = e ? rejection(e) : OK;
        });
      }
      await conn.commit();
    } catch (e) {
      await conn.rollback().catch(() => undefined);
      if (e instanceof UserError || req.signal?.aborted) throw e;
      // Rolled back: nothing of this batch was written.
      throw toProviderError(e, this.settings, 'query');
    } finally {
      req.signal?.removeEventListener('abort', onAbort);
      await conn.close().catch(() => undefined);
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
    const dot = name.indexOf('.');
    const owner = dot === -1 ? null : name.slice(0, dot);
    const table = dot === -1 ? name : name.slice(dot + 1);
    const conn = await acquire(this.pool, this.settings);
    try {
      const res = await conn.execute(
        COLUMNS_SQL,
        { owner, tbl: table },
        { outFormat: oracledb().OUT_FORMAT_OBJECT },
      );
      const rows = (res.rows ?? []) as {
        OWNER: string;
        TABLE_NAME: string;
        COLUMN_NAME: string;
        DATA_TYPE: string;
        VIRTUAL_COLUMN: string;
      }[];
      // The exact spelling wins over the upper-cased one.
      const exact = rows.filter((r) => r.TABLE_NAME === table && (owner === null || r.OWNER === owner));
      const chosen = exact.length ? exact : rows;
      const first = chosen[0];
      if (!first) return null;
      const mine = chosen.filter((r) => r.OWNER === first.OWNER && r.TABLE_NAME === first.TABLE_NAME);
      return {
        sqlName:
          owner === null
            ? dialect.quoteIdent(first.TABLE_NAME)
            : `${dialect.quoteIdent(first.OWNER)}.${dialect.quoteIdent(first.TABLE_NAME)}`,
        columns: mine.map((r) => ({
          name: r.COLUMN_NAME,
          type: r.DATA_TYPE,
          virtual: r.VIRTUAL_COLUMN === 'YES',
        })),
      };
    } catch (e) {
      throw toProviderError(e, this.settings, 'query');
    } finally {
      await conn.close().catch(() => undefined);
    }
  }
}

/**
 * A table's columns, the owner defaulting to the session's schema; names as written or upper-cased
 * (how Oracle stores an unquoted name).
 */
export const COLUMNS_SQL = `SELECT owner AS "OWNER", table_name AS "TABLE_NAME", column_name AS "COLUMN_NAME", data_type AS "DATA_TYPE", virtual_column AS "VIRTUAL_COLUMN"
  FROM all_tab_cols
 WHERE owner IN (NVL(:owner, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA')), UPPER(NVL(:owner, SYS_CONTEXT('USERENV', 'CURRENT_SCHEMA'))))
   AND table_name IN (:tbl, UPPER(:tbl))
   AND hidden_column = 'NO'
 ORDER BY owner, table_name, column_id`;

function itemOf(record: LoadRecord, index: number, op: Operation, key: string | undefined): Item {
  const row: Record<string, unknown> = op === 'delete' ? {} : { ...record.fields };
  const own = key === undefined || op === 'delete' ? undefined : record.fields?.[key];
  const keyValue = own === undefined || own === null ? record.key : own;
  if (key !== undefined && op !== 'delete') row[key] = keyValue;
  return { index, key: keyValue, row };
}

/** A column by its stored name, else by a case-insensitive match. */
function findColumn(info: TableInfo, name: string): OracleColumn | undefined {
  const exact = info.columns.find((c) => c.name === name);
  if (exact) return exact;
  const matches = info.columns.filter((c) => c.name.toLowerCase() === name.toLowerCase());
  return matches.length === 1 ? matches[0] : undefined;
}

/** The statement's columns, resolved in the dictionary: the key first, then every field some record sets. */
function columnsOf(
  items: readonly Item[],
  op: Operation,
  key: string | undefined,
  info: TableInfo,
  table: string,
): (OracleColumn & { readonly field: string })[] {
  const fields = new Set<string>(key === undefined ? [] : [key]);
  if (op !== 'delete') for (const it of items) for (const name of Object.keys(it.row)) fields.add(name);
  const missing = [...fields].filter((f) => !findColumn(info, f));
  if (missing.length)
    throw new ProviderError(`table ${table} has no column ${missing.join(', ')}`, {
      code: 'column_not_found',
      retryable: false,
      hint: 'add the column or fix the mapping; `backflow plan` checks this',
    });
  return [...fields].map((field) => ({ ...findColumn(info, field)!, field }));
}

function rowsOf(
  items: readonly Item[],
  op: Operation,
  key: string | undefined,
  columns: readonly (OracleColumn & { readonly field: string })[],
): unknown[][] {
  if (op === 'delete') return items.map((it) => [it.key]);
  return items.map((it) => columns.map((c) => (c.field === key ? it.key : it.row[c.field])));
}

async function executeMany(
  conn: OracleConnection,
  statement: OracleStatement,
): Promise<readonly OracleBatchError[]> {
  const db = oracledb();
  const types = {
    number: db.DB_TYPE_NUMBER,
    string: db.DB_TYPE_VARCHAR,
    clob: db.DB_TYPE_CLOB,
    raw: db.DB_TYPE_RAW,
    blob: db.DB_TYPE_BLOB,
  };
  const res = await conn.executeMany(statement.sql, statement.binds, {
    autoCommit: false,
    batchErrors: true,
    bindDefs: statement.defs.map((d) => ({
      type: types[d.kind],
      ...(d.maxSize ? { maxSize: d.maxSize } : {}),
    })),
  });
  return res.batchErrors ?? [];
}

// --- SQL and binds (pure: pinned by test/unit/sql-oracle.test.ts) -----------------------------

/** What the statement builders need: the resolved table, its key column, the columns (key first) and the rows. */
export interface OracleBatch {
  /** Already quoted (`"CRM"`, `"APP"."CRM"`): resolved from the dictionary. */
  readonly table: string;
  readonly key: string;
  readonly columns: readonly OracleColumn[];
  readonly rows: readonly (readonly unknown[])[];
}

/** The statement for one operation, or null when there is nothing to write (an update of the key alone). */
export function buildStatement(op: Operation, batch: OracleBatch): OracleStatement | null {
  const cols = batch.columns.map((c) => dialect.quoteIdent(c.name));
  const k = dialect.quoteIdent(batch.key);
  const rest = cols.filter((c) => c !== k);
  const ph = (i: number) => dialect.placeholder(i);
  switch (op) {
    case 'insert':
      return withBinds(
        `INSERT INTO ${batch.table} (${cols.join(', ')}) VALUES (${cols.map((_, i) => ph(i + 1)).join(', ')})`,
        batch.columns,
        batch.rows,
      );
    case 'upsert': {
      const update = rest.length
        ? ` WHEN MATCHED THEN UPDATE SET ${rest.map((c) => `t.${c} = s.${c}`).join(', ')}`
        : '';
      return withBinds(
        `MERGE INTO ${batch.table} t USING (SELECT ${cols.map((c, i) => `${ph(i + 1)} AS ${c}`).join(', ')} FROM DUAL) s` +
          ` ON (t.${k} = s.${k})${update}` +
          ` WHEN NOT MATCHED THEN INSERT (${cols.join(', ')}) VALUES (${cols.map((c) => `s.${c}`).join(', ')})`,
        batch.columns,
        batch.rows,
      );
    }
    case 'update': {
      if (!rest.length) return null;
      // The key binds last: the SET values first, in column order.
      const keyAt = cols.indexOf(k);
      const order = [...cols.keys()].filter((i) => i !== keyAt).concat(keyAt);
      return withBinds(
        `UPDATE ${batch.table} SET ${rest.map((c, i) => `${c} = ${ph(i + 1)}`).join(', ')} WHERE ${k} = ${ph(rest.length + 1)}`,
        order.map((i) => batch.columns[i]!),
        batch.rows.map((r) => order.map((i) => r[i])),
      );
    }
    case 'delete':
      return withBinds(
        `DELETE FROM ${batch.table} WHERE ${k} = ${ph(1)}`,
        batch.columns.slice(0, 1),
        batch.rows.map((r) => [r[0]]),
      );
  }
}

function withBinds(
  sql: string,
  columns: readonly OracleColumn[],
  rows: readonly (readonly unknown[])[],
): OracleStatement {
  const plans = columns.map((c, i) =>
    bindFor(
      c,
      rows.map((r) => r[i]),
    ),
  );
  return { sql, defs: plans.map((p) => p.def), binds: rows.map((_, r) => plans.map((p) => p.values[r])) };
}

const NUMERIC = /^(NUMBER|FLOAT|BINARY_FLOAT|BINARY_DOUBLE|INTEGER)/;
const ISO_WITH_ZONE = /^\d{4}-\d\d-\d\dT\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)$/;
const MAX_VARCHAR_BIND = 32_767;

/**
 * The bind type of one column across all rows (executeMany takes one type per position) and each
 * row's value converted for it: numbers stay numbers when every value of a numeric column is one;
 * bytes bind as RAW (BLOB past 32767 bytes); everything else binds as text (CLOB for a CLOB column
 * or past 32767 bytes)
 * that the column's type converts: objects as JSON, booleans as 1/0, instants in the session's
 * ISO formats (UTC wall time for DATE and TIMESTAMP, with the offset for WITH TIME ZONE).
 */
export function bindFor(
  column: Pick<OracleColumn, 'type'>,
  values: readonly unknown[],
): { def: BindDef; values: unknown[] } {
  const present = values.filter((v) => v !== null && v !== undefined);
  if (
    /^(BLOB|RAW|LONG RAW)/.test(column.type) ||
    (present.length > 0 && present.every((v) => v instanceof Uint8Array))
  ) {
    const bufs = values.map((v) => (v === null || v === undefined ? null : toBuffer(v)));
    const max = Math.max(1, ...bufs.map((b) => b?.length ?? 0));
    return { def: max > MAX_VARCHAR_BIND ? { kind: 'blob' } : { kind: 'raw', maxSize: max }, values: bufs };
  }
  const numbers = values.map((v) => (typeof v === 'boolean' ? (v ? 1 : 0) : v));
  if (
    NUMERIC.test(column.type) &&
    numbers.every((v) => v === null || v === undefined || (typeof v === 'number' && Number.isFinite(v)))
  ) {
    return { def: { kind: 'number' }, values: numbers.map((v) => v ?? null) };
  }
  const texts = values.map((v) => textFor(v, column.type));
  // A CLOB column always takes a CLOB bind: a VARCHAR2 bind past 4000 bytes fails in a SQL expression.
  if (/^N?CLOB/.test(column.type)) return { def: { kind: 'clob' }, values: texts };
  const max = Math.max(1, ...texts.map((t) => (t === null ? 0 : Buffer.byteLength(t))));
  return { def: max > MAX_VARCHAR_BIND ? { kind: 'clob' } : { kind: 'string', maxSize: max }, values: texts };
}

function toBuffer(v: unknown): Buffer {
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength);
  return Buffer.from(typeof v === 'string' ? v : JSON.stringify(v), 'utf8');
}

function textFor(v: unknown, type: string): string | null {
  if (v === null || v === undefined) return null;
  if (typeof v === 'number') return Number.isFinite(v) ? String(v) : null;
  if (typeof v === 'bigint') return v.toString();
  if (typeof v === 'boolean') return v ? '1' : '0';
  const instant =
    v instanceof Date
      ? v.getTime()
      : typeof v === 'string' && ISO_WITH_ZONE.test(v)
        ? Date.parse(v)
        : undefined;
  if (instant !== undefined && /^(DATE|TIMESTAMP)/.test(type)) {
    if (Number.isNaN(instant)) return null;
    const iso = new Date(instant).toISOString(); // 2024-01-02T03:04:05.123Z
    if (type === 'DATE') return iso.slice(0, 19);
    if (/WITH TIME ZONE/.test(type)) return `${iso.slice(0, 23)}000+00:00`;
    return `${iso.slice(0, 23)}000`;
  }
  if (v instanceof Date) return Number.isNaN(v.getTime()) ? null : v.toISOString();
  if (typeof v === 'string') return v;
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
}

// --- per-row errors -----------------------------------------------------------------------------

const REJECT_CODES: Readonly<Record<string, string>> = {
  'ORA-00001': 'unique_violation',
  'ORA-01400': 'not_null_violation',
  'ORA-01407': 'not_null_violation',
  'ORA-02290': 'check_violation',
  'ORA-02291': 'foreign_key_violation',
  'ORA-02292': 'foreign_key_violation',
  'ORA-12899': 'value_too_long',
  'ORA-01438': 'value_out_of_range',
  'ORA-01722': 'invalid_value',
  'ORA-01861': 'invalid_datetime',
  'ORA-01830': 'invalid_datetime',
  'ORA-01843': 'invalid_datetime',
  'ORA-01847': 'invalid_datetime',
  'ORA-01841': 'invalid_datetime',
  'ORA-30926': 'duplicate_key_in_batch',
};

function rejection(e: OracleBatchError): RecordResult {
  const code = e.code ?? /^(ORA-\d{5})/.exec(e.message)?.[1] ?? '';
  return {
    status: 'rejected',
    code: REJECT_CODES[code] ?? (/^ORA-20\d{3}$/.test(code) ? 'rejected_by_trigger' : 'invalid_value'),
    message: e.message.split('\n')[0] ?? e.message,
  };
}
