import { manifests } from '../manifests.js';
import type { ExecuteRequest, OpenRequest, Provider, Row, Session, SqlExecutor } from '../sdk.js';
import { giveBack, MysqlPool, parseMysqlSettings, query, toProviderError } from './connection.js';
import { MysqlDestination } from './destination.js';
import { MysqlSource } from './source.js';

/**
 * Segment connector SQL. `execute` runs on a pool of its own with multipleStatements on (a
 * template may hold several statements); `query` runs one statement on the ordinary pool.
 */
class MysqlExecutor implements SqlExecutor {
  constructor(
    private readonly scripts: MysqlPool,
    private readonly reads: MysqlPool,
  ) {}

  async execute(req: ExecuteRequest): Promise<{ readonly rowsAffected?: number }> {
    const result = await this.run(this.scripts, req);
    const headers = Array.isArray(result) ? result : [result];
    let affected: number | undefined;
    for (const h of headers) {
      const n = (h as { affectedRows?: unknown } | null)?.affectedRows;
      if (typeof n === 'number') affected = (affected ?? 0) + n;
    }
    return affected === undefined ? {} : { rowsAffected: affected };
  }

  async query(req: ExecuteRequest): Promise<readonly Row[]> {
    const rows = await this.run(this.reads, req);
    return Array.isArray(rows) ? (rows as Row[]).map((r) => ({ ...r })) : [];
  }

  private async run(pool: MysqlPool, req: ExecuteRequest): Promise<unknown> {
    req.signal?.throwIfAborted();
    const conn = await pool.acquire();
    let broken: unknown;
    try {
      return await query(conn, req.sql);
    } catch (e) {
      broken = e;
      throw toProviderError(e, pool.settings.where, 'query');
    } finally {
      giveBack(conn, broken);
    }
  }
}

/**
 * `type: mysql` (MySQL and MariaDB): a model source (streamed with backpressure), a destination
 * (upsert, insert, update, delete, mirror) and a segment connector. Each role has its own small
 * pool, connected on first use; opening checks that the server answers and accepts the login.
 */
export const provider: Provider = {
  manifest: manifests.mysql,
  async open(req: OpenRequest): Promise<Session> {
    const settings = parseMysqlSettings(req.settings, req.address);
    const reads = new MysqlPool(settings, 'read');
    const writes = new MysqlPool(settings, 'write');
    const scripts = new MysqlPool(settings, 'script');
    const close = async () => {
      await Promise.all([reads.end(), writes.end(), scripts.end()]);
    };
    try {
      req.signal?.throwIfAborted();
      giveBack(await reads.acquire(), undefined);
    } catch (e) {
      await close();
      throw e;
    }
    return {
      source: new MysqlSource(reads),
      destination: new MysqlDestination(writes),
      sql: new MysqlExecutor(scripts, reads),
      close,
    };
  },
};

export { type MysqlSettings, parseMysqlSettings } from './connection.js';
export { MysqlDestination, mysqlDatetime } from './destination.js';
export { MysqlSource } from './source.js';
