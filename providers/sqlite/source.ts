import type { Statement } from 'better-sqlite3';
import type { Column, DescribeRequest, Row, SourceCapability, StreamRequest } from '../sdk.js';
import { ProviderError } from '../sdk.js';
import { type SqliteConnection, toProviderError } from './connection.js';

/**
 * Reads a model. `describe` prepares the query and reads its declared column types (nothing
 * runs); `stream` walks SQLite's cursor `batchSize` rows at a time, returning to the event loop
 * between batches, so memory holds one batch however large the model.
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
  for (const name in row) {
    const v = row[name];
    if (typeof v === 'bigint') row[name] = safe(v) ? Number(v) : v.toString();
    else if (v instanceof Uint8Array)
      row[name] = Buffer.from(v.buffer, v.byteOffset, v.byteLength).toString('base64');
  }
  return row;
}

const MAX = BigInt(Number.MAX_SAFE_INTEGER);
const MIN = -MAX;

function safe(v: bigint): boolean {
  return v <= MAX && v >= MIN;
}
