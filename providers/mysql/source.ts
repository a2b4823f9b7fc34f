import type mysql from 'mysql2';
import {
  type Column,
  type DescribeRequest,
  ProviderError,
  type Row,
  type SourceCapability,
  type StreamRequest,
} from '../sdk.js';
import { giveBack, type MysqlPool, toProviderError } from './connection.js';

/**
 * Reads a model: `describe` prepares the statement (the server returns its columns without running
 * it; errors point into the model's own text), `stream` reads the result row by row with
 * backpressure: while the caller works on a batch, the socket is paused once `batchSize` rows wait.
 * The query keeps running on the server meanwhile, so the server's own statement timeout
 * (max_statement_time, max_execution_time) would cap the whole sync; for a stream it is lifted and
 * statement_timeout bounds the time the server takes to produce each batch instead (KILL QUERY).
 */
export class MysqlSource implements SourceCapability {
  constructor(private readonly db: MysqlPool) {}

  async describe(req: DescribeRequest): Promise<readonly Column[]> {
    req.signal?.throwIfAborted();
    const conn = await this.db.acquire();
    const sql = req.sql.replace(/[\s;]+$/, '');
    let broken: unknown;
    try {
      const columns = await new Promise<mysql.FieldPacket[]>((resolve, reject) =>
        conn.prepare(sql, (err, statement) =>
          err ? reject(err) : resolve((statement as unknown as { columns: mysql.FieldPacket[] }).columns),
        ),
      );
      conn.unprepare(sql);
      return columns.map((f) => ({ name: f.name, type: typeName(f) }));
    } catch (e) {
      broken = e;
      throw toProviderError(e, this.db.settings.where, 'query');
    } finally {
      giveBack(conn, broken);
    }
  }

  async *stream(req: StreamRequest): AsyncIterable<readonly Row[]> {
    const size = Math.max(1, Math.floor(req.batchSize));
    req.signal?.throwIfAborted();
    const conn = await this.db.acquire();
    const timeoutMs = this.db.settings.statementTimeoutMs;
    let timedOut = false;
    let timer: NodeJS.Timeout | undefined;
    // statement_timeout, per batch: the server gets that long to produce the next batchSize rows.
    const arm = () => {
      if (timeoutMs === undefined) return;
      timer = setTimeout(() => {
        timedOut = true;
        this.db.killQuery(conn.threadId).catch(() => undefined);
      }, timeoutMs);
    };
    const disarm = () => clearTimeout(timer);
    let finished = false;
    let broken: unknown;
    try {
      await this.db.lift(conn);
      const rows = conn.query({ sql: req.sql }).stream({ highWaterMark: size });
      const onAbort = () => rows.destroy(req.signal?.reason as Error);
      req.signal?.addEventListener('abort', onAbort, { once: true });
      // A streaming query has no callback, so mysql2 reports a lost connection on the connection only.
      const onLost = (e: Error) => rows.destroy(e);
      conn.on('error', onLost);
      try {
        let batch: Row[] = [];
        arm();
        for await (const row of rows as AsyncIterable<Row>) {
          batch.push(row);
          if (batch.length === size) {
            disarm();
            yield batch;
            batch = [];
            arm();
          }
        }
        disarm();
        // A killed SLEEP() or BENCHMARK() ends without an error: the rows are still not the query's.
        if (timedOut) throw new Error('interrupted by statement_timeout');
        if (batch.length) yield batch;
        finished = true;
      } finally {
        disarm();
        req.signal?.removeEventListener('abort', onAbort);
        conn.off('error', onLost);
      }
    } catch (e) {
      broken = e;
      if (req.signal?.aborted) throw req.signal.reason;
      if (timedOut)
        throw new ProviderError(
          `MySQL at ${this.db.settings.where}: the query took longer than statement_timeout (${timeoutMs} ms) to return ${size} rows`,
          {
            code: 'statement_timeout',
            retryable: true,
            hint: 'the query ran longer than statement_timeout: make it faster or raise statement_timeout',
            cause: e,
          },
        );
      throw toProviderError(e, this.db.settings.where, 'query');
    } finally {
      if (finished || broken !== undefined) giveBack(conn, broken);
      else hardClose(conn); // stopped early: the rest of the result is still on its way
    }
  }
}

/**
 * Drops a connection in the middle of a result. `destroy()` alone only half-closes the socket and
 * the server would go on sending every remaining row.
 */
function hardClose(conn: mysql.PoolConnection): void {
  conn.destroy();
  (conn as unknown as { stream?: { destroy(): void } }).stream?.destroy();
}

const TYPE_NAMES: Readonly<Record<number, string>> = {
  0: 'decimal',
  1: 'tinyint',
  2: 'smallint',
  3: 'int',
  4: 'float',
  5: 'double',
  6: 'null',
  7: 'timestamp',
  8: 'bigint',
  9: 'mediumint',
  10: 'date',
  11: 'time',
  12: 'datetime',
  13: 'year',
  14: 'date',
  15: 'varchar',
  16: 'bit',
  245: 'json',
  246: 'decimal',
  247: 'enum',
  248: 'set',
  255: 'geometry',
};
const BINARY_CHARSET = 63;
const UNSIGNED_FLAG = 32;
const ENUM_FLAG = 256;
const SET_FLAG = 2048;

/** The column's type as MySQL names it, lower case (`bigint unsigned`, `json`, `varchar`, `blob`). */
export function typeName(f: mysql.FieldPacket): string {
  if (f.extendedFormat === 'json') return 'json';
  if (f.extendedTypeName) return f.extendedTypeName.toLowerCase();
  const type = f.columnType ?? f.type ?? -1;
  const flags = typeof f.flags === 'number' ? f.flags : 0;
  const binary = f.characterSet === BINARY_CHARSET;
  let name: string;
  if (type >= 249 && type <= 252) name = binary ? 'blob' : 'text';
  else if (type === 253) name = binary ? 'varbinary' : 'varchar';
  else if (type === 254)
    name = flags & ENUM_FLAG ? 'enum' : flags & SET_FLAG ? 'set' : binary ? 'binary' : 'char';
  else name = TYPE_NAMES[type] ?? `type ${type}`;
  return flags & UNSIGNED_FLAG && /int|decimal|float|double/.test(name) ? `${name} unsigned` : name;
}
