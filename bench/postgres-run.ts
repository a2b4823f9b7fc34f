/** `npm run bench` entry for PostgreSQL: BENCH_PG_URL, or a server started from Debian's package for the run. */
import { start } from '../test/harness/postgres.js';
import { benchPostgres } from './postgres.js';

export async function run(): Promise<Record<string, unknown>> {
  const rows = Number(process.env.BENCH_ROWS ?? 1_000_000);
  const server = process.env.BENCH_PG_URL ? undefined : await start();
  try {
    const r = await benchPostgres({ pgUrl: process.env.BENCH_PG_URL ?? server!.url, rows, batchSize: 1000 });
    console.log(
      `postgres: ${r.rows.toLocaleString('en-US')} rows — initial upsert ${r.initial.backflow_ms} ms (sync ${r.initial.sync_ms}) vs psql COPY+INSERT…ON CONFLICT ${r.initial.psql_ms} ms: ${r.initial.ratio}× (target ≤ 2.0); ` +
        `1% changed ${r.incremental.backflow_ms} ms (sync ${r.incremental.sync_ms}) vs psql COPY TO /dev/null ${r.incremental.psql_ms} ms: ${r.incremental.ratio}× (target ≤ 2.5); ` +
        `peak RSS ${r.peak_rss_mb.initial} / ${r.peak_rss_mb.incremental} MB (target < 300); destinations identical: ${r.identical}`,
    );
    return r as unknown as Record<string, unknown>;
  } finally {
    await server?.stop();
  }
}
