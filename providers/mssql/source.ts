import type { Column, DescribeRequest, Row, SourceCapability, StreamRequest } from '../sdk.js';
import { type MssqlPool, type MssqlSettings, request, toProviderError } from './connection.js';

/**
 * Reads a model: `describe` asks `sp_describe_first_result_set`, which analyses the query without
 * running it; `stream` reads the result with backpressure (the driver pauses the TDS stream once
 * `batchSize` rows wait) and yields `batchSize` rows at a time. Instants come out as ISO-8601 UTC
 * text; bigint comes out as a string (the driver's choice), decimals as numbers.
 */
export class MssqlSource implements SourceCapability {
  constructor(
    private readonly pool: MssqlPool,
    private readonly settings: MssqlSettings,
  ) {}

  async describe(req: DescribeRequest): Promise<readonly Column[]> {
    req.signal?.throwIfAborted();
    try {
      const res = await request(this.pool, [trimStatement(req.sql)]).query(DESCRIBE_SQL);
      return (res.recordset ?? [])
        .filter((r) => !r.is_hidden)
        .map((r) => ({ name: String(r.name ?? ''), type: String(r.system_type_name ?? '').toLowerCase() }));
    } catch (e) {
      throw toProviderError(e, this.settings, 'query');
    }
  }

  async *stream(req: StreamRequest): AsyncIterable<readonly Row[]> {
    const size = Math.max(1, Math.floor(req.batchSize));
    req.signal?.throwIfAborted();
    const r = request(this.pool);
    const rows = r.toReadableStream({ highWaterMark: size });
    const onAbort = () => r.cancel();
    req.signal?.addEventListener('abort', onAbort, { once: true });
    let done = false;
    // The promise settles through the stream's events; observe it so it cannot go unhandled.
    r.query(req.sql).catch(() => undefined);
    try {
      let batch: Row[] = [];
      for await (const row of rows as AsyncIterable<Record<string, unknown>>) {
        batch.push(plainRow(row));
        if (batch.length === size) {
          yield batch;
          batch = [];
        }
      }
      if (batch.length) yield batch;
      done = true;
    } catch (e) {
      if (req.signal?.aborted) throw req.signal.reason;
      throw toProviderError(e, this.settings, 'query');
    } finally {
      req.signal?.removeEventListener('abort', onAbort);
      // Abandoned early: stop the server sending the rest; the connection goes back to the pool.
      if (!done) {
        r.cancel();
        rows.destroy();
      }
    }
  }
}

/** The server describes the first result set of `@tsql` without executing it. */
export const DESCRIBE_SQL = 'EXEC sp_describe_first_result_set @tsql = @p1';

/** A statement without trailing semicolons and whitespace. */
export function trimStatement(sql: string): string {
  return sql.replace(/[\s;]+$/, '');
}

/** A row with every Date as ISO-8601 text (UTC: the pool reads dates with useUTC). */
export function plainRow(row: Record<string, unknown>): Row {
  for (const [k, v] of Object.entries(row))
    if (v instanceof Date) row[k] = Number.isNaN(v.getTime()) ? null : v.toISOString();
  return row;
}
