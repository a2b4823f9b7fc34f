import { manifests } from '../manifests.js';
import type { ExecuteRequest, OpenRequest, Provider, Row, Session, SqlExecutor } from '../sdk.js';
import {
  connectPool,
  type MssqlPool,
  type MssqlSettings,
  parseMssqlSettings,
  request,
  toProviderError,
} from './connection.js';
import { MssqlDestination } from './destination.js';
import { MssqlSource, plainRow } from './source.js';

/**
 * Segment connector SQL: the text goes to the server as one T-SQL batch, so one call may hold
 * several statements (each runs in its own implicit transaction unless the text opens one).
 */
class MssqlExecutor implements SqlExecutor {
  constructor(
    private readonly pool: MssqlPool,
    private readonly settings: MssqlSettings,
  ) {}

  async execute(req: ExecuteRequest): Promise<{ readonly rowsAffected?: number }> {
    const res = await this.run(req);
    return res.rowsAffected.length ? { rowsAffected: res.rowsAffected.reduce((a, b) => a + b, 0) } : {};
  }

  async query(req: ExecuteRequest): Promise<readonly Row[]> {
    const res = await this.run(req);
    return (res.recordset ?? []).map(plainRow);
  }

  private async run(req: ExecuteRequest) {
    req.signal?.throwIfAborted();
    const r = request(this.pool);
    const onAbort = () => r.cancel();
    req.signal?.addEventListener('abort', onAbort, { once: true });
    try {
      return await r.query(req.sql);
    } catch (e) {
      if (req.signal?.aborted) throw req.signal.reason;
      throw toProviderError(e, this.settings, 'query');
    } finally {
      req.signal?.removeEventListener('abort', onAbort);
    }
  }
}

/**
 * `type: mssql`: a model source, a destination (MERGE upserts, VALUES-list inserts and updates,
 * IN-list deletes) and a segment connector, over `mssql`/tedious (pure JavaScript, no native
 * client). Opening connects a small pool, so a wrong address, login or database fails at once.
 */
export const provider: Provider = {
  manifest: manifests.mssql,
  async open(req: OpenRequest): Promise<Session> {
    const settings = parseMssqlSettings(req.settings, req.address);
    req.signal?.throwIfAborted();
    const pool = await connectPool(settings);
    return {
      source: new MssqlSource(pool, settings),
      destination: new MssqlDestination(pool, settings),
      sql: new MssqlExecutor(pool, settings),
      close: () => pool.close(),
    };
  },
};

export { type MssqlSettings, parseMssqlSettings } from './connection.js';
export { MssqlDestination } from './destination.js';
export { MssqlSource } from './source.js';
