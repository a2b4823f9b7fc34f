import type { Statement } from 'better-sqlite3';
import { fingerprint } from '../fingerprint.js';
import type { Column, DescribeRequest, RawRows, Row, SourceCapability, StreamRequest } from '../sdk.js';
import { ProviderError, setField } from '../sdk.js';
import { type SqliteConnection, toProviderError } from './connection.js';

/**
 * Reads a model. `describe` prepares the query and reads its declared column types (nothing
 * runs); `stream` walks SQLite's cursor `batchSize` rows at a time, returning to the event loop
 * between batches, so memory holds one batch however large the model. `streamRaw` reads the same
 * rows as value arrays, fingerprinted and decoded only on demand (SqliteRawRows).
 */
export class SqliteSource implements SourceCapability {
  constructor(private readonly conn: SqliteConnection) {}

  async describe(req: DescribeRequest): Promise<readonly Column[]> {
    req.signal?.throwIfAborted();
    const stmt = this.prepareQuery(req.sql);
    // SQLite knows a declared type only for plain table columns; an expression has none ('').
    return stmt.columns().map((c) => ({ name: c.name, type: (c.type ?? '').toLowerCase() }));
  }

  async *stream(req: StreamRequest): AsyncIterable<readonly Row[]> {
    req.signal?.throwIfAborted();
    const size = Math.max(1, Math.floor(req.batchSize));
    const stmt = this.prepareQuery(req.sql).safeIntegers(true);
    let rows: IterableIterator<unknown> | undefined;
    try {
      rows = stmt.iterate();
      let batch: Row[] = [];
      for (;;) {
        const next = rows.next();
        if (next.done) break;
        batch.push(decodeRow(next.value as Record<string, unknown>));
        if (batch.length < size) continue;
        yield batch;
        batch = [];
        // The cursor is synchronous: give timers, signals and other work their turn.
        await new Promise<void>((resolve) => setImmediate(resolve));
        req.signal?.throwIfAborted();
      }
      if (batch.length > 0) yield batch;
    } catch (e) {
      if (req.signal?.aborted) throw e;
      throw toProviderError(e, this.conn.where, 'the query');
    } finally {
      rows?.return?.();
    }
  }

  async *streamRaw(req: StreamRequest): AsyncIterable<RawRows> {
    req.signal?.throwIfAborted();
    const size = Math.max(1, Math.floor(req.batchSize));
    const stmt = this.prepareQuery(req.sql).safeIntegers(true).raw(true);
    const names = stmt.columns().map((c) => c.name);
    let rows: IterableIterator<unknown> | undefined;
    try {
      rows = stmt.iterate();
      let batch: unknown[][] = [];
      for (;;) {
        const next = rows.next();
        if (next.done) break;
        batch.push(next.value as unknown[]);
        if (batch.length < size) continue;
        yield new SqliteRawRows(names, batch);
        batch = [];
        await new Promise<void>((resolve) => setImmediate(resolve));
        req.signal?.throwIfAborted();
      }
      if (batch.length > 0) yield new SqliteRawRows(names, batch);
    } catch (e) {
      if (req.signal?.aborted) throw e;
      throw toProviderError(e, this.conn.where, 'the query');
    } finally {
      rows?.return?.();
    }
  }

  private prepareQuery(sql: string): Statement {
    let stmt: Statement;
    try {
      stmt = this.conn.db.prepare(sql);
    } catch (e) {
      throw toProviderError(e, this.conn.where, 'the query');
    }
    if (!stmt.reader) {
      throw new ProviderError(`${this.conn.where}: the query returns no rows (it is not a SELECT)`, {
        code: 'query_failed',
        retryable: false,
        hint: 'a model is a SELECT (or WITH … SELECT) query',
      });
    }
    return stmt;
  }
}

/**
 * Values as the engine wants them: integers exact (a number when safe, else its decimal text),
 * blobs as base64 text. SQLite has no JSON type, so JSON stays text for the engine to decode.
 */
export function decodeRow(row: Record<string, unknown>): Row {
  for (const name in row) row[name] = decodeValue(row[name]);
  return row;
}

function decodeValue(v: unknown): unknown {
  if (typeof v === 'bigint') return safe(v) ? Number(v) : v.toString();
  if (v instanceof Uint8Array) return Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  return v;
}

/**
 * A batch of rows as SQLite returned them (value arrays; integers as bigint, blobs as bytes). A row's
 * fingerprint hashes bytes that tell every value and storage class apart, each value followed by a
 * tab: NULL `N`; an integer `i` and its digits; a real `r` and its shortest text; text `t`, its length,
 * `:` and its UTF-8; a blob `x`, its length, `:` and its bytes. The lengths make it unambiguous with
 * no escaping. `pick` and `row` decode as `stream` does, a later column of a repeated name winning.
 */
export class SqliteRawRows implements RawRows {
  /** Column name → index of the last column of that name. */
  readonly #index: ReadonlyMap<string, number>;

  constructor(
    private readonly names: readonly string[],
    private readonly rows: readonly (readonly unknown[])[],
  ) {
    this.#index = new Map(names.map((n, i) => [n, i]));
  }

  get length(): number {
    return this.rows.length;
  }

  private values(i: number): readonly unknown[] {
    const v = this.rows[i];
    if (!v) throw new RangeError(`row ${i} is outside this batch of ${this.rows.length}`);
    return v;
  }

  fingerprint(i: number): string {
    const values = this.values(i);
    let need = 0;
    for (let c = 0; c < values.length; c++) {
      const v = values[c];
      need += 32 + (typeof v === 'string' ? 3 * v.length : v instanceof Uint8Array ? v.byteLength : 0);
    }
    if (need > scratch.length) scratch = Buffer.allocUnsafe(Math.max(need, 2 * scratch.length));
    const buf = scratch;
    let o = 0;
    for (let c = 0; c < values.length; c++) {
      const v = values[c];
      if (v === null || v === undefined)
        buf[o++] = 78; // N
      else if (typeof v === 'string') {
        o += buf.write(`t${v.length}:`, o, 'latin1');
        o += buf.write(v, o, 'utf8');
      } else if (typeof v === 'bigint') o += buf.write(`i${v}`, o, 'latin1');
      else if (typeof v === 'number') o += buf.write(`r${v}`, o, 'latin1');
      else if (v instanceof Uint8Array) {
        o += buf.write(`x${v.byteLength}:`, o, 'latin1');
        buf.set(v, o);
        o += v.byteLength;
      } else {
        const text = String(v);
        o += buf.write(`?${text.length}:${text}`, o, 'utf8');
      }
      buf[o++] = 9;
    }
    return fingerprint(buf, 0, o);
  }

  pick(i: number, columns: readonly string[]): Row {
    const values = this.values(i);
    const out: Record<string, unknown> = {};
    for (const name of columns) {
      const c = this.#index.get(name);
      if (c !== undefined) setField(out, name, decodeValue(values[c]));
    }
    return out;
  }

  row(i: number): Row {
    const values = this.values(i);
    const out: Record<string, unknown> = {};
    for (let c = 0; c < this.names.length; c++) setField(out, this.names[c]!, decodeValue(values[c]));
    return out;
  }
}

/** Where SqliteRawRows writes a row to fingerprint it (one row at a time; grows for a larger row). */
let scratch = Buffer.allocUnsafe(64 * 1024);

const MAX = BigInt(Number.MAX_SAFE_INTEGER);
const MIN = -MAX;

function safe(v: bigint): boolean {
  return v <= MAX && v >= MIN;
}
