import type { BigQuery } from '@google-cloud/bigquery';
import type { Column, DescribeRequest, Row, SourceCapability, StreamRequest } from '../sdk.js';
import { type BigquerySettings, jobOptions, plainRow, toProviderError } from './connection.js';

/** A field of a BigQuery schema (table or query result). */
export interface SchemaField {
  readonly name?: string | null;
  readonly type?: string | null;
  readonly mode?: string | null;
  readonly fields?: readonly SchemaField[] | null;
}

/**
 * Reads a model: `describe` is a dry run (validated and typed, nothing billed or run); `stream`
 * runs the query as a job and pages through its results, `batchSize` rows per page, so memory holds
 * one page. INT64 and NUMERIC come out as digit strings, dates and times as their text.
 */
export class BigquerySource implements SourceCapability {
  constructor(
    private readonly client: BigQuery,
    private readonly settings: BigquerySettings,
  ) {}

  async describe(req: DescribeRequest): Promise<readonly Column[]> {
    req.signal?.throwIfAborted();
    try {
      const [job] = await this.client.createQueryJob(jobOptions(this.settings, req.sql, { dryRun: true }));
      const fields = (job.metadata?.statistics?.query?.schema?.fields ?? []) as SchemaField[];
      return fields.map((f) => ({ name: f.name ?? '', type: typeName(f) }));
    } catch (e) {
      throw toProviderError(e, this.settings, 'query');
    }
  }

  async *stream(req: StreamRequest): AsyncIterable<readonly Row[]> {
    const size = Math.max(1, Math.floor(req.batchSize));
    req.signal?.throwIfAborted();
    let cancel: (() => void) | undefined;
    try {
      const [job] = await this.client.createQueryJob(jobOptions(this.settings, req.sql));
      cancel = () => void job.cancel().catch(() => undefined);
      req.signal?.addEventListener('abort', cancel, { once: true });
      let pageToken: string | undefined;
      do {
        req.signal?.throwIfAborted();
        const [rows, next] = await job.getQueryResults({
          maxResults: size,
          autoPaginate: false,
          wrapIntegers: true,
          ...(pageToken ? { pageToken } : {}),
        });
        pageToken = (next as { pageToken?: string } | null | undefined)?.pageToken ?? undefined;
        if (rows.length) yield rows.map((r) => plainRow(r as Record<string, unknown>));
      } while (pageToken);
    } catch (e) {
      if (req.signal?.aborted) throw req.signal.reason;
      throw toProviderError(e, this.settings, 'query');
    } finally {
      // Abandoned early: nothing to stop (the job has run; its unread pages expire with it).
      if (cancel) req.signal?.removeEventListener('abort', cancel);
    }
  }
}

/** `integer`, `string`, `array<string>`, `record` (lower case, as the contract's column types). */
export function typeName(f: SchemaField): string {
  const base = (f.type ?? 'unknown').toLowerCase();
  return f.mode === 'REPEATED' ? `array<${base}>` : base;
}
