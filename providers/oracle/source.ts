import type { Column, DescribeRequest, Row, SourceCapability, StreamRequest } from '../sdk.js';
import {
  acquire,
  type OracleColumnMeta,
  type OracleConnection,
  type OraclePool,
  type OracleSettings,
  oracledb,
  toProviderError,
} from './connection.js';

/**
 * Reads a model: `describe` runs the query wrapped in `WHERE 1 = 0` (parsed and planned, no rows)
 * and reads the column metadata; `stream` fetches through a result set, `batchSize` rows per round
 * trip. Dates and timestamps come out as ISO-8601 text (the session formats them), CLOBs as text,
 * NUMBERs wider than 15 digits as strings (a JavaScript number would round them).
 */
export class OracleSource implements SourceCapability {
  constructor(
    private readonly pool: OraclePool,
    private readonly settings: OracleSettings,
  ) {}

  async describe(req: DescribeRequest): Promise<readonly Column[]> {
    req.signal?.throwIfAborted();
    const conn = await acquire(this.pool, this.settings);
    try {
      const res = await conn.execute(describeSql(req.sql), [], {
        maxRows: 1,
        outFormat: oracledb().OUT_FORMAT_OBJECT,
      });
      return (res.metaData ?? []).map((m) => ({
        name: m.name,
        type: (m.dbTypeName ?? 'unknown').toLowerCase(),
      }));
    } catch (e) {
      throw toProviderError(e, this.settings, 'query');
    } finally {
      await conn.close().catch(() => undefined);
    }
  }

  async *stream(req: StreamRequest): AsyncIterable<readonly Row[]> {
    const size = Math.max(1, Math.floor(req.batchSize));
    req.signal?.throwIfAborted();
    const conn = await acquire(this.pool, this.settings);
    const onAbort = () => void conn.break().catch(() => undefined);
    req.signal?.addEventListener('abort', onAbort, { once: true });
    let rs: Awaited<ReturnType<OracleConnection['execute']>>['resultSet'];
    try {
      const res = await conn.execute(trimStatement(req.sql), [], {
        resultSet: true,
        outFormat: oracledb().OUT_FORMAT_OBJECT,
        fetchArraySize: Math.min(size, 10_000),
        fetchTypeHandler,
      });
      rs = res.resultSet;
      if (!rs) return;
      for (;;) {
        const rows = await rs.getRows(size);
        if (rows.length === 0) break;
        yield rows;
        if (rows.length < size) break;
      }
    } catch (e) {
      if (req.signal?.aborted) throw req.signal.reason;
      throw toProviderError(e, this.settings, 'query');
    } finally {
      req.signal?.removeEventListener('abort', onAbort);
      await rs?.close().catch(() => undefined);
      await conn.close().catch(() => undefined);
    }
  }
}

/** The model wrapped so that it is parsed and described but returns no row. */
export function describeSql(sql: string): string {
  return `SELECT * FROM (\n${trimStatement(sql)}\n) WHERE 1 = 0`;
}

/** Oracle refuses a trailing `;` on a SQL statement. */
export function trimStatement(sql: string): string {
  return sql.replace(/[\s;]+$/, '');
}

/**
 * Per-column fetch types: dates and timestamps as text in the session's ISO formats, LOBs as text
 * or bytes, NUMBER as a string when it may hold more digits than a double keeps exactly.
 */
export function fetchTypeHandler(meta: OracleColumnMeta): { type: unknown } | undefined {
  const db = oracledb();
  switch (meta.dbType) {
    case db.DB_TYPE_DATE:
    case db.DB_TYPE_TIMESTAMP:
    case db.DB_TYPE_TIMESTAMP_TZ:
    case db.DB_TYPE_TIMESTAMP_LTZ:
    case db.DB_TYPE_CLOB:
    case db.DB_TYPE_NCLOB:
      return { type: db.STRING };
    case db.DB_TYPE_BLOB:
      return { type: db.BUFFER };
    case db.DB_TYPE_NUMBER:
      if ((meta.precision ?? 0) > 15) return { type: db.STRING };
      return undefined;
    default:
      return undefined;
  }
}
