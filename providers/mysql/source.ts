import type mysql from 'mysql2';
import type { Column, DescribeRequest, Row, SourceCapability, StreamRequest } from '../sdk.js';
import { giveBack, type MysqlPool, toProviderError } from './connection.js';

/**
 * Reads a model: `describe` prepares the statement (the server returns its columns without running
 * it; errors point into the model's own text), `stream` reads the result row by row with
 * backpressure: while the caller works on a batch, the socket is paused once `batchSize` rows wait.
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
    const rows = conn.query({ sql: req.sql }).stream({ highWaterMark: size });
    const onAbort = () => rows.destroy(req.signal?.reason as Error);
    req.signal?.addEventListener('abort', onAbort, { once: true });
    // A streaming query has no callback, so mysql2 reports a lost connection on the connection only.
    const onLost = (e: Error) => rows.destroy(e);
    conn.on('error', onLost);
    let finished = false;
    let broken: unknown;
    try {
      let batch: Row[] = [];
      for await (const row of rows as AsyncIterable<Row>) {
        batch.push(row);
        if (batch.length === size) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length) yield batch;
      finished = true;
    } catch (e) {
      broken = e;
      if (req.signal?.aborted) throw req.signal.reason;
      throw toProviderError(e, this.db.settings.where, 'query');
    } finally {
      req.signal?.removeEventListener('abort', onAbort);
      conn.off('error', onLost);
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
