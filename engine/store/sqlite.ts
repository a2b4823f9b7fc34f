import BetterSqlite3, { type Database, type Statement } from 'better-sqlite3';
import { BugError } from '../errors.js';
import type { RunRecord, SyncRun } from '../sync/types.js';
import { applyMigrations } from './migrations.js';
import { encodeChunk, pageChunks, unloaded } from './run-records.js';
import { SqliteSql } from './sql.js';
import type { PendingRecord, RunFilter, RuntimeStore, SnapshotEntry, SnapshotText } from './types.js';

/** Runs deleted per transaction by pruneRuns. */
const PRUNE_RUNS = 200;

/** Outcome rows per INSERT statement (two parameters each). */
const OUTCOME_ROWS = 500;

/**
 * The runtime store in one SQLite file. better-sqlite3 is synchronous; the methods stay async
 * so the engine is the same over PostgreSQL. WAL lets the CLI read while a sync writes. Every method
 * first waits for a feature transaction another task holds open on this connection (SqliteSql.turn):
 * otherwise its statements would join that transaction, and vanish if it rolled back.
 *
 * A run's confirmed outcomes (`run_outcomes_N`: each key loaded, with its new hash) live in this
 * connection's temporary schema until the run commits them into the snapshot in key order: nothing is
 * journalled or shared meanwhile, and a crashed run's outcomes vanish with it (its records are sent
 * again). The diff itself runs in memory (engine/sync/key-index.ts) over one scan of the snapshot.
 */
export class SqliteStore implements RuntimeStore {
  readonly kind = 'sqlite' as const;
  readonly sql: SqliteSql;
  private readonly db: Database;
  /** runId → the number of its `temp.run_outcomes_N` table. */
  private readonly stages = new Map<string, number>();
  private nextStage = 1;
  private readonly stmts = new Map<string, Statement>();

  constructor(file: string) {
    this.db = new BetterSqlite3(file);
    // Larger pages: shallower B-trees for the snapshot seeks (takes effect on a new file only).
    this.db.pragma('page_size = 16384');
    this.db.pragma('journal_mode = WAL');
    this.db.pragma('busy_timeout = 10000');
    // WAL + NORMAL: a killed process loses nothing committed; only power loss can drop the last commits.
    this.db.pragma('synchronous = NORMAL');
    // Bounded page caches, filled only as used: the snapshot is read and written in key order, so a
    // larger cache buys little; the outcomes of a run spill to their temp file beyond 8 MB.
    this.db.pragma('cache_size = -16384');
    this.db.pragma('temp_store = FILE');
    // The temp schema holds only a run's outcomes, appended then read once in order: 8 MB is plenty.
    this.db.pragma('temp.cache_size = -8192');
    this.sql = new SqliteSql(this.db);
  }

  async migrate(): Promise<void> {
    applyMigrations(this.db);
  }

  async close(): Promise<void> {
    if (this.db.open) this.db.close();
  }

  // --- runs -------------------------------------------------------------------------------

  async insertRun(run: SyncRun): Promise<void> {
    await this.sql.turn();
    this.stmt(
      `INSERT INTO runs (id, mapping, model, source, destination, action, status, trigger, started_at, finished_at, body)
       VALUES (@id, @mapping, @model, @source, @destination, @action, @status, @trigger, @started_at, @finished_at, @body)`,
    ).run(runRow(run));
  }

  async updateRun(run: SyncRun): Promise<void> {
    await this.sql.turn();
    const { changes } = this.stmt(
      `UPDATE runs SET mapping = @mapping, model = @model, source = @source, destination = @destination,
         action = @action, status = @status, trigger = @trigger, started_at = @started_at,
         finished_at = @finished_at, body = @body
       WHERE id = @id`,
    ).run(runRow(run));
    if (changes === 0) throw new BugError(`updateRun: run ${run.id} was never inserted`);
  }

  async getRun(id: string): Promise<SyncRun | undefined> {
    await this.sql.turn();
    const body = this.stmt('SELECT body FROM runs WHERE id = ?').pluck().get(id) as string | undefined;
    return body === undefined ? undefined : (JSON.parse(body) as SyncRun);
  }

  async listRuns(filter: RunFilter): Promise<readonly SyncRun[]> {
    await this.sql.turn();
    const { sql, params } = listRunsQuery(filter);
    const bodies = this.db.prepare(sql).pluck().all(params) as string[];
    return bodies.map((b) => JSON.parse(b) as SyncRun);
  }

  async pruneRuns(req: { before: string }): Promise<number> {
    const old = this.stmt(
      `SELECT id FROM runs r
        WHERE started_at < @before AND status <> 'in_progress'
          AND id <> (SELECT id FROM runs n WHERE n.mapping = r.mapping ORDER BY started_at DESC, id DESC LIMIT 1)
          AND id IS DISTINCT FROM (SELECT id FROM runs s WHERE s.mapping = r.mapping AND s.status = 'success'
                                    ORDER BY started_at DESC, id DESC LIMIT 1)
        ORDER BY started_at LIMIT @limit`,
    ).pluck();
    const remove = this.db.transaction((ids: string[]) => {
      const list = JSON.stringify(ids);
      for (const table of ['run_records', 'run_record_chunks'])
        this.stmt(`DELETE FROM ${table} WHERE run_id IN (SELECT value FROM json_each(?))`).run(list);
      this.stmt('DELETE FROM runs WHERE id IN (SELECT value FROM json_each(?))').run(list);
    });
    let removed = 0;
    // A few hundred runs per transaction: other writers wait for one short transaction at a time.
    for (;;) {
      // Between transactions the event loop runs (the agent's leases and API must not wait on a long prune).
      await new Promise((resolve) => setImmediate(resolve));
      await this.sql.turn();
      const ids = old.all({ before: req.before, limit: PRUNE_RUNS }) as string[];
      if (ids.length === 0) return removed;
      remove.immediate(ids);
      removed += ids.length;
    }
  }

  async listUnfinishedRuns(): Promise<readonly SyncRun[]> {
    await this.sql.turn();
    const bodies = this.stmt(`SELECT body FROM runs WHERE status = 'in_progress' ORDER BY started_at, id`)
      .pluck()
      .all() as string[];
    return bodies.map((b) => JSON.parse(b) as SyncRun);
  }

  async addRunRecords(runId: string, records: readonly RunRecord[]): Promise<void> {
    await this.sql.turn();
    if (records.length === 0) return;
    const insert = this.stmt(
      `INSERT INTO run_records (run_id, key, change, status, code, message, payload)
       VALUES (?, ?, ?, ?, ?, ?, ?)`,
    );
    this.db.transaction(() => {
      this.stmt(
        `INSERT INTO run_record_chunks (run_id, seq, count, records)
         SELECT @runId, coalesce(max(seq), 0) + 1, @count, @records FROM run_record_chunks WHERE run_id = @runId`,
      ).run({ runId, count: records.length, records: encodeChunk(records) });
      for (const r of unloaded(records)) {
        const payload = r.payload === null ? null : JSON.stringify(r.payload);
        insert.run(runId, r.key, r.change, r.status, r.code ?? null, r.message ?? null, payload);
      }
    })();
  }

  async listRunRecords(
    runId: string,
    req: { status?: RunRecord['status']; limit?: number; offset?: number },
  ): Promise<readonly RunRecord[]> {
    await this.sql.turn();
    const chunks = this.stmt('SELECT seq, count FROM run_record_chunks WHERE run_id = ? ORDER BY seq').all(
      runId,
    ) as { seq: number; count: number }[];
    if (chunks.length > 0 && (req.status === undefined || req.status === 'ok')) {
      const read = this.stmt('SELECT records FROM run_record_chunks WHERE run_id = ? AND seq = ?').pluck();
      return pageChunks(chunks, async (seq) => read.get(runId, seq) as string, req);
    }
    // Failed and expired records (and every record of a run stored before chunks) have rows of their own.
    const byStatus = req.status === undefined ? '' : 'AND status = @status';
    const rows = this.stmt(
      `SELECT key, change, status, code, message, payload FROM run_records
       WHERE run_id = @runId ${byStatus} ORDER BY seq LIMIT @limit OFFSET @offset`,
    ).all({ runId, status: req.status, limit: req.limit ?? -1, offset: req.offset ?? 0 }) as RunRecordRow[];
    return rows.map(runRecord);
  }

  // --- snapshot and a run's outcomes ------------------------------------------------------------

  async *snapshotPages(req: { mapping: string; pageSize: number }): AsyncIterable<readonly SnapshotEntry[]> {
    const sql = `SELECT key, hash FROM snapshots WHERE mapping = @mapping AND key > @after ORDER BY key LIMIT @limit`;
    const first = this.stmt(sql.replace('AND key > @after', '')).raw();
    const next = this.stmt(sql).raw();
    const limit = Math.max(1, Math.floor(req.pageSize));
    let after: string | undefined;
    for (;;) {
      await this.sql.turn();
      const page = (
        after === undefined
          ? first.all({ mapping: req.mapping, limit })
          : next.all({ mapping: req.mapping, limit, after })
      ) as [string, string][];
      if (page.length > 0) yield page;
      if (page.length < limit) return;
      after = page[page.length - 1]![0];
    }
  }

  async *snapshotText(req: { mapping: string; pageSize: number }): AsyncIterable<SnapshotText> {
    const sql = `SELECT group_concat(key || char(9) || hash, char(10)), count(*), max(key) FROM (
      SELECT key, hash FROM snapshots WHERE mapping = @mapping AND key > @after ORDER BY key LIMIT @limit)`;
    const first = this.stmt(sql.replace('AND key > @after', '')).raw();
    const next = this.stmt(sql).raw();
    const range = this.stmt(
      `SELECT key, hash FROM snapshots WHERE mapping = @mapping AND key > @after AND key <= @last ORDER BY key`,
    ).raw();
    const whole = this.stmt(
      `SELECT key, hash FROM snapshots WHERE mapping = @mapping AND key <= @last ORDER BY key`,
    ).raw();
    const limit = Math.max(1, Math.floor(req.pageSize));
    const mapping = req.mapping;
    let after: string | undefined;
    for (;;) {
      await this.sql.turn();
      const [text, count, last] = (
        after === undefined ? first.get({ mapping, limit }) : next.get({ mapping, limit, after })
      ) as [string | null, number, string | null];
      if (count === 0 || text === null || last === null) return;
      const from = after;
      yield {
        text,
        count,
        entries: async () => {
          await this.sql.turn();
          return (
            from === undefined ? whole.all({ mapping, last }) : range.all({ mapping, after: from, last })
          ) as [string, string][];
        },
      };
      if (count < limit) return;
      after = last;
    }
  }

  async addOutcomes(req: {
    runId: string;
    outcomes: readonly { key: string; hash: string | null }[];
  }): Promise<void> {
    await this.sql.turn();
    if (req.outcomes.length === 0) return;
    const table = this.outcomeTable(req.runId);
    const all = req.outcomes;
    // Multi-row VALUES statements, prepared once per size: binding is cheaper than JSON in and out.
    for (let i = 0; i < all.length; i += OUTCOME_ROWS) {
      const n = Math.min(OUTCOME_ROWS, all.length - i);
      const params: (string | null)[] = new Array(n * 2);
      for (let j = 0; j < n; j++) {
        const o = all[i + j]!;
        params[2 * j] = o.key;
        params[2 * j + 1] = o.hash;
      }
      this.stmt(`INSERT INTO ${table} (key, hash) VALUES ${'(?, ?), '.repeat(n - 1)}(?, ?)`).run(params);
    }
  }

  async commitSnapshot(req: { mapping: string; runId: string }): Promise<void> {
    await this.sql.turn();
    const stage = this.stages.get(req.runId);
    if (stage === undefined) return;
    const table = `temp.run_outcomes_${stage}`;
    this.db
      .transaction(() => {
        // In key order: the snapshot's B-tree is written page after page, not seek by seek.
        this.db
          .prepare(
            `INSERT INTO snapshots (mapping, key, hash)
             SELECT ?, key, hash FROM ${table} WHERE hash IS NOT NULL ORDER BY key
             ON CONFLICT (mapping, key) DO UPDATE SET hash = excluded.hash`,
          )
          .run(req.mapping);
        this.db
          .prepare(
            `DELETE FROM snapshots WHERE mapping = ? AND key IN (SELECT key FROM ${table} WHERE hash IS NULL)`,
          )
          .run(req.mapping);
      })
      .immediate();
    this.dropStage(req.runId);
  }

  async discardStage(req: { runId: string }): Promise<void> {
    await this.sql.turn();
    this.dropStage(req.runId);
  }

  async resetSnapshot(mapping: string): Promise<void> {
    await this.sql.turn();
    this.stmt('DELETE FROM snapshots WHERE mapping = ?').run(mapping);
  }

  async snapshotSize(mapping: string): Promise<number> {
    await this.sql.turn();
    return this.stmt('SELECT count(*) FROM snapshots WHERE mapping = ?').pluck().get(mapping) as number;
  }

  // --- pending failed records ---------------------------------------------------------------

  async getPending(mapping: string, keys: readonly string[]): Promise<ReadonlyMap<string, PendingRecord>> {
    await this.sql.turn();
    const found = new Map<string, PendingRecord>();
    if (keys.length === 0) return found;
    const rows = this.stmt(
      `SELECT key, change, hash, first_failed_at, last_failed_at, attempts, code, message, expired
       FROM pending WHERE mapping = ? AND key IN (SELECT value FROM json_each(?))`,
    ).all(mapping, JSON.stringify(keys)) as PendingRow[];
    for (const r of rows) found.set(r.key, pendingRecord(r));
    return found;
  }

  async upsertPending(
    mapping: string,
    records: readonly Omit<PendingRecord, 'firstFailedAt' | 'attempts'>[],
  ): Promise<void> {
    await this.sql.turn();
    // Same content failing again: one more attempt in the same window. Changed content (another
    // hash) is a new failure: its retry window restarts.
    const upsert = this.stmt(
      `INSERT INTO pending (mapping, key, change, hash, first_failed_at, last_failed_at, attempts, code, message, expired)
       VALUES (@mapping, @key, @change, @hash, @at, @at, 1, @code, @message, @expired)
       ON CONFLICT (mapping, key) DO UPDATE SET
         first_failed_at = CASE WHEN pending.hash IS excluded.hash THEN pending.first_failed_at ELSE excluded.first_failed_at END,
         attempts = CASE WHEN pending.hash IS excluded.hash THEN pending.attempts + 1 ELSE 1 END,
         change = excluded.change, hash = excluded.hash, last_failed_at = excluded.last_failed_at,
         code = excluded.code, message = excluded.message, expired = excluded.expired`,
    );
    this.db
      .transaction(() => {
        for (const r of records) {
          upsert.run({
            mapping,
            key: r.key,
            change: r.change,
            hash: r.hash,
            at: r.lastFailedAt,
            code: r.code,
            message: r.message,
            expired: r.expired ? 1 : 0,
          });
        }
      })
      .immediate();
  }

  async clearPending(mapping: string, keys: readonly string[]): Promise<void> {
    await this.sql.turn();
    if (keys.length === 0) return;
    this.stmt('DELETE FROM pending WHERE mapping = ? AND key IN (SELECT value FROM json_each(?))').run(
      mapping,
      JSON.stringify(keys),
    );
  }

  async countPending(mapping: string): Promise<number> {
    await this.sql.turn();
    return this.stmt('SELECT count(*) FROM pending WHERE mapping = ?').pluck().get(mapping) as number;
  }

  async pendingKeys(mapping: string): Promise<readonly string[]> {
    await this.sql.turn();
    return this.stmt('SELECT key FROM pending WHERE mapping = ? ORDER BY key')
      .pluck()
      .all(mapping) as string[];
  }

  // --- small facts ---------------------------------------------------------------------------

  async getMeta(key: string): Promise<string | undefined> {
    await this.sql.turn();
    return this.stmt('SELECT value FROM meta WHERE key = ?').pluck().get(key) as string | undefined;
  }

  async setMeta(key: string, value: string | null): Promise<void> {
    await this.sql.turn();
    if (value === null) this.stmt('DELETE FROM meta WHERE key = ?').run(key);
    else
      this.stmt(
        'INSERT INTO meta (key, value) VALUES (?, ?) ON CONFLICT (key) DO UPDATE SET value = excluded.value',
      ).run(key, value);
  }

  // --- helpers ------------------------------------------------------------------------------

  private stmt(sql: string): Statement {
    let s = this.stmts.get(sql);
    if (!s) {
      s = this.db.prepare(sql);
      this.stmts.set(sql, s);
    }
    return s;
  }

  /**
   * The run's own temporary table of outcomes, created on first use: appended in load order with no
   * index to maintain, sorted once by the commit, dropped whole afterwards.
   */
  private outcomeTable(runId: string): string {
    let stage = this.stages.get(runId);
    if (stage === undefined) {
      stage = this.nextStage++;
      this.db.exec(`CREATE TEMP TABLE run_outcomes_${stage} (key TEXT NOT NULL, hash TEXT)`);
      this.stages.set(runId, stage);
    }
    return `temp.run_outcomes_${stage}`;
  }

  private dropStage(runId: string): void {
    const stage = this.stages.get(runId);
    if (stage === undefined) return;
    // Statements prepared on the table go with it.
    for (const sql of [...this.stmts.keys()])
      if (sql.includes(`run_outcomes_${stage} `)) this.stmts.delete(sql);
    this.db.exec(`DROP TABLE IF EXISTS temp.run_outcomes_${stage}`);
    this.stages.delete(runId);
  }
}

function runRow(run: SyncRun) {
  return {
    id: run.id,
    mapping: run.mapping,
    model: run.model,
    source: run.source,
    destination: run.destination,
    action: run.action,
    status: run.status,
    trigger: run.trigger,
    started_at: isoTime(run.started_at),
    finished_at: run.finished_at === null ? null : isoTime(run.finished_at),
    body: JSON.stringify(run),
  };
}

/** Builds the `listRuns` query: newest first; with `latestPerMapping`, status applies to each mapping's latest run. */
function listRunsQuery(f: RunFilter): { sql: string; params: Record<string, unknown> } {
  const where: string[] = [];
  const params: Record<string, unknown> = { limit: f.limit ?? -1 };
  if (f.since !== undefined) {
    where.push('started_at >= @since');
    params.since = isoTime(f.since);
  }
  if (f.until !== undefined) {
    where.push('started_at <= @until');
    params.until = isoTime(f.until);
  }
  for (const [column, values] of [
    ['mapping', f.mappings],
    ['model', f.models],
    ['destination', f.destinations],
  ] as const) {
    if (values === undefined || values.length === 0) continue;
    where.push(`${column} IN (SELECT value FROM json_each(@${column}s))`);
    params[`${column}s`] = JSON.stringify(values);
  }
  if (f.search !== undefined && f.search !== '') {
    where.push(
      `(instr(lower(mapping), @search) OR instr(lower(model), @search) OR instr(lower(destination), @search)
        OR instr(lower(source), @search) OR instr(lower(id), @search))`,
    );
    params.search = f.search.toLowerCase();
  }
  const byStatus = f.status !== undefined && f.status.length > 0;
  if (byStatus) params.statuses = JSON.stringify(f.status);
  const statusCond = 'status IN (SELECT value FROM json_each(@statuses))';

  const order = 'ORDER BY started_at DESC, id DESC';
  if (f.latestPerMapping) {
    const scope = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
    const sql = `SELECT body FROM (
        SELECT body, status, started_at, id,
               row_number() OVER (PARTITION BY mapping ORDER BY started_at DESC, id DESC) AS rn
        FROM runs ${scope})
      WHERE rn = 1 ${byStatus ? `AND ${statusCond}` : ''} ${order} LIMIT @limit`;
    return { sql, params };
  }
  if (byStatus) where.push(statusCond);
  const scope = where.length > 0 ? `WHERE ${where.join(' AND ')}` : '';
  return { sql: `SELECT body FROM runs ${scope} ${order} LIMIT @limit`, params };
}

/** Times compare as text, so every stored and queried time is normalised to `toISOString()`. */
function isoTime(value: string): string {
  const ms = Date.parse(value);
  return Number.isNaN(ms) ? value : new Date(ms).toISOString();
}

interface RunRecordRow {
  key: string;
  change: RunRecord['change'];
  status: RunRecord['status'];
  code: string | null;
  message: string | null;
  payload: string | null;
}

function runRecord(r: RunRecordRow): RunRecord {
  return {
    key: r.key,
    change: r.change,
    status: r.status,
    ...(r.code === null ? {} : { code: r.code }),
    ...(r.message === null ? {} : { message: r.message }),
    payload: r.payload === null ? null : (JSON.parse(r.payload) as Record<string, unknown>),
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
  expired: number;
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
    expired: r.expired === 1,
  };
}
