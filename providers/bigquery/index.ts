import type { BigQuery } from '@google-cloud/bigquery';
import { manifests } from '../manifests.js';
import type { ExecuteRequest, OpenRequest, Provider, Row, Session, SqlExecutor } from '../sdk.js';
import {
  type BigquerySettings,
  createBigqueryClient,
  jobOptions,
  parseBigquerySettings,
  ping,
  plainRow,
  runJob,
  toProviderError,
} from './connection.js';
import { BigqueryDestination } from './destination.js';
import { BigquerySource } from './source.js';

/**
 * Segment connector SQL: the text runs as one query job, so one call may hold several statements
 * (BigQuery runs it as a script; a failing statement stops it). DML is slow on BigQuery (seconds per
 * job) and per-table mutating DML is queued: prefer large `batch.size` for connectors.
 */
class BigqueryExecutor implements SqlExecutor {
  constructor(
    private readonly client: BigQuery,
    private readonly settings: BigquerySettings,
  ) {}

  async execute(req: ExecuteRequest): Promise<{ readonly rowsAffected?: number }> {
    try {
      const job = await runJob(this.client, jobOptions(this.settings, req.sql), req.signal);
      const [meta] = await job.getMetadata();
      const affected = (meta as { statistics?: { query?: { numDmlAffectedRows?: string } } }).statistics
        ?.query?.numDmlAffectedRows;
      return affected === undefined ? {} : { rowsAffected: Number(affected) };
    } catch (e) {
      if (req.signal?.aborted) throw req.signal.reason;
      throw toProviderError(e, this.settings, 'query');
    }
  }

  async query(req: ExecuteRequest): Promise<readonly Row[]> {
    try {
      const job = await runJob(this.client, jobOptions(this.settings, req.sql), req.signal);
      const [rows] = await job.getQueryResults({ wrapIntegers: true });
      return rows.map((r) => plainRow(r as Record<string, unknown>));
    } catch (e) {
      if (req.signal?.aborted) throw req.signal.reason;
      throw toProviderError(e, this.settings, 'query');
    }
  }
}

/**
 * `type: bigquery`: a model source (query jobs paged `batchSize` rows at a time), a destination
 * (DML jobs: INSERT … SELECT, MERGE, UPDATE … FROM, DELETE, and mirror as a single MERGE) and a
 * segment connector, over `@google-cloud/bigquery`. Opening reads the dataset, so wrong
 * credentials, project or dataset fail at once with a hint.
 */
export const provider: Provider = {
  manifest: manifests.bigquery,
  async open(req: OpenRequest): Promise<Session> {
    const settings = parseBigquerySettings(req.settings, req.configDir, req.address);
    const client = createBigqueryClient(settings);
    req.signal?.throwIfAborted();
    await ping(client, settings);
    return {
      source: new BigquerySource(client, settings),
      destination: new BigqueryDestination(client, settings),
      sql: new BigqueryExecutor(client, settings),
      // HTTP requests only: nothing stays open.
      close: async () => {},
    };
  },
};

export { type BigquerySettings, parseBigquerySettings } from './connection.js';
export { BigqueryDestination } from './destination.js';
export { BigquerySource } from './source.js';
