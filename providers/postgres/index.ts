import type pg from 'pg';
import { manifests } from '../manifests.js';
import type { ExecuteRequest, OpenRequest, Provider, Row, Session, SqlExecutor } from '../sdk.js';
import {
  acquire,
  createPool,
  lostConnection,
  type PostgresSettings,
  parsePostgresSettings,
  toProviderError,
} from './connection.js';
import { PostgresDestination } from './destination.js';
import { PostgresSource } from './source.js';

/**
 * Segment connector SQL: the simple query protocol, so one call may hold several statements
 * (they run in one implicit transaction, as psql -c does).
 */
class PostgresExecutor implements SqlExecutor {
  constructor(
    private readonly pool: pg.Pool,
    private readonly settings: PostgresSettings,
  ) {}

  async execute(req: ExecuteRequest): Promise<{ readonly rowsAffected?: number }> {
    const results = await this.run(req);
    let affected: number | undefined;
    for (const r of results) if (typeof r.rowCount === 'number') affected = (affected ?? 0) + r.rowCount;
    return affected === undefined ? {} : { rowsAffected: affected };
  }

  async query(req: ExecuteRequest): Promise<readonly Row[]> {
    const results = await this.run(req);
    return results.at(-1)?.rows ?? [];
  }

  private async run(req: ExecuteRequest): Promise<pg.QueryResult[]> {
    req.signal?.throwIfAborted();
    const client = await acquire(this.pool, this.settings);
    let broken: unknown;
    try {
      // No parameters: pg sends a simple Query message, which allows several statements.
      const res = (await client.query(req.sql)) as pg.QueryResult | pg.QueryResult[];
      return Array.isArray(res) ? res : [res];
    } catch (e) {
      broken = e;
      throw toProviderError(e, this.settings.where, 'query');
    } finally {
      client.release(lostConnection(broken));
    }
  }
}

/**
 * `type: postgres`: a model source (server-side cursor), a destination (upsert, insert, update,
 * delete, mirror) and a segment connector. One small pool per session; opening checks that the
 * server answers and accepts the login, so a wrong URL fails at once with a hint.
 */
export const provider: Provider = {
  manifest: manifests.postgres,
  async open(req: OpenRequest): Promise<Session> {
    const settings = parsePostgresSettings(req.settings, req.address);
    const pool = createPool(settings);
    try {
      req.signal?.throwIfAborted();
      const client = await acquire(pool, settings);
      client.release();
    } catch (e) {
      await pool.end().catch(() => undefined);
      throw e;
    }
    return {
      source: new PostgresSource(pool, settings),
      destination: new PostgresDestination(pool, settings),
      sql: new PostgresExecutor(pool, settings),
      close: () => pool.end(),
    };
  },
};

export { type PostgresSettings, parsePostgresSettings, timestamptzToIso } from './connection.js';
export { PostgresDestination } from './destination.js';
export { PostgresSource } from './source.js';
