import type { ClickHouseClient } from '@clickhouse/client';
import type { Column, DescribeRequest, Row, SourceCapability, StreamRequest } from '../sdk.js';
import { type ClickhouseSettings, querySettings, toProviderError, trimStatement } from './connection.js';

/**
 * Reads a model over the HTTP interface: `describe` asks `DESCRIBE TABLE (query)`, which analyses the
 * query without running it; `stream` reads JSONEachRow as it arrives and yields `batchSize` rows at a
 * time, so memory holds one batch plus the socket's buffer. 64-bit integers arrive as strings.
 */
export class ClickhouseSource implements SourceCapability {
  constructor(
    private readonly client: ClickHouseClient,
    private readonly settings: ClickhouseSettings,
  ) {}

  async describe(req: DescribeRequest): Promise<readonly Column[]> {
    req.signal?.throwIfAborted();
    try {
      const rs = await this.client.query({
        // The newline keeps a trailing line comment from swallowing the parenthesis.
        query: `DESCRIBE TABLE (\n${trimStatement(req.sql)}\n)`,
        format: 'JSONEachRow',
        clickhouse_settings: querySettings(this.settings),
        ...(req.signal ? { abort_signal: req.signal } : {}),
      });
      const rows = await rs.json<{ name: string; type: string }>();
      return rows.map((r) => ({ name: r.name, type: r.type.toLowerCase() }));
    } catch (e) {
      if (req.signal?.aborted) throw e;
      throw toProviderError(e, this.settings, 'query');
    }
  }

  async *stream(req: StreamRequest): AsyncIterable<readonly Row[]> {
    const size = Math.max(1, Math.floor(req.batchSize));
    req.signal?.throwIfAborted();
    let rs: Awaited<ReturnType<ClickHouseClient['query']>> | undefined;
    try {
      rs = await this.client.query({
        query: trimStatement(req.sql),
        format: 'JSONEachRow',
        clickhouse_settings: querySettings(this.settings),
        ...(req.signal ? { abort_signal: req.signal } : {}),
      });
      let batch: Row[] = [];
      for await (const chunk of rs.stream()) {
        for (const line of chunk) {
          batch.push(parseLine(line.text));
          if (batch.length >= size) {
            yield batch;
            batch = [];
          }
        }
      }
      if (batch.length > 0) yield batch;
    } catch (e) {
      if (req.signal?.aborted) throw e;
      throw toProviderError(e, this.settings, 'query');
    } finally {
      // Abandoned early (the caller stopped, or an error): destroys the response socket.
      rs?.close();
    }
  }
}

/**
 * One JSONEachRow line. An exception raised after the first rows were sent arrives as plain text in
 * the body (`Code: 395, …`): it becomes the server error it is, not a JSON syntax error.
 */
function parseLine(text: string): Row {
  if (text.startsWith('Code: ')) throw new Error(text);
  return JSON.parse(text) as Row;
}
