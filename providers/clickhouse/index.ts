import type { ClickHouseClient } from '@clickhouse/client';
import { manifests } from '../manifests.js';
import type { ExecuteRequest, OpenRequest, Provider, Row, Session, SqlExecutor } from '../sdk.js';
import {
  type ClickhouseSettings,
  createClickhouseClient,
  parseClickhouseSettings,
  ping,
  querySettings,
  splitStatements,
  toProviderError,
} from './connection.js';
import { ClickhouseDestination } from './destination.js';
import { ClickhouseSource } from './source.js';

/**
 * Segment connector SQL. The HTTP interface takes one statement per request, so rendered text
 * holding several (`;` outside quotes and comments) runs statement by statement, in order; the
 * first failure stops the rest. ClickHouse has no transactions: earlier statements stay applied.
 */
class ClickhouseExecutor implements SqlExecutor {
  constructor(
    private readonly client: ClickHouseClient,
    private readonly settings: ClickhouseSettings,
  ) {}

  async execute(req: ExecuteRequest): Promise<{ readonly rowsAffected?: number }> {
    for (const sql of splitStatements(req.sql)) {
      req.signal?.throwIfAborted();
      try {
        await this.client.command({
          query: sql,
          clickhouse_settings: querySettings(this.settings),
          ...(req.signal ? { abort_signal: req.signal } : {}),
        });
      } catch (e) {
        if (req.signal?.aborted) throw e;
        throw toProviderError(e, this.settings, 'query');
      }
    }
    // The HTTP interface of older servers reports no affected-row count.
    return {};
  }

  async query(req: ExecuteRequest): Promise<readonly Row[]> {
    const statements = splitStatements(req.sql);
    const last = statements.pop();
    if (statements.length) await this.execute({ ...req, sql: statements.join(';\n') });
    if (last === undefined) return [];
    try {
      const rs = await this.client.query({
        query: last,
        format: 'JSONEachRow',
        clickhouse_settings: querySettings(this.settings),
        ...(req.signal ? { abort_signal: req.signal } : {}),
      });
      return await rs.json<Row>();
    } catch (e) {
      if (req.signal?.aborted) throw e;
      throw toProviderError(e, this.settings, 'query');
    }
  }
}

/**
 * `type: clickhouse`: a model source, a destination (upsert and mirror as inserts into a
 * ReplacingMergeTree, deletes and updates as mutations) and a segment connector, all over the
 * HTTP interface (`@clickhouse/client`). Opening runs `SELECT 1`, so a wrong URL, login or database
 * fails at once with a hint.
 */
export const provider: Provider = {
  manifest: manifests.clickhouse,
  async open(req: OpenRequest): Promise<Session> {
    const settings = parseClickhouseSettings(req.settings, req.address);
    const client = createClickhouseClient(settings);
    try {
      req.signal?.throwIfAborted();
      await ping(client, settings, req.signal);
    } catch (e) {
      await client.close().catch(() => undefined);
      throw e;
    }
    return {
      source: new ClickhouseSource(client, settings),
      destination: new ClickhouseDestination(client, settings),
      sql: new ClickhouseExecutor(client, settings),
      close: () => client.close(),
    };
  },
};

export { type ClickhouseSettings, parseClickhouseSettings, splitStatements } from './connection.js';
export { ClickhouseDestination } from './destination.js';
export { ClickhouseSource } from './source.js';
