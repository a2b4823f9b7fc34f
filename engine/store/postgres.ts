import type pg from 'pg';
import {
  acquire,
  createPool,
  type PostgresSettings,
  parsePostgresSettings,
  toProviderError,
} from '../../providers/postgres/connection.js';
import { BugError } from '../errors.js';
import type { RunRecord, SyncRun } from '../sync/types.js';
import { applyPgMigrations } from './postgres-migrations.js';
import { encodeChunk, pageChunks, unloaded } from './run-records.js';
import { PostgresSql, type StoreSql } from './sql.js';
import type { PendingRecord, RunFilter, RuntimeStore, SnapshotEntry, SnapshotText } from './types.js';

/** Opens a PostgreSQL runtime store (what `settings.store: postgres://…` names) and migrates it. */
export async function openPostgresStore(req: { url: string; configDir?: string }): Promise<RuntimeStore> {
  const store = new PostgresStore(
    parsePostgresSettings({ type: 'postgres', url: req.url }, 'settings.store'),
  );
  try {
    await store.migrate();
  } catch (e) {
    await store.close();
    throw e;
  }
  return store;
}

/**
 * The runtime store in PostgreSQL, for teams and for several agents sharing one store. Same tables
 * and semantics as the SQLite store; every batch operation is one statement whose rows travel as
 * arrays (`unnest`), so a 1,000-key batch is one round trip.
 */
/** Runs deleted per statement by pruneRuns. */
const PRUNE_RUNS = 200;

export class PostgresStore implements RuntimeStore {
  readonly kind = 'postgres' as const;
  private readonly pool: pg.Pool;
  /** runId → stage id; a run is staged by one process, so the cache never goes stale. */
  private readonly stages = new Map<string, string>();

  readonly sql: StoreSql;

  constructor(private readonly settings: PostgresSettings) {
    this.pool = createPool(settings, 4);
    this.sql = new PostgresSql(this.pool);
  }

  async migrate(): Promise<void> {
    const client = await acquire(this.pool, this.settings);
    try {
      await applyPgMigrations(client);
    } catch (e) {
      throw e instanceof BugError || (e as { kind?: string }).kind === 'user'
        ? e
        : toProviderError(e, this.settings.where, 'query');
    } finally {
      client.release();
    }
  }

  async close(): Promise<void> {
    if (!this.pool.ended && !this.pool.ending) await this.pool.end();
  }

  // --- runs -------------------------------------------------------------------------------

  async insertRun(run: SyncRun): Promise<void> {
    await this.q(
      `INSERT INTO runs (id, mapping, model, source, destination, action, status, trigger, started_at, finished_at, body)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`,
      runParams(run),
    );
  }

  async updateRun(run: SyncRun): Promise<void> {
    const res = await this.q(
      `UPDATE runs SET mapping = $2, model = $3, source = $4, destination = $5, action = $6, status = $7,
         trigger = $8, started_at = $9, finished_at = $10, body = $11
       WHERE id = $1`,
      runParams(run),
    );
    if (res.rowCount === 0) throw new BugError(`updateRun: run ${run.id} was never inserted`);
  }

  async getRun(id: string): Promise<SyncRun | undefined> {
    const res = await this.q<{ body: SyncRun }>('SELECT body FROM runs WHERE id = $1', [id]);
    return res.rows[0]?.body;
  }

  async listRuns(filter: RunFilter): Promise<readonly SyncRun[]> {
    const { sql, params } = listRunsQuery(filter);
    const res = await this.q<{ body: SyncRun }>(sql, params);
    return res.rows.map((r) => r.body);
  }

  async pruneRuns(req: { before: string }): Promise<number> {
    let removed = 0;
    // A few hundred runs per statement (one transaction each): no long lock on the history.
    for (;;) {
      const res = await this.q(
        `WITH old AS (
           SELECT id FROM runs r
            WHERE started_at < $1::timestamptz AND status <> 'in_progress'
              AND id <> (SELECT id FROM runs n WHERE n.mapping = r.mapping ORDER BY started_at DESC, id DESC LIMIT 1)
              AND id IS DISTINCT FROM (SELECT id FROM runs s WHERE s.mapping = r.mapping AND s.status = 'success'
                                        ORDER BY started_at DESC, id DESC LIMIT 1)
            ORDER BY started_at LIMIT $2),
         records AS (DELETE FROM run_records WHERE run_id IN (SELECT id FROM old)),
         chunks AS (DELETE FROM run_record_chunks WHERE run_id IN (SELECT id FROM old))
         DELETE FROM runs WHERE id IN (SELECT id FROM old)`,
        [req.before, PRUNE_RUNS],
      );
      removed += res.rowCount ?? 0;
      if ((res.rowCount ?? 0) < PRUNE_RUNS) return removed;
    }
  }

  async listUnfinishedRuns(): Promise<readonly SyncRun[]> {
    const res = await this.q<{ body: SyncRun }>(
      `SELECT body FROM runs WHERE status = 'in_progress' ORDER BY started_at, id`,
    );
    return res.rows.map((r) => r.body);
  }

  async addRunRecords(runId: string, records: readonly RunRecord[]): Promise<void> {
    if (records.length === 0) return;
    const rows = unloaded(records);
    await this.transaction(async (c) => {
      await c.query(
        `INSERT INTO run_record_chunks (run_id, seq, count, records)
         SELECT $1, coalesce(max(seq), 0) + 1, $2, $3::json FROM run_record_chunks WHERE run_id = $1`,
        [runId, records.length, encodeChunk(records)],
      );
      if (rows.length === 0) return;
      await c.query(
        `INSERT INTO run_records (run_id, key, change, status, code, message, payload)
         SELECT $1, k, c, s, code, msg, p::json
           FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[])
                WITH ORDINALITY AS u(k, c, s, code, msg, p, ord)
          ORDER BY ord`,
        [
          runId,
          rows.map((r) => r.key),
          rows.map((r) => r.change),
          rows.map((r) => r.status),
          rows.map((r) => r.code ?? null),
          rows.map((r) => r.message ?? null),
          rows.map((r) => (r.payload === null ? null : JSON.stringify(r.payload))),
        ],
      );
    });
  }

  async listRunRecords(
    runId: string,
    req: { status?: RunRecord['status']; limit?: number; offset?: number },
  ): Promise<readonly RunRecord[]> {
    const chunks = await this.q<{ seq: number; count: number }>(
      'SELECT seq, count FROM run_record_chunks WHERE run_id = $1 ORDER BY seq',
      [runId],
    );
    if (chunks.rows.length > 0 && (req.status === undefined || req.status === 'ok')) {
      const read = async (seq: number) =>
        (
          await this.q<{ records: string }>(
            'SELECT records::text AS records FROM run_record_chunks WHERE run_id = $1 AND seq = $2',
            [runId, seq],
          )
        ).rows[0]!.records;
      return pageChunks(chunks.rows, read, req);
    }
    // Failed and expired records (and every record of a run stored before chunks) have rows of their own.
    const res = await this.q<RunRecordRow>(
      `SELECT key, change, status, code, message, payload FROM run_records
        WHERE run_id = $1 AND ($2::text IS NULL OR status = $2)
        ORDER BY seq LIMIT $3 OFFSET $4`,
      [runId, req.status ?? null, req.limit ?? null, req.offset ?? 0],
    );
    return res.rows.map(runRecord);
  }

  // --- snapshot and a run's outcomes ------------------------------------------------------------

  async *snapshotPages(req: { mapping: string; pageSize: number }): AsyncIterable<readonly SnapshotEntry[]> {
    const limit = Math.max(1, Math.floor(req.pageSize));
    let after: string | null = null;
    for (;;) {
      const res: pg.QueryResult<{ key: string; hash: string }> = await this.q(
        `SELECT key, hash FROM snapshots WHERE mapping = $1 AND ($2::text IS NULL OR key > $2)
          ORDER BY key LIMIT $3`,
        [req.mapping, after, limit],
      );
      if (res.rows.length > 0) yield res.rows.map((r): SnapshotEntry => [r.key, r.hash]);
      if (res.rows.length < limit) return;
      after = res.rows[res.rows.length - 1]!.key;
    }
  }

  async *snapshotText(req: { mapping: string; pageSize: number }): AsyncIterable<SnapshotText> {
    const limit = Math.max(1, Math.floor(req.pageSize));
    let after: string | null = null;
    for (;;) {
      const res: pg.QueryResult<{ text: string | null; count: number; last: string | null }> = await this.q(
        `SELECT string_agg(key || chr(9) || hash, chr(10)) AS text, count(*)::int AS count, max(key) AS last
           FROM (SELECT key, hash FROM snapshots WHERE mapping = $1 AND ($2::text IS NULL OR key > $2)
                  ORDER BY key LIMIT $3) page`,
        [req.mapping, after, limit],
      );
      const { text, count, last } = res.rows[0]!;
      if (count === 0 || text === null || last === null) return;
      const from = after;
      yield {
        text,
        count,
        entries: async () =>
          (
            await this.q<{ key: string; hash: string }>(
              `SELECT key, hash FROM snapshots
                WHERE mapping = $1 AND ($2::text IS NULL OR key > $2) AND key <= $3 ORDER BY key`,
              [req.mapping, from, last],
            )
          ).rows.map((r): SnapshotEntry => [r.key, r.hash]),
      };
      if (count < limit) return;
      after = last;
    }
  }

  async addOutcomes(req: {
    runId: string;
    outcomes: readonly { key: string; hash: string | null }[];
  }): Promise<void> {
    if (req.outcomes.length === 0) return;
    const stage = await this.stageId(req.runId);
    await this.q(
      `INSERT INTO run_keys (stage, key, outcome, hash)
       SELECT $1, k, 'ok', h FROM unnest($2::text[], $3::text[]) AS u(k, h)
       ON CONFLICT (stage, key) DO UPDATE SET outcome = EXCLUDED.outcome, hash = EXCLUDED.hash`,
      [stage, req.outcomes.map((o) => o.key), req.outcomes.map((o) => o.hash)],
    );
  }

  async commitSnapshot(req: { mapping: string; runId: string }): Promise<void> {
    const stage = await this.existingStageId(req.runId);
    if (stage === undefined) return;
    await this.transaction(async (c) => {
      await c.query(
        `INSERT INTO snapshots (mapping, key, hash)
         SELECT $1, key, hash FROM run_keys WHERE stage = $2 AND hash IS NOT NULL
         ON CONFLICT (mapping, key) DO UPDATE SET hash = EXCLUDED.hash`,
        [req.mapping, stage],
      );
      await c.query(
        `DELETE FROM snapshots s USING run_keys r
          WHERE s.mapping = $1 AND r.stage = $2 AND r.key = s.key AND r.hash IS NULL`,
        [req.mapping, stage],
      );
      await dropStage(c, stage);
    });
    this.stages.delete(req.runId);
  }

  async discardStage(req: { runId: string }): Promise<void> {
    const stage = await this.existingStageId(req.runId);
    if (stage === undefined) return;
    await this.transaction((c) => dropStage(c, stage));
    this.stages.delete(req.runId);
  }

  async resetSnapshot(mapping: string): Promise<void> {
    await this.q('DELETE FROM snapshots WHERE mapping = $1', [mapping]);
  }

  async snapshotSize(mapping: string): Promise<number> {
    const res = await this.q<{ n: number }>('SELECT count(*)::int AS n FROM snapshots WHERE mapping = $1', [
      mapping,
    ]);
    return res.rows[0]?.n ?? 0;
  }

  // --- pending failed records ---------------------------------------------------------------

  async getPending(mapping: string, keys: readonly string[]): Promise<ReadonlyMap<string, PendingRecord>> {
    const found = new Map<string, PendingRecord>();
    if (keys.length === 0) return found;
    const res = await this.q<PendingRow>(
      `SELECT key, change, hash, first_failed_at, last_failed_at, attempts, code, message, expired
         FROM pending WHERE mapping = $1 AND key = ANY($2::text[])`,
      [mapping, keys],
    );
    for (const r of res.rows) found.set(r.key, pendingRecord(r));
    return found;
  }

  async upsertPending(
    mapping: string,
    records: readonly Omit<PendingRecord, 'firstFailedAt' | 'attempts'>[],
  ): Promise<void> {
    if (records.length === 0) return;
    // Same content failing again: one more attempt in the same window. Changed content (another
    // hash) is a new failure: its retry window restarts. One statement cannot touch a row twice,
    // so a key given twice keeps its last failure.
    const last = new Map<string, Omit<PendingRecord, 'firstFailedAt' | 'attempts'>>();
    for (const r of records) {
      last.delete(r.key);
      last.set(r.key, r);
    }
    const rows = [...last.values()];
    await this.q(
      `INSERT INTO pending (mapping, key, change, hash, first_failed_at, last_failed_at, attempts, code, message, expired)
       SELECT $1, k, c, h, at, at, 1, code, msg, exp
         FROM unnest($2::text[], $3::text[], $4::text[], $5::text[], $6::text[], $7::text[], $8::boolean[])
              AS u(k, c, h, at, code, msg, exp)
       ON CONFLICT (mapping, key) DO UPDATE SET
         first_failed_at = CASE WHEN pending.hash IS NOT DISTINCT FROM EXCLUDED.hash
                                THEN pending.first_failed_at ELSE EXCLUDED.first_failed_at END,
         attempts = CASE WHEN pending.hash IS NOT DISTINCT FROM EXCLUDED.hash THEN pending.attempts + 1 ELSE 1 END,
         change = EXCLUDED.change, hash = EXCLUDED.hash, last_failed_at = EXCLUDED.last_failed_at,
         code = EXCLUDED.code, message = EXCLUDED.message, expired = EXCLUDED.expired`,
      [
        mapping,
        rows.map((r) => r.key),
        rows.map((r) => r.change),
        rows.map((r) => r.hash),
        rows.map((r) => r.lastFailedAt),
        rows.map((r) => r.code),
        rows.map((r) => r.message),
        rows.map((r) => r.expired),
      ],
    );
  }

  async clearPending(mapping: string, keys: readonly string[]): Promise<void> {
    if (keys.length === 0) return;
    await this.q('DELETE FROM pending WHERE mapping = $1 AND key = ANY($2::text[])', [mapping, keys]);
  }

  async countPending(mapping: string): Promise<number> {
    const res = await this.q<{ n: number }>('SELECT count(*)::int AS n FROM pending WHERE mapping = $1', [
      mapping,
    ]);
    return res.rows[0]?.n ?? 0;
  }

  async pendingKeys(mapping: string): Promise<readonly string[]> {
    const res = await this.q<{ key: string }>('SELECT key FROM pending WHERE mapping = $1 ORDER BY key', [
      mapping,
    ]);
    return res.rows.map((r) => r.key);
  }

  // --- small facts ---------------------------------------------------------------------------

  async getMeta(key: string): Promise<string | undefined> {
    const res = await this.q<{ value: string }>('SELECT value FROM meta WHERE key = $1', [key]);
    return res.rows[0]?.value;
  }

  async setMeta(key: string, value: string | null): Promise<void> {
    if (value === null) await this.q('DELETE FROM meta WHERE key = $1', [key]);
    else
      await this.q(
        'INSERT INTO meta (key, value) VALUES ($1, $2) ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value',
        [key, value],
      );
  }

  // --- helpers ------------------------------------------------------------------------------

  private async q<R extends pg.QueryResultRow = pg.QueryResultRow>(
    sql: string,
    params?: unknown[],
  ): Promise<pg.QueryResult<R>> {
    try {
      return await this.pool.query<R>(sql, params);
    } catch (e) {
      throw toProviderError(e, this.settings.where, 'query');
    }
  }

  private async transaction(work: (c: pg.PoolClient) => Promise<void>): Promise<void> {
    const client = await acquire(this.pool, this.settings);
    let broken: unknown;
    try {
      await client.query('BEGIN');
      await work(client);
      await client.query('COMMIT');
    } catch (e) {
      broken = e;
      await client.query('ROLLBACK').catch(() => undefined);
      throw toProviderError(e, this.settings.where, 'query');
    } finally {
      client.release(broken === undefined ? undefined : true);
    }
  }

  private async stageId(runId: string): Promise<string> {
    const cached = this.stages.get(runId);
    if (cached !== undefined) return cached;
    const res = await this.q<{ id: string }>(
      `INSERT INTO stages (run_id) VALUES ($1)
       ON CONFLICT (run_id) DO UPDATE SET run_id = EXCLUDED.run_id RETURNING id`,
      [runId],
    );
    const id = res.rows[0]!.id;
    this.stages.set(runId, id);
    return id;
  }

  private async existingStageId(runId: string): Promise<string | undefined> {
    const cached = this.stages.get(runId);
    if (cached !== undefined) return cached;
    const res = await this.q<{ id: string }>('SELECT id FROM stages WHERE run_id = $1', [runId]);
    const id = res.rows[0]?.id;
    if (id !== undefined) this.stages.set(runId, id);
    return id;
  }
}

async function dropStage(c: pg.PoolClient, stage: string): Promise<void> {
  await c.query('DELETE FROM run_keys WHERE stage = $1', [stage]);
  await c.query('DELETE FROM stages WHERE id = $1', [stage]);
}

function runParams(run: SyncRun): unknown[] {
  return [
    run.id,
    run.mapping,
    run.model,
    run.source,
    run.destination,
    run.action,
    run.status,
    run.trigger,
    run.started_at,
    run.finished_at,
    JSON.stringify(run),
  ];
}

/** Builds the `listRuns` query: newest first; with `latestPerMapping`, status applies to each mapping's latest run. */
function listRunsQuery(f: RunFilter): { sql: string; params: unknown[] } {
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `$${params.length}`;
  };
  const where: string[] = [];
  if (f.since !== undefined) where.push(`started_at >= ${p(f.since)}::timestamptz`);
  if (f.until !== undefined) where.push(`started_at <= ${p(f.until)}::timestamptz`);
  for (const [column, values] of [
    ['mapping', f.mappings],
    ['model', f.models],
    ['destination', f.destinations],
  ] as const) {
    if (values === undefined || values.length === 0) continue;
    where.push(`${column} = ANY(${p(values)}::text[])`);
  }
  if (f.search !== undefined && f.search !== '') {
    // A literal substring (strpos, not LIKE: `%` and `_` in the search mean themselves).
    const s = p(f.search.toLowerCase());
    where.push(
      `(strpos(lower(mapping), ${s}) > 0 OR strpos(lower(model), ${s}) > 0 OR strpos(lower(destination), ${s}) > 0
        OR strpos(lower(source), ${s}) > 0 OR strpos(lower(id), ${s}) > 0)`,
    );
  }
  const statusCond =
    f.status !== undefined && f.status.length > 0 ? `status = ANY(${p(f.status)}::text[])` : undefined;
  const limit = `LIMIT ${p(f.limit ?? null)}`;
  const order = 'ORDER BY started_at DESC, id DESC';
  if (f.latestPerMapping) {
    const scope = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const sql = `SELECT body FROM (
        SELECT body, status, started_at, id,
               row_number() OVER (PARTITION BY mapping ORDER BY started_at DESC, id DESC) AS rn
          FROM runs ${scope}) AS latest
      WHERE rn = 1 ${statusCond ? `AND ${statusCond}` : ''} ${order} ${limit}`;
    return { sql, params };
  }
  if (statusCond) where.push(statusCond);
  const scope = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  return { sql: `SELECT body FROM runs ${scope} ${order} ${limit}`, params };
}

interface RunRecordRow {
  key: string;
  change: RunRecord['change'];
  status: RunRecord['status'];
  code: string | null;
  message: string | null;
  payload: Record<string, unknown> | null;
}

function runRecord(r: RunRecordRow): RunRecord {
  return {
    key: r.key,
    change: r.change,
    status: r.status,
    ...(r.code === null ? {} : { code: r.code }),
    ...(r.message === null ? {} : { message: r.message }),
    payload: r.payload,
  };
}

interface PendingRow {
  key: string;
  change: PendingRecord['change'];
  hash: string | null;
  first_failed_at: string;
  last_failed_at: string;
  attempts: number;
  code: string;
  message: string;
  expired: boolean;
}

function pendingRecord(r: PendingRow): PendingRecord {
  return {
    key: r.key,
    change: r.change,
    hash: r.hash,
    firstFailedAt: r.first_failed_at,
    lastFailedAt: r.last_failed_at,
    attempts: r.attempts,
    code: r.code,
    message: r.message,
    expired: r.expired,
  };
}
