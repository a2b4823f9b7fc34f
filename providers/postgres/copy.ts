import { createHash } from 'node:crypto';
import type pg from 'pg';
import { from as copyFrom } from 'pg-copy-streams';
import { jsonSourceText } from '../json.js';
import { dialect } from './dialect.js';

/**
 * The bulk path of the postgres destination: rows as COPY text, the cheapest form for the server to
 * parse (about a third faster than one JSON parameter per batch on a 1M-row upsert).
 */

/** The value of a cell: row `row`, column `column` (indexes into the batch and its columns). */
export type CellValue = (row: number, column: number) => unknown;

/** Below this many rows a single json_populate_recordset statement is as fast as COPY. */
const COPY_MIN_ROWS = 50;
/**
 * The bulk path for upsert and insert: the rows travel as COPY text (the cheapest form for the
 * server to parse). insert: COPY straight into the table. upsert: COPY into a temp table of the
 * same column types, then one INSERT … SELECT … ON CONFLICT, in one transaction. Returns false when
 * a value or a constraint failed (nothing was written): the caller then isolates the failing
 * records statement by statement.
 */
export async function copyBatch(req: {
  readonly client: pg.PoolClient;
  readonly op: 'upsert' | 'insert';
  readonly table: string;
  readonly columns: readonly string[];
  /** Column name → type as format_type writes it. */
  readonly types: ReadonlyMap<string, string>;
  readonly rowCount: number;
  readonly value: CellValue;
  /**
   * Row `r` as its source's own COPY text line (see LoadRecord.sourceText), or undefined. When every
   * row has one, the batch goes as those lines and no cell is encoded.
   */
  readonly sourceLine?: CopyBatchLine;
  /** The INSERT … SELECT … ON CONFLICT reading from `source` (upsert only). */
  readonly upsertFrom: (source: string) => string;
  /** True for an error one record can cause: the batch is then handed back. */
  readonly isRecordError: (e: unknown) => boolean;
  /**
   * upsert of records that are all new to the snapshot: try a plain COPY into the table first (no
   * staging, no ON CONFLICT: less than half the server's work); when a key is already there after all,
   * `onConflict` is called and the batch goes the upsert way.
   */
  readonly insertFirst?: { readonly onConflict: () => void };
}): Promise<boolean> {
  const { client, op, table, columns } = req;
  if (req.rowCount < COPY_MIN_ROWS) return false;
  const t = dialect.quoteTable(table);
  const cols = columns.map((c) => dialect.quoteIdent(c)).join(', ');
  const data =
    sourceLines(req.rowCount, req.sourceLine) ??
    copyData(
      req.rowCount,
      req.value,
      columns.map((c) => req.types.get(c) ?? 'text'),
    );
  // upsert: a temp table with the statement's column types, emptied by every commit. Created (if
  // missing) inside each batch's transaction, so a pooler that hands out another server session
  // (PgBouncer in transaction mode) still finds it.
  const temp = `backflow_load_${createHash('sha1')
    .update(JSON.stringify([table, columns]))
    .digest('hex')
    .slice(0, 16)}`;
  const target = op === 'upsert' ? `pg_temp.${dialect.quoteIdent(temp)}` : t;
  if (op === 'upsert' && req.insertFirst) {
    await client.query('BEGIN');
    try {
      await copyIn(client, `COPY ${t} (${cols}) FROM STDIN`, data);
      await client.query('COMMIT');
      return true;
    } catch (e) {
      await client.query('ROLLBACK').catch(() => undefined);
      if (!req.isRecordError(e)) throw e;
      if ((e as { code?: unknown }).code === '23505') req.insertFirst.onConflict();
    }
  }
  await client.query('BEGIN');
  try {
    if (op === 'upsert')
      await client.query(
        `CREATE TEMP TABLE IF NOT EXISTS ${dialect.quoteIdent(temp)} ON COMMIT DELETE ROWS AS SELECT ${cols} FROM ${t} WITH NO DATA`,
      );
    await copyIn(client, `COPY ${target} (${cols}) FROM STDIN`, data);
    if (op === 'upsert') await client.query(req.upsertFrom(target));
    await client.query('COMMIT');
    return true;
  } catch (e) {
    await client.query('ROLLBACK').catch(() => undefined);
    if (req.isRecordError(e)) return false;
    throw e;
  }
}

/** Every row's source line, back to back; undefined when some row has none. */
function sourceLines(rowCount: number, line: CopyBatchLine | undefined): Buffer | undefined {
  if (!line) return undefined;
  const lines: Uint8Array[] = new Array(rowCount);
  for (let r = 0; r < rowCount; r++) {
    const l = line(r);
    if (!l) return undefined;
    lines[r] = l;
  }
  return Buffer.concat(lines);
}

type CopyBatchLine = (row: number) => Uint8Array | undefined;

/**
 * The type a column must have for a source's COPY text to go into it as it is, or -1. The source's
 * text is the type's output text, which the same type's input function reads back to the same value:
 * true of every built-in type (OIDs below 10000; a user type's OID differs between databases) given
 * what backflow's sessions share (UTF-8, DateStyle ISO), except money (lc_monetary) and interval
 * (IntervalStyle), whose text depends on settings a server may set otherwise.
 */
export function copyTextType(oid: number | undefined): number {
  if (oid === undefined || !(oid > 0 && oid < 10000) || SETTING_DEPENDENT.has(oid)) return -1;
  return oid;
}

/** money, money[], interval, interval[]. */
const SETTING_DEPENDENT: ReadonlySet<number> = new Set([790, 791, 1186, 1187]);

function copyIn(client: pg.PoolClient, sql: string, data: string | Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    const stream = client.query(copyFrom(sql));
    stream.on('finish', () => resolve());
    stream.on('error', reject);
    stream.end(data);
  });
}

/** The cells as COPY text format: tab-separated, `\N` for NULL, backslash escapes. */
export function copyData(rowCount: number, value: CellValue, types: readonly string[]): string {
  const encoders = types.map(encoderFor);
  let out = '';
  for (let r = 0; r < rowCount; r++) {
    for (let c = 0; c < encoders.length; c++) {
      if (c > 0) out += '\t';
      const v = value(r, c);
      const text = v === null || v === undefined ? null : encoders[c]!(v);
      out +=
        text === null
          ? '\\N'
          : COPY_ESCAPE.test(text)
            ? text.replace(COPY_ESCAPES, (ch) => COPY_ESCAPE_MAP[ch]!)
            : text;
    }
    out += '\n';
  }
  return out;
}

const COPY_ESCAPE = /[\\\n\r\t]/;
const COPY_ESCAPES = /[\\\n\r\t]/g;
const COPY_ESCAPE_MAP: Readonly<Record<string, string>> = {
  '\\': '\\\\',
  '\n': '\\n',
  '\r': '\\r',
  '\t': '\\t',
};

type Encoder = (value: NonNullable<unknown>) => string;

/**
 * How a value becomes the text a column's input function reads, chosen once per column. The same
 * conventions as the statement path: JSON text for a json/jsonb column is the JSON itself (the
 * server validates it), any other value there is JSON-encoded; a JS array in an array column is an
 * array literal; bytes are bytea hex; a bigint its digits; a Date its ISO text.
 */
function encoderFor(type: string): Encoder {
  if (type === 'json' || type === 'jsonb')
    return (v) =>
      typeof v === 'string' && /^\s*[[{]/.test(v)
        ? v
        : ((typeof v === 'object' ? jsonSourceText(v) : undefined) ?? jsonText(v));
  if (type === 'bytea')
    return (v) =>
      v instanceof Uint8Array
        ? `\\x${Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('hex')}`
        : plain(v);
  if (type.endsWith('[]')) return (v) => (Array.isArray(v) ? arrayLiteral(v) : plain(v));
  return plain;
}

function plain(v: NonNullable<unknown>): string {
  switch (typeof v) {
    case 'string':
      return v;
    case 'number':
    case 'bigint':
      return String(v);
    case 'boolean':
      return v ? 't' : 'f';
    default:
      if (v instanceof Date) return v.toISOString();
      if (v instanceof Uint8Array)
        return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
      return jsonText(v);
  }
}

/** JSON text; a bigint (which JSON.stringify refuses) as its digits in a string. */
function jsonText(v: unknown): string {
  if (typeof v === 'bigint') return JSON.stringify(v.toString());
  try {
    return JSON.stringify(v);
  } catch (e) {
    if (!(e instanceof TypeError)) throw e;
    return JSON.stringify(v, (_k, x: unknown) => (typeof x === 'bigint' ? x.toString() : x));
  }
}

/** A JS array as a PostgreSQL array literal: every element quoted, NULL as NULL, nested arrays nested. */
function arrayLiteral(values: readonly unknown[]): string {
  const parts = values.map((v) => {
    if (v === null || v === undefined) return 'NULL';
    if (Array.isArray(v)) return arrayLiteral(v);
    return `"${plain(v).replace(/[\\"]/g, '\\$&')}"`;
  });
  return `{${parts.join(',')}}`;
}
