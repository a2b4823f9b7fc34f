import { manifests } from '../manifests.js';
import type { ExecuteRequest, OpenRequest, Provider, Row, Session, SqlExecutor } from '../sdk.js';
import {
  acquire,
  connectPool,
  type OraclePool,
  type OracleSettings,
  oracledb,
  parseOracleSettings,
  splitStatements,
  toProviderError,
} from './connection.js';
import { OracleDestination } from './destination.js';
import { fetchTypeHandler, OracleSource } from './source.js';

/**
 * Segment connector SQL. Oracle runs one statement per call, so the text is split at `;` outside
 * quotes and comments (a PL/SQL block stays whole); the statements run in order in one
 * transaction, committed when all succeed and rolled back when one fails.
 */
class OracleExecutor implements SqlExecutor {
  constructor(
    private readonly pool: OraclePool,
    private readonly settings: OracleSettings,
  ) {}

  async execute(req: ExecuteRequest): Promise<{ readonly rowsAffected?: number }> {
    const { affected } = await this.run(req);
    return affected === undefined ? {} : { rowsAffected: affected };
  }

  async query(req: ExecuteRequest): Promise<readonly Row[]> {
    return (await this.run(req)).rows;
  }

  private async run(req: ExecuteRequest): Promise<{ affected?: number; rows: Row[] }> {
    req.signal?.throwIfAborted();
    const conn = await acquire(this.pool, this.settings);
    const onAbort = () => void conn.break().catch(() => undefined);
    req.signal?.addEventListener('abort', onAbort, { once: true });
    let affected: number | undefined;
    let rows: Row[] = [];
    try {
      for (const sql of splitStatements(req.sql)) {
        req.signal?.throwIfAborted();
        const res = await conn.execute(sql, [], {
          outFormat: oracledb().OUT_FORMAT_OBJECT,
          fetchTypeHandler,
        });
        if (typeof res.rowsAffected === 'number') affected = (affected ?? 0) + res.rowsAffected;
        if (res.rows) rows = res.rows;
      }
      await conn.commit();
      return { ...(affected === undefined ? {} : { affected }), rows };
    } catch (e) {
      await conn.rollback().catch(() => undefined);
      if (req.signal?.aborted) throw req.signal.reason;
      throw toProviderError(e, this.settings, 'query');
    } finally {
      req.signal?.removeEventListener('abort', onAbort);
      await conn.close().catch(() => undefined);
    }
  }
}

/**
 * `type: oracle`: a model source, a destination (MERGE upserts; inserts, updates and deletes through
 * `executeMany` with per-row batch errors) and a segment connector, over node-oracledb in Thin
 * mode (pure JavaScript: no Instant Client). Opening takes one connection from a small pool, so a
 * wrong address, login or service fails at once with a hint.
 */
export const provider: Provider = {
  manifest: manifests.oracle,
  async open(req: OpenRequest): Promise<Session> {
    const settings = parseOracleSettings(req.settings, req.address);
    req.signal?.throwIfAborted();
    const pool = await connectPool(settings);
    return {
      source: new OracleSource(pool, settings),
      destination: new OracleDestination(pool, settings),
      sql: new OracleExecutor(pool, settings),
      close: () => pool.close(0),
    };
  },
};

export { type OracleSettings, parseOracleSettings, splitStatements } from './connection.js';
export { OracleDestination } from './destination.js';
export { OracleSource } from './source.js';
